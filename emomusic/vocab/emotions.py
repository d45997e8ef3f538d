"""The emotion vocabulary: user words → Russell quadrant → (valence, arousal).

Every stage of the pipeline speaks in quadrants (EMOPIA's 4Q labels) or in points of Russell's
valence/arousal plane, but users type words ("calm", "Sad ", "melancolic") or genre names
("jazz"). This module is the single place that turns such input into an :class:`Emotion` or a
training genre, so the CLI, the prompt projector, the clusterer and the evaluation all agree on
what "calm" means.

Coordinates are in [-1, 1] on both axes. They are hand-set: the angles follow Russell's (1980)
circumplex and the magnitudes Warriner et al.'s (2013) valence/arousal norms rescaled from 1..9 to
-1..1, then adjusted where *musical* usage differs from the word-in-isolation norms, so that each word
sits in the quadrant that music-emotion datasets (EMOPIA, XMusic) give it. For example, Warriner rates
"romantic" as arousing and "lazy" as slightly negative, but romantic/lazy music is slow and pleasant
(Q4); "nostalgic" is bittersweet and goes to Q3 as in the design; "dark" music is tense (Q2).
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass
from typing import Final

from emomusic.errors import InvalidInputError

__all__ = [
    "GENRES",
    "GENRE_ALIASES",
    "GENRE_STANDINS",
    "INTENSIFIERS",
    "INTENSITY_RANGE",
    "QUADRANTS",
    "QUADRANT_NAMES",
    "QUADRANT_SIGNS",
    "QUADRANT_VA",
    "TRAJECTORY_MAX_BARS",
    "TRAJECTORY_MIN_BARS",
    "WORDS",
    "XMUSIC_GENRES",
    "XMUSIC_TAGS",
    "Emotion",
    "emotion_from_va",
    "genre_word",
    "intensify",
    "lookup",
    "normalise",
    "parse_trajectory",
    "quadrant_of",
    "resolve_emotion",
    "resolve_genre",
]

QUADRANTS: Final[tuple[str, ...]] = ("Q1", "Q2", "Q3", "Q4")
"""EMOPIA's 4Q classes: Q1 +V+A, Q2 -V+A, Q3 -V-A, Q4 +V-A."""

QUADRANT_NAMES: Final[dict[str, str]] = {"Q1": "happy", "Q2": "tense", "Q3": "sad", "Q4": "calm"}
"""Display name of each quadrant; used in labels such as ``"calm (Q4)"``."""

QUADRANT_SIGNS: Final[dict[str, tuple[int, int]]] = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}
"""Signs of (valence, arousal) in each quadrant: the one table every quadrant point is derived from.

Used as is (±1) where a 4Q label becomes a training target: EMOPIA's clips then sit on the same ±1 scale
as VGMIDI's per-piece valence/arousal labels, so one recognizer head learns from both."""

QUADRANT_VA: Final[dict[str, tuple[float, float]]] = {q: (0.5 * v, 0.5 * a) for q, (v, a) in QUADRANT_SIGNS.items()}
"""Centre (valence, arousal) of each quadrant of the [-1, 1]² plane (±0.5): the point used when a user
asks for "Q3", and the anchors the clusterer blends quadrant centres around. The centre, not the corner
(±1), because words live inside the plane: "sad" is (-0.75, -0.4), nearer (-0.5, -0.5) than (-1, -1)."""

XMUSIC_TAGS: Final[tuple[str, ...]] = (
    "angry", "exciting", "fear", "funny", "happy", "lazy",
    "magnificent", "quiet", "romantic", "sad", "warm",
)  # fmt: skip
"""XMusic's 11 emotion tags; all are accepted words."""

XMUSIC_GENRES: Final[tuple[str, ...]] = ("classical", "country", "folk", "jazz", "pop", "rock")
"""XMusic's 6 genres; all are accepted by :func:`resolve_genre`."""

GENRES: Final[tuple[str, ...]] = ("pop", "game", "classical", "folk", "early")
"""The genres the models are trained on (from dataset provenance; see docs/DESIGN.md "Data contracts")."""

GENRE_STANDINS: Final[dict[str, str]] = {
    # country is song-form, diatonic and guitar-idiomatic like the folk collections;
    # jazz and rock share pop's song forms, backbeat and chord vocabulary more than any other.
    "country": "folk",
    "jazz": "pop",
    "rock": "pop",
}
"""XMusic genres with no training data → the training genre generated in their place.

Accepted so XMusic-style prompts work, but never silently: the request says which genre it generates
(a notice, and `genre_asked` in the CLI's JSON)."""

