"""Engines: what computes the next-token logits. The sampler's loop is engine step -> processors -> draw.

The network is defined once (`network.Generator`, x-transformers). Two engines run it:

| engine | module | runs | use |
|---|---|---|---|
| fast | `generation.fast` (+ `kernels`) | what `fast.supports(config)` accepts | sampling, without torch |
| reference | `generation.reference` | any configuration | fallback, baseline, test oracle |

`select_engine` picks one: the fast engine where it supports the configuration, otherwise the reference
engine with a one-line notice on stderr. A new architecture option goes into `GeneratorConfig` and
`Generator`; the reference engine runs it at once, and the fast engine either learns it (its parameter
map in `fast.DecoderWeights`, its maths in `FastEngine._prefill` and `kernels.decode_step`) or says it
does not in `fast.unsupported`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

import numpy as np

from emomusic.generation import fast
from emomusic.generation.checkpoint import GeneratorCheckpoint

if TYPE_CHECKING:
    from emomusic.generation.network import Generator

__all__ = ["ENGINES", "Engine", "resolve_engine", "select_engine"]

ENGINES = ("fast", "reference")


class Engine(Protocol):
    """Incremental decoding of a batch: `prefill(ids)` once, then `step(tokens)` per token."""

    fork_safe: bool  # whether a forked sampling worker may run it (no torch)

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        """Run the prefix (batch, n) from an empty cache; returns the last position's logits (batch, vocab)."""

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token per kept row (rows,); returns the next logits of those rows (rows, vocab)."""

    def keep(self, rows: np.ndarray) -> None:
        """Compute only these rows (ascending indices among those kept so far) from the next step on."""


def resolve_engine(model: Generator | GeneratorCheckpoint | fast.DecoderWeights, prefer: str = "fast") -> str:
    """The engine that will decode `model` when `prefer` is asked for: "fast" or "reference".

    Asked for "fast" with a configuration the fast engine does not support, this prints the one-line
    notice (stderr) and answers "reference".
    """
    if prefer not in ENGINES:
        raise ValueError(f"unknown engine {prefer!r}: use one of {', '.join(ENGINES)}")
    if isinstance(model, fast.DecoderWeights):  # built only for a supported configuration
        if prefer == "reference":
            raise ValueError("the reference engine needs the network (a Generator or its checkpoint), "
                             "not DecoderWeights")
        return "fast"
    why = fast.unsupported(model.config)
    if prefer == "fast" and why is not None:
        print(f"emomusic: note: the fast engine does not support {why}; using the reference engine", file=sys.stderr)
        return "reference"
    return prefer


def select_engine(model: Generator | GeneratorCheckpoint | fast.DecoderWeights, batch: int, max_len: int,
                  prefer: str = "fast") -> Engine:
    """The engine that decodes `model` (`resolve_engine` says which).

    Args:
        model: the network, a loaded checkpoint, or the fast engine's weights (`fast.DecoderWeights`).
        batch: rows decoded together.
        max_len: prefix plus generated tokens, at most.
        prefer: "fast", or "reference" (x-transformers' own forward; needs the network or a checkpoint).

    Returns:
        A fast engine where it supports the configuration and `prefer` is "fast"; else the reference engine.
    """
    if resolve_engine(model, prefer) == "fast":
        if not isinstance(model, fast.DecoderWeights):
            model = (fast.DecoderWeights.from_checkpoint(model) if isinstance(model, GeneratorCheckpoint)
                     else fast.DecoderWeights.from_module(model))
        return fast.FastEngine(model, batch, max_len)
    from emomusic.generation.reference import ReferenceEngine

    return ReferenceEngine(model.module() if isinstance(model, GeneratorCheckpoint) else model)
