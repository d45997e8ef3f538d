"""Build the drum model's bank from the Groove MIDI Dataset train split, measure it on validation, ship it.

    python -m emomusic.training.drums [--data-root DIR] [--out checkpoints]

Groove MIDI (groove/info.csv): 1,150 takes by ten drummers recorded to a click, so a hit's beat is its
tick / ticks-per-quarter from the start of the file, and bar lines fall every num*4/den beats from 0
(checked: in the 4/4 beats a kick lands on the first 16th of the bar 2.6 times as often as on beat 3,
the next most common place). Every train take is cut into bars on a 16th grid; each hit keeps its class
(`PITCH_CLASS`), velocity and offset from the grid. Long takes ("beat") give grooves and the fill-like
bars inside them; the short fill takes give one fill bar each (the bar holding most of their hits).
The validation split is only measured (`evaluate`); test is not read.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from emomusic.arrangement.drums import (
    CLOSED_HH,
    CRASH,
    DRUM_NAMES,
    FILL,
    GROOVE,
    INNER_FILL,
    LOOSE,
    OFFSET_UNIT,
    PITCH_CLASS,
    STEPS_PER_BEAT,
    TIGHT,
    TOMS,
    DrumModel,
    pattern_matrix,
)

__all__ = ["GROOVE_DIR", "Take", "evaluate", "main", "read_take", "takes", "train_drums"]

GROOVE_DIR = "groove"
LICENCE = "CC BY 4.0"
FILL_TOMS = 3  # a bar inside a groove take with this many tom hits is a fill
FILL_BURST = 1.5  # ... or this many times the take's median hits, before a bar that opens with a crash


class Take:
    """One performance: its metadata row and its hits (beats from the start, class, velocity)."""

    def __init__(self, row: dict, beats: np.ndarray, drum: np.ndarray, velocity: np.ndarray) -> None:
        self.row = row
        self.beats, self.drum, self.velocity = beats, drum, velocity
        num, den = (int(x) for x in row["time_signature"].split("-"))
        self.metre = (num, den)
        self.bpb = num * 4.0 / den
        self.steps = int(round(self.bpb * STEPS_PER_BEAT))
        self.bpm = float(row["bpm"])
        self.style = row["style"]
        self.drummer = int(row["drummer"].removeprefix("drummer"))
        self.fill = row["beat_type"] == "fill"
        self.length = float(row["duration"]) * self.bpm / 60.0  # beats

    def bars(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """bar number -> (step, class, velocity, offset in beats) of its hits, on the 16th grid."""
        g = np.round(self.beats * STEPS_PER_BEAT).astype(np.int64)
        off = self.beats - g / STEPS_PER_BEAT
        bar, step = g // self.steps, g % self.steps
        out = {}
        for b in np.unique(bar):
            k = bar == b
            out[int(b)] = (step[k], self.drum[k], self.velocity[k], off[k])
        return out


def read_take(path: Path, row: dict) -> Take:
    """A take's hits (unmapped pitches dropped) from its MIDI file."""
    import symusic

    score = symusic.Score(str(path))
    tpq = score.ticks_per_quarter
    notes = [(n.time / tpq, PITCH_CLASS[n.pitch], n.velocity) for t in score.tracks for n in t.notes
             if n.pitch in PITCH_CLASS]
    notes.sort()
    a = np.array(notes, dtype=np.float64).reshape(-1, 3)
    return Take(row, a[:, 0], a[:, 1].astype(np.int64), a[:, 2])


