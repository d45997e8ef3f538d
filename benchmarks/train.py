"""Training throughput: one process vs `torchrun --nproc_per_node 2` (DDP, gloo) on the same data.

    python benchmarks/train.py [--steps 30] [--preset small]

Both runs train the shipped model size from scratch for the same number of optimiser steps with
the same per-process batch, so the two-process run sees twice the tokens per step. Tokens/s is
read from each run's own log (session tokens over session wall time, start-up excluded).
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(nproc: int, steps: int, preset: str, out: Path) -> dict:
    cli = ["train", "generator", "--preset", preset, "--steps", str(steps), "--out", str(out)]
    if nproc == 1:
        cmd = [sys.executable, "-m", "emomusic.cli", *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "emomusic.cli", *cli]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // nproc))}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    return {"tokens_per_s": last["tokens_per_s"], "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--preset", default="small")
    args = ap.parse_args()
    res = {"steps": args.steps, "preset": args.preset, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            r = _run(n, args.steps, args.preset, Path(tmp) / f"run{n}")
            res[f"procs{n}_tokens_per_s"] = r["tokens_per_s"]
            res[f"procs{n}_wall_s"] = r["wall_s"]
            print(f"{n} process(es): {r['tokens_per_s']:.0f} tokens/s "
                  f"({r['wall_s']:.1f} s wall for {args.steps} steps)")
    res["ddp_speedup"] = res["procs2_tokens_per_s"] / res["procs1_tokens_per_s"]
    print(f"torchrun --nproc_per_node 2 vs one process: {res['ddp_speedup']:.2f}x tokens/s")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}))


if __name__ == "__main__":
    main()
