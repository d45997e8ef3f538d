"""Quadrant accuracy of the free-text projector on the hand-labelled prompt sets, per method.

    python benchmarks/text_prompts.py            # dev (tuning), test and fresh (held-out) sets
    python benchmarks/text_prompts.py --errors   # also list the misclassified dev (tuning) sentences

Prints accuracy, valence and arousal accuracy for the embedding prototypes alone, the word lexicon
(+ VADER valence) alone, and their combination, plus the time per prompt after the model is loaded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from emomusic.prompt.text import embedding_available, text_point
from emomusic.vocab.emotions import quadrant_of

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def load_set(name: str) -> list[tuple[str, str]]:
    """(quadrant, sentence) rows of a tab-separated fixture, comments skipped."""
    rows = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            q, text = line.split("\t", 1)
            rows.append((q, text))
    return rows


def evaluate(rows: list[tuple[str, str]], method: str) -> dict:
    """4Q / valence / arousal accuracy, mean seconds per prompt, and the misclassified rows."""
    hits = {"4Q": 0, "valence": 0, "arousal": 0}
    errors = []
    t0 = time.perf_counter()
    for q, text in rows:
        try:
            v, a, _, _ = text_point(text, method)
            got = quadrant_of(v, a)
        except ValueError:  # lexicon found no cue
            got = "none"
        hits["4Q"] += got == q
        hits["valence"] += got[:2] != "no" and (got in ("Q1", "Q4")) == (q in ("Q1", "Q4"))
        hits["arousal"] += got[:2] != "no" and (got in ("Q1", "Q2")) == (q in ("Q1", "Q2"))
        if got != q:
            errors.append((q, got, text))
    secs = (time.perf_counter() - t0) / len(rows)
    return {k: v / len(rows) for k, v in hits.items()} | {"ms_per_prompt": 1000 * secs, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--errors", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    methods = ["lexicon"] + (["embedding", "combined"] if embedding_available() else [])
    if "embedding" in methods:
        t0 = time.perf_counter()
        text_point("warm up", "embedding")
        print(f"model load + prototypes: {time.perf_counter() - t0:.1f} s")
    for name in ("text_prompts_dev.tsv", "text_prompts.tsv", "text_prompts_fresh.tsv"):
        rows = load_set(name)
        for m in methods:
            r = evaluate(rows, m)
            print(f"{name:>22} n={len(rows):3d} {m:>9}: 4Q {r['4Q']:.3f}  valence {r['valence']:.3f}  "
                  f"arousal {r['arousal']:.3f}  {r['ms_per_prompt']:.1f} ms/prompt")
            if args.errors and name == "text_prompts_dev.tsv":  # tune on dev only
                for q, got, text in r["errors"]:
                    print(f"      {q} → {got}: {text}")


if __name__ == "__main__":
    main()
