"""The projector (XMusic's XProjector): prompts of any kind → one set of music elements.

Each prompt kind has its own module (tags/text here; image, video and humming in their own modules,
imported only when that kind is used, so a tag prompt never loads a model). When several kinds are
given, their valence/arousal points are averaged with the weights below; genre, tempo and melody come
from the first kind that has them in a fixed priority order; explicit `emotion`/`valence`/`arousal`/
`genre`/`tempo` arguments always win. `Elements.sources` records every step.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Final

from emomusic.errors import InvalidInputError
from emomusic.prompt.tags import TEMPO_RANGE, TagError, tag_elements
from emomusic.types import Elements
from emomusic.vocab.emotions import emotion_from_va, resolve_emotion, resolve_genre

__all__ = ["KIND_WEIGHTS", "project", "prompt_elements"]

KIND_WEIGHTS: Final[dict[str, float]] = {"tags": 1.0, "text": 1.0, "video": 0.7, "image": 0.5, "humming": 0.5}
"""Weight of each kind's valence/arousal in the average. Words state the intent directly; the colour and
motion cues of images and video (Valdez & Mehrabian 1994 report moderate effects) and a hum's key/tempo
are weaker evidence of what the user wants."""

# Tempo words the user typed ("slow", "90 bpm") are intent; a hum's tempo is an estimate (its melody is
# kept in beats, so it simply plays at the asked tempo); then video motion, then image.
_TEMPO_ORDER: Final = ("tags", "text", "humming", "video", "image")
_GENRE_ORDER: Final = ("tags", "text", "video", "image", "humming")
_FILE_KINDS: Final[dict[str, tuple[str, str, str]]] = {  # kind → (module, function, extra)
    "image": ("emomusic.prompt.image", "image_elements", "vision"),
    "video": ("emomusic.prompt.video", "video_elements", "vision"),
    "humming": ("emomusic.prompt.humming", "humming_elements", "audio"),
}
_MAX_TYPO_PROMPT_WORDS: Final = 3
MAX_PROMPT_CHARS: Final = 2000  # same bound as the text projector's; checked before any parsing


def _text_or_tags(prompt: str) -> tuple[str, Elements]:
    """A tag prompt when every word is a tag (fast, strict); free text otherwise.

    A short prompt whose unknown word looks like a misspelt tag ("sda", "melancolyc": close to a tag and
    not an English word) is refused with suggestions instead of being read as a sentence.
    """
    try:
        return "tags", tag_elements(prompt)
    except TagError as exc:
        from emomusic.prompt.text import is_english_word, text_elements

        short = len(prompt.split()) <= _MAX_TYPO_PROMPT_WORDS
        if short and any(s and not is_english_word(w) for w, s in exc.unknown.items()):
            raise
        return "text", text_elements(prompt)


def _check_file(kind: str, path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"--{kind} {str(path)!r}: no such file")
    if not p.is_file():
        raise InvalidInputError(f"--{kind} {str(path)!r}: not a regular file")
    return p


def _file_elements(kind: str, path: str | os.PathLike) -> Elements:
    """Call the kind's projector module, turning a missing optional dependency into a one-line error."""
    module, func, extra = _FILE_KINDS[kind]
    p = _check_file(kind, path)
    try:
        fn = getattr(importlib.import_module(module), func)
        return fn(p)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise InvalidInputError(f"--{kind} prompts are not available in this version of emomusic") from None
        raise InvalidInputError(f"--{kind} needs the optional package {exc.name!r}: "
                                f"pip install 'emomusic[{extra}]'") from None


def prompt_elements(prompt: str | None = None, image=None, video=None, humming=None) -> dict[str, Elements]:
    """The elements of each given prompt kind, by kind (tags or text for `prompt`)."""
    out: dict[str, Elements] = {}
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidInputError(f"--prompt must be text, got {type(prompt).__name__}")
        if not prompt.strip():
            raise InvalidInputError("empty --prompt; give tags such as 'sad, slow' or a sentence")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidInputError(f"--prompt is {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS}")
        kind, el = _text_or_tags(prompt)
        out[kind] = el
    for kind, path in (("image", image), ("video", video), ("humming", humming)):
        if path is not None:
            out[kind] = _file_elements(kind, path)
    return out


