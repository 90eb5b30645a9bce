/* tests/src/test_scheduler.c - the persistent scheduler (src/scheduler.c):
 * ordering, persistence across restarts, waking, atomic scheduling inside a
 * unit, retries and moves, cancel, unknown kinds, unregister. */
#include "sv_autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "src/scheduler.h"
#include "store/migrate.h"
#include "tests/unit.h"
#include "wal/writer.h"

typedef struct {
    const char *dir;
    sv_store_t *st;
    sv_writer_t *w;
    sv_scheduler_t *s;
} fixture_t;

static void open_all(fixture_t *f)
{
    sv_store_opts_t o = {.dir = f->dir, .map_size = 4 << 20, .max_readers = 32, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&f->st, &o), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_migrate_to(f->st, SV_SCHEMA_VERSION, NULL, NULL), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(f->st, NULL, &f->w), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_scheduler_new(f->st, f->w, &f->s), SV_OK);
}

static void close_all(fixture_t *f)
{
    sv_scheduler_free(f->s);
    sv_writer_stop(f->w);
    sv_store_close(f->st);
}

static void setup(fixture_t *f)
{
    f->dir = strdup(sv_test_tmpdir("sched"));
    open_all(f);
}

static void teardown(fixture_t *f)
{
    close_all(f);
    sv_test_rmdir(f->dir);
    free((void *)f->dir);
}

/* ---- a recording handler ---- */

typedef struct {
    char kind[32], key[64];
    int64_t due_ms, now_ms;
    uint32_t attempts;
} run_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    run_t runs[64];
    int n;
    int fail_first;      /* fail this many runs with SV_EUPSTREAM */
    int64_t next_due_ms; /* set job->next_due_ms to this */
    int sleep_ms;        /* block this long in the handler */
    bool entered, finished_sleep;
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void rec_reset(void)
{
    pthread_mutex_lock(&rec.lock);
    rec.n = 0;
    rec.fail_first = 0;
    rec.next_due_ms = 0;
    rec.sleep_ms = 0;
    rec.entered = rec.finished_sleep = false;
    pthread_mutex_unlock(&rec.lock);
}

static sv_err_t record_job(void *arg, sv_sched_job_t *job)
{
    pthread_mutex_lock(&rec.lock);
    int sleep_ms = rec.sleep_ms;
    rec.entered = true;
    pthread_cond_broadcast(&rec.cond);
    pthread_mutex_unlock(&rec.lock);
    if (sleep_ms > 0) {
        struct timespec ts = {0, (long)sleep_ms * 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&rec.lock);
    rec.finished_sleep = true;
    sv_err_t result = SV_OK;
    if (rec.n < 64) {
        run_t *r = &rec.runs[rec.n++];
        snprintf(r->kind, sizeof(r->kind), "%s", job->kind);
        snprintf(r->key, sizeof(r->key), "%s", job->key);
        r->due_ms = job->due_ms;
        r->now_ms = job->now_ms;
        r->attempts = job->attempts;
    }
    if (rec.fail_first > 0) {
        rec.fail_first--;
        result = SV_EUPSTREAM;
    } else if (rec.next_due_ms > 0) {
        job->next_due_ms = rec.next_due_ms;
        rec.next_due_ms = 0;
    }
    pthread_cond_broadcast(&rec.cond);
    pthread_mutex_unlock(&rec.lock);
    return result;
}

/* Waits (at most 10 s: a generous bound, never a timing assertion) until n runs happened. */
static bool wait_runs(int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&rec.lock);
    while (rec.n < n)
        if (pthread_cond_timedwait(&rec.cond, &rec.lock, &dl) == ETIMEDOUT)
            break;
    bool ok = rec.n >= n;
    pthread_mutex_unlock(&rec.lock);
    return ok;
}

static int64_t lookup(fixture_t *f, const char *kind, const char *key)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    int64_t due = -1;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    if (sv_scheduler_lookup(tx, kind, key, &due) != SV_OK)
        due = -1;
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return due;
}

/* Entries in the schedule database (timers and index entries). */
static int count_entries(fixture_t *f)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_store_reader_new(f->st, &r);
    sv_store_read_begin(r, &tx);
    sv_iter_t it;
    sv_bytes_t k;
    int n = 0;
    sv_iter_open(tx, SV_DB_SCHEDULE, (sv_bytes_t){NULL, 0}, (sv_bytes_t){NULL, 0}, false, &it);
    while (sv_iter_next(&it, &k, NULL) == SV_OK)
        n++;
    sv_iter_close(&it);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return n;
}

/* ---- tests ---- */

