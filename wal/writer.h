/*
 * writer.h - the group-commit writer: the only thread that opens an LMDB write
 * transaction.
 *
 * Callers (HTTP workers, the scheduler, tools) describe one API operation as a
 * *unit*: an apply function that makes its changes through sv_wtxn_put/del,
 * and a completion callback. The writer drains its queue up to a batch limit,
 * applies every unit in one transaction (each in a nested transaction, so that
 * a unit that fails, e.g. on a check-and-set conflict, fails alone), appends
 * each unit's audit entry through the audit hook, makes one durable commit,
 * and then completes every unit of the batch. No fsync and no write
 * transaction ever runs on a worker.
 */
#ifndef SV_WAL_WRITER_H
#define SV_WAL_WRITER_H

#include "src/latency.h"
#include "store/env.h"
#include "wal/log.h"

typedef struct sv_writer sv_writer_t;
typedef struct sv_wtxn sv_wtxn_t;
typedef struct sv_unit sv_unit_t;
typedef struct sv_notify sv_notify_t;

/** Makes a unit's changes. Runs on the writer thread inside the unit's nested
 * transaction. Returns SV_OK to keep the changes, or an error to roll them
 * back (the unit then completes with that error). It may run more than once
 * for one unit (the batch is replayed after the map grows), so it must only
 * change the database and fields of its own unit. */
typedef sv_err_t (*sv_unit_apply_fn)(sv_wtxn_t *tx, sv_unit_t *u);
/** Called once per unit after its batch committed or failed, on the thread the
 * unit's notifier chose (the writer thread when u->notify is NULL). */
typedef void (*sv_unit_complete_fn)(sv_unit_t *u);

/** How completed units travel back to the thread that submitted them. The
 * writer calls post once per notifier per batch, with that batch's units for
 * it chained in order (sv_unit_next), so that a worker wakes once per commit
 * rather than once per unit. The units belong to their submitter again as
 * soon as post is called: post must read the chain before handing it over. */
struct sv_notify {
    void (*post)(sv_notify_t *n, sv_unit_t *chain);
};

struct sv_unit {
    sv_unit_apply_fn apply;       /* NULL: no changes (e.g. an audit entry only) */
    sv_unit_complete_fn complete; /* required */
    sv_notify_t *notify;          /* NULL: complete runs on the writer thread */
    void *arg;                    /* the submitter's data */
    void *audit;                  /* entry for the audit hook, or NULL */

    /* set by the writer before complete() */
    sv_err_t result;
    uint64_t first_lsn, last_lsn; /* the unit's change records; 0 when none */
    uint64_t queued_us;           /* time spent queued and committing */

    /* private to the writer */
    sv_unit_t *next_;
    uint64_t enqueued_at_;
    void *run_wait_;
};

/** The next unit of a chain handed to sv_notify.post, or NULL. */
static inline sv_unit_t *sv_unit_next(const sv_unit_t *u)
{
    return u->next_;
}

/** Appends the audit entry of u (u->audit) after its apply ran; op_result is
 * what apply returned. Runs in the unit's nested transaction; an error rolls
 * back the unit's changes and completes it with SV_EAUDIT. */
typedef sv_err_t (*sv_writer_audit_fn)(void *arg, sv_wtxn_t *tx, sv_unit_t *u, sv_err_t op_result);
/** Runs once per batch after every unit, in the batch transaction (e.g. audit
 * checkpoints, log pruning). Errors are logged, not fatal to the batch. */
typedef void (*sv_writer_batch_fn)(void *arg, sv_wtxn_t *tx);

typedef struct {
    unsigned batch_max;        /* units per transaction (default 512) */
    int64_t wal_retention_ms;  /* prune change records older than this; 0: keep all */
} sv_writer_opts_t;

/** Starts the writer thread on st (already migrated). Errors: SV_ENOMEM,
 * SV_ECORRUPT (unreadable log), SV_EIO. */
sv_err_t sv_writer_start(sv_store_t *st, const sv_writer_opts_t *opts, sv_writer_t **out);
/** Stops accepting units, commits everything queued, joins the thread and
 * frees w. Completions of the last batch have run when it returns. */
void sv_writer_stop(sv_writer_t *w);

/** Queues u. Any thread. Errors: SV_ESHUTDOWN (stopping: u is not queued and
 * complete() will not be called). */
sv_err_t sv_writer_submit(sv_writer_t *w, sv_unit_t *u);
/** Queues u and waits for its completion (for threads without an event loop:
 * the scheduler, tools, tests). u->complete and u->notify are overwritten.
 * Returns u->result. Never call it on an HTTP worker. */
sv_err_t sv_writer_run(sv_writer_t *w, sv_unit_t *u);
/** Like sv_writer_run for n units queued at once (so they may share
 * batches): waits until every queued unit has completed; each one's
 * complete and notify are overwritten and its result is in units[i].result.
 * Returns SV_OK, or the error of the first submit that failed (the units
 * after it are not queued). Never call it on an HTTP worker. */
sv_err_t sv_writer_run_all(sv_writer_t *w, sv_unit_t *units, size_t n);

