"""A Connection inherited across os.fork(): the child's calls go over a
connection of its own (never the parent's sockets, locks or replies), get
their own correct results in time, and the parent's threads go on unaffected."""

import multiprocessing
import os
import signal
import socket
import stat
import threading
import time
import warnings

import pytest

from couchbase import Couchbase
from couchbase.exceptions import ConnectError
from couchbase.mock import MockCluster

pytestmark = [
    pytest.mark.sanitize,  # run under the sanitizers too (scripts/run-sanitized)
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() exists only on POSIX"),
]

CHILD_DEADLINE = 30  # seconds for a child's 100 operations, reopening included


def _fork():
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a multi-threaded process: what this tests
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _child_ops(conn, tag):
    """100 operations on keys of this child's own, each result checked."""
    for i in range(25):
        key = f"{tag}:{i}"
        conn.set(key, {"child": tag, "i": i})
        assert conn.get(key) == {"child": tag, "i": i}
        assert conn.incr(f"{key}:n", initial=i) == i
        assert conn.get([key, f"{tag}:missing"], quiet=True) == [{"child": tag, "i": i}, None]


def _in_child(body):
    """Run body in the child and leave with 0 only if it passed, before the
    deadline (SIGALRM kills a child that hangs)."""
    signal.alarm(CHILD_DEADLINE)
    code = 1
    try:
        body()
        code = 0
    except BaseException as e:
        os.write(2, f"child {os.getpid()}: {e!r}\n".encode())
    finally:
        os._exit(code)


def _wait(pids):
    """Every child exits 0 (the parent gives up on one after the deadline)."""
    failed = []
    for pid in pids:
        end = time.monotonic() + CHILD_DEADLINE + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > end:
                os.kill(pid, signal.SIGKILL)
                done, status = os.waitpid(pid, 0)
                break
            time.sleep(0.01)
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append((pid, os.waitstatus_to_exitcode(status)))
    assert not failed, failed


class ParentWorkers:
    """4 threads calling the parent's Connection, checking every result."""

    def __init__(self, conn, prefix):
        self.conn, self.prefix = conn, prefix
        self.stop = threading.Event()
        self.errors = []
        self.calls = [0] * 4
        self.threads = [threading.Thread(target=self._work, args=(t,), daemon=True) for t in range(4)]

    def _work(self, t):
        try:
            while not self.stop.is_set():
                key, i = f"{self.prefix}:{t}", self.calls[t]
                self.conn.set(key, {"parent": t, "i": i})
                assert self.conn.get(key) == {"parent": t, "i": i}
                assert self.conn.get([key, f"{key}:missing"], quiet=True) == [{"parent": t, "i": i}, None]
                self.calls[t] += 1
        except BaseException as e:
            self.errors.append(e)

    def __enter__(self):
        for th in self.threads:
            th.start()
        while min(self.calls) == 0 and not self.errors:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for th in self.threads:
            th.join(60)
        assert not any(th.is_alive() for th in self.threads), "a parent thread hangs"
        assert not self.errors, self.errors[:3]
        assert min(self.calls) > 0


def test_50_children_use_the_inherited_connection_while_4_parent_threads_work(cb, key):
    pids = []
    with ParentWorkers(cb, f"{key}:parent") as workers:
        for n in range(50):
            calls_before = sum(workers.calls)
            pid = _fork()
            if pid == 0:
                _in_child(lambda n=n: _child_ops(cb, f"{key}:child{n}"))
            pids.append(pid)
            # the next fork lands while the threads are in other calls
            while sum(workers.calls) < calls_before + 4 and not workers.errors:
                time.sleep(0.001)
            if len(pids) >= 8:  # at most 8 children at once on a small machine
                _wait(pids[:4])
                del pids[:4]
        _wait(pids)
    # each child's documents are its own, and the parent still reads them right
    for n in (0, 49):
        assert cb.get(f"{key}:child{n}:24") == {"child": f"{key}:child{n}", "i": 24}


