/*
 * env.c - the LMDB environment of store/env.h.
 *
 * One environment holds every named database. Reads run on each thread's own
 * reused read transaction (reset/renew costs far less than begin/abort), so a
 * read never waits for the writer: LMDB's MVCC gives each reader a snapshot.
 *
 * The one thing readers and the writer must agree on is the map: when a write
 * fails with MDB_MAP_FULL the writer grows the map with mdb_env_set_mapsize(),
 * which LMDB only allows while no transaction of this process is active. Each
 * reader therefore holds its own mutex for the length of a snapshot, and
 * sv_store_grow() takes all of them. The mutexes are per reader, so on the hot
 * path a lock is never contended; only growth waits.
 *
 * Thread rules: sv_store_open/close on the main thread; a reader belongs to the
 * thread that created it; sv_store_grow only on the writer thread.
 */
#include "sv_autoconf.h"

#include "store/env.h"
#include "src/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static const char *const db_names[SV_DB_COUNT_] = {
    [SV_DB_META] = "meta",
    [SV_DB_TENANTS] = "tenants",
    [SV_DB_SECRETS] = "secrets",
    [SV_DB_VERSIONS] = "versions",
    [SV_DB_POLICIES] = "policies",
    [SV_DB_IDENTITIES] = "identities",
    [SV_DB_GROUPS] = "groups",
    [SV_DB_AUDIT] = "audit",
    [SV_DB_AUDIT_BY_REQUEST] = "audit_by_request",
    [SV_DB_AUDIT_BY_TIME] = "audit_by_time",
    [SV_DB_REVOCATIONS] = "revocations",
    [SV_DB_WAL] = "wal",
    [SV_DB_OUTBOX] = "outbox",
    [SV_DB_DELIVERIES] = "deliveries",
    [SV_DB_WEBHOOKS] = "webhooks",
    [SV_DB_SCHEDULE] = "schedule",
    [SV_DB_LEASES] = "leases",
    [SV_DB_ENGINES] = "engines",
    [SV_DB_CERTS] = "certs",
    [SV_DB_DNS_PROVIDERS] = "dns_providers",
    [SV_DB_FED_BACKENDS] = "fed_backends",
};

struct sv_store_reader {
    sv_store_t *st;
    MDB_txn *txn;
    sv_txn_t handle;
    pthread_mutex_t snapshot_lock; /* held from read_begin to read_end */
    unsigned depth;                /* nested read_begin calls of the owning thread */
    uint64_t begin_ns;             /* when the current snapshot began (for read_latency) */
    struct sv_store_reader *next;
};

struct sv_store {
    MDB_env *env;
    MDB_dbi dbi[SV_DB_COUNT_];
    bool has_db[SV_DB_COUNT_];
    char *dir;
    bool read_only;
    bool single_file;
    pthread_mutex_t readers_lock; /* guards the readers list */
    /* held while the map is resized, and while the meta pages are read
     * outside a transaction (mdb_env_info, mdb_env_stat): the resize unmaps
     * the pages those read (the prealloc thread, metrics scrapes) */
    pthread_mutex_t map_lock;
    sv_store_reader_t *readers;
    sv_latency_t read_latency; /* read snapshots, begin to end */
};

const char *sv_store_db_name(sv_db_t db)
{
    return (unsigned)db < SV_DB_COUNT_ ? db_names[db] : "?";
}

int sv_store_db_from_name(const char *name)
{
    for (int i = 0; i < SV_DB_COUNT_; i++)
        if (strcmp(db_names[i], name) == 0)
            return i;
    return -1;
}

sv_err_t sv_store_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return SV_OK;
    case MDB_NOTFOUND: return SV_ENOTFOUND;
    case MDB_KEYEXIST: return SV_EEXIST;
    case MDB_MAP_FULL: return SV_EMAPFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return SV_ECORRUPT;
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_DBS_FULL: return SV_EAGAIN;
    case MDB_BAD_VALSIZE: return SV_ETOOBIG;
    case ENOSPC:
    case EDQUOT: return SV_ENOSPC;
    case ENOMEM: return SV_ENOMEM;
    case ENOENT: return SV_ENOTFOUND;
    case ENOTDIR: return SV_EINVAL; /* a file where the data directory should be */
    case EACCES:
    case EPERM:
    case EROFS: return SV_EPERM;
    case EINVAL: return SV_EINVAL;
    default: return SV_EIO;
    }
}

