"""Every GPU figure of the README's Speed section in one run, written to one report.

    python benchmarks/gpu.py                        # on a CUDA machine: about 8 minutes at most
    python benchmarks/gpu.py --out report.md        # the report elsewhere
    python benchmarks/gpu.py --dry-run              # the plan: each part's command and budget
    python benchmarks/gpu.py --device cpu --quick   # every part tiny on the CPU (the plumbing)

On a machine without a CUDA GPU it prints one line saying so and exits 0 (measuring nothing).

The parts, each run as its own process with its own time budget (``--budget PART=SECONDS``),
so that the whole stays under ``--total`` seconds (default 470, under 8 minutes) and a part
that fails or runs past its budget is written into the report, with its last error line,
while the others go on:

- ``train_speed`` (``benchmarks/train_speed.py``): the training step like for like against a
  plain DataLoader implementation, and the shipped core on its own line;
- ``members`` (this script, ``--part members``): the shipped core's members trained as one
  stacked (vmapped) model against one after another;
- ``extract_speed`` (``benchmarks/extract_speed.py``): I3D clips per second in eager fp32, bf16
  and torch.compile, then end to end where PyAV is installed;
- ``table1``: a slice of ``s4aqa reproduce table1`` (``--table1-args``), on Fis-V where
  ``../shared/data/fisv`` is, else on the built-in synthetic data.

The report (markdown) names the card (``torch.cuda.get_device_name``), torch and CUDA
versions, the date and the commit, then one section per part. It goes to
``docs/results/gpu/<date>-<card>.md`` (with ``--device cpu``: the system's temporary folder),
or to ``--out``; its path is the last line printed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import importlib.util
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FISV = REPO.parent / "shared" / "data" / "fisv"
PARTS = ("train_speed", "members", "extract_speed", "table1")
BUDGETS = {"train_speed": 150, "members": 70, "extract_speed": 150, "table1": 90}
TOTAL = 470  # seconds, parts and report together: under 8 minutes
TABLE1_FISV = "--target tes --methods aa,s4aqa,vat,lap_rls --seeds 3 --group-seeds --workers 2"
TABLE1_SYNTHETIC = TABLE1_FISV.replace("--target tes ", "")
TABLE1_QUICK = "--methods aa,lap_rls --seeds 1 --ratios 0.1 --set steps=5"
ERROR = re.compile(r"^([\w.]+(Error|Exception|Interrupt)\b|s4aqa: error)")
PATTERNS = {  # a part's printed figures: train_speed's and members' "key: value" lines, and
    # extract_speed's "model only, bf16   :  812.3 clips/s" lines
    "keys": r"^([a-z_0-9]+): (.+)$",
    "lines": r"^(device|model only.*?|end to end.*?|clips_per_second)\s*:\s*(.+)$"}


@dataclass
class Part:
    name: str
    title: str
    command: list[str]
    budget: float
    note: str = ""
    parse: str = "keys"  # which of PATTERNS reads its figures ("none": table1's results.csv)
    out: Path | None = None  # where a reproduce writes (table1)
    status: str = "not run"
    seconds: float = 0.0
    output: str = ""
    error: str = ""
    values: list[tuple[str, str]] = field(default_factory=list)


# ---- the plan ----------------------------------------------------------------------------------
def plan(args, scratch: Path) -> list[Part]:
    python, parts = sys.executable, []
    if "train_speed" in args.parts:
        steps, repeats = ("5", "1") if args.quick else (str(args.steps), "2")
        parts.append(Part(
            "train_speed", "Training step: like for like, and the shipped core",
            [python, str(HERE / "train_speed.py"), "--device", args.device, "--steps", steps,
             "--repeats", repeats], args.budgets["train_speed"],
            note="`core=plain` (one network) against the plain DataLoader reference; the "
                 "shipped core (`core=blend`, 2 members and the closed-form partner) on its own "
                 "line. MTL-AQA-shaped data: 1059 training videos, T = 10, D = 1024, 40% labeled."))
    if "members" in args.parts:
        steps = "5" if args.quick else str(args.steps)
        parts.append(Part(
            "members", "The shipped core's members: stacked against one after another",
            [python, str(Path(__file__).resolve()), "--part", "members", "--device", args.device,
             "--steps", steps], args.budgets["members"],
            note="`aa+msfr+rda` with the shipped core's 2 members, their training only (no "
                 "closed-form partner: `blend=0`; eager: `compile=off`), best of 2 after a "
                 "warm-up, on the data of train_speed; `Trainer(stack=True)` is what "
                 "`stack=auto` does on a GPU."))
    if "extract_speed" in args.parts:
        command = [python, str(HERE / "extract_speed.py"), "--device", args.device]
        note = "I3D with random weights (the speed of the Kinetics ones)."
        if args.quick:
            command += ["--clips", "2", "--batch-size", "1", "--modes", "eager"]
        elif args.device.startswith("cuda"):
            command += ["--modes", "eager,bf16,compile"]
        if importlib.util.find_spec("av") is None:
            command.append("--no-end-to-end")
            note += " End to end left out: PyAV is not installed (`pip install -e \".[video]\"`)."
        parts.append(Part("extract_speed", "Feature extraction (I3D)", command,
                          args.budgets["extract_speed"], note=note, parse="lines"))
    if "table1" in args.parts:
        out = scratch / "table1"
        if args.quick:
            data, extra = ["--dataset", "synthetic"], args.table1_args or TABLE1_QUICK
        elif args.table1_root is not None:
            data, extra = ["--root", str(args.table1_root)], args.table1_args or TABLE1_FISV
        else:
            data, extra = ["--dataset", "synthetic"], args.table1_args or TABLE1_SYNTHETIC
        parts.append(Part(
            "table1", "A slice of `reproduce table1`",
            [python, "-m", "s4aqa", "reproduce", "table1", *data, *shlex.split(extra),
             "--device", args.device, "--out", str(out), "--quiet"],
            args.budgets["table1"], out=out, parse="none",
            note="Wall time of the whole command (reading the data, every run, the report); "
                 "each method's run seconds summed from its results.csv."))
    return fit_budgets(parts, args.total)


def fit_budgets(parts: list[Part], total: float, reserve: float = 10.0) -> list[Part]:
    """Budgets scaled down together to fit ``total`` less a reserve (start, report)."""
    asked = sum(p.budget for p in parts)
    room = max(total - reserve, 1.0)
    if asked > room:
        for p in parts:
            p.budget = p.budget * room / asked
    return parts


# ---- running a part ----------------------------------------------------------------------------
def run_part(part: Part, deadline: float) -> None:
    """Run ``part`` in its own process group, stopped at its budget (or at the deadline of
    the whole, whichever is first); its status, output, error line and values filled in."""
    left = deadline - time.monotonic()
    budget = min(part.budget, left)
    if budget < 5:
        part.status = "not run"
        part.error = ("no time left of the total budget" if left < part.budget
                      else f"its budget ({part.budget:g} s) is under 5 s")
        return
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.monotonic()
    proc = subprocess.Popen(part.command, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=budget)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the part's own group: its workers too
        output, _ = proc.communicate()
        code = None
    part.seconds = time.monotonic() - started
    part.output = output or ""
    lines = [line for line in part.output.splitlines() if line.strip()]
    if code is None:
        part.status, part.error = f"stopped at its budget ({budget:.0f} s)", error_line(lines)
    elif code != 0:
        part.status, part.error = f"failed (exit {code})", error_line(lines)
    else:
        part.status = "ok"
    part.values = read_values(part)


def error_line(lines: list[str]) -> str:
    """The last exception line of a traceback (or the CLI's error), else the last line."""
    said = [x.strip() for x in lines if ERROR.match(x.strip())]
    return (said or [x.strip() for x in lines] or ["no output"])[-1]


def read_values(part: Part) -> list[tuple[str, str]]:
    """The figures a part printed, as (what, value) rows of the report."""
    pattern = PATTERNS.get(part.parse)
    rows = [tuple(g.strip() for g in m.groups()) for line in part.output.splitlines()
            if pattern and (m := re.match(pattern, line.strip()))]
    return rows + (table1_rows(part) if part.out is not None else [])


def table1_rows(part: Part) -> list[tuple[str, str]]:
    """The table1 slice's runs: how many of each status, and each method's summed seconds."""
    path = part.out / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        runs = list(csv.DictReader(handle))
    statuses = Counter(run["status"] for run in runs)
    seconds: dict[str, float] = {}
    for run in runs:
        seconds[run["method"]] = seconds.get(run["method"], 0.0) + float(run["seconds"] or 0)
    return ([("runs", ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))]
            + [(f"run seconds, {method}", f"{s:.1f}") for method, s in seconds.items()]
            + [("wall seconds (the whole command)", f"{part.seconds:.1f}")])


