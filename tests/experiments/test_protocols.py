"""Protocol expansion: the right runs for each protocol."""

from __future__ import annotations

import pytest

from s4aqa.config import RunConfig
from s4aqa.errors import S4AQAError
from s4aqa.experiments.protocols import (
    FIG6_RATIOS,
    LAMBDA_ADV,
    LAMBDA_RCVR,
    POOL_SHARES,
    PROTOCOLS,
    DatasetInfo,
    expand,
    get_protocol,
)
from s4aqa.methods.registry import available

FLAT = DatasetInfo("fisv", groups=[], folds=[])


def test_table1_defaults_keep_registered_methods_and_list_the_others():
    protocol = get_protocol("table1")
    runs, missing = expand(protocol, RunConfig(dataset="fisv"), info=FLAT, seeds=2)
    registered = set(available())
    methods = list(dict.fromkeys(r.config.method for r in runs))
    assert methods == [m for m in protocol.methods if m in registered]
    assert missing == [m for m in protocol.methods if m not in registered]
    assert {"aa", "s4aqa"} <= set(methods)
    # fisv: TES and PCS; 10% and 40%; seeds 0, 1
    assert {r.config.target for r in runs} == {"tes", "pcs"}
    assert {r.config.label_ratio for r in runs} == {0.1, 0.4}
    assert len(runs) == 2 * 2 * len(methods) * 2
    assert all(r.config.task is None and r.config.fold is None and r.config.init == 0 for r in runs)
    assert len({r.key for r in runs}) == len(runs)


