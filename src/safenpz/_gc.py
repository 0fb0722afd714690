"""Pausing the cyclic garbage collector while building many containers.

Building millions of Python lists triggers needless full collections that add
40-80 % to the time (measured on IMDb-sized data); none of the objects built
here can form reference cycles, so pausing the collector is safe.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_gc"]


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of the block.

    Nested use is fine: the collector is re-enabled only if it was enabled on
    entry.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
