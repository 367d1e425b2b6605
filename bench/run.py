#!/usr/bin/env python3
"""The benchmark: this binding side by side with cbc-pillowfight, the official SDK 4.x and pylibmc.

    python bench/run.py [--quick] [--out bench/results.md]

Starts what it needs (a mock cluster process, a memcached), runs every workload (get and set,
1 key and 100 keys per call, 16 B / 1 KiB / 100 KiB values) for every client in turn, repeats
it (median of 5), prints a Markdown table with ops/s, client CPU microseconds per operation
(user + system time of the client process alone, from the OS) and the ratios, then stops what
it started. See bench/README.md for what is compared and how.

It may create two virtualenvs under ~/.cache/couchbase-lcb (the official SDK, pylibmc) with
pip if they are missing (say so first); it installs no system packages: bench/setup.sh does
(memcached, libmemcached-dev). A client that cannot run is reported in the table, not fatal.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MemcachedProcess,
    MockProcess,
    Worker,
    binding_identity,
    client_python,
    cpu_sets,
    fmt_cpu,
    fmt_flt,
    fmt_ops,
    lcb_version,
    log,
    md_row,
    peers,
    pinned,
    render_header,
    round_robin,
    run_meta,
    snapshot_package,
    version_of,
)

SIZES = (16, 1024, 102400)
WORKLOADS = [(op, batch) for batch in (1, 100) for op in ("get", "set")]
CLIENT_LABELS = {
    "ours": "this binding",
    "baseline": "this binding, baseline build",
    "pillowfight": "cbc-pillowfight",
    "sdk": "official SDK %s" % peers.version("couchbase"),
    "pylibmc": "pylibmc (memcached)",
}


def size_label(size):
    if size >= 1024 and size % 1024 == 0:
        return "%d KiB" % (size // 1024)
    return "%d B" % size


# ---------------------------------------------------------------------------
# cbc-pillowfight: one process per measurement, CPU from wait4()


class Pillowfight:
    """libcouchbase's own C benchmark, configured like the binding: tracing, operation
    metrics and collections off, the select I/O plugin (the binding's), one thread. Its get is a
    get-and-touch (opcode 0x1d) whatever the options; its CPU comes from wait4() minus the
    median of three 1-cycle runs (process start, bootstrap, teardown)."""

    def __init__(self, exe, mock, cpus, io="select", tls=False):
        self.exe = exe
        self.cpus = cpus
        where = "couchbase://%s:%d=http/default" % (mock.host, mock.port)
        if tls:  # the same TLS KV port and CA as the binding
            where = "couchbases://%s:%d=mcds/default?truststorepath=%s" % (
                mock.host, mock.info["kv_tls_ports"][0], mock.info["ca_path"])
        self.base = [
            exe,
            "-U",
            where,
            "-t",
            "1",
            "-D",
            "enable_tracing=false",
            "-D",
            "enable_operation_metrics=false",
            "-D",
            "enable_collections=false",
        ]
        self.env = dict(os.environ)
        if io:
            self.env["LIBCOUCHBASE_EVENT_PLUGIN_NAME"] = io
        self.populated = set()
        self.rates = {}
        self.baselines = {}

    @staticmethod
    def prefix(size):
        return "pf:%d:" % size

    def _run(self, args):
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as errf:
            proc = subprocess.Popen(
                pinned(self.base + args, self.cpus), stdout=subprocess.DEVNULL, stderr=errf, env=self.env
            )
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = (
                os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
            )
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                errf.seek(0)
                raise RuntimeError(
                    "cbc-pillowfight %s exited %s: %s"
                    % (" ".join(args), proc.returncode, errf.read().decode(errors="replace")[-800:])
                )
        return {"elapsed": elapsed, "utime": ru.ru_utime, "stime": ru.ru_stime, "minflt": ru.ru_minflt}

    def _keys_args(self, size, items):
        """The key space and value size, the same for populating and for a run."""
        return ["-I", str(items), "-p", self.prefix(size), "-m", str(size), "-M", str(size)]

    def _args(self, op, batch, size, items, cycles):
        return ["-B", str(batch), *self._keys_args(size, items), "-r", "0" if op == "get" else "100",
                "-c", str(cycles), "-n"]

    def populate(self, size, items):
        if (size, items) not in self.populated:
            self._run(
                ["--populate-only", "-B", "100", *self._keys_args(size, items)]
            )
            self.populated.add((size, items))

    def _baseline(self, op, batch, size, items):
        key = (op, batch, size)
        if key not in self.baselines:
            runs = [self._run(self._args(op, batch, size, items, 1)) for _ in range(3)]
            self.baselines[key] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        return self.baselines[key]

    def measure(self, op, batch, size, items, duration):
        self.populate(size, items)
        base = self._baseline(op, batch, size, items)
        key = (op, batch, size)
        if key not in self.rates:  # calibrate: a short run gives the rate for the real one
            n = (400 if batch == 1 else 3000) if size <= 1024 else (100 if batch == 1 else 300)
            cycles = max(2, n // batch)
            r = self._run(self._args(op, batch, size, items, cycles))
            self.rates[key] = (cycles - 1) * batch / max(r["elapsed"] - base["elapsed"], 1e-3)
        cycles = max(2, int(math.ceil(self.rates[key] * duration * 1.1 / batch)))
        r = self._run(self._args(op, batch, size, items, cycles))
        ops = (cycles - 1) * batch  # the baseline ran one cycle too
        res = {
            "ops": ops,
            "calls": cycles - 1,
            "elapsed": r["elapsed"] - base["elapsed"],
            "utime": r["utime"] - base["utime"],
            "stime": r["stime"] - base["stime"],
            "minflt": r["minflt"] - base["minflt"],
        }
        self.rates[key] = ops / max(res["elapsed"], 1e-3)
        return res


# ---------------------------------------------------------------------------


def ratio(results, row, a, b):
    ra, rb = results.get((row, a)), results.get((row, b))
    if not ra or not rb or "cpu_us" not in ra or "cpu_us" not in rb:
        return None
    return ra["cpu_us"] / rb["cpu_us"]


def row_label(row):
    op, batch, size = row
    return "%s %d × %s" % (op, batch, size_label(size))


def render(results, clients, errors, meta):
    lines = render_header(meta, "servers", "%d keys per size" % meta["items"])
    lines.append("")
    lines.append(
        "Client CPU µs per operation (user+sys of the client process, one key = one "
        "operation) and operations per second; ratios are CPU per op, ours / other (below 1: "
        "ours costs less)."
    )
    lines.append("")
    head = ["workload"]
    for c in clients:
        head += ["%s µs/op" % CLIENT_LABELS[c], "ops/s"]
    others = [c for c in ("pillowfight", "sdk", "pylibmc") if c in clients]
    head += [
        "ours / %s" % {"pillowfight": "pillowfight", "sdk": "SDK", "pylibmc": "pylibmc"}[c]
        for c in others
        if "ours" in clients
    ]
    lines.append(md_row(head))
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for row in meta["rows"]:
        op, batch, size = row
        cells = ["%s %s × %s" % (op, "1 key" if batch == 1 else "%d keys" % batch, size_label(size))]
        for c in clients:
            r = results.get((row, c))
            if r is None or "cpu_us" not in r:
                cells += ["—", "—"]
            else:
                cells += [fmt_cpu(r["cpu_us"]), fmt_ops(r["ops_s"])]
        if "ours" in clients:
            for c in others:
                v = ratio(results, row, "ours", c)
                cells.append("—" if v is None else "%.2f" % v)
        lines.append(md_row(cells))
    lines.append("")
    lines.append(
        "User + system µs per op (Linux splits the exact total by tick sampling, so only the sum is "
        "exact), ± half the max-min spread of the repeats, and minor page faults per op:"
    )
    lines.append("")
    lines.append("| workload | " + " | ".join(CLIENT_LABELS[c] for c in clients) + " |")
    lines.append("|---|" + "|".join(["---:"] * len(clients)) + "|")
    for row in meta["rows"]:
        op, batch, size = row
        cells = [row_label(row)]
        for c in clients:
            r = results.get((row, c))
            cells.append(
                "—"
                if not r or "cpu_us" not in r
                else "%s + %s (±%.0f%%), %s flt"
                % (
                    fmt_cpu(r["user_us"]),
                    fmt_cpu(r["sys_us"]),
                    r["spread_pct"] / 2,
                    fmt_flt(r.get("faults_per_op", 0)),
                )
            )
        lines.append(md_row(cells))
    lines.append("")
    lines.extend(render_targets(results, meta["rows"]))
    if errors:
        lines.append("")
        lines.append("Failures:")
        lines.append("")
        for e in errors:
            lines.append("- " + e)
    return "\n".join(lines) + "\n"


def render_targets(results, rows):
    """The issue's targets on client CPU per operation, worst row first."""
    checks = [
        (
            "100-key batches: ours ≤ 1.3 × cbc-pillowfight (batch 100)",
            "pillowfight",
            1.3,
            [r for r in rows if r[1] == 100],
        ),
        (
            "100-key get: ours ≤ pylibmc get_multi per key",
            "pylibmc",
            1.0,
            [r for r in rows if r[1] == 100 and r[0] == "get"],
        ),
        (
            "one key per call: ours ≤ 1.5 × cbc-pillowfight (batch 1)",
            "pillowfight",
            1.5,
            [r for r in rows if r[1] == 1],
        ),
        ("every workload: ours ≤ 1/3 × official SDK 4.x", "sdk", 1 / 3, rows),
    ]
    out = [
        "Targets (client CPU per op):",
        "",
        "| target | rows | worst ours/other | met |",
        "|---|---:|---:|---|",
    ]
    for label, other, limit, rs in checks:
        vals = [(ratio(results, r, "ours", other), r) for r in rs]
        vals = [(v, r) for v, r in vals if v is not None]
        if not vals:
            out.append("| %s | 0 | — | not measured |" % label)
            continue
        worst, wrow = max(vals)
        bad = [r for v, r in vals if v > limit]
        met = (
            "met"
            if not bad
            else "not met (%d of %d rows: %s)"
            % (len(bad), len(vals), ", ".join("%s %d × %s" % (r[0], r[1], size_label(r[2])) for r in bad))
        )
        out.append(
            "| %s | %d | %.2f (%s %d × %s) | %s |"
            % (label, len(vals), worst, wrow[0], wrow[1], size_label(wrow[2]), met)
        )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 0.5 s per measurement, 2 repeats")
    ap.add_argument("--out", type=Path, help="also write the Markdown here (and the raw figures as .json)")
    ap.add_argument("--duration", type=float, help="seconds per measurement (default 2.5; quick 0.5)")
    ap.add_argument("--repeats", type=int, help="repeats, the median is reported (default 5; quick 2)")
    ap.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="value sizes in bytes (default %(default)s)"
    )
    ap.add_argument("--items", type=int, default=1000, help="keys per value size (default %(default)s)")
    ap.add_argument(
        "--clients",
        default="ours,pillowfight,sdk,pylibmc",
        help="which clients, in order (default %(default)s)",
    )
    ap.add_argument("--workloads", default="get1,set1,get100,set100", help="default %(default)s")
    ap.add_argument("--no-install", action="store_true", help="never create the SDK / pylibmc venvs")
    ap.add_argument(
        "--pillowfight-io",
        default="select",
        help="libcouchbase I/O plugin for cbc-pillowfight (default select, as the binding; "
        "'' for libcouchbase's default)",
    )
    ap.add_argument("--tls", action="store_true",
                    help="over TLS: the mock serves TLS (--tls), this binding and cbc-pillowfight "
                         "connect to its TLS KV port verifying its CA (the SDK and pylibmc rows stay plain)")
    ap.add_argument("--pylibmc-binary", action="store_true", help="pylibmc over the binary protocol")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="a directory holding another build's couchbase package (say, before a change): "
        "measured as client 'baseline' beside this binding, taking turns in the same run",
    )
    args = ap.parse_args(argv)

    duration = args.duration or (0.5 if args.quick else 2.5)
    repeats = args.repeats or (2 if args.quick else 5)
    warmup = 0.1 if args.quick else 0.3
    sizes = [int(s) for s in args.sizes.split(",") if s]
    clients = [c for c in args.clients.split(",") if c]
    if args.baseline is not None and "baseline" not in clients:
        clients.insert(clients.index("ours") + 1 if "ours" in clients else 0, "baseline")
    wl = {"get1": ("get", 1), "set1": ("set", 1), "get100": ("get", 100), "set100": ("set", 100)}
    workloads = [wl[w] for w in args.workloads.split(",") if w]
    rows = [(op, batch, size) for (op, batch) in workloads for size in sizes]
    server_cpu, client_cpu = cpu_sets()
    errors = []
    started = []
    active = []
    workers = {}
    pillowfight = None
    mock = memcached = None
    results, reps = {}, {}
    lcb = "?"
    versions = {}
    snapshot = snapshot_package()
    identity = binding_identity(snapshot)
    try:
        log("measuring %s (a copy in %s); starting the mock cluster ..." % (identity, snapshot))
        mock = MockProcess(server_cpu, extra=["--tls"] if args.tls else [], pythonpath=snapshot)
        started.append(mock)
        ours_py = client_python()
        versions["this binding"] = identity
        lcb = lcb_version(snapshot)
        for c in clients:
            try:
                if c in ("ours", "baseline"):
                    package = snapshot if c == "ours" else args.baseline.resolve()
                    if not (package / "couchbase").is_dir():
                        raise RuntimeError("no couchbase package in %s" % package)
                    conn = {"host": mock.host, "port": mock.port, "bucket": "default", "bucket_password": ""}
                    if args.tls:
                        conn.update(ca_path=mock.info["ca_path"], kv_tls_port=mock.info["kv_tls_ports"][0])
                    env = dict(os.environ, PYTHONPATH=str(package))
                    workers[c] = Worker(c, ours_py, conn, client_cpu, str(package), env, kind="ours")
                    if c == "baseline":
                        # (its git commit is this checkout's: only the module's hash says which build)
                        versions["baseline build"] = binding_identity(package).split(", ")[-1]
                elif c == "sdk":
                    py = peers.ensure("couchbase", not args.no_install)
                    versions["couchbase SDK"] = version_of(
                        py, "import couchbase; print(getattr(couchbase, '__version__', '?'))"
                    )
                    conn = {
                        "host": mock.host,
                        "kv_port": mock.kv_port,
                        "username": mock.info["username"],
                        "password": mock.info["password"],
                        "bucket": "default",
                    }
                    workers[c] = Worker(c, py, conn, client_cpu, tempfile.gettempdir(), peers.clean_env())
                elif c == "pylibmc":
                    py = peers.ensure("pylibmc", not args.no_install)
                    versions["pylibmc"] = version_of(py, "import pylibmc; print(pylibmc.__version__)")
                    memcached = MemcachedProcess(server_cpu)
                    started.append(memcached)
                    versions["memcached"] = memcached.version.replace("memcached ", "")
                    conn = {"host": "127.0.0.1", "port": memcached.port, "binary": args.pylibmc_binary}
                    workers[c] = Worker(c, py, conn, client_cpu, tempfile.gettempdir(), peers.clean_env())
                elif c == "pillowfight":
                    exe = shutil.which("cbc-pillowfight")
                    if not exe:
                        raise RuntimeError(
                            "cbc-pillowfight not found (scripts/install-libcouchbase builds it)"
                        )
                    pillowfight = Pillowfight(exe, mock, client_cpu, args.pillowfight_io or None, args.tls)
                    versions["cbc-pillowfight"] = "libcouchbase %s, I/O %s" % (
                        lcb,
                        args.pillowfight_io or "default",
                    )
                else:
                    raise RuntimeError("unknown client")
                active.append(c)
            except Exception as exc:
                errors.append("%s: cannot run: %s" % (c, exc))
                log("!! %s" % errors[-1])

        for c in active:
            results_c = 0
            for size in sizes:
                try:
                    if c == "pillowfight":
                        pillowfight.populate(size, args.items)
                    else:
                        workers[c].call(cmd="populate", size=size, items=args.items)
                except Exception as exc:
                    errors.append("%s: populate %s: %s" % (c, size_label(size), exc))
                    log("!! %s" % errors[-1])
                    results_c += 1

        def measure(row, c, rep):
            op, batch, size = row
            if c == "pillowfight":
                return pillowfight.measure(op, batch, size, args.items, duration)
            return workers[c].call(cmd="run", op=op, batch=batch, size=size, items=args.items,
                                   duration=duration, warmup=warmup if rep == 0 else 0.05)

        results, reps = round_robin(rows, active, repeats, measure, row_label, errors)
    finally:
        for w in workers.values():
            w.stop()
        for p in started:
            p.stop()
        shutil.rmtree(snapshot, ignore_errors=True)

    meta = run_meta(
        "run.py",
        argv,
        lcb=lcb,
        client_cpu=client_cpu or "any",
        server_cpu=server_cpu or "any",
        duration=duration,
        warmup=warmup,
        repeats=repeats,
        items=args.items,
        tls=args.tls,
        versions=versions,
        rows=rows,
    )
    md = render(results, active, errors, meta)
    print(md)
    if args.out:
        args.out.write_text(md)
        raw = {
            "meta": meta,
            "results": [
                {"op": r[0], "batch": r[1], "size": r[2], "client": c, **v} for (r, c), v in results.items()
            ],
            "repeats": [
                {"op": k[0][0], "batch": k[0][1], "size": k[0][2], "client": k[1], "runs": v}
                for k, v in reps.items()
                if v
            ],
        }
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
        log("wrote %s and %s" % (args.out, args.out.with_suffix(".json")))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
