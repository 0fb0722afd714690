"""``python -m safenpz`` runs the command line."""

from safenpz.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
