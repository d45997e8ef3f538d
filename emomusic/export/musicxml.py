"""MusicXML output (`.musicxml`) for notation programs (MuseScore, Dorico, Sibelius, Finale).

The score is made from exactly the MIDI file `export_midi` would write (same cleaned notes, same key
signature from `written_key`), read back by music21, so the two formats of one piece always agree.
music21 is imported only here and only when a score is written: it is slow to import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from emomusic.export.midi import build_midi_file
from emomusic.io import atomic_write
from emomusic.music.notes import Notes

__all__ = ["export_musicxml"]


def export_musicxml(notes: Notes, path: str | os.PathLike, *, force: bool = False,
                    key: tuple[int, str] | None = None) -> Path:
    """Write `notes` as MusicXML, atomically.

    Args:
        notes: the piece.
        path: the file to create.
        force: replace an existing file.
        key: (tonic pitch class, "major"|"minor"); None estimates it, as for MIDI.

    Returns:
        `path` as a Path.

    Raises:
        InvalidInputError: as `export_midi` (existing file, missing folder, notes MIDI cannot hold).
    """
    mid = build_midi_file(notes, key=key)

    def write(tmp: Path) -> None:
        import music21

        with tempfile.TemporaryDirectory(prefix="emomusic-") as tmpdir:
            midi_path = Path(tmpdir) / "score.mid"
            mid.save(str(midi_path))
            score = music21.converter.parse(str(midi_path), format="midi")
        score.write("musicxml", fp=str(tmp))

    return atomic_write(path, write, force)
