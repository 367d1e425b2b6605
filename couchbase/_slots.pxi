# Included by _lcb.pyx: the C side of a call. One slot per key holds the key's
# bytes going out and what its response callback copied coming back. The
# callbacks are the same for both drivers: under the sync Connection they run
# inside lcb_wait with the GIL released and never touch Python; under the
# AsyncConnection they run on the loop's thread, and the reply that completes
# a call hands it to the driver (_answered -> _aio_call_answered), which
# resolves its Future.

cdef struct ReplicaRead  # _replica.pxi


cdef struct Slot:
    CookieKind kind        # COOKIE_SLOT: what a packet-forward callback was given
    # going out
    const char *key        # the key's UTF-8 bytes, owned by the caller's key object
    size_t nkey
    const char *data       # a store's encoded value, owned by _Slots.data
    size_t ndata
    # both ways: a remove's or unlock's CAS going out, the reply's CAS coming back
    uint64_t cas
    int *unanswered        # the call's count of slots still waiting for a reply
    void *aio              # the asyncio driver's call (a _Slots) when complete; NULL: sync
    ReplicaRead *replica   # a replica read's copy (_replica.pxi); NULL: any other slot
    const Observe *observe  # copies to wait for once applied (_observe.pxi); NULL: none
    bint replay_safe       # a read: sending it again is harmless
    # coming back
    lcb.lcb_STATUS rc      # NO_REPLY until the callback ran
    bint outcome_unknown   # failed with its connection: it may have been, or be, applied
    bint applied           # the change was applied; rc: whether its copies were confirmed
    uint16_t npersisted    # ...and how far they got
    uint16_t nreplicated
    uint32_t flags
    uint8_t datatype
    uint64_t counter
    char *value            # a get's value: malloc'd copy of a small one...
    size_t nvalue
    # ...or a large one, already as bytes; for stats, the group's dict
    # stat name -> {node: value} (owned reference)
    PyObject *large


# A packet sent through libcouchbase's packet-forward API (_forward.pxi) has
# a slot or a Forward as its cookie; both start with this tag (the retry
# strategy is handed either).
cdef enum CookieKind:
    COOKIE_SLOT = 1
    COOKIE_FORWARD = 2
    COOKIE_EXISTS = 3  # a slot whose packet is a built GET_META (_forward_exists)


# Exactly once. libcouchbase 3.3.4 sends a request again when its connection
# fails, even when the request was written and perhaps applied: a counter or
# an append is then applied twice while success is reported once. So a
# request whose replay could change data or its result is never sent again
# once its connection failed; it fails with OutcomeUnknownError. That is every
# mutation: incr/decr and append/prepend (applied twice), add (replay:
# "exists"), delete (replay: "not found"), set and replace (a replay after
# another client's write clobbers that write), anything with a CAS (replay:
# "CAS mismatch"), lock (replay: "locked") and unlock. Replays are harmless
# for reads: get, get-and-touch, touch (sets the same expiry again) and stats,
# which libcouchbase retries as before; so it does requests the server
# answered without applying (NOT_MY_VBUCKET, temporary failures).
#
# Why not retry a mutation that was never written? libcouchbase cannot say
# whether a packet was written (its retry strategy is told the reason and the
# cookie only), and for a request queued while its node's connection attempt
# failed it keeps the packet's bytes in the node's send queue and sends them
# on the next connection anyway, reply ignored; a retry would be a second
# copy (measured: that is how restarts doubled counters). Such a request
# reaches the server once, when the node is back: its outcome is unknown too.
cdef inline bint _may_be_applied(const Slot *slot, lcb.lcb_STATUS rc) noexcept nogil:
    """Whether a request failed with its connection may still have been (or be)
    applied, and is unsafe to replay."""
    return not slot.replay_safe and _lost_connection(rc)


