# cython: language_level=3, binding=False, embedsignature=True, embedsignature.format=clinic
"""The compiled core of couchbase-lcb: a Connection over one libcouchbase instance.

How a call runs: the keys and values are checked and encoded first (bad input
never reaches the network), every key's command is scheduled between
lcb_sched_enter/leave, then lcb_wait runs with the GIL released. The response
callbacks never touch Python: they copy status, CAS, flags and value bytes into
C slots (_slots.pxi), and Python results are built after the wait returns.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.pythread cimport (
    NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock, PyThread_free_lock,
    PyThread_release_lock, PyThread_type_lock,
)
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF, Py_XINCREF
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from couchbase cimport _lcb as lcb

import logging
import os
import pickle
import re
import socket
import warnings
from urllib.parse import quote as _quote
from urllib.parse import unquote as _unquote

from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN
from couchbase import _libcouchbase_fixes
from couchbase import _tls
from couchbase import exceptions as _exc
from couchbase._codec import json_decode as _json_decode_default
from couchbase._codec import json_encode as _json_encode_default
from couchbase.result import Result


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


FMT_MASK = 0x3

include "_checks.pxi"
include "_values.pxi"
include "_slots.pxi"
include "_forward.pxi"
include "_logging.pxi"


# Bumped in every child that os.fork() makes (multiprocessing's fork start
# method and servers that fork workers included): a Connection opened under an
# older generation belongs to the parent process (see Connection._follow_fork).
cdef int _process_generation = 0


def _forked():
    global _process_generation
    _process_generation += 1


if hasattr(os, "register_at_fork"):  # POSIX: every platform that has fork()
    os.register_at_fork(after_in_child=_forked)


cdef int _check_rc(lcb.lcb_STATUS rc, str op, object key=None) except -1:
    """The one gate from a libcouchbase status to an exception."""
    if rc != lcb.LCB_SUCCESS:
        raise _exc.exception_for_status(rc, key=key, operation=op)
    return 0


# What a successful reply turns into, per kind of operation.
cdef enum Reply:
    REPLY_CAS        # mutations: the new CAS
    REPLY_TRUE       # delete/touch/unlock: True (False: missing, quiet)
    REPLY_COUNTER    # incr/decr: the new value (a Result when extended)
    REPLY_VALUE      # get/lock: the decoded value (a Result when extended)


cdef object _reply(Slot *slot, object key, str op, Reply kind, bint quiet, bint extended, object fmt,
                   int pickles):
    """One key's result, or its exception raised."""
    cdef lcb.lcb_STATUS rc = slot.rc
    if rc == lcb.LCB_SUCCESS:
        if kind == REPLY_VALUE:
            value = _decode(slot, fmt, key, op, pickles)
            return Result(value, slot.flags, slot.cas) if extended else value
        if kind == REPLY_CAS:
            return slot.cas
        if kind == REPLY_COUNTER:
            return Result(slot.counter, 0, slot.cas) if extended else slot.counter
        return True
    if rc == lcb.LCB_ERR_DOCUMENT_NOT_FOUND and quiet:
        if kind == REPLY_VALUE:
            return Result(None, 0, 0) if extended else None
        return False
    if slot.outcome_unknown:
        raise _exc.OutcomeUnknownError(
            "the connection failed before the reply came: the change may have been applied (once), "
            "it was not sent again; read the key back before repeating it",
            error=rc, key=key, operation=op)
    if rc == NO_REPLY:
        raise _exc.ClientTemporaryFailError("no reply was received for the key", key=key, operation=op)
    raise _exc.exception_for_status(rc, key=key, operation=op, cas=slot.cas)


cdef object _collect(_Slots slots, str op, Reply kind, bint multi, bint quiet=False,
                     bint extended=False, object fmt=None, bint as_list=False, int pickles=PICKLE_LOAD):
    """The Python results of a call: one value, or per key a dict (a list for
    a plain multi-get). Every key is looked at first; then the first failure
    is raised with all per-key results (values and exceptions) attached."""
    cdef Py_ssize_t i
    cdef list keys = slots.keys
    if not multi:
        return _reply(&slots.slots[0], keys[0], op, kind, quiet, extended, fmt, pickles)
    cdef list values = []
    first_error = None
    for i in range(slots.n):
        try:
            value = _reply(&slots.slots[i], keys[i], op, kind, quiet, extended, fmt, pickles)
        except _exc.CouchbaseError as e:
            if first_error is None:
                first_error = e
            value = e
        values.append(value)
    if first_error is not None:
        first_error.all_results = dict(zip(keys, values))
        raise first_error
    return values if as_list else dict(zip(keys, values))


cdef str _host_for_connstr(str host):
    if ":" in host and not host.startswith("["):
        return f"[{host}]"  # IPv6 literal
    return host


cdef list _connstr_query(str connstr):
    """The (name, value) options of a connection string's query, URL-decoded
    as libcouchbase decodes them."""
    cdef list pairs = []
    if "?" in connstr:
        for part in connstr.split("?", 1)[1].split("&"):
            if part:
                name, _, value = part.partition("=")
                pairs.append((_unquote(name), _unquote(value)))
    return pairs


