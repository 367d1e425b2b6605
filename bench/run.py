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
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH,
    MemcachedProcess,
    MockProcess,
    binding_identity,
    client_python,
    cpu_sets,
    peers,
    pinned,
    snapshot_package,
    stop_process,
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


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def size_label(size):
    if size >= 1024 and size % 1024 == 0:
        return "%d KiB" % (size // 1024)
    return "%d B" % size


# ---------------------------------------------------------------------------
# Environments of the other clients


def version_of(py, code):
    r = subprocess.run(
        [py, "-c", code], cwd=tempfile.gettempdir(), env=peers.clean_env(), capture_output=True, text=True
    )
    return r.stdout.strip() if r.returncode == 0 else "?"


# ---------------------------------------------------------------------------
# Python clients: one long-lived worker process each (bench/_worker.py)


class Worker:
    def __init__(self, name, python, conn, cpus, cwd, env, kind=None, script="_worker.py"):
        cmd = pinned([python, str(BENCH / script), kind or name, json.dumps(conn)], cpus)
        self.name = name
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline()
        if not first:
            err = self.proc.stderr.read()
            raise RuntimeError("%s worker did not start: %s" % (name, err.strip()[-1500:]))
        self.module = json.loads(first).get("module")
        log("%s worker: %s" % (name, self.module))

    def call(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("%s worker died: %s" % (self.name, self.proc.stderr.read().strip()[-1500:]))
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError("%s: %s" % (self.name, reply["error"]))
        return reply

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            pass
        stop_process(self.proc)


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


def summarize(reps):
    ops_s = [r["ops"] / r["elapsed"] for r in reps]
    cpu = [(r["utime"] + r["stime"]) / r["ops"] * 1e6 for r in reps]
    usr = [r["utime"] / r["ops"] * 1e6 for r in reps]
    sys_ = [r["stime"] / r["ops"] * 1e6 for r in reps]
    flt = [r.get("minflt", 0) / r["ops"] for r in reps]
    med = statistics.median(cpu)
    spread = (max(cpu) - min(cpu)) / med * 100 if med else 0.0
    return {
        "ops_s": statistics.median(ops_s),
        "cpu_us": med,
        "user_us": statistics.median(usr),
        "sys_us": statistics.median(sys_),
        "faults_per_op": statistics.median(flt),
        "spread_pct": spread,
        "n": len(reps),
        "seconds": statistics.median(r["elapsed"] for r in reps),
    }


def fmt_ops(v):
    if v >= 100000:
        return "%.0fk" % (v / 1000)
    if v >= 10000:
        return "%.1fk" % (v / 1000)
    return "%.0f" % v


def fmt_cpu(v):
    return "%.1f" % v if v >= 10 else "%.2f" % v


def fmt_flt(v):
    return "%.0f" % v if v >= 10 else "%.2f" % v


def ratio(results, row, a, b):
    ra, rb = results.get((row, a)), results.get((row, b))
    if not ra or not rb or "cpu_us" not in ra or "cpu_us" not in rb:
        return None
    return ra["cpu_us"] / rb["cpu_us"]


def render(results, clients, errors, meta):
    lines = []
    lines.append("Command: `%s`" % meta["command"])
    lines.append("")
    lines.append(
        "%s; %s; Python %s; libcouchbase %s; clients pinned to CPU %s, servers to CPU %s; "
        "%s s per measurement after %.1f s warm-up, median of %d; %d keys per size."
        % (
            meta["date"],
            meta["cpu"],
            meta["python"],
            meta["lcb"],
            meta["client_cpu"],
            meta["server_cpu"],
            meta["duration"],
            meta["warmup"],
            meta["repeats"],
            meta["items"],
        )
    )
    lines.append("Versions: %s." % ", ".join("%s %s" % kv for kv in meta["versions"].items()))
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
    lines.append("| " + " | ".join(head) + " |")
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
        lines.append("| " + " | ".join(cells) + " |")
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
        cells = ["%s %s × %s" % (op, batch, size_label(size))]
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
        lines.append("| " + " | ".join(cells) + " |")
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
    results = {}
    versions = {}
    snapshot = snapshot_package()
    identity = binding_identity(snapshot)
    try:
        log("measuring %s (a copy in %s); starting the mock cluster ..." % (identity, snapshot))
        mock = MockProcess(server_cpu, extra=["--tls"] if args.tls else [], pythonpath=snapshot)
        started.append(mock)
        ours_py = client_python()
        versions["this binding"] = identity
        lcb = (
            subprocess.run(
                [ours_py, "-c", "from couchbase._lcb import libcouchbase_version as v; print(v()[0])"],
                cwd=str(snapshot),
                env=dict(os.environ, PYTHONPATH=str(snapshot)),
                capture_output=True,
                text=True,
            ).stdout.strip()
            or "?"
        )
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

        reps = {}
        for row in rows:
            op, batch, size = row
            for rep in range(repeats):
                for c in active:
                    if (row, c) in reps and reps[(row, c)] is None:
                        continue  # failed before
                    try:
                        if c == "pillowfight":
                            r = pillowfight.measure(op, batch, size, args.items, duration)
                        else:
                            r = workers[c].call(
                                cmd="run",
                                op=op,
                                batch=batch,
                                size=size,
                                items=args.items,
                                duration=duration,
                                warmup=warmup if rep == 0 else 0.05,
                            )
                        reps.setdefault((row, c), []).append(r)
                        log(
                            "%-4s %3d x %-7s %-12s rep %d: %9.0f ops/s %7.2f us/op"
                            % (
                                op,
                                batch,
                                size_label(size),
                                c,
                                rep + 1,
                                r["ops"] / r["elapsed"],
                                (r["utime"] + r["stime"]) / r["ops"] * 1e6,
                            )
                        )
                    except Exception as exc:
                        errors.append("%s, %s %d × %s: %s" % (c, op, batch, size_label(size), exc))
                        log("!! %s" % errors[-1])
                        reps[(row, c)] = None
            for c in active:
                if reps.get((row, c)):
                    results[(row, c)] = summarize(reps[(row, c)])
    finally:
        for w in workers.values():
            w.stop()
        for p in started:
            p.stop()
        shutil.rmtree(snapshot, ignore_errors=True)

    meta = {
        "command": "python bench/run.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": "%s, %d CPUs" % (cpu_model(), os.cpu_count() or 0),
        "python": platform.python_version(),
        "lcb": lcb if mock else "?",
        "client_cpu": client_cpu or "any",
        "server_cpu": server_cpu or "any",
        "duration": duration,
        "warmup": warmup,
        "repeats": repeats,
        "items": args.items,
        "tls": args.tls,
        "versions": versions,
        "rows": rows,
    }
    md = render(results, active, errors, meta)
    print(md)
    if args.out:
        args.out.write_text(md)
        raw = (
            {
                "meta": meta,
                "results": [
                    {"op": r[0], "batch": r[1], "size": r[2], "client": c, **v}
                    for (r, c), v in results.items()
                ],
                "repeats": [
                    {"op": k[0][0], "batch": k[0][1], "size": k[0][2], "client": k[1], "runs": v}
                    for k, v in reps.items()
                    if v
                ],
            }
            if "reps" in dir()
            else {}
        )
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
        log("wrote %s and %s" % (args.out, args.out.with_suffix(".json")))
    return 0 if not errors else 1


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


if __name__ == "__main__":
    sys.exit(main())
