/*
 * writer.c - the group-commit writer of writer.h.
 *
 * Why one writer thread: LMDB allows one write transaction at a time, and a
 * durable commit costs an fsync (~0.5 ms here). Serialising writes through one
 * thread that takes everything queued and commits it together turns N fsyncs
 * into one: while one batch is being synced, the next one queues up. The
 * workers never wait on a lock held across I/O; they hand over a unit and go
 * back to their event loop.
 *
 * A batch runs like this:
 *   1. take up to batch_max units off the queue;
 *   2. begin the batch transaction; for each unit begin a nested transaction,
 *      run apply, then the audit hook; commit the nested transaction, or abort
 *      it if either failed (the unit alone fails);
 *   3. run the batch hooks, record applied_lsn in meta, commit durably;
 *   4. on MDB_MAP_FULL anywhere: abort, grow the map, replay the whole batch;
 *      on a failed commit (ENOSPC, EIO): every unit fails with that error and
 *      nothing of the batch is visible;
 *   5. run the commit hooks (e.g. to wake the scheduler), then complete every
 *      unit through its notifier.
 *
 * The change log: each put/delete appends a record to `wal` in the same
 * transaction. A unit's last record carries the unit-end flag; to know which
 * is last, the writer holds each unit's newest record back until the next one
 * (or the unit's end) arrives. LSNs are handed out per record; a nested abort
 * returns the unit's LSNs, so the log has no gaps.
 */
#include "sv_autoconf.h"

#include "wal/writer.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/log.h"
#include "store/fault.h"
#include "store/key.h"
#include "store/migrate.h"

#define MAX_BATCH_HOOKS 8
#define PRUNE_PER_BATCH 512
#define STALE_READER_CHECK_US (10 * 1000000ull)
#define DRAIN_RETRY_US 1000000ull /* after a failed batch that only moved the audit journal */

struct sv_wtxn {
    sv_txn_t base; /* base.txn is the innermost open transaction */
    sv_writer_t *w;
    MDB_txn *batch_txn;
    uint64_t next_lsn;
    uint64_t unit_id; /* first LSN of the current unit, 0 before its first record */
    int64_t now_us;
    sv_err_t fatal; /* a storage failure that dooms the batch (map full, I/O) */
    /* the held-back newest record of the current unit */
    bool has_pending;
    uint64_t pending_lsn;
    sv_recw_t pending;
};

struct sv_writer {
    sv_store_t *st;
    sv_writer_opts_t opts;
    pthread_t thread;

    pthread_mutex_t lock; /* guards the queue and stopping */
    pthread_cond_t cond;
    sv_unit_t *head, *tail;
    unsigned depth;
    bool stopping;

    sv_writer_audit_fn audit_fn;
    void *audit_arg;
    sv_writer_journal_t journal; /* copied by the writer thread under lock, once per batch */
    sv_writer_batch_fn batch_fns[MAX_BATCH_HOOKS];
    void *batch_args[MAX_BATCH_HOOKS];
    unsigned n_batch_hooks;
    pthread_mutex_t hooks_lock; /* guards the commit hooks; held while they run */
    sv_writer_commit_fn commit_fns[MAX_BATCH_HOOKS];
    void *commit_args[MAX_BATCH_HOOKS];
    unsigned n_commit_hooks;

    uint64_t last_lsn; /* committed; written by the writer thread only */
    uint64_t drain_retry_us; /* a failed batch for the journal alone: not again before this; writer thread only */
    uint64_t readers_checked_us; /* the last sv_store_clear_stale_readers; writer thread only */
    sv_latency_t commit_latency;
    _Atomic uint64_t stat_last_lsn, stat_commits, stat_failed, stat_units, stat_grows;
    _Atomic uint64_t stat_hist[8];
    _Atomic uint64_t stat_batch_units; /* units in committed batches */
};

/* ---- change records ---- */

