"""Compiled decoding step for `fast.KVCacheDecoder`: every layer of one token in one call (numba).

A single-token step is dozens of tiny operations per layer (a layer norm on 256 floats, a softmax
over 512 scores per head). As numpy calls each costs a few microseconds of dispatch, more than its
arithmetic: of a 222 µs layer at batch 1, the four weight products took ~90 µs and the glue the
rest. Here the glue is compiled loops, the products are loops that read each weight row once for
every batch row (OpenBLAS's small-m GEMM reached ~26 GFLOP/s at m = 2-4 on this machine, slower
per row than its m = 1 GEMV), and Python runs once per token instead of ~40 times per layer.

The maths is `fast.KVCacheDecoder._prefill`'s for one new position: pre-norm LayerNorm (gain
only), interleaved rotary on the queries and keys, the key and value written into ring slot
`slot`, attention over the first `seen` slots, exact-erf GELU (the same Abramowitz & Stegun
polynomial as `fast._gelu`), final norm and logits. Sums may be reassociated (vectorised
reductions), so results agree with the numpy path to float32 rounding, not bitwise; each row is
computed in the same order whatever the batch size, so a row's logits do not depend on which other
rows share the batch. Compiled once per machine and cached beside this file (numba's `cache=True`).

The weight matrices may come as float16 bits (`_wide`): float16 -> float32 is exact, so the products
are those of the float32 copies (bitwise, tested), but a step streams 10 MB of weights instead of
20 MB. On this VM that made a batch-1 step 3x faster while the keys and values are few (0.38 vs
1.2 ms) and ~20% faster at the full 512-key window, where the window's 6 MB of float32 keys and
values push the working set past what the shared last-level cache keeps.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from emomusic.generation.fast import _AS_A, _AS_P, _INV_SQRT2

# reassociation (vectorised sums) and fused multiply-add; no "nnan"/"ninf": masked logits are -inf
_FAST = {"reassoc", "contract", "nsz", "arcp"}
_F32 = np.float32
_A1, _A2, _A3, _A4, _A5 = _AS_A  # the numpy GELU's Abramowitz & Stegun constants, frozen into the code


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
    main memory every step, and half the bytes made these products 2-4x faster on this VM. Rows go two
    at a time, so each weight is loaded and widened once for both (the widening was what a second row
    paid for: a (4, 256) @ (256, 768) product took 29 -> 18 µs); every row's sums are the same
    expression in the same order either way, so a row's result does not depend on its neighbours.
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
    """Exact GELU in place, erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as `fast._gelu`."""
    b, n = h.shape
    for r in range(b):
        for i in range(n):
            v = h[r, i]
            z = abs(v) * _INV_SQRT2
            t = _F32(1.0) / (_F32(1.0) + _AS_P * z)
            erf = _F32(1.0) - t * (_A1 + t * (_A2 + t * (_A3 + t * (_A4 + t * _A5)))) * math.exp(-z * z)
            h[r, i] = _F32(0.5) * v * (_F32(1.0) + (erf if v >= 0 else -erf))


@nb.njit(cache=True, fastmath=_FAST)
def _attend(q, keys, values, seen, scale, scores, out):  # pragma: no cover - compiled
    """One head, one query: softmax(q·K/√d) V over the first `seen` slots, into out (dim_head,).

    Four keys per pass: q is loaded once for four dot products and `out` once for four value rows
    (8.8 -> 7.5 µs a head at 512 keys on this VM).
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


def _signature(matrix):
    """decode_step's types, its weight matrices (wqkv, wo, w1, w2, to_logits) of element type `matrix`."""
    return nb.void(
        nb.float32[:, ::1],  # x (B, D): the new tokens' embeddings (conditions added); becomes the residual
        nb.float32[:, ::1], matrix[:, :, ::1], matrix[:, :, ::1],  # g1 (L, D), wqkv (L, D, 3I), wo (L, I, D)
        nb.float32[:, ::1], matrix[:, :, ::1], nb.float32[:, ::1],  # g2 (L, D), w1 (L, D, F), b1 (L, F)
        matrix[:, :, ::1], nb.float32[:, ::1],  # w2 (L, F, D), b2 (L, D)
        nb.float32[::1], matrix[:, ::1],  # final gain (D,), to_logits (D, V)
        nb.float32[:, :, :, :, :, ::1],  # kv (L, 2, rows, heads, slots, dim_head); the first B rows are live
        nb.int64, nb.int64,  # slot written, slots attended
        nb.float32[::1], nb.float32[::1], nb.int64[::1], nb.float32,  # rotary cos, sin, pair swap; score scale
        nb.float32[:, ::1],  # logits out (B, V)
    )


# both compiled at import (before any fork): float16 matrices as uint16 bits (the shipped checkpoint's),
# and float32 ones (weights that float16 cannot hold exactly, e.g. a model straight from training)
_SIGNATURES = [_signature(nb.uint16), _signature(nb.float32)]


