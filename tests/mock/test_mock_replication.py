"""Replicas as copies per node, replication lag, failover promotion, durable writes and
observe: at the packet level, and through libcouchbase's cbc."""

import socket
import struct
import subprocess
import time

import pytest
from mock_helpers import find_tool
from mock_kvclient import DEFAULT_FEATURES, KVClient, vbucket

from couchbase.mock import MockCluster
from couchbase.mock.protocol import HEADER, Feature, Op, Status

NVB = 64
DURABLE_FEATURES = DEFAULT_FEATURES + (Feature.SYNC_REPLICATION,)
MAJORITY, MAJORITY_AND_PERSIST_TO_ACTIVE, PERSIST_TO_MAJORITY = 1, 2, 3


@pytest.fixture
def mock3():
    with MockCluster(nodes=3, vbuckets=NVB) as mock:
        yield mock


def client(mock, node, features=DURABLE_FEATURES, timeout=5.0):
    c = KVClient(mock.host, mock.kv_ports[node], timeout=timeout)
    c.nvb = NVB
    return c.bootstrap(features=features)


def placement(mock, key):
    info = mock.keyinfo(key)
    return info["active"], info["replicas"]


def key_on(mock, node, prefix):
    """A key whose vbucket is active on ``node``."""
    return next(k for k in ("%s%d" % (prefix, i) for i in range(1000)) if placement(mock, k)[0] == node)


def send_framed(c, opcode, key, frames, extras=b"", value=b""):
    """Send a request with the alternative magic and ``frames``; return its opaque."""
    wire = c.wkey(key)
    c._opaque += 1
    header = HEADER.pack(0x08, opcode, (len(frames) << 8) | len(wire), len(extras), 0,
                         vbucket(key.encode(), NVB), len(frames) + len(extras) + len(wire) + len(value),
                         c._opaque, 0)
    c.send(header + frames + extras + wire + value)
    return c._opaque


def durability(level, timeout_ms=None):
    if timeout_ms is None:
        return bytes((0x11, level))
    return bytes((0x13, level)) + struct.pack(">H", timeout_ms)


def durable_set(c, key, value, level=MAJORITY, timeout_ms=None):
    send_framed(c, Op.SET, key, durability(level, timeout_ms), struct.pack(">II", 0, 0), value)
    return c.recv()


def seqnos(c, key, vbuuid):
    res = c.call(Op.OBSERVE_SEQNO, value=struct.pack(">Q", vbuuid), vb=vbucket(key.encode(), NVB))
    assert res.status == 0, res
    _, _, _, persisted, current = struct.unpack(">BHQQQ", res.value[:27])
    return current, persisted


def observe(c, key):
    raw = c.wkey(key)
    res = c.call(Op.OBSERVE, value=struct.pack(">HH", vbucket(key.encode(), NVB), len(raw)) + raw)
    assert res.status == 0, res
    return res.value[4 + len(raw)]


def test_replicas_get_each_mutation_after_the_lag(mock3):
    key = "lagged"
    active, (replica,) = placement(mock3, key)
    other = ({0, 1, 2} - {active, replica}).pop()
    with client(mock3, active) as a, client(mock3, replica) as r, client(mock3, other) as o:
        v0 = a.set(key, b"v0")
        assert r.call(Op.GET_REPLICA, key).value == b"v0"  # no lag: there at once
        mock3.replication_delay(lag_ms=300)
        res = a.set(key, b"v1")
        vbuuid, seqno = struct.unpack(">QQ", res.extras)
        assert r.call(Op.GET_REPLICA, key).value == b"v0"
        assert seqnos(r, key, vbuuid)[0] < seqno == seqnos(a, key, vbuuid)[0]
        assert [(c["node"], c["cas"]) for c in mock3.keyinfo(key)["copies"]] == [
            (active, res.cas), (replica, v0.cas)]
        time.sleep(0.45)
        got = r.call(Op.GET_REPLICA, key)
        assert got.status == 0 and got.value == b"v1" and got.cas == res.cas
        assert [c["cas"] for c in mock3.keyinfo(key)["copies"]] == [res.cas, res.cas]
        assert seqnos(r, key, vbuuid) == (seqno, seqno)
        # only a node holding a replica of the vbucket serves replica reads
        assert a.call(Op.GET_REPLICA, key).status == Status.NOT_MY_VBUCKET
        assert o.call(Op.GET_REPLICA, key).status == Status.NOT_MY_VBUCKET


