"""Model cards are template files (emomusic/training/cards/*.md) rendered by one function.

Each card is rendered from a fixture built in code and compared with tests/fixtures/cards/<name>.md,
the text the training code's f-strings produced for the same inputs before the cards became files.
A template edited on purpose: regenerate the expected file with
`python tests/test_cards.py` and read the diff.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

EXPECTED = Path(__file__).parent / "fixtures" / "cards"

_ACC = {"4Q": 0.855, "arousal": 0.97, "valence": 0.875}


def _quality() -> dict:
    return {"pitch_class_entropy": {"generated_mean": 2.9, "real_mean": 3.0, "overlap": 0.85, "value_overlap": 0.7},
            "note_density": {"generated_mean": 4.0, "real_mean": 4.5, "overlap": 0.8}}


def generator_inputs(report: bool = True, comparison: bool = True) -> dict:
    """ship.model_card's inputs: a checkpoint-like object, an evaluation report, a conditioning comparison."""
    ck = SimpleNamespace(
        metrics={"step": 5117, "tokens_seen": {"all": 141_160_197, "emopia": 31_031_014, "pop909": 25_402_152,
                                                "vgmidi_unl": 16_820_071},
                 "val_loss": {"emopia": 1.8426, "pop909": 1.4987, "vgmidi_unl": 0.6910},
                 "trained_on": "one NVIDIA H100 (3 min 45 s)",
                 "lr_segments": [{"first": 1, "last": 300, "lr_max": 1e-3, "lr_end": 5e-4},
                                 {"first": 251, "last": 600, "lr_max": 9e-4, "lr_end": 1e-4}]},
        config={"model": {"vocab_size": 418, "dim": 256, "depth": 6}, "train": {"batch_size": 64, "seq_len": 512,
                                                                                "lr": 0.001}},
        state_dict={"a": torch.zeros(1000, 1000), "b": torch.zeros(2500)})
    rep = {"per_emotion": 50, "bars": 8, "judge_on_real_val": {"4Q": 0.616, "arousal": 0.899, "valence": 0.697},
           "methods": {"token": {"accuracy": {"4Q": 0.54, "arousal": 0.885, "valence": 0.59}, "mean_overlap": 0.85,
                                 "seconds": 100.0, "pieces": 200, "quality": _quality()},
                       "attributes": {"accuracy": _ACC, "mean_overlap": 0.835, "seconds": 120.0, "pieces": 200,
                                      "quality": _quality()}}}
    run = {"val_loss_mean": 1.6326, "hit_mean": 0.6095, "chance_mean": 0.4238, "bin_error_mean": 0.6746, "pieces": 63}
    cmp = {"runs": [{**run, "conditioning": "prefix"},
                    {**run, "conditioning": "sum", "val_loss_mean": 1.743, "hit_mean": 0.59}]}
    return {"ck": ck, "report": rep if report else None, "comparison": cmp if comparison else None}


def selector_inputs() -> dict:
    """training.selector.model_card's inputs, and a report for its held-apart section."""
    weights = {"quality": 0.25, "emotion": 0.25, "genre": 0.0, "control": 1.0}
    metrics = {"val_quality_auc": 0.819, "val_quality_detects_wrong_keys": 0.857, "val_emotion_emopia_4Q": 0.626,
               "val_genre_accuracy": 0.9746, "val_pieces": 12, "train_rows": 2552, "train_negatives_shuffled_bars": 87,
               "train_negatives_wrong_keys": 87, "train_negatives_broken_rhythm": 86,
               "train_negatives_truncated_ending": 85, "train_negatives_high_temperature": 160}
    pick = {"4Q": 0.93, "arousal": 0.99, "valence": 0.935}
    report = {"per_emotion": 50, "bars": 8, "methods": {"selector": {"mean_overlap": 0.83, "selection": {
        "candidates": 8, "best": pick, "first_candidate": {**pick, "4Q": 0.885}, "random_candidate": pick,
        "gain_4Q_vs_first": 0.045, "gain_4Q_vs_random": 0.0525}}}}
    return {"metrics": metrics, "weights": weights, "report": report}


