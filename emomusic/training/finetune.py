"""Fine-tune a generator on a folder of your own MIDI files (`emomusic train generator --data-dir`).

    emomusic train generator --from checkpoints/generator --data-dir my_midis/ --max-minutes 30 --out my_model
    emomusic generate --generator my_model --emotion happy --out mine.mid

Why a module of its own: the fixed datasets are prepared once into caches (`datasets.prepare`), but a
user's folder is read at the start of the run, file by file, skipping what cannot be used. Each file
is read the way the datasets are (`beats.real_grid_notes`: a nominal-tempo performance goes onto its
tracked beats) and tokenized with the base checkpoint's tokenizer, so the fine-tuned weights read
conditions exactly as the base did. The folder is unlabelled data: every training window is
conditioned on its own attributes (`windows.WindowSampler`), as the generator always is.

The run lives in `OUT/run/` (`last/` for --resume, `best/`, `log.jsonl`, `finetune.json`); when it
ends, the weights with the lowest val loss are written to OUT itself (model.safetensors, config.json,
MODEL_CARD.md), a generator folder that `--generator OUT` and `EmoMusic.from_pretrained(generator=OUT)`
load.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.errors import InvalidInputError
from emomusic.music.tokenizer import GENRES, MusicTokenizer
from emomusic.training.datasets import Prepared, Record, encode_piece, split_hash
from emomusic.training.train import TrainConfig

MIDI_SUFFIXES = (".mid", ".midi")
DATASET = "user"  # the records' dataset name (per-dataset logs and val losses say "user")
VAL_PERCENT = 15  # a folder is small: a larger share than the datasets' 8% keeps the val loss meaningful
VAL_WINDOWS_PER_PIECE = 4  # val windows start at evenly spaced bars of each val piece, not only its first
RUN_DIR = "run"
STATE_FILE = "finetune.json"
# Fine-tuning defaults: a small peak learning rate (the weights are trained already; the from-scratch 1e-3
# undoes them), a short warm-up, and evaluation often enough to keep the best weights of a short run.
# 3e-5, not 1e-4: on 40 jigs, 5 CPU minutes at 1e-4 raised the val loss (a fresh optimiser's first steps
# shake a converged model) and 3e-5 lowered it (docs/BENCHMARKS.md, "Fine-tuning on your own music").
FINETUNE_LR, FINETUNE_STEPS, FINETUNE_WARMUP, FINETUNE_EVAL_EVERY = 3e-5, 400, 20, 50
# what a skipped file's reason is called in the summary line, in this order
REASONS = ("unreadable", "empty", "drum-only", "too short")


@dataclass
class FolderData:
    """A user's folder read for training: the usable pieces and what was skipped, and why."""

    prepared: Prepared
    found: int
    skipped: Counter

    def summary(self) -> str:
        """One line: "skipped 3 of 43 files (2 unreadable, 1 empty)", or "" when none was skipped."""
        n = sum(self.skipped.values())
        if not n:
            return ""
        why = ", ".join(f"{self.skipped[r]} {r}" for r in REASONS if self.skipped.get(r))
        return f"skipped {n} of {self.found} files ({why})"


