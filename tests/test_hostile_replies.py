"""The built-packet path's reply parser against what a broken or hostile node
sends: replies to gets (and exists' GET_META, and large stores) rewritten by
the mock's ``mangle`` fault (wrong magic,
opcode or opaque, lengths that overrun the body or the bytes sent, huge
bodies, framing extras of every size). The process never crashes or hangs:
a mangled reply is an error for its key within the operation timeout, the
other keys of the same call get their values, and the Connection carries on.

libcouchbase frames replies by the header's body length before the binding
sees them: a reply that claims more than was sent makes it wait (the mock
then closes the connection, as a node out of step would), one with a foreign
opaque is dropped as late (the get times out). A reply that claims less than
it sends but stays well formed (a shorter value) cannot be told from a
shorter value by any client, and is not generated here; neither is a body
length of 0xFFFFFFE8 or more, which libcouchbase 3.3.4 adds to 24 in 32 bits
(mcserver.cc try_read) before it reads on: its own defect, out of the
binding's reach."""

import json
import struct
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couchbase import FMT_PLAIN, Couchbase, Result
from couchbase.exceptions import CouchbaseError, ProtocolError
from couchbase.mock.errmap import error_map

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)

TIMEOUT = 0.5                   # the fuzzed Connection's operation timeout (s)
SLACK = 4.0                     # a loaded machine's scheduling on top of it
GOOD = {f"hostile:good:{i}": b"good %d" % i for i in range(3)}
BAD = "hostile:bad"
VALUE = b"the right value"      # BAD's stored value
FLAGS = FMT_PLAIN
BODY = (FLAGS).to_bytes(4, "big") + VALUE   # BAD's reply body: flags, value
LAST_SAFE_BODYLEN = 0xFFFFFFE7  # 24 + this still fits libcouchbase's 32 bits


OP_GET, OP_SET, OP_STAT, OP_GET_META = 0x00, 0x01, 0x10, 0xA0


def _meta(deleted=0):
    """A GET_META reply's extras (version 1, what a request without extras
    gets): deleted flag, flags, expiry, seqno."""
    return struct.pack(">IIIQ", deleted, FLAGS, 0, 7)


META_EXTLEN = len(_meta())  # 20
LARGE = b"L" * 20000            # a raw store this large is a built packet


def _error_statuses(*attrs):
    """The statuses in the mock's error map that mean an error for one key
    (libcouchbase 3.3.4 aborts the process on a forwarded packet's reply whose
    status is not in the map or needs "special-handling": not generated here),
    or, given attrs, the error statuses that carry one of them."""
    errors = json.loads(error_map(1))["errors"]
    codes = {int(code, 16): set(e["attrs"]) for code, e in errors.items()
             if not {"success", "special-handling"} & set(e["attrs"])}
    if attrs:
        return sorted(code for code, a in codes.items() if a & set(attrs))
    return sorted(code for code, a in codes.items() if not a & set(CONNECTION_WIDE))


# A status that says the connection's own state is invalid (auth stale or
# failed) makes libcouchbase drop that connection: what else was in flight on
# it fails too, and the Connection reconnects (test_*_invalidates_*).
CONNECTION_WIDE = ("conn-state-invalidated",)


@pytest.fixture(scope="module")
def conn(cluster):
    c = Couchbase.connect(cluster.host, cluster.port, bucket="default", password="", timeout=TIMEOUT)
    c.set(dict(GOOD, **{BAD: VALUE}), format=FLAGS)
    yield c
    c.close()


def _call(fn):
    """(outcome, seconds) of a call: its result or its CouchbaseError."""
    start = time.monotonic()
    try:
        outcome = fn()
    except CouchbaseError as e:
        outcome = e
    return outcome, time.monotonic() - start


def _bad_key_failed(outcome, seconds, good_results):
    """The call failed within the timeout for BAD alone; the good keys'
    results, and BAD's error."""
    assert isinstance(outcome, CouchbaseError), outcome
    assert seconds < TIMEOUT + SLACK
    results = outcome.all_results
    assert isinstance(results[BAD], CouchbaseError) and results[BAD].key == BAD
    good_results({k: results[k] for k in GOOD})
    return results[BAD]


