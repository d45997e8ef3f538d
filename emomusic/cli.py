"""The `emomusic` command: a thin caller of the Python API.

Every user error ends as one line on stderr and exit code 2, with no traceback and no output
file left behind. Heavy modules (torch, models) are imported inside the commands that need them,
so `emomusic --help` and the attribute lookup start fast.
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--emotion", help="emotion word (calm, sad, happy, angry, …) or Q1..Q4; wins over prompts")
    p.add_argument("--valence", type=float, help="valence in [-1, 1] (with --arousal, or to override a prompt's)")
    p.add_argument("--arousal", type=float, help="arousal in [-1, 1] (with --valence, or to override a prompt's)")
    p.add_argument("--genre", help="pop, game, classical, folk, early (or country, jazz, rock); wins over prompts")
    p.add_argument("--tempo", type=float, help="tempo in BPM; wins over prompts")
    p.add_argument("--prompt", help="tags ('sad, slow, jazz', '90 bpm') or free text ('a rainy lonely night')")
    p.add_argument("--image", help="image file: mood from colour (brightness, saturation, warmth) and texture")
    p.add_argument("--video", help="video file: mood from colour, motion energy and cut rate; tempo from motion")
    p.add_argument("--humming", help="audio of a hummed melody: it opens the piece (key and tempo follow it)")
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
    g.add_argument("--top-p", type=float, default=None,
                   help="nucleus size (default: emomusic.generation.sampling.TOP_P, 0.98)")
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--method", choices=("attributes", "token"), default="attributes")
    g.add_argument("--no-guidance", action="store_true", help="sample without attribute-guided decoding")
    g.add_argument("--out", help="output .mid path (default: a unique name in the current folder)")
    g.add_argument("--wav", action="store_true", help="also write a .wav preview (needs the [audio] extra)")
    g.add_argument("--force", action="store_true", help="overwrite existing files")
    g.add_argument("--keep-all", action="store_true",
                   help="also write every candidate, best first, as OUT-1.mid, OUT-2.mid, … next to --out")
    g.add_argument("--select-weights", help="ranking weights, e.g. control=1,quality=0.5,emotion=1,genre=0 "
                   "(default: the ones tuned for the selector, listed in checkpoints/selector's card)")
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
    an.add_argument("files", nargs="+", help="MIDI (.mid) or audio (.wav .flac .mp3 .ogg) files")
    an.add_argument("--json", action="store_true", help="print one JSON object per file per line")
    an.add_argument("--plot", help="also draw the files on the valence/arousal plane into this .png")
    an.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints/)")
    an.add_argument("--mert", help="local MERT model folder for audio files (never downloaded)")
    an.add_argument("--force", action="store_true", help="overwrite an existing --plot file")

    ev = sub.add_parser("evaluate", help="controllability and quality report")
    ev.add_argument("--per-emotion", type=int, default=25)
    ev.add_argument("--out", default="report")
    ev.add_argument("--bars", type=int, default=16)
    ev.add_argument("--checkpoints")
    ev.add_argument("--methods", help="comma-separated subset of token,attributes,selector (default: all)")
    ev.add_argument("--candidates", type=int, default=8, help="candidates per piece for the selector method")
    ev.add_argument("--seed-offset", type=int, default=0,
                    help="add this to every seed: check a choice made on the default seeds on unseen pieces")

    t = sub.add_parser("train", help="train a component")
    t.add_argument("component", choices=("clusterer", "generator", "recognizer", "selector", "audio-recognizer"))
    t.add_argument("--data-root")
    t.add_argument("--out")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--steps", type=int)
    t.add_argument("--max-minutes", type=float)
    t.add_argument("--lr", type=float, help="generator: peak learning rate (e.g. lower when extending a run)")
    t.add_argument("--preset", choices=("small", "gpu", "compare", "tiny"), default="small",
                   help="model/batch size: small = the shipped model, gpu = the same model with a GPU's batch, "
                        "compare = the conditioning comparison's smaller model, tiny = smoke tests")
    t.add_argument("--device", default="auto", help="generator: cpu, cuda or auto (CUDA when present)")
    t.add_argument("--workers", type=int, default=0,
                   help="generator: processes drawing training windows (0 = in the training process)")
    t.add_argument("--tokenizer-from",
                   help="generator: start with this generator checkpoint's tokenizer (its control bins)")
    t.add_argument("--fit-steps", action="store_true",
                   help="generator, with --max-minutes: fit the step count (the cosine schedule) to the time")
    t.add_argument("--conditioning", choices=("prefix", "sum"), default="prefix",
                   help="generator: condition tokens as a prefix (shipped) or EmoGen's summed embedding")
    t.add_argument("--mert", help="audio-recognizer: also use this local MERT model folder's embeddings")
    t.add_argument("--folds", type=int, default=5,
                   help="recognizer: song-level cross-validation folds that choose the distillation setting")

    d = sub.add_parser("data", help="prepare or inspect the training data")
    d.add_argument("action", choices=("prepare", "stats"))
    d.add_argument("--data-root")
    d.add_argument("--datasets", help="comma-separated subset (default: all)")

    de = sub.add_parser("demo", help="start the Gradio demo")
    de.add_argument("--host", default="127.0.0.1")
    de.add_argument("--port", type=int, default=7860)
    de.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints/; 'debug')")
    de.add_argument("--out", help="folder for generated files (default: <tmp>/emomusic-demo)")
    de.add_argument("--max-upload-mb", type=float, default=20.0, help="refuse uploads larger than this")
    de.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    return parser


def _not_yet(what: str) -> None:
    raise InvalidInputError(f"{what} is not available in this version of emomusic yet")


PROMPT_FLAGS = ("prompt", "image", "video", "humming")


def _project(args):
    """The projector's Elements for the prompt and explicit flags, or None when no prompt flag is given."""
    if all(getattr(args, f, None) is None for f in PROMPT_FLAGS):
        return None
    from emomusic.prompt.projector import project

    return project(prompt=args.prompt, image=args.image, video=args.video, humming=args.humming,
                   emotion=args.emotion, valence=args.valence, arousal=args.arousal, genre=args.genre,
                   tempo=args.tempo)


