# Included by _lcb.pyx: libcouchbase driven by a running asyncio event loop.
#
# _LoopIO is a libcouchbase IO plugin of the event model (v2 get_procs, BSD
# sockets by lcb_iops_wire_bsd_impl2) whose watches and timers are the loop's
# own add_reader/add_writer and call_at. _AsyncCore, the asyncio driver of the
# operation core (_ops.pxi), drives an instance with it: no lcb_wait ever
# runs; libcouchbase is entered only from the loop's thread, with the GIL
# held, and the reply that completes a call resolves its Future.
#
# What keeps the number of loop calls per operation low (each is a few µs):
# - the reader of a socket stays registered while the socket lives; when it
#   fires while libcouchbase wants nothing, it is removed then;
# - libcouchbase's event model only ever writes when told a socket is
#   writable: a write watch is answered at once (a "write-ready" call after
#   libcouchbase returns), and a real add_writer is made only when the write
#   found the socket full (the handler asked to write again);
# - one loop timer per plugin, re-armed only for an earlier deadline; a
#   libcouchbase timer pushed later (a node's timeout, with every command)
#   keeps its queued entry, which queues it again when due;
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
    cdef double queued        # the deadline of its current heap entry (<= deadline)
    cdef bint in_heap         # that entry is in the heap (armed or not)
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
    cdef double now           # loop.time() when libcouchbase was entered (schedule_timer)
    cdef bint now_valid
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
        if self.depth == 0:
            self.now_valid = False  # a new entry: read the clock again
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
        # the clock is read once per entry into libcouchbase (which re-arms a
        # node's timer for every command it sends): its timeouts are seconds
        if self.depth == 0 or not self.now_valid:
            self.now = self.loop.time()
            self.now_valid = self.depth > 0
        cdef double deadline = self.now + usecs * 1e-6
        timer.uarg = uarg
        timer.handler = handler
        if timer.in_heap and timer.queued <= deadline:
            # libcouchbase pushes a node's timeout later (cancel, schedule)
            # with every command it sends: the entry already queued comes
            # first and queues the timer again for its new deadline
            # (_timers_due), no heap push here
            timer.deadline = deadline
            timer.armed = True
            return 0
        timer.deadline = deadline
        timer.armed = True
        self.queue_timer(timer)
        return 0

    cdef int queue_timer(self, _LoopTimer timer) except -1:
        """Queue an armed timer's deadline (its other entries go stale)."""
        self.generations += 1
        timer.generation = self.generations
        timer.queued = timer.deadline
        timer.in_heap = True
        if len(self.timers) >= self.compact_at:
            self.compact_timers()
        _heapq.heappush(self.timers, (timer.deadline, timer.generation, timer))
        if timer.deadline < self.timer_deadline:
            self.arm_loop_timer(timer.deadline)
        return 0

    cdef int compact_timers(self) except -1:
        """Drop the entries of cancelled or re-queued timers."""
        cdef _LoopTimer timer
        cdef list kept = []
        for entry in self.timers:
            timer = <_LoopTimer> entry[2]
            if timer.generation == entry[1]:
                if timer.armed:
                    kept.append(entry)
                else:
                    timer.in_heap = False
        self.timers = kept
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
                if timer.generation == entry[1]:
                    timer.in_heap = False
                if timer.armed and timer.generation == entry[1]:
                    if timer.deadline <= now:
                        due.append(timer)
                    else:
                        self.queue_timer(timer)  # pushed later meanwhile (schedule_timer)
            for timer in due:
                if not timer.armed:
                    continue  # cancelled by a handler that ran before
                if timer.deadline > now:
                    self.queue_timer(timer)  # re-armed by a handler that ran before
                    continue
                timer.armed = False
                self.enter()
                timer.handler(-1, 0, timer.uarg)
                self.leave()
            while self.timers:
                entry = self.timers[0]
                timer = <_LoopTimer> entry[2]
                if timer.generation == entry[1]:
                    if timer.armed:
                        if entry[0] < self.timer_deadline:
                            self.arm_loop_timer(entry[0])
                        break
                    timer.in_heap = False
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
    lcb.lcbpy_guard_bsd(bsd)  # written requests are never sent twice (couchbase/_wire.h)
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


