"""Controllability and quality report: does music generated for an emotion sound like it?

For each quadrant, generate N pieces per method with fixed seeds, classify them with the
independent feature judge (EMOPIA train only; never used for selection), and report 4Q /
arousal / valence accuracy beside the judge's accuracy on real EMOPIA val clips. Per-attribute
controllability (asked bin vs. measured bin) and objective quality metrics against real val music
(Yang & Lerch overlapping area) come in the same run.

    emomusic evaluate --per-emotion 25 --out report/
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emomusic.emotions import QUADRANTS
from emomusic.evaluation.judge import FeatureJudge, accuracies
from emomusic.evaluation.metrics import METRICS, all_metrics, overlapping_area
from emomusic.music.attributes import CONTROLS, compute_attributes


def _real_val(judge: FeatureJudge):
    """EMOPIA val clips (decoded from the prepared cache) for the judge and quality baselines."""
    from emomusic.music.tokenizer import MusicTokenizer
    from emomusic.training.datasets import load_prepared, prepare

    prepare(None, ("emopia",))
    data = load_prepared(("emopia",))
    val = np.flatnonzero(data.mask(split="val"))
    tk = MusicTokenizer()
    notes = [tk.decode(data.piece(int(i)).astype(np.int64)) for i in val]
    quads = [data.records[int(i)].quadrant for i in val]
    return notes, quads, data.attributes[val]


def evaluate(em, per_emotion: int = 25, methods: tuple[str, ...] = ("token", "attributes"), bars: int = 16,
             batch: int = 25, out: str | Path | None = None, judge: FeatureJudge | None = None) -> dict:
    """Run the protocol and return (and optionally write) the report as a dict."""
    from emomusic.pipeline import default_checkpoints

    judge = judge or FeatureJudge.load(default_checkpoints() / "judge")
    real_notes, real_q, real_attr = _real_val(judge)
    report: dict = {"per_emotion": per_emotion, "bars": bars, "judge_on_real_val": accuracies(
        judge.predict(real_attr), real_q), "methods": {}}
    real_metrics = [all_metrics(n) for n in real_notes if len(n)]
    for method in methods:
        pred, true, metrics, control_hits, t0, n_tok = [], [], [], {k: [] for k in CONTROLS}, time.time(), 0
        bar = tqdm(total=per_emotion * len(QUADRANTS), desc=f"evaluate {method}")
        for q in QUADRANTS:
            for start in range(0, per_emotion, batch):
                k = min(batch, per_emotion - start)
                # one batch, kept in order: no selection among candidates
                cands = em.generate(emotion=q, bars=bars, candidates=k, seed=1000 * start + 1, method=method,
                                    rank=False)
                for c in cands:
                    n_tok += len(c.tokens)
                    if len(c.notes) == 0:
                        pred.append("none")
                        true.append(q)
                        continue
                    pred.append(judge.predict(compute_attributes(c.notes))[0])
                    true.append(q)
                    metrics.append(all_metrics(c.notes))
                    if method == "attributes":
                        got = em.tokenizer.control_bins.to_bins(c.measured)
                        for name in CONTROLS:
                            control_hits[name].append(got[name] == c.attributes.controls[name])
                bar.update(k)
        bar.close()
        seconds = time.time() - t0
        confusion = {t: {p: int(sum(1 for a, b in zip(pred, true, strict=True) if b == t and a == p))
                         for p in QUADRANTS} for t in QUADRANTS}
        quality = {m: {"generated_mean": float(np.mean([x[m] for x in metrics])),
                       "real_mean": float(np.mean([x[m] for x in real_metrics])),
                       "overlap": overlapping_area([x[m] for x in metrics], [x[m] for x in real_metrics])}
                   for m in METRICS}
        report["methods"][method] = {
            "accuracy": accuracies(pred, true), "confusion": confusion, "quality": quality,
            "mean_overlap": float(np.mean([v["overlap"] for v in quality.values()])),
            "control_accuracy": {k: float(np.mean(v)) for k, v in control_hits.items() if v},
            "seconds": seconds, "tokens_per_second": n_tok / max(seconds, 1e-9), "pieces": len(pred),
        }
    if out is not None:
        write_report(report, Path(out))
    return report


def summary_table(report: dict) -> list[str]:
    """Markdown rows: accuracy per method beside the judge on real val (report and model card share it)."""
    r = report["judge_on_real_val"]
    lines = ["| method | 4Q | arousal | valence | mean quality overlap (Yang & Lerch) | s/piece |",
             "|---|---|---|---|---|---|",
             f"| (judge on real EMOPIA val) | {r['4Q']:.3f} | {r['arousal']:.3f} | {r['valence']:.3f} | – | – |"]
    for m, v in report["methods"].items():
        a = v["accuracy"]
        lines.append(f"| {m} | {a['4Q']:.3f} | {a['arousal']:.3f} | {a['valence']:.3f} | "
                     f"{v['mean_overlap']:.3f} | {v['seconds'] / max(1, v['pieces']):.2f} |")
    return lines


def write_report(report: dict, out: Path) -> None:
    """report.json and report.md (tables a reader can scan)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = [f"# emomusic controllability report\n\n{report['per_emotion']} pieces per quadrant, "
             f"{report['bars']} bars, fixed seeds; judged by a feature classifier trained on EMOPIA train only.\n",
             *summary_table(report)]
    for m, v in report["methods"].items():
        lines += [f"\n## {m}\n", "Confusion (rows: asked, columns: judged):\n", "| asked | " +
                  " | ".join(QUADRANTS) + " |", "|---" * 5 + "|"]
        lines += [f"| {t} | " + " | ".join(str(v["confusion"][t][p]) for p in QUADRANTS) + " |" for t in QUADRANTS]
        lines += ["\n| metric | generated | real val | overlapping area |", "|---|---|---|---|"]
        lines += [f"| {k} | {q['generated_mean']:.3f} | {q['real_mean']:.3f} | {q['overlap']:.3f} |"
                  for k, q in v["quality"].items()]
        if v["control_accuracy"]:
            lines += ["\nPer-attribute control (measured bin equals asked bin):\n", "| attribute | hit rate |",
                      "|---|---|"] + [f"| {k} | {x:.2f} |" for k, x in v["control_accuracy"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
