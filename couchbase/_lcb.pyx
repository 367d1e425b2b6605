# cython: language_level=3, binding=False, embedsignature=True, embedsignature.format=clinic
"""The compiled core of couchbase-lcb: the operation core and its two drivers.

Every operation is written once, in _Core (_ops.pxi): its keys and values are
checked and encoded first (bad input never reaches the network) into a call
(_Slots, _slots.pxi) that carries its command and how its replies become its
result. Two drivers send calls:

- Connection (here): every key's command is scheduled between
  lcb_sched_enter/leave, then lcb_wait runs with the GIL released; threads
  sharing it pipeline their calls (leader/follower). The response callbacks
  never touch Python: they copy status, CAS, flags and value bytes into C
  slots, and Python results are built after the wait returns.
- _AsyncCore (_aio_io.pxi; couchbase.aio.AsyncConnection): libcouchbase runs
  in the asyncio loop through an IO plugin; the same callbacks fill the same
  slots, and the reply that completes a call resolves its Future.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.pythread cimport (
    NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock, PyThread_free_lock,
    PyThread_release_lock, PyThread_type_lock,
)
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyTypeObject
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
from couchbase import subdocument as _subdoc
from couchbase.durability import Durability
from couchbase.result import ReplicaResult, Result
from couchbase.result import SubdocResult as _SubdocResult


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


FMT_MASK = 0x3

include "_checks.pxi"
include "_values.pxi"
include "_slots.pxi"
include "_observe.pxi"
include "_forward.pxi"
include "_replica.pxi"
include "_logging.pxi"
include "_subdoc.pxi"
include "_ops.pxi"


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


cdef uint32_t _check_timeout(str name, object value, str op="connect") except 0:
    """A timeout in seconds as libcouchbase's microseconds (a uint32: 1 us to
    about 71.6 minutes)."""
    seconds = _exact_number(value)
    if seconds is None or not (seconds > 0) or seconds != seconds:
        raise _exc.ArgumentError(f"{name} must be a positive number of seconds, not {_exc.safe_repr(value)}",
                                 operation=op)
    us = round(seconds * 1e6) if seconds < 1e10 else MAX_TIMEOUT_US + 1
    if not 1 <= us <= MAX_TIMEOUT_US:
        raise _exc.ArgumentError(
            f"{name} must be from 0.000001 to {MAX_TIMEOUT_US / 1e6} seconds (libcouchbase counts "
            f"microseconds in 32 bits), not {_exc.safe_repr(value)}", operation=op)
    return <uint32_t> us


# The docstring opens with the constructor's signature in Argument Clinic form,
# which inspect.signature reads (tests/test_typing.py holds it to the stub).
@cython.final
@cython.no_gc_clear  # __dealloc__ still needs the calls in flight (_in_flight)
cdef class Connection(_Core):
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
    gets, exists and large raw stores go out as packets the binding builds
    (about half the CPU of libcouchbase's own path).

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

    cdef lcb.lcb_io_opt_t _io
    cdef lcb.lcb_LOGGER *_lcb_logger
    cdef PyThread_type_lock _lock
    cdef list _pending    # calls queued by threads, not yet scheduled (see _run)
    cdef list _in_flight  # calls scheduled, some replies still to come
    cdef lcb.lcbpy_WAKER _waker  # breaks the leader's wait when a call is queued
    cdef object _wake_in, _wake_out  # the waker's socket pair (None: no waker)
    cdef bint _loop_running  # the leader waits in the event loop (GIL released)
    cdef bint _loop_woken    # ... and has already been sent a wake-up byte
    cdef int _generation  # the _process_generation the instance was opened in
    cdef str _closed_reason  # why the connection is closed, if not by close()

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
        self._apply_options(options)
        self._open()

    cdef _open(self):
        cdef lcb.lcb_STATUS rc
        self._generation = _process_generation
        self._new_logger(&self._lcb_logger)
        # The select loop costs least for a blocking client; a libevent plugin,
        # if installed, would otherwise become libcouchbase's default. Its
        # writes are guarded against replays (couchbase/_wire.h).
        self._check_setup(lcb.lcbpy_create_io(&self._io))
        lcb.lcbpy_track_sockets(self._io)  # a forked child closes what it inherited
        self._set_up_instance(self._io, self._lcb_logger)
        self._start_waker()
        rc = lcb.lcb_connect(self._instance)
        if rc == lcb.LCB_SUCCESS:
            with nogil:
                lcb.lcb_wait(self._instance, lcb.LCB_WAIT_DEFAULT)
            rc = lcb.lcb_get_bootstrap_status(self._instance)
        if rc != lcb.LCB_SUCCESS:
            self._release()
            raise self._connect_error(rc)

    cdef void _abandon_setup(self) noexcept:
        self._release()

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
        if self._instance != NULL and self._in_flight and self._generation == _process_generation:
            # dropped unclosed with replies still to come (a replica read's slower copies): as
            # close() does, never destroy the instance under them, whose callbacks reach the calls
            try:
                self._drain()
            except BaseException:
                pass
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

    cdef object _execute(self, _Slots call):
        """The sync driver: send the call, wait for its replies, return its result."""
        self._run(call)
        return call.result()

    cdef int _run(self, _Slots call) except -1:
        """Have the call's command sent once per slot, and every reply received."""
        cdef str op = call.op
        if self._generation != _process_generation:
            self._follow_fork(op)
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
                if not call.done and _settled(call):  # its result is ready; replies still come
                    call.done = True
                    _wake(call)
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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self._instance == NULL else "open"
        return (f"<couchbase.libcouchbase.Connection bucket={self.bucket!r} "
                f"connection_string={self.connection_string!r} username={self.username!r} {state}>")


_own_operations(Connection)


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
