"""MIDI output: the DAW-ready Standard MIDI File every piece is written as (`.mid`, `.midi`).

Reading MIDI lives in :mod:`emomusic.music.midi`; this module only writes. The written key signature
is decided once, by `written_key`, for MIDI and MusicXML alike, so a score and its MIDI never disagree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mido
import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.io import atomic_write
from emomusic.music.attributes import signature_key
from emomusic.music.midi import check_meter, check_span
from emomusic.music.notes import Notes
from emomusic.music.tracks import Arrangement, Track
from emomusic.vocab.constants import KEY_MODES, MAJOR_KEY_NAMES, MINOR_KEY_NAMES, PROVENANCE_PREFIX

__all__ = ["EXPORT_TPQ", "build_midi_file", "export_midi", "export_stems", "key_signature_name", "stem_paths",
           "written_key"]

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


def _channels(tracks: tuple[Track, ...]) -> list[int]:
    """MIDI channel of each track: the kit on channel 10 (index 9), the others in order around it."""
    free = [c for c in range(16) if c != 9]
    pitched = sum(1 for t in tracks if not t.drums)
    if pitched > len(free):
        raise InvalidInputError(f"{pitched} pitched tracks: a MIDI file holds at most {len(free)} besides drums")
    it = iter(free)
    return [9 if t.drums else next(it) for t in tracks]


def _part(track: Track, channel: int, tpq: int, end_tick: int) -> mido.MidiTrack:
    """One track chunk: name, program change, notes and sustain pedal on `channel`, ending at `end_tick`."""
    start, end, pitch, velocity = _export_ticks(track.notes, tpq)
    # Note-offs sort before note-ons at the same tick, so a repeated pitch is not cut short; a pedal lifts
    # (kind 1) before the notes struck at its tick and goes down (kind 3) after them, as a pianist changes it.
    note_events = [(int(t), 0, int(p), 0) for t, p in zip(end, pitch, strict=True)]
    note_events += [(int(t), 2, int(p), int(v)) for t, p, v in zip(start, pitch, velocity, strict=True)]
    note_events += [(t, kind, 64, value) for t, kind, value in _pedal_ticks(track.notes, tpq, end_tick)]
    note_events.sort()
    body: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name=track.name)),
        (0, mido.Message("program_change", channel=channel, program=max(0, int(track.program)))),
    ]
    body += [
        (t, mido.Message("control_change", channel=channel, control=64, value=v) if kind in (1, 3)
         else mido.Message("note_on", channel=channel, note=p, velocity=v) if kind == 2
         else mido.Message("note_off", channel=channel, note=p, velocity=0))
        for t, kind, p, v in note_events
    ]
    body.append((end_tick, mido.MetaMessage("end_of_track")))
    return mido.MidiTrack(_abs_to_delta(body))


def build_midi_file(
    notes: Notes | Arrangement,
    *,
    key: tuple[int, str] | None = None,
    track_name: str = "Piano",
    program: int = 0,
    tpq: int = EXPORT_TPQ,
    end_beat: float | None = None,
    provenance: dict | None = None,
) -> mido.MidiFile:
    """The DAW-ready type-1 `mido.MidiFile` that `export_midi` writes (in memory, for tests and MusicXML).

    Track 0 (conductor): tempo, time signature, key signature. Then one track per part: its name,
    program change, notes and pedal, on its own channel (drums on channel 10). Every track ends on the
    bar line after the last note of the piece, so the file loops cleanly in a DAW.

    Args:
        notes: the piece: one part (`Notes`, written as `track_name` with `program`) or an `Arrangement`
            (its tracks' names and programs; `track_name` and `program` are not used).
        key: (tonic pitch class, "major"|"minor") to write; None estimates it from the pitched notes
            (`written_key`).
        track_name: the name DAWs show for a single part.
        program: General MIDI program 0-127 of a single part (0 = acoustic grand piano).
        tpq: ticks per quarter note.
        end_beat: the file runs at least to the bar line after this beat, notes or not (the stems of
            one piece end together); None: after the last note.
        provenance: the request the piece was made from (`GenerationRequest.provenance`), written as a
            text event on the conductor track (`PROVENANCE_PREFIX` + JSON) for `emomusic regenerate`.

    Returns:
        The file, not yet written anywhere.

    Raises:
        InvalidInputError: a bad key, program or meter, a span past MAX_BEATS, no note to export, or more
            pitched tracks than MIDI channels.
    """
    if isinstance(notes, Arrangement):
        tracks, pitched = notes.tracks, notes.pitched()
    else:
        if not 0 <= int(program) <= 127:
            raise InvalidInputError(f"program {program}: give a General MIDI program number 0-127")
        tracks, pitched = (Track(track_name, int(program), "piano", notes),), notes
    conductor_notes = tracks[0].notes
    num, den = check_meter(conductor_notes)
    for t in tracks:
        check_span(t.notes)
    key_name = key_signature_name(written_key(pitched, key) if key is not None or len(pitched) else (0, "major"))

    last = 0
    for t in tracks:
        start, end, _, _ = _export_ticks(t.notes, tpq)
        last = max(last, int(end.max()) if len(end) else 0)
    if end_beat is not None:
        last = max(last, int(round(end_beat * tpq)))
    if last == 0:
        raise InvalidInputError("nothing to export: no notes with a positive length")

    if (num * tpq * 4) % den:  # never at 480 tpq, which every allowed denominator divides
        raise InvalidInputError(f"time signature {num}/{den}: a bar is not a whole number of ticks")
    bar = num * tpq * 4 // den
    end_tick = -(-last // bar) * bar  # ceil to the next bar line (a note ending on one stays there)

    mspq = _mspq(conductor_notes.tempo)
    changes = [(int(round(beat * tpq)), mido.MetaMessage("set_tempo", tempo=_mspq(bpm)))
               for beat, bpm in conductor_notes.tempos if 0 < round(beat * tpq) < end_tick]
    conductor = mido.MidiTrack(_abs_to_delta([
        (0, mido.MetaMessage("set_tempo", tempo=mspq)),
        (0, mido.MetaMessage("time_signature", numerator=num, denominator=den,
                             clocks_per_click=24, notated_32nd_notes_per_beat=8)),
        (0, mido.MetaMessage("key_signature", key=key_name)),
        *([(0, mido.MetaMessage("text", text=PROVENANCE_PREFIX + json.dumps(provenance, ensure_ascii=True,
                                                                           sort_keys=True)))]
          if provenance else []),
        *changes,
        (end_tick, mido.MetaMessage("end_of_track")),
    ]))

    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.append(conductor)
    for t, channel in zip(tracks, _channels(tracks), strict=True):
        mid.tracks.append(_part(t, channel, tpq, end_tick))
    return mid


def _mspq(bpm: float) -> int:
    """MIDI tempo: an integer number of microseconds per quarter, clipped to what the format holds."""
    return int(np.clip(round(mido.bpm2tempo(float(bpm))), 1, 0xFFFFFF))


def export_midi(
    notes: Notes | Arrangement,
    path: str | os.PathLike,
    *,
    force: bool = False,
    key: tuple[int, str] | None = None,
    track_name: str = "Piano",
    program: int = 0,
    provenance: dict | None = None,
) -> Path:
    """Write `notes` as a DAW-ready Standard MIDI File (type 1, 480 tpq), atomically.

    Args:
        notes: the piece: one part, or an `Arrangement` (one track per part).
        path: the file to create.
        force: replace an existing file.
        key: (tonic pitch class, "major"|"minor"); None estimates it (`written_key`).
        track_name: a single part's name.
        program: General MIDI program 0-127.
        provenance: the request the piece was made from, carried in a text event (`build_midi_file`).

    Returns:
        `path` as a Path.

    Raises:
        InvalidInputError: `path` exists and `force` is False, its folder is missing, or the notes cannot
            be written (see `build_midi_file`).
    """
    mid = build_midi_file(notes, key=key, track_name=track_name, program=program, provenance=provenance)
    return atomic_write(path, lambda tmp: mid.save(str(tmp)), force)


def stem_paths(names: list[str], path: str | os.PathLike) -> list[Path]:
    """Where `export_stems` writes each track: `<stem>-<track name>.mid` beside `path`, names made safe.

    Args:
        names: the track names, in order.
        path: the main output file (its folder and stem are used).

    Returns:
        One path per track, in track order.
    """
    from emomusic.export.names import safe_stem

    path = Path(path)
    return [path.with_name(f"{path.stem}-{safe_stem(n, 40, f'track{i + 1}').lower()}.mid")
            for i, n in enumerate(names)]


def export_stems(arrangement: Arrangement, path: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """One MIDI file per track (`stem_paths`), for DAW users who import parts one by one.

    Every stem carries the whole piece's tempo, metre and key signature (the key of all pitched parts
    together, so the stems agree with each other and with the full file) and runs to the same last bar.

    Args:
        arrangement: the tracks.
        path: the main output file; stems are written beside it.
        force: replace existing files.

    Returns:
        The stems written, in track order.

    Raises:
        InvalidInputError: a stem exists (without force) or cannot be written; nothing is written then
            unless every stem can be.
    """
    paths = stem_paths([t.name for t in arrangement.tracks], path)
    for p in paths:
        if p.exists() and not force:
            raise InvalidInputError(f"{p}: already exists; pass --force to overwrite")
    pitched = arrangement.pitched()
    key = written_key(pitched) if len(pitched) else (0, "major")
    end = arrangement.end
    files = []
    for t in arrangement.tracks:
        files.append(build_midi_file(Arrangement((t,), arrangement.name), key=key, end_beat=end))
    return [atomic_write(p, lambda tmp, m=m: m.save(str(tmp)), True) for p, m in zip(paths, files, strict=True)]
