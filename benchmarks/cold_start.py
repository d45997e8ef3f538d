"""CLI cold start: process start → written file for `emomusic generate --emotion calm`.

    python benchmarks/cold_start.py [--repeats 3] [--bars 16]

Also, interleaved and as medians: `generate --prompt "a rainy lonely night"` against `generate --emotion
sad` (the text prompt's sentence encoder is the difference; issue target: at most 1.6×), and
`generate --candidates 8` against one candidate (sampling 8 rows and the selector; target: at most 3×).

Baseline in the same run: the bare interpreter importing torch (the floor any CLI that imports torch
pays; the generate path reads its checkpoints as numpy arrays and never imports it). It also checks
that the path imports none of the heavy optional stacks (librosa, gradio, sentence-transformers,
transformers, PyAV, matplotlib), and whether it imported torch. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("librosa", "gradio", "sentence_transformers", "transformers", "av", "matplotlib", "PIL", "x_transformers",
         "torch._dynamo")

PROBE = """
import sys
from emomusic.cli import main
code = main(sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
print("TORCH=" + str("torch" in sys.modules))
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


def _best(cmd: list[str], repeats: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - t0)
        out = proc.stdout
    return best, out


def _interleaved(cmds: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Median wall time of each command, run in turns so the machine's drift hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, text=True, check=True)
            times[name].append(time.perf_counter() - t0)
    return {k: float(sorted(v)[len(v) // 2]) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bars", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "calm.mid"
        gen = [sys.executable, "-c", PROBE.format(heavy=HEAVY), "generate", "--emotion", "calm", "--bars",
               str(args.bars), "--seed", "1", "--force", "--out", str(out)]
        cli_s, stdout = _best(gen, args.repeats)
        assert out.is_file(), "no file written"
        torch_s, _ = _best([sys.executable, "-c", "import torch"], args.repeats)
        help_s, _ = _best([sys.executable, "-m", "emomusic.cli", "--help"], args.repeats)
        base = [sys.executable, "-m", "emomusic.cli", "generate", "--bars", str(args.bars), "--seed", "6", "--force"]
        pair = _interleaved({"emotion": [*base, "--emotion", "sad", "--out", str(Path(tmp) / "e.mid")],
                             "prompt": [*base, "--prompt", "a rainy lonely night", "--out", str(Path(tmp) / "p.mid")],
                             "best_of_8": [*base, "--emotion", "sad", "--candidates", "8",
                                           "--out", str(Path(tmp) / "b.mid")]},
                            max(3, args.repeats))
    heavy = stdout.rsplit("HEAVY=", 1)[-1].strip()
    torch_on_path = stdout.rsplit("TORCH=", 1)[-1].split()[0] == "True"
    res = {"generate_cold_start_s": cli_s, "import_torch_s": torch_s, "cli_help_s": help_s, "bars": args.bars,
           "heavy_imports": [m for m in heavy.split(",") if m], "torch_imported": torch_on_path,
           "ratio_to_torch_import": cli_s / torch_s, "emotion_sad_median_s": pair["emotion"],
           "prompt_median_s": pair["prompt"], "prompt_over_emotion": pair["prompt"] / pair["emotion"],
           "best_of_8_median_s": pair["best_of_8"], "best_of_8_over_one": pair["best_of_8"] / pair["emotion"]}
    print(f"`emomusic generate --emotion calm --bars {args.bars}`: {cli_s:.2f} s from process start to file "
          f"(baseline `python -c 'import torch'`: {torch_s:.2f} s; `emomusic --help`: {help_s:.2f} s)")
    print(f"heavy optional modules imported on that path: {res['heavy_imports'] or 'none'}; "
          f"torch imported: {'yes' if torch_on_path else 'no'}")
    print(f"`generate --prompt \"a rainy lonely night\"` {pair['prompt']:.2f} s vs `generate --emotion sad` "
          f"{pair['emotion']:.2f} s (medians, interleaved): {res['prompt_over_emotion']:.2f}x (target <= 1.6)")
    print(f"`generate --candidates 8` {pair['best_of_8']:.2f} s vs one piece {pair['emotion']:.2f} s: "
          f"{res['best_of_8_over_one']:.2f}x (target <= 3)")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}))


if __name__ == "__main__":
    main()
