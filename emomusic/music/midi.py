"""MIDI loading and validation (symusic backend), and conversion to/from `Notes`.

Loading is strict about what a user can get wrong (missing file, not MIDI, no notes, too big)
and answers with `InvalidInputError`, never a parser traceback. Writing files is the export layer's
(:mod:`emomusic.export.midi`); the limits both sides check (meter, span) are here.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import symusic

from emomusic.errors import InvalidInputError
from emomusic.io import check_input_file
from emomusic.music.notes import Notes
from emomusic.music.tracks import Track

MAX_MIDI_BYTES = 16 * 1024 * 1024
MAX_NOTES = 200_000
MAX_TRACKS = 256
# The longest real piece in the training data ends near beat 3,600; 65,536 beats (9 h at 120 BPM) leaves
# room for any real music while keeping tick counts inside MIDI's 28-bit delta times and int32 ticks.
MAX_BEATS = 65_536


def load_score(path: str | os.PathLike, max_bytes: int = MAX_MIDI_BYTES) -> symusic.Score:
    """Parse a MIDI file into a symusic Score, with one-line errors for bad files."""
    path = check_input_file(path, "MIDI", max_bytes)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if head != b"MThd":
        raise InvalidInputError(f"{path}: not a MIDI file (no MThd header); give a Standard MIDI File")
    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError with C++ text
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(
            f"{path}: corrupt MIDI file ({msg}); re-export it from your DAW or score editor"
        ) from None
    return validate_score(score, str(path))


def validate_score(score: symusic.Score, name: str = "score") -> symusic.Score:
    """Reject scores no stage can use: no tracks, no notes, no time grid, absurd sizes."""
    if score.ticks_per_quarter <= 0:
        raise InvalidInputError(f"{name}: the MIDI header gives {score.ticks_per_quarter} ticks per quarter note; "
                                "give a Standard MIDI File with a positive division")
    if len(score.tracks) > MAX_TRACKS:
        raise InvalidInputError(f"{name}: {len(score.tracks)} tracks is over the limit of {MAX_TRACKS}; "
                                "merge or delete tracks")
    n_notes = score.note_num()
    if n_notes == 0:
        raise InvalidInputError(f"{name}: the MIDI file holds no notes; give a file with notes in it")
    if n_notes > MAX_NOTES:
        raise InvalidInputError(f"{name}: {n_notes} notes is over the limit of {MAX_NOTES}; give a shorter piece")
    end = score.end() / score.ticks_per_quarter
    if end > MAX_BEATS:
        raise InvalidInputError(f"{name}: the piece lasts {end:.0f} beats, over the limit of {MAX_BEATS}; "
                                "give a shorter piece")
    return score


def score_to_notes(score: symusic.Score, name: str = "score") -> Notes:
    """Merge every pitched (non-drum) track into one piano part, in beats."""
    parts = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    if not parts:
        raise InvalidInputError(f"{name}: the MIDI file holds no pitched notes (drums only); give a file with a "
                                "pitched part")
    return _tracks_to_notes(score, parts, name)


def _tracks_to_notes(score: symusic.Score, tracks: list, name: str) -> Notes:
    """The notes of `tracks` (symusic tracks of `score`) merged, in beats, with the score's tempo and metre."""
    tpq = float(score.ticks_per_quarter)
    parts = [t.notes.numpy() for t in tracks]
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("time", "duration", "pitch", "velocity")}
    keep = cat["duration"] > 0
    if not keep.any():
        raise InvalidInputError(f"{name}: every note has zero length; give a file whose notes last some time")
    tempo, changes = 120.0, np.zeros((0, 2))
    if len(score.tempos):
        marks = score.tempos.numpy()
        ok = marks["mspq"] > 0
        bpm = np.clip(60e6 / np.where(ok, marks["mspq"], 1), 10.0, 400.0)
        if ok[0]:
            tempo = float(bpm[0])
        later = ok & (marks["time"] > 0)  # the changes after the first tempo, as [beat, BPM]
        changes = np.stack([marks["time"][later] / tpq, bpm[later]], axis=1) if later.any() else changes
    ts = (4, 4)
    if len(score.time_signatures):
        t0 = score.time_signatures[0]
        if 0 < t0.numerator <= 255 and 0 < t0.denominator <= 128 and not t0.denominator & (t0.denominator - 1):
            ts = (int(t0.numerator), int(t0.denominator))
    velocity = np.clip(cat["velocity"][keep], 1, 127)
    notes = Notes.from_arrays(
        np.clip(cat["pitch"][keep], 0, 127), cat["time"][keep] / tpq, cat["duration"][keep] / tpq,
        velocity, tempo=tempo, time_signature=ts, source=name,
    )
    return replace(notes, pedals=_pedals(tracks, tpq), tempos=changes)


def _pedals(tracks: list, tpq: float) -> np.ndarray:
    """Sustain presses of the pitched tracks as (k, 2) [down, up] beats, overlapping presses merged."""
    spans = [(p.time / tpq, (p.time + p.duration) / tpq) for t in tracks if not t.is_drum for p in t.pedals
             if p.duration > 0]
    if not spans:
        return np.zeros((0, 2))
    merged: list[list[float]] = []
    for down, up in sorted(spans):
        if merged and down <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], up)
        else:
            merged.append([down, up])
    return np.asarray(merged, dtype=np.float64)


