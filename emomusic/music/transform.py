"""The music of `EmoMusic.transform` (the same piece in another mood): the kept line in the target mode, the
chords it is harmonised with, and where the new accompaniment may go.

Why plain numpy here and not in the pipeline: what stays of the user's piece (a melody's rhythm and
contour, or its chords) and how it is measured (onsets kept, chord tones) are music facts the tests and
the benchmark check by hand, without any model.

- `to_mode`: the kept notes in the target mode, by the parallel mode (`harmony.change_mode`): the
  tonic, rhythm and contour stay, only the third, sixth and seventh degrees move (C major → C minor).
- `harmonise`: a chord per beat for the kept melody, in the target key: the key's diatonic triads
  (in minor the dominant's major triad too), scored on how much of the beat's melody they hold, a
  lean to the piece's own chord there (mode-adjusted) and to tonic, subdominant and dominant,
  with a cost per change (low on a downbeat, high off the beat), decoded by Viterbi.
- `kept_chords`: for `--keep harmony`, the piece's own chords per beat in the target mode, a beat
  without a chord holding the one before.
- `ceiling`, `under_melody`: the accompaniment stays below the tune, as an arranger voices it.
- `onsets_kept`, `chord_tone_share`: what the benchmark and tests measure.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from emomusic.music.attributes import estimate_key
from emomusic.music.harmony import CHORD_INTERVALS, NO_CHORD, QUALITIES, beat_chroma, change_mode, chord_sequence
from emomusic.music.notes import Notes
from emomusic.vocab.constants import PIANO_BOTTOM

__all__ = ["CHANGE_COST", "ONSET_TOLERANCE", "ceiling", "chord_pitch_classes", "chord_tone_share", "harmonise",
           "kept_chords", "onsets_kept", "to_mode", "triads", "under_melody"]

ONSET_TOLERANCE = 0.07  # beats: an onset within this of a reference onset is the same onset (under 1/8 beat)
CHANGE_COST = (0.15, 0.35, 0.8)  # a chord change on a bar's first beat, on its middle beat, on any other beat
PRIOR_WEIGHT = 0.35  # lean to the piece's own (mode-adjusted) chord on a beat
FUNCTION_WEIGHT = {0: 0.12, 5: 0.06, 7: 0.08}  # lean to the triads on the tonic, subdominant, dominant


def to_mode(notes: Notes, tonic: int, mode: str, target: str) -> Notes:
    """`notes` in the `target` mode: unchanged when it is `mode`, else the parallel mode (`change_mode`).

    Args:
        notes: the notes kept (a melody, or a whole piece).
        tonic: the key's tonic pitch class (0 = C).
        mode: the key's mode now, "major" or "minor".
        target: the mode asked for.

    Returns:
        The notes; onsets, durations and contour as they were.
    """
    return notes if mode == target else change_mode(notes, tonic, mode)


def triads(tonic: int, mode: str) -> list[tuple[int, str]]:
    """The key's diatonic triads as (root pitch class, quality); in minor also the dominant's major triad
    (harmonic minor: the V that leads home), so a raised seventh in the tune has a chord."""
    if mode == "major":
        degrees = ((0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min"), (11, "dim"))
    else:
        degrees = ((0, "min"), (2, "dim"), (3, "maj"), (5, "min"), (7, "min"), (7, "maj"), (8, "maj"),
                   (10, "maj"))
    return [((tonic + d) % 12, q) for d, q in degrees]


def chord_pitch_classes(root: int, quality: str) -> np.ndarray:
    """(12,) bool: the chord's pitch classes."""
    out = np.zeros(12, dtype=bool)
    out[[(root + i) % 12 for i in CHORD_INTERVALS[quality]]] = True
    return out


def _change_cost(n_beats: int, beats_per_bar: float) -> np.ndarray:
    """(n_beats,) the cost of a chord change arriving on each beat (beat 0 free)."""
    pos = np.arange(n_beats) % max(1, int(round(beats_per_bar)))
    half = int(round(beats_per_bar)) // 2
    cost = np.where(pos == 0, CHANGE_COST[0], np.where((pos == half) & (half > 0), CHANGE_COST[1], CHANGE_COST[2]))
    cost[0] = 0.0
    return cost


