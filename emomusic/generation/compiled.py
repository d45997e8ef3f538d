"""Whether the compiled sampling kernels are built on this machine, and building them on purpose.

The sampler's numba kernels (`kernels`, `processors`) compile the first time they are imported after
an install and are cached by numba (beside the package, or in the user-wide cache when the package
folder is read-only). That first import takes seconds and says nothing, so a new user's first
`emomusic generate` looked hung. Numba's cache has no public "is it built?" question, so a marker
file in the user cache folder records the kernels' sources that were built here: when it is missing,
the CLI says what the wait is, and `emomusic warmup` builds them ahead of time.

Importing this module is cheap: it reads the kernel sources' bytes, not the kernels.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from emomusic import settings

__all__ = ["KERNEL_SOURCES", "build", "is_built"]

_HERE = Path(__file__).resolve().parent
# the modules whose functions numba compiles and caches (`@nb.njit(..., cache=True)`)
KERNEL_SOURCES = ("kernels.py", "processors/state.py", "processors/draw.py", "processors/feedback.py",
                  "processors/grammar.py")


def _marker() -> Path:
    """The marker of this build: the kernel sources, numba's and Python's versions in its name."""
    import importlib.metadata

    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        digest.update((_HERE / name).read_bytes())
    digest.update(importlib.metadata.version("numba").encode())
    digest.update(sys.version.encode())
    return settings.user_cache_root() / "kernels" / f"built-{digest.hexdigest()[:24]}"


def is_built() -> bool:
    """Whether this machine has built these kernels before (a marker written by `build`)."""
    try:
        return _marker().is_file()
    except OSError:
        return False


def build() -> float:
    """Import (and so compile, or load from numba's cache) every kernel, then write the marker.

    Returns:
        The seconds it took (short when numba's cache already held them).
    """
    t0 = time.perf_counter()
    import emomusic.generation.kernels  # noqa: F401 - compiles the decoding step at import
    import emomusic.generation.sampling  # noqa: F401 - the processors' kernels

    seconds = time.perf_counter() - t0
    try:
        marker = _marker()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"built in {seconds:.1f} s\n")
    except OSError:  # an unwritable cache folder: the notice shows again next time, nothing else changes
        pass
    return seconds
