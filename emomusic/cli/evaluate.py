"""`emomusic evaluate`: the controllability and quality report (docs: the evaluation protocol)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from emomusic.cli._common import add_checkpoints, command
from emomusic.errors import InvalidInputError

METHODS = ("token", "attributes", "selector")


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = command(sub, "evaluate", "controllability and quality report")
    ev.add_argument("--per-emotion", type=int, default=25, help="pieces generated per quadrant and method")
    ev.add_argument("--out", default="report", help="folder for report.md, report.json and the plots")
    ev.add_argument("--bars", type=int, default=16, help="length of every generated piece in bars")
    add_checkpoints(ev)
    ev.add_argument("--data-root", help="datasets folder holding EMOPIA (the real val pieces compared against; "
                    "default: $EMOMUSIC_DATA, else ../shared/data)")
    ev.add_argument("--methods", help=f"comma-separated subset of {','.join(METHODS)} (default: all; selector "
                    "only with a selector checkpoint)")
    ev.add_argument("--candidates", type=int, default=8, help="candidates per piece for the selector method")
    ev.add_argument("--seed-offset", type=int, default=0,
                    help="add this to every seed: check a choice made on the default seeds on unseen pieces")
    ev.add_argument("--progression", action=argparse.BooleanOptionalAction, default=True,
                    help="generate with chord plans, as `generate` does by default (--no-progression: the tonic triad)")
    ev.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from emomusic.evaluation.controllability import evaluate
    from emomusic.pipeline import EmoMusic

    n = int(args.per_emotion)
    if n < 1:
        raise InvalidInputError("--per-emotion must be at least 1")
    methods = tuple(m.strip() for m in args.methods.split(",")) if args.methods else None
    if methods and not set(methods) <= set(METHODS):
        raise InvalidInputError(f"--methods {args.methods!r}: choose from {', '.join(METHODS)}")
    if not 1 <= args.candidates <= 64:
        raise InvalidInputError("--candidates must be between 1 and 64")
    em = EmoMusic.from_pretrained(args.checkpoints)
    with _data_root(args.data_root):
        report = evaluate(em, per_emotion=n, bars=args.bars, out=args.out, methods=methods,
                          select_n=args.candidates, seed_offset=args.seed_offset, progression=args.progression)
    for method, v in report["methods"].items():
        a = v["accuracy"]
        print(f"{method:>10}: 4Q {a['4Q']:.3f}  arousal {a['arousal']:.3f}  valence {a['valence']:.3f}  "
              f"quality overlap {v['mean_overlap']:.3f}")
        if "selection" in v:
            g = v["selection"]
            print(f"{'':>10}  best of {g['candidates']} vs first candidate, same seeds: 4Q "
                  f"{g['best']['4Q']:.3f} vs {g['first_candidate']['4Q']:.3f} "
                  f"({100 * g['gain_4Q_vs_first']:+.1f} points)")
    print(f"report written to {args.out}/report.md")
    return 0


@contextlib.contextmanager
def _data_root(path: str | None) -> Iterator[None]:
    """Point the one settings resolver at `--data-root` for this command (checked first), then restore.

    The harness finds its data through `emomusic.settings.data_root()`, which reads $EMOMUSIC_DATA when
    no folder is passed, so setting it here reaches every loader the harness calls.
    """
    if path is None:
        yield
        return
    from emomusic.settings import DATA_ENV, data_root

    folder = data_root(path)  # a missing folder is the one-line "pass --data-root DIR" error
    before = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = before
