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

from emomusic.music.metrics import METRICS, all_metrics
from emomusic.music.notes import Notes
from emomusic.vocab.emotions import GENRES, QUADRANT_SIGNS, QUADRANTS

# "control" is not a network head: it is minus the distance between the attribute bins a candidate
# measures and the ones it was asked for (EmoGen's controls), which the pipeline passes in.
HEADS = ("quality", "emotion", "genre", "control")
DEFAULT_WEIGHTS = {"quality": 0.5, "emotion": 1.0, "genre": 0.0, "control": 0.0}
FAR = 1e3  # the control distance scored for a candidate with none (no notes): finite, never the pick


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
                   window: int = 512, max_windows: int = 2, embedding: np.ndarray | None = None) -> np.ndarray:
    """(n, embed_dim + n_metrics): backbone embedding beside the objective metrics.

    Args:
        generator: the generator whose backbone embeds the pieces.
        tokenizer: its tokenizer.
        tokens: each piece's token ids.
        notes: each piece's notes (for the objective metrics).
        window: tokens per embedding window.
        max_windows: windows averaged per piece.
        embedding: the (n, embed_dim) embeddings when the caller has them (then no backbone pass).

    Returns:
        float32 (n, embed_dim + n_metrics).
    """
    if embedding is None:
        from emomusic.generation.embeddings import piece_embeddings

        embedding = piece_embeddings(generator, tokenizer, [np.asarray(t, dtype=np.int64) for t in tokens],
                                     length=window, max_windows=max_windows)
    return np.concatenate([np.asarray(embedding, dtype=np.float32), metric_features(notes)], axis=1)


def _log_emotion(quadrant_logits: np.ndarray, va_logits: np.ndarray, quadrant: str) -> np.ndarray:
    """log p(asked quadrant) by the network's own emotion heads: half the 4-way head, half valence/arousal."""
    q = QUADRANTS.index(quadrant)
    z = quadrant_logits - quadrant_logits.max(-1, keepdims=True)
    four = z[:, q] - np.log(np.exp(z).sum(-1))
    va = -np.logaddexp(0.0, -va_logits * np.asarray(QUADRANT_SIGNS[quadrant], dtype=np.float64)).sum(-1)
    return 0.5 * four + 0.5 * va


