"""The safenpz manifest: its schema and its validation, shared by
:func:`safenpz.save` (which writes it) and the readers (which check it).

A pure module: it reads no file and decodes nothing, so ``safenpz scan`` can
check a manifest without the decoders. The manifest is the member
``__safenpz__.npy``, a 0-d unicode array (at most 1 MiB of text) holding::

    {"format": "safenpz", "version": 1,
     "arrays": {"<name>": {"kind": "ragged" | "object_lists" | "object_scalars"
                                   | "tree",
                           "rows": "list" | "tuple" | "ndarray",  # object_lists
                           "shape": [...]}}}                # object_scalars only

The member layout each kind claims is described in :mod:`safenpz._save`
(ragged, object_lists, object_scalars) and :mod:`safenpz._tree` (tree).
:func:`check_manifest` checks a parsed document against the archive's member
names: every member ends in ``.npy``, every entry's members exist, no member
is claimed twice, and no entry hides a raw member of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _tree
from ._exceptions import FormatError, Where
from ._preview import preview

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_MANIFEST_CHARS",
    "MAX_MANIFEST_MEMBER",
    "check_manifest",
    "check_members",
]

#: Stem of the manifest member (``__safenpz__.npy``).
MANIFEST = "__safenpz__"
#: The manifest version this safenpz writes and reads.
FORMAT_VERSION = 1
#: Longest manifest text, in characters.
MAX_MANIFEST_CHARS = 1 << 20
#: Largest manifest member, in bytes: UTF-32 data + the ``.npy`` header.
MAX_MANIFEST_MEMBER = 4 * MAX_MANIFEST_CHARS + 4096
_KINDS = ("ragged", "object_lists", "object_scalars", _tree.KIND)


def check_members(raw: list[str], where: Where) -> None:
    """Every member of a manifest archive ends in ``.npy``."""
    stray = [n for n in raw if not n.endswith(".npy")]
    if stray:
        msg = (
            f"the safenpz manifest is present, but member {preview(stray[0])} "
            "is not a .npy member; safenpz.save never writes such an archive"
        )
        raise FormatError(msg, where=where)


def _hide_msg(name: str) -> str:
    return (
        f"the safenpz manifest's entry {preview(name)} would hide the archive's member "
        f"{preview(name + '.npy')}; refusing to guess which one is meant"
    )


def check_manifest(doc: Any, raw: list[str], where: Where) -> dict[str, Any]:
    """Validate a parsed manifest against the archive's member stems.

    A pure function of the JSON document and the member names (nothing is
    decoded), shared by the reader's layout (:class:`safenpz._npzfile.Layout`) and
    ``safenpz scan``.

    Parameters
    ----------
    doc : object
        The parsed JSON.
    raw : list of str
        The archive's member names, as stored (all must end in ``.npy``).
    where : Where
        Where the manifest is (the archive as ``source``, the manifest
        member as ``member``); every error carries it.

    Returns
    -------
    dict
        The ``arrays`` mapping.

    Raises
    ------
    FormatError
        The document is not a valid manifest for these members.
    """
    _check_document(doc, where)
    check_members(raw, where)
    present = {n[:-4] for n in raw}
    manifest: dict[str, Any] = doc["arrays"]
    claimed: dict[str, str] = {}

    def claim(stem: str, name: str) -> bool:
        if stem not in present or stem in claimed:
            return False
        claimed[stem] = name
        return True

    for name, entry in manifest.items():
        if not _entry_ok(name, entry, present, claim, where, len(raw)):
            msg = (
                f"the safenpz manifest has a bad entry for {preview(name)}: "
                f"{preview(entry)}"
            )
            raise FormatError(msg, where=where)
    for stem, owner in claimed.items():
        if stem != owner and stem in manifest:
            msg = (
                f"in the safenpz manifest, member {preview(stem + '.npy')} is "
                f"both an entry and a part of entry {preview(owner)}"
            )
            raise FormatError(msg, where=where)
    return manifest


def _check_document(doc: Any, where: Where) -> None:
    """The document is a safenpz manifest of the version this safenpz reads."""
    if not (
        isinstance(doc, dict)
        and doc.get("format") == "safenpz"
        and isinstance(doc.get("arrays"), dict)
    ):
        msg = "the document is not a safenpz manifest"
        raise FormatError(msg, where=where)
    if doc.get("version") != FORMAT_VERSION:
        msg = (
            f"the safenpz manifest has version {preview(doc.get('version'))}; "
            f"this safenpz reads version {FORMAT_VERSION} — upgrade safenpz"
        )
        raise FormatError(msg, where=where)


def _entry_ok(
    name: str,
    entry: Any,
    present: set[str],
    claim: Callable[[str, str], bool],
    where: Where,
    n_raw: int,
) -> bool:
    """Whether one entry is well formed and claims its members (`claim`
    records each member it takes); an entry hiding a raw member raises."""
    if not (
        isinstance(entry, dict)
        and entry.get("kind") in _KINDS
        and not name.startswith(MANIFEST)
    ):
        return False
    if entry["kind"] == "object_scalars":
        shape = entry.get("shape")
        return (
            isinstance(shape, list)
            and len(shape) <= 64
            and all(type(d) is int and d >= 0 for d in shape)
            and claim(name, name)
        )
    if name in present:
        raise FormatError(_hide_msg(name), where=where)
    if entry["kind"] == _tree.KIND:
        stems = _tree.entry_parts(name, entry, n_raw)
        return stems is not None and all(claim(t, name) for t in stems)
    ok = claim(f"{name}.values", name) and claim(f"{name}.offsets", name)
    if entry["kind"] == "object_lists":
        ok = ok and entry.get("rows") in ("list", "tuple", "ndarray")
    return ok
