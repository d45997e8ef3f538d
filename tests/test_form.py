"""Bar-level form: the stall rule and the final tonic chord."""

from __future__ import annotations

import numpy as np

from emomusic.music.form import STALL_SPAN, close_on_tonic, enter_lightly, stall_flags
from emomusic.music.notes import Notes


def test_a_phrase_on_a_triad_stalls_and_a_moving_or_repeated_one_does_not() -> None:
    c, f, g = frozenset({0, 4, 7}), frozenset({5, 9, 0}), frozenset({7, 11, 2})
    flags = stall_flags([c, f, g, c] * 2 + [c] * 6)
    assert not flags[:8].any()  # I-IV-V-I twice: a repeat is form, not a stall
    assert flags[8 + STALL_SPAN - 2:].all() and not flags[8 + STALL_SPAN - 3]  # a whole phrase on C major


def _piece() -> Notes:
    """Three bars in D minor: a melody over a bass; the melody's last note (A5) rings over the last barline."""
    pitch = [38, 62, 65, 69, 45, 64, 67, 81, 50, 74, 77]
    start = [0, 0, 1, 2, 4, 4, 5, 7.5, 8, 9, 11.5]
    return Notes.from_arrays(pitch, start, [4, 1, 1, 2, 4, 1, 2, 2, 4, 2, 0.5], [60] * 8 + [80] * 3)


def test_the_last_bar_becomes_a_held_tonic_chord_over_the_tonic() -> None:
    out = close_on_tonic(_piece(), (2, "minor"), bars=2)
    last = out.start >= 4.0 - 1e-9
    chord = out.pitch[last]
    assert (out.start[last] == 4.0).all() and (out.start[last] + out.duration[last] == 8.0).all()  # held to the end
    assert chord.min() % 12 == 2 and set(chord % 12) == {2, 5, 9}  # D minor, D in the bass
    assert abs(int(chord.min()) - 38) <= 6  # the bass in the register the bass was in
    assert abs(int(chord.max()) - 69) <= 4  # the top near the melody's last note (A4)
    assert (out.start[~last] + out.duration[~last] <= 4.0 + 1e-9).all()  # the bars before end at the barline
    assert 60 <= int(np.median(out.velocity[last])) <= 80


def test_a_piece_ending_at_the_top_of_the_keyboard_still_closes_on_the_keyboard() -> None:
    # the bars before the last sit at A7-C8: a bass "near the lowest notes" would leave no room for a triad
    piece = Notes.from_arrays([105, 108, 106, 105], [0, 1, 4, 5], [1, 1, 1, 3], [70] * 4)
    out = close_on_tonic(piece, (9, "minor"), bars=2)
    chord = out.pitch[out.start >= 4.0 - 1e-9]
    assert set(chord % 12) == {9, 0, 4} and chord.min() % 12 == 9 and chord.max() <= 108


def test_the_last_bars_own_tonic_chord_figures_stay_in_its_first_half() -> None:
    # bar 2 as the model wrote it: an F (tonic chord) at the downbeat, E (not) on beat 2, A on beat 2.5,
    # D on beat 4 (the second half), and a D below where the bass will go
    piece = Notes.from_arrays([50, 62, 65, 69, 65, 64, 69, 74, 26], [0, 1, 2, 3, 4, 5, 5.5, 7, 4],
                              [1, 1, 1, 1, 1, 1, 1, 1, 4], [70] * 9)
    out = close_on_tonic(piece, (2, "minor"), bars=2)
    last = out.start >= 4.0 - 1e-9
    figures = last & (out.start > 4.0)
    assert list(zip(out.start[figures], out.pitch[figures], strict=True)) == [(5.5, 69)]  # A stays; E, D do not
    bass = out.pitch[last].min()
    assert bass % 12 == 2 and bass > 26 and out.start[last][np.argmin(out.pitch[last])] == 4.0
    assert (out.start[last] + out.duration[last] <= 8.0 + 1e-9).all()
    assert np.all(np.diff(out.start) >= 0)  # still in onset order


