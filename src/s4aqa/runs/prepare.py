"""What a run checks and decides before its first training step: the device, the data, the
split (label ratio, shift, groups, test videos), the method and its options typed once, what
the method needs of the data, and the lines that tell the user what the run will train on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from s4aqa.config import RunConfig
from s4aqa.data.featureset import FeatureSet
from s4aqa.data.splits import Split, make_split
from s4aqa.device import resolve_device
from s4aqa.errors import S4AQAError, Unsupported
from s4aqa.methods.base import Method
from s4aqa.methods.registry import create, method_options
from s4aqa.runs.data import load_data, origin_of_test_videos
from s4aqa.threads import check_threads

# fewer than this many labeled (or scored test) videos: results a user should be warned about
FEW_VIDEOS = 5


@dataclass
class Prepared:
    """A run ready to train: its config as it runs (options typed, target and label ratio
    resolved on the data), the data, the split, the method and its (labeled, unlabeled,
    validation) sets."""

    config: RunConfig
    data: FeatureSet
    split: Split
    method: Method
    sets: tuple
    ratio_given: bool = True  # whether the label ratio was asked for (else the data's default)


def split_of(config: RunConfig, data: FeatureSet, need_validation: bool = True) -> Split:
    """The labeled / unlabeled / validation / test draw of ``config`` on ``data``."""
    return make_split(data, config.label_ratio, config.seed, config.val_fraction,
                      shift=config.shift, need_validation=need_validation,
                      unlabeled_share=config.unlabeled_share)


def training_sets(data: FeatureSet, split: Split, method: Method) -> tuple:
    """(labeled, unlabeled, validation) for ``method.fit``.

    A method that selects nothing on the validation slice trains on it: its labels would
    otherwise be held out for no use.
    """
    labeled_ids, validation = list(split.labeled), None
    if split.validation:
        if method.uses_validation:
            validation = data.select_ids(split.validation)
        else:
            labeled_ids += split.validation
    return (data.select_ids(labeled_ids),
            data.select_ids(split.unlabeled) if split.unlabeled else None, validation)


def no_test_videos(data: FeatureSet) -> S4AQAError:
    return S4AQAError(
        f"{data.name}: no test videos to evaluate on; mark some as test (for a folder dataset, a "
        "split column in scores.csv with train or test per video) or pass --holdout N to "
        "evaluate on N training videos held out")


def prepare(config: RunConfig, data: FeatureSet | None = None) -> Prepared:
    """Everything a run checks before its first training step (module docstring); the
    method's options are typed here, once, and the config returned holds them so."""
    resolve_device(config.device)
    check_threads(config.threads)
    ratio_given = config.label_ratio is not None
    # an unknown method or option is said before anything about the data
    options = method_options(config.method, config.options)
    data = load_data(config) if data is None else data
    if not np.any(data.split == "test"):
        raise no_test_videos(data)
    method = create(config.method, options, seed=config.method_seed, device=config.device)
    split = split_of(config, data, need_validation=method.uses_validation)
    if not split.test:  # a --shift may leave out the groups of every test video
        raise no_test_videos(data)
    split.sources["test"] = origin_of_test_videos(config)
    sets = training_sets(data, split, method)
    unmet = method.unmet_needs(sets[0], sets[1])
    if unmet and sets[1] is None and config.unlabeled_share < 1.0:
        unmet += (f" (--unlabeled-share {config.unlabeled_share:g} kept none of them: raise it, "
                  "or --set unlabeled=false for the method on the labeled videos only)")
    if unmet:
        raise Unsupported(unmet)
    # as it runs: the options typed (--set neighbours=3 is 3, as a YAML file gives it), the
    # target the reader chose and the label ratio drawn, so a run's record says what was
    # trained, whatever a setting's source
    config = dataclasses.replace(config, target=config.target or data.target,
                                 label_ratio=split.label_ratio,
                                 options={k: getattr(options, k) for k in config.options})
    return Prepared(config, data, split, method, sets, ratio_given)


def video_counts(prepared: Prepared) -> dict[str, Any]:
    """How many videos the run trains on, reads unlabeled and tests on, and where each count
    comes from (split.json, config.json and the run's first line say it)."""
    split, method = prepared.split, prepared.method
    labeled, unlabeled, validation = prepared.sets
    test = prepared.data.select_ids(split.test)
    unscored = int(np.sum(~test.scored))
    reads = method.uses_unlabeled and unlabeled is not None
    counts = {
        "labeled": len(labeled), "validation": len(validation) if validation is not None else 0,
        "unlabeled": len(unlabeled) if reads else 0, "test": len(test),
        "test_unscored": unscored,
        "sources": {
            "labeled": split.sources.get("labeled", "")
            + (f"; {len(split.validation)} of them held out for model selection"
               if validation is not None else ""),
            "unlabeled": (split.sources.get("unlabeled", "") if reads else
                          f"{method.label} reads none"
                          + (f"; {len(split.unlabeled)} left unread" if split.unlabeled
                             else "")),
            "test": split.sources.get("test", "") + (f"; {unscored} without a score (scored, "
                                                     "not checked)" if unscored else ""),
        },
    }
    return counts


def counts_line(counts: dict[str, Any]) -> str:
    """The run's first line: its video counts and where each comes from."""
    sources = counts["sources"]
    return (f"videos: {counts['labeled'] + counts['validation']} labeled "
            f"({sources['labeled']}); {counts['unlabeled']} unlabeled ({sources['unlabeled']}); "
            f"{counts['test']} test ({sources['test']})")


def caveats(prepared: Prepared) -> list[str]:
    """Lines a user should read before trusting the run: scores a default draw set aside, and
    numbers that so few videos cannot support."""
    lines = []
    config, split, data = prepared.config, prepared.split, prepared.data
    scored_train = int(np.sum((data.split == "train") & data.scored))
    kept = len(split.labeled) + len(split.validation)
    if not prepared.ratio_given and kept < scored_train:
        lines.append(f"note: --label-ratio not given and every training video is scored: the "
                     f"default keeps {kept} of the {scored_train} scores (a "
                     f"{config.label_ratio:g} draw; the other videos are unlabeled, as in the "
                     "paper's protocol); pass --label-ratio 1 to train on every score")
    n_labeled = len(prepared.sets[0])
    if n_labeled < FEW_VIDEOS:
        lines.append(f"warning: only {n_labeled} labeled video(s) to train on; its scores will "
                     "be unreliable: raise --label-ratio or add scored videos")
    scored = int(np.sum(data.select_ids(split.test).scored))
    if scored < FEW_VIDEOS:
        lines.append(f"warning: only {scored} scored test video(s); a Spearman over so few is "
                     "mostly chance (with 2 it is always -1 or +1)")
    return lines