def harmonise(melody: Notes, tonic: int, mode: str, n_beats: int, prior: Notes | None = None) -> np.ndarray:
    """A chord for each beat of a melody in the key (`tonic`, `mode`): (n_beats, 12) bool pitch classes.

    Why a search over the key's triads rather than the piece's own chords: the tune has moved to
    another mode and the accompaniment is written anew, so the chords are chosen again, for the
    notes the tune now sings; the piece's own chords (analysed in `prior`, mode-adjusted the same
    way) only lean the choice, so the harmonic rhythm and functions carry over where they fit.

    Args:
        melody: the tune in the target key (times in beats).
        tonic, mode: the target key.
        n_beats: beats to cover.
        prior: the whole piece in the target mode, or None.

    Returns:
        (n_beats, 12) bool: the chord tones of each beat.
    """
    cands = triads(tonic, mode)
    tones = np.stack([chord_pitch_classes(r, q) for r, q in cands]).astype(np.float64)  # (k, 12)
    chroma = beat_chroma(melody)[:n_beats]
    chroma = np.vstack([chroma, np.zeros((n_beats - len(chroma), 12))]) if len(chroma) < n_beats else chroma
    total = chroma.sum(1, keepdims=True)
    share = np.divide(chroma, total, out=np.zeros_like(chroma), where=total > 0)
    # the share of the beat's melody on chord tones, minus half the share off them
    score = share @ tones.T - 0.5 * (share @ (1.0 - tones).T)  # (n_beats, k)
    if prior is not None and len(prior):
        roots, quals = chord_sequence(beat_chroma(prior))
        roots, quals = roots[:n_beats], quals[:n_beats]
        for j, (r, q) in enumerate(cands):
            same = (roots == r) & (quals >= 0) & np.isin(quals, [QUALITIES.index(q)] + (
                [QUALITIES.index("7"), QUALITIES.index("maj7")] if q == "maj" else
                [QUALITIES.index("min7")] if q == "min" else []))
            score[: len(same), j] += PRIOR_WEIGHT * same
    for j, (r, q) in enumerate(cands):
        score[:, j] += FUNCTION_WEIGHT.get((r - tonic) % 12, 0.0) * (q != "dim")
    cost = _change_cost(n_beats, melody.beats_per_bar)
    k = len(cands)
    best = np.zeros((n_beats, k))
    back = np.zeros((n_beats, k), dtype=np.int64)
    if n_beats == 0:
        return np.zeros((0, 12), dtype=bool)
    best[0] = score[0]
    for b in range(1, n_beats):
        stay = best[b - 1]
        move = best[b - 1].max() - cost[b]
        came = np.where(stay >= move, np.arange(k), int(best[b - 1].argmax()))
        best[b] = np.maximum(stay, move) + score[b]
        back[b] = came
    path = np.zeros(n_beats, dtype=np.int64)
    path[-1] = int(best[-1].argmax())
    for b in range(n_beats - 1, 0, -1):
        path[b - 1] = back[b, path[b]]
    return tones[path] > 0


def kept_chords(notes: Notes, tonic: int, n_beats: int) -> np.ndarray:
    """The piece's own chord on each beat (`harmony.chord_sequence`), as (n_beats, 12) bool pitch classes.

    A beat without a chord (too few notes) holds the chord before it; before the first chord, the
    tonic triad of the mode the notes are in is held.

    Args:
        notes: the whole piece, already in the target mode.
        tonic: the key's tonic (for the opening beats without a chord).
        n_beats: beats to cover.
    """
    roots, quals = chord_sequence(beat_chroma(notes))
    mode = estimate_key(notes)[1] if len(notes) else "major"
    last = chord_pitch_classes(tonic, "maj" if mode == "major" else "min")
    out = np.zeros((n_beats, 12), dtype=bool)
    for b in range(n_beats):
        if b < len(roots) and roots[b] != NO_CHORD:
            last = chord_pitch_classes(int(roots[b]), QUALITIES[int(quals[b])])
        out[b] = last
    return out


