"""Melody extraction: which notes of a merged piano part are the sung line (the lead of an arrangement).

Why learned rather than the classic skyline (the highest note at each onset): in pop piano the top of
the texture is often not the melody. The accompaniment's upper notes go on through the melody's rests
(the skyline takes them all), a counter-line or fill sits above the tune for a few beats, and a held
accompaniment note can be higher than a melody note struck under it. A small network over texture
features (the note's place in its onset chord and among what is still sounding, its register against
the top line around it and across the piece, the leaps to the neighbouring top notes, durations, how
busy the passage is) gives each note a probability of being melody;
a second network reads the same features beside the first one's probabilities around the note (does
the music around it look like it carries a tune?), which is what tells the melody's rests from the
accompaniment's top going on. Trained on POP909's annotated MELODY tracks, it beats the skyline's
note-level F1 on held-out songs (figures in the checkpoint's card). No feature says where in the
piece a note falls: with three (beats from the start, beats to the end, fraction of the piece) the
POP909 val F1 was 0.788 instead of 0.765, but the model learned POP909's intros and found 38% of the
tune of an 8-bar test piece that opens with it (97% without), and generated pieces are short and
open with their tune.

Decoding keeps the line monophonic: one note or none per onset group, either a Viterbi pass that
scores the network's log-odds (plus a bias that sets how readily a note is taken) against a penalty per
octave of leap between consecutive chosen notes, or per-onset argmax above a threshold. The decode
and its constants are chosen on a slice of training songs and stored in the checkpoint.

A floor on how much of the piece the line covers (`MIN_COVERAGE`): a pop song's melody sounds through
most of it (POP909 val, 16-bar windows from bar 17: 0.48 / 0.77 / 1.0 of the sounding time at the 10th /
50th / 90th percentile), but on generated pieces, whose textures the network never saw, it takes
notes so sparingly that a lead part would play a few notes in sixteen bars. Where the decoded line
covers less than the floor, the top notes of the onsets (the skyline's) get a bias raised until it
does, the network still ranking them: where it is unsure, the line is the top of the texture, which in
generated piano is where the tune sits (a uniform bias instead handed the tune's long notes to the
inner voices in the pieces looked at). An arrangement's lead then always has a tune to play.

No velocity feature: generated pieces get their velocities from the expression model, so loudness is
not a cue this extractor may rely on. Inference is numpy only; weights load from a safetensors
checkpoint (`load_melody`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomusic.music.notes import Notes
from emomusic.numerics import mlp, mlp_layers

__all__ = ["CONTEXT_FEATURES", "FEATURES", "MIN_COVERAGE", "ONSET_TOL", "MelodyModel", "context_features",
           "coverage", "decode_argmax",
           "decode_viterbi", "load_melody", "melody_f1", "melody_features", "onset_groups", "skyline"]

ONSET_TOL = 0.06  # beats: onsets closer than this to the previous one are one onset (a played-in chord)
MIN_COVERAGE = 0.7  # least share of the sounding time the melody covers (about POP909's 10th percentile)
MAX_BIAS = 8.0  # the bias search stops here: a piece that still has no line above it gets what it has
HELD_LOOKBACK = 32  # onset groups back in which a still-sounding note is looked for
WINDOWS = (2.0, 8.0, 16.0)  # half-widths (beats) of the local windows over the top line
CONTEXT_WINDOWS = (1.0, 4.0, 16.0)  # half-widths (beats) over which the first stage's output is averaged

FEATURES = (
    "pitch", "top", "rank_from_top", "rank_from_bottom", "log_chord_size", "below_top", "above_bottom",
    "gap_above", "gap_below", "highest_sounding", "vs_held_max", "held_count",
    "vs_top_max_2", "vs_top_mean_2", "vs_top_max_8", "vs_top_mean_8", "vs_all_mean_2",
    "vs_song_top_median", "vs_song_top_p90", "song_top_share_below",
    "leap_prev_top", "leap_next_top", "abs_leap_prev_top", "abs_leap_next_top",
    "log_duration", "duration_vs_chord", "duration_vs_local", "log_gap_before", "log_gap_after",
    "density_2", "same_pitch_2", "log_chord_span", "vs_top_mean_16", "density_8",
)
CONTEXT_FEATURES = ("p", "onset_max_p", "p_vs_onset_max", "melody_activity_1", "melody_activity_4",
                    "melody_activity_16", "prev_onset_max_p", "next_onset_max_p")


def onset_groups(notes: Notes) -> np.ndarray:
    """Onset-group index of each note: a new group where the onset moves on by more than ONSET_TOL beats.

    Args:
        notes: a piece (sorted by onset, as `Notes` always is).

    Returns:
        (n,) int array, non-decreasing from 0.
    """
    s = np.asarray(notes.start, dtype=np.float64)
    if not len(s):
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(s) > ONSET_TOL)]).astype(np.int64)


def skyline(notes: Notes) -> np.ndarray:
    """The classic baseline: at each onset (group, see `onset_groups`), the highest note is the melody.

    Args:
        notes: a piece.

    Returns:
        (n,) bool mask with exactly one True per onset group.
    """
    n = len(notes)
    if n == 0:
        return np.zeros(0, dtype=bool)
    g = onset_groups(notes)
    # last index of each group in (group, pitch) order is its highest note (ties: the last one)
    order = np.lexsort((np.asarray(notes.pitch), g))
    last = np.flatnonzero(np.diff(g[order], append=g[-1] + 1) != 0)
    out = np.zeros(n, dtype=bool)
    out[order[last]] = True
    return out


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo:hi]) for each pair (hi > lo; a sparse table, O(n log n))."""
    table = [values]
    k = 1
    while 2 * k <= len(values):
        prev = table[-1]
        table.append(np.maximum(prev[:-k], prev[k:]))
        k *= 2
    length = np.maximum(hi - lo, 1)
    level = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty(len(lo))
    for j in np.unique(level):
        sel = level == j
        t = table[j]
        out[sel] = np.maximum(t[lo[sel]], t[hi[sel] - (1 << j)])
    return out


