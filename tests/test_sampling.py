"""Sampling: fast KV cache equals a full recompute, grammar-valid output, determinism, filters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.checkpoint import CheckpointError
from emomusic.generation.fast import DecoderWeights, KVCacheDecoder, ReferenceDecoder
from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.generation.sampling import Feedback, Guidance, _State, draw, draw_reference, grammar_table, sample
from emomusic.music.tokenizer import BAR, DURATION, PITCH, POSITION, TEMPO, VELOCITY, MusicTokenizer


def _close(got, want, atol: float = 1e-5, rtol: float = 1.3e-6) -> None:
    """The decoders return numpy logits; the network's forward returns tensors."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=atol, rtol=rtol)


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


@pytest.mark.parametrize("decoder_cls", [KVCacheDecoder, ReferenceDecoder])
def test_cached_logits_equal_full_recompute(model, decoder_cls, monkeypatch):
    from emomusic.generation import fast

    monkeypatch.setattr(fast, "INITIAL_CACHE", 8)  # the cache grows twice, in the prefix and mid-sequence
    ids = torch.randint(0, model.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
    dec = decoder_cls(model, 3, 64) if decoder_cls is KVCacheDecoder else decoder_cls(model)
    _close(dec.prefill(ids[:, :12]), full[:, 11], atol=1e-4, rtol=1e-4)
    for t in range(12, 40):
        _close(dec.step(ids[:, t]), full[:, t], atol=1e-4, rtol=1e-4)


def _random(cfg: GeneratorConfig) -> Generator:
    torch.manual_seed(0)
    m = Generator(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    return m


@pytest.mark.parametrize("conditioning", ["prefix", "sum"])
def test_decoder_weights_read_from_tensors_alone_equal_the_network(tk, conditioning):
    """Sampling reads the checkpoint's tensors without building x-transformers' network: same logits,
    for both conditioning methods (this also pins x-transformers' gamma offset and head size)."""
    cond = tuple(int(i) for i in np.flatnonzero(np.isin(tk.types, (2, 3, 4, 5))))  # genre/emotion/ctl ids
    extra = {"conditioning": "sum", "cond_token_ids": cond, "bos_id": tk.bos_id} if conditioning == "sum" else {}
    m = _random(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, max_seq_len=128, **extra))
    ids = torch.tensor([tk.condition_ids("pop", emotion="Q2") + list(range(70, 90))])
    with torch.no_grad():
        full = m(ids)
    dec = KVCacheDecoder(DecoderWeights(m.config, dict(m.state_dict())), 1, 64)
    _close(dec.prefill(ids[:, :5]), full[:, 4], atol=1e-4, rtol=1e-4)
    for t in range(5, ids.shape[1]):
        _close(dec.step(ids[:, t]), full[:, t], atol=1e-4, rtol=1e-4)


def test_float16_weights_step_at_half_the_bytes_with_the_same_logits(model):
    """Weights float16 holds exactly (a float16 checkpoint, as shipped) go to the compiled step as float16
    bits: bitwise the same logits as the float32 step, and the network's; other weights stay float32."""
    state = {k: v.half().float() for k, v in model.state_dict().items()}
    half = DecoderWeights(model.config, state)
    assert all(half.step_layers[i].dtype == np.uint16 for i in (1, 2, 4, 6)) and half.step_logits.dtype == np.uint16
    assert half.step_layers[1].nbytes * 2 == half.layers[1].nbytes
    plain = DecoderWeights(model.config, state)
    plain.step_layers, plain.step_logits = plain.layers, plain.to_logits
    assert all(k.dtype == np.float32 for k in DecoderWeights.from_module(model).step_layers)  # not float16-exact
    rounded = Generator(model.config).eval()
    rounded.load_state_dict(state)
    ids = torch.randint(0, model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = rounded(ids)
    a, b = KVCacheDecoder(half, 2, 64), KVCacheDecoder(plain, 2, 64)
    np.testing.assert_array_equal(a.prefill(ids[:, :8]), b.prefill(ids[:, :8]))
    for t in range(8, 40):
        got = a.step(ids[:, t])
        np.testing.assert_array_equal(got, b.step(ids[:, t]))
        _close(got, full[:, t], atol=1e-4, rtol=1e-4)


def test_sum_conditioning_reaches_the_output_only_through_the_condition_vector(tk):
    cond = tuple(int(i) for i in np.flatnonzero(np.isin(tk.types, (2, 3, 4, 5))))
    m = _random(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, conditioning="sum",
                                cond_token_ids=cond, bos_id=tk.bos_id))
    body = list(range(70, 80))
    a, b = (torch.tensor([tk.condition_ids("pop", emotion=q) + body]) for q in ("Q1", "Q3"))
    with torch.no_grad():
        assert not torch.allclose(m(a)[:, -1], m(b)[:, -1])
        ids, vec = m.split_conditions(a)
        assert set(ids[0, :3].tolist()) == {tk.bos_id} and vec.shape == (1, 32)


def test_damaged_tensors_give_a_one_line_checkpoint_error(model):
    state = dict(model.state_dict())
    state.pop("net.to_logits.weight")
    with pytest.raises(CheckpointError, match="missing keys: net.to_logits.weight"):
        DecoderWeights(model.config, state, source="x/model.safetensors")
    with pytest.raises(ValueError, match="unknown conditioning"):
        GeneratorConfig.from_dict({**model.config.to_dict(), "conditioning": "film"})


def test_dropping_finished_rows_keeps_the_other_rows_logits(model):
    ids = torch.randint(0, model.config.vocab_size, (4, 30), generator=torch.Generator().manual_seed(3))
    full, part = KVCacheDecoder(model, 4, 64), KVCacheDecoder(model, 4, 64)
    full.prefill(ids[:, :10])
    part.prefill(ids[:, :10])
    part.step(ids[:, 10])
    full.step(ids[:, 10])
    part.keep(np.array([1, 3]))
    for t in range(11, 30):
        _close(part.step(ids[[1, 3], t]), full.step(ids[:, t])[[1, 3]])


def test_a_rows_step_logits_do_not_depend_on_the_rows_beside_it():
    """The compiled step computes each row in the same order whatever the batch, so a row decoded alone
    and in a batch of three gives bitwise the same logits once nothing in its window descends from the
    prefill (whose BLAS products may round differently by batch size): what lets sampling split a
    batch over processes without changing a token."""
    m = _random(GeneratorConfig(vocab_size=100, dim=32, depth=2, heads=2, max_seq_len=16))
    ids = torch.randint(0, 100, (3, 60), generator=torch.Generator().manual_seed(4))
    batch, alone = KVCacheDecoder(m, 3, 64), KVCacheDecoder(m, 1, 64)
    batch.prefill(ids[:, :10])
    alone.prefill(ids[1:2, :10])
    for t in range(10, 60):
        a, b = batch.step(ids[:, t]), alone.step(ids[1:2, t])
        if t >= 10 + 2 * 16:  # a layer's keys see 16 back, so two layers' reach back 32 positions
            np.testing.assert_array_equal(a[1], b[0])
    assert not np.array_equal(a[0], a[1])  # the rows really differ


def test_decoder_steps_reject_what_they_cannot_decode(model):
    dec = KVCacheDecoder(model, 2, 12)
    with pytest.raises(ValueError, match="prefill before the first step"):
        dec.step(np.array([1, 2]))
    dec.prefill(torch.ones(2, 10, dtype=torch.long))
    with pytest.raises(ValueError, match=r"one token per live row expected: shape \(2,\)"):
        dec.step(np.array([1, 2, 3]))
    dec.keep(np.array([1]))
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        dec.step(np.array([1, 2]))
    dec.step(np.array([1]))
    dec.step(np.array([1]))
    with pytest.raises(ValueError, match="KV cache full"):
        dec.step(np.array([1]))


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a finished row's logits must not turn into NaN
def test_batch_with_sequences_ending_at_different_steps_matches_the_reference(model, tk):
    pre = [tk.condition_ids("pop", emotion="Q1")] * 5
    a = sample(model, tk, pre, n_bars=2, seed=11, max_tokens=160, decoder="fast")
    b = sample(model, tk, pre, n_bars=2, seed=11, max_tokens=160, decoder="reference")
    assert len({len(x) for x in a}) > 1  # finished rows really were dropped mid-batch
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _band(n: int, window: int) -> torch.Tensor:
    """x-transformers attn_mask (True = attend): causal, and at most `window` keys back."""
    i = torch.arange(n)
    return (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)


@pytest.mark.parametrize("prefill", [5, 16, 30])
def test_past_training_length_the_decoders_attend_to_a_sliding_window(prefill, monkeypatch):
    """Rotary positions: the cache runs past max_seq_len (16 here) as a ring of the last 16 keys and
    matches a recompute with a banded mask, for a prefill shorter than, equal to and longer than the
    window, through the cache growing and finished rows being dropped after the ring wrapped."""
    from emomusic.generation import fast

    monkeypatch.setattr(fast, "INITIAL_CACHE", 8)
    m = _random(GeneratorConfig(vocab_size=100, dim=32, depth=2, heads=2, max_seq_len=16))
    ids = torch.randint(0, 100, (3, 60), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        band = m.net(ids, attn_mask=_band(60, 16))
        unmasked = m(ids)
    assert not torch.allclose(band[:, 40], unmasked[:, 40])  # the window really changes the answer
    dec, rows = KVCacheDecoder(m, 3, 80), [0, 1, 2]
    _close(dec.prefill(ids[:, :prefill]), band[:, prefill - 1], atol=1e-4, rtol=1e-4)
    for t in range(prefill, 60):
        _close(dec.step(ids[rows, t]), band[rows, t], atol=1e-4, rtol=1e-4)
        if t == 40:
            dec.keep(np.array([0, 2]))
            rows = [0, 2]
        if t == 45:
            ring = dec.kv
    assert dec.kv is ring and dec.kv.shape[4] == 16  # a full ring is written in place, never regrown
    if prefill <= 16:  # x-transformers' own cached forward, cropped as its generate() crops it
        ref = ReferenceDecoder(m)
        _close(ref.prefill(ids[:, :prefill]), band[:, prefill - 1], atol=1e-4, rtol=1e-4)
        for t in range(prefill, 60):
            _close(ref.step(ids[:, t]), band[:, t], atol=1e-4, rtol=1e-4)
    full = KVCacheDecoder(m, 3, 80, window=0)  # window=0: every key, the unmasked network
    _close(full.prefill(ids[:, :prefill]), unmasked[:, prefill - 1], atol=1e-4, rtol=1e-4)
    for t in range(prefill, 60):
        _close(full.step(ids[:, t]), unmasked[:, t], atol=1e-4, rtol=1e-4)


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


def test_draw_keeps_the_nucleus_and_the_top_k_and_follows_the_probabilities():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]], dtype=np.float32))
    u = np.linspace(0, 1, 1000, endpoint=False)

    def drawn(**kw):
        return np.array([draw(logits, np.array([x, x]), **kw) for x in u])

    nucleus = drawn(top_p=0.7)  # 0.5 < 0.7 <= 0.8: the crossing token stays, the rest go
    assert set(nucleus[:, 0]) == {0, 1} and set(nucleus[:, 1]) == {3, 2}
    assert abs((nucleus[:, 0] == 0).mean() - 0.5 / 0.8) < 0.01  # renormalised over the kept tokens
    assert set(drawn(top_p=1.0)[:, 0]) == {0, 1, 2, 3}
    assert abs((drawn(top_p=1.0)[:, 0] == 3).mean() - 0.05) < 0.01
    assert set(drawn(top_p=1.0, top_k=2)[:, 1]) == {3, 2}
    masked = logits.copy()
    masked[:, 0] = -np.inf  # forbidden tokens are never drawn
    assert 0 not in np.array([draw(masked, np.array([x, x]), top_p=1.0) for x in u])[:, 0]


