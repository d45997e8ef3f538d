"""The projector (XMusic's XProjector): prompts of any kind → one set of music elements.

Each prompt kind has its own module and one entry in :data:`emomusic.prompt.registry.PROMPT_KINDS`;
this module only combines what the kinds say, so it names no kind. When several kinds are given, their
valence/arousal points are averaged with the kinds' weights; genre, tempo and melody come from the kind
that ranks first for each, and so does the intensity a degree word gives ("very sad"); explicit
`emotion`/`valence`/`arousal`/`intensity`/`genre`/`tempo` arguments always win.
`Elements.sources` records every step.
"""

from __future__ import annotations

from typing import Final

from emomusic.errors import InvalidInputError, check_range
from emomusic.prompt.registry import PROMPT_KINDS, by_priority
from emomusic.types import Elements
from emomusic.vocab.constants import TEMPO_RANGE, parse_time_signature
from emomusic.vocab.emotions import INTENSITY_RANGE, emotion_from_va, genre_word, resolve_emotion, resolve_genre

__all__ = ["project", "prompt_elements"]

# Elements fields that come from one kind (the first by that kind's priority) rather than a mean.
_SINGLE_SOURCE: Final = ("tempo", "time_signature", "genre", "notes", "intensity")


def prompt_elements(**prompts: object) -> dict[str, Elements]:
    """The elements of each given prompt, by kind name (None values are skipped).

    Args:
        **prompts: kind name (a `PROMPT_KINDS` key, e.g. prompt="sad", image="a.png") → value.

    Returns:
        Kind name → that prompt's Elements, in registry order.

    Raises:
        TypeError: a name that is not a registered kind (a programming error, not user input).
        InvalidInputError: a prompt its kind refuses.
    """
    unknown = set(prompts) - set(PROMPT_KINDS)
    if unknown:
        raise TypeError(f"unknown prompt kind(s) {sorted(unknown)}; registered: {', '.join(PROMPT_KINDS)}")
    return {name: kind.elements(prompts[name]) for name, kind in PROMPT_KINDS.items()
            if prompts.get(name) is not None}


def _combine_point(parts: dict[str, Elements], el: Elements) -> None:
    """Weighted mean of the kinds' valence/arousal; the label is a named word when it fits the quadrant."""
    pts = {k: e for k, e in parts.items() if e.valence is not None and e.arousal is not None}
    if not pts:
        return
    w = {k: PROMPT_KINDS[k].weight for k in pts}
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


def _apply_explicit(el: Elements, emotion, valence, arousal, genre, tempo, time_signature=None,
                    intensity=None) -> None:
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
    if intensity is not None:
        el.intensity = check_range("intensity", intensity, *INTENSITY_RANGE)
        el.sources.append("intensity: --intensity")
    elif el.intensity is not None and (emotion is not None or valence is not None or arousal is not None):
        el.intensity = None  # the prompt's "very" went with the prompt's mood, which the explicit one replaces
        el.sources.append("intensity: 1 (the prompt's degree word went with its mood)")
    if genre is not None:
        el.genre, el.genre_asked = resolve_genre(genre), genre_word(genre)
        el.sources.append(f"genre: --genre {genre!r} → {el.genre}")
    if tempo is not None:
        el.tempo = check_range("tempo", tempo, *TEMPO_RANGE, unit="BPM")
        el.sources.append("tempo: --tempo")
    if time_signature is not None:
        el.time_signature = parse_time_signature(time_signature)
        el.sources.append("time signature: --time-signature")


def project(prompt: str | None = None, *, emotion: str | None = None, valence: float | None = None,
            arousal: float | None = None, genre: str | None = None, tempo: float | None = None,
            time_signature: str | tuple[int, int] | None = None, intensity: float | None = None,
            **prompts: object) -> Elements:
    """Project any mix of prompts and explicit settings to Elements.

    Args:
        prompt: text or tags (the "prompt" kind; the one kind also accepted by position).
        **prompts: the other kinds by `PROMPT_KINDS` name, e.g. image="a.png", humming="hum.wav".
        emotion: a vocabulary word that overrides the prompts' emotion.
        valence, arousal: a point in [-1, 1] that overrides it (one axis may come from the prompts).
        genre: a genre word that overrides the prompts' genre.
        tempo: BPM that overrides the prompts' tempo.
        time_signature: "3/4" (or a pair) that overrides the prompts' metre.
        intensity: how strongly the emotion is meant (0 neutral, 1 as named, 2 extreme); overrides a
            prompt's degree word ("very sad").

    Returns:
        The combined Elements. A prompt that yields no emotion (e.g. "fast, jazz") leaves
        quadrant/valence/arousal None for the caller to decide.

    Raises:
        InvalidInputError: nothing given at all, or a prompt or setting its checks refuse.
    """
    prompts = {"prompt": prompt, **prompts}
    given = {k: v for k, v in prompts.items() if v is not None}
    if not given and all(x is None for x in (emotion, valence, arousal, genre, tempo, time_signature, intensity)):
        flags = "/".join(kind.flag for kind in PROMPT_KINDS.values())
        raise InvalidInputError(f"give a prompt ({flags}) or --emotion/--valence/--arousal")
    parts = prompt_elements(**given)
    el = Elements()
    for el_part in parts.values():
        el.sources.extend(el_part.sources)
    _combine_point(parts, el)
    for field in _SINGLE_SOURCE:
        order = [k for k in by_priority(field) if k in parts]
        hit = next((k for k in order if getattr(parts[k], field) is not None), None)
        if hit is not None:
            setattr(el, field, getattr(parts[hit], field))
            if field == "genre":  # the word named comes with the genre it stands for
                el.genre_asked = parts[hit].genre_asked
            if sum(getattr(p, field) is not None for p in parts.values()) > 1:
                el.sources.append(f"{field}: from {hit} (first of {', '.join(order)})")
    if el.genre is not None:
        el.genre = resolve_genre(el.genre)
    _apply_explicit(el, emotion, valence, arousal, genre, tempo, time_signature, intensity)
    return el
