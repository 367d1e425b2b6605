"""Client CPU per operation of couchbase.aio.AsyncConnection on the standard
asyncio loop and on uvloop, beside the sync Connection in the same run
(sequential get, gather of 1,000 gets, 100-key get per key).

    .venv/bin/python bench/aio_probe.py [--ops 5000] [--rounds 3]

The mock cluster runs in its own process, pinned to another CPU than this
one when possible (bench/_common.py); CPU is user+system of this process (resource.getrusage) per
operation, the best of --rounds. Also prints the event-loop calls the IO
plugin made per operation.
"""

import argparse
import asyncio
import os
import resource
import sys
import time

from _common import MockProcess, cpu_sets

from couchbase import FMT_PLAIN, Couchbase
from couchbase.aio import AsyncConnection

try:
    import uvloop
except ImportError:
    uvloop = None


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(fn, n, rounds):
    """(best CPU µs per op, best wall µs per op) over rounds of fn()."""
    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        c0, t0 = cpu(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, (cpu() - c0) / n * 1e6)
        best_wall = min(best_wall, (time.perf_counter() - t0) / n * 1e6)
    return best_cpu, best_wall


KEYS = [f"probe:{i}" for i in range(100)]


def async_rows(mock, new_loop, n, rounds):
    loop = new_loop()
    rows = {}
    try:
        async def connect():
            acb = await AsyncConnection.connect(mock.host, mock.port, password="", bucket="default")
            await acb.set("probe", {"v": 1})
            await acb.set(dict.fromkeys(KEYS, b"0123456789abcdef"), format=FMT_PLAIN)
            return acb
        acb = loop.run_until_complete(connect())

        async def sequential():
            for _ in range(n):
                await acb.get("probe")

        async def gathered():
            for _ in range(n // 1000):
                await asyncio.gather(*[acb.get("probe") for _ in range(1000)])

        loop.run_until_complete(sequential())  # warm up
        calls = acb.loop_calls
        rows["sequential get"] = measure(lambda: loop.run_until_complete(sequential()), n, rounds)
        seq_calls = (acb.loop_calls - calls) / (n * rounds)
        calls = acb.loop_calls
        rows["gather of 1000 gets"] = measure(lambda: loop.run_until_complete(gathered()),
                                              n // 1000 * 1000, rounds)
        gather_calls = (acb.loop_calls - calls) / (n // 1000 * 1000 * rounds)

        async def multi():
            for _ in range(n // 100):
                await acb.get(KEYS)
        calls = acb.loop_calls
        rows["100-key get, per key"] = measure(lambda: loop.run_until_complete(multi()),
                                               n // 100 * 100, rounds)
        multi_calls = (acb.loop_calls - calls) / (n // 100 * 100 * rounds)
        async def close():
            await acb.close()
        loop.run_until_complete(close())
    finally:
        loop.close()
    return rows, (seq_calls, gather_calls, multi_calls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server_cpus, client_cpus = cpu_sets()
    mock = MockProcess(cpus=server_cpus)
    if client_cpus is not None:
        os.sched_setaffinity(0, {int(client_cpus)})
    try:
        print(f"{'client':<28} {'operation':<22} {'CPU µs/op':>10} {'wall µs/op':>11} {'loop calls/op':>14}")
        with Couchbase.connect(mock.host, mock.port, password="", bucket="default") as cb:
            cb.set("probe", {"v": 1})
            for _ in range(500):
                cb.get("probe")

            def sync_sequential():
                for _ in range(args.ops):
                    cb.get("probe")
            c, w = measure(sync_sequential, args.ops, args.rounds)
            print(f"{'Connection (sync)':<28} {'sequential get':<22} {c:>10.1f} {w:>11.1f} {'-':>14}")
            cb.set(dict.fromkeys(KEYS, b"0123456789abcdef"), format=FMT_PLAIN)

            def sync_multi():
                for _ in range(args.ops // 100):
                    cb.get(KEYS)
            c, w = measure(sync_multi, args.ops // 100 * 100, args.rounds)
            print(f"{'Connection (sync)':<28} {'100-key get, per key':<22} {c:>10.1f} {w:>11.1f} {'-':>14}")
        loops = [("asyncio", asyncio.new_event_loop)]
        if uvloop is not None:
            loops.append(("uvloop", uvloop.new_event_loop))
        for name, new_loop in loops:
            rows, loop_calls = async_rows(mock, new_loop, args.ops, args.rounds)
            for (op, (c, w)), calls in zip(rows.items(), loop_calls):
                print(f"{'AsyncConnection ' + name:<28} {op:<22} {c:>10.1f} {w:>11.1f} {calls:>14.3f}")
    finally:
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
