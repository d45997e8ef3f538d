"""Arrangement: instruments by name, presets and roles, multi-track MIDI/MusicXML/stems, and the CLI.

Fixtures are built in code: a small piano piece (a tune over held chords and a bass) and, where the
shipped models are not the subject, a melody rule and a drum part stand-in.
"""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from emomusic.arrangement.arrange import PRESETS, arrange, phrase_marks, preset, roles_for
from emomusic.errors import InvalidInputError
from emomusic.export import write
from emomusic.export.midi import build_midi_file, export_stems
from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement, Track
from emomusic.settings import checkpoints_root
from emomusic.vocab.instruments import DRUM_KIT, GM_PROGRAMS, instrument, parse_instruments


def _piece(bars: int = 4) -> Notes:
    """A tune (eighths around C5) over a held triad per bar (C4–G4) and a bass note per bar (C2–G2)."""
    rng = np.random.default_rng(0)
    pitch, start, dur, vel = [], [], [], []
    for b in range(bars):
        t0 = 4.0 * b
        root = [48, 43, 45, 41][b % 4]
        pitch += [root - 12, root + 12, root + 16, root + 19]
        start += [t0] * 4
        dur += [4.0] * 4
        vel += [60] * 4
        for k in range(8):
            pitch.append(int(72 + rng.integers(-3, 6)))
            start.append(t0 + 0.5 * k)
            dur.append(0.5)
            vel.append(80)
    return Notes.from_arrays(pitch, start, dur, vel, tempo=96.0)


def _top(notes: Notes) -> np.ndarray:
    """The highest note of each onset (the melody of `_piece`)."""
    on = np.round(notes.start, 6)
    return np.append(on[1:] != on[:-1], True) & (notes.pitch >= 60) & (notes.duration < 1)


class _Kit:
    """A drum part stand-in: kick on each beat, snare on 2 and 4, more in fill bars, a crash where asked."""

    def generate(self, n_bars, *, time_signature=(4, 4), style="pop", tempo=120.0, arousal=0.0, seed=0, fills=(),
                 crashes=(0,), end=True):
        self.asked = {"n_bars": n_bars, "style": style, "arousal": arousal, "fills": list(fills),
                      "crashes": list(crashes)}
        p, s = [], []
        for b in range(n_bars):
            for beat in range(4):
                p.append(38 if beat % 2 else 36)
                s.append(4.0 * b + beat)
            if b in fills:
                p += [50, 47, 45]
                s += [4.0 * b + 3.25, 4.0 * b + 3.5, 4.0 * b + 3.75]
            if b in crashes:
                p.append(49)
                s.append(4.0 * b)
        return Notes.from_arrays(p, s, [0.1] * len(p), [90] * len(p), tempo=tempo, time_signature=time_signature)


# ------------------------------------------------------------------------------------------- instruments
def test_instruments_by_name_number_and_typo() -> None:
    assert instrument("Violin").program == 40
    assert instrument("violn").program == 40  # one obvious typo
    assert instrument("electric-bass (finger)").program == 33
    assert instrument("42").name == "Cello"
    assert instrument("drums").program == DRUM_KIT and instrument("drums").drums
    assert (instrument("violin").low, instrument("cello").low) == (55, 36)  # G3, C2
    assert len(GM_PROGRAMS) == 128
    assert [i.name for i in parse_instruments("violin, cello")] == ["Violin", "Cello"]
    assert parse_instruments(None) == ()


