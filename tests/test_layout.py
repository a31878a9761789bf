"""The package's architecture as checkable facts: imports flow one way, and no module cycle exists.

The import graph is built from the source (``ast``), counting every ``import`` statement wherever it sits,
function-local ones included: a cycle hidden inside a function is still a cycle. Each module belongs to a
layer (``LAYERS``, the order README "Architecture" gives); a module may import its own layer and the ones below.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "kgrec"

#: Bottom to top. A module's layer is the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kgrec.errors", "kgrec.checks", "kgrec.memory", "kgrec.version"),
    ("kgrec.data",),
    ("kgrec.nn",),
    ("kgrec.evaluation",),
    ("kgrec.training",),
    ("kgrec.models",),
    ("kgrec.dynamics",),
    ("kgrec.explain", "kgrec.ann"),
    ("kgrec.api",),
    ("kgrec.reports",),
    ("kgrec.cli", "kgrec.serve"),
    ("kgrec", "kgrec.__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> nx.DiGraph:
    """Module -> kgrec module it imports (``from kgrec.x import y`` counts ``kgrec.x.y`` when that is a module)."""
    mods = modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:  # `import kgrec.data.graph` counts as kgrec.data.graph
                    t = t.rpartition(".")[0]
                if t.startswith("kgrec") and t != name:
                    g.add_edge(name, t)
    return g


def layer(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"module {module} belongs to no layer of LAYERS: add it where it belongs"
    return rank


def test_every_module_has_a_layer():
    for m in modules():
        layer(m)


def test_no_import_cycle():
    g = import_graph()
    cycles = list(nx.simple_cycles(g))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_imports_flow_downwards_only():
    upward = [(a, b) for a, b in import_graph().edges if layer(b) > layer(a)]
    assert upward == [], f"modules importing a higher layer: {upward}"


def test_the_graph_sees_function_local_imports(tmp_path):
    """The checker itself: an import inside a function is an edge (a known right answer from the source)."""
    g = import_graph()
    # kgrec.cli.common.log imports kgrec.training.distributed inside the function, and only there
    assert g.has_edge("kgrec.cli.common", "kgrec.training.distributed")
    assert g.has_edge("kgrec.cli.main", "kgrec.cli.train")


#: a module a newcomer can read in one sitting, a function that fits on a screen
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 600, 80


def oversized(path: Path) -> tuple[int, list[tuple[str, int]]]:
    """``(lines of the module, [(function, lines) over the limit]``; a function's lines run from its
    ``def`` to its last line, docstring included, nested functions counted in their parent too.
    """
    src = path.read_text()
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(src))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    return src.count("\n"), long


def test_no_module_over_600_lines_and_no_function_over_80():
    too_big = {m: n for m, p in modules().items() if (n := oversized(p)[0]) > MAX_MODULE_LINES}
    too_long = {m: fs for m, p in modules().items() if (fs := oversized(p)[1])}
    assert too_big == {}, f"modules over {MAX_MODULE_LINES} lines: {too_big}"
    assert too_long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_the_size_check_measures_what_it_says(tmp_path):
    """The checker itself on a file of known sizes: 3 lines of a short function, 82 of a long one."""
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    path = tmp_path / "m.py"
    path.write_text(f"def short():\n    '''Doc.'''\n    return 1\n\n\ndef long():\n{body}\n    return x0\n")
    lines, long = oversized(path)
    assert lines == 3 + 2 + 1 + 80 + 1 and long == [("long", 82)]
