"""The `emomusic` command, run in-process through `main(argv)` (plus one real console-script run).

Contract: success prints the result (one JSON object with --json) and exits 0; every user error is
one stderr line starting with "emomusic: error:", exit code 2, no traceback and no file left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import mido
import pytest

from emomusic.cli import main
from emomusic.settings import checkpoints_root

GENERATE = ["generate", "--checkpoints", "debug", "--emotion", "calm", "--bars", "2"]
RESULT_KEYS = {"out", "emotion", "quadrant", "valence", "arousal", "attributes", "method", "seconds"}


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_clean_error(rc: int, out: str, err: str) -> None:
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("emomusic: error:")
    assert "Traceback" not in err


def _shipped_clusterer() -> None:
    if not (checkpoints_root() / "clusterer" / "config.json").is_file():
        pytest.skip(f"no shipped clusterer in {checkpoints_root()} (fit one: emomusic train clusterer)")


# ------------------------------------------------------------------ generate
def test_generate_with_the_shipped_model_never_imports_torch(tmp_path) -> None:
    """Sampling reads the checkpoint's tensors as numpy arrays: torch (most of a cold start) and the
    x-transformers/torch._dynamo import are left to training, embeddings and the selector (lazy start-up)."""
    if not (checkpoints_root() / "generator" / "config.json").is_file():
        pytest.skip(f"no shipped generator in {checkpoints_root()}")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "emomusic.cli", "generate", "--emotion", "calm",
                          "--bars", "1", "--out", str(tmp_path / "c.mid")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    modules = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert {"miditok", "numba", "emomusic.generation.kernels"} <= modules  # the probe sees the imports
    assert not modules & {"torch", "x_transformers", "einx", "torch._dynamo"}
    assert (tmp_path / "c.mid").stat().st_size > 0


def test_best_of_n_ranks_without_torch(tmp_path) -> None:
    """The selector, its quality head and the recognizer (its emotion head) run as numpy forwards over the
    fast engine's embeddings: best of N costs no torch or x-transformers import either."""
    root = checkpoints_root()
    if not all((root / c / "config.json").is_file() for c in ("generator", "selector", "recognizer", "quality")):
        pytest.skip(f"needs the shipped generator, selector, recognizer and quality head in {root}")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "emomusic.cli", "generate", "--emotion", "calm",
                          "--bars", "1", "--candidates", "2", "--json", "--out", str(tmp_path / "c.mid")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    modules = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert {"emomusic.recognition.inference", "emomusic.selection.quality"} <= modules
    assert not modules & {"torch", "x_transformers", "einx", "torch._dynamo"}
    sel = json.loads(out.stdout)["selection"]
    assert set(sel["leads"]) <= {"quality", "emotion", "genre", "control"} and sel["text"]


def test_a_text_prompt_is_embedded_without_torch_or_sentence_transformers(tmp_path) -> None:
    """The MiniLM sentence encoder runs as a numpy forward (prompt/minilm.py): a prompt costs no torch import."""
    from emomusic.prompt.text import embedding_available

    if not (checkpoints_root() / "generator" / "config.json").is_file() or not embedding_available():
        pytest.skip("needs the shipped generator and the [text] extra")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "emomusic.cli", "generate", "--prompt",
                          "a rainy lonely night", "--bars", "1", "--out", str(tmp_path / "p.mid"), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    modules = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "tokenizers" in modules  # the probe sees the encoder's imports
    assert not modules & {"torch", "sentence_transformers", "transformers"}
    assert any("sentence-embedding" in s for s in json.loads(out.stdout)["prompt"]["sources"])


def test_generate_json_writes_a_midi_file(capsys, tmp_path) -> None:
    out = tmp_path / "calm.mid"
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(out), "--json"])
    assert rc == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert RESULT_KEYS <= set(result)
    assert result["out"] == str(out)
    assert (result["emotion"], result["quadrant"], result["method"]) == ("calm", "Q4", "attributes")
    assert (result["valence"], result["arousal"]) == (0.5, -0.7)
    assert isinstance(result["attributes"], dict) and result["seconds"] >= 0
    mid = mido.MidiFile(str(out))
    assert any(m.type == "note_on" for t in mid.tracks for m in t)


def test_generate_same_seed_same_file(capsys, tmp_path) -> None:
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    assert _run(capsys, [*GENERATE, "--seed", "7", "--out", str(a)])[0] == 0
    assert _run(capsys, [*GENERATE, "--seed", "7", "--out", str(b)])[0] == 0
    assert a.read_bytes() == b.read_bytes()


