/*
 * prealloc.h - keeps the data file written ahead of the pages LMDB uses.
 *
 * A store that grows (and the audit log grows on every commit) makes each
 * commit write pages past the end of data.mdb. fdatasync must then also write
 * the inode (its new size and blocks) before it returns: one more synchronous
 * device round trip on every commit. A thread of its own keeps a margin of
 * zeros, written and synced, beyond LMDB's last page, so that commits only
 * overwrite blocks that already exist. PostgreSQL zero-fills its WAL segments
 * for the same reason.
 *
 * The margin is a quarter of the store's size, between `min_ahead` and
 * `max_ahead`, refilled when half of it is used. It is never written when that
 * would leave less than `min_free` bytes free on the file system, and never on
 * tmpfs, where there is no inode to write.
 */
#ifndef SV_STORE_PREALLOC_H
#define SV_STORE_PREALLOC_H

#include <stdint.h>

#include "src/sv.h"
#include "store/env.h"

typedef struct sv_prealloc sv_prealloc_t;

/* A 0 size takes its default. */
typedef struct {
    uint64_t min_ahead; /* default 1 MiB */
    uint64_t max_ahead; /* default 64 MiB (at least min_ahead) */
    uint64_t min_free;  /* default 256 MiB */
    unsigned period_ms; /* how often the thread looks; default 200; 0: no thread (sv_prealloc_step only) */
} sv_prealloc_opts_t;

typedef struct {
    uint64_t written;    /* bytes of zeros written since start */
    uint64_t extensions; /* refills done */
    uint64_t skipped;    /* refills not done: too little free space */
    uint64_t failures;   /* refills that failed (write or sync error) */
    uint64_t margin;     /* bytes past the last page in use at the last look */
    bool active;         /* false on tmpfs or a read-only store: nothing to do */
} sv_prealloc_stats_t;

/** Starts the thread for st (opts NULL: defaults). A read-only or tmpfs
 * store gets an inactive object. Errors: SV_EIO (cannot open the data
 * file), SV_ENOMEM. */
sv_err_t sv_prealloc_start(sv_store_t *st, const sv_prealloc_opts_t *opts, sv_prealloc_t **out);

/** Stops and joins the thread; the zeros written stay in the file. NULL is a no-op. */
void sv_prealloc_stop(sv_prealloc_t *p);

/** One look, on the calling thread (what the thread does every period_ms).
 * *wrote (optional) gets the bytes written. Errors: SV_ENOSPC (the file system
 * would go below min_free; nothing written), SV_EIO. */
sv_err_t sv_prealloc_step(sv_prealloc_t *p, uint64_t *wrote);

void sv_prealloc_stats(sv_prealloc_t *p, sv_prealloc_stats_t *out);

/** Whether path is on a file system held in memory (tmpfs, ramfs), where
 * there is nothing to extend ahead. */
bool sv_prealloc_in_memory(const char *path);

#endif
