"""Plain gets, exists (a GET_META), and stores of large raw values (16 KiB and
more: FMT_PLAIN, FMT_PICKLE, append, prepend), go out as packets the binding
builds (the value sent straight from the caller's bytes); the rest, or everything when the
connection string asks for compression, through libcouchbase's own commands.
Users must not be able to tell the two apart: the same results, the same
exceptions, the same retries, and the caller's value never held on to or freed
early."""

import gc
import logging
import sys
import time

import kinds
import pytest

from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN
from couchbase.exceptions import (
    CouchbaseError,
    KeyExistsError,
    KeyLockedError,
    NotFoundError,
    NotStoredError,
    TimeoutError,
    TooBigError,
)
from couchbase.mock import MockCluster

# run under the sanitizers too (scripts/run-sanitized); each connection test once per kind (tests/kinds.py)
pytestmark = [pytest.mark.sanitize, pytest.mark.every_kind]
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
        "set locked": lambda: cb.set(key, value, format=FMT_PLAIN, timeout=kinds.LOCKED_KEY_TIMEOUT),
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



def _outcome(call):
    """What a call gives a user: its result, or its exception's class, status
    and message."""
    try:
        return ("result", call())
    except CouchbaseError as e:
        return (type(e), e.error, e.key, e.operation, str(e))


def _same_on_both_paths(cb, lcb_path, call):
    forwarded, own = _outcome(lambda: call(cb)), _outcome(lambda: call(lcb_path))
    assert forwarded == own
    return forwarded


@pytest.mark.parametrize("fmt, value", [
    (FMT_JSON, {"a": [1, 2.5, None], "s": "☃"}),
    (FMT_JSON, {"big": "j" * LARGE}),
    (FMT_PLAIN, b""),
    (FMT_PLAIN, _value(SMALL)),
    (FMT_PLAIN, _value(LARGE)),
    (FMT_PICKLE, {1, 2, 3}),
], ids=["json", "json-large", "empty", "bytes", "bytes-large", "pickle"])
def test_gets_return_the_same_on_both_paths(cb, lcb_path, key, fmt, value):
    cas = cb.set(key, value, format=fmt)
    assert _same_on_both_paths(cb, lcb_path, lambda c: c.get(key)) == ("result", value)
    assert _same_on_both_paths(cb, lcb_path, lambda c: tuple(c.get(key, extended=True))) == (
        "result", (value, fmt, cas))


def test_multi_gets_return_the_same_on_both_paths(cb, lcb_path, key):
    keys = [f"{key}:{i}" for i in range(50)]
    cb.set({k: i for i, k in enumerate(keys)})
    cb.set(keys[7], _value(LARGE), format=FMT_PLAIN)
    wanted = keys + [key + ":missing"]
    assert _same_on_both_paths(cb, lcb_path, lambda c: c.get(wanted, quiet=True))[1][:7] == list(range(7))
    for c in (cb, lcb_path):
        with pytest.raises(NotFoundError) as info:
            c.get(wanted)
        results = info.value.all_results
        assert results[keys[7]] == _value(LARGE) and isinstance(results[key + ":missing"], NotFoundError)


def test_missing_key_on_both_paths(cb, lcb_path, key):
    outcome = _same_on_both_paths(cb, lcb_path, lambda c: c.get(key + ":missing"))
    assert outcome[0] is NotFoundError and outcome[2] == key + ":missing"
    quiet = _same_on_both_paths(cb, lcb_path, lambda c: c.get(key + ":missing", quiet=True))
    assert quiet == ("result", None)


def test_get_of_a_locked_key_on_both_paths(cb, lcb_path, key):
    cb.set(key, "locked")
    cb.lock(key, ttl=10)
    assert _same_on_both_paths(cb, lcb_path, lambda c: c.get(key)) == ("result", "locked")


# A failure status injected for one request, per operation: its opcode, the call, what the call
# gives for the statuses it answers (0x86 temporary failure and 0x07 NOT_MY_VBUCKET are retried
# by libcouchbase; so is 0x09 locked for exists, a replay-safe read; a missing key is False), and
# whether every other status is an error of that operation. Both paths must agree.
INJECTED = {
    "get": ("GET", lambda c, key: c.get(key), {0x86: "v", 0x07: "v"}, False),
    "exists": ("GET_META", lambda c, key: c.exists(key), {0x86: True, 0x07: True, 0x09: True, 0x01: False},
               True),
}


