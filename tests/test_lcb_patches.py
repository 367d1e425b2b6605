"""The defects patches/libcouchbase/ fixes in libcouchbase 3.3.4, each
shown by the reply that triggers it. Each scenario runs in a child process:
on an unpatched libcouchbase the child dies (an abort, a segfault) or spins,
which this test reports as a failure instead of losing the whole suite.

With the patches, each hostile reply is an error for its key within the
operation timeout, and the Connection recovers."""

import json
import pathlib
import struct
import subprocess
import sys
import textwrap
import warnings

import pytest

import couchbase._lcb
from couchbase import _libcouchbase_fixes
from couchbase.exceptions import UnpatchedLibcouchbaseError, UnpatchedLibcouchbaseWarning
from couchbase.mock import MockCluster

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)

CHILD = textwrap.dedent("""
    import json, sys, time
    from couchbase import Couchbase, FMT_PLAIN
    from couchbase.exceptions import CouchbaseError
    from couchbase.mock import MockCluster

    connstr, mangle, op = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    cb = Couchbase.connect(bucket="default", password="", connection_string=connstr, timeout=1.0)
    cb.set({"hostile:victim": b"v", "hostile:other": b"o"}, format=FMT_PLAIN)
    cluster_url = sys.argv[4]
    import urllib.request, urllib.parse
    def control(name, **params):
        query = urllib.parse.urlencode(params)
        urllib.request.urlopen(f"{cluster_url}/mock/{name}?{query}", timeout=10).read()
    control("mangle", key="hostile:victim", count=1, **mangle)
    started = time.monotonic()
    try:
        if op == "get":
            cb.get("hostile:victim", format=FMT_PLAIN)
        else:
            cb.get("hostile:victim", format=FMT_PLAIN, ttl=60)  # libcouchbase's own command
        outcome = "no error"
    except CouchbaseError as e:
        outcome = type(e).__name__
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 10
    while True:  # the connection recovers
        try:
            recovered = cb.get("hostile:other", format=FMT_PLAIN) == b"o"
            break
        except CouchbaseError:
            if time.monotonic() > deadline:
                recovered = False
                break
            time.sleep(0.1)
    cb.close()
    print(json.dumps({"outcome": outcome, "seconds": elapsed, "recovered": recovered}))
""")

