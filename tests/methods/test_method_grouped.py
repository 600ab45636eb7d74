"""Deep baselines under grouped training (several seeds as one vmapped model, engine.grouped):
each either trains as a group with all of its losses, or says it cannot and runs alone."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.config import RunConfig
from s4aqa.runs.run import run_group

# method -> whether it trains as a group, and the loss parts a run of it logs
CASES = {
    "action_net": (True, {"reg"}),
    "c3d_avg_stl": (True, {"reg"}),
    "c3d_avg_mtl": (True, {"reg", "aux_skill", "aux_skill_class"}),
    "s4l": (True, {"reg", "pretext"}),
    "usdl": (True, {"kl"}),
    "pseudo_label": (False, {"reg", "pseudo"}),  # phases with pseudo-labels in between
    "vat": (False, {"reg", "vat"}),  # differentiates inside its loss
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grouped_runs_keep_every_loss(name, videos, deep_tiny):
    grouped, parts = CASES[name]
    options = {**deep_tiny, "steps": 10, "eval_every": 5}
    configs = [RunConfig(method=name, label_ratio=0.4, seed=s, options=options) for s in (0, 1)]
    results = run_group(configs, videos)
    assert [r.metrics.get("grouped") for r in results] == ([2, 2] if grouped else [None, None])
    for result in results:
        assert parts <= set(result.method.history[-1])
        assert np.all(np.isfinite(result.predictions))
