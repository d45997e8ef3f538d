"""Engines: the fast engine's logits equal the network's (and x-transformers' cached forward), its
parameter map and precision, its sliding window, and the fallback to the reference engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.checkpoint import CheckpointError
from emomusic.generation import fast
from emomusic.generation.checkpoint import GeneratorCheckpoint
from emomusic.generation.engines import resolve_engine, select_engine
from emomusic.generation.fast import DecoderWeights, FastEngine
from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.generation.reference import ReferenceEngine
from emomusic.generation.sampling import sample
from emomusic.music.tokenizer import MusicTokenizer


def _close(got, want, atol: float = 1e-5, rtol: float = 1.3e-6) -> None:
    """The engines return numpy logits; the network's forward returns tensors."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=atol, rtol=rtol)


def _random(cfg: GeneratorConfig) -> Generator:
    """A network with larger weights than the init, so positions and layers really matter."""
    torch.manual_seed(0)
    m = Generator(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    return m


@pytest.fixture(scope="module")
def tk() -> MusicTokenizer:
    return MusicTokenizer()


@pytest.fixture(scope="module")
def model(tk) -> Generator:
    return _random(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, max_seq_len=128))


@pytest.mark.parametrize("decoder_cls", [FastEngine, ReferenceEngine])
def test_cached_logits_equal_full_recompute(model, decoder_cls, monkeypatch):
    monkeypatch.setattr(fast, "INITIAL_CACHE", 8)  # the cache grows twice, in the prefix and mid-sequence
    ids = torch.randint(0, model.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
    dec = decoder_cls(model, 3, 64) if decoder_cls is FastEngine else decoder_cls(model)
    _close(dec.prefill(ids[:, :12]), full[:, 11], atol=1e-4, rtol=1e-4)
    for t in range(12, 40):
        _close(dec.step(ids[:, t]), full[:, t], atol=1e-4, rtol=1e-4)


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
    dec = FastEngine(DecoderWeights(m.config, dict(m.state_dict())), 1, 64)
    _close(dec.prefill(ids[:, :5]), full[:, 4], atol=1e-4, rtol=1e-4)
    for t in range(5, ids.shape[1]):
        _close(dec.step(ids[:, t]), full[:, t], atol=1e-4, rtol=1e-4)


def test_float16_weights_step_at_half_the_bytes_with_the_same_logits(model):
    """Weights float16 holds exactly (a float16 checkpoint, as shipped) go to the compiled step as float16
    bits: bitwise the same logits as the float32 step, and the network's; other weights stay float32."""
    state = {k: v.half().float() for k, v in model.state_dict().items()}
    half = DecoderWeights(model.config, state)
    matrices = ("wqkv", "wo", "w1", "w2", "to_logits")
    assert all(getattr(half.step, m).dtype == np.uint16 for m in matrices)
    assert half.step.wqkv.nbytes * 2 == half.arrays.wqkv.nbytes
    plain = DecoderWeights(model.config, state)
    plain.step = plain.arrays
    assert all(k.dtype == np.float32 for k in DecoderWeights.from_module(model).step)  # not float16-exact
    rounded = Generator(model.config).eval()
    rounded.load_state_dict(state)
    ids = torch.randint(0, model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = rounded(ids)
    a, b = FastEngine(half, 2, 64), FastEngine(plain, 2, 64)
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
    full, part = FastEngine(model, 4, 64), FastEngine(model, 4, 64)
    full.prefill(ids[:, :10])
    part.prefill(ids[:, :10])
    part.step(ids[:, 10])
    full.step(ids[:, 10])
    part.keep(np.array([1, 3]))
    for t in range(11, 30):
        _close(part.step(ids[[1, 3], t]), full.step(ids[:, t])[[1, 3]])


def test_rows_that_share_their_prefix_are_prefilled_once_and_step_as_the_network(model):
    """Candidates of one request share their prefix: the fast engine runs it once and copies the cache
    to every row, and each row then goes on as the network computes it."""
    gen = torch.Generator().manual_seed(5)
    head = torch.randint(0, model.config.vocab_size, (1, 12), generator=gen)
    tails = torch.randint(0, model.config.vocab_size, (3, 10), generator=gen)
    ids = torch.cat([head.repeat(3, 1), tails], dim=1)
    with torch.no_grad():
        full = model(ids)
    dec = FastEngine(model, 3, 64)
    logits = dec.prefill(ids[:, :12])
    assert logits.shape[0] == 3 and dec.rows == 3
    _close(logits, full[:, 11], atol=1e-4, rtol=1e-4)
    for t in range(12, 22):
        _close(dec.step(ids[:, t]), full[:, t], atol=1e-4, rtol=1e-4)


def test_candidates_scored_together_equal_each_scored_alone(model):
    """`log_likelihoods` steps candidates of different lengths as one batch after one prefill; each row's
    score is what `log_likelihood` gives it from the context plus its own unscored head."""
    from emomusic.generation.sampling import log_likelihood, log_likelihoods

    rng = np.random.default_rng(6)
    ctx = rng.integers(3, model.config.vocab_size, size=15)
    rows = [rng.integers(3, model.config.vocab_size, size=n) for n in (9, 4, 12)]
    got = log_likelihoods(model, ctx, rows, [3, 0, 5])
    for r, s, g in zip(rows, (3, 0, 5), got, strict=True):
        assert abs(g - log_likelihood(model, np.concatenate([ctx, r[:s]]), r[s:])) < 1e-3
    assert len(set(np.round(got, 6))) == 3


def test_a_rows_step_logits_do_not_depend_on_the_rows_beside_it():
    """The compiled step computes each row in the same order whatever the batch, so a row decoded alone
    and in a batch of three gives bitwise the same logits once nothing in its window descends from the
    prefill (whose BLAS products may round differently by batch size): what lets sampling split a
    batch over processes without changing a token."""
    m = _random(GeneratorConfig(vocab_size=100, dim=32, depth=2, heads=2, max_seq_len=16))
    ids = torch.randint(0, 100, (3, 60), generator=torch.Generator().manual_seed(4))
    batch, alone = FastEngine(m, 3, 64), FastEngine(m, 1, 64)
    batch.prefill(ids[:, :10])
    alone.prefill(ids[1:2, :10])
    for t in range(10, 60):
        a, b = batch.step(ids[:, t]), alone.step(ids[1:2, t])
        if t >= 10 + 2 * 16:  # a layer's keys see 16 back, so two layers' reach back 32 positions
            np.testing.assert_array_equal(a[1], b[0])
    assert not np.array_equal(a[0], a[1])  # the rows really differ


def test_decoder_steps_reject_what_they_cannot_decode(model):
    dec = FastEngine(model, 2, 12)
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


def _band(n: int, window: int) -> torch.Tensor:
    """x-transformers attn_mask (True = attend): causal, and at most `window` keys back."""
    i = torch.arange(n)
    return (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)


@pytest.mark.parametrize("prefill", [5, 16, 30])
def test_past_training_length_the_decoders_attend_to_a_sliding_window(prefill, monkeypatch):
    """Rotary positions: the cache runs past max_seq_len (16 here) as a ring of the last 16 keys and
    matches a recompute with a banded mask, for a prefill shorter than, equal to and longer than the
    window, through the cache growing and finished rows being dropped after the ring wrapped."""
    monkeypatch.setattr(fast, "INITIAL_CACHE", 8)
    m = _random(GeneratorConfig(vocab_size=100, dim=32, depth=2, heads=2, max_seq_len=16))
    ids = torch.randint(0, 100, (3, 60), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        band = m.net(ids, attn_mask=_band(60, 16))
        unmasked = m(ids)
    assert not torch.allclose(band[:, 40], unmasked[:, 40])  # the window really changes the answer
    dec, rows = FastEngine(m, 3, 80), [0, 1, 2]
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
        ref = ReferenceEngine(m)
        _close(ref.prefill(ids[:, :prefill]), band[:, prefill - 1], atol=1e-4, rtol=1e-4)
        for t in range(prefill, 60):
            _close(ref.step(ids[:, t]), band[:, t], atol=1e-4, rtol=1e-4)
    full = FastEngine(m, 3, 80, window=0)  # window=0: every key, the unmasked network
    _close(full.prefill(ids[:, :prefill]), unmasked[:, prefill - 1], atol=1e-4, rtol=1e-4)
    for t in range(prefill, 60):
        _close(full.step(ids[:, t]), unmasked[:, t], atol=1e-4, rtol=1e-4)


def test_head_size_comes_from_the_config_and_old_configs_load_with_64(tk):
    """dim_head reaches x-transformers (attn_dim_head) and the fast engine alike; a config saved before the
    key existed loads with 64, and the default is not written, so saved configs stay as they were."""
    cfg = GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, dim_head=16, max_seq_len=64)
    m = _random(cfg)
    assert m.net.attn_layers.layers[0][1].to_q.weight.shape == (2 * 16, 32)
    ids = torch.randint(0, len(tk), (2, 20), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        full = m(ids)
    dec = FastEngine(m, 2, 32)
    _close(dec.prefill(ids[:, :6]), full[:, 5], atol=1e-4, rtol=1e-4)
    for t in range(6, 20):
        _close(dec.step(ids[:, t]), full[:, t], atol=1e-4, rtol=1e-4)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    old = GeneratorConfig(vocab_size=10).to_dict()
    assert "dim_head" not in old and GeneratorConfig.from_dict(old).dim_head == 64


def test_the_gamma_offset_is_read_from_the_network_and_assumed_for_checkpoints(model):
    """x-transformers' norms store gamma - 1 (`unit_offset`): a checkpoint's tensors read with the documented
    offset give the network's own gains."""
    norm = model.net.attn_layers.layers[0][0][0]
    assert float(norm.unit_offset) == fast.CHECKPOINT_GAMMA_OFFSET
    from_tensors = DecoderWeights(model.config, dict(model.state_dict()))
    np.testing.assert_array_equal(from_tensors.arrays.g1, DecoderWeights.from_module(model).arrays.g1)


def test_an_unsupported_configuration_falls_back_to_the_reference_engine_with_one_notice(model, tk, monkeypatch,
                                                                                          capsys):
    pre = [tk.condition_ids("pop", emotion="Q2")] * 2
    want = sample(model, tk, pre, n_bars=2, seed=4, max_tokens=80, decoder="reference")
    monkeypatch.setattr(fast, "unsupported", lambda config: "a head size of 48")
    assert not fast.supports(model.config)
    got = sample(model, tk, pre, n_bars=2, seed=4, max_tokens=80)  # asks for the fast engine
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["emomusic: note: the fast engine does not support a head size of 48; using the reference engine"]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    ck = GeneratorCheckpoint(model.config, dict(model.state_dict()))
    assert isinstance(select_engine(ck, 1, 16), ReferenceEngine)


def test_engine_selection(model):
    weights = DecoderWeights.from_module(model)
    assert isinstance(select_engine(model, 2, 16), FastEngine) and isinstance(select_engine(weights, 2, 16), FastEngine)
    assert isinstance(select_engine(model, 2, 16, prefer="reference"), ReferenceEngine)
    assert fast.supports(model.config)
    assert not fast.supports(GeneratorConfig(vocab_size=10, dim_head=30))  # rotary pairs of half a head
    with pytest.raises(ValueError, match="needs the network"):
        resolve_engine(weights, "reference")
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine(model, "cuda")
    with pytest.raises(ValueError, match="does not support dim_head=30"):
        DecoderWeights(GeneratorConfig(vocab_size=10, dim_head=30), {})


def test_the_reference_engine_keeps_rows_like_the_fast_one(model):
    ids = torch.randint(0, model.config.vocab_size, (4, 30), generator=torch.Generator().manual_seed(3))
    ref, fst = ReferenceEngine(model), FastEngine(model, 4, 64)
    ref.prefill(ids[:, :10])
    fst.prefill(ids[:, :10])
    ref.keep(np.array([0, 2, 3]))
    fst.keep(np.array([0, 2, 3]))
    ref.keep(np.array([1, 2]))  # indices among the kept rows: rows 2 and 3
    fst.keep(np.array([1, 2]))
    for t in range(10, 30):
        _close(ref.step(ids[[2, 3], t]), fst.step(ids[[2, 3], t]), atol=1e-4, rtol=1e-4)
