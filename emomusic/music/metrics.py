"""Objective music metrics as pure functions `metric(notes) -> float` (muspy's definitions).

pitch-class entropy, scale consistency, groove consistency, empty-beat rate, note density and
polyphony; plus Yang & Lerch's overlapped area of intra- and inter-set distances, and the plain
overlap of two value distributions.
"""

from __future__ import annotations

import numpy as np

from emomusic.music.attributes import MAJOR_SCALE, pitch_class_histogram
from emomusic.music.notes import Notes


def pitch_class_entropy(notes: Notes) -> float:
    """Shannon entropy (bits) of the note-count pitch-class histogram (muspy)."""
    h = pitch_class_histogram(notes, weighted=False)
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum())


def scale_consistency(notes: Notes) -> float:
    """Largest fraction of notes inside one major or natural-minor scale (muspy)."""
    pcs = notes.pitch.astype(int) % 12
    best = 0.0
    for mode in (MAJOR_SCALE, (MAJOR_SCALE + 9) % 12):  # minor scales are rotations of major
        for t in range(12):
            best = max(best, float(np.isin(pcs, (mode + t) % 12).mean()))
    return best


def groove_consistency(notes: Notes, resolution: int = 8) -> float:
    """1 − mean Hamming distance of consecutive bars' onset patterns (muspy, per-beat resolution)."""
    bar = notes.beats_per_bar
    slots = int(round(bar * resolution))
    idx = np.floor(notes.start / bar).astype(int)
    pos = np.clip(np.round((notes.start - idx * bar) * resolution).astype(int), 0, slots - 1)
    n_bars = int(idx.max()) + 1 if len(notes) else 0
    if n_bars < 2:
        return 1.0
    grid = np.zeros((n_bars, slots), dtype=bool)
    grid[idx, pos] = True
    return float(1.0 - np.mean(np.sum(grid[1:] != grid[:-1], axis=1) / slots))


def empty_beat_rate(notes: Notes) -> float:
    """Fraction of beats (up to the last note) with no sounding note (muspy)."""
    n_beats = int(np.ceil(notes.end))
    if n_beats == 0:
        return 1.0
    covered = np.zeros(n_beats, dtype=bool)
    for s, e in zip(np.floor(notes.start).astype(int), np.ceil(notes.start + notes.duration).astype(int),
                    strict=True):
        covered[s:e] = True
    return float(1.0 - covered.mean())


def note_density(notes: Notes) -> float:
    """Notes per beat over the piece's span."""
    return len(notes) / max(notes.end, 1e-6)


def polyphony(notes: Notes) -> float:
    """Mean number of notes sounding at an onset (muspy's polyphony counts time steps; close)."""
    onsets = np.unique(notes.start)
    begun = np.searchsorted(np.sort(notes.start), onsets, side="right")
    ended = np.searchsorted(np.sort(notes.start + notes.duration), onsets, side="right")
    return float((begun - ended).mean()) if len(onsets) else 0.0


METRICS = {
    "pitch_class_entropy": pitch_class_entropy,
    "scale_consistency": scale_consistency,
    "groove_consistency": groove_consistency,
    "empty_beat_rate": empty_beat_rate,
    "note_density": note_density,
    "polyphony": polyphony,
}


def all_metrics(notes: Notes) -> dict[str, float]:
    return {name: fn(notes) for name, fn in METRICS.items()}


def overlapping_area(a: np.ndarray, b: np.ndarray, pad: float = 0.1) -> float:
    """Overlapping area of two sample distributions (Gaussian KDE, in [0, 1]).

    Integrated over the samples' joint range widened by `pad` of it on each side (0 = mgeval's range).
    """
    from scipy.stats import gaussian_kde

    a, b = np.asarray(a, float), np.asarray(b, float)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi - lo < 1e-9:
        return 1.0
    grid = np.linspace(lo - pad * (hi - lo), hi + pad * (hi - lo), 512)

    def density(x: np.ndarray) -> np.ndarray:
        if x.std() < 1e-9:
            x = x + np.random.default_rng(0).normal(0, 1e-3 * (hi - lo), len(x))
        return gaussian_kde(x)(grid)

    pa, pb = density(a), density(b)
    return float(np.trapezoid(np.minimum(pa, pb), grid))


def yang_lerch_oa(generated: np.ndarray, real: np.ndarray) -> float:
    """Yang & Lerch (2020) overlapped area for one metric: the PDF of intra-set distances of the real
    set against the PDF of inter-set distances real × generated (mgeval's protocol: all pairwise
    absolute differences, Gaussian KDE, integrated over the distances' range).

    1 means a generated piece sits as close to the real pieces as they sit to each other; it is
    less strict than overlapping the metric values themselves (`overlapping_area`), which a
    small shift of the mean already pulls down.
    """
    g, r = np.asarray(generated, float), np.asarray(real, float)
    intra = np.abs(r[:, None] - r[None, :])[~np.eye(len(r), dtype=bool)]
    inter = np.abs(r[:, None] - g[None, :]).ravel()
    return overlapping_area(intra, inter, pad=0.0)
