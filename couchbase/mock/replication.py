"""Replicas of one bucket, kept per node, and synchronous (durable) writes.

The bucket's ``BucketStore`` is the active copy of every vbucket. Each node also holds a
``Copy``: the items of the vbuckets it is a replica of, as replication delivered them, and
per vbucket the highest sequence number it received and persisted (for its active vbuckets
too). Replication takes the items the store changed (``BucketStore.changed``) and delivers a
snapshot of each to the replica nodes ``ClusterCore.replication_lag_ms`` later (at once when
0: they then share the active's items); a node persists what it holds ``persist_ms`` after
receiving it. A failover promotes a replica's copy, so what had not reached it is lost, as on
a real cluster.

A durable write (a durability frame, see ``parse_frames``) is applied at once and answered
when its level is met on the nodes' copies, or SYNC_WRITE_AMBIGUOUS at its timeout (the mock
keeps the write then: one of the outcomes "ambiguous" allows). Until then other mutations of
the key get SYNC_WRITE_IN_PROGRESS; replies to later requests do not wait behind it (as with
unordered execution). Everything runs on the mock's event-loop thread.
"""

import asyncio
import struct

from .protocol import Status

#: Durability levels of the frame: majority, majority and persist to active, persist to majority.
LEVELS = {1: "majority", 2: "majority_and_persist_to_active", 3: "persist_to_majority"}
#: The server's timeout when the frame has none (or 0), in milliseconds.
DEFAULT_TIMEOUT_MS = 30000
FRAME_REORDER = 0
FRAME_DURABILITY = 1
_TIMEOUT = struct.Struct(">H")


class FrameError(ValueError):
    """Flexible framing extras a real node refuses: ``status`` (EINVAL unless given), the
    message as the reply's error context."""

    def __init__(self, message, status=Status.EINVAL):
        super().__init__(message)
        self.status = status


def parse_frames(buf):
    """The durability requirement in a request's framing extras: (level, timeout_ms or None),
    or None when there is none. Raises FrameError for a malformed or unsupported frame."""
    durability = None
    pos, n = 0, len(buf)
    while pos < n:
        tag = buf[pos]
        pos += 1
        frame_id, size = tag >> 4, tag & 0x0F
        if frame_id == 0x0F:  # escaped: the next byte adds to 15
            if pos >= n:
                raise FrameError("truncated frame id")
            frame_id, pos = 15 + buf[pos], pos + 1
        if size == 0x0F:
            if pos >= n:
                raise FrameError("truncated frame length")
            size, pos = 15 + buf[pos], pos + 1
        if pos + size > n:
            raise FrameError("frame %d is longer than the framing extras" % frame_id)
        data = buf[pos:pos + size]
        pos += size
        if frame_id == FRAME_REORDER:
            if size:
                raise FrameError("the reorder barrier frame has no value")
        elif frame_id == FRAME_DURABILITY:
            if size not in (1, 3) or durability is not None:
                raise FrameError("a durability frame is a level and an optional 2-byte timeout, once")
            durability = (data[0], _TIMEOUT.unpack(data[1:])[0] if size == 3 else None)
        else:
            raise FrameError("frame id %d is not supported" % frame_id)
    return durability


class Copy:
    """What one node holds of a bucket: its replica items (key -> Item snapshot) and, per
    vbucket, the highest seqno it received and the highest it persisted."""

    __slots__ = ("items", "seqnos", "persisted")

    def __init__(self, nvb):
        self.items = {}
        self.seqnos = [0] * nvb
        self.persisted = [0] * nvb


class SyncWrite:
    """A durable write applied on the active node, its reply held until its level is met."""

    __slots__ = ("conn", "key", "vb", "seqno", "level", "reply", "opcode", "opaque", "timer")

    def __init__(self, conn, key, vb, seqno, level, reply, opcode, opaque):
        self.conn = conn
        self.key = key
        self.vb = vb
        self.seqno = seqno
        self.level = level
        self.reply = reply
        self.opcode = opcode
        self.opaque = opaque
        self.timer = None


