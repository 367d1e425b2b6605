# cython: language_level=3, binding=False, embedsignature=True
"""The compiled core of couchbase-lcb: a Connection over one libcouchbase instance.

How a call runs: the arguments are checked and encoded first (bad input never
reaches the network), every key's command is scheduled between
lcb_sched_enter/leave, then lcb_wait runs with the GIL released. The response
callbacks never touch Python: they copy status, CAS, flags and value bytes into
C slots, and Python results are built after the wait returns.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.pythread cimport (
    NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock, PyThread_free_lock,
    PyThread_release_lock, PyThread_type_lock,
)
from cpython.unicode cimport PyUnicode_Check
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from couchbase cimport _lcb as lcb

import logging
import pickle
import warnings

from couchbase import exceptions as _exc
from couchbase._codec import json_decode as _json_decode_default
from couchbase._codec import json_encode as _json_encode_default
from couchbase.result import Result


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN

FMT_MASK = 0x3

# Flags other Couchbase SDKs write ("common flags", top byte) and the 1.x
# client's UTF-8 format; recognised when reading.
cdef uint32_t CF_MASK = 0xFF000000
cdef uint32_t CF_PRIVATE = 0x01000000
cdef uint32_t CF_JSON = 0x02000000
cdef uint32_t CF_STRING = 0x04000000
cdef uint32_t LEGACY_UTF8 = 0x4

cdef uint8_t DATATYPE_JSON = 0x01
cdef Py_ssize_t MAX_KEY_LEN = 250
cdef uint64_t MAX_TTL = 0xFFFFFFFF
# The status of a slot whose callback has not run (yet).
cdef lcb.lcb_STATUS NO_REPLY = -1

cdef int _FMT_JSON = 0
cdef int _FMT_PICKLE = 1
cdef int _FMT_PLAIN = 2

cdef object _json_encode = _json_encode_default
cdef object _json_decode = _json_decode_default
cdef object _pickle_dumps = pickle.dumps
cdef object _pickle_loads = pickle.loads
cdef int _pickle_protocol = pickle.HIGHEST_PROTOCOL

_logger = logging.getLogger("couchbase")


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


# ---------------------------------------------------------------------------
# C side of a call: one slot per key, written by the callbacks without the GIL.

cdef struct Slot:
    lcb.lcb_STATUS rc
    uint32_t flags
    uint8_t datatype
    uint64_t cas
    uint64_t counter
    char *value
    size_t nvalue


cdef class _Slots:
    """A C array of response slots, freed with the values the callbacks copied."""
    cdef Slot *slots
    cdef Py_ssize_t n

    def __cinit__(self, Py_ssize_t n):
        self.n = n
        self.slots = <Slot *> calloc(n if n > 0 else 1, sizeof(Slot))
        if self.slots == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(n):
            self.slots[i].rc = NO_REPLY

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.slots != NULL:
            for i in range(self.n):
                free(self.slots[i].value)
            free(self.slots)


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


cdef class _StatsCollector:
    """Gathers STAT replies: stat name -> {server: value}. Stats are rare, so
    this callback takes the GIL and builds Python objects directly."""
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


# ---------------------------------------------------------------------------
# libcouchbase's log -> Python logging (logger "couchbase").

cdef int _log_min_severity = lcb.LCB_LOG_WARN
_SEVERITY_TO_LEVEL = {
    lcb.LCB_LOG_TRACE: 5, lcb.LCB_LOG_DEBUG: logging.DEBUG, lcb.LCB_LOG_INFO: logging.INFO,
    lcb.LCB_LOG_WARN: logging.WARNING, lcb.LCB_LOG_ERROR: logging.ERROR, lcb.LCB_LOG_FATAL: logging.CRITICAL,
}


cdef int _severity_for_logger():
    level = _logger.getEffectiveLevel()
    if level <= 5:
        return lcb.LCB_LOG_TRACE
    if level <= logging.DEBUG:
        return lcb.LCB_LOG_DEBUG
    if level <= logging.INFO:
        return lcb.LCB_LOG_INFO
    # WARNING and above is forwarded even when nobody configured logging
    return lcb.LCB_LOG_WARN


cdef void _on_log(const lcb.lcb_LOGGER *procs, uint64_t iid, const char *subsys,
                  lcb.lcb_LOG_SEVERITY severity, const char *srcfile, int srcline,
                  const char *fmt, lcb.va_list ap) noexcept nogil:
    cdef char buf[1024]
    if <int> severity < _log_min_severity:
        return
    lcb.vsnprintf(buf, sizeof(buf), fmt, ap)
    _forward_log(iid, subsys, severity, buf)


cdef void _forward_log(uint64_t iid, const char *subsys, int severity, const char *msg) noexcept with gil:
    try:
        _logger.log(_SEVERITY_TO_LEVEL.get(severity, logging.WARNING), "[%d] (%s) %s",
                    iid, subsys.decode("utf-8", "replace"), msg.decode("utf-8", "replace"))
    except BaseException:
        pass  # logging must never break an operation


# ---------------------------------------------------------------------------
# Argument checks and value encoding.

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


cdef bytes _encode(object value, int fmt, str op, object key, uint8_t *datatype):
    """Encode value for storing with format fmt; the flags are the format."""
    datatype[0] = 0
    if fmt == _FMT_JSON:
        try:
            data = _json_encode(value)
        except Exception as e:
            raise _exc.ValueFormatError(
                f"value of type {type(value).__name__} cannot be encoded as JSON: {e}",
                key=key, operation=op) from e
        if type(data) is str:
            data = (<str> data).encode("utf-8")
        elif type(data) is not bytes:
            data = bytes(data)
        datatype[0] = DATATYPE_JSON
        return data
    if fmt == _FMT_PICKLE:
        try:
            return _pickle_dumps(value, _pickle_protocol)
        except Exception as e:
            raise _exc.ValueFormatError(
                f"value of type {type(value).__name__} cannot be pickled: {e}",
                key=key, operation=op) from e
    # FMT_PLAIN: the bytes as given
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _exc.ValueFormatError(
        f"FMT_PLAIN stores bytes only, not {type(value).__name__}; encode the value first "
        f"or use FMT_JSON / FMT_PICKLE", key=key, operation=op)


cdef object _decode(Slot *slot, object fmt_override, object key, str op):
    """Turn a stored value back into a Python object, by its flags unless a
    format is forced."""
    cdef uint32_t flags = slot.flags
    cdef int fmt
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
                f"the stored value (flags {flags:#x}) is not valid JSON: {e}",
                key=key, operation=op, cas=slot.cas) from e
    try:
        return _pickle_loads(data)
    except Exception as e:
        raise _exc.ValueFormatError(
            f"the stored value (flags {flags:#x}) cannot be unpickled: {e}",
            key=key, operation=op, cas=slot.cas) from e


cdef object _decode_utf8(bytes data, object key, str op):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _exc.ValueFormatError(f"the stored string is not valid UTF-8: {e}",
                                    key=key, operation=op) from e


cdef int _check_rc(lcb.lcb_STATUS rc, str op, object key=None) except -1:
    """The one gate from a libcouchbase status to an exception."""
    if rc != lcb.LCB_SUCCESS:
        raise _exc.exception_for_status(rc, key=key, operation=op)
    return 0


cdef list _as_key_list(object keys):
    if isinstance(keys, (list, tuple, set, frozenset)):
        return list(keys)
    if isinstance(keys, dict):
        return list(keys)
    return list(keys)


cdef inline bint _is_multi(object keys):
    return not (PyUnicode_Check(keys) or type(keys) is bytes) and isinstance(
        keys, (list, tuple, set, frozenset, dict))


# ---------------------------------------------------------------------------

cdef str _host_for_connstr(str host):
    if ":" in host and not host.startswith("["):
        return f"[{host}]"  # IPv6 literal
    return host


cdef set _connstr_options(str connstr):
    """The option names already present in a connection string's query."""
    cdef set names = set()
    if "?" in connstr:
        for part in connstr.split("?", 1)[1].split("&"):
            if part:
                names.add(part.split("=", 1)[0])
    return names


