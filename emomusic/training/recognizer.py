"""Unified training of the symbolic recognizer: teachers per dataset, a student on all, distillation.

The three labelled sets disagree on what a label is: EMOPIA gives quadrants, VGMIDI v2 gives valence
and arousal per piece (graded here by the annotators' continuous curves), VGMIDI v1 gives valence
only. Recipe (the unified-MER idea):

1. one teacher per dataset, trained on that dataset alone (the "single dataset" rows of the ablation);
2. a student on all of them: ground truth where a label exists; where it does not (VGMIDI v1 has no
   arousal and so no quadrant), the soft outputs of the teachers that know that label, with a KL term
   whose weight and temperature are tuned on the validation sets;
3. the ablation single vs unified vs unified + distillation on EMOPIA val and the held-out VGMIDI
   pieces, written into the model card of the shipped checkpoint.

Inputs are cached (backbone embeddings, harmony), so a whole run takes minutes on two CPU cores.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emomusic.emotions import QUADRANTS
from emomusic.models.recognizer import Features, Recognizer, RecognizerConfig, featurise, va_from_logits
from emomusic.music.attributes import ATTRIBUTE_NAMES
from emomusic.training.datasets import Record, cache_root, data_root, load_prepared
from emomusic.training.embeddings import cached_embeddings, generator_sha

log = logging.getLogger(__name__)

__all__ = ["LABELLED", "DistillConfig", "Split", "TrainConfig", "evaluate", "fit", "load_split", "predict",
           "train_recognizer"]

LABELLED = ("emopia", "vgmidi", "vgmidi_v1")
# Which labels each dataset has (so which heads its teacher can be trusted for).
KNOWS = {"emopia": ("quadrant", "valence", "arousal"), "vgmidi": ("quadrant", "valence", "arousal"),
         "vgmidi_v1": ("valence",)}


# ------------------------------------------------------------------------------------ data
@dataclass
class Split:
    """One labelled dataset: model inputs, records and targets (missing labels masked)."""

    name: str
    features: Features
    records: list[Record]
    quadrant: np.ndarray  # (n,) int64 index into QUADRANTS, -1 = no quadrant label
    va: np.ndarray  # (n, 2) float32 targets in [0, 1] (probability that valence/arousal > 0)
    va_mask: np.ndarray  # (n, 2) bool: which of valence/arousal is labelled

    def __len__(self) -> int:
        return len(self.records)

    def where(self, split: str) -> np.ndarray:
        return np.flatnonzero([r.split == split for r in self.records])

    def take(self, idx: np.ndarray) -> Split:
        return Split(self.name, self.features.take(idx), [self.records[i] for i in idx], self.quadrant[idx],
                     self.va[idx], self.va_mask[idx])


def _harmony_cache(name: str, max_chords: int) -> dict[str, np.ndarray]:
    """Harmony summary and chord rows of every prepared piece (decoded from its tokens), cached."""
    from emomusic.music.tokenizer import MusicTokenizer

    dest = cache_root() / "recognizer" / f"{name}-harmony-{max_chords}.npz"
    prepared = load_prepared((name,))
    if dest.exists():
        z = dict(np.load(dest))
        if len(z["harmony"]) == len(prepared.records):
            return z
    tok = MusicTokenizer()
    notes = [tok.decode(prepared.piece(i)) for i in range(len(prepared.records))]
    f = featurise(notes, np.zeros((len(notes), 1), np.float32), max_chords, attributes=prepared.attributes)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp.npz")
    np.savez(tmp, harmony=f.harmony, roots=f.roots, qualities=f.qualities)
    os.replace(tmp, dest)
    return {"harmony": f.harmony, "roots": f.roots, "qualities": f.qualities}


def vgmidi_graded(root: Path | None = None) -> dict[str, tuple[float, float]]:
    """Graded VGMIDI v2 targets per piece stem: P(valence > 0), P(arousal > 0) in [0, 1].

    Half the official ±1 label, half the fraction of annotators whose mean curve value is positive,
    so a piece most annotators heard as clearly sad counts more than one they split on, while the
    official label still decides the side (the two agree on ~96% of pieces).
    """
    base = data_root(root) / "vgmidi"
    labels = {}
    with open(base / "vgmidi_labelled.csv") as fh:
        for row in csv.DictReader(fh):
            labels[Path(row["midi"]).stem.rsplit("_", 1)[0]] = (float(row["valence"]), float(row["arousal"]))
    out = {}
    for path in sorted((base / "labelled" / "annotations").glob("vgmidi_raw_*.json")):
        raw = json.loads(path.read_text())
        by_piece: dict[str, list[dict]] = {}
        for key, ann in raw["annotations"].items():
            by_piece.setdefault(key.rsplit("_", 1)[0], []).append(ann)
        for pid, piece in raw["pieces"].items():
            stem = Path(piece["midi"]).stem
            anns = by_piece.get(pid, [])
            if stem not in labels or not anns:
                continue
            frac = [np.mean([np.mean(a[k]) > 0 for a in anns if a.get(k)]) for k in ("valence", "arousal")]
            out[stem] = tuple(0.5 * (lab > 0) + 0.5 * f for lab, f in zip(labels[stem], frac, strict=True))
    return out


def _targets(records: list[Record], graded: dict[str, tuple[float, float]]) -> tuple[np.ndarray, ...]:
    """(quadrant index, V/A targets, V/A mask) of records; graded VGMIDI targets where available."""
    n = len(records)
    quadrant = np.array([QUADRANTS.index(r.quadrant) if r.quadrant else -1 for r in records], np.int64)
    va = np.zeros((n, 2), np.float32)
    mask = np.zeros((n, 2), bool)
    for i, r in enumerate(records):
        for j, value in enumerate((r.valence, r.arousal)):
            if value is not None:
                va[i, j], mask[i, j] = float(value > 0), True
        stem = Path(r.path).stem.rsplit("_", 1)[0]
        if r.dataset == "vgmidi" and stem in graded:
            va[i] = graded[stem]
    return quadrant, va, mask


def load_split(name: str, max_chords: int = 256, graded: dict | None = None) -> Split:
    """Features (cached embeddings + harmony + prepared attributes) and targets of one labelled set."""
    prepared = load_prepared((name,))
    harm = _harmony_cache(name, max_chords)
    feats = Features(cached_embeddings(name), prepared.attributes.astype(np.float32), harm["harmony"],
                     harm["roots"], harm["qualities"])
    if graded is None:
        graded = vgmidi_graded() if name == "vgmidi" else {}
    return Split(name, feats, prepared.records, *_targets(prepared.records, graded))


# ------------------------------------------------------------------------------------ training
@dataclass
class DistillConfig:
    """Knowledge distillation for missing labels: KL weight and softmax/sigmoid temperature."""

    weight: float = 1.0
    temperature: float = 2.0


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    seed: int = 0
    va_weight: float = 1.0  # loss weight of the valence/arousal head relative to the quadrant head
    model: dict = field(default_factory=dict)  # RecognizerConfig overrides


@dataclass
class _Batchable:
    """Everything the loss needs, concatenated over datasets, as tensors."""

    inputs: dict[str, torch.Tensor]
    quadrant: torch.Tensor
    va: torch.Tensor
    va_mask: torch.Tensor
    weight: torch.Tensor  # per-row weight (balances the datasets)
    soft_q: torch.Tensor | None = None  # teacher logits (n, 4) for rows without a quadrant
    soft_va: torch.Tensor | None = None  # teacher logits (n, 2) for missing V/A


def _batchable(splits: list[Split]) -> _Batchable:
    sizes = np.array([len(s) for s in splits], np.float64)
    # Each dataset weighs like sqrt of its size: small sets are heard without letting them dominate.
    w = np.concatenate([np.full(len(s), np.sqrt(sizes.mean() / n)) for s, n in zip(splits, sizes, strict=True)])
    return _Batchable(
        Features.concat([s.features for s in splits]).tensors(),
        torch.from_numpy(np.concatenate([s.quadrant for s in splits])),
        torch.from_numpy(np.concatenate([s.va for s in splits])),
        torch.from_numpy(np.concatenate([s.va_mask for s in splits])),
        torch.from_numpy(w.astype(np.float32)),
    )


def _loss(model: Recognizer, data: _Batchable, idx: torch.Tensor, cfg: TrainConfig,
          distill: DistillConfig | None) -> torch.Tensor:
    """Ground-truth losses where labels exist + temperature-scaled KL to teachers where they do not."""
    q_logits, va_logits = model(**{k: v[idx] for k, v in data.inputs.items()})
    w = data.weight[idx]
    q, has_q = data.quadrant[idx], data.quadrant[idx] >= 0
    loss = torch.zeros(())
    if has_q.any():
        ce = F.cross_entropy(q_logits[has_q], q[has_q], reduction="none")
        loss = loss + (ce * w[has_q]).sum() / w.sum()
    m = data.va_mask[idx]
    bce = F.binary_cross_entropy_with_logits(va_logits, data.va[idx], reduction="none")
    loss = loss + cfg.va_weight * (bce * m * w[:, None]).sum() / w.sum()
    if distill is None or distill.weight == 0 or data.soft_q is None:
        return loss
    t = distill.temperature
    no_q = ~has_q
    if no_q.any():
        kl = F.kl_div(F.log_softmax(q_logits[no_q] / t, -1), F.log_softmax(data.soft_q[idx][no_q] / t, -1),
                      log_target=True, reduction="none").sum(-1)
        loss = loss + distill.weight * t * t * (kl * w[no_q]).sum() / w.sum()
    p_t = torch.sigmoid(data.soft_va[idx] / t)
    bkl = F.binary_cross_entropy_with_logits(va_logits / t, p_t, reduction="none") - F.binary_cross_entropy(
        p_t, p_t, reduction="none")
    return loss + distill.weight * t * t * (bkl * ~m * w[:, None]).sum() / w.sum()


Teacher = tuple[Recognizer, tuple[str, ...]]  # a model and the labels it was trained on


@torch.no_grad()
def _teacher_logits(teachers: list[Teacher], inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Averaged logits of the teachers that know each label (quadrant; valence; arousal)."""
    outs = [(t.eval()(**inputs), knows) for t, knows in teachers]
    q = torch.stack([o[0] for o, knows in outs if "quadrant" in knows]).mean(0)
    va = torch.stack([torch.stack([o[1][:, j] for o, knows in outs if axis in knows]).mean(0)
                      for j, axis in enumerate(("valence", "arousal"))], dim=-1)
    return q, va


