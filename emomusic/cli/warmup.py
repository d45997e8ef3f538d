"""`emomusic warmup`: build what the first generation would otherwise build while you wait.

After an install, the sampler's compiled kernels are built on first use (seconds, once per machine),
and a text prompt's prototype sentences are embedded once (cached in the user cache folder). This
command does both now, e.g. in a Dockerfile or a setup script.
"""

from __future__ import annotations

import argparse
import time

from emomusic.cli._common import command


def add_parser(sub: argparse._SubParsersAction) -> None:
    w = command(sub, "warmup", "build the sampling kernels and text-prompt caches ahead of the first generation")
    w.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the kernels (and the text prototypes where the [text] extra is installed); one line each."""
    from emomusic.generation.compiled import build

    seconds = build()
    print(f"sampling kernels ready ({seconds:.1f} s)")
    from emomusic.prompt import text

    if text.embedding_available():
        t0 = time.perf_counter()
        text._prototype_bank(text._encoder())
        print(f"text-prompt encoder ready ({time.perf_counter() - t0:.1f} s)")
    else:
        print("text-prompt encoder: not installed (pip install 'emomusic[text]'); prompts use the word lexicon")
    return 0
