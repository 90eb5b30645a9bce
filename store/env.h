/*
 * env.h - the LMDB storage engine: one environment, its named databases, read
 * transactions, cursors over key prefixes, and map growth.
 *
 * Writes do not live here: a write transaction exists only inside the writer
 * thread (wal/writer.h), which wraps every put and delete so that the change
 * log records it. This module knows nothing of HTTP, JSON or the records'
 * meaning.
 */
#ifndef SV_STORE_ENV_H
#define SV_STORE_ENV_H

#include <lmdb.h>
#include <pthread.h>

#include "src/latency.h"
#include "src/sv.h"

/* The named databases. The numbers are stable: change records (wal/) name a
 * database by its number, so new databases are only ever added at the end. */
typedef enum {
    SV_DB_META = 0,
    SV_DB_TENANTS,
    SV_DB_SECRETS,
    SV_DB_VERSIONS,
    SV_DB_POLICIES,
    SV_DB_IDENTITIES,
    SV_DB_GROUPS,
    SV_DB_AUDIT,
    SV_DB_AUDIT_BY_REQUEST,
    SV_DB_AUDIT_BY_TIME,
    SV_DB_REVOCATIONS,
    SV_DB_WAL,
    SV_DB_OUTBOX,
    SV_DB_DELIVERIES,
    SV_DB_WEBHOOKS,
    SV_DB_SCHEDULE,
    SV_DB_LEASES,
    SV_DB_ENGINES,
    SV_DB_CERTS,
    SV_DB_DNS_PROVIDERS,
    SV_DB_FED_BACKENDS,
    SV_DB_COUNT_
} sv_db_t;

/** The name of db in LMDB ("secrets", ...). */
const char *sv_store_db_name(sv_db_t db);
/** The database called name, or -1. */
int sv_store_db_from_name(const char *name);

typedef struct sv_store sv_store_t;
typedef struct sv_store_reader sv_store_reader_t;

typedef struct {
    const char *dir;      /* the data directory; created (0700) if missing */
    size_t map_size;      /* initial map size in bytes; grows when full */
    unsigned max_readers; /* LMDB reader slots (DB_POOL_SIZE) */
    bool read_only;       /* offline tools: no writer, no migrations */
    bool no_sync;         /* tests and benchmarks only: MDB_NOSYNC */
    bool single_file;     /* dir names one LMDB data file (a backup): opened
                             read-only, without a lock file (MDB_NOSUBDIR |
                             MDB_NOLOCK); nobody else may write it meanwhile */
    char *why;            /* out, may be NULL: on failure, the system's words for
                             the cause when there are any ("read-only file
                             system", "not a directory"), else "" */
    size_t why_len;
} sv_store_opts_t;

/** Frees the reader slots of processes that ended without closing the
 * environment (a killed backup or audit verify): LMDB would otherwise keep
 * their snapshots alive, never reuse the pages freed since, and run out of
 * slots. Logs a warning with the count when there were any; returns it. */
int sv_store_clear_stale_readers(sv_store_t *st);

/** For offline commands: when LMDB finds a damaged page in a read-only store,
 * the process logs which file is damaged, runs cleanup (when set: it removes
 * unfinished output, store/backup.c) and exits with exit_status (default 1). */
void sv_store_damage_exit(int exit_status);
void sv_store_damage_cleanup(void (*cleanup)(void));

/** Opens (creating if needed) the environment in opts->dir and opens every
 * named database that the stored schema has. Does not migrate: call
 * sv_migrate_*() (store/migrate.h) next. The blocks of lock.mdb are allocated
 * first, so that a full disk is an error rather than a fault in LMDB's mapping.
 * Errors: SV_EIO; SV_ENOSPC (also: no room for lock.mdb); SV_EPERM (EACCES,
 * EPERM, EROFS); SV_EINVAL (dir is not a directory); SV_ETOOBIG (the map does
 * not fit in the address space: map_size too large); SV_ENOMEM; SV_ECORRUPT.
 * On success *out is owned by the caller (sv_store_close). */
sv_err_t sv_store_open(sv_store_t **out, const sv_store_opts_t *opts);
/** Closes the environment. Every reader must have been freed and the writer stopped. */
void sv_store_close(sv_store_t *st);

