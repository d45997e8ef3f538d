"""Fine-tuning on a user's folder (`train generator --data-dir`) and generating with the result (`--generator`).

A tiny generator (the shipped tokenizer, a 2-layer 32-wide network) is fine-tuned for a few steps on MIDI
files written here, so the run takes seconds on a CPU; no step count or timing is asserted beyond the
steps asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import symusic

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.cli import main
from emomusic.settings import checkpoints_root


def _write_tune(path: Path, rng: np.random.Generator, bars: int = 8, drums: bool = False) -> None:
    """A 6/8 tune: eighth-note melody over a held bass note per bar (or a drum-only file)."""
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, 110.0))
    score.time_signatures.append(symusic.TimeSignature(0, 6, 8))
    track = symusic.Track("drums" if drums else "tune", 0, drums)
    scale = [62, 64, 66, 67, 69, 71, 73, 74]
    for i in range(bars * 6):
        pitch = 38 + (i % 5) if drums else scale[int(rng.integers(len(scale)))]
        track.notes.append(symusic.Note(i * 240, 220, pitch, 90))
    if not drums:
        for b in range(bars):
            track.notes.append(symusic.Note(b * 1440, 1400, 50, 70))
    score.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Six good tunes (one in a subfolder, one .MIDI) and three bad files: unreadable, empty, drum-only."""
    root = tmp_path_factory.mktemp("my_midis")
    rng = np.random.default_rng(0)
    for i in range(5):
        _write_tune(root / f"tune{i}.mid", rng)
    _write_tune(root / "sub" / "deeper.MIDI", rng)
    (root / "broken.mid").write_bytes(b"this is not a MIDI file")
    empty = symusic.Score(480)
    empty.tracks.append(symusic.Track("silent", 0, False))
    empty.dump_midi(str(root / "empty.mid"))
    _write_tune(root / "kit.mid", rng, drums=True)
    (root / "notes.txt").write_text("not music")
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny generator checkpoint with the shipped tokenizer (what a fine-tune of the shipped one keeps)."""
    import torch

    from emomusic.generation.network import Generator, GeneratorConfig

    tokenizer = json.loads((checkpoints_root() / "generator" / "config.json").read_text())["tokenizer"]
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(vocab_size=tokenizer["vocab_size"], dim=32, depth=2, heads=2, max_seq_len=256))
    out = tmp_path_factory.mktemp("base") / "generator"
    save_checkpoint(out, kind="generator", config={"model": model.config.to_dict()}, state_dict=model.state_dict(),
                    tokenizer=tokenizer)
    return out


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _train(folder: Path, base: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "generator", "--data-dir", folder, "--from", base, "--out", out, "--preset", "tiny",
            "--steps", str(steps), "--device", "cpu", "--genre", "folk", *extra]


@pytest.fixture(scope="module")
def tuned(folder: Path, base: Path, tmp_path_factory) -> tuple[Path, str]:
    """A 3-step fine-tune: (its output folder, what it printed)."""
    import contextlib  # capsys is function-scoped: this module-scoped run captures by hand
    import io

    out = tmp_path_factory.mktemp("ft") / "my_model"
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in _train(folder, base, out, 3)])
    assert rc == 0, err.getvalue()[-2000:]
    return out, buf.getvalue() + err.getvalue()


def test_bad_files_are_skipped_with_one_summary_line(tuned) -> None:
    _, printed = tuned
    lines = [x for x in printed.splitlines() if x.startswith("skipped")]
    assert lines == ["skipped 3 of 9 files (1 unreadable, 1 empty, 1 drum-only)"]
    assert "on 6 files of" in printed  # the subfolder's .MIDI file is read too


def test_output_folder_is_a_self_describing_generator(tuned, base: Path, folder: Path) -> None:
    out, _ = tuned
    assert {"config.json", "model.safetensors", "MODEL_CARD.md"} <= {p.name for p in out.iterdir()}
    ck = load_checkpoint(out, kind="generator")
    kept = load_checkpoint(base, kind="generator").tokenizer  # the base's tokenizer is kept (not refitted)
    assert ck.tokenizer["control_bins"] == kept["control_bins"]
    assert ck.tokenizer["miditok"]["config"] == kept["miditok"]["config"]
    m = ck.metrics
    assert m["files_used"] == 6 and m["files_found"] == 9 and m["files_val"] >= 1
    assert m["files_skipped"] == {"unreadable": 1, "empty": 1, "drum-only": 1}
    assert m["base"] == str(base) and 1 <= m["step"] <= 3 and m["steps_run"] == 3
    assert np.isfinite(m["val_loss_before"]) and np.isfinite(m["val_loss_after"])
    card = (out / "MODEL_CARD.md").read_text()
    assert str(folder) in card and str(base) in card and "6 of 9 files used" in card
    assert f"{m['val_loss_before']:.4f}" in card and f"{m['val_loss_after']:.4f}" in card
    assert ck.config["train"]["lr"] == pytest.approx(3e-5)  # the fine-tuning default, not from-scratch 1e-3


def test_the_split_is_stable_and_holds_out_at_least_one_file() -> None:
    from emomusic.training.finetune import val_keys

    keys = [f"tune{i}.mid" for i in range(6)]
    assert val_keys(keys) == val_keys(list(reversed(keys)))
    assert 1 <= len(val_keys(keys)) < len(keys)
    assert len(val_keys(["a.mid", "b.mid"])) == 1 and val_keys(["only.mid"]) == set()


def test_generate_with_the_fine_tuned_generator(tuned, tmp_path: Path, capsys) -> None:
    out, _ = tuned
    mid = tmp_path / "mine.mid"
    rc, stdout, err = _run(capsys, ["generate", "--generator", out, "--emotion", "happy", "--genre", "folk",
                                    "--bars", "2", "--seed", "1", "--no-expression", "--out", mid])
    assert rc == 0, err
    assert mid.is_file() and stdout.startswith(f"wrote {mid}")
    from emomusic.generation.checkpoint import generator_sha
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained(generator=out)
    assert em.model_id == generator_sha(out) != generator_sha()  # files record the fine-tuned weights
    assert em.backbone_id == generator_sha() and not em.notices  # the selector reads the shipped backbone
    assert em.backbone_weights.config.dim == 256 and em.generator.config.dim == 32


def test_a_shipped_fine_tune_keeps_the_backbone_the_heads_were_trained_on(tuned, tmp_path: Path) -> None:
    """A checkpoints folder whose generator was fine-tuned after the recognizer and selector were trained
    ships the network they read as `backbone/`: they keep it, files record the sampling generator."""
    from emomusic.generation.checkpoint import backbone_dir, generator_sha
    from emomusic.pipeline import EmoMusic
    from emomusic.recognition.api import SymbolicRecognizer

    out, _ = tuned
    shipped = checkpoints_root()
    root = tmp_path / "checkpoints"
    root.mkdir()
    for part in shipped.iterdir():
        if part.is_dir() and part.name not in ("generator", "backbone"):
            (root / part.name).symlink_to(part)
    (root / "generator").symlink_to(Path(out).resolve())
    assert backbone_dir(root) == root / "generator"  # no backbone/ yet: the generator is the backbone
    (root / "backbone").symlink_to(backbone_dir(shipped))  # what the shipped heads were trained on
    assert backbone_dir(root) == root / "backbone"
    em = EmoMusic.from_pretrained(root)
    assert em.model_id == generator_sha(out) != em.backbone_id == generator_sha(backbone_dir(shipped))
    assert not em.notices and em.selector is not None  # the heads still match what they read
    assert SymbolicRecognizer.from_checkpoints(root).generator.config.dim == 256  # not the tuned 32-wide network


def test_resume_continues_from_the_step_count(folder: Path, base: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "resumed"
    rc, _, err = _run(capsys, _train(folder, base, out, 2))
    assert rc == 0, err
    rc, _, err = _run(capsys, _train(folder, base, out, 2))
    assert rc == 2 and "--resume" in err  # an existing run is not started over by accident
    rc, _, err = _run(capsys, _train(folder, base, out, 4, "--resume"))
    assert rc == 0, err
    log = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [1, 2, 3, 4]
    assert load_checkpoint(out / "run" / "last", kind="generator").metrics["step"] == 4
    assert load_checkpoint(out, kind="generator").metrics["steps_run"] == 4


def test_a_folder_without_usable_files_is_one_line_and_exit_2(folder: Path, base: Path, tmp_path: Path,
                                                              capsys) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    rc, out, err = _run(capsys, _train(empty, base, tmp_path / "a", 2))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "no usable MIDI files" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mid").write_bytes(b"junk")
    rc, out, err = _run(capsys, _train(bad, base, tmp_path / "b", 2))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "1 unreadable" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_bad_generator_folder_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    for path in (tmp_path / "missing", checkpoints_root() / "clusterer"):
        rc, out, err = _run(capsys, ["generate", "--generator", path, "--emotion", "calm", "--bars", "2",
                                     "--out", tmp_path / "x.mid"])
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "x.mid").exists()


def test_a_generator_whose_tokenizer_lacks_the_controls_is_one_line(base: Path, tmp_path: Path, capsys) -> None:
    ck = load_checkpoint(base, kind="generator")
    tok = dict(ck.tokenizer, control_bins=None)
    other = tmp_path / "other"
    save_checkpoint(other, kind="generator", config=ck.config, state_dict=ck.state_dict, tokenizer=tok)
    rc, _, err = _run(capsys, ["generate", "--generator", other, "--emotion", "calm", "--bars", "2",
                               "--out", tmp_path / "x.mid"])
    assert rc == 2 and "tokenizer has no bins" in err and len(err.strip().splitlines()) == 1
