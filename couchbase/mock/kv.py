"""The KV (memcached binary protocol) service of a mock node.

One ``KVConnection`` per client socket. ``data_received`` decodes every complete packet in
the buffer, answers them in order and writes all replies at once: pipelined clients get one
write per read. Command handlers are plain functions registered per opcode, grouped below
by family (session, CRUD, arithmetic, locking, metadata, stats, collections).
"""

import asyncio
import json
import os
import socket
import struct
import zlib

from . import config as _config
from .errmap import error_map
from .protocol import (
    ALT_REQ_MAGIC,
    ALT_RES_MAGIC,
    DATATYPE_JSON,
    HEADER,
    REQ_MAGIC,
    RES_MAGIC,
    SERVER_REQ_MAGIC,
    Feature,
    Op,
    Status,
    leb128_decode,
)
from .replication import LEVELS, FrameError, parse_frames
from .sasl import MECHANISMS, AuthFailed, SaslSession
from .store import MAX_ITEM_SIZE

MAX_PACKET = 30 * 1024 * 1024  # a real node drops connections sending larger packets
MAX_KEY = 250
_FLUSH_SIZE = 1 << 20  # write replies out at least this often within one read
_WRITE_HIGH_WATER = 4 << 20

_unpack_header = HEADER.unpack_from
_pack_header = HEADER.pack
_crc32 = zlib.crc32
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_QQ = struct.Struct(">QQ")
_EXP = struct.Struct(">II")
_ARITH = struct.Struct(">QQI")
_META = struct.Struct(">IIIQ")
_META_DT = struct.Struct(">IIIQB")

# Features we acknowledge in HELLO (the others are safe to refuse by not echoing them).
SUPPORTED_FEATURES = frozenset((
    Feature.TCP_NODELAY, Feature.MUTATION_SEQNO, Feature.TCP_DELAY, Feature.XATTR,
    Feature.XERROR, Feature.SELECT_BUCKET, Feature.JSON, Feature.UNORDERED_EXECUTION,
    Feature.COLLECTIONS, Feature.DUPLEX, Feature.CLUSTERMAP_CHANGE_NOTIFICATION, Feature.TRACING,
    Feature.ALT_REQUEST, Feature.SYNC_REPLICATION,
))

# Mutations a durability frame may carry, and the ones a pending durable write of their key
# holds off (SYNC_WRITE_IN_PROGRESS).
DURABLE_OPS = frozenset((Op.SET, Op.ADD, Op.REPLACE, Op.DELETE, Op.INCREMENT, Op.DECREMENT, Op.APPEND,
                         Op.PREPEND, Op.SUBDOC_MULTI_MUTATION) + tuple(range(Op.SUBDOC_DICT_ADD,
                                                                            Op.SUBDOC_COUNTER + 1)))
BLOCKED_BY_SYNC_WRITE = DURABLE_OPS | frozenset((
    Op.SETQ, Op.ADDQ, Op.REPLACEQ, Op.DELETEQ, Op.INCREMENTQ, Op.DECREMENTQ, Op.APPENDQ, Op.PREPENDQ,
    Op.TOUCH, Op.GAT, Op.GATQ, Op.GET_LOCKED))

# Handler kinds: what must hold before the handler runs.
SESSION = 0   # anything (the handler checks what it needs)
BUCKET = 1    # an authenticated connection with a selected bucket
KEYED = 2     # BUCKET + the key's vbucket is active on this node (collection prefix removed)
REPLICA = 3   # BUCKET + this node holds a replica of the key's vbucket

HANDLERS = {}


def handler(*opcodes, kind=SESSION):
    """Register a command handler for ``opcodes``."""
    def register(fn):
        for op in opcodes:
            HANDLERS[op] = (fn, kind)
        return fn
    return register


# A server-duration frame: framing extra id 0, 2 bytes (the encoded duration).
_DURATION_FRAME = bytes((0x02, 0x00, 0x01))


def _with_duration_frames(data):
    """Replies as a node sends them once TRACING is negotiated: alternative magic,
    a server-duration frame before the extras (HELLO's own reply and server
    requests unchanged; keys over 255 bytes cannot be framed and are left alone)."""
    parts = []
    pos = 0
    while pos + 24 <= len(data):
        end = pos + 24 + _U32.unpack_from(data, pos + 8)[0]
        if data[pos] != RES_MAGIC or data[pos + 1] == Op.HELLO or data[pos + 2]:
            parts.append(data[pos:end])
        else:
            header = bytearray(data[pos:pos + 24])
            header[0], header[2] = ALT_RES_MAGIC, len(_DURATION_FRAME)  # byte 3 stays the key length
            _U32.pack_into(header, 8, end - pos - 24 + len(_DURATION_FRAME))
            parts += (header, _DURATION_FRAME, data[pos + 24:end])
        pos = end
    parts.append(data[pos:])
    return b"".join(parts)


