"""Limits that end in a clear error while a hostile file is read, never a crash or a long wait.

Each input is generated here: deeply nested RDF/XML, over-long literals (one line, or one
triple-quoted string over many lines), a gzip expansion bomb. Each must end in
:class:`InputLimitError` naming the file, the line where known, the limit and the option that
raises it, within a few seconds; raising the option lets the same input through with the exact
literal length.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import kgrec
from kgrec.cli import main
from kgrec.data.rdf import read_ids, read_triples
from kgrec.data.safety import DEFAULT_MAX_LINE_BYTES, EXPANSION_FLOOR, InputGuard, Limits, _LongStrings
from kgrec.errors import InputLimitError, KgrecError

ROOT = Path(__file__).resolve().parents[1]
EX = "http://ex.org/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
TITLE = "https://w3id.org/kgrec/vocab#title"


def quiet_load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kgrec.load(*args, **kwargs)


# ----------------------------------------------------------------------------- RDF/XML depth
def nested_xml(path: Path, pairs: int) -> Path:
    """``pairs`` nested rdf:Description/e:p elements, one element per line (depth 1 + 2 * pairs)."""
    with open(path, "w") as f:
        f.write('<?xml version="1.0"?>\n')
        f.write(f'<rdf:RDF xmlns:rdf="{RDF_NS}" xmlns:e="{EX}">\n')  # line 2, depth 1
        for k in range(pairs):
            f.write(f'<rdf:Description rdf:about="{EX}n{k}">\n<e:p>\n')
        f.write("x\n")
        f.write("</e:p>\n</rdf:Description>\n" * pairs)
        f.write("</rdf:RDF>\n")
    return path


def test_deep_rdfxml_is_refused_within_seconds(tmp_path):
    deep = nested_xml(tmp_path / "deep.rdf", 50_000)  # 1e5 nested elements
    t0 = time.perf_counter()
    # the element at depth 257 opens on line 2 + 256
    with pytest.raises(InputLimitError, match=r"deep\.rdf:258: XML elements nest more than max_xml_depth=256 deep; "
                                              r"raise the limit \(kgrec\.load\(\.\.\., max_xml_depth=N\), or "
                                              r"--max-xml-depth N\) if the file is trusted"):
        read_triples(deep)
    assert time.perf_counter() - t0 < 10.0


def test_xml_depth_limit_raised_lets_the_document_through(tmp_path):
    f = nested_xml(tmp_path / "d.rdf", 150)  # depth 301
    with pytest.raises(InputLimitError, match=r"d\.rdf:258: .*max_xml_depth=256"):
        quiet_load(f)
    with pytest.raises(InputLimitError, match=r"d\.rdf:12: .*max_xml_depth=10 deep"):
        quiet_load(f, max_xml_depth=10)
    triples = read_triples(f, limits=Limits(max_xml_depth=301))
    assert len(triples) == 150
    literals = [(s, o.value) for s, _, o in triples if not isinstance(o, str)]
    assert literals == [(f"{EX}n149", "\nx\n")]
    assert {(s, o) for s, _, o in triples if isinstance(o, str)} == {(f"{EX}n{k}", f"{EX}n{k + 1}") for k in range(149)}


# ----------------------------------------------------------------------------- long literals
def long_nt(path: Path, n: int) -> Path:
    path.write_bytes(f"<{EX}u> <{EX}p> <{EX}i> .\n<{EX}i> <{TITLE}> \"".encode() + b"x" * n + b'" .\n')
    return path


def long_ttl(path: Path, n: int, width: int | None = None) -> Path:
    """A Turtle literal of ``n`` characters: one line, or a triple-quoted one of ``width``-byte lines."""
    head = f"<{EX}u> <{EX}p> <{EX}i> .\n<{EX}i> <{TITLE}> ".encode()
    if width is None:
        path.write_bytes(head + b'"' + b"x" * n + b'" .\n')
    else:
        body = (b"x" * (width - 1) + b"\n") * (n // width) + b"y" * (n % width)
        path.write_bytes(head + b'"""' + body + b'""" .\n')
    return path


@pytest.mark.parametrize("maker, name", [(long_nt, "big.nt"), (long_ttl, "big.ttl")])
def test_long_line_is_refused_while_reading(tmp_path, maker, name):
    f = maker(tmp_path / name, 5_000_000)
    t0 = time.perf_counter()
    with pytest.raises(InputLimitError, match=rf"{name.replace('.', '[.]')}:2: the line holds more than "
                                              r"max_line_bytes=1000000 bytes \(an over-long literal or IRI\?\); raise "
                                              r"the limit \(kgrec\.load\(\.\.\., max_line_bytes=N\), or "
                                              r"--max-line-bytes N\)"):
        quiet_load(f, max_line_bytes=1_000_000)
    assert time.perf_counter() - t0 < 10.0
    # raised limits: the same literal, whole
    triples = read_triples(f, limits=Limits(max_line_bytes=6_000_000, max_literal_chars=5_000_000))
    assert [len(o.value) for _, _, o in triples if not isinstance(o, str)] == [5_000_000]


def test_long_line_is_refused_in_a_gzip_file_too(tmp_path):
    f = long_nt(tmp_path / "big.nt", 3_000_000)
    gz = tmp_path / "big.nt.gz"
    gz.write_bytes(gzip.compress(f.read_bytes(), compresslevel=1))
    with pytest.raises(InputLimitError, match=r"big\.nt\.gz:2: the line holds more than max_line_bytes=1000000"):
        read_ids(gz, limits=Limits(max_line_bytes=1_000_000, max_expansion_ratio=10**6))


def test_triple_quoted_literal_over_many_lines_is_refused(tmp_path):
    f = long_ttl(tmp_path / "long.ttl", 5_000_000, width=100)
    t0 = time.perf_counter()
    with pytest.raises(InputLimitError, match=r"long\.ttl:2: a triple-quoted string starting on this line holds more "
                                              r"than max_line_bytes=1000000 bytes; raise the limit "
                                              r"\(kgrec\.load\(\.\.\., max_line_bytes=N\), or --max-line-bytes N\)"):
        quiet_load(f, max_line_bytes=1_000_000)
    assert time.perf_counter() - t0 < 10.0
    triples = read_triples(f, limits=Limits(max_line_bytes=5_000_000, max_literal_chars=5_000_000))
    (value,) = [o.value for _, _, o in triples if not isinstance(o, str)]
    assert len(value) == 5_000_000 and value.count("\n") == 50_000


TRICKY_TTL = "\n".join([
    '@prefix ex: <http://ex.org/> .',
    '# a comment with """ and ' + "''' in it",
    r"""ex:a ex:p "short \"\"\" escaped", 'it\'\'\'s' .""",
    'ex:a ex:q """long one',
    'with "quotes" and ' + "'''single'''" + r' and \""" inside""" .',
    "ex:b ex:r <http://ex.org/x#'''> .",
    "ex:a ex:s '''second",
    'long""" one\' two\'\' three' + "''' .",
    'ex:a ex:t """%s""" .',
    ""])