static sv_err_t flush_pending(sv_wtxn_t *tx, bool unit_end)
{
    if (!tx->has_pending)
        return SV_OK;
    if (unit_end)
        tx->pending.buf[SV_WAL_FLAGS_OFFSET] |= SV_WAL_FLAG_UNIT_END;
    sv_wal_seal(&tx->pending, tx->pending_lsn); /* the checksum covers the flag */
    if (tx->pending.failed) {
        tx->has_pending = false;
        return SV_ENOMEM;
    }
    uint8_t key[8];
    sv_put_be64(key, tx->pending_lsn);
    MDB_val k = {8, key}, v = {tx->pending.len, tx->pending.buf};
    int rc = mdb_put(tx->base.txn, sv_store_dbi(tx->base.st, SV_DB_WAL), &k, &v, MDB_APPEND);
    tx->has_pending = false;
    if (rc != MDB_SUCCESS) {
        sv_err_t err = sv_store_err(rc);
        if (err == SV_EMAPFULL || err == SV_EIO || err == SV_ENOSPC)
            tx->fatal = err;
        return err;
    }
    return SV_OK;
}

static sv_err_t log_change(sv_wtxn_t *tx, uint8_t op, sv_db_t db, sv_bytes_t key, sv_bytes_t val)
{
    sv_err_t err = flush_pending(tx, false);
    if (err != SV_OK)
        return err;
    uint64_t lsn = tx->next_lsn++;
    if (tx->unit_id == 0)
        tx->unit_id = lsn;
    sv_wal_record_t rec = {.lsn = lsn,
                           .unit_id = tx->unit_id,
                           .time_us = tx->now_us,
                           .op = op,
                           .db = (uint16_t)db,
                           .key = key,
                           .value = val};
    sv_wal_encode_body(&tx->pending, &rec);
    if (tx->pending.failed)
        return SV_ENOMEM;
    tx->pending_lsn = lsn;
    tx->has_pending = true;
    return SV_OK;
}

sv_err_t sv_wtxn_unit_end(sv_wtxn_t *tx)
{
    sv_err_t err = flush_pending(tx, true);
    tx->unit_id = 0;
    return err;
}

sv_txn_t *sv_wtxn_txn(sv_wtxn_t *tx)
{
    return &tx->base;
}

int64_t sv_wtxn_now_us(sv_wtxn_t *tx)
{
    return tx->now_us;
}

sv_writer_t *sv_wtxn_writer(sv_wtxn_t *tx)
{
    return tx->w;
}

static sv_err_t put_err(sv_wtxn_t *tx, int rc)
{
    sv_err_t err = sv_store_err(rc);
    if (err == SV_EMAPFULL || err == SV_EIO || err == SV_ENOSPC)
        tx->fatal = err;
    return err;
}

static sv_err_t put_row(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t val)
{
    if (db == SV_DB_WAL || !sv_store_has_db(tx->base.st, db))
        return SV_EINVAL;
    MDB_val k = {key.len, (void *)key.base}, v = {val.len, (void *)val.base};
    int rc = mdb_put(tx->base.txn, sv_store_dbi(tx->base.st, db), &k, &v, 0);
    return rc == MDB_SUCCESS ? SV_OK : put_err(tx, rc);
}

sv_err_t sv_wtxn_put(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t val)
{
    sv_err_t err = put_row(tx, db, key, val);
    return err == SV_OK ? log_change(tx, SV_WAL_PUT, db, key, val) : err;
}

sv_err_t sv_wtxn_put_derived(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key, sv_bytes_t val)
{
    return put_row(tx, db, key, val);
}

sv_err_t sv_wtxn_del(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key)
{
    if (db == SV_DB_WAL || !sv_store_has_db(tx->base.st, db))
        return SV_EINVAL;
    MDB_val k = {key.len, (void *)key.base};
    int rc = mdb_del(tx->base.txn, sv_store_dbi(tx->base.st, db), &k, NULL);
    if (rc == MDB_NOTFOUND)
        return SV_ENOTFOUND;
    if (rc != MDB_SUCCESS)
        return put_err(tx, rc);
    return log_change(tx, SV_WAL_DEL, db, key, (sv_bytes_t){NULL, 0});
}

