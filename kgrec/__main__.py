"""``python -m kgrec`` runs the command-line interface."""

from kgrec.cli import main

raise SystemExit(main())
