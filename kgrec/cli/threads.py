"""Torch thread counts: ``--threads``, ``$KGREC_THREADS``, ``OMP_NUM_THREADS`` or the idle cores."""

from __future__ import annotations

import argparse
import math
import os

from kgrec.errors import KgrecError

THREADS_ENV = "KGREC_THREADS"  # torch threads when --threads is not given


MAX_DEFAULT_THREADS = 4


def threads_value(raw: str, where: str) -> int:
    """``raw`` as a positive thread count; ``where`` (the option or variable) names it in the error."""
    try:
        n = int(raw.strip())
    except ValueError:
        n = 0
    if n <= 0:
        raise KgrecError(f"'{where}' must be a positive integer number of threads (got {raw!r})")
    return n


def threads_arg(text: str) -> int:
    try:
        return threads_value(text, "--threads")
    except KgrecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def default_threads() -> int:
    """The torch thread count when neither ``--threads`` nor ``KGREC_THREADS`` is given.

    The cores this process may run on (its CPU affinity) minus the one-minute load average, between 1
    and 4. torch's own default is one thread per core: when other jobs already keep the cores busy, its
    threads wait on each other at every parallel kernel and an epoch runs many times slower than with one
    thread. The cap leaves room for other runs on a large machine. The count follows the load, so runs
    that must be repeatable to the last bit (or timed) fix it with ``--threads``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(MAX_DEFAULT_THREADS, int(math.floor(cores - busy))))


def set_threads(option: int | None) -> int | None:
    """Set torch's intra-op (and, while still allowed, inter-op) threads before any work.

    ``option`` (``--threads``) wins over ``$KGREC_THREADS``; without either, ``OMP_NUM_THREADS`` (which torch
    reads itself) is left in charge, else :func:`default_threads`. Returns the count set, or ``None``.

    Raises:
        KgrecError: ``KGREC_THREADS`` is not a positive integer.
    """
    import torch

    n = option
    if n is None and os.environ.get(THREADS_ENV, "").strip():
        n = threads_value(os.environ[THREADS_ENV], THREADS_ENV)
    if n is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            return None
        n = default_threads()
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:  # allowed once per process, before any inter-op work: a second main() in one process keeps it
            torch.set_num_interop_threads(n)
        except RuntimeError:
            pass
    return n


THREADS_HELP = (f"torch CPU threads, set before any work; overrides ${THREADS_ENV}. Default: ${THREADS_ENV}, "
                 "else OMP_NUM_THREADS when set, else the idle cores (cores available to kgrec minus the "
                 f"1-minute load average), at least 1 and at most {MAX_DEFAULT_THREADS}. torch alone takes every "
                 "core: when other jobs keep them busy, its threads wait on each other at every step and "
                 "training runs many times slower than with one thread")
