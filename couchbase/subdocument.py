"""Sub-document specs: the paths :meth:`lookup_in` reads and :meth:`mutate_in`
changes inside one JSON document, without moving the whole document.

The builders have the names and arguments of the official SDKs'
``couchbase.subdocument`` module, so code moves between them unchanged::

    import couchbase.subdocument as SD

    cb.mutate_in("user:1", [SD.upsert("name", "Ada"), SD.array_append("logins", 1700000000)])
    name, logins = cb.lookup_in("user:1", [SD.get("name"), SD.count("logins")])

A path is dotted keys and ``[index]`` array positions (``"a.b[2].c"``,
``"list[-1]"`` for the last element); the empty path ``""`` is the whole
document. ``xattr=True`` addresses the document's extended attributes
(``"meta.author"``) or, for paths starting with ``$``, the server's read-only
virtual attributes (``"$document.exptime"``, ``"$document.CAS"``...).

Each builder checks its arguments when called (ArgumentError saying which
builder, which path and why), and encodes its value as JSON once, so a spec
list can be built once and used for many keys.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

from . import _codec
from .exceptions import ArgumentError

__all__ = [
    "MutationMacro",
    "Spec",
    "StoreSemantics",
    "array_addunique",
    "array_append",
    "array_insert",
    "array_prepend",
    "count",
    "counter",
    "decrement",
    "exists",
    "get",
    "increment",
    "insert",
    "remove",
    "replace",
    "upsert",
]

# The server's limits: a path of at most 1,024 bytes, at most 16 specs a call.
MAX_PATH_BYTES = 1024
MAX_SPECS = 16
_INT64 = (-(1 << 63), (1 << 63) - 1)

# libcouchbase's spec flags (LCB_SUBDOCSPECS_F_*, couchbase.h).
F_MKINTERMEDIATES = 1 << 16
F_XATTRPATH = 1 << 18
F_XATTR_MACROVALUES = 1 << 19


class Op(enum.IntEnum):
    """A sub-document operation; ``_subdoc.pxi`` maps each to libcouchbase's
    ``lcb_subdocspecs_*`` call. Below ``COUNT`` they read (lookup_in); from
    ``REPLACE`` on they change (mutate_in)."""

    GET = 1
    EXISTS = 2
    COUNT = 3
    REPLACE = 4
    DICT_ADD = 5
    DICT_UPSERT = 6
    ARRAY_ADD_FIRST = 7
    ARRAY_ADD_LAST = 8
    ARRAY_ADD_UNIQUE = 9
    ARRAY_INSERT = 10
    COUNTER = 11
    REMOVE = 12

    @property
    def is_lookup(self) -> bool:
        """Whether the operation reads (lookup_in) rather than changes."""
        return self <= Op.COUNT

    @property
    def builder(self) -> str:
        """The name of the builder below that makes it, as users know it."""
        return _BUILDERS.get(self, self.name.lower())


_BUILDERS = {
    Op.DICT_ADD: "insert", Op.DICT_UPSERT: "upsert", Op.ARRAY_ADD_FIRST: "array_prepend",
    Op.ARRAY_ADD_LAST: "array_append", Op.ARRAY_ADD_UNIQUE: "array_addunique",
}


class StoreSemantics(enum.Enum):
    """What ``mutate_in`` does when the document does not exist (or does)."""

    #: Change an existing document only (the default); a missing one raises NotFoundError.
    REPLACE = "replace"
    #: Create the document if it is missing, as an empty JSON object.
    UPSERT = "upsert"
    #: Create the document; an existing one raises KeyExistsError.
    INSERT = "insert"


class MutationMacro:
    """Values the server fills in when it applies the change; only in an
    extended attribute (``xattr=True``)."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    @classmethod
    def cas(cls) -> MutationMacro:
        """The document's new CAS, as a hex string."""
        return cls("${Mutation.CAS}")

    @classmethod
    def seq_no(cls) -> MutationMacro:
        """The mutation's sequence number, as a hex string."""
        return cls("${Mutation.seqno}")

    @classmethod
    def value_crc32c(cls) -> MutationMacro:
        """The CRC32C of the document's new value, as a hex string."""
        return cls("${Mutation.value_crc32c}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MutationMacro) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"MutationMacro({self._text!r})"


class Spec(NamedTuple):
    """One path of a ``lookup_in`` or ``mutate_in`` call, made by this module's
    builders. Immutable; ``value`` is the encoded JSON (or the counter's delta)."""

    op: Op
    path: str
    flags: int
    value: bytes | int | None

    @property
    def xattr(self) -> bool:
        """Whether the path is in the extended attributes."""
        return bool(self.flags & F_XATTRPATH)

    def __repr__(self) -> str:
        value = "" if self.value is None else f", value={self.value!r}"
        return f"Spec({self.op.builder}, path={self.path!r}, xattr={self.xattr}{value})"


def _fail(builder: str, path: Any, why: str) -> ArgumentError:
    shown = f" path {path!r}" if isinstance(path, str) else ""
    return ArgumentError(f"subdocument.{builder}{shown}: {why}")


def _flags(builder: str, path: Any, xattr: Any, create_parents: Any = False) -> int:
    if not isinstance(path, str):
        raise _fail(builder, path, f"the path must be a str, not {type(path).__name__}")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise _fail(builder, path, "the path is not valid Unicode (it holds a lone surrogate)") from None
    if size > MAX_PATH_BYTES:
        why = f"the path is {size} bytes; the server allows {MAX_PATH_BYTES}"
        raise _fail(builder, path[:40] + "...", why)
    if "\x00" in path:
        raise _fail(builder, path, "the path holds a NUL character")
    for name, flag in (("xattr", xattr), ("create_parents", create_parents)):
        if type(flag) is not bool:
            raise _fail(builder, path, f"{name} must be True or False, not {flag!r}")
    if xattr and not path:
        raise _fail(builder, path, "an extended attribute needs a path ('' is the whole document)")
    return (F_XATTRPATH if xattr else 0) | (F_MKINTERMEDIATES if create_parents else 0)


def _encode(builder: str, path: str, value: Any, flags: int) -> tuple[bytes, int]:
    if isinstance(value, MutationMacro):
        if not flags & F_XATTRPATH:
            raise _fail(builder, path, "a MutationMacro goes only into an extended attribute (xattr=True)")
        return f'"{value._text}"'.encode(), flags | F_XATTR_MACROVALUES
    try:
        return _codec.json_encode(value), flags
    except (TypeError, ValueError) as e:
        raise _fail(builder, path, f"the value is not JSON: {e}") from None


def _encode_values(builder: str, path: str, values: tuple, flags: int) -> tuple[bytes, int]:
    # Several array elements go as one comma-separated list, as the server expects.
    if not values:
        raise _fail(builder, path, "give at least one value")
    parts = []
    for value in values:
        encoded, flags = _encode(builder, path, value, flags)
        parts.append(encoded)
    return b",".join(parts), flags


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _lookup(op: Op, builder: str, path: str, xattr: bool) -> Spec:
    return Spec(op, path, _flags(builder, path, xattr), None)


def get(path: str, xattr: bool = False) -> Spec:
    """Read the value at ``path`` (the whole document for ``""``); its result
    is the decoded JSON."""
    return _lookup(Op.GET, "get", path, xattr)


def exists(path: str, xattr: bool = False) -> Spec:
    """Whether ``path`` exists; its result is True or False."""
    return _lookup(Op.EXISTS, "exists", path, xattr)


def count(path: str, xattr: bool = False) -> Spec:
    """The number of elements of the array or object at ``path``."""
    return _lookup(Op.COUNT, "count", path, xattr)


def _mutation(op: Op, builder: str, path: str, value: Any, xattr: bool, create_parents: bool) -> Spec:
    flags = _flags(builder, path, xattr, create_parents)
    if not path and op is not Op.REPLACE:
        raise _fail(builder, path, "needs a path (replace('', value) changes the whole document)")
    encoded, flags = _encode(builder, path, value, flags)
    return Spec(op, path, flags, encoded)


def upsert(path: str, value: Any, xattr: bool = False, create_parents: bool = False) -> Spec:
    """Set the dictionary entry at ``path`` to ``value``, adding it if missing.
    ``create_parents`` also creates the missing objects on the way."""
    return _mutation(Op.DICT_UPSERT, "upsert", path, value, xattr, create_parents)


def insert(path: str, value: Any, xattr: bool = False, create_parents: bool = False) -> Spec:
    """Add the dictionary entry at ``path``; PathExistsError if it exists."""
    return _mutation(Op.DICT_ADD, "insert", path, value, xattr, create_parents)


def replace(path: str, value: Any, xattr: bool = False) -> Spec:
    """Replace the existing value at ``path`` (the whole document for ``""``);
    PathNotFoundError if it is missing."""
    return _mutation(Op.REPLACE, "replace", path, value, xattr, False)


def remove(path: str, xattr: bool = False) -> Spec:
    """Remove the value at ``path``; PathNotFoundError if it is missing."""
    flags = _flags("remove", path, xattr)
    if not path:
        raise _fail("remove", path, "needs a path (delete() removes the whole document)")
    return Spec(Op.REMOVE, path, flags, None)


def _array(op: Op, builder: str, path: str, values: tuple, xattr: bool, create_parents: bool) -> Spec:
    flags = _flags(builder, path, xattr, create_parents)
    encoded, flags = _encode_values(builder, path, values, flags)
    return Spec(op, path, flags, encoded)


def array_append(path: str, *values: Any, xattr: bool = False, create_parents: bool = False) -> Spec:
    """Add ``values`` at the end of the array at ``path`` (``""``: the
    document is the array)."""
    return _array(Op.ARRAY_ADD_LAST, "array_append", path, values, xattr, create_parents)


def array_prepend(path: str, *values: Any, xattr: bool = False, create_parents: bool = False) -> Spec:
    """Add ``values`` at the start of the array at ``path``."""
    return _array(Op.ARRAY_ADD_FIRST, "array_prepend", path, values, xattr, create_parents)


def array_insert(path: str, *values: Any, xattr: bool = False) -> Spec:
    """Insert ``values`` before the element ``path`` names, which ends in an
    index (``"list[2]"``)."""
    if isinstance(path, str) and not path.endswith("]"):
        raise _fail("array_insert", path, "the path must end in an array index, such as 'list[0]'")
    return _array(Op.ARRAY_INSERT, "array_insert", path, values, xattr, False)


def array_addunique(path: str, value: Any, xattr: bool = False, create_parents: bool = False) -> Spec:
    """Add ``value`` (a JSON scalar) to the array at ``path`` unless it is
    there already (PathExistsError then)."""
    if isinstance(value, (dict, list, tuple)):
        raise _fail("array_addunique", path, "the value must be a JSON scalar (str, number, bool, None)")
    return _array(Op.ARRAY_ADD_UNIQUE, "array_addunique", path, (value,), xattr, create_parents)


def counter(path: str, delta: int, xattr: bool = False, create_parents: bool = False) -> Spec:
    """Add ``delta`` (a non-zero signed 64-bit integer) to the number at
    ``path``, creating it as ``delta`` if missing; the result is the new number."""
    flags = _flags("counter", path, xattr, create_parents)
    if not path:
        raise _fail("counter", path, "needs a path (incr() counts a whole document)")
    if not _is_int(delta):
        raise _fail("counter", path, f"delta must be an int, not {type(delta).__name__}")
    if delta == 0 or not _INT64[0] <= delta <= _INT64[1]:
        raise _fail("counter", path, f"delta must be a non-zero signed 64-bit integer, not {delta}")
    return Spec(Op.COUNTER, path, flags, int(delta))


def increment(path: str, delta: int = 1, xattr: bool = False, create_parents: bool = False) -> Spec:
    """``counter(path, delta)`` with a positive ``delta``."""
    if _is_int(delta) and delta < 0:
        raise _fail("increment", path, f"delta must be positive, not {delta} (use decrement)")
    return counter(path, delta, xattr, create_parents)


def decrement(path: str, delta: int = 1, xattr: bool = False, create_parents: bool = False) -> Spec:
    """``counter(path, -delta)`` with a positive ``delta``."""
    if _is_int(delta) and delta < 0:
        raise _fail("decrement", path, f"delta must be positive, not {delta} (use increment)")
    return counter(path, -delta if _is_int(delta) else delta, xattr, create_parents)
