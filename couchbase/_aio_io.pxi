# Included by _lcb.pyx: libcouchbase driven by a running asyncio event loop.
#
# _LoopIO is a libcouchbase IO plugin of the event model (v2 get_procs, BSD
# sockets by lcb_iops_wire_bsd_impl2) whose watches and timers are the loop's
# own add_reader/add_writer and call_at. _AsyncCore drives an instance with it:
# no lcb_wait ever runs; libcouchbase is entered only from the loop's thread,
# with the GIL held, and its callbacks resolve each operation's Future.
#
# What keeps the number of loop calls per operation low (each is a few µs):
# - the reader of a socket stays registered while the socket lives; when it
#   fires while libcouchbase wants nothing, it is removed then;
# - libcouchbase's event model only ever writes when told a socket is
#   writable: a write watch is answered at once (a "write-ready" call after
#   libcouchbase returns), and a real add_writer is made only when the write
#   found the socket full (the handler asked to write again);
# - one loop timer per plugin, re-armed only for an earlier deadline;
# - the operations queued in one loop iteration are scheduled between one
#   lcb_sched_enter/leave from one call_soon callback (one flush).

from cpython.ref cimport Py_DECREF

import heapq as _heapq
import threading as _threading
from asyncio import _get_running_loop


cdef lcb.lcb_ioE_close_fn _bsd_close = NULL  # lcb_iops_wire_bsd_impl2's close


@cython.final
cdef class _LoopEvent:
    """One libcouchbase event: a socket and what libcouchbase waits for on it."""
    cdef _LoopIO io
    cdef int fd               # the socket last watched (-1: none, or closed)
    cdef short flags          # what libcouchbase wants now (LCB_READ/WRITE_EVENT)
    cdef void *uarg
    cdef lcb.lcb_ioE_callback handler
    cdef bint reading         # a reader is registered with the loop for fd
    cdef bint writing         # a writer is registered with the loop for fd
    cdef bint write_queued    # in io.write_ready: will be told "writable" soon
    cdef bint in_write        # its handler runs for a write-ready call
    cdef bint destroyed

    def _readable(self):
        self.io.event_ready(self, lcb.LCB_READ_EVENT)

    def _writable(self):
        self.io.event_ready(self, lcb.LCB_WRITE_EVENT)


@cython.final
cdef class _LoopTimer:
    cdef double deadline      # in loop.time()
    cdef void *uarg
    cdef lcb.lcb_ioE_callback handler
    cdef bint armed
    cdef unsigned long generation  # which heap entry is current


