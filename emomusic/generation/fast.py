"""The fast engine: KV-cached inference for `Generator` over its tensors, a preallocated cache, few ops.

x-transformers' generic forward spends most of a decoding step in Python (einops, options,
cache concatenation). This module reruns exactly the network `Generator` builds — pre-norm
LayerNorm (gamma only), multi-head attention with interleaved rotary embeddings on the first
`rot_dim` channels of each head, GELU feed-forward, final norm — with the keys and values written
into arrays allocated once: the prefill in numpy, each later token in one compiled call
(`kernels.decode_step`). `tests/test_engines.py` checks its logits equal a full recompute. It runs
the configurations `supports` accepts; `engines.select_engine` falls back to the reference engine
(x-transformers' own forward) for the others. `DecoderWeights` holds the only map from the network's
parameter names to the engine's arrays.

Attention is a sliding window of the training length (`max_seq_len`), as x-transformers' own
`AutoregressiveWrapper.generate` does when it crops its cache: every query sees at most the last
`max_seq_len` keys. The model never saw a longer context in training, and it shows: real val pieces'
tokens past the first window are predicted clearly worse with full attention than with the window
(`benchmarks/window_nll.py`). Rotary positions make the window a
ring buffer: keys are rotated at their absolute positions before they are stored, attention depends
only on relative distance, and softmax does not care about slot order. The sampler rarely lets a row
reach the sliding part: when a context is full it prefills the engine again with the conditions in
front (`sampling.RESTATE_STRIDE`), as every training window begins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from emomusic.generation.checkpoint import GeneratorCheckpoint, GeneratorConfig
from emomusic.numerics import gelu

if TYPE_CHECKING:
    from emomusic.generation.network import Generator

INITIAL_CACHE = 512  # KV positions allocated up front (the cache doubles when a sequence outgrows it)


def unsupported(config: GeneratorConfig) -> str | None:
    """What in `config` this engine does not run (one phrase), or None if it runs all of it.

    The engine reruns the network `Generator` builds: pre-norm LayerNorm, rotary attention over
    `dim_head`-channel heads (x-transformers rotates the first `dim_head // 2` channels, in pairs),
    GELU feed-forward, prefix or sum conditioning. It has no dropout: sampling is inference.
    """
    if config.conditioning not in ("prefix", "sum"):
        return f"conditioning={config.conditioning!r}"
    if config.dim_head <= 0 or config.dim_head % 4:
        return f"dim_head={config.dim_head} (rotary pairs need a multiple of 4)"
    return None


def supports(config: GeneratorConfig) -> bool:
    """Whether this engine runs `config` (else the sampler falls back to the reference engine)."""
    return unsupported(config) is None


class StepWeights(NamedTuple):
    """Every array a decoding step reads, stacked over the layers: one bundle per precision.

    The matrices are stored transposed (`x @ W`); in `DecoderWeights.step` they may be float16 bit
    patterns (uint16), which `kernels.decode_step` widens as it reads them.
    """

    g1: np.ndarray  # (layers, dim) attention pre-norm gain (offset added)
    wqkv: np.ndarray  # (layers, dim, 3 * heads * dim_head) query, key, value projections side by side
    wo: np.ndarray  # (layers, heads * dim_head, dim)
    g2: np.ndarray  # (layers, dim) feed-forward pre-norm gain
    w1: np.ndarray  # (layers, dim, ff_mult * dim)
    b1: np.ndarray  # (layers, ff_mult * dim)
    w2: np.ndarray  # (layers, ff_mult * dim, dim)
    b2: np.ndarray  # (layers, dim)
    final_gamma: np.ndarray  # (dim,)
    to_logits: np.ndarray  # (dim, vocab)


class Rotary(NamedTuple):
    """x-transformers' interleaved rotary embedding as tables: x·cos[p] + x[swap]·sin[p] at position p."""

    cos: np.ndarray  # (positions, dim_head) float32
    sin: np.ndarray  # (positions, dim_head) float32, the pair's sign folded in
    swap: np.ndarray  # (dim_head,) int64: each channel's pair partner


