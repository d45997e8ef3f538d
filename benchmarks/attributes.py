"""Attribute extraction speed: ours (symusic + numpy) against music21's jSymbolic extractors.

    python benchmarks/attributes.py [--files N] [--data-root DIR] [--music21-files M]

EmoGen conditions on jSymbolic-style features; music21 is the Python implementation of jSymbolic a
user would otherwise reach for. We featurise every training window, so the figure that matters is
files per second on real MIDI. Both sides see the same files in the same fixed order (an EMOPIA,
Nottingham, POP909 mix spread evenly over each collection), and music21 runs the same extractors
that `tests/test_attributes.py` cross-checks our values against (`JSYMBOLIC_FEATURES`), sharing one
`DataInstance` per piece as music21's own batch extractor does. music21 is slow, so `--music21-files`
times it on the first M files only and its rate is computed from those.

Prints per-stage figures, then one JSON line:
{"files": N, "ours_files_per_s": ..., "music21_files_per_s": ..., "ratio": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.errors import InvalidInputError  # noqa: E402
from emomusic.music.attributes import compute_attributes  # noqa: E402
from emomusic.music.midi import load_notes  # noqa: E402

# jSymbolic extractors (music21.features.jSymbolic class names), each the counterpart of one of our
# attributes; tests/test_attributes.py says which and with what tolerance.
JSYMBOLIC_FEATURES: tuple[str, ...] = (
    "RangeFeature",
    "MostCommonPitchFeature",
    "PrimaryRegisterFeature",  # jSymbolic's mean MIDI pitch
    "PitchVarietyFeature",
    "PitchClassVarietyFeature",
    "PitchClassDistributionFeature",
    "InitialTempoFeature",
    "NoteDensityFeature",
    "AverageNoteDurationFeature",
    "VariabilityOfNoteDurationFeature",
    "AverageTimeBetweenAttacksFeature",
    "VariabilityOfTimeBetweenAttacksFeature",
    "DurationFeature",
    "AverageMelodicIntervalFeature",
    "StepwiseMotionFeature",
    "RepeatedNotesFeature",
)
# jSymbolic's QualityFeature only reads key signatures (0 when there is none, as in most MIDI);
# music21's native version of it falls back to key analysis, so it is the one comparable to `mode`.
NATIVE_FEATURES: tuple[str, ...] = ("QualityFeature",)

SOURCES: tuple[tuple[str, str], ...] = (
    ("emopia", "emopia/EMOPIA_1.0/midis/*.mid"),
    ("nottingham", "nottingham/MIDI/*.mid"),
    ("pop909", "POP909/*/*.mid"),
)


def pick_files(root: Path, n: int) -> list[Path]:
    """N files in a fixed order: round-robin over the sources, each sampled evenly by sorted name.

    An even stride (not the first files) so one composer or one EMOPIA quadrant does not dominate;
    sorted names so every run and every machine times the same files.
    """
    pools = [sorted(root.glob(pattern)) for _, pattern in SOURCES]
    pools = [p for p in pools if p]
    if not pools:
        raise InvalidInputError(f"{root}: no EMOPIA, Nottingham or POP909 MIDI files found")
    per = [n // len(pools) + (i < n % len(pools)) for i in range(len(pools))]
    picked = [[pool[j * len(pool) // k] for j in range(k)] for pool, k in zip(pools, per, strict=True)]
    out: list[Path] = []
    for i in range(max(per)):
        out += [p[i] for p in picked if i < len(p)]
    return out


def parse_music21(path: str | Path) -> Any:
    """Parse a MIDI file with music21 and merge tied notes.

    music21 splits every note that crosses a bar line into tied pieces; without `stripTies` each
    piece counts as a note in jSymbolic's pitch and duration statistics.
    """
    from music21 import converter  # heavy import; only the cross-check needs music21

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # music21 warns about odd MIDI timings; not our concern here
        score = converter.parse(str(path), format="midi")
        return score.stripTies()


def extract_music21(score: Any) -> dict[str, list[float]]:
    """Run `JSYMBOLIC_FEATURES` and `NATIVE_FEATURES` on a parsed score; name → feature vector.

    One `DataInstance` for all extractors, so the derived forms (histograms, seconds map) are
    computed once per piece, as music21's `features.extractorsById` batch path does; passing the
    stream to each extractor instead re-derives them every time and is ~10x slower.
    """
    from music21 import features
    from music21.features import jSymbolic, native

    data = features.DataInstance(score)
    out: dict[str, list[float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in JSYMBOLIC_FEATURES:
            out[name] = list(getattr(jSymbolic, name)(data).extract().vector)
        for name in NATIVE_FEATURES:
            out[f"native.{name}"] = list(getattr(native, name)(data).extract().vector)
    return out


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def time_ours(files: list[Path]) -> dict[Path, tuple[float, float]]:
    """Per file: (seconds loading, seconds computing attributes); unreadable files are skipped."""
    out: dict[Path, tuple[float, float]] = {}
    for f in files:
        t0 = time.perf_counter()
        try:
            notes = load_notes(f)
        except InvalidInputError as exc:
            print(f"  skipped (ours): {exc}", file=sys.stderr)
            continue
        t1 = time.perf_counter()
        compute_attributes(notes)
        out[f] = (t1 - t0, time.perf_counter() - t1)
    return out


def time_music21(files: list[Path]) -> tuple[int, float, float]:
    """(files done, seconds parsing, seconds extracting); files music21 cannot read are skipped."""
    parse_s = extract_s = 0.0
    done = 0
    for f in files:
        t0 = time.perf_counter()
        try:
            score = parse_music21(f)
        except Exception as exc:  # music21 raises many exception types for odd MIDI
            print(f"  skipped (music21): {f.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        t1 = time.perf_counter()
        extract_music21(score)
        t2 = time.perf_counter()
        parse_s += t1 - t0
        extract_s += t2 - t1
        done += 1
    return done, parse_s, extract_s


def main(argv: list[str] | None = None) -> int:
    """Time both extractors on the same files and print the figures and the JSON summary line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100, help="real MIDI files to time ours on (default 100)")
    ap.add_argument("--music21-files", type=int, default=None,
                    help="time music21 on the first M of those files only (default: all N)")
    ap.add_argument("--data-root", default=None,
                    help="data folder (default: $EMOMUSIC_DATA or ../shared/data)")
    args = ap.parse_args(argv)
    if args.files < 1:
        ap.error("--files must be at least 1")
    m21_n = args.files if args.music21_files is None else args.music21_files
    if not 1 <= m21_n <= args.files:
        ap.error("--music21-files must be between 1 and --files")

    from emomusic.training.datasets import data_root

    try:
        files = pick_files(data_root(args.data_root), args.files)
    except InvalidInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = {name: sum(1 for f in files if f.match(pattern)) for name, pattern in SOURCES}
    print(f"files: {len(files)} ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
          f"music21 on the first {m21_n}")

    # Warm-up on a file outside the timing: first-call costs (imports, numpy dispatch, music21's
    # module loading) are not per-file costs.
    compute_attributes(load_notes(files[0]))
    extract_music21(parse_music21(files[0]))

    ours = time_ours(files)
    n_ours = len(ours)
    load_s, attr_s = sum(t[0] for t in ours.values()), sum(t[1] for t in ours.values())
    ours_s = load_s + attr_s
    print(f"ours:    {n_ours} files in {ours_s:.2f}s = {_rate(n_ours, ours_s):8.1f} files/s "
          f"(load {_rate(n_ours, load_s):.1f} files/s, attributes {_rate(n_ours, attr_s):.1f} files/s)")

    n_m21, parse_s, extract_s = time_music21(files[:m21_n])
    m21_s = parse_s + extract_s
    n_extractors = len(JSYMBOLIC_FEATURES) + len(NATIVE_FEATURES)
    print(f"music21: {n_m21} files in {m21_s:.2f}s = {_rate(n_m21, m21_s):8.3f} files/s "
          f"(parse+stripTies {_rate(n_m21, parse_s):.3f} files/s, "
          f"{n_extractors} extractors {_rate(n_m21, extract_s):.3f} files/s)")

    ours_rate, m21_rate = _rate(n_ours, ours_s), _rate(n_m21, m21_s)
    ratio = ours_rate / m21_rate if m21_rate > 0 else float("inf")
    # The same ratio on exactly the files music21 ran on (the subset's mix of long POP909 songs and
    # short clips can differ from the whole set's).
    subset = [sum(ours[f]) for f in files[:m21_n] if f in ours]
    same = _rate(len(subset), sum(subset)) / m21_rate if m21_rate > 0 else float("inf")
    print(f"ratio:   ours is {ratio:.0f}x faster per file ({same:.0f}x on the {m21_n} files music21 ran on)")
    print(json.dumps({
        "files": n_ours,
        "ours_files_per_s": round(ours_rate, 2),
        "music21_files_per_s": round(m21_rate, 4),
        "ratio": round(ratio, 1),
        "music21_files": n_m21,
        "ratio_same_files": round(same, 1),
        "ours_load_files_per_s": round(_rate(n_ours, load_s), 2),
        "ours_attributes_files_per_s": round(_rate(n_ours, attr_s), 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
