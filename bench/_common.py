"""Shared by the bench/ scripts: paths, the mock cluster and memcached processes, CPU pinning,
the client worker processes, and the measuring and summing up that run.py and aio_bench.py
share (round-robin repeats, medians, the results table's header lines).

Standard library only: the scripts run with any Python 3.9+ (the clients themselves run in
their own environments, see run.py).
"""

import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PY = REPO / ".venv" / "bin" / "python"
sys.path.insert(0, str(REPO / "tools"))
import peers  # noqa: E402, F401  (re-exported: the peer clients' venvs and pinned versions)


def cpu_sets():
    """(server CPU list, client CPU list) for taskset, or (None, None) when pinning is off or
    impossible. Servers (mock, memcached) on CPU 0, the measured client on CPU 1."""
    if os.environ.get("BENCH_NO_PIN") or not shutil.which("taskset"):
        return None, None
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), str(cpus[1])


def pinned(cmd, cpus):
    return (["taskset", "-c", cpus] + list(cmd)) if cpus else list(cmd)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot_package():
    """Copy this checkout's ``couchbase`` package (with its compiled module) to a temporary
    directory and return that directory, for PYTHONPATH. The working tree is shared with
    people rebuilding _lcb.so meanwhile: a run measures one consistent build, and a rebuild
    cannot replace a module under a running process."""
    import tempfile

    dest = Path(tempfile.mkdtemp(prefix="couchbase-lcb-bench-"))
    shutil.copytree(
        REPO / "couchbase", dest / "couchbase", ignore=shutil.ignore_patterns("*.c", "__pycache__", "*.html")
    )
    return dest


def binding_identity(package_dir=None):
    """Which build is measured: git commit (+ whether the tree differs) and the module's hash."""
    import glob
    import hashlib

    base = Path(package_dir) if package_dir else REPO
    sos = sorted(glob.glob(str(base / "couchbase" / "_lcb*.so")))
    digest = hashlib.sha256(Path(sos[0]).read_bytes()).hexdigest()[:12] if sos else "none"
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "status",
                "--porcelain",
                "--",
                "couchbase/*.pyx",
                "couchbase/*.pxi",
                "couchbase/*.pxd",
                "couchbase/*.py",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        head, dirty = "?", ""
    return "git %s%s, _lcb.so sha256 %s" % (head, " + uncommitted changes" if dirty else "", digest)


def use_binding_snapshot():
    """For the scripts that run the binding in their own process (threads, memory): re-exec
    under the dev venv's python if needed, then import the binding from a snapshot (see
    snapshot_package). Returns the snapshot directory."""
    if (
        VENV_PY.exists()
        and Path(sys.prefix).resolve() != (REPO / ".venv").resolve()
        and not os.environ.get("BENCH_IN_VENV")
    ):
        os.execve(str(VENV_PY), [str(VENV_PY)] + sys.argv, dict(os.environ, BENCH_IN_VENV="1"))
    import atexit

    snap = snapshot_package()
    atexit.register(shutil.rmtree, str(snap), True)
    sys.path.insert(0, str(snap))
    for name in [m for m in sys.modules if m == "couchbase" or m.startswith("couchbase.")]:
        del sys.modules[name]
    import couchbase

    assert Path(couchbase.__file__).resolve().is_relative_to(snap.resolve()), couchbase.__file__
    return snap


def client_python():
    """The interpreter that has this repository's binding: the dev venv, else this one."""
    return str(VENV_PY) if VENV_PY.exists() else sys.executable


class MockProcess:
    """``python -m couchbase.mock`` in its own process; .info is its READY json."""

    def __init__(self, cpus=None, buckets=("default",), extra=(), pythonpath=None):
        cmd = [client_python(), "-m", "couchbase.mock"]
        for b in buckets:
            cmd += ["--bucket", b]
        cmd += list(extra)
        env = dict(os.environ, PYTHONPATH=str(pythonpath or REPO))
        self.proc = subprocess.Popen(
            pinned(cmd, cpus),
            cwd=str(pythonpath or REPO),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 60
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line or line.startswith("READY "):
                break
        if not line.startswith("READY "):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("the mock cluster did not start: %r %s" % (line, err[-2000:]))
        self.info = json.loads(line[len("READY ") :])
        self.host = self.info["host"]
        self.port = self.info["port"]
        self.kv_port = self.info["kv_ports"][0]

    def control(self, command, **params):
        """GET /mock/COMMAND?k=v on the management port; returns the JSON reply."""
        import base64
        import urllib.parse
        import urllib.request

        url = "http://%s:%d/mock/%s" % (self.host, self.port, command)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url)
        token = base64.b64encode(("%s:%s" % (self.info["username"], self.info["password"])).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read().decode())

    def cpu_seconds(self):
        return proc_cpu_seconds(self.proc.pid)

    def stop(self):
        stop_process(self.proc)


