"""Beats, metre and downbeats tracked from performance MIDI, and the notes re-quantised onto them.

Transcribed piano (EMOPIA) and other performance MIDI is written at a nominal 120 BPM in 4/4: its ticks
are seconds in disguise, so its bars, its tempo and every bar-position feature computed from it are
fiction. This module recovers a real grid from the notes alone:

1. an onset envelope: note onsets binned into frames, weighted by velocity (low notes weighted up,
   since bass onsets carry the pulse in piano music), log-compressed and lightly smoothed;
2. beats: librosa's dynamic-programming beat tracker on that envelope (its tempo prior and tightness
   tuned on ASAP's annotated performances, see benchmarks/beats.py);
3. metre and downbeat phase: for 2, 3 or 4 beats per bar and each phase, how much more bass onset,
   harmonic change, accent and long notes fall on the would-be downbeats than elsewhere; whether the
   beat divides in three (6/8 as two dotted-quarter beats) from where the off-beat onsets fall;
4. the tempo octave (`REAL_TEMPO` only): whether the tracked pulse is the music's beat, its half or its
   double, by a small logistic regression fitted on POP909's and ASAP's known tempi (`beat_octave`);
5. `requantize`: every note placed by linear interpolation between the tracked beats, the first
   downbeat on a bar line (earlier notes form an anacrusis), tempo the least-squares tracked tempo.

`real_grid_notes` is what training data and analysed files go through: nominal-tempo performances
on their tracked grid, everything else as written.

librosa (a core dependency) is imported inside the functions that need it: generating music never loads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import symusic

from emomusic.errors import InvalidInputError
from emomusic.music.midi import load_score, validate_score
from emomusic.music.notes import Notes

_HOP = 512  # librosa only uses sr / hop_length (frames per second); any hop works with sr = fps * hop


@dataclass(frozen=True)
class TrackerSettings:
    """Envelope shape and tracker knobs; `DEFAULTS` are librosa's own on a plain envelope.

    fps: envelope frames per second. start_bpm, std_bpm: centre and width (octaves) of librosa's
    log-normal tempo prior. tightness: how strictly beats keep to the estimated tempo.
    smooth: Gaussian smoothing of the envelope (seconds; 0 = none). log_gain: log1p(gain * env)
    compression (0 = none, linear). bass_weight: extra onset weight of a note at MIDI pitch 36 and
    below, fading to none at pitch 72 (the left hand carries the pulse in piano music).
    w_bass, w_change, w_accent, w_long: weights of the downbeat cues; bias2, bias3: score bonus for
    2 and 3 beats per bar over 4 (the cue contrast grows with the bar length by itself).
    compound: off-beat share at thirds of the beat over halves above which a beat is a dotted quarter.
    octave: re-choose the tracked pulse's octave (half, same or double) with `beat_octave`.
    """

    fps: float = 50.0
    start_bpm: float = 120.0
    std_bpm: float = 1.0
    tightness: float = 100.0
    smooth: float = 0.0
    log_gain: float = 0.0
    bass_weight: float = 0.0
    w_bass: float = 1.0
    w_change: float = 1.0
    w_accent: float = 0.5
    w_long: float = 0.5
    bias2: float = 0.0
    bias3: float = 0.0
    compound: float = 1.5
    octave: bool = False


DEFAULTS = TrackerSettings()
# Tuned on ASAP train pieces only (`python benchmarks/beats.py --tune`; docs/BENCHMARKS.md has the scores):
# a near-flat tempo prior (the strongest periodicity wins), a loose tempo (rubato), a smoothed envelope with the
# bass weighted up; bar lines where bass onsets, long notes and harmony changes fall.
TUNED = TrackerSettings(start_bpm=140.0, std_bpm=2.0, tightness=10.0, smooth=0.04, bass_weight=3.0,
                        w_bass=1.0, w_change=0.5, w_accent=0.0, w_long=1.0, bias2=0.2, bias3=0.0, compound=2.0)
# The tempo of the music (what a musician would write), for the data's tempo and bars: librosa's defaults,
# then the learned octave choice. librosa's prior, centred on 120 BPM, puts slow pop ballads on their
# eighth notes: the written tempo of POP909 songs is half the tracked one about half the time.
REAL_TEMPO = TrackerSettings(octave=True)

# `beat_octave`: multinomial logistic regression, classes (half, same, double) of the tracked tempo, on
# `octave_features`; fitted on POP909 and ASAP train pieces by `python benchmarks/tempo_octave.py --fit`
# (the scores are in docs/BENCHMARKS.md). Rows: classes; columns: features.
OCTAVE_WEIGHTS = np.array([
    [2.1567, -0.0074, -0.8031, 1.2166],
    [-0.607, 0.1793, 0.4297, 0.1186],
    [-1.5497, -0.1719, 0.3734, -1.3352],
])
OCTAVE_BIAS = np.array([3.4152, 0.7688, -4.184])
OCTAVE_FACTORS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Performance:
    """Notes of a performance in seconds (any order): onset, duration (s), MIDI pitch, velocity 1..127."""

    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    name: str = "performance"


@dataclass(frozen=True)
class BeatGrid:
    """Tracked beats (seconds), the downbeats among them and the metre.

    beats_per_bar counts tracked beats; compound means each beat is a dotted quarter (6/8 has two).
    phase: index in `beats` of the first downbeat.
    """

    beats: np.ndarray
    beats_per_bar: int
    phase: int
    compound: bool

    @property
    def downbeats(self) -> np.ndarray:
        """Times (s) of the bar lines."""
        return self.beats[self.phase::self.beats_per_bar]

    @property
    def tempo(self) -> float:
        """Median tracked tempo in tracked beats per minute (0 with fewer than two beats)."""
        if len(self.beats) < 2:
            return 0.0
        return float(60.0 / np.median(np.diff(self.beats)))

    @property
    def beat_unit(self) -> float:
        """Quarter notes per tracked beat: 1.5 for a dotted-quarter (compound) beat, else 1."""
        return 1.5 if self.compound else 1.0

    @property
    def time_signature(self) -> tuple[int, int]:
        """The metre as a time signature: 2/4, 3/4, 4/4, or 6/8, 9/8, 12/8 when compound."""
        if self.compound:
            return (3 * self.beats_per_bar, 8)
        return (self.beats_per_bar, 4)


def performance(source: str | os.PathLike | symusic.Score | Performance, name: str | None = None) -> Performance:
    """The pitched notes of a MIDI file or symusic Score, in seconds (its tempo map applied).

    Args:
        source: a MIDI path, a symusic Score (any time unit), or a `Performance` (returned as is).
        name: label for error messages (default: the path).

    Returns:
        A `Performance`.

    Raises:
        InvalidInputError: unreadable file, or no pitched notes.
    """
    if isinstance(source, Performance):
        return source
    if isinstance(source, symusic.Score):
        label = name or "score"
        score = validate_score(source, label)
    else:
        label = name or str(source)
        score = load_score(source)
    sec = score.to("second")
    parts = [t.notes.numpy() for t in sec.tracks if not t.is_drum and len(t.notes)]
    if not parts:
        raise InvalidInputError(f"{label}: the MIDI file holds no pitched notes; give a file with a pitched part")
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("time", "duration", "pitch", "velocity")}
    return Performance(cat["time"].astype(np.float64), np.maximum(cat["duration"].astype(np.float64), 0.0),
                       cat["pitch"].astype(np.int16), np.clip(cat["velocity"], 1, 127).astype(np.int16), label)


def onset_envelope(perf: Performance, settings: TrackerSettings = DEFAULTS) -> np.ndarray:
    """Per-frame onset strength built from the notes (what an audio onset detector would see).

    Args:
        perf: the notes in seconds.
        settings: fps, smoothing, log compression and bass weighting.

    Returns:
        float64 array, one value per frame of 1/fps seconds from time 0 to the last onset (+1 s).
    """
    fps = settings.fps
    n = int(np.ceil((float(perf.onset.max()) + 1.0) * fps)) + 1
    weight = perf.velocity / 127.0
    if settings.bass_weight:
        low = np.clip((72.0 - perf.pitch) / 36.0, 0.0, 1.0)
        weight = weight * (1.0 + settings.bass_weight * low)
    env = np.bincount(np.round(np.maximum(perf.onset, 0.0) * fps).astype(np.int64), weight, minlength=n)[:n]
    if settings.log_gain:
        env = np.log1p(settings.log_gain * env)
    if settings.smooth:
        sigma = settings.smooth * fps
        half = int(np.ceil(3 * sigma))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        env = np.convolve(env, kernel / kernel.sum(), mode="same")
    return env


def require_librosa():
    """librosa, imported; a one-line error when an install lacks it.

    Returns:
        The librosa module.
    """
    try:
        import librosa
    except ImportError:
        raise InvalidInputError("beat tracking needs librosa; reinstall emomusic (pip install emomusic)") from None
    return librosa


def track_beats(perf: Performance, settings: TrackerSettings = DEFAULTS) -> np.ndarray:
    """Beat times (seconds) by librosa's dynamic-programming tracker on the notes' onset envelope.

    Args:
        perf: the notes in seconds.
        settings: envelope shape, tempo prior (start_bpm, std_bpm) and tightness.

    Returns:
        Sorted beat times in seconds (may be empty for a piece too short to show a pulse).
    """
    return beats_from_envelope(onset_envelope(perf, settings), settings)


def beats_from_envelope(env: np.ndarray, settings: TrackerSettings = DEFAULTS,
                        tempogram: np.ndarray | None = None) -> np.ndarray:
    """Beat times (seconds) from an onset envelope: librosa's tempo estimate, then its beat tracker.

    Args:
        env: `onset_envelope` output at settings.fps.
        settings: fps, tempo prior (start_bpm, std_bpm) and tightness.
        tempogram: `tempogram(env, settings)`, when the caller already has it: it is most of the cost,
            and it does not depend on the tempo prior or the tightness.

    Returns:
        Sorted beat times in seconds.
    """
    librosa = require_librosa()
    sr = settings.fps * _HOP
    bpm = librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=_HOP, start_bpm=settings.start_bpm,
                                std_bpm=settings.std_bpm, tg=tempogram)[0]
    _, beats = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=_HOP, bpm=float(bpm),
                                       tightness=settings.tightness, units="time")
    return np.asarray(beats, dtype=np.float64)


def tempogram(env: np.ndarray, settings: TrackerSettings = DEFAULTS) -> np.ndarray:
    """librosa's autocorrelation tempogram of `env` (8 s window, as its tempo estimate uses), time-averaged.

    librosa's global tempo estimate averages the tempogram over time before applying the prior, so the
    averaged column gives the same tempo at a tiny fraction of the memory.

    Args:
        env: onset envelope at settings.fps.
        settings: its fps.

    Returns:
        The time-averaged tempogram, shape (lags, 1).
    """
    librosa = require_librosa()
    sr = settings.fps * _HOP
    win = int(librosa.time_to_frames(8.0, sr=sr, hop_length=_HOP))
    tg = librosa.feature.tempogram(onset_envelope=env, sr=sr, hop_length=_HOP, win_length=win)
    return tg.mean(axis=1, keepdims=True)


def _near(onset: np.ndarray, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each onset: the nearest beat's index and whether the onset lies within a quarter beat of it."""
    ibi = np.diff(beats)
    ibi = np.concatenate([ibi, ibi[-1:]])
    idx = np.clip(np.searchsorted(beats, onset), 1, len(beats) - 1)
    left = onset - beats[idx - 1] < beats[idx] - onset
    idx = np.where(left, idx - 1, idx)
    return idx, np.abs(onset - beats[idx]) <= 0.25 * ibi[idx]


