"""`emomusic words`: the vocabulary the other commands accept (emotion words, quadrants, genres,
arrangements and instruments).

Read from `emomusic.vocab.emotions`, `emomusic.vocab.instruments` and the arrangement presets, the
places that define them, so this list cannot drift.
"""

from __future__ import annotations

import argparse
import json

from emomusic.cli._common import add_json, command


def add_parser(sub: argparse._SubParsersAction) -> None:
    w = command(sub, "words", "list the emotion words, quadrants, genres, arrangements and instruments you can "
                "ask for")
    add_json(w, "the vocabulary")
    w.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from emomusic.arrangement.arrange import PRESETS
    from emomusic.vocab.emotions import (
        GENRE_ALIASES,
        GENRE_STANDINS,
        GENRES,
        INTENSIFIERS,
        QUADRANT_NAMES,
        QUADRANT_VA,
        QUADRANTS,
        WORDS,
    )
    from emomusic.vocab.instruments import GM_PROGRAMS, instrument_names

    by_quadrant = {q: sorted((e for e in WORDS.values() if e.quadrant == q), key=lambda e: e.word) for q in QUADRANTS}
    aliases = {g: t for g, t in GENRE_ALIASES.items() if g != t}
    if args.json:
        print(json.dumps({
            "emotions": [{"word": e.word, "quadrant": e.quadrant, "valence": e.valence, "arousal": e.arousal}
                         for q in QUADRANTS for e in by_quadrant[q]],
            "quadrants": {q: {"name": QUADRANT_NAMES[q], "valence": QUADRANT_VA[q][0], "arousal": QUADRANT_VA[q][1]}
                          for q in QUADRANTS},
            "genres": list(GENRES), "genre_aliases": aliases, "genres_without_data": dict(GENRE_STANDINS),
            "intensifiers": dict(INTENSIFIERS),
            "arrangements": {name: p.description for name, p in PRESETS.items()},
            "instruments": {"general_midi": list(GM_PROGRAMS), "names": list(instrument_names())}}))
        return 0
    print("emotions (--emotion WORD; a typo close to one word is corrected, with a note):")
    for q in QUADRANTS:
        v, a = QUADRANT_VA[q]
        print(f"  {q} {QUADRANT_NAMES[q]} (--emotion {q}: valence {v:+.2f}, arousal {a:+.2f})")
        for e in by_quadrant[q]:
            print(f"      {e.word:<12} valence {e.valence:+.2f}  arousal {e.arousal:+.2f}")
    print("genres (--genre WORD): " + ", ".join(GENRES))
    print("  also accepted: " + ", ".join(f"{g} → {t}" for g, t in aliases.items() if g not in GENRE_STANDINS))
    print("  no training data, generated as: " + ", ".join(f"{g} → {t}" for g, t in GENRE_STANDINS.items())
          + " (with a note)")
    print("degree words before an emotion in a prompt (--intensity X): "
          + ", ".join(f"{w} {x:g}" for w, x in INTENSIFIERS.items()))
    print("arrangements (--arrangement NAME): " + "; ".join(f"{n}: {p.description}" for n, p in PRESETS.items()))
    print("instruments (--instruments \"violin, cello\"): the 128 General MIDI names (e.g. "
          f"{GM_PROGRAMS[40]}, {GM_PROGRAMS[33]}), program numbers 0-127, 'drums', and common names: "
          + ", ".join(n for n in instrument_names() if n.lower() not in {g.lower() for g in GM_PROGRAMS}))
    return 0
