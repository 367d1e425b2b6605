"""The binding under topology changes and injected faults, driven through the
mock cluster's control API: what users rely on is that acknowledged writes are
never lost and every failure is an exception, never a hang or a crash."""

import gc
import sys
import threading
import time

import pytest

from couchbase import FMT_PLAIN, Couchbase
from couchbase.exceptions import (
    CouchbaseError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    TemporaryFailError,
    TimeoutError,
)
from couchbase.mock import MockCluster

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)


@pytest.fixture
def cluster3():
    """A private 3-node cluster (these tests change its topology)."""
    with MockCluster(nodes=3, buckets={"default": ""}) as mock:
        yield mock


def _connect(mock, **options):
    return Couchbase.connect(mock.host, mock.port, password="", bucket="default", **options)


def test_multi_node_connection_string(cluster3):
    hosts = ",".join(f"{cluster3.host}:{p}=http" for p in cluster3.mgmt_ports)
    connstr = f"couchbase://{hosts}/default"
    with Couchbase.connect(bucket="default", password="", connection_string=connstr) as cb:
        keys = [f"spread:{i}" for i in range(300)]  # over every node's vbuckets
        cb.set({k: i for i, k in enumerate(keys)})
        assert cb.get(keys) == list(range(300))


def _write_through(cb, keys, acknowledged, value_of=lambda i: i, fmt=None):
    """Set each key, retrying transient failures; record acknowledged writes
    (a set whose outcome is unknown is not acknowledged: it is sent again,
    harmless for a set of the same value that no one else writes)."""
    for i, key in enumerate(keys):
        value = value_of(i)
        deadline = time.monotonic() + 20
        while True:
            try:
                cb.set(key, value, format=fmt)
                acknowledged[key] = value
                break
            except (TimeoutError, NetworkError, TemporaryFailError, NotFoundError, OutcomeUnknownError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


# Large raw values go out as packets the binding builds; on NOT_MY_VBUCKET
# libcouchbase copies such a packet and sends it to the vbucket's new owner.
@pytest.mark.parametrize("nkeys, value_of, fmt", [
    (10000, lambda i: i, None),
    (1000, lambda i: str(i).encode() * 6000, FMT_PLAIN),  # 6 KB to 24 KB: both store paths
], ids=["small", "large"])
def test_failover_mid_workload_loses_no_acknowledged_write(cluster3, nkeys, value_of, fmt):
    keys = [f"fo:{i}" for i in range(nkeys)]
    acknowledged = {}
    with _connect(cluster3, timeout=2.0) as cb:
        writer = threading.Thread(target=_write_through, args=(cb, keys, acknowledged, value_of, fmt))
        writer.start()
        while len(acknowledged) < nkeys * 3 // 10 and writer.is_alive():
            time.sleep(0.01)
        cluster3.failover(1)
        writer.join(120)
        assert not writer.is_alive()
        assert len(acknowledged) == len(keys)
        got = cb.get(keys)
        assert got == [acknowledged[k] for k in keys]


def test_add_node_and_rebalance_mid_workload(cluster3):
    keys = [f"rb:{i}" for i in range(3000)]
    acknowledged = {}
    with _connect(cluster3) as cb:
        writer = threading.Thread(target=_write_through, args=(cb, keys, acknowledged))
        writer.start()
        while len(acknowledged) < 1000 and writer.is_alive():
            time.sleep(0.01)
        cluster3.add_node(rebalance=True)
        writer.join(120)
        assert len(acknowledged) == len(keys)
        assert cb.get(keys) == [acknowledged[k] for k in keys]


def test_restarted_node_comes_back(cluster3):
    with _connect(cluster3, timeout=1.0) as cb:
        keys = [f"rs:{i}" for i in range(200)]
        cb.set(dict.fromkeys(keys, "v"))
        cluster3.restart(0)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert cb.get(keys) == ["v"] * 200
                break
            except (TimeoutError, NetworkError) as e:
                assert time.monotonic() < deadline, e
                time.sleep(0.05)


def test_dropped_connections_are_reestablished(cb, cluster, key):
    cb.set(key, "before")
    cluster.drop_connections()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert cb.get(key) == "before"
            break
        except (NetworkError, TimeoutError) as e:
            assert time.monotonic() < deadline, e
            time.sleep(0.05)


def test_opfail_status_becomes_its_exception(cb, cluster, key):
    cb.set(key, 1)
    cluster.opfail(0x01, 1, opcode="GET")  # KEY_ENOENT once, for a key that exists
    with pytest.raises(NotFoundError) as info:
        cb.get(key)
    assert info.value.key == key and info.value.operation == "get"
    assert cb.get(key) == 1  # the next try works


def test_transient_failure_is_retried_by_the_library(cb, cluster, key):
    cb.set(key, 1)
    cluster.opfail(0x86, 2, opcode="GET")  # ETMPFAIL twice: the error map says retry
    assert cb.get(key) == 1


def test_opfail_in_a_multi_get_fails_only_those_keys(cb, cluster, key):
    keys = [f"{key}:{i}" for i in range(5)]
    cb.set(dict.fromkeys(keys, 7))
    cluster.opfail(0x05, 2, opcode="SET")  # NOT_STORED twice
    with pytest.raises(CouchbaseError) as info:
        cb.set(dict.fromkeys(keys, 8))
    results = info.value.all_results
    failed = [k for k, r in results.items() if isinstance(r, CouchbaseError)]
    assert len(failed) == 2
    assert sorted(cb.get(keys)) == sorted(8 if k not in failed else 7 for k in keys)


def test_truncated_reply_is_an_error_not_a_hang(cb, cluster, key):
    cb.set(key, "x" * 1000)
    cluster.truncate(30)  # cut the reply inside the value, then close
    try:
        start = time.monotonic()
        with pytest.raises(CouchbaseError):
            # a read is sent again on the next connection, whose replies are cut too: it
            # ends at its deadline (0.5 s; the connection's 2.5 s would be waited in full)
            cb.get(key, timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        cluster.truncate(None)
    deadline = time.monotonic() + 10
    while True:  # and the connection recovers
        try:
            assert cb.get(key) == "x" * 1000
            break
        except (NetworkError, TimeoutError) as e:
            assert time.monotonic() < deadline, e
            time.sleep(0.05)


def _set_until_acknowledged(cb, key, value, deadline):
    """Set a raw value until a set is acknowledged (the connection comes
    back); one whose outcome is unknown is sent again: the same value."""
    while True:
        try:
            return cb.set(key, value, format=FMT_PLAIN)
        except (TimeoutError, NetworkError, OutcomeUnknownError):
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("recovery", ["node reads again", "connections dropped"])
def test_store_timing_out_before_it_was_written(cluster3, recovery):
    """A node that stops reading: the 8 MiB value cannot all be written, the
    store times out while libcouchbase still sends from the caller's value.
    That value must stay alive until libcouchbase is done with it, then be
    released; the connection must work afterwards."""
    value = b"z" * (8 * 1024 * 1024)
    gc.collect()
    baseline = sys.getrefcount(value)
    with _connect(cluster3, timeout=0.5) as cb:
        cb.set("warm", b"up", format=FMT_PLAIN)
        cluster3.stall(True)
        with pytest.raises((TimeoutError, NetworkError)):
            cb.set("huge", value, format=FMT_PLAIN)
        if recovery == "connections dropped":
            cluster3.drop_connections()
        cluster3.stall(False)
        deadline = time.monotonic() + 15
        _set_until_acknowledged(cb, "after", b"ok", deadline)
        assert cb.get("after") == b"ok"
        # libcouchbase moves only inside a call, and sends what it queued for a
        # node once a call needs that node: read the stored key until it has
        # told the binding that it is done with the value
        deadline = time.monotonic() + 10
        while sys.getrefcount(value) != baseline and time.monotonic() < deadline:
            cb.get(["after", "huge"], quiet=True)
            time.sleep(0.05)
        assert sys.getrefcount(value) == baseline
        del value  # freed while the connection lives on: nothing may still point at it
        gc.collect()
        # libcouchbase may still send the rest of the timed-out value on the new
        # connection, which the node then drops: a set is not acknowledged then
        _set_until_acknowledged(cb, "big-again", b"L" * 100_000, time.monotonic() + 15)
        assert cb.get("big-again") == b"L" * 100_000


def test_store_to_a_node_never_reached_is_released_on_close(cluster3):
    """A node that hangs from the first byte: the packet never leaves
    libcouchbase's queue, and libcouchbase never says it is done with it;
    closing the Connection must still release the caller's value."""
    value = b"q" * (4 * 1024 * 1024)
    gc.collect()
    baseline = sys.getrefcount(value)
    cb = _connect(cluster3, timeout=0.5)
    cluster3.stall(True)  # before any KV connection is made
    try:
        with pytest.raises((TimeoutError, NetworkError)):
            cb.set("never-sent", value, format=FMT_PLAIN)
        cb.close()
    finally:
        cluster3.stall(False)
    assert sys.getrefcount(value) == baseline


def test_close_while_a_large_store_waits(cluster3):
    value = b"c" * (8 * 1024 * 1024)
    cb = _connect(cluster3, timeout=1.0)
    cluster3.stall(True)
    errors = []

    def store():
        try:
            cb.set("huge", value, format=FMT_PLAIN)
        except Exception as e:  # noqa: BLE001 (any clean exception will do)
            errors.append(e)

    writer = threading.Thread(target=store)
    writer.start()
    time.sleep(0.2)
    cb.close()
    writer.join(10)
    cluster3.stall(False)
    assert not writer.is_alive() and len(errors) == 1
