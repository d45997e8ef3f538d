"""The symbolic recognizer: model, unified training with distillation, the recognize() API and the CLI.

Everything runs on a tiny random generator and a recognizer fitted in seconds on MIDI built in code:
"happy" pieces are fast, loud, high and major; "sad" ones slow, soft, low and minor.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from emomusic.checkpoint import save_checkpoint
from emomusic.cli import main
from emomusic.errors import CheckpointError, InvalidInputError
from emomusic.export.midi import export_midi
from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.music.notes import Notes
from emomusic.music.tokenizer import MusicTokenizer
from emomusic.recognition.api import EmotionRecognizer, explain, recognize
from emomusic.recognition.model import Features, featurise, load_recognizer
from emomusic.training.datasets import Record
from emomusic.training.recognizer import (
    DistillConfig,
    Split,
    TrainConfig,
    cross_validate,
    evaluate,
    explanation_stats,
    fit,
    fold_splits,
    largest_group,
    model_card,
    predict,
    run_ablation,
    save_recognizer,
    val_report,
)
from emomusic.types import Recognition
from emomusic.vocab.emotions import QUADRANTS

MAJOR, MINOR = (0, 4, 7), (0, 3, 7)


def _piece(rng: np.random.Generator, happy: bool, bars: int = 4) -> Notes:
    """Block chords plus a melody: happy = major, fast, loud, high; sad = minor, slow, soft, low."""
    tonic = int(rng.integers(0, 12))
    chord = MAJOR if happy else MINOR
    base = (60 if happy else 45) + tonic
    step = 0.5 if happy else 2.0
    pitch, start, dur = [], [], []
    for beat in np.arange(0, bars * 4, step):
        for iv in chord:
            pitch.append(base + iv)
            start.append(beat)
            dur.append(step)
        pitch.append(base + 12 + int(rng.choice(chord)))
        start.append(beat)
        dur.append(step)
    vel = rng.integers(95, 115, len(pitch)) if happy else rng.integers(30, 50, len(pitch))
    return Notes.from_arrays(pitch, start, dur, vel, tempo=150.0 if happy else 62.0)


@pytest.fixture(scope="module")
def tiny() -> dict:
    """A tiny generator and the quantised pieces, tokens and features of 24 happy/sad pieces."""
    torch.manual_seed(0)
    tok = MusicTokenizer()
    gen = Generator(GeneratorConfig(vocab_size=len(tok), dim=32, depth=1, heads=2, max_seq_len=512)).eval()
    rng = np.random.default_rng(0)
    happy = np.arange(24) % 2 == 0
    ids = [tok.encode(_piece(rng, bool(h))) for h in happy]
    notes = [tok.decode(i) for i in ids]
    from emomusic.generation.embeddings import piece_embeddings

    emb = piece_embeddings(gen, tok, ids, max_windows=2)
    return {"tok": tok, "gen": gen, "happy": happy, "features": featurise(notes, emb, max_chords=64)}


def _split(tiny: dict, name: str, quadrant: bool = True, arousal: bool = True) -> Split:
    """Happy → Q1, sad → Q3 targets; labels can be dropped to mimic VGMIDI v1 (valence only)."""
    happy = tiny["happy"]
    n = len(happy)
    recs = [Record(f"{name}/{i}", name, "", "pop", "train", f"{name}/{i}") for i in range(n)]
    q = np.where(happy, 0, 2) if quadrant else np.full(n, -1)
    va = np.repeat(happy[:, None], 2, axis=1).astype(np.float32)
    mask = np.ones((n, 2), bool)
    mask[:, 1] = arousal
    return Split(name, tiny["features"], recs, q.astype(np.int64), va, mask)


CFG = TrainConfig(epochs=40, batch_size=8, lr=5e-3, model={"hidden": 16, "chord_dim": 4, "max_chords": 64})


@pytest.fixture(scope="module")
def checkpoints(tiny: dict, tmp_path_factory) -> Path:
    """A checkpoint root with the tiny generator and a recognizer trained on it."""
    from emomusic.generation.checkpoint import generator_sha

    root = tmp_path_factory.mktemp("ckpts")
    gen = tiny["gen"]
    save_checkpoint(root / "generator", kind="generator", config={"model": gen.config.to_dict()},
                    state_dict=gen.state_dict(), tokenizer=tiny["tok"].to_dict())
    split = _split(tiny, "emopia")
    model = fit([split], CFG, extra={"embed_dim": 32, "generator_sha": generator_sha(root / "generator"),
                                     "explain": explanation_stats([split])})
    save_recognizer(model, root / "recognizer", metrics={"train": evaluate(model, split)})
    return root


@pytest.fixture(scope="module")
def midi_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("midi")
    rng = np.random.default_rng(1)
    return [export_midi(_piece(rng, h), folder / f"{'happy' if h else 'sad'}{i}.mid")
            for i, h in enumerate([True, False, True, False])]


# ------------------------------------------------------------------------------------ model and training
def test_fit_learns_both_heads(tiny: dict) -> None:
    split = _split(tiny, "emopia")
    model = fit([split], CFG, extra={"embed_dim": 32})
    m = evaluate(model, split)
    assert m["4Q"] == 1.0 and m["valence"] == 1.0 and m["arousal"] == 1.0
    probs, va = predict(model, split.features)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.abs(va).max() <= 1.0


def test_distillation_fills_missing_labels(tiny: dict) -> None:
    """A student seeing only valence takes quadrants and arousal from the teacher's soft outputs.

    The teacher hears happy pieces as calm (Q4: arousal down) and sad ones as tense (Q2: arousal up),
    which the valence labels alone cannot tell the student.
    """
    flipped = _split(tiny, "emopia")
    flipped.quadrant = np.where(tiny["happy"], 3, 1)
    flipped.va[:, 1] = ~tiny["happy"]
    teacher = fit([flipped], CFG, extra={"embed_dim": 32})
    assert evaluate(teacher, flipped)["4Q"] == 1.0
    valence_only = _split(tiny, "vgmidi_v1", quadrant=False, arousal=False)
    student = fit([valence_only], CFG, [(teacher, ("quadrant", "valence", "arousal"))],
                  DistillConfig(weight=1.0, temperature=2.0), extra={"embed_dim": 32})
    m = evaluate(student, flipped)
    assert m["4Q"] == 1.0 and m["arousal"] == 1.0 and m["valence"] == 1.0


def _twins(tiny: dict, seed: int) -> Split:
    """Every piece twice under one song key, with a random (seeded) quadrant per song.

    A model can only get a song right by remembering its twin, so held-out accuracy is near
    chance unless the twin leaked into training.
    """
    n = len(tiny["happy"])
    idx = np.repeat(np.arange(n), 2)
    q = np.random.default_rng(seed).choice([0, 2], n)[idx]
    recs = [Record(f"emopia/{i}-{j % 2}", "emopia", "", "pop", "train", f"emopia/song{i}") for j, i in enumerate(idx)]
    va = np.repeat((q == 0)[:, None], 2, axis=1).astype(np.float32)
    return Split("emopia", tiny["features"].take(idx), recs, q.astype(np.int64), va, np.ones((len(idx), 2), bool))


def test_cross_validation_holds_out_whole_songs(tiny: dict) -> None:
    """Out-of-fold accuracy cannot be bought by memorising: a song's twin clips share a fold."""
    split = _twins(tiny, seed=0)
    folds = fold_splits({"emopia": split}, 4)["emopia"]
    assert all(len(set(folds[np.array([r.group == g for r in split.records])])) == 1
               for g in {r.group for r in split.records})
    assert evaluate(fit([split], CFG, extra={"embed_dim": 32}), split)["4Q"] == 1.0  # it can memorise
    singles, [cv] = cross_validate({"emopia": split}, CFG, [None], folds=4, extra={"embed_dim": 32})
    assert cv["emopia"]["n"] == len(split)
    assert cv["emopia"]["4Q"] < 0.7  # 0.54 here; 0.85 when folds split songs (checked by mutation)