def recognizer_inputs() -> dict:
    """training.recognizer.model_card's inputs: an ablation, the shipped model's val report, counts."""
    from emomusic.training.recognizer import Ablation, DistillConfig, TrainConfig

    def row(e4: float) -> dict:
        return {"emopia": {"n": 198.0, "4Q": [e4, 0.01], "valence": [0.80, 0.0126], "arousal": [0.9066, 0.0025]},
                "vgmidi": {"n": 32.0, "4Q": [0.5, 0.0], "valence": [0.78, 0.03], "arousal": [0.75, 0.0]},
                "vgmidi_v1": {"n": 80.0, "valence": [0.75, 0.0]}}

    def cv(e4: float) -> dict:
        return {"emopia": {"n": 767, "4Q": e4, "valence": 0.7614, "arousal": 0.9022},
                "vgmidi": {"n": 172, "4Q": 0.593, "valence": 0.7733, "arousal": 0.8023},
                "vgmidi_v1": {"n": 885, "valence": 0.7017}}

    settings = ("single: emopia", "single: vgmidi", "single: vgmidi_v1", "unified", "unified + distillation")
    ab = Ablation(rows={s: row(0.70 + i / 100) for i, s in enumerate(settings)},
                  grid=[{"weight": 0.5, "temperature": 1.0, "cv_score": 0.7512},
                        {"weight": 2.0, "temperature": 3.0, "cv_score": 0.7431}],
                  distill=DistillConfig(weight=0.5, temperature=1.0),
                  cv_rows={s: cv(0.66 + i / 100) for i, s in enumerate(settings)}, folds=5,
                  songs={"train": 290, "val": 63})

    def acc(n: int, a: float) -> dict:
        return {"n": n, "4Q": a, "4Q_ci": [a - 0.09, a + 0.1], "valence": 0.7828, "valence_ci": [0.7075, 0.8704],
                "arousal": 0.9293, "arousal_ci": [0.8894, 0.9771]}

    shipped = {"emopia": acc(198, 0.7222), "vgmidi": acc(32, 0.5938),
               "vgmidi_v1": {"n": 80, "valence": 0.75, "valence_ci": [0.5, 0.9566]},
               "emopia_without_largest_song": {**acc(166, 0.7771), "group": "emopia/Ie5koh4qvJc", "n_removed": 32,
                                               "quadrants": "Q1 × 1, Q2 × 7, Q3 × 14, Q4 × 10"}}
    return {"ab": ab, "shipped": shipped, "counts": {"emopia": 767, "vgmidi": 172, "vgmidi_v1": 885},
            "seeds": (0, 1), "cfg": TrainConfig(model={"max_windows": 2}), "seconds": 754.0}


def audio_recognizer_inputs(mert: bool = False) -> dict:
    """training.audio_recognizer.model_card's inputs (the shipped checkpoint's figures)."""
    def acc(a: float, n: int) -> dict:
        return {"4Q": a, "arousal": 0.899, "valence": 0.7121, "arousal_from_4Q": 0.9091, "valence_from_4Q": 0.702,
                "n": n}

    metrics = {"emopia_val": acc(0.6414, 198), "vgmidi_val": acc(0.4688, 32), "cv_emopia_train_4Q": 0.669,
               "logistic_regression_emopia_val_4Q": 0.6717, "train_clips": {"emopia": 1534, "vgmidi": 344},
               "train_clips_augmented": 939, "minutes": 1.2}
    config = {"feature_names": [f"f{i}" for i in range(93)], "mert_dim": 768 if mert else None,
              "mert_name": "m-a-p/MERT-v1-95M" if mert else None,
              "head": {"hidden": 32, "dropout": 0.3, "weight_decay": 0.01, "epochs": 400}}
    return {"metrics": metrics, "config": config}


def clusterer_inputs() -> dict:
    """The clusterer's and the judge's metrics as fit_clusterer measures them."""
    metrics = {"emopia_val_4Q": 0.6162, "emopia_val_arousal": 0.899, "emopia_val_valence": 0.697,
               "emopia_val_binarised_4Q": 0.55, "vgmidi_val_4Q": 0.5, "n_train_pieces": 1878,
               "n_emopia_train": 767, "n_emopia_val": 198}
    return {"metrics": metrics}


def rendered() -> dict[str, str]:
    """Every card the training code writes, rendered from the fixtures above, by expected-file name."""
    from emomusic.training import audio_recognizer, recognizer, selector, ship
    from emomusic.training.clusterer import clusterer_card, judge_card

    g, bare, s, r = generator_inputs(), generator_inputs(False, False), selector_inputs(), recognizer_inputs()
    return {
        "generator": ship.model_card(g["ck"], g["report"], g["comparison"]),
        "generator_bare": ship.model_card(bare["ck"], None, None),
        "selector": selector.model_card(s["metrics"], s["weights"], s["report"]),
        "recognizer": recognizer.model_card(r["ab"], r["shipped"], r["counts"], r["seeds"], r["cfg"], r["seconds"]),
        "audio_recognizer": audio_recognizer.model_card(**audio_recognizer_inputs()),
        "audio_recognizer_mert": audio_recognizer.model_card(**audio_recognizer_inputs(mert=True)),
        "clusterer": clusterer_card(**clusterer_inputs()),
        "judge": judge_card(**clusterer_inputs()),
    }


