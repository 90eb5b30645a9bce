/*
 * prealloc.c - the data file's written margin (prealloc.h).
 *
 * Why zeros and not fallocate(): fallocate leaves unwritten extents, and
 * turning one into a written extent when LMDB's page lands in it changes the
 * inode just as growing the file does. Blocks that were written and synced
 * are plain overwrites.
 *
 * Why O_APPEND: LMDB writes pages past the end of the file with pwrite. An
 * append is placed at the end of the file by the kernel, under the inode lock
 * that LMDB's write also takes, so the zeros can never land on a page LMDB
 * has written; a page LMDB writes later, into the zeros, simply replaces them.
 * The extra fdatasync is safe for LMDB too: it only makes data pages durable
 * earlier, and LMDB writes its meta page after its own fdatasync.
 *
 * Why O_DIRECT, where the file system takes it: the zeros then go from one
 * aligned buffer to the disk, without being copied into the page cache and
 * written back from there (2.6% of the CPU at 256 connections of audited
 * reads, as buffered writes). The file's size and every length written are
 * multiples of LMDB's page size, so the appends stay aligned; an EINVAL falls
 * back to buffered writes for good.
 */
#include "sv_autoconf.h"

#include "store/prealloc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "src/log.h"

#define MIB ((uint64_t)1 << 20)
#define ZERO_CHUNK (256 * 1024) /* a write holds the inode lock that LMDB's writes wait for: keep it short */

struct sv_prealloc {
    sv_store_t *st;
    sv_prealloc_opts_t opts;
    int fd;        /* data.mdb, O_WRONLY | O_APPEND; -1 when inactive */
    int direct_fd; /* the same with O_DIRECT, or -1 */
    pthread_t thread;
    bool has_thread;
    pthread_mutex_t lock; /* guards stopping */
    pthread_cond_t cond;
    bool stopping;
    uint8_t *zeros;
    _Atomic uint64_t written, extensions, skipped, failures, margin;
    bool warned_space, warned_io; /* thread only: log once per kind until a refill works */
};

static uint64_t margin_for(const sv_prealloc_opts_t *o, uint64_t used)
{
    uint64_t m = used / 4;
    if (m < o->min_ahead)
        m = o->min_ahead;
    if (m > o->max_ahead)
        m = o->max_ahead;
    return (m + MIB - 1) / MIB * MIB;
}

static bool write_zeros(sv_prealloc_t *p, uint64_t n)
{
    while (n > 0) {
        size_t len = n < ZERO_CHUNK ? (size_t)n : ZERO_CHUNK;
        ssize_t w = write(p->direct_fd >= 0 ? p->direct_fd : p->fd, p->zeros, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL && p->direct_fd >= 0) {
            close(p->direct_fd); /* unaligned after all: buffered from now on */
            p->direct_fd = -1;
            continue;
        }
        if (w <= 0)
            return false;
        atomic_fetch_add(&p->written, (uint64_t)w);
        n -= (uint64_t)w;
    }
    return fdatasync(p->fd) == 0; /* the new size and blocks, and the device cache */
}

sv_err_t sv_prealloc_step(sv_prealloc_t *p, uint64_t *wrote)
{
    if (wrote != NULL)
        *wrote = 0;
    if (p == NULL || p->fd < 0)
        return SV_OK;
    struct stat sb;
    if (fstat(p->fd, &sb) != 0)
        return sv_store_err(errno);
    uint64_t used = sv_store_used_bytes(p->st), size = (uint64_t)sb.st_size;
    uint64_t want = margin_for(&p->opts, used);
    atomic_store(&p->margin, size > used ? size - used : 0);
    if (size >= used + want / 2)
        return SV_OK;
    uint64_t n = used + want - size;
    struct statvfs vfs;
    if (fstatvfs(p->fd, &vfs) != 0)
        return sv_store_err(errno);
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize < n + p->opts.min_free) {
        atomic_fetch_add(&p->skipped, 1);
        if (!p->warned_space)
            sv_log_warn("store: data.mdb is not extended ahead of use: %llu MiB free on its file system, and "
                        "extending it would leave less than the %llu MiB kept free; commits that grow the file "
                        "also write its inode (slower, not less safe)",
                        (unsigned long long)((uint64_t)vfs.f_bavail * vfs.f_frsize / MIB),
                        (unsigned long long)(p->opts.min_free / MIB));
        p->warned_space = true;
        return SV_ENOSPC;
    }
    if (!write_zeros(p, n)) {
        sv_err_t err = sv_store_err(errno);
        atomic_fetch_add(&p->failures, 1);
        if (!p->warned_io)
            sv_log_warn("store: cannot extend data.mdb ahead of use: %s", sv_strerror(err));
        p->warned_io = true;
        return err;
    }
    p->warned_space = p->warned_io = false;
    atomic_fetch_add(&p->extensions, 1);
    if (fstat(p->fd, &sb) == 0)
        atomic_store(&p->margin, (uint64_t)sb.st_size > used ? (uint64_t)sb.st_size - used : 0);
    if (wrote != NULL)
        *wrote = n;
    return SV_OK;
}

