"""Helpers shared by the dataset readers: checked paths, text tables, scores, .npy and pickle files.

Every helper turns a problem in the user's files into an ``S4AQAError`` whose message names
the file (and line) and says what to do, so a reader never lets a raw numpy, csv or OS error
reach the user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from s4aqa.data import safe_pickle
from s4aqa.data.featureset import storage_array
from s4aqa.errors import S4AQAError

# numpy dtype kinds that hold numbers we can turn into float32 features:
# bool, signed and unsigned integers, floats. Complex, object, strings, dates are refused.
NUMERIC_KINDS = frozenset("biuf")


# ---- paths -----------------------------------------------------------------------------------
def _exists(path: Path, kind: str) -> bool:
    """Path.is_file / is_dir that answers False instead of raising for unusable names."""
    try:
        return path.is_file() if kind == "file" else path.is_dir()
    except (OSError, ValueError):  # name too long, embedded NUL, permission trouble
        return False


def is_file(path: Path) -> bool:
    return _exists(path, "file")


def is_dir(path: Path) -> bool:
    return _exists(path, "dir")


def as_path(value: str | os.PathLike | None) -> Path | None:
    return None if value is None else Path(value)


def require_dir(path: Path, what: str, hint: str) -> Path:
    """``path`` if it is a folder, else an error naming ``what`` it should hold and ``hint``."""
    if not is_dir(path):
        raise S4AQAError(f"{path}: {what} folder not found; {hint}")
    return path


def require_file(path: Path, what: str, hint: str) -> Path:
    if is_dir(path):
        raise S4AQAError(f"{path}: is a folder, expected the {what} file; {hint}")
    if not is_file(path):
        raise S4AQAError(f"{path}: {what} file not found; {hint}")
    return path


def first_existing(paths: Iterable[Path]) -> Path | None:
    for path in paths:
        if is_file(path):
            return path
    return None


def check_file_name(video_id: str, where: str) -> str:
    """Refuse ids that cannot be the stem of a file in the features folder."""
    bad = (not video_id or video_id in (".", "..") or "/" in video_id or "\\" in video_id
           or "\x00" in video_id or len(video_id.encode("utf-8", "surrogatepass")) > 240)
    if bad:
        raise S4AQAError(
            f"{where}: video id {video_id[:60]!r} cannot be a file name; "
            "use ids without '/', '\\' or NUL (the features are read from <id>.npy)"
        )
    return video_id


# ---- text tables -----------------------------------------------------------------------------
def read_text(path: Path, what: str, hint: str) -> str:
    """The file's text (UTF-8, BOM dropped); an error when missing, empty or not text."""
    require_file(path, what, hint)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise S4AQAError(f"{path}: cannot read the {what} file ({exc.strerror}); check permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise S4AQAError(
            f"{path}: the {what} file is not UTF-8 text (bad byte at offset {exc.start}); "
            "save it as plain UTF-8 text"
        ) from None
    if not text.strip():
        raise S4AQAError(f"{path}: the {what} file is empty; {hint}")
    if "\x00" in text:
        raise S4AQAError(f"{path}: the {what} file contains NUL bytes; save it as plain text")
    return text


def text_rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of every non-blank line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            rows.append((number, fields))
    return rows


def parse_number(text: str, where: str, column: str) -> float:
    """A finite float from ``text``; ``where`` is e.g. 'train.txt line 4'."""
    try:
        value = float(text)
    except ValueError:
        raise S4AQAError(
            f"{where}: {column} is {text[:40]!r}, not a number; fix the value"
        ) from None
    if not np.isfinite(value):
        raise S4AQAError(f"{where}: {column} is {text[:40]!r}; use a finite number")
    return value


def parse_int(text: str, where: str, column: str) -> int:
    value = parse_number(text, where, column)
    if value != int(value):
        raise S4AQAError(f"{where}: {column} is {text[:40]!r}, not a whole number; fix the value")
    return int(value)


