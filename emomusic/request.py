"""One generation request for every front end: prompt elements + explicit settings → generation settings.

Why one object: the CLI, the Python API and the demo each used to turn their inputs into
`EmoMusic.generate` arguments on their own, and they disagreed (the CLI passed a prompt's projected
valence/arousal point, the demo the word the projector named, whose point differs), so the same prompt
and seed gave different music. Now each front end fills a `GenerationRequest`, `resolve()` turns it
into a `ResolvedRequest` in one way, and `EmoMusic.generate` samples from that:

    >>> from emomusic.request import GenerationRequest
    >>> plan = GenerationRequest(prompts={"prompt": "a rainy lonely night"}, bars=8, seed=6).resolve()
    >>> plan.emotion, plan.quadrant, plan.notices          # doctest: +SKIP
    ('lonely', 'Q3', ())

The rules (the prompt projector's, applied here for every front end):
- prompts of any kind are projected together (`emomusic.prompt.projector.project`); explicit
  emotion / valence / arousal / genre / tempo win over what the prompts say;
- explicit valence/arousal win over an explicit emotion word (the word fills a missing axis);
- the music is conditioned on the resulting valence/arousal point; the word only labels it
  (a word and its own point give the same music);
- `fallback_mood` (the demo's sliders) is used only when nothing else names a mood;
- `intensity` (explicit, else a prompt's degree word such as "very") says how far from the neutral
  centre the attributes aim along the point's direction; 1 = the point itself;
- a genre without training data (jazz, rock, country) is generated as the nearest training genre,
  and a notice says so.
Typo corrections, stand-in genres and conflicts are reported in `ResolvedRequest.notices`, one line each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from emomusic.errors import InvalidInputError, check_range
from emomusic.music.form import plan_form
from emomusic.vocab.emotions import (
    GENRE_ALIASES,
    GENRE_STANDINS,
    GENRES,
    INTENSITY_RANGE,
    Emotion,
    emotion_from_va,
    parse_trajectory,
    resolve_emotion,
    resolve_genre,
)

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.music.notes import Notes
    from emomusic.types import Elements

__all__ = ["METHODS", "PROVENANCE_FIELDS", "GenerationRequest", "ResolvedRequest"]

METHODS = ("attributes", "token")
"""attributes: condition on the clusterer's attribute vector (EmoGen); token: the EMOPIA-style baseline."""

BARS_RANGE = (1, 128)
CANDIDATES_RANGE = (1, 64)
TEMPERATURE_RANGE = (0.05, 3.0)
TOP_P_RANGE = (0.01, 1.0)
SEED_RANGE = (0, 2**31 - 1)
PROVENANCE_FIELDS = ("emotion", "valence", "arousal", "intensity", "genre", "tempo", "time_signature", "prompts",
                     "bars", "candidates", "seed", "temperature", "top_p", "top_k", "method", "guidance",
                     "select_weights", "expression", "ending", "entry", "build", "form", "trajectory", "loop",
                     "arrangement", "instruments", "progression")
"""What a written file records of the request that made it (`GenerationRequest.provenance`)."""
_QUADRANT_CODE = re.compile(r"^\s*[qQ][1-4]\s*$")


