"""The evaluation harness end to end on the debug pipeline and real EMOPIA val (skips without data)."""

from __future__ import annotations

import json

import pytest

from emomusic.evaluation.controllability import evaluate
from emomusic.pipeline import EmoMusic


@pytest.mark.slow
@pytest.mark.data
def test_harness_writes_every_method_with_length_matched_quality(tmp_path, data_root_or_skip) -> None:
    em = EmoMusic.from_pretrained("debug")
    report = evaluate(em, per_emotion=2, bars=2, select_n=2, out=tmp_path)
    assert set(report["methods"]) == {"token", "attributes", "selector"}
    assert report["quality_reference"] == "EMOPIA val, first 2 bars"
    for name, m in report["methods"].items():
        assert m["pieces"] == 8, name
        assert all(0.0 <= v <= 1.0 for v in m["accuracy"].values())
        assert sum(sum(row.values()) for row in m["confusion"].values()) <= 8
        assert all(0.0 <= q["overlap"] <= 1.0 for q in m["quality"].values())
    g = report["methods"]["selector"]["selection"]
    assert g["candidates"] == 2 and g["gain_4Q_vs_first"] == g["best"]["4Q"] - g["first_candidate"]["4Q"]
    md = (tmp_path / "report.md").read_text()
    assert "EMOPIA val, first 2 bars" in md and (tmp_path / "confusion.png").stat().st_size > 0
    assert json.loads((tmp_path / "report.json").read_text())["bars"] == 2


@pytest.mark.slow
@pytest.mark.data
def test_seed_offset_moves_every_seed(tmp_path, data_root_or_skip, monkeypatch) -> None:
    em = EmoMusic.from_pretrained("debug")
    seeds = []
    real = em.generate

    def spy(*args, **kw):
        seeds.append(kw["seed"])
        return real(*args, **kw)

    monkeypatch.setattr(em, "generate", spy)
    report = evaluate(em, per_emotion=2, bars=1, methods=("attributes", "selector"), select_n=2, batch=1,
                      seed_offset=70_000, out=tmp_path)
    assert report["seed_offset"] == 70_000 and min(seeds) > 70_000
    assert sorted(set(seeds)) == [70_001, 70_002, 71_001]  # attributes: 1 + 1000 * start; selector: 1 + j
    assert "offset by 70,000" in (tmp_path / "report.md").read_text()