def test_generate_plain_output_is_one_line(capsys, tmp_path) -> None:
    rc, stdout, _ = _run(capsys, [*GENERATE, "--out", str(tmp_path / "x.mid"), "--method", "token"])
    assert rc == 0
    assert len(stdout.strip().splitlines()) == 1 and "[token]" in stdout


def test_generate_refuses_to_overwrite_without_force(capsys, tmp_path) -> None:
    out = tmp_path / "exists.mid"
    out.write_bytes(b"precious")
    before = out.stat().st_mtime_ns
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(out), "--json"])
    _assert_clean_error(rc, stdout, err)
    assert "--force" in err
    assert out.read_bytes() == b"precious" and out.stat().st_mtime_ns == before
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(out), "--force", "--json"])
    assert rc == 0, err
    assert out.read_bytes()[:4] == b"MThd"
    assert [p.name for p in tmp_path.iterdir()] == ["exists.mid"]  # no temporary files left


def test_generate_default_names_are_unique(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert _run(capsys, [*GENERATE, "--seed", "1"])[0] == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(n.startswith("emomusic-calm-seed1") and n.endswith(".mid") for n in names)


@pytest.mark.parametrize("extra", [
    ["--emotion", "blorp"],
    ["--bars", "0"],
    ["--temperature", "9"],
    ["--top-p", "0"],
    ["--genre", "polka"],
    ["--form", "AB1A"],
    ["--form", "AABA"],  # 2 bars cannot hold four sections
    ["--trajectory", "calm:0"],
    ["--trajectory", "calm"],
    ["--trajectory", "calm:4,blorp:4"],
    ["--trajectory", "calm:100,sad:100"],
    ["--trajectory", "calm:4", "--form", "AB"],
])
def test_generate_user_errors_are_one_line_and_write_nothing(capsys, tmp_path, extra) -> None:
    out = tmp_path / "never.mid"
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(out), *extra])
    _assert_clean_error(rc, stdout, err)
    assert list(tmp_path.iterdir()) == []


def test_json_lists_the_sections_of_the_form(capsys, tmp_path) -> None:
    out = tmp_path / "form.mid"
    argv = ["generate", "--checkpoints", "debug", "--emotion", "calm", "--bars", "6", "--form", "ABA"]
    rc, stdout, _ = _run(capsys, [*argv, "--out", str(out), "--json"])
    assert rc == 0
    sections = json.loads(stdout)["sections"]
    assert [(s["label"], s["first_bar"], s["bars"], s["returns_to"]) for s in sections] == [
        ("A", 1, 2, None), ("B", 3, 2, None), ("A", 5, 2, 1)]
    rc, stdout, _ = _run(capsys, [*argv, "--out", str(tmp_path / "plain.mid")])
    assert rc == 0 and "form ABA (2+2+2 bars)" in stdout


def test_json_lists_a_trajectorys_sections_with_their_emotion_tempo_and_key(capsys, tmp_path) -> None:
    argv = ["generate", "--checkpoints", "debug", "--trajectory", "calm:2,angry:3", "--out", str(tmp_path / "t.mid")]
    rc, stdout, _ = _run(capsys, [*argv, "--json"])
    assert rc == 0
    got = json.loads(stdout)
    assert got["bars"] == 5 and got["emotion"] == "calm"
    assert [(s["emotion"], s["quadrant"], s["bars"]) for s in got["sections"]] == [
        ("calm", "Q4", 2), ("angry", "Q2", 3)]
    assert all(s["tempo"] > 0 and s["key"].endswith(("major", "minor")) for s in got["sections"])


def test_unknown_emotion_names_close_matches(capsys, tmp_path) -> None:
    rc, stdout, err = _run(capsys, [*GENERATE, "--emotion", "clam", "--out", str(tmp_path / "y.mid")])
    # "clam" is either autocorrected to calm or refused with suggestions; both are clean
    if rc == 0:
        assert (tmp_path / "y.mid").is_file()
    else:
        _assert_clean_error(rc, stdout, err)
        assert "calm" in err


def test_generate_into_a_missing_folder_is_a_clean_error(capsys, tmp_path) -> None:
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(tmp_path / "no" / "such" / "x.mid")])
    _assert_clean_error(rc, stdout, err)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("argv", [
    [],
    ["--bogus"],
    ["generate", "--bogus"],
    ["generate", "--emotion"],
    ["generate", "--bars", "two"],
    ["generate", "--method", "magic"],
    ["frobnicate"],
    ["data"],
    ["train"],
    ["analyze"],
])
def test_bad_usage_is_one_line(capsys, argv) -> None:
    _assert_clean_error(*_run(capsys, argv))


