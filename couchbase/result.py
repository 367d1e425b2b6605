"""What calls return beyond plain values: the extended result (value, flags,
CAS), a replica's copy, and the per-path results of a sub-document call."""

from collections.abc import Sequence
from typing import Any, NamedTuple, Optional


class Result(NamedTuple):
    """What ``get(..., extended=True)``, ``lock`` and extended ``incr``/``decr``
    return. Unpacks as ``value, flags, cas``."""

    value: Any
    flags: int
    cas: int


class ReplicaResult(NamedTuple):
    """One copy of a document, from ``get_all_replicas``: the active node's
    (``is_replica`` False) or a replica's. Copies of one key can differ while
    replication catches up; the CAS tells them apart."""

    value: Any
    flags: int
    cas: int
    is_replica: bool


class SubdocResult(Sequence):
    """The per-path results of ``lookup_in`` or ``mutate_in``, in the order of
    the specs.

    ``result[i]`` is path i's value (the decoded JSON for ``get``, True/False
    for ``exists``, the number for ``count`` and ``counter``, None for other
    mutations), or raises that path's exception (a
    :class:`~couchbase.exceptions.SubdocError` naming the path). Unpacking
    reads every path. ``cas`` is the document's CAS (after the change, for
    ``mutate_in``).
    """

    __slots__ = ("cas", "_values", "_errors")

    def __init__(self, cas: int, values: list, errors: list) -> None:
        self.cas = cas
        self._values = values
        self._errors = errors

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        error = self._errors[index]
        if error is not None:
            raise error
        return self._values[index]

    def exists(self, index: int) -> bool:
        """Whether path ``index`` was found (for an ``exists`` spec: its answer)."""
        return self._errors[index] is None and self._values[index] is not False

    def error(self, index: int) -> Optional[BaseException]:
        """Path ``index``'s exception, or None if it succeeded."""
        return self._errors[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubdocResult):
            return NotImplemented
        return (self.cas, self._values, [type(e) for e in self._errors]) == (
            other.cas, other._values, [type(e) for e in other._errors])

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [repr(v) if e is None else f"<{type(e).__name__}>"
                 for v, e in zip(self._values, self._errors)]
        return f"SubdocResult(cas={self.cas}, [{', '.join(parts)}])"