cdef inline bint _lost_connection(lcb.lcb_STATUS rc) noexcept nogil:
    """A failure of the request's connection, not an answer from the server."""
    return (rc == lcb.LCB_ERR_SOCKET_SHUTDOWN or rc == lcb.LCB_ERR_CONNECTION_RESET
            or rc == lcb.LCB_ERR_NETWORK or rc == lcb.LCB_ERR_CONNECTION_REFUSED
            or rc == lcb.LCB_ERR_CONNECT_ERROR or rc == lcb.LCB_ERR_NODE_UNREACHABLE
            or rc == lcb.LCB_ERR_CANNOT_GET_PORT or rc == lcb.LCB_ERR_FD_LIMIT_REACHED
            or rc == lcb.LCB_ERR_NAMESERVER or rc == lcb.LCB_ERR_UNKNOWN_HOST
            or rc == lcb.LCB_ERR_PROTOCOL_ERROR or rc == lcb.LCB_ERR_REQUEST_CANCELED
            or rc == lcb.LCB_ERR_MAP_CHANGED)


cdef inline bint _never_written(lcb.lcb_RETRY_REASON reason) noexcept nogil:
    """A retry reason for a request whose connection failed before it was
    written: libcouchbase (patch 0005) gives one written before the failure
    SOCKET_CLOSED_WHILE_IN_FLIGHT instead, and (patch 0002) never sends the
    bytes of a failed request later."""
    return (reason == lcb.LCB_RETRY_REASON_SOCKET_NOT_AVAILABLE
            or reason == lcb.LCB_RETRY_REASON_NODE_NOT_AVAILABLE)


cdef inline bint _answered_by_server(lcb.lcb_RETRY_REASON reason) noexcept nogil:
    """A retry reason that is a reply to the request: it was not applied."""
    return (reason == lcb.LCB_RETRY_REASON_KV_NOT_MY_VBUCKET
            or reason == lcb.LCB_RETRY_REASON_KV_COLLECTION_OUTDATED
            or reason == lcb.LCB_RETRY_REASON_KV_ERROR_MAP_RETRY_INDICATED
            or reason == lcb.LCB_RETRY_REASON_KV_LOCKED
            or reason == lcb.LCB_RETRY_REASON_KV_TEMPORARY_FAILURE
            or reason == lcb.LCB_RETRY_REASON_KV_SYNC_WRITE_IN_PROGRESS
            or reason == lcb.LCB_RETRY_REASON_KV_SYNC_WRITE_RE_COMMIT_IN_PROGRESS
            or reason == lcb.LCB_RETRY_REASON_SERVICE_RESPONSE_CODE_INDICATED)


# What a call's mutations wait for once applied (observe-based durability,
# _observe.pxi).
cdef struct Observe:
    uint16_t persist_to     # nodes holding the change on disk, the active included
    uint16_t replicate_to   # replicas holding the change in memory
    uint32_t timeout_us     # how long to poll; 0: the connection's durability_timeout


cdef struct StoreSpec:
    # what every key of one store call sends
    bint forward         # large values may go as packets built here (_forward.pxi)
    uint8_t opcode
    uint32_t flags
    uint32_t expiry
    uint64_t cas


# The status of a slot whose callback has not run: scheduling failed or the
# library never answered (neither should happen; both are reported, not lost).
cdef lcb.lcb_STATUS NO_REPLY = -1


# A kind of libcouchbase command (see _own): how one key of a call is sent,
# how the call's command is freed, and how a durability requirement goes on
# it (NULL: the kind takes none). A call's own timeout needs nothing of the
# kind: _schedule_call schedules the call under it.
ctypedef lcb.lcb_STATUS (*Sender)(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                  Forward **forwards) noexcept
ctypedef void (*Freer)(void *cmd) noexcept nogil
ctypedef lcb.lcb_STATUS (*DurabilitySetter)(void *cmd, lcb.lcb_DURABILITY_LEVEL level) noexcept nogil


cdef struct CommandKind:
    Sender send
    Freer free_cmd
    DurabilitySetter set_durability


# What a successful reply turns into, per kind of operation (_reply, _ops.pxi).
cdef enum Reply:
    REPLY_CAS        # mutations: the new CAS
    REPLY_TRUE       # delete/touch/unlock: True (False: missing, quiet)
    REPLY_COUNTER    # incr/decr: the new value (a Result when extended)
    REPLY_VALUE      # get/lock: the decoded value (a Result when extended)
    REPLY_STATS      # stats: stat name -> {node: value}
    REPLY_EXISTS     # exists: True/False (a Result when extended)
    REPLY_SUBDOC     # lookup_in/mutate_in: a SubdocResult (_subdoc.pxi)


