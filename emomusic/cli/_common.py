"""What every `emomusic` command shares: the parser conventions, the one-line errors and notices, the flags.

Conventions (tested in tests/test_cli.py): every flag has help text and its help shows the default;
usage errors are one line and exit 2 (never argparse's usage block); notices (a corrected typo, a
conflict settled) are one stderr line each, so stdout stays the result alone (one JSON object with --json).
Nothing heavy is imported here: `emomusic --help` must start fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emomusic.errors import InvalidInputError

EXIT_USAGE = 2

# Optional packages → the pip extra that installs them (pyproject's [project.optional-dependencies]),
# for the one-line error when a command reaches one that is missing.
OPTIONAL_PACKAGES = {
    "librosa": "audio", "soundfile": "audio", "fluidsynth": "audio",
    "tokenizers": "text", "vaderSentiment": "text",
    "PIL": "vision", "av": "vision",
    "gradio": "demo", "gradio_client": "demo",
}


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (exit 2) instead of a usage block."""

    def error(self, message: str) -> None:  # noqa: D401
        raise InvalidInputError(f"{message} (see `{self.prog} --help`)")


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to every option with a real default.

    Unlike argparse.ArgumentDefaultsHelpFormatter it leaves out "(default: None)" and "(default: False)":
    an option without a default says in its own help what happens when it is left out.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def command(sub: argparse._SubParsersAction, name: str, summary: str, description: str | None = None) -> Parser:
    """A subcommand parser with the shared conventions (one-line errors, defaults in the help).

    Args:
        sub: the parent's subparsers.
        name: the command word.
        summary: one line for the parent's command list.
        description: the command's own --help text (default: the summary).

    Returns:
        The new parser; the caller adds its flags and `set_defaults(handler=...)`.
    """
    return sub.add_parser(name, help=summary, description=description or summary, formatter_class=HelpFormatter)


def subcommands(parser: argparse.ArgumentParser, dest: str, title: str) -> argparse._SubParsersAction:
    """Required nested subcommands (`train generator`, `data prepare`) with the shared parser class."""
    return parser.add_subparsers(dest=dest, required=True, metavar=title, parser_class=Parser)


def add_checkpoints(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", help="checkpoint folder (default: $EMOMUSIC_CHECKPOINTS, else the shipped "
                   "checkpoints/; 'debug': a tiny random model for trying things out)")


def add_json(p: argparse.ArgumentParser, what: str = "the result") -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as one JSON object per line")


def add_mood_flags(p: argparse.ArgumentParser) -> None:
    """--emotion/--valence/--arousal/--intensity/--genre/--tempo: the explicit settings, which win over prompts."""
    p.add_argument("--emotion", help="emotion word (calm, sad, happy, angry, …; see `emomusic words`) or Q1..Q4; "
                   "wins over prompts")
    p.add_argument("--valence", type=float, help="valence in [-1, 1], with --arousal; wins over --emotion "
                   "(which fills a missing axis) and prompts")
    p.add_argument("--arousal", type=float, help="arousal in [-1, 1], with --valence; wins over --emotion "
                   "and prompts")
    from emomusic.vocab.constants import TIME_SIGNATURES
    from emomusic.vocab.emotions import GENRE_STANDINS, GENRES, INTENSIFIERS, INTENSITY_RANGE

    standins = ", ".join(f"{g} → {t}" for g, t in GENRE_STANDINS.items())
    p.add_argument("--intensity", type=float, metavar="X", help=f"how strongly the mood is meant, "
                   f"{INTENSITY_RANGE[0]:g}–{INTENSITY_RANGE[1]:g}: 0 = neutral, 1 = the word as it is, 2 = as "
                   "extreme as its direction goes; wins over a prompt's degree word "
                   f"({', '.join(INTENSIFIERS)}) (default: the prompt's, else 1)")
    p.add_argument("--genre", help=f"{', '.join(GENRES)}; also {standins}: no training data, so the genre after "
                   "the arrow is generated and a note says so (see `emomusic words`); wins over prompts "
                   "(default: from the prompt, else pop)")
    p.add_argument("--tempo", type=float, help="tempo in BPM, written exactly; wins over prompts (default: "
                   "the chosen attributes' tempo)")
    metres = " ".join(f"{n}/{d}" for n, d in TIME_SIGNATURES)
    p.add_argument("--time-signature", metavar="N/D", help=f"metre: {metres}; wins over prompts (default: the "
                   "prompt's, e.g. 'waltz', else 4/4)")


def add_prompt_flags(p: argparse.ArgumentParser) -> None:
    """One flag per prompt kind, built from the registry: a new kind needs no edit here."""
    from emomusic.prompt.registry import PROMPT_KINDS

    for kind in PROMPT_KINDS.values():
        p.add_argument(kind.flag, dest=kind.name, metavar="FILE" if kind.is_file else "TEXT", help=kind.help)


def prompt_values(args: argparse.Namespace) -> dict[str, Any]:
    """The prompt kinds given on the command line: kind name → text or path."""
    from emomusic.prompt.registry import PROMPT_KINDS

    return {name: getattr(args, name) for name in PROMPT_KINDS if getattr(args, name, None) is not None}


def output_formats() -> str:
    """The output suffixes `--out` accepts, for help texts and errors (e.g. ".mid, .midi, .musicxml")."""
    from emomusic.export import FORMATS

    return ", ".join(FORMATS)


def check_new_file(path: Path, force: bool) -> None:
    """Refuse to replace an existing file unless --force (checked before any work is done)."""
    if path.exists() and not force:
        raise InvalidInputError(f"{path}: already exists; pass --force to overwrite")


def printable(text: str) -> str:
    """One line with control characters escaped, so a hostile file name cannot break or drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def error(message: str, code: int = EXIT_USAGE) -> int:
    """Print the one-line error to stderr; returns the exit code to end with."""
    print(f"emomusic: error: {printable(message)}", file=sys.stderr)
    return code


def note(message: str) -> None:
    """One stderr line the user should see (a typo corrected, a conflict settled) without failing."""
    print(f"emomusic: note: {printable(message)}", file=sys.stderr)


def missing_package(exc: ModuleNotFoundError) -> str | None:
    """The one-line install hint for a missing optional package, or None when it is not one of ours."""
    name = (exc.name or "").split(".")[0]
    extra = OPTIONAL_PACKAGES.get(name)
    if extra is None:
        return None
    return f"this needs the optional package {name!r}: pip install 'emomusic[{extra}]'"


def kernels_notice() -> None:
    """Before the first generation on a machine: say that the sampling kernels are being built, build them.

    Without it the first `emomusic generate` after an install sat silent for seconds (numba compiling).
    """
    from emomusic.generation.compiled import build, is_built

    if is_built():
        return
    note("building the sampling kernels once for this machine (about 10-15 s; `emomusic warmup` does it ahead)")
    seconds = build()
    note(f"sampling kernels ready ({seconds:.1f} s)")
