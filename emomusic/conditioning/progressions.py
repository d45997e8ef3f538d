"""Chord plans: one triad a bar, drawn from bar-to-bar chord transitions learned per quadrant and mode.

Why: the sampler used to lean every bar toward the tonic triad (`Guidance.triad_bias`). That told the
relative major and minor apart, but generated pieces sat on the tonic chord in a median 0.62 of their
bars and put 0.75 of their notes on its three pitch classes, where real openings do 0.28 (EMOPIA) to
0.36 (POP909) and 0.42-0.65. A listener hears harmony that stands still. A plan moves the lean from
bar to bar along a progression real music of the asked emotion uses (IV, vi, V in major; VI, III, iv,
VII in minor), so the mode is still carried by the chords while the harmony moves.

The transitions are counted over EMOPIA's train clips of each quadrant (its labels) and, as a prior of
the same mode, POP909's train songs, one chord a bar (`music.harmony.bar_chords`), keys by
Krumhansl-Schmuckler. `emomusic train progressions` writes the checkpoint with its card.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomusic.music.harmony import QUALITIES
from emomusic.music.transform import chord_pitch_classes
from emomusic.vocab.emotions import QUADRANTS

__all__ = ["MODES", "ProgressionModel", "load_progressions"]

MODES = ("major", "minor")
KIND = "progressions"
# bars a planned chord lasts at most: in EMOPIA's val clips 0.93 of chords last one or two bars (0.76 / 0.17),
# but the first-order chain, whose tonic row stays put half the time, drew plans that sat on I for a whole
# phrase
MAX_RUN = 2
# bars the tonic chord is planned in a row at most. The tables sit on the tonic in 0.26-0.38 of bars (their
# stationary shares), as real openings do (EMOPIA 0.28, POP909 0.36), but a 16-bar plan opens its phrases on
# it and closes them on it or V, and its returns repeat the first phrase: plans sat on it in 0.62-0.69 of
# their bars. With best of two, whose selector keeps the more tonic-centred candidate, pieces put 0.669 of
# their notes on the tonic triad at one seed set (real 90th percentile 0.649); with this rule 0.629
# (docs/BENCHMARKS.md, "Chord plans and best of two by default")
TONIC_RUN = 1


@dataclass(frozen=True)
class ProgressionModel:
    """A first-order chain over a chord vocabulary, one transition table per quadrant and mode.

    chords: (K, 2) int64: each chord's root in semitones above the tonic and its triad's index in
        `QUALITIES` (maj, min, dim, aug).
    transitions: (len(QUADRANTS), len(MODES), K, K) float64, rows summing to 1: P(next bar's chord |
        this bar's).
    """

    chords: np.ndarray
    transitions: np.ndarray

    def tonic(self, mode: str) -> int:
        """The index of the tonic triad of `mode` (I in major, i in minor)."""
        return self.index(0, QUALITIES.index("maj" if mode == "major" else "min"))

    def index(self, root: int, quality: int) -> int:
        """The vocabulary index of a chord (root above the tonic, triad index); -1 if not in it."""
        hit = np.flatnonzero((self.chords[:, 0] == root) & (self.chords[:, 1] == quality))
        return int(hit[0]) if len(hit) else -1

    def table(self, quadrant: str, mode: str) -> np.ndarray:
        """(K, K) transitions of one quadrant and mode."""
        return self.transitions[QUADRANTS.index(quadrant), MODES.index(mode)]

    def dominant(self) -> int:
        """The index of the major triad on the fifth degree (V in both modes; -1 if not in the vocabulary)."""
        return self.index(7, QUALITIES.index("maj"))

    def plan(self, quadrant: str, mode: str, bars: int, rng: np.random.Generator, first: int | None = None,
             last: int | Sequence[int] | None = None, after: int | None = None) -> np.ndarray:
        """A chord a bar, drawn from the chain with the first and last bars fixed where asked.

        No chord lasts more than `MAX_RUN` bars, the tonic no more than `TONIC_RUN` (unless a fixed last
        chord leaves no other way). Fixing the last chord (or a set of them) draws each bar from
        P(chord | previous, one of them reached in the bars left) (the chain's matrix powers), so the plan
        arrives there the way real progressions do rather than jumping to it.

        Args:
            quadrant: the emotion's quadrant ("Q1".."Q4").
            mode: "major" or "minor".
            bars: the plan's length (at least 1).
            rng: the draw's generator.
            first: the first bar's chord index, or None to draw it (after `after`, else from the
                table's stationary distribution).
            last: the last bar's chord index, or the indices it may be (a phrase that ends on I or V),
                or None to leave it free.
            after: the chord before the plan (the previous section's last), for a first bar drawn.

        Returns:
            (bars,) int64 chord indices.
        """
        t = self.table(quadrant, mode)
        k = len(self.chords)
        ends = None if last is None else np.atleast_1d(np.asarray(last, dtype=np.int64))
        reach = [np.ones(k)] if ends is None else [np.isin(np.arange(k), ends).astype(float)]
        for _ in range(bars):  # reach[j]: the chance of ending allowed from each chord, j bars before the end
            reach.append(t @ reach[-1])
        out = np.zeros(bars, dtype=np.int64)
        for i in range(bars):
            if i == 0 and first is not None:
                out[0] = first
                continue
            if i:
                p = t[out[i - 1]]
            elif after is not None:
                p = t[after]
            else:
                p = _stationary(t)
            run = TONIC_RUN if out[i - 1] == self.tonic(mode) else MAX_RUN
            if i >= run and (out[i - run:i] == out[i - 1]).all():
                p = p.copy()
                p[out[i - 1]] = 0.0  # held long enough: the harmony moves on
            p = p * reach[bars - 1 - i]
            if p.sum() <= 0:  # no way to reach an allowed end: take the likeliest allowed one now
                p = reach[0] if i == bars - 1 and ends is not None else np.ones(k)
            out[i] = int(rng.choice(k, p=p / p.sum()))
        return out

    def pitch_classes(self, chord: int, tonic: int) -> tuple[int, ...]:
        """The pitch classes of a vocabulary chord in the key of `tonic`."""
        root, quality = (int(v) for v in self.chords[chord])
        return tuple(int(c) for c in np.flatnonzero(chord_pitch_classes(tonic + root, QUALITIES[quality])))

    def name(self, chord: int, mode: str) -> str:
        """A chord as a Roman numeral of its key: "I", "vi", "bVII", "vii°" (minor: "i", "bVI", "V")."""
        root, quality = (int(v) for v in self.chords[chord])
        base = ["I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII"]
        if mode == "minor":  # minor keys read their own degrees: bIII, bVI, bVII are III, VI, VII
            base = ["I", "bII", "II", "III", "#III", "IV", "#IV", "V", "VI", "#VI", "VII", "#VII"]
        q = QUALITIES[quality]
        if q in ("min", "dim"):
            return base[root].lower() + ("°" if q == "dim" else "")
        return base[root] + ("+" if q == "aug" else "")

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a checkpoint stores."""
        return {"chords": self.chords, "transitions": self.transitions}

    def save(self, directory: str | os.PathLike, metrics: dict | None = None, model_card: str = "") -> Path:
        """Write the checkpoint (numpy arrays in safetensors, the quadrant and mode order in its config).

        Args:
            directory: the folder to write.
            metrics: measured figures for config.json.
            model_card: MODEL_CARD.md text.

        Returns:
            The folder.
        """
        from emomusic.checkpoint import save_arrays

        config = {"quadrants": list(QUADRANTS), "modes": list(MODES), "qualities": list(QUALITIES[:4])}
        return save_arrays(directory, KIND, self.arrays(), config, metrics, model_card)


def _stationary(t: np.ndarray) -> np.ndarray:
    """The chain's long-run share of each chord (its transition matrix's left eigenvector for 1)."""
    p = np.full(len(t), 1.0 / len(t))
    for _ in range(200):
        p = p @ t
    return p


def load_progressions(directory: str | os.PathLike) -> ProgressionModel:
    """Load a progressions checkpoint (numpy arrays, no torch).

    Args:
        directory: the checkpoint folder (e.g. checkpoints/progressions).

    Returns:
        The model.

    Raises:
        CheckpointError: missing, corrupt, or written for another quadrant, mode or quality order.
    """
    from emomusic.checkpoint import load_matching

    ck = load_matching(directory, KIND, {"quadrants": QUADRANTS, "modes": MODES, "qualities": QUALITIES[:4]},
                       "emomusic train progressions")
    return ProgressionModel(np.asarray(ck.state_dict["chords"], dtype=np.int64),
                            np.asarray(ck.state_dict["transitions"], dtype=np.float64))
