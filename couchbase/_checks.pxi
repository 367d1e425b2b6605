# Included by _lcb.pyx: argument checks. Each raises ArgumentError naming the
# operation (and the key) before anything is sent. Numbers and keys are taken
# as exact int/float/str/bytes first, so no method of a caller's subclass
# (__eq__, __lt__, __hash__, __repr__) runs after a check passed; messages
# show arguments with _exc.safe_repr, which never raises.

cdef Py_ssize_t MAX_KEY_LEN = 250
cdef uint64_t MAX_TTL = 0xFFFFFFFF
cdef uint64_t MAX_TIMEOUT_US = 0xFFFFFFFF  # libcouchbase keeps timeouts as uint32 microseconds


# Connection string options that libcouchbase reads as a time (convert_timevalue
# in src/cntl.cc): a Go duration ("1.5s", "200ms") or seconds, kept as uint32
# microseconds with an unchecked cast.
cdef frozenset _TIME_OPTIONS = frozenset((
    "operation_timeout", "timeout", "views_timeout", "query_timeout", "durability_timeout",
    "durability_interval", "http_timeout", "error_thresh_delay", "config_total_timeout",
    "config_node_timeout", "retry_interval", "retry_nmv_delay", "config_poll_interval",
    "tracing_orphaned_queue_flush_interval", "tracing_threshold_queue_flush_interval",
    "tracing_threshold_kv", "tracing_threshold_query", "tracing_threshold_view",
    "tracing_threshold_search", "tracing_threshold_analytics", "http_pool_timeout",
    "persistence_timeout_floor", "analytics_timeout", "search_timeout", "query_grace_period",
    "operation_metrics_flush_interval",
))
cdef object _GO_DURATION_RE = re.compile(r"(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
cdef object _GO_PART_RE = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
cdef dict _GO_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                              "h": 3600.0}


cdef object _option_seconds(str value):
    """The seconds a time option's value means to libcouchbase, None if it
    does not parse (libcouchbase then refuses it itself)."""
    if _GO_DURATION_RE.fullmatch(value):
        return sum(float(number) * _GO_UNIT_SECONDS[unit] for number, unit in _GO_PART_RE.findall(value))
    try:
        return float(value)
    except ValueError:
        return None


cdef int _check_time_options(list options) except -1:
    """Time options of a connection string must fit libcouchbase's uint32
    microseconds (an infinite or huge one would wrap around)."""
    for name, value in options:
        if name in _TIME_OPTIONS:
            seconds = _option_seconds(value)
            if seconds is not None and not 0 <= seconds * 1e6 <= MAX_TIMEOUT_US:
                raise _exc.ArgumentError(
                    f"connection string option {name}={_exc.safe_repr(value)} is out of range "
                    f"(0 to {MAX_TIMEOUT_US / 1e6} seconds)", operation="connect")
    return 0


cdef object _exact_int(object value):
    """value as an exact int, None if it is not an int (bools are not)."""
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__int__(value)  # int's own conversion, not the subclass's
    return None


cdef object _exact_number(object value):
    """value as an exact int or float, None if it is neither (or a bool)."""
    if type(value) is float:
        return value
    if isinstance(value, float):
        return float.__float__(value)
    return _exact_int(value)


cdef object _exact_key(object key, str op):
    """key as an exact str or bytes (ArgumentError for any other type)."""
    if type(key) is str or type(key) is bytes:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bytes):
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))
    raise _exc.ArgumentError(
        f"a key must be str or bytes, not {type(key).__name__} ({_exc.safe_repr(key)})",
        key=key, operation=op)


cdef inline const char *_key_ptr(object key, Py_ssize_t *n, str op) except NULL:
    """Pointer to the UTF-8 bytes of an exact str or bytes key (no copy for
    str: CPython caches it)."""
    cdef const char *p
    if type(key) is str:
        try:
            p = PyUnicode_AsUTF8AndSize(key, n)
        except UnicodeEncodeError as e:
            raise _exc.ArgumentError(
                f"the key cannot be encoded as UTF-8 (a lone surrogate at position {e.start}); "
                f"keys are UTF-8 text or bytes", key=key, operation=op) from None
    else:
        p = PyBytes_AS_STRING(key)
        n[0] = PyBytes_GET_SIZE(key)
    if n[0] == 0:
        raise _exc.ArgumentError("empty key", key=key, operation=op)
    if n[0] > MAX_KEY_LEN:
        raise _exc.ArgumentError(
            f"key is {n[0]} bytes long; Couchbase keys are at most {MAX_KEY_LEN} bytes",
            key=key, operation=op)
    return p