@cython.final
@cython.no_gc  # holds the caller's keys and values; core and future only while in flight
cdef class _Slots:
    """One call of an operation, as both drivers run it: made by _new_slots
    from the keys (checking each one, so a bad key stops the call before
    anything is sent), given its command (which it owns and frees) and how its
    result is shaped (shape), then scheduled by a driver; freed with the values
    the callbacks copied."""
    cdef Slot *slots
    cdef Slot one   # the storage when there is one key: no allocation
    cdef Py_ssize_t n
    cdef list keys  # keeps every key object (and its UTF-8 buffer) alive
    cdef list data  # keeps the encoded values of a store alive
    # the command to send for every slot, and its kind (see _own)
    cdef void *cmd
    cdef const CommandKind *kind
    cdef bint forward_get  # a plain get's (or exists') packets are built here (_forward.pxi)
    cdef StoreSpec store  # what a store sends for every key
    cdef Observe observe  # what every mutation waits for once applied (_observe.pxi)
    cdef lcb.lcb_CMDSTORE *empty_store  # the store command for empty values
    cdef lcb.lcb_SUBDOCSPECS *subdoc_specs  # a sub-document call's specs, shared by every key
    cdef list specs  # ... as couchbase.subdocument specs, to read the replies by
    cdef int unanswered  # slots still waiting for their reply
    cdef uint32_t timeout_us  # the call's own timeout (microseconds); 0: the connection's
    cdef bint done
    # how the replies become the result (_ops.pxi: result)
    cdef str op
    cdef Reply reply
    cdef bint multi
    cdef bint quiet_miss
    cdef bint extended
    cdef bint as_list
    cdef object fmt
    cdef int pickles
    # the sync driver: held while the calling thread sleeps waiting for
    # another to send the call
    cdef PyThread_type_lock wake
    cdef bint sleeping
    # the asyncio driver: the Future and the connection, while in flight
    cdef object future
    cdef object core
    cdef bint in_flight

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.wake != NULL:
            PyThread_free_lock(self.wake)
        if self.slots != NULL:
            for i in range(self.n):
                free(self.slots[i].value)
                Py_XDECREF(self.slots[i].large)
            if self.slots != &self.one:
                free(self.slots)
        if self.cmd != NULL:
            self.kind.free_cmd(self.cmd)
        if self.empty_store != NULL:
            lcb.lcb_cmdstore_destroy(self.empty_store)
        if self.subdoc_specs != NULL:
            lcb.lcb_subdocspecs_destroy(self.subdoc_specs)

    cdef void shape(self, Reply reply, bint multi, bint quiet_miss=False, bint extended=False,
                    object fmt=None, bint as_list=False, int pickles=PICKLE_LOAD) noexcept:
        """Say how the replies become the call's result (see result)."""
        self.reply = reply
        self.multi = multi
        self.quiet_miss = quiet_miss
        self.extended = extended
        self.fmt = fmt
        self.as_list = as_list
        self.pickles = pickles

    cdef object result(self):
        """The call's Python result, or its first failure raised."""
        if self.reply == REPLY_STATS:
            return _stats_result(self)
        if self.kind is &KIND_REPLICA:
            return _replica_result(self)
        return _collect(self)

    cdef int set_data(self, list data) except -1:
        """Attach one encoded value (bytes) per key, for a store."""
        cdef Py_ssize_t i
        self.data = data
        for i in range(self.n):
            self.slots[i].data = PyBytes_AS_STRING(data[i])
            self.slots[i].ndata = <size_t> PyBytes_GET_SIZE(data[i])
        return 0

    cdef bint has_empty_value(self) noexcept:
        cdef Py_ssize_t i
        for i in range(self.n):
            if self.slots[i].ndata == 0:
                return True
        return False

    cdef int set_replay_safe(self) noexcept:
        """Mark every slot a read, which libcouchbase may send again."""
        cdef Py_ssize_t i
        for i in range(self.n):
            self.slots[i].replay_safe = True
        return 0

    cdef int set_cas(self, list cas_values) except -1:
        """Attach one CAS per key, for a remove or an unlock."""
        cdef Py_ssize_t i
        for i in range(self.n):
            self.slots[i].cas = cas_values[i]
        return 0