def _combine_point(parts: dict[str, Elements], el: Elements) -> None:
    """Weighted mean of the kinds' valence/arousal; the label is a named word when it fits the quadrant."""
    pts = {k: e for k, e in parts.items() if e.valence is not None and e.arousal is not None}
    if not pts:
        return
    w = {k: KIND_WEIGHTS.get(k, 0.5) for k in pts}
    total = sum(w.values())
    v = sum(w[k] * e.valence for k, e in pts.items()) / total
    a = sum(w[k] * e.arousal for k, e in pts.items()) / total
    emo = emotion_from_va(max(-1.0, min(1.0, v)), max(-1.0, min(1.0, a)))
    named = [e.emotion for e in pts.values() if e.emotion and e.quadrant == emo.quadrant]
    el.emotion, el.quadrant, el.valence, el.arousal = (named[0] if named else emo.word), emo.quadrant, \
        round(emo.valence, 3), round(emo.arousal, 3)
    if len(pts) > 1:
        mix = ", ".join(f"{k} ×{w[k]:g}" for k in pts)
        el.sources.append(f"emotion: weighted mean of valence/arousal ({mix}) → {el.emotion} ({el.quadrant})")


def _first(parts: dict[str, Elements], order: tuple[str, ...], field: str) -> tuple[str, object] | None:
    for kind in order:
        if kind in parts and getattr(parts[kind], field) is not None:
            return kind, getattr(parts[kind], field)
    return None


def _apply_explicit(el: Elements, emotion, valence, arousal, genre, tempo) -> None:
    """Explicit arguments override whatever the prompts projected (and say so in `sources`)."""
    if emotion is not None:
        emo = resolve_emotion(emotion)
        el.emotion, el.quadrant, el.valence, el.arousal = emo.word, emo.quadrant, emo.valence, emo.arousal
        el.sources.append(f"emotion: --emotion {emotion!r}")
    if valence is not None or arousal is not None:
        v = valence if valence is not None else el.valence
        a = arousal if arousal is not None else el.arousal
        if v is None or a is None:
            raise InvalidInputError("give both --valence and --arousal (or a prompt that sets the other one)")
        emo = emotion_from_va(v, a)
        keep = el.emotion if emotion is not None and el.quadrant == emo.quadrant else emo.word
        el.emotion, el.quadrant, el.valence, el.arousal = keep, emo.quadrant, emo.valence, emo.arousal
        given = " and ".join(f"--{n}" for n, x in (("valence", valence), ("arousal", arousal)) if x is not None)
        el.sources.append(f"valence/arousal: {given}")
    if genre is not None:
        el.genre = resolve_genre(genre)
        el.sources.append(f"genre: --genre {genre!r} → {el.genre}")
    if tempo is not None:
        el.tempo = _check_tempo(tempo)
        el.sources.append("tempo: --tempo")


def _check_tempo(tempo) -> float:
    lo, hi = TEMPO_RANGE
    try:
        t = float(tempo)
    except (TypeError, ValueError):
        raise InvalidInputError(f"tempo must be a number of BPM, got {tempo!r}") from None
    if not lo <= t <= hi:
        raise InvalidInputError(f"tempo must be between {lo:g} and {hi:g} BPM, got {tempo!r}")
    return t


def project(prompt: str | None = None, image=None, video=None, humming=None, emotion: str | None = None,
            valence: float | None = None, arousal: float | None = None, genre: str | None = None,
            tempo: float | None = None) -> Elements:
    """Project any mix of prompts (text or tags, image, video, humming) and explicit settings to Elements.

    Nothing at all given is an error; a prompt that yields no emotion (e.g. "fast, jazz") leaves
    quadrant/valence/arousal None for the caller to decide.
    """
    if all(x is None for x in (prompt, image, video, humming, emotion, valence, arousal, genre, tempo)):
        raise InvalidInputError("give a prompt (--prompt/--image/--video/--humming) or --emotion/--valence/--arousal")
    parts = prompt_elements(prompt, image, video, humming)
    el = Elements()
    for el_part in parts.values():
        el.sources.extend(el_part.sources)
    _combine_point(parts, el)
    for field, order in (("tempo", _TEMPO_ORDER), ("genre", _GENRE_ORDER), ("notes", ("humming",))):
        hit = _first(parts, order, field)
        if hit is not None:
            setattr(el, field, hit[1])
            if sum(getattr(p, field) is not None for p in parts.values()) > 1:
                el.sources.append(f"{field}: from {hit[0]} (first of {', '.join(order)})")
    if el.genre is not None:
        el.genre = resolve_genre(el.genre)
    _apply_explicit(el, emotion, valence, arousal, genre, tempo)
    return el

