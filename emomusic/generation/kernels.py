"""The fast engine's compiled decoding step: every layer of one token in one call (numba).

Only the network's step lives here; the sampling rules' compiled twins live beside their
specifications in `generation.processors`.

A single-token step is dozens of tiny operations per layer (a layer norm on 256 floats, a softmax
over 512 scores per head). As numpy calls each costs a few microseconds of dispatch, more than its
arithmetic: the glue cost more than the four weight products. Here the glue is compiled loops, the
products are loops that read each weight row once for every batch row (OpenBLAS's small-m GEMM was
slower per row than its m = 1 GEMV), and Python runs once per token instead of ~40 times per layer.

The maths is `fast.FastEngine._prefill`'s for one new position: pre-norm LayerNorm (gain
only), interleaved rotary on the queries and keys, the key and value written into ring slot
`slot`, attention over the first `seen` slots, exact-erf GELU (the same Abramowitz & Stegun
polynomial as `numerics.gelu`), final norm and logits. Sums may be reassociated (vectorised
reductions), so results agree with the numpy path to float32 rounding, not bitwise; each row is
computed in the same order whatever the batch size, so a row's logits do not depend on which other
rows share the batch. Compiled once per machine and cached beside this file (numba's `cache=True`).

The weight matrices may come as float16 bits (`_wide`): float16 -> float32 is exact, so the products
are those of the float32 copies (bitwise, tested), but a step streams half the bytes of weights: much
faster while the keys and values are few, less so at the full window, where the float32 keys and
values push the working set past what the shared last-level cache keeps (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from emomusic.generation.fast import Rotary, StepWeights
from emomusic.numerics import ERF_A, ERF_P, INV_SQRT2

# reassociation (vectorised sums) and fused multiply-add; no "nnan"/"ninf": masked logits are -inf
_FAST = {"reassoc", "contract", "nsz", "arcp"}
_F32 = np.float32
_A1, _A2, _A3, _A4, _A5 = ERF_A  # the numpy GELU's Abramowitz & Stegun constants, frozen into the code


@intrinsic
def _wide(typingctx, w):
    """A weight as float32: itself, or the float16 whose bits a uint16 holds (LLVM's `fpext half`, which
    x86 with F16C does as one vcvtph2ps per vector).

    Numba has no float16 type on the CPU, so half-precision weights travel as their bit patterns.
    float16 -> float32 is exact, so a product over widened weights equals the same product over the
    float32 copies (the shipped checkpoint is float16: the same values either way), at half the bytes.
    """
    if w == types.float32:
        return types.float32(w), lambda context, builder, sig, args: args[0]
    if w == types.uint16:
        def codegen(context, builder, sig, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
        return types.float32(w), codegen
    return None


@nb.njit(cache=True, fastmath=_FAST)
def _matmul(x, w, bias, out):  # pragma: no cover - compiled (tests run it through decode_step)
    """out (B, O) = x (B, I) @ w (I, O) + bias, four weight rows per pass, each read once for all B rows.

    w is float32, or float16 as uint16 bits (`_wide`): the weights stream from the last-level cache or
    main memory every step, and half the bytes made these products several times faster. Rows go two
    at a time, so each weight is loaded and widened once for both (the widening was what a second row
    paid for); every row's sums are the same expression in the same order either way, so a row's
    result does not depend on its neighbours.
    """
    b, n_in = x.shape
    n_out = w.shape[1]
    for r in range(b):
        for o in range(n_out):
            out[r, o] = bias[o]
    top = n_in - n_in % 4
    for i in range(0, top, 4):
        w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        r = 0
        while r + 2 <= b:
            x0, x1, x2, x3 = x[r, i], x[r, i + 1], x[r, i + 2], x[r, i + 3]
            y0, y1, y2, y3 = x[r + 1, i], x[r + 1, i + 1], x[r + 1, i + 2], x[r + 1, i + 3]
            row, nxt = out[r], out[r + 1]
            for o in range(n_out):
                a0, a1, a2, a3 = _wide(w0[o]), _wide(w1[o]), _wide(w2[o]), _wide(w3[o])
                row[o] += x0 * a0 + x1 * a1 + x2 * a2 + x3 * a3
                nxt[o] += y0 * a0 + y1 * a1 + y2 * a2 + y3 * a3
            r += 2
        if r < b:  # the odd row (batch 1: the only one)
            x0, x1, x2, x3 = x[r, i], x[r, i + 1], x[r, i + 2], x[r, i + 3]
            row = out[r]
            for o in range(n_out):
                row[o] += x0 * _wide(w0[o]) + x1 * _wide(w1[o]) + x2 * _wide(w2[o]) + x3 * _wide(w3[o])
    for i in range(top, n_in):
        wi = w[i]
        for r in range(b):
            xi = x[r, i]
            row = out[r]
            for o in range(n_out):
                row[o] += xi * _wide(wi[o])


@nb.njit(cache=True, fastmath=_FAST)
def _layer_norm(x, gamma, out):  # pragma: no cover - compiled
    """LayerNorm over each row with a gain only (x-transformers' has no bias), eps 1e-5."""
    b, d = x.shape
    for r in range(b):
        xr = x[r]
        mean = _F32(0.0)
        for i in range(d):
            mean += xr[i]
        mean /= d
        var = _F32(0.0)
        for i in range(d):
            dev = xr[i] - mean
            var += dev * dev
        inv = _F32(1.0) / math.sqrt(var / d + _F32(1e-5))
        for i in range(d):
            out[r, i] = (xr[i] - mean) * inv * gamma[i]


@nb.njit(cache=True, fastmath=_FAST)
def _gelu(h):  # pragma: no cover - compiled
    """Exact GELU in place, erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as `numerics.gelu`."""
    b, n = h.shape
    for r in range(b):
        for i in range(n):
            v = h[r, i]
            z = abs(v) * INV_SQRT2
            t = _F32(1.0) / (_F32(1.0) + ERF_P * z)
            erf = _F32(1.0) - t * (_A1 + t * (_A2 + t * (_A3 + t * (_A4 + t * _A5)))) * math.exp(-z * z)
            h[r, i] = _F32(0.5) * v * (_F32(1.0) + (erf if v >= 0 else -erf))


@nb.njit(cache=True, fastmath=_FAST)
def _attend(q, keys, values, seen, scale, scores, out):  # pragma: no cover - compiled
    """One head, one query: softmax(q·K/√d) V over the first `seen` slots, into out (dim_head,).

    Four keys per pass: q is loaded once for four dot products and `out` once for four value rows.
    """
    dh = q.shape[0]
    j = 0
    while j + 4 <= seen:
        k0, k1, k2, k3 = keys[j], keys[j + 1], keys[j + 2], keys[j + 3]
        a0 = a1 = a2 = a3 = _F32(0.0)
        for c in range(dh):
            qc = q[c]
            a0 += qc * k0[c]
            a1 += qc * k1[c]
            a2 += qc * k2[c]
            a3 += qc * k3[c]
        scores[j], scores[j + 1], scores[j + 2], scores[j + 3] = a0 * scale, a1 * scale, a2 * scale, a3 * scale
        j += 4
    for t in range(j, seen):  # the last seen % 4 keys
        kt = keys[t]
        acc = _F32(0.0)
        for c in range(dh):
            acc += q[c] * kt[c]
        scores[t] = acc * scale
    top = _F32(-np.inf)
    for j in range(seen):
        top = max(top, scores[j])
    total = _F32(0.0)
    for j in range(seen):
        e = math.exp(scores[j] - top)
        scores[j] = e
        total += e
    for c in range(dh):
        out[c] = 0.0
    j = 0
    while j + 4 <= seen:
        p0, p1, p2, p3 = scores[j], scores[j + 1], scores[j + 2], scores[j + 3]
        v0, v1, v2, v3 = values[j], values[j + 1], values[j + 2], values[j + 3]
        for c in range(dh):
            out[c] += p0 * v0[c] + p1 * v1[c] + p2 * v2[c] + p3 * v3[c]
        j += 4
    for t in range(j, seen):
        p = scores[t]
        vt = values[t]
        for c in range(dh):
            out[c] += p * vt[c]
    inv = _F32(1.0) / total
    for c in range(dh):
        out[c] *= inv


@nb.njit(cache=True, fastmath=_FAST)
def _rotate_and_store(qkv, kv, layer, slot, cos, sin, swap):  # pragma: no cover - compiled
    """Rotary on each row's queries and keys (x·cos + swap(x)·sin), then its key and value into the ring."""
    b = qkv.shape[0]
    heads, dh = kv.shape[3], kv.shape[5]
    inner = heads * dh
    rotated = np.empty(dh, dtype=np.float32)
    for r in range(b):
        for part in range(2):  # 0 queries, 1 keys
            for h in range(heads):
                base = part * inner + h * dh
                for c in range(dh):
                    rotated[c] = qkv[r, base + c] * cos[c] + qkv[r, base + swap[c]] * sin[c]
                for c in range(dh):
                    qkv[r, base + c] = rotated[c]
        for h in range(heads):
            for c in range(dh):
                kv[layer, 0, r, h, slot, c] = qkv[r, inner + h * dh + c]
                kv[layer, 1, r, h, slot, c] = qkv[r, 2 * inner + h * dh + c]


def _step_weights_type(matrix: type) -> nb.types.Type:
    """Numba's type of a `StepWeights`, as a plain tuple, whose weight matrices have element type `matrix`.

    The step takes its bundles as plain tuples and rebuilds them inside: numba types a plain tuple's
    arguments on its fast C path, a NamedTuple's in Python (slower to dispatch, every token).
    """
    f32 = np.float32
    return nb.typeof(tuple(StepWeights(
        g1=np.zeros((1, 1), f32), wqkv=np.zeros((1, 1, 1), matrix), wo=np.zeros((1, 1, 1), matrix),
        g2=np.zeros((1, 1), f32), w1=np.zeros((1, 1, 1), matrix), b1=np.zeros((1, 1), f32),
        w2=np.zeros((1, 1, 1), matrix), b2=np.zeros((1, 1), f32), final_gamma=np.zeros(1, f32),
        to_logits=np.zeros((1, 1), matrix))))


_ROTARY = nb.typeof(tuple(Rotary(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), np.zeros(1, np.int64))))


