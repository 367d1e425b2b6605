"""Command line: ``python -m couchbase [connection options] COMMAND ...``.

Commands: demo, get, set, rm, incr, stats, pillowfight. ``--embedded`` starts
a mock Couchbase cluster in this process and connects to it, so every command
works on a machine without a Couchbase server. It never unpickles: ``get``
shows a value stored as a pickle as such, with its size.

Exit status: 0 done; 1 an error (connection, operation, a value not shown);
2 bad arguments; 3 (``get``) a key was not found; 130 interrupted; 141 the
reader of the output went away (``stats | head``).
"""

import argparse
import contextlib
import itertools
import json
import os
import resource
import sys
import threading
import time
from array import array

from couchbase import FMT_JSON, FMT_PLAIN, Couchbase
from couchbase.exceptions import ArgumentError, CouchbaseError, NotFoundError

# the description and epilog --help prints: plain text (the docstring above is reST for the docs)
DESCRIPTION = """\
A command line client for a Couchbase bucket: demo, get, set, rm, incr, stats
and pillowfight (a load generator). With --embedded it starts a mock cluster in
this process, so every command works without a Couchbase server. It never
unpickles a stored value."""
EPILOG = """exit status:
  0    done
  1    an error: connecting, an operation, or a value that cannot be shown (a pickle)
  2    bad arguments
  3    get: a key was not found (and nothing worse happened)
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (for example: stats | head -1)

pillowfight needs the hdrhistogram package: pip install 'couchbase-lcb[cli]'"""

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # as a shell reports SIGINT and SIGPIPE


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, minimum, what):
    """An argparse type: a number of `kind` (int or float) of at least `minimum`."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value >= minimum:  # also refuses a float NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    convert.__name__ = what  # argparse names the type in some messages
    return convert


_count = _number(int, 1, "a whole number of at least 1")
_size = _number(int, 0, "a whole number of at least 0")
_seconds = _number(float, 1e-3, "a number of seconds of at least 0.001")


def _port(text):
    port = _count(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return port


def _parser():
    p = _Parser(prog="python -m couchbase", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedded", action="store_true",
                   help="start an in-process mock cluster (bucket 'default') and use it")
    p.add_argument("--host", default="localhost", help="cluster node (default: localhost)")
    p.add_argument("--port", type=_port, default=8091, help="management (HTTP) port (default: 8091)")
    p.add_argument("--bucket", default="default", help="bucket name (default: default)")
    p.add_argument("--username", default=None, help="user name (default: the bucket name)")
    p.add_argument("--password", default="", help="password (default: empty, an open bucket)")
    p.add_argument("-U", "--connection-string", default=None,
                   help="a full connection string; overrides --host and --port")
    p.add_argument("--timeout", type=_seconds, default=2.5,
                   help="operation timeout in seconds (default: 2.5)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           help="one of: demo, get, set, rm, incr, stats, pillowfight")

    def command(name, text):
        return sub.add_parser(name, help=text, description=text)

    command("demo", "a short set/get/incr demonstration")
    g = command("get", "print the values of keys (a missing key prints 'KEY: not found', exit status 3)")
    g.add_argument("keys", nargs="+", metavar="KEY", help="a key to read")
    s = command("set", "store a value (JSON if it parses as JSON, else a string)")
    s.add_argument("key", metavar="KEY", help="the key to write")
    s.add_argument("value", metavar="VALUE", help="the value: JSON, or else stored as a string")
    s.add_argument("--ttl", type=_size, default=0, help="expiry in seconds (default: 0, never)")
    s.add_argument("--plain", action="store_true", help="store the value as raw bytes (FMT_PLAIN)")
    r = command("rm", "delete keys")
    r.add_argument("keys", nargs="+", metavar="KEY", help="a key to delete")
    i = command("incr", "increment a counter")
    i.add_argument("key", metavar="KEY", help="the counter's key")
    i.add_argument("--amount", type=_size, default=1, help="how much to add (default: 1)")
    i.add_argument("--initial", type=_size, default=None,
                   help="the value of a counter that does not exist yet (default: fail if missing)")
    st = command("stats", "print server statistics, one 'node<TAB>name<TAB>value' line each")
    st.add_argument("group", nargs="?", default=None, metavar="GROUP",
                    help="a statistics group, such as 'memory' (default: the general statistics)")
    pf = command("pillowfight", "a load generator: ops/s, latency percentiles and client CPU of set, "
                                "then get")
    amount = pf.add_mutually_exclusive_group()
    amount.add_argument("--ops", type=_count, default=20000,
                        help="operations per phase, shared by the threads, in whole batches "
                             "(default: 20000)")
    amount.add_argument("--duration", type=_seconds, default=None,
                        help="seconds per phase, instead of --ops")
    pf.add_argument("--threads", type=_count, default=1,
                    help="worker threads, each with its own connection (default: 1)")
    pf.add_argument("--batch", type=_count, default=1, help="keys per call (default: 1)")
    pf.add_argument("--size", type=_size, default=64, help="value size in bytes (default: 64)")
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


def _histogram_class():
    """hdrh's HdrHistogram; a clear error if the optional package is missing."""
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        raise SystemExit("error: pillowfight needs the hdrhistogram package: "
                         "pip install 'couchbase-lcb[cli]'") from None
    return HdrHistogram


