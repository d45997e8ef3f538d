"""Every path and environment variable emomusic reads, resolved in one place.

Why one module: a setting read in two places drifts (the checkpoint folder once honoured
`$EMOMUSIC_CHECKPOINTS` in the pipeline but not in the recognizer). Every other module asks here.

| variable | what it sets | default |
|---|---|---|
| `EMOMUSIC_CHECKPOINTS` | the checkpoint folder | `checkpoints/` beside the package |
| `EMOMUSIC_DATA` | the datasets folder | `../shared/data` |
| `EMOMUSIC_CACHE` | prepared token/feature caches | `data/cache/` beside the package |
| `EMOMUSIC_SOUNDFONT` | the GM soundfont for WAV previews | Debian's FluidR3 / default GM |
| `EMOMUSIC_WORKERS` | processes a batch of candidates is sampled over | one per available core |
| `EMOMUSIC_DEBUG` | show tracebacks of internal errors | off |
| `HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE` | set to 1 (unless set) before the text encoder loads | 1 |
"""

from __future__ import annotations

import os
from pathlib import Path

from emomusic.errors import InvalidInputError

__all__ = ["CACHE_ENV", "CHECKPOINTS_ENV", "DATA_ENV", "DEBUG_ENV", "SOUNDFONT_ENV", "SYSTEM_SOUNDFONTS", "WORKERS_ENV",
           "cache_root", "checkpoints_root", "data_root", "debug", "repository_root", "user_cache_root",
           "soundfont_candidates", "soundfont_override", "workers"]

CHECKPOINTS_ENV = "EMOMUSIC_CHECKPOINTS"
DATA_ENV = "EMOMUSIC_DATA"
CACHE_ENV = "EMOMUSIC_CACHE"
SOUNDFONT_ENV = "EMOMUSIC_SOUNDFONT"
WORKERS_ENV = "EMOMUSIC_WORKERS"
DEBUG_ENV = "EMOMUSIC_DEBUG"

SYSTEM_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
                     "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")
"""Where Debian/Ubuntu (`fluid-soundfont-gm`) and Fedora/Arch put a General MIDI soundfont."""


def repository_root() -> Path:
    """The folder holding the `emomusic` package (the repository in an editable install)."""
    return Path(__file__).resolve().parents[1]


def checkpoints_root(path: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder: `path` when given, then $EMOMUSIC_CHECKPOINTS, then the shipped checkpoints/.

    Args:
        path: an explicit folder (a CLI `--checkpoints` value); returned as a Path unchanged.

    Returns:
        The folder to load components from (not checked here: loaders name the missing file).
    """
    if path is not None and str(path) != "":
        return Path(path)
    return Path(os.environ.get(CHECKPOINTS_ENV) or repository_root() / "checkpoints")


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The datasets folder: explicit path, then $EMOMUSIC_DATA, then ../shared/data.

    An explicit path that is not a folder is an error, never a silent fall-back to another dataset.

    Args:
        path: an explicit folder (`--data-root`), or None.

    Returns:
        The first candidate that is a folder.

    Raises:
        InvalidInputError: no candidate is a folder.
    """
    if path is not None and not Path(path).is_dir():
        raise InvalidInputError(f"{path}: data folder not found; pass --data-root DIR with the datasets in it")
    candidates = [path, os.environ.get(DATA_ENV), Path.cwd().parent / "shared" / "data",
                  repository_root().parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    raise InvalidInputError(
        f"data folder not found (tried {path or '../shared/data'}); pass --data-root DIR or set ${DATA_ENV}")


def cache_root() -> Path:
    """Where prepared caches go: $EMOMUSIC_CACHE or data/cache under the repository."""
    return Path(os.environ.get(CACHE_ENV) or repository_root() / "data" / "cache")


def user_cache_root() -> Path:
    """Where run-time caches go (e.g. the text prompts' prototype embeddings): the user's cache folder,
    $XDG_CACHE_HOME/emomusic or ~/.cache/emomusic, writable when the installed package is not."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emomusic"


def soundfont_override() -> str | None:
    """The soundfont named by $EMOMUSIC_SOUNDFONT, if any."""
    return os.environ.get(SOUNDFONT_ENV) or None


def soundfont_candidates() -> list[str | Path]:
    """Soundfont files to try in order: $EMOMUSIC_SOUNDFONT, then the system GM soundfonts.

    Returns:
        Paths, not checked for existence (the renderer takes the first that exists, then pretty_midi's own).
    """
    override = soundfont_override()
    return [*([override] if override else []), *SYSTEM_SOUNDFONTS]


def workers() -> int | None:
    """The process count $EMOMUSIC_WORKERS asks for (a positive integer), else None (one per core)."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else None


def debug() -> bool:
    """Whether $EMOMUSIC_DEBUG asks for tracebacks of internal errors."""
    return bool(os.environ.get(DEBUG_ENV))
