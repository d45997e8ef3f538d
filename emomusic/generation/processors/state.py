"""Where each row of a batch is in its REMI piece: the state every sampling rule reads.

`RemiTables` are the tokenizer's facts the rules need, laid out once as arrays; `RemiState` holds the
per-row counters and advances them by each drawn token (`update`, compiled; `update_spec` is its
numpy specification). Both are NamedTuples of arrays so the compiled twins take them whole.

The compiled twins take a bundle as a plain tuple (`tuple(bundle)`) and rebuild the NamedTuple
inside (`RemiState(*state)`): numba types a plain tuple's arguments on its fast C path but a
NamedTuple's in Python, which made a call several times slower to dispatch, per step, per rule.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from emomusic.music.tokenizer import (
    BAR,
    DURATION,
    EOS,
    HARMONY,
    PITCH,
    POSITION,
    POSITIONS_PER_BEAT,
    TEMPO,
    TIMESIG,
    TYPE_NAMES,
    VELOCITY,
    MusicTokenizer,
)


class RemiTables(NamedTuple):
    """The tokenizer's REMI facts as arrays (int64 throughout: the compiled twins' signatures)."""

    types: np.ndarray  # (vocab,) int64: each token's type code
    values: np.ndarray  # (vocab,) float64: each token's value (pitch, beats, tempo, ...)
    pos_ids: np.ndarray  # (positions,) int64: the Position tokens
    pos_vals: np.ndarray  # (positions,) int64: their place in the bar, in position units
    pos_units: np.ndarray  # (vocab,) int64: a Position token's place in units (-1 for other tokens)
    ts_num: np.ndarray  # (vocab,) int64: a TimeSig token's numerator (4 for other tokens)
    advances: np.ndarray  # (types,) bool: types after which time may move on (a Position may follow)
    is_tempo: np.ndarray  # (vocab,) bool
    is_timesig: np.ndarray  # (vocab,) bool
    eos_id: int
    bar_id: int
    positions_per_beat: int
    bar_type: int  # type codes, passed in rather than frozen into the compiled code
    timesig_type: int
    position_type: int
    tempo_type: int
    eos_type: int
    pitch_type: int
    duration_type: int
    velocity_type: int

    @classmethod
    def of(cls, tk: MusicTokenizer) -> RemiTables:
        """The tables of a tokenizer."""
        pos_ids = tk.ids_of_type(POSITION).astype(np.int64)
        pos_vals = (tk.values[pos_ids] * POSITIONS_PER_BEAT).round().astype(np.int64)
        pos_units = np.full(len(tk), -1, dtype=np.int64)
        pos_units[pos_ids] = pos_vals
        ts_num = np.full(len(tk), 4, dtype=np.int64)
        for i, (num, _den) in tk.timesig.items():
            ts_num[i] = num
        advances = np.zeros(len(TYPE_NAMES), dtype=bool)
        advances[[DURATION, BAR, TIMESIG, TEMPO, HARMONY]] = True
        return cls(types=tk.types.astype(np.int64), values=tk.values.astype(np.float64), pos_ids=pos_ids,
                   pos_vals=pos_vals, pos_units=pos_units, ts_num=ts_num, advances=advances,
                   is_tempo=tk.types == TEMPO, is_timesig=tk.types == TIMESIG, eos_id=int(tk.eos_id),
                   bar_id=int(tk.bar_id), positions_per_beat=POSITIONS_PER_BEAT, bar_type=BAR, timesig_type=TIMESIG,
                   position_type=POSITION, tempo_type=TEMPO, eos_type=EOS, pitch_type=PITCH, duration_type=DURATION,
                   velocity_type=VELOCITY)


class RemiState(NamedTuple):
    """Per-row counters, each an array over the batch's rows, changed in place."""

    prev_type: np.ndarray  # int64: the type of the token just written
    pos: np.ndarray  # int64: the last position in the current bar (position units; -1 at a bar start)
    bar_len: np.ndarray  # int64: the current bar's length in position units
    bars: np.ndarray  # int64: Bar tokens written so far
    tempo_done: np.ndarray  # bool: a Tempo token was written
    done: np.ndarray  # bool: EOS was written
    beats_before: np.ndarray  # float64: beats in the bars before the current one
    n_notes: np.ndarray  # float64: notes written
    pitch_sum: np.ndarray  # float64: their pitches' sum
    last_pitch: np.ndarray  # int64: the last note's pitch

    @classmethod
    def start(cls, rows: int, prev_type: int) -> RemiState:
        """Rows at the start of a piece, after a token of type `prev_type` (BOS), in 4/4."""
        return cls(prev_type=np.full(rows, prev_type, dtype=np.int64), pos=np.full(rows, -1, dtype=np.int64),
                   bar_len=np.full(rows, 4 * POSITIONS_PER_BEAT, dtype=np.int64), bars=np.zeros(rows, dtype=np.int64),
                   tempo_done=np.zeros(rows, dtype=bool), done=np.zeros(rows, dtype=bool),
                   beats_before=np.zeros(rows), n_notes=np.zeros(rows), pitch_sum=np.zeros(rows),
                   last_pitch=np.zeros(rows, dtype=np.int64))

    def update(self, tables: RemiTables, tokens: np.ndarray) -> None:
        """Advance every row by its new token (compiled twin of `update_spec`)."""
        _advance(np.ascontiguousarray(tokens, dtype=np.int64), tuple(tables), tuple(self))

    def update_spec(self, tables: RemiTables, tokens: np.ndarray) -> None:
        """Advance every row by its new token: bars and beats so far, position in the bar, metre, tempo
        and end seen, notes and their pitch sum, and the token type just written."""
        t = tables
        kind = t.types[tokens]
        bar = kind == t.bar_type
        later = bar & (self.bars > 0)
        self.beats_before[later] += self.bar_len[later] / t.positions_per_beat
        self.bars[bar] += 1
        self.pos[bar] = -1
        ts = kind == t.timesig_type
        self.bar_len[ts] = t.ts_num[tokens[ts]] * t.positions_per_beat  # positions count the denominator's beats
        at = kind == t.position_type
        self.pos[at] = t.pos_units[tokens[at]]
        self.tempo_done[kind == t.tempo_type] = True
        self.done[kind == t.eos_type] = True
        note = kind == t.pitch_type
        self.n_notes[note] += 1
        self.pitch_sum[note] += t.values[tokens[note]]
        self.last_pitch[note] = t.values[tokens[note]]
        self.prev_type[:] = kind


