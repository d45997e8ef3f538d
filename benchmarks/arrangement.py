"""Arrangements: does the emotion survive, does every part fit its instrument, does MuseScore read it, and
what does arranging cost?

    python benchmarks/arrangement.py [--per-quadrant 10] [--bars 16] [--seed-offset 1300000]
                                     [--arrangements band,strings,chamber,chiptune] [--musescore 2]

For each quadrant, `--per-quadrant` pieces are generated (the shipped models, one candidate each, seeds
nothing was tuned on) and each is arranged with every preset. Two judges of emotion read the piano
piece and each arrangement's pitched parts (drums excluded): the feature judge (EMOPIA train only) and
the project's recognizer (reading the written MIDI files, which skip the drum track as every reader
does). Also measured per arrangement: notes outside their instrument's range, pitches two tracks
sound at once (doubled unisons), how many files MuseScore 3 imports headless with one part per track,
how arousal shows (drum hits per bar and drum velocity, low- vs high-arousal quadrants), and the time
`EmoMusic.generate` takes with the arrangement against the same request without it (interleaved, same
seeds, medians; the models are loaded once before timing, their load time reported apart).

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.music.tracks import Arrangement  # noqa: E402
from emomusic.vocab.emotions import QUADRANTS  # noqa: E402
from emomusic.vocab.instruments import instrument  # noqa: E402

HIGH_AROUSAL = ("Q1", "Q2")


def out_of_range(arr: Arrangement) -> int:
    """Notes outside their track's instrument range (drums not counted)."""
    return sum(int(((t.notes.pitch < instrument(t.program).low) | (t.notes.pitch > instrument(t.program).high)).sum())
               for t in arr.tracks if not t.drums)


def unisons(arr: Arrangement) -> int:
    """Pairs of notes in two different pitched tracks that sound the same pitch at the same time."""
    parts = [t.notes for t in arr.tracks if not t.drums]
    count = 0
    for i, a in enumerate(parts):
        for b in parts[i + 1:]:
            for p in np.intersect1d(a.pitch, b.pitch):
                sa, ea = a.start[a.pitch == p], (a.start + a.duration)[a.pitch == p]
                sb, eb = b.start[b.pitch == p], (b.start + b.duration)[b.pitch == p]
                overlap = np.minimum(ea[:, None], eb[None, :]) - np.maximum(sa[:, None], sb[None, :])
                count += int((overlap > 1e-6).sum())
    return count


