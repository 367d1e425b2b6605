# Included by _lcb.pyx: sub-document calls (lookup_in / mutate_in in
# _ops.pxi). couchbase.subdocument's specs become libcouchbase's (which copies
# paths and values), the reply's per-path results are copied into the key's
# slot by the callback, and become a SubdocResult.
#
# A slot's per-path results, in one malloc'd buffer (slot.value): for each
# spec a SubdocEntry, then the values' bytes one after another. slot.counter
# holds the number of entries.

# couchbase.subdocument.Op, the one definition of the operations
cdef int _SD_GET = _subdoc.Op.GET
cdef int _SD_EXISTS = _subdoc.Op.EXISTS
cdef int _SD_COUNT = _subdoc.Op.COUNT
cdef int _SD_REPLACE = _subdoc.Op.REPLACE
cdef int _SD_DICT_ADD = _subdoc.Op.DICT_ADD
cdef int _SD_DICT_UPSERT = _subdoc.Op.DICT_UPSERT
cdef int _SD_ARRAY_ADD_FIRST = _subdoc.Op.ARRAY_ADD_FIRST
cdef int _SD_ARRAY_ADD_LAST = _subdoc.Op.ARRAY_ADD_LAST
cdef int _SD_ARRAY_ADD_UNIQUE = _subdoc.Op.ARRAY_ADD_UNIQUE
cdef int _SD_ARRAY_INSERT = _subdoc.Op.ARRAY_INSERT
cdef int _SD_COUNTER = _subdoc.Op.COUNTER
cdef int _SD_REMOVE = _subdoc.Op.REMOVE
cdef dict _STORE_SEMANTICS = {
    _subdoc.StoreSemantics.REPLACE: lcb.LCB_SUBDOC_STORE_REPLACE,
    _subdoc.StoreSemantics.UPSERT: lcb.LCB_SUBDOC_STORE_UPSERT,
    _subdoc.StoreSemantics.INSERT: lcb.LCB_SUBDOC_STORE_INSERT,
}


cdef struct SubdocEntry:
    lcb.lcb_STATUS rc
    size_t offset   # of the value's bytes, after the entries
    size_t nvalue


cdef lcb.lcb_SUBDOCSPECS *_subdoc_specs(object specs, bint lookup, str op) except NULL:
    """libcouchbase's specs for a list of couchbase.subdocument specs, each
    checked to be of the call's kind (lookup_in takes reads, mutate_in
    changes)."""
    if isinstance(specs, _subdoc.Spec):
        raise _exc.ArgumentError(f"give a list of specs, not one spec: [{specs!r}]", operation=op)
    if not isinstance(specs, (list, tuple)):
        raise _exc.ArgumentError(f"give a list of specs (couchbase.subdocument), not {_exc.safe_repr(specs)}",
                                 operation=op)
    cdef Py_ssize_t n = len(specs)
    if n == 0 or n > _subdoc.MAX_SPECS:
        raise _exc.ArgumentError(f"give at least one spec and at most {_subdoc.MAX_SPECS} "
                                 f"(the server's limit), not {n}", operation=op)
    cdef Py_ssize_t i
    for i in range(n):
        spec = specs[i]
        if type(spec) is not _subdoc.Spec:
            raise _exc.ArgumentError(f"spec {i} is a {type(spec).__name__}, not a couchbase.subdocument spec",
                                     operation=op)
        if spec.op.is_lookup != lookup:
            wanted = "lookup_in reads (get, exists, count)" if lookup else "mutate_in changes"
            raise _exc.ArgumentError(f"spec {i} ({spec.op.builder} of {spec.path!r}): {wanted} only",
                                     operation=op)
    cdef lcb.lcb_SUBDOCSPECS *out = NULL
    _check_rc(lcb.lcb_subdocspecs_create(&out, <size_t> n), op)
    try:
        for i in range(n):
            _check_rc(_subdoc_spec(out, i, specs[i]), op)
    except BaseException:
        lcb.lcb_subdocspecs_destroy(out)
        raise
    return out