# ---- the one map from the network's parameter names to the engine's arrays -------------------------
# x-transformers' `Decoder` alternates attention and feed-forward blocks in `attn_layers.layers`:
# block 2i is layer i's attention, 2i + 1 its feed-forward; each is (norms, the block, residual).
_LAYERS = "net.attn_layers.layers"
_NAMES = {"emb": "net.token_emb.emb.weight", "final_gamma": "net.attn_layers.final_norm.gamma",
          "to_logits": "net.to_logits.weight", "inv_freq": "net.attn_layers.rotary_pos_emb.inv_freq",
          "cond_emb": "cond_emb.weight", "cond_proj_w": "cond_proj.weight", "cond_proj_b": "cond_proj.bias"}
ROTARY = _NAMES["inv_freq"]
# x-transformers' norms (its default `norm_add_unit_offset=True`) store gamma - 1 and add the 1 back in
# forward, so weights decay towards a unit gain. A network says so itself (`unit_offset`, read by
# `DecoderWeights.from_module`); a checkpoint holds only tensors, saved by a network built with that
# default, so it is read with this offset (tests/test_sampling.py pins it against a built network).
CHECKPOINT_GAMMA_OFFSET = 1.0


def _layer_names(i: int) -> dict[str, str]:
    """x-transformers' names of layer i's parameters, by role."""
    a, f = f"{_LAYERS}.{2 * i}", f"{_LAYERS}.{2 * i + 1}"
    return {"g1": f"{a}.0.0.gamma", "q": f"{a}.1.to_q.weight", "k": f"{a}.1.to_k.weight", "v": f"{a}.1.to_v.weight",
            "wo": f"{a}.1.to_out.weight", "g2": f"{f}.0.0.gamma", "w1": f"{f}.1.ff.0.0.weight",
            "b1": f"{f}.1.ff.0.0.bias", "w2": f"{f}.1.ff.2.weight", "b2": f"{f}.1.ff.2.bias"}


