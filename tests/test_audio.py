"""Audio features and the audio emotion recognizer, on audio synthesised in the test (no data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.errors import CheckpointError, InvalidInputError
from emomusic.music.audio import FEATURE_NAMES, SAMPLE_RATE, extract_features, load_audio
from emomusic.music.notes import Notes

sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

SR = SAMPLE_RATE
C_MAJOR = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67)]  # I IV V I
A_MINOR = [(57, 60, 64), (62, 65, 69), (64, 68, 71), (57, 60, 64)]  # i iv V i


def _tone(pitch: int, seconds: float) -> np.ndarray:
    """A plucked harmonic tone (piano-like decay) so chroma and onsets behave as for real notes."""
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((pitch - 69) / 12)
    return sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-3 * t)


def _piece(chords, beat_s: float, notes_per_beat: int = 1, repeats: int = 3) -> np.ndarray:
    """Each chord for four beats as repeated block chords, `notes_per_beat` onsets per beat, bass on the beat."""
    step = beat_s / notes_per_beat
    out = []
    for chord in chords * repeats:
        block = sum(_tone(p, step) for p in chord) * 0.3
        for i in range(4 * notes_per_beat):
            out.append(block + (_tone(chord[0] - 12, step) * 0.4 if i % notes_per_beat == 0 else 0))
    y = np.concatenate(out)
    return (y / np.abs(y).max() * 0.5).astype(np.float32)


def _wav(path, y, sr: int = SR):
    sf.write(str(path), y, sr)
    return path


@pytest.fixture(scope="module")
def pieces():
    """Happy-ish (major, fast, dense) and sad-ish (minor, slow, sparse) test signals."""
    return {"major_fast": _piece(C_MAJOR, 0.4, 2), "minor_slow": _piece(A_MINOR, 1.0, 1, 2)}


@pytest.fixture(scope="module")
def features(pieces):
    return {k: extract_features(y) for k, y in pieces.items()}


# ------------------------------------------------------------------------------------------ loading
def test_load_audio_rejects_bad_files_with_one_line_errors(tmp_path):
    (tmp_path / "text.wav").write_text("not audio at all")
    _wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    _wav(tmp_path / "silent.wav", np.zeros(3 * SR, np.float32))
    nan = np.full(3 * SR, 0.1, np.float32)
    nan[100] = np.nan
    sf.write(str(tmp_path / "nan.wav"), nan, SR, subtype="FLOAT")
    cases = {"absent.wav": "does not exist", "text.wav": "cannot read audio 'text.wav'",
             "empty.wav": "no samples", "silent.wav": "silent", "nan.wav": "NaN"}
    for name, message in cases.items():
        with pytest.raises(InvalidInputError, match=message) as err:
            load_audio(tmp_path / name)
        assert "\n" not in str(err.value)


def test_load_audio_takes_the_middle_30_seconds_resampled_to_mono(tmp_path):
    sr = 16_000
    t = np.arange(40 * sr) / sr
    ramp = (0.1 + 0.8 * t / 40) * np.sin(2 * np.pi * 220 * t)  # louder later: position shows in the level
    y = load_audio(_wav(tmp_path / "long.wav", np.stack([ramp, ramp], 1).astype(np.float32), sr))
    assert y.ndim == 1 and len(y) == 30 * SR
    mid_level = np.abs(y[: SR]).max()
    assert 0.1 + 0.8 * 5 / 40 - 0.02 < mid_level < 0.1 + 0.8 * 6 / 40 + 0.02  # starts at 5 s, not 0 s


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".mp3"])
def test_load_audio_reads_compressed_formats(tmp_path, suffix):
    t = np.arange(3 * 44_100) / 44_100
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    try:
        _wav(tmp_path / f"a{suffix}", tone, 44_100)
    except (sf.LibsndfileError, TypeError, ValueError):
        pytest.skip(f"this libsndfile cannot write {suffix}")
    y = load_audio(tmp_path / f"a{suffix}")
    assert abs(len(y) / SR - 3.0) < 0.1 and 0.2 < np.abs(y).max() < 0.4


def test_load_audio_refuses_oversized_files(tmp_path):
    path = _wav(tmp_path / "a.wav", np.full(2 * SR, 0.1, np.float32))
    with pytest.raises(InvalidInputError, match="limit"):
        load_audio(path, max_bytes=1000)


# ------------------------------------------------------------------------------------------ features
def test_feature_vector_is_fixed_length_and_finite(features):
    for f in features.values():
        assert f.vector.shape == (len(FEATURE_NAMES),) and f.vector.dtype == np.float32
        assert np.all(np.isfinite(f.vector))


def test_key_and_mode_from_chroma(features):
    assert features["major_fast"].key == (0, "major")
    assert features["minor_slow"].key == (9, "minor")
    assert features["major_fast"].values["mode_major"] == 1.0
    assert features["minor_slow"].values["chord_minor"] > features["major_fast"].values["chord_minor"]


def test_tempo_and_onset_density_follow_the_music(features):
    fast, slow = features["major_fast"].values, features["minor_slow"].values
    assert fast["onset_rate"] > 2 * slow["onset_rate"]
    assert fast["tempo_bpm"] > slow["tempo_bpm"]  # 150 vs 60 BPM (librosa may report a related pulse)
    assert 55 <= slow["tempo_bpm"] <= 65 or 115 <= slow["tempo_bpm"] <= 125


def test_features_ignore_overall_gain(pieces):
    y = pieces["major_fast"]
    np.testing.assert_allclose(extract_features(y).vector, extract_features(y * 0.05).vector, rtol=0.02, atol=1e-3)


# ------------------------------------------------------------------------------------------ model
def _toy_training_set(features, n: int = 40, extra: int = 0, seed: int = 0):
    """Jittered copies of the two signals' features: major/fast → Q1, minor/slow → Q3."""
    rng = np.random.default_rng(seed)
    base = [features["major_fast"].vector, features["minor_slow"].vector]
    x = np.stack([base[i % 2] + rng.normal(0, 0.05, len(FEATURE_NAMES)) for i in range(n)]).astype(np.float32)
    if extra:
        x = np.concatenate([x, rng.normal(0, 1, (n, extra)).astype(np.float32)], 1)
    q = np.array([0 if i % 2 == 0 else 2 for i in range(n)])
    va = np.array([[1, 1] if i % 2 == 0 else [-1, -1] for i in range(n)], dtype=np.float32)
    return x, q, va


