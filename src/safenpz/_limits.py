"""Safety limits shared by the reader, the decoder and the converters.

Each limit is a keyword of :func:`safenpz.load`; the defaults admit every real
dataset we know of (Keras IMDb inflates to ~30 MB per member) while keeping
memory bounded: a decoded member never takes more than a small constant times
``max_member_bytes``, whatever sizes a header claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._exceptions import LimitError, Where

__all__ = ["DEFAULT_LIMITS", "MAX_SAME_HASH", "RATIO_GRACE_BYTES", "Limits"]

#: Members that inflate to less than this are never refused for their ratio.
RATIO_GRACE_BYTES = 16 * 2**20

#: Most distinct dict keys / set items that may share one hash value, in a
#: pickle (the scanner) or a pickle-free node table (the tree reader). Dicts
#: and sets degrade to quadratic time when many keys collide, and ints, floats
#: and tuples of them have predictable hashes; real data has next to no
#: full-hash collisions.
MAX_SAME_HASH = 64


@dataclass(frozen=True)
class Limits:
    """The limits one load runs under.

    Attributes
    ----------
    max_header_size : int
        Largest ``.npy`` header accepted, in bytes (NumPy's own default).
    max_member_bytes : int
        Largest inflated size of one archive member, and largest pickle read
        from a ``.npy`` or pickle file. (Numeric data in a ``.npy`` file is
        checked against the file's real size before anything is allocated,
        so this limit does not apply to it.)
    max_total_bytes : int
        Largest sum of decompressed sizes of the members read from one archive.
    max_ratio : float
        Largest compression ratio (inflated / compressed) of a member once it
        has inflated past 16 MiB; deflate bombs reach ~1000.
    max_depth : int
        Deepest nesting of decoded containers.
    max_items : int
        Most values (container items, object-array elements) one member may
        decode to.
    """

    max_header_size: int = 10_000
    max_member_bytes: int = 4 * 2**30
    max_total_bytes: int = 16 * 2**30
    max_ratio: float = 200.0
    max_depth: int = 64
    max_items: int = 200_000_000

    def __post_init__(self) -> None:
        for name in (
            "max_header_size",
            "max_member_bytes",
            "max_total_bytes",
            "max_depth",
            "max_items",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                msg = f"{name} must be a positive int, got {value!r}"
                raise ValueError(msg)
        if not self.max_ratio > 1:
            msg = f"max_ratio must be a number > 1, got {self.max_ratio!r}"
            raise ValueError(msg)

    def check(
        self,
        name: str,
        value: float,
        where: Where | str | None = None,
        *,
        what: str | None = None,
    ) -> None:
        """Raise :class:`LimitError` if `value` exceeds the limit called `name`.

        Parameters
        ----------
        name : str
            The limit: an attribute of this class, a keyword of
            :func:`safenpz.load`.
        value : int or float
            What was found (or a lower bound of it).
        where : Where or str, optional
            Where in the input; the error carries it. A ``str`` is a label
            put in front of the message instead (for callers without a
            :class:`~safenpz.Where`).
        what : str, optional
            What `value` counts (``"object array"``), said before it.

        Raises
        ------
        LimitError
            With ``.limit`` (`name`), ``.value`` and ``.maximum`` set.

        Examples
        --------
        >>> Limits(max_depth=3).check("max_depth", 4, Where(source="data"))
        Traceback (most recent call last):
        ...
        safenpz.LimitError: data: 4 exceeds max_depth=3. ...
        >>> Limits(max_items=3).check(
        ...     "max_items", 5, Where(member="x.npy"), what="object array")
        Traceback (most recent call last):
        ...
        safenpz.LimitError: member 'x.npy': object array: 5 exceeds max_items=3. ...
        """
        limit = getattr(self, name)
        if value <= limit:
            return
        msg = (
            f"{value:,} exceeds {name}={limit:,}. This protects against "
            f"files built to exhaust memory; if you trust the file, pass a "
            f"larger {name}= to safenpz.load"
        )
        if what is not None:
            msg = f"{what}: {msg}"
        if isinstance(where, str):
            msg = f"{where}: {msg}"
            where = None
        raise LimitError(msg, where=where, limit=name, value=value, maximum=limit)


DEFAULT_LIMITS = Limits()
