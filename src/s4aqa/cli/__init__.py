"""The `s4aqa` command: a thin layer that parses flags (``parser``) and dispatches to the
commands (``commands``), which call the package.

User errors (S4AQAError) are printed on one line and exit with status 2, with no stack trace
and no half-written output; Ctrl-C says what was kept and how to go on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import s4aqa.cli.commands as commands
from s4aqa.cli.parser import build_parser
from s4aqa.errors import S4AQAError
from s4aqa.training.resume import STATE_FILE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `s4aqa methods -v | head`: the reader left; end quietly (Python's own advice, rather
        # than SIGPIPE's default action, which would also kill this process on a pipe to a
        # worker process that Ctrl-C stopped)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except S4AQAError as exc:
        print(f"s4aqa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # from here to the exit a further Ctrl-C has nothing left to stop: it would only
        # raise again inside whatever runs at exit (torch's and the executor's handlers)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
        print(f"s4aqa: {said}" if said else f"s4aqa: interrupted{_resume_hint(args)}",
              file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command keeps, and how to go on."""
    if args.func is commands.cmd_train and (Path(args.out) / STATE_FILE).is_file():
        return ("; run the same command again to resume from the saved step "
                "(--fresh starts over)")
    if args.func in (commands.cmd_reproduce, commands.cmd_extract):
        return "; run the same command again to resume (finished work is kept)"
    return ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
