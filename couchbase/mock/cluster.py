"""The mock cluster: nodes, buckets, users, vbucket maps, topology changes and faults.

``ClusterCore`` is the state that lives on the event-loop thread, and its control commands
(``@command`` coroutines, see ``commands``); ``mock_cluster.MockCluster`` runs that loop in a
daemon thread (or lets ``python -m couchbase.mock`` run it) and exposes the commands to the
test thread.
"""

import asyncio
import os
import re
import socket
import struct
import sys
import time
import uuid as _uuid
from collections.abc import Sequence
from typing import Any, Optional, Union

from . import config as _config
from . import subdoc  # noqa: F401  (registers the sub-document command handlers)
from .commands import command, describe
from .errors import BucketError
from .kv import KVConnection
from .protocol import opcode_from_name
from .replication import Replication
from .rest import serve_http
from .sasl import MECHANISMS
from .store import BucketStore, CasSource, MockClock

DEFAULT_VBUCKETS = 1024
MAX_NODES = 16
BUCKET_TYPES = ("couchbase", "memcached")
#: HTTP names of a node-index parameter (CouchbaseMock's among them).
NODE_ALIASES = ("idx", "index", "node")


class Node:
    """One mock node: a KV port and a management (HTTP) port; with TLS, a TLS KV port and an
    HTTPS management port beside them (``tls_only``: the plain ones closed)."""

    def __init__(self, core, index, host, kv_port=0, mgmt_port=0, kv_tls_port=0, mgmt_tls_port=0):
        self.core = core
        self.index = index
        self.host = host
        self.kv_port = kv_port
        self.mgmt_port = mgmt_port
        self.kv_tls_port = kv_tls_port
        self.mgmt_tls_port = mgmt_tls_port
        self.tls_context = None  # made at first start (its certificate names the node)
        self.tls_fault = None  # a key of tls.FAULTS: the certificate served instead
        self.failed = False
        self.up = False
        # faults of this node alone (``stall``, ``hiccup`` with a node index)
        self.stalled = False
        self.hiccup_ms = 0
        self.hiccup_offset = 0
        self.write_faults = False  # a hiccup here or a cluster-wide truncate: the slow write path
        self.uuid = _uuid.uuid4().hex
        self.kv_server = None
        self.http_server = None
        self.tls_servers = []  # the TLS KV and HTTPS servers; with tls_only, the plain ports' sockets
        self.kv_conns = set()
        self.http_conns = set()

    def __repr__(self):
        return "<Node %d kv=%d mgmt=%d%s>" % (self.index, self.kv_port, self.mgmt_port,
                                               " failed" if self.failed else "")

    async def start(self):
        """Listen on this node's ports (ephemeral ones are fixed at first start)."""
        try:
            if self.core.tls_only:
                # bound but not listening: a plain connection is refused, the port stays ours
                self.tls_servers.append(_closed_port(self.host, self.kv_port))
                self.kv_port = self.tls_servers[-1].getsockname()[1]
                self.tls_servers.append(_closed_port(self.host, self.mgmt_port))
                self.mgmt_port = self.tls_servers[-1].getsockname()[1]
            else:
                await self._listen_plain()
            if self.core.tls is not None:
                await self._listen_tls()
        except BaseException:
            self._close_servers()
            raise
        self.up = True

    async def _listen_plain(self):
        loop = asyncio.get_running_loop()
        self.kv_server = await loop.create_server(lambda: KVConnection(self.core, self), self.host,
                                                  self.kv_port, reuse_address=True)
        self.kv_port = self.kv_server.sockets[0].getsockname()[1]
        self.http_server = await serve_http(self.core, self, self.mgmt_port)
        self.mgmt_port = self.http_server.sockets[0].getsockname()[1]

    async def _listen_tls(self):
        if self.tls_context is None:
            self.tls_context = self.core.tls.node_context(self)
        loop = asyncio.get_running_loop()
        kv = await loop.create_server(lambda: KVConnection(self.core, self), self.host, self.kv_tls_port,
                                      reuse_address=True, ssl=self.tls_context)
        self.tls_servers.append(kv)
        self.kv_tls_port = kv.sockets[0].getsockname()[1]
        https = await serve_http(self.core, self, self.mgmt_tls_port, self.tls_context)
        self.tls_servers.append(https)
        self.mgmt_tls_port = https.sockets[0].getsockname()[1]

    def _close_servers(self):
        servers = [s for s in (self.kv_server, self.http_server) if s is not None] + self.tls_servers
        self.kv_server = self.http_server = None
        self.tls_servers = []
        for server in servers:
            server.close()
        return [s for s in servers if isinstance(s, asyncio.AbstractServer)]

    def drop_connections(self):
        """Abort every client connection to this node (KV and HTTP)."""
        for conn in list(self.kv_conns):
            conn.close()
        self.kv_conns.clear()
        for conn in list(self.http_conns):
            conn.abort()
        self.http_conns.clear()

    async def stop(self):
        """Stop listening and drop every connection, like a crashed node."""
        self.up = False
        servers = self._close_servers()
        self.drop_connections()
        for server in servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass


