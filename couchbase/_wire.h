/* A guard against replayed requests, for couchbase/_lcb.pyx: libcouchbase's
 * select IO plugin with its writes watched.
 *
 * Why: when a configuration removes a node (failover), libcouchbase 3.3.4
 * moves every request queued or in flight on that node to the vbucket's new
 * owner, written or not, without asking the retry strategy (its reason,
 * LCB_ERR_TOPOLOGY_CHANGE, is "always retry"). A request the old node applied
 * but did not answer is then applied twice. A moved request keeps its opaque
 * (its header is copied), and opaques are never reused within the 2^32 range
 * followed here, so a request written a second time with the same opaque is
 * such a replay (libcouchbase's own retries after a reply such as
 * NOT_MY_VBUCKET keep the opaque too, but follow a reply). Every KV stream is
 * followed as the sequences of memcached requests and replies it carries; the
 * opaque of every request unsafe to replay (anything but the reads of
 * lcbpy_replay_safe_opcode) is marked once its header is written and unmarked
 * when a reply with that opaque is read, and a request about to be written
 * whose opaque is marked (written, never answered) is not written: the write
 * stops before it and the connection fails
 * (ECONNRESET), so libcouchbase fails that connection's requests through
 * the retry strategy, which does not replay them (_retry_strategy).
 * Opaques too old to be remembered count as written and unanswered, as do
 * those of a stream whose replies could not be followed. A stream that cannot
 * be read at all (TLS) is not guarded.
 *
 * One lcbpy_IO per connection, used only by the thread running its event
 * loop (under the Connection's lock; an AsyncConnection's loop thread): no
 * lock is needed. Both drivers are guarded: the sync one's select plugin
 * (lcbpy_create_io) and the asyncio plugin's sockets (couchbase/_aio_io.h).
 */
#ifndef LCBPY_WIRE_H
#define LCBPY_WIRE_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libcouchbase/couchbase.h>
#include <libcouchbase/iops.h>

#define LCBPY_STREAMS 64         /* sockets followed at once (one KV socket per node) */
#define LCBPY_WINDOW (1u << 16)  /* opaques remembered, counted back from the newest marked */

enum { LCBPY_FREE, LCBPY_NEW, LCBPY_KV, LCBPY_OTHER };

typedef struct {
    uint8_t head[24];     /* the current packet's header */
    uint32_t nhead;       /* bytes of it seen; 24: its body is being seen */
    uint32_t body;        /* body bytes still to come */
} lcbpy_FRAMES;

typedef struct {
    lcb_socket_t fd;
    int kind;             /* LCBPY_FREE ... LCBPY_OTHER */
    int failed;           /* a replay was stopped: every later write fails */
    int lost;             /* the replies could not be followed */
    lcbpy_FRAMES out;     /* the requests written */
    lcbpy_FRAMES in;      /* the replies read */
} lcbpy_STREAM;

typedef struct {
    struct lcb_io_opt_st base;  /* first: what libcouchbase and the select plugin are handed */
    lcb_io_opt_t select;        /* the select plugin's own struct (its destructor frees it) */
    lcbpy_STREAM streams[LCBPY_STREAMS];
    uint32_t newest;            /* the newest opaque marked (0 and none: nothing marked yet) */
    int marked_any;
    uint8_t written[LCBPY_WINDOW / 8]; /* bit per opaque in (newest - LCBPY_WINDOW, newest] */
    uint64_t replays_stopped;
    const struct lcbpy_NEXT_st *next; /* the socket calls the guard wraps */
} lcbpy_IO;

/* The socket calls a guard wraps: the select plugin's, or those
 * lcb_iops_wire_bsd_impl2 gives the asyncio plugin (couchbase/_aio_io.h);
 * each set is the same for every instance. */
typedef struct lcbpy_NEXT_st {
    lcb_ioE_sendv_fn sendv;
    lcb_ioE_send_fn send;
    lcb_ioE_close_fn close;
    lcb_ioE_recv_fn recv;
    lcb_ioE_recvv_fn recvv;
} lcbpy_NEXT;