def test_failover_promotes_the_replica_copy_losing_what_it_had_not_received(mock3):
    kept, lost = key_on(mock3, 0, "kept"), key_on(mock3, 0, "lost")
    with client(mock3, 0) as a:
        assert a.set(kept, b"old").status == 0
        mock3.replication_delay(lag_ms=10000)  # what follows never reaches a replica
        assert a.set(kept, b"new").status == 0 and a.set(lost, b"x").status == 0
        assert a.get(kept).value == b"new"
    mock3.failover(0)
    mock3.replication_delay(lag_ms=0)
    assert placement(mock3, kept)[0] != 0
    with client(mock3, placement(mock3, kept)[0]) as n:
        assert n.get(kept).value == b"old"
    with client(mock3, placement(mock3, lost)[0]) as n:
        assert n.get(lost).status == Status.KEY_ENOENT
    assert not mock3.keyinfo(lost)["found"]


def test_a_failover_with_replication_caught_up_loses_nothing(mock3):
    keys = [key_on(mock3, 1, "safe%d-" % i) for i in range(3)]
    with client(mock3, 1) as a:
        for k in keys:
            assert a.set(k, k.encode()).status == 0
    mock3.failover(1)
    for k in keys:
        assert placement(mock3, k)[1] == [-1]  # the promoted replica's slot stays empty
        with client(mock3, placement(mock3, k)[0]) as n:
            assert n.get(k).value == k.encode()
    mock3.rebalance()  # new replicas, copied from the active
    for k in keys:
        with client(mock3, placement(mock3, k)[1][0]) as r:
            assert r.call(Op.GET_REPLICA, k).value == k.encode()


@pytest.mark.parametrize("level, at_least", [(MAJORITY, 0.2), (MAJORITY_AND_PERSIST_TO_ACTIVE, 0.3),
                                             (PERSIST_TO_MAJORITY, 0.5)])
def test_a_durable_write_is_answered_when_its_level_is_met(mock3, level, at_least):
    key = "durable%d" % level
    mock3.replication_delay(lag_ms=200, persist_ms=300)
    with client(mock3, placement(mock3, key)[0]) as a:
        started = time.monotonic()
        res = durable_set(a, key, b"d", level, timeout_ms=5000)
        elapsed = time.monotonic() - started
        assert res.status == 0 and len(res.extras) == 16 and res.cas
        assert at_least <= elapsed < at_least + 1.5, elapsed
    frames = mock3.durability_frames()["frames"]
    assert frames == [{"node": placement(mock3, key)[0], "opcode": Op.SET, "key": key, "level": level,
                       "timeout_ms": 5000}]


def test_a_durable_write_without_delays_is_answered_at_once(mock3):
    with client(mock3, placement(mock3, "quick")[0]) as a:
        res = durable_set(a, "quick", b"q", PERSIST_TO_MAJORITY)
        assert res.status == 0
        send_framed(a, Op.DELETE, "quick", durability(MAJORITY, 1000))
        assert a.recv().status == 0 and a.get("quick").status == Status.KEY_ENOENT
    assert [f["timeout_ms"] for f in mock3.durability_frames(clear=True)["frames"]] == [None, 1000]
    assert mock3.durability_frames()["frames"] == []


def test_durability_is_impossible_when_too_few_nodes_hold_the_vbucket():
    with MockCluster(nodes=1, replicas=1, vbuckets=NVB) as mock, client(mock, 0) as c:
        assert durable_set(c, "alone", b"v").status == Status.DURABILITY_IMPOSSIBLE
        assert c.get("alone").status == Status.KEY_ENOENT  # nothing was written
        mock.opfail(Status.SYNC_WRITE_AMBIGUOUS, 1, "SET")  # what a node may answer, injected
        assert durable_set(c, "alone", b"v").status == Status.SYNC_WRITE_AMBIGUOUS
        assert c.set("alone", b"v").status == 0  # a plain write is fine


