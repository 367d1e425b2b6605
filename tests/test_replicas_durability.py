"""exists, replica reads, durability and per-call timeouts against a 3-node
mock with replicas: what a user relies on when a node is slow, gone, or
behind."""

import subprocess
import sys
import threading
import time

import pytest

import couchbase.subdocument as SD
from couchbase import Couchbase, Durability, Result
from couchbase.exceptions import (
    ArgumentError,
    DurabilityAmbiguousError,
    DurabilityImpossibleError,
    NotFoundError,
    TimeoutError,
)
from couchbase.mock import MockCluster

pytestmark = pytest.mark.every_kind  # each test against both connection kinds (tests/kinds.py)

TIMEOUT = 1.0
SLACK = 3.0  # a loaded machine's scheduling on top of a timeout


@pytest.fixture(scope="module")
def mock3():
    with MockCluster(nodes=3, replicas=2, vbuckets=64) as mock:
        yield mock


@pytest.fixture
def cb3(mock3, connect):
    mock3.stall(False)
    mock3.hiccup(0)
    mock3.replication_delay(0, 0)
    conn = connect(mock3.host, mock3.port, bucket="default", password="", timeout=TIMEOUT)
    yield conn
    mock3.stall(False)
    conn.close()


def key_active_on(mock, node, prefix):
    return next(k for k in (f"{prefix}:{i}" for i in range(2000)) if mock.keyinfo(k)["active"] == node)


def _elapsed(fn):
    start = time.monotonic()
    try:
        return fn(), time.monotonic() - start
    except Exception as e:  # noqa: BLE001 (the caller asserts on it)
        return e, time.monotonic() - start


# -- exists ---------------------------------------------------------------------


def test_exists_single_and_multi(cb, key):
    assert cb.exists(key) is False
    cas = cb.set(key, "v")
    assert cb.exists(key) is True
    assert cb.exists(key, extended=True) == Result(True, 0, cas)
    assert cb.exists([key, f"{key}:missing"]) == {key: True, f"{key}:missing": False}
    assert cb.exists([]) == {}
    cb.delete(key)
    assert cb.exists(key) is False


def test_exists_of_a_deleted_key_is_false(each_path, cluster, key):
    # the node keeps a deleted document's tombstone: GET_META finds it, with
    # its deleted flag set (on both paths: the built GET_META and libcouchbase's)
    each_path.set(key, "v")
    each_path.delete(key)
    assert cluster.keyinfo(key)["deleted"]
    assert each_path.exists(key) is False
    assert each_path.exists(key, extended=True) == Result(False, 0, 0)
    assert each_path.exists([key, f"{key}:never"]) == {key: False, f"{key}:never": False}
    cas = each_path.set(key, "again")
    assert each_path.exists(key, extended=True) == Result(True, 0, cas)


def test_exists_does_not_fetch_or_touch(cb, key, cluster):
    cb.set(key, "v" * 10000, ttl=100)
    assert cb.exists(key)
    cluster.time_travel(101)
    assert cb.exists(key) is False  # exists is not a touch


def test_exists_bad_key(cb):
    with pytest.raises(ArgumentError) as info:
        cb.exists("")
    assert info.value.operation == "exists"


# -- replica reads --------------------------------------------------------------


def test_replica_get_reads_any_copy(cb3, mock3):
    cas = cb3.set("replica:a", {"v": 1})
    assert cb3.get("replica:a", replica=True) == {"v": 1}
    result = cb3.get("replica:a", replica=True, extended=True)
    assert result.value == {"v": 1} and result.cas == cas
    with pytest.raises(NotFoundError) as info:
        cb3.get("replica:missing", replica=True)
    assert info.value.operation == "get" and info.value.key == "replica:missing"
    assert cb3.get("replica:missing", replica=True, quiet=True) is None


def test_with_the_active_node_stalled_a_replica_read_answers_a_plain_get_times_out(cb3, mock3):
    key = key_active_on(mock3, 1, "stalled")
    cb3.set(key, "survives")
    mock3.stall(True, node_index=1)
    value, seconds = _elapsed(lambda: cb3.get(key, replica=True))
    assert value == "survives" and seconds < TIMEOUT
    plain, seconds = _elapsed(lambda: cb3.get(key))
    assert isinstance(plain, TimeoutError) and seconds < TIMEOUT + SLACK