def _closed_port(host, port):
    """A TCP socket bound to (host, port) that does not listen: connections to it are refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class Bucket:
    """A bucket: its documents and, for couchbase buckets, the vbucket map."""

    def __init__(self, core, name, password="", bucket_type="couchbase", replicas=1, nvb=DEFAULT_VBUCKETS,
                 ram_quota_mb=100, flush_enabled=True):
        self.name = name
        self.password = password
        self.bucket_type = bucket_type
        self.is_memcached = bucket_type == "memcached"
        self.replicas = 0 if self.is_memcached else replicas
        self.nvb = nvb
        self.ram_quota_mb = ram_quota_mb
        self.flush_enabled = flush_enabled
        self.uuid = _uuid.uuid4().hex
        self.manifest_uid = 0
        self.store = BucketStore(nvb, core.clock, core.cas, replicated=not self.is_memcached)
        self.vbmap = None   # rows [active, replica...] of Node or None
        self.owners = None  # active Node per vbucket (the KV fast path looks only at this)
        self.replication = None if self.is_memcached else Replication(core, self)

    def assign(self, nodes):
        """Spread vbuckets evenly over ``nodes`` (a rebalance)."""
        if self.is_memcached:
            return
        k = len(nodes)
        rows = []
        for vb in range(self.nvb):
            row = [nodes[vb % k] if k else None]
            for r in range(1, self.replicas + 1):
                row.append(nodes[(vb + r) % k] if r < k else None)
            rows.append(row)
        self.vbmap = rows
        self.owners = [row[0] for row in rows]
        self.replication.rebuild()  # a rebalance moves the data with the vbuckets

    def fail_node(self, node, survivors):
        """Promote replicas of the vbuckets ``node`` was active for; drop its replicas.

        A promoted replica's copy becomes the vbucket's data (what it had not received is
        lost); a vbucket without a replica moves to a survivor with its data.
        """
        if self.is_memcached or self.vbmap is None:
            return
        self.replication.flush()
        spare = 0
        promotions = {}
        moved = set()
        for vb, row in enumerate(self.vbmap):
            for r in range(1, len(row)):
                if row[r] is node:
                    row[r] = None
            if row[0] is node:
                promoted = next((n for n in row[1:] if n is not None), None)
                if promoted is None:
                    promoted = survivors[spare % len(survivors)] if survivors else None
                    spare += 1
                    moved.add(vb)
                    self.store.new_failover_entry(vb)
                else:
                    row[row.index(promoted)] = None
                    promotions[vb] = promoted
                row[0] = promoted
        self.owners = [row[0] for row in self.vbmap]
        self.replication.forget(node)
        self.replication.promote(promotions)
        self.replication.rebuild(moved)


class User:
    """An RBAC user: admin, or access to a set of buckets ("*" = all)."""

    def __init__(self, name, password, roles=("admin",)):
        self.name = name
        self.password = password
        self.roles = list(roles)
        self.admin = False
        self.buckets = set()
        for role in self.roles:
            m = re.match(r"^([a-z_]+)(?:\[([^\]]*)\])?$", role)
            if not m:
                raise ValueError("bad role %r" % role)
            if m.group(1) in ("admin", "cluster_admin", "ro_admin") and not m.group(2):
                self.admin = True
            elif m.group(2):
                self.buckets.add(m.group(2).split(":")[0])

    def to_json(self):
        return {"id": self.name, "domain": "local", "name": self.name,
                "roles": [_role_json(r) for r in self.roles]}


def _role_json(role):
    m = re.match(r"^([a-z_]+)(?:\[([^\]]*)\])?$", role)
    out = {"role": m.group(1)}
    if m.group(2):
        out["bucket_name"] = m.group(2)
    return out


class OpFail:
    __slots__ = ("status", "count", "opcode", "bucket")

    def __init__(self, status, count, opcode, bucket):
        self.status = status
        self.count = count
        self.opcode = opcode
        self.bucket = bucket


#: The reply header fields a mangle rule may rewrite: name -> (offset, format). With the
#: alternative magic 0x18, keylen's high byte is the framing extras' length.
MANGLE_FIELDS = {"magic": (0, "B"), "opcode": (1, "B"), "keylen": (2, ">H"), "extlen": (4, "B"),
                 "datatype": (5, "B"), "status": (6, ">H"), "bodylen": (8, ">I"),
                 "opaque": (12, ">I"), "cas": (16, ">Q")}


class Mangle:
    """A rule that rewrites the replies to one key's data requests."""

    __slots__ = ("fields", "body", "close", "count")

    def __init__(self, fields, body, close, count):
        for name, value in fields.items():
            if name not in MANGLE_FIELDS:
                raise ValueError("no reply header field %r (fields: %s)" % (name, ", ".join(MANGLE_FIELDS)))
            try:
                struct.pack(MANGLE_FIELDS[name][1], value)
            except struct.error:
                raise ValueError("%s=%r does not fit its field" % (name, value)) from None
        self.fields = fields
        self.body = body
        self.close = close
        self.count = count

    def apply(self, reply):
        """The rewritten reply, and whether the connection closes after it (also when the
        header's body length no longer matches the body sent: the stream is out of step)."""
        header = bytearray(reply[:24])
        body = reply[24:] if self.body is None else self.body
        struct.pack_into(">I", header, 8, len(body))
        for name, value in self.fields.items():
            offset, fmt = MANGLE_FIELDS[name]
            struct.pack_into(fmt, header, offset, value)
        claimed = struct.unpack_from(">I", header, 8)[0]
        return bytes(header) + body, self.close or claimed != len(body)


