"""Objective metrics on hand-built pieces (values worked out by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.music.metrics import (
    empty_beat_rate,
    groove_consistency,
    note_density,
    overlapping_area,
    pitch_class_entropy,
    polyphony,
    scale_consistency,
    yang_lerch_oa,
)
from emomusic.music.notes import Notes


def _notes(pitch, start, dur) -> Notes:
    return Notes.from_arrays(pitch, start, dur, [80] * len(pitch))


def test_pitch_class_entropy_of_two_equal_classes_is_one_bit():
    assert pitch_class_entropy(_notes([60, 62, 72, 74], [0, 1, 2, 3], [1] * 4)) == pytest.approx(1.0)


def test_scale_consistency():
    c_major = _notes([60, 62, 64, 65, 67, 69, 71, 72], range(8), [1] * 8)
    assert scale_consistency(c_major) == 1.0
    with_chromatic = _notes([60, 62, 64, 66], range(4), [1] * 4)  # F# fits G major: still 1.0
    assert scale_consistency(with_chromatic) == 1.0
    cluster = _notes([60, 61, 62, 63], range(4), [1] * 4)  # no scale holds all four: 3/4
    assert scale_consistency(cluster) == 0.75


def test_groove_consistency_identical_bars_is_one():
    starts = [0, 1, 2, 3, 4, 5, 6, 7]
    assert groove_consistency(_notes([60] * 8, starts, [0.5] * 8)) == 1.0
    # second bar has one onset moved: 2 of 32 slots differ
    moved = _notes([60] * 8, [0, 1, 2, 3, 4, 5, 6, 7.5], [0.5] * 8)
    assert groove_consistency(moved) == pytest.approx(1 - 2 / 32)


def test_empty_beat_rate_density_polyphony():
    n = _notes([60, 64, 67, 72], [0, 0, 0, 3], [1, 1, 1, 1])  # beats 1 and 2 are silent
    assert empty_beat_rate(n) == pytest.approx(0.5)
    assert note_density(n) == pytest.approx(1.0)  # 4 notes over 4 beats
    assert polyphony(n) == pytest.approx(2.0)  # 3 notes at beat 0, 1 at beat 3


def test_overlapping_area():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    assert overlapping_area(a, b) > 0.85
    assert overlapping_area(a, b + 10) < 0.05


def test_yang_lerch_oa_compares_intra_and_inter_set_distances():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, 200)
    assert yang_lerch_oa(rng.normal(0, 1, 100), real) > 0.9  # same distribution
    shifted = yang_lerch_oa(rng.normal(1, 1, 100), real)
    assert 0.3 < shifted < 0.9 and overlapping_area(rng.normal(1, 1, 100), real) < shifted  # less strict
    assert yang_lerch_oa(rng.normal(10, 1, 100), real) < 0.05
    assert yang_lerch_oa(np.full(50, 3.0), np.full(60, 3.0)) == 1.0  # identical constants
