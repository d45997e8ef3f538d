"""MIDI loading and validation (symusic backend), and conversion to/from `Notes`.

Loading is strict about what a user can get wrong (missing file, not MIDI, no notes, too big)
and answers with `InvalidInputError`, never a parser traceback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mido
import numpy as np
import symusic

from emomusic.errors import InvalidInputError
from emomusic.io import atomic_write, check_input_file
from emomusic.music.attributes import estimate_key  # noqa: F401  (re-exported for exporters)
from emomusic.music.notes import Notes

MAX_MIDI_BYTES = 16 * 1024 * 1024
MAX_NOTES = 200_000
MAX_TRACKS = 256
# The longest real piece in the training data ends near beat 3,600; 65,536 beats (9 h at 120 BPM) leaves
# room for any real music while keeping tick counts inside MIDI's 28-bit delta times and int32 ticks.
MAX_BEATS = 65_536
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


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
    tpq = float(score.ticks_per_quarter)
    parts = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    if not parts:
        raise InvalidInputError(f"{name}: the MIDI file holds no pitched notes (drums only); give a file with a "
                                "pitched part")
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("time", "duration", "pitch", "velocity")}
    keep = cat["duration"] > 0
    if not keep.any():
        raise InvalidInputError(f"{name}: every note has zero length; give a file whose notes last some time")
    tempo = 120.0
    if len(score.tempos):
        mspq = float(score.tempos.numpy()["mspq"][0])
        if mspq > 0:
            tempo = float(np.clip(60e6 / mspq, 10.0, 400.0))
    ts = (4, 4)
    if len(score.time_signatures):
        t0 = score.time_signatures[0]
        if 0 < t0.numerator <= 255 and 0 < t0.denominator <= 128 and not t0.denominator & (t0.denominator - 1):
            ts = (int(t0.numerator), int(t0.denominator))
    velocity = np.clip(cat["velocity"][keep], 1, 127)
    return Notes.from_arrays(
        np.clip(cat["pitch"][keep], 0, 127), cat["time"][keep] / tpq, cat["duration"][keep] / tpq,
        velocity, tempo=tempo, time_signature=ts, source=name,
    )


def load_notes(path: str | os.PathLike) -> Notes:
    """Load a MIDI file as one merged piano part."""
    return score_to_notes(load_score(path), str(path))


def _check_span(notes: Notes) -> None:
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


def _check_meter(notes: Notes) -> tuple[int, int]:
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
    num, den = _check_meter(notes)
    _check_span(notes)
    if len(notes) and not (np.isfinite(notes.start).all() and np.isfinite(notes.duration).all()
                           and notes.start.min() >= 0):
        raise InvalidInputError("notes need finite, non-negative start times and finite durations")
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, qpm=float(notes.tempo)))
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


# --------------------------------------------------------------------------------------------------
# DAW-ready export
# --------------------------------------------------------------------------------------------------

EXPORT_TPQ = 480

# Key-signature names as mido spells them, with the conventional (fewest accidentals) spelling.
_MAJOR_KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_KEY_NAMES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
KEY_MODES = ("major", "minor")


def _key_name(key: tuple[int, str]) -> str:
    """mido key-signature name for (tonic, mode), or InvalidInputError for anything else."""
    try:
        tonic, mode = key
        tonic_ok = isinstance(tonic, (int, np.integer)) and 0 <= int(tonic) <= 11
    except (TypeError, ValueError):
        tonic_ok, mode = False, None
    if not tonic_ok or mode not in KEY_MODES:
        raise InvalidInputError(f"key {key!r}: give (tonic pitch class 0-11, 'major' or 'minor')")
    return (_MAJOR_KEY_NAMES if mode == "major" else _MINOR_KEY_NAMES)[int(tonic)]


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
    """The DAW-ready type-1 `mido.MidiFile` that `export_midi` writes (kept separate for tests/reuse).

    Track 0 (conductor): tempo, time signature, key signature. Track 1: name, program change, notes.
    Both tracks end on the bar line after the last note, so the file loops cleanly in a DAW.
    """
    if not 0 <= int(program) <= 127:
        raise InvalidInputError(f"program {program}: give a General MIDI program number 0-127")
    num, den = _check_meter(notes)
    _check_span(notes)
    key_name = _key_name(estimate_key(notes) if key is None else key)

    start, end, pitch, velocity = _export_ticks(notes, tpq)
    if len(start) == 0:
        raise InvalidInputError("nothing to export: no notes with a positive length")

    if (num * tpq * 4) % den:  # never at 480 tpq, which every allowed denominator divides
        raise InvalidInputError(f"time signature {num}/{den}: a bar is not a whole number of ticks")
    bar = num * tpq * 4 // den
    last = int(end.max())
    end_tick = -(-last // bar) * bar  # ceil to the next bar line (a note ending on one stays there)

    # MIDI tempo is an integer number of microseconds per quarter; clip to what the format holds.
    mspq = int(np.clip(round(mido.bpm2tempo(float(notes.tempo))), 1, 0xFFFFFF))
    conductor = mido.MidiTrack(_abs_to_delta([
        (0, mido.MetaMessage("set_tempo", tempo=mspq)),
        (0, mido.MetaMessage("time_signature", numerator=num, denominator=den,
                             clocks_per_click=24, notated_32nd_notes_per_beat=8)),
        (0, mido.MetaMessage("key_signature", key=key_name)),
        (end_tick, mido.MetaMessage("end_of_track")),
    ]))

    # Note-offs sort before note-ons at the same tick, so a repeated pitch is not cut short.
    note_events = [(int(t), 0, int(p), 0) for t, p in zip(end, pitch, strict=True)]
    note_events += [(int(t), 1, int(p), int(v)) for t, p, v in zip(start, pitch, velocity, strict=True)]
    note_events.sort()
    body: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name=track_name)),
        (0, mido.Message("program_change", channel=0, program=int(program))),
    ]
    body += [
        (t, mido.Message("note_on", channel=0, note=p, velocity=v) if on
         else mido.Message("note_off", channel=0, note=p, velocity=0))
        for t, on, p, v in note_events
    ]
    body.append((end_tick, mido.MetaMessage("end_of_track")))

    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.append(conductor)
    mid.tracks.append(mido.MidiTrack(_abs_to_delta(body)))
    return mid


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

    `key` is (tonic pitch class, "major"|"minor"); None estimates it (`estimate_key`). Raises
    `InvalidInputError` if `path` exists and `force` is False, or its directory does not exist.
    """
    mid = build_midi_file(notes, key=key, track_name=track_name, program=program)
    return atomic_write(path, lambda tmp: mid.save(str(tmp)), force)


def export_musicxml(notes: Notes, path: str | os.PathLike, force: bool = False,
                    key: tuple[int, str] | None = None) -> Path:
    """Write `notes` as MusicXML (via music21's MIDI import) for notation programs, atomically."""
    mid = build_midi_file(notes, key=key)

    def write(tmp: Path) -> None:
        import music21  # heavy import; only this exporter needs it

        with tempfile.TemporaryDirectory(prefix="emomusic-") as tmpdir:
            midi_path = Path(tmpdir) / "score.mid"
            mid.save(str(midi_path))
            score = music21.converter.parse(str(midi_path), format="midi")
        score.write("musicxml", fp=str(tmp))

    return atomic_write(path, write, force)
