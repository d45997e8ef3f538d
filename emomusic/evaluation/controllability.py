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

from emomusic.evaluation.judge import FeatureJudge, accuracies
from emomusic.evaluation.report import va_from_proba
from emomusic.music.attributes import CONTROLS, compute_attributes
from emomusic.music.metrics import METRICS, all_metrics, overlapping_area, yang_lerch_oa
from emomusic.vocab.emotions import QUADRANTS


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


def _offset_text(report: dict) -> str:
    return f" (offset by {report['seed_offset']:,})" if report.get("seed_offset") else ""


def _selector_pieces(em, q: str, start: int, k: int, bars: int, n: int, judge: FeatureJudge, paired: dict,
                     seed_offset: int = 0) -> list:
    """Pieces start..start+k of quadrant q for "attributes + selector": n candidates each, keep the best.

    Each piece j is one batch of n candidates from seed seed_offset + j + 1 (attributes method). The judge's verdict on
    the batch's first candidate (what one candidate gives at the same seed) and on all n (a random
    candidate's expected accuracy) go to `paired`, so the gain of selection is measured on the same seeds.
    """
    kept = []
    for j in range(start, start + k):
        cands = em.generate(emotion=q, bars=bars, candidates=n, seed=seed_offset + j + 1, method="attributes",
                            rank=False)
        verdicts = [judge.predict(compute_attributes(c.notes))[0] if len(c.notes) else "none" for c in cands]
        paired["first"].append(verdicts[0])
        paired["all"] += verdicts
        paired["true_all"] += [q] * n
        kept.append(em.select(cands, "pop")[0])
    return kept


def _selection_gain(paired: dict, true: list[str], pred: list[str], n: int) -> dict:
    """Judge's accuracy of the kept pieces vs. the first and a random candidate at the same seeds."""
    best, first, rand = accuracies(pred, true), accuracies(paired["first"], true), accuracies(
        paired["all"], paired["true_all"])
    return {"candidates": n, "best": best, "first_candidate": first, "random_candidate": rand,
            "gain_4Q_vs_first": best["4Q"] - first["4Q"], "gain_4Q_vs_random": best["4Q"] - rand["4Q"]}


def evaluate(em, per_emotion: int = 25, methods: tuple[str, ...] | None = None, bars: int = 16,
             batch: int = 25, out: str | Path | None = None, judge: FeatureJudge | None = None,
             select_n: int = 8, seed_offset: int = 0, progression: bool = True) -> dict:
    """Run the protocol and return (and optionally write) the report as a dict.

    `seed_offset` moves every seed: a model or setting chosen on the default seeds can be checked on
    pieces nothing was tuned on.

    methods default to token, attributes and, when `em` has a selector, "selector" (attributes +
    selector: best of `select_n` candidates per piece).

    Args:
        em: the pipeline (EmoMusic) to evaluate.
        per_emotion: pieces per quadrant.
        methods: which of "token", "attributes", "selector" to run.
        bars: bars per piece.
        batch: pieces sampled per call.
        out: folder for report.json, report.md and the plots, or None to write nothing.
        judge: the feature judge (default: the shipped one).
        select_n: candidates per piece for "selector".
        seed_offset: added to every seed.
        progression: generate with chord plans (`GenerationRequest.progression`).

    Returns:
        The report dict.
    """
    from emomusic.settings import checkpoints_root

    methods = methods or ("token", "attributes") + (("selector",) if em.selector is not None else ())
    if "selector" in methods and em.selector is None:
        from emomusic.errors import InvalidInputError

        raise InvalidInputError("no selector in these checkpoints; train one with `emomusic train selector`")

    judge = judge or FeatureJudge.load(checkpoints_root() / "judge")
    real_notes, real_q, real_attr = _real_val(judge)
    report: dict = {"per_emotion": per_emotion, "bars": bars, "seed_offset": seed_offset,
                    "judge_on_real_val": accuracies(judge.predict(real_attr), real_q), "methods": {},
                    "quality_reference": f"EMOPIA val, first {bars} bars"}
    # the metrics depend on length (entropy grows, empty beats accumulate): compare the generated
    # pieces with real openings of the same number of bars, not with whole (longer) clips
    real_metrics = [all_metrics(m) for m in (n.truncate(bars) for n in real_notes) if len(m)]
    for method in methods:
        pred, true, metrics, control_hits, t0, n_tok = [], [], [], {k: [] for k in CONTROLS}, time.time(), 0
        paired: dict = {"first": [], "all": [], "true_all": []}
        points: list[tuple[str, float, float]] = []  # (asked quadrant, judged valence, judged arousal)
        bar = tqdm(total=per_emotion * len(QUADRANTS), desc=f"evaluate {method}")
        for q in QUADRANTS:
            for start in range(0, per_emotion, batch):
                k = min(batch, per_emotion - start)
                # one batch, kept in order: no selection among candidates
                cands = _selector_pieces(em, q, start, k, bars, select_n, judge, paired, seed_offset) \
                    if method == "selector" else em.generate(emotion=q, bars=bars, candidates=k,
                                                             seed=seed_offset + 1000 * start + 1, method=method,
                                                             rank=False, progression=progression)
                for c in cands:
                    n_tok += len(c.tokens)
                    if len(c.notes) == 0:
                        pred.append("none")
                        true.append(q)
                        continue
                    proba = judge.proba(compute_attributes(c.notes))[0]
                    pred.append(QUADRANTS[int(np.argmax(proba))])
                    points.append((q, *(float(x[0]) for x in va_from_proba(proba[None]))))
                    true.append(q)
                    metrics.append(all_metrics(c.notes))
                    if method in ("attributes", "selector"):
                        got = em.tokenizer.control_bins.to_bins(c.measured)
                        for name in CONTROLS:
                            control_hits[name].append(got[name] == c.attributes.controls[name])
                bar.update(k)
        bar.close()
        seconds = time.time() - t0
        confusion = {t: {p: int(sum(1 for a, b in zip(pred, true, strict=True) if b == t and a == p))
                         for p in QUADRANTS} for t in QUADRANTS}
        quality = {m: _quality([x[m] for x in metrics], [x[m] for x in real_metrics]) for m in METRICS}
        report["methods"][method] = {
            "accuracy": accuracies(pred, true), "confusion": confusion, "quality": quality,
            "mean_overlap": float(np.mean([v["overlap"] for v in quality.values()])),
            "mean_value_overlap": float(np.mean([v["value_overlap"] for v in quality.values()])),
            "control_accuracy": {k: float(np.mean(v)) for k, v in control_hits.items() if v},
            "seconds": seconds, "tokens_per_second": n_tok / max(seconds, 1e-9), "pieces": len(pred),
            "seconds_per_piece": seconds / max(len(pred), 1), "points": points,
        }
        if method == "selector":  # tokens/s above counts the kept pieces only
            report["methods"][method]["selection"] = _selection_gain(paired, true, pred, select_n)
    if out is not None:
        write_report(report, Path(out))
    return report


