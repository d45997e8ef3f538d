"""Prefix tokens vs. EmoGen's summed attribute embedding: which conditioning controls better?

    emomusic train generator --preset compare --conditioning prefix --out runs/compare-prefix
    emomusic train generator --preset compare --conditioning sum --out runs/compare-sum
    python benchmarks/conditioning.py runs/compare-prefix runs/compare-sum [--n 64 --bars 4 --out FILE]

Both runs train the same model size on the same windows (same seed, same steps), so only the way
the condition enters differs. For each run this prints the val loss per dataset and, for `--n`
real val windows, asks for that window's own control bins, samples `--bars` bars with no decoding
guidance (so only the model's conditioning acts) and measures the bins it actually wrote: exact-bin
hit rate per attribute, mean absolute bin error, and the chance level (the achieved bins scored
against another window's targets). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _targets(tk, n: int, seq_len: int) -> list[list[int]]:
    """Condition prefixes (BOS, genre, control bins) of n fixed real val windows across datasets."""
    from emomusic.training.datasets import load_prepared
    from emomusic.training.train import GENERATOR_DATASETS
    from emomusic.training.windows import WindowSampler

    data = load_prepared(GENERATOR_DATASETS)
    val = data.select(data.mask(split="val"))
    sampler = WindowSampler(val, tk, seq_len, augment=False)
    per = -(-n // len(sampler.datasets))
    prefixes = []
    for d in sampler.datasets:
        ids, _ = sampler.fixed_batches(d, per)
        prefixes += [list(row[: 2 + len(tk.control_bins.edges)]) for row in ids]
    return prefixes[:n]


def _achieved(tk, prefix: list[int], tokens: np.ndarray) -> list[int] | None:
    """The condition prefix the generated music would carry (its own measured bins)."""
    from emomusic.music.attributes import compute_controls

    notes = tk.decode(tokens)
    if len(notes) == 0:
        return None
    bins = tk.control_bins.to_bins(compute_controls(notes))
    genre = tk.itos[int(prefix[1])].split("_", 1)[1]
    return tk.condition_ids(genre, controls=bins)


def evaluate_run(run: Path, n: int, bars: int, batch: int = 8) -> dict:
    """Val loss and control fidelity of one training run's last checkpoint."""
    from emomusic.checkpoint import load_checkpoint
    from emomusic.generation.network import load_generator
    from emomusic.generation.sampling import Guidance, sample
    from emomusic.music.attributes import CONTROLS

    model, tk = load_generator(run / "last")
    ck = load_checkpoint(run / "last", kind="generator")
    targets = _targets(tk, n, ck.config["train"]["seq_len"])
    got: list[list[int] | None] = []
    for i in range(0, len(targets), batch):
        chunk = targets[i:i + batch]
        toks = sample(model, tk, chunk, n_bars=bars, guidance=Guidance(time_signature=(4, 4)), seed=i)
        got += [_achieved(tk, p, t) for p, t in zip(chunk, toks, strict=True)]
    names = list(CONTROLS)
    ok = [k for k, g in enumerate(got) if g is not None]
    want = np.array([targets[k][2:] for k in ok])
    have = np.array([got[k][2:] for k in ok])
    other = np.roll(want, 1, axis=0)  # another window's request: the chance level
    # bins are token ids in order within each attribute, so id differences are bin differences
    hit = (want == have).mean(0)
    return {
        "run": str(run), "conditioning": model.config.conditioning, "parameters": model.num_parameters(),
        "step": ck.metrics["step"], "val_loss": ck.metrics.get("val_loss", {}),
        "val_loss_mean": float(np.mean(list(ck.metrics.get("val_loss", {"-": np.nan}).values()))),
        "pieces": len(ok), "hit": dict(zip(names, hit.round(3).tolist(), strict=True)),
        "hit_mean": float(hit.mean()), "chance_mean": float((other == have).mean()),
        "bin_error_mean": float(np.abs(want - have).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--out", type=Path, help="also write the JSON here (for the model card: ship --comparison)")
    args = ap.parse_args()
    results = []
    for run in args.runs:
        r = evaluate_run(run, args.n, args.bars)
        results.append(r)
        print(f"{r['conditioning']:>6} ({run}): val loss mean {r['val_loss_mean']:.3f}, control hit "
              f"{r['hit_mean']:.3f} (chance {r['chance_mean']:.3f}), mean bin error {r['bin_error_mean']:.2f}")
        print("        per attribute: " + ", ".join(f"{k} {v:.2f}" for k, v in r["hit"].items()))
    if args.out:
        args.out.write_text(json.dumps({"runs": results}, indent=1))
    print(json.dumps({"runs": results}))


if __name__ == "__main__":
    main()
