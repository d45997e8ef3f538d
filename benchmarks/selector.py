"""Best of 8 against the first and a random candidate: emotion by two judges and realism (issue 29).

Prompts: per quadrant, the vocabulary's words of that quadrant in turn, each with its own seed; every
prompt is one `generate(..., candidates=8, rank=False)` batch, each candidate kept as the user would
get it (`training.ranking.generate_batches`). Per candidate (`training.ranking.measure`): the ranking
heads, the feature judge's and the recognizer's quadrant, and realism: the written file's musicality
statistics against real EMOPIA/POP909/ASAP val pieces (`evaluation.musicality.real_reference`). A
piece is *inside* when no more of its statistics fall outside their real 10-90% range than 90% of
the real pieces manage; its *distance* is the mean distance outside, in range widths.

The weights are tuned on the tuning prompts (`training.ranking.tune`, as `emomusic train ranking`
does) and reported on the evaluation prompts, whose seeds nothing was tuned on: best of 8 beside the
first candidate, a random one (the batch mean) and the previous ranking (the selector network's own
heads with the attribute fit). Also: the trade-off between emotion and realism over the grid (the
Pareto front on the tuning batches, each point re-measured on the evaluation batches), and the time
the selector adds to one batch. Batches and measurements are cached in `--cache`.

    python benchmarks/selector.py --prompts 50 --tune-prompts 16

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _row(name: str, s: dict[str, float]) -> str:
    return (f"{name:>28}  judge {s['judge']:.3f}  recognizer {s['recognizer']:.3f}  inside {s['inside']:.3f}  "
            f"distance {s['distance']:.3f}")


def _selector_seconds(em, files: list[Path], repeats: int) -> dict[str, float]:
    """Median seconds of `EmoMusic.select` on stored batches (the candidates as generated), after a warm-up."""
    from emomusic.training.ranking import load_batch
    from emomusic.types import Candidate

    times = []
    for path in files[: repeats + 1]:
        q, cands, dist, _ = load_batch(path)
        attrs = em.attributes(q)
        real = [Candidate(c.notes, list(c.tokens), 0, "fast", attributes=attrs) for c in cands]
        t0 = time.perf_counter()
        em.select(real, "pop")
        times.append(time.perf_counter() - t0)
    return {"median": float(np.median(times[1:])), "first": float(times[0])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=50, help="evaluation prompts per quadrant")
    ap.add_argument("--tune-prompts", type=int, default=16, help="tuning prompts per quadrant")
    ap.add_argument("--real", type=int, default=40, help="real val pieces per dataset for the realism reference")
    ap.add_argument("--cache", default="data/cache/selector-benchmark",
                    help="folder of batches and measurements (a subfolder per generator and clusterer: either "
                         "changes what a seed generates)")
    ap.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints/)")
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--timing", type=int, default=5, help="batches timed through EmoMusic.select")
    args = ap.parse_args(argv)

    from emomusic.evaluation.musicality import real_reference
    from emomusic.pipeline import EmoMusic
    from emomusic.training import ranking as rk

    t0 = time.perf_counter()
    em = EmoMusic.from_pretrained(args.checkpoints)
    cache = Path(args.cache) / f"{em.model_id}-{em.conditions_id}"
    tune_files = rk.generate_batches(em, rk.prompts(args.tune_prompts, rk.TUNE_SEED), cache / "tune")
    eval_files = rk.generate_batches(em, rk.prompts(args.prompts, rk.EVAL_SEED), cache / "eval")
    ref = real_reference(args.real, args.data_root)
    print(f"real reference: {ref.real_pieces} val pieces; inside = at most {ref.allowed_outside} of "
          f"{len(ref.ranges)} statistics outside the real 10-90% range ({ref.real_inside:.2f} of the real pieces)")
    mt = rk.measure(em, tune_files, ref, cache / "tune-measured.npz")
    me = rk.measure(em, eval_files, ref, cache / "eval-measured.npz")
    weights, table = rk.tune(mt)
    shipped = dict(em.selector.weights)
    print(f"tuned on {len(tune_files)} batches: {weights} (shipped in the checkpoint: {shipped})")
    result = rk.compare(me, weights)
    print(f"evaluation: {len(eval_files)} batches of {int(me['n'])} (seeds from {rk.EVAL_SEED}, untuned)")
    for who in ("best", "first", "random", "previous"):
        print(_row(who, result[who]))
    for q, r in result["by_quadrant"].items():
        print(_row(f"{q} best", r["best"]) + "   first " + f"{r['first']['judge']:.2f}/{r['first']['recognizer']:.2f}/"
              f"{r['first']['inside']:.2f}")
    single = {h: rk.summary(me, rk.picks(me, {h: 1.0})) for h in rk.HEAD_NAMES}
    for h, s in single.items():
        print(_row(f"{h} alone", s))
    front = rk.pareto(table)
    curve = [{"weights": r["weights"], "tuning": {k: r[k] for k in ("judge", "recognizer", "inside", "distance")},
              "evaluation": rk.summary(me, rk.picks(me, r["weights"]))} for r in front]
    print("trade-off (Pareto front on tuning; evaluation beside it):")
    for c in curve:
        e = c["evaluation"]
        t = c["tuning"]
        print(f"  {json.dumps(c['weights'])}: tuning emotion {(t['judge'] + t['recognizer']) / 2:.3f} inside "
              f"{t['inside']:.3f} | evaluation judge {e['judge']:.3f} recognizer {e['recognizer']:.3f} inside "
              f"{e['inside']:.3f}")
    timing = _selector_seconds(em, eval_files, args.timing)
    gains = {k: result["best"][k] - result["first"][k] for k in ("judge", "recognizer", "inside")}
    print(f"best of 8 minus first: judge {gains['judge']:+.3f}, recognizer {gains['recognizer']:+.3f}, inside "
          f"{gains['inside']:+.3f} (targets +0.05, +0.05, +0.10; inside >= 0.80); selector {timing['median']:.2f} s a "
          f"batch (first call {timing['first']:.2f} s); {time.perf_counter() - t0:.0f} s")
    print(json.dumps({"weights": weights, "shipped_weights": shipped, "evaluation": result, "single_heads": single,
                      "gains_vs_first": gains, "trade_off": curve, "selector_seconds": timing,
                      "reference": {"ranges": ref.ranges, "allowed_outside": ref.allowed_outside,
                                    "real_inside": ref.real_inside, "real_pieces": ref.real_pieces},
                      "tune_batches": len(tune_files), "eval_batches": len(eval_files), "tune_seed": rk.TUNE_SEED,
                      "eval_seed": rk.EVAL_SEED}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
