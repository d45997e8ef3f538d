"""Every generated MIDI file records its request; `emomusic regenerate` makes it again or varies it."""

from __future__ import annotations

import json

import mido
import pytest

from emomusic.cli import main
from emomusic.errors import InvalidInputError
from emomusic.music.midi import read_provenance
from emomusic.request import PROVENANCE_FIELDS, GenerationRequest
from emomusic.vocab.constants import PROVENANCE_PREFIX

DEBUG = ["--checkpoints", "debug"]


def test_the_request_round_trips_through_its_record() -> None:
    req = GenerationRequest(emotion="calm", bars=8, seed=5, form="AABA", arrangement="strings",
                            prompts={"prompt": "a quiet lake"}, time_signature=(3, 4), select_weights={"control": 1})
    data = req.provenance()
    assert set(data) <= set(PROVENANCE_FIELDS) and data["time_signature"] == "3/4"
    back = GenerationRequest.from_provenance(json.loads(json.dumps(data)))
    assert back.provenance() == data


def test_a_record_from_before_the_light_entry_regenerates_without_one() -> None:
    data = GenerationRequest(emotion="calm").provenance()
    assert data["entry"] is True and GenerationRequest.from_provenance(data).entry
    del data["entry"]  # files written before the entry existed opened at full texture
    assert GenerationRequest.from_provenance(data).entry is False
    assert data["build"] is True
    del data["build"]  # nor did their last section build
    assert GenerationRequest.from_provenance(data).build is False


def test_a_trajectory_records_no_point_and_a_primer_cannot_be_regenerated() -> None:
    from emomusic.music.notes import Notes

    assert "valence" not in GenerationRequest(trajectory="calm:2,sad:2", valence=0.1, arousal=0.1).provenance()
    data = GenerationRequest(emotion="calm", primer=Notes.from_arrays([60], [0.0], [1.0], [80])).provenance()
    with pytest.raises(InvalidInputError, match="cannot be regenerated"):
        GenerationRequest.from_provenance(data)
    with pytest.raises(InvalidInputError, match="does not know: colour"):
        GenerationRequest.from_provenance({"emotion": "calm", "colour": "blue"})


def test_a_file_prompt_is_recorded_by_hash_and_must_not_change(tmp_path) -> None:
    image = tmp_path / "sky.png"
    image.write_bytes(b"not really a picture")
    data = GenerationRequest(prompts={"image": str(image)}).provenance()
    assert len(data["prompts"]["image"]["sha256"]) == 64
    assert GenerationRequest.from_provenance(data).prompts == {"image": str(image.resolve())}
    image.write_bytes(b"another picture")
    with pytest.raises(InvalidInputError, match="has changed"):
        GenerationRequest.from_provenance(data)


def test_generate_records_and_regenerate_reproduces_the_same_bytes(tmp_path, capsys) -> None:
    first = tmp_path / "calm.mid"
    assert main(["generate", *DEBUG, "--emotion", "calm", "--bars", "2", "--seed", "3", "--out", str(first),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    recorded = read_provenance(first)
    assert recorded == printed["request"] and recorded["seed"] == 3 and recorded["model"] == "debug"
    texts = [m.text for m in mido.MidiFile(str(first)).tracks[0] if m.type == "text"]
    assert len(texts) == 1 and texts[0].startswith(PROVENANCE_PREFIX)

    again = tmp_path / "again.mid"
    assert main(["regenerate", str(first), *DEBUG, "--out", str(again)]) == 0
    assert again.read_bytes() == first.read_bytes()

    varied = tmp_path / "varied.mid"
    assert main(["regenerate", str(first), *DEBUG, "--seed", "4", "--emotion", "sad", "--out", str(varied)]) == 0
    got = read_provenance(varied)
    assert (got["seed"], got["emotion"]) == (4, "sad") and varied.read_bytes() != first.read_bytes()


def test_regenerate_refuses_files_without_a_record(tmp_path, capsys) -> None:
    plain = tmp_path / "plain.mid"
    mid = mido.MidiFile()
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=80),
                                      mido.Message("note_off", note=60, time=480)]))
    mid.save(str(plain))
    assert main(["regenerate", str(plain), *DEBUG]) == 2
    err = capsys.readouterr().err
    assert "records no emomusic request" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.mid"]


def test_regenerate_says_when_the_clusterer_differs(tmp_path, capsys) -> None:
    first = tmp_path / "calm.mid"
    assert main(["generate", *DEBUG, "--emotion", "calm", "--bars", "2", "--seed", "3", "--out", str(first)]) == 0
    recorded = read_provenance(first)
    assert recorded["conditions"] == "debug"  # which real pieces stood for the emotions is recorded too
    mid = mido.MidiFile(str(first))
    for msg in mid.tracks[0]:
        if msg.type == "text" and msg.text.startswith(PROVENANCE_PREFIX):
            msg.text = PROVENANCE_PREFIX + json.dumps({**recorded, "conditions": "0123456789ab"})
    older = tmp_path / "older.mid"
    mid.save(str(older))
    capsys.readouterr()
    assert main(["regenerate", str(older), *DEBUG, "--out", str(tmp_path / "again.mid")]) == 0
    err = capsys.readouterr().err
    assert "made with clusterer 0123456789ab" in err and "music will differ" in err