def musescore_parts(midi: Path, tmp: Path) -> int | None:
    """Parts MuseScore 3 makes of `midi` (headless import to MusicXML); None when mscore3 is missing."""
    mscore = shutil.which("mscore3")
    if mscore is None:
        return None
    out = tmp / f"{midi.stem}.musicxml"
    env = {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([mscore, "-o", str(out), str(midi)], env=env, capture_output=True, timeout=300)
    if proc.returncode != 0 or not out.is_file():
        return -1
    return out.read_text(encoding="utf-8").count("<score-part ")  # a piano's two staves are one part


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-quadrant", type=int, default=10)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--seed-offset", type=int, default=1_300_000)
    ap.add_argument("--arrangements", default="band,strings,chamber,chiptune")
    ap.add_argument("--musescore", type=int, default=2, help="files per arrangement imported into MuseScore")
    ap.add_argument("--checkpoints", default=None)
    args = ap.parse_args(argv)

    from emomusic.evaluation.judge import FeatureJudge
    from emomusic.export import write
    from emomusic.music.attributes import compute_attributes
    from emomusic.pipeline import EmoMusic
    from emomusic.recognition import recognize
    from emomusic.settings import checkpoints_root

    names = [n.strip() for n in args.arrangements.split(",") if n.strip()]
    em = EmoMusic.from_pretrained(args.checkpoints)
    t0 = time.perf_counter()
    em.arranger("melody")
    em.arranger("drums")
    load_s = time.perf_counter() - t0
    judge = FeatureJudge.load(checkpoints_root(args.checkpoints) / "judge")
    em.generate(emotion="calm", bars=4, seed=0)  # warm the kernels before timing

    rows: dict[str, dict] = {n: {"judge": [], "files": [], "range": 0, "unisons": 0, "parts_ok": 0, "imported": 0,
                                 "hits": {q: [] for q in QUADRANTS}, "drum_vel": {q: [] for q in QUADRANTS},
                                 "extra_s": []} for n in ["piano", *names]}
    truth: list[str] = []
    with tempfile.TemporaryDirectory(prefix="emomusic-arr-") as tmpdir:
        tmp = Path(tmpdir)
        for q in QUADRANTS:
            for j in range(args.per_quadrant):
                seed = args.seed_offset + QUADRANTS.index(q) * 1000 + j
                t = time.perf_counter()
                piano = em.generate(emotion=q, bars=args.bars, seed=seed)[0]
                base_s = time.perf_counter() - t
                truth.append(q)
                path = tmp / f"piano-{q}-{j}.mid"
                write(piano.notes, path)
                rows["piano"]["files"].append(path)
                rows["piano"]["judge"].append(judge.predict(compute_attributes(piano.notes)[None])[0])
                for n in names:
                    t = time.perf_counter()
                    cand = em.generate(emotion=q, bars=args.bars, seed=seed, arrangement=n)[0]
                    rows[n]["extra_s"].append(time.perf_counter() - t - base_s)
                    arr = cand.arrangement
                    r = rows[n]
                    r["judge"].append(judge.predict(compute_attributes(arr.pitched())[None])[0])
                    path = tmp / f"{n}-{q}-{j}.mid"
                    write(arr, path)
                    r["files"].append(path)
                    r["range"] += out_of_range(arr)
                    r["unisons"] += unisons(arr)
                    kit = [t for t in arr.tracks if t.drums]
                    if kit and len(kit[0].notes):
                        r["hits"][q].append(len(kit[0].notes) / args.bars)
                        r["drum_vel"][q].append(float(kit[0].notes.velocity.mean()))
                    if len(r["files"]) <= args.musescore:
                        got = musescore_parts(path, tmp)
                        if got is not None:
                            r["imported"] += 1
                            r["parts_ok"] += int(got == len(arr.tracks))
        result: dict = {"per_quadrant": args.per_quadrant, "bars": args.bars, "seed_offset": args.seed_offset,
                        "model_load_s": round(load_s, 3), "arrangements": {}}
        print(f"{'arrangement':<11} {'judge':>6} {'recog':>6} {'range':>6} {'unison':>6} {'MuseScore':>10} "
              f"{'+s median':>9} {'hits/bar lo→hi':>15} {'drum vel lo→hi':>15}")
        for n, r in rows.items():
            heard = [x.quadrant for x in recognize([str(f) for f in r["files"]], checkpoints=args.checkpoints)]
            jacc = float(np.mean([p == t for p, t in zip(r["judge"], truth, strict=True)]))
            racc = float(np.mean([p == t for p, t in zip(heard, truth, strict=True)]))
            lo = [x for q in QUADRANTS if q not in HIGH_AROUSAL for x in r["hits"][q]]
            hi = [x for q in HIGH_AROUSAL for x in r["hits"][q]]
            vlo = [x for q in QUADRANTS if q not in HIGH_AROUSAL for x in r["drum_vel"][q]]
            vhi = [x for q in HIGH_AROUSAL for x in r["drum_vel"][q]]
            entry = {"judge_4q": round(jacc, 3), "recognizer_4q": round(racc, 3),
                     "recognizer_by_quadrant": {q: round(float(np.mean([h == q for h, t in zip(heard, truth,
                                                                                                strict=True)
                                                                         if t == q])), 2) for q in QUADRANTS}}
            if n != "piano":
                entry |= {"out_of_range_notes": r["range"], "doubled_unisons": r["unisons"],
                          "musescore_one_part_per_track": f"{r['parts_ok']}/{r['imported']}",
                          "extra_seconds_median": round(float(np.median(r["extra_s"])), 3),
                          "drum_hits_per_bar_low_high": [round(float(np.median(lo)), 2) if lo else None,
                                                         round(float(np.median(hi)), 2) if hi else None],
                          "drum_velocity_low_high": [round(float(np.median(vlo)), 1) if vlo else None,
                                                     round(float(np.median(vhi)), 1) if vhi else None]}
            result["arrangements"][n] = entry
            extra = entry.get("extra_seconds_median", "")
            hits = entry.get("drum_hits_per_bar_low_high", "")
            vel = entry.get("drum_velocity_low_high", "")
            print(f"{n:<11} {jacc:>6.3f} {racc:>6.3f} {entry.get('out_of_range_notes', ''):>6} "
                  f"{entry.get('doubled_unisons', ''):>6} {entry.get('musescore_one_part_per_track', ''):>10} "
                  f"{extra!s:>9} {hits!s:>15} {vel!s:>15}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
