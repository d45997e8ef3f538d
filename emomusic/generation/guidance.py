"""What a request asks of the sampler beyond the network: hard limits, biases and feedback targets.

`Guidance` is settings only; `processors.build_processors` turns a batch's guidance into the logits
processors that enforce it, each rule in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Guidance:
    """Decoding constraints derived from the requested attributes (all optional)."""

    tempo: float | None = None  # force this tempo (nearest tempo token) once, at the start
    time_signature: tuple[int, int] | None = (4, 4)
    tonic: int | None = None
    mode: str | None = None  # "major" | "minor"
    # logit bonus for in-scale pitches (penalty for the others). 0.6, not 1.0: on tuning seeds 500/600
    # (8 bars, 64 pieces) 1.0 made pieces more diatonic than real music (quality overlap 0.72 vs 0.77)
    # at the same judge 4Q accuracy (0.70); 0.4 raised the overlap further but cost 4Q (0.47)
    key_bias: float = 0.6
    # extra bonus for the tonic triad: tells the relative major and minor apart. 0.45, not 0.3, for the
    # GPU-trained generator: on tuning seeds (offset 500,000, 100 pieces per quadrant, 8 bars; never used by
    # the harness or its checks) judge 4Q / arousal / valence and mean quality OA were 0.818 / 0.960 / 0.843,
    # 0.837 at 0.3; 0.863 / 0.970 / 0.875, 0.822 at 0.45; 0.870 / 0.955 / 0.903, 0.817 at 0.6 (key_bias 1.0
    # instead: 0.835 / 0.970 / 0.848, 0.830). 0.6 buys valence with more pitch-class-entropy overlap lost.
    triad_bias: float = 0.45
    # the pitch classes of each bar's planned chord, the last entry the last bar the call samples
    # (`processors.chords`): each bar's chord gets `chord_bias` and the tonic triad no bonus of its own.
    # None: the tonic triad in every bar (`triad_bias`)
    chords: tuple[tuple[int, ...], ...] | None = None
    chord_bias: float = 0.7
    # duration tilt per octave of length: tonic-triad notes held longer, the others shorter. Key finding
    # (Krumhansl-Schmuckler, as `music.attributes` measures mode) weighs pitch classes by duration, and in
    # tonal music the chord tones are the long ones; 0 leaves durations to the model. Off by default: a sweep of
    # 0 / 0.5 / 1.0 on two seed sets moved the judge's 4Q accuracy both ways (0.695 -> 0.773 on one, 0.648 -> 0.688
    # on the other, with quality overlap down on both)
    triad_hold: float = 0.0
    pitch_mean: float | None = None
    pitch_sigma: float = 18.0  # a wide static window; the running-mean feedback below does the steering
    register_gain: float = 1.0  # feedback: tilt pitch logits toward the target when the running mean drifts
    velocity: float | None = None
    velocity_window: float = 20.0
    density: float | None = None  # target notes per beat (feedback on chord size and onset spacing)
    # 2.5, not 1.5: at 1.5 the model's lean outweighed the tilt (tense pieces wrote 1.2x the notes a beat asked,
    # 16.6 notes/s against real tense music's 9.9, 90th percentile 15.8); at 2.5, with the bar line tilted
    # too, 15.5 / 14.9 on two seed sets with the judge and recognizer no worse; 3.5 cost the judge's arousal
    # (docs/BENCHMARKS.md, "Density feedback: the bar line and the gain")
    density_gain: float = 2.5
    accompany: Accompaniment | None = None  # a kept tune the sampled notes go under (`EmoMusic.transform`)
    # logit tilt toward the dominant seventh late in the bar before the last, the tonic triad in the last
    # (`processors.cadence`); 0: the sampler does not know the piece ends there (a section, a loop)
    cadence: float = 0.0


@dataclass(eq=False)
class Accompaniment:
    """A kept line the sampled notes accompany (`processors.accompany.Accompany`), on a grid of
    `steps_per_beat` steps a quarter-note beat from the piece's start.

    ceiling: (steps,) int64: pitches at or above it are forbidden at that step (the tune's pitch; 128: free).
    favour: (steps, 12) float32: added to each pitch class's logits at that step (chord tones up, others down).
    """

    ceiling: np.ndarray
    favour: np.ndarray
    steps_per_beat: int = 8