def check_unique(ids: Sequence[str], sources: Sequence[str], what: str) -> None:
    """Refuse repeated ids, naming where each copy was found (file and line)."""
    seen: dict[str, str] = {}
    for video_id, source in zip(ids, sources):
        if video_id in seen:
            raise S4AQAError(
                f"{what}: video id {video_id!r} appears twice ({seen[video_id]} and {source}); "
                "remove one of the lines"
            )
        seen[video_id] = source


def describe(items: Sequence[Any], shown: int = 5) -> str:
    """'a', 'b', 'c' and 12 more."""
    head = ", ".join(repr(str(i)) for i in items[:shown])
    rest = len(items) - shown
    return f"{head} and {rest} more" if rest > 0 else head


# ---- arguments -------------------------------------------------------------------------------
def check_segments(segments: Any, default: int | None) -> int | None:
    """The number of segments to resample to: ``segments`` if given, else ``default``."""
    if segments is None:
        return default
    if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)) or segments < 1:
        raise S4AQAError(f"segments must be a whole number >= 1, got {segments!r}")
    return int(segments)


def choose_target(target: str | None, choices: Sequence[str], default: str, dataset: str,
                  aliases: dict[str, str] | None = None) -> str:
    """The canonical target name for ``target`` (case-insensitive), or ``default`` when None."""
    if target is None:
        return default
    key = str(target).strip().lower().replace("-", "_").replace(" ", "_")
    key = (aliases or {}).get(key, key)
    if key not in choices:
        raise S4AQAError(
            f"{dataset}: unknown target {target!r}; choose one of {', '.join(choices)}"
        )
    return key


def refuse_task(task: str | None, dataset: str) -> None:
    if task is not None:
        raise S4AQAError(f"{dataset}: this dataset has no tasks or groups to select; drop --task {task}")


def select_group(groups: Sequence[str], task: str, dataset: str) -> str:
    """The group matching ``task`` ignoring case, '-', '_' and spaces, or an error listing them."""
    def key(name: str) -> str:
        return "".join(ch for ch in str(name).lower() if ch.isalnum())

    known = sorted(set(groups))
    matches = [g for g in known if key(g) == key(task)]
    if not matches:
        raise S4AQAError(f"{dataset}: no task {task!r}; choose one of {', '.join(known)}")
    return matches[0]


# ---- feature files ---------------------------------------------------------------------------
def locate_features(ids: Sequence[str], folder: Path, names: Callable[[str], Sequence[str]],
                    dataset: str, labels: str) -> list[Path]:
    """The feature file of every id (first of ``names(id)`` that exists in ``folder``).

    Files in ``folder`` that no label names are ignored. When some ids have no file the error
    lists a few of them and how many there are.
    """
    found: list[Path] = []
    missing: list[str] = []
    for video_id in ids:
        path = first_existing(folder / name for name in names(video_id))
        if path is None:
            missing.append(video_id)
        else:
            found.append(path)
    if missing:
        expected = names(missing[0])[0]
        raise S4AQAError(
            f"{dataset}: {len(missing)} of {len(ids)} videos in {labels} have no feature file "
            f"in {folder} ({describe(missing)}; expected e.g. {expected}); "
            "extract their features, point --features at the right folder, or remove their lines"
        )
    return found


