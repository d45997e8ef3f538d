"""Bar-level form primitives shared by the sampler's stall guard and the long-piece benchmark.

A stall is music that has stopped moving: one chord held or hammered, two pitches rocking, bar after
bar. A bar stalls when it and the `STALL_SPAN - 1` bars before it use no more than `STALL_CLASSES`
pitch classes between them (a triad and nothing else, for a whole phrase). Exact repetition is not a
stall: a returning bar with its harmony and melody is form, and real music does it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["STALL_CLASSES", "STALL_SPAN", "stall_flags"]

STALL_CLASSES = 3  # pitch classes a phrase that moves uses more of
STALL_SPAN = 4  # bars in that phrase


def stall_flags(classes: Sequence[frozenset[int]]) -> np.ndarray:
    """Which bars stall, given each bar's pitch classes.

    Args:
        classes: one set of pitch classes (0-11) per bar, in order.

    Returns:
        bool array, one per bar: True where the bar and the STALL_SPAN - 1 before it (as many as there
        are) use at most STALL_CLASSES pitch classes together.
    """
    out = np.zeros(len(classes), dtype=bool)
    for i in range(len(classes)):
        out[i] = len(frozenset().union(*classes[max(0, i - STALL_SPAN + 1): i + 1])) <= STALL_CLASSES
    return out
