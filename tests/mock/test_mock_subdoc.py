"""Sub-document commands at the packet level."""

import json
import struct

import pytest
from mock_kvclient import KVClient

from couchbase.mock.protocol import Op, Status

XATTR, MKDIR_P, EXPAND = 0x04, 0x01, 0x10
MKDOC, ADD, ACCESS_DELETED = 0x01, 0x02, 0x04


@pytest.fixture
def kv(mock1):
    with KVClient(mock1.host, mock1.kv_ports[0]) as client:
        client.bootstrap()
        client.set("doc", b'{"a":{"b":[1,2,3]},"s":"x","n":5}', datatype=1)
        yield client


def single(kv, op, path, value=b"", flags=0, doc_flags=None, exp=None, cas=0, key="doc"):
    extras = struct.pack(">HB", len(path), flags)
    if exp is not None:
        extras += struct.pack(">I", exp)
    if doc_flags is not None:
        extras += bytes([doc_flags])
    return kv.call(op, key, extras, path.encode() + value, cas=cas)


def multi_lookup(kv, specs, doc_flags=None, key="doc"):
    body = b"".join(struct.pack(">BBH", op, flags, len(p)) + p.encode() for op, flags, p in specs)
    res = kv.call(Op.SUBDOC_MULTI_LOOKUP, key, bytes([doc_flags]) if doc_flags is not None else b"", body)
    results, pos = [], 0
    while pos < len(res.value):
        status, n = struct.unpack_from(">HI", res.value, pos)
        results.append((status, res.value[pos + 6:pos + 6 + n]))
        pos += 6 + n
    return res, results


def multi_mutation(kv, specs, doc_flags=None, exp=None, cas=0, key="doc"):
    body = b"".join(struct.pack(">BBHI", op, flags, len(p), len(v)) + p.encode() + v
                    for op, flags, p, v in specs)
    extras = (struct.pack(">I", exp) if exp is not None else b"") + (
        bytes([doc_flags]) if doc_flags is not None else b"")
    return kv.call(Op.SUBDOC_MULTI_MUTATION, key, extras, body, cas=cas)


def doc(kv, key="doc"):
    return json.loads(kv.get(key).value)


def test_single_lookups(kv):
    assert single(kv, Op.SUBDOC_GET, "a.b[1]").value == b"2"
    assert single(kv, Op.SUBDOC_GET, "a.b[-1]").value == b"3"
    assert json.loads(single(kv, Op.SUBDOC_GET, "a").value) == {"b": [1, 2, 3]}
    assert single(kv, Op.SUBDOC_EXISTS, "s").status == 0
    assert single(kv, Op.SUBDOC_EXISTS, "zz").status == 0xC0
    assert single(kv, Op.SUBDOC_GET, "s[0]").status == 0xC1
    assert single(kv, Op.SUBDOC_GET, "a..b").status == 0xC2
    assert single(kv, Op.SUBDOC_GET_COUNT, "a.b").value == b"3"
    assert single(kv, Op.SUBDOC_GET_COUNT, "n").status == 0xC1
    assert single(kv, Op.SUBDOC_GET, "a", key="nodoc").status == Status.KEY_ENOENT
    kv.set("raw", b"not json")
    assert single(kv, Op.SUBDOC_GET, "a", key="raw").status == 0xC6


