/* tests/wal/test_writer.c - the group-commit writer and the change log
 * (wal/writer.c, wal/log.c). */
#include "sv_autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "store/fault.h"
#include "store/key.h"
#include "store/migrate.h"
#include "tests/unit.h"
#include "wal/writer.h"

typedef struct {
    char *dir;
    sv_store_t *st;
    sv_writer_t *w;
} fixture_t;

static void setup(fixture_t *f, size_t map_size)
{
    CU_ASSERT_FATAL(sv_test_store_open("writer", map_size, 32, &f->dir, &f->st, &f->w));
}

static void teardown(fixture_t *f)
{
    sv_test_store_close(f->dir, f->st, f->w);
    sv_fault_reset();
}

typedef struct {
    const char *key;
    const char *val;
    sv_err_t fail_with; /* after putting, return this */
    int puts;           /* how many extra keys */
} put_op_t;

static sv_err_t apply_put(sv_wtxn_t *tx, sv_unit_t *u)
{
    put_op_t *op = u->arg;
    sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(op->key, strlen(op->key)), SV_BYTES(op->val, strlen(op->val)));
    if (err != SV_OK)
        return err;
    for (int i = 0; i < op->puts; i++) {
        char k[64];
        snprintf(k, sizeof(k), "%s/%d", op->key, i);
        if ((err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, strlen(k)), SV_BYTES(op->val, strlen(op->val)))) != SV_OK)
            return err;
    }
    return op->fail_with;
}

static bool get(fixture_t *f, const char *key, char *out, size_t cap)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_bytes_t v;
    bool found = sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES(key, strlen(key)), &v) == SV_OK;
    if (found) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.base, n);
        out[n] = 0;
    }
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return found;
}

static void test_put_and_read(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    put_op_t op = {"k1", "v1", SV_OK, 0};
    sv_unit_t u = {.apply = apply_put, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
    CU_ASSERT_EQUAL(u.first_lsn, 1);
    CU_ASSERT_EQUAL(u.last_lsn, 1);
    char buf[32];
    CU_ASSERT(get(&f, "k1", buf, sizeof(buf)));
    CU_ASSERT_STRING_EQUAL(buf, "v1");
    teardown(&f);
}

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int done_count;

static void count_done(sv_unit_t *u)
{
    pthread_mutex_lock(&done_lock);
    done_count++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&done_lock);
    while (done_count < n)
        pthread_cond_wait(&done_cond, &done_lock);
    done_count = 0;
    pthread_mutex_unlock(&done_lock);
}

static void test_failing_unit_alone(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    /* queue three units before the writer can take them: one batch */
    put_op_t ops[3] = {{"a", "1", SV_OK, 2}, {"b", "2", SV_ECONFLICT, 2}, {"c", "3", SV_OK, 0}};
    sv_unit_t units[3];
    for (int i = 0; i < 3; i++) {
        memset(&units[i], 0, sizeof(units[i]));
        units[i].apply = apply_put;
        units[i].arg = &ops[i];
    }
    for (int i = 0; i < 3; i++) {
        units[i].complete = count_done;
        CU_ASSERT_EQUAL(sv_writer_submit(f.w, &units[i]), SV_OK);
    }
    wait_done(3);
    CU_ASSERT_EQUAL(units[0].result, SV_OK);
    CU_ASSERT_EQUAL(units[1].result, SV_ECONFLICT);
    CU_ASSERT_EQUAL(units[2].result, SV_OK);
    char buf[32];
    CU_ASSERT(get(&f, "a", buf, sizeof(buf)));
    CU_ASSERT(get(&f, "a/1", buf, sizeof(buf)));
    CU_ASSERT_FALSE(get(&f, "b", buf, sizeof(buf)));
    CU_ASSERT_FALSE(get(&f, "b/0", buf, sizeof(buf)));
    CU_ASSERT(get(&f, "c", buf, sizeof(buf)));
    /* LSNs: a = 1..3, c = 4 (b's were handed back) */
    CU_ASSERT_EQUAL(units[0].first_lsn, 1);
    CU_ASSERT_EQUAL(units[0].last_lsn, 3);
    CU_ASSERT_EQUAL(units[1].first_lsn, 0);
    CU_ASSERT_EQUAL(units[2].first_lsn, 4);
    teardown(&f);
}

