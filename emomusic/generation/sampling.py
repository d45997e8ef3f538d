"""Autoregressive sampling: a loop of engine step -> logits processors -> draw, over a batch of rows.

The engine (`generation.engines`) computes the next-token logits; the processors
(`generation.processors`, built from each row's `Guidance`) bias, steer and mask them, the REMI
grammar last, so every sampled sequence decodes to valid bars; `TopKTopP` draws one token per row.
Rows may be split over forked worker processes (`sampling_workers`) without changing a token.

Past the training length the conditions are restated: the model was trained on windows of
`max_seq_len` tokens that each begin with their condition prefix and then the music from a bar line,
so once a row's context is full, the engine is prefilled again with the prefix followed by the
music from the earliest bar line that leaves `RESTATE_STRIDE` tokens of room. A sliding window
instead lets the prefix slide out of view after one window, and the model runs on without the
attributes it always saw in training (long pieces thinned out and stalled). On real val pieces the
restated context predicts the tokens after the first window better than the sliding window
(`python benchmarks/window_nll.py --restate 256`; docs/BENCHMARKS.md). A row that restates has its
own context length, so such rows run one at a time (their tokens are those of the same batch).

A single row also has a stall guard (`_StallGuard`): bars that stop moving for a whole phrase, for
`STALL_BARS` bars, are sampled again from where the stall began on a fresh random stream
(`python benchmarks/long_pieces.py` measures both).
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np

from emomusic import settings
from emomusic.generation.engines import Engine, resolve_engine, select_engine
from emomusic.generation.guidance import Guidance
from emomusic.generation.processors import (
    TOP_P,
    LogitsProcessor,
    RemiState,
    RemiTables,
    TopKTopP,
    build_processors,
    grammar_table,
)
from emomusic.music.form import STALL_SPAN, stall_flags
from emomusic.music.tokenizer import BOS, CTL, EMOTION, GENRE, PITCH, TEMPO, TIMESIG, MusicTokenizer
from emomusic.numerics import one_blas_thread

__all__ = ["LOOP_CANDIDATES", "RESTATE_STRIDE", "STALL_BARS", "TOP_P", "Guidance", "Part", "grammar_table",
           "log_likelihood", "log_likelihoods", "sample",
           "sample_parts", "sampling_workers"]

# tokens sampled between restatements of the conditions (see above; at most half the window):
# each restatement is one prefill of up to a window, so a smaller stride costs time for context that is
# fresher by a few tokens. 0 turns restating off (the sliding window alone: a benchmark's baseline).
RESTATE_STRIDE = 256
# The stall guard (single rows): when this many finished bars in a row stall (`_StallGuard`), they are
# sampled again from where the stall began (each further retry a phrase earlier) on a fresh random
# stream, at most STALL_RETRIES times a piece.
# 4, not 8: 100 pieces of 64 bars held stalls of up to 7 bars at 8 (real val pieces: median 1, 90th
# percentile 6); at 4, with every bar checked (the last of a call and the prefix's too), up to 5, in 2 of
# 100 pieces, at 3.19 s a piece against 3.11 (docs/BENCHMARKS.md, form). 0 turns it off.
STALL_BARS = 4
STALL_RETRIES = 8
# The same guard re-samples this many finished bars in a row without a note (a silence): real openings
# hardly have one (EMOPIA: 0 of 300 clips with two bars in a row without an onset), and the model, once
# in one, tends to stay (a calm piece, seed 910,012, fell silent for five bars).
SILENT_BARS = 2
# a loop's last bar is sampled this many times; the one leading best into the first bar is kept. 4, not 8:
# on 24 loops (seeds 720,000+) the seam leaped 2.00 semitones and shared 0.50 of its pitch classes with 4,
# 2.67 and 0.40 with 8 (16 did no better than 8 before), and each candidate costs its bar and its scoring
LOOP_CANDIDATES = 4


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
    max_tokens: int | None = None, decoder: str = "fast", workers: int | None = None, count_prefix: bool = True,
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
        count_prefix: whether the feedback's running counts (notes per beat, mean pitch) include the
            prefix's music; False where it was written to other targets (`Part.counts_before`).

    Returns:
        Each row's tokens after its prefix, up to (not including) EOS.
    """
    if len({len(p) for p in prefixes}) != 1:
        raise ValueError("all prefixes in a batch must have the same length")
    batch = len(prefixes)
    guides = guidance if isinstance(guidance, list) else [guidance or Guidance(time_signature=None)] * batch
    ids = np.asarray(prefixes, dtype=np.int64)
    tables = RemiTables.of(tk)
    with one_blas_thread():
        # every group is set up (engine, processors, prefill) here, before any fork: torch's OpenMP pool
        # (where a caller's network brings torch in) does not survive a fork, and a child that enters it
        # hangs; the loops are numpy and numba
        engine = resolve_engine(model, decoder)
        max_tokens = max_tokens or n_bars * 200
        groups = np.array_split(np.arange(batch), sampling_workers(batch, workers, engine))
        # rows that may outgrow the window restate their conditions on their own: one row per engine
        alone = RESTATE_STRIDE > 0 and batch > 1 and ids.shape[1] + max_tokens > _window(model)
        runs = [[_Rows(model, tk, tables, ids[rows], [guides[i] for i in rows], n_bars, max_tokens, engine,
                       count_prefix)
                 for rows in ([[i] for i in g] if alone else [g])] for g in groups]
        loops = [functools.partial(_run_all, group, seed, temperature, top_p, top_k, batch, int(g[0]))
                 for group, g in zip(runs, groups, strict=True)]
        parts = _fork_map(loops)
    return [piece for part in parts for piece in part]


