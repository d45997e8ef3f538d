"""How long `emomusic analyze` takes on 100 real MIDI files (EMOPIA val clips, read in place).

Prints the wall time of the whole CLI process (start-up, model load, analysis) and of the analysis
alone through the Python API, per file and as a ratio against the 30-second target.

    python benchmarks/analyze.py [--n 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for the API timing (0 = default)")
    args = ap.parse_args()

    from emomusic.training.datasets import records

    files = [r.path for r in records(datasets=("emopia",)) if r.split == "val"][: args.n]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "emomusic.cli", "analyze", "--json", *files],
                          capture_output=True, text=True, check=False)
    cli = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    print(f"CLI: {len(files)} files, {len(lines)} results, exit {proc.returncode}, {cli:.1f} s "
          f"({cli / len(files) * 1000:.0f} ms/file; {cli / 30:.2f}x the 30 s target)")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from emomusic.recognition.api import EmotionRecognizer

    t0 = time.perf_counter()
    rec = EmotionRecognizer()
    _ = rec.symbolic
    t1 = time.perf_counter()
    rec.recognize(files)
    t2 = time.perf_counter()
    print(f"API: model load {t1 - t0:.1f} s, analysis {t2 - t1:.1f} s ({(t2 - t1) / len(files) * 1000:.0f} ms/file), "
          f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