def test_compiled_draw_picks_the_numpy_references_tokens():
    """Random rows with forbidden tokens, ties (rounded logits), every top-k / top-p regime."""
    rng = np.random.default_rng(0)
    for trial in range(400):
        b, v = int(rng.integers(1, 9)), int(rng.integers(2, 420))
        x = (rng.standard_normal((b, v)) * rng.uniform(0.1, 6)).astype(np.float32)
        x[rng.random((b, v)) < 0.5] = -np.inf
        x[np.arange(b), rng.integers(0, v, b)] = 0.0  # at least one allowed token per row
        if trial % 4 == 0:
            x = np.round(x)
        u = rng.random(b)
        top_p, top_k = float(rng.choice([0.5, 0.9, 0.98, 1.0])), int(rng.choice([0, 1, 2, 5, 1000]))
        np.testing.assert_array_equal(draw(x, u, top_p, top_k), draw_reference(x, u, top_p, top_k))


def test_compiled_grammar_mask_forbids_what_the_numpy_mask_forbids(tk):
    """Random REMI states (every token type before, positions, bar lengths, forced tempo and metre,
    finished rows, rows with nothing left): mask_logits sets -inf exactly where `mask` is False."""
    rng = np.random.default_rng(1)
    table = grammar_table(tk)
    for n_bars in (1, 2, 4):
        b = 64
        st = _State(tk, b, n_bars, rng.random(b) < 0.5, rng.random(b) < 0.5)
        st.prev_type = rng.choice(np.unique(tk.types), b)
        st.pos = rng.integers(-1, 40, b)
        st.bar_len = rng.choice([16, 24, 32, 48], b)
        st.bars = rng.integers(0, 6, b)
        st.tempo_done = rng.random(b) < 0.5
        st.done = rng.random(b) < 0.2
        allowed = rng.random((b, len(tk))) < 0.9
        allowed[:4] = False  # nothing allowed at all: the row must close its bar or end
        x = rng.standard_normal((b, len(tk))).astype(np.float32)
        want = np.where(st.mask(table, allowed), x, -np.inf).astype(np.float32)
        st.mask_logits(x, table, allowed)
        np.testing.assert_array_equal(x, want)


