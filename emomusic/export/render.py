"""Audio previews and piano-roll pictures of a piece.

Audio goes through the FluidSynth command-line synthesiser with a General MIDI soundfont (Debian's
`fluidsynth` + `fluid-soundfont-gm`, or the small soundfont pretty_midi ships). Where no
`fluidsynth` binary exists, pretty_midi's sine synthesis is the fallback, with a warning that says so:
the preview then sounds like a test tone, but it is never silently missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from emomusic import settings
from emomusic.errors import InvalidInputError
from emomusic.io import atomic_write
from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement

__all__ = ["SAMPLE_RATE", "find_soundfont", "piano_roll_png", "render_wav", "synthesize"]

SAMPLE_RATE = 22_050
MAX_RENDER_SECONDS = 600.0
# fluidsynth at gain 0.6 left a 16-bar piano piece near -45 dBFS RMS with peaks near 0.1 (-20 dBFS): a
# preview one had to turn far up. Every render is made 12 dB louder; dense loud pieces that would then
# clip are scaled down to a -1 dBFS peak instead, so dynamics between pieces mostly survive.
PREVIEW_GAIN = 4.0
PEAK_LIMIT = 0.89


def find_soundfont(explicit: str | os.PathLike | None = None) -> Path | None:
    """The soundfont to use: the first that exists of `explicit`, the settings' choice, pretty_midi's own.

    Args:
        explicit: a soundfont file the caller names, or None.

    Returns:
        The file, or None when no General MIDI soundfont is installed.
    """
    for cand in (explicit, *settings.soundfont_candidates()):
        if cand and Path(cand).is_file():
            return Path(cand)
    try:
        import pretty_midi

        bundled = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        return bundled if bundled.is_file() else None
    except ImportError:
        return None


def _midi_source(piece: Notes | Arrangement | str | os.PathLike, tmp: Path) -> Path:
    if isinstance(piece, (Notes, Arrangement)):
        from emomusic.export.midi import export_midi

        return export_midi(piece, tmp / "piece.mid", force=True)
    path = Path(piece)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such MIDI file")
    return path


def _fluidsynth(midi: Path, wav: Path, soundfont: Path, sample_rate: int, gain: float) -> None:
    raw = wav.with_name(f"{wav.stem}-float.wav")
    cmd = ["fluidsynth", "-ni", "-q", "-g", f"{gain:g}", "-r", str(sample_rate), "-O", "float", "-F", str(raw),
           str(soundfont), str(midi)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise InvalidInputError(f"{midi}: rendering took over 5 minutes; render a shorter piece") from None
    if proc.returncode != 0 or not raw.is_file() or raw.stat().st_size <= 44:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidInputError(f"fluidsynth could not render {midi.name}: {msg[-1] if msg else 'no output'}")
    _level(raw, wav)


def _level(raw: Path, wav: Path) -> None:
    """The float render at preview level as 16-bit PCM: `PREVIEW_GAIN` louder for every piece alike (so a
    calm piece stays softer than a tense one), scaled down to `PEAK_LIMIT` only where that would clip.

    Args:
        raw: fluidsynth's float WAV.
        wav: the 16-bit WAV to write.
    """
    import soundfile  # a dependency of librosa, which the package requires

    audio, sr = soundfile.read(str(raw), dtype="float32", always_2d=True)
    audio *= PREVIEW_GAIN
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > PEAK_LIMIT:
        audio *= PEAK_LIMIT / peak
    soundfile.write(str(wav), audio, sr, format="WAV", subtype="PCM_16")


def _sine_fallback(midi: Path, wav: Path, sample_rate: int) -> None:
    import pretty_midi

    try:
        import soundfile
    except ImportError:
        raise InvalidInputError("writing .wav without the fluidsynth program needs the optional package "
                                "'soundfile': pip install 'emomusic[audio]' (or install fluidsynth)") from None
    warnings.warn("fluidsynth or a GM soundfont is missing: the preview uses sine tones "
                  "(install `fluidsynth` and `fluid-soundfont-gm` for piano sound)", stacklevel=3)

    pm = pretty_midi.PrettyMIDI(str(midi))
    if pm.get_end_time() > MAX_RENDER_SECONDS:
        raise InvalidInputError(f"{midi}: longer than {MAX_RENDER_SECONDS:.0f} s; render a shorter piece")
    audio = pm.synthesize(fs=sample_rate)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    soundfile.write(str(wav), (audio / peak * 0.5 if peak > 0 else audio).astype(np.float32), sample_rate,
                    format="WAV", subtype="PCM_16")


def render_wav(piece: Notes | Arrangement | str | os.PathLike, out: str | os.PathLike, *,
               sample_rate: int = SAMPLE_RATE, soundfont: str | os.PathLike | None = None, gain: float = 0.6,
               force: bool = False) -> Path:
    """Render a piece (notes, an arrangement or a MIDI path) to a 16-bit WAV file, atomically.

    Uses fluidsynth with a GM soundfont; falls back to pretty_midi's sine synthesis (with a warning)
    when the `fluidsynth` program or a soundfont is missing.

    Args:
        piece: the notes, an arrangement (each track with its General MIDI sound, drums on channel 10),
            or a MIDI file to render.
        out: the WAV file to create.
        sample_rate: samples per second of the WAV.
        soundfont: a GM soundfont to use instead of `find_soundfont`'s choice.
        gain: fluidsynth's master gain (0.6 leaves headroom for dense chords).
        force: replace an existing file.

    Returns:
        `out` as a Path.

    Raises:
        InvalidInputError: `out` exists (without force), the MIDI file is missing, rendering fails, or the
            fallback needs the [audio] extra that is not installed.
    """
    out = Path(out)
    if out.exists() and not force:
        raise InvalidInputError(f"{out}: already exists; pass --force to overwrite")
    font = find_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="emomusic-render-") as tmpdir:
        tmp = Path(tmpdir)
        midi = _midi_source(piece, tmp)
        rendered = tmp / "render.wav"
        if shutil.which("fluidsynth") and font is not None:
            _fluidsynth(midi, rendered, font, sample_rate, gain)
        else:
            _sine_fallback(midi, rendered, sample_rate)
        return atomic_write(out, lambda dest: shutil.copyfile(rendered, dest), force=True)


def piano_roll_png(notes: Notes | Arrangement, out: str | os.PathLike, *, title: str = "",
                   force: bool = False) -> Path:
    """Draw the notes as a piano roll (time in bars, pitch, velocity as shade) into a PNG file, atomically.

    An arrangement is drawn one colour per pitched track (velocity as the colour's strength, a legend
    naming the tracks) with its drums as ticks along the bottom, so the parts can be told apart.

    Args:
        notes: the piece, one part or an arrangement.
        out: the PNG file to create.
        title: drawn above the roll when given.
        force: replace an existing file.

    Returns:
        `out` as a Path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    out = Path(out)
    if out.exists() and not force:
        raise InvalidInputError(f"{out}: already exists; pass --force to overwrite")
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    if isinstance(notes, Arrangement):
        _draw_tracks(ax, notes)
    elif len(notes):
        bpb = notes.beats_per_bar
        x0, x1 = notes.start / bpb, (notes.start + notes.duration) / bpb
        p = notes.pitch.astype(float)
        shade = plt.cm.viridis(np.clip(notes.velocity / 127.0, 0, 1))
        ax.add_collection(PolyCollection(_boxes(x0, x1, p), facecolors=shade, edgecolors="none"))
        ax.set_xlim(0, max(1.0, float(np.ceil(x1.max()))))
        ax.set_ylim(p.min() - 2, p.max() + 2)
    ax.set_xlabel("bar")
    ax.set_ylabel("MIDI pitch")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()

    def write(dest: Path) -> None:
        fig.savefig(dest, format="png")

    try:
        return atomic_write(out, write, force=True)
    finally:
        plt.close(fig)


