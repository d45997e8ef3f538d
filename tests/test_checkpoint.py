"""Checkpoint directories: exact round trips, precision, and one-line errors for every kind of damage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emomusic.checkpoint import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MODEL_CARD_FILE,
    WEIGHTS_FILE,
    check_state_dict,
    decode_arrays,
    encode_arrays,
    load_checkpoint,
    save_checkpoint,
)
from emomusic.errors import CheckpointError, InvalidInputError


class Tiny(torch.nn.Module):
    """Embedding + layer norm + tied output head + a buffer: the pieces real models have."""

    def __init__(self, vocab: int = 11, dim: int = 6) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight  # tied: shared storage must still save
        self.register_buffer("steps", torch.tensor([3, 1, 4], dtype=torch.int64))


def _model(seed: int = 0, **kw: int) -> Tiny:
    torch.manual_seed(seed)
    return Tiny(**kw)


CONFIG = {"vocab": 11, "dim": 6, "layers": [1, 2], "name": "tiny"}
METRICS = {"val_loss": 1.25, "acc_4q": 0.5}


def _save(path: Path, model: torch.nn.Module | None = None, **kw: object) -> Path:
    model = model or _model()
    args: dict = {"kind": "tiny", "config": CONFIG, "state_dict": model.state_dict(), "metrics": METRICS}
    args.update(kw)
    return save_checkpoint(path, **args)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    model = _model()
    tok = {"class": "REMI", "vocab_size": 11}
    out = _save(tmp_path / "ck", model, tokenizer=tok, model_card="# Tiny\n\nFor tests.\n")
    assert out == tmp_path / "ck"
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, MODEL_CARD_FILE])
    ck = load_checkpoint(out, kind="tiny")
    sd = model.state_dict()
    assert ck.state_dict.keys() == sd.keys()
    for k, v in sd.items():
        assert ck.state_dict[k].dtype == v.dtype and torch.equal(ck.state_dict[k], v), k
    assert ck.kind == "tiny" and ck.config == CONFIG and ck.metrics == METRICS and ck.tokenizer == tok
    assert ck.model_card == "# Tiny\n\nFor tests.\n"
    assert {"emomusic", "torch", "python"} <= ck.versions.keys()
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["class"] == "tiny" and meta["created"]
    assert set(meta["files"]) == {WEIGHTS_FILE, MODEL_CARD_FILE}
    fresh = ck.load_into(_model(seed=1))
    assert torch.equal(fresh.emb.weight, model.emb.weight)


def test_fp16_save_loads_back_as_float32(tmp_path: Path) -> None:
    model = _model()
    _save(tmp_path / "ck", model, dtype=torch.float16)
    size16 = (tmp_path / "ck" / WEIGHTS_FILE).stat().st_size
    _save(tmp_path / "ck32", model)
    assert size16 < (tmp_path / "ck32" / WEIGHTS_FILE).stat().st_size
    ck = load_checkpoint(tmp_path / "ck")
    for k, v in model.state_dict().items():
        got = ck.state_dict[k]
        if v.is_floating_point():
            assert got.dtype == torch.float32
            torch.testing.assert_close(got, v, atol=1e-3, rtol=1e-3)
        else:
            assert torch.equal(got, v)  # integer buffers are never cast


@pytest.mark.parametrize("dtype", [None, torch.float16, torch.bfloat16])
def test_weights_load_as_numpy_arrays_equal_to_the_tensors(tmp_path: Path, dtype) -> None:
    """arrays=True (what sampling reads, without importing torch): the same values as the tensor load,
    float32 for low-precision storage, integer buffers untouched."""
    _save(tmp_path / "ck", dtype=dtype)
    tensors = load_checkpoint(tmp_path / "ck").state_dict
    arrays = load_checkpoint(tmp_path / "ck", arrays=True).state_dict
    assert arrays.keys() == tensors.keys()
    for k, v in tensors.items():
        assert isinstance(arrays[k], np.ndarray) and arrays[k].dtype == v.numpy().dtype, k
        np.testing.assert_array_equal(arrays[k], v.numpy())


def test_overwrites_same_kind_but_not_other_data(tmp_path: Path) -> None:
    target = tmp_path / "ck"
    _save(target, extra_files={"old.bin": b"old"})
    _save(target, _model(seed=5), metrics={"val_loss": 0.5})
    ck = load_checkpoint(target)
    assert ck.metrics == {"val_loss": 0.5}
    assert not (target / "old.bin").exists()
    assert torch.equal(ck.state_dict["emb.weight"], _model(seed=5).emb.weight)
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        _save(target, kind="other")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        _save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dirs left


def test_tampered_weights_checksum_error(tmp_path: Path) -> None:
    path = _save(tmp_path / "ck") / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # flip one bit of the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "ck")
    msg = str(info.value)
    assert "checksum mismatch" in msg and WEIGHTS_FILE in msg and "\n" not in msg


def test_truncated_weights(tmp_path: Path) -> None:
    path = _save(tmp_path / "ck") / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(
        CheckpointError, match=f"{WEIGHTS_FILE}: checksum mismatch \\(tampered or truncated\\)"
    ):
        load_checkpoint(tmp_path / "ck")


def test_truncated_weights_with_forged_checksum_still_fails_cleanly(tmp_path: Path) -> None:
    import hashlib

    root = _save(tmp_path / "ck")
    short = (root / WEIGHTS_FILE).read_bytes()[:40]
    (root / WEIGHTS_FILE).write_bytes(short)
    meta = json.loads((root / CONFIG_FILE).read_text())
    meta["files"][WEIGHTS_FILE] = hashlib.sha256(short).hexdigest()
    (root / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"{WEIGHTS_FILE}: not a readable safetensors file"):
        load_checkpoint(root)


@pytest.mark.parametrize("name", [WEIGHTS_FILE, MODEL_CARD_FILE])
def test_missing_listed_file(tmp_path: Path, name: str) -> None:
    root = _save(tmp_path / "ck")
    (root / name).unlink()
    with pytest.raises(CheckpointError, match=f"{name}: missing"):
        load_checkpoint(root)


def test_missing_directory_and_config(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint directory not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=f"{CONFIG_FILE}: missing"):
        load_checkpoint(tmp_path / "empty")
    assert issubclass(CheckpointError, InvalidInputError)


def test_unparsable_json_and_wrong_version(tmp_path: Path) -> None:
    root = _save(tmp_path / "ck")
    good = (root / CONFIG_FILE).read_text()
    (root / CONFIG_FILE).write_text(good[:-20])
    with pytest.raises(CheckpointError, match=f"{CONFIG_FILE}: unparsable JSON"):
        load_checkpoint(root)
    meta = json.loads(good)
    meta["format_version"] = 99
    (root / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format_version 99 is not supported.*upgrade emomusic"):
        load_checkpoint(root)


def test_wrong_kind(tmp_path: Path) -> None:
    root = _save(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="holds a 'tiny', expected 'generator'"):
        load_checkpoint(root, kind="generator")


def test_path_traversal_in_config_is_refused(tmp_path: Path) -> None:
    root = _save(tmp_path / "ck")
    meta = json.loads((root / CONFIG_FILE).read_text())
    meta["files"]["../secret"] = "0" * 64
    (root / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="invalid entry in 'files'"):
        load_checkpoint(root)


def test_check_state_dict_mismatches(tmp_path: Path) -> None:
    root = _save(tmp_path / "ck", _model(vocab=11, dim=6))
    ck = load_checkpoint(root)
    check_state_dict(_model(vocab=11, dim=6), ck.state_dict, root)  # fits: no error
    with pytest.raises(CheckpointError) as info:
        ck.load_into(_model(vocab=13, dim=6))
    msg = str(info.value)
    assert WEIGHTS_FILE in msg and "shape mismatch: emb.weight checkpoint (11, 6) vs model (13, 6)" in msg
    assert "\n" not in msg
    sd = dict(ck.state_dict)
    del sd["norm.bias"]
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="missing keys: norm.bias; unexpected keys: extra.weight"):
        check_state_dict(_model(), sd, root)


def test_extra_files_round_trip(tmp_path: Path) -> None:
    centroids = {"centroids": np.arange(12, dtype=np.float32).reshape(4, 3), "counts": np.array([1, 2, 3, 4])}
    root = save_checkpoint(
        tmp_path / "clusterer",
        kind="emomusic.conditioning.clusterer.Clusterer",
        config={"k": 4},
        state_dict=None,  # weightless component
        extra_files={"arrays.safetensors": encode_arrays(centroids), "notes.txt": b"hello"},
    )
    assert not (root / WEIGHTS_FILE).exists()
    ck = load_checkpoint(root, kind="emomusic.conditioning.clusterer.Clusterer")
    assert ck.state_dict == {}
    assert ck.read_extra("notes.txt") == b"hello"
    arrays = ck.read_arrays("arrays.safetensors")
    for k, v in centroids.items():
        assert arrays[k].dtype == v.dtype and np.array_equal(arrays[k], v)
    assert "clusterer" in ck.model_card.lower()  # a default card is written
    with pytest.raises(CheckpointError, match="not in this checkpoint"):
        ck.read_extra("missing.bin")
    (root / "notes.txt").write_bytes(b"HELLO")
    with pytest.raises(CheckpointError, match="notes.txt: checksum mismatch"):
        load_checkpoint(root)
    with pytest.raises(CheckpointError, match="not a readable safetensors array file"):
        decode_arrays(b"garbage", "x.safetensors")


@pytest.mark.parametrize("name", ["../evil", "config.json", ".hidden", "a/b", ""])
def test_bad_extra_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(CheckpointError, match="invalid extra file name"):
        _save(tmp_path / "ck", extra_files={name: b"x"})
    assert not (tmp_path / "ck").exists()


def test_unserialisable_config_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=f"{CONFIG_FILE}: .*not JSON-serialisable"):
        _save(tmp_path / "ck", metrics={"loss": float("nan")})
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        _save(tmp_path / "ck", config={"dtype": torch.float32})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- issue 9: never unpickle


class _Exploit:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _forge(root: Path, name: str, data: bytes) -> None:
    """Replace a file and forge its checksum, as an attacker who can edit the whole folder would."""
    import hashlib

    (root / name).write_bytes(data)
    meta = json.loads((root / CONFIG_FILE).read_text())
    meta["files"][name] = hashlib.sha256(data).hexdigest()
    (root / CONFIG_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["model.pt", "model.bin", "weights.pkl", "state.ckpt", "arrays.npy", "MODEL.PTH",
                                  "innocent.dat"])
def test_planted_pickle_is_refused_by_name_and_never_loaded(tmp_path: Path, name: str) -> None:
    import pickle

    root = _save(tmp_path / "ck")
    marker = tmp_path / "pwned"
    (root / name).write_bytes(pickle.dumps(_Exploit(marker), protocol=4))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(root)
    msg = str(info.value)
    assert str(root / name) in msg and "pickle" in msg and "\n" not in msg
    assert not marker.exists()


def test_pickle_in_place_of_the_weights_with_a_forged_checksum(tmp_path: Path) -> None:
    import pickle

    root = _save(tmp_path / "ck")
    marker = tmp_path / "pwned"
    _forge(root, WEIGHTS_FILE, pickle.dumps({"emb.weight": _Exploit(marker)}))
    with pytest.raises(CheckpointError, match=f"{WEIGHTS_FILE}: not a readable safetensors file"):
        load_checkpoint(root)
    assert not marker.exists()


def test_torch_save_zip_in_place_of_the_weights(tmp_path: Path) -> None:
    import io

    root = _save(tmp_path / "ck")
    buf = io.BytesIO()
    torch.save(_model().state_dict(), buf)  # the zip+pickle format; safetensors must refuse it
    _forge(root, WEIGHTS_FILE, buf.getvalue())
    with pytest.raises(CheckpointError, match=f"{WEIGHTS_FILE}: not a readable safetensors file"):
        load_checkpoint(root)


def test_loading_never_calls_pickle(tmp_path: Path, monkeypatch) -> None:
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle/torch.load was called while loading a checkpoint")

    root = _save(tmp_path / "ck", extra_files={"arrays.safetensors": encode_arrays({"a": np.arange(3)})})
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    ck = load_checkpoint(root)
    ck.load_into(_model())
    assert ck.read_arrays("arrays.safetensors")["a"].tolist() == [0, 1, 2]


def test_listed_files_are_not_sniffed_for_pickle_bytes(tmp_path: Path) -> None:
    """A safetensors header length of 0x280 begins with the pickle-protocol bytes 80 02: no false alarm."""
    root = _save(tmp_path / "ck", extra_files={"blob.dat": b"\x80\x02 not a pickle"})
    assert load_checkpoint(root).read_extra("blob.dat") == b"\x80\x02 not a pickle"
    (root / "unlisted.dat").write_bytes(b"\x80\x04 looks like one")
    with pytest.raises(CheckpointError, match="unlisted.dat: pickle-format file"):
        load_checkpoint(root)


def test_wrong_shapes_in_a_real_generator_checkpoint(tmp_path: Path) -> None:
    """config.json edited (or weights swapped) so the model built from the config does not fit the weights."""
    from emomusic.generation.network import load_generator
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    cfg = em.generator.config.to_dict()
    root = save_checkpoint(tmp_path / "gen", kind="generator", config={"model": cfg},
                           state_dict=em.generator.state_dict(), tokenizer=em.tokenizer.to_dict())
    load_generator(root)  # fits as saved
    meta = json.loads((root / CONFIG_FILE).read_text())
    meta["config"]["model"]["dim"] = cfg["dim"] * 2
    (root / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as info:
        load_generator(root)
    msg = str(info.value)
    assert WEIGHTS_FILE in msg and "shape mismatch" in msg and "\n" not in msg


@pytest.mark.parametrize("version", [0, 2, "1", None, True, 1.5])
def test_every_unsupported_format_version(tmp_path: Path, version) -> None:
    root = _save(tmp_path / "ck")
    meta = json.loads((root / CONFIG_FILE).read_text())
    meta["format_version"] = version
    (root / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"{CONFIG_FILE}: format_version .* is not supported"):
        load_checkpoint(root)


@pytest.mark.parametrize("cut", [0, 8, 100])
def test_truncated_weights_of_any_length_name_the_file(tmp_path: Path, cut: int) -> None:
    root = _save(tmp_path / "ck")
    _forge(root, WEIGHTS_FILE, (root / WEIGHTS_FILE).read_bytes()[:cut])
    with pytest.raises(CheckpointError, match=f"{root / WEIGHTS_FILE}: not a readable safetensors file"):
        load_checkpoint(root)


def test_saving_the_same_weights_twice_gives_the_same_file(tmp_path: Path) -> None:
    """The weights' SHA-256 is pinned by other components (the recognizer pins the generator's), so a re-save
    of identical tensors must not change it (safetensors used to order two metadata keys at random)."""
    digests = set()
    for i in range(6):
        root = _save(tmp_path / f"ck{i}", _model(seed=3))
        digests.add(json.loads((root / CONFIG_FILE).read_text())["files"][WEIGHTS_FILE])
    assert len(digests) == 1


def test_update_model_card_keeps_the_weights_bytes_and_verifies(tmp_path) -> None:
    from emomusic.checkpoint import load_checkpoint, save_checkpoint, update_model_card

    path = save_checkpoint(tmp_path / "ck", kind="demo", config={"a": 1},
                           state_dict={"w": torch.arange(4, dtype=torch.float32)}, metrics={"loss": 1.0})
    weights = (path / "model.safetensors").read_bytes()
    update_model_card(path, "# new card\n", metrics={"accuracy": 0.5})
    ck = load_checkpoint(path, kind="demo")
    assert ck.model_card == "# new card\n"
    assert ck.metrics == {"loss": 1.0, "accuracy": 0.5}
    assert (path / "model.safetensors").read_bytes() == weights


def test_generator_card_refresh_adds_the_conditioning_comparison_and_keeps_the_weights(tmp_path) -> None:
    from emomusic.checkpoint import load_checkpoint, save_checkpoint
    from emomusic.training.ship import refresh_card

    cfg = {"model": {"vocab_size": 8, "dim": 4}, "train": {"batch_size": 2, "seq_len": 16, "lr": 0.001}}
    path = save_checkpoint(tmp_path / "gen", kind="generator", config=cfg, state_dict={"w": torch.ones(3)},
                           tokenizer={}, metrics={"step": 5, "tokens_seen": {"all": 10, "emopia": 10},
                                                  "val_loss": {"emopia": 2.0}})
    weights = (path / "model.safetensors").read_bytes()
    acc = {"4Q": 0.5, "arousal": 0.75, "valence": 0.625}
    report = {"per_emotion": 2, "bars": 4, "judge_on_real_val": acc,
              "methods": {"attributes": {"accuracy": acc, "mean_overlap": 0.7, "seconds": 2.0, "pieces": 8}}}
    run = {"val_loss_mean": 1.5, "hit_mean": 0.6, "chance_mean": 0.4, "bin_error_mean": 0.7, "pieces": 8}
    comparison = {"runs": [{**run, "conditioning": "prefix"}, {**run, "conditioning": "sum", "hit_mean": 0.7}]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "cmp.json").write_text(json.dumps(comparison))
    refresh_card(path, tmp_path / "report.json", tmp_path / "cmp.json")
    ck = load_checkpoint(path, kind="generator")
    assert "| sum | 1.500 | 0.700 | 0.400 | 0.70 |" in ck.model_card
    assert "the summed embedding controlled better" in ck.model_card  # the verdict follows the numbers
    assert ck.metrics["conditioning_comparison"]["prefix"]["hit_mean"] == 0.6
    assert (path / "model.safetensors").read_bytes() == weights


def test_shipped_generator_card_states_each_resumed_schedule(tmp_path) -> None:
    from emomusic.checkpoint import load_checkpoint, save_checkpoint
    from emomusic.training.ship import ship

    cfg = {"model": {"vocab_size": 8, "dim": 4}, "train": {"batch_size": 2, "seq_len": 16, "lr": 0.0005}}
    save_checkpoint(tmp_path / "run" / "last", kind="generator", config=cfg, state_dict={"w": torch.ones(3)},
                    tokenizer={}, metrics={"step": 600, "tokens_seen": {"all": 10}, "val_loss": {"emopia": 2.0}})
    # warm-up to 1e-3 and decay to step 300; resumed from the step-250 save; resumed at 400 with a new schedule
    lrs = [(s, min(s / 10, 1.0) * 1e-3 * (1 - s / 1000)) for s in range(1, 301)]
    lrs += [(s, 1e-3 * (1 - s / 1000)) for s in range(251, 401)]
    lrs += [(s, 9e-4 * (1 - (s - 400) / 400)) for s in range(401, 601)]
    (tmp_path / "run" / "log.jsonl").write_text("".join(json.dumps({"step": s, "lr": lr}) + "\n" for s, lr in lrs))
    ck = load_checkpoint(ship(tmp_path / "run", tmp_path / "gen", trained_on="one test GPU"), kind="generator")
    assert [(s["first"], s["last"]) for s in ck.metrics["lr_segments"]] == [(1, 300), (251, 400), (401, 600)]
    assert "steps 401–600: max 9.0e-04 → 4.5e-04" in ck.model_card
    assert "trained on one test GPU" in ck.model_card and ck.metrics["trained_on"] == "one test GPU"
