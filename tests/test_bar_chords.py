"""Bar chords as tokens: the tokenizer names each bar's chord, training windows carry it, a grown checkpoint
keeps every trained row, the grammar asks for it, a plan hands it over, and embeddings leave it out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomusic.generation.guidance import Guidance
from emomusic.generation.network import Generator, GeneratorConfig
from emomusic.generation.processors import ChordPlan, RemiState, RemiTables, grammar_table
from emomusic.generation.sampling import sample
from emomusic.music.notes import Notes
from emomusic.music.tokenizer import BAR, BOS, HARMONY, NO_HARMONY, TIMESIG, MusicTokenizer


@pytest.fixture(scope="module")
def plain() -> MusicTokenizer:
    return MusicTokenizer()


@pytest.fixture(scope="module")
def tk() -> MusicTokenizer:
    return MusicTokenizer(harmony=True)


def _three_bars() -> Notes:
    """Bar 1: a C major chord; bar 2: A minor, its A held from the last beat of bar 1; bar 3: one note."""
    pitch = [48, 52, 55, 60, 57, 60, 64, 69, 72]
    start = [0, 0, 0, 2, 3, 4, 4, 5, 8]
    dur = [3, 3, 3, 1, 3, 2, 2, 1, 1]
    return Notes.from_arrays(pitch, start, dur, [80] * len(pitch), tempo=100.0, time_signature=(4, 4))


def test_chord_tokens_come_after_the_music_vocabulary_so_trained_ids_keep_their_rows(plain, tk):
    assert len(tk) == len(plain) + 49 and not plain.harmony
    assert all(tk.vocab[name] == i for name, i in plain.vocab.items())
    assert (tk.types[len(plain):] == HARMONY).all()
    again = MusicTokenizer.from_dict(tk.to_dict())
    assert again.harmony and again.vocab == tk.vocab
    assert not MusicTokenizer.from_dict(plain.to_dict()).harmony


def test_every_bar_names_its_own_chord_after_its_bar_and_metre(tk):
    ids = tk.encode(_three_bars())
    names = [tk.itos[i] for i in ids]
    bars = [i for i, n in enumerate(names) if n == "Bar_None"]
    assert len(bars) == 3
    after = [names[b + 2] if names[b + 1].startswith("TimeSig") else names[b + 1] for b in bars]
    # the held A (bar 1's last beat) does not turn bar 1 away from C; the lone C of bar 3 names no chord
    assert after == ["Harmony_0-major", "Harmony_9-minor", NO_HARMONY]
    assert tk.bar_harmony(ids).tolist() == [[0, 0], [9, 1], [-1, -1]]
    plain_ids = tk.without_harmony(ids)
    assert (tk.types[plain_ids] != HARMONY).all() and len(plain_ids) == len(ids) - 3
    np.testing.assert_array_equal(tk.with_harmony(plain_ids), ids)
    np.testing.assert_array_equal(tk.with_harmony(ids), ids)  # labelled afresh, not twice
    a, b = tk.decode(ids), tk.decode(plain_ids)
    np.testing.assert_array_equal(a.pitch, b.pitch)
    np.testing.assert_array_equal(a.start, b.start)


def test_a_note_held_over_the_bar_line_counts_in_both_bars(tk):
    held = Notes.from_arrays([60, 64, 67, 69, 72], [0, 0, 0, 4, 4], [8, 8, 8, 1, 1], [80] * 5, tempo=100.0,
                             time_signature=(4, 4))
    chords = tk.bar_harmony(tk.without_harmony(tk.encode(held)))
    assert chords.tolist() == [[0, 0], [0, 0]]  # bar 2's A and C sound under the held C-E-G


def test_training_windows_name_the_chords_of_the_transposed_bars(tk):
    from emomusic.music.attributes import compute_controls
    from emomusic.music.tokenizer import ControlBins
    from emomusic.training.datasets import Prepared, Record
    from emomusic.training.windows import WindowSampler

    ids = MusicTokenizer().encode(_three_bars())
    rec = Record("x/a", "nottingham", "a.mid", "folk", "train", "x/a")
    data = Prepared([rec], ids.astype(np.uint16), np.array([0, len(ids)]), np.zeros((1, 1), np.float32))
    binned = MusicTokenizer(ControlBins.fit([compute_controls(_three_bars())] * 4), tk.remi, harmony=True)
    sampler = WindowSampler(data, binned, seq_len=128, augment=True)
    roots = set()
    for seed in range(12):
        x, _ = sampler.window(0, np.random.default_rng(seed), start_bar=0, emotion_prefix=False)
        music = x[(tk.types[x] >= BAR) & (x != tk.pad_id) & (x != tk.eos_id)]
        chords = tk.bar_harmony(music)
        named = [int(tk.values[i]) for i in music if tk.types[i] == HARMONY]
        assert named == [int(q) * 12 + int(r) if r >= 0 else -1 for r, q in chords]
        assert chords[0, 1] == 0 and chords[1, 1] == 1  # major, then minor, in whatever key it was moved to
        roots.add(int(chords[0, 0]))
    assert len(roots) > 1  # transposed: the labels moved with the pitches


def test_a_grown_checkpoint_keeps_every_trained_row_and_seeds_chords_from_their_tones(tmp_path):
    from emomusic.checkpoint import load_checkpoint, save_checkpoint
    from emomusic.training.harmony import with_harmony_tokens

    plain = MusicTokenizer()
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(vocab_size=len(plain), dim=16, depth=1, heads=2, max_seq_len=64))
    save_checkpoint(tmp_path / "base", kind="generator", config={"model": model.config.__dict__},
                    state_dict=model.state_dict(), tokenizer=plain.to_dict())
    with_harmony_tokens(tmp_path / "base", tmp_path / "grown")
    ck = load_checkpoint(tmp_path / "grown", kind="generator")
    tk = MusicTokenizer.from_dict(ck.tokenizer)
    grown = Generator(GeneratorConfig.from_dict(ck.config["model"]))
    grown.load_state_dict(ck.state_dict)
    emb, old = grown.net.token_emb.emb.weight.detach(), model.net.token_emb.emb.weight.detach()
    assert tk.harmony and emb.shape[0] == len(tk)
    torch.testing.assert_close(emb[: len(plain)], old)
    c_major = [tk.vocab[f"Pitch_{p}"] for p in range(60, 84) if p % 12 in (0, 4, 7)]
    torch.testing.assert_close(emb[tk.harmony_id(0, 0)], old[c_major].mean(0))
    with pytest.raises(Exception, match="already has Harmony"):
        with_harmony_tokens(tmp_path / "grown", tmp_path / "again")


def test_the_grammar_asks_every_bar_for_its_chord_only_with_a_chord_vocabulary(plain, tk):
    g, p = grammar_table(tk), grammar_table(plain)
    assert set(np.unique(tk.types[g[BAR]])) == {TIMESIG, HARMONY}
    assert set(np.unique(tk.types[g[TIMESIG]])) == {HARMONY}
    assert not (plain.types[p[BAR]] == HARMONY).any() and p[BAR, plain.bar_id]


def test_a_plan_hands_each_bar_its_chord_with_the_chance_of_naming_any(tk):
    plan = ((0, 4, 7), (0, 5, 9), (2, 7, 11))  # C major: I, IV, V
    guides = [Guidance(tonic=0, mode="major", chords=plan), Guidance(tonic=0, mode="major")]
    rule = ChordPlan(tk, guides, n_bars=3)
    harmony = np.flatnonzero(tk.types == HARMONY)
    rng = np.random.default_rng(0)
    for bar, want in ((1, tk.harmony_id(0, 0)), (2, tk.harmony_id(5, 0)), (3, tk.harmony_id(7, 0))):
        st = RemiState.start(2, BOS)
        st.bars[:] = bar
        st.prev_type[:] = TIMESIG
        logits = rng.normal(size=(2, len(tk))).astype(np.float32)
        before = logits.copy()
        rule(st, logits)
        assert np.isfinite(logits[0, harmony]).sum() == 1 and np.isfinite(logits[0, want])
        assert logits[0, want] == pytest.approx(np.log(np.exp(before[0, harmony]).sum()), rel=1e-5)
        np.testing.assert_array_equal(logits[1], before[1])  # no plan: the model names its own chord
        np.testing.assert_array_equal(np.delete(logits[0], harmony), np.delete(before[0], harmony))


def test_sampling_with_a_plan_writes_the_planned_chord_in_every_bar(tk):
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, max_seq_len=1024)).eval()
    plan = ((9, 0, 4), (2, 5, 9), (4, 8, 11), (9, 0, 4))  # A minor: i, iv, V, i
    guides = [Guidance(tonic=9, mode="minor", chords=plan, time_signature=ts, density=0.5, density_gain=4.0)
              for ts in (None, (3, 4))]  # few notes a bar: an untrained model reaches the fourth bar
    rows = sample(model, tk, [tk.condition_ids("pop", emotion="Q3")] * 2, n_bars=4, guidance=guides, seed=1,
                  max_tokens=600)
    want = [tk.harmony_id(9, 1), tk.harmony_id(2, 1), tk.harmony_id(4, 0), tk.harmony_id(9, 1)]
    for ids in rows:
        ids = np.asarray(ids)
        assert [int(i) for i in ids if tk.types[i] == HARMONY] == want
        bars = np.flatnonzero(tk.types[ids] == BAR)
        assert all(tk.types[ids[b + 1]] in (TIMESIG, HARMONY) for b in bars)


def test_embeddings_read_the_music_without_its_chord_tokens(plain, tk):
    from emomusic.generation.embeddings import piece_embeddings

    torch.manual_seed(0)
    backbone = Generator(GeneratorConfig(vocab_size=len(plain), dim=16, depth=1, heads=2, max_seq_len=64)).eval()
    ids = tk.encode(_three_bars())
    np.testing.assert_allclose(piece_embeddings(backbone, tk, [ids], length=64),
                               piece_embeddings(backbone, plain, [tk.without_harmony(ids)], length=64), rtol=1e-6)


def test_the_state_lets_positions_follow_a_chord(tk):
    assert RemiTables.of(tk).advances[HARMONY] and not RemiTables.of(MusicTokenizer()).advances[BOS]


@pytest.mark.parametrize("argv", [["train", "generator", "--harmony", "--out", "run"],
                                  ["train", "generator", "--harmony", "--data-dir", "x", "--out", "run"]])
def test_harmony_needs_a_trained_generator_and_no_user_folder(capsys, tmp_path, monkeypatch, argv):
    from emomusic.cli import main

    monkeypatch.chdir(tmp_path)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.count("\n") == 1 and "--harmony" in err
    assert not (tmp_path / "run").exists()
