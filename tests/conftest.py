"""Shared test fixtures: the real data folder (or a clear skip) and single-threaded torch.

Tiny models are slower with many intra-op threads than with one (thread start-up and contention
dominate a 32-wide layer), and CI machines are often busy; one thread keeps sampling tests fast
and their timings stable. Results do not depend on the thread count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from emomusic.errors import InvalidInputError

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory) -> None:
    """Run-time caches (kernel marker, text prototypes) go to a temporary folder, not the user's home;
    subprocesses inherit it. The kernels are built first, so commands do not announce the build."""
    from emomusic.generation.compiled import build

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    build()


@pytest.fixture(scope="session")
def data_root_or_skip() -> Path:
    """The data folder (`datasets.data_root()`), or skip the test saying how to provide it."""
    from emomusic.training.datasets import DATA_ENV, data_root

    try:
        return data_root()
    except InvalidInputError as exc:
        pytest.skip(f"real datasets not available ({exc}); set ${DATA_ENV} or put them in ../shared/data")


def _musescore_import(midi: Path, tmp_path: Path) -> Path:
    """Import `midi` headless into MuseScore 3 (skip when `mscore3` is missing); returns the MusicXML."""
    mscore = shutil.which("mscore3")
    if mscore is None:
        pytest.skip("mscore3 not on PATH: install the Debian package musescore3 (.ci/run does)")
    out = tmp_path / "out.musicxml"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        (tmp_path / var).mkdir(mode=0o700)
        env[var] = str(tmp_path / var)  # keep MuseScore's settings out of the user's home
    proc = subprocess.run([mscore, "-o", str(out), str(midi)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture
def musescore_import():
    """The MuseScore 3 headless import check shared by the MIDI export and DAW hand-off tests."""
    return _musescore_import