def midi_files(folder: str | os.PathLike) -> list[Path]:
    """The .mid/.midi files under `folder` (any depth, any case of the suffix), sorted by path.

    Args:
        folder: the user's folder.

    Returns:
        The file paths.

    Raises:
        InvalidInputError: the folder does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInputError(f"--data-dir {root}: not a folder; give the folder that holds your MIDI files")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def finetune_config(cfg: TrainConfig) -> TrainConfig:
    """A preset's settings with the fine-tuning defaults: lower peak lr, fewer steps, short warm-up.

    Args:
        cfg: the preset's training settings (batch, window length, evaluation cadence).

    Returns:
        A new TrainConfig (`--steps` and `--lr` override it afterwards).
    """
    return replace(cfg, lr=FINETUNE_LR, steps=FINETUNE_STEPS, warmup=min(cfg.warmup, FINETUNE_WARMUP),
                   eval_every=min(cfg.eval_every, FINETUNE_EVAL_EVERY))


def val_keys(keys: list[str], val_percent: int = VAL_PERCENT) -> set[str]:
    """The keys that go to validation: a stable hash split, at least one of two or more, never all.

    Why by hash (md5 of the file's path in the folder): the same file stays on the same side when
    the run is resumed or the folder grows, on every machine.

    Args:
        keys: the usable files' relative paths.
        val_percent: percentage of keys that go to validation.

    Returns:
        The validation keys.
    """
    h = {k: split_hash(k) for k in keys}
    val = {k for k in keys if h[k] % 100 < val_percent}
    if len(keys) >= 2 and not val:
        val = {min(keys, key=lambda k: (h[k] % 100, k))}
    if len(keys) >= 2 and len(val) == len(keys):
        val.discard(max(val, key=lambda k: (h[k] % 100, k)))
    return val


def _read(path: Path, tokenizer: MusicTokenizer) -> tuple[np.ndarray, np.ndarray] | str:
    """Tokens and whole-piece attributes of one file (`datasets.encode_piece`), or why it is skipped."""
    from emomusic.music.midi import load_score

    try:
        score = load_score(path)
    except InvalidInputError as exc:  # a zero-byte file, or a valid one without a note, is empty
        return "empty" if "is empty" in str(exc) or "holds no notes" in str(exc) else "unreadable"
    except Exception:  # noqa: BLE001 (a bad file is counted, never the end of the run)
        return "unreadable"
    tracks = [t for t in score.tracks if len(t.notes)]
    if not tracks:
        return "empty"
    if all(t.is_drum for t in tracks):
        return "drum-only"
    try:
        ids, attributes = encode_piece(path, tokenizer, min_tokens=8)  # what `datasets.prepare` keeps
    except Exception:  # noqa: BLE001
        return "unreadable"
    return "too short" if attributes is None else (ids, attributes)


def read_folder(folder: str | os.PathLike, tokenizer: MusicTokenizer, genre: str = "pop",
                val_percent: int = VAL_PERCENT) -> FolderData:
    """Read every MIDI file under `folder` into a `Prepared` corpus (dataset "user"), split by hash.

    Args:
        folder: the user's folder.
        tokenizer: the base checkpoint's tokenizer (the fine-tuned model keeps it).
        genre: the genre token the pieces are conditioned on.
        val_percent: percentage of files held out for validation (at least one of two or more).

    Returns:
        The usable pieces, the number of files found and the skipped ones by reason.

    Raises:
        InvalidInputError: the folder does not exist or holds no usable MIDI file.
    """
    root = Path(folder)
    paths = midi_files(root)
    skipped: Counter = Counter()
    good: list[tuple[str, Path, np.ndarray, np.ndarray]] = []
    for p in paths:
        res = _read(p, tokenizer)
        if isinstance(res, str):
            skipped[res] += 1
        else:
            good.append((p.relative_to(root).as_posix(), p, *res))
    data = FolderData(Prepared([], np.zeros(0, np.uint16), np.zeros(1, np.int64), np.zeros((0, 0), np.float32)),
                      len(paths), skipped)
    if not good:
        what = f"; {data.summary()}" if paths else ""
        raise InvalidInputError(f"--data-dir {root}: no usable MIDI files (.mid/.midi, any depth){what}")
    val = val_keys([k for k, *_ in good], val_percent)
    recs = [Record(f"{DATASET}/{k}", DATASET, str(p), genre, "val" if k in val else "train", f"{DATASET}/{k}")
            for k, p, _, _ in good]
    tokens = [ids for *_, ids, _ in good]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    data.prepared = Prepared(recs, np.concatenate(tokens), offsets, np.stack([a for *_, a in good]).astype(np.float32))
    return data


def val_windows(data: Prepared, tokenizer: MusicTokenizer, seq_len: int,
                per_piece: int = VAL_WINDOWS_PER_PIECE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed validation windows: up to `per_piece` per val piece, starting at evenly spaced bars.

    Why not the datasets' one window per piece: a folder has few val pieces, and a window from the
    first bar only would measure openings. With no val piece (a one-file folder) the train piece is
    used, so the run still has a loss to keep its best weights by.

    Args:
        data: the folder's pieces.
        tokenizer: the run's tokenizer.
        seq_len: window length in tokens.
        per_piece: windows per val piece at most.

    Returns:
        {"user": (ids, mask)}: what `train.evaluate` reads.
    """
    from emomusic.training.windows import WindowSampler

    mask = data.mask(split="val")
    sub = data.select(mask if mask.any() else ~mask)
    sampler = WindowSampler(sub, tokenizer, seq_len, augment=False)
    ids, masks = [], []
    for i in range(len(sub.records)):
        n_bars = max(1, len(sampler.bars[i]))
        for b in sorted({int(x) for x in np.linspace(0, n_bars - 1, num=min(per_piece, n_bars))}):
            x, m = sampler.window(i, np.random.default_rng(i), start_bar=b, emotion_prefix=False)
            ids.append(x)
            masks.append(m)
    return {DATASET: (np.stack(ids), np.stack(masks))}


def _state(run: Path) -> dict:
    path = run / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _base_loss(init_from: Path, val: dict, device: str) -> float:
    """The base checkpoint's val loss on the folder's val windows (the "before" figure)."""
    from emomusic.generation.network import Generator, GeneratorConfig
    from emomusic.training.train import evaluate, pick_device

    ck = load_checkpoint(init_from, kind="generator")
    model = Generator(GeneratorConfig.from_dict(ck.config["model"]))
    model.load_state_dict({k: v.float() for k, v in ck.state_dict.items()})
    return evaluate(model.to(pick_device(device)), val)[DATASET]


def finetune_generator(data_dir: str | os.PathLike, init_from: str | os.PathLike, out: str | os.PathLike,
                       cfg: TrainConfig | None = None, resume: bool = False, genre: str = "pop",
                       device: str = "auto", model_cfg: dict | None = None) -> Path:
    """Fine-tune `init_from` on the MIDI files of `data_dir`; write the result to `out`.

    Args:
        data_dir: the folder of MIDI files (read recursively; bad files are skipped and counted).
        init_from: the base generator checkpoint (its tokenizer is kept).
        out: the output folder: a generator checkpoint when done, the run in `out/run/`.
        cfg: training settings (default: `finetune_config(TrainConfig())`).
        resume: continue the run in `out/run/` from its last checkpoint.
        genre: the genre the folder's pieces are conditioned on (and to ask for when generating).
        device: "auto", "cpu" or "cuda[:N]".
        model_cfg: GeneratorConfig overrides (only dropout applies to a fine-tune).

    Returns:
        `out`.

    Raises:
        InvalidInputError: a bad folder, base checkpoint or genre, or an existing run without `resume`.
    """
    from emomusic.generation.checkpoint import generator_sha
    from emomusic.training.train import train_generator

    cfg = cfg or finetune_config(TrainConfig())
    out, init_from = Path(out), Path(init_from)
    run = out / RUN_DIR
    if (run / "last" / "config.json").is_file() and not resume:
        raise InvalidInputError(f"{out}: holds a fine-tuning run already; pass --resume to continue it, "
                                "or choose another --out")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / RUN_DIR).is_dir():
        raise InvalidInputError(f"--out {out}: not empty and not a fine-tuning run; choose a new folder")
    base = load_checkpoint(init_from, kind="generator")
    tk = MusicTokenizer.from_dict(base.tokenizer)
    if genre not in GENRES:
        raise InvalidInputError(f"--genre {genre!r}: choose one of {', '.join(GENRES)}")
    folder = read_folder(data_dir, tk, genre)
    if folder.summary():
        print(folder.summary(), flush=True)
    data = folder.prepared
    n_val = int(data.mask(split="val").sum())
    print(f"fine-tuning {init_from} on {len(data.records)} files of {data_dir} ({len(data.records) - n_val} train, "
          f"{n_val} val)", flush=True)
    val = val_windows(data, tk, cfg.seq_len)
    state = _state(run) if resume else {}
    if "val_loss_before" not in state:
        state = {"base": str(init_from), "base_sha": generator_sha(init_from), "data_dir": str(data_dir),
                 "genre": genre, "val_loss_before": _base_loss(init_from, val, device)}
        run.mkdir(parents=True, exist_ok=True)
        (run / STATE_FILE).write_text(json.dumps(state, indent=1))
    print(f"val loss of {init_from} on the folder: {state['val_loss_before']:.4f}", flush=True)
    train_generator(run, resume=resume, cfg=cfg, model_cfg=model_cfg, data=data, device=device,
                    init_from=init_from, val=val)
    return export(run, out, folder, state, val, device)