def ceiling(melody: Notes, times: np.ndarray) -> np.ndarray:
    """At each time (beats), the lower of the tune's last and next notes (128 where the tune has none):
    the accompaniment stays under it, in the tune's rests too."""
    times = np.asarray(times, dtype=np.float64)
    if not len(melody):
        return np.full(len(times), 128, dtype=np.int64)
    i = np.searchsorted(melody.start, times + 1e-6, side="right")
    prev = np.where(i > 0, melody.pitch[np.maximum(i - 1, 0)], 128)
    nxt = np.where(i < len(melody), melody.pitch[np.minimum(i, len(melody) - 1)], 128)
    return np.minimum(prev, nxt).astype(np.int64)


def _span_ceiling(melody: Notes, acc: Notes) -> np.ndarray:
    """For each accompaniment note: the lowest tune note it must stay under (`ceiling` at its onset, and
    every tune note struck while it sounds)."""
    cap = ceiling(melody, acc.start)
    if not len(melody) or not len(acc):
        return cap
    end = acc.start + acc.duration
    for j in range(len(acc)):
        inside = (melody.start > acc.start[j] + 1e-6) & (melody.start < end[j] - 1e-6)
        if inside.any():
            cap[j] = min(cap[j], int(melody.pitch[inside].min()))
    return cap


def under_melody(acc: Notes, melody: Notes, floor: int = PIANO_BOTTOM) -> Notes:
    """`acc` with every note at or above the tune (while it sounds) moved down by octaves; a note that
    would fall below `floor` is left out, and a note doubling another at one onset is dropped.

    Args:
        acc: the accompaniment.
        melody: the tune.
        floor: the lowest pitch kept.

    Returns:
        The accompaniment, strictly below the tune wherever both sound.
    """
    if not len(acc) or not len(melody):
        return acc
    cap = _span_ceiling(melody, acc)
    pitch = acc.pitch.astype(np.int64)
    over = pitch >= cap
    lowered = pitch - 12 * np.ceil((pitch - cap + 1) / 12).astype(np.int64)
    pitch = np.where(over, lowered, pitch)
    keep = pitch >= floor
    out = replace(acc.select(keep), pitch=pitch[keep].astype(acc.pitch.dtype))
    return Notes.from_arrays(out.pitch, out.start, out.duration, out.velocity, acc.tempo, acc.time_signature,
                             **acc.meta).deduplicate()


def onsets_kept(reference: np.ndarray, got: np.ndarray, tol: float = ONSET_TOLERANCE) -> float:
    """Share of the `reference` onsets (beats) that `got` has too, within `tol` beats (1.0 when none).

    Args:
        reference: the onsets that should be kept (the input melody's).
        got: the onsets found (the output melody's).
        tol: the tolerance in beats.
    """
    ref = np.unique(np.round(np.asarray(reference, dtype=np.float64), 6))
    if not len(ref):
        return 1.0
    have = np.sort(np.asarray(got, dtype=np.float64))
    if not len(have):
        return 0.0
    i = np.clip(np.searchsorted(have, ref), 1, len(have) - 1) if len(have) > 1 else np.zeros(len(ref), np.int64)
    near = np.minimum(np.abs(have[i] - ref), np.abs(have[np.maximum(i - 1, 0)] - ref))
    return float(np.mean(near <= tol))


def chord_tone_share(notes: Notes, chords: np.ndarray) -> float:
    """Share of notes whose pitch class is a chord tone of the beat they start on (nan without notes).

    Args:
        notes: the notes judged.
        chords: (n_beats, 12) bool chord tones per beat (`harmonise`, `kept_chords`).
    """
    if not len(notes) or not len(chords):
        return float("nan")
    beat = np.clip(np.floor(notes.start + 1e-6).astype(np.int64), 0, len(chords) - 1)
    return float(np.mean(chords[beat, notes.pitch.astype(np.int64) % 12]))
