"""The `s4aqa` command. Each subcommand parses its flags and calls into the package.

User errors (S4AQAError) are printed on one line and exit with status 2; no stack trace.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from s4aqa import io
from s4aqa.errors import S4AQAError


def _dataset_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None, help="dataset format (synthetic, folder, fisv, mtl_aqa, rg, finediving, jigsaws)")
    parser.add_argument("--root", default=None, help="folder holding the dataset's files")
    parser.add_argument("--target", default=None, help="which score, e.g. tes/pcs/total for fisv")
    parser.add_argument("--task", default=None, help="restrict to one task or group")
    parser.add_argument("--fold", type=int, default=None, help="cross-validation fold used as the test split")
    parser.add_argument("--segments", type=int, default=None, help="resample every video to this many segments")
    parser.add_argument("--features", default=None, help="where the per-video feature arrays are, if not under --root")


def _say(text: str) -> None:
    print(f"s4aqa: {text}", file=sys.stderr)


def _dataset_of(dataset: str | None, root: str | None) -> str:
    """--dataset, or the format recognised from --root (and said), or the synthetic data."""
    from s4aqa.data.formats import detect_format

    if dataset or root is None:
        return dataset or "synthetic"
    found = detect_format(root)
    _say(f"--root {root} holds a '{found}' dataset; reading it as --dataset {found}")
    return found


def cmd_train(args: argparse.Namespace) -> int:
    from s4aqa.config import RunConfig, parse_assignments, read_config_file
    from s4aqa.engine.run import run_training, write_run

    values = read_config_file(args.config) if args.config else {}
    for key in ("dataset", "root", "target", "task", "fold", "segments", "features",
                "label_ratio", "seed", "init", "val_fraction", "holdout", "shift", "method",
                "device"):
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    options = values.get("options") or {}
    if not isinstance(options, dict):
        raise S4AQAError("config 'options' must be a mapping of option names to values")
    options = dict(options)
    options.update(parse_assignments(args.set))
    values["options"] = options
    values["dataset"] = _dataset_of(values.get("dataset"), values.get("root"))
    config = RunConfig.from_dict(values).resolved()
    # training state is kept in the run folder so that an interrupted `train` resumes
    result = run_training(config, state_dir=args.out, fresh=args.fresh, notify=_say)
    write_run(args.out, config, result)
    print(f"{config.method}: test Spearman {result.metrics['test_spearman']:.4f} "
          f"({result.metrics['n_test']} test videos); run written to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from s4aqa.config import RunConfig
    from s4aqa.data.splits import Split
    from s4aqa.engine.checkpoint import load_checkpoint
    from s4aqa.engine.metrics import evaluate
    from s4aqa.engine.run import load_data

    run = Path(args.run)
    method, meta = load_checkpoint(run, device=args.device)
    config = _moved(RunConfig.from_dict(meta["config"]), args.root)
    split = Split.load(run / "split.json")
    test = load_data(config).select_ids(split.test)
    metrics = evaluate(method.predict(test), test)
    print(f"test Spearman {metrics['test_spearman']:.4f} ({metrics['n_test']} test videos)")
    if args.out:
        io.write_json(args.out, metrics)
    return 0


def _moved(config, root: str | None):
    """A run's config with its data read from ``root`` (--root) where the data moved."""
    import dataclasses

    from s4aqa.config import absolute_path

    return config if root is None else dataclasses.replace(config, root=absolute_path(root))


