"""Collection rules for the whole repository (``tests/conftest.py`` holds the
fixtures)."""

from __future__ import annotations

import importlib.util

# safenpz.torch imports torch, an optional extra: its doctests are collected
# only when torch is installed (`make test-torch`)
collect_ignore = [] if importlib.util.find_spec("torch") else ["src/safenpz/torch.py"]
