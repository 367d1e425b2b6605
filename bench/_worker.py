"""One benchmark client process, driven by bench/run.py over stdin/stdout.

Started as ``python bench/_worker.py CLIENT CONN_JSON`` with the interpreter of the
client's own environment (this repository's .venv for ``ours``, the SDK venv for
``sdk``, the pylibmc venv for ``pylibmc``). It connects once, then answers one JSON
command per line:

    {"cmd": "populate", "size": S, "items": N}
    {"cmd": "run", "op": "get"|"set", "batch": B, "size": S, "items": N,
     "duration": SECONDS, "warmup": SECONDS}

with one JSON line: {"ops": ..., "calls": ..., "elapsed": ..., "utime": ..., "stime": ...}
where utime/stime come from getrusage(RUSAGE_SELF) around the timed loop: the CPU of
this whole process (every thread: the official SDK does its I/O on its own threads).

This file must import nothing from the repository: for the official SDK it runs with
cwd outside the checkout and PYTHONPATH cleared (both packages are named couchbase).
bench/_aio_worker.py serves bench/aio_bench.py with this file's protocol (serve, timed)
and its sync client (Ours).
"""

import functools
import json
import resource
import sys
import time

KEY_FORMAT = "%s%020d"  # same shape as cbc-pillowfight's keys (prefix + %020d)


def keys_for(prefix, items):
    return [KEY_FORMAT % (prefix, i) for i in range(items)]


def chunks(seq, n):
    return [seq[i : i + n] for i in range(0, len(seq), n)]


# ---------------------------------------------------------------------------
# Clients: each gives get1(key), set1(key, value), getm(keys), setm(mapping)
# and a timed loop per workload (written out per client so the harness adds as
# little as possible per call: a perf_counter() per call, ~0.05 us).


class Ours:
    prefix = "cb:"

    def __init__(self, conn):
        from couchbase import FMT_PLAIN, Couchbase

        tls = {}
        if conn.get("ca_path"):  # --tls: over the mock's TLS KV port, verifying with its CA
            tls = {"connection_string": "couchbases://%s:%d=mcds/%s" % (
                conn["host"], conn["kv_tls_port"], conn.get("bucket", "default")),
                "tls_ca_file": conn["ca_path"]}
        self.cb = Couchbase.connect(
            conn["host"],
            conn["port"],
            bucket=conn.get("bucket", "default"),
            password=conn.get("bucket_password", ""),
            default_format=FMT_PLAIN,
            **tls,
        )

    def populate(self, keys, value):
        for part in chunks(keys, 100):
            self.cb.set({k: value for k in part})

    def check(self, keys, value):
        got = self.cb.get(keys[:3])
        assert got == [value] * 3, "populate check failed"

    def loop(self, op, batch, keys, value, deadline):
        cb = self.cb
        now = time.perf_counter
        calls = 0
        if batch == 1:
            nk = len(keys)
            i = 0
            if op == "get":
                get = cb.get
                while True:
                    get(keys[i])
                    calls += 1
                    i += 1
                    if i == nk:
                        i = 0
                    if now() >= deadline:
                        return calls
            else:
                set_ = cb.set
                while True:
                    set_(keys[i], value)
                    calls += 1
                    i += 1
                    if i == nk:
                        i = 0
                    if now() >= deadline:
                        return calls
        lists = chunks(keys, batch)
        if op == "get":
            get = cb.get
            while True:
                for ks in lists:
                    get(ks)
                    calls += 1
                    if now() >= deadline:
                        return calls
        dicts = [{k: value for k in ks} for ks in lists]
        set_ = cb.set
        while True:
            for d in dicts:
                set_(d)
                calls += 1
                if now() >= deadline:
                    return calls


class Sdk:
    """The official Couchbase Python SDK 4.x (C++ core), raw bytes via RawBinaryTranscoder."""

    prefix = "sd:"

    def __init__(self, conn):
        from datetime import timedelta

        from couchbase.auth import PasswordAuthenticator
        from couchbase.cluster import Cluster
        from couchbase.options import ClusterOptions
        from couchbase.transcoder import RawBinaryTranscoder

        opts = ClusterOptions(
            PasswordAuthenticator(conn["username"], conn["password"]), transcoder=RawBinaryTranscoder()
        )
        self.cluster = Cluster("couchbase://%s:%d" % (conn["host"], conn["kv_port"]), opts)
        self.cluster.wait_until_ready(timedelta(seconds=20))
        self.coll = self.cluster.bucket(conn.get("bucket", "default")).default_collection()

    def populate(self, keys, value):
        for part in chunks(keys, 100):
            res = self.coll.upsert_multi({k: value for k in part})
            assert res.all_ok, "upsert_multi failed: %r" % (res.exceptions,)

    def check(self, keys, value):
        assert self.coll.get(keys[0]).value == value, "populate check failed"

    def loop(self, op, batch, keys, value, deadline):
        coll = self.coll
        now = time.perf_counter
        calls = 0
        if batch == 1:
            nk = len(keys)
            i = 0
            if op == "get":
                get = coll.get
                while True:
                    get(keys[i]).value  # noqa: B018 (the value is decoded on access)
                    calls += 1
                    i += 1
                    if i == nk:
                        i = 0
                    if now() >= deadline:
                        return calls
            else:
                upsert = coll.upsert
                while True:
                    upsert(keys[i], value)
                    calls += 1
                    i += 1
                    if i == nk:
                        i = 0
                    if now() >= deadline:
                        return calls
        lists = chunks(keys, batch)
        if op == "get":
            get_multi = coll.get_multi
            while True:
                for ks in lists:
                    res = get_multi(ks)
                    for r in res.results.values():
                        r.value  # noqa: B018 (the value is decoded on access)
                    calls += 1
                    if now() >= deadline:
                        return calls
        dicts = [{k: value for k in ks} for ks in lists]
        upsert_multi = coll.upsert_multi
        while True:
            for d in dicts:
                upsert_multi(d)
                calls += 1
                if now() >= deadline:
                    return calls