def load_notes(path: str | os.PathLike) -> Notes:
    """Load a MIDI file as one merged piano part."""
    return score_to_notes(load_score(path), str(path))


def score_tracks(score: symusic.Score, name: str = "score") -> list[Track]:
    """Each track of a score that holds notes, as it is: its name, program (-1 for drums) and notes.

    Why: continuing a user's file keeps every part the user wrote, so the parts are read one by one
    (tempo, metre and pedal with each), not merged as the models read them.

    Args:
        score: a parsed score (`load_score`).
        name: the file's name, for messages.

    Returns:
        One `Track` per non-empty track, in file order (role "user").

    Raises:
        InvalidInputError: the file holds no notes.
    """
    tracks = [t for t in score.tracks if len(t.notes)]
    if not tracks:
        raise InvalidInputError(f"{name}: the MIDI file holds no notes")
    out = []
    for i, t in enumerate(tracks):
        notes = _tracks_to_notes(score, [t], name)
        label = str(t.name).strip() or ("Drums" if t.is_drum else f"Track {i + 1}")
        out.append(Track(label, -1 if t.is_drum else int(t.program), "user", notes))
    return out


def check_span(notes: Notes) -> None:
    """Refuse notes that would overflow MIDI's tick counters (see MAX_BEATS) before any cast to ints."""
    if not len(notes):
        return
    start = np.asarray(notes.start, dtype=np.float64)
    dur = np.asarray(notes.duration, dtype=np.float64)
    ok = np.isfinite(start) & np.isfinite(dur)  # non-finite notes are dropped (export) or refused (encode)
    with np.errstate(over="ignore"):
        ends = start[ok] + np.maximum(dur[ok], 0.0)
    if len(ends) and not ends.max() <= MAX_BEATS:  # `not <=` also catches an overflow to inf
        raise InvalidInputError(f"notes end at beat {ends.max():.0f}, past the limit of {MAX_BEATS} beats; "
                                "shorten the piece")


def check_meter(notes: Notes) -> tuple[int, int]:
    """The time signature as ints, after checking it and the tempo are ones MIDI can store."""
    num, den = (int(v) for v in notes.time_signature)
    if num < 1 or num > 255 or den < 1 or den > 128 or den & (den - 1):
        raise InvalidInputError(
            f"time signature {num}/{den}: the numerator must be 1-255 and the denominator a power of 2"
        )
    if not np.isfinite(notes.tempo) or notes.tempo <= 0:
        raise InvalidInputError(f"tempo {notes.tempo}: give a positive number of beats per minute")
    return num, den


def notes_to_score(
    notes: Notes, tpq: int = 480, program: int = 0, track_name: str = "Piano"
) -> symusic.Score:
    """One-track symusic Score (tempo and time signature set) from `Notes`."""
    num, den = check_meter(notes)
    check_span(notes)
    if len(notes) and not (np.isfinite(notes.start).all() and np.isfinite(notes.duration).all()
                           and notes.start.min() >= 0):
        raise InvalidInputError("notes need finite, non-negative start times and finite durations")
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, qpm=float(notes.tempo)))
    for beat, bpm in notes.tempos:
        score.tempos.append(symusic.Tempo(int(round(beat * tpq)), qpm=float(bpm)))
    score.time_signatures.append(symusic.TimeSignature(0, num, den))
    track = symusic.Track(name=track_name, program=program, is_drum=False)
    if len(notes):
        start = np.round(notes.start * tpq).astype(np.int32)
        dur = np.maximum(1, np.round(notes.duration * tpq)).astype(np.int32)
        # Clip before the int8 cast: 200 would wrap to -56 and reach the tokenizer as a bogus note.
        track.notes = symusic.Note.from_numpy(
            time=start, duration=dur, pitch=np.clip(notes.pitch, 0, 127).astype(np.int8),
            velocity=np.clip(notes.velocity, 1, 127).astype(np.int8),
        )
    score.tracks.append(track)
    return score


def read_provenance(path: str | os.PathLike) -> dict | None:
    """The request a file written by emomusic records (its conductor's text event), or None.

    Args:
        path: a MIDI file.

    Returns:
        The recorded fields, or None when the file carries none.

    Raises:
        InvalidInputError: not a readable MIDI file, or a damaged record.
    """
    import json

    import mido

    from emomusic.vocab.constants import PROVENANCE_PREFIX

    path = check_input_file(path, "MIDI", MAX_MIDI_BYTES)
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise InvalidInputError(f"{path}: not a readable MIDI file ({exc})") from None
    for track in mid.tracks:
        for msg in track:
            if msg.type == "text" and msg.text.startswith(PROVENANCE_PREFIX):
                try:
                    return json.loads(msg.text[len(PROVENANCE_PREFIX):])
                except json.JSONDecodeError:
                    raise InvalidInputError(f"{path}: its emomusic request record is damaged") from None
    return None
