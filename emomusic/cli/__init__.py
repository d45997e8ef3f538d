"""The `emomusic` command: a thin caller of the Python API, one module per command.

    emomusic generate | analyze | project | attributes | words | evaluate | train <component> |
             data prepare|stats | demo | warmup

Each command module has `add_parser(sub)` (its flags, every one with help and default) and a handler
set with `set_defaults(handler=...)`. Every user error ends as one line on stderr and exit code 2, with
no traceback and no output file left behind. Heavy modules (torch, models) are imported inside the
handlers that need them, so `emomusic --help` and the attribute lookup start fast.
"""

from __future__ import annotations

import importlib
import sys

from emomusic.cli._common import HelpFormatter, Parser, error, missing_package
from emomusic.errors import InvalidInputError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = ("generate", "continuation", "infill", "transform", "regenerate", "analyze", "project", "attributes",
            "words", "evaluate", "train", "data", "demo", "warmup")
"""The command modules, in help order; each registers its command (`continuation` registers `continue`)."""
"""Command words in the order `emomusic --help` lists them; each is the module emomusic.cli.<word>."""


def build_parser() -> Parser:
    """The full argument parser (every command registers its own flags)."""
    from emomusic import __version__

    parser = Parser(prog="emomusic", description="Emotion-conditioned music generation and analysis.",
                    formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"emomusic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"emomusic.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code.

    User and environment errors (bad input, damaged checkpoint, a missing optional package, disk full,
    permission denied, out of memory) are one stderr line and exit 2. Anything else is a bug: one line
    and exit 1, with the traceback only when $EMOMUSIC_DEBUG is set (`emomusic.settings.debug`).
    """
    from emomusic.settings import debug

    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except InvalidInputError as exc:  # includes CheckpointError
        return error(str(exc) or type(exc).__name__)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else error(exc.code)
    except KeyboardInterrupt:
        print("emomusic: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return error("out of memory; try fewer --bars or --candidates, or a smaller input file")
    except ModuleNotFoundError as exc:
        hint = missing_package(exc)
        if hint is None:
            if debug():
                raise
            return _internal(exc)
        return error(hint)
    except OSError as exc:  # disk full, permission denied, read-only folder, …
        where = f"{exc.filename}: " if exc.filename else ""
        return error(f"{where}{exc.strerror or exc}; check the path, its permissions and free disk space")
    except Exception as exc:
        if debug():
            raise
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    return error(f"internal error ({type(exc).__name__}: {exc}); please report it, and set "
                 "EMOMUSIC_DEBUG=1 to see the traceback", code=1)

