"""The generation benchmark runs end to end on the shipped model (tiny settings) and says what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_generation_benchmark_prints_its_figures_and_the_split_batch_writes_the_same_tokens():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--bars", "1", "--seeds", "1",
                          "--repeats", "1"], capture_output=True, text=True, timeout=300, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    # forked and one-process batches sample the same pieces, so the same number of tokens
    assert res["ours_batch8_tokens"] == res["ours_batch8_one_process_tokens"] > 0
    for key in ("speedup_batch1", "batch8_time_ratio", "batch8_one_process_time_ratio", "peak_rss_mb",
                "ours_batch1_tense_tokens", "fraction_of_bound_batch1_dram"):
        assert res[key] > 0, key


@pytest.mark.slow
def test_arrangement_benchmark_runs_and_reports_each_arrangement():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "arrangement.py"), "--per-quadrant", "1",
                          "--bars", "4", "--arrangements", "band", "--musescore", "0"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    band = res["arrangements"]["band"]
    assert band["out_of_range_notes"] == 0 and band["doubled_unisons"] == 0
    assert 0 <= band["recognizer_4q"] <= 1 and band["extra_seconds_median"] < 5