def safe_stem(text: str, limit: int = 80) -> str:
    """`text` as a plain file-name stem: ASCII letters, digits, '_' and '-' only, at most `limit` chars.

    Prompts are free text: without this a prompt such as "../../etc/x" or one holding control characters
    or a newline would pick where the file goes or break the terminal. Accents are folded ("café" → "cafe").
    """
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9_]+", "-", ascii_text).strip("-")[:limit].strip("-")


def _default_out(emotion: str, seed: int, prompt: str | None = None, suffix: str = ".mid") -> Path:
    """A unique, sanitised file name in the current folder (never a path elsewhere, whatever the prompt)."""
    words = safe_stem(f"{emotion}-{prompt}" if prompt else emotion, 60) or "piece"
    stem = f"emomusic-{words}-seed{int(seed)}"
    path = Path(f"{stem}{suffix}")
    i = 1
    while path.exists():
        path = Path(f"{stem}-{i}{suffix}")
        i += 1
    return path


def cmd_generate(args) -> int:
    from emomusic.pipeline import EmoMusic

    if args.out and Path(args.out).suffix.lower() not in (".mid", ".midi"):
        raise InvalidInputError(f"{args.out}: --out must end in .mid or .midi (use --wav for an audio preview)")
    if args.wav and args.out and Path(args.out).with_suffix(".wav").exists() and not args.force:
        raise InvalidInputError(f"{Path(args.out).with_suffix('.wav')}: already exists; pass --force to overwrite")
    if args.out and Path(args.out).exists() and not args.force:
        raise InvalidInputError(f"{args.out}: already exists; pass --force to overwrite")
    el = _project(args)
    cond = {"emotion": args.emotion, "valence": args.valence, "arousal": args.arousal, "genre": args.genre,
            "tempo": args.tempo, "primer": None}
    if el is not None:
        if el.valence is None or el.arousal is None:
            raise InvalidInputError("the prompt names no emotion; add a mood word (e.g. 'calm') or pass --emotion")
        cond = {"emotion": None, "valence": el.valence, "arousal": el.arousal, "genre": el.genre,
                "tempo": el.tempo, "primer": el.notes}
    em = EmoMusic.from_pretrained(args.checkpoints)
    t0 = time.perf_counter()
    nucleus = {} if args.top_p is None else {"top_p": args.top_p}  # None: the pipeline's tuned default
    cands = em.generate(**cond, bars=args.bars, candidates=args.candidates, seed=args.seed,
                        temperature=args.temperature, top_k=args.top_k, method=args.method, **nucleus,
                        guidance=not args.no_guidance, select_weights=_select_weights(args.select_weights))
    seconds = time.perf_counter() - t0
    best = cands[0]
    a = best.attributes
    if el is not None and el.emotion and el.quadrant == a.quadrant:
        from dataclasses import replace

        a = replace(a, emotion=el.emotion)  # the projector's word ("lonely"), not the word nearest its point
    out = Path(args.out) if args.out else _default_out(a.emotion, args.seed, args.prompt)
    every = _numbered(out, len(cands), args.force) if args.keep_all else []
    em.save(best, out, force=args.force)
    for cand, path in zip(cands, every, strict=False):  # every is empty without --keep-all
        em.save(cand, path, force=args.force)
    wav = _write_wav(out, args.force) if args.wav else None
    result = {"out": str(out), "emotion": a.emotion, "quadrant": a.quadrant, "valence": a.valence,
              "arousal": a.arousal, "attributes": {k: a.values[k] for k in best.measured} | {"controls": a.controls},
              "measured": best.measured, "method": best.method, "bars": args.bars, "seed": args.seed,
              "notes": len(best.notes), "seconds": round(seconds, 3)} | ({"wav": str(wav)} if wav else {})
    if el is not None:
        result["prompt"] = el.to_dict() | {"notes": None if el.notes is None else len(el.notes)}
    if args.json:
        result["candidates"] = [{"rank": i + 1, "out": str(every[i]) if every else None, "notes": len(c.notes),
                                 "scores": {k: v for k, v in c.scores.items() if v == v and abs(v) != float("inf")}}
                                for i, c in enumerate(cands)]
        print(json.dumps(result))
    else:
        print(f"wrote {out}: {a.emotion} ({a.quadrant}), {args.bars} bars, {len(best.notes)} notes, "
              f"{seconds:.1f} s [{best.method}]" + (f"; all {len(every)} candidates as {every[0].name} …"
                                                    if every else ""))
    return 0


