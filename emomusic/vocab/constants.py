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
    "PIANO_BOTTOM",
    "PIANO_TOP",
    "PITCH_NAMES",
    "PROVENANCE_PREFIX",
    "METRE_WORDS",
    "TEMPO_RANGE",
    "TIME_SIGNATURES",
    "TRIADS",
    "key_label",
    "parse_time_signature",
]

PROVENANCE_PREFIX: Final = "emomusic-request "
"""Start of the MIDI text event that carries the request a piece was made from (then its JSON): written by
the exporter, read by `emomusic regenerate`."""

PITCH_NAMES: Final[tuple[str, ...]] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Display name of each pitch class 0-11 (the spelling musicians meet most often for each)."""

PIANO_BOTTOM: Final = 21
"""A0, the piano's lowest key: the tokenizer's lowest pitch, and where transposed or closing notes stop."""

PIANO_TOP: Final = 108
"""C8, the piano's highest key (miditok's pitch range runs to 109): the sampler never writes above it and the
closing chord stays below it."""

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


TIME_SIGNATURES: Final[tuple[tuple[int, int], ...]] = (
    (2, 4), (3, 4), (4, 4), (5, 4), (6, 4), (3, 8), (6, 8), (12, 8))
"""Metres the generator's vocabulary holds (a TimeSig token each), so the ones a user may ask for."""

METRE_WORDS: Final[dict[str, tuple[int, int]]] = {
    "waltz": (3, 4), "minuet": (3, 4), "mazurka": (3, 4), "sarabande": (3, 4),
    "jig": (6, 8), "barcarolle": (6, 8), "siciliana": (6, 8), "tarantella": (6, 8),
    "march": (2, 4), "polka": (2, 4),
}
"""Dance and form names that imply a metre (the metre they are written in, conventionally)."""


def parse_time_signature(value: object) -> tuple[int, int]:
    """A time signature from "3/4" (or (3, 4)), checked against `TIME_SIGNATURES`.

    Args:
        value: "N/D" text (spaces allowed) or a (numerator, denominator) pair.

    Returns:
        (numerator, denominator).

    Raises:
        InvalidInputError: malformed, or a metre the generator cannot write; one line listing those it can.
    """
    from emomusic.errors import InvalidInputError

    allowed = " ".join(f"{n}/{d}" for n, d in TIME_SIGNATURES)
    try:
        if isinstance(value, str):
            num, den = (int(x) for x in value.replace(" ", "").split("/"))
        else:
            num, den = (int(x) for x in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InvalidInputError(f"time signature {value!r}: give it as N/D, one of {allowed}") from None
    if (num, den) not in TIME_SIGNATURES:
        raise InvalidInputError(f"time signature {value!r} is not one the generator writes; use one of {allowed}")
    return num, den


def key_label(tonic: int, mode: str) -> str:
    """Readable key name, e.g. ``key_label(9, "minor") == "A minor"``."""
    return f"{PITCH_NAMES[int(tonic) % 12]} {mode}"
