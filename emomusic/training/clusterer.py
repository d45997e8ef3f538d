"""Fit and ship EmoGen stage 1 (the clusterer) and the independent feature judge.

    emomusic train clusterer [--data-root DIR] [--out checkpoints]

Reads the prepared caches (`emomusic data prepare`), fits the clusterer on the labelled train
splits (EMOPIA quadrants, VGMIDI quadrants from valence/arousal), fits the judge on EMOPIA train
only, and measures how well attributes separate the quadrants on EMOPIA val.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emomusic.conditioning.clusterer import Clusterer
from emomusic.evaluation.judge import FeatureJudge, accuracies
from emomusic.training.datasets import LICENCES, load_prepared, prepare


def _card(title: str, body: str, metrics: dict) -> str:
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in metrics.items() if isinstance(v, float))
    return f"# {title}\n\n{body}\n\n| metric | value |\n|---|---|\n{rows}\n"


def fit_clusterer(data_root: str | None = None, out: str | Path | None = None) -> Path:
    """Fit clusterer + judge, write both to `out` (default: the shipped checkpoints folder)."""
    from emomusic.settings import checkpoints_root

    out = Path(out) if out else checkpoints_root()
    prepare(data_root, ("emopia", "vgmidi"))
    data = load_prepared(("emopia", "vgmidi"))
    train = data.mask(split="train")
    emopia = data.mask(dataset="emopia")
    q = [r.quadrant for r in data.records]
    ids = [r.id for r in data.records]

    tr = np.flatnonzero(train)
    clus = Clusterer.fit(data.attributes[tr], [q[i] for i in tr], [ids[i] for i in tr])

    jt = np.flatnonzero(train & emopia)
    jv = np.flatnonzero(~train & emopia)
    judge = FeatureJudge.fit(data.attributes[jt], [q[i] for i in jt])
    val = accuracies(judge.predict(data.attributes[jv]), [q[i] for i in jv])
    vg = np.flatnonzero(~train & data.mask(dataset="vgmidi"))
    val_vg = accuracies(judge.predict(data.attributes[vg]), [q[i] for i in vg])
    # EmoGen-style separability: the same classifier on attributes binarised at the medians.
    bin_judge = FeatureJudge.fit(clus.binarise(data.attributes[jt]), [q[i] for i in jt])
    val_bin = accuracies(bin_judge.predict(clus.binarise(data.attributes[jv])), [q[i] for i in jv])
    metrics = {f"emopia_val_{k}": v for k, v in val.items()}
    metrics |= {f"emopia_val_binarised_{k}": v for k, v in val_bin.items()}
    metrics |= {f"vgmidi_val_{k}": v for k, v in val_vg.items()}
    metrics |= {"n_train_pieces": int(len(tr)), "n_emopia_train": int(len(jt)), "n_emopia_val": int(len(jv))}

    data_note = (f"Fitted on EMOPIA 1.0 train ({LICENCES['emopia']}) and VGMIDI v2 labelled train "
                 f"({LICENCES['vgmidi']}): {len(tr)} pieces. Non-commercial use (EMOPIA licence).")
    clus.save(out / "clusterer", metrics, _card(
        "emomusic clusterer (EmoGen stage 1)",
        data_note + "\n\nAttributes binarised at the median; quadrant centres in binary space; "
        "generation takes the attributes of the real piece nearest the centre. Separability of the "
        "quadrants by these attributes (logistic regression, EMOPIA train → val):", metrics))
    judge.save(out / "judge", metrics, _card(
        "emomusic feature judge", "Logistic regression on standardised attributes, trained on EMOPIA 1.0 "
        f"train only ({len(jt)} clips; {LICENCES['emopia']}). Used to judge controllability; never used "
        "to select candidates.", metrics))
    return out