sv_err_t sv_wtxn_del_prefix(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t prefix, size_t *deleted)
{
    if (db == SV_DB_WAL || !sv_store_has_db(tx->base.st, db))
        return SV_EINVAL;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(tx->base.txn, sv_store_dbi(tx->base.st, db), &cur);
    if (rc != MDB_SUCCESS)
        return put_err(tx, rc);
    size_t n = 0;
    sv_err_t err = SV_OK;
    MDB_val k = {prefix.len, (void *)prefix.base}, v;
    rc = prefix.len > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS && k.mv_size >= prefix.len && memcmp(k.mv_data, prefix.base, prefix.len) == 0) {
        /* log first: the key points into the page that the delete changes */
        err = log_change(tx, SV_WAL_DEL, db, (sv_bytes_t){k.mv_data, k.mv_size}, (sv_bytes_t){NULL, 0});
        if (err != SV_OK)
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS) {
            err = put_err(tx, rc);
            break;
        }
        n++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == MDB_NOTFOUND || rc == EINVAL) /* deleted the last item */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (err == SV_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        err = put_err(tx, rc);
    mdb_cursor_close(cur);
    if (deleted != NULL)
        *deleted = n;
    return err;
}

/* ---- units and batches ---- */

/* Completes a finished batch (err: the batch failed as a whole). Units going
 * back to the same notifier travel as one chain: a post costs the receiving
 * worker a wakeup (a pipe write and an epoll round), which per unit was a good
 * share of an audited read's cost. Workers are few; past MAX_NOTIFIERS
 * distinct ones, a unit is posted alone. */
#define MAX_NOTIFIERS 16

static void complete_batch(sv_unit_t *batch, sv_err_t err)
{
    struct {
        sv_notify_t *n;
        sv_unit_t *head, *tail;
    } to[MAX_NOTIFIERS];
    unsigned n_to = 0;
    uint64_t now = sv_mono_us();
    for (sv_unit_t *u = batch, *next; u != NULL; u = next) {
        next = u->next_; /* complete() may free u */
        u->next_ = NULL;
        if (err != SV_OK) {
            u->result = err;
            u->first_lsn = u->last_lsn = 0;
        }
        u->queued_us = now - u->enqueued_at_;
        if (u->notify == NULL) {
            u->complete(u);
            continue;
        }
        unsigned i = 0;
        while (i < n_to && to[i].n != u->notify)
            i++;
        if (i < n_to) {
            to[i].tail->next_ = u;
            to[i].tail = u;
        } else if (n_to < MAX_NOTIFIERS) {
            to[n_to].n = u->notify;
            to[n_to].head = to[n_to].tail = u;
            n_to++;
        } else {
            u->notify->post(u->notify, u);
        }
    }
    for (unsigned i = 0; i < n_to; i++)
        to[i].n->post(to[i].n, to[i].head);
}

/* An audit-only unit (no apply: a read's entry) runs straight in the batch
 * transaction, which saves the nested transaction's page copies on the
 * hottest path. That is safe because the entry is its only change: a hook
 * that fails before writing leaves nothing behind, and one that fails after a
 * put (which only a storage failure can cause) dooms the batch. */
