#!/usr/bin/env python3
"""The beyond-0.9 operations, this binding beside the official SDK, in one run against
the same 3-node mock (two replicas): exists, lookup_in of 2 paths, mutate_in of 1 path,
a MAJORITY durable set and a replica read (``get(replica=True)`` / ``get_any_replica``),
one call at a time. Reports client CPU µs per operation and operations per second
(median of the repeats), and the ratio to the SDK (target: ≤ 1/3).

    .venv/bin/python bench/features.py [--seconds 2] [--repeats 3] [--out bench/features.md]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, MockProcess, client_python, cpu_sets, peers, pinned

WORKLOADS = ["exists", "lookup_in", "mutate_in", "set_majority", "replica_get"]
LABELS = {"exists": "exists", "lookup_in": "lookup_in, 2 paths", "mutate_in": "mutate_in, 1 path",
          "set_majority": "set, durability MAJORITY (3 nodes)", "replica_get": "replica read (any copy)"}
WORKER = str(Path(__file__).resolve().parent / "_features_worker.py")


def run_client(client, py, conn, seconds, cpus, cwd, env):
    cmd = [py, WORKER, client, json.dumps(conn), ",".join(WORKLOADS), str(seconds)]
    out = subprocess.run(pinned(cmd, cpus), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (client, out.stderr[-2000:]))
    return {r["workload"]: r for r in map(json.loads, out.stdout.splitlines())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    server_cpu, client_cpu = cpu_sets()
    mock = MockProcess(server_cpu, extra=["--nodes", "3", "--replicas", "2"])
    try:
        conn = {"host": mock.host, "port": mock.port, "kv_port": mock.kv_port,
                "username": mock.info["username"], "password": mock.info["password"]}
        sdk_py = peers.ensure("couchbase")
        runs = {"ours": [], "sdk": []}
        for _ in range(args.repeats):  # the clients take turns
            runs["ours"].append(run_client("ours", client_python(), conn, args.seconds, client_cpu,
                                           str(REPO), None))
            runs["sdk"].append(run_client("sdk", sdk_py, conn, args.seconds, client_cpu,
                                          tempfile.gettempdir(), peers.clean_env()))
    finally:
        mock.stop()
    lines = ["| workload | ours µs CPU/op | ours ops/s | SDK %s µs CPU/op | SDK ops/s | ours / SDK CPU "
             "| ≤ 1/3 |" % peers.version("couchbase"), "|---|---:|---:|---:|---:|---:|---|"]
    for w in WORKLOADS:
        cpu = {c: statistics.median(r[w]["cpu"] / r[w]["calls"] * 1e6 for r in runs[c]) for c in runs}
        ops = {c: statistics.median(r[w]["calls"] / r[w]["elapsed"] for r in runs[c]) for c in runs}
        ratio = cpu["ours"] / cpu["sdk"]
        lines.append("| %s | %.1f | %.0f | %.1f | %.0f | %.2f | %s |" % (
            LABELS[w], cpu["ours"], ops["ours"], cpu["sdk"], ops["sdk"], ratio,
            "met" if ratio <= 1 / 3 else "**missed**"))
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(
            "# Beyond-0.9 operations: this binding and the official SDK\n\n"
            "Made with `.venv/bin/python bench/features.py --out bench/features.md` (%d × %.1f s per "
            "workload and client, median; 3-node mock, two replicas, client pinned to its own CPU where "
            "possible). Target: ours ≤ 1/3 of the SDK's CPU per operation in every row.\n\n%s\n"
            % (args.repeats, args.seconds, table))


if __name__ == "__main__":
    sys.exit(main())
