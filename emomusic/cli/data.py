"""`emomusic data prepare|stats`: cache the training datasets as token/feature arrays, or count them."""

from __future__ import annotations

import argparse
import json

from emomusic.cli._common import command, subcommands

DATA_ROOT_HELP = "datasets folder (default: $EMOMUSIC_DATA, else ../shared/data)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = command(sub, "data", "prepare or inspect the training data",
                "prepare or inspect the training data: `emomusic data prepare` or `emomusic data stats`")
    actions = subcommands(d, "action", "{prepare,stats}")
    prep = command(actions, "prepare", "read the datasets and cache them for training")
    prep.add_argument("--data-root", help=DATA_ROOT_HELP)
    prep.add_argument("--datasets", help="comma-separated subset, e.g. emopia,vgmidi (default: all)")
    prep.set_defaults(handler=prepare)
    stats = command(actions, "stats", "print one JSON line of counts per dataset")
    stats.add_argument("--data-root", help=DATA_ROOT_HELP)
    stats.set_defaults(handler=show_stats)


def prepare(args: argparse.Namespace) -> int:
    from emomusic.training import datasets

    chosen = tuple(s.strip() for s in args.datasets.split(",")) if args.datasets else None
    for name, n in datasets.prepare(args.data_root, chosen).items():
        print(f"{name}: {n} pieces cached")
    return 0


def show_stats(args: argparse.Namespace) -> int:
    from emomusic.training import datasets

    for row in datasets.stats(args.data_root):
        print(json.dumps(row))
    return 0
