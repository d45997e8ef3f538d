"""Which key estimate names a real opening's key signature: the written key's estimator against the others.

    python benchmarks/key_signature.py [--bars 16] [--data-root DIR]

Ground truth: POP909's annotated key at the start of each song (`key_audio.txt`) and the first key
signature of each ASAP score (`midi_score.mid`). Each estimator sees the first `--bars` bars and names a
key; it is right when that key's signature (sharps/flats) is the true one, so relative major and minor
count as the same answer, as they do on a stave. Estimators:
  signature_key    Temperley-Kostka-Payne profiles on note counts (what exported files declare);
  estimate_key     Krumhansl-Schmuckler on durations (the attributes' key; exported files declared it
                   before 2026-12-05);
  aarden_essen     Aarden-Essen profiles on durations (the musicality benchmark's independent judge).
Also, for the musicality benchmark's `key_signature_right`: how often the true signature serves a reader
as well as the judge's (no more accidentals in the notes), and how often a wrong one does (one step round
the circle of fifths either way).
TKP on counts was chosen among 5 music21 profile sets x 4 weightings and 2 ensembles on POP909 (so
POP909's figure is a tuning figure); ASAP's scores were not looked at before and are the check.

Last line: JSON {dataset: {estimator: share right}, "pieces": {dataset: n}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from emomusic.evaluation.musicality import fifths, judged_signature, signature_right  # noqa: E402
from emomusic.music.attributes import estimate_key, signature_key  # noqa: E402
from emomusic.music.midi import load_notes  # noqa: E402
from emomusic.vocab.constants import PITCH_NAMES  # noqa: E402

ESTIMATORS = {
    "signature_key": lambda n: fifths(*signature_key(n)),
    "estimate_key": lambda n: fifths(*estimate_key(n)),
    "aarden_essen": judged_signature,
}
_SPELLINGS = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}  # to PITCH_NAMES' spelling


def _pop909(root: Path) -> list[tuple[Path, int]]:
    """(MIDI file, true signature) of every POP909 song with a key annotation."""
    out = []
    for key_file in sorted(root.glob("POP909/*/key_audio.txt")):
        fields = key_file.read_text().split()
        if len(fields) < 3:
            continue
        tonic, mode = fields[2].split(":")
        pc = PITCH_NAMES.index(_SPELLINGS.get(tonic, tonic))
        out.append((key_file.parent / f"{key_file.parent.name}.mid", fifths(pc, "major" if mode.startswith("maj")
                                                                              else "minor")))
    return out


def _asap(root: Path) -> list[tuple[Path, int]]:
    """(score MIDI, signature of its first key signature) of every ASAP score that writes one."""
    import symusic

    out = []
    for f in sorted(root.glob("asap/**/midi_score.mid")):
        keys = symusic.Score(str(f)).key_signatures
        if len(keys):
            out.append((f, int(keys[0].key)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=16, help="bars of each opening the estimators see")
    ap.add_argument("--data-root", help="datasets folder (default: $EMOMUSIC_DATA or ../shared/data)")
    args = ap.parse_args(argv)
    from emomusic.settings import data_root

    root = Path(data_root(args.data_root))
    t0 = time.perf_counter()
    result: dict = {"pieces": {}}
    for name, pairs in (("pop909", _pop909(root)), ("asap_scores", _asap(root))):
        right = {e: [] for e in ESTIMATORS}
        reader: dict[str, list[bool]] = {"true_signature_serves": [], "one_step_off_serves": []}
        for path, truth in pairs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                notes = load_notes(str(path)).truncate(args.bars)
            if len(notes) < 8:
                continue
            for e, f in ESTIMATORS.items():
                right[e].append(f(notes) == truth)
            judged = judged_signature(notes)
            reader["true_signature_serves"].append(signature_right(notes.pitch, truth, judged))
            reader["one_step_off_serves"] += [signature_right(notes.pitch, truth + d, judged) for d in (-1, 1)]
        result[name] = {e: float(np.mean(v)) if v else None for e, v in (right | reader).items()}
        result["pieces"][name] = len(right["signature_key"])
        print(f"{name}: {result['pieces'][name]} openings of {args.bars} bars; signature right: "
              + ", ".join(f"{e} {v:.3f}" for e, v in result[name].items() if v is not None))
    print(f"{time.perf_counter() - t0:.0f} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
