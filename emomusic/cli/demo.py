"""`emomusic demo`: serve the Gradio demo (emomusic/apps/demo.py) until interrupted."""

from __future__ import annotations

import argparse

from emomusic.apps.demo import DEFAULT_MAX_UPLOAD_MB
from emomusic.cli._common import add_checkpoints, command, kernels_notice
from emomusic.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    de = command(sub, "demo", "start the Gradio demo in your browser")
    de.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every network)")
    de.add_argument("--port", type=int, default=7860, help="port to listen on (0: any free port)")
    add_checkpoints(de)
    de.add_argument("--generator", metavar="FOLDER", help="generate with this generator folder (e.g. one fine-tuned "
                    "with `emomusic train generator --data-dir`) instead of the checkpoints' generator/")
    de.add_argument("--out", help="folder for generated files (default: <tmp>/emomusic-demo)")
    de.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                    help="refuse uploads larger than this")
    de.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    de.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port must be between 0 and 65535, got {args.port}")
    kernels_notice()
    from emomusic.apps.demo import launch

    launch(host=args.host, port=args.port, checkpoints=args.checkpoints, out_dir=args.out,
           max_upload_mb=args.max_upload_mb, share=args.share, generator=args.generator)
    return 0