@cython.final
cdef class _LoopIO:
    """The IO plugin's state: the loop, what is registered with it, the
    timers, and the first exception a proc caught (procs never raise into C)."""
    cdef lcb.lcb_io_opt_t iops
    cdef object loop
    cdef dict readers         # fd -> _LoopEvent registered as its reader
    cdef dict writers         # fd -> _LoopEvent registered as its writer
    cdef list write_ready     # events told "writable" once libcouchbase returns
    cdef int depth            # nesting of calls into libcouchbase
    cdef bint writes_scheduled
    cdef list timers          # heap of (deadline, generation, _LoopTimer)
    cdef Py_ssize_t compact_at  # the heap's length that triggers dropping stale entries
    cdef unsigned long generations
    cdef object timer_handle  # the loop's TimerHandle for the earliest deadline
    cdef double timer_deadline
    cdef object error         # the first exception a proc caught
    cdef public unsigned long loop_calls  # calls made to the loop (measured by tests)
    cdef bint released        # libcouchbase called the destructor
    # the instance's logger: libcouchbase may log until it is done with the
    # plugin, so it is freed with it
    cdef lcb.lcb_LOGGER *logger
    cdef tuple secrets        # the logger's cookie

    def __cinit__(self, loop):
        self.loop = loop
        self.readers = {}
        self.writers = {}
        self.write_ready = []
        self.timers = []
        self.compact_at = 64
        self.timer_deadline = float("inf")
        self.iops = lcb.lcbpy_loop_iops_new(<void *> self, _loop_get_procs, _loop_iops_destroyed)
        if self.iops == NULL:
            raise MemoryError()
        Py_INCREF(self)  # the iops' reference, dropped by its destructor

    cdef void failed(self, BaseException e) noexcept:
        """Keep the first exception a proc caught and log it: libcouchbase
        then sees the call fail or its events never fire, and times out."""
        if self.error is None:
            self.error = e
        try:
            _logger.error("couchbase asyncio IO: %r", e)
        except BaseException:
            pass

    # -- entering libcouchbase -------------------------------------------------

    cdef inline void enter(self) noexcept:
        self.depth += 1

    cdef void leave(self) noexcept:
        """Back from libcouchbase: tell the sockets it wants to write to that
        they are writable (it writes then; a full socket gets a real writer)."""
        cdef _LoopEvent ev
        if self.depth > 1:
            self.depth -= 1
            return
        while self.write_ready:
            ev = <_LoopEvent> self.write_ready.pop()
            ev.write_queued = False
            if ev.destroyed or ev.fd < 0 or not (ev.flags & lcb.LCB_WRITE_EVENT) or ev.writing:
                continue
            ev.in_write = True
            ev.handler(ev.fd, lcb.LCB_WRITE_EVENT, ev.uarg)
            ev.in_write = False
        self.depth -= 1

    def _run_writes(self):
        self.writes_scheduled = False
        self.enter()
        self.leave()

    # -- events -------------------------------------------------------------------

    cdef int watch(self, _LoopEvent ev, int fd, short flags, void *uarg,
                   lcb.lcb_ioE_callback handler) except -1:
        if ev.fd != fd:
            self.unregister(ev)
            ev.fd = fd
        ev.flags = flags
        ev.uarg = uarg
        ev.handler = handler
        if flags & lcb.LCB_READ_EVENT and not ev.reading:
            self.register(ev, True)
        if flags & lcb.LCB_WRITE_EVENT:
            if ev.in_write:
                self.register(ev, False)  # the socket was full: wait until it drains
            elif not ev.writing and not ev.write_queued:
                ev.write_queued = True
                self.write_ready.append(ev)
                if self.depth == 0 and not self.writes_scheduled:
                    self.writes_scheduled = True
                    self.loop_calls += 1
                    self.loop.call_soon(self._run_writes)
        elif ev.writing:
            self.unregister_writer(ev)
        return 0

    cdef int register(self, _LoopEvent ev, bint reader) except -1:
        cdef dict owners = self.readers if reader else self.writers
        cdef _LoopEvent previous = owners.get(ev.fd)
        self.loop_calls += 1
        if reader:
            self.loop.add_reader(ev.fd, ev._readable)
        else:
            self.loop.add_writer(ev.fd, ev._writable)
        # registered (it replaced any other event's registration for the fd)
        if previous is not None and previous is not ev:
            if reader:
                previous.reading = False
            else:
                previous.writing = False
        owners[ev.fd] = ev
        if reader:
            ev.reading = True
        else:
            ev.writing = True
        return 0

    cdef int unregister_reader(self, _LoopEvent ev) except -1:
        ev.reading = False
        if self.readers.get(ev.fd) is ev:
            del self.readers[ev.fd]
            self.loop_calls += 1
            self.loop.remove_reader(ev.fd)
        return 0

    cdef int unregister_writer(self, _LoopEvent ev) except -1:
        ev.writing = False
        if self.writers.get(ev.fd) is ev:
            del self.writers[ev.fd]
            self.loop_calls += 1
            self.loop.remove_writer(ev.fd)
        return 0

    cdef int unregister(self, _LoopEvent ev) except -1:
        if ev.reading:
            self.unregister_reader(ev)
        if ev.writing:
            self.unregister_writer(ev)
        return 0

    cdef int forget_fd(self, int fd) except -1:
        """A socket is about to be closed: nothing may stay registered for it
        (the number may be reused at once)."""
        cdef _LoopEvent ev
        for owners in (self.readers, self.writers):
            ev = (<dict> owners).get(fd)
            if ev is not None:
                self.unregister(ev)
                ev.fd = -1
        return 0

    cdef void event_ready(self, _LoopEvent ev, short which) noexcept:
        """The loop found ev's socket readable or writable."""
        try:
            if ev.destroyed or not (ev.flags & which):
                # not wanted now: stop listening (a reader is kept while wanted)
                if which == lcb.LCB_READ_EVENT:
                    self.unregister_reader(ev)
                else:
                    self.unregister_writer(ev)
                return
            self.enter()
            ev.handler(ev.fd, which, ev.uarg)
            self.leave()
            if ev.writing and not (ev.flags & lcb.LCB_WRITE_EVENT):
                self.unregister_writer(ev)
        except BaseException as e:
            self.failed(e)

    # -- timers ---------------------------------------------------------------

    cdef int schedule_timer(self, _LoopTimer timer, uint32_t usecs, void *uarg,
                            lcb.lcb_ioE_callback handler) except -1:
        timer.deadline = self.loop.time() + usecs * 1e-6
        timer.uarg = uarg
        timer.handler = handler
        timer.armed = True
        self.generations += 1
        timer.generation = self.generations
        if len(self.timers) >= self.compact_at:
            self.compact_timers()
        _heapq.heappush(self.timers, (timer.deadline, timer.generation, timer))
        if timer.deadline < self.timer_deadline:
            self.arm_loop_timer(timer.deadline)
        return 0

    cdef int compact_timers(self) except -1:
        """Drop the entries of cancelled or re-armed timers (libcouchbase
        re-arms a node's timeout timer about once per operation)."""
        self.timers = [e for e in self.timers
                       if (<_LoopTimer> e[2]).armed and (<_LoopTimer> e[2]).generation == e[1]]
        _heapq.heapify(self.timers)
        self.compact_at = max(64, 2 * len(self.timers))
        return 0

    cdef int arm_loop_timer(self, double deadline) except -1:
        if self.timer_handle is not None:
            self.loop_calls += 1
            self.timer_handle.cancel()
        self.loop_calls += 1
        self.timer_handle = self.loop.call_at(deadline, self._timers_due)
        self.timer_deadline = deadline
        return 0

    def _timers_due(self):
        cdef _LoopTimer timer
        cdef double now
        cdef list due = []
        self.timer_handle = None
        self.timer_deadline = float("inf")
        try:
            # the loop may run a handle up to its clock resolution early
            now = self.loop.time() + 0.001
            while self.timers and self.timers[0][0] <= now:
                entry = _heapq.heappop(self.timers)
                timer = <_LoopTimer> entry[2]
                if timer.armed and timer.generation == entry[1]:
                    due.append(timer)
            for timer in due:  # those armed meanwhile wait for the next round
                if timer.armed and timer.deadline <= now:
                    timer.armed = False
                    self.enter()
                    timer.handler(-1, 0, timer.uarg)
                    self.leave()
            while self.timers:
                timer = <_LoopTimer> self.timers[0][2]
                if timer.armed and timer.generation == self.timers[0][1]:
                    if timer.deadline < self.timer_deadline:
                        self.arm_loop_timer(timer.deadline)
                    break
                _heapq.heappop(self.timers)
        except BaseException as e:
            self.failed(e)

    cdef void free_logger(self) noexcept:
        if self.logger != NULL:
            lcb.lcb_logger_destroy(self.logger)
            self.logger = NULL

    cdef int release(self) except -1:
        """libcouchbase is done with the plugin: nothing may stay registered."""
        cdef _LoopEvent ev
        self.released = True
        for owners in (self.readers, self.writers):
            for ev in list((<dict> owners).values()):
                self.unregister(ev)
        if self.timer_handle is not None:
            self.timer_handle.cancel()
            self.timer_handle = None
        self.timers = []
        self.write_ready = []
        return 0


