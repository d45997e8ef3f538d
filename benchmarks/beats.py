"""Beat and downbeat tracking from performance MIDI, validated on ASAP; tracked tempo of EMOPIA.

    python benchmarks/beats.py [--tune] [--train-sample N] [--data-root DIR] [--no-emopia]

ASAP annotates the beats and downbeats of every performance (`<perf>_annotations.txt`). The pieces are
split as the training data is (`hash_split("asap/<folder>")`): settings are tuned on train pieces only
(one performance per piece, `--train-sample` pieces) and every val performance is scored with
mir_eval.beat.f_measure (70 ms window; the first 5 s trimmed from both sides, as mir_eval.beat.evaluate
does) for:
  defaults       librosa's tracker defaults (start_bpm 120, tightness 100) on a plain velocity envelope,
                 metre cues at their untuned weights;
  tuned_envelope the tuned envelope shape with librosa's tracker defaults;
  tuned          everything tuned (`--tune` re-tunes; without it, `emomusic.music.beats.TUNED`).
Also: the share of performances whose tracked tempo is within 4% of the annotation's (or its double or
half), and of those whose beats per bar (2, 3, 4) and compound-ness (6/8-like) match the annotation.
EMOPIA (piano transcriptions at a nominal 120 BPM) is then tracked with the tuned settings: tracked tempo
per quadrant (median, 10-90%) and time signatures; arousal is high in Q1/Q2, low in Q3/Q4.

Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.errors import InvalidInputError  # noqa: E402
from emomusic.music import beats as bt  # noqa: E402
from emomusic.settings import data_root  # noqa: E402
from emomusic.training.datasets import hash_split  # noqa: E402

WINDOW = 0.07


@dataclass
class Annotated:
    """One ASAP performance with its reference beats, downbeats and metre."""

    path: Path
    group: str
    split: str
    beats: np.ndarray
    downbeats: np.ndarray
    beats_per_bar: int
    compound: bool

    @property
    def tempo(self) -> float:
        """Annotated tempo: 60 / median inter-beat interval."""
        return float(60.0 / np.median(np.diff(self.beats)))


def load_asap(base: Path) -> list[Annotated]:
    """Every ASAP performance (not the quantised midi_score) that has an annotation file."""
    out = []
    for ann in sorted(base.rglob("*_annotations.txt")):
        if ann.name.startswith("midi_score"):
            continue
        mid = ann.with_name(ann.name[: -len("_annotations.txt")] + ".mid")
        if not mid.exists():
            continue
        rows = [line.rstrip("\n").split("\t") for line in ann.read_text().splitlines() if line.strip()]
        times = np.array([float(r[0]) for r in rows])
        kinds = [r[2] if len(r) > 2 else "b" for r in rows]
        is_db = np.array([k.startswith("db") for k in kinds])
        db_idx = np.flatnonzero(is_db)
        bpb = Counter(np.diff(db_idx).tolist()).most_common(1)[0][0] if len(db_idx) > 1 else 4
        sigs = [k.split(",")[1] for k in kinds if k.startswith("db,") and len(k.split(",")) > 1 and "/" in k]
        num, den = (int(v) for v in Counter(sigs).most_common(1)[0][0].split("/")) if sigs else (4, 4)
        group = "asap/" + "/".join(mid.relative_to(base).parts[:-1])
        out.append(Annotated(mid, group, hash_split(group), times, times[is_db], int(bpb),
                             den == 8 and num % 3 == 0 and num > 3))
    return out


def fmeasure(ref: np.ndarray, est: np.ndarray) -> float:
    """mir_eval beat F-measure (70 ms), first 5 s trimmed from both, as mir_eval.beat.evaluate does."""
    import mir_eval

    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref), mir_eval.beat.trim_beats(est), WINDOW))


def tempo_ok(est: float, ref: float) -> bool:
    """Tracked tempo within 4% of the reference, its double or its half."""
    return any(abs(est - ref * k) <= 0.04 * ref * k for k in (0.5, 1.0, 2.0))


class Cache:
    """Performances, envelopes and tempograms, computed once per (file, envelope shape)."""

    def __init__(self) -> None:
        self.perf: dict[Path, bt.Performance] = {}
        self.tg: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def performance(self, path: Path) -> bt.Performance:
        if path not in self.perf:
            self.perf[path] = bt.performance(path)
        return self.perf[path]

    def beats(self, path: Path, s: bt.TrackerSettings) -> np.ndarray:
        key = (path, s.fps, s.smooth, s.log_gain, s.bass_weight)
        if key not in self.tg:
            env = bt.onset_envelope(self.performance(path), s)
            self.tg[key] = (env, bt.tempogram(env, s))
        env, tg = self.tg[key]
        return bt.beats_from_envelope(env, s, tg)


def beat_score(items: list[Annotated], cache: Cache, s: bt.TrackerSettings) -> float:
    """Mean beat F-measure over `items`."""
    return float(np.mean([fmeasure(a.beats, cache.beats(a.path, s)) for a in items]))


def coordinate_search(items: list[Annotated], cache: Cache, s: bt.TrackerSettings,
                      grid: dict[str, list[float]]) -> tuple[bt.TrackerSettings, float]:
    """Each knob in turn set to its best value on `items` (others held), one pass."""
    best = beat_score(items, cache, s)
    for name, values in grid.items():
        for v in values:
            if v == getattr(s, name):
                continue
            cand = replace(s, **{name: v})
            score = beat_score(items, cache, cand)
            if score > best + 1e-4:
                s, best = cand, score
        print(f"    {name} = {getattr(s, name)}  mean beat F {best:.3f}", flush=True)
    return s, best


def tune(train: list[Annotated], cache: Cache) -> tuple[bt.TrackerSettings, dict]:
    """Tracker, envelope, then metre settings, tuned on train performances only."""
    tracker = {"start_bpm": [60.0, 80.0, 100.0, 120.0, 140.0, 170.0, 200.0], "std_bpm": [0.5, 1.0, 2.0],
               "tightness": [3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]}
    envelope = {"smooth": [0.0, 0.02, 0.04, 0.07], "log_gain": [0.0, 1.0, 8.0], "bass_weight": [0.0, 1.0, 3.0, 6.0]}
    print(f"  tuning on {len(train)} train performances (one per piece)", flush=True)
    s, _ = coordinate_search(train, cache, bt.DEFAULTS, tracker)
    s, _ = coordinate_search(train, cache, s, envelope)
    s, beat_f = coordinate_search(train, cache, s, tracker)

    # Metre: downbeat F of every (beats per bar, phase) hypothesis once per performance, then pick weights.
    rows = []
    for a in train:
        beats = cache.beats(a.path, s)
        if len(beats) < 4:
            continue
        perf = cache.performance(a.path)
        cues = bt.beat_cues(perf, beats)
        table = {(m, p): fmeasure(a.downbeats, beats[p::m]) for m in (2, 3, 4) for p in range(m)}
        rows.append((cues, table, bt.compound_ratio(perf, beats), a))
    weights = [0.0, 0.5, 1.0]
    biases = [-0.2, -0.1, 0.0, 0.1, 0.2]
    best, best_f = s, -1.0
    for wb, wc, wa, wl, b2, b3 in itertools.product(weights, weights, weights, weights, biases, biases):
        if wb == wc == wa == wl == 0.0:
            continue
        cand = replace(s, w_bass=wb, w_change=wc, w_accent=wa, w_long=wl, bias2=b2, bias3=b3)
        f = 0.0
        for cues, table, _, _ in rows:
            sc = bt.metre_scores(cues, cand)
            f += table[max(sc, key=sc.get)]
        if f / len(rows) > best_f + 1e-6:
            best, best_f = cand, f / len(rows)
    s = best
    # Compound: threshold on the thirds/halves ratio that best matches the annotated metre (2- or 4-beat bars).
    two_four = [(r, a.compound) for _, _, r, a in rows if a.beats_per_bar in (2, 4)]
    thr = max([1.0, 1.25, 1.5, 2.0, 3.0, 5.0], key=lambda t: sum((r > t) == c for r, c in two_four))
    s = replace(s, compound=thr)
    print(f"    metre cues {s.w_bass}/{s.w_change}/{s.w_accent}/{s.w_long} (bass/change/accent/long), "
          f"bias2 {s.bias2}, bias3 {s.bias3}, compound > {thr}: mean downbeat F {best_f:.3f}", flush=True)
    return s, {"beat_f_mean": round(beat_f, 4), "downbeat_f_mean": round(best_f, 4)}


def evaluate(items: list[Annotated], cache: Cache, s: bt.TrackerSettings) -> dict:
    """Beat and downbeat F (median, mean), tempo, metre and compound agreement over `items`."""
    bf, dbf, tempo, bpb, comp = [], [], [], [], []
    for a in items:
        beats = cache.beats(a.path, s)
        bf.append(fmeasure(a.beats, beats))
        if len(beats) < 4:
            dbf.append(0.0)
            tempo.append(False)
            bpb.append(False)
            comp.append(False)
            continue
        perf = cache.performance(a.path)
        sc = bt.metre_scores(bt.beat_cues(perf, beats), s)
        m, p = max(sc, key=sc.get)
        compound = m in (2, 4) and bt.compound_ratio(perf, beats) > s.compound
        grid = bt.BeatGrid(beats, m, p, compound)
        dbf.append(fmeasure(a.downbeats, grid.downbeats))
        tempo.append(tempo_ok(grid.tempo, a.tempo))
        bpb.append(m == a.beats_per_bar)
        comp.append(compound == a.compound)
    def r(x: float) -> float:
        return round(float(x), 4)

    return {"n": len(items), "beat_f_median": r(np.median(bf)), "beat_f_mean": r(np.mean(bf)),
            "downbeat_f_median": r(np.median(dbf)), "downbeat_f_mean": r(np.mean(dbf)),
            "tempo_within_4pct": r(np.mean(tempo)), "beats_per_bar_match": r(np.mean(bpb)),
            "compound_match": r(np.mean(comp))}


def emopia(base: Path, s: bt.TrackerSettings) -> dict:
    """Tracked tempo (quarters per minute, after re-quantisation) and metre per EMOPIA quadrant."""
    tempi: dict[str, list[float]] = defaultdict(list)
    sigs: dict[str, Counter] = defaultdict(Counter)
    skipped = 0
    for f in sorted(base.glob("Q*.mid")):
        try:
            notes = bt.requantize(f, settings=s)
        except InvalidInputError:
            skipped += 1
            continue
        q = f.name[:2]
        tempi[q].append(notes.tempo)
        sigs[q]["{}/{}".format(*notes.time_signature)] += 1
    out = {}
    for q in sorted(tempi):
        t = np.array(tempi[q])
        out[q] = {"n": len(t), "median": round(float(np.median(t)), 1), "p10": round(float(np.percentile(t, 10)), 1),
                  "p90": round(float(np.percentile(t, 90)), 1), "metres": dict(sigs[q].most_common())}
    out["skipped"] = skipped
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="datasets folder (default: settings.data_root())")
    ap.add_argument("--tune", action="store_true", help="re-tune on ASAP train pieces instead of using TUNED")
    ap.add_argument("--train-sample", type=int, default=100, help="train pieces used for tuning (one perf each)")
    ap.add_argument("--no-emopia", action="store_true", help="skip the EMOPIA tempo report")
    args = ap.parse_args(argv)
    try:
        import mir_eval  # noqa: F401
    except ImportError:
        print("error: this benchmark needs mir_eval; pip install 'emomusic[bench]'", file=sys.stderr)
        return 2
    root = data_root(args.data_root)
    t0 = time.perf_counter()
    items = load_asap(root / "asap")
    train_all = [a for a in items if a.split == "train"]
    val = [a for a in items if a.split == "val"]
    by_piece: dict[str, list[Annotated]] = defaultdict(list)
    for a in train_all:
        by_piece[a.group].append(a)
    rng = random.Random(0)
    pieces = sorted(by_piece)
    rng.shuffle(pieces)
    train = [rng.choice(by_piece[g]) for g in sorted(pieces[: args.train_sample])]
    print(f"ASAP: {len(train_all)} train performances ({len(by_piece)} pieces), {len(val)} val performances "
          f"({len({a.group for a in val})} pieces)", flush=True)
    cache = Cache()
    result: dict = {}
    if args.tune:
        tuned, result["train"] = tune(train, cache)
    else:
        tuned = bt.TUNED
        result["train"] = {"beat_f_mean": round(beat_score(train, cache, tuned), 4)}
    print(f"tuned settings: {asdict(tuned)}", flush=True)
    print(f"train ({len(train)} perfs): {result['train']}", flush=True)
    envelope_only = replace(bt.DEFAULTS, smooth=tuned.smooth, log_gain=tuned.log_gain, bass_weight=tuned.bass_weight)
    for name, s in (("defaults", bt.DEFAULTS), ("tuned_envelope", envelope_only), ("tuned", tuned)):
        result[name] = evaluate(val, cache, s)
        print(f"val {name}: {result[name]}", flush=True)
    cache.tg.clear()
    if not args.no_emopia:
        result["emopia"] = emopia(root / "emopia" / "EMOPIA_1.0" / "midis", tuned)
        for q, v in result["emopia"].items():
            print(f"EMOPIA {q}: {v}", flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["tuned_settings"] = asdict(tuned)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