# ---- compiled twin ------------------------------------------------------------------------------------
# numba's types of the two bundles as plain tuples, from examples of the right dtypes (for the explicit
# signatures that compile the twins at import, before any fork)
_i, _b = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=bool)
TABLES_TYPE = nb.typeof(tuple(RemiTables(_i, np.zeros(1), _i, _i, _i, _i, _b, _b, _b, *(0,) * 11)))
STATE_TYPE = nb.typeof(tuple(RemiState.start(1, 0)))


@nb.njit(nb.void(nb.int64[::1], TABLES_TYPE, STATE_TYPE), cache=True)
def _advance(tokens, tables, state):  # pragma: no cover - compiled
    """`RemiState.update_spec`, one row at a time."""
    t, s = RemiTables(*tables), RemiState(*state)
    for r in range(tokens.shape[0]):
        tok = tokens[r]
        kind = t.types[tok]
        if kind == t.bar_type:
            if s.bars[r] > 0:
                s.beats_before[r] += s.bar_len[r] / t.positions_per_beat
            s.bars[r] += 1
            s.pos[r] = -1
        elif kind == t.timesig_type:
            s.bar_len[r] = t.ts_num[tok] * t.positions_per_beat
        elif kind == t.position_type:
            s.pos[r] = t.pos_units[tok]
        elif kind == t.tempo_type:
            s.tempo_done[r] = True
        elif kind == t.eos_type:
            s.done[r] = True
        elif kind == t.pitch_type:
            s.n_notes[r] += 1
            s.pitch_sum[r] += t.values[tok]
            s.last_pitch[r] = np.int64(t.values[tok])
        s.prev_type[r] = kind
