"""The ``kgrec`` argument parser and entry point: global options, one sub-parser per command module.

A command is a module of :mod:`kgrec.cli` with ``add_parser(sub, models)`` (its options, ending in
``set_defaults(func=run)``) and ``run(args) -> int``; :data:`COMMANDS` lists them in help order. Every
command goes through the public API (:func:`kgrec.load`, :func:`kgrec.split`, :class:`kgrec.Recommender`).
Results go to stdout, progress and training logs to stderr. A :class:`~kgrec.errors.KgrecError` (bad input,
bad argument) ends the command with ``kgrec: error: <message>`` on stderr and exit status 2, without a
traceback; any other exception is a bug and propagates.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from collections.abc import Sequence

from kgrec.cli import (
    benchmark,
    common,
    convert,
    demo,
    evaluate,
    explain,
    generate,
    inspect_graph,
    listing,
    recommend,
    report,
    serve,
    train,
    update,
    validate,
)
from kgrec.cli.common import QUIET_WARNINGS, Formatter, model_registry, version
from kgrec.cli.threads import THREADS_HELP, set_threads, threads_arg
from kgrec.errors import KgrecError

#: The command modules, in the order ``kgrec --help`` lists them.
COMMANDS = (demo, inspect_graph, validate, train, evaluate, recommend, listing, explain, report, update, convert,
            generate, serve, benchmark)

_SIGPIPE_STATUS = 141  # what a shell reports for a process killed by SIGPIPE (128 + 13)
_QUIET_HELP = ("no progress lines (loading, fitting, validation epochs) and no progress bars on stderr; results, "
               "warnings and errors still print. An explicit --progress still shows the bars")
_OWN_THREADS = ("benchmark",)  # commands whose own --threads sets the threads of each fit


def build_parser() -> argparse.ArgumentParser:
    """The ``kgrec`` argument parser (one sub-parser per module of :data:`COMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="kgrec", formatter_class=Formatter,
        description="Knowledge-graph-augmented recommendation from RDF.",
        epilog="Run 'kgrec COMMAND --help' for the options of a command. Start with 'kgrec demo'.")
    parser.add_argument("--version", action="version", version=f"kgrec {version()}")
    parser.add_argument("--threads", metavar="N", dest="global_threads", type=threads_arg, default=None,
                        help=THREADS_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    known = ", ".join(sorted(model_registry()))
    for command in COMMANDS:
        command.add_parser(sub, known)
    for name, p in sub.choices.items():
        if name not in _OWN_THREADS:
            # also after the command; SUPPRESS keeps a value given before it
            p.add_argument("--threads", metavar="N", dest="global_threads", type=threads_arg,
                           default=argparse.SUPPRESS, help="torch threads (same as 'kgrec --threads N COMMAND')")
            p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                           help="no progress lines or bars (same as 'kgrec --quiet COMMAND')")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kgrec`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    A closed stdout (the reader of a pipe exited) ends any command quietly with status 141.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        return _stdout_closed()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(None if argv is None else list(argv))
        if extra and not getattr(args, "any_arguments", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version and usage errors: return the status instead of exiting
        sys.stdout.flush()  # --help | head: a closed pipe shows up here
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if getattr(args, "out", None) is None and args.command == "train":
        args.out = os.path.join("kgrec-out", args.model)
    common.quiet = args.quiet
    try:
        set_threads(args.global_threads)
        with warnings.catch_warnings():
            # torch's notes on its own sparse kernels say nothing a kgrec user can act on
            for message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            status = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows up here at the latest, not at interpreter exit
        return status
    except KgrecError as e:
        print(f"kgrec: error: {e}", file=sys.stderr)
        return 2
    finally:
        common.quiet = False


def _stdout_closed() -> int:
    """The reader of stdout went away (``kgrec recommend ... | head``): stop quietly, as a Unix tool does.

    stdout is pointed at the null device so that Python's flush at exit does not raise (and print) the same
    error again; the status is the shell's one for a process ended by SIGPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # stdout is no file (an in-process caller's buffer): nothing is flushed at exit
    return _SIGPIPE_STATUS
