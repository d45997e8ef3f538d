"""Fine-tune on your own music: does a few minutes on 40 jigs move the val loss and the style?

    python benchmarks/finetune.py [--data-root DIR] [--files 40] [--minutes 5] [--seeds 8] [--bars 16]
                                  [--batch-size 4]

Builds a folder of the first `--files` jigs (`jigsN.mid`, all in 6/8) of the Nottingham database's
train split in a temporary directory, fine-tunes the shipped generator on it for `--minutes` with the command's
defaults (`emomusic train generator --data-dir`: lr 3e-5, the schedule fitted to the time) but
`--batch-size` windows a step, and reports the val loss on the folder's held-out files before and
after. Then both generators (the baseline, the shipped one, in the same run) write `--seeds` pieces
each (happy, genre folk, 6/8 asked of both, one candidate, no expression) and each piece's style is
measured against the jigs:

- bar positions: the share of onsets on each eighth of the 6/8 bar (6 bins) or off that grid (a 7th);
  the distance to the jigs' histogram (total variation, 0 = the same, 1 = disjoint);
- melodic intervals: the steps between successive top notes, clipped to ±12 semitones; the same
  distance to the jigs';
- onsets per bar.

The shipped generator saw Nottingham's train split (these jigs included) in training, so the
folder's held-out files are new to the fine-tune only; the loss is also measured on the jigs of
Nottingham's val split, which neither model saw. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

EIGHTHS = 6  # eighth-note slots of a 6/8 bar


def _jigs(data_root: Path, n: int) -> tuple[list[Path], list[Path]]:
    """(the first `n` jigs of Nottingham's train split, every jig of its val split), by number."""
    from emomusic.training.datasets import hash_split

    src = data_root / "nottingham" / "MIDI"
    jigs = sorted(src.glob("jigs*.mid"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    train = [p for p in jigs if hash_split(p.stem) == "train"][:n]
    if len(train) < n:
        raise SystemExit(f"{src}: found {len(train)} jigs in the train split, need {n}")
    return train, [p for p in jigs if hash_split(p.stem) == "val"]


def _copy(paths: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True)
    for p in paths:
        shutil.copy(p, dest / p.name)
    return dest


def _unseen_losses(folder: Path, generators: dict[str, Path]) -> dict[str, float]:
    """Each generator's loss on fixed windows of the jigs in `folder` (all held out), as the run measures."""
    from dataclasses import replace

    from emomusic.checkpoint import load_checkpoint
    from emomusic.generation.network import Generator, GeneratorConfig
    from emomusic.music.tokenizer import MusicTokenizer
    from emomusic.training.finetune import DATASET, read_folder, val_windows
    from emomusic.training.train import evaluate

    out, val = {}, None
    for name, path in generators.items():
        ck = load_checkpoint(path, kind="generator")
        if val is None:
            tk = MusicTokenizer.from_dict(ck.tokenizer)
            data = read_folder(folder, tk, genre="folk").prepared
            data.records = [replace(r, split="val") for r in data.records]
            val = val_windows(data, tk, 512)
        model = Generator(GeneratorConfig.from_dict(ck.config["model"]))
        model.load_state_dict({k: v.float() for k, v in ck.state_dict.items()})
        out[name] = round(evaluate(model, val)[DATASET], 4)
    return out


def _style(notes) -> dict:
    """Bar-position and interval histograms and onsets per bar of one piece (a `Notes`)."""
    start = np.asarray(notes.start, dtype=np.float64)
    pitch = np.asarray(notes.pitch)
    onsets = np.unique(np.round(start, 4))
    bar = float(notes.beats_per_bar)
    slot = (onsets % bar) * 2  # eighth notes from the bar line
    on_grid = np.abs(slot - np.round(slot)) < 1e-3
    pos = np.zeros(EIGHTHS + 1)
    for s, g in zip(np.round(slot).astype(int), on_grid, strict=True):
        pos[s % EIGHTHS if g else EIGHTHS] += 1
    top = np.array([pitch[np.isclose(start, t, atol=1e-4)].max() for t in onsets])
    steps = np.clip(np.diff(top), -12, 12).astype(int) + 12
    intervals = np.bincount(steps, minlength=25).astype(float)
    n_bars = max(1.0, np.ceil((onsets.max() + 1e-6) / bar)) if len(onsets) else 1.0
    return {"positions": pos, "intervals": intervals, "onsets_per_bar": len(onsets) / n_bars,
            "time_signature": "{}/{}".format(*notes.time_signature)}


def _summary(styles: list[dict], ref: dict | None = None) -> dict:
    """Pooled histograms (normalised), mean onsets per bar and, given `ref`, the distances to it."""
    pos = sum(s["positions"] for s in styles)
    iv = sum(s["intervals"] for s in styles)
    out = {"positions": (pos / max(1, pos.sum())).round(4).tolist(),
           "intervals": (iv / max(1, iv.sum())).round(4).tolist(),
           "off_eighth_grid": round(float(pos[EIGHTHS] / max(1, pos.sum())), 4),
           "onsets_per_bar": round(float(np.mean([s["onsets_per_bar"] for s in styles])), 2),
           "time_signatures": sorted({s["time_signature"] for s in styles})}
    if ref is not None:
        for key in ("positions", "intervals"):
            out[f"{key}_tv_to_jigs"] = round(0.5 * float(np.abs(np.array(out[key]) - np.array(ref[key])).sum()), 4)
    return out


def _generate(generator: Path | None, seeds: int, bars: int) -> tuple[list[dict], float]:
    """Each seed's piece from the shipped pipeline (with `generator` instead of its own), and seconds taken."""
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(generator=generator)
    t0 = time.perf_counter()
    styles = []
    for seed in range(seeds):
        cand = em.generate(emotion="happy", genre="folk", time_signature="6/8", bars=bars, seed=seed,
                           expression=False, rank=False)[0]
        styles.append(_style(cand.notes))
    return styles, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA, else ../shared/data)")
    ap.add_argument("--files", type=int, default=40, help="jigs in the folder")
    ap.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time")
    ap.add_argument("--seeds", type=int, default=8, help="pieces generated per model")
    ap.add_argument("--bars", type=int, default=16, help="bars per generated piece")
    # on 2 CPU cores a step of the preset's 16 windows × 512 tokens takes ~13 s: 4 windows give a few
    # minutes ~4x the steps
    ap.add_argument("--batch-size", type=int, default=4, help="training windows per step (the preset's: 16)")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the command's, 3e-5)")
    args = ap.parse_args()

    import torch

    from emomusic.music.beats import real_grid_notes
    from emomusic.settings import checkpoints_root, data_root
    from emomusic.training.finetune import finetune_config, finetune_generator
    from emomusic.training.train import TrainConfig

    with tempfile.TemporaryDirectory(prefix="emomusic-finetune-") as tmp:
        jigs, unseen = _jigs(data_root(args.data_root), args.files)
        folder = _copy(jigs, Path(tmp) / "jigs")
        ref = _summary([_style(real_grid_notes(p)) for p in jigs])
        cfg = finetune_config(TrainConfig(batch_size=args.batch_size))
        cfg.steps, cfg.max_minutes, cfg.fit_steps = 100_000, args.minutes, True
        cfg.lr = args.lr or cfg.lr
        t0 = time.perf_counter()
        out = finetune_generator(folder, checkpoints_root() / "generator", Path(tmp) / "jig_model", cfg=cfg,
                                 genre="folk", device="auto")
        train_s = time.perf_counter() - t0
        metrics = json.loads((out / "config.json").read_text())["metrics"]
        unseen_loss = _unseen_losses(_copy(unseen, Path(tmp) / "unseen"),
                                     {"before": checkpoints_root() / "generator", "after": out})
        base_styles, base_s = _generate(None, args.seeds, args.bars)
        tuned_styles, tuned_s = _generate(out, args.seeds, args.bars)
    res = {"files": args.files, "files_used": metrics["files_used"], "files_val": metrics["files_val"],
           "minutes": args.minutes, "train_seconds": round(train_s, 1), "steps_run": metrics["steps_run"],
           "step_kept": metrics["step"], "batch_size": args.batch_size, "lr": cfg.lr,
           "val_loss_before": metrics["val_loss_before"], "val_loss_after": metrics["val_loss_after"],
           "unseen_jigs": len(unseen), "unseen_loss_before": unseen_loss["before"],
           "unseen_loss_after": unseen_loss["after"],
           "seeds": args.seeds, "bars": args.bars, "jigs": ref,
           "base": _summary(base_styles, ref) | {"generate_seconds": round(base_s, 1)},
           "fine_tuned": _summary(tuned_styles, ref) | {"generate_seconds": round(tuned_s, 1)},
           "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"}
    for name in ("base", "fine_tuned"):
        r = res[name]
        print(f"{name}: bar positions TV {r['positions_tv_to_jigs']:.3f}, "
              f"intervals TV {r['intervals_tv_to_jigs']:.3f}, off the eighth grid {r['off_eighth_grid']:.3f}, "
              f"{r['onsets_per_bar']:.2f} onsets/bar "
              f"(jigs: {ref['off_eighth_grid']:.3f}, {ref['onsets_per_bar']:.2f})")
    print(f"val loss on the folder's {res['files_val']} held-out jigs: {res['val_loss_before']:.4f} → "
          f"{res['val_loss_after']:.4f} after {res['steps_run']} steps ({train_s / 60:.1f} min); on the "
          f"{len(unseen)} jigs of Nottingham's val split (seen by neither): {unseen_loss['before']:.4f} → "
          f"{unseen_loss['after']:.4f}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