GENRE_ALIASES: Final[dict[str, str]] = {
    **{g: g for g in GENRES},
    **GENRE_STANDINS,  # no training data: the nearest training genre stands in (with a notice)
    "popular": "pop",
    "game music": "game",
    "video game": "game",
    "video game music": "game",
    "videogame": "game",
    "vgm": "game",
    "baroque": "classical",
    "romantic era": "classical",
    "early music": "early",
    "renaissance": "early",
    "medieval": "early",
    "traditional": "folk",
}
"""Normalised genre word → training genre (synonyms and sub-styles of a training genre, and the
:data:`GENRE_STANDINS`)."""

INTENSITY_RANGE: Final[tuple[float, float]] = (0.0, 2.0)
"""How strongly an emotion is asked for: 0 = the neutral centre of the plane, 1 = the word as it is,
2 = as far along the word's direction as the plane goes (see :func:`intensify`)."""

INTENSIFIERS: Final[dict[str, float]] = {
    "slightly": 0.5, "a little": 0.5, "a bit": 0.5, "somewhat": 0.75,
    "very": 1.5, "really": 1.5, "extremely": 2.0,
}  # fmt: skip
"""Degree words that may come right before an emotion word in a prompt ("very sad") → intensity.

"slightly" halves the distance from the neutral centre; "extremely" is the top of the range."""


@dataclass(frozen=True)
class Emotion:
    """A resolved emotion: the word, its quadrant and its point in the valence/arousal plane.

    ``word`` is the vocabulary word (after typo correction) or, for a quadrant request such as "Q4",
    the quadrant's display name; for :func:`emotion_from_va` it is the nearest word in the quadrant.
    """

    word: str
    quadrant: str
    valence: float
    arousal: float

    @property
    def name(self) -> str:
        """Human label such as ``"calm (Q4)"``, for logs, file names and the demo."""
        return f"{self.word} ({self.quadrant})"


def quadrant_of(valence: float, arousal: float) -> str:
    """Quadrant of a point by the signs of its coordinates; 0 counts as positive.

    Ties go to the positive side so every point, including the origin, has exactly one quadrant.
    """
    if valence >= 0:
        return "Q1" if arousal >= 0 else "Q4"
    return "Q2" if arousal >= 0 else "Q3"


# (valence, arousal), grouped by quadrant. Order inside a group only breaks ties in nearest-word lookup.
_COORDS: Final[dict[str, tuple[float, float]]] = {
    # Q1: high valence, high arousal
    "happy": (0.85, 0.35),
    "joyful": (0.85, 0.45),
    "cheerful": (0.8, 0.4),
    "funny": (0.7, 0.4),
    "excited": (0.65, 0.75),
    "exciting": (0.6, 0.7),
    "energetic": (0.45, 0.85),
    "triumphant": (0.7, 0.65),
    "magnificent": (0.75, 0.55),
    # Q2: low valence, high arousal
    "tense": (-0.35, 0.7),
    "angry": (-0.7, 0.75),
    "aggressive": (-0.55, 0.85),
    "fear": (-0.7, 0.65),
    "fearful": (-0.65, 0.6),
    "scary": (-0.75, 0.6),
    "anxious": (-0.5, 0.6),
    "dark": (-0.55, 0.3),
    # Q3: low valence, low arousal
    "sad": (-0.75, -0.4),
    "melancholic": (-0.55, -0.45),
    "melancholy": (-0.5, -0.5),
    "lonely": (-0.65, -0.35),
    "depressed": (-0.8, -0.5),
    "gloomy": (-0.7, -0.45),
    "nostalgic": (-0.2, -0.35),
    "bored": (-0.4, -0.7),
    # Q4: high valence, low arousal
    "calm": (0.5, -0.7),
    "relaxed": (0.6, -0.65),
    "peaceful": (0.65, -0.6),
    "serene": (0.6, -0.55),
    "romantic": (0.7, -0.25),
    "warm": (0.65, -0.3),
    "tender": (0.6, -0.35),
    "gentle": (0.5, -0.45),
    "dreamy": (0.4, -0.5),
    "quiet": (0.3, -0.65),
    "lazy": (0.15, -0.75),
}

WORDS: Final[dict[str, Emotion]] = {
    w: Emotion(word=w, quadrant=quadrant_of(v, a), valence=v, arousal=a) for w, (v, a) in _COORDS.items()
}
"""Every accepted emotion word → its :class:`Emotion` (quadrant derived from the coordinates)."""

_AUTOCORRECT_CUTOFF: Final = 0.85  # high enough that "sat" is not silently read as "sad"
_SUGGEST_CUTOFF: Final = 0.6
_QUADRANT_RE: Final = re.compile(r"^q([1-4])$")


def normalise(word: str) -> str:
    """Lower-case, trim, and fold ``-``/``_``/runs of spaces into one space ("Video-Game" → "video game")."""
    return " ".join(re.sub(r"[-_]", " ", word).lower().split())


