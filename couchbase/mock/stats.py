"""STAT groups served by a mock node (names and shapes of a real node's stats)."""

import os
import time
import zlib

from . import config as _config


def _vb_state(bucket, node, vb):
    row = bucket.vbmap[vb]
    if row[0] is node:
        return "active"
    if node in row[1:]:
        return "replica"
    return None


def _default(core, conn, bucket):
    now = time.time()
    out = [
        ("pid", os.getpid()),
        ("uptime", int(now - core.started_at)),
        ("time", int(core.clock.now())),
        ("version", _config.VERSION),
        ("memcached_version", _config.VERSION),
        ("pointer_size", 64),
        ("threads", 4),
        ("curr_connections", len(conn.node.kv_conns)),
        ("total_connections", len(conn.node.kv_conns)),
    ]
    if bucket is None:
        return out
    store = bucket.store
    items = store.items
    size = sum(len(i.value) for i in items.values())
    out += sorted(store.stats.items())
    out += [
        ("curr_items", len(items)),
        ("curr_items_tot", len(items)),
        ("curr_temp_items", 0),
        ("bytes", size),
        ("mem_used", size),
        ("limit_maxbytes", bucket.ram_quota_mb * 1024 * 1024),
        ("ep_bucket_type", "memcached" if bucket.is_memcached else "persistent"),
        ("ep_max_size", bucket.ram_quota_mb * 1024 * 1024),
        ("ep_mem_high_wat", bucket.ram_quota_mb * 1024 * 1024 * 85 // 100),
        ("ep_mem_low_wat", bucket.ram_quota_mb * 1024 * 1024 * 75 // 100),
        ("ep_num_non_resident", 0),
        ("ep_queue_size", 0),
        ("ep_flusher_todo", 0),
        ("ep_warmup_thread", "complete"),
        ("ep_degraded_mode", 0),
        ("vb_active_curr_items", len(items)),
    ]
    if bucket.vbmap is not None:
        node = conn.node
        out += [("vb_active_num", sum(1 for o in bucket.owners if o is node)),
                ("vb_replica_num", sum(1 for row in bucket.vbmap if node in row[1:]))]
    return out


def _memory(core, conn, bucket):
    size = sum(len(i.value) for i in bucket.store.items.values())
    quota = bucket.ram_quota_mb * 1024 * 1024
    return [("bytes", size), ("mem_used", size), ("ep_kv_size", size), ("ep_max_size", quota),
            ("ep_mem_high_wat", quota * 85 // 100), ("ep_mem_low_wat", quota * 75 // 100),
            ("ep_mem_high_wat_percent", "0.85"), ("ep_mem_low_wat_percent", "0.75"),
            ("ep_value_size", size), ("ep_overhead", 0), ("ep_blob_num", len(bucket.store.items)),
            ("mem_used_estimate", size)]


def _config_stats(core, conn, bucket):
    return [("ep_max_vbuckets", bucket.nvb), ("ep_max_size", bucket.ram_quota_mb * 1024 * 1024),
            ("ep_bucket_type", "memcached" if bucket.is_memcached else "persistent"),
            ("ep_item_eviction_policy", "value_only"), ("ep_max_item_size", 20 * 1024 * 1024),
            ("ep_couch_bucket", bucket.name), ("ep_uuid", bucket.uuid),
            ("ep_num_replicas", bucket.replicas)]


def _uuid(core, conn, bucket):
    return [("uuid", bucket.uuid)]


def _vbucket(core, conn, bucket, details=False, seqno=False, failovers=False):
    if bucket.vbmap is None:
        raise KeyError("vbucket")
    out = []
    store = bucket.store
    for vb in range(bucket.nvb):
        state = _vb_state(bucket, conn.node, vb)
        if state is None:
            continue
        if seqno:
            seq = store.seqnos[vb]
            out += [("vb_%d:high_seqno" % vb, seq), ("vb_%d:abs_high_seqno" % vb, seq),
                    ("vb_%d:last_persisted_seqno" % vb, seq), ("vb_%d:uuid" % vb, store.vbuuid(vb)),
                    ("vb_%d:purge_seqno" % vb, 0)]
        elif failovers:
            log = store.failover_logs[vb]
            out.append(("vb_%d:num_entries" % vb, len(log)))
            for i, (u, s) in enumerate(log):
                out += [("vb_%d:%d:id" % (vb, i), u), ("vb_%d:%d:seq" % (vb, i), s)]
        else:
            out.append(("vb_%d" % vb, state))
            if details:
                out += [("vb_%d:high_seqno" % vb, store.seqnos[vb]), ("vb_%d:uuid" % vb, store.vbuuid(vb))]
    return out


def _key(core, conn, bucket, args, verify):
    if not args:
        raise ValueError("key stats need a key")
    key = args[0].encode()
    if bucket.vbmap is not None:
        vb = (((zlib.crc32(key) >> 16) & 0x7FFF) % bucket.nvb)
        if len(args) > 1:
            vb = int(args[1])
        state = _vb_state(bucket, conn.node, vb)
    else:
        vb, state = 0, "active"
    item = bucket.store.get(key)
    if item is None:
        raise KeyError(args[0])
    out = [("key_is_dirty", "false"), ("key_exptime", int(item.exp)), ("key_flags", item.flags),
           ("key_cas", item.cas), ("key_vb_state", state or "dead"), ("key_data_age", 0),
           ("key_last_modification_time", int(core.clock.now()))]
    if verify:
        out.append(("key_valid", "valid"))
    return out


def _collections(core, conn, bucket):
    return [("manifest_uid", "%x" % bucket.manifest_uid),
            ("0x0:0x0:name", "_default"), ("0x0:0x0:scope_name", "_default"),
            ("0x0:0x0:items", len(bucket.store.items))]


def _scopes(core, conn, bucket):
    return [("manifest_uid", "%x" % bucket.manifest_uid), ("0x0:name", "_default"), ("0x0:collections", 1)]


_BUCKET_GROUPS = {
    "memory": _memory,
    "config": _config_stats,
    "uuid": _uuid,
    "vbucket": _vbucket,
    "vbucket-details": lambda c, n, b: _vbucket(c, n, b, details=True),
    "vbucket-seqno": lambda c, n, b: _vbucket(c, n, b, seqno=True),
    "failovers": lambda c, n, b: _vbucket(c, n, b, failovers=True),
    "warmup": lambda c, n, b: [("ep_warmup_state", "done"), ("ep_warmup_thread", "complete")],
    "collections": _collections,
    "scopes": _scopes,
    "timings": lambda c, n, b: [],
    "dcp": lambda c, n, b: [("ep_dcp_count", 0)],
    "tap": lambda c, n, b: [("ep_tap_count", 0)],
    "checkpoint": lambda c, n, b: [],
}


def stats_for(core, conn, group):
    """Return [(name, value)] for ``group``; None if the group needs a selected bucket."""
    bucket = conn.bucket
    words = group.split()
    name = words[0] if words else ""
    if name == "":
        return _default(core, conn, bucket)
    if bucket is None:
        return None
    if name in ("key", "vkey"):
        return _key(core, conn, bucket, words[1:], name == "vkey")
    fn = _BUCKET_GROUPS.get(name)
    if fn is None:
        raise KeyError(name)
    return fn(core, conn, bucket)