def _quality(generated: list[float], real: list[float]) -> dict[str, float]:
    """One metric of generated vs. real pieces: means, Yang & Lerch's OA (`overlap`, the headline) and
    the overlap of the value distributions themselves (`value_overlap`, stricter)."""
    return {"generated_mean": float(np.mean(generated)), "real_mean": float(np.mean(real)),
            "overlap": yang_lerch_oa(generated, real), "value_overlap": overlapping_area(generated, real)}


def summary_table(report: dict) -> list[str]:
    """Markdown rows: accuracy per method beside the judge on real val (report and model card share it).

    Args:
        report: the report :func:`evaluate` returns.

    Returns:
        Markdown lines.
    """
    r = report["judge_on_real_val"]
    lines = ["| method | 4Q | arousal | valence | mean quality OA (Yang & Lerch) | s/piece |",
             "|---|---|---|---|---|---|",
             f"| (judge on real EMOPIA val) | {r['4Q']:.3f} | {r['arousal']:.3f} | {r['valence']:.3f} | – | – |"]
    for m, v in report["methods"].items():
        a = v["accuracy"]
        lines.append(f"| {m} | {a['4Q']:.3f} | {a['arousal']:.3f} | {a['valence']:.3f} | "
                     f"{v['mean_overlap']:.3f} | {v['seconds'] / max(1, v['pieces']):.2f} |")
    return lines


def write_report(report: dict, out: Path) -> None:
    """report.json, report.md (tables a reader can scan) and the PNG plots it links.

    Args:
        report: the report :func:`evaluate` returns.
        out: the folder to write into (created).
    """
    from emomusic.evaluation.report import confusion_png, va_scatter_png

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    confusion_png({m: v["confusion"] for m, v in report["methods"].items()}, out / "confusion.png")
    va_scatter_png({m: v.get("points", []) for m, v in report["methods"].items()}, out / "va_scatter.png")
    lines = [f"# emomusic controllability report\n\n{report['per_emotion']} pieces per quadrant, "
             f"{report['bars']} bars, fixed seeds{_offset_text(report)}; judged by a feature classifier trained "
             "on EMOPIA train only. "
             f"Quality metrics compare with {report.get('quality_reference', 'EMOPIA val clips')} "
             "(the metrics depend on length). OA = Yang & Lerch's overlapped area of the real set's intra-set "
             "distance PDF and the real × generated inter-set distance PDF (mgeval's protocol); value overlap = "
             "the overlap of the metric values' own distributions (stricter).\n",
             *summary_table(report), "", "![confusion matrices](confusion.png)", "",
             "![valence/arousal of the generated pieces by the judge](va_scatter.png)", ""]
    for m, v in report["methods"].items():
        lines += [f"\n## {m}\n", "Confusion (rows: asked, columns: judged):\n", "| asked | " +
                  " | ".join(QUADRANTS) + " |", "|---" * 5 + "|"]
        lines += [f"| {t} | " + " | ".join(str(v["confusion"][t][p]) for p in QUADRANTS) + " |" for t in QUADRANTS]
        lines += ["\n| metric | generated | real val | OA (Yang & Lerch) | value overlap |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {q['generated_mean']:.3f} | {q['real_mean']:.3f} | {q['overlap']:.3f} | "
                  f"{q.get('value_overlap', float('nan')):.3f} |" for k, q in v["quality"].items()]
        if "selection" in v:
            g = v["selection"]
            lines += [f"\nBest of {g['candidates']} by the selector vs. one candidate at the same seeds "
                      "(judge's accuracy):\n", "| pick | 4Q | arousal | valence |", "|---|---|---|---|"]
            lines += [f"| {name} | {g[key]['4Q']:.3f} | {g[key]['arousal']:.3f} | {g[key]['valence']:.3f} |"
                      for name, key in (("selector's best", "best"), ("first candidate", "first_candidate"),
                                        ("random candidate (mean of all)", "random_candidate"))]
            lines.append(f"\nSelection gain in 4Q accuracy: {100 * g['gain_4Q_vs_first']:+.1f} points over the "
                         f"first candidate, {100 * g['gain_4Q_vs_random']:+.1f} over a random one.")
        if v["control_accuracy"]:
            lines += ["\nPer-attribute control (measured bin equals asked bin):\n", "| attribute | hit rate |",
                      "|---|---|"] + [f"| {k} | {x:.2f} |" for k, x in v["control_accuracy"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
