"""One Connection shared by many threads: every call gets its own results,
errors stay with their call, and closing never leaves a thread hanging."""

import random
import threading

import pytest
from threads_util import run_threads

from couchbase import FMT_PLAIN, Couchbase
from couchbase.exceptions import ConnectError, KeyExistsError, NotFoundError

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)


def test_mixed_operations_from_16_threads(cb, key):
    def worker(t):
        rnd = random.Random(t)
        mine = f"{key}:{t}"
        for i in range(300):
            choice = rnd.randrange(6)
            if choice == 0:
                cb.set(mine, {"t": t, "i": i})
                assert cb.get(mine) == {"t": t, "i": i}
            elif choice == 1:
                keys = [f"{mine}:{j}" for j in range(5)]
                cb.set({k: j for j, k in enumerate(keys)})
                assert cb.get(keys) == [0, 1, 2, 3, 4]
            elif choice == 2:
                assert cb.get(f"{mine}:missing", quiet=True) is None
                with pytest.raises(NotFoundError):
                    cb.get(f"{mine}:missing")
            elif choice == 3:
                cb.delete(f"{mine}:added", quiet=True)
                cb.add(f"{mine}:added", i)
                with pytest.raises(KeyExistsError):
                    cb.add(f"{mine}:added", i)
            elif choice == 4:
                cb.incr(f"{key}:shared-counter", initial=1)
            else:
                with pytest.raises(NotFoundError) as info:
                    cb.get([f"{mine}:a-missing", mine] if cb.get(mine, quiet=True) is not None
                           else [f"{mine}:a-missing"])
                assert info.value.key == f"{mine}:a-missing"

    run_threads(worker, 16)


def test_closing_while_16_threads_wait_never_hangs(cluster, key):
    conn = Couchbase.connect(cluster.host, cluster.port, password="", bucket="default")
    conn.set(key, 1)
    started = threading.Barrier(17)

    def worker(t):
        started.wait()
        try:
            for _ in range(200):
                assert conn.get(key) == 1
        except ConnectError as e:
            assert "closed" in str(e)

    outcome = []

    def run_all():
        try:
            run_threads(worker, 16)
            outcome.append("ok")
        except BaseException as e:
            outcome.append(e)

    cluster.hiccup(5)
    try:
        runner = threading.Thread(target=run_all)
        runner.start()
        started.wait()
        conn.close()
        runner.join(90)
        assert not runner.is_alive()
    finally:
        cluster.hiccup(0)
    assert outcome == ["ok"], outcome
    with pytest.raises(ConnectError):
        conn.get(key)


def test_large_values_from_8_threads(cb, key):
    # large stores are sent from each caller's own bytes while other threads'
    # calls share the connection: every value must arrive intact
    def worker(t):
        rnd = random.Random(t)
        for i in range(40):
            mine = f"{key}:{t}:{i % 4}"
            value = bytes([t, i]) * (rnd.randrange(8_000, 120_000) // 2)
            cb.set(mine, value, format=FMT_PLAIN)
            assert cb.get(mine) == value
            more = {f"{mine}:{j}": value[j:] for j in range(3)}
            cb.set(more, format=FMT_PLAIN)
            assert cb.get(list(more)) == list(more.values())

    run_threads(worker, 8)
