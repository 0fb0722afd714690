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

__all__ = ["ROLES", "SAFE_GLOBALS", "SET_GLOBALS"]


def _roles() -> dict[tuple[str, str], str]:
    roles: dict[tuple[str, str], str] = {}
    for mod in (
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        # NumPy 1.16.0 named the C module itself (fixed in 1.16.1)
        "numpy.core._multiarray_umath",
        "numpy._core._multiarray_umath",
    ):
        roles[(mod, "_reconstruct")] = "reconstruct"
        roles[(mod, "scalar")] = "scalar"
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        roles[(mod, "_frombuffer")] = "frombuffer"
    roles[("numpy", "ndarray")] = "ndarray"
    roles[("numpy", "dtype")] = "dtype"
    roles[("_codecs", "encode")] = "encode"
    for mod in ("builtins", "__builtin__"):  # Python 2 spells builtins so
        for name in ("bytes", "bytearray", "set", "frozenset", "complex"):
            roles[(mod, name)] = name
    roles[("collections", "OrderedDict")] = "odict"
    return roles


#: The closed table of globals a pickle may name, each with its *role*: what
#: it builds (``"reconstruct"``: an ndarray to be built, ``"scalar"``,
#: ``"frombuffer"``, ``"ndarray"``: only an argument of ``_reconstruct``,
#: ``"dtype"``, ``"encode"``: bytes from latin-1 text, ``"bytes"``,
#: ``"bytearray"``, ``"set"``, ``"frozenset"``, ``"complex"``, ``"odict"``:
#: an OrderedDict). The decoder maps each role to a safenpz constructor that
#: validates its arguments, the scanner checks the same arguments statically
#: (:mod:`safenpz._pickle._rules`); the callable the file names is never
#: looked up.
ROLES: dict[tuple[str, str], str] = _roles()

#: The globals a pickle may name (the keys of :data:`ROLES`).
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(ROLES)

#: The entries that build a set from an iterable, hashing each of its items
#: (the scanner accounts for that hashing work before anything is decoded).
SET_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    key for key, role in ROLES.items() if role in ("set", "frozenset")
)
assert SET_GLOBALS <= SAFE_GLOBALS
