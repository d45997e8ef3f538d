"""Humming transcription accuracy and speed on hums synthesised in code, against a naive baseline.

    python benchmarks/humming.py [--hums N]

Each hum is a random 20-note diatonic melody (C3..C6, 70–150 BPM, voice up to ±40 cents off A440) sung
as a harmonic tone with vibrato, white noise, portamento into every other note and silent breaths, made
by `synth_hum` from tests/test_prompt_media.py. Conditions: typical (±30-cent vibrato, 20 dB SNR,
70 ms glides), hard (±50-cent vibrato, 10 dB SNR), slow glides (150 ms glides, most of a short note) and
human timing (typical, each onset off the beat by 30 ms standard deviation).

Both transcribers read the same pYIN pitch track. Baseline: round each frame to a semitone and keep
runs of at least 80 ms. Ours: `emomusic.prompt.humming.notes_from_pitch` (tuning, vibrato-proof median,
hysteresis, glide frames joined to the next note). A note is recovered when a transcribed note has the
same pitch and starts within 100 ms. Rhythm: recovered notes whose quantised start is the true start
in beats (the tempo estimate may be half or double; that is scaled away).

Prints one line per condition, then one JSON line with all figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from test_prompt_media import _recovered, synth_hum  # noqa: E402

from emomusic.prompt.humming import (  # noqa: E402
    HOP,
    SAMPLE_RATE,
    HummedNote,
    beat_grid,
    notes_from_pitch,
    pitch_track,
    quantise,
)

CONDITIONS = {
    "typical": dict(vibrato=0.3, snr_db=20.0, glide_s=0.07),
    "hard": dict(vibrato=0.5, snr_db=10.0, glide_s=0.07),
    "slow glides": dict(vibrato=0.3, snr_db=20.0, glide_s=0.15),
    "human timing": dict(vibrato=0.3, snr_db=20.0, glide_s=0.07, jitter_s=0.03),
}


def naive_notes(midi: np.ndarray) -> list[HummedNote]:
    """Round every frame, cut where the rounded pitch or voicing changes, keep runs of >= 80 ms."""
    q = np.where(np.isfinite(midi), np.round(np.nan_to_num(midi, nan=-1)), -1).astype(int)
    edges = np.flatnonzero(np.diff(q)) + 1
    notes = []
    for a, b in zip(np.r_[0, edges], np.r_[edges, len(q)], strict=True):
        if q[a] >= 0 and b - a >= 5:
            notes.append(HummedNote(int(q[a]), a * HOP / SAMPLE_RATE, b * HOP / SAMPLE_RATE))
    return notes


def hum_case(i: int, condition: dict) -> tuple[list[tuple[int, float]], list[float], float, dict]:
    rng = np.random.default_rng(1000 + i)
    base = int(rng.choice([48, 55, 60, 67, 72]))
    tempo = float(rng.choice([70, 90, 100, 120, 150]))
    melody = [(base + int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12, 14])) - 2, float(rng.choice([0.5, 1, 1, 1.5, 2])))
              for _ in range(20)]
    breaths = tuple(int(x) for x in rng.choice(range(1, 20), 5, replace=False))
    y, truth = synth_hum(melody, tempo, seed=i, detune=float(rng.uniform(-0.4, 0.4)), breaths=breaths,
                         glides=tuple(range(1, 20, 2)), **condition)
    beats = np.cumsum([0.0] + [b for _, b in melody[:-1]])
    return truth, beats.tolist(), tempo, {"y": y}


def rhythm_hits(sung: list[HummedNote], truth, beats, tempo_true: float) -> tuple[int, float]:
    """Recovered notes whose quantised start equals the true start (in beats, scaled for half/double tempo)."""
    tempo, origin = beat_grid(np.array([n.onset for n in sung]))
    melody = quantise(sung, tempo, origin)
    scale = min((0.5, 1.0, 2.0), key=lambda k: abs(np.log(tempo / (tempo_true * k))))
    first = truth[0][1]
    onsets = [n.onset for n in sung]
    hits = 0
    for (p, t), b in zip(truth, beats, strict=True):
        j = int(np.argmin([abs(o - t) for o in onsets]))
        if abs(onsets[j] - t) <= 0.1 and sung[j].pitch == p and abs(onsets[0] - first) <= 0.1:
            hits += melody.start[j] == round(b * scale * 8) / 8
    return hits, tempo / (tempo_true * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hums", type=int, default=10, help="hums per condition")
    args = parser.parse_args()
    results = {}
    for name, condition in CONDITIONS.items():
        tot = {"notes": 0, "ours_hit": 0, "ours_found": 0, "naive_hit": 0, "naive_found": 0, "rhythm": 0,
               "tempo_ok": 0, "audio_s": 0.0, "track_s": 0.0, "segment_s": 0.0}
        for i in range(args.hums):
            truth, beats, tempo_true, extra = hum_case(i, condition)
            t0 = time.perf_counter()
            midi = pitch_track(extra["y"])
            t1 = time.perf_counter()
            sung, _ = notes_from_pitch(midi)
            t2 = time.perf_counter()
            naive = naive_notes(midi)
            tot["notes"] += len(truth)
            tot["ours_hit"] += _recovered([(n.pitch, n.onset) for n in sung], truth)
            tot["ours_found"] += len(sung)
            tot["naive_hit"] += _recovered([(n.pitch, n.onset) for n in naive], truth)
            tot["naive_found"] += len(naive)
            hits, ratio = rhythm_hits(sung, truth, beats, tempo_true)
            tot["rhythm"] += hits
            tot["tempo_ok"] += abs(ratio - 1) <= 0.04
            tot["audio_s"] += len(extra["y"]) / SAMPLE_RATE
            tot["track_s"] += t1 - t0
            tot["segment_s"] += t2 - t1
        r = {
            "recall": tot["ours_hit"] / tot["notes"], "precision": tot["ours_hit"] / max(tot["ours_found"], 1),
            "naive_recall": tot["naive_hit"] / tot["notes"],
            "naive_precision": tot["naive_hit"] / max(tot["naive_found"], 1),
            "rhythm": tot["rhythm"] / tot["notes"], "tempo_within_4pct": tot["tempo_ok"] / args.hums,
            "pyin_x_realtime": tot["track_s"] / tot["audio_s"],
            "segment_ms_per_hum": 1000 * tot["segment_s"] / args.hums,
        }
        results[name] = {k: round(v, 3) for k, v in r.items()}
        gain = r["recall"] / max(r["naive_recall"], 1e-9)
        print(f"{name:12s} notes {tot['notes']:4d}  recall {r['recall']:.3f} precision {r['precision']:.3f}  "
              f"(naive {r['naive_recall']:.3f}/{r['naive_precision']:.3f}, recall ratio {gain:.2f}x)  "
              f"rhythm {r['rhythm']:.3f}  tempo ok {r['tempo_within_4pct']:.2f}  "
              f"pYIN {r['pyin_x_realtime']:.3f}x realtime, segmentation {r['segment_ms_per_hum']:.1f} ms/hum")
    print(json.dumps({"hums_per_condition": args.hums, **results}))


if __name__ == "__main__":
    main()
