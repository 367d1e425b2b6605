# Included by _lcb.pyx: the operation core both drivers share.
#
# _Core holds what a connection is (its options, its libcouchbase instance,
# how that instance is set up) and every operation, each written once here:
# argument checks, encoding, the command and its built packets, and how the
# replies become the result (a _Slots call, _slots.pxi). The operation then
# hands the call to its driver's _execute:
#
# - Connection (_lcb.pyx) schedules it with the calls other threads queued,
#   waits with the GIL released (leader/follower threads) and returns
#   call.result();
# - _AsyncCore (_aio_io.pxi, couchbase.aio.AsyncConnection) queues it for the
#   loop iteration's flush and returns a Future, which the reply that
#   completes the call resolves with call.result().
#
# Adding an operation: its method here and its stub in couchbase/_lcb.pyi's
# Connection (tools/generate_aio_stub.py writes the asyncio one from it). One
# that sends a new kind of libcouchbase command also needs that kind's sender
# and freer and its response callback (_slots.pxi, _install_callbacks).


cdef extern from "Python.h":
    ctypedef struct PyMethodDef:
        pass
    ctypedef struct PyMethodDescrObject:
        PyMethodDef *d_method
    object PyDescr_NewMethod(PyTypeObject *cls, PyMethodDef *meth)
    void PyType_Modified(PyTypeObject *cls)


def _own_operations(cls):
    """Give a driver class the operations of _Core as its own methods (the
    same C functions, in descriptors of cls). CPython specialises a method
    call only when the method belongs to the object's exact type: inherited
    ones would cost every sync call some 150 instructions (about 2%)."""
    cdef PyTypeObject *t = <PyTypeObject *> cls
    if not issubclass(cls, _Core):
        raise TypeError(f"{cls!r} does not run the operation core")
    for name, member in vars(_Core).items():
        if not name.startswith("_") and type(member).__name__ == "method_descriptor":
            (<dict> t.tp_dict)[name] = PyDescr_NewMethod(t, (<PyMethodDescrObject *> member).d_method)
    PyType_Modified(t)


cdef object _reply(Slot *slot, object key, str op, Reply kind, bint quiet, bint extended, object fmt,
                   int pickles, list specs):
    """One key's result, or its exception raised."""
    cdef lcb.lcb_STATUS rc = slot.rc
    if rc == lcb.LCB_SUCCESS:
        if kind == REPLY_SUBDOC:
            return _subdoc_result(slot, key, op, specs, op == "mutate_in")
        if kind == REPLY_VALUE:
            value = _decode(slot, fmt, key, op, pickles)
            return Result(value, slot.flags, slot.cas) if extended else value
        if kind == REPLY_CAS:
            return slot.cas
        if kind == REPLY_COUNTER:
            return Result(slot.counter, 0, slot.cas) if extended else slot.counter
        if kind == REPLY_EXISTS:
            return Result(True, 0, slot.cas) if extended else True
        return True
    if rc == lcb.LCB_ERR_DOCUMENT_NOT_FOUND and kind == REPLY_EXISTS:
        return Result(False, 0, 0) if extended else False
    if rc == lcb.LCB_ERR_DOCUMENT_NOT_FOUND and quiet:
        if kind == REPLY_VALUE:
            return Result(None, 0, 0) if extended else None
        return None if kind == REPLY_SUBDOC else False
    if slot.applied:
        raise _unconfirmed(slot, key, op)
    if slot.outcome_unknown:
        raise _exc.OutcomeUnknownError(
            "the connection failed before the reply came: the change may have been applied (once), "
            "it was not sent again; read the key back before repeating it",
            error=rc, key=key, operation=op)
    if rc == NO_REPLY:
        raise _exc.ClientTemporaryFailError("no reply was received for the key", key=key, operation=op)
    raise _exc.exception_for_status(rc, key=key, operation=op, cas=slot.cas)


