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
# network buffer (nothing to keep alive); the reply is parsed here. Only where
# replies cannot be compressed (snappy not negotiated) and keys carry no
# collection ID.
#
# Neither is used with tracing or operation metrics on: libcouchbase traces and
# times only its own commands.


cdef struct Forward:
    CookieKind kind      # COOKIE_FORWARD
    Slot *slot           # the key's slot, until the reply
    PyObject *value      # the bytes sent: the call's, or owned if adopted
    bint adopted         # the reply came first: value is a reference of our own
    bint flushed         # libcouchbase is done with head and value
    uint8_t opcode
    lcb.lcb_IOV iov[2]   # the head, then the value
    char head[24 + 8 + 250]  # header, extras (flags, expiry), key (MAX_KEY_LEN)
    Forward *next        # the Connection's list of Forwards not yet freed
    Forward **pprev


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


# memcached binary protocol
cdef uint8_t REQUEST_MAGIC = 0x80
cdef uint8_t ALT_RESPONSE_MAGIC = 0x18  # a reply with framing extras
cdef uint8_t DATATYPE_SNAPPY = 0x02
cdef uint8_t OP_GET = 0x00
cdef uint8_t OP_SET = 0x01
cdef uint8_t OP_ADD = 0x02
cdef uint8_t OP_REPLACE = 0x03
cdef uint8_t OP_APPEND = 0x0E
cdef uint8_t OP_PREPEND = 0x0F

# a packet's length fields are 32 bits; larger values take libcouchbase's path
cdef size_t FORWARD_MAX_VALUE = 0x7FFF0000


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


cdef inline bint _forwards(const StoreSpec *spec, const Slot *slot) noexcept nogil:
    return spec.forward and LARGE_VALUE <= slot.ndata <= FORWARD_MAX_VALUE


cdef lcb.lcb_STATUS _forward(lcb.lcb_INSTANCE *instance, Slot *slot, const StoreSpec *spec,
                             PyObject *value, Forward **forwards) noexcept nogil:
    """Schedule one large store as a packet built here, its value sent from
    `value` (which slot.data points into), and list it in `forwards`. On
    failure nothing was scheduled."""
    cdef Forward *fwd = <Forward *> calloc(1, sizeof(Forward))
    cdef lcb.lcb_CMDPKTFWD cmd
    cdef lcb.lcb_STATUS rc
    cdef bint concat = spec.opcode == OP_APPEND or spec.opcode == OP_PREPEND
    cdef uint8_t extlen = 0 if concat else 8
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


cdef const uint8_t *_read_reply(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                                const lcb.lcb_PKTFWDRESP *resp, uint8_t opcode) noexcept nogil:
    """Set a slot's status and CAS from a forwarded command's reply, or from
    libcouchbase's error for it; returns the reply's header (NULL: none)."""
    if err != lcb.LCB_SUCCESS:
        slot.rc = err
        return NULL
    if resp.header == NULL:
        slot.rc = lcb.LCB_ERR_KVENGINE_INVALID_PACKET
        return NULL
    slot.rc = _reply_status(instance, <uint16_t> _get_be(resp.header + 6, 2), opcode)
    slot.cas = _get_be(resp.header + 16, 8)
    return resp.header


cdef void _on_forwarded(lcb.lcb_INSTANCE *instance, const void *cookie, lcb.lcb_STATUS err,
                        lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    """The reply to a forwarded command (or libcouchbase's error for it)."""
    if (<const CookieKind *> cookie)[0] == COOKIE_SLOT:
        _on_forwarded_get(instance, <Slot *> cookie, err, resp)
        return
    cdef Forward *fwd = <Forward *> cookie
    cdef Slot *slot = fwd.slot
    if slot == NULL:
        return
    _read_reply(instance, slot, err, resp, fwd.opcode)
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


cdef lcb.lcb_STATUS _forward_get(lcb.lcb_INSTANCE *instance, Slot *slot) noexcept nogil:
    """Schedule a plain get as a packet built here (libcouchbase copies it)."""
    cdef char packet[24 + 250]  # header, key (MAX_KEY_LEN)
    cdef lcb.lcb_CMDPKTFWD cmd
    memset(&cmd, 0, sizeof(cmd))
    cmd.vb.vtype = lcb.LCB_KV_COPY
    cmd.vb.u_buf.contig.bytes = packet
    cmd.vb.u_buf.contig.nbytes = _put_request_head(packet, OP_GET, 0, slot, 0, 0)
    return lcb.lcb_pktfwd3(instance, slot, &cmd)


cdef void _on_forwarded_get(lcb.lcb_INSTANCE *instance, Slot *slot, lcb.lcb_STATUS err,
                            lcb.lcb_PKTFWDRESP *resp) noexcept nogil:
    """Take status, CAS, flags and value out of a get's reply."""
    cdef const uint8_t *header = _read_reply(instance, slot, err, resp, OP_GET)
    cdef const char *body
    cdef size_t framing, extlen, keylen, bodylen, skip
    if header != NULL:
        slot.datatype = header[5]
    if header != NULL and slot.rc == lcb.LCB_SUCCESS:
        if header[0] == ALT_RESPONSE_MAGIC:
            framing, keylen = header[2], header[3]
        else:
            framing, keylen = 0, <size_t> _get_be(header + 2, 2)
        extlen = header[4]
        bodylen = <size_t> _get_be(header + 8, 4)
        skip = framing + extlen + keylen
        if (resp.nitems < 1 or extlen < 4 or skip > bodylen or resp.iovs[0].iov_len < 24 + bodylen
                or slot.datatype & DATATYPE_SNAPPY):
            slot.rc = lcb.LCB_ERR_KVENGINE_INVALID_PACKET
        else:
            body = <const char *> resp.iovs[0].iov_base + 24
            slot.flags = <uint32_t> _get_be(<const uint8_t *> body + framing, 4)
            _keep_value(slot, body + skip, bodylen - skip)
    _answered(instance, slot)