static sv_err_t run_audit_only(sv_writer_t *w, sv_wtxn_t *tx, sv_unit_t *u)
{
    uint64_t lsn_mark = tx->next_lsn;
    tx->unit_id = 0;
    sv_err_t result = SV_OK;
    if (w->audit_fn != NULL) {
        sv_err_t aerr = w->audit_fn(w->audit_arg, tx, u, SV_OK);
        if (tx->fatal != SV_OK)
            return tx->fatal;
        if (aerr != SV_OK) {
            if (tx->next_lsn != lsn_mark) {
                tx->fatal = aerr == SV_EAUDIT ? SV_EIO : aerr; /* a half-written entry: drop the batch */
                return tx->fatal;
            }
            result = SV_EAUDIT;
        }
    }
    if (result == SV_OK && flush_pending(tx, true) != SV_OK && tx->fatal != SV_OK)
        return tx->fatal;
    u->result = result;
    u->first_lsn = (result == SV_OK && tx->next_lsn > lsn_mark) ? lsn_mark : 0;
    u->last_lsn = u->first_lsn ? tx->next_lsn - 1 : 0;
    return SV_OK;
}

/* Runs one unit in a nested transaction. Returns the batch-fatal error, if any. */
static sv_err_t run_unit(sv_writer_t *w, sv_wtxn_t *tx, sv_unit_t *u)
{
    if (u->apply == NULL && u->audit != NULL)
        return run_audit_only(w, tx, u);
    MDB_txn *child;
    uint64_t lsn_mark = tx->next_lsn;
    int rc = mdb_txn_begin(sv_store_env(w->st), tx->batch_txn, 0, &child);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    tx->base.txn = child;
    tx->unit_id = 0;
    sv_err_t op = u->apply != NULL ? u->apply(tx, u) : SV_OK;
    if (op == SV_EMAPFULL)
        tx->fatal = op; /* from the apply's own LMDB call: grow and replay, never fail the unit */
    if (tx->fatal != SV_OK)
        goto fatal;
    if (op != SV_OK) {
        /* roll the operation back; its audit entry still goes in */
        mdb_txn_abort(child);
        tx->has_pending = false;
        tx->next_lsn = lsn_mark;
        tx->unit_id = 0;
        if ((rc = mdb_txn_begin(sv_store_env(w->st), tx->batch_txn, 0, &child)) != MDB_SUCCESS) {
            tx->base.txn = tx->batch_txn;
            return sv_store_err(rc);
        }
        tx->base.txn = child;
    }
    sv_err_t result = op;
    if (u->audit != NULL && w->audit_fn != NULL) {
        sv_err_t aerr = w->audit_fn(w->audit_arg, tx, u, op);
        if (tx->fatal != SV_OK)
            goto fatal;
        if (aerr != SV_OK)
            result = SV_EAUDIT;
    }
    if (result == SV_EAUDIT) {
        mdb_txn_abort(child);
        tx->has_pending = false;
        tx->next_lsn = lsn_mark;
    } else {
        if (flush_pending(tx, true) != SV_OK && tx->fatal != SV_OK)
            goto fatal;
        if ((rc = mdb_txn_commit(child)) != MDB_SUCCESS) {
            tx->base.txn = tx->batch_txn;
            tx->fatal = sv_store_err(rc);
            return tx->fatal;
        }
    }
    tx->base.txn = tx->batch_txn;
    u->result = result;
    u->first_lsn = (result == SV_OK && tx->next_lsn > lsn_mark) ? lsn_mark : 0;
    u->last_lsn = u->first_lsn ? tx->next_lsn - 1 : 0;
    return SV_OK;

fatal:
    mdb_txn_abort(child);
    tx->base.txn = tx->batch_txn;
    tx->has_pending = false;
    return tx->fatal;
}

static sv_err_t put_applied_lsn(sv_wtxn_t *tx)
{
    uint8_t val[9] = {SV_WAL_APPLIED_FORMAT};
    sv_put_be64(val + 1, tx->next_lsn - 1);
    MDB_val k = {strlen(SV_META_APPLIED_LSN), SV_META_APPLIED_LSN}, v = {sizeof(val), val};
    int rc = mdb_put(tx->batch_txn, sv_store_dbi(tx->base.st, SV_DB_META), &k, &v, 0);
    return rc == MDB_SUCCESS ? SV_OK : put_err(tx, rc);
}