MDB_env *sv_store_env(sv_store_t *st)
{
    return st->env;
}

MDB_dbi sv_store_dbi(sv_store_t *st, sv_db_t db)
{
    return st->dbi[db];
}

bool sv_store_has_db(sv_store_t *st, sv_db_t db)
{
    return st->has_db[db];
}

const char *sv_store_dir(sv_store_t *st)
{
    return st->dir;
}

size_t sv_store_map_size(sv_store_t *st)
{
    MDB_envinfo info;
    pthread_mutex_lock(&st->map_lock);
    mdb_env_info(st->env, &info);
    pthread_mutex_unlock(&st->map_lock);
    return info.me_mapsize;
}

sv_err_t sv_store_open_dbis(sv_store_t *st, MDB_txn *txn)
{
    for (int i = 0; i < SV_DB_COUNT_; i++) {
        MDB_dbi dbi;
        int rc = mdb_dbi_open(txn, db_names[i], 0, &dbi);
        if (rc == MDB_NOTFOUND) {
            st->has_db[i] = false;
            continue;
        }
        if (rc != MDB_SUCCESS)
            return sv_store_err(rc);
        st->dbi[i] = dbi;
        st->has_db[i] = true;
    }
    return SV_OK;
}

/* A single file (a backup) that is shorter than its meta page says, e.g. an
 * interrupted copy, would fault (SIGBUS) as soon as a missing page is touched
 * through the map. mdb_env_open has read only the meta pages, with read(2):
 * check the size before any page is. */
static sv_err_t check_file_size(MDB_env *env, const char *path)
{
    struct stat sb;
    MDB_envinfo ei;
    MDB_stat ms;
    if (stat(path, &sb) != 0)
        return sv_store_err(errno);
    mdb_env_info(env, &ei);
    mdb_env_stat(env, &ms);
    if ((uint64_t)sb.st_size < ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize)
        return SV_ECORRUPT;
    return SV_OK;
}

/* The size LMDB gives lock.mdb for max_readers slots: a header (MDB_txninfo,
 * two cache lines and the first slot) and one 64-byte MDB_reader per further
 * slot. tests/store/test_env.c checks it against the LMDB it is built with. */
static off_t lock_file_size(unsigned max_readers)
{
    return (off_t)(max_readers - 1) * 64 + 192;
}

/* Gives lock.mdb real blocks before LMDB maps it. LMDB sizes the file with
 * ftruncate (a sparse file) and writes its header and reader slots through a
 * shared mapping: on a full filesystem the first store to a page without a
 * block kills the process with SIGBUS instead of failing a call. With
 * fallocate(2) first, a full disk is an ENOSPC like any other.
 *
 * LMDB derives the number of reader slots from the size of an existing file,
 * so the file only grows while no other process has it open through LMDB: under
 * the lock that LMDB's own first opener takes (mdb_env_excl_lock: an fcntl
 * write lock on byte 0). Holes within the current size are filled in any case;
 * that changes neither a byte nor the size. The descriptor is closed before
 * mdb_env_open, which drops every fcntl lock this process holds on the file: no
 * other is held at this point (sv_store_lock_dir's callers close theirs first).
 *
 * Errors other than a full disk are left to mdb_env_open, which meets them
 * again and reports them (a read-only open goes on without a lock file on a
 * read-only filesystem). A lock.mdb created here is removed when it fails. */
static sv_err_t prepare_lock_file(const char *dir, unsigned max_readers)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/lock.mdb", dir) >= sizeof(path))
        return SV_EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return SV_OK;
    sv_err_t err = SV_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto close_fd;
    off_t len = sb.st_size;
    if (len < lock_file_size(max_readers)) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        if (fcntl(fd, F_SETLK, &fl) == 0)
            len = lock_file_size(max_readers); /* no other process uses it */
    }
    int rc = 0;
    if (len > 0) {
        do
            rc = fallocate(fd, 0, 0, len);
        while (rc != 0 && errno == EINTR);
    }
    if (rc != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
        err = (errno == ENOSPC || errno == EDQUOT) ? SV_ENOSPC : sv_store_err(errno);
close_fd:
    close(fd); /* drops the lock */
    if (err != SV_OK && created)
        unlink(path);
    return err;
}

