"""The one set of argument checks every layer uses: a value of the wrong type or range ends in an
error that names the argument and shows the value, raised as the caller's error class (a
:class:`~kgrec.errors.KgrecError` subclass for user input, ``ValueError`` in the torch modules of
:mod:`kgrec.nn`, which are usable without the rest of the package).
"""

from __future__ import annotations

import numbers

from kgrec.errors import KgrecError

__all__ = ["check_int", "check_rate"]


def check_int(value, name: str, low: int = 1, error: type[Exception] = KgrecError) -> int:
    """``value`` as an ``int`` ``>= low`` (bools refused), else ``error`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise error(f"'{name}' must be {what} (got {value!r})")
    return int(value)


def check_rate(value, name: str, error: type[Exception] = KgrecError) -> float:
    """``value`` as a float in ``[0, 1)`` (a dropout or a probability), else ``error`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise error(f"'{name}' must be a number in [0, 1) (got {value!r})")
    return float(value)
