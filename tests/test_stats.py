"""Song-level uncertainty helpers: bootstrap intervals over groups and group-keeping folds."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.evaluation.stats import group_bootstrap_ci, group_folds


def test_bootstrap_of_perfect_scores_is_a_point() -> None:
    assert group_bootstrap_ci(np.ones(10), [f"s{i // 2}" for i in range(10)]) == (1.0, 1.0)


def test_one_group_gives_no_spread() -> None:
    lo, hi = group_bootstrap_ci(np.array([1, 0, 1, 1]), ["a"] * 4)
    assert lo == pytest.approx(0.75) and hi == pytest.approx(0.75)


def test_errors_clustered_in_one_song_widen_the_interval() -> None:
    """Ten wrong clips from one song are one unlucky draw, not ten: the song interval is wider."""
    correct = np.r_[np.zeros(10), np.ones(40)]
    songs = ["medley"] * 10 + [f"song{i}" for i in range(40)]
    clips = [f"clip{i}" for i in range(50)]
    song_lo, song_hi = group_bootstrap_ci(correct, songs)
    clip_lo, clip_hi = group_bootstrap_ci(correct, clips)
    assert song_lo <= 0.8 <= song_hi
    assert song_hi - song_lo > 1.5 * (clip_hi - clip_lo)


def test_bootstrap_is_seeded_and_checks_its_input() -> None:
    rng = np.random.default_rng(0)
    correct, groups = rng.integers(0, 2, 60), [f"g{i % 17}" for i in range(60)]
    assert group_bootstrap_ci(correct, groups, seed=3) == group_bootstrap_ci(correct, groups, seed=3)
    with pytest.raises(ValueError, match="group labels"):
        group_bootstrap_ci(correct, groups[:-1])
    with pytest.raises(ValueError, match="no items"):
        group_bootstrap_ci(np.zeros(0), [])


def test_folds_keep_groups_together_and_stay_balanced() -> None:
    rng = np.random.default_rng(1)
    sizes = np.r_[32, rng.integers(1, 6, 80)]  # one medley-sized song among small ones
    groups = np.repeat([f"song{i}" for i in range(len(sizes))], sizes)
    fold = group_folds(list(groups), 5, seed=0)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    load = np.bincount(fold, minlength=5)
    assert set(fold) == set(range(5))
    assert load.max() - load.min() <= sizes.max()
    assert (group_folds(list(groups), 5, seed=0) == fold).all()


def test_folds_refuse_impossible_requests() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        group_folds(["a", "b"], 1)
    with pytest.raises(ValueError, match="cannot fill"):
        group_folds(["a", "a", "b"], 3)
