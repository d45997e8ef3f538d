"""MusicTokenizer: exact REMI round trips, condition prefixes, persistence and control bins.

Fixtures are built in code on the tokenizer's own grid: onsets and durations on the 1/8-beat grid
(durations up to 4 beats, where every such value has a token), pitches 21..108 and velocities
taken from the vocabulary's velocity bins, so encode → decode must give the notes back exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.music.attributes import CATEGORICAL_CONTROLS, CONTROLS
from emomusic.music.notes import Notes
from emomusic.music.tokenizer import (
    BAR,
    BOS,
    CTL,
    DURATION,
    EMOTION,
    EOS,
    GENRE,
    GENRES,
    PAD,
    PITCH,
    POSITION,
    QUADRANTS,
    TEMPO,
    TIMESIG,
    TYPE_NAMES,
    VELOCITY,
    ControlBins,
    MusicTokenizer,
)


@pytest.fixture(scope="module")
def tk() -> MusicTokenizer:
    return MusicTokenizer()


@pytest.fixture(scope="module")
def velocity_bins(tk: MusicTokenizer) -> np.ndarray:
    return np.array(sorted(int(k.split("_")[1]) for k in tk.vocab if k.startswith("Velocity")))


def _grid_piece(seed: int, time_signature: tuple[int, int], velocities: np.ndarray, n: int = 80,
                bars: int = 4) -> Notes:
    """Random notes on the 1/8-beat grid, one per (pitch, onset), durations 1/8..4 beats."""
    rng = np.random.default_rng(seed)
    bar_beats = time_signature[0] * 4 / time_signature[1]
    steps = int(round(bar_beats * 8 * bars))
    pitch = np.concatenate([[21, 108], rng.integers(21, 109, n - 2)])
    start8 = rng.integers(0, steps, n)
    dur8 = rng.integers(1, 33, n)
    vel = rng.choice(velocities, n)
    _, first = np.unique(np.stack([pitch, start8], 1), axis=0, return_index=True)  # miditok drops dups
    return Notes.from_arrays(pitch[first], start8[first] / 8, dur8[first] / 8, vel[first],
                             tempo=96.0, time_signature=time_signature)


def _assert_same_notes(a: Notes, b: Notes) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.pitch, b.pitch)
    np.testing.assert_allclose(a.start, b.start, atol=1e-9)
    np.testing.assert_allclose(a.duration, b.duration, atol=1e-9)
    np.testing.assert_array_equal(a.velocity, b.velocity)


# ------------------------------------------------------------------ vocabulary
def test_velocity_bins_are_sixteen_levels_up_to_127(velocity_bins: np.ndarray) -> None:
    assert len(velocity_bins) == 16
    assert velocity_bins[-1] == 127 and velocity_bins[0] >= 1


def test_every_condition_token_is_in_the_vocabulary(tk: MusicTokenizer) -> None:
    for g in GENRES:
        assert tk.types[tk.vocab[f"Genre_{g}"]] == GENRE
    for q in QUADRANTS:
        assert tk.types[tk.vocab[f"Emotion_{q}"]] == EMOTION
    for name, n in CONTROLS.items():
        for b in range(n):
            assert tk.types[tk.token_id(f"Ctl-{name.replace('_', '-')}_{b}")] == CTL
    assert tk.types[tk.pad_id] == PAD and tk.types[tk.bos_id] == BOS and tk.types[tk.eos_id] == EOS
    assert tk.types[tk.bar_id] == BAR
    assert len(TYPE_NAMES) == 14 and not (tk.types == len(TYPE_NAMES) - 1).any()  # no Harmony tokens unless asked


def test_type_table_values(tk: MusicTokenizer) -> None:
    assert tk.values[tk.vocab["Pitch_60"]] == 60
    assert tk.values[tk.vocab["Position_12"]] == 1.5  # 8 positions per beat
    assert tk.values[tk.vocab["Duration_1.4.8"]] == 1.5
    assert tk.values[tk.vocab["Duration_4.2.4"]] == 4.5
    assert tk.timesig[tk.vocab["TimeSig_6/8"]] == (6, 8)
    for kind in (PITCH, VELOCITY, DURATION, POSITION, TEMPO, TIMESIG):
        assert len(tk.ids_of_type(kind)) > 0
    assert "Pitch_21" in tk.vocab and "Pitch_108" in tk.vocab and "Pitch_20" not in tk.vocab


@pytest.mark.xfail(strict=True, reason=(
    "tokenizer.py _remi_config passes pitch_range=(PIANO_BOTTOM, PIANO_TOP + 1) = (21, 109), but miditok's "
    "range is inclusive, so the vocabulary has Pitch_109 (above the piano's C8 = PIANO_TOP, the range "
    "Notes.transpose clips to) and the sampler masks it (grammar_table); (21, 108) fixes the vocabulary but "
    "changes its size (retrain)"))
def test_pitch_vocabulary_is_the_piano_range(tk: MusicTokenizer) -> None:
    pitches = tk.values[tk.ids_of_type(PITCH)]
    assert pitches.min() == 21 and pitches.max() == 108


def test_unknown_token_name_is_invalid_input(tk: MusicTokenizer) -> None:
    with pytest.raises(InvalidInputError, match="unknown token"):
        tk.token_id("Pitch_200")


# ------------------------------------------------------------------ encode / decode
@pytest.mark.parametrize("time_signature", [(4, 4), (3, 4), (6, 8)])
@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_is_exact_on_the_grid(tk, velocity_bins, time_signature, seed) -> None:
    notes = _grid_piece(seed, time_signature, velocity_bins)
    ids = tk.encode(notes)
    assert ids.dtype == np.int64 and ids.ndim == 1
    back = tk.decode(ids)
    _assert_same_notes(notes, back)
    assert back.time_signature == time_signature


def test_round_trip_of_every_duration_up_to_four_beats(tk, velocity_bins) -> None:
    durations = np.arange(1, 33) / 8  # 1/8 .. 4 beats, one note per bar
    starts = np.arange(len(durations)) * 4.0
    notes = Notes.from_arrays(np.full(32, 60), starts, durations, np.full(32, velocity_bins[5]))
    _assert_same_notes(notes, tk.decode(tk.encode(notes)))


def test_round_trip_of_every_velocity_bin(tk, velocity_bins) -> None:
    n = len(velocity_bins)
    notes = Notes.from_arrays(np.arange(n) + 40, np.arange(n) * 0.5, np.full(n, 0.5), velocity_bins)
    _assert_same_notes(notes, tk.decode(tk.encode(notes)))


def test_off_bin_velocity_goes_to_the_nearest_bin(tk, velocity_bins) -> None:
    raw = np.array([1, 20, 64, 100, 126])
    notes = Notes.from_arrays(np.arange(5) + 60, np.arange(5), np.ones(5), raw)
    got = tk.decode(tk.encode(notes)).velocity
    expected = [velocity_bins[np.argmin(np.abs(velocity_bins - v))] for v in raw]
    np.testing.assert_array_equal(got, expected)


def test_tempo_is_kept_within_one_log_bin(tk) -> None:
    for bpm in (60.0, 96.0, 120.0, 180.0):
        notes = Notes.from_arrays([60], [0], [1], [63], tempo=bpm)
        assert abs(tk.decode(tk.encode(notes)).tempo / bpm - 1) < 0.04


def test_duplicated_notes_are_removed(tk) -> None:
    notes = Notes.from_arrays([60, 60, 60, 64], [0, 0, 0, 1], [1, 1, 1, 1], [63, 63, 63, 63])
    back = tk.decode(tk.encode(notes))
    np.testing.assert_array_equal(back.pitch, [60, 64])
    np.testing.assert_allclose(back.start, [0, 1])


def test_a_pitch_sampled_twice_at_one_position_decodes_to_one_note(tk) -> None:
    """A generator can write Pitch_60 twice after one Position; the piece (and its count) holds one."""
    ids = tk.encode(Notes.from_arrays([60, 64], [0, 0], [1, 1], [63, 63]))
    dur = ids[-1]  # the last note's Duration token
    names = [tk.token_id(n) for n in ("Pitch_60", f"Velocity_{int(tk.values[ids[-2]])}", "Position_0")]
    longer = next(i for i in tk.ids_of_type(DURATION) if tk.values[i] > tk.values[dur])
    doubled = np.concatenate([ids, [names[0], names[1], longer]])  # Pitch_60 again, held longer
    back = tk.decode(doubled)
    np.testing.assert_array_equal(back.pitch, [60, 64])
    assert back.duration[0] == tk.values[longer]  # the longest of the two is the one kept


def test_deduplicate_keeps_the_longest_then_loudest() -> None:
    notes = Notes.from_arrays([60, 60, 60, 62], [0, 0, 0, 0], [1, 2, 2, 1], [50, 40, 90, 70])
    out = notes.deduplicate()
    assert list(zip(out.pitch.tolist(), out.duration.tolist(), out.velocity.tolist(), strict=True)) == [
        (60, 2, 90), (62, 1, 70)]
    assert out.deduplicate() is out


def test_empty_piece_gives_no_tokens_and_back(tk) -> None:
    empty = Notes.from_arrays([], [], [], [])
    assert tk.encode(empty).shape == (0,)
    assert len(tk.decode([])) == 0


def test_decode_of_truncated_sequences_keeps_whole_notes_only(tk, velocity_bins) -> None:
    notes = _grid_piece(3, (4, 4), velocity_bins, n=30, bars=2)
    ids = tk.encode(notes)
    full = tk.decode(ids)
    counts = [len(tk.decode(ids[:k])) for k in range(len(ids) + 1)]
    assert counts[0] == 0 and counts[-1] == len(full)
    assert all(b - a in (0, 1) for a, b in zip(counts, counts[1:], strict=False))  # one note per Duration
    n_dur = int((tk.types[ids] == DURATION).sum())
    assert n_dur == len(full)


def test_decode_stops_at_eos_and_ignores_conditions(tk, velocity_bins) -> None:
    notes = _grid_piece(4, (3, 4), velocity_bins, n=20, bars=2)
    ids = tk.encode(notes)
    prefix = tk.condition_ids("pop", emotion="Q2")
    junk = tk.encode(Notes.from_arrays([30], [0], [1], [63]))
    seq = np.concatenate([prefix, ids, [tk.eos_id], junk])
    _assert_same_notes(notes, tk.decode(seq))


# ------------------------------------------------------------------ conditions
def test_condition_ids_with_controls(tk) -> None:
    controls = {name: n - 1 for name, n in CONTROLS.items()}
    ids = tk.condition_ids("classical", controls=controls)
    assert len(ids) == 1 + 1 + len(CONTROLS)
    assert ids[0] == tk.bos_id and ids[1] == tk.vocab["Genre_classical"]
    expected = [f"Ctl-{k.replace('_', '-')}_{n - 1}" for k, n in CONTROLS.items()]
    assert [tk.itos[i] for i in ids[2:]] == expected
    assert all(tk.types[i] == CTL for i in ids[2:])


def test_condition_ids_with_emotion_and_bare(tk) -> None:
    expected = [tk.bos_id, tk.vocab["Genre_folk"], tk.vocab["Emotion_Q3"]]
    assert tk.condition_ids("folk", emotion="Q3") == expected
    assert tk.condition_ids() == [tk.bos_id]


@pytest.mark.parametrize("kwargs", [
    {"genre": "polka"},
    {"genre": "pop", "emotion": "Q5"},
    {"genre": "pop", "controls": {name: n for name, n in CONTROLS.items()}},  # one past the last bin
])
def test_unknown_condition_is_invalid_input(tk, kwargs) -> None:
    with pytest.raises(InvalidInputError) as err:
        tk.condition_ids(**kwargs)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ control bins
def _control_rows(n: int = 300, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"tempo": rng.uniform(50, 180), "mode": float(rng.integers(2)), "tonic": float(rng.integers(12)),
             "note_density": rng.uniform(0.5, 8), "pitch_mean": rng.uniform(45, 75),
             "pitch_range": rng.uniform(5, 50), "velocity_mean": rng.uniform(30, 110),
             "polyphony": rng.uniform(1, 5), "duration_mean": rng.uniform(0.1, 2),
             "pitch_class_entropy": rng.uniform(1.5, 3.5)} for _ in range(n)]


def test_control_bins_are_equal_frequency() -> None:
    rows = _control_rows()
    cb = ControlBins.fit(rows)
    for name, n in CONTROLS.items():
        if name in CATEGORICAL_CONTROLS:
            assert cb.edges[name] == [] and cb.values[name] == [float(b) for b in range(n)]
            continue
        assert len(cb.edges[name]) == n - 1 and len(cb.values[name]) == n
        assert cb.edges[name] == sorted(cb.edges[name])
        counts = np.bincount([cb.to_bins(r)[name] for r in rows], minlength=n)
        assert counts.min() >= len(rows) // n - 2 and counts.max() <= len(rows) // n + 2


def test_bin_values_map_back_to_their_bins() -> None:
    cb = ControlBins.fit(_control_rows())
    for b in range(3):
        bins = {name: min(b, n - 1) for name, n in CONTROLS.items()}
        assert cb.to_bins(cb.to_values(bins)) == bins


def test_categorical_controls_round_and_clip() -> None:
    cb = ControlBins.fit(_control_rows())
    raw = {**_control_rows(1, seed=9)[0], "mode": 1.4, "tonic": 15.0}
    bins = cb.to_bins(raw)
    assert bins["mode"] == 1 and bins["tonic"] == 11
    assert set(bins) == set(CONTROLS)


def test_to_bins_extremes() -> None:
    cb = ControlBins.fit(_control_rows())
    low = cb.to_bins({name: -1e9 for name in CONTROLS})
    high = cb.to_bins({name: 1e9 for name in CONTROLS})
    for name, n in CONTROLS.items():
        assert low[name] == 0 and high[name] == n - 1


# ------------------------------------------------------------------ persistence
def test_to_dict_json_from_dict_round_trip(velocity_bins) -> None:
    cb = ControlBins.fit(_control_rows())
    tk = MusicTokenizer(cb)
    state = json.loads(json.dumps(tk.to_dict()))
    back = MusicTokenizer.from_dict(state)
    assert back.vocab == tk.vocab and len(back) == len(tk)
    assert back.control_bins == cb
    np.testing.assert_array_equal(back.types, tk.types)
    np.testing.assert_array_equal(back.values, tk.values)
    notes = _grid_piece(5, (6, 8), velocity_bins, n=40)
    np.testing.assert_array_equal(back.encode(notes), tk.encode(notes))


def test_from_dict_without_control_bins() -> None:
    tk = MusicTokenizer()
    back = MusicTokenizer.from_dict(json.loads(json.dumps(tk.to_dict())))
    assert back.control_bins is None and back.vocab == tk.vocab


def test_from_dict_refuses_a_changed_vocabulary() -> None:
    state = json.loads(json.dumps(MusicTokenizer().to_dict()))
    state["vocab_size"] += 1
    with pytest.raises(InvalidInputError, match="vocabulary size"):
        MusicTokenizer.from_dict(state)


def test_the_tokenizer_imports_miditok_without_torch_and_leaves_its_data_loaders_importable() -> None:
    import subprocess
    import sys

    code = ("import sys; import emomusic.music.tokenizer; assert 'torch' not in sys.modules; "
            "from miditok.pytorch_data import DatasetMIDI; assert 'torch' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-1000:]
