"""Command line: ``python -m couchbase [connection options] COMMAND ...``.

Commands: demo, get, set, rm, incr, stats, pillowfight. ``--embedded`` starts
a mock Couchbase cluster in this process and connects to it, so every command
works on a machine without a Couchbase server. It never unpickles: ``get``
shows a value stored as a pickle as such, with its size.
"""

import argparse
import contextlib
import json
import sys
import time

from couchbase import FMT_JSON, FMT_PLAIN, Couchbase
from couchbase.exceptions import CouchbaseError


def _parser():
    p = argparse.ArgumentParser(prog="python -m couchbase", description=__doc__.splitlines()[0])
    p.add_argument("--embedded", action="store_true",
                   help="start an in-process mock cluster (bucket 'default') and use it")
    p.add_argument("--host", default="localhost", help="cluster node (default: localhost)")
    p.add_argument("--port", type=int, default=8091, help="management (HTTP) port (default: 8091)")
    p.add_argument("--bucket", default="default", help="bucket name (default: default)")
    p.add_argument("--username", default=None, help="user name (default: the bucket name)")
    p.add_argument("--password", default="", help="password (default: empty, an open bucket)")
    p.add_argument("-U", "--connection-string", default=None,
                   help="a full connection string; overrides --host and --port")
    p.add_argument("--timeout", type=float, default=2.5, help="operation timeout in seconds")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="a short set/get/incr demonstration")
    g = sub.add_parser("get", help="print the values of keys")
    g.add_argument("keys", nargs="+")
    s = sub.add_parser("set", help="store a value (JSON if it parses as JSON, else a string)")
    s.add_argument("key")
    s.add_argument("value")
    s.add_argument("--ttl", type=int, default=0)
    s.add_argument("--plain", action="store_true", help="store the value as raw bytes (FMT_PLAIN)")
    r = sub.add_parser("rm", help="delete keys")
    r.add_argument("keys", nargs="+")
    i = sub.add_parser("incr", help="increment a counter")
    i.add_argument("key")
    i.add_argument("--amount", type=int, default=1)
    i.add_argument("--initial", type=int, default=None)
    st = sub.add_parser("stats", help="print server statistics")
    st.add_argument("group", nargs="?", default=None)
    pf = sub.add_parser("pillowfight", help="a small load generator: ops/s of get and set")
    pf.add_argument("--ops", type=int, default=20000, help="operations per phase")
    pf.add_argument("--batch", type=int, default=1, help="keys per call")
    pf.add_argument("--size", type=int, default=64, help="value size in bytes")
    return p


def _demo(cb, out):
    out(f"connected: {cb!r}")
    cas = cb.set("demo:greeting", {"hello": "world", "n": 1})
    out(f"set demo:greeting -> cas {cas}")
    out(f"get demo:greeting -> {cb.get('demo:greeting')!r}")
    value, flags, cas = cb.get("demo:greeting", extended=True)
    out(f"get extended      -> value={value!r} flags={flags} cas={cas}")
    cb.set({"demo:a": 1, "demo:b": [1, 2, 3], "demo:c": "three"})
    out(f"multi-get         -> {cb.get(['demo:a', 'demo:b', 'demo:c'])!r}")
    cb.delete("demo:counter", quiet=True)
    out(f"incr (initial 10) -> {cb.incr('demo:counter', initial=10)}")
    out(f"incr by 5         -> {cb.incr('demo:counter', amount=5)}")
    out(f"decr by 3         -> {cb.decr('demo:counter', amount=3)}")
    try:
        cb.add("demo:greeting", "again")
    except CouchbaseError as e:
        out(f"add existing key  -> {type(e).__name__}: {e}")
    out(f"get missing, quiet -> {cb.get('demo:missing', quiet=True)!r}")


def _pillowfight(cb, args, out):
    keys = [f"pf:{i}" for i in range(max(args.batch, 1) * 10)]
    value = b"x" * args.size
    batches = [keys[i:i + args.batch] for i in range(0, len(keys), args.batch)]
    for phase in ("set", "get"):
        done = 0
        start = time.perf_counter()
        cpu = time.process_time()
        while done < args.ops:
            for batch in batches:
                if phase == "set":
                    if args.batch == 1:
                        cb.set(batch[0], value, format=FMT_PLAIN)
                    else:
                        cb.set(dict.fromkeys(batch, value), format=FMT_PLAIN)
                elif args.batch == 1:
                    cb.get(batch[0])
                else:
                    cb.get(batch)
                done += len(batch)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        out(f"{phase}: {done} ops in {wall:.2f} s = {done / wall:,.0f} ops/s, "
            f"client CPU {cpu / done * 1e6:.2f} us/op (batch {args.batch})")


def _get(cb, keys, out):
    """Print each key's value; a value that cannot be shown (a pickle, not
    unpickled) is described instead. Returns the exit status."""
    try:
        results = dict(zip(keys, cb.get(keys, quiet=True)))
    except CouchbaseError as e:
        if e.all_results is None:
            raise
        results = e.all_results
    status = 0
    for key in keys:
        value = results.get(key)
        if isinstance(value, CouchbaseError):
            out(f"{key}: not shown: {value.msg}")
            status = 1
        else:
            out(f"{key}: {value!r}")
    return status


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    out = print
    with contextlib.ExitStack() as stack:
        # unpickling would run code chosen by whoever wrote the value
        options = {"timeout": args.timeout, "unpickle": False}
        if args.embedded:
            from couchbase.mock import MockCluster

            mock = stack.enter_context(MockCluster(buckets={args.bucket: args.password}))
            out(f"embedded mock cluster: {mock.host}:{mock.port} (kv ports {mock.kv_ports})")
            args.host, args.port = mock.host, mock.port
        if args.connection_string:
            options["connection_string"] = args.connection_string
        try:
            cb = stack.enter_context(Couchbase.connect(
                args.host, args.port, args.username, args.password, args.bucket, **options))
            if args.command == "demo":
                _demo(cb, out)
            elif args.command == "get":
                return _get(cb, args.keys, out)
            elif args.command == "set":
                if args.plain:
                    cas = cb.set(args.key, args.value.encode(), ttl=args.ttl, format=FMT_PLAIN)
                else:
                    try:
                        value = json.loads(args.value)
                    except ValueError:
                        value = args.value
                    cas = cb.set(args.key, value, ttl=args.ttl, format=FMT_JSON)
                out(f"{args.key}: stored, cas {cas}")
            elif args.command == "rm":
                for key, ok in cb.delete(args.keys, quiet=True).items():
                    out(f"{key}: {'deleted' if ok else 'not found'}")
            elif args.command == "incr":
                out(f"{args.key}: {cb.incr(args.key, amount=args.amount, initial=args.initial)}")
            elif args.command == "stats":
                for name, per_node in sorted(cb.stats(args.group).items()):
                    for node, value in sorted(per_node.items()):
                        out(f"{node}\t{name}\t{value}")
            elif args.command == "pillowfight":
                _pillowfight(cb, args, out)
        except CouchbaseError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
