"""`emomusic generate`: write a new piece in the mood you ask for.

The flags fill one `GenerationRequest` (the API and the demo fill the same object), so the same inputs
give the same music everywhere. `--out`'s suffix picks the format (`emomusic.export.FORMATS`).
`--keep-all` writes the best candidate to OUT and the others, ranked, to OUT-2 … OUT-N (each piece once).
The summary line separates the piece (bars, seconds of music at its tempo, the notes the written file
holds, read back) from the generation time.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from emomusic.cli._common import (
    add_checkpoints,
    add_json,
    add_mood_flags,
    add_prompt_flags,
    check_new_file,
    command,
    kernels_notice,
    note,
    output_formats,
    prompt_values,
)
from emomusic.errors import InvalidInputError
from emomusic.export.names import safe_stem
from emomusic.music.form import FORMS

MIDI = (".mid", ".midi")


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = command(sub, "generate", "write a new piece in the mood you ask for")
    add_mood_flags(g)
    add_prompt_flags(g)
    add_json(g)
    g.add_argument("--bars", type=int, default=16, help="length of the piece in bars (a hummed melody included)")
    g.add_argument("--candidates", type=int, default=2,
                   help="generate N in one batch and keep the best (by the selector; 1: no choice, faster)")
    g.add_argument("--seed", type=int, default=0, help="random seed: the same seed and settings give the same file")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (higher: more surprising)")
    g.add_argument("--top-p", type=float, default=None,
                   help="nucleus size (default: the sampler's tuned value, emomusic.generation.sampling.TOP_P)")
    g.add_argument("--top-k", type=int, default=0, help="sample only from the k most likely tokens (0: off)")
    g.add_argument("--method", choices=("attributes", "token"), default="attributes",
                   help="attributes: condition on the emotion's musical attributes (EmoGen); token: the "
                        "emotion-token baseline")
    g.add_argument("--no-guidance", action="store_true", help="sample without attribute-guided decoding")
    g.add_argument("--no-expression", action="store_true", help="keep the generator's 16 velocity levels and no "
                   "pedal (default: the learned performance layer renders velocities and sustain pedal)")
    g.add_argument("--no-ending", action="store_true", help="stop where the last bar runs out (default: the bar "
                   "before leans to the dominant and the last closes on a held tonic chord, the tonic in the bass)")
    g.add_argument("--no-entry", action="store_true", help="open at full texture (default: the tune enters in the "
                   "second bar, over a first bar of its accompaniment)")
    g.add_argument("--no-build", action="store_true", help="keep the asked density to the end (default: a piece in "
                   "sections builds, its last section's new bars fuller)")
    g.add_argument("--form", help="section letters, e.g. AABA or ABAC (a repeated letter brings its section back, "
                   f"opening as before), or a name: {', '.join(FORMS)} (default: by length; 'through' for none)")
    g.add_argument("--trajectory", metavar="EMOTION:BARS,…",
                   help="sections that each carry an emotion, e.g. \"calm:8,tense:8,calm:8\" (a word, Q1..Q4 or "
                        "valence/arousal such as 0.5/-0.3): sets the length and the mood; tempo, key and dynamics "
                        "move between sections, and an emotion that comes back brings its section back")
    g.add_argument("--loop", action="store_true", help="make the end lead back to the start, for games and DAW "
                   "loops (no final chord; the last bar is chosen to flow into the first)")
    g.add_argument("--progression", action=argparse.BooleanOptionalAction, default=True,
                   help="harmony that moves (the default): each bar's chord comes from a progression learned from "
                   "real music of the emotion (listed per section in --json) and is handed to the generator as a "
                   "token (a generator without bar chords leans to its tones); --no-progression leans every bar to "
                   "the tonic chord")
    g.add_argument("--variations", action="store_true", help="write the same theme in all four quadrants, one file "
                   "each (OUT-Q1-happy.mid … OUT-Q4-calm.mid), for adaptive game music")
    g.add_argument("--arrangement", help="write the piece for instruments: band (lead, keys, bass, drums), strings "
                   "(quartet), chamber (piano trio), chiptune, or piano (default: the piano piece as generated)")
    g.add_argument("--instruments", metavar="NAME,…", help="instruments for the arrangement's parts in order, or "
                   "the parts themselves without --arrangement, e.g. \"violin, cello\" (General MIDI names; "
                   "`emomusic words` lists them)")
    g.add_argument("--stems", action="store_true", help="also write one MIDI file per track next to --out "
                   "(OUT-lead.mid, OUT-bass.mid, …), for importing parts into a DAW one by one")
    g.add_argument("--out", help=f"output file; its suffix picks the format ({output_formats()}) "
                   "(default: a unique .mid name in the current folder)")
    g.add_argument("--wav", action="store_true", help="also write a .wav audio preview next to --out "
                   "(needs the [audio] extra for FluidSynth; sine tones otherwise)")
    g.add_argument("--force", action="store_true", help="overwrite existing files")
    g.add_argument("--keep-all", action="store_true",
                   help="also write the other candidates, ranked, as OUT-2, OUT-3, … next to --out "
                        "(--out itself is the best)")
    g.add_argument("--select-weights", help="ranking weights, e.g. control=1,quality=0.5,emotion=1,genre=0 "
                   "(default: the ones tuned for the selector, listed in checkpoints/selector's card)")
    add_checkpoints(g)
    g.add_argument("--generator", metavar="FOLDER", help="sample from this generator folder instead of the "
                   "checkpoints' generator/, e.g. your fine-tuned one (`emomusic train generator --data-dir … "
                   "--out FOLDER`); the other components stay the checkpoints' own")
    g.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the request, check every output path, generate, write, and print the summary."""
    from emomusic.export import FORMATS
    from emomusic.request import GenerationRequest

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in FORMATS:
        got = f"suffix {out.suffix!r}" if out.suffix else "no suffix"
        raise InvalidInputError(f"{out}: {got} is not an output format; use one of {output_formats()}")
    prompts = prompt_values(args)
    request = GenerationRequest(
        emotion=args.emotion, valence=args.valence, arousal=args.arousal, intensity=args.intensity, genre=args.genre,
        tempo=args.tempo, time_signature=args.time_signature, prompts=prompts, bars=args.bars,
        candidates=args.candidates, seed=args.seed,
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, method=args.method,
        guidance=not args.no_guidance, expression=not args.no_expression, ending=not args.no_ending,
        entry=not args.no_entry, build=not args.no_build, form=args.form, trajectory=args.trajectory, loop=args.loop,
        progression=args.progression, arrangement=args.arrangement,
        instruments=args.instruments, select_weights=_select_weights(args.select_weights))
    plan = request.resolve()
    for line in plan.notices:
        note(line)
    out = out or default_out(plan.emotion, plan.request.seed, prompts.get("prompt"))
    if args.variations:
        return _variations(args, plan, out)
    others = _numbered(out, plan.request.candidates) if args.keep_all else []
    wav = out.with_suffix(".wav") if args.wav and out.suffix.lower() != ".wav" else None
    stems = _stems(args, plan, out)
    for path in (out, *others, *([wav] if wav else []), *stems):
        check_new_file(path, args.force)

    em, cands, seconds = _generated(args, lambda em: em.generate(plan))
    best = cands[0]
    em.save(best, out, force=args.force)
    for cand, path in zip(cands[1:], others, strict=False):  # others is empty without --keep-all
        em.save(cand, path, force=args.force)
    if wav is not None:
        em.save(best, wav, force=args.force)
    if stems:
        from emomusic.export.midi import export_stems

        export_stems(best.arrangement, out, force=args.force)

    a = best.attributes
    piece = _piece_length(best)
    held = notes_in_file(out)
    notes = len(best.notes) if held is None else held
    result = {"out": str(out), "emotion": a.emotion, "quadrant": a.quadrant, "valence": a.valence,
              "arousal": a.arousal, "intensity": plan.intensity, "genre": plan.genre, "genre_asked": plan.genre_asked,
              "attributes": {k: a.values[k] for k in best.measured} | {"controls": a.controls},
              "measured": best.measured, "method": best.method, "bars": plan.request.bars, "seed": plan.request.seed,
              "notes": notes, "piece_bars": piece["bars"], "tempo": piece["tempo"],
              "time_signature": piece["time_signature"], "music_seconds": piece["seconds"],
              "sections": best.sections, "loop": plan.request.loop, "request": best.provenance,
              "seconds": round(seconds, 3)} | ({"wav": str(wav)} if wav else {}) | _tracks(best, stems)
    if prompts:
        el = plan.elements
        result["prompt"] = el.to_dict() | {"notes": None if el.notes is None else len(el.notes)}
    if args.json:
        paths = [out, *others] if args.keep_all else [out]
        result["candidates"] = [{"rank": i + 1, "out": str(paths[i]) if i < len(paths) else None,
                                 "notes": len(c.notes),
                                 "scores": {k: v for k, v in c.scores.items() if v == v and abs(v) != float("inf")}}
                                for i, c in enumerate(cands)]
        if best.selection:
            result["selection"] = best.selection
        print(json.dumps(result))
    else:
        what = "notes in the file" if held is not None else "notes"
        line = (f"wrote {out}: {a.emotion} ({a.quadrant}), {piece['bars']} bars = {piece['seconds']:.1f} s of music "
                f"at {piece['tempo']:g} BPM in {piece['time_signature']}{_form_words(best.sections)}, {notes} {what}; "
                f"generated in {seconds:.1f} s [{best.method}]")
        if others:
            line += f"; the other {len(others)} candidates, ranked, as {others[0].name} … {others[-1].name}"
        if wav is not None:
            line += f"; preview {wav.name}"
        if best.arrangement is not None:
            line += (f"; {len(best.arrangement.tracks)} tracks: "
                     + ", ".join(f"{t.name} ({_instrument_name(t.program)})" for t in best.arrangement.tracks))
        if stems:
            line += f"; stems {stems[0].name} … {stems[-1].name}"
        print(line)
    return 0