static lcb_io_procs_fn lcbpy_select_procs;
static lcbpy_NEXT lcbpy_select_next;
static lcbpy_NEXT lcbpy_bsd_next;

/* Requests a replay cannot harm: reads, and what libcouchbase sends to run a
 * connection. Everything else (unknown opcodes too) is guarded. */
static int lcbpy_replay_safe_opcode(uint8_t opcode)
{
    switch (opcode) {
        case 0x00: case 0x09: case 0x0c: case 0x0d: /* GET, GETQ, GETK, GETKQ */
        case 0x0a: case 0x0b: case 0x10:            /* NOOP, VERSION, STAT */
        case 0x1c: case 0x1d: case 0x1e:            /* TOUCH, GAT, GATQ */
        case 0x1f: case 0x20: case 0x21: case 0x22: /* HELLO, SASL */
        case 0x83: case 0x89: case 0x91: case 0x92: /* GET_REPLICA, SELECT_BUCKET, OBSERVE(_SEQNO) */
        case 0xa0: case 0xb5: case 0xba: case 0xbb: /* GET_META, cluster config, collections */
        case 0xc5: case 0xc6: case 0xd0: case 0xfe: /* sub-document lookups, GET_ERROR_MAP */
            return 1;
        default:
            return 0;
    }
}

static uint32_t lcbpy_opaque(const uint8_t *h)
{
    /* libcouchbase writes its counter into the header in host order */
    uint32_t v;
    memcpy(&v, h + 12, 4);
    return v;
}

static int lcbpy_is_marked(const lcbpy_IO *w, uint32_t opaque)
{
    uint32_t back = w->newest - opaque;
    if (!w->marked_any || (int32_t)back < 0) {
        return 0; /* newer than anything marked */
    }
    if (back >= LCBPY_WINDOW) {
        return 1; /* too old to be remembered: in doubt, written */
    }
    return (w->written[(opaque % LCBPY_WINDOW) / 8] >> (opaque % 8)) & 1;
}

static void lcbpy_mark(lcbpy_IO *w, uint32_t opaque)
{
    uint32_t ahead = opaque - w->newest, i;
    if (!w->marked_any) {
        w->marked_any = 1;
        w->newest = opaque;
    } else if ((int32_t)ahead > 0) {
        /* forget the opaques that fall out of the window */
        if (ahead >= LCBPY_WINDOW) {
            memset(w->written, 0, sizeof(w->written));
        } else {
            for (i = 1; i <= ahead; i++) {
                uint32_t o = w->newest + i;
                w->written[(o % LCBPY_WINDOW) / 8] &= (uint8_t) ~(1u << (o % 8));
            }
        }
        w->newest = opaque;
    } else if (w->newest - opaque >= LCBPY_WINDOW) {
        return; /* already counted as written */
    }
    w->written[(opaque % LCBPY_WINDOW) / 8] |= (uint8_t)(1u << (opaque % 8));
}

static void lcbpy_unmark(lcbpy_IO *w, uint32_t opaque)
{
    if (w->marked_any && w->newest - opaque < LCBPY_WINDOW) {
        w->written[(opaque % LCBPY_WINDOW) / 8] &= (uint8_t) ~(1u << (opaque % 8));
    }
}

static int lcbpy_is_replay(const lcbpy_IO *w, const uint8_t *head)
{
    return !lcbpy_replay_safe_opcode(head[1]) && lcbpy_is_marked(w, lcbpy_opaque(head));
}

static uint32_t lcbpy_body_length(const uint8_t *h)
{
    return ((uint32_t)h[8] << 24) | ((uint32_t)h[9] << 16) | ((uint32_t)h[10] << 8) | h[11];
}

/* Follow bytes p[*i..n) of a stream of packets (24-byte header, then a body
 * of the length it says) whose first byte is at `offset` in the write:
 * returns 1 as soon as a header is complete (in f->head; *start: the offset
 * where that packet began, left alone if it began earlier), 0 once the
 * bytes are used up. */
