"""Melody extraction: the skyline baseline, the monophonic decodes, the learned model, its checkpoint."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from emomusic.arrangement.melody import (
    CONTEXT_FEATURES,
    FEATURES,
    MelodyModel,
    context_features,
    decode_argmax,
    decode_viterbi,
    load_melody,
    melody_f1,
    melody_features,
    onset_groups,
    skyline,
)
from emomusic.music.notes import Notes

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "melody"


def _piece(seed: int, bars: int = 8, dip: bool = False) -> tuple[Notes, np.ndarray]:
    """A melody in eighths and quarters (with a rest bar) above block chords on every beat.

    With `dip`, each bar also holds a high accompaniment note (a pedal tone above the tune) through the
    bar, and the melody's second half-bar dips under it. Returns the notes and the melody mask.
    """
    rng = np.random.default_rng(seed)
    pitch, start, dur, mel = [], [], [], []
    m = 72
    for b in range(bars):
        root = 48 + (0, 5, 7, 9)[b % 4]
        for beat in range(4):
            for p in (root - 12, root, root + 4, root + 7):
                pitch.append(p), start.append(4.0 * b + beat), dur.append(1.0), mel.append(False)
        if dip:
            pitch.append(84), start.append(4.0 * b), dur.append(4.0), mel.append(False)
        if b % 4 == 3:
            continue  # the melody rests for a bar; the chords go on
        t = 4.0 * b
        while t < 4.0 * b + 4.0 - 1e-9:
            step = 0.5 if rng.random() < 0.5 else 1.0
            m = int(np.clip(m + rng.integers(-3, 4), 66, 80))
            pitch.append(m), start.append(t), dur.append(step), mel.append(True)
            t += step
    order = np.lexsort((pitch, start))
    notes = Notes.from_arrays(pitch, start, dur, [64] * len(pitch), tempo=100.0)
    return notes, np.asarray(mel)[order]


def _fitted(seed: int = 0) -> MelodyModel:
    """Logistic regression fitted in numpy on a few fixture pieces (full-batch gradient descent, seeded)."""
    pieces = [_piece(seed + i, dip=i % 2 == 1) for i in range(6)]
    x = np.concatenate([melody_features(n) for n, _ in pieces]).astype(np.float64)
    y = np.concatenate([m for _, m in pieces]).astype(np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(300):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * z.T @ (p - y) / len(y)
        b -= 0.5 * float((p - y).mean())
    return MelodyModel([(w[None, :], np.array([b]))], (mean, std), "viterbi", 0.0, 0.5)


def _per_onset(mask: np.ndarray, notes: Notes) -> int:
    g = onset_groups(notes)
    return int(np.bincount(g[mask], minlength=g.max() + 1).max()) if mask.any() else 0


def test_skyline_picks_the_top_of_every_onset() -> None:
    notes, _ = _piece(0)
    sky = skyline(notes)
    g = onset_groups(notes)
    assert sky.sum() == g.max() + 1 == len(np.unique(notes.start))
    for k in range(g.max() + 1):
        assert notes.pitch[sky & (g == k)][0] == notes.pitch[g == k].max()
    near = Notes.from_arrays([60, 64, 67, 72], [0.0, 0.01, 0.02, 1.0], [1, 1, 1, 1], [64] * 4)
    assert skyline(near).tolist() == [False, False, True, True]  # a played-in chord is one onset


def test_empty_piece() -> None:
    empty = Notes.from_arrays([], [], [], [])
    model = _fitted()
    assert skyline(empty).shape == (0,) and melody_features(empty).shape == (0, len(FEATURES))
    assert context_features(empty, np.zeros(0)).shape == (0, len(CONTEXT_FEATURES))
    assert model.mask(empty).shape == (0,) and model.probabilities(empty).shape == (0,)
    assert melody_f1(np.zeros(0, bool), empty, np.zeros(0, bool))["f1"] == 1.0  # nothing to find, nothing found


def test_features_are_finite_and_ignore_velocity() -> None:
    notes, _ = _piece(1, dip=True)
    x = melody_features(notes)
    assert x.shape == (len(notes), len(FEATURES)) and np.isfinite(x).all()
    loud = Notes.from_arrays(notes.pitch, notes.start, notes.duration, np.arange(len(notes)) % 127 + 1)
    assert np.array_equal(melody_features(loud), x)


def _line_value(choice: tuple[int, ...], logit: np.ndarray, pitch: np.ndarray, bias: float, leap: float) -> float:
    """The Viterbi objective of one choice per group (-1: none)."""
    total = sum(logit[c] + bias for c in choice if c >= 0)
    return total - sum(leap * abs(int(pitch[a]) - int(pitch[b])) / 12.0
                       for a, b in itertools.pairwise(choice) if a >= 0 and b >= 0)


def test_viterbi_is_the_best_line_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        sizes = rng.integers(1, 4, size=rng.integers(1, 5))
        groups = np.repeat(np.arange(len(sizes)), sizes)
        logit, pitch = rng.normal(size=len(groups)), rng.integers(55, 80, size=len(groups))
        bias, leap = float(rng.normal()), float(rng.uniform(0, 3))
        args = (logit, pitch, bias, leap)
        options = [[-1, *np.flatnonzero(groups == k).tolist()] for k in range(len(sizes))]
        best = max(_line_value(c, *args) for c in itertools.product(*options))
        mask = decode_viterbi(logit, pitch, groups, bias, leap)
        chosen = tuple(int(np.flatnonzero(mask & (groups == k))[0]) if (mask & (groups == k)).any() else -1
                       for k in range(len(sizes)))
        assert _line_value(chosen, *args) == pytest.approx(best)
        assert np.bincount(groups[mask], minlength=len(sizes)).max(initial=0) <= 1


def test_argmax_takes_the_likeliest_note_above_the_threshold() -> None:
    groups = np.array([0, 0, 1, 1, 2])
    logit = np.array([0.5, 2.0, -1.0, -3.0, 0.2])
    assert decode_argmax(logit, groups, 0.0).tolist() == [False, True, False, False, True]
    assert decode_argmax(logit, groups, 1.5).tolist() == [False, True, True, False, True]


def test_model_mask_is_monophonic_and_finds_the_planted_melody() -> None:
    model = _fitted()
    for seed, dip in ((10, False), (11, True)):
        notes, melody = _piece(seed, dip=dip)
        mask = model.mask(notes)
        assert _per_onset(mask, notes) <= 1
        f1 = melody_f1(mask, notes, melody)["f1"]
        sizes = np.bincount(onset_groups(notes))
        chance = melody_f1(np.zeros(len(notes), bool) | _random_pick(notes, seed), notes, melody)["f1"]
        assert f1 > max(chance + 0.3, 0.8), (f1, chance, sizes.mean())
        if dip:  # the skyline takes the high held note and misses the dips; the model should not
            assert f1 > melody_f1(skyline(notes), notes, melody)["f1"]


def _random_pick(notes: Notes, seed: int) -> np.ndarray:
    """One random note per onset: the chance line."""
    g = onset_groups(notes)
    rng = np.random.default_rng(seed)
    out = np.zeros(len(notes), bool)
    for k in range(g.max() + 1):
        out[rng.choice(np.flatnonzero(g == k))] = True
    return out


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    nf, nc = len(FEATURES), len(FEATURES) + len(CONTEXT_FEATURES)
    model = MelodyModel([(rng.normal(size=(8, nf)), rng.normal(size=8)), (rng.normal(size=(1, 8)), np.zeros(1))],
                        (rng.normal(size=nf), rng.uniform(0.5, 2, nf)), "viterbi", 0.5, 1.0,
                        [(rng.normal(size=(4, nc)), rng.normal(size=4)), (rng.normal(size=(1, 4)), np.zeros(1))],
                        (rng.normal(size=nc), rng.uniform(0.5, 2, nc)))
    model = MelodyModel.from_arrays(model.arrays())  # float32 weights, as saved
    notes, _ = _piece(3, dip=True)
    path = model.save(tmp_path / "melody", {"f1": 0.5}, "# card\n")
    loaded = load_melody(path)
    assert np.array_equal(loaded.probabilities(notes), model.probabilities(notes))
    assert np.array_equal(loaded.mask(notes), model.mask(notes))
    assert (loaded.decode, loaded.bias, loaded.leap) == ("viterbi", 0.5, 1.0)
    single = MelodyModel(model.layers, model.norm, "argmax", -0.5, 0.0)
    back = load_melody(single.save(tmp_path / "single", {}, "# card\n"))
    assert back.context_layers == [] and back.decode == "argmax"
    assert np.array_equal(back.probabilities(notes), single.probabilities(notes))


def test_shipped_checkpoint_loads_and_is_small() -> None:
    if not (SHIPPED / "config.json").is_file():
        pytest.skip(f"{SHIPPED} absent: train it with `python -m emomusic.training.melody`")
    model = load_melody(SHIPPED)
    assert (SHIPPED / "model.safetensors").stat().st_size < 1_000_000
    card = (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "POP909" in card and "third-party copyright" in card
    notes, melody = _piece(5, dip=True)
    mask = model.mask(notes)
    assert _per_onset(mask, notes) <= 1
    assert melody_f1(mask, notes, melody)["recall"] > 0.5


@pytest.mark.data
def test_shipped_model_beats_skyline_on_pop909_val(data_root_or_skip: Path) -> None:
    if not (SHIPPED / "config.json").is_file():
        pytest.skip(f"{SHIPPED} absent: train it with `python -m emomusic.training.melody`")
    from emomusic.training.melody import load_song, score, songs

    paths = songs(str(data_root_or_skip))["val"][:10]
    model = load_melody(SHIPPED)
    data = [dict(zip(("notes", "y"), load_song(p), strict=True)) for p in paths]
    ours = score([model.mask(d["notes"]) for d in data], data)
    sky = score([skyline(d["notes"]) for d in data], data)
    assert len(data) == 10 and ours["f1"] > sky["f1"] + 0.05, (ours, sky)