cdef _Slots _new_call(list keys):
    """A call with one slot per key, waiting for every reply; the caller
    points each slot at its key."""
    cdef _Slots call = _Slots.__new__(_Slots)
    cdef Py_ssize_t i
    call.keys = keys
    call.n = len(keys)
    call.unanswered = <int> call.n
    if call.n == 1:
        call.slots = &call.one
    else:
        call.slots = <Slot *> calloc(call.n if call.n > 0 else 1, sizeof(Slot))
        if call.slots == NULL:
            raise MemoryError()
    for i in range(call.n):
        call.slots[i].kind = COOKIE_SLOT
        call.slots[i].rc = NO_REPLY
        call.slots[i].unanswered = &call.unanswered
    return call


cdef _Slots _new_slots(list keys, str op):
    cdef Py_ssize_t i, nkey
    for k in keys:
        if type(k) is not str and type(k) is not bytes:
            keys = [_exact_key(k, op) for k in keys]  # (the common case needs no copy)
            break
    cdef _Slots call = _new_call(keys)
    call.op = op
    for i in range(call.n):
        call.slots[i].key = _key_ptr(keys[i], &nkey, op)
        call.slots[i].nkey = <size_t> nkey
    return call


cdef _Slots _new_stats_slots(list groups):
    """A stats call: one slot per group name (bytes; empty: the default group)."""
    cdef _Slots call = _new_call(groups)
    cdef Py_ssize_t i
    call.op = "stats"
    call.reply = REPLY_STATS
    for i in range(call.n):
        call.slots[i].key = PyBytes_AS_STRING(groups[i])
        call.slots[i].nkey = <size_t> PyBytes_GET_SIZE(groups[i])
    call.set_replay_safe()  # stats are reads
    return call


cdef int _sleep_until_woken(_Slots call) except -1:
    """Sleep (GIL released) until another thread sends this call, or hands
    this thread the lead."""
    if call.wake == NULL:
        call.wake = PyThread_allocate_lock()
        if call.wake == NULL:
            raise MemoryError()
    PyThread_acquire_lock(call.wake, NOWAIT_LOCK)
    call.sleeping = True
    with nogil:
        PyThread_acquire_lock(call.wake, WAIT_LOCK)
    return 0


cdef inline void _wake(_Slots call) noexcept:
    if call.sleeping:
        call.sleeping = False
        PyThread_release_lock(call.wake)


cdef inline void _scheduled(Slot *slot, lcb.lcb_STATUS rc) noexcept nogil:
    """Record the outcome of scheduling: a refused command keeps its status
    and will get no reply."""
    if rc != lcb.LCB_SUCCESS:
        slot.rc = rc
        slot.unanswered[0] -= 1


cdef inline void _answered(lcb.lcb_INSTANCE *instance, Slot *slot) noexcept nogil:
    """Count a slot's reply in. When a call has all its replies: under the
    sync driver, stop the event loop so the waiting leader can hand it back
    and send what other threads queued meanwhile (the rest stays in flight);
    under the asyncio driver, resolve its Future. Nothing may touch the slot
    after this (the asyncio driver may free the call)."""
    if not slot.applied and _may_be_applied(slot, slot.rc):
        slot.outcome_unknown = True  # whichever way libcouchbase failed it
    slot.unanswered[0] -= 1
    if slot.unanswered[0] == 0:
        if slot.aio != NULL:
            _aio_call_answered(slot.aio)
        else:
            lcb.lcb_breakout(instance)


cdef lcb.lcb_STATUS _store_command(lcb.lcb_CMDSTORE **cmd, lcb.lcb_STORE_OPERATION operation,
                                   const StoreSpec *spec, uint8_t datatype) noexcept:
    """Create the store command every key of a call is sent with."""
    cdef lcb.lcb_STATUS rc = lcb.lcb_cmdstore_create(cmd, operation)
    if rc == lcb.LCB_SUCCESS and spec.cas:
        rc = lcb.lcb_cmdstore_cas(cmd[0], spec.cas)
    if rc == lcb.LCB_SUCCESS and operation != lcb.LCB_STORE_APPEND and operation != lcb.LCB_STORE_PREPEND:
        rc = lcb.lcb_cmdstore_expiry(cmd[0], spec.expiry)
        if rc == lcb.LCB_SUCCESS:
            rc = lcb.lcb_cmdstore_flags(cmd[0], spec.flags)
        if rc == lcb.LCB_SUCCESS:
            rc = lcb.lcb_cmdstore_datatype(cmd[0], datatype)
    return rc


