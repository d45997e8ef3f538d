"""Property-based fuzzing (hypothesis) of MIDI loading, tokenisation and export: >10,000 cases in all.

The only exception any of these may raise is the documented `InvalidInputError` (one line); whatever
they return must be sane: finite, non-negative times, positive lengths, MIDI ranges, a usable tempo.
Seeded (`derandomize=True`) so CI runs the same cases every time and a failure reproduces.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emomusic.errors import InvalidInputError
from emomusic.export.midi import build_midi_file, export_midi
from emomusic.music.midi import MAX_NOTES, load_notes
from emomusic.music.notes import Notes
from emomusic.music.tokenizer import MusicTokenizer

pytestmark = pytest.mark.fuzz

# Case counts per property; their sum is the "at least 10,000 generated cases".
CASES = {"random_bytes": 2600, "mutated_midi": 3000, "encode": 800, "decode": 2400, "export": 1000,
         "export_file": 300}
assert sum(CASES.values()) >= 10_000


def fuzz_settings(name: str):
    return settings(max_examples=CASES[name], deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def _scratch() -> Path:
    """A RAM-backed folder when there is one: thousands of tiny files cost seconds on a real disk."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="emomusic-fuzz-", dir=base))


_DIR = _scratch()
TK = MusicTokenizer()


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


def _load_bytes(data: bytes, name: str = "fuzz.mid") -> Notes | None:
    """load_notes on these bytes: Notes, or None after a one-line InvalidInputError."""
    path = _DIR / name
    path.write_bytes(data)
    try:
        return load_notes(path)
    except InvalidInputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


def _assert_sane(notes: Notes) -> None:
    assert 1 <= len(notes) <= MAX_NOTES
    assert np.isfinite(notes.start).all() and (notes.start >= 0).all()
    assert np.isfinite(notes.duration).all() and (notes.duration > 0).all()
    assert ((notes.pitch >= 0) & (notes.pitch <= 127)).all()
    assert ((notes.velocity >= 1) & (notes.velocity <= 127)).all()
    assert 10 <= notes.tempo <= 400
    num, den = notes.time_signature
    assert num >= 1 and den >= 1


# ------------------------------------------------------------------------------------------------ loading


@fuzz_settings("random_bytes")
@given(st.one_of(st.binary(max_size=512), st.binary(max_size=256).map(lambda b: b"MThd" + b),
                 st.binary(max_size=256).map(lambda b: b"MThd\x00\x00\x00\x06" + b)))
def test_loading_random_bytes(data: bytes) -> None:
    notes = _load_bytes(data)
    if notes is not None:
        _assert_sane(notes)


def _seed_files() -> list[bytes]:
    """Valid files made with mido: type 0 and 1, running status, tempo/time/key meta, drums, two tracks."""
    files = []
    for kind in range(4):
        mid = mido.MidiFile(type=0 if kind == 0 else 1, ticks_per_beat=(96, 480, 384, 1)[kind])
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=(500000, 250000, 1000000, 1)[kind]),
                                mido.MetaMessage("time_signature", numerator=(4, 3, 6, 7)[kind], denominator=4)])
        for i in range(6):
            ch = 9 if kind == 3 and i % 2 else 0
            track.append(mido.Message("note_on", note=60 + i, velocity=64 + i, channel=ch, time=10 * i))
            track.append(mido.Message("note_off", note=60 + i, velocity=0, channel=ch, time=5 + kind))
        mid.tracks.append(track)
        if kind:
            mid.tracks.append(mido.MidiTrack([mido.Message("program_change", program=kind),
                                              mido.Message("note_on", note=48, velocity=90, time=0),
                                              mido.Message("note_on", note=48, velocity=0, time=200)]))
        buf = io.BytesIO()
        mid.save(file=buf)
        files.append(buf.getvalue())
    return files


SEEDS = _seed_files()

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def _mutate(data: bytes, mutations: list) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in mutations:
        pos %= max(1, len(buf))
        if op == "flip" and buf:
            buf[pos] = arg
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos:pos + arg]
        elif op == "truncate":
            del buf[pos:]
    return bytes(buf)