def test_a_hung_replica_does_not_time_a_replica_read_out(cb3, mock3):
    key = key_active_on(mock3, 0, "hung-replica")
    cb3.set(key, "v")
    for replica in mock3.keyinfo(key)["replicas"]:
        mock3.stall(True, node_index=replica)
    value, seconds = _elapsed(lambda: cb3.get(key, replica=True))
    assert value == "v" and seconds < TIMEOUT


DROPPED_CHILD = """
import sys
from couchbase import Couchbase
host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for _ in range(3):
    cb = Couchbase.connect(host, port, bucket="default", password="", timeout=0.5)
    assert cb.get(key, replica=True) == "v"
    del cb  # unclosed, the stalled replicas' copies still to come
print("dropped")
"""


def test_dropping_a_connection_while_replica_copies_are_in_flight_does_not_crash(mock3):
    # the Connection is freed with the slower copies' packets in flight: destroying libcouchbase
    # under them crashed (they were failed through a server already detached from the instance)
    key = key_active_on(mock3, 0, "dropped")
    with Couchbase.connect(mock3.host, mock3.port, bucket="default", password="") as cb:
        cb.set(key, "v")
    try:
        for replica in mock3.keyinfo(key)["replicas"]:
            mock3.stall(True, node_index=replica)
        proc = subprocess.run([sys.executable, "-W", "ignore", "-c", DROPPED_CHILD, mock3.host,
                               str(mock3.port), key], capture_output=True, text=True, timeout=60)
    finally:
        mock3.stall(False)
    assert proc.returncode == 0 and proc.stdout.split() == ["dropped"], (proc.returncode, proc.stderr[-2000:])


def test_all_replicas_returns_every_copy_marked(cb3, mock3):
    cas = cb3.set("replica:all", "x")
    copies = cb3.get_all_replicas("replica:all")
    assert sorted(c.is_replica for c in copies) == [False, True, True]
    assert all((c.value, c.cas) == ("x", cas) for c in copies)
    multi = cb3.get_all_replicas(["replica:all", "replica:none"], quiet=True)
    assert len(multi["replica:all"]) == 3 and multi["replica:none"] == []


def test_a_lagging_replica_shows_its_own_copy(cb3, mock3):
    cb3.set("replica:lag", "old")
    mock3.replication_delay(lag_ms=60000)
    cb3.set("replica:lag", "new")
    copies = cb3.get_all_replicas("replica:lag")
    assert sorted((c.is_replica, c.value) for c in copies) == [(False, "new"), (True, "old"), (True, "old")]


def test_replica_reads_after_a_failover_skip_the_empty_slots(cb3, mock3):
    keys = [f"failover:{i}" for i in range(12)]
    cb3.set({k: k for k in keys})
    mock3.failover(2)
    try:
        assert cb3.get(keys, replica=True) == keys
        for k in keys:
            copies = cb3.get_all_replicas(k)
            assert [c.value for c in copies] == [k] * len(copies) and len(copies) >= 1
    finally:
        mock3.restart(2)


# -- durability -----------------------------------------------------------------


@pytest.mark.parametrize("level, wire", [(Durability.MAJORITY, 1),
                                         (Durability.MAJORITY_AND_PERSIST_TO_ACTIVE, 2),
                                         (Durability.PERSIST_TO_MAJORITY, 3)])
def test_every_mutation_takes_a_durability_level(cb3, mock3, level, wire):
    k = f"durable:{wire}"
    cb3.delete(f"{k}:n", quiet=True)
    mock3.durability_frames(clear=True)
    cb3.set(k, 1, durability=level)
    cb3.replace(k, 2, durability=level, timeout=10.0)
    cb3.incr(f"{k}:n", initial=0, durability=level)
    cb3.set(k, {"x": 0}, durability=level)
    cb3.mutate_in(k, [SD.upsert("x", 1)], durability=level)
    cb3.delete(k, durability=level)
    frames = [(f["key"], f["level"], f["timeout_ms"]) for f in mock3.durability_frames()["frames"]]
    # 0.9 of the call's timeout, in milliseconds, in network order; libcouchbase
    # raises a timeout below its 1.5 s floor (persistence_timeout_floor) to the floor
    assert frames == [(k, wire, 1350), (k, wire, 9000), (f"{k}:n", wire, 1350), (k, wire, 1350),
                      (k, wire, 1350), (k, wire, 1350)]
    assert cb3.get(k, quiet=True) is None and cb3.get(f"{k}:n") == 0