/* Deletes change records older than the retention, whole units only, about
 * PRUNE_PER_BATCH records per batch. The log always starts at the first record
 * of a unit, so a replica or a restore that replays from the first kept LSN
 * never sees half a unit. Every record of a unit has the batch's time, so the
 * time test never splits a unit; only the per-batch limit could, and it waits
 * for a unit end. The next LSN after a restart does not depend on what is kept:
 * applied_lsn in meta (written by every batch) records it. */
static sv_err_t prune_log(sv_writer_t *w, sv_wtxn_t *tx)
{
    if (w->opts.wal_retention_ms <= 0)
        return SV_OK;
    int64_t cutoff = tx->now_us - w->opts.wal_retention_ms * 1000;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(tx->batch_txn, sv_store_dbi(w->st, SV_DB_WAL), &cur);
    if (rc != MDB_SUCCESS)
        return put_err(tx, rc);
    MDB_val k, v;
    int n = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS && k.mv_size == 8) {
        sv_wal_record_t rec;
        bool decoded = sv_wal_decode((sv_bytes_t){v.mv_data, v.mv_size}, sv_get_be64(k.mv_data), &rec) == SV_OK;
        if (decoded && rec.time_us >= cutoff)
            break;
        /* a record that fails its checksum is older than its successor: prune it too */
        bool unit_end = !decoded || (rec.flags & SV_WAL_FLAG_UNIT_END) != 0;
        if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS)
            break;
        n++;
        if (unit_end && n >= PRUNE_PER_BATCH)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc != MDB_SUCCESS)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != EINVAL)
        return put_err(tx, rc);
    return SV_OK;
}

static int hist_bucket(unsigned n)
{
    int b = 0;
    unsigned lim = 1;
    while (b < 7 && n > lim) {
        lim *= 4;
        b++;
    }
    return b;
}

static void count_commit(sv_writer_t *w, unsigned n, uint64_t t0)
{
    sv_latency_record(&w->commit_latency, sv_mono_us() - t0);
    atomic_fetch_add(&w->stat_commits, 1);
    if (n == 0)
        return; /* the journal's drain alone: no batch of units */
    atomic_fetch_add(&w->stat_hist[hist_bucket(n)], 1);
    atomic_fetch_add(&w->stat_batch_units, n);
}

/* Offers a batch of audit-only units to the journal. True when it took it. */
static bool offer_journal(sv_writer_t *w, const sv_writer_journal_t *j, sv_unit_t *batch, unsigned n, sv_err_t *err)
{
    if (j->take == NULL || batch == NULL)
        return false;
    for (sv_unit_t *u = batch; u != NULL; u = u->next_)
        if (u->apply != NULL || u->audit == NULL)
            return false;
    uint64_t t0 = sv_mono_us();
    if (!j->take(j->arg, batch, err))
        return false;
    if (*err == SV_OK)
        count_commit(w, n, t0);
    else
        atomic_fetch_add(&w->stat_failed, 1);
    return true;
}

/* Applies and commits one batch (none: only the journal's drain and the
 * batch hooks), with the journal hooks j as they were when it was taken.
 * Returns SV_OK, or the error every unit gets. */