def _autocorrect(word: str, vocabulary: list[str]) -> str | None:
    """The one vocabulary entry that ``word`` is an obvious typo of, or None when none or several are.

    Only a single match at a high cutoff is accepted, so a correction is never a guess between two
    words: "melancolic" → melancholic, but "melancholi" (close to melancholic *and* melancholy) is
    refused with suggestions instead.
    """
    matches = difflib.get_close_matches(word, vocabulary, n=2, cutoff=_AUTOCORRECT_CUTOFF)
    return matches[0] if len(matches) == 1 else None


def _suggestions(word: str, vocabulary: list[str]) -> str:
    matches = difflib.get_close_matches(word, vocabulary, n=3, cutoff=_SUGGEST_CUTOFF)
    return ", ".join(matches) if matches else "none"


def _check_str(word: object, what: str, example: str) -> str:
    """Type-check and normalise user input; the error says what a valid value looks like."""
    if not isinstance(word, str):
        raise InvalidInputError(f"{what} must be a string such as {example}, got {type(word).__name__}")
    norm = normalise(word)
    if not norm:
        raise InvalidInputError(f"empty {what}; give a word such as {example}")
    return norm


def resolve_emotion(word: str) -> Emotion:
    """Turn a user's emotion word into an :class:`Emotion`.

    Accepts vocabulary words in any case with surrounding whitespace, quadrant codes ("Q1", "q3") —
    which resolve to the quadrant centre with the quadrant's display name — and single unambiguous
    typos ("melancolic" → melancholic). Anything else raises :class:`InvalidInputError` with a
    one-line message listing close matches, so the CLI can print it as is.
    """
    norm = _check_str(word, "emotion", "'calm' or a quadrant Q1..Q4")
    m = _QUADRANT_RE.match(norm)
    if m:
        q = f"Q{m.group(1)}"
        v, a = QUADRANT_VA[q]
        return Emotion(word=QUADRANT_NAMES[q], quadrant=q, valence=v, arousal=a)
    return lookup(WORDS, norm, word, "emotion", "or use Q1..Q4 or --valence/--arousal")


def lookup(table: dict, norm: str, word: str, kind: str, hint: str):
    """`table[norm]`, or the entry of its single obvious typo, or one line listing close matches.

    Args:
        table: normalised word → value. norm: the `normalise`d word. word: as the user typed it (for the
            message). kind: what is looked up ("emotion", "instrument"). hint: the message's closing advice.

    Returns:
        The value.

    Raises:
        InvalidInputError: no entry and no single obvious typo; the line lists close matches.
    """
    if norm in table:
        return table[norm]
    vocabulary = list(table)
    fixed = _autocorrect(norm, vocabulary)
    if fixed is not None:
        return table[fixed]
    raise InvalidInputError(f"unknown {kind} {word.strip()!r}; close matches: {_suggestions(norm, vocabulary)} "
                            f"({hint})")