def _answer(call, key):
    """What a ``call`` (get or exists) of ``key`` gives from intact replies."""
    return True if call == "exists" else VALUE if key == BAD else GOOD[key]


def _check_mangled(conn, cluster, call="get", **mangle):
    """A ``call`` (get, or exists: GET_META) of BAD under ``mangle`` fails
    (CouchbaseError, within the timeout), the good keys get their results,
    and the Connection works. BAD comes last: if the node closes after its
    reply, the good keys were answered before."""
    read = conn.get if call == "get" else conn.exists
    cluster.mangle(BAD, **mangle)
    try:
        outcome, seconds = _call(lambda: read([*GOOD, BAD]))
    finally:
        cluster.mangle(BAD, count=0)

    def good_results(results):
        assert results == {k: _answer(call, k) for k in GOOD}
    error = _bad_key_failed(outcome, seconds, good_results)
    assert error.operation == call
    results = read([BAD, *GOOD])
    assert list(results.values() if call == "exists" else results) == [_answer(call, k) for k in [BAD, *GOOD]]
    return error


def _check_mangled_store(conn, cluster, **mangle):
    """The same for a large raw store (a built packet) of BAD among others."""
    values = {k: LARGE + v for k, v in GOOD.items()}
    cluster.mangle(BAD, **mangle)
    try:
        outcome, seconds = _call(lambda: conn.set(dict(values, **{BAD: LARGE}), format=FLAGS))
    finally:
        cluster.mangle(BAD, count=0)

    def good_results(results):
        assert all(isinstance(cas, int) and cas for cas in results.values())
    _bad_key_failed(outcome, seconds, good_results)
    assert conn.get(list(values)) == list(values.values())
    conn.set(dict(GOOD, **{BAD: VALUE}), format=FLAGS)  # as the other tests expect them
    assert conn.get(BAD) == VALUE


@pytest.mark.parametrize("status", _error_statuses(*CONNECTION_WIDE))
def test_a_status_that_invalidates_the_connection_is_an_error_then_it_recovers(conn, cluster, status):
    cluster.mangle(BAD, count=1, status=status)
    try:
        outcome, seconds = _call(lambda: conn.set(BAD, LARGE, format=FLAGS))
    finally:
        cluster.mangle(BAD, count=0)
    # an error for the key, or (NO_BUCKET: the server refused before doing
    # anything) libcouchbase's reconnect and retry stored it
    failed = isinstance(outcome, CouchbaseError) and outcome.key == BAD
    assert failed or (isinstance(outcome, int) and outcome)
    assert seconds < TIMEOUT + SLACK
    deadline = time.monotonic() + 10
    while True:  # the calls right after may fail with the dropped connection
        outcome, _ = _call(lambda: conn.get(list(GOOD)))
        if outcome == list(GOOD.values()) or time.monotonic() > deadline:
            break
        assert isinstance(outcome, CouchbaseError)
        time.sleep(0.1)
    assert outcome == list(GOOD.values())
    conn.set(dict(GOOD, **{BAD: VALUE}), format=FLAGS)  # as the other tests expect them


def _malformed(m, opcode):
    """Whether a reply of these lengths is wrong for `opcode` (the parser's
    own reading), with no more body announced than sent."""
    framing, key = (m["keylen"] >> 8, m["keylen"] & 0xFF) if m["magic"] == 0x18 else (0, m["keylen"])
    claimed, sent = m["bodylen"], len(m["body"])
    if claimed < sent:
        return False
    if claimed > sent or framing + m["extlen"] + key > claimed:
        return True
    if opcode == OP_GET_META:  # a found item's metadata: exactly the 20 bytes asked for
        return m["extlen"] != META_EXTLEN or key != 0
    return opcode == OP_GET and (m["extlen"] != 4 or key != 0)