def _signature(weights: nb.types.Type):
    """decode_step's types for one precision of its weights."""
    return nb.void(
        nb.float32[:, ::1],  # x (B, D): the new tokens' embeddings (conditions added); becomes the residual
        weights,  # tuple(StepWeights), stacked over the layers
        nb.float32[:, :, :, :, :, ::1],  # kv (L, 2, rows, heads, slots, dim_head); the first B rows are live
        nb.int64, nb.int64,  # slot written, slots attended
        _ROTARY, nb.int64,  # tuple(Rotary) tables and the new token's position
        nb.float32,  # attention score scale
        nb.float32[:, ::1],  # logits out (B, V)
    )


# both compiled at import (before any fork): float16 matrices as uint16 bits (the shipped checkpoint's),
# and float32 ones (weights that float16 cannot hold exactly, e.g. a model straight from training)
_SIGNATURES = [_signature(_step_weights_type(np.uint16)), _signature(_step_weights_type(np.float32))]


@nb.njit(_SIGNATURES, cache=True, fastmath=_FAST)
def decode_step(x, weights, kv, slot, seen, rotary, pos, scale, logits):  # pragma: no cover - compiled
    """One new position for B rows through every layer of `weights`; writes the next-token logits (B, V)."""
    w, rotary = StepWeights(*weights), Rotary(*rotary)
    b, d = x.shape
    heads, dh = kv.shape[3], kv.shape[5]
    inner = heads * dh
    cos, sin, swap = rotary.cos[pos], rotary.sin[pos], rotary.swap
    normed = np.empty((b, d), dtype=np.float32)
    qkv = np.empty((b, 3 * inner), dtype=np.float32)
    att = np.empty((b, inner), dtype=np.float32)
    hidden = np.empty((b, w.w1.shape[2]), dtype=np.float32)
    delta = np.empty((b, d), dtype=np.float32)
    scores = np.empty(seen, dtype=np.float32)
    no_bias = np.zeros(max(3 * inner, d, w.to_logits.shape[1]), dtype=np.float32)
    for layer in range(w.wqkv.shape[0]):
        _layer_norm(x, w.g1[layer], normed)
        _matmul(normed, w.wqkv[layer], no_bias, qkv)
        _rotate_and_store(qkv, kv, layer, slot, cos, sin, swap)
        for r in range(b):
            for h in range(heads):
                _attend(qkv[r, h * dh:(h + 1) * dh], kv[layer, 0, r, h], kv[layer, 1, r, h], seen, scale, scores,
                        att[r, h * dh:(h + 1) * dh])
        _matmul(att, w.wo[layer], no_bias, delta)
        x += delta
        _layer_norm(x, w.g2[layer], normed)
        _matmul(normed, w.w1[layer], w.b1[layer], hidden)
        _gelu(hidden)
        _matmul(hidden, w.w2[layer], w.b2[layer], delta)
        x += delta
    _layer_norm(x, w.final_gamma, normed)
    _matmul(normed, w.to_logits, no_bias, logits)
