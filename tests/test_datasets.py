"""Datasets: stable song-level splits, label conventions, the prepared cache, and the real listings.

Unit tests build tiny dataset folders and caches in `tmp_path`. Tests marked `data` read the real
corpora (../shared/data or $EMOMUSIC_DATA) and skip with a message when they are absent.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.music.notes import Notes
from emomusic.training import datasets
from emomusic.training.datasets import (
    SOURCES,
    Prepared,
    Record,
    data_root,
    hash_split,
    load_prepared,
    prepare,
    quadrant_from_va,
    records,
    stats,
)
from emomusic.vocab.emotions import QUADRANT_SIGNS, quadrant_of


# ------------------------------------------------------------------ hash_split
def test_hash_split_is_pinned() -> None:
    """md5-based, so these answers are the same on every machine and Python (no PYTHONHASHSEED)."""
    assert hash_split("emopia/abc") == "val"  # md5 bucket 3
    assert hash_split("key54") == "val"  # bucket 3
    assert hash_split("key0") == "train"  # bucket 66
    assert hash_split("asap/Bach/Fugue/bwv_846") == "train"  # bucket 32
    assert hash_split("") == "train"  # bucket 93


def test_hash_split_is_deterministic_and_roughly_val_percent() -> None:
    keys = [f"song/{i}" for i in range(4000)]
    first = [hash_split(k) for k in keys]
    assert first == [hash_split(k) for k in keys]
    frac = first.count("val") / len(keys)
    assert 0.06 < frac < 0.10  # VAL_PERCENT = 8


def test_hash_split_is_monotone_in_val_percent() -> None:
    keys = [f"piece-{i}" for i in range(500)]
    assert all(hash_split(k, 0) == "train" for k in keys)
    assert all(hash_split(k, 100) == "val" for k in keys)
    for k in keys:
        if hash_split(k, 8) == "val":
            assert hash_split(k, 15) == "val"


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize(("v", "a", "q"), [
    (1, 1, "Q1"), (-1, 1, "Q2"), (-1, -1, "Q3"), (1, -1, "Q4"),
    (0, 0, "Q1"), (-0.1, 0, "Q2"), (0, -0.1, "Q4"), (-0.1, -0.1, "Q3"),
])
def test_quadrant_from_va(v, a, q) -> None:
    assert quadrant_from_va(v, a) == q


def test_quadrant_from_va_agrees_with_the_emotion_vocabulary() -> None:
    grid = np.linspace(-1, 1, 21)
    for v in grid:
        for a in grid:
            assert quadrant_from_va(v, a) == quadrant_of(v, a)
    for q, (v, a) in QUADRANT_SIGNS.items():
        assert quadrant_from_va(v, a) == q


# ------------------------------------------------------------------ data_root / records on fake folders
def test_data_root_prefers_the_explicit_path_then_the_environment(tmp_path, monkeypatch) -> None:
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv(datasets.DATA_ENV, str(env))
    assert data_root(tmp_path) == tmp_path
    assert data_root() == env


def test_unknown_dataset_is_invalid_input(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="unknown dataset 'nope'"):
        records(tmp_path, ("nope",))


def _fake_emopia(root: Path) -> None:
    split = root / "emopia" / "EMOPIA_cls_split"
    split.mkdir(parents=True)
    (split / "train.csv").write_text(
        "fname,label\nQ1_ab_cd_0,Q1\nQ3_ab_cd_2,Q3\nQ2__xy_1,Q2\nQ4_solo_0,Q4\n")
    (split / "val.csv").write_text("fname,label\nQ4_other_3,Q4\n")


def test_emopia_groups_clips_by_song_across_quadrants(tmp_path) -> None:
    _fake_emopia(tmp_path)
    recs = {r.id: r for r in records(tmp_path, ("emopia",))}
    assert len(recs) == 5
    # song ids may contain underscores (YouTube ids); only the Qn_ prefix and the clip index go
    assert recs["emopia/Q1_ab_cd_0"].group == recs["emopia/Q3_ab_cd_2"].group == "emopia/ab_cd"
    assert recs["emopia/Q2__xy_1"].group == "emopia/_xy"
    r = recs["emopia/Q3_ab_cd_2"]
    assert (r.quadrant, r.valence, r.arousal, r.genre, r.split) == ("Q3", -1.0, -1.0, "pop", "train")
    assert recs["emopia/Q4_other_3"].split == "val"
    assert r.path.endswith("emopia/EMOPIA_1.0/midis/Q3_ab_cd_2.mid")


def test_vgmidi_labels_and_piece_split(tmp_path) -> None:
    base = tmp_path / "vgmidi"
    base.mkdir()
    (base / "vgmidi_labelled.csv").write_text(
        "id,series,console,game,piece,midi,valence,arousal\n"
        "1,S,N64,Game A,Theme,labelled/phrases/a_0.mid,1,-1\n"
        "2,S,N64,Game A,Theme,labelled/phrases/a_1.mid,-1,1\n"
        "3,S,N64,Game B,Boss,labelled/phrases/b_0.mid,-1,-1\n")
    recs = records(tmp_path, ("vgmidi",))
    assert [r.quadrant for r in recs] == ["Q4", "Q2", "Q3"]
    assert recs[0].group == recs[1].group == "vgmidi/gameatheme"  # one spelling across VGMIDI listings
    assert recs[0].split == recs[1].split == hash_split("vgmidi/Game A/Theme", 15)
    assert all(r.genre == "game" for r in recs)


# ------------------------------------------------------------------ Prepared
def _rec(i: int, dataset: str, split: str, quadrant: str | None = None) -> Record:
    return Record(f"{dataset}/{i}", dataset, f"/x/{i}.mid", "pop", split, f"{dataset}/g{i}", quadrant)


@pytest.fixture
def tiny_prepared() -> Prepared:
    recs = [_rec(0, "a", "train", "Q1"), _rec(1, "a", "val", "Q2"), _rec(2, "b", "train"),
            _rec(3, "b", "val", "Q4")]
    pieces = [np.arange(3), np.arange(10, 15), np.arange(20, 21), np.arange(30, 34)]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    attrs = np.arange(8, dtype=np.float32).reshape(4, 2)
    return Prepared(recs, np.concatenate(pieces).astype(np.uint16), offsets, attrs)


def test_prepared_piece(tiny_prepared: Prepared) -> None:
    np.testing.assert_array_equal(tiny_prepared.piece(1), [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(tiny_prepared.piece(2), [20])


def test_prepared_mask(tiny_prepared: Prepared) -> None:
    p = tiny_prepared
    np.testing.assert_array_equal(p.mask(dataset="a"), [True, True, False, False])
    np.testing.assert_array_equal(p.mask(split="val", dataset="b"), [False, False, False, True])
    np.testing.assert_array_equal(p.mask(quadrant=("Q1", "Q4")), [True, False, False, True])
    np.testing.assert_array_equal(p.mask(quadrant=None), [False, False, True, False])
    np.testing.assert_array_equal(p.mask(), [True] * 4)


def test_prepared_select(tiny_prepared: Prepared) -> None:
    sub = tiny_prepared.select(tiny_prepared.mask(split="val"))
    assert [r.id for r in sub.records] == ["a/1", "b/3"]
    np.testing.assert_array_equal(sub.offsets, [0, 5, 9])
    np.testing.assert_array_equal(sub.piece(0), [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(sub.piece(1), [30, 31, 32, 33])
    np.testing.assert_array_equal(sub.attributes, [[2, 3], [6, 7]])
    assert sub.tokens.dtype == np.uint16


def test_prepared_select_nothing(tiny_prepared: Prepared) -> None:
    sub = tiny_prepared.select(np.zeros(4, dtype=bool))
    assert sub.records == [] and len(sub.tokens) == 0
    np.testing.assert_array_equal(sub.offsets, [0])
    assert sub.attributes.shape == (0, 2)


def _write_cache(path: Path, recs: list[Record], pieces: list[np.ndarray], attrs: np.ndarray) -> None:
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    np.savez(path, tokens=np.concatenate(pieces).astype(np.uint16), offsets=offsets, attributes=attrs,
             records=np.array(json.dumps([asdict(r) for r in recs])))


def test_load_prepared_concatenates_caches(tmp_path) -> None:
    _write_cache(tmp_path / "emopia.npz", [_rec(0, "emopia", "train", "Q1"), _rec(1, "emopia", "val", "Q2")],
                 [np.arange(4), np.arange(10, 12)], np.zeros((2, 3), np.float32))
    _write_cache(tmp_path / "asap.npz", [_rec(0, "asap", "train"), _rec(1, "asap", "val")],
                 [np.arange(50, 53), np.arange(60, 65)], np.ones((2, 3), np.float32))
    p = load_prepared(("emopia", "asap"), cache=tmp_path)
    assert [r.id for r in p.records] == ["emopia/0", "emopia/1", "asap/0", "asap/1"]
    np.testing.assert_array_equal(p.offsets, [0, 4, 6, 9, 14])
    np.testing.assert_array_equal(p.piece(1), [10, 11])
    np.testing.assert_array_equal(p.piece(2), [50, 51, 52])
    np.testing.assert_array_equal(p.piece(3), [60, 61, 62, 63, 64])
    assert p.attributes.shape == (4, 3)
    assert p.records[1] == _rec(1, "emopia", "val", "Q2")


def test_load_prepared_missing_cache_says_what_to_run(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="emomusic data prepare"):
        load_prepared(("emopia",), cache=tmp_path)


def test_prepare_encodes_good_files_and_skips_bad_ones(tmp_path) -> None:
    from emomusic.export.midi import export_midi
    from emomusic.music.tokenizer import MusicTokenizer

    folder = tmp_path / "data" / "nottingham" / "MIDI"
    folder.mkdir(parents=True)
    tunes = []
    for i in range(3):
        notes = Notes.from_arrays(np.arange(12) + 60 + i, np.arange(12) * 0.5, np.full(12, 0.5), np.full(12, 63))
        export_midi(notes, folder / f"tune{i}.mid", key=(0, "major"))
        tunes.append(notes)
    (folder / "broken.mid").write_bytes(b"MThd not really")
    cache = tmp_path / "cache"
    assert prepare(tmp_path / "data", ("nottingham",), workers=1, out=cache) == {"nottingham": 3}
    # a second call finds the cache and does not encode again
    assert prepare(tmp_path / "data", ("nottingham",), workers=1, out=cache) == {"nottingham": 3}
    p = load_prepared(("nottingham",), cache=cache)
    assert [r.id for r in p.records] == ["nottingham/tune0", "nottingham/tune1", "nottingham/tune2"]
    assert p.attributes.shape[0] == 3 and np.isfinite(p.attributes).all()
    tk = MusicTokenizer()
    for i, notes in enumerate(tunes):
        back = tk.decode(p.piece(i).astype(np.int64))
        np.testing.assert_array_equal(back.pitch, notes.pitch)
        np.testing.assert_allclose(back.start, notes.start)


# ------------------------------------------------------------------ real data
def _no_group_in_both_splits(recs: list[Record]) -> None:
    assert {r.split for r in recs} <= {"train", "val"}
    train = {r.group for r in recs if r.split == "train"}
    val = {r.group for r in recs if r.split == "val"}
    assert train and val
    assert not train & val, f"groups in both splits: {sorted(train & val)[:5]}"
    assert len({r.id for r in recs}) == len(recs)


@pytest.mark.data
def test_emopia_records(data_root_or_skip) -> None:
    recs = records(data_root_or_skip, ("emopia",))
    assert len(recs) == 965
    _no_group_in_both_splits(recs)
    assert Counter(r.split for r in recs) == {"train": 767, "val": 198}
    for r in recs:
        assert r.quadrant in ("Q1", "Q2", "Q3", "Q4") and r.genre == "pop"
        assert (r.valence, r.arousal) == QUADRANT_SIGNS[r.quadrant]
        assert r.id.split("/")[1].startswith(r.quadrant + "_")
    assert all(Path(r.path).is_file() for r in recs)


@pytest.mark.data
@pytest.mark.parametrize("name", ["asap", "vgmidi", "vgmidi_v1", "vgmidi_unl", "pop909", "nottingham"])
def test_no_song_in_both_splits(data_root_or_skip, name) -> None:
    recs = records(data_root_or_skip, (name,))
    assert recs
    _no_group_in_both_splits(recs)
    assert all(r.dataset == name for r in recs)


@pytest.mark.data
def test_vgmidi_quadrants_match_valence_arousal(data_root_or_skip) -> None:
    recs = records(data_root_or_skip, ("vgmidi",))
    for r in recs:
        assert r.valence in (-1.0, 1.0) and r.arousal in (-1.0, 1.0)
        assert r.quadrant == quadrant_from_va(r.valence, r.arousal)


@pytest.mark.data
def test_asap_performances_of_one_piece_share_a_split(data_root_or_skip) -> None:
    recs = records(data_root_or_skip, ("asap",))
    by_folder: dict[str, set[str]] = {}
    for r in recs:
        by_folder.setdefault(str(Path(r.path).parent), set()).add(r.split)
    assert all(len(s) == 1 for s in by_folder.values())
    assert len(by_folder) < len(recs)  # several performances per piece, so grouping matters


@pytest.mark.data
def test_vgmidi_unlabelled_excludes_the_test_folder(data_root_or_skip) -> None:
    root = data_root_or_skip
    recs = records(root, ("vgmidi_unl",))
    unl = root / "vgmidi" / "v1_commit_ad9c3e94" / "unlabelled"
    assert len(recs) == len(list((unl / "train").glob("*.mid")))
    assert not any("/unlabelled/test/" in Path(r.path).as_posix() for r in recs)
    assert all(r.quadrant is None and r.valence is None for r in recs)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@pytest.mark.data
def test_a_vgmidi_piece_is_in_one_split_across_listings(data_root_or_skip) -> None:
    root = data_root_or_skip
    split: dict[str, set[str]] = {}
    for r in records(root, ("vgmidi",)):
        split.setdefault(_norm(r.group.split("/", 1)[1]), set()).add(r.split)
    for r in records(root, ("vgmidi_v1",)):
        split.setdefault(_norm(Path(r.path).stem.rsplit("_", 1)[0]), set()).add(r.split)
    for r in records(root, ("vgmidi_unl",)):
        split.setdefault(_norm(Path(r.path).stem), set()).add(r.split)
    both = sorted(k for k, s in split.items() if len(s) > 1)
    assert not both, f"{len(both)} pieces in both splits, e.g. {both[:3]}"


@pytest.mark.data
def test_stats_counts(data_root_or_skip) -> None:
    rows = stats(data_root_or_skip)
    assert {r["dataset"] for r in rows} == set(SOURCES)
    ok = [r for r in rows if "error" not in r]
    for r in ok:
        assert r["split"] in ("train", "val")
        assert 0 < r["groups"] <= r["pieces"]
        assert sum(r["labels"].values()) == r["pieces"]
    emopia_rows = {r["split"]: r for r in ok if r["dataset"] == "emopia"}
    assert emopia_rows["train"]["pieces"] + emopia_rows["val"]["pieces"] == 965
    assert set(emopia_rows["train"]["labels"]) == {"Q1", "Q2", "Q3", "Q4"}
    for r in rows:
        if "error" in r:
            assert "\n" not in r["error"]
