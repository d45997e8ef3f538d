"""Train the quality head (`selection.quality`): real pieces against generated ones and broken ones.

Three kinds of example, each a 16-bar span (`selection.quality.SPAN_BARS`):

- real: EMOPIA, POP909, ASAP and VGMIDI pieces (records' own song/piece-level splits; EMOPIA's test
  split is never listed by `datasets.records`), read on their tracked beats (`beats.real_grid_notes`)
  and put on the generator's 1/8-beat grid, as its training data is tokenized: otherwise "off the grid"
  would mean "real" and the head would learn the transcriptions' timing, not the music. Each piece gives
  its opening (cut at the bar line) and, when it is long enough, its last 16 bars (a real ending).
  Pieces played at fewer than `MIN_VELOCITIES` distinct velocities (ASAP scores, sequenced VGMIDI files)
  are left out: every candidate is played by the performance layer, and a written score's one velocity
  would teach the head that flat dynamics are real.
- generated: the shipped generator's candidates (`rank=False`, batch order) over the four quadrants,
  seeds from `TRAIN_SEED` to fit and from `HELD_OUT_SEED` to measure.
- degraded: each real window through every function of `DEGRADATIONS` (seeded `Notes -> Notes`).

Fit: train-split real windows (label 1) against training-seed candidates and degradations of train
windows (label 0); real, generated and degraded examples weigh 2 : 1 : 1 in total, each degradation
the same. Two small models are tried (a logistic regression and a one-hidden-layer MLP) on a tuning
fifth of the train groups; the better by mean AUC refits on all train. Measured on val-split real
windows against held-out-seed candidates and against each degradation of the val windows.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emomusic.music.notes import Notes
from emomusic.selection.quality import FEATURES, GRID, SPAN_BARS, QualityHead, quality_features
from emomusic.training.cards import render_card
from emomusic.training.datasets import LICENCES, records
from emomusic.vocab.constants import PIANO_BOTTOM, PIANO_TOP

log = logging.getLogger(__name__)

SOURCES = ("emopia", "pop909", "asap", "vgmidi")
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
TRAIN_SEED = 2_000_000  # generated pieces the head is fitted on: seeds TRAIN_SEED + i
HELD_OUT_SEED = 2_100_000  # generated pieces it is measured on (nothing was fitted or chosen on them)
CANDIDATES = 8  # pieces per generate() call (one batch)
MIN_VELOCITIES = 4  # a real window played at fewer distinct velocities is a written score: left out
MIN_NOTES = 32
MIN_BARS = 8


# ------------------------------------------------------------------------------------ degradations
def _rebuild(notes: Notes, pitch, start, duration, velocity) -> Notes:
    return Notes.from_arrays(pitch, start, duration, velocity, notes.tempo, notes.time_signature)


def _bars(notes: Notes) -> int:
    return min(SPAN_BARS, notes.n_bars)


def wrong_key(notes: Notes, seed: int = 0) -> Notes:
    """Wrong notes: a random half of the notes moved a semitone up or down (each its own direction)."""
    rng = np.random.default_rng(seed)
    pitch = notes.pitch.astype(np.int64).copy()
    idx = rng.permutation(len(pitch))[: len(pitch) // 2]
    pitch[idx] += rng.choice([-1, 1], size=len(idx))
    return _rebuild(notes, np.clip(pitch, PIANO_BOTTOM, PIANO_TOP), notes.start, notes.duration, notes.velocity)


def shuffled_bars(notes: Notes, seed: int = 0) -> Notes:
    """The bars in a random order (never the original one); each note keeps its place in its bar."""
    rng = np.random.default_rng(seed)
    bar, n = notes.beats_per_bar, _bars(notes)
    perm = np.arange(n)
    while n > 1 and np.array_equal(perm, np.arange(n)):
        perm = rng.permutation(n)
    of = np.minimum((notes.start / bar + 1e-6).astype(np.int64), n - 1)
    start = notes.start + (perm[of] - of) * bar
    return _rebuild(notes, notes.pitch, start, notes.duration, notes.velocity)


def broken_rhythm(notes: Notes, seed: int = 0) -> Notes:
    """Every onset moved early or late by a random 1/16 to 1/8 of a beat (chords come apart too)."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(1 / 16, 1 / 8, len(notes)) * rng.choice([-1.0, 1.0], len(notes))
    return _rebuild(notes, notes.pitch, np.maximum(0.0, notes.start + jitter), notes.duration, notes.velocity)