class Replication:
    """The per-node copies of one couchbase bucket and its pending durable writes."""

    def __init__(self, core, bucket):
        self.core = core
        self.bucket = bucket
        self.store = bucket.store
        self.copies = {}  # Node -> Copy
        # Bumped when a vbucket's history is rewritten (failover, rebalance): deliveries
        # still in flight from before are dropped, as a failed node's queue is.
        self.epochs = [0] * bucket.nvb
        self.sync_writes = {}  # key -> SyncWrite
        self.held = {}  # stalled Node -> [(snapshot, epoch)] it will receive when it resumes
        self.store.before_lock = self._detach

    def copy_of(self, node):
        copy = self.copies.get(node)
        if copy is None:
            copy = self.copies[node] = Copy(self.bucket.nvb)
        return copy

    # -- replication ------------------------------------------------------------------------

    def flush(self):
        """Send every item the store changed since the last call to its replicas."""
        changed = self.store.changed
        if not changed:
            return
        self.store.changed = []
        core = self.core
        lag = core.replication_lag_ms / 1000.0
        persist = core.persist_ms / 1000.0
        loop = asyncio.get_running_loop() if lag or persist else None
        vbmap = self.bucket.vbmap
        copies = self.copies
        epochs = self.epochs
        for item in changed:  # the hot path of every mutation: kept flat
            vb = item.vb
            seqno = item.seqno
            for index, node in enumerate(vbmap[vb]):
                if node is None:
                    continue
                copy = copies.get(node) or self.copy_of(node)
                if index:
                    if lag or node.stalled:
                        self._send(node, item.copy(), epochs[vb], lag, persist, loop)
                        continue
                    # No lag: the replica holds what the active holds, the same object until a
                    # lag starts (``freeze``).
                    copy.items[item.key] = item
                if seqno > copy.seqnos[vb]:
                    copy.seqnos[vb] = seqno
                if persist:
                    loop.call_later(persist, self._persisted, copy, vb, seqno, epochs[vb])
                elif seqno > copy.persisted[vb]:
                    copy.persisted[vb] = seqno
        if self.sync_writes:
            self._check({item.vb for item in changed})

    def freeze(self, nodes=None):
        """A replication lag starts (or ``nodes`` stall): replicas keep snapshots of what they
        hold, no longer the active's items themselves."""
        self.flush()
        for node, copy in self.copies.items():
            if nodes is None or node in nodes:
                copy.items = {key: item.copy() for key, item in copy.items.items()}

    def _detach(self, item):
        """Replicas sharing ``item`` keep it as it is now: the lock about to change its CAS
        stays on the active node."""
        self.flush()
        for node in self.bucket.vbmap[item.vb][1:]:
            copy = self.copies.get(node)
            if copy is not None and copy.items.get(item.key) is item:
                copy.items[item.key] = item.copy()

    def _send(self, node, snap, epoch, lag, persist, loop):
        if lag:
            loop.call_later(lag, self._receive, node, snap, epoch, persist)
        else:
            self._receive(node, snap, epoch, persist)

    def resume(self, node):
        """``node`` no longer stalls: it receives what replication held for it, in order."""
        persist = self.core.persist_ms / 1000.0
        for snap, epoch in self.held.pop(node, ()):
            self._receive(node, snap, epoch, persist)

    def _hold(self, copy, vb, seqno, persist, loop):
        """``copy`` holds ``vb`` up to ``seqno``; it persists it ``persist`` seconds later."""
        if seqno > copy.seqnos[vb]:
            copy.seqnos[vb] = seqno
        if persist:
            loop.call_later(persist, self._persisted, copy, vb, seqno, self.epochs[vb])
        elif seqno > copy.persisted[vb]:
            copy.persisted[vb] = seqno

    def _receive(self, node, snap, epoch, persist):
        """A delivery that was in flight: dropped if the vbucket's history or map changed."""
        vb = snap.vb
        if epoch != self.epochs[vb] or node not in self.bucket.vbmap[vb][1:]:
            return
        if node.stalled:  # a hung node takes nothing in: it waits for ``resume``
            self.held.setdefault(node, []).append((snap, epoch))
            return
        copy = self.copy_of(node)
        old = copy.items.get(snap.key)
        if old is None or old.seqno < snap.seqno:
            copy.items[snap.key] = snap
        self._hold(copy, vb, snap.seqno, persist, asyncio.get_running_loop() if persist else None)
        if self.sync_writes:
            self._check((vb,))

    def _persisted(self, copy, vb, seqno, epoch):
        if epoch == self.epochs[vb] and seqno > copy.persisted[vb]:
            copy.persisted[vb] = seqno
            if self.sync_writes:
                self._check((vb,))

    def replica_item(self, node, key):
        """The live item ``node``'s replica copy holds for ``key``, or None."""
        self.flush()
        copy = self.copies.get(node)
        item = copy.items.get(key) if copy is not None else None
        if item is None or item.deleted or (item.exp and item.exp <= self.store.clock.now()):
            return None
        return item

    def observed(self, node, vb, key):
        """(item or None, persisted) as ``node`` holds ``key`` of ``vb`` (active or replica)."""
        self.flush()
        copy = self.copy_of(node)
        item = self.store.meta(key) if self.bucket.vbmap[vb][0] is node else copy.items.get(key)
        return item, item is not None and item.seqno <= copy.persisted[vb]

    def seqnos(self, node, vb):
        """(current, persisted) seqno of ``vb`` on ``node`` (OBSERVE_SEQNO)."""
        self.flush()
        copy = self.copy_of(node)
        if self.bucket.vbmap[vb][0] is node:
            return self.store.seqnos[vb], copy.persisted[vb]
        return copy.seqnos[vb], copy.persisted[vb]

    # -- topology changes -------------------------------------------------------------------

    def rebuild(self, vbs=None, promoted=None):
        """Copy the active items of ``vbs`` (None: all) to their replicas afresh, fully
        persisted (a rebalance's end state). A vbucket's promoted replica (``promoted``:
        vbucket -> node) keeps the persistence state it had."""
        self.flush()
        promoted = promoted or {}
        vbmap = self.bucket.vbmap
        if vbs is None:
            vbs = set(range(self.bucket.nvb))
            self.copies = {}
        for vb in vbs:
            self.epochs[vb] += 1
        for copy in self.copies.values():
            copy.items = {k: i for k, i in copy.items.items() if i.vb not in vbs}
        seqnos = self.store.seqnos
        for vb in vbs:
            for node in vbmap[vb]:
                if node is not None and promoted.get(vb) is not node:
                    copy = self.copy_of(node)
                    copy.seqnos[vb] = copy.persisted[vb] = seqnos[vb]
        for key, item in self.store.items_of(vbs).items():
            for node in vbmap[item.vb][1:]:
                if node is not None:
                    self.copy_of(node).items[key] = item.copy()
        self._check(vbs)

    def promote(self, promotions):
        """Failover: ``promotions`` maps vbucket -> the node whose replica copy becomes its
        active copy (the row already names it). Returns nothing; the store is rewritten."""
        self.flush()
        by_node = {}
        for vb, node in promotions.items():
            by_node.setdefault(node, set()).add(vb)
        contents = {vb: {} for vb in promotions}
        for node, vbs in by_node.items():
            copy = self.copy_of(node)
            kept = {}
            for key, item in copy.items.items():
                if item.vb in vbs:
                    contents[item.vb][key] = item
                else:
                    kept[key] = item
            copy.items = kept
        self.store.replace_vbuckets(contents, {vb: self.copy_of(node).seqnos[vb]
                                               for vb, node in promotions.items()})
        for vb in promotions:
            self.store.new_failover_entry(vb)
        self.rebuild(set(promotions), promotions)

    def forget(self, node):
        """``node`` left the cluster: its copies are gone."""
        self.copies.pop(node, None)
        self.held.pop(node, None)

    # -- synchronous replication ------------------------------------------------------------

    def majority(self):
        """Copies a durable write needs: a majority of the active and its configured replicas."""
        return (self.bucket.replicas + 1) // 2 + 1

    def impossible(self, vb):
        """True if too few nodes hold ``vb`` for any durable write to succeed."""
        return sum(1 for n in self.bucket.vbmap[vb] if n is not None) < self.majority()

    def hold(self, conn, key, vb, level, timeout_ms, reply, opcode, opaque):
        """The reply to a durable write that succeeded on the active node: ``reply`` if the
        level is met already, else None (it is sent when met, or AMBIGUOUS at the timeout)."""
        item = self.store.meta(key)
        write = SyncWrite(conn, key, vb, item.seqno, level, reply, opcode, opaque)
        self.flush()
        if self._met(write):
            return reply
        self.sync_writes[key] = write
        write.timer = asyncio.get_running_loop().call_later(
            (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000.0, self._timed_out, write)
        return None

    def _met(self, write):
        vb, seqno = write.vb, write.seqno
        row = self.bucket.vbmap[vb]
        if row[0] is not write.conn.node:
            return False  # the vbucket moved: only the timeout answers now
        holders = [self.copy_of(n) for n in row if n is not None]
        majority = self.majority()
        if write.level == 3:
            return sum(1 for c in holders if c.persisted[vb] >= seqno) >= majority
        if sum(1 for c in holders if c.seqnos[vb] >= seqno) < majority:
            return False
        return write.level == 1 or holders[0].persisted[vb] >= seqno

    def _check(self, vbs):
        for write in [w for w in self.sync_writes.values() if w.vb in vbs]:
            if self._met(write):
                self._finish(write, write.reply)

    def _timed_out(self, write):
        if self.sync_writes.get(write.key) is write:
            self._finish(write, write.conn.status_reply(write.opcode, Status.SYNC_WRITE_AMBIGUOUS,
                                                        write.opaque))

    def _finish(self, write, reply):
        del self.sync_writes[write.key]
        if write.timer is not None:
            write.timer.cancel()
        if not write.conn.closed:
            write.conn.send(reply)

    def clear(self):
        """The bucket was flushed: replicas are emptied, pending durable writes stay pending."""
        self.store.changed = []
        for copy in self.copies.values():
            copy.items.clear()
