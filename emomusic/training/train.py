"""Generator training: resumable, DDP-ready (torchrun, gloo on CPU), logged per dataset.

    emomusic train generator --out runs/generator [--resume]
    torchrun --nproc_per_node 2 -m emomusic.cli train generator --out runs/generator
    emomusic train generator --preset gpu --device cuda --workers 8 --max-minutes 4 --fit-steps \
        --tokenizer-from checkpoints/generator --out runs/gpu

Each rank draws its own windows (seeded by rank); gradients are averaged by DDP. Rank 0 writes
`last/` (weights + optimiser state, for --resume), `best/` (weights with the lowest mean val loss so
far) and `log.jsonl` with train/val loss per dataset. On a GPU the step runs in bfloat16 autocast and
windows can be drawn by worker processes, so the accelerator is not left waiting on the data.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.errors import InvalidInputError
from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.io import atomic_write
from emomusic.music.attributes import compute_controls
from emomusic.music.tokenizer import CTL, EMOTION, GENRE, ControlBins, MusicTokenizer
from emomusic.training.datasets import Prepared, available_datasets, load_prepared
from emomusic.training.windows import WindowSampler

GENERATOR_DATASETS = ("emopia", "vgmidi", "vgmidi_v1", "vgmidi_unl", "pop909", "asap", "nottingham", "music21")


PRESETS = {
    "small": {},  # the shipped model: TrainConfig and GeneratorConfig defaults
    "tiny": {"train": {"batch_size": 4, "seq_len": 128, "eval_every": 2, "save_every": 2, "val_windows": 4,
                       "warmup": 2},
             "model": {"dim": 32, "depth": 2, "heads": 2}},  # smoke tests and CI
    # the shipped architecture with a GPU's batch: 4x the windows per step, dropout for the many epochs
    # a GPU run goes through (a short GPU run draws EMOPIA's 0.9 M tokens many times: docs/BENCHMARKS.md)
    "gpu": {"train": {"batch_size": 64, "val_windows": 64, "eval_every": 500, "save_every": 500, "warmup": 300},
            "model": {"dropout": 0.1}},
    # prefix vs. summed-embedding conditioning, two small models trained alike (docs/BENCHMARKS.md)
    "compare": {"train": {"steps": 600, "seq_len": 256, "eval_every": 100, "save_every": 50, "warmup": 50},
                "model": {"dim": 192, "depth": 4, "heads": 4}},
}


@dataclass
class TrainConfig:
    """Optimisation settings (saved next to the weights)."""

    steps: int = 1600
    batch_size: int = 16
    seq_len: int = 512
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    eval_every: int = 100
    save_every: int = 25
    val_windows: int = 24
    seed: int = 0
    max_minutes: float | None = None  # stop cleanly (and save) after this much wall time
    # with max_minutes: after FIT_AFTER steps, set `steps` so the cosine schedule ends on time (measured speed)
    fit_steps: bool = False


# the schedule is fitted to the time left from the speed of steps FIT_FROM..FIT_AFTER (the first ones warm up
# kernels and data workers, and would make the run end early)
FIT_FROM, FIT_AFTER = 20, 70


def pick_device(name: str = "auto") -> torch.device:
    """"auto" = CUDA when present, else CPU; a named device that is missing is a clear error.

    Args:
        name: "auto", "cpu", "cuda" or "cuda:N".

    Returns:
        The torch device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"--device {name}: no CUDA device here; use --device cpu (or auto)")
    return torch.device(name)


class _WindowStream(torch.utils.data.IterableDataset):
    """Endless batches from a `WindowSampler`, one numpy stream per (seed, rank, step, worker)."""

    def __init__(self, sampler: WindowSampler, batch_size: int, seed: list[int]) -> None:
        self.sampler, self.batch_size, self.seed = sampler, batch_size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([*self.seed, info.id if info else 0])
        while True:
            yield self.sampler.batch(self.batch_size, rng)


def window_batches(sampler: WindowSampler, batch_size: int, seed: list[int], workers: int = 0):
    """Iterator of (ids, mask, dataset names) batches; workers > 0 draws them in worker processes.

    With no workers the batches come from one stream in this process (the CPU default: the
    cores are busy with the model); a GPU waits on the data unless several processes draw windows.

    Args:
        sampler: the training windows.
        batch_size: windows per batch.
        seed: the random stream's seed entropy (run seed, rank, step: each rank and resume differs).
        workers: worker processes drawing windows (0: in this process).

    Returns:
        An endless iterator of (ids, mask, dataset names).
    """
    if workers <= 0:
        rng = np.random.default_rng(seed)
        while True:
            yield sampler.batch(batch_size, rng)
    loader = torch.utils.data.DataLoader(_WindowStream(sampler, batch_size, seed), batch_size=None,
                                         num_workers=workers, prefetch_factor=4, persistent_workers=True)
    for ids, mask, names in loader:
        yield np.asarray(ids), np.asarray(mask), list(names)


