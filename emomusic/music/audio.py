"""Audio features for emotion recognition: key, chords, tempo, onsets, dynamics, timbre.

Every audio file becomes one fixed-length vector (`FEATURE_NAMES`) computed from at most
`MAX_SECONDS` of mono audio at 22,050 Hz, so a three-minute song and a 30-second clip cost the same
and the recognizer sees what it was trained on (30-second excerpts rendered from MIDI).

Why these features: mode and harmony carry valence (minor keys, diminished chords read as sad or
tense), tempo, onset density and loudness carry arousal (EMOPIA's and most MER papers' findings).
The waveform is peak-normalised first, so a quiet recording and a loud master of the same music
give the same features; dynamics are measured relative to the loudest passages.

librosa (core) and soundfile (the [audio] extra) are imported inside the functions: not needed to generate music.
Note: librosa's tuning estimation crashes with the numba build installed here, so audio is assumed
to be tuned to A440 (`tuning=0`), which holds for everything rendered from MIDI.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.io import check_input_file
from emomusic.music.attributes import key_correlations
from emomusic.music.harmony import chord_templates
from emomusic.vocab.constants import AUDIO_SUFFIXES, PITCH_NAMES, TRIADS, key_label

__all__ = [
    "AUDIO_SUFFIXES",
    "FEATURE_NAMES",
    "MAX_SECONDS",
    "PITCH_NAMES",
    "SAMPLE_RATE",
    "AudioFeatures",
    "audio_features",
    "check_audio",
    "extract_features",
    "is_audio_path",
    "load_audio",
]

SAMPLE_RATE = 22_050
MAX_SECONDS = 30.0
MIN_SECONDS = 1.0
MAX_FILE_BYTES = 500 * 2**20
SILENCE_PEAK = 1e-4
HOP = 512
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
        return key_label(*self.key)


def is_audio_path(path: str | os.PathLike) -> bool:
    """True for the suffixes the audio loader reads (`AUDIO_SUFFIXES`), in any case."""
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


_READ_HINT = "give a WAV, FLAC, OGG, MP3 or M4A file"


def load_audio(path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS,
               max_bytes: int = MAX_FILE_BYTES, longer: Literal["middle", "refuse"] = "middle",
               what: str = "audio", min_seconds: float = MIN_SECONDS,
               silence_peak: float = SILENCE_PEAK) -> np.ndarray:
    """Mono float32 audio at `sample_rate`: every reader of audio files (recognizer, humming) uses this.

    libsndfile reads WAV, FLAC, OGG and MP3; other containers (M4A/AAC from phones, WebM) are decoded by
    PyAV's bundled FFmpeg when it is installed. Every failure is one line naming the file.

    Args:
        path: the audio file.
        sample_rate: the rate to resample to.
        max_seconds: the most audio returned.
        max_bytes: the largest file accepted (checked before decoding).
        longer: for a file over `max_seconds`: "middle" keeps its middle `max_seconds` (songs often open
            with a quiet intro that is not their mood), "refuse" raises (a hum is one short phrase).
        what: the file's role in messages ("audio", "humming audio").
        min_seconds: the least audio accepted.
        silence_peak: peak amplitude below which the file counts as silent.

    Returns:
        The samples, 1-D float32, finite, at least `min_seconds` long.

    Raises:
        InvalidInputError: a missing, oversized, unreadable, too long ("refuse"), too short, silent or
            non-finite file.
    """
    p = check_input_file(path, what, max_bytes)
    label = f"{what} {p.name!r}"
    y, native = _decode(p, label, sample_rate, max_seconds, longer)
    if len(y) and not np.all(np.isfinite(y)):  # checked before resampling, which refuses NaN
        raise InvalidInputError(f"{label}: contains NaN or infinite samples; re-export the file")
    if native != sample_rate and len(y):
        import librosa

        y = librosa.resample(y, orig_sr=native, target_sr=sample_rate)
    return check_audio(y, label, sample_rate, min_seconds=min_seconds, silence_peak=silence_peak)


def _decode(p: Path, label: str, sample_rate: int, max_seconds: float, longer: str) -> tuple[np.ndarray, int]:
    """(mono samples, their rate): libsndfile when it knows the format, PyAV's FFmpeg otherwise."""
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        return _decode_av(p, label, sample_rate, max_seconds, longer, exc)
    if info.samplerate <= 0 or info.frames <= 0:
        raise InvalidInputError(f"{label}: holds no samples; give a recording of a few seconds")
    seconds = info.frames / info.samplerate
    _check_length(label, seconds, max_seconds, longer)
    offset = max(0.0, (seconds - max_seconds) / 2) if longer == "middle" else 0.0
    start = int(np.round(info.samplerate * offset))
    frames = int(np.round(max_seconds * info.samplerate))
    try:
        data, sr = sf.read(str(p), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"cannot read {label} ({_one_line(exc)}); {_READ_HINT}") from None
    return data.mean(axis=1), int(sr)


