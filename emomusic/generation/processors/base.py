"""The logits-processor contract every sampling rule follows."""

from __future__ import annotations

import numpy as np

from emomusic.generation.processors.state import RemiState
from emomusic.music.tokenizer import MusicTokenizer


def type_span(tk: MusicTokenizer, kind: int) -> slice:
    """The ids of a token type as a slice (they are contiguous: slices write in place without index arrays)."""
    ids = tk.ids_of_type(kind)
    span = slice(int(ids[0]), int(ids[-1]) + 1)
    if span.stop - span.start != len(ids):
        raise ValueError(f"the tokenizer's {tk.itos[int(ids[0])].split('_')[0]} ids must be a contiguous range")
    return span


class LogitsProcessor:
    """One sampling rule, applied to a step's (rows, vocab) float32 logits in place.

    `spec` is the rule's one readable statement, in numpy. `__call__` is what the sampler runs: the
    spec itself, or, where a benchmark showed numpy's per-step dispatch dominating, a compiled twin
    (`compiled = True`) that tests/test_processors.py checks equal to the spec. Forbidden tokens are
    -inf; a rule never turns a -inf back into a number (except the grammar's last resort, see
    `GrammarMask`). Processors are built once per batch, from its rows' `Guidance`, so per-row settings
    are arrays over the rows.
    """

    compiled = False  # True where `__call__` runs a compiled twin of `spec`

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        """Apply the rule to `logits` (rows, vocab) float32 in place, given each row's `state`."""
        raise NotImplementedError

    def __call__(self, state: RemiState, logits: np.ndarray) -> None:
        """Apply the rule in place (the spec, unless a subclass runs a compiled twin)."""
        self.spec(state, logits)

    def see(self, state: RemiState) -> None:
        """Note a state of the prefix, token by token, before sampling begins (for rules that count from
        some bar of it; the others ignore it)."""