static int lcbpy_next_header(lcbpy_FRAMES *f, const uint8_t *p, size_t n, size_t *i, size_t offset, size_t *start)
{
    size_t k;
    while (*i < n) {
        if (f->nhead == 24 && f->body == 0) {
            f->nhead = 0; /* the next packet */
        }
        if (f->nhead < 24) {
            if (f->nhead == 0) {
                *start = offset + *i;
            }
            k = 24 - f->nhead < n - *i ? 24 - f->nhead : n - *i;
            memcpy(f->head + f->nhead, p + *i, k);
            f->nhead += (uint32_t)k;
            *i += k;
            if (f->nhead == 24) {
                f->body = lcbpy_body_length(f->head);
                return 1;
            }
        } else {
            k = f->body < n - *i ? f->body : n - *i;
            f->body -= (uint32_t)k;
            *i += k;
        }
    }
    return 0;
}

/* Follow n bytes written (or about to be written) on stream s, whose state
 * is updated; `offset`: where they begin in the write. With `check`, stop at
 * the first request that would be a replay: returns 1, its offset in *start
 * (0 if it began in an earlier write). With `mark`, mark the unsafe requests
 * whose header completes. */
static int lcbpy_walk(lcbpy_IO *w, lcbpy_STREAM *s, const uint8_t *p, size_t n, size_t offset, int check,
                      int mark, size_t *start)
{
    size_t i = 0;
    if (n > 0 && s->kind == LCBPY_NEW) {
        /* KV streams begin with a request (magic 0x80, or 0x08 with framing
         * extras); anything else (HTTP, TLS) is not followed */
        s->kind = (p[0] == 0x80 || p[0] == 0x08) ? LCBPY_KV : LCBPY_OTHER;
    }
    while (s->kind == LCBPY_KV && lcbpy_next_header(&s->out, p, n, &i, offset, start)) {
        const uint8_t *head = s->out.head;
        if (head[0] != 0x80 && head[0] != 0x08) {
            s->kind = LCBPY_OTHER; /* lost track of the requests */
            return 0;
        }
        if (check && lcbpy_is_replay(w, head)) {
            return 1;
        }
        if (mark && !lcbpy_replay_safe_opcode(head[1])) {
            lcbpy_mark(w, lcbpy_opaque(head));
        }
    }
    return 0;
}

/* Follow n bytes read on stream s: unmark the opaque of every reply. */
static void lcbpy_read(lcbpy_IO *w, lcbpy_STREAM *s, const uint8_t *p, size_t n)
{
    size_t i = 0, start = 0;
    while (s->kind == LCBPY_KV && !s->lost && lcbpy_next_header(&s->in, p, n, &i, 0, &start)) {
        uint8_t magic = s->in.head[0];
        if (magic == 0x81 || magic == 0x18) {
            lcbpy_unmark(w, lcbpy_opaque(s->in.head)); /* answered */
        } else if (magic != 0x82) { /* 0x82: a request from the server */
            s->lost = 1; /* the marks of its requests stay: in doubt, unanswered */
        }
    }
}


static lcbpy_STREAM *lcbpy_stream(lcbpy_IO *w, lcb_socket_t fd, int create)
{
    lcbpy_STREAM *free_one = NULL;
    int i;
    for (i = 0; i < LCBPY_STREAMS; i++) {
        lcbpy_STREAM *s = &w->streams[i];
        if (s->kind != LCBPY_FREE && s->fd == fd) {
            return s;
        }
        if (s->kind == LCBPY_FREE && free_one == NULL) {
            free_one = s;
        }
    }
    if (create && free_one != NULL) {
        memset(free_one, 0, sizeof(*free_one));
        free_one->fd = fd;
        free_one->kind = LCBPY_NEW;
        return free_one;
    }
    return NULL;
}

/* How many of the iov's bytes may be written on s: all, or those before the
 * first replay. */
