"""The `emomusic` command: a thin caller of the Python API.

Every user error ends as one line on stderr and exit code 2, with no traceback and no output
file left behind. Heavy modules (torch, models) are imported inside the commands that need them,
so `emomusic --help` and the attribute lookup start fast.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from emomusic.errors import InvalidInputError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (exit 2) instead of a usage block."""

    def error(self, message: str) -> None:  # noqa: D401
        raise InvalidInputError(f"{message} (see `{self.prog} --help`)")


def _prompt_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emotion", help="emotion word (calm, sad, happy, angry, …) or Q1..Q4")
    p.add_argument("--valence", type=float, help="valence in [-1, 1] (with --arousal)")
    p.add_argument("--arousal", type=float, help="arousal in [-1, 1] (with --valence)")
    p.add_argument("--genre", help="pop, game, classical, folk, early (or country, jazz, rock)")
    p.add_argument("--tempo", type=float, help="tempo in BPM")
    p.add_argument("--prompt", help="free-text prompt (projector; not available yet)")
    p.add_argument("--image", help="image prompt (projector; not available yet)")
    p.add_argument("--video", help="video prompt (projector; not available yet)")
    p.add_argument("--humming", help="hummed melody (projector; not available yet)")
    p.add_argument("--json", action="store_true", help="print one JSON object per result")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emomusic", description="Emotion-conditioned music generation and analysis.")
    from emomusic import __version__

    parser.add_argument("--version", action="version", version=f"emomusic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="write a new piece in the mood you ask for")
    _prompt_flags(g)
    g.add_argument("--bars", type=int, default=16)
    g.add_argument("--candidates", type=int, default=1, help="generate N in one batch, keep the best")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--method", choices=("attributes", "token"), default="attributes")
    g.add_argument("--no-guidance", action="store_true", help="sample without attribute-guided decoding")
    g.add_argument("--out", help="output .mid path (default: a unique name in the current folder)")
    g.add_argument("--wav", action="store_true", help="also write a .wav preview (needs the [audio] extra)")
    g.add_argument("--force", action="store_true", help="overwrite existing files")
    g.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints/; 'debug')")

    p = sub.add_parser("project", help="show the music elements a prompt projects to")
    _prompt_flags(p)

    a = sub.add_parser("attributes", help="EmoGen stage 1: musical attributes of an emotion")
    a.add_argument("--emotion")
    a.add_argument("--valence", type=float)
    a.add_argument("--arousal", type=float)
    a.add_argument("--json", action="store_true")
    a.add_argument("--checkpoints")

    an = sub.add_parser("analyze", help="recognise the emotion of MIDI or audio files")
    an.add_argument("files", nargs="+")
    an.add_argument("--json", action="store_true")
    an.add_argument("--plot")

    ev = sub.add_parser("evaluate", help="controllability and quality report")
    ev.add_argument("--per-emotion", type=int, default=25)
    ev.add_argument("--out", default="report")
    ev.add_argument("--bars", type=int, default=16)
    ev.add_argument("--checkpoints")

    t = sub.add_parser("train", help="train a component")
    t.add_argument("component", choices=("clusterer", "generator", "recognizer", "selector"))
    t.add_argument("--data-root")
    t.add_argument("--out")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--steps", type=int)
    t.add_argument("--max-minutes", type=float)
    t.add_argument("--preset", choices=("small", "tiny"), default="small",
                   help="model/batch size: small = the shipped model, tiny = smoke tests")

    d = sub.add_parser("data", help="prepare or inspect the training data")
    d.add_argument("action", choices=("prepare", "stats"))
    d.add_argument("--data-root")
    d.add_argument("--datasets", help="comma-separated subset (default: all)")

    de = sub.add_parser("demo", help="start the Gradio demo")
    de.add_argument("--host", default="127.0.0.1")
    de.add_argument("--port", type=int, default=7860)
    return parser


def _not_yet(what: str) -> None:
    raise InvalidInputError(f"{what} is not available in this version of emomusic yet")


def _check_prompt(args) -> None:
    for flag in ("prompt", "image", "video", "humming"):
        if getattr(args, flag, None):
            _not_yet(f"--{flag} (the prompt projector)")