def test_a_piece_closes_in_the_key_its_cadence_prepared_unless_its_notes_left_that_signature() -> None:
    from emomusic.music.form import closing_key

    assert closing_key((0, "major"), (9, "minor")) == (9, "minor")  # the estimate's relative major: A minor stays
    assert closing_key((9, "minor"), (0, "major")) == (0, "major")
    assert closing_key((7, "major"), (9, "minor")) == (7, "major")  # the notes went to G major: they decide
    assert closing_key((7, "major"), None) == (7, "major")  # nothing prepared


def test_a_one_bar_piece_is_left_alone() -> None:
    piece = _piece()
    assert close_on_tonic(piece, (2, "minor"), bars=1) is piece


def test_generated_pieces_end_on_their_tonic_unless_asked_not_to() -> None:
    from emomusic.music.attributes import signature_key
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    closed = em.generate(emotion="sad", bars=4, seed=3)[0].notes
    bar = closed.beats_per_bar
    last = closed.start >= 3 * bar - 1e-9
    assert last.any() and (closed.start[last] < 3.5 * bar).all()  # nothing starts in the last bar's second half
    tonic, mode = signature_key(closed)
    triad = {tonic, (tonic + (4 if mode == "major" else 3)) % 12, (tonic + 7) % 12}
    downbeat = last & (closed.start == 3 * bar)
    bass = closed.pitch[last].min()
    assert bass % 12 == tonic and bass in closed.pitch[downbeat] and set(closed.pitch[last] % 12) <= triad
    assert (closed.start[last] + closed.duration[last] <= 4 * bar + 1e-9).all()
    open_end = em.generate(emotion="sad", bars=4, seed=3, ending=False)[0].notes
    assert not np.array_equal(open_end.pitch, closed.pitch)


def test_the_tune_enters_in_the_second_bar_over_its_accompaniment() -> None:
    piece = _piece()
    tune = np.isin(piece.pitch, [62, 65, 69, 64, 67, 81, 74, 77])  # the melody above the bass notes
    out = enter_lightly(piece, tune)
    first = out.start < 4 - 1e-9
    assert out.pitch[first].tolist() == [38]  # the first bar: its bass alone
    later = piece.start >= 4 - 1e-9
    assert np.array_equal(out.pitch[~first], piece.pitch[later])  # every later bar as it was
    # a first bar of tune alone stays (no silent opening), and so does a one-bar piece
    assert enter_lightly(piece, np.ones(len(piece), dtype=bool)) is piece
    one_bar = piece.select(piece.start < 4)
    assert enter_lightly(one_bar, tune[: len(one_bar)]) is one_bar


def test_generated_pieces_enter_lightly_unless_asked_not_to_or_after_a_primer_or_in_a_loop() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    kw = dict(emotion="happy", bars=4, seed=11, expression=False)
    light, full = (em.generate(**kw, entry=e)[0].notes for e in (True, False))
    bar = full.beats_per_bar

    def notes_of(n: Notes, first: bool) -> list:
        m = (n.start < bar - 1e-9) == first
        return sorted(zip(n.start[m].round(4).tolist(), n.pitch[m].tolist(), strict=True))

    assert notes_of(light, False) == notes_of(full, False)  # only the first bar changes
    assert set(notes_of(light, True)) < set(notes_of(full, True)) and notes_of(light, True)  # lighter, not empty
    for more in ({"loop": True}, {"primer": full.select(full.start < bar)}):
        a, b = (em.generate(**kw, **more, entry=e)[0].notes for e in (True, False))
        assert np.array_equal(a.pitch, b.pitch) and np.array_equal(a.start, b.start)