@pytest.mark.parametrize("op", sorted(INJECTED))
@pytest.mark.parametrize("status", [0x01, 0x04, 0x09, 0x86, 0x07])
def test_injected_failures_on_both_paths(cb, lcb_path, cluster, key, status, op):
    opcode, call, answers, error_otherwise = INJECTED[op]
    cb.set(key, "v")
    outcomes = []
    for c in (cb, lcb_path):
        cluster.opfail(status, 1, opcode=opcode)
        outcomes.append(_outcome(lambda c=c: call(c, key)))
    cluster.opfail(status, 0, opcode=opcode)
    assert outcomes[0] == outcomes[1]
    if status in answers:
        assert outcomes[0] == ("result", answers[status])
    elif error_otherwise:
        assert outcomes[0][0] is not None and outcomes[0][3] == op


def test_exists_is_the_same_on_both_paths(cb, lcb_path, key):
    # exists goes as a built GET_META where gets are built packets
    keys = [f"{key}:{i}" for i in range(20)]
    cas = cb.set({k: i for i, k in enumerate(keys[:10])})
    cb.delete(keys[5])
    wanted = {k: i < 10 and i != 5 for i, k in enumerate(keys)}
    assert _same_on_both_paths(cb, lcb_path, lambda c: c.exists(keys)) == ("result", wanted)
    assert _same_on_both_paths(cb, lcb_path, lambda c: tuple(c.exists(keys[0], extended=True))) == (
        "result", (True, 0, cas[keys[0]]))
    assert _same_on_both_paths(cb, lcb_path, lambda c: tuple(c.exists(keys[5], extended=True))) == (
        "result", (False, 0, 0))
    assert _same_on_both_paths(cb, lcb_path, lambda c: c.exists(key + ":missing")) == ("result", False)


def test_get_timeout_on_both_paths(cluster, lcb_path_connstr, key, connect):
    cluster.hiccup(400)
    try:
        for options in ({}, {"connection_string": lcb_path_connstr}):
            with connect(cluster.host, cluster.port, bucket="default", password="",
                                   timeout=0.1, **options) as c:
                with pytest.raises(TimeoutError) as info:
                    c.get(key)
                assert info.value.key == key and info.value.operation == "get"
                with pytest.raises(TimeoutError) as info:
                    c.exists(key)
                assert info.value.key == key and info.value.operation == "exists"
    finally:
        cluster.hiccup(0)


def test_tracing_sees_every_operation(cluster, key, caplog, connect):
    """libcouchbase traces only its own commands: with tracing on, gets, exists
    and large stores go through them, and the threshold report lists them (the
    mock then frames every reply with the server's duration, as a node does)."""
    connstr = (f"couchbase://{cluster.host}:{cluster.port}=http/default"
               "?tracing_threshold_kv=0.000001&tracing_threshold_queue_flush_interval=0.1")
    caplog.set_level(logging.INFO, logger="couchbase")
    with connect(bucket="default", password="", connection_string=connstr,
                           enable_tracing=True) as c:
        c.set(key, {"v": 1})
        c.set(key + ":big", _value(LARGE), format=FMT_PLAIN)
        assert c.get(key, extended=True)[:2] == ({"v": 1}, FMT_JSON)
        assert c.get([key, key + ":big"]) == [{"v": 1}, _value(LARGE)]
        with pytest.raises(NotFoundError):
            c.get(key + ":missing")
        assert c.exists([key, key + ":missing"]) == {key: True, key + ":missing": False}
        names = ('"operation_name":"get"', '"operation_name":"upsert"', '"operation_name":"exists"')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            reports = " ".join(r.getMessage() for r in caplog.records if "over threshold" in r.getMessage())
            if all(name in reports for name in names):
                break
            time.sleep(0.1)
            c.get(key)  # the report is written from the event loop
            c.exists(key)
        assert all(name in reports for name in names), reports


def test_memcached_bucket_routes_built_packets_by_ketama(connect):
    # no vbuckets: libcouchbase maps each key onto a node with its ketama ring
    with MockCluster(nodes=3, buckets={"default": ""}) as mock:
        mock.create_bucket("cache", bucket_type="memcached")
        with connect(mock.host, mock.port, bucket="cache", password="") as c:
            values = {f"k{i}": b"x" * (i * 300) for i in range(120)}  # 0 B to 35 KiB
            c.set(values, format=FMT_PLAIN)
            assert c.get(list(values)) == list(values.values())
            assert c.exists(list(values) + ["missing"]) == dict(dict.fromkeys(values, True), missing=False)
            with pytest.raises(NotFoundError):
                c.get("missing")
