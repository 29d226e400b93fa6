"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

# torch's OpenMP workers spin while waiting; on a loaded 2-core machine that makes small tensor
# operations ~100x slower. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest


@pytest.fixture
def eval_data() -> Path:
    """The evaluation-data folder from $COMPOSITE_EVAL_DATA (tests skip when it is not set)."""
    value = os.environ.get("COMPOSITE_EVAL_DATA")
    if not value:
        pytest.skip("COMPOSITE_EVAL_DATA is not set (CI sets it to ../shared/data)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"COMPOSITE_EVAL_DATA={value} is not a folder")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
