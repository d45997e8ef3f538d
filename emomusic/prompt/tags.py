"""Tag prompts: emotion, genre, tempo and metre words or numbers → music elements.

A tag prompt is what a user types when they already know the vocabulary: ``"sad, slow, jazz"``,
``"Q1 allegro pop"``, ``"calm 72 bpm"``. It is parsed strictly and instantly (no model): every word must
be an emotion or genre word of :mod:`emomusic.vocab.emotions` (case and single obvious typos tolerated, as
there), a tempo word (English or an Italian tempo marking) or a tempo number; an unknown word is an
error that lists close matches. A degree word right before an emotion word ("very sad", "a little
calm"; :data:`emomusic.vocab.emotions.INTENSIFIERS`) sets how strongly it is meant
(`Elements.intensity`). :func:`find_cues` does the lenient counterpart for free text: it only picks out
the exact vocabulary words a sentence contains (and a degree word right before one), for
:mod:`emomusic.prompt.text`.

Italian markings map to the middle of the BPM ranges that metronome tables conventionally give them
(e.g. adagio 66–76 → 70, allegro 120–156 → 135); English words to round values on the same scale.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Final

from emomusic.errors import InvalidInputError
from emomusic.types import Elements
from emomusic.vocab.constants import METRE_WORDS, TEMPO_RANGE, TIME_SIGNATURES, parse_time_signature
from emomusic.vocab.emotions import (
    _AUTOCORRECT_CUTOFF,
    _QUADRANT_RE,
    _SUGGEST_CUTOFF,
    GENRE_ALIASES,
    INTENSIFIERS,
    QUADRANT_NAMES,
    QUADRANT_VA,
    WORDS,
    Emotion,
    emotion_from_va,
    normalise,
    quadrant_of,
)

__all__ = ["TEMPO_WORDS", "Cues", "TagError", "add_cues", "cues_emotion", "cues_intensity", "find_cues",
           "parse_tags", "strip_tempo", "tag_elements"]

TEMPO_WORDS: Final[dict[str, float]] = {
    # Italian tempo markings
    "grave": 40, "largo": 50, "lento": 55, "larghetto": 63, "adagio": 70, "adagietto": 75,
    "andante": 88, "andantino": 95, "moderato": 110, "allegretto": 115, "allegro moderato": 120,
    "allegro": 135, "vivace": 160, "vivacissimo": 170, "presto": 180, "prestissimo": 200,
    # English
    "very slow": 50, "slow": 70, "slowly": 70, "moderate": 100, "medium": 100, "mid tempo": 100,
    "midtempo": 100, "fast": 140, "quick": 140, "up tempo": 140, "uptempo": 140, "very fast": 170,
}  # fmt: skip
"""Tempo word → BPM."""

# Words a tag list may contain around the tags ("slow jazz music", "a sad song").
_FILLER: Final = frozenset(
    "a an the and or with in of some music song songs piece tune track style mood feel feeling vibe vibes "
    "tempo genre emotion please".split()
)
_BPM_RE: Final = re.compile(
    r"\b(?:(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)|(?:tempo|bpm)\s*[:=]?\s*(\d{2,3}(?:\.\d+)?))\b"
)
_METRE_RE: Final = re.compile(r"\b(\d{1,2})\s*/\s*(\d{1,2})\b")  # "3/4", "6 / 8": before "/" splits tags
_SPLIT_RE: Final = re.compile(r"[,;/|+]+")
# Tempo words that are ordinary English in a sentence ("at his grave"): tags only, never free-text cues.
_AMBIGUOUS_IN_TEXT: Final = frozenset({"grave", "medium", "quick", "march"})
_MAX_NGRAM: Final = 3


@dataclass
class Cues:
    """What a prompt names: emotion words, genres and a tempo, each with the phrase that named it."""

    emotions: list[tuple[str, Emotion]] = field(default_factory=list)
    degrees: list[tuple[str, float] | None] = field(default_factory=list)  # per emotion: ("very", 1.5) or None
    genres: list[tuple[str, str]] = field(default_factory=list)  # (phrase, training genre)
    tempo: tuple[str, float] | None = None
    metre: tuple[str, tuple[int, int]] | None = None  # (phrase, time signature)


class TagError(InvalidInputError):
    """A tag prompt with words outside the vocabulary; ``unknown`` maps each to its close matches."""

    def __init__(self, message: str, unknown: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.unknown = unknown


def _vocabulary() -> dict[str, str]:
    """Every accepted tag phrase → its kind ("emotion" | "genre" | "tempo")."""
    vocab = {w: "emotion" for w in WORDS}
    vocab.update({g: "genre" for g in GENRE_ALIASES})
    vocab.update({t: "tempo" for t in TEMPO_WORDS})
    vocab.update({m: "metre" for m in METRE_WORDS})
    return vocab


_VOCAB: Final = _vocabulary()


def _tempo_in_range(phrase: str, bpm: float) -> float:
    lo, hi = TEMPO_RANGE
    if not lo <= bpm <= hi:
        raise InvalidInputError(f"tempo {phrase!r} is outside {lo:g}–{hi:g} BPM; give a tempo in that range")
    return bpm


def _add(cues: Cues, phrase: str, word: str, degree: tuple[str, float] | None = None) -> None:
    """Record vocabulary `word` (found as `phrase`) in the cue of its kind; `degree` goes with an emotion."""
    kind = _VOCAB[word]
    if kind == "emotion":
        cues.emotions.append((phrase, WORDS[word]))
        cues.degrees.append(degree)
    elif kind == "genre":
        cues.genres.append((phrase, GENRE_ALIASES[word]))
    elif kind == "metre":
        cues.metre = cues.metre or (phrase, METRE_WORDS[word])
    elif cues.tempo is None:
        cues.tempo = (phrase, float(TEMPO_WORDS[word]))


def _take_bpm(text: str, cues: Cues) -> str:
    """Record the first "90 bpm"/"tempo 90" number and return the text without any of them."""
    for m in _BPM_RE.finditer(text):
        if cues.tempo is None:
            cues.tempo = (m.group(0), _tempo_in_range(m.group(0), float(m.group(1) or m.group(2))))
    return _BPM_RE.sub(" ", text)


def _take_metre(text: str, cues: Cues, strict: bool) -> str:
    """Record the first "3/4"-style time signature the generator can write; return the text without any.

    strict (tags): any other "N/D" is an error naming the metres there are; free text keeps quiet about
    numbers that are not metres ("24/7").
    """
    for m in _METRE_RE.finditer(text):
        ts = (int(m.group(1)), int(m.group(2)))
        if ts in TIME_SIGNATURES:
            cues.metre = cues.metre or (m.group(0), ts)
        elif strict:
            parse_time_signature(m.group(0))  # raises the one-line error that lists the metres there are
    return _METRE_RE.sub(" ", text)


def strip_tempo(text: str) -> str:
    """Text without "90 bpm"-style numbers: a sentence model reads them as noise, not as a mood."""
    return " ".join(_BPM_RE.sub(" ", text).split()) or text


def _suggest(word: str) -> list[str]:
    return difflib.get_close_matches(word, list(_VOCAB), n=3, cutoff=_SUGGEST_CUTOFF)


def _match_word(word: str) -> str | None:
    """The vocabulary entry `word` is, or is one obvious typo of (a single match at a high cutoff)."""
    if word in _VOCAB:
        return word
    matches = difflib.get_close_matches(word, list(_VOCAB), n=2, cutoff=_AUTOCORRECT_CUTOFF)
    return matches[0] if len(matches) == 1 else None


def _degree_at(words: list[str], i: int) -> tuple[str, float, int] | None:
    """(phrase, intensity, words used) of a degree word starting at `i` ("a little", "very"), unless the
    words there form a vocabulary phrase of their own ("very slow" is a tempo)."""
    if any(" ".join(words[i:i + n]) in _VOCAB for n in range(1, _MAX_NGRAM + 1)):
        return None
    for n in (2, 1):
        phrase = " ".join(words[i:i + n])
        if len(words) - i >= n and phrase in INTENSIFIERS:
            return phrase, INTENSIFIERS[phrase], n
    return None


def _parse_chunk(chunk: str, cues: Cues, unknown: dict[str, list[str]]) -> None:
    """Greedy longest-phrase match of one comma-separated chunk ("very slow sad jazz", "very sad")."""
    m = _QUADRANT_RE.match(chunk)
    if m:
        q = f"Q{m.group(1)}"
        v, a = QUADRANT_VA[q]
        cues.emotions.append((chunk, Emotion(QUADRANT_NAMES[q], q, v, a)))
        cues.degrees.append(None)
        return
    words = chunk.split()
    i = 0
    pending: tuple[str, float] | None = None  # a degree word waiting for its emotion word
    while i < len(words):
        degree = _degree_at(words, i)
        if degree is not None:  # before the filler words: "a little" starts with one
            if pending is not None:
                unknown[pending[0]] = []
            pending, i = degree[:2], i + degree[2]
            continue
        if words[i] in _FILLER:  # before typo correction, so a filler word is never "corrected"
            i += 1
            continue
        for n in range(min(_MAX_NGRAM, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            hit = phrase if phrase in _VOCAB else (_match_word(phrase) if n == 1 else None)
            if hit is not None:
                if pending is not None and _VOCAB[hit] != "emotion":
                    unknown[pending[0]] = []  # a degree word says how much of an emotion, nothing else
                _add(cues, phrase, hit, pending if _VOCAB[hit] == "emotion" else None)
                pending = None
                i += n
                break
        else:  # no phrase starting here matched
            word = words[i]
            if _QUADRANT_RE.match(word):
                _parse_chunk(word, cues, unknown)
                if pending is not None:
                    cues.degrees[-1], pending = pending, None
            else:
                unknown[word] = _suggest(word)
            i += 1
    if pending is not None:
        unknown[pending[0]] = []


def parse_tags(prompt: str) -> Cues:
    """Parse a tag prompt strictly; raise :class:`TagError` (one line, close matches) on unknown words.

    Tags may be separated by commas, semicolons, slashes, "+" or spaces; multi-word tags ("very slow",
    "video game", "allegro moderato") are matched before single words.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInputError("empty prompt; give tags such as 'sad, slow, jazz' or a sentence")
    cues = Cues()
    text = _take_metre(_take_bpm(prompt.lower(), cues), cues, strict=True)
    unknown: dict[str, list[str]] = {}
    for chunk in _SPLIT_RE.split(text):
        norm = normalise(re.sub(r"[^\w\s'-]", " ", chunk))
        if norm:
            _parse_chunk(norm, cues, unknown)
    if unknown:
        parts = [f"{w!r} (close matches: {', '.join(s) or 'none'})" if w not in INTENSIFIERS else
                 f"{w!r} (a degree word: put it right before an emotion word, e.g. '{w} sad')"
                 for w, s in unknown.items()]
        raise TagError(f"unknown word(s) in prompt: {'; '.join(parts)}", unknown)
    if not (cues.emotions or cues.genres or cues.tempo or cues.metre):
        raise TagError(f"prompt {prompt.strip()!r} names no emotion, genre, tempo or metre", {})
    return cues