def test_cross_validation_scores_a_learnable_task_and_every_setting(tiny: dict) -> None:
    split = _split(tiny, "emopia")
    valence_only = _split(tiny, "vgmidi_v1", quadrant=False, arousal=False)
    train = {"emopia": split, "vgmidi_v1": valence_only}
    singles, (plain, distilled) = cross_validate(train, CFG, [None, DistillConfig(0.5, 1.0)], folds=3,
                                                 extra={"embed_dim": 32})
    assert set(singles) == {"single: emopia", "single: vgmidi_v1"}
    for res in (plain, distilled, singles["single: emopia"]):
        assert res["emopia"]["4Q"] == 1.0 and res["emopia"]["valence"] == 1.0
        assert res["vgmidi_v1"]["valence"] == 1.0 and "4Q" not in res["vgmidi_v1"]
    assert singles["single: vgmidi_v1"]["vgmidi_v1"]["valence"] == 1.0  # a teacher scored out of fold too


def test_evaluation_reports_song_intervals_and_the_largest_song(tiny: dict) -> None:
    split = _twins(tiny, seed=1)
    model = fit([split], CFG, extra={"embed_dim": 32})
    m = evaluate(model, split, ci=True)
    for metric in ("4Q", "valence", "arousal"):
        lo, hi = m[f"{metric}_ci"]
        assert lo <= m[metric] <= hi
    big = split.take(np.r_[np.arange(len(split)), [0, 0, 0]])  # song0 now has five clips
    group, n, rest = largest_group(big)
    assert (group, n, len(rest)) == ("emopia/song0", 5, len(split) - 2)
    assert all(r.group != group for r in rest.records)


