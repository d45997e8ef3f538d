"""A synthetic attribute bank whose right answers are known, shared by the clusterer and prototype tests.

Q4 (calm) pieces are soft, sparse and major; Q3 soft, sparse and minor; Q2 loud, dense and minor; Q1
loud, dense and major. Every other attribute is seeded noise. (A plain module beside the tests: pytest
puts this folder on the import path, so `from synthetic_bank import ...` works from any test.)
"""

from __future__ import annotations

import numpy as np

from emomusic.music.attributes import ATTRIBUTE_NAMES
from emomusic.vocab.emotions import QUADRANTS

PER_QUADRANT = 15
COL = {n: i for i, n in enumerate(ATTRIBUTE_NAMES)}
# quadrant → (velocity_mean, note_density, mode)
PROFILE = {"Q1": (100.0, 8.0, 1.0), "Q2": (100.0, 8.0, 0.0), "Q3": (70.0, 3.0, 0.0), "Q4": (40.0, 1.0, 1.0)}


def _bank(seed: int = 0, per_quadrant: int = PER_QUADRANT) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    quads = [q for q in QUADRANTS for _ in range(per_quadrant)]
    x = rng.normal(size=(len(quads), len(ATTRIBUTE_NAMES)))
    for row, q in zip(x, quads, strict=True):
        vel, dens, mode = PROFILE[q]
        row[COL["velocity_mean"]] = vel + rng.normal(0, 3)
        row[COL["note_density"]] = dens * rng.uniform(0.8, 1.2)
        row[COL["mode"]] = mode
    ids = [f"synth/{q}/{i % per_quadrant}" for i, q in enumerate(quads)]
    return x, quads, ids
