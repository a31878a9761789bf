"""Every ```python block of README.md runs, and every `kgrec <command>` it names exists.

The Python blocks run in order in one namespace (the README reads as one session: a later block
uses the ``kg``, ``sp`` and ``rec`` of an earlier one), in a temporary working directory where
``kg_data`` points at the repository's, so the README's relative paths resolve against the repository
root and what a block writes (``my-model``...) stays out of the tree. A block holding the comment
``# doctest: slow`` (real datasets, the network or more than ~30 s) runs only with the ``slow``
marker; the blocks after it must not need what it defines.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from kgrec.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SLOW = "# doctest: slow"


def code_blocks(text: str) -> list[tuple[str, int, str]]:
    """``(language, first line number of the code, code)`` of every fenced block of ``text``."""
    blocks, lang, start, lines = [], None, 0, []
    for n, line in enumerate(text.splitlines(), 1):
        if lang is None and line.startswith("```"):
            lang, start, lines = line[3:].strip(), n + 1, []
        elif lang is not None and line.startswith("```"):
            blocks.append((lang, start, "\n".join(lines) + "\n"))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


PYTHON = [(line, code) for lang, line, code in code_blocks(README.read_text(encoding="utf-8")) if lang == "python"]


def test_the_block_parser_reads_fences():
    text = "a\n```python\nx = 1\ny = 2\n```\n\n```\nkgrec demo\n```\n```bash\nls\n```\n"
    assert code_blocks(text) == [("python", 3, "x = 1\ny = 2\n"), ("", 8, "kgrec demo\n"), ("bash", 11, "ls\n")]
    assert len(PYTHON) >= 5
    assert all(sum(marker in code for _, code in PYTHON) == 1 for marker, _ in AFTER)


# what some blocks leave behind, checked after them: (a line of the block, check of the namespace)
AFTER = [
    ('sp = kgrec.split(kg, "random", seed=2020)  ',
     lambda ns: len(ns["kg"].interactions) == 15 and ns["sp"].strategy == "random"
     and sorted(ns["rec"].users) == sorted(ns["kg"].users)),
    ('rec.update(kgrec.load("week2.ttl"))',
     lambda ns: "https://w3id.org/kgrec/data/toy/user/u7" in ns["rec"].users and len(ns["rec"].users) == 7),
    ('kg = kgrec.load("data.ttl"',
     lambda ns: ns["kg"].scenarios == ["rating", "tag"] and len(ns["kg"].interactions) == 48),
    ('store_kg = kgrec.load("toy-store")',
     lambda ns: (ns["store_kg"].num_users, ns["store_kg"].num_items, len(ns["store_kg"].interactions),
                 len(ns["store_kg"].triples)) == (6, 8, 15, 25) and ns["store_kg"].sources == ["toy-store"]),
]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The shared namespace and working directory of the README's Python blocks."""
    work = tmp_path_factory.mktemp("readme")
    (work / "kg_data").symlink_to(ROOT / "kg_data", target_is_directory=True)
    return {"dir": work, "namespace": {"__name__": "readme"}}


@pytest.mark.parametrize("line, code", [
    pytest.param(line, code, id=f"README.md:{line}", marks=[pytest.mark.slow] if SLOW in code else [])
    for line, code in PYTHON])
def test_python_block_runs(session, line, code, monkeypatch):
    monkeypatch.chdir(session["dir"])
    monkeypatch.setenv("KGREC_CACHE", str(session["dir"] / "cache"))
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f"README.md:{line}", "exec"), session["namespace"])  # noqa: S102
    for marker, check in AFTER:
        if marker in code:
            assert check(session["namespace"]), f"README.md:{line}: the block did not leave what it shows"


def shell_commands(text: str) -> list[str]:
    """The subcommand of every ``kgrec <command>`` (or ``-m kgrec <command>``) in the non-Python blocks."""
    found = []
    for lang, _, code in code_blocks(text):
        if lang in ("python", "toml"):
            continue
        for line in code.splitlines():
            found += re.findall(r"(?:^|&&\s*|-m\s+)kgrec\s+([a-z][a-z-]*)", line.strip())
    return list(dict.fromkeys(found))


COMMANDS = shell_commands(README.read_text(encoding="utf-8"))


def test_shell_blocks_name_commands():
    assert shell_commands("```\nkgrec demo && kgrec report x\ntorchrun -m kgrec train a\n```\n") == \
        ["demo", "report", "train"]
    assert {"demo", "train", "recommend", "evaluate"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_shell_command_exists(command):
    subcommands = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction").choices
    assert command in subcommands, f"README names 'kgrec {command}', which the parser does not have"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main([command, "--help"])
    assert code == 0 and out.getvalue().startswith(f"usage: kgrec {command}")


def repo_paths(text: str) -> list[tuple[int, str]]:
    """``(line, path)`` of every repository path a text names in backquotes or a Markdown link target
    (``kgrec/...``, ``benchmarks/...``, ``docs/...``, ``tests/...``, ``kg_data/...``), without anchors.
    """
    pattern = re.compile(r"[`(]((?:kgrec|benchmarks|docs|tests|kg_data)/[\w./+-]*[\w/])[`)#]")
    return [(n, m.group(1)) for n, line in enumerate(text.splitlines(), 1) for m in pattern.finditer(line)]


def test_repo_path_finder_known_answer():
    text = "see `kgrec/models/hybrid/update.py` and [x](benchmarks/results/a.md#top)\nnot kgrec/x.py or `<dir>`"
    assert repo_paths(text) == [(1, "kgrec/models/hybrid/update.py"), (1, "benchmarks/results/a.md")]


@pytest.mark.parametrize("doc", ["README.md", "benchmarks/RESULTS.md", "docs/protocol.md"])
def test_every_repository_path_a_document_names_exists(doc):
    path = ROOT / doc
    base = path.parent
    missing = [(n, p) for n, p in repo_paths(path.read_text(encoding="utf-8"))
               if not (ROOT / p).exists() and not (base / p).exists()]
    assert not missing, f"{doc} names paths that do not exist (line, path): {missing}"
