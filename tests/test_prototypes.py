"""Prototype scoring (training/prototypes.py): pools, spreads and what is written into the clusterer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_bank import _bank

from emomusic.conditioning.clusterer import Clusterer
from emomusic.training.prototypes import (
    BOUNDED,
    SPREAD_ATTRIBUTES,
    card_section,
    in_range,
    pools,
    sampler_id,
    score,
    spread,
    tempo_side,
    write_scores,
)
from emomusic.vocab.emotions import QUADRANT_VA, QUADRANTS


def _clusterer() -> Clusterer:
    return Clusterer.fit(*_bank(seed=4, per_quadrant=12))


def test_pools_are_each_quadrants_nearest_pieces() -> None:
    c = _clusterer()
    got = pools(c, 5)
    for q in QUADRANTS:
        assert len(got[q]) == 5
        assert {int(c.bank_quadrant[i]) for i in got[q]} == {QUADRANTS.index(q)}
        assert int(got[q][0]) == c.nearest(*QUADRANT_VA[q])


def test_spread_is_the_middle_half_of_the_quadrants_own_pieces() -> None:
    c = _clusterer()
    lo, hi, cols = spread(c)["Q2"]
    assert [c.names[i] for i in cols] == list(SPREAD_ATTRIBUTES)
    sub = c.bank[c.bank_quadrant == 1][:, cols]
    np.testing.assert_allclose(lo, np.percentile(sub, 25, axis=0))
    np.testing.assert_allclose(hi, np.percentile(sub, 75, axis=0))
    inside = ((sub >= lo) & (sub <= hi)).mean(0)
    assert ((inside > 0.4) & (inside < 0.7)).all()  # about half of the quadrant's own pieces


def test_score_weighs_emotion_realism_and_tempo_alike_and_drops_what_is_out_of_range() -> None:
    m = {"judge": 1.0, "recognizer": 0.5, "real": 0.75, "typical": 0.25, "tempo_side": 0.5, "in_range": True}
    assert score(m) == 3.0
    assert score({**m, "judge": 0.0, "typical": 1.25}) == score(m)
    assert score({**m, "tempo_side": 0.0, "recognizer": 1.0}) == score(m)
    assert np.isnan(score({**m, "in_range": False}))


def test_tempo_side_rewards_a_tempo_on_the_arousal_side_of_the_other_half() -> None:
    c = _clusterer()
    t = c.names.index("tempo")
    for q in QUADRANTS:
        own = np.flatnonzero(c.bank_quadrant == QUADRANTS.index(q))
        sides = [tempo_side(c, int(i), q) for i in own]
        asked = [c.moved(int(i), *QUADRANT_VA[q])["tempo"] for i in own]
        assert all(0.0 <= s <= 1.0 for s in sides)
        # faster pieces lie further on the high side and less far on the low side
        order = np.argsort(asked)
        expect = np.diff(np.array(sides)[order])
        assert (expect >= 0).all() if QUADRANT_VA[q][1] > 0 else (expect <= 0).all()
        assert len(set(sides)) > 1
    assert c.bank[:, t].std() > 0


def test_in_range_keeps_the_middle_and_drops_the_quadrants_extremes() -> None:
    c = _clusterer()
    own = np.flatnonzero(c.bank_quadrant == QUADRANTS.index("Q2"))
    for name in BOUNDED:
        asked = np.array([c.moved(int(i), *QUADRANT_VA["Q2"])[name] for i in own])
        assert not in_range(c, int(own[np.argmax(asked)]), "Q2")
        assert not in_range(c, int(own[np.argmin(asked)]), "Q2")
    assert any(in_range(c, int(i), "Q2") for i in own)


def test_written_scores_steer_the_pick_and_the_card_says_so(tmp_path) -> None:
    c = _clusterer()
    c.save(tmp_path / "clusterer", model_card="# Clusterer\n\n## Data\n\ntext\n")
    near = pools(c, 6)
    scores = {}
    for q in QUADRANTS:
        for rank, i in enumerate(near[q]):
            good = rank == 4  # the 5th nearest is the best in every quadrant
            out = rank == 5  # the 6th is better still, but asks for something outside the quadrant's range
            m = {"judge": float(good or out), "recognizer": float(good or out), "real": 1.0, "typical": 0.5,
                 "typical_tempo": 0.25, "tempo_side": 0.5, "in_range": not out, "quadrant": q, "rank": rank}
            scores[c.bank_ids[int(i)]] = {**m, "score": score(m)}
    write_scores(tmp_path / "clusterer", scores, keep=1)
    back = Clusterer.load(tmp_path / "clusterer")
    for q in QUADRANTS:
        assert back.nearest(*QUADRANT_VA[q]) == int(near[q][4])
        assert int(near[q][5]) not in {back.nearest(*QUADRANT_VA[q], k=5, seed=s) for s in range(30)}
    card = (tmp_path / "clusterer" / "MODEL_CARD.md").read_text()
    assert card.count("## Prototypes") == 1 and "## Data" in card
    assert "| Q1 | 3 nearest (EmoGen) | 0.00 | 0.00 | 1.00 | 0.50 | 0.25 | 0.50 | 1.00 |" in card
    assert "| Q1 | 1 best | 1.00 | 1.00 | 1.00 | 0.50 | 0.25 | 0.50 | 1.00 |" in card
    write_scores(tmp_path / "clusterer", scores, keep=1)  # rewriting replaces the section
    assert (tmp_path / "clusterer" / "MODEL_CARD.md").read_text().count("## Prototypes") == 1
    assert "## Prototypes" in card_section(scores, 1)


def test_a_pinned_clusterer_answers_every_query_with_its_piece_moved_to_the_point() -> None:
    from emomusic.training.prototypes import _Pinned

    c = _clusterer()
    i = int(pools(c, 5)["Q3"][3])
    pinned = _Pinned.of(c, i)
    emo, values, source, _ = pinned.query("sad", k=3, seed=7)
    assert source == c.bank_ids[i] and emo.word == "sad"
    assert values == c.moved(i, emo.valence, emo.arousal)


def test_cached_measurements_are_keyed_by_the_sampling_rules(tmp_path, monkeypatch) -> None:
    """Measurements taken under other sampling rules are not reused: editing a rule changes the key."""
    import shutil

    import emomusic.generation.guidance as guidance
    import emomusic.generation.processors as processors

    rules = tmp_path / "processors"
    shutil.copytree(Path(processors.__file__).parent, rules, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(processors, "__file__", str(rules / "__init__.py"))
    monkeypatch.setattr(guidance, "__file__", str(shutil.copy(guidance.__file__, tmp_path / "guidance.py")))
    before = sampler_id()
    assert before == sampler_id() and len(before) == 8
    (rules / "feedback.py").write_text((rules / "feedback.py").read_text() + "\n# a different rule\n")
    assert sampler_id() != before


def test_score_pools_measures_what_can_be_picked_once_and_resumes(tmp_path, monkeypatch) -> None:
    """Out-of-range pieces past the nearest few are never generated; a second run reads the cache."""
    from types import SimpleNamespace

    import emomusic.training.prototypes as P

    c = _clusterer()
    em = SimpleNamespace(clusterer=c)
    calls: list[int] = []

    def fake_measure(em, index, quadrant, per_piece, seed, judge, reference, ranges, folder):
        calls.append(index)
        return {"judge": 1.0, "recognizer": 1.0, "real": 0.5, "typical": 0.5}

    monkeypatch.setattr(P, "measure_piece", fake_measure)
    cache = tmp_path / "cache.json"
    got = P.score_pools(em, None, None, size=8, per_piece=2, cache=cache)
    pool = pools(c, 8)
    for q in QUADRANTS:
        for rank, i in enumerate(pool[q]):
            row = got[c.bank_ids[int(i)]]
            measured = int(i) in calls
            assert measured == (row["in_range"] or rank < P.EMOGEN_NEAREST)
            assert np.isnan(row["score"]) == (not row["in_range"])
    assert len(calls) == len(set(calls))
    assert len(calls) < sum(len(p) for p in pool.values())  # the synthetic pools have pieces to skip
    n = len(calls)
    again = P.score_pools(em, None, None, size=8, per_piece=2, cache=cache)
    assert len(calls) == n  # nothing measured twice
    assert {k: v["score"] for k, v in again.items() if not np.isnan(v["score"])} == \
        {k: v["score"] for k, v in got.items() if not np.isnan(v["score"])}
