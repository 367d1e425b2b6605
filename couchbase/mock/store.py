"""Items of one bucket: values, CAS, expiry, locks, sequence numbers, and the mock clock.

All methods run on the mock's event-loop thread; no locking is needed.
"""

import copy
import os
import struct
import time

from .protocol import Status

MAX_ITEM_SIZE = 20 * 1024 * 1024
RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600  # larger expiry values are absolute Unix times
DEFAULT_LOCK_TIME = 15
MAX_LOCK_TIME = 30

_ok = Status.SUCCESS


class MockClock:
    """Wall-clock time plus an offset that tests can move forward (time travel)."""

    __slots__ = ("offset",)

    def __init__(self):
        self.offset = 0.0

    def now(self):
        """Current mock time in seconds since the epoch."""
        return time.time() + self.offset

    def travel(self, seconds):
        """Move the mock clock by ``seconds`` (may be negative)."""
        self.offset += float(seconds)


class CasSource:
    """Unique, increasing CAS values shared by every bucket of a cluster."""

    __slots__ = ("value",)

    def __init__(self):
        # Start near "now in nanoseconds" like a real server's hybrid logical clock.
        self.value = time.time_ns() & ~0xFFFF

    def next(self):
        self.value += 1
        return self.value


class Item:
    """One document."""

    __slots__ = ("key", "value", "flags", "exp", "cas", "datatype", "locked_until", "seqno", "vb", "deleted",
                 "xattrs")

    def __init__(self, key, value, flags, exp, cas, datatype, seqno, vb):
        self.key = key
        self.value = value
        self.flags = flags
        self.exp = exp
        self.cas = cas
        self.datatype = datatype
        self.locked_until = 0.0
        self.seqno = seqno
        self.vb = vb
        self.deleted = False
        self.xattrs = None  # extended attributes (sub-document API): name -> JSON value

    def copy(self):
        """A snapshot of this item (what replication sends to a replica)."""
        twin = Item(self.key, self.value, self.flags, self.exp, self.cas, self.datatype, self.seqno, self.vb)
        twin.deleted = self.deleted
        if self.xattrs:
            twin.xattrs = copy.deepcopy(self.xattrs)
        return twin


def _system_xattrs(xattrs):
    """The system xattrs (names starting with "_"), which survive deletion and full updates."""
    if not xattrs:
        return None
    kept = {k: v for k, v in xattrs.items() if k.startswith("_")}
    return kept or None


