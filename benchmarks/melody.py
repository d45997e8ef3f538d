"""Melody extraction on POP909 val songs: the shipped `checkpoints/melody` against the skyline.

Input: each val song's three tracks merged into one part (as the generator was trained on them);
truth: the notes of its MELODY track. Note-level precision, recall and F1 (a note counts as found
when a melody note has its onset and pitch), pooled over notes and as the mean over songs, for the
model, the skyline on onset groups (the highest note at each onset, onsets within `ONSET_TOL` beats
merged, as the model groups them) and the skyline on exact onsets. Val songs: `hash_split`, never
fitted or tuned on.

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.arrangement.melody import load_melody, skyline  # noqa: E402
from emomusic.training.melody import load_song, score, songs  # noqa: E402


def exact_skyline(notes) -> np.ndarray:
    """The highest note at each exact onset (no grouping of near onsets)."""
    s = np.asarray(notes.start)
    last = np.flatnonzero(np.diff(s, append=np.inf) != 0)  # notes sort by (start, pitch): the last is the top
    out = np.zeros(len(s), dtype=bool)
    out[last] = True
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "melody"), help="melody checkpoint folder")
    ap.add_argument("--max-songs", type=int, help="score at most this many val songs (in song order)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    model = load_melody(args.checkpoint)
    paths = songs(args.data_root)["val"][:args.max_songs]
    data, masks = [], {"model": [], "skyline": [], "skyline_exact_onsets": []}
    for path in paths:
        notes, y = load_song(path)
        data.append({"notes": notes, "y": y})
        masks["model"].append(model.mask(notes))
        masks["skyline"].append(skyline(notes))
        masks["skyline_exact_onsets"].append(exact_skyline(notes))
    result = {name: score(m, data) for name, m in masks.items()}
    result |= {"songs": len(data), "notes": int(sum(len(d["y"]) for d in data)),
               "melody_notes": int(sum(d["y"].sum() for d in data)), "checkpoint": args.checkpoint,
               "seconds": round(time.perf_counter() - t0, 1)}
    print(f"POP909 val: {len(data)} songs, {result['notes']} notes ({result['melody_notes']} melody)")
    print(f"{'method':<22}{'F1':>7}{'prec':>7}{'recall':>7}{'song F1':>9}{'song P':>8}{'song R':>8}")
    for name in masks:
        r = result[name]
        print(f"{name:<22}{r['f1']:>7.3f}{r['precision']:>7.3f}{r['recall']:>7.3f}{r['song_f1']:>9.3f}"
              f"{r['song_precision']:>8.3f}{r['song_recall']:>8.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
