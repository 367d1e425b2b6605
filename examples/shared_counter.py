"""Threads share one Connection: their calls are pipelined over its sockets."""

import threading
import time

from _cluster import connection

THREADS, PER_THREAD = 8, 500

with connection(__doc__) as cb:
    cb.set("hits", 0)

    def work():
        for _ in range(PER_THREAD):
            cb.incr("hits")

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    total = cb.get("hits")
    assert total == THREADS * PER_THREAD, total
    print(f"{total} increments from {THREADS} threads in {elapsed:.2f} s")
    cb.delete("hits")