def find_cues(text: str) -> Cues:
    """Exact vocabulary words and tempo numbers found in free text (no typo correction: no false hits)."""
    cues = Cues()
    norm = normalise(re.sub(r"[^\w\s'-]", " ", _take_metre(_take_bpm(text.lower(), cues), cues, strict=False)))
    words = norm.split()
    i = 0
    pending: tuple[str, float] | None = None  # a degree word right before this position
    while i < len(words):
        degree = _degree_at(words, i)
        if degree is not None:
            pending, i = degree[:2], i + degree[2]
            continue
        for n in range(min(_MAX_NGRAM, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            if phrase in _VOCAB and phrase not in _AMBIGUOUS_IN_TEXT:
                _add(cues, phrase, phrase, pending if _VOCAB[phrase] == "emotion" else None)
                i += n
                break
        else:
            i += 1
        pending = None  # in free text a degree word counts only right before the emotion word
    return cues


def cues_emotion(cues: Cues) -> Emotion | None:
    """One emotion for the named words: their mean point, labelled with the named word in its quadrant."""
    if not cues.emotions:
        return None
    v = sum(e.valence for _, e in cues.emotions) / len(cues.emotions)
    a = sum(e.arousal for _, e in cues.emotions) / len(cues.emotions)
    if len(cues.emotions) == 1:
        return cues.emotions[0][1]
    q = quadrant_of(v, a)
    named = [e.word for _, e in cues.emotions if e.quadrant == q]
    return Emotion(named[0], q, v, a) if named else emotion_from_va(v, a)


def cues_intensity(cues: Cues) -> tuple[float, str] | None:
    """(Intensity, the degree phrases) of the named emotions, or None when no degree word was used.

    Each emotion word counts once, 1 when it has no degree word; the intensity is their mean, so
    "very sad" gives 1.5 and "very sad, lonely" 1.25.
    """
    named = [d for d in cues.degrees if d is not None]
    if not named:
        return None
    factors = [1.0 if d is None else d[1] for d in cues.degrees]
    phrases = ", ".join(f"{d[0]} {p}" for (p, _), d in zip(cues.emotions, cues.degrees, strict=True) if d)
    return sum(factors) / len(factors), phrases


def tag_elements(prompt: str) -> Elements:
    """Elements of a tag prompt; `sources` names the tag behind each element."""
    cues = parse_tags(prompt)
    el = Elements()
    emo = cues_emotion(cues)
    if emo is not None:
        el.emotion, el.quadrant, el.valence, el.arousal = emo.word, emo.quadrant, emo.valence, emo.arousal
        words = ", ".join(repr(p) for p, _ in cues.emotions)
        how = "" if len(cues.emotions) == 1 else " (mean of their valence/arousal)"
        el.sources.append(f"emotion: tag {words}{how}")
    add_cues(el, cues, "tag {!r}")
    return el


def add_cues(el: Elements, cues: Cues, origin: str) -> None:
    """Set the intensity, genre, tempo and metre the cues name, with a source line each (`origin` formats
    the phrase)."""
    degree = cues_intensity(cues)
    if degree is not None:
        el.intensity = round(degree[0], 3)
        el.sources.append(f"intensity: {origin.format(degree[1])} → {el.intensity:g}")
    if cues.genres:
        phrase, el.genre = cues.genres[0]
        el.genre_asked = phrase if phrase in GENRE_ALIASES else _match_word(phrase)
        el.sources.append(f"genre: {origin.format(phrase)} → {el.genre}")
    if cues.tempo is not None:
        phrase, el.tempo = cues.tempo
        el.sources.append(f"tempo: {origin.format(phrase)} → {el.tempo:g} BPM")
    if cues.metre is not None:
        phrase, el.time_signature = cues.metre
        el.sources.append(f"time signature: {origin.format(phrase)} → {el.time_signature[0]}/{el.time_signature[1]}")
