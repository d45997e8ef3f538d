"""`emomusic attributes`: EmoGen stage 1 alone, the musical attributes an emotion is given (no generator)."""

from __future__ import annotations

import argparse
import json

from emomusic.cli._common import add_checkpoints, add_json, command
from emomusic.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = command(sub, "attributes", "EmoGen stage 1: musical attributes of an emotion")
    a.add_argument("--emotion", help="emotion word or Q1..Q4 (see `emomusic words`)")
    a.add_argument("--valence", type=float, help="valence in [-1, 1], with --arousal (wins over --emotion)")
    a.add_argument("--arousal", type=float, help="arousal in [-1, 1], with --valence")
    a.add_argument("--intensity", type=float, default=1.0, help="how strongly: 0 = neutral, 1 = the word as it is, "
                   "2 = as extreme as its direction goes")
    add_json(a)
    add_checkpoints(a)
    a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from emomusic.pipeline import attributes_for

    if args.emotion is None and (args.valence is None or args.arousal is None):
        raise InvalidInputError("give --emotion WORD or both --valence and --arousal")
    a = attributes_for(args.emotion, args.valence, args.arousal, checkpoints=args.checkpoints,
                       intensity=args.intensity)
    if args.json:
        print(json.dumps({"emotion": a.emotion, "quadrant": a.quadrant, "valence": a.valence,
                          "arousal": a.arousal, "attributes": a.values, "explanation": a.explanation,
                          "source": a.source}))
    else:
        print(f"{a.emotion} → {a.quadrant} (valence {a.valence:+.2f}, arousal {a.arousal:+.2f})")
        print("what sets it apart: " + ", ".join(a.explanation))
        for k in ("tempo", "mode", "note_density", "pitch_mean", "velocity_mean", "duration_mean", "polyphony"):
            print(f"  {k:>14}: {a.values[k]:.2f}")
        print(f"  (attributes of the real piece nearest the emotion's centre, moved to its point: {a.source})")
    return 0