@pytest.fixture(scope="module")
def cards() -> dict[str, str]:
    return rendered()


@pytest.mark.parametrize("name", ["generator", "generator_bare", "selector", "recognizer", "audio_recognizer",
                                  "audio_recognizer_mert", "clusterer", "judge"])
def test_card_renders_the_text_it_rendered_as_an_f_string(cards: dict[str, str], name: str) -> None:
    card = cards[name]
    assert not re.search(r"\{[A-Za-z_][^}]*\}", card.replace("{'", "").replace('{"', ""))  # no field left
    assert card.startswith("# ") and card.endswith("\n") and not card.endswith("\n\n")
    assert card == (EXPECTED / f"{name}.md").read_text(encoding="utf-8")


def test_cards_carry_their_key_lines(cards: dict[str, str]) -> None:
    g = cards["generator"]
    assert "- parameters: 1.00 M; model config: `{\"vocab_size\": 418, \"dim\": 256, \"depth\": 6}`" in g
    assert "steps 251–600: max 9.0e-04 → 1.0e-04" in g and "; trained on one NVIDIA H100 (3 min 45 s)" in g
    assert "| emopia | 1.843 | 6.31 |" in g and "(3,000,001+)" in g and "| pitch_class_entropy | 2.900 |" in g
    assert "## Conditioning" in g and "at least as well as the summed embedding" in g
    assert "## Controllability" not in cards["generator_bare"] and cards["generator_bare"].endswith("| 2.00 |\n")
    assert "bar chords" not in g  # a generator without Harmony tokens says nothing of them
    assert "Weights held: {'quality': 0.25, 'emotion': 0.25, 'genre': 0.0, 'control': 1.0}." in cards["selector"]
    assert "87 shuffled bars" in cards["selector"] and "+4.5 points of 4Q accuracy" in cards["selector"]
    rec = cards["recognizer"]
    assert "| EMOPIA val (clips of held-out songs) | 198 | 0.722 (0.63–0.82) |" in rec
    assert "**weight 0.5, temperature\n1.0**" in rec and "Training took 12.6 min" in rec
    assert "mean-pooled MERT embeddings (m-a-p/MERT-v1-95M)" in cards["audio_recognizer_mert"]
    assert "| EMOPIA val (rendered) | 0.641 | 0.899 | 0.712 | 198 |" in cards["audio_recognizer"]
    assert "1878 pieces" in cards["clusterer"] and "(767 clips;" in cards["judge"]


def test_render_card_refuses_missing_and_unused_fields() -> None:
    from emomusic.training.cards import card_names, render_card, template_fields

    assert {"generator", "recognizer", "selector", "audio_recognizer", "clusterer", "judge"} <= set(card_names())
    fields = {name: "x" for name in template_fields("judge")}
    assert render_card("judge", **fields).startswith("# emomusic feature judge")
    with pytest.raises(ValueError, match=r"missing fields \['n_train'\]"):
        render_card("judge", **{k: v for k, v in fields.items() if k != "n_train"})
    with pytest.raises(ValueError, match=r"unused fields \['typo'\]"):
        render_card("judge", typo=1, **fields)
    with pytest.raises(ValueError, match="no model-card template 'nope'"):
        render_card("nope")


def test_templates_ship_as_package_data() -> None:
    """pyproject lists the templates as package data, so a wheel install can render cards."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "*.md" in pyproject["tool"]["setuptools"]["package-data"]["emomusic.training.cards"]


if __name__ == "__main__":  # regenerate the expected cards after an intended template change
    sys.path.insert(0, str(Path(__file__).parents[1]))
    for card_name, text in rendered().items():
        (EXPECTED / f"{card_name}.md").write_text(text, encoding="utf-8")
        print(EXPECTED / f"{card_name}.md")


def test_a_generator_with_bar_chords_says_so_on_its_card() -> None:
    from emomusic.training import ship

    inputs = generator_inputs(report=False, comparison=False)
    inputs["ck"].tokenizer = {"harmony": True}
    card = ship.model_card(inputs["ck"], None, None)
    assert "- bar chords: a Harmony token after every Bar" in card
    assert "49 tokens" in card