def test_durability_impossible(connect):
    with MockCluster(nodes=1, replicas=1, vbuckets=16) as lonely:
        conn = connect(lonely.host, lonely.port, bucket="default", password="", timeout=TIMEOUT)
        with pytest.raises(DurabilityImpossibleError) as info:
            conn.set("k", 1, durability=Durability.MAJORITY)
        assert info.value.key == "k" and "not applied" in str(info.value)
        assert conn.get("k", quiet=True) is None
        conn.close()


def test_durability_ambiguous(cb3, mock3):
    key = key_active_on(mock3, 0, "ambiguous")
    for replica in mock3.keyinfo(key)["replicas"]:
        mock3.stall(True, node_index=replica)
    # the node gives up at 0.9 of the 3 s timeout the frame carries: ambiguous, not a timeout
    outcome, seconds = _elapsed(lambda: cb3.set(key, 1, durability=Durability.MAJORITY, timeout=3.0))
    assert isinstance(outcome, DurabilityAmbiguousError), outcome
    assert outcome.key == key and "read the key back" in str(outcome)
    assert 2.7 <= seconds < 3.0 + SLACK


def test_a_change_waits_for_a_pending_durable_write(cb3, mock3, connect):
    # the node refuses changes to a key with a durable write pending
    # (SYNC_WRITE_IN_PROGRESS); the client retries them until it completes
    key = key_active_on(mock3, 0, "pending")
    cb3.set(key, 0)
    mock3.replication_delay(lag_ms=800)
    other = connect(mock3.host, mock3.port, bucket="default", password="", timeout=TIMEOUT)
    try:
        done = []
        writer = threading.Thread(target=lambda: done.append(
            cb3.set(key, 1, durability=Durability.MAJORITY, timeout=5.0)))
        writer.start()
        time.sleep(0.2)
        other.set(key, 2, timeout=5.0)
        writer.join()
        assert done and other.get(key) == 2
    finally:
        other.close()


def test_observe_based_durability(cb3, mock3):
    mock3.replication_delay(lag_ms=200, persist_ms=300)
    start = time.monotonic()
    cb3.set("observed", 1, replicate_to=2, persist_to=1)
    assert time.monotonic() - start >= 0.2
    info = mock3.keyinfo("observed")
    assert all(copy["found"] for copy in info["copies"])
    with pytest.raises(DurabilityImpossibleError):
        cb3.set("observed", 1, replicate_to=3)
    with pytest.raises(ArgumentError):
        cb3.set("observed", 1, replicate_to=1, durability=Durability.MAJORITY)


# Observe-based durability on every kind of mutation: each is (name, the key's state before,
# the change with the copies asked, what every copy then shows).
OBSERVED_MUTATIONS = [
    ("set", lambda cb, k: cb.delete(k, quiet=True), lambda cb, k, **o: cb.set(k, {"n": 1}, **o), True),
    ("delete", lambda cb, k: cb.set(k, 1), lambda cb, k, **o: cb.delete(k, **o), False),
    ("incr", lambda cb, k: cb.delete(k, quiet=True), lambda cb, k, **o: cb.incr(k, initial=10, **o), True),
    ("decr", lambda cb, k: cb.set(k, 5), lambda cb, k, **o: cb.decr(k, amount=2, **o), True),
    ("mutate_in", lambda cb, k: cb.set(k, {}), lambda cb, k, **o: cb.mutate_in(k, [SD.upsert("n", 1)], **o),
     True),
]
OBSERVED_IDS = [m[0] for m in OBSERVED_MUTATIONS]


