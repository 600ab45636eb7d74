import pytest

from s4aqa.data.formats import load_dataset
from s4aqa.data.formats.synthetic_shift import GROUP_SHIFTS
from s4aqa.data.splits import make_split
from s4aqa.errors import S4AQAError


def test_three_groups_without_a_root_and_task_keeps_one():
    data = load_dataset("synthetic_shift")
    assert sorted(set(data.groups)) == sorted(GROUP_SHIFTS)
    assert (data.split == "train").sum() == 600
    source = load_dataset("synthetic_shift", task="source")
    assert set(source.groups) == {"source"} and len(source) == 300
    assert load_dataset("synthetic_shift", segments=8).features.shape[1:] == (8, 64)


def test_shift_split_on_it_labels_source_and_leaves_look_unlabeled():
    data = load_dataset("synthetic_shift")
    split = make_split(data, 0.2, seed=0, shift="source:look")
    group_of = dict(zip(data.ids, data.groups))
    assert {group_of[i] for i in split.labeled} == {"source"}
    assert {group_of[i] for i in split.unlabeled} == {"look"}
    assert len(split.labeled) + len(split.validation) == 40


def test_unknown_group_or_target_is_refused():
    with pytest.raises(S4AQAError, match="groups source, look, skill"):
        load_dataset("synthetic_shift", task="nope")
    with pytest.raises(S4AQAError, match="one target"):
        load_dataset("synthetic_shift", target="tes")
