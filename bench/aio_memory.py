#!/usr/bin/env python3
"""Memory of the AsyncConnection: resident memory and reference counts over
1,000,000 async operations after warm-up, on asyncio and on uvloop.

    .venv/bin/python bench/aio_memory.py [--ops 1000000] [--loops asyncio,uvloop] [--out FILE]

Per loop: one AsyncConnection to a mock cluster process; a warm-up of
50,000 operations, then --ops operations (one operation = one key) of mixed
cycles: sequential set/get (JSON and raw), 10-key set/get (extended too), a
gather of 20 gets, a quiet miss and a NotFoundError, incr, delete/add, a
Future cancelled before its flush and a task cancelled while its get is in
flight. Reported: VmRSS growth (target < 2 MiB, as for the sync Connection
in bench/memory.py), live Python heap blocks and GC-tracked objects, and the
reference counts of the keys and values passed in and of None/True/False,
each before and after (after gc.collect()).
"""

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MockProcess, binding_identity, cpu_sets, rss_bytes, use_binding_snapshot  # noqa: E402


class Cycle:
    """One mixed cycle's arguments (the objects whose references are counted)."""

    def __init__(self):
        from couchbase import FMT_PLAIN
        from couchbase.exceptions import NotFoundError

        self.plain, self.not_found = FMT_PLAIN, NotFoundError
        self.keys10 = ["amem:multi:%d" % j for j in range(10)]
        self.mapping = {k: {"j": j, "pad": "x" * 50} for j, k in enumerate(self.keys10)}
        self.jkey, self.pkey, self.missing = "amem:json", "amem:plain", "amem:missing"
        self.raw = b"v" * 100
        self.jvalue = {"s": "text", "l": [1, 2, 3]}

    def watched(self):
        return {"keys list": self.keys10, "mapping": self.mapping, "JSON key": self.jkey,
                "raw key": self.pkey, "raw value": self.raw, "JSON value": self.jvalue,
                "None": None, "True": True, "False": False}

    async def run(self, cb):
        """One cycle; returns the number of key operations done (59)."""
        await cb.set(self.pkey, self.raw, format=self.plain)
        await cb.get(self.pkey)
        await cb.set(self.jkey, self.jvalue)
        await cb.get(self.jkey, extended=True)
        await cb.set(self.mapping)
        await cb.get(self.keys10)
        await cb.get(self.keys10, extended=True)
        await asyncio.gather(*[cb.get(self.jkey) for _ in range(20)])
        await cb.get(self.missing, quiet=True)
        try:
            await cb.get(self.missing)
        except self.not_found:
            pass
        await cb.incr("amem:counter", initial=0)
        await cb.delete(self.pkey)
        await cb.add(self.pkey, self.raw, format=self.plain)
        cb.get(self.jkey).cancel()  # before the flush: never sent
        task = asyncio.ensure_future(cb.get(self.jkey))
        await asyncio.sleep(0)  # the get is flushed (sent)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return 2 + 2 + 10 + 10 + 10 + 20 + 1 + 1 + 1 + 1 + 1


async def measure(host, port, total_ops, samples=10):
    from couchbase.aio import AsyncConnection

    cycle = Cycle()
    async with await AsyncConnection.connect(host, port, bucket="default", password="") as cb:
        done = 0
        while done < 50000:  # warm-up
            done += await cycle.run(cb)
        await asyncio.sleep(0.1)
        gc.collect()
        watched = cycle.watched()
        before = (rss_bytes(), sys.getallocatedblocks(), len(gc.get_objects()),
                  {k: sys.getrefcount(v) for k, v in watched.items()})
        points = [(0, before[0])]
        done, step = 0, total_ops // samples
        nxt = step
        t0 = time.perf_counter()
        while done < total_ops:
            done += await cycle.run(cb)
            if done >= nxt:
                points.append((done, rss_bytes()))
                nxt += step
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(0.1)  # the replies to the last cancelled gets
        gc.collect()
        after = (rss_bytes(), sys.getallocatedblocks(), len(gc.get_objects()),
                 {k: sys.getrefcount(v) for k, v in watched.items()})
    return before, after, points, done, elapsed


def main():
    snap = use_binding_snapshot()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=1000000)
    ap.add_argument("--loops", default="asyncio,uvloop")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    server_cpu, _ = cpu_sets()
    mock = MockProcess(server_cpu, pythonpath=snap)
    lines = ["Command: `.venv/bin/python bench/aio_memory.py --ops %d --loops %s`; %s."
             % (args.ops, args.loops, binding_identity(snap)), "",
             "| loop | ops | seconds | RSS before → after (MiB) | RSS growth | heap blocks Δ | GC objects Δ "
             "| refcount Δ | verdict |", "|---|---:|---:|---|---:|---:|---:|---|---|"]
    samples = []
    ok = True
    try:
        for kind in [k for k in args.loops.split(",") if k]:
            if kind == "uvloop":
                import uvloop
                loop = uvloop.new_event_loop()
            else:
                loop = asyncio.new_event_loop()
            try:
                before, after, points, done, elapsed = loop.run_until_complete(
                    measure(mock.host, mock.port, args.ops))
            finally:
                loop.close()
            growth = (after[0] - before[0]) / 2**20
            refs = {k: after[3][k] - before[3][k] for k in before[3] if after[3][k] != before[3][k]}
            # (None/True/False move with the interpreter's own state by a few: a leak of
            # one per call would be done // 59 cycles or more)
            flat = growth < 2 and all(abs(d) < done // 100 for d in (after[1] - before[1],
                                                                       after[2] - before[2], *refs.values()))
            ok = ok and flat
            lines.append("| %s | %d | %.0f | %.2f → %.2f | %.2f MiB | %+d | %+d | %s | %s |" % (
                kind, done, elapsed, before[0] / 2**20, after[0] / 2**20, growth, after[1] - before[1],
                after[2] - before[2], ", ".join("%s %+d" % kv for kv in refs.items()) or "0",
                "flat" if flat else "GROWS"))
            curve = ", ".join("%d: %.2f" % (o, r / 2**20) for o, r in points)
            samples.append("%s (ops: MiB): %s" % (kind, curve))
            print(lines[-1], file=sys.stderr, flush=True)
    finally:
        mock.stop()
    lines += ["", "Targets: RSS growth < 2 MiB; heap blocks, GC objects and every reference count within "
              "1 per 100 operations (a leak of one per call would be ≥ 1 per 59).", ""]
    lines += ["- " + s for s in samples]
    md = "\n".join(lines) + "\n"
    print(md)
    if args.out:
        args.out.write_text(md)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
