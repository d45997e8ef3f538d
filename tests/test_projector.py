"""The projector (all prompt kinds → Elements), the primer melody in generation, and the CLI wiring
(`emomusic project` / `emomusic generate` with prompt flags), end to end with the "debug" checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import mido
import numpy as np
import pytest

from emomusic.cli import main
from emomusic.errors import InvalidInputError
from emomusic.music.notes import Notes
from emomusic.prompt.projector import project
from emomusic.prompt.registry import PROMPT_KINDS
from emomusic.vocab.emotions import WORDS

ELEMENT_KEYS = {"emotion", "quadrant", "valence", "arousal", "genre", "tempo", "notes", "sources"}
HEAVY = ("sentence_transformers", "librosa", "av", "PIL")


@pytest.fixture
def no_text_extra(monkeypatch):
    """Free text goes to the lexicon (fast, no model): pretend the text extra's tokenizers is absent."""
    monkeypatch.setitem(sys.modules, "tokenizers", None)


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _clean_error(rc: int, out: str, err: str) -> str:
    assert rc == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("emomusic: error:")
    return err


def _image(tmp_path, rgb, name="img.png"):
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(np.full((64, 64, 3), rgb, dtype=np.uint8)).save(path)
    return path


def _melody() -> Notes:
    """C D E F | G F E D at 100 BPM: two bars of quarter notes."""
    return Notes.from_arrays([60, 62, 64, 65, 67, 65, 64, 62], np.arange(8.0), [1.0] * 8, [90] * 8, tempo=100)


# ------------------------------------------------------------------ projector
def test_tags_only_prompts_project_without_loading_any_model() -> None:
    code = ("import sys; from emomusic.prompt.projector import project; "
            "e = project(prompt='sad, slow, jazz'); assert (e.quadrant, e.tempo, e.genre) == ('Q3', 70, 'pop'); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_explicit_settings_win_over_the_prompt() -> None:
    el = project(prompt="happy, fast, folk", emotion="sad", genre="classical", tempo=80)
    assert (el.emotion, el.quadrant, el.genre, el.tempo) == ("sad", "Q3", "classical", 80)
    assert el.sources[-3:] == ["emotion: --emotion 'sad'", "genre: --genre 'classical' → classical", "tempo: --tempo"]
    el = project(prompt="happy", arousal=-0.6)  # one axis overridden, the other kept from the prompt
    assert (el.valence, el.arousal, el.quadrant) == (WORDS["happy"].valence, -0.6, "Q4")


def test_intensity_from_the_prompt_or_explicit_and_genre_as_asked() -> None:
    el = project(prompt="very sad, jazz")
    assert (el.intensity, el.genre, el.genre_asked) == (1.5, "pop", "jazz")
    assert project(prompt="very sad", intensity=0.5).intensity == 0.5  # explicit wins
    el = project(prompt="very sad", emotion="calm")  # the prompt's "very" went with its mood
    assert el.intensity is None and el.emotion == "calm" and "degree word" in el.sources[-1]
    assert project(emotion="calm", genre="Jaz").genre_asked == "jazz"
    assert {"intensity", "genre_asked"} <= set(project(prompt="sad").to_dict())


def test_a_prompt_without_an_emotion_leaves_it_open() -> None:
    el = project(prompt="fast, rock")
    assert el.quadrant is None and el.valence is None and (el.genre, el.tempo) == ("pop", 140)


def test_free_text_goes_to_the_text_projector(no_text_extra) -> None:
    el = project(prompt="a funeral on a grey winter morning, 60 bpm")
    assert el.quadrant == "Q3" and el.tempo == 60 and "text" in el.sources[0]


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give a prompt"),
    ({"prompt": "   "}, "empty"),
    ({"prompt": "sad " * 1000}, "characters"),
    ({"prompt": 3}, "must be text"),
    ({"prompt": "sda"}, "close matches: sad"),
    ({"prompt": "melancolyc"}, "melancholic"),
    ({"valence": 0.5}, "both --valence and --arousal"),
    ({"prompt": "sad", "tempo": 900}, "tempo"),
    ({"prompt": "sad", "genre": "polka"}, "unknown genre"),
    ({"prompt": "sad", "intensity": 7}, "intensity must be between 0 and 2"),
    ({"prompt": "sad", "intensity": "lots"}, "intensity must be a number"),
    ({"prompt": "sad", "intensity": float("nan")}, "intensity must be between"),
    ({"image": "/no/such/file.png"}, "no such file"),
    ({"humming": "."}, "not a regular file"),
])
def test_bad_input_is_a_one_line_error(kwargs, match) -> None:
    with pytest.raises(InvalidInputError, match=match) as exc:
        project(**kwargs)
    assert "\n" not in str(exc.value)