_SHARED = None  # the parent's Connection, inherited by the Pool's workers


def _pool_task(n):
    _child_ops(_SHARED, f"{_SHARED.bucket}:{_pool_task.prefix}:{os.getpid()}:{n}")
    return os.getpid()


def test_multiprocessing_fork_pool_uses_the_inherited_connection(cb, key):
    global _SHARED
    _SHARED = cb
    _pool_task.prefix = key
    context = multiprocessing.get_context("fork")
    try:
        with ParentWorkers(cb, f"{key}:parent"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pool = context.Pool(4)
            with pool:
                workers = pool.map_async(_pool_task, range(8)).get(CHILD_DEADLINE + 30)
                assert len(workers) == 8
            pool.join()

            child = context.Process(target=_in_child, args=(lambda: _child_ops(cb, f"{key}:process"),))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                child.start()
            child.join(CHILD_DEADLINE + 30)
            assert child.exitcode == 0
    finally:
        _SHARED = None


def test_closing_the_inherited_connection_in_the_child_leaves_the_parents_open(cb, key):
    cb.set(key, "parent's")

    def child():
        cb.close()
        assert cb.closed
        with pytest.raises(ConnectError, match="closed"):
            cb.get(key)

    pid = _fork()
    if pid == 0:
        _in_child(child)
    _wait([pid])
    assert cb.get(key) == "parent's"
    cb.set(key, "still the parent's")
    assert cb.get(key) == "still the parent's"


def _sockets_to(ports):
    """(descriptor, inode) of each of this process's sockets connected to one of ports."""
    found = set()
    for fd in range(3, 1024):
        try:
            inode = os.fstat(fd).st_ino if stat.S_ISSOCK(os.fstat(fd).st_mode) else None
        except OSError:
            continue
        if inode is None:
            continue
        with socket.socket(fileno=os.dup(fd)) as sock:  # a copy: closing it leaves fd open
            try:
                if sock.getpeername()[1] in ports:
                    found.add((fd, inode))
            except (OSError, IndexError, TypeError):
                pass
    return found


def test_the_child_closes_its_copies_of_the_parents_sockets(cluster, key):
    ports = {cluster.port, *cluster.kv_ports}
    before = _sockets_to(ports)
    conn = Couchbase.connect(cluster.host, cluster.port, password="", bucket="default")
    try:
        conn.set(key, "parent's")
        parents = _sockets_to(ports) - before
        assert parents  # the bootstrap stream and the node's KV socket

        def child():
            assert parents <= _sockets_to(ports)  # inherited
            assert conn.get(key) == "parent's"  # over the child's own sockets
            assert not parents & _sockets_to(ports)

        pid = _fork()
        if pid == 0:
            _in_child(child)
        _wait([pid])
        assert parents <= _sockets_to(ports)  # the parent's stay open, and work
        conn.set(key, "still the parent's")
        assert conn.get(key) == "still the parent's"
    finally:
        conn.close()


def test_a_child_that_cannot_reopen_gets_a_clear_error_at_once(key):
    cluster = MockCluster(buckets={"protected": "secret"})
    cluster.start()
    conn = Couchbase.connect(cluster.host, cluster.port, password="secret", bucket="protected",
                             timeout=2, connect_timeout=2)
    try:
        conn.set(key, 1)
        cluster.stop()  # nothing listens any more: the child cannot connect

        def child():
            started = time.monotonic()
            with pytest.raises(ConnectError, match="could not reopen .* after os.fork()") as info:
                conn.get(key)
            assert "secret" not in str(info.value) and time.monotonic() - started < 15
            with pytest.raises(ConnectError, match="could not be reopened after os.fork"):
                conn.get(key)

        pid = _fork()
        if pid == 0:
            _in_child(child)
        _wait([pid])
    finally:
        conn.close()