def export(run: Path, out: Path, folder: FolderData, state: dict, val: dict, device: str = "auto") -> Path:
    """Write the run's best weights (else its last) to `out` as a generator folder with its model card.

    Why not `save_checkpoint(out)` directly: it replaces a whole folder, and `out` keeps `run/` for a
    later --resume; the checkpoint is written beside it and its three files moved in, config.json last,
    so a reader never sees a config that names weights not there yet.

    Args:
        run: the run folder (`best/`, `last/`, `log.jsonl`).
        out: the output folder.
        folder: the folder's pieces and skipped files.
        state: the run's `finetune.json` (base, val loss before).
        val: the val windows the "before" loss was measured on.
        device: where to measure the "after" loss.

    Returns:
        `out`.
    """
    import torch

    from emomusic.checkpoint import CONFIG_FILE, MODEL_CARD_FILE, WEIGHTS_FILE, update_model_card
    from emomusic.generation.network import Generator, GeneratorConfig
    from emomusic.training.cards import render_card
    from emomusic.training.train import evaluate, pick_device

    src = run / "best" if (run / "best" / "config.json").is_file() else run / "last"
    ck = load_checkpoint(src, kind="generator")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    data = folder.prepared
    n_val = int(data.mask(split="val").sum())
    train_cfg = ck.config.get("train", {})
    metrics = {"step": ck.metrics["step"], "steps_run": log[-1]["step"] if log else ck.metrics["step"],
               "tokens_seen": ck.metrics["tokens_seen"], "val_loss_before": round(state["val_loss_before"], 4),
               "files_found": folder.found, "files_used": len(data.records), "files_val": n_val,
               "files_skipped": {r: folder.skipped[r] for r in REASONS if folder.skipped.get(r)},
               "base": state["base"], "base_sha": state["base_sha"], "data_dir": state["data_dir"],
               "genre": state["genre"]}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        dest = tmp / "generator"
        save_checkpoint(dest, kind="generator", config=ck.config, state_dict=ck.state_dict, tokenizer=ck.tokenizer,
                        metrics=metrics, dtype=torch.float16)
        # "after" is measured on the weights as written (float16, like the base): what --generator loads
        saved = load_checkpoint(dest, kind="generator")
        model = Generator(GeneratorConfig.from_dict(saved.config["model"]))
        model.load_state_dict(saved.state_dict)
        after = evaluate(model.to(pick_device(device)), val)[DATASET]
        metrics["val_loss_after"] = round(after, 4)
        card = render_card("finetune", folder=state["data_dir"], base=state["base"], base_sha=state["base_sha"],
                           genre=state["genre"], found=folder.found, used=len(data.records), val=n_val,
                           skipped=folder.summary().removeprefix("skipped ") or "none",
                           step=metrics["step"], steps_run=metrics["steps_run"],
                           tokens_k=ck.metrics["tokens_seen"].get("all", 0) / 1e3, lr=train_cfg.get("lr", 0.0),
                           batch_size=train_cfg.get("batch_size", 0), seq_len=train_cfg.get("seq_len", 0),
                           before=state["val_loss_before"], after=after, out=out.name,
                           before_ppl=math.exp(state["val_loss_before"]), after_ppl=math.exp(after))
        update_model_card(dest, card, metrics={"val_loss_after": metrics["val_loss_after"]})
        out.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_FILE, MODEL_CARD_FILE, CONFIG_FILE):
            os.replace(dest / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"val loss on the folder: {state['val_loss_before']:.4f} before, {after:.4f} after "
          f"(step {metrics['step']}); wrote {out}", flush=True)
    return out
