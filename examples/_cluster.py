"""What every example shares: a Connection to the cluster named on the command
line, or to a mock cluster started in-process when none is named.

    python examples/NAME.py                                   # the embedded mock
    python examples/NAME.py --host HOST --bucket B --password P
"""

import argparse
import contextlib

from couchbase import Couchbase
from couchbase.mock import MockCluster


@contextlib.contextmanager
def connection(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", help="a cluster node (default: start a mock cluster in-process)")
    parser.add_argument("--port", type=int, default=8091, help="its management port (default 8091)")
    parser.add_argument("--bucket", default="default", help="the bucket (default: default)")
    parser.add_argument("--password", default="", help="the bucket's password (default: empty)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.host is None:
            mock = stack.enter_context(MockCluster(buckets={args.bucket: args.password}))
            args.host, args.port = mock.host, mock.port
        yield stack.enter_context(Couchbase.connect(args.host, args.port, bucket=args.bucket,
                                                    password=args.password))