cdef class _AsyncCore(_Core):
    """The asyncio driver of the operation core: a libcouchbase instance
    driven by the running loop (couchbase.aio.AsyncConnection is the public
    class). Every operation of _Core returns a Future here. A call is queued
    until the loop iteration's flush (one lcb_sched_enter/leave for all);
    libcouchbase holds a reference to it from then until its last reply."""
    cdef _LoopIO _io
    cdef object _loop
    cdef object _thread
    cdef AioState _state
    cdef list _queue          # calls waiting for the next flush
    cdef bint _flush_scheduled
    cdef set _in_flight       # calls sent, replies still to come
    cdef object _bootstrapped  # Future of the bootstrap
    cdef object _closed        # Future of close()
    cdef bint _iops_adopted   # libcouchbase owns the plugin's iops (its destructor frees them)

    def __cinit__(self, *args, **kwargs):
        self._queue = []
        self._in_flight = set()
        self._secrets = ()

    def __dealloc__(self):
        # Never closed. Nothing is in flight (each call keeps its connection
        # alive), so a synchronous destroy is safe, unless this runs inside
        # libcouchbase (the last call's callback dropped the last reference):
        # then it destroys itself once that call has returned.
        if self._instance != NULL:
            lcb.lcb_set_cookie(self._instance, NULL)
            if self._io.depth > 0:
                lcb.lcb_destroy_async(self._instance, NULL)
                _orphan_forwards(&self._forwards)  # libcouchbase may still flush them
            else:
                lcb.lcb_destroy(self._instance)
                _drop_forwards(&self._forwards)
            self._instance = NULL
        self._release_setup()

    def __del__(self):
        if self._instance != NULL:
            warnings.warn(f"unclosed {self!r}; use 'await close()' or 'async with'", ResourceWarning,
                          source=self)

    cdef void _release_setup(self) noexcept:
        """Free what the instance used, once it is destroyed (or was never made)."""
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
        cdef lcb.lcb_STATUS rc
        cdef int off = 0
        if self._state != AIO_NEW:
            raise _exc.ArgumentError("this AsyncConnection was already connected", operation="connect")
        self._loop = loop
        self._thread = _threading.get_ident()
        self._apply_options(options)
        self._connstr = connection_string
        self._io = _LoopIO(loop)
        self._io.secrets = self._secrets  # the plugin frees the logger: it keeps what it reads
        self._new_logger(&self._io.logger)
        self._io.enter()
        try:
            self._set_up_instance(self._io.iops, self._io.logger)
        finally:
            self._io.leave()
        self._iops_adopted = True
        self._state = AIO_CONNECTING
        lcb.lcb_set_cookie(self._instance, <void *> self)
        # whatever the connection string says (sync_dtor=true would spin the loop in close)
        self._check_setup(lcb.lcb_cntl(self._instance, lcb.LCB_CNTL_SET, lcb.LCB_CNTL_SYNCDESTROY, &off))
        lcb.lcb_set_bootstrap_callback(self._instance, _aio_on_bootstrap)
        lcb.lcb_set_destroy_callback(self._instance, _aio_on_destroyed)
        self._bootstrapped = loop.create_future()
        self._io.enter()
        rc = lcb.lcb_connect(self._instance)
        self._io.leave()
        if rc != lcb.LCB_SUCCESS:
            self._bootstrapped.set_exception(self._connect_error(rc))
        return self._bootstrapped

    cdef void _abandon_setup(self) noexcept:
        if self._instance != NULL:
            # not connecting yet, nothing in flight: a synchronous destroy is
            # safe (and frees the plugin, which the instance adopted)
            self._iops_adopted = True
            lcb.lcb_set_cookie(self._instance, NULL)
            lcb.lcb_destroy(self._instance)
            self._instance = NULL
        elif self._io is not None and self._io.released:
            self._iops_adopted = True  # a failed lcb_create destroyed it already
        self._state = AIO_CLOSED
        self._release_setup()

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

    # -- running calls ------------------------------------------------------------------

    cdef object _execute(self, _Slots call):
        """Queue the call for this loop iteration's flush; its Future."""
        cdef Py_ssize_t i
        if _get_running_loop() is not self._loop or self._state != AIO_OPEN:
            self._refuse(call.op)
        future = self._loop.create_future()
        if call.unanswered == 0:  # no keys: nothing to send
            future.set_result(call.result())
            return future
        call.future = future
        call.core = self
        for i in range(call.n):
            call.slots[i].aio = <void *> call
        self._queue.append(call)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._io.loop_calls += 1
            self._loop.call_soon(self._flush)
        return future

    def _flush(self):
        """Schedule every call queued since the last flush, in one
        lcb_sched_enter/leave (one write per socket)."""
        cdef _Slots call
        self._flush_scheduled = False
        batch, self._queue = self._queue, []
        if self._instance == NULL or self._state != AIO_OPEN:
            for call in batch:
                self._fail_unsent(call)
            return
        self._io.enter()
        lcb.lcb_sched_enter(self._instance)
        try:
            for call in batch:
                if call.future.done():  # cancelled before it was sent: never sent
                    call.future = call.core = None
                    continue
                # in flight from here: a callback may come before scheduling returns
                Py_INCREF(call)  # libcouchbase's reference, dropped by _complete
                call.in_flight = True
                self._in_flight.add(call)
                _schedule_call(self._instance, call, &self._forwards)
                if call.in_flight and call.unanswered == 0:  # every key refused: no reply comes
                    self._complete(call)
        finally:
            lcb.lcb_sched_leave(self._instance)
            self._io.leave()

    cdef int _complete(self, _Slots call) except -1:
        """A call has all its replies: resolve its Future (unless cancelled,
        or failed by close) and drop libcouchbase's reference."""
        future = call.future
        call.in_flight = False
        call.future = call.core = None
        self._in_flight.discard(call)
        try:
            if not future.done():
                try:
                    result = call.result()
                except BaseException as e:
                    future.set_exception(e)
                else:
                    future.set_result(result)
        finally:
            Py_DECREF(call)
        if self._state == AIO_CLOSING and not self._in_flight:
            self._destroy()
        return 0

    cdef void _fail_unsent(self, _Slots call) noexcept:
        future = call.future
        call.future = call.core = None
        try:
            if future is not None and not future.done():
                future.set_exception(_exc.ConnectError(
                    "the connection was closed before the operation was sent; nothing was changed",
                    key=None if call.multi else call.keys[0], operation=call.op))
        except BaseException as e:
            self._io.failed(e)

    # -- lifecycle ------------------------------------------------------------------

    def close(self):
        """Close the connection; returns a Future done once libcouchbase has
        released everything. Operations still queued fail with ConnectError,
        those in flight with RequestCanceledError (whether they were applied
        is unknown); libcouchbase is destroyed once it answered them all.
        Idempotent: a second close returns the same Future."""
        cdef _Slots call
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
        for call in batch:
            self._fail_unsent(call)
        for call in self._in_flight:
            if call.future is not None and not call.future.done():
                call.future.set_exception(_exc.RequestCanceledError(
                    "the connection was closed while the operation was in flight; "
                    "whether it was applied is unknown", key=None if call.multi else call.keys[0],
                    operation=call.op))
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
        _drop_forwards(&self._forwards)
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
    def _replays_stopped(self):
        """How many requests libcouchbase tried to send a second time after
        they were written and never answered, and the IO plugin stopped (see
        couchbase/_wire.h): for tests."""
        if self._io is None or self._io.iops == NULL:
            return 0
        return (<lcb.lcbpy_IO *> self._io.iops).replays_stopped

    def __repr__(self):
        state = ("new", "connecting", "open", "closing", "closed")[<int> self._state]
        return (f"<couchbase.aio.AsyncConnection bucket={self.bucket!r} "
                f"connection_string={self.connection_string!r} username={self.username!r} {state}>")


cdef void _aio_call_answered(void *cookie) noexcept with gil:
    """The last reply of a call the asyncio driver sent (from _answered)."""
    cdef _Slots call = <_Slots> cookie
    if not call.in_flight:
        return
    cdef _AsyncCore core = <_AsyncCore> call.core
    try:
        core._complete(call)
    except BaseException as e:
        core._io.failed(e)


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
    return err


def _connect_options(host="localhost", port=8091, username=None, password=None, bucket=None,
                     quiet=False, *, connection_string=None, timeout=2.5, connect_timeout=10.0,
                     default_format=FMT_JSON, enable_tracing=False, enable_operation_metrics=False,
                     unpickle=True):
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
    options = _connstr_query(connection_string)
    _check_time_options(options)
    query_passwords = [value for name, value in options if name in ("password", "pass")]
    if password is None:
        if not query_passwords:
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
