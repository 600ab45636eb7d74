"""Restricted unpickling: plain containers, numbers, strings and numpy arrays, nothing else.

Annotation pickles and weight checkpoints come from third parties. A pickle can name any
importable callable; this unpickler resolves only the few globals that rebuild numpy arrays,
dtypes and scalars, so a crafted file is refused before it runs anything.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from s4aqa.errors import S4AQAError

# (module, name) pairs that numpy uses to rebuild arrays, dtypes and scalars.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_PLAIN_GLOBALS = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` admitting only plain containers, numbers, strings and numpy arrays."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise S4AQAError(
            f"{source}: refused to unpickle ({exc}); only plain data and numpy arrays are read"
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, OverflowError, ImportError) as exc:
        raise S4AQAError(
            f"{source}: not a readable pickle ({type(exc).__name__}: {exc}); check the file is complete"
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
