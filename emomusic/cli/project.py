"""`emomusic project`: show the music elements a prompt projects to (emotion, genre, tempo, melody), no music."""

from __future__ import annotations

import argparse
import json

from emomusic.cli._common import add_json, add_mood_flags, add_prompt_flags, command, note, prompt_values
from emomusic.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "project", "show the music elements a prompt projects to")
    add_mood_flags(p)
    add_prompt_flags(p)
    add_json(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from emomusic.prompt.projector import project
    from emomusic.request import GenerationRequest

    prompts = prompt_values(args)
    if not prompts and args.emotion is None and (args.valence is None or args.arousal is None):
        raise InvalidInputError("give a prompt (e.g. --prompt 'sad, slow'), --emotion WORD, "
                                "or both --valence and --arousal")
    explicit = {"emotion": args.emotion, "valence": args.valence, "arousal": args.arousal, "genre": args.genre,
                "tempo": args.tempo, "time_signature": args.time_signature, "intensity": args.intensity}
    el = project(**prompts, **explicit)
    for line in GenerationRequest(**explicit, prompts=prompts).notices(el):
        note(line)
    if args.json:
        print(json.dumps(el.to_dict()))
    else:
        notes = "none" if el.notes is None else f"{len(el.notes)} notes, {el.notes.n_bars} bars"
        mood = f"{el.emotion} ({el.quadrant}), valence {el.valence}, arousal {el.arousal}" if el.quadrant else \
            "no emotion named"
        intensity = "" if el.intensity is None else f", intensity {el.intensity:g}"
        print(f"{mood}{intensity}, genre {el.genre}, tempo {el.tempo}, melody: {notes}")
        for line in el.sources:
            print(f"  {line}")
    return 0