def test_the_last_section_builds_unless_asked_not_to_or_in_a_loop() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    # 2-bar sections: the last A restates bar 1 as bar 7, then samples bar 8
    kw = dict(emotion="calm", bars=8, form="AABA", expression=False, ending=False, entry=False, candidates=1)
    more = []
    for seed in range(4):
        built, kept = (em.generate(**kw, seed=seed, build=b)[0].notes for b in (True, False))
        before = (built.start < 28 - 1e-9), (kept.start < 28 - 1e-9)
        assert np.array_equal(built.pitch[before[0]], kept.pitch[before[1]])  # all before bar 8 as it was
        more.append(int((~before[0]).sum()) - int((~before[1]).sum()))
    assert sum(more) > 0, more  # the last section's new bar aims at more notes a beat
    a, b = (em.generate(**kw, seed=0, loop=True, build=x)[0].notes for x in (True, False))
    assert np.array_equal(a.pitch, b.pitch) and np.array_equal(a.start, b.start)  # a loop does not build


# ---------------------------------------------------------------------------------------------- form plans
def test_the_default_plan_by_length_is_phrases_that_return() -> None:
    from emomusic.music.form import default_form, plan_form

    assert default_form(4) == "A" and default_form(8) == "AA" and default_form(16) == "AABA"
    assert default_form(32) == "AABA" and default_form(64) == "ABABCBAB"  # 8-bar phrases from 32 bars
    assert default_form(128) == "ABABCBABDEDEFEDA"  # new sections in the same pattern, then the opening again
    for bars in (1, 5, 8, 13, 16, 19, 32, 64, 100, 128):
        plan = plan_form(None, bars)
        assert sum(s.bars for s in plan) == bars
        assert [s.start for s in plan] == list(np.cumsum([0] + [s.bars for s in plan])[:-1])
    song = plan_form(None, 32)
    assert [(s.label, s.start, s.bars, s.returns_to) for s in song] == [
        ("A", 0, 8, None), ("A", 8, 8, 0), ("B", 16, 8, None), ("A", 24, 8, 0)]


def test_forms_by_name_or_letters_and_the_remainder_goes_to_the_last_section() -> None:
    from emomusic.music.form import FORMS, plan_form

    plan = plan_form("verse-chorus", 26)
    assert "".join(s.label for s in plan) == FORMS["verse-chorus"]
    assert [s.bars for s in plan] == [4, 4, 4, 4, 4, 6]
    assert [s.returns_to for s in plan] == [None, None, 0, 1, None, 1]
    assert "".join(s.label for s in plan_form("abac", 16)) == "ABAC"
    assert len(plan_form("through", 16)) == 1


def test_bad_forms_are_one_clear_error() -> None:
    import pytest

    from emomusic.errors import InvalidInputError
    from emomusic.music.form import plan_form

    for bad in ("AB1", "", "A-B", "A" * 33):
        with pytest.raises(InvalidInputError, match="unknown form"):
            plan_form(bad, 64)
    with pytest.raises(InvalidInputError, match="needs at least 8 bars"):
        plan_form("AABA", 7)


def test_an_opening_melody_fills_the_first_section_and_the_rest_share_what_is_left() -> None:
    from emomusic.music.form import plan_form

    plan = plan_form(None, 16, opening=6)
    assert [s.bars for s in plan] == [6, 3, 3, 4] and plan[1].returns_to == 0
    assert len(plan_form(None, 8, opening=7)) == 1  # the default form gives way to a long primer


def test_notes_held_into_a_returning_section_end_where_it_begins() -> None:
    from emomusic.music.form import release_at

    notes = Notes.from_arrays([60, 64, 67, 60], [0, 2, 7.95, 8], [12, 1, 2, 1], [70] * 4)
    out = release_at(notes, [8.0])
    assert out.pitch.tolist() == [60, 64, 60]  # the note starting a hair before the return is dropped
    assert out.duration.tolist() == [8.0, 1.0, 1.0]  # the held C ends at bar 3, so the restated C sounds


