"""`emomusic transform`: the same piece in another mood.

    emomusic transform song.mid --emotion sad --out song-sad.mid [--keep melody|harmony] [--seed N] [--json]

`--keep melody` (the default) keeps the tune's rhythm and contour, in the target mode, and writes a new
accompaniment around it in the target mood; `--keep harmony` keeps the chords, in the target mode, and
writes a new tune and texture on them (`EmoMusic.transform`). Tempo, dynamics, register and texture move
to the target emotion's attributes; the metre and length stay yours. `--json` adds the recognizer's
reading of your file and of the result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from emomusic.cli._common import (
    add_checkpoints,
    add_json,
    add_mood_flags,
    command,
    kernels_notice,
    note,
    output_formats,
)
from emomusic.errors import InvalidInputError

KEEP = ("melody", "harmony")


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "transform", "the same piece in another mood (keep its melody or its harmony)",
                "the same piece in another mood: keep its melody (rhythm and contour, in the target mode) and "
                "write a new accompaniment, or keep its chords and write a new tune and texture; tempo, dynamics, "
                "register and texture move to the asked mood")
    c.add_argument("file", help="your MIDI file (.mid)")
    add_mood_flags(c)
    c.add_argument("--keep", choices=KEEP, default="melody", help="what stays of your piece")
    c.add_argument("--candidates", type=int, help="accompaniments drawn; the one the model finds most likely with "
                   "the kept part, on its chords, is written (default: `pipeline.TRANSFORM_CANDIDATES`, 4)")
    c.add_argument("--seed", type=int, default=0, help="random seed: the same seed and settings give the same file")
    c.add_argument("--no-expression", action="store_true", help="keep the sampled velocities and write no pedal "
                   "(default: the learned performance layer plays it)")
    add_json(c)
    c.add_argument("--out", help=f"output file; its suffix picks the format ({output_formats()}) (default: "
                   "FILE-EMOTION.mid beside the input)")
    c.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_checkpoints(c)
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the file, check the output path, transform, write, and print one line (or JSON)."""
    import time

    from emomusic.cli.continuation import checked_out, read_tracks, write_yours
    from emomusic.export.names import safe_stem
    from emomusic.request import GenerationRequest

    src = Path(args.file)
    request = GenerationRequest(emotion=args.emotion, valence=args.valence, arousal=args.arousal,
                                intensity=args.intensity, genre=args.genre, tempo=args.tempo,
                                time_signature=args.time_signature, seed=args.seed,
                                expression=not args.no_expression)
    plan = request.resolve()  # the mood and settings, checked before any file is read or model loaded
    out = checked_out(args.out, src.with_name(f"{src.stem}-{safe_stem(plan.emotion)}.mid"), args.force)
    tracks, tpq, notice = read_tracks(src)
    for line in (*plan.notices, *([notice] if notice else [])):
        note(line)
    kernels_notice()
    from emomusic.pipeline import TRANSFORM_CANDIDATES, EmoMusic

    em = EmoMusic.from_pretrained(args.checkpoints)
    t0 = time.perf_counter()
    k = TRANSFORM_CANDIDATES if args.candidates is None else args.candidates
    best = em.transform(tracks, request, keep=args.keep, candidates=k)[0]
    seconds = time.perf_counter() - t0
    [section] = best.sections
    result = {"out": str(out), "input": str(src), "keep": args.keep, "emotion": plan.emotion,
              "quadrant": plan.quadrant, "key_before": section["key_before"], "key": section["key"],
              "tempo": section["tempo"], "time_signature": "{}/{}".format(*best.notes.time_signature),
              "bars": section["bars"],
              "tracks": [{"name": t.name, "role": t.role, "notes": len(t.notes)} for t in best.arrangement.tracks],
              "scores": {k: round(v, 4) for k, v in best.scores.items()}, "seed": args.seed,
              "seconds": round(seconds, 3)}
    if args.json:  # read before anything is written: a failure here leaves no file behind
        result["recognized"] = readings(best, src, args.checkpoints)
    write_yours(best, out, tpq, args.force)
    if args.json:
        print(json.dumps(result))
    else:
        kept = "your melody" if args.keep == "melody" else "your chords"
        print(f"wrote {out}: {kept} in {section['key']} (was {section['key_before']}), {plan.emotion} "
              f"({plan.quadrant}) at {section['tempo']:g} BPM, {section['bars']} bars; in {seconds:.1f} s")
    return 0


def readings(cand, src: Path, checkpoints) -> dict | None:
    """The recognizer's quadrant and valence/arousal of the user's file ("input") and of the result
    ("output"); None, with a note, when the checkpoints hold no recognizer (e.g. "debug")."""
    from emomusic.export import write
    from emomusic.recognition import EmotionRecognizer

    rec = EmotionRecognizer(checkpoints)
    with tempfile.TemporaryDirectory(prefix="emomusic-transform-") as tmp:
        made = write(cand.arrangement, Path(tmp) / "output.mid")
        try:  # the recognizer loads on the first reading
            found = [r for _path, r in rec.iter_recognize([str(src), str(made)])]
        except InvalidInputError as exc:  # no (or a damaged) recognizer: the transform itself stands
            note(f"no reading of the mood: {exc}")
            return None
    return {k: {"error": str(r)} if isinstance(r, Exception) else
            {"quadrant": r.quadrant, "valence": round(r.valence, 3), "arousal": round(r.arousal, 3)}
            for k, r in zip(("input", "output"), found, strict=True)}
