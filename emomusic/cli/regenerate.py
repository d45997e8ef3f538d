"""`emomusic regenerate`: make a piece again from the request its own MIDI file records, or vary it.

    emomusic regenerate calm.mid                      # the same piece (same model, same seed)
    emomusic regenerate calm.mid --seed 2             # the same request, another draw
    emomusic regenerate calm.mid --emotion sad        # the same settings in another mood

Every MIDI file `emomusic generate` writes carries its request (emotion, prompts, seed, settings), the
generator's weights hash and the version in a text event (`GenerationRequest.provenance`). This command
reads it back, applies the flags given, and generates. A different model than the one recorded makes
different music: a note says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emomusic.cli._common import add_checkpoints, add_json, check_new_file, command, note, output_formats
from emomusic.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = command(sub, "regenerate", "make a piece again from its own file's recorded request, or vary it",
                "read the request a MIDI file written by emomusic records and generate it again, with any "
                "setting given here changed")
    r.add_argument("file", help="a MIDI file written by emomusic generate")
    r.add_argument("--seed", type=int, help="another seed (default: the recorded one)")
    r.add_argument("--emotion", help="another emotion word or Q1..Q4 (replaces the recorded mood)")
    r.add_argument("--bars", type=int, help="another length in bars (default: the recorded one)")
    r.add_argument("--out", help=f"output file; its suffix picks the format ({output_formats()}) (default: "
                   "FILE-again.mid, or FILE-seedN.mid with --seed)")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_json(r)
    add_checkpoints(r)
    r.set_defaults(handler=run)


def recorded_request(path: str | Path, seed: int | None = None, emotion: str | None = None,
                     bars: int | None = None):
    """The request `path` records, with the given settings replaced, and the model hashes it records.

    Args:
        path: a MIDI file written by emomusic.
        seed, emotion, bars: replacements (None keeps the recorded value); a new emotion drops the
            recorded valence/arousal and trajectory, which would win over it.

    Returns:
        (GenerationRequest, {"model": the generator's hash, "conditions": the clusterer's}, each None
        where the file records none: files from before the clusterer's was recorded have only the model).

    Raises:
        InvalidInputError: no record in the file, or one this version cannot use.
    """
    from emomusic.music.midi import read_provenance
    from emomusic.request import GenerationRequest

    data = read_provenance(path)
    if data is None:
        raise InvalidInputError(f"{path}: the file records no emomusic request; only files written by "
                                "`emomusic generate` can be regenerated")
    data = dict(data)
    made_with = {"model": data.pop("model", None), "conditions": data.pop("conditions", None)}
    data.pop("version", None)
    if seed is not None:
        data["seed"] = seed
    if bars is not None:
        data["bars"] = bars
    if emotion is not None:
        for k in ("valence", "arousal", "trajectory"):
            data.pop(k, None)
        data["emotion"] = emotion
    return GenerationRequest.from_provenance(data), made_with


def run(args: argparse.Namespace) -> int:
    """Read the record, check the output path, generate, write, print one line (or JSON)."""
    import time

    from emomusic.cli._common import kernels_notice
    from emomusic.export import FORMATS

    src = Path(args.file)
    request, made_with = recorded_request(src, args.seed, args.emotion, args.bars)
    default = f"{src.stem}-seed{args.seed}.mid" if args.seed is not None else f"{src.stem}-again.mid"
    out = Path(args.out) if args.out else src.with_name(default)
    if out.suffix.lower() not in FORMATS:
        got = f"suffix {out.suffix!r}" if out.suffix else "no suffix"
        raise InvalidInputError(f"{out}: {got} is not an output format; use one of {output_formats()}")
    check_new_file(out, args.force)
    plan = request.resolve()
    for line in plan.notices:
        note(line)
    kernels_notice()
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(args.checkpoints)
    model, conditions = made_with["model"], made_with["conditions"]
    if model is not None and model != em.model_id:
        note(f"{src.name} was made with generator {model}; this is {em.model_id}, so the music will differ")
    elif conditions is not None and conditions != em.conditions_id:
        note(f"{src.name} was made with clusterer {conditions}; this is {em.conditions_id} (other real pieces "
             "stand for the emotions), so the music will differ")
    t0 = time.perf_counter()
    best = em.generate(plan)[0]
    seconds = time.perf_counter() - t0
    em.save(best, out, force=args.force)
    if args.json:
        print(json.dumps({"out": str(out), "from": str(src), "request": best.provenance,
                          "seconds": round(seconds, 3)}))
    else:
        print(f"wrote {out}: {plan.emotion} ({plan.quadrant}), seed {plan.request.seed}, {plan.request.bars} bars, "
              f"from the request recorded in {src.name}; generated in {seconds:.1f} s")
    return 0