cdef lcb.lcb_STATUS _subdoc_spec(lcb.lcb_SUBDOCSPECS *out, size_t i, object spec) except? -2:
    cdef bytes path = spec.path.encode("utf-8")
    cdef const char *p = path
    cdef size_t np = <size_t> len(path)
    cdef uint32_t flags = spec.flags
    cdef int code = spec.op
    cdef bytes value = spec.value if type(spec.value) is bytes else b""
    cdef const char *v = value
    cdef size_t nv = <size_t> len(value)
    if code == _SD_GET:
        return lcb.lcb_subdocspecs_get(out, i, flags, p, np)
    if code == _SD_EXISTS:
        return lcb.lcb_subdocspecs_exists(out, i, flags, p, np)
    if code == _SD_COUNT:
        return lcb.lcb_subdocspecs_get_count(out, i, flags, p, np)
    if code == _SD_REPLACE:
        return lcb.lcb_subdocspecs_replace(out, i, flags, p, np, v, nv)
    if code == _SD_DICT_ADD:
        return lcb.lcb_subdocspecs_dict_add(out, i, flags, p, np, v, nv)
    if code == _SD_DICT_UPSERT:
        return lcb.lcb_subdocspecs_dict_upsert(out, i, flags, p, np, v, nv)
    if code == _SD_ARRAY_ADD_FIRST:
        return lcb.lcb_subdocspecs_array_add_first(out, i, flags, p, np, v, nv)
    if code == _SD_ARRAY_ADD_LAST:
        return lcb.lcb_subdocspecs_array_add_last(out, i, flags, p, np, v, nv)
    if code == _SD_ARRAY_ADD_UNIQUE:
        return lcb.lcb_subdocspecs_array_add_unique(out, i, flags, p, np, v, nv)
    if code == _SD_ARRAY_INSERT:
        return lcb.lcb_subdocspecs_array_insert(out, i, flags, p, np, v, nv)
    if code == _SD_COUNTER:
        return lcb.lcb_subdocspecs_counter(out, i, flags, p, np, <int64_t> spec.value)
    if code == _SD_REMOVE:
        return lcb.lcb_subdocspecs_remove(out, i, flags, p, np)
    raise _exc.InternalError(f"unknown sub-document operation {code}")


cdef void _on_subdoc(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept nogil:
    """Copy a sub-document reply's per-path statuses and values into the
    key's slot (libcouchbase's buffers are reused after the callback)."""
    cdef const lcb.lcb_RESPSUBDOC *resp = <const lcb.lcb_RESPSUBDOC *> rb
    cdef Slot *slot = NULL
    cdef size_t i, n, total, offset
    cdef const char *value = NULL
    cdef size_t nvalue = 0
    cdef SubdocEntry *entries
    cdef lcb.lcb_MUTATION_TOKEN token
    lcb.lcb_respsubdoc_cookie(resp, <void **> &slot)
    if slot == NULL:
        return
    slot.rc = lcb.lcb_respsubdoc_status(resp)
    lcb.lcb_respsubdoc_cas(resp, &slot.cas)
    n = lcb.lcb_respsubdoc_result_size(resp)
    total = n * sizeof(SubdocEntry)
    for i in range(n):
        nvalue = 0
        if lcb.lcb_respsubdoc_result_value(resp, i, &value, &nvalue) == lcb.LCB_SUCCESS and value != NULL:
            total += nvalue
    slot.value = <char *> malloc(total if total > 0 else 1)
    if slot.value == NULL:
        slot.rc = lcb.LCB_ERR_NO_MEMORY
        _answered(instance, slot)
        return
    entries = <SubdocEntry *> slot.value
    offset = n * sizeof(SubdocEntry)
    for i in range(n):
        value = NULL
        nvalue = 0
        entries[i].rc = lcb.lcb_respsubdoc_result_status(resp, i)
        if lcb.lcb_respsubdoc_result_value(resp, i, &value, &nvalue) != lcb.LCB_SUCCESS or value == NULL:
            nvalue = 0
        entries[i].offset = offset
        entries[i].nvalue = nvalue
        if nvalue:
            memcpy(slot.value + offset, value, nvalue)
            offset += nvalue
    slot.nvalue = offset
    slot.counter = n
    if slot.observe != NULL:
        lcb.lcb_respsubdoc_mutation_token(resp, &token)
        if _awaits_copies(instance, slot, &token):
            return
    _answered(instance, slot)


cdef object _subdoc_result(Slot *slot, object key, str op, object specs, bint mutation):
    """A slot's per-path results as a SubdocResult; for a mutation the failed
    path raises (the server applied none of the call)."""
    cdef Py_ssize_t i, n = len(specs)
    cdef SubdocEntry *entries = <SubdocEntry *> slot.value
    if <Py_ssize_t> slot.counter != n:
        raise _exc.ProtocolError(f"the server answered {slot.counter} paths of {n}", key=key, operation=op)
    cdef list values = [None] * n
    cdef list errors = [None] * n
    for i in range(n):
        spec = specs[i]
        code = spec.op
        rc = entries[i].rc
        if rc == lcb.LCB_SUCCESS:
            raw = PyBytes_FromStringAndSize(slot.value + entries[i].offset, <Py_ssize_t> entries[i].nvalue)
            if code == _SD_EXISTS:
                values[i] = True
            elif raw:
                try:
                    values[i] = _json_decode(raw)
                except ValueError as e:
                    errors[i] = _path_error(_exc.ValueFormatError(
                        f"the server's value is not JSON: {e}", key=key, operation=op), spec.path, i)
        elif code == _SD_EXISTS and rc == lcb.LCB_ERR_SUBDOC_PATH_NOT_FOUND:
            values[i] = False
        else:
            errors[i] = _path_error(_exc.exception_for_status(rc, key=key, operation=op), spec.path, i)
            if mutation:
                raise errors[i]
    return _SubdocResult(slot.cas, values, errors)


cdef object _path_error(object error, object path, Py_ssize_t index):
    error.path = path
    error.index = index
    return error