def _res(opcode, status, opaque, cas=0, extras=b"", key=b"", value=b"", datatype=0):
    if status:
        STATUS_COUNTS[status] = STATUS_COUNTS.get(status, 0) + 1
    return b"".join((_pack_header(RES_MAGIC, opcode, len(key), len(extras), datatype, status,
                                  len(extras) + len(key) + len(value), opaque, cas),
                     extras, key, value))


#: Non-success replies sent by every mock in this process, per status (for tests that prove
#: a client run saw no errors).
STATUS_COUNTS = {}


def _status(opcode, status, opaque, value=b""):
    if status:
        STATUS_COUNTS[status] = STATUS_COUNTS.get(status, 0) + 1
    return _pack_header(RES_MAGIC, opcode, 0, 0, 0, status, len(value), opaque, 0) + value


_READ_SIZE = 256 * 1024


class KVConnection(asyncio.BufferedProtocol):
    """One client connection to a node's KV port.

    A buffered protocol: the transport reads into one preallocated buffer per connection
    (a plain Protocol would get a fresh 256 KiB allocation, an mmap, for every read).
    """

    def __init__(self, core, node):
        self.core = core
        self.node = node
        self.transport = None
        self._chunks = []
        self._have = 0
        self._need = 24
        self.closed = False
        # negotiated state
        self.features = ()
        self.agent = ""
        self.collections = False
        self.xerror = False
        self.tokens = False
        self.json = False
        self.tracing = False  # replies carry a server-duration frame
        self.push_configs = False  # clustermap change notifications negotiated
        self.alt_request = False  # flexible framing (alternative request magic) negotiated
        self.sync_replication = False  # durability frames negotiated
        self.user = None
        self.bucket = None
        self.sasl = None
        self._hq = None  # hiccup write queue
        self._rview = None  # read buffer (BufferedProtocol)
        self._write_paused = False

    # -- connection lifecycle --------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.node.kv_conns.add(self)
        if self.node.stalled:
            # before Python 3.11 the transport starts reading only after this
            # returns, which would undo a pause made here
            asyncio.get_running_loop().call_soon(self.apply_stall)
        tls = self.core.tls
        if tls is not None and tls.client_auth:
            from .tls import peer_user
            user = peer_user(transport.get_extra_info("ssl_object"), self.core)
            if user is not None:
                # a client certificate authenticates the connection: no SASL follows
                self.user = user
                bucket = self.core.buckets.get(user)
                if bucket is not None:
                    self.bucket = bucket
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc):
        self.closed = True
        self.node.kv_conns.discard(self)

    # A client that pipelines faster than it reads replies: stop reading (and keep the
    # requests not yet executed) until the replies drain, as a real node does, instead of
    # buffering replies without bound.
    def pause_writing(self):
        self._write_paused = True
        if not self.closed:
            self.transport.pause_reading()

    def apply_stall(self):
        """Stop or resume reading requests as the cluster's ``stall`` fault says."""
        if self.closed:
            return
        if self.node.stalled:
            self.transport.pause_reading()
        elif not self._write_paused:
            self.transport.resume_reading()

    def resume_writing(self):
        self._write_paused = False
        if self.closed:
            return
        if not self.node.stalled:
            self.transport.resume_reading()
        if self._chunks and self._have >= self._need:
            data = b"".join(self._chunks)
            self._chunks = []
            self._process(data)

    def close(self, abort=True):
        """Close the connection (abort: drop unsent data, as a crashing node would)."""
        if not self.closed:
            self.closed = True
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    # -- packet loop -----------------------------------------------------------------------

    def get_buffer(self, sizehint):
        view = self._rview
        if view is None:
            view = self._rview = memoryview(bytearray(_READ_SIZE))
        return view

    def buffer_updated(self, nbytes):
        self.data_received(self._rview[:nbytes].tobytes())

    def data_received(self, data):
        if self.closed:
            return
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need or self._write_paused:
                return
            data = b"".join(self._chunks)
            self._chunks = []
        self._process(data)

    def _process(self, data):
        n = len(data)
        outsize = 0
        pos = 0
        out = []
        handlers = HANDLERS
        core = self.core
        while n - pos >= 24:
            magic, opcode, keylen, extlen, datatype, vb, bodylen, opaque, cas = _unpack_header(data, pos)
            if magic != REQ_MAGIC:
                if magic == ALT_REQ_MAGIC:
                    framelen = keylen >> 8
                    keylen &= 0xFF
                else:
                    # Not a request: a real node drops the connection.
                    self._flush(out)
                    self.close(abort=False)
                    return
            else:
                framelen = 0
            if bodylen > MAX_PACKET:
                self._flush(out)
                self.close(abort=False)
                return
            end = pos + 24 + bodylen
            if end > n:
                break
            kstart = pos + 24 + framelen + extlen
            vstart = kstart + keylen
            pos = end
            if vstart > end:
                out.append(_status(opcode, Status.EINVAL, opaque))
                self._flush(out)
                self.close(abort=False)
                return
            durability = None
            if magic == ALT_REQ_MAGIC:
                try:
                    durability = self._frames(opcode, data[end - bodylen:end - bodylen + framelen],
                                              data[kstart:vstart])
                except FrameError as err:
                    out.append(self.refused(opcode, opaque, err.status, str(err)))
                    continue
            entry = handlers.get(opcode)
            if entry is None:
                out.append(_status(opcode, Status.UNKNOWN_COMMAND, opaque))
                continue
            fn, kind = entry
            key = data[kstart:vstart]
            if kind:
                bucket = self.bucket
                if bucket is None:
                    out.append(_status(opcode, Status.NO_BUCKET if self.user else Status.EACCESS, opaque))
                    continue
                if core.opfails and core.check_opfail(opcode, bucket):
                    out.append(_status(opcode, core.last_opfail_status, opaque))
                    continue
                if kind >= KEYED:
                    if self.collections:
                        if key and key[0] == 0:
                            key = key[1:]
                        else:
                            cid, used = leb128_decode(key)
                            if not used:
                                out.append(_status(opcode, Status.EINVAL, opaque))
                                continue
                            out.append(_status(opcode, Status.UNKNOWN_COLLECTION, opaque,
                                               self._manifest_ctx(bucket)))
                            continue
                    if not key or len(key) > MAX_KEY:
                        out.append(_status(opcode, Status.EINVAL, opaque))
                        continue
                    vbmap = bucket.owners
                    if vbmap is not None:
                        kvb = ((_crc32(key) >> 16) & 0x7FFF) % bucket.nvb
                        if kvb != vb:
                            out.append(self._nmvb(opcode, opaque))
                            continue
                        if kind == KEYED:
                            if vbmap[kvb] is not self.node:
                                out.append(self._nmvb(opcode, opaque))
                                continue
                        elif self.node not in bucket.vbmap[kvb][1:]:
                            out.append(self._nmvb(opcode, opaque))
                            continue
                    replication = bucket.replication
                    if replication is not None:
                        if replication.sync_writes and key in replication.sync_writes \
                                and opcode in BLOCKED_BY_SYNC_WRITE:
                            out.append(_status(opcode, Status.SYNC_WRITE_IN_PROGRESS, opaque))
                            continue
                        if durability is not None and replication.impossible(vb):
                            out.append(_status(opcode, Status.DURABILITY_IMPOSSIBLE, opaque))
                            continue
                    elif durability is not None:
                        out.append(_status(opcode, Status.NOT_SUPPORTED, opaque))
                        continue
            elif core.opfails and opcode not in _HANDSHAKE_OPS and core.check_opfail(opcode, self.bucket):
                out.append(_status(opcode, core.last_opfail_status, opaque))
                continue
            try:
                res = fn(self, opcode, key, data[pos - bodylen + framelen:kstart], data[vstart:end],
                         datatype, vb, opaque, cas)
            except Exception as exc:  # a bug in a handler must not kill the node
                core.log_error("KV handler 0x%02x failed: %r" % (opcode, exc))
                res = _status(opcode, Status.EINTERNAL, opaque)
            if durability is not None and res is not None and not res[6] and not res[7]:
                res = self.bucket.replication.hold(self, key, vb, durability[0], durability[1], res, opcode,
                                                   opaque)
            if res is not None:
                if core.mangles and kind >= BUCKET and key in core.mangles:  # b"": unkeyed requests
                    res, close = core.mangle_reply(key, res)
                    self._flush(out)
                    outsize = 0
                    self.transport.write(res)  # as mangled: no framing, no write faults
                    if close:
                        self.close(abort=False)
                        return
                    continue
                if res.__class__ is _Close:
                    if res.data:
                        out.append(res.data)
                    self._flush(out)
                    self.close(abort=False)
                    return
                out.append(res)
                outsize += len(res)
                if outsize > _FLUSH_SIZE:
                    self._flush(out)
                    outsize = 0
                    if self._write_paused:
                        break  # the rest waits for resume_writing
        bucket = self.bucket
        if bucket is not None and bucket.store.changed:
            bucket.replication.flush()
        if pos < n:
            tail = data[pos:]
            self._chunks = [tail]
            self._have = len(tail)
            if len(tail) >= 24:
                self._need = 24 + _U32.unpack_from(tail, 8)[0]
            else:
                self._need = 24
        if out:
            self._flush(out)

    def _flush(self, out):
        if not out or self.closed:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if self.tracing:
            data = _with_duration_frames(data)
        if self.node.write_faults:
            self._faulty_write(data)
        else:
            self.transport.write(data)

    def send(self, data):
        """Write raw bytes (used by tests and server pushes)."""
        self._flush([data])

    def push_config(self, rev):
        """Send a clustermap change notification (server request 0x01) for the new revision:
        the selected bucket's config, or the cluster config on a bucket-less connection."""
        if not self.push_configs or self.closed or self.user is None:
            return
        bucket = self.bucket
        if bucket is None:
            key, body = b"", self.core.cluster_config_bytes(self.node)
        elif bucket.is_memcached:
            return
        else:
            key, body = bucket.name.encode(), self.core.config_bytes(bucket, self.node)
        extras = _QQ.pack(_config.REV_EPOCH, rev)
        self.send(b"".join((_pack_header(SERVER_REQ_MAGIC, 0x01, len(key), len(extras), DATATYPE_JSON, 0,
                                         len(extras) + len(key) + len(body), 0, 0), extras, key, body)))

    # -- fault injection on the write path ---------------------------------------------------

    def _faulty_write(self, data):
        core = self.core
        limit = core.truncate_limit
        if limit is not None and limit >= 0:
            if len(data) > limit:
                data = data[:limit]
                self._hiccup_or_write(data)
                if core.truncate_close:
                    self.transport.close()
                    self.closed = True
                return
        self._hiccup_or_write(data)

    def _hiccup_or_write(self, data):
        # A hiccup is server latency: each reply leaves ``hiccup_ms`` after it
        # was produced (its first ``offset`` bytes at once), in order, while
        # later replies are already on their way - not stacked one delay after
        # another, so pipelined clients see the latency once per reply.
        node = self.node
        if node.hiccup_ms <= 0 and not self._hq:
            self.transport.write(data)
            return
        loop = asyncio.get_event_loop()
        if not self._hq:
            offset = min(node.hiccup_offset, len(data))
            if offset:
                self.transport.write(data[:offset])
                data = data[offset:]
            self._hq = [(loop.time() + node.hiccup_ms / 1000.0, data)]
            loop.call_at(self._hq[0][0], self._hiccup_due)
        else:
            self._hq.append((loop.time() + node.hiccup_ms / 1000.0, data))

    def _hiccup_due(self):
        if self.closed:
            self._hq = None
            return
        loop = asyncio.get_event_loop()
        now = loop.time()
        while self._hq and self._hq[0][0] <= now:
            self.transport.write(self._hq.pop(0)[1])
        if self._hq:
            loop.call_at(self._hq[0][0], self._hiccup_due)
        else:
            self._hq = None

    # -- helpers ---------------------------------------------------------------------------

    def _frames(self, opcode, frames, key):  # key: as on the wire
        """The durability requirement of a flexible-framing request, checked as a node does:
        (level, timeout_ms or None) or None; FrameError for what it refuses."""
        if not self.alt_request:
            raise FrameError("alternative request magic used without negotiating it (HELLO 0x10)")
        durability = parse_frames(frames)
        if durability is None:
            return None
        level, timeout_ms = durability
        if self.collections:
            _, used = leb128_decode(key)
            key = key[used:]
        self.core.log_durability(self.node, opcode, key, level, timeout_ms)
        if not self.sync_replication:
            raise FrameError("durability frame without negotiating synchronous replication (HELLO 0x11)")
        if opcode not in DURABLE_OPS:
            raise FrameError("opcode 0x%02x does not take a durability requirement" % opcode)
        if level not in LEVELS:
            raise FrameError("durability level %d does not exist" % level, Status.DURABILITY_INVALID_LEVEL)
        if timeout_ms == 0:
            raise FrameError("a durability timeout of 0 is invalid")
        return durability

    def refused(self, opcode, opaque, status, why):
        """A ``status`` reply with ``why`` as its error context when the client reads them (XERROR)."""
        body = json.dumps({"error": {"context": why}}).encode() if self.xerror else b""
        if status:
            STATUS_COUNTS[status] = STATUS_COUNTS.get(status, 0) + 1
        return _pack_header(RES_MAGIC, opcode, 0, 0, DATATYPE_JSON if body else 0, status,
                            len(body), opaque, 0) + body

    def status_reply(self, opcode, status, opaque):
        """A bare reply with ``status``."""
        return _status(opcode, status, opaque)

    def _nmvb(self, opcode, opaque):
        STATUS_COUNTS[Status.NOT_MY_VBUCKET] = STATUS_COUNTS.get(Status.NOT_MY_VBUCKET, 0) + 1
        body = self.core.config_bytes(self.bucket, self.node)
        return _pack_header(RES_MAGIC, opcode, 0, 0, DATATYPE_JSON, Status.NOT_MY_VBUCKET,
                            len(body), opaque, 0) + body

    def _manifest_ctx(self, bucket):
        return b'{"manifest_uid":"%x"}' % bucket.manifest_uid

    def locked_status(self, mutation):
        """The status a locked item yields, depending on what the client negotiated."""
        if self.xerror:
            return Status.LOCKED
        return Status.KEY_EEXISTS if mutation else Status.ETMPFAIL

    def mutation_extras(self, item):
        if self.tokens and self.bucket.owners is not None:
            return _QQ.pack(self.bucket.store.vbuuid(item.vb), item.seqno)
        return b""


