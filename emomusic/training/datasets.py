"""Datasets: where each corpus lives, its labels, genre and song-level split; token/attribute cache.

One function per source returns `Record`s (muspy-style: one place per dataset, with its licence).
Splits are by song or piece (never by clip or performance), so no song is in two splits:
EMOPIA uses its official song-level train/val lists (its test clips are left out entirely);
everything else is split by a stable hash of the song/piece key.

`prepare` encodes every record once (tokens + whole-piece attributes) into `data/cache/prepared`
with a progress bar; training and the clusterer read that cache.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emomusic.errors import InvalidInputError
from emomusic.io import atomic_write
from emomusic.settings import CACHE_ENV, DATA_ENV, cache_root, data_root  # noqa: F401 (re-exported)
from emomusic.vocab.emotions import QUADRANT_SIGNS

log = logging.getLogger(__name__)

VAL_PERCENT = 8
# The prepared caches' folder under the cache root. Its name changes when what a cache holds changes, so
# an old cache is prepared again rather than read (v2: nominal-tempo performances on their tracked beats).
PREPARED_DIR = "prepared-v2"

LICENCES = {
    "emopia": "CC BY-NC-SA 4.0 (Hung et al., ISMIR 2021)",
    "vgmidi": "no licence stated; research use with citation (Ferreira & Whitehead, ISMIR 2019)",
    "pop909": "MIT; songs under third-party copyright (Wang et al., ISMIR 2020)",
    "asap": "CC BY-NC-SA 4.0 (Foscarin et al., ISMIR 2020)",
    "nottingham": "GPLv3 (Jukedeck cleaned Nottingham Music Database)",
    "music21": "music21 corpus: public-domain scores, BSD/LGPL-licensed package",
}


@dataclass(frozen=True)
class Record:
    """One piece (or clip/phrase) of one dataset, with whatever labels that dataset has."""

    id: str
    dataset: str
    path: str
    genre: str
    split: str  # "train" | "val"
    group: str  # song / piece key the split is made on
    quadrant: str | None = None
    valence: float | None = None
    arousal: float | None = None


def hash_split(key: str, val_percent: int = VAL_PERCENT) -> str:
    """Stable song-level split from a key (md5, so it is the same on every machine).

    Args:
        key: the song or piece key.
        val_percent: percentage of keys that go to "val".

    Returns:
        "train" or "val".
    """
    return "val" if split_hash(key) % 100 < val_percent else "train"


def split_hash(key: str) -> int:
    """The stable hash every split is drawn from (md5, so it is the same on every machine).

    Args:
        key: the song, piece or file key.

    Returns:
        A non-negative int (its value mod 100 is the key's percentile).
    """
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16)


def vgmidi_group(game: str, piece: str = "") -> str:
    """One piece key across VGMIDI's listings (v2 CSV, v1 phrases, v1 unlabelled file names).

    Their spellings differ ("Banjo-Kazooie" + "Boggys Igloo Happy" vs "BanjoKazooie_BoggysIglooHappy"),
    so the key keeps lower-case letters and digits only; every VGMIDI listing is split on it, so no
    piece is in train in one listing and in val in another.

    Args:
        game: the game's name.
        piece: the piece's name within the game.

    Returns:
        The normalised key.
    """
    return "vgmidi/" + re.sub(r"[^a-z0-9]", "", f"{game}{piece}".lower())


def quadrant_from_va(valence: float, arousal: float) -> str:
    """Russell quadrant of a valence/arousal point (ties go to the positive side).

    Args:
        valence: in [-1, 1].
        arousal: in [-1, 1].

    Returns:
        "Q1".."Q4".
    """
    if arousal >= 0:
        return "Q1" if valence >= 0 else "Q2"
    return "Q4" if valence >= 0 else "Q3"


# ------------------------------------------------------------------------------------ sources
def emopia(root: Path) -> list[Record]:
    """EMOPIA 1.0 clips with official song-level train/val splits (test split held back).

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "emopia"
    out = []
    for split in ("train", "val"):
        with open(base / "EMOPIA_cls_split" / f"{split}.csv") as fh:
            for row in csv.DictReader(fh):
                name = row["fname"]
                q = row["label"]
                song = re.sub(r"^Q\d_", "", name).rsplit("_", 1)[0]
                v, a = map(float, QUADRANT_SIGNS[q])  # a quadrant label is the corner of the V/A square
                out.append(Record(f"emopia/{name}", "emopia", str(base / "EMOPIA_1.0" / "midis" / f"{name}.mid"),
                                  "pop", split, f"emopia/{song}", q, v, a))
    return out


def vgmidi(root: Path) -> list[Record]:
    """VGMIDI v2 labelled phrases (valence/arousal ±1), split by piece.

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "vgmidi"
    out = []
    with open(base / "vgmidi_labelled.csv") as fh:
        for row in csv.DictReader(fh):
            v, a = float(row["valence"]), float(row["arousal"])
            group = vgmidi_group(row["game"], row["piece"])
            out.append(Record(f"vgmidi/{Path(row['midi']).stem}", "vgmidi", str(base / row["midi"]), "game",
                              hash_split(group, 15), group, quadrant_from_va(v, a), v, a))
    return out


def vgmidi_v1(root: Path) -> list[Record]:
    """VGMIDI v1 sentiment phrases (valence ±1 only), split by piece like every VGMIDI listing.

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "vgmidi" / "v1_commit_ad9c3e94" / "labelled"
    out = []
    for name in ("vgmidi_sent_train.csv", "vgmidi_sent_test.csv"):
        with open(base / name) as fh:
            for row in csv.DictReader(fh):
                stem = Path(row["filepath"]).name
                group = vgmidi_group(stem.rsplit("_", 1)[0])
                out.append(Record(f"vgmidi_v1/{stem}", "vgmidi_v1", str(base / f"{row['filepath']}.mid"), "game",
                                  hash_split(group, 15), group, None, float(row["label"]), None))
    return out


def vgmidi_unlabelled(root: Path) -> list[Record]:
    """VGMIDI v1 unlabelled pieces; not its test/ folder, which duplicates the labelled pieces.

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "vgmidi" / "v1_commit_ad9c3e94" / "unlabelled" / "train"
    return [Record(f"vgmidi_unl/{p.stem}", "vgmidi_unl", str(p), "game", hash_split(vgmidi_group(p.stem), 15),
                   vgmidi_group(p.stem)) for p in sorted(base.glob("*.mid"))]


def pop909(root: Path) -> list[Record]:
    """POP909 piano arrangements (three tracks merged into one piano part).

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "POP909"
    return [Record(f"pop909/{d.name}", "pop909", str(d / f"{d.name}.mid"), "pop", hash_split(f"pop909/{d.name}"),
                   f"pop909/{d.name}") for d in sorted(base.iterdir()) if (d / f"{d.name}.mid").is_file()]


def asap(root: Path) -> list[Record]:
    """ASAP performances and scores, split by (composer, title) so no piece straddles splits.

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "asap"
    out = []
    for p in sorted(base.rglob("*.mid")):
        rel = p.relative_to(base)
        group = "asap/" + "/".join(rel.parts[:-1])
        out.append(Record(f"asap/{rel.with_suffix('')}", "asap", str(p), "classical", hash_split(group), group))
    return out


def nottingham(root: Path) -> list[Record]:
    """Nottingham folk tunes (melody + chords merged).

    Args:
        root: the datasets folder.

    Returns:
        One Record per clip/piece.
    """
    base = root / "nottingham" / "MIDI"
    return [Record(f"nottingham/{p.stem}", "nottingham", str(p), "folk", hash_split(p.stem), f"nott/{p.stem}")
            for p in sorted(base.glob("*.mid"))]


def music21_corpus(_root: Path, convert: bool = True) -> list[Record]:
    """music21's bundled corpus, converted to MIDI once (see `music21_corpus.convert_corpus`).

    With convert=False (listings, stats) an unconverted corpus is reported as missing instead
    of starting a long conversion.

    Args:
        _root: unused (the corpus ships with music21).
        convert: convert the corpus if it has not been.

    Returns:
        One Record per converted score.
    """
    from emomusic.training.music21_corpus import convert_corpus

    folder = cache_root() / "music21_midi"
    if not convert and not (folder / "index.json").exists():
        raise InvalidInputError(f"{folder}: music21 corpus not converted yet; run `emomusic data prepare`")
    recs = convert_corpus(folder)
    return [Record(f"music21/{r['piece']}", "music21", r["path"], r["genre"], hash_split(r["source"]),
                   f"m21/{r['source']}") for r in recs]


SOURCES = {
    "emopia": emopia, "vgmidi": vgmidi, "vgmidi_v1": vgmidi_v1, "vgmidi_unl": vgmidi_unlabelled,
    "pop909": pop909, "asap": asap, "nottingham": nottingham, "music21": music21_corpus,
}
LABELLED = ("emopia", "vgmidi", "vgmidi_v1")


def records(root: str | os.PathLike | None = None, datasets: tuple[str, ...] | None = None) -> list[Record]:
    """All records of the chosen datasets (default: all).

    Args:
        root: the datasets folder (default: the settings resolver's).
        datasets: dataset names (default: all).

    Returns:
        The records, dataset by dataset.
    """
    r = data_root(root)
    out: list[Record] = []
    for name in datasets or tuple(SOURCES):
        if name not in SOURCES:
            raise InvalidInputError(f"unknown dataset {name!r}; choose from {', '.join(SOURCES)}")
        out += SOURCES[name](r)
    return out


# ------------------------------------------------------------------------------------ cache
_WORKER_STATE: dict = {}


def _worker_tokenizer(cls):
    """One tokenizer per worker process (building it parses miditok's vocabulary)."""
    if "tokenizer" not in _WORKER_STATE:
        _WORKER_STATE["tokenizer"] = cls()
    return _WORKER_STATE["tokenizer"]


def _encode(rec: Record) -> tuple[Record, np.ndarray | None, np.ndarray | None, str | None]:
    """Tokens and whole-piece attributes of one record; a bad file becomes an error string."""
    from emomusic.music.tokenizer import MusicTokenizer

    tokenizer = _worker_tokenizer(MusicTokenizer)
    try:
        ids, attributes = encode_piece(rec.path, tokenizer)
        return rec, ids, attributes, None
    except Exception as exc:  # one bad file must not stop a 7,000-file job
        return rec, None, None, f"{rec.path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def encode_piece(path: str | os.PathLike, tokenizer, min_tokens: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Tokens and whole-piece attributes of one MIDI file, read on its tracked beats (transcriptions and
    performances too), as every training corpus is prepared.

    Attributes are those of the quantised piece the models see: generated music is quantised too, so
    the clusterer, the judge and generated pieces share one definition. The tempo is the piece's own,
    not its tempo token's bin: the clusterer writes it into generated files.

    Args:
        path: the MIDI file.
        tokenizer: the `MusicTokenizer` to encode with.
        min_tokens: at most this many tokens is too short to keep: no attributes are computed.

    Returns:
        (uint16 token ids, float attributes in `ATTRIBUTE_NAMES` order, or None when too short).

    Raises:
        Exception: whatever reading the file raises (callers count or report it).
    """
    from emomusic.music.attributes import ATTRIBUTE_NAMES, compute_attributes
    from emomusic.music.beats import real_grid_notes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = real_grid_notes(path)
        ids = tokenizer.encode(notes)
        if len(ids) <= min_tokens:
            return ids.astype(np.uint16), None
        attributes = compute_attributes(tokenizer.decode(ids))
    attributes[ATTRIBUTE_NAMES.index("tempo")] = notes.tempo
    return ids.astype(np.uint16), attributes


@dataclass
class Prepared:
    """A prepared corpus: token ids of every piece (concatenated), attributes and records."""

    records: list[Record]
    tokens: np.ndarray  # uint16, all pieces back to back
    offsets: np.ndarray  # int64, len(records) + 1
    attributes: np.ndarray  # float32 (n_records, n_attributes)

    def piece(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def select(self, mask: np.ndarray) -> Prepared:
        """A subset (a view of the same token buffer is not needed: copies are small)."""
        idx = np.flatnonzero(mask)
        pieces = [self.piece(i) for i in idx]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
        tokens = np.concatenate(pieces) if pieces else np.zeros(0, np.uint16)
        return Prepared([self.records[i] for i in idx], tokens, offsets, self.attributes[idx])

    def mask(self, **where) -> np.ndarray:
        """Boolean mask of records whose fields equal the given values (tuples mean 'any of')."""
        m = np.ones(len(self.records), dtype=bool)
        for key, val in where.items():
            vals = val if isinstance(val, tuple) else (val,)
            m &= np.array([getattr(r, key) in vals for r in self.records])
        return m


def write_prepared(dest: Path, recs: list[Record], tokens: list[np.ndarray], attributes: list[np.ndarray]) -> Path:
    """Write one dataset's cache (tokens back to back, offsets, attributes, records) atomically.

    Args:
        dest: the .npz to write.
        recs: the dataset's records.
        tokens: each record's token ids.
        attributes: each record's attribute vector.

    Returns:
        ``dest``.
    """
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    atomic_write(dest, lambda tmp: np.savez(tmp, tokens=np.concatenate(tokens).astype(np.uint16), offsets=offsets,
                                            attributes=np.stack(attributes).astype(np.float32),
                                            records=np.array(json.dumps([asdict(r) for r in recs]))), force=True)
    return dest


def prepare(root: str | os.PathLike | None = None, datasets: tuple[str, ...] | None = None,
            workers: int = 2, out: Path | None = None) -> dict[str, int]:
    """Encode every record of each dataset into `<cache>/prepared/<dataset>.npz` (skips done ones).

    Args:
        root: the datasets folder (default: the settings resolver's).
        datasets: dataset names (default: all).
        workers: encoding processes.
        out: the cache folder (default: ``<cache>/<PREPARED_DIR>``).

    Returns:
        dataset → pieces in its cache.
    """
    from emomusic.music.beats import require_librosa

    require_librosa()  # nominal-tempo files are beat-tracked: fail here, not file by file in the workers
    out = out or cache_root() / PREPARED_DIR
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in datasets or tuple(SOURCES):
        dest = out / f"{name}.npz"
        if dest.exists():
            counts[name] = len(json.loads(np.load(dest)["records"].item()))
            continue
        recs = records(root, (name,))
        results = []
        with mp.get_context("fork").Pool(workers) as pool:
            for res in tqdm(pool.imap(_encode, recs, chunksize=8), total=len(recs), desc=f"prepare {name}"):
                results.append(res)
        good = [(r, ids, att) for r, ids, att, err in results if err is None and len(ids) > 8]
        for *_, err in results:
            if err:
                log.warning("skipped %s", err)
        write_prepared(dest, [r for r, _, _ in good], [ids for _, ids, _ in good], [a for *_, a in good])
        counts[name] = len(good)
    return counts


def available_datasets(wanted: tuple[str, ...], cache: Path | None = None) -> tuple[str, ...]:
    """The wanted datasets whose prepared cache exists (warns about the others).

    Args:
        wanted: dataset names.
        cache: the prepared folder (default: ``<cache>/<PREPARED_DIR>``).

    Returns:
        The wanted names that are prepared, in order.
    """
    cache = cache or cache_root() / PREPARED_DIR
    have = tuple(d for d in wanted if (cache / f"{d}.npz").exists())
    missing = [d for d in wanted if d not in have]
    if not have:
        raise InvalidInputError(f"{cache}: no prepared datasets; run `emomusic data prepare` first")
    if missing:
        log.warning("not prepared, training without: %s", ", ".join(missing))
    return have


def load_prepared(datasets: tuple[str, ...] | None = None, cache: Path | None = None) -> Prepared:
    """Concatenate prepared caches; a clear error says to run `emomusic data prepare` first.

    Args:
        datasets: dataset names (default: every prepared one).
        cache: the prepared folder (default: ``<cache>/<PREPARED_DIR>``).

    Returns:
        The concatenated Prepared data.
    """
    cache = cache or cache_root() / PREPARED_DIR
    parts = []
    for name in datasets or tuple(SOURCES):
        path = cache / f"{name}.npz"
        if not path.exists():
            raise InvalidInputError(f"{path}: not prepared; run `emomusic data prepare` first")
        z = np.load(path)
        recs = [Record(**r) for r in json.loads(z["records"].item())]
        parts.append((recs, z["tokens"], z["offsets"], z["attributes"]))
    recs = [r for p in parts for r in p[0]]
    shift = np.cumsum([0] + [len(p[1]) for p in parts[:-1]])
    total = sum(len(p[1]) for p in parts)
    offsets = np.concatenate([p[2][:-1] + s for p, s in zip(parts, shift, strict=True)] + [[total]])
    return Prepared(recs, np.concatenate([p[1] for p in parts]), offsets.astype(np.int64),
                    np.concatenate([p[3] for p in parts]))


def stats(root: str | os.PathLike | None = None) -> list[dict]:
    """Counts per dataset, split and label (from the raw listings; no MIDI parsing).

    Args:
        root: the datasets folder (default: the settings resolver's).

    Returns:
        One row per (dataset, split): pieces, groups and label counts (or the dataset's error).
    """
    data_root(root)  # a missing data folder is one error, not one per dataset
    rows = []
    for name in SOURCES:
        try:
            recs = music21_corpus(data_root(root), convert=False) if name == "music21" else records(root, (name,))
        except (OSError, InvalidInputError) as exc:
            rows.append({"dataset": name, "error": str(exc).splitlines()[0]})
            continue
        for split in ("train", "val"):
            sub = [r for r in recs if r.split == split]
            labels = Counter(r.quadrant or (f"valence{r.valence:+.0f}" if r.valence is not None else "unlabelled")
                             for r in sub)
            rows.append({"dataset": name, "split": split, "pieces": len(sub),
                         "groups": len({r.group for r in sub}), "labels": dict(sorted(labels.items()))})
    return rows