def net_forward(arrays: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """The selector network's forward in numpy (eval mode: dropout off), from its state dict's arrays.

    Standardise, two Linear + GELU layers, then the heads: quality (1 logit), quadrant (4 logits),
    va (2 logits: high valence, high arousal) and genre (5 logits). `selection.network.SelectorNet`
    is the same network in torch, for training; a test holds the two equal.

    Args:
        arrays: the network's state dict as float arrays.
        x: (n, features) rows from :func:`piece_features`.

    Returns:
        head -> float64 logits: quality (n,), quadrant (n, 4), va (n, 2), genre (n, 5).
    """
    from emomusic.numerics import gelu

    def linear(name: str, h: np.ndarray) -> np.ndarray:
        return h @ arrays[f"{name}.weight"].T + arrays[f"{name}.bias"]

    h = ((np.asarray(x, dtype=np.float32) - arrays["mean"]) / arrays["std"]).astype(np.float32)
    h = gelu(linear("trunk.1", h).astype(np.float32))
    h = gelu(linear("trunk.4", h).astype(np.float32))
    out = {name: linear(name, h).astype(np.float64) for name in ("quality", "quadrant", "va", "genre")}
    out["quality"] = out["quality"][:, 0]
    return out


def combine(heads: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The ranking score: the weighted sum of the heads a candidate has (a missing head adds nothing).

    Every head is a log-probability or a log-odds (control: minus a distance), so the sum is a
    weighted log-likelihood of "real, in the asked mood and genre, with the asked attributes".

    Args:
        heads: head name -> (n,) values (see :meth:`Selector.heads`).
        weights: head name -> weight.

    Returns:
        float64 (n,) scores, higher is better.
    """
    n = len(next(iter(heads.values()))) if heads else 0
    total = np.zeros(n)
    for name, values in heads.items():
        total += weights.get(name, 0.0) * np.asarray(values, dtype=np.float64)
    return total


def explain(heads: dict[str, np.ndarray], weights: dict[str, float], order: Sequence[int]) -> dict:
    """Why the first of `order` won: each weighted head's lead over the runner-up, largest first.

    Args:
        heads: head name -> (n,) values.
        weights: the ranking weights used.
        order: candidate indices, best first.

    Returns:
        {"winner": index, "runner_up": index or None (indices in generation order), "margin": score
        lead, "leads": {head: weighted lead}, "text": one sentence}.
    """
    win = int(order[0])
    if len(order) < 2:
        return {"winner": win, "runner_up": None, "margin": None, "leads": {}, "text": "the only candidate"}
    second = int(order[1])
    leads = {h: float(weights.get(h, 0.0) * (v[win] - v[second])) for h, v in heads.items() if weights.get(h, 0.0)}
    leads = dict(sorted(leads.items(), key=lambda kv: -abs(kv[1])))
    won = [f"{h} (+{d:.2f})" for h, d in leads.items() if d > 1e-9]
    lost = [f"{h} ({d:.2f})" for h, d in leads.items() if d < -1e-9]
    text = "won over the runner-up on " + (", ".join(won) or "nothing")
    if lost:
        text += " despite " + ", ".join(lost)
    return {"winner": win, "runner_up": second, "margin": float(sum(leads.values())), "leads": leads, "text": text}


class Selector:
    """Ranks candidates by weighted heads: quality, emotion, genre and the attribute fit (control).

    Each head has a default source and a better one when shipped:
    quality is the note-statistics quality head (`selection.quality`, real against generated and
    degraded pieces) when given, else the network's quality output; emotion is the recognizer's
    log-probability of the asked quadrant when the caller passes it (the pipeline does: the recognizer
    lives beside the selector, not under it), else the network's emotion heads; genre is the network's;
    control is minus the distance of measured from asked attribute bins (EmoGen's controls).
    """

    def __init__(self, arrays: dict[str, np.ndarray], config: SelectorConfig, generator, tokenizer,
                 weights: dict[str, float] | None = None, quality=None) -> None:
        """arrays: the network's state dict as numpy arrays; config: its `SelectorConfig`; generator: the
        backbone the embeddings come from (its `DecoderWeights` for the numpy forward, or the network);
        quality: a `selection.quality.QualityHead`, or None to rank by the network's quality output."""
        self.arrays = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        self.config = config
        self.generator = generator
        self.tokenizer = tokenizer
        self.weights = dict(weights or config.weights)
        self.quality = quality

    @classmethod
    def from_net(cls, net, generator, tokenizer, weights: dict[str, float] | None = None, quality=None) -> Selector:
        """A selector from a torch `selection.network.SelectorNet` (training, tests)."""
        arrays = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
        return cls(arrays, net.config, generator, tokenizer, weights, quality)

    def embeddings(self, candidates) -> np.ndarray:
        """(n, dim) backbone embeddings of the candidates' tokens (the recognizer reads the same windows)."""
        from emomusic.generation.embeddings import piece_embeddings

        cfg = self.config
        tokens = [np.asarray(c.tokens, dtype=np.int64) for c in candidates]
        return piece_embeddings(self.generator, self.tokenizer, tokens, length=cfg.window, max_windows=cfg.max_windows)

    def features(self, candidates, embedding: np.ndarray | None = None) -> np.ndarray:
        """The network's input rows: backbone embedding beside the objective metrics."""
        cfg = self.config
        return piece_features(self.generator, self.tokenizer, [c.tokens for c in candidates],
                              [c.notes for c in candidates], cfg.window, cfg.max_windows, embedding)

    def net_heads(self, x: np.ndarray, quadrants: Sequence[str | None], genre: str | None) -> dict[str, np.ndarray]:
        """The network's heads for rows of features: quality log-odds, log p(asked quadrant), log p(genre).

        Args:
            x: (n, features) rows from :func:`piece_features`.
            quadrants: the asked quadrant per row (None: no emotion value for that row, nan).
            genre: the asked genre (None or unknown: no genre head).

        Returns:
            head name -> (n,) float64.
        """
        out = net_forward(self.arrays, x)
        heads = {"quality": out["quality"]}
        emo = np.full(len(x), np.nan)
        for q in {q for q in quadrants if q is not None}:
            rows = np.array([r for r, qq in enumerate(quadrants) if qq == q])
            emo[rows] = _log_emotion(out["quadrant"][rows], out["va"][rows], q)
        heads["emotion"] = emo
        if genre is not None and genre in GENRES:
            z = out["genre"] - out["genre"].max(-1, keepdims=True)
            heads["genre"] = z[:, GENRES.index(genre)] - np.log(np.exp(z).sum(-1))
        return heads

    def heads(self, candidates, quadrant: str | None = None, genre: str | None = None,
              control_distance: Sequence[float] | None = None, emotion: np.ndarray | None = None,
              embedding: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every head's value per candidate (higher is better), from the best source available.

        Args:
            candidates: the pipeline's candidates (notes, tokens, attributes).
            quadrant: the asked quadrant for all (default: each candidate's own).
            genre: the asked genre (None: no genre head).
            control_distance: each candidate's distance of measured from asked attribute bins, if known.
            emotion: (n,) log p(asked quadrant) by the recognizer, if the caller has it.
            embedding: (n, dim) backbone embeddings, if the caller computed them already.

        Returns:
            head name -> (n,) float64 values: quality (log-odds of real), emotion (log p), genre
            (log p), control (minus the distance, at least -FAR).
        """
        quads = [quadrant or (c.attributes.quadrant if c.attributes is not None else None) for c in candidates]
        net = self.net_heads(self.features(candidates, embedding), quads, genre)
        heads: dict[str, np.ndarray] = {}
        if self.quality is not None:
            from emomusic.selection.quality import quality_features

            heads["quality"] = self.quality.logits(np.stack([quality_features(c.notes) for c in candidates]))
        else:
            heads["quality"] = net["quality"]
        heads["emotion"] = net["emotion"] if emotion is None else np.asarray(emotion, dtype=np.float64)
        if "genre" in net:
            heads["genre"] = net["genre"]
        if control_distance is not None:
            heads["control"] = -np.minimum(np.asarray(control_distance, dtype=np.float64), FAR)
        return heads

    def score(self, candidates, quadrant: str | None = None, genre: str | None = None,
              weights: dict[str, float] | None = None, control_distance: Sequence[float] | None = None,
              emotion: np.ndarray | None = None, embedding: np.ndarray | None = None) -> list[dict]:
        """One dict per candidate: each head's value and the combined `score` (see :meth:`rows`).

        Arguments as :meth:`heads`, plus `weights` (overrides of the checkpoint's tuned weights).
        """
        if not candidates:
            return []
        w = self.weights_with(weights)
        heads = self.heads(candidates, quadrant, genre, control_distance, emotion, embedding)
        return self.rows(heads, w, [len(c.notes) == 0 for c in candidates])

    @staticmethod
    def rows(heads: dict[str, np.ndarray], weights: dict[str, float], empty: Sequence[bool]) -> list[dict]:
        """Per-candidate scores from head values: an empty candidate scores -inf so it is never kept.

        Args:
            heads: from :meth:`heads`.
            weights: checked weights.
            empty: whether each candidate has no notes.

        Returns:
            One dict per candidate: `score`, `quality` (P(real)), `emotion` (p of the asked quadrant),
            `genre_match` (p of the asked genre) and `control_fit` (minus the distance) where known.
        """
        total = combine(heads, weights)
        out = []
        for i, none in enumerate(empty):
            row = {"score": float("-inf") if none else float(total[i]),
                   "quality": float(1 / (1 + np.exp(-np.clip(heads["quality"][i], -50, 50))))}
            if np.isfinite(heads["emotion"][i]):
                row["emotion"] = float(np.exp(heads["emotion"][i]))
            if "genre" in heads:
                row["genre_match"] = float(np.exp(heads["genre"][i]))
            if "control" in heads:
                row["control_fit"] = float(heads["control"][i])
            out.append(row)
        return out

    def weights_with(self, overrides: dict[str, float] | None) -> dict[str, float]:
        """The checkpoint's tuned weights with `overrides` (e.g. `--select-weights`), checked."""
        return check_weights({**self.weights, **(overrides or {})})


def check_weights(w: dict[str, float]) -> dict[str, float]:
    """The weights if every name is a head and every value finite and non-negative.

    Raises:
        InvalidInputError: an unknown head or a bad value (the one line `--select-weights` shows).
    """
    from emomusic.errors import InvalidInputError

    unknown = set(w) - set(HEADS)
    if unknown:
        raise InvalidInputError(f"unknown selector head(s) {', '.join(sorted(unknown))}; use {', '.join(HEADS)}")
    if any(not np.isfinite(v) or v < 0 for v in w.values()):
        raise InvalidInputError(f"selector weights must be finite and non-negative, got {w}")
    return w


def load_selector(path: str | os.PathLike, generator, tokenizer, quality: str | os.PathLike | None = None) -> Selector:
    """The selector network from a checkpoint folder, wired to the generator whose embeddings it reads.

    Args:
        path: the selector's checkpoint folder.
        generator: the shipped generator (its backbone gives the embeddings).
        tokenizer: the generator's tokenizer.
        quality: the quality head's checkpoint folder (`selection.quality`), or None to rank quality
            by the network's own quality output.

    Returns:
        A ready :class:`Selector`.
    """
    from emomusic.checkpoint import CheckpointError, load_checkpoint

    ck = load_checkpoint(path, kind="selector", arrays=True)
    cfg = SelectorConfig.from_dict(ck.config["model"])
    if cfg.embed_dim != generator.config.dim:
        raise CheckpointError(f"{ck.path}: selector expects {cfg.embed_dim}-dim embeddings, the generator gives "
                              f"{generator.config.dim}; retrain it with `emomusic train selector`")
    head = None
    if quality is not None:
        from emomusic.selection.quality import load_quality

        head = load_quality(quality)
    return Selector(ck.state_dict, cfg, generator, tokenizer, quality=head)


def debug_selector(generator, tokenizer, seed: int = 0) -> Selector:
    """A tiny random selector for tests and the "debug" pipeline.

    Args:
        generator: the (debug) generator whose embeddings it reads.
        tokenizer: its tokenizer.
        seed: torch seed of the random weights.

    Returns:
        A :class:`Selector` with untrained heads.
    """
    import torch

    from emomusic.selection.network import SelectorNet

    torch.manual_seed(seed)
    net = SelectorNet(SelectorConfig(embed_dim=generator.config.dim, hidden=16))
    return Selector.from_net(net, generator, tokenizer)
