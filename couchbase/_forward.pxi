# Included by _lcb.pyx: packets the binding builds itself, sent through
# libcouchbase's packet-forward API. libcouchbase still picks the node, fills
# in vbucket and opaque, times the command out, and retries it (after copying
# it) on NOT_MY_VBUCKET and temporary failures, as for its own commands; what
# it skips is its per-command C++ layer.
#
# Stores of large values: libcouchbase's store copies a value three times
# (into the command, into the command's shared copy, into the network buffer):
# 37% of the client's CPU for a 100 KiB set. Here the packet's head (header,
# extras, key) is built by the binding and the value is sent straight from the
# bytes object it was encoded into. Only where libcouchbase would send the very
# same bytes: no collections (no collection ID in the key), no outgoing
# compression, raw datatype (a JSON datatype depends on what each node
# negotiated, which only libcouchbase knows).
#
# Lifetime of a forwarded store: libcouchbase reads the packet's buffers until
# it calls _on_forward_flushed ("flushed"), which may come before or after the
# reply (_on_forwarded: after it when the command timed out or its node failed
# before the packet was written out). Both callbacks run in the thread that
# runs the event loop, one after the other, so no lock is needed; a Forward is
# freed by whichever of the two comes last. The value belongs to the call
# (_Slots.data) until the reply; only a reply that comes first takes a
# reference of its own (the call may end and drop its values meanwhile).
# libcouchbase never says it is done with a packet it queued for a node it
# never connected to: the Connection keeps its Forwards in a list and frees
# what is left once its instance is destroyed (_drop_forwards).
#
# Plain gets: a 24-byte header and the key, copied by libcouchbase into its
# network buffer (nothing to keep alive); the reply is parsed here, checked
# against the bytes libcouchbase read (a reply is input). Only where replies
# cannot be compressed (snappy not negotiated) and keys carry no collection ID.
# exists goes the same way, as a GET_META of the same shape (see
# _forward_exists), wherever gets do.
#
# Either packet only where it fits libcouchbase's widths (FORWARD_MAX_HEAD,
# FORWARD_MAX_PACKET below): longer keys take libcouchbase's own commands.
#
# Neither is used with tracing or operation metrics on: libcouchbase traces and
# times only its own commands.


# libcouchbase's widths on the forwarding path (src/mc/forward.c, mcreq.c of
# 3.3.4), each checked before a packet is handed over; what does not fit takes
# libcouchbase's own command path. The binding sends no framing extras
# (REQUEST_MAGIC), so a packet's head is its header, extras and key.
cdef enum:
    # mcreq_reserve_header(..., uint8_t hdrsize): a head that is copied
    # (LCB_KV_COPY, or split over buffers) is reserved with an 8-bit size, so
    # a longer one wraps: too few bytes reach the socket, the rest of the head
    # is written past the reservation, and the server reads the following
    # bytes of the stream as part of this request (a get of a 232-byte key).
    FORWARD_MAX_HEAD = 0xFF
# mc_forward_packet adds the 24-byte header to the 32-bit body length in an
# `unsigned`: a whole packet must stay within 32 bits.
cdef uint64_t FORWARD_MAX_PACKET = 0xFFFFFFFF


cdef inline bint _fits_forwarding(size_t nhead, size_t nvalue) noexcept nogil:
    """Whether a packet of this head and value fits every width above."""
    return nhead <= FORWARD_MAX_HEAD and nvalue <= FORWARD_MAX_PACKET - nhead


cdef struct Forward:
    CookieKind kind      # COOKIE_FORWARD
    Slot *slot           # the key's slot, until the reply
    PyObject *value      # the bytes sent: the call's, or owned if adopted
    bint adopted         # the reply came first: value is a reference of our own
    bint flushed         # libcouchbase is done with head and value
    uint8_t opcode
    lcb.lcb_IOV iov[2]   # the head, then the value
    char head[FORWARD_MAX_HEAD]  # header, extras (flags, expiry), key
    Forward *next        # the Connection's list of Forwards not yet freed
    Forward **pprev


