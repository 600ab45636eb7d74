"""GDLT: grade queries through a Transformer decoder, Likert grade values, the triplet term."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.methods.gdlt import GradeDecoder, hardest_triplet
from s4aqa.methods.registry import create
from s4aqa.runs.run import run_group
from s4aqa.training.metrics import spearman


def test_grade_decoder_shapes_and_likert_sum():
    torch.manual_seed(0)
    decoder = GradeDecoder(hidden=16, grades=5, heads=2, feedforward=32, dropout=0.0, layers=2)
    decoder.values.copy_(torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0]))
    weights, decoded = decoder(torch.randn(3, 7, 16))
    assert weights.shape == (3, 5) and decoded.shape == (3, 5, 16)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert torch.all(weights > 0)
    score = decoder.score(weights)
    torch.testing.assert_close(score, (weights * decoder.values).sum(dim=1))
    assert torch.all((score > -1.0) & (score < 3.0))  # a convex combination of the grades


def test_hardest_triplet_is_zero_for_separated_grades_and_margin_for_collapsed_ones():
    labels = torch.arange(4).repeat(6)
    centres = 10.0 * torch.eye(4, 8)
    separated = centres[labels] + 0.01 * torch.randn(24, 8)
    assert hardest_triplet(separated, labels, margin=1.0).item() == pytest.approx(0.0)
    collapsed = torch.ones(24, 8)
    assert hardest_triplet(collapsed, labels, margin=1.0).item() == pytest.approx(1.0, abs=1e-4)
    # its gradient pushes the grades apart
    points = (0.1 * torch.randn(24, 8)).requires_grad_()
    loss = hardest_triplet(points, labels, margin=1.0)
    loss.backward()
    moved = points - 0.5 * points.grad
    assert hardest_triplet(moved, labels, margin=1.0) < loss


def _grade_spread(method, test) -> float:
    """Mean distance between the decoded queries of different grades."""
    with torch.no_grad():
        x = method.to_input(test.features)
        method.modules.eval()
        _, decoded = method.grade(x)
    k = decoded.shape[1]
    distance = torch.cdist(decoded, decoded)  # (B, K, K)
    return float(distance.sum() / (decoded.shape[0] * k * (k - 1)))


def test_the_triplet_term_keeps_the_grades_apart(fit, staged, tiny):
    options = {**tiny("gdlt"), "core": "plain"}
    apart = fit("gdlt", {**options, "lambda_triplet": 1.0, "margin": 4.0})
    free = fit("gdlt", {**options, "lambda_triplet": 0.0})
    assert "triplet" in apart.history[-1] and "triplet" not in free.history[-1]
    assert _grade_spread(apart, staged["test"]) > 1.4 * _grade_spread(free, staged["test"])


def test_grades_span_the_labeled_scores_and_predictions_are_their_weighted_sum(fit, staged, tiny):
    method = fit("gdlt", {**tiny("gdlt"), "core": "plain"})
    values = method.grade_values()
    labeled = staged["labeled"].scores
    assert len(values) == 4 and np.all(np.diff(values) > 0)
    assert values[0] == pytest.approx(labeled.min(), abs=1e-4)
    assert values[-1] == pytest.approx(labeled.max(), abs=1e-4)
    weights = method.grade_weights(staged["test"])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    predicted = method.predict(staged["test"])
    np.testing.assert_allclose(weights @ values, predicted, rtol=1e-5)
    assert predicted.min() >= labeled.min() - 1e-4 and predicted.max() <= labeled.max() + 1e-4
    assert method.embed(staged["test"]).shape == (len(staged["test"]), 32)


def test_a_grade_margin_widens_the_likert_range(fit, staged, tiny):
    method = fit("gdlt", {**tiny("gdlt"), "core": "plain", "steps": 5, "grade_margin": 0.5})
    values = method.grade_values()
    span = np.ptp(staged["labeled"].scores)
    assert values[0] == pytest.approx(staged["labeled"].scores.min() - 0.5 * span, abs=1e-3)


def test_seeds_train_as_one_grouped_model_with_both_losses(videos, deep_tiny):
    configs = [RunConfig(method="gdlt", label_ratio=0.4, seed=s,
                         options={**deep_tiny, "steps": 10, "eval_every": 5}) for s in (0, 1)]
    results = run_group(configs, videos)
    assert [r.metrics.get("grouped") for r in results] == [2, 2]
    for result in results:
        assert {"reg", "triplet"} <= set(result.method.history[-1])
        assert np.all(np.isfinite(result.predictions))


def test_trains_on_the_built_in_synthetic_data(deep_tiny):
    data = make_staged_actions(n_train=80, n_test=40, dim=16, seed=3)
    method = create("gdlt", {**deep_tiny, "steps": 120}).fit(data.train())
    assert spearman(method.predict(data.test()), data.test().scores) > 0.1


@pytest.mark.shared_data
def test_trains_and_predicts_on_the_jigsaws_sample(shared_data, deep_tiny):
    from s4aqa.data.formats import jigsaws
    data = jigsaws.read(shared_data / "jigsaws_sample", segments=4)
    method = create("gdlt", {**deep_tiny, "steps": 5}).fit(data)
    predicted = method.predict(data)
    assert predicted.shape == (len(data),) and np.all(np.isfinite(predicted))


def test_option_checks():
    with pytest.raises(S4AQAError, match="grades"):
        create("gdlt", {"grades": 1})
    with pytest.raises(S4AQAError, match="decoder_layers"):
        create("gdlt", {"decoder_layers": 0})
    with pytest.raises(S4AQAError, match="margin"):
        create("gdlt", {"margin": -1})


def test_trains_on_a_cuda_device(cuda_device, staged, tiny):
    method = create("gdlt", {**tiny("gdlt"), "steps": 5}, device=str(cuda_device))
    method.fit(staged["labeled"], staged["unlabeled"] if method.uses_unlabeled else None)
    assert np.all(np.isfinite(method.predict(staged["test"])))