def _validate_name(name):
    if not name:
        return "Bucket name needs to be specified"
    if len(name) > 100:
        return "Bucket name cannot exceed 100 characters"
    if name.startswith("."):
        return "Bucket name cannot start with dot."
    if not re.match(r"^[A-Za-z0-9_.%-]+$", name):
        return ("Bucket name can only contain characters in range A-Z, a-z, 0-9 as well as "
                "underscore, period, dash & percent. Consult the documentation.")
    return None


class ClusterCore:
    """Cluster state; every method runs on the event-loop thread."""

    def __init__(self, nodes=1, buckets=None, username="Administrator", password="password",
                 host="127.0.0.1", port=0, vbuckets=DEFAULT_VBUCKETS, replicas=1, tls=False,
                 tls_only=False, tls_client_auth=False):
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError("nodes must be between 1 and %d" % MAX_NODES)
        if vbuckets < 1 or vbuckets > 0x7FFF:
            raise ValueError("vbuckets must be between 1 and 32767")
        self.host = host
        self.base_port = port
        # TLS (tls.py): asking for TLS-only or client certificates asks for TLS
        self.tls_only = bool(tls_only)
        self.tls = None
        if tls or tls_only or tls_client_auth:
            from .tls import ClusterTLS  # imports trustme: only a TLS cluster needs it
            self.tls = ClusterTLS(client_auth=tls_client_auth)
        self.nvb = vbuckets
        self.default_replicas = replicas
        self.uuid = _uuid.uuid4().hex
        self.rev = 1
        self.balanced = True
        self.clock = MockClock()
        self.cas = CasSource()
        self.started_at = time.time()
        self.sasl_mechanisms = list(MECHANISMS)
        self.users = {username: User(username, password)}
        self.admin_user = username
        self._salts = {}
        self.nodes = [Node(self, i, host, *self._ports_for(i)) for i in range(nodes)]
        self.buckets = {}
        for name, pw in _normalize_buckets(buckets).items():
            self._add_bucket(Bucket(self, name, pw, nvb=vbuckets, replicas=replicas))
        self._config_cache = {}
        self.streams = set()
        # faults
        self.opfails = []
        self.last_opfail_status = 0
        self.mangles = {}
        self.truncate_limit = None
        self.truncate_close = True
        self.errors = []
        # replication (``replication_delay``) and the durability frames received
        self.replication_lag_ms = 0
        self.persist_ms = 0
        self.durability_log = []

    def _ports_for(self, index):
        """(kv, mgmt, kv TLS, mgmt TLS) ports of node ``index``: mgmt P+2i, KV P+2i+1 and,
        after every node's plain ones, mgmt TLS P+2*MAX_NODES+2i and KV TLS one above."""
        if not self.base_port:
            return 0, 0, 0, 0
        tls = self.base_port + 2 * MAX_NODES + 2 * index
        return self.base_port + 2 * index + 1, self.base_port + 2 * index, tls + 1, tls

    def _add_bucket(self, bucket):
        self.buckets[bucket.name] = bucket
        bucket.assign(self.config_nodes())

    def log_error(self, message):
        self.errors.append(message)
        del self.errors[:-100]
        print("couchbase.mock: " + message, file=sys.stderr)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self):
        try:
            for node in self.nodes:
                await node.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self):
        for stream in list(self.streams):
            stream.close()
        self.streams.clear()
        for node in self.nodes:
            await node.stop()

    # -- users and access -------------------------------------------------------------------

    def password_for(self, user):
        """Password of an RBAC user, or of the bucket named ``user`` (classic auth)."""
        u = self.users.get(user)
        if u is not None:
            return u.password
        bucket = self.buckets.get(user)
        if bucket is not None:
            return bucket.password
        return None

    def salt_for(self, user):
        salt = self._salts.get(user)
        if salt is None:
            salt = self._salts[user] = os.urandom(16)
        return salt

    def check_password(self, user, password):
        """Return True if ``user``/``password`` is an RBAC user or a bucket's credentials."""
        u = self.users.get(user)
        if u is not None and u.password == password:
            return True
        bucket = self.buckets.get(user)
        return bucket is not None and bucket.password == password

    def is_admin(self, user):
        u = self.users.get(user)
        return u is not None and u.admin

    def may_access(self, user, bucket_name):
        u = self.users.get(user)
        if u is not None:
            return u.admin or bucket_name in u.buckets or "*" in u.buckets
        return user == bucket_name

    # -- configuration ----------------------------------------------------------------------

    def config_nodes(self):
        """Nodes in the cluster map, in config order."""
        return [n for n in self.nodes if not n.failed]

    def config_bytes(self, bucket, node, host="$HOST"):
        key = (bucket.name, node.index, host)
        data = self._config_cache.get(key)
        if data is None:
            data = _config.dumps(_config.bucket_config(self, bucket, node, host))
            self._config_cache[key] = data
        return data

    def cluster_config_bytes(self, node, host="$HOST"):
        key = (None, node.index, host)
        data = self._config_cache.get(key)
        if data is None:
            data = _config.dumps(_config.cluster_config(self, node, host))
            self._config_cache[key] = data
        return data

    def bump(self):
        """A topology change: new revision, pushed to every config stream."""
        self.rev += 1
        self._config_cache.clear()
        for stream in list(self.streams):
            stream.push()
        for node in self.nodes:
            for conn in list(node.kv_conns):
                if conn.push_configs:
                    conn.push_config(self.rev)

    # -- faults -----------------------------------------------------------------------------

    def _update_write_faults(self):
        truncating = self.truncate_limit is not None and self.truncate_limit >= 0
        for node in self.nodes:
            node.write_faults = node.hiccup_ms > 0 or truncating

    def _nodes_or_all(self, node_index):
        return self.nodes if node_index is None else [self._node(node_index)]

    def log_durability(self, node, opcode, key, level, timeout_ms):
        """Record a durability frame received (``durability_frames`` returns them)."""
        self.durability_log.append({"node": node.index, "opcode": opcode,
                                    "key": key.decode("utf-8", "replace"), "level": level,
                                    "timeout_ms": timeout_ms})
        del self.durability_log[:-1000]

    def check_opfail(self, opcode, bucket):
        """Return True (and set last_opfail_status) if this request must fail."""
        for rule in self.opfails:
            if rule.opcode is not None and rule.opcode != opcode:
                continue
            if rule.bucket is not None and (bucket is None or bucket.name != rule.bucket):
                continue
            if rule.count > 0:
                rule.count -= 1
                if rule.count == 0:
                    self.opfails.remove(rule)
            self.last_opfail_status = rule.status
            return True
        return False

    def mangle_reply(self, key, reply):
        """(reply, close): ``reply`` rewritten by the mangle rule for ``key``, if any."""
        rule = self.mangles.get(key)
        if rule is None:
            return reply, False
        if rule.count > 0:
            rule.count -= 1
            if rule.count == 0:
                del self.mangles[key]
        return rule.apply(reply)

    # -- control commands (coroutines so that node start/stop can be awaited) --------------------
    # Each is defined here once; commands.py makes the HTTP route, /mock/help, --help, the docs'
    # list and the MockCluster method from it. The docstring's first line is its summary.

    def _node(self, index):
        index = int(index)
        if not 0 <= index < len(self.nodes):
            raise IndexError("no node %d (cluster has %d)" % (index, len(self.nodes)))
        return self.nodes[index]

    @command(node_index=NODE_ALIASES)
    async def failover(self, node_index: int) -> "dict[str, Any]":
        """Fail over a node: its vbuckets go to replicas (or survivors), it stops listening.

        The new map is published first (the config revision is bumped and pushed), then the node
        drops its connections, as a cluster does. Returns ``info()``.
        """
        node = self._node(node_index)
        if node.failed:
            return self.public_info()
        survivors = [n for n in self.config_nodes() if n is not node]
        if not survivors:
            raise ValueError("cannot fail over the last node")
        node.failed = True
        for bucket in self.buckets.values():
            bucket.fail_node(node, survivors)
        self.balanced = False
        # Publish the new map first, then take the node down, as a cluster does:
        # clients learn where its vbuckets went before its connections drop.
        self.bump()
        await node.stop()
        return self.public_info()

    @command("respawn", node_index=NODE_ALIASES)
    async def restart(self, node_index: int) -> "dict[str, Any]":
        """Restart a node: drop its connections and listen again on the same ports.

        A failed-over node rejoins the cluster (with a rebalance). Bumps the revision; returns
        ``info()``.
        """
        node = self._node(node_index)
        await node.stop()
        await node.start()
        if node.failed:
            node.failed = False
            self._rebalance()
        self.bump()
        return self.public_info()

    @command("addnode")
    async def add_node(self, rebalance: bool = True) -> "dict[str, Any]":
        """Add a node on new ports; with ``rebalance`` vbuckets are spread over it.

        Bumps the revision; returns ``info()``.
        """
        if len(self.nodes) >= MAX_NODES:
            raise ValueError("a mock cluster has at most %d nodes" % MAX_NODES)
        node = Node(self, len(self.nodes), self.host, *self._ports_for(len(self.nodes)))
        await node.start()
        self.nodes.append(node)
        self._update_write_faults()
        if rebalance:
            self._rebalance()
        else:
            self.balanced = False
        self.bump()
        return self.public_info()

    def _rebalance(self):
        nodes = self.config_nodes()
        for bucket in self.buckets.values():
            bucket.assign(nodes)
        self.balanced = True

    @command()
    async def rebalance(self) -> "dict[str, Any]":
        """Spread every bucket's vbuckets evenly over the live nodes; bumps the revision."""
        self._rebalance()
        self.bump()
        return self.public_info()

    @command("dropconnections", node_index=NODE_ALIASES)
    async def drop_connections(self, node_index: Optional[int] = None) -> "dict[str, Any]":
        """Abort every client connection (KV and HTTP streams), of one node or (None) all."""
        nodes = self.nodes if node_index is None else [self._node(node_index)]
        for node in nodes:
            node.drop_connections()
        for stream in list(self.streams):
            if stream.node in nodes:
                stream.close()
        return {}

    @command(msecs=("ms",), node_index=NODE_ALIASES)
    async def hiccup(self, msecs: int, offset: int = 0, node_index: Optional[int] = None) -> "dict[str, Any]":
        """Delay every KV reply by ``msecs`` ms after its first ``offset`` bytes; 0 turns it off.

        Server latency: pipelined replies are each delayed once, not one after another. Of one
        node, or (None) of every node.
        """
        nodes = self._nodes_or_all(node_index)
        for node in nodes:
            node.hiccup_ms = max(0, int(msecs))
            node.hiccup_offset = max(0, int(offset))
        self._update_write_faults()
        return {"msecs": max(0, int(msecs)), "offset": max(0, int(offset)), "nodes": [n.index for n in nodes]}

    @command(node_index=NODE_ALIASES)
    async def stall(self, on: bool = True, node_index: Optional[int] = None) -> "dict[str, Any]":
        """Stop reading KV requests (a hung node) until called with ``on=False``.

        Requests fill the socket buffers and nothing is answered; replication to it waits too
        (durable writes that need it wait). One node, or (None) every node; the others answer
        as before.
        """
        nodes = self._nodes_or_all(node_index)
        replications = [b.replication for b in self.buckets.values() if b.replication is not None]
        if on:
            for replication in replications:
                replication.freeze(nodes)
        for node in nodes:
            node.stalled = bool(on)
            for conn in list(node.kv_conns):
                conn.apply_stall()
            if not on:
                for replication in replications:
                    replication.resume(node)
        return {"stalled": bool(on), "nodes": [n.index for n in nodes]}

    @command(lag_ms=("lag",), persist_ms=("persist",))
    async def replication_delay(self, lag_ms: int = 0, persist_ms: int = 0) -> "dict[str, Any]":
        """Deliver mutations to replicas ``lag_ms`` ms late; each node persists ``persist_ms`` later.

        0 and 0 (the default): replicas and disks have every mutation before its reply leaves.
        A failover promotes a replica with what it received; durable writes wait for their
        level (``durability_frames`` shows what clients asked).
        """
        lag_ms = max(0, int(lag_ms))
        if lag_ms and not self.replication_lag_ms:
            for bucket in self.buckets.values():
                if bucket.replication is not None:
                    bucket.replication.freeze()
        self.replication_lag_ms = lag_ms
        self.persist_ms = max(0, int(persist_ms))
        return {"lag_ms": self.replication_lag_ms, "persist_ms": self.persist_ms}

    @command()
    async def durability_frames(self, clear: bool = False) -> "dict[str, Any]":
        """The durability frames the nodes received (node, opcode, key, level, timeout_ms), oldest first.

        ``timeout_ms`` is None when the frame had none. ``clear`` empties the record after
        returning it. The last 1000 are kept.
        """
        frames = list(self.durability_log)
        if clear:
            self.durability_log.clear()
        return {"frames": frames}

    @command()
    async def truncate(self, limit: Optional[int], close: bool = True) -> "dict[str, Any]":
        """Cut every KV reply batch to ``limit`` bytes, then close the connection if ``close``.

        None or a negative limit turns it off.
        """
        self.truncate_limit = None if limit is None or int(limit) < 0 else int(limit)
        self.truncate_close = bool(close)
        self._update_write_faults()
        return {"limit": -1 if self.truncate_limit is None else self.truncate_limit}

    @command(status=("code",), opcode=("operation", "op"))
    async def opfail(self, status: int, count: int, opcode: Optional[Union[str, int]] = None,
                     bucket: Optional[str] = None) -> "dict[str, Any]":
        """Answer the next ``count`` data requests with ``status`` instead of executing them.

        ``count`` < 0: all of them; 0 removes the rule. ``opcode`` (a number or a name such as
        "GET"; None: any data operation) and ``bucket`` (None: any) narrow the rule.
        """
        status = int(status, 0) if isinstance(status, str) else int(status)
        count = int(count)
        op = None if opcode in (None, "", "*") else opcode_from_name(opcode)
        self.opfails = [r for r in self.opfails if not (r.opcode == op and r.bucket == bucket)]
        if count != 0:
            self.opfails.append(OpFail(status, count, op, bucket))
        return {"rules": len(self.opfails)}

    @command()
    async def mangle(self, key: Union[str, bytes], count: int = -1, body: Optional[bytes] = None,
                     close: bool = False, *, magic: Optional[int] = None, opcode: Optional[int] = None,
                     keylen: Optional[int] = None, extlen: Optional[int] = None,
                     datatype: Optional[int] = None, status: Optional[int] = None,
                     bodylen: Optional[int] = None, opaque: Optional[int] = None,
                     cas: Optional[int] = None) -> "dict[str, Any]":
        """Rewrite the next ``count`` replies to data requests for ``key``, as a hostile node would.

        ``key`` "" stands for the bucket's requests that carry no key (OBSERVE_SEQNO, OBSERVE).

        ``count`` < 0: all of them; 0 removes the rule. Each header field given (``magic`` ...
        ``cas``, the names of ``MANGLE_FIELDS``) is set to its value; ``body`` (bytes; hex over
        HTTP) replaces the body, whose length the header follows unless ``bodylen`` is given.
        The connection closes after the reply if ``close``, or when the header's body length
        does not match the body sent. A field that does not exist or does not fit is a
        ValueError and leaves the rule in place.
        """
        given = locals()  # the keyword-only parameters are MANGLE_FIELDS, by name (a test checks)
        fields = {name: int(given[name]) for name in MANGLE_FIELDS if given[name] is not None}
        raw = key.encode() if isinstance(key, str) else bytes(key)
        rule = Mangle(fields, None if body is None else bytes(body), bool(close), int(count))
        if rule.count == 0:
            self.mangles.pop(raw, None)
        else:
            self.mangles[raw] = rule
        return {"rules": len(self.mangles)}

    def _require_tls(self, what):
        if self.tls is None:
            raise ValueError("%s needs a TLS cluster (start the mock with tls=True, or --tls)" % what)
        return self.tls

    @command(node_index=NODE_ALIASES)
    async def tls_fault(self, fault: Optional[str], node_index: Optional[int] = None) -> "dict[str, Any]":
        """Serve a bad certificate on the TLS ports from the next handshake on; None ends the fault.

        ``fault`` is "wrong_host" (from the cluster's CA for another host name), "unknown_ca"
        (for the node's host from another CA) or "expired" (from the cluster's CA, expired).
        Of one node, or (None) of every node. Open connections keep their certificate.
        """
        from .tls import FAULTS
        self._require_tls("tls_fault")
        if fault in ("", "none", "None"):
            fault = None
        if fault is not None and fault not in FAULTS:
            raise ValueError("no TLS fault %r (faults: %s)" % (fault, ", ".join(FAULTS)))
        nodes = self._nodes_or_all(node_index)
        for node in nodes:
            node.tls_fault = fault
        return {"fault": fault, "nodes": [n.index for n in nodes]}

    @command()
    async def client_certificate(self, user: str) -> "dict[str, Any]":
        """A client certificate (and its key) for RBAC user ``user``, issued by the cluster's CA.

        Returns the paths of the PEM files: ``cert`` and ``key``. On a cluster made with
        ``tls_client_auth`` the TLS ports authenticate a connection presenting it as ``user``
        (its subject's common name), without a password.
        """
        tls = self._require_tls("client_certificate")
        if user not in self.users:
            raise KeyError(user)
        cert, key = tls.client_certificate(user)
        return {"user": user, "cert": cert, "key": key}

    @command("timetravel", seconds=("offset", "secs"))
    async def time_travel(self, seconds: float) -> "dict[str, Any]":
        """Move the mock clock (expiry, lock timeouts) forward by ``seconds``."""
        self.clock.travel(float(seconds))
        return {"offset": self.clock.offset}

    def bucket_errors(self, name, bucket_type="couchbase", replicas=None, ram_quota_mb=100):
        """Validation errors for a new bucket, field -> message (empty if it may be created)."""
        errors = {}
        problem = _validate_name(name)
        if problem:
            errors["name"] = problem
        elif name in self.buckets:
            errors["name"] = "Bucket with given name already exists"
        if bucket_type not in BUCKET_TYPES + ("membase",):
            errors["bucketType"] = "invalid bucket type"
        try:
            replicas = self.default_replicas if replicas is None else int(replicas)
            if replicas < 0:
                raise ValueError
            if replicas > 3:
                errors["replicaNumber"] = "Replica number larger than 3 is not supported."
        except (TypeError, ValueError):
            errors["replicaNumber"] = ("The replica number must be specified and must be a "
                                       "non-negative integer.")
        try:
            if int(ram_quota_mb) < 100:
                errors["ramQuota"] = "RAM quota cannot be less than 100 MiB"
        except (TypeError, ValueError):
            errors["ramQuota"] = "The RAM Quota must be a number."
        return errors

    @command(password=("saslPassword",), bucket_type=("bucketType", "type"), replicas=("replicaNumber",),
             ram_quota_mb=("ramQuotaMB",), flush_enabled=("flushEnabled",))
    async def create_bucket(self, name: str, password: str = "", bucket_type: str = "couchbase",
                            replicas: Optional[int] = None, ram_quota_mb: int = 100,
                            flush_enabled: bool = True) -> "dict[str, Any]":
        """Create a bucket, "couchbase" (vbuckets, replicas) or "memcached" (ketama).

        Invalid arguments raise BucketError (a ValueError whose ``errors`` maps each field to
        its problem, as the REST API reports them); nothing is created then. ``replicas`` None
        is the cluster's default.
        """
        errors = self.bucket_errors(name, bucket_type, replicas, ram_quota_mb)
        if errors:
            raise BucketError(errors)
        if bucket_type == "membase":
            bucket_type = "couchbase"
        replicas = self.default_replicas if replicas is None else int(replicas)
        self._add_bucket(Bucket(self, name, password or "", bucket_type, replicas, self.nvb,
                                int(ram_quota_mb), flush_enabled))
        self.bump()
        return {"bucket": name}

    @command()
    async def delete_bucket(self, name: str) -> "dict[str, Any]":
        """Delete a bucket; its KV connections and config streams are closed."""
        bucket = self.buckets.pop(name, None)
        if bucket is None:
            raise KeyError(name)
        for node in self.nodes:
            for conn in list(node.kv_conns):
                if conn.bucket is bucket:
                    conn.close()
        for stream in list(self.streams):
            if stream.bucket is bucket:
                stream.close()
        self.bump()
        return {"bucket": name}

    @command(name=("bucket",))
    async def flush_bucket(self, name: str) -> "dict[str, Any]":
        """Remove every document of a bucket."""
        bucket = self.buckets.get(name)
        if bucket is None:
            raise KeyError(name)
        bucket.store.flush()
        if bucket.replication is not None:
            bucket.replication.clear()
        return {"bucket": name}

    @command()
    async def create_user(self, name: str, password: str,
                          roles: "Sequence[str]" = ("admin",)) -> "dict[str, Any]":
        """Create or replace an RBAC user; roles like "admin" or "bucket_full_access[NAME]".

        Over HTTP ``roles`` is a comma-separated list.
        """
        if not name:
            raise ValueError("user name must not be empty")
        self.users[name] = User(name, password, roles)
        self._salts.pop(name, None)
        return {"user": name}

    @command()
    async def delete_user(self, name: str) -> "dict[str, Any]":
        """Delete an RBAC user."""
        if name not in self.users:
            raise KeyError(name)
        del self.users[name]
        return {"user": name}

    @command(mechanisms=("mechs",))
    async def set_sasl_mechanisms(self, mechanisms: "Sequence[str]") -> "dict[str, Any]":
        """Restrict the SASL mechanisms offered (a list, or one string of names separated by spaces).

        Over HTTP the names are separated by commas or spaces.
        """
        mechs = mechanisms.split() if isinstance(mechanisms, str) else list(mechanisms)
        unknown = [m for m in mechs if m not in MECHANISMS]
        if unknown:
            raise ValueError("unknown SASL mechanisms %s" % unknown)
        self.sasl_mechanisms = mechs
        return {"mechanisms": mechs}

    @command()
    async def keyinfo(self, key: Union[str, bytes], bucket: str = "default") -> "dict[str, Any]":
        """Where a key lives (vbucket, active and replica nodes), its metadata and each node's copy."""
        b = self.buckets.get(bucket)
        if b is None:
            raise KeyError(bucket)
        raw = key.encode() if isinstance(key, str) else key
        item = b.store.meta(raw)
        info = {"key": raw.decode("utf-8", "replace"), "found": item is not None and not item.deleted}
        if b.vbmap is not None:
            from .protocol import vbucket_of
            vb = vbucket_of(raw, b.nvb)
            nodes = self.config_nodes()
            row = b.vbmap[vb]
            info["vbucket"] = vb
            info["active"] = row[0].index if row[0] is not None else -1
            info["replicas"] = [n.index if n is not None else -1 for n in row[1:]]
            info["serverIndex"] = nodes.index(row[0]) if row[0] in nodes else -1
            copies = []
            for node in row:
                if node is not None:
                    held, persisted = b.replication.observed(node, vb, raw)
                    live = held is not None and not held.deleted
                    copies.append({"node": node.index, "found": live, "persisted": live and persisted,
                                   "cas": held.cas if live else 0, "seqno": held.seqno if live else 0})
            info["copies"] = copies  # the active's first, then each replica's as it holds the key
        if item is not None:
            info.update({"cas": item.cas, "flags": item.flags, "exp": int(item.exp), "seqno": item.seqno,
                         "deleted": item.deleted, "datatype": item.datatype,
                         "locked": bool(b.store.is_locked(item))})
        return info

    @command("mockinfo", "get_mcports")
    async def info(self) -> "dict[str, Any]":
        """Ports, credentials, buckets, failed nodes and revision (the READY line's JSON)."""
        return self.public_info()

    @command()
    async def help(self) -> "dict[str, Any]":
        """Every control command: its parameters (type, default, HTTP aliases) and summary."""
        return {"commands": describe()}

    def public_info(self):
        """Public description of the cluster (``info``; callable on the loop thread only)."""
        nodes = self.nodes
        return {
            "host": self.host,
            "port": nodes[0].mgmt_port,
            "kv_ports": [n.kv_port for n in nodes],
            "mgmt_ports": [n.mgmt_port for n in nodes],
            "failed": [n.index for n in nodes if n.failed],
            "username": self.admin_user,
            "password": self.users[self.admin_user].password if self.admin_user in self.users else "",
            "buckets": {b.name: b.password for b in self.buckets.values()},
            "rev": self.rev,
            **self._tls_info(),
        }

    def _tls_info(self):
        if self.tls is None:
            return {}
        return {"ca_path": self.tls.ca_path, "kv_tls_ports": [n.kv_tls_port for n in self.nodes],
                "mgmt_tls_ports": [n.mgmt_tls_port for n in self.nodes], "tls_only": self.tls_only,
                "tls_client_auth": self.tls.client_auth}

    # -- stats ------------------------------------------------------------------------------

    def stats(self, conn, group):
        """Stats for a STAT request: list of (name, value); None = needs a bucket.

        Raises KeyError for an unknown group, ValueError for malformed arguments.
        """
        from .stats import stats_for
        return stats_for(self, conn, group)


def _normalize_buckets(buckets):
    if buckets is None:
        return {"default": ""}
    if isinstance(buckets, dict):
        return {str(k): str(v or "") for k, v in buckets.items()}
    out = {}
    for spec in buckets:
        name, _, pw = str(spec).partition(":")
        out[name] = pw
    return out