cdef object _collect(_Slots call):
    """The Python results of a call: one value, or per key a dict (a list for
    a plain multi-get). Every key is looked at first; then the first failure
    is raised with all per-key results (values and exceptions) attached."""
    cdef Py_ssize_t i
    cdef list keys = call.keys
    if not call.multi:
        return _reply(&call.slots[0], keys[0], call.op, call.reply, call.quiet_miss, call.extended,
                      call.fmt, call.pickles, call.specs)
    cdef list values = []
    first_error = None
    for i in range(call.n):
        try:
            value = _reply(&call.slots[i], keys[i], call.op, call.reply, call.quiet_miss, call.extended,
                           call.fmt, call.pickles, call.specs)
        except _exc.CouchbaseError as e:
            if first_error is None:
                first_error = e
            value = e
        values.append(value)
    if first_error is not None:
        first_error.all_results = dict(zip(keys, values))
        raise first_error
    return values if call.as_list else dict(zip(keys, values))


cdef int _with_options(_Slots call, object timeout, object durability=None, object persist_to=0,
                       object replicate_to=0) except -1:
    """A call's per-call options: a timeout overriding the connection's (the
    call is scheduled under it), a durability requirement: a level on its
    command, through its kind's setter, or copies to wait for once applied
    (_observe.pxi). Such a call goes through libcouchbase's own commands, as
    the packets built here carry no durability frame and are read without a
    mutation token."""
    cdef int persist, replicate
    cdef lcb.lcb_DURABILITY_LEVEL level
    if durability is not None and call.kind.set_durability == NULL:
        raise _exc.InternalError(f"{call.op} takes no durability")  # never: its signature has none
    if timeout is not None:
        call.timeout_us = _check_timeout("timeout", timeout, call.op)
    if durability is None and not persist_to and not replicate_to:
        return 0
    level = _check_durability(durability, call.op)
    persist = _check_copies(persist_to, "persist_to", 4, call.op)
    replicate = _check_copies(replicate_to, "replicate_to", 3, call.op)
    if level != lcb.LCB_DURABILITYLEVEL_NONE and (persist or replicate):
        raise _exc.ArgumentError("give durability= (synchronous, Couchbase Server 6.5 and later) or "
                                 "persist_to=/replicate_to= (observe-based), not both", operation=call.op)
    if level != lcb.LCB_DURABILITYLEVEL_NONE:
        _check_rc(call.kind.set_durability(call.cmd, level), call.op)
        if call.empty_store != NULL:
            _check_rc(call.kind.set_durability(call.empty_store, level), call.op)
    elif persist or replicate:
        _observe_after_reply(call, persist, replicate)
    call.forward_get = False
    call.store.forward = False
    return 0


cdef lcb.lcb_DURABILITY_LEVEL _check_durability(object durability, str op) except *:
    if durability is None:
        return lcb.LCB_DURABILITYLEVEL_NONE
    if isinstance(durability, int) and not isinstance(durability, bool) and 0 <= durability <= 3:
        return <lcb.lcb_DURABILITY_LEVEL> <int> Durability(durability)
    raise _exc.ArgumentError(f"durability must be a couchbase.Durability level, "
                             f"not {_exc.safe_repr(durability)}", operation=op)


cdef int _check_copies(object count, str what, int most, str op) except -1:
    value = _exact_int(count)
    if value is None or not 0 <= value <= most:
        raise _exc.ArgumentError(f"{what} must be a number of copies from 0 to {most}, not "
                                 f"{_exc.safe_repr(count)}", operation=op)
    return value


