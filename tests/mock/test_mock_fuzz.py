"""Seeded fuzzing: malformed KV packets and HTTP requests must never crash the mock.

Every reply must be a well-formed response packet (or the connection closed), the mock must
keep serving, and no handler may have failed with an internal error.
"""

import random
import socket
import struct

import pytest
from mock_kvclient import KVClient, packet

from couchbase.mock.protocol import HEADER, Op

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)
SEED = 20240611
KNOWN_OPS = [v for k, v in vars(Op).items() if k.isupper()]


def _valid_packet(rng):
    op = rng.choice(KNOWN_OPS)
    key = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 3, 8, 250, 251))))
    extras = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, 4, 8, 12, 16, 20, 21))))
    value = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, 8, 100))))
    return packet(op, key, extras, value, vbucket=rng.randrange(0, 1100), opaque=rng.randrange(1 << 32),
                  cas=rng.choice((0, rng.randrange(1 << 64))), datatype=rng.randrange(8))


def _mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def _bogus_header(rng):
    # lengths that contradict each other or point past the buffer
    keylen = rng.choice((0, 5, 300, 0xFFFF))
    extlen = rng.choice((0, 8, 255))
    bodylen = rng.choice((0, 3, keylen + extlen, 64, 40 * 1024 * 1024, 0xFFFFFFFF))
    magic = rng.choice((0x80, 0x80, 0x80, 0x08, 0x81, 0x00, 0xFF))
    hdr = HEADER.pack(magic, rng.randrange(256), keylen, extlen, rng.randrange(256), rng.randrange(1 << 16),
                      bodylen, rng.randrange(1 << 32), 0)
    return hdr + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))


def _case(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        return _bogus_header(rng)
    if kind == 2:
        return _mutate(rng, _valid_packet(rng))
    if kind == 3:
        data = _valid_packet(rng)
        return data[:rng.randrange(1, len(data))]  # cut short, then EOF
    return b"".join(_valid_packet(rng) for _ in range(rng.randrange(1, 8)))


def _check_replies(data):
    pos = 0
    while len(data) - pos >= 24:
        magic, _, keylen, extlen, _, _, bodylen, _, _ = HEADER.unpack_from(data, pos)
        if magic == 0x18:  # framing extras length, then a 1-byte key length
            keylen = (keylen >> 8) + (keylen & 0xFF)
        assert magic in (0x81, 0x18) and keylen + extlen <= bodylen
        pos += 24 + bodylen
    assert pos == len(data), "trailing partial reply"


def _exchange(mock, payload, authenticate):
    with KVClient(mock.host, mock.kv_ports[0], timeout=5) as c:
        if authenticate:
            c.bootstrap()
        sock = c.sock
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the mock already closed: acceptable
        data = c._buf
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        _check_replies(data)


def test_fuzz_kv_packets(mock1):
    rng = random.Random(SEED)
    for i in range(400):
        _exchange(mock1, _case(rng), authenticate=i % 2 == 0)
    assert mock1.core.errors == []
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:  # still serving
        assert c.bootstrap().call(Op.NOOP).status == 0


def test_fuzz_valid_packets_every_opcode(mock1):
    """Every opcode with random extras/key/value sizes on an authenticated connection."""
    rng = random.Random(SEED + 1)
    with KVClient(mock1.host, mock1.kv_ports[0], timeout=5) as c:
        c.bootstrap()
        for _ in range(1500):
            op = rng.choice(KNOWN_OPS + [rng.randrange(256)])
            if op in (Op.QUIT, Op.QUITQ, Op.SASL_AUTH, Op.SASL_STEP, Op.SELECT_BUCKET, Op.HELLO):
                continue  # would end or reset the session
            key = b"\x00" + bytes(rng.randrange(97, 123) for _ in range(rng.randrange(0, 12)))
            extras = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 4, 8, 20, 21))))
            value = bytes(rng.randrange(256) for _ in range(rng.choice((0, 2, 8, 30))))
            c.send(packet(op, key, extras, value, vbucket=rng.randrange(1024), opaque=1,
                          datatype=rng.choice((0, 0, 1, 2, 4))))
            c.send(packet(Op.NOOP, opaque=2))
            while True:  # read up to the NOOP; quiet commands may be silent
                r = c.recv()
                if r.opaque == 2:
                    break
    assert mock1.core.errors == []


HTTP_PATHS = ["/pools", "/pools/default", "/pools/default/buckets", "/pools/default/buckets/default",
              "/pools/default/b/default", "/pools/default/buckets/default/controller/doFlush",
              "/settings/rbac/users", "/settings/rbac/users/local/x", "/mock/failover", "/mock/opfail",
              "/mock/hiccup", "/mock/create_bucket", "/mock/keyinfo", "/mock/time_travel", "/%00/..",
              "/pools/default/buckets/%ff"]


