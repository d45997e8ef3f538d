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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emomusic.music.attributes import ATTRIBUTE_NAMES, compute_attributes
from emomusic.music.harmony import N_QUALITIES, SUMMARY_NAMES, analyse, summary_features
from emomusic.music.notes import Notes

__all__ = ["Features", "Recognizer", "RecognizerConfig", "featurise", "load_recognizer", "va_from_logits"]

ROOT_NONE, ROOT_PAD = 12, 13  # chord-root vocabulary: 0..11 normalised roots, no chord, padding
QUAL_NONE, QUAL_PAD = N_QUALITIES, N_QUALITIES + 1


@dataclass
class RecognizerConfig:
    """Sizes of the network; `embed_dim` must match the generator whose embeddings it reads."""

    embed_dim: int = 256
    n_attributes: int = len(ATTRIBUTE_NAMES)
    n_harmony: int = len(SUMMARY_NAMES)
    chord_dim: int = 16
    hidden: int = 128
    dropout: float = 0.3
    input_dropout: float = 0.2
    max_chords: int = 256
    max_windows: int = 2  # backbone windows of 512 tokens per piece, as in the cached training embeddings
    generator_sha: str = ""  # the generator whose embeddings the model was trained on
    explain: dict = field(default_factory=dict)  # attribute statistics per quadrant (see recognition.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RecognizerConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Features:
    """Model inputs of n pieces (numpy, so training can cache and index them)."""

    embedding: np.ndarray  # (n, embed_dim) float32
    attributes: np.ndarray  # (n, n_attributes) float32
    harmony: np.ndarray  # (n, n_harmony) float32
    roots: np.ndarray  # (n, max_chords) int64, ROOT_PAD after the end
    qualities: np.ndarray  # (n, max_chords) int64, QUAL_PAD after the end

    def __len__(self) -> int:
        return len(self.attributes)

    def take(self, idx: np.ndarray) -> Features:
        return Features(*(getattr(self, k)[idx] for k in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: Sequence[Features]) -> Features:
        return Features(*(np.concatenate([getattr(p, k) for p in parts]) for k in Features.__dataclass_fields__))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in self.__dataclass_fields__}


def _chord_row(roots: np.ndarray, qualities: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-length chord tokens: evenly subsampled when longer than `length`, padded when shorter."""
    if len(roots) > length:
        keep = np.linspace(0, len(roots) - 1, length).round().astype(int)
        roots, qualities = roots[keep], qualities[keep]
    r = np.full(length, ROOT_PAD, np.int64)
    q = np.full(length, QUAL_PAD, np.int64)
    r[:len(roots)] = np.where(roots >= 0, roots, ROOT_NONE)
    q[:len(qualities)] = np.where(qualities >= 0, qualities, QUAL_NONE)
    return r, q


def featurise(notes: Sequence[Notes], embedding: np.ndarray, max_chords: int = 256,
              attributes: np.ndarray | None = None) -> Features:
    """Features of pieces from their (quantised) notes and backbone embeddings.

    `attributes` may be passed when already computed (the prepared caches hold them).

    Args:
        notes: each piece's notes.
        embedding: (n, embed_dim) backbone embeddings of the same pieces.
        max_chords: beat chords kept per piece.
        attributes: (n, 57) precomputed attributes, or None to compute them.

    Returns:
        The batch's Features.
    """
    harmonies = [analyse(n) for n in notes]
    rows = [_chord_row(h.roots, h.qualities, max_chords) for h in harmonies]
    atts = attributes if attributes is not None else np.stack([compute_attributes(n) for n in notes])
    return Features(
        np.asarray(embedding, np.float32), np.asarray(atts, np.float32),
        np.stack([summary_features(h) for h in harmonies]).astype(np.float32),
        np.stack([r for r, _ in rows]), np.stack([q for _, q in rows]),
    )


def va_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Valence/arousal in [-1, 1] from the regression head's logits.

    Args:
        logits: (n, 2) head outputs.

    Returns:
        (n, 2) valence and arousal.
    """
    return torch.tanh(logits / 2)


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
