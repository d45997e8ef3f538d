"""Fit and ship EmoGen stage 1 (the clusterer) and the independent feature judge.

    emomusic train clusterer [--data-root DIR] [--out checkpoints]

Reads the prepared caches (`emomusic data prepare`), fits the clusterer on the labelled train
splits (EMOPIA quadrants, VGMIDI quadrants from valence/arousal), fits the judge on EMOPIA train
only, and measures how well attributes separate the quadrants on EMOPIA val.

Real grid: EMOPIA's MIDI are audio transcriptions and VGMIDI's labelled pieces are all written at a
nominal 120 BPM, so the tempo attribute of every piece was the same number, and every attribute
counted in beats (density, durations, gaps, off-beat share) was counted in half-seconds. A generated
piece asked for such a piece's attributes and written at a real tempo sounded denser or sparser than
the piece it imitates. The prepared caches now hold such pieces re-quantised onto the beats tracked
from their notes (`music.beats.real_grid_notes`, `beats.REAL_TEMPO`): librosa's default tempo prior
(centred on 120 BPM, one octave wide), then the learned choice of the pulse's octave (on POP909 val
songs the tempo is the written one for 0.76 of songs, against 0.33 without it). The ASAP-tuned
settings (`beats.TUNED`) find beats better but often lock slow, arpeggiated pieces to the
subdivision (docs/BENCHMARKS.md, beat tracking), which is the error that matters for a tempo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emomusic.conditioning.clusterer import Clusterer
from emomusic.evaluation.judge import FeatureJudge, accuracies
from emomusic.music.beats import is_nominal_performance
from emomusic.training.cards import render_card
from emomusic.training.datasets import LICENCES, load_prepared, prepare


def _metric_rows(metrics: dict) -> str:
    return "\n".join(f"| {k} | {v:.3f} |" for k, v in metrics.items() if isinstance(v, float))


def clusterer_card(metrics: dict) -> str:
    """MODEL_CARD.md of the clusterer (template `training/cards/clusterer.md`).

    Args:
        metrics: `fit_clusterer`'s figures (float entries become the table; `n_train_pieces` is cited).

    Returns:
        The card text.
    """
    return render_card("clusterer", emopia_licence=LICENCES["emopia"], vgmidi_licence=LICENCES["vgmidi"],
                       n_train=metrics["n_train_pieces"], metric_rows=_metric_rows(metrics),
                       **{k: metrics.get(k, 0) for k in ("tempo_tracked", "tempo_kept")})


def judge_card(metrics: dict) -> str:
    """MODEL_CARD.md of the feature judge (template `training/cards/judge.md`).

    Args:
        metrics: `fit_clusterer`'s figures (float entries become the table; `n_emopia_train` is cited).

    Returns:
        The card text.
    """
    return render_card("judge", n_train=metrics["n_emopia_train"], emopia_licence=LICENCES["emopia"],
                       metric_rows=_metric_rows(metrics))


def tracked_tempi(paths: list[str]) -> np.ndarray:
    """Quarter notes per minute of each file's tracked beats (`beats.REAL_TEMPO`; see above).

    Args:
        paths: MIDI files of performances on a nominal grid.

    Returns:
        One tempo per file; NaN where too few notes to find a beat.
    """
    from emomusic.errors import InvalidInputError
    from emomusic.music import beats

    out = np.full(len(paths), np.nan)
    for i, p in enumerate(paths):
        try:
            out[i] = beats.grid_tempo(beats.track(p, beats.REAL_TEMPO))
        except InvalidInputError:
            continue
    return out


def fit_clusterer(data_root: str | None = None, out: str | Path | None = None) -> Path:
    """Fit clusterer + judge, write both with their cards.

    Args:
        data_root: datasets folder (default: the settings resolver's).
        out: checkpoints folder to write `clusterer/` and `judge/` into (default: the shipped one).

    Returns:
        The checkpoints folder written.
    """
    from emomusic.settings import checkpoints_root

    out = Path(out) if out else checkpoints_root()
    prepare(data_root, ("emopia", "vgmidi"))
    data = load_prepared(("emopia", "vgmidi"))
    train = data.mask(split="train")
    emopia = data.mask(dataset="emopia")
    q = [r.quadrant for r in data.records]
    ids = [r.id for r in data.records]
    attributes = data.attributes.astype(np.float64)  # prepared on the tracked grid (`beats.real_grid_notes`)
    nominal = sum(is_nominal_performance(r.path) for r in data.records)
    tempo_counts = {"tracked": nominal, "kept": len(data.records) - nominal}

    tr = np.flatnonzero(train)
    clus = Clusterer.fit(attributes[tr], [q[i] for i in tr], [ids[i] for i in tr])

    jt = np.flatnonzero(train & emopia)
    jv = np.flatnonzero(~train & emopia)
    judge = FeatureJudge.fit(attributes[jt], [q[i] for i in jt])
    val = accuracies(judge.predict(attributes[jv]), [q[i] for i in jv])
    vg = np.flatnonzero(~train & data.mask(dataset="vgmidi"))
    val_vg = accuracies(judge.predict(attributes[vg]), [q[i] for i in vg])
    # EmoGen-style separability: the same classifier on attributes binarised at the medians.
    bin_judge = FeatureJudge.fit(clus.binarise(attributes[jt]), [q[i] for i in jt])
    val_bin = accuracies(bin_judge.predict(clus.binarise(attributes[jv])), [q[i] for i in jv])
    metrics = {f"emopia_val_{k}": v for k, v in val.items()}
    metrics |= {f"emopia_val_binarised_{k}": v for k, v in val_bin.items()}
    metrics |= {f"vgmidi_val_{k}": v for k, v in val_vg.items()}
    metrics |= {f"tempo_{k}": v for k, v in tempo_counts.items()}
    metrics |= {"n_train_pieces": int(len(tr)), "n_emopia_train": int(len(jt)), "n_emopia_val": int(len(jv))}

    clus.save(out / "clusterer", metrics, clusterer_card(metrics))
    judge.save(out / "judge", metrics, judge_card(metrics))
    return out