static void test_log_records(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    put_op_t op = {"x", "vx", SV_OK, 2};
    sv_unit_t u = {.apply = apply_put, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
    put_op_t op2 = {"y", "vy", SV_OK, 0};
    sv_unit_t u2 = {.apply = apply_put, .arg = &op2};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_OK);
    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_store_reader_new(f.st, &r);
    sv_store_read_begin(r, &tx);
    sv_wal_iter_t wi;
    CU_ASSERT_EQUAL_FATAL(sv_wal_iter_open(tx, 1, &wi), SV_OK);
    sv_wal_record_t rec;
    uint64_t expect = 1;
    int ends = 0;
    while (sv_wal_iter_next(&wi, &rec) == SV_OK) {
        CU_ASSERT_EQUAL(rec.lsn, expect);
        expect++;
        CU_ASSERT_EQUAL(rec.op, SV_WAL_PUT);
        CU_ASSERT_EQUAL(rec.db, SV_DB_SECRETS);
        if (rec.flags & SV_WAL_FLAG_UNIT_END)
            ends++;
        CU_ASSERT_EQUAL(rec.unit_id, rec.lsn <= 3 ? 1 : 4);
        CU_ASSERT_EQUAL(rec.flags & SV_WAL_FLAG_UNIT_END, (rec.lsn == 3 || rec.lsn == 4) ? 1 : 0);
    }
    sv_wal_iter_close(&wi);
    CU_ASSERT_EQUAL(expect, 5);
    CU_ASSERT_EQUAL(ends, 2);
    /* from the middle */
    CU_ASSERT_EQUAL_FATAL(sv_wal_iter_open(tx, 3, &wi), SV_OK);
    CU_ASSERT_EQUAL(sv_wal_iter_next(&wi, &rec), SV_OK);
    CU_ASSERT_EQUAL(rec.lsn, 3);
    CU_ASSERT_EQUAL(rec.key.len, 3);
    sv_wal_iter_close(&wi);
    uint64_t last;
    CU_ASSERT_EQUAL(sv_wal_last_lsn(tx, &last), SV_OK);
    CU_ASSERT_EQUAL(last, 4);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    teardown(&f);
}

static void test_checksum_detects_damage(void)
{
    sv_recw_t w;
    uint8_t key[] = "k";
    sv_wal_record_t rec = {.lsn = 7, .unit_id = 7, .time_us = 1, .op = SV_WAL_PUT, .db = SV_DB_SECRETS,
                           .key = {key, 1}, .value = {key, 1}};
    sv_wal_encode(&w, &rec);
    sv_wal_record_t out;
    CU_ASSERT_EQUAL(sv_wal_decode((sv_bytes_t){w.buf, w.len}, 7, &out), SV_OK);
    CU_ASSERT_EQUAL(sv_wal_decode((sv_bytes_t){w.buf, w.len}, 8, &out), SV_ECORRUPT); /* moved */
    w.buf[10] ^= 1;
    CU_ASSERT_EQUAL(sv_wal_decode((sv_bytes_t){w.buf, w.len}, 7, &out), SV_ECORRUPT);
    sv_recw_free(&w);
    /* CRC-32C check value */
    CU_ASSERT_EQUAL(sv_crc32c(0, "123456789", 9), 0xE3069283u);
}

static void test_commit_failure_fails_batch_then_recovers(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    sv_fault_arm(SV_FAULT_COMMIT, 1, 1, ENOSPC);
    put_op_t op = {"lost", "v", SV_OK, 0};
    sv_unit_t u = {.apply = apply_put, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_ENOSPC);
    char buf[8];
    CU_ASSERT_FALSE(get(&f, "lost", buf, sizeof(buf)));
    put_op_t op2 = {"kept", "v", SV_OK, 0};
    sv_unit_t u2 = {.apply = apply_put, .arg = &op2};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_OK);
    CU_ASSERT(get(&f, "kept", buf, sizeof(buf)));
    /* the failed batch left no gap in the log */
    CU_ASSERT_EQUAL(u2.first_lsn, 1);
    teardown(&f);
}

static sv_err_t apply_big(sv_wtxn_t *tx, sv_unit_t *u)
{
    static uint8_t val[4000];
    int *n = u->arg;
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof(k), "big/%d/%d", *n, i);
        sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, strlen(k)), SV_BYTES(val, sizeof(val)));
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