@pytest.mark.parametrize("name,prepare,mutate,found", OBSERVED_MUTATIONS, ids=OBSERVED_IDS)
def test_observe_based_durability_on_every_mutation(cb3, mock3, name, prepare, mutate, found):
    key = f"observed-{name}"
    prepare(cb3, key)
    mock3.replication_delay(lag_ms=200, persist_ms=300)
    outcome, seconds = _elapsed(lambda: mutate(cb3, key, replicate_to=2, persist_to=3))
    assert not isinstance(outcome, Exception), outcome
    assert seconds >= 0.2  # it waited for the replicas
    info = mock3.keyinfo(key)
    assert [copy["found"] for copy in info["copies"]] == [found] * 3, info
    if found:  # every copy holds this change, on disk
        assert all(copy["seqno"] == info["seqno"] and copy["persisted"] for copy in info["copies"]), info


@pytest.mark.parametrize("name,prepare,mutate,found", OBSERVED_MUTATIONS, ids=OBSERVED_IDS)
def test_observe_asking_more_copies_than_the_bucket_has_changes_nothing(cb3, mock3, name, prepare, mutate,
                                                                         found):
    key = f"impossible-{name}"
    prepare(cb3, key)
    before = mock3.keyinfo(key)
    for observe in ({"replicate_to": 3}, {"persist_to": 4}):  # 2 replicas, 3 nodes
        with pytest.raises(DurabilityImpossibleError) as caught:
            mutate(cb3, key, **observe)
        assert caught.value.key == key and caught.value.operation == name
    assert mock3.keyinfo(key) == before  # nothing was sent


def test_copies_not_confirmed_in_time_say_the_change_was_applied(cb3, mock3):
    # one increment, whose replicas lag past its timeout: applied once, reported as such
    cb3.set("unconfirmed", 1)
    mock3.replication_delay(lag_ms=2000)
    with pytest.raises(DurabilityAmbiguousError) as caught:
        cb3.incr("unconfirmed", replicate_to=2, timeout=0.3)
    error = caught.value
    assert "applied" in str(error) and "replicate_to=2" in str(error)
    assert error.key == "unconfirmed" and error.cas == mock3.keyinfo("unconfirmed")["cas"]
    mock3.replication_delay(0, 0)
    assert cb3.get("unconfirmed") == 2  # applied exactly once


def test_observe_on_several_keys_waits_for_each(cb3, mock3):
    keys = [f"observed-multi:{i}" for i in range(6)]
    cb3.set({k: i for i, k in enumerate(keys)})
    mock3.replication_delay(lag_ms=150)
    assert cb3.delete(keys, replicate_to=2) == {k: True for k in keys}
    assert all(not copy["found"] for k in keys for copy in mock3.keyinfo(k)["copies"])
    assert cb3.incr(keys, initial=3, replicate_to=1) == {k: 3 for k in keys}


# -- per-call timeout -----------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda cb, k: cb.get(k, timeout=0.2),
    lambda cb, k: cb.set(k, 1, timeout=0.2),
    lambda cb, k: cb.exists(k, timeout=0.2),
    lambda cb, k: cb.lookup_in(k, [SD.get("a")], timeout=0.2),
    lambda cb, k: cb.incr(k, initial=0, timeout=0.2),
    lambda cb, k: cb.delete(k, timeout=0.2),
    lambda cb, k: cb.stats("memory", timeout=0.2),
])
def test_a_per_call_timeout_overrides_the_connections(cb3, mock3, call):
    key = key_active_on(mock3, 1, "slow")
    mock3.stall(True, node_index=1)
    outcome, seconds = _elapsed(lambda: call(cb3, key))
    assert isinstance(outcome, Exception) and "timeout" in str(outcome).lower()
    assert seconds < 0.2 + SLACK / 2 and seconds < TIMEOUT


def test_a_longer_per_call_timeout_waits_longer(cb3, mock3):
    key = key_active_on(mock3, 1, "slower")
    cb3.set(key, "v")
    mock3.hiccup(1500, node_index=1)
    try:
        assert cb3.get(key, timeout=5.0) == "v"
    finally:
        mock3.hiccup(0)


def test_timeout_argument_is_checked(cb, key):
    for bad in (0, -1, float("nan"), "1", 5000):
        with pytest.raises(ArgumentError) as info:
            cb.get(key, timeout=bad)
        assert "timeout" in str(info.value)
