"""Generator-backbone embeddings of every piece of a prepared dataset, computed once and cached.

Why cache: embedding ~1,000 EMOPIA clips with the shipped generator takes minutes on a CPU, and
the recognizer, the selector and their ablations all need the same matrix many times. The cache
file name carries the generator's weight hash, so retraining the generator never serves stale rows.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from emomusic.generation.checkpoint import generator_sha, load_float_generator
from emomusic.io import atomic_write
from emomusic.training.datasets import cache_root, load_prepared

log = logging.getLogger(__name__)

__all__ = ["MAX_WINDOWS", "cached_embeddings"]

MAX_WINDOWS = 2  # windows of 512 tokens per piece: bounded cost, and the same at inference time


def cached_embeddings(dataset: str, generator_dir: str | os.PathLike | None = None,
                      max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """(n_records, dim) float32 embeddings aligned with `load_prepared((dataset,))` rows.

    Stored in `cache_root()/embeddings/<dataset>-<generator sha>[-w<max_windows>].npy`; a cache whose
    row count no longer matches the prepared dataset (it was re-prepared) is recomputed.

    Args:
        dataset: a prepared dataset's name.
        generator_dir: the generator checkpoint (default: the shipped one).
        max_windows: windows averaged per piece.

    Returns:
        float32 (n_records, dim).
    """
    from emomusic.generation.embeddings import piece_embeddings

    prepared = load_prepared((dataset,))
    suffix = "" if max_windows == MAX_WINDOWS else f"-w{max_windows}"
    dest = cache_root() / "embeddings" / f"{dataset}-{generator_sha(generator_dir)}{suffix}.npy"
    if dest.exists():
        emb = np.load(dest)
        if len(emb) == len(prepared.records):
            return emb
        log.warning("%s: %d rows for %d records; recomputing", dest, len(emb), len(prepared.records))
    model, tokenizer = load_float_generator(generator_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared two-core machine: one thread, restored afterwards
    try:
        emb = piece_embeddings(model, tokenizer, [prepared.piece(i) for i in range(len(prepared.records))],
                               max_windows=max_windows)
    finally:
        torch.set_num_threads(threads)
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, lambda tmp: np.save(tmp, emb), force=True)  # two trainings may fill one cache at once
    return emb
