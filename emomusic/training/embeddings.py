"""Generator-backbone embeddings of every piece of a prepared dataset, computed once and cached.

Why cache: embedding ~1,000 EMOPIA clips with the shipped generator takes minutes on two CPU cores,
and the recognizer, the selector and their ablations all need the same matrix many times. The cache
file name carries the generator's weight hash, so retraining the generator never serves stale rows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from emomusic.errors import InvalidInputError
from emomusic.training.datasets import cache_root, load_prepared

log = logging.getLogger(__name__)

__all__ = ["MAX_WINDOWS", "cached_embeddings", "generator_sha", "load_float_generator"]

MAX_WINDOWS = 2  # windows of 512 tokens per piece: bounded cost, and the same at inference time


def _default_generator() -> Path:
    from emomusic.pipeline import default_checkpoints

    return default_checkpoints() / "generator"


def generator_sha(generator_dir: str | os.PathLike | None = None) -> str:
    """Short SHA-256 of the generator's weights, read from its checkpoint's config.json."""
    path = Path(generator_dir or _default_generator()) / "config.json"
    try:
        return json.loads(path.read_text())["files"]["model.safetensors"][:12]
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a generator checkpoint; train or restore checkpoints/generator") from exc


def load_float_generator(generator_dir: str | os.PathLike | None = None):
    """The shipped generator in float32 (its weights are stored in float16) and its tokenizer."""
    from emomusic.models.generator import load_generator

    model, tokenizer = load_generator(Path(generator_dir or _default_generator()))
    return model.float().eval(), tokenizer


def cached_embeddings(dataset: str, generator_dir: str | os.PathLike | None = None,
                      max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """(n_records, dim) float32 embeddings aligned with `load_prepared((dataset,))` rows.

    Stored in `cache_root()/embeddings/<dataset>-<generator sha>[-w<max_windows>].npy`; a cache whose
    row count no longer matches the prepared dataset (it was re-prepared) is recomputed.
    """
    from emomusic.models.backbone import piece_embeddings

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
    tmp = dest.with_suffix(f".{os.getpid()}.tmp.npy")  # per process: two trainings may fill one cache at once
    np.save(tmp, emb)
    os.replace(tmp, dest)
    return emb
