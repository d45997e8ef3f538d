"""The evaluation report: markdown tables plus the confusion and valence/arousal plots it links."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.evaluation.controllability import write_report
from emomusic.evaluation.report import va_from_proba
from emomusic.vocab.emotions import QUADRANTS


def test_va_from_proba_maps_certain_quadrants_to_the_corners() -> None:
    v, a = va_from_proba(np.eye(4))
    assert list(v) == [1, -1, -1, 1] and list(a) == [1, 1, -1, -1]


def test_write_report_writes_markdown_and_plots(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    acc = {"4Q": 0.5, "arousal": 0.75, "valence": 0.6}
    conf = {t: {p: int(t == p) * 3 + 1 for p in QUADRANTS} for t in QUADRANTS}
    quality = {"note_density": {"generated_mean": 3.0, "real_mean": 3.3, "overlap": 0.8}}
    method = {"accuracy": acc, "confusion": conf, "quality": quality, "mean_overlap": 0.8, "control_accuracy": {},
              "seconds": 1.0, "tokens_per_second": 100.0, "pieces": 4, "seconds_per_piece": 0.25,
              "points": [(q, 0.1 * i, -0.1 * i) for i, q in enumerate(QUADRANTS)]}
    report = {"per_emotion": 1, "bars": 4, "judge_on_real_val": acc, "methods": {"token": method, "attributes": method}}
    write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "confusion.png" in md and "va_scatter.png" in md and "| token |" in md
    for name in ("confusion.png", "va_scatter.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
