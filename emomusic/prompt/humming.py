"""Humming prompts → a melody on the beat grid, with tempo, key and a mood estimate.

The melody opens the generated piece, so the output continues the hummed tune. Steps and why:

1. **Pitch track**: librosa's pYIN (Mauch & Dixon 2014), a probabilistic YIN with HMM smoothing that
   also says which frames are voiced. Range C2–E6 covers low and high voices; a 0.2-semitone state
   grid halves pYIN's states (the default is 0.1) and still resolves semitones.
2. **Tuning**: people hum slightly sharp or flat of A440; a circular mean of the pitch track's
   position between semitones finds the offset, so notes round to the semitone the singer meant.
3. **Notes**: voiced runs split at unvoiced gaps (breaths; gaps under ~30 ms are bridged); inside a run
   a ~200 ms median filter removes vibrato (5–7 Hz, one period per window) while keeping steps; the
   smoothed pitch is rounded with hysteresis (a new note needs a move of 0.75 semitone, so ±50-cent
   vibrato does not split a note); frames gliding faster than 9 semitones/s join the note they lead
   into; runs under 80 ms (passing tones, tracker blips) and scoops under 130 ms a semitone from a
   neighbour merge into it; each note's pitch is the median of its steady frames.
4. **Tempo**: the beat that puts the inter-onset intervals nearest to an eighth-note grid, with a
   log-normal preference around 100 BPM (the geometric middle of 50–200) to settle half/double
   ambiguity (listeners prefer beats near 100–120 BPM, Moelants 2002), refined by a line fit of onset
   times against their grid positions.
5. **Grid**: onsets and note ends in beats on the 1/8-beat grid, preferring eighth-note positions
   when within 1/8 beat (hummed timing wanders; see `_snap`).
6. **Key**: Krumhansl–Schmuckler via :func:`emomusic.music.attributes.estimate_key`.
7. **Mood** (weak cues, explicit emotions win): valence from major vs. minor key fit, arousal from tempo
   and note rate — the two most reliable cues in Gabrielsson & Lindström's (2010) review.

librosa (core) and soundfile (the [audio] extra) are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.music.attributes import estimate_key, key_correlations, pitch_class_histogram
from emomusic.music.audio import load_audio
from emomusic.music.notes import Notes
from emomusic.types import Elements
from emomusic.vocab.constants import PIANO_BOTTOM, PIANO_TOP, key_label
from emomusic.vocab.emotions import emotion_from_va

__all__ = [
    "MAX_HUM_BYTES",
    "MAX_HUM_SECONDS",
    "HummedNote",
    "beat_grid",
    "estimate_tempo",
    "humming_elements",
    "load_hum",
    "notes_from_pitch",
    "pitch_track",
    "quantise",
    "track_notes",
]

MAX_HUM_SECONDS: Final = 60.0
MIN_HUM_SECONDS: Final = 0.3
MAX_HUM_BYTES: Final = 100 * 1024 * 1024
SAMPLE_RATE: Final = 16000
HOP: Final = 256  # 16 ms
FRAME: Final = 1024  # 64 ms: two periods of C2
FMIN, FMAX = 65.41, 1318.5  # C2 to E6: low voices to a soprano high C with vibrato headroom
_SILENCE_PEAK: Final = 1e-3  # -60 dBFS
_GAP_BRIDGE: Final = 2  # frames: unvoiced dropouts this short inside a note are bridged
_MEDIAN: Final = 13  # frames (~208 ms): about one vibrato period
_MIN_NOTE: Final = 5  # frames (80 ms)
_MIN_STABLE: Final = 8  # frames (128 ms): shorter runs a semitone from a neighbour are scoops
_SCOOP: Final = 1.25  # semitones
_GLIDE_SLOPE: Final = 0.15  # semitones per frame (9 per second)
_HYSTERESIS: Final = 0.75  # semitones a pitch must move from the current note to start another
_QUIET: Final = 0.1  # frames below this share of the loud frames' RMS are breaths, not notes
GRID: Final = 8  # steps per beat
VELOCITY: Final = 80
_PREFERRED_BPM, _PREFERENCE_OCTAVES = 100.0, 1.0  # 100 = geometric middle of 50..200


@dataclass(frozen=True)
class HummedNote:
    """One note as sung: MIDI pitch and seconds."""

    pitch: int
    onset: float
    offset: float


def load_hum(path: str | Path) -> np.ndarray:
    """Mono float32 samples at SAMPLE_RATE; refuses unreadable, too long/short, NaN and silent files.

    Args:
        path: the recording (any format the audio loader reads, M4A from phones included).

    Returns:
        The samples, at most MAX_HUM_SECONDS of them.

    Raises:
        InvalidInputError: one line naming the file (a hum over MAX_HUM_SECONDS is refused, not cut).
    """
    return load_audio(path, sample_rate=SAMPLE_RATE, max_seconds=MAX_HUM_SECONDS, max_bytes=MAX_HUM_BYTES,
                      longer="refuse", what="humming audio", min_seconds=MIN_HUM_SECONDS, silence_peak=_SILENCE_PEAK)


def pitch_track(y: np.ndarray) -> np.ndarray:
    """Per-frame MIDI pitch (float; NaN where unvoiced or a breath)."""
    import librosa

    f0, voiced, _ = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=SAMPLE_RATE, frame_length=FRAME, hop_length=HOP,
                                 resolution=0.2)
    rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP)[0][: len(f0)]
    voiced = voiced & np.isfinite(f0)
    if voiced.any():
        voiced &= rms >= _QUIET * np.percentile(rms[voiced], 90)
    return np.where(voiced, librosa.hz_to_midi(np.where(voiced, f0, FMIN)), np.nan)


def _tuning(midi: np.ndarray) -> float:
    """Offset of the voice from the A440 semitone grid, in semitones [-0.5, 0.5).

    A circular mean of the (vibrato-free, median-filtered) frames' positions between semitones: pYIN's
    0.2-semitone states average out, where a histogram mode (librosa's `pitch_tuning`) would lock onto
    one state. On raw frames, a ±50-cent vibrato would flip the circular mean by half a semitone.
    """
    x = midi[np.isfinite(midi)]
    if len(x) < _MIN_NOTE:
        return 0.0
    return float(np.angle(np.exp(2j * np.pi * x).mean()) / (2 * np.pi))


def _voiced_runs(midi: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame ranges of voiced runs, bridging dropouts of up to _GAP_BRIDGE frames."""
    voiced = np.isfinite(midi)
    runs: list[list[int]] = []
    for i in np.flatnonzero(voiced):
        if runs and i - runs[-1][1] <= _GAP_BRIDGE:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a, b) for a, b in runs if b - a >= _MIN_NOTE]