static sv_err_t commit_batch(sv_writer_t *w, sv_unit_t *batch, unsigned n, const sv_writer_journal_t *jp)
{
    sv_wtxn_t tx = {.base.st = w->st, .w = w};
    sv_err_t err;
    sv_writer_journal_t j = *jp;
    if (offer_journal(w, &j, batch, n, &err))
        return err;
    for (;;) {
        int rc = mdb_txn_begin(sv_store_env(w->st), NULL, 0, &tx.batch_txn);
        if (rc == MDB_MAP_RESIZED) {
            mdb_env_set_mapsize(sv_store_env(w->st), 0);
            rc = mdb_txn_begin(sv_store_env(w->st), NULL, 0, &tx.batch_txn);
        }
        if (rc != MDB_SUCCESS) {
            err = sv_store_err(rc);
            break;
        }
        tx.base.txn = tx.batch_txn;
        tx.next_lsn = w->last_lsn + 1;
        tx.now_us = sv_now_us();
        tx.fatal = SV_OK;
        tx.has_pending = false;
        err = j.drain != NULL ? j.drain(j.arg, &tx) : SV_OK;
        if (err != SV_OK && tx.fatal == SV_OK)
            tx.fatal = err;
        for (sv_unit_t *u = batch; u != NULL && err == SV_OK; u = u->next_)
            err = run_unit(w, &tx, u);
        if (err == SV_OK) {
            for (unsigned i = 0; i < w->n_batch_hooks && tx.fatal == SV_OK; i++) {
                tx.unit_id = 0; /* a hook's changes form a unit of their own */
                w->batch_fns[i](w->batch_args[i], &tx);
                flush_pending(&tx, true);
            }
            err = tx.fatal;
        }
        if (err == SV_OK)
            err = prune_log(w, &tx);
        if (err == SV_OK)
            err = put_applied_lsn(&tx);
        if (err == SV_OK) {
            uint64_t t0 = sv_mono_us();
            rc = sv_sys_txn_commit(tx.batch_txn); /* aborts on failure */
            if (rc == MDB_SUCCESS) {
                count_commit(w, n, t0);
                w->last_lsn = tx.next_lsn - 1;
                atomic_store(&w->stat_last_lsn, w->last_lsn);
                if (j.drained != NULL)
                    j.drained(j.arg);
                pthread_mutex_lock(&w->hooks_lock);
                for (unsigned i = 0; i < w->n_commit_hooks; i++)
                    w->commit_fns[i](w->commit_args[i], w->last_lsn);
                pthread_mutex_unlock(&w->hooks_lock);
                break;
            }
            err = sv_store_err(rc);
            /* LMDB reports a write cut short by a full disk as EIO */
            if (err == SV_EIO && sv_store_disk_full(w->st))
                err = SV_ENOSPC;
        } else {
            mdb_txn_abort(tx.batch_txn);
        }
        if (err == SV_EMAPFULL) {
            size_t need = 0;
            for (sv_unit_t *u = batch; u != NULL; u = u->next_)
                need += 64 * 1024;
            if (sv_store_grow(w->st, need) == SV_OK) {
                atomic_fetch_add(&w->stat_grows, 1);
                continue; /* replay the batch in the bigger map */
            }
            err = SV_ENOSPC;
        }
        atomic_fetch_add(&w->stat_failed, 1);
        break;
    }
    sv_recw_free(&tx.pending);
    return err;
}

