"""AsyncConnection under injected faults, driven through the mock cluster's
controls while many operations are in flight: a stalled node times every
kind of operation out within the operation timeout; dropped connections,
restarted nodes and a failover mid-workload lose no acknowledged write.
(The exactly-once rule under the same faults: tests/test_exactly_once.py,
whose workloads run from threads and from tasks.) Each test runs on the
standard asyncio loop and on uvloop (the ``run`` fixture)."""

import asyncio
import threading
import time

import pytest
from test_aio_tasks import OPERATIONS, _prepare

from couchbase import FMT_PLAIN
from couchbase.aio import AsyncConnection
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

TRANSIENT = (TimeoutError, NetworkError, TemporaryFailError, NotFoundError, OutcomeUnknownError)


def _connect(mock, **options):
    return AsyncConnection.connect(mock.host, mock.port, password="", bucket="default", **options)


@pytest.fixture
def cluster3():
    """A private 3-node cluster (these tests change its topology)."""
    with MockCluster(nodes=3, buckets={"default": ""}) as mock:
        yield mock


async def _until_answered(call, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await call()
        except CouchbaseError:
            assert time.monotonic() < deadline, "the cluster never answered again"
            await asyncio.sleep(0.05)


def test_a_stalled_node_times_out_every_operation_within_the_operation_timeout(run, cluster3, key):
    """Every kind of operation, 10 of each in flight, to a node that stops
    answering: each fails with a CouchbaseError (a timeout, or the network
    error of the connection given up) within the operation timeout plus
    slack, none hangs; and every operation works once the node answers."""
    timeout = 0.5

    async def timed(future):
        try:
            await future
            return None, time.monotonic()
        except CouchbaseError as e:
            return e, time.monotonic()

    async def main():
        async with await _connect(cluster3, timeout=timeout) as acb:
            await _prepare(acb, key)
            cluster3.stall(True)
            try:
                started = time.monotonic()
                outcomes = await asyncio.gather(*[timed(call(acb, key)) for call in OPERATIONS.values()
                                                  for _ in range(10)])
            finally:
                cluster3.stall(False)
            await _until_answered(lambda: acb.get(key))
            await _prepare(acb, key)
            after = await asyncio.gather(*[call(acb, key) for call in OPERATIONS.values()],
                                         return_exceptions=True)
            return started, outcomes, after
    started, outcomes, after = run(main())
    for (error, ended), name in zip(outcomes, [n for n in OPERATIONS for _ in range(10)]):
        assert isinstance(error, (TimeoutError, NetworkError)), (name, error)
        assert ended - started < timeout + 1.5, (name, ended - started)
    expected_errors = {"add", "lock", "unlock"}  # (the key exists, is missing, is not locked)
    for name, outcome in zip(OPERATIONS, after):
        assert not isinstance(outcome, Exception) or name in expected_errors, (name, outcome)


async def _write_through(acb, keys, acknowledged):
    """Set each key, retrying transient failures; record acknowledged writes
    (a set whose outcome is unknown is not acknowledged: it is sent again,
    harmless for a set of the same value that no one else writes)."""
    for key in keys:
        value = _value_of(key)
        deadline = time.monotonic() + 20
        while True:
            try:
                await acb.set(key, value, format=FMT_PLAIN if isinstance(value, bytes) else None)
                acknowledged[key] = value
                break
            except TRANSIENT:
                assert time.monotonic() < deadline, f"{key} was never stored"
                await asyncio.sleep(0.01)


def _value_of(key):
    i = int(key.rsplit(":", 1)[1])
    # every tenth a 20 KiB raw value: a packet the binding builds (on
    # NOT_MY_VBUCKET libcouchbase copies it to the vbucket's new owner)
    return str(i).encode() * (20480 // len(str(i))) if i % 10 == 0 else i


def _fault(mock, fault, stop):
    """Inject the fault: a failover once, drops and restarts again and again."""
    while True:
        if fault == "failover":
            mock.failover(1)
        elif fault == "drop_connections":
            mock.drop_connections()
        else:
            mock.restart(stop.rounds % mock.nodes)
        stop.rounds += 1
        if fault == "failover" or stop.wait(0.1):
            return


@pytest.mark.parametrize("fault", ["drop_connections", "restart", "failover"])
def test_no_acknowledged_write_is_lost_to_a_fault_mid_workload(run, cluster3, fault):
    """20 tasks storing 3,000 keys (small values and built packets) on one
    AsyncConnection, every reply delayed 5 ms (so that many are in flight
    when the fault strikes), the fault striking from when 30% are stored:
    every key is stored in the end and reads back as acknowledged."""
    keys = [f"aio:{fault}:{i}" for i in range(3000)]
    acknowledged = {}
    stop = threading.Event()
    stop.rounds = 0
    injector = threading.Thread(target=_fault, args=(cluster3, fault, stop), daemon=True)

    async def main():
        async with await _connect(cluster3, timeout=2.0) as acb:
            writers = asyncio.gather(*[_write_through(acb, keys[i::20], acknowledged) for i in range(20)])
            cluster3.hiccup(5)
            try:
                while len(acknowledged) < len(keys) * 3 // 10 and not writers.done():
                    await asyncio.sleep(0.01)
                injector.start()
                while not stop.rounds and not writers.done():
                    await asyncio.sleep(0.01)
                struck_at = len(acknowledged)
                await asyncio.wait_for(writers, 120)
            finally:
                stop.set()
                injector.join(30)
                cluster3.hiccup(0)
            return struck_at, await _until_answered(lambda: acb.get(keys))
    struck_at, got = run(main())
    assert len(acknowledged) == len(keys)
    assert got == [acknowledged[k] for k in keys]
    assert struck_at < len(keys) * 0.9 and stop.rounds >= (1 if fault == "failover" else 3), \
        (struck_at, stop.rounds)
