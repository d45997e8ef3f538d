"""MusicXML output (`.musicxml`) for notation programs (MuseScore, Dorico, Sibelius, Finale).

The score is made from exactly the MIDI file `export_midi` would write (same cleaned notes, same key
signature from `written_key`), read back by music21, so the two formats of one piece always agree.
music21 does not read the sustain pedal (CC64) from MIDI, so each press is added back as a pedal
mark (Ped. ... *) over the notes it holds.
music21 is imported only here and only when a score is written: it is slow to import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from emomusic.export.midi import build_midi_file
from emomusic.io import atomic_write
from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement

__all__ = ["export_musicxml"]


def export_musicxml(notes: Notes | Arrangement, path: str | os.PathLike, *, force: bool = False,
                    key: tuple[int, str] | None = None) -> Path:
    """Write `notes` as MusicXML, atomically.

    Args:
        notes: the piece: one part, or an `Arrangement` (one part per track, named as the track).
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
        tracks = notes.tracks if isinstance(notes, Arrangement) else None
        for i, part in enumerate(score.parts):
            held = tracks[i].notes if tracks is not None and i < len(tracks) else notes if i == 0 else None
            if held is not None:
                _add_pedals(part, held)
        score.write("musicxml", fp=str(tmp))

    return atomic_write(path, write, force)


def _add_pedals(part, notes: Notes) -> None:
    """A music21 pedal mark over the notes and chords of `part` that start inside each of `notes.pedals`' presses."""
    from music21 import expressions

    if not len(notes.pedals):
        return
    events = sorted(part.recurse().notes, key=lambda n: n.getOffsetInHierarchy(part))
    offsets = [float(n.getOffsetInHierarchy(part)) for n in events]
    for down, up in notes.pedals:
        held = [n for n, t in zip(events, offsets, strict=True) if down - 1e-6 <= t < up - 1e-6]
        if held:
            part.insert(0, expressions.PedalMark(held[0], held[-1]))
