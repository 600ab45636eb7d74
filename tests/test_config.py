"""RunConfig's unlabeled share: checked once, a flag of `train` (set per run, so not one of
`reproduce`), read from config files."""

from __future__ import annotations

import pytest

from s4aqa.cli.parser import build_parser
from s4aqa.config import RunConfig, settings
from s4aqa.errors import S4AQAError


@pytest.mark.parametrize("share", [-0.01, 1.01, float("nan")])
def test_unlabeled_share_outside_zero_one_is_refused_in_one_line(share):
    with pytest.raises(S4AQAError) as error:
        RunConfig(unlabeled_share=share)
    assert "--unlabeled-share" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("share", [0.0, 0.125, 1.0])
def test_unlabeled_share_in_range_is_kept(share):
    assert RunConfig(unlabeled_share=share).unlabeled_share == share


def test_unlabeled_share_is_a_per_run_setting_with_a_train_flag():
    assert RunConfig().unlabeled_share == 1.0
    per_run = {f.name for f in settings(per_run=True)}
    assert "unlabeled_share" in per_run
    parser = build_parser()
    args = parser.parse_args(["train", "--unlabeled-share", "0.25", "--out", "x"])
    assert args.unlabeled_share == 0.25
    # reproduce takes it from the protocol (pool), as it does the label ratio
    with pytest.raises(SystemExit):
        parser.parse_args(["reproduce", "pool", "--unlabeled-share", "0.5", "--out", "x"])


def test_unlabeled_share_from_a_config_file_is_typed_and_checked():
    assert RunConfig.from_dict({"unlabeled_share": "0.5"}).unlabeled_share == 0.5
    with pytest.raises(S4AQAError, match="--unlabeled-share"):
        RunConfig.from_dict({"unlabeled_share": 2})
