"""The one device check: a device string the user gave, or the project's error."""

from __future__ import annotations

import torch

from s4aqa.errors import S4AQAError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Parse a device string (None: cpu); a CUDA device that is not present is a user error."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise S4AQAError(f"unknown device '{device}' ({exc}); use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise S4AQAError(f"--device {device} asked for, but no CUDA device is available; "
                         "use --device cpu")
    return dev