@pytest.mark.parametrize("bad", ["kazooo-phone", "128", "violin,,cello", ""])
def test_unknown_instruments_are_one_line_errors(bad: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_instruments(bad) if "," in bad else instrument(bad)
    assert "\n" not in str(exc.value)


def test_unknown_arrangement_lists_the_presets() -> None:
    with pytest.raises(InvalidInputError, match="arrangements: piano, band, strings"):
        preset("orchestra")
    assert preset("Band").name == "band" and preset("chip-tune").name == "chiptune"


def test_instruments_replace_preset_parts_in_order_and_must_fit() -> None:
    chosen, insts = roles_for("strings", "cello")
    assert chosen.name == "strings" and insts[0].name == "Cello" and insts[1].name == "Violin"
    with pytest.raises(InvalidInputError, match="4 parts"):
        roles_for("strings", "violin, violin, viola, cello, flute")
    with pytest.raises(InvalidInputError, match="drum kit"):
        roles_for("band", "violin, piano, bass, cello")


def test_instruments_alone_choose_the_parts() -> None:
    chosen, insts = roles_for(None, "violin, cello")
    assert [r.role for r in chosen.roles] == ["melody", "bass"]
    chosen, _ = roles_for(None, "flute, piano, drums")
    assert [r.role for r in chosen.roles] == ["melody", "chords", "drums"]
    chosen, _ = roles_for(None, "violin, violin, viola, cello")
    assert [r.name for r in chosen.roles] == ["Violin 1", "Violin 2", "Viola", "Cello"]


# ------------------------------------------------------------------------------------------- arranging
@pytest.mark.parametrize("name", [n for n in PRESETS if n != "piano"])
def test_every_part_in_range_no_unisons_and_drums_on_the_kit(name: str) -> None:
    kit = _Kit()
    arr = arrange(_piece(8), name, melody=_top, drums=kit, arousal=0.5, style="rock", seed=3,
                  sections=[{"first_bar": 1, "bars": 4}, {"first_bar": 5, "bars": 4}])
    assert [t.name for t in arr.tracks] == [r.name for r in PRESETS[name].roles]
    for t in arr.tracks:
        if t.drums:
            assert kit.asked["fills"] == [3] and kit.asked["crashes"] == [0, 4] and kit.asked["style"] == "rock"
            continue
        inst = instrument(t.program)
        assert len(t.notes), t.name
        assert inst.low <= t.notes.pitch.min() and t.notes.pitch.max() <= inst.high, t.name
    pitched = [t.notes for t in arr.tracks if not t.drums]
    for i, a in enumerate(pitched):
        for b in pitched[i + 1:]:
            for p in set(a.pitch.tolist()) & set(b.pitch.tolist()):
                sa, ea = a.start[a.pitch == p], (a.start + a.duration)[a.pitch == p]
                sb, eb = b.start[b.pitch == p], (b.start + b.duration)[b.pitch == p]
                overlap = np.minimum(ea[:, None], eb[None, :]) - np.maximum(sa[:, None], sb[None, :])
                assert (overlap <= 1e-6).all(), f"{p} doubled"


def test_melody_part_is_the_tune_one_note_at_a_time() -> None:
    piece = _piece(4)
    arr = arrange(piece, "strings", melody=_top, arousal=-0.5)
    lead = arr.tracks[0].notes
    assert np.all(np.diff(lead.start) > 0)
    assert np.all(lead.start[:-1] + lead.duration[:-1] <= lead.start[1:] + 1e-9)
    assert np.array_equal(np.sort(lead.pitch), np.sort(piece.pitch[_top(piece)]))  # in range: not moved


def test_bass_outlines_the_harmony_and_drives_when_excited() -> None:
    piece = _piece(4)
    calm = arrange(piece, "band", melody=_top, drums=_Kit(), arousal=-0.5).tracks[2].notes
    excited = arrange(piece, "band", melody=_top, drums=_Kit(), arousal=0.9).tracks[2].notes
    assert sorted(set(calm.pitch % 12)) == sorted({48 % 12, 43 % 12, 45 % 12, 41 % 12})
    assert len(calm) == 4  # one held note per bar: the chord does not change within a bar
    assert len(excited) == 32  # eighths
    assert instrument("bass").low <= excited.pitch.min()


def test_arousal_picks_the_louder_band_instruments() -> None:
    calm = arrange(_piece(2), "band", melody=_top, drums=_Kit(), arousal=-0.3)
    loud = arrange(_piece(2), "band", melody=_top, drums=_Kit(), arousal=0.8)
    assert GM_PROGRAMS[calm.tracks[0].program] == "Electric Guitar (clean)"
    assert GM_PROGRAMS[loud.tracks[0].program] == "Overdriven Guitar"


def test_missing_models_are_one_line_errors() -> None:
    with pytest.raises(InvalidInputError, match="melody extractor"):
        arrange(_piece(2), "strings")
    with pytest.raises(InvalidInputError, match="drum model"):
        arrange(_piece(2), "band", melody=_top)


def test_phrase_marks_fill_section_ends_and_long_phrases() -> None:
    fills, crashes = phrase_marks([{"first_bar": 1, "bars": 16}, {"first_bar": 17, "bars": 8}], 24)
    assert fills == [7, 15] and crashes == [0, 16]
    assert phrase_marks([], 4) == ([], [0])


# ------------------------------------------------------------------------------------------- writing
def _arranged() -> Arrangement:
    return arrange(_piece(4), "band", melody=_top, drums=_Kit(), arousal=0.2)


def test_midi_has_one_named_track_per_part_and_drums_on_channel_10() -> None:
    arr = _arranged()
    mid = build_midi_file(arr)
    assert len(mid.tracks) == 1 + len(arr.tracks)
    used = []
    for track, part in zip(mid.tracks[1:], arr.tracks, strict=True):
        names = [m.name for m in track if m.type == "track_name"]
        channels = {m.channel for m in track if m.type == "note_on"}
        programs = [m.program for m in track if m.type == "program_change"]
        assert names == [part.name]
        assert len(channels) == 1 and (channels == {9}) == part.drums
        used += channels
        assert part.drums or programs == [part.program]
        assert sum(1 for m in track if m.type == "note_on" and m.velocity) == len(part.notes.deduplicate())
    assert len(set(used)) == len(used)  # each part on its own channel
    ends = {sum(m.time for m in t) for t in mid.tracks}
    assert len(ends) == 1  # every track ends on the same bar line


def test_single_piano_export_is_unchanged_by_the_track_path() -> None:
    notes = _piece(2)
    a = build_midi_file(notes)
    b = build_midi_file(Arrangement((Track("Piano", 0, "piano", notes),)))
    assert [str(m) for t in a.tracks for m in t] == [str(m) for t in b.tracks for m in t]


def test_stems_one_file_per_track_same_key_and_length(tmp_path) -> None:
    arr = _arranged()
    paths = export_stems(arr, tmp_path / "song.mid")
    assert [p.name for p in paths] == ["song-lead.mid", "song-keys.mid", "song-bass.mid", "song-drums.mid"]
    keys, ends = set(), set()
    for p in paths:
        mid = mido.MidiFile(str(p))
        keys |= {m.key for m in mid.tracks[0] if m.type == "key_signature"}
        ends.add(sum(m.time for m in mid.tracks[1]))
    assert len(keys) == 1 and len(ends) == 1
    with pytest.raises(InvalidInputError, match="already exists"):
        export_stems(arr, tmp_path / "song.mid")


def test_png_and_wav_of_an_arrangement(tmp_path) -> None:
    arr = _arranged()
    assert write(arr, tmp_path / "a.png").stat().st_size > 1000
    assert write(arr, tmp_path / "a.wav").stat().st_size > 1000


@pytest.mark.slow
def test_musicxml_and_musescore_have_one_part_per_track(tmp_path, musescore_import) -> None:
    import music21

    arr = arrange(_piece(4), "strings", melody=_top, arousal=0.0)
    xml = write(arr, tmp_path / "q.musicxml")
    assert len(music21.converter.parse(str(xml)).parts) == 4
    band = arrange(_piece(4), "band", melody=_top, drums=_Kit(), arousal=0.5)
    mid = write(band, tmp_path / "b.mid")
    imported = musescore_import(mid, tmp_path).read_text(encoding="utf-8")
    assert imported.count("<score-part ") == 4  # lead, keys (one part on two staves), bass, drums


class _LoggingKit(_Kit):
    """`_Kit` that keeps every call's arguments (a trajectory asks once per section)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def generate(self, n_bars, **kw):
        out = super().generate(n_bars, **kw)
        self.calls.append(self.asked | {"end": kw.get("end", True), "tempo": kw.get("tempo")})
        return out


def test_a_trajectory_gets_one_groove_per_section_at_its_arousal() -> None:
    kit = _LoggingKit()
    sections = [{"label": "A", "first_bar": 1, "bars": 4, "arousal": -0.7, "tempo": 70.0},
                {"label": "B", "first_bar": 5, "bars": 4, "arousal": 0.8, "tempo": 130.0}]
    arr = arrange(_piece(8), "band", melody=_top, drums=kit, arousal=-0.7, sections=sections)
    assert [(c["n_bars"], c["arousal"], c["tempo"], c["end"]) for c in kit.calls] == [
        (4, -0.7, 70.0, False), (4, 0.8, 130.0, True)]
    assert kit.calls[0]["fills"] == [3] and kit.calls[1]["crashes"] == [0]  # fill before the change, crash after
    drums = next(t for t in arr.tracks if t.drums).notes
    assert drums.start.max() >= 16 and (drums.start < 32).all()  # the second groove sits in bars 5-8
    kit = _LoggingKit()  # a form without emotions (no arousal per section): one groove for the piece
    arrange(_piece(8), "band", melody=_top, drums=kit, arousal=0.3,
            sections=[{"label": "A", "first_bar": 1, "bars": 4}, {"label": "B", "first_bar": 5, "bars": 4}])
    assert [(c["n_bars"], c["arousal"]) for c in kit.calls] == [(8, 0.3)]


# ------------------------------------------------------------------------------------------- front ends
def _shipped_parts() -> None:
    root = checkpoints_root()
    if not ((root / "melody").is_dir() and (root / "drums").is_dir()):
        pytest.skip(f"no shipped melody/drums models in {root}")


def test_cli_arranges_writes_stems_and_reports_tracks(tmp_path, capsys) -> None:
    from emomusic.cli import main

    _shipped_parts()
    out = tmp_path / "b.mid"
    rc = main(["generate", "--checkpoints", "debug", "--emotion", "happy", "--bars", "4", "--arrangement", "band",
               "--stems", "--json", "--out", str(out)])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["arrangement"] == "band"
    assert [t["name"] for t in res["tracks"]] == ["Lead", "Keys", "Bass", "Drums"]
    assert len(mido.MidiFile(str(out)).tracks) == 5 and len(res["stems"]) == 4
    assert all((tmp_path / p).is_file() for p in res["stems"])


@pytest.mark.parametrize("flags", [["--arrangement", "orchestra"], ["--instruments", "vilon, zither-o-matic"],
                                   ["--stems"], ["--arrangement", "strings", "--instruments", "drums"]])
def test_cli_bad_arrangement_is_one_line_and_writes_nothing(tmp_path, capsys, flags) -> None:
    from emomusic.cli import main

    out = tmp_path / "x.mid"
    rc = main(["generate", "--checkpoints", "debug", "--emotion", "calm", "--bars", "2", "--out", str(out), *flags])
    _out, err = capsys.readouterr()
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_shipped_melody_line_covers_the_piece() -> None:
    from emomusic.arrangement.melody import MIN_COVERAGE, coverage, load_melody

    _shipped_parts()
    piece = _piece(8)
    mask = load_melody(checkpoints_root() / "melody").mask(piece)
    assert coverage(piece, mask) >= MIN_COVERAGE
    assert coverage(piece, np.zeros(len(piece), bool)) == 0.0 and coverage(piece, np.ones(len(piece), bool)) == 1.0


def test_corrected_names_are_notices() -> None:
    from emomusic.request import GenerationRequest

    req = GenerationRequest(emotion="calm", arrangement="chambr", instruments="violn, cello")
    assert req._arrangement_notices() == ["arrangement 'chambr' read as 'chamber'",
                                          "instrument 'violn' read as 'Violin'"]
    assert GenerationRequest(emotion="calm", arrangement="band", instruments="Violin, 42")._arrangement_notices() == []
