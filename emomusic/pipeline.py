"""`EmoMusic`: the pipeline wiring (clusterer → generator → ranking → export). No model code here.

    >>> from emomusic import EmoMusic
    >>> em = EmoMusic.from_pretrained()          # shipped checkpoints; "debug" = tiny random model
    >>> best = em.generate(emotion="calm", bars=16, seed=1)[0]
    >>> em.save(best, "calm.mid")
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from emomusic.checkpoint import package_version
from emomusic.errors import InvalidInputError, check_range
from emomusic.generation.checkpoint import GeneratorCheckpoint, backbone_dir, load_generator_checkpoint
from emomusic.generation.sampling import TOP_P, Part
from emomusic.music.attributes import CONTROLS, compute_controls, estimate_key, relative_tonic, signature_key
from emomusic.music.form import (
    FINAL_BUILD,
    Section,
    close_on_tonic,
    closing_key,
    dynamic_ramps,
    enter_lightly,
    plan_form,
    release_at,
    restated_bars,
    tempo_ramps,
)
from emomusic.music.notes import Notes
from emomusic.music.tokenizer import BAR, HARMONY, ControlBins, MusicTokenizer
from emomusic.music.tracks import Arrangement, Track
from emomusic.request import GenerationRequest, ResolvedRequest
from emomusic.settings import checkpoints_root
from emomusic.types import Attributes, Candidate
from emomusic.vocab.constants import TEMPO_RANGE, key_label, parse_time_signature
from emomusic.vocab.emotions import INTENSITY_RANGE

# A piece's attributes come from one of this many bank pieces nearest its emotion's centre (by seed).
NEAREST_PIECES = 3
CONTEXT_BARS = 16
"""Bars of a user's piece the model continues from (its last ones): the training windows' length."""
INFILL_CANDIDATES = 8
"""Infill candidates drawn; the one that leads best into the following bars is kept."""
LOOKAHEAD_BARS = 2
LOOKAHEAD_TOKENS = 96
"""The following music an infill candidate is scored on: up to 2 bars (the join), at most this many tokens."""
TRANSFORM_CANDIDATES = 4
"""Accompaniments a transform draws; the one most likely with the tune in place (and on its chords) is kept."""
MAX_TRANSFORM_BARS = 64
"""The longest piece `transform` takes (a pop song's verse and chorus; a whole song goes in parts)."""
TRANSFORM_SCORE_TOKENS = 384
"""Tokens of tune and accompaniment together a transform candidate is scored on (within the window)."""
CHORD_BIAS = 1.0
"""Logit tilt at each step of a transform: + for the beat's chord tones, - for the other pitch classes."""
CHORD_WEIGHT = 1.0
"""Weight of the share of chord tones beside the mean log-probability per token when ranking."""
MELODY_LIFT = 10
"""The kept tune's velocity above the target's mean level (the tune above the accompaniment)."""
MIN_CEILING = 36
"""The accompaniment may always use pitches below this, however low the tune goes."""
ACCOMPANIMENT_BELOW = 9
"""The accompaniment's register target sits at least this far below the tune's mean pitch."""
MIN_ACCOMPANIMENT_DENSITY = 0.5
"""Notes per beat the accompaniment aims at, at least, when the tune already has the target's density."""
CHORD_PLAN_STREAM = 0xC4
"""Seed-sequence entry of the chord plans' draw: the same seed gives the same progression."""
CADENCE = 1.0
"""Logit tilt of a piece's last part toward the dominant before its last bar and the tonic triad in it
(`generation.processors.cadence`); the ending rule then keeps the last bar's tonic-chord notes."""


def _mode(mode_bin: int) -> str:
    """The mode control's bin as a key mode: 1 is major."""
    return "major" if mode_bin == 1 else "minor"


def variation_emotions(plan: ResolvedRequest) -> dict[str, str]:
    """Quadrant → the emotion word `EmoMusic.variations` gives it: the asked one in its own quadrant."""
    from emomusic.vocab.emotions import QUADRANT_NAMES, QUADRANTS

    return {q: plan.emotion if q == plan.quadrant else QUADRANT_NAMES[q] for q in QUADRANTS}


def _primer_tonic(primer: Notes, mode_bin: int) -> int:
    """Tonic for continuing `primer` in the asked mode (1 = major): its key, or that key's relative."""
    tonic, mode = estimate_key(primer)
    return tonic if mode == _mode(mode_bin) else relative_tonic(tonic, mode)


class EmoMusic:
    """Emotion → attributes → generated MIDI. Build with `from_pretrained`."""

    def __init__(self, generator, tokenizer: MusicTokenizer, clusterer, name: str = "", selector=None,
                 selector_path: Path | None = None, expression=None, expression_path: Path | None = None,
                 parts_root: Path | None = None, generator_dir: Path | None = None,
                 backbone_dir: Path | None = None) -> None:
        """generator: a `Generator` network or a `GeneratorCheckpoint` (network built on first need).

        generator_dir: the folder `generator` was loaded from (what files record as "model"); None: the
        `generator/` of the checkpoints folder `name`.

        backbone_dir: a generator folder whose network the selector and recognizer read embeddings from,
        when `generator` is not the one they were trained on (a user's fine-tuned generator); None: the
        generator itself.

        selector: a `selection.selector.Selector`, or None with `selector_path` to load it when first
        needed, or neither: rank candidates by attribute distance.

        expression: an `expression.ExpressionModel`, or None with `expression_path` to load it when first
        needed, or neither: pieces keep the generator's velocities and have no pedal.

        parts_root: the checkpoints folder whose `melody/` and `drums/` arrange pieces for instruments
        (loaded when a request first asks for an arrangement); None: the shipped checkpoints.
        """
        # a network goes to eval mode; a checkpoint stays tensors (no torch needed to sample from it)
        self._generator = generator if isinstance(generator, GeneratorCheckpoint) else generator.eval()
        self._decoder_weights = None
        self.tokenizer = tokenizer
        self.clusterer = clusterer
        self.name = name
        self._selector = selector
        self._selector_path = selector_path
        self._recognizer = False  # not looked for yet (None: there is none)
        self._expression = expression
        self._expression_path = expression_path
        self._parts_root = parts_root
        self._arrangers: dict[str, object] = {}
        self._progressions: object = False  # not looked for yet (None: there is none)
        self._generator_dir = generator_dir
        self._backbone_dir = backbone_dir
        self._backbone_weights = None
        self.notices: list[str] = []  # one line each, for the front end to show (e.g. a ranking left out)

    @property
    def expression(self):
        """The performance layer (velocities, pedal), loaded on first use; None without a checkpoint."""
        if self._expression is None and self._expression_path is not None:
            from emomusic.expression import load_expression

            self._expression = load_expression(self._expression_path)
            self._expression_path = None
        return self._expression

    @expression.setter
    def expression(self, value) -> None:
        self._expression, self._expression_path = value, None

    @property
    def progressions(self):
        """The chord-plan model (`conditioning.progressions`), loaded on first use; None without a checkpoint
        (each bar then leans to the tonic triad)."""
        if self._progressions is False:
            path = self._model_dir("progressions")
            if path.is_dir():
                from emomusic.conditioning.progressions import load_progressions

                self._progressions = load_progressions(path)
            else:
                self._progressions = None
        return self._progressions

    @progressions.setter
    def progressions(self, value) -> None:
        self._progressions = value

    def arranger(self, kind: str):
        """The melody extractor ("melody") or the drum model ("drums"), loaded on first use.

        Raises:
            InvalidInputError: the checkpoint folder has no such model.
        """
        if kind not in self._arrangers:
            path = self._model_dir(kind)
            if not path.is_dir():
                raise InvalidInputError(f"arranging needs the {kind} model, and {path} does not exist")
            if kind == "melody":
                from emomusic.arrangement.melody import load_melody

                self._arrangers[kind] = load_melody(path)
            else:
                from emomusic.arrangement.drums import load_drums

                self._arrangers[kind] = load_drums(path)
        return self._arrangers[kind]

    def _model_dir(self, kind: str) -> Path:
        """The folder an optional model ("progressions", "melody", "drums") is read from; it may not exist."""
        return checkpoints_root(self._parts_root) / kind

    def _tune_finder(self):
        """The melody extractor's note mask, or None where the checkpoints have no melody model."""
        if "melody" not in self._arrangers and not self._model_dir("melody").is_dir():
            return None
        return self.arranger("melody").mask

    @property
    def model_id(self) -> str:
        """The generator's short weights hash (what files record as "model"); "debug" for the test model."""
        folder = self._generator_dir or (Path(self.name) / "generator" if self.name else None)
        if folder is None or not (folder / "config.json").is_file():
            return "debug"
        from emomusic.generation.checkpoint import generator_sha

        return generator_sha(folder)

    @property
    def generator(self):
        """The x-transformers network (embeddings, reference decoding); built on first access."""
        if isinstance(self._generator, GeneratorCheckpoint):
            return self._generator.module()
        return self._generator

    @property
    def backbone_weights(self):
        """The generator whose embeddings the selector and recognizer read: the shipped one when this is a
        user's fine-tuned generator (they were trained on the shipped one's), else this one; as the fast
        engine's numpy weights where it supports the configuration (ranking then imports neither torch nor
        x-transformers), else the network."""
        from emomusic.generation.fast import unsupported

        if self._backbone_dir is not None:
            if self._backbone_weights is None:
                from emomusic.generation.embeddings import load_backbone

                self._backbone_weights = load_backbone(self._backbone_dir)[0]
            return self._backbone_weights
        return self.decoder_weights if unsupported(self._generator.config) is None else self.generator

    @property
    def conditions_id(self) -> str:
        """A short hash of what decides which real piece stands for an emotion: the clusterer's bank and
        its prototype scores (`Clusterer.content_id`, hashed once when it loads). Files record it beside
        the generator's, since either changes the music a seed gives; "debug" for a clusterer built in
        memory (the test model)."""
        return self.clusterer.content_id or "debug"

    def _made_with(self) -> dict[str, str]:
        """What a file records beside its request: the generator's and the clusterer's hashes and the version
        (`emomusic regenerate` says when they differ from the running ones)."""
        return {"model": self.model_id, "conditions": self.conditions_id, "version": package_version()}

    @property
    def backbone_id(self) -> str:
        """The weights hash of `backbone_weights` (what the recognizer checks it was trained on)."""
        if self._backbone_dir is None:
            return self.model_id
        from emomusic.generation.checkpoint import generator_sha

        return generator_sha(self._backbone_dir)

    @property
    def decoder_weights(self):
        """What sampling reads: the checkpoint's tensors laid out for `generation.fast` (made once)."""
        if self._decoder_weights is None:
            from emomusic.generation.fast import DecoderWeights

            g = self._generator
            self._decoder_weights = (DecoderWeights.from_checkpoint(g) if isinstance(g, GeneratorCheckpoint)
                                     else DecoderWeights.from_module(g))
        return self._decoder_weights

    @property
    def decoding_model(self):
        """What `sample` decodes: the fast engine's weights where it supports the configuration, else
        the network itself (sampling then falls back to the reference engine, with its notice)."""
        from emomusic.generation.fast import unsupported

        if unsupported(self._generator.config) is None:
            return self.decoder_weights
        return self._generator

    @property
    def selector(self):
        """The candidate scorer, loaded on first use (it reads the generator's network), with the quality
        head of the same checkpoints folder where there is one."""
        if self._selector is None and self._selector_path is not None:
            from emomusic.selection.selector import load_selector

            quality = self._selector_path.parent / "quality"
            self._selector = load_selector(self._selector_path, self.backbone_weights, self.tokenizer,
                                           quality=quality if quality.is_dir() else None)
            self._selector_path = None
        return self._selector

    @property
    def recognizer(self):
        """The symbolic recognizer beside the selector (its emotion head), loaded on first use; None where
        the checkpoints have none, or one trained on another generator's embeddings."""
        if self._recognizer is False:
            from emomusic.recognition.api import SymbolicRecognizer
            from emomusic.recognition.inference import load_arrays

            self._recognizer = None
            folder = Path(self.name) / "recognizer" if self.name else None
            if folder is not None and folder.is_dir():
                arrays, config = load_arrays(folder)
                if not config.generator_sha or config.generator_sha == self.backbone_id:
                    self._recognizer = SymbolicRecognizer(arrays, config, self.backbone_weights, self.tokenizer)
        return self._recognizer

    @recognizer.setter
    def recognizer(self, value) -> None:
        self._recognizer = value

    @property
    def has_selector(self) -> bool:
        """Whether `select` will rank by the selector (answered without loading it)."""
        return self._selector is not None or self._selector_path is not None

    @selector.setter
    def selector(self, value) -> None:
        self._selector, self._selector_path = value, None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None,
                        generator: str | os.PathLike | None = None) -> EmoMusic:
        """Load shipped (or your own) checkpoints; "debug" builds a tiny random model for tests.

        Args:
            path: the checkpoints folder (None: the settings resolver's; "debug": a tiny random model).
            generator: a generator folder to sample from instead of `<path>/generator`, e.g. the output
                of `emomusic train generator --data-dir`. The selector and recognizer keep reading the
                embeddings of `<path>/backbone` (when the shipped generator was fine-tuned after they were
                trained), else of `<path>/generator` (they were trained on them); with a tokenizer whose
                vocabulary differs from that one's they are left out, with a line in `notices`.

        Returns:
            The pipeline.

        Raises:
            InvalidInputError: a missing or damaged checkpoint, or a generator whose tokenizer lacks the
                controls the clusterer sets.
        """
        if str(path) == "debug":
            return cls._debug()
        from emomusic.conditioning.clusterer import Clusterer

        root = checkpoints_root(path)
        gen_dir = root / "generator" if generator is None else Path(generator)
        if generator is not None and not (gen_dir / "config.json").is_file():
            raise InvalidInputError(f"--generator {gen_dir}: not a generator folder (no config.json); give the --out "
                                    "folder of `emomusic train generator --data-dir`")
        gen, tk = load_generator_checkpoint(gen_dir)
        selector, expression = root / "selector", root / "expression"
        backbone, notices = None, []
        if gen_dir.resolve() != backbone_dir(root).resolve():  # a user's generator, or a shipped fine-tune
            backbone, notices = _user_generator_backbone(gen_dir, tk, root)
        em = cls(gen, tk, Clusterer.load(root / "clusterer"), name=str(root),
                 selector_path=selector if selector.is_dir() and not notices else None,
                 expression_path=expression if expression.is_dir() else None, parts_root=root,
                 generator_dir=gen_dir, backbone_dir=backbone)
        if notices:
            em.recognizer = None  # trained on embeddings this tokenizer's tokens do not index
        em.notices += notices
        return em

    @classmethod
    def _debug(cls, seed: int = 0) -> EmoMusic:
        """A tiny random generator and a clusterer fitted on random attributes: fast, for tests."""
        import torch

        from emomusic.conditioning.clusterer import Clusterer
        from emomusic.generation.network import Generator, GeneratorConfig
        from emomusic.music.attributes import ATTRIBUTE_NAMES

        rng = np.random.default_rng(seed)
        rows = [{"tempo": rng.uniform(50, 180), "mode": float(rng.integers(2)), "tonic": float(rng.integers(12)),
                 "note_density": rng.uniform(0.5, 8), "pitch_mean": rng.uniform(45, 75),
                 "pitch_range": rng.uniform(5, 50), "velocity_mean": rng.uniform(30, 110),
                 "polyphony": rng.uniform(1, 5), "duration_mean": rng.uniform(0.1, 2),
                 "pitch_class_entropy": rng.uniform(1.5, 3.5)} for _ in range(200)]
        tk = MusicTokenizer(ControlBins.fit(rows))
        torch.manual_seed(seed)
        gen = Generator(GeneratorConfig(vocab_size=len(tk), dim=32, depth=2, heads=2, max_seq_len=256))
        bank = rng.normal(size=(40, len(ATTRIBUTE_NAMES))) + 1
        for i, name in enumerate(ATTRIBUTE_NAMES):
            if name in rows[0]:
                bank[:, i] = [r[name] for r in rows[:40]]
        quads = [("Q1", "Q2", "Q3", "Q4")[i % 4] for i in range(40)]
        clus = Clusterer.fit(bank, quads, [f"debug/{i}" for i in range(40)])
        from emomusic.selection.selector import debug_selector

        return cls(gen, tk, clus, name="debug", selector=debug_selector(gen, tk, seed))

    # ------------------------------------------------------------------ stage 1
    def attributes(self, emotion: str | None = None, valence: float | None = None, arousal: float | None = None,
                   k: int = 1, seed: int | None = None, intensity: float = 1.0, prototypes: bool = True) -> Attributes:
        """EmoGen stage 1: the attributes of a real piece near the emotion's centre, moved to its point.

        Args:
            emotion: a vocabulary word or quadrant; or give both `valence` and `arousal` (they win).
            k, seed: pick among the k nearest pieces of the quadrant with this seed (k=1: the nearest).
            intensity: how strongly (0 neutral, 1 the point as it is, 2 extreme); the attributes aim at
                `vocab.emotions.intensify(valence, arousal, intensity)` (`Clusterer.query`).
            prototypes: pick among the clusterer's scored prototypes (False: EmoGen's nearest pieces, the
                quadrant's stereotypes, as in the paper).

        Returns:
            The Attributes: the word's or point's emotion, the moved values and their control bins.
        """
        if emotion is None and (valence is None or arousal is None):
            raise InvalidInputError("give an emotion word (e.g. --emotion calm) or both --valence and --arousal")
        valence = check_range("valence", valence, -1, 1)
        arousal = check_range("arousal", arousal, -1, 1)
        intensity = check_range("intensity", intensity, *INTENSITY_RANGE)
        emo, values, source, explanation = self.clusterer.query(emotion, valence, arousal, k=k, seed=seed,
                                                                intensity=intensity, prototypes=prototypes)
        controls = self.tokenizer.control_bins.to_bins({c: values[c] for c in CONTROLS})
        return Attributes(emo.word, emo.quadrant, emo.valence, emo.arousal, values, controls, explanation, source)

    # ------------------------------------------------------------------ stage 2
    def generate(
        self, request: GenerationRequest | ResolvedRequest | None = None, /, *, emotion: str | None = None,
        valence: float | None = None, arousal: float | None = None, genre: str | None = None,
        tempo: float | None = None, intensity: float | None = None, bars: int = 16, candidates: int = 2,
        seed: int = 0, temperature: float = 1.0,
        top_p: float | None = None, top_k: int = 0, method: str = "attributes", guidance: bool = True,
        rank: bool = True, select_weights: dict[str, float] | None = None, primer: Notes | None = None,
        time_signature: str | tuple[int, int] | None = None, expression: bool = True, ending: bool = True,
        entry: bool = True, build: bool = True, form: str | None = None, trajectory: str | None = None,
        loop: bool = False, progression: bool = True, arrangement: str | None = None, instruments: str | None = None,
        **prompts: Any,
    ) -> list[Candidate]:
        """Generate `candidates` pieces in one batch; best first (by the selector, see `select`).

        Give either a request (a `GenerationRequest`, or one already resolved: what the CLI and the demo
        pass, so they can show its notices) or the same settings as keywords; both go through
        `GenerationRequest.resolve`, so every front end turns the same inputs into the same music.

        Args:
            request: a `GenerationRequest` or `ResolvedRequest`; then no other argument may be given.
            emotion, valence, arousal, genre, tempo: the mood and style (see `GenerationRequest`);
                explicit valence/arousal win over `emotion`, and all of them over prompts.
            intensity: how strongly the mood is meant (0 neutral, 1 as named, 2 extreme; default: a
                prompt's degree word such as "very", else 1).
            bars: the whole piece, primer included. candidates: sampled in one batch, best first.
            seed, temperature, top_p (None: the sampler's tuned `TOP_P`), top_k (0: off): sampling.
            method: "attributes" conditions on the clusterer's attribute vector (EmoGen); "token" is the
                EMOPIA-style baseline that sees only a quadrant token.
            guidance: attribute-guided decoding. rank: False keeps the batch order (evaluation).
            select_weights: overrides of the selector checkpoint's tuned ranking weights (its card
                lists them), e.g. {"control": 0, "emotion": 1}.
            time_signature: "3/4", "6/8", … (default: a prompt's metre, the primer's, else 4/4).
            expression: render velocities and sustain pedal with the learned performance layer (where
                the checkpoints have one); False keeps the generator's own velocities and no pedal.
            ending: lean to the dominant before the last bar and to the tonic triad in it while sampling
                (`CADENCE`), then close on a held tonic chord (`music.form.close_on_tonic`); False stops
                where the last bar runs out.
            entry: the tune enters in the second bar, over a first bar of its accompaniment
                (`music.form.enter_lightly`; the tune found by the checkpoints' melody model, where they
                have one), as real openings do; False opens at full texture. Not after a primer, nor in
                a loop.
            build: a piece in sections builds toward its end, as real music does: the last section's
                new bars aim at `music.form.FINAL_BUILD` times the asked notes a beat (its restated bars
                come back as they were); False keeps the asked density. Not in a loop nor a trajectory.
            form: section letters ("AABA": a repeated letter returns, restating the opening of its
                first statement) or a name in `music.form.FORMS` ("verse-chorus"); None: the default
                plan for the length (`music.form.default_form`), "through" for none.
            trajectory: sections that each carry an emotion, "calm:8,tense:8,calm:8" (words, Q1..Q4 or
                "v/a" points, with bar counts): it sets the length and the mood; a section whose emotion
                came before returns to it; tempo, key and dynamics move between sections.
            loop: the end leads back to the start (for games and DAW loops): the last bar is the one of
                several sampled after which the model finds the first bar most likely; no final chord.
            progression: each bar leans to a chord of a plan drawn from progressions learned per
                quadrant (`conditioning.progressions`; each section's chords in `sections`) instead of
                every bar to the tonic triad; a generator with bar chords gets each as its Harmony token.
                On by default; False: the tonic triad in every bar.
            arrangement: write the piece for instruments: "band", "strings", "chamber", "chiptune"
                (`arrangement.arrange.PRESETS`); each candidate's `arrangement` then holds the tracks and
                `save` writes them. None or "piano": the piano piece as generated.
            instruments: "violin, cello": instruments for the preset's parts in order, or without a preset
                the parts themselves (the first plays the melody, a low last one the bass).
            primer: notes (e.g. a hummed melody) that open every candidate: its tokens follow the
                condition prefix and the model continues it. Its tempo and metre replace the chosen ones,
                and the key becomes its own key or that key's relative in the emotion's mode (same
                notes, so the tune still fits: a C-major hum asked to be sad → A minor).
            **prompts: prompt kind → input, e.g. prompt="a rainy lonely night", image="sky.png".

        Returns:
            The candidates, best first when `rank` and more than one.

        Raises:
            InvalidInputError: a setting out of range, an unreadable prompt, or no mood named.
        """
        settings = GenerationRequest(emotion=emotion, valence=valence, arousal=arousal, genre=genre, tempo=tempo,
                                     intensity=intensity, prompts=prompts, primer=primer, bars=bars,
                                     candidates=candidates, seed=seed,
                                     temperature=temperature, top_p=top_p, top_k=top_k, method=method,
                                     guidance=guidance, rank=rank, select_weights=select_weights,
                                     time_signature=time_signature, expression=expression, ending=ending,
                                     entry=entry, build=build, form=form, trajectory=trajectory, loop=loop,
                                     progression=progression, arrangement=arrangement, instruments=instruments)
        if request is None:
            request = settings
        elif not isinstance(request, (GenerationRequest, ResolvedRequest)):
            raise TypeError(f"generate() takes a GenerationRequest or keyword settings, got {type(request).__name__}"
                            " (e.g. generate(emotion='calm'))")
        elif settings != GenerationRequest() or primer is not None:
            raise TypeError("generate(): give either a request or keyword settings, not both")
        plan = request if isinstance(request, ResolvedRequest) else request.resolve()
        return self._generate(plan)

    def variations(self, request: GenerationRequest | ResolvedRequest) -> list[Candidate]:
        """The same theme in all four quadrants: adaptive music for games, where one tune follows the play.

        The theme is the request's opening phrase (its form's first section, else up to 4 bars),
        sampled once in the asked mood. Each quadrant's piece opens with it, in that quadrant's mode
        (`music.harmony.change_mode`: the parallel mode, so tonic, rhythm and contour stay) and tempo,
        and goes on under that quadrant's attributes with the same seed and form; the asked quadrant
        keeps the asked point, the others take their quadrant's centre.

        Args:
            request: as for `generate` (one mood; a trajectory or a primer longer than the theme is
                refused).

        Returns:
            Four candidates, Q1 to Q4 (each the best of the request's candidates).

        Raises:
            InvalidInputError: a trajectory, or fewer than 2 bars.
        """
        from emomusic.music.harmony import change_mode
        from emomusic.vocab.emotions import QUADRANT_VA

        plan = request if isinstance(request, ResolvedRequest) else request.resolve()
        req = plan.request
        if plan.trajectory:
            raise InvalidInputError("variations take one mood, not a trajectory: the variations are the trajectory")
        if req.bars < 2:
            raise InvalidInputError("variations need at least 2 bars: a theme and what follows it")
        sections = plan_form(req.form, req.bars)
        theme_bars = sections[0].bars if len(sections) > 1 else min(4, req.bars // 2)
        theme_req = replace(req, bars=theme_bars, candidates=1, ending=False, expression=False, loop=False,
                            form="through")
        theme = self._generate(replace(plan, request=theme_req))[0]
        theme_notes = self.tokenizer.decode(np.asarray(theme.tokens, dtype=np.int64)).truncate(theme_bars)
        tonic = int(theme.attributes.controls["tonic"])
        theme_mode = _mode(theme.attributes.controls["mode"])
        out = []
        for q, word in variation_emotions(plan).items():
            v, a = (plan.valence, plan.arousal) if q == plan.quadrant else QUADRANT_VA[q]
            qa = self.attributes(None, v, a, k=NEAREST_PIECES, seed=req.seed, intensity=plan.intensity)
            mode = _mode(qa.controls["mode"])
            primer = theme_notes if mode == theme_mode else change_mode(theme_notes, tonic, theme_mode)
            primer = replace(primer, tempo=float(plan.tempo or qa.values["tempo"]))
            best = self._generate(replace(plan, emotion=word, quadrant=q, valence=v, arousal=a, primer=primer,
                                          request=replace(req, primer=None)))[0]
            out.append(best)
        return out

    def _generate(self, plan: ResolvedRequest) -> list[Candidate]:
        """Sample from a resolved request: attributes near its point → condition prefix → batch → rank."""
        from emomusic.generation.sampling import Guidance, sample, sample_parts

        req = plan.request
        bars, seed, method = req.bars, req.seed, req.method
        attrs = self.attributes(None, plan.valence, plan.arousal, k=NEAREST_PIECES, seed=seed,
                                intensity=plan.intensity)
        if attrs.quadrant == plan.quadrant:
            attrs = replace(attrs, emotion=plan.emotion)  # the word asked or named, not the nearest one
        tk = self.tokenizer
        tempo = plan.tempo
        primer, primer_ids = self._primer(plan.primer, bars)
        if primer is not None:
            tempo = tempo or float(np.clip(primer.tempo, *TEMPO_RANGE))
            attrs = replace(attrs, controls={**attrs.controls, "tonic": _primer_tonic(primer, attrs.controls["mode"])})
        if method == "token":
            prefix = tk.condition_ids(plan.genre, emotion=attrs.quadrant)
            guide = Guidance(tempo=tempo) if req.guidance else Guidance(time_signature=None)
        else:
            controls = dict(attrs.controls)
            if tempo is not None:
                controls["tempo"] = tk.control_bins.to_bins({**attrs.values, "tempo": tempo})["tempo"]
            attrs = replace(attrs, controls=controls)
            prefix = tk.condition_ids(plan.genre, controls=controls)
            guide = self._guidance(attrs, tempo) if req.guidance else Guidance(time_signature=None)
        metre = plan.time_signature or (primer.time_signature if primer is not None else None)
        if metre is not None and (guide.time_signature is not None or plan.time_signature is not None):
            guide = replace(guide, time_signature=metre)  # an asked metre holds even without guidance
        top_p = TOP_P if req.top_p is None else req.top_p
        n_primer = int((tk.types[primer_ids] == BAR).sum())
        details: list[dict] = []  # per section, what a trajectory gives it (emotion, tempo, key)
        if plan.trajectory:
            if n_primer >= plan.trajectory[0][1]:
                raise InvalidInputError(f"the opening melody is {n_primer} bars long; give the trajectory's first "
                                        f"section more than {n_primer} bars")
            sections, parts, details = self._trajectory(plan, attrs, list(prefix), guide, tempo)
        else:
            sections = plan_form(req.form, bars, opening=n_primer)
            parts = self._parts(sections, plan, attrs, list(prefix), guide) if len(sections) > 1 else []
        end_guide, prepared = guide, None
        if req.ending and not req.loop and req.guidance:  # the sampler knows where the piece ends
            end_guide = replace(guide, cadence=CADENCE)
            if parts:
                parts[-1] = replace(parts[-1], guidance=replace(parts[-1].guidance, cadence=CADENCE))
            last_guide = parts[-1].guidance if parts else end_guide  # the key the last bars are steered to
            if last_guide.tonic is not None:
                prepared = (last_guide.tonic, last_guide.mode)
        plans = None  # each candidate its own chord plan (per section): best of N chooses among progressions too
        if req.progression:
            quadrants = [d["quadrant"] for d in details] if details else [plan.quadrant] * len(sections)
            guides = [p.guidance for p in parts] if parts else [end_guide]
            plans = [self._chord_plans(sections, guides, quadrants, seed, row, ending=req.ending and not req.loop)
                     for row in range(req.candidates)]
        if len(sections) > 1 or req.loop:
            parts = parts or [Part(bars, tuple(prefix), end_guide)]
            per_row = parts if plans is None else [
                [replace(p, guidance=replace(p.guidance, chords=c[0])) if c else p
                 for p, c in zip(parts, mine, strict=True)] for mine in plans]
            rows = sample_parts(self.decoding_model, tk, per_row, rows=req.candidates, primer=primer_ids,
                                temperature=req.temperature, top_p=top_p, top_k=req.top_k, seed=seed, loop=req.loop)
            tokens = [ids for ids, _spans in rows]
        else:
            guides_of = end_guide if plans is None else [replace(end_guide, chords=mine[0][0]) if mine[0] else end_guide
                                                         for mine in plans]
            tokens = sample(self.decoding_model, tk, [list(prefix) + primer_ids.tolist()] * req.candidates,
                            n_bars=bars, temperature=req.temperature, top_p=top_p, top_k=req.top_k,
                            guidance=guides_of, seed=seed)
        layout = [{"label": s.label, "first_bar": s.start + 1, "bars": s.bars,
                   "returns_to": None if s.returns_to is None else sections[s.returns_to].start + 1}
                  | (details[i] if details else {}) for i, s in enumerate(sections)]
        out = []
        # The tempo token is the vocabulary's nearest (24 log bins); the file states the tempo asked for,
        # or the one the attributes chose, exactly (a trajectory: each section's, ramped between them).
        written_tempo = tempo if tempo is not None else guide.tempo
        # the tune enters over a bar of accompaniment where the piece starts from nothing: not after the
        # user's opening, and not in a loop, whose first bar follows its last
        entering = self._tune_finder() if req.entry and primer is None and not req.loop and bars > 1 else None
        for row, ids in enumerate(tokens):
            ids = np.concatenate([primer_ids, ids])
            notes = tk.decode(ids).truncate(bars)
            bar = notes.beats_per_bar
            notes = release_at(notes, [s.start * bar for s in sections if s.returns_to is not None])
            if written_tempo is not None:
                notes = replace(notes, tempo=round(float(written_tempo), 2))
            if details:
                notes = replace(notes, tempos=tempo_ramps([(s.start * bar, d["tempo"])
                                                           for s, d in zip(sections, details, strict=True)], bar))
            if req.ending and not req.loop:  # the last section's key: a trajectory may end elsewhere than it began
                last = notes.start >= sections[-1].start * bar - 1e-9
                key = closing_key(signature_key(notes.select(last) if details and last.any() else notes), prepared)
                notes = close_on_tonic(notes, key, bars)
            if entering is not None:  # written after the returns were copied: they bring the whole bar back
                head = np.flatnonzero(notes.start < 2 * bar)  # the tune of bar 1 is found in bars 1-2 alone
                tune = np.zeros(len(notes), dtype=bool)
                tune[head] = entering(notes.select(head))
                notes = enter_lightly(notes, tune)
            if req.expression and self.expression is not None:
                notes = self.expression.render(notes, seed=(seed or 0) + row)  # its own draw per candidate
            if details:
                notes = dynamic_ramps(notes, [s.start * bar for s in sections[1:]], bar)
            measured = compute_controls(notes) if len(notes) else {}
            mine = plans[row] if plans is not None else [None] * len(layout)
            out.append(Candidate(notes, [int(t) for t in ids], seed, method, attrs, measured,
                                 sections=[dict(d) | ({"chords": list(c[1])} if c else {})
                                           for d, c in zip(layout, mine, strict=True)]))
        made = req.provenance() | self._made_with()
        for cand in out:
            cand.provenance = dict(made)
        out = self.select(out, plan.genre, req.select_weights) if req.rank and req.candidates > 1 else out
        return self._arranged(out, plan) if _arranges(req) else out

    def _arranged(self, cands: list[Candidate], plan: ResolvedRequest) -> list[Candidate]:
        """Each candidate written for the request's instruments (`arrangement.arrange`), its own drum seed."""
        from emomusic.arrangement.arrange import arrange, roles_for

        req = plan.request
        chosen, _ = roles_for(req.arrangement, req.instruments)
        roles = {r.role for r in chosen.roles}
        melody = self.arranger("melody").mask if roles & {"melody"} else None
        drums = self.arranger("drums") if "drums" in roles else None
        style = plan.genre_asked or plan.genre
        for row, cand in enumerate(cands):
            cand.arrangement = arrange(cand.notes, req.arrangement, req.instruments, melody=melody, drums=drums,
                                       arousal=plan.arousal, style=style, seed=(cand.seed or 0) + row,
                                       sections=cand.sections)
        return cands

    def continuation(self, tracks: list[Track], request: GenerationRequest) -> list[Candidate]:
        """The user's piece with `request.bars` more bars in the asked mood, the piece itself unchanged.

        The last `CONTEXT_BARS` bars of the user's pitched parts (merged) are the primer: the model
        continues their key (or its relative in the asked mode), tempo, metre, texture and motifs under
        the asked emotion's attributes. The new bars are appended to the user's main pitched track (the
        one with most notes); every other track is kept as it is, and the user's notes, tempo, metre and
        pedal are not touched.

        Args:
            tracks: the user's parts (`music.midi.score_tracks`), sharing a tempo map and metre.
            request: the mood, seed, candidates, … ; `bars` = bars to add (`primer` must be None).

        Returns:
            Candidates, best first: `arrangement` holds the user's tracks with the continuation,
            `notes` every pitched note (for judging), `sections` the user's part and the new one.

        Raises:
            InvalidInputError: no pitched part, a primer given, or bad settings.
        """
        user = Arrangement(tuple(tracks), "continued")
        mains = [i for i, t in enumerate(tracks) if not t.drums]
        if not mains:
            raise InvalidInputError("the piece has drums only; continuing needs a pitched part")
        if request.primer is not None:
            raise InvalidInputError("continue takes the piece itself as the opening; give no primer")
        main = max(mains, key=lambda i: len(tracks[i].notes))
        pitched = user.pitched()
        bar = pitched.beats_per_bar
        n_user = pitched.n_bars
        changes = pitched.tempos[pitched.tempos[:, 0] <= n_user * bar + 1e-9] if len(pitched.tempos) else None
        tempo_now = float(changes[-1, 1]) if changes is not None and len(changes) else pitched.tempo
        first = max(0, n_user - CONTEXT_BARS)
        while True:  # the context opens on a bar that sounds (the sampler drops leading empty bars)
            window = pitched.select(pitched.start + pitched.duration > first * bar + 1e-9)
            start = np.maximum(window.start - first * bar, 0.0)
            lead = int(np.floor(start.min() / bar + 1e-9))
            if lead == 0:
                break
            first += lead
        ctx = n_user - first
        context = replace(window, start=start, duration=window.duration - (start + first * bar - window.start),
                          tempo=tempo_now, tempos=np.zeros((0, 2)), pedals=np.zeros((0, 2)))
        plan = replace(request, primer=context, bars=ctx + int(request.bars), form="through").resolve()
        cands = self._generate(plan)
        join = n_user * bar
        kit = [i for i, t in enumerate(tracks) if t.drums][:1]
        # several parts: the new bars are arranged for them (the highest plays the tune, the lowest the bass)
        order = sorted(mains, key=lambda i: -float(np.median(tracks[i].notes.pitch))) + kit
        for row, cand in enumerate(cands):
            made = cand.notes
            new = made.select(made.start >= ctx * bar - 1e-9)
            new = replace(new, start=new.start - ctx * bar, tempos=np.zeros((0, 2)))
            if len(order) > 1:
                from emomusic.arrangement.arrange import arrange

                names = ",".join("drums" if tracks[i].drums else str(max(0, tracks[i].program)) for i in order)
                parts_new = arrange(new, None, names, melody=self.arranger("melody").mask,
                                    drums=self.arranger("drums") if kit else None, arousal=plan.arousal,
                                    style=plan.genre_asked or plan.genre, seed=(cand.seed or 0) + row)
                added = {i: t.notes for i, t in zip(order, parts_new.tracks, strict=True)}
            else:
                added = {main: new}
            parts = list(tracks)
            for i, extra in added.items():
                parts[i] = replace(tracks[i], notes=_appended(tracks[i].notes, extra, join))
            if request.tempo is not None and abs(float(request.tempo) - tempo_now) > 1e-6:
                first_part = parts[0].notes
                parts[0] = replace(parts[0], notes=replace(first_part, tempos=np.concatenate(
                    [first_part.tempos.reshape(-1, 2), [[join, float(request.tempo)]]])))
            cand.arrangement = Arrangement(tuple(parts), "continued")
            cand.notes = cand.arrangement.pitched()
            cand.sections = [{"label": "yours", "first_bar": 1, "bars": n_user, "returns_to": None},
                             {"label": "continuation", "first_bar": n_user + 1, "bars": int(request.bars),
                              "returns_to": None}]
        return cands

    def infill(self, tracks: list[Track], first_bar: int, last_bar: int, request: GenerationRequest,
               look_ahead: bool = True) -> list[Candidate]:
        """Bars `first_bar`..`last_bar` of the user's piece written anew in the asked mood, joining both sides.

        The bars before are the primer (the model goes on from them, as `continuation` does); of
        `INFILL_CANDIDATES` drawn, the one after which the model finds the following bars of the piece
        most likely (`generation.sampling.log_likelihood` of up to `LOOKAHEAD_BARS` bars) is kept, so
        the new bars lead into what comes next as well as following what came before. Everything
        outside the bars is kept as it was; the new notes go on the main pitched track.

        Args:
            tracks: the user's parts (`music.midi.score_tracks`).
            first_bar, last_bar: 1-based, inclusive.
            request: the mood and seed (`bars`, `candidates` and `primer` are set here).
            look_ahead: False keeps the first candidate (the one-sided baseline the benchmark compares).

        Returns:
            [the chosen candidate]: `arrangement` the whole piece, `scores["look_ahead"]` its score.

        Raises:
            InvalidInputError: bars outside the piece, or no pitched part.
        """
        from emomusic.generation.sampling import log_likelihood

        user = Arrangement(tuple(tracks), "infilled")
        mains = [i for i, t in enumerate(tracks) if not t.drums]
        if not mains:
            raise InvalidInputError("the piece has drums only; infilling needs a pitched part")
        pitched = user.pitched()
        bar, n_user = pitched.beats_per_bar, pitched.n_bars
        if not (isinstance(first_bar, int) and isinstance(last_bar, int) and 1 <= first_bar <= last_bar <= n_user):
            raise InvalidInputError(f"bars {first_bar}-{last_bar}: give bars inside the piece's 1-{n_user}")
        a, b = first_bar - 1, last_bar
        first = max(0, a - CONTEXT_BARS)
        while True:  # the context opens on a bar that sounds (the sampler drops leading empty bars)
            left = pitched.select((pitched.start < a * bar - 1e-9) & (pitched.start + pitched.duration > first * bar))
            lead = int(np.floor((left.start.min() - first * bar) / bar + 1e-9)) if len(left) else 0
            if lead <= 0:
                break
            first += lead
        ctx = a - first
        context = None
        if ctx and len(left):
            start = np.maximum(left.start - first * bar, 0.0)
            end = np.minimum(left.start + left.duration, a * bar) - first * bar
            context = replace(left, start=start, duration=np.maximum(end - start, 1e-3), tempos=np.zeros((0, 2)),
                              pedals=np.zeros((0, 2)))
        else:
            ctx = 0
        right = pitched.select((pitched.start >= b * bar - 1e-9) & (pitched.start < (b + LOOKAHEAD_BARS) * bar))
        k = INFILL_CANDIDATES if look_ahead and len(right) else 1
        plan = replace(request, primer=context, bars=ctx + b - a, form="through", candidates=k, rank=False,
                       loop=False, arrangement=None, instruments=None,
                       ending=request.ending and b == n_user).resolve()
        cands = self._generate(plan)
        tk = self.tokenizer
        for cand in cands:
            if k == 1:
                cand.scores["look_ahead"] = float("nan")
                continue
            made = cand.notes.truncate(ctx + b - a)
            later = replace(right, start=right.start - b * bar + (ctx + b - a) * bar)
            cat = {f: np.concatenate([getattr(made, f), getattr(later, f)]) for f in ("pitch", "start", "duration",
                                                                                    "velocity")}
            ids = tk.encode(Notes.from_arrays(cat["pitch"], cat["start"], cat["duration"], cat["velocity"],
                                              made.tempo, made.time_signature))
            bars_at = np.flatnonzero(ids == tk.bar_id)
            split = bars_at[ctx + b - a] if len(bars_at) > ctx + b - a else len(ids)
            cond = np.asarray(tk.condition_ids(plan.genre, controls=cand.attributes.controls), dtype=np.int64)
            tail = ids[split:split + LOOKAHEAD_TOKENS]
            room = self._generator.config.max_seq_len - len(cond) - len(tail) - 1
            head = ids[max(0, split - room):split]
            cand.scores["look_ahead"] = log_likelihood(self.decoding_model, np.concatenate([cond, head]), tail)
        best = max(cands, key=lambda c: c.scores["look_ahead"]) if k > 1 else cands[0]
        new = best.notes.select((best.notes.start >= ctx * bar - 1e-9) & (best.notes.start < (ctx + b - a) * bar))
        new = replace(new, start=new.start + (a - ctx) * bar,
                      duration=np.minimum(new.duration, (ctx + b - a) * bar - new.start), tempos=np.zeros((0, 2)))
        main = max(mains, key=lambda i: len(tracks[i].notes))
        parts = list(tracks)
        for i in mains:
            n = tracks[i].notes
            keep = n.select((n.start < a * bar - 1e-9) | (n.start >= b * bar - 1e-9))
            if i == main:
                keep = _appended(keep, replace(new, pedals=np.zeros((0, 2))), 0.0)
            parts[i] = replace(tracks[i], notes=keep)
        best.arrangement = Arrangement(tuple(parts), "infilled")
        best.notes = best.arrangement.pitched()
        best.sections = [s for s in ({"label": "yours", "first_bar": 1, "bars": a, "returns_to": None},
                                     {"label": "infill", "first_bar": first_bar, "bars": b - a, "returns_to": None},
                                     {"label": "yours", "first_bar": b + 1, "bars": n_user - b, "returns_to": None})
                         if s["bars"] > 0]
        return [best]

    def transform(self, tracks: list[Track], request: GenerationRequest, keep: str = "melody",
                  candidates: int = TRANSFORM_CANDIDATES) -> list[Candidate]:
        """The user's piece in another mood: what `keep` names stays, the rest is written anew around it.

        keep="melody": the learned extractor (`arrangement.melody`) finds the tune; it keeps its onsets,
        durations and contour, moved to the target mode by the parallel mode (`music.harmony.change_mode`:
        tonic kept, third, sixth and seventh moved) when the target's mode differs, and by an octave
        toward the target's register when that is an octave or more away. New chords are chosen for it
        in the target key (`music.transform.harmonise`, leaning to the piece's own, mode-adjusted), and the
        accompaniment is sampled under the target emotion's attributes (tempo, dynamics, density,
        register) with the tune as a constraint (`generation.processors.accompany`: never at or above
        the tune, chord tones favoured); of `candidates` drawn, the one the model finds most likely
        with the tune in place, plus its share of chord tones, is kept.

        keep="harmony": the piece's own chord on each beat (mode-adjusted) stays, and melody and
        texture are sampled anew under the target attributes, leaning to those chords' tones.

        The target mode follows the target's valence (below 0: minor), not the mode of the one real
        piece the attributes come from, so a sad target is minor whichever piece is nearest. Tempo is
        the target's (or the request's), written exactly; the metre and length stay the user's; drum
        tracks are kept as they are, on the same beats. The expression layer plays the result.

        Args:
            tracks: the user's parts (`music.midi.score_tracks`).
            request: the mood, seed, tempo, sampling settings (`bars`, `primer` and `form` are set here).
            keep: "melody" or "harmony".
            candidates: accompaniments (or textures) drawn; the best is kept.

        Returns:
            [the chosen candidate]: `arrangement` the tracks written, `notes` every pitched note, `scores`
            its "chord_tones", "logprob_per_token" and "score", `sections` one "transformed" section.

        Raises:
            InvalidInputError: drums only, no notes, longer than `MAX_TRANSFORM_BARS`, an unknown `keep`,
                a primer or another metre asked, or bad settings.
        """
        from emomusic.generation.guidance import Accompaniment
        from emomusic.generation.sampling import Guidance, log_likelihood, sample
        from emomusic.music import transform as tf

        if keep not in ("melody", "harmony"):
            raise InvalidInputError(f"keep {keep!r}: give 'melody' or 'harmony'")
        candidates = check_range("candidates", candidates, 1, 64, int)
        mains = [i for i, t in enumerate(tracks) if not t.drums and len(t.notes)]
        if not mains:
            raise InvalidInputError("the piece has drums only; transforming needs a pitched part")
        if request.primer is not None:
            raise InvalidInputError("transform takes the piece itself; give no primer")
        pitched = Arrangement(tuple(tracks), "transformed").pitched()
        metre, bar, n_bars = pitched.time_signature, pitched.beats_per_bar, pitched.n_bars
        if n_bars > MAX_TRANSFORM_BARS:
            raise InvalidInputError(f"the piece is {n_bars} bars long, over the {MAX_TRANSFORM_BARS} bars transform "
                                    "takes; cut it, or transform it in parts")
        asked = request.time_signature
        if asked is not None and tuple(parse_time_signature(asked) if isinstance(asked, str) else asked) != metre:
            raise InvalidInputError("transform keeps the piece's metre ({}/{}); leave out the time signature"
                                    .format(*metre))
        plan = replace(request, primer=None, bars=n_bars, form="through", loop=False, arrangement=None,
                       instruments=None, candidates=candidates, time_signature=None).resolve()
        req, tk = plan.request, self.tokenizer
        seed = req.seed
        attrs = self.attributes(None, plan.valence, plan.arousal, k=NEAREST_PIECES, seed=seed,
                                intensity=plan.intensity)
        if attrs.quadrant == plan.quadrant:
            attrs = replace(attrs, emotion=plan.emotion)
        tonic, mode = estimate_key(pitched)
        target = "minor" if plan.valence < 0 else "major"
        tempo = round(float(plan.tempo if plan.tempo is not None else np.clip(attrs.values["tempo"], *TEMPO_RANGE)), 2)
        values = attrs.values
        whole = tf.to_mode(pitched, tonic, mode, target)  # every note in the target mode (chords, prior)
        n_beats = int(np.ceil(n_bars * bar - 1e-9))
        if keep == "melody":
            mask = self._melody_mask(pitched)
            # whole octaves only, and only when the target's register is an octave or more away
            shift = int(np.clip(12 * np.fix((values["pitch_mean"] - float(pitched.pitch.mean())) / 12), -12, 12))
            tune = whole.select(mask).transpose(shift) if shift else whole.select(mask)
            level = float(np.clip(values["velocity_mean"] + MELODY_LIFT, 1, 127))
            tune = replace(tune, velocity=np.full(len(tune), round(level), dtype=tune.velocity.dtype),
                           tempo=tempo, tempos=np.zeros((0, 2)), pedals=np.zeros((0, 2)))
            chords = tf.harmonise(tune, tonic, target, n_beats, prior=whole)
            steps = np.arange(n_beats * Accompaniment.steps_per_beat) / Accompaniment.steps_per_beat
            ceiling = np.maximum(tf.ceiling(tune, steps), MIN_CEILING)
            density = max(MIN_ACCOMPANIMENT_DENSITY, values["note_density"] - len(tune) / max(n_beats, 1))
            pitch_mean = min(values["pitch_mean"], float(tune.pitch.mean()) - ACCOMPANIMENT_BELOW) if len(tune) \
                else values["pitch_mean"]
        else:
            tune = None
            chords = tf.kept_chords(whole, tonic, n_beats)
            ceiling = np.full(n_beats * Accompaniment.steps_per_beat, 128, dtype=np.int64)
            density, pitch_mean = values["note_density"], values["pitch_mean"]
        favour = np.where(chords, CHORD_BIAS, -CHORD_BIAS).astype(np.float32)
        favour = np.repeat(favour, Accompaniment.steps_per_beat, axis=0)
        controls = {**attrs.controls, "tonic": tonic, "mode": int(target == "major"),
                    "tempo": tk.control_bins.to_bins({**values, "tempo": tempo})["tempo"]}
        attrs = replace(attrs, controls=controls)
        prefix = (tk.condition_ids(plan.genre, emotion=attrs.quadrant) if req.method == "token"
                  else tk.condition_ids(plan.genre, controls=controls))
        # bars of one beat (1/4, read off some files) the model never wrote in: it samples 4/4 bars over the
        # same beats, and the notes go back into the user's bars
        work = metre if metre[0] >= 2 else (4, 4)
        n_work = int(np.ceil(n_bars * bar / (work[0] * 4 / work[1]) - 1e-9))
        guide = Guidance(tempo=tempo, time_signature=work, accompany=Accompaniment(ceiling, favour))
        if req.guidance:
            guide = replace(self._guidance(attrs, tempo), time_signature=work, density=density, pitch_mean=pitch_mean,
                            accompany=guide.accompany)
        top_p = TOP_P if req.top_p is None else req.top_p
        rows = sample(self.decoding_model, tk, [list(prefix)] * candidates, n_bars=n_work,
                      temperature=req.temperature, top_p=top_p, top_k=req.top_k, guidance=guide, seed=seed)
        cond = np.asarray(prefix, dtype=np.int64)
        room = self._generator.config.max_seq_len - len(cond) - 1
        made = []
        for ids in rows:
            acc = replace(tk.decode(np.asarray(ids, dtype=np.int64)), time_signature=metre).truncate(n_bars)
            acc = replace(acc, tempo=tempo, tempos=np.zeros((0, 2)), pedals=np.zeros((0, 2)))
            if tune is not None:
                acc = tf.under_melody(acc, tune)
            both, is_tune = _merged(tune, acc) if tune is not None else (acc, np.zeros(len(acc), dtype=bool))
            ids_all = tk.encode(both) if len(both) else np.zeros(0, dtype=np.int64)
            scored = ids_all[:min(room, TRANSFORM_SCORE_TOKENS)]
            lp = log_likelihood(self.decoding_model, cond, scored) / max(len(scored), 1) if len(scored) else -np.inf
            share = tf.chord_tone_share(acc, chords)
            share = 0.0 if np.isnan(share) else share
            made.append((lp + CHORD_WEIGHT * share, lp, share, acc, ids_all, both, is_tune))
        score, lp, share, acc, ids_all, both, is_tune = max(made, key=lambda m: m[0])
        if not len(acc) and tune is None:
            raise InvalidInputError("the model wrote no notes for this piece; try another --seed")
        # the performance: learned velocities and pedal over the whole texture, tune and accompaniment together
        if req.expression and self.expression is not None and len(both):
            both = self.expression.render(both, seed=seed or 0)
        home = _tune_home(tracks, mains, pitched.select(mask)) if keep == "melody" else mains[0]
        parts = self._transformed_tracks(tracks, mains, home, both, is_tune, keep, tempo)
        arrangement = Arrangement(tuple(parts), "transformed")
        notes = arrangement.pitched()
        cand = Candidate(notes, [int(t) for t in ids_all], seed, req.method, attrs,
                         compute_controls(notes) if len(notes) else {},
                         scores={"score": float(score), "logprob_per_token": float(lp), "chord_tones": float(share)},
                         sections=[{"label": "transformed", "first_bar": 1, "bars": n_bars, "returns_to": None,
                                    "keep": keep, "key": key_label(tonic, target), "key_before": key_label(tonic, mode),
                                    "tempo": round(tempo, 2)}],
                         arrangement=arrangement)
        cand.provenance = req.provenance() | {"primer_notes": len(pitched), **self._made_with()}
        return [cand]

    def _melody_mask(self, notes: Notes) -> np.ndarray:
        """The tune of a merged part: the learned extractor's, or the skyline (the top note of each onset)
        where the checkpoints have no melody model."""
        try:
            model = self.arranger("melody")
        except InvalidInputError:
            from emomusic.arrangement.melody import skyline

            return skyline(notes)
        return model.mask(notes)

    @staticmethod
    def _transformed_tracks(tracks: list[Track], mains: list[int], home: int, both: Notes, is_tune: np.ndarray,
                            keep: str, tempo: float) -> list[Track]:
        """The tracks written: the tune on `home`, the user's track that held most of it (its name and instrument);
        the new accompaniment on the instrument of the busiest other pitched track (one part: a new
        "Accompaniment" track on the tune's instrument); keep="harmony": the new texture on the main track.
        The user's other pitched tracks give way to the new music; drum tracks are kept as they are."""
        pedals = both.pedals

        def part(keep_mask: np.ndarray, piano: bool) -> Notes:
            n = both.select(keep_mask)
            return replace(n, tempo=tempo, tempos=np.zeros((0, 2)), pedals=pedals if piano else np.zeros((0, 2)),
                           meta={})

        main = max(mains, key=lambda i: len(tracks[i].notes))
        drums = [replace(t, notes=replace(t.notes, tempo=tempo, tempos=np.zeros((0, 2)))) for t in tracks if t.drums]
        if keep == "harmony":
            t = tracks[main]
            return [Track(t.name, t.program, "piano", part(np.ones(len(both), dtype=bool), t.program < 8)), *drums]
        first = tracks[home]
        others = [i for i in mains if i != home]
        acc_home = tracks[max(others, key=lambda i: len(tracks[i].notes))] if others else None
        lead = Track(first.name, first.program, "melody", part(is_tune, first.program < 8))
        program = acc_home.program if acc_home is not None else first.program
        name = acc_home.name if acc_home is not None else "Accompaniment"
        accomp = Track(name, program, "chords", part(~is_tune, program < 8))
        return [lead, accomp, *drums]

    def _parts(self, sections, plan: ResolvedRequest, attrs: Attributes, conditions: list[int], guide) -> list:
        """The form plan as sampling parts: section A under the piece's conditions, each new letter under
        those of another real piece near the same point (`NEAREST_PIECES`, so it contrasts in density,
        register and texture but keeps the key, mode and tempo), each return restating the opening of its
        first statement (`music.form.restated_bars`).

        A section after another letter's steers its density and register by its own notes
        (`Part.counts_before`): counted with the music before it, written to the other piece's targets,
        a B after a lower A was pushed to make up the difference. In 80 AABA pieces of 16 bars (seeds
        910,000+), 10 of 320 sections asked by quadrant and 12 asked by word had a mean pitch above C6, a
        top note from E7 or under one note a beat (mostly sad Bs around D#6-F6 and the returns after
        them); with their own counts 0 and 3 (docs/BENCHMARKS.md).

        The last section aims at `music.form.FINAL_BUILD` times its density (`build`; not in a loop, whose
        end leads back to its start): the piece builds toward its end, as real music does.
        """
        req = plan.request
        letters: dict[str, tuple[tuple[int, ...], object]] = {}
        parts = []
        for i, sec in enumerate(sections):
            if sec.label not in letters:
                letters[sec.label] = (tuple(conditions), guide) if not letters or req.method == "token" else \
                    self._contrast(plan, attrs, guide, len(letters))
            cond, g = letters[sec.label]
            own = all(letters[s.label][1] is g for s in sections[:i])  # all before written to these targets
            parts.append(Part(sec.bars, cond, g, sec.returns_to, restated_bars(sections, i), counts_before=own))
        last = parts[-1].guidance
        if req.build and not req.loop and len(parts) > 1 and last is not None and last.density is not None:
            parts[-1] = replace(parts[-1], guidance=replace(last, density=last.density * FINAL_BUILD))
        return parts

    def _trajectory(self, plan: ResolvedRequest, attrs: Attributes, conditions: list[int], guide,
                    tempo: float | None) -> tuple[tuple, list, list[dict]]:
        """A trajectory as sections and sampling parts: each section under the attributes of its own
        emotion (a real piece near its point), a section whose emotion came before returning to it.

        Transitions are what players do rather than jump cuts: a section keeps the tonic and takes its
        emotion's mode (C major to C minor: the parallel key, modal mixture, the film composer's turn
        to dark or bright; the bass and tonic carry over); tempi ramp over the bar before a section
        (`music.form.tempo_ramps`) and dynamics lead into it (`music.form.dynamic_ramps`). The relative
        key (same key signature) was too slight a turn: of 133 sections whose mode differs from the
        section before, the recognizer heard 0.71 as asked in the relative key and 0.82 in the parallel
        one (five seed sets; docs/BENCHMARKS.md).

        Sections take the scored prototypes, as whole pieces do. With the first scores (no tempo term)
        they did worse than EmoGen's nearest pieces (0.665 of 120 sections heard as asked against 0.83);
        with a tempo on each quadrant's arousal side in the score, 0.78 against 0.79 (docs/BENCHMARKS.md).

        Returns:
            (sections, parts, per section {"emotion", "quadrant", "valence", "arousal", "tempo", "key"}).
        """
        from emomusic.generation.sampling import Guidance

        req, tk = plan.request, self.tokenizer
        first_of: dict[tuple, int] = {}
        sections: list[Section] = []
        parts, details, specs = [], [], []
        start = 0
        tonic = int(attrs.controls["tonic"])  # every section's: the parallel key on a change of mode
        for i, (emo, n) in enumerate(plan.trajectory):
            back = first_of.get((emo.word, emo.valence, emo.arousal))
            if back is None:
                first_of[(emo.word, emo.valence, emo.arousal)] = i
                if i == 0:
                    a, cond, g = replace(attrs, emotion=emo.word), tuple(conditions), guide
                else:
                    a = self.attributes(None, emo.valence, emo.arousal, k=NEAREST_PIECES, seed=req.seed,
                                        intensity=plan.intensity)
                    controls = {**a.controls, "tonic": tonic}  # the mode is the emotion's
                    if tempo is not None:
                        controls["tempo"] = tk.control_bins.to_bins({**a.values, "tempo": tempo})["tempo"]
                    a = replace(a, emotion=emo.word, controls=controls)
                    if req.method == "token":
                        cond = tuple(tk.condition_ids(plan.genre, emotion=a.quadrant))
                        g = Guidance(tempo=tempo, time_signature=guide.time_signature) if req.guidance else guide
                    else:
                        cond = tuple(tk.condition_ids(plan.genre, controls=controls))
                        g = (replace(self._guidance(a, tempo), time_signature=guide.time_signature)
                             if req.guidance else guide)
                section_tempo = float(tempo if tempo is not None else (g.tempo or a.values["tempo"]))
                specs.append((cond, g, {"emotion": emo.word, "quadrant": emo.quadrant, "valence": emo.valence,
                                        "arousal": emo.arousal, "tempo": round(section_tempo, 2),
                                        "key": key_label(int(a.controls["tonic"]), _mode(a.controls["mode"]))}))
                spec = specs[-1]
                label = chr(ord("A") + len(specs) - 1)
            else:
                label = sections[back].label
                spec = specs[ord(label) - ord("A")]  # letters follow the order the emotions first came
            sections.append(Section(label, start, n, back))
            # after the first section the music before was written under other emotions: not counted
            parts.append(Part(n, spec[0], spec[1], back, restated_bars(sections, i), counts_before=i == 0))
            details.append(dict(spec[2]))
            start += n
        return tuple(sections), parts, details

    def _chord_plans(self, sections, guides: list, quadrants: list[str], seed: int | None, row: int,
                     ending: bool) -> list[tuple[tuple[tuple[int, ...], ...], tuple[str, ...]] | None]:
        """A chord a bar for each section (`conditioning.progressions`), as pitch classes and Roman numerals.

        The first section (and one in another key or mode than the section before) opens on the tonic; a
        new section goes on from the chord before it; a return keeps its first statement's plan (its bars
        past that one's drawn on). Every section ends on a cadence chord, the tonic or the dominant (a
        half cadence); the last one on the tonic when the piece ends there.

        Args:
            sections: the form plan's or trajectory's sections.
            guides: each section's guidance (its tonic and mode; none: no plan for it).
            quadrants: each section's quadrant (its table).
            seed: the request's seed.
            row: the candidate (each draws its own plan; the same seed and row, the same plan).
            ending: whether the last bar is the piece's end.

        Returns:
            Per section (pitch classes a bar, numerals a bar), or None where it has no plan (no model,
            no key, no guidance).
        """
        model = self.progressions
        rng = np.random.default_rng(np.random.SeedSequence([int(seed or 0), CHORD_PLAN_STREAM, int(row)]))
        drawn: list[np.ndarray | None] = []
        out: list = []
        for i, (sec, g, quadrant) in enumerate(zip(sections, guides, quadrants, strict=True)):
            if model is None or g is None or g.tonic is None or g.mode is None:
                drawn.append(None)
                out.append(None)
                continue
            tonic = model.tonic(g.mode)
            closes = ending and i == len(sections) - 1
            # a phrase ends on a cadence: the tonic, or the dominant (a half cadence); the piece on the tonic
            end = tonic if closes else [c for c in (tonic, model.dominant()) if c >= 0]
            src = sec.returns_to
            before = guides[i - 1] if i > 0 and drawn[i - 1] is not None else None
            same_key = before is not None and (before.tonic, before.mode) == (g.tonic, g.mode)
            if src is not None and drawn[src] is not None and guides[src].mode == g.mode:
                idx = drawn[src][: sec.bars]
                if len(idx) < sec.bars:
                    idx = np.concatenate([idx, model.plan(quadrant, g.mode, sec.bars - len(idx), rng, last=end,
                                                          after=int(idx[-1]))])
                idx = idx.copy()
                if closes:
                    idx[-1] = tonic
            else:
                idx = model.plan(quadrant, g.mode, sec.bars, rng, first=None if same_key else tonic, last=end,
                                 after=int(drawn[i - 1][-1]) if same_key else None)
            drawn.append(idx)
            out.append((tuple(model.pitch_classes(int(c), int(g.tonic)) for c in idx),
                        tuple(model.name(int(c), g.mode) for c in idx)))
        return out

    def _contrast(self, plan: ResolvedRequest, attrs: Attributes, guide, j: int):
        """Conditions and guidance of a contrasting section: the attributes of another of the real
        pieces nearest the point (picked with the piece's seed + j), in the piece's key, mode and tempo."""
        req, tk = plan.request, self.tokenizer
        alt = self.attributes(None, plan.valence, plan.arousal, k=NEAREST_PIECES, seed=req.seed + j,
                              intensity=plan.intensity)
        controls = {**alt.controls, **{k: attrs.controls[k] for k in ("tonic", "mode", "tempo")}}
        alt = replace(alt, controls=controls)
        cond = tuple(tk.condition_ids(plan.genre, controls=controls))
        if not req.guidance:
            return cond, guide
        return cond, replace(self._guidance(alt, guide.tempo), time_signature=guide.time_signature)

    def _primer(self, primer: Notes | None, bars: int) -> tuple[Notes | None, np.ndarray]:
        """Validated primer (moved to start in the first bar, piano range) and its music tokens."""
        if primer is None:
            return None, np.zeros(0, dtype=np.int64)
        if not isinstance(primer, Notes) or len(primer) == 0:
            raise InvalidInputError("the primer melody is empty; hum or give at least one note")
        shift = np.floor(primer.start.min() / primer.beats_per_bar) * primer.beats_per_bar
        primer = replace(primer.transpose(0), start=primer.start - shift)
        ids = self.tokenizer.encode(primer)
        n = int((self.tokenizer.types[ids] == BAR).sum())
        if n >= bars:
            raise InvalidInputError(f"the primer melody is {n} bars long; ask for more than {n} bars (--bars)")
        return primer, ids

    def select(self, cands: list[Candidate], genre: str | None = None,
               weights: dict[str, float] | None = None) -> list[Candidate]:
        """Best first: by the selector's combined score, or, without a selector, by the distance of
        measured to asked attribute bins.

        The selector's heads: quality (the quality head), emotion (the recognizer's log-probability of
        the asked quadrant, reading the same backbone embeddings as the selector), genre and the
        attribute fit. Each candidate's `scores` gets every head and the combined `score`; the
        winner's `selection` says why it won (`selection.selector.explain`: each head's lead over the
        runner-up, and the weights).
        """
        if self.selector is None:
            return sorted(cands, key=lambda c: self.control_distance(c))
        from emomusic.selection.selector import explain

        sel = self.selector
        w = sel.weights_with(weights)  # a bad override fails before any work
        dist = [self.control_distance(c) for c in cands]
        embedding = sel.embeddings(cands)
        emotion = None
        rec = self.recognizer if w.get("emotion", 0.0) > 0 else None
        if rec is not None:
            from emomusic.recognition.api import log_emotion

            out = rec.predict([c.notes for c in cands], [np.asarray(c.tokens) for c in cands], embedding)
            emotion = np.array([log_emotion(out["probabilities"][i:i + 1], out["va_logits"][i:i + 1],
                                            c.attributes.quadrant)[0] if c.attributes is not None else np.nan
                                for i, c in enumerate(cands)])
        heads = sel.heads(cands, genre=genre, control_distance=dist, emotion=emotion, embedding=embedding)
        rows = sel.rows(heads, w, [len(c.notes) == 0 for c in cands])
        for cand, row in zip(cands, rows, strict=True):
            cand.scores.update(row)
        order = sorted(range(len(cands)), key=lambda i: -rows[i]["score"])
        cands[order[0]].selection = explain(heads, w, order) | {"weights": w}
        return [cands[i] for i in order]

    def _guidance(self, attrs: Attributes, tempo: float | None):
        """Decoding guidance from the attribute values (docs/DESIGN.md, notes for the generator)."""
        from emomusic.generation.sampling import Guidance

        v = attrs.values
        return Guidance(tempo=tempo or v["tempo"], tonic=int(attrs.controls["tonic"]),
                        mode=_mode(attrs.controls["mode"]),
                        pitch_mean=v["pitch_mean"], velocity=v["velocity_mean"], density=v["note_density"])

    def control_distance(self, cand: Candidate) -> float:
        """How far a candidate's measured control bins are from the asked ones (0 = all match)."""
        if not cand.measured or cand.attributes is None:
            return float("inf")
        got = self.tokenizer.control_bins.to_bins(cand.measured)
        return float(sum(abs(got[k] - cand.attributes.controls[k]) / max(1, n - 1)
                         for k, n in CONTROLS.items() if k != "tonic"))

    # ------------------------------------------------------------------ export
    def save(self, cand: Candidate, path: str | os.PathLike, force: bool = False) -> Path:
        """Write a candidate to `path` in the format its suffix names (`emomusic.export.FORMATS`).

        Atomic; an existing file is kept unless `force`. Formats that declare a key (MIDI, MusicXML)
        declare the key the notes are in (`export.midi.written_key`), not the one asked for: the
        sampler only leans towards the asked key, and notation software spells by the signature.

        Args:
            cand: a candidate from `generate`.
            path: the output file; its suffix picks the format.
            force: overwrite an existing file.

        Returns:
            The path written.

        Raises:
            InvalidInputError: an unknown suffix, an existing file without `force`, an unwritable folder.
        """
        from emomusic.export import write

        return write(cand.output, path, force=force, provenance=cand.provenance or None)


def _user_generator_backbone(gen_dir: Path, tokenizer: MusicTokenizer, root: Path) -> tuple[Path | None, list[str]]:
    """(the backbone folder for the selector and recognizer, notices) for a generator they were not trained on
    (a user's, or a shipped fine-tune beside `<root>/backbone`).

    Its tokenizer must bin the controls the clusterer sets (else the attributes cannot be asked for);
    the selector and recognizer read `backbone_dir(root)`'s embeddings, which index that tokenizer's
    vocabulary: a user generator with the same vocabulary (a fine-tune keeps it) uses them, another one
    goes without them.

    Raises:
        InvalidInputError: the tokenizer has no bins for some control.
    """
    import json

    have = set(tokenizer.control_bins.edges) if tokenizer.control_bins is not None else set()
    missing = [c for c in CONTROLS if c not in have]
    if missing:
        raise InvalidInputError(f"--generator {gen_dir}: its tokenizer has no bins for {', '.join(missing)}, which "
                                f"the clusterer in {root / 'clusterer'} sets; fine-tune from checkpoints/generator "
                                "(the fine-tune keeps its tokenizer)")
    shipped = backbone_dir(root)
    try:
        if shipped.resolve() == gen_dir.resolve():
            return None, []
        state = json.loads((shipped / "config.json").read_text())["tokenizer"]
        music = {k: v for k, v in tokenizer.vocab.items() if tokenizer.types[v] != HARMONY}  # embeddings drop them
        same = MusicTokenizer.from_dict(state).vocab == music
    except (OSError, ValueError, KeyError, TypeError):
        same = False
    if same:
        return shipped, []
    return None, [f"{gen_dir}: its tokenizer's vocabulary differs from {shipped}'s, whose embeddings the selector "
                  "and recognizer read; candidates are ranked by attribute distance"]


def _appended(mine: Notes, new: Notes, at: float) -> Notes:
    """`mine` (unchanged) followed by `new` moved to start at beat `at`, with its pedal presses."""
    cat = {k: np.concatenate([getattr(mine, k), getattr(new, k) + (at if k == "start" else 0)])
           for k in ("pitch", "start", "duration", "velocity")}
    out = Notes.from_arrays(cat["pitch"], cat["start"], cat["duration"], cat["velocity"], mine.tempo,
                            mine.time_signature, **mine.meta)
    pedals = np.concatenate([mine.pedals.reshape(-1, 2), new.pedals.reshape(-1, 2) + at])
    return replace(out, pedals=pedals, tempos=mine.tempos)



def _merged(tune: Notes, acc: Notes) -> tuple[Notes, np.ndarray]:
    """The tune and its accompaniment as one part (the tune's tempo and metre), and which notes are the tune.

    Returns:
        (notes sorted as `Notes` sorts them, (n,) bool True for the tune's notes).
    """
    cat = {k: np.concatenate([getattr(tune, k), getattr(acc, k)]) for k in ("pitch", "start", "duration", "velocity")}
    flag = np.concatenate([np.ones(len(tune), dtype=bool), np.zeros(len(acc), dtype=bool)])
    order = np.lexsort((cat["pitch"], cat["start"]))
    notes = Notes.from_arrays(cat["pitch"], cat["start"], cat["duration"], cat["velocity"], tune.tempo,
                              tune.time_signature)
    return notes, flag[order]


def _tune_home(tracks: list[Track], mains: list[int], tune: Notes) -> int:
    """The user's pitched track that held most of the tune's notes (same onset and pitch); the main one on a tie."""
    keys = set(zip(np.round(tune.start, 4).tolist(), tune.pitch.tolist(), strict=True))

    def held(i: int) -> int:
        n = tracks[i].notes
        return sum((s, p) in keys for s, p in zip(np.round(n.start, 4).tolist(), n.pitch.tolist(), strict=True))

    main = max(mains, key=lambda i: len(tracks[i].notes))
    return max(mains, key=lambda i: (held(i), i == main))

def _arranges(req: GenerationRequest) -> bool:
    """Whether a request asks for more than the piano piece as generated."""
    return req.instruments is not None or (req.arrangement is not None and req.arrangement.strip().lower() != "piano")


def generate(emotion: str | None = None, out: str | os.PathLike | None = None, *, checkpoints=None,
             force: bool = False, **kwargs) -> Candidate:
    """One-call API: load the checkpoints, generate, and optionally write the best candidate to `out`.

    Args:
        emotion: the mood word (or give valence/arousal, prompts, … as in `EmoMusic.generate`).
        out: a file to write (its suffix picks the format), or None.
        checkpoints: the checkpoint folder (None: the shipped ones; "debug": a tiny random model).
        force: overwrite `out` if it exists.
        **kwargs: any other `EmoMusic.generate` keyword.

    Returns:
        The best candidate; `scores["seconds"]` holds the generation time.
    """
    em = EmoMusic.from_pretrained(checkpoints)
    t0 = time.perf_counter()
    best = em.generate(emotion=emotion, **kwargs)[0]
    best.scores["seconds"] = time.perf_counter() - t0
    if out is not None:
        em.save(best, out, force=force)
    return best


def attributes_for(emotion: str | None = None, valence: float | None = None, arousal: float | None = None,
                   checkpoints=None, intensity: float = 1.0) -> Attributes:
    """EmoGen stage 1 only: the attributes the generator would be given for an emotion.

    Loads only the clusterer (no generator), so it answers quickly.

    Args:
        emotion: a mood word or quadrant; or give `valence` and `arousal` (they win over the word).
        checkpoints: the checkpoint folder (None: the shipped ones).
        intensity: how strongly (0 neutral, 1 the point as it is, 2 extreme).

    Returns:
        The `Attributes` of the real piece nearest the emotion's centre, moved to the emotion's point
        (`controls` left empty).
    """
    from emomusic.conditioning.clusterer import Clusterer

    intensity = check_range("intensity", intensity, *INTENSITY_RANGE)  # before any loading
    root = checkpoints_root(checkpoints)
    clus = Clusterer.load(root / "clusterer")
    emo, values, source, explanation = clus.query(emotion, valence, arousal, intensity=intensity)
    return Attributes(emo.word, emo.quadrant, emo.valence, emo.arousal, values, {}, explanation, source)
