"""Tag and free-text prompts: the vocabulary, tempo words, typo handling, and quadrant accuracy on
the hand-labelled sentences in tests/fixtures/text_prompts.tsv (80 sentences, 20 per quadrant)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.prompt import text
from emomusic.prompt.tags import TagError, find_cues, parse_tags, tag_elements
from emomusic.vocab.emotions import WORDS, XMUSIC_GENRES, XMUSIC_TAGS, quadrant_of

FIXTURES = Path(__file__).parent / "fixtures"


def _labelled(name: str = "text_prompts.tsv") -> list[tuple[str, str]]:
    rows = [line.split("\t", 1) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return [(q, s) for q, s in rows]


def _accuracy(method: str, rows: list[tuple[str, str]]) -> float:
    hits = 0
    for q, sentence in rows:
        try:
            v, a, _, _ = text.text_point(sentence, method)
        except InvalidInputError:  # the lexicon found no cue: a miss
            continue
        hits += quadrant_of(v, a) == q
    return hits / len(rows)


@pytest.fixture
def no_text_extra(monkeypatch):
    """Pretend the [text] extra is not installed (an import of its tokenizers library fails)."""
    monkeypatch.setitem(sys.modules, "tokenizers", None)


# ------------------------------------------------------------------ tags
def test_the_labelled_set_is_big_and_balanced() -> None:
    rows = _labelled()
    assert len(rows) >= 60
    assert {q: sum(r[0] == q for r in rows) for q in ("Q1", "Q2", "Q3", "Q4")} == {f"Q{i}": 20 for i in range(1, 5)}
    others = _labelled("text_prompts_dev.tsv") + _labelled("text_prompts_fresh.tsv")
    assert not {s for _, s in rows} & {s for _, s in others}


@pytest.mark.parametrize("word", sorted(set(WORDS) | set(XMUSIC_TAGS)))
def test_every_emotion_word_is_a_tag_in_its_quadrant(word) -> None:
    el = tag_elements(word.upper())
    assert (el.emotion, el.quadrant) == (word, WORDS[word].quadrant)


@pytest.mark.parametrize("genre, expected", [(g, None) for g in XMUSIC_GENRES] + [("video game", "game")])
def test_genre_words_are_tags(genre, expected) -> None:
    el = tag_elements(genre)
    assert el.genre in ("pop", "folk", "classical", "game") and el.quadrant is None
    if expected:
        assert el.genre == expected


@pytest.mark.parametrize("prompt, bpm", [
    ("slow", 70), ("Very slow", 50), ("fast", 140), ("moderate", 100), ("allegro", 135), ("Adagio", 70),
    ("allegro moderato", 120), ("presto", 180), ("90 bpm", 90), ("90bpm", 90), ("tempo: 72", 72),
    ("bpm 150", 150), ("sad, largo", 50),
])
def test_tempo_words_and_numbers(prompt, bpm) -> None:
    assert tag_elements(prompt).tempo == bpm


def test_a_tag_list_sets_every_element_and_says_where_each_came_from() -> None:
    el = tag_elements("Sad; SLOW / jazz music")
    assert (el.emotion, el.quadrant, el.genre, el.tempo) == ("sad", "Q3", "pop", 70)
    assert len(el.sources) == 3 and "'jazz'" in el.sources[1] and "'slow'" in el.sources[2]


def test_two_emotion_tags_are_averaged() -> None:
    el = tag_elements("calm, quiet")
    assert el.quadrant == "Q4" and el.valence == pytest.approx((WORDS["calm"].valence + WORDS["quiet"].valence) / 2)


def test_small_typos_are_tolerated_and_unknown_words_get_suggestions() -> None:
    assert tag_elements("melancolic").emotion == "melancholic"
    assert tag_elements("hapy, allgro").tempo == 135
    with pytest.raises(TagError, match="close matches: sad") as exc:
        parse_tags("sda")
    assert exc.value.unknown == {"sda": ["sad"]}
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("bad", ["", "   ", "500 bpm", "tempo 12", "music"])
def test_bad_tag_prompts_are_one_line_errors(bad) -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_tags(bad)
    assert "\n" not in str(exc.value)


def test_find_cues_picks_exact_words_from_a_sentence() -> None:
    cues = find_cues("A slow, lonely jazz ballad at 80 bpm by my grandmother's grave")
    assert [p for p, _ in cues.emotions] == ["lonely"]
    assert cues.genres == [("jazz", "pop")]
    assert cues.tempo == ("80 bpm", 80.0)  # "grave" in a sentence is not the tempo marking
    assert find_cues("breakfast with folks").tempo is None and not find_cues("breakfast with folks").genres


# ------------------------------------------------------------------ degree words
def test_very_sad_is_stronger_than_sad_which_is_stronger_than_slightly_sad() -> None:
    strength = {p: tag_elements(p).intensity for p in ("very sad", "sad", "slightly sad", "a little sad",
                                                         "extremely sad", "somewhat sad")}
    assert strength["sad"] is None  # as named: the request reads None as 1
    assert strength["extremely sad"] > strength["very sad"] > 1 > strength["somewhat sad"] > strength["slightly sad"]
    assert strength["a little sad"] == strength["slightly sad"]
    el = tag_elements("very sad, slow")
    assert (el.emotion, el.valence, el.tempo) == ("sad", WORDS["sad"].valence, 70)  # the word's own point
    assert "intensity: tag 'very sad' → 1.5" in el.sources


def test_a_degree_word_goes_with_an_emotion_word_only() -> None:
    assert tag_elements("very slow, calm").tempo == 50 and tag_elements("very slow, calm").intensity is None
    assert tag_elements("very sad, lonely").intensity == 1.25  # each named emotion counts once
    with pytest.raises(TagError, match="'very' .*right before an emotion word"):
        tag_elements("very jazz")
    with pytest.raises(TagError, match="'extremely'"):
        tag_elements("sad extremely")


def test_free_text_reads_a_degree_word_right_before_an_emotion_word() -> None:
    cues = find_cues("I feel really lonely tonight, and a little happy; a very slow song")
    assert cues.degrees == [("really", 1.5), ("a little", 0.5)] and cues.tempo == ("very slow", 50.0)
    assert find_cues("a very rainy, lonely night").degrees == [None]  # "very" modifies "rainy", not a word


# ------------------------------------------------------------------ lexicon (always available)
def test_lexicon_reads_clear_sentences_and_negation() -> None:
    v, a, _, _ = text.text_point("an angry furious fight", "lexicon")
    assert quadrant_of(v, a) == "Q2"
    v, a, _, _ = text.text_point("a peaceful lullaby", "lexicon")
    assert quadrant_of(v, a) == "Q4"
    v_pos, *_ = text.text_point("a happy party", "lexicon")
    v_neg, *_ = text.text_point("not a happy party", "lexicon")
    assert v_neg < v_pos


def test_lexicon_accuracy_on_the_labelled_set() -> None:
    # Measured 0.900 (optimistic: the lexicon was written after these sentences; 0.575 on the fresh set).
    assert _accuracy("lexicon", _labelled()) >= 0.8


def test_without_the_text_extra_it_falls_back_to_the_lexicon_with_one_warning(no_text_extra, caplog) -> None:
    assert not text.embedding_available()
    with caplog.at_level(logging.WARNING, logger="emomusic"):
        el = text.text_elements("a funeral in the grey rain, slow")
    assert el.quadrant == "Q3" and el.tempo == 70
    warnings = [r for r in caplog.records if "lexicon" in r.getMessage()]
    assert len(warnings) == 1 and "emomusic[text]" in warnings[0].getMessage()
    assert "word lexicon" in el.sources[0]
    with pytest.raises(InvalidInputError, match="emomusic\\[text\\]"):
        text.text_point("a sunny day", "embedding")


def test_lexicon_without_any_cue_is_a_clear_error(no_text_extra) -> None:
    with pytest.raises(InvalidInputError, match="no emotion cue"):
        text.text_elements("xq zzv", method="lexicon")


@pytest.mark.parametrize("bad", ["", "  ", "x" * 2001])
def test_bad_text_is_a_one_line_error(bad) -> None:
    with pytest.raises(InvalidInputError):
        text.text_elements(bad)


# ------------------------------------------------------------------ sentence embedding (the [text] extra)
needs_model = pytest.mark.skipif(not text.embedding_available(), reason="needs emomusic[text]")


@needs_model
@pytest.mark.slow
def test_embedding_and_combined_accuracy_on_the_labelled_set() -> None:
    rows = _labelled()
    # Measured on these 80 sentences: embedding 0.938, combined 0.975 (lexicon 0.900); on the 40 written
    # after everything was frozen: embedding 0.925, combined 0.900 (lexicon 0.575).
    assert _accuracy("embedding", rows) >= 0.85
    assert _accuracy("combined", rows) >= 0.85
    assert _accuracy("combined", _labelled("text_prompts_fresh.tsv")) >= 0.85


@needs_model
def test_the_numpy_encoder_gives_sentence_transformers_embeddings() -> None:
    st = pytest.importorskip("sentence_transformers", reason="the reference encoder is not installed")
    sentences = ["a rainy lonely night", "x", "People LAUGHING and dancing at a party on the beach, all summer!",
                 "zombies breaking through the barricade", "calm " * 300]  # the last one is truncated to 256
    ours = text._encoder().encode(sentences)
    ref = st.SentenceTransformer(str(text._offline_model_dir()), device="cpu").encode(sentences,
                                                                                      normalize_embeddings=True)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert ((ours * ref).sum(1) > 1 - 1e-4).all()


@needs_model
@pytest.mark.slow
def test_text_elements_name_a_word_and_reuse_one_model() -> None:
    el = text.text_elements("a rainy lonely night, folk, 60 bpm")
    assert (el.quadrant, el.emotion, el.genre, el.tempo) == ("Q3", "lonely", "folk", 60)
    assert any("sentence-embedding" in s for s in el.sources)
    assert text._encoder() is text._encoder()  # loaded once per process
    el = text.text_elements("zombies breaking through the barricade")
    assert el.quadrant == "Q2" and el.emotion in {w for w, e in WORDS.items() if e.quadrant == "Q2"}


def test_prototype_embeddings_are_cached_in_the_user_cache_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    class Encoder:
        fingerprint = "weights.safetensors:1:2"
        calls = 0

        def encode(self, texts):
            Encoder.calls += 1
            return np.arange(len(texts) * 3, dtype=np.float32).reshape(len(texts), 3)

    enc = Encoder()
    first = text._cached_embeddings(enc, ["a", "b"])
    again = text._cached_embeddings(enc, ["a", "b"])
    assert Encoder.calls == 1 and np.array_equal(first, again)
    assert len(list((tmp_path / "emomusic" / "text").glob("embeddings-*.npy"))) == 1
    text._cached_embeddings(enc, ["a", "c"])  # other texts: another key
    assert Encoder.calls == 2
    for f in (tmp_path / "emomusic" / "text").glob("*.npy"):
        f.write_bytes(b"not an array")  # a damaged cache is recomputed, not trusted
    assert np.array_equal(text._cached_embeddings(enc, ["a", "b"]), first) and Encoder.calls == 3
