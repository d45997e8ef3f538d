"""`emomusic transform`: the same piece in another mood, its melody (or chords) kept.

Fixtures are built here: a C-major tune on its own track over a chord track (4/4, 4 bars), written as a
MIDI file when the command line is tested. The debug pipeline (a tiny random generator) samples the
accompaniment, so what is checked is what the transform guarantees whatever the model writes: the
tune's onsets and contour, its mode, the accompaniment under it, the errors, and reproducibility.
"""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from emomusic.cli import main
from emomusic.music import transform as tf
from emomusic.music.notes import Notes
from emomusic.music.tracks import Track

DEBUG = ["--checkpoints", "debug"]
TUNE = [72, 74, 76, 77, 79, 77, 76, 74, 72, 76, 79, 84, 83, 79, 77, 72]  # C major, one note a beat
CHORDS = [(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)]  # I IV V I, a bar each


def _tune() -> Notes:
    return Notes.from_arrays(TUNE, np.arange(16.0), np.full(16, 0.9), np.full(16, 80), 100.0)


def _chords() -> Notes:
    p = [q for ch in CHORDS for q in ch]
    s = [4.0 * b for b, ch in enumerate(CHORDS) for _ in ch]
    return Notes.from_arrays(p, s, np.full(len(p), 4.0), np.full(len(p), 60), 100.0)


def _tracks() -> list[Track]:
    return [Track("Tune", 0, "user", _tune()), Track("Chords", 0, "user", _chords())]


@pytest.fixture(scope="module")
def em():
    from emomusic.pipeline import EmoMusic

    return EmoMusic.from_pretrained("debug")


@pytest.fixture(scope="module")
def sad(em):
    from emomusic.request import GenerationRequest

    return em.transform(_tracks(), GenerationRequest(emotion="sad", seed=3), keep="melody")[0]


def test_the_parallel_mode_moves_the_third_sixth_and_seventh() -> None:
    scale = Notes.from_arrays([60, 62, 64, 65, 67, 69, 71, 72], np.arange(8.0), np.ones(8), np.full(8, 70))
    minor = tf.to_mode(scale, 0, "major", "minor")
    assert minor.pitch.tolist() == [60, 62, 63, 65, 67, 68, 70, 72]  # C natural minor
    assert tf.to_mode(minor, 0, "minor", "major").pitch.tolist() == scale.pitch.tolist()
    assert tf.to_mode(scale, 0, "major", "major") is scale  # same mode: unchanged
    assert minor.start.tolist() == scale.start.tolist() and minor.duration.tolist() == scale.duration.tolist()


def test_the_melody_keeps_its_onsets_and_contour_in_the_target_mode(sad) -> None:
    lead, acc = sad.arrangement.tracks[:2]
    assert (lead.name, lead.role) == ("Tune", "melody") and acc.role == "chords"
    assert tf.onsets_kept(_tune().start, lead.notes.start) >= 0.9
    assert sad.sections[0]["key_before"] == "C major" and sad.sections[0]["key"] == "C minor"
    want = dict(zip(_tune().start.tolist(), tf.to_mode(_tune(), 0, "major", "minor").pitch.tolist(), strict=True))
    got = dict(zip(lead.notes.start.tolist(), lead.notes.pitch.tolist(), strict=True))
    shifts = {got[t] - want[t] for t in got}
    assert len(shifts) == 1 and next(iter(shifts)) % 12 == 0  # the minor tune, at most moved by whole octaves
    assert not set(np.asarray(lead.notes.pitch) % 12) & {4, 9, 11}  # no E, A or B left
    assert lead.notes.tempo == pytest.approx(sad.sections[0]["tempo"])


def test_the_accompaniment_never_sounds_above_the_melody(sad) -> None:
    lead, acc = (t.notes for t in sad.arrangement.tracks[:2])
    assert len(acc)
    for p, s, d in zip(acc.pitch, acc.start, acc.duration, strict=True):
        sounding = (lead.start < s + d - 1e-6) & (lead.start + lead.duration > s + 1e-6)
        assert not sounding.any() or p < lead.pitch[sounding].min()


def test_harmonise_chooses_chords_that_hold_the_tune() -> None:
    tune = tf.to_mode(_tune(), 0, "major", "minor")
    chords = tf.harmonise(tune, 0, "minor", 16)
    assert chords.shape == (16, 12) and (chords.sum(1) == 3).all()  # a triad on every beat
    assert tf.chord_tone_share(tune, chords) >= 0.75
    assert chords[0, [0, 3, 7]].all()  # the opening C is harmonised by C minor


def test_accompany_forbids_the_tune_and_above_and_favours_chord_tones(em) -> None:
    from emomusic.generation.guidance import Accompaniment, Guidance
    from emomusic.generation.processors import Accompany, RemiState, RemiTables, build_processors
    from emomusic.music.tokenizer import PITCH

    tk = em.tokenizer
    tables = RemiTables.of(tk)
    ceiling = np.full(64, 128, dtype=np.int64)
    ceiling[16:24] = 67  # beat 2: the tune sings G4
    favour = np.zeros((64, 12), dtype=np.float32)
    favour[16:24, [0, 3, 7]] = 1.0  # C minor
    g = Guidance(accompany=Accompaniment(ceiling, favour))
    assert "Accompany" in [type(p).__name__ for p in build_processors(tk, tables, [g], 4)]
    proc = Accompany(tk, tables, [g, Guidance()])
    state = RemiState.start(2, 0)
    state.beats_before[:] = 0.0
    state.pos[:] = 2 * tables.positions_per_beat  # both rows at beat 2 of bar 1
    x = np.zeros((2, len(tk)), dtype=np.float32)
    proc(state, x)
    ids = tk.ids_of_type(PITCH)
    pitch = tk.values[ids].astype(int)
    assert np.isneginf(x[0, ids[pitch >= 67]]).all() and np.isfinite(x[0, ids[pitch < 67]]).all()
    assert x[0, ids[pitch == 60]] == 1.0 and x[0, ids[pitch == 62]] == 0.0
    assert not x[1].any()  # a row without a tune is left alone


