"""What identifies a run: the settings that decide its numbers and the data it read.

``run_key(config, data)`` is the SHA-256 of the canonical JSON (sorted keys, no spaces) of the
run's RunConfig without ``device`` (dataset name, root and feature folder as absolute paths,
segments, target, task, fold, label ratio, unlabeled share (when not 1), validation fraction,
seed, init, method name and *every* option the method runs with; what feature files with no
line in the score table are, when not the default), the fingerprint of the
data read there (``FeatureSet.fingerprint``: ids, scores, splits, groups, features), the
method's code version and the key format. A reproduction's cache keys its runs on it; a run
folder's resumable state is keyed on it and on the device.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from s4aqa.config import RunConfig, absolute_path
from s4aqa.data.formats import UNLISTED_CHOICES
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import resolve
from s4aqa.options import grid_text

KEY_FORMAT = 2  # 2: keys hold the data's fingerprint


def key_fields(config: RunConfig, data_fingerprint: str | None = None) -> dict[str, Any]:
    """What the key is made of: the RunConfig without ``device``, paths made absolute, and
    the fingerprint of the data read."""
    fields = config.to_dict()
    fields.pop("device", None)
    fields.pop("threads", None)  # like the device: where it runs, not what it computes
    fields["root"] = absolute_path(fields["root"])
    fields["features"] = absolute_path(fields["features"])
    if fields["label_ratio"] is not None:  # a run's ratio is resolved on its data (as_run)
        fields["label_ratio"] = float(fields["label_ratio"])
    fields["val_fraction"] = float(fields["val_fraction"])
    # a grid is keyed by its text ("0.1,1,10"), whether it comes as a tuple or (through JSON)
    # a list, as it was when grids were strings: earlier keys stand
    fields["options"] = {k: grid_text(v) if isinstance(v, (list, tuple)) else v
                         for k, v in sorted((fields.get("options") or {}).items())}
    if not fields.get("holdout"):
        fields.pop("holdout", None)  # absent when off, as before the setting existed
    if not fields.get("shift"):
        fields.pop("shift", None)
    if fields.get("intervals") == "jackknife":
        fields.pop("intervals", None)  # the default: as before the setting existed
    if fields.get("unlisted") == UNLISTED_CHOICES[0]:
        fields.pop("unlisted", None)  # the default: as before the setting existed
    # the intervals' coverage decides the interval metrics a record holds, not the point
    # numbers: in the key only when it is not the default, so earlier keys stand
    if float(fields.get("coverage", 0.9)) == 0.9:
        fields.pop("coverage", None)
    else:
        fields["coverage"] = float(fields["coverage"])
    # all of the unlabeled pool, as before the setting existed: earlier keys stand
    if float(fields.get("unlabeled_share", 1.0)) == 1.0:
        fields.pop("unlabeled_share", None)
    else:
        fields["unlabeled_share"] = float(fields["unlabeled_share"])
    fields["data"] = data_fingerprint
    fields["cache_format"] = KEY_FORMAT
    # a method's code version: bumped when a change alters its numbers, so old runs rerun
    fields["method_version"] = method_version(config.method)
    return fields


def method_version(name: str) -> int:
    try:
        return int(getattr(resolve(name)[0], "version", 1))
    except S4AQAError:
        return 0


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=str)


def run_key(config: RunConfig, data_fingerprint: str | None = None) -> str:
    fields = key_fields(config, data_fingerprint)
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()
