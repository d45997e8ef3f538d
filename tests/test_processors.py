"""Sampling rules: each processor's compiled twin equals its numpy specification, and the rules do what
they say (the draw's nucleus and top-k, the grammar's fallbacks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.generation.guidance import Guidance
from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.generation.processors import (
    DensityFeedback,
    GrammarMask,
    LogitsProcessor,
    RegisterFeedback,
    RemiState,
    RemiTables,
    TopKTopP,
    TriadHold,
    build_processors,
)
from emomusic.generation.processors.limits import VocabularyLimits
from emomusic.generation.sampling import sample
from emomusic.music.tokenizer import BAR, BOS, DURATION, PITCH, POSITION, TEMPO, TIMESIG, MusicTokenizer


@pytest.fixture(scope="module")
def tk() -> MusicTokenizer:
    return MusicTokenizer()


@pytest.fixture(scope="module")
def tables(tk) -> RemiTables:
    return RemiTables.of(tk)


@pytest.fixture(scope="module")
def model(tk) -> Generator:
    torch.manual_seed(0)
    m = Generator(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, max_seq_len=128)).eval()
    with torch.no_grad():  # larger weights than the init so positions and layers really matter
        for p in m.parameters():
            p.normal_(0, 0.3)
    return m


def _random_state(tk: MusicTokenizer, rng: np.random.Generator, rows: int) -> RemiState:
    """Every token type before, positions, bar lengths, bars, tempo seen, finished rows, notes."""
    st = RemiState.start(rows, BOS)
    st.prev_type[:] = rng.choice(np.unique(tk.types), rows)
    st.pos[:] = rng.integers(-1, 40, rows)
    st.bar_len[:] = rng.choice([16, 24, 32, 48], rows)
    st.bars[:] = rng.integers(0, 6, rows)
    st.tempo_done[:] = rng.random(rows) < 0.5
    st.done[:] = rng.random(rows) < 0.2
    st.beats_before[:] = rng.uniform(0, 40, rows)
    st.n_notes[:] = rng.integers(0, 400, rows)
    st.pitch_sum[:] = st.n_notes * rng.uniform(20, 100, rows)
    st.last_pitch[:] = rng.integers(21, 109, rows)
    return st


def _guides(rng: np.random.Generator, rows: int) -> list[Guidance]:
    """Every kind of guidance, on some rows and not others, far enough off target that the clips bind."""
    return [Guidance(density=float(rng.uniform(0.2, 6)) if i % 3 else None,
                     pitch_mean=float(rng.uniform(40, 80)) if i % 4 else None, density_gain=float(rng.uniform(0, 3)),
                     register_gain=float(rng.uniform(0, 8)), tonic=i % 12, mode="minor" if i % 2 else "major",
                     triad_hold=0.5 if i % 5 == 0 else 0.0, tempo=90.0 if i % 2 else None,
                     velocity=60.0 if i % 3 == 0 else None, time_signature=(3, 4) if i % 4 else None)
            for i in range(rows)]


def test_every_compiled_twin_equals_its_specification(tk, tables):
    """The contract a new rule signs: `__call__` (compiled where `compiled`) does what `spec` states."""
    rng = np.random.default_rng(2)
    rows = 48
    for n_bars in (1, 2, 4):
        guides = _guides(rng, rows)
        procs = [DensityFeedback(tk, tables, guides), RegisterFeedback(tk, tables, guides),
                 TriadHold(tk, tables, guides), VocabularyLimits(tk, guides),
                 GrammarMask(tk, tables, n_bars, rng.random(rows) < 0.5, rng.random(rows) < 0.5)]
        assert {type(p).__name__ for p in procs if p.compiled} == {"DensityFeedback", "RegisterFeedback",
                                                                    "GrammarMask"}
        for proc in procs:
            st = _random_state(tk, rng, rows)
            x = rng.standard_normal((rows, len(tk))).astype(np.float32)
            x[:4, tk.ids_of_type(BAR)] = -np.inf  # an earlier rule left some rows nothing
            x[:4] = -np.inf
            want = x.copy()
            proc.spec(st, want)
            proc(st, x)
            if isinstance(proc, GrammarMask):
                np.testing.assert_array_equal(x, want)
            else:  # float64 terms rounded into float32: equal to the last bits
                np.testing.assert_allclose(x, want, rtol=0, atol=1e-5)


def test_feedback_twins_equal_their_specification_after_a_prefix(tk, tables):
    """With a prefix (`start`) left out of the counts, the compiled feedback still does what `spec` states."""
    rng = np.random.default_rng(4)
    rows = 48
    guides = _guides(rng, rows)
    st = _random_state(tk, rng, rows)
    start = _random_state(tk, rng, rows)
    share = rng.uniform(0, 1, rows)  # the prefix wrote a part of what has been written so far
    start.n_notes[:], start.pitch_sum[:] = np.floor(st.n_notes * share), st.pitch_sum * share
    start.beats_before[:], start.pos[:] = st.beats_before * share, -1
    for proc in (DensityFeedback(tk, tables, guides, start), RegisterFeedback(tk, tables, guides, start)):
        x = rng.standard_normal((rows, len(tk))).astype(np.float32)
        want = x.copy()
        proc.spec(st, want)
        proc(st, x)
        assert np.isfinite(x).all()
        np.testing.assert_allclose(x, want, rtol=0, atol=1e-5)


def test_feedback_leaves_the_prefix_out_of_its_counts(tk, tables):
    """A section drawn after an earlier one (its context) is steered by its own notes: the earlier
    section's surplus and register, written to other targets, do not hold the new one back."""
    guides = [Guidance(density=2.0, density_gain=1.0, pitch_mean=60.0, register_gain=4.0, time_signature=None)]
    start = RemiState.start(1, BOS)  # 8 bars at 8 notes a beat around C6
    start.pos[:], start.beats_before[:], start.n_notes[:], start.pitch_sum[:] = -1, 32.0, 256.0, 256.0 * 84
    now = RemiState.start(1, BOS)  # 2 bars on target since, at the target's register
    now.prev_type[:] = tk.types[tk.ids_of_type(DURATION)[0]]
    now.pos[:], now.beats_before[:] = 0, 40.0
    now.n_notes[:], now.pitch_sum[:] = 256.0 + 16, 256.0 * 84 + 16 * 60
    pitches = tk.ids_of_type(PITCH)
    for proc in (DensityFeedback, RegisterFeedback):
        tilt = []
        for begun in (start, None):
            x = np.zeros((1, len(tk)), dtype=np.float32)
            proc(tk, tables, guides, begun)(now, x)
            tilt.append(float(np.abs(x[0, pitches]).max()))
        assert tilt[0] < 0.1 < 1.0 < tilt[1], proc.__name__  # counting the prefix: a large tilt