def test_a_return_restates_its_sections_opening_and_every_section_gets_its_bars() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    cand = em.generate(emotion="happy", bars=8, seed=5, form="ABAB", expression=False, ending=False, entry=False)[0]
    assert [(s["label"], s["first_bar"], s["bars"], s["returns_to"]) for s in cand.sections] == [
        ("A", 1, 2, None), ("B", 3, 2, None), ("A", 5, 2, 1), ("B", 7, 2, 3)]
    tk = em.tokenizer
    ids = np.asarray(cand.tokens)
    bars = np.split(ids, np.flatnonzero(ids == tk.bar_id)[1:])
    assert len(bars) == 8
    assert np.array_equal(bars[4], bars[0]) and np.array_equal(bars[6], bars[2])  # the openings come back
    n = cand.notes
    bar = n.beats_per_bar

    def bar_notes(b: int) -> list:
        m = (n.start >= b * bar - 1e-9) & (n.start < (b + 1) * bar - 1e-9)
        return sorted(zip((n.start[m] - b * bar).round(4).tolist(), n.pitch[m].tolist(), strict=True))

    assert bar_notes(4) == bar_notes(0) and bar_notes(0)


def test_sections_count_only_their_own_notes_after_music_written_to_other_targets(monkeypatch) -> None:
    """A contrasting section's register and density feedback leave out the sections before it (written to
    another piece's targets), and so does a return after it; a return right after its own letter counts them."""
    from emomusic.generation import sampling
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    seen: list = []
    real = sampling.sample_parts

    def spy(model, tk, parts, **kw):
        rows = parts if isinstance(parts[0], list) else [parts]  # with chord plans: a list of parts a row
        counts = [[p.counts_before for p in r] for r in rows]
        assert all(c == counts[0] for c in counts)
        seen.append(counts[0])
        return real(model, tk, parts, **kw)

    monkeypatch.setattr(sampling, "sample_parts", spy)
    em.generate(emotion="sad", bars=8, seed=3, form="AABA", candidates=1, expression=False)
    em.generate(emotion="sad", bars=8, seed=3, form="AABA", candidates=1, expression=False, method="token")
    assert seen == [[True, True, False, False], [True] * 4]  # by emotion token every section has the same targets


def test_sampling_by_parts_does_not_depend_on_the_batch_or_the_workers() -> None:
    from emomusic.generation.sampling import Part, sample_parts
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    cond = tuple(em.tokenizer.condition_ids("pop", emotion="Q1"))
    parts = [Part(2, cond), Part(2, cond), Part(2, cond, source=0, keep=1)]
    one = sample_parts(em.decoding_model, em.tokenizer, parts, rows=1, seed=9)
    three = sample_parts(em.decoding_model, em.tokenizer, parts, rows=3, seed=9, workers=2)
    assert np.array_equal(one[0][0], three[0][0]) and one[0][1] == three[0][1]
    assert not np.array_equal(three[0][0], three[1][0])
    for ids, spans in three:
        assert (ids == em.tokenizer.bar_id).sum() == 6 and spans[0][0] == 0 and spans[-1][1] == len(ids)


# ---------------------------------------------------------------------------------------------- trajectories
def test_trajectories_parse_words_quadrants_and_points() -> None:
    from emomusic.vocab.emotions import parse_trajectory

    got = parse_trajectory(" calm:8, Q2:4 ,0.5/-0.3:6")
    assert [(e.word, e.quadrant, b) for e, b in got][0] == ("calm", "Q4", 8)
    assert got[1][0].quadrant == "Q2" and got[1][1] == 4
    assert (got[2][0].valence, got[2][0].arousal, got[2][1]) == (0.5, -0.3, 6)


def test_malformed_trajectories_are_one_clear_error() -> None:
    import pytest

    from emomusic.errors import InvalidInputError
    from emomusic.vocab.emotions import parse_trajectory

    for bad, why in [("calm:0", "at least 2 bars"), ("calm", "no bar count"), ("blorp:4", "unknown emotion"),
                     ("calm:8,,sad:4", "empty section"), ("calm:100,sad:40", "140 bars long"),
                     ("1.5/0:4", "valence must be"), ("calm:four", "not a whole number")]:
        with pytest.raises(InvalidInputError, match=why):
            parse_trajectory(bad)


