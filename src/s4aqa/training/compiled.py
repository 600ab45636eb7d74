"""An optional compiled encoder (torch.compile), with a fallback to eager execution.

On a GPU each training step of these small models is bound by kernel launches; compiling the
encoder fuses its kernels (and ``reduce-overhead`` replays them as CUDA graphs). Where
compilation is unavailable or the compiler fails, training goes on eagerly and ``fallback`` is
told why in one line (the run records it); any other error (a CUDA out-of-memory, a bug in
the model) is raised as it would be without compiling.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

LOG = logging.getLogger(__name__)


def compiler_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of torch's compiler stack (TorchDynamo's, Inductor's), present once
    ``torch.compile`` has loaded them."""
    found = []
    for path in (("_dynamo", "exc", "TorchDynamoException"), ("_inductor", "exc", "InductorError")):
        value = torch
        try:
            for name in path:
                value = getattr(value, name)
        except AttributeError:
            continue
        found.append(value)
    return tuple(found)


def compile_encoder(encoder: torch.nn.Module, mode: str = "default",
                    fallback: Callable[[str], None] | None = None) -> bool:
    """Compile ``encoder.tokens`` in place (weights and state-dict keys are unchanged).
    ``fallback`` is told in one line when the compiler fails and training goes on eagerly.

    Returns False when torch.compile is not available here.
    """
    def say(text: str) -> None:
        LOG.warning(text)
        if fallback is not None:
            fallback(text)

    if not hasattr(torch, "compile"):
        say("torch.compile is not available; training eagerly")
        return False
    eager = encoder.tokens
    compiled = torch.compile(eager, mode=None if mode == "default" else mode, dynamic=False)
    state = {"compiled": compiled}

    def tokens(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if state["compiled"] is not None:
            try:
                return state["compiled"](x, mask)
            except compiler_errors() as exc:
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                say(f"the compiled encoder failed ({type(exc).__name__}: {first}); "
                    "training eagerly")
                state["compiled"] = None
        return eager(x, mask)

    encoder.tokens = tokens
    return True
