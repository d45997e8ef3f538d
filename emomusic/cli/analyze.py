"""`emomusic analyze`: recognise the emotion of MIDI or audio files (quadrant, valence/arousal, why).

A bad file gets its one error line and the others go on; the exit code is 2 when any file failed.
Audio needs the [audio] extra (soundfile): without it the command ends with the one-line install hint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emomusic.cli._common import EXIT_USAGE, add_checkpoints, add_json, check_new_file, command, error
from emomusic.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    an = command(sub, "analyze", "recognise the emotion of MIDI or audio files")
    an.add_argument("files", nargs="+", help="MIDI (.mid) or audio (.wav .flac .mp3 .ogg .m4a) files")
    add_json(an, "one result per file")
    an.add_argument("--plot", help="also draw the files on the valence/arousal plane into this .png")
    add_checkpoints(an)
    an.add_argument("--mert", help="local MERT model folder for audio files (never downloaded; default: "
                    "the recognizer's own audio features only)")
    an.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    an.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Analyse every file; a bad file gets an error line on stderr and exit 2 at the end."""
    from emomusic.recognition.api import EmotionRecognizer

    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        check_new_file(plot, args.force)
        if plot.suffix.lower() != ".png":
            raise InvalidInputError(f"{plot}: --plot writes a PNG image; give a path ending in .png")
    results, failed = [], 0
    for path, res in EmotionRecognizer(args.checkpoints, mert=args.mert).iter_recognize(args.files):
        if isinstance(res, Exception):
            failed += 1
            error(str(res).splitlines()[0] if str(res) else str(path))
            continue
        results.append(res)
        if args.json:
            print(json.dumps(res.to_dict()), flush=True)
        else:
            probs = " ".join(f"{q} {p:.2f}" for q, p in res.probabilities.items())
            print(f"{res.file}: {res.quadrant} ({probs}); valence {res.valence:+.2f}, arousal {res.arousal:+.2f}; "
                  f"{', '.join(res.explanation)}", flush=True)
    if plot and results:
        _plot_va(results, plot, args.force)
    return EXIT_USAGE if failed else 0


def _plot_va(results: list, path: Path, force: bool) -> None:
    """Files as points on the valence/arousal plane (matplotlib imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emomusic.io import atomic_write

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    for text, x, y in (("Q1 happy", 0.55, 0.92), ("Q2 tense", -0.95, 0.92), ("Q3 sad", -0.95, -0.95),
                       ("Q4 calm", 0.6, -0.95)):
        ax.text(x, y, text, color="grey")
    for r in results:
        ax.scatter(r.valence, r.arousal, s=25)
        ax.annotate(Path(r.file).stem[:24], (r.valence, r.arousal), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="valence", ylabel="arousal",
           title="emomusic analyze")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), force)
    plt.close(fig)
