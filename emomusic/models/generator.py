"""The music generator: a decoder-only x-transformers network over `MusicTokenizer` ids.

Conditioning is a token prefix (BOS, genre, binned control attributes — or one emotion token for
the EMOPIA-style baseline), so the same network serves both methods and the KV cache covers the
prefix like any other token. Rotary positions let the cache run past the training length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from x_transformers import Decoder, TransformerWrapper

from emomusic.music.tokenizer import MusicTokenizer


@dataclass
class GeneratorConfig:
    """Everything needed to rebuild the network (saved in the checkpoint)."""

    vocab_size: int
    dim: int = 256
    depth: int = 6
    heads: int = 4
    max_seq_len: int = 1024
    ff_mult: int = 4
    # Dropout halves CPU training speed (measured: 3,100 vs 1,460 tokens/s at 4x256) and the runs
    # here see each token about once, so it is off by default.
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        return cls(**d)


class Generator(nn.Module):
    """Token logits for next-token prediction; sampling lives in `models.sampling`."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = TransformerWrapper(
            num_tokens=config.vocab_size,
            max_seq_len=config.max_seq_len,
            use_abs_pos_emb=False,
            attn_layers=Decoder(
                dim=config.dim, depth=config.depth, heads=config.heads, rotary_pos_emb=True, attn_flash=True,
                ff_mult=config.ff_mult, attn_dropout=config.dropout, ff_dropout=config.dropout,
            ),
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq) ids → (batch, seq, vocab) logits."""
        return self.net(ids)

    def step(self, ids: torch.Tensor, cache=None):
        """Logits of the last position and the updated KV cache (x-transformers' intermediates).

        `ids` is the whole sequence so far; with a cache only its new tail is computed.
        """
        logits, cache = self.net(ids, return_intermediates=True, cache=cache)
        return logits[:, -1], cache

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def load_generator(path) -> tuple[Generator, MusicTokenizer]:
    """Generator and its tokenizer from one checkpoint folder (safetensors + JSON)."""
    from emomusic.checkpoint import check_state_dict, load_checkpoint

    ck = load_checkpoint(path, kind="generator")
    model = Generator(GeneratorConfig.from_dict(ck.config["model"]))
    check_state_dict(model, ck.state_dict, ck.path / "model.safetensors")
    model.load_state_dict(ck.state_dict)
    return model.eval(), MusicTokenizer.from_dict(ck.tokenizer)
