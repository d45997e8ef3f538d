"""Chord plans: the learned chain's draws, its checkpoint, and the plans a generated piece follows."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.conditioning.progressions import MODES, ProgressionModel, load_progressions
from emomusic.vocab.emotions import QUADRANTS

# I, IV, V, vi (major) and i, iv, V, VI (minor) as (root above the tonic, triad index)
CHORDS = np.array([[0, 0], [5, 0], [7, 0], [9, 1], [0, 1], [5, 1], [8, 0]], dtype=np.int64)


def _model() -> ProgressionModel:
    """A chain where I goes to IV or V, IV to V, V to I or vi, vi to IV; minor: i -> iv | VI, iv -> V, V -> i,
    VI -> iv. Every quadrant shares it."""
    t = np.zeros((len(CHORDS), len(CHORDS)))
    t[0, [1, 2]] = 0.5
    t[1, 2] = 1.0
    t[2, [0, 3]] = 0.5
    t[3, 1] = 1.0
    t[4, [5, 6]] = 0.5
    t[5, 2] = 1.0
    t[6, 5] = 1.0
    t[2, [0, 3]] = [0.5, 0.5]
    table = np.zeros((len(QUADRANTS), len(MODES), len(CHORDS), len(CHORDS)))
    table[:, 0] = t
    minor = t.copy()
    minor[2] = 0.0
    minor[2, 4] = 1.0  # in minor, V goes home to i
    table[:, 1] = minor
    return ProgressionModel(CHORDS, table)


def test_a_plan_follows_the_chain_and_arrives_where_it_is_asked() -> None:
    m = _model()
    t = m.table("Q1", "major")
    for seed in range(20):
        plan = m.plan("Q1", "major", 6, np.random.default_rng(seed), first=m.tonic("major"), last=m.tonic("major"))
        assert plan[0] == plan[-1] == m.index(0, 0)
        assert all(t[a, b] > 0 for a, b in zip(plan[:-1], plan[1:], strict=True))  # only the chain's moves
    a = m.plan("Q3", "minor", 8, np.random.default_rng(1), first=m.tonic("minor"))
    b = m.plan("Q3", "minor", 8, np.random.default_rng(1), first=m.tonic("minor"))
    assert np.array_equal(a, b)
    assert m.plan("Q2", "major", 3, np.random.default_rng(0), after=m.index(5, 0))[0] == m.index(7, 0)  # IV -> V
    cadences = {m.tonic("major"), m.dominant()}  # a phrase that may end on I or V ends on one of them
    ends = {int(m.plan("Q1", "major", 5, np.random.default_rng(s), first=0, last=sorted(cadences))[-1])
            for s in range(30)}
    assert ends == cadences


def test_chords_read_as_pitch_classes_and_numerals_in_their_key() -> None:
    m = _model()
    assert m.pitch_classes(m.index(7, 0), tonic=2) == (1, 4, 9)  # D major's V: A C# E
    assert m.pitch_classes(m.index(8, 0), tonic=9) == (0, 5, 9)  # A minor's VI: F A C
    assert [m.name(i, "major") for i in range(4)] == ["I", "IV", "V", "vi"]
    assert [m.name(i, "minor") for i in range(4, 7)] == ["i", "iv", "VI"]


def test_the_checkpoint_round_trips(tmp_path) -> None:
    m = _model()
    path = m.save(tmp_path / "progressions", {"prior": 1.0}, "# card\n")
    back = load_progressions(path)
    assert np.array_equal(back.chords, m.chords) and np.allclose(back.transitions, m.transitions)


def test_generated_sections_follow_their_plans_and_a_return_keeps_its_first_statements() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    em.progressions = _model()
    off = em.generate(emotion="happy", bars=8, seed=5, expression=False, progression=False)[0]
    assert all("chords" not in s for s in off.sections)
    assert all("chords" in s for s in em.generate(emotion="happy", bars=8, seed=5, expression=False)[0].sections)
    cand = em.generate(emotion="happy", bars=8, seed=5, form="ABA", expression=False, progression=True)[0]
    plans = [s["chords"] for s in cand.sections]
    assert [len(p) for p in plans] == [s["bars"] for s in cand.sections]
    assert plans[0][0] == "I" and plans[-1][-1] == "I"  # opens and closes on the tonic
    assert len(plans[2]) > len(plans[0]) and plans[2][: len(plans[0])] == plans[0]  # the return keeps A's chords
    sad = em.generate(emotion="sad", bars=4, seed=5, expression=False, progression=True)[0]
    assert sad.sections[0]["chords"][0] == sad.sections[0]["chords"][-1] in ("I", "i")  # one section: both ends


@pytest.mark.parametrize("mode", MODES)
def test_the_shipped_plans_open_and_close_on_the_tonic_and_move_between(mode: str) -> None:
    from emomusic.settings import checkpoints_root

    m = load_progressions(checkpoints_root() / "progressions")
    rng = np.random.default_rng(7)
    tonic = m.tonic(mode)
    plans = [m.plan(q, mode, 16, rng, first=tonic, last=tonic) for q in QUADRANTS for _ in range(10)]
    share = np.mean([np.mean(p == tonic) for p in plans])
    assert 0.2 < share < 0.7  # real openings: 0.28-0.30 of bars on the tonic chord (median), never all of them
    assert all(p[0] == p[-1] == tonic for p in plans)


def test_each_candidate_draws_its_own_plan_and_a_seed_repeats_it() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    em.progressions = _model()

    def plans(seed: int) -> list[tuple]:
        cands = em.generate(emotion="happy", bars=8, seed=seed, candidates=4, expression=False, progression=True,
                            rank=False)
        return [tuple(tuple(s["chords"]) for s in c.sections) for c in cands]

    first = plans(11)
    assert len(set(first)) > 1 and plans(11) == first


def test_training_counts_consecutive_named_bars_and_mixes_in_the_prior() -> None:
    from emomusic.training.progressions import _counts, _tables

    vocab = CHORDS[:4]  # I IV V vi
    bars = np.array([[0, 0], [5, 0], [7, 0], [0, 0], [-1, -1], [0, 0], [2, 1]])  # I IV V I (none) I ii
    counts = _counts([("Q1", "major", bars)], vocab)[("Q1", "major")]
    assert counts[0, 1] == counts[1, 2] == counts[2, 0] == 1 and counts.sum() == 3  # no chord, ii: no transition
    tables = _tables({("Q1", "major"): counts}, {}, len(vocab), prior=1.0)
    assert np.allclose(tables.sum(-1), 1.0)
    assert tables[0, 0, 0].argmax() == 1 and tables[0, 0, 0, 1] == pytest.approx((1 + 0.25) / 2)
    assert np.allclose(tables[1, 0], 0.25)  # a quadrant without counts is the prior alone


def test_plans_are_the_default_and_a_file_recorded_before_them_regenerates_without() -> None:
    from emomusic.request import GenerationRequest

    now = GenerationRequest(emotion="sad", seed=3)
    assert now.progression and GenerationRequest.from_provenance(now.provenance()).progression
    old = {k: v for k, v in now.provenance().items() if k != "progression"}  # a record from before the field
    assert GenerationRequest.from_provenance(old).progression is False
    # the token baseline draws no plan, and the default is not worth a notice
    assert not GenerationRequest(emotion="sad", method="token").resolve().notices


def test_a_plan_moves_off_the_tonic_after_one_bar():
    chords = np.array([[0, 0], [5, 0], [7, 0]])  # I, IV, V in major
    stay = np.array([[0.9, 0.05, 0.05], [0.5, 0.4, 0.1], [0.5, 0.1, 0.4]])  # a chain that loves the tonic
    model = ProgressionModel(chords, np.broadcast_to(stay, (len(QUADRANTS), len(MODES), 3, 3)).copy())
    rng = np.random.default_rng(0)
    for _ in range(50):
        plan = model.plan("Q1", "major", 8, rng, first=0)
        assert not ((plan[1:] == 0) & (plan[:-1] == 0)).any()  # never I, I
        runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, plan, -1]) != 0))
        assert runs.max() <= 2  # and nothing else longer than two bars