@pytest.mark.parametrize("seed", range(5))
def test_long_string_tracking_follows_tokens_across_any_chunking(tmp_path, seed):
    """The tokeniser measures each triple-quoted string exactly, whatever the chunk boundaries."""
    big = "z" * 500
    data = (TRICKY_TTL % big).encode()
    f = tmp_path / "t.ttl"
    f.write_bytes(data)  # valid Turtle: its literals, as the parser reads them
    assert sorted(len(o.value) for _, _, o in read_triples(f) if not isinstance(o, str)) == [6, 17, 31, 54, 500]
    rng = random.Random(seed)

    def run(limit: int) -> None:
        tracker = _LongStrings(limit, "t.ttl")
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 40)
            tracker.feed(data[pos:pos + step])
            pos += step
        assert tracker.delim is None and tracker.line == TRICKY_TTL.count("\n") + 1

    run(500)  # the longest long string holds exactly 500 bytes
    with pytest.raises(InputLimitError, match=r"t\.ttl:9: a triple-quoted string"):
        run(499)


def test_long_string_limit_counts_each_string_on_its_own():
    tracker = _LongStrings(10, "t.ttl")
    tracker.feed(b'<a> <b> """0123456789""", """0123456789""" .\n')
    assert tracker.delim is None
    with pytest.raises(InputLimitError, match=r"t\.ttl:2: "):
        tracker.feed(b'<a> <b> """0123456789\n0""" .\n')


def test_guard_line_check_with_chunks_larger_than_the_limit():
    data = b"a" * 10 + b"\n" + b"b" * 30 + b"\n" + b"c" * 5 + b"\n"
    guard = io.BufferedReader(InputGuard(io.BytesIO(data), Limits(max_line_bytes=30), "f.nt", "ntriples"))
    assert guard.read() == data
    guard = io.BufferedReader(InputGuard(io.BytesIO(data), Limits(max_line_bytes=29), "f.nt", "ntriples"))
    with pytest.raises(InputLimitError, match=r"f\.nt:2: the line holds more than max_line_bytes=29 bytes"):
        guard.read()