@nb.njit(_SIGNATURES, cache=True, fastmath=_FAST)
def decode_step(x, g1, wqkv, wo, g2, w1, b1, w2, b2, final_gamma, to_logits, kv, slot, seen, cos, sin, swap,
                scale, logits):  # pragma: no cover - compiled
    """One new position for B rows through every layer; writes the next-token logits (B, V)."""
    b, d = x.shape
    heads, dh = kv.shape[3], kv.shape[5]
    inner = heads * dh
    normed = np.empty((b, d), dtype=np.float32)
    qkv = np.empty((b, 3 * inner), dtype=np.float32)
    att = np.empty((b, inner), dtype=np.float32)
    hidden = np.empty((b, w1.shape[2]), dtype=np.float32)
    delta = np.empty((b, d), dtype=np.float32)
    scores = np.empty(seen, dtype=np.float32)
    no_bias = np.zeros(max(3 * inner, d, to_logits.shape[1]), dtype=np.float32)
    for layer in range(wqkv.shape[0]):
        _layer_norm(x, g1[layer], normed)
        _matmul(normed, wqkv[layer], no_bias, qkv)
        _rotate_and_store(qkv, kv, layer, slot, cos, sin, swap)
        for r in range(b):
            for h in range(heads):
                _attend(qkv[r, h * dh:(h + 1) * dh], kv[layer, 0, r, h], kv[layer, 1, r, h], seen, scale, scores,
                        att[r, h * dh:(h + 1) * dh])
        _matmul(att, wo[layer], no_bias, delta)
        x += delta
        _layer_norm(x, g2[layer], normed)
        _matmul(normed, w1[layer], b1[layer], hidden)
        _gelu(hidden)
        _matmul(hidden, w2[layer], b2[layer], delta)
        x += delta
    _layer_norm(x, final_gamma, normed)
    _matmul(normed, to_logits, no_bias, logits)


@nb.njit(nb.void(nb.float32[:, ::1], nb.float64[::1], nb.float64, nb.int64, nb.int64[::1]), cache=True)
def draw_tokens(logits, u, top_p, top_k, out):  # pragma: no cover - compiled
    """`sampling.draw` for each row, compiled: ~10 numpy calls a step (~70-100 µs at batch 1) become one.

    The same float32 softmax, stable descending order, float32 running sums, nucleus test and
    inverse-CDF pick as the numpy version it replaced; only `exp` may differ in the last bit.
    No fastmath: the running sum's order decides which token a uniform lands on.
    """
    b, v = logits.shape
    e = np.empty(v, dtype=np.float32)
    c = np.empty(v, dtype=np.float32)
    limit_p = np.float32(top_p)
    k = top_k if 0 < top_k < v else v
    for r in range(b):
        row = logits[r]
        top = row.max()
        for j in range(v):
            e[j] = math.exp(row[j] - top)
        order = np.argsort(-e, kind="mergesort")  # stable: equal probabilities keep vocabulary order
        total = np.float32(0.0)
        for j in range(v):
            total += e[order[j]] if j < k else np.float32(0.0)
            c[j] = total
        n = 0  # kept: the tokens before the one whose running sum crosses top_p, and that one (always >= 1)
        for j in range(k):
            se = e[order[j]]
            if top_p >= 1.0 or c[j] - se <= limit_p * c[v - 1]:
                n += 1
        target = u[r] * c[n - 1]
        idx = 0
        for j in range(v):
            if c[j] < target:
                idx += 1
        out[r] = order[min(idx, n - 1)]


_NEG_INF = np.float32(-np.inf)


@nb.njit(nb.void(nb.float32[:, ::1], nb.boolean[:, ::1], nb.boolean[:, ::1], nb.int64[::1], nb.int64[::1],
                 nb.int64[::1], nb.boolean[::1], nb.int64[::1], nb.boolean[::1], nb.boolean[::1], nb.boolean[::1],
                 nb.int64[::1], nb.int64[::1], nb.boolean[::1], nb.boolean[::1], nb.boolean[::1], nb.int64,
                 nb.int64[::1]), cache=True)
def mask_logits(x, table, allowed, prev_type, pos, bar_len, tempo_done, bars, force_tempo, force_timesig, done,
                pos_ids, pos_vals, advances, is_tempo, is_timesig, n_bars, ids):  # pragma: no cover - compiled
    """`sampling._State.mask` applied to logits in place (-inf = forbidden), one row at a time.

    ids = (eos_id, bar_id, POSITION type, BAR type). The same rules in the same order: the REMI grammar
    table and the guidance's hard limits; positions only move forward inside the bar; one tempo, in
    the first bar (the asked one first); every bar states its metre when one is asked; no EOS before
    the last bar; a finished row may only repeat EOS; a row with nothing left closes its bar or ends.
    """
    b, v = x.shape
    eos_id, bar_id, position_type, bar_type = ids[0], ids[1], ids[2], ids[3]
    ok = np.empty(v, dtype=np.bool_)
    for r in range(b):
        pt = prev_type[r]
        if done[r]:
            for j in range(v):
                ok[j] = j == eos_id
        else:
            for j in range(v):
                ok[j] = table[pt, j] and allowed[r, j]
            if advances[pt]:
                for k in range(pos_ids.shape[0]):
                    if pos_vals[k] <= pos[r] or pos_vals[k] >= bar_len[r]:
                        ok[pos_ids[k]] = False
            no_tempo = tempo_done[r] or bars[r] > 1
            if no_tempo:
                for j in range(v):
                    ok[j] = ok[j] and not is_tempo[j]
            elif force_tempo[r] and pt == position_type:
                for j in range(v):
                    ok[j] = ok[j] and is_tempo[j]
            if force_timesig[r] and pt == bar_type:
                for j in range(v):
                    ok[j] = ok[j] and is_timesig[j]
            if bars[r] < n_bars:
                ok[eos_id] = False
            if not ok.any():
                ok[bar_id if bars[r] < n_bars else eos_id] = True
        for j in range(v):
            if not ok[j]:
                x[r, j] = _NEG_INF


