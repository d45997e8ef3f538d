"""Transforming real clips to another mood: is the melody kept, and does the recognizer hear the new quadrant?

    python benchmarks/transform.py [--clips 8] [--bars 16] [--keep melody] [--seed 0] [--data-root DIR]

Held-apart real clips: EMOPIA val (transcriptions, read on their tracked beats as `emomusic transform`
reads them; the same number from each quadrant) and POP909 val (the first songs). Each clip's first
`--bars` bars are written as a user's MIDI file and transformed (`EmoMusic.transform`, the shipped
models) to each quadrant other than its own: EMOPIA's label, or for POP909 (no labels) the quadrant the
recognizer hears in the clip. Measured:
- melody onsets kept: the share of the input melody's onsets (the learned extractor's on the clip) that
  the output's melody track has, within 0.07 beats; and, read back from the written file with no
  knowledge of the tracks, the share the extractor finds again in the output's merged notes. For
  POP909 also against the song's annotated MELODY track;
- heard: the recognizer's quadrant of each output (a 4x4 table target -> heard) and its accuracy, beside
  the baseline: how often it already hears the target in the untransformed clip (same pairs);
- the key before and after, and the accompaniment's share of chord tones.

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.evaluation.report import confusion_text  # noqa: E402
from emomusic.vocab.emotions import QUADRANTS  # noqa: E402


def _clips(recs: list, n: int) -> list:
    """n EMOPIA val clips, the same number from each quadrant (round robin), then the first n POP909 val songs."""
    emopia = {q: [r for r in recs if r.dataset == "emopia" and r.quadrant == q] for q in QUADRANTS}
    chosen = []
    for i in range(n):
        q = QUADRANTS[i % 4]
        if i // 4 < len(emopia[q]):
            chosen.append(emopia[q][i // 4])
    return chosen + [r for r in recs if r.dataset == "pop909"][:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8, help="val clips per dataset")
    ap.add_argument("--bars", type=int, default=16, help="bars of each clip transformed")
    ap.add_argument("--keep", choices=("melody", "harmony"), default="melody")
    ap.add_argument("--candidates", type=int, default=None, help="default: the pipeline's TRANSFORM_CANDIDATES")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--png", default=None, help="a folder to draw the first clip's input and outputs in (piano rolls)")
    args = ap.parse_args(argv)

    from emomusic.cli.continuation import read_tracks
    from emomusic.export.midi import build_midi_file
    from emomusic.export.render import piano_roll_png
    from emomusic.music.attributes import estimate_key
    from emomusic.music.tracks import Arrangement, Track
    from emomusic.music.transform import onsets_kept
    from emomusic.pipeline import TRANSFORM_CANDIDATES, EmoMusic
    from emomusic.recognition import recognize
    from emomusic.request import GenerationRequest
    from emomusic.training.datasets import records
    from emomusic.vocab.constants import key_label

    recs = [r for r in records(args.data_root, ("emopia", "pop909")) if r.split == "val"]
    chosen = _clips(recs, args.clips)
    em = EmoMusic.from_pretrained()
    extract = em.arranger("melody").mask
    k = TRANSFORM_CANDIDATES if args.candidates is None else args.candidates
    rows: list[dict] = []
    seconds: list[float] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="emomusic-transform-") as tmpdir:
        tmp = Path(tmpdir)
        inputs = []
        for n, rec in enumerate(chosen):
            tracks, _tpq, _ = read_tracks(rec.path)
            head = [Track(t.name, t.program, t.role, t.notes.truncate(args.bars)) for t in tracks]
            head = [t for t in head if len(t.notes)]
            if not any(not t.drums for t in head):
                continue
            user = tmp / f"user{n}.mid"
            build_midi_file(Arrangement(tuple(head))).save(str(user))
            inputs.append((n, rec, user))
        heard_in = {n: r.quadrant for (n, _rec, _u), r in zip(inputs, recognize([str(u) for *_x, u in inputs]),
                                                               strict=True)}
        for n, rec, user in inputs:
            tracks, tpq, _ = read_tracks(user)
            pitched = Arrangement(tuple(tracks)).pitched()
            melody_in = pitched.select(extract(pitched))
            annotated = [t.notes for t in tracks if t.name.strip().upper() == "MELODY"]
            own = rec.quadrant or heard_in[n]
            for q in QUADRANTS:
                if q == own:
                    continue
                t0 = time.perf_counter()
                cand = em.transform(tracks, GenerationRequest(emotion=q, seed=args.seed), keep=args.keep,
                                    candidates=k)[0]
                seconds.append(time.perf_counter() - t0)
                out = tmp / f"out{n}{q}.mid"
                build_midi_file(cand.arrangement, tpq=tpq).save(str(out))
                back, _tpq, _ = read_tracks(out)
                merged = Arrangement(tuple(back)).pitched()
                lead = [t.notes for t in back if t.name == next(
                    (c.name for c in cand.arrangement.tracks if c.role == "melody"), None)]
                sec = cand.sections[0]
                row = {"clip": rec.id, "dataset": rec.dataset, "own": own, "heard_in": heard_in[n], "target": q,
                       "file": str(out), "key_before": sec["key_before"], "key": sec["key"], "tempo": sec["tempo"],
                       "chord_tones": cand.scores["chord_tones"],
                       "heard_again": onsets_kept(melody_in.start, merged.select(extract(merged)).start)}
                if args.keep == "melody":
                    row["kept"] = onsets_kept(melody_in.start, lead[0].start) if lead else 0.0
                    if annotated:
                        row["kept_annotated"] = onsets_kept(annotated[0].start, lead[0].start) if lead else 0.0
                rows.append(row)
                if args.png and n == inputs[0][0]:
                    folder = Path(args.png)
                    folder.mkdir(parents=True, exist_ok=True)
                    piano_roll_png(cand.arrangement, folder / f"{rec.dataset}-{q}.png", force=True,
                                   title=f"{rec.id} -> {q} ({sec['key']}, {sec['tempo']:g} BPM)")
                    piano_roll_png(Arrangement(tuple(tracks)), folder / f"{rec.dataset}-input.png", force=True,
                                   title=f"{rec.id} ({key_label(*estimate_key(pitched))}, {pitched.tempo:.0f} BPM)")
        found = recognize([r["file"] for r in rows])
        for r, f in zip(rows, found, strict=True):
            r["heard"] = f.quadrant
    table = {a: {h: sum(1 for r in rows if r["target"] == a and r["heard"] == h) for h in QUADRANTS} for a in QUADRANTS}

    def share(sel: list[dict], key: str) -> float:
        vals = [r[key] for r in sel if key in r]
        return float(np.mean(vals)) if vals else float("nan")

    by = {ds: [r for r in rows if r["dataset"] == ds] for ds in ("emopia", "pop909")}
    result = {
        "clips": len({r["clip"] for r in rows}), "transforms": len(rows), "bars": args.bars, "keep": args.keep,
        "candidates": k, "seed": args.seed,
        "melody_onsets_kept": share(rows, "kept"),
        "melody_onsets_kept_min": float(min((r["kept"] for r in rows if "kept" in r), default=float("nan"))),
        "melody_onsets_found_again": share(rows, "heard_again"),
        "melody_onsets_kept_vs_annotated_pop909": share(rows, "kept_annotated"),
        "heard_as_target": float(np.mean([r["heard"] == r["target"] for r in rows])),
        "baseline_input_heard_as_target": float(np.mean([r["heard_in"] == r["target"] for r in rows])),
        "heard_as_target_by_dataset": {ds: float(np.mean([r["heard"] == r["target"] for r in v])) if v else None
                                       for ds, v in by.items()},
        "arousal_as_target": float(np.mean([(r["heard"] in ("Q1", "Q2")) == (r["target"] in ("Q1", "Q2"))
                                            for r in rows])),
        "valence_as_target": float(np.mean([(r["heard"] in ("Q1", "Q4")) == (r["target"] in ("Q1", "Q4"))
                                            for r in rows])),
        "confusion_target_to_heard": table,
        "chord_tones_median": float(np.median([r["chord_tones"] for r in rows])),
        "mode_changed": float(np.mean([r["key"] != r["key_before"] for r in rows])),
        "seconds_per_transform_median": float(np.median(seconds)), "seconds_total": time.perf_counter() - t_start,
    }
    print(f"clips {result['clips']}, transforms {result['transforms']} ({args.bars} bars, keep {args.keep})")
    print(f"melody onsets kept {result['melody_onsets_kept']:.3f} (min {result['melody_onsets_kept_min']:.3f}); "
          f"found again by the extractor in the written file {result['melody_onsets_found_again']:.3f}")
    print(f"recognizer hears the target: {result['heard_as_target']:.3f} (baseline, the clip untransformed: "
          f"{result['baseline_input_heard_as_target']:.3f}); arousal {result['arousal_as_target']:.3f}, "
          f"valence {result['valence_as_target']:.3f}")
    print(confusion_text(table, "target"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