_byte = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)


def _wrong_replies(opcode):
    """Mangle arguments that make a reply to `opcode` wrong."""
    wrong = [
        st.builds(dict, magic=_byte.filter(lambda m: m not in (0x81, 0x18))),
        st.builds(dict, opcode=_byte.filter(lambda o: o != opcode)),
        # libcouchbase keeps a packet in flight after a STAT reply with a key
        st.builds(dict, opcode=st.just(OP_STAT), keylen=st.integers(1, 0xFFFF)),
        st.builds(dict, opaque=st.integers(0x80000000, 0xFFFFFFFF)),  # far from libcouchbase's counter
        # (a missing document is not an error for exists, but False)
        st.builds(dict, status=st.sampled_from(
            [s for s in _error_statuses() if not (opcode == OP_GET_META and s == 0x01)])),
        # a body shorter than the header's lengths say
        st.builds(dict, body=st.binary(max_size=3), extlen=st.integers(4, 0xFF)),
        st.builds(dict, magic=st.just(0x18), body=st.binary(max_size=3),
                  keylen=st.integers(4, 0xFF).map(lambda f: f << 8)),
        # a body length beyond the bytes sent, up to libcouchbase's last safe one
        st.builds(dict, bodylen=st.integers(len(BODY) + 17, LAST_SAFE_BODYLEN)),
        st.builds(dict, body=st.binary(max_size=64), bodylen=st.integers(0, 80),
                  magic=st.sampled_from([0x81, 0x18]), keylen=_u16, extlen=_byte).filter(
            lambda m: _malformed(m, opcode)),
    ]
    if opcode == OP_GET:
        wrong += [
            st.builds(dict, extlen=_byte.filter(lambda n: n != 4)),
            st.builds(dict, keylen=st.integers(1, 0xFFFF)),
            st.builds(dict, datatype=_byte.filter(lambda d: d & 0x02)),  # snappy: never negotiated
            st.builds(dict, bodylen=st.integers(0, 3)),
        ]
    if opcode == OP_GET_META:
        wrong += [
            st.builds(dict, extlen=_byte.filter(lambda n: n != META_EXTLEN)),
            st.builds(dict, keylen=st.integers(1, 0xFFFF)),
            st.builds(dict, bodylen=st.integers(0, META_EXTLEN - 1)),
            # extras cut short, or longer than asked for, with lengths that agree
            st.integers(0, 0xFF).filter(lambda n: n != META_EXTLEN).map(
                lambda n: dict(extlen=n, body=(_meta() * 13)[:n])),
        ]
    return st.one_of(wrong)


@settings(max_examples=60, deadline=None)
@given(mangle=_wrong_replies(OP_GET))
def test_a_mangled_get_reply_is_an_error_for_its_key_only(conn, cluster, mangle):
    _check_mangled(conn, cluster, **mangle)


@settings(max_examples=40, deadline=None)
@given(mangle=_wrong_replies(OP_GET_META))
def test_a_mangled_exists_reply_is_an_error_for_its_key_only(conn, cluster, mangle):
    _check_mangled(conn, cluster, "exists", **mangle)


@pytest.mark.parametrize("n", [0, 4, 12, META_EXTLEN - 1])
def test_truncated_metadata_is_a_protocol_error(conn, cluster, n):
    # GET_META's extras cut short (the header agreeing with the bytes sent):
    # nothing is read past them, the key fails, the connection carries on
    error = _check_mangled(conn, cluster, "exists", extlen=n, body=_meta()[:n])
    assert isinstance(error, ProtocolError) and error.key == BAD
    # the header announcing more than the node sends: the same
    assert isinstance(_check_mangled(conn, cluster, "exists", body=_meta()[:n]), ProtocolError)


