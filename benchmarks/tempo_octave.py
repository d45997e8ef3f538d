"""The tempo octave: is the tracked pulse the music's beat, its half or its double? Fit and score.

    python benchmarks/tempo_octave.py [--fit] [--seconds 60] [--data-root DIR]

librosa's beat tracker with its default prior (centred on 120 BPM) finds a steady pulse, but which
level of the metre it locks to is a guess: slow pop ballads come out on their eighth notes. Ground
truth: POP909's written tempo (every song; its notes are on the grid of that tempo) and ASAP's
annotated beats (every performance; a dotted-quarter beat for compound metres). Each piece's first
`--seconds` are tracked with `beats.DEFAULTS`; its label is the factor (0.5, 1, 2) that brings the
tracked tempo within 6% of the true one (pieces near none of the three are left out of the fit and
counted as misses in the scores). Split by song/piece as the training data is (`hash_split`).

`--fit` fits a multinomial logistic regression on the train pieces of both sets on
`beats.octave_features` and prints `OCTAVE_WEIGHTS` and `OCTAVE_BIAS` to paste into
`emomusic/music/beats.py`; without it the shipped constants are scored. Scores on val pieces: the share
whose tempo is within 4% of the true tempo itself (not its double or half), for the tracker alone and
with the octave choice (`beats.REAL_TEMPO`).

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from emomusic.music import beats as bt  # noqa: E402
from emomusic.training.datasets import hash_split  # noqa: E402

FACTORS = np.array(bt.OCTAVE_FACTORS)


def _crop(perf: bt.Performance, seconds: float) -> bt.Performance:
    keep = perf.onset < seconds
    return bt.Performance(perf.onset[keep], perf.duration[keep], perf.pitch[keep], perf.velocity[keep], perf.name)


def _pieces(root: Path, seconds: float):
    """(dataset, split, true tempo, performance) of every POP909 song and ASAP performance."""
    import symusic
    from beats import load_asap

    for mid in sorted(root.glob("POP909/*/[0-9]*.mid")):
        score = symusic.Score(str(mid))
        if len(score.tempos):
            yield ("pop909", hash_split(f"pop909/{mid.parent.name}"), float(np.median([t.qpm for t in score.tempos])),
                   _crop(bt.performance(score, str(mid)), seconds))
    for a in load_asap(root / "asap"):
        b = a.beats[a.beats < seconds]
        if len(b) >= 8:
            yield ("asap", a.split, 60.0 / float(np.median(np.diff(b))) * (1.5 if a.compound else 1.0),
                   _crop(bt.performance(a.path), seconds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", action="store_true", help="fit the octave model and print its constants")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of each piece tracked")
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    args = ap.parse_args(argv)
    from emomusic.settings import data_root

    t0 = time.perf_counter()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, split, true, perf in _pieces(Path(data_root(args.data_root)), args.seconds):
            beats = bt.track_beats(perf, bt.DEFAULTS)
            if len(beats) < 8:
                continue
            rows.append((name, split, true, bt.octave_features(perf, beats), perf, beats))
    x = np.array([r[3] for r in rows])
    tracked = 120.0 * 2.0 ** x[:, 0]
    true = np.array([r[2] for r in rows])
    dist = np.abs(np.log2(true[:, None] / (tracked[:, None] * FACTORS[None, :])))
    label = np.where(dist.min(1) < np.log2(1.06), dist.argmin(1), -1)
    train = np.array([r[1] == "train" for r in rows])
    if args.fit:
        from sklearn.linear_model import LogisticRegression

        fit = train & (label >= 0)
        model = LogisticRegression(C=1.0, max_iter=2000).fit(x[fit], label[fit])
        weights, bias = model.coef_, model.intercept_
        print("OCTAVE_WEIGHTS = np.array(" + json.dumps(np.round(weights, 4).tolist()) + ")")
        print("OCTAVE_BIAS = np.array(" + json.dumps(np.round(bias, 4).tolist()) + ")")
    else:
        weights, bias = bt.OCTAVE_WEIGHTS, bt.OCTAVE_BIAS
    chosen = FACTORS[np.argmax(x @ np.asarray(weights).T + np.asarray(bias), axis=1)]
    result = {"pieces": {}, "tracker": {}, "octave": {}, "class_accuracy": {}, "seconds": args.seconds}
    for name in ("pop909", "asap"):
        val = np.array([r[0] == name and r[1] == "val" for r in rows])
        within = lambda tempo, v=val: float(np.mean(np.abs(tempo[v] / true[v] - 1.0) <= 0.04))  # noqa: E731
        result["pieces"][name] = int(val.sum())
        result["tracker"][name] = within(tracked)
        result["octave"][name] = within(tracked * chosen)
        known = val & (label >= 0)
        result["class_accuracy"][name] = float(np.mean(FACTORS[label[known]] == chosen[known]))
        print(f"{name} val ({val.sum()} pieces): tempo within 4% of the true tempo: tracker "
              f"{result['tracker'][name]:.3f}, with the octave choice {result['octave'][name]:.3f}; "
              f"octave right where one fits "
              f"{result['class_accuracy'][name]:.3f} ({known.sum()} pieces; always 'same': "
              f"{np.mean(label[known] == 1):.3f})")
    print(f"{len(rows)} pieces tracked ({int(train.sum())} train); {time.perf_counter() - t0:.0f} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