def test_tempo_ramps_move_over_the_bar_before_a_section_and_dynamics_lead_into_it() -> None:
    from emomusic.music.form import dynamic_ramps, tempo_ramps

    ramps = tempo_ramps([(0, 80.0), (16, 120.0), (32, 120.0)], bar=4.0)
    assert ramps[:, 0].tolist() == [13, 14, 15, 16] and ramps[:, 1].tolist() == [90, 100, 110, 120]
    piece = Notes.from_arrays([60] * 8, [0, 1, 2, 3, 4, 5, 6, 7], [1] * 8, [40] * 4 + [100] * 4)
    ramped = dynamic_ramps(piece, [4.0], bar=4.0)
    assert ramped.velocity[:4].tolist() == [40, 55, 70, 85] and ramped.velocity[4:].tolist() == [100] * 4


def test_tempo_changes_survive_the_midi_file_and_count_in_seconds(tmp_path) -> None:
    from dataclasses import replace

    from emomusic.export.midi import export_midi
    from emomusic.music.midi import load_notes

    piece = replace(Notes.from_arrays([60, 64], [0, 8], [1, 1], [80, 80], tempo=60),
                    tempos=np.array([[4.0, 120.0]]))
    assert piece.seconds(4) == 4.0 and piece.seconds(8) == 6.0
    back = load_notes(export_midi(piece, tmp_path / "ramp.mid"))
    assert back.tempo == 60 and back.tempos.tolist() == [[4.0, 120.0]]
    assert len(back.truncate(1).tempos) == 0  # a change past the end goes with the bars cut


def test_a_trajectory_gives_each_section_its_emotion_and_an_emotion_that_returns_its_section() -> None:
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    cand = em.generate(trajectory="happy:2,sad:2,happy:2", seed=4, expression=False, ending=False)[0]
    secs = cand.sections
    assert [(s["emotion"], s["quadrant"], s["first_bar"], s["returns_to"]) for s in secs] == [
        ("happy", "Q1", 1, None), ("sad", "Q3", 3, None), ("happy", "Q1", 5, 1)]
    assert secs[2]["tempo"] == secs[0]["tempo"] and secs[2]["key"] == secs[0]["key"]
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    (t0, m0), (t1, m1) = [(names.index(s["key"].split()[0]), s["key"].split()[1]) for s in secs[:2]]
    assert t1 == t0  # the parallel key: the tonic stays, the mode is each emotion's
    turn = em.generate(trajectory="Q1:2,Q3:2,Q1:2", seed=4, expression=False, ending=False)[0].sections
    (k0, m0), (k1, m1) = (s["key"].split() for s in turn[:2])
    assert k1 == k0 and (m0, m1) == ("major", "minor")  # a change of mode: the parallel key, not the relative
    n = cand.notes
    assert n.tempo == secs[0]["tempo"] and len(n.tempos) and n.tempos[-1].tolist() == [16.0, secs[2]["tempo"]]
    ids = np.asarray(cand.tokens)
    bars = np.split(ids, np.flatnonzero(ids == em.tokenizer.bar_id)[1:])
    assert len(bars) == 6 and np.array_equal(bars[4], bars[0])


# ---------------------------------------------------------------------------------------------- loops
def test_a_token_sequences_log_probability_is_the_networks() -> None:
    import torch

    from emomusic.generation.sampling import log_likelihood
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    rng = np.random.default_rng(0)
    seq = rng.integers(3, len(em.tokenizer), size=40)
    with torch.no_grad():
        logits = em.generator(torch.as_tensor(seq[None]))[0].double()
    expected = torch.log_softmax(logits, -1)[torch.arange(29, 39), torch.as_tensor(seq[30:40])].sum().item()
    assert abs(log_likelihood(em.decoding_model, seq[:30], seq[30:]) - expected) < 1e-3


