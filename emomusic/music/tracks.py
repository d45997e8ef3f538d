"""A piece as named tracks for instruments: what an arrangement hands the exporters.

Why a type of its own rather than a track column in `Notes`: every stage before arranging (the
tokenizer, attributes, the recognizer, the selector) reads one piano part, and a drum note's pitch
names a drum, not a pitch, so it must never reach a key or register feature. An `Arrangement` keeps
each part as its own `Notes` (sharing the piece's tempo and metre) and says which part is the kit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from emomusic.music.notes import Notes

__all__ = ["Arrangement", "Track"]


@dataclass(frozen=True)
class Track:
    """One part: its name in a DAW, its General MIDI program (-1: the drum kit), its role and notes.

    role: what the part does in the arrangement ("melody", "chords", "bass", "inner", "drums", "piano").
    """

    name: str
    program: int
    role: str
    notes: Notes

    @property
    def drums(self) -> bool:
        """The drum kit: written on MIDI channel 10, its note numbers name drums."""
        return self.program < 0


@dataclass(frozen=True)
class Arrangement:
    """The tracks of one piece, in score order (melody first, drums last); `name` is the preset used."""

    tracks: tuple[Track, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if not self.tracks:
            raise ValueError("an arrangement needs at least one track")

    @property
    def tempo(self) -> float:
        """The piece's first tempo (every track shares it)."""
        return self.tracks[0].notes.tempo

    @property
    def time_signature(self) -> tuple[int, int]:
        """The piece's metre (every track shares it)."""
        return self.tracks[0].notes.time_signature

    @property
    def end(self) -> float:
        """Beat at which the last note of any track ends."""
        return max(t.notes.end for t in self.tracks)

    def pitched(self) -> Notes:
        """Every non-drum note merged into one part: what key, emotion and register judges read.

        Returns:
            A `Notes` with the first track's tempo, metre, tempo changes and meta, and the pedal of
            the piano tracks (program 0-7) when any has one.
        """
        parts = [t.notes for t in self.tracks if not t.drums]
        base = parts[0] if parts else self.tracks[0].notes
        if not parts:
            return base.select(np.zeros(len(base), dtype=bool))
        cat = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("pitch", "start", "duration", "velocity")}
        merged = Notes.from_arrays(cat["pitch"], cat["start"], cat["duration"], cat["velocity"], base.tempo,
                                   base.time_signature, **base.meta)
        pedals = [t.notes.pedals for t in self.tracks if 0 <= t.program < 8 and len(t.notes.pedals)]
        return replace(merged, tempos=base.tempos, pedals=pedals[0] if pedals else merged.pedals)
