"""Autoregressive sampling: a loop of engine step -> logits processors -> draw, over a batch of rows.

The engine (`generation.engines`) computes the next-token logits; the processors
(`generation.processors`, built from each row's `Guidance`) bias, steer and mask them, the REMI
grammar last, so every sampled sequence decodes to valid bars; `TopKTopP` draws one token per row.
Rows may be split over forked worker processes (`sampling_workers`) without changing a token.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import threading

import numpy as np

from emomusic import settings
from emomusic.generation.engines import Engine, resolve_engine, select_engine
from emomusic.generation.guidance import Guidance
from emomusic.generation.processors import TOP_P, RemiState, RemiTables, TopKTopP, build_processors, grammar_table
from emomusic.music.tokenizer import BOS, MusicTokenizer

__all__ = ["TOP_P", "Guidance", "grammar_table", "sample", "sampling_workers"]


def _one_blas_thread():
    """Sampling runs on one BLAS thread.

    A step is products of a handful of rows with small matrices, too small to split: a second OpenBLAS
    thread changed batch 1 and batch 8 by less than run-to-run noise. When another process was busy,
    two spinning OpenBLAS workers made a batch-8 generation many times slower, and two evaluations at
    once too; single-threaded calls cannot fight that way.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _step_live(dec: Engine, last: np.ndarray, done: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Next logits of the rows still computed, and those rows: finished sequences are dropped first.

    A finished sequence can only emit EOS (the grammar mask), so its logits are never looked at;
    dropping it from the engine saves its share of every later step. The sampler still draws for
    every row, so the random stream, and therefore every live sequence's tokens, stay the same.
    """
    live = np.flatnonzero(~done)
    if len(live) == 0:
        live = rows[:1]  # everything finished this step: keep one row so the call stays valid
    if len(live) < len(rows):
        dec.keep(np.searchsorted(rows, live))
        rows = live
    return dec.step(last[rows]), rows


def sample(
    model, tk: MusicTokenizer, prefixes: list[list[int]], n_bars: int = 16, temperature: float = 1.0,
    top_p: float = TOP_P, top_k: int = 0, guidance: Guidance | list[Guidance] | None = None, seed: int = 0,
    max_tokens: int | None = None, decoder: str = "fast", workers: int | None = None,
) -> list[np.ndarray]:
    """Sample one piece per prefix, all in one batch; returns the music tokens of each.

    Prefixes must have equal length (conditions are fixed-length). The same seed gives the same
    tokens (one numpy PCG64 stream, one uniform per row per step). Stops when every sequence has
    written `n_bars` bars (or `max_tokens`); bars already in the prefix (a primer melody after the
    conditions) count towards `n_bars`.

    Args:
        model: a `Generator`, a `GeneratorCheckpoint`, or the fast engine's `fast.DecoderWeights`
            (sampling then never builds the x-transformers network).
        tk: the tokenizer.
        prefixes: one prefix (conditions, maybe a primer) per row, all the same length.
        n_bars: bars per piece.
        temperature: logits are divided by it before the processors run.
        top_p, top_k: the draw's nucleus and top-k (`TopKTopP`).
        guidance: one `Guidance` for every row, one per row, or None (no limits or biases).
        seed: the random stream's seed.
        max_tokens: tokens per row at most (default 200 a bar).
        decoder: the engine asked for, "fast" or "reference" (`engines.select_engine`: the fast engine
            falls back to the reference one, with a notice, for a configuration it does not support;
            both give the same logits).
        workers: processes the batch's rows are split over (see `sampling_workers`; None = one per
            available core, at most one per row). Rows are independent and every group draws the whole
            batch's uniforms, so the tokens do not depend on it.

    Returns:
        Each row's tokens after its prefix, up to (not including) EOS.
    """
    if len({len(p) for p in prefixes}) != 1:
        raise ValueError("all prefixes in a batch must have the same length")
    batch = len(prefixes)
    guides = guidance if isinstance(guidance, list) else [guidance or Guidance(time_signature=None)] * batch
    ids = np.asarray(prefixes, dtype=np.int64)
    tables = RemiTables.of(tk)
    with _one_blas_thread():
        # every group is set up (engine, processors, prefill) here, before any fork: torch's OpenMP pool
        # (where a caller's network brings torch in) does not survive a fork, and a child that enters it
        # hangs; the loops are numpy and numba
        engine = resolve_engine(model, decoder)
        groups = np.array_split(np.arange(batch), sampling_workers(batch, workers, engine))
        runs = [_Rows(model, tk, tables, ids[g], [guides[i] for i in g], n_bars, max_tokens or n_bars * 200, engine)
                for g in groups]
        loops = [functools.partial(r.run, seed, temperature, top_p, top_k, batch, int(g[0]))
                 for r, g in zip(runs, groups, strict=True)]
        parts = _fork_map(loops)
    return [piece for part in parts for piece in part]


def sampling_workers(batch: int, workers: int | None = None, decoder: str = "fast") -> int:
    """How many processes sample a batch: candidates are independent, and the second core is idle.

    One step of a batch costs more than one of a single row but far less than that many (shared weight
    reads), yet a batch of 8 in one process took several times a single piece. Forked children
    share the parent's weights copy-on-write; each runs a contiguous group of rows. Forking only from
    the main thread of a non-daemon process (a child forked from a server's worker thread could inherit
    locks held by other threads), only with the fast decoder (the reference decoder runs torch), and
    only on Linux (macOS's Accelerate BLAS, which numpy may use there, is not safe after a fork).
    `workers` (or `settings.workers()`, $EMOMUSIC_WORKERS) caps the count; 1 never forks.
    """
    if workers is None:
        workers = settings.workers() or _available_cores()
    can_fork = (decoder == "fast" and sys.platform.startswith("linux")
                and threading.current_thread() is threading.main_thread()
                and not multiprocessing.current_process().daemon)
    return max(1, min(int(workers), batch)) if can_fork else 1


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _fork_map(fns: list) -> list:
    """fns[0]() here and each other fn in a forked child, at the same time; their results in order.

    Children are forked, so they see the parent's memory (weights, prepared decoders) without pickling;
    only results come back, through a pipe. A child's exception is raised here as itself (as a
    RuntimeError naming it if it cannot be pickled); a child that dies is a RuntimeError. On any error
    the other children are stopped at once; every child is gone when this returns.
    """
    if len(fns) == 1:
        return [fns[0]()]
    ctx = multiprocessing.get_context("fork")
    children, ok = [], False
    try:
        for fn in fns[1:]:
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(fn, send), daemon=True)
            proc.start()
            send.close()
            children.append((proc, recv))
        results = [fns[0]()]
        for _proc, recv in children:
            try:
                done, value = recv.recv()
            except EOFError:
                raise RuntimeError("a sampling worker process died; retry with EMOMUSIC_WORKERS=1") from None
            if not done:
                raise value
            results.append(value)
        ok = True
        return results
    finally:
        for proc, recv in children:
            if not ok:
                proc.terminate()
            proc.join()
            recv.close()


def _child(fn, conn) -> None:
    try:
        result = (True, fn())
    except BaseException as e:  # noqa: BLE001 - sent to the parent, which raises it
        result = (False, e)
    try:
        conn.send(result)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: send its name and text
        conn.send((False, RuntimeError(f"sampling worker failed: {type(result[1]).__name__}: {result[1]}")))
    conn.close()


class _Rows:
    """One group of a batch's rows, ready to sample: REMI state, processors, a prefilled engine.

    Built where torch may run (the parent); `run` is numpy and compiled kernels only (compiled or loaded from
    numba's cache at import, before any fork) with the fast engine, so it may run in a forked child.
    """

    def __init__(self, model, tk: MusicTokenizer, tables: RemiTables, ids: np.ndarray, guides: list[Guidance],
                 n_bars: int, max_tokens: int, engine: str) -> None:
        self.tk, self.tables, self.n_bars, self.max_tokens = tk, tables, n_bars, max_tokens
        self.rows = len(guides)
        self.state = RemiState.start(self.rows, BOS)
        for column in ids.T:  # a prefix may end in music (a primer melody): count its bars, notes, tempo
            self.state.update(tables, column)
        self.processors = build_processors(tk, tables, guides, n_bars)
        self.engine = select_engine(model, self.rows, ids.shape[1] + max_tokens, prefer=engine)
        self.first = self.engine.prefill(ids)

    def run(self, seed: int, temperature: float, top_p: float, top_k: int, batch: int, lo: int) -> list[np.ndarray]:
        """Sample these rows; rows lo.. of a batch of `batch` (each step draws the whole batch's uniforms)."""
        tk, state, engine, n = self.tk, self.state, self.engine, self.rows
        draw = TopKTopP(top_p, top_k)
        rng = np.random.default_rng(int(seed))
        logits, rows = self.first, np.arange(n)  # rows the engine still computes
        x = np.zeros((n, len(tk)), dtype=np.float32)  # this step's logits, every row (reused)
        inv_t = 1.0 / max(temperature, 1e-5)
        generated = []
        for step in range(self.max_tokens):
            if step:
                logits, rows = _step_live(engine, generated[-1], state.done, rows)
            if len(rows) == n:
                np.multiply(logits, inv_t, out=x)
            else:  # finished rows get zeros: the grammar allows them only EOS
                x.fill(0.0)
                x[rows] = logits * inv_t
            for processor in self.processors:
                processor(state, x)
            nxt = draw(x, rng.random(batch)[lo:lo + n])
            # the model closes the last requested bar with a Bar token: that is where the piece ends
            nxt[(nxt == tk.bar_id) & (state.bars >= self.n_bars)] = tk.eos_id
            state.update(self.tables, nxt)
            generated.append(nxt)
            if state.done.all():
                break
        out = []
        for body in np.stack(generated, axis=1):
            end = np.flatnonzero(body == tk.eos_id)
            out.append(body[: end[0]] if len(end) else body)
        return out
