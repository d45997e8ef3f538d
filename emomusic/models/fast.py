"""Fast KV-cached inference for `Generator`: the same weights, a preallocated cache, few ops.

x-transformers' generic forward spends most of a decoding step in Python (einops, options,
cache concatenation). This module reruns exactly the network `Generator` builds — pre-norm
LayerNorm (gamma only), multi-head attention with interleaved rotary embeddings on the first
`rot_dim` channels of each head, GELU feed-forward, final norm — with the keys and values written
into tensors allocated once. `tests/test_sampling.py` checks its logits equal a full recompute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emomusic.models.generator import Generator


def _gamma(norm) -> torch.Tensor:
    """Effective LayerNorm scale: x-transformers stores gamma around a unit offset."""
    return (norm.gamma + float(getattr(norm, "unit_offset", 0.0))).detach()


class KVCacheDecoder:
    """Incremental decoding of a batch: `prefill(ids)` once, then `step(tokens)` per token."""

    def __init__(self, model: Generator, batch: int, max_len: int) -> None:
        net = model.net
        layers = net.attn_layers.layers
        cfg = model.config
        self.heads = cfg.heads
        self.dim_head = layers[0][1].to_q.weight.shape[0] // cfg.heads
        self.emb = net.token_emb.emb.weight.detach()
        self.blocks = []
        for i in range(0, len(layers), 2):
            attn, ff = layers[i][1], layers[i + 1][1]
            self.blocks.append((
                _gamma(layers[i][0][0]),
                torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight]).detach(),
                attn.to_out.weight.detach(),
                _gamma(layers[i + 1][0][0]),
                ff.ff[0][0].weight.detach(), ff.ff[0][0].bias.detach(),
                ff.ff[2].weight.detach(), ff.ff[2].bias.detach(),
            ))
        self.final_gamma = _gamma(net.attn_layers.final_norm)
        self.to_logits = net.to_logits.weight.detach()
        inv_freq = net.attn_layers.rotary_pos_emb.inv_freq.detach()
        self.rot_dim = inv_freq.shape[0] * 2
        freqs = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None, :]
        # interleaved pairs (x-transformers' layout) rotate like complex numbers: one multiply per call
        self.cis = torch.polar(torch.ones_like(freqs), freqs)
        shape = (len(self.blocks), batch, self.heads, max_len, self.dim_head)
        self.k = torch.zeros(shape)
        self.v = torch.zeros(shape)
        self.length = 0
        self.max_len = max_len

    def _rotary(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Rotate the first `rot_dim` channels of (…, n, dim_head) at positions start..start+n."""
        n, r = x.shape[-2], self.rot_dim
        pairs = torch.view_as_complex(x[..., :r].float().reshape(*x.shape[:-1], r // 2, 2).contiguous())
        rotated = torch.view_as_real(pairs * self.cis[start:start + n]).flatten(-2)
        return rotated if r == x.shape[-1] else torch.cat((rotated, x[..., r:]), dim=-1)

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, n = ids.shape
        start, end = self.length, self.length + n
        if end > self.max_len:
            raise ValueError(f"KV cache full ({self.max_len} tokens)")
        x = F.embedding(ids, self.emb)
        h, dh = self.heads, self.dim_head
        for li, (g1, wqkv, wo, g2, w1, b1, w2, b2) in enumerate(self.blocks):
            y = F.layer_norm(x, x.shape[-1:], g1)
            qkv = F.linear(y, wqkv).view(b, n, 3, h, dh).permute(2, 0, 3, 1, 4)
            qk = self._rotary(qkv[:2], start)  # queries and keys in one call
            q = qk[0]
            self.k[li, :, :, start:end] = qk[1]
            self.v[li, :, :, start:end] = qkv[2]
            att = F.scaled_dot_product_attention(q, self.k[li, :, :, :end], self.v[li, :, :, :end],
                                                 is_causal=n > 1 and start == 0)
            x = x + F.linear(att.transpose(1, 2).reshape(b, n, h * dh), wo)
            y = F.layer_norm(x, x.shape[-1:], g2)
            x = x + F.linear(F.gelu(F.linear(y, w1, b1)), w2, b2)
        self.length = end
        x = F.layer_norm(x[:, -1], x.shape[-1:], self.final_gamma)
        return F.linear(x, self.to_logits)

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        """Run the prefix (batch, n) and return the last position's logits (batch, vocab)."""
        self.length = 0
        return self._forward(ids)

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per sequence (batch,) and return the next logits."""
        return self._forward(tokens[:, None])


class ReferenceDecoder:
    """The same interface over x-transformers' own cached forward (baseline and test oracle)."""

    def __init__(self, model: Generator) -> None:
        self.model = model
        self.ids: torch.Tensor | None = None
        self.cache = None

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        self.ids, self.cache = ids, None
        logits, self.cache = self.model.step(ids, None)
        return logits

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.ids = torch.cat([self.ids, tokens[:, None]], dim=1)
        logits, self.cache = self.model.step(self.ids, self.cache)
        return logits
