"""Audio features for emotion recognition: key, chords, tempo, onsets, dynamics, timbre.

Every audio file becomes one fixed-length vector (`FEATURE_NAMES`) computed from at most
`MAX_SECONDS` of mono audio at 22,050 Hz, so a three-minute song and a 30-second clip cost the same
and the recognizer sees what it was trained on (30-second excerpts rendered from MIDI).

Why these features: mode and harmony carry valence (minor keys, diminished chords read as sad or
tense), tempo, onset density and loudness carry arousal (EMOPIA's and most MER papers' findings).
The waveform is peak-normalised first, so a quiet recording and a loud master of the same music
give the same features; dynamics are measured relative to the loudest passages.

librosa is imported inside the functions (an optional dependency, not needed to generate music).
Note: librosa's tuning estimation crashes with the numba build installed here, so audio is assumed
to be tuned to A440 (`tuning=0`), which holds for everything rendered from MIDI.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.music.attributes import key_correlations

__all__ = [
    "AUDIO_SUFFIXES",
    "FEATURE_NAMES",
    "MAX_SECONDS",
    "SAMPLE_RATE",
    "AudioFeatures",
    "audio_features",
    "extract_features",
    "is_audio_path",
    "load_audio",
]

SAMPLE_RATE = 22_050
MAX_SECONDS = 30.0
MIN_SECONDS = 1.0
MAX_FILE_BYTES = 500 * 2**20
SILENCE_PEAK = 1e-4
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
HOP = 512
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CHORD_QUALITIES = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}
N_MEL = 64
MEL_GROUPS = 16
CQT_FMIN_MIDI = 24  # C1
CQT_BPO = 36  # three bins per semitone: 12 leak too much between neighbouring pitch classes
CQT_BINS = 7 * CQT_BPO  # seven octaves, C1..B7

_SCALAR_NAMES = (
    "key_clarity", "mode_major", "major_minor_margin",
    "tempo_bpm", "pulse_clarity", "onset_rate", "onset_strength_mean", "onset_strength_std", "ioi_cv",
    "rms_db_mean", "rms_db_std", "rms_db_p10", "rms_db_p50", "rms_db_p90", "dynamic_range_db", "loud_fraction",
    "centroid_log2_mean", "centroid_log2_std", "bandwidth_log2_mean", "rolloff_log2_mean", "flatness_db_mean",
    "zcr_mean", "register_mean_pitch", "register_spread",
    "chord_major", "chord_minor", "chord_diminished", "chord_augmented", "chord_change_rate", "chord_fit",
)
FEATURE_NAMES: tuple[str, ...] = (
    _SCALAR_NAMES
    + tuple(f"chroma_degree_{i}" for i in range(12))
    + tuple(f"chord_root_degree_{i}" for i in range(12))
    + tuple(f"contrast_{i}" for i in range(7))
    + tuple(f"logmel_mean_{i}" for i in range(MEL_GROUPS))
    + tuple(f"logmel_std_{i}" for i in range(MEL_GROUPS))
)


@dataclass(frozen=True)
class AudioFeatures:
    """The feature vector of one excerpt plus the readable facts the explanation quotes."""

    vector: np.ndarray  # float32, ordered like FEATURE_NAMES
    key: tuple[int, str]  # (tonic pitch class, "major" | "minor")
    duration: float  # seconds analysed

    @property
    def values(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.vector.tolist(), strict=True))

    @property
    def key_name(self) -> str:
        return f"{PITCH_NAMES[self.key[0]]} {self.key[1]}"


def is_audio_path(path: str | os.PathLike) -> bool:
    """True for the suffixes the audio recognizer reads (.wav .flac .mp3 .ogg)."""
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def _duration(path: Path) -> float:
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(librosa.get_duration(path=str(path)))
    except Exception as exc:  # soundfile/audioread raise many types for a bad file
        raise InvalidInputError(f"{path}: not a readable audio file ({_one_line(exc)}); "
                                f"give a .wav, .flac, .mp3 or .ogg file") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def load_audio(path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS,
               max_bytes: int = MAX_FILE_BYTES) -> np.ndarray:
    """Mono float32 audio: the middle `max_seconds` of the file, resampled to `sample_rate`.

    The middle, not the start, because songs often open with a quiet intro that is not their mood.
    Raises InvalidInputError for a missing, oversized, unreadable, empty, silent or non-finite file.
    """
    import librosa

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such audio file")
    if path.stat().st_size > max_bytes:
        raise InvalidInputError(f"{path}: larger than {max_bytes // 2**20} MB; cut an excerpt first")
    total = _duration(path)
    offset = max(0.0, (total - max_seconds) / 2)
    try:
        with warnings.catch_warnings():  # librosa warns when it falls back to audioread
            warnings.simplefilter("ignore")
            y, native = librosa.load(str(path), sr=None, mono=True, offset=offset, duration=max_seconds)
    except Exception as exc:
        if "finite" in str(exc):  # librosa refuses NaN/inf while mixing down to mono
            raise InvalidInputError(f"{path}: contains NaN or infinite samples; re-export the file") from None
        raise InvalidInputError(f"{path}: not a readable audio file ({_one_line(exc)})") from None
    if len(y) and not np.all(np.isfinite(y)):  # checked before resampling, which refuses NaN
        raise InvalidInputError(f"{path}: contains NaN or infinite samples; re-export the file")
    if native != sample_rate and len(y):
        y = librosa.resample(y, orig_sr=native, target_sr=sample_rate)
    return check_audio(y, str(path), sample_rate)


def check_audio(y: np.ndarray, name: str = "audio", sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The signal as float32 if it is long enough, finite and not silent; InvalidInputError otherwise."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InvalidInputError(f"{name}: expected mono audio, got shape {y.shape}")
    if len(y) < MIN_SECONDS * sample_rate:
        raise InvalidInputError(f"{name}: empty or shorter than {MIN_SECONDS:g} s; give at least a few seconds")
    if not np.all(np.isfinite(y)):
        raise InvalidInputError(f"{name}: contains NaN or infinite samples; re-export the file")
    if float(np.abs(y).max()) < SILENCE_PEAK:
        raise InvalidInputError(f"{name}: silent (peak below {SILENCE_PEAK:g}); give a recording with sound")
    return y


# ------------------------------------------------------------------------------------------ features
def _chord_templates() -> tuple[np.ndarray, list[tuple[int, str]]]:
    """(48, 12) unit-norm triad templates and their (root, quality) labels."""
    rows, labels = [], []
    for quality, intervals in CHORD_QUALITIES.items():
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in intervals]] = 1.0
            rows.append(t / np.linalg.norm(t))
            labels.append((root, quality))
    return np.array(rows), labels


_CHORDS, _CHORD_LABELS = _chord_templates()


def _key_features(chroma_mean: np.ndarray) -> tuple[tuple[int, str], list[float]]:
    """Krumhansl–Schmuckler key of the mean chroma, with how clear it is and the major/minor margin."""
    corr = key_correlations(chroma_mean)
    k = int(np.argmax(corr))
    key = (k % 12, "major" if k < 12 else "minor")
    return key, [float(corr[k]), float(key[1] == "major"), float(corr[:12].max() - corr[12:].max())]


def _tonic_triad_mode(chroma: np.ndarray, frames_per_beat: float, key: tuple[int, str]) -> tuple[int, str]:
    """The mode of the tonic's own chords when they clearly disagree with the key profile.

    Krumhansl profiles of audio chroma confuse A minor with A major when the harmonic-minor
    dominant (E major, with G#) is frequent; the quality of the chords built on the tonic decides.
    """
    _, labels = _beat_chords(chroma, frames_per_beat)
    on_tonic = [q for r, q in labels if r == key[0]]
    major, minor = on_tonic.count("major"), on_tonic.count("minor")
    if key[1] == "major" and minor >= 2 * max(major, 1):
        return key[0], "minor"
    if key[1] == "minor" and major >= 2 * max(minor, 1):
        return key[0], "major"
    return key


def _beat_chords(chroma: np.ndarray, frames_per_beat: float) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Template scores (48, beats) of beat-synchronous chroma and the best (root, quality) per beat."""
    import librosa

    bounds = np.arange(0, chroma.shape[1], max(1.0, frames_per_beat)).astype(int)
    beats = librosa.util.sync(chroma, bounds, aggregate=np.mean)
    norms = np.linalg.norm(beats, axis=0)
    beats = beats[:, norms > 1e-6] / norms[norms > 1e-6]
    scores = _CHORDS @ beats
    return scores, [_CHORD_LABELS[b] for b in scores.argmax(0)] if beats.shape[1] else []


def _chord_features(chroma: np.ndarray, frames_per_beat: float, tonic: int) -> list[float]:
    """Beat-synchronous chords matched to triad templates, with roots relative to the key's tonic."""
    scores, labels = _beat_chords(chroma, frames_per_beat)
    if not labels:
        return [0.0] * (6 + 12)
    best = scores.argmax(0)
    qualities = [q for _, q in labels]
    frac = [float(np.mean([q == name for q in qualities])) for name in CHORD_QUALITIES]
    change = float(np.mean(best[1:] != best[:-1])) if len(best) > 1 else 0.0
    roots = np.bincount([(_CHORD_LABELS[b][0] - tonic) % 12 for b in best], minlength=12) / len(best)
    return frac + [change, float(scores.max(0).mean())] + roots.tolist()


def _rhythm_features(oenv: np.ndarray, sr: int, seconds: float) -> tuple[float, list[float]]:
    """Tempo, pulse clarity and onset density/regularity from the onset-strength envelope."""
    import librosa

    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=oenv, sr=sr, hop_length=HOP))[0])
    ac = librosa.autocorrelate(oenv - oenv.mean())
    fps = sr / HOP
    lo, hi = int(0.25 * fps), min(len(ac) - 1, int(2.0 * fps))
    pulse = float(ac[lo:hi].max() / ac[0]) if ac[0] > 0 and hi > lo else 0.0
    onsets = librosa.onset.onset_detect(onset_envelope=oenv, sr=sr, hop_length=HOP, units="time")
    ioi = np.diff(onsets)
    ioi_cv = float(ioi.std() / ioi.mean()) if len(ioi) > 1 and ioi.mean() > 0 else 0.0
    return tempo, [tempo, pulse, len(onsets) / seconds, float(oenv.mean()), float(oenv.std()), ioi_cv]