class BucketStore:
    """Documents of one bucket plus per-vbucket sequence numbers and failover logs."""

    def __init__(self, nvb, clock, cas_source, replicated=False):
        self.items = {}
        # Items mutated since replication last looked (None: a bucket without replicas).
        self.changed = [] if replicated else None
        # Called with an item about to be locked: a lock is not replicated (replication.py).
        self.before_lock = None
        self.tombstones = {}
        self.nvb = nvb
        self.clock = clock
        self._cas = cas_source
        self.seqnos = [0] * nvb
        # failover log per vbucket, newest first: [(vbuuid, seqno), ...]
        self.failover_logs = [[(self._new_uuid(), 0)] for _ in range(nvb)]
        self.stats = {"cmd_get": 0, "cmd_set": 0, "get_hits": 0, "get_misses": 0,
                      "delete_hits": 0, "delete_misses": 0, "incr_hits": 0, "incr_misses": 0,
                      "decr_hits": 0, "decr_misses": 0, "cas_hits": 0, "cas_badval": 0,
                      "cas_misses": 0, "touch_hits": 0, "touch_misses": 0, "expired": 0,
                      "total_items": 0}

    @staticmethod
    def _new_uuid():
        return struct.unpack(">Q", os.urandom(8))[0] >> 1 or 1

    def vbuuid(self, vb):
        return self.failover_logs[vb][0][0]

    def new_failover_entry(self, vb):
        """A vbucket changed owner without a clean handover: start a new history branch."""
        self.failover_logs[vb].insert(0, (self._new_uuid(), self.seqnos[vb]))
        del self.failover_logs[vb][8:]

    def expiry(self, exp):
        """Convert a protocol expiry (relative or absolute) to mock time; 0 = never."""
        if not exp:
            return 0
        if exp <= RELATIVE_EXPIRY_LIMIT:
            return self.clock.now() + exp
        return float(exp)

    def get(self, key):
        """Return the live item for ``key`` or None (lazily expiring it)."""
        item = self.items.get(key)
        if item is not None and item.exp and item.exp <= self.clock.now():
            self._expire(key, item)
            return None
        return item

    def _expire(self, key, item):
        del self.items[key]
        self.stats["expired"] += 1
        self._tombstone(key, item)

    def _tombstone(self, key, item):
        vb = item.vb
        self.seqnos[vb] += 1
        item.seqno = self.seqnos[vb]
        item.cas = self._cas.next()
        item.value = b""
        item.deleted = True
        item.locked_until = 0.0
        item.xattrs = _system_xattrs(item.xattrs)
        self.tombstones[key] = item
        if self.changed is not None:
            self.changed.append(item)

    def _bump(self, item):
        vb = item.vb
        self.seqnos[vb] += 1
        item.seqno = self.seqnos[vb]
        item.cas = self._cas.next()
        if self.changed is not None:
            self.changed.append(item)

    def is_locked(self, item):
        return item.locked_until and item.locked_until > self.clock.now()

    def _check(self, item, cas):
        """CAS/lock check for a mutation of an existing item; returns a status."""
        if item.locked_until:
            if item.locked_until > self.clock.now():
                return _ok if cas == item.cas else Status.LOCKED
            item.locked_until = 0.0
        if cas and cas != item.cas:
            self.stats["cas_badval"] += 1
            return Status.KEY_EEXISTS
        return _ok

    # -- mutations ------------------------------------------------------------------------

    def store(self, mode, key, vb, value, flags, exp, cas, datatype):
        """SET (mode 0), ADD (1) or REPLACE (2). Returns (status, item)."""
        self.stats["cmd_set"] += 1
        item = self.get(key)
        if item is None:
            if mode == 2 or (cas and mode == 0):
                if cas:
                    self.stats["cas_misses"] += 1
                return Status.KEY_ENOENT, None
            item = Item(key, value, flags, self.expiry(exp), 0, datatype, 0, vb)
            self.items[key] = item
            self.tombstones.pop(key, None)
            self.stats["total_items"] += 1
        else:
            if mode == 1:
                return Status.KEY_EEXISTS, None
            status = self._check(item, cas)
            if status:
                return status, None
            if cas:
                self.stats["cas_hits"] += 1
            item.value = value
            item.flags = flags
            item.exp = self.expiry(exp)
            item.datatype = datatype
            item.locked_until = 0.0
            if item.xattrs:
                item.xattrs = _system_xattrs(item.xattrs)  # a full update drops user xattrs
        self._bump(item)
        return _ok, item

    # -- building blocks for compound commands (sub-document) ------------------------------------

    def check_mutation(self, item, cas):
        """CAS and lock check before mutating an existing item: a status (0 = go ahead)."""
        return self._check(item, cas)

    def insert(self, key, vb, value, flags, exp, datatype):
        """Create a new live item (the caller checked there is none) and give it a seqno/CAS."""
        item = Item(key, value, flags, self.expiry(exp), 0, datatype, 0, vb)
        self.items[key] = item
        self.tombstones.pop(key, None)
        self.stats["total_items"] += 1
        self._bump(item)
        return item

    def updated(self, item, exp):
        """Record an in-place update of ``item``: new expiry, CAS and seqno; unlocks it."""
        item.exp = self.expiry(exp)
        item.locked_until = 0.0
        self._bump(item)

    def remove(self, key, item):
        """Delete a live item (the caller checked CAS and locks)."""
        del self.items[key]
        self._tombstone(key, item)

    def delete(self, key, cas):
        """DELETE. Returns (status, tombstone)."""
        item = self.get(key)
        if item is None:
            self.stats["delete_misses"] += 1
            return Status.KEY_ENOENT, None
        status = self._check(item, cas)
        if status:
            return status, None
        self.stats["delete_hits"] += 1
        del self.items[key]
        self._tombstone(key, item)
        return _ok, item

    def concat(self, key, value, cas, prepend):
        """APPEND/PREPEND. Returns (status, item)."""
        item = self.get(key)
        if item is None:
            return Status.NOT_STORED, None
        status = self._check(item, cas)
        if status:
            return status, None
        if len(item.value) + len(value) > MAX_ITEM_SIZE:
            return Status.E2BIG, None
        item.value = value + item.value if prepend else item.value + value
        item.datatype &= ~0x01  # the concatenation is no longer known to be JSON
        item.locked_until = 0.0
        self._bump(item)
        return _ok, item

    def arithmetic(self, key, vb, delta, initial, exp, cas, incr):
        """INCR/DECR. Returns (status, item, new_value)."""
        name = "incr" if incr else "decr"
        item = self.get(key)
        if item is None:
            self.stats[name + "_misses"] += 1
            if exp == 0xFFFFFFFF or cas:
                return Status.KEY_ENOENT, None, 0
            item = Item(key, b"%d" % initial, 0, self.expiry(exp), 0, 0x01, 0, vb)
            self.items[key] = item
            self.tombstones.pop(key, None)
            self.stats["total_items"] += 1
            self._bump(item)
            return _ok, item, initial
        status = self._check(item, cas)
        if status:
            return status, None, 0
        raw = item.value
        if not raw or len(raw) > 20 or not raw.isdigit():
            return Status.DELTA_BADVAL, None, 0
        current = int(raw)
        if current > 0xFFFFFFFFFFFFFFFF:
            return Status.DELTA_BADVAL, None, 0
        if incr:
            current = (current + delta) & 0xFFFFFFFFFFFFFFFF
        else:
            current = max(0, current - delta)
        self.stats[name + "_hits"] += 1
        item.value = b"%d" % current
        item.datatype = 0x01
        item.locked_until = 0.0
        self._bump(item)
        return _ok, item, current

    def touch(self, key, exp):
        """TOUCH/GAT: set a new expiry. Returns (status, item)."""
        item = self.get(key)
        if item is None:
            self.stats["touch_misses"] += 1
            return Status.KEY_ENOENT, None
        if self.is_locked(item):
            return Status.LOCKED, None
        self.stats["touch_hits"] += 1
        item.exp = self.expiry(exp)
        self._bump(item)
        return _ok, item

    def lock(self, key, lock_time):
        """GET_LOCKED. Returns (status, item)."""
        item = self.get(key)
        if item is None:
            return Status.KEY_ENOENT, None
        if self.is_locked(item):
            return Status.LOCKED, None
        if lock_time == 0 or lock_time > MAX_LOCK_TIME:
            lock_time = DEFAULT_LOCK_TIME
        if self.before_lock is not None:
            self.before_lock(item)
        item.cas = self._cas.next()
        item.locked_until = self.clock.now() + lock_time
        return _ok, item

    def unlock(self, key, cas):
        """UNLOCK. Returns a status."""
        item = self.get(key)
        if item is None:
            return Status.KEY_ENOENT
        if not self.is_locked(item):
            return Status.NOT_LOCKED
        if cas != item.cas:
            return Status.LOCKED
        item.locked_until = 0.0
        return _ok

    def evict(self, key):
        return _ok if self.get(key) is not None else Status.KEY_ENOENT

    def meta(self, key):
        """Item or tombstone for GET_META/OBSERVE, or None."""
        item = self.get(key)
        if item is None:
            item = self.tombstones.get(key)
        return item

    def flush(self):
        """Remove every document."""
        self.items.clear()
        self.tombstones.clear()

    def items_of(self, vbs):
        """Live items and tombstones of the vbuckets in ``vbs`` (a set), by key."""
        out = {k: i for k, i in self.tombstones.items() if i.vb in vbs}
        out.update((k, i) for k, i in self.items.items() if i.vb in vbs)
        return out

    def replace_vbuckets(self, contents, seqnos):
        """Make ``contents[vb]`` (key -> Item) the content of each vbucket ``vb``, whose high
        seqno becomes ``seqnos[vb]``: replicas' copies promoted at failover. What a replica
        never received is gone."""
        for table in (self.items, self.tombstones):
            for key in [k for k, i in table.items() if i.vb in contents]:
                del table[key]
        for items in contents.values():
            for key, item in items.items():
                (self.tombstones if item.deleted else self.items)[key] = item
        for vb, seqno in seqnos.items():
            self.seqnos[vb] = seqno
