"""Generator training on a tiny prepared corpus built in code: steps, resume, DDP with torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from emomusic.checkpoint import load_checkpoint
from emomusic.music.attributes import compute_attributes
from emomusic.music.notes import Notes
from emomusic.music.tokenizer import MusicTokenizer
from emomusic.training.datasets import PREPARED_DIR, Record, load_prepared, write_prepared


def _piece(rng: np.random.Generator, bars: int = 6) -> Notes:
    """A random diatonic piece on the 1/8-beat grid: melody over held chords."""
    scale = np.array([0, 2, 4, 5, 7, 9, 11]) + 60
    starts = np.arange(0, bars * 4, 0.5)
    mel = rng.choice(scale, size=len(starts)) + 12
    chords = np.repeat(np.arange(0, bars * 4, 4.0), 3)
    chord_p = np.tile([48, 52, 55], bars)
    return Notes.from_arrays(np.concatenate([mel, chord_p]), np.concatenate([starts, chords]),
                             np.concatenate([np.full(len(starts), 0.5), np.full(len(chords), 4.0)]),
                             rng.integers(40, 100, len(starts) + len(chords)), tempo=float(rng.integers(60, 150)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """EMOMUSIC_CACHE with two tiny prepared datasets (one labelled)."""
    root = tmp_path_factory.mktemp("cache")
    (root / PREPARED_DIR).mkdir()
    tk = MusicTokenizer()
    rng = np.random.default_rng(0)
    for name, labelled in (("emopia", True), ("pop909", False)):
        recs, toks, attrs = [], [], []
        for i in range(10):
            n = _piece(rng)
            q = ("Q1", "Q2", "Q3", "Q4")[i % 4] if labelled else None
            recs.append(Record(f"{name}/{i}", name, "", "pop", "val" if i >= 8 else "train", f"{name}/{i}", q))
            toks.append(tk.encode(n))
            attrs.append(compute_attributes(n))
        write_prepared(root / PREPARED_DIR / f"{name}.npz", recs, toks, attrs)
    return root


def test_prepared_cache_round_trip(cache):
    data = load_prepared(("emopia", "pop909"), cache / PREPARED_DIR)
    assert len(data.records) == 20
    assert data.offsets[-1] == len(data.tokens)
    tk = MusicTokenizer()
    assert len(tk.decode(data.piece(3).astype(np.int64))) > 0


def _run_cli(args: list[str], cache, nproc: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMOMUSIC_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    if nproc:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_port", "29517", "-m", "emomusic.cli", *args]
    else:
        cmd = [sys.executable, "-m", "emomusic.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_resume_and_checkpoint(cache, tmp_path):
    out = tmp_path / "run"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "2", "--out", str(out)], cache)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = load_checkpoint(out / "last", kind="generator")
    assert ck.metrics["step"] == 2
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "4", "--out", str(out), "--resume"], cache)
    assert r.returncode == 0, r.stderr[-2000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2, 3, 4]  # resumed at step 3, not from scratch
    evals = [x for x in log if "val_loss" in x]
    assert set(evals[-1]["val_loss"]) == {"emopia", "pop909"}  # val loss per dataset
    assert load_checkpoint(out / "last", kind="generator").metrics["tokens_seen"]["all"] > 0


@pytest.mark.slow
def test_ddp_two_processes(cache, tmp_path):
    out = tmp_path / "ddp"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "2", "--out", str(out)], cache, nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "world size 2" in r.stdout
    ck = load_checkpoint(out / "last", kind="generator")
    assert ck.metrics["step"] == 2


@pytest.mark.slow
def test_ddp_ranks_agree_on_the_fitted_schedule_and_the_time_limit(cache, tmp_path):
    """Each rank times its own steps; rank 0's fitted step count and stop decision are used by all, or
    the rank that stops first leaves the other blocked in DDP (the test would time out)."""
    out = tmp_path / "ddp-fit"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "100000", "--fit-steps", "--max-minutes",
                  "0.25", "--out", str(out)], cache, nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "schedule fitted to 0.25 min" in r.stdout + r.stderr
    assert 70 < load_checkpoint(out / "last", kind="generator").metrics["step"] < 100000


@pytest.mark.slow
def test_summed_embedding_conditioning_trains_resumes_and_samples(cache, tmp_path):
    """EmoGen's alternative (`--conditioning sum`): trains, resumes, and its checkpoint samples through
    the fast decoder (the comparison with the prefix lives in benchmarks/conditioning.py)."""
    from emomusic.generation.fast import DecoderWeights
    from emomusic.generation.network import load_generator_checkpoint
    from emomusic.generation.sampling import sample

    out = tmp_path / "sum"
    args = ["train", "generator", "--preset", "tiny", "--conditioning", "sum", "--out", str(out)]
    for steps, extra in (("2", []), ("3", ["--resume"])):
        r = _run_cli([*args, "--steps", steps, *extra], cache)
        assert r.returncode == 0, r.stderr[-2000:]
    ck, tk = load_generator_checkpoint(out / "last")
    assert ck.config.conditioning == "sum" and ck.config.cond_token_ids
    prefix = tk.condition_ids("pop", controls={k: 0 for k in tk.control_bins.edges})
    w = DecoderWeights.from_checkpoint(ck)
    fast = sample(w, tk, [prefix], n_bars=1, seed=3, max_tokens=40)
    ref = sample(ck.module(), tk, [prefix], n_bars=1, seed=3, max_tokens=40, decoder="reference")
    np.testing.assert_array_equal(fast[0], ref[0])


@pytest.mark.slow
def test_worker_windows_reused_tokenizer_and_best_checkpoint(cache, tmp_path):
    """The GPU path's pieces, on CPU: windows drawn by a worker process, the tokenizer taken from
    another run (its control bins, not refitted), and `best/` kept by mean val loss."""
    first = tmp_path / "first"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "2", "--out", str(first)], cache)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "workers"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "4", "--out", str(out), "--device", "cpu",
                  "--workers", "1", "--tokenizer-from", str(first / "last")], cache)
    assert r.returncode == 0, r.stderr[-2000:]
    last = load_checkpoint(out / "last", kind="generator")
    assert last.metrics["step"] == 4
    assert last.tokenizer == load_checkpoint(first / "last", kind="generator").tokenizer
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evals = [x for x in log if "val_loss" in x]
    best = load_checkpoint(out / "best", kind="generator")
    means = [np.mean(list(x["val_loss"].values())) for x in evals]
    assert best.metrics["step"] == evals[int(np.argmin(means))]["step"]


def test_bad_training_options_are_one_line_errors(cache, tmp_path):
    r = _run_cli(["train", "generator", "--preset", "tiny", "--fit-steps", "--out", str(tmp_path / "x")], cache)
    assert r.returncode != 0 and "--fit-steps needs --max-minutes" in r.stderr
    assert "Traceback" not in r.stderr
    import torch

    if not torch.cuda.is_available():
        r = _run_cli(["train", "generator", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "y")],
                     cache)
        assert r.returncode != 0 and "no CUDA device" in r.stderr and "Traceback" not in r.stderr
    r = _run_cli(["train", "recognizer", "--folds", "1", "--out", str(tmp_path / "z")], cache)
    assert r.returncode == 2 and "cross-validation needs at least 2 folds" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "z").exists()


def test_fitted_schedule_uses_the_time_left():
    from emomusic.training.train import TrainConfig, _fit_steps

    cfg = TrainConfig(max_minutes=1.0, fit_steps=True)
    # at step 70 after 6 s, going at 10 steps/s: 57 - 6 = 51 s left (5% kept for evaluation) -> 510 more
    assert _fit_steps(70, 6.0, 10.0, cfg) == 70 + 510
    assert _fit_steps(70, 120.0, 10.0, cfg) == 71  # already over time: stop at the next step


def test_fine_tune_starts_from_a_checkpoints_weights(cache, tmp_path):
    """`--from`: the run's first weights are the checkpoint's, its tokenizer is kept, and training moves them."""
    first = tmp_path / "first"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "2", "--out", str(first)], cache)
    assert r.returncode == 0, r.stderr[-2000:]
    tuned = tmp_path / "tuned"
    r = _run_cli(["train", "generator", "--preset", "tiny", "--steps", "2", "--lr", "1e-4", "--out", str(tuned),
                  "--from", str(first / "last")], cache)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = load_checkpoint(first / "last", kind="generator"), load_checkpoint(tuned / "last", kind="generator")
    assert b.tokenizer == a.tokenizer and b.config["model"] == a.config["model"] and b.metrics["step"] == 2
    diffs = [float((a.state_dict[k].float() - b.state_dict[k].float()).abs().max()) for k in a.state_dict]
    assert 0 < max(diffs) < 0.05  # moved from the checkpoint's weights by a few small steps, not re-initialised
    r = _run_cli(["train", "generator", "--preset", "tiny", "--resume", "--from", str(first / "last"),
                  "--out", str(tuned)], cache)
    assert r.returncode == 2 and "--from starts a new run" in r.stderr and "Traceback" not in r.stderr
