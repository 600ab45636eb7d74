"""The restricted unpickler: plain data and numpy arrays in, everything else refused, no crash."""

import os
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s4aqa.data import safe_pickle
from s4aqa.errors import S4AQAError


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch /tmp/s4aqa_pwned",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_round_trip_of_plain_data(protocol):
    obj = {(1, 2): {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": "407C",
                    "f": np.asfortranarray(np.ones((2, 3))), "n": np.float64(2.5)},
           "l": [1, 2.0, None, True], "t": (b"x", {3})}
    out = safe_pickle.loads(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(out[(1, 2)]["a"], obj[(1, 2)]["a"])
    assert out[(1, 2)]["a"].dtype == np.float32
    np.testing.assert_array_equal(out[(1, 2)]["f"], obj[(1, 2)]["f"])
    assert out[(1, 2)]["n"] == 2.5 and out["l"] == obj["l"] and out["t"] == obj["t"]


def test_code_is_refused_and_not_run(tmp_path):
    if os.path.exists("/tmp/s4aqa_pwned"):
        os.remove("/tmp/s4aqa_pwned")
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": _RunsCode()}))
    with pytest.raises(S4AQAError, match="not allowed"):
        safe_pickle.load(path)
    assert not os.path.exists("/tmp/s4aqa_pwned")


def test_object_arrays_and_lying_array_states_are_refused():
    with pytest.raises(S4AQAError, match="not a plain numeric dtype"):
        safe_pickle.loads(pickle.dumps(np.array([1, "a"], dtype=object)))
    good = pickle.dumps(np.zeros((4, 4)), protocol=2)
    # claim a larger shape than the data holds: numpy's own unpickling would trust it
    bad = good.replace(b"K\x04K\x04\x86", b"M\x00\x10K\x04\x86")
    assert bad != good
    with pytest.raises(S4AQAError):
        safe_pickle.loads(bad)


def test_missing_empty_and_truncated_files(tmp_path):
    with pytest.raises(S4AQAError, match="not found"):
        safe_pickle.load(tmp_path / "nope.pkl")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(S4AQAError, match="empty"):
        safe_pickle.load(tmp_path / "empty.pkl")
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"a": np.ones(10)})[:-7])
    with pytest.raises(S4AQAError, match="truncated|readable"):
        safe_pickle.load(tmp_path / "cut.pkl")


_SEED = pickle.dumps({(1, 2): {"a": 1.0, "b": np.ones(3)}, (3, 4): {"x": "407C"}}, protocol=2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(_SEED)))
def test_damaged_pickles_give_data_or_the_projects_error(edits, cut):
    data = bytearray(_SEED[:cut] if cut > 2 else _SEED)
    for position, value in edits:
        if position < len(data):
            data[position] = value
    try:
        safe_pickle.loads(bytes(data))
    except S4AQAError:
        pass
