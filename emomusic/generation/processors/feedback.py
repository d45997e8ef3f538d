"""Closed-loop guidance for what a running count can steer: note density, register, held chord tones.

A static bias cannot hit a notes-per-beat target (the model decides chord sizes and onset gaps one
token at a time), so each step compares what has been written so far with the target and tilts the
next choice: too dense -> fewer notes per onset and longer gaps; register too high -> pitch logits
tilted downward, and the reverse. With a key asked and `triad_hold` set, a note's duration is tilted
by its pitch: tonic-triad notes longer, others shorter. Density and register have compiled twins
(each is ~15 numpy calls a step otherwise); the duration tilt, off by default, is numpy only.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from emomusic.generation.guidance import Guidance
from emomusic.generation.processors.base import LogitsProcessor, type_span
from emomusic.generation.processors.state import STATE_TYPE, TABLES_TYPE, RemiState, RemiTables
from emomusic.music.attributes import tonic_triad
from emomusic.music.tokenizer import DURATION, PITCH, POSITION, MusicTokenizer

# Bars the density count looks back (`DensityFeedback`). Counted from the start of a draw,
# the surplus of a long piece's dense first half held its second half to silence: a through-composed sad
# piece of 64 bars (seed 1,300,003) wrote bars 34-42 empty, past the stall guard's retries, then one G3 a
# bar to the end. 16: a draw of up to 16 bars still counts from its start, so pieces of up to 16 bars, and
# the default form plans at 32 and 64 bars (8-bar sections), are written as before, note for note.
HORIZON_BARS = 16


class _Horizon:
    """Each row's counts (notes, beats) at the start of each bar it writes, so that the density count can
    start `HORIZON_BARS` bars back instead of at the draw's start.

    Recorded when a row stands at a bar's start (after its Bar token; the prefix's bars too, when it
    counts: `see`) and read when a row's bar count changes; a bar written again after the stall guard's
    roll back is recorded again before it is read.
    """

    def __init__(self, rows: int, base: tuple[np.ndarray, np.ndarray]) -> None:
        self.base = base  # the counts at the draw's start (what is left out of them)
        self.now = tuple(b.copy() for b in base)  # the counts left out at this step
        self.snap = np.zeros((2, rows, 4 * HORIZON_BARS + 1))
        self.recorded = np.zeros((rows, 4 * HORIZON_BARS + 1), dtype=bool)
        self.bars = np.full(rows, -1, dtype=np.int64)

    def record(self, s: RemiState) -> None:
        """Note the counts of the rows that stand at a bar's start.

        Args:
            s: the rows' state.
        """
        at = s.pos < 0
        if at.any():  # (most steps: none; each numpy call here is a share of the step's time)
            at = np.flatnonzero(at)
            k = s.bars[at]
            if k.max() >= self.recorded.shape[1]:
                more = int(k.max()) + 4 * HORIZON_BARS - self.recorded.shape[1]
                self.snap = np.pad(self.snap, ((0, 0), (0, 0), (0, more)))
                self.recorded = np.pad(self.recorded, ((0, 0), (0, more)))
            self.snap[:, at, k] = s.n_notes[at], s.beats_before[at]
            self.recorded[at, k] = True

    def update(self, s: RemiState) -> tuple[np.ndarray, np.ndarray]:
        """The counts to leave out at this step: the draw's start, or the start of `HORIZON_BARS` bars ago.

        Args:
            s: the rows' state before this step's token.

        Returns:
            (notes, beats) per row.
        """
        self.record(s)
        moved = s.bars != self.bars
        if moved.any():
            moved = np.flatnonzero(moved)
            self.bars[moved] = s.bars[moved]
            back = s.bars[moved] - HORIZON_BARS + 1  # the first bar of the last HORIZON_BARS
            inside = np.clip(back, 0, self.recorded.shape[1] - 1)
            use = (back > 1) & self.recorded[moved, inside]
            for now, base, snap in zip(self.now, self.base, self.snap, strict=True):
                now[moved] = np.where(use, snap[moved, inside], base[moved])
        return self.now


def _before(tables: RemiTables, rows: int, start: RemiState | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(notes, beats, pitch sum) each row had written before the draw began (zeros without a `start`)."""
    if start is None:
        return np.zeros(rows), np.zeros(rows), np.zeros(rows)
    return (start.n_notes.astype(np.float64),
            start.beats_before + np.maximum(start.pos, 0) / tables.positions_per_beat,
            start.pitch_sum.astype(np.float64))