def test_density_counts_the_last_bars_of_a_long_piece_not_its_whole_past(tk, tables):
    """Past HORIZON_BARS bars, a dense opening no longer holds a row back (it had held a long piece's second
    half to silence); within them, the count is the whole draw's as before."""
    from emomusic.generation.processors.feedback import HORIZON_BARS

    guides = [Guidance(density=2.0, density_gain=2.5, time_signature=None)]
    pitches = tk.ids_of_type(PITCH)

    def walk(bars: int) -> tuple[RemiState, DensityFeedback]:
        """A row through `bars` 4/4 bars: the first 4 at 8 notes a beat, the rest on target."""
        proc = DensityFeedback(tk, tables, guides)
        st = RemiState.start(1, BOS)
        for bar in range(1, bars + 1):
            st.pos[:], st.bars[:], st.beats_before[:] = -1, bar, 4.0 * (bar - 1)
            proc(st, np.zeros((1, len(tk)), dtype=np.float32))
            st.n_notes[:] += 32 if bar <= 4 else 8
        st.pos[:], st.beats_before[:] = 0, 4.0 * bars  # the next bar's first onset, a note just written
        st.bars[:], st.prev_type[:] = bars + 1, tk.types[tk.ids_of_type(DURATION)[0]]
        return st, proc

    for bars, far in ((HORIZON_BARS + 4, True), (HORIZON_BARS - 1, False)):
        st, proc = walk(bars)
        tilts = []
        for p in (proc, DensityFeedback(tk, tables, guides)):  # the second knows no bar: counts the whole draw
            x, spec = np.zeros((2, 1, len(tk)), dtype=np.float32)
            p(st, x)
            p.spec(st, spec)
            np.testing.assert_allclose(x, spec, atol=1e-5)
            tilts.append(float(np.abs(x[0, pitches]).max()))
        if far:
            assert tilts[0] < 0.3 < 0.6 < tilts[1]
        else:
            assert tilts[0] == pytest.approx(tilts[1])


