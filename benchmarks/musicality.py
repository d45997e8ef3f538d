"""Musicality: generated pieces beside real ones on the statistics a musician hears.

For each quadrant, pieces are generated with the shipped model and written as a user gets them
(`EmoMusic.save`); real val pieces of EMOPIA, POP909 and ASAP are measured over the same opening span
(and POP909/ASAP over their last span, for the ending statistics). Each statistic gets the real
10-90% range and whether the generated median lies inside it. Tempo is reported per quadrant beside
VGMIDI's labelled val pieces (EMOPIA's MIDI are transcriptions at a nominal 120 BPM, so their tempo
says nothing). Two judges of emotion: the feature judge's control fit is left to `emomusic evaluate`;
here the project's recognizer says which quadrant it hears in each generated file. Also counted: how
many distinct pieces the vocabulary's words give at one seed.

    python benchmarks/musicality.py --per-quadrant 10 --real 40

The last line is JSON: {"statistics": {name: {low, high, real_median, generated_median, inside}}, ...}.
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

from emomusic.evaluation.musicality import STATISTICS, compare, is_score, musicality, real_files, real_range
from emomusic.vocab.emotions import QUADRANT_NAMES, QUADRANTS, WORDS

ENDING = ("ends_on_tonic", "cut_off_at_end")  # compared with real pieces' last spans
TEMPO_SETS = ("vgmidi",)  # labelled by valence/arousal; its files hold a nominal 120 BPM (tempo shown, not judged)
# statistics of how a piece is played: judged against performances only (an ASAP score has one velocity, no pedal)
EXPRESSIVE = ("distinct_velocities", "pedal", "top_voice_excess")


def _generate(em, per_quadrant: int, bars: int, seed_offset: int, folder: Path,
              progression: bool = True) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {q: [] for q in QUADRANTS}
    for q in QUADRANTS:
        word = QUADRANT_NAMES[q]
        for i in range(per_quadrant):
            seed = seed_offset + i
            best = em.generate(emotion=word, bars=bars, seed=seed, progression=progression)[0]
            path = folder / f"{word}-{seed}.mid"
            em.save(best, path)
            files[q].append(path)
    return files


def _notes_per_second(path: Path, beats: float) -> float:
    """Notes started per second over the first `beats` beats (or up to the last note, if sooner).

    Per second, not per beat: EMOPIA's files sit on a nominal 120 BPM grid, so seconds are the one unit
    its transcriptions and the generated files share.
    """
    import symusic

    score = symusic.Score(str(path), ttype="second")
    span = beats * 60.0 / (float(score.tempos[0].qpm) if len(score.tempos) else 120.0)
    starts = np.concatenate([t.notes.numpy()["time"] for t in score.tracks if not t.is_drum] or [np.zeros(0)])
    ends = np.concatenate([t.notes.numpy()["time"] + t.notes.numpy()["duration"] for t in score.tracks
                           if not t.is_drum] or [np.zeros(0)])
    inside = starts < span
    length = min(span, float(ends[inside].max())) if inside.any() else 0.0
    return float(inside.sum() / length) if length > 0 else 0.0


def _distinct_pieces(em, seed: int, bars: int, progression: bool = True) -> tuple[int, int]:
    """(distinct token sequences, words) over every vocabulary word at one seed."""
    seen = set()
    for word in WORDS:
        tokens = em.generate(emotion=word, bars=bars, seed=seed, progression=progression)[0].tokens
        seen.add(hashlib.sha1(np.asarray(tokens, dtype=np.int64).tobytes()).hexdigest())
    return len(seen), len(WORDS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-quadrant", type=int, default=10, help="generated pieces per quadrant")
    ap.add_argument("--bars", type=int, default=16, help="bars per generated piece")
    ap.add_argument("--real", type=int, default=40, help="real val pieces per dataset (EMOPIA: all of val)")
    ap.add_argument("--seed-offset", type=int, default=900_000, help="first seed (nothing was tuned on these)")
    ap.add_argument("--word-bars", type=int, default=4, help="bars per piece for the vocabulary count")
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints/)")
    ap.add_argument("--keep", help="also keep the generated MIDI files in this folder")
    ap.add_argument("--progression", action=argparse.BooleanOptionalAction, default=True,
                    help="generate with chord plans, as `generate` does by default (--no-progression: the tonic triad)")
    args = ap.parse_args(argv)

    from emomusic.pipeline import EmoMusic
    from emomusic.recognition import recognize

    t0 = time.perf_counter()
    em = EmoMusic.from_pretrained(args.checkpoints)
    span = args.bars * 4.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        gen_files = _generate(em, args.per_quadrant, args.bars, args.seed_offset, folder, args.progression)
        gen = {q: [musicality(f, span) for f in fs] for q, fs in gen_files.items()}
        gen_nps = {q: [_notes_per_second(f, span) for f in fs] for q, fs in gen_files.items()}
        heard = {q: [r.quadrant for r in recognize([str(f) for f in fs], checkpoints=args.checkpoints)]
                 for q, fs in gen_files.items()}
    real_recs = real_files(("emopia", "pop909", "asap", *TEMPO_SETS), args.real, args.data_root)
    real = {name: [musicality(r.path, span) for r in recs] for name, recs in real_recs.items()}
    tails = [musicality(r.path, span, tail=True) for name in ("pop909", "asap") for r in real_recs[name]
             if name == "pop909" or is_score(r.path)]
    distinct, words = _distinct_pieces(em, args.seed_offset, args.word_bars, args.progression)

    all_gen = [m for q in QUADRANTS for m in gen[q]]
    emopia_sample = [m for m, r in sorted(zip(real["emopia"], real_recs["emopia"], strict=True),
                                          key=lambda mr: hashlib.md5(mr[1].id.encode()).hexdigest())][:args.real]
    openings = emopia_sample + real["pop909"] + real["asap"]
    gridded = real["pop909"] + [m for m, r in zip(real["asap"], real_recs["asap"], strict=True) if is_score(r.path)]
    ranges = compare(openings, all_gen)
    # statistics whose real reference needs a real grid or tempo: EMOPIA and ASAP performances are written at
    # a nominal 120 BPM without bars, so their tempo and bar repeats mean nothing
    ranges["tempo"] = real_range([m["tempo"] for m in real["pop909"]], [g["tempo"] for g in all_gen])
    ranges["returning_bars"] = real_range([m["returning_bars"] for m in gridded],
                                          [g["returning_bars"] for g in all_gen])
    for k in ENDING:
        ranges[k] = real_range([t[k] for t in tails], [g[k] for g in all_gen])
    performed = emopia_sample + real["pop909"] + [m for m, r in zip(real["asap"], real_recs["asap"], strict=True)
                                                  if not is_score(r.path)]
    for k in EXPRESSIVE:
        ranges[k] = real_range([m[k] for m in performed], [g[k] for g in all_gen])
    key_share = float(np.nanmean([g["key_signature_agrees"] for g in all_gen]))
    key_right = float(np.nanmean([g["key_signature_right"] for g in all_gen]))
    for k in ("key_signature_agrees", "key_signature_right"):  # real files rarely write one: absolute shares
        del ranges[k]

    print(f"{len(all_gen)} generated pieces ({args.bars} bars, seeds from {args.seed_offset}) vs "
          f"{len(openings)} real val openings (EMOPIA {len(emopia_sample)}, POP909 {len(real['pop909'])}, "
          f"ASAP {len(real['asap'])}); tempo vs POP909; returning bars vs {len(gridded)} gridded openings "
          f"(POP909, ASAP scores); endings vs {len(tails)} real endings (POP909, ASAP scores); "
          f"{', '.join(EXPRESSIVE)} vs {len(performed)} performances")
    print(f"{'statistic':>22} {'real 10%':>9} {'real 90%':>9} {'real med':>9} {'gen med':>9}  inside")
    for k, r in ranges.items():
        print(f"{k:>22} {r.low:9.3f} {r.high:9.3f} {r.real_median:9.3f} {r.generated_median:9.3f}  "
              f"{'yes' if r.inside else 'NO'}")
    print("tempo per quadrant (BPM, median [10-90%]):")
    from emomusic.training.clusterer import tracked_tempi

    tempo = {}
    emopia_q = [r.quadrant for r in real_recs["emopia"]]
    emopia_tracked = tracked_tempi([r.path for r in real_recs["emopia"]])  # the clusterer's tempo attribute
    vg_q = [r.quadrant for r in real_recs["vgmidi"]]
    for q in QUADRANTS:
        g = [m["tempo"] for m in gen[q]]
        v = [m["tempo"] for m, lab in zip(real["vgmidi"], vg_q, strict=True) if lab == q]
        e = [t for t, lab in zip(emopia_tracked, emopia_q, strict=True) if lab == q and np.isfinite(t)]
        tempo[q] = {"generated": float(np.median(g)), "generated_distinct": len(set(np.round(g, 2))),
                    "vgmidi": float(np.median(v)) if v else None, "emopia_tracked": float(np.median(e)) if e else None}
        vr = f"{np.median(v):.1f} [{np.percentile(v, 10):.0f}-{np.percentile(v, 90):.0f}]" if v else "-"
        print(f"  {q} {QUADRANT_NAMES[q]:>5}: generated {np.median(g):.2f} ({len(set(np.round(g, 2)))} distinct), "
              f"VGMIDI val {vr} (n={len(v)}, nominal 120 in the file), EMOPIA val tracked "
              f"{np.median(e) if e else float('nan'):.1f} [{np.percentile(e, 10):.0f}-{np.percentile(e, 90):.0f}]")
    print("notes per second per quadrant (median [real 10-90%]; EMOPIA val clips of that quadrant):")
    density = {}
    for q in QUADRANTS:
        g = gen_nps[q]
        e = [_notes_per_second(r.path, span) for r in real_recs["emopia"] if r.quadrant == q]
        lo, hi = np.percentile(e, [10, 90])
        density[q] = {"generated": float(np.median(g)), "emopia_val": float(np.median(e)), "low": float(lo),
                      "high": float(hi), "inside": bool(lo <= np.median(g) <= hi)}
        print(f"  {q} {QUADRANT_NAMES[q]:>5}: generated {np.median(g):.2f}, EMOPIA val {np.median(e):.2f} "
              f"[{lo:.2f}-{hi:.2f}] (n={len(e)}) {'inside' if density[q]['inside'] else 'OUTSIDE'}")
    all_tempi = [m["tempo"] for q in QUADRANTS for m in gen[q]]
    high = [m["tempo"] for q in ("Q1", "Q2") for m in gen[q]]
    low = [m["tempo"] for q in ("Q3", "Q4") for m in gen[q]]
    arousal_gap = float(np.median(high) - np.median(low))
    print(f"  high- minus low-arousal median: {arousal_gap:+.1f} BPM (target >= 20); "
          f"{len(set(np.round(all_tempi, 1)))} distinct tempi in {len(all_tempi)} pieces")
    hits = {q: sum(h == q for h in heard[q]) / len(heard[q]) for q in QUADRANTS}
    print("recognizer hears the asked quadrant: " + ", ".join(f"{q} {hits[q]:.2f}" for q in QUADRANTS))
    no_c5 = float(np.mean([m["above_c5"] == 0 for m in all_gen]))
    print(f"key signature right (no more accidentals than the judge's key): {key_right:.2f} (target >= 0.95); "
          f"the same key as the judge's: {key_share:.2f}")
    print(f"pieces without a note above C5: {no_c5:.2f}; distinct pieces from the {words} words at one seed: "
          f"{distinct}; {time.perf_counter() - t0:.0f} s")
    inside = sum(r.inside for r in ranges.values())
    print(json.dumps({
        "statistics": {k: {"low": r.low, "high": r.high, "real_median": r.real_median,
                           "generated_median": r.generated_median, "inside": r.inside} for k, r in ranges.items()},
        "inside": inside, "of": len(ranges), "tempo": tempo, "tempo_arousal_gap": arousal_gap,
        "recognizer_hits": hits, "key_signature_agrees": key_share,
        "key_signature_right": key_right, "notes_per_second": density,
        "no_note_above_c5": no_c5,
        "distinct_pieces": distinct, "words": words, "per_quadrant": args.per_quadrant, "bars": args.bars,
        "seed_offset": args.seed_offset, "statistics_described": STATISTICS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