/** Installs the audit hook (before any unit is submitted). */
void sv_writer_set_audit_hook(sv_writer_t *w, sv_writer_audit_fn fn, void *arg);
/** Adds a per-batch hook (at most 8, before any unit is submitted). */
void sv_writer_add_batch_hook(sv_writer_t *w, sv_writer_batch_fn fn, void *arg);

/** A journal: a faster durable path than an LMDB commit for a batch whose
 * every unit is audit-only (the audit log's, src/audit_journal.h). Every
 * function runs on the writer thread. */
typedef struct {
    /** Offered each batch whose units all have an audit entry and no apply:
     * true when it made their entries durable itself, with each unit's
     * result set and *err the batch's error (SV_OK, or a failed flush that
     * every unit gets). False: the batch commits to LMDB as usual. */
    bool (*take)(void *arg, sv_unit_t *batch, sv_err_t *err);
    /** At the start of every LMDB batch (again when it is replayed), before
     * its units: moves what the journal holds into tx. An error fails the
     * batch. */
    sv_err_t (*drain)(void *arg, sv_wtxn_t *tx);
    /** After that batch committed durably: what drain moved may be dropped. */
    void (*drained)(void *arg);
    /** The monotonic time (sv_mono_us) by which an LMDB batch should run even
     * when no unit comes (one without units then runs; after one that failed,
     * the writer waits a second before the next); 0: none needed. */
    uint64_t (*due_us)(void *arg);
    void *arg;
} sv_writer_journal_t;

/** Installs j (copied; NULL removes it), taking effect from the next batch.
 * Any thread. */
void sv_writer_set_journal(sv_writer_t *w, const sv_writer_journal_t *j);

/** Runs on the writer thread after each successful durable commit, before the
 * units of that batch complete; last_lsn is the last committed LSN. It must be
 * quick and must never wait for the writer (no sv_writer_run). */
typedef void (*sv_writer_commit_fn)(void *arg, uint64_t last_lsn);
/** Adds a commit hook (at most 8; SV_ENOMEM beyond). Any thread, at any
 * time: a hook added while batches run takes effect from a later batch. arg
 * must stay valid until the hook is removed or the writer stopped. */
sv_err_t sv_writer_add_commit_hook(sv_writer_t *w, sv_writer_commit_fn fn, void *arg);
/** Removes the hook (fn, arg); when it returns, the hook is not running and
 * will not run again. Any thread but the writer's. */
void sv_writer_remove_commit_hook(sv_writer_t *w, sv_writer_commit_fn fn, void *arg);

/** The store the writer commits to. */
sv_store_t *sv_writer_store(sv_writer_t *w);

typedef struct {
    uint64_t last_lsn;      /* last committed LSN */
    uint64_t commits;       /* successful commits */
    uint64_t failed_commits;
    uint64_t units;         /* units completed */
    uint64_t map_grows;
    unsigned queue_depth;   /* units waiting now */
    uint64_t batch_hist[8]; /* batch sizes: 1, 2-4, 5-16, 17-64, 65-256, 257-1024, ... */
    uint64_t batch_units;   /* units in committed batches (the sum of batch_hist's sizes) */
} sv_writer_stats_t;

void sv_writer_stats(sv_writer_t *w, sv_writer_stats_t *out);
/** Latency of the durable commit (the fsync), recorded per batch. */
sv_latency_t *sv_writer_commit_latency(sv_writer_t *w);

/* ---- inside apply: the write transaction ---- */

/** Ends the current unit of change records: the next sv_wtxn_put starts a
 * new one (for a hook that writes several independent changes, e.g. the
 * journal's drain). Errors: those of the change log's put. */
sv_err_t sv_wtxn_unit_end(sv_wtxn_t *tx);

/** The transaction to read through (sv_txn_get, sv_iter_*), seeing the unit's
 * own changes. Valid during apply only. */
sv_txn_t *sv_wtxn_txn(sv_wtxn_t *tx);
/** Puts key=val in db and appends a change record. Errors: SV_EMAPFULL
 * (handled by the writer: return it from apply), SV_ETOOBIG, SV_EIO. */
sv_err_t sv_wtxn_put(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t val);
/** Puts a *derived* row: one that a reader of the change log rebuilds from
 * another row of the same unit, as the audit log's index rows are rebuilt
 * from each entry (sv_audit_index_entry). No change record is appended; that
 * is the only difference from sv_wtxn_put. Deletions are always logged. */
sv_err_t sv_wtxn_put_derived(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t val);
/** Deletes key from db and appends a change record. SV_ENOTFOUND if absent
 * (nothing is logged then). */
sv_err_t sv_wtxn_del(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key);
/** Deletes every key of db that starts with prefix, logging each. Writes the
 * count to *deleted when not NULL. */
sv_err_t sv_wtxn_del_prefix(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t prefix, size_t *deleted);
/** The batch's time (microseconds since the epoch), the same for all its units. */
int64_t sv_wtxn_now_us(sv_wtxn_t *tx);
/** The writer this transaction belongs to. */
sv_writer_t *sv_wtxn_writer(sv_wtxn_t *tx);

#endif
