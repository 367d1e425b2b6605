/* The lcb_io_opt_st of the asyncio IO plugin (couchbase/_aio_io.pxi). Its
 * struct holds an anonymous union that Cython need not name: these helpers
 * fill and read it. */
#ifndef LCBPY_AIO_IO_H
#define LCBPY_AIO_IO_H
#include <stdlib.h>
#include <libcouchbase/couchbase.h>
#include <libcouchbase/iops.h>
#include "_wire.h"

/* A version 2 plugin: libcouchbase asks get_procs for its procs. With
 * need_cleanup set, libcouchbase calls destructor once nothing of the
 * instance uses the plugin any more (timers and sockets included). Its
 * struct is an lcbpy_IO (couchbase/_wire.h): get_procs wraps the sockets'
 * calls with the replay guard (lcbpy_guard_bsd). */
static lcb_io_opt_t lcbpy_loop_iops_new(void *cookie, lcb_io_procs_fn get_procs,
                                        void (*destructor)(lcb_io_opt_t io))
{
    lcbpy_IO *w = (lcbpy_IO *)calloc(1, sizeof(*w));
    lcb_io_opt_t io;
    if (w == NULL) {
        return NULL;
    }
    w->next = &lcbpy_bsd_next;
    io = &w->base;
    io->version = 2;
    io->destructor = destructor;
    io->v.v2.cookie = cookie;
    io->v.v2.get_procs = get_procs;
    io->v.v2.need_cleanup = 1;
    return io;
}

static void *lcbpy_loop_iops_cookie(lcb_io_opt_t io)
{
    return io->v.v2.cookie;
}

static void lcbpy_loop_iops_free(lcb_io_opt_t io)
{
    free(io);  /* the lcbpy_IO it begins */
}

/* The BSD socket calls libcouchbase wires for a v2 plugin, guarded. */
static void lcbpy_guard_bsd(lcb_bsd_procs *bsd)
{
    lcbpy_guard_procs(bsd, &lcbpy_bsd_next);
}
#endif
