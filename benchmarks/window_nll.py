"""Past the training length: full attention or a sliding window of the training length?

    python benchmarks/window_nll.py [--checkpoints DIR] [--datasets emopia,pop909,asap,vgmidi]
                                    [--tokens 1024] [--pieces 60] [--control 50 --bars 16] [--restate 128]

The generator is trained on windows of `max_seq_len` tokens, but a 16-bar piece is longer. For up to
`--pieces` real val pieces of at least `--tokens` tokens per dataset, this computes the shipped
model's NLL of the tokens after the first window twice in one forward each: with full causal
attention, and with every query limited to the last `max_seq_len` keys (x-transformers' `attn_mask`,
the window the sampler uses). Lower is better; the difference comes with its standard error over
pieces. With `--control N` it also runs the controllability protocol (`emomusic evaluate`, attributes
method, N pieces per quadrant of `--bars` bars, seeds offset by 600,000) with the window and with full
attention: the judge's accuracy and the quality overlap of what the user would get.

With `--restate STRIDE` it also compares two ways of keeping the conditions in view past the window,
on the same pieces with their own condition prefix in front (genre and the control bins of the
measured span, as the sampler would be given): the sliding window (the prefix slides out of view
after `max_seq_len` tokens) and restating (every STRIDE tokens the context is rebuilt as the prefix
followed by the piece from a bar line, as every training window is: the earliest bar start that
leaves room for the next STRIDE tokens).
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def _nll(model, ids: torch.Tensor, start: int, mask: torch.Tensor | None) -> np.ndarray:
    """Mean NLL per sequence of the tokens after position `start`."""
    logits = model.net(ids, attn_mask=mask) if mask is not None else model.net(ids)
    nll = torch.nn.functional.cross_entropy(logits[:, start:-1].transpose(1, 2), ids[:, start + 1:], reduction="none")
    return nll.mean(1).numpy()


def _control(checkpoints: str | None, per_emotion: int, bars: int) -> dict:
    """Judge accuracy and quality overlap of sampled pieces, sliding window vs. full attention."""
    from emomusic.evaluation.controllability import evaluate
    from emomusic.generation import fast
    from emomusic.pipeline import EmoMusic

    em, out, init = EmoMusic.from_pretrained(checkpoints), {}, fast.FastEngine.__init__
    try:
        for name, window in (("window", None), ("full", 0)):
            fast.FastEngine.__init__ = lambda self, m, b, n, _w=None, w=window: init(self, m, b, n, w)
            r = evaluate(em, per_emotion=per_emotion, methods=("attributes",), bars=bars,
                         seed_offset=600_000)["methods"]["attributes"]
            acc = r["accuracy"]
            out[name] = {**acc, "mean_overlap": r["mean_overlap"]}
            print(f"{bars} bars, {name}: judge 4Q / arousal / valence {acc['4Q']:.3f} / {acc['arousal']:.3f} / "
                  f"{acc['valence']:.3f}, quality OA {r['mean_overlap']:.3f}")
    finally:
        fast.FastEngine.__init__ = init
    return out


def _restated(model, tk, prefix: list[int], body: np.ndarray, window: int, stride: int) -> tuple[float, float]:
    """Mean NLL of the body tokens past the first window: (sliding window, restated prefix)."""
    seq = torch.tensor(np.concatenate([prefix, body]))[None]
    n, p = seq.shape[1], len(prefix)
    i = torch.arange(n)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)
    logits = model.net(seq, attn_mask=band)
    sliding = torch.nn.functional.cross_entropy(logits[0, window - 1:-1], seq[0, window:], reduction="sum")
    bars = np.flatnonzero(body == tk.bar_id)
    total, count = 0.0, 0
    for s in range(window - p, len(body), stride):  # body positions s..s+stride predicted in one pass
        e = min(s + stride, len(body))
        starts = bars[(bars <= s) & (p + e - bars <= window)]
        b = int(starts.min()) if len(starts) else s - (window - p - stride)
        ctx = torch.tensor(np.concatenate([prefix, body[b:e]]))[None]
        out = model.net(ctx)
        k = e - s  # the last k positions' targets are body[s:e]
        total += float(torch.nn.functional.cross_entropy(out[0, -k - 1:-1], ctx[0, -k:], reduction="sum"))
        count += k
    return float(sliding) / (n - window), total / count


@torch.inference_mode()
def main() -> None:
    from emomusic.generation.checkpoint import load_float_generator
    from emomusic.training.datasets import load_prepared

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default=None, help="checkpoints folder (default: the shipped one)")
    ap.add_argument("--datasets", default="emopia,pop909,asap,vgmidi")
    ap.add_argument("--tokens", type=int, default=1024, help="tokens per piece (BOS included)")
    ap.add_argument("--pieces", type=int, default=60, help="val pieces per dataset at most")
    ap.add_argument("--control", type=int, default=0, help="also sample this many pieces per quadrant each way")
    ap.add_argument("--bars", type=int, default=16, help="bars per sampled piece (with --control)")
    ap.add_argument("--restate", type=int, default=0, help="also compare restating the conditions every this "
                    "many tokens with the sliding window (see above)")
    args = ap.parse_args()

    model, tk = load_float_generator(f"{args.checkpoints}/generator" if args.checkpoints else None)
    window, n = model.config.max_seq_len, args.tokens
    i = torch.arange(n)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)  # True = attend
    res = {"window": window, "tokens": n}
    for name in args.datasets.split(","):
        prep = load_prepared((name,))
        idx = [j for j, r in enumerate(prep.records) if r.split == "val" and len(prep.piece(j)) >= n - 1]
        idx = idx[: args.pieces]
        if not idx:
            print(f"{name}: no val piece of {n} tokens")
            continue
        full, windowed = [], []
        for b in range(0, len(idx), 4):
            ids = torch.tensor(np.stack([np.concatenate([[tk.bos_id], prep.piece(j)[: n - 1]]) for j in idx[b:b + 4]]))
            full.append(_nll(model, ids, window, None))
            windowed.append(_nll(model, ids, window, band))
        f, w = np.concatenate(full), np.concatenate(windowed)
        d = w - f
        res[name] = {"pieces": len(idx), "full": float(f.mean()), "window": float(w.mean()),
                     "difference": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0}
        print(f"{name}: {len(idx)} val pieces, NLL of tokens {window + 1}-{n - 1}: full attention {f.mean():.3f}, "
              f"window of {window} {w.mean():.3f} (difference {d.mean():+.3f} ± {res[name]['se']:.3f})")
        if args.restate:
            from emomusic.music.attributes import compute_controls

            pairs = []
            for j in idx:
                body = prep.piece(j)[: n - 1].astype(np.int64)
                controls = tk.control_bins.to_bins(compute_controls(tk.decode(body)))
                prefix = tk.condition_ids(prep.records[j].genre, controls=controls)
                pairs.append(_restated(model, tk, prefix, body[: n - len(prefix)], window, args.restate))
            sl, rs = np.array(pairs).T
            dd = rs - sl
            res[name]["restate"] = {"stride": args.restate, "sliding": float(sl.mean()), "restated": float(rs.mean()),
                                    "difference": float(dd.mean()),
                                    "se": float(dd.std(ddof=1) / np.sqrt(len(dd))) if len(dd) > 1 else 0.0}
            print(f"  with the conditions in front: sliding window {sl.mean():.3f}, restated every {args.restate} "
                  f"tokens {rs.mean():.3f} (difference {dd.mean():+.3f} ± {res[name]['restate']['se']:.3f})")
    if args.control:
        with torch.inference_mode(False):
            res["control"] = _control(args.checkpoints, args.control, args.bars)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
