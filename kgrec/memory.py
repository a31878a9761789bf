"""Memory budgets: what this process may still allocate, and a clear error before a fit exceeds it.

Closed-form models (EASE, ItemKNN) allocate item x item arrays whose size follows from the
catalogue alone, so their peak can be estimated before anything is allocated. :func:`check_memory`
compares such an estimate with :func:`available_memory_bytes` (or an explicit budget) and raises
:class:`kgrec.errors.ResourceLimitError` naming the estimate, the limit and a way out, instead of
letting the process be killed (out of memory) or fail deep inside a numerical library.
"""

from __future__ import annotations

import resource

from kgrec.errors import ResourceLimitError

__all__ = ["available_memory_bytes", "check_memory", "format_bytes"]

GIB = 1024**3


def _proc_kib(path: str, key: str) -> int | None:
    """The ``key:`` field (kB) of a ``/proc`` status-like file, in bytes; ``None`` when unreadable."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory_bytes() -> int | None:
    """Bytes this process may still allocate, ``None`` when unknown.

    The smaller of: the address-space room under the ``RLIMIT_AS`` soft limit when one is set (the
    limit minus the process's current virtual size, ``VmSize``), and the machine's available RAM
    (``MemAvailable`` of ``/proc/meminfo``, or ``psutil`` when installed elsewhere).
    """
    bounds = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _proc_kib("/proc/self/status", "VmSize") or 0
        bounds.append(max(0, soft - used))
    ram = _proc_kib("/proc/meminfo", "MemAvailable")
    if ram is None:
        try:
            import psutil  # optional: only where /proc is missing

            ram = int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - psutil absent or unsupported here: RAM unknown
            ram = None
    if ram is not None:
        bounds.append(ram)
    return min(bounds) if bounds else None


def format_bytes(n: float) -> str:
    """``n`` bytes as GiB with two decimals (e.g. ``"1.49 GiB"``)."""
    return f"{n / GIB:.2f} GiB"


def check_memory(estimate: int, what: str, way_out: str, max_memory_gb: float | None = None) -> None:
    """Raise before allocating when ``estimate`` bytes do not fit.

    Args:
        estimate: the peak bytes the step will allocate.
        what: the step, for the message (e.g. ``"EASE fit of 60000 items (float32)"``).
        way_out: what the user can change (a smaller catalogue, another argument...).
        max_memory_gb: an explicit budget in GiB; ``None`` = what :func:`available_memory_bytes`
            reports (no check when that is unknown).

    Raises:
        ResourceLimitError: the estimate exceeds the budget (the message gives both and
            ``way_out``), or ``max_memory_gb`` is not a positive number.
    """
    if max_memory_gb is not None:
        if isinstance(max_memory_gb, bool) or not isinstance(max_memory_gb, (int, float)) or not max_memory_gb > 0:
            raise ResourceLimitError(f"'max_memory_gb' must be a positive number (got {max_memory_gb!r})")
        limit, source = int(max_memory_gb * GIB), f"max_memory_gb={max_memory_gb:g}"
    else:
        limit, source = available_memory_bytes(), "available memory (RLIMIT_AS / MemAvailable)"
    if limit is None or estimate <= limit:
        return
    need_gb = -(-estimate // GIB) + 1  # the estimate rounded up, plus room for the rest of the process
    raise ResourceLimitError(
        f"{what} needs about {format_bytes(estimate)} ({estimate} bytes) but only {format_bytes(limit)} "
        f"({limit} bytes) is available [{source}]: {way_out}, or run on a machine with at least "
        f"{need_gb} GiB free")
