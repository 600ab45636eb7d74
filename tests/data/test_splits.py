import hashlib
import itertools
import json
from dataclasses import asdict

import numpy as np
import pytest

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.splits import Split, make_split
from s4aqa.errors import S4AQAError


def _grouped(n_train=80, n_test=20):
    n = n_train + n_test
    groups = np.array(["a", "b", "c", "d"] * (n // 4), dtype=object)
    return FeatureSet(ids=[f"v{i}" for i in range(n)], features=np.zeros((n, 2, 2)),
                      scores=np.arange(n, dtype=float),
                      split=["train"] * n_train + ["test"] * n_test, groups=groups)


def test_split_is_a_partition_of_train_and_never_touches_test():
    fs = _grouped()
    split = make_split(fs, 0.4, seed=3)
    lab, unl, val = set(split.labeled), set(split.unlabeled), set(split.validation)
    train_ids = set(fs.train().ids)
    assert not (lab & unl) and not (lab & val) and not (unl & val)
    assert lab | unl | val == train_ids
    assert set(split.test) == set(fs.test().ids)
    assert len(lab) + len(val) == 32


def test_split_is_stratified_by_group():
    fs = _grouped()
    split = make_split(fs, 0.25, seed=0, val_fraction=0)
    groups = fs.select_ids(split.labeled).groups
    assert sorted(np.unique(groups, return_counts=True)[1].tolist()) == [5, 5, 5, 5]


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    fs = _grouped()
    a, b, c = make_split(fs, 0.1, 1), make_split(fs, 0.1, 1), make_split(fs, 0.1, 2)
    assert a == b and a.labeled != c.labeled
    a.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json") == a


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_ratio_outside_range_is_refused(ratio):
    with pytest.raises(S4AQAError, match="outside"):
        make_split(_grouped(), ratio, 0)


def test_too_few_labeled_for_validation():
    with pytest.raises(S4AQAError, match="validation"):
        make_split(_grouped(n_train=40), 0.1, 0)
    assert make_split(_grouped(n_train=40), 0.1, 0, val_fraction=0).validation == []


def test_full_ratio_leaves_no_unlabeled():
    assert make_split(_grouped(), 1.0, 0).unlabeled == []


def test_shift_labels_some_groups_and_leaves_others_unlabeled():
    fs = _grouped()
    split = make_split(fs, 0.5, seed=1, val_fraction=0.2, shift="a,b:c")
    group_of = dict(zip(fs.ids, fs.groups))
    assert {group_of[i] for i in split.labeled + split.validation} == {"a", "b"}
    assert {group_of[i] for i in split.unlabeled} == {"c"}
    # the ratio applies to the labeled groups; all of c's training videos are unlabeled
    assert len(split.labeled) + len(split.validation) == 20
    assert len(split.unlabeled) == 20
    # group d is in neither set, so it is out of the test split as well
    assert {group_of[i] for i in split.test} == {"a", "b", "c"}
    assert set(split.test) <= set(fs.test().ids)


@pytest.mark.parametrize("shift, message", [
    ("a,b", "LABELED:UNLABELED"), ("a:", "each side"), ("a:a", "each side"),
    ("a:z", "no group z"),
])
def test_bad_shift_is_refused_with_what_to_do(shift, message):
    with pytest.raises(S4AQAError, match=message):
        make_split(_grouped(), 0.5, seed=0, shift=shift)


def test_shift_needs_groups():
    fs = _grouped()
    flat = FeatureSet(ids=fs.ids, features=fs.features, scores=fs.scores, split=fs.split)
    with pytest.raises(S4AQAError, match="single group"):
        make_split(flat, 0.5, seed=0, shift="a:b")


# ---- the unlabeled share: a nested draw of the unlabeled pool, labeled videos untouched ------
SHARES = (0.0, 0.125, 0.25, 0.5, 1.0)
CASES = [(0.1, 0, None, 0.0), (0.4, 3, None, 0.2), (0.5, 1, "a,b:c", 0.2), (0.25, 7, None, 0.0)]
# sha256 of these cases' splits as drawn before the share existed: share 1 must stay that draw
BEFORE_SHARE = "eab2d484ed69d54ddcfd1a1907b6d59c64e2c4631ca518f9768058682b0d2b07"


def _splits(fs, share):
    return [make_split(fs, r, s, val_fraction=v, shift=sh, unlabeled_share=share)
            for r, s, sh, v in CASES]


def test_whole_share_is_the_draw_of_before():
    fs = _grouped()
    # the draws (not the words of Split.sources, added later) are those of before
    blob = json.dumps([{k: v for k, v in asdict(s).items() if k != "sources"}
                       for s in _splits(fs, 1.0)], sort_keys=True)
    assert hashlib.sha256(blob.encode()).hexdigest() == BEFORE_SHARE
    assert _splits(fs, 1.0) == [make_split(fs, r, s, val_fraction=v, shift=sh)
                                for r, s, sh, v in CASES]


def test_share_changes_only_the_unlabeled_pool_and_is_nested():
    fs = _grouped(n_train=160)
    whole = _splits(fs, 1.0)
    by_share = {share: _splits(fs, share) for share in SHARES}
    for i, full in enumerate(whole):
        pools = [set(by_share[share][i].unlabeled) for share in SHARES]
        for share, pool in zip(SHARES, pools):
            split = by_share[share][i]
            assert (split.labeled, split.validation, split.test) == (
                full.labeled, full.validation, full.test)  # the same lists, in the same order
            assert len(pool) == round(share * len(full.unlabeled))
            assert split.unlabeled == sorted(split.unlabeled)
        assert pools[0] == set()
        assert all(small < large for small, large in itertools.pairwise(pools[1:]))
        assert pools[-1] == set(full.unlabeled)


def test_share_draw_depends_on_the_seed_and_is_repeatable():
    fs = _grouped(n_train=160)
    a, b, c = (make_split(fs, 0.1, seed, unlabeled_share=0.25) for seed in (1, 1, 2))
    assert a == b and set(a.unlabeled) != set(c.unlabeled)
    # not simply the first ids: the kept quarter is a draw over the whole pool
    full = make_split(fs, 0.1, 1).unlabeled
    assert set(a.unlabeled) != set(full[:len(a.unlabeled)])


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_share_outside_range_is_refused(share):
    with pytest.raises(S4AQAError, match="--unlabeled-share"):
        make_split(_grouped(), 0.1, 0, val_fraction=0, unlabeled_share=share)
