"""`emomusic infill`: write chosen bars of your MIDI file anew in the mood you ask for, joining both sides.

    emomusic infill song.mid --bars 5-8 --emotion tense --out song-tense-middle.mid

The bars before are what the model goes on from; of several drawn, the bars after which the model
finds your following bars most likely are kept (`EmoMusic.infill`). Everything outside the chosen bars
stays as it was; the new notes go on the main pitched track.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from emomusic.cli._common import (
    add_checkpoints,
    add_json,
    add_mood_flags,
    command,
    kernels_notice,
    note,
    output_formats,
)
from emomusic.errors import InvalidInputError

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "infill", "write chosen bars of your MIDI file anew in the mood you ask for",
                "write chosen bars of your MIDI file anew, in the asked mood, leading from the bars before "
                "into the bars after")
    c.add_argument("file", help="your MIDI file (.mid); every track is kept")
    c.add_argument("--bars", required=True, metavar="A-B", help="the bars to write anew, 1-based and inclusive "
                   "(e.g. 5-8, or 5 for one bar)")
    add_mood_flags(c)
    add_json(c)
    c.add_argument("--seed", type=int, default=0, help="random seed: the same seed and settings give the same file")
    c.add_argument("--out", help=f"output file; its suffix picks the format ({output_formats()}) (default: "
                   "FILE-bars-A-B.mid beside the input)")
    c.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_checkpoints(c)
    c.set_defaults(handler=run)


def parse_bars(text: str) -> tuple[int, int]:
    """ "5-8" → (5, 8); "5" → (5, 5).

    Raises:
        InvalidInputError: not one bar number or a range A-B with A ≤ B.
    """
    m = _RANGE.match(str(text))
    if not m:
        raise InvalidInputError(f"--bars {text!r}: give a bar or a range of bars, e.g. 5-8")
    a, b = int(m.group(1)), int(m.group(2) or m.group(1))
    if a < 1 or b < a:
        raise InvalidInputError(f"--bars {text!r}: bars count from 1 and the range must not run backwards")
    return a, b


def run(args: argparse.Namespace) -> int:
    """Read the file, check the output path, infill, write, and print one line (or JSON)."""
    import time

    from emomusic.cli.continuation import checked_out, read_tracks, write_yours
    from emomusic.request import GenerationRequest

    first, last = parse_bars(args.bars)
    src = Path(args.file)
    out = checked_out(args.out, src.with_name(f"{src.stem}-bars-{first}-{last}.mid"), args.force)
    tracks, tpq, notice = read_tracks(src)
    from emomusic.music.tracks import Arrangement

    n_bars = Arrangement(tuple(tracks)).pitched().n_bars
    if last > n_bars:
        raise InvalidInputError(f"--bars {first}-{last}: {src.name} has {n_bars} bars")
    request = GenerationRequest(emotion=args.emotion, valence=args.valence, arousal=args.arousal,
                                intensity=args.intensity, genre=args.genre, tempo=args.tempo,
                                time_signature=args.time_signature, seed=args.seed)
    plan = request.resolve()
    for line in (*plan.notices, *([notice] if notice else [])):
        note(line)
    kernels_notice()
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(args.checkpoints)
    t0 = time.perf_counter()
    best = em.infill(tracks, first, last, request)[0]
    seconds = time.perf_counter() - t0
    write_yours(best, out, tpq, args.force)
    if args.json:
        print(json.dumps({"out": str(out), "input": str(src), "bars": [first, last], "emotion": plan.emotion,
                          "quadrant": plan.quadrant, "sections": best.sections,
                          "look_ahead_logprob": best.scores.get("look_ahead"), "seconds": round(seconds, 3)}))
    else:
        print(f"wrote {out}: bars {first}-{last} written anew, {plan.emotion} ({plan.quadrant}), between your "
              f"bars; in {seconds:.1f} s")
    return 0
