"""The performance layer: velocities around the kept local level, pedal, persistence, pipeline use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emomusic.errors import CheckpointError
from emomusic.export.midi import export_midi
from emomusic.expression.model import (
    FRAME_FEATURES,
    NOTE_FEATURES,
    ExpressionModel,
    frame_features,
    load_expression,
    local_level,
    note_features,
    pedal_frames,
)
from emomusic.music.midi import load_notes
from emomusic.music.notes import Notes


def _piece(bars: int = 8) -> Notes:
    """Bass on each downbeat, a chord on beat 1 and a melody in quarters above: 4/4 at 90 BPM."""
    pitch, start, dur = [], [], []
    for b in range(bars):
        root = (48, 53, 55, 48)[b % 4]
        pitch += [root - 12, root, root + 4, root + 7]
        start += [4.0 * b] * 4
        dur += [4.0, 2.0, 2.0, 2.0]
        pitch += [72 + (2 * b + k) % 7 for k in range(4)]
        start += [4.0 * b + k for k in range(4)]
        dur += [1.0] * 4
    return Notes.from_arrays(pitch, start, dur, [64] * len(pitch), tempo=90.0)


def _model(seed: int = 0, top_boost: float = 10.0) -> ExpressionModel:
    """A linear velocity model (top voice louder by `top_boost`) and a pedal model that is always down."""
    rng = np.random.default_rng(seed)
    nf, ff = len(NOTE_FEATURES), len(FRAME_FEATURES)
    w = np.zeros((1, nf))
    w[0, NOTE_FEATURES.index("top")] = top_boost
    vel = [(w, np.zeros(1))]
    ped = [(rng.normal(size=(4, ff)) * 0.0, np.zeros(4)), (np.zeros((1, 4)), np.array([5.0]))]
    return ExpressionModel(vel, (np.zeros(nf), np.ones(nf)), ped, (np.zeros(ff), np.ones(ff)), 0.5)


def test_features_have_the_declared_width_and_no_nans() -> None:
    notes = _piece()
    x = note_features(notes)
    frames, f = frame_features(notes)
    assert x.shape == (len(notes), len(NOTE_FEATURES)) and np.isfinite(x).all()
    assert f.shape == (len(frames), len(FRAME_FEATURES)) and np.isfinite(f).all()
    assert frames[-1] <= 8 * 4 * 60 / 90.0
    top = x[:, NOTE_FEATURES.index("top")] > 0.5
    assert top.sum() == 8 * 4  # each melody note is the top of its onset (the chord's top on beat 1 is below)


def test_render_keeps_the_level_voices_the_top_and_adds_pedal() -> None:
    notes = _piece()
    out = _model().render(notes)
    top = note_features(notes)[:, NOTE_FEATURES.index("top")] > 0.5
    assert out.velocity[top].mean() - out.velocity[~top].mean() == pytest.approx(10.0, abs=1)
    assert abs(np.mean(local_level(out)) - np.mean(local_level(notes)) - 10.0 * top.mean()) < 1.0
    assert len(out.pedals) == 1 and out.pedals[0, 0] == 0 and out.pedals[0, 1] >= notes.end - 0.1
    np.testing.assert_array_equal(out.pitch, notes.pitch)  # the notes themselves do not change
    assert out.velocity.min() >= 1 and out.velocity.max() <= 127


def test_lifts_shorter_than_a_gesture_are_ignored_and_threshold_is_used() -> None:
    notes = _piece(2)
    m = _model()
    m.pedal_threshold = 1.0  # nothing is probable enough
    assert len(m.pedals(notes)) == 0


def test_pedal_survives_midi_and_labels_frames(tmp_path: Path) -> None:
    out = _model().render(_piece(2))
    back = load_notes(export_midi(out, tmp_path / "p.mid"))
    np.testing.assert_allclose(back.pedals, out.pedals, atol=1 / 480)
    frames, _ = frame_features(back)
    assert pedal_frames(back, frames).mean() > 0.9


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    m = _model(top_boost=7.0)
    m.pedal_threshold = 0.6
    m.velocity_spread = 9.5
    m.save(tmp_path / "expression", {"velocity_mae": 1.0}, "# card\n")
    back = load_expression(tmp_path / "expression")
    notes = _piece(2)
    np.testing.assert_allclose(back.deviations(notes), m.deviations(notes), atol=1e-4)
    assert back.pedal_threshold == pytest.approx(0.6) and back.velocity_spread == pytest.approx(9.5)
    with pytest.raises(CheckpointError):
        load_expression(tmp_path / "missing")


def test_pipeline_renders_unless_asked_not_to() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    flat = em.generate(emotion="calm", bars=4, seed=1)[0]
    em.expression = _model()
    played = em.generate(emotion="calm", bars=4, seed=1)[0]
    raw = em.generate(emotion="calm", bars=4, seed=1, expression=False)[0]
    np.testing.assert_array_equal(raw.notes.velocity, flat.notes.velocity)
    assert len(raw.notes.pedals) == 0 and len(played.notes.pedals) >= 1
    np.testing.assert_array_equal(played.notes.pitch, raw.notes.pitch)


def test_shipped_checkpoint_loads_and_beats_its_baselines() -> None:
    from emomusic.settings import checkpoints_root

    root = checkpoints_root() / "expression"
    if not root.is_dir():
        pytest.skip(f"no shipped expression model in {root} (train one: emomusic train expression)")
    import json

    m = json.loads((root / "config.json").read_text())["metrics"]
    assert m["velocity_mae"] < m["velocity_mae_flat_baseline"]
    assert m["pedal_frame_accuracy"] >= m["pedal_frame_accuracy_majority"]
    out = load_expression(root).render(_piece())
    assert len(np.unique(out.velocity)) >= 4 and len(out.pedals) >= 1


def test_seeded_render_draws_the_learned_spread_reproducibly() -> None:
    notes = _piece()
    model = replace(_model(), velocity_spread=8.0)
    mean = model.render(notes).velocity
    a, b, c = (model.render(notes, seed=s).velocity for s in (1, 1, 2))
    assert (a == b).all() and (a != c).any()  # one seed, one performance
    assert len(np.unique(a)) > len(np.unique(mean))  # finer dynamics than the smooth mean
    assert 4.0 < float(np.std(a.astype(float) - mean)) < 12.0  # about the spread asked for
    assert (replace(model, velocity_spread=0.0).render(notes, seed=1).velocity == mean).all()


def test_pedal_is_marked_in_musicxml(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    from emomusic.export.musicxml import export_musicxml

    notes = replace(_piece(2), pedals=np.array([[0.0, 3.5], [4.0, 7.5]]))
    text = export_musicxml(notes, tmp_path / "p.musicxml").read_text()
    assert text.count('<pedal') == 4 and text.count('type="start"') >= 2  # Ped. ... * twice
    plain = export_musicxml(replace(notes, pedals=np.zeros((0, 2))), tmp_path / "q.musicxml").read_text()
    assert "<pedal" not in plain


def test_spread_is_a_typical_pieces_not_the_pooled_notes() -> None:
    """A long, uneven performance must not set the note-to-note variation drawn into every piece."""
    from emomusic.training.expression import piece_spread

    rng = np.random.default_rng(0)
    short = [rng.normal(5.0, 4.0, 200) for _ in range(2)]  # two even pop clips (offsets are a piece's own)
    long = rng.normal(0.0, 20.0, 5000)  # one long concert performance, four times as uneven
    residual = np.concatenate([*short, long])
    owner = np.repeat([0, 1, 2], [200, 200, 5000])
    assert residual.std() > 15  # pooled over notes: the long piece's spread
    assert piece_spread(residual, owner) == pytest.approx(4.0, abs=0.6)
    assert piece_spread(np.zeros(0), np.zeros(0, dtype=int)) == 0.0
