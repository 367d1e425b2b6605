"""Connection-level behaviour: connection strings, timeouts, lifecycle,
repr, logging, threads and the GIL."""

import gc
import logging
import threading
import time
import warnings

import pytest
from threads_util import run_threads

from couchbase import Couchbase
from couchbase.exceptions import ConnectError, NotFoundError, TimeoutError

# the connection tests run once per connection kind (tests/kinds.py); those of
# threads sharing a sync Connection, its GIL release and its finalizer are the sync kind's own
EVERY_KIND = pytest.mark.every_kind


@EVERY_KIND
def test_full_connection_string(cluster, key, connect):
    connstr = f"couchbase://{cluster.host}:{cluster.port}=http/default?operation_timeout=5"
    with connect(bucket="default", password="", connection_string=connstr) as conn:
        assert conn.connection_string == connstr
        assert conn.host is None and conn.port is None
        conn.set(key, 1)
        assert conn.get(key) == 1


@EVERY_KIND
def test_cccp_connection_string_to_a_kv_port(cluster, key, connect):
    connstr = f"couchbase://{cluster.host}:{cluster.kv_ports[0]}/default"
    with connect(bucket="default", username=cluster.username, password=cluster.password,
                    connection_string=connstr) as conn:
        conn.set(key, "via cccp")
        assert conn.get(key) == "via cccp"


@EVERY_KIND
def test_repr_never_shows_the_password(cluster, connect):
    with connect(cluster.host, cluster.port, password="secret", bucket="protected") as conn:
        text = repr(conn)
        assert "secret" not in text
        assert "protected" in text and "open" in text


@EVERY_KIND
def test_context_manager_closes(cluster, connect):
    with connect(cluster.host, cluster.port, password="", bucket="default") as conn:
        assert not conn.closed
    assert conn.closed


def test_unclosed_connection_warns(cluster):
    conn = Couchbase.connect(cluster.host, cluster.port, password="", bucket="default")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del conn
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


@EVERY_KIND
def test_operation_timeout_on_a_slow_server(cluster, key, connect):
    with connect(cluster.host, cluster.port, password="", bucket="default", timeout=0.3) as conn:
        conn.set(key, 1)
        cluster.hiccup(1500)
        try:
            start = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                conn.get(key)
            elapsed = time.monotonic() - start
        finally:
            cluster.hiccup(0)
        assert elapsed < 1.4
        assert info.value.key == key and info.value.operation == "get"


@EVERY_KIND
def test_connect_timeout_on_a_server_that_never_answers(connect):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections, never answers
    try:
        start = time.monotonic()
        with pytest.raises(ConnectError) as info:
            connect("127.0.0.1", listener.getsockname()[1], password="", bucket="default",
                              connect_timeout=0.5)
        assert time.monotonic() - start < 5
        assert "'default'" in str(info.value)
    finally:
        listener.close()


@EVERY_KIND
def test_multi_get_is_one_pipelined_round(cb, cluster, key):
    keys = [f"{key}:{i}" for i in range(20)]
    cb.set(dict.fromkeys(keys, 1))
    cluster.hiccup(150)  # every reply batch waits 150 ms
    try:
        start = time.monotonic()
        assert cb.get(keys) == [1] * 20
        elapsed = time.monotonic() - start
    finally:
        cluster.hiccup(0)
    assert elapsed < 20 * 0.150 / 2, f"20 keys took {elapsed:.2f} s: not pipelined"


@EVERY_KIND
def test_log_goes_to_python_logging(cluster, caplog, connect):
    with caplog.at_level(logging.DEBUG, logger="couchbase"):
        with connect(cluster.host, cluster.port, password="", bucket="default"):
            pass
    assert any(r.name == "couchbase" for r in caplog.records)


@EVERY_KIND
def test_log_is_quiet_below_warning_by_default(cluster, caplog, connect):
    with caplog.at_level(logging.WARNING, logger="couchbase"):
        with connect(cluster.host, cluster.port, password="", bucket="default") as conn:
            conn.set("quiet-log", 1)
    assert not [r for r in caplog.records if r.name == "couchbase" and r.levelno < logging.WARNING]


def test_one_connection_shared_by_8_threads(cb, key):
    def worker(t):
        for i in range(200):
            k = f"{key}:{t}:{i % 10}"
            cb.set(k, {"t": t, "i": i})
            assert cb.get(k) == {"t": t, "i": i}
            cb.incr(f"{key}:counter", initial=0)
        cb.get([f"{key}:{t}:{i}" for i in range(10)])

    run_threads(worker, 8)
    # initial=0 counts as the first step: 8 * 200 increments give 8 * 200 - 1
    assert cb.get(f"{key}:counter") == 8 * 200 - 1


def test_gil_is_released_while_waiting(cb, cluster, key):
    cb.set(key, 1)
    ticks = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    cluster.hiccup(300)
    try:
        spinner.start()
        time.sleep(0.02)
        before = len(ticks)
        cb.get(key)
        during = len(ticks) - before
    finally:
        cluster.hiccup(0)
        stop.set()
        spinner.join()
    assert during > 50, f"other thread ran only {during} times during a 300 ms wait"


def test_threads_with_own_connections(cluster, key):
    def worker(t):
        with Couchbase.connect(cluster.host, cluster.port, password="", bucket="default") as conn:
            for i in range(50):
                conn.set(f"{key}:{t}", i)
                assert conn.get(f"{key}:{t}") == i

    run_threads(worker, 8)


def test_close_while_another_thread_uses_the_connection(cluster, key):
    conn = Couchbase.connect(cluster.host, cluster.port, password="", bucket="default")
    outcomes = []

    def worker():
        try:
            for _ in range(2000):
                conn.get(key, quiet=True)
            outcomes.append("finished")
        except ConnectError:
            outcomes.append("closed")
        except NotFoundError:
            outcomes.append("unexpected")

    th = threading.Thread(target=worker)
    th.start()
    time.sleep(0.05)
    conn.close()
    th.join()
    assert outcomes in (["closed"], ["finished"])



@EVERY_KIND
def test_dead_server_gives_an_error_not_a_hang(key, connect):
    from couchbase.exceptions import CouchbaseError, NetworkError
    from couchbase.mock import MockCluster

    mock = MockCluster(buckets={"default": ""})
    mock.start()
    try:
        conn = connect(mock.host, mock.port, password="", bucket="default", timeout=0.5)
        conn.set(key, 1)
    finally:
        mock.stop()
    try:
        for call in (lambda: conn.get(key), lambda: conn.set(key, 2), lambda: conn.get([key, key + "x"])):
            start = time.monotonic()
            with pytest.raises(CouchbaseError) as info:
                call()
            assert time.monotonic() - start < 3
            assert isinstance(info.value, (TimeoutError, ConnectError, NetworkError))
    finally:
        conn.close()


def test_threads_sharing_a_connection_share_round_trips(cb, cluster, key):
    # Calls queued by other threads while one waits are sent at once, so 8
    # threads on one Connection pipeline instead of queueing round trip by
    # round trip.
    cb.set(key, 1)
    rounds = 5

    def worker():
        for _ in range(rounds):
            assert cb.get(key) == 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    cluster.hiccup(100)
    try:
        start = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.monotonic() - start
    finally:
        cluster.hiccup(0)
    serialized = 8 * rounds * 0.100
    assert elapsed < serialized / 4, f"{elapsed:.2f} s for 40 gets at 100 ms each"
