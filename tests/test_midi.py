"""MIDI loading errors (emomusic.music.midi) and DAW-ready export (emomusic.export, emomusic.io).

Every fixture is built in code; expected values are worked out by hand in ticks at 480 per quarter.
"""

from __future__ import annotations

import os
from pathlib import Path

import mido
import pytest

from emomusic.errors import InvalidInputError
from emomusic.export.midi import export_midi
from emomusic.export.musicxml import export_musicxml
from emomusic.io import atomic_write
from emomusic.music.attributes import estimate_key
from emomusic.music.midi import load_notes
from emomusic.music.notes import Notes

TPQ = 480


def _piece(time_signature: tuple[int, int] = (4, 4), tempo: float = 96.0) -> Notes:
    """A small C-major phrase on a 16th-note grid, with a chord and a repeated pitch."""
    return Notes.from_arrays(
        pitch=[60, 64, 67, 72, 62, 65, 60, 67, 71, 74],
        start=[0.0, 0.0, 0.0, 1.0, 1.5, 2.25, 3.0, 3.0, 4.0, 4.5],
        duration=[1.0, 1.0, 1.0, 0.5, 0.75, 0.75, 1.0, 2.0, 0.5, 0.25],
        velocity=[80, 72, 72, 100, 64, 90, 110, 50, 33, 127],
        tempo=tempo,
        time_signature=time_signature,
    )


def _as_tuples(notes: Notes) -> list[tuple[int, float, float, int]]:
    return [
        (int(p), float(s), float(d), int(v))
        for p, s, d, v in zip(notes.pitch, notes.start, notes.duration, notes.velocity, strict=True)
    ]


def _mido_notes(track: mido.MidiTrack) -> list[tuple[int, int, int, int]]:
    """(pitch, start tick, end tick, velocity) read straight from the events, sorted by (start, pitch).

    Fails if a pitch is switched on while it is already sounding (an overlapping duplicate).
    """
    tick, sounding, out = 0, {}, []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in sounding, f"pitch {msg.note} re-struck at {tick} while sounding"
            sounding[msg.note] = (tick, msg.velocity)
        elif msg.type in ("note_off", "note_on"):
            start, vel = sounding.pop(msg.note)
            out.append((msg.note, start, tick, vel))
    assert not sounding, f"notes never released: {sounding}"
    return sorted(out, key=lambda n: (n[1], n[0]))


def _music21_onset_pitches(score) -> list[int]:
    """Sorted MIDI pitches of struck notes; music21 splits bar-crossing notes into tied parts."""
    out = []
    for element in score.recurse().notes:
        for note in getattr(element, "notes", None) or [element]:
            tie = note.tie if note.tie is not None else element.tie
            if tie is None or tie.type == "start":
                out.append(note.pitch.midi)
    return sorted(out)


def _track_ticks(track: mido.MidiTrack) -> int:
    assert track[-1].type == "end_of_track"
    return sum(msg.time for msg in track)


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    return export_midi(_piece(), tmp_path / "piece.mid")


# --------------------------------------------------------------------------------------------------
# Loading: every bad file is one InvalidInputError with a one-line message
# --------------------------------------------------------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = export_midi(_piece(), tmp_path / "good.mid").read_bytes()
    files = {
        "missing": tmp_path / "missing.mid",
        "empty": tmp_path / "empty.mid",
        "not_midi": tmp_path / "text.mid",
        "truncated": tmp_path / "truncated.mid",
        "no_notes": tmp_path / "no_notes.mid",
    }
    files["empty"].write_bytes(b"")
    files["not_midi"].write_bytes(b"this is a text file, not a standard MIDI file\n" * 4)
    files["truncated"].write_bytes(good[: len(good) // 2])
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000),
                                      mido.MetaMessage("end_of_track", time=1920)]))
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("track_name", name="Empty"),
                                      mido.Message("program_change", program=0)]))
    mid.save(str(files["no_notes"]))
    return files