def test_several_prompt_kinds_are_averaged_with_their_weights(tmp_path) -> None:
    pytest.importorskip("PIL")
    from emomusic.prompt.image import image_elements

    img = _image(tmp_path, (250, 220, 40))  # bright saturated yellow
    alone = image_elements(img)
    el = project(prompt="sad", image=img)
    w_t, w_i = PROMPT_KINDS["prompt"].weight, PROMPT_KINDS["image"].weight
    sad = WORDS["sad"]
    assert el.valence == pytest.approx((w_t * sad.valence + w_i * alone.valence) / (w_t + w_i), abs=1e-3)
    assert el.arousal == pytest.approx((w_t * sad.arousal + w_i * alone.arousal) / (w_t + w_i), abs=1e-3)
    assert any(s.startswith("emotion: weighted mean") and "image ×0.5" in s for s in el.sources)
    assert set(alone.sources) <= set(el.sources)


# ------------------------------------------------------------------ primer (humming melody) in generation
def test_a_primer_opens_the_piece_and_counts_towards_the_bars() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    primer = _melody()
    for method in ("attributes", "token"):
        cands = em.generate(emotion="sad", bars=4, primer=primer, seed=1, method=method, candidates=2)
        for c in cands:
            n = c.notes
            opening = set(zip(n.start[n.start < 7].tolist(), n.pitch[n.start < 7].tolist(), strict=True))
            assert opening == set(zip(primer.start[:7].tolist(), primer.pitch[:7].tolist(), strict=True))
            assert (7.0, 62) in set(zip(n.start.tolist(), n.pitch.tolist(), strict=True))  # new notes come after
            assert n.end <= 4 * 4 + 1e-6 and (n.start >= 8).any()  # continued, within 4 bars in all
            assert n.tempo == pytest.approx(100, rel=0.05)
    with pytest.raises(InvalidInputError, match="2 bars long"):
        em.generate(emotion="sad", bars=2, primer=primer)


def test_primer_key_follows_the_hum_in_the_asked_mode() -> None:
    from emomusic.pipeline import _primer_tonic

    c_major = Notes.from_arrays([60, 64, 67, 72, 65, 62, 71, 60], np.arange(8.0), [1.0] * 8, [80] * 8)
    assert _primer_tonic(c_major, 1) == 0 and _primer_tonic(c_major, 0) == 9  # C major, or A minor


# ------------------------------------------------------------------ CLI
def test_cli_project_prints_the_elements(capsys) -> None:
    rc, out, err = _run(capsys, ["project", "--prompt", "Calm, Adagio, folk", "--json"])
    assert rc == 0, err
    r = json.loads(out)
    assert ELEMENT_KEYS <= set(r)
    assert (r["quadrant"], r["emotion"], r["genre"], r["tempo"], r["notes"]) == ("Q4", "calm", "folk", 70, None)
    assert len(r["sources"]) == 3


def test_cli_project_typo_is_a_clean_error(capsys) -> None:
    assert "sad" in _clean_error(*_run(capsys, ["project", "--prompt", "sda"]))


