"""The reference engine: x-transformers' own cached forward over the network itself.

It runs any configuration the network can be built with, so it is the fallback for what the fast
engine does not support, the baseline the fast engine is measured against and the oracle its tests
compare with. It runs torch, so the sampler never forks while it decodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from emomusic.generation.network import Generator


class ReferenceEngine:
    """`Engine` over `Generator.step` (x-transformers' KV cache).

    Past the training length its cache is cropped to the last `max_seq_len - 1` keys after each step,
    as `AutoregressiveWrapper.generate` does: the same sliding window as the fast engine. `keep` does
    not shrink the batch (x-transformers' cache has no row selection): dropped rows are fed a filler
    token and their logits are not returned; rows are independent, so the kept rows' logits are the
    same.
    """

    fork_safe = False  # torch's thread pools do not survive a fork

    def __init__(self, model: Generator) -> None:
        """Args:
            model: the network, in eval mode.
        """
        self.model = model
        self.window = model.config.max_seq_len
        self.ids = None
        self.cache = None
        self.rows: np.ndarray | None = None  # the batch rows still returned (None: all)

    def prefill(self, ids) -> np.ndarray:
        """Run the prefix (batch, n); returns the last position's logits (batch, vocab)."""
        import torch

        self.ids, self.cache, self.rows = torch.as_tensor(np.asarray(ids)), None, None
        if self.ids.shape[1] > self.window:
            raise ValueError(f"the reference engine prefills at most {self.window} tokens")
        with torch.inference_mode():
            logits, self.cache = self.model.step(self.ids, None)
        return logits.numpy()

    def step(self, tokens) -> np.ndarray:
        """Append one token per kept row (rows,); returns the next logits of those rows (rows, vocab)."""
        import torch
        from x_transformers.autoregressive_wrapper import modify_cached_kv

        tokens = np.asarray(tokens)
        if self.rows is not None:  # dropped rows repeat their last token: their logits are never read
            full = self.ids[:, -1].numpy().copy()
            full[self.rows] = tokens
            tokens = full
        if self.ids.shape[1] >= self.window:
            modify_cached_kv(self.cache, lambda t: t[..., -(self.window - 1):, :])
        self.ids = torch.cat([self.ids, torch.as_tensor(tokens)[:, None]], dim=1)
        with torch.inference_mode():
            logits, self.cache = self.model.step(self.ids, self.cache)
        logits = logits.numpy()
        return logits if self.rows is None else logits[self.rows]

    def keep(self, rows: np.ndarray) -> None:
        """Return only these rows (ascending, indices among the rows kept so far) from now on."""
        current = np.arange(len(self.ids)) if self.rows is None else self.rows
        self.rows = current[np.asarray(rows, dtype=np.int64)]
