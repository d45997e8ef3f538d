"""The drum part generator on the Groove MIDI validation split: conditioning, style, fills, timing.

    python benchmarks/drums.py [--checkpoint checkpoints/drums] [--data-root DIR] [--seeds 6]

What is measured (`emomusic.training.drums.evaluate`, the figures the model card ships):

- Real validation grooves (4/4 groove bars of the validation takes, fill-like bars left out): the
  10/50/90% points of hits per bar and of a bar's mean velocity, and the share of hits more than 10 ms
  off the 16th grid (micro-timing and swing).
- Generated: 16-bar parts (fills in bars 7 and 15, crash on bar 0, no ending bar) in rock, funk, jazz,
  latin and hiphop at 90/110/130 BPM, `--seeds` seeds each, for arousal -1, -0.5, 0, 0.5, 1. Hits per
  groove bar (bars 0, 8 and the fill and post-fill bars left out) and mean velocity per arousal, and
  whether each rises monotonically; the off-grid share of the generated grooves.
- Style: a nearest-centroid classifier over those five families (features: 16th-grid hit map per drum
  class and each class's mean velocity), fitted on the train groove bars. Balanced accuracy on the real
  validation bars is the reference (and on train bars, which the bank's bars are); then the share of
  generated groove bars classified as the style asked (chance 0.2).
- Fills: hits and tom hits per bar in the fill bars against the groove bars, and the share of parts
  whose fill bars are busier than their grooves.
- Speed: median ms to generate 16 bars (4 fills, 2 crashes, ending) over 20 seeds.

The test split is not read. Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.arrangement.drums import load_drums  # noqa: E402
from emomusic.training.drums import AROUSALS, evaluate  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "drums"))
    ap.add_argument("--data-root")
    ap.add_argument("--seeds", type=int, default=6)
    a = ap.parse_args(argv)
    r = evaluate(load_drums(a.checkpoint), a.data_root, a.seeds)

    print(f"real validation grooves ({r['val_groove_bars']} bars): hits/bar 10-50-90% "
          f"{r['real_hits_per_bar_p10']:.0f}-{r['real_hits_per_bar_p50']:.0f}-{r['real_hits_per_bar_p90']:.0f}, "
          f"mean velocity {r['real_velocity_p10']:.1f}-{r['real_velocity_p50']:.1f}-{r['real_velocity_p90']:.1f}, "
          f"off the 16th grid by >10 ms {r['real_off_grid_10ms']:.3f}")
    print()
    print("| arousal | hits/bar | mean velocity |")
    print("|---|---|---|")
    for x in AROUSALS:
        print(f"| {x:+.1f} | {r[f'gen_hits_per_bar_a{x:+.1f}']:.2f} | {r[f'gen_velocity_a{x:+.1f}']:.1f} |")
    print(f"| monotone | {r['hits_monotone']} | {r['velocity_monotone']} |")
    print()
    print("| figure | value |")
    print("|---|---|")
    rows = [("generated off the grid by >10 ms", r["gen_off_grid_10ms"]),
            ("style accuracy, real validation bars (balanced)", r["style_acc_real_val"]),
            ("style accuracy, real train bars (balanced)", r["style_acc_real_train"]),
            ("style accuracy, generated bars, style asked", r["style_acc_generated"]),
            ("style chance", r["style_chance"]),
            ("hits/bar: generated fill bars", r["gen_fill_hits_per_bar"]),
            ("hits/bar: generated groove bars", r["gen_groove_hits_per_bar"]),
            ("hits/bar: real validation fill takes", r["real_fill_hits_per_bar"]),
            ("toms/bar: generated fill bars", r["gen_fill_toms_per_bar"]),
            ("toms/bar: generated groove bars", r["gen_groove_toms_per_bar"]),
            ("share of parts whose fills are busier than their grooves", r["gen_fill_busier_share"]),
            ("ms to generate 16 bars (median)", r["ms_16_bars_median"])]
    for name, v in rows:
        print(f"| {name} | {v:.3f} |")
    print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
