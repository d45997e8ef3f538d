"""miditok REMI plus the condition tokens of the generator, in one saved vocabulary.

Why REMI: bar/position tokens make "stop after N bars" and a grammar mask trivial, and REMI is
what EMOPIA's and EmoGen's generators use. Piano only (`use_programs=False`): every piece is merged
into one piano part before encoding, so miditok's in-stream attribute controls are not used; the
conditions are our own prefix tokens instead:

    BOS  Genre_<g>  Ctl-<attribute>_<bin> ... | Emotion_<Q>   Bar Position Pitch Velocity Duration ...

A tokenizer built with `harmony=True` also names each bar's triad right after its Bar (and TimeSig):
`Bar TimeSig_4/4 Harmony_9-minor Position ...` (`training.harmony` grows a trained generator to read it).

Control attributes (see `emomusic.music.attributes.CONTROLS`) are binned at quantile edges fitted
on the training corpus; the edges and each bin's typical value are saved with the tokenizer.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomusic.errors import InvalidInputError
from emomusic.music._miditok import REMI, TokenizerConfig
from emomusic.music.attributes import CATEGORICAL_CONTROLS, CONTROLS
from emomusic.music.midi import notes_to_score
from emomusic.music.notes import Notes
from emomusic.vocab.constants import PIANO_BOTTOM, PIANO_TOP, TIME_SIGNATURES, TRIADS

GENRES = ("pop", "game", "classical", "folk", "early")
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
POSITIONS_PER_BEAT = 8

# Token type codes used by the grammar mask and the fast decoder.
PAD, BOS, EOS, GENRE, EMOTION, CTL, BAR, TIMESIG, POSITION, TEMPO, PITCH, VELOCITY, DURATION, HARMONY = range(14)
TYPE_NAMES = ("PAD", "BOS", "EOS", "Genre", "Emotion", "Ctl", "Bar", "TimeSig", "Position", "Tempo",
              "Pitch", "Velocity", "Duration", "Harmony")
NO_HARMONY = "Harmony_none"  # a bar without a chord to name (empty, or no triad matches)


def _remi_config(special_tokens: list[str]) -> TokenizerConfig:
    return TokenizerConfig(
        pitch_range=(PIANO_BOTTOM, PIANO_TOP + 1),  # inclusive: Pitch_109 exists, the sampler masks it (trained so)
        beat_res={(0, 4): POSITIONS_PER_BEAT, (4, 12): 4},
        num_velocities=16,
        special_tokens=special_tokens,
        use_velocities=True,
        use_tempos=True,
        num_tempos=24,
        tempo_range=(40, 220),
        log_tempos=True,
        delete_equal_successive_tempo_changes=True,
        use_time_signatures=True,
        time_signature_range={den: [n for n, d in TIME_SIGNATURES if d == den] for den in (8, 4)},
        delete_equal_successive_time_sig_changes=True,
        use_programs=False,
        remove_duplicated_notes=True,
    )


def condition_token_names() -> list[str]:
    """Names of the special + condition tokens, in vocabulary order."""
    names = ["PAD_None", "BOS_None", "EOS_None"]
    names += [f"Genre_{g}" for g in GENRES]
    names += [f"Emotion_{q}" for q in QUADRANTS]
    for name, n_bins in CONTROLS.items():
        names += [f"Ctl-{name.replace('_', '-')}_{b}" for b in range(n_bins)]
    return names


def harmony_token_names() -> list[str]:
    """Names of the bar-chord tokens: "Harmony_none", then "Harmony_<root>-<quality>" over the triads.

    Roots are absolute pitch classes (0 = C), so a transposed window keeps its labels right by moving them
    with its pitches; qualities are `vocab.constants.TRIADS` (maj, min, dim, aug), as in `music.harmony`.
    """
    return [NO_HARMONY] + [f"Harmony_{root}-{q}" for q in TRIADS for root in range(12)]


@dataclass
class ControlBins:
    """Quantile edges (n_bins - 1 per continuous control) and a typical value per bin."""

    edges: dict[str, list[float]]
    values: dict[str, list[float]]

    @classmethod
    def fit(cls, rows: list[dict[str, float]]) -> ControlBins:
        """Equal-frequency bins over raw control values of training windows."""
        edges, values = {}, {}
        for name, n in CONTROLS.items():
            x = np.array([r[name] for r in rows], dtype=np.float64)
            if name in CATEGORICAL_CONTROLS:
                edges[name] = []
                values[name] = [float(b) for b in range(n)]
                continue
            e = np.quantile(x, np.linspace(0, 1, n + 1)[1:-1])
            idx = np.searchsorted(e, x, side="right")
            edges[name] = [float(v) for v in e]
            values[name] = [float(np.median(x[idx == b])) if (idx == b).any() else float(e[min(b, n - 2)])
                            for b in range(n)]
        return cls(edges, values)

    def to_bins(self, raw: dict[str, float]) -> dict[str, int]:
        """Bin index of each control value."""
        out = {}
        for name, n in CONTROLS.items():
            if name in CATEGORICAL_CONTROLS:
                out[name] = int(np.clip(round(raw[name]), 0, n - 1))
            else:
                out[name] = int(np.searchsorted(self.edges[name], raw[name], side="right"))
        return out

    def to_values(self, bins: dict[str, int]) -> dict[str, float]:
        """Typical raw value of each bin (what a bin 'asks for')."""
        return {name: self.values[name][b] for name, b in bins.items()}


class MusicTokenizer:
    """REMI tokens for one piano part, condition tokens, and fast array views of the vocabulary.

    With `harmony`, every bar also names its chord: a Harmony token right after the bar's Bar (and its
    TimeSig, when it has one), appended to the vocabulary after REMI's own tokens so that a model trained
    without them keeps its ids (its embedding grows by rows at the end).
    """

    def __init__(self, control_bins: ControlBins | None = None, remi: REMI | None = None,
                 harmony: bool = False) -> None:
        self.remi = remi or REMI(_remi_config(condition_token_names()))
        self.control_bins = control_bins
        self.harmony = bool(harmony)
        if self.harmony:
            for name in harmony_token_names():
                if name not in self.remi.vocab:
                    self.remi.add_to_vocab(name)
        self.vocab: dict[str, int] = dict(self.remi.vocab)
        self.itos = {i: s for s, i in self.vocab.items()}
        self._build_tables()

    # ---------------------------------------------------------------- vocabulary tables
    def _build_tables(self) -> None:
        n = len(self.vocab)
        self.types = np.zeros(n, dtype=np.int64)
        self.values = np.zeros(n, dtype=np.float64)  # pitch, velocity, beats, bpm, position (beats)
        self.timesig: dict[int, tuple[int, int]] = {}
        kinds = {"PAD": PAD, "BOS": BOS, "EOS": EOS, "Genre": GENRE, "Emotion": EMOTION, "Bar": BAR,
                 "TimeSig": TIMESIG, "Position": POSITION, "Tempo": TEMPO, "Pitch": PITCH,
                 "Velocity": VELOCITY, "Duration": DURATION, "Harmony": HARMONY}
        for tok, i in self.vocab.items():
            head, _, val = tok.partition("_")
            kind = CTL if head.startswith("Ctl-") else kinds.get(head, PAD)  # unused kinds: never sampled
            self.types[i] = kind
            if kind in (PITCH, VELOCITY, TEMPO):
                self.values[i] = float(val)
            elif kind == POSITION:
                self.values[i] = int(val) / POSITIONS_PER_BEAT
            elif kind == DURATION:
                beat, sub, res = (int(x) for x in val.split("."))
                self.values[i] = beat + sub / res
            elif kind == TIMESIG:
                num, den = (int(x) for x in val.split("/"))
                self.timesig[i] = (num, den)
            elif kind == HARMONY:  # quality index * 12 + root; -1 for no chord
                root, _, quality = val.partition("-")
                self.values[i] = -1 if val == "none" else list(TRIADS).index(quality) * 12 + int(root)
        self.harmony_ids = np.full(len(TRIADS) * 12 + 1, -1, dtype=np.int64)  # code + 1 -> id (0: none)
        for i in np.flatnonzero(self.types == HARMONY):
            self.harmony_ids[int(self.values[i]) + 1] = i
        self.pad_id, self.bos_id, self.eos_id = (self.vocab[t] for t in ("PAD_None", "BOS_None", "EOS_None"))
        self.bar_id = self.vocab["Bar_None"]

    def __len__(self) -> int:
        return len(self.vocab)

    def ids_of_type(self, kind: int) -> np.ndarray:
        """Vocabulary ids of one token type."""
        return np.flatnonzero(self.types == kind)

    def token_id(self, token: str) -> int:
        """Id of a token name, with a clear error for an unknown one."""
        try:
            return self.vocab[token]
        except KeyError:
            raise InvalidInputError(f"unknown token {token!r}") from None

    # ---------------------------------------------------------------- conditions
    def condition_ids(
        self, genre: str | None = None, controls: dict[str, int] | None = None, emotion: str | None = None
    ) -> list[int]:
        """BOS then the condition prefix: genre, then control bins or an emotion token."""
        ids = [self.bos_id]
        if genre is not None:
            ids.append(self.token_id(f"Genre_{genre}"))
        if emotion is not None:
            ids.append(self.token_id(f"Emotion_{emotion}"))
        if controls is not None:
            ids += [self.token_id(f"Ctl-{k.replace('_', '-')}_{controls[k]}") for k in CONTROLS]
        return ids

    # ---------------------------------------------------------------- encode / decode
    def encode(self, notes: Notes) -> np.ndarray:
        """Music tokens (no BOS/conditions) of a piano part, each bar's chord named when `harmony`."""
        if len(notes) == 0:
            return np.zeros(0, dtype=np.int64)
        seq = self.remi.encode(notes_to_score(notes))
        seq = seq[0] if isinstance(seq, list) else seq
        ids = np.asarray(seq.ids, dtype=np.int64)
        return self.with_harmony(ids) if self.harmony else ids

    # ---------------------------------------------------------------- bar chords
    def harmony_id(self, root: int | None, quality: int | None = None) -> int:
        """The Harmony token of a triad (absolute root 0..11, index in `TRIADS`), or of no chord (None).

        Raises:
            InvalidInputError: the tokenizer has no Harmony tokens.
        """
        if not self.harmony:
            raise InvalidInputError("this tokenizer has no Harmony tokens (a generator trained without bar chords)")
        code = -1 if root is None or quality is None or root < 0 else int(quality) * 12 + int(root) % 12
        return int(self.harmony_ids[code + 1])

    def without_harmony(self, ids) -> np.ndarray:
        """`ids` without Harmony tokens: what a model trained without them (the backbone) reads."""
        arr = self._checked_ids(ids)
        return arr[self.types[arr] != HARMONY] if self.harmony else arr

    def bar_harmony(self, ids) -> np.ndarray:
        """(n_bars, 2) int64: each bar's triad (absolute root, index in `TRIADS`), -1 -1 for no chord.

        Bars are the Bar tokens of `ids`, in order; a bar's pitch classes are weighted by how long they
        sound inside it (a note held over the bar line counts in both bars), then matched against the
        triads as `music.harmony.chord_sequence` does (too few pitch classes, or no good match: no chord).
        """
        from emomusic.music.harmony import chord_sequence

        types, values = self.types, self.values
        starts: list[float] = []
        bar_len, ts, pos, pitch = 4.0, (4, 4), 0.0, None
        notes: list[tuple[float, float, int]] = []
        for i in self._checked_ids(ids).tolist():
            t = types[i]
            if t == BAR:
                starts.append(starts[-1] + bar_len if starts else 0.0)
                bar_len, pos, pitch = ts[0] * 4.0 / ts[1], 0.0, None
            elif t == TIMESIG:
                ts = self.timesig[i]
                bar_len = ts[0] * 4.0 / ts[1]
            elif t == POSITION:
                pos, pitch = values[i] * 4.0 / ts[1], None
            elif t == PITCH:
                pitch = int(values[i])
            elif t == DURATION and pitch is not None and starts:
                notes.append((starts[-1] + pos, values[i] * 4.0 / ts[1], pitch))
                pitch = None
            elif t == EOS:
                break
        if not starts:
            return np.zeros((0, 2), dtype=np.int64)
        edges = np.append(starts, starts[-1] + bar_len)
        chroma = np.zeros((len(starts), 12))
        for start, dur, p in notes:
            end = start + max(dur, 1e-3)
            first = int(np.searchsorted(edges, start, side="right")) - 1
            for b in range(max(first, 0), len(starts)):
                if edges[b] >= end:
                    break
                chroma[b, p % 12] += min(end, edges[b + 1]) - max(start, edges[b])
        roots, qualities = chord_sequence(chroma, qualities=len(TRIADS))
        return np.stack([roots, qualities], axis=1)

    def with_harmony(self, ids) -> np.ndarray:
        """`ids` with each bar's chord (`bar_harmony`) named right after its Bar (and TimeSig) token.

        Harmony tokens already in `ids` are dropped first, so a transposed window is labelled afresh.
        """
        arr = self.without_harmony(ids)
        if not self.harmony:
            return arr
        chords = self.bar_harmony(arr)
        bars = np.flatnonzero(self.types[arr] == BAR)
        at = bars + 1
        if len(arr):
            nxt = np.minimum(at, len(arr) - 1)
            at = np.where((at < len(arr)) & (self.types[arr[nxt]] == TIMESIG), at + 1, at)
        labels = [self.harmony_id(int(r), int(q)) for r, q in chords]
        return np.insert(arr, at, labels).astype(np.int64)

    def decode(self, ids) -> Notes:
        """Notes from a (possibly partial) token sequence; malformed groups are skipped.

        A plain loop over a precomputed type table: faster than building miditok TokSequences and
        tolerant of truncated windows, which training and guided sampling both need. A pitch written
        twice at one position becomes one note (`Notes.deduplicate`), so a piece's note count is the
        count of notes a MIDI file of it holds.
        """
        types, values = self.types, self.values
        bar_start, bar_len, pos, tempo, ts = -1.0, 4.0, 0.0, None, (4, 4)
        first_ts = None
        pitch = velocity = None
        out_p, out_s, out_d, out_v = [], [], [], []
        for i in self._checked_ids(ids).tolist():
            t = types[i]
            if t == BAR:
                bar_start = 0.0 if bar_start < 0 else bar_start + bar_len
                bar_len = ts[0] * 4.0 / ts[1]
                pos, pitch, velocity = 0.0, None, None
            elif t == TIMESIG:
                ts = self.timesig[i]
                first_ts = first_ts or ts
                bar_len = ts[0] * 4.0 / ts[1]
            elif t == POSITION:  # miditok counts positions and durations in the denominator's beats
                pos, pitch, velocity = values[i] * 4.0 / ts[1], None, None
            elif t == TEMPO:
                tempo = tempo or values[i]
            elif t == PITCH:
                pitch, velocity = values[i], None
            elif t == VELOCITY and pitch is not None:
                velocity = values[i]
            elif t == DURATION and pitch is not None and velocity is not None:
                out_p.append(pitch)
                out_s.append(max(bar_start, 0.0) + pos)
                out_d.append(values[i] * 4.0 / ts[1])
                out_v.append(velocity)
                pitch = velocity = None
            elif t == EOS:
                break
        return Notes.from_arrays(out_p, out_s, out_d, out_v, tempo=tempo or 120.0,
                                 time_signature=first_ts or (4, 4)).deduplicate()

    def _checked_ids(self, ids) -> np.ndarray:
        """`ids` as a flat int64 array of vocabulary ids; anything else is InvalidInputError, not an IndexError.

        Negative ids would silently index from the end of the type table, so they are refused too.
        """
        try:
            arr = np.asarray(ids)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise InvalidInputError("token ids must be a flat sequence of integers")
        if arr.size and (arr.min() < 0 or arr.max() >= len(self)):
            bad = arr[(arr < 0) | (arr >= len(self))][0]
            raise InvalidInputError(f"token id {bad} is outside the vocabulary (0..{len(self) - 1}); "
                                    "decode ids made by this tokenizer")
        return arr.astype(np.int64, copy=False)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """JSON-serialisable state: miditok config, vocab check and control bins."""
        return {
            "class": "emomusic.music.tokenizer.MusicTokenizer",
            "miditok": self._miditok_params(),
            "vocab_size": len(self),
            "harmony": self.harmony,
            "control_bins": None if self.control_bins is None else
            {"edges": self.control_bins.edges, "values": self.control_bins.values},
        }

    def _miditok_params(self) -> dict:
        """miditok's own saved parameters (config, class, versions) as a dict."""
        with tempfile.TemporaryDirectory() as tmp:
            params = Path(tmp) / "tokenizer.json"
            self.remi.save(params)
            return json.loads(params.read_text())

    @classmethod
    def from_dict(cls, state: dict) -> MusicTokenizer:
        """Rebuild a saved tokenizer; refuse one whose vocabulary changed."""
        with tempfile.TemporaryDirectory() as tmp:
            params = Path(tmp) / "tokenizer.json"
            params.write_text(json.dumps(state["miditok"]))
            remi = REMI(params=params)
        cb = state.get("control_bins")
        tok = cls(ControlBins(**cb) if cb else None, remi, harmony=state.get("harmony", False))
        if len(tok) != state["vocab_size"]:
            raise InvalidInputError(
                f"tokenizer vocabulary size {len(tok)} differs from the saved {state['vocab_size']}; "
                "the miditok version may have changed"
            )
        return tok