@cython.final
cdef class Connection:
    """A connection to one Couchbase bucket.

    Normally made with :meth:`couchbase.Couchbase.connect`; takes the same
    arguments: ``Connection(host='localhost', port=8091, username=None,
    password=None, bucket=None, quiet=False)``. It bootstraps over HTTP on the
    management port, like the 0.9 client. Keyword-only options:

    - ``connection_string``: a full libcouchbase connection string
      (``couchbase://h1,h2/bucket?opt=val``); host and port are then ignored.
    - ``timeout``: the operation timeout in seconds (default 2.5).
    - ``connect_timeout``: the bootstrap timeout in seconds (default 10).
    - ``default_format``: FMT_JSON (default), FMT_PICKLE or FMT_PLAIN.
    - ``enable_tracing``, ``enable_operation_metrics``: libcouchbase's threshold
      tracer and operation metrics; off by default because they cost more CPU
      per operation than the rest of the client.

    One Connection may be shared by threads: calls are serialized on it, and the
    GIL is released while libcouchbase waits on the network.
    """

    cdef lcb.lcb_INSTANCE *_instance
    cdef lcb.lcb_io_opt_t _io
    cdef lcb.lcb_LOGGER *_lcb_logger
    cdef PyThread_type_lock _lock
    cdef int _default_format
    cdef readonly object host
    cdef readonly object port
    cdef readonly object bucket
    cdef readonly object username
    cdef readonly str connection_string
    cdef public bint quiet

    def __cinit__(self, *args, **kwargs):
        self._instance = NULL
        self._io = NULL
        self._lcb_logger = NULL
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __init__(self, host="localhost", port=8091, username=None, password=None, bucket=None,
                 quiet=False, *, connection_string=None, timeout=2.5, connect_timeout=10.0,
                 default_format=FMT_JSON, enable_tracing=False, enable_operation_metrics=False):
        if self._instance != NULL:
            raise _exc.ArgumentError("Connection is already initialised")
        if bucket is None or bucket == "":
            raise _exc.ArgumentError("a bucket name is required (bucket=...)", operation="connect")
        if password is None:
            raise _exc.ArgumentError(
                f"a password is required to connect to bucket {bucket!r} (use '' for an open bucket)",
                operation="connect")
        for name, value in (("bucket", bucket), ("password", password), ("username", username),
                            ("host", host)):
            if value is not None and not isinstance(value, str):
                raise _exc.ArgumentError(f"{name} must be a str, not {type(value).__name__}",
                                         operation="connect")
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if type(value) is bool or not isinstance(value, (int, float)) or not value > 0:
                raise _exc.ArgumentError(f"{name} must be a positive number of seconds, not {value!r}",
                                         operation="connect")
        self._default_format = _check_format(default_format, "connect")
        self.quiet = bool(quiet)
        self.bucket = bucket
        self.username = username if username is not None else bucket
        if connection_string is not None:
            host = port = None  # the connection string names the nodes
        else:
            if not host:
                raise _exc.ArgumentError("a host is required (or a connection_string)", operation="connect")
            if not isinstance(port, int) or type(port) is bool or not 0 < port < 65536:
                raise _exc.ArgumentError(f"port must be an int from 1 to 65535, not {port!r}",
                                         operation="connect")
            connection_string = f"couchbase://{_host_for_connstr(host)}:{port}=http/{bucket}"
        if not isinstance(connection_string, str):
            raise _exc.ArgumentError("connection_string must be a str", operation="connect")
        self.host = host
        self.port = port
        self.connection_string = connection_string
        self._open(password, {
            "operation_timeout": f"{float(timeout):g}",
            "config_total_timeout": f"{float(connect_timeout):g}",
            "enable_tracing": "true" if enable_tracing else "false",
            "enable_operation_metrics": "true" if enable_operation_metrics else "false",
        })

    cdef _open(self, str password, dict settings):
        global _log_min_severity
        cdef lcb.lcb_CREATEOPTS *options = NULL
        cdef lcb.lcb_STATUS rc
        cdef bytes connstr = self.connection_string.encode("utf-8")
        cdef bytes user = self.username.encode("utf-8")
        cdef bytes pw = password.encode("utf-8")
        cdef bytes bucket = self.bucket.encode("utf-8")

        _log_min_severity = _severity_for_logger()
        self._check_setup(lcb.lcb_logger_create(&self._lcb_logger, NULL))
        self._check_setup(lcb.lcb_logger_callback(self._lcb_logger, _on_log))
        # The select loop costs least for a blocking client; a libevent plugin,
        # if installed, would otherwise become libcouchbase's default.
        self._check_setup(lcb.lcbpy_create_select_io(&self._io))
        self._check_setup(lcb.lcb_createopts_create(&options, lcb.LCB_TYPE_BUCKET))
        try:
            self._check_setup(lcb.lcb_createopts_connstr(options, connstr, len(connstr)))
            self._check_setup(lcb.lcb_createopts_bucket(options, bucket, len(bucket)))
            self._check_setup(lcb.lcb_createopts_credentials(options, user, len(user), pw, len(pw)))
            self._check_setup(lcb.lcb_createopts_io(options, self._io))
            self._check_setup(lcb.lcb_createopts_logger(options, self._lcb_logger))
            rc = lcb.lcb_create(&self._instance, options)
        finally:
            lcb.lcb_createopts_destroy(options)
        if rc != lcb.LCB_SUCCESS:
            self._instance = NULL
            self._release()
            raise self._connect_error(rc)

        given = _connstr_options(self.connection_string)
        for name, value in settings.items():
            if name not in given:
                self._check_setup(lcb.lcb_cntl_string(self._instance, name.encode(), value.encode()))

        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_GET, _on_get)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_STORE, _on_store)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_REMOVE, _on_remove)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_COUNTER, _on_counter)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_TOUCH, _on_touch)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_UNLOCK, _on_unlock)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_STATS, <lcb.lcb_RESPCALLBACK> _on_stats)

        rc = lcb.lcb_connect(self._instance)
        if rc == lcb.LCB_SUCCESS:
            with nogil:
                lcb.lcb_wait(self._instance, lcb.LCB_WAIT_DEFAULT)
            rc = lcb.lcb_get_bootstrap_status(self._instance)
        if rc != lcb.LCB_SUCCESS:
            self._release()
            raise self._connect_error(rc)

    cdef int _check_setup(self, lcb.lcb_STATUS rc) except -1:
        if rc != lcb.LCB_SUCCESS:
            self._release()
            raise self._connect_error(rc)
        return 0

    cdef object _connect_error(self, lcb.lcb_STATUS rc):
        """Bootstrap failures, in the classes the 0.9 client raised."""
        err = _exc.exception_for_status(rc, operation="connect")
        if not isinstance(err, (_exc.AuthError, _exc.BucketNotFoundError, _exc.ConnectError,
                                _exc.ArgumentError)):
            err = _exc.ConnectError(err.msg, error=rc, operation="connect")
        where = f"{self.host}:{self.port}" if self.host is not None else self.connection_string
        err.msg = f"bucket {self.bucket!r} at {where}: {err.msg}"
        return err

    cdef void _release(self) noexcept:
        """Destroy the libcouchbase instance and what it uses."""
        if self._instance != NULL:
            lcb.lcb_destroy(self._instance)
            self._instance = NULL
        if self._io != NULL:
            lcb.lcb_destroy_io_ops(self._io)
            self._io = NULL
        if self._lcb_logger != NULL:
            lcb.lcb_logger_destroy(self._lcb_logger)
            self._lcb_logger = NULL

    def __dealloc__(self):
        self._release()
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    def __del__(self):
        if self._instance != NULL:
            warnings.warn(f"unclosed {self!r}; call close() or use 'with'", ResourceWarning,
                          source=self)

    # -- locking: one thread at a time on one libcouchbase instance ----------

    cdef int _enter(self, str op) except -1:
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        if self._instance == NULL:
            PyThread_release_lock(self._lock)
            raise _exc.ConnectError(
                f"the connection to bucket {self.bucket!r} is closed; open a new Connection",
                operation=op)
        return 0

    cdef inline void _leave(self) noexcept:
        PyThread_release_lock(self._lock)

    cdef int _wait(self) except -1:
        with nogil:
            lcb.lcb_wait(self._instance, lcb.LCB_WAIT_NOCHECK)
        return 0

    # -- lifecycle ------------------------------------------------------------

    def close(self):
        """Close the connection. Idempotent; later calls raise ConnectError."""
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        try:
            self._release()
        finally:
            PyThread_release_lock(self._lock)

    @property
    def closed(self):
        """True once close() was called."""
        return self._instance == NULL

    @property
    def default_format(self):
        """The format used when a call names none: FMT_JSON, FMT_PICKLE or FMT_PLAIN."""
        return self._default_format

    @default_format.setter
    def default_format(self, value):
        self._default_format = _check_format(value, "default_format")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self._instance == NULL else "open"
        return (f"<couchbase.libcouchbase.Connection bucket={self.bucket!r} "
                f"connection_string={self.connection_string!r} username={self.username!r} {state}>")

    # -- get / lock ------------------------------------------------------------

    def get(self, keys, extended=False, format=None, quiet=None, ttl=None):
        """Obtain the value(s) stored under one or several keys.

        ``get('k')`` returns the value; ``get(['a', 'b'])`` a list of values in
        the order asked. With ``extended=True`` a single get returns a
        ``Result(value, flags, cas)`` and a multi-get a dict key -> Result.
        ``format`` forces the decoder (FMT_PLAIN returns the raw bytes).
        ``quiet`` (default: the connection's) returns None (or
        ``Result(None, 0, 0)``) for a missing key instead of raising
        NotFoundError. ``ttl`` also sets a new expiry (get-and-touch).

        Example::

            value = cb.get('key')
            value, flags, cas = cb.get('key', extended=True)
        """
        if format is not None:
            _check_format(format, "get")
        cdef bint q = self.quiet if quiet is None else bool(quiet)
        cdef bint multi = _is_multi(keys)
        cdef list key_list = _as_key_list(keys) if multi else [keys]
        cdef uint32_t expiry = _check_ttl(ttl, "get") if ttl is not None else 0
        slots = self._schedule_get(key_list, "get", expiry, ttl is not None, 0)
        return self._get_results(<_Slots> slots, key_list, multi, extended, format, q, "get")

    def lock(self, keys, ttl):
        """Get and lock one or several keys for ``ttl`` seconds (at most 30).

        Returns ``Result(value, flags, cas)`` (a dict key -> Result for a list
        of keys); the CAS is what :meth:`unlock` or a CAS-checked mutation needs
        while the lock holds. Other mutations fail with a locked error until
        then. ``lock('k', ttl=10)``.
        """
        cdef uint32_t lock_time = _check_ttl(ttl, "lock")
        if lock_time == 0 or lock_time > 30:
            raise _exc.ArgumentError(f"ttl must be from 1 to 30 seconds, not {ttl!r}",
                                     operation="lock")
        cdef bint multi = _is_multi(keys)
        cdef list key_list = _as_key_list(keys) if multi else [keys]
        slots = self._schedule_get(key_list, "lock", 0, False, lock_time)
        return self._get_results(<_Slots> slots, key_list, multi, True, None, False, "lock")

    cdef _Slots _schedule_get(self, list key_list, str op, uint32_t expiry, bint touch,
                              uint32_t lock_time):
        cdef Py_ssize_t i, n = len(key_list)
        cdef Py_ssize_t nkey
        cdef const char *kp
        cdef lcb.lcb_CMDGET *cmd = NULL
        for key in key_list:
            _key_ptr(key, &nkey, op)
        cdef _Slots slots = _Slots(n)
        self._enter(op)
        try:
            lcb.lcb_cmdget_create(&cmd)
            if touch:
                lcb.lcb_cmdget_expiry(cmd, expiry)
            if lock_time:
                lcb.lcb_cmdget_locktime(cmd, lock_time)
            lcb.lcb_sched_enter(self._instance)
            for i in range(n):
                kp = _key_ptr(key_list[i], &nkey, op)
                lcb.lcb_cmdget_key(cmd, kp, nkey)
                slots.slots[i].rc = lcb.lcb_get(self._instance, &slots.slots[i], cmd)
                if slots.slots[i].rc == lcb.LCB_SUCCESS:
                    slots.slots[i].rc = NO_REPLY
            lcb.lcb_sched_leave(self._instance)
            lcb.lcb_cmdget_destroy(cmd)
            self._wait()
        finally:
            self._leave()
        return slots

    cdef object _get_results(self, _Slots slots, list key_list, bint multi, bint extended,
                             object fmt, bint quiet, str op):
        cdef Py_ssize_t i, n = len(key_list)
        cdef Slot *slot
        cdef list values
        cdef dict results
        first_error = None
        if multi and not extended:
            values = []
        else:
            results = {}
        for i in range(n):
            slot = &slots.slots[i]
            key = key_list[i]
            if slot.rc == lcb.LCB_SUCCESS:
                try:
                    value = _decode(slot, fmt, key, op)
                except _exc.CouchbaseError as e:
                    if not multi:
                        raise
                    first_error = first_error or e
                    value = e
                else:
                    if extended:
                        value = Result(value, slot.flags, slot.cas)
            elif slot.rc == lcb.LCB_ERR_DOCUMENT_NOT_FOUND and quiet:
                value = Result(None, 0, 0) if extended else None
            else:
                err = _slot_error(slot, key, op)
                if not multi:
                    raise err
                first_error = first_error or err
                value = err
            if not multi:
                return value
            if extended:
                results[key] = value
            else:
                values.append(value)
        out = values if multi and not extended else results
        if first_error is not None:
            first_error.all_results = out if isinstance(out, dict) else dict(zip(key_list, out))
            raise first_error
        return out

    # -- set / add / replace / append / prepend --------------------------------

    def set(self, key, value=None, cas=0, ttl=0, format=None):
        """Unconditionally store a value (or a dict of key -> value).

        Returns the new CAS (int), or a dict key -> CAS for a multi-set.
        ``cas`` makes the store conditional on the document's current CAS
        (KeyExistsError if it changed; not allowed with a dict). ``ttl`` is in
        seconds (over 30 days: an absolute Unix time). ``format`` overrides
        ``default_format``.

        Example::

            cb.set('key', 'value')
            cb.set({'foo': 'bar', 'baz': 'value'})
        """
        return self._store(lcb.LCB_STORE_UPSERT, "set", key, value, cas, ttl, format)

    def add(self, key, value=None, ttl=0, format=None):
        """Store a value only if the key does not exist yet (KeyExistsError
        otherwise). Same conventions as :meth:`set`."""
        return self._store(lcb.LCB_STORE_INSERT, "add", key, value, 0, ttl, format)

    def replace(self, key, value=None, cas=0, ttl=0, format=None):
        """Store a value only if the key already exists (NotFoundError
        otherwise). Same conventions as :meth:`set`."""
        return self._store(lcb.LCB_STORE_REPLACE, "replace", key, value, cas, ttl, format)

    def append(self, key, value=None, cas=0, ttl=0):
        """Append bytes to an existing value (NotStoredError if the key does not
        exist). The format is always FMT_PLAIN; a dict appends to several keys."""
        return self._store(lcb.LCB_STORE_APPEND, "append", key, value, cas, ttl, FMT_PLAIN)

    def prepend(self, key, value=None, cas=0, ttl=0):
        """Prepend bytes to an existing value. Same conventions as :meth:`append`."""
        return self._store(lcb.LCB_STORE_PREPEND, "prepend", key, value, cas, ttl, FMT_PLAIN)

    cdef object _store(self, lcb.lcb_STORE_OPERATION operation, str op, object key, object value,
                       object cas, object ttl, object format):
        cdef int fmt = self._default_format if format is None else _check_format(format, op)
        cdef bint multi = isinstance(key, dict)
        cdef uint64_t cas_value = _check_cas(cas, op, None if multi else key)
        cdef uint32_t expiry = _check_ttl(ttl, op, None if multi else key)
        cdef list key_list
        cdef list values = []
        cdef uint8_t datatype = 0
        cdef Py_ssize_t nkey
        if multi:
            if cas_value:
                raise _exc.ArgumentError("a CAS cannot be given with a dict of several keys",
                                         operation=op)
            if value is not None:
                raise _exc.ArgumentError("with a dict of key -> value, give no separate value",
                                         operation=op)
            key_list = list((<dict> key).keys())
            items = (<dict> key).values()
        else:
            key_list = [key]
            items = (value,)
        # encode everything before anything is sent
        cdef list datatypes = []
        for k, v in zip(key_list, items):
            _key_ptr(k, &nkey, op)
            values.append(_encode(v, fmt, op, k, &datatype))
            datatypes.append(datatype)
        if cas_value and operation == lcb.LCB_STORE_UPSERT:
            # libcouchbase refuses a CAS on an upsert; a CAS-checked set is a
            # replace on the wire (the key must exist for its CAS to match).
            operation = lcb.LCB_STORE_REPLACE
        slots = self._schedule_store(operation, op, key_list, values, datatypes, fmt, cas_value, expiry)
        return self._cas_results(<_Slots> slots, key_list, multi, op, False)

    cdef _Slots _schedule_store(self, lcb.lcb_STORE_OPERATION operation, str op, list key_list,
                                list values, list datatypes, int fmt, uint64_t cas, uint32_t expiry):
        cdef Py_ssize_t i, n = len(key_list)
        cdef Py_ssize_t nkey
        cdef const char *kp
        cdef bytes data
        cdef lcb.lcb_CMDSTORE *cmd = NULL
        cdef _Slots slots = _Slots(n)
        cdef bint is_concat = operation == lcb.LCB_STORE_APPEND or operation == lcb.LCB_STORE_PREPEND
        self._enter(op)
        try:
            _check_rc(lcb.lcb_cmdstore_create(&cmd, operation), op)
            try:
                if cas:
                    _check_rc(lcb.lcb_cmdstore_cas(cmd, cas), op)
                if expiry:
                    _check_rc(lcb.lcb_cmdstore_expiry(cmd, expiry), op)
                if not is_concat:
                    _check_rc(lcb.lcb_cmdstore_flags(cmd, <uint32_t> fmt), op)
            except BaseException:
                lcb.lcb_cmdstore_destroy(cmd)
                raise
            lcb.lcb_sched_enter(self._instance)
            for i in range(n):
                kp = _key_ptr(key_list[i], &nkey, op)
                data = <bytes> values[i]
                lcb.lcb_cmdstore_key(cmd, kp, nkey)
                lcb.lcb_cmdstore_value(cmd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
                lcb.lcb_cmdstore_datatype(cmd, <uint8_t> <int> datatypes[i])
                slots.slots[i].rc = lcb.lcb_store(self._instance, &slots.slots[i], cmd)
                if slots.slots[i].rc == lcb.LCB_SUCCESS:
                    slots.slots[i].rc = NO_REPLY
            lcb.lcb_sched_leave(self._instance)
            lcb.lcb_cmdstore_destroy(cmd)
            self._wait()
        finally:
            self._leave()
        return slots

    cdef object _cas_results(self, _Slots slots, list key_list, bint multi, str op, bint quiet):
        """Results of mutations: the new CAS per key (or True/False for delete)."""
        cdef Py_ssize_t i
        cdef Slot *slot
        cdef dict results = {}
        first_error = None
        for i in range(len(key_list)):
            slot = &slots.slots[i]
            key = key_list[i]
            if slot.rc == lcb.LCB_SUCCESS:
                value = slot.cas
            else:
                err = _slot_error(slot, key, op)
                if not multi:
                    raise err
                first_error = first_error or err
                value = err
            if not multi:
                return value
            results[key] = value
        if first_error is not None:
            first_error.all_results = results
            raise first_error
        return results

    # -- delete ----------------------------------------------------------------

    def delete(self, keys, cas=0, quiet=None):
        """Remove one key, a list of keys, or a dict of key -> CAS.

        Returns True (False for a missing key with ``quiet``); a dict key ->
        bool for several keys. With ``cas`` the key is removed only if its CAS
        still matches (KeyExistsError otherwise).

        Example::

            cb.delete('key')
            cb.delete({'key1': cas1, 'key2': cas2})
        """
        cdef bint q = self.quiet if quiet is None else bool(quiet)
        cdef bint multi = _is_multi(keys)
        cdef list key_list
        cdef list cas_list
        cdef Py_ssize_t nkey
        if multi and isinstance(keys, dict):
            if cas:
                raise _exc.ArgumentError("give CAS values in the dict, not as cas=",
                                         operation="delete")
            key_list = list(keys.keys())
            cas_list = [_check_cas(c, "delete", k) for k, c in keys.items()]
        else:
            key_list = _as_key_list(keys) if multi else [keys]
            if multi and cas:
                raise _exc.ArgumentError("a CAS cannot be given with a list of keys; "
                                         "use a dict of key -> CAS", operation="delete")
            cas_list = [_check_cas(cas, "delete", keys)] * len(key_list)
        for key in key_list:
            _key_ptr(key, &nkey, "delete")
        slots = self._schedule_remove(key_list, cas_list)
        return self._bool_results(<_Slots> slots, key_list, multi, "delete", q)

    cdef _Slots _schedule_remove(self, list key_list, list cas_list):
        cdef Py_ssize_t i, n = len(key_list)
        cdef Py_ssize_t nkey
        cdef const char *kp
        cdef lcb.lcb_CMDREMOVE *cmd = NULL
        cdef _Slots slots = _Slots(n)
        self._enter("delete")
        try:
            lcb.lcb_cmdremove_create(&cmd)
            lcb.lcb_sched_enter(self._instance)
            for i in range(n):
                kp = _key_ptr(key_list[i], &nkey, "delete")
                lcb.lcb_cmdremove_key(cmd, kp, nkey)
                lcb.lcb_cmdremove_cas(cmd, <uint64_t> cas_list[i])
                slots.slots[i].rc = lcb.lcb_remove(self._instance, &slots.slots[i], cmd)
                if slots.slots[i].rc == lcb.LCB_SUCCESS:
                    slots.slots[i].rc = NO_REPLY
            lcb.lcb_sched_leave(self._instance)
            lcb.lcb_cmdremove_destroy(cmd)
            self._wait()
        finally:
            self._leave()
        return slots

    cdef object _bool_results(self, _Slots slots, list key_list, bint multi, str op, bint quiet):
        cdef Py_ssize_t i
        cdef Slot *slot
        cdef dict results = {}
        first_error = None
        for i in range(len(key_list)):
            slot = &slots.slots[i]
            key = key_list[i]
            if slot.rc == lcb.LCB_SUCCESS:
                value = True
            elif slot.rc == lcb.LCB_ERR_DOCUMENT_NOT_FOUND and quiet:
                value = False
            else:
                err = _slot_error(slot, key, op)
                if not multi:
                    raise err
                first_error = first_error or err
                value = err
            if not multi:
                return value
            results[key] = value
        if first_error is not None:
            first_error.all_results = results
            raise first_error
        return results

    # -- touch / unlock -----------------------------------------------------------

    def touch(self, keys, ttl):
        """Set a new expiry (``ttl`` seconds; 0 removes it) on one key or a list
        of keys, without reading them. Returns True, or a dict key -> True."""
        cdef uint32_t expiry = _check_ttl(ttl, "touch")
        cdef bint multi = _is_multi(keys)
        cdef list key_list = _as_key_list(keys) if multi else [keys]
        cdef Py_ssize_t i, n = len(key_list)
        cdef Py_ssize_t nkey
        cdef const char *kp
        cdef lcb.lcb_CMDTOUCH *cmd = NULL
        for key in key_list:
            _key_ptr(key, &nkey, "touch")
        cdef _Slots slots = _Slots(n)
        self._enter("touch")
        try:
            lcb.lcb_cmdtouch_create(&cmd)
            lcb.lcb_cmdtouch_expiry(cmd, expiry)
            lcb.lcb_sched_enter(self._instance)
            for i in range(n):
                kp = _key_ptr(key_list[i], &nkey, "touch")
                lcb.lcb_cmdtouch_key(cmd, kp, nkey)
                slots.slots[i].rc = lcb.lcb_touch(self._instance, &slots.slots[i], cmd)
                if slots.slots[i].rc == lcb.LCB_SUCCESS:
                    slots.slots[i].rc = NO_REPLY
            lcb.lcb_sched_leave(self._instance)
            lcb.lcb_cmdtouch_destroy(cmd)
            self._wait()
        finally:
            self._leave()
        return self._bool_results(slots, key_list, multi, "touch", False)

    def unlock(self, key, cas=None):
        """Release a lock taken with :meth:`lock`, given the CAS it returned.
        ``unlock({'k1': cas1, 'k2': cas2})`` unlocks several. Returns True, or
        a dict key -> True."""
        cdef bint multi = isinstance(key, dict)
        cdef list key_list
        cdef list cas_list
        cdef Py_ssize_t i, n
        cdef Py_ssize_t nkey
        cdef const char *kp
        cdef lcb.lcb_CMDUNLOCK *cmd = NULL
        if multi:
            key_list = list(key.keys())
            cas_list = [_check_cas(c, "unlock", k) for k, c in key.items()]
        else:
            key_list = [key]
            cas_list = [_check_cas(cas, "unlock", key)]
        for i in range(len(key_list)):
            _key_ptr(key_list[i], &nkey, "unlock")
            if cas_list[i] == 0:
                raise _exc.ArgumentError("the CAS returned by lock() is required",
                                         key=key_list[i], operation="unlock")
        n = len(key_list)
        cdef _Slots slots = _Slots(n)
        self._enter("unlock")
        try:
            lcb.lcb_cmdunlock_create(&cmd)
            lcb.lcb_sched_enter(self._instance)
            for i in range(n):
                kp = _key_ptr(key_list[i], &nkey, "unlock")
                lcb.lcb_cmdunlock_key(cmd, kp, nkey)
                lcb.lcb_cmdunlock_cas(cmd, <uint64_t> cas_list[i])
                slots.slots[i].rc = lcb.lcb_unlock(self._instance, &slots.slots[i], cmd)
                if slots.slots[i].rc == lcb.LCB_SUCCESS:
                    slots.slots[i].rc = NO_REPLY
            lcb.lcb_sched_leave(self._instance)
            lcb.lcb_cmdunlock_destroy(cmd)
            self._wait()
        finally:
            self._leave()
        return self._bool_results(slots, key_list, multi, "unlock", False)

    # -- incr / decr ------------------------------------------------------------

    def incr(self, keys, amount=1, initial=None, ttl=0, extended=False):
        """Increment the numeric value of a key (or of each key of a list).

        ``initial`` is stored (and ``amount`` ignored) if the key does not
        exist; without it a missing key raises NotFoundError. A value that is
        not a number raises DeltaBadvalError. Returns the new value (int), a
        ``Result(value, flags, cas)`` with ``extended``, or a dict key -> value
        for a list of keys.

        Example::

            cb.incr('counter', amount=20, initial=5)
        """
        return self._counter("incr", keys, amount, initial, ttl, extended, 1)

    def decr(self, keys, amount=1, initial=None, ttl=0, extended=False):
        """Decrement the numeric value of a key; it stops at 0. Same conventions
        as :meth:`incr`."""
        return self._counter("decr", keys, amount, initial, ttl, extended, -1)

    cdef object _counter(self, str op, object keys, object amount, object initial, object ttl,
                         bint extended, int sign):
        cdef uint64_t delta = _check_u64(amount, "amount", op)
        if delta > 0x7FFFFFFFFFFFFFFF:
            raise _exc.ArgumentError(f"amount must be below 2**63, not {amount!r}", operation=op)
        cdef bint has_initial = initial is not None
        cdef uint64_t initial_value = _check_u64(initial, "initial", op) if has_initial else 0
        cdef uint32_t expiry = _check_ttl(ttl, op)
        cdef bint multi = _is_multi(keys)
        cdef list key_list = _as_key_list(keys) if multi else [keys]
        cdef Py_ssize_t i, n = len(key_list)
        cdef Py_ssize_t nkey
        cdef const char *kp
        cdef lcb.lcb_CMDCOUNTER *cmd = NULL
        cdef Slot *slot
        for key in key_list:
            _key_ptr(key, &nkey, op)
        cdef _Slots slots = _Slots(n)
        self._enter(op)
        try:
            lcb.lcb_cmdcounter_create(&cmd)
            lcb.lcb_cmdcounter_delta(cmd, <int64_t> delta * sign)
            if has_initial:
                lcb.lcb_cmdcounter_initial(cmd, initial_value)
            if expiry:
                lcb.lcb_cmdcounter_expiry(cmd, expiry)
            lcb.lcb_sched_enter(self._instance)
            for i in range(n):
                kp = _key_ptr(key_list[i], &nkey, op)
                lcb.lcb_cmdcounter_key(cmd, kp, nkey)
                slots.slots[i].rc = lcb.lcb_counter(self._instance, &slots.slots[i], cmd)
                if slots.slots[i].rc == lcb.LCB_SUCCESS:
                    slots.slots[i].rc = NO_REPLY
            lcb.lcb_sched_leave(self._instance)
            lcb.lcb_cmdcounter_destroy(cmd)
            self._wait()
        finally:
            self._leave()
        cdef dict results = {}
        first_error = None
        for i in range(n):
            slot = &slots.slots[i]
            key = key_list[i]
            if slot.rc == lcb.LCB_SUCCESS:
                value = Result(slot.counter, 0, slot.cas) if extended else slot.counter
            else:
                err = _slot_error(slot, key, op)
                if not multi:
                    raise err
                first_error = first_error or err
                value = err
            if not multi:
                return value
            results[key] = value
        if first_error is not None:
            first_error.all_results = results
            raise first_error
        return results

    # -- stats ---------------------------------------------------------------------

    def stats(self, stats=None):
        """Request server statistics from every node.

        ``stats()`` gives the default group; ``stats('memory')`` or a list of
        groups the named ones. Returns a dict stat name -> {node: value}, with
        numbers as int or float.

        Example::

            total = sum(cb.stats()['curr_items'].values())
        """
        if stats is None:
            groups = [""]
        elif isinstance(stats, str):
            groups = [stats]
        elif isinstance(stats, (list, tuple)) and all(isinstance(g, str) for g in stats):
            groups = list(stats)
        else:
            raise _exc.ArgumentError(f"give a group name or a list of names, not {stats!r}",
                                     operation="stats")
        cdef _StatsCollector collector = _StatsCollector()
        cdef lcb.lcb_CMDSTATS *cmd = NULL
        cdef lcb.lcb_STATUS rc = lcb.LCB_SUCCESS
        cdef bytes group
        self._enter("stats")
        try:
            lcb.lcb_cmdstats_create(&cmd)
            lcb.lcb_sched_enter(self._instance)
            for name in groups:
                group = name.encode("utf-8")
                lcb.lcb_cmdstats_key(cmd, group, len(group))
                rc = lcb.lcb_stats(self._instance, <void *> collector, cmd)
                if rc != lcb.LCB_SUCCESS:
                    break
            if rc == lcb.LCB_SUCCESS:
                lcb.lcb_sched_leave(self._instance)
            else:
                lcb.lcb_sched_fail(self._instance)
            lcb.lcb_cmdstats_destroy(cmd)
            if rc == lcb.LCB_SUCCESS:
                self._wait()
        finally:
            self._leave()
        _check_rc(rc, "stats")
        if collector.error is not None:
            raise collector.error
        _check_rc(collector.rc, "stats")
        return collector.stats


cdef object _slot_error(Slot *slot, object key, str op):
    if slot.rc == NO_REPLY:
        return _exc.ClientTemporaryFailError(
            "no reply was received for the key", key=key, operation=op)
    return _exc.exception_for_status(slot.rc, key=key, operation=op, cas=slot.cas)


def libcouchbase_version():
    """The version of the libcouchbase library in use, as (text, number)."""
    cdef uint32_t number = 0
    cdef const char *text = lcb.lcb_get_version(&number)
    return text.decode("ascii"), number