/* Writes the system's text for errno e ("read-only file system") to
 * opts->why, when the caller asked for it. */
static void set_why(const sv_store_opts_t *opts, int e, const char *what)
{
    if (opts->why == NULL || opts->why_len == 0)
        return;
    snprintf(opts->why, opts->why_len, "%s%s", strerror(e), what);
    opts->why[0] = (char)tolower((unsigned char)opts->why[0]);
}

int sv_store_clear_stale_readers(sv_store_t *st)
{
    int dead = 0;
    if (st->single_file || mdb_reader_check(st->env, &dead) != MDB_SUCCESS)
        return 0;
    if (dead > 0)
        sv_log_warn("storage: cleared %d reader slot(s) of processes that ended without closing '%s' (a killed "
                    "backup or audit verify?): the pages their snapshots held can be reused",
                    dead, st->dir);
    return dead;
}

/* What an offline command does when LMDB finds damage (env.h). */
static int damage_exit_status = 1;
static void (*damage_cleanup)(void);

void sv_store_damage_exit(int exit_status)
{
    damage_exit_status = exit_status;
}

void sv_store_damage_cleanup(void (*cleanup)(void))
{
    damage_cleanup = cleanup;
}

/* LMDB checks each page as it walks a tree and aborts on one that makes no
 * sense: a damaged data.mdb. Say so in words first. A read-only opener (audit
 * verify, backup, restore) then removes its unfinished output and exits (1
 * unless the command chose otherwise), without LMDB's abort; the server
 * cannot go on with a half-walked tree and aborts (LMDB's own message
 * follows). A single-file store is a backup: no backup restores it. */
static void on_lmdb_assert(MDB_env *env, const char *msg)
{
    sv_store_t *st = mdb_env_get_userctx(env);
    if (st != NULL && st->single_file)
        sv_log_error("storage: '%s' is damaged (LMDB: %s): use another backup", st->dir, msg);
    else
        sv_log_error("storage: '%s/data.mdb' is damaged (LMDB: %s): restore a backup", st != NULL ? st->dir : "?",
                     msg);
    if (st != NULL && st->read_only) {
        if (damage_cleanup != NULL)
            damage_cleanup();
        _exit(damage_exit_status);
    }
}

