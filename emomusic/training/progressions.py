"""Learn the chord plans' bar-to-bar transitions from EMOPIA (per quadrant) and POP909 (the prior).

    python -m emomusic.training.progressions [--data-root DIR] [--out checkpoints] [--pop909-songs N]

Every train piece is read on its real grid (`music.beats.real_grid_notes`: EMOPIA's transcriptions
beat-tracked), its key found (Krumhansl-Schmuckler, as the generator's tonic and mode conditioning),
and each bar named by its triad (`music.harmony.bar_chords`). The vocabulary is every chord that holds
at least `MIN_SHARE` of the bars of either mode. A quadrant's table in a mode counts EMOPIA's
transitions of that quadrant and mode, plus `prior` pseudo-transitions a row spread as POP909's table
of the mode (EMOPIA has a few hundred clips a quadrant; the prior fills the rows they leave thin).
`prior` is chosen by the log-likelihood of EMOPIA's val clips; val and POP909's val songs are only
measured. The card compares the chosen tables with one table a mode and with chord frequencies alone,
and the tonic chord's share of bars in real val pieces with that in drawn plans.
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from emomusic.conditioning.progressions import MAX_RUN, MODES, ProgressionModel
from emomusic.music.harmony import NO_CHORD, QUALITIES, bar_chords
from emomusic.settings import checkpoints_root
from emomusic.training.cards import render_card
from emomusic.training.datasets import LICENCES, records
from emomusic.vocab.emotions import QUADRANTS

MIN_SHARE = 0.01  # a chord in the vocabulary holds at least this share of one mode's train bars
# pseudo-transitions a row from POP909's table, tried on EMOPIA train
PRIORS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
SMOOTH = 0.1  # pseudo-count every cell of POP909's table gets, so no transition is impossible
PLAN_BARS = 16


def _piece(path: str) -> tuple[str, np.ndarray] | None:
    """A piece's mode and its bars' chords (root above the tonic, triad), or None when unreadable."""
    import warnings

    from emomusic.music.attributes import estimate_key
    from emomusic.music.beats import real_grid_notes

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notes = real_grid_notes(path)
    except Exception:  # one bad file must not stop the count
        return None
    if len(notes) < 8:
        return None
    tonic, mode = estimate_key(notes)
    return mode, bar_chords(notes, tonic)


def _read(recs: list, workers: int) -> list[tuple[str | None, str, np.ndarray]]:
    """(quadrant, mode, chords) of each readable record, read in `workers` processes."""
    with get_context("fork").Pool(workers) as pool:
        got = pool.map(_piece, [r.path for r in recs], chunksize=8)
    return [(r.quadrant, *g) for r, g in zip(recs, got, strict=True) if g is not None]


def _codes(chords: np.ndarray, vocab: np.ndarray) -> np.ndarray:
    """Each bar's vocabulary index, -1 for no chord or one outside the vocabulary."""
    key = chords[:, 0] * 16 + chords[:, 1]
    vkey = vocab[:, 0] * 16 + vocab[:, 1]
    hit = key[:, None] == vkey[None, :]
    return np.where(hit.any(1), hit.argmax(1), -1)


def _counts(pieces: list, vocab: np.ndarray) -> dict[tuple[str | None, str], np.ndarray]:
    """(quadrant, mode) -> (K, K) transition counts between consecutive bars both in the vocabulary."""
    k = len(vocab)
    out: dict[tuple[str | None, str], np.ndarray] = {}
    for quadrant, mode, chords in pieces:
        c = _codes(chords, vocab)
        a, b = c[:-1], c[1:]
        ok = (a >= 0) & (b >= 0)
        table = out.setdefault((quadrant, mode), np.zeros((k, k)))
        np.add.at(table, (a[ok], b[ok]), 1.0)
    return out


def _tables(emopia: dict, pop: dict, k: int, prior: float) -> np.ndarray:
    """(quadrants, modes, K, K) row-stochastic tables: EMOPIA's counts plus `prior` rows of POP909's."""
    out = np.zeros((len(QUADRANTS), len(MODES), k, k))
    for m, mode in enumerate(MODES):
        p = pop.get((None, mode), np.zeros((k, k))) + SMOOTH
        p = p / p.sum(1, keepdims=True)
        for q, quadrant in enumerate(QUADRANTS):
            c = emopia.get((quadrant, mode), np.zeros((k, k))) + prior * p
            out[q, m] = c / c.sum(1, keepdims=True)
    return out