cdef inline Slot *_slot_of(const void *cookie) noexcept nogil:
    """The slot a request's cookie stands for (NULL: a stats request, or a
    forwarded store already answered)."""
    if cookie == NULL:
        return NULL
    cdef CookieKind kind = (<const CookieKind *> cookie)[0]
    if kind == COOKIE_SLOT or kind == COOKIE_EXISTS:
        return <Slot *> cookie
    if kind == COOKIE_FORWARD:
        return (<Forward *> cookie).slot
    return NULL


cdef lcb.lcb_RETRY_ACTION _retry_strategy(lcb.lcb_RETRY_REQUEST *req,
                                          lcb.lcb_RETRY_REASON reason) noexcept nogil:
    """libcouchbase's best-effort strategy (retry reads always, other requests
    when the reason allows), except that a request unsafe to replay is not
    retried once it was written and its connection failed (see _may_be_applied,
    _slots.pxi); one never written is sent again."""
    cdef lcb.lcb_RETRY_ACTION action
    cdef Slot *slot
    action.should_retry = 1
    action.retry_after_ms = 0
    if lcb.lcb_retry_request_is_idempotent(req):
        return action
    slot = _slot_of(lcb.lcb_retry_request_operation_cookie(req))
    if slot == NULL or _answered_by_server(reason) or _never_written(reason):
        action.should_retry = lcb.lcb_retry_reason_allows_non_idempotent_retry(reason) != 0
    elif not slot.replay_safe:
        slot.outcome_unknown = True
        action.should_retry = 0
    return action


cdef inline void _link(Forward *fwd, Forward **head) noexcept nogil:
    fwd.next = head[0]
    fwd.pprev = head
    if fwd.next != NULL:
        fwd.next.pprev = &fwd.next
    head[0] = fwd


cdef inline void _unlink_and_free(Forward *fwd) noexcept nogil:
    fwd.pprev[0] = fwd.next
    if fwd.next != NULL:
        fwd.next.pprev = fwd.pprev
    free(fwd)


cdef void _drop_forwards(Forward **head) noexcept:
    """Free the Forwards left once the instance is destroyed (with the GIL:
    some hold a reference to their value)."""
    cdef Forward *fwd
    while head[0] != NULL:
        fwd = head[0]
        if fwd.adopted:
            Py_XDECREF(fwd.value)
        _unlink_and_free(fwd)


# Forwards whose connection went away while libcouchbase may still flush them
# (an AsyncConnection freed inside one of its own callbacks destroys its
# instance later): freed by their flush callback, or never.
cdef Forward *_orphans = NULL


cdef void _orphan_forwards(Forward **head) noexcept:
    """Move a connection's Forwards to _orphans (its list head goes away)."""
    cdef Forward *fwd
    while head[0] != NULL:
        fwd = head[0]
        head[0] = fwd.next
        if fwd.next != NULL:
            fwd.next.pprev = head
        _link(fwd, &_orphans)


# memcached binary protocol
cdef uint8_t REQUEST_MAGIC = 0x80
cdef uint8_t RESPONSE_MAGIC = 0x81
cdef uint8_t ALT_RESPONSE_MAGIC = 0x18  # a reply with framing extras
cdef uint8_t DATATYPE_SNAPPY = 0x02
cdef uint8_t OP_GET = 0x00
cdef uint8_t OP_SET = 0x01
cdef uint8_t OP_ADD = 0x02
cdef uint8_t OP_REPLACE = 0x03
cdef uint8_t OP_APPEND = 0x0E
cdef uint8_t OP_PREPEND = 0x0F
cdef uint8_t OP_STAT = 0x10
cdef uint8_t OP_GET_META = 0xA0


cdef uint8_t _store_opcode(lcb.lcb_STORE_OPERATION operation) noexcept:
    if operation == lcb.LCB_STORE_INSERT:
        return OP_ADD
    if operation == lcb.LCB_STORE_REPLACE:
        return OP_REPLACE
    if operation == lcb.LCB_STORE_APPEND:
        return OP_APPEND
    if operation == lcb.LCB_STORE_PREPEND:
        return OP_PREPEND
    return OP_SET