class DensityFeedback(LogitsProcessor):
    """Steer notes per beat to each row's `density`: lr = clip(log((notes + 1) / (target·beats + 1)), ±2)·gain.

    After a note's Duration, another Pitch (a larger chord) gets -lr; where time may move on, a Position
    `gap` beats ahead (clipped to 0..4) gets +lr·gap, and so does the Bar token, whose gap is the rest of
    the bar: left out, a piece behind its count found every far Position penalised and the next bar
    not, and skipped the rest of the bar (an untrained model wrote an empty first bar at gain 2.5).
    Beats so far count at least 1. With a `start`
    (the state after a prefix written to other targets: a trajectory's earlier sections) only what this
    draw writes counts: counting a tense section's surplus held the sad section after it to sparse chords.
    Notes and beats count from `HORIZON_BARS` bars back at most.
    """

    compiled = True

    def __init__(self, tk: MusicTokenizer, tables: RemiTables, guides: list[Guidance],
                 start: RemiState | None = None) -> None:
        self.tables, self.table_args = tables, tuple(tables)  # the compiled twin takes plain tuples (see state)
        self.horizon = _Horizon(len(guides), _before(tables, len(guides), start)[:2])
        self.counts_prefix = start is None
        has = np.array([bool(g.density) for g in guides])
        self.target = np.array([g.density if g.density else 1.0 for g in guides], dtype=np.float64)
        self.gain = np.where(has, [g.density_gain for g in guides], 0.0).astype(np.float64)
        self.active = bool(has.any())
        self.pitches, self.positions = type_span(tk, PITCH), type_span(tk, POSITION)
        self.beats = tk.values[tk.ids_of_type(POSITION)].astype(np.float64)  # Position tokens' beats in the bar

    def see(self, state: RemiState) -> None:
        if self.counts_prefix:
            self.horizon.record(state)

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        t, s = self.tables, state
        notes0, beats0 = self.horizon.update(s)
        cur = np.maximum(s.pos, 0) / t.positions_per_beat
        beats = np.maximum(s.beats_before + cur - beats0, 1.0)
        lr = np.clip(np.log((s.n_notes - notes0 + 1) / (self.target * beats + 1)), -2, 2) * self.gain
        chord = s.prev_type == t.duration_type  # another Pitch here = one more note at this onset
        if chord.any():
            logits[chord, self.pitches] -= lr[chord, None]
        advance = t.advances[s.prev_type]
        if advance.any():
            gap = np.clip(self.beats[None, :] - cur[advance, None], 0, 4)
            logits[advance, self.positions] += lr[advance, None] * gap
            rest = np.clip(s.bar_len[advance] / t.positions_per_beat - cur[advance], 0, 4)
            logits[advance, t.bar_id] += lr[advance] * rest

    def __call__(self, state: RemiState, logits: np.ndarray) -> None:
        notes0, beats0 = self.horizon.update(state)
        _density(logits, self.target, self.gain, notes0, beats0, self.pitches.start,
                 self.pitches.stop - self.pitches.start, self.positions.start, self.beats, self.table_args,
                 tuple(state))


class RegisterFeedback(LogitsProcessor):
    """Steer each row's mean pitch to its `pitch_mean`: pitch p gets λ·(p - target)/12 with
    λ = clip(gain/4 · (target - running mean), ±3), the running mean starting from 8 notes at the target
    and, with a `start`, counting only what this draw writes (as `DensityFeedback`). Unlike the density,
    from the draw's start: counted over `HORIZON_BARS` bars too, a sad piece of 64 bars (seed 1,300,008)
    fell silent for the 8 bars before its final chord."""

    compiled = True

    def __init__(self, tk: MusicTokenizer, tables: RemiTables, guides: list[Guidance],
                 start: RemiState | None = None) -> None:
        self.tables = tables
        self.notes0, _, self.pitch_sum0 = _before(tables, len(guides), start)
        has = np.array([bool(g.pitch_mean) for g in guides])
        self.target = np.array([g.pitch_mean if g.pitch_mean else 60.0 for g in guides], dtype=np.float64)
        self.gain = (np.where(has, [g.register_gain for g in guides], 0.0) / 4).astype(np.float64)
        self.active = bool(has.any())
        self.pitches = type_span(tk, PITCH)
        self.pitch_vals = tk.values[tk.ids_of_type(PITCH)].astype(np.float64)

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        # a prior of 8 notes at the target
        running = (state.pitch_sum - self.pitch_sum0 + 8 * self.target) / (state.n_notes - self.notes0 + 8)
        lam = np.clip(self.gain * (self.target - running), -3, 3)
        logits[:, self.pitches] += lam[:, None] * (self.pitch_vals[None, :] - self.target[:, None]) / 12

    def __call__(self, state: RemiState, logits: np.ndarray) -> None:
        _register(logits, self.target, self.gain, self.notes0, self.pitch_sum0, self.pitches.start, self.pitch_vals,
                  tuple(state))


