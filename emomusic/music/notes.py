"""A flat, array-based view of a (piano) piece that every stage shares.

Attributes, the tokenizer windows and the exporter all work on the same `Notes`: times are in
quarter-note beats, so features do not depend on a file's ticks-per-quarter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emomusic.vocab.constants import PIANO_BOTTOM, PIANO_TOP


@dataclass(frozen=True)
class Notes:
    """Notes of one piece, sorted by (start, pitch).

    pitch: MIDI numbers; start, duration: quarter-note beats; velocity: 1..127.
    tempo: beats per minute (first tempo of the piece); time_signature: (numerator, denominator).
    pedals: sustain-pedal presses, (k, 2) [down, up] in beats, sorted and not overlapping (empty: none).
    tempos: tempo changes after the first, (k, 2) [beat, BPM], sorted by beat, each after beat 0
        (empty: `tempo` throughout). A piece whose sections move between emotions ramps its tempo.
    """

    pitch: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    velocity: np.ndarray
    tempo: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    meta: dict = field(default_factory=dict, compare=False)
    pedals: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), compare=False)
    tempos: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), compare=False)

    def __post_init__(self) -> None:
        n = len(self.pitch)
        if not (len(self.start) == len(self.duration) == len(self.velocity) == n):
            raise ValueError("Notes arrays must all have the same length")
        if np.shape(self.pedals) != (len(self.pedals), 2):
            raise ValueError("pedals must be a (k, 2) array of [down, up] beats")
        if np.shape(self.tempos) != (len(self.tempos), 2):
            raise ValueError("tempos must be a (k, 2) array of [beat, BPM] changes")

    @classmethod
    def from_arrays(
        cls,
        pitch,
        start,
        duration,
        velocity,
        tempo: float = 120.0,
        time_signature: tuple[int, int] = (4, 4),
        **meta,
    ) -> Notes:
        """Build sorted, typed arrays from any sequences."""
        pitch = np.asarray(pitch, dtype=np.int16)
        start = np.asarray(start, dtype=np.float64)
        duration = np.asarray(duration, dtype=np.float64)
        velocity = np.asarray(velocity, dtype=np.int16)
        order = np.lexsort((pitch, start))
        return cls(
            pitch[order], start[order], duration[order], velocity[order],
            float(tempo), (int(time_signature[0]), int(time_signature[1])), dict(meta),
        )

    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def beats_per_bar(self) -> float:
        """Length of one bar in quarter-note beats."""
        num, den = self.time_signature
        return num * 4.0 / den

    @property
    def end(self) -> float:
        """Time (beats) at which the last note ends."""
        return float((self.start + self.duration).max()) if len(self) else 0.0

    @property
    def n_bars(self) -> int:
        """Number of bars the piece spans (at least 1)."""
        return max(1, int(np.ceil(self.end / self.beats_per_bar - 1e-9)))

    def seconds(self, beat: float) -> float:
        """Seconds from the start to `beat` (quarter-note beats), under the tempo and its changes."""
        marks = np.concatenate([[[0.0, self.tempo]], np.asarray(self.tempos, dtype=np.float64).reshape(-1, 2)])
        edges = np.append(np.minimum(marks[1:, 0], beat), beat)
        spans = np.maximum(0.0, edges - np.minimum(marks[:, 0], beat))
        return float((spans * 60.0 / marks[:, 1]).sum())

    def transpose(self, semitones: int) -> Notes:
        """The same notes shifted by `semitones`, clipped to the piano's keys (A0..C8)."""
        pitch = np.clip(self.pitch + semitones, PIANO_BOTTOM, PIANO_TOP).astype(np.int16)
        return Notes(pitch, self.start, self.duration, self.velocity, self.tempo, self.time_signature,
                     dict(self.meta), self.pedals, self.tempos)

    def select(self, keep: np.ndarray) -> Notes:
        """The notes where `keep` (a bool mask or indices) says so; tempo, metre, pedals and meta kept."""
        return Notes(self.pitch[keep], self.start[keep], self.duration[keep], self.velocity[keep], self.tempo,
                     self.time_signature, dict(self.meta), self.pedals, self.tempos)

    def deduplicate(self) -> Notes:
        """One note per (pitch, onset): the longest (then loudest) of each group is kept.

        A piano cannot strike one key twice at once, and a MIDI file cannot hold two such notes
        faithfully (writers drop one), so counts reported about a piece must not include them.

        Returns:
            This piece when it has no duplicates, else a new `Notes` without them (same order rule).
        """
        if len(self) < 2:
            return self
        order = np.lexsort((-self.velocity, -self.duration, np.round(self.start, 6), self.pitch))
        p, s = self.pitch[order], np.round(self.start[order], 6)
        dup = np.zeros(len(self), dtype=bool)
        dup[1:] = (p[1:] == p[:-1]) & (s[1:] == s[:-1])
        if not dup.any():
            return self
        return self.select(np.sort(order[~dup]))  # the arrays are already sorted by (start, pitch)

    def truncate(self, n_bars: int) -> Notes:
        """The first `n_bars` bars: later notes dropped, notes ringing past the end cut (a loopable length).

        Args:
            n_bars: bars to keep, in this piece's metre.

        Returns:
            A new `Notes` (same tempo, metre and meta; tempo changes past the end dropped).
        """
        end = n_bars * self.beats_per_bar
        keep = self.start < end - 1e-6
        dur = np.minimum(self.duration[keep], end - self.start[keep])
        ped = self.pedals[self.pedals[:, 0] < end - 1e-6]
        ped = np.stack([ped[:, 0], np.minimum(ped[:, 1], end)], axis=1) if len(ped) else ped
        return Notes(self.pitch[keep], self.start[keep], dur, self.velocity[keep], self.tempo,
                     self.time_signature, dict(self.meta), ped, self.tempos[self.tempos[:, 0] < end - 1e-6])