def _default_out(emotion: str, seed: int) -> Path:
    """A unique, sanitised file name in the current folder."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", f"emomusic-{emotion}-seed{seed}").strip("-")[:80]
    path = Path(f"{stem}.mid")
    i = 1
    while path.exists():
        path = Path(f"{stem}-{i}.mid")
        i += 1
    return path


def cmd_generate(args) -> int:
    from emomusic.pipeline import EmoMusic

    _check_prompt(args)
    if args.wav:
        _not_yet("--wav (audio preview)")
    if args.out and Path(args.out).exists() and not args.force:
        raise InvalidInputError(f"{args.out}: already exists; pass --force to overwrite")
    em = EmoMusic.from_pretrained(args.checkpoints)
    t0 = time.perf_counter()
    cands = em.generate(emotion=args.emotion, valence=args.valence, arousal=args.arousal, genre=args.genre,
                        tempo=args.tempo, bars=args.bars, candidates=args.candidates, seed=args.seed,
                        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, method=args.method,
                        guidance=not args.no_guidance)
    seconds = time.perf_counter() - t0
    best = cands[0]
    out = Path(args.out) if args.out else _default_out(best.attributes.emotion, args.seed)
    em.save(best, out, force=args.force)
    a = best.attributes
    result = {"out": str(out), "emotion": a.emotion, "quadrant": a.quadrant, "valence": a.valence,
              "arousal": a.arousal, "attributes": {k: a.values[k] for k in best.measured} | {"controls": a.controls},
              "measured": best.measured, "method": best.method, "bars": args.bars, "seed": args.seed,
              "notes": len(best.notes), "seconds": round(seconds, 3)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {out}: {a.emotion} ({a.quadrant}), {args.bars} bars, {len(best.notes)} notes, "
              f"{seconds:.1f} s [{best.method}]")
    return 0


def cmd_attributes(args) -> int:
    from emomusic.pipeline import attributes_for

    if args.emotion is None and (args.valence is None or args.arousal is None):
        raise InvalidInputError("give --emotion WORD or both --valence and --arousal")
    a = attributes_for(args.emotion, args.valence, args.arousal, checkpoints=args.checkpoints)
    if args.json:
        print(json.dumps({"emotion": a.emotion, "quadrant": a.quadrant, "valence": a.valence,
                          "arousal": a.arousal, "attributes": a.values, "explanation": a.explanation,
                          "source": a.source}))
    else:
        print(f"{a.emotion} → {a.quadrant} (valence {a.valence:+.2f}, arousal {a.arousal:+.2f})")
        print("what sets it apart: " + ", ".join(a.explanation))
        for k in ("tempo", "mode", "note_density", "pitch_mean", "velocity_mean", "duration_mean", "polyphony"):
            print(f"  {k:>14}: {a.values[k]:.2f}")
        print(f"  (attributes of the real piece nearest the emotion's centre: {a.source})")
    return 0


def cmd_project(args) -> int:
    from emomusic.emotions import emotion_from_va, resolve_emotion, resolve_genre

    _check_prompt(args)
    if args.emotion is None and (args.valence is None or args.arousal is None):
        raise InvalidInputError("give --emotion WORD or both --valence and --arousal")
    emo = emotion_from_va(args.valence, args.arousal) if args.valence is not None else resolve_emotion(args.emotion)
    sources = ["emotion: " + ("--valence/--arousal" if args.valence is not None else f"tag '{args.emotion}'")]
    genre = resolve_genre(args.genre) if args.genre else None
    if genre:
        sources.append(f"genre: tag '{args.genre}'")
    if args.tempo is not None:
        sources.append("tempo: --tempo")
    out = {"quadrant": emo.quadrant, "valence": emo.valence, "arousal": emo.arousal, "emotion": emo.word,
           "genre": genre, "tempo": args.tempo, "notes": None, "sources": sources}
    print(json.dumps(out) if args.json else ", ".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def cmd_train(args) -> int:
    if args.component == "clusterer":
        from emomusic.attributes.fit import fit_clusterer

        out = fit_clusterer(data_root=args.data_root, out=args.out)
        print(f"wrote {out}")
        return 0
    if args.component == "generator":
        from emomusic.training.train import PRESETS, TrainConfig, train_generator

        preset = PRESETS[args.preset]
        cfg = TrainConfig(**preset.get("train", {}))
        if args.steps:
            cfg.steps = args.steps
        cfg.max_minutes = args.max_minutes
        out = train_generator(args.out or "runs/generator", resume=args.resume, cfg=cfg,
                              model_cfg=preset.get("model"))
        print(f"checkpoint in {out}/last")
        return 0
    _not_yet(f"training the {args.component}")
    return EXIT_USAGE


def cmd_evaluate(args) -> int:
    from emomusic.evaluation.controllability import evaluate
    from emomusic.pipeline import EmoMusic

    n = int(args.per_emotion)
    if n < 1:
        raise InvalidInputError("--per-emotion must be at least 1")
    report = evaluate(EmoMusic.from_pretrained(args.checkpoints), per_emotion=n, bars=args.bars, out=args.out)
    for method, v in report["methods"].items():
        a = v["accuracy"]
        print(f"{method:>10}: 4Q {a['4Q']:.3f}  arousal {a['arousal']:.3f}  valence {a['valence']:.3f}  "
              f"quality overlap {v['mean_overlap']:.3f}")
    print(f"report written to {args.out}/report.md")
    return 0


def cmd_data(args) -> int:
    from emomusic.training import datasets

    chosen = tuple(args.datasets.split(",")) if args.datasets else None
    if args.action == "prepare":
        counts = datasets.prepare(args.data_root, chosen)
        for name, n in counts.items():
            print(f"{name}: {n} pieces cached")
        return 0
    for row in datasets.stats(args.data_root):
        print(json.dumps(row))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        handler = {"generate": cmd_generate, "attributes": cmd_attributes, "project": cmd_project,
                   "train": cmd_train, "data": cmd_data, "evaluate": cmd_evaluate}.get(args.command)
        if handler is None:
            _not_yet(f"`emomusic {args.command}`")
        return handler(args)
    except InvalidInputError as exc:
        print(f"emomusic: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("emomusic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
