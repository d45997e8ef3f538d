"""Piece embeddings from the generator's transformer: the learned representation that the
recognizer and the selector put their heads on.

Why reuse the generator: it was trained self-supervised on ~all the MIDI we have (labelled or not),
so its hidden states already encode harmony, rhythm and texture; the labelled sets are far too small
(~1k EMOPIA clips) to train an encoder of that size from scratch on two CPU cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emomusic.music.tokenizer import MusicTokenizer


def _windows(ids: np.ndarray, length: int, max_windows: int) -> list[np.ndarray]:
    """Up to `max_windows` evenly spaced windows of `length` tokens covering the piece."""
    if len(ids) <= length:
        return [ids]
    starts = np.linspace(0, len(ids) - length, num=min(max_windows, int(np.ceil(len(ids) / length)))).astype(int)
    return [ids[s:s + length] for s in starts]


@torch.inference_mode()
def piece_embeddings(generator, tokenizer: MusicTokenizer, pieces: Sequence[np.ndarray], length: int = 512,
                     max_windows: int = 4, batch_size: int = 16) -> np.ndarray:
    """(n_pieces, dim) mean-pooled last-layer states of BOS + music tokens (no condition prefix).

    Long pieces are cut into evenly spaced windows whose embeddings are averaged, so the cost per
    piece is bounded and the result does not depend on where the piece was cut.
    """
    bos = tokenizer.token_id("BOS_None")
    pad = tokenizer.token_id("PAD_None")
    rows: list[tuple[int, np.ndarray]] = []
    for i, ids in enumerate(pieces):
        ids = np.asarray(ids, dtype=np.int64)
        for w in _windows(ids, length - 1, max_windows):
            rows.append((i, np.concatenate([[bos], w])))
    dim = generator.config.dim
    sums = np.zeros((len(pieces), dim), dtype=np.float64)
    counts = np.zeros(len(pieces))
    order = sorted(range(len(rows)), key=lambda r: len(rows[r][1]))  # similar lengths batch together
    for b in range(0, len(order), batch_size):
        chunk = [rows[r] for r in order[b:b + batch_size]]
        n = max(len(x) for _, x in chunk)
        ids = torch.full((len(chunk), n), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), n), dtype=torch.bool)
        for j, (_, x) in enumerate(chunk):
            ids[j, :len(x)] = torch.from_numpy(x)
            mask[j, :len(x)] = True
        hidden = generator.net(ids, return_embeddings=True)  # causal: padding at the end cannot leak back
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        for j, (i, _) in enumerate(chunk):
            sums[i] += pooled[j].double().numpy()
            counts[i] += 1
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