# ---- the members part (run in its own process) ------------------------------------------------
def members_main(device: str, steps: int, repeats: int = 2) -> int:
    """Print the seconds of the shipped core's members trained stacked and one by one."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from train_speed import mtl_shaped, peak_memory

    from s4aqa.methods.registry import create
    from s4aqa.training.loop import Trainer

    data = mtl_shaped().train()
    order = np.random.default_rng(0).permutation(len(data))
    n_lab = int(round(0.4 * len(data)))
    labeled, unlabeled = data.subset(order[:n_lab]), data.subset(order[n_lab:])
    # the shipped core's members, eager on both sides (a compiled encoder is built anew for
    # every method made here) and without the partner (blend 0): only the stacking differs
    options = {"steps": steps, "batch_labeled": 32, "batch_unlabeled": 32, "eval_every": steps,
               "select": "last", "core": "blend", "blend": 0.0, "compile": "off"}

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def seconds(stack: bool, steps: int = steps) -> float:
        method = create("aa+msfr+rda", dict(options, steps=steps, eval_every=steps), seed=0,
                        device=device)
        pool = method.unlabeled_for(unlabeled)
        method.begin(labeled, pool, None)
        sync()
        started = time.perf_counter()
        method.train(Trainer(stack=stack), labeled, pool, None)
        sync()
        return time.perf_counter() - started

    count = create("aa+msfr+rda", options, device=device).member_count
    print(f"device: {device}; torch {torch.__version__}; {count} members, {steps} steps")
    seconds(True, min(steps, 10)), seconds(False, min(steps, 10))  # warm-up: kernels, compiling
    stacked = min(seconds(True) for _ in range(repeats))
    alone = min(seconds(False) for _ in range(repeats))
    for key, value in [("members", count), ("members_stacked_seconds", f"{stacked:.2f}"),
                       ("members_one_by_one_seconds", f"{alone:.2f}"),
                       ("peak_memory", peak_memory(device)),
                       ("stacked_speedup", f"{alone / stacked:.2f}")]:
        print(f"{key}: {value}")
    return 0


# ---- the report --------------------------------------------------------------------------------
def environment(device: str) -> list[tuple[str, str]]:
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        card = f"{torch.cuda.get_device_name(index)} ({props.total_memory / 2**30:.0f} GiB)"
        cuda = torch.version.cuda or "?"
    else:
        card = f"no GPU (CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
        cuda = "not used"
    try:  # "-dirty": with uncommitted changes
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, text=True,
                                capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return [("card", card), ("torch", torch.__version__), ("CUDA", cuda),
            ("python", platform.python_version()), ("CPU cores", str(os.cpu_count())),
            ("date", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
            ("commit", commit)]


def report_text(parts: list[Part], env: list[tuple[str, str]], argv: list[str],
                total: float, elapsed: float, quick: bool) -> str:
    card = env[0][1]
    lines = [f"# GPU benchmarks: {card}", ""]
    if quick:
        lines += ["**--quick: every part tiny, to check the plumbing; no figures to quote.**", ""]
    lines += [f"- {what}: {value}" for what, value in env]
    lines += [f"- command: `python benchmarks/gpu.py {' '.join(map(shlex.quote, argv))}`",
              f"- total: {elapsed:.0f} s (budget {total:.0f} s)", "",
              "| part | status | seconds | budget (s) |", "| --- | --- | --- | --- |"]
    lines += [f"| {p.name} | {p.status} | {p.seconds:.1f} | {p.budget:.0f} |" for p in parts]
    lines.append("")
    for p in parts:
        lines += [f"## {p.title}", "", p.note, "",
                  code(shown(p.command)), ""]
        if p.status != "ok":
            lines += [f"**{p.status}**: {code(p.error)}", ""]
        if p.values:
            lines += ["| what | value |", "| --- | --- |"]
            lines += [f"| {cell(what)} | {cell(value)} |" for what, value in p.values]
            lines.append("")
    return "\n".join(lines)


def code(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def shown(command: list[str]) -> str:
    """A part's command as a reader types it: python, paths relative to the repository."""
    words = ["python" if c == sys.executable else c.replace(f"{REPO}/", "") for c in command]
    return " ".join(shlex.quote(w) for w in words)