static void test_map_grows(void)
{
    fixture_t f;
    setup(&f, 1 << 20); /* 1 MiB: the writes below need ~10 */
    size_t before = sv_store_map_size(f.st);
    for (int i = 0; i < 50; i++) {
        sv_unit_t u = {.apply = apply_big, .arg = &i};
        CU_ASSERT_EQUAL_FATAL(sv_writer_run(f.w, &u), SV_OK);
    }
    CU_ASSERT(sv_store_map_size(f.st) > before);
    sv_writer_stats_t s;
    sv_writer_stats(f.w, &s);
    CU_ASSERT(s.map_grows > 0);
    char buf[8];
    CU_ASSERT(get(&f, "big/49/49", buf, sizeof(buf)));
    teardown(&f);
}

typedef struct {
    sv_writer_t *w;
    int id;
    int n;
    int ok;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    for (int i = 0; i < c->n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "c%d/%d", c->id, i);
        put_op_t op = {k, "v", SV_OK, 0};
        sv_unit_t u = {.apply = apply_put, .arg = &op};
        if (sv_writer_run(c->w, &u) == SV_OK)
            c->ok++;
    }
    return NULL;
}

static void test_group_commit_batches(void)
{
    fixture_t f;
    setup(&f, 8 << 20);
    pthread_t th[16];
    client_t cl[16];
    for (int i = 0; i < 16; i++) {
        cl[i] = (client_t){f.w, i, 100, 0};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    int ok = 0;
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        ok += cl[i].ok;
    }
    CU_ASSERT_EQUAL(ok, 1600);
    sv_writer_stats_t s;
    sv_writer_stats(f.w, &s);
    CU_ASSERT_EQUAL(s.units, 1600);
    CU_ASSERT_EQUAL(s.last_lsn, 1600);
    CU_ASSERT(s.commits <= 1600);
    teardown(&f);
}

/* ---- commit failures fail the whole batch ---- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, release;
} gate_t;

static gate_t gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

/* Holds the writer inside its apply until the test opens the gate, so that
 * everything submitted meanwhile forms the next batch. */
static sv_err_t apply_gate(sv_wtxn_t *tx, sv_unit_t *u)
{
    pthread_mutex_lock(&gate.lock);
    gate.entered = true;
    pthread_cond_broadcast(&gate.cond);
    while (!gate.release)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
    return sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES_STR("gate"), SV_BYTES_STR("g"));
}

static uint64_t applied_lsn(fixture_t *f)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    uint64_t lsn = 0, last = 0;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    CU_ASSERT_EQUAL(sv_wal_applied_lsn(tx, &lsn), SV_OK);
    CU_ASSERT_EQUAL(sv_wal_last_lsn(tx, &last), SV_OK);
    CU_ASSERT_EQUAL(lsn, last); /* without pruning the log ends at applied_lsn */
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return lsn;
}

/* Submits a gate unit and n multi-key units behind it; arms the commit seam for
 * their batch with errno e; checks that every one of them failed with want and
 * left nothing behind. */
static void batch_fails_with(fixture_t *f, int e, sv_err_t want, const char *tag)
{
    enum { N = 8 };
    sv_writer_stats_t before, after;
    sv_writer_stats(f->w, &before);
    uint64_t lsn_before = applied_lsn(f);
    gate.entered = gate.release = false;
    sv_unit_t g = {.apply = apply_gate, .complete = count_done};
    CU_ASSERT_EQUAL_FATAL(sv_writer_submit(f->w, &g), SV_OK);
    pthread_mutex_lock(&gate.lock);
    while (!gate.entered)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);

    char keys[N][32];
    put_op_t ops[N];
    sv_unit_t units[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s%d", tag, i);
        ops[i] = (put_op_t){keys[i], "v", SV_OK, 3};
        units[i] = (sv_unit_t){.apply = apply_put, .arg = &ops[i], .complete = count_done};
        CU_ASSERT_EQUAL_FATAL(sv_writer_submit(f->w, &units[i]), SV_OK);
    }
    sv_fault_arm(SV_FAULT_COMMIT, 2, 1, e); /* the gate's batch is commit 1 */
    pthread_mutex_lock(&gate.lock);
    gate.release = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    wait_done(N + 1);

    CU_ASSERT_EQUAL(g.result, SV_OK);
    char buf[16];
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(units[i].result, want);
        CU_ASSERT_EQUAL(units[i].first_lsn, 0);
        CU_ASSERT_FALSE(get(f, keys[i], buf, sizeof(buf)));
        char sub[300];
        for (int j = 0; j < 3; j++) {
            snprintf(sub, sizeof(sub), "%s/%d", keys[i], j);
            CU_ASSERT_FALSE(get(f, sub, buf, sizeof(buf)));
        }
    }
    sv_writer_stats(f->w, &after);
    CU_ASSERT_EQUAL(after.failed_commits, before.failed_commits + 1);
    CU_ASSERT_EQUAL(after.commits, before.commits + 1); /* the gate's */
    /* the log and applied_lsn hold the gate's record, nothing of the failed batch */
    CU_ASSERT_EQUAL(applied_lsn(f), lsn_before + 1);
    CU_ASSERT_EQUAL(after.last_lsn, lsn_before + 1);
}