class Pylibmc:
    """pylibmc (libmemcached) against a real memcached: the reference fast C-client binding."""

    prefix = "mc:"

    def __init__(self, conn):
        import pylibmc

        self.mc = pylibmc.Client(
            ["%s:%d" % (conn["host"], conn["port"])],
            binary=bool(conn.get("binary")),
            behaviors={"tcp_nodelay": True},
        )

    def populate(self, keys, value):
        for part in chunks(keys, 100):
            failed = self.mc.set_multi({k: value for k in part})
            assert not failed, "set_multi failed for %r" % (failed,)

    def check(self, keys, value):
        assert self.mc.get(keys[0]) == value, "populate check failed"

    def loop(self, op, batch, keys, value, deadline):
        mc = self.mc
        now = time.perf_counter
        calls = 0
        if batch == 1:
            nk = len(keys)
            i = 0
            if op == "get":
                get = mc.get
                while True:
                    get(keys[i])
                    calls += 1
                    i += 1
                    if i == nk:
                        i = 0
                    if now() >= deadline:
                        return calls
            else:
                set_ = mc.set
                while True:
                    set_(keys[i], value)
                    calls += 1
                    i += 1
                    if i == nk:
                        i = 0
                    if now() >= deadline:
                        return calls
        lists = chunks(keys, batch)
        if op == "get":
            get_multi = mc.get_multi
            while True:
                for ks in lists:
                    get_multi(ks)
                    calls += 1
                    if now() >= deadline:
                        return calls
        dicts = [{k: value for k in ks} for ks in lists]
        set_multi = mc.set_multi
        while True:
            for d in dicts:
                set_multi(d)
                calls += 1
                if now() >= deadline:
                    return calls


CLIENTS = {"ours": Ours, "sdk": Sdk, "pylibmc": Pylibmc}


def value_of(size):
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


def timed(loop, batch, warmup, duration):
    """loop(deadline) -> calls: run it for `warmup` seconds, then timed for `duration`;
    the reply to a "run" command. CPU from getrusage(RUSAGE_SELF): every thread."""
    if warmup > 0:
        loop(time.perf_counter() + warmup)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    calls = loop(t0 + duration)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ops": calls * batch,
        "calls": calls,
        "elapsed": t1 - t0,
        "utime": r1.ru_utime - r0.ru_utime,
        "stime": r1.ru_stime - r0.ru_stime,
        "minflt": r1.ru_minflt - r0.ru_minflt,
        "maxrss_kb": r1.ru_maxrss,
    }


def serve(name, client, workload):
    """Announce the client, then answer the driver's commands, one JSON line each, until
    stdin closes. A key set is populated (and checked) on "populate" or on its first
    "run"; workload(cmd) -> (loop(keys, value, deadline) -> calls, keys per call)."""
    populated = set()
    out = sys.stdout
    mod = sys.modules.get("couchbase") or sys.modules.get("pylibmc")
    out.write(json.dumps({"ready": name, "module": getattr(mod, "__file__", None)}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            size, items = cmd["size"], cmd["items"]
            keys = keys_for(client.prefix + "%d:" % size, items)
            value = value_of(size)
            if cmd["cmd"] == "populate" or (size, items) not in populated:
                client.populate(keys, value)
                client.check(keys, value)
                populated.add((size, items))
            reply = {"ok": True}
            if cmd["cmd"] == "run":
                loop, batch = workload(cmd)
                reply = timed(functools.partial(loop, keys, value), batch, cmd.get("warmup", 0),
                              cmd["duration"])
        except Exception as exc:  # reported to the driver, which prints it in the results
            reply = {"error": "%s: %s" % (type(exc).__name__, exc)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main():
    client_name, conn = sys.argv[1], json.loads(sys.argv[2])
    client = CLIENTS[client_name](conn)

    def workload(cmd):
        op, batch = cmd["op"], cmd["batch"]
        return (lambda keys, value, deadline: client.loop(op, batch, keys, value, deadline)), batch

    serve(client_name, client, workload)


if __name__ == "__main__":
    main()