def test_a_loop_keeps_the_last_bar_that_leads_best_into_the_first(monkeypatch) -> None:
    from emomusic.generation import sampling
    from emomusic.pipeline import EmoMusic

    em = EmoMusic.from_pretrained("debug")
    scored: list[float] = []
    real = sampling.log_likelihoods

    def spy(*args):
        scored.extend(real(*args).tolist())
        return np.asarray(scored[-3:])

    monkeypatch.setattr(sampling, "log_likelihoods", spy)
    monkeypatch.setattr(sampling, "LOOP_CANDIDATES", 3)
    cand = em.generate(emotion="calm", bars=4, seed=2, loop=True, expression=False)[0]
    assert len(scored) == 3 and len(set(scored)) == 3
    ids = np.asarray(cand.tokens)
    assert (ids == em.tokenizer.bar_id).sum() == 4
    n = cand.notes  # no final tonic chord: a loop does not end
    assert not (n.start == 3 * n.beats_per_bar).all() or len(n) == 0
    assert (n.start + n.duration <= 4 * n.beats_per_bar + 1e-9).all()  # nothing rings past the loop point


def test_bar_transitions_measure_voice_leading_and_shared_harmony(tmp_path) -> None:
    from emomusic.evaluation.musicality import bar_transitions
    from emomusic.export.midi import export_midi

    # bar 1: C major held; bar 2 starts on F major (C shared, E->F, G->A); bar 2 ends on G7, which leads back to C
    piece = Notes.from_arrays([60, 64, 67, 60, 65, 69, 62, 65, 67, 71],
                              [0, 0, 0, 4, 4, 4, 6, 6, 6, 6], [4, 4, 4, 2, 2, 2, 2, 2, 2, 2], [70] * 10)
    inner, seam = bar_transitions(export_midi(piece, tmp_path / "t.mid"), 2)
    assert inner == [{"leap": 1.0, "shared": 1 / 5}]  # C, E, G to C, F, A: 0 + 1 + 2 semitones
    assert seam == {"leap": 1.0, "shared": 1 / 6}  # G7 (D, F, G, B) back to C, E, G: 2 + 1 + 0


# ---------------------------------------------------------------------------------------------- variations
def test_change_mode_moves_the_third_sixth_and_seventh_and_back() -> None:
    from emomusic.music.harmony import change_mode

    scale = Notes.from_arrays([62, 64, 66, 67, 69, 71, 73, 74], range(8), [1] * 8, [80] * 8)  # D major
    minor = change_mode(scale, 2, "major")
    assert minor.pitch.tolist() == [62, 64, 65, 67, 69, 70, 72, 74]  # D natural minor
    assert change_mode(minor, 2, "minor").pitch.tolist() == scale.pitch.tolist()


def test_variations_open_every_quadrant_with_the_same_theme(tmp_path) -> None:
    from emomusic.pipeline import EmoMusic
    from emomusic.request import GenerationRequest

    em = EmoMusic.from_pretrained("debug")
    pieces = em.variations(GenerationRequest(emotion="sad", bars=8, seed=3, expression=False))
    assert [c.attributes.quadrant for c in pieces] == ["Q1", "Q2", "Q3", "Q4"]
    assert pieces[2].attributes.emotion == "sad"
    theme_bars = pieces[0].sections[0]["bars"]
    heads = []
    for c in pieces:
        n = c.notes
        m = n.start < theme_bars * n.beats_per_bar - 1e-9
        heads.append((sorted(set(n.start[m].round(4).tolist())), n.pitch[m].astype(int)))
    for onsets, pitch in heads[1:]:
        assert onsets == heads[0][0]  # the theme's rhythm in every mood (a moved note may merge with another)
        assert set(pitch.tolist()) <= {p + d for p in heads[0][1].tolist() for d in (-1, 0, 1)}


def test_cli_variations_write_one_file_per_quadrant(tmp_path, capsys) -> None:
    import json

    from emomusic.cli import main

    out = tmp_path / "theme.mid"
    rc = main(["generate", "--checkpoints", "debug", "--emotion", "calm", "--bars", "4", "--variations",
               "--out", str(out), "--json"])
    got = json.loads(capsys.readouterr().out)
    assert rc == 0 and [v["quadrant"] for v in got["variations"]] == ["Q1", "Q2", "Q3", "Q4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "theme-Q1-happy.mid", "theme-Q2-tense.mid", "theme-Q3-sad.mid", "theme-Q4-calm.mid"]
