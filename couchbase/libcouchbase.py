"""The 0.9 client's import path: ``from couchbase.libcouchbase import Connection, CouchbaseError``."""

from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN
from couchbase._lcb import Connection
from couchbase.exceptions import CouchbaseError
from couchbase.result import Result

__all__ = ["Connection", "CouchbaseError", "FMT_JSON", "FMT_PICKLE", "FMT_PLAIN", "Result"]
