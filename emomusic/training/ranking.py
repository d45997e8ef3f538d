"""The selector's ranking weights, chosen on generated batches and measured on others (issue 29).

A batch is what one best-of-N request samples: N candidates for one prompt, as the user would get
each (expression and ending included). For every candidate this module measures

- the ranking heads (`selection.selector.Selector.heads`): quality (the quality head's log-odds of
  real), emotion (the recognizer's log-probability of the asked quadrant), genre and control (minus
  the distance of measured from asked attribute bins); beside them the selector network's own quality
  and emotion outputs, which ranked before the quality head and the recognizer did;
- two judges of emotion: the feature judge (`evaluation.judge`, the 57 attributes) and the recognizer;
- realism: the written file's musicality statistics against real val pieces
  (`evaluation.musicality.real_reference`): inside or not, and the mean distance outside.

`tune` scores every weight setting of a grid by what its picks give: judge and recognizer accuracy
and the share inside the real ranges, and keeps the best sum (ties: the smaller distance to real
music). `write_weights` stores the choice in the selector checkpoint's config with the table on its
card, so the pipeline ranks with it.

    emomusic train ranking                  # tuning batches (cached), tune, write checkpoints/selector
    python benchmarks/selector.py           # the same measurement on evaluation seeds
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

from emomusic.vocab.emotions import QUADRANTS, WORDS

CANDIDATES = 8
BARS = 16
GENRE = "pop"  # what a request without a genre asks for
TUNE_SEED = 3_000_001  # tuning prompts; evaluation prompts start at EVAL_SEED, apart from these
EVAL_SEED = 3_500_001
TUNE_PROMPTS = 16  # per quadrant: 64 batches of 8
# ranking heads and the selector network's own outputs, as measured per candidate
HEAD_NAMES = ("quality", "emotion", "genre", "control", "net_quality", "net_emotion")
GRID_VALUES = {"quality": (0.0, 0.1, 0.25, 0.5, 1.0), "emotion": (0.0, 0.25, 0.5, 1.0, 2.0),
               "genre": (0.0, 0.25), "control": (0.0, 0.5, 1.0)}
# the ranking before the quality head and the recognizer: the network's outputs with the tuned weights
PREVIOUS = {"net_quality": 0.25, "net_emotion": 0.25, "control": 1.0}
STALE = "(Measured with the ranking weights before the last tuning:"


def prompts(n: int, seed: int) -> list[tuple[str, str, int]]:
    """(quadrant, word, seed) for `n` prompts per quadrant: the quadrant's words in turn, one seed each.

    Args:
        n: prompts per quadrant.
        seed: the first seed (each quadrant has its own block of 100,000).

    Returns:
        One tuple per prompt, quadrant by quadrant.
    """
    out = []
    for q in QUADRANTS:
        words = sorted(w for w, e in WORDS.items() if e.quadrant == q)
        out += [(q, words[i % len(words)], seed + QUADRANTS.index(q) * 100_000 + i) for i in range(n)]
    return out


def _notes_arrays(notes, k: int) -> dict[str, np.ndarray]:
    return {f"{k}.pitch": notes.pitch, f"{k}.start": notes.start, f"{k}.duration": notes.duration,
            f"{k}.velocity": notes.velocity, f"{k}.pedals": np.asarray(notes.pedals).reshape(-1, 2),
            f"{k}.tempos": np.asarray(notes.tempos).reshape(-1, 2),
            f"{k}.meta": np.array([notes.tempo, *notes.time_signature], dtype=np.float64)}


def _notes_from(z, k: int):
    from emomusic.music.notes import Notes

    tempo, num, den = z[f"{k}.meta"]
    n = Notes.from_arrays(z[f"{k}.pitch"], z[f"{k}.start"], z[f"{k}.duration"], z[f"{k}.velocity"], float(tempo),
                          (int(num), int(den)))
    return replace(n, pedals=z[f"{k}.pedals"], tempos=z[f"{k}.tempos"])


def generate_batches(em, items: list[tuple[str, str, int]], folder: str | os.PathLike,
                     n: int = CANDIDATES, bars: int = BARS) -> list[Path]:
    """Generate (or reuse) one batch per prompt: an .npz of the candidates and each candidate's MIDI file.

    Generation is the slow part, so a batch already in `folder` is kept: a changed generator or clusterer
    needs a new folder (callers key it by `EmoMusic.model_id` and `conditions_id`).

    Args:
        em: the pipeline.
        items: (quadrant, word, seed) prompts.
        folder: where the batches go.
        n: candidates per batch.
        bars: bars per piece.

    Returns:
        The batch files, in prompt order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for q, word, seed in tqdm(items, desc=f"batches in {folder.name}", leave=False):
        dest = folder / f"{q}-{word}-{seed}.npz"
        files.append(dest)
        if dest.exists():
            continue
        cands = em.generate(emotion=word, bars=bars, candidates=n, seed=seed, rank=False)
        arrays: dict[str, np.ndarray] = {"quadrant": np.array(q), "word": np.array(word), "seed": np.array(seed)}
        for k, c in enumerate(cands):
            arrays |= _notes_arrays(c.notes, k)
            arrays[f"{k}.tokens"] = np.asarray(c.tokens, dtype=np.int64)
            arrays[f"{k}.control_distance"] = np.array(em.control_distance(c))
            em.save(c, folder / f"{q}-{word}-{seed}-{k}.mid", force=True)
        tmp = dest.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(dest)
    return files


