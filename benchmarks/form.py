"""Form: do sections come back, do pieces hold and end, per length? Form plans vs through-composed.

    python benchmarks/form.py [--per-quadrant 5] [--lengths 16,32,64] [--real 60]

For each length and quadrant, `--per-quadrant` pieces are generated twice with the same seed,
interleaved: with the default form plan for the length (`music.form.default_form`: AABA in 4-bar
phrases at 16 bars, in 8-bar phrases at 32, verse-chorus with a bridge at 64) and through-composed
(`form="through"`, the previous release: one pass, nothing returns by design). Every piece and the
openings of real val pieces at least that long (POP909, ASAP scores, Nottingham; their grids are
written) are measured on the same statistics:

- returning bars (`evaluation.musicality.returning_bars`): the share of bars after the first whose
  (onset, pitch) set repeats an earlier bar's exactly, or overlaps it by `NEAR_REPEAT` (near);
- the last quarter over the first for notes per beat, polyphony and pitch range
  (`evaluation.musicality.sections`), and the share of pieces inside the real 10-90% range; beside
  the openings, whole real val pieces of about the length (0.85-1.25x, from their first note's bar to
  their last; all val pieces of the three sets): a generated piece is a whole piece, with a return
  and a cadence in its last quarter, which an opening does not have;
- the entry: the first bar's notes per beat over the next bars' (up to 15): real music enters lightly
  (medians: POP909 val 0.63, ASAP scores 0.61, Nottingham 0.18, mostly pickups);
- the longest stall (`evaluation.musicality.longest_stall`);
- endings: the lowest note of the last onset on the tonic, notes sounding past the final barline
  (real: the last bars of whole pieces);
- the recognizer's quadrant for each piece (a second judge: does the form keep the emotion?);
- sections steered far from music: a mean pitch above C6 or under one note a beat, each section of
  the plan cut out alone (a through-composed piece is one section);
- seconds per piece (median).

With `--trajectories N` (0 skips), N emotion trajectories of three 8-bar sections (quadrants drawn with
a seeded generator, neighbours different, e.g. "Q4:8,Q2:8,Q3:8") are generated as one piece each, and
every section is cut out (its own tempo) and given to the recognizer: the share of sections heard as
asked, overall, by quadrant and by place (first sections, later ones, later ones whose mode differs
from the section before), with each section's row (key, notes per beat, mean pitch, what was heard)
in the JSON and a count of sections steered far from music (a mean pitch above C6 or under one note a
beat). Beside it, the same emotions generated as separate 8-bar pieces (jump cuts, the upper bound of
what the recognizer hears).

With `--loops N` (0 skips), N 8-bar pieces per quadrant are generated with `loop=True` and, on the
same seeds, cut where they run out (no ending: what a user looped before); for each, the seam from the
last bar into the first is measured like every other bar transition (`evaluation.musicality.
bar_transitions`: the voice-leading leap in semitones and the pitch classes shared), beside the
pieces' own inner transitions and real openings' (8 bars).

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.evaluation.musicality import (  # noqa: E402
    SECTION_STATISTICS,
    longest_stall,
    musicality,
    returning_bars,
    sections,
)
from emomusic.vocab.emotions import QUADRANT_NAMES, QUADRANTS  # noqa: E402

REAL_SETS = ("pop909", "asap", "nottingham")
WAYS = ("form", "through")


def _bar_beats(path: str, score=None) -> tuple[float, float]:
    """(beats per bar, end in beats) of a file's own grid (`score`: the file already read, if it was)."""
    import symusic

    score = score if score is not None else symusic.Score(path)
    ts = score.time_signatures[0] if len(score.time_signatures) else None
    bar = 4.0 * ts.numerator / ts.denominator if ts is not None else 4.0
    return bar, score.end() / score.ticks_per_quarter


