"""libcouchbase's benchmark client, cbc-pillowfight, against a three-node mock.

Pillowfight does not report failed operations itself, so the mock's own count of
non-success replies proves the runs were clean.
"""

import resource
import subprocess
import time

import pytest
from mock_helpers import find_tool

from couchbase.mock import kv

OPS = 100_000
HANDSHAKE_STATUSES = {0x21}  # SASL "continue" is part of every SCRAM exchange


def pillowfight(connstr, batch, cycles, threads=1, set_pct=50, populate=True, extra=()):
    args = [find_tool("cbc-pillowfight"), "-U", connstr, "-u", "Administrator", "-P", "password",
            "-I", "1000", "-B", str(batch), "-c", str(cycles), "-t", str(threads), "-r", str(set_pct),
            "-m", "64", "-M", "256", "-D", "enable_tracing=false", "-D", "enable_operation_metrics=false"]
    if not populate:
        args.append("-n")
    return subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    problems = [line for line in err.splitlines()
                if line.strip() and not line.startswith(("OPS/SEC", "Running", "Populating"))]
    assert proc.returncode == 0 and not problems, (proc.returncode, problems[:10])


def errors_since(before):
    now = dict(kv.STATUS_COUNTS)
    return {hex(k): now[k] - before.get(k, 0) for k in now
            if now[k] != before.get(k, 0) and k not in HANDSHAKE_STATUSES}


def test_pillowfight_100k_mixed_ops(shared3):
    """100,000 mixed get/set operations per run, batch 100 and batch 1, HTTP and CCCP bootstrap."""
    before = dict(kv.STATUS_COUNTS)
    stores = {b.name: b.store for b in shared3.core.buckets.values()}
    counted = ("cmd_get", "cmd_set", "touch_hits", "touch_misses")  # pillowfight's get is a GAT
    ops_before = sum(stores["default"].stats[k] for k in counted)
    procs = [
        pillowfight(shared3.connstr(), 100, OPS // 100),
        pillowfight(shared3.kv_connstr(node=2), 100, OPS // 100),
        # batch 1 is one round trip per operation: spread it over 4 client threads
        pillowfight(shared3.connstr(), 1, OPS // 4, threads=4),
        pillowfight(shared3.kv_connstr(node=1), 1, OPS // 4, threads=4),
    ]
    for proc in procs:
        finish(proc)
    assert errors_since(before) == {}
    assert sum(stores["default"].stats[k] for k in counted) - ops_before >= 4 * OPS


def test_pillowfight_pipelined_get_throughput(shared3):
    """At least 30,000 pipelined gets (batch 100) per second of the mock's single core.

    The rate is taken over this process's CPU time (the mock's thread does the work; the test
    thread only waits), so a busy machine does not make the figure flaky; the wall-clock rate
    is printed and only checked loosely.
    """
    finish(pillowfight(shared3.kv_connstr(), 100, 10, set_pct=100))  # populate 1000 items
    before = dict(kv.STATUS_COUNTS)
    cpu0 = _cpu()
    start = time.perf_counter()
    finish(pillowfight(shared3.kv_connstr(), 100, OPS // 100, set_pct=0, populate=False))
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu0
    assert errors_since(before) == {}
    print("pipelined gets: %.0f ops/s wall, %.0f ops per CPU-second (%.1f us/op)"
          % (OPS / elapsed, OPS / cpu, cpu / OPS * 1e6))
    assert OPS / cpu >= 30_000, "only %.0f gets per CPU-second" % (OPS / cpu)
    assert OPS / elapsed >= 10_000, "only %.0f gets/s" % (OPS / elapsed)


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("bootstrap", ["http", "cccp"])
def test_pillowfight_survives_failover(mock3, bootstrap):
    """Operations keep succeeding while a node is failed over and another added."""
    cs = mock3.connstr() if bootstrap == "http" else mock3.kv_connstr()
    proc = pillowfight(cs, 10, 3000, extra=["-D", "timeout=10"])
    time.sleep(0.3)
    mock3.failover(2)
    time.sleep(0.3)
    mock3.add_node()
    finish(proc)
