"""Ship a trained generator: copy a run's weights into checkpoints/ with a model card.

    python -m emomusic.training.ship runs/generator checkpoints/generator [--report report/report.json]
    python -m emomusic.training.ship --card-only checkpoints/generator --report report/report.json \
        [--comparison runs/conditioning.json]

--card-only refreshes the shipped card and metrics from a new report without rewriting the weights
(the recognizer and selector pin the generator's weights by SHA-256).

The card (templates `training/cards/generator*.md`) states the data (with licences), steps, tokens
seen per dataset, validation loss and perplexity per dataset, and the controllability report when
one is given.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from emomusic.checkpoint import load_checkpoint, save_checkpoint, update_model_card
from emomusic.evaluation.controllability import summary_table
from emomusic.training.cards import render_card
from emomusic.training.datasets import LICENCES
from emomusic.training.ranking import TUNE_SEED

DATASET_LICENCE = {"emopia": "emopia", "vgmidi": "vgmidi", "vgmidi_v1": "vgmidi", "vgmidi_unl": "vgmidi",
                   "pop909": "pop909", "asap": "asap", "nottingham": "nottingham", "music21": "music21"}


# the card's line for a generator with bar chords (`MusicTokenizer.harmony`, `training.harmony`)
HARMONY_LINE = ("\n- bar chords: a Harmony token after every Bar names the bar's triad (12 roots × major, minor, "
                "diminished, augmented, or none; 49 tokens), labelled in training from the bar's own duration-weighted "
                "pitch classes after transposition; at generation the chord plan hands each bar its chord "
                "(`--progression`, the default). The validation loss below counts those tokens too, so it does not "
                "compare with a generator's without them")


def comparison_section(comparison: dict) -> str:
    """The card section for benchmarks/conditioning.py's JSON: prefix vs. summed-embedding conditioning.

    Args:
        comparison: the JSON `benchmarks/conditioning.py --out` writes (one entry per run in "runs").

    Returns:
        The section's Markdown (no leading or trailing blank line); its verdict follows the numbers.
    """
    runs = {r["conditioning"]: r for r in comparison["runs"]}
    rows = "\n".join(f"| {k} | {r['val_loss_mean']:.3f} | {r['hit_mean']:.3f} | {r['chance_mean']:.3f} | "
                     f"{r['bin_error_mean']:.2f} |" for k, r in runs.items())
    verdict = ""
    if {"prefix", "sum"} <= set(runs):
        better = runs["prefix"]["hit_mean"] >= runs["sum"]["hit_mean"]
        verdict = "\n\nThe shipped model uses the prefix: " + (
            "it controlled at least as well as the summed embedding in this comparison." if better else
            "the summed embedding controlled better in this comparison; the shipped model predates it and the "
            "recognizer and selector are pinned to its weights, so switching means retraining all three.")
    return render_card("generator_comparison", pieces=next(iter(runs.values()))["pieces"], rows=rows,
                       verdict=verdict).rstrip("\n")


def lr_segments(log_path: str | Path) -> list[dict]:
    """The learning-rate history of a run from its log.jsonl: one segment per uninterrupted stretch.

    A new segment starts where the step count goes back (resumed from an earlier save) or the rate
    jumps up after warm-up (resumed with a new schedule, e.g. `--resume --steps N --lr X`).

    Args:
        log_path: the run's log.jsonl.

    Returns:
        One dict per segment: first and last step, peak and final rate.
    """
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    segments: list[dict] = []
    for prev, row in zip([None, *rows], rows, strict=False):
        restart = prev is None or row["step"] != prev["step"] + 1 or (
            row["lr"] > 1.2 * prev["lr"] and prev["lr"] < segments[-1]["lr_max"])  # up again after the peak
        if restart:
            segments.append({"first": row["step"], "last": row["step"], "lr_max": row["lr"], "lr_end": row["lr"]})
        seg = segments[-1]
        seg["last"], seg["lr_end"], seg["lr_max"] = row["step"], row["lr"], max(seg["lr_max"], row["lr"])
    return segments


def _schedule_text(segments: list[dict]) -> str:
    if len(segments) <= 1:
        return "cosine"
    parts = [f"steps {s['first']}–{s['last']}: max {s['lr_max']:.1e} → {s['lr_end']:.1e}" for s in segments]
    return "cosine, resumed between segments (" + "; ".join(parts) + ")"


def controllability_section(report: dict) -> str:
    """The card section for an evaluation report (`emomusic evaluate`'s report.json).

    Args:
        report: the report; its "attributes" method's quality metrics get their own table.

    Returns:
        The section's Markdown (no leading or trailing blank line).
    """
    q = report["methods"].get("attributes", {}).get("quality", {})
    quality = ""
    if q:
        quality = "\n\n" + "\n".join([
            "| metric (attributes method) | generated | real EMOPIA val | OA (Yang & Lerch) | value overlap |",
            "|---|---|---|---|---|",
            *(f"| {k} | {x['generated_mean']:.3f} | {x['real_mean']:.3f} | {x['overlap']:.3f} | "
              f"{x.get('value_overlap', float('nan')):.3f} |" for k, x in q.items())])
    select_n = report["methods"].get("selector", {}).get("selection", {}).get("candidates", 8)
    return render_card("generator_controllability", per_emotion=report["per_emotion"], bars=report["bars"],
                       select_n=select_n,
                       tuning_seed=TUNE_SEED, summary_table="\n".join(summary_table(report)),
                       quality_table=quality).rstrip("\n")


def model_card(ck, report: dict | None, comparison: dict | None = None) -> str:
    """MODEL_CARD.md of a generator (template `training/cards/generator.md`).

    Args:
        ck: the loaded checkpoint (its metrics, config and state dict are read).
        report: an evaluation report for the controllability section, or None to leave it out.
        comparison: benchmarks/conditioning.py's JSON for the conditioning section, or None.

    Returns:
        The card text.
    """
    m = ck.metrics
    cfg = ck.config
    tokens = m.get("tokens_seen", {})
    datasets = sorted(k for k in tokens if k != "all")
    return render_card(
        "generator", parameters_m=sum(v.numel() for v in ck.state_dict.values()) / 1e6,
        model_config=json.dumps(cfg["model"]), steps=m.get("step"), batch_size=cfg["train"]["batch_size"],
        seq_len=cfg["train"]["seq_len"], lr=cfg["train"]["lr"], schedule=_schedule_text(m.get("lr_segments", [])),
        tokens_m=tokens.get("all", 0) / 1e6,
        trained_on=f"; trained on {m['trained_on']}" if m.get("trained_on") else "",
        harmony=HARMONY_LINE if (getattr(ck, "tokenizer", None) or {}).get("harmony") else "",
        data_rows="\n".join(f"| {d} | {tokens[d] / 1e6:.2f} | {LICENCES[DATASET_LICENCE.get(d, d)]} |"
                            for d in datasets),
        validation_rows="\n".join(f"| {d} | {v:.3f} | {math.exp(v):.2f} |"
                                  for d, v in sorted(m.get("val_loss", {}).items())),
        controllability="\n\n" + controllability_section(report) if report else "",
        comparison="\n\n" + comparison_section(comparison) if comparison else "")


def ship(run: str | Path, out: str | Path, report_path: str | Path | None = None, trained_on: str = "") -> Path:
    """Copy a run's last weights to ``out`` as float16 with a model card.

    Args:
        run: the training run folder (its last/ is shipped).
        out: the checkpoint folder to write.
        report_path: `emomusic evaluate`'s report.json for the card, if any.
        trained_on: a hardware note for the card.

    Returns:
        The checkpoint folder.
    """
    ck = load_checkpoint(Path(run) / "last", kind="generator")
    if trained_on:
        ck.metrics["trained_on"] = trained_on
    report = json.loads(Path(report_path).read_text()) if report_path else None
    if (Path(run) / "log.jsonl").exists():
        ck.metrics["lr_segments"] = lr_segments(Path(run) / "log.jsonl")
    metrics = dict(ck.metrics)
    if report:
        metrics["controllability"] = {k: v["accuracy"] for k, v in report["methods"].items()}
    return save_checkpoint(out, kind="generator", config=ck.config, state_dict=ck.state_dict,
                           tokenizer=ck.tokenizer, metrics=metrics, model_card=model_card(ck, report),
                           dtype=torch.float16)


def refresh_card(shipped: str | Path, report_path: str | Path, comparison_path: str | Path | None = None) -> Path:
    """New card + controllability metrics for an already shipped generator; weights untouched.

    Args:
        shipped: the shipped generator's folder.
        report_path: `emomusic evaluate`'s report.json.
        comparison_path: benchmarks/conditioning.py's JSON, if any.

    Returns:
        The checkpoint folder.
    """
    ck = load_checkpoint(shipped, kind="generator")
    report = json.loads(Path(report_path).read_text())
    metrics = {"controllability": {k: v["accuracy"] for k, v in report["methods"].items()}}
    comparison = json.loads(Path(comparison_path).read_text()) if comparison_path else None
    if comparison:
        metrics["conditioning_comparison"] = {r["conditioning"]: {k: r[k] for k in (
            "val_loss_mean", "hit_mean", "chance_mean", "bin_error_mean", "pieces")} for r in comparison["runs"]}
    return update_model_card(shipped, model_card(ck, report, comparison), metrics)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="copy a trained generator into checkpoints/ with its model card")
    ap.add_argument("run", nargs="?", help="training run folder (not with --card-only)")
    ap.add_argument("out")
    ap.add_argument("--report")
    ap.add_argument("--card-only", action="store_true", help="only refresh OUT's card from --report")
    ap.add_argument("--trained-on", default="", help="hardware note for the card, e.g. 'one NVIDIA H100 (41 min)'")
    ap.add_argument("--comparison", help="benchmarks/conditioning.py --out JSON to add to the card (--card-only)")
    a = ap.parse_args()
    if a.card_only:
        if not a.report:
            ap.error("--card-only needs --report")
        print(refresh_card(a.out, a.report, a.comparison))
    else:
        print(ship(a.run, a.out, a.report, a.trained_on))