def _window(t: np.ndarray, at: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Index bounds [lo, hi) of the sorted times `t` within +-half of each time of `at` (at least one)."""
    lo = np.searchsorted(t, at - half, "left")
    hi = np.searchsorted(t, at + half, "right")
    lo = np.minimum(lo, len(t) - 1)
    return lo, np.maximum(hi, lo + 1)


def melody_features(notes: Notes) -> np.ndarray:
    """Per-note texture features (`FEATURES`, in that order), from pitches, onsets and durations only.

    Args:
        notes: a piece (velocities are ignored).

    Returns:
        (n, len(FEATURES)) float32 array in the notes' order.
    """
    n = len(notes)
    if n == 0:
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    p = np.asarray(notes.pitch, dtype=np.float64)
    s = np.asarray(notes.start, dtype=np.float64)
    d = np.maximum(np.asarray(notes.duration, dtype=np.float64), 1e-3)
    g = onset_groups(notes)
    k = int(g[-1]) + 1
    size = np.bincount(g, minlength=k).astype(np.float64)
    top_p = np.full(k, -np.inf)
    np.maximum.at(top_p, g, p)
    low_p = np.full(k, np.inf)
    np.minimum.at(low_p, g, p)
    onset = np.full(k, np.inf)
    np.minimum.at(onset, g, s)
    mean_d = np.bincount(g, weights=d, minlength=k) / size

    # rank within the group from the top and bottom; the pitch gap to the neighbours above and below
    order = np.lexsort((p, g))
    first = np.searchsorted(g[order], np.arange(k))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - first[g[order]]
    rank_bottom = pos.astype(np.float64)
    rank_top = size[g] - 1 - rank_bottom
    ps = p[order]
    same_next = np.concatenate([g[order][1:] == g[order][:-1], [False]])
    same_prev = np.concatenate([[False], g[order][1:] == g[order][:-1]])
    above = np.where(same_next, np.concatenate([ps[1:] - ps[:-1], [0.0]]), 12.0)
    below = np.where(same_prev, np.concatenate([[0.0], ps[1:] - ps[:-1]]), 12.0)
    gap_above, gap_below = np.empty(n), np.empty(n)
    gap_above[order], gap_below[order] = np.minimum(above, 12.0), np.minimum(below, 12.0)

    # notes struck at an earlier onset and still sounding at this one
    end = s + d
    held_max = np.full(k, -np.inf)
    held_n = np.zeros(k)
    for back in range(1, HELD_LOOKBACK + 1):
        tgt = g + back
        ok = tgt < k
        ok[ok] &= end[ok] > onset[tgt[ok]] + ONSET_TOL
        if not ok.any():
            break
        np.maximum.at(held_max, tgt[ok], p[ok])
        np.add.at(held_n, tgt[ok], 1.0)
    hm = held_max[g]
    highest_sounding = (p >= np.maximum(top_p[g], hm)).astype(np.float64)
    vs_held = np.where(np.isfinite(hm), np.clip(p - hm, -24, 24), 24.0) / 12.0

    # the top line: each group's highest note, and windows over it
    cols: dict[str, np.ndarray] = {}
    for half in WINDOWS:
        lo, hi = _window(onset, s, half)
        c = np.concatenate([[0.0], np.cumsum(top_p)])
        cols[f"vs_top_max_{half:g}"] = (p - _range_max(top_p, lo, hi)) / 12.0
        cols[f"vs_top_mean_{half:g}"] = (p - (c[hi] - c[lo]) / (hi - lo)) / 12.0
    lo, hi = _window(s, s, 2.0)
    c = np.concatenate([[0.0], np.cumsum(p)])
    vs_all_mean = (p - (c[hi] - c[lo]) / (hi - lo)) / 12.0
    med, p90 = np.median(top_p), np.percentile(top_p, 90)
    share_below = np.searchsorted(np.sort(top_p), p, "left") / k

    prev_top = np.concatenate([[np.nan], top_p[:-1]])[g]
    next_top = np.concatenate([top_p[1:], [np.nan]])[g]
    leap_prev = np.clip(np.nan_to_num(p - prev_top, nan=0.0), -24, 24) / 12.0
    leap_next = np.clip(np.nan_to_num(next_top - p, nan=0.0), -24, 24) / 12.0

    gap_before = np.diff(onset, prepend=onset[0] - 4.0)[g]
    gap_after = np.diff(onset, append=onset[-1] + 4.0)[g]
    logd = np.log(np.clip(d, 0.05, 16.0))
    lo, hi = _window(s, s, 2.0)
    c = np.concatenate([[0.0], np.cumsum(logd)])
    local_logd = (c[hi] - c[lo]) / (hi - lo)
    density = (hi - lo) / 4.0  # notes per beat within +-2 beats
    lo, hi = _window(s, s, 8.0)
    density_8 = (hi - lo) / 16.0
    # how often this pitch is struck within +-2 beats (accompaniment figures repeat their pitches)
    key = p * 1e6 + s  # pitch-major order, then time
    korder = np.argsort(key, kind="stable")
    ks = key[korder]
    same = np.empty(n)
    same[korder] = (np.searchsorted(ks, ks + 2.0, "right") - np.searchsorted(ks, ks - 2.0, "left") - 1)

    x = np.stack([
        (p - 60.0) / 24.0, (rank_top == 0).astype(np.float64), np.minimum(rank_top, 5) / 5.0,
        np.minimum(rank_bottom, 5) / 5.0, np.log(size[g]), (top_p[g] - p) / 12.0, (p - low_p[g]) / 12.0,
        gap_above / 12.0, gap_below / 12.0, highest_sounding, vs_held, np.minimum(held_n[g], 8) / 8.0,
        cols["vs_top_max_2"], cols["vs_top_mean_2"], cols["vs_top_max_8"], cols["vs_top_mean_8"], vs_all_mean,
        (p - med) / 12.0, (p - p90) / 12.0, share_below,
        leap_prev, leap_next, np.abs(leap_prev), np.abs(leap_next),
        logd, logd - np.log(np.clip(mean_d[g], 0.05, 16.0)), logd - local_logd,
        np.log(np.clip(gap_before, 0.05, 4.0)), np.log(np.clip(gap_after, 0.05, 4.0)),
        np.minimum(density, 8.0) / 4.0, np.minimum(same, 8) / 8.0, np.log1p(top_p[g] - low_p[g]) / 3.0,
        cols["vs_top_mean_16"], np.minimum(density_8, 8.0) / 4.0,
    ], axis=1)
    return x.astype(np.float32)


def coverage(notes: Notes, mask: np.ndarray, step: float = 0.25) -> float:
    """Share of the time any note sounds (on a `step`-beat grid) in which a masked note sounds.

    Args:
        notes: the piece.
        mask: (n,) bool, the line's notes.
        step: grid resolution in beats.

    Returns:
        A share in [0, 1] (0 for an empty piece).
    """
    if not len(notes) or not np.any(mask):
        return 0.0
    n_steps = int(np.ceil(notes.end / step)) + 1
    a = np.clip(np.floor(notes.start / step).astype(np.int64), 0, n_steps - 1)
    b = np.clip(np.ceil((notes.start + notes.duration) / step).astype(np.int64), 0, n_steps)
    every, line = np.zeros(n_steps + 1), np.zeros(n_steps + 1)
    np.add.at(every, a, 1)
    np.add.at(every, b, -1)
    np.add.at(line, a[mask], 1)
    np.add.at(line, b[mask], -1)
    sounding = np.cumsum(every)[:-1] > 0
    return float((np.cumsum(line)[:-1][sounding] > 0).mean()) if sounding.any() else 0.0


def decode_argmax(logit: np.ndarray, groups: np.ndarray, bias: float) -> np.ndarray:
    """Per onset group, the most likely note if its logit + bias > 0 (the simple decode).

    Args:
        logit: (n,) log-odds of each note being melody.
        groups: (n,) onset-group index (`onset_groups`).
        bias: added to every logit (higher: more notes taken).

    Returns:
        (n,) bool mask, at most one True per group.
    """
    n = len(logit)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    order = np.lexsort((logit, groups))
    last = order[np.flatnonzero(np.diff(groups[order], append=groups[-1] + 1) != 0)]
    out[last[logit[last] + bias > 0]] = True
    return out


def decode_viterbi(logit: np.ndarray, pitch: np.ndarray, groups: np.ndarray, bias: float,
                   leap: float) -> np.ndarray:
    """The best line through the onset groups: one note or none per group.

    Score: the sum of (logit + bias) over the chosen notes, minus `leap` per octave of pitch
    change between chosen notes of consecutive groups (a group with no note breaks the line: no leap
    penalty across a rest).

    Args:
        logit: (n,) log-odds of each note being melody.
        pitch: (n,) MIDI pitches.
        groups: (n,) onset-group index (`onset_groups`), non-decreasing.
        bias: added to every logit.
        leap: penalty per 12 semitones of leap.

    Returns:
        (n,) bool mask, at most one True per group.
    """
    n = len(logit)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    bounds = np.flatnonzero(np.diff(groups, prepend=-1, append=groups[-1] + 1) != 0)
    em = (np.asarray(logit, dtype=np.float64) + bias).tolist()
    pit = np.asarray(pitch, dtype=np.float64).tolist()
    k = len(bounds) - 1
    rest_score = 0.0  # best score of a line that ends in a rest at the previous group
    prev_lo = prev_hi = 0
    best = [0.0] * n  # best score of a line ending on note i
    back = [-1] * n  # the previous group's note it came from (-1: a rest or the start)
    rest_back = [-1] * k  # for a rest at group j: the previous group's note (-1: rest)
    for j in range(k):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        # best way to end the previous group: in a rest, or on one of its notes
        prev_best, prev_arg = rest_score, -1
        for i in range(prev_lo, prev_hi):
            if best[i] > prev_best:
                prev_best, prev_arg = best[i], i
        for i in range(lo, hi):
            score, arg = rest_score, -1
            for q in range(prev_lo, prev_hi):
                cand = best[q] - leap * abs(pit[i] - pit[q]) / 12.0
                if cand > score:
                    score, arg = cand, q
            best[i], back[i] = score + em[i], arg
        rest_score, rest_back[j] = prev_best, prev_arg
        prev_lo, prev_hi = lo, hi
    # trace back from the best end state
    end_arg = -1
    end_score = rest_score
    for i in range(prev_lo, prev_hi):
        if best[i] > end_score:
            end_score, end_arg = best[i], i
    j = k - 1
    state = end_arg  # note index, or -1 for a rest at group j
    while j >= 0:
        if state >= 0:
            out[state] = True
            state = back[state]
        else:
            state = rest_back[j]
        j -= 1
    return out


def context_features(notes: Notes, logit: np.ndarray) -> np.ndarray:
    """The second stage's extra inputs: the first stage's probabilities around each note.

    Where the melody rests the accompaniment's top still looks like a tune note by note; whether the
    notes around it (its onset, the neighbouring onsets, the last and next few bars) look like melody
    tells the rests apart.

    Args:
        notes: a piece.
        logit: (n,) the first stage's log-odds for its notes.

    Returns:
        (n, len(CONTEXT_FEATURES)) float32.
    """
    n = len(notes)
    if n == 0:
        return np.zeros((0, len(CONTEXT_FEATURES)), dtype=np.float32)
    g = onset_groups(notes)
    s = np.asarray(notes.start, dtype=np.float64)
    k = int(g[-1]) + 1
    p = 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64)))
    gmax = np.zeros(k)
    np.maximum.at(gmax, g, p)
    onset = np.full(k, np.inf)
    np.minimum.at(onset, g, s)
    cols = [p, gmax[g], p - gmax[g]]
    c = np.concatenate([[0.0], np.cumsum(gmax)])
    for half in CONTEXT_WINDOWS:
        lo, hi = _window(onset, s, half)
        cols.append((c[hi] - c[lo]) / (hi - lo))
    cols += [np.concatenate([[0.0], gmax[:-1]])[g], np.concatenate([gmax[1:], [0.0]])[g]]
    return np.stack(cols, axis=1).astype(np.float32)


@dataclass
class MelodyModel:
    """Two small MLPs and the decode that turns their probabilities into one line.

    The first network reads `melody_features`; the second (when `context_layers` is not empty) reads
    them again beside `context_features` of the first one's output, and its log-odds are decoded.
    """

    layers: list[tuple[np.ndarray, np.ndarray]]
    norm: tuple[np.ndarray, np.ndarray]  # (mean, std) of FEATURES on the training notes
    decode: str = "viterbi"  # or "argmax"
    bias: float = 0.0  # added to every logit before decoding
    leap: float = 1.0  # Viterbi penalty per octave of leap
    context_layers: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    context_norm: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std) of FEATURES + CONTEXT_FEATURES

    def logits(self, notes: Notes) -> np.ndarray:
        """Each note's log-odds of being melody (the second stage's, when there is one).

        Args:
            notes: a piece.

        Returns:
            (n,) float64.
        """
        x = melody_features(notes).astype(np.float64)
        if not len(x):
            return np.zeros(0)
        m, s = self.norm
        logit = mlp(self.layers, (x - m) / s)
        if not self.context_layers or self.context_norm is None:
            return logit
        x2 = np.concatenate([x, context_features(notes, logit)], axis=1)
        m, s = self.context_norm
        return mlp(self.context_layers, (x2 - m) / s)

    def probabilities(self, notes: Notes) -> np.ndarray:
        """Each note's probability of being melody (before the monophonic decode).

        Args:
            notes: a piece.

        Returns:
            (n,) float64 in (0, 1), in the notes' order.
        """
        return 1.0 / (1.0 + np.exp(-self.logits(notes)))

    def mask(self, notes: Notes) -> np.ndarray:
        """The melody: at most one note per onset group, chosen by the decode.

        Args:
            notes: a piece.

        Returns:
            (n,) bool mask over the notes (the notes themselves are not changed).
        """
        if not len(notes):
            return np.zeros(0, dtype=bool)
        logit = self.logits(notes)
        chosen = self.decode_logits(logit, notes)
        if coverage(notes, chosen) >= MIN_COVERAGE:
            return chosen
        top = skyline(notes).astype(np.float64)  # the extra goes to the top notes: the line they sing
        lo, hi = 0.0, MAX_BIAS - self.bias  # extra bias: too little at lo, enough (or the cap) at hi
        best = self.decode_logits(logit + hi * top, notes)
        for _ in range(8):
            mid = (lo + hi) / 2
            trial = self.decode_logits(logit + mid * top, notes)
            if coverage(notes, trial) >= MIN_COVERAGE:
                hi, best = mid, trial
            else:
                lo = mid
        return best

    def decode_logits(self, logit: np.ndarray, notes: Notes) -> np.ndarray:
        """This model's decode of given log-odds (`mask` without the networks).

        Args:
            logit: (n,) log-odds for the notes.
            notes: the piece.

        Returns:
            (n,) bool mask, at most one True per onset group.
        """
        groups = onset_groups(notes)
        if self.decode == "argmax":
            return decode_argmax(logit, groups, self.bias)
        return decode_viterbi(logit, notes.pitch, groups, self.bias, self.leap)

    # ------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """Every weight, scale and decode constant as named float32 arrays (what `save` writes).

        Returns:
            name -> array.
        """
        out = {"mean": self.norm[0], "std": self.norm[1],
               "decode": np.array([self.bias, self.leap, 1.0 if self.decode == "viterbi" else 0.0])}
        for i, (w, b) in enumerate(self.layers):
            out[f"{i}.weight"], out[f"{i}.bias"] = w, b
        if self.context_layers and self.context_norm is not None:
            out["context.mean"], out["context.std"] = self.context_norm
            for i, (w, b) in enumerate(self.context_layers):
                out[f"context.{i}.weight"], out[f"context.{i}.bias"] = w, b
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MelodyModel:
        """The model from `arrays()`'s names.

        Args:
            arrays: name -> array, as `arrays()` writes them.

        Returns:
            The model.
        """
        def norm(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            return np.asarray(arrays[f"{prefix}mean"], np.float64), np.asarray(arrays[f"{prefix}std"], np.float64)

        bias, leap, viterbi = (float(v) for v in np.asarray(arrays["decode"], dtype=np.float64))
        context = "context.mean" in arrays
        return cls(mlp_layers(arrays, ""), norm(""), "viterbi" if viterbi > 0.5 else "argmax", bias, leap,
                   mlp_layers(arrays, "context.") if context else [], norm("context.") if context else None)

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

        config = {"features": list(FEATURES), "context_features": list(CONTEXT_FEATURES), "onset_tol": ONSET_TOL,
                  "decode": self.decode, "bias": self.bias, "leap": self.leap,
                  "hidden": [int(w.shape[0]) for w, _ in self.layers[:-1]],
                  "context_hidden": [int(w.shape[0]) for w, _ in self.context_layers[:-1]]}
        return save_arrays(directory, "melody", self.arrays(), config, metrics, model_card)


def load_melody(directory: str | os.PathLike) -> MelodyModel:
    """Load a melody checkpoint (numpy arrays, no torch).

    Args:
        directory: the checkpoint folder (e.g. checkpoints/melody).

    Returns:
        The model.

    Raises:
        CheckpointError: missing, corrupt, or written for other features than this version computes.
    """
    from emomusic.checkpoint import load_matching

    ck = load_matching(directory, "melody", {"features": FEATURES, "onset_tol": ONSET_TOL,
                                             "context_features": CONTEXT_FEATURES}, "emomusic train melody")
    return MelodyModel.from_arrays(ck.state_dict)


def melody_f1(pred_mask: np.ndarray, notes: Notes, true_mask: np.ndarray) -> dict[str, float]:
    """Note-level precision, recall and F1 of a predicted melody against the true one.

    Notes are matched by (onset, pitch), so a chosen note that doubles a melody note at the same onset
    and pitch (POP909's tracks sometimes do) counts as found; each (onset, pitch) counts once.

    Args:
        pred_mask: (n,) bool, the predicted melody notes.
        notes: the piece both masks index.
        true_mask: (n,) bool, the annotated melody notes.

    Returns:
        {"tp", "n_pred", "n_true" (counts, as floats), "precision", "recall", "f1"}; a ratio with an empty
        denominator is 0 (1 for precision and recall when both sets are empty).
    """
    keys = list(zip(np.round(np.asarray(notes.start, dtype=np.float64), 4).tolist(),
                    np.asarray(notes.pitch).tolist(), strict=True))
    pred = {keys[i] for i in np.flatnonzero(pred_mask)}
    true = {keys[i] for i in np.flatnonzero(true_mask)}
    return _prf(len(pred & true), len(pred), len(true))


def _prf(tp: float, n_pred: float, n_true: float) -> dict[str, float]:
    """Precision, recall, F1 from counts (see `melody_f1`)."""
    precision = tp / n_pred if n_pred else float(n_true == 0)
    recall = tp / n_true if n_true else float(n_pred == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": float(tp), "n_pred": float(n_pred), "n_true": float(n_true), "precision": precision,
            "recall": recall, "f1": f1}
