"""Prototype scoring (training/prototypes.py): pools, spreads and what is written into the clusterer."""

from __future__ import annotations

import numpy as np
from synthetic_bank import _bank

from emomusic.conditioning.clusterer import Clusterer
from emomusic.training.prototypes import SPREAD_ATTRIBUTES, card_section, pools, score, spread, write_scores
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


def test_score_weighs_emotion_and_realism_alike() -> None:
    m = {"judge": 1.0, "recognizer": 0.5, "real": 0.75, "typical": 0.25}
    assert score(m) == 2.5
    assert score({**m, "judge": 0.0, "typical": 1.25}) == score(m)


def test_written_scores_steer_the_pick_and_the_card_says_so(tmp_path) -> None:
    c = _clusterer()
    c.save(tmp_path / "clusterer", model_card="# Clusterer\n\n## Data\n\ntext\n")
    near = pools(c, 6)
    scores = {}
    for q in QUADRANTS:
        for rank, i in enumerate(near[q]):
            good = rank == 4  # the 5th nearest is the best in every quadrant
            scores[c.bank_ids[int(i)]] = {"judge": float(good), "recognizer": float(good), "real": 1.0,
                                          "typical": 0.5, "typical_tempo": 0.25, "score": 3.5 if good else 1.5,
                                          "quadrant": q, "rank": rank}
    write_scores(tmp_path / "clusterer", scores, keep=1)
    back = Clusterer.load(tmp_path / "clusterer")
    for q in QUADRANTS:
        assert back.nearest(*QUADRANT_VA[q]) == int(near[q][4])
    card = (tmp_path / "clusterer" / "MODEL_CARD.md").read_text()
    assert card.count("## Prototypes") == 1 and "## Data" in card
    assert "| Q1 | 3 nearest (EmoGen) | 0.00 | 0.00 | 1.00 | 0.50 | 0.25 |" in card
    assert "| Q1 | 1 best | 1.00 | 1.00 | 1.00 | 0.50 | 0.25 |" in card
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