cdef inline void _put_be16(char *p, uint16_t v) noexcept nogil:
    p[0] = <char> (v >> 8)
    p[1] = <char> v


cdef inline void _put_be32(char *p, uint32_t v) noexcept nogil:
    _put_be16(p, <uint16_t> (v >> 16))
    _put_be16(p + 2, <uint16_t> v)


cdef inline void _put_be64(char *p, uint64_t v) noexcept nogil:
    _put_be32(p, <uint32_t> (v >> 32))
    _put_be32(p + 4, <uint32_t> v)


cdef inline uint64_t _get_be(const uint8_t *p, int n) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v = (v << 8) | p[i]
    return v


cdef size_t _put_request_head(char *head, uint8_t opcode, uint8_t extlen, const Slot *slot,
                              size_t nvalue, uint64_t cas) noexcept nogil:
    """Write a request's 24-byte header and its key (after `extlen` bytes of
    extras, which the caller writes); returns the length up to the value.
    Datatype raw; vbucket and opaque are libcouchbase's to fill in."""
    memset(head, 0, 24)
    head[0] = <char> REQUEST_MAGIC
    head[1] = <char> opcode
    _put_be16(head + 2, <uint16_t> slot.nkey)
    head[4] = <char> extlen
    _put_be32(head + 8, <uint32_t> (extlen + slot.nkey + nvalue))
    _put_be64(head + 16, cas)
    memcpy(head + 24 + extlen, slot.key, slot.nkey)
    return 24 + extlen + slot.nkey


cdef inline uint8_t _store_extlen(uint8_t opcode) noexcept nogil:
    """A store's extras: flags and expiry, none for append and prepend."""
    return 0 if opcode == OP_APPEND or opcode == OP_PREPEND else 8


cdef inline bint _forwards(const StoreSpec *spec, const Slot *slot) noexcept nogil:
    return (spec.forward and slot.ndata >= LARGE_VALUE
            and _fits_forwarding(24 + _store_extlen(spec.opcode) + slot.nkey, slot.ndata))


cdef inline bint _forwards_get(const Slot *slot) noexcept nogil:
    return _fits_forwarding(24 + slot.nkey, 0)


cdef lcb.lcb_STATUS _forward(lcb.lcb_INSTANCE *instance, Slot *slot, const StoreSpec *spec,
                             PyObject *value, Forward **forwards) noexcept nogil:
    """Schedule one large store as a packet built here, its value sent from
    `value` (which slot.data points into), and list it in `forwards`; only for
    a slot that _forwards accepts. On failure nothing was scheduled."""
    cdef Forward *fwd = <Forward *> calloc(1, sizeof(Forward))
    cdef lcb.lcb_CMDPKTFWD cmd
    cdef lcb.lcb_STATUS rc
    cdef uint8_t extlen = _store_extlen(spec.opcode)
    cdef char *head
    if fwd == NULL:
        return lcb.LCB_ERR_NO_MEMORY
    fwd.kind = COOKIE_FORWARD
    fwd.slot = slot
    fwd.value = value
    fwd.opcode = spec.opcode
    head = fwd.head
    if extlen:
        _put_be32(head + 24, spec.flags)
        _put_be32(head + 28, spec.expiry)
    fwd.iov[0].iov_base = head
    fwd.iov[0].iov_len = _put_request_head(head, spec.opcode, extlen, slot, slot.ndata, spec.cas)
    fwd.iov[1].iov_base = <void *> slot.data
    fwd.iov[1].iov_len = slot.ndata
    memset(&cmd, 0, sizeof(cmd))
    cmd.vb.vtype = lcb.LCB_KV_IOV
    cmd.vb.u_buf.multi.iov = fwd.iov
    cmd.vb.u_buf.multi.niov = 2
    cmd.vb.u_buf.multi.total_length = <unsigned int> (fwd.iov[0].iov_len + slot.ndata)
    _link(fwd, forwards)  # before: whatever libcouchbase calls back finds it listed
    rc = lcb.lcb_pktfwd3(instance, fwd, &cmd)
    if rc != lcb.LCB_SUCCESS:
        _unlink_and_free(fwd)
    return rc


