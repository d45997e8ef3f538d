"""Audio emotion recognizer: librosa features (optionally + MERT embeddings) → quadrant and valence/arousal.

The network is deliberately small (standardisation, one hidden layer, two heads) because its
training audio is ~2,000 clips rendered from MIDI: a bigger model would learn the synthesiser.
The standardisation statistics and the per-quadrant feature means used to explain a result are
buffers, so one `model.safetensors` holds everything and no pickled scaler is needed.

MERT (a HuBERT-like music audio model) is optional: `mert=DIR` loads a local Hugging Face model
folder with transformers (``local_files_only=True``: it never downloads), mean-pools its hidden
states over time and layers, and appends them to the features. A head must have been trained with
the same embedding size; the shipped checkpoint uses librosa features only.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.errors import CheckpointError, InvalidInputError
from emomusic.types import Recognition
from emomusic.vocab.emotions import QUADRANTS

__all__ = ["AudioEmotionNet", "AudioRecognizer", "KIND", "MertEmbedder", "default_checkpoint", "recognize_audio"]

KIND = "audio_recognizer"


def default_checkpoint() -> Path:
    """The shipped checkpoint folder, checkpoints/audio_recognizer in the repository."""
    return Path(__file__).resolve().parents[2] / "checkpoints" / KIND


class AudioEmotionNet(nn.Module):
    """Standardise → (hidden layer) → 4-quadrant logits and tanh valence/arousal.

    ``hidden=0`` gives a multitask linear model. ``n_described`` is how many leading inputs are
    librosa features (the rest are MERT dimensions); only those get quadrant means for explanations.
    """

    def __init__(self, n_features: int, hidden: int = 64, dropout: float = 0.2, n_described: int | None = None):
        super().__init__()
        n_described = n_features if n_described is None else n_described
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("quadrant_means", torch.zeros(4, n_described))
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Dropout(dropout)) if hidden else None
        width = hidden or n_features
        self.quadrant = nn.Linear(width, 4)
        self.va = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = (x - self.mean) / self.std
        if self.body is not None:
            h = self.body(h)
        return self.quadrant(h), torch.tanh(self.va(h))

    def set_statistics(self, x: np.ndarray, quadrant: np.ndarray) -> None:
        """Standardisation and per-quadrant means from the training features (quadrant -1 = unknown)."""
        self.mean.copy_(torch.as_tensor(x.mean(0)))
        self.std.copy_(torch.as_tensor(np.maximum(x.std(0), 1e-6)))
        n = self.quadrant_means.shape[1]
        for q in range(4):
            rows = x[quadrant == q, :n]
            if len(rows):
                self.quadrant_means[q] = torch.as_tensor(rows.mean(0))


class MertEmbedder:
    """A local MERT (or any HuBERT/wav2vec2-like) model: audio → one mean-pooled embedding vector."""

    def __init__(self, directory: str | os.PathLike):
        folder = Path(directory)
        if not (folder / "config.json").is_file():
            raise InvalidInputError(f"--mert {folder}: not a Hugging Face model folder (no config.json); "
                                    "download MERT first, e.g. m-a-p/MERT-v1-95M, and point --mert at it")
        # MERT's own repositories ship modelling code (auto_map); it is read from the folder the user
        # chose, never fetched, so it is trusted only in that case.
        custom = "auto_map" in json.loads((folder / "config.json").read_text(encoding="utf-8"))
        try:
            from transformers import AutoFeatureExtractor, AutoModel

            self.model = AutoModel.from_pretrained(folder, local_files_only=True, trust_remote_code=custom)
            try:
                self.extractor = AutoFeatureExtractor.from_pretrained(folder, local_files_only=True,
                                                                      trust_remote_code=custom)
            except (OSError, ValueError):
                self.extractor = None
        except Exception as exc:  # transformers raises many types for a broken folder
            raise InvalidInputError(f"--mert {folder}: cannot load the model ({' '.join(str(exc).split())[:200]})"
                                    ) from None
        self.model.eval()
        self.name = folder.name
        self.dim = int(self.model.config.hidden_size)
        self.sample_rate = int(getattr(self.extractor, "sampling_rate", 24_000) or 24_000)

    def embed(self, y: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mean over time and layers of the hidden states for a mono signal.

        Args:
            y: mono signal.
            sample_rate: its sample rate (resampled to MERT's).

        Returns:
            float32 (dim,).
        """
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sample_rate, target_sr=self.sample_rate)
        if self.extractor is not None:
            inputs = self.extractor(y, sampling_rate=self.sample_rate, return_tensors="pt")
            values = inputs["input_values"]
        else:
            values = torch.as_tensor((y - y.mean()) / (y.std() + 1e-7))[None]
        with torch.inference_mode():
            out = self.model(values, output_hidden_states=True)
        return torch.stack(out.hidden_states).mean(dim=(0, 2))[0].float().numpy()


