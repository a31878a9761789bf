"""Reading dataset files as their publishers ship them: delimited rows and CSV tables, checked.

Every malformed row raises :class:`~kgrec.errors.SourceFormatError` naming the file and line; a
missing file raises :class:`~kgrec.errors.KgrecError` naming it. The underscore names are shared
by the converters of this package.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from kgrec.errors import KgrecError, SourceFormatError


def _need(path: Path) -> Path:
    if not path.is_file():
        raise KgrecError(f"'{path}' is missing: the dataset folder does not hold the expected file")
    return path


def _read_text(path: Path) -> str:
    data = _need(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # The GroupLens MovieLens-100K files are ISO-8859-1.
        return data.decode("latin-1")


def _rows(path: Path, sep: str | None, n: int, header: bool = False, what: str = ""):
    """Yield ``(line_no, fields)`` of a delimited text file with exactly ``n`` fields per row.

    ``sep=None`` splits on any whitespace. Blank lines are skipped; CRLF is accepted.
    """
    # split("\n"), not splitlines(): the latter also breaks at \x85, \x1c, U+2028... inside fields.
    lines = _read_text(path).split("\n")
    for no, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if header and no == 1:
            continue
        if not line.strip():
            continue
        fields = line.split(sep) if sep is not None else line.split()
        if sep == "\t":
            fields = [f.strip() for f in fields]
        if len(fields) != n:
            raise SourceFormatError(f"expected {n} fields ({what}), found {len(fields)}", path, no)
        yield no, fields


def _int(value: str, path: Path, line: int, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SourceFormatError(f"'{name}' must be an integer (got {value!r})", path, line) from None


def _decimal(value: str, path: Path, line: int, name: str) -> str:
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", value.strip()):
        raise SourceFormatError(f"'{name}' must be a decimal number (got {value!r})", path, line)
    return value.strip()


def _csv_dicts(path: Path, columns: tuple[str, ...]):
    """Yield ``(line_no, row dict)`` of a CSV file whose header holds ``columns``."""
    with open(_need(path), newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise SourceFormatError("empty file, expected a header row", path, 1)
        # FranKGraphBench headers carry types ("item_id::string"); MovieLens ones do not.
        names = [h.split("::", 1)[0].strip() for h in header]
        missing = [c for c in columns if c not in names]
        if missing:
            raise SourceFormatError(f"header lacks column(s) {missing} (found {names})", path, 1)
        for row in reader:
            if not row:
                continue
            if len(row) != len(names):
                raise SourceFormatError(f"expected {len(names)} fields, found {len(row)}", path,
                                        reader.line_num)
            yield reader.line_num, dict(zip(names, row))
