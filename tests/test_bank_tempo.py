"""Training data on a real grid: tracked beats where a file only holds the nominal 120 BPM."""

from __future__ import annotations

import pytest
import symusic

pytest.importorskip("librosa", reason="beat tracking needs librosa")

from emomusic.music import beats  # noqa: E402
from emomusic.music.attributes import (
    ATTRIBUTE_NAMES,  # noqa: E402
    compute_attributes,  # noqa: E402
)
from emomusic.music.tokenizer import MusicTokenizer  # noqa: E402


def _pulse(path, bpm: float, file_qpm: float = 120.0, beats: int = 64) -> str:
    """Bass on the beat, a chord off it, at `bpm`, written with one tempo event of `file_qpm` (a transcription)."""
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, qpm=file_qpm))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    ticks_per_s = 480 * file_qpm / 60.0
    for k in range(beats):
        t = int(round((0.5 + k * 60.0 / bpm) * ticks_per_s))
        track.notes.append(symusic.Note(t, int(0.2 * ticks_per_s), 36, 100 if k % 4 == 0 else 70))
        off = int(round((0.5 + (k + 0.5) * 60.0 / bpm) * ticks_per_s))  # the chord on the off-beat
        for pitch in (60, 64):
            track.notes.append(symusic.Note(off, int(0.2 * ticks_per_s), pitch, 60))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return str(path)


def test_nominal_files_are_read_on_their_tracked_beats_and_real_maps_are_kept(tmp_path) -> None:
    slow, fast = _pulse(tmp_path / "slow.mid", 84.0), _pulse(tmp_path / "fast.mid", 132.0)
    real = _pulse(tmp_path / "real.mid", 96.0, file_qpm=96.0)  # a sequenced file: its tempo map is the music's
    assert beats.is_nominal_performance(slow) and not beats.is_nominal_performance(real)
    col = {n: ATTRIBUTE_NAMES.index(n) for n in ("tempo", "note_density", "onset_density", "offbeat_fraction")}
    tok = MusicTokenizer()  # as `emomusic data prepare` measures them: on the tokenizer's grid
    out = {name: compute_attributes(tok.decode(tok.encode(beats.real_grid_notes(p))))
           for name, p in (("slow", slow), ("fast", fast), ("real", real))}
    assert abs(out["slow"][col["tempo"]] - 84.0) < 3 and abs(out["fast"][col["tempo"]] - 132.0) < 5
    # three notes a beat: counted per real beat, not per nominal half-second (84 BPM: 2.1 per half-second)
    assert abs(out["slow"][col["note_density"]] - 3.0) < 0.2 and abs(out["fast"][col["onset_density"]] - 2.0) < 0.1
    assert abs(out["slow"][col["offbeat_fraction"]] - 2 / 3) < 0.05  # the chords (2 of 3 notes), on the off-beats
    assert abs(out["real"][col["tempo"]] - 96.0) < 2  # a real tempo map is read as written


def test_octave_choice_halves_a_ballad_tracked_on_its_eighth_notes(tmp_path) -> None:
    """A 66 BPM ballad with steady eighth-note arpeggios: librosa's 120-centred prior hears 132."""
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, qpm=120.0))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    eighth = 60.0 / 66.0 / 2.0
    for k in range(96):
        t = int(round((0.5 + k * eighth) * 960))
        track.notes.append(symusic.Note(t, int(eighth * 960), (48, 55, 60, 64)[k % 4], 90 if k % 8 == 0 else 60))
        if k % 2 == 0:
            track.notes.append(symusic.Note(t, int(2 * eighth * 960), 72 + (k // 2) % 3, 80))
    score.tracks.append(track)
    path = tmp_path / "ballad.mid"
    score.dump_midi(str(path))
    plain = beats.grid_tempo(beats.track(str(path), beats.DEFAULTS))
    real = beats.grid_tempo(beats.track(str(path), beats.REAL_TEMPO))
    assert abs(plain - 132.0) < 6 and abs(real - 66.0) < 3


def test_a_sequenced_score_at_120_keeps_its_grid(tmp_path) -> None:
    """120 BPM is also what sequencers write by default: onsets on a score grid mean real bars."""
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, qpm=120.0))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    for k in range(64):  # eighths and a few triplets, on the grid
        track.notes.append(symusic.Note(k * 240 + (160 if k % 8 == 7 else 0), 200, 60 + k % 7, 80))
    score.tracks.append(track)
    path = tmp_path / "score.mid"
    score.dump_midi(str(path))
    assert not beats.is_nominal_performance(str(path))
    assert beats.real_grid_notes(str(path)).tempo == 120.0  # read as written, not tracked
