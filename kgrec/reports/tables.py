"""Result tables and files shared by the CLI and the benchmarks: Markdown tables, JSON + Markdown output.

Nothing here knows about models or metrics: a table is a list of ``dict`` rows and a list of
columns, a result file is any JSON-able payload. Files are written atomically (a temporary file in
the same folder, then :func:`os.replace`), so a reader never sees half a result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "write_results", "to_jsonable", "atomic_write_text", "relative_paths"]

Columns = Sequence["str | tuple[str, str]"] | Mapping[str, str]


def _columns(columns: Columns) -> list[tuple[str, str]]:
    """``(key, header)`` pairs from keys, ``(key, header)`` pairs or a ``{key: header}`` mapping."""
    if isinstance(columns, Mapping):
        return [(str(k), str(h)) for k, h in columns.items()]
    if isinstance(columns, str):
        raise TypeError(f"'columns' must be a sequence of column keys, not one string (got {columns!r})")
    out = []
    for c in columns:
        if isinstance(c, str):
            out.append((c, c))
        elif isinstance(c, (tuple, list)) and len(c) == 2:
            out.append((str(c[0]), str(c[1])))
        else:
            raise TypeError(f"'columns' entries must be a key or a (key, header) pair (got {c!r})")
    return out


def _cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        return format(v, floatfmt) if math.isfinite(v) else str(v)
    # a '|' would end the cell and a newline the row
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def markdown_table(rows: Iterable[Mapping[str, Any]], columns: Columns, floatfmt: str = ".4f") -> str:
    """A GitHub-flavoured Markdown table, padded so that it also reads well in a terminal.

    Args:
        rows: one mapping per row; a key missing from a row gives an empty cell.
        columns: the columns in order: keys (the key is the header), ``(key, header)`` pairs, or
            a ``{key: header}`` mapping.
        floatfmt: format spec of non-integer numbers (default ``".4f"``); integers are written
            as they are, ``None`` as an empty cell, booleans as ``yes``/``no``.

    Returns:
        The table, header and separator included, one row per line, without a final newline.
        Columns holding only numbers (and empty cells) are right-aligned.

    Example::

        >>> print(markdown_table([{"model": "ease", "ndcg@10": 0.12345}], ["model", ("ndcg@10", "NDCG@10")]))
        | model | NDCG@10 |
        |:------|--------:|
        | ease  |  0.1235 |
    """
    cols = _columns(columns)
    if not cols:
        raise ValueError("'columns' must name at least one column (got none)")
    rows = list(rows)
    cells = [[_cell(r.get(k), floatfmt) for k, _ in cols] for r in rows]
    numeric = [all(r.get(k) is None or _is_number(r.get(k)) for r in rows) and any(_is_number(r.get(k)) for r in rows)
               for k, _ in cols]
    headers = [_cell(h, floatfmt) for _, h in cols]
    # a separator needs at least three characters (':--' / '--:')
    widths = [max([3, len(h)] + [len(row[j]) for row in cells]) for j, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "| " + " | ".join(parts) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if num else (":" + "-" * (w + 1))
                         for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(headers), sep, *(line(c) for c in cells)])


def to_jsonable(obj: Any) -> Any:
    """``obj`` made of JSON types only.

    Tensors and arrays become lists, paths strings, dataclasses dicts, tuples and sets lists (sets
    sorted); non-finite floats become ``None`` because strict JSON has no NaN.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # torch.Tensor, numpy arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON (got {obj!r})")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


#: an absolute POSIX path not preceded by a word character, ':' or '/' (so URLs and "s/epoch" stay)
_ABS_PATH = re.compile(r"(?<![\w.:/~])/[\w.+-]+(?:/[\w.+-]*)*")


def relative_paths(text: str, base: str | os.PathLike | None = None) -> str:
    """``text`` with every absolute path under an existing top-level folder (``/work/...``,
    ``/tmp/...``) rewritten relative to ``base`` (default: the current folder, the repository root
    when a benchmark runs): results name no machine's paths and read the same on every checkout.
    """
    base = os.fspath(base) if base is not None else os.getcwd()

    def rel(m: re.Match) -> str:
        path = m.group(0)
        top = "/" + path.split("/")[1]
        return os.path.relpath(path, base) if top != "/" and os.path.isdir(top) else path

    return _ABS_PATH.sub(rel, text)


def write_results(out_dir: str | os.PathLike, name: str, payload: Mapping[str, Any],
                  rows: Iterable[Mapping[str, Any]], columns: Columns, *, title: str | None = None,
                  text: str | None = None, floatfmt: str = ".4f",
                  relative_to: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (``payload``) and ``<out_dir>/<name>.md`` (a table of ``rows``).

    Args:
        out_dir: the folder, created when missing.
        name: the file stem, e.g. ``"results"``; no path separators.
        payload: everything to keep, written with :func:`to_jsonable` (NaN -> ``null``).
        rows: the table's rows, as in :func:`markdown_table`.
        columns: the table's columns, as in :func:`markdown_table`.
        title: the Markdown heading (default: ``name``).
        text: Markdown put between the heading and the table (e.g. what data and split).
        floatfmt: format spec of non-integer numbers in the table (default ``".4f"``).
        relative_to: write every absolute path in ``payload`` and ``text`` relative to this folder
            (:func:`relative_paths`): committed benchmark results name no machine's folders
            (default ``None``: paths as given, e.g. a user's own output of ``kgrec demo``).

    Returns:
        ``(json_path, md_path)``.
    """
    if not name or any(s in name for s in ("/", "\\", os.sep)) or name in (".", ".."):
        raise ValueError(f"'name' must be a file stem without path separators (got {name!r})")
    out = Path(out_dir)
    rel = (lambda t: relative_paths(t, relative_to)) if relative_to is not None else (lambda t: t)
    body = rel(json.dumps(to_jsonable(payload), indent=2, ensure_ascii=False, allow_nan=False)) + "\n"
    md = [f"# {title if title is not None else name}", ""]
    if text:
        md += [rel(text.rstrip()), ""]
    md += [markdown_table(rows, columns, floatfmt=floatfmt), ""]
    json_path = atomic_write_text(out / f"{name}.json", body)
    md_path = atomic_write_text(out / f"{name}.md", "\n".join(md))
    return json_path, md_path