@pytest.mark.parametrize("argv", [
    [*GENERATE, "--intensity", "7"],
    [*GENERATE, "--intensity", "-1"],
    [*GENERATE, "--intensity", "nan"],
    [*GENERATE, "--intensity", "very"],
    ["project", "--emotion", "sad", "--intensity", "7"],
    ["attributes", "--emotion", "sad", "--intensity", "7"],
])
def test_bad_intensity_is_a_one_line_error(capsys, tmp_path, monkeypatch, argv) -> None:
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = _run(capsys, argv)
    _assert_clean_error(rc, stdout, err)
    assert "intensity" in err and list(tmp_path.iterdir()) == []


def test_json_says_the_genre_generated_the_genre_asked_and_the_intensity(capsys, tmp_path) -> None:
    argv = [*GENERATE, "--genre", "rock", "--intensity", "1.5", "--out", str(tmp_path / "x.mid"), "--json"]
    rc, stdout, err = _run(capsys, argv)
    assert rc == 0, err
    r = json.loads(stdout)
    assert (r["genre"], r["genre_asked"], r["intensity"]) == ("pop", "rock", 1.5)
    assert err == "emomusic: note: genre 'rock' has no training data: generating pop\n"
    rc, stdout, err = _run(capsys, ["project", "--prompt", "very sad, jazz", "--json"])
    r = json.loads(stdout)
    assert rc == 0 and (r["intensity"], r["genre"], r["genre_asked"]) == (1.5, "pop", "jazz")
    assert "no training data" in err


# ------------------------------------------------------------------ attributes / project
def test_attributes_calm_json(capsys) -> None:
    _shipped_clusterer()
    rc, stdout, err = _run(capsys, ["attributes", "--emotion", "calm", "--json"])
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["quadrant"] == "Q4" and result["emotion"] == "calm"
    assert isinstance(result["explanation"], list) and result["explanation"]
    assert all(isinstance(x, str) for x in result["explanation"])
    assert {"tempo", "mode", "velocity_mean", "note_density"} <= set(result["attributes"])
    assert result["source"]


def test_attributes_valence_arousal_text(capsys) -> None:
    _shipped_clusterer()
    rc, stdout, err = _run(capsys, ["attributes", "--valence", "-0.5", "--arousal", "0.8"])
    assert rc == 0, err
    assert "Q2" in stdout.splitlines()[0]


def test_attributes_without_an_emotion_is_a_clean_error(capsys) -> None:
    _assert_clean_error(*_run(capsys, ["attributes"]))


def test_project_sad_json(capsys) -> None:
    rc, stdout, err = _run(capsys, ["project", "--emotion", "sad", "--json"])
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["quadrant"] == "Q3" and result["emotion"] == "sad"
    assert isinstance(result["sources"], list) and any("sad" in s for s in result["sources"])


def test_project_with_genre_and_tempo(capsys) -> None:
    rc, stdout, err = _run(capsys, ["project", "--valence", "0.7", "--arousal", "0.6", "--genre", "pop",
                                    "--tempo", "120", "--json"])
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["quadrant"] == "Q1" and result["genre"] == "pop" and result["tempo"] == 120
    assert len(result["sources"]) == 3


def test_project_unknown_emotion(capsys) -> None:
    _assert_clean_error(*_run(capsys, ["project", "--emotion", "blorp"]))


# ------------------------------------------------------------------ analyze / demo fail cleanly
def _assert_fails_cleanly(rc: int, out: str, err: str) -> None:
    assert rc != 0
    assert "Traceback" not in out + err
    assert err.strip() and len(err.strip().splitlines()) == 1


def test_analyze_of_a_missing_file_fails_cleanly(capsys, tmp_path) -> None:
    _assert_fails_cleanly(*_run(capsys, ["analyze", str(tmp_path / "missing.mid")]))


def test_analyze_reports_missing_files_before_loading_any_model(capsys, tmp_path, monkeypatch) -> None:
    from emomusic.recognition import api

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded for files that cannot be read")

    monkeypatch.setattr(api.SymbolicRecognizer, "from_checkpoints", classmethod(refuse))
    rc, out, err = _run(capsys, ["analyze", str(tmp_path / "gone.mid"), str(tmp_path / "gone.wav")])
    assert rc == 2 and out == ""
    assert err.count("does not exist") == 2 and "Traceback" not in err


