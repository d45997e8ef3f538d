"""Train the melody extractor on POP909's annotated MELODY tracks.

    python -m emomusic.training.melody [--data-root DIR] [--out checkpoints] [--max-songs N]

Input: every note of a song's three tracks (MELODY, BRIDGE, PIANO) merged into one part, as the
generator was trained on them; label: the note is on the MELODY track. Songs split by
`hash_split("pop909/<id>")`. The train songs are cut once more: a tuning slice (`TUNE_SONGS` songs,
never fitted on) chooses the network (MLP or logistic regression) and the decode (Viterbi over onset
groups with a leap penalty, or per-onset argmax) and its constants; the rest fit the network. The val
songs are only measured: model and skyline precision, recall and F1, pooled over notes and as the mean
over songs.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from emomusic.arrangement.melody import (
    CONTEXT_FEATURES,
    FEATURES,
    MIN_COVERAGE,
    MelodyModel,
    _prf,
    context_features,
    melody_f1,
    melody_features,
    onset_groups,
    skyline,
)
from emomusic.music.notes import Notes
from emomusic.numerics import mlp
from emomusic.training.cards import render_card
from emomusic.training.datasets import LICENCES, hash_split

TUNE_SONGS = 80
HIDDEN = (128, 128)
BIASES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
LEAPS = (0.0, 0.5, 1.0, 2.0, 4.0)


def load_song(path: str | Path) -> tuple[Notes, np.ndarray]:
    """One POP909 song as the merged part (`score_to_notes`) and its MELODY-track labels.

    Args:
        path: the song's MIDI file.

    Returns:
        (notes, (n,) bool: the note is on the MELODY track), in the notes' order.
    """
    from emomusic.music.midi import load_score, score_to_notes

    score = load_score(path)
    notes = score_to_notes(score, str(path))
    tpq = float(score.ticks_per_quarter)
    parts = [(t.notes.numpy(), t.name.strip().upper() == "MELODY") for t in score.tracks
             if not t.is_drum and len(t.notes)]
    cat = {k: np.concatenate([a[k] for a, _ in parts]) for k in ("time", "duration", "pitch")}
    label = np.concatenate([np.full(len(a["time"]), m) for a, m in parts])
    keep = cat["duration"] > 0  # score_to_notes' own filter and order, so the labels line up
    pitch = np.clip(cat["pitch"][keep], 0, 127).astype(np.int16)
    start = cat["time"][keep] / tpq
    order = np.lexsort((pitch, start))
    if not (np.array_equal(pitch[order], notes.pitch) and np.allclose(start[order], notes.start)):
        raise ValueError(f"{path}: labels do not line up with the merged notes")
    return notes, label[keep][order]


def songs(data_root: str | None = None) -> dict[str, list[Path]]:
    """POP909 song files by split ("train", "val"), in song order.

    Args:
        data_root: datasets folder (default: the settings resolver's).

    Returns:
        split -> MIDI paths.
    """
    from emomusic.settings import data_root as resolve

    out: dict[str, list[Path]] = {"train": [], "val": []}
    for d in sorted((resolve(data_root) / "POP909").iterdir()):
        mid = d / f"{d.name}.mid"
        if d.is_dir() and mid.is_file():
            out[hash_split(f"pop909/{d.name}")].append(mid)
    return out


def _examples(paths: list[Path]) -> list[dict]:
    """Per song: notes, labels, features and onset groups."""
    out = []
    for path in paths:
        notes, y = load_song(path)
        out.append({"name": path.parent.name, "notes": notes, "y": y, "x": melody_features(notes),
                    "groups": onset_groups(notes)})
    return out


def _fit(x: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], epochs: int, seed: int = 0):
    """An MLP (no hidden layer: logistic regression) fitted with Adam on BCE; (layers, (mean, std))."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(0).astype(np.float64), x.std(0).astype(np.float64) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    mods, width = [], x.shape[1]
    for h in hidden:
        mods += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    net = torch.nn.Sequential(*mods, torch.nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    crit = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(2048):
            opt.zero_grad()
            crit(net(xt[idx])[:, 0], yt[idx]).backward()
            opt.step()
        sched.step()
    layers = [(m.weight.detach().numpy().astype(np.float64), m.bias.detach().numpy().astype(np.float64))
              for m in net if isinstance(m, torch.nn.Linear)]
    return layers, (mean, std)


def _decode(model: MelodyModel, song: dict, logit: np.ndarray) -> np.ndarray:
    return model.decode_logits(logit, song["notes"])


def score(masks: list[np.ndarray], data: list[dict]) -> dict[str, float]:
    """Pooled (over notes) and per-song mean precision, recall and F1 of one mask per song.

    Args:
        masks: predicted melody masks, one per song.
        data: the songs (`notes`, `y`).

    Returns:
        {"precision", "recall", "f1", "song_precision", "song_recall", "song_f1", "songs"}.
    """
    per = [melody_f1(m, s["notes"], s["y"]) for m, s in zip(masks, data, strict=True)]
    pooled = _prf(*(sum(r[k] for r in per) for k in ("tp", "n_pred", "n_true")))
    out = {k: pooled[k] for k in ("precision", "recall", "f1")}
    out |= {f"song_{k}": float(np.mean([r[k] for r in per])) for k in ("precision", "recall", "f1")}
    return out | {"songs": len(data)}


def _logits(layers, norm, data: list[dict], key: str = "x") -> list[np.ndarray]:
    return [mlp(layers, (s[key].astype(np.float64) - norm[0]) / norm[1]) for s in data]


def _with_context(data: list[dict], logits: list[np.ndarray]) -> list[dict]:
    """The songs with "x2": their features beside the context of the given first-stage logits."""
    return [s | {"x2": np.concatenate([s["x"], context_features(s["notes"], lg)], axis=1)}
            for s, lg in zip(data, logits, strict=True)]


def _fit_two_stage(fit: list[dict], hidden: tuple[int, ...], epochs: int, seed: int):
    """First stage on all fitting songs; second stage on out-of-fold first-stage outputs (two halves by song),
    so it learns from first-stage outputs like those on unseen songs. Returns (stage 1, stage 2) (layers, norm)."""
    half = len(fit) // 2
    folds = [fit[:half], fit[half:]]
    oof = []
    for i in range(2):
        layers, norm = _fit(*_stack(folds[1 - i]), hidden, epochs, seed)
        oof += _with_context(folds[i], _logits(layers, norm, folds[i]))
    first = _fit(*_stack(fit), hidden, epochs, seed)
    second = _fit(np.concatenate([s["x2"] for s in oof]), np.concatenate([s["y"] for s in oof]), hidden, epochs,
                  seed)
    return first, second


def _stack(data: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([s["x"] for s in data]), np.concatenate([s["y"] for s in data])


def _tune(base: MelodyModel, tune: list[dict]) -> list[tuple[float, MelodyModel]]:
    """Every decode setting's pooled F1 on the tuning songs, best first (`base` gives the networks)."""
    if base.context_layers:
        tune = _with_context(tune, _logits(base.layers, base.norm, tune))
        logits = _logits(base.context_layers, base.context_norm, tune, "x2")
    else:
        logits = _logits(base.layers, base.norm, tune)
    out = []
    for decode, bias, leap in [("argmax", b, 0.0) for b in BIASES] + [("viterbi", b, lp) for b, lp in
                                                                       itertools.product(BIASES, LEAPS)]:
        model = MelodyModel(base.layers, base.norm, decode, bias, leap, base.context_layers, base.context_norm)
        f1 = score([_decode(model, s, lg) for s, lg in zip(tune, logits, strict=True)], tune)["f1"]
        out.append((f1, model))
    return sorted(out, key=lambda r: -r[0])


def train_melody(data_root: str | None = None, out: str | Path | None = None, max_songs: int | None = None,
                 epochs: int = 10, seed: int = 0) -> Path:
    """Fit the melody extractor on POP909 train songs, measure it on val and write `melody/` with its card.

    Args:
        data_root: datasets folder (default: the settings resolver's).
        out: checkpoints folder (default: the shipped one).
        max_songs: fit on at most this many train songs (the tuning slice and val are not cut).
        epochs: passes over the fitting notes.
        seed: shuffles the train songs and seeds the network.

    Returns:
        The checkpoint directory written.
    """
    from emomusic.settings import checkpoints_root

    t0 = time.perf_counter()
    out = Path(out) if out else checkpoints_root()
    split = songs(data_root)
    train = list(split["train"])
    np.random.default_rng(seed).shuffle(train)
    tune_paths, fit_paths = train[:TUNE_SONGS], train[TUNE_SONGS:]
    if max_songs is not None:
        fit_paths = fit_paths[:max_songs]
    fit, tune, val = _examples(fit_paths), _examples(tune_paths), _examples(split["val"])
    x, y = _stack(fit)

    candidates: dict[str, list[tuple[float, MelodyModel]]] = {}
    (l1, n1), (l2, n2) = _fit_two_stage(fit, HIDDEN, epochs, seed)
    candidates["two-stage mlp"] = _tune(MelodyModel(l1, n1, context_layers=l2, context_norm=n2), tune)
    candidates["mlp"] = _tune(MelodyModel(l1, n1), tune)
    candidates["logistic"] = _tune(MelodyModel(*_fit(x, y, (), epochs, seed)), tune)
    tried = {}
    for name, ranked in candidates.items():
        for decode in ("viterbi", "argmax"):
            f1, m = next(r for r in ranked if r[1].decode == decode)
            tried[f"{name}+{decode}"] = (f1, m)
    # a tie goes to argmax: the simpler decode (Viterbi with no leap penalty is argmax)
    chosen_name = max(tried, key=lambda k: (round(tried[k][0], 4), tried[k][1].decode == "argmax"))
    model = tried[chosen_name][1]

    sky_tune = score([skyline(s["notes"]) for s in tune], tune)
    val_sky = score([skyline(s["notes"]) for s in val], val)
    rows, metrics = [], {}
    for name, (tune_f1, m) in tried.items():
        v = score([m.mask(s["notes"]) for s in val], val)
        rows.append(f"| {name} | {m.bias:+.1f} | {m.leap:.1f} | {tune_f1:.3f} | {v['f1']:.3f} | {v['song_f1']:.3f} |")
        metrics[f"tried_{name}_tune_f1"], metrics[f"tried_{name}_val_f1"] = tune_f1, v["f1"]
        if name == chosen_name:
            val_model = v
    rows.append(f"| skyline | | | {sky_tune['f1']:.3f} | {val_sky['f1']:.3f} | {val_sky['song_f1']:.3f} |")
    for who, r in (("model", val_model), ("skyline", val_sky)):
        metrics |= {f"val_{who}_{k}": v for k, v in r.items() if k != "songs"}
    metrics |= {"chosen": chosen_name, "decode": model.decode, "bias": model.bias, "leap": model.leap,
                "n_val_songs": len(val), "n_tune_songs": len(tune), "n_fit_songs": len(fit),
                "n_fit_notes": int(len(y)), "fit_melody_share": float(y.mean()),
                "n_val_notes": int(sum(len(s["y"]) for s in val)), "tune_skyline_f1": sky_tune["f1"],
                "epochs": epochs, "seed": seed, "minutes": (time.perf_counter() - t0) / 60.0}
    table = "\n".join(f"| {label} | {val_model[k]:.3f} | {val_sky[k]:.3f} |" for label, k in (
        ("F1 (pooled over notes)", "f1"), ("precision (pooled)", "precision"), ("recall (pooled)", "recall"),
        ("F1 (mean over songs)", "song_f1"), ("precision (mean over songs)", "song_precision"),
        ("recall (mean over songs)", "song_recall")))
    hidden = {"two": f"two networks of {len(HIDDEN)} hidden layers of {HIDDEN[0]}; the second also reads the "
                     "first one's probabilities around each note (" + ", ".join(CONTEXT_FEATURES) + ")",
              "mlp": f"one network, {len(HIDDEN)} hidden layers of {HIDDEN[0]}",
              "log": "logistic regression"}[chosen_name[:3]]
    card = render_card(
        "melody", chosen=chosen_name, hidden=hidden, features=", ".join(FEATURES), n_fit=len(fit),
        n_tune=len(tune), n_val=len(val), n_fit_notes=len(y), decode=model.decode, bias=f"{model.bias:+.1f}",
        leap=f"{model.leap:.1f}", table=table, tried_rows="\n".join(rows), pop909_licence=LICENCES["pop909"],
        epochs=epochs, minutes=f"{metrics['minutes']:.1f}", min_coverage=MIN_COVERAGE,
        command="python -m emomusic.training.melody" + (f" --max-songs {max_songs}" if max_songs else ""))
    return model.save(out / "melody", metrics, card)


def main(argv: list[str] | None = None) -> int:
    """Command line: train and print where the checkpoint went."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--out", help="checkpoints folder (default: the shipped one)")
    ap.add_argument("--max-songs", type=int, help="fit on at most this many train songs")
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args(argv)
    path = train_melody(args.data_root, args.out, args.max_songs, args.epochs)
    print(path)
    print((path / "MODEL_CARD.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