sv_err_t sv_store_open(sv_store_t **out, const sv_store_opts_t *opts)
{
    sv_err_t err = SV_ENOMEM;
    if (opts->why != NULL && opts->why_len > 0)
        opts->why[0] = 0;
    sv_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return SV_ENOMEM;
    st->read_only = opts->read_only || opts->single_file;
    st->single_file = opts->single_file;
    pthread_mutex_init(&st->readers_lock, NULL);
    pthread_mutex_init(&st->map_lock, NULL);
    if ((st->dir = strdup(opts->dir)) == NULL)
        goto free_store;

    if (!opts->read_only && !opts->single_file && mkdir(opts->dir, 0700) != 0 && errno != EEXIST) {
        set_why(opts, errno, "");
        err = sv_store_err(errno);
        goto free_dir;
    }
    unsigned max_readers = opts->max_readers > 0 ? opts->max_readers : 126;
    if (!opts->single_file && (err = prepare_lock_file(opts->dir, max_readers)) != SV_OK) {
        if (err == SV_ENOSPC)
            set_why(opts, ENOSPC, " (for lock.mdb)");
        goto free_dir;
    }
    int rc = mdb_env_create(&st->env);
    if (rc != MDB_SUCCESS) {
        err = sv_store_err(rc);
        goto free_dir;
    }
    mdb_env_set_userctx(st->env, st);
    mdb_env_set_assert(st->env, on_lmdb_assert);
    mdb_env_set_maxdbs(st->env, 64);
    mdb_env_set_maxreaders(st->env, max_readers);
    if (opts->map_size > 0)
        mdb_env_set_mapsize(st->env, opts->map_size);

    unsigned flags = MDB_NOTLS; /* readers are tied to our reader objects, not to LMDB's TLS */
    if (opts->read_only || opts->single_file)
        flags |= MDB_RDONLY;
    if (opts->single_file)
        flags |= MDB_NOSUBDIR | MDB_NOLOCK;
    if (opts->no_sync)
        flags |= MDB_NOSYNC;
    struct stat db;
    char db_path[4096];
    if (opts->read_only && !opts->single_file &&
        (size_t)snprintf(db_path, sizeof(db_path), "%s/data.mdb", opts->dir) < sizeof(db_path) &&
        stat(db_path, &db) == 0 && db.st_size == 0) {
        /* LMDB would call an empty file a bad descriptor; a writer would make a new database of it */
        if (opts->why != NULL && opts->why_len > 0)
            snprintf(opts->why, opts->why_len, "'%s' is empty (0 bytes): a file cut short, or never written", db_path);
        err = SV_ECORRUPT;
        goto close_env;
    }
    rc = mdb_env_open(st->env, opts->dir, flags, 0600);
    if (rc == ENOMEM && opts->map_size > 0) {
        /* mmap of the whole map failed: far more likely a map larger than
         * the address space (or ulimit -v) allows than a lack of memory */
        set_why(opts, ENOMEM, "");
        err = SV_ETOOBIG;
        goto close_env;
    }
    if (rc != MDB_SUCCESS) {
        if (rc > 0) /* an errno: the system's words say more than the class */
            set_why(opts, rc, "");
        err = sv_store_err(rc);
        goto close_env;
    }
    /* A map size smaller than the file means another process grew it. */
    mdb_env_set_mapsize(st->env, 0);
    /* a data.mdb cut short (a bad copy, a full disk) would fault in the first
     * page read beyond its end */
    char data_path[4096];
    if (!opts->single_file && (size_t)snprintf(data_path, sizeof(data_path), "%s/data.mdb", opts->dir) >= sizeof(data_path)) {
        err = SV_EINVAL;
        goto close_env;
    }
    if ((err = check_file_size(st->env, opts->single_file ? opts->dir : data_path)) != SV_OK)
        goto close_env;

    sv_store_clear_stale_readers(st); /* before this process takes a slot of its own */
    MDB_txn *txn;
    rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        err = sv_store_err(rc);
        goto close_env;
    }
    err = sv_store_open_dbis(st, txn);
    if (err != SV_OK) {
        mdb_txn_abort(txn);
        goto close_env;
    }
    /* DBI handles opened in a read-only transaction stay valid once it commits. */
    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        err = sv_store_err(rc);
        goto close_env;
    }
    *out = st;
    return SV_OK;

close_env:
    mdb_env_close(st->env);
free_dir:
    free(st->dir);
free_store:
    pthread_mutex_destroy(&st->readers_lock);
    pthread_mutex_destroy(&st->map_lock);
    free(st);
    return err;
}

void sv_store_close(sv_store_t *st)
{
    if (st == NULL)
        return;
    mdb_env_close(st->env);
    pthread_mutex_destroy(&st->readers_lock);
    pthread_mutex_destroy(&st->map_lock);
    free(st->dir);
    free(st);
}

/* ---- readers ---- */

sv_err_t sv_store_reader_new(sv_store_t *st, sv_store_reader_t **out)
{
    sv_store_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return SV_ENOMEM;
    r->st = st;
    pthread_mutex_init(&r->snapshot_lock, NULL);
    /* not in the readers list yet, so a resize would not wait for this
     * snapshot: hold the map still until it is reset */
    pthread_mutex_lock(&st->map_lock);
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(st->env, 0);
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
    }
    if (rc == MDB_SUCCESS)
        mdb_txn_reset(r->txn);
    pthread_mutex_unlock(&st->map_lock);
    if (rc != MDB_SUCCESS) {
        pthread_mutex_destroy(&r->snapshot_lock);
        free(r);
        return sv_store_err(rc);
    }
    r->handle.st = st;
    r->handle.txn = r->txn;
    pthread_mutex_lock(&st->readers_lock);
    r->next = st->readers;
    st->readers = r;
    pthread_mutex_unlock(&st->readers_lock);
    *out = r;
    return SV_OK;
}