class _Worker:
    """One pillowfight thread's state: its own connection and keys; records
    the latency of each call (one batch of keys) in nanoseconds."""

    def __init__(self, connect, number, args):
        self.name = f"pillowfight-{number}"
        self.cb = connect()
        keys = [f"pf:{number}:{i}" for i in range(args.batch * 10)]
        self.batches = [keys[i:i + args.batch] for i in range(0, len(keys), args.batch)]
        self.value = b"x" * args.size
        self.done = 0  # operations (keys) so far, read by the progress line
        self.latencies = array("q")  # 8 bytes a call, folded into a histogram after the phase
        self.error = None
        self.stop = False  # set by the main thread to end the phase early (Ctrl-C)
        self.phase, self.ops, self.deadline = "set", 0, None

    def start_phase(self, phase, ops, deadline):
        """Run `phase` ("set" or "get") for `ops` operations, or until the
        perf_counter_ns `deadline` if that is not None."""
        self.phase, self.ops, self.deadline = phase, ops, deadline
        self.done, self.latencies = 0, array("q")

    def run(self):
        try:
            self._run_phase()
        except BaseException as e:  # handed to the main thread
            self.error = e

    def _run_phase(self):
        record, clock, call = self.latencies.append, time.perf_counter_ns, self._call()
        batches = itertools.cycle(self.batches)
        deadline = self.deadline
        if deadline is None:  # this worker's share of --ops, in whole batches
            batches = itertools.islice(batches, -(-self.ops // len(self.batches[0])))
        for batch in batches:
            if self.stop:
                return
            start = clock()
            call(batch)
            end = clock()
            record(end - start)
            self.done += len(batch)
            if deadline is not None and end >= deadline:
                return

    def _call(self):
        cb, value = self.cb, self.value
        single = len(self.batches[0]) == 1
        if self.phase == "set":
            if single:
                return lambda batch: cb.set(batch[0], value, format=FMT_PLAIN)
            return lambda batch: cb.set(dict.fromkeys(batch, value), format=FMT_PLAIN)
        if single:
            return lambda batch: cb.get(batch[0])
        return cb.get


def _cpu_seconds():
    """User plus system CPU of this process (every thread) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_phase(workers, phase, args, progress):
    """Run one phase on every worker; returns (wall seconds, CPU seconds)."""
    deadline = None
    if args.duration is not None:
        deadline = time.perf_counter_ns() + int(args.duration * 1e9)
    share, extra = divmod(args.ops, len(workers))
    threads = []
    for n, worker in enumerate(workers):
        worker.start_phase(phase, share + (n < extra), deadline)
        threads.append(threading.Thread(target=worker.run, name=f"{worker.name}-{phase}", daemon=True))
    cpu, start = _cpu_seconds(), time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.25)
                progress(phase, sum(w.done for w in workers), time.perf_counter() - start)
    except BaseException:
        # Ctrl-C: the workers finish their call before their connections close
        for worker in workers:
            worker.stop = True
        for thread in threads:
            thread.join()
        raise
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    for worker in workers:
        if worker.error is not None:
            raise worker.error
    return wall, cpu


def _progress_line(stream):
    """A function updating a live 'phase: N ops, R ops/s' line on `stream`
    (with \\r) if it is a terminal; else one that does nothing."""
    if not stream.isatty():
        return lambda phase, done, elapsed: None

    def show(phase, done, elapsed):
        stream.write(f"\r{phase}: {done:,} ops, {done / max(elapsed, 1e-9):,.0f} ops/s   ")
        stream.flush()
    return show


PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def _latency_summary(workers, histogram_class):
    """'p50 .. max' in microseconds from one HdrHistogram of every worker's latencies."""
    highest = 60 * 10**9  # one minute in ns; a slower call counts as a minute
    histogram = histogram_class(1, highest, 3)
    for worker in workers:
        for nanoseconds in worker.latencies:
            histogram.record_value(min(max(nanoseconds, 1), highest))
    values = [(name, histogram.get_value_at_percentile(pct)) for name, pct in PERCENTILES]
    values.append(("max", histogram.get_max_value()))
    return "  ".join(f"{name} {ns / 1000:,.1f}" for name, ns in values)


def _pillowfight(connect, args, out, embedded):
    histogram_class = _histogram_class()
    workers = []
    try:
        for n in range(args.threads):
            workers.append(_Worker(connect, n, args))
        amount = f"{args.duration:g} s" if args.duration is not None else f"{args.ops:,} ops"
        out(f"pillowfight: {args.threads} thread(s), batch {args.batch}, {args.size}-byte values, "
            f"{amount} per phase")
        if embedded:
            out("note: the embedded mock shares this process: its CPU is in the client CPU figure, "
                "and it competes with the client for the CPU and the GIL")
        cpu_note = "this process, with the embedded mock" if embedded else "this process"
        unit = "operation" if args.batch == 1 else f"call (batch of {args.batch} keys)"
        progress = _progress_line(sys.stderr)
        for phase in ("set", "get"):
            wall, cpu = _run_phase(workers, phase, args, progress)
            if sys.stderr.isatty():
                sys.stderr.write("\r\033[K")
            done = sum(w.done for w in workers)
            out(f"{phase}: {done:,} ops in {wall:.2f} s = {done / wall:,.0f} ops/s")
            out(f"  latency per {unit}, us: {_latency_summary(workers, histogram_class)}")
            out(f"  client CPU {cpu / done * 1e6:.2f} us/op (user+system, {cpu_note})")
    finally:
        for worker in workers:
            worker.cb.close()


def _get(cb, keys, out):
    """Print each key's value: 'KEY: not found' for a missing key (a stored
    JSON null prints 'KEY: None'); a value that cannot be shown (a pickle,
    not unpickled) is described instead. Returns the exit status."""
    try:
        results = dict(zip(keys, cb.get(keys)))
    except CouchbaseError as e:
        if e.all_results is None:
            raise
        results = e.all_results
    status = EXIT_OK
    for key in keys:
        value = results.get(key)
        if isinstance(value, NotFoundError):
            out(f"{key}: not found")
            if status == EXIT_OK:
                status = EXIT_NOT_FOUND
        elif isinstance(value, CouchbaseError):
            out(f"{key}: not shown: {value.msg}")
            status = EXIT_ERROR
        else:
            out(f"{key}: {value!r}")
    return status


def _set(cb, args, out):
    if args.plain:
        cas = cb.set(args.key, args.value.encode(), ttl=args.ttl, format=FMT_PLAIN)
    else:
        try:
            value = json.loads(args.value)
        except ValueError:
            value = args.value
        cas = cb.set(args.key, value, ttl=args.ttl, format=FMT_JSON)
    out(f"{args.key}: stored, cas {cas}")


def _run(args, out):
    """Connect as `args` say and run the command; returns the exit status."""
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

        def connect():
            return Couchbase.connect(args.host, args.port, args.username, args.password, args.bucket,
                                     **options)

        if args.command == "pillowfight":
            _pillowfight(connect, args, out, args.embedded)
            return EXIT_OK
        cb = stack.enter_context(connect())
        if args.command == "demo":
            _demo(cb, out)
        elif args.command == "get":
            return _get(cb, args.keys, out)
        elif args.command == "set":
            _set(cb, args, out)
        elif args.command == "rm":
            for key, ok in cb.delete(args.keys, quiet=True).items():
                out(f"{key}: {'deleted' if ok else 'not found'}")
        elif args.command == "incr":
            out(f"{args.key}: {cb.incr(args.key, amount=args.amount, initial=args.initial)}")
        elif args.command == "stats":
            for name, per_node in sorted(cb.stats(args.group).items()):
                for node, value in sorted(per_node.items()):
                    out(f"{node}\t{name}\t{value}")
    return EXIT_OK


def _quiet_stdout():
    """Point stdout at /dev/null, so the interpreter's last flush of output
    nobody reads raises nothing."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv=None):
    """Run the command line; returns the exit status (see EPILOG)."""
    args = _parser().parse_args(argv)
    # each line as it is made, also into a pipe (pillowfight's phases, a
    # tee'd run); Python would otherwise hold them until exit
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        status = _run(args, print)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ArgumentError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except CouchbaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
