"""Fixtures for the dataset-reader tests: writing tiny feature files and bad .npy files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # np.save(path) would append .npy to odd names
        np.save(handle, array)
    return path


@pytest.fixture
def save_npy():
    """save_npy(path, array) -> path, creating parent folders."""
    return _save


@pytest.fixture
def random_features():
    """random_features(count, dim, lengths=(lo, hi), seed) -> list of (T_i, dim) float32 arrays."""

    def make(count: int, dim: int = 8, lengths: tuple[int, int] = (10, 10), seed: int = 0):
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((int(rng.integers(lengths[0], lengths[1] + 1)), dim)).astype(np.float32)
                for _ in range(count)]

    return make


# Ways a per-video feature file can be broken; every reader must turn each into an S4AQAError.
BAD_NPY_KINDS = ("truncated", "empty_file", "not_npy", "object_dtype", "string_dtype", "rank3",
                 "nan", "inf")


def write_bad_npy(path: Path, kind: str, dim: int = 8) -> Path:
    """Write a broken feature file of ``kind`` (one of BAD_NPY_KINDS) at ``path``."""
    good = np.ones((10, dim), dtype=np.float32)
    if kind == "truncated":
        _save(path, good)
        path.write_bytes(path.read_bytes()[:-17])
    elif kind == "empty_file":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    elif kind == "not_npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not an array\n")
    elif kind == "object_dtype":
        array = np.empty((2,), dtype=object)
        array[:] = [{"a": 1}, None]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            np.save(handle, array, allow_pickle=True)
    elif kind == "string_dtype":
        _save(path, np.array([["a"] * dim] * 10))
    elif kind == "rank3":
        _save(path, np.ones((2, 10, dim), dtype=np.float32))
    elif kind == "nan":
        good[3, 1] = np.nan
        _save(path, good)
    elif kind == "inf":
        good[0, 0] = -np.inf
        _save(path, good)
    else:
        raise ValueError(kind)
    return path


@pytest.fixture
def bad_npy():
    """bad_npy(path, kind, dim=8) writes a broken feature file; kinds are BAD_NPY_KINDS."""
    return write_bad_npy


@pytest.fixture(params=BAD_NPY_KINDS)
def bad_npy_kind(request):
    return request.param


# ---- text files for property tests -----------------------------------------------------------------
_EDITS = ["", ",", ";", "x", "\n", "\r\n", "\t", '"', " ", "\x00", "9", ".", "-", "é", "\xff"]


def _text_variants(valid):
    """Bytes drawn from ``valid`` text: as is, with one character edited, or arbitrary bytes."""
    from hypothesis import strategies as st

    def edit(args):
        text, position, insert, replace = args
        position %= len(text) + 1
        return (text[:position] + insert + text[position + replace:]).encode()

    edited = st.tuples(valid, st.integers(0, 10_000), st.sampled_from(_EDITS), st.integers(0, 2)).map(edit)
    return st.one_of(valid.map(str.encode), edited, edited, st.binary(max_size=120))


@pytest.fixture
def text_variants():
    """text_variants(valid_text_strategy) -> strategy of bytes: valid, edited, or random."""
    return _text_variants