void sv_store_reader_free(sv_store_reader_t *r)
{
    if (r == NULL)
        return;
    sv_store_t *st = r->st;
    pthread_mutex_lock(&st->readers_lock);
    for (sv_store_reader_t **p = &st->readers; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&st->readers_lock);
    mdb_txn_abort(r->txn);
    pthread_mutex_destroy(&r->snapshot_lock);
    free(r);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

sv_err_t sv_store_read_begin(sv_store_reader_t *r, sv_txn_t **txn)
{
    if (r->depth > 0) {
        /* nested on the owning thread (e.g. an authorization check inside a
         * handler's read): share the open snapshot */
        r->depth++;
        *txn = &r->handle;
        return SV_OK;
    }
    r->begin_ns = mono_ns(); /* includes waiting for a map resize */
    pthread_mutex_lock(&r->snapshot_lock);
    int rc = mdb_txn_renew(r->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* another process grew the map: adopt its size (readers of the meta
         * pages outside a snapshot wait) */
        pthread_mutex_lock(&r->st->map_lock);
        mdb_env_set_mapsize(r->st->env, 0);
        pthread_mutex_unlock(&r->st->map_lock);
        rc = mdb_txn_renew(r->txn);
    }
    if (rc != MDB_SUCCESS) {
        pthread_mutex_unlock(&r->snapshot_lock);
        return sv_store_err(rc);
    }
    r->depth = 1;
    *txn = &r->handle;
    return SV_OK;
}

void sv_store_read_end(sv_store_reader_t *r)
{
    if (--r->depth > 0)
        return;
    mdb_txn_reset(r->txn);
    pthread_mutex_unlock(&r->snapshot_lock);
    /* rounded up to the microsecond: a read that happened took time */
    sv_latency_record(&r->st->read_latency, (mono_ns() - r->begin_ns + 999) / 1000);
}

sv_latency_t *sv_store_read_latency(sv_store_t *st)
{
    return &st->read_latency;
}

sv_err_t sv_txn_get(sv_txn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t *val)
{
    if (!tx->st->has_db[db])
        return SV_ENOTFOUND;
    MDB_val k = {key.len, (void *)key.base}, v;
    int rc = mdb_get(tx->txn, tx->st->dbi[db], &k, &v);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    val->base = v.mv_data;
    val->len = v.mv_size;
    return SV_OK;
}

/* ---- iteration ---- */

sv_err_t sv_iter_open(sv_txn_t *tx, sv_db_t db, sv_bytes_t prefix, sv_bytes_t seek, bool reverse, sv_iter_t *it)
{
    memset(it, 0, sizeof(*it));
    if (!tx->st->has_db[db])
        return SV_ENOTFOUND;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[db], &it->cur);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    it->prefix = prefix;
    it->seek = seek;
    it->reverse = reverse;
    return SV_OK;
}

static bool has_prefix(const MDB_val *k, sv_bytes_t prefix)
{
    return prefix.len == 0 || (k->mv_size >= prefix.len && memcmp(k->mv_data, prefix.base, prefix.len) == 0);
}

