"""Which real pieces the clusterer stands for each emotion: scored by what the generator makes of them.

EmoGen conditions on the attributes of the labelled piece nearest its emotion's centre in binary
space. The pieces nearest a centre match every majority bit, and those are the stereotypes of the
quadrant: on the continuous scale they sit at its edges (2 of the 3 nearest "tense" pieces ask for
9.6-9.8 notes a beat, more than 90% of labelled tense pieces; 2 of the 3 nearest "calm" ones have a
lower mean pitch than 90% of calm pieces, and 19 of 20 calm pieces generated from them never went
above C5). A feature judge likes such caricatures; a listener hears one texture.

So each of the `POOL` pieces nearest a quadrant's centre is tried: `PER_PIECE` pieces are generated
from its attributes (the quadrant's word, the same seeds for every piece, so the comparison is
paired) and written as a user gets them. A piece scores, averaged over its generations,

- emotion: the feature judge and the recognizer each hearing the asked quadrant (1 + 1);
- realism: the share of the written file's `REALISM` statistics inside real music's 10-90% ranges
  (`evaluation.musicality.real_reference`, the selector's reference), and the share of its attributes
  (`SPREAD_ATTRIBUTES`) inside the middle half (25-75%) of the quadrant's own labelled pieces, so that
  a calm piece is as slow, as high and as busy as calm music typically is, not as its extreme (1 + 1);
- tempo on its arousal side (`tempo_side`): the share of the other arousal half's labelled pieces that
  the tempo it asks for lies beyond, faster than them for happy and tense, slower for sad and calm (1).
  Tempo is the strongest arousal cue in music psychology, and the quadrants' own tempi overlap widely
  (the bank's medians: happy 92, tense 109, sad 90, calm 80 BPM), so a score without this term picked
  a tense piece at 67 BPM and sad ones at 90 and closed the high- minus low-arousal tempo gap (+22 to -8
  BPM with the fine-tuned generator).

A piece whose asked notes per second (`BOUNDED`) lie outside its quadrant's 10-90% range is not picked
at all (`in_range`): those are the quadrant's caricatures again (a tense piece asking 18 notes a second,
which the density feedback overshoots by a further fifth or so). The scores belong to the sampling rules
they were measured under (the cache is keyed by `sampler_id`): picks made under one density feedback
were heard worse under another (docs/BENCHMARKS.md, integral action). Bounding the mean pitch as well was
tried: it dropped the two sad pieces pitched just above 90% of sad music (74.6 and 75.5 against 74.0),
left sad with three excerpts of one song and calm with a brisker pick, and the high- minus low-arousal
tempo gap fell to +17.7 BPM (+29.6 without it; two seed sets of 160 pieces, docs/BENCHMARKS.md).

Shares rather than pass/fail: a first version scored realism as two pass/fail verdicts (at most 2
statistics outside real ranges; at most 2 attributes outside the quadrant's 10-90%), and two runs of
5 seeds each ranked the pool's calm pieces with a correlation of 0.05: noise. Pass/fail also let
calm's brisk pieces (92-97 BPM) score as well as slow ones.

The clusterer then picks among the best-scoring pieces of the pool (`Clusterer.nearest`). Scores are
stored in the clusterer's config (`update_model_card`: its weights are unchanged) with a table on its
card. Tuning seeds start at `SEED`; `benchmarks/musicality.py` and `emomusic evaluate` measure on
others.

    emomusic train prototypes               # score, write checkpoints/clusterer's config and card
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emomusic.conditioning.clusterer import Clusterer
from emomusic.io import atomic_write
from emomusic.vocab.emotions import QUADRANT_NAMES, QUADRANT_VA, QUADRANTS

POOL = 20  # pieces tried per quadrant: the nearest to its centre in binary space
EMOGEN_NEAREST = 3  # the nearest pieces the card shows as EmoGen's pick: measured even when out of range
# generations per piece. 40, not 20: the best tense pieces lie within 0.05 of each other, and two halves of
# 20 agree on the recognizer's share per piece with a correlation of 0.93 / 0.96 / 0.84 / 0.33 (Q1-Q4)
PER_PIECE = 40
BARS = 16
SEED = 6_000_001  # tuning seeds; nothing else uses them
# the quadrant's typical spread, checked on a generated piece's attributes: the continuous controls and the
# notes per second (per beat alone hides a fast piece's busy-ness)
SPREAD_ATTRIBUTES = ("tempo", "note_density", "notes_per_second", "pitch_mean", "pitch_range", "velocity_mean",
                     "polyphony", "duration_mean", "pitch_class_entropy")
TYPICAL = (25.0, 75.0)  # percentiles of the quadrant's labelled pieces: the middle half
# what a prototype asks must lie inside its quadrant's 10-90% range (`in_range`)
BOUNDED = ("notes_per_second",)
BOUNDS = (10.0, 90.0)


def pools(clusterer, size: int = POOL) -> dict[str, np.ndarray]:
    """The `size` bank pieces nearest each quadrant's centre (`Clusterer.ranked`), nearest first.

    Args:
        clusterer: the fitted `Clusterer`.
        size: pieces per quadrant.

    Returns:
        quadrant -> bank row indices.
    """
    return {q: clusterer.ranked(*QUADRANT_VA[q])[:size] for q in QUADRANTS}


def spread(clusterer) -> dict[str, tuple[np.ndarray, np.ndarray, list[int]]]:
    """quadrant -> (low, high percentiles `TYPICAL`, attribute columns) of `SPREAD_ATTRIBUTES` over its bank
    pieces."""
    cols = [clusterer.names.index(n) for n in SPREAD_ATTRIBUTES]
    out = {}
    for i, q in enumerate(QUADRANTS):
        sub = clusterer.bank[clusterer.bank_quadrant == i][:, cols]
        out[q] = (np.percentile(sub, TYPICAL[0], axis=0), np.percentile(sub, TYPICAL[1], axis=0), cols)
    return out


def _asked(clusterer, index: int, quadrant: str) -> dict[str, float]:
    """The attributes bank piece `index` asks for when it stands for `quadrant` (moved to its point)."""
    return clusterer.moved(int(index), *QUADRANT_VA[quadrant])


def tempo_side(clusterer, index: int, quadrant: str) -> float:
    """How far on its arousal side the tempo piece `index` asks for lies (the module docstring).

    Args:
        clusterer: the fitted `Clusterer`.
        index: a bank row of `quadrant`.
        quadrant: the quadrant it stands for.

    Returns:
        The share of the other arousal half's bank pieces slower than it (happy, tense) or faster than
        it (sad, calm), in [0, 1].
    """
    tempo = _asked(clusterer, index, quadrant)["tempo"]
    high = QUADRANT_VA[quadrant][1] > 0
    highs = np.isin(clusterer.bank_quadrant, [i for i, q in enumerate(QUADRANTS) if QUADRANT_VA[q][1] > 0])
    other = clusterer.bank[highs != high, clusterer.names.index("tempo")]
    return float(np.mean(other < tempo) if high else np.mean(other > tempo))


def in_range(clusterer, index: int, quadrant: str) -> bool:
    """Whether what piece `index` asks for (`BOUNDED`) lies inside its quadrant's `BOUNDS` percentiles.

    Args:
        clusterer: the fitted `Clusterer`. index: a bank row of `quadrant`. quadrant: the quadrant.

    Returns:
        True when every bounded attribute is inside the quadrant's own 10-90% range.
    """
    asked = _asked(clusterer, index, quadrant)
    own = clusterer.bank[clusterer.bank_quadrant == QUADRANTS.index(quadrant)]
    for name in BOUNDED:
        lo, hi = np.percentile(own[:, clusterer.names.index(name)], BOUNDS)
        if not lo <= asked[name] <= hi:
            return False
    return True


@dataclass
class _Pinned(Clusterer):
    """A clusterer whose every query takes one bank piece (moved to the query's point as usual)."""

    index: int = 0

    @classmethod
    def of(cls, clusterer: Clusterer, index: int) -> _Pinned:
        return cls(**{f.name: getattr(clusterer, f.name) for f in fields(clusterer) if f.init}, index=index)

    def nearest(self, valence: float, arousal: float, k: int = 1, seed: int | None = None,
                same_quadrant: bool = True, prototypes: bool = True) -> int:
        return self.index


def measure_piece(em, index: int, quadrant: str, per_piece: int, seed: int, judge, reference, ranges,
                  folder: Path) -> dict[str, float]:
    """Generate `per_piece` pieces from bank piece `index` and measure them (see the module docstring).

    Args:
        em: the pipeline (its clusterer is swapped for the time of the call).
        index: a bank row of `quadrant`.
        quadrant: the quadrant asked (its word, `QUADRANT_NAMES`).
        per_piece: generations.
        seed: the first seed (the same for every piece).
        judge: the feature judge. reference: `real_reference()`. ranges: `spread(clusterer)`.
        folder: where the written files go.

    Returns:
        {"judge", "recognizer", "real", "typical", "typical_<attribute>" per `SPREAD_ATTRIBUTES`}:
        shares over the generations (`score_pools` adds what the piece asks for and the score).
    """
    from emomusic.evaluation.musicality import musicality
    from emomusic.music.attributes import compute_attributes
    from emomusic.recognition import recognize

    original = em.clusterer
    em.clusterer = _Pinned.of(original, index)
    try:
        cands = [em.generate(emotion=QUADRANT_NAMES[quadrant], bars=BARS, seed=seed + j)[0] for j in range(per_piece)]
    finally:
        em.clusterer = original
    files = []
    for j, c in enumerate(cands):
        files.append(folder / f"{index}-{j}.mid")
        em.save(c, files[-1], force=True)
    attrs = np.stack([compute_attributes(c.notes) for c in cands])
    lo, hi, cols = ranges[quadrant]
    typical = (attrs[:, cols] >= lo) & (attrs[:, cols] <= hi)  # (generations, attributes)
    real = [reference.inside_share(musicality(f)) for f in files]
    out = {"judge": float(np.mean([p == quadrant for p in judge.predict(attrs)])),
           "recognizer": float(np.mean([r.quadrant == quadrant for r in recognize([str(f) for f in files])])),
           "real": float(np.mean(real)), "typical": float(typical.mean()),
           **{f"typical_{n}": float(v) for n, v in zip(SPREAD_ATTRIBUTES, typical.mean(0), strict=True)}}
    return out


def score(m: dict[str, float]) -> float:
    """A piece's score from its measured shares (module docstring): emotion by two judges, realism by two
    references and tempo on its arousal side, each out of 1; NaN for a piece that is out of range."""
    if not m["in_range"]:
        return float("nan")
    return m["judge"] + m["recognizer"] + m["real"] + m["typical"] + m["tempo_side"]


def score_pools(em, judge, reference, size: int = POOL, per_piece: int = PER_PIECE, seed: int = SEED,
                cache: str | os.PathLike | None = None, quadrants: tuple[str, ...] = QUADRANTS) -> dict[str, dict]:
    """`measure_piece` for every piece of every quadrant's pool, cached per piece in `cache` (JSON).

    Args:
        em: the pipeline. judge, reference: as for `measure_piece`.
        size, per_piece, seed: pool size, generations per piece, first seed.
        cache: a JSON file of measured pieces (read and extended; None: no cache).
        quadrants: which pools to score.

    Returns:
        bank id -> its measurement, plus "quadrant", "rank" (its place in the pool, 0 = nearest),
        "tempo_side", "in_range" (recomputed for cached pieces: they depend on the clusterer alone) and
        "score". A piece out of range beyond the `EMOGEN_NEAREST` nearest is not measured (its score is
        NaN either way): 14 of the 80 shipped pool pieces, a sixth of the generations.
    """
    done = json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
    ranges = spread(em.clusterer)
    with tempfile.TemporaryDirectory() as tmp:
        for q, pool in pools(em.clusterer, size).items():
            if q not in quadrants:
                continue
            for rank, i in enumerate(tqdm(pool, desc=f"prototypes {q}", unit="piece")):
                row = done.setdefault(em.clusterer.bank_ids[int(i)], {})
                # derived from the clusterer alone: recomputed on every call, cached pieces included
                row.update(quadrant=q, rank=rank, tempo_side=tempo_side(em.clusterer, int(i), q),
                           in_range=in_range(em.clusterer, int(i), q))
                # a piece out of range is never picked: measured only among the nearest the card shows
                todo = "judge" not in row and (row["in_range"] or rank < EMOGEN_NEAREST)
                if todo:
                    row.update(measure_piece(em, int(i), q, per_piece, seed, judge, reference, ranges, Path(tmp)))
                row["score"] = score(row)
                if todo and cache:  # after each new piece, so an interrupted run resumes (atomically: a run
                    text = json.dumps(done, indent=1)  # killed mid-write leaves the last good file)
                    atomic_write(cache, lambda tmp, text=text: tmp.write_text(text), force=True)
    return done


def _best(rows: list[dict], keep: int) -> list[dict]:
    """The `keep` best-scored rows; out-of-range ones (NaN) never."""
    return sorted((v for v in rows if not np.isnan(v["score"])), key=lambda v: -v["score"])[:keep]


def card_section(scores: dict[str, dict], keep: int) -> str:
    """The clusterer card's section on its prototypes: per quadrant, the nearest pieces and the kept ones."""
    lines = ["", "## Prototypes", "",
             f"The {POOL} pieces nearest each quadrant's centre were tried as the generator's conditions "
             f"({PER_PIECE} pieces of {BARS} bars each, seeds from {SEED:,}; `emomusic train prototypes`). Score = "
             "judge hits + recognizer hits + the share of musicality statistics inside real music's 10-90% ranges + "
             "the share of attributes inside the middle half of the quadrant's labelled pieces + the share of the "
             "other arousal half's pieces its tempo lies beyond; a piece asking notes per second outside its "
             "quadrant's 10-90% range is not picked. The clusterer picks among the best-scoring ones.", "",
             "| quadrant | pieces | judge | recognizer | statistics inside real ranges | attributes typical of the "
             "quadrant | tempo typical | tempo on its arousal side | in range |",
             "|---|---|---|---|---|---|---|---|---|"]
    for q in QUADRANTS:
        rows = sorted((v for v in scores.values() if v["quadrant"] == q), key=lambda v: v["rank"])
        if not rows:
            continue
        for label, sel in ((f"{EMOGEN_NEAREST} nearest (EmoGen)", rows[:EMOGEN_NEAREST]),
                           (f"{keep} best", _best(rows, keep))):
            lines.append(f"| {q} | {label} | " + " | ".join(f"{np.mean([v[k] for v in sel]):.2f}" for k in
                                                          ("judge", "recognizer", "real", "typical",
                                                           "typical_tempo", "tempo_side", "in_range")) + " |")
    return "\n".join(lines) + "\n"


def write_scores(clusterer_dir: str | os.PathLike, scores: dict[str, dict], keep: int) -> Path:
    """Store each scored piece's score in the clusterer's config, with the card section; weights unchanged.

    Args:
        clusterer_dir: the clusterer checkpoint folder.
        scores: `score_pools`' result.
        keep: pieces picked among per quadrant (`Clusterer.nearest`'s k), for the card.

    Returns:
        The folder.
    """
    from emomusic.checkpoint import load_checkpoint, update_model_card

    ck = load_checkpoint(clusterer_dir, kind="clusterer")
    card = (ck.path / "MODEL_CARD.md").read_text(encoding="utf-8") if (ck.path / "MODEL_CARD.md").exists() else ""
    head, _, rest = card.partition("\n## Prototypes")
    after = rest.partition("\n## ")[2]
    card = head.rstrip() + "\n" + card_section(scores, keep) + (f"\n## {after}" if after else "")
    config = {"prototypes": {"pool": POOL, "per_piece": PER_PIECE, "bars": BARS, "seed": SEED,
                             "typical_percentiles": list(TYPICAL), "typical_attributes": list(SPREAD_ATTRIBUTES),
                             "bounded": list(BOUNDED), "bounds": list(BOUNDS),
                             # out-of-range pieces are left out: the clusterer ranks them last
                             "scores": {k: round(v["score"], 4) for k, v in scores.items()
                                        if not np.isnan(v["score"])}}}
    return update_model_card(clusterer_dir, card.rstrip("\n") + "\n", None, config)


def sampler_id() -> str:
    """A short hash of the sampling rules' source (`generation.guidance` and `generation.processors`): a
    change there changes what every condition generates, so measurements cached under other rules are
    not reused (a density feedback with integral action moved the written notes per beat by a fifth)."""
    import hashlib

    import emomusic.generation.guidance as guidance
    import emomusic.generation.processors as processors

    h = hashlib.sha256(Path(guidance.__file__).read_bytes())
    for f in sorted(Path(processors.__file__).parent.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:8]


def train_prototypes(checkpoints: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                     cache: str | os.PathLike | None = None) -> Path:
    """Score every quadrant's pool (cached) and write the scores into the clusterer checkpoint.

    Args:
        checkpoints: the checkpoints folder (default: the shipped one); its clusterer is updated.
        data_root: the datasets folder (the real reference).
        cache: the per-piece measurements (default:
            data/cache/prototypes/<generator sha>-<bank sha>-<sampler_id>-<generations>x<first seed>.json).

    Returns:
        The clusterer checkpoint folder.
    """
    from emomusic.checkpoint import load_checkpoint
    from emomusic.evaluation.judge import FeatureJudge
    from emomusic.evaluation.musicality import real_reference
    from emomusic.pipeline import NEAREST_PIECES, EmoMusic
    from emomusic.settings import checkpoints_root
    from emomusic.training.datasets import cache_root

    root = checkpoints_root(checkpoints)
    em = EmoMusic.from_pretrained(root)
    bank = load_checkpoint(root / "clusterer", kind="clusterer").files["model.safetensors"][:12]
    # keyed by the generator, the clusterer's bank (not its config, which the scores are written into), the
    # sampling rules and the generations measured
    name = f"{em.model_id}-{bank}-{sampler_id()}-{PER_PIECE}x{SEED}.json"
    path = Path(cache) if cache else cache_root() / "prototypes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    scores = score_pools(em, FeatureJudge.load(root / "judge"), real_reference(data_root=data_root), cache=path)
    return write_scores(root / "clusterer", scores, NEAREST_PIECES)