def _resolve_mert(mert: str | os.PathLike | MertEmbedder | None) -> MertEmbedder | None:
    return mert if mert is None or isinstance(mert, MertEmbedder) else MertEmbedder(mert)


class AudioRecognizer:
    """A loaded recognizer; build it once and call :meth:`recognize` for many files."""

    def __init__(self, net: AudioEmotionNet, config: dict, mert: MertEmbedder | None = None, path: str = ""):
        want = config.get("mert_dim")
        if want and mert is None:
            raise InvalidInputError(f"{path}: this audio recognizer was trained with MERT embeddings "
                                    f"({config.get('mert_name')}); pass --mert DIR pointing at that model")
        if mert is not None and not want:
            raise InvalidInputError(f"{path}: this audio recognizer was trained without MERT embeddings; "
                                    "drop --mert or train one with MERT (`emomusic train audio-recognizer --mert DIR`)")
        if mert is not None and mert.dim != want:
            raise InvalidInputError(f"--mert {mert.name}: embeddings have {mert.dim} dimensions, the recognizer "
                                    f"at {path} was trained with {want}; use the same MERT model")
        self.net, self.config, self.mert = net.eval(), config, mert

    @classmethod
    def from_pretrained(cls, checkpoint_dir: str | os.PathLike | None = None,
                        mert: str | os.PathLike | MertEmbedder | None = None) -> AudioRecognizer:
        from emomusic.music.audio import FEATURE_NAMES

        directory = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint()
        if checkpoint_dir is None and not (directory / "config.json").exists():
            raise InvalidInputError(f"{directory}: no shipped audio recognizer; "
                                    "train one with `emomusic train audio-recognizer`")
        ckpt = load_checkpoint(directory, kind=KIND)
        cfg = ckpt.config
        if tuple(cfg.get("feature_names", ())) != FEATURE_NAMES:
            raise CheckpointError(f"{directory / 'config.json'}: made for other audio features; retrain it")
        net = AudioEmotionNet(cfg["n_features"], cfg["hidden"], cfg["dropout"], len(FEATURE_NAMES))
        ckpt.load_into(net)
        return cls(net, cfg, _resolve_mert(mert), str(directory))

    def save(self, directory: str | os.PathLike, *, metrics: dict | None = None, model_card: str = "") -> Path:
        return save_checkpoint(directory, kind=KIND, config=self.config, state_dict=self.net.state_dict(),
                               metrics=metrics, model_card=model_card)

    def vector(self, y: np.ndarray, sample_rate: int, name: str = "audio"):
        """(AudioFeatures, model input) of a signal: librosa features, plus MERT when configured.

        Args:
            y: mono signal.
            sample_rate: its sample rate.
            name: the file's name, for error messages.

        Returns:
            (AudioFeatures, float32 model input).
        """
        from emomusic.music.audio import extract_features

        feats = extract_features(y, sample_rate, name)
        x = feats.vector
        if self.mert is not None:
            x = np.concatenate([x, self.mert.embed(y[: int(30 * sample_rate)], sample_rate)]).astype(np.float32)
        return feats, x

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quadrant probabilities (n, 4) and valence/arousal (n, 2) for a batch of model inputs.

        Args:
            x: (n, n_inputs) model inputs from :meth:`vector`.

        Returns:
            (probabilities (n, 4), valence/arousal (n, 2)).
        """
        with torch.inference_mode():
            logits, va = self.net(torch.as_tensor(np.atleast_2d(x), dtype=torch.float32))
        return torch.softmax(logits, -1).numpy(), va.numpy()

    def recognize(self, path: str | os.PathLike) -> Recognition:
        """Quadrant, valence/arousal and the musical evidence for one audio file.

        Args:
            path: an audio file.

        Returns:
            The file's Recognition.
        """
        from emomusic.music.audio import SAMPLE_RATE, load_audio

        y = load_audio(path)
        feats, x = self.vector(y, SAMPLE_RATE, str(path))
        probs, va = self.predict(x)
        q = QUADRANTS[int(probs[0].argmax())]
        return Recognition(file=str(path), quadrant=q,
                           probabilities={k: round(float(p), 4) for k, p in zip(QUADRANTS, probs[0], strict=True)},
                           valence=round(float(va[0, 0]), 4), arousal=round(float(va[0, 1]), 4),
                           explanation=explain(feats, q, self.net))


def _word(value: float, z: float, low: str, high: str, fmt: str = "") -> str | None:
    if abs(z) < 0.6:
        return None
    return (low if z < 0 else high) + (fmt.format(value) if fmt else "")


def _note_name(midi: float) -> str:
    from emomusic.music.audio import PITCH_NAMES

    m = int(round(midi))
    return f"{PITCH_NAMES[m % 12]}{m // 12 - 1}"


def explain(feats, quadrant: str, net: AudioEmotionNet, top: int = 6) -> list[str]:
    """Plain-word evidence, the facts that point most toward the predicted quadrant first.

    Key and tempo are always stated (like the symbolic recognizer's "minor mode", "slow, about 64 BPM");
    dynamics, onset density, register, brightness and chord colour only when they stand out
    (|z| ≥ 0.6 against the training audio) and sit closer to the predicted quadrant's training mean
    than to the other quadrants' means.

    Args:
        feats: the file's AudioFeatures.
        quadrant: the predicted quadrant.
        net: the network (its training statistics give the z-scores).
        top: at most this many phrases.

    Returns:
        Phrases in plain words.
    """
    v = feats.values
    mean = dict(zip(feats.values, net.mean[: len(v)].tolist(), strict=True))
    std = dict(zip(feats.values, net.std[: len(v)].tolist(), strict=True))
    names = list(v)
    qi = QUADRANTS.index(quadrant)
    qmeans = net.quadrant_means.numpy()

    def z(name: str) -> float:
        return (v[name] - mean[name]) / std[name]

    def support(name: str) -> float:
        col = qmeans[:, names.index(name)]
        dist = np.abs(v[name] - col) / std[name]
        return float(np.delete(dist, qi).mean() - dist[qi])

    bpm = v["tempo_bpm"]
    pace = "slow" if bpm < 80 else "moderate tempo" if bpm < 115 else "fast"
    items = [("mode_major", f"{feats.key[1]} mode ({feats.key_name})"), ("tempo_bpm", f"{pace}, about {bpm:.0f} BPM")]
    candidates = [
        ("rms_db_p50", _word(v["rms_db_p50"], z("rms_db_p50"), "soft dynamics", "loud, full dynamics")),
        ("dynamic_range_db", _word(0, max(z("dynamic_range_db"), 0), "", "wide dynamic range")),
        ("onset_rate", _word(v["onset_rate"], z("onset_rate"), "sparse onsets", "dense onsets",
                             ", about {:.1f} per second")),
        ("register_mean_pitch", _word(v["register_mean_pitch"], z("register_mean_pitch"), "low register",
                                      "high register", f" (around {_note_name(v['register_mean_pitch'])})")),
        ("centroid_log2_mean", _word(0, z("centroid_log2_mean"), "dark, mellow timbre", "bright timbre")),
        ("chord_minor", _word(0, max(z("chord_minor"), 0), "", "many minor chords")),
        ("chord_diminished", _word(0, max(z("chord_diminished"), 0), "", "diminished chords")),
    ]
    extra = sorted(((n, text) for n, text in candidates if text and support(n) > 0), key=lambda i: -support(i[0]))
    items = sorted(items + extra[: max(0, top - len(items))], key=lambda item: -support(item[0]))
    return [text for _, text in items]


@functools.lru_cache(maxsize=4)
def _cached(checkpoint_dir: str | None, mert: str | None) -> AudioRecognizer:
    return AudioRecognizer.from_pretrained(checkpoint_dir, mert)


def recognize_audio(path: str | os.PathLike, checkpoint_dir: str | os.PathLike | None = None,
                    mert: str | os.PathLike | MertEmbedder | None = None) -> Recognition:
    """Recognise the emotion of one audio file (.wav .flac .mp3 .ogg); the model is loaded once and reused.

    Args:
        path: an audio file.
        checkpoint_dir: the audio recognizer's folder (default: the shipped one).
        mert: a MERT model folder or embedder, if the checkpoint uses one.

    Returns:
        The file's Recognition.
    """
    if isinstance(mert, MertEmbedder):
        return AudioRecognizer.from_pretrained(checkpoint_dir, mert).recognize(path)
    return _cached(None if checkpoint_dir is None else str(checkpoint_dir),
                   None if mert is None else str(mert)).recognize(path)
