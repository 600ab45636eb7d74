"""The paper's tables and figures as data, and their expansion into runs.

A :class:`Protocol` says which label ratios, which methods (with which option grid), whether
each task is run on its own with k-fold cross-validation, and what extra output a run keeps
(the unlabeled representations for the t-SNE of Fig. 4). :func:`expand` turns a protocol,
a dataset and a number of seeds into the list of :class:`RunSpec`; every run is identified by
its cache key (``s4aqa.runs.identity.run_key``) and nothing else.

Choices (also written at the top of every report):

- **Seeds pair.** Seed ``s`` fixes the labeled subset (``make_split``) and, with ``init`` ``i``,
  the initialisation (method seed ``1000 s + i``), so methods run under one seed differ only
  by the method. ``inits`` > 1 averages several initialisations per seed.
- **table2** (groups): one run per seed over all groups; the report reads each group's
  Spearman from the run's ``test_spearman_per_group`` and the average (Fisher's z over groups)
  from ``test_spearman``.
- **table3** (k-fold per task): one run per (task, fold, seed); a task is a group of the
  dataset (all videos when it has none), a fold its ``meta['fold']``. The report averages the
  fold runs of a task through Fisher's z, and the tasks' values through Fisher's z again.
- **fig4, fig5** follow the paper's S4AQA, which is ``aa+msfr+rda`` here (``s4aqa`` adds a
  consistency term). fig5's (λ1, λ2) grid is the options ``lambda_rcvr`` x ``lambda_adv`` of
  ``aa+msfr+rda``; other methods of the protocol (``aa``) run once as the reference.
- **fig6**: label ratios 5% .. 100%. At 100% there is no unlabeled video: semi-supervised
  methods (``uses_unlabeled``) are recorded as *skipped* (not failed) and nothing is drawn
  there; supervised methods (``aa``, ``svr`` ...) run and give the fully supervised end point.
- Global option overrides (``--set key=value``) go to every method whose options have that
  field, and only to those; a key no method of the protocol knows is an error. A protocol's
  own grid values win over them.
- Methods: without ``--methods`` a protocol runs its default list, keeping those registered
  now (the others are listed in the report as not registered); with ``--methods`` every name
  must be registered.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping, Sequence

from s4aqa.config import RunConfig
from s4aqa.data.splits import DEFAULT_RATIO, check_ratio, default_ratio, parse_shift
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import available, create, options_dict, resolve
from s4aqa.registry import Registry
from s4aqa.runs.identity import run_key


def published() -> dict[str, Any]:
    """The paper's published numbers (``published.json``): protocol -> dataset, source and
    values by label ratio (float) and method."""
    raw = json.loads(resources.files(__package__).joinpath("published.json").read_text())
    return {name: {**entry, "values": {float(r): v for r, v in entry["values"].items()}}
            for name, entry in raw.items() if not name.startswith("_")}


PUBLISHED = published()

LAMBDA_RCVR = (0.1, 0.3, 1.0, 3.0)     # λ1 of Fig. 5 (the default is 1.0)
LAMBDA_ADV = (0.001, 0.01, 0.1, 1.0)   # λ2 of Fig. 5 (the default is 0.01)
FIG6_RATIOS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
POOL_SHARES = (0.0, 0.125, 0.25, 0.5, 1.0)  # shares of the unlabeled videos of `pool`

ABLATION_LABELS = {"aa": "AA", "aa+rda": "AA+RDA", "aa+msfr": "AA+MSFR",
                   "aa+msfr+rda": "AA+MSFR+RDA (paper)", "aa+cons": "AA+CONS",
                   "aa+graph": "AA+GRAPH", "s4aqa": "s4aqa (shipped defaults)"}

# Rows beyond the paper: the newer anchors (METHOD.md), not in the paper's tables; their label
# says so wherever a report names them
BEYOND_PAPER = ("gdlt", "contrastive", "trs")
BEYOND_LABELS = {m: f"{m} (beyond the paper)" for m in BEYOND_PAPER}
BEYOND_NOTE = ("Rows marked (beyond the paper) are newer anchors that are not in the paper's "
               "tables: GDLT (CVPR 2022), CoRe's contrastive regression (ICCV 2021) and TRS "
               "(ECCV 2024), under this package's protocol (fixed schedule, test split read "
               "once).")

# Targets a protocol runs on when --target is not given (None: the reader's default).
DATASET_TARGETS: dict[str, tuple[str | None, ...]] = {"fisv": ("tes", "pcs")}

EMBEDDING = "embedding"  # extra output: unlabeled representations and their true scores


@dataclass(frozen=True)
class Protocol:
    """One table or figure of the paper, as data. ``kind`` names the report section that
    shows it (``report.sections``: table, groups, kfold, tsne, grid, curve, pool).
    ``shares``: the unlabeled shares each method that reads unlabeled videos runs at."""

    name: str
    title: str
    kind: str
    ratios: tuple[float | None, ...]  # None: the data's default (every score given where
    # some training videos are unscored, else 0.1: ``data.splits.default_ratio``)
    methods: tuple[str, ...]       # default method list, in display order
    grid: Mapping[str, Mapping[str, tuple]] = field(default_factory=dict)
    per_task_folds: bool = False   # one run per (task, fold): table3
    shares: tuple[float, ...] = ()  # unlabeled shares swept (pool); (): none, the base share
    extras: tuple[str, ...] = ()
    reference: str = "aa"          # paired differences are taken against this method
    labels: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    paper_note: str = ""  # what the paper column holds: shown only where that column is

    def label(self, method: str) -> str:
        return self.labels.get(method, method)

    @property
    def paper_dataset(self) -> str | None:
        return PUBLISHED.get(self.name, {}).get("dataset")

    @property
    def paper(self) -> Mapping[float, Mapping[str, Any]]:
        return PUBLISHED.get(self.name, {}).get("values", {})


PROTOCOLS = Registry("protocol")

for _protocol in (
    Protocol("table1", "Table I: test Spearman at 10% and 40% labels, all methods", "table",
             (0.1, 0.4),
             ("svr", "usdl", "c3d_avg_stl", "c3d_avg_mtl", "coreg", "lap_rls", "pseudo_label",
              "vat", "s4l", "aa", "s4aqa", *BEYOND_PAPER),
             labels=BEYOND_LABELS, note=BEYOND_NOTE,
             paper_note="Paper column: MTL-AQA, Table I (aa from the ablation, Tables IV/V); "
                        "the paper's s4aqa has no consistency term (see the ablation)."),
    Protocol("table2", "Table II: test Spearman per group and their Fisher-z average, 40% labels",
             "groups", (0.4,),
             ("svr", "action_net", "coreg", "pseudo_label", "vat", "s4l", "aa", "s4aqa"),
             note="One run per seed over all groups.",
             paper_note="Paper column: Rhythmic Gymnastics, Table II "
                        "(Ball/Clubs/Hoop/Ribbon/Avg)."),
    Protocol("table3", "Table III: k-fold cross-validation per task, 50% labels", "kfold",
             (0.5,), ("usdl", "pseudo_label", "vat", "s4l", "aa", "s4aqa"),
             per_task_folds=True,
             note="One run per (task, fold, seed); folds and tasks averaged through Fisher's z.",
             paper_note="Paper column: JIGSAWS, Table III (Suturing/Needle Passing/Knot "
                        "Tying/Avg)."),
    Protocol("ablation", "Ablation (Tables IV, V): AA, AA+RDA, AA+MSFR, AA+MSFR+RDA, and the "
             "consistency this package adds", "table",
             (0.1, 0.4),
             ("aa", "aa+rda", "aa+msfr", "aa+msfr+rda", "aa+cons", "aa+graph", "s4aqa"),
             labels=ABLATION_LABELS,
             paper_note="Paper column: MTL-AQA, Tables IV/V (its S4AQA is the AA+MSFR+RDA "
                        "row).",
             note="CONS: teacher-student consistency on masked unlabeled videos; GRAPH: the "
                  "closed-form part of the blend is LapRLS over a neighbourhood graph of all "
                  "training videos instead of ridge."),
    Protocol("fig4", "Fig. 4: t-SNE of the unlabeled representations, coloured by true score",
             "tsne", (0.1,), ("aa", "aa+msfr", "aa+msfr+rda", "s4aqa"), extras=(EMBEDDING,),
             labels=ABLATION_LABELS,
             note="The figure shows the first seed and initialisation; the table adds how well "
                  "a video's 10 nearest neighbours in representation space predict its score."),
    Protocol("fig5", "Fig. 5: test Spearman over the (λ1, λ2) grid of the paper's S4AQA",
             "grid", (0.1,), ("aa", "aa+msfr+rda"),
             grid={"aa+msfr+rda": {"lambda_rcvr": LAMBDA_RCVR, "lambda_adv": LAMBDA_ADV}},
             note="λ1 = lambda_rcvr (MSFR), λ2 = lambda_adv (RDA); aa is the reference."),
    Protocol("fig6", "Fig. 6: test Spearman against the labeled proportion", "curve",
             FIG6_RATIOS,
             ("svr", "c3d_avg_stl", "coreg", "lap_rls", "pseudo_label", "vat", "s4l", "usdl",
              "aa", "s4aqa", *BEYOND_PAPER),
             labels=BEYOND_LABELS,
             note="At 100% labels semi-supervised methods have no unlabeled video: their runs "
                  "are skipped and not drawn; supervised methods give the fully supervised end. "
                  + BEYOND_NOTE),
    Protocol("pool", "What more unlabeled videos add: test Spearman against the size of the "
             "unlabeled pool, labeled videos fixed per seed", "pool", (None,),
             ("aa", "lap_rls", "aa+graph", "s4aqa", "trs"), shares=POOL_SHARES,
             labels={"trs": BEYOND_LABELS["trs"]},
             note="A seed's labeled videos are the same at every pool size, and a smaller "
                  "pool's videos are among a larger one's; pool 0 is the method with its "
                  "option unlabeled off. aa reads no unlabeled video: it runs once per seed. "
                  "The label ratio is the data's default: every score given where some "
                  "training videos are unscored (the pool is then the unscored videos), "
                  "else 10%."),
):
    PROTOCOLS.add(_protocol.name, _protocol)


def get_protocol(name: str) -> Protocol:
    return PROTOCOLS.get(name)


# ---- runs --------------------------------------------------------------------------------------
@dataclass
class RunSpec:
    """One run of a protocol: its RunConfig plus where it sits in the protocol's tables.

    ``config.options`` is every option the method runs with (preset, defaults and overrides,
    typed); ``overrides`` only those set beyond the method's defaults (shown in results.csv);
    ``variant`` the protocol's grid values of this run (fig5) and its unlabeled share where
    the protocol sweeps the pool (pool; ``config.unlabeled_share`` holds it too). ``extras``
    are outputs a run must keep; they are not part of the cache key. ``data_fingerprint`` is
    the fingerprint of the data the reproduction read (part of the key).
    """

    protocol: str
    config: RunConfig
    overrides: dict[str, Any] = field(default_factory=dict)
    variant: dict[str, Any] = field(default_factory=dict)
    extras: tuple[str, ...] = ()
    data_fingerprint: str | None = None

    @property
    def key(self) -> str:
        return run_key(self.config, self.data_fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "config": self.config.to_dict(),
                "overrides": dict(self.overrides), "variant": dict(self.variant),
                "extras": list(self.extras), "data_fingerprint": self.data_fingerprint}

    @staticmethod
    def from_dict(values: Mapping[str, Any]) -> "RunSpec":
        return RunSpec(protocol=values["protocol"], config=RunConfig.from_dict(values["config"]),
                       overrides=dict(values.get("overrides") or {}),
                       variant=dict(values.get("variant") or {}),
                       extras=tuple(values.get("extras") or ()),
                       data_fingerprint=values.get("data_fingerprint"))


@dataclass
class DatasetInfo:
    """What expansion needs to know of a dataset: its groups (tasks) and folds."""

    name: str
    groups: list[str]
    folds: list[int]
    default_ratio: float = DEFAULT_RATIO  # the label ratio of a protocol's ratio None

    @staticmethod
    def of(features) -> "DatasetInfo":
        # a group '' holds videos no group was given for (feature files with no line)
        groups = (sorted({str(g) for g in features.groups} - {""}) if features.has_groups
                  else [])
        folds = (sorted({int(f) for f in features.meta["fold"]})
                 if "fold" in features.meta else [])
        return DatasetInfo(features.name, groups, folds, default_ratio(features))


def resolve_methods(protocol: Protocol, requested: Sequence[str] | None,
                    registered: Sequence[str]) -> tuple[list[str], list[str]]:
    """(methods to run, default methods left out because they are not registered)."""
    registered = set(registered)
    if requested:
        requested = list(dict.fromkeys(m.strip() for m in requested if m.strip()))
        unknown = [m for m in requested if m not in registered]
        if unknown:
            raise S4AQAError(f"unknown method(s) {', '.join(unknown)}; registered methods are "
                             f"{', '.join(sorted(registered))} (see `s4aqa methods`)")
        return requested, []
    keep = [m for m in protocol.methods if m in registered]
    missing = [m for m in protocol.methods if m not in registered]
    if not keep:
        raise S4AQAError(f"protocol {protocol.name}: none of its methods "
                         f"({', '.join(protocol.methods)}) is registered")
    return keep, missing


def option_fields(method: str) -> set[str]:
    return {f.name for f in dataclasses.fields(resolve(method)[0].Options)}


def expand(protocol: Protocol, base: RunConfig, *, info: DatasetInfo, seeds: int,
           targets: Sequence[str | None] | None = None, inits: int = 1,
           methods: Sequence[str] | None = None, options: Mapping[str, Any] | None = None,
           ratios: Sequence[float] | None = None,
           fingerprints: Mapping[str | None, str] | None = None,
           registered: Sequence[str] | None = None) -> tuple[list[RunSpec], list[str]]:
    """The runs of ``protocol`` on the data of ``base`` (dataset, root, segments, features,
    validation fraction, holdout, shift, device); returns (runs, default methods not
    registered).

    Runs come in table order (target, ratio, task, fold, method, variant, seed, init); a
    variant is a grid point and, where the protocol has ``shares``, an unlabeled share;
    duplicates (one configuration reached twice) are kept once. ``fingerprints`` (target ->
    the fingerprint of the data read for it) go into the runs' keys.
    """
    registered = available() if registered is None else registered
    if int(seeds) < 1:
        raise S4AQAError(f"--seeds {seeds}: run at least one seed")
    if int(inits) < 1:
        raise S4AQAError(f"--inits {inits}: run at least one initialisation per seed")
    method_list, missing = resolve_methods(protocol, methods, registered)
    if base.shift:
        parse_shift(base.shift, info.groups)  # a wrong group name stops before any run
    if not targets:
        targets = DATASET_TARGETS.get(base.dataset, (None,))
    ratio_list = [info.default_ratio if r is None else check_ratio(r)
                  for r in (ratios if ratios else protocol.ratios)]

    overrides = dict(options or {})
    fields = {m: option_fields(m) for m in method_list}
    unused = sorted(k for k in overrides if not any(k in f for f in fields.values()))
    if unused:
        raise S4AQAError(f"option(s) {', '.join(unused)} are not options of any method of "
                         f"{protocol.name} ({', '.join(method_list)}); check the spelling")

    # per method: its variants (grid points, unlabeled shares) as (variant dict, options,
    # explicit overrides, unlabeled share)
    variants: dict[str, list[tuple[dict, dict, dict, float]]] = {}
    for method in method_list:
        given = {k: v for k, v in overrides.items() if k in fields[method]}
        grid = protocol.grid.get(method, {})
        points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        variants[method] = []
        _, preset = resolve(method)
        for point in points or [{}]:
            # only a method that reads unlabeled videos has a pool to grow
            reads = bool(protocol.shares) and create(method, {**given, **point}).uses_unlabeled
            for share in protocol.shares if reads else (None,):
                # pool 0: the method on the labeled videos only, where it can be switched so
                switch = ({"unlabeled": False} if share == 0 and "unlabeled" in fields[method]
                          else {})
                chosen = {**given, **point, **switch}
                full = options_dict(method, chosen)
                explicit = {k: full[k] for k in sorted({**preset, **chosen})}
                variant = point if share is None else {**point, "unlabeled_share": share}
                variants[method].append((variant, full, explicit,
                                         base.unlabeled_share if share is None else share))

    if protocol.per_task_folds:
        if not info.folds:
            raise S4AQAError(f"protocol {protocol.name} needs a dataset with cross-validation "
                             f"folds (meta 'fold'); {info.name} has none")
        cells = [(task, fold) for task in (info.groups or [None]) for fold in info.folds]
    else:
        cells = [(None, None)]

    base = base.resolved()
    runs, seen = [], set()
    for target, ratio, (task, fold), method in itertools.product(targets, ratio_list, cells,
                                                                 method_list):
        for (point, full, explicit, share), seed, init in itertools.product(
                variants[method], range(int(seeds)), range(int(inits))):
            config = dataclasses.replace(base, target=target, task=task, fold=fold,
                                         method=method, options=full, label_ratio=ratio,
                                         unlabeled_share=share, seed=seed, init=init)
            spec = RunSpec(protocol.name, config, overrides=explicit, variant=point,
                           extras=tuple(protocol.extras),
                           data_fingerprint=(fingerprints or {}).get(target))
            if spec.key not in seen:
                seen.add(spec.key)
                runs.append(spec)
    return runs, missing
