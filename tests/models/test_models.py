import torch

from s4aqa.models import (
    Discriminator,
    RecoveryDecoder,
    Regressor,
    TemporalEncoder,
    reverse_gradient,
)


def test_encoder_shapes_and_masking():
    torch.manual_seed(0)
    encoder = TemporalEncoder(dim=6, segments=5, hidden=8, heads=2, feedforward=16).eval()
    x = torch.randn(3, 5, 6)
    assert encoder(x).shape == (3, 8)
    assert encoder.tokens(x).shape == (3, 5, 8)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[:, 2] = True
    changed = x.clone()
    changed[:, 2] += 100.0
    # a masked segment's content cannot reach the output
    torch.testing.assert_close(encoder(x, mask), encoder(changed, mask))


def test_learned_mask_token_replaces_hidden_tokens():
    encoder = TemporalEncoder(dim=4, segments=3, hidden=8, heads=2, mask_value="token").eval()
    assert encoder.mask_token is not None
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, False, False], [False, False, True]])
    changed = x + mask[..., None] * 50.0
    torch.testing.assert_close(encoder(x, mask), encoder(changed, mask))


def test_heads_shapes():
    f = torch.randn(4, 8)
    assert Regressor(8).eval()(f).shape == (4,)
    assert Discriminator(8)(f).shape == (4,)
    decoder = RecoveryDecoder(8, dim=6, segments=5)
    assert decoder.from_pooled(f, torch.tensor([[0, 1]] * 4)).shape == (4, 2, 6)


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(5, requires_grad=True)
    reverse_gradient(x, 0.5).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((5,), -0.5))
    y = torch.randn(5, requires_grad=True)
    out = reverse_gradient(y, 2.0)
    torch.testing.assert_close(out, y)  # identity forward
    (out * 3).sum().backward()
    torch.testing.assert_close(y.grad, torch.full((5,), -6.0))
