/*
 * backup.c - backups and restores of backup.h.
 *
 * The copy is LMDB's own mdb_env_copyfd2 with MDB_CP_COMPACT: it runs in one
 * read transaction, so it is a consistent snapshot taken while the server
 * writes, and it leaves out free pages, so the file is as small as the data.
 * The design choice is that the file proves itself: the LSN, the schema
 * version and the instance id are read back from the finished copy, and the
 * copy is walked (every database, every change record's checksum) before it
 * is renamed into place. A restore runs the same verification on its input,
 * so a truncated or foreign file never replaces a data directory.
 *
 * Every file goes through install_file(): a temporary file in the target's
 * directory, fsync, rename, fsync of the directory, all through the fault
 * seams. The offline commands (`scaivault backup`, `scaivault restore`) call
 * this module on their main thread; nothing here runs inside the server.
 */
#include "sv_autoconf.h"

#include "store/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"
#include "store/fault.h"
#include "store/migrate.h"
#include "wal/log.h"

#define COPY_CHUNK (1u << 20)

/* Fills the temporary file fd (at tmp_path) with the new contents. */
typedef sv_err_t (*fill_fn)(int fd, const char *tmp_path, void *arg);

static sv_err_t errno_err(int e)
{
    return e == ENOENT ? SV_ENOTFOUND : sv_store_err(e);
}

/* fsyncs the directory that holds path, so that a rename in it is durable. */
static sv_err_t sync_parent_dir(const char *path)
{
    return sv_sys_fsync_parent(path) == 0 ? SV_OK : errno_err(errno);
}

/* ---- temporary files ----
 *
 * A temporary file is locked (flock) by the process that writes it, from
 * just after mkstemp until it is renamed or removed. A regular file of that
 * name that no one holds and that has not changed for STALE_TEMP_S was left
 * by a process that died (SIGKILL, a crash): the next backup or restore to
 * the same name removes it (the age covers the instant between mkstemp and
 * flock, and file systems without flock). The temporary files in progress
 * are also listed for the commands' signal handler (SIGINT, SIGTERM, SIGHUP),
 * which removes them before the process ends. */

#define TEMP_SLOTS 2
#define STALE_TEMP_S 60
static char temp_paths[TEMP_SLOTS][4096];
static volatile sig_atomic_t temp_used[TEMP_SLOTS]; /* the handler reads a path only while its slot is used */

static void temp_track(const char *tmp, bool on)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        if (on && !temp_used[i] && strlen(tmp) < sizeof(temp_paths[i])) {
            memcpy(temp_paths[i], tmp, strlen(tmp) + 1);
            __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the path before the flag */
            temp_used[i] = 1;
            return;
        }
        if (!on && temp_used[i] && strcmp(temp_paths[i], tmp) == 0) {
            temp_used[i] = 0;
            return;
        }
    }
}

/* Async-signal-safe: also what a damage exit runs (sv_store_damage_cleanup). */
static void remove_tracked_temps(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (temp_used[i])
            unlink(temp_paths[i]);
}

static void on_signal(int sig)
{
    remove_tracked_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

void sv_store_temps_on_signals(void)
{
    sv_store_damage_cleanup(remove_tracked_temps);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue; /* ignored when we started (nohup, a background job): stays so */
        signal(sigs[i], on_signal);
    }
}

/* Removes the temporary files of path ("<path>.tmp-XXXXXX") that no process
 * holds. */
static void remove_stale_temps(const char *path)
{
    char *copy = strdup(path), *copy2 = strdup(path);
    const char *parent = copy != NULL && copy2 != NULL ? dirname(copy) : NULL;
    DIR *d = parent != NULL ? opendir(parent) : NULL;
    if (d != NULL) {
        const char *base = basename(copy2);
        size_t bl = strlen(base);
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (strncmp(e->d_name, base, bl) != 0 || strncmp(e->d_name + bl, ".tmp-", 5) != 0 ||
                strlen(e->d_name + bl + 5) != 6)
                continue;
            char full[4096];
            if ((size_t)snprintf(full, sizeof(full), "%s/%s", parent, e->d_name) >= sizeof(full))
                continue;
            /* O_NONBLOCK: a FIFO of that name must not hang us; only regular files go */
            int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
            if (fd < 0)
                continue;
            struct stat sb;
            if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && time(NULL) - sb.st_mtime >= STALE_TEMP_S &&
                flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(full) == 0)
                sv_log_info("removed '%s', left by an interrupted backup or restore", full);
            close(fd);
        }
        closedir(d);
    }
    free(copy);
    free(copy2);
}

