"""One client of bench/features.py: ``python _features_worker.py CLIENT CONN_JSON WORKLOADS
SECONDS``; runs each workload (one call at a time, on keys written first) for SECONDS and
prints one JSON line per workload: {"workload", "calls", "elapsed", "cpu"} where cpu is
this process's user+system time (every thread: the SDK does its I/O on its own) around
the timed loop.

Imports nothing from the repository (for the SDK it runs outside the checkout).
"""

import json
import resource
import sys
import time

KEYS = ["feat:%04d" % i for i in range(200)]
DOC = {"a": 1, "b": "two", "n": 0}


def ours(conn):
    import couchbase.subdocument as SD
    from couchbase import Couchbase, Durability

    cb = Couchbase.connect(conn["host"], conn["port"], bucket="default", password="")
    cb.set({k: DOC for k in KEYS})
    two = [SD.get("a"), SD.get("b")]
    return {
        "exists": lambda k, i: cb.exists(k),
        "lookup_in": lambda k, i: cb.lookup_in(k, two),
        "mutate_in": lambda k, i: cb.mutate_in(k, [SD.upsert("n", i)]),
        "set_majority": lambda k, i: cb.set(k, DOC, durability=Durability.MAJORITY),
        "replica_get": lambda k, i: cb.get(k, replica=True),
    }


def sdk(conn):
    from couchbase.auth import PasswordAuthenticator
    from couchbase.cluster import Cluster
    from couchbase.options import ClusterOptions, UpsertOptions

    import couchbase.subdocument as SD
    from couchbase.durability import DurabilityLevel, ServerDurability

    cluster = Cluster("couchbase://%s:%d" % (conn["host"], conn["kv_port"]),
                      ClusterOptions(PasswordAuthenticator(conn["username"], conn["password"])))
    coll = cluster.bucket("default").default_collection()
    for k in KEYS:
        coll.upsert(k, DOC)
    majority = UpsertOptions(durability=ServerDurability(DurabilityLevel.MAJORITY))
    two = [SD.get("a"), SD.get("b")]
    return {
        "exists": lambda k, i: coll.exists(k),
        "lookup_in": lambda k, i: coll.lookup_in(k, two),
        "mutate_in": lambda k, i: coll.mutate_in(k, [SD.upsert("n", i)]),
        "set_majority": lambda k, i: coll.upsert(k, DOC, majority),
        "replica_get": lambda k, i: coll.get_any_replica(k),
    }


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    client, conn, workloads, seconds = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3].split(","), float(
        sys.argv[4])
    calls = {"ours": ours, "sdk": sdk}[client](conn)
    for name in workloads:
        fn = calls[name]
        for i in range(200):  # warm-up
            fn(KEYS[i % len(KEYS)], i)
        n, started, cpu0 = 0, time.perf_counter(), cpu()
        deadline = started + seconds
        while True:
            fn(KEYS[n % len(KEYS)], n)
            n += 1
            if n % 50 == 0 and time.perf_counter() >= deadline:
                break
        print(json.dumps({"workload": name, "calls": n, "elapsed": time.perf_counter() - started,
                          "cpu": cpu() - cpu0}), flush=True)


if __name__ == "__main__":
    main()
