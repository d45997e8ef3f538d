"""Ranking weights tuned on generated batches (training.ranking), realism against real ranges, and the
recognizer as the selector's emotion head. Tiny measurements built in code."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.evaluation.musicality import REALISM, RealReference
from emomusic.pipeline import EmoMusic
from emomusic.recognition.api import log_emotion
from emomusic.training import ranking
from emomusic.vocab.emotions import QUADRANTS


def _measured() -> dict[str, np.ndarray]:
    """Two batches of 3: candidate 1 is the emotional one, candidate 2 the realistic one."""
    n = 6
    return {"quality": np.array([-3.0, -4.0, -1.0] * 2), "emotion": np.array([-2.0, -0.1, -2.5] * 2),
            "genre": np.zeros(n), "control": np.array([0.0, -1.0, -1.0] * 2),
            "net_quality": np.zeros(n), "net_emotion": np.zeros(n),
            "asked": np.array(["Q1"] * 3 + ["Q3"] * 3), "judge": np.array(["Q2", "Q1", "Q2", "Q4", "Q3", "Q3"]),
            "recognizer": np.array(["Q2", "Q1", "Q1", "Q4", "Q3", "Q4"]), "empty": np.zeros(n, bool),
            "outside": np.array([3, 3, 0, 3, 3, 1]), "distance": np.array([0.5, 0.4, 0.0, 0.5, 0.4, 0.1]),
            "allowed_outside": np.array(1), "n": np.array(3)}


def test_picks_follow_the_weights_and_never_take_an_empty_candidate() -> None:
    m = _measured()
    assert ranking.picks(m, {"emotion": 1.0}).tolist() == [1, 4]
    assert ranking.picks(m, {"quality": 1.0}).tolist() == [2, 5]
    assert ranking.picks(m, {"control": 1.0}).tolist() == [0, 3]
    m["empty"][1] = True
    assert ranking.picks(m, {"emotion": 1.0}).tolist() == [0, 4]


def test_summary_and_compare_count_judges_and_realism() -> None:
    m = _measured()
    s = ranking.summary(m, np.array([1, 4]))
    assert s == {"judge": 1.0, "recognizer": 1.0, "inside": 0.0, "distance": pytest.approx(0.4)}
    c = ranking.compare(m, {"quality": 1.0})
    assert c["best"]["inside"] == 1.0 and c["best"]["judge"] == 0.5
    assert c["first"]["judge"] == 0.0 and c["random"]["inside"] == pytest.approx(2 / 6)
    assert set(c["by_quadrant"]) == {"Q1", "Q3"}  # the quadrants asked
    assert c["by_quadrant"]["Q1"]["best"]["inside"] == 1.0


def test_tune_keeps_the_best_objective_and_the_front_shows_the_trade_off() -> None:
    m = _measured()
    weights, table = ranking.tune(m)
    best = ranking.summary(m, ranking.picks(m, weights))
    assert ranking.objective(best) == max(ranking.objective(r) for r in table)
    assert table[0]["weights"] == weights and len(table) == len(ranking.grid())
    front = ranking.pareto(table)
    emotion = [(r["judge"] + r["recognizer"]) / 2 for r in front]
    inside = [r["inside"] for r in front]
    assert emotion == sorted(emotion) and inside == sorted(inside, reverse=True)  # more of one costs the other
    assert max(inside) == 1.0 and max(emotion) == 1.0


def test_weights_are_written_into_the_selector_checkpoint(tmp_path) -> None:
    import torch

    folder = tmp_path / "selector"
    save_checkpoint(folder, kind="selector", config={"model": {"weights": {"quality": 0.5}}},
                    state_dict={"w": torch.zeros(2)}, metrics={"val_x": 1.0}, model_card="# selector\n\nbody\n")
    m = _measured()
    weights, table = ranking.tune(m)
    ranking.write_weights(folder, weights, table, ranking.compare(m, weights), 2)
    ranking.write_weights(folder, weights, table, ranking.compare(m, weights), 2)  # again: one section
    ck = load_checkpoint(folder, kind="selector")
    assert ck.config["model"]["weights"] == weights and ck.config["ranking"]["tuning_batches"] == 2
    assert ck.metrics["val_x"] == 1.0 and "ranking_tuning_best_judge" in ck.metrics
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.startswith("# selector") and card.count("## Ranking weights") == 1 and "| best |" in card


def test_prompts_cycle_the_quadrant_words_with_their_own_seeds() -> None:
    items = ranking.prompts(3, 100)
    assert [q for q, _, _ in items] == [q for q in QUADRANTS for _ in range(3)]
    assert len({s for _, _, s in items}) == 12 and items[0] == ("Q1", items[0][1], 100)


# ------------------------------------------------------------------------------------ realism
def test_outside_counts_statistics_and_measures_the_distance_in_range_widths() -> None:
    ref = RealReference({"tempo": (60.0, 120.0), "dissonance": (0.0, 0.2)}, 1, 0.9, 10)
    assert ref.outside({"tempo": 90.0, "dissonance": 0.1}) == (0, 0.0)
    count, dist = ref.outside({"tempo": 150.0, "dissonance": 0.1})
    assert count == 1 and dist == pytest.approx(0.25)  # 30 BPM over a 60 BPM range, over 2 statistics
    assert ref.outside({"tempo": float("nan"), "dissonance": 0.3}) == (1, pytest.approx(0.5))
    assert ref.inside({"tempo": 150.0, "dissonance": 0.3}) is False
    assert ref.inside_share({"tempo": 150.0, "dissonance": 0.1}) == 0.5
    assert ref.inside_share({"tempo": float("nan"), "dissonance": 0.1}) == 1.0  # only what applies counts
    assert ref.inside_share({"tempo": float("nan")}) == 0.0
    assert set(REALISM) >= {"tempo", "returning_bars", "dissonance"}


# ------------------------------------------------------------------------------------ the emotion head
def test_log_emotion_mixes_the_four_way_and_valence_arousal_heads() -> None:
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    va = np.array([[3.0, 3.0], [3.0, -3.0]])
    q1 = log_emotion(probs, va, "Q1")
    assert q1[0] > q1[1] and np.all(q1 <= 0)
    expect = 0.5 * np.log(0.7) + 0.5 * 2 * np.log(1 / (1 + np.exp(-3.0)))
    assert q1[0] == pytest.approx(expect)
    assert log_emotion(probs, va, "Q4")[1] == pytest.approx(expect)


class _Recognizer:
    """Hears every candidate as Q4 except the third, which it hears as Q1 (to test the wiring only)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, notes, tokens, embedding):
        self.calls += 1
        assert embedding.shape[0] == len(notes) == len(tokens)  # the selector's embeddings, reused
        probs = np.tile([0.05, 0.05, 0.05, 0.85], (len(notes), 1))
        probs[2] = [0.85, 0.05, 0.05, 0.05]
        va = np.tile([2.0, -2.0], (len(notes), 1))
        va[2] = [2.0, 2.0]
        return {"probabilities": probs, "va_logits": va}


def test_the_recognizer_is_the_emotion_head_of_the_ranking() -> None:
    em = EmoMusic.from_pretrained("debug")
    em.recognizer = _Recognizer()
    w = {"quality": 0.0, "emotion": 1.0, "genre": 0.0, "control": 0.0}
    calm = em.generate(emotion="calm", bars=2, candidates=4, seed=3, select_weights=w)
    happy = em.generate(emotion="happy", bars=2, candidates=4, seed=3, select_weights=w)
    assert em.recognizer.calls == 2
    assert calm[0].scores["emotion"] == pytest.approx(np.exp(log_emotion(np.array([[0.05, 0.05, 0.05, 0.85]]),
                                                                         np.array([[2.0, -2.0]]), "Q4")[0]))
    assert happy[0].scores["emotion"] > 0.5 and happy[1].scores["emotion"] < 0.1  # the one heard as Q1 first
    em.generate(emotion="calm", bars=2, candidates=4, seed=3, select_weights={**w, "emotion": 0.0, "quality": 1.0})
    assert em.recognizer.calls == 2  # no emotion weight: the recognizer is not run