def _boxes(x0: np.ndarray, x1: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Note rectangles (n, 4, 2) for a PolyCollection."""
    return np.stack([np.stack([x0, p - 0.4], 1), np.stack([x1, p - 0.4], 1),
                     np.stack([x1, p + 0.4], 1), np.stack([x0, p + 0.4], 1)], 1)


def _draw_tracks(ax, arrangement: Arrangement) -> None:
    """Each pitched track in its own colour (alpha from velocity), drums as ticks below the lowest note."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    bpb = arrangement.tracks[0].notes.beats_per_bar
    pitched = [t for t in arrangement.tracks if not t.drums and len(t.notes)]
    lows = [float(t.notes.pitch.min()) for t in pitched] or [60.0]
    highs = [float(t.notes.pitch.max()) for t in pitched] or [72.0]
    floor = min(lows) - 4
    colours = plt.cm.tab10(np.arange(len(arrangement.tracks)) % 10)
    for i, t in enumerate(arrangement.tracks):
        n = t.notes
        if not len(n):
            continue
        x0, x1 = n.start / bpb, (n.start + n.duration) / bpb
        face = np.tile(colours[i], (len(n), 1))
        face[:, 3] = 0.35 + 0.65 * np.clip(n.velocity / 127.0, 0, 1)
        if t.drums:  # one row per drum sound, under the pitched parts
            rows = np.unique(n.pitch, return_inverse=True)[1].astype(float)
            ax.add_collection(PolyCollection(_boxes(x0, x0 + 0.02, floor - 1.5 - rows * 0.9), facecolors=face,
                                             edgecolors="none"))
            floor -= 2 + rows.max() * 0.9
        else:
            ax.add_collection(PolyCollection(_boxes(x0, x1, n.pitch.astype(float)), facecolors=face,
                                             edgecolors="none"))
        ax.plot([], [], color=colours[i], lw=6, label=t.name)
    ax.set_xlim(0, max(1.0, float(np.ceil(arrangement.end / bpb))))
    ax.set_ylim(floor - 1, max(highs) + 2)
    ax.legend(loc="upper right", fontsize=7, ncol=min(4, len(arrangement.tracks)), framealpha=0.7)


_SYNTHS: dict[tuple[str, int], tuple[object, int]] = {}


def _synth(font: Path, sample_rate: int) -> tuple[object, int]:
    """One in-process FluidSynth per (soundfont, rate): loading a 140 MB soundfont per clip would dominate."""
    key = (str(font), sample_rate)
    if key not in _SYNTHS:
        import fluidsynth

        synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.6)
        _SYNTHS[key] = (synth, synth.sfload(str(font)))
    return _SYNTHS[key]