cdef set _connstr_options(str connstr):
    """The option names already present in a connection string's query."""
    return {name for name, _ in _connstr_query(connstr)}


cdef tuple _split_userinfo(str connstr):
    """(connection string without user information, user, password) for
    ``scheme://user:password@host...`` (user and password URL-decoded; None
    when absent). libcouchbase does not read user information: it would take
    it for a host name, and log it. Host and bucket names never contain '@',
    so the user information ends at the last '@' before the options."""
    scheme, sep, rest = connstr.partition("://")
    if not sep:
        scheme, rest = "", connstr
    before_options, question, options = rest.partition("?")
    if "@" not in before_options:
        return connstr, None, None
    userinfo, _, hosts = before_options.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return (scheme + sep + hosts + question + options, _unquote(user) if user else None,
            _unquote(password) if colon else None)


cdef str _check_text(str name, object value, bint secret=False, str op="connect"):
    """A str argument of connect that libcouchbase can take: encodable as
    UTF-8 and without NUL (libcouchbase would cut it there). A secret is
    never shown."""
    if not isinstance(value, str):
        raise _exc.ArgumentError(f"{name} must be a str, not {type(value).__name__}", operation=op)
    value = str.__str__(value)  # an exact str: no method of a subclass runs later
    shown = "" if secret else f" {_exc.safe_repr(value)}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _exc.ArgumentError(
            f"{name}{shown} cannot be encoded as UTF-8 (a lone surrogate at position {e.start})",
            operation=op) from None
    if "\0" in value:
        raise _exc.ArgumentError(f"{name}{shown} contains a NUL character", operation=op)
    return value


cdef object _HOST_RE = re.compile(r"[A-Za-z0-9._%:\[\]-]+")


cdef uint32_t _check_timeout(str name, object value) except 0:
    """A timeout in seconds as libcouchbase's microseconds (a uint32: 1 us to
    about 71.6 minutes)."""
    seconds = _exact_number(value)
    if seconds is None or not (seconds > 0) or seconds != seconds:
        raise _exc.ArgumentError(f"{name} must be a positive number of seconds, not {_exc.safe_repr(value)}",
                                 operation="connect")
    us = round(seconds * 1e6) if seconds < 1e10 else MAX_TIMEOUT_US + 1
    if not 1 <= us <= MAX_TIMEOUT_US:
        raise _exc.ArgumentError(
            f"{name} must be from 0.000001 to {MAX_TIMEOUT_US / 1e6} seconds (libcouchbase counts "
            f"microseconds in 32 bits), not {_exc.safe_repr(value)}", operation="connect")
    return <uint32_t> us