/* A file written under a temporary name next to its final path, fsynced,
 * waiting for its rename; fd holds its lock. */
typedef struct {
    char *tmp;
    const char *path;
    int fd;
} staged_t;

static void staged_discard(staged_t *sf)
{
    if (sf->tmp != NULL) {
        unlink(sf->tmp);
        temp_track(sf->tmp, false);
        close(sf->fd);
    }
    free(sf->tmp);
    sf->tmp = NULL;
}

/* Writes the contents of path to a temporary file beside it (see the top of
 * the file); on error nothing is left behind. */
static sv_err_t stage_file(const char *path, mode_t mode, fill_fn fill, void *arg, staged_t *sf)
{
    remove_stale_temps(path);
    size_t n = strlen(path) + 16;
    sf->path = path;
    if ((sf->tmp = malloc(n)) == NULL)
        return SV_ENOMEM;
    snprintf(sf->tmp, n, "%s.tmp-XXXXXX", path);
    sf->fd = mkstemp(sf->tmp);
    if (sf->fd < 0) {
        sv_err_t err = errno_err(errno);
        free(sf->tmp);
        sf->tmp = NULL;
        return err;
    }
    temp_track(sf->tmp, true); /* a signal before this leaves the file to the next run's clean-up */
    (void)flock(sf->fd, LOCK_EX | LOCK_NB); /* may be unsupported (NFS without locks): the age rule remains */
    sv_err_t err = fchmod(sf->fd, mode) == 0 ? SV_OK : sv_store_err(errno);
    if (err == SV_OK)
        err = fill(sf->fd, sf->tmp, arg);
    if (err == SV_OK && sv_sys_fsync(sf->fd) != 0)
        err = sv_store_err(errno);
    if (err != SV_OK)
        staged_discard(sf);
    return err;
}

/* Renames a staged file into place and makes the rename durable. *renamed
 * says whether the file is in place (also when the directory's fsync then
 * failed). */
static sv_err_t staged_install(staged_t *sf, bool *renamed)
{
    *renamed = false;
    if (sv_sys_rename(sf->tmp, sf->path) != 0) {
        sv_err_t err = sv_store_err(errno);
        staged_discard(sf);
        return err;
    }
    *renamed = true;
    temp_track(sf->tmp, false);
    close(sf->fd); /* fsynced in stage_file: close reports nothing more here */
    free(sf->tmp);
    sf->tmp = NULL;
    return sync_parent_dir(sf->path);
}

/* Writes path through a temporary file next to it. */
static sv_err_t install_file(const char *path, mode_t mode, fill_fn fill, void *arg)
{
    staged_t sf;
    bool renamed;
    sv_err_t err = stage_file(path, mode, fill, arg, &sf);
    return err == SV_OK ? staged_install(&sf, &renamed) : err;
}

/* ---- verification ---- */

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* Walks every entry of db; checks every change record when db is the log. */
static sv_err_t walk_db(sv_txn_t *tx, sv_db_t db, uint64_t *records)
{
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, db, (sv_bytes_t){NULL, 0}, (sv_bytes_t){NULL, 0}, false, &it);
    if (err != SV_OK)
        return err;
    sv_bytes_t k, v;
    while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
        (*records)++;
        if (db == SV_DB_WAL) {
            sv_wal_record_t rec;
            if (k.len != 8 || sv_wal_decode(v, sv_get_be64(k.base), &rec) != SV_OK) {
                err = SV_ECORRUPT;
                break;
            }
        }
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

static sv_err_t read_info(sv_store_t *st, sv_backup_info_t *info)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_err_t err = sv_store_reader_new(st, &r);
    if (err != SV_OK)
        return err;
    if ((err = sv_store_read_begin(r, &tx)) != SV_OK)
        goto free_reader;
    if ((err = sv_wal_applied_lsn(tx, &info->lsn)) != SV_OK)
        goto end_read;
    sv_bytes_t id;
    if (sv_txn_get(tx, SV_DB_META, SV_BYTES_STR(SV_META_INSTANCE_ID), &id) == SV_OK && id.len == 17 && id.base[0] == 1)
        hex(info->instance_id, id.base + 1, 16);
    for (int db = 0; db < SV_DB_COUNT_ && err == SV_OK; db++)
        if (sv_store_has_db(st, (sv_db_t)db))
            err = walk_db(tx, (sv_db_t)db, &info->records);
    if (err == SV_ENOTFOUND || err == SV_EINVAL)
        err = SV_ECORRUPT; /* a named database that cannot be walked */