def beat_cues(perf: Performance, beats: np.ndarray) -> dict[str, np.ndarray]:
    """Per-beat evidence for a bar line there, each z-scored over the piece.

    Args:
        perf: the notes in seconds.
        beats: tracked beat times (at least 2).

    Returns:
        {"bass", "change", "accent", "long"}: arrays of len(beats). bass: velocity of onsets in the
        piece's lowest quarter of pitches near the beat; change: how much the pitch-class content of
        the beat differs from the previous beat's; accent: summed velocity of onsets near the beat;
        long: summed length (in beats, capped at 4) of notes starting near the beat.
    """
    n = len(beats)
    idx, near = _near(perf.onset, beats)
    ibi = np.diff(beats)
    ibi = np.concatenate([ibi, ibi[-1:]])
    vel = perf.velocity.astype(np.float64)
    low = perf.pitch <= np.percentile(perf.pitch, 25)
    accent = np.bincount(idx[near], vel[near], minlength=n)
    bass = np.bincount(idx[near & low], vel[near & low], minlength=n)
    long = np.bincount(idx[near], np.minimum(perf.duration[near] / ibi[idx[near]], 4.0), minlength=n)
    # Pitch-class content of each beat span [beat_i, beat_i+1): the notes starting in it, weighted by length.
    span = np.clip(np.searchsorted(beats, perf.onset, side="right") - 1, 0, n - 1)
    chroma = np.zeros((n, 12))
    np.add.at(chroma, (span, perf.pitch % 12), vel * np.minimum(perf.duration, 2.0))
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    chroma = np.divide(chroma, norm, out=np.zeros_like(chroma), where=norm > 0)
    change = np.zeros(n)
    change[1:] = 1.0 - (chroma[1:] * chroma[:-1]).sum(axis=1)

    def z(x: np.ndarray) -> np.ndarray:
        sd = x.std()
        return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)

    return {"bass": z(bass), "change": z(change), "accent": z(accent), "long": z(long)}


