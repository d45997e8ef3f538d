"""The symbolic recognizer's inputs and its forward in numpy: what inference needs, without torch.

`featurise` turns pieces into the network's inputs; `forward` runs the trained network
(`recognition.model.Recognizer`, the torch module training uses) on numpy arrays of its weights, so
the selector's emotion head and `emomusic analyze` rank and read pieces without importing torch. A test
holds the two forwards equal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from emomusic.music.attributes import ATTRIBUTE_NAMES, compute_attributes
from emomusic.music.harmony import N_QUALITIES, SUMMARY_NAMES, analyse, summary_features
from emomusic.music.notes import Notes

__all__ = ["Features", "RecognizerConfig", "featurise", "forward", "load_arrays", "va_from_logits"]

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

    def tensors(self) -> dict:
        """The arrays as torch tensors (training and the torch module)."""
        import torch

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


def va_from_logits(logits):
    """Valence/arousal in [-1, 1] from the regression head's logits: tanh(logit / 2) = 2·sigmoid − 1.

    Args:
        logits: (n, 2) head outputs, numpy or torch.

    Returns:
        (n, 2) valence and arousal, of the same kind.
    """
    return (logits / 2).tanh() if hasattr(logits, "tanh") else np.tanh(np.asarray(logits) / 2)


def forward(arrays: dict[str, np.ndarray], features: Features) -> tuple[np.ndarray, np.ndarray]:
    """(quadrant logits (n, 4), valence/arousal logits (n, 2)) of the trained recognizer, in numpy.

    The same computation as `Recognizer.forward` in eval mode: standardised inputs (attributes and
    harmony clipped to ±6), the chord sequence embedded (root + quality), convolved over neighbouring
    beats (kernel 3), GELU, then mean and max pooled over the beats that hold a chord, one GELU layer
    and the two heads.

    Args:
        arrays: the recognizer's state dict as float32 arrays.
        features: the pieces' inputs (:func:`featurise`).

    Returns:
        float64 quadrant logits and valence/arousal logits.
    """
    from emomusic.numerics import gelu

    def norm(name: str, x: np.ndarray, clip: float | None) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - arrays[f"{name}_mean"]) / arrays[f"{name}_std"]
        return z if clip is None else np.clip(z, -clip, clip)

    roots, quals = features.roots, features.qualities
    mask = (roots != ROOT_PAD)[..., None]
    x = arrays["root_embed.weight"][roots] + arrays["quality_embed.weight"][quals]  # (n, beats, d)
    w, b = arrays["chord_conv.weight"], arrays["chord_conv.bias"]  # (out, in, 3), (out,)
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    conv = sum(padded[:, j:j + x.shape[1]] @ w[:, :, j].T for j in range(w.shape[2])) + b
    conv = gelu(conv.astype(np.float32))
    count = np.maximum(mask.sum(1), 1)
    mean = (conv * mask).sum(1) / count
    mx = np.where(mask, conv, np.float32(-1e4)).max(1)
    mx = np.where(mask.any(1), mx, 0.0)
    z = np.concatenate([norm("embedding", features.embedding, None), norm("attributes", features.attributes, 6),
                        norm("harmony", features.harmony, 6), mean, mx], axis=-1).astype(np.float32)
    z = gelu((z @ arrays["trunk.0.weight"].T + arrays["trunk.0.bias"]).astype(np.float32))
    quad = z @ arrays["quadrant_head.weight"].T + arrays["quadrant_head.bias"]
    va = z @ arrays["va_head.weight"].T + arrays["va_head.bias"]
    return quad.astype(np.float64), va.astype(np.float64)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], RecognizerConfig]:
    """A recognizer checkpoint's weights as numpy arrays (no torch) and its config.

    Args:
        path: the recognizer's checkpoint folder.

    Returns:
        (state dict as float32 arrays, `RecognizerConfig`).

    Raises:
        CheckpointError: missing or corrupt, or its arrays are not the network's.
    """
    from emomusic.checkpoint import CheckpointError, load_checkpoint

    ck = load_checkpoint(Path(path), kind="recognizer", arrays=True)
    cfg = RecognizerConfig.from_dict(ck.config["model"])
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in ck.state_dict.items()}
    need = {"root_embed.weight", "quality_embed.weight", "chord_conv.weight", "chord_conv.bias", "trunk.0.weight",
            "trunk.0.bias", "quadrant_head.weight", "va_head.weight", "embedding_mean", "attributes_std"}
    if not need <= set(arrays):
        missing = ", ".join(sorted(need - set(arrays)))
        raise CheckpointError(f"{ck.path}: not a recognizer's weights (missing {missing})")
    return arrays, cfg
