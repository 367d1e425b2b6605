"""A small blocking KV client used to test the mock at the packet level.

Deliberately independent of the mock's own server code paths: it only shares the header
layout and the constants from ``couchbase.mock.protocol``.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import zlib
from collections import namedtuple

from couchbase.mock.protocol import ALT_RES_MAGIC, HEADER, Feature, Op

Response = namedtuple("Response", "magic opcode datatype status opaque cas extras key value")

DEFAULT_FEATURES = (Feature.TCP_NODELAY, Feature.MUTATION_SEQNO, Feature.XATTR, Feature.XERROR,
                    Feature.SELECT_BUCKET, Feature.JSON, Feature.COLLECTIONS, Feature.SNAPPY,
                    Feature.TRACING, Feature.ALT_REQUEST, Feature.UNORDERED_EXECUTION)


def vbucket(key, nvb=1024):
    return ((zlib.crc32(key) >> 16) & 0x7FFF) % nvb


def packet(opcode, key=b"", extras=b"", value=b"", vbucket=0, opaque=0, cas=0, datatype=0, magic=0x80):
    if isinstance(key, str):
        key = key.encode()
    if isinstance(value, str):
        value = value.encode()
    return HEADER.pack(magic, opcode, len(key), len(extras), datatype, vbucket,
                       len(extras) + len(key) + len(value), opaque, cas) + extras + key + value


class KVClient:
    """Blocking connection to one mock node."""

    def __init__(self, host, port, timeout=5.0, tls=None, server_hostname=None):
        """``tls``: an ssl.SSLContext to speak TLS with (``server_hostname`` defaults to ``host``)."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname or host)
            except BaseException:
                self.sock.close()
                raise
        self._buf = b""
        self._opaque = 0
        self.collections = False
        self.nvb = 1024

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _read(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the mock")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def recv(self):
        hdr = self._read(24)
        magic, opcode, keylen, extlen, datatype, status, bodylen, opaque, cas = HEADER.unpack(hdr)
        body = self._read(bodylen)
        if magic == ALT_RES_MAGIC:  # framing extras (TRACING negotiated) come first
            framing, keylen = keylen >> 8, keylen & 0xFF
            body = body[framing:]
        return Response(magic, opcode, datatype, status, opaque, cas, body[:extlen],
                        body[extlen:extlen + keylen], body[extlen + keylen:])

    def wkey(self, key):
        """The key as sent on the wire (collection prefix added when negotiated)."""
        if isinstance(key, str):
            key = key.encode()
        return b"\x00" + key if self.collections else key

    def call(self, opcode, key=b"", extras=b"", value=b"", vb=None, cas=0, datatype=0, raw_key=False):
        if isinstance(key, str):
            key = key.encode()
        if vb is None:
            vb = vbucket(key, self.nvb) if key else 0
        wire = key if raw_key or not key else self.wkey(key)
        self._opaque += 1
        self.send(packet(opcode, wire, extras, value, vb, self._opaque, cas, datatype))
        res = self.recv()
        assert res.opaque == self._opaque, (res, self._opaque)
        return res

    # -- handshake --------------------------------------------------------------------------

    def hello(self, features=DEFAULT_FEATURES, agent=b'{"a":"kvclient"}'):
        res = self.call(Op.HELLO, agent, value=struct.pack(">%dH" % len(features), *features), raw_key=True)
        acked = list(struct.unpack(">%dH" % (len(res.value) // 2), res.value))
        self.collections = Feature.COLLECTIONS in acked
        return acked

    def auth_plain(self, user, password):
        return self.call(Op.SASL_AUTH, b"PLAIN", value=b"\0" + user.encode() + b"\0" + password.encode(),
                         raw_key=True).status

    def auth_scram(self, user, password, mech="SCRAM-SHA512", tamper=False):
        hname = {"SCRAM-SHA512": "sha512", "SCRAM-SHA256": "sha256", "SCRAM-SHA1": "sha1"}[mech]
        cnonce = os.urandom(8).hex()
        bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
        res = self.call(Op.SASL_AUTH, mech.encode(), value=("n,," + bare).encode(), raw_key=True)
        if res.status != 0x21:
            return res.status
        server_first = res.value.decode()
        attrs = dict(p.split("=", 1) for p in server_first.split(","))
        assert attrs["r"].startswith(cnonce)
        salted = hashlib.pbkdf2_hmac(hname, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        without_proof = "c=biws,r=" + attrs["r"]
        auth_message = ",".join((bare, server_first, without_proof)).encode()
        client_key = hmac.new(salted, b"Client Key", hname).digest()
        stored = hashlib.new(hname, client_key).digest()
        sig = hmac.new(stored, auth_message, hname).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        if tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        res = self.call(Op.SASL_STEP, mech.encode(),
                        value=(without_proof + ",p=" + base64.b64encode(proof).decode()).encode(),
                        raw_key=True)
        if res.status == 0:
            server_key = hmac.new(salted, b"Server Key", hname).digest()
            expected = base64.b64encode(hmac.new(server_key, auth_message, hname).digest()).decode()
            assert res.value.decode() == "v=" + expected, "bad server signature"
        return res.status

    def select(self, bucket):
        return self.call(Op.SELECT_BUCKET, bucket.encode(), raw_key=True).status

    def bootstrap(self, user="Administrator", password="password", bucket="default",
                  features=DEFAULT_FEATURES, mech="SCRAM-SHA512"):
        self.hello(features)
        status = self.auth_scram(user, password, mech) if mech != "PLAIN" else self.auth_plain(user, password)
        assert status == 0, "auth failed: 0x%x" % status
        if bucket:
            assert self.select(bucket) == 0
        return self

    def config(self):
        res = self.call(Op.GET_CLUSTER_CONFIG)
        assert res.status == 0, res
        return json.loads(res.value)

    # -- data helpers -------------------------------------------------------------------------

    def set(self, key, value, flags=0, exp=0, cas=0, opcode=Op.SET, datatype=0):
        return self.call(opcode, key, struct.pack(">II", flags, exp), value, cas=cas, datatype=datatype)

    def get(self, key, opcode=Op.GET):
        return self.call(opcode, key)

    def arith(self, key, delta, initial=0, exp=0, opcode=Op.INCREMENT):
        return self.call(opcode, key, struct.pack(">QQI", delta, initial, exp))


def connect_owner(cluster, key, bucket="default", **kw):
    """A bootstrapped client on the node that owns ``key``'s vbucket in ``bucket``."""
    info = cluster.info()
    probe = KVClient(info["host"], cluster.kv_ports[[i for i in range(len(cluster.kv_ports))
                                                     if i not in info["failed"]][0]])
    probe.bootstrap(bucket=bucket, **kw)
    cfg = probe.config()
    probe.close()
    kb = key.encode() if isinstance(key, str) else key
    vbm = cfg["vBucketServerMap"]
    idx = vbm["vBucketMap"][vbucket(kb, len(vbm["vBucketMap"]))][0]
    port = cfg["nodesExt"][idx]["services"]["kv"]
    client = KVClient(info["host"], port)
    client.nvb = len(vbm["vBucketMap"])
    return client.bootstrap(bucket=bucket, **kw)
