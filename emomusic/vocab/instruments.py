"""Instruments: the General MIDI programs by name, what each can play, and the words users type for them.

Why here, at the bottom: the CLI's `--instruments`, the demo's picker, the arranger and the exporters
all name instruments; one table keeps the program numbers, names and ranges from drifting apart.

Ranges are the sounding MIDI pitches an instrument plays in ordinary writing (orchestration texts
give the same figures: violin from G3, viola from C3, cello from C2, bass guitar E1–G4); instruments
with no range listed take their General MIDI family's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from emomusic.errors import InvalidInputError

__all__ = ["DRUM_KIT", "GM_PROGRAMS", "Instrument", "instrument", "instrument_names", "parse_instruments"]

GM_PROGRAMS: Final[tuple[str, ...]] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Choir", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
"""The 128 General MIDI Level 1 melodic programs, index = program number."""

DRUM_KIT: Final = -1
"""The program of a drum kit: General MIDI plays drums on channel 10 with any program (kit by note)."""

# Sounding ranges (MIDI low, high) per GM family of 8 programs, then per program where it differs.
_FAMILY_RANGE: Final[tuple[tuple[int, int], ...]] = (
    (21, 108), (60, 108), (36, 96), (40, 88), (28, 67), (36, 96), (36, 96), (40, 84),
    (52, 88), (48, 84), (60, 96), (36, 96), (36, 96), (36, 96), (48, 84), (36, 96),
)
_PROGRAM_RANGE: Final[dict[int, tuple[int, int]]] = {
    6: (29, 89), 7: (36, 96), 8: (60, 108), 9: (79, 108), 11: (53, 89), 12: (45, 96), 13: (65, 108),
    40: (55, 103), 41: (48, 88), 42: (36, 76), 43: (28, 67), 44: (28, 96), 45: (28, 96), 46: (24, 103),
    47: (36, 57), 48: (28, 96), 49: (28, 96), 50: (28, 96), 51: (28, 96), 52: (48, 81), 53: (48, 81),
    54: (48, 81), 55: (36, 84),
    56: (54, 82), 57: (40, 72), 58: (28, 58), 59: (54, 82), 60: (41, 77), 61: (40, 82),
    64: (56, 87), 65: (49, 81), 66: (44, 75), 67: (36, 69), 68: (58, 91), 69: (52, 81), 70: (34, 75),
    71: (50, 91), 72: (74, 108), 73: (60, 96), 74: (60, 91), 75: (60, 96), 78: (60, 96), 79: (60, 91),
    80: (36, 96), 81: (36, 96), 104: (48, 77), 105: (48, 79), 106: (50, 81), 107: (48, 84), 110: (55, 96),
}

_ALIASES: Final[dict[str, int]] = {
    "piano": 0, "grand piano": 0, "acoustic piano": 0, "electric piano": 4, "rhodes": 4, "keys": 4,
    "organ": 16, "church organ": 19, "accordion": 21, "harmonica": 22, "harpsichord": 6, "clavinet": 7,
    "celesta": 8, "glockenspiel": 9, "music box": 10, "vibraphone": 11, "vibes": 11, "marimba": 12,
    "xylophone": 13, "bells": 14,
    "guitar": 24, "nylon guitar": 24, "classical guitar": 24, "acoustic guitar": 25, "steel guitar": 25,
    "jazz guitar": 26, "electric guitar": 27, "clean guitar": 27, "muted guitar": 28, "overdrive": 29,
    "overdriven guitar": 29, "distortion guitar": 30, "distorted guitar": 30,
    "bass": 33, "bass guitar": 33, "electric bass": 33, "acoustic bass": 32, "upright bass": 32,
    "double bass": 43, "fretless bass": 35, "slap bass": 36, "synth bass": 38,
    "violin": 40, "viola": 41, "cello": 42, "violoncello": 42, "contrabass": 43, "pizzicato": 45, "harp": 46,
    "timpani": 47, "strings": 48, "string ensemble": 48, "string section": 48, "synth strings": 50,
    "choir": 52, "voice": 53, "trumpet": 56, "trombone": 57, "tuba": 58, "horn": 60, "french horn": 60,
    "brass": 61, "soprano sax": 64, "alto sax": 65, "sax": 65, "saxophone": 65, "tenor sax": 66,
    "baritone sax": 67, "oboe": 68, "english horn": 69, "cor anglais": 69, "bassoon": 70, "clarinet": 71,
    "piccolo": 72, "flute": 73, "recorder": 74, "pan flute": 75, "whistle": 78, "ocarina": 79,
    "square": 80, "square lead": 80, "pulse": 80, "sawtooth": 81, "saw lead": 81, "synth lead": 81,
    "calliope": 82, "pad": 89, "warm pad": 89, "sitar": 104, "banjo": 105, "koto": 107, "kalimba": 108,
    "bagpipe": 109, "fiddle": 110, "steel drums": 114,
}
_DRUM_WORDS: Final[tuple[str, ...]] = ("drums", "drum kit", "drum set", "drumkit", "kit", "percussion", "noise")


@dataclass(frozen=True)
class Instrument:
    """One playable instrument: its General MIDI program (`DRUM_KIT` for drums) and sounding range."""

    name: str
    program: int
    low: int
    high: int

    @property
    def drums(self) -> bool:
        """True for the drum kit (channel 10, notes name drums, no range to fold into)."""
        return self.program == DRUM_KIT


def _of_program(program: int) -> Instrument:
    low, high = _PROGRAM_RANGE.get(program, _FAMILY_RANGE[program // 8])
    return Instrument(GM_PROGRAMS[program], program, low, high)


def _table() -> dict[str, Instrument]:
    from emomusic.vocab.emotions import normalise

    table = {normalise(name): _of_program(p) for p, name in enumerate(GM_PROGRAMS)}
    table |= {normalise(word): _of_program(p) for word, p in _ALIASES.items()}
    table |= {normalise(word): Instrument("Drums", DRUM_KIT, 35, 81) for word in _DRUM_WORDS}
    return table


def instrument_names() -> tuple[str, ...]:
    """Every word `instrument` accepts (GM names and common names), for help texts and pickers."""
    return tuple(sorted(_table()))


def instrument(word: str | int) -> Instrument:
    """The instrument a user names: a GM program name or number (0-127), a common name, or "drums".

    Case, hyphens and spacing do not matter, and a single obvious typo is corrected ("violn" → violin).

    Args:
        word: e.g. "violin", "Electric Bass (finger)", "cello", 42, "drums".

    Returns:
        The `Instrument`.

    Raises:
        InvalidInputError: an unknown name (one line with close matches) or a number outside 0-127.
    """
    if isinstance(word, bool) or not isinstance(word, (int, str)):
        raise InvalidInputError(f"instrument must be a name such as 'violin' or a GM program number, got {word!r}")
    text = str(word).strip()
    if text.isdigit():
        if not 0 <= int(text) <= 127:
            raise InvalidInputError(f"instrument {text}: give a General MIDI program number 0-127")
        return _of_program(int(text))
    from emomusic.vocab.emotions import lookup, normalise

    norm = normalise(text)
    if not norm:
        raise InvalidInputError("empty instrument name; give one such as 'violin' or 'cello'")
    return lookup(_table(), norm, text, "instrument", "General MIDI or common names, or 'drums': `emomusic words`")


def parse_instruments(text: str | None) -> tuple[Instrument, ...]:
    """A comma-separated instrument list ("violin, cello") as instruments, in order.

    Args:
        text: the user's list; None or blank gives ().

    Returns:
        One `Instrument` per name.

    Raises:
        InvalidInputError: an unknown name (with close matches) or an empty item ("violin,,cello").
    """
    if text is None or not str(text).strip():
        return ()
    items = [t.strip() for t in str(text).split(",")]
    if any(not t for t in items):
        raise InvalidInputError(f"instruments {text!r}: an empty name between commas")
    return tuple(instrument(t) for t in items)
