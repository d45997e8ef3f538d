"""Audio preview and piano roll: real files that other tools can read."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.export import render
from emomusic.music.notes import Notes


def _melody() -> Notes:
    pitch = np.array([60, 64, 67, 72, 67, 64, 60, 55])
    start = np.arange(8, dtype=float) * 0.5
    return Notes.from_arrays(pitch, start, np.full(8, 0.5), np.full(8, 90), tempo=120.0)


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs the fluidsynth program (apt install fluidsynth)")
def test_render_wav_with_fluidsynth_has_sound_of_the_right_length(tmp_path):
    sf = pytest.importorskip("soundfile")
    out = render.render_wav(_melody(), tmp_path / "m.wav")
    audio, sr = sf.read(out)
    assert sr == render.SAMPLE_RATE
    assert len(audio) / sr >= 4.0 * 60 / 120  # four beats of notes at 120 BPM
    assert np.abs(audio).max() > 0.01


def test_render_falls_back_to_sine_tones_with_a_warning(tmp_path, monkeypatch):
    sf = pytest.importorskip("soundfile")
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = render.render_wav(_melody(), tmp_path / "m.wav")
    assert any("sine" in str(w.message) for w in caught)
    audio, _ = sf.read(out)
    assert np.abs(audio).max() > 0.01


def test_render_refuses_to_overwrite_and_missing_input(tmp_path):
    (tmp_path / "m.wav").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="already exists"):
        render.render_wav(_melody(), tmp_path / "m.wav")
    with pytest.raises(InvalidInputError, match="no such MIDI file"):
        render.render_wav(tmp_path / "absent.mid", tmp_path / "o.wav")


def test_piano_roll_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = render.piano_roll_png(_melody(), tmp_path / "roll.png", title="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = Notes.from_arrays(np.array([]), np.array([]), np.array([]), np.array([]))
    assert render.piano_roll_png(empty, tmp_path / "empty.png").stat().st_size > 0


def test_preview_level_lifts_quiet_renders_and_never_clips(tmp_path) -> None:
    import soundfile

    from emomusic.export.render import PEAK_LIMIT, PREVIEW_GAIN, _level

    t = np.arange(2205) / 22050
    for amp, expect in ((0.05, 0.05 * PREVIEW_GAIN), (0.5, PEAK_LIMIT)):
        raw, out = tmp_path / f"raw{amp}.wav", tmp_path / f"out{amp}.wav"
        soundfile.write(str(raw), (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050, subtype="FLOAT")
        _level(raw, out)
        y, sr = soundfile.read(str(out))
        assert sr == 22050 and soundfile.info(str(out)).subtype == "PCM_16"
        assert abs(np.abs(y).max() - expect) < 2e-3