def _stems(args: argparse.Namespace, plan, out: Path) -> list[Path]:
    """The stem files `--stems` will write (checked before generating), or [] without it."""
    if not args.stems:
        return []
    from emomusic.arrangement.arrange import roles_for
    from emomusic.export.midi import stem_paths

    req = plan.request
    chosen, _ = roles_for(req.arrangement, req.instruments)
    if len(chosen.roles) < 2:
        raise InvalidInputError("--stems writes one file per track: give --arrangement (e.g. band) or --instruments "
                                "with more than one part")
    return stem_paths([r.name for r in chosen.roles], out)


def _instrument_name(program: int) -> str:
    from emomusic.vocab.instruments import GM_PROGRAMS

    return "drum kit" if program < 0 else GM_PROGRAMS[program]


def _tracks(cand, stems: list[Path]) -> dict:
    """The JSON of an arranged piece: its preset and, per track, name, role, instrument and notes."""
    if cand.arrangement is None:
        return {}
    return {"arrangement": cand.arrangement.name,
            "tracks": [{"name": t.name, "role": t.role, "program": None if t.drums else t.program,
                        "instrument": _instrument_name(t.program), "channel": 10 if t.drums else None,
                        "notes": len(t.notes)} for t in cand.arrangement.tracks]} | (
        {"stems": [str(p) for p in stems]} if stems else {})