def metre_scores(cues: dict[str, np.ndarray], settings: TrackerSettings = DEFAULTS) -> dict[tuple[int, int], float]:
    """Score of every (beats per bar, phase) hypothesis: mean cue on its downbeats minus elsewhere.

    Args:
        cues: `beat_cues` output.
        settings: cue weights and the 2- and 3-beat biases.

    Returns:
        {(beats_per_bar, phase): score} for 2, 3 and 4 beats per bar.
    """
    f = (settings.w_bass * cues["bass"] + settings.w_change * cues["change"]
         + settings.w_accent * cues["accent"] + settings.w_long * cues["long"])
    k = np.arange(len(f))
    bias = {2: settings.bias2, 3: settings.bias3, 4: 0.0}
    out = {}
    for m in (2, 3, 4):
        for p in range(m):
            on = k % m == p
            out[(m, p)] = float(f[on].mean() - f[~on].mean()) + bias[m] if on.any() and (~on).any() else -np.inf
    return out


def compound_ratio(perf: Performance, beats: np.ndarray) -> float:
    """How much the beats divide in three rather than two: off-beat onsets near 1/3 and 2/3 of a beat
    over those near 1/2 (each counted in a window of 1/12 beat either side)."""
    span = np.searchsorted(beats, perf.onset, side="right") - 1
    ok = (span >= 0) & (span < len(beats) - 1)
    frac = (perf.onset[ok] - beats[span[ok]]) / np.diff(beats)[span[ok]]
    third = np.sum(np.abs(frac - 1 / 3) < 1 / 12) + np.sum(np.abs(frac - 2 / 3) < 1 / 12)
    half = np.sum(np.abs(frac - 0.5) < 1 / 12)
    return float((third + 1.0) / (2.0 * half + 1.0))


