"""The musicality statistics on MIDI files built here, with values worked out by hand."""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest

from emomusic.evaluation.musicality import (
    Range,
    accidental_share,
    compare,
    musicality,
    real_range,
    signature_right,
)
from emomusic.music.notes import Notes

TPQ = 480


def write(path, notes, tempo=120.0, pedal_at=None, key=None, time_signature=(4, 4)):
    """notes: (pitch, start beat, duration beats, velocity); one piano track and a conductor track."""
    f = mido.MidiFile(ticks_per_beat=TPQ)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0),
                                mido.MetaMessage("time_signature", numerator=time_signature[0],
                                                 denominator=time_signature[1], time=0)])
    if key:
        conductor.append(mido.MetaMessage("key_signature", key=key, time=0))
    f.tracks.append(conductor)
    events = []
    for p, s, d, v in notes:
        events.append((round(s * TPQ), 1, mido.Message("note_on", note=p, velocity=v)))
        events.append((round((s + d) * TPQ), 0, mido.Message("note_off", note=p, velocity=0)))
    if pedal_at is not None:
        events.append((round(pedal_at * TPQ), 0, mido.Message("control_change", control=64, value=127)))
        events.append((round((pedal_at + 1) * TPQ), 0, mido.Message("control_change", control=64, value=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = mido.MidiTrack(), 0
    for t, _, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    f.tracks.append(track)
    f.save(path)
    return path


def c_major_bars(n_bars, velocity=80):
    """A C-major chord on every beat and a melody note above it, the same in every bar, ending on C."""
    notes = []
    for b in range(n_bars):
        for beat in range(4):
            t = 4 * b + beat
            notes += [(48, t, 1, velocity - 20), (52, t, 1, velocity - 20), (55, t, 1, velocity - 20),
                      (72 + 2 * beat, t, 1, velocity)]
    return notes


def test_a_plain_piece_measures_what_was_written(tmp_path):
    m = musicality(write(tmp_path / "a.mid", c_major_bars(4), tempo=90, key="C"), beats=16)
    assert m["tempo"] == pytest.approx(90.0)
    assert m["distinct_velocities"] == 2
    assert m["pedal"] == 0
    assert m["top_voice_excess"] == pytest.approx(20.0)  # melody at 80 over the chord at 60
    assert (m["highest_pitch"], m["lowest_pitch"]) == (78, 48)
    assert m["above_c5"] == 1
    assert m["key_signature_agrees"] == 1
    assert m["key_signature_right"] == 1
    assert m["tonic_triad_share"] == pytest.approx(14 / 16)  # a bar: 12 chord notes, melody C D E F#
    assert m["duplicate_notes"] == 0
    assert m["returning_bars"] == pytest.approx(1.0)  # bars 2-4 repeat bar 1
    assert m["cut_off_at_end"] == 0


def test_dissonance_pedal_duplicates_wrong_key_and_cut_off_ending(tmp_path):
    notes = [(60, 0, 4, 70), (61, 0, 4, 70), (66, 0, 4, 70),  # C, C#, F#: pairs ic1, ic6, ic5 -> 2 of 3
             (60, 0, 1, 70),  # the same pitch at the same onset again
             (62, 4, 1.5, 60), (67, 6, 3, 50)]  # rings past the end of bar 2 (beat 8)
    m = musicality(write(tmp_path / "b.mid", notes, pedal_at=1.0, key="F#"), beats=8)
    assert m["dissonance"] == pytest.approx(2 / 3)
    assert m["pedal"] == 1
    assert m["duplicate_notes"] == 1
    assert m["key_signature_agrees"] == 0  # F# major written; the notes say otherwise
    assert m["key_signature_right"] == 0  # and it writes 4 of the 6 notes with an accidental
    assert m["cut_off_at_end"] == 1
    assert m["returning_bars"] == 0


def test_minor_key_signatures_and_a_missing_one(tmp_path):
    a_minor = [(57, 0, 2, 80), (60, 0, 2, 80), (64, 0, 2, 80), (57, 2, 2, 80), (59, 2, 1, 80), (45, 3, 1, 80)]
    written = musicality(write(tmp_path / "am.mid", a_minor, key="Am"), beats=4)
    assert written["key_signature_agrees"] == 1
    assert written["ends_on_tonic"] == 1  # the last onset's lowest note is A
    assert math.isnan(musicality(write(tmp_path / "none.mid", a_minor), beats=4)["key_signature_agrees"])


def test_a_signature_is_right_where_the_notes_cannot_tell_it_from_the_judges():
    no_b = np.array([60, 64, 65, 67, 69, 72, 65, 60])  # C E F G A: C major and F major write them alike
    assert accidental_share(no_b, 0) == accidental_share(no_b, -1) == 0
    assert signature_right(no_b, written=0, judged=-1)  # either stave reads the same
    with_b = np.append(no_b, [71, 71])  # B natural: F major's stave needs a natural on it
    assert accidental_share(with_b, -1) == pytest.approx(0.2)
    assert signature_right(with_b, written=0, judged=-1)  # the judge's key would write more accidentals
    assert not signature_right(with_b, written=-1, judged=0)
    assert signature_right(with_b, written=-1, judged=-1)  # agreeing with the judge counts, whatever the notes


def test_the_ending_is_judged_by_the_bass_sounding_at_the_last_onset(tmp_path):
    c_major = [(48, 0, 4, 70), (52, 0, 4, 70), (55, 0, 4, 70), (60, 0, 4, 70)]
    held = [*c_major, (48, 4, 4, 70), (55, 4, 4, 70), (64, 5, 3, 70)]  # C and G held; E struck above them
    assert musicality(write(tmp_path / "held.mid", held), beats=8)["ends_on_tonic"] == 1
    released = [*c_major, (48, 4, 1, 70), (55, 4, 1, 70), (64, 5, 3, 70)]  # the bass let go first: E alone
    assert musicality(write(tmp_path / "released.mid", released), beats=8)["ends_on_tonic"] == 0


def test_the_span_and_the_tail(tmp_path):
    notes = [(60, 0, 1, 10), (62, 4, 1, 20), (64, 8, 1, 30), (67, 12, 4, 40)]
    path = write(tmp_path / "c.mid", notes)
    assert musicality(path, beats=8)["highest_pitch"] == 62
    tail = musicality(path, beats=8, tail=True)
    assert (tail["lowest_pitch"], tail["highest_pitch"], tail["distinct_velocities"]) == (64, 67, 2)
    assert tail["cut_off_at_end"] == 0  # the last note ends on the final barline


def test_real_range_and_compare():
    r = real_range(list(range(11)), [5.0, float("nan"), 6.0])
    assert (r.low, r.high, r.real_median, r.generated_median) == (1.0, 9.0, 5.0, 5.5)
    assert r.inside
    assert not Range(1.0, 2.0, 1.5, 3.0).inside
    out = compare([{"tempo": 100.0} | dict.fromkeys(("pedal",), 1.0)] * 3, [{"tempo": 140.0, "pedal": 0.0}])
    assert not out["tempo"].inside and not out["pedal"].inside
    assert math.isnan(out["dissonance"].generated_median)


def test_signature_judge_is_a_different_profile_with_the_same_accidentals() -> None:
    from emomusic.evaluation.musicality import fifths, judged_signature

    assert [fifths(0, "major"), fifths(9, "minor"), fifths(2, "major"), fifths(6, "minor"), fifths(5, "major")] == \
        [0, 0, 2, 3, -1]
    # D major scale and a D major chord held: two sharps, whichever profile
    notes = Notes.from_arrays([62, 64, 66, 67, 69, 71, 73, 74, 62, 66, 69], [0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8],
                              [1] * 8 + [4] * 3, [80] * 11)
    assert judged_signature(notes) == 2


def test_sections_and_stalls_by_hand(tmp_path) -> None:
    from emomusic.evaluation.musicality import longest_stall, sections

    # 8 bars: bars 0-3 C-D-E-F in quarters over held chords C, F, G, C; bars 4-7 the note A hammered alone
    notes = [(60 + [0, 2, 4, 5][k % 4], float(k), 1.0, 80) for k in range(16)]
    chords = ((48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55))
    notes += [(p, 4.0 * b, 4.0, 60) for b, chord in enumerate(chords) for p in chord]
    notes += [(69, 16.0 + k, 1.0, 80) for k in range(16)]
    path = write(tmp_path / "x.mid", notes)
    first, second, empty = sections(path, section_bars=4, n_sections=3)
    assert first["density"] == pytest.approx(28 / 16) and second["density"] == pytest.approx(1.0)
    assert first["polyphony"] == pytest.approx(4.0) and second["polyphony"] == pytest.approx(1.0)
    assert first["pitch_range"] == 65 - 48 and second["pitch_range"] == 0
    assert first["pitch_classes"] == 7 and second["pitch_classes"] == 1
    assert set(empty.values()) == {0.0}  # past the end
    late = write(tmp_path / "late.mid", [(p, t + 8.0, d, v) for p, t, d, v in notes])  # two silent bars first
    assert sections(late, section_bars=4, n_sections=2) == [first, second]
    # bars 4-7 on one pitch class: a phrase stalls from its last bar on (bars 5-7 reach back to bar 3's C major)
    assert longest_stall(path) == 1
    assert longest_stall(path, n_bars=5) == 0
