"""How far an accuracy measured on a few songs can be trusted: song-level folds and bootstrap.

Why songs, not clips: EMOPIA's validation set is 198 clips from only 63 songs, and one of them (one
long YouTube recording) alone holds 32 clips. Clips of a song share a pianist, a style and usually a
label, so they are not independent draws: a confidence interval that resamples clips is far too
narrow, and a cross-validation that splits clips leaks songs. Both helpers here work on groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["group_bootstrap_ci", "group_folds"]


def group_bootstrap_ci(correct: np.ndarray, groups: Sequence[str], n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `correct`, resampling whole groups with replacement.

    `correct` holds one 0/1 (or any score) per item, `groups` the song each item belongs to.

    Args:
        correct: one score per item.
        groups: each item's group (song).
        n_boot: bootstrap resamples.
        level: the interval's coverage.
        seed: the resampling seed.

    Returns:
        (low, high).
    """
    correct = np.asarray(correct, dtype=np.float64)
    if len(correct) != len(groups):
        raise ValueError(f"{len(correct)} scores for {len(groups)} group labels")
    if len(correct) == 0:
        raise ValueError("no items to bootstrap")
    names, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sums = np.bincount(inverse, weights=correct, minlength=len(names))
    counts = np.bincount(inverse, minlength=len(names)).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(n_boot, len(names)))
    means = sums[picks].sum(1) / counts[picks].sum(1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def group_folds(groups: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..folds-1) of every item; all items of a group share a fold.

    Groups are shuffled with `seed`, then dealt largest first to the fold holding the fewest items,
    so folds are balanced even when one song has many clips.

    Args:
        groups: each item's group (song).
        folds: number of folds.
        seed: the shuffle seed.

    Returns:
        int array of fold indices, one per item.
    """
    if folds < 2:
        raise ValueError(f"folds={folds}: cross-validation needs at least 2 folds")
    names, inverse, counts = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True,
                                       return_counts=True)
    if len(names) < folds:
        raise ValueError(f"{len(names)} groups cannot fill {folds} folds")
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of_group = np.zeros(len(names), np.int64)
    load = np.zeros(folds)
    for g in order:
        k = int(np.argmin(load))
        fold_of_group[g] = k
        load[k] += counts[g]
    return fold_of_group[inverse]