def _toy_config(n_features: int, hidden: int, mert=None) -> dict:
    return {"n_features": n_features, "hidden": hidden, "dropout": 0.0, "feature_names": list(FEATURE_NAMES),
            "mert_dim": mert.dim if mert else None, "mert_name": mert.name if mert else None}


def test_trained_head_recognises_and_explains_a_file(tmp_path, features, pieces):
    from emomusic.recognition.audio_model import AudioRecognizer, recognize_audio
    from emomusic.training.audio_recognizer import HeadConfig, fit_head

    x, q, va = _toy_training_set(features)
    net = fit_head(x, q, va, HeadConfig(hidden=8, dropout=0.0, epochs=150))
    ckpt = AudioRecognizer(net, _toy_config(x.shape[1], 8)).save(tmp_path / "ckpt")
    sad = recognize_audio(_wav(tmp_path / "sad.wav", pieces["minor_slow"]), checkpoint_dir=ckpt)
    happy = AudioRecognizer.from_pretrained(ckpt).recognize(_wav(tmp_path / "happy.wav", pieces["major_fast"]))
    assert (sad.quadrant, happy.quadrant) == ("Q3", "Q1")
    assert sad.valence < 0 < happy.valence and sad.arousal < 0 < happy.arousal
    assert abs(sum(sad.probabilities.values()) - 1) < 1e-3 and set(sad.probabilities) == {"Q1", "Q2", "Q3", "Q4"}
    assert "minor mode (A minor)" in sad.explanation and "major mode (C major)" in happy.explanation
    assert any("BPM" in e for e in sad.explanation)
    assert sad.file.endswith("sad.wav")


def test_checkpoint_of_another_kind_or_missing_is_a_clear_error(tmp_path):
    from emomusic.checkpoint import save_checkpoint
    from emomusic.recognition.audio_model import AudioRecognizer

    save_checkpoint(tmp_path / "other", kind="clusterer", config={}, state_dict=None)
    with pytest.raises(CheckpointError, match="expected 'audio_recognizer'"):
        AudioRecognizer.from_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="not found"):
        AudioRecognizer.from_pretrained(tmp_path / "absent")