def test_density_feedback_treats_the_bar_line_as_the_rest_of_the_bar(tk, tables):
    """Behind its count, a row finds the next bar line as costly as a Position at the bar's end (it skips
    the same beats), so it does not leave the rest of the bar empty; ahead of it, as welcome."""
    guides = [Guidance(density=4.0, density_gain=2.5, time_signature=None)] * 2
    st = RemiState.start(2, BOS)
    st.prev_type[:] = tk.types[tk.ids_of_type(DURATION)[0]]
    st.pos[:], st.bar_len[:], st.beats_before[:] = 12, 32, 4.0  # 1.5 beats into the second 4/4 bar
    st.n_notes[:] = [2.0, 60.0]  # far behind 4 a beat; far ahead
    proc = DensityFeedback(tk, tables, guides)
    x = np.zeros((2, len(tk)), dtype=np.float32)
    proc(st, x)  # the compiled twin
    positions = tk.ids_of_type(POSITION)
    last = positions[tk.values[positions] < 4].max()  # the last position of a 4/4 bar
    assert x[0, tk.bar_id] < x[0, last] < 0 < x[1, last] < x[1, tk.bar_id]
    spec = np.zeros_like(x)
    proc.spec(st, spec)
    np.testing.assert_allclose(x, spec, atol=1e-5)


def test_feedback_tilts_are_large_where_targets_are_far(tk, tables):
    rng = np.random.default_rng(2)
    guides = _guides(rng, 48)
    st = _random_state(tk, rng, 48)
    for proc in (DensityFeedback(tk, tables, guides), RegisterFeedback(tk, tables, guides)):
        x = np.zeros((48, len(tk)), dtype=np.float32)
        proc(st, x)
        assert np.abs(x).max() > 3


def test_compiled_state_update_follows_the_specification(tk, tables):
    """Random token streams (every type, in any order): the compiled update keeps every counter equal."""
    rng = np.random.default_rng(3)
    b = 16
    fast, ref = RemiState.start(b, BOS), RemiState.start(b, BOS)
    for _ in range(300):
        tokens = rng.integers(0, len(tk), b)
        tokens[rng.random(b) < 0.1] = tk.bar_id  # one id among hundreds: make bars common
        fast.update(tables, tokens)
        ref.update_spec(tables, tokens)
        for f in RemiState._fields:
            np.testing.assert_array_equal(getattr(fast, f), getattr(ref, f), err_msg=f)
    assert fast.bars.max() > 5 and fast.n_notes.max() > 20 and fast.done.any()


