"""Stores of large raw values (16 KiB and more: FMT_PLAIN, FMT_PICKLE, append,
prepend) go out as packets the binding builds, the value sent straight from the
caller's bytes; smaller ones through libcouchbase's own store. Users must not
be able to tell the two apart: the same results, the same exceptions, the same
retries, and the caller's value never held on to or freed early."""

import gc
import sys

import pytest

from couchbase import FMT_PICKLE, FMT_PLAIN
from couchbase.exceptions import (
    KeyExistsError,
    KeyLockedError,
    NotFoundError,
    NotStoredError,
    TooBigError,
)

SMALL, LARGE = 1000, 100_000
SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["small", "large"])


def _value(size, seed=b"v"):
    return (seed * size)[:size]


@SIZES
def test_every_store_operation_round_trips(cb, key, size):
    value = _value(size)
    cas = cb.set(key, value, format=FMT_PLAIN)
    got = cb.get(key, extended=True)
    assert got == (value, FMT_PLAIN, cas)
    assert cb.add(key + ":new", value, format=FMT_PLAIN)
    assert cb.get(key + ":new") == value
    cb.replace(key, _value(size, b"r"), format=FMT_PLAIN)
    assert cb.get(key) == _value(size, b"r")
    cb.append(key, _value(size, b"a"))
    cb.prepend(key, _value(size, b"p"))
    assert cb.get(key) == _value(size, b"p") + _value(size, b"r") + _value(size, b"a")


@SIZES
def test_pickled_values_keep_their_format(cb, key, size):
    value = {"blob": _value(size), "n": [1, 2]}
    cb.set(key, value, format=FMT_PICKLE)
    got, flags, _ = cb.get(key, extended=True)
    assert got == value and flags == FMT_PICKLE


@SIZES
def test_cas_checked_stores(cb, key, size):
    cas = cb.set(key, _value(size), format=FMT_PLAIN)
    new_cas = cb.set(key, _value(size, b"2"), cas=cas, format=FMT_PLAIN)
    assert new_cas != cas and cb.get(key, extended=True).cas == new_cas
    for store in (lambda: cb.set(key, _value(size, b"3"), cas=cas, format=FMT_PLAIN),
                  lambda: cb.replace(key, _value(size, b"3"), cas=cas, format=FMT_PLAIN),
                  lambda: cb.append(key, _value(size, b"3"), cas=cas)):
        with pytest.raises(KeyExistsError) as info:
            store()
        assert info.value.key == key and "CAS" in str(info.value)
    assert cb.get(key) == _value(size, b"2")


def _store_failure(cb, key, size, case):
    """The exception (class, status, operation) one failing store raises."""
    value = _value(size)
    stores = {
        "add existing": lambda: cb.add(key, value, format=FMT_PLAIN),
        "replace missing": lambda: cb.replace(key + ":missing", value, format=FMT_PLAIN),
        "append missing": lambda: cb.append(key + ":missing", value),
        "prepend missing": lambda: cb.prepend(key + ":missing", value),
        "set stale cas": lambda: cb.set(key, value, cas=1, format=FMT_PLAIN),
        "set locked": lambda: cb.set(key, value, format=FMT_PLAIN),
    }
    cb.set(key, b"old", format=FMT_PLAIN)
    if case == "set locked":
        cb.lock(key, ttl=10)
    with pytest.raises(Exception) as info:
        stores[case]()
    e = info.value
    assert cb.get(key) == b"old"  # nothing lost
    return type(e), e.error, e.operation, str(e).split(" failed: ")[1]


@pytest.mark.parametrize("case", ["add existing", "replace missing", "append missing",
                                  "prepend missing", "set stale cas", "set locked"])
def test_failures_are_the_same_for_small_and_large_values(cb, key, case):
    small = _store_failure(cb, key + ":s", SMALL, case)
    large = _store_failure(cb, key + ":l", LARGE, case)
    assert large == small
    expected = {"add existing": KeyExistsError, "replace missing": NotFoundError,
                "append missing": NotStoredError, "prepend missing": NotStoredError,
                "set stale cas": KeyExistsError, "set locked": KeyLockedError}[case]
    assert large[0] is expected


def test_value_over_the_item_size_limit(cb, key):
    with pytest.raises(TooBigError) as info:
        cb.set(key, b"x" * (21 * 1024 * 1024), format=FMT_PLAIN)
    assert info.value.key == key and info.value.operation == "set"
    cb.set(key, b"fits", format=FMT_PLAIN)  # the connection carries on
    assert cb.get(key) == b"fits"


@SIZES
def test_ttl(cb, cluster, key, size):
    cb.set(key, _value(size), ttl=60, format=FMT_PLAIN)
    assert cb.get(key) == _value(size)
    cluster.time_travel(61)
    with pytest.raises(NotFoundError):
        cb.get(key)


def test_one_call_mixing_small_and_large_values(cb, key):
    values = {f"{key}:{i}": _value(size, bytes([65 + i])) for i, size in
              enumerate([10, LARGE, 16383, 16384, 2 * LARGE, 0])}
    cas = cb.set(values, format=FMT_PLAIN)
    assert set(cas) == set(values) and all(cas.values())
    assert cb.get(list(values)) == list(values.values())


def test_temporary_failures_are_retried_as_for_small_values(cb, cluster, key):
    cluster.opfail(0x86, 2, opcode="SET")  # ETMPFAIL twice: the error map says retry
    cb.set(key, _value(LARGE), format=FMT_PLAIN)
    assert cb.get(key) == _value(LARGE)


def test_a_failed_status_becomes_its_exception(cb, cluster, key):
    cluster.opfail(0x05, 1, opcode="SET")  # NOT_STORED once
    with pytest.raises(NotStoredError):
        cb.set(key, _value(LARGE), format=FMT_PLAIN)


def test_values_are_released_when_written(cb, key):
    value = _value(LARGE)
    cb.set(key, value, format=FMT_PLAIN)
    gc.collect()
    before = sys.getrefcount(value)
    for _ in range(50):
        cb.set(key, value, format=FMT_PLAIN)
        cb.set({key: value, key + ":2": value}, format=FMT_PLAIN)
        cb.append(key + ":2", value)
    gc.collect()
    assert sys.getrefcount(value) == before


@SIZES
def test_not_my_vbucket_is_sent_again(cb, cluster, key, size):
    # libcouchbase copies the packet and sends it again once it has a config
    cluster.opfail(0x07, 1, opcode="SET")
    cb.set(key, _value(size), format=FMT_PLAIN)
    assert cb.get(key) == _value(size)