def _variations(args: argparse.Namespace, plan, out: Path) -> int:
    """`--variations`: one file per quadrant next to OUT, the same theme in each; one line each (or JSON)."""
    from emomusic.pipeline import variation_emotions

    if args.keep_all or args.wav or args.stems:
        raise InvalidInputError("--variations writes one file per quadrant; leave out --keep-all, --wav and --stems")
    paths = {q: out.with_name(f"{out.stem}-{q}-{safe_stem(word, 20)}{out.suffix}")
             for q, word in variation_emotions(plan).items()}
    for path in paths.values():
        check_new_file(path, args.force)
    em, cands, seconds = _generated(args, lambda em: em.variations(plan))
    rows = []
    for cand in cands:
        q = cand.attributes.quadrant
        em.save(cand, paths[q], force=args.force)
        piece = _piece_length(cand)
        rows.append({"out": str(paths[q]), "quadrant": q, "emotion": cand.attributes.emotion,
                     "tempo": piece["tempo"], "bars": piece["bars"], "music_seconds": piece["seconds"],
                     "notes": notes_in_file(paths[q]), "sections": cand.sections})
    if args.json:
        print(json.dumps({"variations": rows, "seed": plan.request.seed, "seconds": round(seconds, 3)}))
    else:
        for r in rows:
            print(f"wrote {r['out']}: {r['emotion']} ({r['quadrant']}), {r['bars']} bars at {r['tempo']:g} BPM, "
                  f"{r['notes']} notes")
        print(f"the same theme in four moods, generated in {seconds:.1f} s")
    return 0