@pytest.fixture(scope="module")
def tiny_mert(tmp_path_factory):
    """A tiny randomly initialised HuBERT (MERT's architecture) saved as a local model folder."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("mert")
    cfg = transformers.HubertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    conv_dim=(8, 8), conv_kernel=(20, 16), conv_stride=(20, 16),  # MERT's 320x hop
                                    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=4)
    transformers.set_seed(0)
    transformers.HubertModel(cfg).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16_000).save_pretrained(folder)
    return folder


def test_mert_embeddings_extend_the_features(tmp_path, tiny_mert, features, pieces):
    from emomusic.recognition.audio_model import AudioRecognizer, MertEmbedder, recognize_audio
    from emomusic.training.audio_recognizer import HeadConfig, fit_head

    mert = MertEmbedder(tiny_mert)
    emb = mert.embed(pieces["minor_slow"], SR)
    assert emb.shape == (16,) and np.all(np.isfinite(emb))
    np.testing.assert_allclose(emb, mert.embed(pieces["minor_slow"], SR), rtol=1e-5)

    base = [np.concatenate([features[k].vector, mert.embed(pieces[k], SR)]) for k in ("major_fast", "minor_slow")]
    x, q, va = _toy_training_set(features)
    x = np.stack([base[i % 2] for i in range(len(x))]) + np.random.default_rng(1).normal(0, 0.05, (len(x), 16 + len(
        FEATURE_NAMES))).astype(np.float32)
    net = fit_head(x.astype(np.float32), q, va, HeadConfig(hidden=8, dropout=0.0, epochs=150), len(FEATURE_NAMES))
    ckpt = AudioRecognizer(net, _toy_config(x.shape[1], 8, mert), mert).save(tmp_path / "ckpt")
    wav = _wav(tmp_path / "sad.wav", pieces["minor_slow"])
    assert recognize_audio(wav, checkpoint_dir=ckpt, mert=tiny_mert).quadrant == "Q3"
    assert recognize_audio(wav, checkpoint_dir=ckpt, mert=mert).quadrant == "Q3"
    with pytest.raises(InvalidInputError, match="trained with MERT"):
        recognize_audio(wav, checkpoint_dir=ckpt)


def test_mert_flag_errors_are_clear(tmp_path, tiny_mert, features):
    from emomusic.recognition.audio_model import AudioRecognizer, MertEmbedder
    from emomusic.training.audio_recognizer import HeadConfig, fit_head

    with pytest.raises(InvalidInputError, match="not a Hugging Face model folder"):
        MertEmbedder(tmp_path)
    x, q, va = _toy_training_set(features, n=8)
    ckpt = AudioRecognizer(fit_head(x, q, va, HeadConfig(hidden=0, epochs=5)), _toy_config(x.shape[1], 0)).save(
        tmp_path / "plain")
    with pytest.raises(InvalidInputError, match="trained without MERT"):
        AudioRecognizer.from_pretrained(ckpt, mert=tiny_mert)


# ------------------------------------------------------------------------------------------ training data
def test_excerpt_and_augmented_clips_are_deterministic(monkeypatch):
    from emomusic.training import audio_recognizer as tr
    from emomusic.training.datasets import Record

    notes = Notes.from_arrays(np.arange(60, 84), np.arange(24) * 8.0, np.full(24, 1.0), np.full(24, 80), tempo=120)
    clip = tr.excerpt(notes, 10.0, 30.0)  # 120 BPM: beats 20..80
    assert clip.start.min() == 4.0 and clip.start.max() == 52.0 and len(clip) == 7
    calls = []
    monkeypatch.setattr("emomusic.export.render.synthesize", lambda n, **kw: calls.append((n, kw)) or np.ones(SR))
    rec = Record("x/1", "emopia", "x.mid", "pop", "train", "x")
    tr.render_clip(rec, 1, notes)
    tr.render_clip(rec, 1, notes)
    tr.render_clip(rec, 0, notes)
    (a, ka), (b, kb), (c, kc) = calls
    assert ka == kb and np.array_equal(a.pitch, b.pitch) and a.tempo == b.tempo
    assert kc == {"seconds": tr.CLIP_SECONDS} and c.tempo == 120


def test_shipped_checkpoint_analyses_a_wav(tmp_path, pieces):
    from emomusic.recognition.audio_model import default_checkpoint, recognize_audio

    assert (default_checkpoint() / "config.json").is_file(), "checkpoints/audio_recognizer is shipped"
    res = recognize_audio(_wav(tmp_path / "a.wav", pieces["major_fast"]))
    assert res.quadrant in res.probabilities and abs(sum(res.probabilities.values()) - 1) < 1e-3
    assert -1 <= res.valence <= 1 and -1 <= res.arousal <= 1 and "major mode (C major)" in res.explanation


def test_load_audio_reads_m4a_through_pyav_and_keeps_the_middle(tmp_path):
    """libsndfile cannot read M4A (phone recordings); PyAV's FFmpeg decodes it, with the same window rule."""
    av = pytest.importorskip("av")
    sr, seconds = 44_100, 4.0
    t = np.arange(int(seconds * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "phone.m4a"
    try:
        with av.open(str(path), "w", format="mp4") as box:
            stream = box.add_stream("aac", rate=sr, layout="mono")
            for i in range(0, len(tone), 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="flt", layout="mono")
                frame.sample_rate = sr
                for packet in stream.encode(frame):
                    box.mux(packet)
            for packet in stream.encode(None):
                box.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        pytest.skip(f"this FFmpeg cannot encode AAC ({exc})")
    y = load_audio(path, max_seconds=2.0)
    assert len(y) == 2 * SR and 0.2 < np.abs(y).max() < 0.4
    with pytest.raises(InvalidInputError, match="phone.m4a.*limit"):
        load_audio(path, max_seconds=2.0, longer="refuse")
