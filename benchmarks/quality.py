"""The quality head: does it tell real music from generated music and from broken music? Score the shipped head.

    python benchmarks/quality.py [--held-out-batches 4] [--per-dataset N] [--data-root DIR] [--checkpoint DIR]

Real: val-split windows of EMOPIA, POP909, ASAP and VGMIDI (song/piece-level splits; EMOPIA's test split is
never read), read on their tracked beats and put on the generator's 1/8-beat grid, exactly as the head was
trained (`emomusic.training.quality.real_pieces`). Generated: the shipped generator's candidates in batch order,
16 bars, 8 per call, `--held-out-batches` calls per quadrant with seeds from 2,100,000 (the head was fitted on
seeds from 2,000,000; nothing was chosen on these). Degraded: every degradation of every val window.

Reported: AUC of real against generated and against each degradation, accuracy at 0.5 (the share of each set on
its right side), the milliseconds to score 8 generated candidates (features and model, best of 5), and the
permutation importance of each feature (the drop in AUC, generated plus mean degradation, when it is shuffled).

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.selection.quality import load_quality  # noqa: E402
from emomusic.training import quality as tq  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--held-out-batches", type=int, default=4, help="generate() calls of 8 per quadrant")
    ap.add_argument("--per-dataset", type=int, default=None, help="val records per dataset (default: all)")
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--checkpoint", help="quality head folder (default: <checkpoints>/quality)")
    ap.add_argument("--cache", help="folder keeping generated pieces between runs (default: <cache>/quality)")
    args = ap.parse_args(argv)

    from emomusic.settings import cache_root, checkpoints_root

    t0 = time.perf_counter()
    head = load_quality(args.checkpoint or checkpoints_root() / "quality")
    cache = Path(args.cache) if args.cache else cache_root() / "quality"
    gen = tq.generated_pieces(tq.HELD_OUT_SEED, args.held_out_batches, cache)
    real = tq.real_pieces(args.data_root, "val", args.per_dataset)
    val = tq.examples(real, gen, 1_000_000)
    p = head.score_features(val["X"])
    res = tq.measure(p, val["kind"])

    batch = [n for _, _, n in gen[: tq.CANDIDATES]]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        head.score(batch)
        times.append(time.perf_counter() - t)
    res["ms_score_8_candidates"] = 1000 * min(times)
    imp = tq.importance(head, val["X"], val["kind"])
    per_set = {d: int(sum(1 for x, _, _ in real if x == d)) for d in tq.SOURCES}

    print(f"{len(real)} real val windows ({', '.join(f'{k} {v}' for k, v in per_set.items())}) vs {len(gen)} "
          f"generated pieces (seeds {tq.HELD_OUT_SEED}..{tq.HELD_OUT_SEED + args.held_out_batches - 1}, 8 per call)"
          f" and {len(real)} of each degradation")
    print(f"{'real vs':>16} {'AUC':>6} {'acc@0.5':>8}")
    print(f"{'generated':>16} {res['auc_generated']:6.3f} {res['accuracy_generated']:8.3f}")
    for k in tq.DEGRADATIONS:
        print(f"{k:>16} {res['auc_' + k]:6.3f} {res['accuracy_' + k]:8.3f}")
    print(f"real windows at P(real) >= 0.5: {res['accuracy_real']:.3f}; balanced accuracy real vs generated: "
          f"{res['balanced_accuracy']:.3f}; mean degradation AUC {res['auc_degraded_mean']:.3f}")
    print(f"scoring 8 candidates of 16 bars: {res['ms_score_8_candidates']:.1f} ms")
    print("feature importance (AUC drop when shuffled): "
          + ", ".join(f"{k} {v:.3f}" for k, v in list(imp.items())[:12]))
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(json.dumps({**{k: round(v, 4) for k, v in res.items()}, "real": len(real), "real_per_dataset": per_set,
                      "generated": len(gen), "held_out_seeds": [tq.HELD_OUT_SEED,
                                                                tq.HELD_OUT_SEED + args.held_out_batches - 1],
                      "importance": {k: round(v, 4) for k, v in imp.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
