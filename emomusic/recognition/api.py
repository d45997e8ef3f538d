"""Public recognition API: `recognize(files)` → quadrant, probabilities, valence/arousal, explanation.

MIDI files go through the symbolic recognizer (generator-backbone embedding + key/chords + attributes
→ two heads); audio files (.wav .flac .mp3 .ogg) are handed to the audio recognizer, imported only
when an audio file is actually given. `EmotionRecognizer` loads the models once, so analysing 100
files costs one model load and batched backbone passes.

Explanations compare the piece's attributes with what is typical of the predicted quadrant in the
training data: an attribute is evidence when the piece deviates from the average in the same
direction as that quadrant does ("slow, about 64 BPM" for a sad piece that is slower than most).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from emomusic.errors import CheckpointError, InvalidInputError
from emomusic.settings import checkpoints_root
from emomusic.types import Recognition
from emomusic.vocab.constants import AUDIO_SUFFIXES, PITCH_NAMES
from emomusic.vocab.emotions import QUADRANT_SIGNS, QUADRANTS

__all__ = ["EmotionRecognizer", "SymbolicRecognizer", "explain", "log_emotion", "recognize"]



def _phrase(name: str, value: float, high: bool) -> str:
    """Plain words for one attribute of a piece; tempo, register and dynamics carry their value."""
    from emomusic.conditioning.clusterer import PHRASES

    if name == "tempo":
        return f"{'fast' if high else 'slow'}, about {value:.0f} BPM"
    if name == "pitch_mean":
        octave = int(value) // 12 - 1
        return f"{'high' if high else 'low'} register (around {PITCH_NAMES[int(value) % 12]}{octave})"
    if name == "velocity_mean":
        return f"{'loud' if high else 'soft'} dynamics (velocity {value:.0f})"
    return PHRASES[name][0 if high else 1]


def explain(values: dict[str, float], quadrant: str, stats: dict, top: int = 4) -> list[str]:
    """Musical evidence for `quadrant` in plain words, strongest first.

    `stats` holds, per attribute, the training mean and std and each quadrant's mean (stored in the
    recognizer's config). Evidence = attributes where the piece and the quadrant both lean the same
    way from the average, ranked by how far the piece leans times how typical that lean is.

    Args:
        values: the piece's attribute values by name.
        quadrant: the quadrant to explain.
        stats: the recognizer's explanation statistics (from its config).
        top: at most this many phrases.

    Returns:
        Phrases such as "minor mode" or "slow, about 64 BPM".
    """
    names = stats["names"]
    mean, std = np.array(stats["mean"]), np.maximum(np.array(stats["std"]), 1e-6)
    qmeans = np.array([stats["quadrant_mean"][q] for q in QUADRANTS])
    qi = QUADRANTS.index(quadrant)
    typical = (qmeans[qi] - np.delete(qmeans, qi, axis=0).mean(0)) / std
    x = np.array([values[n] for n in names])
    z = (x - mean) / std
    score = np.where(np.sign(z) == np.sign(typical), np.abs(z) * np.abs(typical), 0.0)
    score = np.where(np.abs(z) > 0.25, score, 0.0)  # an average value is no evidence
    out: list[str] = []
    for i in np.argsort(-score):
        if score[i] <= 0 or len(out) == top:
            break
        words = "minor mode" if names[i] == "mode" and x[i] < 0.5 else (
            "major mode" if names[i] == "mode" else _phrase(names[i], float(x[i]), bool(z[i] > 0)))
        if words not in out:
            out.append(words)
    if not out:  # nothing typical: still say what the piece is like
        out.append(_phrase("tempo", values["tempo"], values["tempo"] > mean[names.index("tempo")]))
        out.append("major mode" if values["mode"] > 0.5 else "minor mode")
    return out



def log_emotion(probabilities: np.ndarray, va_logits: np.ndarray, quadrant: str) -> np.ndarray:
    """log p(the asked quadrant) per piece: half from the 4-way head, half from the valence/arousal head.

    Both heads vote because they were trained on different labels (EMOPIA quadrants; VGMIDI valence
    and arousal): a piece both call sad is surer than one only the 4-way head calls sad.

    Args:
        probabilities: (n, 4) quadrant probabilities (`SymbolicRecognizer.predict`).
        va_logits: (n, 2) valence/arousal logits (P(high) = sigmoid(logit)).
        quadrant: the asked quadrant.

    Returns:
        float64 (n,) log-probabilities (at most 0).
    """
    q = QUADRANTS.index(quadrant)
    sign = np.asarray(QUADRANT_SIGNS[quadrant], dtype=np.float64)
    four = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64)[:, q], 1e-12))
    z = np.asarray(va_logits, dtype=np.float64) * sign
    va = -np.logaddexp(0.0, -z).sum(-1)  # log sigmoid
    return 0.5 * four + 0.5 * va


class SymbolicRecognizer:
    """The MIDI recognizer with the generator backbone it reads embeddings from, loaded once."""

    def __init__(self, arrays: dict[str, np.ndarray], config, generator, tokenizer) -> None:
        """arrays: the recognizer's weights (`recognition.inference.load_arrays`); config: its
        `RecognizerConfig`; generator: the backbone as `generation.embeddings.piece_embeddings` takes it."""
        self.arrays, self.config, self.generator, self.tokenizer = arrays, config, generator, tokenizer

    @classmethod
    def from_checkpoints(cls, root: str | os.PathLike | None = None) -> SymbolicRecognizer:
        """Load `<root>/recognizer` and the backbone it reads (`backbone_dir`); refuse one it was not trained on.

        Args:
            root: checkpoints folder (default: the settings resolver's).

        Returns:
            The loaded recognizer.
        """
        from emomusic.generation.checkpoint import backbone_dir, generator_sha, load_float_generator
        from emomusic.recognition.inference import load_arrays

        root = checkpoints_root(root)
        if not (root / "recognizer").is_dir():
            raise InvalidInputError(f"{root / 'recognizer'}: no recognizer checkpoint; "
                                    "run `emomusic train recognizer` or use the shipped checkpoints/")
        arrays, config = load_arrays(root / "recognizer")
        backbone = backbone_dir(root)
        sha = generator_sha(backbone)
        if config.generator_sha and config.generator_sha != sha:
            raise CheckpointError(f"{root / 'recognizer'}: trained on generator {config.generator_sha}, "
                                  f"but {backbone} is {sha}; retrain with `emomusic train recognizer`")
        # files come in batches (analyze: up to hundreds), where torch's embeddings outrun the numpy forward
        # by far more than its import costs (40 EMOPIA clips: 4.8 s + 2.4 s load against 12.1 s); ranking 8
        # candidates is the other way round, and the pipeline hands its recognizer the numpy backbone
        generator, tokenizer = load_float_generator(backbone)
        return cls(arrays, config, generator, tokenizer)

    def _load(self, path: str) -> tuple[object, np.ndarray]:
        """Quantised notes (what the models were trained on) and tokens of one MIDI file.

        A file at the nominal 120 BPM (a transcription or recorded performance) is read on its tracked
        beats, as the training data was (`beats.real_grid_notes`).
        """
        from emomusic.music.beats import real_grid_notes

        ids = self.tokenizer.encode(real_grid_notes(path))
        if len(ids) < 2:
            raise InvalidInputError(f"{path}: too few notes to analyse")
        notes = self.tokenizer.decode(ids)
        if len(notes) == 0:
            raise InvalidInputError(f"{path}: no notes left after quantisation")
        return notes, ids

    def predict(self, notes: list, tokens: list[np.ndarray],
                embedding: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The recognizer's outputs for pieces already in memory (the selector's candidates, loaded files).

        Args:
            notes: each piece's quantised notes.
            tokens: each piece's token ids (what the backbone embeds).
            embedding: (n, dim) backbone embeddings when the caller has them already (the selector
                computes the same windows), else None to compute them.

        Returns:
            {"probabilities": (n, 4) over QUADRANTS, "va_logits": (n, 2), "valence_arousal": (n, 2) in
            [-1, 1], "attributes": (n, 57)}.
        """
        from emomusic.recognition.inference import featurise, forward, va_from_logits

        cfg = self.config
        if embedding is None:
            from emomusic.generation.embeddings import piece_embeddings

            embedding = piece_embeddings(self.generator, self.tokenizer, tokens, max_windows=cfg.max_windows)
        feats = featurise(notes, embedding, cfg.max_chords)
        q, va = forward(self.arrays, feats)
        probs = np.exp(q - q.max(-1, keepdims=True))
        return {"probabilities": probs / probs.sum(-1, keepdims=True), "va_logits": va,
                "valence_arousal": va_from_logits(va), "attributes": feats.attributes}

    def recognize_many(self, paths: list[str]) -> Iterator[tuple[str, Recognition | InvalidInputError]]:
        """(path, result or the file's error) in order; readable files are embedded in one batch.

        Args:
            paths: MIDI files.

        Returns:
            An iterator of (path, Recognition or InvalidInputError).
        """
        loaded: dict[int, tuple] = {}
        errors: dict[int, InvalidInputError] = {}
        for i, p in enumerate(paths):
            try:
                loaded[i] = self._load(p)
            except InvalidInputError as exc:
                errors[i] = exc
        if loaded:
            keys = sorted(loaded)
            out = self.predict([loaded[k][0] for k in keys], [loaded[k][1] for k in keys])
            probs, va = out["probabilities"], out["valence_arousal"]
            results = {k: self._result(paths[k], probs[j], va[j], out["attributes"][j]) for j, k in enumerate(keys)}
        for i, p in enumerate(paths):
            yield p, errors[i] if i in errors else results[i]

    def _result(self, path: str, probs: np.ndarray, va: np.ndarray, attributes: np.ndarray) -> Recognition:
        from emomusic.music.attributes import ATTRIBUTE_NAMES

        quadrant = QUADRANTS[int(probs.argmax())]
        values = dict(zip(ATTRIBUTE_NAMES, attributes.astype(float).tolist(), strict=True))
        return Recognition(
            file=path, quadrant=quadrant,
            probabilities={q: round(float(p), 4) for q, p in zip(QUADRANTS, probs, strict=True)},
            valence=round(float(va[0]), 4), arousal=round(float(va[1]), 4),
            explanation=explain(values, quadrant, self.config.explain),
        )


class EmotionRecognizer:
    """Loaded-once recognizer for MIDI and audio files (audio models are loaded only when needed)."""

    def __init__(self, checkpoints: str | os.PathLike | None = None, mert: str | os.PathLike | None = None,
                 batch_size: int = 32) -> None:
        self.root = Path(checkpoints) if checkpoints else None
        self.mert = mert
        self.batch_size = batch_size
        self._symbolic: SymbolicRecognizer | None = None

    @property
    def symbolic(self) -> SymbolicRecognizer:
        if self._symbolic is None:
            self._symbolic = SymbolicRecognizer.from_checkpoints(self.root)
        return self._symbolic

    def _audio(self, path: str) -> Recognition:
        try:
            from emomusic.recognition.audio_model import recognize_audio
        except ImportError:
            raise InvalidInputError(f"{path}: audio analysis is not available yet; give a MIDI file") from None
        ckpt = self.root / "audio_recognizer" if self.root else None
        return recognize_audio(path, ckpt, mert=self.mert)

    def iter_recognize(self, files: Iterable[str | os.PathLike]) -> Iterator[tuple[str, Recognition | Exception]]:
        """(file, Recognition or the InvalidInputError for that file), in input order.

        A bad file does not stop the others: callers decide whether to raise or report and go on.

        Args:
            files: MIDI or audio files (audio needs the [audio] extra).

        Returns:
            An iterator of (file, Recognition or Exception).
        """
        paths = [str(f) for f in files]
        # a missing, empty or oversized file is reported before any model loads (loading is most of a
        # call's time, and a mistyped path should not wait for it)
        early = {p: err for p in paths if (err := _unreadable(p)) is not None}
        for b in range(0, len(paths), self.batch_size):
            chunk = paths[b:b + self.batch_size]
            midi = [p for p in chunk if p not in early and not p.lower().endswith(AUDIO_SUFFIXES)]
            done = dict(self.symbolic.recognize_many(midi)) if midi else {}
            for p in chunk:
                if p in early:
                    yield p, early[p]
                    continue
                if p in done:
                    yield p, done[p]
                    continue
                try:
                    yield p, self._audio(p)
                except InvalidInputError as exc:
                    yield p, exc

    def recognize(self, files: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Recognition]:
        """Results in input order; the first unreadable file raises InvalidInputError naming it.

        Args:
            files: one file or several.

        Returns:
            One Recognition per file.
        """
        out = []
        for _, res in self.iter_recognize(_as_list(files)):
            if isinstance(res, Exception):
                raise res
            out.append(res)
        return out


def _unreadable(path: str) -> InvalidInputError | None:
    """The error a file would get for its path alone (missing, not a file, empty, too big), else None."""
    from emomusic.io import check_input_file
    from emomusic.music.audio import MAX_FILE_BYTES
    from emomusic.music.midi import MAX_MIDI_BYTES

    audio = path.lower().endswith(AUDIO_SUFFIXES)
    try:
        check_input_file(path, "audio" if audio else "MIDI", MAX_FILE_BYTES if audio else MAX_MIDI_BYTES)
    except InvalidInputError as exc:
        return exc
    return None


def _as_list(files) -> list[str | os.PathLike]:
    if isinstance(files, (str, os.PathLike)):
        return [files]
    files = list(files)
    if not files:
        raise InvalidInputError("no files given; pass a MIDI (.mid) or audio (.wav .flac .mp3 .ogg) path")
    return files


def recognize(files: str | os.PathLike | Iterable[str | os.PathLike], checkpoints: str | os.PathLike | None = None,
              mert: str | os.PathLike | None = None) -> list[Recognition]:
    """Emotion of one file or a list: quadrant, probabilities, valence/arousal and musical evidence.

    >>> recognize("song.mid")[0].quadrant  # doctest: +SKIP
    'Q3'

    Args:
        files: one MIDI/audio file or several.
        checkpoints: checkpoints folder (default: the settings resolver's).
        mert: a local MERT model folder for the audio recognizer, if it was trained with one.

    Returns:
        One Recognition per file, in input order.
    """
    return EmotionRecognizer(checkpoints, mert=mert).recognize(files)