def as_feature_array(array: Any, source: str, allow_vector: bool = False) -> np.ndarray:
    """Check a per-video array is numeric, (T, D) (or (D,) when allowed), finite; make it float32
    (float16 stays float16: ``featureset.STORAGE_DTYPES``)."""
    array = np.asarray(array) if not isinstance(array, np.ndarray) else array
    if array.dtype.kind not in NUMERIC_KINDS:
        raise S4AQAError(
            f"{source}: features have dtype {array.dtype}, expected numbers; "
            "save a float array (e.g. numpy.save(path, x.astype('float32')))"
        )
    if allow_vector and array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        shape = "(T, D) or (D,)" if allow_vector else "(T, D)"
        raise S4AQAError(
            f"{source}: features have shape {array.shape}, expected {shape} "
            "(one row per segment); re-extract or reshape them"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise S4AQAError(f"{source}: features are empty (shape {array.shape}); re-extract them")
    array = storage_array(array)
    if not np.all(np.isfinite(array)):
        raise S4AQAError(f"{source}: features contain NaN or inf (or overflow float32); re-extract them")
    return array


def load_npy(path: Path, allow_vector: bool = False) -> np.ndarray:
    """A (T, D) features array from a .npy file, with clean errors for any broken file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise S4AQAError(f"{path}: feature file not found; extract it or fix --features") from None
    except Exception as exc:  # noqa: BLE001
        # np.load parses the header with Python's tokenizer and ast, so a corrupt file can raise
        # ValueError, EOFError, OSError, MemoryError, tokenize.TokenError, SyntaxError, ...
        reason = str(exc).split(". ")[0][:120] or type(exc).__name__
        raise S4AQAError(
            f"{path}: not a readable .npy array ({reason}); re-save it with numpy.save"
        ) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        loaded.close()
        raise S4AQAError(f"{path}: is an .npz archive; save one array per video with numpy.save")
    return as_feature_array(loaded, str(path), allow_vector=allow_vector)


def load_sequences(paths: Sequence[Path], allow_vector: bool = False) -> list[np.ndarray]:
    return [load_npy(path, allow_vector=allow_vector) for path in paths]


def load_stacked(paths: Sequence[Path]) -> np.ndarray | list[np.ndarray]:
    """The (T, D) arrays of ``paths`` as one (N, T, D) array when they all share the first
    one's shape and precision (filled in place: a large pool is never held twice), else as a
    list (``FeatureSet.from_sequences`` reads both)."""
    if not paths:
        return []
    first = load_npy(paths[0])
    stacked = np.empty((len(paths), *first.shape), dtype=first.dtype)
    stacked[0] = first
    for i, path in enumerate(paths[1:], start=1):
        array = load_npy(path)
        if array.shape != first.shape or array.dtype != first.dtype:
            return [*stacked[:i], array, *load_sequences(paths[i + 1:])]
        stacked[i] = array
    return stacked


# ---- pickles ---------------------------------------------------------------------------------
def load_pickle(path: Path, expected: type | tuple[type, ...], what: str, hint: str) -> Any:
    """Unpickle ``path`` through the restricted unpickler and check the top-level type."""
    require_file(path, what, hint)
    try:
        value = safe_pickle.load(path)
    except S4AQAError:
        raise
    except Exception as exc:  # noqa: BLE001
        # A corrupt pickle can make numpy's array rebuilding or codecs raise LookupError,
        # RuntimeError, SystemError ... that safe_pickle does not translate.
        raise S4AQAError(
            f"{path}: not a readable {what} ({type(exc).__name__}); check the file is complete"
        ) from None
    if not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise S4AQAError(
            f"{path}: the {what} should hold a {names}, found {type(value).__name__}; "
            "check it is the right file"
        )
    return value


def as_clip_key(key: Any, source: str) -> tuple[Any, ...]:
    """A (name-or-number, number) split key as a tuple, e.g. (3, 17) or ('event', 4)."""
    if isinstance(key, list):
        key = tuple(key)
    if not isinstance(key, tuple) or len(key) != 2:
        raise S4AQAError(f"{source}: entry {key!r:.60} is not a (video, clip) pair; check the file")
    return key


def annotation_number(entry: Any, field: str, key: Any, source: str) -> float:
    """A finite number from one annotation entry, with an error naming the key and field."""
    if not isinstance(entry, dict):
        raise S4AQAError(f"{source}: annotation of {key!r} is a {type(entry).__name__}, not a dict; check the file")
    if field not in entry:
        raise S4AQAError(f"{source}: annotation of {key!r} has no '{field}'; check the file is complete")
    value = entry[field]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise S4AQAError(f"{source}: '{field}' of {key!r} is {value!r:.40}, not a number; fix the file")
    if not np.isfinite(value):
        raise S4AQAError(f"{source}: '{field}' of {key!r} is {value}; fix the file")
    return float(value)