@dataclass
class GenerationRequest:
    """Everything a user can ask of one generation, in the user's terms (words, files, numbers).

    Mood and style (all optional, but something must name a mood):
        emotion: a vocabulary word ("calm", typos corrected) or a quadrant "Q1".."Q4".
        valence, arousal: a point in [-1, 1]²; wins over `emotion` (which fills a missing axis).
        intensity: how strongly the mood is meant, in `INTENSITY_RANGE` (0 = the neutral centre, 1 = the
            word or point as it is, 2 = as far along its direction as the plane goes); default: a
            prompt's degree word ("very sad": 1.5), else 1.
        genre: a genre word ("jazz" → the nearest training genre, with a notice); default pop.
        tempo: beats per minute, written exactly; default: the chosen attributes' tempo (or a hummed
            melody's).
        time_signature: "3/4", "6/8", … (`vocab.constants.TIME_SIGNATURES`); default: the prompt's
            ("waltz", "in 3/4"), a primer's, else 4/4.
        prompts: prompt kind → input, e.g. {"prompt": "a rainy lonely night", "image": "sky.png"}
            (kinds as `emomusic.project` names them); explicit settings above win over them.
        primer: notes that open every candidate (a hummed melody's notes win otherwise).
        fallback_mood: (valence, arousal) used only when nothing above names a mood.
    Sampling:
        bars (the whole piece, primer included), candidates (sampled in one batch, best first),
        seed, temperature, top_p (None: the sampler's tuned nucleus), top_k (0: off), method
        ("attributes" or "token"), guidance (attribute-guided decoding), rank (False keeps batch
        order), select_weights (overrides of the selector's ranking weights), expression (render
        velocities and pedal with the learned performance layer, where the checkpoints have one),
        ending (approach the last bar from the dominant and close on a held tonic chord,
        `music.form.close_on_tonic`), entry (the tune enters in the second bar over a bar of its
        accompaniment, `music.form.enter_lightly`, where the checkpoints have a melody model; not after a
        primer nor in a loop), build (a piece in sections builds toward its end: the last section's new
        bars aim at `music.form.FINAL_BUILD` times the asked notes a beat; not in a loop nor a trajectory),
        form (section letters such as "AABA" or a name in `music.form.FORMS`; a repeated letter returns;
        None: `music.form.default_form` by length, "through" for none), trajectory (sections that each
        carry an emotion, "calm:8,tense:8,calm:8" (`vocab.emotions.parse_trajectory`): it sets the
        length and the mood, and a section whose emotion came before returns to it), loop (the end
        leads back to the start; no final chord), progression (each bar leans to a chord of a plan drawn
        from progressions learned per quadrant, `conditioning.progressions`, instead of every bar to the
        tonic triad, or, for a generator with bar chords, as each bar's Harmony token; on by default, False
        leans every bar to the tonic triad: docs/BENCHMARKS.md, "Chord plans" and "Bar chords the model reads").
    Arrangement:
        arrangement: a preset in `arrangement.arrange.PRESETS` ("band", "strings", "chamber",
            "chiptune"; None or "piano": the piano piece as generated); instruments: names replacing the
            preset's instruments in order, or choosing the parts themselves without a preset ("violin,
            cello"), typos forgiven (`vocab.instruments.instrument`).
    """

    emotion: str | None = None
    valence: float | None = None
    arousal: float | None = None
    genre: str | None = None
    tempo: float | None = None
    time_signature: str | tuple[int, int] | None = None
    prompts: dict[str, Any] = field(default_factory=dict)
    primer: Notes | None = field(default=None, compare=False)
    fallback_mood: tuple[float, float] | None = None
    intensity: float | None = None
    bars: int = 16
    # 2, not 1: with chord plans the recognizer heard tense pieces as asked in 0.70 / 0.78 of one candidate
    # each (two seed sets), and in 0.95 / 0.93 when the selector kept the better of two (docs/BENCHMARKS.md,
    # "Chord plans and best of two by default")
    candidates: int = 2
    seed: int = 0
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int = 0
    method: str = "attributes"
    guidance: bool = True
    rank: bool = True
    select_weights: dict[str, float] | None = None
    expression: bool = True
    ending: bool = True
    entry: bool = True
    build: bool = True
    form: str | None = None
    trajectory: str | None = None
    loop: bool = False
    progression: bool = True
    arrangement: str | None = None
    instruments: str | None = None

    def resolve(self) -> ResolvedRequest:
        """Check the settings and project the prompts: the one way inputs become generation settings.

        Returns:
            A `ResolvedRequest`: the checked sampling settings, the mood point and its label, genre,
            tempo, primer, the projector's `Elements` and one-line notices (typos, conflicts).

        Raises:
            InvalidInputError: a setting out of range, an unreadable prompt, or no mood named anywhere.
        """
        checked = self._checked()
        prompts = {k: v for k, v in self.prompts.items() if v is not None}
        trajectory = tuple(parse_trajectory(self.trajectory)) if self.trajectory is not None else ()
        if trajectory:  # the first section's emotion is the piece's mood; its sections set the length
            first = trajectory[0][0]
            return replace(self, trajectory=None, emotion=None, valence=first.valence, arousal=first.arousal,
                           bars=sum(b for _, b in trajectory)).resolve()._with_trajectory(trajectory, self)
        explicit_mood = self.emotion is not None or self.valence is not None or self.arousal is not None
        valence, arousal, fallback_used = self.valence, self.arousal, False
        if not prompts and not explicit_mood and self.fallback_mood is not None:
            (valence, arousal), fallback_used = self.fallback_mood, True
        if not prompts and not explicit_mood and not fallback_used:
            raise InvalidInputError("give an emotion word (e.g. --emotion calm), both --valence and --arousal, "
                                    "or a prompt")
        from emomusic.prompt.projector import project

        el = project(**prompts, emotion=self.emotion, valence=valence, arousal=arousal, genre=self.genre,
                     tempo=self.tempo, time_signature=self.time_signature, intensity=checked.intensity)
        notices = self.notices(el)
        if el.valence is None or el.arousal is None:
            if self.fallback_mood is None:
                raise InvalidInputError("the prompt names no emotion; add a mood word (e.g. 'calm') or pass --emotion")
            emo = emotion_from_va(*self.fallback_mood)
            el.emotion, el.quadrant, el.valence, el.arousal = emo.word, emo.quadrant, emo.valence, emo.arousal
            el.sources.append("emotion: the fallback valence/arousal (the prompt names no mood)")
            notices.append(f"the prompt names no mood: using valence {emo.valence:+.2f}, arousal "
                           f"{emo.arousal:+.2f} ({emo.word}, {emo.quadrant})")
        point = emotion_from_va(el.valence, el.arousal)
        label = el.emotion if el.emotion and el.quadrant == point.quadrant else point.word
        genre = resolve_genre(el.genre) if el.genre else "pop"
        if genre not in GENRES:
            raise InvalidInputError(f"genre {genre!r} is not one the generator was trained on")
        primer = self.primer if self.primer is not None else el.notes
        if self.primer is not None and el.notes is not None:
            notices.append("the given primer opens the piece; the hummed melody is not used")
        intensity = 1.0 if el.intensity is None else float(el.intensity)
        if intensity != 1.0 and checked.method == "token":
            notices.append("intensity has no effect with method 'token' (it conditions on the quadrant alone)")
        return ResolvedRequest(checked, label, point.quadrant, point.valence, point.arousal, genre, el.tempo,
                               primer, el, tuple(notices), el.time_signature, intensity,
                               el.genre_asked if el.genre is not None else None)

    def provenance(self) -> dict[str, Any]:
        """The request as plain JSON data, for a written file to carry (`from_provenance` reads it back).

        File prompts are recorded by path and SHA-256, so a regeneration can tell a moved or changed
        file; a primer given as notes (API only) cannot be recorded, and is flagged instead.

        Returns:
            {field: value} over `PROVENANCE_FIELDS` (None left out), plus "primer_notes" when a primer
            was given.
        """
        import hashlib

        from emomusic.prompt.registry import PROMPT_KINDS

        d: dict[str, Any] = {k: getattr(self, k) for k in PROVENANCE_FIELDS}
        if self.trajectory is not None:  # the trajectory sets the mood; a stored point would only add a notice
            d.update(emotion=None, valence=None, arousal=None)
        if isinstance(self.time_signature, tuple):
            d["time_signature"] = "{}/{}".format(*self.time_signature)
        prompts = {}
        for kind, value in self.prompts.items():
            if value is None:
                continue
            info = PROMPT_KINDS.get(kind)
            if info is not None and info.is_file:
                from pathlib import Path

                path = Path(str(value))
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
                prompts[kind] = {"file": str(path.resolve()), "sha256": digest}
            else:
                prompts[kind] = str(value)
        d["prompts"] = prompts or None
        if self.primer is not None:
            d["primer_notes"] = len(self.primer)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_provenance(cls, data: dict[str, Any]) -> GenerationRequest:
        """The request a file recorded (`provenance`), checked: what `emomusic regenerate` starts from.

        Args:
            data: the recorded fields.

        Returns:
            The request (settings are range-checked when it is resolved).

        Raises:
            InvalidInputError: unknown fields, a primer (notes are not recorded), or a file prompt that
                is missing or changed since.
        """
        import hashlib
        from pathlib import Path

        if not isinstance(data, dict):
            raise InvalidInputError("the recorded request is not a JSON object")
        if "primer_notes" in data:
            raise InvalidInputError("the piece opened with notes given through the API, which a file does not "
                                    "record; it cannot be regenerated from the file alone")
        unknown = sorted(set(data) - set(PROVENANCE_FIELDS))
        if unknown:
            raise InvalidInputError(f"the recorded request has fields this version does not know: {', '.join(unknown)}")
        fields = dict(data)
        fields.setdefault("entry", False)  # recorded before the light entry existed: the piece opened at full texture
        fields.setdefault("build", False)  # recorded before the last section built: it kept the asked density
        fields.setdefault("progression", False)  # recorded before chord plans were the default: the tonic triad
        prompts = {}
        for kind, value in (fields.pop("prompts", None) or {}).items():
            if isinstance(value, dict):
                path = Path(str(value.get("file", "")))
                if not path.is_file():
                    raise InvalidInputError(f"the {kind} prompt {path} is gone; put it back to regenerate")
                if value.get("sha256") and hashlib.sha256(path.read_bytes()).hexdigest() != value["sha256"]:
                    raise InvalidInputError(f"the {kind} prompt {path} has changed since the piece was made")
                value = str(path)
            prompts[kind] = value
        return cls(**fields, prompts=prompts)

    # ------------------------------------------------------------------ helpers
    def _checked(self) -> GenerationRequest:
        """A copy with every sampling setting converted and range-checked (cheap: before any prompt)."""
        if self.method not in METHODS:
            raise InvalidInputError(f"unknown method {self.method!r}; choose {' or '.join(METHODS)}")
        top_k = check_range("top-k", self.top_k, 0, 10**6, int)
        bars = check_range("bars", self.bars, *BARS_RANGE, int)
        if self.form is not None and self.trajectory is not None:
            raise InvalidInputError("give a form or a trajectory, not both (a trajectory's sections are its form)")
        if self.form is not None:
            plan_form(self.form, bars)  # letters or a name, and room for its sections
        if self.trajectory is not None:
            parse_trajectory(self.trajectory)
        if self.arrangement is not None or self.instruments is not None:
            from emomusic.arrangement.arrange import roles_for

            roles_for(self.arrangement, self.instruments)  # names and parts, before any model loads
        return replace(
            self, bars=bars,
            candidates=check_range("candidates", self.candidates, *CANDIDATES_RANGE, int),
            seed=check_range("seed", self.seed, *SEED_RANGE, int),
            temperature=check_range("temperature", self.temperature, *TEMPERATURE_RANGE),
            top_p=check_range("top-p", self.top_p, *TOP_P_RANGE), top_k=top_k,
            intensity=check_range("intensity", self.intensity, *INTENSITY_RANGE))

    def notices(self, el: Elements) -> list[str]:
        """One line per typo corrected or conflict settled, saying what was read and what wins.

        Args:
            el: the projector's Elements for this request's prompts and explicit settings.

        Returns:
            The lines, for the front end to show (CLI: stderr; demo: the summary).
        """
        prompts = [k for k, v in self.prompts.items() if v is not None]
        notes = []
        if self.emotion is not None and not _QUADRANT_CODE.match(self.emotion):
            word = resolve_emotion(self.emotion).word
            if self.emotion.strip().lower() != word:
                notes.append(f"emotion {self.emotion.strip()!r} read as {word!r}")
        typo = self.genre is not None and _normal_genre(self.genre) not in GENRE_ALIASES
        standin = el.genre_asked if el.genre_asked in GENRE_STANDINS else None
        if typo and standin:
            notes.append(f"genre {self.genre.strip()!r} read as {standin!r}, which has no training data: "
                         f"generating {GENRE_STANDINS[standin]}")
        elif typo:
            notes.append(f"genre {self.genre.strip()!r} read as {resolve_genre(self.genre)!r}")
        elif standin:
            notes.append(f"genre {standin!r} has no training data: generating {GENRE_STANDINS[standin]}")
        notes += self._arrangement_notices()
        given_va = self.valence is not None or self.arousal is not None
        if self.emotion is not None and given_va:
            word = resolve_emotion(self.emotion)
            if (word.valence, word.arousal) != (el.valence, el.arousal):
                notes.append(f"valence/arousal win over emotion {word.word!r}: the point ({el.valence:+.2f}, "
                             f"{el.arousal:+.2f}) is {el.emotion} ({el.quadrant})")
        if prompts and (self.emotion is not None or given_va):
            what = f"emotion {self.emotion.strip()!r}" if self.emotion is not None and not given_va else \
                "valence/arousal"
            notes.append(f"{what} wins over the mood of the {'/'.join(prompts)} prompt")
        return notes

    def _arrangement_notices(self) -> list[str]:
        """One line per arrangement or instrument name read as another (a corrected typo)."""
        from emomusic.vocab.emotions import normalise
        from emomusic.vocab.instruments import instrument, instrument_names

        notes = []
        if self.arrangement is not None:
            from emomusic.arrangement.arrange import PRESETS, preset

            name = preset(self.arrangement).name
            if normalise(self.arrangement) not in PRESETS:
                notes.append(f"arrangement {self.arrangement.strip()!r} read as {name!r}")
        known = set(instrument_names())
        for word in (self.instruments or "").split(","):
            word = word.strip()
            if word and not word.isdigit() and normalise(word) not in known:
                notes.append(f"instrument {word!r} read as {instrument(word).name!r}")
        return notes