def default_out(device: str, card: str) -> Path:
    date, card = _dt.date.today().isoformat(), card.split(" (")[0].lower()
    if not device.startswith("cuda"):
        return Path(tempfile.gettempdir()) / f"s4aqa-gpu-report-{date}-cpu.md"
    return REPO / "docs" / "results" / "gpu" / f"{date}-{re.sub(r'[^a-z0-9]+', '-', card)}.md"


# ---- main --------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda",
                        help="cuda, cuda:N, or cpu (with --quick: checks the plumbing)")
    parser.add_argument("--quick", action="store_true",
                        help="every part tiny (a few steps, clips and runs): the plumbing only")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each part's command and budget, run nothing")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--budget", action="append", default=[], metavar="PART=SECONDS",
                        help="a part's time budget (defaults: "
                             + ", ".join(f"{k}={v}" for k, v in BUDGETS.items()) + ")")
    parser.add_argument("--total", type=float, default=TOTAL,
                        help="seconds for everything; budgets are scaled down to fit "
                             f"(default: {TOTAL})")
    parser.add_argument("--steps", type=int, default=200,
                        help="training steps of train_speed and members (default: 200)")
    parser.add_argument("--table1-root", type=Path, default=FISV if FISV.is_dir() else None,
                        help="the table1 slice's dataset folder (default: ../shared/data/fisv "
                             "where it is, else the built-in synthetic data)")
    parser.add_argument("--table1-args", default=None,
                        help=f"the slice's reproduce options (default on Fis-V: '{TABLE1_FISV}')")
    parser.add_argument("--out", type=Path, default=None, help="the report's path")
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)  # one part, in-process
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := sorted(set(args.parts) - set(PARTS)):
        parser.error(f"--parts: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    args.budgets = dict(BUDGETS)
    for item in args.budget:
        name, _, value = item.partition("=")
        if name not in BUDGETS or not re.fullmatch(r"\d+(\.\d*)?", value):
            parser.error(f"--budget {item}: expected PART=SECONDS, PART one of {', '.join(PARTS)}")
        args.budgets[name] = float(value)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    args = parse_args(argv)
    if args.part == "members":
        return members_main(args.device, args.steps)
    with tempfile.TemporaryDirectory(prefix="s4aqa-gpu-") as tmp:
        parts = plan(args, Path(tmp))
        if args.dry_run:
            print(f"plan on {args.device} ({args.total:.0f} s in all):")
            for p in parts:
                print(f"  {p.name} ({p.budget:.0f} s): {shown(p.command)}")
            return 0
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print(f"no CUDA GPU on this machine (torch {torch.__version__}): nothing measured; "
                  "run it on a CUDA machine, or `--device cpu --quick` to check the plumbing")
            return 0
        env = environment(args.device)
        print(f"{env[0][1]}; torch {torch.__version__}; parts: "
              + ", ".join(f"{p.name} ({p.budget:.0f} s)" for p in parts), flush=True)
        deadline = started + args.total - 5
        for p in parts:
            run_part(p, deadline)
            print(f"{p.name}: {p.status}, {p.seconds:.1f} s"
                  + (f": {p.error}" if p.status != "ok" else ""), flush=True)
        out = args.out or default_out(args.device, env[0][1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report_text(parts, env, argv, args.total, time.monotonic() - started,
                                   args.quick) + "\n")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
