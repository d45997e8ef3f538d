"""Emotion → attributes (EmoGen stage 1): supervised clustering over labelled pieces.

EmoGen's recipe: binarise every attribute at its median over the labelled set, take each
emotion's centre in that binary space, and condition the generator on the attributes of the real
piece closest to the centre. Using a real piece's attributes (not the average) keeps the vector
musically coherent, and using the centre (not one annotator's label) removes subjective bias.

Extras here: seeded sampling among the k nearest pieces for variety, and interpolation between
quadrant centres for any valence/arousal point.

Every word its own point. The labels are quadrants, so a nearest-piece lookup alone gives every word
of a quadrant the same few pieces: "calm" and "romantic", "angry" and "tense" sounded alike. The
words' coordinates inside the quadrant carry what sets them apart (romantic is livelier than lazy),
and the labelled bank says how attributes follow valence and arousal: a least-squares fit of each
attribute on the pieces' quadrant points (`QUADRANT_VA`, ±0.5: the point that stands for a labelled
piece whose exact place in its quadrant is unknown) gives one slope per axis (`Clusterer.slopes`;
per column, the same as fitting standardised attributes and scaling back). A query then takes the
real piece as before and moves its continuous attributes by slope · (target point − the piece's
quadrant point), so a word at higher arousal than its quadrant's centre gets a denser, louder version
of the piece, and intensity (`emotion.intensify`) moves the target along the word's direction.
Why shift a real piece rather than predict attributes from the point: the piece keeps the
correlations a linear map cannot hold (between register and range, density and duration), and
the shift is only the part the labels explain. Moved values stay inside the range the bank spans,
so the generator is never asked for something no real piece has. Mode and tonic are categories,
not quantities, and stay the piece's. The slopes are fitted when the clusterer is built (or loaded),
from the saved bank: the checkpoint format does not change.

Prototypes. The pieces nearest a centre match every majority bit, so they are the quadrant's
stereotypes, at the edges of its continuous spread (2 of the 3 nearest tense pieces are busier than
90% of tense pieces, and 2 of the 3 nearest calm ones lower than 90% of calm pieces). `emomusic train
prototypes` (`training.prototypes`) tries each of the pieces nearest each centre as the generator's
conditions and scores what comes out: heard as the emotion, inside real music's ranges, at a tempo on
its arousal side. With those scores in its config, `nearest` picks among the best-scoring pieces of that
pool instead of the nearest ones (a word's own point reorders its own nearest pieces by them).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.music.attributes import ATTRIBUTE_NAMES, CATEGORICAL_CONTROLS
from emomusic.vocab.emotions import QUADRANT_VA, QUADRANTS, emotion_from_va, intensify, resolve_emotion

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
    # per bank piece, how well the generator's pieces from it did (`training.prototypes`; nan: not tried);
    # None: EmoGen's order. `pool`: how many of the nearest pieces the scores reorder
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    pool: int = 0
    # a short hash of what decides the picks, the bank's weights and the prototype scores ("" when built in
    # memory): files record it (`EmoMusic.conditions_id`); set by `load`, from content, not the config's bytes
    content_id: str = field(default="", compare=False)
    # (2, n_attr): change of each attribute per unit of valence (row 0) and arousal (row 1); see fit_slopes
    slopes: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.slopes = fit_slopes(self.bank, self.bank_quadrant, self.names)

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

    def ranked(self, valence: float, arousal: float, same_quadrant: bool = True) -> np.ndarray:
        """Bank rows by distance to the point's centre in binary space, nearest first.

        Args:
            valence, arousal: the point (its quadrant's pieces only, unless `same_quadrant` is False).

        Returns:
            Row indices (never another quadrant's piece when `same_quadrant`).
        """
        centre = self.centre_for(valence, arousal)
        dist = np.abs(self.binarise(self.bank) - centre).sum(1)  # L1 in binary space (Hamming-like)
        if same_quadrant:
            q = QUADRANTS.index(emotion_from_va(valence, arousal).quadrant)
            dist = np.where(self.bank_quadrant == q, dist, np.inf)
        order = np.argsort(dist, kind="stable")
        return order[np.isfinite(dist[order])]

    def nearest(self, valence: float, arousal: float, k: int = 1, seed: int | None = None,
                same_quadrant: bool = True, prototypes: bool = True) -> int:
        """Index of a bank piece near the centre: the first (k=1) or a seeded pick of the first k.

        Without prototype scores (or with `prototypes=False`) the order is EmoGen's, nearest first. With
        them (`train prototypes`), the `pool` nearest pieces are ordered by score, best first (unscored
        pieces after the scored ones, nearest first), so the pick stays near the centre but skips the
        pieces whose generations were caricatures or were not heard as the emotion.
        """
        order = self.ranked(valence, arousal, same_quadrant)
        if prototypes and self.scores is not None and self.pool > 0:
            head = order[: self.pool]
            score = np.where(np.isnan(self.scores[head]), -np.inf, self.scores[head])
            order = head[np.argsort(-score, kind="stable")]
        order = order[: max(1, k)]
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
              k: int = 1, seed: int | None = None, intensity: float = 1.0, prototypes: bool = True,
              ) -> tuple[object, dict[str, float], str, list[str]]:
        """(Emotion, attribute values, source piece id, explanation) for a word or a V/A point.

        Args:
            emotion: a vocabulary word or quadrant; or give `valence` and `arousal` (they win).
            k, seed: pick among the k nearest same-quadrant pieces with this seed (k=1: the nearest).
            intensity: how strongly (`vocab.emotions.INTENSITY_RANGE`; 1 = the point as it is): the
                attributes aim at `intensify(valence, arousal, intensity)`; the piece is still chosen
                by the point itself, so its quadrant never changes.
            prototypes: pick by the prototype scores where there are any (False: EmoGen's nearest).

        Returns:
            The Emotion (the word's or the point's; not intensified), the chosen piece's attributes
            moved to the target point (`moved`), the piece's id and the quadrant's explanation.
        """
        emo = resolve_emotion(emotion) if emotion is not None else emotion_from_va(valence, arousal)
        if emotion is not None and valence is not None and arousal is not None:
            emo = emotion_from_va(valence, arousal)
        i = self.nearest(emo.valence, emo.arousal, k=k, seed=seed, prototypes=prototypes)
        values = self.moved(i, *intensify(emo.valence, emo.arousal, intensity))
        return emo, values, self.bank_ids[i], self.explain(emo.quadrant)

    def moved(self, index: int, valence: float, arousal: float) -> dict[str, float]:
        """Bank piece `index`'s attributes moved from its quadrant's point to (valence, arousal).

        Args:
            index: a row of the bank.
            valence, arousal: the target point (a word's, or intensified).

        Returns:
            Attribute name → value: the piece's own plus slope · (target − its quadrant's point), kept
            inside the range the bank spans; mode and tonic unchanged.
        """
        here = np.array(QUADRANT_VA[QUADRANTS[int(self.bank_quadrant[index])]])
        delta = np.array([valence, arousal], dtype=np.float64) - here
        lo, hi = self.bank.min(0), self.bank.max(0)
        row = np.clip(self.bank[index] + delta @ self.slopes, lo, hi)
        return dict(zip(self.names, (float(v) for v in row), strict=True))

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
        ids = ck.config["ids"]
        proto = ck.config.get("prototypes")  # absent before `emomusic train prototypes` ran
        scores = None
        if proto:
            scores = np.array([proto["scores"].get(i, np.nan) for i in ids], dtype=np.float64)
        content = {"bank": ck.files.get("model.safetensors"), "prototypes": proto}
        content_id = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:12]
        return cls(sd["medians"], sd["centres"], sd["bank"], sd["bank_quadrant"], ids, sd["mean"], sd["std"],
                   tuple(ck.config["names"]), scores, int(proto["pool"]) if proto else 0, content_id)


def fit_slopes(bank: np.ndarray, bank_quadrant: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Least-squares slopes of every attribute on the labelled pieces' (valence, arousal).

    Each piece stands at its quadrant's point (`QUADRANT_VA`); the fit is attribute ≈ b0 + bv·v + ba·a.
    Categorical attributes (mode, tonic) and attributes that do not vary get zero slopes.

    Args:
        bank: (n_pieces, n_attr) raw attribute values.
        bank_quadrant: (n_pieces,) index into QUADRANTS.
        names: the attribute names of the bank's columns.

    Returns:
        (2, n_attr): the change per unit valence (row 0) and per unit arousal (row 1), in raw units.
    """
    bank = np.asarray(bank, dtype=np.float64)
    points = np.array([QUADRANT_VA[q] for q in QUADRANTS])[np.asarray(bank_quadrant, dtype=np.int64)]
    design = np.column_stack([np.ones(len(bank)), points])
    if len(bank) < 3 or np.linalg.matrix_rank(design) < 3:
        return np.zeros((2, bank.shape[1]))  # the labels do not span both axes: nothing to learn
    coef = np.linalg.lstsq(design, bank, rcond=None)[0][1:]
    fixed = [i for i, n in enumerate(names) if n in CATEGORICAL_CONTROLS] + list(np.flatnonzero(np.ptp(bank, 0) == 0))
    coef[:, fixed] = 0.0
    return coef
