"""Infilling real clips: do the new bars join both neighbours as real bars do?

    python benchmarks/infill.py [--clips 8] [--from-bar 5] [--to-bar 8] [--seed 0] [--data-root DIR]

Held-apart real clips (EMOPIA val, read on their tracked beats, and POP909 val), their first 16 bars.
Bars `--from-bar`..`--to-bar` are written anew (`EmoMusic.infill`), the asked quadrant cycling Q1..Q4
over the clips (or `--emotion` for all), twice with the same seed: with the look-ahead (of 8
candidates, the one after which the model finds the clip's following bars most likely) and one-sided
(the first candidate: the bars before only). Each seam (into the first new bar, out of the last) is measured as
`evaluation.musicality.bar_transitions` measures a transition — `leap`, the mean semitones from each
pitch struck on the downbeat to the nearest one sounding before it, and `shared`, the pitch classes
the two sides share — beside the same seam in the real clip. Medians.

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.vocab.emotions import QUADRANTS  # noqa: E402

BARS = 16


def seam(notes, into_bar: int, folder: Path, name: str) -> dict:
    """The transition from bar `into_bar - 1` into bar `into_bar` (0-based) of `notes`, or {} if silent."""
    from emomusic.evaluation.musicality import bar_transitions
    from emomusic.export import write

    bar = notes.beats_per_bar
    two = notes.select((notes.start < (into_bar + 1) * bar - 1e-9)
                       & (notes.start + notes.duration > (into_bar - 1) * bar + 1e-9))
    if not len(two):
        return {}
    start = two.start - (into_bar - 1) * bar
    keep = start >= -1e-9
    two = replace(two.select(keep), start=start[keep], pedals=np.zeros((0, 2)), tempos=np.zeros((0, 2)))
    if not len(two):
        return {}
    path = write(two, folder / f"{name}.mid", force=True)
    inner, _ = bar_transitions(path, 2)
    return inner[0] if inner else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8, help="val clips per dataset")
    ap.add_argument("--from-bar", type=int, default=5)
    ap.add_argument("--to-bar", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--emotion", default=None, help="one mood for every clip (default: Q1..Q4 in turn)")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)

    from emomusic.cli.continuation import read_tracks
    from emomusic.music.tracks import Arrangement, Track
    from emomusic.pipeline import EmoMusic
    from emomusic.request import GenerationRequest
    from emomusic.training.datasets import records

    recs = [r for r in records(args.data_root, ("emopia", "pop909")) if r.split == "val"]
    em = EmoMusic.from_pretrained()
    rows = {"real": {"in": [], "out": []}, "look-ahead": {"in": [], "out": []}, "one-sided": {"in": [], "out": []}}
    seconds = {"look-ahead": [], "one-sided": []}
    used = 0
    with tempfile.TemporaryDirectory(prefix="emomusic-infill-") as tmpdir:
        tmp = Path(tmpdir)
        for ds in ("emopia", "pop909"):
            for rec in [r for r in recs if r.dataset == ds][:args.clips]:
                tracks, _, _ = read_tracks(rec.path)
                tracks = [Track(t.name, t.program, t.role, t.notes.truncate(BARS)) for t in tracks]
                tracks = [t for t in tracks if len(t.notes)]
                whole = Arrangement(tuple(tracks)).pitched()
                if whole.n_bars < BARS:
                    continue
                q = args.emotion or QUADRANTS[used % 4]
                used += 1
                a, b = args.from_bar - 1, args.to_bar
                rows["real"]["in"].append(seam(whole, a, tmp, "r-in"))
                rows["real"]["out"].append(seam(whole, b, tmp, "r-out"))
                for way, look in (("look-ahead", True), ("one-sided", False)):
                    t0 = time.perf_counter()
                    cand = em.infill(tracks, args.from_bar, args.to_bar, GenerationRequest(emotion=q, seed=args.seed),
                                     look_ahead=look)[0]
                    seconds[way].append(time.perf_counter() - t0)
                    rows[way]["in"].append(seam(cand.notes, a, tmp, f"{way}-in"))
                    rows[way]["out"].append(seam(cand.notes, b, tmp, f"{way}-out"))
    result: dict = {"clips": used, "bars": [args.from_bar, args.to_bar], "seed": args.seed}
    print(f"{used} clips, bars {args.from_bar}-{args.to_bar} written anew")
    print(f"{'':<11} {'leap in':>8} {'leap out':>9} {'shared in':>10} {'shared out':>11}")
    for way, r in rows.items():
        fig = {}
        for side in ("in", "out"):
            got = [m for m in r[side] if m]
            fig[f"leap_{side}"] = round(float(np.median([m["leap"] for m in got])), 3) if got else None
            fig[f"shared_{side}"] = round(float(np.median([m["shared"] for m in got])), 3) if got else None
        result[way] = fig
        print(f"{way:<11} {fig['leap_in']!s:>8} {fig['leap_out']!s:>9} {fig['shared_in']!s:>10} "
              f"{fig['shared_out']!s:>11}")
    for way, s in seconds.items():
        result[f"seconds_{way}"] = round(float(np.median(s)), 3) if s else None
    print(f"seconds per infill (median): look-ahead {result['seconds_look-ahead']}, "
          f"one-sided {result['seconds_one-sided']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
