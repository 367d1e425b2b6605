# Included by _lcb.pyx: the C side of a call. One slot per key holds the key's
# bytes going out and what its response callback copied coming back. The
# callbacks run inside lcb_wait with the GIL released and never touch Python.

cdef struct Slot:
    const char *key        # the key's UTF-8 bytes, owned by the caller's key object
    size_t nkey
    lcb.lcb_STATUS rc      # NO_REPLY until the callback ran
    uint32_t flags
    uint8_t datatype
    uint64_t cas
    uint64_t counter
    char *value            # malloc'd copy of a get's value
    size_t nvalue


# The status of a slot whose callback has not run: scheduling failed or the
# library never answered (neither should happen; both are reported, not lost).
cdef lcb.lcb_STATUS NO_REPLY = -1


@cython.final
cdef class _Slots:
    """The slots of one call: built from the keys (checking each one, so a bad
    key stops the call before anything is sent), freed with the values the
    callbacks copied."""
    cdef Slot *slots
    cdef Py_ssize_t n
    cdef list keys  # keeps every key object (and its UTF-8 buffer) alive

    def __cinit__(self, list keys, str op):
        cdef Py_ssize_t i, nkey
        self.keys = keys
        self.n = len(keys)
        self.slots = <Slot *> calloc(self.n if self.n > 0 else 1, sizeof(Slot))
        if self.slots == NULL:
            raise MemoryError()
        for i in range(self.n):
            self.slots[i].key = _key_ptr(keys[i], &nkey, op)
            self.slots[i].nkey = <size_t> nkey
            self.slots[i].rc = NO_REPLY

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.slots != NULL:
            for i in range(self.n):
                free(self.slots[i].value)
            free(self.slots)


cdef inline void _scheduled(Slot *slot, lcb.lcb_STATUS rc) noexcept nogil:
    """Record the outcome of scheduling: a refused command keeps its status."""
    slot.rc = NO_REPLY if rc == lcb.LCB_SUCCESS else rc


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
        slot.value = <char *> malloc(nvalue if nvalue > 0 else 1)
        if slot.value == NULL:
            slot.rc = lcb.LCB_ERR_NO_MEMORY
            return
        memcpy(slot.value, value, nvalue)
        slot.nvalue = nvalue


cdef void _on_store(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPSTORE *resp = <const lcb.lcb_RESPSTORE *> rb
    cdef Slot *slot = NULL
    lcb.lcb_respstore_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respstore_status(resp)
        lcb.lcb_respstore_cas(resp, &slot.cas)


cdef void _on_remove(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPREMOVE *resp = <const lcb.lcb_RESPREMOVE *> rb
    cdef Slot *slot = NULL
    lcb.lcb_respremove_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respremove_status(resp)
        lcb.lcb_respremove_cas(resp, &slot.cas)


cdef void _on_counter(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPCOUNTER *resp = <const lcb.lcb_RESPCOUNTER *> rb
    cdef Slot *slot = NULL
    lcb.lcb_respcounter_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respcounter_status(resp)
        lcb.lcb_respcounter_cas(resp, &slot.cas)
        lcb.lcb_respcounter_value(resp, &slot.counter)


cdef void _on_touch(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPTOUCH *resp = <const lcb.lcb_RESPTOUCH *> rb
    cdef Slot *slot = NULL
    lcb.lcb_resptouch_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_resptouch_status(resp)
        lcb.lcb_resptouch_cas(resp, &slot.cas)


cdef void _on_unlock(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef const lcb.lcb_RESPUNLOCK *resp = <const lcb.lcb_RESPUNLOCK *> rb
    cdef Slot *slot = NULL
    lcb.lcb_respunlock_cookie(resp, <void **> &slot)
    if slot != NULL:
        slot.rc = lcb.lcb_respunlock_status(resp)
        lcb.lcb_respunlock_cas(resp, &slot.cas)


@cython.final
cdef class _StatsCollector:
    """Gathers STAT replies: stat name -> {server: value}. Stats are rare, so
    their callback takes the GIL and builds Python objects directly."""
    cdef dict stats
    cdef lcb.lcb_STATUS rc
    cdef object error

    def __cinit__(self):
        self.stats = {}
        self.rc = lcb.LCB_SUCCESS
        self.error = None


cdef void _on_stats(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept with gil:
    cdef const lcb.lcb_RESPSTATS *resp = <const lcb.lcb_RESPSTATS *> rb
    cdef void *cookie = NULL
    cdef const char *key = NULL
    cdef const char *value = NULL
    cdef const char *server = NULL
    cdef size_t nkey = 0, nvalue = 0, nserver = 0
    cdef _StatsCollector collector
    cdef lcb.lcb_STATUS rc
    lcb.lcb_respstats_cookie(resp, &cookie)
    if cookie == NULL:
        return
    collector = <_StatsCollector> cookie
    try:
        rc = lcb.lcb_respstats_status(resp)
        if rc != lcb.LCB_SUCCESS:
            if collector.rc == lcb.LCB_SUCCESS:
                collector.rc = rc
            return
        lcb.lcb_respstats_key(resp, &key, &nkey)
        if key == NULL or nkey == 0:
            return  # the end-of-stats marker of one server
        lcb.lcb_respstats_value(resp, &value, &nvalue)
        lcb.lcb_respstats_server(resp, &server, &nserver)
        name = key[:nkey].decode("utf-8", "replace")
        node = server[:nserver].decode("utf-8", "replace") if server != NULL else ""
        text = value[:nvalue].decode("utf-8", "replace") if value != NULL else ""
        collector.stats.setdefault(name, {})[node] = _stat_value(text)
    except BaseException as e:  # never let an exception cross into C
        if collector.error is None:
            collector.error = e


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
