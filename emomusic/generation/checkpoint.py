"""A generator as saved: its config and tensors, and the tokenizer, without torch.

Sampling reads the tensors straight into the fast engine (`generation.fast`), so `emomusic generate`
never builds the x-transformers network and, with the weights loaded as numpy arrays, never imports
torch (a large share of a cold start). The network itself is `generation.network.Generator`, built
from a `GeneratorCheckpoint` on demand.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emomusic.errors import InvalidInputError
from emomusic.music.tokenizer import MusicTokenizer
from emomusic.settings import checkpoints_root

if TYPE_CHECKING:
    from emomusic.generation.network import Generator


@dataclass
class GeneratorConfig:
    """Everything needed to rebuild the network (saved in the checkpoint)."""

    vocab_size: int
    dim: int = 256
    depth: int = 6
    heads: int = 4
    dim_head: int = 64  # channels per attention head (x-transformers' `attn_dim_head`; its default)
    max_seq_len: int = 1024
    ff_mult: int = 4
    # Dropout about halves CPU training speed (docs/BENCHMARKS.md) and the runs here see each token
    # about once, so it is off by default.
    dropout: float = 0.0
    conditioning: str = "prefix"  # "prefix" | "sum" (EmoGen: embedded attributes added to every token)
    cond_token_ids: tuple[int, ...] = ()  # ids that carry conditions (sum mode only)
    bos_id: int = 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cond_token_ids"] = list(self.cond_token_ids)
        if self.conditioning == "prefix":  # keep prefix checkpoints' configs as they were
            for k in ("conditioning", "cond_token_ids", "bos_id"):
                d.pop(k)
        if self.dim_head == 64:  # written only when it differs: configs saved before the key existed stay as they were
            d.pop("dim_head")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        d = dict(d)
        d["cond_token_ids"] = tuple(d.get("cond_token_ids", ()))
        if d.get("conditioning", "prefix") not in ("prefix", "sum"):
            raise ValueError(f"unknown conditioning {d['conditioning']!r}: use 'prefix' or 'sum'")
        return cls(**d)


class GeneratorCheckpoint:
    """A loaded generator checkpoint: config and tensors now, the x-transformers network on demand.

    Sampling reads the tensors through `generation.fast.DecoderWeights`; embeddings, the reference
    engine and training need the network (`module()`), which costs the x-transformers import.
    """

    def __init__(self, config: GeneratorConfig, state_dict: dict[str, Any], source: str = "") -> None:
        """state_dict: torch tensors or numpy arrays (x-transformers parameter names)."""
        self.config = config
        self.state_dict = state_dict
        self.source = source
        self._module: Generator | None = None

    def module(self) -> Generator:
        """The network with these weights (built once)."""
        if self._module is None:
            import torch

            from emomusic.checkpoint import check_state_dict
            from emomusic.generation.network import Generator

            model = Generator(self.config)
            check_state_dict(model, self.state_dict, self.source)
            model.load_state_dict({k: torch.as_tensor(v) for k, v in self.state_dict.items()})
            self._module = model.eval()
        return self._module


def load_generator_checkpoint(path) -> tuple[GeneratorCheckpoint, MusicTokenizer]:
    """Config, tensors and tokenizer of a generator checkpoint folder, without building the network."""
    from emomusic.checkpoint import load_checkpoint

    ck = load_checkpoint(path, kind="generator", arrays=True)
    config = GeneratorConfig.from_dict(ck.config["model"])
    return (GeneratorCheckpoint(config, ck.state_dict, str(ck.path / "model.safetensors")),
            MusicTokenizer.from_dict(ck.tokenizer))


def backbone_dir(root: str | os.PathLike | None = None) -> Path:
    """The generator folder whose network the recognizer and selector read embeddings from.

    They were trained on one generator's embeddings; when the sampling generator is later fine-tuned
    (e.g. on the beat-tracked data), the network they were trained on ships beside it as `backbone/`,
    so that neither has to be retrained for a sampler change. Without that folder it is the generator.

    Args:
        root: a checkpoints folder (default: `checkpoints_root()`).

    Returns:
        `<root>/backbone` when it holds a checkpoint, else `<root>/generator`.
    """
    root = checkpoints_root(root)
    return root / "backbone" if (root / "backbone" / "config.json").is_file() else root / "generator"


def generator_sha(generator_dir: str | os.PathLike | None = None) -> str:
    """Short SHA-256 of a generator's weights, read from its checkpoint's config.json.

    Args:
        generator_dir: a generator checkpoint folder (default: the shipped backbone, `backbone_dir()`).

    Returns:
        The first 12 hex digits (what recognizer and selector checkpoints record to refuse a mismatch).
    """
    path = Path(generator_dir or backbone_dir()) / "config.json"
    try:
        return json.loads(path.read_text())["files"]["model.safetensors"][:12]
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a generator checkpoint; train or restore checkpoints/generator") from exc


def load_float_generator(generator_dir: str | os.PathLike | None = None):
    """The generator network in float32 (its weights are stored in float16) and its tokenizer.

    Args:
        generator_dir: a generator checkpoint folder (default: the shipped backbone, `backbone_dir()`).

    Returns:
        (Generator in eval mode, MusicTokenizer); builds the torch network, for embeddings.
    """
    ck, tokenizer = load_generator_checkpoint(Path(generator_dir or backbone_dir()))
    return ck.module().float().eval(), tokenizer
