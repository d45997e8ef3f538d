"""The music generator: a decoder-only x-transformers network over `MusicTokenizer` ids.

Conditioning is a token prefix (BOS, genre, binned control attributes — or one emotion token for
the EMOPIA-style baseline), so the same network serves both methods and the KV cache covers the
prefix like any other token. Rotary positions let the cache run past the training length.

`conditioning="sum"` is EmoGen's alternative, kept for the measured comparison
(`benchmarks/conditioning.py`): the condition tokens are embedded by their own table, summed,
projected and added to every token embedding, and their places in the sequence hold BOS, so the
condition reaches the network only through the sum. Same sequences, same loss mask, same sampler.
"""

from __future__ import annotations

import torch
from torch import nn

from emomusic.generation.checkpoint import GeneratorCheckpoint, GeneratorConfig, load_generator_checkpoint
from emomusic.music.tokenizer import MusicTokenizer

__all__ = ["Generator", "GeneratorCheckpoint", "GeneratorConfig", "load_generator", "load_generator_checkpoint",
           "sum_conditions"]


class Generator(nn.Module):
    """Token logits for next-token prediction; sampling lives in `generation.sampling`."""

    def __init__(self, config: GeneratorConfig) -> None:
        # imported here: x-transformers pulls in torch._dynamo (slow to import), and sampling from a
        # checkpoint never builds this module (the fast engine reads the tensors directly)
        from x_transformers import Decoder, TransformerWrapper

        super().__init__()
        self.config = config
        self.net = TransformerWrapper(
            num_tokens=config.vocab_size,
            max_seq_len=config.max_seq_len,
            use_abs_pos_emb=False,
            attn_layers=Decoder(
                dim=config.dim, depth=config.depth, heads=config.heads, attn_dim_head=config.dim_head,
                rotary_pos_emb=True, attn_flash=True,
                ff_mult=config.ff_mult, attn_dropout=config.dropout, ff_dropout=config.dropout,
            ),
        )
        if config.conditioning == "sum":
            if not config.cond_token_ids:
                raise ValueError("conditioning='sum' needs cond_token_ids")
            is_cond = torch.zeros(config.vocab_size, dtype=torch.bool)
            is_cond[list(config.cond_token_ids)] = True
            self.register_buffer("is_cond", is_cond, persistent=False)
            self.cond_emb = nn.Embedding(config.vocab_size, config.dim)
            self.cond_proj = nn.Linear(config.dim, config.dim)
            # token-embedding scale (x-transformers: Kaiming normal) and a zero projection, so training
            # starts from the unconditional model instead of a condition vector ~20x the tokens' size
            nn.init.kaiming_normal_(self.cond_emb.weight)
            nn.init.zeros_(self.cond_proj.weight)
            nn.init.zeros_(self.cond_proj.bias)

    def split_conditions(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sum mode: (ids with condition tokens replaced by BOS, (batch, dim) condition vector).

        Prefix mode returns the ids unchanged and no vector.
        """
        if self.config.conditioning != "sum":
            return ids, None
        return sum_conditions(ids, self.is_cond, self.config.bos_id, self.cond_emb.weight,
                              self.cond_proj.weight, self.cond_proj.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq) ids → (batch, seq, vocab) logits."""
        ids, vec = self.split_conditions(ids)
        if vec is None:
            return self.net(ids)
        return self.net(ids, sum_embeds=vec[:, None].expand(-1, ids.shape[1], -1))

    def step(self, ids: torch.Tensor, cache=None):
        """Logits of the last position and the updated KV cache (x-transformers' intermediates).

        `ids` is the whole sequence so far; with a cache only its new tail is computed.
        """
        ids, vec = self.split_conditions(ids)
        extra = {} if vec is None else {"sum_embeds": vec[:, None].expand(-1, ids.shape[1], -1)}
        logits, cache = self.net(ids, return_intermediates=True, cache=cache, **extra)
        return logits[:, -1], cache

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def sum_conditions(ids: torch.Tensor, is_cond: torch.Tensor, bos_id: int, emb: torch.Tensor,
                   proj_w: torch.Tensor, proj_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EmoGen conditioning: (ids with condition tokens → BOS, projected sum of their embeddings)."""
    cond = is_cond[ids]
    vec = torch.nn.functional.linear((torch.nn.functional.embedding(ids, emb) * cond[..., None]).sum(1), proj_w, proj_b)
    return ids.masked_fill(cond, bos_id), vec


def load_generator(path) -> tuple[Generator, MusicTokenizer]:
    """Generator and its tokenizer from one checkpoint folder (safetensors + JSON)."""
    ck, tk = load_generator_checkpoint(path)
    return ck.module(), tk