end_read:
    sv_store_read_end(r);
free_reader:
    sv_store_reader_free(r);
    return err;
}

sv_err_t sv_store_backup_verify(const char *path, sv_backup_info_t *info)
{
    memset(info, 0, sizeof(*info));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno_err(errno);
    if (!S_ISREG(sb.st_mode))
        return SV_ECORRUPT;
    info->bytes = (uint64_t)sb.st_size;
    sv_store_t *st;
    sv_store_opts_t so = {.dir = path, .single_file = true};
    sv_err_t err = sv_store_open(&st, &so);
    if (err == SV_EINVAL || err == SV_EIO || err == SV_ENOTFOUND)
        err = SV_ECORRUPT; /* LMDB refuses a file that is not one of its own (ENOENT: empty) */
    if (err != SV_OK)
        return err;
    if ((err = sv_migrate_current(st, &info->schema_version)) != SV_OK)
        goto close_store;
    if (info->schema_version == 0 || info->schema_version > SV_SCHEMA_VERSION) {
        err = SV_ESCHEMA;
        goto close_store;
    }
    err = read_info(st, info);
close_store:
    sv_store_close(st);
    return err;
}

/* ---- backup ---- */

typedef struct {
    sv_store_t *st;
    sv_backup_info_t *info;
} backup_ctx_t;

static sv_err_t fill_backup(int fd, const char *tmp_path, void *arg)
{
    backup_ctx_t *c = arg;
    MDB_env *env = sv_store_env(c->st);
    /* LMDB's compacting copy trusts every page it walks: a damaged page can
     * send it past its cursor stack. Walk the source with LMDB's checks first
     * (damage ends the process, removing the tracked temporary files). The
     * copy reads a later snapshot than the walk: pages written in between
     * are the server's own fresh writes, damage is in pages both share. */
    sv_err_t err = SV_OK;
    int rc = MDB_MAP_RESIZED;
    for (int attempt = 0; err == SV_OK && attempt < 3 && rc == MDB_MAP_RESIZED; attempt++) {
        if (attempt > 0) {
            /* the server grew the map while we started: adopt it, start over */
            mdb_env_set_mapsize(env, 0);
            if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
                err = sv_store_err(errno);
        }
        sv_backup_info_t source;
        memset(&source, 0, sizeof(source));
        if (err == SV_OK && (err = read_info(c->st, &source)) == SV_ECORRUPT)
            c->info->source_damaged = true;
        if (err == SV_OK)
            rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    }
    if (err == SV_OK && rc != MDB_SUCCESS)
        err = rc == EPIPE ? SV_EIO : sv_store_err(rc);
    if (err == SV_OK) {
        err = sv_store_backup_verify(tmp_path, c->info);
        if (err == SV_ESCHEMA)
            err = SV_OK; /* a backup copies whatever schema it finds */
    }
    return err;
}

typedef struct {
    const uint8_t *data;
    size_t len;
} buf_ctx_t;

static sv_err_t fill_buffer(int fd, const char *tmp_path, void *arg);

sv_err_t sv_store_backup(sv_store_t *st, const char *out_path, sv_backup_info_t *info, sv_backup_sidecar_fn sidecar,
                         void *arg)
{
    memset(info, 0, sizeof(info[0]));
    backup_ctx_t c = {st, info};
    staged_t copy, side = {0};
    sv_err_t err = stage_file(out_path, 0600, fill_backup, &c, &copy);
    if (err != SV_OK)
        return err;
    /* the sidecar is staged before anything is renamed, so that a failure
     * to write it leaves the older backup of the same name and its sidecar */
    size_t n = strlen(out_path) + 6;
    char *side_path = malloc(n);
    char *text = NULL;
    size_t len = 0;
    if (side_path == NULL)
        err = SV_ENOMEM;
    else if ((err = sidecar(copy.tmp, info, arg, &text, &len)) == SV_OK) {
        snprintf(side_path, n, "%s.json", out_path);
        buf_ctx_t b = {(const uint8_t *)text, len};
        err = stage_file(side_path, 0600, fill_buffer, &b, &side);
    }
    free(text);
    if (err != SV_OK) {
        staged_discard(&copy);
        goto free_path;
    }
    bool renamed;
    err = staged_install(&copy, &renamed);
    if (!renamed) {
        staged_discard(&side);
        goto free_path;
    }
    info->installed = true; /* the copy is in place, whatever its directory's fsync said */
    sv_err_t serr = staged_install(&side, &info->sidecar_installed);
    if (!info->sidecar_installed) {
        unlink(side_path); /* the older backup's sidecar would not match the new file */
        sync_parent_dir(side_path);
    }
    if (err == SV_OK)
        err = serr;
free_path:
    free(side_path);
    return err;
}