@pytest.mark.parametrize("deleted", [1, 0x100, 0x80000000])
def test_exists_reads_the_deleted_flag(conn, cluster, deleted):
    # a tombstone (GET_META found it, deleted flag set) does not exist
    cluster.mangle(BAD, body=_meta(deleted))
    try:
        assert conn.exists([BAD, *GOOD]) == dict(dict.fromkeys(GOOD, True), **{BAD: False})
        assert conn.exists(BAD, extended=True) == Result(False, 0, 0)
    finally:
        cluster.mangle(BAD, count=0)
    cluster.mangle(BAD, count=1, body=_meta(0))
    assert conn.exists(BAD, extended=True)[:2] == (True, 0)


@pytest.mark.parametrize("framing", [0, 1, 0xFE, 0xFF])
def test_exists_skips_framing_extras_at_the_one_byte_boundary(conn, cluster, framing):
    for deleted, found in ((0, True), (1, False)):
        cluster.mangle(BAD, magic=0x18, keylen=framing << 8, body=bytes(framing) + _meta(deleted))
        try:
            assert conn.exists([BAD, *GOOD]) == dict(dict.fromkeys(GOOD, True), **{BAD: found})
        finally:
            cluster.mangle(BAD, count=0)
    # the framing extras end before the metadata does: it overruns the body
    error = _check_mangled(conn, cluster, "exists", magic=0x18, keylen=framing << 8,
                                  body=bytes(framing) + _meta()[:-1])
    assert isinstance(error, ProtocolError)


@settings(max_examples=30, deadline=None)
@given(mangle=_wrong_replies(OP_SET))
def test_a_mangled_store_reply_is_an_error_for_its_key_only(conn, cluster, mangle):
    _check_mangled_store(conn, cluster, **mangle)


@settings(max_examples=30, deadline=None)
@given(frames=st.binary(max_size=0xFF))
def test_framing_extras_of_every_size_are_skipped(conn, cluster, frames):
    # a reply with the alternative magic and framing extras before the flags
    # (as a node sends its server duration) gives the value
    cluster.mangle(BAD, magic=0x18, keylen=len(frames) << 8, body=frames + BODY)
    try:
        assert conn.get(BAD, extended=True)[:2] == (VALUE, FLAGS)
    finally:
        cluster.mangle(BAD, count=0)


@pytest.mark.parametrize("framing", [0, 1, 0xFE, 0xFF])
def test_framing_extras_at_the_one_byte_boundary(conn, cluster, framing):
    cluster.mangle(BAD, magic=0x18, keylen=framing << 8, body=bytes(framing) + BODY)
    try:
        assert conn.get([BAD, *GOOD]) == [VALUE, *GOOD.values()]
    finally:
        cluster.mangle(BAD, count=0)
    # the framing extras end one byte before the flags do: the flags overrun
    error = _check_mangled(conn, cluster, magic=0x18, keylen=framing << 8, body=bytes(framing) + BODY[:3])
    assert isinstance(error, ProtocolError)


def test_errors_name_the_reply_not_the_request(conn, cluster):
    error = _check_mangled(conn, cluster, magic=0x80)  # a request's magic in a reply
    assert isinstance(error, ProtocolError) and error.operation == "get"
    assert "does not understand" in str(error)


def test_a_huge_body_is_a_timely_error(conn, cluster):
    # the node announces 4 GiB and closes: nothing is allocated up front
    _check_mangled(conn, cluster, bodylen=LAST_SAFE_BODYLEN)
    _check_mangled(conn, cluster, bodylen=20 * 1024 * 1024 + 1)


def test_the_mangle_fault_over_http(cluster, conn):
    url = f"http://{cluster.host}:{cluster.port}/mock/mangle?key={BAD}"
    with urllib.request.urlopen(url + "&magic=0x80&count=1") as reply:
        assert json.loads(reply.read())["status"] == "ok"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url + "&magic=0x100")  # does not fit a byte
    assert info.value.code == 400 and "magic" in json.loads(info.value.read())["error"]
    with pytest.raises(ProtocolError):
        conn.get(BAD)
    assert conn.get(BAD) == VALUE  # count=1: the next reply is the node's own
