"""A prepared cadence: the dominant in the bar before the last, the tonic triad in the last.

Why: the generator does not know where a piece ends, and the ending rule (`music.form.close_on_tonic`)
used to drop a tonic chord onto the last bar after whatever harmony the model had reached. In the
last half bar before the final one, generated pieces sat on the tonic already in 0.62 of 80 pieces
and on the dominant in 0.12; real endings have the dominant there in 0.14 (POP909), 0.31 (ASAP scores)
and 0.56 (Nottingham) of pieces. A musician approaches the final chord from the dominant (V or V7, the
leading tone rising to the tonic), and the last bar's own figures stay on the tonic chord. The rule
tilts only pitch choice, and only in those bars; the model still chooses register, rhythm and voicing.
"""

from __future__ import annotations

import numpy as np

from emomusic.generation.guidance import Guidance
from emomusic.generation.processors.base import LogitsProcessor, type_span
from emomusic.generation.processors.state import RemiState, RemiTables
from emomusic.music.attributes import tonic_triad
from emomusic.music.tokenizer import PITCH, MusicTokenizer

# scale degrees as semitones above the tonic
DOMINANT_SEVENTH = (7, 11, 2, 5)  # V7: its root, the leading tone (raised in minor too), the fifth, the seventh


def cadence_tables(g: Guidance) -> np.ndarray:
    """(2, 12) float32: the tilt of each pitch class before the last bar (row 0) and in it (row 1).

    Row 0: +cadence for the dominant seventh's pitch classes, -cadence for the others; row 1 the same for
    the tonic triad's (major or minor third by the mode). Zeros without a key or a cadence.
    """
    out = np.zeros((2, 12), dtype=np.float32)
    if not g.cadence or g.tonic is None or g.mode is None:
        return out
    dominant = [(g.tonic + d) % 12 for d in DOMINANT_SEVENTH]
    for row, classes in enumerate((dominant, tonic_triad(g.tonic, g.mode))):
        favoured = np.zeros(12, dtype=bool)
        favoured[list(classes)] = True
        out[row] = np.where(favoured, g.cadence, -g.cadence)
    return out


class Cadence(LogitsProcessor):
    """Per row with a key and `cadence` set: in the second half of the bar before the last (its notes'
    onsets from the bar's middle), pitch logits get the dominant seventh's tilt; in the last bar, the
    tonic triad's (`cadence_tables`). Bars count the prefix's, as the grammar's `n_bars` does."""

    def __init__(self, tk: MusicTokenizer, tables: RemiTables, guides: list[Guidance], n_bars: int) -> None:
        self.tables, self.n_bars = tables, int(n_bars)
        self.tilt = np.stack([cadence_tables(g) for g in guides])  # (rows, 2, 12)
        self.active = bool(self.tilt.any())
        self.pitches = type_span(tk, PITCH)
        self.pitch_class = tk.values[self.pitches].astype(np.int64) % 12

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        before = (state.bars == self.n_bars - 1) & (2 * state.pos >= state.bar_len)
        last = state.bars == self.n_bars
        for r in np.flatnonzero(before | last):
            logits[r, self.pitches] += self.tilt[r, int(last[r]), self.pitch_class]