def test_analyze_of_a_non_midi_file_fails_cleanly(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_text("not midi")
    _assert_fails_cleanly(*_run(capsys, ["analyze", str(bad), "--json"]))


def test_demo_without_gradio_fails_cleanly(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError: never serves
    _assert_fails_cleanly(*_run(capsys, ["demo", "--port", "0"]))


# ------------------------------------------------------------------ the real console script
def test_console_script_generate(tmp_path) -> None:
    exe = shutil.which("emomusic")
    if exe is None:
        pytest.skip("the `emomusic` console script is not on PATH (pip install -e .)")
    out = tmp_path / "calm.mid"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([exe, *GENERATE, "--out", str(out), "--json"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert RESULT_KEYS <= set(result) and result["quadrant"] == "Q4"
    assert mido.MidiFile(str(out)).type == 1
    again = subprocess.run([exe, *GENERATE, "--out", str(out)], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=120)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.startswith("emomusic: error:") and len(again.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ conventions (issue 23)
def _parsers(parser, path=("emomusic",)):
    """(command path, parser) for the top parser and every (nested) subcommand."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_flag_has_help_and_shows_its_default() -> None:
    from emomusic.cli import build_parser

    seen = 0
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            seen += 1
            assert action.help, f"{' '.join(path)} {action.option_strings[0]} has no help"
            if action.default not in (None, False):
                assert f"(default: {action.default})" in " ".join(text.split()), (path, action.dest)
    assert seen > 50


def test_train_components_have_only_their_own_flags(capsys) -> None:
    for argv in (["train", "selector", "--steps", "3"], ["train", "generator", "--epochs", "3"],
                 ["train", "recognizer", "--preset", "tiny"], ["train", "clusterer", "--folds", "2"],
                 ["train", "generator", "--fit-steps"], ["train", "selector", "--epochs", "0"],
                 ["data", "prepare", "--bogus"], ["data", "frobnicate"]):
        _assert_clean_error(*_run(capsys, argv))


def test_words_prints_the_vocabulary(capsys) -> None:
    from emomusic.vocab.emotions import GENRES, WORDS

    rc, stdout, _ = _run(capsys, ["words"])
    assert rc == 0 and all(w in stdout for w in WORDS) and all(g in stdout for g in GENRES)
    assert "lonely       valence -0.65  arousal -0.35" in stdout
    rc, stdout, _ = _run(capsys, ["words", "--json"])
    vocab = json.loads(stdout)
    assert {e["word"]: e["quadrant"] for e in vocab["emotions"]} == {w: e.quadrant for w, e in WORDS.items()}
    assert vocab["genres"] == list(GENRES) and vocab["genre_aliases"]["jazz"] == "pop"


@pytest.mark.parametrize(("extra", "says"), [
    (["--emotion", "sadd"], "emotion 'sadd' read as 'sad'"),
    (["--emotion", "sad", "--valence", "0.9"], "valence/arousal win over emotion 'sad'"),
    (["--emotion", "sad", "--genre", "jazz"], "genre 'jazz' has no training data: generating pop"),
])
def test_a_corrected_typo_or_a_conflict_is_one_stderr_line(capsys, tmp_path, extra, says) -> None:
    rc, stdout, err = _run(capsys, [*GENERATE[:3], *extra, "--bars", "1", "--out", str(tmp_path / "x.mid"), "--json"])
    assert rc == 0 and json.loads(stdout)["out"]
    assert err.splitlines() == [line for line in err.splitlines() if line.startswith("emomusic: note:")]
    assert len(err.splitlines()) == 1 and says in err


@pytest.mark.parametrize("suffix", [".musicxml", ".wav"])
def test_out_suffix_picks_the_format(capsys, tmp_path, suffix) -> None:
    out = tmp_path / f"calm{suffix}"
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(out)])
    assert rc == 0, err
    assert out.read_bytes()[:4] == b"RIFF" if suffix == ".wav" else "<score-partwise" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_unknown_out_suffix_lists_the_formats(capsys, tmp_path) -> None:
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(tmp_path / "calm.mp3")])
    _assert_clean_error(rc, stdout, err)
    assert all(s in err for s in (".mid", ".musicxml", ".wav"))
    assert list(tmp_path.iterdir()) == []


def test_keep_all_writes_each_candidate_once_best_as_out(capsys, tmp_path) -> None:
    out = tmp_path / "calm.mid"
    rc, stdout, err = _run(capsys, [*GENERATE, "--candidates", "3", "--keep-all", "--out", str(out), "--json"])
    assert rc == 0, err
    cands = json.loads(stdout)["candidates"]
    assert [c["out"] for c in cands] == [str(tmp_path / n) for n in ("calm.mid", "calm-2.mid", "calm-3.mid")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calm-2.mid", "calm-3.mid", "calm.mid"]
    alone = tmp_path / "alone" / "calm.mid"
    alone.parent.mkdir()
    assert _run(capsys, [*GENERATE, "--candidates", "3", "--out", str(alone)])[0] == 0
    assert alone.read_bytes() == out.read_bytes()  # --keep-all does not change the best


def test_summary_separates_the_piece_from_the_generation_time(capsys, tmp_path) -> None:
    out = tmp_path / "calm.mid"
    rc, stdout, _ = _run(capsys, [*GENERATE, "--out", str(out), "--json"])
    result = json.loads(stdout)
    held = sum(1 for t in mido.MidiFile(str(out)).tracks for m in t if m.type == "note_on" and m.velocity > 0)
    assert rc == 0 and result["notes"] == held
    assert 1 <= result["piece_bars"] <= 2 and result["tempo"] > 0
    assert result["music_seconds"] == pytest.approx(result["piece_bars"] * 4 * 60 / result["tempo"], abs=0.01)
    rc, stdout, _ = _run(capsys, [*GENERATE, "--out", str(tmp_path / "b.mid")])
    assert " s of music at " in stdout and "notes in the file; generated in " in stdout


def test_analyze_audio_without_the_audio_extra_says_what_to_install(capsys, tmp_path, monkeypatch) -> None:
    import wave

    path = tmp_path / "song.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(32000))
    monkeypatch.setitem(sys.modules, "librosa", None)  # `import librosa` raises ModuleNotFoundError
    rc, stdout, err = _run(capsys, ["analyze", str(path)])
    _assert_clean_error(rc, stdout, err)
    assert "emomusic[audio]" in err and "internal error" not in err


def test_evaluate_accepts_data_root(capsys, tmp_path) -> None:
    rc, stdout, err = _run(capsys, ["evaluate", "--checkpoints", "debug", "--per-emotion", "1", "--bars", "1",
                                    "--data-root", str(tmp_path / "typo"), "--out", str(tmp_path / "r")])
    _assert_clean_error(rc, stdout, err)
    assert "typo" in err and "--data-root" in err


def test_python_dash_m_runs_the_same_command(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "emomusic.cli", "words", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["emotions"]


# ------------------------------------------------------------------ tempo and metre as asked
def test_asked_tempo_and_metre_are_what_the_file_and_json_say(capsys, tmp_path) -> None:
    import symusic

    out = tmp_path / "waltz.mid"
    rc, stdout, _ = _run(capsys, [*GENERATE, "--tempo", "70", "--time-signature", "3/4", "--out", str(out),
                                  "--json"])
    assert rc == 0
    result = json.loads(stdout)
    score = symusic.Score(str(out))
    assert result["tempo"] == 70 and abs(score.tempos[0].qpm - 70) < 1e-3  # not the tempo token's 72.37
    assert result["time_signature"] == "3/4"
    assert [(t.numerator, t.denominator) for t in score.time_signatures] == [(3, 4)]


def test_a_waltz_prompt_writes_three_four(capsys, tmp_path) -> None:
    import symusic

    out = tmp_path / "w.mid"
    rc, _, _ = _run(capsys, ["generate", "--checkpoints", "debug", "--prompt", "happy waltz", "--bars", "2",
                             "--out", str(out)])
    assert rc == 0 and [(t.numerator, t.denominator) for t in symusic.Score(str(out)).time_signatures] == [(3, 4)]


@pytest.mark.parametrize("flags", [["--tempo", "0"], ["--time-signature", "5/0"], ["--time-signature", "7/4"],
                                   ["--time-signature", "three"]])
def test_bad_tempo_or_metre_is_one_line_and_exit_2(capsys, tmp_path, flags) -> None:
    out = tmp_path / "x.mid"
    _assert_clean_error(*_run(capsys, [*GENERATE, *flags, "--out", str(out)]))
    assert not out.exists()


def test_the_first_generation_on_a_machine_says_it_builds_the_kernels(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rc, _, err = _run(capsys, [*GENERATE, "--out", str(tmp_path / "a.mid")])
    assert rc == 0 and "building the sampling kernels once for this machine" in err
    rc, _, err = _run(capsys, [*GENERATE, "--out", str(tmp_path / "b.mid")])
    assert rc == 0 and "building the sampling kernels" not in err  # once per machine


def test_warmup_builds_the_kernels_and_leaves_a_marker(capsys, tmp_path, monkeypatch) -> None:
    from emomusic.generation.compiled import is_built

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert not is_built()
    rc, out, _ = _run(capsys, ["warmup"])
    assert rc == 0 and "sampling kernels ready" in out and is_built()