def test_ablation_tunes_distillation_out_of_fold_and_writes_the_card(tiny: dict) -> None:
    """The whole recipe on tiny data: the grid is scored by cross-validation, the card carries it all."""
    train = {"emopia": _split(tiny, "emopia"), "vgmidi": _split(tiny, "vgmidi"),
             "vgmidi_v1": _split(tiny, "vgmidi_v1", quadrant=False, arousal=False)}
    val = {n: sp.take(np.arange(8)) for n, sp in train.items()}
    ab, models = run_ablation(train, val, CFG, (0,), (0.5, 2.0), (1.0,), {"embed_dim": 32}, folds=3)
    assert [g["weight"] for g in ab.grid] == [0.5, 2.0] and all("cv_score" in g for g in ab.grid)
    assert ab.distill.weight == max(ab.grid, key=lambda g: g["cv_score"])["weight"]
    assert set(ab.cv_rows) == set(ab.rows) == {"single: emopia", "single: vgmidi", "single: vgmidi_v1", "unified",
                                               "unified + distillation"}
    shipped = val_report(models["unified + distillation"], val)
    card = model_card(ab, shipped, {n: len(sp) for n, sp in train.items()}, (0,), CFG, 60.0)
    assert "cross-validation" in card and "without its largest song" in card and "CV score" in card
    assert not re.search(r"\{[A-Za-z_]", card)  # no template placeholder left unfilled


def test_checkpoint_round_trip(tiny: dict, checkpoints: Path) -> None:
    model = load_recognizer(checkpoints / "recognizer")
    f: Features = tiny["features"]
    probs, _ = predict(model, f)
    assert (probs.argmax(1) == np.where(tiny["happy"], 0, 2)).all()
    assert model.config.explain["names"]  # explanation statistics travel with the weights


def test_numpy_forward_equals_the_torch_module(tiny: dict, checkpoints: Path) -> None:
    """Inference runs the recognizer in numpy (no torch import); training's torch module is the reference."""
    from emomusic.recognition.inference import forward, load_arrays

    model = load_recognizer(checkpoints / "recognizer")
    f: Features = tiny["features"]
    with torch.no_grad():
        q, va = model(**f.tensors())
    arrays, config = load_arrays(checkpoints / "recognizer")
    nq, nva = forward(arrays, f)
    np.testing.assert_allclose(nq, q.numpy(), atol=1e-4)
    np.testing.assert_allclose(nva, va.numpy(), atol=1e-4)
    assert config.max_chords == model.config.max_chords


def test_numpy_embeddings_equal_the_torch_network(tiny: dict) -> None:
    """The selector's and recognizer's piece embeddings through the fast engine's numpy forward."""
    from emomusic.generation.embeddings import piece_embeddings
    from emomusic.generation.fast import DecoderWeights

    gen, tok = tiny["gen"], tiny["tok"]
    rng = np.random.default_rng(5)
    ids = [tok.encode(_piece(rng, h, bars=b)) for h, b in ((True, 2), (False, 12), (True, 30))]
    ref = piece_embeddings(gen, tok, ids, length=64, max_windows=2)
    out = piece_embeddings(DecoderWeights.from_module(gen), tok, ids, length=64, max_windows=2)
    np.testing.assert_allclose(out, ref, atol=1e-5)