def test_compiled_feedback_tilts_as_the_numpy_feedback(tk):
    """Random states, including ones far enough off target that both clips bind."""
    rng = np.random.default_rng(2)
    b = 48
    guides = [Guidance(density=float(rng.uniform(0.2, 6)) if i % 3 else None,
                       pitch_mean=float(rng.uniform(40, 80)) if i % 4 else None, density_gain=float(rng.uniform(0, 3)),
                       register_gain=float(rng.uniform(0, 8)), tonic=i % 12, mode="minor" if i % 2 else "major",
                       triad_hold=0.5 if i % 5 == 0 else 0.0) for i in range(b)]
    fb = Feedback(tk, guides)
    st = _State(tk, b, 8)
    st.prev_type = rng.choice(np.unique(tk.types), b)
    st.pos = rng.integers(-1, 32, b)
    st.beats_before = rng.uniform(0, 40, b)
    st.n_notes = rng.integers(0, 400, b).astype(float)
    st.pitch_sum = st.n_notes * rng.uniform(20, 100, b)
    st.last_pitch = rng.integers(21, 109, b)
    x = rng.standard_normal((b, len(tk))).astype(np.float32)
    before, want = x.copy(), x.copy()
    fb.add_reference(want, st)
    fb.add(x, st)
    assert np.abs(want - before).max() > 3  # the tilt is large
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-5)


