"""Beat, metre and downbeat tracking from performance MIDI, and re-quantisation onto the tracked grid."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

pytest.importorskip("librosa", reason="beat tracking needs librosa")

from emomusic.errors import InvalidInputError  # noqa: E402
from emomusic.music import beats  # noqa: E402

BPM = 100.0
BASS = 36
CHORDS = ((60, 64, 67), (60, 65, 69), (59, 62, 67), (60, 64, 67))  # C F G C, one per bar


def waltz(path, bars: int = 40, seed: int = 0) -> None:
    """A 3/4 performance at 100 BPM, written at a nominal 120 BPM as transcriptions are: a loud, long
    bass note and a new chord on each downbeat, soft short chords on beats 2 and 3, +-10 ms jitter."""
    rng = np.random.default_rng(seed)
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, qpm=120.0))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    ticks_per_s = 960.0  # 480 ticks per quarter at 120 quarters per minute
    beat_s = 60.0 / BPM
    for bar in range(bars):
        chord = CHORDS[bar % len(CHORDS)]
        for k in range(3):
            t = (0.5 + (bar * 3 + k) * beat_s + rng.uniform(-0.01, 0.01)) * ticks_per_s
            notes = [(BASS, 100, 2.8 * beat_s)] if k == 0 else []
            notes += [(p, 90 if k == 0 else 55, (0.9 if k == 0 else 0.4) * beat_s) for p in chord]
            for pitch, vel, dur in notes:
                track.notes.append(symusic.Note(int(round(t)), int(round(dur * ticks_per_s)), pitch, vel))
    score.tracks.append(track)
    score.dump_midi(str(path))


@pytest.fixture(scope="module")
def waltz_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("beats") / "waltz.mid"
    waltz(path)
    return path


def test_tempo_metre_and_downbeats(waltz_file):
    grid = beats.track(waltz_file)
    assert abs(grid.tempo - BPM) / BPM < 0.03
    assert grid.beats_per_bar == 3 and not grid.compound and grid.time_signature == (3, 4)
    perf = beats.performance(waltz_file)
    bass_onsets = np.sort(perf.onset[perf.pitch == BASS])
    # Every bar line falls on a bass accent (within 30 ms), and nearly every accent on a bar line.
    gap = np.abs(grid.downbeats[:, None] - bass_onsets[None, :]).min(axis=1)
    assert np.all(gap < 0.03)
    assert len(grid.downbeats) >= len(bass_onsets) - 2


def test_requantize_puts_notes_on_beats_and_bars(waltz_file):
    notes = beats.requantize(waltz_file)
    assert abs(notes.tempo - BPM) / BPM < 0.03
    assert notes.time_signature == (3, 4)
    assert np.allclose(notes.start, np.round(notes.start))  # jitter gone: every onset on a whole beat
    bass = notes.start[notes.pitch == BASS]
    assert np.allclose(bass % 3, 0)  # bass accents on bar lines
    assert notes.start.min() >= 0 and notes.meta["anacrusis"] == 0.0


def test_anacrusis_shifts_bar_lines_onto_downbeats(waltz_file):
    perf = beats.performance(waltz_file)
    # One pick-up chord a beat before the first downbeat.
    pick = beats.Performance(np.concatenate([[perf.onset.min() - 0.6] * 3, perf.onset]),
                             np.concatenate([[0.2] * 3, perf.duration]),
                             np.concatenate([[55, 60, 64], perf.pitch]).astype(np.int16),
                             np.concatenate([[50] * 3, perf.velocity]).astype(np.int16), "pickup")
    notes = beats.requantize(pick)
    assert np.allclose(notes.start[notes.pitch == BASS] % 3, 0)
    assert notes.start.min() >= 0 and notes.meta["anacrusis"] > 0


def test_no_notes_is_one_line_error(tmp_path):
    path = tmp_path / "empty.mid"
    score = symusic.Score(480)
    score.tracks.append(symusic.Track(name="Piano", program=0, is_drum=False))
    score.dump_midi(str(path))
    with pytest.raises(InvalidInputError) as exc:
        beats.track(path)
    assert "\n" not in str(exc.value) and "no notes" in str(exc.value)


def test_too_short_to_find_a_pulse_is_one_line_error():
    perf = beats.Performance(np.array([0.0, 0.5]), np.array([0.4, 0.4]), np.array([60, 62], dtype=np.int16),
                             np.array([80, 80], dtype=np.int16), "two notes")
    with pytest.raises(InvalidInputError) as exc:
        beats.requantize(perf)
    assert "\n" not in str(exc.value)
