"""Bar-level form: the stall rule and the final tonic chord."""

from __future__ import annotations

import numpy as np

from emomusic.music.form import STALL_SPAN, close_on_tonic, stall_flags
from emomusic.music.notes import Notes


def test_a_phrase_on_a_triad_stalls_and_a_moving_or_repeated_one_does_not() -> None:
    c, f, g = frozenset({0, 4, 7}), frozenset({5, 9, 0}), frozenset({7, 11, 2})
    flags = stall_flags([c, f, g, c] * 2 + [c] * 6)
    assert not flags[:8].any()  # I-IV-V-I twice: a repeat is form, not a stall
    assert flags[8 + STALL_SPAN - 2:].all() and not flags[8 + STALL_SPAN - 3]  # a whole phrase on C major


def _piece() -> Notes:
    """Three bars in D minor: a melody over a bass; the melody's last note (A5) rings over the last barline."""
    pitch = [38, 62, 65, 69, 45, 64, 67, 81, 50, 74, 77]
    start = [0, 0, 1, 2, 4, 4, 5, 7.5, 8, 9, 11.5]
    return Notes.from_arrays(pitch, start, [4, 1, 1, 2, 4, 1, 2, 2, 4, 2, 0.5], [60] * 8 + [80] * 3)


def test_the_last_bar_becomes_a_held_tonic_chord_over_the_tonic() -> None:
    out = close_on_tonic(_piece(), (2, "minor"), bars=2)
    last = out.start >= 4.0 - 1e-9
    chord = out.pitch[last]
    assert (out.start[last] == 4.0).all() and (out.start[last] + out.duration[last] == 8.0).all()  # held to the end
    assert chord.min() % 12 == 2 and set(chord % 12) == {2, 5, 9}  # D minor, D in the bass
    assert abs(int(chord.min()) - 38) <= 6  # the bass in the register the bass was in
    assert abs(int(chord.max()) - 69) <= 4  # the top near the melody's last note (A4)
    assert (out.start[~last] + out.duration[~last] <= 4.0 + 1e-9).all()  # the bars before end at the barline
    assert 60 <= int(np.median(out.velocity[last])) <= 80


def test_a_one_bar_piece_is_left_alone() -> None:
    piece = _piece()
    assert close_on_tonic(piece, (2, "minor"), bars=1) is piece


def test_generated_pieces_end_on_their_tonic_unless_asked_not_to() -> None:
    from emomusic.music.attributes import signature_key
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    closed = em.generate(emotion="sad", bars=4, seed=3)[0].notes
    last = closed.start >= 3 * closed.beats_per_bar - 1e-9
    assert last.any() and (closed.start[last] == 3 * closed.beats_per_bar).all()
    tonic, _ = signature_key(closed)
    assert closed.pitch[last].min() % 12 == tonic
    open_end = em.generate(emotion="sad", bars=4, seed=3, ending=False)[0].notes
    assert not np.array_equal(open_end.pitch, closed.pitch)
