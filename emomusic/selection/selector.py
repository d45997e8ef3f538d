"""The selector (XMusic's XComposer): one shared trunk, three heads — quality, emotion, genre.

Input per piece: the generator-backbone embedding (`generation.embeddings.piece_embeddings`) and the
objective metrics of `music.metrics` (pitch-class entropy, scale/groove consistency, …). It never
sees the 57 musical attributes: those are the independent judge's input, and a selector that
shared them would pick candidates the judge agrees with by construction.

    >>> sel = load_selector("checkpoints/selector", generator, tokenizer)
    >>> rows = sel.score(candidates)                     # per-head scores + combined, one dict each
    >>> best = max(zip(rows, candidates), key=lambda rc: rc[0]["score"])[1]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from emomusic.music.metrics import METRICS, all_metrics
from emomusic.music.notes import Notes
from emomusic.vocab.emotions import GENRES, QUADRANTS

# "control" is not a network head: it is minus the distance between the attribute bins a candidate
# measures and the ones it was asked for (EmoGen's controls), which the pipeline passes in.
HEADS = ("quality", "emotion", "genre", "control")
DEFAULT_WEIGHTS = {"quality": 0.5, "emotion": 1.0, "genre": 0.0, "control": 0.0}
FAR = 1e3  # the control distance scored for a candidate with none (no notes): finite, never the pick
HIGH_VALENCE = {"Q1", "Q4"}
HIGH_AROUSAL = {"Q1", "Q2"}


@dataclass
class SelectorConfig:
    """Everything needed to rebuild the network (saved in the checkpoint's config.json)."""

    embed_dim: int
    n_metrics: int = len(METRICS)
    hidden: int = 128
    dropout: float = 0.3
    window: int = 512  # backbone embedding: windows of this many tokens …
    max_windows: int = 2  # … at most this many per piece (training and scoring use the same)
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SelectorConfig:
        return cls(**d)


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


def metric_features(notes: Sequence[Notes]) -> np.ndarray:
    """(n, n_metrics) objective metrics; an empty piece gets zeros (and is ranked last anyway).

    Args:
        notes: one Notes per piece.

    Returns:
        float32 (n, n_metrics).
    """
    rows = [list(all_metrics(n).values()) if len(n) else [0.0] * len(METRICS) for n in notes]
    return np.asarray(rows, dtype=np.float32).reshape(len(notes), len(METRICS))


def piece_features(generator, tokenizer, tokens: Sequence[np.ndarray], notes: Sequence[Notes],
                   window: int = 512, max_windows: int = 2) -> np.ndarray:
    """(n, embed_dim + n_metrics): backbone embedding beside the objective metrics.

    Args:
        generator: the generator whose backbone embeds the pieces.
        tokenizer: its tokenizer.
        tokens: each piece's token ids.
        notes: each piece's notes (for the objective metrics).
        window: tokens per embedding window.
        max_windows: windows averaged per piece.

    Returns:
        float32 (n, embed_dim + n_metrics).
    """
    from emomusic.generation.embeddings import piece_embeddings

    emb = piece_embeddings(generator, tokenizer, [np.asarray(t, dtype=np.int64) for t in tokens],
                           length=window, max_windows=max_windows)
    return np.concatenate([emb, metric_features(notes)], axis=1)


def _log_emotion(out: dict[str, torch.Tensor], quadrant: str) -> torch.Tensor:
    """log p(asked quadrant): half from the 4-way head, half from the valence and arousal heads."""
    q = QUADRANTS.index(quadrant)
    sign = torch.tensor([1.0 if quadrant in HIGH_VALENCE else -1.0, 1.0 if quadrant in HIGH_AROUSAL else -1.0])
    four = torch.log_softmax(out["quadrant"], -1)[:, q]
    va = nn.functional.logsigmoid(out["va"] * sign).sum(-1)
    return 0.5 * four + 0.5 * va


class Selector:
    """Scores candidates with the network; `weights` mixes the heads into one ranking score."""

    def __init__(self, net: SelectorNet, generator, tokenizer, weights: dict[str, float] | None = None) -> None:
        self.net = net.eval()
        self.generator = generator
        self.tokenizer = tokenizer
        self.weights = dict(weights or net.config.weights)

    def features(self, candidates) -> np.ndarray:
        cfg = self.net.config
        return piece_features(self.generator, self.tokenizer, [c.tokens for c in candidates],
                              [c.notes for c in candidates], cfg.window, cfg.max_windows)

    @torch.inference_mode()
    def score_features(self, x: np.ndarray, quadrants: Sequence[str | None], genres: Sequence[str | None],
                       weights: dict[str, float] | None = None,
                       control_distance: Sequence[float] | None = None) -> list[dict]:
        """Per-head scores and the combined score for rows of features (the training code reuses it).

        Args:
            x: (n, features) rows from :func:`piece_features`.
            quadrants: the asked quadrant per row (None: the emotion head is ignored for that row).
            genres: the asked genre per row (None: the genre head is ignored for that row).
            weights: head weights (default: the checkpoint's tuned weights).
            control_distance: each row's distance of measured from asked attribute bins, if known.

        Returns:
            One dict per row with every head's output and the combined ``score``.
        """
        w = self._weights(weights)
        out = self.net(torch.as_tensor(x, dtype=torch.float32))
        p_real = torch.sigmoid(out["quality"])
        p4 = torch.softmax(out["quadrant"], -1)
        pva = torch.sigmoid(out["va"])
        pg = torch.softmax(out["genre"], -1)
        rows = []
        for i, (q, g) in enumerate(zip(quadrants, genres, strict=True)):
            row = {"quality": float(p_real[i]), "valence": float(2 * pva[i, 0] - 1),
                   "arousal": float(2 * pva[i, 1] - 1), "quadrant": QUADRANTS[int(p4[i].argmax())],
                   "genre": GENRES[int(pg[i].argmax())]}
            total = w["quality"] * float(nn.functional.logsigmoid(out["quality"][i]))
            if q is not None:
                log_e = float(_log_emotion({k: v[i:i + 1] for k, v in out.items()}, q)[0])
                row["emotion"] = float(np.exp(log_e))
                total += w["emotion"] * log_e
            if g is not None and g in GENRES:
                row["genre_match"] = float(pg[i, GENRES.index(g)])
                total += w["genre"] * float(torch.log(pg[i, GENRES.index(g)] + 1e-9))
            if control_distance is not None:
                d = min(float(control_distance[i]), FAR)
                row["control_fit"] = -d
                total -= w.get("control", 0.0) * d
            row["score"] = total
            rows.append(row)
        return rows

    def score(self, candidates, quadrant: str | None = None, genre: str | None = None,
              weights: dict[str, float] | None = None,
              control_distance: Sequence[float] | None = None) -> list[dict]:
        """One dict per candidate: quality, emotion (p of the asked quadrant), genre_match, … and `score`.

        The asked quadrant defaults to each candidate's own (`candidate.attributes.quadrant`); an empty
        candidate scores -inf so it is never kept.

        Args:
            candidates: the pipeline's candidates (notes, tokens, attributes).
            quadrant: the asked quadrant for all candidates (default: each candidate's own).
            genre: the asked genre (None: the genre head is not used).
            weights: head weights (default: the checkpoint's tuned weights).
            control_distance: each candidate's distance of measured from asked attribute bins, if known.

        Returns:
            One dict per candidate, in input order.
        """
        if not candidates:
            return []
        quads = [quadrant or (c.attributes.quadrant if c.attributes is not None else None) for c in candidates]
        rows = self.score_features(self.features(candidates), quads, [genre] * len(candidates), weights,
                                   control_distance)
        for row, c in zip(rows, candidates, strict=True):
            if len(c.notes) == 0:
                row["score"] = float("-inf")
        return rows

    def _weights(self, weights: dict[str, float] | None) -> dict[str, float]:
        from emomusic.errors import InvalidInputError

        w = {**self.weights, **(weights or {})}
        unknown = set(w) - set(HEADS)
        if unknown:
            raise InvalidInputError(f"unknown selector head(s) {', '.join(sorted(unknown))}; use {', '.join(HEADS)}")
        if any(not np.isfinite(v) or v < 0 for v in w.values()):
            raise InvalidInputError(f"selector weights must be finite and non-negative, got {w}")
        return w


def load_selector(path: str | os.PathLike, generator, tokenizer) -> Selector:
    """The selector network from a checkpoint folder, wired to the generator whose embeddings it reads.

    Args:
        path: the selector's checkpoint folder.
        generator: the shipped generator (its backbone gives the embeddings).
        tokenizer: the generator's tokenizer.

    Returns:
        A ready :class:`Selector`.
    """
    from emomusic.checkpoint import CheckpointError, load_checkpoint

    ck = load_checkpoint(path, kind="selector")
    cfg = SelectorConfig.from_dict(ck.config["model"])
    if cfg.embed_dim != generator.config.dim:
        raise CheckpointError(f"{ck.path}: selector expects {cfg.embed_dim}-dim embeddings, the generator gives "
                              f"{generator.config.dim}; retrain it with `emomusic train selector`")
    net = ck.load_into(SelectorNet(cfg))
    return Selector(net, generator, tokenizer)


def debug_selector(generator, tokenizer, seed: int = 0) -> Selector:
    """A tiny random selector for tests and the "debug" pipeline.

    Args:
        generator: the (debug) generator whose embeddings it reads.
        tokenizer: its tokenizer.
        seed: torch seed of the random weights.

    Returns:
        A :class:`Selector` with untrained heads.
    """
    torch.manual_seed(seed)
    net = SelectorNet(SelectorConfig(embed_dim=generator.config.dim, hidden=16))
    return Selector(net, generator, tokenizer)
