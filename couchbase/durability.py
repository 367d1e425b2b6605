"""Durability: how far a mutation must have spread before its call returns.

``durability=`` on every mutation asks the server for a synchronous level
(Couchbase Server 6.5 and later): the reply waits until the level is met, or
the call fails with :class:`~couchbase.exceptions.DurabilityImpossibleError`
(too few nodes hold the key: nothing applied) or
:class:`~couchbase.exceptions.DurabilityAmbiguousError` (applied on the active
node, the level not confirmed in time). ``persist_to=``/``replicate_to=``, on
every mutation too, are the older, observe-based form for servers without
synchronous replication: once the change is applied, the client polls its
copies (OBSERVE_SEQNO) until ``replicate_to`` replicas hold it and
``persist_to`` nodes (the active one included) have it on disk, within the
call's ``timeout=`` or else the connection's ``durability_timeout``. Asking for
more copies than the bucket has raises DurabilityImpossibleError before
anything is sent; copies not confirmed in time raise DurabilityAmbiguousError,
which says the change was applied.
"""

import enum


class Durability(enum.IntEnum):
    """The synchronous durability levels (their values are the wire's)."""

    #: No requirement: the reply comes once the active node has the change (the default).
    NONE = 0
    #: A majority of the copies (active and replicas) hold it in memory.
    MAJORITY = 1
    #: As MAJORITY, and the active node has persisted it to disk.
    MAJORITY_AND_PERSIST_TO_ACTIVE = 2
    #: A majority of the copies have persisted it to disk.
    PERSIST_TO_MAJORITY = 3