def _dist() -> tuple[int, int]:
    """(rank, world size), starting the gloo process group under torchrun."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def fit_control_bins(data: Prepared, seq_len: int, n: int = 4000, seed: int = 0) -> ControlBins:
    """Quantile bins of control attributes over random training windows (what the model sees).

    Args:
        data: the prepared training data.
        seq_len: window length in tokens.
        n: windows sampled.
        seed: the sampling seed.

    Returns:
        The control bins the tokenizer's attribute tokens use.
    """
    tk = MusicTokenizer()
    rng = np.random.default_rng(seed)
    rows = []
    idx = rng.choice(len(data.records), size=n, p=np.diff(data.offsets) / data.offsets[-1])
    for i in idx:
        piece = data.piece(int(i)).astype(np.int64)
        start = int(rng.integers(max(1, len(piece) - seq_len)))
        bars = np.flatnonzero(piece == tk.bar_id)
        if len(bars):
            start = int(bars[np.searchsorted(bars, start).clip(0, len(bars) - 1)])
        notes = tk.decode(piece[start:start + seq_len])
        if len(notes):
            rows.append(compute_controls(notes))
    return ControlBins.fit(rows)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 10%.

    Args:
        step: the optimiser step (from 1).
        cfg: the run's schedule (lr, warmup, steps).

    Returns:
        The learning rate.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def masked_loss(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor,
                per_sample: bool = False) -> torch.Tensor:
    """Next-token cross-entropy on positions whose target is music (mask of targets).

    per_sample=True gives each window's mean loss (for per-dataset logging).

    Args:
        model: the generator network.
        ids: (B, T) token ids.
        mask: (B, T) True where the target is music.
        per_sample: return one loss per window instead of the mean.

    Returns:
        A scalar loss, or (B,) losses.
    """
    logits = model(ids[:, :-1])
    target = ids[:, 1:]
    loss = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    m = mask[:, 1:].float()
    if per_sample:
        return (loss * m).sum(1) / m.sum(1).clamp(min=1)
    return (loss * m).sum() / m.sum().clamp(min=1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: dict[str, tuple[np.ndarray, np.ndarray]], batch: int = 8) -> dict:
    """Mean val loss per dataset over fixed windows (on the model's device, in float32).

    Args:
        model: the generator network.
        val: dataset → (ids, mask) fixed validation windows.
        batch: windows per forward pass.

    Returns:
        dataset → mean loss.
    """
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for name, (ids, mask) in val.items():
        losses, weights = [], []
        for i in range(0, len(ids), batch):
            x, m = torch.from_numpy(ids[i:i + batch]).to(device), torch.from_numpy(mask[i:i + batch]).to(device)
            losses.append(float(masked_loss(model, x, m)))
            weights.append(float(m[:, 1:].sum()))
        out[name] = float(np.average(losses, weights=weights))
    model.train()
    return out


def _save_state(out: Path, model: Generator, opt: torch.optim.Optimizer, step: int, tokens: dict,
                tk: MusicTokenizer, cfg: TrainConfig, metrics: dict) -> None:
    """Weights + tokenizer (one checkpoint) and the optimiser moments (for --resume), atomically."""
    opt_tensors = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v):
                    opt_tensors[f"{names[id(p)]}::{k}"] = v.detach().cpu().reshape(v.shape or (1,))
    _save_weights(out / "last", model, step, tokens, tk, cfg, metrics,
                  extra_files={"optimizer.json": json.dumps({"step": step, "tokens": tokens}).encode()})
    from safetensors.torch import save_file

    atomic_write(out / "optimizer.safetensors",
                 lambda tmp: save_file({k: v.contiguous() for k, v in opt_tensors.items()}, str(tmp)), force=True)


def _save_weights(dest: Path, model: Generator, step: int, tokens: dict, tk: MusicTokenizer, cfg: TrainConfig,
                  metrics: dict, extra_files: dict[str, bytes] | None = None) -> None:
    """One generator checkpoint (weights on the CPU, tokenizer, configs, metrics): `last/` and `best/`."""
    save_checkpoint(dest, kind="generator", config={"model": model.config.to_dict(), "train": asdict(cfg)},
                    state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
                    tokenizer=tk.to_dict(), metrics={"step": step, "tokens_seen": dict(tokens), **metrics},
                    extra_files=extra_files)


def _mean_val(metrics: dict) -> float:
    """The mean of a checkpoint's per-dataset val losses (what `best/` is chosen by); inf if none."""
    val = metrics.get("val_loss") or {}
    return float(np.mean(list(val.values()))) if val else math.inf


def _from_rank0(value: float) -> float:
    """Rank 0's value on every rank: decisions that end the loop (time, fitted steps) must agree, or a
    rank that stops early leaves the others waiting in DDP's all-reduce."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.broadcast(t, src=0)
    return float(t.item())


def _restore_optimizer(out: Path, model: Generator, opt: torch.optim.Optimizer) -> None:
    from safetensors.torch import load_file

    path = out / "optimizer.safetensors"
    if not path.exists():
        return
    saved = load_file(str(path))
    for n, p in model.named_parameters():
        st = {k.split("::", 1)[1]: v for k, v in saved.items() if k.split("::", 1)[0] == n}
        if st:
            st["step"] = st["step"].reshape(())
            opt.state[p] = {k: v if k == "step" else v.to(p.device) for k, v in st.items()}


def train_generator(out: str | Path, resume: bool = False, cfg: TrainConfig | None = None,
                    model_cfg: dict | None = None, data: Prepared | None = None, device: str = "auto",
                    workers: int = 0, tokenizer_from: str | Path | None = None,
                    init_from: str | Path | None = None,
                    val: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Train (or resume) the generator; returns the run folder.

    `device` "auto" takes CUDA when present (bfloat16 autocast there); `workers` > 0 draws the
    training windows in that many worker processes. `tokenizer_from` (a generator checkpoint) reuses
    its tokenizer, control bins included, instead of fitting new bins: runs stay comparable, and the
    new weights read conditions exactly as the model they may replace.

    Args:
        out: the run folder (last/, best/, log.jsonl).
        resume: continue from out/last.
        cfg: training settings (default TrainConfig()).
        model_cfg: GeneratorConfig overrides.
        data: prepared data (default: every prepared cache).
        device: "auto", "cpu" or "cuda[:N]".
        workers: processes drawing windows.
        tokenizer_from: a generator checkpoint whose tokenizer (and control bins) to reuse.
        init_from: fine-tune: a generator checkpoint whose weights, architecture and tokenizer the run
            starts from (step 0, a fresh optimiser and schedule; `model_cfg` may change only dropout).
        val: dataset → (ids, mask) fixed validation windows (default: `cfg.val_windows` per dataset from
            the val split; a fine-tune on a small folder passes more windows per piece).

    Returns:
        The run folder.
    """
    cfg = cfg or TrainConfig()
    out = Path(out)
    rank, world = _dist()
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)
    if world > 1 and dev.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    data = data or load_prepared(available_datasets(GENERATOR_DATASETS))
    train_data = data.select(data.mask(split="train"))
    val_data = data.select(data.mask(split="val"))
    step, tokens, best = 0, {}, math.inf
    if resume and (out / "last" / "config.json").exists():
        ck = load_checkpoint(out / "last", kind="generator")
        tk = MusicTokenizer.from_dict(ck.tokenizer)
        model = Generator(GeneratorConfig.from_dict(ck.config["model"]))
        model.load_state_dict(ck.state_dict)
        step, tokens = ck.metrics["step"], ck.metrics["tokens_seen"]
        if (out / "best" / "config.json").exists():  # a resumed run keeps the best it already has
            best = _mean_val(load_checkpoint(out / "best", kind="generator").metrics)
    elif init_from:
        ck = load_checkpoint(init_from, kind="generator")
        tk = MusicTokenizer.from_dict(ck.tokenizer)
        arch = GeneratorConfig.from_dict(ck.config["model"])
        if arch.max_seq_len < cfg.seq_len:
            raise InvalidInputError(f"{init_from}: trained for {arch.max_seq_len}-token windows, the preset "
                                    f"draws {cfg.seq_len}; pick a preset with windows no longer")
        # the preset decides dropout (off on a CPU: docs/BENCHMARKS.md), the checkpoint everything else
        default_dropout = next(f.default for f in fields(GeneratorConfig) if f.name == "dropout")
        arch = replace(arch, dropout=(model_cfg or {}).get("dropout", default_dropout))
        model = Generator(arch)
        model.load_state_dict({k: v.float() for k, v in ck.state_dict.items()})
    else:
        tk = (MusicTokenizer.from_dict(load_checkpoint(tokenizer_from, kind="generator").tokenizer) if tokenizer_from
              else MusicTokenizer(fit_control_bins(train_data, cfg.seq_len, seed=cfg.seed)))
        model_cfg = dict(model_cfg or {})
        if model_cfg.get("conditioning") == "sum":
            cond = np.flatnonzero(np.isin(tk.types, (GENRE, EMOTION, CTL)))
            model_cfg["cond_token_ids"] = tuple(int(i) for i in cond)
            model_cfg["bos_id"] = tk.bos_id
        model = Generator(GeneratorConfig(vocab_size=len(tk), max_seq_len=cfg.seq_len, **model_cfg))
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    if resume:
        _restore_optimizer(out, model, opt)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    sampler = WindowSampler(train_data, tk, cfg.seq_len)
    if val is None:
        val_sampler = WindowSampler(val_data, tk, cfg.seq_len, augment=False)
        val = {d: val_sampler.fixed_batches(d, cfg.val_windows) for d in val_sampler.datasets}
    batches = window_batches(sampler, cfg.batch_size, [cfg.seed, rank, step], workers)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"generator: {model.num_parameters() / 1e6:.2f}M parameters, vocab {len(tk)}, "
              f"{len(train_data.records)} train pieces, world size {world}, device {dev}", flush=True)
    logf = (out / "log.jsonl").open("a") if rank == 0 else None
    t0 = time.time()
    bar = tqdm(total=cfg.steps, initial=step, desc="train generator", disable=rank != 0)
    metrics: dict = {}
    session_tokens, session_steps, t_fit = 0, 0, time.time()
    train_sum: dict[str, float] = {}
    train_n: dict[str, int] = {}
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        ids, mask, names = next(batches)
        m = torch.from_numpy(mask).to(dev, non_blocking=True)
        with autocast:
            sample_loss = masked_loss(ddp, torch.from_numpy(ids).to(dev, non_blocking=True), m, per_sample=True)
        weight = m[:, 1:].sum(1).float()
        loss = (sample_loss.float() * weight).sum() / weight.sum().clamp(min=1)
        for name, sl in zip(names, sample_loss.tolist(), strict=True):
            train_sum[name] = train_sum.get(name, 0.0) + sl
            train_n[name] = train_n.get(name, 0) + 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        session_steps += 1
        n_tok = int(mask.sum()) * world
        tokens["all"] = tokens.get("all", 0) + n_tok
        session_tokens += n_tok
        for name in names:
            tokens[name] = tokens.get(name, 0) + n_tok // len(names)
        if session_steps == FIT_FROM:
            t_fit = time.time()
        if cfg.fit_steps and cfg.max_minutes and session_steps == FIT_AFTER:
            rate = (FIT_AFTER - FIT_FROM) / max(1e-6, time.time() - t_fit)
            cfg.steps = int(_from_rank0(_fit_steps(step, time.time() - t0, rate, cfg)))
            bar.total = cfg.steps
            if rank == 0:
                tqdm.write(f"schedule fitted to {cfg.max_minutes} min: {cfg.steps} steps")
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{session_tokens / max(1e-9, time.time() - t0):.0f}")
        timed_out = cfg.max_minutes is not None and bool(_from_rank0(time.time() - t0 > cfg.max_minutes * 60))
        done = step >= cfg.steps or timed_out
        if rank == 0:
            rec = {"step": step, "loss": round(loss.item(), 4), "lr": lr_at(step, cfg),
                   "tokens_per_s": round(session_tokens / max(1e-9, time.time() - t0), 1)}
            if step % cfg.eval_every == 0 or done:
                metrics = {"val_loss": evaluate(model, val),
                           "train_loss": {k: round(train_sum[k] / train_n[k], 4) for k in train_sum}}
                train_sum, train_n = {}, {}
                metrics["val_ppl"] = {k: round(math.exp(v), 3) for k, v in metrics["val_loss"].items()}
                rec.update(metrics)
                tqdm.write(json.dumps(rec))
                if _mean_val(metrics) < best:  # weights only: for when a long run overfits
                    best = _mean_val(metrics)
                    _save_weights(out / "best", model, step, tokens, tk, cfg, metrics)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            if step % cfg.save_every == 0 or done:
                _save_state(out, model, opt, step, tokens, tk, cfg, metrics)
        if timed_out:
            break
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out


def _fit_steps(step: int, elapsed: float, rate: float, cfg: TrainConfig) -> int:
    """The step count at which a run going on at `rate` steps/s uses its time budget.

    Evaluation and saving take time too: the budget keeps a 5% margin for them.
    """
    left = cfg.max_minutes * 60 * 0.95 - elapsed
    return max(step + 1, step + int(left * rate))