def test_cli_generate_from_a_tag_prompt(capsys, tmp_path) -> None:
    out = tmp_path / "p.mid"
    rc, stdout, err = _run(capsys, ["generate", "--checkpoints", "debug", "--prompt", "sad, slow", "--bars", "2",
                                    "--out", str(out), "--json"])
    assert rc == 0, err
    r = json.loads(stdout)
    assert (r["emotion"], r["quadrant"], r["prompt"]["tempo"]) == ("sad", "Q3", 70) and r["prompt"]["sources"]
    assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) in range(65, 76)
               for t in mido.MidiFile(str(out)).tracks for m in t)


def test_cli_generate_needs_an_emotion_from_somewhere(capsys, tmp_path) -> None:
    argv = ["generate", "--checkpoints", "debug", "--prompt", "fast, rock", "--out", str(tmp_path / "x.mid")]
    assert "names no emotion" in _clean_error(*_run(capsys, argv))
    assert list(tmp_path.iterdir()) == []
    rc, _, err = _run(capsys, [*argv, "--emotion", "happy"])
    assert rc == 0, err


def test_generate_with_an_emotion_imports_no_heavy_prompt_library(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "emomusic.cli", "generate", "--checkpoints",
                          "debug", "--emotion", "calm", "--bars", "1", "--out", str(tmp_path / "c.mid")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    modules = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert modules and not modules & set(HEAVY)


def _hum(path, sr: int = 22050) -> None:
    """A clean synthetic hum of C4 D4 E4 F4 G4 at 100 BPM (a quarter note each, short gaps)."""
    import soundfile as sf

    beat, y = 0.6, [np.zeros(int(0.3 * sr))]
    for p in (60, 62, 64, 65, 67):
        t = np.arange(int((beat - 0.08) * sr)) / sr
        f = 440 * 2 ** ((p - 69) / 12)
        tone = sum(k**-1.5 * np.sin(2 * np.pi * k * f * t) for k in range(1, 6))
        y += [0.3 * tone * np.minimum(1, np.minimum(t, t[-1] - t) / 0.02), np.zeros(int(0.08 * sr))]
    sf.write(str(path), np.concatenate(y + [np.zeros(int(0.3 * sr))]).astype(np.float32), sr)


@pytest.mark.slow
def test_cli_generate_continues_a_hummed_melody(capsys, tmp_path) -> None:
    pytest.importorskip("librosa")
    hum, out = tmp_path / "hum.wav", tmp_path / "h.mid"
    _hum(hum)
    rc, stdout, err = _run(capsys, ["generate", "--checkpoints", "debug", "--humming", str(hum), "--emotion", "calm",
                                    "--bars", "4", "--out", str(out), "--json"])
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["quadrant"] == "Q4" and r["prompt"]["notes"] >= 4
    from emomusic.music.midi import load_notes

    notes = load_notes(out)
    onsets = np.unique(notes.start)
    opening = [set(notes.pitch[notes.start == t].tolist()) for t in onsets[:5]]
    assert opening[:4] == [{60}, {62}, {64}, {65}] and 67 in opening[4]  # the piece opens with the hum
    assert notes.n_bars <= 4


def test_metre_from_tags_words_and_numbers() -> None:
    from emomusic.prompt.tags import find_cues, parse_tags

    assert parse_tags("happy, waltz").metre == ("waltz", (3, 4))
    assert parse_tags("sad 6/8 slow").metre[1] == (6, 8) and parse_tags("sad 6/8 slow").tempo[1] == 70
    assert find_cues("a lilting tune in 6 / 8 for a summer evening").metre[1] == (6, 8)
    assert find_cues("open 24/7, on the 3rd of march").metre is None  # not metres in a sentence
    with pytest.raises(InvalidInputError, match="7/4"):
        parse_tags("sad 7/4")
    el = project("calm, waltz")
    assert el.time_signature == (3, 4) and el.to_dict()["time_signature"] == "3/4"
    assert project("calm, waltz", time_signature="6/8").time_signature == (6, 8)  # the flag wins
