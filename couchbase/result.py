"""The extended result of a call: value, flags and CAS."""

from typing import Any, NamedTuple


class Result(NamedTuple):
    """What ``get(..., extended=True)``, ``lock`` and extended ``incr``/``decr``
    return. Unpacks as ``value, flags, cas``."""

    value: Any
    flags: int
    cas: int
