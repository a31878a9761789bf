"""``kgrec serve``: live recommendations over HTTP, fed by events kept in an RDF store.

The top layer beside the CLI: it uses the public API (:class:`kgrec.Recommender`, :func:`kgrec.load`)
and nothing below imports it. FastAPI and uvicorn are the optional extra ``kgrec[serve]``; they are
imported only when an app is created, so ``import kgrec`` works without them.

* :mod:`kgrec.serve.events`: an event as JSON, as RDF in the kgrec vocabulary, and its id;
* :mod:`kgrec.serve.store`: the embedded Oxigraph store or a SPARQL 1.1 endpoint;
* :mod:`kgrec.serve.models`: model versions on disk, the update worker, the atomic swap;
* :mod:`kgrec.serve.app`: the FastAPI application (:func:`create_app`);
* :mod:`kgrec.serve.command`: the ``kgrec serve`` command.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(model_dir, **options):
    """The FastAPI app serving ``model_dir`` (see :func:`kgrec.serve.app.create_app` for ``options``).

    Raises:
        ImportError: FastAPI is not installed (``pip install 'kgrec[serve]'``).
    """
    from kgrec.serve.app import create_app as _create_app  # the optional extra, imported at its entry

    return _create_app(model_dir, **options)
