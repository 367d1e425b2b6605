"""One Connection shared by 8 threads mixing every operation, stats included,
while another thread closes it at a random moment: every call returns its
own correct result or, once closed, the closed-connection error; nothing
crashes or hangs. Stats gather every node's reply even while other threads'
calls keep breaking the event loop out.

COUCHBASE_LCB_STRESS_SECONDS sets how long the mixed run lasts (default 60,
as the safety issue asks; a soak run can go longer)."""

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from threads_util import run_threads

from couchbase import FMT_PLAIN, Couchbase
from couchbase.exceptions import ConnectError, KeyExistsError, NotFoundError

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)

NODES = 3
STRESS_SECONDS = float(os.environ.get("COUCHBASE_LCB_STRESS_SECONDS", "60"))


@pytest.fixture(scope="module")
def nodes3():
    """A 3-node mock cluster in a process of its own: 8 busy client threads
    cannot starve it, and it runs at full speed when the tests run under
    valgrind."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "couchbase.mock", "--nodes", str(NODES), "--bucket", "default"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        info = json.loads(line[len("READY "):])
        yield SimpleNamespace(host=info["host"], port=info["port"])
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _connect(cluster):
    # generous timeouts: the machine may be loaded, or the run under valgrind
    # (a hang still fails: run_threads gives up on a thread after two minutes)
    return Couchbase.connect(password="", bucket="default", timeout=60, connect_timeout=60,
                             connection_string=f"couchbase://{cluster.host}:{cluster.port}=http/default"
                             "?config_node_timeout=60")


def _check_stats(stats):
    assert len(stats["curr_items"]) == NODES, stats["curr_items"]
    assert all(isinstance(v, int) for v in stats["curr_items"].values())


def _mixed_step(conn, rnd, mine, i):
    """One randomly chosen operation on this thread's own keys, its result checked."""
    choice = rnd.randrange(13)
    if choice == 0:
        conn.set(mine, {"i": i})
        assert conn.get(mine) == {"i": i}
    elif choice == 1:
        keys = [f"{mine}:{j}" for j in range(4)]
        conn.set({k: [i, j] for j, k in enumerate(keys)})
        assert conn.get(keys) == [[i, j] for j in range(4)]
    elif choice == 2:
        conn.delete(f"{mine}:add", quiet=True)
        conn.add(f"{mine}:add", i)
        with pytest.raises(KeyExistsError):
            conn.add(f"{mine}:add", i)
    elif choice == 3:
        conn.set(f"{mine}:rep", 0)
        conn.replace(f"{mine}:rep", i)
        assert conn.get(f"{mine}:rep") == i
        with pytest.raises(NotFoundError):
            conn.replace(f"{mine}:never", i)
    elif choice == 4:
        conn.set(f"{mine}:cat", b"b", format=FMT_PLAIN)
        conn.append(f"{mine}:cat", b"c")
        conn.prepend(f"{mine}:cat", b"a")
        assert conn.get(f"{mine}:cat") == b"abc"
    elif choice == 5:
        conn.delete(f"{mine}:n", quiet=True)
        assert conn.incr(f"{mine}:n", initial=10) == 10
        assert conn.incr(f"{mine}:n", amount=5) == 15
        assert conn.decr(f"{mine}:n", amount=3) == 12
    elif choice == 6:
        conn.set(f"{mine}:del", i)
        assert conn.delete(f"{mine}:del") is True
        assert conn.get(f"{mine}:del", quiet=True) is None
    elif choice == 7:
        conn.set(f"{mine}:t", i)
        assert conn.touch(f"{mine}:t", 100) is True
        assert conn.get(f"{mine}:t", ttl=200) == i
    elif choice == 8:
        conn.set(f"{mine}:l", i)
        result = conn.lock(f"{mine}:l", ttl=5)
        assert result.value == i
        assert conn.unlock(f"{mine}:l", result.cas) is True
    elif choice == 9:
        _check_stats(conn.stats())
    elif choice == 10:
        both = conn.stats(["memory", ""])
        assert len(both["mem_used"]) == NODES and len(both["curr_items"]) == NODES
    elif choice == 11:
        value = bytes([i % 256]) * rnd.randrange(16_000, 40_000)
        conn.set(f"{mine}:big", value, format=FMT_PLAIN)
        assert conn.get(f"{mine}:big") == value
    else:
        assert conn.get([f"{mine}:missing", mine], quiet=True)[0] is None


def _round(cluster, prefix, seconds, rnd):
    """8 threads mix operations on one Connection; another closes it at a
    random moment. Returns how many calls ran."""
    conn = _connect(cluster)
    started = threading.Barrier(9)
    steps = [0] * 8

    def worker(t):
        wrnd = random.Random(rnd.random())
        mine = f"{prefix}:{t}"
        started.wait()
        end = time.monotonic() + seconds + 5
        try:
            while time.monotonic() < end:
                _mixed_step(conn, wrnd, mine, steps[t])
                steps[t] += 1
        except ConnectError as e:
            assert "closed" in str(e), e
            assert conn.closed
            with pytest.raises(ConnectError, match="closed"):
                conn.get(mine)
            return
        raise AssertionError("the connection was not closed in time")

    def closer():
        started.wait()
        time.sleep(rnd.uniform(0.05, seconds))
        conn.close()

    closing = threading.Thread(target=closer, daemon=True)
    closing.start()
    run_threads(worker, 8, timeout=seconds + 120)
    closing.join(30)
    assert not closing.is_alive()
    return sum(steps)


def test_8_threads_mix_every_operation_while_close_races(nodes3, key):
    rnd = random.Random(key)
    deadline = time.monotonic() + STRESS_SECONDS
    rounds = calls = 0
    while rounds == 0 or time.monotonic() < deadline:
        calls += _round(nodes3, f"{key}:{rounds}", min(4.0, max(0.5, deadline - time.monotonic())), rnd)
        rounds += 1
    assert calls > 0


def test_stats_gathers_every_node_while_other_threads_call(nodes3, key):
    # other threads' replies break the event loop out while the stats are
    # outstanding (their nodes answer late): stats still waits for all nodes
    conn = _connect(nodes3)
    stop = threading.Event()

    def busy(t):
        while not stop.is_set():
            conn.set(f"{key}:{t}", t)
            assert conn.get(f"{key}:{t}") == t

    def stats_calls(t):
        try:
            for _ in range(100):
                _check_stats(conn.stats())
        finally:
            stop.set()

    try:
        run_threads(lambda t: stats_calls(t) if t == 0 else busy(t), 8)
    finally:
        conn.close()