/** The raw LMDB environment (for the writer, migrations and backup). */
MDB_env *sv_store_env(sv_store_t *st);
/** The DBI handle of db. Valid for the life of st. */
MDB_dbi sv_store_dbi(sv_store_t *st, sv_db_t db);
/** Whether db exists in the current schema. */
bool sv_store_has_db(sv_store_t *st, sv_db_t db);
/** (Re)opens the DBI handles of every database that exists; used by migrations
 * after they create or drop one. Must run inside txn (a write transaction). */
sv_err_t sv_store_open_dbis(sv_store_t *st, MDB_txn *txn);
/** The data directory. */
const char *sv_store_dir(sv_store_t *st);
/** Current map size in bytes. */
size_t sv_store_map_size(sv_store_t *st);

/** Translates an LMDB or errno code into sv_err_t. */
sv_err_t sv_store_err(int rc);

/* ---- transactions (read, and the base of the writer's write transaction) ---- */

/** A transaction handle shared by readers and the writer. Read helpers take it. */
typedef struct {
    MDB_txn *txn;
    sv_store_t *st;
} sv_txn_t;

/** Creates a reader for the calling thread: one reused read transaction
 * (mdb_txn_reset/renew). Each worker, the scheduler and each offline tool owns
 * one. Errors: SV_ENOMEM, SV_EAGAIN (no reader slot: raise DB_POOL_SIZE). */
sv_err_t sv_store_reader_new(sv_store_t *st, sv_store_reader_t **out);
void sv_store_reader_free(sv_store_reader_t *r);
/** Begins a read snapshot on the reader's transaction. Must be ended with
 * sv_store_read_end() on the same thread before returning to the event loop.
 * The returned txn pointer is valid until then. Calls nest: a begin while the
 * reader's snapshot is open shares that snapshot, and only the outermost end
 * closes it. */
sv_err_t sv_store_read_begin(sv_store_reader_t *r, sv_txn_t **txn);
void sv_store_read_end(sv_store_reader_t *r);

/** Looks key up in db. On success *val points into the map and stays valid
 * until the transaction ends. Errors: SV_ENOTFOUND, SV_ECORRUPT, SV_EIO. */
sv_err_t sv_txn_get(sv_txn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t *val);

/** An ordered walk over the keys of db that start with prefix. */
typedef struct {
    MDB_cursor *cur;
    sv_bytes_t prefix;
    sv_bytes_t seek;
    bool started;
    bool reverse;
} sv_iter_t;

/** Opens it on db. The walk starts at the first key >= seek (or >= prefix when
 * seek.len == 0); reverse walks from the last key with the prefix down.
 * prefix and seek must outlive the iterator. */
sv_err_t sv_iter_open(sv_txn_t *tx, sv_db_t db, sv_bytes_t prefix, sv_bytes_t seek, bool reverse, sv_iter_t *it);
/** Next key/value with the prefix. SV_ENOTFOUND at the end. Pointers are valid
 * until the next call or the end of the transaction. */
sv_err_t sv_iter_next(sv_iter_t *it, sv_bytes_t *key, sv_bytes_t *val);
void sv_iter_close(sv_iter_t *it);

/* ---- map growth ---- */

/** Grows the map (doubling, at least by need bytes). Only the writer thread
 * calls it, with no write transaction open; it waits for in-flight read
 * snapshots of this process to end. */
sv_err_t sv_store_grow(sv_store_t *st, size_t need);

/** Whether the filesystem of the data directory is (nearly) full: less than
 * 1 MiB available. LMDB reports a write cut short by a full disk as EIO; the
 * writer asks this to tell a full disk (507) from a failing one (503). */
bool sv_store_disk_full(sv_store_t *st);

/** Reader slot statistics for health: slots in use now (by any process)
 * and the maximum (DB_POOL_SIZE). */
void sv_store_reader_stats(sv_store_t *st, unsigned *used, unsigned *max);
/** Bytes of the data file in use: up to and including LMDB's last page. */
uint64_t sv_store_used_bytes(sv_store_t *st);
/** Percentage of the map in use (0-100). */
double sv_store_map_used_pct(sv_store_t *st);
/** Durations of read snapshots (sv_store_read_begin to _end, rounded up to
 * the microsecond), recorded by every reader; valid for the life of st. */
sv_latency_t *sv_store_read_latency(sv_store_t *st);

#endif