/* ---- completed units go back one chain per notifier per batch ---- */

typedef struct {
    sv_notify_t base;
    int posts;
    int units;
    sv_unit_t *order[32];
} chain_notify_t;

static void chain_post(sv_notify_t *n, sv_unit_t *chain)
{
    chain_notify_t *cn = (chain_notify_t *)n;
    pthread_mutex_lock(&done_lock);
    cn->posts++;
    for (sv_unit_t *u = chain, *next; u != NULL; u = next) {
        next = sv_unit_next(u);
        if (cn->units < 32)
            cn->order[cn->units] = u;
        cn->units++;
        done_count++;
    }
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void test_one_post_per_notifier_per_batch(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    gate.entered = gate.release = false;
    sv_unit_t g = {.apply = apply_gate, .complete = count_done};
    CU_ASSERT_EQUAL_FATAL(sv_writer_submit(f.w, &g), SV_OK);
    pthread_mutex_lock(&gate.lock);
    while (!gate.entered)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);

    /* 20 units for two notifiers, interleaved, and two completed on the writer */
    enum { N = 20 };
    chain_notify_t a = {{chain_post}, 0, 0, {0}}, b = {{chain_post}, 0, 0, {0}};
    char keys[N][16];
    put_op_t ops[N];
    sv_unit_t units[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "n%d", i);
        ops[i] = (put_op_t){keys[i], "v", i == 7 ? SV_ECONFLICT : SV_OK, 0};
        units[i] = (sv_unit_t){.apply = apply_put, .arg = &ops[i], .complete = count_done};
        if (i % 10 != 9)
            units[i].notify = i % 2 == 0 ? &a.base : &b.base;
        CU_ASSERT_EQUAL_FATAL(sv_writer_submit(f.w, &units[i]), SV_OK);
    }
    pthread_mutex_lock(&gate.lock);
    gate.release = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    wait_done(N + 1);

    /* one batch behind the gate: one post each, every unit once, in order */
    CU_ASSERT_EQUAL(a.posts, 1);
    CU_ASSERT_EQUAL(b.posts, 1);
    CU_ASSERT_EQUAL(a.units, 10); /* the even ones */
    CU_ASSERT_EQUAL(b.units, 8); /* the odd ones but 9 and 19 */
    for (int k = 0, i = 0; i < N; i++) {
        if (units[i].notify == &a.base)
            CU_ASSERT_PTR_EQUAL(a.order[k++], &units[i]);
    }
    for (int k = 0, i = 0; i < N; i++) {
        if (units[i].notify == &b.base)
            CU_ASSERT_PTR_EQUAL(b.order[k++], &units[i]);
    }
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(units[i].result, i == 7 ? SV_ECONFLICT : SV_OK);
    teardown(&f);
}

static void test_commit_failure_fails_every_unit(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    batch_fails_with(&f, ENOSPC, SV_ENOSPC, "nospace");
    batch_fails_with(&f, EIO, SV_EIO, "ioerr");
    batch_fails_with(&f, EDQUOT, SV_ENOSPC, "quota");
    /* writes succeed again, with the next LSN */
    uint64_t lsn = applied_lsn(&f);
    put_op_t op = {"after", "v", SV_OK, 3};
    sv_unit_t u = {.apply = apply_put, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
    CU_ASSERT_EQUAL(u.first_lsn, lsn + 1);
    CU_ASSERT_EQUAL(u.last_lsn, lsn + 4);
    char buf[8];
    CU_ASSERT(get(&f, "after/2", buf, sizeof(buf)));
    teardown(&f);
}

/* ---- the change log: applied_lsn, retention, iterator, restart ---- */

static sv_err_t apply_many(sv_wtxn_t *tx, sv_unit_t *u)
{
    int *n = u->arg;
    for (int i = 0; i < *n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "many/%d", i);
        sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, strlen(k)), SV_BYTES_STR("m"));
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

