# Declarations of the parts of libcouchbase's C API that the binding uses.
# One extern block per header, C spellings kept; opaque types stay opaque.
# Every function is callable without the GIL (the headers are plain C).

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "libcouchbase/couchbase.h" nogil:
    ctypedef int lcb_STATUS
    ctypedef struct lcb_INSTANCE:
        pass
    ctypedef struct lcb_CREATEOPTS:
        pass
    ctypedef void lcb_RESPBASE
    ctypedef void (*lcb_RESPCALLBACK)(lcb_INSTANCE *instance, int cbtype,
                                      const lcb_RESPBASE *resp) noexcept nogil

    ctypedef enum lcb_INSTANCE_TYPE:
        LCB_TYPE_BUCKET
        LCB_TYPE_CLUSTER

    ctypedef enum lcb_CALLBACK_TYPE:
        LCB_CALLBACK_DEFAULT
        LCB_CALLBACK_GET
        LCB_CALLBACK_STORE
        LCB_CALLBACK_COUNTER
        LCB_CALLBACK_TOUCH
        LCB_CALLBACK_REMOVE
        LCB_CALLBACK_UNLOCK
        LCB_CALLBACK_STATS

    ctypedef enum lcb_WAITFLAGS:
        LCB_WAIT_DEFAULT
        LCB_WAIT_NOCHECK

    ctypedef enum lcb_STORE_OPERATION:
        LCB_STORE_UPSERT
        LCB_STORE_INSERT
        LCB_STORE_REPLACE
        LCB_STORE_APPEND
        LCB_STORE_PREPEND

    ctypedef struct lcb_io_opt_st:
        pass
    ctypedef lcb_io_opt_st *lcb_io_opt_t

    ctypedef struct lcb_LOGGER:
        pass

    # instance lifecycle
    lcb_STATUS lcb_createopts_create(lcb_CREATEOPTS **options, lcb_INSTANCE_TYPE type)
    lcb_STATUS lcb_createopts_destroy(lcb_CREATEOPTS *options)
    lcb_STATUS lcb_createopts_connstr(lcb_CREATEOPTS *options, const char *connstr, size_t connstr_len)
    lcb_STATUS lcb_createopts_bucket(lcb_CREATEOPTS *options, const char *bucket, size_t bucket_len)
    lcb_STATUS lcb_createopts_credentials(lcb_CREATEOPTS *options, const char *username, size_t username_len,
                                          const char *password, size_t password_len)
    lcb_STATUS lcb_createopts_io(lcb_CREATEOPTS *options, lcb_io_opt_st *io)
    lcb_STATUS lcb_createopts_logger(lcb_CREATEOPTS *options, const lcb_LOGGER *logger)
    lcb_STATUS lcb_create(lcb_INSTANCE **instance, const lcb_CREATEOPTS *options)
    lcb_STATUS lcb_connect(lcb_INSTANCE *instance)
    lcb_STATUS lcb_get_bootstrap_status(lcb_INSTANCE *instance)
    lcb_STATUS lcb_wait(lcb_INSTANCE *instance, lcb_WAITFLAGS flags)
    void lcb_destroy(lcb_INSTANCE *instance)
    void lcb_breakout(lcb_INSTANCE *instance)
    lcb_RESPCALLBACK lcb_install_callback(lcb_INSTANCE *instance, int cbtype, lcb_RESPCALLBACK cb)
    void lcb_sched_enter(lcb_INSTANCE *instance)
    void lcb_sched_leave(lcb_INSTANCE *instance)
    void lcb_sched_fail(lcb_INSTANCE *instance)
    const char *lcb_get_version(uint32_t *version)

    # get (also get-and-touch and get-and-lock)
    ctypedef struct lcb_RESPGET:
        pass
    ctypedef struct lcb_CMDGET:
        pass
    lcb_STATUS lcb_respget_status(const lcb_RESPGET *resp)
    lcb_STATUS lcb_respget_cookie(const lcb_RESPGET *resp, void **cookie)
    lcb_STATUS lcb_respget_cas(const lcb_RESPGET *resp, uint64_t *cas)
    lcb_STATUS lcb_respget_datatype(const lcb_RESPGET *resp, uint8_t *datatype)
    lcb_STATUS lcb_respget_flags(const lcb_RESPGET *resp, uint32_t *flags)
    lcb_STATUS lcb_respget_value(const lcb_RESPGET *resp, const char **value, size_t *value_len)
    lcb_STATUS lcb_cmdget_create(lcb_CMDGET **cmd)
    lcb_STATUS lcb_cmdget_destroy(lcb_CMDGET *cmd)
    lcb_STATUS lcb_cmdget_key(lcb_CMDGET *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdget_expiry(lcb_CMDGET *cmd, uint32_t expiration)
    lcb_STATUS lcb_cmdget_locktime(lcb_CMDGET *cmd, uint32_t duration)
    lcb_STATUS lcb_get(lcb_INSTANCE *instance, void *cookie, const lcb_CMDGET *cmd)

    # store: set/add/replace/append/prepend
    ctypedef struct lcb_RESPSTORE:
        pass
    ctypedef struct lcb_CMDSTORE:
        pass
    lcb_STATUS lcb_respstore_status(const lcb_RESPSTORE *resp)
    lcb_STATUS lcb_respstore_cookie(const lcb_RESPSTORE *resp, void **cookie)
    lcb_STATUS lcb_respstore_cas(const lcb_RESPSTORE *resp, uint64_t *cas)
    lcb_STATUS lcb_cmdstore_create(lcb_CMDSTORE **cmd, lcb_STORE_OPERATION operation)
    lcb_STATUS lcb_cmdstore_destroy(lcb_CMDSTORE *cmd)
    lcb_STATUS lcb_cmdstore_key(lcb_CMDSTORE *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdstore_value(lcb_CMDSTORE *cmd, const char *value, size_t value_len)
    lcb_STATUS lcb_cmdstore_expiry(lcb_CMDSTORE *cmd, uint32_t expiration)
    lcb_STATUS lcb_cmdstore_cas(lcb_CMDSTORE *cmd, uint64_t cas)
    lcb_STATUS lcb_cmdstore_flags(lcb_CMDSTORE *cmd, uint32_t flags)
    lcb_STATUS lcb_cmdstore_datatype(lcb_CMDSTORE *cmd, uint8_t datatype)
    lcb_STATUS lcb_store(lcb_INSTANCE *instance, void *cookie, const lcb_CMDSTORE *cmd)

    # remove
    ctypedef struct lcb_RESPREMOVE:
        pass
    ctypedef struct lcb_CMDREMOVE:
        pass
    lcb_STATUS lcb_respremove_status(const lcb_RESPREMOVE *resp)
    lcb_STATUS lcb_respremove_cookie(const lcb_RESPREMOVE *resp, void **cookie)
    lcb_STATUS lcb_respremove_cas(const lcb_RESPREMOVE *resp, uint64_t *cas)
    lcb_STATUS lcb_cmdremove_create(lcb_CMDREMOVE **cmd)
    lcb_STATUS lcb_cmdremove_destroy(lcb_CMDREMOVE *cmd)
    lcb_STATUS lcb_cmdremove_key(lcb_CMDREMOVE *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdremove_cas(lcb_CMDREMOVE *cmd, uint64_t cas)
    lcb_STATUS lcb_remove(lcb_INSTANCE *instance, void *cookie, const lcb_CMDREMOVE *cmd)

    # counter: incr/decr
    ctypedef struct lcb_RESPCOUNTER:
        pass
    ctypedef struct lcb_CMDCOUNTER:
        pass
    lcb_STATUS lcb_respcounter_status(const lcb_RESPCOUNTER *resp)
    lcb_STATUS lcb_respcounter_cookie(const lcb_RESPCOUNTER *resp, void **cookie)
    lcb_STATUS lcb_respcounter_cas(const lcb_RESPCOUNTER *resp, uint64_t *cas)
    lcb_STATUS lcb_respcounter_value(const lcb_RESPCOUNTER *resp, uint64_t *value)
    lcb_STATUS lcb_cmdcounter_create(lcb_CMDCOUNTER **cmd)
    lcb_STATUS lcb_cmdcounter_destroy(lcb_CMDCOUNTER *cmd)
    lcb_STATUS lcb_cmdcounter_key(lcb_CMDCOUNTER *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdcounter_expiry(lcb_CMDCOUNTER *cmd, uint32_t expiration)
    lcb_STATUS lcb_cmdcounter_delta(lcb_CMDCOUNTER *cmd, int64_t number)
    lcb_STATUS lcb_cmdcounter_initial(lcb_CMDCOUNTER *cmd, uint64_t number)
    lcb_STATUS lcb_counter(lcb_INSTANCE *instance, void *cookie, const lcb_CMDCOUNTER *cmd)

    # touch
    ctypedef struct lcb_RESPTOUCH:
        pass
    ctypedef struct lcb_CMDTOUCH:
        pass
    lcb_STATUS lcb_resptouch_status(const lcb_RESPTOUCH *resp)
    lcb_STATUS lcb_resptouch_cookie(const lcb_RESPTOUCH *resp, void **cookie)
    lcb_STATUS lcb_resptouch_cas(const lcb_RESPTOUCH *resp, uint64_t *cas)
    lcb_STATUS lcb_cmdtouch_create(lcb_CMDTOUCH **cmd)
    lcb_STATUS lcb_cmdtouch_destroy(lcb_CMDTOUCH *cmd)
    lcb_STATUS lcb_cmdtouch_key(lcb_CMDTOUCH *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdtouch_expiry(lcb_CMDTOUCH *cmd, uint32_t expiration)
    lcb_STATUS lcb_touch(lcb_INSTANCE *instance, void *cookie, const lcb_CMDTOUCH *cmd)

    # unlock
    ctypedef struct lcb_RESPUNLOCK:
        pass
    ctypedef struct lcb_CMDUNLOCK:
        pass
    lcb_STATUS lcb_respunlock_status(const lcb_RESPUNLOCK *resp)
    lcb_STATUS lcb_respunlock_cookie(const lcb_RESPUNLOCK *resp, void **cookie)
    lcb_STATUS lcb_respunlock_cas(const lcb_RESPUNLOCK *resp, uint64_t *cas)
    lcb_STATUS lcb_cmdunlock_create(lcb_CMDUNLOCK **cmd)
    lcb_STATUS lcb_cmdunlock_destroy(lcb_CMDUNLOCK *cmd)
    lcb_STATUS lcb_cmdunlock_key(lcb_CMDUNLOCK *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdunlock_cas(lcb_CMDUNLOCK *cmd, uint64_t cas)
    lcb_STATUS lcb_unlock(lcb_INSTANCE *instance, void *cookie, const lcb_CMDUNLOCK *cmd)


cdef extern from "libcouchbase/couchbase.h" nogil:
    # Stats are exported by the library (LIBCOUCHBASE_API) but declared only in
    # its private src/internal.h, so their prototypes are spelled out here.
    """
    typedef struct lcb_CMDSTATS_ lcb_CMDSTATS;
    typedef struct lcb_RESPSTATS_ lcb_RESPSTATS;
    LIBCOUCHBASE_API lcb_STATUS lcb_cmdstats_create(lcb_CMDSTATS **cmd);
    LIBCOUCHBASE_API lcb_STATUS lcb_cmdstats_destroy(lcb_CMDSTATS *cmd);
    LIBCOUCHBASE_API lcb_STATUS lcb_cmdstats_key(lcb_CMDSTATS *cmd, const char *key, size_t key_len);
    LIBCOUCHBASE_API lcb_STATUS lcb_stats(lcb_INSTANCE *instance, void *cookie, const lcb_CMDSTATS *cmd);
    LIBCOUCHBASE_API lcb_STATUS lcb_respstats_status(const lcb_RESPSTATS *resp);
    LIBCOUCHBASE_API lcb_STATUS lcb_respstats_cookie(const lcb_RESPSTATS *resp, void **cookie);
    LIBCOUCHBASE_API lcb_STATUS lcb_respstats_key(const lcb_RESPSTATS *resp, const char **key,
                                                  size_t *key_len);
    LIBCOUCHBASE_API lcb_STATUS lcb_respstats_value(const lcb_RESPSTATS *resp, const char **value,
                                                    size_t *value_len);
    LIBCOUCHBASE_API lcb_STATUS lcb_respstats_server(const lcb_RESPSTATS *resp, const char **server,
                                                     size_t *server_len);
    """
    ctypedef struct lcb_CMDSTATS:
        pass
    ctypedef struct lcb_RESPSTATS:
        pass
    lcb_STATUS lcb_cmdstats_create(lcb_CMDSTATS **cmd)
    lcb_STATUS lcb_cmdstats_destroy(lcb_CMDSTATS *cmd)
    lcb_STATUS lcb_cmdstats_key(lcb_CMDSTATS *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_stats(lcb_INSTANCE *instance, void *cookie, const lcb_CMDSTATS *cmd)
    lcb_STATUS lcb_respstats_status(const lcb_RESPSTATS *resp)
    lcb_STATUS lcb_respstats_cookie(const lcb_RESPSTATS *resp, void **cookie)
    lcb_STATUS lcb_respstats_key(const lcb_RESPSTATS *resp, const char **key, size_t *key_len)
    lcb_STATUS lcb_respstats_value(const lcb_RESPSTATS *resp, const char **value, size_t *value_len)
    lcb_STATUS lcb_respstats_server(const lcb_RESPSTATS *resp, const char **server, size_t *server_len)


cdef extern from "libcouchbase/pktfwd.h" nogil:
    # Raw packet forwarding: a store whose packet the binding builds itself, the
    # value sent from the caller's buffer without a copy (see _forward.pxi).
    ctypedef struct lcb_IOV:
        void *iov_base
        size_t iov_len
    ctypedef enum lcb_KVBUFTYPE:
        LCB_KV_COPY
        LCB_KV_IOV
    ctypedef struct lcb_CONTIGBUF:
        const void *bytes
        size_t nbytes
    ctypedef struct lcb_FRAGBUF:
        lcb_IOV *iov
        unsigned int niov
        unsigned int total_length
    ctypedef union _lcb_VALBUF_u:
        lcb_CONTIGBUF contig
        lcb_FRAGBUF multi
    ctypedef struct lcb_VALBUF:
        lcb_KVBUFTYPE vtype
        _lcb_VALBUF_u u_buf
    ctypedef struct lcb_CMDPKTFWD:
        int version
        lcb_VALBUF vb
        char nomap              # send to server_index, not to the node the key maps to
        uint16_t server_index
    ctypedef struct lcb_PKTFWDRESP:
        const uint8_t *header  # the reply's 24-byte header (NULL with an error)
        lcb_IOV *iovs          # the whole reply, header included (nitems: 1)
        unsigned int nitems
    ctypedef void (*lcb_pktfwd_callback)(lcb_INSTANCE *instance, const void *cookie, lcb_STATUS err,
                                         lcb_PKTFWDRESP *resp) noexcept nogil
    ctypedef void (*lcb_pktflushed_callback)(lcb_INSTANCE *instance, const void *cookie) noexcept nogil
    lcb_STATUS lcb_pktfwd3(lcb_INSTANCE *instance, const void *cookie, const lcb_CMDPKTFWD *cmd)
    lcb_pktfwd_callback lcb_set_pktfwd_callback(lcb_INSTANCE *instance, lcb_pktfwd_callback callback)
    lcb_pktflushed_callback lcb_set_pktflushed_callback(lcb_INSTANCE *instance,
                                                        lcb_pktflushed_callback callback)


cdef extern from "libcouchbase/error.h" nogil:
    lcb_STATUS LCB_SUCCESS
    lcb_STATUS LCB_ERR_DOCUMENT_NOT_FOUND
    lcb_STATUS LCB_ERR_NO_MEMORY
    lcb_STATUS LCB_ERR_SDK_INTERNAL
    # what a store's reply status means (see _forward.pxi)
    lcb_STATUS LCB_ERR_DOCUMENT_EXISTS
    lcb_STATUS LCB_ERR_CAS_MISMATCH
    lcb_STATUS LCB_ERR_VALUE_TOO_LARGE
    lcb_STATUS LCB_ERR_KVENGINE_INVALID_PACKET
    lcb_STATUS LCB_ERR_PROTOCOL_ERROR
    lcb_STATUS LCB_ERR_NOT_STORED
    lcb_STATUS LCB_ERR_DOCUMENT_LOCKED
    lcb_STATUS LCB_ERR_TEMPORARY_FAILURE
    lcb_STATUS LCB_ERR_AUTHENTICATION_FAILURE
    lcb_STATUS LCB_ERR_UNSUPPORTED_OPERATION
    lcb_STATUS LCB_ERR_BUCKET_NOT_FOUND
    lcb_STATUS LCB_ERR_RATE_LIMITED
    lcb_STATUS LCB_ERR_QUOTA_LIMITED
    lcb_STATUS LCB_ERR_SOCKET_SHUTDOWN
    lcb_STATUS LCB_ERR_CONNECTION_RESET
    lcb_STATUS LCB_ERR_CONNECTION_REFUSED
    lcb_STATUS LCB_ERR_CONNECT_ERROR
    lcb_STATUS LCB_ERR_NODE_UNREACHABLE
    lcb_STATUS LCB_ERR_NETWORK
    lcb_STATUS LCB_ERR_CANNOT_GET_PORT
    lcb_STATUS LCB_ERR_FD_LIMIT_REACHED
    lcb_STATUS LCB_ERR_NAMESERVER
    lcb_STATUS LCB_ERR_UNKNOWN_HOST
    lcb_STATUS LCB_ERR_REQUEST_CANCELED
    lcb_STATUS LCB_ERR_MAP_CHANGED
    lcb_STATUS LCB_ERR_SUBDOC_PATH_NOT_FOUND  # an exists spec's "no" (_subdoc.pxi)
    # observe-based durability that was not confirmed (_observe.pxi)
    lcb_STATUS LCB_ERR_TIMEOUT
    lcb_STATUS LCB_ERR_MUTATION_LOST
    # a replica read's copy that could not be sent (_replica.pxi)
    lcb_STATUS LCB_ERR_NO_CONFIGURATION
    lcb_STATUS LCB_ERR_NO_MATCHING_SERVER
    lcb_STATUS LCB_ERR_INVALID_ARGUMENT
    lcb_STATUS lcb_errmap_default(lcb_INSTANCE *instance, uint16_t code)

    # retries: which requests libcouchbase sends again, and when
    ctypedef enum lcb_RETRY_REASON:
        LCB_RETRY_REASON_SOCKET_NOT_AVAILABLE
        LCB_RETRY_REASON_NODE_NOT_AVAILABLE
        LCB_RETRY_REASON_KV_NOT_MY_VBUCKET
        LCB_RETRY_REASON_KV_COLLECTION_OUTDATED
        LCB_RETRY_REASON_KV_ERROR_MAP_RETRY_INDICATED
        LCB_RETRY_REASON_KV_LOCKED
        LCB_RETRY_REASON_KV_TEMPORARY_FAILURE
        LCB_RETRY_REASON_KV_SYNC_WRITE_IN_PROGRESS
        LCB_RETRY_REASON_KV_SYNC_WRITE_RE_COMMIT_IN_PROGRESS
        LCB_RETRY_REASON_SERVICE_RESPONSE_CODE_INDICATED
    ctypedef struct lcb_RETRY_REQUEST:
        pass
    ctypedef struct lcb_RETRY_ACTION:
        uint32_t should_retry
        uint32_t retry_after_ms
    ctypedef lcb_RETRY_ACTION (*lcb_RETRY_STRATEGY)(lcb_RETRY_REQUEST *req,
                                                    lcb_RETRY_REASON reason) noexcept nogil
    int lcb_retry_reason_allows_non_idempotent_retry(lcb_RETRY_REASON code)
    int lcb_retry_request_is_idempotent(lcb_RETRY_REQUEST *req)
    void *lcb_retry_request_operation_cookie(lcb_RETRY_REQUEST *req)
    lcb_STATUS lcb_retry_strategy(lcb_INSTANCE *instance, lcb_RETRY_STRATEGY strategy)
    const char *lcb_strerror_short(lcb_STATUS error)
    const char *lcb_strerror_long(lcb_STATUS error)


cdef extern from "libcouchbase/cntl.h" nogil:
    int LCB_CNTL_GET
    int LCB_CNTL_ENABLE_COLLECTIONS
    int LCB_CNTL_COMPRESSION_OPTS
    int LCB_CNTL_ENABLE_TRACING
    int LCB_CNTL_ENABLE_OP_METRICS
    int LCB_CNTL_CHANGESET
    int LCB_COMPRESS_OUT
    lcb_STATUS lcb_cntl(lcb_INSTANCE *instance, int mode, int cmd, void *arg)
    lcb_STATUS lcb_cntl_string(lcb_INSTANCE *instance, const char *key, const char *value)


cdef extern from "libcouchbase/iops.h" nogil:
    lcb_STATUS lcb_destroy_io_ops(lcb_io_opt_t op)


cdef extern from "_wire.h" nogil:
    # libcouchbase's select plugin, its writes guarded against replays of
    # requests written and never answered (see couchbase/_wire.h).
    ctypedef struct lcbpy_IO:
        uint64_t replays_stopped
    lcb_STATUS lcbpy_create_io(lcb_io_opt_t *io)


cdef extern from "libcouchbase/iops.h" nogil:
    # A waker: a socket watched by libcouchbase's own event loop. Writing to
    # its peer from another thread breaks the loop out (lcb_breakout), so a
    # thread waiting in lcb_wait can send calls queued meanwhile at once.
    """
    typedef struct {
        lcb_io_opt_t io;
        lcb_ev_procs ev;
        lcb_bsd_procs bsd;
        void *event;
        lcb_socket_t sock;
        lcb_INSTANCE *instance;
    } lcbpy_WAKER;

    static void lcbpy_waker_fired(lcb_socket_t sock, short events, void *arg)
    {
        lcbpy_WAKER *waker = (lcbpy_WAKER *)arg;
        char buf[64];
        while (waker->bsd.recv(waker->io, sock, buf, sizeof(buf), 0) > 0) {
        }
        lcb_breakout(waker->instance);
        (void)events;
    }

    static int lcbpy_waker_start(lcbpy_WAKER *waker, lcb_io_opt_t io, lcb_INSTANCE *instance,
                                 lcb_socket_t sock)
    {
        lcb_loop_procs loop;
        lcb_timer_procs timer;
        lcb_completion_procs completion;
        lcb_iomodel_t model;
        lcb_io_procs_fn get_procs;
        memset(waker, 0, sizeof(*waker));
        memset(&loop, 0, sizeof(loop));
        memset(&timer, 0, sizeof(timer));
        memset(&completion, 0, sizeof(completion));
        if (io->version == 3) {
            get_procs = io->v.v3.get_procs;
        } else if (io->version == 2) {
            get_procs = io->v.v2.get_procs;
        } else {
            return -1;
        }
        get_procs(LCB_IOPROCS_VERSION, &loop, &timer, &waker->bsd, &waker->ev, &completion, &model);
        if (model != LCB_IOMODEL_EVENT || !waker->ev.create || !waker->ev.watch || !waker->bsd.recv) {
            return -1;
        }
        waker->io = io;
        waker->instance = instance;
        waker->sock = sock;
        waker->event = waker->ev.create(io);
        if (waker->event == NULL) {
            return -1;
        }
        return waker->ev.watch(io, sock, waker->event, LCB_READ_EVENT, waker, lcbpy_waker_fired);
    }

    static void lcbpy_waker_stop(lcbpy_WAKER *waker)
    {
        if (waker->event != NULL) {
            waker->ev.cancel(waker->io, waker->sock, waker->event);
            waker->ev.destroy(waker->io, waker->event);
            waker->event = NULL;
        }
    }
    """
    ctypedef struct lcbpy_WAKER:
        void *event
    int lcbpy_waker_start(lcbpy_WAKER *waker, lcb_io_opt_t io, lcb_INSTANCE *instance, int sock)
    void lcbpy_waker_stop(lcbpy_WAKER *waker)


cdef extern from "libcouchbase/iops.h" nogil:
    # Which IO table opened each socket descriptor, so that a forked child can
    # close the descriptors of the instances it inherited from its parent
    # (close(2) only: the parent's sockets stay open in the parent). The select
    # plugin's procedures are wrapped before lcb_create, as iops.h documents
    # for monkey-patching; descriptors from LCBPY_TRACKED_FDS on are not
    # tracked. Entries change only in the thread running that table's loop.
    """
    #ifndef _WIN32
    #include <unistd.h>
    #endif
    #define LCBPY_TRACKED_FDS 65536
    static lcb_io_opt_t lcbpy_fd_owner[LCBPY_TRACKED_FDS];
    static lcb_io_procs_fn lcbpy_plugin_get_procs;
    static lcb_ioE_socket_fn lcbpy_plugin_socket;
    static lcb_ioE_close_fn lcbpy_plugin_close;

    static lcb_socket_t lcbpy_tracked_socket(lcb_io_opt_t io, int domain, int type, int protocol)
    {
        lcb_socket_t sock = lcbpy_plugin_socket(io, domain, type, protocol);
        if ((size_t)sock < LCBPY_TRACKED_FDS) {
            lcbpy_fd_owner[(size_t)sock] = io;
        }
        return sock;
    }

    static void lcbpy_tracked_close(lcb_io_opt_t io, lcb_socket_t sock)
    {
        if ((size_t)sock < LCBPY_TRACKED_FDS && lcbpy_fd_owner[(size_t)sock] == io) {
            lcbpy_fd_owner[(size_t)sock] = NULL;  /* before: the number may be reused at once */
        }
        lcbpy_plugin_close(io, sock);
    }

    static void lcbpy_tracking_get_procs(int version, lcb_loop_procs *loop, lcb_timer_procs *timer,
                                         lcb_bsd_procs *bsd, lcb_ev_procs *ev,
                                         lcb_completion_procs *completion, lcb_iomodel_t *model)
    {
        lcbpy_plugin_get_procs(version, loop, timer, bsd, ev, completion, model);
        if (bsd->socket0 != lcbpy_tracked_socket) {
            lcbpy_plugin_socket = bsd->socket0;
            lcbpy_plugin_close = bsd->close;
        }
        bsd->socket0 = lcbpy_tracked_socket;
        bsd->close = lcbpy_tracked_close;
    }

    static void lcbpy_track_sockets(lcb_io_opt_t io)
    {
        lcb_io_procs_fn *get_procs;
        if (io->version == 3) {
            get_procs = &io->v.v3.get_procs;
        } else if (io->version == 2) {
            get_procs = &io->v.v2.get_procs;
        } else {
            return;  /* no such table from the select plugin: its descriptors stay untracked */
        }
        if (*get_procs != lcbpy_tracking_get_procs) {
            lcbpy_plugin_get_procs = *get_procs;  /* the same select plugin for every table */
            *get_procs = lcbpy_tracking_get_procs;
        }
    }

    static void lcbpy_close_sockets_of(lcb_io_opt_t io)
    {
    #ifndef _WIN32
        size_t fd;
        for (fd = 0; fd < LCBPY_TRACKED_FDS; fd++) {
            if (lcbpy_fd_owner[fd] == io) {
                lcbpy_fd_owner[fd] = NULL;
                close((int)fd);
            }
        }
    #endif
    }
    """
    void lcbpy_track_sockets(lcb_io_opt_t io)
    void lcbpy_close_sockets_of(lcb_io_opt_t io)


cdef extern from "<stdarg.h>" nogil:
    ctypedef struct va_list:
        pass


cdef extern from "<stdio.h>" nogil:
    int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)


cdef extern from "libcouchbase/logger.h" nogil:
    ctypedef enum lcb_LOG_SEVERITY:
        LCB_LOG_TRACE
        LCB_LOG_DEBUG
        LCB_LOG_INFO
        LCB_LOG_WARN
        LCB_LOG_ERROR
        LCB_LOG_FATAL

    ctypedef void (*lcb_LOGGER_CALLBACK)(const lcb_LOGGER *procs, uint64_t iid, const char *subsys,
                                         lcb_LOG_SEVERITY severity, const char *srcfile, int srcline,
                                         const char *fmt, va_list ap) noexcept nogil
    lcb_STATUS lcb_logger_create(lcb_LOGGER **logger, void *cookie)
    lcb_STATUS lcb_logger_destroy(lcb_LOGGER *logger)
    lcb_STATUS lcb_logger_callback(lcb_LOGGER *logger, lcb_LOGGER_CALLBACK callback)
    lcb_STATUS lcb_logger_cookie(const lcb_LOGGER *logger, void **cookie)


cdef extern from "libcouchbase/iops.h" nogil:
    # An IO plugin of the event model driven by an asyncio loop (_aio_io.pxi):
    # the procs libcouchbase asks a v2 plugin for, and the BSD socket calls it
    # wires itself.
    ctypedef int lcb_socket_t
    ctypedef void (*lcb_ioE_callback)(lcb_socket_t sock, short events, void *uarg) noexcept
    ctypedef void (*lcb_io_start_fn)(lcb_io_opt_t iops) noexcept
    ctypedef void (*lcb_io_stop_fn)(lcb_io_opt_t iops) noexcept
    ctypedef void (*lcb_io_tick_fn)(lcb_io_opt_t iops) noexcept
    ctypedef struct lcb_loop_procs:
        lcb_io_start_fn start
        lcb_io_stop_fn stop
        lcb_io_tick_fn tick
    ctypedef struct lcb_timer_procs:
        void *(*create)(lcb_io_opt_t iops) noexcept
        void (*destroy)(lcb_io_opt_t iops, void *timer) noexcept
        void (*cancel)(lcb_io_opt_t iops, void *timer) noexcept
        int (*schedule)(lcb_io_opt_t iops, void *timer, uint32_t usecs, void *uarg,
                        lcb_ioE_callback callback) noexcept
    ctypedef void (*lcb_ioE_close_fn)(lcb_io_opt_t iops, lcb_socket_t sock) noexcept
    ctypedef struct lcb_bsd_procs:
        lcb_ioE_close_fn close
    ctypedef struct lcb_ev_procs:
        void *(*create)(lcb_io_opt_t iops) noexcept
        void (*destroy)(lcb_io_opt_t iops, void *event) noexcept
        void (*cancel)(lcb_io_opt_t iops, lcb_socket_t sock, void *event) noexcept
        int (*watch)(lcb_io_opt_t iops, lcb_socket_t sock, void *event, short evflags, void *uarg,
                     lcb_ioE_callback callback) noexcept
    ctypedef struct lcb_completion_procs:
        pass
    ctypedef enum lcb_iomodel_t:
        LCB_IOMODEL_EVENT
    ctypedef void (*lcb_io_procs_fn)(int version, lcb_loop_procs *loop_procs, lcb_timer_procs *timer_procs,
                                     lcb_bsd_procs *bsd_procs, lcb_ev_procs *ev_procs,
                                     lcb_completion_procs *completion_procs, lcb_iomodel_t *iomodel) noexcept
    short LCB_READ_EVENT
    short LCB_WRITE_EVENT
    void lcb_iops_wire_bsd_impl2(lcb_bsd_procs *procs, int version)


cdef extern from "_aio_io.h" nogil:
    lcb_io_opt_t lcbpy_loop_iops_new(void *cookie, lcb_io_procs_fn get_procs,
                                     void (*destructor)(lcb_io_opt_t io) noexcept)
    void *lcbpy_loop_iops_cookie(lcb_io_opt_t io)
    void lcbpy_loop_iops_free(lcb_io_opt_t io)
    void lcbpy_guard_bsd(lcb_bsd_procs *bsd)


cdef extern from "libcouchbase/couchbase.h" nogil:
    # What the asyncio driver uses besides the commands above: completion by
    # callback instead of lcb_wait.
    ctypedef void (*lcb_bootstrap_callback)(lcb_INSTANCE *instance, lcb_STATUS err) noexcept
    ctypedef void (*lcb_destroy_callback)(const void *cookie) noexcept
    lcb_bootstrap_callback lcb_set_bootstrap_callback(lcb_INSTANCE *instance, lcb_bootstrap_callback callback)
    lcb_destroy_callback lcb_set_destroy_callback(lcb_INSTANCE *instance, lcb_destroy_callback callback)
    void lcb_destroy_async(lcb_INSTANCE *instance, const void *arg)
    void lcb_set_cookie(lcb_INSTANCE *instance, const void *cookie)
    const void *lcb_get_cookie(lcb_INSTANCE *instance)


cdef extern from "libcouchbase/cntl.h" nogil:
    # A synchronous destroy runs libcouchbase's own event loop (never on asyncio).
    int LCB_CNTL_SET
    int LCB_CNTL_SYNCDESTROY


cdef extern from "libcouchbase/couchbase.h" nogil:
    # -- beyond the 0.9 API: exists, sub-document, durability --
    ctypedef enum lcb_DURABILITY_LEVEL:
        LCB_DURABILITYLEVEL_NONE
        LCB_DURABILITYLEVEL_MAJORITY
        LCB_DURABILITYLEVEL_MAJORITY_AND_PERSIST_TO_ACTIVE
        LCB_DURABILITYLEVEL_PERSIST_TO_MAJORITY
    ctypedef enum:
        LCB_CALLBACK_EXISTS
        LCB_CALLBACK_SDLOOKUP
        LCB_CALLBACK_SDMUTATE

    # durability: synchronous levels on every mutation...
    lcb_STATUS lcb_cmdstore_durability(lcb_CMDSTORE *cmd, lcb_DURABILITY_LEVEL level)
    lcb_STATUS lcb_cmdremove_durability(lcb_CMDREMOVE *cmd, lcb_DURABILITY_LEVEL level)
    lcb_STATUS lcb_cmdcounter_durability(lcb_CMDCOUNTER *cmd, lcb_DURABILITY_LEVEL level)
    # ...and observe-based on every mutation's reply: its token and CAS are polled for
    # (patch 0009; the outcome goes to LCB_CALLBACK_ENDURE)
    ctypedef struct lcb_MUTATION_TOKEN:
        pass
    lcb_STATUS lcb_respstore_mutation_token(const lcb_RESPSTORE *resp, lcb_MUTATION_TOKEN *token)
    lcb_STATUS lcb_respremove_mutation_token(const lcb_RESPREMOVE *resp, lcb_MUTATION_TOKEN *token)
    lcb_STATUS lcb_respcounter_mutation_token(const lcb_RESPCOUNTER *resp, lcb_MUTATION_TOKEN *token)
    ctypedef enum:
        LCB_CALLBACK_ENDURE
    lcb_STATUS lcb_durability_check(lcb_INSTANCE *instance, uint16_t persist_to, uint16_t replicate_to)
    lcb_STATUS lcb_endure_mutation(lcb_INSTANCE *instance, void *cookie, const char *key, size_t nkey,
                                   uint64_t cas, const lcb_MUTATION_TOKEN *token, uint16_t persist_to,
                                   uint16_t replicate_to, uint32_t timeout_us)
    lcb_STATUS lcb_respendure_status(const lcb_RESPBASE *resp)
    lcb_STATUS lcb_respendure_cookie(const lcb_RESPBASE *resp, void **cookie)
    lcb_STATUS lcb_respendure_copies(const lcb_RESPBASE *resp, uint16_t *num_persisted,
                                     uint16_t *num_replicated)

    # exists (GET_META: no value is read)
    ctypedef struct lcb_RESPEXISTS:
        pass
    ctypedef struct lcb_CMDEXISTS:
        pass
    lcb_STATUS lcb_respexists_status(const lcb_RESPEXISTS *resp)
    int lcb_respexists_is_found(const lcb_RESPEXISTS *resp)
    lcb_STATUS lcb_respexists_cookie(const lcb_RESPEXISTS *resp, void **cookie)
    lcb_STATUS lcb_respexists_cas(const lcb_RESPEXISTS *resp, uint64_t *cas)
    lcb_STATUS lcb_cmdexists_create(lcb_CMDEXISTS **cmd)
    lcb_STATUS lcb_cmdexists_destroy(lcb_CMDEXISTS *cmd)
    lcb_STATUS lcb_cmdexists_key(lcb_CMDEXISTS *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_exists(lcb_INSTANCE *instance, void *cookie, const lcb_CMDEXISTS *cmd)

    # sub-document: lookup_in / mutate_in
    ctypedef struct lcb_RESPSUBDOC:
        pass
    ctypedef struct lcb_CMDSUBDOC:
        pass
    ctypedef struct lcb_SUBDOCSPECS:
        pass
    ctypedef enum lcb_SUBDOC_STORE_SEMANTICS:
        LCB_SUBDOC_STORE_REPLACE
        LCB_SUBDOC_STORE_UPSERT
        LCB_SUBDOC_STORE_INSERT
    lcb_STATUS lcb_respsubdoc_status(const lcb_RESPSUBDOC *resp)
    lcb_STATUS lcb_respsubdoc_cookie(const lcb_RESPSUBDOC *resp, void **cookie)
    lcb_STATUS lcb_respsubdoc_cas(const lcb_RESPSUBDOC *resp, uint64_t *cas)
    lcb_STATUS lcb_respsubdoc_mutation_token(const lcb_RESPSUBDOC *resp, lcb_MUTATION_TOKEN *token)
    size_t lcb_respsubdoc_result_size(const lcb_RESPSUBDOC *resp)
    lcb_STATUS lcb_respsubdoc_result_status(const lcb_RESPSUBDOC *resp, size_t index)
    lcb_STATUS lcb_respsubdoc_result_value(const lcb_RESPSUBDOC *resp, size_t index, const char **value,
                                           size_t *value_len)
    lcb_STATUS lcb_subdocspecs_create(lcb_SUBDOCSPECS **operations, size_t capacity)
    lcb_STATUS lcb_subdocspecs_destroy(lcb_SUBDOCSPECS *operations)
    lcb_STATUS lcb_subdocspecs_get(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                   const char *path, size_t path_len)
    lcb_STATUS lcb_subdocspecs_exists(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                      const char *path, size_t path_len)
    lcb_STATUS lcb_subdocspecs_get_count(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                         const char *path, size_t path_len)
    lcb_STATUS lcb_subdocspecs_replace(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                       const char *path, size_t path_len, const char *value, size_t value_len)
    lcb_STATUS lcb_subdocspecs_dict_add(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                        const char *path, size_t path_len, const char *value,
                                        size_t value_len)
    lcb_STATUS lcb_subdocspecs_dict_upsert(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                           const char *path, size_t path_len, const char *value,
                                           size_t value_len)
    lcb_STATUS lcb_subdocspecs_array_add_first(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                               const char *path, size_t path_len, const char *value,
                                               size_t value_len)
    lcb_STATUS lcb_subdocspecs_array_add_last(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                              const char *path, size_t path_len, const char *value,
                                              size_t value_len)
    lcb_STATUS lcb_subdocspecs_array_add_unique(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                                const char *path, size_t path_len, const char *value,
                                                size_t value_len)
    lcb_STATUS lcb_subdocspecs_array_insert(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                            const char *path, size_t path_len, const char *value,
                                            size_t value_len)
    lcb_STATUS lcb_subdocspecs_counter(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                       const char *path, size_t path_len, int64_t delta)
    lcb_STATUS lcb_subdocspecs_remove(lcb_SUBDOCSPECS *operations, size_t index, uint32_t flags,
                                      const char *path, size_t path_len)
    lcb_STATUS lcb_cmdsubdoc_create(lcb_CMDSUBDOC **cmd)
    lcb_STATUS lcb_cmdsubdoc_destroy(lcb_CMDSUBDOC *cmd)
    lcb_STATUS lcb_cmdsubdoc_key(lcb_CMDSUBDOC *cmd, const char *key, size_t key_len)
    lcb_STATUS lcb_cmdsubdoc_specs(lcb_CMDSUBDOC *cmd, const lcb_SUBDOCSPECS *operations)
    lcb_STATUS lcb_cmdsubdoc_cas(lcb_CMDSUBDOC *cmd, uint64_t cas)
    lcb_STATUS lcb_cmdsubdoc_expiry(lcb_CMDSUBDOC *cmd, uint32_t expiration)
    lcb_STATUS lcb_cmdsubdoc_store_semantics(lcb_CMDSUBDOC *cmd, lcb_SUBDOC_STORE_SEMANTICS mode)
    lcb_STATUS lcb_cmdsubdoc_durability(lcb_CMDSUBDOC *cmd, lcb_DURABILITY_LEVEL level)
    lcb_STATUS lcb_subdoc(lcb_INSTANCE *instance, void *cookie, const lcb_CMDSUBDOC *cmd)


cdef extern from "libcouchbase/vbucket.h" nogil:
    # the cluster map: which nodes hold a key's copies (replica reads)
    ctypedef struct lcbvb_CONFIG:
        pass
    int lcbvb_map_key(lcbvb_CONFIG *cfg, const void *key, size_t n, int *vbid, int *srvix)
    int lcbvb_vbmaster(lcbvb_CONFIG *cfg, int vbid)
    int lcbvb_vbreplica(lcbvb_CONFIG *cfg, int vbid, unsigned ix)
    unsigned lcbvb_get_nreplicas(const lcbvb_CONFIG *cfg)
    unsigned lcbvb_get_nservers(const lcbvb_CONFIG *cfg)


cdef extern from "libcouchbase/cntl.h" nogil:
    int LCB_CNTL_VBCONFIG  # the current lcbvb_CONFIG (replica reads pick the nodes from it)
    int LCB_CNTL_OP_TIMEOUT  # what a built packet's deadline is computed from (per-call timeouts)
