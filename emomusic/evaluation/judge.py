"""An independent emotion judge: a linear classifier on musical attributes, EMOPIA train only.

Used to measure controllability (is a piece generated for Q3 heard as Q3?). It is trained on
EMOPIA's train split only and never used to select candidates, so it stays a fair judge. It is a
logistic regression on standardised attributes (sklearn), stored as plain arrays in safetensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.music.attributes import ATTRIBUTE_NAMES
from emomusic.vocab.emotions import QUADRANTS

# Valence is high in Q1/Q4, arousal high in Q1/Q2.
HIGH_VALENCE = {"Q1", "Q4"}
HIGH_AROUSAL = {"Q1", "Q2"}
# Attributes left out of the judge: tonic is arbitrary (pieces are transposable), tempo is a
# constant 120 BPM in EMOPIA's transcribed MIDI, and length depends on clip cutting.
EXCLUDED = ("tonic", "tempo", "length_beats")


def accuracies(pred: list[str], true: list[str]) -> dict[str, float]:
    """4Q, arousal and valence accuracy of quadrant predictions.

    Args:
        pred: predicted quadrants.
        true: true quadrants, same order.

    Returns:
        {"4Q", "arousal", "valence"} → accuracy.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    if not len(true):
        return {"4Q": float("nan"), "arousal": float("nan"), "valence": float("nan")}
    ar = np.isin(pred, list(HIGH_AROUSAL)) == np.isin(true, list(HIGH_AROUSAL))
    va = np.isin(pred, list(HIGH_VALENCE)) == np.isin(true, list(HIGH_VALENCE))
    return {"4Q": float((pred == true).mean()), "arousal": float(ar.mean()), "valence": float(va.mean())}


@dataclass
class FeatureJudge:
    """Multinomial logistic regression over standardised attributes."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray  # (4, n_features)
    intercept: np.ndarray  # (4,)
    columns: np.ndarray  # indices into ATTRIBUTE_NAMES

    @classmethod
    def fit(cls, attributes: np.ndarray, quadrants: list[str], c: float = 0.5, seed: int = 0) -> FeatureJudge:
        from sklearn.linear_model import LogisticRegression

        cols = np.array([i for i, n in enumerate(ATTRIBUTE_NAMES) if n not in EXCLUDED])
        x = np.asarray(attributes, dtype=np.float64)[:, cols]
        mean, std = x.mean(0), x.std(0) + 1e-9
        y = np.array([QUADRANTS.index(q) for q in quadrants])
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit((x - mean) / std, y)
        return cls(mean, std, clf.coef_, clf.intercept_, cols)

    def proba(self, attributes: np.ndarray) -> np.ndarray:
        """(n, 4) quadrant probabilities.

        Args:
            attributes: (n, 57) attribute rows.

        Returns:
            (n, 4) probabilities in QUADRANTS order.
        """
        x = (np.atleast_2d(attributes)[:, self.columns] - self.mean) / self.std
        z = x @ self.coef.T + self.intercept
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def predict(self, attributes: np.ndarray) -> list[str]:
        return [QUADRANTS[i] for i in self.proba(attributes).argmax(1)]

    def save(self, directory: str | os.PathLike, metrics: dict | None = None, model_card: str = "") -> Path:
        sd = {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in
              ("mean", "std", "coef", "intercept", "columns")}
        return save_checkpoint(directory, kind="judge", config={"attributes": list(ATTRIBUTE_NAMES)},
                               state_dict=sd, metrics=metrics or {}, model_card=model_card)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> FeatureJudge:
        ck = load_checkpoint(directory, kind="judge")
        sd = {k: v.numpy() for k, v in ck.state_dict.items()}
        return cls(sd["mean"], sd["std"], sd["coef"], sd["intercept"], sd["columns"])
