"""C3D-AVG-STL / MTL: the averaging encoder and the auxiliary heads."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create


def _without_aux(data: FeatureSet) -> FeatureSet:
    return FeatureSet(ids=data.ids, features=data.features, scores=data.scores, split=data.split,
                      name="plain")


def test_stl_averages_segments(fit, staged, deep_tiny):
    method = fit("c3d_avg_stl")
    assert method.embed(staged["test"]).shape == (len(staged["test"]), deep_tiny["hidden"])
    # the order of the segments does not matter to an average
    reversed_ = staged["test"].features[:, ::-1].copy()
    np.testing.assert_allclose(method.predict(reversed_), method.predict(staged["test"]), atol=1e-4)
    assert set(method.modules) == {"encoder", "regressor", "feature_mean", "feature_std"}


def test_mtl_has_one_head_per_auxiliary_label(fit, staged):
    method = fit("c3d_avg_mtl")
    assert method.aux_spec["skill_class"] == {"kind": "class", "classes": 3}
    assert method.aux_spec["skill"]["kind"] == "value"
    assert {"aux_skill_class", "aux_skill"} <= set(method.modules)
    assert all({"aux_skill_class", "aux_skill", "reg"} <= set(r) for r in method.history)


def test_mtl_subset_of_labels(staged, deep_tiny):
    method = create("c3d_avg_mtl", {**deep_tiny, "steps": 5, "aux_labels": "skill_class"})
    method.fit(staged["labeled"], None, staged["validation"])
    assert list(method.aux_spec) == ["skill_class"]
    with pytest.raises(S4AQAError, match="nope.*not among the auxiliary labels"):
        create("c3d_avg_mtl", {"aux_labels": "nope"}).fit(staged["labeled"])


def test_mtl_refuses_a_dataset_without_extra_labels(staged):
    with pytest.raises(S4AQAError, match="'plain' has none.*c3d_avg_stl"):
        create("c3d_avg_mtl", {}).fit(_without_aux(staged["labeled"]))
