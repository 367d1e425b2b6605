#!/usr/bin/env python3
"""Where the client time of this binding goes: perf (cpu-clock sampling) on the client process.

    python bench/profile.py [--duration 5] [--workloads get1,set1,get100,set100] [--size 16] [--out FILE]
                            [--client ours|sync|asyncio|uvloop]

Hardware counters are not available in this VM (``perf stat -e instructions`` says "not
supported"), so this samples the software cpu-clock event at 4999 Hz, kernel included, on the
client process only (attached with ``perf record -p`` after populate and warm-up, so only the
steady-state loop is sampled). Self time is grouped by shared object and by symbol:
kernel, libcouchbase, the Cython module (_lcb), the Python interpreter, libc (malloc/free,
memcpy), orjson. Needs perf (Debian package linux-perf) and runs as root (or with
perf_event_paranoid <= 1).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCH,
    MockProcess,
    binding_identity,
    client_python,
    cpu_sets,
    pinned,
    snapshot_package,
)

CHILD = r"""
import sys, time, json
sys.path.insert(0, %(bench)r)
from _worker import Ours, keys_for, value_of
conn, op, batch, size, duration = json.loads(sys.argv[1])
c = Ours(conn)
keys = keys_for("prof:%%d:" %% size, 1000)
value = value_of(size)
c.populate(keys, value)
c.loop(op, batch, keys, value, time.perf_counter() + 0.5)
print("GO", flush=True)
t0 = time.perf_counter()
calls = c.loop(op, batch, keys, value, t0 + duration)
el = time.perf_counter() - t0
print(json.dumps({"ops": calls * batch, "elapsed": el}), flush=True)
"""


# --client asyncio|uvloop|sync: the clients of bench/aio_bench.py (bench/_aio_worker.py),
# whose workloads include gather1000
AIO_CHILD = r"""
import sys, time, json
sys.path.insert(0, %(bench)r)
from _aio_worker import CLIENTS, WORKLOADS
from _worker import keys_for, value_of
conn, client, workload, size, duration = json.loads(sys.argv[1])
c = CLIENTS[client](conn)
keys = keys_for("prof:%%d:" %% size, 1000)
value = value_of(size)
c.populate(keys, value)
c.run(workload, keys, value, time.perf_counter() + 0.5)
print("GO", flush=True)
t0 = time.perf_counter()
calls = c.run(workload, keys, value, t0 + duration)
el = time.perf_counter() - t0
print(json.dumps({"ops": calls * WORKLOADS[workload][1], "elapsed": el}), flush=True)
"""


def category(dso, sym):
    d = dso.lower()
    if "kernel" in d or d.startswith("[k"):
        return "kernel"
    if "libcouchbase" in d:
        return "libcouchbase"
    if "_lcb" in d:
        return "binding (_lcb.so)"
    if "uvloop" in d or "loop.cpython" in d:
        return "uvloop"
    if "_asyncio" in d:
        return "asyncio (C)"
    if "orjson" in d:
        return "orjson"
    if "libc.so" in d or "libc-" in d:
        if re.search(r"mem(cpy|move|set)", sym):
            return "libc memcpy/memset"
        if re.search(r"malloc|free|calloc|realloc|_int_|tcache", sym):
            return "libc malloc/free"
        return "libc other"
    if "libpython" in d or re.search(r"python3(\.\d+)?$", d):
        return "Python interpreter"
    if "libstdc++" in d:
        return "libstdc++"
    return "other (%s)" % dso


def profile_one(mock, cpus, op, batch, size, duration, perf, snap, client="ours", workload=None):
    conn = {"host": mock.host, "port": mock.port, "bucket": "default", "bucket_password": ""}
    if client == "ours":
        code, params = CHILD % {"bench": str(BENCH)}, [conn, op, batch, size, duration]
    else:
        code, params = AIO_CHILD % {"bench": str(BENCH)}, [conn, client, workload, size, duration]
    env = dict(os.environ, PYTHONPATH=str(snap))
    child = subprocess.Popen(
        pinned([client_python(), "-c", code, json.dumps(params)], cpus),
        cwd=str(snap),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    if not line.startswith("GO"):
        child.wait()
        raise RuntimeError("profile child failed")
    data = tempfile.mktemp(prefix="bench-perf-", suffix=".data")
    rec = subprocess.Popen(
        [perf, "record", "-e", "cpu-clock", "-F", "4999", "-p", str(child.pid), "-o", data],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    summary = json.loads(child.stdout.readline())
    child.wait()
    rec.send_signal(signal.SIGINT)
    rec.wait()
    rep = subprocess.run(
        [
            perf,
            "report",
            "-i",
            data,
            "--stdio",
            "--no-children",
            "--sort",
            "dso,symbol",
            "--percent-limit",
            "0",
            "-F",
            "overhead,sample,dso,symbol",
        ],
        capture_output=True,
        text=True,
    ).stdout
    os.unlink(data)
    rows = []
    for ln in rep.splitlines():
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        m = re.match(r"\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.*)$", ln)
        if m:
            sym = re.sub(r"(\s+-)+$", "", re.sub(r"\s+", " ", m.group(5)).strip())
            rows.append((float(m.group(1)), int(m.group(2)), m.group(3), sym))
    return summary, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--workloads", default="get1,set1,get100,set100")
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--top", type=int, default=14)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--client", default="ours", choices=["ours", "sync", "asyncio", "uvloop"],
                    help="ours: bench/run.py's client; sync, asyncio, uvloop: bench/aio_bench.py's "
                    "(workloads get1, set1, gather1000, get100, set100)")
    args = ap.parse_args()
    perf = shutil.which("perf")
    if not perf:
        sys.exit("perf is not installed (apt-get install linux-perf)")
    server_cpu, client_cpu = cpu_sets()
    wl = {"get1": ("get", 1), "set1": ("set", 1), "get100": ("get", 100), "set100": ("set", 100),
          "gather1000": ("get", 1000)}
    snap = snapshot_package()
    mock = MockProcess(server_cpu, pythonpath=snap)
    out = [
        "Command: `python bench/profile.py --duration %g --workloads %s --size %d --client %s`"
        % (args.duration, args.workloads, args.size, args.client),
        "",
        "Measured: %s." % binding_identity(snap),
        "",
    ]
    try:
        for w in args.workloads.split(","):
            op, batch = wl[w]
            summary, rows = profile_one(mock, client_cpu, op, batch, args.size, args.duration, perf, snap,
                                        args.client, w)
            total = sum(r[1] for r in rows) or 1
            cats = defaultdict(float)
            for _pct, n, dso, sym in rows:
                cats[category(dso, sym)] += n
            us_per_op = total / 4999.0 / summary["ops"] * 1e6  # sampled CPU per op
            out.append(
                "### %s, %d key%s per call, %d B values: %.0f ops/s, ~%.2f µs sampled CPU per op"
                % (
                    op,
                    batch,
                    "" if batch == 1 else "s",
                    args.size,
                    summary["ops"] / summary["elapsed"],
                    us_per_op,
                )
            )
            out.append("")
            out.append("| where | share | µs/op |")
            out.append("|---|---:|---:|")
            for cat, n in sorted(cats.items(), key=lambda kv: -kv[1]):
                out.append("| %s | %.1f%% | %.2f |" % (cat, n / total * 100, n / total * us_per_op))
            out.append("")
            out.append("Top symbols (self):")
            out.append("")
            out.append("| share | object | symbol |")
            out.append("|---:|---|---|")
            for _pct, n, dso, sym in sorted(rows, key=lambda r: -r[1])[: args.top]:
                out.append("| %.1f%% | %s | `%s` |" % (n / total * 100, os.path.basename(dso), sym[:90]))
            out.append("")
            print("\n".join(out[-(len(cats) + args.top + 10) :]), file=sys.stderr, flush=True)
    finally:
        mock.stop()
        shutil.rmtree(snap, ignore_errors=True)
    md = "\n".join(out) + "\n"
    print(md)
    if args.out:
        args.out.write_text(md)


if __name__ == "__main__":
    main()