def _dynamics_features(y: np.ndarray) -> list[float]:
    """RMS level statistics in dB of the peak-normalised signal, so they describe relative dynamics."""
    import librosa

    db = 20 * np.log10(librosa.feature.rms(y=y, hop_length=HOP)[0] + 1e-5)
    p5, p10, p50, p90, p95 = np.percentile(db, [5, 10, 50, 90, 95])
    return [float(db.mean()), float(db.std()), p10, p50, p90, p95 - p5, float(np.mean(db > p95 - 10))]


def _spectral_features(mag: np.ndarray, y: np.ndarray, sr: int) -> list[float]:
    import librosa

    cent = np.log2(librosa.feature.spectral_centroid(S=mag, sr=sr)[0] + 1.0)
    bw = np.log2(librosa.feature.spectral_bandwidth(S=mag, sr=sr)[0] + 1.0)
    roll = np.log2(librosa.feature.spectral_rolloff(S=mag, sr=sr)[0] + 1.0)
    flat = 10 * np.log10(librosa.feature.spectral_flatness(S=mag)[0] + 1e-10)
    zcr = librosa.feature.zero_crossing_rate(y, hop_length=HOP)[0]
    return [float(cent.mean()), float(cent.std()), float(bw.mean()), float(roll.mean()), float(flat.mean()),
            float(zcr.mean())]