# ------------------------------------------------------------------------------------ API
def test_recognize_midi_files(checkpoints: Path, midi_files: list[Path]) -> None:
    results = recognize(midi_files, checkpoints=checkpoints)
    assert [r.file for r in results] == [str(p) for p in midi_files]
    assert [r.quadrant for r in results] == ["Q1", "Q3", "Q1", "Q3"]
    for r in results:
        assert isinstance(r, Recognition) and set(r.probabilities) == set(QUADRANTS)
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert -1 <= r.valence <= 1 and -1 <= r.arousal <= 1
        assert r.explanation and all(isinstance(x, str) for x in r.explanation)
    assert results[0].valence > 0 > results[1].valence
    sad = " ".join(results[1].explanation)
    assert "slow" in sad or "minor" in sad or "soft" in sad or "low register" in sad
    assert recognize(str(midi_files[0]), checkpoints=checkpoints)[0].quadrant == "Q1"  # one path, not a list


def test_bad_file_is_reported_and_others_still_analysed(checkpoints: Path, midi_files: list[Path],
                                                        tmp_path: Path) -> None:
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"not midi at all")
    out = list(EmotionRecognizer(checkpoints).iter_recognize([midi_files[0], bad, midi_files[1]]))
    assert isinstance(out[0][1], Recognition) and isinstance(out[2][1], Recognition)
    assert isinstance(out[1][1], InvalidInputError) and "broken.mid" in str(out[1][1])
    with pytest.raises(InvalidInputError, match="broken.mid"):
        recognize([midi_files[0], bad], checkpoints=checkpoints)


def test_audio_is_dispatched_lazily(checkpoints: Path, midi_files: list[Path], monkeypatch, tmp_path: Path) -> None:
    calls = []
    song = tmp_path / "song.WAV"
    song.write_bytes(b"RIFF")  # only its path and size are checked before dispatch

    def fake(path, checkpoint_dir=None, mert=None):
        calls.append((path, checkpoint_dir, mert))
        return Recognition(path, "Q4", {"Q1": 0.1, "Q2": 0.1, "Q3": 0.1, "Q4": 0.7}, 0.5, -0.5, ["soft dynamics"])

    monkeypatch.setitem(sys.modules, "emomusic.recognition.audio_model", types.SimpleNamespace(recognize_audio=fake))
    res = recognize([midi_files[0], song], checkpoints=checkpoints, mert="mert-dir")
    assert [r.quadrant for r in res] == ["Q1", "Q4"]
    assert calls == [(str(song), checkpoints / "audio_recognizer", "mert-dir")]


def test_audio_without_audio_module_is_a_clear_error(checkpoints: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "emomusic.recognition.audio_model", None)  # import fails
    song = tmp_path / "song.flac"
    song.write_bytes(b"fLaC")
    with pytest.raises(InvalidInputError, match="audio analysis is not available yet"):
        recognize(song, checkpoints=checkpoints)


def test_recognizer_refuses_another_generator(checkpoints: Path, tiny: dict, tmp_path: Path,
                                              midi_files: list[Path]) -> None:
    import shutil

    shutil.copytree(checkpoints / "recognizer", tmp_path / "recognizer")
    gen = Generator(GeneratorConfig(vocab_size=len(tiny["tok"]), dim=32, depth=1, heads=2, max_seq_len=512))
    save_checkpoint(tmp_path / "generator", kind="generator", config={"model": gen.config.to_dict()},
                    state_dict=gen.state_dict(), tokenizer=tiny["tok"].to_dict())
    with pytest.raises(CheckpointError, match="trained on generator"):
        recognize(midi_files[0], checkpoints=tmp_path)


def test_no_files_and_missing_checkpoint(tmp_path: Path, midi_files: list[Path]) -> None:
    with pytest.raises(InvalidInputError, match="no files"):
        recognize([], checkpoints=tmp_path)
    with pytest.raises(InvalidInputError, match="no recognizer checkpoint"):
        recognize(midi_files[0], checkpoints=tmp_path)
    with pytest.raises(InvalidInputError, match="does not exist"):  # the input is checked before any model
        recognize(tmp_path / "x.mid", checkpoints=tmp_path)


