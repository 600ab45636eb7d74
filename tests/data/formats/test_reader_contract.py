"""What every registered dataset reader promises (the list comes from the registry, so a new
reader cannot escape it): it reads its example into a FeatureSet with training videos and a
test split (or folds), finite features and unique ids, the same data and fingerprint on every
read; it resamples to a given number of segments; a folder of its format is recognised as it
and as no other; and a missing folder is the project's error."""

from __future__ import annotations

import format_examples as examples
import numpy as np
import pytest

from s4aqa.data.formats import READERS, detect_format, load_dataset
from s4aqa.errors import S4AQAError

NAMES = READERS.names()


def _read(name, tmp_path, **options):
    writer = examples.EXAMPLES[name]
    return load_dataset(name, None if writer is None else writer(tmp_path), **options)


def test_every_registered_reader_has_an_example():
    assert sorted(examples.EXAMPLES) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_reads_its_example(name, tmp_path):
    data = _read(name, tmp_path)
    assert len(data) > 0 and len(set(data.ids)) == len(data.ids)
    assert np.any(data.split == "train") and (np.any(data.split == "test") or "fold" in data.meta)
    assert np.all(np.isfinite(data.features)) and np.all(np.isfinite(data.scores[data.split == "train"]))
    again = _read(name, tmp_path)
    assert again.fingerprint() == data.fingerprint()
    assert _read(name, tmp_path, segments=4).num_segments == 4


@pytest.mark.parametrize("name", NAMES)
def test_a_folder_of_the_format_is_recognised_as_it(name, tmp_path):
    writer = examples.EXAMPLES[name]
    if writer is None:
        assert READERS.info(name)["generated"]
        with pytest.raises(S4AQAError, match="drop --root"):
            load_dataset(name, tmp_path)
        return
    assert detect_format(writer(tmp_path)) == name


@pytest.mark.parametrize("name", [n for n in NAMES if examples.EXAMPLES[n] is not None])
def test_a_missing_folder_is_a_clear_error(name, tmp_path):
    with pytest.raises(S4AQAError, match="not found"):
        load_dataset(name, tmp_path / "missing")
    with pytest.raises(S4AQAError, match="--root"):
        load_dataset(name, None)