def _http_case(rng):
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "G\x00T", ""])
    path = rng.choice(HTTP_PATHS)
    if rng.random() < 0.5:
        path += "?" + "&".join("%s=%s" % (rng.choice(["idx", "name", "msecs", "code", "count", "key",
                                                         "seconds", "limit", "x"]),
                                          rng.choice(["0", "-1", "abc", "99999999999999999999", "",
                                                      "%zz", "1e9", "default"]))
                               for _ in range(rng.randrange(1, 4)))
    body = rng.choice([b"", b"{garbage", b'{"name": 5}', b"name=&ramQuotaMB=x", b"\xff\xfe",
                       b"[]", b"roles=admin[&password=abcdefg"])
    ctype = rng.choice(["application/json", "application/x-www-form-urlencoded", "text/plain"])
    auth = rng.choice(["Basic QWRtaW5pc3RyYXRvcjpwYXNzd29yZA==", "Basic ???", "Digest x", ""])
    head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n" % (method, path, ctype)
    if auth:
        head += "Authorization: %s\r\n" % auth
    length = rng.choice([len(body), len(body), len(body) + 10, 0])
    head += "Content-Length: %d\r\nConnection: close\r\n\r\n" % length
    data = head.encode("latin-1") + body
    if rng.random() < 0.1:
        data = _mutate(rng, data)
    return data


def test_fuzz_http(mock1):
    rng = random.Random(SEED + 2)
    for _ in range(300):
        with socket.create_connection((mock1.host, mock1.port), timeout=5) as sock:
            sock.sendall(_http_case(rng))
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            if data:
                assert data.startswith(b"HTTP/1.1 "), data[:80]
                assert not data.startswith(b"HTTP/1.1 5"), data[:300]
    assert mock1.core.errors == []
    assert mock1.running


@pytest.mark.parametrize("size", [24 + 30 * 1024 * 1024 + 1])
def test_oversized_packet_closes_connection(mock1, size):
    with KVClient(mock1.host, mock1.kv_ports[0]) as c:
        c.bootstrap()
        c.send(HEADER.pack(0x80, Op.SET, 1, 8, 0, 0, size - 24, 1, 0))
        with pytest.raises((ConnectionError, OSError)):
            c.recv()


def test_fuzz_subdoc(mock1):
    """Random paths, flags, fragments and spec lists for every sub-document command."""
    rng = random.Random(SEED + 3)
    alphabet = "ab.[]`-0123$"
    fragments = [b"1", b"-1", b'"s"', b"{}", b"[]", b"[1,2]", b"{bad", b"", b"1,2", b"null", b"9" * 30,
                 b'"${Mutation.CAS}"', b'"${x}"']
    ops = [0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD2]
    with KVClient(mock1.host, mock1.kv_ports[0], timeout=5) as c:
        c.bootstrap()
        for i in range(1500):
            key = "sd%d" % rng.randrange(4)
            if i % 50 == 0:
                c.set(key, rng.choice([b'{"a":{"b":[1,{"c":2}]},"ab":"x"}', b"[1,2,3]", b"raw", b"{}"]))
            path = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8))).encode()
            flags = rng.choice((0, 0x01, 0x04, 0x05, 0x10, 0x14, 0xFF))
            value = rng.choice(fragments)
            kind = rng.randrange(3)
            if kind == 0:
                op = rng.choice(ops)
                extras = struct.pack(">HB", len(path), flags)
                if rng.random() < 0.3:
                    extras += struct.pack(">I", rng.choice((0, 5)))
                if rng.random() < 0.3:
                    extras += bytes([rng.choice((0, 1, 2, 4, 7))])
                c.send(packet(op, b"\x00" + key.encode(), extras, path + value, opaque=1))
            elif kind == 1:
                lookups = [0xC5, 0xC6, 0xD2, 0x00, 0xC8]
                body = b"".join(struct.pack(">BBH", rng.choice(lookups), rng.choice((0, 4)), len(path)) + path
                                for _ in range(rng.randrange(1, 18)))
                c.send(packet(0xD0, b"\x00" + key.encode(), b"", body, opaque=1))
            else:
                specs = []
                for _ in range(rng.randrange(1, 18)):
                    op = rng.choice(ops[2:11] + [0x01, 0x04])
                    specs.append(struct.pack(">BBHI", op, flags, len(path), len(value)) + path + value)
                extras = rng.choice((b"", b"\x01", b"\x00\x00\x00\x05", b"\x00\x00\x00\x05\x02"))
                c.send(packet(0xD1, b"\x00" + key.encode(), extras, b"".join(specs), opaque=1))
            c.send(packet(Op.NOOP, opaque=2))
            while c.recv().opaque != 2:
                pass
    assert mock1.core.errors == []