@pytest.mark.parametrize("kind", ["missing", "empty", "not_midi", "truncated", "no_notes"])
def test_load_bad_file_raises_one_line_error(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(InvalidInputError) as info:
        load_notes(path)
    message = str(info.value)
    assert message and "\n" not in message
    assert str(path) in message


# --------------------------------------------------------------------------------------------------
# Export content
# --------------------------------------------------------------------------------------------------


def test_round_trip_keeps_notes_on_grid(tmp_path: Path) -> None:
    notes = _piece(tempo=96.0, time_signature=(3, 4))
    back = load_notes(export_midi(notes, tmp_path / "rt.mid"))
    assert _as_tuples(back) == _as_tuples(notes)
    assert back.tempo == pytest.approx(96.0)
    assert back.time_signature == (3, 4)


def test_overlaps_duplicates_and_ranges_cleaned_by_hand(tmp_path: Path) -> None:
    notes = Notes.from_arrays(
        pitch=[60, 60, 60, 64, 64, 67, 130, -5],
        start=[0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 3.0, 3.5],
        duration=[2.0, 1.0, 1.0, 1.0, 3.0, 0.0, 0.5, 0.5],
        velocity=[80, 90, 90, 70, 100, 60, 0, 200],
    )
    path = export_midi(notes, tmp_path / "clean.mid")
    # 60@0 (2 beats) is cut at the next onset of 60 (beat 1); the exact duplicate 60@1 is dropped;
    # of the two 64s at beat 0 the longer one stays; the zero-length 67 goes; pitch and velocity clip.
    expected = [
        (60, 0, 480, 80),
        (64, 0, 1440, 100),
        (60, 480, 960, 90),
        (127, 1440, 1680, 1),
        (0, 1680, 1920, 127),
    ]
    assert _mido_notes(mido.MidiFile(str(path)).tracks[1]) == expected
    back = load_notes(path)
    assert _as_tuples(back) == [(p, s / TPQ, (e - s) / TPQ, v) for p, s, e, v in expected]


def test_repeated_pitch_note_off_precedes_note_on(tmp_path: Path) -> None:
    # Back-to-back notes of one pitch: the off at tick 480 must come before the next on at 480.
    notes = Notes.from_arrays([60, 60], [0.0, 1.0], [1.0, 1.0], [80, 81])
    path = export_midi(notes, tmp_path / "rep.mid")
    assert _mido_notes(mido.MidiFile(str(path)).tracks[1]) == [(60, 0, 480, 80), (60, 480, 960, 81)]


@pytest.mark.parametrize("ts", [(4, 4), (3, 4), (6, 8), (7, 8), (5, 4), (2, 2)])
def test_end_of_track_on_next_bar_line(tmp_path: Path, ts: tuple[int, int]) -> None:
    notes = Notes.from_arrays([60, 64], [0.0, 4.75], [1.0, 0.5], [90, 90], time_signature=ts)  # ends 5.25
    mid = mido.MidiFile(str(export_midi(notes, tmp_path / "loop.mid")))
    bar = ts[0] * TPQ * 4 // ts[1]
    last_end = int(5.25 * TPQ)
    for track in mid.tracks:  # conductor and notes end together, so the loop length is unambiguous
        total = _track_ticks(track)
        assert total % bar == 0
        assert last_end <= total < last_end + bar


def test_note_ending_on_bar_line_adds_no_empty_bar(tmp_path: Path) -> None:
    notes = Notes.from_arrays([60], [7.0], [1.0], [90])  # ends exactly at bar 2 in 4/4
    mid = mido.MidiFile(str(export_midi(notes, tmp_path / "exact.mid")))
    assert _track_ticks(mid.tracks[1]) == 2 * 4 * TPQ


def test_file_layout_is_daw_ready(exported: Path) -> None:
    mid = mido.MidiFile(str(exported))
    assert mid.type == 1
    assert mid.ticks_per_beat == 480
    assert len(mid.tracks) == 2
    conductor, piano = mid.tracks
    meta = {msg.type: msg for msg in conductor}
    assert mido.tempo2bpm(meta["set_tempo"].tempo) == pytest.approx(96.0)
    assert (meta["time_signature"].numerator, meta["time_signature"].denominator) == (4, 4)
    assert meta["key_signature"].key == "C"
    assert not any(msg.type.startswith("note") for msg in conductor)
    assert piano[0].type == "track_name" and piano[0].name == "Piano"
    programs = [msg for msg in piano if msg.type == "program_change"]
    assert len(programs) == 1 and programs[0].program == 0 and programs[0].time == 0


def test_track_name_program_and_explicit_key(tmp_path: Path) -> None:
    path = export_midi(_piece(), tmp_path / "named.mid", key=(9, "minor"), track_name="Lead", program=4)
    conductor, track = mido.MidiFile(str(path)).tracks
    assert [m.key for m in conductor if m.type == "key_signature"] == ["Am"]
    assert track[0].name == "Lead"
    assert [m.program for m in track if m.type == "program_change"] == [4]


@pytest.mark.parametrize("key", [(12, "major"), (-1, "minor"), (0, "dorian"), (1.5, "major"), "C"])
def test_bad_key_raises(tmp_path: Path, key: object) -> None:
    with pytest.raises(InvalidInputError):
        export_midi(_piece(), tmp_path / "bad.mid", key=key)  # type: ignore[arg-type]
    assert not (tmp_path / "bad.mid").exists()


def test_no_notes_or_bad_program_raise(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        export_midi(Notes.from_arrays([], [], [], []), tmp_path / "none.mid")
    with pytest.raises(InvalidInputError):
        export_midi(_piece(), tmp_path / "prog.mid", program=128)
    assert list(tmp_path.iterdir()) == []


def test_estimate_key() -> None:
    c_major = Notes.from_arrays(  # C-E-G held, scale passing through
        [48, 52, 55, 60, 62, 64, 65, 67, 69, 71, 72],
        [0, 0, 0, 0, 1, 1.5, 2, 2.5, 3, 3.5, 4], [4, 4, 4, 1, .5, .5, .5, .5, .5, .5, 2], [80] * 11,
    )
    a_minor = Notes.from_arrays(  # A-C-E held, with the raised 7th (G#) of harmonic minor
        [45, 57, 60, 64, 68, 69, 71, 72, 74, 76],
        [0, 0, 0, 0, 1, 2, 2.5, 3, 3.5, 4], [4, 2, 2, 2, 1, 1, .5, .5, .5, 2], [80] * 10,
    )
    assert estimate_key(c_major) == (0, "major")
    assert estimate_key(a_minor) == (9, "minor")
    assert estimate_key(c_major.transpose(7)) == (7, "major")
    assert estimate_key(Notes.from_arrays([], [], [], [])) == (0, "major")
    chromatic = Notes.from_arrays(list(range(60, 72)), list(range(12)), [1] * 12, [80] * 12)
    assert estimate_key(chromatic) == (0, "major")  # flat histogram: a fixed, harmless default


def test_estimated_key_is_written(tmp_path: Path) -> None:
    notes = Notes.from_arrays([45, 57, 60, 64, 68], [0, 0, 0, 0, 1], [4, 2, 2, 2, 1], [80] * 5)
    conductor = mido.MidiFile(str(export_midi(notes, tmp_path / "am.mid"))).tracks[0]
    assert [m.key for m in conductor if m.type == "key_signature"] == ["Am"]


# --------------------------------------------------------------------------------------------------
# DAW readiness: other parsers read the file
# --------------------------------------------------------------------------------------------------


def test_parses_with_pretty_midi(exported: Path) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(exported))
    assert len(pm.instruments) == 1
    inst = pm.instruments[0]
    assert (inst.name, inst.program, inst.is_drum) == ("Piano", 0, False)
    assert sorted(n.pitch for n in inst.notes) == sorted(_piece().pitch.tolist())
    assert pm.get_tempo_changes()[1][0] == pytest.approx(96.0)
    assert [k.key_number for k in pm.key_signature_changes] == [0]  # C major


def test_parses_with_music21(exported: Path) -> None:
    import music21

    score = music21.converter.parse(str(exported), format="midi")
    assert _music21_onset_pitches(score) == sorted(_piece().pitch.tolist())


def test_export_musicxml(tmp_path: Path) -> None:
    import music21

    path = export_musicxml(_piece(), tmp_path / "piece.musicxml")
    assert path.stat().st_size > 0
    score = music21.converter.parse(str(path))
    assert _music21_onset_pitches(score) == sorted(_piece().pitch.tolist())
    with pytest.raises(InvalidInputError, match="already exists"):
        export_musicxml(_piece(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["piece.musicxml"]


# --------------------------------------------------------------------------------------------------
# Atomic writing
# --------------------------------------------------------------------------------------------------


def test_no_overwrite_without_force(exported: Path) -> None:
    before = exported.read_bytes()
    with pytest.raises(InvalidInputError) as info:
        export_midi(Notes.from_arrays([72], [0], [1], [90]), exported)
    assert str(info.value) == f"{exported}: already exists; pass --force to overwrite"
    assert exported.read_bytes() == before
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]


def test_overwrite_with_force(exported: Path) -> None:
    export_midi(Notes.from_arrays([72], [0], [1], [90]), exported, force=True)
    assert _as_tuples(load_notes(exported)) == [(72, 0.0, 1.0, 90)]
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]


def test_missing_parent_directory(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.mid"
    with pytest.raises(InvalidInputError, match="does not exist"):
        export_midi(_piece(), target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_no_temp_file(tmp_path: Path, exc: BaseException, existing: bool) -> None:
    target = tmp_path / "out.json"
    if existing:
        target.write_text("old")
    seen: list[Path] = []

    def write_fn(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp.exists() and tmp.suffix == ".json"
        tmp.write_text("half a fi")
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(target, write_fn, force=True)
    assert len(seen) == 1 and not seen[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.json"] if existing else [])
    if existing:
        assert target.read_text() == "old"


def test_atomic_write_success_and_mode(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("done"))
    assert target.read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # a normal file, not mkstemp's 0600
    with pytest.raises(InvalidInputError, match="is a directory"):
        atomic_write(tmp_path, lambda tmp: None, force=True)


# --------------------------------------------------------------------------------------------------
# MuseScore import (CI installs musescore3)
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_imports_into_musescore3(exported: Path, tmp_path: Path, musescore_import) -> None:
    out = musescore_import(exported, tmp_path)
    assert out.is_file() and out.stat().st_size > 0
    assert "<score-partwise" in out.read_text(errors="replace")
