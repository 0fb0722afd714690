"""The one closed table of globals a pickle may name.

A pickle names callables as ``(module, name)`` pairs (``GLOBAL``,
``STACK_GLOBAL``). safenpz accepts exactly the pairs of :data:`SAFE_GLOBALS`:
the static scanner refuses any other, and the decoder maps each of them to a
safenpz constructor that validates its arguments (the callable the file names
is never looked up; the decoder asserts at import that its table has exactly
these keys). Nothing else in the package lists globals.

Examples
--------
>>> ("numpy", "dtype") in SAFE_GLOBALS, ("os", "system") in SAFE_GLOBALS
(True, False)
>>> SET_GLOBALS <= SAFE_GLOBALS
True
"""

from __future__ import annotations

__all__ = ["SAFE_GLOBALS", "SET_GLOBALS"]

#: The closed table of globals a pickle may name. Each maps, in the decoder,
#: to a safenpz constructor that validates its arguments; the callable the
#: file names is never looked up.
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # NumPy 1.16.0 named the C module itself (fixed in 1.16.1)
        ("numpy.core._multiarray_umath", "_reconstruct"),
        ("numpy.core._multiarray_umath", "scalar"),
        ("numpy._core._multiarray_umath", "_reconstruct"),
        ("numpy._core._multiarray_umath", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "bytes"),
        ("__builtin__", "bytes"),
        ("builtins", "bytearray"),
        ("__builtin__", "bytearray"),
        ("builtins", "set"),
        ("__builtin__", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "frozenset"),
        ("builtins", "complex"),
        ("__builtin__", "complex"),
        ("collections", "OrderedDict"),
    ]
)

#: The entries that build a set from an iterable, hashing each of its items
#: (the scanner accounts for that hashing work before anything is decoded).
SET_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    (module, name)
    for module in ("builtins", "__builtin__")
    for name in ("set", "frozenset")
)
assert SET_GLOBALS <= SAFE_GLOBALS
