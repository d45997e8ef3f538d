"""The prompt kinds: one entry each, from which the projector, the CLI flags and the demo widgets are built.

A prompt kind is one module with a function `value -> Elements` (what the prompt says about emotion,
genre, tempo, melody) plus one `PromptKind` entry below: its name (the `project()` keyword), its CLI flag
and help, its demo label, whether it is a file, how much its valence/arousal counts in a mix of kinds,
and which kind wins for tempo, genre and melody. Nothing else names the kinds.

The kind's module is imported only when that kind is used, so a tag prompt never loads an image or
audio library, and listing the kinds (for `--help`) imports nothing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emomusic.errors import InvalidInputError
from emomusic.types import Elements

__all__ = ["PROMPT_KINDS", "PromptKind", "by_priority"]


@dataclass(frozen=True)
class PromptKind:
    """One kind of prompt and everything the front ends and the projector need to know about it.

    Attributes:
        name: the `project()` keyword and the key in `PROMPT_KINDS` (e.g. "image").
        flag: the CLI flag (e.g. "--image").
        help: the CLI help text.
        label: the demo widget's label.
        function: "module:function" that turns a value into `Elements`, imported on first use.
        is_file: the value is a path to a file (checked to exist before the module is imported).
        max_bytes_name: name of the module constant holding the largest accepted file, for upload limits.
        extra: the optional-dependency group the module needs ("vision", "audio"), named in the error
            a user sees when it is missing.
        weight: how much this kind's valence/arousal counts in the weighted mean of several kinds.
        priority: rank per element ("tempo", "genre", "notes"); where several kinds give one, the lowest
            rank wins. A kind that does not rank an element comes after all that do.
    """

    name: str
    flag: str
    help: str
    label: str
    function: str
    is_file: bool = False
    max_bytes_name: str | None = None
    extra: str | None = None
    weight: float = 0.5
    priority: Mapping[str, int] = field(default_factory=dict)

    def _load(self):
        module, _, func = self.function.partition(":")
        try:
            return getattr(importlib.import_module(module), func)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                raise InvalidInputError(f"{self.flag} prompts are not available in this version of emomusic") from None
            raise

    @property
    def max_bytes(self) -> int | None:
        """The largest file this kind accepts (its module's constant), or None for text kinds."""
        if self.max_bytes_name is None:
            return None
        module = self.function.partition(":")[0]
        return int(getattr(importlib.import_module(module), self.max_bytes_name))

    def elements(self, value: object) -> Elements:
        """What this prompt says, as `Elements` (every derivation in `sources`).

        Args:
            value: the prompt: text for text kinds, a path for file kinds.

        Returns:
            The kind module's Elements.

        Raises:
            InvalidInputError: a missing file, bad content, or a missing optional package (one line naming
                the pip extra).
        """
        if self.is_file:
            value = _existing_file(self.flag, value)
        try:
            return self._load()(value)
        except ModuleNotFoundError as exc:
            hint = f"pip install 'emomusic[{self.extra}]'" if self.extra else f"pip install {exc.name}"
            raise InvalidInputError(f"{self.flag} needs the optional package {exc.name!r}: {hint}") from None


def _existing_file(flag: str, path: object) -> Path:
    """`path` as a Path when it names a regular file; the error names the flag the user typed."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"{flag} needs a file path, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{flag} {str(path)!r}: no such file")
    if not p.is_file():
        raise InvalidInputError(f"{flag} {str(path)!r}: not a regular file")
    return p


PROMPT_KINDS: dict[str, PromptKind] = {
    "prompt": PromptKind(
        "prompt", "--prompt", "tags ('sad, slow, jazz', 'Q1 allegro') or a sentence ('a rainy lonely night')",
        "text prompt", "emomusic.prompt.text:prompt_text_elements",
        weight=1.0, priority={"tempo": 0, "genre": 0, "time_signature": 0}),
    "image": PromptKind(
        "image", "--image", "an image whose colours set the mood (PNG, JPEG, WebP, ...)",
        "image", "emomusic.prompt.image:image_elements", is_file=True, max_bytes_name="MAX_IMAGE_BYTES",
        extra="vision", weight=0.5, priority={"tempo": 3, "genre": 2}),
    "video": PromptKind(
        "video", "--video", "a video whose colour, motion and cuts set mood and tempo (MP4, WebM, ...)",
        "video", "emomusic.prompt.video:video_elements", is_file=True, max_bytes_name="MAX_VIDEO_BYTES",
        extra="vision", weight=0.7, priority={"tempo": 2, "genre": 1}),
    "humming": PromptKind(
        "humming", "--humming", "a hummed or sung melody (WAV, FLAC, OGG, MP3, M4A) the piece opens with",
        "humming", "emomusic.prompt.humming:humming_elements", is_file=True, max_bytes_name="MAX_HUM_BYTES",
        extra="audio", weight=0.5, priority={"tempo": 1, "genre": 3, "notes": 0}),
}
"""Every prompt kind, in the order front ends show them.

Weights: words state the intent directly (1.0); the colour and motion cues of video (0.7) and images
(0.5; Valdez & Mehrabian 1994 report moderate effects of colour on mood) and a hum's key and tempo (0.5)
are weaker evidence of what the user wants. Tempo: typed words ("slow", "90 bpm") are intent; a hum's
tempo is an estimate (its melody is kept in beats, so it simply plays at the asked tempo); then video
motion, then image. Genre: words, then video, image, humming. Melody: only humming gives one."""


def by_priority(element: str, kinds: Mapping[str, PromptKind] | None = None) -> list[str]:
    """Kind names in the order they win for `element` ("tempo", "genre", "notes").

    Args:
        element: an `Elements` field several kinds may set.
        kinds: the registry to read (default `PROMPT_KINDS`).

    Returns:
        Names, ranked kinds first by rank, then the rest in registry order.
    """
    kinds = PROMPT_KINDS if kinds is None else kinds
    unranked = len(kinds)
    order = {name: i for i, name in enumerate(kinds)}
    return sorted(kinds, key=lambda n: (kinds[n].priority.get(element, unranked), order[n]))
