"""Every size limit of the built-packet path (couchbase/_forward.pxi), on both
paths: every key length from 1 to 250 bytes, ASCII and multi-byte UTF-8,
through every operation; values at the 16 KiB thresholds and the 20 MiB item
limit; the widths libcouchbase uses for a forwarded packet. And the request
smuggling a head too long for libcouchbase's 8-bit header size once allowed
(a get of a 232- to 250-byte key left the server reading the next request's
value as commands): values made of whole requests are stored, read back and
never executed."""

import itertools
import struct

import pytest

from couchbase import FMT_PLAIN, _lcb
from couchbase.exceptions import TooBigError
from couchbase.mock.protocol import REQ_MAGIC, Op

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)

HEADER = 24
MAX_KEY = 250
LARGE = 16384            # from this size on a raw store is a built packet, a value read kept as bytes
MAX_ITEM = 20 * 1024 * 1024
_tags = itertools.count()


def _key(nbytes, char, tag):
    """A key of exactly `nbytes` UTF-8 bytes: `tag`, then `char` repeated, then
    ASCII to fill what a whole `char` no longer fits."""
    text = tag
    while len((text + char).encode()) <= nbytes:
        text += char
    text = text.encode()[:nbytes].decode("utf-8", "ignore")
    return text + "x" * (nbytes - len(text.encode()))


def _keys(char):
    tag = f"{next(_tags)}:"
    keys = [_key(n, char, tag) for n in range(1, MAX_KEY + 1)]
    assert [len(k.encode()) for k in keys] == list(range(1, MAX_KEY + 1))
    return keys


CHARSETS = pytest.mark.parametrize("char", ["k", "é", "☃", "𝄞"], ids=["ascii", "2-byte", "3-byte", "4-byte"])


def test_the_widths_libcouchbase_uses():
    # mcreq_reserve_header(..., uint8_t hdrsize), and a packet's 32-bit length
    assert _lcb._FORWARD_MAX_HEAD == 0xFF and _lcb._FORWARD_MAX_PACKET == 0xFFFFFFFF
    head = _lcb._FORWARD_MAX_HEAD
    assert _lcb._forwarding_fits(head, 0) and not _lcb._forwarding_fits(head + 1, 0)
    assert _lcb._forwarding_fits(head, _lcb._FORWARD_MAX_PACKET - head)
    assert not _lcb._forwarding_fits(head, _lcb._FORWARD_MAX_PACKET - head + 1)
    assert not _lcb._forwarding_fits(HEADER, 2**64 - 1)  # no wrap in the sum


@CHARSETS
def test_every_key_length_round_trips_through_every_operation(each_path, char):
    c, keys = each_path, _keys(char)
    small = {k: b"s%d" % i for i, k in enumerate(keys)}
    large = {k: bytes([65 + i % 26]) * LARGE for i, k in enumerate(keys)}
    c.delete(keys, quiet=True)
    assert c.exists(keys) == dict.fromkeys(keys, False)

    cas = c.add(small, format=FMT_PLAIN)
    assert c.exists(keys) == dict.fromkeys(keys, True)  # a GET_META's head: header and key, as a get's
    got = c.get(keys, extended=True)
    assert {k: tuple(r) for k, r in got.items()} == {k: (small[k], FMT_PLAIN, cas[k]) for k in keys}
    c.append({k: b"+a" for k in keys})
    c.prepend({k: b"p+" for k in keys})
    assert c.get(keys) == [b"p+" + small[k] + b"+a" for k in keys]

    c.replace(large, format=FMT_PLAIN)
    assert c.get(keys) == list(large.values())
    c.append({k: b"a" * LARGE for k in keys})
    c.prepend({k: b"p" * LARGE for k in keys})
    assert c.get(keys) == [b"p" * LARGE + large[k] + b"a" * LARGE for k in keys]

    c.set(small, ttl=60, format=FMT_PLAIN)
    assert c.get(keys, ttl=120) == list(small.values())  # get-and-touch
    assert all(c.touch(keys, ttl=60).values())
    locked = c.lock(keys, ttl=10)
    assert [locked[k].value for k in keys] == list(small.values())
    assert all(c.unlock({k: locked[k].cas for k in keys}).values())

    assert all(c.delete(keys).values())
    assert c.get(keys, quiet=True) == [None] * MAX_KEY
    assert c.exists(keys) == dict.fromkeys(keys, False)  # tombstones
    assert c.incr(keys, initial=5) == dict.fromkeys(keys, 5)
    assert c.incr(keys, amount=3) == dict.fromkeys(keys, 8)
    assert c.decr(keys, amount=2) == dict.fromkeys(keys, 6)
    assert all(c.delete(keys).values())


