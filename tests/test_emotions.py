"""The emotion vocabulary: every word in its quadrant, tolerant resolution, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.vocab.emotions import (
    GENRE_STANDINS,
    GENRES,
    INTENSIFIERS,
    INTENSITY_RANGE,
    QUADRANT_NAMES,
    QUADRANT_VA,
    QUADRANTS,
    WORDS,
    XMUSIC_GENRES,
    XMUSIC_TAGS,
    Emotion,
    emotion_from_va,
    genre_word,
    intensify,
    quadrant_of,
    resolve_emotion,
    resolve_genre,
)

EXPECTED_QUADRANT = {
    "Q1": "happy excited exciting joyful funny cheerful energetic triumphant magnificent",
    "Q2": "angry tense fear fearful anxious scary aggressive dark",
    "Q3": "sad melancholic melancholy lonely depressed gloomy nostalgic bored",
    "Q4": "calm relaxed peaceful romantic warm lazy quiet serene dreamy tender gentle",
}


@pytest.mark.parametrize("tag", XMUSIC_TAGS)
def test_every_xmusic_tag_resolves(tag: str) -> None:
    assert resolve_emotion(tag).word == tag


def test_xmusic_tags_are_the_papers_eleven() -> None:
    assert sorted(XMUSIC_TAGS) == sorted(
        "angry exciting fear funny happy lazy magnificent quiet romantic sad warm".split()
    )


@pytest.mark.parametrize("quadrant,words", EXPECTED_QUADRANT.items())
def test_words_are_in_their_design_quadrant(quadrant: str, words: str) -> None:
    for w in words.split():
        assert resolve_emotion(w).quadrant == quadrant, w


def test_every_word_coordinates_lie_in_its_quadrant_and_range() -> None:
    signs = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}
    for w, e in WORDS.items():
        assert e.word == w
        assert -1 <= e.valence <= 1 and -1 <= e.arousal <= 1, w
        sv, sa = signs[e.quadrant]
        assert e.valence * sv > 0 and e.arousal * sa > 0, w  # strictly inside, not on an axis
        assert quadrant_of(e.valence, e.arousal) == e.quadrant


def test_quadrant_tables_agree() -> None:
    assert QUADRANTS == ("Q1", "Q2", "Q3", "Q4")
    assert QUADRANT_NAMES == {"Q1": "happy", "Q2": "tense", "Q3": "sad", "Q4": "calm"}
    for q, (v, a) in QUADRANT_VA.items():
        assert quadrant_of(v, a) == q
        assert WORDS[QUADRANT_NAMES[q]].quadrant == q


def test_calm_is_q4_with_label() -> None:
    e = resolve_emotion("calm")
    assert e.quadrant == "Q4" and e.name == "calm (Q4)"
    assert isinstance(e, Emotion)


@pytest.mark.parametrize("raw", ["Calm", "  CALM\t", "calm\n"])
def test_case_and_whitespace(raw: str) -> None:
    assert resolve_emotion(raw) == WORDS["calm"]


@pytest.mark.parametrize(
    "typo,word",
    [("melancolic", "melancholic"), ("hapy", "happy"), ("exiting", "exciting"), ("peacefull", "peaceful")],
)
def test_unambiguous_typos_are_corrected(typo: str, word: str) -> None:
    assert resolve_emotion(typo).word == word


def test_ambiguous_typo_is_not_guessed() -> None:
    # "melancholi" is equally close to melancholic and melancholy: refuse, but suggest both.
    with pytest.raises(InvalidInputError, match="melancholic, melancholy"):
        resolve_emotion("melancholi")


@pytest.mark.parametrize("raw,q", [("Q1", "Q1"), ("q3", "Q3"), (" Q4 ", "Q4"), ("q2", "Q2")])
def test_quadrant_codes(raw: str, q: str) -> None:
    e = resolve_emotion(raw)
    assert e.quadrant == q
    assert (e.valence, e.arousal) == QUADRANT_VA[q]
    assert e.word == QUADRANT_NAMES[q]


def test_quadrant_names_resolve_to_their_quadrant() -> None:
    for q, name in QUADRANT_NAMES.items():
        assert resolve_emotion(name).quadrant == q


def test_unknown_word_error_lists_close_matches_on_one_line() -> None:
    with pytest.raises(InvalidInputError) as info:
        resolve_emotion("Anxiousness")  # near "anxious", but too far to auto-correct
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("unknown emotion 'Anxiousness'; close matches: ")
    assert "anxious" in msg and "Q1..Q4" in msg and "--valence/--arousal" in msg


def test_unknown_word_without_matches() -> None:
    with pytest.raises(InvalidInputError, match="close matches: none") as info:
        resolve_emotion("xyzzy\nplugh")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_empty_or_non_string(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        resolve_emotion(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "v,a,q",
    [
        (0.6, 0.6, "Q1"),
        (-0.6, 0.6, "Q2"),
        (-0.6, -0.6, "Q3"),
        (0.6, -0.6, "Q4"),
        (0, 0, "Q1"),
        (0.0, -0.2, "Q4"),
        (-0.3, 0.0, "Q2"),
        (1, -1, "Q4"),
    ],
)
def test_emotion_from_va_quadrants(v: float, a: float, q: str) -> None:
    e = emotion_from_va(v, a)
    assert e.quadrant == q
    assert (e.valence, e.arousal) == (v, a)  # the user's point is kept
    assert WORDS[e.word].quadrant == q  # the label never contradicts the quadrant


def test_emotion_from_va_nearest_word() -> None:
    sad = WORDS["sad"]
    assert emotion_from_va(sad.valence, sad.arousal).word == "sad"
    assert emotion_from_va(0.5, -0.7).word == "calm"
    assert emotion_from_va(np.float32(0.5), np.float64(-0.7)).word == "calm"


@pytest.mark.parametrize(
    "v,a,axis",
    [
        (1.5, 0, "valence"),
        (0, -1.01, "arousal"),
        (float("nan"), 0, "valence"),
        ("0.5", 0, "valence"),
        (True, 0, "valence"),
        (0, float("inf"), "arousal"),
    ],
)
def test_emotion_from_va_range_errors(v: object, a: object, axis: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{axis} must be"):
        emotion_from_va(v, a)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "word,genre",
    [
        ("country", "folk"),
        ("jazz", "pop"),
        ("rock", "pop"),
        ("game", "game"),
        ("video game", "game"),
        ("Video-Game", "game"),
        ("baroque", "classical"),
        ("classical", "classical"),
        ("early music", "early"),
        ("Renaissance", "early"),
        ("medieval", "early"),
        ("folk", "folk"),
        (" POP ", "pop"),
        ("clasical", "classical"),
    ],
)
def test_resolve_genre(word: str, genre: str) -> None:
    assert resolve_genre(word) == genre


def test_all_xmusic_and_training_genres_resolve() -> None:
    for g in XMUSIC_GENRES + GENRES:
        assert resolve_genre(g) in GENRES
    for g in GENRES:
        assert resolve_genre(g) == g


def test_unknown_genre_error() -> None:
    with pytest.raises(InvalidInputError) as info:
        resolve_genre("jaz fusion")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("unknown genre 'jaz fusion'; close matches:")
    assert "pop, game, classical, folk, early" in msg
    with pytest.raises(InvalidInputError):
        resolve_genre("")


# ------------------------------------------------------------------ intensity
@pytest.mark.parametrize("word", sorted(WORDS))
def test_intensify_moves_along_the_words_direction_inside_the_plane(word: str) -> None:
    e = WORDS[word]
    assert intensify(e.valence, e.arousal, 1.0) == (e.valence, e.arousal)
    assert intensify(e.valence, e.arousal, 0.0) == (0.0, 0.0)
    steps = np.linspace(*INTENSITY_RANGE, 17)
    points = np.array([intensify(e.valence, e.arousal, t) for t in steps])
    assert (np.abs(points) <= 1 + 1e-12).all()
    assert max(abs(x) for x in points[-1]) == pytest.approx(1.0)  # 2 = where the direction leaves the plane
    scale = np.linalg.norm(points, axis=1) / np.hypot(e.valence, e.arousal)
    np.testing.assert_allclose(points, scale[:, None] * np.array([e.valence, e.arousal]), atol=1e-12)
    assert (np.diff(scale) > 0).all()  # every step a different, stronger point


def test_intensifiers_are_ordered_and_inside_the_range() -> None:
    lo, hi = INTENSITY_RANGE
    assert all(lo < x <= hi for x in INTENSIFIERS.values())
    assert INTENSIFIERS["slightly"] < INTENSIFIERS["somewhat"] < 1 < INTENSIFIERS["very"] < INTENSIFIERS["extremely"]


def test_genres_without_data_are_named_and_still_resolve() -> None:
    assert set(GENRE_STANDINS) == set(XMUSIC_GENRES) - set(GENRES)
    assert all(GENRE_STANDINS[g] == resolve_genre(g) and resolve_genre(g) in GENRES for g in GENRE_STANDINS)
    assert genre_word(" Jaz ") == "jazz" and genre_word("Video-Game") == "video game"
