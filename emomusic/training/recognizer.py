"""Unified training of the symbolic recognizer: teachers per dataset, a student on all, distillation.

The three labelled sets disagree on what a label is: EMOPIA gives quadrants, VGMIDI v2 gives valence
and arousal per piece (graded here by the annotators' continuous curves), VGMIDI v1 gives valence
only. Recipe (the unified-MER idea):

1. one teacher per dataset, trained on that dataset alone (the "single dataset" rows of the ablation);
2. a student on all of them: ground truth where a label exists; where it does not (VGMIDI v1 has no
   arousal and so no quadrant), the soft outputs of the teachers that know that label, with a KL term
   whose weight and temperature are chosen by cross-validation over the training songs;
3. the ablation single vs unified vs unified + distillation on EMOPIA val and the held-out VGMIDI
   pieces, written into the model card of the shipped checkpoint.

Inputs are cached (backbone embeddings, harmony), so a whole run takes minutes on a CPU (the card
records how long).
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
from tqdm import tqdm

from emomusic.evaluation.stats import group_bootstrap_ci, group_folds
from emomusic.generation.checkpoint import generator_sha
from emomusic.io import atomic_write
from emomusic.music.attributes import ATTRIBUTE_NAMES
from emomusic.recognition.model import Features, Recognizer, RecognizerConfig, featurise, va_from_logits
from emomusic.training.cards import render_card
from emomusic.training.datasets import Record, cache_root, data_root, load_prepared
from emomusic.training.embeddings import cached_embeddings
from emomusic.vocab.emotions import QUADRANTS

log = logging.getLogger(__name__)

__all__ = ["LABELLED", "DistillConfig", "Split", "TrainConfig", "accuracies", "cross_validate", "evaluate", "fit",
           "fold_splits", "largest_group", "load_split", "predict", "train_recognizer", "val_report"]

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
    atomic_write(dest, lambda tmp: np.savez(tmp, harmony=f.harmony, roots=f.roots, qualities=f.qualities), force=True)
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
    """Features (cached embeddings + harmony + prepared attributes) and targets of one labelled set.

    Args:
        name: "emopia", "vgmidi" or "vgmidi_v1".
        max_chords: beat chords kept per piece.
        graded: VGMIDI v2 graded targets (default: read from the data).

    Returns:
        The set's Split (train and val rows).
    """
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
    """Train one recognizer on the train rows of `splits` (teachers fill missing labels if given).

    Args:
        splits: the labelled sets.
        cfg: training settings.
        teachers: per-dataset models whose outputs fill missing labels.
        distill: KL weight and temperature (with teachers).
        extra: config entries stored with the model (generator hash, explanation statistics).

    Returns:
        The trained recognizer.
    """
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
    """(quadrant probabilities (n, 4), valence/arousal in [-1, 1] (n, 2)).

    Args:
        model: the recognizer.
        features: the rows to predict.

    Returns:
        (probabilities, valence/arousal).
    """
    q, va = model.eval()(**features.tensors())
    return torch.softmax(q, -1).numpy(), va_from_logits(va).numpy()


def accuracies(probs: np.ndarray, va: np.ndarray, split: Split, ci: bool = False) -> dict:
    """4Q (where quadrants exist), valence and arousal sign accuracy (where labelled) of predictions.

    With `ci`, each accuracy also gets a 95% interval ("<metric>_ci") from a bootstrap over the
    split's songs/pieces (`Record.group`), since clips of one song are not independent.
    """
    out: dict = {"n": len(split)}
    groups = np.array([r.group for r in split.records], dtype=object)
    hits = {}
    has_q = split.quadrant >= 0
    if has_q.any():
        hits["4Q"] = (probs.argmax(1) == split.quadrant)[has_q], groups[has_q]
    for j, axis in enumerate(("valence", "arousal")):
        m = split.va_mask[:, j]
        if m.any():
            hits[axis] = ((va[:, j] > 0) == (split.va[:, j] > 0.5))[m], groups[m]
    for name, (hit, grp) in hits.items():
        out[name] = float(hit.mean())
        if ci:
            out[f"{name}_ci"] = [round(v, 4) for v in group_bootstrap_ci(hit, list(grp))]
    return out


def evaluate(model: Recognizer, split: Split, ci: bool = False) -> dict:
    """Accuracies of `model` on one split (see `accuracies`)."""
    return accuracies(*predict(model, split.features), split, ci=ci)


def largest_group(split: Split) -> tuple[str, int, Split]:
    """The song/piece with the most items, how many it has, and the split without it.

    EMOPIA val's largest "song" is one YouTube recording holding 32 of its 198 clips, labelled with
    all four quadrants; reporting the split without it shows how much one recording moves the headline.
    """
    groups = [r.group for r in split.records]
    names, counts = np.unique(groups, return_counts=True)
    top = str(names[np.argmax(counts)])
    return top, int(counts.max()), split.take(np.flatnonzero([g != top for g in groups]))


def val_report(model: Recognizer, val: dict[str, Split]) -> dict[str, dict]:
    """Accuracies with song intervals on every validation set, plus EMOPIA val without its largest song.

    Args:
        model: the recognizer.
        val: dataset → validation Split.

    Returns:
        dataset → accuracies (with "_ci" intervals).
    """
    out: dict = {name: evaluate(model, split, ci=True) for name, split in val.items()}
    group, removed, rest = largest_group(val["emopia"])
    labels = [r.quadrant for r in val["emopia"].records if r.group == group]
    quadrants = ", ".join(f"{q} × {labels.count(q)}" for q in QUADRANTS if q in labels)
    out["emopia_without_largest_song"] = {"group": group, "n_removed": removed, "quadrants": quadrants,
                                          **evaluate(model, rest, ci=True)}
    return out


# ------------------------------------------------------------------------------------ cross-validation
def fold_splits(train: dict[str, Split], folds: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Fold index of every training row, per dataset, keeping each song/piece in one fold.

    Folds are drawn over the union of all datasets' groups, so a VGMIDI piece whose v2 labels and
    v1 phrases share a group key lands in the same fold in both listings.
    """
    names = list(train)
    groups = [r.group for n in names for r in train[n].records]
    fold = group_folds(groups, folds, seed)
    out, at = {}, 0
    for n in names:
        out[n] = fold[at:at + len(train[n])]
        at += len(train[n])
    return out


