"""The compiled encoder option: same numbers as eager, and a clean fallback when it fails."""

import pytest
import torch

from s4aqa.models import TemporalEncoder
from s4aqa.training.compiled import compile_encoder


def test_failing_compiler_falls_back_to_eager(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    encoder = TemporalEncoder(dim=4, segments=3, hidden=8, heads=2).eval()
    x = torch.randn(2, 3, 4)
    expected = encoder(x)
    assert compile_encoder(encoder)
    with pytest.warns(UserWarning, match="training eagerly"):
        out = encoder(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(encoder(x), expected)  # later calls stay eager, no warning
    assert set(encoder.state_dict()) == set(TemporalEncoder(4, 3, 8, 2).state_dict())


@pytest.mark.slow
def test_compiled_encoder_matches_eager_on_cpu():
    encoder = TemporalEncoder(dim=4, segments=3, hidden=8, heads=2).eval()
    x = torch.randn(2, 3, 4)
    expected = encoder(x)
    compile_encoder(encoder)
    torch.testing.assert_close(encoder(x), expected, rtol=1e-4, atol=1e-5)
