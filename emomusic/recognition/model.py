"""The symbolic emotion recognizer: one network, two heads (4 quadrants; valence/arousal).

Inputs per piece (see `featurise`): the generator backbone's piece embedding (what the music sounds
like as learned from ~all our MIDI), the attribute vector (tempo, register, dynamics, ...), a harmony
summary and the key-normalised chord sequence (roots and qualities embedded, convolved over
neighbouring beats so progressions count, then mean/max pooled). One shared trunk feeds both heads
so categorical (EMOPIA) and dimensional (VGMIDI) labels train the same representation.

The valence/arousal head returns logits: valence = tanh(logit / 2) = 2·sigmoid(logit) − 1, so the
regression value lives in [-1, 1] and graded or soft targets train it with a binary cross-entropy,
which is also what distillation with a temperature needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

# the inputs live with the numpy forward (no torch); re-exported here for training
from emomusic.recognition.inference import (
    QUAL_PAD,
    ROOT_PAD,
    Features,
    RecognizerConfig,
    featurise,
    va_from_logits,
)

__all__ = ["Features", "Recognizer", "RecognizerConfig", "featurise", "load_recognizer", "va_from_logits"]


class Recognizer(nn.Module):
    """Piece embedding + chord sequence + harmony summary + attributes → quadrant and V/A heads."""

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        for name, dim in (("embedding", c.embed_dim), ("attributes", c.n_attributes), ("harmony", c.n_harmony)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))
        self.root_embed = nn.Embedding(ROOT_PAD + 1, c.chord_dim, padding_idx=ROOT_PAD)
        self.quality_embed = nn.Embedding(QUAL_PAD + 1, c.chord_dim, padding_idx=QUAL_PAD)
        self.chord_conv = nn.Conv1d(c.chord_dim, c.chord_dim, kernel_size=3, padding=1)
        self.input_dropout = nn.Dropout(c.input_dropout)
        width = c.embed_dim + c.n_attributes + c.n_harmony + 2 * c.chord_dim
        self.trunk = nn.Sequential(nn.Linear(width, c.hidden), nn.GELU(), nn.Dropout(c.dropout))
        self.quadrant_head = nn.Linear(c.hidden, 4)
        self.va_head = nn.Linear(c.hidden, 2)

    def set_normalisation(self, features: Features) -> None:
        """Standardise inputs with the training set's statistics (stored as buffers).

        Args:
            features: the training rows.
        """
        for name in ("embedding", "attributes", "harmony"):
            x = torch.from_numpy(getattr(features, name)).double()
            getattr(self, f"{name}_mean").copy_(x.mean(0).float())
            getattr(self, f"{name}_std").copy_(x.std(0).clamp_min(1e-6).float())

    def _chords(self, roots: torch.Tensor, qualities: torch.Tensor) -> torch.Tensor:
        """Mean and max pool of convolved chord embeddings over the non-padding beats."""
        mask = (roots != ROOT_PAD).unsqueeze(-1)
        x = self.root_embed(roots) + self.quality_embed(qualities)
        x = torch.nn.functional.gelu(self.chord_conv(x.transpose(1, 2)).transpose(1, 2))
        n = mask.sum(1).clamp_min(1)
        mean = (x * mask).sum(1) / n
        mx = x.masked_fill(~mask, -1e4).amax(1)
        return torch.cat([mean, torch.where(mask.any(1), mx, torch.zeros_like(mx))], dim=-1)

    def forward(self, embedding: torch.Tensor, attributes: torch.Tensor, harmony: torch.Tensor,
                roots: torch.Tensor, qualities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quadrant logits (B, 4), valence/arousal logits (B, 2))."""
        e = self.input_dropout((embedding - self.embedding_mean) / self.embedding_std)
        a = ((attributes - self.attributes_mean) / self.attributes_std).clamp(-6, 6)
        h = ((harmony - self.harmony_mean) / self.harmony_std).clamp(-6, 6)
        z = self.trunk(torch.cat([e, a, h, self._chords(roots, qualities)], dim=-1))
        return self.quadrant_head(z), self.va_head(z)


def load_recognizer(path: str | os.PathLike) -> Recognizer:
    """The recognizer of one checkpoint folder (weights checked against the config's shapes).

    Args:
        path: the recognizer's checkpoint folder.

    Returns:
        The recognizer, in eval mode.
    """
    from emomusic.checkpoint import check_state_dict, load_checkpoint

    ck = load_checkpoint(Path(path), kind="recognizer")
    model = Recognizer(RecognizerConfig.from_dict(ck.config["model"]))
    check_state_dict(model, ck.state_dict, ck.path / "model.safetensors")
    model.load_state_dict(ck.state_dict)
    return model.eval()