def test_compiled_state_update_follows_the_numpy_update(tk):
    """Random token streams (every type, in any order): the compiled update keeps every counter equal."""
    rng = np.random.default_rng(3)
    b = 16
    fast, ref = _State(tk, b, 4), _State(tk, b, 4)
    fields = ("prev_type", "pos", "bar_len", "bars", "tempo_done", "done", "beats_before", "n_notes", "pitch_sum",
              "last_pitch")
    for _ in range(300):
        tokens = rng.integers(0, len(tk), b)
        tokens[rng.random(b) < 0.1] = tk.bar_id  # one id among hundreds: make bars common
        fast.update(tokens)
        ref.update_reference(tokens)
        for f in fields:
            np.testing.assert_array_equal(getattr(fast, f), getattr(ref, f), err_msg=f)
    assert fast.bars.max() > 5 and fast.n_notes.max() > 20 and fast.done.any()


def test_compiled_feedback_and_mask_sample_the_numpy_references_tokens(model, tk, monkeypatch):
    guides = [Guidance(tempo=90, time_signature=(3, 4), density=2.0, pitch_mean=64.0, tonic=0, mode="major",
                       velocity=70, triad_hold=0.5),
              Guidance(time_signature=None, density=0.5, pitch_mean=50.0), Guidance(time_signature=None)]
    pre = [tk.condition_ids("pop", emotion="Q1")] * 3
    kw = dict(n_bars=3, guidance=guides, seed=3, max_tokens=200, workers=1)
    compiled = sample(model, tk, pre, **kw)
    monkeypatch.setattr(_State, "mask_logits", lambda self, x, t, a: x.__setitem__(~self.mask(t, a), -np.inf))
    monkeypatch.setattr(Feedback, "add", Feedback.add_reference)
    reference = sample(model, tk, pre, **kw)
    assert sum(len(t) for t in compiled) > 100
    for x, y in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(x, y)