# The docstring opens with the constructor's signature in Argument Clinic form,
# which inspect.signature reads (tests/test_typing.py holds it to the stub).
@cython.final
cdef class Connection:
    """Connection(host='localhost', port=8091, username=None, password=None, bucket=None,
    quiet=False, *, connection_string=None, timeout=2.5, connect_timeout=10.0, default_format=0,
    enable_tracing=False, enable_operation_metrics=False, unpickle=True, tls_ca_file=None,
    tls_cert_file=None, tls_key_file=None, tls_verify=True)
--

    A connection to one Couchbase bucket.

    Normally made with :meth:`couchbase.Couchbase.connect`; takes the same
    arguments: ``Connection(host='localhost', port=8091, username=None,
    password=None, bucket=None, quiet=False)``. It bootstraps over HTTP on the
    management port, like the 0.9 client. Keyword-only options:

    - ``connection_string``: a full libcouchbase connection string
      (``couchbase://h1,h2/bucket?opt=val``); host and port are then ignored.
      It may carry the credentials, as ``couchbase://user:password@h1/...``
      (URL-encoded; the arguments win when given) or as a ``password=``
      option (used when ``password`` is None or ''). The
      ``connection_string`` attribute shows it with every password replaced
      by ``***``; no password, however given, appears in an exception, a repr
      or a libcouchbase log line.
    - ``timeout``: the operation timeout in seconds (default 2.5).
    - ``connect_timeout``: the bootstrap timeout in seconds (default 10).
      Both are finite numbers from 0.000001 to 4294.967295 (libcouchbase
      keeps microseconds in 32 bits); anything else raises ArgumentError, as
      does a time option of ``connection_string`` beyond that range.
    - ``default_format``: FMT_JSON (default), FMT_PICKLE or FMT_PLAIN.
      FMT_JSON refuses NaN and Infinity (ValueFormatError): they are not JSON.
    - ``unpickle``: what reading does with a value stored as a pickle (format
      flags FMT_PICKLE, or the common "private" flags other SDKs write).
      ``True`` (default, as the 0.9 client): unpickle it. Unpickling runs
      code chosen by whoever wrote the value, so this is safe only when
      everyone who can write to the bucket is trusted. ``False``: raise
      ValueFormatError for that key (naming it; a multi-get still returns
      the other keys in ``all_results``). ``'bytes'``: return the pickled
      bytes undecoded. ``get(key, format=FMT_PLAIN)`` always returns the
      stored bytes; ``format=FMT_PICKLE`` follows this option too.
    - TLS, with a ``couchbases://`` ``connection_string`` only (couchbase/_tls.py):
      ``tls_ca_file``, the PEM of the CA that issued the cluster's certificates
      (default: the system's trusted CAs); ``tls_cert_file`` and ``tls_key_file``,
      a client certificate and its key, which are then the credentials;
      ``tls_verify=False`` accepts any certificate, with a warning logged on every
      connect. Verified by default: the certificate must chain to a trusted CA,
      be in date and name the host connected to; a failure raises ConnectError
      saying which check failed and what to do.
    - ``enable_tracing``, ``enable_operation_metrics``: libcouchbase's threshold
      tracer and operation metrics; off by default because they cost more CPU
      per operation than the rest of the client.

    Two libcouchbase settings differ from its defaults (a connection string
    option overrides either): ``enable_collections=false`` and
    ``compression=off``. With both, and tracing and operation metrics off,
    gets and large raw stores go out as packets the binding builds (about half
    the CPU of libcouchbase's own path).

    Exactly once: a request whose replay could change data or its result (every
    mutation: set, add, replace, append, prepend, incr, decr, delete, anything
    with a CAS; lock; unlock) is never sent twice. When its connection fails
    before its reply came, it raises
    :class:`~couchbase.exceptions.OutcomeUnknownError`: it was applied once or
    not at all, so read the key back before repeating it (in a multi-key call,
    each such key's entry in ``all_results`` is that error). Reads (get,
    get-and-touch, touch, stats) are sent again as libcouchbase sees fit, and
    so are requests the server answered without applying them
    (NOT_MY_VBUCKET, temporary failures). A timeout (TimeoutError) after a
    mutation was sent leaves its outcome unknown as well.

    One Connection may be shared by threads: their calls are pipelined over its
    sockets, and the GIL is released while libcouchbase waits on the network.

    It survives ``os.fork()`` (forking servers, multiprocessing's fork start
    method): the child's first call on an inherited open Connection opens a
    connection of the child's own, with the same settings and credentials,
    and never touches the parent's sockets, locks or calls in flight, so
    neither process sees the other's replies and the parent is unaffected.
    If that reopening fails, the call raises ConnectError saying so, and the
    Connection stays closed in the child. The child closes its copies of the
    parent's sockets (the parent's stay open) when it first uses or closes
    the Connection.
    """

    cdef lcb.lcb_INSTANCE *_instance
    cdef lcb.lcb_io_opt_t _io
    cdef lcb.lcb_LOGGER *_lcb_logger
    cdef PyThread_type_lock _lock
    cdef int _default_format
    cdef list _pending    # calls queued by threads, not yet scheduled (see _run)
    cdef list _in_flight  # calls scheduled, some replies still to come
    cdef lcb.lcbpy_WAKER _waker  # breaks the leader's wait when a call is queued
    cdef object _wake_in, _wake_out  # the waker's socket pair (None: no waker)
    cdef bint _loop_running  # the leader waits in the event loop (GIL released)
    cdef bint _loop_woken    # ... and has already been sent a wake-up byte
    cdef bint _forward_large  # large stores skip libcouchbase's copies (_forward.pxi)
    cdef bint _forward_gets   # plain gets skip libcouchbase's command layer (_forward.pxi)
    cdef Forward *_forwards   # large stores' packets not yet freed (_forward.pxi)
    cdef int _generation  # the _process_generation the instance was opened in
    # what reopening in a forked child takes; never shown (see _follow_fork)
    cdef str _password
    cdef dict _settings
    cdef str _closed_reason  # why the connection is closed, if not by close()
    cdef readonly object host
    cdef readonly object port
    cdef readonly object bucket
    cdef readonly object username
    cdef readonly str connection_string  # redacted: no password
    cdef str _connstr  # what libcouchbase is given
    cdef tuple _secrets  # secret_forms of every password given; never changed once set
    cdef int _pickles  # PickleMode: what get does with a value stored as a pickle
    cdef public bint quiet

    def __cinit__(self, *args, **kwargs):
        self._instance = NULL
        self._io = NULL
        self._lcb_logger = NULL
        self._secrets = ()
        self._pending = []
        self._in_flight = []
        self._wake_in = self._wake_out = None
        self._generation = _process_generation
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __init__(self, host="localhost", port=8091, username=None, password=None, bucket=None,
                 quiet=False, *, connection_string=None, timeout=2.5, connect_timeout=10.0,
                 default_format=FMT_JSON, enable_tracing=False, enable_operation_metrics=False,
                 unpickle=True, tls_ca_file=None, tls_cert_file=None, tls_key_file=None, tls_verify=True):
        if self._instance != NULL:
            raise _exc.ArgumentError("Connection is already initialised")
        options = _connect_options(host, port, username, password, bucket, quiet,
                                   connection_string=connection_string, timeout=timeout,
                                   connect_timeout=connect_timeout, default_format=default_format,
                                   enable_tracing=enable_tracing,
                                   enable_operation_metrics=enable_operation_metrics, unpickle=unpickle,
                                   tls_ca_file=tls_ca_file, tls_cert_file=tls_cert_file,
                                   tls_key_file=tls_key_file, tls_verify=tls_verify)
        self._default_format = options["default_format"]
        self._pickles = options["pickles"]
        self.quiet = options["quiet"]
        self._secrets = options["secrets"]
        self.bucket = options["bucket"]
        self.username = options["username"]
        self.host = options["host"]
        self.port = options["port"]
        self._connstr = options["connstr"]
        self.connection_string = options["connection_string"]
        self._password = options["password"]
        self._settings = options["settings"]
        self._open()

    cdef _open(self):
        cdef lcb.lcb_CREATEOPTS *options = NULL
        cdef lcb.lcb_STATUS rc
        cdef bytes connstr = self._connstr.encode("utf-8")
        cdef bytes user = self.username.encode("utf-8")
        cdef bytes pw = self._password.encode("utf-8")
        cdef bytes bucket = self.bucket.encode("utf-8")

        self._generation = _process_generation

        _libcouchbase_fixes.require(libcouchbase_changeset(), libcouchbase_version()[0])
        _update_log_severity()
        # the log callback reads the secrets to redact through the logger's cookie
        self._check_setup(lcb.lcb_logger_create(&self._lcb_logger, <void *> self._secrets))
        self._check_setup(lcb.lcb_logger_callback(self._lcb_logger, _on_log))
        # The select loop costs least for a blocking client; a libevent plugin,
        # if installed, would otherwise become libcouchbase's default. Its
        # writes are guarded against replays (couchbase/_wire.h).
        self._check_setup(lcb.lcbpy_create_io(&self._io))
        lcb.lcbpy_track_sockets(self._io)  # a forked child closes what it inherited
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

        given = _connstr_options(self._connstr)
        for name, value in self._settings.items():
            if name not in given:
                self._check_setup(lcb.lcb_cntl_string(self._instance, name.encode(), value.encode()))

        # never replay a request that may have been applied (_may_be_applied, _slots.pxi)
        self._check_setup(lcb.lcb_retry_strategy(self._instance, _retry_strategy))
        self._forward_large, self._forward_gets = self._may_forward()
        self._start_waker()
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_GET, _on_get)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_STORE, _on_store)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_REMOVE, _on_remove)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_COUNTER, _on_counter)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_TOUCH, _on_touch)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_UNLOCK, _on_unlock)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_STATS, <lcb.lcb_RESPCALLBACK> _on_stats)
        lcb.lcb_set_pktfwd_callback(self._instance, _on_forwarded)
        lcb.lcb_set_pktflushed_callback(self._instance, _on_forward_flushed)

        rc = lcb.lcb_connect(self._instance)
        if rc == lcb.LCB_SUCCESS:
            with nogil:
                lcb.lcb_wait(self._instance, lcb.LCB_WAIT_DEFAULT)
            rc = lcb.lcb_get_bootstrap_status(self._instance)
        if rc != lcb.LCB_SUCCESS:
            self._release()
            raise self._connect_error(rc)

    cdef tuple _may_forward(self):
        """Whether large stores, and plain gets, may go out as packets built
        here (see _forward.pxi): only without collections (no collection ID
        in the key), without tracing or operation metrics (libcouchbase times
        only its own commands), where libcouchbase would send the same bytes
        (large stores: nothing compressed going out) and replies come
        uncompressed (gets: no compression negotiated)."""
        cdef int compression = self._setting(lcb.LCB_CNTL_COMPRESSION_OPTS)
        if (self._setting(lcb.LCB_CNTL_ENABLE_COLLECTIONS) != 0 or compression < 0
                or self._setting(lcb.LCB_CNTL_ENABLE_TRACING) != 0
                or self._setting(lcb.LCB_CNTL_ENABLE_OP_METRICS) != 0):
            return False, False
        return not (compression & lcb.LCB_COMPRESS_OUT), compression == 0

    cdef int _setting(self, int cntl) noexcept:
        """An int setting of the instance, -1 if it cannot be read."""
        cdef int value = 0
        if lcb.lcb_cntl(self._instance, lcb.LCB_CNTL_GET, cntl, &value) != lcb.LCB_SUCCESS:
            return -1
        return value

    cdef int _check_setup(self, lcb.lcb_STATUS rc) except -1:
        if rc != lcb.LCB_SUCCESS:
            self._release()
            raise self._connect_error(rc)
        return 0

    cdef object _connect_error(self, lcb.lcb_STATUS rc):
        """Bootstrap failures, in the classes the 0.9 client raised."""
        return _bootstrap_error(rc, self.bucket, self.host, self.port, self.connection_string,
                                self._secrets)

    cdef int _start_waker(self) except -1:
        """Watch one end of a socket pair in the instance's event loop (see
        _run); without it, calls queued meanwhile go out when a reply arrives."""
        wake_in, wake_out = socket.socketpair()
        wake_in.setblocking(False)
        wake_out.setblocking(False)
        if lcb.lcbpy_waker_start(&self._waker, self._io, self._instance, wake_in.fileno()) == 0:
            self._wake_in, self._wake_out = wake_in, wake_out
        else:
            lcb.lcbpy_waker_stop(&self._waker)
            wake_in.close()
            wake_out.close()
        return 0

    cdef void _release(self) noexcept:
        """Destroy the libcouchbase instance and what it uses (one inherited
        from the parent process is only let go of: see _follow_fork)."""
        if self._generation != _process_generation:
            self._let_go_of_parents()
            return
        lcb.lcbpy_waker_stop(&self._waker)
        self._close_waker_sockets()
        if self._instance != NULL:
            lcb.lcb_destroy(self._instance)
            self._instance = NULL
        _drop_forwards(&self._forwards)
        if self._io != NULL:
            lcb.lcb_destroy_io_ops(self._io)
            self._io = NULL
        if self._lcb_logger != NULL:
            lcb.lcb_logger_destroy(self._lcb_logger)
            self._lcb_logger = NULL

    cdef void _close_waker_sockets(self) noexcept:
        if self._wake_in is not None:
            try:
                self._wake_in.close()
                self._wake_out.close()
            except BaseException:
                pass
            self._wake_in = self._wake_out = None

    def __dealloc__(self):
        self._release()
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    def __del__(self):
        if self._instance != NULL:
            warnings.warn(f"unclosed {self!r}; call close() or use 'with'", ResourceWarning,
                          source=self)

    # -- threads: one libcouchbase instance, used by one thread at a time -----
    #
    # A call queues its slots in _pending. If the instance lock is free, its
    # thread becomes the leader: it sends every queued call (its own and those
    # other threads queued meanwhile) and runs the event loop until one of the
    # calls in flight has all its replies (the callbacks break the loop out
    # then), hands finished calls back to their sleeping threads, sends what
    # was queued meanwhile, and goes on until its own call is done. Then it
    # wakes one of the threads still waiting to lead the rest. Threads sharing
    # a Connection so pipeline their calls over its sockets instead of queueing
    # behind each other's round trips.
    #
    # Queueing and handing over happen with the GIL held and without releasing
    # it in between, which makes each of them atomic with respect to the other.

    cdef int _acquire(self) except -1:
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        return 0

    cdef void _release_lead(self) noexcept:
        """Wake a thread whose call is queued or in flight to lead next (it
        sleeps on its wake lock, having found the lock taken), then free the
        instance lock."""
        if self._pending:
            _wake(<_Slots> self._pending[0])
        elif self._in_flight:
            _wake(<_Slots> self._in_flight[0])
        PyThread_release_lock(self._lock)

    cdef int _check_open(self, str op) except -1:
        if self._instance == NULL:
            raise _exc.ConnectError(
                f"the connection to bucket {self.bucket!r} is closed"
                f"{self._closed_reason or ''}; open a new Connection",
                operation=op)
        return 0

    # -- fork: a Connection inherited by a child process ----------------------
    #
    # Everything the parent's Connection holds belongs to the parent: its
    # libcouchbase instance (sockets, packets in flight, the event loop state
    # of a thread that was waiting in it), its lock and its queues (threads
    # that do not exist in the child may have held the one and filled the
    # others). The child lets go of all of it without touching it: destroying
    # the instance would write to or shut down sockets the parent still uses
    # (a TLS close alert, say), and libcouchbase 3.3.4 crashes destroying an
    # instance with forwarded packets in flight. The child closes only its
    # copies of the instance's socket descriptors (lcbpy_close_sockets_of; a
    # descriptor is shared with the parent's until both closed it, so the
    # parent's sockets stay open). What stays behind is the instance's memory,
    # shared with the parent until either writes to it, never freed (so its
    # address is never reused): once per fork per Connection. The child then
    # opens an instance of its own with the same settings and credentials.

    cdef int _follow_fork(self, str op) except -1:
        """First use of the Connection in a forked child: let go of the
        parent's instance, and open the child's own if the parent's was open."""
        cdef PyThread_type_lock lock = PyThread_allocate_lock()
        if lock == NULL:
            raise MemoryError()
        cdef bint reopen = self._instance != NULL and op != "close"
        # Until the reopening is done, the child's other threads queue their
        # calls behind the fresh lock, held here (nothing above or here lets
        # another thread run in between).
        PyThread_acquire_lock(lock, NOWAIT_LOCK)
        self._lock = lock  # the parent's may be held by a thread not in this process: left as it is
        self._let_go_of_parents()
        try:
            if reopen:
                try:
                    self._open()
                except _exc.CouchbaseError as e:
                    self._closed_reason = f" (it could not be reopened after os.fork(): {e.msg})"
                    raise _exc.ConnectError(
                        f"could not reopen the connection to bucket {self.bucket!r} in this process "
                        f"after os.fork(): {e.msg}", error=e.error, operation=op) from None
        finally:
            self._release_lead()
        return 0

    cdef void _let_go_of_parents(self) noexcept:
        """Forget the parent's instance, calls and waker without touching
        them (see above); the Connection is then closed in this process."""
        cdef _Slots call
        self._generation = _process_generation
        for call in self._pending:
            call.wake = NULL  # a lock a thread of the parent sleeps on: never freed here
        for call in self._in_flight:
            call.wake = NULL
        self._pending = []
        self._in_flight = []
        self._loop_running = self._loop_woken = False
        self._instance = NULL
        if self._io != NULL:
            lcb.lcbpy_close_sockets_of(self._io)  # this process's descriptors only, as below
            self._io = NULL
        self._lcb_logger = NULL
        self._forwards = NULL
        self._waker.event = NULL
        self._close_waker_sockets()  # this process's descriptors only: the parent keeps its own

    cdef int _run(self, Command *cmd, _Slots call, str op) except -1:
        """Have cmd sent once per slot of call, and every reply received."""
        if self._generation != _process_generation:
            self._follow_fork(op)
        call.cmd = <void *> cmd
        call.kind = _command_kind(cmd)
        self._pending.append(call)
        if self._loop_running and not self._loop_woken and self._wake_out is not None:
            self._loop_woken = True
            try:
                self._wake_out.send(b"\0")
            except OSError:
                pass  # full: a wake-up is already on its way
        while not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            # Another thread leads: it sends this call too, and wakes this
            # thread when the call is done or when it lets go of the lead.
            # (The call may be done already: sending the wake-up byte above
            # lets other threads run.)
            if call.done:
                return 0
            _sleep_until_woken(call)
        try:
            self._check_open(op)
            while not call.done:
                self._send_pending()
                self._pump()
        except BaseException:
            if call in self._pending:
                self._pending.remove(call)
            raise
        finally:
            self._release_lead()
        return 0

    cdef int _send_pending(self) except -1:
        """Schedule every queued call in one flush; they are then in flight."""
        cdef _Slots call
        if not self._pending:
            return 0
        batch, self._pending = self._pending, []
        lcb.lcb_sched_enter(self._instance)
        for call in batch:
            _schedule_call(self._instance, call, &self._forwards)
        lcb.lcb_sched_leave(self._instance)
        self._in_flight.extend(batch)
        return 0

    cdef int _pump(self) except -1:
        """Run the event loop (GIL released) until a call in flight has all
        its replies, then mark the finished calls done and wake their threads."""
        cdef _Slots call
        cdef bint waiting = False
        for call in self._in_flight:
            if call.unanswered > 0:
                waiting = True
                break
        if waiting:
            self._loop_running = True
            with nogil:
                lcb.lcb_wait(self._instance, lcb.LCB_WAIT_DEFAULT)
            self._loop_running = self._loop_woken = False
        still = []
        for call in self._in_flight:
            if call.unanswered > 0:
                still.append(call)
            else:
                call.done = True
                _wake(call)
        self._in_flight = still
        return 0

    cdef int _drain(self) except -1:
        """Finish every call in flight (before close)."""
        while self._in_flight:
            self._pump()
        return 0

    # -- lifecycle ------------------------------------------------------------

    def close(self):
        """Close the connection. Idempotent; later calls raise ConnectError."""
        if self._generation != _process_generation:
            self._follow_fork("close")  # in a forked child: the parent's connection stays open
        self._acquire()
        try:
            if self._instance != NULL:
                self._drain()  # never destroy the instance under calls in flight
            self._release()
        finally:
            self._release_lead()

    @property
    def _replays_stopped(self):
        """How many requests libcouchbase tried to send a second time after
        they were written and never answered, and the IO plugin stopped (see
        couchbase/_wire.h): for tests."""
        return (<lcb.lcbpy_IO *> self._io).replays_stopped if self._io != NULL else 0

    @property
    def closed(self):
        """True once close() was called."""
        return self._instance == NULL

    @property
    def unpickle(self):
        """What reading does with a pickled value: True (unpickle), False
        (raise ValueFormatError) or 'bytes' (return the pickled bytes)."""
        return {PICKLE_LOAD: True, PICKLE_REFUSE: False, PICKLE_BYTES: "bytes"}[self._pickles]

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
            format = _check_format(format, "get")
        cdef bint extended_result = _check_flag(extended, "extended", "get")
        cdef bint quiet_miss = self.quiet if quiet is None else _check_flag(quiet, "quiet", "get")
        cdef bint multi = _is_multi(keys)
        cdef _Slots slots = _new_slots(_key_list(keys, "get") if multi else [keys], "get")
        if ttl is None:
            self._get(slots, "get", False, 0, 0)
        else:
            self._get(slots, "get", True, _check_ttl(ttl, "get"), 0)
        return _collect(slots, "get", REPLY_VALUE, multi, quiet_miss, extended_result, format,
                        not extended_result, self._pickles)

    def lock(self, keys, ttl):
        """Get and lock one or several keys for ``ttl`` seconds (1 to 30).

        Returns ``Result(value, flags, cas)`` (a dict key -> Result for a list
        of keys); the CAS is what :meth:`unlock` or a CAS-checked mutation needs
        while the lock holds. Other mutations fail with a locked error until
        then.

        Example::

            result = cb.lock('key', ttl=10)
            cb.unlock('key', result.cas)
        """
        cdef uint32_t lock_time = _check_ttl(ttl, "lock")
        if lock_time == 0 or lock_time > 30:
            raise _exc.ArgumentError(f"ttl must be from 1 to 30 seconds, not {ttl!r}", operation="lock")
        cdef bint multi = _is_multi(keys)
        cdef _Slots slots = _new_slots(_key_list(keys, "lock") if multi else [keys], "lock")
        self._get(slots, "lock", False, 0, lock_time)
        return _collect(slots, "lock", REPLY_VALUE, multi, False, True, None, False, self._pickles)

    cdef int _get(self, _Slots slots, str op, bint touch, uint32_t expiry, uint32_t lock_time) except -1:
        slots.forward_get = self._forward_gets and not touch and not lock_time
        if not lock_time:  # a lock's replay would find the key locked
            slots.set_replay_safe()
        cdef lcb.lcb_CMDGET *cmd = NULL
        _check_rc(lcb.lcb_cmdget_create(&cmd), op)
        try:
            if touch:
                _check_rc(lcb.lcb_cmdget_expiry(cmd, expiry), op)
            if lock_time:
                _check_rc(lcb.lcb_cmdget_locktime(cmd, lock_time), op)
            self._run(cmd, slots, op)
        finally:
            _destroy(cmd)
        return 0

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
        cdef list items
        if multi:
            if cas_value:
                raise _exc.ArgumentError("a CAS cannot be given with a dict of several keys", operation=op)
            if value is not None:
                raise _exc.ArgumentError("with a dict of key -> value, give no separate value", operation=op)
            items = _dict_items(key, op)
        else:
            items = [(key, value)]
        cdef _Slots slots = _new_slots([k for k, _ in items], op)
        # every value is encoded before anything is sent
        slots.set_data([_encode(v, fmt, op, k) for k, v in items])
        if cas_value and operation == lcb.LCB_STORE_UPSERT:
            # libcouchbase refuses a CAS on an upsert; a CAS-checked set is a
            # replace on the wire (the key must exist for its CAS to match).
            operation = lcb.LCB_STORE_REPLACE
        cdef bint concat = operation == lcb.LCB_STORE_APPEND or operation == lcb.LCB_STORE_PREPEND
        if concat and expiry:
            raise _exc.ArgumentError(f"{op} cannot change the expiry (the server keeps it); use touch()",
                                     key=None if multi else key, operation=op)
        cdef uint8_t datatype = DATATYPE_JSON if fmt == _FMT_JSON and not concat else 0
        # large raw values are sent without copies where that sends the same bytes
        slots.store.forward = self._forward_large and datatype == 0
        slots.store.opcode = _store_opcode(operation)
        slots.store.flags = <uint32_t> fmt
        slots.store.expiry = expiry
        slots.store.cas = cas_value
        cdef lcb.lcb_CMDSTORE *cmd = NULL
        cdef lcb.lcb_CMDSTORE *empty = NULL
        try:
            _check_rc(_store_command(&cmd, operation, &slots.store, datatype), op)
            if slots.has_empty_value():
                # lcb_cmdstore_value ignores an empty value, which would leave the
                # previous key's value in a shared command: empty ones get their own
                _check_rc(_store_command(&empty, operation, &slots.store, datatype), op)
                slots.empty_store = empty
            self._run(cmd, slots, op)
        finally:
            if cmd != NULL:
                _destroy(cmd)
            if empty != NULL:
                _destroy(empty)
        return _collect(slots, op, REPLY_CAS, multi)

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
        cdef bint quiet_miss = self.quiet if quiet is None else _check_flag(quiet, "quiet", "delete")
        cdef bint multi = _is_multi(keys)
        cdef list cas_values
        cdef list key_list
        if isinstance(keys, dict):
            if _check_cas(cas, "delete"):
                raise _exc.ArgumentError("give CAS values in the dict, not as cas=", operation="delete")
            pairs = _dict_items(keys, "delete")
            key_list = [k for k, _ in pairs]
            cas_values = [_check_cas(c, "delete", k) for k, c in pairs]
        elif multi:
            if _check_cas(cas, "delete"):
                raise _exc.ArgumentError("a CAS cannot be given with a list of keys; "
                                         "use a dict of key -> CAS",
                                         operation="delete")
            key_list = _key_list(keys, "delete")
            cas_values = [0] * len(key_list)
        else:
            key_list = [keys]
            cas_values = [_check_cas(cas, "delete", keys)]
        cdef _Slots slots = _new_slots(key_list, "delete")
        slots.set_cas(cas_values)
        cdef lcb.lcb_CMDREMOVE *cmd = NULL
        _check_rc(lcb.lcb_cmdremove_create(&cmd), "delete")
        try:
            self._run(cmd, slots, "delete")
        finally:
            _destroy(cmd)
        return _collect(slots, "delete", REPLY_TRUE, multi, quiet_miss)

    # -- touch / unlock -----------------------------------------------------------

    def touch(self, keys, ttl):
        """Set a new expiry (``ttl`` seconds; 0 removes it) on one key or a list
        of keys, without reading them. Returns True, or a dict key -> True.

        Example::

            cb.touch('session', ttl=1800)
        """
        cdef uint32_t expiry = _check_ttl(ttl, "touch")
        cdef bint multi = _is_multi(keys)
        cdef _Slots slots = _new_slots(_key_list(keys, "touch") if multi else [keys], "touch")
        slots.set_replay_safe()  # a replay sets the same expiry again
        cdef lcb.lcb_CMDTOUCH *cmd = NULL
        _check_rc(lcb.lcb_cmdtouch_create(&cmd), "touch")
        try:
            _check_rc(lcb.lcb_cmdtouch_expiry(cmd, expiry), "touch")
            self._run(cmd, slots, "touch")
        finally:
            _destroy(cmd)
        return _collect(slots, "touch", REPLY_TRUE, multi)

    def unlock(self, key, cas=None):
        """Release a lock taken with :meth:`lock`, given the CAS it returned.
        ``unlock({'k1': cas1, 'k2': cas2})`` unlocks several. Returns True, or
        a dict key -> True.

        Example::

            result = cb.lock('key', ttl=10)
            cb.unlock('key', result.cas)
        """
        cdef bint multi = isinstance(key, dict)
        cdef list pairs = _dict_items(key, "unlock") if multi else [(key, cas)]
        cdef list cas_values = []
        for k, c in pairs:
            if _check_cas(c, "unlock", k) == 0:
                raise _exc.ArgumentError("the CAS returned by lock() is required", key=k, operation="unlock")
            cas_values.append(_check_cas(c, "unlock", k))
        cdef _Slots slots = _new_slots([k for k, _ in pairs], "unlock")
        slots.set_cas(cas_values)
        cdef lcb.lcb_CMDUNLOCK *cmd = NULL
        _check_rc(lcb.lcb_cmdunlock_create(&cmd), "unlock")
        try:
            self._run(cmd, slots, "unlock")
        finally:
            _destroy(cmd)
        return _collect(slots, "unlock", REPLY_TRUE, multi)

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
        as :meth:`incr`.

        Example::

            cb.decr('stock', amount=2)
        """
        return self._counter("decr", keys, amount, initial, ttl, extended, -1)

    cdef object _counter(self, str op, object keys, object amount, object initial, object ttl,
                         object extended, int sign):
        cdef bint extended_result = _check_flag(extended, "extended", op)
        cdef uint64_t delta = _check_u64(amount, "amount", op)
        if delta > 0x7FFFFFFFFFFFFFFF:
            raise _exc.ArgumentError(f"amount must be below 2**63, not {amount!r}", operation=op)
        cdef uint64_t initial_value = _check_u64(initial, "initial", op) if initial is not None else 0
        cdef uint32_t expiry = _check_ttl(ttl, op)
        if expiry and initial is None:
            # the server applies a counter's expiry only when it creates it
            raise _exc.ArgumentError("a ttl takes effect only with initial= (when the counter is created)",
                                     operation=op)
        cdef bint multi = _is_multi(keys)
        cdef _Slots slots = _new_slots(_key_list(keys, op) if multi else [keys], op)
        cdef lcb.lcb_CMDCOUNTER *cmd = NULL
        _check_rc(lcb.lcb_cmdcounter_create(&cmd), op)
        try:
            _check_rc(lcb.lcb_cmdcounter_delta(cmd, <int64_t> delta * sign), op)
            if initial is not None:
                _check_rc(lcb.lcb_cmdcounter_initial(cmd, initial_value), op)
                _check_rc(lcb.lcb_cmdcounter_expiry(cmd, expiry), op)
            self._run(cmd, slots, op)
        finally:
            _destroy(cmd)
        return _collect(slots, op, REPLY_COUNTER, multi, False, extended_result)

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
            names = [""]
        elif isinstance(stats, str):
            names = [stats]
        elif isinstance(stats, (list, tuple)):
            names = _key_list(stats, "stats")
        else:
            raise _exc.ArgumentError(f"give a group name or a list of names, not {_exc.safe_repr(stats)}",
                                     operation="stats")
        cdef list groups = [_check_text("a stats group", name, False, "stats").encode("utf-8")
                            for name in names]
        cdef _Slots slots = _new_stats_slots(groups)
        cdef lcb.lcb_CMDSTATS *cmd = NULL
        _check_rc(lcb.lcb_cmdstats_create(&cmd), "stats")
        try:
            self._run(cmd, slots, "stats")
        finally:
            _destroy(cmd)
        return _stats_result(slots)


def libcouchbase_version():
    """The version of the libcouchbase library in use, as (text, number)."""
    cdef uint32_t number = 0
    cdef const char *text = lcb.lcb_get_version(&number)
    return text.decode("ascii"), number


def libcouchbase_changeset():
    """The changeset string of the libcouchbase library in use; a build by
    scripts/install-libcouchbase names the patches it carries there."""
    cdef char *text = NULL
    _check_rc(lcb.lcb_cntl(NULL, lcb.LCB_CNTL_GET, lcb.LCB_CNTL_CHANGESET, &text), "libcouchbase_changeset")
    return text.decode("ascii", "replace") if text != NULL else ""


include "_aio_io.pxi"