def _check_coordinate(value: object, axis: str) -> float:
    """Validate one coordinate: a finite real in [-1, 1]; numpy scalars pass, bools are rejected as bugs."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{axis} must be a number in [-1, 1], got {value!r}")
    x = float(value)
    if not math.isfinite(x) or not -1.0 <= x <= 1.0:
        raise InvalidInputError(f"{axis} must be in [-1, 1], got {x:g}")
    return x


def emotion_from_va(valence: float, arousal: float) -> Emotion:
    """An :class:`Emotion` for a point the user gave directly (``--valence/--arousal``).

    The point itself is kept; the quadrant comes from the signs (0 → positive side) and the word is
    the nearest vocabulary word *within that quadrant*, so the label never contradicts the quadrant.
    """
    v = _check_coordinate(valence, "valence")
    a = _check_coordinate(arousal, "arousal")
    q = quadrant_of(v, a)
    candidates = [e for e in WORDS.values() if e.quadrant == q]
    nearest = min(candidates, key=lambda e: (e.valence - v) ** 2 + (e.arousal - a) ** 2)
    return Emotion(word=nearest.word, quadrant=q, valence=v, arousal=a)


TRAJECTORY_MAX_BARS: Final = 128  # the longest piece the generator writes (`request.BARS_RANGE`)
TRAJECTORY_MIN_BARS: Final = 2  # a section shorter than this is no phrase (`music.form.MIN_SECTION_BARS`)
_VA_PAIR = re.compile(r"^\s*([+-]?\d*\.?\d+)\s*/\s*([+-]?\d*\.?\d+)\s*$")
_TRAJECTORY_HINT = "write emotion:bars pairs, e.g. \"calm:8,tense:8,calm:8\" (a word, Q1..Q4 or valence/arousal)"


def parse_trajectory(text: str) -> list[tuple[Emotion, int]]:
    """An emotion trajectory as (emotion, bars) sections: "calm:8,tense:8,0.5/-0.3:8".

    Each section is a vocabulary word (typos corrected as for `resolve_emotion`), a quadrant code, or a
    valence/arousal pair "v/a" in [-1, 1], then ":" and its length in bars.

    Args:
        text: comma-separated `target:bars` items.

    Returns:
        The sections in order.

    Raises:
        InvalidInputError: one line naming the item at fault: no bar count, a bar count under
            `TRAJECTORY_MIN_BARS`, an unknown word (with close matches), a point off the plane, or more
            than `TRAJECTORY_MAX_BARS` bars in all.
    """
    items = [t for t in str(text).split(",")]
    if not str(text).strip() or any(not t.strip() for t in items):
        raise InvalidInputError(f"trajectory {text!r} is empty or has an empty section; {_TRAJECTORY_HINT}")
    out = []
    for item in items:
        target, sep, count = item.rpartition(":")
        if not sep or not target.strip():
            raise InvalidInputError(f"trajectory section {item.strip()!r} has no bar count; {_TRAJECTORY_HINT}")
        try:
            bars = int(count.strip())
        except ValueError:
            raise InvalidInputError(f"trajectory section {item.strip()!r}: {count.strip()!r} is not a whole number of "
                                    f"bars; {_TRAJECTORY_HINT}") from None
        if bars < TRAJECTORY_MIN_BARS:
            raise InvalidInputError(f"trajectory section {item.strip()!r}: a section needs at least "
                                    f"{TRAJECTORY_MIN_BARS} bars")
        pair = _VA_PAIR.match(target)
        try:
            emo = emotion_from_va(float(pair.group(1)), float(pair.group(2))) if pair else resolve_emotion(target)
        except InvalidInputError as e:
            raise InvalidInputError(f"trajectory section {item.strip()!r}: {e}") from None
        out.append((emo, bars))
    total = sum(b for _, b in out)
    if total > TRAJECTORY_MAX_BARS:
        raise InvalidInputError(f"trajectory {text!r} is {total} bars long; at most {TRAJECTORY_MAX_BARS} bars in all")
    return out


def intensify(valence: float, arousal: float, intensity: float) -> tuple[float, float]:
    """The point `intensity` times as strong as (valence, arousal), along the same direction.

    Why piecewise: plain scaling clipped to the square would saturate most words well before 2 (angry,
    at arousal 0.75, reaches the edge at 1.33), so the top of the range would say nothing. Instead
    0 → 1 scales from the neutral centre to the point, and 1 → 2 moves on from the point to where its
    ray leaves [-1, 1]²: every intensity is a different point and each coordinate moves monotonically.

    Args:
        valence, arousal: the point in [-1, 1]² (the asked word's or the user's own).
        intensity: in :data:`INTENSITY_RANGE`; 1 returns the point itself.

    Returns:
        The (valence, arousal) to aim the attributes at; inside [-1, 1]².
    """
    t = min(max(float(intensity), INTENSITY_RANGE[0]), INTENSITY_RANGE[1])
    v, a = float(valence), float(arousal)
    if t <= 1.0:
        return t * v, t * a
    reach = max(abs(v), abs(a))
    if reach == 0.0:
        return 0.0, 0.0  # the centre has no direction
    edge = (v / reach, a / reach)
    return v + (t - 1.0) * (edge[0] - v), a + (t - 1.0) * (edge[1] - a)


def genre_word(word: str) -> str:
    """The vocabulary's spelling of a user genre word (a key of :data:`GENRE_ALIASES`), typos corrected.

    Args:
        word: what the user typed ("Jaz", "video-game").

    Returns:
        The alias it names ("jazz", "video game"), so a caller can tell a stand-in genre from a real one.

    Raises:
        InvalidInputError: not a genre word; one line with close matches.
    """
    norm = _check_str(word, "genre", "'pop' or 'classical'")
    keys = {k: k for k in GENRE_ALIASES}
    return lookup(keys, norm, word, "genre", f"training genres: {', '.join(GENRES)}")


def resolve_genre(word: str) -> str:
    """Map a user genre word to the nearest training genre (one of :data:`GENRES`).

    The generator only knows the genres it was trained on; XMusic's other genres are routed to the
    closest one (country → folk, jazz/rock → pop, :data:`GENRE_STANDINS`) rather than rejected, so
    XMusic-style prompts work; the request layer says so in a notice.
    Unknown words raise :class:`InvalidInputError` listing close matches.
    """
    return GENRE_ALIASES[genre_word(word)]
