"""Generation speed: emomusic's KV-cached sampler vs x-transformers' own generate, same weights.

    python benchmarks/generate.py [--checkpoints DIR] [--bars 16] [--repeats 2]

Prints tokens/s and seconds per 16-bar piece for one candidate and for 8 in one batch, the same
for x-transformers' `AutoregressiveWrapper.generate` (its KV cache on, same prefix and token count),
and peak memory (ru_maxrss). It also measures what this machine can do at best: matmul throughput
(GFLOP/s) gives a compute bound on tokens/s for this model at batch 8, streaming the weights from
memory gives a bandwidth bound at batch 1, and the fraction of those bounds reached is printed.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch


def _time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def machine_bounds(params: int, dim: int, depth: int, context: int) -> dict:
    """Matmul GFLOP/s and weight-streaming GB/s measured now, and the tokens/s bounds they imply.

    FLOPs per token ≈ 2 × weights (every weight is one multiply-add) + attention over the context
    (2 × 2 × context × dim per layer). At batch 1 every step must read all weights once (fp32), so
    bytes per token / bandwidth bounds the speed there. Bandwidth is measured by reading a buffer of
    the model's own size into a preallocated one (the weights' size decides whether they stream from
    the last-level cache or from DRAM; a fresh allocation per copy would measure page faults).
    """
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    sec, _ = _time(lambda: [a @ b for _ in range(8)], 3)
    gflops = 8 * 2 * n**3 / sec / 1e9
    src, dst = torch.randn(params), torch.empty(params)
    sec_copy, _ = _time(lambda: [dst.copy_(src) for _ in range(10)], 5)
    gbps = 10 * 2 * src.numel() * 4 / sec_copy / 1e9  # read + write
    flops_per_token = 2 * params + 4 * context * dim * depth
    return {"matmul_gflops": gflops, "memory_gbps": gbps, "flops_per_token": flops_per_token,
            "compute_bound_tokens_per_s": gflops * 1e9 / flops_per_token,
            "bandwidth_bound_batch1_tokens_per_s": gbps * 1e9 / (params * 4)}


def main() -> None:
    from x_transformers import AutoregressiveWrapper

    from emomusic.models.sampling import sample
    from emomusic.pipeline import EmoMusic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    em = EmoMusic.from_pretrained(args.checkpoints)
    attrs = em.attributes(emotion="calm")
    prefix = em.tokenizer.condition_ids("pop", controls=attrs.controls)
    guide = em._guidance(attrs, None)
    res = {"bars": args.bars, "parameters": em.generator.num_parameters(), "threads": torch.get_num_threads()}

    for n in (1, 8):
        sec, toks = _time(lambda n=n: sample(em.decoder_weights, em.tokenizer, [prefix] * n, n_bars=args.bars,
                                             guidance=guide, seed=1), args.repeats)
        total = sum(len(t) for t in toks)
        res[f"ours_batch{n}_seconds"] = sec
        res[f"ours_batch{n}_tokens"] = total
        res[f"ours_batch{n}_tokens_per_s"] = total / sec
        print(f"emomusic sampler, batch {n}: {total} tokens in {sec:.2f} s = {total / sec:.0f} tokens/s "
              f"({sec:.2f} s per batch of {n} {args.bars}-bar pieces)")

    # peak memory of our generation (the process so far), before the baseline's own allocations
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wrapper = AutoregressiveWrapper(em.generator.net)
    steps = res["ours_batch1_tokens"]
    for n in (1, 8):
        x = torch.tensor([prefix] * n)
        sec, _ = _time(lambda x=x: wrapper.generate(x, steps, cache_kv=True), max(1, args.repeats - 1))
        res[f"xtransformers_batch{n}_seconds"] = sec
        res[f"xtransformers_batch{n}_tokens_per_s"] = n * steps / sec
        print(f"x-transformers generate (KV cache), batch {n}: {n * steps} tokens in {sec:.2f} s = "
              f"{n * steps / sec:.0f} tokens/s")
    res["speedup_batch1"] = res["ours_batch1_tokens_per_s"] / res["xtransformers_batch1_tokens_per_s"]
    res["batch8_time_ratio"] = res["ours_batch8_seconds"] / res["ours_batch1_seconds"]
    cfg = em.generator.config
    bounds = machine_bounds(em.generator.num_parameters(), cfg.dim, cfg.depth, res["ours_batch1_tokens"] // 2)
    res.update(bounds)
    res["fraction_of_bound_batch1"] = res["ours_batch1_tokens_per_s"] / min(
        bounds["compute_bound_tokens_per_s"], bounds["bandwidth_bound_batch1_tokens_per_s"])
    res["fraction_of_bound_batch8"] = res["ours_batch8_tokens_per_s"] / bounds["compute_bound_tokens_per_s"]
    print(f"machine: {bounds['matmul_gflops']:.1f} GFLOP/s matmul, {bounds['memory_gbps']:.1f} GB/s copy → bounds "
          f"{bounds['compute_bound_tokens_per_s']:.0f} tokens/s (compute), "
          f"{bounds['bandwidth_bound_batch1_tokens_per_s']:.0f} tokens/s (batch-1 weight streaming); reached "
          f"{res['fraction_of_bound_batch1']:.1%} at batch 1, {res['fraction_of_bound_batch8']:.1%} at batch 8")
    print(f"speed-up over x-transformers at batch 1: {res['speedup_batch1']:.2f}x; 8 candidates take "
          f"{res['batch8_time_ratio']:.2f}x the time of one; peak RSS of our generation (batch 1 and 8) "
          f"{res['peak_rss_mb']:.0f} MB")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}))


if __name__ == "__main__":
    main()
