# Included by _lcb.pyx: replica reads, get(replica=True) and get_all_replicas.
#
# libcouchbase 3.3.4's own replica reads ask the replicas one after another
# (one hung replica times the call out) and fail when a replica slot of the
# map is empty (after a failover). Here every copy of a key is asked at once,
# with packets built here and sent through the packet-forward API to the node
# that holds it: GET to the active node, GET_REPLICA to each replica; empty
# slots are skipped. A call has one slot per copy, a key's copies side by
# side. With `any`, the first good answer settles its key and the call's
# result is ready once every key is settled; the other copies' replies still
# come back to the call, which its driver keeps in flight until they have
# (so that libcouchbase never outlives a cookie, nor is destroyed with a
# forwarded packet in flight).
#
# The call's "command" is its ReplicaRead: what every copy needs to be sent
# and settled.

cdef uint8_t OP_GET_REPLICA = 0x83


cdef struct ReplicaRead:
    int copies            # slots per key: the active copy, then each replica
    bint any              # the first good answer settles a key
    Py_ssize_t unsettled  # keys not settled yet (any)
    int *winner           # per key: the copy that settled it; -1: not yet; -2: every copy failed
    Slot *slots           # the call's slots


cdef ReplicaRead *_new_replica_read(_Slots call, int copies, bint any) except NULL:
    cdef ReplicaRead *rr = <ReplicaRead *> calloc(1, sizeof(ReplicaRead))
    cdef Py_ssize_t nkeys = call.n // copies, k
    if rr == NULL:
        raise MemoryError()
    rr.winner = <int *> malloc(sizeof(int) * (nkeys if nkeys > 0 else 1))
    if rr.winner == NULL:
        free(rr)
        raise MemoryError()
    for k in range(nkeys):
        rr.winner[k] = -1
    rr.copies = copies
    rr.any = any
    rr.unsettled = nkeys
    rr.slots = call.slots
    for k in range(call.n):
        call.slots[k].replica = rr
    return rr


cdef void _free_replica_read(void *cmd) noexcept nogil:
    cdef ReplicaRead *rr = <ReplicaRead *> cmd
    free(rr.winner)
    free(rr)


cdef lcb.lcb_STATUS _send_copy(lcb.lcb_INSTANCE *instance, _Slots call, Py_ssize_t i,
                               Forward **forwards) noexcept:
    """Send copy i % copies of its key to the node the current map names for
    it; LCB_ERR_NO_MATCHING_SERVER for an empty slot (nothing sent)."""
    cdef ReplicaRead *rr = <ReplicaRead *> call.cmd
    cdef Slot *slot = &call.slots[i]
    cdef int copy = <int> (i % rr.copies)
    cdef lcb.lcbvb_CONFIG *config = NULL
    cdef int vbid = 0, server = -1
    cdef char packet[FORWARD_MAX_HEAD]
    cdef lcb.lcb_CMDPKTFWD cmd
    if not _forwards_get(slot):
        return lcb.LCB_ERR_INVALID_ARGUMENT  # a key too long for a built packet (never: 250 bytes fit)
    if lcb.lcb_cntl(instance, lcb.LCB_CNTL_GET, lcb.LCB_CNTL_VBCONFIG,
                    &config) != lcb.LCB_SUCCESS or config == NULL:
        return lcb.LCB_ERR_NO_CONFIGURATION
    lcb.lcbvb_map_key(config, slot.key, slot.nkey, &vbid, &server)
    server = lcb.lcbvb_vbmaster(config, vbid) if copy == 0 else lcb.lcbvb_vbreplica(config, vbid, copy - 1)
    if server < 0 or <unsigned> server >= lcb.lcbvb_get_nservers(config):
        return lcb.LCB_ERR_NO_MATCHING_SERVER
    memset(&cmd, 0, sizeof(cmd))
    cmd.vb.vtype = lcb.LCB_KV_COPY
    cmd.vb.u_buf.contig.bytes = packet
    cmd.vb.u_buf.contig.nbytes = _put_request_head(packet, OP_GET if copy == 0 else OP_GET_REPLICA, 0, slot,
                                                   0, 0)
    _put_be16(packet + 6, <uint16_t> vbid)
    cmd.nomap = 1
    cmd.server_index = <uint16_t> server
    return lcb.lcb_pktfwd3(instance, slot, &cmd)


cdef CommandKind KIND_REPLICA = CommandKind(_send_copy, _free_replica_read, NULL)


