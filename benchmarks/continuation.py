"""Continuing real clips: are the user's notes kept, does the continuation stay in key, is it heard in the
asked mood?

    python benchmarks/continuation.py [--clips 10] [--bars 8] [--context 8] [--seed 0] [--data-root DIR]

Held-apart real clips: EMOPIA val (transcriptions, read on their tracked beats as `emomusic continue`
reads them) and POP909 val. Each clip's first `--context` bars are written as a user's MIDI file and
continued by `--bars` bars in each of the four quadrants (`EmoMusic.continuation`, the shipped models).
Measured:
- kept: the output's notes before the join equal the user's file's (track, tick, pitch, velocity);
- out of key: the share of the continuation's notes outside the user part's key (Krumhansl), beside
  the same share for the clip's own next `--bars` bars (the real continuation) — the reference;
- heard: the recognizer's quadrant of the continuation alone (a 4×4 table asked → heard), beside its
  quadrant for the user's part.

Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.evaluation.report import confusion_text  # noqa: E402
from emomusic.vocab.emotions import QUADRANTS  # noqa: E402

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def out_of_key(pitch: np.ndarray, key: tuple[int, str]) -> float:
    """Share of notes whose pitch class is outside the key's scale (natural minor for minor keys)."""
    if not len(pitch):
        return float("nan")
    scale = (MAJOR if key[1] == "major" else MINOR) + key[0]
    return float(np.mean(~np.isin(pitch % 12, scale % 12)))


def _notes(path: Path, before_tick: int) -> list[tuple]:
    import mido

    mid = mido.MidiFile(str(path))
    out = []
    for i, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity and tick < before_tick:
                out.append((i, tick, msg.note, msg.velocity))
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=10, help="val clips per dataset")
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--context", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)

    from emomusic.cli.continuation import read_tracks
    from emomusic.export import write
    from emomusic.export.midi import build_midi_file
    from emomusic.music.attributes import estimate_key
    from emomusic.music.tracks import Arrangement
    from emomusic.pipeline import EmoMusic
    from emomusic.recognition import recognize
    from emomusic.request import GenerationRequest
    from emomusic.training.datasets import records

    recs = [r for r in records(args.data_root, ("emopia", "pop909")) if r.split == "val"]
    chosen = []
    for ds in ("emopia", "pop909"):
        chosen += [r for r in recs if r.dataset == ds][:args.clips]
    em = EmoMusic.from_pretrained()
    kept, off, off_real, asked, heard, heard_user = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="emomusic-cont-") as tmpdir:
        tmp = Path(tmpdir)
        for n, rec in enumerate(chosen):
            tracks, _tpq, _ = read_tracks(rec.path)
            whole = Arrangement(tuple(tracks)).pitched()
            bar = whole.beats_per_bar
            if whole.n_bars < args.context + args.bars:
                continue
            head = [t.__class__(t.name, t.program, t.role, t.notes.truncate(args.context)) for t in tracks]
            head = [t for t in head if len(t.notes)]
            user = tmp / f"user{n}.mid"
            build_midi_file(Arrangement(tuple(head))).save(str(user))
            user_tracks, tpq, _ = read_tracks(user)
            user_part = Arrangement(tuple(user_tracks)).pitched()
            key = estimate_key(user_part)
            nxt = whole.select((whole.start >= args.context * bar) & (whole.start < (args.context + args.bars) * bar))
            off_real.append(out_of_key(nxt.pitch, key))
            write(user_part, tmp / f"u{n}.mid")
            for q in QUADRANTS:
                cand = em.continuation(user_tracks, GenerationRequest(emotion=q, bars=args.bars, seed=args.seed))[0]
                out = tmp / f"out{n}{q}.mid"
                build_midi_file(cand.arrangement, tpq=tpq).save(str(out))
                kept.append(_notes(out, args.context * int(bar * tpq)) == _notes(user, args.context * int(bar * tpq)))
                join = user_part.n_bars * bar
                later = cand.notes.select(cand.notes.start >= join - 1e-9)
                off.append(out_of_key(later.pitch, key))
                write(replace(later, start=later.start - join, pedals=np.zeros((0, 2)), tempos=np.zeros((0, 2))),
                      tmp / f"c{n}{q}.mid")
                asked.append(q)
            heard_user.append(str(tmp / f"u{n}.mid"))
        cont_files = [str(tmp / f"c{n}{q}.mid") for n in range(len(chosen)) for q in QUADRANTS
                      if (tmp / f"c{n}{q}.mid").is_file()]
        heard = [r.quadrant for r in recognize(cont_files)]
        user_heard = [r.quadrant for r in recognize(heard_user)]
    table = {a: {h: sum(1 for x, y in zip(asked, heard, strict=True) if x == a and y == h) for h in QUADRANTS}
             for a in QUADRANTS}
    acc = float(np.mean([a == h for a, h in zip(asked, heard, strict=True)]))
    result = {"clips": len(heard_user), "continuations": len(asked), "bars": args.bars, "context": args.context,
              "kept_identical": float(np.mean(kept)), "out_of_key_median": float(np.nanmedian(off)),
              "out_of_key_real_next_bars": [float(np.nanpercentile(off_real, p)) for p in (10, 50, 90)],
              "heard_as_asked": acc, "confusion_asked_to_heard": table,
              "user_parts_heard": {q: user_heard.count(q) for q in QUADRANTS}}
    print(f"clips {result['clips']}, continuations {result['continuations']}")
    print(f"user notes kept byte-identical: {result['kept_identical']:.3f}")
    print(f"out of key: continuation median {result['out_of_key_median']:.3f}; real next bars 10/50/90% "
          + " / ".join(f"{x:.3f}" for x in result["out_of_key_real_next_bars"]))
    print(f"recognizer hears the asked quadrant in the continuation: {acc:.3f}")
    print(confusion_text(table, "asked"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
