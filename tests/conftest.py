"""Shared fixtures: the development datasets (skipped when absent) and single-threaded torch."""

from __future__ import annotations

import pytest
import torch

from s4aqa.data.formats import SHARED_DATA_ENV, shared_data_root

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