def _loglik(tables: np.ndarray, counts: dict) -> float:
    """Mean log-likelihood (nats) per transition of `counts` ((quadrant, mode) -> counts) under `tables`."""
    total, n = 0.0, 0.0
    for (quadrant, mode), c in counts.items():
        t = tables[QUADRANTS.index(quadrant), MODES.index(mode)]
        total += float((c * np.log(t)).sum())
        n += float(c.sum())
    return total / max(n, 1.0)


def _tonic_share(pieces: list, model: ProgressionModel) -> list[float]:
    """Per piece, the share of its named bars on the tonic triad."""
    out = []
    for _q, mode, chords in pieces:
        named = chords[chords[:, 0] != NO_CHORD]
        if len(named) >= 4:
            tonic = model.chords[model.tonic(mode)]
            out.append(float(((named[:, 0] == tonic[0]) & (named[:, 1] == tonic[1])).mean()))
    return out


def train_progressions(data_root: str | None = None, out: str | None = None, pop909_songs: int = 400,
                       workers: int = 2) -> Path:
    """Count, choose the prior, measure and write `progressions/` with its card.

    Args:
        data_root: the datasets folder (default: the settings resolver's).
        out: the checkpoints folder (default: the shipped one).
        pop909_songs: at most this many POP909 train songs (by record order) for the prior.
        workers: processes that read the MIDI.

    Returns:
        The checkpoint folder.
    """
    t0 = time.time()
    emo = records(data_root, ("emopia",))
    pop = records(data_root, ("pop909",))
    emo_train = _read([r for r in emo if r.split == "train"], workers)
    emo_val = _read([r for r in emo if r.split == "val"], workers)
    pop_train = [(None, m, c) for _q, m, c in _read([r for r in pop if r.split == "train"][:pop909_songs], workers)]
    pop_val = [(None, m, c) for _q, m, c in _read([r for r in pop if r.split == "val"], workers)]

    named = {mode: np.concatenate([c[c[:, 0] != NO_CHORD] for _q, m, c in emo_train + pop_train if m == mode])
             for mode in MODES}
    kinds = {(0, 0), (0, 1)}  # the tonic triads are always in it (plans start and end there)
    for mode in MODES:
        keys, n = np.unique(named[mode], axis=0, return_counts=True)
        kinds |= {tuple(key) for key, share in zip(keys.tolist(), n / n.sum(), strict=True) if share >= MIN_SHARE}
    vocab = np.array(sorted(kinds), dtype=np.int64)
    k = len(vocab)
    e_train, e_val = _counts(emo_train, vocab), _counts(emo_val, vocab)
    p_train = _counts(pop_train, vocab)
    liks = {prior: _loglik(_tables(e_train, p_train, k, prior), e_train) for prior in PRIORS}
    # chosen on val-like data without touching val: fit on half the train clips, score the other half
    half = len(emo_train) // 2
    fold_a, fold_b = _counts(emo_train[:half], vocab), _counts(emo_train[half:], vocab)
    held = {prior: (_loglik(_tables(fold_a, p_train, k, prior), fold_b)
                    + _loglik(_tables(fold_b, p_train, k, prior), fold_a)) / 2 for prior in PRIORS}
    prior = max(held, key=held.get)
    tables = _tables(e_train, p_train, k, prior)
    model = ProgressionModel(vocab, tables)

    # baselines on the same val transitions: one table a mode (EMOPIA and POP909 pooled), chord shares alone
    pooled = {}
    for (_q, mode), c in list(e_train.items()) + list(p_train.items()):
        pooled[mode] = pooled.get(mode, np.zeros((k, k))) + c
    by_mode = np.zeros_like(tables)
    unigram = np.zeros_like(tables)
    for m, mode in enumerate(MODES):
        c = pooled.get(mode, np.zeros((k, k))) + SMOOTH
        by_mode[:, m] = c / c.sum(1, keepdims=True)
        u = c.sum(0) / c.sum()
        unigram[:, m] = np.broadcast_to(u, (k, k))
    val_lik = {name: _loglik(t, e_val) for name, t in (("quadrant", tables), ("mode", by_mode),
                                                        ("unigram", unigram))}
    pop_val_counts = {(QUADRANTS[0], mode): c for (_n, mode), c in _counts(pop_val, vocab).items()}
    pop_lik = {name: _loglik(t, pop_val_counts) for name, t in (("quadrant", tables), ("mode", by_mode),
                                                                 ("unigram", unigram))}

    rng = np.random.default_rng(0)
    drawn = []
    for q in QUADRANTS:
        for mode in MODES:
            for _ in range(50):
                tonic = model.tonic(mode)
                plan = model.plan(q, mode, PLAN_BARS, rng, first=tonic, last=tonic)
                drawn.append(float((plan == tonic).mean()))
    real_share = {name: _tonic_share(p, model) for name, p in (("EMOPIA val", emo_val), ("POP909 val", pop_val))}

    def pct(v: list[float]) -> str:
        return " / ".join(f"{x:.2f}" for x in np.percentile(v, [10, 50, 90]))

    metrics = {
        "vocabulary": [f"{root}:{QUALITIES[q]}" for root, q in vocab.tolist()],
        "prior": prior, "held_out_loglik_by_prior": {str(p): round(v, 4) for p, v in held.items()},
        "train_loglik_by_prior": {str(p): round(v, 4) for p, v in liks.items()},
        "emopia_val_loglik": {n: round(v, 4) for n, v in val_lik.items()},
        "pop909_val_loglik": {n: round(v, 4) for n, v in pop_lik.items()},
        "tonic_bar_share": {n: [round(x, 3) for x in np.percentile(v, [10, 50, 90])] for n, v in real_share.items()}
        | {"plans (16 bars, first and last tonic)": [round(x, 3) for x in np.percentile(drawn, [10, 50, 90])]},
        "pieces": {"emopia_train": len(emo_train), "emopia_val": len(emo_val), "pop909_train": len(pop_train),
                   "pop909_val": len(pop_val)},
        "transitions": {"emopia_train": int(sum(c.sum() for c in e_train.values())),
                        "pop909_train": int(sum(c.sum() for c in p_train.values()))},
        "minutes": round((time.time() - t0) / 60, 1),
    }
    common = {}
    for m, mode in enumerate(MODES):
        rows = []
        for q, quadrant in enumerate(QUADRANTS):
            t = tables[q, m]
            start = model.tonic(mode)
            nxt = np.argsort(-t[start])[:4]
            rows.append(f"| {quadrant} | {mode} | " + ", ".join(f"{model.name(int(j), mode)} {t[start, j]:.2f}"
                                                                 for j in nxt) + " |")
        common[mode] = "\n".join(rows)
    card = render_card(
        "progressions", vocabulary=", ".join(f"{model.name(i, 'major')} / {model.name(i, 'minor')}"
                                             for i in range(k)),
        k=k, max_run=MAX_RUN, min_share=MIN_SHARE, prior=prior, priors=", ".join(f"{p:g}" for p in PRIORS),
        held=" / ".join(f"{held[p]:.3f}" for p in PRIORS),
        emopia_licence=LICENCES["emopia"], pop909_licence=LICENCES["pop909"], **metrics["pieces"],
        e_trans=metrics["transitions"]["emopia_train"], p_trans=metrics["transitions"]["pop909_train"],
        val_q=val_lik["quadrant"], val_m=val_lik["mode"], val_u=val_lik["unigram"],
        pop_q=pop_lik["quadrant"], pop_m=pop_lik["mode"], pop_u=pop_lik["unigram"],
        emopia_share=pct(real_share["EMOPIA val"]), pop_share=pct(real_share["POP909 val"]), plan_share=pct(drawn),
        plan_bars=PLAN_BARS, after_major=common["major"], after_minor=common["minor"],
        command="python -m emomusic.training.progressions" + (f" --pop909-songs {pop909_songs}"
                                                                if pop909_songs != 400 else ""),
        minutes=f"{metrics['minutes']:.1f}")
    return model.save(Path(out or checkpoints_root()) / "progressions", metrics, card)


def main(argv: list[str] | None = None) -> int:
    """Command line: train and print where the checkpoint went, and its card."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    ap.add_argument("--out", help="checkpoints folder (default: the shipped one)")
    ap.add_argument("--pop909-songs", type=int, default=400, help="POP909 train songs for the prior")
    args = ap.parse_args(argv)
    path = train_progressions(args.data_root, args.out, args.pop909_songs)
    print(path)
    print((path / "MODEL_CARD.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