def test_ablation_rows_are_switches_of_one_method():
    runs, _ = expand(PROTOCOLS.get("ablation"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1,
                     ratios=[0.1])
    switches = {r.config.method: tuple(r.config.options[k] for k in ("msfr", "rda", "graph"))
                + (r.config.options["lambda_cons"] > 0,) for r in runs}
    assert {m: v for m, v in switches.items() if m != "s4aqa"} == {
        "aa": (False, False, False, False), "aa+rda": (False, True, False, False),
        "aa+msfr": (True, False, False, False), "aa+msfr+rda": (True, True, False, False),
        "aa+cons": (False, False, False, True), "aa+graph": (False, False, True, False)}
    assert next(r for r in runs if r.config.method == "s4aqa").overrides == {}  # as shipped


def test_seeds_and_inits_pair_methods():
    runs, _ = expand(PROTOCOLS.get("ablation"), RunConfig(dataset="synthetic"), info=FLAT, seeds=3, inits=2,
                     ratios=[0.4])
    assert len(runs) == 7 * 3 * 2
    per_method = {}
    for r in runs:
        per_method.setdefault(r.config.method, set()).add((r.config.seed, r.config.init, r.config.label_ratio))
    assert len({frozenset(v) for v in per_method.values()}) == 1  # same units for every method


def test_table2_one_run_per_seed_over_all_groups():
    info = DatasetInfo("rg", groups=["Ball", "Clubs", "Hoop", "Ribbon"], folds=[])
    runs, _ = expand(PROTOCOLS.get("table2"), RunConfig(dataset="rg"), info=info, seeds=2,
                     methods=["aa", "s4aqa"])
    assert len(runs) == 2 * 2 and {r.config.label_ratio for r in runs} == {0.4}
    assert all(r.config.task is None for r in runs)


def test_table3_runs_every_task_and_fold():
    info = DatasetInfo("jigsaws", groups=["Knot_Tying", "Needle_Passing", "Suturing"],
                       folds=[0, 1, 2, 3])
    runs, _ = expand(PROTOCOLS.get("table3"), RunConfig(dataset="jigsaws"), info=info, seeds=2,
                     methods=["aa", "s4aqa"])
    assert len(runs) == 3 * 4 * 2 * 2
    assert {(r.config.task, r.config.fold) for r in runs} == {(t, f) for t in info.groups for f in range(4)}
    assert {r.config.label_ratio for r in runs} == {0.5}


def test_table3_needs_folds():
    with pytest.raises(S4AQAError, match="folds"):
        expand(PROTOCOLS.get("table3"), RunConfig(dataset="fisv"), info=FLAT, seeds=1, methods=["aa"])


def test_fig5_grid_on_the_papers_s4aqa_with_aa_as_reference():
    runs, _ = expand(PROTOCOLS.get("fig5"), RunConfig(dataset="synthetic"), info=FLAT, seeds=2)
    assert {r.config.method for r in runs} == {"aa", "aa+msfr+rda"}
    grid = [r for r in runs if r.config.method == "aa+msfr+rda"]
    assert len(grid) == len(LAMBDA_RCVR) * len(LAMBDA_ADV) * 2
    assert {(r.config.options["lambda_rcvr"], r.config.options["lambda_adv"]) for r in grid} == {
        (a, b) for a in LAMBDA_RCVR for b in LAMBDA_ADV}
    assert all(r.variant == {"lambda_rcvr": r.config.options["lambda_rcvr"],
                             "lambda_adv": r.config.options["lambda_adv"]} for r in grid)
    assert [r.variant for r in runs if r.config.method == "aa"] == [{}, {}]


def test_fig4_keeps_embeddings_and_fig6_spans_the_ratios():
    fig4, _ = expand(PROTOCOLS.get("fig4"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1)
    assert [r.config.method for r in fig4] == ["aa", "aa+msfr", "aa+msfr+rda", "s4aqa"]
    assert all(r.extras == ("embedding",) for r in fig4)
    fig6, _ = expand(PROTOCOLS.get("fig6"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1,
                     methods=["aa", "s4aqa"])
    assert sorted({r.config.label_ratio for r in fig6}) == sorted(FIG6_RATIOS)
    assert len(fig6) == 2 * len(FIG6_RATIOS)


def test_global_options_go_only_to_methods_that_have_them(fake_methods):
    runs, _ = expand(PROTOCOLS.get("table1"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1,
                     ratios=[0.1], methods=["aa", "_fake_ridge"],
                     options={"steps": "7", "alpha": "2"})
    by_method = {r.config.method: r for r in runs}
    assert by_method["aa"].config.options["steps"] == 7 and "alpha" not in by_method["aa"].config.options
    assert by_method["_fake_ridge"].config.options == {"alpha": 2.0}
    assert by_method["_fake_ridge"].overrides == {"alpha": 2.0}
    with pytest.raises(S4AQAError, match="stepz"):
        expand(PROTOCOLS.get("table1"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1,
               methods=["aa"], options={"stepz": "7"})
    with pytest.raises(S4AQAError, match="not a valid int"):
        expand(PROTOCOLS.get("table1"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1,
               methods=["aa"], options={"steps": "many"})


def test_explicit_unknown_method_and_bad_arguments_are_errors():
    with pytest.raises(S4AQAError, match="no_such_method"):
        expand(PROTOCOLS.get("table1"), RunConfig(dataset="fisv"), info=FLAT, seeds=1,
               methods=["aa", "no_such_method"])
    with pytest.raises(S4AQAError, match="seeds"):
        expand(PROTOCOLS.get("table1"), RunConfig(dataset="fisv"), info=FLAT, seeds=0)
    with pytest.raises(S4AQAError, match="ratio"):
        expand(PROTOCOLS.get("table1"), RunConfig(dataset="fisv"), info=FLAT, seeds=1, ratios=[1.5])
    with pytest.raises(S4AQAError, match="unknown protocol"):
        get_protocol("table9")


def test_pool_grows_the_unlabeled_pool_of_each_semi_supervised_method():
    seeds = 3
    runs, missing = expand(PROTOCOLS.get("pool"), RunConfig(dataset="fisv"), info=FLAT,
                           seeds=seeds)
    assert POOL_SHARES == (0.0, 0.125, 0.25, 0.5, 1.0) and not missing
    # per target and seed: aa once, each of lap_rls, aa+graph, s4aqa, trs once per share
    assert len(runs) == 2 * seeds * (1 + 4 * len(POOL_SHARES))
    assert len({r.key for r in runs}) == len(runs)
    assert {r.config.label_ratio for r in runs} == {0.1}
    reference = [r for r in runs if r.config.method == "aa"]
    assert len(reference) == 2 * seeds
    assert all(r.variant == {} and r.config.unlabeled_share == 1.0 for r in reference)
    for method in ("lap_rls", "aa+graph", "s4aqa", "trs"):
        swept = [r for r in runs if r.config.method == method]
        assert sorted({r.config.unlabeled_share for r in swept}) == list(POOL_SHARES)
        assert all(r.variant == {"unlabeled_share": r.config.unlabeled_share} for r in swept)
        for r in swept:  # pool 0: the method on the labeled videos only, said in the key
            assert r.config.options["unlabeled"] is (r.config.unlabeled_share > 0)
            assert ("unlabeled" in r.overrides) is (r.config.unlabeled_share == 0)
        assert {(r.config.target, r.config.seed) for r in swept
                if r.config.unlabeled_share == 0.25} == {(t, s) for t in ("tes", "pcs")
                                                          for s in range(seeds)}


def test_pool_shares_its_whole_pool_runs_with_the_other_protocols():
    pool, _ = expand(PROTOCOLS.get("pool"), RunConfig(dataset="fisv"), info=FLAT, seeds=2)
    table1, _ = expand(PROTOCOLS.get("table1"), RunConfig(dataset="fisv"), info=FLAT, seeds=2,
                       ratios=[0.1], methods=["aa", "lap_rls", "s4aqa"])
    whole = {r.key for r in pool if r.config.unlabeled_share == 1.0}
    assert {r.key for r in table1} <= whole


def test_pool_takes_methods_ratios_and_options_like_any_protocol(fake_methods):
    runs, _ = expand(PROTOCOLS.get("pool"), RunConfig(dataset="synthetic"), info=FLAT, seeds=2,
                     methods=["aa", "lap_rls", "_fake_semi"], ratios=[0.2, 0.4])
    count = {m: sum(r.config.method == m for r in runs) for m in ("aa", "lap_rls", "_fake_semi")}
    assert count == {"aa": 2 * 2, "lap_rls": 2 * 2 * 5, "_fake_semi": 2 * 2 * 5}
    # a method that cannot be switched off still gets pool 0, where it will be skipped
    zero = [r for r in runs if r.config.method == "_fake_semi" and r.config.unlabeled_share == 0]
    assert zero and all("unlabeled" not in r.config.options for r in zero)
    # with the unlabeled videos switched off for all, nothing grows a pool
    off, _ = expand(PROTOCOLS.get("pool"), RunConfig(dataset="synthetic"), info=FLAT, seeds=1,
                    methods=["lap_rls", "s4aqa"], options={"unlabeled": "false"})
    assert len(off) == 2 and all(r.variant == {} for r in off)


def test_rows_beyond_the_paper_are_marked_as_such():
    """The newer anchors run beside the paper's rows, labeled so that no reader takes them
    for rows of the paper; the paper's own rows keep their names."""
    for name, anchors in (("table1", ("gdlt", "contrastive", "trs")),
                          ("fig6", ("gdlt", "contrastive", "trs")), ("pool", ("trs",))):
        protocol = get_protocol(name)
        assert set(anchors) <= set(protocol.methods)
        for method in protocol.methods:
            marked = protocol.label(method).endswith("(beyond the paper)")
            assert marked is (method in anchors), (name, method)
    assert "beyond the paper" in get_protocol("table1").note