def _loop_mask(g: GrammarMask, st: RemiState, allowed: np.ndarray) -> np.ndarray:
    """The grammar written as a per-row loop (an independent oracle for the vectorised spec)."""
    t = g.tables
    m = g.table[st.prev_type] & allowed
    for b in range(len(m)):
        if st.prev_type[b] in (DURATION, BAR, TIMESIG, TEMPO):
            bad = (t.pos_vals <= st.pos[b]) | (t.pos_vals >= st.bar_len[b])
            m[b, t.pos_ids[bad]] = False
        if st.tempo_done[b] or st.bars[b] > 1:
            m[b] &= ~t.is_tempo
        elif g.force_tempo[b] and st.prev_type[b] == POSITION:
            m[b] &= t.is_tempo
        if g.force_timesig[b] and st.prev_type[b] == BAR:
            m[b] &= t.is_timesig
        if st.bars[b] < g.n_bars:
            m[b, t.eos_id] = False
        if st.done[b]:
            m[b] = False
            m[b, t.eos_id] = True
        if not m[b].any():
            m[b, t.bar_id if st.bars[b] < g.n_bars else t.eos_id] = True
    return m


def test_grammar_mask_equals_the_per_row_loop_at_every_step_of_a_run(model, tk, monkeypatch):
    """At every step of a real sampling run: the spec's mask, and the -inf the compiled twin writes."""
    original = GrammarMask.__call__
    checked = []

    def both(self, state, x):
        want = np.where(_loop_mask(self, state, x > -np.inf), x, -np.inf).astype(np.float32)
        spec = x.copy()
        self.spec(state, spec)
        original(self, state, x)
        np.testing.assert_array_equal(spec, want)
        np.testing.assert_array_equal(x, want)
        checked.append(1)

    monkeypatch.setattr(GrammarMask, "__call__", both)
    guides = [Guidance(tempo=90, velocity=60), Guidance(time_signature=None), Guidance(time_signature=(3, 4))]
    sample(model, tk, [tk.condition_ids("pop", emotion="Q1")] * 3, n_bars=3, guidance=guides, seed=3,
           max_tokens=300)
    assert len(checked) > 50


def test_a_row_left_with_nothing_closes_its_bar_or_ends(tk, tables):
    g = GrammarMask(tk, tables, 2, np.zeros(2, dtype=bool), np.zeros(2, dtype=bool))
    st = RemiState.start(2, BOS)
    st.prev_type[:] = DURATION
    st.bars[:] = [1, 2]
    x = np.full((2, len(tk)), -np.inf, dtype=np.float32)  # earlier rules forbade everything
    g(st, x)
    assert [np.flatnonzero(np.isfinite(r)).tolist() for r in x] == [[tk.bar_id], [tk.eos_id]]


def test_compiled_twins_sample_the_specifications_tokens(model, tk, monkeypatch):
    guides = [Guidance(tempo=90, time_signature=(3, 4), density=2.0, pitch_mean=64.0, tonic=0, mode="major",
                       velocity=70, triad_hold=0.5),
              Guidance(time_signature=None, density=0.5, pitch_mean=50.0), Guidance(time_signature=None)]
    pre = [tk.condition_ids("pop", emotion="Q1")] * 3
    kw = dict(n_bars=3, guidance=guides, seed=3, max_tokens=200, workers=1)
    compiled = sample(model, tk, pre, **kw)
    monkeypatch.setattr(LogitsProcessor, "__call__", lambda self, state, x: self.spec(state, x))
    for cls in (DensityFeedback, RegisterFeedback, GrammarMask):
        monkeypatch.delattr(cls, "__call__")
    monkeypatch.setattr(RemiState, "update", RemiState.update_spec)
    reference = sample(model, tk, pre, **kw)
    assert sum(len(t) for t in compiled) > 100
    for x, y in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(x, y)


def test_processors_are_built_for_what_the_guidance_asks(tk, tables):
    names = [type(p).__name__ for p in build_processors(tk, tables, [Guidance(time_signature=None)], 4)]
    assert names == ["GrammarMask"]  # nothing asked: only the grammar
    g = Guidance(tonic=0, mode="major", density=2.0, pitch_mean=60.0, triad_hold=0.5, velocity=60)
    names = [type(p).__name__ for p in build_processors(tk, tables, [g], 4)]
    assert names == ["PitchBias", "DensityFeedback", "RegisterFeedback", "TriadHold", "VocabularyLimits",
                     "GrammarMask"]


