"""`emomusic train <component>`: train one component; each component has only the flags it uses.

    emomusic train clusterer         [--data-root DIR] [--out CHECKPOINTS]
    emomusic train generator         [--preset small] [--steps N] [--max-minutes M] [--resume] …
    emomusic train selector          [--epochs N] [--checkpoints DIR] [--out CHECKPOINTS] [--no-tune]
    emomusic train ranking           [--checkpoints DIR] [--prompts N] [--data-root DIR]
    emomusic train prototypes        [--checkpoints DIR] [--data-root DIR]
    emomusic train recognizer        [--folds K] [--out CHECKPOINTS]
    emomusic train audio-recognizer  [--data-root DIR] [--mert DIR] [--out CHECKPOINTS]
    emomusic train expression        [--data-root DIR] [--max-pieces N] [--epochs N] [--out CHECKPOINTS]
    emomusic train melody            [--data-root DIR] [--max-songs N] [--epochs N] [--out CHECKPOINTS]
    emomusic train drums             [--data-root DIR] [--out CHECKPOINTS]
    emomusic train progressions      [--data-root DIR] [--pop909-songs N] [--out CHECKPOINTS]

Why nested: one flat `train` parser gave every component every flag, and `--steps` meant optimiser
steps for the generator but epochs for the selector. Training modules import torch: only the handler
that runs imports its module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emomusic.cli._common import command, subcommands
from emomusic.errors import InvalidInputError

CHECKPOINTS_OUT = "checkpoints folder to write {}/ into (default: $EMOMUSIC_CHECKPOINTS, else the shipped one)"
DATA_ROOT_HELP = "datasets folder (default: $EMOMUSIC_DATA, else ../shared/data)"
PRESETS = ("small", "gpu", "compare", "tiny")  # emomusic.training.train.PRESETS (not imported here: torch)


def add_parser(sub: argparse._SubParsersAction) -> None:
    t = command(sub, "train", "train a component (clusterer, generator, selector, ranking, prototypes, "
                "recognizer, audio-recognizer, expression, melody, drums, progressions)",
                "train one component; `emomusic train <component> --help` lists its flags")
    components = subcommands(t, "component", "{clusterer,generator,selector,ranking,prototypes,recognizer,"
                             "audio-recognizer,expression,melody,drums,progressions}")

    c = command(components, "clusterer", "fit the emotion → attributes clusterer and the feature judge")
    c.add_argument("--data-root", help=DATA_ROOT_HELP)
    c.add_argument("--out", help=CHECKPOINTS_OUT.format("clusterer/ and judge"))
    c.set_defaults(handler=clusterer)

    g = command(components, "generator", "train the music generator (prepare the data first: emomusic data prepare)")
    g.add_argument("--out", default="runs/generator", help="run folder (checkpoints in OUT/last and OUT/best)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--preset", choices=PRESETS, default="small",
                   help="model/batch size: small = the shipped model, gpu = the same model with a GPU's batch, "
                        "compare = the conditioning comparison's smaller model, tiny = smoke tests")
    g.add_argument("--steps", type=int, help="optimiser steps (default: the preset's)")
    g.add_argument("--max-minutes", type=float, help="stop cleanly (and save) after this much time (default: no limit)")
    g.add_argument("--fit-steps", action="store_true",
                   help="with --max-minutes: fit the step count (the cosine schedule) to the time")
    g.add_argument("--lr", type=float, help="peak learning rate, e.g. lower when extending a run (default: the "
                   "preset's)")
    g.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    g.add_argument("--workers", type=int, default=0, help="processes drawing training windows (0: the training "
                   "process itself)")
    g.add_argument("--tokenizer-from", help="start with this generator checkpoint's tokenizer (its control bins; "
                   "default: fit new bins on the data)")
    g.add_argument("--from", dest="init_from", metavar="CHECKPOINT",
                   help="fine-tune: start from this generator checkpoint's weights, architecture and tokenizer "
                        "(e.g. checkpoints/generator; use a lower --lr)")
    g.add_argument("--harmony", action="store_true",
                   help="with --from a generator trained without bar chords (the shipped one has them): add a "
                        "chord token a bar to its vocabulary first (Harmony tokens, labelled from each bar's notes; "
                        "the grown checkpoint is written to OUT/base-harmony), so the fine-tuned model writes each "
                        "bar to the chord its plan gives it")
    g.add_argument("--conditioning", choices=("prefix", "sum"), default="prefix",
                   help="condition tokens as a prefix (shipped) or EmoGen's summed embedding")
    g.add_argument("--data-dir", metavar="FOLDER",
                   help="fine-tune on your own music: the .mid/.midi files under FOLDER (bad files skipped), "
                        "starting from --from (default: the shipped generator); lr 3e-5 and 400 steps unless "
                        "--lr/--steps (with --max-minutes: the schedule fits the time); OUT becomes a generator "
                        "folder for `emomusic generate --generator OUT`, the run in OUT/run (--resume continues it)")
    g.add_argument("--genre", default="pop", choices=("pop", "game", "classical", "folk", "early"),
                   help="with --data-dir: the genre your pieces are conditioned on (ask for it when generating)")
    g.set_defaults(handler=generator)

    s = command(components, "selector", "train the candidate selector on pieces the generator writes")
    s.add_argument("--epochs", type=int, default=300, help="passes over the scored candidates")
    s.add_argument("--checkpoints", help="checkpoints with the generator whose pieces it learns to rank "
                   "(default: $EMOMUSIC_CHECKPOINTS, else the shipped ones)")
    s.add_argument("--out", help=CHECKPOINTS_OUT.format("selector"))
    s.add_argument("--no-tune", action="store_true", help="keep the ranking weights the replaced checkpoint held "
                   "(default: tune them afterwards, as `emomusic train ranking` does)")
    s.set_defaults(handler=selector)

    k = command(components, "ranking", "tune the selector's ranking weights on generated best-of-8 batches "
                "(emotion by the judge and the recognizer, realism against real val pieces)")
    k.add_argument("--checkpoints", help="checkpoints whose selector is tuned (default: $EMOMUSIC_CHECKPOINTS, "
                   "else the shipped ones)")
    k.add_argument("--prompts", type=int, default=16, help="tuning prompts per quadrant (8 candidates each)")
    k.add_argument("--data-root", help=DATA_ROOT_HELP)
    k.set_defaults(handler=ranking)

    p = command(components, "prototypes", "score the real pieces nearest each emotion's centre by what the "
                "generator makes of them (emotion heard, inside real music's ranges); the clusterer picks the best")
    p.add_argument("--checkpoints", help="checkpoints whose clusterer is scored (default: $EMOMUSIC_CHECKPOINTS, "
                   "else the shipped ones)")
    p.add_argument("--data-root", help=DATA_ROOT_HELP)
    p.set_defaults(handler=prototypes)

    r = command(components, "recognizer", "train the symbolic (MIDI) emotion recognizer")
    r.add_argument("--folds", type=int, default=5,
                   help="song-level cross-validation folds that choose the distillation setting")
    r.add_argument("--out", help=CHECKPOINTS_OUT.format("recognizer"))
    r.set_defaults(handler=recognizer)

    a = command(components, "audio-recognizer", "train the audio emotion recognizer on rendered MIDI")
    a.add_argument("--data-root", help=DATA_ROOT_HELP)
    a.add_argument("--mert", help="also use this local MERT model folder's embeddings (never downloaded)")
    a.add_argument("--out", help=CHECKPOINTS_OUT.format("audio_recognizer"))
    a.set_defaults(handler=audio_recognizer)

    e = command(components, "expression", "train the performance layer (velocities, pedal) on performances")
    e.add_argument("--data-root", help=DATA_ROOT_HELP)
    e.add_argument("--max-pieces", type=int, default=400, help="train pieces per dataset at most (val: a quarter)")
    e.add_argument("--epochs", type=int, default=8, help="passes over the examples")
    e.add_argument("--out", help=CHECKPOINTS_OUT.format("expression"))
    e.set_defaults(handler=expression)

    m = command(components, "melody", "train the melody extractor (arrangements' lead part) on POP909's MELODY tracks")
    m.add_argument("--data-root", help=DATA_ROOT_HELP)
    m.add_argument("--max-songs", type=int, default=None, help="train songs at most (default: all)")
    m.add_argument("--epochs", type=int, default=10, help="passes over the examples")
    m.add_argument("--out", help=CHECKPOINTS_OUT.format("melody"))
    m.set_defaults(handler=melody)

    d = command(components, "drums", "build the drum groove model from the Groove MIDI Dataset's train takes")
    d.add_argument("--data-root", help=DATA_ROOT_HELP)
    d.add_argument("--out", help=CHECKPOINTS_OUT.format("drums"))
    d.set_defaults(handler=drums)

    p = command(components, "progressions", "learn the chord plans' bar-to-bar transitions (EMOPIA by quadrant, "
                "POP909 as the prior)")
    p.add_argument("--data-root", help=DATA_ROOT_HELP)
    p.add_argument("--pop909-songs", type=int, default=400, help="POP909 train songs for the prior")
    p.add_argument("--out", help=CHECKPOINTS_OUT.format("progressions"))
    p.set_defaults(handler=progressions)


def melody(args: argparse.Namespace) -> int:
    if (args.max_songs is not None and args.max_songs < 1) or args.epochs < 1:
        raise InvalidInputError("--max-songs and --epochs must be at least 1")
    from emomusic.training.melody import train_melody

    print(f"wrote {train_melody(args.data_root, args.out, args.max_songs, args.epochs)}")
    return 0


def drums(args: argparse.Namespace) -> int:
    from emomusic.training.drums import train_drums

    print(f"wrote {train_drums(args.data_root, args.out)}")
    return 0


def progressions(args: argparse.Namespace) -> int:
    if args.pop909_songs < 1:
        raise InvalidInputError("--pop909-songs must be at least 1")
    from emomusic.training.progressions import train_progressions

    print(f"wrote {train_progressions(args.data_root, args.out, args.pop909_songs)}")
    return 0


def expression(args: argparse.Namespace) -> int:
    if args.max_pieces < 1 or args.epochs < 1:
        raise InvalidInputError("--max-pieces and --epochs must be at least 1")
    from emomusic.training.expression import train_expression

    print(f"wrote {train_expression(args.data_root, args.out, args.max_pieces, args.epochs)}")
    return 0


def clusterer(args: argparse.Namespace) -> int:
    from emomusic.training.clusterer import fit_clusterer

    print(f"wrote {fit_clusterer(data_root=args.data_root, out=args.out)}")
    return 0


def generator(args: argparse.Namespace) -> int:
    if args.fit_steps and not args.max_minutes:
        raise InvalidInputError("--fit-steps needs --max-minutes (the time to fit the schedule to)")
    if args.data_dir:
        return _finetune(args)
    if args.init_from and (args.resume or args.tokenizer_from):
        raise InvalidInputError("--from starts a new run from a checkpoint: not with --resume or --tokenizer-from")
    if args.harmony and not args.init_from:
        raise InvalidInputError("--harmony grows a trained generator: give it with --from (e.g. checkpoints/generator)")
    from emomusic.training.train import PRESETS as TRAIN_PRESETS
    from emomusic.training.train import TrainConfig, train_generator

    if args.harmony:
        from emomusic.training.harmony import with_harmony_tokens

        args.init_from = with_harmony_tokens(args.init_from, Path(args.out) / "base-harmony")
    preset = TRAIN_PRESETS[args.preset]
    cfg = TrainConfig(**preset.get("train", {}))
    if args.steps:
        cfg.steps = args.steps
    if args.lr:
        cfg.lr = args.lr
    cfg.max_minutes = args.max_minutes
    cfg.fit_steps = args.fit_steps
    model_cfg = {**preset.get("model", {}), "conditioning": args.conditioning}
    out = train_generator(args.out, resume=args.resume, cfg=cfg, model_cfg=model_cfg, device=args.device,
                          workers=args.workers, tokenizer_from=args.tokenizer_from, init_from=args.init_from)
    print(f"checkpoint in {out}/last")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    """`--data-dir`: fine-tune a generator checkpoint on the user's folder (`training.finetune`)."""
    if args.tokenizer_from or args.conditioning != "prefix" or args.harmony:
        raise InvalidInputError("--data-dir keeps the --from checkpoint's tokenizer and conditioning: leave out "
                                "--tokenizer-from, --conditioning and --harmony")
    from emomusic.settings import checkpoints_root
    from emomusic.training.finetune import finetune_config, finetune_generator
    from emomusic.training.train import PRESETS as TRAIN_PRESETS
    from emomusic.training.train import TrainConfig

    preset = TRAIN_PRESETS[args.preset]
    cfg = finetune_config(TrainConfig(**preset.get("train", {})))
    if args.steps:
        cfg.steps = args.steps
    if args.lr:
        cfg.lr = args.lr
    cfg.max_minutes = args.max_minutes
    cfg.fit_steps = args.fit_steps or bool(args.max_minutes and not args.steps)
    base = args.init_from or checkpoints_root() / "generator"
    finetune_generator(args.data_dir, base, args.out, cfg=cfg, resume=args.resume, genre=args.genre,
                       device=args.device, model_cfg=preset.get("model", {}))
    return 0