@dataclass(frozen=True)
class Part:
    """One section of a piece sampled part by part (`sample_parts`).

    bars: the section's length. conditions: its condition prefix (BOS, genre, controls; a section may
    be conditioned unlike the others). guidance: its decoding guidance (None: none).
    source, keep: the index of an earlier part whose first `keep` bars this one restates as they were
    before sampling on (a return: the listener hears the opening again, the rest is sampled anew with
    the earlier section in view); `keep` may equal `bars` (an exact repeat). None, 0: new material.
    counts_before: whether the guidance's running counts (density, register) include the music before
    the part: yes where all of it was written to the part's own targets (the piece holds its density over
    a longer horizon); no after music written to others (a trajectory's earlier sections, a form's
    contrasting section), whose notes would pull the part to extremes to make up for them.
    """

    bars: int
    conditions: tuple[int, ...]
    guidance: Guidance | None = None
    source: int | None = None
    keep: int = 0
    counts_before: bool = True


def sample_parts(
    model, tk: MusicTokenizer, parts: list[Part] | list[list[Part]], rows: int = 1, primer: np.ndarray | None = None,
    temperature: float = 1.0, top_p: float = TOP_P, top_k: int = 0, seed: int = 0, decoder: str = "fast",
    workers: int | None = None, loop: bool = False,
) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Sample `rows` pieces section by section: each part continues the music so far under its own
    conditions, and a returning part first restates its source's opening bars.

    Why not one pass: a form needs material to come back, and an autoregressive model only copies
    what it sees. Each part is a `sample` call whose prefix is the part's conditions followed by the
    piece so far (from the earliest bar line that leaves room in the window, as when conditions are
    restated), so the model continues the same music, and a return begins with the very tokens it
    restates. Each row runs on its own seeds (from `seed`, its row and the part), so its music does not
    depend on the batch; rows are split over forked workers like `sample`'s.

    Args:
        model, tk, temperature, top_p, top_k, decoder: as for `sample`.
        parts: the sections in order (the first has no source); a part's bars count the primer's
            (the first) and the restated ones. Or one such list per row (the same sections, each row's
            own guidance: a chord plan of its own).
        rows: pieces to sample.
        primer: music tokens that open every piece (counted in the first part's bars), or None.
        seed: the base seed.
        workers: as for `sample`.
        loop: make the end lead back to the start: the last bar is sampled `LOOP_CANDIDATES` times and
            the one after which the model finds the piece's first bar most likely is kept (the seam is
            a bar transition the model wrote, not a cut).

    Returns:
        Per row: its music tokens after the primer, and each part's (first, end) token index in them
        (the first part's from 0: the primer is not in the tokens).
    """
    per_row = bool(parts) and isinstance(parts[0], list)
    if per_row and len(parts) != rows:
        raise ValueError(f"{len(parts)} lists of parts for {rows} rows")
    if not parts or any(not p or p[0].source is not None for p in (parts if per_row else [parts])):
        raise ValueError("the first part must be new material")
    primer = np.zeros(0, dtype=np.int64) if primer is None else np.asarray(primer, dtype=np.int64)
    engine = resolve_engine(model, decoder)
    groups = np.array_split(np.arange(rows), sampling_workers(rows, workers, engine))
    fns = [functools.partial(_parts_rows, model, tk, parts, primer, [int(r) for r in g], temperature, top_p,
                             top_k, seed, engine, loop) for g in groups]
    with one_blas_thread():
        parts_out = _fork_map(fns)
    return [row for part in parts_out for row in part]


def _parts_rows(model, tk: MusicTokenizer, parts: list[Part] | list[list[Part]], primer: np.ndarray,
                rows: list[int], temperature: float, top_p: float, top_k: int, seed: int,
                engine: str, loop: bool = False) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """`sample_parts` for some rows, one after another (in a forked worker or here)."""
    window = _window(model)
    out = []
    for row in rows:
        music = primer.copy()
        spans: list[tuple[int, int]] = []
        mine: list[Part] = parts[row] if isinstance(parts[0], list) else parts  # type: ignore[assignment]
        for i, part in enumerate(mine):
            closing = loop and i == len(mine) - 1 and part.bars >= 2  # its last bar is chosen for the seam
            seam = part
            if closing:  # a chord plan's last bar is the seam's
                g = part.guidance
                g = dataclasses.replace(g, chords=g.chords[:-1]) if g is not None and g.chords else g
                part = dataclasses.replace(part, bars=part.bars - 1, keep=min(part.keep, part.bars - 1), guidance=g)
            first = len(music) if i else 0  # part one holds the primer: a return restates it too
            have = int((music == tk.bar_id).sum()) if i == 0 else 0  # a primer's bars count in part one
            if part.source is not None and part.keep > 0:
                lo, hi = spans[part.source]
                src = music[lo:hi]
                bar_at = np.flatnonzero(src == tk.bar_id)
                keep = min(part.keep, part.bars, len(bar_at))
                cut = int(bar_at[keep]) if keep < len(bar_at) else len(src)
                music = np.concatenate([music, src[:cut]])
                have = keep
            todo = part.bars - have
            if todo > 0:
                # after restated bars the next bar is opened here, so the restated ones stay as they were
                opened = int(part.source is not None and part.keep > 0)
                music = np.concatenate([music, np.full(opened, tk.bar_id, dtype=np.int64)])
                ctx = _restated(np.asarray(part.conditions, dtype=np.int64), music, window, tk.bar_id)
                n_ctx = int((ctx == tk.bar_id).sum())
                part_seed = int(np.random.SeedSequence([int(seed), row, i]).generate_state(1)[0])
                new = sample(model, tk, [ctx.tolist()], n_bars=n_ctx + todo - opened, temperature=temperature,
                             top_p=top_p, top_k=top_k, guidance=part.guidance, seed=part_seed,
                             max_tokens=todo * 200, decoder=engine, workers=1, count_prefix=part.counts_before)[0]
                # a part that ran out of tokens before its last bar is filled with empty bars, so the
                # sections after it still begin where the plan says
                short = todo - opened - int((new == tk.bar_id).sum())
                music = np.concatenate([music, new, np.full(max(0, short), tk.bar_id, dtype=np.int64)])
            if closing:
                music = _seam_bar(model, tk, seam, music, window, seed, row, i, temperature, top_p, top_k, engine)
            spans.append((first, len(music)))
        out.append((music[len(primer):], [(max(0, a - len(primer)), b - len(primer)) for a, b in spans]))
    return out


def _seam_bar(model, tk: MusicTokenizer, part: Part, music: np.ndarray, window: int, seed: int, row: int, i: int,
              temperature: float, top_p: float, top_k: int, engine: str) -> np.ndarray:
    """`music` with one more bar: of `LOOP_CANDIDATES` sampled, the one after which the piece's first bar
    (its notes, without the opening tempo and metre) is most likely, so a loop's seam is a transition.

    The candidates are one batch from one context, and are scored together from that context
    (`log_likelihoods`): a loop then costs about one more bar's sampling rather than eight.
    """
    bars = np.flatnonzero(music == tk.bar_id)
    opening = music[: bars[1]] if len(bars) > 1 else music
    opening = opening[~np.isin(tk.types[opening], (TIMESIG, TEMPO))]
    # room for a candidate bar and the opening after the context, in the window the model was trained on
    ctx = _restated(np.asarray(part.conditions, dtype=np.int64), music, window - len(opening), tk.bar_id)
    n_ctx = int((ctx == tk.bar_id).sum())
    k_seed = int(np.random.SeedSequence([int(seed), row, i, 1]).generate_state(1)[0])
    cands = sample(model, tk, [ctx.tolist()] * LOOP_CANDIDATES, n_bars=n_ctx + 1, temperature=temperature,
                   top_p=top_p, top_k=top_k, guidance=part.guidance, seed=k_seed, max_tokens=200, decoder=engine,
                   workers=1)
    cands = [c if (c == tk.bar_id).any() else np.concatenate([[tk.bar_id], c]).astype(np.int64) for c in cands]
    lps = log_likelihoods(model, ctx, [np.concatenate([c, opening]) for c in cands], [len(c) for c in cands],
                          engine)
    return np.concatenate([music, cands[int(np.argmax(lps))]])


def log_likelihood(model, ctx: np.ndarray, tokens: np.ndarray, engine: str = "fast") -> float:
    """log p(tokens | ctx) under the model alone (no processors): the sum of each token's log-softmax.

    What an infill's join is chosen by: how readily the model goes on from a candidate into music that
    is already fixed.

    Args:
        model: what `sample` decodes (the fast engine's weights, or the network).
        ctx: the tokens before (condition prefix and music), 1-D.
        tokens: the tokens scored, 1-D.
        engine: "fast" or "reference".

    Returns:
        The summed log-probability (natural log).
    """
    return float(log_likelihoods(model, np.asarray(ctx), [np.asarray(tokens)], [0], engine)[0])


def log_likelihoods(model, ctx: np.ndarray, rows: list[np.ndarray], scored_from: list[int],
                    engine: str = "fast") -> np.ndarray:
    """Per row, log p(row[s:] | ctx + row[:s]) under the model alone, s = its `scored_from`: candidates
    that share a context are stepped as one batch after one prefill of it.

    Args:
        model: what `sample` decodes (the fast engine's weights, or the network).
        ctx: the shared tokens before (condition prefix and music), 1-D.
        rows: each candidate's tokens after `ctx`, 1-D (lengths may differ).
        scored_from: per row, where its scored tokens begin (the ones before are context).
        engine: "fast" or "reference".

    Returns:
        float64 (len(rows),): the summed log-probabilities (natural log).
    """
    n, lengths = len(rows), np.array([len(r) for r in rows])
    width = int(lengths.max()) if n else 0
    padded = np.zeros((n, width), dtype=np.int64)  # past a row's end: any token (causal: nothing leaks back)
    for k, r in enumerate(rows):
        padded[k, : len(r)] = r
    at = np.arange(width)[None, :]
    scored = (at < lengths[:, None]) & (at >= np.asarray(scored_from)[:, None])
    dec = select_engine(model, n, len(ctx) + width + 1, prefer=engine)
    logits = dec.prefill(np.repeat(np.asarray(ctx, dtype=np.int64)[None], n, axis=0))
    total = np.zeros(n)
    cols = np.flatnonzero(scored.any(axis=0))
    end = int(cols[-1]) + 1 if len(cols) else 0  # nothing is stepped past the last scored token
    for j in range(end):
        live = np.flatnonzero(scored[:, j])
        if len(live):
            sub = logits[live].astype(np.float64)
            peak = sub.max(axis=1, keepdims=True)
            lse = peak[:, 0] + np.log(np.exp(sub - peak).sum(axis=1))
            total[live] += sub[np.arange(len(live)), padded[live, j]] - lse
        if j + 1 < end:
            logits = dec.step(padded[:, j])
    return total


class _StallGuard:
    """Watches one row bar by bar for a stall (`music.form.stall_flags`: a phrase on a triad or less),
    `STALL_BARS` bars of it in a row, or a silence (`SILENT_BARS` bars without a note).

    Why re-sample rather than penalise repetition: real music repeats (a returning bar is form), so a
    repetition penalty would forbid what it should keep; a stall is only undone where it happened.
    `evaluation.musicality.longest_stall` measures the same thing in written files.
    """

    def __init__(self, tk: MusicTokenizer, prefix_music: np.ndarray | None = None,
                 state: RemiState | None = None) -> None:
        """prefix_music: the music the prefix already holds (a primer, or the piece so far when sampling by
        parts): its finished bars count towards a stall but are never sampled again. `state`: the row's
        state after the prefix, kept for a bar the prefix opened (ends with its Bar token)."""
        self.is_pitch = tk.types == PITCH
        self.pitch_class = np.where(self.is_pitch, tk.values.astype(np.int64) % 12, -1)
        self.starts: list[tuple[int, RemiState] | None] = []  # each bar's first token and the state before it
        self.classes: list[frozenset] = []  # each finished bar's pitch classes
        self.retries = 0
        music = np.zeros(0, np.int64) if prefix_music is None else np.asarray(prefix_music, dtype=np.int64)
        bars = np.flatnonzero(music == tk.bar_id)
        opened = len(bars) > 0 and bars[-1] == len(music) - 1  # the prefix ends by opening a bar
        edges = [*bars, len(music)] if not opened else list(bars)
        for a, b in zip(edges[:-1], edges[1:], strict=True):  # the prefix's bars: counted, never sampled again
            self.classes.append(self._classes(music[a:b]))
            self.starts.append(None)
        self.prior = len(self.classes)
        if opened and state is not None:  # the bar it opened is filled by the tokens sampled here
            self.starts.append((0, RemiState(*(f.copy() for f in state))))

    def _classes(self, bar: np.ndarray) -> frozenset:
        return frozenset(self.pitch_class[bar[self.is_pitch[bar]]].tolist())

    def bar_line(self, generated: list[np.ndarray], state: RemiState) -> int | None:
        """A Bar token is next: close the bar before; the index to roll back to when a stall is found.

        Args:
            generated: the row's tokens so far (one array of one token each).
            state: the row's state before the Bar token (restored on a roll back).

        Returns:
            None to go on; else the index in `generated` where the stalled run began (the state there is
            restored in place, and the bars from there are forgotten).
        """
        if len(self.starts) > len(self.classes):  # the bar now closing (none before the first Bar)
            first = self.starts[-1][0]
            bar = np.concatenate(generated[first:]) if len(generated) > first else np.zeros(0, np.int64)
            self.classes.append(self._classes(bar))
        flags = stall_flags(self.classes)
        moving = np.flatnonzero(~flags)
        run = len(flags) - 1 - int(moving[-1]) if len(moving) else len(flags)
        # from where the stall began (its first flagged bar closes a stalled phrase of STALL_SPAN bars);
        # a retry that stalled again starts a phrase earlier each time; never before the sampled bars
        j = max(self.prior, len(self.classes) - run - (STALL_SPAN - 1) - STALL_SPAN * self.retries)
        silent = next((k for k, c in enumerate(reversed(self.classes)) if c), len(self.classes))
        if silent >= SILENT_BARS:  # bars without a note: again from the first of them
            run, j = STALL_BARS, max(self.prior, len(self.classes) - silent)
        if run >= STALL_BARS and self.retries < STALL_RETRIES and j < len(self.starts):
            self.retries += 1
            back, saved = self.starts[j]
            for field, value in zip(state, saved, strict=True):
                field[...] = value
            del self.starts[j:], self.classes[j:]
            return back
        self.starts.append((len(generated), RemiState(*(f.copy() for f in state))))
        return None


def _restated(cond: np.ndarray, music: np.ndarray, window: int, bar_id: int) -> np.ndarray:
    """The conditions, then `music` from the earliest bar line that leaves RESTATE_STRIDE (at most half
    the window) free: what the model was trained on, a window that begins with its conditions."""
    room = window - len(cond) - min(RESTATE_STRIDE or window // 2, window // 2)  # music tokens it may hold
    if len(music) <= room:
        return np.concatenate([cond, music])
    bars = np.flatnonzero(music == bar_id)
    fits = bars[len(music) - bars <= room]
    start = int(fits[0]) if len(fits) else len(music) - room  # a bar longer than the room: cut inside it
    return np.concatenate([cond, music[start:]])


def _window(model) -> int:
    """The training length of a Generator, its checkpoint or the fast engine's weights (all carry the config)."""
    return int(model.config.max_seq_len)


def _run_all(group: list, seed: int, temperature: float, top_p: float, top_k: int, batch: int,
             lo: int) -> list[np.ndarray]:
    """Run a worker's `_Rows` one after another (rows lo, lo + 1, ... of the batch)."""
    out, row = [], lo
    for rows in group:
        out += rows.run(seed, temperature, top_p, top_k, batch, row)
        row += rows.rows
    return out


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
                 n_bars: int, max_tokens: int, engine: str, count_prefix: bool = True) -> None:
        self.tk, self.tables, self.n_bars, self.max_tokens = tk, tables, n_bars, max_tokens
        self.rows = len(guides)
        self.state = RemiState.start(self.rows, BOS)
        # where the prefix counts, the rules are built first and see its bars as the state passes them;
        # where it does not, they are built on the state after it (what they leave out of their counts)
        self.processors = build_processors(tk, tables, guides, n_bars) if count_prefix else []
        watchers = [p for p in self.processors if type(p).see is not LogitsProcessor.see]
        for column in ids.T:  # a prefix may end in music (a primer melody): count its bars, notes, tempo
            self.state.update(tables, column)
            if watchers and (column == tk.bar_id).any():
                for processor in watchers:
                    processor.see(self.state)
        if not count_prefix:
            self.processors = build_processors(tk, tables, guides, n_bars, self.state)
        self.engine = select_engine(model, self.rows, ids.shape[1] + max_tokens, prefer=engine)
        self.first = self.engine.prefill(ids)
        self.ids = ids
        # the conditions: the prefix's leading BOS, genre, emotion and control tokens (a primer follows)
        is_cond = np.isin(tk.types[ids[0]], (BOS, GENRE, EMOTION, CTL))
        self.n_cond = int(np.argmin(is_cond)) if not is_cond.all() else ids.shape[1]

    def _sequence(self, generated: list[np.ndarray]) -> np.ndarray:
        """The single row's whole sequence: its prefix and the tokens sampled so far."""
        return np.concatenate([self.ids[0], *generated]) if generated else self.ids[0]

    def _context(self, seq: np.ndarray, window: int) -> tuple[np.ndarray, int]:
        """Prefill the engine for `seq` from scratch: all of it when it fits the window, else restated."""
        if len(seq) < window:
            return self.engine.prefill(seq[None]), len(seq)
        return self._restate(seq, window)

    def _restate(self, seq: np.ndarray, window: int) -> tuple[np.ndarray, int]:
        """Prefill the conditions, then `seq`'s music from the earliest bar line leaving RESTATE_STRIDE free.

        Args:
            seq: the row's whole sequence so far (conditions, any primer, sampled tokens).
            window: the engine's window.

        Returns:
            (the next logits (1, vocab), the new context length).
        """
        ctx = _restated(seq[: self.n_cond], seq[self.n_cond:], window, self.tk.bar_id)[None]
        return self.engine.prefill(ctx), ctx.shape[1]

    def run(self, seed: int, temperature: float, top_p: float, top_k: int, batch: int, lo: int) -> list[np.ndarray]:
        """Sample these rows; rows lo.. of a batch of `batch` (each step draws the whole batch's uniforms)."""
        tk, state, engine, n = self.tk, self.state, self.engine, self.rows
        draw = TopKTopP(top_p, top_k)
        rng = np.random.default_rng(int(seed))
        logits, rows = self.first, np.arange(n)  # rows the engine still computes
        x = np.zeros((n, len(tk)), dtype=np.float32)  # this step's logits, every row (reused)
        inv_t = 1.0 / max(temperature, 1e-5)
        generated: list[np.ndarray] = []
        context = self.ids.shape[1]  # tokens the engine holds
        window = getattr(engine, "window", None) or context + self.max_tokens
        guard = _StallGuard(tk, self.ids[0][self.n_cond:], state) if n == 1 and STALL_BARS > 0 else None
        ready = True  # `logits` are the next token's
        while len(generated) < self.max_tokens:
            if not ready:
                if n == 1 and context >= window and RESTATE_STRIDE > 0 and not state.done[0]:
                    logits, context = self._restate(self._sequence(generated), window)
                else:
                    logits, rows = _step_live(engine, generated[-1], state.done, rows)
                    context += 1
            ready = False
            if len(rows) == n:
                np.multiply(logits, inv_t, out=x)
            else:  # finished rows get zeros: the grammar allows them only EOS
                x.fill(0.0)
                x[rows] = logits * inv_t
            for processor in self.processors:
                processor(state, x)
            nxt = draw(x, rng.random(batch)[lo:lo + n])
            # the guard sees every bar close, the last one too (before its Bar token becomes the end)
            if guard is not None and nxt[0] == tk.bar_id:
                back = guard.bar_line(generated, state)
                if back is not None:  # a stall: sample its bars again on a fresh stream
                    del generated[back:]
                    rng = np.random.default_rng([int(seed), lo, guard.retries])
                    logits, context = self._context(self._sequence(generated), window)
                    ready = True
                    continue
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
