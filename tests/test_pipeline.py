"""EmoMusic pipeline on the tiny random "debug" model: bar limits, seeding, export, input checks.

The debug model is random, so these tests check wiring and contracts (lengths, determinism, errors),
not musical quality.
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from emomusic.errors import InvalidInputError
from emomusic.export.midi import key_signature_name
from emomusic.music.attributes import estimate_key
from emomusic.music.notes import Notes
from emomusic.pipeline import EmoMusic
from emomusic.request import GenerationRequest, ResolvedRequest

BARS = 2


@pytest.fixture(scope="module")
def em() -> EmoMusic:
    return EmoMusic.from_pretrained("debug")


@pytest.fixture(scope="module")
def calm(em: EmoMusic):
    return em.generate(emotion="calm", bars=BARS, candidates=2, seed=3)


def _bars_in(em: EmoMusic, tokens: list[int]) -> int:
    return int(np.sum(np.asarray(tokens) == em.tokenizer.bar_id))


def test_generate_returns_candidates_within_the_bars(em: EmoMusic, calm) -> None:
    assert len(calm) == 2
    for cand in calm:
        notes = cand.notes
        assert len(notes) > 0
        limit = BARS * notes.beats_per_bar
        assert (notes.start >= 0).all() and (notes.start < limit).all()
        assert (notes.start + notes.duration <= limit + 1e-9).all()
        assert (notes.duration > 0).all()
        assert 1 <= _bars_in(em, cand.tokens) <= BARS
        assert cand.method == "attributes" and cand.seed == 3
        a = cand.attributes
        assert (a.emotion, a.quadrant) == ("calm", "Q4")
        assert a.explanation and a.source.startswith("debug/")
        assert set(cand.measured) == set(a.controls)
        assert em.tokenizer.eos_id not in cand.tokens


def test_candidates_are_ranked_best_first(em: EmoMusic, calm) -> None:
    s = [c.scores["score"] for c in calm]
    assert s == sorted(s, reverse=True)
    assert all("control_fit" in c.scores and "quality" in c.scores for c in calm)


def test_ranking_by_the_attribute_fit_puts_the_closest_candidate_first(em: EmoMusic) -> None:
    """The debug selector's own weights are untuned; the shipped one's put most weight on this term."""
    weights = {"quality": 0.0, "emotion": 0.0, "genre": 0.0, "control": 1.0}
    cands = em.generate(emotion="sad", bars=BARS, candidates=4, seed=11, select_weights=weights)
    fits = [c.scores["control_fit"] for c in cands]
    assert len(set(fits)) > 1  # otherwise any order would pass
    assert fits == sorted(fits, reverse=True)


def test_same_seed_gives_identical_tokens_and_files(em: EmoMusic, calm, tmp_path) -> None:
    again = em.generate(emotion="calm", bars=BARS, candidates=2, seed=3)
    assert [c.tokens for c in again] == [c.tokens for c in calm]
    a = em.save(calm[0], tmp_path / "a.mid")
    b = em.save(again[0], tmp_path / "b.mid")
    assert a.read_bytes() == b.read_bytes()


def test_different_seeds_differ(em: EmoMusic, calm) -> None:
    other = em.generate(emotion="calm", bars=BARS, candidates=2, seed=4)
    assert {tuple(c.tokens) for c in other} != {tuple(c.tokens) for c in calm}


def test_exported_file_is_a_midi_file(em: EmoMusic, calm, tmp_path) -> None:
    path = em.save(calm[0], tmp_path / "calm.mid")
    mid = mido.MidiFile(str(path))
    assert mid.type == 1 and mid.ticks_per_beat == 480
    ons = [m for t in mid.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert 0 < len(ons) <= len(calm[0].notes)
    bar_ticks = 480 * calm[0].notes.beats_per_bar
    assert sum(m.time for m in mid.tracks[1]) <= BARS * bar_ticks  # ends on the bar line


def test_save_does_not_overwrite_without_force(em: EmoMusic, calm, tmp_path) -> None:
    path = tmp_path / "x.mid"
    path.write_bytes(b"keep me")
    with pytest.raises(InvalidInputError):
        em.save(calm[0], path)
    assert path.read_bytes() == b"keep me"
    em.save(calm[0], path, force=True)
    assert path.read_bytes()[:4] == b"MThd"


def test_token_method(em: EmoMusic) -> None:
    cands = em.generate(emotion="sad", bars=BARS, candidates=1, seed=5, method="token")
    assert len(cands) == 1
    c = cands[0]
    assert c.method == "token" and c.attributes.quadrant == "Q3"
    assert (c.notes.start < BARS * c.notes.beats_per_bar).all()
    assert 1 <= _bars_in(em, c.tokens) <= BARS


def test_valence_arousal_and_tempo(em: EmoMusic) -> None:
    c = em.generate(valence=-0.6, arousal=0.7, bars=1, seed=1, tempo=90)[0]
    assert c.attributes.quadrant == "Q2"
    assert (c.notes.start < c.notes.beats_per_bar).all()
    assert abs(c.notes.tempo / 90 - 1) < 0.05  # guidance forces the nearest tempo token


@pytest.mark.parametrize("kwargs", [
    {"bars": 0}, {"bars": 129}, {"bars": "many"},
    {"temperature": 0.0}, {"temperature": 5.0}, {"temperature": float("nan")},
    {"top_p": 0.0}, {"top_p": 1.5},
    {"method": "magic"},
    {"candidates": 0},
    {"seed": -1},
    {"tempo": 1000},
    {"genre": "polka"},
    {"emotion": None},
    {"emotion": "blorp"},
    {"emotion": None, "valence": 2.0, "arousal": 0.0},
])
def test_invalid_arguments_raise_one_line(em: EmoMusic, kwargs) -> None:
    args = {"emotion": "calm", "bars": 1, **kwargs}
    with pytest.raises(InvalidInputError) as err:
        em.generate(**args)
    msg = str(err.value)
    assert msg and "\n" not in msg


# ------------------------------------------------------------------ one request, every front end
PROMPT = "a rainy lonely night"  # free text: its point (-0.29, -0.55) is not the word "lonely"'s own


def test_cli_demo_and_api_give_the_same_music_for_the_same_prompt(em: EmoMusic, tmp_path, capsys) -> None:
    """The CLI used to pass the projected point and the demo the projected word: different music."""
    from emomusic.apps.demo import DemoService, Workspace
    from emomusic.cli import main

    cli = tmp_path / "cli.mid"
    assert main(["generate", "--checkpoints", "debug", "--prompt", PROMPT, "--seed", "6", "--bars", str(BARS),
                 "--candidates", "2", "--out", str(cli)]) == 0, capsys.readouterr().err
    demo = DemoService(em, Workspace.create(tmp_path / "demo")).generate(
        emotion="", prompt=PROMPT, seed=6, bars=BARS, candidates=2)
    api = em.generate(prompt=PROMPT, seed=6, bars=BARS, candidates=2)
    assert [c.tokens for c in demo["candidates"]] == [c.tokens for c in api]
    assert api[0].attributes.emotion == "lonely" and api[0].attributes.valence == pytest.approx(-0.292)
    em.save(api[0], tmp_path / "api.mid")
    assert cli.read_bytes() == demo["files"]["mid"].read_bytes() == (tmp_path / "api.mid").read_bytes()


def test_a_word_and_its_own_point_give_the_same_music(em: EmoMusic) -> None:
    word = em.generate(emotion="sad", bars=BARS, seed=2)[0]
    point = em.generate(valence=-0.75, arousal=-0.4, bars=BARS, seed=2)[0]
    assert word.tokens == point.tokens and word.attributes.emotion == point.attributes.emotion == "sad"


def test_generate_takes_a_request_or_keywords_not_both(em: EmoMusic) -> None:
    req = GenerationRequest(emotion="calm", bars=BARS, seed=3, candidates=2)
    plan = req.resolve()
    assert isinstance(plan, ResolvedRequest) and (plan.emotion, plan.quadrant) == ("calm", "Q4")
    by_keywords = [c.tokens for c in em.generate(emotion="calm", bars=BARS, seed=3, candidates=2)]
    assert [c.tokens for c in em.generate(req)] == [c.tokens for c in em.generate(plan)] == by_keywords
    with pytest.raises(TypeError, match="not both"):
        em.generate(req, seed=4)
    with pytest.raises(TypeError):
        em.generate("calm")


@pytest.mark.parametrize(("request_kwargs", "says"), [
    ({"emotion": "sadd"}, "emotion 'sadd' read as 'sad'"),
    ({"emotion": "sad", "valence": 0.9}, "valence/arousal win over emotion 'sad'"),
    ({"emotion": "calm", "genre": "clasical"}, "genre 'clasical' read as 'classical'"),
    ({"emotion": "calm", "genre": "jaz"}, "genre 'jaz' read as 'jazz', which has no training data: generating pop"),
    ({"emotion": "happy", "prompts": {"prompt": "sad, slow"}}, "emotion 'happy' wins over the mood of the prompt"),
])
def test_typos_and_conflicts_give_one_notice_each(request_kwargs, says) -> None:
    notices = GenerationRequest(**request_kwargs).resolve().notices
    assert len(notices) == 1 and says in notices[0] and "\n" not in notices[0]


def test_no_notice_for_plain_input_and_the_point_wins_over_the_word() -> None:
    assert GenerationRequest(emotion=" Calm ", genre="Video-Game").resolve().notices == ()
    plan = GenerationRequest(emotion="sad", valence=0.9).resolve()
    assert (plan.valence, plan.arousal, plan.quadrant) == (0.9, -0.4, "Q4")  # the word fills the missing axis


def test_the_fallback_mood_is_used_only_when_nothing_names_one() -> None:
    assert GenerationRequest(fallback_mood=(0.7, 0.6)).resolve().quadrant == "Q1"
    assert GenerationRequest(emotion="sad", fallback_mood=(0.7, 0.6)).resolve().quadrant == "Q3"
    plan = GenerationRequest(prompts={"prompt": "fast, jazz"}, fallback_mood=(-0.5, 0.5)).resolve()
    assert plan.quadrant == "Q2" and plan.tempo is not None
    assert plan.notices == ("genre 'jazz' has no training data: generating pop", plan.notices[1])
    assert "names no mood" in plan.notices[1]
    with pytest.raises(InvalidInputError, match="names no emotion"):
        GenerationRequest(prompts={"prompt": "fast, jazz"}).resolve()
    with pytest.raises(InvalidInputError, match="emotion word"):
        GenerationRequest(genre="folk").resolve()


@pytest.mark.parametrize(("request_kwargs", "genre", "asked"), [
    ({"emotion": "calm", "genre": "rock"}, "pop", "rock"),
    ({"emotion": "calm", "genre": " Jazz "}, "pop", "jazz"),
    ({"prompts": {"prompt": "sad, country"}}, "folk", "country"),
])
def test_a_genre_without_data_says_what_is_generated(request_kwargs, genre, asked) -> None:
    plan = GenerationRequest(**request_kwargs).resolve()
    assert (plan.genre, plan.genre_asked) == (genre, asked)
    assert plan.notices == (f"genre {asked!r} has no training data: generating {genre}",)


def test_genres_with_data_and_their_synonyms_need_no_notice() -> None:
    for word, genre in (("folk", "folk"), ("baroque", "classical"), ("video game", "game")):
        plan = GenerationRequest(emotion="calm", genre=word).resolve()
        assert (plan.genre, plan.genre_asked, plan.notices) == (genre, word, ())
    assert GenerationRequest(emotion="calm").resolve().genre_asked is None


def test_intensity_comes_from_the_request_or_the_prompts_degree_word() -> None:
    def strength(**kwargs) -> float:
        return GenerationRequest(**kwargs).resolve().intensity

    assert strength(prompts={"prompt": "very sad"}) > strength(prompts={"prompt": "sad"}) == 1.0 \
        > strength(prompts={"prompt": "slightly sad"})
    assert strength(prompts={"prompt": "very sad"}, intensity=0.25) == 0.25
    for bad in (7, -0.1, float("nan"), "much"):
        with pytest.raises(InvalidInputError, match="intensity"):
            GenerationRequest(emotion="sad", intensity=bad).resolve()
    plan = GenerationRequest(emotion="sad", intensity=1.5, method="token").resolve()
    assert plan.notices == ("intensity has no effect with method 'token' (it conditions on the quadrant alone)",)


def test_intensity_moves_the_asked_attributes_and_the_music(em: EmoMusic) -> None:
    def piece(t: float):
        return em.generate(emotion="angry", intensity=t, bars=BARS, seed=1)[0]

    pieces = [piece(t) for t in (0.0, 1.0, 2.0)]
    e = pieces[1].attributes
    assert (e.emotion, e.valence, e.arousal) == ("angry", -0.7, 0.75)  # the label stays the word's
    assert len({c.attributes.source for c in pieces}) == 1  # the same real piece, moved
    for c, t in zip(pieces, (0.0, 1.0, 2.0), strict=True):
        assert c.attributes.values == em.attributes("angry", k=3, seed=1, intensity=t).values
    step = np.diff([[c.attributes.values[k] for k in e.values] for c in pieces], axis=0)
    assert ((step >= 0).all(0) | (step <= 0).all(0)).all() and np.abs(step).sum() > 0
    assert piece(1.0).tokens == em.generate(emotion="angry", bars=BARS, seed=1)[0].tokens  # 1 = as the word is


def test_save_dispatches_on_the_suffix_and_writes_the_notes_key(em: EmoMusic, calm, tmp_path) -> None:
    import music21

    key = estimate_key(calm[0].notes)  # the key the notes are in, whatever key was asked for
    xml = em.save(calm[0], tmp_path / "calm.musicxml")
    mid = em.save(calm[0], tmp_path / "calm.mid")
    sig = {m.key for t in mido.MidiFile(str(mid)).tracks for m in t if m.type == "key_signature"}
    assert sig == {key_signature_name(key)}
    parsed = music21.converter.parse(str(xml)).recurse().getElementsByClass("KeySignature")
    assert parsed and parsed[0].asKey(key[1]).tonic.pitchClass == key[0]
    with pytest.raises(InvalidInputError, match=r"\.mid"):
        em.save(calm[0], tmp_path / "calm.doc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calm.mid", "calm.musicxml"]


# ------------------------------------------------------------------ truncate_to_bars
def test_truncate_to_bars_in_four_four() -> None:
    notes = Notes.from_arrays([60, 62, 64, 65, 67], [0.0, 3.5, 7.5, 8.0, 8.0 - 1e-7],
                              [1.0, 1.0, 2.0, 1.0, 1.0], [64] * 5, tempo=100, time_signature=(4, 4))
    cut = notes.truncate(2)
    np.testing.assert_array_equal(cut.pitch, [60, 62, 64])
    np.testing.assert_allclose(cut.start, [0.0, 3.5, 7.5])
    np.testing.assert_allclose(cut.duration, [1.0, 1.0, 0.5])  # the last one is cut at beat 8
    assert cut.tempo == 100 and cut.time_signature == (4, 4)


def test_truncate_to_bars_in_three_four_and_six_eight() -> None:
    notes = Notes.from_arrays([60, 62, 64], [0.0, 2.5, 3.0], [4.0, 1.0, 1.0], [64] * 3, time_signature=(3, 4))
    cut = notes.truncate(1)  # one bar of 3/4 = 3 beats
    np.testing.assert_array_equal(cut.pitch, [60, 62])
    np.testing.assert_allclose(cut.duration, [3.0, 0.5])
    notes68 = Notes.from_arrays([60, 62], [2.5, 3.0], [2.0, 1.0], [64] * 2, time_signature=(6, 8))
    cut68 = notes68.truncate(1)  # one bar of 6/8 = 3 quarter-note beats
    np.testing.assert_array_equal(cut68.pitch, [60])
    np.testing.assert_allclose(cut68.duration, [0.5])


def test_truncate_to_bars_keeps_short_pieces_and_empties() -> None:
    notes = Notes.from_arrays([60, 64], [0, 1], [1, 1], [64, 64])
    cut = notes.truncate(4)
    np.testing.assert_array_equal(cut.start, notes.start)
    np.testing.assert_array_equal(cut.duration, notes.duration)
    assert len(Notes.from_arrays([], [], [], []).truncate(2)) == 0