cdef lcb.lcb_STATUS _reply_status(lcb.lcb_INSTANCE *instance, uint16_t status, uint8_t opcode) noexcept nogil:
    """A reply's status as libcouchbase reports it for its own commands
    (libcouchbase has already retried the statuses it retries)."""
    if status == 0x00:
        return lcb.LCB_SUCCESS
    if status == 0x01:
        return lcb.LCB_ERR_DOCUMENT_NOT_FOUND
    if status == 0x02:
        # only an add means "exists"; for the other stores the CAS did not match
        return lcb.LCB_ERR_DOCUMENT_EXISTS if opcode == OP_ADD else lcb.LCB_ERR_CAS_MISMATCH
    if status == 0x03:
        return lcb.LCB_ERR_VALUE_TOO_LARGE
    if status == 0x04:
        return lcb.LCB_ERR_KVENGINE_INVALID_PACKET
    if status == 0x05:
        return lcb.LCB_ERR_NOT_STORED
    if status == 0x08 or status == 0x25:
        return lcb.LCB_ERR_BUCKET_NOT_FOUND
    if status == 0x09:
        return lcb.LCB_ERR_DOCUMENT_LOCKED
    if status == 0x1F or status == 0x20 or status == 0x24:
        return lcb.LCB_ERR_AUTHENTICATION_FAILURE
    if 0x30 <= status <= 0x33:
        return lcb.LCB_ERR_RATE_LIMITED
    if status == 0x34:
        return lcb.LCB_ERR_QUOTA_LIMITED
    if status == 0x81:
        return lcb.LCB_ERR_UNSUPPORTED_OPERATION
    if status == 0x82 or status == 0x85 or status == 0x86:
        return lcb.LCB_ERR_TEMPORARY_FAILURE
    return lcb.lcb_errmap_default(instance, status)


cdef struct ForwardedReply:
    # a reply's parts, each checked against the bytes libcouchbase read
    const uint8_t *header
    const char *body      # after the header: framing extras, extras, key, value
    size_t framing, extlen, keylen, bodylen


cdef inline size_t _reply_keylen(const uint8_t *header) noexcept nogil:
    """The key length as libcouchbase reads it (one byte after framing extras)."""
    if header[0] == ALT_RESPONSE_MAGIC:
        return header[3]
    return <size_t> _get_be(header + 2, 2)


