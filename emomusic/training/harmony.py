"""Grow a generator checkpoint a chord token a bar (`emomusic train generator --from G --harmony`).

Why: a static bonus for the tonic triad made the key and mode plain but kept three quarters of the notes
on the tonic chord (real music: 0.42-0.65); a bonus moved bar by bar along a chord plan moved the harmony
but the model did not follow it closely enough to keep the mode as clear (docs/BENCHMARKS.md, "Chord
plans"). A model that reads each bar's chord as a token (`MusicTokenizer(harmony=True)`: a Harmony token
after every Bar, labelled from the bar's own notes in training) realises the chord it is given, so a
sampler can hand it a planned progression instead of tilting its pitch logits.

The new tokens sit after the base vocabulary, so every trained row keeps its id. Their input rows start as
the mean of the chord tones' Pitch rows (C4-B5), and their output rows as the mean of all pitch output rows,
so before any step the model already relates a chord token to its notes, and predicting one costs about
what predicting a pitch does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from emomusic.checkpoint import load_checkpoint, save_checkpoint
from emomusic.errors import InvalidInputError
from emomusic.music.tokenizer import HARMONY, PITCH, MusicTokenizer
from emomusic.vocab.constants import TRIADS

__all__ = ["with_harmony_tokens"]

_CHORD_TONES = range(60, 84)  # the register whose Pitch rows seed a chord token's rows (C4-B5)


def with_harmony_tokens(base: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write `base` with Harmony tokens in its vocabulary and embedding rows for them to `out`.

    Args:
        base: a generator checkpoint trained without Harmony tokens.
        out: the folder to write (a generator checkpoint a fine-tune starts from: `--from out`).

    Returns:
        `out`.

    Raises:
        InvalidInputError: `base` has Harmony tokens already.
    """
    ck = load_checkpoint(base, kind="generator")
    old = MusicTokenizer.from_dict(ck.tokenizer)
    if old.harmony:
        raise InvalidInputError(f"{base}: already has Harmony tokens")
    n_old = len(old)
    tk = MusicTokenizer(old.control_bins, old.remi, harmony=True)  # grows `old.remi`'s vocabulary in place
    n_new = len(tk)
    state = {k: v.float().clone() for k, v in ck.state_dict.items()}
    emb, head = state["net.token_emb.emb.weight"], state["net.to_logits.weight"]
    pitch_ids = np.flatnonzero(tk.types == PITCH)
    pitch_of = {int(tk.values[i]): int(i) for i in pitch_ids}
    new_emb = torch.zeros(n_new - n_old, emb.shape[1])
    new_head = head[torch.as_tensor(pitch_ids)].mean(0, keepdim=True).repeat(n_new - n_old, 1)
    for i in np.flatnonzero(tk.types == HARMONY):
        code = int(tk.values[i])
        if code < 0:
            rows = [pitch_of[p] for p in _CHORD_TONES]
        else:
            root, intervals = code % 12, list(TRIADS.values())[code // 12]
            classes = {(root + k) % 12 for k in intervals}
            rows = [pitch_of[p] for p in _CHORD_TONES if p % 12 in classes]
        new_emb[i - n_old] = emb[torch.as_tensor(rows)].mean(0)
    state["net.token_emb.emb.weight"] = torch.cat([emb, new_emb])
    state["net.to_logits.weight"] = torch.cat([head, new_head])
    config = dict(ck.config)
    config["model"] = {**config["model"], "vocab_size": n_new}
    save_checkpoint(Path(out), kind="generator", config=config, state_dict=state, tokenizer=tk.to_dict(),
                    metrics={"base": str(base), "harmony_tokens": n_new - n_old}, dtype=torch.float32)
    return Path(out)