MEMORY_SCRIPT = textwrap.dedent('''
    import gzip, resource, sys, warnings
    sys.path.insert(0, sys.argv[1])
    import kgrec
    from kgrec.errors import InputLimitError
    path = sys.argv[2]
    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    # room for the guard's buffers (max_line_bytes and a few read steps), not for a 200 MB literal
    cap = vm_bytes() + 150 * 1024**2
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kgrec.load(path, max_expansion_ratio=10**6)
    except InputLimitError as e:
        print("REFUSED", e)
    except MemoryError:
        print("MEMORY")
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status")
@pytest.mark.parametrize("name", ["huge.nt.gz", "huge.ttl.gz"])
def test_200mb_literal_is_refused_without_being_built(tmp_path, name):
    """Under an address-space cap far below the literal's size, the load ends in InputLimitError."""
    path = tmp_path / name
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(f"<{EX}i> <{TITLE}> \"".encode())
        chunk = b"x" * (1 << 20)
        for _ in range(200):
            f.write(chunk)
        f.write(b'" .\n')
    assert path.stat().st_size < 2_000_000
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(ROOT), str(path)], capture_output=True,
                         text=True, timeout=120)
    assert time.perf_counter() - t0 < 60.0
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"REFUSED {path}:1: the line holds more than max_line_bytes={DEFAULT_MAX_LINE_BYTES} "
                                 "bytes"), out.stdout + out.stderr[-2000:]


# ----------------------------------------------------------------------------- expansion bombs
def gzip_bomb(path: Path, gib: int) -> Path:
    """``gib`` GiB of one repeated N-Triples comment line, gzipped in a few seconds: the compressed
    stream of one 1 MiB chunk is repeated (gzip members concatenate).
    """
    chunk = (b"# " + b"0" * 1021 + b"\n") * 1024  # 1 MiB of comment lines
    member = gzip.compress(chunk * 64, compresslevel=9)  # 64 MiB
    with open(path, "wb") as f:
        for _ in range(gib * 16):
            f.write(member)
    return path


def test_gzip_bomb_is_refused_within_seconds_naming_sizes(tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.nt.gz", 4)  # 4 GiB of text
    assert bomb.stat().st_size < 10_000_000
    t0 = time.perf_counter()
    with pytest.raises(InputLimitError, match=r"bomb\.nt\.gz: the file expands from \d+ compressed bytes to more than "
                                              r"\d+ bytes, over max_expansion_ratio=200 \(a decompression bomb\?\); "
                                              r"raise the limit \(kgrec\.load\(\.\.\., max_expansion_ratio=N\), or "
                                              r"--max-expansion-ratio N\) if the file is trusted") as e:
        quiet_load(bomb)
    assert time.perf_counter() - t0 < 10.0
    compressed, expanded = map(int, re.findall(r"(\d+) (?:compressed )?bytes", str(e.value))[:2])
    assert expanded > EXPANSION_FLOOR and expanded > 200 * compressed


def test_expansion_ratio_raised_lets_a_repetitive_file_through(tmp_path):
    line = f"<{EX}u> <{EX}p> <{EX}i> .\n".encode()
    n = EXPANSION_FLOOR // len(line) + 1000
    f = tmp_path / "rep.nt.gz"
    f.write_bytes(gzip.compress(line * n, compresslevel=9))
    with pytest.raises(InputLimitError, match=r"rep\.nt\.gz: the file expands .* max_expansion_ratio=200"):
        read_triples(f)
    assert len(read_triples(f, limits=Limits(max_expansion_ratio=10**5))) == n


def test_small_repetitive_file_is_never_refused_for_its_ratio(tmp_path):
    line = f"<{EX}u> <{EX}p> <{EX}i> .\n".encode()
    f = tmp_path / "small.nt.gz"
    f.write_bytes(gzip.compress(line * 10_000, compresslevel=9))
    assert f.stat().st_size * 200 < len(line) * 10_000  # over the ratio, under the floor
    assert len(read_triples(f)) == 10_000


# ----------------------------------------------------------------------------- defaults and options
def test_shipped_data_loads_with_default_limits():
    kg = quiet_load(ROOT / "kg_data/movielens-small/movielens-small.nt.gz")
    assert (kg.num_users, kg.num_items) == (610, 9742)
    kg = quiet_load(ROOT / "kg_data/toy/toy.ttl")
    assert (kg.num_users, kg.num_items) == (6, 8)
    kg = quiet_load(ROOT / "kg_data/toy/toy-schema.ttl", mapping="schema-org")
    assert (kg.num_users, kg.num_items) == (6, 8)


@pytest.mark.parametrize("option", ["max_line_bytes", "max_xml_depth", "max_expansion_ratio"])
def test_limit_options_must_be_positive(option):
    with pytest.raises(KgrecError, match=rf"'{option}' must be a positive integer \(got 0\)"):
        quiet_load(ROOT / "kg_data/toy/toy.ttl", **{option: 0})


def test_cli_flags_reach_the_loader(tmp_path, capsys):
    f = nested_xml(tmp_path / "d.rdf", 10)  # depth 21
    assert main(["validate", str(f), "--max-xml-depth", "5"]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"invalid: {f}:7: XML elements nest more than max_xml_depth=5 deep; raise the limit "
                          "(kgrec.load(..., max_xml_depth=N), or --max-xml-depth N) if the file is trusted")