/* ---- writing a buffer ---- */
/* ---- writing a buffer ---- */

static sv_err_t write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = sv_sys_write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return sv_store_err(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return SV_OK;
}

static sv_err_t fill_buffer(int fd, const char *tmp_path, void *arg)
{
    buf_ctx_t *c = arg;
    return write_all(fd, c->data, c->len);
}

sv_err_t sv_store_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    buf_ctx_t c = {data, len};
    return install_file(path, mode, fill_buffer, &c);
}

/* ---- restore ---- */

static sv_err_t fill_copy(int fd, const char *tmp_path, void *arg)
{
    const char *in_path = arg;
    int in = open(in_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno_err(errno);
    uint8_t *buf = malloc(COPY_CHUNK);
    sv_err_t err = buf != NULL ? SV_OK : SV_ENOMEM;
    while (err == SV_OK) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = sv_store_err(errno);
        if (n <= 0)
            break;
        err = write_all(fd, buf, (size_t)n);
    }
    free(buf);
    close(in);
    return err;
}

/* Whether dir holds anything. */
static sv_err_t dir_is_empty(const char *dir, bool *empty)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno_err(errno);
    *empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* server.lock holds nothing: an earlier restore's claim (sv_store_claim_dir) */
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && strcmp(e->d_name, "server.lock") != 0) {
            *empty = false;
            break;
        }
    }
    closedir(d);
    return SV_OK;
}

sv_err_t sv_store_lock_dir(const char *dir, int *lock_fd)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    *lock_fd = open(path, O_RDWR | O_CLOEXEC);
    if (*lock_fd < 0)
        return errno == ENOENT ? SV_OK : sv_store_err(errno);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(*lock_fd, F_SETLK, &fl) != 0) {
        sv_err_t err = (errno == EAGAIN || errno == EACCES) ? SV_EAGAIN : sv_store_err(errno);
        close(*lock_fd);
        *lock_fd = -1;
        return err;
    }
    return SV_OK;
}

sv_err_t sv_store_claim_dir(const char *dir, int *lock_fd)
{
    *lock_fd = -1;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/server.lock", dir) >= sizeof(path))
        return SV_EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno_err(errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        sv_err_t err = errno == EWOULDBLOCK ? SV_EAGAIN : sv_store_err(errno);
        close(fd);
        return err;
    }
    *lock_fd = fd; /* the lock lasts until it is closed */
    return SV_OK;
}

/* The audit journal of the database just replaced (src/audit_journal.h)
 * belongs to that database's chain, not to the restored one's. */
static sv_err_t drop_audit_journal(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/audit.journal", dir);
    if (unlink(path) != 0)
        return errno == ENOENT ? SV_OK : errno_err(errno);
    return sync_parent_dir(path);
}

sv_err_t sv_store_restore(const char *in_path, const char *dir, bool force, sv_backup_info_t *info)
{
    sv_err_t err = sv_store_backup_verify(in_path, info);
    if (err != SV_OK)
        return err;
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (mkdir(dir, 0700) != 0) {
        if (errno != EEXIST)
            return errno_err(errno);
        remove_stale_temps(path); /* an earlier restore's, killed: not a reason to call the directory in use */
        bool empty = false;
        if ((err = dir_is_empty(dir, &empty)) != SV_OK)
            return err;
        if (!empty && !force)
            return SV_EEXIST;
    }
    /* no server may start on it meanwhile (server.lock), and no process may have it open (lock.mdb) */
    int claim_fd;
    if ((err = sv_store_claim_dir(dir, &claim_fd)) != SV_OK)
        return err;
    int lock_fd = -1;
    if ((err = sv_store_lock_dir(dir, &lock_fd)) != SV_OK) {
        close(claim_fd);
        return err;
    }
    err = install_file(path, 0600, fill_copy, (void *)in_path); /* the lock is held: no server opens the old file */
    if (err == SV_OK)
        err = drop_audit_journal(dir);
    if (lock_fd >= 0)
        close(lock_fd); /* drops the lock */
    close(claim_fd);
    return err;
}