CASES = {
    # handle_unknown_error left the error at SUCCESS: lcb_assert in dispatch_ufwd_error
    "status not in the error map, built packet": ({"status": 0x21}, "get"),
    "status needing special handling, built packet": ({"status": 0xEE}, "get"),
    # 24 + bodylen wrapped in 32 bits: a spin (built) or an abort in the rope code (own)
    "body length that wraps 32 bits, built packet": ({"bodylen": 0xFFFFFFF0}, "get"),
    "body length that wraps 32 bits, own command": ({"bodylen": 0xFFFFFFF0}, "gat"),
    # a STAT reply with a key for a GAT was handled as a STAT: segfault
    "STAT reply with a key, own command": ({"opcode": 0x10, "keylen": 3, "body": "6b6579"}, "gat"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_reply_is_an_error_not_a_crash(cluster, case):
    mangle, op = CASES[case]
    connstr = f"couchbase://{cluster.host}:{cluster.port}=http/default"
    url = f"http://{cluster.host}:{cluster.port}"
    proc = subprocess.run([sys.executable, "-c", CHILD, connstr, json.dumps(mangle), op, url],
                          capture_output=True, text=True, timeout=60)
    cluster.mangle("hostile:victim", count=0)
    assert proc.returncode == 0, f"the client died ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "no error", result
    assert result["seconds"] < 1.0 + 4.0, result  # the timeout, and a loaded machine's slack
    assert result["recovered"], result


PATCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "patches" / "libcouchbase"


def test_every_patch_says_what_its_absence_exposes():
    numbers = {path.name.split("-")[0] for path in PATCH_DIR.glob("*.patch")}
    # the required fixes, and those a TLS connect warns about (0003: host names)
    assert not set(_libcouchbase_fixes.EXPOSED) & set(_libcouchbase_fixes.TLS_FIXES)
    assert numbers and numbers == set(_libcouchbase_fixes.EXPOSED) | set(_libcouchbase_fixes.TLS_FIXES)


def test_the_libcouchbase_in_use_carries_every_patch():
    changeset = couchbase._lcb.libcouchbase_changeset()
    assert _libcouchbase_fixes.missing(changeset) == [], changeset
    assert set(_libcouchbase_fixes.TLS_FIXES) <= _libcouchbase_fixes.carried(changeset), changeset


@pytest.mark.parametrize("changeset", ["0xdeadbeef", "", "couchbase-lcb-patches:0001"])
def test_a_libcouchbase_lacking_a_fix_is_refused_with_what_it_exposes(monkeypatch, changeset):
    monkeypatch.delenv(_libcouchbase_fixes.ALLOW_UNPATCHED, raising=False)
    with pytest.raises(UnpatchedLibcouchbaseError) as info:
        _libcouchbase_fixes.require(changeset, "3.3.4")
    text = str(info.value)
    for number in _libcouchbase_fixes.missing(changeset):
        assert f"patch {number}" in text and _libcouchbase_fixes.EXPOSED[number] in text
    assert _libcouchbase_fixes.ALLOW_UNPATCHED in text  # and how to go on anyway


def test_allowing_an_unpatched_libcouchbase_warns_instead(monkeypatch):
    monkeypatch.setenv(_libcouchbase_fixes.ALLOW_UNPATCHED, "1")
    with pytest.warns(UnpatchedLibcouchbaseWarning, match="without patch 0002"):
        _libcouchbase_fixes.require("couchbase-lcb-patches:0001", "3.3.4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _libcouchbase_fixes.require("couchbase-lcb-patches:" + ",".join(_libcouchbase_fixes.EXPOSED), "3.3.4")


# The durability timeout went out byte-swapped (htons, then a manual big-endian split): the
# child drives libcouchbase itself (the library the binding loaded, through ctypes: the
# binding has no durability API yet) and the mock records the frames it received.
DURABLE_CHILD = textwrap.dedent("""
    import ctypes, sys
    import couchbase._lcb

    lib = ctypes.CDLL(couchbase._lcb.__file__)  # its dependency's symbols resolve through it
    P, S = ctypes.c_void_p, ctypes.c_size_t
    MAJORITY = 1

    def ok(rc, what):
        if rc:
            sys.exit("%s failed: libcouchbase error %d" % (what, rc))

    def cmd(kind, key, *setters):
        c = P()
        ok(getattr(lib, "lcb_cmd%s_create" % kind)(ctypes.byref(c), *((0,) if kind == "store" else ())),
           kind)
        getattr(lib, "lcb_cmd%s_key" % kind)(c, key, S(len(key)))
        for name, *args in setters:
            ok(getattr(lib, "lcb_cmd%s_%s" % (kind, name))(c, *args), name)
        ok(getattr(lib, "lcb_cmd%s_durability" % kind)(c, MAJORITY), "durability")
        return c

    connstr, user, password = (a.encode() for a in sys.argv[1:4])
    opts, instance = P(), P()
    ok(lib.lcb_createopts_create(ctypes.byref(opts), 0), "createopts")
    lib.lcb_createopts_connstr(opts, connstr, S(len(connstr)))
    lib.lcb_createopts_credentials(opts, user, S(len(user)), password, S(len(password)))
    ok(lib.lcb_create(ctypes.byref(instance), opts), "create")
    lib.lcb_createopts_destroy(opts)
    ok(lib.lcb_connect(instance), "connect")
    lib.lcb_wait(instance, 0)
    ok(lib.lcb_get_bootstrap_status(instance), "bootstrap")

    store = cmd("store", b"durable:default", ("value", b"{}", S(2)))  # the 2.5 s default timeout
    ok(lib.lcb_store(instance, None, store), "store")
    lib.lcb_cmdstore_destroy(store)
    store = cmd("store", b"durable:10s", ("value", b"{}", S(2)), ("timeout", ctypes.c_uint32(10000000)))
    ok(lib.lcb_store(instance, None, store), "store")
    lib.lcb_cmdstore_destroy(store)
    counter = cmd("counter", b"durable:counter", ("delta", ctypes.c_int64(1)),
                  ("initial", ctypes.c_uint64(5)))
    ok(lib.lcb_counter(instance, None, counter), "counter")
    lib.lcb_cmdcounter_destroy(counter)
    specs = P()
    ok(lib.lcb_subdocspecs_create(ctypes.byref(specs), S(1)), "specs")
    ok(lib.lcb_subdocspecs_dict_upsert(specs, S(0), ctypes.c_uint32(0), b"p", S(1), b"1", S(1)), "spec")
    subdoc = cmd("subdoc", b"durable:default", ("specs", specs))
    ok(lib.lcb_subdoc(instance, None, subdoc), "subdoc")
    lib.lcb_cmdsubdoc_destroy(subdoc)
    lib.lcb_subdocspecs_destroy(specs)
    lib.lcb_wait(instance, 0)
    remove = cmd("remove", b"durable:10s")
    ok(lib.lcb_remove(instance, None, remove), "remove")
    lib.lcb_cmdremove_destroy(remove)
    lib.lcb_wait(instance, 0)
    lib.lcb_destroy(instance)
    print("done")
""")


def test_the_durability_timeout_goes_out_in_network_order():
    with MockCluster(nodes=2, replicas=1, vbuckets=64) as mock:
        connstr = f"couchbase://{mock.host}:{mock.port}=http/default"
        proc = subprocess.run([sys.executable, "-c", DURABLE_CHILD, connstr, mock.username, mock.password],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
        frames = [(f["opcode"], f["key"], f["level"], f["timeout_ms"])
                  for f in mock.durability_frames()["frames"]]
        assert mock.keyinfo("durable:default")["found"] and not mock.keyinfo("durable:10s")["found"]
    # 0.9 of the operation timeout (2.5 s by default), in milliseconds; unpatched: 51,720 and 10,275
    assert frames == [(0x01, "durable:default", 1, 2250), (0x01, "durable:10s", 1, 9000),
                      (0x05, "durable:counter", 1, 2250), (0xD1, "durable:default", 1, 2250),
                      (0x04, "durable:10s", 1, 2250)]


# Patch 0006: a sub-document reply's entries are walked within its body and stored within
# the specs sent. Each reply below is what a broken or hostile node might send; unpatched,
# libcouchbase reads past the network buffer and writes past its result vector (ASan: a
# heap-buffer-overflow; without it, garbage or a crash).
SUBDOC_CHILD = textwrap.dedent("""
    import json, sys, time, urllib.parse, urllib.request
    import couchbase.subdocument as SD
    from couchbase import Couchbase
    from couchbase.exceptions import CouchbaseError

    connstr, op, mangle, url = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    mangle["body"] = bytes.fromhex(mangle["body"]).hex()
    cb = Couchbase.connect(bucket="default", password="", connection_string=connstr, timeout=1.0)
    cb.set({"hostile:sd": {"a": 1, "b": 2}, "hostile:other": {"a": 3}})
    query = urllib.parse.urlencode(dict(mangle, key="hostile:sd", count=1))
    urllib.request.urlopen(f"{url}/mock/mangle?{query}", timeout=10).read()
    try:
        if op == "lookup":
            cb.lookup_in("hostile:sd", [SD.get("a"), SD.get("b")])
        else:
            cb.mutate_in("hostile:sd", [SD.counter("a", 1), SD.counter("b", 1)])
        outcome = "no error"
    except CouchbaseError as e:
        outcome = type(e).__name__
    recovered = list(cb.lookup_in("hostile:other", [SD.get("a")])) == [3]
    cb.close()
    print(json.dumps({"outcome": outcome, "recovered": recovered}))
""")


def _entry(status, value=b""):
    return struct.pack(">HI", status, len(value)) + value


SUBDOC_CASES = {
    # lookup: an entry whose value length runs past the body
    "lookup entry past the body": ("lookup", {"opcode": 0xD0}, _entry(0, b"1")[:-1] + b"\x00\x00\x10\x00x"),
    # lookup: a 6-byte entry head cut short
    "lookup entry head cut short": ("lookup", {"opcode": 0xD0}, _entry(0, b"1") + b"\x00\x00\x00"),
    # lookup: three entries for two specs
    "lookup more entries than specs": ("lookup", {"opcode": 0xD0}, _entry(0, b"1") * 3),
    # mutation: a result for spec index 200 of 2
    "mutation index not sent": ("mutate", {"opcode": 0xD1}, b"\xc8" + struct.pack(">HI", 0, 1) + b"1"),
    # mutation: a value length past the body
    "mutation value past the body": ("mutate", {"opcode": 0xD1},
                                     b"\x00" + struct.pack(">HI", 0, 4096) + b"1"),
}


@pytest.mark.parametrize("case", sorted(SUBDOC_CASES))
def test_a_hostile_subdoc_reply_is_a_protocol_error(cluster, case):
    op, fields, body = SUBDOC_CASES[case]
    mangle = dict(fields, body=body.hex())
    connstr = f"couchbase://{cluster.host}:{cluster.port}=http/default"
    url = f"http://{cluster.host}:{cluster.port}"
    proc = subprocess.run([sys.executable, "-c", SUBDOC_CHILD, connstr, op, json.dumps(mangle), url],
                          capture_output=True, text=True, timeout=60)
    cluster.mangle("hostile:sd", count=0)
    assert proc.returncode == 0, f"the client died ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # a change whose reply cannot be read may have been applied: its outcome is unknown
    expected = "ProtocolError" if op == "lookup" else "OutcomeUnknownError"
    assert result == {"outcome": expected, "recovered": True}, result


# Patch 0008: lcb_destroy freed a pending durability poll before failing its requests in
# flight, whose callbacks then reached the freed poll: closing a connection after an
# observe-based durable store timed out against a slow node crashed the process.
OBSERVE_CHILD = textwrap.dedent("""
    import sys
    from couchbase import Couchbase
    from couchbase.exceptions import DurabilityAmbiguousError, TimeoutError

    host, port = sys.argv[1], int(sys.argv[2])
    cb = Couchbase.connect(host, port, bucket="default", password="", timeout=0.5)
    timeouts = 0
    for i in range(3):
        try:
            cb.set("observed:%d" % i, i, replicate_to=2, persist_to=1)
        except (TimeoutError, DurabilityAmbiguousError):  # the store, or its copies, not in time
            timeouts += 1
    cb.close()
    print("closed", timeouts)
""")


def test_closing_after_an_observed_store_timed_out_does_not_crash():
    with MockCluster(nodes=3, replicas=2, vbuckets=64) as mock:
        mock.replication_delay(lag_ms=200, persist_ms=300)
        mock.hiccup(1500, node_index=1)  # one node's OBSERVE replies come after the timeout
        proc = subprocess.run([sys.executable, "-c", OBSERVE_CHILD, mock.host, str(mock.port)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"the client died ({proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["closed", "3"], proc.stdout


# Patch 0010: OBSERVE_SEQNO replies (every persist_to/replicate_to poll) were read for their 27
# (after a failover 43) bytes whatever their length. A short one is now a protocol error: the
# copies are not confirmed, and the change is reported applied, not confirmed.
OBSERVE_SEQNO_CHILD = textwrap.dedent("""
    import json, sys, urllib.parse, urllib.request
    from couchbase import Couchbase
    from couchbase.exceptions import CouchbaseError

    host, port, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    url = f"http://{host}:{port}/mock/mangle?"
    cb = Couchbase.connect(host, port, bucket="default", password="", timeout=1.0)
    urllib.request.urlopen(url + urllib.parse.urlencode({"key": "", "body": body}), timeout=10).read()
    try:
        cb.set("hostile:observed", 1, replicate_to=2, timeout=1.0)
        outcome = "no error"
    except CouchbaseError as e:
        outcome = type(e).__name__
    urllib.request.urlopen(url + urllib.parse.urlencode({"key": "", "count": 0}), timeout=10).read()
    recovered = bool(cb.set("hostile:observed", 2, replicate_to=2)) and cb.get("hostile:observed") == 2
    cb.close()
    print(json.dumps({"outcome": outcome, "recovered": recovered}))
""")

OBSERVE_SEQNO_CASES = {
    "reply cut short": b"\x00\x00\x01",
    "failover reply without the old uuid and seqno": b"\x01" + bytes(26),
}


@pytest.mark.parametrize("case", sorted(OBSERVE_SEQNO_CASES))
def test_a_short_observe_seqno_reply_is_not_read_past_its_end(case):
    with MockCluster(nodes=3, replicas=2, vbuckets=64) as mock:
        proc = subprocess.run([sys.executable, "-c", OBSERVE_SEQNO_CHILD, mock.host, str(mock.port),
                               OBSERVE_SEQNO_CASES[case].hex()], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"the client died ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"outcome": "DurabilityAmbiguousError", "recovered": True}, result