cdef inline _LoopIO _plugin(lcb.lcb_io_opt_t iops):
    return <_LoopIO> lcb.lcbpy_loop_iops_cookie(iops)


# -- the procs libcouchbase calls (never raising into C) -------------------------

cdef void _loop_get_procs(int version, lcb.lcb_loop_procs *loop, lcb.lcb_timer_procs *timer,
                          lcb.lcb_bsd_procs *bsd, lcb.lcb_ev_procs *ev,
                          lcb.lcb_completion_procs *completion, lcb.lcb_iomodel_t *model) noexcept nogil:
    global _bsd_close
    loop.start = _loop_start
    loop.stop = _loop_stop
    loop.tick = _loop_stop
    timer.create = _timer_create
    timer.destroy = _timer_destroy
    timer.cancel = _timer_cancel
    timer.schedule = _timer_schedule
    ev.create = _event_create
    ev.destroy = _event_destroy
    ev.cancel = _event_cancel
    ev.watch = _event_watch
    model[0] = lcb.LCB_IOMODEL_EVENT
    lcb.lcb_iops_wire_bsd_impl2(bsd, version)
    _bsd_close = bsd.close
    bsd.close = _socket_close


cdef void _loop_start(lcb.lcb_io_opt_t iops) noexcept with gil:
    # Only lcb_wait (and a synchronous destroy) run the loop; neither may
    # happen here: the asyncio loop is already running.
    _plugin(iops).failed(_exc.InternalError("libcouchbase tried to run its own event loop "
                                            "on an asyncio connection"))


cdef void _loop_stop(lcb.lcb_io_opt_t iops) noexcept nogil:
    pass  # the asyncio loop is not libcouchbase's to stop


cdef void _loop_iops_destroyed(lcb.lcb_io_opt_t iops) noexcept with gil:
    cdef _LoopIO io = _plugin(iops)
    io.iops = NULL
    lcb.lcbpy_loop_iops_free(iops)
    try:
        io.release()
    except BaseException as e:
        io.failed(e)
    io.free_logger()
    Py_DECREF(io)


cdef void *_event_create(lcb.lcb_io_opt_t iops) noexcept with gil:
    cdef _LoopEvent ev
    try:
        ev = _LoopEvent.__new__(_LoopEvent)
        ev.io = _plugin(iops)
        ev.fd = -1
    except BaseException as e:
        _plugin(iops).failed(e)
        return NULL
    Py_INCREF(ev)  # libcouchbase's reference, dropped by _event_destroy
    return <void *> ev


cdef void _event_destroy(lcb.lcb_io_opt_t iops, void *event) noexcept with gil:
    cdef _LoopEvent ev = <_LoopEvent> event
    ev.destroyed = True
    ev.flags = 0
    try:
        ev.io.unregister(ev)
    except BaseException as e:
        ev.io.failed(e)
    Py_DECREF(ev)


cdef void _event_cancel(lcb.lcb_io_opt_t iops, lcb.lcb_socket_t sock, void *event) noexcept with gil:
    cdef _LoopEvent ev = <_LoopEvent> event
    ev.flags = 0  # the reader stays registered (removed if it fires unwanted)
    try:
        if ev.writing:
            ev.io.unregister_writer(ev)
    except BaseException as e:
        ev.io.failed(e)


cdef int _event_watch(lcb.lcb_io_opt_t iops, lcb.lcb_socket_t sock, void *event, short flags, void *uarg,
                      lcb.lcb_ioE_callback handler) noexcept with gil:
    cdef _LoopEvent ev = <_LoopEvent> event
    try:
        ev.io.watch(ev, sock, flags, uarg, handler)
    except BaseException as e:
        ev.io.failed(e)
        return -1
    return 0


cdef void _socket_close(lcb.lcb_io_opt_t iops, lcb.lcb_socket_t sock) noexcept with gil:
    try:
        _plugin(iops).forget_fd(sock)
    except BaseException as e:
        _plugin(iops).failed(e)
    _bsd_close(iops, sock)


cdef void *_timer_create(lcb.lcb_io_opt_t iops) noexcept with gil:
    cdef _LoopTimer timer
    try:
        timer = _LoopTimer.__new__(_LoopTimer)
    except BaseException as e:
        _plugin(iops).failed(e)
        return NULL
    Py_INCREF(timer)  # libcouchbase's reference, dropped by _timer_destroy
    return <void *> timer


