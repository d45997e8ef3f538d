"""The quality head: how much a piece sounds like real music rather than generated or broken music.

Best of N needs a judge of realism that the sampler cannot please by construction. The attribute fit
ranks the most prototypical candidate first, a caricature; this head instead reads plain statistics of
the notes that the sampler does not steer directly (dissonance, how bars return and move on, stalls,
the onset grid, dynamics, the ending, ...) and says P(real) per piece. It was fitted on real pieces
against the shipped generator's candidates and controlled degradations of real pieces (wrong notes,
shuffled bars, broken rhythm, a collapsed loop, a stalled chord, a missing ending, flat dynamics):
`emomusic.training.quality`, whose card gives the data and the measured AUCs.

Inference is numpy only (standardise, a small MLP or a logistic regression, sigmoid): eight 16-bar
candidates score in a few milliseconds, and no torch, no generator embedding is needed.

    >>> head = load_quality("checkpoints/quality")
    >>> p_real = head.score([c.notes for c in candidates])     # one probability per candidate

The features are documented one by one in `FEATURES`; `quality_features` computes them over the
first `SPAN_BARS` bars of a piece, the length generated and real examples were compared at.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emomusic.music.attributes import key_correlations, pitch_class_histogram
from emomusic.music.form import stall_flags
from emomusic.music.harmony import NO_CHORD, beat_chroma, chord_sequence
from emomusic.music.notes import Notes

__all__ = ["FEATURES", "SPAN_BARS", "QualityHead", "load_quality", "quality_features"]

SPAN_BARS = 16  # bars measured: the CLI's default length, and the length of every training example
GRID = 8  # onset positions per beat the tokenizer writes (`music.tokenizer.POSITIONS_PER_BEAT`)
NEAR = 0.8  # a bar returns when its (position, pitch) set overlaps an earlier bar's this much (Jaccard)
_EPS = 1e-6
# interval-class pairs heard as sharp dissonance when sounding together: minor second / major seventh, tritone
_INTERVAL = np.minimum(np.subtract.outer(np.arange(12), np.arange(12)) % 12,
                       np.subtract.outer(np.arange(12), np.arange(12)).T % 12)
_DISSONANT = np.isin(_INTERVAL, (1, 6)).astype(np.float64)
_SCALES = (np.array([0, 2, 4, 5, 7, 9, 11]), np.array([0, 2, 3, 5, 7, 8, 10]))  # major, natural minor on the tonic

# feature -> what it measures. The order is the model's input order (saved with the checkpoint).
# How a piece closes is read only by what a cut leaves behind (notes ringing past a bar line, a last note
# ending mid-bar): real examples are mostly openings, which have no ending, so "ends on the tonic" or "a
# long final chord" would teach the head that an ending is the mark of a generated piece.
FEATURES: dict[str, str] = {
    "density": "notes per beat",
    "onset_rate": "distinct onsets per beat",
    "polyphony": "mean notes sounding at each onset",
    "pitch_mean": "mean MIDI pitch",
    "pitch_std": "spread of MIDI pitch",
    "pitch_range": "highest minus lowest pitch, semitones",
    "log_duration": "mean log2 note duration (beats)",
    "log_duration_std": "spread of log2 note durations",
    "distinct_velocities": "log(1 + distinct velocities)",
    "velocity_std": "spread of velocities",
    "velocity_step": "mean change of the mean velocity from one onset to the next",
    "top_voice_excess": "velocity of the highest note of each chord above the chord's other notes",
    "dissonance": "share of sounding pitch-class pairs at onsets a minor second/major seventh or tritone apart",
    "pc_entropy": "entropy (bits) of the note-count pitch-class histogram",
    "key_fit": "correlation of the duration pitch-class histogram with its best Krumhansl key profile",
    "out_of_key": "share of notes outside the best key's scale (major, or natural minor with a raised 7th)",
    "bar_pitch_classes": "mean distinct pitch classes per bar",
    "chromatic_clash": "share of onsets where two sounding pitch classes a semitone apart are both struck",
    "returning_bars": "share of bars (after the first) repeating or nearly repeating an earlier bar",
    "distinct_bars": "share of bars whose (position, pitch) content occurs once",
    "loop_share": "share of bars equal to the most common bar",
    "longest_stall": "longest run of bars stalling on a triad or less (music.form.stall_flags), per bar",
    "chord_change_rate": "share of beats whose chord root differs from the previous chord's",
    "local_continuity": "pitch-class similarity of neighbouring bars minus that of distant bars",
    "transition_leap": "semitones from each pitch struck on a downbeat to the nearest one sounding just before",
    "transition_shared": "pitch classes carried over each bar line (Jaccard)",
    "off_grid": "share of onsets off the 1/8-beat grid",
    "off_sixteenth": "share of onsets off the 1/4-beat grid",
    "on_beat": "share of onsets on a beat",
    "ioi_entropy": "entropy (bits) of the gaps between onsets (1/48-beat bins)",
    "position_entropy": "entropy (bits) of onset positions within the bar (1/8-beat bins)",
    "bar_density_cv": "coefficient of variation of notes per bar",
    "empty_beats": "share of beats with nothing sounding",
    "melody_step": "share of moves of the top voice by at most two semitones",
    "melody_leap": "mean absolute interval of the top voice, semitones",
    "duplicate_notes": "share of notes repeating a same-pitch, same-onset note",
    "end_phase": "where in its bar the last note ends (0: on a bar line)",
    "end_overhang": "beats the last notes ring past the last onset's bar",
}


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0].astype(np.float64)
    if not len(p):
        return 0.0
    p = p / p.sum()
    return float(-(p * np.log2(p)).sum())


def _window(notes: Notes, bars: int) -> Notes:
    """The first `bars` bars from the bar of the first note (a lead-in of silent bars is skipped)."""
    if not len(notes):
        return notes
    bar = notes.beats_per_bar
    first = float(np.floor(notes.start.min() / bar + _EPS) * bar)
    keep = (notes.start >= first - _EPS) & (notes.start < first + bars * bar - _EPS)
    return Notes(notes.pitch[keep], notes.start[keep] - first, notes.duration[keep], notes.velocity[keep],
                 notes.tempo, notes.time_signature)


def quality_features(notes: Notes, bars: int = SPAN_BARS) -> np.ndarray:
    """The `FEATURES` of one piece, over its first `bars` bars (from the bar of its first note).

    Every value is finite: a piece without notes gets zeros. Notes are used as given (sorted by
    onset and pitch, as `Notes.from_arrays` keeps them); pedals and tempo are not read, since the
    performance layer renders them the same way for every candidate.

    Args:
        notes: a piece.
        bars: the span measured, in the piece's own bars.

    Returns:
        float64 array, one value per `FEATURES` entry, in its order.
    """
    n = _window(notes, bars)
    out = dict.fromkeys(FEATURES, 0.0)
    if len(n) < 2:
        return np.zeros(len(FEATURES))
    pitch = n.pitch.astype(np.int64)
    start, dur, vel = n.start, np.maximum(n.duration, 1.0 / GRID / 4), n.velocity.astype(np.float64)
    end = start + dur
    bar = n.beats_per_bar
    n_bars = max(1, int(np.ceil((start.max() + _EPS) / bar)))
    span = n_bars * bar
    pc = pitch % 12

    onsets, group, counts = np.unique(np.round(start, 4), return_inverse=True, return_counts=True)
    last_of_group = np.cumsum(counts) - 1  # notes are sorted by (start, pitch): the last is the top voice
    sounding = (start[None, :] <= onsets[:, None] + 1e-4) & (end[None, :] > onsets[:, None] + 1e-4)
    out.update(density=len(n) / span, onset_rate=len(onsets) / span, polyphony=float(sounding.sum(1).mean()),
               pitch_mean=float(pitch.mean()), pitch_std=float(pitch.std()), pitch_range=float(np.ptp(pitch)),
               log_duration=float(np.log2(dur).mean()), log_duration_std=float(np.log2(dur).std()))

    # dynamics
    vel_sum = np.bincount(group, weights=vel)
    top_vel = vel[last_of_group]
    chord = counts >= 2
    excess = top_vel[chord] - (vel_sum[chord] - top_vel[chord]) / (counts[chord] - 1)
    onset_vel = vel_sum / counts
    out.update(distinct_velocities=float(np.log1p(len(np.unique(vel)))), velocity_std=float(vel.std()),
               velocity_step=float(np.abs(np.diff(onset_vel)).mean()) if len(onsets) > 1 else 0.0,
               top_voice_excess=float(excess.mean()) if len(excess) else 0.0)

    # harmony and key
    present = (sounding.astype(np.float64) @ np.eye(12)[pc]) > 0  # (onsets, 12) pitch classes sounding
    k = present.sum(1)
    pairs = k * (k - 1) / 2
    bad = np.einsum("oi,ij,oj->o", present, _DISSONANT, present) / 2
    out["dissonance"] = float(bad.sum() / pairs.sum()) if pairs.sum() else 0.0
    struck = np.zeros((len(onsets), 12), dtype=bool)
    struck[group, pc] = True
    semitone = (struck & np.roll(struck, 1, axis=1)).any(1)
    out["chromatic_clash"] = float(semitone.mean())
    out["pc_entropy"] = _entropy(np.bincount(pc, minlength=12))
    corr = key_correlations(pitch_class_histogram(n))
    best = int(np.argmax(corr))
    tonic, minor = best % 12, best >= 12
    scale = (_SCALES[1] if minor else _SCALES[0]) + tonic
    if minor:
        scale = np.append(scale, tonic + 11)
    out["key_fit"] = float(corr[best])
    out["out_of_key"] = float(1.0 - np.isin(pc, scale % 12).mean())

    # bars: content, returns, loops, stalls, continuity
    bar_of = np.minimum((start / bar + _EPS).astype(np.int64), n_bars - 1)
    pos = np.round((start - bar_of * bar) * GRID).astype(np.int64)
    keys = [frozenset((pos[bar_of == b] * 128 + pitch[bar_of == b]).tolist()) for b in range(n_bars)]
    classes = [frozenset(pc[bar_of == b].tolist()) for b in range(n_bars)]
    out["bar_pitch_classes"] = float(np.mean([len(c) for c in classes]))
    returns = 0
    for b in range(1, n_bars):
        if keys[b] and any(len(keys[a] | keys[b]) and len(keys[a] & keys[b]) / len(keys[a] | keys[b]) >= NEAR - 1e-9
                           for a in range(b)):
            returns += 1
    filled = [x for x in keys if x]
    tally: dict[frozenset, int] = {}
    for x in filled:
        tally[x] = tally.get(x, 0) + 1
    out["returning_bars"] = returns / max(1, n_bars - 1)
    out["distinct_bars"] = sum(1 for x in filled if tally[x] == 1) / n_bars
    out["loop_share"] = max(tally.values(), default=0) / n_bars
    run = longest = 0
    for stalled in stall_flags(classes):
        run = run + 1 if stalled else 0
        longest = max(longest, run)
    out["longest_stall"] = longest / n_bars
    per_bar = np.bincount(bar_of, minlength=n_bars).astype(np.float64)
    out["bar_density_cv"] = float(per_bar.std() / per_bar.mean())
    chroma = np.zeros((n_bars, 12))
    np.add.at(chroma, (bar_of, pc), np.minimum(dur, bar))
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    unit = np.divide(chroma, norm, out=np.zeros_like(chroma), where=norm > 0)
    sim = unit @ unit.T
    if n_bars >= 3:
        near = np.diagonal(sim, 1).mean()
        far = sim[np.triu_indices(n_bars, 2)].mean()
        out["local_continuity"] = float(near - far)
    leaps, shared = [], []
    for b in range(1, n_bars):
        t = b * bar
        before = pitch[(start < t - _EPS) & (end > t - 1.0 + _EPS)]
        after = pitch[(start >= t - _EPS) & (start < t + 1.0 - _EPS)]
        if len(before) and len(after):
            leaps.append(np.abs(after[:, None] - before[None, :]).min(1).mean())
            sb, sa = set((before % 12).tolist()), set((after % 12).tolist())
            shared.append(len(sb & sa) / len(sb | sa))
    out["transition_leap"] = float(np.mean(leaps)) if leaps else 0.0
    out["transition_shared"] = float(np.mean(shared)) if shared else 0.0
    roots, _ = chord_sequence(beat_chroma(n)[: int(span)])
    roots = roots[roots != NO_CHORD]
    out["chord_change_rate"] = float(np.mean(roots[1:] != roots[:-1])) if len(roots) > 1 else 0.0

    # rhythm
    out["off_grid"] = float(np.mean(np.abs(onsets * GRID - np.round(onsets * GRID)) > 1e-3))
    out["off_sixteenth"] = float(np.mean(np.abs(onsets * 4 - np.round(onsets * 4)) > 1e-3))
    out["on_beat"] = float(np.mean(np.abs(onsets - np.round(onsets)) < 1e-3))
    if len(onsets) > 1:
        out["ioi_entropy"] = _entropy(np.bincount(np.round(np.diff(onsets) * 48).astype(np.int64)))
    in_bar = np.round((onsets % bar) * GRID).astype(np.int64)
    out["position_entropy"] = _entropy(np.bincount(in_bar))
    beats = int(np.ceil(span))
    edges = np.zeros(beats + 1)
    np.add.at(edges, np.floor(start).astype(np.int64), 1.0)
    np.add.at(edges, np.clip(np.ceil(np.minimum(end, span) - _EPS).astype(np.int64), 0, beats), -1.0)
    out["empty_beats"] = float(np.mean(np.cumsum(edges)[:beats] < 0.5))

    # melody: the top voice of each onset
    top = pitch[last_of_group]
    if len(top) > 1:
        step = np.abs(np.diff(top))
        out["melody_step"] = float(np.mean(step <= 2))
        out["melody_leap"] = float(step.mean())
    pairs_pg = group * 128 + pitch
    out["duplicate_notes"] = float(1.0 - len(np.unique(pairs_pg)) / len(pitch))

    # the ending
    last_bar_end = (np.floor(onsets[-1] / bar + _EPS) + 1) * bar
    out["end_phase"] = float((end.max() % bar) / bar) if abs(end.max() / bar - round(end.max() / bar)) > 1e-3 else 0.0
    out["end_overhang"] = float(max(0.0, end.max() - last_bar_end))
    return np.nan_to_num(np.array([out[k] for k in FEATURES], dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


class QualityHead:
    """P(real) from `quality_features`: standardise, then a small MLP (ReLU) or a logistic regression.

    layers: (weight (in, out), bias (out,)) pairs; none hidden is a logistic regression. The last
    layer has one output, the logit of P(real).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, layers: Sequence[tuple[np.ndarray, np.ndarray]],
                 features: Sequence[str] = tuple(FEATURES)) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.where(np.asarray(std, dtype=np.float64) > 1e-9, np.asarray(std, dtype=np.float64), 1.0)
        self.layers = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in layers]
        self.features = tuple(features)
        if self.features != tuple(FEATURES):
            from emomusic.errors import CheckpointError

            raise CheckpointError("quality head written for other features than this version computes; "
                                  "retrain it (emomusic.training.quality.train_quality)")

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The logit of P(real) for each row of a (pieces, features) matrix."""
        h = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def score_features(self, x: np.ndarray) -> np.ndarray:
        """P(real) for each row of a (pieces, features) matrix."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -50, 50)))

    def score(self, notes_list: Sequence[Notes]) -> np.ndarray:
        """P(real) for each piece (its first `SPAN_BARS` bars), in order.

        Args:
            notes_list: the pieces, e.g. `[c.notes for c in candidates]`.

        Returns:
            float64 array of probabilities in [0, 1], one per piece.
        """
        if not len(notes_list):
            return np.zeros(0)
        return self.score_features(np.stack([quality_features(n) for n in notes_list]))

    def arrays(self) -> dict[str, np.ndarray]:
        """Every weight and scale as named float32 arrays (what `save` writes)."""
        out = {"mean": self.mean, "std": self.std}
        for i, (w, b) in enumerate(self.layers):
            out[f"{i}.weight"], out[f"{i}.bias"] = w, b
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], features: Sequence[str] = tuple(FEATURES)) -> QualityHead:
        """The head from `arrays()`'s names."""
        n = sum(1 for k in arrays if k.endswith(".weight"))
        layers = [(arrays[f"{i}.weight"], arrays[f"{i}.bias"]) for i in range(n)]
        return cls(arrays["mean"], arrays["std"], layers, features)

    def save(self, directory: str | os.PathLike, metrics: dict | None = None, model_card: str = "") -> Path:
        """Write a checkpoint directory (safetensors weights, config with the feature names, card).

        Args:
            directory: where to write (e.g. checkpoints/quality).
            metrics: measured figures to store in the config.
            model_card: the MODEL_CARD.md text.

        Returns:
            The directory.
        """
        from emomusic.checkpoint import save_arrays

        config = {"features": list(self.features), "span_bars": SPAN_BARS, "grid": GRID,
                  "hidden": [int(w.shape[1]) for w, _ in self.layers[:-1]]}
        return save_arrays(directory, "quality", self.arrays(), config, metrics, model_card)


def load_quality(directory: str | os.PathLike) -> QualityHead:
    """Load a quality checkpoint (numpy arrays, no torch).

    Args:
        directory: the checkpoint folder (e.g. checkpoints/quality).

    Returns:
        The head.

    Raises:
        CheckpointError: missing, corrupt, or written for other features than this version computes.
    """
    from emomusic.checkpoint import load_matching

    ck = load_matching(directory, "quality", {"features": list(FEATURES), "span_bars": SPAN_BARS},
                       "emomusic.training.quality.train_quality")
    return QualityHead.from_arrays(ck.state_dict)
