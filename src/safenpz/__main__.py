"""``python -m safenpz`` runs the command line."""

from safenpz.cli import main

raise SystemExit(main())
