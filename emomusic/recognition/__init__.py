"""Music emotion recognition: quadrant and valence/arousal of MIDI or audio, with explanations.

    >>> from emomusic.recognition import recognize
    >>> [r] = recognize("calm.mid")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["EmotionRecognizer", "recognize"]

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.recognition.api import EmotionRecognizer, recognize


def __getattr__(name: str):
    """The API module (and the models behind it) only when first used."""
    if name in __all__:
        from emomusic.recognition import api

        return getattr(api, name)
    raise AttributeError(f"module 'emomusic.recognition' has no attribute {name!r}")