cdef class _Core:
    """What both connection kinds share: the options, the libcouchbase
    instance and how it is set up, and every operation (see above). Not
    used on its own: a driver subclass supplies _execute."""

    cdef lcb.lcb_INSTANCE *_instance
    cdef int _default_format
    cdef int _pickles  # PickleMode: what get does with a value stored as a pickle
    cdef bint _forward_large  # large stores skip libcouchbase's copies (_forward.pxi)
    cdef bint _forward_gets   # plain gets and exists skip libcouchbase's command layer (_forward.pxi)
    cdef Forward *_forwards   # large stores' packets not yet freed (_forward.pxi)
    # what reopening in a forked child takes; never shown
    cdef str _password
    cdef dict _settings
    cdef str _connstr  # what libcouchbase is given
    cdef tuple _secrets  # secret_forms of every password given; never changed once set
    cdef readonly object host
    cdef readonly object port
    cdef readonly object bucket
    cdef readonly object username
    cdef readonly str connection_string  # redacted: no password
    cdef public bint quiet

    # -- setting up an instance (both drivers) ------------------------------------

    cdef int _apply_options(self, dict options) except -1:
        """Take what _connect_options checked."""
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
        return 0

    cdef int _new_logger(self, lcb.lcb_LOGGER **logger) except -1:
        """libcouchbase's log into Python logging, secrets redacted (the log
        callback reads them through the logger's cookie: whoever frees the
        logger keeps self._secrets alive until then)."""
        _update_log_severity()
        self._check_setup(lcb.lcb_logger_create(logger, <void *> self._secrets))
        self._check_setup(lcb.lcb_logger_callback(logger[0], _on_log))
        return 0

    cdef int _set_up_instance(self, lcb.lcb_io_opt_t io, lcb.lcb_LOGGER *logger) except -1:
        """Create the instance on the driver's IO plugin (whose writes are
        guarded against replays, couchbase/_wire.h) and set it up: the
        connection's settings (a connection string option wins), the retry
        strategy that never replays a request that may have been applied,
        built packets where they send the same bytes, the callbacks."""
        cdef lcb.lcb_CREATEOPTS *options = NULL
        cdef lcb.lcb_STATUS rc
        cdef bytes connstr = self._connstr.encode("utf-8")
        cdef bytes user = self.username.encode("utf-8")
        cdef bytes pw = self._password.encode("utf-8")
        cdef bytes bucket = self.bucket.encode("utf-8")
        try:
            _libcouchbase_fixes.require(libcouchbase_changeset(), libcouchbase_version()[0])
        except BaseException:
            self._abandon_setup()
            raise
        self._check_setup(lcb.lcb_createopts_create(&options, lcb.LCB_TYPE_BUCKET))
        try:
            self._check_setup(lcb.lcb_createopts_connstr(options, connstr, len(connstr)))
            self._check_setup(lcb.lcb_createopts_bucket(options, bucket, len(bucket)))
            self._check_setup(lcb.lcb_createopts_credentials(options, user, len(user), pw, len(pw)))
            self._check_setup(lcb.lcb_createopts_io(options, io))
            self._check_setup(lcb.lcb_createopts_logger(options, logger))
            rc = lcb.lcb_create(&self._instance, options)
        finally:
            lcb.lcb_createopts_destroy(options)
        if rc != lcb.LCB_SUCCESS:
            self._instance = NULL
            self._check_setup(rc)
        given = _connstr_options(self._connstr)
        for name, value in self._settings.items():
            if name not in given:
                self._check_setup(lcb.lcb_cntl_string(self._instance, name.encode(), value.encode()))
        # never replay a request that may have been applied (_may_be_applied, _slots.pxi)
        self._check_setup(lcb.lcb_retry_strategy(self._instance, _retry_strategy))
        self._forward_large, self._forward_gets = self._may_forward()
        _install_callbacks(self._instance)
        return 0

    cdef tuple _may_forward(self):
        """Whether large stores, and plain gets (exists with them), may go out
        as packets built here (see _forward.pxi): only without collections (no
        collection ID in the key), without tracing or operation metrics
        (libcouchbase times only its own commands), where libcouchbase would
        send the same bytes (large stores: nothing compressed going out) and
        replies come uncompressed (gets: no compression negotiated)."""
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
        """A failed step of setting up: undo what was done, raise the
        bootstrap error."""
        if rc != lcb.LCB_SUCCESS:
            self._abandon_setup()
            raise self._connect_error(rc)
        return 0

    cdef void _abandon_setup(self) noexcept:
        """Free what a failed setup made (the driver's)."""
        pass

    cdef object _connect_error(self, lcb.lcb_STATUS rc):
        """Bootstrap failures, in the classes the 0.9 client raised."""
        return _bootstrap_error(rc, self.bucket, self.host, self.port, self.connection_string,
                                self._secrets)

    # -- the driver's part ---------------------------------------------------------

    cdef object _execute(self, _Slots call):
        """Send a prepared call; its result (sync) or a Future of it (asyncio)."""
        raise NotImplementedError

    # -- properties --------------------------------------------------------------------

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

    # -- get / lock ------------------------------------------------------------
    #
    # Each operation's docstring says what Connection returns; an
    # AsyncConnection's method returns a Future of the same.

    def get(self, keys, extended=False, format=None, quiet=None, ttl=None, *, replica=False, timeout=None):
        """Obtain the value(s) stored under one or several keys.

        ``get('k')`` returns the value; ``get(['a', 'b'])`` a list of values in
        the order asked. With ``extended=True`` a single get returns a
        ``Result(value, flags, cas)`` and a multi-get a dict key -> Result.
        ``format`` forces the decoder (FMT_PLAIN returns the raw bytes).
        ``quiet`` (default: the connection's) returns None (or
        ``Result(None, 0, 0)``) for a missing key instead of raising
        NotFoundError. ``ttl`` also sets a new expiry (get-and-touch).
        ``replica=True`` reads any copy, the active node's or a replica's:
        every copy is asked at once and the first good answer wins, so a
        slow or failed node does not hold the read up (a replica may lag
        behind the active copy). ``timeout`` (seconds) overrides the
        connection's for this call. On an AsyncConnection: a Future of the
        same.

        Example::

            value = cb.get('key')
            value, flags, cas = cb.get('key', extended=True)
        """
        if format is not None:
            format = _check_format(format, "get")
        cdef bint extended_result = _check_flag(extended, "extended", "get")
        cdef bint quiet_miss = self.quiet if quiet is None else _check_flag(quiet, "quiet", "get")
        cdef bint multi = _is_multi(keys)
        cdef _Slots call
        if _check_flag(replica, "replica", "get"):
            if ttl is not None:
                raise _exc.ArgumentError("a replica read cannot set an expiry (ttl); replicas take no "
                                         "changes", operation="get")
            call = self._replica_call(keys, multi, "get", True)
            call.shape(REPLY_VALUE, multi, quiet_miss, extended_result, format, not extended_result,
                       self._pickles)
            _with_options(call, timeout)
            return self._execute(call)
        call = _new_slots(_key_list(keys, "get") if multi else [keys], "get")
        if ttl is None:
            self._prepare_get(call, False, 0, 0)
        else:
            self._prepare_get(call, True, _check_ttl(ttl, "get"), 0)
        call.shape(REPLY_VALUE, multi, quiet_miss, extended_result, format, not extended_result,
                   self._pickles)
        _with_options(call, timeout)
        return self._execute(call)

    def get_all_replicas(self, keys, format=None, quiet=None, *, timeout=None):
        """Every copy of a key: the active node's and each replica's.

        Returns a list of ReplicaResult(value, flags, cas, is_replica), one
        per copy that answered with the document (copies may differ while
        replication catches up); for a list of keys a dict key -> list. A
        copy that is missing, or whose node is down or slow, is left out;
        NotFoundError if no copy has the key (``quiet``: an empty list).
        All copies are asked at once. On an AsyncConnection: a Future of the
        same.

        Example::

            newest = max(cb.get_all_replicas('key'), key=lambda copy: copy.cas)
        """
        if format is not None:
            format = _check_format(format, "get_all_replicas")
        cdef bint quiet_miss = self.quiet if quiet is None else _check_flag(quiet, "quiet",
                                                                            "get_all_replicas")
        cdef bint multi = _is_multi(keys)
        cdef _Slots call = self._replica_call(keys, multi, "get_all_replicas", False)
        call.shape(REPLY_VALUE, multi, quiet_miss, False, format, False, self._pickles)
        _with_options(call, timeout)
        return self._execute(call)

    cdef _Slots _replica_call(self, object keys, bint multi, str op, bint any):
        """A call with a slot per copy of each key (see _replica.pxi): the
        active copy and as many replicas as the bucket has."""
        cdef lcb.lcbvb_CONFIG *config = NULL
        if self._instance == NULL or lcb.lcb_cntl(self._instance, lcb.LCB_CNTL_GET, lcb.LCB_CNTL_VBCONFIG,
                                                  &config) != lcb.LCB_SUCCESS or config == NULL:
            raise _exc.exception_for_status(lcb.LCB_ERR_NO_CONFIGURATION, operation=op)
        cdef int copies = 1 + <int> lcb.lcbvb_get_nreplicas(config)
        cdef list key_list = _key_list(keys, op) if multi else [keys]
        cdef _Slots call = _new_slots([k for k in key_list for _ in range(copies)], op)
        call.set_replay_safe()
        _own(call, _new_replica_read(call, copies, any), &KIND_REPLICA)
        return call

    def lock(self, keys, ttl, *, timeout=None):
        """Get and lock one or several keys for ``ttl`` seconds (1 to 30).

        Returns ``Result(value, flags, cas)`` (a dict key -> Result for a list
        of keys); the CAS is what :meth:`unlock` or a CAS-checked mutation needs
        while the lock holds. Other mutations fail with a locked error until
        then. On an AsyncConnection: a Future of the same.

        Example::

            result = cb.lock('key', ttl=10)
            cb.unlock('key', result.cas)
        """
        cdef uint32_t lock_time = _check_ttl(ttl, "lock")
        if lock_time == 0 or lock_time > 30:
            raise _exc.ArgumentError(f"ttl must be from 1 to 30 seconds, not {ttl!r}", operation="lock")
        cdef bint multi = _is_multi(keys)
        cdef _Slots call = _new_slots(_key_list(keys, "lock") if multi else [keys], "lock")
        self._prepare_get(call, False, 0, lock_time)
        call.shape(REPLY_VALUE, multi, False, True, None, False, self._pickles)
        _with_options(call, timeout)
        return self._execute(call)

    cdef int _prepare_get(self, _Slots call, bint touch, uint32_t expiry, uint32_t lock_time) except -1:
        call.forward_get = self._forward_gets and not touch and not lock_time
        if not lock_time:  # a lock's replay would find the key locked
            call.set_replay_safe()
        cdef lcb.lcb_CMDGET *cmd = NULL
        _check_rc(lcb.lcb_cmdget_create(&cmd), call.op)
        _own(call, cmd, &KIND_GET)
        if touch:
            _check_rc(lcb.lcb_cmdget_expiry(cmd, expiry), call.op)
        if lock_time:
            _check_rc(lcb.lcb_cmdget_locktime(cmd, lock_time), call.op)
        return 0

    # -- set / add / replace / append / prepend --------------------------------

    def set(self, key, value=None, cas=0, ttl=0, format=None, *, durability=None, persist_to=0,
            replicate_to=0, timeout=None):
        """Unconditionally store a value (or a dict of key -> value).

        Returns the new CAS (int), or a dict key -> CAS for a multi-set.
        ``cas`` makes the store conditional on the document's current CAS
        (KeyExistsError if it changed; not allowed with a dict). ``ttl`` is in
        seconds (over 30 days: an absolute Unix time). ``format`` overrides
        ``default_format``. On an AsyncConnection: a Future of the same.

        Example::

            cb.set('key', 'value')
            cb.set({'foo': 'bar', 'baz': 'value'})
        """
        return self._store(lcb.LCB_STORE_UPSERT, "set", key, value, cas, ttl, format, timeout, durability,
                           persist_to, replicate_to)

    def add(self, key, value=None, ttl=0, format=None, *, durability=None, persist_to=0, replicate_to=0,
            timeout=None):
        """Store a value only if the key does not exist yet (KeyExistsError
        otherwise). Same conventions as :meth:`set`."""
        return self._store(lcb.LCB_STORE_INSERT, "add", key, value, 0, ttl, format, timeout, durability,
                           persist_to, replicate_to)

    def replace(self, key, value=None, cas=0, ttl=0, format=None, *, durability=None, persist_to=0,
                replicate_to=0, timeout=None):
        """Store a value only if the key already exists (NotFoundError
        otherwise). Same conventions as :meth:`set`."""
        return self._store(lcb.LCB_STORE_REPLACE, "replace", key, value, cas, ttl, format, timeout,
                           durability, persist_to, replicate_to)

    def append(self, key, value=None, cas=0, ttl=0, *, durability=None, persist_to=0, replicate_to=0,
               timeout=None):
        """Append bytes to an existing value (NotStoredError if the key does not
        exist). The format is always FMT_PLAIN; a dict appends to several keys.
        On an AsyncConnection: a Future of the same."""
        return self._store(lcb.LCB_STORE_APPEND, "append", key, value, cas, ttl, FMT_PLAIN, timeout,
                           durability, persist_to, replicate_to)

    def prepend(self, key, value=None, cas=0, ttl=0, *, durability=None, persist_to=0, replicate_to=0,
                timeout=None):
        """Prepend bytes to an existing value. Same conventions as :meth:`append`."""
        return self._store(lcb.LCB_STORE_PREPEND, "prepend", key, value, cas, ttl, FMT_PLAIN, timeout,
                           durability, persist_to, replicate_to)

    cdef object _store(self, lcb.lcb_STORE_OPERATION operation, str op, object key, object value,
                       object cas, object ttl, object format, object timeout, object durability,
                       object persist_to, object replicate_to):
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
        cdef _Slots call = _new_slots([k for k, _ in items], op)
        # every value is encoded before anything is sent
        call.set_data([_encode(v, fmt, op, k) for k, v in items])
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
        call.store.forward = self._forward_large and datatype == 0
        call.store.opcode = _store_opcode(operation)
        call.store.flags = <uint32_t> fmt
        call.store.expiry = expiry
        call.store.cas = cas_value
        cdef lcb.lcb_CMDSTORE *cmd = NULL
        cdef lcb.lcb_CMDSTORE *empty = NULL
        cdef lcb.lcb_STATUS rc
        _check_rc(_store_command(&cmd, operation, &call.store, datatype), op)
        _own(call, cmd, &KIND_STORE)
        if call.has_empty_value():
            # lcb_cmdstore_value ignores an empty value, which would leave the
            # previous key's value in a shared command: empty ones get their own
            rc = _store_command(&empty, operation, &call.store, datatype)
            call.empty_store = empty
            _check_rc(rc, op)
        call.shape(REPLY_CAS, multi)
        _with_options(call, timeout, durability, persist_to, replicate_to)
        return self._execute(call)

    # -- delete ----------------------------------------------------------------

    def delete(self, keys, cas=0, quiet=None, *, durability=None, persist_to=0, replicate_to=0, timeout=None):
        """Remove one key, a list of keys, or a dict of key -> CAS.

        Returns True (False for a missing key with ``quiet``); a dict key ->
        bool for several keys. With ``cas`` the key is removed only if its CAS
        still matches (KeyExistsError otherwise). On an AsyncConnection: a
        Future of the same.

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
        cdef _Slots call = _new_slots(key_list, "delete")
        call.set_cas(cas_values)
        cdef lcb.lcb_CMDREMOVE *cmd = NULL
        _check_rc(lcb.lcb_cmdremove_create(&cmd), "delete")
        _own(call, cmd, &KIND_REMOVE)
        call.shape(REPLY_TRUE, multi, quiet_miss)
        _with_options(call, timeout, durability, persist_to, replicate_to)
        return self._execute(call)

    # -- touch / unlock -----------------------------------------------------------

    def touch(self, keys, ttl, *, timeout=None):
        """Set a new expiry (``ttl`` seconds; 0 removes it) on one key or a list
        of keys, without reading them. Returns True, or a dict key -> True.
        On an AsyncConnection: a Future of the same.

        Example::

            cb.touch('session', ttl=1800)
        """
        cdef uint32_t expiry = _check_ttl(ttl, "touch")
        cdef bint multi = _is_multi(keys)
        cdef _Slots call = _new_slots(_key_list(keys, "touch") if multi else [keys], "touch")
        call.set_replay_safe()  # a replay sets the same expiry again
        cdef lcb.lcb_CMDTOUCH *cmd = NULL
        _check_rc(lcb.lcb_cmdtouch_create(&cmd), "touch")
        _own(call, cmd, &KIND_TOUCH)
        _check_rc(lcb.lcb_cmdtouch_expiry(cmd, expiry), "touch")
        call.shape(REPLY_TRUE, multi)
        _with_options(call, timeout)
        return self._execute(call)

    def unlock(self, key, cas=None, *, timeout=None):
        """Release a lock taken with :meth:`lock`, given the CAS it returned.
        ``unlock({'k1': cas1, 'k2': cas2})`` unlocks several. Returns True, or
        a dict key -> True. On an AsyncConnection: a Future of the same.

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
        cdef _Slots call = _new_slots([k for k, _ in pairs], "unlock")
        call.set_cas(cas_values)
        cdef lcb.lcb_CMDUNLOCK *cmd = NULL
        _check_rc(lcb.lcb_cmdunlock_create(&cmd), "unlock")
        _own(call, cmd, &KIND_UNLOCK)
        call.shape(REPLY_TRUE, multi)
        _with_options(call, timeout)
        return self._execute(call)

    # -- incr / decr ------------------------------------------------------------

    def incr(self, keys, amount=1, initial=None, ttl=0, extended=False, *, durability=None, persist_to=0,
             replicate_to=0, timeout=None):
        """Increment the numeric value of a key (or of each key of a list).

        ``initial`` is stored (and ``amount`` ignored) if the key does not
        exist; without it a missing key raises NotFoundError. A value that is
        not a number raises DeltaBadvalError. Returns the new value (int), a
        ``Result(value, flags, cas)`` with ``extended``, or a dict key -> value
        for a list of keys. On an AsyncConnection: a Future of the same.

        Example::

            cb.incr('counter', amount=20, initial=5)
        """
        return self._counter("incr", keys, amount, initial, ttl, extended, 1, timeout, durability,
                             persist_to, replicate_to)

    def decr(self, keys, amount=1, initial=None, ttl=0, extended=False, *, durability=None, persist_to=0,
             replicate_to=0, timeout=None):
        """Decrement the numeric value of a key; it stops at 0. Same conventions
        as :meth:`incr`.

        Example::

            cb.decr('stock', amount=2)
        """
        return self._counter("decr", keys, amount, initial, ttl, extended, -1, timeout, durability,
                             persist_to, replicate_to)

    cdef object _counter(self, str op, object keys, object amount, object initial, object ttl,
                         object extended, int sign, object timeout, object durability, object persist_to,
                         object replicate_to):
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
        cdef _Slots call = _new_slots(_key_list(keys, op) if multi else [keys], op)
        cdef lcb.lcb_CMDCOUNTER *cmd = NULL
        _check_rc(lcb.lcb_cmdcounter_create(&cmd), op)
        _own(call, cmd, &KIND_COUNTER)
        _check_rc(lcb.lcb_cmdcounter_delta(cmd, <int64_t> delta * sign), op)
        if initial is not None:
            _check_rc(lcb.lcb_cmdcounter_initial(cmd, initial_value), op)
            _check_rc(lcb.lcb_cmdcounter_expiry(cmd, expiry), op)
        call.shape(REPLY_COUNTER, multi, False, extended_result)
        _with_options(call, timeout, durability, persist_to, replicate_to)
        return self._execute(call)

    # -- exists ----------------------------------------------------------------

    def exists(self, keys, extended=False, *, timeout=None):
        """Whether a key exists, without reading its value.

        Returns True or False (``Result(found, 0, cas)`` with ``extended``);
        for a list of keys a dict key -> bool. A deleted or expired document
        does not exist. ``timeout`` (seconds) overrides the connection's for
        this call. On an AsyncConnection: a Future of the same.

        Example::

            if not cb.exists('user:1'):
                cb.add('user:1', {})
        """
        cdef bint extended_result = _check_flag(extended, "extended", "exists")
        cdef bint multi = _is_multi(keys)
        cdef _Slots call = _new_slots(_key_list(keys, "exists") if multi else [keys], "exists")
        call.set_replay_safe()
        call.forward_get = self._forward_gets  # a built GET_META, where gets are built
        cdef lcb.lcb_CMDEXISTS *cmd = NULL
        _check_rc(lcb.lcb_cmdexists_create(&cmd), "exists")
        _own(call, cmd, &KIND_EXISTS)
        call.shape(REPLY_EXISTS, multi, False, extended_result)
        _with_options(call, timeout)
        return self._execute(call)

    # -- sub-document ------------------------------------------------------------

    def lookup_in(self, keys, specs, *, quiet=None, timeout=None):
        """Read paths inside a JSON document without fetching all of it.

        ``specs`` is a list of couchbase.subdocument reads (``get``,
        ``exists``, ``count``; at most 16). Returns a SubdocResult: ``r[i]``
        is path i's value, or raises that path's error (PathNotFoundError, ...)
        while the other paths still answer; ``r.cas`` is the document's CAS.
        A missing document raises NotFoundError (None with ``quiet``). For a
        list of keys, a dict key -> SubdocResult. On an AsyncConnection: a
        Future of the same.

        Example::

            import couchbase.subdocument as SD
            name, logins = cb.lookup_in('user:1', [SD.get('name'), SD.count('logins')])
        """
        cdef bint quiet_miss = self.quiet if quiet is None else _check_flag(quiet, "quiet", "lookup_in")
        cdef bint multi = _is_multi(keys)
        cdef _Slots call = _new_slots(_key_list(keys, "lookup_in") if multi else [keys], "lookup_in")
        call.set_replay_safe()
        self._prepare_subdoc(call, specs, True)
        call.shape(REPLY_SUBDOC, multi, quiet_miss)
        _with_options(call, timeout)
        return self._execute(call)

    def mutate_in(self, key, specs, cas=0, ttl=0, *, store_semantics=None, durability=None, persist_to=0,
                  replicate_to=0, timeout=None):
        """Change paths inside a JSON document, all or none.

        ``specs`` is a list of couchbase.subdocument changes (``upsert``,
        ``insert``, ``replace``, ``remove``, ``array_*``, ``counter``; at most
        16). If one path fails, its error is raised (naming the path and its
        index) and nothing is applied. ``cas`` makes the change conditional,
        ``ttl`` sets the expiry, ``store_semantics`` (a
        ``subdocument.StoreSemantics``) says whether the document must exist
        (REPLACE, the default), is created if missing (UPSERT) or must not
        exist (INSERT). Returns a SubdocResult (counters' new values, the new
        CAS). On an AsyncConnection: a Future of the same.

        Example::

            import couchbase.subdocument as SD
            cb.mutate_in('user:1', [SD.upsert('name', 'Ada'), SD.increment('logins')])
        """
        cdef uint64_t cas_value = _check_cas(cas, "mutate_in", key)
        cdef uint32_t expiry = _check_ttl(ttl, "mutate_in", key)
        if store_semantics is None:
            store_semantics = _subdoc.StoreSemantics.REPLACE
        semantics = _STORE_SEMANTICS.get(store_semantics) if isinstance(
            store_semantics, _subdoc.StoreSemantics) else None
        if semantics is None:
            raise _exc.ArgumentError(f"store_semantics must be a subdocument.StoreSemantics, not "
                                     f"{_exc.safe_repr(store_semantics)}", key=key, operation="mutate_in")
        if cas_value and store_semantics is _subdoc.StoreSemantics.INSERT:
            raise _exc.ArgumentError("a CAS cannot be given when creating the document (INSERT)", key=key,
                                     operation="mutate_in")
        cdef _Slots call = _new_slots([key], "mutate_in")
        cdef lcb.lcb_CMDSUBDOC *cmd = self._prepare_subdoc(call, specs, False)
        _check_rc(lcb.lcb_cmdsubdoc_cas(cmd, cas_value), "mutate_in")
        _check_rc(lcb.lcb_cmdsubdoc_expiry(cmd, expiry), "mutate_in")
        _check_rc(lcb.lcb_cmdsubdoc_store_semantics(cmd, semantics), "mutate_in")
        call.shape(REPLY_SUBDOC, False)
        _with_options(call, timeout, durability, persist_to, replicate_to)
        return self._execute(call)

    cdef lcb.lcb_CMDSUBDOC *_prepare_subdoc(self, _Slots call, object specs, bint lookup) except NULL:
        call.subdoc_specs = _subdoc_specs(specs, lookup, call.op)
        call.specs = list(specs)
        cdef lcb.lcb_CMDSUBDOC *cmd = NULL
        _check_rc(lcb.lcb_cmdsubdoc_create(&cmd), call.op)
        _own(call, cmd, &KIND_SUBDOC)
        _check_rc(lcb.lcb_cmdsubdoc_specs(cmd, call.subdoc_specs), call.op)
        return cmd

    # -- stats ---------------------------------------------------------------------

    def stats(self, stats=None, *, timeout=None):
        """Request server statistics from every node.

        ``stats()`` gives the default group; ``stats('memory')`` or a list of
        groups the named ones. Returns a dict stat name -> {node: value}, with
        numbers as int or float. ``timeout`` (seconds) overrides the
        connection's for this call. On an AsyncConnection: a Future of the
        same (done once every node answered, failed or timed out).

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
        cdef _Slots call = _new_stats_slots(groups)
        cdef lcb.lcb_CMDSTATS *cmd = NULL
        _check_rc(lcb.lcb_cmdstats_create(&cmd), "stats")
        _own(call, cmd, &KIND_STATS)
        _with_options(call, timeout)
        return self._execute(call)
