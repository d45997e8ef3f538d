"""Image, video and humming prompts: every input is made here (Pillow/numpy pictures, PyAV clips, numpy hums)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.prompt import humming, image, video
from emomusic.vocab.emotions import quadrant_of

SR = 16000


# ---------------------------------------------------------------- inputs made in code


def _save_png(tmp_path: Path, name: str, rgb: np.ndarray) -> Path:
    from PIL import Image

    path = tmp_path / f"{name}.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def _flat(colour, h: int = 120, w: int = 160) -> np.ndarray:
    rgb = np.empty((h, w, 3), dtype=np.float64)
    rgb[:] = colour
    return rgb


def _checker(a, b, cell: int = 4, h: int = 120, w: int = 160) -> np.ndarray:
    rgb = _flat(a, h, w)
    rgb[(np.indices((h, w)).sum(axis=0) // cell) % 2 == 0] = b
    return rgb


def _write_clip(path: Path, frames: list[np.ndarray], fps: int = 12) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return path


_PALETTE = [(255, 60, 40), (250, 200, 30), (40, 200, 255), (255, 80, 200), (120, 255, 60)]


def _fast_frames(seconds: int = 6, fps: int = 12, shot_s: float = 0.5) -> list[np.ndarray]:
    """Bright saturated shots cut every `shot_s` seconds, with stripes sweeping across each frame."""
    frames = []
    for i in range(seconds * fps):
        colour = np.array(_PALETTE[int(i / fps / shot_s) % len(_PALETTE)])
        f = _flat(colour, 96, 160)
        f[:, (np.arange(160) + 5 * i) % 32 < 16] = 255 - colour
        frames.append(f)
    return frames


def _static_frames(seconds: int = 6, fps: int = 12) -> list[np.ndarray]:
    """One dull blue-grey shot with a barely moving patch."""
    frames = []
    for i in range(seconds * fps):
        f = _flat((60, 70, 90), 96, 160)
        f[40:56, 20 + i // 12:36 + i // 12] = (80, 90, 110)
        frames.append(f)
    return frames


def synth_hum(melody, tempo: float, seed: int = 0, vibrato: float = 0.35, snr_db: float = 20.0,
              glide_s: float = 0.07, breath_s: float = 0.1, detune: float = 0.0, breaths=(), glides=(), sr: int = SR,
              jitter_s: float = 0.0):
    """A hummed melody: harmonic tone, vibrato (5.5 Hz, ±`vibrato` semitones), white noise at `snr_db`,
    portamento of `glide_s` into the notes in `glides`, silent breaths of `breath_s` before the notes in
    `breaths` (and before every repeated pitch), the whole voice `detune` semitones off A440, each
    onset `jitter_s` seconds off the beat (standard deviation; a human's timing).

    Returns the samples and the truth as (pitch, onset seconds) per note.
    """
    rng = np.random.default_rng(seed)
    beat, lead = 60.0 / tempo, 0.3
    n = int((lead + sum(b for _, b in melody) * beat + 0.3) * sr)
    freq, amp = np.zeros(n), np.zeros(n)
    times = lead + beat * np.cumsum([0.0] + [b for _, b in melody])
    times[1:-1] += np.clip(rng.normal(0, jitter_s, len(melody) - 1), -beat / 4, beat / 4) if jitter_s else 0.0
    truth = []
    for i, (p, _) in enumerate(melody):
        t = float(times[i])
        a, e = int(t * sr), int(times[i + 1] * sr)
        truth.append((p, t))
        rest_after = i + 1 < len(melody) and (i + 1 in breaths or melody[i + 1][0] == p)
        e_note = e - int(breath_s * sr) if rest_after else e
        tt = np.arange(e_note - a) / sr
        m = p + detune + vibrato * np.sin(2 * np.pi * 5.5 * tt + rng.uniform(0, 2 * np.pi))
        fresh = i == 0 or i in breaths or melody[i - 1][0] == p
        if i in glides and not fresh:
            g = min(int(glide_s * sr), len(m))
            m[:g] += np.linspace(melody[i - 1][0] - p, 0, g)
        freq[a:e_note] = 440.0 * 2 ** ((m - 69) / 12)
        env = np.ones(e_note - a)
        if fresh:
            env[: int(0.02 * sr)] = np.linspace(0, 1, int(0.02 * sr))
        if rest_after or i == len(melody) - 1:
            env[-int(0.03 * sr):] = np.linspace(1, 0, int(0.03 * sr))
        amp[a:e_note] = env * (0.9 + 0.1 * rng.random())
    phase = 2 * np.pi * np.cumsum(freq) / sr
    y = sum(k**-1.5 * np.sin(k * phase) * (k * freq < sr / 2) for k in range(1, 9)) * amp
    y *= 0.3 / np.abs(y).max()
    noise = rng.normal(0, 1, n)
    noise *= np.sqrt(np.mean(y[amp > 0] ** 2) / 10 ** (snr_db / 10)) / noise.std()
    return (y + noise).astype(np.float32), truth


def _write_wav(path: Path, y: np.ndarray, sr: int = SR, subtype: str | None = None) -> Path:
    import soundfile as sf

    sf.write(str(path), y, sr, subtype=subtype, format="WAV")
    return path


def _recovered(detected: list[tuple[int, float]], truth: list[tuple[int, float]], tol: float = 0.1) -> int:
    """True notes matched one-to-one by a detected note of the same pitch starting within `tol` seconds."""
    used, hits = set(), 0
    for p, t in truth:
        for j, (q, s) in enumerate(detected):
            if j not in used and q == p and abs(s - t) <= tol:
                used.add(j)
                hits += 1
                break
    return hits


def _random_melody(seed: int, base: int, n: int = 16) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    scale = [0, 2, 4, 5, 7, 9, 11, 12, 14]
    return [(base + int(rng.choice(scale)), float(rng.choice([0.5, 1, 1, 1, 1.5, 2]))) for _ in range(n)]


# ---------------------------------------------------------------- image


@pytest.mark.parametrize(("name", "rgb", "quadrant"), [
    ("bright saturated warm", _checker((255, 190, 30), (255, 120, 40), cell=16), "Q1"),
    ("dark saturated busy", _checker((120, 0, 0), (10, 10, 10), cell=3), "Q2"),
    ("dark grey", _flat((50, 50, 50)), "Q3"),
    ("light pastel blue", _flat((190, 215, 240)), "Q4"),
])
def test_image_colours_land_in_the_expected_quadrant(tmp_path, name, rgb, quadrant):
    el = image.image_elements(_save_png(tmp_path, name.replace(" ", "_"), rgb))
    assert el.quadrant == quadrant, (name, el.valence, el.arousal)
    assert quadrant_of(el.valence, el.arousal) == el.quadrant
    assert -1 <= el.valence <= 1 and -1 <= el.arousal <= 1
    assert el.tempo is None and el.notes is None
    assert any("Valdez & Mehrabian" in s and s.startswith("valence:") for s in el.sources)


def test_bright_saturated_beats_dark_grey_on_both_axes(tmp_path):
    bright = image.image_elements(_save_png(tmp_path, "bright", _flat((255, 200, 40))))
    dark = image.image_elements(_save_png(tmp_path, "dark", _flat((45, 45, 45))))
    assert bright.valence > 0.5 > -0.3 > dark.valence
    assert bright.arousal > dark.arousal + 0.5


def test_edges_and_warm_hues_raise_arousal():
    flat = image.colour_features(_flat((100, 100, 100)).astype(np.uint8))
    busy = image.colour_features(_checker((70, 70, 70), (130, 130, 130), cell=2).astype(np.uint8))
    assert busy.edge_density > 0.5 > flat.edge_density == 0.0
    assert image.colour_emotion(busy)[1] > image.colour_emotion(flat)[1]
    red = image.colour_features(_flat((200, 60, 40)).astype(np.uint8))
    blue = image.colour_features(_flat((40, 90, 200)).astype(np.uint8))
    teal = image.colour_features(_flat((30, 150, 190)).astype(np.uint8))  # near Ou et al.'s coolest hue
    assert red.warmth > 0.5 and teal.warmth < -0.5 and blue.warmth < 0


def test_valdez_mehrabian_weights_by_hand():
    f = image.ColourFeatures(brightness=0.75, saturation=0.25, warmth=0.0, edge_density=0.1)
    v, a, _ = image.colour_emotion(f)  # zY = 1, zS = 0, edge z = 0
    assert v == pytest.approx(np.tanh(0.69)) and a == pytest.approx(np.tanh(-0.31))


def test_transparent_areas_read_as_a_white_page(tmp_path):
    from PIL import Image

    path = tmp_path / "transparent.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(path)  # black pixels, fully transparent
    assert image.colour_features(image.load_image(path)).brightness > 0.99


def test_16_bit_grey_is_scaled_not_clipped_to_white(tmp_path):
    from PIL import Image

    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((32, 32), 32768, dtype=np.uint16)).save(path)
    assert 0.45 < image.colour_features(image.load_image(path)).brightness < 0.6  # L* of mid-grey is 54


def test_image_refuses_bad_files(tmp_path, monkeypatch):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    with pytest.raises(InvalidInputError, match="cannot read image"):
        image.image_elements(text)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        image.image_elements(tmp_path / "empty.png")
    with pytest.raises(InvalidInputError, match="does not exist"):
        image.image_elements(tmp_path / "missing.jpg")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        image.image_elements(tmp_path)
    good = _save_png(tmp_path, "good", np.random.default_rng(0).integers(0, 255, (64, 64, 3)))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InvalidInputError, match="damaged|cannot read"):
        image.image_elements(truncated)
    monkeypatch.setattr(image, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(InvalidInputError, match="limit"):
        image.image_elements(good)


def test_image_refuses_decompression_bombs(tmp_path):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(path)  # 81 Mpixel of zeros: a few kB on disk
    assert path.stat().st_size < 100_000
    with pytest.raises(InvalidInputError, match="decompression bomb"):
        image.image_elements(path)


# ---------------------------------------------------------------- video


@pytest.mark.slow
def test_fast_cutting_moving_clip_is_aroused_and_fast_static_clip_is_slow(tmp_path):
    fast = video.video_elements(_write_clip(tmp_path / "fast.mp4", _fast_frames()))
    static = video.video_elements(_write_clip(tmp_path / "static.mp4", _static_frames()))
    assert fast.quadrant == "Q1" and static.quadrant == "Q3"
    assert fast.arousal > 0.5 > -0.5 > static.arousal
    assert fast.tempo >= 140 and static.tempo <= 70
    assert fast.notes is None and quadrant_of(fast.valence, fast.arousal) == fast.quadrant
    assert any("cuts/min" in s for s in fast.sources) and any(s.startswith("tempo:") for s in fast.sources)


@pytest.mark.slow
def test_video_finds_the_cuts_and_separates_motion_from_cuts(tmp_path):
    frames = video.read_frames(_write_clip(tmp_path / "cuts.mp4", _fast_frames(seconds=6, shot_s=1.0)))
    assert len(frames.rgb) == 24  # 4 fps over 6 s
    feats = video.video_features(frames)
    assert len(feats.shots) == 6  # a cut every second, none from the sweeping stripes
    assert feats.cuts_per_minute == pytest.approx(50.0)
    assert feats.motion > 0.05
    one_shot = video.video_features(video.read_frames(_write_clip(tmp_path / "pan.mp4", _fast_frames(shot_s=99))))
    assert len(one_shot.shots) == 1 and one_shot.motion > 0.05
    assert 0.3 < one_shot.activity < feats.activity


@pytest.mark.slow
def test_long_videos_are_analysed_over_the_first_window_only(tmp_path, monkeypatch):
    clip = _write_clip(tmp_path / "long.mp4", _fast_frames(seconds=4))
    monkeypatch.setattr(video, "ANALYSED_SECONDS", 2.0)
    frames = video.read_frames(clip)
    assert frames.truncated and len(frames.rgb) == 8 and frames.times.max() < 2.0
    assert any("only the first 2 s" in s for s in video.video_elements(clip).sources)


@pytest.mark.slow
def test_video_refuses_bad_files(tmp_path, monkeypatch):
    wav = _write_wav(tmp_path / "audio.mp4", np.zeros(SR, dtype=np.float32) + 0.1)
    with pytest.raises(InvalidInputError, match="no video stream|cannot read video"):
        video.video_elements(wav)
    text = tmp_path / "clip.mp4"
    text.write_text("not a video at all")
    with pytest.raises(InvalidInputError, match="cannot read video"):
        video.video_elements(text)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        video.video_elements(tmp_path / "empty.mp4")
    one = _write_clip(tmp_path / "one.mp4", _static_frames()[:1])
    with pytest.raises(InvalidInputError, match="fewer than 2 frames"):
        video.video_elements(one)
    clip = _write_clip(tmp_path / "ok.mp4", _static_frames(seconds=3))
    monkeypatch.setattr(video, "MAX_VIDEO_SECONDS", 1.0)
    with pytest.raises(InvalidInputError, match="limit|trim"):
        video.video_elements(clip)
    monkeypatch.setattr(video, "MAX_VIDEO_BYTES", 10)
    with pytest.raises(InvalidInputError, match="limit"):
        video.video_elements(clip)


# ---------------------------------------------------------------- humming

_HUMS = [  # (seed, lowest note, tempo, detune, vibrato, snr_db): low/high voices, sharp/flat, wide vibrato, noise
    (0, 48, 100.0, 0.0, 0.3, 20.0),
    (1, 57, 132.0, 0.3, 0.5, 12.0),
    (2, 67, 84.0, -0.25, 0.4, 15.0),
]


@pytest.mark.slow
def test_hummed_notes_are_recovered_with_the_right_pitch(tmp_path):
    hits = total = found = 0
    for seed, base, tempo, detune, vibrato, snr in _HUMS:
        melody = _random_melody(seed, base)
        y, truth = synth_hum(melody, tempo, seed=seed, detune=detune, vibrato=vibrato, snr_db=snr,
                             breaths=(4, 9, 13), glides=(2, 3, 6, 10, 11, 14))
        el = humming.humming_elements(_write_wav(tmp_path / f"hum{seed}.wav", y))
        detected = list(zip(el.notes.pitch.tolist(), el.notes.meta["onset_seconds"], strict=True))
        hits += _recovered(detected, truth)
        total += len(truth)
        found += len(detected)
        assert el.tempo == pytest.approx(tempo, rel=0.04), (seed, el.tempo)
    assert hits / total >= 0.9, f"recovered {hits}/{total} notes"
    assert hits / found >= 0.9, f"{found - hits} spurious notes of {found}"


@pytest.mark.slow
def test_hum_becomes_a_melody_on_the_beat_grid_with_key_and_tempo(tmp_path):
    twinkle = [(60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2),
               (65, 1), (65, 1), (64, 1), (64, 1), (62, 1), (62, 1), (60, 2)]
    y, _ = synth_hum(twinkle, 96.0, seed=5, detune=0.2, glides=range(len(twinkle)), sr=22050)  # resampled
    el = humming.humming_elements(_write_wav(tmp_path / "twinkle.wav", y, sr=22050))
    melody = el.notes
    assert melody.pitch.tolist() == [p for p, _ in twinkle]
    assert melody.meta["key"] == "C major"
    assert el.tempo == pytest.approx(96.0, rel=0.03) and melody.tempo == el.tempo
    assert np.allclose(melody.start * 8, np.round(melody.start * 8)) and (np.diff(melody.start) > 0).all()
    assert melody.start.tolist() == np.cumsum([0] + [b for _, b in twinkle[:-1]]).tolist()
    assert (melody.duration >= 1 / 8).all() and (melody.velocity == 80).all()
    assert el.valence > 0 and quadrant_of(el.valence, el.arousal) == el.quadrant
    assert any("pYIN" in s for s in el.sources) and any("C major" in s for s in el.sources)
    assert el.to_dict()["notes"][0][:2] == [60, 0.0]


@pytest.mark.slow
def test_hum_in_an_m4a_container_is_decoded_with_pyav(tmp_path):
    import av

    melody = _random_melody(3, 60)
    y, truth = synth_hum(melody, 110.0, seed=3, glides=(2, 5, 8))
    path = tmp_path / "voice_memo.m4a"  # what phones record; libsndfile cannot read it
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=SR)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
        frame.sample_rate = SR
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    el = humming.humming_elements(path)
    detected = list(zip(el.notes.pitch.tolist(), el.notes.meta["onset_seconds"], strict=True))
    assert _recovered(detected, truth) >= 0.9 * len(truth)


def test_tempo_estimate_from_onsets_is_exact_for_a_steady_rhythm():
    beats = np.cumsum([0, 1, 1, 0.5, 0.5, 1, 2, 1, 1, 0.5, 0.5, 2])
    for bpm in (72.0, 100.0, 126.0):
        onsets = beats * 60.0 / bpm + np.random.default_rng(0).normal(0, 0.01, len(beats))
        assert humming.estimate_tempo(onsets) == pytest.approx(bpm, rel=0.02)


def test_hum_refuses_bad_audio(tmp_path, monkeypatch):
    with pytest.raises(InvalidInputError, match="silent"):
        humming.humming_elements(_write_wav(tmp_path / "silent.wav", np.zeros(SR * 2, dtype=np.float32)))
    nan = np.full(SR, 0.1, dtype=np.float32)
    nan[100] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        humming.humming_elements(_write_wav(tmp_path / "nan.wav", nan, subtype="FLOAT"))
    text = tmp_path / "hum.wav"
    text.write_text("RIFF? no, just text")
    with pytest.raises(InvalidInputError, match="cannot read humming audio"):
        humming.humming_elements(text)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        humming.humming_elements(tmp_path / "empty.wav")
    png = _save_png(tmp_path, "picture", _flat((1, 2, 3)))
    with pytest.raises(InvalidInputError, match="cannot read humming audio"):
        humming.humming_elements(png)
    with pytest.raises(InvalidInputError, match="shorter"):
        humming.humming_elements(_write_wav(tmp_path / "blip.wav", np.full(SR // 10, 0.1, dtype=np.float32)))
    long = _write_wav(tmp_path / "long.wav", np.full(SR * 3, 0.1, dtype=np.float32))
    monkeypatch.setattr(humming, "MAX_HUM_SECONDS", 2.0)
    with pytest.raises(InvalidInputError, match="limit"):
        humming.humming_elements(long)


@pytest.mark.slow
def test_noise_without_a_tune_is_refused(tmp_path):
    noise = np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32)
    with pytest.raises(InvalidInputError, match="clear note"):
        humming.humming_elements(_write_wav(tmp_path / "noise.wav", noise))


def test_media_modules_import_no_heavy_libraries():
    code = ("import sys, emomusic.prompt.image, emomusic.prompt.video, emomusic.prompt.humming; "
            "print(sorted({'PIL', 'av', 'librosa', 'soundfile'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