def test_draw_takes_the_nucleus_of_the_top_k_not_of_the_whole_row(model, tk):
    """top_k and top_p together: the nucleus is measured against the top-k's renormalised mass, as the
    torch filters did (top_p_filter(top_k_filter(logits))). Over p = (0.4, 0.3, 0.2, 0.1), top-2 then
    top_p 0.5 keeps only token 0 (0.4 / 0.7 > 0.5); a nucleus of the whole row capped at k kept token 1 too."""
    logits = np.log(np.array([[0.4, 0.3, 0.2, 0.1]], dtype=np.float32))
    u = np.linspace(0, 1, 200, endpoint=False)
    assert {int(draw(logits, np.array([x]), top_p=0.5, top_k=2)[0]) for x in u} == {0}
    # top-3 renormalised is (4, 3, 2) / 9: top_p 0.7 keeps two (4/9 < 0.7 <= 7/9), and draws them 4:3
    got = np.array([draw(logits, np.array([x]), top_p=0.7, top_k=3)[0] for x in u])
    assert set(got.tolist()) == {0, 1} and abs((got == 0).mean() - 4 / 7) < 0.01
    # in the loop: top-2 with top_p 0.5 is greedy decoding (the top token's share of the top two is >= 0.5)
    pre = [tk.condition_ids("pop", emotion="Q2")] * 3
    greedy = sample(model, tk, pre, n_bars=2, top_k=1, seed=0, max_tokens=60)
    for seed in (1, 2):
        got = sample(model, tk, pre, n_bars=2, top_k=2, top_p=0.5, seed=seed, max_tokens=60)
        assert all(np.array_equal(a, b) for a, b in zip(got, greedy, strict=True))


def _loop_mask(st, table, allowed):
    """The per-sequence loop the vectorised `_State.mask` replaced (kept here as the oracle)."""
    from emomusic.generation.sampling import TIMESIG as TS

    m = table[st.prev_type] & allowed
    tk = st.tk
    for b in range(len(m)):
        if st.prev_type[b] in (DURATION, BAR, TS, TEMPO):
            bad = (st.pos_vals <= st.pos[b]) | (st.pos_vals >= st.bar_len[b])
            m[b, st.pos_ids[bad]] = False
        if st.tempo_done[b] or st.bars[b] > 1:
            m[b] &= ~st.is_tempo
        elif st.force_tempo[b] and st.prev_type[b] == POSITION:
            m[b] &= st.is_tempo
        if st.force_timesig[b] and st.prev_type[b] == BAR:
            m[b] &= st.is_timesig
        if st.bars[b] < st.n_bars:
            m[b, tk.eos_id] = False
        if st.done[b]:
            m[b] = False
            m[b, tk.eos_id] = True
        if not m[b].any():
            m[b, tk.bar_id if st.bars[b] < st.n_bars else tk.eos_id] = True
    return m


def test_vectorised_and_compiled_grammar_masks_equal_the_per_sequence_loop(model, tk, monkeypatch):
    """At every step of a real sampling run: the numpy mask, and the -inf the compiled one writes."""
    from emomusic.generation import sampling

    original = sampling._State.mask_logits
    checked = []

    def both(self, x, table, allowed):
        loop = _loop_mask(self, table, allowed)
        np.testing.assert_array_equal(self.mask(table, allowed), loop)
        want = np.where(loop, x, -np.inf).astype(np.float32)
        original(self, x, table, allowed)
        np.testing.assert_array_equal(x, want)
        checked.append(1)

    monkeypatch.setattr(sampling._State, "mask_logits", both)
    guides = [Guidance(tempo=90, velocity=60), Guidance(time_signature=None), Guidance(time_signature=(3, 4))]
    sample(model, tk, [tk.condition_ids("pop", emotion="Q1")] * 3, n_bars=3, guidance=guides, seed=3,
           max_tokens=300)
    assert len(checked) > 50


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
