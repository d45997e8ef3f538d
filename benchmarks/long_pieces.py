"""Long pieces: do they hold section by section, or thin out and stall? The sampler's guards vs the sliding window.

    python benchmarks/long_pieces.py [--per-quadrant 5] [--bars 64] [--real 40] [--stride 256]

For each quadrant, `--per-quadrant` pieces of `--bars` bars are generated three ways with the same
seed, interleaved: as shipped (conditions restated every `sampling.RESTATE_STRIDE` tokens and the
stall guard, `sampling.STALL_BARS`), restated without the stall guard, and with the sliding window
alone (the baseline, the previous release: the condition prefix slides out of view after one
window). Every piece and every real val piece of POP909 and ASAP's scores at least that long is cut
into 16-bar sections and measured (`evaluation.musicality.sections`): polyphony, notes per beat, pitch
range and distinct pitch classes. Reported: each section's median, the last section over the first
(per piece; the real pieces' 10-90% range beside it), the share of generated pieces whose ratio lies
inside the real range, the longest stall (`longest_stall`: bars in a row on <= 2 pitch classes or
repeating the bar before's pitch classes) and the wall time per piece (medians).

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.evaluation.musicality import SECTION_STATISTICS, longest_stall, sections  # noqa: E402
from emomusic.vocab.emotions import QUADRANT_NAMES, QUADRANTS  # noqa: E402

SECTION_BARS = 16


def _real(n: int, bars: int, data_root: str | None) -> list[str]:
    """Up to n val files of POP909 and ASAP scores with at least `bars` bars, spread by a hash of their id."""
    import symusic

    from emomusic.training.datasets import records

    out = []
    for name in ("pop909", "asap"):
        recs = [r for r in records(data_root, (name,)) if r.split == "val"
                and (name != "asap" or Path(r.path).name == "midi_score.mid")]
        recs.sort(key=lambda r: hashlib.md5(r.id.encode()).hexdigest())
        kept = 0
        for r in recs:
            score = symusic.Score(r.path)
            ts = score.time_signatures[0] if len(score.time_signatures) else None
            bar = 4.0 * ts.numerator / ts.denominator if ts is not None else 4.0
            if score.end() / score.ticks_per_quarter >= bars * bar:
                out.append(r.path)
                kept += 1
            if kept >= n // 2:
                break
    return out


def _summary(files: list[str], n_sections: int) -> dict:
    rows = [sections(f, SECTION_BARS, n_sections) for f in files]
    stalls = [longest_stall(f, n_sections * SECTION_BARS) for f in files]
    out = {"pieces": len(files), "stall_median": float(np.median(stalls)), "stall_max": int(max(stalls))}
    for k in SECTION_STATISTICS:
        v = np.array([[s[k] for s in r] for r in rows])
        out[k] = {"by_section": np.median(v, 0).round(3).tolist(),
                  "last_over_first": (v[:, -1] / np.maximum(v[:, 0], 1e-9)).tolist()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-quadrant", type=int, default=5, help="pieces per quadrant and way")
    ap.add_argument("--bars", type=int, default=64, help="bars per piece (a multiple of 16)")
    ap.add_argument("--real", type=int, default=40, help="real val pieces (half POP909, half ASAP scores)")
    ap.add_argument("--stride", type=int, default=None, help="restating stride (default: the shipped one)")
    ap.add_argument("--seed-offset", type=int, default=800_000)
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    args = ap.parse_args(argv)
    from emomusic.generation import sampling
    from emomusic.pipeline import EmoMusic

    n_sections = args.bars // SECTION_BARS
    shipped = sampling.RESTATE_STRIDE, sampling.STALL_BARS
    stride = args.stride or shipped[0]
    ways = {"shipped": (stride, shipped[1]), "no_guard": (stride, 0), "sliding": (0, 0)}
    em = EmoMusic.from_pretrained()
    em.generate(emotion="calm", bars=4, seed=0)  # settle: kernels loaded, caches warm
    files = {w: [] for w in ways}
    seconds = {w: [] for w in ways}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for q in QUADRANTS:
                for i in range(args.per_quadrant):
                    for way, (restate, stall) in ways.items():  # interleaved: the machine's drift hits all alike
                        sampling.RESTATE_STRIDE, sampling.STALL_BARS = restate, stall
                        t0 = time.perf_counter()
                        piece = em.generate(emotion=QUADRANT_NAMES[q], bars=args.bars, seed=args.seed_offset + i)[0]
                        seconds[way].append(time.perf_counter() - t0)
                        path = Path(tmp) / f"{way}-{q}-{i}.mid"
                        em.save(piece, path)
                        files[way].append(str(path))
        finally:
            sampling.RESTATE_STRIDE, sampling.STALL_BARS = shipped
        result = {w: _summary(fs, n_sections) for w, fs in files.items()}
    real = _summary(_real(args.real, args.bars, args.data_root), n_sections)
    result["real"] = real
    for way in ways:
        result[way]["seconds_median"] = float(np.median(seconds[way]))
    print(f"{args.bars}-bar pieces, {args.per_quadrant} per quadrant, seeds from {args.seed_offset}; "
          f"real: {real['pieces']} val pieces (POP909, ASAP scores); restated stride {stride}, stall guard "
          f"{shipped[1]} bars")
    for k, what in SECTION_STATISTICS.items():
        lo, hi = np.percentile(real[k]["last_over_first"], [10, 90])
        print(f"{k} ({what}); last/first section, real 10-90% {lo:.2f}-{hi:.2f}")
        for way in (*ways, "real"):
            r = result[way][k]
            ratio = np.asarray(r["last_over_first"])
            inside = float(np.mean((ratio >= lo) & (ratio <= hi)))
            r["inside_share"] = inside
            print(f"  {way:>9}: by section {r['by_section']}; last/first median {np.median(ratio):.2f}, "
                  f"inside the real range {inside:.2f}")
    for way in (*ways, "real"):
        extra = f", {result[way]['seconds_median']:.2f} s a piece" if way in ways else ""
        print(f"{way:>9}: longest stall median {result[way]['stall_median']:.1f} bars, "
              f"max {result[way]['stall_max']}{extra}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
