"""Shared pytest fixtures: a fresh fixed-seed generator per test and the repository's paths."""
from pathlib import Path

import numpy as np
import pytest

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
