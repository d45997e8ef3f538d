"""Emotion-related musical attributes of a piece: pure, vectorised functions of `Notes`.

In the spirit of EmoGen's jSymbolic features: pitch, key and mode, melody, harmony, rhythm,
duration, dynamics, polyphony. `compute_attributes` returns them all as one float vector in the
fixed order of `ATTRIBUTE_NAMES`; `CONTROLS` is the small subset the generator is conditioned on.
Every function is a plain vectorised numpy computation, so featurising whole datasets (or every
training window) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emomusic.music.notes import Notes

# Krumhansl–Kessler key profiles (probe-tone ratings), index 0 = tonic: the attributes' key (the
# generator's tonic/mode conditioning was trained on it).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Temperley–Kostka–Payne profiles (Temperley 2007, as music21 gives them): how often each scale degree
# occurs in a segment of the Kostka–Payne corpus. On note counts they name the written key signature of
# real openings best (`python benchmarks/key_signature.py`), so written files declare this key.
TKP_MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
TKP_MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])
MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 10, 11])  # natural + harmonic (raised 7th)


def key_templates(major: np.ndarray = MAJOR_PROFILE, minor: np.ndarray = MINOR_PROFILE) -> np.ndarray:
    """(24, 12) z-scored profiles for `key_correlations`: rows 0-11 major on C..B, rows 12-23 minor on C..B.

    Args:
        major, minor: the 12 weights of a key profile, index 0 = tonic (Krumhansl's by default).

    Returns:
        The templates.
    """
    rows = [np.roll(major, t) for t in range(12)] + [np.roll(minor, t) for t in range(12)]
    m = np.array(rows)
    return (m - m.mean(1, keepdims=True)) / m.std(1, keepdims=True)


_KEY_TEMPLATES = key_templates()
_TKP_TEMPLATES = key_templates(TKP_MAJOR_PROFILE, TKP_MINOR_PROFILE)


def pitch_class_histogram(notes: Notes, weighted: bool = True) -> np.ndarray:
    """Normalised 12-bin pitch-class histogram, weighted by duration (Krumhansl's practice)."""
    w = np.minimum(notes.duration, 4.0) if weighted else np.ones(len(notes))
    h = np.bincount(notes.pitch % 12, weights=w, minlength=12).astype(np.float64)
    s = h.sum()
    return h / s if s > 0 else h


def key_correlations(hist: np.ndarray, templates: np.ndarray = _KEY_TEMPLATES) -> np.ndarray:
    """Pearson correlation of a pitch-class histogram with the 24 key profiles (Krumhansl's by default)."""
    sd = hist.std()
    if sd == 0:
        return np.zeros(24)
    z = (hist - hist.mean()) / sd
    return templates @ z / 12.0


def estimate_key(notes: Notes) -> tuple[int, str]:
    """Krumhansl–Schmuckler key: (tonic pitch class, "major"|"minor"); the attributes' key."""
    k = int(np.argmax(key_correlations(pitch_class_histogram(notes))))
    return k % 12, "major" if k < 12 else "minor"


def tonic_triad(tonic: int, mode: str) -> tuple[int, int, int]:
    """The pitch classes of a key's tonic triad: tonic, third (major or minor by the mode), fifth."""
    return int(tonic) % 12, (int(tonic) + (4 if mode == "major" else 3)) % 12, (int(tonic) + 7) % 12


def relative_tonic(tonic: int, mode: str) -> int:
    """The tonic of a key's relative: the other mode on the same signature (A minor <-> C major).

    Args:
        tonic: the key's tonic pitch class.
        mode: the key's mode, "major" or "minor".

    Returns:
        The relative key's tonic pitch class, 0..11.
    """
    return (int(tonic) + (3 if mode == "minor" else 9)) % 12


def fifths(tonic: int, mode: str) -> int:
    """Sharps (positive) or flats (negative) of a key's signature, -6..5 (F# and Gb major share 6)."""
    major = relative_tonic(tonic, mode) if mode == "minor" else tonic % 12
    return (7 * major + 6) % 12 - 6


def signature_key(notes: Notes) -> tuple[int, str]:
    """The key a score should declare: Temperley–Kostka–Payne profiles on note counts.

    Why not `estimate_key`: on real openings with a known key (POP909's annotations, ASAP's scores) this
    names the right signature markedly more often; `benchmarks/key_signature.py` measures both. The
    attributes keep Krumhansl's key, the definition the generator was conditioned on.

    Args:
        notes: the piece.

    Returns:
        (tonic pitch class 0-11, "major"|"minor").
    """
    k = int(np.argmax(key_correlations(pitch_class_histogram(notes, weighted=False), _TKP_TEMPLATES)))
    return k % 12, "major" if k < 12 else "minor"


# Onsets closer than 1e-4 beats count as one: a tolerance for tick and float rounding only (the few
# milliseconds between the notes of a chord played by a human are still separate onsets).
_TIME_DECIMALS = 4


def _grid(t: np.ndarray) -> np.ndarray:
    """Times rounded to the onset grid, so starts, ends and onsets compare exactly."""
    return np.round(t, _TIME_DECIMALS)


def _onsets(notes: Notes) -> tuple[np.ndarray, np.ndarray]:
    """Unique onset times and, per note, the index of its onset group."""
    return np.unique(_grid(notes.start), return_inverse=True)


def _sounding_count(start: np.ndarray, end: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many notes [start, end) sound at each time of `at` (times already on the onset grid).

    Starts and ends are rounded like the onsets, so a note always sounds at its own onset and a note
    that ends exactly where another starts (legato) does not. Comparing unrounded times against
    `onset + epsilon` misses notes whose start was rounded down by more than epsilon (triplets, most
    performance timings), which made polyphony 0 at some onsets. Every note lasts at least one grid
    step, so a very short note still counts at its own onset.
    """
    start_g = _grid(start)
    end_g = np.maximum(_grid(end), _grid(start_g + 10.0**-_TIME_DECIMALS))
    begun = np.searchsorted(np.sort(start_g), at, side="right")
    ended = np.searchsorted(np.sort(end_g), at, side="right")
    return begun - ended


def _melody(notes: Notes) -> np.ndarray:
    """Skyline melody: the highest pitch at each onset."""
    onsets, inv = _onsets(notes)
    top = np.full(len(onsets), -1, dtype=np.int64)
    np.maximum.at(top, inv, notes.pitch.astype(np.int64))
    return top


def _safe_mean(x: np.ndarray, default: float = 0.0) -> float:
    return float(x.mean()) if len(x) else default


def _safe_std(x: np.ndarray) -> float:
    return float(x.std()) if len(x) > 1 else 0.0


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


def _sounding_pitch_classes(notes: Notes) -> np.ndarray:
    """(n_onsets, 12) bool: which pitch classes sound at each onset (a vectorised sweep line)."""
    onsets, _ = _onsets(notes)
    pcs = notes.pitch % 12
    end = notes.start + notes.duration
    out = np.zeros((len(onsets), 12), dtype=bool)
    for pc in range(12):
        sel = pcs == pc
        if sel.any():
            out[:, pc] = _sounding_count(notes.start[sel], end[sel], onsets) > 0
    return out


def _triad_counts(notes: Notes) -> tuple[int, int, int]:
    """(chord onsets with ≥ 3 pitch classes, those containing a major triad, a minor triad)."""
    present = _sounding_pitch_classes(notes)
    chords = present[present.sum(1) >= 3]
    if not len(chords):
        return 0, 0, 0
    has_major = np.zeros(len(chords), dtype=bool)
    has_minor = np.zeros(len(chords), dtype=bool)
    for r in range(12):
        root, fifth = chords[:, r], chords[:, (r + 7) % 12]
        has_major |= root & chords[:, (r + 4) % 12] & fifth
        has_minor |= root & chords[:, (r + 3) % 12] & fifth
    return len(chords), int(has_major.sum()), int(has_minor.sum())


def _polyphony_at_onsets(notes: Notes) -> np.ndarray:
    """Number of notes sounding at each onset (vectorised with sorted searches)."""
    onsets, _ = _onsets(notes)
    return _sounding_count(notes.start, notes.start + notes.duration, onsets).astype(np.float64)


def _metric_weight(notes: Notes) -> np.ndarray:
    """Metrical weight of each onset: 1 downbeat, .75 beat, .5 half beat, .25 otherwise."""
    pos = np.mod(notes.start, notes.beats_per_bar)
    beat = np.isclose(np.mod(pos, 1.0), 0.0, atol=1e-3) | np.isclose(np.mod(pos, 1.0), 1.0, atol=1e-3)
    half = np.isclose(np.mod(pos, 0.5), 0.0, atol=1e-3) | np.isclose(np.mod(pos, 0.5), 0.5, atol=1e-3)
    # Like the beat tests, both sides of the bar line: a note a hair early is still on the downbeat.
    down = np.isclose(pos, 0.0, atol=1e-3) | np.isclose(pos, notes.beats_per_bar, atol=1e-3)
    return np.where(down, 1.0, np.where(beat, 0.75, np.where(half, 0.5, 0.25)))


def _features(notes: Notes) -> dict[str, float]:
    """All attributes of one non-empty piece as a name → value dict."""
    p = notes.pitch.astype(np.float64)
    d = notes.duration
    v = notes.velocity.astype(np.float64)
    span = max(notes.end - float(notes.start.min()), 1e-3)
    sec_per_beat = 60.0 / notes.tempo
    hist = pitch_class_histogram(notes)
    corr = key_correlations(hist)
    k = int(np.argmax(corr))
    tonic, is_major = k % 12, k < 12
    rel_hist = np.roll(hist, -tonic)
    scale = MAJOR_SCALE if is_major else MINOR_SCALE
    onsets, _ = _onsets(notes)
    ioi = np.diff(onsets)
    mel = _melody(notes)
    iv = np.diff(mel)
    aiv = np.abs(iv)
    poly = _polyphony_at_onsets(notes)
    n_chords, n_major, n_minor = _triad_counts(notes)
    weight = _metric_weight(notes)
    beats = np.floor(notes.start).astype(np.int64)
    n_beats = max(1, int(np.ceil(notes.end)) - int(np.floor(notes.start.min())))
    used_beats = len(np.unique(beats))
    pitch_counts = np.bincount(notes.pitch.astype(np.int64), minlength=128)
    best_major = corr[:12].max()
    best_minor = corr[12:].max()
    f: dict[str, float] = {
        "tempo": float(notes.tempo),
        "mode": float(is_major),
        "tonic": float(tonic),
        "key_clarity": float(corr.max()),
        "major_minor_margin": float(best_major - best_minor),
        "pitch_mean": float(p.mean()),
        "pitch_std": _safe_std(p),
        "pitch_min": float(p.min()),
        "pitch_max": float(p.max()),
        "pitch_range": float(p.max() - p.min()),
        "most_common_pitch": float(np.argmax(pitch_counts)),
        "pitch_class_entropy": _entropy(hist),
        "distinct_pitch_classes": float((hist > 0.01).sum()),
        "scale_consistency": float(rel_hist[scale].sum()),
        "velocity_mean": float(v.mean()),
        "velocity_std": _safe_std(v),
        "velocity_range": float(v.max() - v.min()),
        "note_density": len(notes) / span,
        "onset_density": len(onsets) / span,
        "notes_per_second": len(notes) / (span * sec_per_beat),
        "ioi_mean": _safe_mean(ioi, span),
        "ioi_std": _safe_std(ioi),
        "duration_mean": float(d.mean()),
        "duration_std": _safe_std(d),
        "duration_seconds_mean": float(d.mean() * sec_per_beat),
        "staccato_fraction": float((d < 0.25).mean()),
        "long_note_fraction": float((d >= 1.0).mean()),
        "polyphony": _safe_mean(poly, 1.0),
        "polyphony_max": float(poly.max()) if len(poly) else 1.0,
        "chord_onset_fraction": float((poly >= 3).mean()) if len(poly) else 0.0,
        "melodic_interval_mean": _safe_mean(aiv.astype(float)),
        "melodic_interval_std": _safe_std(aiv.astype(float)),
        "melodic_step_fraction": _safe_mean(((aiv >= 1) & (aiv <= 2)).astype(float)),
        "melodic_leap_fraction": _safe_mean((aiv >= 5).astype(float)),
        "melodic_repeat_fraction": _safe_mean((aiv == 0).astype(float)),
        "melodic_ascending_fraction": _safe_mean((iv > 0).astype(float)),
        "melodic_tritone_fraction": _safe_mean((aiv % 12 == 6).astype(float)),
        "major_triad_fraction": n_major / max(1, n_chords),
        "minor_triad_fraction": n_minor / max(1, n_chords),
        "major_minor_triad_ratio": (n_major + 1) / (n_major + n_minor + 2),
        "beat_strength": float(weight.mean()),
        "downbeat_fraction": float((weight == 1.0).mean()),
        "offbeat_fraction": float((weight <= 0.5).mean()),
        "empty_beat_rate": 1.0 - min(1.0, used_beats / n_beats),
        "length_beats": float(span),
    }
    for i in range(12):
        f[f"pc_rel_{i}"] = float(rel_hist[i])
    return f


ATTRIBUTE_NAMES: tuple[str, ...] = tuple(
    _features(Notes.from_arrays([60, 64, 67], [0, 0, 0], [1, 1, 1], [64, 64, 64])).keys()
)

# The generator's conditioning: attribute → number of bins (categorical for mode and tonic).
CONTROLS: dict[str, int] = {
    "tempo": 5,
    "mode": 2,
    "tonic": 12,
    "note_density": 5,
    "pitch_mean": 5,
    "pitch_range": 3,
    "velocity_mean": 5,
    "polyphony": 3,
    "duration_mean": 3,
    "pitch_class_entropy": 3,
}
CATEGORICAL_CONTROLS = ("mode", "tonic")


def compute_attributes(notes: Notes) -> np.ndarray:
    """All attributes as a float32 vector ordered like `ATTRIBUTE_NAMES` (NaN-free)."""
    if len(notes) == 0:
        raise ValueError("cannot compute attributes of a piece with no notes")
    f = _features(notes)
    return np.nan_to_num(np.array([f[n] for n in ATTRIBUTE_NAMES], dtype=np.float32))


def attributes_dict(notes: Notes) -> dict[str, float]:
    """`compute_attributes` as a name → value dict (JSON-friendly)."""
    return dict(zip(ATTRIBUTE_NAMES, compute_attributes(notes).tolist(), strict=True))


def compute_controls(notes: Notes) -> dict[str, float]:
    """The raw values of the generator's control attributes (cheap: no chord analysis).

    Called on every training window, so it avoids `_features`' onset-by-onset chord scan; the
    definitions match `compute_attributes` (a test checks they agree).
    """
    hist = pitch_class_histogram(notes)
    k = int(np.argmax(key_correlations(hist)))
    span = max(notes.end - float(notes.start.min()), 1e-3)
    poly = _polyphony_at_onsets(notes)
    p = notes.pitch
    return {
        "tempo": float(notes.tempo),
        "mode": float(k < 12),
        "tonic": float(k % 12),
        "note_density": len(notes) / span,
        "pitch_mean": float(p.mean()),
        "pitch_range": float(p.max() - p.min()),
        "velocity_mean": float(notes.velocity.mean()),
        "polyphony": _safe_mean(poly, 1.0),
        "duration_mean": float(notes.duration.mean()),
        "pitch_class_entropy": _entropy(hist),
    }


AttributeFn = Callable[[Notes], float]