@dataclass(frozen=True)
class ResolvedRequest:
    """A request after `GenerationRequest.resolve()`: what the pipeline samples from.

    request: the sampling settings, checked and converted (bars an int, …).
    emotion: the label (a vocabulary word: the one asked or named by the prompt, else the word nearest
        the point in its quadrant); quadrant, valence, arousal: the point the music is conditioned on.
    genre: a training genre; tempo: BPM or None (the attributes' tempo); primer: opening notes or None;
    time_signature: (numerator, denominator) or None (the primer's, else 4/4).
    intensity: how strongly the mood is meant (1 = the point as it is; see `vocab.emotions.intensify`).
    genre_asked: the genre word named ("jazz"; the vocabulary's spelling), or None when none was named;
        `genre` is what is generated (they differ for the genres without training data).
    elements: the projector's output (its `sources` say how each value was derived).
    notices: one line per typo corrected or conflict settled, for the front end to show.
    """

    request: GenerationRequest
    emotion: str
    quadrant: str
    valence: float
    arousal: float
    genre: str
    tempo: float | None
    primer: Notes | None
    elements: Elements
    notices: tuple[str, ...] = ()
    time_signature: tuple[int, int] | None = None
    intensity: float = 1.0
    genre_asked: str | None = None
    trajectory: tuple[tuple[Emotion, int], ...] = ()

    def _with_trajectory(self, trajectory: tuple[tuple[Emotion, int], ...],
                         asked: GenerationRequest) -> ResolvedRequest:
        """This plan with the trajectory's sections, and a notice for each setting the trajectory overrides."""
        notices = list(self.notices)
        if asked.emotion is not None or asked.valence is not None or asked.arousal is not None:
            notices.append("the trajectory sets the mood of each section; the emotion given is not used")
        return replace(self, request=replace(self.request, trajectory=asked.trajectory), trajectory=trajectory,
                       notices=tuple(notices))


def _normal_genre(word: str) -> str:
    """A genre word as the vocabulary spells its keys (lower case, '-'/'_' as spaces, single spaces)."""
    return " ".join(re.sub(r"[-_]", " ", str(word)).lower().split())