cdef list _key_list(object keys, str op):
    """The keys of a multi-key call (a list, tuple, set or dict) as a list."""
    try:
        return list(keys)
    except Exception as e:
        raise _exc.ArgumentError(f"the keys could not be listed: {type(e).__name__}: {_exc.safe_str(e)}",
                                 operation=op) from e


cdef list _dict_items(object mapping, str op):
    """The (key, value) pairs of a dict argument."""
    try:
        return list(dict.items(mapping))
    except Exception as e:
        raise _exc.ArgumentError(f"the items could not be listed: {type(e).__name__}: {_exc.safe_str(e)}",
                                 operation=op) from e


cdef uint32_t _check_ttl(object ttl, str op, object key=None) except? 0xFFFFFFFF:
    if ttl is None:
        return 0
    value = _exact_int(ttl)
    if value is None:
        raise _exc.ArgumentError(f"ttl must be a non-negative int (seconds), not {_exc.safe_repr(ttl)}",
                                 key=key, operation=op)
    if value < 0 or value > MAX_TTL:
        raise _exc.ArgumentError(
            f"ttl {value} is out of range (0 to {MAX_TTL} seconds; over 30 days is an absolute Unix time)",
            key=key, operation=op)
    return <uint32_t> value


cdef uint64_t _check_cas(object cas, str op, object key=None) except? 0xFFFFFFFFFFFFFFFF:
    if cas is None:
        return 0
    value = _exact_int(cas)
    if value is None or value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        raise _exc.ArgumentError(f"cas must be an int from a previous result, not {_exc.safe_repr(cas)}",
                                 key=key, operation=op)
    return <uint64_t> value


cdef uint64_t _check_u64(object value, str what, str op, object key=None) except? 0xFFFFFFFFFFFFFFFF:
    number = _exact_int(value)
    if number is None or number < 0 or number > 0xFFFFFFFFFFFFFFFF:
        raise _exc.ArgumentError(f"{what} must be an int from 0 to 2**64-1, not {_exc.safe_repr(value)}",
                                 key=key, operation=op)
    return <uint64_t> number


cdef int _check_format(object fmt, str op) except -1:
    value = _exact_int(fmt)
    if value is None or value not in (FMT_JSON, FMT_PICKLE, FMT_PLAIN):
        raise _exc.ArgumentError(
            f"unknown format {_exc.safe_repr(fmt)}; use FMT_JSON, FMT_PICKLE or FMT_PLAIN", operation=op)
    return <int> value


cdef int _check_flag(object value, str what, str op) except -1:
    """A bool option (quiet, extended, ...): True, False, None (False), 0 or
    1; any other object would be judged by its own __bool__."""
    if value is True or value is None:
        return value is True
    if value is False:
        return 0
    number = _exact_int(value)
    if number is not None and number in (0, 1):
        return number
    raise _exc.ArgumentError(f"{what} must be True or False, not {_exc.safe_repr(value)}", operation=op)


# What get does with a value stored as a pickle (Connection's unpickle=).
cdef enum PickleMode:
    PICKLE_LOAD     # unpickle=True: unpickle it (the 0.9 behaviour)
    PICKLE_REFUSE   # unpickle=False: raise ValueFormatError
    PICKLE_BYTES    # unpickle="bytes": return the pickled bytes


cdef int _check_unpickle(object unpickle) except -1:
    if unpickle is True:
        return PICKLE_LOAD
    if unpickle is False:
        return PICKLE_REFUSE
    if type(unpickle) is str and unpickle == "bytes":
        return PICKLE_BYTES
    raise _exc.ArgumentError(f"unpickle must be True, False or 'bytes', not {_exc.safe_repr(unpickle)}",
                             operation="connect")


cdef inline bint _is_multi(object keys):
    """A list, tuple, set or dict of keys; a str or bytes is one key."""
    return isinstance(keys, (list, tuple, set, frozenset, dict))
