"""The music21 package's bundled corpus as MIDI: collection → genre, converted once and cached.

music21 parses kern, ABC and MusicXML slowly (seconds per piece), so `convert_corpus` writes each
piece (and each tune of an ABC tune book) to a MIDI file under a cache folder and keeps an index;
a second run only converts what is missing. Licences: music21's corpus is BSD/LGPL and public domain
scores (see music21's documentation of its corpus).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
from pathlib import Path

from tqdm import tqdm

# Collection (first folder under music21/corpus) → genre from provenance (docs/DESIGN.md, "Data contracts").
COLLECTION_GENRE = {
    "bach": "classical", "beethoven": "classical", "haydn": "classical", "mozart": "classical",
    "chopin": "classical", "handel": "classical", "cpebach": "classical", "corelli": "classical",
    "schubert": "classical", "schumann_robert": "classical", "schumann_clara": "classical",
    "weber": "classical", "verdi": "classical", "beach": "classical", "joplin": "classical",
    "essenFolksong": "folk", "ryansMammoth": "folk", "oneills1850": "folk", "airdsAirs": "folk",
    "miscFolk": "folk",
    "palestrina": "early", "josquin": "early", "trecento": "early", "monteverdi": "early",
    "ciconia": "early", "luca": "early", "lusitano": "early",
}
SUFFIXES = {".mxl", ".xml", ".musicxml", ".krn", ".abc"}
# music21 parses slowly (about a tune a second: docs/BENCHMARKS.md); these caps bound a full
# conversion's time while keeping every collection (tunes per ABC book; every k-th file of big folders).
MAX_TUNES_PER_BOOK = 20
EVERY_KTH_FILE = {"ryansMammoth": 4, "palestrina": 8, "beethoven": 3, "mozart": 8, "haydn": 4}


def corpus_paths() -> list[tuple[str, Path]]:
    """(collection, path) of every corpus file we use, in a stable order."""
    from music21 import corpus

    out = []
    seen: dict[str, int] = {}
    for p in sorted(corpus.getCorePaths(), key=str):
        p = Path(p)
        if p.suffix not in SUFFIXES or "/corpus/" not in str(p):
            continue
        collection = str(p).split("/corpus/", 1)[1].split("/", 1)[0]
        if collection not in COLLECTION_GENRE:
            continue
        seen[collection] = seen.get(collection, 0) + 1
        if (seen[collection] - 1) % EVERY_KTH_FILE.get(collection, 1) == 0:
            out.append((collection, p))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def _convert_one(args: tuple[str, str, str]) -> list[dict]:
    """Parse one corpus file and write each of its scores as MIDI; never raises."""
    collection, path, out_dir = args
    import warnings

    from music21 import converter, stream

    warnings.filterwarnings("ignore")
    rel = path.split("/corpus/", 1)[1]
    records = []
    base = _safe(rel.rsplit(".", 1)[0])
    done = sorted(Path(out_dir).glob(f"{base}.mid")) or sorted(Path(out_dir).glob(f"{base}__[0-9][0-9][0-9].mid"))
    if done:  # converted by an earlier, interrupted run: no need to parse again
        return [{"path": str(d), "collection": collection, "genre": COLLECTION_GENRE[collection],
                 "source": rel, "piece": d.stem} for d in done]
    try:
        parsed = converter.parse(path)
    except Exception:
        return records
    scores = list(parsed.scores)[:MAX_TUNES_PER_BOOK] if isinstance(parsed, stream.Opus) else [parsed]
    for i, sc in enumerate(scores):
        name = base + (f"__{i:03d}" if len(scores) > 1 else "")
        dest = Path(out_dir) / f"{name}.mid"
        try:
            if not dest.exists():
                sc.write("midi", fp=str(dest))
        except Exception:
            continue
        records.append({"path": str(dest), "collection": collection, "genre": COLLECTION_GENRE[collection],
                        "source": rel, "piece": name})
    return records


def convert_corpus(out_dir: str | os.PathLike, workers: int = 1, limit: int | None = None) -> list[dict]:
    """Convert the corpus to MIDI under `out_dir` (cached) and return the index records.

    Args:
        out_dir: where the MIDI files and index go.
        workers: conversion processes.
        limit: convert at most this many files (tests).

    Returns:
        One index record per written MIDI file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / "index.json"
    if index_path.exists():
        return json.loads(index_path.read_text())
    jobs = [(c, str(p), str(out_dir)) for c, p in corpus_paths()][:limit]
    records: list[dict] = []
    if workers <= 1:  # in-process: nothing to lose if a worker pipe breaks
        for job in tqdm(jobs, desc="music21 corpus"):
            records.extend(_convert_one(job))
    else:
        with mp.get_context("spawn").Pool(workers, maxtasksperchild=50) as pool:
            for recs in tqdm(pool.imap(_convert_one, jobs, chunksize=4), total=len(jobs), desc="music21 corpus"):
                records.extend(recs)
    index_path.write_text(json.dumps(records, indent=0))
    return records