def _select_weights(text: str | None) -> dict[str, float] | None:
    """`quality=0.5,emotion=1` → {"quality": 0.5, "emotion": 1.0} (the selector checks the names)."""
    if not text:
        return None
    try:
        return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise InvalidInputError(f"--select-weights {text!r}: write head=weight pairs, e.g. "
                                "quality=0.5,emotion=1,genre=0") from None


def _numbered(out: Path, n: int, force: bool) -> list[Path]:
    """OUT-1.mid … OUT-n.mid next to `out`, refused up front if any exists (no half-written set)."""
    paths = [out.with_name(f"{out.stem}-{i}{out.suffix or '.mid'}") for i in range(1, n + 1)]
    taken = [p for p in paths if p.exists()]
    if taken and not force:
        raise InvalidInputError(f"{taken[0]}: already exists; pass --force to overwrite")
    return paths


def _write_wav(midi: Path, force: bool) -> Path:
    """The .wav preview next to the MIDI (fluidsynth + GM soundfont, sine tones with a warning)."""
    from emomusic.export.render import render_wav

    return render_wav(midi, midi.with_suffix(".wav"), force=force)


def cmd_demo(args) -> int:
    """Serve the Gradio demo (emomusic/apps/demo.py) until interrupted."""
    try:
        from emomusic.apps.demo import launch
    except ImportError as exc:
        raise InvalidInputError(f"the demo needs Gradio and the demos package ({exc}); "
                                "pip install -e '.[demo]' from the repository") from None
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port must be between 0 and 65535, got {args.port}")
    launch(host=args.host, port=args.port, checkpoints=args.checkpoints, out_dir=args.out,
           max_upload_mb=args.max_upload_mb, share=args.share)
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
    from emomusic.prompt.projector import project

    if all(getattr(args, f, None) is None for f in PROMPT_FLAGS) and args.emotion is None and (
            args.valence is None or args.arousal is None):
        raise InvalidInputError("give a prompt (--prompt/--image/--video/--humming), --emotion WORD, "
                                "or both --valence and --arousal")
    el = project(prompt=args.prompt, image=args.image, video=args.video, humming=args.humming,
                 emotion=args.emotion, valence=args.valence, arousal=args.arousal, genre=args.genre,
                 tempo=args.tempo)
    out = el.to_dict()
    if args.json:
        print(json.dumps(out))
    else:
        notes = "none" if el.notes is None else f"{len(el.notes)} notes, {el.notes.n_bars} bars"
        mood = f"{el.emotion} ({el.quadrant}), valence {el.valence}, arousal {el.arousal}" if el.quadrant else \
            "no emotion named"
        print(f"{mood}, genre {el.genre}, tempo {el.tempo}, melody: {notes}")
        for line in el.sources:
            print(f"  {line}")
    return 0