cdef void _schedule_call(lcb.lcb_INSTANCE *instance, _Slots call, Forward **forwards) noexcept:
    """Schedule one call's command for each of its slots, by its kind's
    sender (both drivers; a large store's packet is listed in `forwards`)."""
    cdef Py_ssize_t i
    cdef uint32_t connection_us = 0
    cdef bint own_timeout = call.timeout_us != 0
    if _refuse_impossible_observe(instance, call):
        return
    if own_timeout:
        # every command, libcouchbase's or a packet built here, takes its deadline (and a
        # durable write its durability timeout) from the connection's timeout as it is
        # scheduled; patch 0007 makes a shorter one fire on time
        lcb.lcb_cntl(instance, lcb.LCB_CNTL_GET, lcb.LCB_CNTL_OP_TIMEOUT, &connection_us)
        lcb.lcb_cntl(instance, lcb.LCB_CNTL_SET, lcb.LCB_CNTL_OP_TIMEOUT, &call.timeout_us)
    for i in range(call.n):
        _scheduled(&call.slots[i], call.kind.send(instance, call, i, forwards))
    if own_timeout:
        lcb.lcb_cntl(instance, lcb.LCB_CNTL_SET, lcb.LCB_CNTL_OP_TIMEOUT, &connection_us)


cdef inline void _own(_Slots call, void *cmd, const CommandKind *kind) noexcept:
    """Give a call the command it sends for every key, and its kind (how it
    is sent, how it is freed: with the call)."""
    call.cmd = cmd
    call.kind = kind


# The kinds of command, each a sender (point the call's command at the
# slot's key, and value or CAS, and schedule it; the slot is the cookie its
# callback receives) and a freer. get, exists and store first try the
# packets built in _forward.pxi.