def test_draw_keeps_the_nucleus_and_the_top_k_and_follows_the_probabilities():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]], dtype=np.float32))
    u = np.linspace(0, 1, 1000, endpoint=False)

    def drawn(top_p, top_k=0):
        return np.array([TopKTopP(top_p, top_k)(logits, np.array([x, x])) for x in u])

    nucleus = drawn(top_p=0.7)  # 0.5 < 0.7 <= 0.8: the crossing token stays, the rest go
    assert set(nucleus[:, 0]) == {0, 1} and set(nucleus[:, 1]) == {3, 2}
    assert abs((nucleus[:, 0] == 0).mean() - 0.5 / 0.8) < 0.01  # renormalised over the kept tokens
    assert set(drawn(top_p=1.0)[:, 0]) == {0, 1, 2, 3}
    assert abs((drawn(top_p=1.0)[:, 0] == 3).mean() - 0.05) < 0.01
    assert set(drawn(top_p=1.0, top_k=2)[:, 1]) == {3, 2}
    masked = logits.copy()
    masked[:, 0] = -np.inf  # forbidden tokens are never drawn
    assert 0 not in np.array([TopKTopP(1.0)(masked, np.array([x, x])) for x in u])[:, 0]


def test_compiled_draw_picks_the_specifications_tokens():
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
        d = TopKTopP(float(rng.choice([0.5, 0.9, 0.98, 1.0])), int(rng.choice([0, 1, 2, 5, 1000])))
        np.testing.assert_array_equal(d(x, u), d.spec(x, u))


def test_draw_takes_the_nucleus_of_the_top_k_not_of_the_whole_row(model, tk):
    """top_k and top_p together: the nucleus is measured against the top-k's renormalised mass, as the
    torch filters did (top_p_filter(top_k_filter(logits))). Over p = (0.4, 0.3, 0.2, 0.1), top-2 then
    top_p 0.5 keeps only token 0 (0.4 / 0.7 > 0.5); a nucleus of the whole row capped at k kept token 1 too."""
    logits = np.log(np.array([[0.4, 0.3, 0.2, 0.1]], dtype=np.float32))
    u = np.linspace(0, 1, 200, endpoint=False)
    assert {int(TopKTopP(0.5, 2)(logits, np.array([x]))[0]) for x in u} == {0}
    # top-3 renormalised is (4, 3, 2) / 9: top_p 0.7 keeps two (4/9 < 0.7 <= 7/9), and draws them 4:3
    got = np.array([TopKTopP(0.7, 3)(logits, np.array([x]))[0] for x in u])
    assert set(got.tolist()) == {0, 1} and abs((got == 0).mean() - 4 / 7) < 0.01
    # in the loop: top-2 with top_p 0.5 is greedy decoding (the top token's share of the top two is >= 0.5)
    pre = [tk.condition_ids("pop", emotion="Q2")] * 3
    greedy = sample(model, tk, pre, n_bars=2, top_k=1, seed=0, max_tokens=60)
    for seed in (1, 2):
        got = sample(model, tk, pre, n_bars=2, top_k=2, top_p=0.5, seed=seed, max_tokens=60)
        assert all(np.array_equal(a, b) for a, b in zip(got, greedy, strict=True))


def test_a_part_after_music_under_other_targets_is_steered_by_its_own_notes(model, tk):
    """`count_prefix=False` (a trajectory's later sections): a dense prefix written to another target
    does not hold the new music to near silence, as counting it does."""
    from emomusic.music.notes import Notes

    dense = Notes.from_arrays(np.tile(np.arange(48, 80, 2), 8), np.repeat(np.arange(8) * 0.5, 16),
                              np.full(128, 0.5), np.full(128, 80), tempo=120)  # a bar at 32 notes a beat
    prefix = [*tk.condition_ids("pop", emotion="Q1"), *tk.encode(dense).tolist()]
    guide = Guidance(density=2.0, density_gain=3.0, time_signature=None)
    written = {}
    for counts in (True, False):
        out = [sample(model, tk, [prefix], n_bars=4, guidance=guide, seed=s, max_tokens=300, count_prefix=counts)[0]
               for s in range(4)]
        written[counts] = sum(len(tk.decode(o)) for o in out)
    assert written[False] > 1.5 * written[True], written


