#!/usr/bin/env python3
"""Memory: resident memory over 1,000,000 mixed operations, and a per-call leak check.

    .venv/bin/python bench/memory.py [--ops 1000000] [--out FILE]

1. RSS: after a warm-up of 50,000 operations, run --ops mixed operations (one operation =
   one key: single and 10-key get/set, FMT_JSON and FMT_PLAIN values, quiet misses, the
   NotFoundError path, incr, delete/add, extended gets) and report the growth of VmRSS, with
   samples along the way. Target (issue #5): less than 2 MiB.
2. Per call: for each kind of call, 2,000 warm-up calls, then 20,000 calls between two
   readings of sys.getallocatedblocks() (live Python heap blocks), the number of objects the
   GC tracks, and the reference counts of the objects passed in and of None/True/False
   (not immortal on 3.11). A leak of one object or one reference per call shows as a
   delta of >= 20,000; the verdict threshold is 1 per 100 calls.
"""

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MockProcess, binding_identity, cpu_sets, rss_bytes, use_binding_snapshot  # noqa: E402


def mixed_cycle(cb, i, keys10, vals10, jkey, pkey, missing, nf_error, plain):
    """One cycle of mixed calls; returns the number of key operations done (34)."""
    cb.set(pkey, b"v" * 100, format=plain)
    cb.get(pkey)
    cb.set(jkey, {"n": i, "s": "text", "l": [1, 2, 3]})
    cb.get(jkey, extended=True)
    cb.set(dict(zip(keys10, vals10)))
    cb.get(keys10)
    cb.get(keys10, extended=True)
    cb.get(missing, quiet=True)
    try:
        cb.get(missing)
    except nf_error:
        pass
    cb.incr("mem:counter", initial=0)
    cb.delete(pkey)
    cb.add(pkey, b"w" * 10, format=plain)
    return 2 + 2 + 10 + 10 + 10 + 1 + 1 + 1 + 1 + 1


def rss_test(cb, total_ops, samples=10):
    from couchbase import FMT_PLAIN
    from couchbase.exceptions import NotFoundError

    keys10 = ["mem:multi:%d" % j for j in range(10)]
    vals10 = [{"j": j, "pad": "x" * 50} for j in range(10)]
    args = (keys10, vals10, "mem:json", "mem:plain", "mem:missing", NotFoundError, FMT_PLAIN)
    done = 0
    i = 0
    while done < 50000:  # warm-up
        done += mixed_cycle(cb, i, *args)
        i += 1
    gc.collect()
    r0 = rss_bytes()
    points = [(0, r0)]
    done = 0
    step = total_ops // samples
    nxt = step
    t0 = time.perf_counter()
    while done < total_ops:
        done += mixed_cycle(cb, i, *args)
        i += 1
        if done >= nxt:
            points.append((done, rss_bytes()))
            nxt += step
    elapsed = time.perf_counter() - t0
    gc.collect()
    r1 = rss_bytes()
    return r0, r1, points, done, elapsed