def octave_features(perf: Performance, beats: np.ndarray) -> np.ndarray:
    """What says whether a tracked pulse is the music's beat, its half or its double.

    Args:
        perf: the notes in seconds.
        beats: tracked beat times (at least two).

    Returns:
        float64 (4,): log2 of the tempo over 120 BPM and its square (the pulse's octave is a question
        of how far from a moderate tempo it lies, either way), log2 of the distinct onsets per beat and
        of the median gap between onsets in beats (gaps under 30 ms are one chord).
    """
    period = beat_period(beats)
    onsets = np.unique(np.round(perf.onset, 2))
    span = max(float(beats[-1] - beats[0]), 1e-3)
    gaps = np.diff(onsets)
    gaps = gaps[gaps > 0.03]
    gap = float(np.median(gaps)) / period if len(gaps) else 1.0
    tempo = np.log2(60.0 / period / 120.0)
    return np.array([tempo, tempo**2, np.log2(len(onsets) / span * period + 1e-3), np.log2(gap + 1e-3)])


def beat_octave(perf: Performance, beats: np.ndarray) -> float:
    """The factor (0.5, 1 or 2) that turns the tracked tempo into the music's, by `OCTAVE_WEIGHTS`.

    Args:
        perf: the notes in seconds.
        beats: tracked beat times (at least two).

    Returns:
        One of `OCTAVE_FACTORS`.
    """
    logits = OCTAVE_WEIGHTS @ octave_features(perf, beats) + OCTAVE_BIAS
    return OCTAVE_FACTORS[int(np.argmax(logits))]


