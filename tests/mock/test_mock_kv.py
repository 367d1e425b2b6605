"""Packet-level behaviour of the KV service."""

import json
import struct
import time

import pytest
from mock_kvclient import KVClient, connect_owner, packet, vbucket

from couchbase.mock.protocol import Feature, Op, Status

KEY_OPS_FEATURES = (Feature.MUTATION_SEQNO, Feature.XERROR, Feature.SELECT_BUCKET, Feature.JSON,
                    Feature.COLLECTIONS)


@pytest.fixture
def kv(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as client:
        yield client.bootstrap()


def test_hello_acks_only_supported_features(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        acked = c.hello()
        assert set(acked) == {Feature.TCP_NODELAY, Feature.MUTATION_SEQNO, Feature.XATTR, Feature.XERROR,
                              Feature.SELECT_BUCKET, Feature.JSON, Feature.COLLECTIONS,
                              Feature.UNORDERED_EXECUTION, Feature.TRACING, Feature.ALT_REQUEST}
        assert Feature.SNAPPY not in acked


def test_tracing_frames_every_reply(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        c.set("k", b"v", flags=7)
        c.send(packet(Op.GET, c.wkey("k"), vbucket=vbucket(b"k", c.nvb), opaque=99))
        header = c._read(24)
        magic, opcode, framing, keylen, extlen, _, status, bodylen, opaque = struct.unpack(
            ">BBBBBBHII", header[:16])
        body = c._read(bodylen)
        assert (magic, opcode, status, opaque, keylen, extlen) == (0x18, Op.GET, 0, 99, 0, 4)
        assert framing == 3 and body[0] == 0x02  # server duration: id 0, 2 bytes
        assert body[framing:framing + 4] == struct.pack(">I", 7) and body[framing + 4:] == b"v"


def test_error_map_before_auth(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        for version in (1, 2, 7):
            res = c.call(Op.GET_ERROR_MAP, value=struct.pack(">H", version))
            assert res.status == 0
            emap = json.loads(res.value)
            assert emap["version"] == min(version, 2)
            assert emap["revision"] >= 1
            assert emap["errors"]["7"]["name"] == "NOT_MY_VBUCKET"
            assert emap["errors"]["7ff0"]["retry"]["strategy"] == "constant"
        assert c.call(Op.GET_ERROR_MAP, value=b"\0\0").status == Status.EINVAL


def test_data_ops_need_auth_and_bucket(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.hello()
        assert c.get("k").status == Status.EACCESS
        assert c.select("default") == Status.EACCESS
        assert c.call(Op.GET_CLUSTER_CONFIG).status == Status.EACCESS
        assert c.auth_plain("Administrator", "password") == 0
        assert c.get("k").status == Status.NO_BUCKET
        assert c.select("nosuch") == Status.EACCESS
        assert c.select("default") == 0
        assert c.get("k").status == Status.KEY_ENOENT


def test_sasl_mechanisms(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        mechs = c.call(Op.SASL_LIST_MECHS).value.decode().split()
        assert mechs == ["SCRAM-SHA512", "SCRAM-SHA256", "SCRAM-SHA1", "PLAIN"]


@pytest.mark.parametrize("mech", ["SCRAM-SHA512", "SCRAM-SHA256", "SCRAM-SHA1", "PLAIN"])
def test_sasl_good_and_bad_passwords(mock1, mech):
    def auth(user, password, **kw):
        with KVClient(mock1.host, mock1.kv_ports[0]) as c:
            if mech == "PLAIN":
                return c.auth_plain(user, password)
            return c.auth_scram(user, password, mech, **kw)
    assert auth("Administrator", "password") == 0
    assert auth("Administrator", "wrong") == Status.AUTH_ERROR
    assert auth("protected", "secret") == 0
    assert auth("protected", "") == Status.AUTH_ERROR
    assert auth("default", "") == 0
    assert auth("nobody", "x") == Status.AUTH_ERROR
    if mech != "PLAIN":
        assert auth("Administrator", "password", tamper=True) == Status.AUTH_ERROR


def test_auth_before_list_mechs_reply_is_answered(mock1):
    """The C++ core pipelines HELLO + LIST_MECHS + SASL_AUTH without waiting."""
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.send(packet(Op.HELLO, b"x", value=struct.pack(">H", Feature.XERROR), opaque=1)
               + packet(Op.SASL_LIST_MECHS, opaque=2)
               + packet(Op.SASL_AUTH, b"SCRAM-SHA512", value=b"n,,n=Administrator,r=0123456789abcdef",
                        opaque=3))
        replies = [c.recv() for _ in range(3)]
        assert [r.opaque for r in replies] == [1, 2, 3]
        assert replies[2].status == Status.AUTH_CONTINUE
        assert replies[2].value.startswith(b"r=0123456789abcdef")


def test_bucket_user_is_confined_to_its_bucket(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.hello()
        assert c.auth_scram("protected", "secret") == 0
        assert c.get("k").status == Status.KEY_ENOENT  # auto-selected its bucket
        assert c.select("default") == Status.EACCESS
        assert c.select("protected") == 0


def test_cluster_config_with_and_without_bucket(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap(bucket=None)
        res = c.call(Op.GET_CLUSTER_CONFIG)
        assert res.status == 0 and res.datatype == 1
        cfg = json.loads(res.value)
        assert "vBucketServerMap" not in cfg and cfg["nodesExt"][0]["services"]["kv"] == mock1.kv_ports[0]
        assert c.select("default") == 0
        cfg = c.config()
        assert cfg["name"] == "default" and cfg["nodeLocator"] == "vbucket"
        assert cfg["nodesExt"][0]["hostname"] == "$HOST" and cfg["nodesExt"][0]["thisNode"] is True
        assert len(cfg["vBucketServerMap"]["vBucketMap"]) == 1024
        assert cfg["vBucketServerMap"]["serverList"] == ["$HOST:%d" % mock1.kv_ports[0]]
        int(cfg["collectionsManifestUid"], 16)


def test_crud_cas_flags(kv):
    r = kv.set("a", b"1", flags=0xDEADBEEF)
    assert r.status == 0 and r.cas and len(r.extras) == 16  # mutation token
    g = kv.get("a")
    assert g.value == b"1" and struct.unpack(">I", g.extras)[0] == 0xDEADBEEF and g.cas == r.cas
    assert kv.set("a", b"2", opcode=Op.ADD).status == Status.KEY_EEXISTS
    assert kv.set("b", b"2", opcode=Op.REPLACE).status == Status.KEY_ENOENT
    assert kv.set("a", b"3", cas=r.cas + 12345).status == Status.KEY_EEXISTS
    r2 = kv.set("a", b"3", cas=r.cas)
    assert r2.status == 0 and r2.cas > r.cas
    vbuuid, seqno = struct.unpack(">QQ", r2.extras)
    assert seqno == struct.unpack(">QQ", r.extras)[1] + 1
    d = kv.call(Op.DELETE, "a", cas=r.cas)
    assert d.status == Status.KEY_EEXISTS
    d = kv.call(Op.DELETE, "a")
    assert d.status == 0 and d.cas > r2.cas
    assert kv.get("a").status == Status.KEY_ENOENT
    assert kv.call(Op.DELETE, "a").status == Status.KEY_ENOENT


def test_getk_echoes_the_key(kv):
    kv.set("gk", b"v")
    r = kv.get("gk", Op.GETK)
    assert r.key == b"\x00gk" and r.value == b"v"


def test_quiet_ops_are_pipelined_in_order(kv):
    kv.set("q1", b"one")
    data = b"".join([
        packet(Op.GETQ, b"\x00q1", vbucket=vbucket(b"q1"), opaque=10),
        packet(Op.GETQ, b"\x00missing", vbucket=vbucket(b"missing"), opaque=11),
        packet(Op.SETQ, b"\x00q2", struct.pack(">II", 0, 0), b"two", vbucket=vbucket(b"q2"), opaque=12),
        packet(Op.GETKQ, b"\x00q2", vbucket=vbucket(b"q2"), opaque=13),
        packet(Op.ADDQ, b"\x00q1", struct.pack(">II", 0, 0), b"x", vbucket=vbucket(b"q1"), opaque=14),
        packet(Op.NOOP, opaque=15),
    ])
    kv.send(data)
    got = []
    while True:
        r = kv.recv()
        got.append((r.opaque, r.status, r.value))
        if r.opcode == Op.NOOP:
            break
    assert got == [(10, 0, b"one"), (13, 0, b"two"), (14, Status.KEY_EEXISTS, b""), (15, 0, b"")]


def test_append_prepend(kv):
    assert kv.call(Op.APPEND, "ap", value=b"x").status == Status.NOT_STORED
    kv.set("ap", b"mid", flags=7)
    assert kv.call(Op.APPEND, "ap", value=b"-end").status == 0
    assert kv.call(Op.PREPEND, "ap", value=b"start-").status == 0
    g = kv.get("ap")
    assert g.value == b"start-mid-end" and struct.unpack(">I", g.extras)[0] == 7


def test_arithmetic(kv):
    r = kv.arith("ctr", 5, initial=100)
    assert r.status == 0 and struct.unpack(">Q", r.value)[0] == 100
    r = kv.arith("ctr", 5, initial=100)
    assert struct.unpack(">Q", r.value)[0] == 105
    r = kv.arith("ctr", 1000, opcode=Op.DECREMENT)
    assert struct.unpack(">Q", r.value)[0] == 0  # decrement stops at zero
    assert kv.arith("nocreate", 1, exp=0xFFFFFFFF).status == Status.KEY_ENOENT
    kv.set("ctr", b"18446744073709551615")
    assert struct.unpack(">Q", kv.arith("ctr", 2).value)[0] == 1  # wraps
    kv.set("txt", b"hello")
    assert kv.arith("txt", 1).status == Status.DELTA_BADVAL
    assert kv.get("ctr").value == b"1"


def test_expiry_relative_absolute_and_time_travel(mock1, kv):
    kv.set("ttl", b"v", exp=10)
    kv.set("abs", b"v", exp=int(__import__("time").time()) + 100)
    kv.set("forever", b"v")
    assert kv.get("ttl").status == 0
    mock1.time_travel(11)
    assert kv.get("ttl").status == Status.KEY_ENOENT
    assert kv.get("abs").status == 0
    mock1.time_travel(100)
    assert kv.get("abs").status == Status.KEY_ENOENT
    assert kv.get("forever").status == 0


def test_touch_and_gat(mock1, kv):
    kv.set("t", b"v", exp=5)
    assert kv.call(Op.TOUCH, "t", struct.pack(">I", 100)).status == 0
    mock1.time_travel(50)
    r = kv.call(Op.GAT, "t", struct.pack(">I", 10))
    assert r.status == 0 and r.value == b"v"
    mock1.time_travel(20)
    assert kv.get("t").status == Status.KEY_ENOENT
    assert kv.call(Op.TOUCH, "t", struct.pack(">I", 1)).status == Status.KEY_ENOENT


def test_lock_unlock(mock1, kv):
    kv.set("l", b"v")
    r = kv.call(Op.GET_LOCKED, "l", struct.pack(">I", 10))
    assert r.status == 0
    lock_cas = r.cas
    assert kv.get("l").cas == 0xFFFFFFFFFFFFFFFF
    assert kv.call(Op.GET_LOCKED, "l", struct.pack(">I", 10)).status == Status.LOCKED
    assert kv.set("l", b"x").status == Status.LOCKED
    assert kv.call(Op.UNLOCK, "l", cas=lock_cas + 1).status == Status.LOCKED
    assert kv.call(Op.UNLOCK, "l", cas=lock_cas).status == 0
    assert kv.call(Op.UNLOCK, "l", cas=lock_cas).status == Status.NOT_LOCKED
    r = kv.call(Op.GET_LOCKED, "l", struct.pack(">I", 5))
    assert kv.set("l", b"y", cas=r.cas).status == 0  # the lock CAS unlocks
    kv.call(Op.GET_LOCKED, "l", struct.pack(">I", 5))
    mock1.time_travel(6)
    assert kv.set("l", b"z").status == 0  # the lock expired


def test_locked_status_without_xerror(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap(features=(Feature.SELECT_BUCKET,))
        c.set("l2", b"v")
        c.call(Op.GET_LOCKED, "l2", struct.pack(">I", 10))
        assert c.set("l2", b"x").status == Status.KEY_EEXISTS
        assert c.call(Op.GET_LOCKED, "l2", struct.pack(">I", 10)).status == Status.ETMPFAIL


def test_get_meta(kv):
    kv.set("m", b"{}", flags=3, exp=0, datatype=1)
    r = kv.call(Op.GET_META, "m")
    deleted, flags, exp, seqno = struct.unpack(">IIIQ", r.extras)
    assert (deleted, flags, exp) == (0, 3, 0) and seqno > 0 and r.cas
    r = kv.call(Op.GET_META, "m", b"\x02")
    assert len(r.extras) == 21 and r.extras[-1] == 1
    kv.call(Op.DELETE, "m")
    r = kv.call(Op.GET_META, "m", b"\x02")
    assert r.status == 0 and struct.unpack(">I", r.extras[:4])[0] == 1
    assert kv.call(Op.GET_META, "never").status == Status.KEY_ENOENT


def test_observe_and_observe_seqno(kv):
    r = kv.set("o", b"v")
    vbuuid, seqno = struct.unpack(">QQ", r.extras)
    vb = vbucket(b"o")
    res = kv.call(Op.OBSERVE_SEQNO, value=struct.pack(">Q", vbuuid), vb=vb)
    fmt, rvb, ruuid, persisted, current = struct.unpack(">BHQQQ", res.value)
    assert (fmt, rvb, ruuid) == (0, vb, vbuuid) and persisted == current == seqno
    body = struct.pack(">HH", vb, 2) + b"\x00o" + struct.pack(">HH", vbucket(b"zz"), 3) + b"\x00zz"
    res = kv.call(Op.OBSERVE, value=body)
    assert res.status == 0
    assert res.value[6] == 0x01 and struct.unpack(">Q", res.value[7:15])[0] == r.cas
    assert res.value[15 + 7] == 0x80


def test_stats(kv):
    kv.set("s", b"v", flags=1)
    kv.send(packet(Op.STAT, opaque=99))
    stats = {}
    while True:
        r = kv.recv()
        assert r.opaque == 99 and r.status == 0
        if not r.key:
            break
        stats[r.key.decode()] = r.value.decode()
    assert int(stats["curr_items"]) >= 1 and "uptime" in stats and "cmd_get" in stats
    for group in ("memory", "config", "uuid", "vbucket", "vbucket-seqno", "failovers", "collections",
                  "key s", "vkey s %d" % vbucket(b"s")):
        r = kv.call(Op.STAT, group.encode(), raw_key=True)
        assert r.status == 0 and r.key, group
        while r.key:
            r = kv.recv()
    assert kv.call(Op.STAT, b"no-such-group", raw_key=True).status == Status.KEY_ENOENT


def test_collections(kv):
    r = kv.call(Op.GET_COLLECTIONS_MANIFEST)
    manifest = json.loads(r.value)
    assert manifest["scopes"][0]["collections"][0]["name"] == "_default"
    r = kv.call(Op.GET_COLLECTION_ID, value=b"_default._default")
    assert r.status == 0 and struct.unpack(">QI", r.extras) == (0, 0)
    assert kv.call(Op.GET_COLLECTION_ID, value=b"_default.other").status == Status.UNKNOWN_COLLECTION
    assert kv.call(Op.GET_COLLECTION_ID, value=b"s.c").status == Status.UNKNOWN_SCOPE
    r = kv.call(Op.GET, b"\x08k", vb=vbucket(b"k"), raw_key=True)
    assert r.status == Status.UNKNOWN_COLLECTION
    kv.set("ck", b"v")
    with KVClient(kv.sock.getpeername()[0], kv.sock.getpeername()[1]) as plain:
        plain.bootstrap(features=(Feature.SELECT_BUCKET,))  # no collections: raw keys
        assert plain.get("ck").value == b"v"


def test_datatype(kv, mock1):
    kv.set("j", b'{"a":1}', datatype=1)
    assert kv.get("j").datatype == 1
    kv.set("raw", b"abc")
    assert kv.get("raw").datatype == 0
    assert kv.set("bad", b"x", datatype=2).status == Status.EINVAL  # snappy not negotiated
    with KVClient(mock1.host, mock1.kv_ports[0]) as old:
        old.bootstrap(features=(Feature.SELECT_BUCKET,))
        assert old.set("j2", b'{"b": [1, 2]}').status == 0
        assert old.get("j2").datatype == 0  # not negotiated: never shown
        assert old.set("j3", b"{}", datatype=1).status == Status.EINVAL
    assert kv.get("j2").datatype == 1  # the node detected JSON


def test_item_size_limit(kv):
    big = b"x" * (20 * 1024 * 1024 + 1)
    assert kv.set("big", big).status == Status.E2BIG
    ok = b"x" * (20 * 1024 * 1024)
    assert kv.set("big", ok).status == 0
    assert len(kv.get("big").value) == len(ok)


def test_unknown_opcode_and_misc(kv):
    assert kv.call(0x77).status == Status.UNKNOWN_COMMAND
    assert kv.call(Op.NOOP).status == 0
    assert kv.call(Op.VERSION).value.startswith(b"7.")
    assert kv.set("x", b"v", opcode=Op.ADD, cas=5).status == Status.EINVAL
    assert kv.call(Op.SET, "x", b"short").status == Status.EINVAL


def test_bad_magic_closes_connection(kv):
    kv.send(b"\x42" + b"\x00" * 23)
    with pytest.raises((ConnectionError, OSError)):
        kv.recv()


def test_not_my_vbucket_carries_config(mock3):
    key = b"nmvb-key"
    owner = connect_owner(mock3, key)
    owner_port = owner.sock.getpeername()[1]
    owner.set(key, b"v")
    owner.close()
    other = [p for p in mock3.kv_ports if p != owner_port][0]
    with KVClient(mock3.host, other) as c:
        c.bootstrap()
        r = c.get(key)
        assert r.status == Status.NOT_MY_VBUCKET and r.datatype & 1
        cfg = json.loads(r.value)
        assert cfg["rev"] == mock3.rev and len(cfg["nodesExt"]) == 3
        r = c.get(key, Op.GETQ)  # quiet ops still get the NMVB
        assert r.status == Status.NOT_MY_VBUCKET


def test_replica_read(mock3):
    key = b"replica-key"
    owner = connect_owner(mock3, key)
    owner.set(key, b"v")
    cfg = owner.config()
    owner.close()
    row = cfg["vBucketServerMap"]["vBucketMap"][vbucket(key)]
    replica_port = cfg["nodesExt"][row[1]]["services"]["kv"]
    with KVClient(mock3.host, replica_port) as c:
        c.bootstrap()
        assert c.call(Op.GET_REPLICA, key).value == b"v"
        assert c.get(key).status == Status.NOT_MY_VBUCKET


def test_quit_answers_in_order_then_closes(kv):
    kv.send(packet(Op.NOOP, opaque=1) + packet(Op.QUIT, opaque=2) + packet(Op.NOOP, opaque=3))
    assert [kv.recv().opaque for _ in range(2)] == [1, 2]
    with pytest.raises((ConnectionError, OSError)):
        kv.recv()


def test_client_that_does_not_read_is_throttled(mock1, kv):
    """Pipelined gets of a big value from a client that does not read its replies: the node
    stops reading (back-pressure) instead of buffering replies without bound, then serves
    everything once the client reads."""
    kv.set("bigval", b"x" * 10_000)
    count = 20_000  # 200 MB of replies if nothing held the node back
    data = packet(Op.GET, b"\x00bigval", vbucket=vbucket(b"bigval"), opaque=5) * count
    kv.sock.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            sent += kv.sock.send(data[sent:sent + 65536])
    except BlockingIOError:
        pass
    time.sleep(0.5)
    (conn,) = list(mock1.core.nodes[0].kv_conns)
    assert conn.transport.get_write_buffer_size() < 8 << 20
    kv.sock.setblocking(True)
    kv.sock.settimeout(10)
    kv.sock.sendall(data[sent:])
    for _ in range(count):
        assert len(kv.recv().value) == 10_000