cdef lcb.lcb_STATUS _send_get(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                              Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDGET *cmd = <lcb.lcb_CMDGET *> call.cmd
    if call.forward_get and _forwards_get(slot) and _forward_get(instance, slot) == lcb.LCB_SUCCESS:
        return lcb.LCB_SUCCESS  # else libcouchbase's own get
    lcb.lcb_cmdget_key(cmd, slot.key, slot.nkey)
    return lcb.lcb_get(instance, slot, cmd)


cdef void _free_get(void *cmd) noexcept nogil:
    lcb.lcb_cmdget_destroy(<lcb.lcb_CMDGET *> cmd)


cdef CommandKind KIND_GET = CommandKind(_send_get, _free_get, NULL)


cdef lcb.lcb_STATUS _send_store(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDSTORE *cmd = call.empty_store if slot.ndata == 0 else <lcb.lcb_CMDSTORE *> call.cmd
    if _forwards(&call.store, slot) and _forward(
            instance, slot, &call.store, PyList_GET_ITEM(call.data, i), forwards) == lcb.LCB_SUCCESS:
        return lcb.LCB_SUCCESS  # else libcouchbase's own store, which copies the value
    lcb.lcb_cmdstore_key(cmd, slot.key, slot.nkey)
    lcb.lcb_cmdstore_value(cmd, slot.data, slot.ndata)
    return lcb.lcb_store(instance, slot, cmd)


cdef void _free_store(void *cmd) noexcept nogil:
    lcb.lcb_cmdstore_destroy(<lcb.lcb_CMDSTORE *> cmd)


cdef CommandKind KIND_STORE = CommandKind(_send_store, _free_store,
                                          <DurabilitySetter> lcb.lcb_cmdstore_durability)


cdef lcb.lcb_STATUS _send_remove(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                 Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDREMOVE *cmd = <lcb.lcb_CMDREMOVE *> call.cmd
    lcb.lcb_cmdremove_key(cmd, slot.key, slot.nkey)
    lcb.lcb_cmdremove_cas(cmd, slot.cas)
    return lcb.lcb_remove(instance, slot, cmd)


cdef void _free_remove(void *cmd) noexcept nogil:
    lcb.lcb_cmdremove_destroy(<lcb.lcb_CMDREMOVE *> cmd)


cdef CommandKind KIND_REMOVE = CommandKind(_send_remove, _free_remove,
                                           <DurabilitySetter> lcb.lcb_cmdremove_durability)


cdef lcb.lcb_STATUS _send_counter(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                  Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDCOUNTER *cmd = <lcb.lcb_CMDCOUNTER *> call.cmd
    lcb.lcb_cmdcounter_key(cmd, slot.key, slot.nkey)
    return lcb.lcb_counter(instance, slot, cmd)


cdef void _free_counter(void *cmd) noexcept nogil:
    lcb.lcb_cmdcounter_destroy(<lcb.lcb_CMDCOUNTER *> cmd)


cdef CommandKind KIND_COUNTER = CommandKind(_send_counter, _free_counter,
                                            <DurabilitySetter> lcb.lcb_cmdcounter_durability)


cdef lcb.lcb_STATUS _send_touch(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDTOUCH *cmd = <lcb.lcb_CMDTOUCH *> call.cmd
    lcb.lcb_cmdtouch_key(cmd, slot.key, slot.nkey)
    return lcb.lcb_touch(instance, slot, cmd)


cdef void _free_touch(void *cmd) noexcept nogil:
    lcb.lcb_cmdtouch_destroy(<lcb.lcb_CMDTOUCH *> cmd)


cdef CommandKind KIND_TOUCH = CommandKind(_send_touch, _free_touch, NULL)


cdef lcb.lcb_STATUS _send_unlock(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                 Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDUNLOCK *cmd = <lcb.lcb_CMDUNLOCK *> call.cmd
    lcb.lcb_cmdunlock_key(cmd, slot.key, slot.nkey)
    lcb.lcb_cmdunlock_cas(cmd, slot.cas)
    return lcb.lcb_unlock(instance, slot, cmd)


cdef void _free_unlock(void *cmd) noexcept nogil:
    lcb.lcb_cmdunlock_destroy(<lcb.lcb_CMDUNLOCK *> cmd)


cdef CommandKind KIND_UNLOCK = CommandKind(_send_unlock, _free_unlock, NULL)


cdef lcb.lcb_STATUS _send_stats(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                Forward **forwards) noexcept:
    # one STAT packet per node; a final reply once every node answered
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDSTATS *cmd = <lcb.lcb_CMDSTATS *> call.cmd
    lcb.lcb_cmdstats_key(cmd, slot.key, slot.nkey)
    return lcb.lcb_stats(instance, slot, cmd)


cdef void _free_stats(void *cmd) noexcept nogil:
    lcb.lcb_cmdstats_destroy(<lcb.lcb_CMDSTATS *> cmd)


cdef CommandKind KIND_STATS = CommandKind(_send_stats, _free_stats, NULL)


cdef lcb.lcb_STATUS _send_exists(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                 Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDEXISTS *cmd = <lcb.lcb_CMDEXISTS *> call.cmd
    if call.forward_get and _forwards_get(slot) and _forward_exists(instance, slot) == lcb.LCB_SUCCESS:
        return lcb.LCB_SUCCESS  # else libcouchbase's own exists
    lcb.lcb_cmdexists_key(cmd, slot.key, slot.nkey)
    return lcb.lcb_exists(instance, slot, cmd)


cdef void _free_exists(void *cmd) noexcept nogil:
    lcb.lcb_cmdexists_destroy(<lcb.lcb_CMDEXISTS *> cmd)


cdef CommandKind KIND_EXISTS = CommandKind(_send_exists, _free_exists, NULL)


cdef lcb.lcb_STATUS _send_subdoc(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                                 Forward **forwards) noexcept:
    cdef Slot *slot = &call.slots[i]
    cdef lcb.lcb_CMDSUBDOC *cmd = <lcb.lcb_CMDSUBDOC *> call.cmd
    lcb.lcb_cmdsubdoc_key(cmd, slot.key, slot.nkey)
    return lcb.lcb_subdoc(instance, slot, cmd)


cdef void _free_subdoc(void *cmd) noexcept nogil:
    lcb.lcb_cmdsubdoc_destroy(<lcb.lcb_CMDSUBDOC *> cmd)


cdef CommandKind KIND_SUBDOC = CommandKind(_send_subdoc, _free_subdoc,
                                           <DurabilitySetter> lcb.lcb_cmdsubdoc_durability)


cdef void _install_callbacks(lcb.lcb_INSTANCE *instance) noexcept:
    """The response callbacks, the same for both drivers."""
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_GET, _on_get)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_STORE, _on_store)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_REMOVE, _on_remove)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_COUNTER, _on_counter)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_TOUCH, _on_touch)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_UNLOCK, _on_unlock)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_STATS, <lcb.lcb_RESPCALLBACK> _on_stats)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_EXISTS, _on_exists)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_SDLOOKUP, _on_subdoc)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_SDMUTATE, _on_subdoc)
    lcb.lcb_install_callback(instance, lcb.LCB_CALLBACK_ENDURE, _on_endure)
    lcb.lcb_set_pktfwd_callback(instance, _on_forwarded)
    lcb.lcb_set_pktflushed_callback(instance, _on_forward_flushed)


