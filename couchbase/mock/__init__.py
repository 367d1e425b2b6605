"""A Couchbase cluster stand-in for tests: ``from couchbase.mock import MockCluster``.

Pure Python (asyncio, standard library only), served from its own thread so that a blocking
client call in the test thread cannot starve it. It speaks the KV binary protocol (HELLO,
SASL SCRAM-SHA512/256/1 and PLAIN, SELECT_BUCKET, error maps, CCCP, collections, CRUD,
arithmetic, locks, expiry, GET_META, OBSERVE(_SEQNO), STAT groups) and the management REST
API (pools, buckets, RBAC users, streaming configs), so libcouchbase, its ``cbc`` tools and
the official SDKs work against it unchanged.

Usage::

    from couchbase.mock import MockCluster

    with MockCluster(nodes=3, buckets={"default": "", "protected": "secret"}) as mock:
        mock.connstr("default")      # couchbase://127.0.0.1:MGMT=http/default (HTTP bootstrap)
        mock.kv_connstr("default")   # couchbase://127.0.0.1:KV/default (CCCP bootstrap)
        mock.failover(1)             # topology changes bump the config revision ...
        mock.add_node()              # ... and are pushed to every streaming config
        mock.opfail(0x86, 2, "GET")  # the next two GETs answer ETMPFAIL
        mock.time_travel(3600)       # expiry and lock timeouts follow the mock clock

Control methods (each a control command, defined once in ``cluster.ClusterCore``): the same
over HTTP as ``GET /mock/COMMAND?k=v`` on any management port (JSON answer), and
``/mock/help`` or ``python -m couchbase.mock --help`` lists them with their parameters.
pytest: ``pytest_plugins = ["couchbase.mock.pytest_plugin"]`` gives the ``couchbase_mock``
(session), ``couchbase_mock_factory``, ``couchbase_connection``, ``couchbase_flushed_connection``
and ``couchbase_key`` fixtures.

Modules: ``protocol`` (constants, packet codec), ``kv`` (KV connection and command handlers),
``sasl``, ``errmap``, ``store`` (items, CAS, expiry, locks, mock clock), ``config`` (cluster
and bucket JSON), ``stats``, ``rest`` (management HTTP and config streams), ``control``
(``/mock`` routes), ``commands`` (the registry of control commands), ``errors``
(``BucketError``), ``cluster`` (nodes, buckets, vbucket maps, topology, the commands),
``mock_cluster`` (``MockCluster``, the cluster in a thread).
"""

from .errors import BucketError
from .mock_cluster import MockCluster

__all__ = ["MockCluster", "BucketError"]