def test_single_mutations(kv):
    r = single(kv, Op.SUBDOC_DICT_UPSERT, "s", b'"y"')
    assert r.status == 0 and len(r.extras) == 16
    assert single(kv, Op.SUBDOC_DICT_ADD, "s", b'"z"').status == 0xC9
    assert single(kv, Op.SUBDOC_DICT_ADD, "p.q", b"1").status == 0xC0
    assert single(kv, Op.SUBDOC_DICT_ADD, "p.q", b"1", flags=MKDIR_P).status == 0
    assert single(kv, Op.SUBDOC_DICT_UPSERT, "bad", b"{nope").status == 0xC5
    assert single(kv, Op.SUBDOC_REPLACE, "missing", b"1").status == 0xC0
    assert single(kv, Op.SUBDOC_REPLACE, "a.b[0]", b"10").status == 0
    assert single(kv, Op.SUBDOC_ARRAY_PUSH_LAST, "a.b", b"4,5").status == 0
    assert single(kv, Op.SUBDOC_ARRAY_PUSH_FIRST, "a.b", b"0").status == 0
    assert single(kv, Op.SUBDOC_ARRAY_INSERT, "a.b[1]", b'"i"').status == 0
    assert single(kv, Op.SUBDOC_ARRAY_INSERT, "a.b[99]", b"1").status == 0xC0
    assert single(kv, Op.SUBDOC_ARRAY_ADD_UNIQUE, "a.b", b"4").status == 0xC9
    assert single(kv, Op.SUBDOC_ARRAY_ADD_UNIQUE, "a.b", b"[1]").status == 0xC5
    assert single(kv, Op.SUBDOC_ARRAY_ADD_UNIQUE, "a.b", b"9").status == 0
    r = single(kv, Op.SUBDOC_COUNTER, "n", b"-7")
    assert r.status == 0 and r.value == b"-2"
    assert single(kv, Op.SUBDOC_COUNTER, "fresh", b"3").value == b"3"
    assert single(kv, Op.SUBDOC_COUNTER, "s", b"1").status == 0xC1
    assert single(kv, Op.SUBDOC_COUNTER, "n", b"0").status == 0xC8
    assert single(kv, Op.SUBDOC_COUNTER, "fresh", b"9223372036854775807").status == 0xC7
    assert single(kv, Op.SUBDOC_DELETE, "p").status == 0
    assert single(kv, Op.SUBDOC_DELETE, "p").status == 0xC0
    assert doc(kv) == {"a": {"b": [0, "i", 10, 2, 3, 4, 5, 9]}, "s": "y", "n": -2, "fresh": 3}
    assert kv.get("doc").datatype == 1


def test_document_flags_cas_and_expiry(mock1, kv):
    assert single(kv, Op.SUBDOC_DICT_UPSERT, "x", b"1", key="newdoc").status == Status.KEY_ENOENT
    res = single(kv, Op.SUBDOC_DICT_UPSERT, "x.y", b"1", flags=MKDIR_P, doc_flags=MKDOC, key="newdoc")
    assert res.status == 0
    assert doc(kv, "newdoc") == {"x": {"y": 1}}
    res = single(kv, Op.SUBDOC_DICT_UPSERT, "x", b"1", doc_flags=ADD, key="newdoc")
    assert res.status == Status.KEY_EEXISTS
    cas = kv.get("doc").cas
    assert single(kv, Op.SUBDOC_DICT_UPSERT, "s", b"1", cas=cas + 1).status == Status.KEY_EEXISTS
    assert single(kv, Op.SUBDOC_DICT_UPSERT, "s", b"1", cas=cas, exp=10).status == 0
    mock1.time_travel(11)
    assert kv.get("doc").status == Status.KEY_ENOENT


def test_multi_lookup(kv):
    res, results = multi_lookup(kv, [(Op.SUBDOC_GET, 0, "s"), (Op.SUBDOC_EXISTS, 0, "nope"),
                                     (Op.SUBDOC_GET_COUNT, 0, "a.b"), (0x00, 0, "")])
    assert res.status == 0xCC  # one path failed
    assert results[0] == (0, b'"x"') and results[1][0] == 0xC0 and results[2] == (0, b"3")
    assert json.loads(results[3][1])["n"] == 5
    res, results = multi_lookup(kv, [(Op.SUBDOC_GET, XATTR, "$document.exptime"), (Op.SUBDOC_GET, 0, "n")])
    assert res.status == 0 and results == [(0, b"0"), (0, b"5")]
    res, _ = multi_lookup(kv, [(Op.SUBDOC_GET, 0, "n"), (Op.SUBDOC_GET, XATTR, "$document")])
    assert res.status == 0xD4  # xattrs must come first
    res, _ = multi_lookup(kv, [(Op.SUBDOC_GET, 0, "n")] * 17)
    assert res.status == 0xCB