class MemcachedProcess:
    """A real memcached (Debian's) on 127.0.0.1 and a free port, one worker thread."""

    def __init__(self, cpus=None, memory_mb=1024):
        exe = shutil.which("memcached")
        if not exe:
            raise RuntimeError("memcached is not installed (run bench/setup.sh)")
        self.port = free_port()
        cmd = [exe, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", str(memory_mb), "-t", "1"]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]
        self.proc = subprocess.Popen(pinned(cmd, cpus), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("memcached exited: %s" % self.proc.stderr.read().decode()[-500:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("memcached did not listen on port %d" % self.port)
        self.version = subprocess.run([exe, "-V"], capture_output=True, text=True).stdout.strip()

    def stop(self):
        stop_process(self.proc)


def stop_process(proc, timeout=5):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def proc_cpu_seconds(pid):
    """user+system CPU seconds of a running process (all its threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid="self"):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def version_of(py, code):
    """What `code` prints under a peer's interpreter `py` (outside the checkout), or "?"."""
    r = subprocess.run(
        [py, "-c", code], cwd=tempfile.gettempdir(), env=peers.clean_env(), capture_output=True, text=True
    )
    return r.stdout.strip() if r.returncode == 0 else "?"


def lcb_version(package_dir):
    """The libcouchbase version the binding in package_dir (a snapshot_package) loads, or "?"."""
    r = subprocess.run(
        [client_python(), "-c", "from couchbase._lcb import libcouchbase_version as v; print(v()[0])"],
        cwd=str(package_dir),
        env=dict(os.environ, PYTHONPATH=str(package_dir)),
        capture_output=True,
        text=True,
    )
    return r.stdout.strip() or "?"


class Worker:
    """One long-lived client process (bench/_worker.py, or `script`) answering JSON commands."""

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


def cpu_us(r):
    """Client CPU microseconds per operation of one measurement."""
    return (r["utime"] + r["stime"]) / r["ops"] * 1e6


def summarize(reps):
    """The medians (and the CPU spread) of one workload's repeats for one client."""
    ops_s = [r["ops"] / r["elapsed"] for r in reps]
    cpu = [cpu_us(r) for r in reps]
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


def round_robin(rows, clients, repeats, measure, label, errors):
    """Measure every row `repeats` times, the clients taking turns within each repeat, so
    that a slow spell of the machine falls on all of them. measure(row, client, rep) is one
    measurement (a worker's "run" reply), or None where the client has no such workload; a
    client that fails a row is listed in `errors` and not asked for that row again.
    Returns (results: summarize() per (row, client), reps: the measurements)."""
    reps, results = {}, {}
    for row in rows:
        for rep in range(repeats):
            for c in clients:
                if reps.get((row, c), []) is None:
                    continue  # failed before
                try:
                    r = measure(row, c, rep)
                    if r is None:
                        continue
                    reps.setdefault((row, c), []).append(r)
                    log("%-18s %-12s rep %d: %9.0f ops/s %7.2f us/op"
                        % (label(row), c, rep + 1, r["ops"] / r["elapsed"], cpu_us(r)))
                except Exception as exc:
                    errors.append("%s, %s: %s" % (c, label(row), exc))
                    log("!! %s" % errors[-1])
                    reps[(row, c)] = None
        for c in clients:
            if reps.get((row, c)):
                results[(row, c)] = summarize(reps[(row, c)])
    return results, reps


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


def md_row(cells):
    return "| " + " | ".join(cells) + " |"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def run_meta(script, argv, **fields):
    """What a results table says about its run: the command (`script` and its arguments),
    the date, the CPU, Python; then `fields` (client_cpu, server_cpu, lcb, duration, warmup,
    repeats, versions, and whatever else the script reports)."""
    return {
        "command": "python bench/%s " % script
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": "%s, %d CPUs" % (cpu_model(), os.cpu_count() or 0),
        "python": platform.python_version(),
        **fields,
    }


def render_header(meta, servers, keys):
    """A results table's first lines, from run_meta(): the command; the date, machine,
    versions and CPU pinning (`servers`: what runs on the server CPU), the timing, and
    `keys` (the key space measured); the versions of everything measured."""
    return [
        "Command: `%s`" % meta["command"],
        "",
        "%s; %s; Python %s; libcouchbase %s; clients pinned to CPU %s, %s to CPU %s; "
        "%s s per measurement after %.1f s warm-up, median of %d; %s."
        % (meta["date"], meta["cpu"], meta["python"], meta["lcb"], meta["client_cpu"], servers,
           meta["server_cpu"], meta["duration"], meta["warmup"], meta["repeats"], keys),
        "Versions: %s." % ", ".join("%s %s" % kv for kv in meta["versions"].items()),
    ]