typedef struct {
    uint64_t first, last, count;
    bool gapless, starts_unit, ends_unit;
} log_scan_t;

/* Walks the whole log: LSN range, gaps, unit boundaries at both ends. */
static log_scan_t scan_log(fixture_t *f, uint64_t from)
{
    log_scan_t s = {0, 0, 0, true, false, false};
    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_store_reader_new(f->st, &r);
    sv_store_read_begin(r, &tx);
    sv_wal_iter_t wi;
    sv_wal_record_t rec;
    CU_ASSERT_EQUAL_FATAL(sv_wal_iter_open(tx, from, &wi), SV_OK);
    sv_err_t err;
    while ((err = sv_wal_iter_next(&wi, &rec)) == SV_OK) {
        if (s.count == 0) {
            s.first = rec.lsn;
            s.starts_unit = rec.unit_id == rec.lsn;
        } else if (rec.lsn != s.last + 1) {
            s.gapless = false;
        }
        s.last = rec.lsn;
        s.ends_unit = (rec.flags & SV_WAL_FLAG_UNIT_END) != 0;
        s.count++;
    }
    CU_ASSERT_EQUAL(err, SV_ENOTFOUND);
    sv_wal_iter_close(&wi);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return s;
}

static void restart_writer(fixture_t *f, int64_t retention_ms)
{
    sv_writer_stop(f->w);
    sv_writer_opts_t o = {.wal_retention_ms = retention_ms};
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(f->st, &o, &f->w), SV_OK);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_iterator_and_applied_lsn(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    CU_ASSERT_EQUAL(applied_lsn(&f), 0);
    for (int n = 1; n <= 5; n++) { /* units of 1..5 records: LSNs 1..15 */
        sv_unit_t u = {.apply = apply_many, .arg = &n};
        CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
        CU_ASSERT_EQUAL(applied_lsn(&f), u.last_lsn);
    }
    CU_ASSERT_EQUAL(applied_lsn(&f), 15);
    /* from every LSN, including 0 and past the end */
    for (uint64_t from = 0; from <= 17; from++) {
        log_scan_t s = scan_log(&f, from);
        uint64_t want_first = from == 0 ? 1 : from;
        if (from > 15) {
            CU_ASSERT_EQUAL(s.count, 0);
            continue;
        }
        CU_ASSERT_EQUAL(s.first, want_first);
        CU_ASSERT_EQUAL(s.last, 15);
        CU_ASSERT_EQUAL(s.count, 15 - want_first + 1);
        CU_ASSERT(s.gapless);
        CU_ASSERT(s.ends_unit);
        /* units start at 1, 2, 4, 7, 11 */
        CU_ASSERT_EQUAL(s.starts_unit, from <= 1 || from == 2 || from == 4 || from == 7 || from == 11);
    }
    /* a unit whose apply fails writes nothing and moves nothing */
    put_op_t bad = {"bad", "v", SV_ECONFLICT, 2};
    sv_unit_t ub = {.apply = apply_put, .arg = &bad};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &ub), SV_ECONFLICT);
    CU_ASSERT_EQUAL(applied_lsn(&f), 15);
    teardown(&f);
}

static void test_restart_next_lsn(void)
{
    fixture_t f;
    setup(&f, 1 << 20);
    int n = 3;
    sv_unit_t u = {.apply = apply_many, .arg = &n};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
    restart_writer(&f, 0);
    sv_unit_t u2 = {.apply = apply_many, .arg = &n};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_OK);
    CU_ASSERT_EQUAL(u2.first_lsn, 4);
    /* reopen the whole environment too */
    sv_writer_stop(f.w);
    sv_store_close(f.st);
    sv_store_opts_t o = {.dir = f.dir, .map_size = 1 << 20, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&f.st, &o), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(f.st, NULL, &f.w), SV_OK);
    sv_unit_t u3 = {.apply = apply_many, .arg = &n};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u3), SV_OK);
    CU_ASSERT_EQUAL(u3.first_lsn, 7);
    log_scan_t s = scan_log(&f, 0);
    CU_ASSERT(s.gapless && s.first == 1 && s.last == 9);
    teardown(&f);
}

