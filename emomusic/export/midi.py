"""MIDI output: the DAW-ready Standard MIDI File every piece is written as (`.mid`, `.midi`).

Reading MIDI lives in :mod:`emomusic.music.midi`; this module only writes. The written key signature
is decided once, by `written_key`, for MIDI and MusicXML alike, so a score and its MIDI never disagree.
"""

from __future__ import annotations

import os
from pathlib import Path

import mido
import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.io import atomic_write
from emomusic.music.attributes import signature_key
from emomusic.music.midi import check_meter, check_span
from emomusic.music.notes import Notes
from emomusic.vocab.constants import KEY_MODES, MAJOR_KEY_NAMES, MINOR_KEY_NAMES

__all__ = ["EXPORT_TPQ", "build_midi_file", "export_midi", "key_signature_name", "written_key"]

EXPORT_TPQ = 480
"""Ticks per quarter note of exported files: every allowed time-signature denominator divides it, and
DAWs import it without re-quantising."""


def written_key(notes: Notes, key: tuple[int, str] | None = None) -> tuple[int, str]:
    """The key a written file declares: `key` when given (checked), else the notes' estimated key.

    The one place this is decided, so MIDI and MusicXML exports of a piece name the same key.

    Args:
        notes: the piece; only read when `key` is None (`music.attributes.signature_key`).
        key: (tonic pitch class 0-11, "major"|"minor"), or None.

    Returns:
        (tonic, mode) with tonic a plain int.

    Raises:
        InvalidInputError: `key` is not a (0-11, "major"|"minor") pair.
    """
    if key is None:
        return signature_key(notes)
    try:
        tonic, mode = key
        tonic_ok = isinstance(tonic, (int, np.integer)) and 0 <= int(tonic) <= 11
    except (TypeError, ValueError):
        tonic_ok, mode = False, None
    if not tonic_ok or mode not in KEY_MODES:
        raise InvalidInputError(f"key {key!r}: give (tonic pitch class 0-11, 'major' or 'minor')")
    return int(tonic), mode


def key_signature_name(key: tuple[int, str]) -> str:
    """mido's key-signature name of a checked (tonic, mode), e.g. (9, "minor") -> "Am"."""
    tonic, mode = key
    return (MAJOR_KEY_NAMES if mode == "major" else MINOR_KEY_NAMES)[int(tonic)]