def _fill(x: np.ndarray) -> np.ndarray:
    """Bridged dropouts (NaN) take the previous voiced value so the median filter sees no holes."""
    out = x.copy()
    for i in range(1, len(out)):
        if not np.isfinite(out[i]):
            out[i] = out[i - 1]
    return out


def _hysteresis_round(x: np.ndarray) -> np.ndarray:
    """Round to semitones, but keep the previous semitone until the pitch leaves it by _HYSTERESIS.

    Wide vibrato (±50 cents) and tuning left-overs wobble around a rounding edge; a plain round would
    cut such a note into many; a real step of one semitone still clears the band.
    """
    q = np.empty(len(x), dtype=int)
    cur = int(round(x[0]))
    for i, v in enumerate(x):
        if abs(v - cur) > _HYSTERESIS:
            cur = int(round(v))
        q[i] = cur
    return q


def _smooth(pitch: np.ndarray) -> np.ndarray:
    """Median filter over about one vibrato period: removes vibrato and blips, keeps steps."""
    from scipy.ndimage import median_filter

    return median_filter(pitch, size=min(_MEDIAN, len(pitch) | 1), mode="nearest")


def _steady(smooth: np.ndarray) -> np.ndarray:
    """Frames where the smoothed pitch moves slower than _GLIDE_SLOPE (slope over ±2 frames)."""
    slope = np.zeros(len(smooth))
    slope[2:-2] = np.abs(smooth[4:] - smooth[:-4]) / 4
    return slope <= _GLIDE_SLOPE


def _note_track(smooth: np.ndarray) -> np.ndarray:
    """A semitone per frame: hysteresis-rounded where the pitch is steady; glide frames join the next note.

    Frames moving faster than _GLIDE_SLOPE (a scoop or portamento between notes, far faster than
    vibrato after the median filter) would otherwise form a passing "note" of their own.
    """
    steady = _steady(smooth)
    if not steady.any():
        return np.full(len(smooth), int(round(float(np.median(smooth)))))
    q = np.full(len(smooth), -1)
    q[steady] = _hysteresis_round(smooth[steady])
    idx = np.flatnonzero(steady)
    nxt = np.searchsorted(idx, np.arange(len(q)))  # the next steady frame (or past the end)
    fill = np.where(nxt < len(idx), idx[np.minimum(nxt, len(idx) - 1)], idx[-1])
    return q[fill]


