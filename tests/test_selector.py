"""Selector (quality · emotion · genre) and best-of-N: tiny models and fixtures built in code.

The debug pipeline's selector is random, so pipeline and CLI tests check wiring and contracts
(scores stored, best first, files written, weights honoured); learning is checked on synthetic
features whose labels are separable by construction.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emomusic.checkpoint import save_checkpoint
from emomusic.cli import main
from emomusic.errors import CheckpointError, InvalidInputError
from emomusic.music.metrics import scale_consistency
from emomusic.music.notes import Notes
from emomusic.pipeline import EmoMusic
from emomusic.selection.network import SelectorNet
from emomusic.selection.selector import Selector, SelectorConfig, combine, explain, load_selector
from emomusic.training.selector import (
    broken_rhythm,
    fit_net,
    head_metrics,
    model_card,
    shuffle_bars,
    truncated_ending,
    wrong_keys,
)
from emomusic.vocab.emotions import GENRES, QUADRANTS

BARS = 2


@pytest.fixture(scope="module")
def em() -> EmoMusic:
    return EmoMusic.from_pretrained("debug")


@pytest.fixture(scope="module")
def batch(em: EmoMusic):
    return em.generate(emotion="calm", bars=BARS, candidates=4, seed=7)


def _scale_piece(n_bars: int = 8) -> Notes:
    """C major eighth notes up and down the scale, one bar per beat pattern: fully in key, on the grid."""
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    pitch = [scale[(i % 14) if i % 14 < 8 else 14 - i % 14] for i in range(n_bars * 8)]
    start = np.arange(n_bars * 8) * 0.5
    return Notes.from_arrays(pitch, start, np.full(len(start), 0.5), np.full(len(start), 80))


# ------------------------------------------------------------------------------------ negatives
def test_shuffled_bars_keep_every_note_but_reorder_the_bars() -> None:
    notes = Notes.from_arrays(np.arange(60, 68), np.arange(8) * 4.0, np.ones(8), np.full(8, 80))  # one per bar
    out = shuffle_bars(notes, np.random.default_rng(0))
    assert sorted(out.pitch.tolist()) == notes.pitch.tolist()
    assert sorted(out.start.tolist()) == notes.start.tolist()
    assert out.pitch.tolist() != notes.pitch.tolist()


def test_wrong_keys_leave_the_scale() -> None:
    notes = _scale_piece()
    out = wrong_keys(notes, np.random.default_rng(0))
    assert scale_consistency(notes) == 1.0
    assert scale_consistency(out) < 0.9
    assert len(out) == len(notes)


def test_broken_rhythm_moves_onsets_off_the_grid() -> None:
    notes = _scale_piece()
    out = broken_rhythm(notes, np.random.default_rng(0))
    assert np.mean((out.start * 2) % 1 != 0) > 0.5  # eighth-note grid broken for most notes


def test_truncated_ending_cuts_mid_bar() -> None:
    notes = _scale_piece()
    out = truncated_ending(notes, np.random.default_rng(0))
    assert len(out) < len(notes)
    assert out.end < notes.end
    assert out.end % notes.beats_per_bar != 0  # does not end on a barline


# ------------------------------------------------------------------------------------ training
def _synthetic(n: int = 240, dim: int = 12, seed: int = 0) -> dict:
    """Features where quality, quadrant, valence/arousal and genre are each set by one coordinate."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim + 6)).astype(np.float32)
    quality = (rng.random(n) < 0.5).astype(np.float32)
    quad = rng.integers(0, 4, n)
    genre = rng.integers(0, len(GENRES), n)
    x[:, 0] += 4 * (quality - 0.5)
    x[np.arange(n), 1 + quad] += 4  # one-hot codes: quadrant in columns 1-4, genre in 5-9
    x[np.arange(n), 5 + genre] += 4
    va = np.array([[q in (0, 3), q in (0, 1)] for q in quad], dtype=np.float32)
    return {"x": x, "split": np.where(np.arange(n) % 4 == 0, "val", "train"),
            "source": np.array(["crop"] * (n // 2) + ["emopia"] * (n - n // 2)),
            "quality": np.where(np.arange(n) < n // 2, quality, 1.0).astype(np.float32),
            "kind": np.where(quality > 0.5, "real", "wrong_keys"),
            "quadrant": np.array([QUADRANTS[q] if i >= n // 2 else "" for i, q in enumerate(quad)]),
            "valence": np.where(np.arange(n) >= n // 2, va[:, 0], np.nan).astype(np.float32),
            "arousal": np.where(np.arange(n) >= n // 2, va[:, 1], np.nan).astype(np.float32),
            "genre": np.array([GENRES[g] for g in genre])}


def test_fit_net_learns_every_head_on_separable_features() -> None:
    f = _synthetic()
    net = fit_net(f, SelectorConfig(embed_dim=12, hidden=32, dropout=0.0), epochs=200)
    m = head_metrics(net, f, "val")
    assert m["quality_auc"] > 0.9
    assert m["emotion_emopia_4Q"] > 0.7
    assert m["emotion_emopia_arousal_head"] > 0.8
    assert m["genre_accuracy"] > 0.7
    assert set(m) >= {"quality_accuracy", "quality_detects_wrong_keys", "emotion_emopia_valence"}


def test_net_heads_follow_the_network_outputs() -> None:
    torch.manual_seed(0)
    net = SelectorNet(SelectorConfig(embed_dim=4, n_metrics=0, hidden=8, dropout=0.0))
    with torch.no_grad():  # quality logit = x0, quadrant logits favour Q1 with x1, the rest zero
        for p in net.parameters():
            p.zero_()
        net.trunk[1].weight[0, 0] = net.trunk[1].weight[1, 1] = 1.0
        net.trunk[4].weight[0, 0] = net.trunk[4].weight[1, 1] = 1.0
        net.quality.weight[0, 0] = 5.0
        net.quadrant.weight[0, 1] = 5.0
    sel = Selector.from_net(net, None, None)
    x = np.array([[2, 0, 0, 0], [0, 2, 0, 0]], dtype=np.float32)  # row 0 looks real, row 1 sounds Q1
    heads = sel.net_heads(x, ["Q1", "Q1"], "pop")
    assert heads["quality"][0] > heads["quality"][1]
    assert heads["emotion"][1] > heads["emotion"][0]
    assert np.all(heads["emotion"] <= 0) and np.all(heads["genre"] <= 0)
    unasked = sel.net_heads(x, [None, "Q1"], None)
    assert np.isnan(unasked["emotion"][0]) and "genre" not in unasked  # nothing asked, nothing scored


def test_combine_weights_the_heads_and_explain_names_the_decisive_one() -> None:
    heads = {"quality": np.array([-1.0, -3.0, -2.0]), "emotion": np.array([-2.0, -0.1, -1.0]),
             "control": np.array([0.0, -0.5, -2.0])}
    w = {"quality": 0.5, "emotion": 1.0, "control": 1.0}
    total = combine(heads, w)
    assert total == pytest.approx([-2.5, -2.1, -4.0])
    order = list(np.argsort(-total))
    why = explain(heads, w, order)
    assert (why["winner"], why["runner_up"]) == (1, 0)
    assert why["leads"]["emotion"] == pytest.approx(1.9) and why["leads"]["quality"] == pytest.approx(-1.0)
    assert why["margin"] == pytest.approx(0.4)
    assert why["text"].startswith("won over the runner-up on emotion (+1.90)") and "quality (-1.00)" in why["text"]
    assert explain(heads, {"quality": 1.0}, [2])["runner_up"] is None
    assert "genre" not in explain(heads, w, order)["leads"]  # a head without weight does not explain


def test_card_states_the_weights_and_the_harness_gain() -> None:
    weights = {"quality": 0.0, "emotion": 0.0, "genre": 0.0, "control": 1.0}
    metrics = {"val_quality_auc": 0.8, "train_rows": 100, "train_negatives_wrong_keys": 5}
    pick = {"4Q": 0.74, "arousal": 0.97, "valence": 0.76}
    report = {"per_emotion": 25, "bars": 8, "methods": {"selector": {"mean_overlap": 0.761, "selection": {
        "candidates": 8, "best": pick, "first_candidate": {**pick, "4Q": 0.65}, "random_candidate": pick,
        "gain_4Q_vs_first": 0.09, "gain_4Q_vs_random": 0.0}}}}
    card = model_card(metrics, weights)
    assert str(weights) in card and "| quality_auc | 0.800 |" in card and "held-apart" not in card
    with_report = model_card(metrics, weights, report)
    assert with_report.startswith(card) and "+9.0 points" in with_report and "0.761" in with_report


def test_numpy_forward_equals_the_torch_network() -> None:
    from emomusic.selection.selector import net_forward

    torch.manual_seed(1)
    net = SelectorNet(SelectorConfig(embed_dim=10, hidden=16)).eval()
    with torch.no_grad():
        net.mean.normal_()
        net.std.uniform_(0.5, 2.0)
    x = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in net(torch.from_numpy(x)).items()}
    out = net_forward(Selector.from_net(net, None, None).arrays, x)
    for k in ("quality", "quadrant", "va", "genre"):
        np.testing.assert_allclose(out[k], ref[k], atol=1e-5)


# ------------------------------------------------------------------------------------ scoring
def test_score_gives_every_head_and_a_combined_score(em: EmoMusic, batch) -> None:
    rows = em.selector.score(batch, genre="pop")
    assert len(rows) == len(batch)
    for row in rows:
        assert 0 <= row["quality"] <= 1 and 0 <= row["emotion"] <= 1 and 0 <= row["genre_match"] <= 1
        assert np.isfinite(row["score"]) and "control_fit" not in row  # no distances given


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_head_weights_change_the_combined_score(em: EmoMusic, batch) -> None:
    q = em.selector.score(batch, weights={"quality": 1.0, "emotion": 0.0, "genre": 0.0, "control": 0.0})
    e = em.selector.score(batch, weights={"quality": 0.0, "emotion": 1.0, "genre": 0.0, "control": 0.0})
    assert [r["score"] for r in q] == pytest.approx([_logit(r["quality"]) for r in q], abs=1e-4)
    assert [r["score"] for r in e] == pytest.approx([np.log(r["emotion"]) for r in e], abs=1e-5)


@pytest.mark.parametrize("weights", [{"loudness": 1.0}, {"quality": -1.0}, {"emotion": float("nan")}])
def test_bad_weights_are_a_clean_error(em: EmoMusic, batch, weights) -> None:
    with pytest.raises(InvalidInputError):
        em.selector.score(batch, weights=weights)


def test_generate_ranks_by_the_selector_and_stores_the_scores(em: EmoMusic, batch) -> None:
    scores = [c.scores["score"] for c in batch]
    assert scores == sorted(scores, reverse=True)
    assert all({"quality", "emotion", "genre_match", "score"} <= set(c.scores) for c in batch)
    kept = em.generate(emotion="calm", bars=BARS, candidates=4, seed=7, rank=False)
    assert sorted(c.tokens for c in kept) == sorted(c.tokens for c in batch)  # same batch, other order
    assert all(not c.scores for c in kept)
    assert batch[0].selection["text"].startswith("won over the runner-up") and not any(c.selection for c in batch[1:])
    assert batch[0].selection["weights"] == em.selector.weights


def test_json_explains_the_pick(capsys, tmp_path) -> None:
    assert main([*GENERATE, "--out", str(tmp_path / "x.mid"), "--json"]) == 0
    sel = json.loads(capsys.readouterr().out)["selection"]
    assert set(sel) == {"winner", "runner_up", "margin", "leads", "text", "weights"}
    assert sel["margin"] >= 0 and sel["margin"] == pytest.approx(sum(sel["leads"].values()))


def test_select_weights_reach_the_ranking(em: EmoMusic) -> None:
    w = {"quality": 1.0, "emotion": 0.0, "genre": 0.0, "control": 0.0}
    ranked = em.generate(emotion="calm", bars=BARS, candidates=4, seed=7, select_weights=w)
    quality = [c.scores["quality"] for c in ranked]
    assert quality == sorted(quality, reverse=True)


def test_checkpoint_round_trip_and_mismatch(em: EmoMusic, batch, tmp_path) -> None:
    sel = em.selector
    save_checkpoint(tmp_path / "selector", kind="selector", config={"model": sel.config.to_dict()},
                    state_dict={k: torch.from_numpy(v) for k, v in sel.arrays.items()})
    again = load_selector(tmp_path / "selector", em.generator, em.tokenizer)
    assert [r["score"] for r in again.score(batch)] == pytest.approx([r["score"] for r in em.selector.score(batch)])
    cfg = SelectorConfig(embed_dim=em.generator.config.dim + 1)
    save_checkpoint(tmp_path / "other", kind="selector", config={"model": cfg.to_dict()},
                    state_dict=SelectorNet(cfg).state_dict())
    with pytest.raises(CheckpointError, match="retrain"):
        load_selector(tmp_path / "other", em.generator, em.tokenizer)


# ------------------------------------------------------------------------------------ CLI
GENERATE = ["generate", "--checkpoints", "debug", "--emotion", "calm", "--bars", str(BARS), "--candidates", "3"]


def test_keep_all_writes_every_candidate_and_json_lists_their_scores(capsys, tmp_path) -> None:
    out = tmp_path / "calm.mid"
    assert main([*GENERATE, "--out", str(out), "--keep-all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    cands = result["candidates"]
    assert [c["rank"] for c in cands] == [1, 2, 3]
    assert [c["out"] for c in cands] == [str(out)] + [str(tmp_path / f"calm-{i}.mid") for i in (2, 3)]
    # each piece once: the best is --out itself, the others OUT-2, OUT-3 (no OUT-1 copy of the best)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calm-2.mid", "calm-3.mid", "calm.mid"]
    scores = [c["scores"]["score"] for c in cands]
    assert scores == sorted(scores, reverse=True)


def test_keep_all_refuses_to_overwrite_and_writes_nothing(capsys, tmp_path) -> None:
    (tmp_path / "calm-2.mid").write_bytes(b"mine")
    rc = main([*GENERATE, "--out", str(tmp_path / "calm.mid"), "--keep-all"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("emomusic: error:") and "calm-2.mid" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calm-2.mid"]
    assert (tmp_path / "calm-2.mid").read_bytes() == b"mine"


@pytest.mark.parametrize("text", ["quality", "quality=x", "loudness=1"])
def test_bad_select_weights_flag_is_one_line(capsys, tmp_path, text) -> None:
    rc = main([*GENERATE, "--out", str(tmp_path / "x.mid"), "--select-weights", text])
    assert rc == 2 and capsys.readouterr().err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_select_weights_flag_is_used(capsys, tmp_path) -> None:
    assert main([*GENERATE, "--out", str(tmp_path / "q.mid"), "--json",
                 "--select-weights", "quality=1,emotion=0,genre=0,control=0"]) == 0
    cands = json.loads(capsys.readouterr().out)["candidates"]
    assert [c["scores"]["score"] for c in cands] == pytest.approx([_logit(c["scores"]["quality"]) for c in cands],
                                                                  abs=1e-4)


# ------------------------------------------------------------------------------------ harness
def test_selector_method_measures_the_gain_on_the_same_seeds(em: EmoMusic) -> None:
    from emomusic.evaluation.controllability import _selection_gain, _selector_pieces
    from emomusic.evaluation.judge import FeatureJudge
    from emomusic.music.attributes import ATTRIBUTE_NAMES

    rng = np.random.default_rng(0)
    judge = FeatureJudge.fit(rng.normal(size=(80, len(ATTRIBUTE_NAMES))), [QUADRANTS[i % 4] for i in range(80)])
    paired: dict = {"first": [], "all": [], "true_all": []}
    kept = _selector_pieces(em, "Q4", 0, 2, BARS, 3, judge, paired)
    assert len(kept) == 2 and len(paired["first"]) == 2 and len(paired["all"]) == 6
    first = em.generate(emotion="Q4", bars=BARS, candidates=3, seed=1, rank=False)
    assert kept[0].tokens in [c.tokens for c in first]  # piece 0 is picked from seed 1's batch
    gain = _selection_gain(paired, ["Q4", "Q4"], ["Q4", "Q1"], 3)
    assert gain["best"]["4Q"] == 0.5
    assert gain["gain_4Q_vs_first"] == pytest.approx(0.5 - np.mean(np.array(paired["first"]) == "Q4"))


@pytest.mark.slow
def test_shipped_selector_is_loaded_and_ranks_real_candidates() -> None:
    from emomusic.settings import checkpoints_root

    if not (checkpoints_root() / "selector").is_dir():
        pytest.skip("no shipped selector in checkpoints/")
    em = EmoMusic.from_pretrained()
    assert em.selector is not None
    assert set(em.selector.weights) <= {"quality", "emotion", "genre", "control"}
    ranked = em.generate(emotion="sad", bars=1, candidates=2, seed=0)
    scores = [c.scores["score"] for c in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= c.scores["quality"] <= 1 for c in ranked)
