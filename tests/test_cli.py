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
    """Sampling reads the checkpoint's tensors as numpy arrays: torch (1.3-2.4 s of a cold start here) and the
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
])
def test_generate_user_errors_are_one_line_and_write_nothing(capsys, tmp_path, extra) -> None:
    out = tmp_path / "never.mid"
    rc, stdout, err = _run(capsys, [*GENERATE, "--out", str(out), *extra])
    _assert_clean_error(rc, stdout, err)
    assert list(tmp_path.iterdir()) == []


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
