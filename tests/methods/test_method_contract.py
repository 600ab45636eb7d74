"""What every registered method promises (the lists come from the registry, so a new method
cannot escape them): it trains on a small FeatureSet on CPU in seconds, beats a constant
predictor on held-out videos, repeats itself for a seed, reads the unlabeled set when it is
semi-supervised (and ignores it otherwise), checks its options, says what it is, and
round-trips through a checkpoint (safetensors + JSON) with the same predictions."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest
import torch

from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import available, create, resolve
from s4aqa.runs.checkpoint import load_checkpoint, save_checkpoint
from s4aqa.training.metrics import spearman

METHODS = available()
SEMI_SUPERVISED = [name for name in METHODS if create(name, {}).uses_unlabeled]
SUPERVISED = [name for name in METHODS if name not in SEMI_SUPERVISED]
# the baselines of the paper's tables, all of which must be registered
BASELINES = ["action_net", "c3d_avg_mtl", "c3d_avg_stl", "coreg", "pseudo_label", "s4l", "svr",
             "usdl", "vat"]


def test_every_baseline_is_registered_and_says_what_it_is():
    assert set(BASELINES) <= set(METHODS)
    assert {"coreg", "pseudo_label", "s4l", "vat", "s4aqa"} <= set(SEMI_SUPERVISED)
    for name in METHODS:
        cls, preset = resolve(name)
        assert preset or cls.description, name


@pytest.mark.parametrize("name", METHODS)
def test_beats_a_constant_predictor(name, fit, staged):
    test = staged["test"]
    predicted = fit(name).predict(test)
    assert predicted.shape == (len(test),) and np.all(np.isfinite(predicted))
    rho = spearman(predicted, test.scores)  # a constant prediction has rho 0
    assert rho > 0.25, f"{name}: test Spearman {rho:.3f}"
    constant = staged["labeled"].scores.mean()
    assert np.mean((predicted - test.scores) ** 2) < np.mean((constant - test.scores) ** 2)


@pytest.mark.parametrize("name", METHODS)
def test_training_leaves_the_callers_random_state_alone(name, fit):
    """A user who trains from Python keeps their own torch random stream (issue 35): the
    draws after a fit are those they would have got without it."""
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    fit(name, fresh=True)
    np.testing.assert_array_equal(torch.rand(4).numpy(), expected.numpy())


@pytest.mark.parametrize("name", METHODS)
def test_deterministic_for_a_seed(name, fit, staged):
    first = fit(name).predict(staged["test"])
    again = fit(name, fresh=True).predict(staged["test"])
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", SEMI_SUPERVISED)
def test_semi_supervised_methods_read_the_unlabeled_set(name, fit, staged):
    """Scrambling the unlabeled videos' content (same rows, same statistics) must change the
    model; a method that ignored the unlabeled set (or used only its statistics) would not."""
    real = fit(name).predict(staged["test"])
    scrambled = fit(name, unlabeled="scrambled").predict(staged["test"])
    assert np.abs(real - scrambled).max() > 1e-3


@pytest.mark.parametrize("name", SEMI_SUPERVISED)
def test_semi_supervised_methods_say_whether_they_need_unlabeled_videos(name, staged, fit):
    """A method that needs unlabeled videos says so before training and refuses to train
    without; one that only profits from them (lap_rls) trains on the labeled videos alone."""
    method = create(name, {})
    need = method.unmet_needs(staged["labeled"], None)
    if need:
        assert "unlabeled" in need
        with pytest.raises(S4AQAError, match="unlabeled"):
            method.fit(staged["labeled"], None, staged["validation"])
    else:
        assert fit(name, unlabeled=None).predict(staged["test"]).shape == (len(staged["test"]),)


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_methods_ignore_the_unlabeled_set(name, fit, staged):
    """Given the pool (the fixture gives it to every method), a supervised method predicts
    what it predicts without one: it reads neither the videos nor their statistics."""
    real = fit(name).predict(staged["test"])
    np.testing.assert_array_equal(real, fit(name, unlabeled=None).predict(staged["test"]))
    np.testing.assert_array_equal(real, fit(name, unlabeled="scrambled").predict(staged["test"]))


def _typed_field(cls: type, kinds: tuple) -> str | None:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if hints[field.name] in kinds and "choices" not in field.metadata:
            return field.name
    return None


@pytest.mark.parametrize("name", METHODS)
def test_option_errors_are_clear(name):
    with pytest.raises(S4AQAError, match=r"unknown option\(s\) no_such_option.*known options"):
        create(name, {"no_such_option": 1})
    cls, _ = resolve(name)
    numeric = _typed_field(cls.Options, (int, float))
    assert numeric is not None
    with pytest.raises(S4AQAError, match=f"option {numeric}='abc'.*not a valid"):
        create(name, {numeric: "abc"})
    for field in dataclasses.fields(cls.Options):
        if "choices" in field.metadata:
            with pytest.raises(S4AQAError, match="must be one of"):
                create(name, {field.name: "no_such_choice"})
            break
    # strings from the command line are typed by the option's type
    option = create(name, {numeric: "2"}).options
    assert getattr(option, numeric) == 2


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_round_trip(name, fit, staged, tmp_path):
    method = fit(name)  # the tiny options (other registered methods: their tiny deep options)
    save_checkpoint(tmp_path, method, {"method": name})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    loaded, meta = load_checkpoint(tmp_path)
    assert meta["method"] == name and type(loaded) is type(method)
    # the shape `predict --features` resamples new videos to
    shape = (staged["test"].num_segments, staged["test"].dim)
    assert tuple(method.shape) == tuple(loaded.shape) == shape
    np.testing.assert_allclose(loaded.predict(staged["test"]), method.predict(staged["test"]),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", METHODS)
def test_wrong_feature_shape_is_a_clear_error(name, fit, staged):
    features = staged["test"].features[:, :, :-1]
    with pytest.raises(S4AQAError, match="shape"):
        fit(name).predict(features)


@pytest.mark.parametrize("name", METHODS)
def test_untrained_method_says_so(name, staged):
    with pytest.raises(S4AQAError, match="not been trained"):
        create(name, {}).predict(staged["test"])


@pytest.mark.parametrize("name", SEMI_SUPERVISED)
def test_one_option_switches_every_use_of_the_unlabeled_videos_off(name, fit, staged, tiny):
    """``unlabeled=off``: the same method on the labeled videos only (what they add is then
    measured by one run with and one without)."""
    off = {**tiny(name), "unlabeled": False}
    assert not create(name, off).uses_unlabeled
    real = fit(name, off).predict(staged["test"])
    np.testing.assert_array_equal(real, fit(name, off, unlabeled=None).predict(staged["test"]))
    np.testing.assert_array_equal(real, fit(name, off, unlabeled="scrambled").predict(
        staged["test"]))

