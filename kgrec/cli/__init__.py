"""The ``kgrec`` command line, one module per command (:mod:`kgrec.cli.main` lists them).

``kgrec demo``, ``inspect``, ``validate``, ``train``, ``evaluate``, ``recommend``, ``users``, ``items``,
``explain``, ``report``, ``update``, ``convert``, ``generate``, ``serve``, ``benchmark``. The package is the top of
kgrec's layers: it imports the API and the reports, and nothing in kgrec imports it.
"""

from kgrec.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
