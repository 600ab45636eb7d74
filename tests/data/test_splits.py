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
