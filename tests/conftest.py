"""Shared test fixtures: the real data folder (or a clear skip) and single-threaded torch.

Tiny models are slower with many intra-op threads than with one (thread start-up and contention
dominate a 32-wide layer), and CI machines are often busy; one thread keeps sampling tests fast
and their timings stable. Results do not depend on the thread count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emomusic.errors import InvalidInputError

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_root_or_skip() -> Path:
    """The data folder (`datasets.data_root()`), or skip the test saying how to provide it."""
    from emomusic.training.datasets import DATA_ENV, data_root

    try:
        return data_root()
    except InvalidInputError as exc:
        pytest.skip(f"real datasets not available ({exc}); set ${DATA_ENV} or put them in ../shared/data")