def test_the_cadence_leans_to_the_dominant_before_the_last_bar_and_to_the_tonic_triad_in_it(tk, tables):
    from emomusic.generation.processors import Cadence

    guides = [Guidance(tonic=2, mode="major", cadence=1.0), Guidance(tonic=9, mode="minor", cadence=1.0),
              Guidance(tonic=2, mode="major")]
    rule = Cadence(tk, tables, guides, n_bars=4)
    assert rule.active and not Cadence(tk, tables, guides[2:], n_bars=4).active
    pitch_ids = tk.ids_of_type(PITCH)
    classes = tk.values[pitch_ids].astype(int) % 12

    def tilted(bars: int, pos: int) -> np.ndarray:  # each row's tilt per pitch class, 0 where untouched
        st = RemiState.start(3, BOS)
        st.bars[:], st.pos[:], st.bar_len[:] = bars, pos, 48  # a 6/4 bar (8 position units a beat): 24 is its middle
        logits = np.zeros((3, len(tk)), dtype=np.float32)
        rule(st, logits)
        return np.stack([[logits[r, pitch_ids][classes == c][0] for c in range(12)] for r in range(3)])

    assert not tilted(3, 12).any() and not tilted(2, 40).any()  # the first half of the bar before; earlier bars
    before, last = tilted(3, 24), tilted(4, 0)
    assert set(np.flatnonzero(before[0] > 0)) == {9, 1, 4, 7}  # D major's V7: A C# E G
    assert set(np.flatnonzero(before[1] > 0)) == {4, 8, 11, 2}  # A minor's: E G# B D (the raised leading tone)
    assert set(np.flatnonzero(last[0] > 0)) == {2, 6, 9} and set(np.flatnonzero(last[1] > 0)) == {9, 0, 4}
    assert (before[0][before[0] <= 0] == -1.0).all() and not before[2].any() and not last[2].any()


def test_a_chord_plan_moves_the_triad_bonus_from_bar_to_bar_aligned_to_the_calls_end(tk, tables):
    from emomusic.generation.processors import ChordPlan, PitchBias

    plan = ((0, 4, 7), (0, 5, 9), (2, 7, 11))  # C major: I, IV, V
    guides = [Guidance(tonic=0, mode="major", chords=plan), Guidance(tonic=0, mode="major")]
    pitch_ids = tk.ids_of_type(PITCH)
    classes = tk.values[pitch_ids].astype(int) % 12
    static = PitchBias(tk, guides).bias[:, pitch_ids]
    # the planned row's static bias no longer favours the tonic triad; the other row's still does
    assert static[0][classes == 0][0] == static[0][classes == 2][0]
    assert static[1][classes == 0][0] - static[1][classes == 2][0] == pytest.approx(Guidance().triad_bias)

    rule = ChordPlan(tk, guides, n_bars=5)  # two bars of context, then the three planned ones
    assert rule.active and not ChordPlan(tk, guides[1:], n_bars=5).active

    def favoured(bars: int) -> set[int]:
        st = RemiState.start(2, BOS)
        st.bars[:] = bars
        logits = np.zeros((2, len(tk)), dtype=np.float32)
        rule(st, logits)
        assert not logits[1].any() and not np.delete(logits[0], pitch_ids).any()
        return set(classes[logits[0, pitch_ids] > 0].tolist())

    assert favoured(3) == {0, 4, 7} and favoured(4) == {0, 5, 9} and favoured(5) == {2, 7, 11}
    assert favoured(2) == {0, 4, 7}  # a bar before the plan takes its first chord