def load_batch(path: Path) -> tuple[str, list, list[float], list[Path]]:
    """(asked quadrant, candidates as the selector reads them, control distances, MIDI files)."""
    z = np.load(path)
    q = str(z["quadrant"])
    n = sum(1 for k in z.files if k.endswith(".tokens"))
    attrs = SimpleNamespace(quadrant=q)
    cands = [SimpleNamespace(notes=_notes_from(z, k), tokens=z[f"{k}.tokens"], attributes=attrs) for k in range(n)]
    return q, cands, [float(z[f"{k}.control_distance"]) for k in range(n)], \
        [path.with_name(f"{path.stem}-{k}.mid") for k in range(n)]


def measure(em, files: list[Path], reference, cache: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Every candidate's heads, judges' verdicts and realism (cached in `cache` by the batch files' names).

    Args:
        em: the pipeline (its selector and recognizer).
        files: batch files from :func:`generate_batches`, all with the same candidates per batch.
        reference: the `evaluation.musicality.RealReference`.
        cache: an .npz to keep the measurements in (reused when it holds the same batches).

    Returns:
        Arrays with one row per candidate, batch after batch: the `HEAD_NAMES`, "asked", "judge" and
        "recognizer" (quadrants heard), "outside" and "distance" (realism), "empty", and "n" per batch.
    """
    from emomusic.evaluation.judge import FeatureJudge
    from emomusic.evaluation.musicality import REALISM, musicality
    from emomusic.music.attributes import compute_attributes
    from emomusic.recognition.api import log_emotion
    from emomusic.settings import checkpoints_root

    names = np.array([f.name for f in files])
    if cache is not None and Path(cache).exists():
        z = np.load(cache)
        if np.array_equal(z["files"], names):
            return _realism({k: z[k] for k in z.files if k != "files"}, reference)
    judge = FeatureJudge.load(checkpoints_root(Path(em.name) if em.name else None) / "judge")
    sel, rec = em.selector, em.recognizer
    rows: dict[str, list] = {k: [] for k in (*HEAD_NAMES, "asked", "judge", "recognizer", "empty", *REALISM)}
    per_batch = None
    for path in tqdm(files, desc="measure", leave=False):
        q, cands, dist, mids = load_batch(path)
        per_batch = per_batch or len(cands)
        if len(cands) != per_batch:
            raise ValueError(f"{path}: {len(cands)} candidates, the others have {per_batch}")
        emb = sel.embeddings(cands)
        out = rec.predict([c.notes for c in cands], [c.tokens for c in cands], emb)
        emotion = log_emotion(out["probabilities"], out["va_logits"], q)
        heads = sel.heads(cands, q, GENRE, dist, emotion, emb)
        net = sel.net_heads(sel.features(cands, emb), [q] * len(cands), GENRE)
        for k in ("quality", "emotion", "genre", "control"):
            rows[k] += list(heads[k])
        rows["net_quality"] += list(net["quality"])
        rows["net_emotion"] += list(net["emotion"])
        rows["asked"] += [q] * len(cands)
        rows["recognizer"] += [QUADRANTS[int(i)] for i in out["probabilities"].argmax(1)]
        rows["judge"] += [judge.predict(compute_attributes(c.notes))[0] if len(c.notes) else "none" for c in cands]
        rows["empty"] += [len(c.notes) == 0 for c in cands]
        for m in mids:
            stats = musicality(m, BARS * 4.0)
            for k in REALISM:
                rows[k].append(stats[k])
    result = {k: np.asarray(v) for k, v in rows.items()}
    result["n"] = np.array(per_batch)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, files=names, **result)
    return _realism(result, reference)


def _realism(m: dict[str, np.ndarray], reference) -> dict[str, np.ndarray]:
    """The measurements with each candidate's statistics outside the real ranges and distance to them."""
    from emomusic.evaluation.musicality import REALISM

    judged = [reference.outside({k: float(m[k][i]) for k in REALISM}) for i in range(len(m["asked"]))]
    return m | {"outside": np.array([c for c, _ in judged]), "distance": np.array([d for _, d in judged]),
                "allowed_outside": np.array(reference.allowed_outside)}


def picks(m: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The index of each batch's best candidate under `weights` (an empty candidate is never picked)."""
    n = int(m["n"])
    score = sum(w * m[h].astype(float) for h, w in weights.items() if w)
    score = np.where(m["empty"], -np.inf, score if not np.isscalar(score) else np.zeros(len(m["empty"])))
    batches = np.arange(len(score)).reshape(-1, n)
    return batches[np.arange(len(batches)), score[batches].argmax(1)]


def summary(m: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict[str, float]:
    """Judges' accuracy, share inside the real ranges and mean distance over `rows` (default: all)."""
    rows = np.arange(len(m["asked"])) if rows is None else rows
    inside = m["outside"][rows] <= int(m["allowed_outside"])
    return {"judge": float(np.mean(m["judge"][rows] == m["asked"][rows])),
            "recognizer": float(np.mean(m["recognizer"][rows] == m["asked"][rows])),
            "inside": float(np.mean(inside)), "distance": float(np.mean(m["distance"][rows]))}


def compare(m: dict[str, np.ndarray], weights: dict[str, float]) -> dict[str, dict[str, float]]:
    """Best of N under `weights` beside the first candidate, a random one (the batch mean) and the
    previous ranking (the selector network's outputs with the attribute fit).

    Args:
        m: measurements from :func:`measure`.
        weights: ranking weights (head name -> weight).

    Returns:
        {"best", "first", "random", "previous"} -> :func:`summary`, and per quadrant under "by_quadrant".
    """
    n = int(m["n"])
    first = np.arange(0, len(m["asked"]), n)
    out = {"best": summary(m, picks(m, weights)), "first": summary(m, first), "random": summary(m),
           "previous": summary(m, picks(m, PREVIOUS))}
    out["by_quadrant"] = {}
    for q in QUADRANTS:
        rows = np.flatnonzero(m["asked"] == q)
        if not len(rows):
            continue
        sub = {k: v[rows] if isinstance(v, np.ndarray) and v.shape == m["asked"].shape else v for k, v in m.items()}
        out["by_quadrant"][q] = {"best": summary(sub, picks(sub, weights)),
                                 "first": summary(sub, np.arange(0, len(rows), n)), "random": summary(sub)}
    return out


def objective(s: dict[str, float]) -> float:
    """What the tuning maximises: both judges' accuracy and the share inside the real ranges, equally."""
    return s["judge"] + s["recognizer"] + s["inside"]


def grid() -> list[dict[str, float]]:
    """Every combination of `GRID_VALUES` with at least one non-zero weight."""
    keys = list(GRID_VALUES)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*GRID_VALUES.values()) if any(vals)]


def tune(m: dict[str, np.ndarray]) -> tuple[dict[str, float], list[dict]]:
    """The grid's weights whose picks maximise :func:`objective`; ties go to the smaller distance to real
    music, then to the smaller total weight (the simpler ranking).

    Args:
        m: tuning measurements.

    Returns:
        (chosen weights, one row per grid setting with its summary, best first).
    """
    table = [{"weights": w, **summary(m, picks(m, w))} for w in grid()]
    table.sort(key=lambda r: (-round(objective(r), 9), round(r["distance"], 9), sum(r["weights"].values())))
    return dict(table[0]["weights"]), table


def pareto(table: list[dict]) -> list[dict]:
    """The settings no other setting beats on emotion (mean of both judges) and realism (inside) together."""
    pts = [((r["judge"] + r["recognizer"]) / 2, r["inside"], r) for r in table]
    front = [r for e, i, r in pts if not any((e2 >= e and i2 >= i) and (e2 > e or i2 > i) for e2, i2, _ in pts)]
    return sorted(front, key=lambda r: (r["judge"] + r["recognizer"]) / 2)


def write_weights(selector_dir: str | os.PathLike, weights: dict[str, float], table: list[dict],
                  tuning: dict[str, dict[str, float]], batches: int) -> Path:
    """Store the tuned ranking weights in the selector checkpoint (config and card), weights unchanged.

    Args:
        selector_dir: the selector checkpoint folder.
        weights: the chosen weights.
        table: the tuning table (:func:`tune`).
        tuning: :func:`compare` on the tuning batches under `weights`.
        batches: tuning batches.

    Returns:
        The folder.
    """
    from emomusic.checkpoint import load_checkpoint, update_model_card

    ck = load_checkpoint(selector_dir, kind="selector")
    config = {"model": {**ck.config["model"], "weights": weights},
              "ranking": {"tuning_batches": batches, "candidates": CANDIDATES, "bars": BARS, "tune_seed": TUNE_SEED,
                          "grid": table[:20], "tuned": tuning}}
    card = (ck.path / "MODEL_CARD.md").read_text(encoding="utf-8") if (ck.path / "MODEL_CARD.md").exists() else ""
    head, _, rest = card.partition("\n## Ranking weights")
    after = rest.partition("\n## ")[2]  # a section after the ranking's (the harness's) stays, marked as older
    if after and STALE not in after:
        title, _, body = after.partition("\n")
        previous = ck.config["model"].get("weights", {})
        after = f"{title}\n\n{STALE} {previous}; `emomusic evaluate` and `python -m emomusic.training.selector card` " \
                f"measure the new ones.)\n{body}"
    card = head.rstrip() + "\n" + ranking_section(weights, tuning, batches) + (f"\n## {after}" if after else "")
    metrics = {f"ranking_tuning_{who}_{k}": v for who in ("best", "first", "random") for k, v in tuning[who].items()}
    return update_model_card(selector_dir, card.rstrip("\n") + "\n", metrics, config)


def ranking_section(weights: dict[str, float], tuning: dict, batches: int) -> str:
    """The model card's section on the ranking weights and what they gave on the tuning batches."""
    lines = ["", "## Ranking weights", "",
             f"Chosen on {batches} tuning batches of {CANDIDATES} candidates ({BARS} bars, seeds from {TUNE_SEED:,}; "
             "`emomusic train ranking`): " + ", ".join(f"{k} {v:g}" for k, v in weights.items()) + ".",
             "Heads: quality = log-odds of real from the quality head; emotion = the recognizer's log-probability "
             "of the asked quadrant; genre = the network's log-probability of the asked genre; control = minus the "
             "distance of measured from asked attribute bins.", "",
             "| pick | feature judge | recognizer | inside real ranges | distance to real |", "|---|---|---|---|---|"]
    for who in ("best", "first", "random", "previous"):
        s = tuning[who]
        lines.append(f"| {who} | {s['judge']:.3f} | {s['recognizer']:.3f} | {s['inside']:.3f} | {s['distance']:.3f} |")
    lines += ["", "The recognizer is also the emotion head, so its gain is partly by construction; the feature "
              "judge reads the attributes the control head measures. Evaluation seeds: `benchmarks/selector.py`.", ""]
    return "\n".join(lines)


def train_ranking(checkpoints: str | os.PathLike | None = None, selector: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None, prompts_per_quadrant: int = TUNE_PROMPTS,
                  data_root: str | os.PathLike | None = None) -> Path:
    """Generate the tuning batches (cached), measure, tune and write the weights into the selector.

    Args:
        checkpoints: the checkpoints folder (default: the shipped one).
        selector: the selector checkpoint to tune (default: the checkpoints folder's).
        cache: the folder of batches and measurements (default: data/cache/ranking/<generator sha>-<the pipeline's
            `conditions_id`>: either changes what a seed generates).
        prompts_per_quadrant: tuning prompts per quadrant.
        data_root: the datasets folder (the real reference).

    Returns:
        The selector checkpoint folder.
    """
    from emomusic.evaluation.musicality import real_reference
    from emomusic.pipeline import EmoMusic
    from emomusic.selection.selector import load_selector
    from emomusic.settings import checkpoints_root
    from emomusic.training.datasets import cache_root

    root = checkpoints_root(checkpoints)
    em = EmoMusic.from_pretrained(root)
    target = Path(selector) if selector else root / "selector"
    quality = root / "quality"
    em.selector = load_selector(target, em.generator, em.tokenizer, quality if quality.is_dir() else None)
    folder = Path(cache) if cache else cache_root() / "ranking" / f"{em.model_id}-{em.conditions_id}"
    files = generate_batches(em, prompts(prompts_per_quadrant, TUNE_SEED), folder / "tune")
    # measured heads depend on the selector and quality head: cached per selector weights file
    tag = hashlib.sha1((target / "model.safetensors").read_bytes()).hexdigest()[:12]
    m = measure(em, files, real_reference(data_root=data_root), folder / f"tune-measured-{tag}.npz")
    weights, table = tune(m)
    return write_weights(target, weights, table, compare(m, weights), len(files))
