"""Key, beat-synchronous chords and harmony summaries, on progressions worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.music.harmony import (
    NO_CHORD,
    QUALITIES,
    SUMMARY_NAMES,
    analyse,
    beat_chroma,
    chord_sequence,
    normalising_shift,
    summary_features,
)
from emomusic.music.notes import Notes


def _progression(chords: list[tuple[int, ...]], beats_each: float = 4.0, velocity: int = 80) -> Notes:
    """Block chords, one per `beats_each` beats, with a bass note an octave below the first pitch."""
    pitch, start = [], []
    for i, chord in enumerate(chords):
        for p in (chord[0] - 12, *chord):
            pitch.append(p)
            start.append(i * beats_each)
    return Notes.from_arrays(pitch, start, [beats_each] * len(pitch), [velocity] * len(pitch))


C, F, G7, AM, DM, E = (60, 64, 67), (65, 69, 72), (67, 71, 74, 77), (57, 60, 64), (62, 65, 69), (64, 68, 71)


def test_beat_chroma_splits_notes_over_beats() -> None:
    # One C lasting 1.5 beats from beat 0.5: half a beat in beat 0, a full beat in beat 1.
    n = Notes.from_arrays([60, 67], [0.5, 2.0], [1.5, 1.0], [80, 80])
    chroma = beat_chroma(n)
    assert chroma.shape == (3, 12)
    assert chroma[0, 0] == pytest.approx(0.5) and chroma[1, 0] == pytest.approx(1.0)
    assert chroma[2, 7] == pytest.approx(1.0) and chroma[2, 0] == 0


def test_templates_name_triads_and_sevenths() -> None:
    roots, quals = chord_sequence(beat_chroma(_progression([C, AM, G7, (60, 63, 66)], beats_each=1)))
    assert roots.tolist() == [0, 9, 7, 0]
    assert [QUALITIES[q] for q in quals] == ["maj", "min", "7", "dim"]


def test_single_notes_are_no_chord() -> None:
    melody = Notes.from_arrays([60, 62, 64], [0, 1, 2], [1, 1, 1], [80] * 3)
    roots, quals = chord_sequence(beat_chroma(melody))
    assert (roots == NO_CHORD).all() and (quals == NO_CHORD).all()


@pytest.mark.parametrize(("tonic", "mode", "shift"), [(0, "major", 0), (7, "major", 5), (9, "minor", 0),
                                                       (4, "minor", 5)])
def test_normalising_shift_maps_keys_to_c_major_and_a_minor(tonic: int, mode: str, shift: int) -> None:
    assert normalising_shift(tonic, mode) == shift


@pytest.mark.parametrize("semitones", [-5, -1, 0, 2, 6])
def test_chords_are_the_same_in_every_key(semitones: int) -> None:
    piece = _progression([C, F, G7, C])
    h = analyse(piece.transpose(semitones))
    assert h.mode == "major" and h.tonic == semitones % 12
    assert h.chords()[::4] == ["C:maj", "F:maj", "G:7", "C:maj"]
    np.testing.assert_allclose(summary_features(h), summary_features(analyse(piece)), atol=1e-6)


def test_minor_piece_normalises_to_a_minor() -> None:
    h = analyse(_progression([AM, DM, E, AM]).transpose(-2))  # G minor: i iv V i
    assert h.mode == "minor"
    assert h.chords()[::4] == ["A:min", "D:min", "E:maj", "A:min"]
    f = dict(zip(SUMMARY_NAMES, summary_features(h), strict=True))
    assert f["minor_key"] == 1.0
    assert f["quality_min"] == pytest.approx(0.75)
    assert f["tonic_chord_fraction"] == pytest.approx(0.5)
    assert f["cadence_rate"] > 0  # E → Am is a dominant → tonic cadence


def test_summary_of_major_cadence() -> None:
    f = dict(zip(SUMMARY_NAMES, summary_features(analyse(_progression([C, F, G7, C]))), strict=True))
    assert f["minor_key"] == 0.0 and f["chord_fraction"] == 1.0 and f["diatonic_root_fraction"] == 1.0
    assert f["dominant_chord_fraction"] == pytest.approx(0.25)
    assert f["subdominant_chord_fraction"] == pytest.approx(0.25)
    assert f["cadence_rate"] == pytest.approx(1 / 16)
    assert sum(f[f"quality_{q}"] for q in QUALITIES) == pytest.approx(1.0)


def test_empty_piece_has_zero_summary() -> None:
    empty = Notes.from_arrays([], [], [], [])
    f = summary_features(analyse(empty))
    assert f.shape == (len(SUMMARY_NAMES),) and not f[2:].any()


def test_bar_chords_names_each_bars_triad_above_the_tonic():
    from emomusic.music.harmony import NO_CHORD, QUALITIES, bar_chords

    # D major, 4/4: I (D F# A) for a bar, then vi (B D F#) and V7's triad (A C# E), then a bar with one pitch
    notes = Notes.from_arrays([62, 66, 69, 59, 62, 66, 69, 73, 76, 62], [0, 0, 0, 4, 4, 4, 8, 8, 8, 12],
                              [4] * 10, [64] * 10)
    got = bar_chords(notes, tonic=2)
    assert got[:3].tolist() == [[0, QUALITIES.index("maj")], [9, QUALITIES.index("min")], [7, QUALITIES.index("maj")]]
    assert got[3].tolist() == [NO_CHORD, NO_CHORD]
