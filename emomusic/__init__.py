"""emomusic: write new music in a mood you ask for, and recognise the mood of music.

    >>> import emomusic
    >>> em = emomusic.EmoMusic.from_pretrained()
    >>> best = em.generate(prompt="a rainy lonely night", bars=8, seed=6)[0]   # or emotion="calm", …
    >>> em.save(best, "night.mid")                                          # .musicxml, .wav, … too

The same settings as one object: `emomusic.GenerationRequest` (what the CLI and the demo build).
The public API is imported lazily so `import emomusic` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "EmoMusic",
    "GenerationRequest",
    "InvalidInputError",
    "CheckpointError",
    "generate",
    "attributes_for",
    "recognize",
    "project",
    "__version__",
]

from emomusic.errors import CheckpointError, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.pipeline import EmoMusic, attributes_for, generate
    from emomusic.prompt.projector import project
    from emomusic.recognition.api import recognize
    from emomusic.request import GenerationRequest


def __getattr__(name: str):
    """Import heavy parts (torch, models) only when first used."""
    if name in ("EmoMusic", "generate", "attributes_for"):
        from emomusic import pipeline

        return getattr(pipeline, name)
    if name == "GenerationRequest":
        from emomusic.request import GenerationRequest

        return GenerationRequest
    if name == "recognize":
        from emomusic.recognition.api import recognize

        return recognize
    if name == "project":
        from emomusic.prompt.projector import project

        return project
    raise AttributeError(f"module 'emomusic' has no attribute {name!r}")