def _segments(pitch: np.ndarray, smooth: np.ndarray) -> list[list[int]]:
    """Runs [start, end) of one semitone in the smoothed pitch (with hysteresis), then cleaned up.

    Runs under 80 ms merge into the neighbour nearest in pitch (passing tones of a glide, tracker
    blips); runs under 130 ms a semitone from a neighbour merge into it (the overshoot or scoop at the
    end of a glide into a note, which vibrato and noise can hold on the wrong semitone for a moment).
    """
    q = _note_track(smooth)
    edges = np.flatnonzero(np.diff(q)) + 1
    segs = [[int(a), int(b)] for a, b in zip(np.r_[0, edges], np.r_[edges, len(q)], strict=True)]
    segs = _merge_short(pitch, segs, _MIN_NOTE, np.inf)
    segs = _merge_short(pitch, _coalesce(pitch, segs), _MIN_STABLE, _SCOOP)
    return _coalesce(pitch, segs)


def _merge_short(pitch: np.ndarray, segs: list[list[int]], min_len: int, max_jump: float) -> list[list[int]]:
    """Merge the shortest run under `min_len` frames into its nearest-pitched neighbour within `max_jump`
    semitones (ties: the following note, as scoops lead into a note), until none is left."""
    while len(segs) > 1:
        med = [float(np.median(pitch[a:b])) for a, b in segs]
        cands = []
        for i, (a, b) in enumerate(segs):
            nbrs = [j for j in (i + 1, i - 1) if 0 <= j < len(segs) and abs(med[j] - med[i]) <= max_jump]
            if b - a < min_len and nbrs:
                cands.append((b - a, i, min(nbrs, key=lambda j: abs(med[j] - med[i]))))
        if not cands:
            break
        _, i, j = min(cands)
        lo, hi = min(i, j), max(i, j)
        segs[lo:hi + 1] = [[segs[lo][0], segs[hi][1]]]
    return segs


def _coalesce(pitch: np.ndarray, segs: list[list[int]]) -> list[list[int]]:
    """Join neighbouring segments whose median pitches round to the same note (left by merging)."""
    out: list[list[int]] = []
    for a, b in segs:
        if out and round(np.median(pitch[out[-1][0]:out[-1][1]])) == round(np.median(pitch[a:b])):
            out[-1][1] = b
        else:
            out.append([a, b])
    return out


def track_notes(y: np.ndarray) -> tuple[list[HummedNote], float]:
    """Notes hummed in mono SAMPLE_RATE audio, and the tuning offset (semitones) that was removed."""
    return notes_from_pitch(pitch_track(y))


def notes_from_pitch(midi: np.ndarray) -> tuple[list[HummedNote], float]:
    """Notes from a per-frame MIDI pitch track (NaN = unvoiced, HOP frames), and the tuning removed."""
    hop_s = HOP / SAMPLE_RATE
    runs = [(a, b, _fill(midi[a:b])) for a, b in _voiced_runs(midi)]
    smooth = [_smooth(run) for _, _, run in runs]
    tuning = _tuning(np.concatenate(smooth)) if smooth else 0.0
    notes = []
    for (a, _, run), sm in zip(runs, smooth, strict=True):
        run, steady = run - tuning, _steady(sm)
        for s, e in _segments(run, sm - tuning):
            held = run[s:e][steady[s:e]] if steady[s:e].any() else run[s:e]  # the glide into it ignored
            pitch = int(round(float(np.median(held))))
            notes.append(HummedNote(int(np.clip(pitch, PIANO_BOTTOM, PIANO_TOP)), (a + s) * hop_s, (a + e) * hop_s))
    return notes, tuning


def estimate_tempo(onsets: np.ndarray, lo: float = 50.0, hi: float = 200.0) -> float:
    """BPM whose eighth-note grid best fits the note onsets, preferring about 100 BPM; see `beat_grid`."""
    return beat_grid(onsets, lo, hi)[0]


def beat_grid(onsets: np.ndarray, lo: float = 50.0, hi: float = 200.0) -> tuple[float, float]:
    """(BPM, time in seconds of the grid line the first note sits on) for a list of onsets.

    A coarse search scores each tempo by the mean squared distance of the inter-onset intervals to
    its eighth-note grid (in grid steps, 1/12 for random intervals) plus a log-normal tempo
    preference. The winner is refined by a straight-line fit of onset time against grid position
    (eighth notes), ignoring onsets more than 1/16 beat off the line (a split note, a late scoop);
    fitting positions rather than intervals keeps errors from adding up over a long phrase.
    """
    t = np.sort(np.asarray(onsets, dtype=np.float64))
    ioi = np.diff(t)
    ioi = ioi[ioi > 0.05]
    if len(ioi) < 2:
        return _PREFERRED_BPM, float(t[0]) if len(t) else 0.0
    bpm = np.arange(lo, hi + 0.25, 0.25)
    steps = ioi[None, :] * bpm[:, None] / 60.0 * 2  # intervals in eighth notes
    fit = ((steps - np.round(steps)) ** 2).mean(axis=1) * 12
    prior = (np.log2(bpm / _PREFERRED_BPM) / _PREFERENCE_OCTAVES) ** 2
    beat, origin = 60.0 / bpm[int(np.argmin(fit + 0.5 * prior))], t[0]
    for _ in range(3):
        pos = np.concatenate([[0.0], np.cumsum(np.round(np.diff(t) / beat * 2) / 2)])  # local, so no drift
        beat, origin = np.polyfit(pos, t, 1) if np.ptp(pos) > 0 else (beat, origin)
        keep = np.abs(t - origin - pos * beat) <= beat / 16 + 0.03
        if keep.sum() >= 3 and np.ptp(pos[keep]) > 0:
            beat, origin = np.polyfit(pos[keep], t[keep], 1)
    return float(np.clip(60.0 / beat, lo, hi)), float(origin)