def _write(path, tracks: list[tuple[str, int, int, list[tuple[float, int, float]]]], tpq: int = 384) -> None:
    """A type-1 file at 100 BPM: a conductor track, then (name, channel, program, [(beat, pitch, beats)])."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
                                      mido.MetaMessage("time_signature", numerator=4, denominator=4)]))
    for name, channel, program, notes in tracks:
        events = [(round(b * tpq), 1, p) for b, p, _d in notes] + [(round((b + d) * tpq), 0, p) for b, p, d in notes]
        msgs, now = [mido.MetaMessage("track_name", name=name),
                     mido.Message("program_change", channel=channel, program=program)], 0
        for t, on, p in sorted(events):
            msgs.append(mido.Message("note_on" if on else "note_off", channel=channel, note=p, velocity=80 if on else 0,
                                     time=t - now))
            now = t
        mid.tracks.append(mido.MidiTrack(msgs))
    mid.save(str(path))


def _song(path, bars: int = 4) -> None:
    tune = [(float(b), TUNE[b % 16], 0.9) for b in range(4 * bars)]
    chords = [(4.0 * b, q, 4.0) for b in range(bars) for q in CHORDS[b % 4]]
    _write(path, [("Tune", 0, 0, tune), ("Chords", 1, 0, chords)])


def test_the_command_writes_the_same_bytes_for_the_same_seed(tmp_path, capsys) -> None:
    src = tmp_path / "song.mid"
    _song(src)
    outs = [tmp_path / "a.mid", tmp_path / "b.mid"]
    for out in outs:
        assert main(["transform", str(src), *DEBUG, "--emotion", "sad", "--seed", "5", "--out", str(out)]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert "in C minor (was C major), sad (Q3)" in capsys.readouterr().out
    got = mido.MidiFile(str(outs[0]))
    names = [m.name for t in got.tracks for m in t if m.type == "track_name"]
    assert "Tune" in names and "Chords" in names


def test_the_json_names_the_keys_and_the_tracks(tmp_path, capsys) -> None:
    src, out = tmp_path / "song.mid", tmp_path / "calm.mid"
    _song(src)
    rc = main(["transform", str(src), *DEBUG, "--emotion", "calm", "--keep", "harmony", "--candidates", "2",
               "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and out.is_file()
    assert res["keep"] == "harmony" and res["key"] == "C major" and res["quadrant"] == "Q4"
    assert [t["role"] for t in res["tracks"]] == ["piano"] and res["bars"] == 4
    assert "recognized" in res  # None here: the debug checkpoints have no recognizer


def _drums(path) -> None:
    _write(path, [("Kit", 9, 0, [(float(k), 36 if k % 2 == 0 else 38, 0.25) for k in range(16)])])


def _no_notes(path) -> None:
    mid = mido.MidiFile(type=1)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    mid.save(str(path))


@pytest.mark.parametrize("make", [
    "missing", "empty", "broken", "no notes", "drums only", "too long",
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys, make) -> None:
    src = tmp_path / "in.mid"
    if make == "empty":
        src.write_bytes(b"")
    elif make == "broken":
        src.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    elif make == "no notes":
        _no_notes(src)
    elif make == "drums only":
        _drums(src)
    elif make == "too long":
        _song(src, bars=70)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(["transform", str(src), *DEBUG, "--emotion", "sad", "--out", str(tmp_path / "out.mid")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_keep_and_metre_are_refused(em) -> None:
    from emomusic.errors import InvalidInputError
    from emomusic.request import GenerationRequest

    with pytest.raises(InvalidInputError, match="melody"):
        em.transform(_tracks(), GenerationRequest(emotion="sad"), keep="rhythm")
    with pytest.raises(InvalidInputError, match="metre"):
        em.transform(_tracks(), GenerationRequest(emotion="sad", time_signature="3/4"))


def test_a_one_beat_metre_is_accompanied_in_whole_bars(em) -> None:
    """Some files read as 1/4: the model never wrote bars of one beat, so it samples 4/4 over the same beats."""
    from dataclasses import replace

    from emomusic.request import GenerationRequest

    tracks = [Track(t.name, t.program, t.role, replace(t.notes, time_signature=(1, 4))) for t in _tracks()]
    best = em.transform(tracks, GenerationRequest(emotion="happy", seed=1))[0]
    lead, acc = (t.notes for t in best.arrangement.tracks[:2])
    assert best.notes.time_signature == (1, 4) and best.sections[0]["bars"] == 16
    assert len(acc) and acc.end <= 16 + 1e-6 and tf.onsets_kept(_tune().start, lead.start) >= 0.9
