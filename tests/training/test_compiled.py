"""The compiled encoder option: same numbers as eager; a failing compiler falls back to eager
and says so in the run's record; any other error surfaces."""

import importlib

import pytest
import torch

from s4aqa.config import RunConfig
from s4aqa.models import TemporalEncoder
from s4aqa.runs.run import run_training
from s4aqa.training.compiled import compile_encoder, compiler_errors


def _compiling_to(error: BaseException):
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise error
        return run
    return broken_compile


def _compiler_failure() -> BaseException:
    """An error of the compiler itself (its modules loaded, as torch.compile loads them)."""
    dynamo_errors = importlib.import_module("torch._dynamo.exc")
    return dynamo_errors.BackendCompilerFailed(lambda *a: None, RuntimeError("no cc"), None)


def test_failing_compiler_falls_back_to_eager(monkeypatch):
    failure = _compiler_failure()
    assert isinstance(failure, compiler_errors())
    monkeypatch.setattr(torch, "compile", _compiling_to(failure))
    encoder = TemporalEncoder(dim=4, segments=3, hidden=8, heads=2).eval()
    x = torch.randn(2, 3, 4)
    expected = encoder(x)
    said = []
    assert compile_encoder(encoder, fallback=said.append)
    out = encoder(x)
    assert len(said) == 1 and "BackendCompilerFailed" in said[0] and "eagerly" in said[0]
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(encoder(x), expected)  # later calls stay eager, said once
    assert len(said) == 1
    assert set(encoder.state_dict()) == set(TemporalEncoder(4, 3, 8, 2).state_dict())


def test_other_errors_of_the_compiled_encoder_surface(monkeypatch):
    """An out-of-memory (or any error that is not the compiler's) must not turn into a quiet
    eager run."""
    _compiler_failure()
    monkeypatch.setattr(torch, "compile", _compiling_to(torch.OutOfMemoryError("CUDA oom")))
    encoder = TemporalEncoder(dim=4, segments=3, hidden=8, heads=2).eval()
    compile_encoder(encoder, fallback=lambda text: pytest.fail(f"fell back: {text}"))
    with pytest.raises(torch.OutOfMemoryError):
        encoder(torch.randn(2, 3, 4))


def test_a_fallback_is_in_the_runs_record(monkeypatch):
    monkeypatch.setattr(torch, "compile", _compiling_to(_compiler_failure()))
    config = RunConfig(method="aa", label_ratio=0.2, options={
        "steps": 2, "hidden": 8, "heads": 2, "feedforward": 8, "members": 1, "compile": "on"})
    notes = run_training(config).metrics["notes"]
    assert len(notes) == 1 and "training eagerly" in notes[0]


@pytest.mark.slow
def test_compiled_encoder_matches_eager_on_cpu():
    encoder = TemporalEncoder(dim=4, segments=3, hidden=8, heads=2).eval()
    x = torch.randn(2, 3, 4)
    expected = encoder(x)
    compile_encoder(encoder)
    torch.testing.assert_close(encoder(x), expected, rtol=1e-4, atol=1e-5)
