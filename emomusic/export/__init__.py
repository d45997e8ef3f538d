"""Writing pieces out, chosen by the file suffix: `write(notes, "x.musicxml")`.

`FORMATS` maps each suffix to a `Format` (what it is, and the function that writes it). Adding a format
is one module with a writer `(notes, path, *, force[, key]) -> Path` that writes through
`emomusic.io.atomic_write`, plus one line here. Writers are imported only when used, so writing MIDI
never imports music21 (MusicXML) or matplotlib (piano rolls).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emomusic.errors import InvalidInputError
from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement

__all__ = ["FORMATS", "Format", "write"]


@dataclass(frozen=True)
class Format:
    """One output format: a description for help texts and the writer, named "module:function".

    The writer is named, not imported, so listing the formats (CLI help, error messages) costs nothing.
    `extra` is the optional-dependency group the writer may need, for the one-line error when it is missing.
    """

    description: str
    writer: str
    keyed: bool = True  # the writer takes `key=` (formats that declare a key signature)
    tagged: bool = False  # the writer takes `provenance=` (formats that carry the request in the file)
    extra: str | None = None

    def load(self) -> Callable[..., Path]:
        """The writer function, imported on first use."""
        module, _, func = self.writer.partition(":")
        return getattr(importlib.import_module(module), func)


FORMATS: dict[str, Format] = {
    ".mid": Format("Standard MIDI File for DAWs (type 1, 480 ticks per beat)", "emomusic.export.midi:export_midi",
                   tagged=True),
    ".midi": Format("Standard MIDI File (same as .mid)", "emomusic.export.midi:export_midi", tagged=True),
    ".musicxml": Format("MusicXML score for notation programs", "emomusic.export.musicxml:export_musicxml"),
    ".wav": Format("audio preview (FluidSynth with a GM soundfont, else sine tones)",
                   "emomusic.export.render:render_wav", keyed=False, extra="audio"),
    ".png": Format("piano-roll picture", "emomusic.export.render:piano_roll_png", keyed=False),
}
"""Suffix (lower case, with the dot) → format. The order is the order help texts list them in."""


def write(notes: Notes | Arrangement, path: str | os.PathLike, *, force: bool = False,
          key: tuple[int, str] | None = None, provenance: dict | None = None) -> Path:
    """Write `notes` in the format its suffix names, atomically.

    Args:
        notes: the piece: one part, or an `Arrangement` (every format writes its tracks).
        path: the file to create; its suffix (any case) picks the format.
        force: replace an existing file.
        key: (tonic pitch class, "major"|"minor") for formats that declare a key; None estimates it.
        provenance: the request the piece was made from, for formats that carry it (MIDI); others ignore it.

    Returns:
        `path` as a Path.

    Raises:
        InvalidInputError: an unknown suffix (the message lists the formats), a writer's own input errors,
            or a missing optional dependency (one line naming the pip extra).
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(FORMATS)
        got = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise InvalidInputError(f"{path}: {got} is not an output format; use one of {known}")
    try:
        writer = fmt.load()
        extra = {"provenance": provenance} if fmt.tagged and provenance else {}
        return (writer(notes, path, force=force, key=key, **extra) if fmt.keyed
                else writer(notes, path, force=force, **extra))
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "emomusic":
            raise
        extra = f"pip install 'emomusic[{fmt.extra}]'" if fmt.extra else f"pip install {exc.name}"
        raise InvalidInputError(f"writing {path.suffix} needs the optional package {exc.name!r}: {extra}") from None