def _snap(beats: float) -> float:
    """A position in beats on the 1/GRID grid, preferring the eighth-note grid when it is within 1/8 beat.

    Hummed onsets wander by tens of milliseconds, which at 1/32 note resolution would turn a plain
    eighth-note rhythm into dotted fragments; only a clearly off-eighth onset keeps the fine grid.
    """
    coarse = round(beats * 2) / 2
    return coarse if abs(beats - coarse) <= 1 / 8 else round(beats * GRID) / GRID


def quantise(notes: list[HummedNote], tempo: float, origin: float | None = None) -> Notes:
    """Notes in beats from the grid line of the first note (`origin`, seconds; default its onset),
    on the 1/GRID-beat grid (see `_snap`); monophonic, no zero lengths; the first note starts at 0."""
    beat = 60.0 / tempo
    t0 = notes[0].onset if origin is None else origin
    starts, ends = [], []
    for n in notes:
        s = _snap((n.onset - t0) / beat)
        if starts and s <= starts[-1]:
            s = starts[-1] + 1 / GRID
        starts.append(s)
        ends.append(max(s + 1 / GRID, _snap((n.offset - t0) / beat)))
    for i in range(len(starts) - 1):
        ends[i] = min(ends[i], starts[i + 1])
    shift = starts[0]
    return Notes.from_arrays([n.pitch for n in notes], [s - shift for s in starts],
                             [e - s for s, e in zip(starts, ends, strict=True)], [VELOCITY] * len(notes), tempo=tempo)


def _mood(melody: Notes, tempo: float, rate: float) -> tuple[float, float, str]:
    """Weak valence/arousal cues: key mode clarity and tempo/note rate (Gabrielsson & Lindström 2010)."""
    corr = key_correlations(pitch_class_histogram(melody))
    mode_margin = float(np.max(corr[:12]) - np.max(corr[12:]))  # > 0: major fits better
    valence = 0.6 * math.tanh(4.0 * mode_margin)
    arousal = 0.5 * math.tanh((tempo - 100.0) / 30.0) + 0.5 * math.tanh((rate - 2.5) / 1.5)
    why = (f"major−minor key fit {mode_margin:+.2f} → valence {valence:+.2f}; tempo {tempo:.0f} BPM and "
           f"{rate:.1f} notes/s → arousal {arousal:+.2f} (Gabrielsson & Lindström 2010)")
    return valence, arousal, why


def humming_elements(path: str | Path) -> Elements:
    """A hummed melody on the 1/8-beat grid, with tempo, key and mood; each derivation in `sources`."""
    y = load_hum(path)
    sung, tuning = track_notes(y)
    if len(sung) < 2:
        raise InvalidInputError(f"found {len(sung)} clear note(s) in {Path(path).name!r}; hum at least two "
                                "distinct notes, close to the microphone")
    tempo, origin = beat_grid(np.array([n.onset for n in sung]))
    tempo = round(tempo, 1)
    melody = quantise(sung, tempo, origin)
    tonic, mode = estimate_key(melody)
    key = key_label(tonic, mode)
    melody.meta.update(key=key, tonic=tonic, mode=mode, tuning_cents=round(100 * tuning),
                       onset_seconds=[round(n.onset, 3) for n in sung])
    seconds = sung[-1].offset - sung[0].onset
    valence, arousal, why = _mood(melody, tempo, len(sung) / max(seconds, 1e-3))
    emotion = emotion_from_va(valence, arousal)
    sources = [
        f"notes: {len(melody)} notes from the pYIN pitch track (librosa; median pitch per note, tuning "
        f"{100 * tuning:+.0f} cents removed), quantised to 1/{GRID} beat",
        f"tempo: {tempo:g} BPM from inter-onset intervals (eighth-note grid fit, preferred tempo ~100 BPM)",
        f"key: {key} (Krumhansl–Schmuckler on the hummed notes)",
        f"valence/arousal: {why}",
        f"quadrant: {emotion.quadrant} from humming valence {valence:+.2f}, arousal {arousal:+.2f}",
    ]
    return Elements(quadrant=emotion.quadrant, valence=valence, arousal=arousal, tempo=float(tempo),
                    notes=melody, sources=sources)
