"""The REMI grammar: which token may follow which, and where a bar's positions may go.

The specification is `FOLLOW` (token type -> the types that may come next), `grammar_table` (that table
over the vocabulary) and `GrammarMask.allowed` (the per-row rules on top: positions only move forward
inside the bar; one tempo, in the first bar, the asked one first; every bar states its metre when one
is asked; no EOS before the last bar; a finished row only repeats EOS). `_mask` below is its compiled
twin: the numpy statement is a dozen boolean-array operations a step, more dispatch than work.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from emomusic.generation.processors.base import LogitsProcessor
from emomusic.generation.processors.state import STATE_TYPE, TABLES_TYPE, RemiState, RemiTables
from emomusic.music.tokenizer import (
    BAR,
    BOS,
    CTL,
    DURATION,
    EMOTION,
    EOS,
    GENRE,
    HARMONY,
    PITCH,
    POSITION,
    TEMPO,
    TIMESIG,
    TYPE_NAMES,
    VELOCITY,
    MusicTokenizer,
)
from emomusic.vocab.constants import PIANO_TOP

# token type -> the types that may follow it
FOLLOW = {
    BOS: (BAR,), GENRE: (BAR,), CTL: (BAR,), EMOTION: (BAR,),
    BAR: (TIMESIG, POSITION, BAR, EOS), TIMESIG: (POSITION, BAR),
    POSITION: (TEMPO, PITCH), TEMPO: (POSITION, PITCH),
    PITCH: (VELOCITY,), VELOCITY: (DURATION,), DURATION: (PITCH, POSITION, BAR, EOS),
    HARMONY: (POSITION, BAR, EOS),
}
# a tokenizer with bar chords (`MusicTokenizer.harmony`): every bar names its chord, after its metre if any
FOLLOW_HARMONY = {**FOLLOW, BAR: (TIMESIG, HARMONY), TIMESIG: (HARMONY,)}


def grammar_table(tk: MusicTokenizer) -> np.ndarray:
    """(n_types, vocab) bool: which tokens may follow a token of each type (`FOLLOW`, or `FOLLOW_HARMONY`
    for a tokenizer with bar chords, over the vocabulary)."""
    types = tk.types
    table = np.zeros((len(TYPE_NAMES), len(types)), dtype=bool)
    for prev, nxt in (FOLLOW_HARMONY if tk.harmony else FOLLOW).items():
        table[prev] = np.isin(types, nxt)
    table[EOS, tk.eos_id] = True  # finished sequences keep emitting EOS (they are masked out later)
    table[:, (types == PITCH) & (tk.values > PIANO_TOP)] = False
    return table


class GrammarMask(LogitsProcessor):
    """Forbid (-inf) every token the grammar does not allow next; runs after every other rule.

    Its last resort: a row left with no token at all (a full bar, or earlier rules forbidding all the
    grammar allows) closes its bar, or ends the piece after the last one. That token is the only one
    left, so it is drawn whatever its logit (0 if an earlier rule had made it -inf).
    """

    compiled = True

    def __init__(self, tk: MusicTokenizer, tables: RemiTables, n_bars: int, force_tempo: np.ndarray,
                 force_timesig: np.ndarray) -> None:
        """Args:
            tk: the tokenizer.
            tables: its `RemiTables`.
            n_bars: bars each piece must reach before EOS.
            force_tempo: (rows,) bool: the row's first bar states a tempo (the one the guidance leaves).
            force_timesig: (rows,) bool: every bar of the row states its metre.
        """
        self.tables, self.table_args = tables, tuple(tables)  # the compiled twin takes plain tuples (see state)
        self.table = grammar_table(tk)
        self.n_bars = int(n_bars)
        self.force_tempo = np.ascontiguousarray(force_tempo, dtype=bool)
        self.force_timesig = np.ascontiguousarray(force_timesig, dtype=bool)

    def allowed(self, state: RemiState, logits: np.ndarray) -> np.ndarray:
        """(rows, vocab) bool: the tokens each row may draw next, among those earlier rules left finite."""
        t, s = self.tables, state
        m = self.table[s.prev_type] & (logits > -np.inf)
        advance = t.advances[s.prev_type]
        bad = (t.pos_vals[None, :] <= s.pos[:, None]) | (t.pos_vals[None, :] >= s.bar_len[:, None])
        m[:, t.pos_ids] &= ~(bad & advance[:, None])  # positions only move forward, inside the bar
        no_tempo = s.tempo_done | (s.bars > 1)
        m[no_tempo] &= ~t.is_tempo  # one tempo, set in the first bar
        m[~no_tempo & self.force_tempo & (s.prev_type == t.position_type)] &= t.is_tempo  # the asked tempo first
        m[self.force_timesig & (s.prev_type == t.bar_type)] &= t.is_timesig  # every bar states its metre
        m[s.bars < self.n_bars, t.eos_id] = False  # a Bar after the last requested bar becomes EOS
        m[s.done] = False
        m[s.done, t.eos_id] = True
        return m

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        m = self.allowed(state, logits)
        empty = np.flatnonzero(~m.any(axis=1))  # nothing left: close the bar, or end the piece
        last = np.where(state.bars[empty] < self.n_bars, self.tables.bar_id, self.tables.eos_id)
        m[empty, last] = True
        logits[~m] = -np.inf
        hole = logits[empty, last] == -np.inf
        logits[empty[hole], last[hole]] = 0.0

    def __call__(self, state: RemiState, logits: np.ndarray) -> None:
        _mask(logits, self.table, self.force_tempo, self.force_timesig, self.n_bars, self.table_args, tuple(state))


# ---- compiled twin ------------------------------------------------------------------------------------
_NEG_INF = np.float32(-np.inf)


@nb.njit(nb.void(nb.float32[:, ::1], nb.boolean[:, ::1], nb.boolean[::1], nb.boolean[::1], nb.int64, TABLES_TYPE,
                 STATE_TYPE), cache=True)
def _mask(x, table, force_tempo, force_timesig, n_bars, tables, state):  # pragma: no cover - compiled
    """`GrammarMask.spec`, one row at a time, the same rules in the same order."""
    t, s = RemiTables(*tables), RemiState(*state)
    b, v = x.shape
    ok = np.empty(v, dtype=np.bool_)
    for r in range(b):
        pt = s.prev_type[r]
        if s.done[r]:
            for j in range(v):
                ok[j] = j == t.eos_id
        else:
            for j in range(v):
                ok[j] = table[pt, j] and x[r, j] != _NEG_INF
            if t.advances[pt]:
                for k in range(t.pos_ids.shape[0]):
                    if t.pos_vals[k] <= s.pos[r] or t.pos_vals[k] >= s.bar_len[r]:
                        ok[t.pos_ids[k]] = False
            if s.tempo_done[r] or s.bars[r] > 1:
                for j in range(v):
                    ok[j] = ok[j] and not t.is_tempo[j]
            elif force_tempo[r] and pt == t.position_type:
                for j in range(v):
                    ok[j] = ok[j] and t.is_tempo[j]
            if force_timesig[r] and pt == t.bar_type:
                for j in range(v):
                    ok[j] = ok[j] and t.is_timesig[j]
            if s.bars[r] < n_bars:
                ok[t.eos_id] = False
            if not ok.any():
                last = t.bar_id if s.bars[r] < n_bars else t.eos_id
                ok[last] = True
                if x[r, last] == _NEG_INF:
                    x[r, last] = 0.0
        for j in range(v):
            if not ok[j]:
                x[r, j] = _NEG_INF