class _Close:
    """Handler result: send ``data`` (after the replies before it), then close."""

    __slots__ = ("data",)

    def __init__(self, data=b""):
        self.data = data


_HANDSHAKE_OPS = frozenset((Op.HELLO, Op.SASL_LIST_MECHS, Op.SASL_AUTH, Op.SASL_STEP, Op.GET_ERROR_MAP,
                            Op.SELECT_BUCKET, Op.GET_CLUSTER_CONFIG, Op.NOOP, Op.VERSION, Op.QUIT,
                            Op.QUITQ))


# ---- session: HELLO, SASL, buckets, config, error map ---------------------------------------

@handler(Op.HELLO)
def _hello(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(value) % 2:
        return _status(opcode, Status.EINVAL, opaque)
    asked = struct.unpack(">%dH" % (len(value) // 2), value)
    acked = []
    for f in asked:
        if f in SUPPORTED_FEATURES and f not in acked:
            acked.append(f)
    conn.features = tuple(acked)
    conn.agent = key.decode("utf-8", "replace")
    conn.collections = Feature.COLLECTIONS in acked
    conn.xerror = Feature.XERROR in acked
    conn.tokens = Feature.MUTATION_SEQNO in acked
    conn.json = Feature.JSON in acked
    conn.tracing = Feature.TRACING in acked
    if Feature.CLUSTERMAP_CHANGE_NOTIFICATION in acked and Feature.DUPLEX not in acked:
        # pushes need a duplex connection: without it the notification cannot be acknowledged
        acked.remove(Feature.CLUSTERMAP_CHANGE_NOTIFICATION)
        conn.features = tuple(acked)
    conn.push_configs = Feature.CLUSTERMAP_CHANGE_NOTIFICATION in acked
    conn.alt_request = Feature.ALT_REQUEST in acked
    conn.sync_replication = Feature.SYNC_REPLICATION in acked
    return _res(opcode, 0, opaque, value=struct.pack(">%dH" % len(acked), *acked))


@handler(Op.SASL_LIST_MECHS)
def _list_mechs(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    return _res(opcode, 0, opaque, value=" ".join(conn.core.sasl_mechanisms).encode())


def _sasl_result(conn, opcode, opaque, fn):
    try:
        done, payload, user = fn()
    except AuthFailed:
        conn.user = None
        conn.bucket = None
        return _status(opcode, Status.AUTH_ERROR, opaque)
    if not done:
        return _res(opcode, Status.AUTH_CONTINUE, opaque, value=payload)
    conn.user = user
    conn.bucket = None
    # Legacy behaviour of a real node: a bucket-named user lands in its bucket.
    bucket = conn.core.buckets.get(user)
    if bucket is not None and conn.core.may_access(user, bucket.name):
        conn.bucket = bucket
    return _res(opcode, 0, opaque, value=payload)


@handler(Op.SASL_AUTH)
def _sasl_auth(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    mech = key.decode("ascii", "replace")
    if mech not in conn.core.sasl_mechanisms:
        return _status(opcode, Status.AUTH_ERROR, opaque)
    conn.sasl = SaslSession(conn.core.password_for, conn.core.salt_for)
    return _sasl_result(conn, opcode, opaque, lambda: conn.sasl.start(mech, value))


@handler(Op.SASL_STEP)
def _sasl_step(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if conn.sasl is None:
        return _status(opcode, Status.EINVAL, opaque)
    return _sasl_result(conn, opcode, opaque, lambda: conn.sasl.step(value))


@handler(Op.SELECT_BUCKET)
def _select_bucket(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if conn.user is None:
        return _status(opcode, Status.EACCESS, opaque)
    name = key.decode("utf-8", "replace")
    bucket = conn.core.buckets.get(name)
    if bucket is None or not conn.core.may_access(conn.user, name):
        return _status(opcode, Status.EACCESS, opaque)
    conn.bucket = bucket
    return _status(opcode, 0, opaque)


@handler(Op.GET_ERROR_MAP)
def _get_error_map(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(value) != 2:
        return _status(opcode, Status.EINVAL, opaque)
    version = struct.unpack(">H", value)[0]
    if version == 0:
        return _status(opcode, Status.EINVAL, opaque)
    return _res(opcode, 0, opaque, value=error_map(version))


@handler(Op.GET_CLUSTER_CONFIG)
def _get_cluster_config(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if conn.user is None:
        return _status(opcode, Status.EACCESS, opaque)
    bucket = conn.bucket
    if bucket is None:
        body = conn.core.cluster_config_bytes(conn.node)
    elif bucket.is_memcached:
        return _status(opcode, Status.NOT_SUPPORTED, opaque)
    else:
        body = conn.core.config_bytes(bucket, conn.node)
    return _res(opcode, 0, opaque, value=body, datatype=DATATYPE_JSON if conn.json else 0)


@handler(Op.NOOP)
def _noop(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    return _status(opcode, 0, opaque)


@handler(Op.VERSION)
def _version(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    return _res(opcode, 0, opaque, value=_config.VERSION.encode())


@handler(Op.VERBOSITY)
def _verbosity(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) != 4:
        return _status(opcode, Status.EINVAL, opaque)
    return _status(opcode, 0, opaque)


@handler(Op.QUIT, Op.QUITQ)
def _quit(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    return _Close(_status(opcode, 0, opaque) if opcode == Op.QUIT else b"")


# ---- CRUD -----------------------------------------------------------------------------------

def _get_response(conn, opcode, key, item, opaque, cas_override=None):
    value = item.value
    flags = item.flags
    dt = item.datatype if conn.json else 0
    cas = item.cas if cas_override is None else cas_override
    if opcode == Op.GETK or opcode == Op.GETKQ:
        if conn.collections:
            key = b"\x00" + key
        return b"".join((_pack_header(RES_MAGIC, opcode, len(key), 4, dt, 0, 4 + len(key) + len(value),
                                      opaque, cas), _U32.pack(flags), key, value))
    return b"".join((_pack_header(RES_MAGIC, opcode, 0, 4, dt, 0, 4 + len(value), opaque, cas),
                     _U32.pack(flags), value))


@handler(Op.GET, Op.GETQ, Op.GETK, Op.GETKQ, kind=KEYED)
def _get(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    store = conn.bucket.store
    store.stats["cmd_get"] += 1
    item = store.get(key)
    if item is None:
        store.stats["get_misses"] += 1
        if opcode == Op.GETQ or opcode == Op.GETKQ:
            return None
        if opcode == Op.GETK:
            return _res(opcode, Status.KEY_ENOENT, opaque, key=(b"\x00" + key) if conn.collections else key)
        return _status(opcode, Status.KEY_ENOENT, opaque)
    store.stats["get_hits"] += 1
    if item.locked_until and store.is_locked(item):
        return _get_response(conn, opcode, key, item, opaque, 0xFFFFFFFFFFFFFFFF)
    return _get_response(conn, opcode, key, item, opaque)


@handler(Op.GET_REPLICA, kind=REPLICA)
def _get_replica(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    replication = conn.bucket.replication
    item = replication.replica_item(conn.node, key) if replication is not None else None
    if item is None:
        return _status(opcode, Status.KEY_ENOENT, opaque)
    return _get_response(conn, opcode, key, item, opaque)


_QUIET = {Op.SETQ: Op.SET, Op.ADDQ: Op.ADD, Op.REPLACEQ: Op.REPLACE, Op.DELETEQ: Op.DELETE,
          Op.INCREMENTQ: Op.INCREMENT, Op.DECREMENTQ: Op.DECREMENT, Op.APPENDQ: Op.APPEND,
          Op.PREPENDQ: Op.PREPEND}


def _mutated(conn, opcode, opaque, status, item, value=b""):
    """The reply to a mutation: its failure status, or the new CAS with the
    mutation token and ``value`` (nothing for a quiet opcode's success)."""
    if status:
        if status == Status.LOCKED:
            status = conn.locked_status(True)
        return _status(opcode, status, opaque)
    if opcode in _QUIET:
        return None
    return _res(opcode, 0, opaque, item.cas, conn.mutation_extras(item), value=value)


_STORE_MODE = {Op.SET: 0, Op.SETQ: 0, Op.ADD: 1, Op.ADDQ: 1, Op.REPLACE: 2, Op.REPLACEQ: 2}
_JSON_START = frozenset(b'{["-0123456789tfn \t\r\n')


def _detect_json(value):
    if not value or value[0] not in _JSON_START:
        return 0
    try:
        json.loads(value)
    except ValueError:
        return 0
    return DATATYPE_JSON


def _check_datatype(conn, datatype, value):
    """Datatype to store, or -1 if the client sent one it did not negotiate."""
    if datatype:
        if datatype & ~DATATYPE_JSON or not conn.json:
            return -1
        return datatype
    if not conn.json:
        # A real node tags JSON itself for clients that cannot say so.
        return _detect_json(value)
    return 0


@handler(Op.SET, Op.SETQ, Op.ADD, Op.ADDQ, Op.REPLACE, Op.REPLACEQ, kind=KEYED)
def _store(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) != 8:
        return _status(opcode, Status.EINVAL, opaque)
    if len(value) > MAX_ITEM_SIZE:
        return _status(opcode, Status.E2BIG, opaque)
    dt = _check_datatype(conn, datatype, value)
    if dt < 0:
        return _status(opcode, Status.EINVAL, opaque)
    mode = _STORE_MODE[opcode]
    if mode == 1 and cas:
        return _status(opcode, Status.EINVAL, opaque)
    flags, exp = _EXP.unpack(extras)
    status, item = conn.bucket.store.store(mode, key, vb, value, flags, exp, cas, dt)
    return _mutated(conn, opcode, opaque, status, item)


@handler(Op.DELETE, Op.DELETEQ, kind=KEYED)
def _delete(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if extras or value:
        return _status(opcode, Status.EINVAL, opaque)
    status, item = conn.bucket.store.delete(key, cas)
    return _mutated(conn, opcode, opaque, status, item)


@handler(Op.APPEND, Op.APPENDQ, Op.PREPEND, Op.PREPENDQ, kind=KEYED)
def _concat(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if extras:
        return _status(opcode, Status.EINVAL, opaque)
    if _check_datatype(conn, datatype, b"") < 0:
        return _status(opcode, Status.EINVAL, opaque)
    prepend = opcode in (Op.PREPEND, Op.PREPENDQ)
    status, item = conn.bucket.store.concat(key, value, cas, prepend)
    return _mutated(conn, opcode, opaque, status, item)


# ---- arithmetic -----------------------------------------------------------------------------

@handler(Op.INCREMENT, Op.INCREMENTQ, Op.DECREMENT, Op.DECREMENTQ, kind=KEYED)
def _arithmetic(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) != 20 or value:
        return _status(opcode, Status.EINVAL, opaque)
    delta, initial, exp = _ARITH.unpack(extras)
    incr = opcode in (Op.INCREMENT, Op.INCREMENTQ)
    status, item, current = conn.bucket.store.arithmetic(key, vb, delta, initial, exp, cas, incr)
    return _mutated(conn, opcode, opaque, status, item, b"" if status else _U64.pack(current))


# ---- expiry and locking ---------------------------------------------------------------------

@handler(Op.TOUCH, Op.GAT, Op.GATQ, kind=KEYED)
def _touch(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) != 4 or value:
        return _status(opcode, Status.EINVAL, opaque)
    status, item = conn.bucket.store.touch(key, _U32.unpack(extras)[0])
    if status:
        if status == Status.LOCKED:
            status = conn.locked_status(False)
        if opcode == Op.GATQ and status == Status.KEY_ENOENT:
            return None
        return _status(opcode, status, opaque)
    if opcode == Op.TOUCH:
        return _pack_header(RES_MAGIC, opcode, 0, 0, 0, 0, 0, opaque, item.cas)
    return _get_response(conn, opcode, key, item, opaque)


@handler(Op.GET_LOCKED, kind=KEYED)
def _get_locked(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) not in (0, 4):
        return _status(opcode, Status.EINVAL, opaque)
    lock_time = _U32.unpack(extras)[0] if extras else 0
    status, item = conn.bucket.store.lock(key, lock_time)
    if status:
        if status == Status.LOCKED:
            status = conn.locked_status(False)
        return _status(opcode, status, opaque)
    return _get_response(conn, opcode, key, item, opaque)


@handler(Op.UNLOCK, kind=KEYED)
def _unlock(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    status = conn.bucket.store.unlock(key, cas)
    if status == Status.NOT_LOCKED and not conn.xerror:
        status = Status.ETMPFAIL
    elif status == Status.LOCKED:
        status = conn.locked_status(False)
    return _status(opcode, status, opaque)


@handler(Op.EVICT, kind=KEYED)
def _evict(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    status = conn.bucket.store.evict(key)
    return _res(opcode, status, opaque, value=b"Ejected." if not status else b"")


# ---- metadata and observe -------------------------------------------------------------------

@handler(Op.GET_META, kind=KEYED)
def _get_meta(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) > 1:
        return _status(opcode, Status.EINVAL, opaque)
    item = conn.bucket.store.meta(key)
    if item is None:
        return _status(opcode, Status.KEY_ENOENT, opaque)
    args = (1 if item.deleted else 0, item.flags, int(item.exp), item.seqno)
    if extras == b"\x02":
        ext = _META_DT.pack(*(args + (item.datatype if conn.json else 0,)))
    else:
        ext = _META.pack(*args)
    return _res(opcode, 0, opaque, item.cas, ext)


@handler(Op.OBSERVE_SEQNO, kind=BUCKET)
def _observe_seqno(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    bucket = conn.bucket
    if len(value) != 8 or bucket.owners is None:
        return _status(opcode, Status.EINVAL if bucket.owners is not None else Status.NOT_SUPPORTED, opaque)
    if vb >= bucket.nvb or conn.node not in bucket.vbmap[vb]:
        return conn._nmvb(opcode, opaque)
    store = bucket.store
    uuid = _U64.unpack(value)[0]
    current, persisted = bucket.replication.seqnos(conn.node, vb)  # this node's copy
    log = store.failover_logs[vb]
    if uuid == log[0][0]:
        body = struct.pack(">BHQQQ", 0, vb, uuid, persisted, current)
    else:
        old = next((entry for entry in log if entry[0] == uuid), None)
        if old is None:
            body = struct.pack(">BHQQQ", 0, vb, log[0][0], persisted, current)
        else:
            # the branch the client knew ended where the next newer entry started
            idx = log.index(old)
            body = struct.pack(">BHQQQQQ", 1, vb, log[0][0], persisted, current, uuid, log[idx - 1][1])
    return _res(opcode, 0, opaque, value=body)


@handler(Op.OBSERVE, kind=BUCKET)
def _observe(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    bucket = conn.bucket
    store = bucket.store
    out = []
    pos = 0
    n = len(value)
    while pos < n:
        if pos + 4 > n:
            return _status(opcode, Status.EINVAL, opaque)
        kvb, klen = struct.unpack_from(">HH", value, pos)
        pos += 4
        raw = value[pos:pos + klen]
        if len(raw) != klen:
            return _status(opcode, Status.EINVAL, opaque)
        pos += klen
        k = raw
        if conn.collections and k[:1] == b"\x00":
            k = k[1:]
        if bucket.owners is None:
            item, persisted = store.meta(k), True
        elif kvb >= bucket.nvb or conn.node not in bucket.vbmap[kvb]:
            return conn._nmvb(opcode, opaque)
        else:  # this node's copy, active or replica
            item, persisted = bucket.replication.observed(conn.node, kvb, k)
        if item is None:
            state, icas = 0x80, 0
        elif item.deleted:  # a persisted deletion is "not found" (with the tombstone's CAS)
            state, icas = 0x80 if persisted else 0x81, item.cas
        else:
            state, icas = 0x01 if persisted else 0x00, item.cas
        out.append(struct.pack(">HH", kvb, klen) + raw + struct.pack(">BQ", state, icas))
    return _res(opcode, 0, opaque, value=b"".join(out))


@handler(Op.GET_RANDOM_KEY, kind=BUCKET)
def _get_random_key(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    store = conn.bucket.store
    now = store.clock.now()
    keys = [k for k, i in store.items.items() if not i.exp or i.exp > now]
    if not keys:
        return _status(opcode, Status.KEY_ENOENT, opaque)
    k = keys[int.from_bytes(os.urandom(4), "big") % len(keys)]
    return _get_response(conn, Op.GETK, k, store.items[k], opaque).replace(
        bytes([RES_MAGIC, Op.GETK]), bytes([RES_MAGIC, opcode]), 1)


@handler(Op.FLUSH, Op.FLUSHQ, kind=BUCKET)
def _flush(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if not conn.bucket.is_memcached:
        return _status(opcode, Status.NOT_SUPPORTED, opaque)
    conn.bucket.store.flush()
    return None if opcode == Op.FLUSHQ else _status(opcode, 0, opaque)


# ---- stats ----------------------------------------------------------------------------------

@handler(Op.STAT)
def _stat(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if conn.user is None:
        return _status(opcode, Status.EACCESS, opaque)
    group = key.decode("utf-8", "replace")
    try:
        stats = conn.core.stats(conn, group)
    except KeyError:
        return _status(opcode, Status.KEY_ENOENT, opaque)
    except ValueError:
        return _status(opcode, Status.EINVAL, opaque)
    if stats is None:
        return _status(opcode, Status.NO_BUCKET, opaque)
    out = [_res(opcode, 0, opaque, key=str(k).encode(), value=str(v).encode()) for k, v in stats]
    out.append(_status(opcode, 0, opaque))
    return b"".join(out)


# ---- collections ----------------------------------------------------------------------------

@handler(Op.GET_COLLECTIONS_MANIFEST, kind=BUCKET)
def _get_manifest(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if conn.bucket.is_memcached:
        return _status(opcode, Status.NOT_SUPPORTED, opaque)
    body = _config.dumps(_config.manifest(conn.bucket))
    return _res(opcode, 0, opaque, value=body, datatype=DATATYPE_JSON if conn.json else 0)


@handler(Op.GET_COLLECTION_ID, kind=BUCKET)
def _get_collection_id(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    bucket = conn.bucket
    if bucket.is_memcached:
        return _status(opcode, Status.NOT_SUPPORTED, opaque)
    path = (value or key).decode("utf-8", "replace")
    scope, _, collection = path.partition(".")
    scope = scope or "_default"
    collection = collection or "_default"
    if scope != "_default":
        return _status(opcode, Status.UNKNOWN_SCOPE, opaque, conn._manifest_ctx(bucket))
    if collection != "_default":
        return _status(opcode, Status.UNKNOWN_COLLECTION, opaque, conn._manifest_ctx(bucket))
    return _res(opcode, 0, opaque, extras=struct.pack(">QI", bucket.manifest_uid, 0))


__all__ = ["KVConnection", "HANDLERS", "handler", "SUPPORTED_FEATURES", "MECHANISMS"]
