# Included by _lcb.pyx: argument checks. Each raises ArgumentError naming the
# operation (and the key) before anything is sent.

cdef Py_ssize_t MAX_KEY_LEN = 250
cdef uint64_t MAX_TTL = 0xFFFFFFFF


cdef inline const char *_key_ptr(object key, Py_ssize_t *n, str op) except NULL:
    """Pointer to the key's UTF-8 bytes (no copy for str: CPython caches it)."""
    cdef const char *p
    if PyUnicode_Check(key):
        p = PyUnicode_AsUTF8AndSize(key, n)
    elif type(key) is bytes:
        p = PyBytes_AS_STRING(key)
        n[0] = PyBytes_GET_SIZE(key)
    else:
        raise _exc.ArgumentError(
            f"a key must be str or bytes, not {type(key).__name__} ({key!r})",
            key=key, operation=op)
    if n[0] == 0:
        raise _exc.ArgumentError("empty key", key=key, operation=op)
    if n[0] > MAX_KEY_LEN:
        raise _exc.ArgumentError(
            f"key is {n[0]} bytes long; Couchbase keys are at most {MAX_KEY_LEN} bytes",
            key=key, operation=op)
    return p


cdef uint32_t _check_ttl(object ttl, str op, object key=None) except? 0xFFFFFFFF:
    if ttl is None:
        return 0
    if type(ttl) is bool or not isinstance(ttl, int):
        raise _exc.ArgumentError(f"ttl must be a non-negative int (seconds), not {ttl!r}",
                                 key=key, operation=op)
    if ttl < 0 or ttl > MAX_TTL:
        raise _exc.ArgumentError(
            f"ttl {ttl} is out of range (0 to {MAX_TTL} seconds; over 30 days is an absolute Unix time)",
            key=key, operation=op)
    return <uint32_t> ttl


cdef uint64_t _check_cas(object cas, str op, object key=None) except? 0xFFFFFFFFFFFFFFFF:
    if cas is None:
        return 0
    if type(cas) is bool or not isinstance(cas, int) or cas < 0 or cas > 0xFFFFFFFFFFFFFFFF:
        raise _exc.ArgumentError(f"cas must be an int from a previous result, not {cas!r}",
                                 key=key, operation=op)
    return <uint64_t> cas


cdef uint64_t _check_u64(object value, str what, str op, object key=None) except? 0xFFFFFFFFFFFFFFFF:
    if type(value) is bool or not isinstance(value, int) or value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        raise _exc.ArgumentError(f"{what} must be an int from 0 to 2**64-1, not {value!r}",
                                 key=key, operation=op)
    return <uint64_t> value


cdef int _check_format(object fmt, str op) except -1:
    if type(fmt) is bool or not isinstance(fmt, int) or fmt not in (FMT_JSON, FMT_PICKLE, FMT_PLAIN):
        raise _exc.ArgumentError(
            f"unknown format {fmt!r}; use FMT_JSON, FMT_PICKLE or FMT_PLAIN", operation=op)
    return <int> fmt


cdef inline bint _is_multi(object keys):
    """A list, tuple, set or dict of keys; a str or bytes is one key."""
    return isinstance(keys, (list, tuple, set, frozenset, dict))