def _val_records(data_root: str | None) -> dict[str, list]:
    """Each of `REAL_SETS`' val records (ASAP: scores only); a dataset that is not there is skipped, said once."""
    from emomusic.training.datasets import records

    out = {}
    for name in REAL_SETS:
        try:
            out[name] = [r for r in records(data_root, (name,)) if r.split == "val"
                         and (name != "asap" or Path(r.path).name == "midi_score.mid")]
        except Exception as e:  # noqa: BLE001 - a missing dataset is reported, not fatal
            print(f"{name}: skipped ({e})", file=sys.stderr)
    return out


def _real(n: int, recs_by_set: dict[str, list]) -> list[tuple[str, str]]:
    """Up to n val files per dataset, spread by a hash of their id: (dataset, path)."""
    out = []
    for name, recs in recs_by_set.items():
        recs = sorted(recs, key=lambda r: hashlib.md5(r.id.encode()).hexdigest())
        out += [(name, r.path) for r in recs[:n]]
    return out


def _measure(path: str, bars: int, bar: float, tail: bool = False) -> dict[str, float]:
    q = max(1, bars // 4)
    secs = sections(path, q, 4)
    ends = musicality(path, bars * bar, tail=True) if tail else musicality(path, bars * bar)
    row = {"exact": returning_bars(path, bars, 1.0), "near": returning_bars(path, bars),
           "stall": float(longest_stall(path, bars)), "ends_on_tonic": ends["ends_on_tonic"],
           "cut_off_at_end": ends["cut_off_at_end"]}
    for k in SECTION_STATISTICS:
        if k != "pitch_classes":
            row[f"{k}_ratio"] = secs[-1][k] / max(secs[0][k], 1e-9)
    # the entry: the first bar's notes per beat over the next (up to 15) bars' mean
    per_bar = [b["density"] for b in sections(path, 1, min(bars, 16))]
    row["entry"] = per_bar[0] / max(float(np.mean(per_bar[1:])), 1e-9) if len(per_bar) > 1 else float("nan")
    return row


def _whole(recs_by_set: dict[str, list]) -> list[tuple[str, int, float]]:
    """Every val piece: (path, bars from its first note's bar to its last note's, beats per bar)."""
    import symusic

    out = []
    for r in (r for recs in recs_by_set.values() for r in recs):
        score = symusic.Score(r.path)
        starts = [n.start for t in score.tracks if not t.is_drum for n in t.notes]
        if starts:
            bar, _end = _bar_beats(r.path, score)
            first, last = (int(t / score.ticks_per_quarter // bar) for t in (min(starts), max(starts)))
            out.append((r.path, last - first + 1, bar))
    return out


def _percentiles(v: list[float]) -> list[float]:
    a = np.asarray(v, dtype=float)
    a = a[np.isfinite(a)]
    return np.percentile(a, [10, 50, 90]).round(3).tolist() if len(a) else [float("nan")] * 3


def _section_notes(notes, first_bar: int, bars: int, tempo: float):
    """One section of a piece as its own piece: notes from its first bar, cut at its end, at its tempo."""
    from dataclasses import replace

    bar = notes.beats_per_bar
    lo, hi = first_bar * bar, (first_bar + bars) * bar
    part = notes.select((notes.start >= lo - 1e-9) & (notes.start < hi - 1e-9))
    return replace(part, start=part.start - lo, duration=np.minimum(part.duration, hi - part.start),
                   tempo=float(tempo), tempos=np.zeros((0, 2)), pedals=np.zeros((0, 2)))


def _far_off(mean_pitch: float, notes_per_beat: float) -> bool:
    """A section steered far from music: a mean pitch above C6 or under one note a beat."""
    return mean_pitch > 84 or notes_per_beat < 1.0


def _far_sections(piece) -> tuple[int, int]:
    """(sections of a generated piece steered far from music, its sections), each section cut out alone."""
    far = 0
    for sec in piece.sections:
        part = _section_notes(piece.notes, sec["first_bar"] - 1, sec["bars"], piece.notes.tempo)
        mean = float(np.mean(part.pitch)) if len(part) else float("nan")
        far += _far_off(mean, len(part) / (sec["bars"] * piece.notes.beats_per_bar))
    return far, len(piece.sections)


def _trajectories(em, n: int, seed_offset: int, folder: Path) -> dict:
    """Recognizer accuracy per trajectory section, in one piece and as separate pieces."""
    from emomusic.export import write
    from emomusic.recognition import recognize

    rng = np.random.default_rng(seed_offset)
    asked, joined, alone, seconds, rows = [], [], [], [], []
    for i in range(n):
        qs = [QUADRANTS[int(rng.integers(4))]]
        while len(qs) < 3:
            q = QUADRANTS[int(rng.integers(4))]
            if q != qs[-1]:
                qs.append(q)
        seed = seed_offset + i
        t0 = time.perf_counter()
        piece = em.generate(trajectory=",".join(f"{q}:8" for q in qs), seed=seed)[0]
        seconds.append(time.perf_counter() - t0)
        for k, sec in enumerate(piece.sections):
            part = _section_notes(piece.notes, sec["first_bar"] - 1, sec["bars"], sec["tempo"])
            joined.append(str(write(part, folder / f"trajectory-{i}-{k}.mid", force=True)))
            mode = sec["key"].split()[-1]
            rows.append({"trajectory": i, "section": k, "quadrant": sec["quadrant"], "key": sec["key"],
                         "mode_changed": k > 0 and mode != piece.sections[k - 1]["key"].split()[-1],
                         "notes_per_beat": len(part) / (sec["bars"] * piece.notes.beats_per_bar),
                         "mean_pitch": float(np.mean(part.pitch)) if len(part) else float("nan")})
            single = em.generate(emotion=sec["quadrant"], bars=8, seed=seed, form="through")[0]
            alone.append(str(write(single.notes, folder / f"alone-{i}-{k}.mid", force=True)))
            asked.append(sec["quadrant"])
    heard = [r.quadrant for r in recognize(joined)]
    heard_alone = [r.quadrant for r in recognize(alone)]
    for row, h in zip(rows, heard, strict=True):
        row["heard"] = h
    hit = float(np.mean([h == a for h, a in zip(heard, asked, strict=True)]))
    hit_alone = float(np.mean([h == a for h, a in zip(heard_alone, asked, strict=True)]))
    by_q = {q: float(np.mean([h == a for h, a in zip(heard, asked, strict=True) if a == q]))
            for q in QUADRANTS if q in asked}

    def share(keep) -> tuple[float, int]:  # heard as asked among the sections `keep` picks, and how many
        picked = [r for r in rows if keep(r)]
        return (float(np.mean([r["heard"] == r["quadrant"] for r in picked])) if picked else float("nan"), len(picked))

    by_place = {"first": share(lambda r: r["section"] == 0), "later": share(lambda r: r["section"] > 0),
                "after_a_change_of_mode": share(lambda r: r["mode_changed"])}
    extreme = sum(_far_off(r["mean_pitch"], r["notes_per_beat"]) for r in rows)
    print(f"\ntrajectories: {n} of three 8-bar sections (seeds from {seed_offset}); recognizer hears each section "
          f"as asked {hit:.2f} in one piece ({', '.join(f'{q} {v:.2f}' for q, v in by_q.items())}), {hit_alone:.2f} "
          f"as separate pieces; {np.median(seconds):.2f} s a 24-bar piece")
    print("  by place: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} ({m})" for k, (v, m) in by_place.items())
          + f"; sections with a mean pitch above C6 or under one note a beat: {extreme}")
    return {"trajectories": n, "sections": len(asked), "section_hits": hit, "section_hits_by_quadrant": by_q,
            "section_hits_by_place": {k: {"hits": v, "sections": m} for k, (v, m) in by_place.items()},
            "extreme_sections": extreme, "section_rows": rows,
            "separate_piece_hits": hit_alone, "seconds_median": float(np.median(seconds))}


def _loops(em, n: int, seed_offset: int, folder: Path, real_paths: list[str]) -> dict:
    """Seam vs inner bar transitions: looped pieces, the same seeds cut without an ending, real openings."""
    from emomusic.evaluation.musicality import bar_transitions

    seams = {"loop": [], "cut": []}
    inner = {"loop": [], "cut": []}
    seconds = {"loop": [], "cut": []}
    for q in QUADRANTS:
        for i in range(n):
            for way in ("loop", "cut"):
                t0 = time.perf_counter()
                piece = em.generate(emotion=QUADRANT_NAMES[q], bars=8, seed=seed_offset + i, loop=way == "loop",
                                    ending=False)[0]
                seconds[way].append(time.perf_counter() - t0)
                path = folder / f"{way}-8-{q}-{i}.mid"
                em.save(piece, path, force=True)
                ins, seam = bar_transitions(str(path), 8)
                inner[way] += ins
                if seam:
                    seams[way].append(seam)
    real_inner = [m for p in real_paths for m in bar_transitions(p, 8)[0]]
    out: dict = {"pieces_per_way": 4 * n}
    print(f"\nloops: {4 * n} 8-bar pieces a way (seeds from {seed_offset}); medians, leap in semitones / shared "
          f"pitch classes")
    for k in ("leap", "shared"):
        row = {f"{way}_seam": float(np.median([m[k] for m in seams[way]])) for way in seams}
        row |= {f"{way}_inner": float(np.median([m[k] for m in inner[way]])) for way in inner}
        row["real_inner"] = [float(x) for x in np.percentile([m[k] for m in real_inner], [10, 50, 90])]
        out[k] = row
        print(f"  {k:>6}: loop seam {row['loop_seam']:.2f}, cut seam {row['cut_seam']:.2f}; inner transitions: loop "
              f"{row['loop_inner']:.2f}, cut {row['cut_inner']:.2f}, real {row['real_inner'][1]:.2f} "
              f"[{row['real_inner'][0]:.2f}-{row['real_inner'][2]:.2f}]")
    out["seconds_median"] = {w: float(np.median(v)) for w, v in seconds.items()}
    print(f"  seconds a piece: loop {out['seconds_median']['loop']:.2f}, cut {out['seconds_median']['cut']:.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-quadrant", type=int, default=5, help="pieces per quadrant, length and way")
    ap.add_argument("--lengths", default="16,32,64", help="piece lengths in bars, comma-separated")
    ap.add_argument("--real", type=int, default=60, help="real val pieces per dataset")
    ap.add_argument("--seed-offset", type=int, default=700_000, help="first seed (nothing was tuned on these)")
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--trajectories", type=int, default=10, help="emotion trajectories to generate (0: none)")
    ap.add_argument("--loops", type=int, default=5, help="looped 8-bar pieces per quadrant (0: none)")
    ap.add_argument("--keep", help="also keep the generated MIDI files in this folder")
    args = ap.parse_args(argv)
    from emomusic.pipeline import EmoMusic
    from emomusic.recognition import recognize

    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    em = EmoMusic.from_pretrained()
    em.generate(emotion="calm", bars=8, seed=0)  # settle: kernels loaded, caches warm
    val = _val_records(args.data_root)
    real_files = _real(args.real, val)
    real_grid = {p: _bar_beats(p) for _, p in real_files}
    whole_files = _whole(val)
    result: dict = {"per_quadrant": args.per_quadrant, "seed_offset": args.seed_offset, "lengths": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for bars in lengths:
            rows = {w: [] for w in WAYS}
            seconds = {w: [] for w in WAYS}
            far = {w: np.zeros(2, dtype=int) for w in WAYS}  # (far-off sections, sections)
            files = {w: [] for w in WAYS}
            asked = []
            for q in QUADRANTS:
                for i in range(args.per_quadrant):
                    asked.append(q)
                    for way in WAYS:  # interleaved: the machine's drift hits both alike
                        t0 = time.perf_counter()
                        piece = em.generate(emotion=QUADRANT_NAMES[q], bars=bars, seed=args.seed_offset + i,
                                            form=None if way == "form" else "through")[0]
                        seconds[way].append(time.perf_counter() - t0)
                        far[way] += _far_sections(piece)
                        path = folder / f"{way}-{bars}-{q}-{i}.mid"
                        em.save(piece, path, force=True)
                        files[way].append(str(path))
                        rows[way].append(_measure(str(path), bars, piece.notes.beats_per_bar))
            heard = {w: [r.quadrant for r in recognize(files[w])] for w in WAYS}
            real_rows = []
            for name, p in real_files:
                bar, end = real_grid[p]
                if end >= bars * bar * 0.95:
                    opening = _measure(p, bars, bar)
                    closing = _measure(p, bars, bar, tail=True)
                    opening.update({k: closing[k] for k in ("ends_on_tonic", "cut_off_at_end")})
                    opening["dataset"] = name
                    real_rows.append(opening)
            whole_rows = [_measure(p, n, bar) for p, n, bar in whole_files if 0.85 * bars <= n <= 1.25 * bars]
            entry: dict = {"real_pieces": {n: sum(r["dataset"] == n for r in real_rows) for n in REAL_SETS},
                           "whole_real_pieces": len(whole_rows)}
            print(f"\n{bars} bars: {len(asked)} pieces a way (seeds from {args.seed_offset}); real openings "
                  f"{entry['real_pieces']}")
            print(f"{'statistic':>20} {'real 10/50/90%':>22} {'form (inside)':>16} {'through (inside)':>18}")
            for k in rows["form"][0]:
                real_v = [r[k] for r in real_rows]
                lo, med, hi = _percentiles(real_v)
                stat = {"real": [lo, med, hi]}
                cells = []
                for way in WAYS:
                    v = np.asarray([r[k] for r in rows[way]], dtype=float)
                    gm = float(np.nanmedian(v))
                    share = float(np.mean((v >= lo - 1e-9) & (v <= hi + 1e-9)))
                    stat[way] = {"median": gm, "mean": float(np.nanmean(v)), "max": float(np.nanmax(v)),
                                 "inside_share": share, "median_inside": bool(lo - 1e-9 <= gm <= hi + 1e-9)}
                    cells.append(f"{gm:7.3f} ({share:.2f})")
                entry[k] = stat
                print(f"{k:>20} {lo:6.3f} {med:6.3f} {hi:6.3f}   {cells[0]:>16} {cells[1]:>18}")
                if k.endswith("_ratio") and whole_rows:
                    wlo, wmed, whi = _percentiles([r[k] for r in whole_rows])
                    stat["whole_real"] = [wlo, wmed, whi]
                    cells = []
                    for way in WAYS:
                        v = np.asarray([r[k] for r in rows[way]], dtype=float)
                        share = float(np.mean((v >= wlo - 1e-9) & (v <= whi + 1e-9)))
                        stat[way]["whole_inside_share"] = share
                        stat[way]["whole_median_inside"] = bool(wlo - 1e-9 <= stat[way]["median"] <= whi + 1e-9)
                        cells.append(f"({share:.2f})")
                    print(f"{'  whole pieces':>20} {wlo:6.3f} {wmed:6.3f} {whi:6.3f}   {cells[0]:>16} {cells[1]:>18}"
                          f"   n={len(whole_rows)}")
            for way in WAYS:
                hits = float(np.mean([h == a for h, a in zip(heard[way], asked, strict=True)]))
                entry[way] = {"recognizer_hits": hits, "seconds_median": float(np.median(seconds[way])),
                              "stall_max": float(max(r["stall"] for r in rows[way])),
                              "far_off_sections": int(far[way][0]), "sections": int(far[way][1])}
                print(f"{way:>9}: recognizer hears the asked quadrant {hits:.2f}; longest stall max "
                      f"{entry[way]['stall_max']:.0f} bars; sections far off {far[way][0]} of {far[way][1]}; "
                      f"{np.median(seconds[way]):.2f} s a piece")
            result["lengths"][bars] = entry
        if args.trajectories:
            result["trajectories"] = _trajectories(em, args.trajectories, args.seed_offset, folder)
        if args.loops:
            short = [p for _, p in real_files if real_grid[p][1] >= 8 * real_grid[p][0]]
            result["loops"] = _loops(em, args.loops, args.seed_offset, folder, short)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
