"""A chord plan: each bar's pitches lean toward that bar's planned triad.

Why: with one static bonus for the tonic triad, generated pieces sat on the tonic chord in most bars
(a median 0.62 of them, real openings 0.28-0.36) and put three quarters of their notes on its pitch
classes. The plan (`conditioning.progressions`, learned from real progressions) moves the same bonus
from bar to bar, so the harmony moves the way real music of the emotion moves while the key and mode
stay as clear. The model still chooses register, rhythm, voicing and any note outside the chord.

A generator with bar chords (`MusicTokenizer.harmony`) is handed each bar's chord as its Harmony token
instead: the chord the model would name itself at the bar's start is replaced by the planned one, and the
model writes the bar knowing its chord (`training.harmony`), with no bonus on the pitches. The bonus on top
of the token kept the tonic bars as heavy as the static tilt had (tonic-triad share 0.735 against 0.642
with the token alone; docs/BENCHMARKS.md, "Bar chords the model reads").
"""

from __future__ import annotations

import numpy as np

from emomusic.generation.guidance import Guidance
from emomusic.generation.processors.base import LogitsProcessor, type_span
from emomusic.generation.processors.state import RemiState
from emomusic.music.tokenizer import BAR, HARMONY, PITCH, TIMESIG, MusicTokenizer
from emomusic.vocab.constants import TRIADS


def harmony_token(tk: MusicTokenizer, classes: tuple[int, ...]) -> int:
    """The Harmony token of the triad with exactly these pitch classes, or -1 (none, or no such token)."""
    if not tk.harmony:
        return -1
    want = {int(c) % 12 for c in classes}
    for q, intervals in enumerate(TRIADS.values()):
        for root in range(12):
            if {(root + k) % 12 for k in intervals} == want:
                return tk.harmony_id(root, q)
    return -1


def chord_table(g: Guidance) -> np.ndarray:
    """(bars, 12) float32: +chord_bias on each planned bar's chord tones, 0 elsewhere (no rows without a plan)."""
    if g.chords is None or g.tonic is None:
        return np.zeros((0, 12), dtype=np.float32)
    out = np.zeros((len(g.chords), 12), dtype=np.float32)
    for i, classes in enumerate(g.chords):
        out[i, list(classes)] = g.chord_bias
    return out


class ChordPlan(LogitsProcessor):
    """Per row with a plan: the pitch logits of the bar being written get its chord's `chord_table` row, or,
    for a generator with bar chords, the bar's Harmony token is the planned chord.

    Plans are aligned to the end of the call (its `n_bars`, counting the prefix's bars as the grammar
    does): a section sampled after the music before it, or after restated bars, gets the plan's last
    entries for the bars it writes. A bar before the plan's start takes its first chord."""

    def __init__(self, tk: MusicTokenizer, guides: list[Guidance], n_bars: int) -> None:
        self.n_bars = int(n_bars)
        tables = [chord_table(g) for g in guides]
        self.length = np.array([len(t) for t in tables], dtype=np.int64)
        self.active = bool(self.length.any())
        table = np.zeros((len(guides), max(int(self.length.max(initial=0)), 1), 12), dtype=np.float32)
        for r, t in enumerate(tables):
            table[r, : len(t)] = t
        self.pitches = type_span(tk, PITCH)
        self.harmony = np.flatnonzero(tk.types == HARMONY)
        if len(self.harmony):
            table[:] = 0.0  # the chord is the token's to carry
        tokens = np.full(table.shape[:2], -1, dtype=np.int64)  # each row's planned bars as Harmony tokens
        for r, g in enumerate(guides):
            for b, classes in enumerate(g.chords if g.chords is not None and g.tonic is not None else ()):
                tokens[r, b] = harmony_token(tk, classes)
        self.tokens = tokens
        # each row's bars spelled out over the pitch ids once, so a step is one gather and one slice add
        self.expanded = table[:, :, tk.values[self.pitches].astype(np.int64) % 12]
        self.rows = np.arange(len(guides))
        self.last = np.maximum(self.length - 1, 0)
        self._bars_seen = np.full(len(guides), -1, dtype=np.int64)  # the bars the cached tilt is for
        self._tilt = self.expanded[:, 0]
        self._token = np.full(len(guides), -1, dtype=np.int64)

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        if not np.array_equal(state.bars, self._bars_seen):  # a bar changes once in dozens of steps
            self._bars_seen = state.bars.copy()
            bar = np.clip(self.length - 1 - (self.n_bars - state.bars), 0, self.last)
            self._tilt = self.expanded[self.rows, bar]
            self._token = np.where(self.length > 0, self.tokens[self.rows, bar], -1)
        if not len(self.harmony):
            logits[:, self.pitches] += self._tilt
        else:
            rows = np.flatnonzero(((state.prev_type == BAR) | (state.prev_type == TIMESIG)) & (self._token >= 0))
            if len(rows):  # the bar's chord: the planned one, with the chance the model gave naming any chord
                h = logits[np.ix_(rows, self.harmony)]
                top = h.max(axis=1)
                mass = top + np.log(np.exp(h - top[:, None]).sum(axis=1))
                logits[np.ix_(rows, self.harmony)] = -np.inf
                logits[rows, self._token[rows]] = np.where(np.isfinite(mass), mass, 0.0)
