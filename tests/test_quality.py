"""The quality head: its features, the degradations it was trained against, its checkpoint round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emomusic.music.notes import Notes
from emomusic.selection.quality import FEATURES, QualityHead, load_quality, quality_features
from emomusic.training.quality import (
    DEGRADATIONS,
    auc,
    collapsed_loop,
    flat_dynamics,
    missing_ending,
    shuffled_bars,
    stall,
    wrong_key,
)

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "quality"
_CHORDS = ((60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62))  # C, Am, F, G


def _piece(seed: int = 0, bars: int = 16) -> Notes:
    """A plain C-major piece: a chord per bar (I-vi-IV-V), a stepwise melody in eighths, varied velocities."""
    rng = np.random.default_rng(seed)
    pitch, start, dur, vel = [], [], [], []
    scale = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    m = 4
    for b in range(bars):
        chord = _CHORDS[b % 4] if b < bars - 1 else (48, 60, 64, 67)
        for p in chord:
            pitch.append(p - 12)
            start.append(b * 4.0)
            dur.append(4.0)
            vel.append(int(rng.integers(45, 60)))
        for k in range(8 if b < bars - 1 else 1):
            m = int(np.clip(m + rng.choice([-1, 1, 2, -2]), 0, 7))
            pitch.append(int(scale[m] + 12) if b < bars - 1 else 72)
            start.append(b * 4.0 + k * 0.5)
            dur.append(0.5 if b < bars - 1 else 4.0)
            vel.append(int(rng.integers(60, 90)))
    return Notes.from_arrays(pitch, start, dur, vel, tempo=100.0)


def test_features_are_finite_deterministic_and_named() -> None:
    x = quality_features(_piece())
    assert x.shape == (len(FEATURES),) and np.isfinite(x).all()
    assert np.array_equal(x, quality_features(_piece()))
    assert not quality_features(Notes.from_arrays([], [], [], [])).any()
    single = quality_features(Notes.from_arrays([60], [0.0], [1.0], [64]))
    assert np.isfinite(single).all()


def test_every_degradation_is_seeded_and_changes_the_piece() -> None:
    piece = _piece()
    for name, fn in DEGRADATIONS.items():
        a, b = fn(piece, 3), fn(piece, 3)
        assert np.array_equal(a.pitch, b.pitch) and np.array_equal(a.start, b.start), name
        assert np.isfinite(quality_features(a)).all(), name
        x0, x1 = quality_features(piece), quality_features(a)
        assert not np.allclose(x0, x1), name


def test_degradations_do_what_they_say() -> None:
    piece = _piece()
    f = dict(zip(FEATURES, quality_features(piece), strict=True))
    wk = wrong_key(piece, 1)
    assert int(np.sum(np.sort(wk.pitch) != np.sort(piece.pitch))) > 0
    assert dict(zip(FEATURES, quality_features(wk), strict=True))["out_of_key"] > f["out_of_key"] + 0.2
    sb = shuffled_bars(piece, 1)
    assert np.array_equal(np.sort(sb.pitch), np.sort(piece.pitch)) and not np.array_equal(sb.pitch, piece.pitch)
    loop = dict(zip(FEATURES, quality_features(collapsed_loop(piece, 1)), strict=True))
    assert loop["loop_share"] == 1.0 and f["loop_share"] < 0.5
    st = dict(zip(FEATURES, quality_features(stall(piece, 1)), strict=True))
    assert st["longest_stall"] >= 5 / 16 > f["longest_stall"]
    cut = missing_ending(piece, 1)
    assert cut.start.max() < piece.start.max() - 4 and cut.start.max() % 4 > 0  # mid-bar, the last bar lost
    assert cut.end > cut.start.max() + 1  # the chord struck before the cut rings on
    assert len(np.unique(flat_dynamics(piece).velocity)) == 1
    broken = DEGRADATIONS["broken_rhythm"](piece, 1)
    assert dict(zip(FEATURES, quality_features(broken), strict=True))["off_grid"] > 0.5 > f["off_grid"]


def test_auc_counts_pairs_and_ties() -> None:
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.5]), np.array([0.5])) == 0.5
    assert auc(np.array([0.1, 0.9]), np.array([0.5])) == 0.5


def test_a_tiny_head_round_trips_through_its_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    n = len(FEATURES)
    head = QualityHead(rng.normal(size=n), rng.uniform(0.5, 2, n),
                       [(rng.normal(size=(n, 4)), rng.normal(size=4)), (rng.normal(size=(4, 1)), rng.normal(size=1))])
    pieces = [_piece(s) for s in range(3)]
    p = head.score(pieces)
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
    back = load_quality(head.save(tmp_path / "quality", {"auc_generated": 0.5}, "# card\n"))
    np.testing.assert_allclose(back.score(pieces), p, rtol=1e-5, atol=1e-6)  # float32 storage
    assert len(head.score([])) == 0


def test_shipped_head_prefers_a_clean_piece_to_its_shuffled_and_flattened_versions() -> None:
    if not (SHIPPED / "config.json").exists():
        pytest.skip(f"{SHIPPED} absent: train it with emomusic.training.quality.train_quality")
    head = load_quality(SHIPPED)
    clean = [_piece(s) for s in range(4)]
    p_clean = head.score(clean)
    for fn in (shuffled_bars, flat_dynamics, collapsed_loop, wrong_key):
        p_bad = head.score([fn(n, s) for s, n in enumerate(clean)])
        assert p_clean.mean() > p_bad.mean(), fn.__name__