def test_a_pending_durable_write_holds_off_the_key_then_times_out_ambiguous():
    with MockCluster(nodes=2, vbuckets=NVB) as mock:
        key = "pending"
        mock.replication_delay(lag_ms=600)
        active = placement(mock, key)[0]
        with client(mock, active) as a, client(mock, active) as b:
            started = time.monotonic()
            send_framed(a, Op.SET, key, durability(MAJORITY, 150), struct.pack(">II", 0, 0), b"d")
            time.sleep(0.05)
            assert b.set(key, b"plain").status == Status.SYNC_WRITE_IN_PROGRESS
            assert b.arith(key, 1).status == Status.SYNC_WRITE_IN_PROGRESS
            assert b.get(key).status == 0  # reads are not held off
            res = a.recv()
            assert res.status == Status.SYNC_WRITE_AMBIGUOUS
            assert 0.15 <= time.monotonic() - started < 1.0
            assert b.set(key, b"plain").status == 0


def test_framing_that_was_not_negotiated_is_refused(mock3):
    key = "framed"
    node = placement(mock3, key)[0]
    no_alt = tuple(f for f in DEFAULT_FEATURES if f != Feature.ALT_REQUEST)
    with client(mock3, node, no_alt) as c:
        send_framed(c, Op.SET, key, durability(MAJORITY), struct.pack(">II", 0, 0), b"v")
        res = c.recv()
        assert res.status == Status.EINVAL and b"HELLO 0x10" in res.value
    with client(mock3, node, DEFAULT_FEATURES) as c:  # flexible framing, no synchronous replication
        send_framed(c, Op.SET, key, durability(MAJORITY), struct.pack(">II", 0, 0), b"v")
        res = c.recv()
        assert res.status == Status.EINVAL and b"HELLO 0x11" in res.value
        send_framed(c, Op.SET, key, b"\x00", struct.pack(">II", 0, 0), b"v")  # a reorder barrier is fine
        assert c.recv().status == 0
    with client(mock3, node) as c:
        cases = [(Op.SET, durability(7), Status.DURABILITY_INVALID_LEVEL),
                 (Op.SET, durability(MAJORITY, 0), Status.EINVAL),
                 (Op.SET, b"\x12\x01", Status.EINVAL),           # a durability frame of 2 bytes
                 (Op.SET, b"\x13\x01\x00", Status.EINVAL),       # longer than the framing extras
                 (Op.SET, b"\x40", Status.EINVAL),               # impersonation: not supported
                 (Op.GET, durability(MAJORITY), Status.EINVAL)]  # not a mutation
        for opcode, frames, status in cases:
            extras = struct.pack(">II", 0, 0) if opcode == Op.SET else b""
            send_framed(c, opcode, key, frames, extras, b"v" if opcode == Op.SET else b"")
            assert c.recv().status == status, (opcode, frames)
        assert c.get(key).value == b"v"


def test_observe_answers_from_each_nodes_copy(mock3):
    key = "observed"
    active, (replica,) = placement(mock3, key)
    mock3.replication_delay(lag_ms=200, persist_ms=200)
    with client(mock3, active) as a, client(mock3, replica) as r:
        vbuuid, seqno = struct.unpack(">QQ", a.set(key, b"v").extras)
        assert observe(a, key) == 0x00 and observe(r, key) == 0x80  # in memory / not there yet
        assert seqnos(a, key, vbuuid) == (seqno, seqno - 1)
        time.sleep(0.3)
        assert observe(a, key) == 0x01 and observe(r, key) == 0x00  # persisted / in memory
        assert seqnos(r, key, vbuuid) == (seqno, seqno - 1)
        time.sleep(0.2)
        assert observe(r, key) == 0x01 and seqnos(r, key, vbuuid) == (seqno, seqno)
        a.call(Op.DELETE, key)
        assert observe(a, key) == 0x81  # deleted, not yet persisted
        time.sleep(0.25)
        assert observe(a, key) == 0x80


