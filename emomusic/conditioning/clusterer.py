"""Emotion → attributes (EmoGen stage 1): supervised clustering over labelled pieces.

EmoGen's recipe: binarise every attribute at its median over the labelled set, take each
emotion's centre in that binary space, and condition the generator on the attributes of the real
piece closest to the centre. Using a real piece's attributes (not the average) keeps the vector
musically coherent, and using the centre (not one annotator's label) removes subjective bias.

Extras here: seeded sampling among the k nearest pieces for variety, and interpolation between
quadrant centres for any valence/arousal point.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.music.attributes import ATTRIBUTE_NAMES
from emomusic.vocab.emotions import QUADRANT_VA, QUADRANTS, emotion_from_va, resolve_emotion

# Plain words for an attribute that is high / low against the other emotions.
PHRASES: dict[str, tuple[str, str]] = {
    "tempo": ("fast tempo", "slow tempo"),
    "mode": ("major mode", "minor mode"),
    "major_minor_margin": ("clearly major tonality", "clearly minor tonality"),
    "major_triad_fraction": ("many major chords", "few major chords"),
    "minor_triad_fraction": ("many minor chords", "few minor chords"),
    "major_minor_triad_ratio": ("major rather than minor chords", "minor rather than major chords"),
    "velocity_mean": ("loud dynamics", "soft dynamics"),
    "velocity_std": ("wide dynamic contrasts", "even dynamics"),
    "pitch_mean": ("high register", "low register"),
    "pitch_range": ("wide pitch range", "narrow pitch range"),
    "note_density": ("dense, busy texture", "sparse texture"),
    "notes_per_second": ("many notes per second", "few notes per second"),
    "onset_density": ("frequent attacks", "few attacks"),
    "duration_mean": ("long, sustained notes", "short notes"),
    "duration_seconds_mean": ("long, sustained notes", "short notes"),
    "staccato_fraction": ("detached, staccato notes", "connected, legato notes"),
    "long_note_fraction": ("many held notes", "few held notes"),
    "polyphony": ("thick chords", "thin texture"),
    "chord_onset_fraction": ("chordal texture", "melodic, single-line texture"),
    "melodic_interval_mean": ("leaping melody", "stepwise melody"),
    "melodic_leap_fraction": ("many melodic leaps", "few melodic leaps"),
    "melodic_step_fraction": ("stepwise melody", "few melodic steps"),
    "pitch_class_entropy": ("chromatic, varied harmony", "simple diatonic harmony"),
    "scale_consistency": ("notes stay in the key", "many notes outside the key"),
    "key_clarity": ("clear sense of key", "ambiguous key"),
    "empty_beat_rate": ("many silent beats", "continuous sound"),
    "offbeat_fraction": ("syncopated, off-beat rhythm", "on-the-beat rhythm"),
    "ioi_mean": ("long gaps between attacks", "quick succession of attacks"),
}
EXPLAIN_ATTRIBUTES = tuple(PHRASES)


@dataclass
class Clusterer:
    """Medians, quadrant centres and the bank of real attribute vectors they were fitted on."""

    medians: np.ndarray  # (n_attr,)
    centres: np.ndarray  # (4, n_attr) in binary space, quadrant order QUADRANTS
    bank: np.ndarray  # (n_pieces, n_attr) raw attribute values
    bank_quadrant: np.ndarray  # (n_pieces,) index into QUADRANTS
    bank_ids: list[str]
    mean: np.ndarray
    std: np.ndarray
    names: tuple[str, ...] = ATTRIBUTE_NAMES

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, attributes: np.ndarray, quadrants: list[str], ids: list[str]) -> Clusterer:
        """Fit on raw attribute vectors of labelled pieces and their quadrants."""
        attributes = np.asarray(attributes, dtype=np.float64)
        q = np.array([QUADRANTS.index(x) for x in quadrants])
        medians = np.median(attributes, axis=0)
        binary = (attributes > medians).astype(np.float64)
        centres = np.stack([binary[q == i].mean(0) for i in range(4)])
        return cls(medians, centres, attributes, q, list(ids), attributes.mean(0), attributes.std(0) + 1e-9)

    def binarise(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x) > self.medians).astype(np.float64)

    # ------------------------------------------------------------------ querying
    def centre_for(self, valence: float, arousal: float) -> np.ndarray:
        """Binary-space centre for a V/A point: inverse-distance blend of the quadrant centres."""
        va = np.array([QUADRANT_VA[qd] for qd in QUADRANTS])
        d = np.linalg.norm(va - np.array([valence, arousal]), axis=1)
        if d.min() < 1e-6:
            return self.centres[int(d.argmin())]
        w = 1.0 / d**2
        return (w[:, None] * self.centres).sum(0) / w.sum()

    def nearest(self, valence: float, arousal: float, k: int = 1, seed: int | None = None,
                same_quadrant: bool = True) -> int:
        """Index of a bank piece near the centre: the nearest (k=1) or a seeded pick of the k nearest."""
        centre = self.centre_for(valence, arousal)
        dist = np.abs(self.binarise(self.bank) - centre).sum(1)  # L1 in binary space (Hamming-like)
        if same_quadrant:
            q = QUADRANTS.index(emotion_from_va(valence, arousal).quadrant)
            dist = np.where(self.bank_quadrant == q, dist, np.inf)
        order = np.argsort(dist, kind="stable")
        order = order[np.isfinite(dist[order])][: max(1, k)]  # never another quadrant's piece
        if k <= 1 or seed is None:
            return int(order[0])
        return int(np.random.default_rng(seed).choice(order))

    def explain(self, quadrant: str, top: int = 4) -> list[str]:
        """Plain words for the attributes that most set this quadrant apart from the others."""
        qi = QUADRANTS.index(quadrant)
        z = (self.bank[self.bank_quadrant == qi].mean(0) - self.bank[self.bank_quadrant != qi].mean(0)) / self.std
        idx = [self.names.index(n) for n in EXPLAIN_ATTRIBUTES if n in self.names]
        ranked = sorted(idx, key=lambda i: -abs(z[i]))
        out, seen = [], set()
        for i in ranked:
            phrase = PHRASES[self.names[i]][0 if z[i] > 0 else 1]
            if phrase not in seen:
                out.append(phrase)
                seen.add(phrase)
            if len(out) == top:
                break
        return out

    def query(self, emotion: str | None = None, valence: float | None = None, arousal: float | None = None,
              k: int = 1, seed: int | None = None) -> tuple[object, dict[str, float], str, list[str]]:
        """(Emotion, attribute values, source piece id, explanation) for a word or a V/A point."""
        emo = resolve_emotion(emotion) if emotion is not None else emotion_from_va(valence, arousal)
        if emotion is not None and valence is not None and arousal is not None:
            emo = emotion_from_va(valence, arousal)
        i = self.nearest(emo.valence, emo.arousal, k=k, seed=seed)
        values = dict(zip(self.names, (float(v) for v in self.bank[i]), strict=True))
        return emo, values, self.bank_ids[i], self.explain(emo.quadrant)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, metrics: dict | None = None, model_card: str = "") -> Path:
        import torch

        tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64 if k != "bank_quadrant" else np.int64))
                   for k, v in (("medians", self.medians), ("centres", self.centres), ("bank", self.bank),
                                ("bank_quadrant", self.bank_quadrant), ("mean", self.mean), ("std", self.std))}
        return save_checkpoint(directory, kind="clusterer", config={"names": list(self.names), "ids": self.bank_ids},
                               state_dict=tensors, metrics=metrics or {}, model_card=model_card)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Clusterer:
        ck = load_checkpoint(directory, kind="clusterer", arrays=True)
        sd = ck.state_dict
        return cls(sd["medians"], sd["centres"], sd["bank"], sd["bank_quadrant"], ck.config["ids"],
                   sd["mean"], sd["std"], tuple(ck.config["names"]))