def rescale_beats(perf: Performance, beats: np.ndarray, factor: float) -> np.ndarray:
    """Beats at `factor` times the tempo: every other beat (the half with the stronger onsets) or midpoints.

    Args:
        perf: the notes in seconds (the onsets choose which half of the beats to keep).
        beats: tracked beat times.
        factor: 0.5, 1 or 2.

    Returns:
        The new beat times.
    """
    if factor == 1.0 or len(beats) < 4:
        return beats
    if factor == 2.0:
        mids = (beats[:-1] + beats[1:]) / 2.0
        return np.sort(np.concatenate([beats, mids]))
    env = onset_envelope(perf, replace(DEFAULTS, bass_weight=TUNED.bass_weight))  # the bass marks the beat
    frames = np.clip(np.round(beats * DEFAULTS.fps).astype(np.int64), 0, len(env) - 1)
    strength = [env[frames[p::2]].mean() for p in (0, 1)]
    return beats[int(np.argmax(strength))::2]


def track(source: str | os.PathLike | symusic.Score | Performance,
          settings: TrackerSettings = TUNED) -> BeatGrid:
    """Beats, metre and downbeats of a performance.

    Args:
        source: a MIDI path, symusic Score or `Performance`.
        settings: tracker settings (default: tuned on ASAP train pieces).

    Returns:
        A `BeatGrid`.

    Raises:
        InvalidInputError: unreadable file, no notes, or too few onsets to find a pulse.
    """
    perf = performance(source)
    beats = track_beats(perf, settings)
    if settings.octave and len(beats) >= 4:
        beats = rescale_beats(perf, beats, beat_octave(perf, beats))
    if len(beats) < 4:
        raise InvalidInputError(f"{perf.name}: too few notes to find a beat ({len(beats)} beats tracked); "
                                "give a longer performance")
    scores = metre_scores(beat_cues(perf, beats), settings)
    m, p = max(scores, key=scores.get)
    compound = m in (2, 4) and compound_ratio(perf, beats) > settings.compound
    return BeatGrid(beats, m, p, compound)


def requantize(source: str | os.PathLike | symusic.Score | Performance, grid: BeatGrid | None = None,
               settings: TrackerSettings = TUNED, subdivision: int = 12) -> Notes:
    """The notes re-written on their tracked grid: real tempo, real metre, bar lines on the downbeats.

    Each onset and offset is placed by linear interpolation between the tracked beats (beyond the
    first and last beat, at the edge beat's interval). The first downbeat lands on a bar line; notes
    before it form an anacrusis in the bar before.

    Args:
        source: a MIDI path, symusic Score or `Performance`.
        grid: a `BeatGrid` from `track` (tracked here when None).
        settings: tracker settings when tracking here.
        subdivision: onsets snap to 1/subdivision of a tracked beat (12 keeps 16ths and triplets); 0 = no snap.

    Returns:
        `Notes` in quarter-note beats, tempo the tracked tempo in quarters per minute (`grid_tempo`), the metre's
        time signature, and meta: source, tracked_tempo (tracked beats per minute), anacrusis (quarters).
    """
    perf = performance(source)
    grid = grid or track(perf, settings)
    b = grid.beats
    if len(b) < 2:
        raise InvalidInputError(f"{perf.name}: a grid needs at least two beats; give a longer performance")

    def position(t: np.ndarray) -> np.ndarray:
        k = np.interp(t, b, np.arange(len(b), dtype=np.float64))
        k = np.where(t < b[0], (t - b[0]) / (b[1] - b[0]), k)
        return np.where(t > b[-1], len(b) - 1 + (t - b[-1]) / (b[-1] - b[-2]), k)

    on = position(perf.onset)
    off = position(perf.onset + perf.duration)
    if subdivision:
        on = np.round(on * subdivision) / subdivision
        off = np.maximum(np.round(off * subdivision) / subdivision, on + 1.0 / subdivision)
    m = grid.beats_per_bar
    # Bar 0 starts at the first downbeat, or whole bars earlier so no note starts before time 0.
    origin = grid.phase - m * max(0, int(np.ceil((grid.phase - on.min()) / m - 1e-9)))
    unit = grid.beat_unit
    start = np.maximum((on - origin) * unit, 0.0)  # a first note on the bar line may land a rounding error early
    duration = (off - on) * unit
    return Notes.from_arrays(perf.pitch, start, duration, perf.velocity, tempo=grid_tempo(grid),
                             time_signature=grid.time_signature, source=perf.name, tracked_tempo=grid.tempo,
                             anacrusis=float(max(0.0, grid.phase - on.min()) * unit))


