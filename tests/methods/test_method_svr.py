"""SVR: grids, hyper-parameters chosen on labeled data only, the validation variant."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.config import RunConfig
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create, options_dict
from s4aqa.runs.identity import key_fields


def test_grid_options_are_typed_once_and_checked():
    """A grid is a tuple of floats from the parse on, whether it came as text or a list."""
    assert create("svr", {"c_grid": "0.1, 1,10"}).options.c_grid == (0.1, 1.0, 10.0)
    assert create("svr", {"c_grid": [0.1, 1, 10]}).options.c_grid == (0.1, 1.0, 10.0)
    assert create("svr").options.epsilon_grid == (0.05, 0.2, 0.5)
    # keyed by its text, as when grids were strings (earlier cached runs keep their keys),
    # and the same through a JSON round trip (a list)
    typed = RunConfig(method="svr", options=options_dict("svr", {"c_grid": "1,10"}))
    listed = RunConfig(method="svr", options={**typed.options, "c_grid": [1.0, 10.0]})
    assert key_fields(typed)["options"]["c_grid"] == "1,10" == key_fields(listed)["options"][
        "c_grid"]
    assert key_fields(typed)["options"]["gamma_grid"] == "0.1,1,10"
    with pytest.raises(S4AQAError, match="c_grid='a,b'.*comma-separated"):
        create("svr", {"c_grid": "a,b"})
    with pytest.raises(S4AQAError, match="positive"):
        create("svr", {"epsilon_grid": "-1"})
    with pytest.raises(S4AQAError, match="folds"):
        create("svr", {"folds": 1})


def test_hyper_parameters_come_from_the_grid_and_the_labeled_videos_only(fit, staged):
    method = fit("svr")
    grids = method.grids
    assert method.params["C"] in grids["C"] and method.params["epsilon"] in grids["epsilon"]
    assert any(np.isclose(method.params["gamma"], g) for g in grids["gamma"])
    assert len(method.history) == 4 * 3 * 3  # one cross-validated score per grid point
    # k-fold selection never reads the validation slice
    alone = create("svr", {}).fit(staged["labeled"], None, None)
    assert alone.params == method.params
    np.testing.assert_array_equal(alone.predict(staged["test"]), method.predict(staged["test"]))


def test_selection_on_the_validation_slice_and_a_linear_kernel(staged):
    method = create("svr", {"select_on": "validation", "kernel": "linear", "c_grid": "0.01,1"})
    method.fit(staged["labeled"], None, staged["validation"])
    assert len(method.history) == 2 * 3 and method.params["C"] in (0.01, 1.0)
    with pytest.raises(S4AQAError, match="validation slice"):
        create("svr", {"select_on": "validation"}).fit(staged["labeled"], None, None)


def test_pooling_variants_change_the_input(fit, staged):
    method = fit("svr", {"pool": "mean_std", "c_grid": "1", "gamma_grid": "1", "epsilon_grid": "0.1"})
    assert method.embed(staged["test"]).shape == (len(staged["test"]), 2 * staged["test"].dim)
