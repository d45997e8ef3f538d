"""Sampling: the loop's behaviour (grammar-valid output, stopping, determinism, forked workers) and what
guidance does to the music. Engines: tests/test_engines.py; the rules one by one: tests/test_processors.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.generation.sampling import Guidance, grammar_table, sample
from emomusic.music.tokenizer import BAR, DURATION, PITCH, POSITION, TEMPO, VELOCITY, MusicTokenizer


@pytest.fixture(scope="module")
def tk() -> MusicTokenizer:
    return MusicTokenizer()


@pytest.fixture(scope="module")
def model(tk) -> Generator:
    torch.manual_seed(0)
    m = Generator(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, max_seq_len=128)).eval()
    with torch.no_grad():  # larger weights than the init so positions and layers really matter
        for p in m.parameters():
            p.normal_(0, 0.3)
    return m


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a finished row's logits must not turn into NaN
def test_batch_with_sequences_ending_at_different_steps_matches_the_reference(model, tk):
    pre = [tk.condition_ids("pop", emotion="Q1")] * 5
    a = sample(model, tk, pre, n_bars=2, seed=11, max_tokens=160, decoder="fast")
    b = sample(model, tk, pre, n_bars=2, seed=11, max_tokens=160, decoder="reference")
    assert len({len(x) for x in a}) > 1  # finished rows really were dropped mid-batch
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_fast_and_reference_decoders_sample_the_same_tokens(model, tk):
    pre = [tk.condition_ids("pop", emotion="Q4")] * 2
    a = sample(model, tk, pre, n_bars=2, seed=5, max_tokens=120, decoder="fast")
    b = sample(model, tk, pre, n_bars=2, seed=5, max_tokens=120, decoder="reference")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _check_grammar(tk: MusicTokenizer, ids: np.ndarray) -> None:
    table = grammar_table(tk)
    types = tk.types[ids]
    assert types[0] == BAR
    for prev, nxt in zip(ids[:-1], ids[1:], strict=True):
        assert table[tk.types[prev], nxt], (tk.itos[int(prev)], tk.itos[int(nxt)])
    # positions increase within each bar
    pos = -1.0
    for t, kind in zip(ids, types, strict=True):
        if kind == BAR:
            pos = -1.0
        elif kind == POSITION:
            assert tk.values[t] > pos
            pos = tk.values[t]
    # every pitch is followed by velocity and duration
    p = np.flatnonzero(types == PITCH)
    p = p[p + 2 < len(ids)]
    assert (types[p + 1] == VELOCITY).all() and (types[p + 2] == DURATION).all()


def test_samples_are_grammatical_and_stop_after_the_bars(model, tk):
    out = sample(model, tk, [tk.condition_ids("pop", emotion="Q1")] * 3, n_bars=3, seed=0, max_tokens=400)
    for ids in out:
        _check_grammar(tk, ids)
        assert (tk.types[ids] == BAR).sum() <= 3
        notes = tk.decode(ids)
        assert (notes.start < 3 * notes.beats_per_bar).all()
        assert notes.pitch.max(initial=21) <= 108  # miditok's Pitch_109 is masked out


def test_same_seed_same_tokens_and_batch_is_one_call(model, tk):
    pre = [tk.condition_ids("pop", emotion="Q2")] * 4
    a = sample(model, tk, pre, n_bars=2, seed=11, max_tokens=100)
    b = sample(model, tk, pre, n_bars=2, seed=11, max_tokens=100)
    c = sample(model, tk, pre, n_bars=2, seed=12, max_tokens=100)
    assert len(a) == 4
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any(len(x) != len(z) or (x != z).any() for x, z in zip(a, c, strict=True))


def test_rows_split_over_forked_workers_give_the_same_tokens(model, tk):
    pre = [tk.condition_ids("pop", emotion=q) for q in ("Q1", "Q2", "Q3", "Q4", "Q1")]
    guides = [Guidance(tonic=i, mode="minor" if i % 2 else "major", density=1.0 + i) for i in range(5)]
    one = sample(model, tk, pre, n_bars=3, guidance=guides, seed=5, max_tokens=300, workers=1)
    for workers in (2, 3):
        split = sample(model, tk, pre, n_bars=3, guidance=guides, seed=5, max_tokens=300, workers=workers)
        assert len(split) == 5
        assert all(np.array_equal(x, y) for x, y in zip(one, split, strict=True))
    assert len({len(x) for x in one}) > 1  # rows of different lengths: groups finish at different steps


def test_sampling_workers_fork_only_where_it_is_safe(monkeypatch):
    import threading

    from emomusic.generation.sampling import sampling_workers

    monkeypatch.delenv("EMOMUSIC_WORKERS", raising=False)
    assert sampling_workers(8, 2) == 2
    monkeypatch.setenv("EMOMUSIC_WORKERS", "3")
    assert sampling_workers(8) == 3  # read through emomusic.settings.workers()
    monkeypatch.setenv("EMOMUSIC_WORKERS", "zero")
    assert sampling_workers(8) == min(8, len(__import__("os").sched_getaffinity(0)))  # not a count: one per core
    assert sampling_workers(3, 16) == 3  # at most one process per row
    assert sampling_workers(1, 4) == 1
    assert sampling_workers(8, 2, decoder="reference") == 1  # the reference decoder runs torch: no fork
    monkeypatch.setenv("EMOMUSIC_WORKERS", "1")
    assert sampling_workers(8) == 1
    monkeypatch.delenv("EMOMUSIC_WORKERS")
    monkeypatch.setattr("sys.platform", "darwin")  # numpy's BLAS there may be Accelerate: not fork-safe
    assert sampling_workers(8, 2) == 1
    monkeypatch.undo()
    got = []
    t = threading.Thread(target=lambda: got.append(sampling_workers(8, 2)))
    t.start()
    t.join()
    assert got == [1]  # never from a thread other than the main one


def _boom():
    raise ValueError("bad row")


def _boom_unpicklable():
    raise ValueError(lambda: 0)  # its argument cannot be pickled


def _die():
    import os

    os._exit(3)


def test_a_failing_or_dying_worker_is_an_error_not_a_hang():
    from emomusic.generation.sampling import _fork_map

    assert _fork_map([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
    with pytest.raises(ValueError, match="bad row"):  # the child's own exception, raised here
        _fork_map([lambda: 1, _boom])
    with pytest.raises(ValueError, match="bad row"):  # the parent's group fails: its children are stopped
        _fork_map([_boom, lambda: __import__("time").sleep(60)])
    with pytest.raises(RuntimeError, match="ValueError"):
        _fork_map([lambda: 1, _boom_unpicklable])
    with pytest.raises(RuntimeError, match="died"):
        _fork_map([lambda: 1, _die])


def test_guidance_forces_tempo_velocity_window_and_time_signature(model, tk):
    g = Guidance(tempo=70, velocity=40, velocity_window=12, tonic=2, mode="minor", time_signature=(3, 4))
    out = sample(model, tk, [tk.condition_ids("pop", emotion="Q3")] * 2, n_bars=2, guidance=g, seed=3,
                 max_tokens=200)
    for ids in out:
        notes = tk.decode(ids)
        tempos = tk.values[ids[tk.types[ids] == TEMPO]]
        assert len(tempos) == 1 and abs(np.log(tempos[0] / 70)) < 0.1
        assert notes.time_signature == (3, 4)
        assert (np.abs(notes.velocity - 40) <= 12).all()


def test_key_bias_moves_pitches_into_the_scale(model, tk):
    pre = [tk.condition_ids("pop", emotion="Q1")] * 4
    strong = Guidance(tonic=0, mode="major", key_bias=12.0, time_signature=None)
    notes = [tk.decode(x) for x in sample(model, tk, pre, n_bars=2, guidance=strong, seed=4, max_tokens=200)]
    pcs = np.concatenate([n.pitch % 12 for n in notes])
    assert np.isin(pcs, [0, 2, 4, 5, 7, 9, 11]).mean() > 0.95


def test_density_feedback_lowers_and_raises_notes_per_beat(model, tk):
    from emomusic.music.attributes import compute_controls

    def density(target):
        toks = sample(model, tk, [tk.condition_ids("pop", emotion="Q1")] * 4, n_bars=4, seed=5,
                      guidance=Guidance(density=target, density_gain=3.0), max_tokens=800)
        return np.mean([compute_controls(tk.decode(t))["note_density"] for t in toks])

    sparse, dense = density(0.5), density(8.0)
    assert sparse < dense
    assert sparse < 2.0


def test_register_feedback_moves_the_mean_pitch(model, tk):
    def mean_pitch(target):
        toks = sample(model, tk, [tk.condition_ids("pop", emotion="Q1")] * 4, n_bars=4, seed=6,
                      guidance=Guidance(pitch_mean=target, register_gain=3.0), max_tokens=800)
        return np.mean([tk.decode(t).pitch.mean() for t in toks])

    low, high = mean_pitch(45.0), mean_pitch(80.0)
    assert low < 55 < 70 < high


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_triad_hold_lengthens_tonic_triad_notes_and_shortens_the_others(model, tk):
    def durations(hold):
        g = Guidance(tonic=2, mode="minor", triad_hold=hold, time_signature=None)  # D minor: D F A
        notes = [tk.decode(t) for t in sample(model, tk, [tk.condition_ids("pop", emotion="Q3")] * 4, n_bars=4,
                                              seed=7, guidance=g, max_tokens=600)]
        pitch = np.concatenate([n.pitch for n in notes]) % 12
        dur = np.concatenate([n.duration for n in notes])
        triad = np.isin(pitch, [2, 5, 9])
        return dur[triad].mean(), dur[~triad].mean()

    triad, other = durations(3.0)
    assert triad > 2 * other
    plain_triad, plain_other = durations(0.0)
    assert triad / other > plain_triad / plain_other


def test_past_the_window_the_conditions_are_restated_from_a_bar_line(model, tk, monkeypatch):
    """Training windows each begin with their conditions and then a bar: so does every context after the first."""
    import emomusic.generation.sampling as sampling

    seen = []
    real_select = sampling.select_engine

    def recording(*args, **kwargs):
        engine = real_select(*args, **kwargs)
        prefill = engine.prefill

        def spy(ids):
            seen.append(np.asarray(ids).copy())
            return prefill(ids)

        engine.prefill = spy
        return engine

    monkeypatch.setattr(sampling, "select_engine", recording)
    pre = tk.condition_ids("pop", emotion="Q3")
    (body,) = sample(model, tk, [pre], n_bars=6, seed=3, max_tokens=500)
    window = model.config.max_seq_len
    assert len(body) > 2 * window and len(seen) > 2  # long enough to restate more than once
    whole = np.concatenate([pre, body])
    room = window - len(pre) - min(sampling.RESTATE_STRIDE, window // 2)  # music a new context holds at most
    from_bar = 0
    for (ctx,) in seen[1:]:
        assert (ctx[: len(pre)] == pre).all()  # the conditions first
        music = ctx[len(pre):]
        assert len(music) <= room
        starts = [k for k in range(len(pre), len(whole) - len(music) + 1) if (whole[k:k + len(music)] == music).all()]
        assert starts  # then the piece's own latest music, unchanged
        k, end = starts[0], starts[0] + len(music)
        bars = [b for b in np.flatnonzero(whole[len(pre):end] == tk.bar_id) + len(pre) if end - b <= room]
        if bars:  # from the earliest bar line that leaves the room; a bar longer than the room is cut inside
            assert k == bars[0] and music[0] == tk.bar_id
            from_bar += 1
        else:
            assert len(music) == room
    assert from_bar  # the usual case occurred

    seen.clear()
    monkeypatch.setattr(sampling, "RESTATE_STRIDE", 0)  # off: one prefill, then the sliding window
    sample(model, tk, [pre], n_bars=6, seed=3, max_tokens=500)
    assert len(seen) == 1


def test_the_stall_guard_rolls_back_to_where_the_bars_stopped_moving(tk):
    from emomusic.generation.processors import RemiState
    from emomusic.generation.sampling import STALL_BARS, STALL_RETRIES, _StallGuard

    def bar(pitches):  # one bar's tokens as the sampler keeps them: one array of one token each
        ids = [tk.token_id("Position_0")]
        for p in pitches:
            ids += [tk.token_id(f"Pitch_{p}"), tk.token_id("Velocity_63"), tk.token_id("Duration_1.0.8")]
        return [np.array([t]) for t in ids]

    guard, generated, state = _StallGuard(tk), [], RemiState.start(1, 1)

    def play(pitches):
        """One bar; the index rolled back to, if the guard stops it."""
        back = guard.bar_line(generated, state)
        if back is not None:
            del generated[back:]
            return back
        generated.extend([np.array([tk.bar_id])] + bar(pitches))
        state.bars[0] += 1
        return None

    moving = [[60, 64, 67], [62, 65, 69], [64, 67, 71], [65, 69, 72]]
    for k in range(8):  # a moving phrase: the guard never stops it, and a literal repeat is no stall
        assert play(moving[k % 4]) is None
    stall_from, bars_there = len(generated), int(state.bars[0])
    backs = []
    for _ in range(200):  # then the same two notes, bar after bar, for as long as it takes
        back = play([48, 55])
        if back is not None:
            backs.append((back, int(state.bars[0])))
        if guard.retries == STALL_RETRIES and back is None and len(backs) == STALL_RETRIES:
            break
    assert backs[0] == (stall_from, bars_there)  # the first retry: where the stall began, its state restored
    assert [b for b, _ in backs] == sorted((b for b, _ in backs), reverse=True)  # each retry starts earlier
    assert len(backs) == STALL_RETRIES  # then the piece is let go
    for _ in range(2 * STALL_BARS):
        assert play([48, 55]) is None


def test_the_stall_guard_samples_a_silence_again_from_its_first_bar(tk):
    from emomusic.generation.processors import RemiState
    from emomusic.generation.sampling import SILENT_BARS, _StallGuard

    guard, generated, state = _StallGuard(tk), [], RemiState.start(1, 1)
    chords = [[60, 64, 67], [62, 65, 69], [64, 67, 71]]
    for pitches in chords:  # three bars that move
        assert guard.bar_line(generated, state) is None
        generated.append(np.array([tk.bar_id]))
        for t in [tk.token_id("Position_0")] + [tk.token_id(f"Pitch_{p}") for p in pitches]:
            generated.append(np.array([t]))
        state.bars[0] += 1
    silence_from = len(generated)
    for k in range(SILENT_BARS):  # then bars with nothing in them
        assert guard.bar_line(generated, state) is None, k
        generated.append(np.array([tk.bar_id]))
        state.bars[0] += 1
    assert guard.bar_line(generated, state) == silence_from and int(state.bars[0]) == len(chords)
    assert guard.retries == 1


def test_the_stall_guard_counts_the_prefixs_bars_but_never_rolls_back_into_them(tk):
    from emomusic.generation.processors import RemiState
    from emomusic.generation.sampling import STALL_BARS, STALL_SPAN, _StallGuard

    def bar(pitches):
        ids = [tk.bar_id, tk.token_id("Position_0")]
        for p in pitches:
            ids += [tk.token_id(f"Pitch_{p}"), tk.token_id("Velocity_63"), tk.token_id("Duration_1.0.8")]
        return ids

    # the piece so far (an earlier section) already sits on C and G, bar after bar, and opens the next bar
    n = STALL_BARS + STALL_SPAN - 2
    prefix = np.array([t for _ in range(n) for t in bar([48, 55])] + [tk.bar_id])
    state = RemiState.start(1, 1)
    guard, generated = _StallGuard(tk, prefix, state), []
    assert guard.prior == n
    generated += [np.array([t]) for t in bar([48, 55])[1:]]  # the opened bar, filled here: still C and G
    back = guard.bar_line(generated, state)  # it closes: the run counts the prefix's bars, so it stalls
    assert back == 0 and generated  # rolled back to the first sampled token, not into the prefix