@fuzz_settings("mutated_midi")
@given(st.sampled_from(range(len(SEEDS))), st.lists(_mutation, min_size=1, max_size=6))
def test_loading_mutated_midi(seed: int, mutations: list) -> None:
    notes = _load_bytes(_mutate(SEEDS[seed], mutations))
    if notes is not None:
        _assert_sane(notes)


# ------------------------------------------------------------------------------------------------ tokenisation

_time_signatures = st.one_of(st.sampled_from([(4, 4), (3, 4), (2, 4), (6, 8), (5, 4), (12, 8), (7, 8)]),
                             st.tuples(st.integers(-2, 300), st.integers(-2, 300)))
_wild_floats = st.one_of(st.floats(-10, 600), st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def random_notes(draw, wild: bool = True) -> Notes:
    """Notes as a user of the API might build them: mostly musical, sometimes absurd (when `wild`)."""
    n = draw(st.integers(0, 40))
    times = _wild_floats if wild else st.floats(0, 600)
    lengths = _wild_floats if wild else st.floats(0.01, 16)
    return Notes.from_arrays(
        draw(st.lists(st.integers(-20, 150) if wild else st.integers(21, 108), min_size=n, max_size=n)),
        draw(st.lists(times, min_size=n, max_size=n)),
        draw(st.lists(lengths, min_size=n, max_size=n)),
        draw(st.lists(st.integers(-20, 300) if wild else st.integers(1, 127), min_size=n, max_size=n)),
        tempo=draw(st.one_of(st.floats(30, 260), _wild_floats) if wild else st.floats(30, 260)),
        time_signature=draw(_time_signatures if wild else st.sampled_from([(4, 4), (3, 4), (6, 8)])),
    )


@fuzz_settings("encode")
@given(random_notes())
def test_encode_then_decode(notes: Notes) -> None:
    try:
        ids = TK.encode(notes)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
        return
    assert ids.ndim == 1 and ((ids >= 0) & (ids < len(TK))).all()
    back = TK.decode(ids)
    assert len(back) <= len(notes)
    if len(back):
        assert np.isfinite(back.start).all() and (back.start >= 0).all() and (back.duration > 0).all()


@fuzz_settings("decode")
@given(st.lists(st.integers(0, len(TK) - 1), max_size=300))
def test_decode_any_token_sequence(ids: list[int]) -> None:
    """The sampler can emit any id: decoding never fails, and what it gives exports to a valid file."""
    notes = TK.decode(ids)
    if not len(notes):
        return
    assert np.isfinite(notes.start).all() and (notes.start >= 0).all() and (notes.duration > 0).all()
    assert ((notes.pitch >= 21) & (notes.pitch <= 109)).all()
    mid = build_midi_file(notes)
    assert sum(m.type == "note_on" for m in mid.tracks[1]) >= 1


# ------------------------------------------------------------------------------------------------ export


def _check_reload(notes: Notes, path: Path) -> None:
    """Whatever we write, we (and so any DAW) can read back, with no note added or moved later."""
    back = load_notes(path)
    _assert_sane(back)
    ok = np.isfinite(notes.start) & np.isfinite(notes.duration) & (notes.duration > 0)
    assert len(back) <= int(ok.sum())
    assert back.start.max() <= np.maximum(notes.start[ok], 0).max() + 1 / 480  # one tick of rounding


@fuzz_settings("export")
@given(random_notes())
def test_export_then_reload(notes: Notes) -> None:
    """The exporter's content (in memory, as `export_midi` writes it) always reloads."""
    try:
        mid = build_midi_file(notes)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
        return
    path = _DIR / "export.mid"
    mid.save(str(path))
    _check_reload(notes, path)


@fuzz_settings("export_file")
@given(random_notes(), st.booleans())
def test_export_midi_file_is_all_or_nothing(notes: Notes, force: bool) -> None:
    path = _DIR / "export_file.mid"
    path.unlink(missing_ok=True)
    try:
        export_midi(notes, path, force=force)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
        assert not path.exists()  # no partial output
        return
    _check_reload(notes, path)
    assert not [p for p in _DIR.iterdir() if p.name.startswith(".")]  # no temp files left