class TriadHold(LogitsProcessor):
    """After a note's Velocity (its Duration comes next), tilt durations by `triad_hold` per octave of
    length (log2 beats, clipped to 1/4..4): longer after a tonic-triad pitch, shorter otherwise."""

    def __init__(self, tk: MusicTokenizer, tables: RemiTables, guides: list[Guidance]) -> None:
        self.tables = tables
        self.hold = np.array([g.triad_hold if g.tonic is not None and g.mode is not None else 0.0 for g in guides])
        self.triad = np.zeros((len(guides), 12), dtype=bool)  # tonic-triad pitch classes per row
        for i, g in enumerate(guides):
            if self.hold[i]:
                self.triad[i, list(tonic_triad(g.tonic, g.mode))] = True
        self.active = bool(self.hold.any())
        self.durations = type_span(tk, DURATION)
        self.log_dur = np.clip(np.log2(tk.values[tk.ids_of_type(DURATION)].astype(float)), -2, 2)

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        rows = np.flatnonzero(state.prev_type == self.tables.velocity_type)
        if len(rows):
            sign = np.where(self.triad[rows, state.last_pitch[rows] % 12], 1.0, -1.0)
            logits[rows, self.durations] += (self.hold[rows] * sign)[:, None] * self.log_dur[None, :]


# ---- compiled twins: the same float64 arithmetic, each term rounded into the float32 logits once -------
@nb.njit(nb.void(nb.float32[:, ::1], nb.float64[::1], nb.float64[::1], nb.float64[::1], nb.float64[::1], nb.int64,
                 nb.int64, nb.int64, nb.float64[::1], TABLES_TYPE, STATE_TYPE), cache=True)
def _density(out, target, gain, notes0, beats0, p0, n_pitch, q0, beats, tables, state):  # pragma: no cover
    """`DensityFeedback.spec`, one row at a time."""
    t, s = RemiTables(*tables), RemiState(*state)
    for r in range(out.shape[0]):
        cur = max(s.pos[r], 0) / t.positions_per_beat
        so_far = max(s.beats_before[r] + cur - beats0[r], 1.0)
        lr = min(max(math.log((s.n_notes[r] - notes0[r] + 1) / (target[r] * so_far + 1)), -2.0), 2.0) * gain[r]
        if s.prev_type[r] == t.duration_type:
            for k in range(n_pitch):
                out[r, p0 + k] = out[r, p0 + k] - lr
        if t.advances[s.prev_type[r]]:
            for k in range(beats.shape[0]):
                gap = min(max(beats[k] - cur, 0.0), 4.0)
                out[r, q0 + k] = out[r, q0 + k] + lr * gap
            rest = min(max(s.bar_len[r] / t.positions_per_beat - cur, 0.0), 4.0)
            out[r, t.bar_id] = out[r, t.bar_id] + lr * rest


@nb.njit(nb.void(nb.float32[:, ::1], nb.float64[::1], nb.float64[::1], nb.float64[::1], nb.float64[::1], nb.int64,
                 nb.float64[::1], STATE_TYPE), cache=True)
def _register(out, target, gain, notes0, pitch_sum0, p0, pitch_vals, state):  # pragma: no cover - compiled
    """`RegisterFeedback.spec`, one row at a time."""
    s = RemiState(*state)
    for r in range(out.shape[0]):
        running = (s.pitch_sum[r] - pitch_sum0[r] + 8 * target[r]) / (s.n_notes[r] - notes0[r] + 8)
        lam = min(max(gain[r] * (target[r] - running), -3.0), 3.0)
        for k in range(pitch_vals.shape[0]):
            out[r, p0 + k] = out[r, p0 + k] + lam * (pitch_vals[k] - target[r]) / 12