static void test_retention_prunes_whole_units(void)
{
    fixture_t f;
    setup(&f, 8 << 20);
    int big = 600, small = 2;
    sv_unit_t u1 = {.apply = apply_many, .arg = &big}; /* LSNs 1..600 */
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u1), SV_OK);
    sv_unit_t u2 = {.apply = apply_many, .arg = &small}; /* 601..602 */
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_OK);
    restart_writer(&f, 1); /* 1 ms: everything from an earlier batch is old */
    sleep_ms(5);
    /* this batch prunes the older batches: it reaches the per-batch limit
     * (512) inside unit 1 and stops at that unit's end, so unit 1 goes whole
     * and unit 2 waits for the next batch */
    sv_unit_t u3 = {.apply = apply_many, .arg = &small}; /* 603..604 */
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u3), SV_OK);
    log_scan_t s = scan_log(&f, 0);
    CU_ASSERT_EQUAL(s.first, 601);
    CU_ASSERT(s.starts_unit);
    CU_ASSERT(s.gapless);
    CU_ASSERT_EQUAL(s.last, 604);
    sleep_ms(5);
    sv_unit_t u4 = {.apply = apply_many, .arg = &small}; /* 605..606 */
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u4), SV_OK);
    s = scan_log(&f, 0);
    CU_ASSERT_EQUAL(s.first, 605);
    CU_ASSERT(s.starts_unit && s.ends_unit && s.gapless);
    /* the iterator from a pruned LSN starts at the first kept record */
    s = scan_log(&f, 10);
    CU_ASSERT_EQUAL(s.first, 605);

    /* a batch that writes nothing prunes the whole log; the next LSN survives
     * a restart through applied_lsn */
    sleep_ms(5);
    sv_unit_t empty = {.apply = NULL};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &empty), SV_OK);
    s = scan_log(&f, 0);
    CU_ASSERT_EQUAL(s.count, 0);
    restart_writer(&f, 0);
    sv_unit_t u5 = {.apply = apply_many, .arg = &small};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u5), SV_OK);
    CU_ASSERT_EQUAL(u5.first_lsn, 607);
    s = scan_log(&f, 0);
    CU_ASSERT(s.first == 607 && s.last == 608 && s.starts_unit && s.ends_unit);
    /* data is not pruned, only its log */
    char buf[8];
    CU_ASSERT(get(&f, "many/599", buf, sizeof(buf)));
    teardown(&f);
}

static sv_err_t apply_del_many(sv_wtxn_t *tx, sv_unit_t *u)
{
    size_t deleted = 0;
    sv_err_t err = sv_wtxn_del_prefix(tx, SV_DB_SECRETS, SV_BYTES_STR("many/"), &deleted);
    if (err == SV_OK && deleted != 3000)
        err = SV_EINTERNAL;
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES_STR("other"), SV_BYTES_STR("o"));
    return err;
}

static void test_del_prefix_logs_each(void)
{
    fixture_t f;
    setup(&f, 8 << 20);
    int n = 3000; /* several pages */
    sv_unit_t u = {.apply = apply_many, .arg = &n};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
    sv_unit_t d = {.apply = apply_del_many};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &d), SV_OK);
    CU_ASSERT_EQUAL(d.last_lsn - d.first_lsn + 1, 3001);
    char buf[8];
    CU_ASSERT_FALSE(get(&f, "many/0", buf, sizeof(buf)));
    CU_ASSERT_FALSE(get(&f, "many/2999", buf, sizeof(buf)));
    CU_ASSERT(get(&f, "other", buf, sizeof(buf)));
    teardown(&f);
}

void sv_test_suite_writer(void)
{
    SV_SUITE("wal/writer", {"put_and_read", test_put_and_read}, {"failing_unit_alone", test_failing_unit_alone},
             {"log_records", test_log_records}, {"checksum_detects_damage", test_checksum_detects_damage},
             {"commit_failure_fails_batch_then_recovers", test_commit_failure_fails_batch_then_recovers},
             {"map_grows", test_map_grows}, {"group_commit_batches", test_group_commit_batches},
             {"commit_failure_fails_every_unit", test_commit_failure_fails_every_unit},
             {"iterator_and_applied_lsn", test_iterator_and_applied_lsn},
             {"restart_next_lsn", test_restart_next_lsn},
             {"retention_prunes_whole_units", test_retention_prunes_whole_units},
             {"del_prefix_logs_each", test_del_prefix_logs_each},
             {"one_post_per_notifier_per_batch", test_one_post_per_notifier_per_batch});
}