static size_t lcbpy_allowed(lcbpy_IO *w, const lcbpy_STREAM *s, const lcb_IOV *iov, lcb_SIZE niov)
{
    lcbpy_STREAM t = *s;
    size_t offset = 0, start = 0;
    lcb_SIZE i;
    for (i = 0; i < niov; i++) {
        if (lcbpy_walk(w, &t, (const uint8_t *)iov[i].iov_base, iov[i].iov_len, offset, 1, 0, &start)) {
            return start;
        }
        offset += iov[i].iov_len;
    }
    return offset;
}

static void lcbpy_wrote(lcbpy_IO *w, lcbpy_STREAM *s, const lcb_IOV *iov, lcb_SIZE niov, size_t nw)
{
    size_t start = 0, n;
    lcb_SIZE i;
    for (i = 0; i < niov && nw > 0; i++) {
        n = iov[i].iov_len < nw ? iov[i].iov_len : nw;
        lcbpy_walk(w, s, (const uint8_t *)iov[i].iov_base, n, 0, 0, 1, &start);
        nw -= n;
    }
}

static lcb_SSIZE lcbpy_fail(lcb_io_opt_t io, lcbpy_STREAM *s)
{
    s->failed = 1;
    io->v.v0.error = ECONNRESET;
    return -1;
}

static lcb_SSIZE lcbpy_sendv(lcb_io_opt_t io, lcb_socket_t fd, lcb_IOV *iov, lcb_SIZE niov)
{
    lcbpy_IO *w = (lcbpy_IO *)io;
    lcbpy_STREAM *s = lcbpy_stream(w, fd, 1);
    lcb_IOV cut[16];
    size_t allowed, total = 0, left;
    lcb_SIZE i, ncut = 0;
    lcb_SSIZE nw;
    if (s == NULL) {
        return ((lcbpy_IO *)io)->next->sendv(io, fd, iov, niov); /* too many sockets to follow this one */
    }
    if (s->failed) {
        return lcbpy_fail(io, s);
    }
    allowed = lcbpy_allowed(w, s, iov, niov);
    for (i = 0; i < niov; i++) {
        total += iov[i].iov_len;
    }
    if (allowed < total) {
        w->replays_stopped++;
        if (allowed == 0) {
            return lcbpy_fail(io, s);
        }
        /* write what comes before the replay; the next write fails */
        for (i = 0, left = allowed; i < niov && left > 0 && ncut < 16; i++, ncut++) {
            cut[ncut].iov_base = iov[i].iov_base;
            cut[ncut].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
            left -= cut[ncut].iov_len;
        }
        nw = ((lcbpy_IO *)io)->next->sendv(io, fd, cut, ncut);
        if (nw > 0) {
            lcbpy_wrote(w, s, cut, ncut, (size_t)nw);
            if ((size_t)nw == allowed - left) {
                s->failed = 1;
            }
        }
        return nw;
    }
    nw = ((lcbpy_IO *)io)->next->sendv(io, fd, iov, niov);
    if (nw > 0) {
        lcbpy_wrote(w, s, iov, niov, (size_t)nw);
    }
    return nw;
}

static lcb_SSIZE lcbpy_send(lcb_io_opt_t io, lcb_socket_t fd, const void *buf, lcb_SIZE len, int flags)
{
    lcb_IOV iov;
    (void)flags;
    iov.iov_base = (void *)buf;
    iov.iov_len = len;
    return lcbpy_sendv(io, fd, &iov, 1);
}

static lcb_SSIZE lcbpy_recvv(lcb_io_opt_t io, lcb_socket_t fd, lcb_IOV *iov, lcb_SIZE niov)
{
    lcb_SSIZE nr = ((lcbpy_IO *)io)->next->recvv(io, fd, iov, niov);
    lcbpy_STREAM *s;
    size_t left, n;
    lcb_SIZE i;
    if (nr > 0 && (s = lcbpy_stream((lcbpy_IO *)io, fd, 0)) != NULL) {
        for (i = 0, left = (size_t)nr; i < niov && left > 0; i++) {
            n = iov[i].iov_len < left ? iov[i].iov_len : left;
            lcbpy_read((lcbpy_IO *)io, s, (const uint8_t *)iov[i].iov_base, n);
            left -= n;
        }
    }
    return nr;
}

