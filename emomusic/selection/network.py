"""The selector network in torch, for training (`training.selector`); inference runs the same
network in numpy (`selection.selector.net_forward`), so ranking candidates never imports torch."""

from __future__ import annotations

import torch
from torch import nn

from emomusic.selection.selector import SelectorConfig
from emomusic.vocab.emotions import GENRES, QUADRANTS

__all__ = ["SelectorNet"]


class SelectorNet(nn.Module):
    """Standardise → MLP trunk → heads: quality (1 logit), quadrant (4), valence/arousal (2), genre (5)."""

    def __init__(self, config: SelectorConfig) -> None:
        super().__init__()
        self.config = config
        n_in = config.embed_dim + config.n_metrics
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("std", torch.ones(n_in))
        h = config.hidden
        self.trunk = nn.Sequential(nn.Dropout(config.dropout / 2), nn.Linear(n_in, h), nn.GELU(),
                                   nn.Dropout(config.dropout), nn.Linear(h, h), nn.GELU(), nn.Dropout(config.dropout))
        self.quality = nn.Linear(h, 1)
        self.quadrant = nn.Linear(h, len(QUADRANTS))
        self.va = nn.Linear(h, 2)  # logits of high valence, high arousal
        self.genre = nn.Linear(h, len(GENRES))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.trunk((x - self.mean) / self.std)
        return {"quality": self.quality(z)[:, 0], "quadrant": self.quadrant(z), "va": self.va(z),
                "genre": self.genre(z)}
