"""Piece embeddings from the generator's transformer: the learned representation that the
recognizer and the selector put their heads on.

Why reuse the generator: it was trained self-supervised on ~all the MIDI we have (labelled or not),
so its hidden states already encode harmony, rhythm and texture; the labelled sets are far too small
(~1k EMOPIA clips) to train an encoder of that size from scratch on two CPU cores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emomusic.music.tokenizer import MusicTokenizer


def _windows(ids: np.ndarray, length: int, max_windows: int) -> list[np.ndarray]:
    """Up to `max_windows` evenly spaced windows of `length` tokens covering the piece."""
    if len(ids) <= length:
        return [ids]
    starts = np.linspace(0, len(ids) - length, num=min(max_windows, int(np.ceil(len(ids) / length)))).astype(int)
    return [ids[s:s + length] for s in starts]


TORCH_BATCH = 16  # windows per torch forward
NUMPY_BATCH = 1  # windows per numpy forward: one window's activations stay in cache; windows spread over cores


def piece_embeddings(generator, tokenizer: MusicTokenizer, pieces: Sequence[np.ndarray], length: int = 512,
                     max_windows: int = 4, batch_size: int | None = None) -> np.ndarray:
    """(n_pieces, dim) mean-pooled last-layer states of BOS + music tokens (no condition prefix).

    Long pieces are cut into evenly spaced windows whose embeddings are averaged, so the cost per
    piece is bounded and the result does not depend on where the piece was cut.

    Two engines, equal to float32 rounding (tested): given the network (a `Generator`), torch runs it
    (training, which has torch loaded anyway); given its `generation.fast.DecoderWeights`, the fast
    engine's numpy forward does, so ranking candidates needs neither torch nor x-transformers.

    Args:
        generator: the generator network, or its `DecoderWeights`.
        tokenizer: its tokenizer.
        pieces: each piece's token ids.
        length: tokens per window (BOS included).
        max_windows: windows averaged per piece.
        batch_size: windows run together (default: `NUMPY_BATCH` or `TORCH_BATCH` by engine).

    Returns:
        float32 (n_pieces, dim).
    """
    from emomusic.generation.fast import DecoderWeights

    bos = tokenizer.token_id("BOS_None")
    pad = tokenizer.token_id("PAD_None")
    rows: list[tuple[int, np.ndarray]] = []
    for i, ids in enumerate(pieces):
        ids = tokenizer.without_harmony(np.asarray(ids, dtype=np.int64))  # bar chords: not in a backbone's vocabulary
        for w in _windows(ids, length - 1, max_windows):
            rows.append((i, np.concatenate([[bos], w])))
    numpy = isinstance(generator, DecoderWeights)
    batch_size = batch_size or (NUMPY_BATCH if numpy else TORCH_BATCH)
    dim = generator.config.dim
    sums = np.zeros((len(pieces), dim), dtype=np.float64)
    counts = np.zeros(len(pieces))
    order = sorted(range(len(rows)), key=lambda r: len(rows[r][1]))  # similar lengths batch together
    chunks = [[rows[r] for r in order[b:b + batch_size]] for b in range(0, len(order), batch_size)]

    def pooled(chunk: list[tuple[int, np.ndarray]]) -> np.ndarray:
        n = max(len(x) for _, x in chunk)
        ids = np.full((len(chunk), n), pad, dtype=np.int64)
        mask = np.zeros((len(chunk), n), dtype=bool)
        for j, (_, x) in enumerate(chunk):
            ids[j, :len(x)] = x
            mask[j, :len(x)] = True
        hidden = _states_numpy(generator, ids) if numpy else _states_torch(generator, ids)
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)  # causal: padding cannot leak back

    if numpy and len(chunks) > 1 and (os.cpu_count() or 1) > 1:
        # one chunk per core, each on one BLAS thread: numpy's element-wise work then uses every core too;
        # results go back in chunk order, so the sums are the same whichever thread finished first
        from concurrent.futures import ThreadPoolExecutor

        from emomusic.numerics import one_blas_thread

        with one_blas_thread(), ThreadPoolExecutor(min(len(chunks), os.cpu_count() or 1)) as pool:
            results = list(pool.map(pooled, chunks))
    else:
        results = [pooled(chunk) for chunk in chunks]
    for chunk, out in zip(chunks, results, strict=True):
        for j, (i, _) in enumerate(chunk):
            sums[i] += out[j].astype(np.float64)
            counts[i] += 1
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def _states_numpy(weights, ids: np.ndarray) -> np.ndarray:
    """Last-layer states (batch, n, dim) by the fast engine's numpy forward."""
    from emomusic.generation.fast import FastEngine

    return FastEngine(weights, batch=len(ids), max_len=ids.shape[1]).states(ids)


def _states_torch(generator, ids: np.ndarray) -> np.ndarray:
    """Last-layer states (batch, n, dim) by the x-transformers network."""
    import torch

    with torch.inference_mode():
        return generator.net(torch.from_numpy(ids), return_embeddings=True).float().numpy()


def load_backbone(generator_dir: str | os.PathLike):
    """The generator whose embeddings the selector and recognizer read, as `piece_embeddings` takes it:
    the fast engine's numpy weights where it supports the configuration (no torch import), else the
    float32 network.

    Args:
        generator_dir: a generator checkpoint folder.

    Returns:
        (`DecoderWeights` or `Generator`, its `MusicTokenizer`).
    """
    from emomusic.generation.checkpoint import load_generator_checkpoint
    from emomusic.generation.fast import DecoderWeights, unsupported

    ck, tokenizer = load_generator_checkpoint(Path(generator_dir))
    if unsupported(ck.config) is None:
        return DecoderWeights.from_checkpoint(ck), tokenizer
    return ck.module().float().eval(), tokenizer