def _check_length(label: str, seconds: float, max_seconds: float, longer: str) -> None:
    if longer == "refuse" and seconds > max_seconds:
        raise InvalidInputError(f"{label}: lasts {seconds:.0f} s, over the {max_seconds:.0f} s limit; "
                                "give a shorter recording")


def _decode_av(p: Path, label: str, sample_rate: int, max_seconds: float, longer: str,
               first_error: Exception) -> tuple[np.ndarray, int]:
    """Decode with PyAV (M4A, AAC, WebM, video soundtracks), resampled to `sample_rate` as it goes."""
    try:
        import av
    except ImportError:
        raise InvalidInputError(f"cannot read {label} ({_one_line(first_error)}); {_READ_HINT}") from None
    chunks: list[np.ndarray] = []
    limit = max_seconds * sample_rate
    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise InvalidInputError(f"cannot read {label}: it has no audio stream; {_READ_HINT}")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            n = 0
            for frame in container.decode(container.streams.audio[0]):
                new = [f.to_ndarray().ravel() for f in resampler.resample(frame)]
                chunks.extend(new)
                n += sum(map(len, new))
                if longer == "refuse" and n > limit:
                    _check_length(label, n / sample_rate, max_seconds, longer)
            chunks.extend(f.to_ndarray().ravel() for f in resampler.resample(None))
    except (av.error.FFmpegError, OSError) as exc:
        raise InvalidInputError(f"cannot read {label} ({_one_line(exc)}); {_READ_HINT}") from None
    y = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if longer == "middle" and len(y) > limit:
        start = (len(y) - int(limit)) // 2
        y = y[start:start + int(limit)]
    return y, sample_rate


def check_audio(y: np.ndarray, name: str = "audio", sample_rate: int = SAMPLE_RATE, *,
                min_seconds: float = MIN_SECONDS, silence_peak: float = SILENCE_PEAK) -> np.ndarray:
    """The signal as float32 if it is mono, long enough, finite and not silent.

    Args:
        y: samples.
        name: what to call the signal in messages.
        sample_rate: its rate.
        min_seconds: the least audio accepted.
        silence_peak: peak amplitude below which it counts as silent.

    Returns:
        `y` as float32.

    Raises:
        InvalidInputError: otherwise, in one line naming `name`.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InvalidInputError(f"{name}: expected mono audio, got shape {y.shape}; mix it down to one channel")
    if len(y) < min_seconds * sample_rate:
        raise InvalidInputError(f"{name}: empty or shorter than {min_seconds:g} s; give at least a few seconds")
    if not np.all(np.isfinite(y)):
        raise InvalidInputError(f"{name}: contains NaN or infinite samples; re-export the file")
    if float(np.abs(y).max()) < silence_peak:
        raise InvalidInputError(f"{name}: silent (peak below {silence_peak:g}); give a recording with sound")
    return y


# ------------------------------------------------------------------------------------------ features
# Triad templates (quality-major rows, as in emomusic.music.harmony) and their (root, quality) labels.
_CHORDS = chord_templates()[: len(TRIADS) * 12]
_CHORD_LABELS = [(root, quality) for quality in TRIADS for root in range(12)]


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
    frac = [float(np.mean([q == name for q in qualities])) for name in TRIADS]
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
