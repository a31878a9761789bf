"""The ``kgrec serve`` command: :func:`add_arguments` fills its parser, :func:`run` runs it."""

from __future__ import annotations

import argparse
import sys

from kgrec.errors import ServeError

__all__ = ["add_arguments", "run", "DESCRIPTION", "EPILOG"]

DESCRIPTION = ("Serve a saved model over HTTP (FastAPI + uvicorn; pip install 'kgrec[serve]'): GET /recommend, "
               "POST /recommend (a new user's items), GET /explain, POST /events (JSON or RDF, bearer token), "
               "POST /update, GET /health, GET /metrics; OpenAPI docs at /docs. Events are stored (an embedded "
               "Oxigraph store, or --store URL of a SPARQL endpoint) before they are acknowledged; every "
               "--update-every events or --update-seconds the model is updated on them, saved as a new version "
               "under --state-dir and swapped in.")
EPILOG = ("examples:\n  kgrec train kg_data/toy/toy.ttl --model ease --ratios 1,0,0 --out my-model\n"
          "  kgrec serve my-model --port 8000\n"
          "  curl 'http://127.0.0.1:8000/recommend?user=https://w3id.org/kgrec/data/toy/user/u1&k=3'\n"
          "  kgrec serve my-model --store http://127.0.0.1:7878 --token-file token.txt --update-every 500")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``kgrec serve`` (the CLI adds the model-loading ones it shares with other
    commands: ``--text-model``, ``--text-allow-pickle``, ``--threads``).
    """
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a saved model (kgrec train --out DIR); never written")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes the service to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--state-dir", metavar="DIR", default=None,
                   help="model versions, the 'current' pointer and (without --store) the event store "
                        "(default: MODEL_DIR.serve)")
    p.add_argument("--store", metavar="PATH_OR_URL", default=None,
                   help="event store: a directory (embedded Oxigraph; default: STATE_DIR/store) or the http(s) URL "
                        "of a SPARQL 1.1 endpoint (base URL, or its /query or /sparql URL; updates go to /update)")
    p.add_argument("--token-file", metavar="FILE", default=None,
                   help="file holding the bearer token of POST /events and /update (default: a random token "
                        "written to STATE_DIR/token)")
    p.add_argument("--update-every", metavar="N", type=int, default=100,
                   help="update the model after N new events (0: not by count)")
    p.add_argument("--update-seconds", metavar="T", type=float, default=60.0,
                   help="update when events are pending and T seconds passed since the last update (0: not by time)")
    p.add_argument("--update-epochs", metavar="N", type=int, default=5,
                   help="epochs of an embedding model's update (Recommender.update)")
    p.add_argument("--update-replay", metavar="SHARE", type=float, default=0.2,
                   help="share of old interactions replayed in an update")
    p.add_argument("--keep-versions", metavar="N", type=_positive, default=3, help="update checkpoints kept on disk")
    p.add_argument("--max-body-bytes", metavar="N", type=_positive, default=1_000_000,
                   help="largest request body accepted (413 above)")
    p.add_argument("--max-k", metavar="N", type=_positive, default=1000, help="largest k a request may ask")
    p.add_argument("--data", metavar="FILE", nargs="+", default=None,
                   help="the graph the model was trained on, for GET /explain")
    p.add_argument("--mapping", default=None,
                   help="mapping of --data and of RDF bodies of POST /events (profile name or file; default kgrec)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (access lines at 'info')")


def run(args) -> int:
    """Start the service and block until it is stopped (Ctrl-C, SIGTERM)."""
    try:
        import uvicorn
    except ImportError:
        raise ServeError("'kgrec serve' needs the serve extra: pip install 'kgrec[serve]'") from None
    from kgrec.serve import create_app

    def log(line: str) -> None:
        print(f"kgrec serve: {line}", file=sys.stderr, flush=True)

    if not 0 < args.port < 65536:
        raise ServeError(f"'--port' must be in 1..65535 (got {args.port})")
    app = create_app(args.model_dir, state_dir=args.state_dir, store=args.store, token_file=args.token_file,
                     update_every=args.update_every, update_seconds=args.update_seconds,
                     update_epochs=args.update_epochs, update_replay=args.update_replay,
                     keep_versions=args.keep_versions, max_body_bytes=args.max_body_bytes, max_k=args.max_k,
                     data=args.data, mapping=args.mapping, text_model=args.text_model,
                     text_allow_pickle=args.text_allow_pickle, log=log)
    log(f"listening on http://{args.host}:{args.port} (OpenAPI docs at /docs)")
    # keep-alive 30 s, not uvicorn's 5: a client reusing its connection right after a slow moment of
    # the service (an update competing for the cores) must not find it closed under its request
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_keep_alive=30)
    return 0