@nb.njit(nb.void(nb.float32[:, ::1], nb.int64[::1], nb.int64[::1], nb.float64[::1], nb.float64[::1],
                 nb.float64[::1], nb.float64[:, ::1], nb.int64[::1], nb.float64[::1], nb.float64[::1],
                 nb.boolean[::1], nb.boolean[::1], nb.int64, nb.int64), cache=True)
def density_register_tilt(out, prev_type, pos, beats_before, n_notes, pitch_sum, targets, spans, pitch_vals, pos_vals,
                          advances, flags, duration_type, positions_per_beat):  # pragma: no cover - compiled
    """`sampling.Feedback.add`'s density and register terms, in place, for every row.

    targets (B, 4): density target, density gain, register target, register gain / 4 (gains 0 where a row
    has no target); spans = (first pitch id, first position id); flags = (any density, any register).
    Same float64 arithmetic as the numpy version, each result rounded into the float32 logits once.
    """
    b = out.shape[0]
    p0, q0 = spans[0], spans[1]
    n_pitch, n_pos = pitch_vals.shape[0], pos_vals.shape[0]
    for r in range(b):
        if flags[0]:
            cur = max(pos[r], 0) / positions_per_beat
            t = max(beats_before[r] + cur, 1.0)
            lr = min(max(math.log((n_notes[r] + 1) / (targets[r, 0] * t + 1)), -2.0), 2.0) * targets[r, 1]
            if prev_type[r] == duration_type:  # another Pitch here = one more note at this onset
                for k in range(n_pitch):
                    out[r, p0 + k] = out[r, p0 + k] - lr
            if advances[prev_type[r]]:
                for k in range(n_pos):
                    gap = min(max(pos_vals[k] - cur, 0.0), 4.0)
                    out[r, q0 + k] = out[r, q0 + k] + lr * gap
        if flags[1]:
            target = targets[r, 2]
            running = (pitch_sum[r] + 8 * target) / (n_notes[r] + 8)  # a prior of 8 notes at the target
            lam = min(max(targets[r, 3] * (target - running), -3.0), 3.0)
            for k in range(n_pitch):
                out[r, p0 + k] = out[r, p0 + k] + lam * (pitch_vals[k] - target) / 12


@nb.njit(nb.void(nb.int64[::1], nb.int64[::1], nb.float64[::1], nb.int64[::1], nb.int64[::1], nb.int64[::1],
                 nb.int64[::1], nb.float64[::1], nb.int64[::1], nb.boolean[::1], nb.boolean[::1], nb.float64[::1],
                 nb.float64[::1], nb.int64[::1], nb.int64[::1], nb.int64, nb.int64[::1]), cache=True)
def advance_state(tokens, types, values, ts_num, pos_units, prev_type, pos, beats_before, bar_len, tempo_done, done,
                  n_notes, pitch_sum, last_pitch, bars, positions_per_beat, kinds):  # pragma: no cover - compiled
    """`sampling._State.update` for every row: bars and beats so far, position in the bar, metre, tempo
    and end seen, notes and their pitch sum, and the token type just written. kinds = the type codes of
    (Bar, TimeSig, Position, Tempo, EOS, Pitch)."""
    bar_type, timesig_type, position_type = kinds[0], kinds[1], kinds[2]
    tempo_type, eos_type, pitch_type = kinds[3], kinds[4], kinds[5]
    for r in range(tokens.shape[0]):
        tok = tokens[r]
        kind = types[tok]
        if kind == bar_type:
            if bars[r] > 0:
                beats_before[r] += bar_len[r] / positions_per_beat
            bars[r] += 1
            pos[r] = -1
        elif kind == timesig_type:
            bar_len[r] = ts_num[tok] * positions_per_beat
        elif kind == position_type:
            pos[r] = pos_units[tok]
        elif kind == tempo_type:
            tempo_done[r] = True
        elif kind == eos_type:
            done[r] = True
        elif kind == pitch_type:
            n_notes[r] += 1
            pitch_sum[r] += values[tok]
            last_pitch[r] = np.int64(values[tok])
        prev_type[r] = kind