@pytest.mark.parametrize("op", ["set", "append"])
def test_a_head_at_the_8_bit_boundary(each_path, op):
    # the longest key whose packet head (header, extras, key) still fits in a
    # byte, and the shortest that does not, with values around 16 KiB
    extras = 8 if op == "set" else 0
    boundary = _lcb._FORWARD_MAX_HEAD - HEADER - extras
    for nkey in (boundary, boundary + 1):
        for size in (LARGE - 1, LARGE):
            k = _key(nkey, "b", f"{op}{size}:")
            each_path.set(k, b"", format=FMT_PLAIN)
            if op == "set":
                each_path.set(k, b"v" * size, format=FMT_PLAIN)
            else:
                each_path.append(k, b"v" * size)
            assert each_path.get(k) == b"v" * size and len(k.encode()) == nkey
    get_boundary = _lcb._FORWARD_MAX_HEAD - HEADER
    assert get_boundary == 231  # a get's head: header and key


@pytest.mark.parametrize("size", [LARGE - 1, LARGE, LARGE + 1])
def test_values_at_the_16_kib_threshold(each_path, size):
    keys = [_key(n, "t", f"t{size}:") for n in (1, 231, 232, MAX_KEY)]
    values = {k: bytes([48 + i]) * size for i, k in enumerate(keys)}
    each_path.set(values, format=FMT_PLAIN)
    assert each_path.get(keys) == list(values.values())


def test_values_at_the_item_size_limit(each_path):
    k = _key(MAX_KEY, "m", "max:")
    each_path.set(k, b"m" * MAX_ITEM, format=FMT_PLAIN)
    assert each_path.get(k) == b"m" * MAX_ITEM
    with pytest.raises(TooBigError) as info:
        each_path.set(k, b"m" * (MAX_ITEM + 1), format=FMT_PLAIN)
    assert info.value.key == k and info.value.operation == "set"
    each_path.append(k, b"")  # nothing was lost, the connection carries on
    assert len(each_path.get(k)) == MAX_ITEM


# -- smuggling ------------------------------------------------------------------------------

def _request(opcode, key, extras=b"", value=b""):
    """A complete memcached binary request, as a client would send it."""
    key = key.encode()
    return struct.pack(">BBHBBHIIQ", REQ_MAGIC, opcode, len(key), len(extras), 0, 0,
                       len(extras) + len(key) + len(value), 0xABCD, 0) + extras + key + value


def _smuggling_value(size, victim, planted):
    """`size` bytes made of whole requests, at every alignment: a SET of
    `planted` (which must never exist) and a DELETE of `victim`."""
    requests = (_request(Op.SET, planted, struct.pack(">II", 0, 0), b"smuggled")
                + _request(Op.DELETE, victim))
    out = bytearray()
    shift = 0
    while len(out) < size:
        out += b"\x00" * shift + requests
        shift = (shift + 1) % HEADER
    return bytes(out[:size])


@pytest.mark.parametrize("size", [300, 4 * LARGE], ids=["small", "large"])
def test_values_holding_requests_are_never_executed(each_path, size):
    c, tag = each_path, f"smuggle{next(_tags)}:"
    victim, planted = tag + "victim", tag + "planted"
    c.set(victim, b"intact", format=FMT_PLAIN)
    value = _smuggling_value(size, victim, planted)
    keys = [_key(n, "s", tag) for n in (1, 20, 200, 231, 232, 240, 249, MAX_KEY)]
    for k in keys:
        # a get of each key, then a store whose value is requests: what a
        # mis-framed get would let the server read as commands
        c.delete(k, quiet=True)  # short keys are shared with other tests
        assert c.get(k, quiet=True) is None
        c.set(k, value, format=FMT_PLAIN)
        c.append(k, value)
    assert c.get(keys) == [value + value] * len(keys)
    assert c.get(list(reversed(keys)), extended=True)[keys[-1]].value == value + value
    assert c.get(planted, quiet=True) is None
    assert c.get(victim) == b"intact"
    c.set(victim, b"still", format=FMT_PLAIN)  # and the connection is healthy
    assert c.get(victim) == b"still"