cdef inline bint _kept_in_flight(const lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    """libcouchbase keeps a packet waiting after a STAT reply with a key (one
    of a stat's many replies) and calls back again for it: only the last call
    counts. No forwarded command is a STAT, so such a reply is the server's
    error; the command ends with the next reply or its timeout."""
    return resp.header != NULL and resp.header[1] == OP_STAT and _reply_keylen(resp.header) != 0


cdef bint _parse_reply(const lcb.lcb_PKTFWDRESP *resp, uint8_t opcode, ForwardedReply *reply) noexcept nogil:
    """Split a reply to a forwarded `opcode` into its parts; False if it is
    not a well-formed reply to it (magic, opcode, lengths that overrun the
    body, a body longer than what was read)."""
    cdef const uint8_t *header = resp.header
    if header == NULL or resp.nitems < 1 or resp.iovs == NULL or header[1] != opcode:
        return False
    if header[0] == ALT_RESPONSE_MAGIC:
        reply.framing = header[2]
    elif header[0] == RESPONSE_MAGIC:
        reply.framing = 0
    else:
        return False
    reply.header = header
    reply.keylen = _reply_keylen(header)
    reply.extlen = header[4]
    reply.bodylen = <size_t> _get_be(header + 8, 4)
    if (reply.framing + reply.extlen + reply.keylen > reply.bodylen
            or resp.iovs[0].iov_len < 24 + reply.bodylen):
        return False
    reply.body = <const char *> resp.iovs[0].iov_base + 24
    return True


cdef bint _read_reply(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                      const lcb.lcb_PKTFWDRESP *resp, uint8_t opcode, ForwardedReply *reply) noexcept nogil:
    """Set a slot's status and CAS from a forwarded command's reply, or from
    libcouchbase's error for it; True if the reply is there to read."""
    if err != lcb.LCB_SUCCESS:
        slot.rc = err
        return False
    if not _parse_reply(resp, opcode, reply):
        slot.rc = lcb.LCB_ERR_PROTOCOL_ERROR
        return False
    slot.rc = _reply_status(instance, <uint16_t> _get_be(reply.header + 6, 2), opcode)
    slot.cas = _get_be(reply.header + 16, 8)
    return True


cdef void _on_forwarded(lcb.lcb_INSTANCE *instance, const void *cookie, lcb.lcb_STATUS err,
                        lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    """The reply to a forwarded command (or libcouchbase's error for it)."""
    if (<const CookieKind *> cookie)[0] == COOKIE_EXISTS:
        _on_forwarded_exists(instance, <Slot *> cookie, err, resp)
        return
    if (<const CookieKind *> cookie)[0] == COOKIE_SLOT:
        if (<Slot *> cookie).replica != NULL:
            _on_copy(instance, <Slot *> cookie, err, resp)  # _replica.pxi
        else:
            _on_forwarded_get(instance, <Slot *> cookie, err, resp)
        return
    cdef Forward *fwd = <Forward *> cookie
    cdef Slot *slot = fwd.slot
    cdef ForwardedReply reply
    if slot == NULL or (err == lcb.LCB_SUCCESS and _kept_in_flight(resp)):
        return
    _read_reply(instance, slot, err, resp, fwd.opcode, &reply)
    fwd.slot = NULL
    if fwd.flushed:
        _unlink_and_free(fwd)
    else:
        _adopt_value(fwd)
    _answered(instance, slot)


cdef void _adopt_value(Forward *fwd) noexcept with gil:
    Py_XINCREF(fwd.value)
    fwd.adopted = True


cdef void _on_forward_flushed(lcb.lcb_INSTANCE *instance, const void *cookie) noexcept nogil:
    """libcouchbase no longer reads a forwarded packet's buffers (only stores
    lend it buffers; it copies a get's packet)."""
    cdef Forward *fwd = <Forward *> cookie
    if fwd.kind != COOKIE_FORWARD:
        return
    if fwd.slot != NULL:
        fwd.flushed = True  # the reply frees it
    else:
        _free_adopted(fwd)


cdef void _free_adopted(Forward *fwd) noexcept with gil:
    if fwd.adopted:
        Py_XDECREF(fwd.value)
    _unlink_and_free(fwd)


cdef inline lcb.lcb_STATUS _forward_key(lcb.lcb_INSTANCE *instance, Slot *slot,
                                        uint8_t opcode) noexcept nogil:
    """Schedule a request that is a header and the key (no extras, no value)
    as a packet built here (libcouchbase copies it), the slot its cookie;
    only for a slot that _forwards_get accepts."""
    cdef char packet[FORWARD_MAX_HEAD]  # header, key (_forwards_get)
    cdef lcb.lcb_CMDPKTFWD cmd
    memset(&cmd, 0, sizeof(cmd))
    cmd.vb.vtype = lcb.LCB_KV_COPY
    cmd.vb.u_buf.contig.bytes = packet
    cmd.vb.u_buf.contig.nbytes = _put_request_head(packet, opcode, 0, slot, 0, 0)
    return lcb.lcb_pktfwd3(instance, slot, &cmd)


cdef lcb.lcb_STATUS _forward_get(lcb.lcb_INSTANCE *instance, Slot *slot) noexcept nogil:
    """Schedule a plain get as a packet built here; only for a slot that
    _forwards_get accepts."""
    return _forward_key(instance, slot, OP_GET)


cdef void _on_forwarded_get(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                            lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    if err == lcb.LCB_SUCCESS and _kept_in_flight(resp):
        return
    _read_get_reply(instance, slot, err, resp, OP_GET)
    _answered(instance, slot)


cdef void _read_get_reply(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                          lcb.lcb_PKTFWDRESP *resp, uint8_t opcode) noexcept nogil:
    """Take status, CAS, flags and value out of the reply to a get (or to a
    replica get, which has the same shape)."""
    cdef ForwardedReply reply
    cdef size_t skip
    if _read_reply(instance, slot, err, resp, opcode, &reply):
        slot.datatype = reply.header[5]
        if slot.rc == lcb.LCB_SUCCESS:
            # a found item's reply: its 4-byte flags as extras, no key (a
            # GET's reply never carries one), an uncompressed value
            if reply.extlen != 4 or reply.keylen != 0 or slot.datatype & DATATYPE_SNAPPY:
                slot.rc = lcb.LCB_ERR_PROTOCOL_ERROR
            else:
                skip = reply.framing + 4
                slot.flags = <uint32_t> _get_be(<const uint8_t *> reply.body + reply.framing, 4)
                _keep_value(slot, reply.body + skip, reply.bodylen - skip)


# exists: a GET_META request as libcouchbase's own lcb_exists sends it
# (src/operations/exists.cc of 3.3.4): header and key, no extras (so the
# server answers with version 1 of the metadata), raw datatype, CAS 0. Its
# reply (read as src/handler.cc H_exists does) carries the document's
# metadata as extras, these 20 bytes, and no key or value:
cdef enum:
    META_EXTLEN = 20  # deleted (4: non-zero for a tombstone), flags (4), expiry (4), seqno (8)
# A deleted document's tombstone is found, with the deleted flag set: it does
# not exist (libcouchbase's lcb_respexists_is_found). The slot is the cookie,
# marked COOKIE_EXISTS so that _on_forwarded reads the reply as GET_META's.


cdef lcb.lcb_STATUS _forward_exists(lcb.lcb_INSTANCE *instance, Slot *slot) noexcept nogil:
    """Schedule an exists as a GET_META packet built here; only for a slot
    that _forwards_get accepts. On failure the slot is as it was."""
    cdef lcb.lcb_STATUS rc
    slot.kind = COOKIE_EXISTS
    rc = _forward_key(instance, slot, OP_GET_META)
    if rc != lcb.LCB_SUCCESS:
        slot.kind = COOKIE_SLOT  # libcouchbase's own exists then
    return rc


cdef void _on_forwarded_exists(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                               lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    if err == lcb.LCB_SUCCESS and _kept_in_flight(resp):
        return
    _read_exists_reply(instance, slot, err, resp)
    _answered(instance, slot)


cdef void _read_exists_reply(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                             lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    """Take status and CAS out of the reply to a GET_META; a tombstone's
    (deleted flag set) is a missing document's."""
    cdef ForwardedReply reply
    if _read_reply(instance, slot, err, resp, OP_GET_META, &reply) and slot.rc == lcb.LCB_SUCCESS:
        # a found item's reply: its metadata as extras (within the body:
        # _parse_reply), no key
        if reply.extlen != META_EXTLEN or reply.keylen != 0:
            slot.rc = lcb.LCB_ERR_PROTOCOL_ERROR
        elif _get_be(<const uint8_t *> reply.body + reply.framing, 4) != 0:
            slot.rc = lcb.LCB_ERR_DOCUMENT_NOT_FOUND


# For the tests of the limits: the widths above and the check made with them.
_FORWARD_MAX_HEAD = FORWARD_MAX_HEAD
_FORWARD_MAX_PACKET = FORWARD_MAX_PACKET


def _forwarding_fits(size_t nhead, size_t nvalue):
    """Whether a packet of this head and value may be built here (testing)."""
    return _fits_forwarding(nhead, nvalue)