cdef void _timer_destroy(lcb.lcb_io_opt_t iops, void *timer) noexcept with gil:
    (<_LoopTimer> timer).armed = False
    Py_DECREF(<_LoopTimer> timer)


cdef void _timer_cancel(lcb.lcb_io_opt_t iops, void *timer) noexcept with gil:
    (<_LoopTimer> timer).armed = False  # its heap entry is skipped when due


cdef int _timer_schedule(lcb.lcb_io_opt_t iops, void *timer, uint32_t usecs, void *uarg,
                         lcb.lcb_ioE_callback handler) noexcept with gil:
    try:
        _plugin(iops).schedule_timer(<_LoopTimer> timer, usecs, uarg, handler)
    except BaseException as e:
        _plugin(iops).failed(e)
        return -1
    return 0


# -- the driver -----------------------------------------------------------------

cdef enum AioState:
    AIO_NEW
    AIO_CONNECTING
    AIO_OPEN
    AIO_CLOSING
    AIO_CLOSED

cdef enum AioKind:
    AIO_GET
    AIO_STORE


@cython.final
@cython.freelist(256)
cdef class _AioOp:
    """One operation: its Future, and what its command and its reply need.
    libcouchbase holds a reference from scheduling until its callback."""
    cdef _AsyncCore core
    cdef object future
    cdef object key
    cdef str op
    cdef AioKind kind
    cdef object fmt           # get: the format forced, or None
    cdef bint quiet
    cdef bint extended
    cdef bytes data           # store: the encoded value
    cdef lcb.lcb_STORE_OPERATION operation
    cdef StoreSpec store
    cdef uint8_t datatype


