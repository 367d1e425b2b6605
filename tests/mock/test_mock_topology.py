"""Topology changes and fault injection through the in-process control methods."""

import json
import random
import socket
import struct
import time

import pytest
from mock_kvclient import KVClient, connect_owner, vbucket

from couchbase.mock import BucketError, MockCluster
from couchbase.mock.protocol import Op, Status


def config_of(mock, node=0, bucket="default"):
    with KVClient(mock.host, mock.kv_ports[node]) as c:
        c.bootstrap(bucket=bucket)
        return c.config()


def test_failover_restart_add_node_rebalance(mock3):
    key = b"topo-key"
    with connect_owner(mock3, key) as c:
        r = c.set(key, b"v")
        old_uuid = struct.unpack(">QQ", r.extras)[0]
    rev = mock3.rev
    cfg = config_of(mock3)
    owner = cfg["vBucketServerMap"]["vBucketMap"][vbucket(key)][0]
    failed_port = cfg["nodesExt"][owner]["services"]["kv"]
    victim = mock3.kv_ports.index(failed_port)

    info = mock3.failover(victim)
    assert info["failed"] == [victim] and mock3.rev == rev + 1
    with pytest.raises(OSError):
        socket.create_connection((mock3.host, failed_port), timeout=2).close()
    live = [i for i in range(3) if i != victim][0]
    cfg = config_of(mock3, live)
    assert cfg["rev"] == mock3.rev and len(cfg["nodesExt"]) == 2
    rows = cfg["vBucketServerMap"]["vBucketMap"]
    assert all(row[0] in (0, 1) and row[1] in (-1, 0, 1) and row[0] != row[1] for row in rows)
    assert any(row[1] == -1 for row in rows)  # replicas lost with the node until a rebalance
    with connect_owner(mock3, key) as c:
        assert c.get(key).value == b"v"  # the replica took over
        res = c.call(Op.OBSERVE_SEQNO, value=struct.pack(">Q", old_uuid), vb=vbucket(key))
        assert res.value[0] == 1 and struct.unpack(">Q", res.value[27:35])[0] == old_uuid  # failover format

    mock3.restart(victim)
    cfg = config_of(mock3, victim)
    assert len(cfg["nodesExt"]) == 3 and cfg["rev"] == mock3.rev
    assert {row[0] for row in cfg["vBucketServerMap"]["vBucketMap"]} == {0, 1, 2}

    rev = mock3.rev
    mock3.add_node()
    assert mock3.nodes == 4 and mock3.rev == rev + 1 and len(mock3.kv_ports) == 4
    cfg = config_of(mock3, 3)
    actives = [row[0] for row in cfg["vBucketServerMap"]["vBucketMap"]]
    assert all(actives.count(i) == 256 for i in range(4))
    with connect_owner(mock3, key) as c:
        assert c.get(key).value == b"v"

    mock3.add_node(rebalance=False)
    cfg = config_of(mock3, 4)
    assert len(cfg["nodesExt"]) == 5 and 4 not in {row[0] for row in cfg["vBucketServerMap"]["vBucketMap"]}
    mock3.rebalance()
    cfg = config_of(mock3, 4)
    assert 4 in {row[0] for row in cfg["vBucketServerMap"]["vBucketMap"]}


def test_restart_healthy_node_drops_connections(mock1):
    c = KVClient(mock1.host, mock1.kv_ports[0]).bootstrap()
    port = mock1.kv_ports[0]
    mock1.restart(0)
    with pytest.raises((ConnectionError, OSError)):
        c.call(Op.NOOP)
    c.close()
    assert mock1.kv_ports[0] == port
    with KVClient(mock1.host, port) as c2:
        assert c2.bootstrap().call(Op.NOOP).status == 0


def test_cannot_fail_over_last_node(mock1):
    with pytest.raises(ValueError):
        mock1.failover(0)
    with pytest.raises(IndexError):
        mock1.failover(5)