static void *writer_main(void *arg)
{
    sv_writer_t *w = arg;
    pthread_setname_np(pthread_self(), "sv-writer");
    pthread_mutex_lock(&w->lock);
    for (;;) {
        bool drain_due = false;
        while (w->head == NULL && !w->stopping && !drain_due) {
            /* what the journal holds goes to LMDB in time even without traffic */
            uint64_t due = w->journal.due_us != NULL ? w->journal.due_us(w->journal.arg) : 0;
            if (due != 0 && due < w->drain_retry_us)
                due = w->drain_retry_us;
            if (due == 0) {
                pthread_cond_wait(&w->cond, &w->lock);
            } else if (sv_mono_us() >= due) {
                drain_due = true;
            } else {
                struct timespec ts = {.tv_sec = (time_t)(due / 1000000), .tv_nsec = (long)(due % 1000000) * 1000};
                pthread_cond_timedwait(&w->cond, &w->lock, &ts);
            }
        }
        if (w->head == NULL && w->stopping)
            break;
        sv_writer_journal_t journal = w->journal; /* under the lock: sv_writer_set_journal may change it */
        if (w->head == NULL) {
            pthread_mutex_unlock(&w->lock);
            sv_err_t err = commit_batch(w, NULL, 0, &journal);
            if (err != SV_OK) {
                /* a store that cannot begin or commit: try again in a while, and say so once a streak */
                if (w->drain_retry_us == 0)
                    sv_log_error("writer: the audit journal's entries cannot go to the store: %s (retried every "
                                 "second; they are safe in the journal)",
                                 sv_strerror(err));
                w->drain_retry_us = sv_mono_us() + DRAIN_RETRY_US;
            } else {
                w->drain_retry_us = 0;
            }
            pthread_mutex_lock(&w->lock);
            continue;
        }
        /* take up to batch_max units */
        sv_unit_t *batch = w->head, *last = w->head;
        unsigned n = 1;
        while (last->next_ != NULL && n < w->opts.batch_max) {
            last = last->next_;
            n++;
        }
        w->head = last->next_;
        if (w->head == NULL)
            w->tail = NULL;
        last->next_ = NULL;
        w->depth -= n;
        pthread_mutex_unlock(&w->lock);

        uint64_t now = sv_mono_us();
        if (now - w->readers_checked_us >= STALE_READER_CHECK_US) {
            /* a killed backup's snapshot would keep every page freed since from reuse */
            sv_store_clear_stale_readers(w->st);
            w->readers_checked_us = now;
        }
        sv_err_t err = commit_batch(w, batch, n, &journal);
        if (err == SV_OK)
            w->drain_retry_us = 0; /* a failure of the journal's timer is said again after a success */
        atomic_fetch_add(&w->stat_units, n);
        complete_batch(batch, err);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

sv_err_t sv_writer_start(sv_store_t *st, const sv_writer_opts_t *opts, sv_writer_t **out)
{
    sv_writer_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return SV_ENOMEM;
    w->st = st;
    if (opts != NULL)
        w->opts = *opts;
    if (w->opts.batch_max == 0)
        w->opts.batch_max = 512;

    /* the next LSN follows the log, or applied_lsn when the log was pruned empty */
    MDB_txn *txn;
    int rc = mdb_txn_begin(sv_store_env(st), NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        free(w);
        return sv_store_err(rc);
    }
    sv_txn_t t = {txn, st};
    uint64_t last = 0, applied = 0;
    sv_err_t err = sv_wal_last_lsn(&t, &last);
    if (err == SV_OK)
        err = sv_wal_applied_lsn(&t, &applied);
    if (applied > last)
        last = applied;
    mdb_txn_abort(txn);
    if (err != SV_OK) {
        free(w);
        return err;
    }
    w->last_lsn = last;
    atomic_store(&w->stat_last_lsn, last);

    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->hooks_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the journal's due time is sv_mono_us */
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->hooks_lock);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return SV_ENOMEM;
    }
    *out = w;
    return SV_OK;
}

void sv_writer_stop(sv_writer_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->hooks_lock);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

sv_err_t sv_writer_submit(sv_writer_t *w, sv_unit_t *u)
{
    u->next_ = NULL;
    u->enqueued_at_ = sv_mono_us();
    u->result = SV_OK;
    u->first_lsn = u->last_lsn = 0;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return SV_ESHUTDOWN;
    }
    if (w->tail != NULL)
        w->tail->next_ = u;
    else
        w->head = u;
    w->tail = u;
    w->depth++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return SV_OK;
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t done;
} run_wait_t;

static void run_complete(sv_unit_t *u)
{
    run_wait_t *rw = u->run_wait_;
    pthread_mutex_lock(&rw->lock);
    rw->done++;
    pthread_cond_signal(&rw->cond);
    pthread_mutex_unlock(&rw->lock);
}