cdef class _AsyncCore:
    """A libcouchbase instance driven by the running asyncio loop (see
    couchbase.aio.AsyncConnection, the public class)."""
    cdef lcb.lcb_INSTANCE *_instance
    cdef _LoopIO _io
    cdef object _loop
    cdef object _thread
    cdef AioState _state
    cdef list _queue          # operations waiting for the next flush
    cdef bint _flush_scheduled
    cdef set _in_flight       # operations sent, reply still to come
    cdef object _bootstrapped  # Future of the bootstrap
    cdef object _closed        # Future of close()
    cdef lcb.lcb_CMDGET *_get_cmd  # reused by every get
    cdef bint _iops_adopted   # libcouchbase owns the plugin's iops (its destructor frees them)
    cdef int _default_format
    cdef int _pickles         # PickleMode: what get does with a value stored as a pickle
    cdef tuple _secrets       # every form of every secret given (redacted from messages)
    cdef readonly object host
    cdef readonly object port
    cdef readonly object bucket
    cdef readonly object username
    cdef readonly str connection_string
    cdef public bint quiet

    def __cinit__(self, *args, **kwargs):
        self._queue = []
        self._in_flight = set()

    def __dealloc__(self):
        # Never closed. Nothing is in flight (each operation keeps its core
        # alive), so a synchronous destroy is safe, unless this runs inside
        # libcouchbase (the last operation's callback dropped the last
        # reference): then it destroys itself once that call has returned.
        if self._instance != NULL:
            lcb.lcb_set_cookie(self._instance, NULL)
            if self._io.depth > 0:
                lcb.lcb_destroy_async(self._instance, NULL)
            else:
                lcb.lcb_destroy(self._instance)
            self._instance = NULL
        self._release_setup()

    def __del__(self):
        if self._instance != NULL:
            warnings.warn(f"unclosed {self!r}; use 'await close()' or 'async with'", ResourceWarning,
                          source=self)

    cdef void _release_setup(self) noexcept:
        """Free what the instance used, once it is destroyed (or was never made)."""
        if self._get_cmd != NULL:
            lcb.lcb_cmdget_destroy(self._get_cmd)
            self._get_cmd = NULL
        if self._io is not None and not self._iops_adopted and self._io.iops != NULL:
            # never handed to an instance: libcouchbase will not destroy it
            lcb.lcbpy_loop_iops_free(self._io.iops)
            self._io.iops = NULL
            self._io.free_logger()
            Py_DECREF(self._io)

    def _start(self, loop, dict options, str connection_string):
        """Create the instance and start its bootstrap; returns the Future of
        the bootstrap. ``options`` come from _connect_options; the connection
        string is options' connstr with numeric addresses only (see couchbase.aio)."""
        cdef lcb.lcb_CREATEOPTS *createopts = NULL
        cdef lcb.lcb_STATUS rc
        if self._state != AIO_NEW:
            raise _exc.ArgumentError("this AsyncConnection was already connected", operation="connect")
        self._loop = loop
        self._thread = _threading.get_ident()
        self.host = options["host"]
        self.port = options["port"]
        self.bucket = options["bucket"]
        self.username = options["username"]
        self.quiet = options["quiet"]
        self._default_format = options["default_format"]
        self._pickles = options["pickles"]
        self._secrets = options["secrets"]
        self.connection_string = options["connection_string"]
        cdef bytes connstr = connection_string.encode("utf-8")
        cdef bytes user = self.username.encode("utf-8")
        cdef bytes pw = (<str> options["password"]).encode("utf-8")
        cdef bytes bucket = self.bucket.encode("utf-8")
        self._io = _LoopIO(loop)
        self._io.secrets = self._secrets
        _update_log_severity()
        # the log callback reads the secrets to redact through the logger's
        # cookie; the plugin keeps them as long as the logger
        self._setup(lcb.lcb_logger_create(&self._io.logger, <void *> self._io.secrets))
        self._setup(lcb.lcb_logger_callback(self._io.logger, _on_log))
        self._setup(lcb.lcb_cmdget_create(&self._get_cmd))
        self._setup(lcb.lcb_createopts_create(&createopts, lcb.LCB_TYPE_BUCKET))
        try:
            self._setup(lcb.lcb_createopts_connstr(createopts, connstr, len(connstr)))
            self._setup(lcb.lcb_createopts_bucket(createopts, bucket, len(bucket)))
            self._setup(lcb.lcb_createopts_credentials(createopts, user, len(user), pw, len(pw)))
            self._setup(lcb.lcb_createopts_io(createopts, self._io.iops))
            self._setup(lcb.lcb_createopts_logger(createopts, self._io.logger))
            self._io.enter()
            rc = lcb.lcb_create(&self._instance, createopts)
            self._io.leave()
        finally:
            lcb.lcb_createopts_destroy(createopts)
        # A failed lcb_create destroyed the plugin if it had taken it already.
        self._iops_adopted = rc == lcb.LCB_SUCCESS or self._io.released
        if rc != lcb.LCB_SUCCESS:
            self._instance = NULL
            self._setup(rc)
        self._state = AIO_CONNECTING
        lcb.lcb_set_cookie(self._instance, <void *> self)
        given = _connstr_options(connection_string)
        for name, value in options["settings"].items():
            if name not in given:
                self._setup(lcb.lcb_cntl_string(self._instance, name.encode(), value.encode()))
        # whatever the connection string says (sync_dtor=true would spin the loop in close)
        cdef int off = 0
        self._setup(lcb.lcb_cntl(self._instance, lcb.LCB_CNTL_SET, lcb.LCB_CNTL_SYNCDESTROY, &off))
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_GET, _aio_on_get)
        lcb.lcb_install_callback(self._instance, lcb.LCB_CALLBACK_STORE, _aio_on_store)
        lcb.lcb_set_bootstrap_callback(self._instance, _aio_on_bootstrap)
        lcb.lcb_set_destroy_callback(self._instance, _aio_on_destroyed)
        self._bootstrapped = loop.create_future()
        self._io.enter()
        rc = lcb.lcb_connect(self._instance)
        self._io.leave()
        if rc != lcb.LCB_SUCCESS:
            self._bootstrapped.set_exception(self._connect_error(rc))
        return self._bootstrapped

    cdef int _setup(self, lcb.lcb_STATUS rc) except -1:
        if rc != lcb.LCB_SUCCESS:
            if self._instance != NULL:
                # not connecting yet, nothing in flight: a synchronous destroy is safe
                lcb.lcb_set_cookie(self._instance, NULL)
                lcb.lcb_destroy(self._instance)
                self._instance = NULL
            self._state = AIO_CLOSED
            self._release_setup()
            raise self._connect_error(rc)
        return 0

    cdef object _connect_error(self, lcb.lcb_STATUS rc):
        return _bootstrap_error(rc, self.bucket, self.host, self.port, self.connection_string, self._secrets)

    cdef int _bootstrap_done(self, lcb.lcb_STATUS rc) except -1:
        if self._state == AIO_CONNECTING and rc == lcb.LCB_SUCCESS:
            self._state = AIO_OPEN
        if self._bootstrapped is not None and not self._bootstrapped.done():
            if rc == lcb.LCB_SUCCESS:
                self._bootstrapped.set_result(None)
            else:
                self._bootstrapped.set_exception(self._connect_error(rc))
        return 0

    # -- using it from its loop only ------------------------------------------------

    cdef int _check_usable(self, str op) except -1:
        if _get_running_loop() is not self._loop or self._state != AIO_OPEN:
            self._refuse(op)
        return 0

    cdef int _refuse(self, str op) except -1:
        running = _get_running_loop()
        if self._state == AIO_NEW:
            raise _exc.ConnectError("this AsyncConnection is not connected; use "
                                    "'await AsyncConnection.connect(...)'", operation=op)
        if self._state != AIO_OPEN and self._state != AIO_CONNECTING:
            raise _exc.ConnectError(
                f"the connection to bucket {self.bucket!r} is closed; open a new AsyncConnection",
                operation=op)
        if running is not self._loop:
            where = ("from a thread with no running event loop" if running is None
                     else "from another event loop")
            if _threading.get_ident() != self._thread:
                where += " in another thread"
            raise _exc.BadHandleError(
                f"this AsyncConnection belongs to the event loop it was connected on and was used "
                f"{where}; open one AsyncConnection per event loop", operation=op)
        raise _exc.ConnectError("the connection is still connecting; await connect() first",
                                operation=op)

    # -- operations -------------------------------------------------------------

    cdef _AioOp _new_op(self, str op, object key, AioKind kind):
        cdef Py_ssize_t n
        self._check_usable(op)
        key = _exact_key(key, op)
        _key_ptr(key, &n, op)  # a bad key raises here, before anything is queued
        cdef _AioOp o = _AioOp.__new__(_AioOp)
        o.core = self
        o.key = key
        o.op = op
        o.kind = kind
        o.future = self._loop.create_future()
        return o

    cdef object _submit(self, _AioOp o):
        self._queue.append(o)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._io.loop_calls += 1
            self._loop.call_soon(self._flush)
        return o.future

    def get(self, key, extended=False, format=None, quiet=None):
        """Get one key's value; returns a Future of what Connection.get returns
        (the value, or ``Result(value, flags, cas)`` with ``extended``).
        A missing key: NotFoundError, or None with ``quiet``."""
        if format is not None:
            _check_format(format, "get")
        cdef _AioOp o = self._new_op("get", key, AIO_GET)
        o.fmt = format
        o.extended = bool(extended)
        o.quiet = self.quiet if quiet is None else bool(quiet)
        return self._submit(o)

    def _set_unguarded(self, key, value, cas=0, ttl=0, format=None):
        """Store a value under one key; returns a Future of the new CAS.
        Same conventions as Connection.set.

        Not public yet: this driver does not yet stop libcouchbase from
        replaying a store whose connection failed after it was written (the
        exactly-once rule Connection keeps, couchbase/_wire.h); stores become
        public once they run on the operation core both drivers share. The
        tests use it to put documents in place."""
        cdef int fmt = self._default_format if format is None else _check_format(format, "set")
        cdef uint64_t cas_value = _check_cas(cas, "set", key)
        cdef uint32_t expiry = _check_ttl(ttl, "set", key)
        cdef _AioOp o = self._new_op("set", key, AIO_STORE)
        o.data = _encode(value, fmt, "set", key)
        # a CAS-checked set is a replace on the wire (see Connection._store)
        o.operation = lcb.LCB_STORE_REPLACE if cas_value else lcb.LCB_STORE_UPSERT
        o.store.flags = <uint32_t> fmt
        o.store.expiry = expiry
        o.store.cas = cas_value
        o.datatype = DATATYPE_JSON if fmt == _FMT_JSON else 0
        return self._submit(o)

    def _flush(self):
        """Schedule every operation queued since the last flush, in one
        lcb_sched_enter/leave (one write per socket)."""
        cdef _AioOp o
        cdef lcb.lcb_STATUS rc
        self._flush_scheduled = False
        batch, self._queue = self._queue, []
        if self._instance == NULL or self._state != AIO_OPEN:
            for o in batch:
                self._fail_unsent(o)
            return
        self._io.enter()
        lcb.lcb_sched_enter(self._instance)
        try:
            for o in batch:
                if o.future.done():
                    continue  # cancelled before it was sent: never sent
                # in flight from here: the callback may come before lcb_get returns
                Py_INCREF(o)  # libcouchbase's reference, dropped by the callback
                self._in_flight.add(o)
                try:
                    rc = self._schedule(o)
                except BaseException as e:  # (MemoryError) this operation fails, not the batch
                    rc = NO_REPLY
                    error = e
                else:
                    error = None
                if rc != lcb.LCB_SUCCESS:  # never sent: no callback will come
                    self._in_flight.discard(o)
                    Py_DECREF(o)
                    if error is None:
                        error = _exc.exception_for_status(rc, key=o.key, operation=o.op)
                    o.future.set_exception(error)
        finally:
            lcb.lcb_sched_leave(self._instance)
            self._io.leave()

    cdef lcb.lcb_STATUS _schedule(self, _AioOp o) except? -2:
        cdef Py_ssize_t nkey
        cdef const char *key = _key_ptr(o.key, &nkey, o.op)
        cdef lcb.lcb_CMDSTORE *cmd = NULL
        cdef lcb.lcb_STATUS rc
        if o.kind == AIO_GET:
            lcb.lcb_cmdget_key(self._get_cmd, key, nkey)
            return lcb.lcb_get(self._instance, <void *> o, self._get_cmd)
        rc = _store_command(&cmd, o.operation, &o.store, o.datatype)
        if rc == lcb.LCB_SUCCESS:
            lcb.lcb_cmdstore_key(cmd, key, nkey)
            lcb.lcb_cmdstore_value(cmd, PyBytes_AS_STRING(o.data), <size_t> PyBytes_GET_SIZE(o.data))
            rc = lcb.lcb_store(self._instance, <void *> o, cmd)
        if cmd != NULL:
            lcb.lcb_cmdstore_destroy(cmd)
        return rc

    cdef void _fail_unsent(self, _AioOp o) noexcept:
        if not o.future.done():
            o.future.set_exception(_exc.ConnectError(
                "the connection was closed before the operation was sent; nothing was changed",
                key=o.key, operation=o.op))

    cdef int _answered(self, _AioOp o, object result, object error) except -1:
        self._in_flight.discard(o)
        if not o.future.done():  # else cancelled, or failed by close()
            if error is not None:
                o.future.set_exception(error)
            else:
                o.future.set_result(result)
        if self._state == AIO_CLOSING and not self._in_flight:
            self._destroy()
        return 0

    # -- lifecycle ------------------------------------------------------------------

    def close(self):
        """Close the connection; returns a Future done once libcouchbase has
        released everything. Operations still queued fail with ConnectError,
        those in flight with RequestCanceledError (whether they were applied
        is unknown); libcouchbase is destroyed once it answered them all."""
        cdef _AioOp o
        if self._state == AIO_NEW:
            raise _exc.ConnectError("this AsyncConnection was never connected", operation="close")
        if _get_running_loop() is not self._loop:
            self._refuse("close")
        if self._closed is not None:
            return self._closed
        self._closed = self._loop.create_future()
        self._state = AIO_CLOSING
        if self._bootstrapped is not None and not self._bootstrapped.done():
            self._bootstrapped.set_exception(_exc.ConnectError(
                "the connection was closed while connecting", operation="connect"))
        batch, self._queue = self._queue, []
        for o in batch:
            self._fail_unsent(o)
        for o in self._in_flight:
            if not o.future.done():
                o.future.set_exception(_exc.RequestCanceledError(
                    "the connection was closed while the operation was in flight; "
                    "whether it was applied is unknown", key=o.key, operation=o.op))
        if not self._in_flight:
            self._destroy()
        return self._closed

    cdef void _destroy(self) noexcept:
        """Destroy the instance from a loop callback, libcouchbase's own safe
        way for event loops; its destroy callback completes close()."""
        if self._instance == NULL:
            return
        Py_INCREF(self)  # until _aio_on_destroyed
        self._io.enter()
        lcb.lcb_destroy_async(self._instance, <void *> self)
        self._io.leave()
        self._instance = NULL

    cdef void _destroyed(self) noexcept:
        self._state = AIO_CLOSED
        self._release_setup()
        if self._closed is not None and not self._closed.done():
            error = self._io.error if self._io is not None else None
            self._closed.set_result(None)
            if error is not None:
                _logger.warning("couchbase asyncio IO failed while the connection was open: %r", error)

    @property
    def closed(self):
        """True once close() was called."""
        return self._state == AIO_CLOSING or self._state == AIO_CLOSED

    @property
    def loop_calls(self):
        """How many calls this connection's IO made to the event loop (to
        measure how cheaply it maps libcouchbase's events)."""
        return self._io.loop_calls if self._io is not None else 0

    @property
    def default_format(self):
        """The format used when a call names none: FMT_JSON, FMT_PICKLE or FMT_PLAIN."""
        return self._default_format

    def __repr__(self):
        state = ("new", "connecting", "open", "closing", "closed")[<int> self._state]
        return (f"<couchbase.aio.AsyncConnection bucket={self.bucket!r} "
                f"connection_string={self.connection_string!r} username={self.username!r} {state}>")


