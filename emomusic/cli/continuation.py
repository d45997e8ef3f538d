"""`emomusic continue`: your MIDI file, unchanged, with more bars in the mood you ask for.

    emomusic continue song.mid --emotion calm --bars 8 --out song-calm.mid [--json]

Every track of the file is kept as it is (notes, tempo, metre, key, pedal); the new bars go on the
main pitched track, continuing the last bars' key (or its relative in the asked mode), tempo, metre and
texture (`EmoMusic.continuation`). A performance on a nominal 120 BPM grid (a transcription) is first
read on its tracked beats, as `analyze` reads it, and the output opens with that reading (a note says
so). `--json` adds the recognizer's reading of your part and of the continuation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from emomusic.cli._common import (
    add_checkpoints,
    add_json,
    add_mood_flags,
    check_new_file,
    command,
    kernels_notice,
    note,
    output_formats,
)
from emomusic.errors import InvalidInputError

DEFAULT_BARS = 8


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "continue", "continue your MIDI file in the mood you ask for",
                "continue your MIDI file: it stays as it is, and the new bars follow in the asked mood")
    c.add_argument("file", help="your MIDI file (.mid); every track is kept")
    add_mood_flags(c)
    add_json(c)
    c.add_argument("--bars", type=int, default=DEFAULT_BARS, help="bars to add")
    c.add_argument("--candidates", type=int, default=1, help="continue N times in one batch and keep the best")
    c.add_argument("--seed", type=int, default=0, help="random seed: the same seed and settings give the same file")
    c.add_argument("--no-ending", action="store_true", help="stop where the last bar runs out (default: close on "
                   "a held tonic chord, approached from the dominant)")
    c.add_argument("--out", help=f"output file; its suffix picks the format ({output_formats()}) (default: "
                   "FILE-continued.mid beside the input)")
    c.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_checkpoints(c)
    c.set_defaults(handler=run)


def read_tracks(path: str | Path) -> tuple[list, int, str | None]:
    """Your file's tracks, its ticks per quarter note, and a notice when it was read on tracked beats.

    Args:
        path: a MIDI file.

    Returns:
        (tracks, ticks per quarter note, notice or None).

    Raises:
        InvalidInputError: not a readable MIDI file, or no notes.
    """
    from emomusic.music import beats
    from emomusic.music.midi import load_score, score_tracks
    from emomusic.music.tracks import Track

    score = load_score(path)
    if beats.is_nominal_performance(score):
        notes = beats.real_grid_notes(path)
        program = next((int(t.program) for t in score.tracks if len(t.notes) and not t.is_drum), 0)
        return ([Track("Piano", program, "user", notes)], 480,
                f"{Path(path).name} is a performance at a nominal 120 BPM: it was read on its tracked beats "
                f"({notes.tempo:.0f} BPM), and the output opens with that reading")
    return score_tracks(score, Path(path).name), int(score.ticks_per_quarter), None


def checked_out(given: str | None, default: Path, force: bool) -> Path:
    """The output path (`given`, else `default`), checked before any model loads: a known format, and
    not an existing file unless `force`."""
    from emomusic.export import FORMATS

    out = Path(given) if given else default
    if out.suffix.lower() not in FORMATS:
        got = f"suffix {out.suffix!r}" if out.suffix else "no suffix"
        raise InvalidInputError(f"{out}: {got} is not an output format; use one of {output_formats()}")
    check_new_file(out, force)
    return out


def write_yours(cand, out: Path, tpq: int, force: bool) -> Path:
    """Write a piece made from the user's file: MIDI at the file's own ticks per quarter note (so the user's
    notes keep their ticks), with the request recorded; other formats through `export.write`."""
    from emomusic.export import write
    from emomusic.export.midi import EXPORT_TPQ, build_midi_file
    from emomusic.io import atomic_write

    if out.suffix.lower() in (".mid", ".midi"):
        mid = build_midi_file(cand.arrangement, tpq=tpq if tpq >= 96 else EXPORT_TPQ,
                              provenance=cand.provenance or None)
        return atomic_write(out, lambda tmp: mid.save(str(tmp)), force)
    return write(cand.arrangement, out, force=force, provenance=cand.provenance or None)


def run(args: argparse.Namespace) -> int:
    """Read the file, check the output path, continue, write, and print one line (or JSON)."""
    import time

    from emomusic.cli.generate import notes_in_file
    from emomusic.request import GenerationRequest

    src = Path(args.file)
    out = checked_out(args.out, src.with_name(f"{src.stem}-continued.mid"), args.force)
    tracks, tpq, notice = read_tracks(src)
    request = GenerationRequest(emotion=args.emotion, valence=args.valence, arousal=args.arousal,
                                intensity=args.intensity, genre=args.genre, tempo=args.tempo,
                                time_signature=args.time_signature, bars=args.bars, candidates=args.candidates,
                                seed=args.seed, ending=not args.no_ending)
    plan = request.resolve()  # the mood and settings, checked before any model loads
    for line in (*plan.notices, *([notice] if notice else [])):
        note(line)
    kernels_notice()
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(args.checkpoints)
    t0 = time.perf_counter()
    best = em.continuation(tracks, request)[0]
    seconds = time.perf_counter() - t0
    write_yours(best, out, tpq, args.force)
    yours, added = best.sections
    result = {"out": str(out), "input": str(src), "emotion": plan.emotion, "quadrant": plan.quadrant,
              "bars_yours": yours["bars"], "bars_added": added["bars"], "tempo": round(float(best.notes.tempo), 2),
              "time_signature": "{}/{}".format(*best.notes.time_signature),
              "tracks": [{"name": t.name, "notes": len(t.notes)} for t in best.arrangement.tracks],
              "notes": notes_in_file(out), "seed": args.seed, "seconds": round(seconds, 3)}
    if args.json:
        result["recognized"] = _readings(best, yours["bars"], args.checkpoints)
        print(json.dumps(result))
    else:
        join = yours["bars"] * best.notes.beats_per_bar
        on = ", ".join(repr(t.name) for t in best.arrangement.tracks if t.notes.end > join + 1e-6)
        print(f"wrote {out}: your {yours['bars']} bars, then {added['bars']} bars {plan.emotion} ({plan.quadrant}) "
              f"on {on}; continued in {seconds:.1f} s")
    return 0


def _readings(cand, bars_yours: int, checkpoints) -> dict:
    """The recognizer's quadrant and valence/arousal for your part and for the continuation."""
    from emomusic.export import write
    from emomusic.recognition import recognize

    notes = cand.notes
    join = bars_yours * notes.beats_per_bar
    later = notes.select(notes.start >= join - 1e-9)
    parts = {"yours": notes.select(notes.start < join - 1e-9),
             "continuation": replace(later, start=later.start - join, pedals=np.zeros((0, 2)), tempos=np.zeros((0, 2)))}
    with tempfile.TemporaryDirectory(prefix="emomusic-continue-") as tmp:
        paths = {k: write(v, Path(tmp) / f"{k}.mid") for k, v in parts.items() if len(v)}
        found = recognize([str(p) for p in paths.values()], checkpoints=checkpoints)
    return {k: {"quadrant": r.quadrant, "valence": round(r.valence, 3), "arousal": round(r.arousal, 3)}
            for k, r in zip(paths, found, strict=True)}