def selector(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise InvalidInputError(f"--epochs must be at least 1, got {args.epochs}")
    from emomusic.training.selector import train_selector

    out = train_selector(out=Path(args.out) / "selector" if args.out else None, checkpoints=args.checkpoints,
                         epochs=args.epochs, tune=not args.no_tune)
    print(f"wrote {out}")
    return 0


def ranking(args: argparse.Namespace) -> int:
    if args.prompts < 1:
        raise InvalidInputError(f"--prompts must be at least 1, got {args.prompts}")
    from emomusic.training.ranking import train_ranking

    out = train_ranking(args.checkpoints, prompts_per_quadrant=args.prompts, data_root=args.data_root)
    print(f"wrote the ranking weights into {out}")
    return 0


def prototypes(args: argparse.Namespace) -> int:
    from emomusic.training.prototypes import train_prototypes

    out = train_prototypes(args.checkpoints, data_root=args.data_root)
    print(f"wrote the prototype scores into {out}")
    return 0


def recognizer(args: argparse.Namespace) -> int:
    from emomusic.training.recognizer import train_recognizer

    print(f"wrote {train_recognizer(out=Path(args.out) / 'recognizer' if args.out else None, folds=args.folds)}")
    return 0


def audio_recognizer(args: argparse.Namespace) -> int:
    from emomusic.training.audio_recognizer import train_audio_recognizer

    out = train_audio_recognizer(out=Path(args.out) / "audio_recognizer" if args.out else None,
                                 data_root=args.data_root, mert=args.mert)
    print(f"wrote {out}")
    return 0