cdef inline _AioOp _aio_op(const void *cookie):
    return <_AioOp> cookie


cdef void _aio_on_get(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept with gil:
    cdef const lcb.lcb_RESPGET *resp = <const lcb.lcb_RESPGET *> rb
    cdef void *cookie = NULL
    cdef Slot slot
    cdef size_t nvalue = 0
    cdef const char *value = NULL
    lcb.lcb_respget_cookie(resp, &cookie)
    if cookie == NULL:
        return
    cdef _AioOp o = _aio_op(cookie)
    Py_DECREF(o)  # libcouchbase's reference; `o` holds one of its own
    memset(&slot, 0, sizeof(slot))
    slot.rc = lcb.lcb_respget_status(resp)
    lcb.lcb_respget_cas(resp, &slot.cas)
    lcb.lcb_respget_flags(resp, &slot.flags)
    if slot.rc == lcb.LCB_SUCCESS:
        lcb.lcb_respget_value(resp, &value, &nvalue)
        slot.value = <char *> value  # read in place: decoded before libcouchbase reuses it
        slot.nvalue = nvalue
    result = error = None
    try:
        try:
            result = _reply(&slot, o.key, o.op, REPLY_VALUE, o.quiet, o.extended, o.fmt, o.core._pickles)
        except BaseException as e:
            error = e
        o.core._answered(o, result, error)
    except BaseException as e:
        o.core._io.failed(e)


cdef void _aio_on_store(lcb.lcb_INSTANCE *instance, int cbtype, const lcb.lcb_RESPBASE *rb) noexcept with gil:
    cdef const lcb.lcb_RESPSTORE *resp = <const lcb.lcb_RESPSTORE *> rb
    cdef void *cookie = NULL
    cdef Slot slot
    lcb.lcb_respstore_cookie(resp, &cookie)
    if cookie == NULL:
        return
    cdef _AioOp o = _aio_op(cookie)
    Py_DECREF(o)
    memset(&slot, 0, sizeof(slot))
    slot.rc = lcb.lcb_respstore_status(resp)
    lcb.lcb_respstore_cas(resp, &slot.cas)
    result = error = None
    try:
        try:
            result = _reply(&slot, o.key, o.op, REPLY_CAS, False, False, None, o.core._pickles)
        except BaseException as e:
            error = e
        o.core._answered(o, result, error)
    except BaseException as e:
        o.core._io.failed(e)


cdef void _aio_on_bootstrap(lcb.lcb_INSTANCE *instance, lcb.lcb_STATUS err) noexcept with gil:
    cdef const void *cookie = lcb.lcb_get_cookie(instance)
    if cookie == NULL:
        return
    try:
        (<_AsyncCore> cookie)._bootstrap_done(err)
    except BaseException as e:
        (<_AsyncCore> cookie)._io.failed(e)


cdef void _aio_on_destroyed(const void *cookie) noexcept with gil:
    if cookie == NULL:
        return
    cdef _AsyncCore core = <_AsyncCore> cookie
    Py_DECREF(core)  # the reference _destroy took; `core` holds one
    try:
        core._destroyed()
    except BaseException as e:
        core._io.failed(e)


# -- what both drivers share ----------------------------------------------------

def _bootstrap_error(lcb.lcb_STATUS rc, str bucket, host, port, str connection_string, tuple secrets):
    """A bootstrap failure, in the classes the 0.9 client raised (not raised),
    naming the bucket and where it was looked for, secrets redacted."""
    err = _exc.exception_for_status(rc, operation="connect")
    if not isinstance(err, (_exc.AuthError, _exc.BucketNotFoundError, _exc.ConnectError,
                            _exc.ArgumentError)):
        err = _exc.ConnectError(err.msg, error=rc, operation="connect")
    where = f"{host}:{port}" if host is not None else connection_string
    err.msg = _exc.redact(f"bucket {bucket!r} at {where}: {err.msg}", secrets)
    return _tls.explain(err)


def _connect_options(host="localhost", port=8091, username=None, password=None, bucket=None,
                     quiet=False, *, connection_string=None, timeout=2.5, connect_timeout=10.0,
                     default_format=FMT_JSON, enable_tracing=False, enable_operation_metrics=False,
                     unpickle=True, tls_ca_file=None, tls_cert_file=None, tls_key_file=None, tls_verify=True):
    """Check a connection's arguments (ArgumentError for any bad one) and
    return what opening it needs, for both drivers: a dict of bucket,
    username, host, port, quiet, default_format, pickles, password, secrets
    (every form of every secret given, redacted from messages and log lines),
    connstr (for libcouchbase), connection_string (shown, redacted) and the
    libcouchbase settings."""
    if bucket is None or (type(bucket) is str and not bucket):
        raise _exc.ArgumentError("a bucket name is required (bucket=...)", operation="connect")
    bucket = _check_text("bucket", bucket)
    if not bucket:
        raise _exc.ArgumentError("a bucket name is required (bucket=...)", operation="connect")
    if password is not None:
        password = _check_text("password", password, secret=True)
    if username is not None:
        username = _check_text("username", username)
    cdef uint32_t timeout_us = _check_timeout("timeout", timeout)
    cdef uint32_t connect_timeout_us = _check_timeout("connect_timeout", connect_timeout)
    fmt = _check_format(default_format, "connect")
    pickles = _check_unpickle(unpickle)
    quiet = _check_flag(quiet, "quiet", "connect")
    enable_tracing = _check_flag(enable_tracing, "enable_tracing", "connect")
    enable_operation_metrics = _check_flag(enable_operation_metrics, "enable_operation_metrics",
                                           "connect")
    if connection_string is not None:
        host = port = None  # the connection string names the nodes
        connection_string = _check_text("connection_string", connection_string, secret=True)
        connection_string, user_in_url, password_in_url = _split_userinfo(connection_string)
        if username is None:
            username = user_in_url
        if not password and password_in_url is not None:
            password = password_in_url
    else:
        password_in_url = None
        if host is None or (type(host) is str and not host):
            raise _exc.ArgumentError("a host is required (or a connection_string)", operation="connect")
        host = _check_text("host", host)
        if not _HOST_RE.fullmatch(host):
            raise _exc.ArgumentError(f"host {_exc.safe_repr(host)} is not a host name or IP address "
                                     f"(give other nodes and options in connection_string)",
                                     operation="connect")
        if not isinstance(port, int) or type(port) is bool or not 0 < int.__int__(port) < 65536:
            raise _exc.ArgumentError(f"port must be an int from 1 to 65535, not {_exc.safe_repr(port)}",
                                     operation="connect")
        port = int.__int__(port)
        connection_string = (f"couchbase://{_host_for_connstr(host)}:{port}=http/"
                             f"{_quote(bucket, safe='')}")
    connection_string = _tls.configure(connection_string, tls_ca_file, tls_cert_file, tls_key_file,
                                       tls_verify)
    options = _connstr_query(connection_string)
    _check_time_options(options)
    query_passwords = [value for name, value in options if name in ("password", "pass")]
    if password is None:
        if not query_passwords and tls_cert_file is None:  # a client certificate is the credentials
            raise _exc.ArgumentError(
                f"a password is required to connect to bucket {bucket!r} (use '' for an open bucket)",
                operation="connect")
        password = ""
    # every form of every secret given, redacted from messages and log lines
    secrets = tuple(form for secret in [password, password_in_url] + query_passwords
                    for form in _exc.secret_forms(secret))
    return {
        "bucket": bucket, "username": username if username is not None else bucket,
        "host": host, "port": port, "quiet": quiet, "default_format": fmt, "pickles": pickles,
        "password": password, "secrets": secrets,
        "connstr": connection_string,  # what libcouchbase is given
        "connection_string": _exc.redact(connection_string, secrets),  # what is shown
        "settings": {
            "operation_timeout": f"{timeout_us}us",
            "config_total_timeout": f"{connect_timeout_us}us",
            "enable_tracing": "true" if enable_tracing else "false",
            "enable_operation_metrics": "true" if enable_operation_metrics else "false",
            # The 0.9 API has no collections: every key is in the bucket's default
            # collection, and libcouchbase's per-key collection lookups cost ~15%.
            "enable_collections": "false",
            # Values travel uncompressed: compressing costs client CPU, the scarce
            # resource of a Python process, servers compress at rest themselves,
            # and only then can gets and large stores skip libcouchbase's command
            # layer and copies (_forward.pxi).
            "compression": "off",
        },
    }