static lcb_SSIZE lcbpy_recv(lcb_io_opt_t io, lcb_socket_t fd, void *buf, lcb_SIZE len, int flags)
{
    lcb_SSIZE nr = ((lcbpy_IO *)io)->next->recv(io, fd, buf, len, flags);
    lcbpy_STREAM *s;
    if (nr > 0 && (s = lcbpy_stream((lcbpy_IO *)io, fd, 0)) != NULL) {
        lcbpy_read((lcbpy_IO *)io, s, (const uint8_t *)buf, (size_t)nr);
    }
    return nr;
}

static void lcbpy_close(lcb_io_opt_t io, lcb_socket_t fd)
{
    lcbpy_STREAM *s = lcbpy_stream((lcbpy_IO *)io, fd, 0);
    if (s != NULL) {
        s->kind = LCBPY_FREE; /* the descriptor may be reused for a new stream */
    }
    ((lcbpy_IO *)io)->next->close(io, fd);
}

/* Wrap a plugin's socket calls (saved in `next`) with the guard. */
static void lcbpy_guard_procs(lcb_bsd_procs *bsd, lcbpy_NEXT *next)
{
    if (bsd->sendv != lcbpy_sendv) {
        next->sendv = bsd->sendv;
        next->send = bsd->send;
        next->close = bsd->close;
        next->recv = bsd->recv;
        next->recvv = bsd->recvv;
    }
    bsd->sendv = lcbpy_sendv;
    bsd->send = lcbpy_send;
    bsd->close = lcbpy_close;
    bsd->recv = lcbpy_recv;
    bsd->recvv = lcbpy_recvv;
}

static void lcbpy_procs(int version, lcb_loop_procs *loop, lcb_timer_procs *timer, lcb_bsd_procs *bsd,
                        lcb_ev_procs *ev, lcb_completion_procs *completion, lcb_iomodel_t *model)
{
    lcbpy_select_procs(version, loop, timer, bsd, ev, completion, model);
    lcbpy_guard_procs(bsd, &lcbpy_select_next);
}

static void lcbpy_destroy_io(struct lcb_io_opt_st *io)
{
    lcbpy_IO *w = (lcbpy_IO *)io;
    lcb_destroy_io_ops(w->select);
    free(w);
}

/* The select plugin (the cheapest loop for a blocking client; a libevent
 * plugin, if installed, would otherwise be libcouchbase's default), its
 * writes guarded. Its functions are handed this struct, a copy of its own. */
static lcb_STATUS lcbpy_create_io(lcb_io_opt_t *io)
{
    struct lcb_create_io_ops_st options;
    lcb_io_opt_t select = NULL;
    lcbpy_IO *w;
    lcb_STATUS rc;
    memset(&options, 0, sizeof(options));
    options.version = 0;
    options.v.v0.type = LCB_IO_OPS_SELECT;
    rc = lcb_create_io_ops(&select, &options);
    if (rc != LCB_SUCCESS) {
        return rc;
    }
    if (select->version != 3 || select->v.v3.get_procs == NULL || select->v.v0.create_event != NULL) {
        /* not the plugin this was written for: libcouchbase would not ask it for its procedures */
        lcb_destroy_io_ops(select);
        return LCB_ERR_PLUGIN_VERSION_MISMATCH;
    }
    w = (lcbpy_IO *)calloc(1, sizeof(*w));
    if (w == NULL) {
        lcb_destroy_io_ops(select);
        return LCB_ERR_NO_MEMORY;
    }
    w->base = *select;
    w->base.dlhandle = NULL; /* the select plugin's, closed with it */
    w->select = select;
    w->next = &lcbpy_select_next;
    lcbpy_select_procs = select->v.v3.get_procs;
    w->base.v.v3.get_procs = lcbpy_procs;
    w->base.destructor = lcbpy_destroy_io;
    *io = &w->base;
    return LCB_SUCCESS;
}

#endif /* LCBPY_WIRE_H */
