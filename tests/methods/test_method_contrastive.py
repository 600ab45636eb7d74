"""Contrastive regression: pair heads, exemplar choice (groups, nearest), pairs, the stored
exemplars."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.splits import make_split
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.methods.contrastive import PairHead, group_codes
from s4aqa.methods.registry import create
from s4aqa.training.metrics import spearman


def test_pair_heads_shapes():
    torch.manual_seed(0)
    f_v, f_e, z_e = torch.randn(3, 5, 8), torch.randn(3, 5, 8), torch.randn(3, 5)
    pair = PairHead.pair(f_v, f_e, z_e)
    assert pair.shape == (3, 5, 17)
    plain = PairHead(8, 16, 0.0)
    assert plain(pair).shape == (3, 5) and plain.pair_loss(pair, torch.zeros(3, 5)).shape == (3, 5)
    grouped = PairHead(8, 16, 0.0, groups=4)
    grouped.edges.copy_(torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0]))
    difference = grouped(pair)
    assert difference.shape == (3, 5)
    assert torch.all((difference > -2.0) & (difference < 2.0))
    assert grouped.pair_loss(pair, torch.zeros(3, 5)).shape == (3, 5)


def test_the_group_aware_head_classifies_into_the_interval_of_the_true_difference():
    head = PairHead(2, 4, 0.0, groups=4)
    head.edges.copy_(torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0]))
    last = head.net[-1]
    with torch.no_grad():  # a head that always says "interval 3, at its middle"
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0]))
    pair = torch.zeros(1, 5)
    assert head(pair).item() == pytest.approx(1.25, abs=0.01)
    inside = head.pair_loss(pair, torch.tensor([1.25])).item()
    other = head.pair_loss(pair, torch.tensor([-1.25])).item()
    assert inside < 0.01 and other > 9.0  # cross-entropy of the wrong interval, plus its error


def test_exemplars_are_the_nearest_labeled_videos_other_than_itself(fit, staged):
    method = fit("contrastive")
    assert method.options.pairs == "exemplar"
    bank = method.modules["bank"]
    n = len(staged["labeled"])
    assert bank.embeddings.shape[0] == n and method._bank_x is None  # stored, features dropped
    pooled = staged["labeled"].features.mean(axis=1)
    mean = method.modules["feature_mean"].value.numpy()
    std = method.modules["feature_std"].value.numpy()
    direction = (pooled - mean) / std
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    np.testing.assert_allclose(bank.pooled.numpy(), direction, atol=1e-4)
    index = method.exemplar_index(bank.pooled, None, exclude=torch.arange(n)).numpy()
    assert index.shape == (n, 10)
    similarity = direction @ direction.T
    np.fill_diagonal(similarity, -np.inf)
    expected = np.argsort(-similarity, axis=1)[:, :10]
    np.testing.assert_array_equal(np.sort(index, axis=1), np.sort(expected, axis=1))


def test_exemplar_pairs_draw_each_videos_exemplar_from_its_own_exemplars(staged, tiny):
    method = create("contrastive", tiny("contrastive"))
    method.begin(staged["labeled"], None, None)
    tensors = method.labeled_tensors(staged["labeled"])
    n = len(staged["labeled"])
    candidates = method._candidates
    assert candidates.shape == (n, 10)
    assert not torch.any(candidates == torch.arange(n)[:, None])  # never itself
    method.modules.eval()  # no dropout: the encodings are fixed
    method._candidates = torch.full_like(candidates, 7)  # every video's one exemplar: video 7
    batch = {k: v[:6] for k, v in tensors.items()}
    batch["x"] = method.standardise(batch["x"])
    with torch.no_grad():
        f = method.modules["encoder"](batch["x"])
        loss = method.pair_loss(f, batch)
        f_7 = method.modules["encoder"](method.standardise(tensors["x"][7:8])).expand(6, -1)
        z_7 = tensors["y"][7].expand(6)
        head = method.modules["pair"]
        expected = head.pair_loss(PairHead.pair(f, f_7, z_7), batch["y"] - z_7).mean()
    torch.testing.assert_close(loss, expected)


def test_every_labeled_video_is_an_exemplar_with_all(fit, staged, tiny):
    method = fit("contrastive", {**tiny("contrastive"), "exemplar_choice": "all", "steps": 5})
    bank = method.modules["bank"]
    assert method.exemplar_index(bank.pooled[:3], None).shape == (3, len(staged["labeled"]))


def test_batch_pairs_never_pair_a_video_with_itself(fit, staged, tiny):
    method = fit("contrastive", {**tiny("contrastive"), "pairs": "batch"})
    f = torch.randn(4, 32)
    same = {"y": torch.tensor([0.5, 0.5, 0.5, 0.5]), "index": torch.tensor([3, 3, 3, 3])}
    assert method.pair_loss(f, same).item() == 0.0
    other = {"y": torch.tensor([0.5, -1.0, 0.5, 2.0]), "index": torch.tensor([3, 4, 3, 5])}
    assert method.pair_loss(f, other).item() > 0.0


def _grouped_videos(seed: int = 0) -> FeatureSet:
    """Two groups whose scores differ by far more than anything within a group, and nothing in
    the features says which group a video is of: only the group can put a video at its level."""
    rng = np.random.default_rng(seed)
    n, segments, dim = 160, 8, 16
    quality = rng.standard_normal((n, 1))
    directions = rng.standard_normal((1, 1, dim))
    features = quality[..., None] * directions + 0.5 * rng.standard_normal((n, segments, dim))
    groups = np.where(rng.random(n) < 0.5, "low", "high")
    scores = 5.0 * quality[:, 0] + np.where(groups == "high", 40.0, 0.0)
    return FeatureSet(ids=[f"v{i:03d}" for i in range(n)], features=features.astype(np.float32),
                      scores=scores, split=np.array(["train"] * 120 + ["test"] * 40, dtype=object),
                      groups=groups, name="two-groups")


@pytest.fixture(scope="module")
def two_groups():
    data = _grouped_videos()
    split = make_split(data, 0.5, seed=0)
    return data.select_ids(split.labeled), data.select_ids(split.test)


def test_exemplars_come_from_the_videos_group_where_the_dataset_has_groups(two_groups, deep_tiny):
    labeled, test = two_groups
    options = {**deep_tiny, "core": "plain"}
    by_group = create("contrastive", options).fit(labeled)
    nearest = create("contrastive", {**options, "exemplar_choice": "nearest"}).fit(labeled)
    bank = by_group.modules["bank"]
    codes = torch.as_tensor(group_codes(test.groups, by_group.vocabulary))
    pooled = torch.nn.functional.normalize(by_group.to_input(test.features).mean(1), dim=-1)
    index = by_group.exemplar_index(pooled, codes)
    assert torch.all(bank.groups[index] == codes[:, None])  # every exemplar of its own group
    assert spearman(by_group.predict(test), test.scores) > 0.8
    assert spearman(nearest.predict(test), test.scores) < 0.6
    # a bare array says no group: its exemplars are the nearest of any group
    assert spearman(by_group.predict(test.features), test.scores) < 0.6


@pytest.mark.parametrize("options", [{"pairs": "batch"}, {"head": "groups"}])
def test_variants_train_and_beat_a_constant(fit, staged, tiny, options):
    method = fit("contrastive", {**tiny("contrastive"), **options})
    assert spearman(method.predict(staged["test"]), staged["test"].scores) > 0.4
    if "head" in options:  # the intervals are quantiles of the labeled pairs' differences
        z = (staged["labeled"].scores - method.score_mean) / method.score_std
        edges = method.modules["pair"].edges.numpy()
        assert edges[0] == pytest.approx((z.min() - z.max()), abs=1e-4)
        assert edges[-1] == pytest.approx((z.max() - z.min()), abs=1e-4)


def test_needs_two_labeled_videos(staged, deep_tiny):
    method = create("contrastive", deep_tiny)
    one = staged["labeled"].subset([0])
    assert "at least 2 labeled" in method.unmet_needs(one, None)
    with pytest.raises(S4AQAError, match="at least 2 labeled"):
        method.fit(one)


def test_trains_on_the_built_in_synthetic_data(deep_tiny):
    data = make_staged_actions(n_train=80, n_test=40, dim=16, seed=3)
    method = create("contrastive", {**deep_tiny, "steps": 120}).fit(data.train())
    assert spearman(method.predict(data.test()), data.test().scores) > 0.1


@pytest.mark.shared_data
def test_trains_and_predicts_on_the_jigsaws_sample(shared_data, deep_tiny):
    from s4aqa.data.formats import jigsaws
    data = jigsaws.read(shared_data / "jigsaws_sample", segments=4)
    assert data.has_groups
    method = create("contrastive", {**deep_tiny, "steps": 5}).fit(data)
    predicted = method.predict(data)
    assert predicted.shape == (len(data),) and np.all(np.isfinite(predicted))
    assert method.vocabulary == sorted(set(data.groups))


def test_option_checks():
    with pytest.raises(S4AQAError, match="exemplars"):
        create("contrastive", {"exemplars": 0})
    with pytest.raises(S4AQAError, match="difference_groups"):
        create("contrastive", {"difference_groups": 1})
    with pytest.raises(S4AQAError, match="must be one of"):
        create("contrastive", {"exemplar_choice": "random"})


def test_trains_on_a_cuda_device(cuda_device, staged, tiny):
    method = create("contrastive", {**tiny("contrastive"), "steps": 5}, device=str(cuda_device))
    method.fit(staged["labeled"], staged["unlabeled"] if method.uses_unlabeled else None)
    assert np.all(np.isfinite(method.predict(staged["test"])))