cdef void _on_copy(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                   lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    """A copy's reply: read it as a get's; with `any`, settle its key on the
    first good answer (or once every copy failed), and let the call's result
    go once every key is settled."""
    cdef ReplicaRead *rr = slot.replica
    cdef Py_ssize_t i = slot - rr.slots
    cdef int copy = <int> (i % rr.copies)
    cdef Py_ssize_t first = i - copy, k = i // rr.copies
    cdef int c
    cdef bint pending = False
    if err == lcb.LCB_SUCCESS and _kept_in_flight(resp):
        return
    _read_get_reply(instance, slot, err, resp, OP_GET if copy == 0 else OP_GET_REPLICA)
    if rr.any and rr.winner[k] == -1:
        if slot.rc == lcb.LCB_SUCCESS:
            rr.winner[k] = copy
        else:
            for c in range(rr.copies):
                if rr.slots[first + c].rc == NO_REPLY:
                    pending = True
            if not pending:
                rr.winner[k] = -2
        if rr.winner[k] != -1:
            rr.unsettled -= 1
            if rr.unsettled == 0 and slot.unanswered[0] > 1:
                # the result is ready; the other copies still come back to the call
                if slot.aio != NULL:
                    _aio_call_settled(slot.aio)
                else:
                    lcb.lcb_breakout(instance)
    _answered(instance, slot)


cdef void _aio_call_settled(void *cookie) noexcept with gil:
    """Resolve an asyncio call's Future once its result is ready, before its
    last reply (which then finds the Future done)."""
    cdef _Slots call = <_Slots> cookie
    future = call.future
    if not call.in_flight or future is None or future.done():
        return
    try:
        result = call.result()
    except BaseException as e:
        future.set_exception(e)
    else:
        future.set_result(result)


cdef bint _settled(_Slots call) noexcept:
    """Whether a call's result is ready before all its replies came (a
    replica read whose every key has a good answer)."""
    return call.kind is &KIND_REPLICA and (<ReplicaRead *> call.cmd).any and (
        <ReplicaRead *> call.cmd).unsettled == 0


cdef Slot *_copy_error(_Slots call, Py_ssize_t first, int copies) noexcept:
    """The copy whose failure a key's reports: a missing document if any copy
    said so, else the first copy that was asked and failed."""
    cdef int c
    cdef Slot *chosen = NULL
    for c in range(copies):
        if call.slots[first + c].rc == lcb.LCB_ERR_DOCUMENT_NOT_FOUND:
            return &call.slots[first + c]
    for c in range(copies):
        if call.slots[first + c].rc != lcb.LCB_ERR_NO_MATCHING_SERVER:
            return &call.slots[first + c]
    return &call.slots[first]


cdef object _replica_result(_Slots call):
    """A replica read's result: per key the settling copy's value (any), or
    a list of ReplicaResult, one per copy that answered with it (all)."""
    cdef ReplicaRead *rr = <ReplicaRead *> call.cmd
    cdef int copies = rr.copies, c
    cdef Py_ssize_t nkeys = call.n // copies, k, first
    cdef list keys = [call.keys[k * copies] for k in range(nkeys)]
    cdef list values = []
    cdef Slot *slot
    first_error = None
    for k in range(nkeys):
        first = k * copies
        try:
            if rr.any:
                c = rr.winner[k]
                slot = &call.slots[first + c] if c >= 0 else _copy_error(call, first, copies)
                value = _reply(slot, keys[k], "get", REPLY_VALUE, call.quiet_miss, call.extended, call.fmt,
                               call.pickles, None)
            else:
                value = _all_copies(call, first, copies, keys[k])
        except _exc.CouchbaseError as e:
            if first_error is None:
                first_error = e
            value = e
        values.append(value)
    if not call.multi:
        if first_error is not None:
            raise first_error
        return values[0]
    if first_error is not None:
        first_error.all_results = dict(zip(keys, values))
        raise first_error
    return values if call.as_list else dict(zip(keys, values))


cdef list _all_copies(_Slots call, Py_ssize_t first, int copies, object key):
    cdef list found = []
    cdef int c
    cdef Slot *slot
    for c in range(copies):
        slot = &call.slots[first + c]
        if slot.rc == lcb.LCB_SUCCESS:
            found.append(ReplicaResult(_decode(slot, call.fmt, key, "get_all_replicas", call.pickles),
                                       slot.flags, slot.cas, c > 0))
    if found:
        return found
    if _reply(_copy_error(call, first, copies), key, "get_all_replicas", REPLY_VALUE, call.quiet_miss, False,
              call.fmt, call.pickles, None) is None:
        return []  # quiet: no copy has it
    return found