sv_err_t sv_writer_run_all(sv_writer_t *w, sv_unit_t *units, size_t n)
{
    run_wait_t rw = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    sv_err_t err = SV_OK;
    size_t queued = 0;
    for (; queued < n; queued++) {
        units[queued].complete = run_complete;
        units[queued].notify = NULL;
        units[queued].run_wait_ = &rw;
        if ((err = sv_writer_submit(w, &units[queued])) != SV_OK)
            break;
    }
    pthread_mutex_lock(&rw.lock);
    while (rw.done < queued)
        pthread_cond_wait(&rw.cond, &rw.lock);
    pthread_mutex_unlock(&rw.lock);
    return err;
}

sv_err_t sv_writer_run(sv_writer_t *w, sv_unit_t *u)
{
    sv_err_t err = sv_writer_run_all(w, u, 1);
    return err != SV_OK ? err : u->result;
}

void sv_writer_set_audit_hook(sv_writer_t *w, sv_writer_audit_fn fn, void *arg)
{
    w->audit_fn = fn;
    w->audit_arg = arg;
}

void sv_writer_set_journal(sv_writer_t *w, const sv_writer_journal_t *j)
{
    pthread_mutex_lock(&w->lock);
    if (j != NULL)
        w->journal = *j;
    else
        memset(&w->journal, 0, sizeof(w->journal));
    pthread_cond_signal(&w->cond); /* a due time may have come with it */
    pthread_mutex_unlock(&w->lock);
}

void sv_writer_add_batch_hook(sv_writer_t *w, sv_writer_batch_fn fn, void *arg)
{
    if (w->n_batch_hooks < MAX_BATCH_HOOKS) {
        w->batch_fns[w->n_batch_hooks] = fn;
        w->batch_args[w->n_batch_hooks] = arg;
        w->n_batch_hooks++;
    }
}

sv_err_t sv_writer_add_commit_hook(sv_writer_t *w, sv_writer_commit_fn fn, void *arg)
{
    sv_err_t err = SV_ENOMEM;
    pthread_mutex_lock(&w->hooks_lock);
    if (w->n_commit_hooks < MAX_BATCH_HOOKS) {
        w->commit_fns[w->n_commit_hooks] = fn;
        w->commit_args[w->n_commit_hooks] = arg;
        w->n_commit_hooks++;
        err = SV_OK;
    }
    pthread_mutex_unlock(&w->hooks_lock);
    return err;
}

void sv_writer_remove_commit_hook(sv_writer_t *w, sv_writer_commit_fn fn, void *arg)
{
    pthread_mutex_lock(&w->hooks_lock);
    for (unsigned i = 0; i < w->n_commit_hooks; i++) {
        if (w->commit_fns[i] == fn && w->commit_args[i] == arg) {
            memmove(&w->commit_fns[i], &w->commit_fns[i + 1], (w->n_commit_hooks - i - 1) * sizeof(w->commit_fns[0]));
            memmove(&w->commit_args[i], &w->commit_args[i + 1],
                    (w->n_commit_hooks - i - 1) * sizeof(w->commit_args[0]));
            w->n_commit_hooks--;
            break;
        }
    }
    pthread_mutex_unlock(&w->hooks_lock);
}

sv_store_t *sv_writer_store(sv_writer_t *w)
{
    return w->st;
}

void sv_writer_stats(sv_writer_t *w, sv_writer_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->last_lsn = atomic_load(&w->stat_last_lsn);
    out->commits = atomic_load(&w->stat_commits);
    out->failed_commits = atomic_load(&w->stat_failed);
    out->units = atomic_load(&w->stat_units);
    out->map_grows = atomic_load(&w->stat_grows);
    pthread_mutex_lock(&w->lock);
    out->queue_depth = w->depth;
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < 8; i++)
        out->batch_hist[i] = atomic_load(&w->stat_hist[i]);
    out->batch_units = atomic_load(&w->stat_batch_units);
}

sv_latency_t *sv_writer_commit_latency(sv_writer_t *w)
{
    return &w->commit_latency;
}
