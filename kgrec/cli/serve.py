"""``kgrec serve``: a saved model over HTTP, learning from posted events.

The service's options and body live with the service (:mod:`kgrec.serve.command`); this module only
puts them under the ``kgrec`` command, with the model-loading options the other commands share.
fastapi and uvicorn are imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

from kgrec.cli.common import Formatter, add_load_options
from kgrec.serve import command


def run(args) -> int:
    return command.run(args)


def add_parser(sub, models: str) -> None:
    """The ``kgrec serve`` sub-command's options (:func:`kgrec.serve.command.add_arguments`)."""
    p = sub.add_parser("serve", formatter_class=Formatter, help="serve a model over HTTP, learning from posted events",
                       description=command.DESCRIPTION, epilog=command.EPILOG)
    command.add_arguments(p)
    add_load_options(p)
    p.set_defaults(func=run)