static void test_runs_in_due_order(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    /* all overdue; stored before the handler exists, so they run in one sweep */
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "c", 3000), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "b", 2000), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "a", 2000), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "first", 1000), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "moved", 500), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "moved", 4000), SV_OK); /* moves, not duplicates */
    CU_ASSERT_EQUAL(count_entries(&f), 10);
    CU_ASSERT_EQUAL(lookup(&f, "job", "moved"), 4000);
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "job", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "job", record_job, NULL), SV_EEXIST);
    CU_ASSERT_FATAL(wait_runs(5));
    const char *want[] = {"first", "a", "b", "c", "moved"};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_STRING_EQUAL(rec.runs[i].key, want[i]);
        CU_ASSERT_STRING_EQUAL(rec.runs[i].kind, "job");
        CU_ASSERT(rec.runs[i].now_ms >= rec.runs[i].due_ms);
    }
    sv_scheduler_unregister(f.s, "job"); /* waits for the last run to be recorded */
    sv_scheduler_free(f.s);              /* and its removal to commit */
    f.s = NULL;
    CU_ASSERT_EQUAL(count_entries(&f), 0);
    CU_ASSERT_EQUAL(rec.n, 5);
    CU_ASSERT_EQUAL_FATAL(sv_scheduler_new(f.st, f.w, &f.s), SV_OK);
    teardown(&f);
}

static void test_survives_restart(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    int64_t now = sv_scheduler_now_ms();
    /* stored, then the process "stops" before anything runs */
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "renew", "cert-1", now + 300), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "renew", "overdue", now - 60000), SV_OK);
    close_all(&f);
    open_all(&f);
    CU_ASSERT_EQUAL(lookup(&f, "renew", "cert-1"), now + 300);
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "renew", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    CU_ASSERT_FATAL(wait_runs(2));
    CU_ASSERT_STRING_EQUAL(rec.runs[0].key, "overdue"); /* at once */
    CU_ASSERT_STRING_EQUAL(rec.runs[1].key, "cert-1");  /* when due */
    CU_ASSERT(rec.runs[1].now_ms >= now + 300);
    teardown(&f);
}

static void test_earlier_timer_wakes_thread(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "job", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    int64_t far = sv_scheduler_now_ms() + 3600 * 1000;
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "later", far), SV_OK);
    /* the thread now sleeps toward `far` (or its one-minute cap): an earlier
     * timer must wake it, or wait_runs would time out */
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "soon", sv_scheduler_now_ms() + 50), SV_OK);
    CU_ASSERT_FATAL(wait_runs(1));
    CU_ASSERT_STRING_EQUAL(rec.runs[0].key, "soon");
    CU_ASSERT_EQUAL(lookup(&f, "job", "later"), far);
    teardown(&f);
}

typedef struct {
    sv_scheduler_t *s;
    sv_err_t result;
} tx_op_t;

static sv_err_t apply_schedule_with_change(sv_wtxn_t *tx, sv_unit_t *u)
{
    tx_op_t *op = u->arg;
    sv_err_t err = sv_wtxn_put(tx, SV_DB_CERTS, SV_BYTES_STR("cert-9"), SV_BYTES_STR("pem"));
    if (err == SV_OK)
        err = sv_scheduler_at_tx(op->s, tx, "renew", "cert-9", sv_scheduler_now_ms() + 20);
    return err != SV_OK ? err : op->result;
}

static void test_at_tx_commits_with_the_unit(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "renew", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    /* a unit that fails takes its timer with it */
    tx_op_t bad = {f.s, SV_ECONFLICT};
    sv_unit_t u = {.apply = apply_schedule_with_change, .arg = &bad};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_ECONFLICT);
    CU_ASSERT_EQUAL(lookup(&f, "renew", "cert-9"), -1);
    CU_ASSERT_EQUAL(count_entries(&f), 0);
    /* one that commits keeps it, and the commit wakes the thread */
    tx_op_t good = {f.s, SV_OK};
    sv_unit_t u2 = {.apply = apply_schedule_with_change, .arg = &good};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_OK);
    CU_ASSERT_FATAL(wait_runs(1));
    CU_ASSERT_STRING_EQUAL(rec.runs[0].key, "cert-9");
    teardown(&f);
}

