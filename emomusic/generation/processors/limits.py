"""Hard vocabulary limits a request sets: a velocity window, one tempo, one time signature."""

from __future__ import annotations

import numpy as np

from emomusic.generation.guidance import Guidance
from emomusic.generation.processors.base import LogitsProcessor
from emomusic.generation.processors.state import RemiState
from emomusic.music.tokenizer import TEMPO, TIMESIG, VELOCITY, MusicTokenizer


def allowed_vocabulary(g: Guidance, tk: MusicTokenizer) -> np.ndarray:
    """(vocab,) bool: the tokens `g` permits at all.

    Velocities within `velocity_window` of `velocity` (the nearest one if none is); the one tempo token
    nearest `tempo` (on a log scale); time signatures equal to `time_signature`.
    """
    ok = np.ones(len(tk), dtype=bool)
    if g.velocity is not None:
        vel_ids = tk.ids_of_type(VELOCITY)
        far = np.abs(tk.values[vel_ids] - g.velocity) > g.velocity_window
        if far.all():
            far[np.argmin(np.abs(tk.values[vel_ids] - g.velocity))] = False
        ok[vel_ids[far]] = False
    if g.tempo is not None:
        tempo_ids = tk.ids_of_type(TEMPO)
        keep = tempo_ids[np.argmin(np.abs(np.log(tk.values[tempo_ids]) - np.log(g.tempo)))]
        ok[tempo_ids] = False
        ok[keep] = True
    if g.time_signature is not None:
        ts_ids = tk.ids_of_type(TIMESIG)
        ok[ts_ids] = False
        ok[[i for i in ts_ids if tk.timesig[int(i)] == tuple(g.time_signature)]] = True
    return ok


class VocabularyLimits(LogitsProcessor):
    """Forbid (-inf) each row's tokens outside what its guidance permits (`allowed_vocabulary`)."""

    def __init__(self, tk: MusicTokenizer, guides: list[Guidance]) -> None:
        self.forbidden = ~np.stack([allowed_vocabulary(g, tk) for g in guides])

    @property
    def active(self) -> bool:
        """Whether any row has a limit (else the processor is left out)."""
        return bool(self.forbidden.any())

    def spec(self, state: RemiState, logits: np.ndarray) -> None:
        np.copyto(logits, -np.inf, where=self.forbidden)
