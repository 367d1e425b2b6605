#!/usr/bin/env python3
"""Threads: with the mock delaying every reply by 2 ms, does throughput scale with threads?

    .venv/bin/python bench/threads.py [--delay-ms 2] [--duration 3] [--threads 1,2,4,8] [--out FILE]

Single-key gets (16 B values) from N threads for a few seconds, two ways: one Connection per
thread, and one Connection shared by all threads. The mock runs in its own process; the
2 ms delay is its hiccup control (GET /mock/hiccup?msecs=2 on the management port), set
after every connection has bootstrapped. Target (issue #5): 8 threads reach at least 6x the
ops/s of one thread, both ways.

Note on the mock's hiccup: it delays each write of a KV connection by the given time, in
order, one after the other; replies to requests that arrived together go out in one write.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MockProcess, binding_identity, cpu_sets, use_binding_snapshot  # noqa: E402


def run(mock, nthreads, shared, duration, key):
    from couchbase import FMT_PLAIN, Couchbase

    def connect():
        return Couchbase.connect(
            mock.host, mock.port, bucket="default", password="", default_format=FMT_PLAIN, timeout=10
        )

    mock.control("hiccup", msecs=0)
    conns = [connect()] if shared else [connect() for _ in range(nthreads)]
    for c in conns:
        c.get(key)  # bootstrap done, first op through
    counts = [0] * nthreads
    errors = []
    start = threading.Barrier(nthreads + 1)
    box = {}

    def worker(i):
        cb = conns[0] if shared else conns[i]
        get = cb.get
        n = 0
        start.wait()
        deadline = box["deadline"]
        now = time.perf_counter
        try:
            while now() < deadline:
                get(key)
                n += 1
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        counts[i] = n

    mock.control("hiccup", msecs=box_delay[0])
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    box["deadline"] = time.perf_counter() + duration
    t0 = time.perf_counter()
    c0 = os.times()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    c1 = os.times()
    mock.control("hiccup", msecs=0)
    for c in conns:
        c.close()
    total = sum(counts)
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"ops_s": total / elapsed, "ops": total, "cpu_us": cpu / max(total, 1) * 1e6, "errors": errors}


box_delay = [2]


def main():
    snap = use_binding_snapshot()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay-ms", type=int, default=2)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--threads", default="1,2,4,8")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    box_delay[0] = args.delay_ms
    server_cpu, _ = cpu_sets()
    counts = [int(x) for x in args.threads.split(",")]
    mock = MockProcess(server_cpu, pythonpath=snap)
    rows = []
    try:
        from couchbase import FMT_PLAIN, Couchbase

        key = "threads:%020d" % 1
        with Couchbase.connect(mock.host, mock.port, bucket="default", password="") as cb:
            cb.set(key, b"x" * 16, format=FMT_PLAIN)
        for shared in (False, True):
            base = None
            for n in counts:
                r = run(mock, n, shared, args.duration, key)
                base = base or r["ops_s"]
                rows.append((shared, n, r, r["ops_s"] / base))
                print(
                    "%-26s %2d threads: %8.0f ops/s  x%.2f  %.1f us CPU/op %s"
                    % (
                        "one shared Connection" if shared else "one Connection per thread",
                        n,
                        r["ops_s"],
                        r["ops_s"] / base,
                        r["cpu_us"],
                        r["errors"][:1] or "",
                    ),
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        mock.stop()
    lines = [
        "Command: `.venv/bin/python bench/threads.py --delay-ms %d --duration %g --threads %s`"
        % (args.delay_ms, args.duration, args.threads),
        "",
        "Single-key gets, every reply delayed %d ms by the mock (hiccup); %g s per row; %s."
        % (args.delay_ms, args.duration, binding_identity(snap)),
        "",
        "| connections | threads | ops/s | × one thread | client CPU µs/op | errors |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for shared, n, r, x in rows:
        lines.append(
            "| %s | %d | %.0f | %.2f | %.1f | %s |"
            % (
                "one shared" if shared else "one per thread",
                n,
                r["ops_s"],
                x,
                r["cpu_us"],
                (str(len(r["errors"])) + ": " + r["errors"][0][:80]) if r["errors"] else "0",
            )
        )
    lines.append("")
    for shared in (False, True):
        eight = [x for s, n, r, x in rows if s == shared and n == 8]
        if eight:
            lines.append(
                "- %s: 8 threads = %.2fx one thread: target (≥ 6x) %s."
                % (
                    "one shared Connection" if shared else "one Connection per thread",
                    eight[0],
                    "met" if eight[0] >= 6 else "not met",
                )
            )
    md = "\n".join(lines) + "\n"
    print(md)
    if args.out:
        args.out.write_text(md)


if __name__ == "__main__":
    main()