def _generated(args: argparse.Namespace, make) -> tuple:
    """(the pipeline, `make(pipeline)`'s candidates, the seconds `make` took), after the kernels notice:
    every path is checked before this, so a bad one never waits for the model."""
    kernels_notice()
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(args.checkpoints, generator=getattr(args, "generator", None))
    for line in em.notices:
        note(line)
    t0 = time.perf_counter()
    cands = make(em)
    return em, cands, time.perf_counter() - t0


def default_out(emotion: str, seed: int, prompt: str | None = None, suffix: str = ".mid") -> Path:
    """A unique, sanitised file name in the current folder (never a path elsewhere, whatever the prompt).

    Args:
        emotion: the piece's emotion label.
        seed: the generation seed.
        prompt: the text prompt, if any (its words make the name more telling).
        suffix: the file suffix.

    Returns:
        `emomusic-<words>-seed<seed><suffix>`, with -1, -2, … added until no file has the name.
    """
    words = safe_stem(f"{emotion}-{prompt}" if prompt else emotion, 60)
    stem = f"emomusic-{words}-seed{int(seed)}"
    path = Path(f"{stem}{suffix}")
    i = 1
    while path.exists():
        path = Path(f"{stem}-{i}{suffix}")
        i += 1
    return path


def _numbered(out: Path, n: int) -> list[Path]:
    """OUT-2 … OUT-n next to `out`, for the candidates after the best (which is `out` itself)."""
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(2, n + 1)]


def _select_weights(text: str | None) -> dict[str, float] | None:
    """`quality=0.5,emotion=1` → {"quality": 0.5, "emotion": 1.0} (the selector checks the names)."""
    if not text:
        return None
    try:
        return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise InvalidInputError(f"--select-weights {text!r}: write head=weight pairs, e.g. "
                                "quality=0.5,emotion=1,genre=0") from None


def _form_words(sections: list[dict]) -> str:
    """", form AABA (4+4+4+4 bars)" for a piece in sections, ", calm 8 → tense 8 bars" for a trajectory;
    "" for one section."""
    if len(sections) < 2:
        return ""
    if "emotion" in sections[0]:
        return ", " + " → ".join(f"{s['emotion']} {s['bars']}" for s in sections) + " bars"
    return (f", form {''.join(s['label'] for s in sections)} "
            f"({'+'.join(str(s['bars']) for s in sections)} bars)")


def _piece_length(cand) -> dict[str, float]:
    """The piece's length: whole bars up to its last note, and those bars' seconds at its tempi."""
    n = cand.notes
    end = float((n.start + n.duration).max()) if len(n) else 0.0
    bars = max(1, math.ceil(end / n.beats_per_bar - 1e-9))
    return {"bars": bars, "tempo": round(float(n.tempo), 2), "time_signature": "{}/{}".format(*n.time_signature),
            "seconds": round(n.seconds(bars * n.beats_per_bar), 2)}


def notes_in_file(path: Path) -> int | None:
    """How many notes the written file holds, read back (MIDI, MusicXML); None for other formats.

    Why read back: the writer cleans the piece (overlapping repeats of one pitch merge, notes past the
    last bar go), so the file can hold fewer notes than the sampled piece; the summary reports the file.
    """
    suffix = path.suffix.lower()
    if suffix in MIDI:
        import mido

        return sum(1 for track in mido.MidiFile(str(path)).tracks for m in track
                   if m.type == "note_on" and m.velocity > 0)
    if suffix == ".musicxml":
        import music21

        return sum(len(n.pitches) for n in music21.converter.parse(str(path)).recurse().notes)
    return None