def collapsed_loop(notes: Notes, seed: int = 0) -> Notes:
    """One bar (a random one of the first half that has notes) played in every bar of the span."""
    rng = np.random.default_rng(seed)
    bar, n = notes.beats_per_bar, _bars(notes)
    of = (notes.start / bar + 1e-6).astype(np.int64)
    filled = [b for b in range(max(1, n // 2)) if np.sum(of == b) >= 2] or [int(of[0])]
    b = int(rng.choice(filled))
    m = of == b
    pos, dur = notes.start[m] - b * bar, np.minimum(notes.duration[m], (b + 1) * bar - notes.start[m])
    return _rebuild(notes, np.tile(notes.pitch[m], n), np.concatenate([pos + i * bar for i in range(n)]),
                    np.tile(dur, n), np.tile(notes.velocity[m], n))


def stall(notes: Notes, seed: int = 0) -> Notes:
    """Eight bars in the middle on one chord, struck in their own rhythm.

    The chord: the lowest note of each pitch class struck in their first beat, three classes at most (a
    triad or less: what `music.form.stall_flags` calls a stall).
    """
    rng = np.random.default_rng(seed)
    bar, n = notes.beats_per_bar, _bars(notes)
    length = min(8, max(1, n - 2))
    first = int(rng.integers(1, max(2, n - length)))
    t0, t1 = first * bar, (first + length) * bar
    inside = (notes.start >= t0 - 1e-6) & (notes.start < t1 - 1e-6)
    head = notes.pitch[inside & (notes.start < t0 + 1.0 - 1e-6)]
    pool = np.unique(head if len(np.unique(head % 12)) >= 2 else notes.pitch[inside])
    if not len(pool):
        pool = np.unique(notes.pitch)
    _, first_of_class = np.unique(pool % 12, return_index=True)  # a triad or less: the lowest of each class
    chord = pool[np.sort(first_of_class)][:3]
    onsets = np.unique(np.round(notes.start[inside], 4))
    if not len(onsets):
        onsets = np.arange(t0, t1, 1.0)
    ends = np.append(onsets[1:], t1)
    vel = int(np.median(notes.velocity[inside])) if inside.any() else int(np.median(notes.velocity))
    k = len(chord)
    return _rebuild(notes, np.concatenate([notes.pitch[~inside], np.tile(chord, len(onsets))]),
                    np.concatenate([notes.start[~inside], np.repeat(onsets, k)]),
                    np.concatenate([notes.duration[~inside], np.repeat(np.maximum(ends - onsets, 1 / GRID), k)]),
                    np.concatenate([notes.velocity[~inside], np.full(k * len(onsets), vel)]))


def missing_ending(notes: Notes, seed: int = 0) -> Notes:
    """Cut in the middle of one of the three bars before the last; the notes sounding there ring on past the cut."""
    rng = np.random.default_rng(seed)
    bar, n = notes.beats_per_bar, _bars(notes)
    cut_bar = int(rng.integers(max(1, n - 4), max(2, n - 1)))  # never the last bar: something is lost
    cut = cut_bar * bar + np.round(rng.uniform(0.3, 0.7) * bar * GRID) / GRID
    return notes.select(notes.start < cut - 1e-6)


def flat_dynamics(notes: Notes, seed: int = 0) -> Notes:
    """Every note at one velocity (the piece's median): no accent, no dynamic shape."""
    del seed  # deterministic; seeded like the others so every degradation has one signature
    vel = np.full(len(notes), int(np.median(notes.velocity)) if len(notes) else 64)
    return _rebuild(notes, notes.pitch, notes.start, notes.duration, vel)


DEGRADATIONS: dict[str, Callable[[Notes, int], Notes]] = {
    "wrong_key": wrong_key, "shuffled_bars": shuffled_bars, "broken_rhythm": broken_rhythm,
    "collapsed_loop": collapsed_loop, "stall": stall, "missing_ending": missing_ending,
    "flat_dynamics": flat_dynamics,
}


# ------------------------------------------------------------------------------------ examples
def on_grid(notes: Notes) -> Notes:
    """Onsets and durations rounded to the generator's 1/8-beat grid (duplicates merged), as tokenized."""
    start = np.round(notes.start * GRID) / GRID
    dur = np.maximum(np.round(notes.duration * GRID) / GRID, 1.0 / GRID)
    return _rebuild(notes, notes.pitch, start, dur, notes.velocity).deduplicate()


def real_windows(notes: Notes) -> list[Notes]:
    """A real piece's 16-bar opening (cut at the bar line) and, if the piece is twice as long, its ending.

    Both start on a bar line: the opening at the bar of the first note (a silent lead-in skipped).
    """
    if not len(notes):
        return []
    n = on_grid(notes)
    bar = n.beats_per_bar
    first = float(np.floor(n.start.min() / bar + 1e-6) * bar)
    shifted = _rebuild(n, n.pitch, n.start - first, n.duration, n.velocity)
    out = [shifted.truncate(SPAN_BARS)]
    total = shifted.n_bars
    if total >= 2 * SPAN_BARS:
        t0 = (total - SPAN_BARS) * bar
        tail = shifted.select(shifted.start >= t0 - 1e-6)
        out.append(_rebuild(tail, tail.pitch, tail.start - t0, tail.duration, tail.velocity))
    return [w for w in out if len(w) >= MIN_NOTES and w.n_bars >= MIN_BARS
            and len(np.unique(w.velocity)) >= MIN_VELOCITIES]


def _stable(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()


def real_pieces(data_root: str | None, split: str, per_dataset: int | None) -> list[tuple[str, str, Notes]]:
    """(dataset, group, window) of real pieces of one split: at most `per_dataset` records per dataset.

    Records are taken in a stable hashed order, one per group (song or piece: ASAP's many performances
    of one piece, EMOPIA's clips of one song count once), so no piece dominates.
    """
    from emomusic.music.beats import real_grid_notes

    out = []
    for name in SOURCES:
        recs = sorted((r for r in records(data_root, (name,)) if r.split == split), key=lambda r: _stable(r.id))
        seen: set[str] = set()
        chosen = []
        for r in recs:
            if r.group not in seen:
                seen.add(r.group)
                chosen.append(r)
        for r in chosen[:per_dataset] if per_dataset else chosen:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    notes = real_grid_notes(r.path)
            except Exception as exc:  # one unreadable file must not stop the job
                log.warning("skipped %s: %s", r.path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            out += [(name, r.group, w) for w in real_windows(notes)]
    return out


def generated_pieces(first_seed: int, batches: int, cache: Path | None = None,
                     checkpoints: str | None = None) -> list[tuple[str, int, Notes]]:
    """(quadrant, seed, piece) of `batches` generate() calls per quadrant, seeds `first_seed` + i.

    Each call asks for `CANDIDATES` 16-bar candidates in batch order (`rank=False`), played by the
    performance layer as a user gets them. With `cache`, the pieces are kept in (and read back from)
    an .npz there, named by the seeds.
    """
    path = cache / f"generated-{first_seed}-{batches}x{CANDIDATES}.npz" if cache else None
    if path is not None and path.exists():
        z = np.load(path)
        meta, off = z["meta"], z["offsets"]
        return [(f"Q{int(q)}", int(s), Notes.from_arrays(z["pitch"][a:b], z["start"][a:b], z["duration"][a:b],
                                                       z["velocity"][a:b], tempo=float(t), time_signature=(num, den)))
                for (q, s, t, num, den), a, b in zip(meta.tolist(), off[:-1], off[1:], strict=True)]
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(checkpoints)
    out = []
    for q in QUADRANTS:
        for i in range(batches):
            seed = first_seed + i
            out += [(q, seed, c.notes) for c in em.generate(emotion=q, bars=SPAN_BARS, candidates=CANDIDATES,
                                                            seed=seed, rank=False)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        off = np.concatenate([[0], np.cumsum([len(n) for _, _, n in out])]).astype(np.int64)
        meta = np.array([[int(q[1]), s, n.tempo, *n.time_signature] for q, s, n in out], dtype=np.float64)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=meta, offsets=off, **{k: np.concatenate([getattr(n, k) for _, _, n in out])
                                                 for k in ("pitch", "start", "duration", "velocity")})
        tmp.replace(path)
    return out


def examples(real: list[tuple[str, str, Notes]], generated: list[tuple[str, int, Notes]],
             degrade_seed: int) -> dict[str, np.ndarray]:
    """Feature rows of real windows, generated pieces and every degradation of each real window.

    Returns:
        X (rows, features), label (1 real, 0 not), kind ("real", "generated" or a degradation),
        group (song/piece key, or "gen/<seed>" for a generated batch).
    """
    rows, label, kind, group = [], [], [], []
    for i, (_, g, w) in enumerate(real):
        rows.append(quality_features(w))
        label.append(1)
        kind.append("real")
        group.append(g)
        for j, (name, fn) in enumerate(DEGRADATIONS.items()):
            rows.append(quality_features(fn(w, degrade_seed + 97 * i + j)))
            label.append(0)
            kind.append(name)
            group.append(g)
    for q, s, n in generated:
        rows.append(quality_features(n))
        label.append(0)
        kind.append("generated")
        group.append(f"gen/{q}/{s}")
    return {"X": np.array(rows), "label": np.array(label), "kind": np.array(kind), "group": np.array(group)}


# ------------------------------------------------------------------------------------ fitting
def _weights(kind: np.ndarray) -> np.ndarray:
    """Real : generated : degraded = 2 : 1 : 1 in total; each degradation the same share."""
    w = np.zeros(len(kind))
    shares = {"real": 2.0, "generated": 1.0} | {k: 1.0 / len(DEGRADATIONS) for k in DEGRADATIONS}
    for k, share in shares.items():
        m = kind == k
        if m.any():
            w[m] = share / m.sum()
    return w * len(kind) / w.sum()


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counted half."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def measure(p: np.ndarray, kind: np.ndarray) -> dict[str, float]:
    """AUCs of real against generated and against each degradation, and accuracies at 0.5.

    Args:
        p: P(real) per example.
        kind: each example's kind (`examples`).

    Returns:
        auc_generated, auc_<degradation>, auc_degraded_mean, accuracy_real, accuracy_generated,
        accuracy_<degradation> (share of its examples below 0.5), balanced_accuracy (real vs generated).
    """
    real = p[kind == "real"]
    out = {"auc_generated": auc(real, p[kind == "generated"])}
    for k in DEGRADATIONS:
        out[f"auc_{k}"] = auc(real, p[kind == k])
    out["auc_degraded_mean"] = float(np.mean([out[f"auc_{k}"] for k in DEGRADATIONS]))
    out["accuracy_real"] = float(np.mean(real >= 0.5))
    out["accuracy_generated"] = float(np.mean(p[kind == "generated"] < 0.5))
    for k in DEGRADATIONS:
        out[f"accuracy_{k}"] = float(np.mean(p[kind == k] < 0.5))
    out["balanced_accuracy"] = (out["accuracy_real"] + out["accuracy_generated"]) / 2
    return out


def _fit(X: np.ndarray, y: np.ndarray, w: np.ndarray, model: str, seed: int = 0) -> QualityHead:
    """A logistic regression ("logistic") or a 32-unit ReLU MLP ("mlp") on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    mean, std = X.mean(0), X.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    Z = (X - mean) / std
    if model == "logistic":
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(Z, y, sample_weight=w)
        layers = [(clf.coef_.T, clf.intercept_)]
    else:
        clf = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-2, max_iter=400, early_stopping=False,
                            random_state=seed).fit(Z, y, sample_weight=w)
        layers = list(zip(clf.coefs_, clf.intercepts_, strict=True))
    return QualityHead(mean, std, layers)


MODELS = ("logistic", "mlp")


def choose_model(train: dict[str, np.ndarray], seed: int = 0) -> tuple[str, dict[str, dict[str, float]]]:
    """The model of `MODELS` with the best mean of the generated and mean degradation AUC on a tuning fifth.

    The fifth is chosen by a hash of the group (song, piece or generated batch), so no piece is on both sides.
    """
    tune = np.array([int(_stable(g)[:8], 16) % 5 == 0 for g in train["group"]])
    fit = ~tune
    scores = {}
    for model in MODELS:
        head = _fit(train["X"][fit], train["label"][fit], _weights(train["kind"][fit]), model, seed)
        scores[model] = measure(head.score_features(train["X"][tune]), train["kind"][tune])
    best = max(MODELS, key=lambda m: scores[m]["auc_generated"] + scores[m]["auc_degraded_mean"])
    return best, scores


def importance(head: QualityHead, X: np.ndarray, kind: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Permutation importance: how much the generated AUC plus the mean degradation AUC drop per shuffled feature."""
    rng = np.random.default_rng(seed)
    m = measure(head.score_features(X), kind)
    base = m["auc_generated"] + m["auc_degraded_mean"]
    out = {}
    for j, name in enumerate(FEATURES):
        Xp = X.copy()
        Xp[:, j] = Xp[rng.permutation(len(X)), j]
        mp = measure(head.score_features(Xp), kind)
        out[name] = float(base - mp["auc_generated"] - mp["auc_degraded_mean"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def build(data_root: str | None = None, per_dataset: int = 200, train_batches: int = 8, held_out_batches: int = 4,
          cache: Path | None = None, checkpoints: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The train and val example sets (`examples`): train real + training seeds, val real + held-out seeds.

    Args:
        data_root: datasets folder (default: the settings resolver's).
        per_dataset: train records (groups) per dataset at most; val takes every group.
        train_batches: generate() calls per quadrant for the training seeds.
        held_out_batches: generate() calls per quadrant for the held-out seeds.
        cache: folder to keep generated pieces in between runs (None: generate every time).
        checkpoints: the generator's checkpoint folder (default: the shipped one).

    Returns:
        {"train": examples, "val": examples}.
    """
    t0 = time.perf_counter()
    gen_train = generated_pieces(TRAIN_SEED, train_batches, cache, checkpoints)
    gen_val = generated_pieces(HELD_OUT_SEED, held_out_batches, cache, checkpoints)
    log.info("generated %d + %d pieces (%.0f s)", len(gen_train), len(gen_val), time.perf_counter() - t0)
    real_train = real_pieces(data_root, "train", per_dataset)
    real_val = real_pieces(data_root, "val", None)
    log.info("real windows: %d train, %d val (%.0f s)", len(real_train), len(real_val), time.perf_counter() - t0)
    sets = {"train": examples(real_train, gen_train, 0), "val": examples(real_val, gen_val, 1_000_000)}
    for split, real in (("train", real_train), ("val", real_val)):
        sets[split]["dataset"] = np.array([d for d, _, _ in real])
    return sets


def model_card(model: str, metrics: dict, counts: dict[str, int], top: list[str], tuning: dict) -> str:
    """The MODEL_CARD.md text from the template `cards/quality.md`."""
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in metrics.items() if isinstance(v, float))
    tuning_rows = "\n".join(f"| {m} | {s['auc_generated']:.3f} | {s['auc_degraded_mean']:.3f} |"
                            for m, s in tuning.items())
    return render_card("quality", model=model, metric_rows=rows, tuning_rows=tuning_rows,
                       counts=", ".join(f"{k} {v}" for k, v in counts.items()),
                       features=", ".join(FEATURES), top_features=", ".join(top),
                       degradations=", ".join(f"{k} ({fn.__doc__.splitlines()[0].rstrip('.')})"
                                              for k, fn in DEGRADATIONS.items()),
                       train_seed=TRAIN_SEED, held_out_seed=HELD_OUT_SEED, span_bars=SPAN_BARS,
                       min_velocities=MIN_VELOCITIES, emopia_licence=LICENCES["emopia"],
                       pop909_licence=LICENCES["pop909"], asap_licence=LICENCES["asap"],
                       vgmidi_licence=LICENCES["vgmidi"])


def train_quality(data_root: str | None = None, out: str | Path | None = None, per_dataset: int = 200,
                  train_batches: int = 8, held_out_batches: int = 4, cache: str | Path | None = None,
                  seed: int = 0) -> Path:
    """Build the examples, choose and fit the head, measure it on val and write `<out>/quality` with its card.

    Args:
        data_root: datasets folder (default: the settings resolver's).
        out: checkpoints folder (default: `settings.checkpoints_root()`).
        per_dataset: train records (groups) per dataset at most.
        train_batches: generate() calls (8 candidates each) per quadrant, seeds from `TRAIN_SEED`.
        held_out_batches: the same for the held-out seeds, from `HELD_OUT_SEED`.
        cache: folder for generated pieces between runs (default: `<cache root>/quality`).
        seed: the MLP's initialisation.

    Returns:
        The checkpoint directory written.
    """
    from emomusic.settings import cache_root, checkpoints_root

    out = Path(out) if out else checkpoints_root()
    sets = build(data_root, per_dataset, train_batches, held_out_batches,
                 Path(cache) if cache else cache_root() / "quality")
    train, val = sets["train"], sets["val"]
    model, tuning = choose_model(train, seed)
    head = _fit(train["X"], train["label"], _weights(train["kind"]), model, seed)
    metrics = measure(head.score_features(val["X"]), val["kind"])
    top = importance(head, val["X"], val["kind"], seed)
    counts = {f"{split}_{k}": int(np.sum(s["kind"] == k)) for split, s in sets.items() for k in ("real", "generated")}
    counts |= {f"{split}_real_{d}": int(np.sum(s["dataset"] == d)) for split, s in sets.items() for d in SOURCES}
    metrics |= {"model": model, "train_seeds": f"{TRAIN_SEED}..{TRAIN_SEED + train_batches - 1}",
                "held_out_seeds": f"{HELD_OUT_SEED}..{HELD_OUT_SEED + held_out_batches - 1}",
                "importance": {k: round(v, 4) for k, v in top.items()}} | counts
    card = model_card(model, {k: v for k, v in metrics.items() if k.startswith(("auc", "acc", "bal"))}, counts,
                      list(top)[:8], tuning)
    return head.save(out / "quality", metrics, card)
