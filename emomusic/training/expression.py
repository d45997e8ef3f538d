"""Train the expression model (velocities and sustain pedal) on performances.

    emomusic train expression [--data-root DIR] [--out checkpoints] [--max-pieces N]

Performances: EMOPIA's transcriptions of recorded pop piano, ASAP's recorded classical performances
(not its scores: a score has one velocity and no pedal), POP909's played-in arrangements. Train/val as
each dataset splits (by song or piece). Val figures beside the baselines a renderer must beat: the
velocity error of keeping every note at its local level (what flat generator output amounts to), and
the pedal frame accuracy of the majority answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emomusic.expression.model import (
    FRAME_FEATURES,
    NOTE_FEATURES,
    ExpressionModel,
    frame_features,
    local_level,
    note_features,
    pedal_frames,
)
from emomusic.training.cards import render_card
from emomusic.training.datasets import LICENCES, records

SOURCES = ("emopia", "asap", "pop909")
MAX_FRAMES_PER_PIECE = 3000  # a long ASAP performance would otherwise outweigh dozens of clips
HIDDEN = 32


def _performances(data_root: str | None, max_pieces: int) -> dict[str, list]:
    """Train and val records of performances with notes and pedal (ASAP scores left out)."""
    recs = [r for r in records(data_root, SOURCES) if not (r.dataset == "asap" and r.path.endswith("midi_score.mid"))]
    rng = np.random.default_rng(0)
    out: dict[str, list] = {"train": [], "val": []}
    for split in out:
        for ds in SOURCES:
            chosen = [r for r in recs if r.split == split and r.dataset == ds]
            rng.shuffle(chosen)
            out[split] += chosen[:max_pieces if split == "train" else max(1, max_pieces // 4)]
    return out


def _examples(recs: list) -> dict[str, np.ndarray]:
    """Stacked velocity and pedal examples of the records whose files hold pedal and varied velocities."""
    from emomusic.errors import InvalidInputError
    from emomusic.music.midi import load_notes

    xv, yv, xp, yp, src, owner = [], [], [], [], [], []
    rng = np.random.default_rng(1)
    for r in recs:
        try:
            notes = load_notes(r.path)
        except InvalidInputError:
            continue
        if len(notes) < 20 or len(np.unique(notes.velocity)) < 8:
            continue  # a sequenced file with flat velocities teaches nothing about dynamics
        xv.append(note_features(notes))
        yv.append((notes.velocity - local_level(notes)).astype(np.float32))
        owner.append(np.full(len(notes), len(src)))
        if len(notes.pedals):
            frames, x = frame_features(notes)
            keep = rng.permutation(len(frames))[:MAX_FRAMES_PER_PIECE]
            xp.append(x[keep])
            yp.append(pedal_frames(notes, frames)[keep].astype(np.float32))
        src.append(r.dataset)
    return {"xv": np.concatenate(xv), "yv": np.concatenate(yv), "xp": np.concatenate(xp),
            "yp": np.concatenate(yp), "pieces": np.asarray(src), "piece_of_note": np.concatenate(owner)}


def piece_spread(residual: np.ndarray, piece_of_note: np.ndarray) -> float:
    """The median over pieces of each piece's residual std: one performer's note-to-note variation.

    Not the std pooled over every note: that weighs pieces by their length, so long concert performances
    (thousands of notes, each with a wider spread than a pop clip's) set it, and it also counts how
    differently performers vary as variation within one piece.

    Args:
        residual: what the velocity network leaves unexplained, per note.
        piece_of_note: the piece index of each note.

    Returns:
        The median per-piece std (0 for no notes).
    """
    if not len(residual):
        return 0.0
    n = np.bincount(piece_of_note)
    mean = np.bincount(piece_of_note, residual) / np.maximum(n, 1)
    var = np.bincount(piece_of_note, (residual - mean[piece_of_note]) ** 2) / np.maximum(n, 1)
    return float(np.median(np.sqrt(var[n > 0])))


def _fit(x: np.ndarray, y: np.ndarray, loss: str, epochs: int, seed: int = 0):
    """A two-hidden-layer MLP fitted with Adam; returns (layers as numpy, (mean, std))."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y).float()
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                              torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    crit = torch.nn.HuberLoss(delta=10.0) if loss == "huber" else torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(4096):
            opt.zero_grad()
            crit(net(xt[idx])[:, 0], yt[idx]).backward()
            opt.step()
    layers = [(m.weight.detach().numpy().astype(np.float64), m.bias.detach().numpy().astype(np.float64))
              for m in net if isinstance(m, torch.nn.Linear)]
    return layers, (mean.astype(np.float64), std.astype(np.float64))


def evaluate(model: ExpressionModel, val: dict[str, np.ndarray]) -> dict[str, float]:
    """Val figures beside the baselines (see the module docstring).

    Args:
        model: the fitted model.
        val: `_examples` of the val records.

    Returns:
        metric -> value.
    """
    from emomusic.numerics import mlp

    m, s = model.velocity_norm
    pred = mlp(model.velocity_layers, (val["xv"] - m) / s)
    top = val["xv"][:, NOTE_FEATURES.index("top")] > 0.5
    m, s = model.pedal_norm
    prob = 1 / (1 + np.exp(-mlp(model.pedal_layers, (val["xp"] - m) / s)))
    down = val["yp"] > 0.5
    return {
        "velocity_mae": float(np.abs(val["yv"] - pred).mean()),
        "velocity_spread": model.velocity_spread,
        "velocity_spread_val": piece_spread(val["yv"] - pred, val["piece_of_note"]),
        "velocity_residual_std_val": float((val["yv"] - pred).std()),
        "velocity_mae_flat_baseline": float(np.abs(val["yv"]).mean()),
        "top_voice_excess_real": float(val["yv"][top].mean() - val["yv"][~top].mean()),
        "top_voice_excess_predicted": float(pred[top].mean() - pred[~top].mean()),
        "pedal_frame_accuracy": float(((prob > model.pedal_threshold) == down).mean()),
        "pedal_frame_accuracy_majority": float(max(down.mean(), 1 - down.mean())),
        "pedal_down_share_real": float(down.mean()),
        "pedal_down_share_predicted": float((prob > model.pedal_threshold).mean()),
        "pedal_threshold": model.pedal_threshold,
    }


def train_expression(data_root: str | None = None, out: str | Path | None = None, max_pieces: int = 400,
                     epochs: int = 8) -> Path:
    """Fit the expression model on performances, measure it on val and write `expression/` with its card.

    Args:
        data_root: datasets folder (default: the settings resolver's).
        out: checkpoints folder (default: the shipped one).
        max_pieces: train pieces per dataset at most (val: a quarter as many).
        epochs: passes over the examples.

    Returns:
        The checkpoint directory written.
    """
    from emomusic.settings import checkpoints_root

    out = Path(out) if out else checkpoints_root()
    recs = _performances(data_root, max_pieces)
    train, val = _examples(recs["train"]), _examples(recs["val"])
    vel_layers, vel_norm = _fit(train["xv"], train["yv"], "huber", epochs)
    ped_layers, ped_norm = _fit(train["xp"], train["yp"], "bce", epochs)
    from emomusic.numerics import mlp

    prob = 1 / (1 + np.exp(-mlp(ped_layers, (train["xp"] - ped_norm[0]) / ped_norm[1])))
    threshold = float(np.quantile(prob, 1 - train["yp"].mean()))  # down as often as in the performances
    residual = train["yv"] - mlp(vel_layers, (train["xv"] - vel_norm[0]) / vel_norm[1])
    model = ExpressionModel(vel_layers, vel_norm, ped_layers, ped_norm, threshold,
                            piece_spread(residual, train["piece_of_note"]))
    metrics = evaluate(model, val)
    counts = {f"n_{split}_{ds}": int((d["pieces"] == ds).sum()) for split, d in (("train", train), ("val", val))
              for ds in SOURCES}
    metrics |= counts | {"n_train_notes": int(len(train["yv"])), "n_train_frames": int(len(train["yp"]))}
    card = render_card("expression", metric_rows="\n".join(f"| {k} | {v:.3f} |" for k, v in metrics.items()
                                                          if isinstance(v, float)),
                       counts=", ".join(f"{k[2:]} {v}" for k, v in counts.items()),
                       note_features=", ".join(NOTE_FEATURES), frame_features=", ".join(FRAME_FEATURES),
                       emopia_licence=LICENCES["emopia"], asap_licence=LICENCES["asap"],
                       pop909_licence=LICENCES["pop909"])
    return model.save(out / "expression", metrics, card)
