"""The commands of `s4aqa`: each takes the parsed flags and calls the package (nothing here
computes): settings are merged by ``config``, runs trained, evaluated and scored by ``runs``,
reproductions by ``experiments``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from s4aqa import io
from s4aqa.config import RunConfig, merge_settings, parse_assignments, settings
from s4aqa.data.formats import detect_format
from s4aqa.errors import S4AQAError
from s4aqa.experiments.demo import run_demo
from s4aqa.experiments.report import build_report
from s4aqa.experiments.runner import reproduce
from s4aqa.features.extract import extract
from s4aqa.features.kinetics import classify, default_labels_path, fetch_labels, read_label_file
from s4aqa.features.video import find_videos
from s4aqa.features.weights import fetch_weights
from s4aqa.methods.registry import describe_methods
from s4aqa.runs.checkpoint import read_meta
from s4aqa.runs.explain import explain_run
from s4aqa.runs.intervals import bounds_of, review_text
from s4aqa.runs.run import run_training
from s4aqa.runs.run_folder import check_run_folder, predictions_csv, write_run
from s4aqa.runs.score import score_videos
from s4aqa.runs.timeline import has_matplotlib, write_explanation
from s4aqa.runs.trained import evaluate_run, feature_paths, predict_run
from s4aqa.training.metrics import format_spearman


def _say(text: str) -> None:
    print(f"s4aqa: {text}", file=sys.stderr)


def _split_list(values: list[str] | None) -> list[str] | None:
    """Comma-separated and/or repeated flag values to one list (None when not given)."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _dataset_of(dataset: str | None, root: str | None) -> str:
    """--dataset, or the format recognised from --root (and said), or the synthetic data."""
    if dataset or root is None:
        return dataset or "synthetic"
    found = detect_format(root)
    _say(f"--root {root} holds a '{found}' dataset; reading it as --dataset {found}")
    return found


def _settings_from(args: argparse.Namespace, values: dict | None = None) -> dict:
    values = dict(values or {})
    for field in settings():
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = value
    return values


# ---- commands ---------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    values = merge_settings(_settings_from(args), args.config, args.set)
    values["dataset"] = _dataset_of(values.get("dataset"), values.get("root"))
    config = RunConfig.from_dict(values).resolved()
    check_run_folder(args.out, config, notify=_say)
    # training state is kept in the run folder so that an interrupted `train` resumes
    result = run_training(config, state_dir=args.out, fresh=args.fresh, notify=_say,
                          progress=False if args.no_progress else None)
    write_run(args.out, result)
    print(f"{config.method}: {_metrics_line(result.metrics, config.holdout)}; run written to "
          f"{args.out}")
    return 0


def _metrics_line(metrics: dict, holdout: int = 0) -> str:
    unscored = metrics.get("n_test_unscored")
    what = "held-out training videos" if holdout else "scored test videos"
    videos = f"{metrics['n_test']} {what}" + (
        f", {unscored} without a score left out" if unscored else "")
    mae = metrics.get("test_mae")
    return (f"test Spearman {format_spearman(metrics['test_spearman'])}"
            + (f", MAE {mae:.3f}" if mae is not None else "") + f" ({videos})")


def cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = evaluate_run(args.run, root=args.root, device=args.device)
    print(_metrics_line(metrics, read_meta(args.run)["config"].get("holdout") or 0))
    if args.out:
        io.write_json(args.out, metrics)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    text, count = predict_run(args.run, args.features, root=args.root, device=args.device,
                              notify=_say)
    if args.out:
        io.write_text(args.out, text)
        print(f"{count} predictions written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise S4AQAError(f"--batch-size must be at least 1, got {args.batch_size}")
    review = getattr(args, "review", None)  # --review K
    if review is not None and review < 1:
        raise S4AQAError(f"--review {review}: list 1 or more videos")
    videos = find_videos(args.videos)
    if not videos:
        raise S4AQAError("no videos given (or none found in the given folders)")
    results = score_videos(videos, args.run, device=args.device, batch_size=args.batch_size,
                           segments=args.segments, weights=args.weights, root=args.root)
    for vid, _, error in results:
        if error:
            _say(f"skipped {vid}: {error}")
    scored = [(vid, score) for vid, score, _ in results if score is not None]
    ids, predicted = [vid for vid, _ in scored], np.array([s for _, s in scored], dtype=float)
    low, high = bounds_of(read_meta(args.run), predicted)  # the run's intervals
    text = predictions_csv(ids, predicted, low=low, high=high)
    if args.out:
        io.write_text(args.out, text)
        print(f"{len(scored)} videos scored -> {args.out}")
    else:
        sys.stdout.write(text)
    if review is not None:
        sys.stdout.write(review_text(ids, predicted, low, high, review))
    return 1 if any(error for _, _, error in results) else 0


def cmd_classify(args: argparse.Namespace) -> int:
    names = None
    path = Path(args.labels) if args.labels else default_labels_path()
    if path.is_file():
        names = read_label_file(path)
    top = classify(args.video, weights=args.weights, device=args.device, top=args.top)
    for index, probability in top:
        name = names[index] if names and index < len(names) else f"class {index}"
        print(f"{probability:7.2%}  {name}")
    if names is None:
        _say("class names not cached; run `s4aqa weights` or pass --labels FILE")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise S4AQAError(f"--seeds {args.seeds}: use 1 or more (seeds 0..N-1)")
    print(run_demo(seeds=args.seeds, label_ratio=args.label_ratio, device=args.device,
                   threads=args.threads, progress=not args.no_progress))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    print(describe_methods(args.verbose))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    ratios = _split_list(args.ratios)
    try:
        ratios = [float(r) for r in ratios] if ratios else None
    except ValueError:
        raise S4AQAError(f"--ratios {','.join(ratios)}: expected numbers such as 0.1,0.4") from None
    values = _settings_from(args)
    values["dataset"] = _dataset_of(values.get("dataset"), values.get("root"))
    summary = reproduce(
        args.protocol, RunConfig.from_dict(values), out=args.out,
        targets=_split_list(args.target), seeds=args.seeds, inits=args.inits,
        methods=_split_list(args.methods), options=parse_assignments(args.set), ratios=ratios,
        workers=args.workers, progress=not args.no_progress, group_seeds=args.group_seeds,
        fresh=args.fresh, backend=args.backend, address=args.address,
        gpus_per_run=args.gpus_per_run)
    print(summary.line())
    if summary.internal_errors:
        _say(f"{summary.internal_errors} run(s) failed with an internal error; see the report")
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(f"report written to {build_report(args.dir)}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    fetch_weights(args.source, force=args.force)
    fetch_labels(args.labels, force=args.force)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise S4AQAError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.workers < 1:
        raise S4AQAError(f"--workers must be at least 1, got {args.workers}")
    summary = extract(args.videos, args.out, segments=args.segments, device=args.device,
                      batch_size=args.batch_size, weights=args.weights, workers=args.workers,
                      resize=args.resize, crop=args.crop, precision="bf16" if args.bf16 else "fp32",
                      force=args.force, progress=not args.no_progress, backend=args.backend,
                      address=args.address, gpus_per_worker=args.gpus_per_worker)
    print(summary.line())
    return summary.exit_code


# ---- explain: where the points were won and lost (issue 27) ----------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    if args.top is not None and args.top < 1:
        raise S4AQAError(f"--top must be at least 1, got {args.top}")
    if args.features and args.videos:
        raise S4AQAError("give --features or videos, not both")
    files = feature_paths(args.features) if args.features else None
    videos = None
    if args.videos:
        videos = find_videos(args.videos)
        if not videos:
            raise S4AQAError("no videos given (or none found in the given folders)")
    explanation = explain_run(args.run, files=files, videos=videos, ids=_split_list(args.ids),
                              reference=args.reference, root=args.root, device=args.device,
                              notify=_say, segments=args.segments, weights=args.weights)
    pictures = has_matplotlib()
    if not pictures:
        _say("timeline pictures not drawn: matplotlib is not installed (pip install -e '.[report]')")
    write_explanation(args.out, explanation, pictures=pictures)
    for i, vid in enumerate(explanation.ids if args.top else []):
        moved = ", ".join(f"{t} {value:+.3f}" for t, value in explanation.top(i, args.top))
        print(f"{vid}: predicted {explanation.predicted[i]:.3f}; top segments {moved}")
    print(f"{len(explanation.ids)} videos explained against the {explanation.reference} "
          f"reference -> {Path(args.out) / 'segments.csv'}" + (" and a timeline per video"
                                                               if pictures else ""))
    return 0