def synthesize(notes: Notes, *, seconds: float = 30.0, sample_rate: int = SAMPLE_RATE, program: int = 0,
               gain: float = 0.6, soundfont: str | os.PathLike | None = None) -> np.ndarray:
    """Render the first `seconds` of `notes` to a mono float32 array in memory (pyfluidsynth).

    For making many training clips: no subprocess and no file per clip, and the soundfont is loaded
    once per process. Raises InvalidInputError when pyfluidsynth or a GM soundfont is missing.
    """
    font = find_soundfont(soundfont)
    if font is None:
        raise InvalidInputError("no General MIDI soundfont found; install fluid-soundfont-gm or set "
                                f"${settings.SOUNDFONT_ENV}")
    try:
        synth, sfid = _synth(font, sample_rate)
    except (ImportError, OSError) as exc:
        raise InvalidInputError(f"in-process synthesis needs pyfluidsynth and libfluidsynth ({exc})") from None
    synth.setting("synth.gain", float(gain))
    synth.program_select(0, sfid, 0, int(program))
    sec = 60.0 / notes.tempo
    on, off = notes.start * sec, (notes.start + notes.duration) * sec
    keep = on < seconds
    ons = zip(on[keep], notes.pitch[keep], notes.velocity[keep], strict=True)
    offs = zip(off[keep], notes.pitch[keep], strict=True)
    events = sorted([(t, 1, int(p), int(v)) for t, p, v in ons] + [(t, 0, int(p), 0) for t, p in offs])
    total, cur, chunks = int(seconds * sample_rate), 0, []
    for t, is_on, pitch, vel in events:
        frame = min(int(t * sample_rate), total)
        if frame > cur:
            chunks.append(synth.get_samples(frame - cur))
            cur = frame
        if is_on:
            synth.noteon(0, pitch, vel)
        else:
            synth.noteoff(0, pitch)
    if total > cur:
        chunks.append(synth.get_samples(total - cur))
    synth.all_notes_off(0)
    synth.all_sounds_off(0)
    stereo = np.concatenate(chunks).astype(np.float32).reshape(-1, 2) if chunks else np.zeros((0, 2), np.float32)
    return stereo.mean(1) / 32768.0