def _export_ticks(notes: Notes, tpq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clean notes on the tick grid: (start, end, pitch, velocity) sorted by (start, pitch).

    Clips pitch to 0..127 and velocity to 1..127, drops notes with a non-finite time or no positive
    length, gives tiny notes one tick, keeps one note per (pitch, onset) (the longest) and truncates a
    note at the next onset of the same pitch, so no DAW sees overlapping or zero-length notes.
    """
    start_b = np.asarray(notes.start, dtype=np.float64)
    dur_b = np.asarray(notes.duration, dtype=np.float64)
    ok = np.isfinite(start_b) & np.isfinite(dur_b) & (dur_b > 0)
    start = np.maximum(0, np.round(start_b[ok] * tpq)).astype(np.int64)
    end = np.maximum(start + 1, np.round((start_b[ok] + dur_b[ok]) * tpq).astype(np.int64))
    pitch = np.clip(np.asarray(notes.pitch)[ok].astype(np.int64), 0, 127)
    velocity = np.clip(np.asarray(notes.velocity)[ok].astype(np.int64), 1, 127)
    if len(start) == 0:
        return start, end, pitch, velocity

    # Per pitch, by onset; for equal onsets the longest note first, so it is the one kept.
    order = np.lexsort((-end, start, pitch))
    start, end, pitch, velocity = start[order], end[order], pitch[order], velocity[order]
    same_pitch_next = pitch[1:] == pitch[:-1]
    dup = np.zeros(len(start), dtype=bool)
    dup[1:] = same_pitch_next & (start[1:] == start[:-1])
    start, end, pitch, velocity = start[~dup], end[~dup], pitch[~dup], velocity[~dup]
    # Onsets are now distinct per pitch, so truncating at the next onset leaves at least one tick.
    same_pitch_next = pitch[1:] == pitch[:-1]
    end[:-1] = np.where(same_pitch_next, np.minimum(end[:-1], start[1:]), end[:-1])

    order = np.lexsort((pitch, start))
    return start[order], end[order], pitch[order], velocity[order]


def _pedal_ticks(notes: Notes, tpq: int, end_tick: int) -> list[tuple[int, int, int]]:
    """(tick, kind, CC64 value) of each sustain press: down (kind 3, 127) and up (kind 1, 0), in the piece."""
    out = []
    for down, up in np.asarray(notes.pedals, dtype=np.float64).reshape(-1, 2):
        if not (np.isfinite(down) and np.isfinite(up)):
            continue
        d = int(np.clip(round(down * tpq), 0, end_tick))
        u = int(np.clip(round(up * tpq), d, end_tick))
        if u > d:
            out += [(d, 3, 127), (u, 1, 0)]
    return out


def _abs_to_delta(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> list:
    """Messages with mido's delta times from (absolute tick, message) pairs already in order."""
    out, prev = [], 0
    for tick, msg in events:
        out.append(msg.copy(time=int(tick - prev)))
        prev = tick
    return out


def build_midi_file(
    notes: Notes,
    *,
    key: tuple[int, str] | None = None,
    track_name: str = "Piano",
    program: int = 0,
    tpq: int = EXPORT_TPQ,
) -> mido.MidiFile:
    """The DAW-ready type-1 `mido.MidiFile` that `export_midi` writes (in memory, for tests and MusicXML).

    Track 0 (conductor): tempo, time signature, key signature. Track 1: name, program change, notes.
    Both tracks end on the bar line after the last note, so the file loops cleanly in a DAW.

    Args:
        notes: the piece (one part; times in beats).
        key: (tonic pitch class, "major"|"minor") to write; None estimates it (`written_key`).
        track_name: the name DAWs show for the part.
        program: General MIDI program 0-127 (0 = acoustic grand piano).
        tpq: ticks per quarter note.

    Returns:
        The file, not yet written anywhere.

    Raises:
        InvalidInputError: a bad key, program or meter, a span past MAX_BEATS, or no note to export.
    """
    if not 0 <= int(program) <= 127:
        raise InvalidInputError(f"program {program}: give a General MIDI program number 0-127")
    num, den = check_meter(notes)
    check_span(notes)
    key_name = key_signature_name(written_key(notes, key))

    start, end, pitch, velocity = _export_ticks(notes, tpq)
    if len(start) == 0:
        raise InvalidInputError("nothing to export: no notes with a positive length")

    if (num * tpq * 4) % den:  # never at 480 tpq, which every allowed denominator divides
        raise InvalidInputError(f"time signature {num}/{den}: a bar is not a whole number of ticks")
    bar = num * tpq * 4 // den
    last = int(end.max())
    end_tick = -(-last // bar) * bar  # ceil to the next bar line (a note ending on one stays there)

    mspq = _mspq(notes.tempo)
    changes = [(int(round(beat * tpq)), mido.MetaMessage("set_tempo", tempo=_mspq(bpm)))
               for beat, bpm in notes.tempos if 0 < round(beat * tpq) < end_tick]
    conductor = mido.MidiTrack(_abs_to_delta([
        (0, mido.MetaMessage("set_tempo", tempo=mspq)),
        (0, mido.MetaMessage("time_signature", numerator=num, denominator=den,
                             clocks_per_click=24, notated_32nd_notes_per_beat=8)),
        (0, mido.MetaMessage("key_signature", key=key_name)),
        *changes,
        (end_tick, mido.MetaMessage("end_of_track")),
    ]))

    # Note-offs sort before note-ons at the same tick, so a repeated pitch is not cut short; a pedal lifts
    # (kind 1) before the notes struck at its tick and goes down (kind 3) after them, as a pianist changes it.
    note_events = [(int(t), 0, int(p), 0) for t, p in zip(end, pitch, strict=True)]
    note_events += [(int(t), 2, int(p), int(v)) for t, p, v in zip(start, pitch, velocity, strict=True)]
    note_events += [(t, kind, 64, value) for t, kind, value in _pedal_ticks(notes, tpq, end_tick)]
    note_events.sort()
    body: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name=track_name)),
        (0, mido.Message("program_change", channel=0, program=int(program))),
    ]
    body += [
        (t, mido.Message("control_change", channel=0, control=64, value=v) if kind in (1, 3)
         else mido.Message("note_on", channel=0, note=p, velocity=v) if kind == 2
         else mido.Message("note_off", channel=0, note=p, velocity=0))
        for t, kind, p, v in note_events
    ]
    body.append((end_tick, mido.MetaMessage("end_of_track")))

    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.append(conductor)
    mid.tracks.append(mido.MidiTrack(_abs_to_delta(body)))
    return mid


def _mspq(bpm: float) -> int:
    """MIDI tempo: an integer number of microseconds per quarter, clipped to what the format holds."""
    return int(np.clip(round(mido.bpm2tempo(float(bpm))), 1, 0xFFFFFF))


def export_midi(
    notes: Notes,
    path: str | os.PathLike,
    *,
    force: bool = False,
    key: tuple[int, str] | None = None,
    track_name: str = "Piano",
    program: int = 0,
) -> Path:
    """Write `notes` as a DAW-ready Standard MIDI File (type 1, 480 tpq), atomically.

    Args:
        notes: the piece.
        path: the file to create.
        force: replace an existing file.
        key: (tonic pitch class, "major"|"minor"); None estimates it (`written_key`).
        track_name: the part's name.
        program: General MIDI program 0-127.

    Returns:
        `path` as a Path.

    Raises:
        InvalidInputError: `path` exists and `force` is False, its folder is missing, or the notes cannot
            be written (see `build_midi_file`).
    """
    mid = build_midi_file(notes, key=key, track_name=track_name, program=program)
    return atomic_write(path, lambda tmp: mid.save(str(tmp)), force)