def test_one_stalled_or_slow_node_leaves_the_others_answering():
    with MockCluster(nodes=2, vbuckets=NVB) as mock:
        k0, k1 = key_on(mock, 0, "n0-"), key_on(mock, 1, "n1-")
        with client(mock, 0, timeout=0.5) as c0, client(mock, 1, timeout=0.5) as c1:
            assert mock.stall(True, node_index=0) == {"stalled": True, "nodes": [0]}
            assert c1.set(k1, b"v").status == 0
            with pytest.raises(socket.timeout):
                c0.set(k0, b"v")
            mock.stall(False, node_index=0)
            assert c0.recv().status == 0  # the request waited in the socket
            mock.hiccup(300, node_index=1)
            started = time.monotonic()
            assert c0.get(k0).status == 0 and time.monotonic() - started < 0.2
            started = time.monotonic()
            assert c1.get(k1).status == 0 and time.monotonic() - started >= 0.3


def test_a_stalled_replica_takes_no_replication_until_it_resumes():
    with MockCluster(nodes=3, replicas=2, vbuckets=NVB) as mock:
        key = "hung"
        active, (first, second) = placement(mock, key)
        with client(mock, active) as a:
            v0 = struct.unpack(">QQ", a.set(key, b"v0").extras)[1]
            mock.stall(True, node_index=first)
            # majority of three copies: the active and the replica that answers
            res = durable_set(a, key, b"v1", MAJORITY, timeout_ms=2000)
            v1 = struct.unpack(">QQ", res.extras)[1]
            assert res.status == 0 and [c["seqno"] for c in mock.keyinfo(key)["copies"]] == [v1, v0, v1]
            mock.stall(True, node_index=second)  # now no replica can acknowledge
            res = durable_set(a, key, b"v2", MAJORITY, timeout_ms=200)
            assert res.status == Status.SYNC_WRITE_AMBIGUOUS
            mock.stall(False)
            assert len({c["seqno"] for c in mock.keyinfo(key)["copies"]}) == 1  # caught up
        with client(mock, first) as r:
            assert r.call(Op.GET_REPLICA, key).value == b"v2"


def test_with_two_replicas_a_failover_keeps_the_other_replica_serving():
    with MockCluster(nodes=3, replicas=2, vbuckets=NVB) as mock:
        keys = [key_on(mock, 0, "two%d-" % i) for i in range(3)]
        with client(mock, 0) as a:
            for k in keys:
                assert a.set(k, k.encode()).status == 0
        mock.failover(0)
        for k in keys:
            active, replicas = placement(mock, k)
            live = [n for n in replicas if n >= 0]
            assert active != 0 and len(live) == 1 and live[0] not in (0, active)
            with client(mock, active) as n, client(mock, live[0]) as r:
                assert n.get(k).value == k.encode() and r.call(Op.GET_REPLICA, k).value == k.encode()
                assert durable_set(n, k, b"after", MAJORITY).status == 0  # two of three copies remain


def test_libcouchbase_durability_waits_for_replication_and_persistence(mock3):
    # observe-based (OBSERVE_SEQNO polled on every node) and synchronous (the frame)
    mock3.replication_delay(lag_ms=300, persist_ms=200)
    for args, at_least, says in ((["--persist-to=2", "--replicate-to=1"], 0.5, "Persisted(2). Replicated(1)"),
                                 (["--durability=majority"], 0.3, "Stored")):
        started = time.monotonic()
        res = subprocess.run([find_tool("cbc"), "create", "-U", mock3.connstr(), "-u", mock3.username,
                              "-P", mock3.password, "-V", "v", *args, "lcb-durable"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and says in res.stderr, res.stderr
        assert time.monotonic() - started >= at_least, args
    assert [f["level"] for f in mock3.durability_frames()["frames"]] == [MAJORITY]


def test_a_lock_stays_on_the_active_node(mock3):
    key = "locked"
    active, (replica,) = placement(mock3, key)
    with client(mock3, active) as a, client(mock3, replica) as r:
        stored = a.set(key, b"v")
        locked = a.call(Op.GET_LOCKED, key, struct.pack(">I", 5))
        assert locked.status == 0 and locked.cas != stored.cas
        assert r.call(Op.GET_REPLICA, key).cas == stored.cas  # the replica never saw the lock
        assert a.set(key, b"w", cas=locked.cas).status == 0  # the lock's CAS unlocks
        assert r.call(Op.GET_REPLICA, key).value == b"w"
