"""Accompanying a kept tune: the sampled notes stay under it and lean to the chord tones of the beat.

Why a sampling rule rather than fixing notes afterwards: moving a finished note down an octave or
dropping it changes the texture the model wrote (a chord loses its top, a figure jumps), while a rule
at the step the pitch is drawn lets the model pick another note it finds likely, in the register and
on the harmony left to it. `EmoMusic.transform` builds the table (`guidance.Accompaniment`) from the
kept melody (its pitch as a ceiling at each step, in its rests the lower of its last and next notes)
and the chords chosen for it; the pipeline still moves any note left above the tune (a held note the
tune later dips under) as a last resort.
"""

from __future__ import annotations

import numpy as np

from emomusic.generation.guidance import Accompaniment, Guidance
from emomusic.generation.processors.base import LogitsProcessor, type_span
from emomusic.generation.processors.state import RemiState, RemiTables
from emomusic.music.tokenizer import PITCH, MusicTokenizer


class Accompany(LogitsProcessor):
    """Per row with an `Accompaniment`: at the step the row is at (its bars so far and its position),
    pitches at or above the table's ceiling get -inf and every pitch gets its class's `favour`."""

    def __init__(self, tk: MusicTokenizer, tables: RemiTables, guides: list[Guidance],
                 beat_scale: float = 1.0) -> None:
        """beat_scale: quarter-note beats in one of the sampler's beats (4 / the metre's denominator)."""
        self.tables = tables
        self.tables_of: list[Accompaniment | None] = [g.accompany for g in guides]
        self.active = any(a is not None for a in self.tables_of)
        self.pitches = type_span(tk, PITCH)
        self.pitch_vals = tk.values[self.pitches].astype(np.int64)
        self.pitch_class = self.pitch_vals % 12
        self.beat_scale = float(beat_scale)

    def step_of(self, state: RemiState, row: int, acc: Accompaniment) -> int:
        """The table's step a row is at: its beats so far plus its position in the bar, on the table's grid."""
        beats = state.beats_before[row] + max(int(state.pos[row]), 0) / self.tables.positions_per_beat
        step = int(round(beats * self.beat_scale * acc.steps_per_beat))
        return min(max(step, 0), len(acc.ceiling) - 1)

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        for r, acc in enumerate(self.tables_of):
            if acc is None or not len(acc.ceiling):
                continue
            i = self.step_of(state, r, acc)
            row = logits[r, self.pitches]
            row += acc.favour[i, self.pitch_class].astype(np.float32)
            row[self.pitch_vals >= int(acc.ceiling[i])] = -np.inf