def leak_test(cb):
    from couchbase import FMT_PLAIN
    from couchbase.exceptions import KeyExistsError, NotFoundError

    key = "leak:key"
    bkey = b"leak:bkey"
    value = b"leak-value" * 10
    jvalue = {"a": [1, 2, 3], "b": "text"}
    keys = ["leak:m:%d" % j for j in range(10)]
    mapping = {k: value for k in keys}
    cb.set(key, value, format=FMT_PLAIN)
    cb.set(bkey, value, format=FMT_PLAIN)
    cb.set(mapping, format=FMT_PLAIN)
    cb.set("leak:json", jvalue)
    cb.set("leak:ctr", b"0", format=FMT_PLAIN)

    def exists():
        try:
            cb.add(key, value, format=FMT_PLAIN)
        except KeyExistsError:
            pass

    def notfound():
        try:
            cb.get("leak:missing")
        except NotFoundError:
            pass

    calls = {
        "get str key": lambda: cb.get(key),
        "get bytes key": lambda: cb.get(bkey),
        "get extended": lambda: cb.get(key, extended=True),
        "get JSON": lambda: cb.get("leak:json"),
        "get 10 keys": lambda: cb.get(keys),
        "get 10 keys extended": lambda: cb.get(keys, extended=True),
        "get missing, quiet": lambda: cb.get("leak:missing", quiet=True),
        "get missing -> NotFoundError": notfound,
        "set plain": lambda: cb.set(key, value, format=FMT_PLAIN),
        "set JSON": lambda: cb.set("leak:json", jvalue),
        "set 10 keys": lambda: cb.set(mapping, format=FMT_PLAIN),
        "add existing -> KeyExistsError": exists,
        "incr": lambda: cb.incr("leak:ctr2", initial=0),
        "touch": lambda: cb.touch(key, 0),
    }
    watched = {
        "key": key,
        "bytes key": bkey,
        "value": value,
        "JSON value": jvalue,
        "keys list": keys,
        "mapping": mapping,
        "None": None,
        "True": True,
        "False": False,
        "connection": cb,
    }
    n = 20000
    rows = []
    for name, fn in calls.items():
        for _ in range(2000):
            fn()
        gc.collect()
        b0 = sys.getallocatedblocks()
        o0 = len(gc.get_objects())
        rc0 = {k: sys.getrefcount(v) for k, v in watched.items()}
        for _ in range(n):
            fn()
        gc.collect()
        b1 = sys.getallocatedblocks()
        o1 = len(gc.get_objects())
        rc1 = {k: sys.getrefcount(v) for k, v in watched.items()}
        rcd = {k: rc1[k] - rc0[k] for k in watched if rc1[k] != rc0[k]}
        rows.append((name, b1 - b0, o1 - o0, rcd))
    return n, rows


def main():
    snap = use_binding_snapshot()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=1000000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    server_cpu, _ = cpu_sets()
    mock = MockProcess(server_cpu, pythonpath=snap)
    try:
        from couchbase import Couchbase

        with Couchbase.connect(mock.host, mock.port, bucket="default", password="") as cb:
            r0, r1, points, done, elapsed = rss_test(cb, args.ops)
            print(
                "RSS %.2f MiB -> %.2f MiB over %d ops (%.0f s)" % (r0 / 2**20, r1 / 2**20, done, elapsed),
                file=sys.stderr,
                flush=True,
            )
            n, rows = leak_test(cb)
    finally:
        mock.stop()
    growth = (r1 - r0) / 2**20
    lines = [
        "Command: `.venv/bin/python bench/memory.py --ops %d`; %s." % (args.ops, binding_identity(snap)),
        "",
        "Resident memory (VmRSS) after a 50,000-op warm-up: %.2f MiB; after %d mixed operations "
        "(%.0f s): %.2f MiB; growth **%.2f MiB** (target < 2 MiB: %s)."
        % (r0 / 2**20, done, elapsed, r1 / 2**20, growth, "met" if growth < 2 else "not met"),
        "",
        "Samples (ops: MiB): " + ", ".join("%d: %.2f" % (o, r / 2**20) for o, r in points),
        "",
        "Per call, over %d calls of each (deltas after gc.collect(); a leak of one per call would be "
        "≥ %d):" % (n, n),
        "",
        "| call | heap blocks Δ | GC objects Δ | refcount Δ | verdict |",
        "|---|---:|---:|---|---|",
    ]
    for name, db, do, rcd in rows:
        leak = abs(db) >= n // 100 or abs(do) >= n // 100 or any(abs(v) >= n // 100 for v in rcd.values())
        lines.append(
            "| %s | %d | %d | %s | %s |"
            % (
                name,
                db,
                do,
                ", ".join("%s %+d" % kv for kv in rcd.items()) or "0",
                "LEAK" if leak else "no leak",
            )
        )
    md = "\n".join(lines) + "\n"
    print(md)
    if args.out:
        args.out.write_text(md)


if __name__ == "__main__":
    main()
