"""Train the audio emotion recognizer on audio rendered from the labelled MIDI.

No emotion-labelled audio ships with the project, so the training audio is made here: EMOPIA train
clips and VGMIDI v2 labelled pieces are rendered with FluidSynth and a General MIDI soundfont, 30 s
per clip at 22,050 Hz mono. Variant 0 of every clip is a clean piano rendering; later variants are
augmented (another keyboard program, gain, a small tempo stretch, a transposition, a different
excerpt of long pieces, background noise) so the model does not learn one synthesiser's sound.
Validation is EMOPIA val rendered cleanly, the audio counterpart of the symbolic recognizer's val.

Features (`emomusic.music.audio`) of every clip are cached in `data/cache/audio/` as one `.npz` per
(dataset, split, variant), written every few dozen clips, so an interrupted run resumes where it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emomusic.music.notes import Notes
from emomusic.recognition.audio_model import AudioEmotionNet, AudioRecognizer, MertEmbedder, default_checkpoint
from emomusic.training.cards import render_card
from emomusic.training.datasets import Record, cache_root, records
from emomusic.vocab.emotions import QUADRANTS

log = logging.getLogger(__name__)

FEATURE_VERSION = "audio-v2"
CLIP_SECONDS = 30.0
KEYBOARD_PROGRAMS = (0, 1, 2, 4, 5, 6)  # grand, bright, electric grand, two e-pianos, harpsichord
SAVE_EVERY = 40
DATASETS = ("emopia", "vgmidi")


def excerpt(notes: Notes, offset_s: float, seconds: float = CLIP_SECONDS) -> Notes:
    """Notes starting within [offset_s, offset_s + seconds), shifted to start at 0 (times in beats)."""
    beat = notes.tempo / 60.0
    lo, hi = offset_s * beat, (offset_s + seconds) * beat
    keep = (notes.start >= lo) & (notes.start < hi)
    return Notes(notes.pitch[keep], notes.start[keep] - lo, notes.duration[keep], notes.velocity[keep],
                 notes.tempo, notes.time_signature, dict(notes.meta))


def clip_seed(rec_id: str, variant: int) -> int:
    """A stable seed per (clip, variant): the same audio on every run and machine."""
    return int(hashlib.md5(f"{rec_id}#{variant}".encode()).hexdigest()[:8], 16)


def render_clip(rec: Record, variant: int, notes: Notes | None = None) -> np.ndarray:
    """The audio of one clip: variant 0 clean piano from the start, others augmented (see module doc)."""
    from emomusic.export.render import synthesize
    from emomusic.music.midi import load_notes

    notes = notes if notes is not None else load_notes(rec.path)
    if variant == 0:
        return synthesize(excerpt(notes, 0.0), seconds=CLIP_SECONDS)
    rng = np.random.default_rng(clip_seed(rec.id, variant))
    length_s = notes.end * 60.0 / notes.tempo
    offset = float(rng.uniform(0, max(0.0, length_s - CLIP_SECONDS)))
    clip = excerpt(notes, offset).transpose(int(rng.integers(-3, 4)))
    clip = dataclasses.replace(clip, tempo=clip.tempo * float(rng.uniform(0.92, 1.08)))
    y = synthesize(clip, seconds=CLIP_SECONDS, program=int(rng.choice(KEYBOARD_PROGRAMS)),
                   gain=float(rng.uniform(0.3, 1.0)))
    peak = float(np.abs(y).max()) if len(y) else 0.0
    snr_db = float(rng.uniform(25, 50))
    noise = rng.normal(0, 1, len(y)).astype(np.float32) * peak * 10 ** (-snr_db / 20) * 0.3
    return y + noise


def _cache_file(dataset: str, split: str, variant: int, mert: str = "") -> Path:
    suffix = f"_mert-{mert}" if mert else ""
    return cache_root() / "audio" / f"{FEATURE_VERSION}_{dataset}_{split}_v{variant}{suffix}.npz"


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    z = np.load(path)
    return dict(zip(json.loads(z["ids"].item()), z["features"], strict=True))


def _save_cache(path: Path, feats: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=np.array(json.dumps(list(feats))), features=np.stack(list(feats.values())))
    tmp.replace(path)


def _clip_vector(rec: Record, variant: int, embedder: MertEmbedder | None) -> np.ndarray:
    from emomusic.music.audio import SAMPLE_RATE, extract_features

    y = render_clip(rec, variant)
    x = extract_features(y, SAMPLE_RATE, rec.id).vector
    return x if embedder is None else np.concatenate([x, embedder.embed(y, SAMPLE_RATE)]).astype(np.float32)


def clip_features(recs: list[Record], dataset: str, split: str, variant: int, progress: bool = True,
                  embedder: MertEmbedder | None = None, render: bool = True) -> dict[str, np.ndarray]:
    """Features (+ MERT embedding) of every record's clip; cached, only missing clips are rendered.

    ``render=False`` returns what the cache holds (e.g. to train while a long render job still runs).
    """
    from tqdm import tqdm

    path = _cache_file(dataset, split, variant, embedder.name if embedder else "")
    feats = _load_cache(path)
    todo = [r for r in recs if r.id not in feats] if render else []
    for i, rec in enumerate(tqdm(todo, desc=f"audio {dataset}/{split}/v{variant}", disable=not progress)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                feats[rec.id] = _clip_vector(rec, variant, embedder)
        except Exception as exc:  # one unrenderable clip must not stop the job
            log.warning("skipped %s: %s", rec.id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if (i + 1) % SAVE_EVERY == 0:
            _save_cache(path, feats)
    if todo and feats:
        _save_cache(path, feats)
    return feats


def build_features(data_root: str | None = None, variants: int = 2, embedder: MertEmbedder | None = None,
                   render: bool = True) -> dict[tuple[str, str, int], dict[str, np.ndarray]]:
    """Render and analyse: val clean first (needed to evaluate), then train variant 0, 1, ...

    Args:
        data_root: the datasets folder (default: the settings resolver's).
        variants: renderings per training clip (0 = clean).
        embedder: a MERT embedder, if used.
        render: render missing clips (False: use only what the cache holds).

    Returns:
        (dataset, split, variant) → feature arrays.
    """
    recs = records(data_root, DATASETS)
    jobs = [(d, "val", 0) for d in DATASETS]
    jobs += [(d, "train", v) for v in range(variants) for d in DATASETS]
    out = {}
    for dataset, split, variant in jobs:
        t0 = time.time()
        sub = [r for r in recs if r.dataset == dataset and r.split == split]
        out[dataset, split, variant] = clip_features(sub, dataset, split, variant, embedder=embedder,
                                                     render=render)
        log.info("%s/%s/v%d: %d clips in %.0f s", dataset, split, variant, len(out[dataset, split, variant]),
                 time.time() - t0)
    return out



# ------------------------------------------------------------------------------------------ training
@dataclass
class HeadConfig:
    """Size and regularisation of the recognizer head (chosen by grouped cross-validation on train)."""

    hidden: int = 64
    dropout: float = 0.3
    weight_decay: float = 1e-2
    epochs: int = 300
    lr: float = 3e-3
    va_weight: float = 1.0
    seed: int = 0


def fit_head(x: np.ndarray, quadrant: np.ndarray, va: np.ndarray, cfg: HeadConfig | None = None,
             n_described: int | None = None) -> AudioEmotionNet:
    """Full-batch AdamW on cross-entropy (quadrant; -1 = unknown) + MSE (valence/arousal; NaN = unknown).

    Args:
        x: (n, features) inputs.
        quadrant: (n,) quadrant indices (-1 = unknown).
        va: (n, 2) valence/arousal (NaN = unknown).
        cfg: the head's size and regularisation.
        n_described: how many leading columns are named librosa features.

    Returns:
        The trained network.
    """
    import torch
    import torch.nn.functional as F

    cfg = cfg or HeadConfig()
    torch.manual_seed(cfg.seed)
    net = AudioEmotionNet(x.shape[1], cfg.hidden, cfg.dropout, n_described)
    net.set_statistics(x, quadrant)
    xt = torch.as_tensor(x, dtype=torch.float32)
    qt = torch.as_tensor(quadrant, dtype=torch.long)
    vat = torch.as_tensor(np.nan_to_num(va), dtype=torch.float32)
    known = torch.as_tensor(~np.isnan(va), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    net.train()
    for _ in range(cfg.epochs):
        logits, pred = net(xt)
        loss = F.cross_entropy(logits, qt, ignore_index=-1)
        loss = loss + cfg.va_weight * ((pred - vat) ** 2 * known).sum() / known.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@dataclass
class Table:
    """Features and labels of a set of clips, one row per (clip, variant)."""

    x: np.ndarray
    quadrant: np.ndarray  # 0..3
    va: np.ndarray  # (n, 2), ±1
    group: np.ndarray  # song key, for grouped cross-validation
    dataset: np.ndarray
    variant: np.ndarray

    def take(self, mask: np.ndarray) -> Table:
        return Table(*(getattr(self, f.name)[mask] for f in dataclasses.fields(self)))


def make_table(recs: list[Record], feats: dict[tuple[str, str, int], dict[str, np.ndarray]], split: str) -> Table:
    """Join cached features with the records' labels."""
    by_id = {r.id: r for r in recs}
    rows = [(by_id[i], v, vec) for (d, s, v), table in sorted(feats.items()) if s == split
            for i, vec in table.items() if i in by_id]
    return Table(x=np.stack([vec for *_, vec in rows]).astype(np.float32),
                 quadrant=np.array([QUADRANTS.index(r.quadrant) for r, *_ in rows]),
                 va=np.array([[r.valence, r.arousal] for r, *_ in rows], dtype=np.float32),
                 group=np.array([r.group for r, *_ in rows]), dataset=np.array([r.dataset for r, *_ in rows]),
                 variant=np.array([v for _, v, _ in rows]))


def accuracies(probs: np.ndarray, va_pred: np.ndarray, quadrant: np.ndarray) -> dict[str, float]:
    """4Q accuracy, and arousal/valence accuracy from the regression head and from the quadrant probabilities."""
    high_a = np.isin(quadrant, (0, 1))
    pos_v = np.isin(quadrant, (0, 3))
    return {
        "4Q": float(np.mean(probs.argmax(1) == quadrant)),
        "arousal": float(np.mean((va_pred[:, 1] >= 0) == high_a)),
        "valence": float(np.mean((va_pred[:, 0] >= 0) == pos_v)),
        "arousal_from_4Q": float(np.mean((probs[:, 0] + probs[:, 1] >= 0.5) == high_a)),
        "valence_from_4Q": float(np.mean((probs[:, 0] + probs[:, 3] >= 0.5) == pos_v)),
        "n": int(len(quadrant)),
    }


def _predict(net: AudioEmotionNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.inference_mode():
        logits, va = net(torch.as_tensor(x, dtype=torch.float32))
    return torch.softmax(logits, -1).numpy(), va.numpy()


GRID = [HeadConfig(hidden=h, weight_decay=wd, epochs=ep) for h in (0, 32, 96) for wd in (1e-3, 1e-1)
        for ep in (150, 400)]


def cross_validate(train: Table, grid: list[HeadConfig] = GRID, folds: int = 5) -> list[tuple[float, HeadConfig]]:
    """Mean EMOPIA 4Q accuracy of each config over song-grouped folds of train (clean variant scored)."""
    from sklearn.model_selection import GroupKFold

    splits = list(GroupKFold(folds).split(train.x, groups=train.group))
    results = []
    for cfg in grid:
        scores = []
        for tr, te in splits:
            net = fit_head(train.x[tr], train.quadrant[tr], train.va[tr], cfg)
            held = train.take(te)
            held = held.take((held.dataset == "emopia") & (held.variant == 0))
            probs, va = _predict(net, held.x)
            scores.append(accuracies(probs, va, held.quadrant)["4Q"])
        results.append((float(np.mean(scores)), cfg))
        log.info("cv 4Q %.3f  %s", results[-1][0], cfg)
    return sorted(results, key=lambda r: -r[0])


def logistic_baseline(train: Table, val: Table) -> float:
    """4Q accuracy of a standardised logistic regression on the same features (a reference point)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    clf.fit(train.x, train.quadrant)
    return float(np.mean(clf.predict(val.x) == val.quadrant))


def train_audio_recognizer(out: str | Path | None = None, data_root: str | None = None,
                           variants: int = 2, mert: str | None = None, folds: int = 5, render: bool = True) -> Path:
    """Render + analyse (cached), choose the head by grouped CV on train, evaluate on val, save with a card.

    Args:
        out: the checkpoint folder (default: the shipped one).
        data_root: the datasets folder (default: the settings resolver's).
        variants: renderings per training clip.
        mert: a MERT model folder to add its embeddings, or None.
        folds: cross-validation folds.
        render: render missing clips.

    Returns:
        The checkpoint folder.
    """
    import torch

    from emomusic.music.audio import FEATURE_NAMES

    torch.set_num_threads(1)
    out = Path(out) if out is not None else default_checkpoint()
    embedder = MertEmbedder(mert) if mert else None
    t0 = time.time()
    recs = records(data_root, DATASETS)
    feats = build_features(data_root, variants, embedder, render)
    feats = {k: v for k, v in feats.items() if v}
    train, val = make_table(recs, feats, "train"), make_table(recs, feats, "val")
    ranked = cross_validate(train, folds=folds)
    cv_score, best = ranked[0]
    net = fit_head(train.x, train.quadrant, train.va, best, len(FEATURE_NAMES))
    metrics = {"emopia_val": accuracies(*_predict(net, val.take(val.dataset == "emopia").x),
                                        val.take(val.dataset == "emopia").quadrant)}
    vg = val.take(val.dataset == "vgmidi")
    metrics["vgmidi_val"] = accuracies(*_predict(net, vg.x), vg.quadrant)
    metrics["cv_emopia_train_4Q"] = cv_score
    metrics["logistic_regression_emopia_val_4Q"] = logistic_baseline(train, val.take(val.dataset == "emopia"))
    metrics["train_clips"] = {d: int((train.dataset == d).sum()) for d in DATASETS}
    metrics["train_clips_augmented"] = int((train.variant > 0).sum())
    metrics["minutes"] = round((time.time() - t0) / 60, 1)
    config = {"n_features": int(train.x.shape[1]), "hidden": best.hidden, "dropout": best.dropout,
              "feature_names": list(FEATURE_NAMES), "feature_version": FEATURE_VERSION,
              "mert_dim": embedder.dim if embedder else None, "mert_name": embedder.name if embedder else None,
              "head": asdict(best), "variants": variants, "clip_seconds": CLIP_SECONDS}
    model = AudioRecognizer(net, config, embedder, str(out))
    path = model.save(out, metrics=metrics, model_card=model_card(metrics, config))
    log.info("saved %s: %s", path, json.dumps(metrics))
    return path


def _row(name: str, m: dict) -> str:
    return f"| {name} | {m['4Q']:.3f} | {m['arousal']:.3f} | {m['valence']:.3f} | {m['n']} |"


def model_card(metrics: dict, config: dict) -> str:
    """MODEL_CARD.md (template `training/cards/audio_recognizer.md`): what the model is, what it was
    trained on, its licence and measured accuracy.

    Args:
        metrics: the figures `train_audio_recognizer` measured.
        config: the saved model configuration (features, head, MERT embedder if any).

    Returns:
        The card text.
    """
    ev, vg = metrics["emopia_val"], metrics["vgmidi_val"]
    head = config["head"]
    return render_card(
        "audio_recognizer", n_features=len(config["feature_names"]),
        mert=f" + mean-pooled MERT embeddings ({config['mert_name']})" if config["mert_dim"] else "",
        arch=f"one hidden layer of {head['hidden']} units" if head["hidden"] else "a multitask linear model",
        head=head, cv_4Q=metrics["cv_emopia_train_4Q"], train_clips=metrics["train_clips"],
        augmented=metrics["train_clips_augmented"], emopia_row=_row("EMOPIA val (rendered)", ev),
        vgmidi_row=_row("VGMIDI v2 val (rendered)", vg), ev=ev,
        logistic_4Q=metrics["logistic_regression_emopia_val_4Q"])
