"""Shared pytest fixtures: a fresh fixed-seed generator per test and the repository's paths."""
import signal
from pathlib import Path

import numpy as np
import pytest

# A shell that starts the suite in the background (`pytest &`, CI runners, nohup) sets SIGINT
# to "ignored", and exec'd children inherit that: the tests that press Ctrl-C on a `ppl`
# subprocess would then wait for a signal that never acts. A handler (not SIG_IGN) is reset
# to the default in each child, so children start with Python's own Ctrl-C handling.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng() -> np.random.Generator:
    """A new generator with a fixed seed, so every test is reproducible on its own."""
    return np.random.default_rng(12345)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def models_dir() -> Path:
    return REPO_ROOT / "models"