static void test_retry_and_move(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    rec.fail_first = 1;
    int64_t far = sv_scheduler_now_ms() + 7 * 24 * 3600 * 1000LL;
    rec.next_due_ms = far; /* after the retry succeeds: move it a week ahead */
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "sync", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_ensure(f.s, "sync", "", sv_scheduler_now_ms()), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    CU_ASSERT_FATAL(wait_runs(2)); /* fails, retried after the 1 s backoff */
    CU_ASSERT_EQUAL(rec.runs[0].attempts, 0);
    CU_ASSERT_EQUAL(rec.runs[1].attempts, 1);
    CU_ASSERT(rec.runs[1].due_ms >= rec.runs[0].now_ms + 1000); /* the backoff */
    sv_scheduler_unregister(f.s, "sync");
    sv_scheduler_free(f.s); /* the move is committed when the thread has stopped */
    f.s = NULL;
    CU_ASSERT_EQUAL(lookup(&f, "sync", ""), far);
    CU_ASSERT_EQUAL(count_entries(&f), 2);
    CU_ASSERT_EQUAL_FATAL(sv_scheduler_new(f.st, f.w, &f.s), SV_OK);
    /* ensure leaves an existing timer alone; at moves it */
    CU_ASSERT_EQUAL(sv_scheduler_ensure(f.s, "sync", "", 5), SV_OK);
    CU_ASSERT_EQUAL(lookup(&f, "sync", ""), far);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "sync", "", far + 1), SV_OK);
    CU_ASSERT_EQUAL(lookup(&f, "sync", ""), far + 1);
    CU_ASSERT_EQUAL(count_entries(&f), 2);
    teardown(&f);
}

static void test_cancel_and_invalid(void)
{
    fixture_t f;
    setup(&f);
    int64_t later = sv_scheduler_now_ms() + 3600 * 1000;
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "lease_expiry", "lease-1", later), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "lease_expiry", "lease-2", later), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_cancel(f.s, "lease_expiry", "lease-1"), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_cancel(f.s, "lease_expiry", "lease-1"), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(lookup(&f, "lease_expiry", "lease-1"), -1);
    CU_ASSERT_EQUAL(lookup(&f, "lease_expiry", "lease-2"), later);
    CU_ASSERT_EQUAL(count_entries(&f), 2);
    char long_key[SV_SCHED_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = 0;
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "Bad Kind", "", later), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "", "", later), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "ok", long_key, later), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "ok", "", -1), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "ok", "", SV_SCHED_DUE_MAX), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "has space", record_job, NULL), SV_EINVAL);
    CU_ASSERT_EQUAL(count_entries(&f), 2);
    teardown(&f);
}

static void test_unknown_kind_does_not_block(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    int64_t now = sv_scheduler_now_ms();
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "nobody", "x", now - 5000), SV_OK); /* first in line, no handler */
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "job", "y", now - 1000), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "job", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    CU_ASSERT_FATAL(wait_runs(1));
    CU_ASSERT_STRING_EQUAL(rec.runs[0].key, "y");
    CU_ASSERT_EQUAL(lookup(&f, "nobody", "x"), now - 5000); /* waits for its handler */
    /* once a handler registers, it runs */
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "nobody", record_job, NULL), SV_OK);
    CU_ASSERT_FATAL(wait_runs(2));
    CU_ASSERT_STRING_EQUAL(rec.runs[1].kind, "nobody");
    teardown(&f);
}

static void test_unregister_waits_for_running_handler(void)
{
    fixture_t f;
    setup(&f);
    rec_reset();
    rec.sleep_ms = 200;
    CU_ASSERT_EQUAL(sv_scheduler_register(f.s, "slow", record_job, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_start(f.s), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(f.s, "slow", "", 0), SV_OK);
    /* wait until the handler has started (the timer's commit woke the thread) */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&rec.lock);
    while (!rec.entered && pthread_cond_timedwait(&rec.cond, &rec.lock, &dl) != ETIMEDOUT)
        ;
    CU_ASSERT(rec.entered);
    pthread_mutex_unlock(&rec.lock);
    sv_scheduler_unregister(f.s, "slow");
    pthread_mutex_lock(&rec.lock);
    bool finished = rec.finished_sleep;
    int n = rec.n;
    pthread_mutex_unlock(&rec.lock);
    CU_ASSERT(finished); /* unregister returned only after the handler did */
    CU_ASSERT_EQUAL(n, 1);
    teardown(&f);
}

void sv_test_suite_scheduler(void)
{
    SV_SUITE("src/scheduler", {"runs_in_due_order", test_runs_in_due_order},
             {"survives_restart", test_survives_restart},
             {"earlier_timer_wakes_thread", test_earlier_timer_wakes_thread},
             {"at_tx_commits_with_the_unit", test_at_tx_commits_with_the_unit}, {"retry_and_move", test_retry_and_move},
             {"cancel_and_invalid", test_cancel_and_invalid},
             {"unknown_kind_does_not_block", test_unknown_kind_does_not_block},
             {"unregister_waits_for_running_handler", test_unregister_waits_for_running_handler});
}