def _plot_va(results: list, path: Path, force: bool) -> None:
    """Files as points on the valence/arousal plane (matplotlib imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emomusic.io import atomic_write

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    for text, x, y in (("Q1 happy", 0.55, 0.92), ("Q2 tense", -0.95, 0.92), ("Q3 sad", -0.95, -0.95),
                       ("Q4 calm", 0.6, -0.95)):
        ax.text(x, y, text, color="grey")
    for r in results:
        ax.scatter(r.valence, r.arousal, s=25)
        ax.annotate(Path(r.file).stem[:24], (r.valence, r.arousal), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="valence", ylabel="arousal",
           title="emomusic analyze")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), force)
    plt.close(fig)


def cmd_analyze(args) -> int:
    """Analyse every file; a bad file gets an error line on stderr and exit 2 at the end."""
    from emomusic.recognition.api import EmotionRecognizer

    plot = Path(args.plot) if args.plot else None
    if plot and plot.exists() and not args.force:
        raise InvalidInputError(f"{plot}: already exists; pass --force to overwrite")
    if plot and plot.suffix.lower() != ".png":
        raise InvalidInputError(f"{plot}: --plot writes a PNG image; give a path ending in .png")
    results, failed = [], 0
    for path, res in EmotionRecognizer(args.checkpoints, mert=args.mert).iter_recognize(args.files):
        if isinstance(res, Exception):
            failed += 1
            _error(str(res).splitlines()[0] if str(res) else str(path))
            continue
        results.append(res)
        if args.json:
            print(json.dumps(res.to_dict()), flush=True)
        else:
            probs = " ".join(f"{q} {p:.2f}" for q, p in res.probabilities.items())
            print(f"{res.file}: {res.quadrant} ({probs}); valence {res.valence:+.2f}, arousal {res.arousal:+.2f}; "
                  f"{', '.join(res.explanation)}", flush=True)
    if plot and results:
        _plot_va(results, plot, args.force)
    return EXIT_USAGE if failed else 0


def cmd_train(args) -> int:
    if args.component == "clusterer":
        from emomusic.training.clusterer import fit_clusterer

        out = fit_clusterer(data_root=args.data_root, out=args.out)
        print(f"wrote {out}")
        return 0
    if args.component == "generator":
        from emomusic.training.train import PRESETS, TrainConfig, train_generator

        preset = PRESETS[args.preset]
        cfg = TrainConfig(**preset.get("train", {}))
        if args.steps:
            cfg.steps = args.steps
        if args.lr:
            cfg.lr = args.lr
        cfg.max_minutes = args.max_minutes
        if args.fit_steps and not args.max_minutes:
            raise InvalidInputError("--fit-steps needs --max-minutes (the time to fit the schedule to)")
        cfg.fit_steps = args.fit_steps
        model_cfg = {**preset.get("model", {}), "conditioning": args.conditioning}
        out = train_generator(args.out or "runs/generator", resume=args.resume, cfg=cfg, model_cfg=model_cfg,
                              device=args.device, workers=args.workers, tokenizer_from=args.tokenizer_from)
        print(f"checkpoint in {out}/last")
        return 0
    if args.component == "selector":
        from emomusic.training.selector import train_selector

        out = train_selector(out=Path(args.out) / "selector" if args.out else None,
                             epochs=args.steps or 300)
        print(f"wrote {out}")
        return 0
    if args.component == "recognizer":
        from emomusic.training.recognizer import train_recognizer

        out = train_recognizer(out=Path(args.out) / "recognizer" if args.out else None, folds=args.folds)
        print(f"wrote {out}")
        return 0
    if args.component == "audio-recognizer":
        from emomusic.training.audio_recognizer import train_audio_recognizer

        out = train_audio_recognizer(out=Path(args.out) / "audio_recognizer" if args.out else None,
                                     data_root=args.data_root, mert=args.mert)
        print(f"wrote {out}")
        return 0
    _not_yet(f"training the {args.component}")
    return EXIT_USAGE


def cmd_evaluate(args) -> int:
    from emomusic.evaluation.controllability import evaluate
    from emomusic.pipeline import EmoMusic

    n = int(args.per_emotion)
    if n < 1:
        raise InvalidInputError("--per-emotion must be at least 1")
    methods = tuple(m.strip() for m in args.methods.split(",")) if args.methods else None
    if methods and not set(methods) <= {"token", "attributes", "selector"}:
        raise InvalidInputError(f"--methods {args.methods!r}: choose from token, attributes, selector")
    if not 1 <= args.candidates <= 64:
        raise InvalidInputError("--candidates must be between 1 and 64")
    report = evaluate(EmoMusic.from_pretrained(args.checkpoints), per_emotion=n, bars=args.bars, out=args.out,
                      methods=methods, select_n=args.candidates, seed_offset=args.seed_offset)
    for method, v in report["methods"].items():
        a = v["accuracy"]
        print(f"{method:>10}: 4Q {a['4Q']:.3f}  arousal {a['arousal']:.3f}  valence {a['valence']:.3f}  "
              f"quality overlap {v['mean_overlap']:.3f}")
        if "selection" in v:
            g = v["selection"]
            print(f"{'':>10}  best of {g['candidates']} vs first candidate, same seeds: 4Q "
                  f"{g['best']['4Q']:.3f} vs {g['first_candidate']['4Q']:.3f} "
                  f"({100 * g['gain_4Q_vs_first']:+.1f} points)")
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


def _printable(text: str) -> str:
    """One line with control characters escaped, so a hostile file name cannot break or drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"emomusic: error: {_printable(message)}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code.

    User and environment errors (bad input, damaged checkpoint, disk full, permission denied, out of
    memory) are one stderr line and exit 2. Anything else is a bug: one line and exit 1, with the
    traceback only when EMOMUSIC_DEBUG is set.
    """
    try:
        args = build_parser().parse_args(argv)
        handler = {"generate": cmd_generate, "attributes": cmd_attributes, "project": cmd_project,
                   "train": cmd_train, "data": cmd_data, "evaluate": cmd_evaluate,
                   "analyze": cmd_analyze,
                   "demo": cmd_demo}.get(args.command)
        if handler is None:
            _not_yet(f"`emomusic {args.command}`")
        return handler(args)
    except InvalidInputError as exc:  # includes CheckpointError
        return _error(str(exc) or type(exc).__name__)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else _error(exc.code)
    except KeyboardInterrupt:
        print("emomusic: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _error("out of memory; try fewer --bars or --candidates, or a smaller input file")
    except OSError as exc:  # disk full, permission denied, read-only folder, …
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}; check the path, its permissions and free disk space")
    except Exception as exc:
        if os.environ.get("EMOMUSIC_DEBUG"):
            raise
        return _error(f"internal error ({type(exc).__name__}: {exc}); please report it, and set "
                      "EMOMUSIC_DEBUG=1 to see the traceback", code=1)


if __name__ == "__main__":
    sys.exit(main())