/* Positions a reverse walk on the last key that has the prefix (or is < seek). */
static int reverse_start(sv_iter_t *it, MDB_val *k, MDB_val *v)
{
    int rc;
    if (it->seek.len > 0) {
        *k = (MDB_val){it->seek.len, (void *)it->seek.base};
        rc = mdb_cursor_get(it->cur, k, v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND)
            return mdb_cursor_get(it->cur, k, v, MDB_LAST);
        if (rc != MDB_SUCCESS)
            return rc;
        /* the seek key itself is excluded in a reverse walk: step back */
        return mdb_cursor_get(it->cur, k, v, MDB_PREV);
    }
    /* find the first key past the prefix range: prefix with its last byte
     * incremented (carrying), then step back one */
    uint8_t upper[512];
    size_t n = it->prefix.len;
    if (n == 0)
        return mdb_cursor_get(it->cur, k, v, MDB_LAST);
    if (n > sizeof(upper))
        return EINVAL;
    memcpy(upper, it->prefix.base, n);
    while (n > 0 && upper[n - 1] == 0xff)
        n--;
    if (n == 0)
        return mdb_cursor_get(it->cur, k, v, MDB_LAST);
    upper[n - 1]++;
    *k = (MDB_val){n, upper};
    rc = mdb_cursor_get(it->cur, k, v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(it->cur, k, v, MDB_LAST);
    if (rc != MDB_SUCCESS)
        return rc;
    return mdb_cursor_get(it->cur, k, v, MDB_PREV);
}

sv_err_t sv_iter_next(sv_iter_t *it, sv_bytes_t *key, sv_bytes_t *val)
{
    MDB_val k, v;
    int rc;
    if (!it->started) {
        it->started = true;
        if (it->reverse) {
            rc = reverse_start(it, &k, &v);
        } else {
            sv_bytes_t from = it->seek.len > 0 ? it->seek : it->prefix;
            k = (MDB_val){from.len, (void *)from.base};
            rc = from.len > 0 ? mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE)
                              : mdb_cursor_get(it->cur, &k, &v, MDB_FIRST);
        }
    } else {
        rc = mdb_cursor_get(it->cur, &k, &v, it->reverse ? MDB_PREV : MDB_NEXT);
    }
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    if (!has_prefix(&k, it->prefix))
        return SV_ENOTFOUND;
    key->base = k.mv_data;
    key->len = k.mv_size;
    if (val != NULL) {
        val->base = v.mv_data;
        val->len = v.mv_size;
    }
    return SV_OK;
}

void sv_iter_close(sv_iter_t *it)
{
    if (it->cur != NULL)
        mdb_cursor_close(it->cur);
    it->cur = NULL;
}

/* ---- map growth ---- */

sv_err_t sv_store_grow(sv_store_t *st, size_t need)
{
    size_t cur = sv_store_map_size(st);
    size_t next = cur * 2;
    if (next < cur + need * 2)
        next = cur + need * 2;
    pthread_mutex_lock(&st->readers_lock);
    for (sv_store_reader_t *r = st->readers; r != NULL; r = r->next)
        pthread_mutex_lock(&r->snapshot_lock);
    pthread_mutex_lock(&st->map_lock);
    int rc = mdb_env_set_mapsize(st->env, next);
    pthread_mutex_unlock(&st->map_lock);
    for (sv_store_reader_t *r = st->readers; r != NULL; r = r->next)
        pthread_mutex_unlock(&r->snapshot_lock);
    pthread_mutex_unlock(&st->readers_lock);
    return sv_store_err(rc);
}

bool sv_store_disk_full(sv_store_t *st)
{
    struct statvfs vfs;
    if (statvfs(st->dir, &vfs) != 0)
        return false;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)1 << 20);
}

/* mdb_reader_list() calls back once per slot in use (after a header line). */
static int count_reader(const char *line, void *ctx)
{
    while (*line == ' ')
        line++;
    if (*line >= '0' && *line <= '9')
        (*(unsigned *)ctx)++;
    return 0;
}

void sv_store_reader_stats(sv_store_t *st, unsigned *used, unsigned *max)
{
    unsigned m = 0, n = 0;
    mdb_env_get_maxreaders(st->env, &m);
    mdb_reader_list(st->env, count_reader, &n);
    *max = m;
    *used = n;
}

uint64_t sv_store_used_bytes(sv_store_t *st)
{
    MDB_envinfo info;
    MDB_stat stat;
    pthread_mutex_lock(&st->map_lock);
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &stat);
    pthread_mutex_unlock(&st->map_lock);
    return ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
}

double sv_store_map_used_pct(sv_store_t *st)
{
    size_t map = sv_store_map_size(st);
    return map == 0 ? 0 : 100.0 * (double)sv_store_used_bytes(st) / (double)map;
}
