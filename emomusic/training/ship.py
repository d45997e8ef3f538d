"""Ship a trained generator: copy a run's weights into checkpoints/ with a model card.

    python -m emomusic.training.ship runs/generator checkpoints/generator [--report report/report.json]
    python -m emomusic.training.ship --card-only checkpoints/generator --report report/report.json

--card-only refreshes the shipped card and metrics from a new report without rewriting the weights
(the recognizer and selector pin the generator's weights by SHA-256).

The card states the data (with licences), steps, tokens seen per dataset, validation loss and
perplexity per dataset, and the controllability report when one is given.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from emomusic.checkpoint import load_checkpoint, save_checkpoint, update_model_card
from emomusic.evaluation.controllability import summary_table
from emomusic.training.datasets import LICENCES

DATASET_LICENCE = {"emopia": "emopia", "vgmidi": "vgmidi", "vgmidi_v1": "vgmidi", "vgmidi_unl": "vgmidi",
                   "pop909": "pop909", "asap": "asap", "nottingham": "nottingham", "music21": "music21"}


def model_card(ck, report: dict | None) -> str:
    m = ck.metrics
    cfg = ck.config
    tokens = m.get("tokens_seen", {})
    datasets = sorted(k for k in tokens if k != "all")
    lines = [
        "# emomusic generator (attribute-conditioned, EmoGen stage 2)", "",
        "Decoder-only transformer (x-transformers, rotary positions) over miditok REMI tokens for one piano "
        "part. Conditioned by a token prefix: genre + 10 binned musical attributes (tempo, mode, tonic, note "
        "density, mean pitch, pitch range, mean velocity, polyphony, mean duration, pitch-class entropy), "
        "each computed on the training window itself; half of the labelled windows carry an EMOPIA-style "
        "emotion token instead, which is the `--method token` baseline (same weights).", "",
        f"- parameters: {sum(v.numel() for v in ck.state_dict.values()) / 1e6:.2f} M; model config: "
        f"`{json.dumps(cfg['model'])}`",
        f"- training: {m.get('step')} steps of {cfg['train']['batch_size']} windows × "
        f"{cfg['train']['seq_len']} tokens, AdamW, lr {cfg['train']['lr']}, cosine; "
        f"{tokens.get('all', 0) / 1e6:.2f} M tokens seen (transposition ±5 and tempo augmentation)",
        "", "## Data and licence", "",
        "| dataset | tokens seen (M) | licence |", "|---|---|---|",
    ]
    lines += [f"| {d} | {tokens[d] / 1e6:.2f} | {LICENCES[DATASET_LICENCE.get(d, d)]} |" for d in datasets]
    lines += ["", "**Licence of these weights: non-commercial use only** (trained on EMOPIA and ASAP, "
              "CC BY-NC-SA 4.0; Nottingham is GPLv3). EMOPIA's test split was never used.", "",
              "## Validation (song-level held-out splits)", "", "| dataset | val loss | perplexity |", "|---|---|---|"]
    for d, v in sorted(m.get("val_loss", {}).items()):
        lines.append(f"| {d} | {v:.3f} | {math.exp(v):.2f} |")
    if report:
        lines += ["", "## Controllability", "",
                  "Sampling uses decoding guidance from the asked attributes (tempo token, key/mode and tonic-"
                  "triad bias, velocity window, closed-loop note-density and register feedback); the token "
                  "baseline gets only its tempo. `selector` = attributes + best of 8 candidates per piece.", "",
                  f"{report['per_emotion']} pieces per quadrant, {report['bars']} bars, fixed seeds, judged by a "
                  "feature classifier trained on EMOPIA train only (checkpoints/judge), never used for selection.",
                  "", *summary_table(report)]
        q = report["methods"].get("attributes", {}).get("quality", {})
        if q:
            lines += ["", "| metric (attributes method) | generated | real EMOPIA val | overlap |", "|---|---|---|---|"]
            lines += [f"| {k} | {x['generated_mean']:.3f} | {x['real_mean']:.3f} | {x['overlap']:.3f} |"
                      for k, x in q.items()]
    return "\n".join(lines) + "\n"


def ship(run: str | Path, out: str | Path, report_path: str | Path | None = None) -> Path:
    ck = load_checkpoint(Path(run) / "last", kind="generator")
    report = json.loads(Path(report_path).read_text()) if report_path else None
    metrics = dict(ck.metrics)
    if report:
        metrics["controllability"] = {k: v["accuracy"] for k, v in report["methods"].items()}
    return save_checkpoint(out, kind="generator", config=ck.config, state_dict=ck.state_dict,
                           tokenizer=ck.tokenizer, metrics=metrics, model_card=model_card(ck, report),
                           dtype=torch.float16)


def refresh_card(shipped: str | Path, report_path: str | Path) -> Path:
    """New card + controllability metrics for an already shipped generator; weights untouched."""
    ck = load_checkpoint(shipped, kind="generator")
    report = json.loads(Path(report_path).read_text())
    metrics = {"controllability": {k: v["accuracy"] for k, v in report["methods"].items()}}
    return update_model_card(shipped, model_card(ck, report), metrics)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="copy a trained generator into checkpoints/ with its model card")
    ap.add_argument("run", nargs="?", help="training run folder (not with --card-only)")
    ap.add_argument("out")
    ap.add_argument("--report")
    ap.add_argument("--card-only", action="store_true", help="only refresh OUT's card from --report")
    a = ap.parse_args()
    if a.card_only:
        if not a.report:
            ap.error("--card-only needs --report")
        print(refresh_card(a.out, a.report))
    else:
        print(ship(a.run, a.out, a.report))
