"""`emomusic continue`: the user's file comes back unchanged, with the asked bars after it.

Fixtures are MIDI files written in the test: a one-track piano piece at 384 ticks per quarter (so the
output must keep the file's own tick grid), a duet with a drum track, and a transcription-like file at
a nominal 120 BPM with onsets off any grid.
"""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from emomusic.cli import main
from emomusic.settings import checkpoints_root

DEBUG = ["--checkpoints", "debug"]


def _note_events(path, before_tick: int | None = None) -> list[tuple]:
    """(track index, absolute tick, pitch, velocity) of every note-on, optionally before a tick."""
    mid = mido.MidiFile(str(path))
    out = []
    for i, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity and (before_tick is None or tick < before_tick):
                out.append((i, tick, msg.note, msg.velocity, msg.channel))
    return sorted(out)


def _write(path, tracks: list[tuple[str, int, int, list[tuple[int, int, int, int]]]], tpq: int = 384,
           tempo: float = 90.0) -> None:
    """A type-1 file: a conductor track, then (name, channel, program, [(tick, pitch, ticks, velocity)])."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)),
                                      mido.MetaMessage("time_signature", numerator=4, denominator=4)]))
    for name, channel, program, notes in tracks:
        events = [(t, 1, p, v) for t, p, _d, v in notes] + [(t + d, 0, p, 0) for t, p, d, _v in notes]
        msgs, now = [mido.MetaMessage("track_name", name=name),
                     mido.Message("program_change", channel=channel, program=program)], 0
        for t, on, p, v in sorted(events):
            msgs.append(mido.Message("note_on" if on else "note_off", channel=channel, note=p, velocity=v,
                                     time=t - now))
            now = t
        mid.tracks.append(mido.MidiTrack(msgs))
    mid.save(str(path))


def _piano(bars: int = 4, tpq: int = 384) -> list:
    rng = np.random.default_rng(0)
    notes = []
    for b in range(bars):
        t0 = b * 4 * tpq
        notes += [(t0, p, 4 * tpq, 60) for p in (48, 52, 55)]
        notes += [(t0 + k * tpq // 2, int(72 + rng.integers(-3, 5)), tpq // 2, 70 + k) for k in range(8)]
    return notes


def test_continue_keeps_the_file_and_adds_the_bars(tmp_path, capsys) -> None:
    src, out = tmp_path / "song.mid", tmp_path / "more.mid"
    _write(src, [("My piano", 0, 0, _piano())])
    rc = main(["continue", str(src), *DEBUG, "--emotion", "calm", "--bars", "4", "--out", str(out)])
    assert rc == 0 and "your 4 bars, then 4 bars" in capsys.readouterr().out
    got = mido.MidiFile(str(out))
    assert got.ticks_per_beat == 384
    assert [m.name for m in got.tracks[1] if m.type == "track_name"] == ["My piano"]
    assert _note_events(out, before_tick=4 * 4 * 384) == _note_events(src)  # every note as it was
    assert max(t for _i, t, *_ in _note_events(out)) >= 4 * 4 * 384  # and new ones after it
    tempo = [m.tempo for m in got.tracks[0] if m.type == "set_tempo"]
    assert tempo == [mido.bpm2tempo(90.0)]


def test_every_part_is_kept_and_the_parts_go_on(tmp_path, capsys) -> None:
    if not (checkpoints_root() / "melody").is_dir():
        pytest.skip("no shipped melody model")
    src, out = tmp_path / "duet.mid", tmp_path / "duet-more.mid"
    tpq = 384
    violin = [(b * 4 * tpq + k * tpq, 76 + (k % 3), tpq, 80) for b in range(4) for k in range(4)]
    cello = [(b * 4 * tpq, 43 - b, 4 * tpq, 70) for b in range(4)]
    kit = [(b * 4 * tpq + k * tpq, 36 if k % 2 == 0 else 38, tpq // 4, 90) for b in range(4) for k in range(4)]
    _write(src, [("Violin", 0, 40, violin), ("Cello", 1, 42, cello), ("Kit", 9, 0, kit)])
    rc = main(["continue", str(src), "--emotion", "happy", "--bars", "4", "--out", str(out), "--json"])  # shipped
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and [t["name"] for t in res["tracks"]] == ["Violin", "Cello", "Kit"]
    assert _note_events(out, before_tick=16 * tpq) == _note_events(src)
    later = [e for e in _note_events(out) if e[1] >= 16 * tpq]
    assert {e[0] for e in later} <= {1, 2, 3} and any(e[4] == 9 for e in later)  # the kit plays on, channel 10
    cello_new = [e[2] for e in later if e[0] == 2]
    assert not cello_new or min(cello_new) >= 36  # the cello's new notes are a cello's
    assert set(res["recognized"]) == {"yours", "continuation"}


def test_a_transcription_is_read_on_its_beats_with_a_note(tmp_path, capsys) -> None:
    src, out = tmp_path / "played.mid", tmp_path / "played-more.mid"
    tpq = 480
    rng = np.random.default_rng(1)
    beat = int(tpq * 120 / 100)  # a 100 BPM performance written at the nominal 120 BPM
    notes = [(int(k * beat + rng.integers(-15, 15)) + 7, 60 + (k % 5) * 2, beat - 20, 70) for k in range(32)]
    notes += [(int(k * 4 * beat) + 3, 48, 4 * beat - 30, 60) for k in range(8)]
    _write(src, [("Piano", 0, 0, notes)], tpq=tpq, tempo=120.0)
    rc = main(["continue", str(src), *DEBUG, "--emotion", "sad", "--bars", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "read on its tracked beats" in err


@pytest.mark.parametrize("argv", [["--bars", "0"], ["--emotion", "sadd-ish-word"], ["--out", "x.txt"]])
def test_bad_continue_input_is_one_line(tmp_path, capsys, argv) -> None:
    src = tmp_path / "s.mid"
    _write(src, [("Piano", 0, 0, _piano(2))])
    base = ["continue", str(src), *DEBUG, "--emotion", "calm"]
    rc = main(base + argv if "--emotion" not in argv else ["continue", str(src), *DEBUG, *argv])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mid"]


def test_infill_rewrites_only_the_chosen_bars(tmp_path, capsys) -> None:
    src, out = tmp_path / "song.mid", tmp_path / "mid.mid"
    _write(src, [("My piano", 0, 0, _piano(6))])
    rc = main(["infill", str(src), *DEBUG, "--bars", "3-4", "--emotion", "tense", "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and [s["label"] for s in res["sections"]] == ["yours", "infill", "yours"]
    bar = 4 * 384
    before, after = _note_events(src), _note_events(out)
    outside = [e for e in before if not 2 * bar <= e[1] < 4 * bar]
    assert [e for e in after if not 2 * bar <= e[1] < 4 * bar] == outside  # the rest as it was
    assert any(2 * bar <= e[1] < 4 * bar for e in after)  # and new notes in bars 3-4


def test_infill_keeps_the_candidate_that_leads_into_what_follows(monkeypatch) -> None:
    from emomusic.generation import sampling
    from emomusic.music.tracks import Track
    from emomusic.pipeline import EmoMusic
    from emomusic.request import GenerationRequest

    em = EmoMusic.from_pretrained("debug")
    piece = em.generate(emotion="calm", bars=6, seed=1, expression=False)[0].notes
    scores: list[float] = []
    real = sampling.log_likelihood

    def spy(*args):
        scores.append(real(*args))
        return scores[-1]

    monkeypatch.setattr(sampling, "log_likelihood", spy)
    best = em.infill([Track("Piano", 0, "user", piece)], 3, 4, GenerationRequest(emotion="sad", seed=2))[0]
    assert len(scores) == 8 and best.scores["look_ahead"] == max(scores)


@pytest.mark.parametrize("bars", ["0-2", "4-3", "x", "2-99"])
def test_bad_infill_bars_are_one_line(tmp_path, capsys, bars) -> None:
    src = tmp_path / "s.mid"
    _write(src, [("Piano", 0, 0, _piano(4))])
    rc = main(["infill", str(src), *DEBUG, "--bars", bars, "--emotion", "calm"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mid"]