static void *prealloc_main(void *arg)
{
    sv_prealloc_t *p = arg;
    pthread_setname_np(pthread_self(), "sv-prealloc");
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        pthread_mutex_unlock(&p->lock);
        sv_prealloc_step(p, NULL);
        pthread_mutex_lock(&p->lock);
        if (p->stopping)
            break;
        sv_cond_wait_ms(&p->cond, &p->lock, p->opts.period_ms);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

bool sv_prealloc_in_memory(const char *path)
{
    struct statfs fs;
    return statfs(path, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
}

/* Whether extending the file ahead can save anything: not on a read-only or
 * unsynced store, not on tmpfs (its inode lives in memory). */
static bool worth_it(sv_store_t *st)
{
    unsigned flags = 0;
    mdb_env_get_flags(sv_store_env(st), &flags);
    return !(flags & (MDB_RDONLY | MDB_NOSYNC)) && !sv_prealloc_in_memory(sv_store_dir(st));
}

sv_err_t sv_prealloc_start(sv_store_t *st, const sv_prealloc_opts_t *opts, sv_prealloc_t **out)
{
    sv_prealloc_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return SV_ENOMEM;
    p->st = st;
    p->fd = p->direct_fd = -1;
    p->opts = opts != NULL ? *opts : (sv_prealloc_opts_t){.period_ms = 200};
    if (p->opts.min_ahead == 0)
        p->opts.min_ahead = MIB;
    if (p->opts.max_ahead == 0)
        p->opts.max_ahead = 64 * MIB;
    if (p->opts.max_ahead < p->opts.min_ahead)
        p->opts.max_ahead = p->opts.min_ahead;
    if (p->opts.min_free == 0)
        p->opts.min_free = 256 * MIB;
    pthread_mutex_init(&p->lock, NULL);
    sv_cond_init_monotonic(&p->cond);

    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", sv_store_dir(st)) >= sizeof(path)) {
        sv_prealloc_stop(p);
        return SV_EINVAL;
    }
    unsigned flags = 0;
    mdb_env_get_flags(sv_store_env(st), &flags);
    if (!(flags & MDB_RDONLY)) {
        p->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (p->fd < 0) {
            sv_err_t err = sv_store_err(errno);
            sv_prealloc_stop(p);
            return err;
        }
        if (!worth_it(st)) {
            close(p->fd);
            p->fd = -1;
        }
    }
    if (p->fd >= 0) {
        void *zeros = NULL;
        if (posix_memalign(&zeros, 4096, ZERO_CHUNK) != 0) {
            sv_prealloc_stop(p);
            return SV_ENOMEM;
        }
        p->zeros = memset(zeros, 0, ZERO_CHUNK);
        p->direct_fd = open(path, O_WRONLY | O_APPEND | O_DIRECT | O_CLOEXEC); /* -1: buffered only */
    }
    if (p->fd >= 0 && p->opts.period_ms > 0) {
        if (pthread_create(&p->thread, NULL, prealloc_main, p) != 0) {
            sv_prealloc_stop(p);
            return SV_ENOMEM;
        }
        p->has_thread = true;
    }
    *out = p;
    return SV_OK;
}

void sv_prealloc_stop(sv_prealloc_t *p)
{
    if (p == NULL)
        return;
    if (p->has_thread) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    if (p->fd >= 0)
        close(p->fd);
    if (p->direct_fd >= 0)
        close(p->direct_fd);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->zeros);
    free(p);
}

void sv_prealloc_stats(sv_prealloc_t *p, sv_prealloc_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return;
    out->written = atomic_load(&p->written);
    out->extensions = atomic_load(&p->extensions);
    out->skipped = atomic_load(&p->skipped);
    out->failures = atomic_load(&p->failures);
    out->margin = atomic_load(&p->margin);
    out->active = p->fd >= 0;
}
