"""The benchmark scripts measure their own checkout's kgrec, never an installed copy of another one.

An editable install points ``import kgrec`` at whichever checkout installed it; a script run from a
second checkout (a clean worktree at the commit being measured) would otherwise time and score that
other checkout's code while its results name this one's commit.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _first_line(tree: ast.Module, match) -> int | None:
    lines = [n.lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and match(n)]
    return min(lines) if lines else None


def _is_kgrec(n) -> bool:
    names = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
    return any(x == "kgrec" or x.startswith("kgrec.") for x in names)


def _is_common(n) -> bool:
    return (isinstance(n, ast.ImportFrom) and n.module == "common") or (
        isinstance(n, ast.Import) and any(a.name == "common" for a in n.names))


def test_every_script_imports_common_before_kgrec():
    late = []
    for path in sorted(BENCH.glob("*.py")):
        tree = ast.parse(path.read_text())
        common, kgrec = _first_line(tree, _is_common), _first_line(tree, _is_kgrec)
        if common is not None and kgrec is not None and kgrec < common:
            late.append(path.name)
    assert late == [], f"scripts importing kgrec before common (they would measure an installed kgrec): {late}"


def _fake_kgrec(tmp_path: Path) -> Path:
    fake = tmp_path / "elsewhere"
    (fake / "kgrec").mkdir(parents=True)
    (fake / "kgrec" / "__init__.py").write_text("OTHER = True\n")
    return fake


def test_common_puts_this_checkout_first_even_over_an_earlier_path(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(_fake_kgrec(tmp_path)))
    code = "import sys; sys.path.insert(0, 'benchmarks'); import common, kgrec; print(kgrec.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == ROOT / "kgrec" / "__init__.py"


def test_common_refuses_a_kgrec_imported_from_elsewhere(tmp_path):
    fake = _fake_kgrec(tmp_path)
    code = (f"import sys; sys.path.insert(0, {str(fake)!r}); import kgrec; sys.path.insert(0, 'benchmarks'); "
            "import common")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    assert f"kgrec was imported from '{fake}', not from this checkout ('{ROOT}')" in out.stderr
