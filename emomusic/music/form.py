"""Bar-level form: phrase plans (sections that return), stalls (shared by the sampler's stall guard and
the long-piece benchmark) and endings.

A form plan cuts a piece into sections of whole phrases, each labelled by a letter: a letter seen
before is a return of that section (`plan_form`, `FORMS`; the pipeline samples it section by section).

A stall is music that has stopped moving: one chord held or hammered, two pitches rocking, bar after
bar. A bar stalls when it and the `STALL_SPAN - 1` bars before it use no more than `STALL_CLASSES`
pitch classes between them (a triad and nothing else, for a whole phrase). Exact repetition is not a
stall: a returning bar with its harmony and melody is form, and real music does it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.music.attributes import fifths, tonic_triad
from emomusic.music.notes import Notes
from emomusic.vocab.constants import PIANO_BOTTOM, PIANO_TOP

__all__ = ["FINAL_BUILD", "FORMS", "MIN_SECTION_BARS", "RESTATED", "STALL_CLASSES", "STALL_SPAN", "Section",
           "check_form", "close_on_tonic", "closing_key", "default_form", "dynamic_ramps", "enter_lightly", "plan_form",
           "release_at", "restated_bars", "stall_flags", "tempo_ramps"]

STALL_CLASSES = 3  # pitch classes a phrase that moves uses more of
STALL_SPAN = 4  # bars in that phrase
MIN_BEATS = 0.125  # a note cut shorter than a 32nd at the last barline is dropped, not left as a click
# The share of the last bar (from its downbeat) in which the model's own tonic-chord notes stay beside the
# final chord. Real last bars hold 0.46 (POP909), 0.50 (ASAP scores) and 0.63 (Nottingham) of their piece's
# mean notes per bar (medians of the val pieces); a bare final chord held 0.18 of 80 generated pieces', and
# with the sampler's cadence (`generation.processors.cadence`) the kept notes gave 0.41 from the first
# beat only, 0.68 from the first half, 0.87 up to the last beat (16 bars, seeds 960,000+).
CLOSING_FIGURES = 0.5

# named forms → their letters (one section per letter; a repeated letter is a return)
FORMS: dict[str, str] = {
    "through": "A",  # through-composed: no sections, no returns
    "period": "AA",  # antecedent and consequent: the second phrase begins like the first and cadences anew
    "binary": "AB",
    "ternary": "ABA",
    "song": "AABA",  # the 32-bar song form
    "rondo": "ABACA",
    "verse-chorus": "ABABCB",  # verse, chorus, verse, chorus, bridge, chorus
}
# the default plan by number of phrases (`default_form`); past the last, new material in the same pattern
_DEFAULT_BY_PHRASES = ("A", "AA", "ABA", "AABA", "ABACA", "ABABCB", "ABABCBB", "ABABCBAB")
MIN_SECTION_BARS = 2  # a section shorter than this is no phrase
# share of a section's bars a return restates as they were (at least one); the rest is sampled anew with
# the first statement in view, so the listener hears the opening come back and a new continuation
RESTATED = 0.5
# Notes a beat the last section's sampled bars aim at, as a multiple of the asked density: real music builds
# toward its end. Real 16-bar openings' last quarter has a median 1.36x the notes a beat of the first (whole
# pieces of that length 1.33x; the real lower end 0.96x); generated ones had 0.94-0.97x, and 1.00-1.05x with
# this (three seed sets; 1.3 gave 0.99x on one). A return restates its opening as it was, so only its new
# bars carry the build (docs/BENCHMARKS.md, "The last section builds")
FINAL_BUILD = 1.5
_FORM_TEXT = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class Section:
    """One section of a form plan.

    label: its letter ("A"); start: its first bar (0-based); bars: its length;
    returns_to: the index of the first section with the same letter (None: new material).
    """

    label: str
    start: int
    bars: int
    returns_to: int | None = None


def default_form(bars: int) -> str:
    """The plan a piece of `bars` bars gets when no form is asked for.

    Phrases are 4 bars up to 31 bars and 8 bars from 32 (the 32-bar song form is AABA in 8-bar
    phrases); under two phrases the piece is through-composed. Two phrases make a period (AA), four
    the song form (AABA), six verse-chorus with a bridge (ABABCB); past eight phrases new sections
    follow the same pattern and the last phrase returns to the opening.

    Args:
        bars: the piece's length.

    Returns:
        A string of section letters (bars split as `plan_form` splits them).
    """
    phrase = 4 if bars < 32 else 8
    n = max(1, bars // phrase)
    table = _DEFAULT_BY_PHRASES
    groups = [table[-1]] * (n // len(table)) + ([table[n % len(table) - 1]] if n % len(table) else [])
    letters = ""
    for group in groups:  # each later group is new material (letters after those used) ...
        offset = len(set(letters))
        letters += "".join(chr(ord(c) + offset) for c in group)
    # ... and the piece ends by returning to its opening (a recapitulation): repeating the whole plan
    # instead made a quarter more of a 128-bar piece return than real pieces of that length do
    return letters if len(groups) == 1 else letters[:-1] + "A"


def plan_form(form: str | None, bars: int, opening: int = 0) -> tuple[Section, ...]:
    """The sections of a piece: equal phrases, the remainder added to the last one.

    Args:
        form: letters ("AABA": a repeated letter returns), a name in `FORMS` ("song", "verse-chorus"),
            or None for `default_form(bars)`.
        bars: the piece's length.
        opening: bars the first section must hold at least (a primer melody opens section A, so a
            return restates it); the other sections share the rest.

    Returns:
        The sections in order; their bars add up to `bars`. The default form falls back to one
        section where the opening leaves too little room for the others.

    Raises:
        InvalidInputError: not letters or a known name, or sections shorter than `MIN_SECTION_BARS`.
    """
    letters = check_form(form) if form is not None else default_form(bars)
    n = len(letters)
    if n > 1 and bars < n * MIN_SECTION_BARS:
        raise InvalidInputError(f"form {letters} needs at least {n * MIN_SECTION_BARS} bars ({MIN_SECTION_BARS} a "
                                f"section); got {bars} bars")
    size, extra = divmod(bars, n)
    sizes = [size] * (n - 1) + [size + extra]
    if opening > size and n > 1:
        rest, left = divmod(bars - opening, n - 1)
        if rest < MIN_SECTION_BARS:
            if form is None:
                return (Section(letters[0], 0, bars),)
            raise InvalidInputError(f"form {letters} leaves {bars - opening} bars after the {opening}-bar opening "
                                    f"melody, fewer than {MIN_SECTION_BARS} a section; ask for more bars")
        sizes = [opening] + [rest] * (n - 2) + [rest + left]
    first: dict[str, int] = {}
    out, start = [], 0
    for i, (label, length) in enumerate(zip(letters, sizes, strict=True)):
        out.append(Section(label, start, length, first.get(label)))
        first.setdefault(label, i)
        start += length
    return tuple(out)


def restated_bars(sections: Sequence[Section], i: int) -> int:
    """Bars section `i` restates from its first statement: `RESTATED` of that one's bars, at least one
    and at most its own (0 for new material)."""
    sec = sections[i]
    if sec.returns_to is None:
        return 0
    return min(sec.bars, max(1, round(sections[sec.returns_to].bars * RESTATED)))


def check_form(form: str) -> str:
    """A form as section letters (upper case): a name in `FORMS` or letters; one clear error otherwise.

    Args:
        form: "AABA", "abac", "verse-chorus", …

    Returns:
        The letters.

    Raises:
        InvalidInputError: anything else (the error lists the names).
    """
    text = str(form).strip()
    named = FORMS.get(text.lower().replace("_", "-").replace(" ", "-"))
    if named is not None:
        return named
    if not _FORM_TEXT.match(text) or len(text) > 32:
        raise InvalidInputError(f"unknown form {form!r}: give section letters (e.g. AABA, ABAC; at most 32) or one of "
                                f"{', '.join(FORMS)}")
    return text.upper()


def stall_flags(classes: Sequence[frozenset[int]]) -> np.ndarray:
    """Which bars stall, given each bar's pitch classes.

    Args:
        classes: one set of pitch classes (0-11) per bar, in order.

    Returns:
        bool array, one per bar: True where the bar and the STALL_SPAN - 1 before it use at most
        STALL_CLASSES pitch classes together (the first STALL_SPAN - 1 bars close no phrase: False).
    """
    out = np.zeros(len(classes), dtype=bool)
    for i in range(STALL_SPAN - 1, len(classes)):
        out[i] = len(frozenset().union(*classes[i - STALL_SPAN + 1: i + 1])) <= STALL_CLASSES
    return out


def release_at(notes: Notes, beats: Sequence[float]) -> Notes:
    """The piece with every note that sounds across one of `beats` ending there.

    Why: a return restates its first statement's notes, and a note held over from the section before
    at the same pitch would swallow the restated one (a file holds one note per pitch at a time), so
    the listener would not hear the opening come back. A note that would be cut shorter than
    `MIN_BEATS` is dropped.

    Args:
        notes: the piece.
        beats: times (quarter-note beats) where the sections that return begin.

    Returns:
        The piece with those notes released.
    """
    if not len(notes) or not len(beats):
        return notes
    end = notes.start + notes.duration
    keep = np.ones(len(notes), dtype=bool)
    for t in beats:
        across = (notes.start < t - 1e-9) & (end > t + 1e-9)
        end = np.where(across, t, end)
        keep &= ~(across & (t - notes.start < MIN_BEATS))
    return replace(notes, duration=end - notes.start).select(keep)


def enter_lightly(notes: Notes, melody: np.ndarray) -> Notes:
    """The piece with its tune entering in the second bar, over a first bar of accompaniment alone.

    Why: real music enters lightly. POP909's tune is silent in the first bar of 98% of its songs (200
    train songs; their first bars hold 0.45 of the next bars' notes, ASAP scores' 0.74), while the
    generator opens at full texture (its first bar 0.93 of the next bars', 160 pieces at seeds
    3,100,000+). Without the tune, that bar held 0.78 of them: the accompaniment sets the metre, key and
    figure, and the tune comes in over it. The bar is written before anything restates it, so a return
    to the opening brings back the whole bar, tune and all.

    Args:
        notes: the piece (bar lines every `notes.beats_per_bar` beats from 0).
        melody: one flag per note, the tune's notes (`arrangement.melody.MelodyModel.mask`).

    Returns:
        The piece without the tune's notes that start in its first bar; unchanged where that would
        leave the bar empty (a tune alone) or the piece is one bar long.
    """
    bar = float(notes.beats_per_bar)
    first = notes.start < bar - 1e-9
    drop = first & np.asarray(melody, dtype=bool)
    if not drop.any() or not (first & ~drop).any() or not (notes.start >= bar - 1e-9).any():
        return notes
    return notes.select(~drop)


def tempo_ramps(marks: Sequence[tuple[float, float]], bar: float, steps: int = 4) -> np.ndarray:
    """Tempo changes that move from one section's tempo to the next over the bar before it begins.

    A jump cut from 75 to 110 BPM at a barline sounds like two pieces glued together; players move
    there over the bar before (accelerando, ritardando).

    Args:
        marks: (beat where a section begins, its tempo) for each section, the first at beat 0.
        bar: beats per bar.
        steps: tempo changes per ramp (the last lands on the new tempo at the section's first beat).

    Returns:
        (k, 2) [beat, BPM] changes after beat 0 (`Notes.tempos`), sorted; none between equal tempi.
    """
    out = []
    for (_, before), (at, after) in zip(marks[:-1], marks[1:], strict=True):
        if abs(after - before) < 0.5:
            continue
        begin = max(0.0, at - bar)
        for k in range(1, steps + 1):
            out.append((begin + (at - begin) * k / steps, round(before + (after - before) * k / steps, 2)))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def dynamic_ramps(notes: Notes, starts: Sequence[float], bar: float) -> Notes:
    """Velocities that lead into each section: over the bar before a section begins, a crescendo or
    diminuendo from the section's own level to the next one's (medians of their first and last bars).

    Args:
        notes: the piece.
        starts: the beats where the sections after the first begin.
        bar: beats per bar.

    Returns:
        The piece with the velocities of those bars moved (1-127).
    """
    vel = notes.velocity.astype(np.float64).copy()
    for at in starts:
        before = (notes.start >= at - bar - 1e-9) & (notes.start < at - 1e-9)
        after = (notes.start >= at - 1e-9) & (notes.start < at + bar - 1e-9)
        if not before.any() or not after.any():
            continue
        gap = np.median(vel[after]) - np.median(vel[before])
        vel[before] += gap * (notes.start[before] - (at - bar)) / bar
    return replace(notes, velocity=np.clip(np.round(vel), 1, 127).astype(notes.velocity.dtype))


def closing_key(found: tuple[int, str], prepared: tuple[int, str] | None) -> tuple[int, str]:
    """The key a piece closes in: the one its cadence was prepared in, where the notes' own key has its
    signature (the same key or its relative); else the notes' key.

    Why: a key estimate tells a minor key from its relative major by a few notes' weight, and the
    sampler leaned the whole piece and its last bars to the asked key. Closing on the estimate instead
    ended 3 of 80 pieces of 16 bars (seeds 970,000+: two sad, one tense) on the relative major's chord
    after a cadence prepared in minor. A piece whose notes went to another signature closes where the
    notes are.

    Args:
        found: (tonic, mode) estimated from the notes (`music.attributes.signature_key`).
        prepared: (tonic, mode) the cadence leaned to, or None (no cadence: the notes' key).

    Returns:
        (tonic, mode).
    """
    if prepared is None or fifths(*prepared) != fifths(*found):
        return found
    return int(prepared[0]) % 12, prepared[1]


def close_on_tonic(notes: Notes, key: tuple[int, str], bars: int) -> Notes:
    """The piece with its last bar closed on a final tonic chord, held to the end.

    The generator has no notion of an ending: its pieces stop mid-gesture where the bar count runs
    out. This is the plainest cadence a musician writes: on the last downbeat, the tonic in the bass
    (the octave nearest the lowest notes of the bars before) under a close tonic triad whose top is the
    chord tone nearest the melody's last note, at the closing bars' loudness, held for the whole bar;
    notes of the bars before end at the last barline. Of the notes the model wrote in the last bar
    (steered to the tonic triad there when the sampler knew the end, `generation.processors.cadence`),
    the tonic-chord tones above the bass starting in its first `CLOSING_FIGURES` stay, so the final
    chord keeps the piece's voicing and figures instead of being a bare block chord; nothing starts in
    the bar's second half.

    Args:
        notes: the piece (bar lines every `notes.beats_per_bar` beats from 0).
        key: (tonic pitch class, "major"|"minor"), the key the file will declare.
        bars: the piece's length in bars (at least 2: a one-bar piece is left as it is).

    Returns:
        The closed piece.
    """
    if bars < 2 or not len(notes):
        return notes
    bar = float(notes.beats_per_bar)
    last, end = (bars - 1) * bar, bars * bar
    # notes of the bars before end at the last barline; one starting too close to it to sound is dropped
    before = notes.start < last - MIN_BEATS
    if not before.any():
        return notes
    start, pitch = notes.start[before], notes.pitch[before].astype(np.int64)
    duration = np.minimum(notes.duration[before], last - start)
    recent = start >= last - 2 * bar
    if not recent.any():
        recent = np.ones(len(start), dtype=bool)
    tonic, mode = key
    chord = set(tonic_triad(tonic, mode))
    low = int(pitch[recent].min())
    # the bass at most an octave and a fifth below the keyboard's top, so the triad above it always fits
    bass = min((p for p in range(PIANO_BOTTOM, PIANO_TOP - 18) if p % 12 == tonic % 12),
               key=lambda p: (abs(p - low), p))
    final_onset = start[recent].max()
    melody = int(pitch[recent & (start >= final_onset - 1e-6)].max())
    top = min((p for p in range(bass + 7, PIANO_TOP + 1) if p % 12 in chord), key=lambda p: (abs(p - melody), p))
    upper = [top]
    for p in range(top - 1, bass + 6, -1):  # the other two chord tones, close below the top
        if p % 12 in chord and p % 12 not in {u % 12 for u in upper}:
            upper.append(p)
        if len(upper) == 3:
            break
    final = np.sort(np.array([bass, *upper], dtype=np.int64))
    velocity = int(np.median(notes.velocity[before][recent]))
    # the last bar's own tonic-chord notes above the bass that start in its first half stay: the model's
    # voicing and figures on the final chord rather than a bare block chord (not the ones the chord doubles)
    own = ((notes.start >= last - 1e-9) & (notes.start < last + CLOSING_FIGURES * bar - 1e-9) & (notes.pitch > bass)
           & np.isin(notes.pitch % 12, list(chord)))
    own &= ~((np.abs(notes.start - last) < 1e-9) & np.isin(notes.pitch, final))
    pitch = np.concatenate([pitch, final, notes.pitch[own]])
    start = np.concatenate([start, np.full(len(final), last), notes.start[own]])
    order = np.lexsort((pitch, start))  # the notes' order: by onset, then pitch
    return replace(
        notes,
        pitch=pitch[order].astype(notes.pitch.dtype),
        start=start[order],
        duration=np.concatenate([duration, np.full(len(final), end - last),
                                 np.minimum(notes.duration[own], end - notes.start[own])])[order],
        velocity=np.concatenate([notes.velocity[before], np.full(len(final), velocity),
                                 notes.velocity[own]])[order].astype(notes.velocity.dtype),
    )
