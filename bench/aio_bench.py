#!/usr/bin/env python3
"""asyncio benchmark: this binding's AsyncConnection on asyncio and on uvloop,
its sync Connection and the official SDK's acouchbase, side by side.

    python bench/aio_bench.py [--quick] [--out bench/aio-results.md]

One run against one mock cluster process (pinned to CPU 0, every client to
CPU 1 when possible): for each workload (bench/_aio_worker.py: sequential
get and set, a gather of 1,000 gets, an awaited 100-key get and set; 16-byte
values, 1,000 keys) each client in turn (round-robin, median of the
repeats): client CPU µs per operation (user + system of the client process,
every thread, one key = one operation) and operations per second, then the
issue's targets, met or missed.

acouchbase runs from the official SDK's venv (tools/peers.py; made with pip
if missing unless --no-install); a client that cannot run is listed under
"Failures" and the rest still runs.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MockProcess,
    Worker,
    binding_identity,
    client_python,
    cpu_sets,
    fmt_cpu,
    fmt_ops,
    lcb_version,
    log,
    md_row,
    peers,
    render_header,
    round_robin,
    run_meta,
    snapshot_package,
    version_of,
)

CLIENTS = ["asyncio", "uvloop", "sync", "acouchbase"]
LABELS = {"asyncio": "aio asyncio", "uvloop": "aio uvloop", "sync": "sync",
          "acouchbase": "acouchbase %s" % peers.version("couchbase")}
WORKLOADS = {
    "get1": "sequential await get",
    "set1": "sequential await set",
    "gather1000": "gather of 1,000 gets",
    "get100": "awaited 100-key get",
    "set100": "awaited 100-key set",
}
SIZE, ITEMS = 16, 1000

# (label, client, workload, limit: an absolute µs/op, or (other client, other workload, ratio))
TARGETS = [
    ("sequential get, asyncio ≤ 2.0 × sync", "asyncio", "get1", ("sync", "get1", 2.0)),
    ("sequential get, uvloop ≤ 1.3 × sync", "uvloop", "get1", ("sync", "get1", 1.3)),
    ("sequential get, asyncio ≤ 1/5 acouchbase", "asyncio", "get1", ("acouchbase", "get1", 1 / 5)),
    ("sequential get, uvloop ≤ 1/5 acouchbase", "uvloop", "get1", ("acouchbase", "get1", 1 / 5)),
    ("gather of 1,000 gets, asyncio ≤ 5 µs/op", "asyncio", "gather1000", 5.0),
    ("gather of 1,000 gets, uvloop ≤ 3.5 µs/op", "uvloop", "gather1000", 3.5),
    ("gather of 1,000 gets, asyncio ≤ 1/20 acouchbase", "asyncio", "gather1000",
     ("acouchbase", "gather1000", 1 / 20)),
    ("gather of 1,000 gets, uvloop ≤ 1/20 acouchbase", "uvloop", "gather1000",
     ("acouchbase", "gather1000", 1 / 20)),
    ("100-key get, asyncio ≤ 1.3 × sync per key", "asyncio", "get100", ("sync", "get100", 1.3)),
    ("100-key get, uvloop ≤ 1.3 × sync per key", "uvloop", "get100", ("sync", "get100", 1.3)),
]


def render(results, clients, workloads, errors, meta):
    out = render_header(meta, "the mock", "%d keys of %d B" % (ITEMS, SIZE))
    out += ["", "Client CPU µs per operation (user + system of the client process, all its threads; "
            "one key = one operation) and operations per second:", ""]
    head = ["workload"] + ["%s %s" % (LABELS[c], h) for c in clients for h in ("µs/op", "ops/s")]
    out.append(md_row(head))
    out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for w in workloads:
        cells = [WORKLOADS[w]]
        for c in clients:
            r = results.get((w, c))
            cells += ["—", "—"] if r is None else [fmt_cpu(r["cpu_us"]), fmt_ops(r["ops_s"])]
        out.append(md_row(cells))
    out += ["", "Targets (client CPU per operation):", "", "| target | measured | limit | met |",
            "|---|---:|---:|---|"]
    for label, client, workload, limit in TARGETS:
        mine = results.get((workload, client))
        if isinstance(limit, tuple):
            other = results.get((limit[1], limit[0]))
            bound = other["cpu_us"] * limit[2] if other else None
        else:
            bound = limit
        if mine is None or bound is None:
            out.append("| %s | — | — | not measured |" % label)
            continue
        met = "met" if mine["cpu_us"] <= bound else "**missed**"
        out.append("| %s | %s | %s | %s |" % (label, fmt_cpu(mine["cpu_us"]), fmt_cpu(bound), met))
    if errors:
        out += ["", "Failures:", ""] + ["- " + e for e in errors]
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 0.5 s per measurement, 2 repeats")
    ap.add_argument("--out", type=Path, help="also write the Markdown table here")
    ap.add_argument("--duration", type=float, help="seconds per measurement (default 2; quick 0.5)")
    ap.add_argument("--repeats", type=int, help="repeats, the median is reported (default 5; quick 2)")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="default %(default)s")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="default %(default)s")
    ap.add_argument("--no-install", action="store_true", help="never create the SDK venv")
    args = ap.parse_args(argv)
    duration = args.duration or (0.5 if args.quick else 2.0)
    repeats = args.repeats or (2 if args.quick else 5)
    warmup = 0.1 if args.quick else 0.5
    clients = [c for c in args.clients.split(",") if c]
    workloads = [w for w in args.workloads.split(",") if w]
    for name in clients + workloads:
        if name not in LABELS and name not in WORKLOADS:
            ap.error("unknown client or workload: %s" % name)
    server_cpu, client_cpu = cpu_sets()
    errors, workers, active, results, versions = [], {}, [], {}, {}
    snapshot = snapshot_package()
    identity = binding_identity(snapshot)
    versions["this binding"] = identity
    mock = None
    lcb = "?"
    try:
        log("measuring %s (a copy in %s); starting the mock cluster ..." % (identity, snapshot))
        mock = MockProcess(server_cpu, pythonpath=snapshot)
        ours_env = dict(os.environ, PYTHONPATH=str(snapshot))
        lcb = lcb_version(snapshot)
        versions["uvloop"] = version_of(client_python(), "import uvloop; print(uvloop.__version__)")
        for c in clients:
            try:
                if c == "acouchbase":
                    py = peers.ensure("couchbase", not args.no_install)
                    versions["couchbase SDK"] = version_of(
                        py, "import couchbase; print(couchbase.__version__)")
                    conn = {"host": mock.host, "kv_port": mock.kv_port, "username": mock.info["username"],
                            "password": mock.info["password"]}
                    workers[c] = Worker(c, py, conn, client_cpu, tempfile.gettempdir(), peers.clean_env(),
                                        script="_aio_worker.py")
                else:
                    conn = {"host": mock.host, "port": mock.port}
                    workers[c] = Worker(c, client_python(), conn, client_cpu, str(snapshot), ours_env,
                                        script="_aio_worker.py")
                workers[c].call(cmd="populate", size=SIZE, items=ITEMS)
                active.append(c)
            except Exception as exc:
                errors.append("%s: cannot run: %s" % (c, exc))
                log("!! %s" % errors[-1])

        def measure(w, c, rep):
            if c == "sync" and w == "gather1000":
                return None  # no sync form
            return workers[c].call(cmd="run", workload=w, size=SIZE, items=ITEMS, duration=duration,
                                   warmup=warmup if rep == 0 else 0.05)

        results, _ = round_robin(workloads, active, repeats, measure, WORKLOADS.get, errors)
    finally:
        for wk in workers.values():
            wk.stop()
        if mock is not None:
            mock.stop()
        shutil.rmtree(snapshot, ignore_errors=True)
    meta = run_meta("aio_bench.py", argv, lcb=lcb, client_cpu=client_cpu or "any",
                    server_cpu=server_cpu or "any", duration=duration, warmup=warmup, repeats=repeats,
                    versions=versions)
    md = render(results, active, workloads, errors, meta)
    print(md)
    if args.out:
        args.out.write_text(md)
        log("wrote %s" % args.out)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
