"""The two registries where the package grows: output formats (emomusic.export) and prompt kinds
(emomusic.prompt.registry). Adding either is one module plus one entry; these tests add a toy one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.export import FORMATS, Format, write
from emomusic.export.midi import build_midi_file, export_midi, written_key
from emomusic.io import atomic_write
from emomusic.music.notes import Notes
from emomusic.prompt.projector import project, prompt_elements
from emomusic.prompt.registry import PROMPT_KINDS, PromptKind, by_priority
from emomusic.types import Elements
from emomusic.vocab.emotions import WORDS


def _piece() -> Notes:
    return Notes.from_arrays([62, 66, 69, 74], [0, 1, 2, 3], [1, 1, 1, 1], [80, 80, 80, 80], tempo=100.0)


# ------------------------------------------------------------------ output formats
def test_write_dispatches_on_the_suffix_in_any_case(tmp_path: Path) -> None:
    direct = export_midi(_piece(), tmp_path / "direct.mid").read_bytes()
    assert write(_piece(), tmp_path / "a.mid").read_bytes() == direct
    assert write(_piece(), tmp_path / "b.MIDI").read_bytes() == direct
    assert write(_piece(), tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_suffix_is_one_line_that_lists_the_formats(tmp_path: Path) -> None:
    for name in ("a.mp3", "noext"):
        with pytest.raises(InvalidInputError) as err:
            write(_piece(), tmp_path / name)
        assert "\n" not in str(err.value) and all(s in str(err.value) for s in FORMATS)
    assert not list(tmp_path.iterdir())


def test_write_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = write(_piece(), tmp_path / "a.mid")
    with pytest.raises(InvalidInputError, match="already exists"):
        write(_piece(), path)
    assert write(_piece(), path, force=True) == path


def test_musicxml_declares_the_key_midi_declares(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    xml = write(_piece(), tmp_path / "a.musicxml", key=(2, "major")).read_text()
    assert "<fifths>2</fifths>" in xml  # D major: two sharps, as in the MIDI key signature
    meta = [m for m in build_midi_file(_piece(), key=(2, "major")).tracks[0] if m.type == "key_signature"]
    assert meta[0].key == "D"


def test_written_key_is_the_given_key_or_the_estimate() -> None:
    assert written_key(_piece(), (9, "minor")) == (9, "minor")
    assert written_key(_piece()) == (2, "major")  # D F# A D
    with pytest.raises(InvalidInputError, match="tonic pitch class"):
        written_key(_piece(), (12, "major"))


def test_wav_without_the_audio_extra_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    from emomusic.export import render

    monkeypatch.setattr(render.shutil, "which", lambda name: None)  # no fluidsynth: the fallback needs soundfile
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(InvalidInputError, match=r"emomusic\[audio\]") as err:
        write(_piece(), tmp_path / "a.wav")
    assert "\n" not in str(err.value) and not (tmp_path / "a.wav").exists()


def _write_text(notes: Notes, path: Path, *, force: bool = False, key: tuple[int, str] | None = None) -> Path:
    """A toy format: one line per note."""
    lines = "".join(f"{p} {s:g}\n" for p, s in zip(notes.pitch.tolist(), notes.start.tolist(), strict=True))
    return atomic_write(path, lambda tmp: tmp.write_text(f"key {written_key(notes, key)}\n{lines}"), force)


def test_a_new_format_is_one_registry_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(FORMATS, ".txt", Format("note list", f"{__name__}:_write_text"))
    out = write(_piece(), tmp_path / "a.txt", key=(2, "major"))
    assert out.read_text().splitlines()[:2] == ["key (2, 'major')", "62 0"]


# ------------------------------------------------------------------ prompt kinds
def _colour_elements(value: str) -> Elements:
    """A toy kind: a colour word → a point (blue is sad and calm, red tense)."""
    points = {"blue": (-0.6, -0.6), "red": (-0.4, 0.8)}
    if value not in points:
        raise InvalidInputError(f"--colour {value!r}: give blue or red")
    v, a = points[value]
    return Elements(valence=v, arousal=a, tempo=66.0, sources=[f"colour: {value}"])


def test_a_new_prompt_kind_is_one_registry_entry(monkeypatch) -> None:
    kind = PromptKind("colour", "--colour", "a colour word", "colour", f"{__name__}:_colour_elements",
                      weight=2.0, priority={"tempo": 5})
    monkeypatch.setitem(PROMPT_KINDS, "colour", kind)
    alone = project(colour="blue")
    assert (alone.quadrant, alone.tempo, alone.sources[0]) == ("Q3", 66.0, "colour: blue")
    mixed = project(prompt="happy, fast", colour="blue")
    happy = WORDS["happy"]
    assert mixed.valence == pytest.approx((happy.valence + 2.0 * -0.6) / 3.0, abs=1e-3)
    assert mixed.tempo == 140.0  # the typed tempo ranks before the toy kind's (5)
    assert any("colour ×2" in s for s in mixed.sources)
    with pytest.raises(InvalidInputError, match="--colour 'green'"):
        project(colour="green")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="unknown prompt kind"):
        prompt_elements(smell="roses")


def test_priorities_and_file_checks_come_from_the_registry(tmp_path: Path) -> None:
    assert by_priority("tempo") == ["prompt", "humming", "video", "image"]
    assert by_priority("genre") == ["prompt", "video", "image", "humming"]
    assert by_priority("notes")[0] == "humming"
    for name, kind in PROMPT_KINDS.items():
        assert kind.name == name and kind.flag == f"--{name}" and kind.help and kind.label
        assert (kind.max_bytes is not None) == kind.is_file
    with pytest.raises(InvalidInputError, match="--video .*no such file"):
        project(video=str(tmp_path / "absent.mp4"))


def test_every_tempo_bound_is_the_one_range() -> None:
    from emomusic.prompt import tags
    from emomusic.prompt.projector import project
    from emomusic.vocab.constants import TEMPO_RANGE

    lo, hi = TEMPO_RANGE
    assert project(emotion="sad", tempo=lo).tempo == lo and project(emotion="sad", tempo=hi).tempo == hi
    for bad in (np.nextafter(lo, 0), np.nextafter(hi, 1e9)):
        with pytest.raises(InvalidInputError, match="between .* BPM"):
            project(emotion="sad", tempo=bad)
    with pytest.raises(InvalidInputError, match="outside"):
        tags.tag_elements(f"sad {hi + 1:g} bpm")
