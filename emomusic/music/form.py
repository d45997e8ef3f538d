"""Bar-level form: stalls (shared by the sampler's stall guard and the long-piece benchmark) and endings.

A stall is music that has stopped moving: one chord held or hammered, two pitches rocking, bar after
bar. A bar stalls when it and the `STALL_SPAN - 1` bars before it use no more than `STALL_CLASSES`
pitch classes between them (a triad and nothing else, for a whole phrase). Exact repetition is not a
stall: a returning bar with its harmony and melody is form, and real music does it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from emomusic.music.notes import Notes

__all__ = ["STALL_CLASSES", "STALL_SPAN", "close_on_tonic", "stall_flags"]

STALL_CLASSES = 3  # pitch classes a phrase that moves uses more of
STALL_SPAN = 4  # bars in that phrase
MIN_BEATS = 0.125  # a note cut shorter than a 32nd at the last barline is dropped, not left as a click


def stall_flags(classes: Sequence[frozenset[int]]) -> np.ndarray:
    """Which bars stall, given each bar's pitch classes.

    Args:
        classes: one set of pitch classes (0-11) per bar, in order.

    Returns:
        bool array, one per bar: True where the bar and the STALL_SPAN - 1 before it use at most
        STALL_CLASSES pitch classes together (the first STALL_SPAN - 1 bars close no phrase: False).
    """
    out = np.zeros(len(classes), dtype=bool)
    for i in range(STALL_SPAN - 1, len(classes)):
        out[i] = len(frozenset().union(*classes[i - STALL_SPAN + 1: i + 1])) <= STALL_CLASSES
    return out


def close_on_tonic(notes: Notes, key: tuple[int, str], bars: int) -> Notes:
    """The piece with its last bar replaced by a final tonic chord, held to the end.

    The generator has no notion of an ending: its pieces stop mid-gesture where the bar count runs
    out. This is the plainest cadence a musician writes: on the last downbeat, the tonic in the bass
    (the octave nearest the lowest notes of the bars before) under a close tonic triad whose top is the
    chord tone nearest the melody's last note, at the closing bars' loudness, held for the whole bar;
    notes of the bars before end at the last barline. Nothing starts in the last bar after its downbeat.

    Args:
        notes: the piece (bar lines every `notes.beats_per_bar` beats from 0).
        key: (tonic pitch class, "major"|"minor"), the key the file will declare.
        bars: the piece's length in bars (at least 2: a one-bar piece is left as it is).

    Returns:
        The closed piece.
    """
    if bars < 2 or not len(notes):
        return notes
    bar = float(notes.beats_per_bar)
    last, end = (bars - 1) * bar, bars * bar
    # notes of the bars before end at the last barline; one starting too close to it to sound is dropped
    before = notes.start < last - MIN_BEATS
    if not before.any():
        return notes
    start, pitch = notes.start[before], notes.pitch[before].astype(np.int64)
    duration = np.minimum(notes.duration[before], last - start)
    recent = start >= last - 2 * bar
    if not recent.any():
        recent = np.ones(len(start), dtype=bool)
    tonic, mode = key
    chord = {tonic % 12, (tonic + (4 if mode == "major" else 3)) % 12, (tonic + 7) % 12}
    low = int(pitch[recent].min())
    bass = min((p for p in range(21, 109) if p % 12 == tonic % 12), key=lambda p: (abs(p - low), p))
    final_onset = start[recent].max()
    melody = int(pitch[recent & (start >= final_onset - 1e-6)].max())
    top = min((p for p in range(bass + 7, 109) if p % 12 in chord), key=lambda p: (abs(p - melody), p))
    upper = [top]
    for p in range(top - 1, bass + 6, -1):  # the other two chord tones, close below the top
        if p % 12 in chord and p % 12 not in {u % 12 for u in upper}:
            upper.append(p)
        if len(upper) == 3:
            break
    final = np.sort(np.array([bass, *upper], dtype=np.int64))
    velocity = int(np.median(notes.velocity[before][recent]))
    return replace(
        notes,
        pitch=np.concatenate([pitch, final]).astype(notes.pitch.dtype),
        start=np.concatenate([start, np.full(len(final), last)]),
        duration=np.concatenate([duration, np.full(len(final), end - last)]),
        velocity=np.concatenate([notes.velocity[before], np.full(len(final), velocity)]).astype(notes.velocity.dtype),
    )