def _register_features(cqt: np.ndarray) -> list[float]:
    """Energy-weighted mean MIDI pitch and spread of the constant-Q spectrum (how high the music sits)."""
    energy = (cqt**2).sum(1)
    energy = energy / energy.sum() if energy.sum() > 0 else np.full(len(energy), 1 / len(energy))
    pitch = CQT_FMIN_MIDI + np.arange(len(energy)) * 12 / CQT_BPO
    mean = float(energy @ pitch)
    return [mean, float(math.sqrt(max(0.0, energy @ (pitch - mean) ** 2)))]


def _mel_features(mel_db: np.ndarray) -> list[float]:
    groups = mel_db.reshape(MEL_GROUPS, N_MEL // MEL_GROUPS, -1).mean(1)
    return groups.mean(1).tolist() + groups.std(1).tolist()


def extract_features(y: np.ndarray, sample_rate: int = SAMPLE_RATE, name: str = "audio") -> AudioFeatures:
    """All features of a mono signal (at most `MAX_SECONDS` of it are used)."""
    import librosa

    y = check_audio(y[: int(MAX_SECONDS * sample_rate)], name, sample_rate)
    y = y / float(np.abs(y).max()) * 0.9
    sr, seconds = sample_rate, len(y) / sample_rate
    mag = np.abs(librosa.stft(y, n_fft=2048, hop_length=HOP))
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=mag**2, sr=sr, n_mels=N_MEL), ref=1.0, top_db=80)
    oenv = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP)
    cqt = np.abs(librosa.cqt(y, sr=sr, hop_length=HOP, fmin=librosa.midi_to_hz(CQT_FMIN_MIDI),
                             n_bins=CQT_BINS, bins_per_octave=CQT_BPO, tuning=0.0))
    chroma = librosa.feature.chroma_cqt(C=cqt, sr=sr, hop_length=HOP, n_chroma=12, bins_per_octave=CQT_BPO,
                                         tuning=0.0)
    chroma_mean = chroma.mean(1)
    # The key from energy (squared CQT, no per-frame normalisation): loud sustained notes count, decay tails little.
    key, key_feats = _key_features(librosa.feature.chroma_cqt(C=cqt**2, sr=sr, hop_length=HOP, n_chroma=12,
                                                              bins_per_octave=CQT_BPO, norm=None,
                                                              tuning=0.0).mean(1))
    tempo, rhythm = _rhythm_features(oenv, sr, seconds)
    degrees = np.roll(chroma_mean / max(chroma_mean.sum(), 1e-9), -key[0])
    frames_per_beat = 60.0 / max(tempo, 30.0) * sr / HOP
    chords = _chord_features(chroma, frames_per_beat, key[0])
    key = _tonic_triad_mode(chroma, frames_per_beat, key)
    key_feats[1] = float(key[1] == "major")
    contrast = librosa.feature.spectral_contrast(S=mag, sr=sr).mean(1)
    scalars = (key_feats + rhythm + _dynamics_features(y) + _spectral_features(mag, y, sr)
               + _register_features(cqt) + chords[:6])
    vector = np.array(scalars + degrees.tolist() + chords[6:] + contrast.tolist() + _mel_features(mel_db),
                      dtype=np.float32)
    if vector.shape != (len(FEATURE_NAMES),):
        raise AssertionError(f"feature vector has {vector.shape[0]} values, expected {len(FEATURE_NAMES)}")
    return AudioFeatures(np.nan_to_num(vector), key, seconds)


def audio_features(path: str | os.PathLike) -> AudioFeatures:
    """Load an audio file (middle 30 s, 22,050 Hz mono) and compute its features."""
    return extract_features(load_audio(path), SAMPLE_RATE, str(path))
