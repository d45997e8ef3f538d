"""A learned performance layer: note velocities and sustain pedal from the notes alone.

Why a separate model rather than more generator vocabulary: dynamics and pedalling are what a
pianist adds to the notes, they are learned best from performances (EMOPIA's transcriptions, ASAP's
recorded performances, POP909's played-in arrangements), and a small model trained on them in minutes
on a CPU can render any piece, including the shipped generator's, without retraining it.

Two small networks (numpy at inference: generating never imports torch), each over features that need
no bar grid, so transcriptions on a nominal grid train them as well as scores would:

- velocity: each note's deviation from the local dynamic level (mean velocity within +-`LEVEL_S`
  seconds). Features: its place in its chord (top, bottom, chord size), register and the register
  around it, duration, the gaps to the neighbouring onsets, how busy the passage is, and the melodic
  contour (a top note above its neighbours' mean is where phrases peak). Rendering keeps the
  generator's local level, which carries the asked emotion's loudness, and replaces the flat
  per-note velocities with the learned deviations: voicing (melody over accompaniment), phrase shape
  and accents come from the data.
- pedal: for each `HOP_S` frame, whether the sustain pedal is down, from the texture around it and the
  time since and until a change of bass (where pianists change the pedal).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emomusic.music.notes import Notes
from emomusic.numerics import mlp, mlp_layers

__all__ = ["NOTE_FEATURES", "FRAME_FEATURES", "ExpressionModel", "frame_features", "load_expression",
           "local_level", "note_features", "pedal_frames", "seconds"]

CHORD_S = 0.03  # onsets this close are one chord (a pianist's spread chord)
LEVEL_S = 2.0  # half-width of the window the local dynamic level is the mean of
DENSITY_S = 1.0  # half-width of the busy-ness window
CONTOUR_S = 4.0  # half-width of the melodic-contour window
HOP_S = 0.05  # pedal frames
MIN_PRESS_S = 0.1  # pedal presses and lifts shorter than this are dropped (not a pianist's gesture)

NOTE_FEATURES = ("top", "bottom", "log_chord_size", "pitch", "pitch_vs_local", "log_duration", "log_gap_before",
                 "log_gap_after", "density", "contour")
FRAME_FEATURES = ("sounding", "onsets_near", "density", "log_duration_near", "pitch_sounding", "lowest_sounding",
                  "since_bass_change", "until_bass_change", "since_onset", "until_onset")


def seconds(notes: Notes) -> tuple[np.ndarray, np.ndarray]:
    """Onsets and durations in seconds at the piece's (first) tempo."""
    k = 60.0 / float(notes.tempo)
    return np.asarray(notes.start, dtype=np.float64) * k, np.asarray(notes.duration, dtype=np.float64) * k


def _window_mean(t: np.ndarray, values: np.ndarray, half: float, at: np.ndarray | None = None) -> np.ndarray:
    """Mean of `values` (at sorted times `t`) within +-`half` seconds of each time of `at` (default `t`)."""
    at = t if at is None else at
    c = np.concatenate([[0.0], np.cumsum(values)])
    lo, hi = np.searchsorted(t, at - half, "left"), np.searchsorted(t, at + half, "right")
    n = np.maximum(hi - lo, 1)
    return (c[hi] - c[lo]) / n


def _chords(t: np.ndarray) -> np.ndarray:
    """Chord index of each note (notes sorted by onset): a new chord where the gap exceeds CHORD_S."""
    return np.concatenate([[0], np.cumsum(np.diff(t) > CHORD_S)]) if len(t) else np.zeros(0, dtype=int)


def local_level(notes: Notes, velocity: np.ndarray | None = None) -> np.ndarray:
    """Each note's local dynamic level: the mean velocity within +-LEVEL_S seconds."""
    t, _ = seconds(notes)
    v = np.asarray(notes.velocity if velocity is None else velocity, dtype=np.float64)
    return _window_mean(t, v, LEVEL_S)


def note_features(notes: Notes) -> np.ndarray:
    """(notes, NOTE_FEATURES) float32 features, in the notes' order (sorted by onset)."""
    n = len(notes)
    if n == 0:
        return np.zeros((0, len(NOTE_FEATURES)), dtype=np.float32)
    t, d = seconds(notes)
    p = np.asarray(notes.pitch, dtype=np.float64)
    chord = _chords(t)
    k = chord.max() + 1
    top_p = np.full(k, -np.inf)
    np.maximum.at(top_p, chord, p)
    low_p = np.full(k, np.inf)
    np.minimum.at(low_p, chord, p)
    size = np.bincount(chord, minlength=k).astype(np.float64)
    onset = np.zeros(k)
    onset[chord[::-1]] = t[::-1]  # each chord's first onset
    gap_before = np.diff(onset, prepend=onset[0] - 2.0)[chord]
    gap_after = np.diff(onset, append=onset[-1] + 2.0)[chord]
    top = p == top_p[chord]
    contour = np.zeros(n)
    if top.any():
        tt, tp = t[top], p[top]
        contour[top] = (tp - _window_mean(tt, tp, CONTOUR_S)) / 12.0
    x = np.stack([
        top.astype(np.float64), ((p == low_p[chord]) & (size[chord] > 1)).astype(np.float64),
        np.log(size[chord]), (p - 60.0) / 24.0, (p - _window_mean(t, p, LEVEL_S)) / 12.0,
        np.log(np.clip(d, 0.02, 8.0)), np.log(np.clip(gap_before, 0.02, 4.0)), np.log(np.clip(gap_after, 0.02, 4.0)),
        (np.searchsorted(t, t + DENSITY_S, "right") - np.searchsorted(t, t - DENSITY_S, "left")) / 20.0,
        contour,
    ], axis=1)
    return x.astype(np.float32)


