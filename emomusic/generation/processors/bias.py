"""Static pitch bias: the asked key and its tonic triad, and a wide register window."""

from __future__ import annotations

import numpy as np

from emomusic.generation.guidance import Guidance
from emomusic.generation.processors.base import LogitsProcessor
from emomusic.generation.processors.state import RemiState
from emomusic.music.attributes import MAJOR_SCALE, MINOR_SCALE, tonic_triad
from emomusic.music.tokenizer import PITCH, MusicTokenizer


def pitch_bias(g: Guidance, tk: MusicTokenizer) -> np.ndarray:
    """(vocab,) float32 additive logit bias of `g`'s key, triad and register window.

    In-scale pitches get +key_bias/2 and the others -key_bias/2; tonic-triad pitches another
    +triad_bias (it tells the relative major and minor apart) unless a chord plan gives that bonus bar
    by bar (`Guidance.chords`, `processors.chords`); around `pitch_mean`, a Gaussian window
    of width `pitch_sigma` (the log of its density, -0.5·z²). Zero where nothing is asked.
    """
    bias = np.zeros(len(tk), dtype=np.float32)
    pitch_ids = tk.ids_of_type(PITCH)
    pitches = tk.values[pitch_ids]
    if g.tonic is not None and g.mode is not None:
        scale = (MAJOR_SCALE if g.mode == "major" else MINOR_SCALE) + g.tonic
        in_scale = np.isin(pitches.astype(int) % 12, scale % 12)
        bias[pitch_ids] += np.where(in_scale, g.key_bias / 2, -g.key_bias / 2)
        if g.chords is None:
            triad = tonic_triad(g.tonic, g.mode)
            bias[pitch_ids] += np.where(np.isin(pitches.astype(int) % 12, triad), g.triad_bias, 0.0)
    if g.pitch_mean is not None:
        bias[pitch_ids] -= 0.5 * ((pitches - g.pitch_mean) / g.pitch_sigma) ** 2
    return bias


class PitchBias(LogitsProcessor):
    """Add each row's `pitch_bias` (the same every step)."""

    def __init__(self, tk: MusicTokenizer, guides: list[Guidance]) -> None:
        self.bias = np.stack([pitch_bias(g, tk) for g in guides])

    @property
    def active(self) -> bool:
        """Whether any row has a bias (else the processor is left out)."""
        return bool(self.bias.any())

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        logits += self.bias