def test_multi_mutation_is_atomic(kv):
    before = kv.get("doc")
    res = multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, 0, "s", b'"changed"'),
                              (Op.SUBDOC_REPLACE, 0, "missing", b"1")])
    assert res.status == 0xCC and struct.unpack(">BH", res.value) == (1, 0xC0)
    assert kv.get("doc").cas == before.cas and doc(kv)["s"] == "x"
    res = multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, 0, "s", b'"changed"'),
                              (Op.SUBDOC_COUNTER, 0, "n", b"2"), (Op.SUBDOC_COUNTER, 0, "m", b"1")])
    assert res.status == 0 and res.cas > before.cas
    assert res.value == struct.pack(">BHI", 1, 0, 1) + b"7" + struct.pack(">BHI", 2, 0, 1) + b"1"
    res = multi_mutation(kv, [(0x01, 0, "", b'{"whole":true}')])
    assert res.status == 0 and doc(kv) == {"whole": True}
    res = multi_mutation(kv, [(0x04, 0, "", b"")])
    assert res.status == 0 and kv.get("doc").status == Status.KEY_ENOENT


def test_xattrs_and_macros(kv):
    res = multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, XATTR | MKDIR_P, "txn.id", b'"t1"'),
                              (Op.SUBDOC_DICT_UPSERT, XATTR | EXPAND | MKDIR_P, "meta.cas",
                               b'"${Mutation.CAS}"'),
                              (Op.SUBDOC_DICT_UPSERT, 0, "s", b'"body"')])
    assert res.status == 0
    _, results = multi_lookup(kv, [(Op.SUBDOC_GET, XATTR, "txn"), (Op.SUBDOC_GET, XATTR, "meta.cas"),
                                   (Op.SUBDOC_GET, XATTR, "$XTOC"), (Op.SUBDOC_GET, XATTR, "$document.CAS")])
    assert results[0] == (0, b'{"id":"t1"}')
    assert results[1][1] == results[3][1]  # the macro expanded to the mutation's CAS
    assert json.loads(results[2][1]) == ["meta", "txn"]
    assert kv.get("doc").value == b'{"a":{"b":[1,2,3]},"s":"body","n":5}'  # xattrs are not in the body
    res = multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, XATTR, "$document.x", b"1")])
    assert struct.unpack(">BH", res.value) == (0, 0xD2)
    res = multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, XATTR | EXPAND, "m", b'"${Nope}"')])
    assert struct.unpack(">BH", res.value) == (0, 0xD0)
    # a full-document update drops user xattrs but keeps system ("_") ones
    multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, XATTR, "_sys", b"1")])
    kv.set("doc", b"{}")
    _, results = multi_lookup(kv, [(Op.SUBDOC_GET, XATTR, "$XTOC")])
    assert json.loads(results[0][1]) == ["_sys"]


def test_access_deleted(kv):
    multi_mutation(kv, [(Op.SUBDOC_DICT_UPSERT, XATTR, "_sys", b"1")])
    kv.call(Op.DELETE, "doc")
    res, _ = multi_lookup(kv, [(Op.SUBDOC_GET, XATTR, "_sys")])
    assert res.status == Status.KEY_ENOENT
    specs = [(Op.SUBDOC_GET, XATTR, "_sys"), (Op.SUBDOC_GET, XATTR, "$document.deleted")]
    res, results = multi_lookup(kv, specs, doc_flags=ACCESS_DELETED)
    assert res.status == 0xCD and results == [(0, b"1"), (0, b"true")]
