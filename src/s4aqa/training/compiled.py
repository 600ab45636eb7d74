"""An optional compiled encoder (torch.compile), with a fallback to eager execution.

On a GPU each training step of these small models is bound by kernel launches; compiling the
encoder fuses its kernels (and ``reduce-overhead`` replays them as CUDA graphs). Where
compilation is unavailable or fails, training goes on eagerly with one warning.
"""

from __future__ import annotations

import warnings

import torch


def compile_encoder(encoder: torch.nn.Module, mode: str = "default") -> bool:
    """Compile ``encoder.tokens`` in place (weights and state-dict keys are unchanged).

    Returns False when torch.compile is not available here.
    """
    if not hasattr(torch, "compile"):
        warnings.warn("torch.compile is not available; training eagerly", stacklevel=2)
        return False
    eager = encoder.tokens
    compiled = torch.compile(eager, mode=None if mode == "default" else mode, dynamic=False)
    state = {"compiled": compiled}

    def tokens(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if state["compiled"] is not None:
            try:
                return state["compiled"](x, mask)
            except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
                warnings.warn(f"compiled encoder failed ({type(exc).__name__}: {exc}); "
                              "training eagerly", stacklevel=2)
                state["compiled"] = None
        return eager(x, mask)

    encoder.tokens = tokens
    return True
