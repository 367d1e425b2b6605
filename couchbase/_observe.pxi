# Included by _lcb.pyx: observe-based durability (persist_to=/replicate_to=)
# on every mutation, for servers without synchronous replication. The
# mutation goes out as usual; when its reply says it was applied, the slot
# is not answered yet: libcouchbase polls the key's copies (OBSERVE_SEQNO with
# the reply's mutation token; patch 0009's lcb_endure_mutation) and
# _on_endure answers it. A change that was applied but whose copies were not
# confirmed is reported as such (_unconfirmed), never as a plain failure a
# caller might repeat.


cdef int _observe_after_reply(_Slots call, int persist_to, int replicate_to) noexcept:
    """Make every mutation of `call` wait for its copies once applied."""
    cdef Py_ssize_t i
    call.observe.persist_to = <uint16_t> persist_to
    call.observe.replicate_to = <uint16_t> replicate_to
    call.observe.timeout_us = call.timeout_us
    for i in range(call.n):
        call.slots[i].observe = &call.observe
    return 0


cdef bint _refuse_impossible_observe(lcb.lcb_INSTANCE *instance, _Slots call) noexcept:
    """Before anything is sent: a requirement the cluster has too few copies
    for fails every key (DurabilityImpossibleError), with nothing applied."""
    cdef Py_ssize_t i
    cdef lcb.lcb_STATUS rc
    if call.observe.persist_to == 0 and call.observe.replicate_to == 0:
        return False
    rc = lcb.lcb_durability_check(instance, call.observe.persist_to, call.observe.replicate_to)
    if rc == lcb.LCB_SUCCESS:
        return False
    for i in range(call.n):
        _scheduled(&call.slots[i], rc)
    return True


cdef bint _awaits_copies(lcb.lcb_INSTANCE *instance, Slot *slot,
                         const lcb.lcb_MUTATION_TOKEN *token) noexcept nogil:
    """After an applied mutation's reply: start polling its copies. True: the
    slot is answered later, by _on_endure; False: answer it now (the change
    failed, or polling could not start, which the slot's status then says)."""
    cdef lcb.lcb_STATUS rc
    if slot.rc != lcb.LCB_SUCCESS:
        return False
    slot.applied = True
    rc = lcb.lcb_endure_mutation(instance, slot, slot.key, slot.nkey, slot.cas, token,
                                 slot.observe.persist_to, slot.observe.replicate_to,
                                 slot.observe.timeout_us)
    if rc != lcb.LCB_SUCCESS:
        slot.rc = rc
        return False
    return True


cdef void _on_endure(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    cdef Slot *slot = NULL
    lcb.lcb_respendure_cookie(rb, <void **> &slot)
    if slot == NULL:
        return
    slot.rc = lcb.lcb_respendure_status(rb)
    lcb.lcb_respendure_copies(rb, &slot.npersisted, &slot.nreplicated)
    _answered(instance, slot)


cdef object _unconfirmed(const Slot *slot, object key, str op):
    """The error of a change that was applied but whose copies were not
    confirmed: ambiguous (it may yet reach them, or be lost in a failover),
    or lost (a failover took it), never one that suggests repeating it."""
    cdef const Observe *observe = slot.observe
    asked = " and ".join(
        [f"persist_to={observe.persist_to}"] * (observe.persist_to > 0)
        + [f"replicate_to={observe.replicate_to}"] * (observe.replicate_to > 0))
    reached = f"persisted on {slot.npersisted} node(s), replicated to {slot.nreplicated}"
    if slot.rc == lcb.LCB_ERR_MUTATION_LOST:
        return _exc.DurabilityError(
            f"the change was applied, then lost: a failover rolled its copies back ({asked} asked); "
            f"read the key back before repeating it", error=slot.rc, key=key, operation=op, cas=slot.cas)
    if slot.rc == lcb.LCB_ERR_TIMEOUT:
        why = "not within the timeout"
    else:
        why = _exc.exception_for_status(slot.rc).msg
    return _exc.DurabilityAmbiguousError(
        f"the change was applied on the active node, but the copies asked ({asked}) were not "
        f"confirmed ({why}; it was {reached}); it may yet reach them or be lost in a failover: "
        f"read the key back before repeating a change that is not safe to apply twice",
        error=slot.rc, key=key, operation=op, cas=slot.cas)
