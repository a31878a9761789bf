"""A real Oxigraph SPARQL server for tests: the ``oxigraph`` CLI from PyPI, started on 127.0.0.1.

Tests that read a graph from a SPARQL endpoint or post events to one talk to this process over
HTTP, exactly as a user's application talks to their own Oxigraph (or Fuseki) server. The server
gets a free port, a store directory under the test's ``tmp_path`` and is killed when the test ends.
Tests skip (not fail) where the ``oxigraph`` binary is missing, i.e. without the ``serve`` extra.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest


@dataclass(frozen=True)
class OxigraphServer:
    """A running server: ``query_url`` answers SPARQL queries, ``update_url`` SPARQL updates,
    ``store_url`` the graph store protocol (``?default`` or ``?graph=IRI``).
    """

    base_url: str
    location: Path
    process: subprocess.Popen

    @property
    def query_url(self) -> str:
        return f"{self.base_url}/query"

    @property
    def update_url(self) -> str:
        return f"{self.base_url}/update"

    @property
    def store_url(self) -> str:
        return f"{self.base_url}/store"

    def load(self, data: bytes, content_type: str = "application/n-triples") -> None:
        """Add ``data`` to the default graph through the graph store protocol (POST appends)."""
        req = urllib.request.Request(f"{self.store_url}?default", data=data, method="POST",
                                     headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"oxigraph load failed: HTTP {resp.status}")

    def count(self) -> int:
        """Number of triples in the default graph."""
        query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        req = urllib.request.Request(self.query_url, data=query.encode(), method="POST",
                                     headers={"Content-Type": "application/sparql-query",
                                              "Accept": "text/csv"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.read().decode().split()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def oxigraph_server(location: Path, timeout: float = 20.0, union_default_graph: bool = False
                    ) -> Iterator[OxigraphServer]:
    """Start ``oxigraph serve`` on 127.0.0.1 with its store in ``location``; stop it on exit.
    ``union_default_graph``: the default graph of queries is the union of every graph (the
    ``--union-default-graph`` option) instead of the unnamed graph alone.
    """
    binary = shutil.which("oxigraph")
    if binary is None:
        pytest.skip("the oxigraph server binary is not installed (pip install 'kgrec[serve]')")
    port = _free_port()
    location.mkdir(parents=True, exist_ok=True)
    union = ["--union-default-graph"] if union_default_graph else []
    proc = subprocess.Popen([binary, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}", *union],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"oxigraph serve exited with {proc.returncode}: "
                                   f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/query?query=ASK%7B%7D", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"oxigraph serve did not answer on {base} within {timeout} s")
                time.sleep(0.1)
        yield OxigraphServer(base, location, proc)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def oxigraph(tmp_path) -> Iterator[OxigraphServer]:
    """A fresh, empty Oxigraph server for one test."""
    with oxigraph_server(tmp_path / "oxigraph-store") as server:
        yield server
