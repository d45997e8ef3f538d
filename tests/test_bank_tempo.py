"""The clusterer's tempo attribute: tracked from the notes where a file only holds the nominal 120 BPM."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

pytest.importorskip("librosa", reason="beat tracking needs librosa (the [audio] extra)")

from emomusic.music.attributes import ATTRIBUTE_NAMES  # noqa: E402
from emomusic.training.clusterer import has_nominal_tempo, real_tempo_attributes  # noqa: E402


def _pulse(path, bpm: float, file_qpm: float = 120.0, beats: int = 64) -> str:
    """Bass-and-chord beats played at `bpm`, written with one tempo event of `file_qpm` (a transcription)."""
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, qpm=file_qpm))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    ticks_per_s = 480 * file_qpm / 60.0
    for k in range(beats):
        t = int(round((0.5 + k * 60.0 / bpm) * ticks_per_s))
        for pitch, vel in ((36, 100 if k % 4 == 0 else 70), (60, 60), (64, 60)):
            track.notes.append(symusic.Note(t, int(0.2 * ticks_per_s), pitch, vel))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return str(path)


def test_nominal_files_get_their_tracked_tempo_and_real_maps_are_kept(tmp_path) -> None:
    slow, fast = _pulse(tmp_path / "slow.mid", 84.0), _pulse(tmp_path / "fast.mid", 150.0)
    real = _pulse(tmp_path / "real.mid", 96.0, file_qpm=96.0)  # a sequenced file: its tempo map is the music's
    assert has_nominal_tempo(slow) and not has_nominal_tempo(real)
    attrs = np.full((3, len(ATTRIBUTE_NAMES)), 121.59)
    out, counts = real_tempo_attributes(attrs, [slow, fast, real])
    tempo = out[:, ATTRIBUTE_NAMES.index("tempo")]
    assert abs(tempo[0] - 84.0) < 3 and abs(tempo[1] - 150.0) < 5 and tempo[2] == 121.59
    assert counts == {"tracked": 2, "kept": 1, "untrackable": 0}
    assert (out[:, 1:] == attrs[:, 1:]).all() and attrs[0, 0] == 121.59  # only tempo changes; input untouched