def grid_tempo(grid: BeatGrid) -> float:
    """Quarter notes per minute of a grid's least-squares beat period.

    Not the median interval: tracked beats sit on envelope frames (20 ms at 50 fps), so the median
    interval only takes a few values (120, 125, 130.4, ... BPM).

    Args:
        grid: a `BeatGrid` with at least two beats.

    Returns:
        The tempo in quarter notes per minute (a dotted-quarter beat counts 1.5 quarters).
    """
    return 60.0 / beat_period(grid.beats) * grid.beat_unit


def beat_period(beats: np.ndarray) -> float:
    """Seconds per beat: the least-squares slope of the beat times over their index.

    Args:
        beats: at least two beat times in seconds.

    Returns:
        The period in seconds.
    """
    return float(np.polyfit(np.arange(len(beats)), beats, 1)[0])


NOMINAL_BPM = 120.0  # what transcribers and exporters write when they know no tempo
# a file whose onsets lie on the 1/24-beat grid at least this often is a sequenced score (EMOPIA's
# transcriptions: 3-16%; Nottingham: 96-100%; half of VGMIDI's files: 100%)
ON_GRID_SHARE = 0.9


def is_nominal_performance(source: str | os.PathLike | symusic.Score) -> bool:
    """Whether a MIDI file is a performance at a nominal tempo: its ticks are seconds in disguise.

    That is: its only tempo is the nominal 120 BPM (or none: the MIDI default) and its onsets are off
    any score grid. A file at 120 BPM whose onsets lie on a 1/24-beat grid (sixteenths, triplets and
    their halves) was sequenced: its bars are already the music's.

    Args:
        source: a MIDI path or symusic Score.

    Returns:
        True for a nominal-tempo performance, False for a real tempo map or a quantised score.
    """
    score = source if isinstance(source, symusic.Score) else load_score(source)
    tempos = score.tempos
    if not (len(tempos) == 0 or (len(tempos) == 1 and abs(tempos[0].qpm - NOMINAL_BPM) < 0.01)):
        return False
    onsets = [t.notes.numpy()["time"] for t in score.tracks if len(t.notes)]
    if not onsets:
        return False
    step = score.ticks_per_quarter / 24.0
    ticks = np.concatenate(onsets) / step
    return float(np.mean(np.abs(ticks - np.round(ticks)) < 1e-6)) < ON_GRID_SHARE


def real_grid_notes(path: str | os.PathLike) -> Notes:
    """A MIDI file's notes on the music's grid: a nominal-tempo performance re-quantised onto its beats.

    Files with a real tempo map or a score grid are read as they are (`midi.score_to_notes`); a
    performance at the nominal 120 BPM (`is_nominal_performance`: a transcription) is tracked with
    `REAL_TEMPO` and re-quantised (`requantize`, no snapping: the tokenizer's grid does that), so its
    bars, tempo and every beat-counted feature are the music's.

    Args:
        path: a MIDI file.

    Returns:
        `Notes` in quarter-note beats.

    Raises:
        InvalidInputError: unreadable file, no notes, too few onsets to track, or librosa missing.
    """
    from emomusic.music.midi import score_to_notes

    score = load_score(path)  # read once: the check and the notes share it
    if not is_nominal_performance(score):
        return score_to_notes(score, str(path))
    perf = performance(score, str(path))
    return requantize(perf, track(perf, REAL_TEMPO), subdivision=0)
