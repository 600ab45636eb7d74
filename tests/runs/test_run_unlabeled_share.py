"""A run with part of the unlabeled pool: the split it trains on and what it records."""

from __future__ import annotations

import pytest

from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.runs.prepare import split_of
from s4aqa.runs.run import run_training


@pytest.fixture(scope="module")
def data():
    return make_staged_actions(n_train=100, n_test=40, dim=8, seed=3)


def test_run_reads_the_share_of_the_pool_its_config_names(data):
    whole = split_of(RunConfig(label_ratio=0.2), data)
    half = split_of(RunConfig(label_ratio=0.2, unlabeled_share=0.5), data)
    assert (half.labeled, half.validation, half.test) == (whole.labeled, whole.validation,
                                                          whole.test)
    assert set(half.unlabeled) < set(whole.unlabeled)
    assert len(half.unlabeled) == round(len(whole.unlabeled) / 2)
    result = run_training(RunConfig(method="lap_rls", label_ratio=0.2, unlabeled_share=0.5),
                          data)
    assert result.metrics["n_unlabeled"] == len(half.unlabeled) == len(result.split.unlabeled)


def test_no_unlabeled_video_left_says_how_to_go_on(data):
    config = RunConfig(method="s4aqa", label_ratio=0.2, unlabeled_share=0.0,
                       options={"steps": 2})
    with pytest.raises(S4AQAError, match="unlabeled-share 0 kept none") as error:
        run_training(config, data)
    assert "unlabeled=false" in str(error.value)
    off = RunConfig(method="s4aqa", label_ratio=0.2, unlabeled_share=0.0,
                    options={"steps": 2, "unlabeled": False})
    assert run_training(off, data).metrics["n_unlabeled"] == 0
