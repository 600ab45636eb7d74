"""Shared fixtures: the development datasets (skipped when absent) and single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA_ENV = "S4AQA_SHARED_DATA"


def shared_data_root() -> Path:
    """Where the development datasets are: $S4AQA_SHARED_DATA, else ../shared/data beside the
    repository."""
    env = os.environ.get(SHARED_DATA_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data():
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"development data not found at {root} (set {SHARED_DATA_ENV})")
    return root


@pytest.fixture
def cuda_device():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda")
