# Included by _lcb.pyx: value encoding and decoding. The format travels in the
# item's flags: the 0.9 values when writing; when reading, also the "common
# flags" (top byte) that every current Couchbase SDK writes and the 1.x
# client's UTF-8 value.

cdef int _FMT_JSON = 0
cdef int _FMT_PICKLE = 1
cdef int _FMT_PLAIN = 2
cdef uint32_t CF_MASK = 0xFF000000
cdef uint32_t CF_PRIVATE = 0x01000000
cdef uint32_t CF_JSON = 0x02000000
cdef uint32_t CF_STRING = 0x04000000
cdef uint32_t LEGACY_UTF8 = 0x4
cdef uint8_t DATATYPE_JSON = 0x01

cdef object _json_encode = _json_encode_default
cdef object _json_decode = _json_decode_default
cdef object _pickle_dumps = pickle.dumps
cdef object _pickle_loads = pickle.loads
cdef int _pickle_protocol = pickle.HIGHEST_PROTOCOL


def set_json_converters(encode, decode):
    """Replace the JSON codec used for FMT_JSON values.

    ``encode(obj)`` must return ``bytes`` or ``str``; ``decode(data)`` receives
    ``bytes``. Returns the previous ``(encode, decode)`` pair so it can be
    restored. The default pair is orjson with a fallback to the standard
    library for what orjson refuses (see ``couchbase._codec``).
    """
    global _json_encode, _json_decode
    if not callable(encode) or not callable(decode):
        raise _exc.ArgumentError("set_json_converters needs two callables (encode, decode)")
    previous = (_json_encode, _json_decode)
    _json_encode, _json_decode = encode, decode
    return previous


cdef bytes _encode(object value, int fmt, str op, object key):
    """Encode value for storing with format fmt; the flags are the format."""
    if fmt == _FMT_JSON:
        try:
            data = _json_encode(value)
            if type(data) is str:
                data = (<str> data).encode("utf-8")
            elif type(data) is not bytes:
                data = bytes(memoryview(data))  # a custom encoder's bytes-like result
        except Exception as e:
            raise _exc.ValueFormatError(
                f"value of type {type(value).__name__} cannot be encoded as JSON: {_exc.safe_str(e)}",
                key=key, operation=op) from e
        return data
    if fmt == _FMT_PICKLE:
        try:
            return _pickle_dumps(value, _pickle_protocol)
        except Exception as e:
            raise _exc.ValueFormatError(
                f"value of type {type(value).__name__} cannot be pickled: {_exc.safe_str(e)}",
                key=key, operation=op) from e
    # FMT_PLAIN: the bytes as given (through the buffer: no method of a subclass runs)
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(memoryview(value))
        except Exception as e:
            raise _exc.ValueFormatError(f"the bytes of the value cannot be read: {_exc.safe_str(e)}",
                                        key=key, operation=op) from e
    raise _exc.ValueFormatError(
        f"FMT_PLAIN stores bytes only, not {type(value).__name__}; encode the value first "
        f"or use FMT_JSON / FMT_PICKLE", key=key, operation=op)


cdef object _decode(Slot *slot, object fmt_override, object key, str op, int pickles):
    """Turn a stored value back into a Python object, by its flags unless a
    format is forced; a pickle as the Connection's unpickle= says."""
    cdef uint32_t flags = slot.flags
    cdef int fmt
    if slot.large != NULL:
        data = <object> slot.large
    else:
        data = PyBytes_FromStringAndSize(slot.value, slot.nvalue)
    if fmt_override is not None:
        fmt = <int> fmt_override
    elif flags & CF_MASK:
        if (flags & CF_MASK) == CF_JSON:
            fmt = _FMT_JSON
        elif (flags & CF_MASK) == CF_PRIVATE:
            fmt = _FMT_PICKLE
        elif (flags & CF_MASK) == CF_STRING:
            return _decode_utf8(data, key, op)
        else:
            return data  # CF_BINARY, or a format we don't know: the raw bytes
    elif flags == LEGACY_UTF8:
        return _decode_utf8(data, key, op)
    else:
        fmt = flags & FMT_MASK
        if fmt == 3:
            return data
    if fmt == _FMT_PLAIN:
        return data
    if fmt == _FMT_JSON:
        try:
            return _json_decode(data)
        except Exception as e:
            raise _exc.ValueFormatError(
                f"the stored value (flags {flags:#x}) is not valid JSON: {_exc.safe_str(e)}",
                key=key, operation=op, cas=slot.cas) from e
    if pickles == PICKLE_BYTES:
        return data
    if pickles == PICKLE_REFUSE:
        raise _exc.ValueFormatError(
            f"the stored value (flags {flags:#x}) is a pickle of {len(data)} bytes, and this Connection "
            f"does not unpickle (unpickle=False): unpickling runs code chosen by whoever wrote the value. "
            f"get(key, format=FMT_PLAIN) returns its bytes", key=key, operation=op, cas=slot.cas)
    try:
        return _pickle_loads(data)
    except Exception as e:
        raise _exc.ValueFormatError(
            f"the stored value (flags {flags:#x}) cannot be unpickled: {_exc.safe_str(e)}",
            key=key, operation=op, cas=slot.cas) from e


cdef object _decode_utf8(bytes data, object key, str op):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _exc.ValueFormatError(f"the stored string is not valid UTF-8: {e}",
                                    key=key, operation=op) from e