def test_hiccup_delays_replies(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        mock1.hiccup(300, offset=10)
        start = time.monotonic()
        c.send(struct.pack(">BBHBBHIIQ", 0x80, Op.NOOP, 0, 0, 0, 0, 0, 1, 0))
        c.sock.settimeout(5)
        first = c.sock.recv(100)
        early = time.monotonic() - start
        rest = b""
        while len(first) + len(rest) < 24:
            rest += c.sock.recv(100)
        late = time.monotonic() - start
        assert len(first) == 10 and early < 0.25 and late >= 0.29
        mock1.hiccup(0)
        start = time.monotonic()
        assert c.call(Op.NOOP).status == 0 and time.monotonic() - start < 0.25


def test_truncate_cuts_replies(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        c.set("tr", b"x" * 100)
        mock1.truncate(30)
        c.send(struct.pack(">BBHBBHIIQ", 0x80, Op.GET, 3, 0, 0, vbucket(b"tr"), 3, 7, 0) + b"\x00tr")
        data = b""
        c.sock.settimeout(5)
        while True:
            chunk = c.sock.recv(1000)
            if not chunk:
                break
            data += chunk
        assert len(data) == 30
    mock1.truncate(-1)
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        assert len(c.bootstrap().get("tr").value) == 100


def test_opfail(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        c.set("of", b"v")
        mock1.opfail(Status.ETMPFAIL, 2, opcode="GET")
        assert [c.get("of").status for _ in range(3)] == [0x86, 0x86, 0]
        assert c.set("of", b"w").status == 0
        mock1.opfail(0x7FF0, -1, bucket="protected")
        assert c.get("of").status == 0
        mock1.opfail(0x7FF0, 0, bucket="protected")
        mock1.opfail(Status.EBUSY, -1)
        assert c.set("of", b"w").status == Status.EBUSY and c.get("of").status == Status.EBUSY
        assert c.call(Op.NOOP).status == 0  # handshake/control opcodes are spared
        mock1.opfail(Status.EBUSY, 0)
        assert c.get("of").status == 0


def test_drop_connections(mock3):
    clients = [KVClient(mock3.host, p).bootstrap() for p in mock3.kv_ports]
    try:
        mock3.drop_connections(1)
        assert clients[0].call(Op.NOOP).status == 0
        with pytest.raises((ConnectionError, OSError)):
            clients[1].call(Op.NOOP)
        mock3.drop_connections()
        with pytest.raises((ConnectionError, OSError)):
            clients[2].call(Op.NOOP)
    finally:
        for c in clients:
            c.close()


def test_bucket_lifecycle(mock1):
    with pytest.raises(BucketError) as err:
        mock1.create_bucket("bad/name")
    assert "name" in err.value.errors
    with pytest.raises(BucketError):
        mock1.create_bucket("default")
    rev = mock1.rev
    mock1.create_bucket("b2", "pw2", replicas=0)
    assert mock1.rev == rev + 1 and mock1.buckets["b2"] == "pw2"
    c = KVClient(mock1.host, mock1.kv_ports[0]).bootstrap("b2", "pw2", "b2")
    try:
        assert c.set("k", b"v").status == 0
        mock1.delete_bucket("b2")
        with pytest.raises((ConnectionError, OSError)):
            c.call(Op.NOOP)
    finally:
        c.close()
    with pytest.raises(KeyError):
        mock1.delete_bucket("b2")


def test_memcached_bucket_kv(mock3):
    mock3.create_bucket("memd", bucket_type="memcached")
    for port in mock3.kv_ports:
        with KVClient(mock3.host, port) as c:
            c.bootstrap(bucket="memd")
            assert c.set("anykey", b"v", ).status == 0  # no vbucket ownership
            r = c.set("anykey", b"v")
            assert r.status == 0 and r.extras == b""  # no mutation tokens
            assert c.call(Op.GET_CLUSTER_CONFIG).status == Status.NOT_SUPPORTED
            assert c.call(Op.FLUSH).status == 0


def test_sasl_mechanism_restriction(mock1):
    mock1.set_sasl_mechanisms("SCRAM-SHA1")
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        assert c.call(Op.SASL_LIST_MECHS).value == b"SCRAM-SHA1"
        assert c.auth_scram("Administrator", "password", "SCRAM-SHA512") == Status.AUTH_ERROR
        assert c.auth_scram("Administrator", "password", "SCRAM-SHA1") == 0
    with pytest.raises(ValueError):
        mock1.set_sasl_mechanisms("CRAM-MD5")


def test_rbac_user_kv(mock1):
    mock1.create_user("reader", "readerpw", roles=["data_reader[protected]"])
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.hello()
        assert c.auth_scram("reader", "readerpw") == 0
        assert c.select("protected") == 0
        assert c.select("default") == Status.EACCESS
    mock1.delete_user("reader")


def test_limits_and_fixed_ports():
    with pytest.raises(ValueError):
        MockCluster(nodes=17)
    with pytest.raises(ValueError):
        MockCluster(nodes=0)
    rng = random.Random()
    for _ in range(20):  # below the ephemeral range, where fixed ports are usually free
        base = rng.randrange(20000, 30000, 2)
        mock = MockCluster(nodes=2, port=base)
        try:
            mock.start()
            break
        except OSError:
            continue
    else:
        pytest.skip("no free port range found")
    try:
        assert mock.mgmt_ports == [base, base + 2] and mock.kv_ports == [base + 1, base + 3]
        with pytest.raises(OSError):
            MockCluster(port=base).start()  # port in use: start() raises
    finally:
        mock.stop()
        mock.stop()  # idempotent
    assert not mock.running


def test_sixteen_nodes():
    with MockCluster(nodes=16, vbuckets=64) as mock:
        cfg = config_of(mock, 15)
        assert len(cfg["nodesExt"]) == 16 and len(cfg["vBucketServerMap"]["vBucketMap"]) == 64
        with pytest.raises(ValueError):
            mock.add_node()


def test_clustermap_change_notifications(mock3):
    """Connections that negotiated duplex + clustermap notifications get every new config pushed."""
    from couchbase.mock.protocol import Feature
    with KVClient(mock3.host, mock3.kv_ports[0]) as c, KVClient(mock3.host, mock3.kv_ports[1]) as plain:
        features = (Feature.XERROR, Feature.SELECT_BUCKET, Feature.JSON, Feature.DUPLEX,
                    Feature.CLUSTERMAP_CHANGE_NOTIFICATION)
        c.bootstrap(features=features)
        assert Feature.CLUSTERMAP_CHANGE_NOTIFICATION in c.hello(features)
        c.bootstrap(features=features)
        assert Feature.CLUSTERMAP_CHANGE_NOTIFICATION not in plain.hello(
            (Feature.SELECT_BUCKET, Feature.CLUSTERMAP_CHANGE_NOTIFICATION))  # no duplex: refused
        mock3.failover(2)
        push = c.recv()
        assert push.magic == 0x82 and push.opcode == 0x01 and push.key == b"default" and push.datatype == 1
        epoch, rev = struct.unpack(">QQ", push.extras)
        cfg = json.loads(push.value)
        assert rev == cfg["rev"] == mock3.rev and len(cfg["nodesExt"]) == 2


def test_stall_stops_reading_requests(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        mock1.stall(True)
        c.send(struct.pack(">BBHBBHIIQ", 0x80, Op.NOOP, 0, 0, 0, 0, 0, 7, 0))
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.sock.recv(100)  # a hung node: no answer
        mock1.stall(False)
        c.sock.settimeout(5)
        reply = b""
        while len(reply) < 24:
            reply += c.sock.recv(100)
        assert struct.unpack(">BBHBBHIIQ", reply[:24])[7] == 7  # then the request is served (opaque 7)
        assert c.call(Op.NOOP).status == 0