def _read_feature_paths(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise S4AQAError(f"{path}: no .npy feature files found")
        return files
    if path.suffix == ".npy" and path.is_file():
        return [path]
    raise S4AQAError(f"{path}: not an .npy file or a folder of them")


def cmd_predict(args: argparse.Namespace) -> int:
    from s4aqa.config import RunConfig
    from s4aqa.data.featureset import resample_segments
    from s4aqa.data.formats._common import load_npy
    from s4aqa.engine.checkpoint import load_checkpoint
    from s4aqa.engine.run import load_data, predictions_csv

    method, meta = load_checkpoint(Path(args.run), device=args.device)
    if args.features is None:  # every video of the run's dataset
        data = load_data(_moved(RunConfig.from_dict(meta["config"]), args.root))
        text = predictions_csv(data.ids, method.predict(data), data.scores, data.split)
        count = len(data)
    else:
        segments, dim = meta["extra"]["shape"] if "shape" in meta["extra"] else (None, None)
        files = _read_feature_paths(Path(args.features))
        arrays = []
        for path in files:
            array = load_npy(path)  # numeric, (T, D), finite, float32, or the project's error
            if dim is not None and array.shape[1] != dim:
                raise S4AQAError(f"{path}: features have dimension {array.shape[1]} but the "
                                 f"model was trained on {dim}; extract them the same way as "
                                 "the training data")
            arrays.append(resample_segments(array, segments) if segments else array)
        text = predictions_csv([p.stem for p in files], method.predict(np.stack(arrays)))
        count = len(files)
    if args.out:
        io.write_text(args.out, text)
        print(f"{count} predictions written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from s4aqa.experiments.demo import run_demo

    print(run_demo(seeds=args.seeds, label_ratio=args.label_ratio, device=args.device))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from s4aqa.engine.run import predictions_csv
    from s4aqa.engine.score import score_videos

    if args.batch_size < 1:
        raise S4AQAError(f"--batch-size must be at least 1, got {args.batch_size}")
    results = score_videos(args.videos, args.run, device=args.device, batch_size=args.batch_size,
                           segments=args.segments, weights=args.weights, root=args.root)
    for vid, _, error in results:
        if error:
            print(f"s4aqa: skipped {vid}: {error}", file=sys.stderr)
    scored = [(vid, score) for vid, score, _ in results if score is not None]
    text = predictions_csv([vid for vid, _ in scored], [score for _, score in scored])
    if args.out:
        io.write_text(args.out, text)
        print(f"{sum(s is not None for _, s, _ in results)} videos scored -> {args.out}")
    else:
        sys.stdout.write(text)
    return 1 if any(error for _, _, error in results) else 0


def cmd_methods(args: argparse.Namespace) -> int:
    from s4aqa.methods.registry import available

    print("\n".join(available()))
    return 0


def _split_list(values: list[str] | None) -> list[str] | None:
    """Comma-separated and/or repeated flag values to one list (None when not given)."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def cmd_reproduce(args: argparse.Namespace) -> int:
    from s4aqa.config import parse_assignments
    from s4aqa.experiments.runner import reproduce

    ratios = _split_list(args.ratios)
    try:
        ratios = [float(r) for r in ratios] if ratios else None
    except ValueError:
        raise S4AQAError(f"--ratios {','.join(ratios)}: expected numbers such as 0.1,0.4") from None
    summary = reproduce(
        args.protocol, out=args.out, dataset=_dataset_of(args.dataset, args.root), root=args.root,
        targets=_split_list(args.target), seeds=args.seeds, inits=args.inits,
        methods=_split_list(args.methods), options=parse_assignments(args.set), ratios=ratios,
        workers=args.workers, device=args.device, val_fraction=args.val_fraction,
        segments=args.segments, features=args.features, progress=not args.quiet,
        group_seeds=args.group_seeds, holdout=args.holdout, shift=args.shift, fresh=args.fresh)
    print(summary.line())
    if summary.internal_errors:
        print(f"s4aqa: {summary.internal_errors} run(s) failed with an internal error; "
              "see the report", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from s4aqa.experiments.report import build_report

    print(f"report written to {build_report(args.dir)}")
    return 0


def _add_reproduce(sub) -> None:
    from s4aqa.experiments.protocols import PROTOCOLS

    parser = sub.add_parser(
        "reproduce", help="run a table or figure of the paper (cached, resumable) and report it")
    parser.add_argument("protocol", choices=list(PROTOCOLS),
                        help="; ".join(f"{p.name}: {p.title}" for p in PROTOCOLS.values()).replace("%", "%%"))
    parser.add_argument("--dataset", default=None,
                        help="dataset format (default: recognised from --root, else synthetic)")
    parser.add_argument("--root", default=None, help="folder holding the dataset's files")
    parser.add_argument("--target", action="append", default=None,
                        help="score(s) to run, comma-separated (fisv default: tes,pcs)")
    parser.add_argument("--segments", type=int, default=None)
    parser.add_argument("--features", default=None)
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds 0..N-1; a seed fixes the labeled subset and the init (default 3)")
    parser.add_argument("--inits", type=int, default=1,
                        help="initialisations averaged per seed (default 1)")
    parser.add_argument("--methods", action="append", default=None,
                        help="comma-separated methods instead of the protocol's list")
    parser.add_argument("--ratios", action="append", default=None,
                        help="comma-separated label ratios instead of the protocol's")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="option for every method that has it, e.g. steps=100")
    parser.add_argument("--val-fraction", dest="val_fraction", type=float, default=0.2)
    parser.add_argument("--holdout", type=int, default=0, metavar="N",
                        help="evaluate on N training videos held out (a fixed draw) instead of the "
                             "test split: for choosing options without touching the test split")
    parser.add_argument("--shift", default=None, metavar="A,B:C",
                        help="labeled videos from groups A,B, unlabeled from C (unlabeled "
                             "videos of unseen actions); other groups are left out")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--group-seeds", action="store_true",
                        help="train the seeds of a deep method as one batched model (fast on a "
                             "GPU; numbers equal in distribution, not bit for bit)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore the cached runs: run every run again")
    parser.add_argument("--out", required=True, help="reproduction folder (cache and report)")
    parser.set_defaults(func=cmd_reproduce)

    report = sub.add_parser("report", help="rebuild DIR/report.md from DIR's cached runs")
    report.add_argument("dir")
    report.set_defaults(func=cmd_report)


def _moved_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=None,
                        help="where the run's dataset is now, if it moved")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s4aqa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="aa against s4aqa on built-in synthetic data")
    demo.add_argument("--seeds", type=int, default=5)
    demo.add_argument("--label-ratio", type=float, default=0.1)
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", help="train one method on one split and evaluate it")
    _dataset_flags(train)
    train.add_argument("--config", default=None, help="YAML/JSON file of run settings (flags override it)")
    train.add_argument("--label-ratio", dest="label_ratio", type=float, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--init", type=int, default=None, help="initialisation index under one seed")
    train.add_argument("--val-fraction", dest="val_fraction", type=float, default=None)
    train.add_argument("--holdout", type=int, default=None, metavar="N",
                       help="evaluate on N training videos held out (a fixed draw) instead of the "
                             "test split: for choosing options without touching the test split")
    train.add_argument("--shift", default=None, metavar="A,B:C",
                       help="labeled videos from groups A,B, unlabeled from C (unlabeled "
                            "videos of unseen actions); other groups are left out")
    train.add_argument("--method", default=None)
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option")
    train.add_argument("--device", default=None)
    train.add_argument("--fresh", action="store_true",
                       help="ignore any training state left in --out: train from the start")
    train.add_argument("--out", required=True)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="recompute a run's test metrics from its checkpoint")
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    _moved_data_flags(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="score segment features with a trained run")
    predict.add_argument("--run", required=True)
    predict.add_argument("--features", default=None,
                         help="an .npy file or a folder of them (default: every video of the "
                              "run's dataset)")
    predict.add_argument("--out", default=None, help="CSV to write (default: print)")
    _moved_data_flags(predict)
    predict.add_argument("--device", default="cpu")
    predict.set_defaults(func=cmd_predict)

    from s4aqa.features.cli_commands import add_extract_parser, add_weights_parser

    add_weights_parser(sub)
    add_extract_parser(sub)
    score = sub.add_parser("score", help="score raw videos with a trained run (decode, I3D, predict)")
    score.add_argument("videos", nargs="+", metavar="VIDEO")
    score.add_argument("--run", required=True, help="a run folder of `s4aqa train`")
    score.add_argument("--segments", default=None,
                       help="how to cut the videos (default: as the run's training features were made)")
    score.add_argument("--weights", default=None, help="I3D weights (default: the `s4aqa weights` cache)")
    score.add_argument("--device", default="cpu")
    score.add_argument("--batch-size", type=int, default=8)
    score.add_argument("--out", default=None, help="CSV to write (default: print)")
    score.add_argument("--root", default=None,
                       help="where the run's training features are now, if they moved")
    score.set_defaults(func=cmd_score)

    methods = sub.add_parser("methods", help="list the methods")
    methods.set_defaults(func=cmd_methods)

    _add_reproduce(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except S4AQAError as exc:
        print(f"s4aqa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("s4aqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