cdef void _on_get(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPGET *resp = <const lcb.lcb_RESPGET *> rb
    cdef Slot *slot = NULL
    cdef const char *value = NULL
    cdef size_t nvalue = 0
    lcb.lcb_respget_cookie(resp, <void **> &slot)
    if slot == NULL:
        return
    slot.rc = lcb.lcb_respget_status(resp)
    lcb.lcb_respget_cas(resp, &slot.cas)
    lcb.lcb_respget_flags(resp, &slot.flags)
    lcb.lcb_respget_datatype(resp, &slot.datatype)
    if slot.rc == lcb.LCB_SUCCESS:
        lcb.lcb_respget_value(resp, &value, &nvalue)
        _keep_value(slot, value, nvalue)
    _answered(instance, slot)


cdef inline void _keep_value(Slot *slot, const char *value, size_t nvalue) noexcept nogil:
    """Copy a get's value out of libcouchbase's buffer before it is reused."""
    if nvalue >= LARGE_VALUE:
        _keep_as_bytes(slot, value, nvalue)
        return
    slot.value = <char *> malloc(nvalue if nvalue > 0 else 1)
    if slot.value == NULL:
        slot.rc = lcb.LCB_ERR_NO_MEMORY
    else:
        memcpy(slot.value, value, nvalue)
        slot.nvalue = nvalue


# From this size on, a value is copied straight into a bytes object in the
# callback: taking the GIL costs less than a second copy of the value and the
# allocator churn of a temporary buffer (page faults on every call).
cdef size_t LARGE_VALUE = 16384


cdef void _keep_as_bytes(Slot *slot, const char *value, size_t nvalue) noexcept with gil:
    try:
        data = PyBytes_FromStringAndSize(value, <Py_ssize_t> nvalue)
    except MemoryError:
        slot.rc = lcb.LCB_ERR_NO_MEMORY
        return
    Py_INCREF(data)
    slot.large = <PyObject *> data


cdef void _on_store(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPSTORE *resp = <const lcb.lcb_RESPSTORE *> rb
    cdef Slot *slot = NULL
    cdef lcb.lcb_MUTATION_TOKEN token
    lcb.lcb_respstore_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respstore_status(resp)
        lcb.lcb_respstore_cas(resp, &slot.cas)
        if slot.observe != NULL:
            lcb.lcb_respstore_mutation_token(resp, &token)
            if _awaits_copies(instance, slot, &token):
                return
        _answered(instance, slot)


cdef void _on_remove(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPREMOVE *resp = <const lcb.lcb_RESPREMOVE *> rb
    cdef Slot *slot = NULL
    cdef lcb.lcb_MUTATION_TOKEN token
    lcb.lcb_respremove_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respremove_status(resp)
        lcb.lcb_respremove_cas(resp, &slot.cas)
        if slot.observe != NULL:
            lcb.lcb_respremove_mutation_token(resp, &token)
            if _awaits_copies(instance, slot, &token):
                return
        _answered(instance, slot)


cdef void _on_counter(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPCOUNTER *resp = <const lcb.lcb_RESPCOUNTER *> rb
    cdef Slot *slot = NULL
    cdef lcb.lcb_MUTATION_TOKEN token
    lcb.lcb_respcounter_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respcounter_status(resp)
        lcb.lcb_respcounter_cas(resp, &slot.cas)
        lcb.lcb_respcounter_value(resp, &slot.counter)
        if slot.observe != NULL:
            lcb.lcb_respcounter_mutation_token(resp, &token)
            if _awaits_copies(instance, slot, &token):
                return
        _answered(instance, slot)


cdef void _on_touch(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPTOUCH *resp = <const lcb.lcb_RESPTOUCH *> rb
    cdef Slot *slot = NULL
    lcb.lcb_resptouch_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_resptouch_status(resp)
        lcb.lcb_resptouch_cas(resp, &slot.cas)
        _answered(instance, slot)


cdef void _on_unlock(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPUNLOCK *resp = <const lcb.lcb_RESPUNLOCK *> rb
    cdef Slot *slot = NULL
    lcb.lcb_respunlock_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respunlock_status(resp)
        lcb.lcb_respunlock_cas(resp, &slot.cas)
        _answered(instance, slot)


cdef void _on_exists(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPEXISTS *resp = <const lcb.lcb_RESPEXISTS *> rb
    cdef Slot *slot = NULL
    lcb.lcb_respexists_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respexists_status(resp)
        if slot.rc == lcb.LCB_SUCCESS and not lcb.lcb_respexists_is_found(resp):
            slot.rc = lcb.LCB_ERR_DOCUMENT_NOT_FOUND  # a deleted document's tombstone
        lcb.lcb_respexists_cas(resp, &slot.cas)
        _answered(instance, slot)


cdef void _on_stats(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept with gil:
    """One stat of one node for a group's slot, or the group's final reply
    (the only one without a server: libcouchbase sends it once every node
    answered, failed or timed out). Stats are rare, so this callback takes the
    GIL and builds the group's dict directly."""
    cdef const lcb.lcb_RESPSTATS *resp = <const lcb.lcb_RESPSTATS *> rb
    cdef Slot *slot = NULL
    cdef const char *key = NULL
    cdef const char *value = NULL
    cdef const char *server = NULL
    cdef size_t nkey = 0, nvalue = 0, nserver = 0
    cdef lcb.lcb_STATUS rc = lcb.lcb_respstats_status(resp)
    lcb.lcb_respstats_cookie(resp, <void **> &slot)
    if slot == NULL:
        return
    lcb.lcb_respstats_server(resp, &server, &nserver)
    if server == NULL:
        if slot.rc == NO_REPLY:  # else keep the failure met while gathering
            slot.rc = rc
        _answered(instance, slot)
        return
    lcb.lcb_respstats_key(resp, &key, &nkey)
    if rc != lcb.LCB_SUCCESS or key == NULL or nkey == 0 or slot.rc != NO_REPLY:
        return  # a node's failure or end marker: the final reply reports it
    lcb.lcb_respstats_value(resp, &value, &nvalue)
    try:
        if slot.large == NULL:
            group = {}
            Py_INCREF(group)
            slot.large = <PyObject *> group
        name = key[:nkey].decode("utf-8", "replace")
        node = server[:nserver].decode("utf-8", "replace")
        text = value[:nvalue].decode("utf-8", "replace") if value != NULL else ""
        (<dict> slot.large).setdefault(name, {})[node] = _stat_value(text)
    except MemoryError:  # never let an exception cross into C
        slot.rc = lcb.LCB_ERR_NO_MEMORY
    except BaseException:
        slot.rc = lcb.LCB_ERR_SDK_INTERNAL


cdef dict _stats_result(_Slots call):
    """Every group's stats merged: stat name -> {node: value}; the first
    group that failed raises."""
    cdef dict stats = {}
    cdef Py_ssize_t i
    cdef Slot *slot
    for i in range(call.n):
        slot = &call.slots[i]
        if slot.rc != lcb.LCB_SUCCESS:
            raise _exc.exception_for_status(slot.rc, operation="stats")
    for i in range(call.n):
        slot = &call.slots[i]
        if slot.large != NULL:
            for name, nodes in (<dict> slot.large).items():
                stats.setdefault(name, {}).update(nodes)
    return stats


cdef object _stat_value(str text):
    """Numbers come back as int or float, anything else as the server's text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
