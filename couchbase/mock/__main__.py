"""``python -m couchbase.mock``: run a mock Couchbase cluster until SIGTERM/SIGINT.

Prints exactly one line ``READY {json}`` (host, port, kv_ports, mgmt_ports, username,
password, buckets; with TLS also ca_path, kv_tls_ports, mgmt_tls_ports, tls_only,
tls_client_auth) on stdout once every port listens.
"""

import argparse
import json
import signal
import sys
import threading

from .cluster import DEFAULT_VBUCKETS, MAX_NODES
from .commands import epilog
from .mock_cluster import MockCluster


class _EpilogAsWritten(argparse.HelpFormatter):
    """Wraps the description and flags as usual; the command list keeps its lines."""

    def _fill_text(self, text, width, indent):
        if text.startswith("control commands"):
            return text
        return super()._fill_text(text, width, indent)


_DESCRIPTION = ("Run a mock Couchbase cluster (KV binary protocol + management REST) for tests. "
                "Prints one line 'READY {json}' when it serves, then serves until SIGTERM or SIGINT.")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m couchbase.mock", description=_DESCRIPTION,
                                epilog=epilog(), formatter_class=_EpilogAsWritten)
    p.add_argument("--nodes", type=int, default=1, metavar="N",
                   help="number of nodes, 1 to %d (default 1)" % MAX_NODES)
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to listen on and to advertise (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, metavar="P",
                   help="management port of node 0; node i uses P+2i (management) and P+2i+1 (KV). "
                        "0 (default) picks free ports")
    p.add_argument("--bucket", action="append", default=None, metavar="NAME[:PASSWORD]",
                   help="create a couchbase bucket (repeatable); default: one open bucket 'default'")
    p.add_argument("--memcached-bucket", action="append", default=[], metavar="NAME[:PASSWORD]",
                   help="create a memcached (ketama) bucket (repeatable)")
    p.add_argument("--username", default="Administrator", metavar="U",
                   help="RBAC administrator user name (default Administrator)")
    p.add_argument("--password", default="password", metavar="P",
                   help="RBAC administrator password (default password)")
    p.add_argument("--vbuckets", type=int, default=DEFAULT_VBUCKETS, metavar="N",
                   help="vbuckets per couchbase bucket (default %d)" % DEFAULT_VBUCKETS)
    p.add_argument("--replicas", type=int, default=1, metavar="R",
                   help="replicas per couchbase bucket (default 1)")
    p.add_argument("--tls", action="store_true",
                   help="serve TLS too: a TLS KV and an HTTPS management port per node, certificates "
                        "from a CA made at start (its path is the READY line's ca_path; needs trustme)")
    p.add_argument("--tls-only", action="store_true",
                   help="TLS with the plain ports closed (implies --tls)")
    p.add_argument("--tls-client-auth", action="store_true",
                   help="TLS taking client certificates as credentials (implies --tls)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    buckets = args.bucket if args.bucket is not None else (["default"] if not args.memcached_bucket else [])
    try:
        mock = MockCluster(nodes=args.nodes, buckets=buckets, username=args.username, password=args.password,
                           host=args.host, port=args.port, vbuckets=args.vbuckets, replicas=args.replicas,
                           tls=args.tls, tls_only=args.tls_only, tls_client_auth=args.tls_client_auth)
    except (ValueError, RuntimeError) as exc:
        print("couchbase.mock: %s" % exc, file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        mock.start()
    except (OSError, ValueError, TimeoutError) as exc:
        print("couchbase.mock: cannot start: %s" % exc, file=sys.stderr)
        return 1
    try:
        for spec in args.memcached_bucket:
            name, _, pw = spec.partition(":")
            mock.create_bucket(name, pw, bucket_type="memcached")
        info = mock.info()
        ready = {k: info[k] for k in ("host", "port", "kv_ports", "mgmt_ports", "username", "password",
                                      "buckets", "ca_path", "kv_tls_ports", "mgmt_tls_ports", "tls_only",
                                      "tls_client_auth") if k in info}
        sys.stdout.write("READY %s\n" % json.dumps(ready, separators=(",", ":")))
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not mock.running:
                return 1
    finally:
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
