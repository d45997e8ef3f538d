"""Musical and file-format constants that more than one layer reads: the single home of each.

Why one module: a constant copied into two files drifts (the audio suffixes once differed between the
recognizer, the demo and the feature extractor; the tempo bounds between the pipeline and the prompt
parser). Everything here is plain data with no imports, so any layer may read it.

Emotion words, quadrants and genres live beside their lookup functions in :mod:`emomusic.vocab.emotions`.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUDIO_SUFFIXES",
    "KEY_MODES",
    "MAJOR_KEY_NAMES",
    "MAX_PROMPT_CHARS",
    "MIDI_SUFFIXES",
    "MINOR_KEY_NAMES",
    "PITCH_NAMES",
    "TEMPO_RANGE",
    "TRIADS",
    "key_label",
]

PITCH_NAMES: Final[tuple[str, ...]] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Display name of each pitch class 0-11 (the spelling musicians meet most often for each)."""

KEY_MODES: Final[tuple[str, str]] = ("major", "minor")
"""The modes a key can have; a key is (tonic pitch class 0-11, mode)."""

MAJOR_KEY_NAMES: Final[tuple[str, ...]] = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEY_NAMES: Final[tuple[str, ...]] = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
"""Key-signature names as MIDI (mido) spells them: per tonic, the spelling with the fewest accidentals
(Db major has 5 flats where C# major has 7 sharps), so notation programs show the usual signature."""

TRIADS: Final[dict[str, tuple[int, ...]]] = {
    "major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8),
}
"""The four triad qualities and their intervals above the root (semitones); the harmony analysis adds
suspended and seventh chords after these (:data:`emomusic.music.harmony.QUALITIES`)."""

TEMPO_RANGE: Final[tuple[float, float]] = (30.0, 260.0)
"""Tempos (BPM) a user may ask for, by flag, tag or number (`EmoMusic.generate`, the tag parser and the
projector all check these): wide enough for a grave (40) or a prestissimo (200) with room either side."""

MAX_PROMPT_CHARS: Final = 2000
"""Longest text prompt: a paragraph describes a mood; longer input is almost surely a pasted file."""

MIDI_SUFFIXES: Final[tuple[str, ...]] = (".mid", ".midi", ".smf", ".kar")
"""Suffixes of Standard MIDI Files (.kar is karaoke SMF): what the MIDI loader reads. The loader checks
the `MThd` header, not the name; these are for routing a file to it and for upload filters."""

AUDIO_SUFFIXES: Final[tuple[str, ...]] = (".wav", ".flac", ".ogg", ".mp3", ".m4a")
"""Suffixes the audio loader reads: libsndfile's formats (WAV, FLAC, OGG, MP3), then PyAV's FFmpeg for
M4A/AAC (the [vision] extra; without it an M4A file gets a one-line error)."""


def key_label(tonic: int, mode: str) -> str:
    """Readable key name, e.g. ``key_label(9, "minor") == "A minor"``."""
    return f"{PITCH_NAMES[int(tonic) % 12]} {mode}"
