"""Sampling rules as logits processors: one module per rule, one list built here.

Each step the sampler takes the engine's logits (divided by the temperature) and runs every processor
of `build_processors` on them in order, then draws (`draw.TopKTopP`):

| processor | module | rule |
|---|---|---|
| `PitchBias` | bias | key / tonic-triad bias and register window (static) |
| `ChordPlan` | chords | each bar toward its planned chord (instead of the tonic triad) |
| `DensityFeedback` | feedback | notes per beat over the last 16 bars toward a target (closed loop) |
| `RegisterFeedback` | feedback | mean pitch toward a target (closed loop) |
| `TriadHold` | feedback | tonic-triad notes held longer |
| `VocabularyLimits` | limits | velocity window, one tempo, time signature (hard) |
| `Accompany` | accompany | under a kept tune, toward its chord tones (`EmoMusic.transform`; hard ceiling) |
| `Cadence` | cadence | the dominant before the last bar, the tonic triad in it (a piece's end) |
| `GrammarMask` | grammar | REMI grammar and bar positions (hard; always last) |

A new rule is one `LogitsProcessor` subclass in its own module (a numpy `spec`; a compiled twin only
where a benchmark shows it matters), one line in `build_processors`, and its test in
tests/test_processors.py. Processors that change nothing for a batch (`active` False) are left out.
"""

from __future__ import annotations

import numpy as np

from emomusic.generation.guidance import Guidance
from emomusic.generation.processors.accompany import Accompany
from emomusic.generation.processors.base import LogitsProcessor
from emomusic.generation.processors.bias import PitchBias
from emomusic.generation.processors.cadence import Cadence
from emomusic.generation.processors.chords import ChordPlan
from emomusic.generation.processors.draw import TOP_P, TopKTopP
from emomusic.generation.processors.feedback import DensityFeedback, RegisterFeedback, TriadHold
from emomusic.generation.processors.grammar import GrammarMask, grammar_table
from emomusic.generation.processors.limits import VocabularyLimits
from emomusic.generation.processors.state import RemiState, RemiTables
from emomusic.music.tokenizer import MusicTokenizer

__all__ = ["TOP_P", "Accompany", "Cadence", "ChordPlan", "DensityFeedback", "GrammarMask", "LogitsProcessor",
           "PitchBias", "RegisterFeedback", "RemiState", "RemiTables", "TopKTopP", "TriadHold", "VocabularyLimits",
           "build_processors", "grammar_table"]


def build_processors(tk: MusicTokenizer, tables: RemiTables, guides: list[Guidance],
                     n_bars: int, start: RemiState | None = None) -> list[LogitsProcessor]:
    """The processors for a batch, in the order they run.

    Args:
        tk: the tokenizer.
        tables: its `RemiTables`.
        guides: one `Guidance` per row.
        n_bars: bars each piece must reach.
        start: the state after a prefix that feedback leaves out of its counts (written to other
            targets); None: everything written counts, the prefix's music too.

    Returns:
        The tilts first (they add to logits), then the hard limits, the grammar last: it sees what every
        other rule left and keeps at least one token per row.
    """
    rules = [PitchBias(tk, guides), ChordPlan(tk, guides, n_bars), DensityFeedback(tk, tables, guides, start),
             RegisterFeedback(tk, tables, guides, start),
             TriadHold(tk, tables, guides), VocabularyLimits(tk, guides),
             Accompany(tk, tables, guides, _beat_scale(guides)), Cadence(tk, tables, guides, n_bars)]
    grammar = GrammarMask(tk, tables, n_bars, np.array([g.tempo is not None for g in guides]),
                          np.array([g.time_signature is not None for g in guides]))
    return [p for p in rules if p.active] + [grammar]


def _beat_scale(guides: list[Guidance]) -> float:
    """Quarter-note beats in one of the sampler's beats: its positions count the metre's denominator."""
    metre = next((g.time_signature for g in guides if g.time_signature is not None), (4, 4))
    return 4.0 / metre[1]
