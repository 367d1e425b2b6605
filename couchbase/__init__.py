"""couchbase-lcb: a fast Couchbase client, a Cython binding of libcouchbase 3.3
with the API of the original ``couchbase`` 0.9 Python client.

    from couchbase import Couchbase
    cb = Couchbase.connect(bucket='default', password='')
    cb.set('key', {'hello': 'world'})
    cb.get('key')
"""

import logging
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # the names __getattr__ below provides, for type checkers
    from couchbase._lcb import Connection, set_json_converters
    from couchbase.result import ReplicaResult, Result, SubdocResult

__version__ = "0.1.0"

# libcouchbase's log goes to the "couchbase" logger (WARNING and above unless
# the application lowers the level); like any library, print nothing by itself.
logging.getLogger("couchbase").addHandler(logging.NullHandler())

from couchbase.durability import Durability  # noqa: E402 (pure Python, after the logger)

# Value formats, carried in the flags field (as in the 0.9 client).
FMT_JSON = 0x0
FMT_PICKLE = 0x1
FMT_PLAIN = 0x2

__all__ = [
    "Couchbase",
    "Connection",
    "FMT_JSON",
    "FMT_PICKLE",
    "FMT_PLAIN",
    "Durability",
    "ReplicaResult",
    "Result",
    "SubdocResult",
    "set_json_converters",
    "__version__",
]


class Couchbase:
    """The entry point of the 0.9 API: ``Couchbase.connect(...)``."""

    @staticmethod
    def connect(host: str = "localhost", port: int = 8091, username: Optional[str] = None,
                password: Optional[str] = None, bucket: Optional[str] = None, quiet: bool = False,
                **options: Any) -> "Connection":
        """Connect to a bucket and return a :class:`couchbase.libcouchbase.Connection`.

        ``password`` and ``bucket`` are required (ArgumentError otherwise);
        ``username`` defaults to the bucket name. ``port`` is the management
        (HTTP) port. Raises BucketNotFoundError for a missing bucket, AuthError
        for wrong credentials and ConnectError when the cluster cannot be
        reached. Keyword options are those of Connection (``timeout``,
        ``connect_timeout``, ``connection_string``, ``default_format``,
        ``unpickle``, ...). ``unpickle=False`` (or ``'bytes'``) keeps reads
        from unpickling values that whoever can write to the bucket stored as
        pickles; the default, as in 0.9, unpickles them.

        Example::

            cb = Couchbase.connect(password='secret', bucket='protected')
        """
        from couchbase._lcb import Connection

        return Connection(host, port, username, password, bucket, quiet, **options)


def __getattr__(name: str) -> Any:
    # The compiled module is imported on first use, so that pure-Python parts
    # (couchbase.mock, couchbase.exceptions) import without it.
    if name in ("Connection", "set_json_converters"):
        from couchbase import _lcb

        return getattr(_lcb, name)
    if name in ("Result", "ReplicaResult", "SubdocResult"):
        from couchbase import result

        return getattr(result, name)
    raise AttributeError(f"module 'couchbase' has no attribute {name!r}")
