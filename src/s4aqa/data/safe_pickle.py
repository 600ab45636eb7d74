"""Restricted unpickling: plain containers, numbers, strings and numpy arrays, nothing else.

Annotation pickles and weight checkpoints come from third parties. A pickle can name any
importable callable; this unpickler resolves only the few globals that rebuild numpy arrays,
dtypes and scalars, so a crafted file is refused before it runs anything.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from s4aqa.errors import S4AQAError

_PLAIN_GLOBALS = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles store bytes
}


class _Refused(Exception):
    """A pickle that does not describe plain data."""


def _plain_dtype(value: Any) -> np.dtype:
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError) as exc:
        raise _Refused(f"unknown dtype {value!r}") from exc
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise _Refused(f"dtype {dtype} is not a plain numeric dtype")
    return dtype


class _DtypeBuilder:
    """Stands in for numpy.dtype(...) + its state; never calls numpy's own __setstate__."""

    def __init__(self, name: Any = "f8", align: Any = False, copy: Any = True) -> None:
        if not isinstance(name, str):
            raise _Refused("dtype name must be a string")
        self.dtype = _plain_dtype(name)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(state[1]) if state[1] != "|" else self.dtype


def _as_dtype(value: Any) -> np.dtype:
    if isinstance(value, _DtypeBuilder):
        return value.dtype
    return _plain_dtype(value)


class _ArrayBuilder:
    """Stands in for numpy's array reconstruction; checks the state before building the array.

    numpy's own ndarray.__setstate__ trusts its input: a damaged pickle can crash the process.
    """

    def __init__(self, *args: Any) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise _Refused("malformed array state")
        _, shape, dtype, fortran, data = state
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise _Refused("malformed array shape")
        dtype = _as_dtype(dtype)
        if isinstance(data, str):
            data = data.encode("latin1")
        if not isinstance(data, (bytes, bytearray)):
            raise _Refused("array data must be raw bytes")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.itemsize != len(data):
            raise _Refused(f"array data holds {len(data)} bytes, shape {shape} needs "
                           f"{count * dtype.itemsize}")
        flat = np.frombuffer(bytes(data), dtype=dtype, count=count).copy()
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _as_dtype(dtype)
    if isinstance(data, str):
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise _Refused("malformed numpy scalar")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    builder = _ArrayBuilder()
    builder.__setstate__((1, tuple(shape), dtype, order == "F", data))
    return builder.array


_NUMPY_GLOBALS = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY_GLOBALS[(_module, "_reconstruct")] = _ArrayBuilder
    _NUMPY_GLOBALS[(_module, "scalar")] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY_GLOBALS[(_module, "_frombuffer")] = _frombuffer
_NUMPY_GLOBALS[("numpy", "ndarray")] = _ArrayBuilder
_NUMPY_GLOBALS[("numpy", "dtype")] = _DtypeBuilder


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # Python 2 name of builtins, used by protocols 0-2
            module = "builtins"
        found = _NUMPY_GLOBALS.get((module, name)) or _PLAIN_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _finish(obj: Any, depth: int = 0) -> Any:
    """Replace the stand-ins by the arrays and dtypes they built; refuse anything else."""
    if depth > 200:
        raise _Refused("nesting too deep")
    if isinstance(obj, _ArrayBuilder):
        if obj.array is None:
            raise _Refused("array without data")
        return obj.array
    if isinstance(obj, _DtypeBuilder):
        return obj.dtype
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:  # made by _frombuffer
        return obj
    if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic)):
        return obj
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        for key, value in obj.items():
            out[_finish(key, depth + 1)] = _finish(value, depth + 1)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj)(_finish(v, depth + 1) for v in obj)
    raise _Refused(f"unexpected object of type {type(obj).__name__}")


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` admitting only plain containers, numbers, strings and numpy arrays."""
    try:
        return _finish(_RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load())
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc):
            raise S4AQAError(f"{source}: the pickle is truncated; download or copy it again") from None
        raise S4AQAError(
            f"{source}: refused to unpickle ({exc}); only plain data and numpy arrays are read"
        ) from None
    except _Refused as exc:
        raise S4AQAError(f"{source}: refused to unpickle ({exc}); only plain data and numpy "
                         "arrays are read") from None
    except RecursionError:
        raise S4AQAError(f"{source}: the pickle nests too deeply to be plain data") from None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can raise nearly anything
        raise S4AQAError(
            f"{source}: not a readable pickle ({type(exc).__name__}); check the file is complete"
        ) from None


def load(path: str | os.PathLike) -> Any:
    """Read a pickle file through the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise S4AQAError(f"{path}: file not found")
    data = path.read_bytes()
    if not data:
        raise S4AQAError(f"{path}: file is empty")
    return loads(data, source=str(path))