def _bass_changes(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Onset times (s) of chords whose lowest pitch class differs from the previous chord's: harmony moves."""
    if not len(t):
        return np.zeros(0)
    chord = _chords(t)
    k = chord.max() + 1
    low = np.full(k, 999.0)
    np.minimum.at(low, chord, p)
    onset = np.zeros(k)
    onset[chord[::-1]] = t[::-1]
    pc = low % 12
    change = np.concatenate([[True], pc[1:] != pc[:-1]])
    return onset[change]


def _since_until(frames: np.ndarray, events: np.ndarray, cap: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the last and until the next event for each frame (capped), as log1p."""
    if not len(events):
        return np.full(len(frames), np.log1p(cap)), np.full(len(frames), np.log1p(cap))
    i = np.searchsorted(events, frames, "right")
    since = np.where(i > 0, frames - events[np.maximum(i - 1, 0)], cap)
    until = np.where(i < len(events), events[np.minimum(i, len(events) - 1)] - frames, cap)
    return np.log1p(np.clip(since, 0, cap)), np.log1p(np.clip(until, 0, cap))


def frame_features(notes: Notes) -> tuple[np.ndarray, np.ndarray]:
    """(frame times in seconds, (frames, FRAME_FEATURES) float32) every HOP_S over the piece."""
    t, d = seconds(notes)
    if not len(t):
        return np.zeros(0), np.zeros((0, len(FRAME_FEATURES)), dtype=np.float32)
    p = np.asarray(notes.pitch, dtype=np.float64)
    frames = np.arange(0.0, float((t + d).max()), HOP_S)
    end = t + d
    # sounding notes per frame: starts before or at the frame, ends after it
    order_end = np.sort(end)
    sounding = np.searchsorted(t, frames, "right") - np.searchsorted(order_end, frames, "right")
    onsets_near = np.searchsorted(t, frames + 0.25, "right") - np.searchsorted(t, frames - 0.25, "left")
    density = (np.searchsorted(t, frames + DENSITY_S, "right") - np.searchsorted(t, frames - DENSITY_S, "left"))
    logd = _window_mean(t, np.log(np.clip(d, 0.02, 8.0)), DENSITY_S, frames)
    # register of what sounds: the mean and lowest pitch among the notes struck in the last second
    near = _window_mean(t, p, 0.5, frames - 0.5)
    low = np.full(len(frames), 60.0)
    i = np.searchsorted(t, frames, "right")
    lo = np.searchsorted(t, frames - 1.0, "left")
    for f in np.flatnonzero(i > lo):  # frames with a recent onset (short loop: one min per frame)
        low[f] = p[lo[f]:i[f]].min()
    since_b, until_b = _since_until(frames, _bass_changes(t, p))
    since_o, until_o = _since_until(frames, np.unique(t))
    x = np.stack([np.minimum(sounding, 12) / 6.0, onsets_near / 6.0, density / 20.0, logd, (near - 60.0) / 24.0,
                  (low - 48.0) / 24.0, since_b, until_b, since_o, until_o], axis=1)
    return frames, x.astype(np.float32)


def pedal_frames(notes: Notes, frames: np.ndarray) -> np.ndarray:
    """(frames,) bool: whether the notes' sustain pedal is down at each frame time (seconds)."""
    k = 60.0 / float(notes.tempo)
    down = np.zeros(len(frames), dtype=bool)
    for a, b in np.asarray(notes.pedals).reshape(-1, 2) * k:
        down |= (frames >= a) & (frames < b)
    return down


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index runs of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


@dataclass
class ExpressionModel:
    """The two networks and their feature scaling (see the module docstring)."""

    velocity_layers: list[tuple[np.ndarray, np.ndarray]]
    velocity_norm: tuple[np.ndarray, np.ndarray]  # (mean, std) of NOTE_FEATURES
    pedal_layers: list[tuple[np.ndarray, np.ndarray]]
    pedal_norm: tuple[np.ndarray, np.ndarray]  # (mean, std) of FRAME_FEATURES
    # probability above which a frame is pedalled: calibrated on the training frames so the pedal is down
    # as often as performers hold it (even odds alone left it down nearly always, lifting almost never)
    pedal_threshold: float = 0.5
    # std of what the velocity network leaves unexplained within one training piece (the median over
    # pieces): a performer's own note-to-note variation. Rendering with a seed draws it, so dynamics are
    # not the smooth mean of many performers (real pieces use ~50 distinct velocities; the mean alone
    # gave ~30).
    velocity_spread: float = 0.0

    def deviations(self, notes: Notes) -> np.ndarray:
        """Each note's predicted velocity above (or below) its local level."""
        x = note_features(notes)
        if not len(x):
            return np.zeros(0)
        m, s = self.velocity_norm
        return mlp(self.velocity_layers, (x - m) / s)

    def pedal_probability(self, notes: Notes) -> tuple[np.ndarray, np.ndarray]:
        """(frame times in seconds, probability the pedal is down at each)."""
        frames, x = frame_features(notes)
        if not len(x):
            return frames, np.zeros(0)
        m, s = self.pedal_norm
        return frames, 1.0 / (1.0 + np.exp(-mlp(self.pedal_layers, (x - m) / s)))

    def pedals(self, notes: Notes) -> np.ndarray:
        """Sustain presses (k, 2) [down, up] in beats: frames above the threshold, short gestures dropped."""
        frames, prob = self.pedal_probability(notes)
        down = prob > self.pedal_threshold
        for a, b in _runs(~down):  # a lift shorter than MIN_PRESS_S is not one: the pedal stays down
            if 0 < a and b < len(down) and (b - a) * HOP_S < MIN_PRESS_S:
                down[a:b] = True
        to_beats = float(notes.tempo) / 60.0
        out = [(frames[a] * to_beats, min((frames[b - 1] + HOP_S) * to_beats, notes.end)) for a, b in _runs(down)
               if (b - a) * HOP_S >= MIN_PRESS_S]  # lifted when the last note ends, not after
        return np.asarray(out, dtype=np.float64).reshape(-1, 2)

    def render(self, notes: Notes, seed: int | None = None) -> Notes:
        """The notes as performed: learned velocities around the given local level, and pedal.

        Args:
            notes: a piece (its velocities set the dynamic level kept).
            seed: draws each note's unexplained variation (`velocity_spread`) with this seed; None
                renders the predicted mean alone.

        Returns:
            The same notes with new velocities (1-127) and `pedals`.
        """
        if not len(notes):
            return notes
        velocity = local_level(notes) + self.deviations(notes)
        if seed is not None and self.velocity_spread > 0:
            velocity = velocity + np.random.default_rng(seed).normal(0.0, self.velocity_spread, len(velocity))
        velocity = np.clip(np.round(velocity), 1, 127).astype(np.int16)
        return replace(notes, velocity=velocity, pedals=self.pedals(notes))

    # ------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """Every weight and scale as named float32 arrays (what `save` writes)."""
        out = {}
        for name, layers, (m, s) in (("velocity", self.velocity_layers, self.velocity_norm),
                                     ("pedal", self.pedal_layers, self.pedal_norm)):
            out[f"{name}.mean"], out[f"{name}.std"] = m, s
            for i, (w, b) in enumerate(layers):
                out[f"{name}.{i}.weight"], out[f"{name}.{i}.bias"] = w, b
        out["pedal.threshold"] = np.array([self.pedal_threshold])
        out["velocity.spread"] = np.array([self.velocity_spread])
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ExpressionModel:
        """The model from `arrays()`'s names."""
        def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
            return np.asarray(arrays[f"{name}.mean"], np.float64), np.asarray(arrays[f"{name}.std"], np.float64)

        spread = arrays.get("velocity.spread")  # absent from checkpoints written before it was learned
        return cls(mlp_layers(arrays, "velocity."), norm("velocity"), mlp_layers(arrays, "pedal."), norm("pedal"),
                   float(arrays["pedal.threshold"][0]), float(spread[0]) if spread is not None else 0.0)

    def save(self, directory: str | os.PathLike, metrics: dict | None = None, model_card: str = "") -> Path:
        """Write a checkpoint directory (safetensors weights, config, card).

        Args:
            directory: where to write.
            metrics: measured figures to store in the config.
            model_card: the MODEL_CARD.md text.

        Returns:
            The directory.
        """
        from emomusic.checkpoint import save_arrays

        config = {"note_features": list(NOTE_FEATURES), "frame_features": list(FRAME_FEATURES), "hop_s": HOP_S,
                  "level_s": LEVEL_S}
        return save_arrays(directory, "expression", self.arrays(), config, metrics, model_card)


def load_expression(directory: str | os.PathLike) -> ExpressionModel:
    """Load an expression checkpoint (numpy arrays, no torch).

    Args:
        directory: the checkpoint folder (e.g. checkpoints/expression).

    Returns:
        The model.

    Raises:
        CheckpointError: missing, corrupt, or written for other features than this version computes.
    """
    from emomusic.checkpoint import load_matching

    ck = load_matching(directory, "expression", {"note_features": NOTE_FEATURES, "frame_features": FRAME_FEATURES},
                       "emomusic train expression")
    return ExpressionModel.from_arrays(ck.state_dict)