def fit(splits: list[Split], cfg: TrainConfig, teachers: list[Teacher] | None = None,
        distill: DistillConfig | None = None, extra: dict | None = None) -> Recognizer:
    """Train one recognizer on the train rows of `splits` (teachers fill missing labels if given)."""
    torch.manual_seed(cfg.seed)
    data = _batchable(splits)
    model_cfg = RecognizerConfig(**{**cfg.model, **(extra or {})})
    model = Recognizer(model_cfg)
    model.set_normalisation(Features.concat([s.features for s in splits]))
    if teachers:
        data.soft_q, data.soft_va = _teacher_logits(teachers, data.inputs)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(data.weight)
    steps = cfg.epochs * max(1, n // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    step = 0
    while step < steps:
        perm = torch.randperm(n, generator=gen)
        for b in range(0, n - cfg.batch_size + 1, cfg.batch_size):
            loss = _loss(model, data, perm[b:b + cfg.batch_size], cfg, distill)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step >= steps:
                break
    return model.eval()


@torch.inference_mode()
def predict(model: Recognizer, features: Features) -> tuple[np.ndarray, np.ndarray]:
    """(quadrant probabilities (n, 4), valence/arousal in [-1, 1] (n, 2))."""
    q, va = model.eval()(**features.tensors())
    return torch.softmax(q, -1).numpy(), va_from_logits(va).numpy()


def evaluate(model: Recognizer, split: Split) -> dict[str, float]:
    """Accuracies on one split: 4Q (where quadrants exist), valence and arousal sign (where labelled)."""
    probs, va = predict(model, split.features)
    out = {"n": len(split)}
    has_q = split.quadrant >= 0
    if has_q.any():
        out["4Q"] = float((probs.argmax(1)[has_q] == split.quadrant[has_q]).mean())
    for j, axis in enumerate(("valence", "arousal")):
        m = split.va_mask[:, j]
        if m.any():
            out[axis] = float(((va[m, j] > 0) == (split.va[m, j] > 0.5)).mean())
    return out


# ------------------------------------------------------------------------------------ explanation stats
def explanation_stats(splits: list[Split]) -> dict:
    """Mean, std and per-quadrant mean of the explainable attributes over labelled training pieces."""
    from emomusic.attributes.clusterer import EXPLAIN_ATTRIBUTES

    names = [n for n in ATTRIBUTE_NAMES if n in EXPLAIN_ATTRIBUTES or n == "mode"]
    cols = [ATTRIBUTE_NAMES.index(n) for n in names]
    x = np.concatenate([s.features.attributes[:, cols] for s in splits]).astype(np.float64)
    q = np.concatenate([s.quadrant for s in splits])
    return {"names": names, "mean": x.mean(0).round(5).tolist(), "std": np.maximum(x.std(0), 1e-4).round(5).tolist(),
            "quadrant_mean": {qd: (x[q == i] if (q == i).any() else x).mean(0).round(5).tolist()
                              for i, qd in enumerate(QUADRANTS)}}


def save_recognizer(model: Recognizer, directory: str | os.PathLike, metrics: dict | None = None,
                    model_card: str = "") -> Path:
    """Write the recognizer checkpoint (safetensors weights + config with explanation statistics)."""
    from emomusic.checkpoint import save_checkpoint

    return save_checkpoint(directory, kind="recognizer", config={"model": model.config.to_dict()},
                           state_dict=model.state_dict(), metrics=metrics or {}, model_card=model_card)


# ------------------------------------------------------------------------------------ ablation
_EVAL = (("emopia", "EMOPIA val"), ("vgmidi", "VGMIDI v2 held-out pieces"), ("vgmidi_v1", "VGMIDI v1 held-out"))


def _evaluate_all(model: Recognizer, val: dict[str, Split]) -> dict[str, dict[str, float]]:
    return {name: evaluate(model, val[name]) for name in val}


def _score(metrics: dict[str, dict[str, float]]) -> float:
    """Model-selection score on val: EMOPIA 4Q/valence/arousal and VGMIDI valence/arousal, averaged."""
    e, v = metrics["emopia"], metrics["vgmidi"]
    return float(np.mean([e["4Q"], e["valence"], e["arousal"], v["valence"], v["arousal"],
                          metrics["vgmidi_v1"]["valence"]]))


def _mean_metrics(runs: list[dict]) -> dict:
    """Mean and std over seeds of every metric."""
    out: dict = {}
    for name in runs[0]:
        out[name] = {}
        for k in runs[0][name]:
            vals = [r[name][k] for r in runs]
            out[name][k] = round(float(np.mean(vals)), 4) if k == "n" else [round(float(np.mean(vals)), 4),
                                                                            round(float(np.std(vals)), 4)]
    return out


@dataclass
class Ablation:
    rows: dict = field(default_factory=dict)  # setting → {dataset: {metric: [mean, std]}}
    grid: list = field(default_factory=list)  # distillation grid: weight, temperature, val score
    distill: DistillConfig = field(default_factory=DistillConfig)


def run_ablation(train: dict[str, Split], val: dict[str, Split], cfg: TrainConfig, seeds: tuple[int, ...],
                 weights: tuple[float, ...], temperatures: tuple[float, ...], extra: dict) -> tuple[Ablation, dict]:
    """Teachers, unified, distillation grid on val, then every setting over `seeds`.

    Returns the ablation and the fitted seed-0 models by setting name (the shipped one among them).
    """
    ab, models = Ablation(), {}

    def settle(name: str, fitter) -> None:
        runs = []
        for s in seeds:
            m = fitter(replace(cfg, seed=s))
            runs.append(_evaluate_all(m, val))
            if s == seeds[0]:
                models[name] = m
        ab.rows[name] = _mean_metrics(runs)
        log.info("%s: %s", name, json.dumps(ab.rows[name]))

    for name in LABELLED:
        settle(f"single: {name}", lambda c, n=name: fit([train[n]], c, extra=extra))
    teachers = [(models[f"single: {n}"], KNOWS[n]) for n in LABELLED]
    everything = [train[n] for n in LABELLED]
    settle("unified", lambda c: fit(everything, c, extra=extra))
    best = (-1.0, DistillConfig())
    for w in weights:
        for t in temperatures:
            d = DistillConfig(w, t)
            score = _score(_evaluate_all(fit(everything, cfg, teachers, d, extra=extra), val))
            ab.grid.append({"weight": w, "temperature": t, "val_score": round(score, 4)})
            log.info("distillation weight %s temperature %s: val score %.4f", w, t, score)
            best = max(best, (score, d), key=lambda x: x[0])
    ab.distill = best[1]
    settle("unified + distillation", lambda c: fit(everything, c, teachers, ab.distill, extra=extra))
    return ab, models


# ------------------------------------------------------------------------------------ model card
_TRAINED_FOR = {"single: emopia": KNOWS["emopia"], "single: vgmidi": KNOWS["vgmidi"],
                "single: vgmidi_v1": KNOWS["vgmidi_v1"]}


def _cell(setting: str, dataset: str, metric: str, rows: dict) -> str:
    """'0.812 ± 0.010', or '—' for a head the setting never trained (its output is untrained noise)."""
    knows = _TRAINED_FOR.get(setting, ("quadrant", "valence", "arousal"))
    if (metric == "4Q" and "quadrant" not in knows) or (metric != "4Q" and metric not in knows):
        return "—"
    m = rows[setting].get(dataset, {}).get(metric)
    return "" if m is None else f"{m[0]:.3f} ± {m[1]:.3f}"


def ablation_table(ab: Ablation) -> str:
    """Markdown table: settings × (EMOPIA val 4Q/A/V, VGMIDI v2 held-out 4Q/A/V, VGMIDI v1 V)."""
    cols = [("emopia", "4Q"), ("emopia", "arousal"), ("emopia", "valence"), ("vgmidi", "4Q"),
            ("vgmidi", "arousal"), ("vgmidi", "valence"), ("vgmidi_v1", "valence")]
    head = ("| setting | EMOPIA 4Q | EMOPIA arousal | EMOPIA valence | VGMIDI 4Q | VGMIDI arousal | "
            "VGMIDI valence | VGMIDI v1 valence |")
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for setting in ab.rows:
        lines.append(f"| {setting} | " + " | ".join(_cell(setting, d, m, ab.rows) for d, m in cols) + " |")
    return "\n".join(lines)


def model_card(ab: Ablation, shipped: dict, counts: dict, seeds: tuple[int, ...], cfg: TrainConfig,
               seconds: float) -> str:
    """MODEL_CARD.md of the shipped recognizer: data, licence, method, the measured numbers."""
    e, v, v1 = shipped["emopia"], shipped["vgmidi"], shipped["vgmidi_v1"]
    grid = "\n".join(f"| {g['weight']} | {g['temperature']} | {g['val_score']:.4f} |" for g in ab.grid)
    return f"""# emomusic symbolic emotion recognizer

Unified music-emotion recognizer for MIDI: one network with a 4-quadrant head (Russell: Q1 happy,
Q2 tense, Q3 sad, Q4 calm) and a valence/arousal regression head in [-1, 1].

**Inputs.** The shipped generator's backbone embedding of the piece (mean-pooled last layer over up to
{cfg.model.get('max_windows', 2)} windows of 512 tokens; the generator is frozen, so this checkpoint is
only valid with `checkpoints/generator` whose weight hash is recorded in config.json), the 57 musical
attributes, a harmony summary and the beat-synchronous chord sequence normalised to C major / A minor
(Krumhansl–Schmuckler key; chord templates maj/min/dim/aug/sus4/7/maj7/min7), whose roots and
qualities are embedded, convolved over neighbouring beats and mean/max pooled.

**Training data** (song/piece-level splits, never by clip): EMOPIA 1.0 train clips (quadrants),
VGMIDI v2 labelled pieces (valence/arousal, graded by the raw annotation curves: half the official
±1 label, half the fraction of annotators whose mean curve value is positive), VGMIDI v1 phrases
(valence only). Training rows: {counts}. EMOPIA's test split was never used.

**Unified training with distillation.** One teacher per dataset (the "single" rows below), then a
student on all three: ground truth where a label exists; where it does not (VGMIDI v1 has no arousal
and so no quadrant) the averaged soft outputs of the teachers that know that label, through a KL term
(softmax for quadrants, Bernoulli for valence/arousal) scaled by T². KL weight and temperature were
chosen on the validation sets (grid below): **weight {ab.distill.weight}, temperature {ab.distill.temperature}**.

**Licence.** Trained on EMOPIA (CC BY-NC-SA 4.0) and VGMIDI (no licence stated; research use with
citation): these weights are for **non-commercial use** only, with attribution to EMOPIA (Hung et al.,
ISMIR 2021) and VGMIDI (Ferreira & Whitehead, ISMIR 2019).

## Measured (this checkpoint: unified + distillation, seed {seeds[0]})

| set | n | 4Q | arousal | valence |
|---|---|---|---|---|
| EMOPIA val (clips of held-out songs) | {e['n']} | {e['4Q']:.3f} | {e['arousal']:.3f} | {e['valence']:.3f} |
| VGMIDI v2 held-out pieces | {v['n']} | {v['4Q']:.3f} | {v['arousal']:.3f} | {v['valence']:.3f} |
| VGMIDI v1 held-out phrases | {v1['n']} | — | — | {v1['valence']:.3f} |

Accuracy of arousal/valence is the sign of the regression head against the label's sign. Targets on
EMOPIA val were 4Q ≥ 0.75, arousal ≥ 0.90, valence ≥ 0.85; EMOPIA's published symbolic baselines are
LSTM-Attn 0.684 / 0.882 / 0.833 and logistic regression 0.581 / 0.849 / 0.651 (4Q / arousal /
valence, on their test split — ours is val, so the comparison is indicative only).

**Caveat: the validation sets were used for tuning** (network size, epochs, distillation weight and
temperature), so these numbers are optimistic; EMOPIA's test split is held back for a final check.
VGMIDI's held-out sets are small ({v['n']} and {v1['n']} items): a single item is worth several points.

## Ablation (mean ± std over seeds {list(seeds)}; validation data)

"—" marks a head the setting never trained.

{ablation_table(ab)}

Distillation grid (single seed; val score = mean of EMOPIA 4Q/arousal/valence, VGMIDI v2
arousal/valence and VGMIDI v1 valence):

| KL weight | temperature | val score |
|---|---|---|
{grid}

Training took {seconds / 60:.1f} min on 2 shared CPU cores (features cached), `emomusic train recognizer`.
"""


# ------------------------------------------------------------------------------------ entry point
def train_recognizer(out: str | os.PathLike | None = None, seeds: tuple[int, ...] = (0, 1),
                     weights: tuple[float, ...] = (0.5, 2.0), temperatures: tuple[float, ...] = (1.0, 3.0),
                     cfg: TrainConfig | None = None) -> Path:
    """Run the whole recipe and write the shipped checkpoint (default `checkpoints/recognizer`)."""
    from emomusic.pipeline import default_checkpoints

    start = time.time()
    cfg = cfg or TrainConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        splits = {n: load_split(n, cfg.model.get("max_chords", 256)) for n in LABELLED}
        train = {n: s.take(s.where("train")) for n, s in splits.items()}
        val = {n: s.take(s.where("val")) for n, s in splits.items()}
        extra = {"generator_sha": generator_sha(), "explain": explanation_stats([train["emopia"], train["vgmidi"]]),
                 "embed_dim": splits["emopia"].features.embedding.shape[1]}
        ab, models = run_ablation(train, val, cfg, seeds, weights, temperatures, extra)
    finally:
        torch.set_num_threads(threads)
    shipped = models["unified + distillation"]
    metrics = _evaluate_all(shipped, val)
    counts = {n: len(s) for n, s in train.items()}
    card = model_card(ab, metrics, counts, seeds, cfg, time.time() - start)
    out = Path(out) if out else default_checkpoints() / "recognizer"
    save_recognizer(shipped, out, metrics={"val": metrics, "ablation": ab.rows, "distill": asdict(ab.distill),
                                          "grid": ab.grid}, model_card=card)
    return out
