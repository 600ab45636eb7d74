"""The deep methods' core: members (networks from other seeds) averaged and blended with a
closed-form partner; "plain" is the paper's one network."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.methods.registry import create
from s4aqa.runs.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def blended(staged, deep_tiny):
    method = create("aa", {**deep_tiny, "members": 3, "steps": 20})
    return method.fit(staged["labeled"], None, staged["validation"])


def test_members_are_networks_from_other_seeds_and_the_prediction_is_the_blend(blended, staged):
    test = staged["test"]
    assert len(blended.members) == 3 and blended.members[0] is blended
    seeds = [m.init_seed() for m in blended.members]
    assert len(set(seeds)) == 3 and seeds[0] == blended.seed
    alone = [m.batched(test, m.forward_normalised) for m in blended.members]
    assert np.abs(alone[0] - alone[1]).max() > 1e-3  # other initialisations, other networks
    expected = 0.5 * np.mean(alone, axis=0) + 0.5 * blended.partner.predict_normalised(test)
    np.testing.assert_allclose(blended.predict(test),
                               expected * blended.score_std + blended.score_mean, rtol=1e-6)
    assert blended.partner.params["graph"] == 0  # a supervised method's partner is ridge


def test_a_checkpoint_holds_every_member_and_the_partner(blended, staged, tmp_path):
    save_checkpoint(tmp_path, blended, {"method": "aa"})
    loaded, _ = load_checkpoint(tmp_path)
    assert len(loaded.members) == 3 and loaded.partner is not None
    np.testing.assert_allclose(loaded.predict(staged["test"]), blended.predict(staged["test"]),
                               rtol=1e-6, atol=1e-6)


def test_plain_is_one_network_alone(staged, deep_tiny):
    plain = create("aa", {**deep_tiny, "core": "plain", "members": 3, "steps": 20})
    plain.fit(staged["labeled"], None, None)
    assert plain.members == [plain] and plain.partner is None
    np.testing.assert_allclose(plain.predict(staged["test"]),
                               plain.batched(staged["test"], plain.forward_normalised)
                               * plain.score_std + plain.score_mean)


def test_a_semi_supervised_method_blends_with_the_graph_over_its_unlabeled_videos(staged,
                                                                               deep_tiny):
    method = create("s4aqa", {**deep_tiny, "steps": 10})
    method.fit(staged["labeled"], staged["unlabeled"], None)
    assert method.partner.n_nodes == len(staged["labeled"]) + len(staged["unlabeled"])
    # blend_scale auto: a graph partner's spread is standardised, ridge's is not
    assert method.blend_scale == "standardised" and set(method.blend_stats) == {"partner"}
    assert create("aa", deep_tiny).blend_scale == "raw"
    off = create("s4aqa", {**deep_tiny, "steps": 10, "unlabeled": False})
    off.fit(staged["labeled"], staged["unlabeled"], None)
    assert off.partner.n_nodes == len(staged["labeled"])
    assert off.blend_scale == "raw" and off.blend_stats == {}