def test_explanation_names_the_evidence() -> None:
    names = ["tempo", "mode", "velocity_mean", "pitch_mean", "note_density"]
    stats = {"names": names, "mean": [110, 0.6, 70, 62, 4], "std": [25, 0.5, 15, 6, 2],
             "quadrant_mean": {"Q1": [140, 0.9, 85, 66, 6], "Q2": [130, 0.3, 90, 60, 6],
                               "Q3": [75, 0.2, 50, 56, 2], "Q4": [85, 0.9, 55, 64, 2]}}
    sad = {"tempo": 64, "mode": 0.0, "velocity_mean": 40, "pitch_mean": 50, "note_density": 4.1}
    words = explain(sad, "Q3", stats)
    assert "slow, about 64 BPM" in words and "minor mode" in words
    assert any(w.startswith("soft dynamics") for w in words) and any(w.startswith("low register") for w in words)
    happy = explain({"tempo": 150, "mode": 1.0, "velocity_mean": 90, "pitch_mean": 70, "note_density": 7},
                    "Q1", stats)
    assert happy[0] == "fast, about 150 BPM" or "fast, about 150 BPM" in happy
    assert "minor mode" not in happy
    # A piece that contradicts its quadrant everywhere still gets a description, not an empty list.
    assert explain({"tempo": 160, "mode": 1.0, "velocity_mean": 95, "pitch_mean": 70, "note_density": 8},
                   "Q3", stats)


# ------------------------------------------------------------------------------------ CLI
def test_cli_analyze_json_plot_and_errors(checkpoints: Path, midi_files: list[Path], tmp_path: Path,
                                          capsys) -> None:
    bad = tmp_path / "missing.mid"
    png = tmp_path / "va.png"
    code = main(["analyze", str(midi_files[0]), str(bad), str(midi_files[1]), "--json", "--checkpoints",
                 str(checkpoints), "--plot", str(png)])
    out, err = capsys.readouterr()
    assert code == 2
    lines = [json.loads(x) for x in out.strip().splitlines()]
    assert len(lines) == 2
    assert all(list(d) == ["file", "quadrant", "probabilities", "valence", "arousal", "explanation"] for d in lines)
    assert [d["quadrant"] for d in lines] == ["Q1", "Q3"]
    assert err.count("emomusic: error:") == 1 and "missing.mid" in err and "Traceback" not in err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["analyze", str(midi_files[0]), "--checkpoints", str(checkpoints), "--plot", str(png)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_analyze_text_output(checkpoints: Path, midi_files: list[Path], capsys) -> None:
    assert main(["analyze", str(midi_files[1]), "--checkpoints", str(checkpoints)]) == 0
    out = capsys.readouterr().out
    assert "Q3" in out and "valence" in out


# ------------------------------------------------------------------------------------ real data
@pytest.mark.data
def test_vgmidi_graded_targets_follow_the_labels(data_root_or_skip: Path) -> None:
    from emomusic.training.recognizer import vgmidi_graded

    graded = vgmidi_graded(data_root_or_skip)
    assert len(graded) >= 190
    vals = np.array(list(graded.values()))
    assert vals.min() >= 0 and vals.max() <= 1
    assert len(np.unique(vals.round(3))) > 10  # graded, not just 0/1


@pytest.mark.data
@pytest.mark.slow
def test_shipped_recognizer_on_real_clips(data_root_or_skip: Path) -> None:
    """The shipped checkpoint loads with the shipped generator and names two clear EMOPIA val clips."""
    from emomusic.settings import checkpoints_root
    from emomusic.training.datasets import records

    if not (checkpoints_root() / "recognizer").is_dir():
        pytest.skip("no shipped recognizer checkpoint")
    val = [r for r in records(data_root_or_skip, ("emopia",)) if r.split == "val"]
    picks = [next(r for r in val if r.quadrant == q) for q in ("Q1", "Q3")]
    res = recognize([r.path for r in picks])
    assert all(r.explanation for r in res)
    assert res[0].arousal > res[1].arousal  # a happy clip sounds more aroused than a sad one