def takes(data_root: str | Path | None, split: str) -> list[Take]:
    """Every take of a split ("train", "validation"), in info.csv's order."""
    from emomusic.settings import data_root as resolve

    root = resolve(data_root) / GROOVE_DIR
    with open(root / "info.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    return [read_take(root / r["midi_filename"], r) for r in rows]


def _bar_kinds(bars: dict[int, tuple], take: Take) -> dict[int, int]:
    """GROOVE or INNER_FILL for each complete bar of a groove take (a partial last bar is dropped)."""
    full = [b for b in sorted(bars) if b >= 0 and (b + 1) * take.bpb <= take.length + 0.25 * take.bpb]
    if not full:
        return {}
    median = float(np.median([len(bars[b][0]) for b in full]))
    median_toms = float(np.median([np.isin(bars[b][1], TOMS).sum() for b in full]))  # latin grooves play toms
    kinds = {}
    for b in full:
        step, drum = bars[b][0], bars[b][1]
        toms = int(np.isin(drum, TOMS).sum())
        nxt = bars.get(b + 1)
        crash_next = nxt is not None and bool(((nxt[0] == 0) & (nxt[1] == CRASH)).any())
        burst = len(step) >= FILL_BURST * median and crash_next
        kinds[b] = INNER_FILL if toms >= max(FILL_TOMS, 2 * median_toms + 2) or burst else GROOVE
    return kinds


def build_bank(train: list[Take]) -> DrumModel:
    """The bank of every train bar (see the module docstring) and the variation rate measured on it."""
    styles = sorted({t.style for t in train})
    metres = sorted({t.metre for t in train}, key=lambda m: (m != (4, 4), m))
    perf = {k: [] for k in ("bpm", "style", "drummer", "metre")}
    bar = {k: [] for k in ("perf", "kind", "index")}
    ev = {k: [] for k in ("step", "drum", "velocity", "offset")}
    first = [0]
    for p, take in enumerate(train):
        perf["bpm"].append(take.bpm)
        perf["style"].append(styles.index(take.style))
        perf["drummer"].append(take.drummer)
        perf["metre"].append(metres.index(take.metre))
        bars = take.bars()
        if take.fill:
            most = max(bars, key=lambda b: len(bars[b][0]))
            kinds = {most: FILL}
        else:
            kinds = _bar_kinds(bars, take)
        for b, kind in sorted(kinds.items()):
            step, drum, vel, off = bars[b]
            order = np.lexsort((drum, step))
            bar["perf"].append(p)
            bar["kind"].append(kind)
            bar["index"].append(b)
            ev["step"].append(step[order])
            ev["drum"].append(drum[order])
            ev["velocity"].append(vel[order])
            ev["offset"].append(np.clip(np.round(off[order] / OFFSET_UNIT), -127, 127))
            first.append(first[-1] + len(step))
    arrays = {
        "perf.bpm": np.asarray(perf["bpm"], np.float32), "perf.style": np.asarray(perf["style"], np.int16),
        "perf.drummer": np.asarray(perf["drummer"], np.int16), "perf.metre": np.asarray(perf["metre"], np.int16),
        "bar.first": np.asarray(first, np.int32), "bar.perf": np.asarray(bar["perf"], np.int32),
        "bar.kind": np.asarray(bar["kind"], np.uint8), "bar.index": np.asarray(bar["index"], np.int16),
        "event.step": np.concatenate(ev["step"]).astype(np.uint8),
        "event.drum": np.concatenate(ev["drum"]).astype(np.uint8),
        "event.velocity": np.concatenate(ev["velocity"]).astype(np.uint8),
        "event.offset": np.concatenate(ev["offset"]).astype(np.int8),
    }
    config = {"styles": styles, "metres": [list(m) for m in metres], "variation_rate": 0.0}
    model = DrumModel.from_arrays(arrays, config)
    model = DrumModel.from_arrays({**arrays, "bar.repeats": repeats(model)}, config)
    model.config["variation_rate"] = variation_rate(model)
    return model


def repeats(model: DrumModel) -> np.ndarray:
    """(bars,) uint8: how many other bars of the same take and kind lie within LOOSE (Jaccard) of each bar."""
    out = np.zeros(len(model.bar_perf), dtype=np.int64)
    for p in range(len(model.perf_bpm)):
        num, den = model.metres[model.perf_metre[p]]
        steps = int(round(num * 4 / den * STEPS_PER_BEAT))
        for kind in (GROOVE, INNER_FILL):
            bars = np.flatnonzero((model.bar_perf == p) & (model.bar_kind == kind))
            if len(bars) < 2:
                continue
            g = pattern_matrix(model.first, model.step, model.drum, bars, steps).astype(np.float32)
            inter = g @ g.T
            size = g.sum(1)
            dist = 1 - inter / np.maximum(size[:, None] + size[None] - inter, 1)
            out[bars] = (dist <= LOOSE).sum(1) - 1
    return np.clip(out, 0, 255).astype(np.uint8)


def variation_rate(model: DrumModel) -> float:
    """How often a drummer's groove bar is a variant (TIGHT < d <= LOOSE) of the bar two before rather
    than a take of the same pattern (d <= TIGHT), over the train grooves."""
    near = varied = 0
    for p in range(len(model.perf_bpm)):
        num, den = model.metres[model.perf_metre[p]]
        steps = int(round(num * 4 / den * STEPS_PER_BEAT))
        bars = np.flatnonzero((model.bar_perf == p) & (model.bar_kind == GROOVE))
        if len(bars) < 3:
            continue
        grid = pattern_matrix(model.first, model.step, model.drum, bars, steps)
        idx = model.bar_index[bars]
        pos = {int(i): r for r, i in enumerate(idx)}
        for r, i in enumerate(idx):
            if int(i) - 2 in pos:
                a, b = grid[r], grid[pos[int(i) - 2]]
                d = 1 - (a & b).sum() / max((a | b).sum(), 1)
                near += d <= TIGHT
                varied += TIGHT < d <= LOOSE
    return float(varied / max(near + varied, 1))


# ---------------------------------------------------------------------------------------------- evaluation
GENERATED_STYLES = ("rock", "funk", "jazz", "latin", "hiphop")  # families with enough val grooves to judge
AROUSALS = (-1.0, -0.5, 0.0, 0.5, 1.0)


def _bar_features(step: np.ndarray, drum: np.ndarray, vel: np.ndarray, steps: int = 16) -> np.ndarray:
    """A bar's style features: its 16th-grid hit map per class and each class's mean velocity / 127."""
    grid = np.zeros((steps, len(DRUM_NAMES)))
    grid[np.minimum(step, steps - 1), drum] = 1.0
    loud = np.zeros(len(DRUM_NAMES))
    for c in np.unique(drum):
        loud[c] = vel[drum == c].mean() / 127.0
    return np.concatenate([grid.ravel(), loud])


def _groove_bars(ts: list[Take]) -> list[tuple[str, tuple]]:
    """(style family, bar) for every complete groove bar of the 4/4 groove takes."""
    out = []
    for t in ts:
        if t.fill or t.metre != (4, 4):
            continue
        bars = t.bars()
        for b, kind in _bar_kinds(bars, t).items():
            if kind == GROOVE:
                out.append((t.style.split("/")[0], bars[b] + (t.bpm,)))
    return out


def _notes_bars(notes, n_bars: int, tempo: float) -> list[tuple]:
    """A generated part cut back into (step, class, velocity, offset, bpm) bars on the 16th grid."""
    pitch_to_class = {p: c for c, p in enumerate((36, 38, 42, 46, 43, 47, 50, 49, 51))}
    g = np.round(notes.start * STEPS_PER_BEAT).astype(np.int64)
    off = notes.start - g / STEPS_PER_BEAT
    steps = int(round(notes.beats_per_bar * STEPS_PER_BEAT))
    drum = np.array([pitch_to_class[int(p)] for p in notes.pitch], dtype=np.int64)
    out = []
    for b in range(n_bars):
        k = (g // steps) == b
        out.append((g[k] % steps, drum[k], notes.velocity[k].astype(np.float64), off[k], tempo))
    return out


def _off_grid(bars: list[tuple]) -> float:
    """Share of hits more than 10 ms from the 16th grid."""
    ms = np.concatenate([np.abs(b[3]) * 60000.0 / b[4] for b in bars])
    return float((ms > 10.0).mean())


def evaluate(model: DrumModel, data_root: str | Path | None = None, seeds: int = 6,
             train: list[Take] | None = None) -> dict:
    """Validation figures (see benchmarks/drums.py for what each means).

    Args:
        model: the drum model.
        data_root: datasets folder.
        seeds: parts generated per (style, arousal).
        train: the train takes (read again when not given) for the style classifier.

    Returns:
        A flat dict of figures (JSON-serialisable).
    """
    val = takes(data_root, "validation")
    train = train if train is not None else takes(data_root, "train")
    real = _groove_bars(val)
    hits = np.array([len(b[0]) for _, b in real])
    vel = np.array([b[2].mean() for _, b in real])
    out: dict = {"val_groove_bars": len(real),
                 "real_hits_per_bar_p10": float(np.percentile(hits, 10)),
                 "real_hits_per_bar_p50": float(np.percentile(hits, 50)),
                 "real_hits_per_bar_p90": float(np.percentile(hits, 90)),
                 "real_velocity_p10": float(np.percentile(vel, 10)), "real_velocity_p50": float(np.percentile(vel, 50)),
                 "real_velocity_p90": float(np.percentile(vel, 90)),
                 "real_off_grid_10ms": _off_grid([b for _, b in real])}
    val_fills = [t for t in val if t.fill and t.metre == (4, 4)]
    out["real_fill_hits_per_bar"] = float(np.mean([max(len(v[0]) for v in t.bars().values()) for t in val_fills]))

    # style classifier: nearest centroid over the families judged, fitted on train grooves
    tr = [(s, b) for s, b in _groove_bars(train) if s in GENERATED_STYLES]
    x = np.stack([_bar_features(*b[:3]) for _, b in tr])
    y = np.array([s for s, _ in tr])
    centroids = np.stack([x[y == s].mean(0) for s in GENERATED_STYLES])

    def classify(bars: list[tuple]) -> np.ndarray:
        f = np.stack([_bar_features(*b[:3]) for b in bars])
        return np.array(GENERATED_STYLES)[((f[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)]

    def balanced(pred: np.ndarray, truth: np.ndarray) -> float:  # mean recall over the styles present
        return float(np.mean([(pred[truth == s] == s).mean() for s in GENERATED_STYLES if (truth == s).any()]))

    vr = [(s, b) for s, b in real if s in GENERATED_STYLES]
    out["style_acc_real_val"] = balanced(classify([b for _, b in vr]), np.array([s for s, _ in vr]))
    out["style_acc_real_train"] = balanced(classify([b for _, b in tr]), y)
    out["style_chance"] = 1.0 / len(GENERATED_STYLES)

    n_bars, fills = 16, (7, 15)
    gen_hits: dict[float, list] = {a: [] for a in AROUSALS}
    gen_vel: dict[float, list] = {a: [] for a in AROUSALS}
    groove_all, fill_all, style_hit, busier = [], [], [], []
    for style in GENERATED_STYLES:
        for a in AROUSALS:
            for seed in range(seeds):
                tempo = (90.0, 110.0, 130.0)[seed % 3]
                notes = model.generate(n_bars, style=style, tempo=tempo, arousal=a, seed=seed, fills=fills,
                                       crashes=(0,), end=False)
                bars = _notes_bars(notes, n_bars, tempo)
                grooves = [b for i, b in enumerate(bars) if i not in fills and i - 1 not in fills and i != 0]
                gen_hits[a] += [len(b[0]) for b in grooves]
                gen_vel[a] += [b[2].mean() for b in grooves if len(b[2])]
                groove_all += grooves
                fill_all += [bars[i] for i in fills]
                style_hit += list(classify(grooves) == style)
                busier.append(np.mean([len(bars[i][0]) for i in fills]) > np.mean([len(b[0]) for b in grooves]))
    for a in AROUSALS:
        out[f"gen_hits_per_bar_a{a:+.1f}"] = float(np.mean(gen_hits[a]))
        out[f"gen_velocity_a{a:+.1f}"] = float(np.mean(gen_vel[a]))
    h = [out[f"gen_hits_per_bar_a{a:+.1f}"] for a in AROUSALS]
    v = [out[f"gen_velocity_a{a:+.1f}"] for a in AROUSALS]
    out["hits_monotone"] = bool(np.all(np.diff(h) > 0))
    out["velocity_monotone"] = bool(np.all(np.diff(v) > 0))
    out["gen_off_grid_10ms"] = _off_grid(groove_all)
    out["style_acc_generated"] = float(np.mean(style_hit))
    toms = np.array(TOMS)
    out["gen_fill_hits_per_bar"] = float(np.mean([len(b[0]) for b in fill_all]))
    out["gen_groove_hits_per_bar"] = float(np.mean([len(b[0]) for b in groove_all]))
    out["gen_fill_toms_per_bar"] = float(np.mean([np.isin(b[1], toms).sum() for b in fill_all]))
    out["gen_groove_toms_per_bar"] = float(np.mean([np.isin(b[1], toms).sum() for b in groove_all]))
    out["gen_fill_busier_share"] = float(np.mean(busier))
    out["closed_hihat_share_gen"] = float(np.mean(np.concatenate([b[1] for b in groove_all]) == CLOSED_HH))

    ms = []
    for r in range(21):
        t0 = time.perf_counter()
        model.generate(16, style="pop", tempo=120, arousal=0.3, seed=r, fills=(3, 7, 11, 15), crashes=(0, 8))
        ms.append((time.perf_counter() - t0) * 1000)
    out["ms_16_bars_median"] = float(np.median(ms[1:]))
    return out


def train_drums(data_root: str | None = None, out: str | Path | None = None, seeds: int = 6) -> Path:
    """Build the bank from the train takes, measure it on validation and write `<out>/drums` with its card.

    Args:
        data_root: datasets folder (default: the settings resolver's; Groove MIDI in its groove/).
        out: checkpoints folder (default: the shipped one).
        seeds: generated parts per (style, arousal) in the validation figures.

    Returns:
        The checkpoint directory written.
    """
    from emomusic.settings import checkpoints_root
    from emomusic.training.cards import render_card

    out = Path(out) if out else checkpoints_root()
    t0 = time.perf_counter()
    train = takes(data_root, "train")
    model = build_bank(train)
    kinds = np.bincount(model.bar_kind, minlength=3)
    counts = {"train_takes": len(train), "train_groove_takes": sum(not t.fill for t in train),
              "train_fill_takes": sum(t.fill for t in train), "bank_groove_bars": int(kinds[GROOVE]),
              "bank_fill_bars": int(kinds[FILL]), "bank_inner_fill_bars": int(kinds[INNER_FILL]),
              "bank_hits": int(len(model.step)), "variation_rate": model.config["variation_rate"]}
    metrics = counts | evaluate(model, data_root, seeds, train) | {"seconds": round(time.perf_counter() - t0, 1)}
    rows = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    metres = ", ".join(f"{n}/{d}" for n, d in model.metres)
    card = render_card("drums", metric_rows=rows, metres=metres, styles=", ".join(model.styles()),
                       licence=LICENCE, counts=counts)
    return model.save(out / "drums", metrics, card)


def main(argv: list[str] | None = None) -> None:
    """Command line: build, measure and write the drums checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root")
    ap.add_argument("--out")
    ap.add_argument("--seeds", type=int, default=6)
    a = ap.parse_args(argv)
    print(train_drums(a.data_root, a.out, a.seeds))


if __name__ == "__main__":
    main()