def _empty_predictions(train: dict[str, Split]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {n: (np.zeros((len(sp), 4), np.float32), np.zeros((len(sp), 2), np.float32)) for n, sp in train.items()}


def _predict_held(model: Recognizer, train: dict[str, Split], held: dict[str, np.ndarray],
                  out: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write `model`'s predictions for the held-out rows of every dataset into `out`."""
    for n, idx in held.items():
        if len(idx):
            out[n][0][idx], out[n][1][idx] = predict(model, train[n].features.take(idx))


def cross_validate(train: dict[str, Split], cfg: TrainConfig, distills: list[DistillConfig | None], folds: int,
                   extra: dict) -> tuple[dict[str, dict[str, dict]], list[dict[str, dict]]]:
    """Out-of-fold accuracies of the per-dataset teachers and of the unified student per setting.

    Returns ({"single: <dataset>": accuracies by dataset}, [accuracies by dataset per entry of
    `distills`]), where None in `distills` is the unified student without teachers. For every fold,
    the teachers and the students are trained on the other folds only, so choosing a setting by
    these scores never looks at the validation sets, and every item is scored by models that never
    saw its song.
    """
    fold = fold_splits(train, folds, cfg.seed)
    singles = {n: _empty_predictions(train) for n in train}
    students = [_empty_predictions(train) for _ in distills]
    for k in tqdm(range(folds), desc="recognizer cross-validation", leave=False):
        inner = {n: sp.take(np.flatnonzero(fold[n] != k)) for n, sp in train.items()}
        held = {n: np.flatnonzero(fold[n] == k) for n in train}
        teachers = [(fit([inner[n]], cfg, extra=extra), KNOWS[n]) for n in train]
        for n, (teacher, _) in zip(train, teachers, strict=True):
            _predict_held(teacher, train, held, singles[n])
        for d, out in zip(distills, students, strict=True):
            _predict_held(fit(list(inner.values()), cfg, teachers if d else None, d, extra=extra), train, held, out)

    def score(out: dict) -> dict[str, dict]:
        return {n: accuracies(*out[n], train[n]) for n in train}

    return {f"single: {n}": score(out) for n, out in singles.items()}, [score(out) for out in students]


# ------------------------------------------------------------------------------------ explanation stats
def explanation_stats(splits: list[Split]) -> dict:
    """Mean, std and per-quadrant mean of the explainable attributes over labelled training pieces."""
    from emomusic.conditioning.clusterer import EXPLAIN_ATTRIBUTES

    names = [n for n in ATTRIBUTE_NAMES if n in EXPLAIN_ATTRIBUTES or n == "mode"]
    cols = [ATTRIBUTE_NAMES.index(n) for n in names]
    x = np.concatenate([s.features.attributes[:, cols] for s in splits]).astype(np.float64)
    q = np.concatenate([s.quadrant for s in splits])
    return {"names": names, "mean": x.mean(0).round(5).tolist(), "std": np.maximum(x.std(0), 1e-4).round(5).tolist(),
            "quadrant_mean": {qd: (x[q == i] if (q == i).any() else x).mean(0).round(5).tolist()
                              for i, qd in enumerate(QUADRANTS)}}


def save_recognizer(model: Recognizer, directory: str | os.PathLike, metrics: dict | None = None,
                    model_card: str = "") -> Path:
    """Write the recognizer checkpoint (safetensors weights + config with explanation statistics).

    Args:
        model: the recognizer.
        directory: the checkpoint folder.
        metrics: figures for config.json.
        model_card: the card text.

    Returns:
        The checkpoint folder.
    """
    from emomusic.checkpoint import save_checkpoint

    return save_checkpoint(directory, kind="recognizer", config={"model": model.config.to_dict()},
                           state_dict=model.state_dict(), metrics=metrics or {}, model_card=model_card)


# ------------------------------------------------------------------------------------ ablation
def _evaluate_all(model: Recognizer, val: dict[str, Split]) -> dict[str, dict[str, float]]:
    return {name: evaluate(model, val[name]) for name in val}


def _score(metrics: dict[str, dict[str, float]]) -> float:
    """Model-selection score: EMOPIA 4Q/valence/arousal, VGMIDI v2 valence/arousal, v1 valence, averaged.

    Computed on out-of-fold predictions over the training songs (`cross_validate`).
    """
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
    grid: list = field(default_factory=list)  # distillation grid: weight, temperature, cross-validated score
    distill: DistillConfig = field(default_factory=DistillConfig)
    cv_rows: dict = field(default_factory=dict)  # setting → {dataset: {metric: value}}, out of fold
    folds: int = 5
    songs: dict = field(default_factory=dict)  # EMOPIA songs in train and val

    @property
    def cv(self) -> dict:
        """Out-of-fold accuracies of the chosen (shipped) setting, per dataset."""
        return self.cv_rows["unified + distillation"]


def run_ablation(train: dict[str, Split], val: dict[str, Split], cfg: TrainConfig, seeds: tuple[int, ...],
                 weights: tuple[float, ...], temperatures: tuple[float, ...], extra: dict,
                 folds: int = 5) -> tuple[Ablation, dict]:
    """Teachers, unified, distillation grid by song-level cross-validation, then every setting over `seeds`.

    The grid is scored out of fold on the training songs (`cross_validate`), so the validation sets
    only measure. Returns the ablation and the fitted seed-0 models by setting name.
    """
    ab, models = Ablation(folds=folds), {}
    ab.songs = {part: len({r.group for r in splits["emopia"].records}) for part, splits in (("train", train),
                                                                                              ("val", val))}

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
    grid = [DistillConfig(w, t) for w in weights for t in temperatures]
    singles, (plain, *scored) = cross_validate(train, cfg, [None, *grid], folds, extra)
    for d, metrics in zip(grid, scored, strict=True):
        score = _score(metrics)
        ab.grid.append({"weight": d.weight, "temperature": d.temperature, "cv_score": round(score, 4)})
        log.info("distillation weight %s temperature %s: cross-validated score %.4f", d.weight, d.temperature, score)
    best = int(np.argmax([g["cv_score"] for g in ab.grid]))
    ab.distill = grid[best]
    ab.cv_rows = {**singles, "unified": plain, "unified + distillation": scored[best]}
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
    if m is None:
        return ""
    return f"{m:.3f}" if isinstance(m, float) else f"{m[0]:.3f} ± {m[1]:.3f}"


def ablation_table(rows: dict) -> str:
    """Markdown table: settings × (EMOPIA 4Q/A/V, VGMIDI v2 4Q/A/V, VGMIDI v1 V).

    `rows` maps a setting to {dataset: {metric: [mean, std] or a single value}}.
    """
    cols = [("emopia", "4Q"), ("emopia", "arousal"), ("emopia", "valence"), ("vgmidi", "4Q"),
            ("vgmidi", "arousal"), ("vgmidi", "valence"), ("vgmidi_v1", "valence")]
    head = ("| setting | EMOPIA 4Q | EMOPIA arousal | EMOPIA valence | VGMIDI 4Q | VGMIDI arousal | "
            "VGMIDI valence | VGMIDI v1 valence |")
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for setting in rows:
        lines.append(f"| {setting} | " + " | ".join(_cell(setting, d, m, rows) for d, m in cols) + " |")
    return "\n".join(lines)


def _ci(m: dict, metric: str) -> str:
    """'0.783 (0.71–0.87)': an accuracy with its song-bootstrap interval when there is one."""
    lo_hi = m.get(f"{metric}_ci")
    return f"{m[metric]:.3f}" + (f" ({lo_hi[0]:.2f}–{lo_hi[1]:.2f})" if lo_hi else "")


def model_card(ab: Ablation, shipped: dict, counts: dict, seeds: tuple[int, ...], cfg: TrainConfig,
               seconds: float) -> str:
    """MODEL_CARD.md of the shipped recognizer (template `training/cards/recognizer.md`).

    Args:
        ab: the ablation (settings × datasets, distillation grid, out-of-fold rows).
        shipped: `val_report` of the shipped model, per validation set.
        counts: training rows per dataset.
        seeds: the ablation's seeds (the first is the shipped model's).
        cfg: the training configuration.
        seconds: how long the whole recipe took.

    Returns:
        The card text.
    """
    e, v, v1 = shipped["emopia"], shipped["vgmidi"], shipped["vgmidi_v1"]
    big = shipped["emopia_without_largest_song"]
    metrics = ("4Q", "arousal", "valence")
    return render_card(
        "recognizer", max_windows=cfg.model.get("max_windows", 2), counts=counts, folds=ab.folds,
        distill=ab.distill, seed=seeds[0], seeds=list(seeds), e=e, v=v, v1=v1, big=big,
        e_ci={m: _ci(e, m) for m in metrics}, big_ci={m: _ci(big, m) for m in metrics},
        v_ci={m: _ci(v, m) for m in metrics}, v1_ci={"valence": _ci(v1, "valence")},
        cv_e=ab.cv["emopia"], cv_v=ab.cv["vgmidi"], cv_v1=ab.cv["vgmidi_v1"], ablation=ablation_table(ab.rows),
        cv_seed=cfg.seed, songs=ab.songs, cv_ablation=ablation_table(ab.cv_rows),
        grid="\n".join(f"| {g['weight']} | {g['temperature']} | {g['cv_score']:.4f} |" for g in ab.grid),
        minutes=seconds / 60)


# ------------------------------------------------------------------------------------ entry point
def train_recognizer(out: str | os.PathLike | None = None, seeds: tuple[int, ...] = (0, 1),
                     weights: tuple[float, ...] = (0.5, 2.0), temperatures: tuple[float, ...] = (1.0, 3.0),
                     cfg: TrainConfig | None = None, folds: int = 5) -> Path:
    """Run the whole recipe and write the shipped checkpoint (default `checkpoints/recognizer`).

    Args:
        out: the checkpoint folder (default: the shipped one).
        seeds: seeds of the ablation (the first is shipped).
        weights: KL weights of the distillation grid.
        temperatures: temperatures of the grid.
        cfg: training settings.
        folds: cross-validation folds (at least 2).

    Returns:
        The checkpoint folder.
    """
    from emomusic.errors import InvalidInputError
    from emomusic.settings import checkpoints_root

    if folds < 2:
        raise InvalidInputError(f"--folds {folds}: cross-validation needs at least 2 folds")
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
        ab, models = run_ablation(train, val, cfg, seeds, weights, temperatures, extra, folds=folds)
    finally:
        torch.set_num_threads(threads)
    shipped = models["unified + distillation"]
    metrics = val_report(shipped, val)
    counts = {n: len(s) for n, s in train.items()}
    card = model_card(ab, metrics, counts, seeds, cfg, time.time() - start)
    out = Path(out) if out else checkpoints_root() / "recognizer"
    save_recognizer(shipped, out, metrics={"val": metrics, "cv": ab.cv, "folds": ab.folds, "ablation": ab.rows,
                                          "distill": asdict(ab.distill), "grid": ab.grid}, model_card=card)
    return out