def _expected_shapes(c: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors the fast engine reads (torch's (out, in) layout)."""
    d, inner, hidden = c.dim, c.heads * c.dim_head, c.dim * c.ff_mult
    out = {_NAMES["emb"]: (c.vocab_size, d), _NAMES["to_logits"]: (c.vocab_size, d), _NAMES["final_gamma"]: (d,),
           _NAMES["inv_freq"]: (c.dim_head // 4,)}  # rotary over dim_head // 2 channels, one frequency a pair
    per_role = {"g1": (d,), "q": (inner, d), "k": (inner, d), "v": (inner, d), "wo": (d, inner), "g2": (d,),
                "w1": (hidden, d), "b1": (hidden,), "w2": (d, hidden), "b2": (d,)}
    for i in range(c.depth):
        out.update({name: per_role[role] for role, name in _layer_names(i).items()})
    if c.conditioning == "sum":
        out.update({_NAMES["cond_emb"]: (c.vocab_size, d), _NAMES["cond_proj_w"]: (d, d), _NAMES["cond_proj_b"]: (d,)})
    return out


class DecoderWeights:
    """The tensors the fast engine reads, laid out for it once, from a state dict or a network.

    Built straight from the checkpoint's tensors (x-transformers parameter names; numpy arrays or torch
    tensors), so sampling never constructs the x-transformers module, and from numpy arrays never
    imports torch. `arrays` are float32 (the numpy prefill reads them); `step` is what the compiled step
    reads: the same, with the weight matrices as float16 bits when float16 holds them exactly.
    """

    def __init__(self, config: GeneratorConfig, state: dict, gamma_offset: float = CHECKPOINT_GAMMA_OFFSET,
                 source: str = "") -> None:
        """Args:
            config: the network's configuration (must be one `supports` accepts).
            state: its parameters by x-transformers name (numpy arrays or torch tensors).
            gamma_offset: what the norms add to their stored gain (see `CHECKPOINT_GAMMA_OFFSET`).
            source: the file the tensors came from, for error messages.
        """
        from emomusic.checkpoint import check_tensors

        why = unsupported(config)
        if why is not None:
            raise ValueError(f"the fast engine does not support {why}; sample with the reference engine")
        check_tensors(_expected_shapes(config), state, source, "Generator", allow_unexpected=True)
        self.config = config
        self.heads = config.heads
        self.dim_head = config.dim_head

        def f(name: str) -> np.ndarray:
            return _float32(state[name])

        def t(name: str) -> np.ndarray:
            return np.ascontiguousarray(f(name).T)

        def g(name: str) -> np.ndarray:
            return f(name) + np.float32(gamma_offset)

        def stack(role: str, read) -> np.ndarray:  # one array over the layers: the compiled step reads one
            return np.ascontiguousarray(np.stack([read(_layer_names(i)[role]) for i in range(config.depth)]))

        def qkv(i: int) -> np.ndarray:
            names = _layer_names(i)
            return np.concatenate([f(names[x]) for x in "qkv"]).T

        self.emb = f(_NAMES["emb"])
        self.arrays = StepWeights(
            g1=stack("g1", g), wqkv=np.ascontiguousarray(np.stack([qkv(i) for i in range(config.depth)])),
            wo=stack("wo", t), g2=stack("g2", g), w1=stack("w1", t), b1=stack("b1", f), w2=stack("w2", t),
            b2=stack("b2", f), final_gamma=g(_NAMES["final_gamma"]), to_logits=t(_NAMES["to_logits"]))
        # the weight matrices as float16 bits when float16 holds them exactly (a checkpoint saved in float16, as
        # the shipped one is), so each step streams half the bytes for the same products; all or none (the
        # kernel's signatures)
        matrices = ("wqkv", "wo", "w1", "w2", "to_logits")
        half = {m: _half_bits(getattr(self.arrays, m)) for m in matrices}
        self.step = self.arrays if any(h is None for h in half.values()) else self.arrays._replace(**half)
        self.inv_freq = f(ROTARY)  # saved with the weights: use it, never recompute
        self.cond = None
        if config.conditioning == "sum":
            is_cond = np.zeros(config.vocab_size, dtype=bool)
            is_cond[list(config.cond_token_ids)] = True
            self.cond = (is_cond, f(_NAMES["cond_emb"]), f(_NAMES["cond_proj_w"]), f(_NAMES["cond_proj_b"]))

    @classmethod
    def from_module(cls, model: Generator) -> DecoderWeights:
        """The weights of a built network (its norms say their own gain offset)."""
        norm = model.net.attn_layers.layers[0][0][0]
        offset = float(getattr(norm, "unit_offset", 0.0))
        return cls(model.config, model.state_dict(), gamma_offset=offset)

    @classmethod
    def from_checkpoint(cls, ck: GeneratorCheckpoint) -> DecoderWeights:
        """The weights of a loaded checkpoint, without building the network."""
        return cls(ck.config, ck.state_dict, source=ck.source)

    def split_conditions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """As `Generator.split_conditions`, in numpy: sum mode moves the conditions into one vector."""
        if self.cond is None:
            return ids, None
        is_cond, emb, proj_w, proj_b = self.cond
        cond = is_cond[ids]
        vec = (emb[ids] * cond[..., None]).sum(1) @ proj_w.T + proj_b
        return np.where(cond, self.config.bos_id, ids), vec


def _float32(v) -> np.ndarray:
    """A numpy array or torch tensor as float32 numpy (torch is touched only if it is one of its tensors)."""
    if hasattr(v, "detach"):
        v = v.detach().float().cpu().numpy()
    return np.asarray(v, dtype=np.float32)


def _half_bits(w: np.ndarray) -> np.ndarray | None:
    """w's float16 bit patterns (uint16, as `kernels.decode_step` takes them) if float16 holds every value
    exactly, else None: the kernel's products over either are then the same."""
    half = w.astype(np.float16)
    return half.view(np.uint16) if np.array_equal(half.astype(np.float32), w) else None


class FastEngine:
    """Incremental decoding of a batch: `prefill(ids)` once, then `step(tokens)` per token.

    The prefill is numpy over the checkpoint's tensors (zero-copy views): a whole prefix is a few large
    products, which BLAS does well. Each later step is one call of the compiled `kernels.decode_step`:
    a step is dozens of tiny operations per layer, and as numpy calls their dispatch cost more than
    their arithmetic (logits equal to the numpy path's to float32 rounding).
    Rotary embedding is a precomputed cos/sin pair over queries and keys; keys and values go into one
    preallocated ring of `window` positions (default the training length; `window=0` keeps every
    position). Logits come back as numpy (rows, vocab).
    """

    fork_safe = True  # numpy and numba only: a forked sampling worker may run it

    def __init__(self, model: Generator | DecoderWeights, batch: int, max_len: int, window: int | None = None) -> None:
        # imported here: numba's import, registries and cached kernels are a noticeable share of a cold
        # start, paid only where something is sampled; the kernels are compiled (or loaded from numba's
        # cache) at import, before any fork
        from emomusic.generation.kernels import decode_step

        self._step = decode_step
        w = model if isinstance(model, DecoderWeights) else DecoderWeights.from_module(model)
        self.weights = w
        # keys each query sees, and the ring's size (position p lives in slot p % window): the training
        # length unless asked otherwise (0 = every position); never more than the sequence can reach
        self.window = min(max_len, w.config.max_seq_len if window is None else (window or max_len))
        self.heads, self.dim_head = w.heads, w.dim_head
        self.emb, self.final_gamma, self.to_logits = w.emb, w.arrays.final_gamma, w.arrays.to_logits
        layers = w.arrays[:8]  # (g1, wqkv, wo, g2, w1, b1, w2, b2), per-layer views for the numpy prefill
        self.blocks = [tuple(kind[i] for kind in layers) for i in range(w.config.depth)]
        self.rotary = Rotary(*_rotary_tables(w.inv_freq, self.dim_head, max_len))
        self.cos, self.sin, self.swap = self.rotary
        self._step_args = (tuple(w.step), tuple(self.rotary))  # as `decode_step` takes its bundles
        # preallocated, but grown by doubling from INITIAL_CACHE positions up to the ring: with transparent
        # huge pages one touched slot commits 2 MB, so a cache sized for the worst case (n_bars × 200
        # tokens) held hundreds of MB resident at batch 8 for pieces that use a fifth of it
        self.max_len = max_len
        self.kv = self._alloc(batch, min(self.window, INITIAL_CACHE))
        self.rows = batch  # rows still computed: the first `rows` of the cache (see `keep`)
        self.length = 0
        self.scale = np.float32(self.dim_head ** -0.5)
        self.mean_of = np.full((w.config.dim, 1), 1.0 / w.config.dim, dtype=np.float32)  # x @ mean_of = row means
        self.cond: np.ndarray | None = None  # sum conditioning: added to every token embedding

    def _prefill(self, ids: np.ndarray) -> np.ndarray:
        """Logits after the last of `ids` (batch, n), from an empty cache, in numpy: a whole prefix is a
        few large products, which BLAS does well (single steps go through `decode_step`)."""
        b, n = ids.shape
        if n > self.max_len:
            raise ValueError(f"KV cache full ({self.max_len} tokens)")
        if b > self.kv.shape[2]:
            raise ValueError(f"{b} rows for a cache of {self.kv.shape[2]}")
        self.rows = b
        if min(n, self.window) > self.kv.shape[4]:
            self._grow(n)
        keep = min(n, self.window)  # prefill keys that stay in the ring: the last `window`
        first = (n - keep) % self.window
        # a slice where the slots run on, an index array where they wrap round (a prefill longer than the ring)
        slots = slice(first, first + keep) if first + keep <= self.window else np.arange(n - keep, n) % self.window

        def store(layer: int, k: np.ndarray, v: np.ndarray) -> None:
            ring_k, ring_v = self.kv[layer, :, :b]  # (b, h, slots, dh) each; one index array keeps its axis
            ring_k[:, :, slots] = k[:, :, n - keep:]
            ring_v[:, :, slots] = v[:, :, n - keep:]

        x = self._layers(ids, store)
        self.length = n
        return self._layer_norm(x.reshape(b, n, -1)[:, -1], self.final_gamma) @ self.to_logits

    def states(self, ids) -> np.ndarray:
        """Every position's last-layer state (batch, n, dim), final norm applied: what x-transformers
        returns with `return_embeddings=True` (the selector's and recognizer's piece embeddings).
        Nothing is cached; each row attends causally, so padding after a row's end cannot leak back.

        Args:
            ids: (batch, n) token ids (no condition prefix).

        Returns:
            float32 (batch, n, dim).
        """
        ids = np.asarray(ids, dtype=np.int64)
        b, n = ids.shape
        return self._layer_norm(self._layers(ids, None), self.final_gamma).reshape(b, n, -1)

    def _layers(self, ids: np.ndarray, store) -> np.ndarray:
        """The decoder over a whole sequence (batch, n) in numpy; `store(layer, k, v)` keeps the keys and
        values where a cache wants them. Returns the last layer's output (batch·n, dim), before the final norm."""
        b, n = ids.shape
        x = self.emb[ids.reshape(-1)]
        if self.cond is not None:
            x = (x.reshape(b, n, -1) + self.cond[:, None]).reshape(b * n, -1)
        h, dh, ln = self.heads, self.dim_head, self._layer_norm
        cos, sin = self.cos[:n, None, None], self.sin[:n, None, None]  # (n, 1, 1, dh)
        mask = None
        if n > 1:  # query i sees keys i - window < j <= i, among the prefill's own keys
            gap = np.arange(n)[:, None] - np.arange(n)[None, :]
            mask = np.where((gap < 0) | (gap >= self.window), -np.inf, 0.0).astype(np.float32)
        for layer, (g1, wqkv, wo, g2, w1, b1, w2, b2) in enumerate(self.blocks):
            qkv = (ln(x, g1) @ wqkv).reshape(b, n, 3, h, dh)
            qk = qkv[:, :, :2] * cos + qkv[:, :, :2][..., self.swap] * sin  # (b, n, 2, h, dh)
            k, v = qk[:, :, 1].transpose(0, 2, 1, 3), qkv[:, :, 2].transpose(0, 2, 1, 3)  # (b, h, n, dh)
            if store is not None:
                store(layer, k, v)
            # every operand a strided view BLAS takes as is (a matrix numpy cannot hand to BLAS
            # goes through its generic loop, far slower)
            q = qk[:, :, 0].transpose(0, 2, 1, 3)  # (b, h, n, dh)
            s = np.matmul(q, k.swapaxes(-1, -2))  # (b, h, n, n): the prefix's own keys
            s *= self.scale
            if mask is not None:
                s += mask
            s -= s.max(axis=-1, keepdims=True)  # softmax in place
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            att = np.matmul(s, v).transpose(0, 2, 1, 3).reshape(b * n, h * dh)
            x = x + att @ wo
            x = x + gelu(ln(x, g2) @ w1 + b1) @ w2 + b2
        return x

    def _layer_norm(self, x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        """LayerNorm over the last axis with a gain only (x-transformers' has no bias). Row means are a
        matrix product: one BLAS call instead of numpy's mean machinery, faster on these short rows."""
        d = x - x @ self.mean_of
        return d * (gamma / np.sqrt((d * d) @ self.mean_of + np.float32(1e-5)))

    def _alloc(self, batch: int, positions: int) -> np.ndarray:
        # empty, not zeros: only written slots are ever read
        return np.empty((len(self.blocks), 2, batch, self.heads, positions, self.dim_head), dtype=np.float32)

    def _grow(self, end: int) -> None:
        """Move the cache into one twice as long (at least `end`, at most the ring): amortised O(1) a step."""
        kv = self._alloc(self.kv.shape[2], min(self.window, max(end, 2 * self.kv.shape[4])))
        kv[..., : self.length, :] = self.kv[..., : self.length, :]  # below the ring size slot = position
        self.kv = kv

    def prefill(self, ids) -> np.ndarray:
        """Run the prefix (batch, n) and return the last position's logits (batch, vocab)."""
        self.length = 0
        ids, self.cond = self.weights.split_conditions(np.asarray(ids, dtype=np.int64))
        b = ids.shape[0]
        same = self.cond is None or (self.cond == self.cond[:1]).all()
        if b > 1 and ids.shape[1] > 1 and same and (ids == ids[:1]).all():
            # rows that share their prefix (candidates of one request, a loop's seam): run it once, copy the cache
            cond, self.cond = self.cond, None if self.cond is None else self.cond[:1]
            logits = self._prefill(ids[:1])
            used = min(self.length, self.window)
            self.kv[:, :, 1:b, :, :used] = self.kv[:, :, :1, :, :used]
            self.rows, self.cond = b, cond
            return np.repeat(logits, b, axis=0)
        return self._prefill(ids)

    def step(self, tokens) -> np.ndarray:
        """Append one token per live row (rows,) and return the next logits (rows, vocab): one compiled call."""
        tokens = np.asarray(tokens)
        pos = self.length
        if pos + 1 > self.max_len:
            raise ValueError(f"KV cache full ({self.max_len} tokens)")
        if pos == 0:
            raise ValueError("prefill before the first step")
        if tokens.shape != (self.rows,):
            raise ValueError(f"one token per live row expected: shape ({self.rows},), got {tokens.shape}")
        if min(pos + 1, self.window) > self.kv.shape[4]:
            self._grow(pos + 1)
        x = self.emb[tokens]
        if self.cond is not None:
            x += self.cond
        logits = np.empty((self.rows, self.to_logits.shape[1]), dtype=np.float32)
        self._step(x, self._step_args[0], self.kv, pos % self.window, min(pos + 1, self.window), self._step_args[1],
                   pos, self.scale, logits)
        self.length = pos + 1
        return logits

    def keep(self, rows: np.ndarray) -> None:
        """Keep only these batch rows, ascending (e.g. drop finished sequences): later steps compute fewer.

        Rows move down in place (written part only) and steps read the first ones, so no new memory is
        touched.
        """
        rows = [int(r) for r in rows]
        used = min(self.length, self.window)
        for i, r in enumerate(rows):
            if r != i:  # ascending rows: i < r, so the destination is never a row still to be read
                self.kv[:, :, i, :, :used] = self.kv[:, :, r, :, :used]
        self.rows = len(rows)  # the cache keeps its (contiguous) shape; steps read its first rows
        if self.cond is not None:
            self.cond = self.cond[rows]




def _rotary_tables(inv_freq: np.ndarray, dim_head: int, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos/sin (max_len, dim_head) float32 and the pair swap (int64) for x-transformers' interleaved rotary.

    A rotated pair (a, b) becomes (a·cos − b·sin, b·cos + a·sin) = x·cos + swap(x)·sin with
    swap(a, b) = (b, a) and the sign folded into sin. Channels past the rotary dimension get cos 1
    and sin 0. The angles are float32 products, as in x-transformers; their cos and sin are taken in
    float64 and rounded once, so the tables are the correctly rounded values on every machine (torch's
    float32 cos, which x-transformers uses, is off by one unit in the last place for ~5% of them).
    """
    r = inv_freq.shape[0] * 2
    freqs = (np.arange(max_len, dtype=np.float32)[:, None] * inv_freq[None, :]).astype(np.float64)  # (T, r/2)
    cos = np.ones((max_len, dim_head), dtype=np.float32)
    sin = np.zeros((max_len, dim_head), dtype=np.float32)
    cos[:, :r] = np.repeat(np.cos(freqs), 2, axis=-1)
    sin[:, 0:r:2] = -np.sin(freqs)
    sin[:, 1:r:2] = np.sin(freqs)
    swap = np.arange(dim_head, dtype=np.int64)
    swap[0:r:2] += 1
    swap[1:r:2] -= 1
    return cos, sin, swap
