"""Key, mode and a beat-synchronous chord sequence of a piece, normalised to C major / A minor.

Why: mode and harmony are among the strongest cues for valence (minor keys and diminished chords
read as sad or tense), but the attribute vector only counts triads. Here every beat's sounding
pitch classes (duration-weighted) are matched to chord templates, and roots are expressed relative
to the Krumhansl–Schmuckler key (C for major pieces, A for minor ones), so "a I–IV–V song" looks the
same in every key and the recognizer can embed roots and qualities directly.

Everything is plain numpy over `Notes` (times in beats), cheap enough to run over whole datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from emomusic.music.attributes import estimate_key, key_correlations, pitch_class_histogram
from emomusic.music.notes import Notes
from emomusic.vocab.constants import PITCH_NAMES, TRIADS

__all__ = [
    "N_QUALITIES",
    "N_ROOTS",
    "CHORD_INTERVALS",
    "NO_CHORD",
    "QUALITIES",
    "SUMMARY_NAMES",
    "Harmony",
    "analyse",
    "bar_chords",
    "beat_chroma",
    "change_mode",
    "chord_sequence",
    "chord_templates",
    "normalising_shift",
    "summary_features",
]

QUALITIES = ("maj", "min", "dim", "aug", "sus4", "7", "maj7", "min7")
# Intervals above the root of each quality (in QUALITIES' order): the four triads, then sus4 and sevenths.
CHORD_INTERVALS: dict[str, tuple[int, ...]] = dict(zip(
    QUALITIES, (*TRIADS.values(), (0, 5, 7), (0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10)), strict=True))
_INTERVALS = tuple(CHORD_INTERVALS.values())
N_ROOTS = 12
N_QUALITIES = len(QUALITIES)
NO_CHORD = -1  # root and quality of a beat with too little harmony to name a chord
MIN_PITCH_CLASSES = 2  # a beat needs at least this many distinct pitch classes to carry a chord
_MIN_SCORE = 0.6  # cosine similarity below which a beat is "no chord"
_MAX_BEATS = 4096  # guard against absurdly long files (~17 min at 240 BPM)


def chord_templates() -> np.ndarray:
    """(12 * N_QUALITIES, 12) unit-norm binary templates; row = quality * 12 + root.

    The first 4 * 12 rows are the triads of :data:`emomusic.vocab.constants.TRIADS`, which the audio
    features match chroma against.
    """
    rows = []
    for intervals in _INTERVALS:
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in intervals]] = 1.0
            rows.append(t / np.linalg.norm(t))
    return np.array(rows)


_TEMPLATES = chord_templates()


def beat_chroma(notes: Notes) -> np.ndarray:
    """(n_beats, 12) duration of each pitch class sounding within each beat [b, b + 1).

    Vectorised: every note is expanded into the beats it overlaps, and its overlap with each beat
    is added to that beat's pitch class.
    """
    if len(notes) == 0:
        return np.zeros((0, 12))
    start = notes.start
    end = start + np.maximum(notes.duration, 1e-3)
    n_beats = min(int(np.ceil(end.max() - 1e-9)), _MAX_BEATS)
    first = np.floor(start).astype(np.int64)
    last = np.minimum(np.ceil(end - 1e-9).astype(np.int64), n_beats)
    count = np.maximum(last - first, 0)
    note = np.repeat(np.arange(len(notes)), count)
    beat = first[note] + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    overlap = np.minimum(end[note], beat + 1.0) - np.maximum(start[note], beat)
    keep = (overlap > 0) & (beat < n_beats)
    chroma = np.zeros((n_beats, 12))
    np.add.at(chroma, (beat[keep], notes.pitch[note[keep]] % 12), overlap[keep])
    return chroma


def chord_sequence(chroma: np.ndarray, qualities: int = N_QUALITIES) -> tuple[np.ndarray, np.ndarray]:
    """(roots, qualities) per row (a beat, or a bar) from template matching; NO_CHORD where a row has no
    harmony. `qualities`: match only the first this many of `QUALITIES` (4: the triads).

    Roots are absolute pitch classes here; see `normalising_shift` for the key-relative view.
    """
    present = (chroma > 0).sum(1)
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    unit = np.divide(chroma, norm, out=np.zeros_like(chroma), where=norm > 0)
    scores = unit @ _TEMPLATES[: qualities * 12].T
    best = scores.argmax(1)
    ok = (present >= MIN_PITCH_CLASSES) & (scores.max(1, initial=0.0) >= _MIN_SCORE)
    roots = np.where(ok, best % 12, NO_CHORD)
    qualities = np.where(ok, best // 12, NO_CHORD)
    return roots.astype(np.int64), qualities.astype(np.int64)


def bar_chords(notes: Notes, tonic: int) -> np.ndarray:
    """Each bar's triad, read off the whole bar's duration-weighted pitch classes.

    Why whole bars: a chord plan for the sampler (`conditioning.progressions`) names one chord a bar,
    as a lead sheet does, so it is learned from real music on the same unit. Bars follow
    `notes.beats_per_bar` from beat 0.

    Args:
        notes: the piece (times in quarter-note beats).
        tonic: the key's tonic pitch class; roots are given in semitones above it.

    Returns:
        (n_bars, 2) int64: root above the tonic (0..11) and the triad's index in `QUALITIES` (0..3:
        maj, min, dim, aug); both `NO_CHORD` where a bar has fewer than `MIN_PITCH_CLASSES` pitch
        classes or matches no triad well.
    """
    chroma = beat_chroma(notes)
    bar = float(notes.beats_per_bar)
    per_bar = np.zeros((int(np.ceil(len(chroma) / bar - 1e-9)), 12))
    np.add.at(per_bar, np.floor(np.arange(len(chroma)) / bar + 1e-9).astype(np.int64), chroma)
    roots, qualities = chord_sequence(per_bar, qualities=len(TRIADS))
    return np.stack([np.where(roots >= 0, (roots - int(tonic)) % 12, NO_CHORD), qualities], axis=1)


def normalising_shift(tonic: int, mode: str) -> int:
    """Semitones to add so the key becomes C major (major) or A minor (minor)."""
    return (-tonic) % 12 if mode == "major" else (9 - tonic) % 12


@dataclass(frozen=True)
class Harmony:
    """Key and chord sequence of one piece; roots already normalised to C major / A minor."""

    tonic: int
    mode: str
    key_clarity: float  # best key correlation (Krumhansl–Schmuckler)
    roots: np.ndarray  # (n_beats,) 0..11 relative to C (major) or A (minor); NO_CHORD = -1
    qualities: np.ndarray  # (n_beats,) index into QUALITIES; NO_CHORD = -1

    def chords(self) -> list[str]:
        """Readable chord names in the normalised key, e.g. ["C:maj", "A:min", "N"]."""
        pairs = zip(self.roots.tolist(), self.qualities.tolist(), strict=True)
        return [f"{PITCH_NAMES[r]}:{QUALITIES[q]}" if r >= 0 else "N" for r, q in pairs]


def analyse(notes: Notes) -> Harmony:
    """Key (Krumhansl–Schmuckler, reusing the attribute code) and the normalised chord sequence."""
    if len(notes) == 0:
        return Harmony(0, "major", 0.0, np.zeros(0, np.int64), np.zeros(0, np.int64))
    tonic, mode = estimate_key(notes)
    clarity = float(key_correlations(pitch_class_histogram(notes)).max())
    roots, qualities = chord_sequence(beat_chroma(notes))
    shift = normalising_shift(tonic, mode)
    roots = np.where(roots >= 0, (roots + shift) % 12, NO_CHORD)
    return Harmony(tonic, mode, clarity, roots, qualities)


# Diatonic roots relative to the normalised tonic (C major: C D E F G A B; A minor uses the same set).
_DIATONIC = np.zeros(12, dtype=bool)
_DIATONIC[[0, 2, 4, 5, 7, 9, 11]] = True
SUMMARY_NAMES = (
    ("minor_key", "key_clarity", "chord_fraction", "chord_change_rate", "diatonic_root_fraction",
     "tonic_chord_fraction", "dominant_chord_fraction", "subdominant_chord_fraction", "cadence_rate",
     "distinct_chords")
    + tuple(f"quality_{q}" for q in QUALITIES)
    + tuple(f"root_{r}" for r in range(12))
)


def summary_features(h: Harmony) -> np.ndarray:
    """Fixed-length harmony summary (order of SUMMARY_NAMES), comparable across keys.

    Functions are read in the normalised key: tonic = C (major) / A (minor), dominant = G / E,
    subdominant = F / D. A cadence is a change from a dominant-rooted chord to a tonic-rooted one.
    """
    tonic, dominant, sub = (0, 7, 5) if h.mode == "major" else (9, 4, 2)
    chorded = h.roots >= 0
    n = max(len(h.roots), 1)
    r, q = h.roots[chorded], h.qualities[chorded]
    m = max(len(r), 1)
    changes = np.flatnonzero((r[1:] != r[:-1]) | (q[1:] != q[:-1])) if len(r) > 1 else np.zeros(0, np.int64)
    cadences = int(((r[changes] == dominant) & (r[changes + 1] == tonic)).sum()) if len(changes) else 0
    head = [
        float(h.mode == "minor"), h.key_clarity, chorded.sum() / n, len(changes) / m,
        _DIATONIC[r].mean() if len(r) else 0.0, (r == tonic).sum() / m, (r == dominant).sum() / m,
        (r == sub).sum() / m, cadences / m, len(set(zip(r.tolist(), q.tolist(), strict=True))) / 24.0,
    ]
    qual = np.bincount(q, minlength=N_QUALITIES) / m
    root = np.bincount(r, minlength=12) / m
    return np.concatenate([head, qual, root]).astype(np.float32)


def change_mode(notes: Notes, tonic: int, mode: str) -> Notes:
    """The same music in the parallel mode: in a major piece the third, sixth and seventh degrees go
    down a semitone (C major → C minor, natural minor); in a minor piece they go up.

    Why parallel rather than relative: the tune keeps its tonic, rhythm and contour and only its
    colour changes, which is what a listener hears as "the same theme, sadder".

    Args:
        notes: the piece.
        tonic: its tonic pitch class (0 = C).
        mode: its mode now, "major" or "minor"; the result is in the other one.

    Returns:
        The piece with those degrees moved (other notes, chromatic ones included, as they were).
    """
    degree = (notes.pitch.astype(np.int64) - int(tonic)) % 12
    if mode == "major":
        shift = np.where(np.isin(degree, (4, 9, 11)), -1, 0)
    else:
        shift = np.where(np.isin(degree, (3, 8, 10)), 1, 0)
    return replace(notes, pitch=np.clip(notes.pitch + shift, 0, 127).astype(notes.pitch.dtype))
