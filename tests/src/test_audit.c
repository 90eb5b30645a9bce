/* tests/src/test_audit.c - the audit log (src/audit.c, audit_verify.c,
 * audit_query.c): the canonical encoding (the example of doc/audit.md), the
 * chain through the real writer, rollbacks, every kind of tampering,
 * checkpoints, retention anchors, queries and the export. */
#include "sv_autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/audit_journal.h"
#include "src/audit_query.h"
#include "src/audit_verify.h"
#include "store/fault.h"
#include "store/key.h"
#include "store/migrate.h"
#include "tests/audit_tamper.h"
#include "tests/unit.h"

typedef struct {
    char *dir;
    char key_file[600];
    char journal[600];
    sv_store_t *st;
    sv_writer_t *w;
    sv_audit_t *a;
} fixture_t;

static void setup_opts(fixture_t *f, sv_audit_opts_t o)
{
    CU_ASSERT_FATAL(sv_test_store_open("audit", 4 << 20, 32, &f->dir, &f->st, &f->w));
    snprintf(f->key_file, sizeof(f->key_file), "%s/audit-signing.key", f->dir);
    o.key_file = f->key_file;
    char msg[256];
    CU_ASSERT_EQUAL_FATAL(sv_audit_open(&o, &f->a, msg, sizeof(msg)), SV_OK);
    sv_audit_attach(f->a, f->w);
}

/* With the journal of a server (src/audit_journal.h). */
static void setup_journal(fixture_t *f, sv_audit_opts_t o)
{
    o.journal_age_ms = 600000; /* the tests decide when the journal goes to the store */
    CU_ASSERT_FATAL(sv_test_store_open("audit", 4 << 20, 32, &f->dir, &f->st, &f->w));
    snprintf(f->key_file, sizeof(f->key_file), "%s/audit-signing.key", f->dir);
    snprintf(f->journal, sizeof(f->journal), "%s/%s", f->dir, SV_AUDIT_JOURNAL_FILE);
    o.key_file = f->key_file;
    char msg[256];
    CU_ASSERT_EQUAL_FATAL(sv_audit_open(&o, &f->a, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_audit_attach_journal(f->a, f->w, f->journal, msg, sizeof(msg)), SV_OK);
}

static void setup(fixture_t *f)
{
    setup_opts(f, (sv_audit_opts_t){0});
}

static void teardown(fixture_t *f)
{
    sv_writer_stop(f->w);
    sv_audit_close(f->a);
    sv_test_store_close(f->dir, f->st, NULL); /* the writer is stopped before the audit log closes */
    sv_fault_reset();
}

static void make_entry(sv_audit_entry_t *e, int i, const char *tenant)
{
    sv_audit_entry_init(e, i % 3 == 0 ? "secret_write" : "secret_read", tenant, i % 2 ? "sa:billing" : "sa:app",
                        i % 4 == 0 ? "app/db/password" : "other/thing", i % 5 != 0,
                        i % 5 != 0 ? NULL : "access_denied");
    snprintf(e->request_id, sizeof(e->request_id), "req_%04d", i);
    e->status = i % 5 != 0 ? 200 : 403;
    snprintf(e->ip, sizeof(e->ip), "10.0.0.%d", i % 250);
    snprintf(e->user_agent, sizeof(e->user_agent), "test/%d", i);
}

/* Appends one entry in a unit of its own (one batch). */
static sv_err_t append(fixture_t *f, const sv_audit_entry_t *e)
{
    sv_unit_t u = {.audit = (void *)e};
    return sv_writer_run(f->w, &u);
}

static void append_n(fixture_t *f, int from, int n, const char *tenant)
{
    for (int i = from; i < from + n; i++) {
        sv_audit_entry_t e;
        make_entry(&e, i, tenant);
        CU_ASSERT_EQUAL(append(f, &e), SV_OK);
    }
}

/* Appends n entries as concurrently queued units (few big batches). */
static void append_bulk(fixture_t *f, int n)
{
    sv_unit_t *units = calloc((size_t)n, sizeof(*units));
    sv_audit_entry_t *entries = calloc((size_t)n, sizeof(*entries));
    for (int i = 0; i < n; i++) {
        make_entry(&entries[i], i, i % 2 ? "tnt_a" : "tnt_b");
        units[i].audit = &entries[i];
    }
    CU_ASSERT_EQUAL(sv_writer_run_all(f->w, units, (size_t)n), SV_OK);
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(units[i].result, SV_OK);
    free(units);
    free(entries);
}

static void verify(fixture_t *f, bool with_key, sv_audit_verifier_t *v)
{
    sv_audit_verify_init(v, 0, 0, with_key ? sv_audit_public_key(f->a) : NULL);
    CU_ASSERT_EQUAL(sv_audit_verify_store(f->st, v), SV_OK);
    CU_ASSERT(v->done);
}

#define ASSERT_VERIFIES(f, key)                                                                                        \
    do {                                                                                                               \
        sv_audit_verifier_t v_;                                                                                        \
        verify((f), (key), &v_);                                                                                       \
        if (!v_.ok)                                                                                                    \
            fprintf(stderr, "\n  %s:%d: verify: bad seq %llu: %s\n", __FILE__, __LINE__,                               \
                    (unsigned long long)v_.first_bad_seq, v_.reason);                                                  \
        CU_ASSERT(v_.ok);                                                                                              \
    } while (0)

#define ASSERT_BAD_AT(f, key, seq)                                                                                     \
    do {                                                                                                               \
        sv_audit_verifier_t v_;                                                                                        \
        verify((f), (key), &v_);                                                                                       \
        CU_ASSERT_FALSE(v_.ok);                                                                                        \
        if (v_.ok || v_.first_bad_seq != (seq))                                                                        \
            fprintf(stderr, "\n  %s:%d: verify: ok=%d bad seq %llu (%s), want %llu\n", __FILE__, __LINE__, v_.ok,      \
                    (unsigned long long)v_.first_bad_seq, v_.reason, (unsigned long long)(seq));                       \
        CU_ASSERT_EQUAL(v_.first_bad_seq, (seq));                                                                      \
    } while (0)

/* Reads the record at key (seq, optional tag) into a copy. */
static bool read_record(fixture_t *f, uint64_t seq, char tag, uint8_t *out, size_t *len)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    uint8_t k[9];
    sv_put_be64(k, seq);
    k[8] = (uint8_t)tag;
    sv_bytes_t v;
    bool found = sv_txn_get(tx, SV_DB_AUDIT, SV_BYTES(k, tag ? 9 : 8), &v) == SV_OK;
    if (found) {
        memcpy(out, v.base, v.len);
        *len = v.len;
    }
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return found;
}

/* Counts the records of db; in the audit database only those of one kind
 * (tag 0: entries, 'C' checkpoints, 'A' anchors; -1: all) up to max_seq. */
static size_t count_records(fixture_t *f, sv_db_t db, int tag, uint64_t max_seq)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_iter_t it;
    size_t n = 0;
    if (sv_iter_open(tx, db, (sv_bytes_t){0}, (sv_bytes_t){0}, false, &it) == SV_OK) {
        sv_bytes_t k, v;
        while (sv_iter_next(&it, &k, &v) == SV_OK)
            if (tag < 0 || (k.len >= 8 && sv_get_be64(k.base) <= max_seq &&
                            (tag == 0 ? k.len == 8 : (k.len == 9 && k.base[8] == tag))))
                n++;
        sv_iter_close(&it);
    }
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return n;
}

static size_t count_db(fixture_t *f, sv_db_t db)
{
    return count_records(f, db, -1, UINT64_MAX);
}

/* Rows of audit_by_time of one kind: 'g' (an entry) or 's' (a tenant's
 * activity in one second). */
static size_t count_time_rows(fixture_t *f, char kind)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_iter_t it;
    uint8_t prefix = (uint8_t)kind;
    if (sv_iter_open(tx, SV_DB_AUDIT_BY_TIME, SV_BYTES(&prefix, 1), (sv_bytes_t){0}, false, &it) == SV_OK) {
        sv_bytes_t k;
        while (sv_iter_next(&it, &k, NULL) == SV_OK)
            n++;
        sv_iter_close(&it);
    }
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return n;
}

static size_t count_kind(fixture_t *f, char tag, uint64_t max_seq)
{
    return count_records(f, SV_DB_AUDIT, tag, max_seq);
}

/* ---- the canonical encoding: doc/audit.md's example ---- */

static void example_entry(sv_audit_entry_t *e)
{
    sv_audit_entry_init(e, "secret_read", "tnt_demo", "sa:billing", "app/db/password", true, NULL);
    snprintf(e->request_id, sizeof(e->request_id), "req_01JDEMO0000000000000000000");
    e->status = 200;
    snprintf(e->ip, sizeof(e->ip), "10.0.0.7");
    snprintf(e->user_agent, sizeof(e->user_agent), "curl/8.5.0");
}

static void test_canonical_example(void)
{
    /* doc/audit.md "A worked example": keep the two in step */
    static const char canonical_hex[] = "01"
                                        "0000000000000001"
                                        "000661675b370a40"
                                        "01"
                                        "00c8"
                                        "001e"
                                        "7265715f30314a44454d4f30303030303030303030303030303030303030"
                                        "0008"
                                        "746e745f64656d6f"
                                        "000a"
                                        "73613a62696c6c696e67"
                                        "000b"
                                        "7365637265745f72656164"
                                        "000f"
                                        "6170702f64622f70617373776f7264"
                                        "0000"
                                        "0008"
                                        "31302e302e302e37"
                                        "000a"
                                        "6375726c2f382e352e30";
    static const char hash_hex[] = "be2386581d8a5fc7a374c16d1f32b9172d71a475776ca9503b11b9f9b33c3e7e";
    static const char hash2_hex[] = "24d7feae9cd61405d008b617310b255241ac802a9d15694b54db88d38c134356";
    sv_audit_entry_t e;
    example_entry(&e);
    uint8_t zero[SV_AUDIT_HASH_BYTES] = {0}, rec[SV_AUDIT_RECORD_MAX];
    int64_t t = 1795946400LL * 1000000 + 123456; /* 2026-11-29T10:00:00.123456Z */
    size_t n = sv_audit_record_encode(rec, sizeof(rec), 1, t, &e, zero);
    CU_ASSERT_FATAL(n > 64);
    char hex[2 * SV_AUDIT_RECORD_MAX + 1];
    sodium_bin2hex(hex, sizeof(hex), rec + 64, n - 64);
    if (strcmp(hex, canonical_hex) != 0)
        fprintf(stderr, "\n  canonical: %s\n", hex);
    CU_ASSERT_STRING_EQUAL(hex, canonical_hex);
    sodium_bin2hex(hex, sizeof(hex), rec, SV_AUDIT_HASH_BYTES);
    if (strcmp(hex, hash_hex) != 0)
        fprintf(stderr, "\n  hash 1: %s\n", hex);
    CU_ASSERT_STRING_EQUAL(hex, hash_hex);
    /* the second entry: a denied write, chained to the first */
    uint8_t rec2[SV_AUDIT_RECORD_MAX];
    sv_audit_entry_init(&e, "secret_write", "tnt_demo", "sa:billing", "app/db/password", false, "access_denied");
    snprintf(e.request_id, sizeof(e.request_id), "req_01JDEMO0000000000000000001");
    e.status = 403;
    snprintf(e.ip, sizeof(e.ip), "10.0.0.7");
    size_t n2 = sv_audit_record_encode(rec2, sizeof(rec2), 2, t + 1500, &e, rec);
    CU_ASSERT_FATAL(n2 > 64);
    sodium_bin2hex(hex, sizeof(hex), rec2, SV_AUDIT_HASH_BYTES);
    if (strcmp(hex, hash2_hex) != 0)
        fprintf(stderr, "\n  hash 2: %s\n", hex);
    CU_ASSERT_STRING_EQUAL(hex, hash2_hex);
    CU_ASSERT_EQUAL(memcmp(rec2 + 32, rec, 32), 0);
    /* decoding gives the fields back */
    sv_audit_record_t r;
    CU_ASSERT_EQUAL_FATAL(sv_audit_record_decode(SV_BYTES(rec2, n2), &r), SV_OK);
    CU_ASSERT_EQUAL(r.seq, 2);
    CU_ASSERT_EQUAL(r.time_us, t + 1500);
    CU_ASSERT_FALSE(r.success);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_EQUAL(r.error_code.len, strlen("access_denied"));
    CU_ASSERT_EQUAL(r.user_agent.len, 0);
    CU_ASSERT(sv_audit_record_hash_ok(&r));
    char ts[32];
    sv_audit_time_format(ts, t);
    CU_ASSERT_STRING_EQUAL(ts, "2026-11-29T10:00:00.123456Z");
    /* a damaged record does not decode */
    CU_ASSERT_EQUAL(sv_audit_record_decode(SV_BYTES(rec2, n2 - 1), &r), SV_ECORRUPT);
    rec2[64] = 2;
    CU_ASSERT_EQUAL(sv_audit_record_decode(SV_BYTES(rec2, n2), &r), SV_ECORRUPT);
}

static void test_utf8_cleaned(void)
{
    sv_audit_entry_t e;
    sv_audit_entry_init(&e, "http_request", NULL, NULL, NULL, false, "not_found");
    /* a valid é, a lone continuation byte, an overlong '/', a truncated 3-byte sequence */
    snprintf(e.user_agent, sizeof(e.user_agent), "ok\xc3\xa9 \x80 \xc0\xaf end\xe2\x82");
    uint8_t zero[32] = {0}, rec[SV_AUDIT_RECORD_MAX];
    size_t n = sv_audit_record_encode(rec, sizeof(rec), 1, 0, &e, zero);
    sv_audit_record_t r;
    CU_ASSERT_EQUAL_FATAL(sv_audit_record_decode(SV_BYTES(rec, n), &r), SV_OK);
    CU_ASSERT_EQUAL(r.user_agent.len, strlen("ok\xc3\xa9 ? ?? end??"));
    CU_ASSERT_EQUAL(memcmp(r.user_agent.base, "ok\xc3\xa9 ? ?? end??", r.user_agent.len), 0);
}

/* ---- the chain through the writer ---- */

static void test_chain_and_indexes(void)
{
    fixture_t f;
    setup(&f);
    append_n(&f, 1, 10, "tnt_a");
    uint8_t rec[SV_AUDIT_RECORD_MAX], prev[32] = {0};
    size_t len;
    for (uint64_t s = 1; s <= 10; s++) {
        CU_ASSERT_FATAL(read_record(&f, s, 0, rec, &len));
        sv_audit_record_t r;
        CU_ASSERT_EQUAL_FATAL(sv_audit_record_decode(SV_BYTES(rec, len), &r), SV_OK);
        CU_ASSERT_EQUAL(r.seq, s);
        CU_ASSERT_EQUAL(memcmp(r.prev_hash, prev, 32), 0);
        CU_ASSERT(sv_audit_record_hash_ok(&r));
        memcpy(prev, r.hash, 32);
    }
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT_BY_REQUEST), 10);
    CU_ASSERT_EQUAL(count_time_rows(&f, 'g'), 10); /* one per entry */
    size_t active = count_time_rows(&f, 's');      /* one per second tnt_a was active in */
    CU_ASSERT(active >= 1 && active <= 2);
    /* an event without request id or tenant: one time row, no request row */
    sv_audit_entry_t e;
    sv_audit_entry_init(&e, "identity_sync", NULL, "system", NULL, true, NULL);
    CU_ASSERT_EQUAL(append(&f, &e), SV_OK);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT_BY_REQUEST), 10);
    CU_ASSERT_EQUAL(count_time_rows(&f, 'g'), 11);
    CU_ASSERT_EQUAL(count_time_rows(&f, 's'), active); /* no tenant: no activity row */
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

/* ---- the index rows are derived, not logged ---- */

typedef struct {
    uint8_t key[8];
    uint8_t *val;
    size_t len;
} logged_entry_t;

typedef struct {
    logged_entry_t *e;
    size_t n;
} logged_t;

/* What a reader of the change log does with each logged entry: put it, then
 * derive its index rows. */
static sv_err_t apply_logged(sv_wtxn_t *tx, void *arg)
{
    const logged_t *l = arg;
    for (size_t i = 0; i < l->n; i++) {
        sv_audit_record_t r;
        sv_err_t err = sv_wtxn_put(tx, SV_DB_AUDIT, SV_BYTES(l->e[i].key, 8), SV_BYTES(l->e[i].val, l->e[i].len));
        if (err == SV_OK)
            err = sv_audit_record_decode(SV_BYTES(l->e[i].val, l->e[i].len), &r);
        if (err == SV_OK)
            err = sv_audit_index_entry(tx, &r);
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

/* Every key of db, concatenated with their lengths, into out. */
static void db_keys(sv_store_t *st, sv_db_t db, sv_buf_t *out)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_iter_t it;
    CU_ASSERT_EQUAL_FATAL(sv_iter_open(tx, db, (sv_bytes_t){0}, (sv_bytes_t){0}, false, &it), SV_OK);
    sv_bytes_t k;
    while (sv_iter_next(&it, &k, NULL) == SV_OK) {
        uint8_t len = (uint8_t)k.len;
        sv_buf_append(out, &len, 1);
        sv_buf_append(out, k.base, k.len);
    }
    sv_iter_close(&it);
    sv_store_read_end(r);
    sv_store_reader_free(r);
}

static void test_indexes_derived_not_logged(void)
{
    fixture_t f;
    setup(&f);
    append_n(&f, 1, 30, "tnt_a");
    append_n(&f, 31, 20, "tnt_b");
    sv_audit_entry_t ev;
    sv_audit_entry_init(&ev, "identity_sync", NULL, "system", NULL, true, NULL); /* no tenant, no request id */
    CU_ASSERT_EQUAL(append(&f, &ev), SV_OK);

    /* the log holds each entry once, and no index row */
    logged_t l = {calloc(64, sizeof(logged_entry_t)), 0};
    size_t index_records = 0;
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f.st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_wal_iter_t wi;
    sv_wal_record_t rec;
    CU_ASSERT_EQUAL_FATAL(sv_wal_iter_open(tx, 0, &wi), SV_OK);
    while (sv_wal_iter_next(&wi, &rec) == SV_OK) {
        if (rec.db == SV_DB_AUDIT_BY_REQUEST || rec.db == SV_DB_AUDIT_BY_TIME)
            index_records++;
        if (rec.db == SV_DB_AUDIT && rec.op == SV_WAL_PUT && rec.key.len == 8 && l.n < 64) {
            memcpy(l.e[l.n].key, rec.key.base, 8);
            l.e[l.n].val = malloc(rec.value.len);
            memcpy(l.e[l.n].val, rec.value.base, rec.value.len);
            l.e[l.n++].len = rec.value.len;
        }
    }
    sv_wal_iter_close(&wi);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    CU_ASSERT_EQUAL(index_records, 0);
    CU_ASSERT_EQUAL(l.n, 51);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT_BY_REQUEST), 50);

    /* a store rebuilt from the log alone has the same index rows */
    char *dir2;
    sv_store_t *st2;
    sv_writer_t *w2;
    CU_ASSERT_FATAL(sv_test_store_open("audit-replay", 4 << 20, 32, &dir2, &st2, &w2));
    CU_ASSERT_EQUAL(sv_test_in_writer(w2, apply_logged, &l), SV_OK);
    sv_db_t dbs[] = {SV_DB_AUDIT_BY_REQUEST, SV_DB_AUDIT_BY_TIME};
    for (size_t i = 0; i < 2; i++) {
        sv_buf_t a, b;
        sv_buf_init(&a, false);
        sv_buf_init(&b, false);
        db_keys(f.st, dbs[i], &a);
        db_keys(st2, dbs[i], &b);
        CU_ASSERT(a.len > 0);
        CU_ASSERT_EQUAL(a.len, b.len);
        CU_ASSERT(a.len == b.len && memcmp(a.base, b.base, a.len) == 0);
        sv_buf_free(&a);
        sv_buf_free(&b);
    }
    sv_test_store_close(dir2, st2, w2);
    for (size_t i = 0; i < l.n; i++)
        free(l.e[i].val);
    free(l.e);
    teardown(&f);
}

typedef struct {
    sv_audit_t *a;
    bool fail_op;
    bool with_event;
} event_op_t;

/* A unit of another module: its own change plus an event entry. */
static sv_err_t apply_with_event(sv_wtxn_t *tx, sv_unit_t *u)
{
    event_op_t *op = u->arg;
    sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES_STR("k"), SV_BYTES_STR("v"));
    if (err != SV_OK)
        return err;
    if (op->with_event) {
        sv_audit_entry_t e;
        sv_audit_entry_init(&e, "identity_promoted", "tnt_a", "user:admin@acme.example", NULL, true, NULL);
        uint64_t seq = 0;
        if ((err = sv_audit_append(op->a, tx, &e, &seq)) != SV_OK)
            return err;
        CU_ASSERT(op->a == NULL || seq > 0);
    }
    return op->fail_op ? SV_ECONFLICT : SV_OK;
}

static void test_rollback_leaves_no_trace(void)
{
    fixture_t f;
    setup(&f);
    append_n(&f, 1, 3, NULL);
    /* a unit whose event entry cannot be written fails closed, change and all */
    event_op_t op = {f.a, false, true};
    sv_unit_t u = {.apply = apply_with_event, .arg = &op};
    sv_fault_arm(SV_FAULT_AUDIT, 1, 1, EIO);
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_EAUDIT);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_SECRETS), 0);
    /* a request's entry that cannot be written: the unit fails with SV_EAUDIT */
    sv_audit_entry_t e;
    make_entry(&e, 99, NULL);
    sv_fault_arm(SV_FAULT_AUDIT, 1, 1, EIO);
    CU_ASSERT_EQUAL(append(&f, &e), SV_EAUDIT);
    /* an operation that rolls back after appending its event: the event goes too */
    op.fail_op = true;
    sv_unit_t u2 = {.apply = apply_with_event, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_ECONFLICT);
    /* a failed commit takes the whole batch's entries with it */
    sv_fault_arm(SV_FAULT_COMMIT, 1, 1, ENOSPC);
    CU_ASSERT_EQUAL(append(&f, &e), SV_ENOSPC);
    /* the chain continues at 4 as if none of that happened */
    op.fail_op = false;
    sv_unit_t u3 = {.apply = apply_with_event, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u3), SV_OK);
    uint8_t rec[SV_AUDIT_RECORD_MAX];
    size_t len;
    CU_ASSERT(read_record(&f, 4, 0, rec, &len));
    CU_ASSERT_FALSE(read_record(&f, 5, 0, rec, &len));
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_SECRETS), 1);
    ASSERT_VERIFIES(&f, true);
    /* a NULL log (auditing bypassed) appends nothing and succeeds */
    op.a = NULL;
    sv_unit_t u4 = {.apply = apply_with_event, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u4), SV_OK);
    CU_ASSERT_FALSE(read_record(&f, 5, 0, rec, &len));
    teardown(&f);
}

/* ---- tampering ---- */

static void tamper_case(sv_tamper_t kind, uint64_t seq, uint64_t bad_without_key, uint64_t bad_with_key)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.checkpoint_entries = 5});
    append_n(&f, 1, 20, "tnt_a");
    ASSERT_VERIFIES(&f, true);
    CU_ASSERT_FATAL(sv_tamper(f.st, kind, seq));
    if (bad_without_key == 0)
        ASSERT_VERIFIES(&f, false);
    else
        ASSERT_BAD_AT(&f, false, bad_without_key);
    ASSERT_BAD_AT(&f, true, bad_with_key);
    teardown(&f);
}

static void test_tamper_modified(void)
{
    tamper_case(SV_TAMPER_MODIFY, 7, 7, 7);
    tamper_case(SV_TAMPER_MODIFY, 1, 1, 1);
    tamper_case(SV_TAMPER_MODIFY, 20, 20, 20);
}

static void test_tamper_deleted(void)
{
    tamper_case(SV_TAMPER_DELETE, 7, 7, 7);
    tamper_case(SV_TAMPER_DELETE, 1, 1, 1);    /* the first entry */
    tamper_case(SV_TAMPER_DELETE, 20, 20, 20); /* the last one: its checkpoint names it */
}

static void test_tamper_reordered(void)
{
    tamper_case(SV_TAMPER_SWAP, 7, 7, 7);
    tamper_case(SV_TAMPER_SWAP, 5, 5, 5); /* across a checkpoint */
}

static void test_tamper_inserted(void)
{
    /* a copied entry does not belong at its position */
    tamper_case(SV_TAMPER_INSERT_COPY, 7, 7, 7);
    /* a forgery chained correctly to its predecessor shows at the next link */
    tamper_case(SV_TAMPER_INSERT_FORGED, 7, 8, 8);
}

static void test_tamper_rewritten_with_checkpoints(void)
{
    /* the whole tail rehashed, checkpoint hashes included: only the
     * signature of the first checkpoint after the change can tell */
    tamper_case(SV_TAMPER_REWRITE_TAIL, 7, 0, 10);
    /* a forged signature */
    tamper_case(SV_TAMPER_CHECKPOINT_SIG, 15, 0, 15);
}

static void test_verify_range_and_steps(void)
{
    fixture_t f;
    setup(&f);
    append_n(&f, 1, 30, NULL);
    sv_audit_verifier_t v;
    sv_audit_verify_init(&v, 10, 20, sv_audit_public_key(f.a));
    CU_ASSERT_EQUAL(sv_audit_verify_store(f.st, &v), SV_OK);
    CU_ASSERT(v.ok);
    CU_ASSERT_EQUAL(v.checked, 11);
    CU_ASSERT_EQUAL(v.last_seq, 20);
    /* one record per step gives the same answer */
    CU_ASSERT(sv_tamper(f.st, SV_TAMPER_MODIFY, 25));
    sv_store_reader_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f.st, &r), SV_OK);
    sv_audit_verify_init(&v, 0, 0, NULL);
    int steps = 0;
    while (!v.done && steps < 1000) {
        sv_txn_t *tx;
        CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
        CU_ASSERT_EQUAL(sv_audit_verify_step(&v, tx, 1), SV_OK);
        sv_store_read_end(r);
        steps++;
    }
    sv_store_reader_free(r);
    CU_ASSERT_FALSE(v.ok);
    CU_ASSERT_EQUAL(v.first_bad_seq, 25);
    CU_ASSERT_EQUAL(v.checked, 24);
    /* a range that stops before the damage is fine */
    sv_audit_verify_init(&v, 0, 24, NULL);
    CU_ASSERT_EQUAL(sv_audit_verify_store(f.st, &v), SV_OK);
    CU_ASSERT(v.ok);
    teardown(&f);
}

/* ---- checkpoints ---- */

static size_t count_checkpoints(fixture_t *f, bool anchors)
{
    return count_kind(f, anchors ? SV_AUDIT_TAG_ANCHOR : SV_AUDIT_TAG_CHECKPOINT, UINT64_MAX);
}

static void checkpoints_by_count(bool journal)
{
    fixture_t f;
    if (journal)
        setup_journal(&f, (sv_audit_opts_t){.checkpoint_entries = 5});
    else
        setup_opts(&f, (sv_audit_opts_t){.checkpoint_entries = 5});
    append_n(&f, 1, 12, NULL);
    uint8_t rec[256];
    size_t len;
    CU_ASSERT(read_record(&f, 5, SV_AUDIT_TAG_CHECKPOINT, rec, &len));
    CU_ASSERT(read_record(&f, 10, SV_AUDIT_TAG_CHECKPOINT, rec, &len));
    CU_ASSERT_EQUAL(count_checkpoints(&f, false), 2);
    /* the stored checkpoint verifies, and names entry 10's hash */
    uint8_t k[9], entry[SV_AUDIT_RECORD_MAX];
    size_t elen;
    sv_put_be64(k, 10);
    k[8] = SV_AUDIT_TAG_CHECKPOINT;
    sv_audit_checkpoint_t c;
    CU_ASSERT_EQUAL_FATAL(sv_audit_checkpoint_decode(SV_BYTES(k, 9), SV_BYTES(rec, len), &c), SV_OK);
    CU_ASSERT(sv_audit_checkpoint_verify(&c, sv_audit_public_key(f.a)));
    CU_ASSERT(read_record(&f, 10, 0, entry, &elen));
    CU_ASSERT_EQUAL(memcmp(c.hash, entry, 32), 0);
    c.anchor = true; /* the same signature does not pass for an anchor */
    CU_ASSERT_FALSE(sv_audit_checkpoint_verify(&c, sv_audit_public_key(f.a)));
    /* the chain goes on after a checkpoint */
    ASSERT_VERIFIES(&f, true);
    if (journal)
        CU_ASSERT_EQUAL(sv_audit_pending(f.a), 2); /* 11 and 12 went to the journal */
    teardown(&f);
}

static void test_checkpoints_by_count(void)
{
    checkpoints_by_count(false);
}

/* the batch that reaches a checkpoint's count goes to LMDB, where it is written */
static void test_checkpoints_by_count_journal(void)
{
    checkpoints_by_count(true);
}

static void test_checkpoints_by_time(void)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.checkpoint_interval_ms = 1});
    append_n(&f, 1, 1, NULL);
    usleep(3000);
    append_n(&f, 2, 1, NULL);
    usleep(3000);
    /* no new entry: the tick writes nothing */
    CU_ASSERT_EQUAL(sv_audit_tick(f.a), SV_OK);
    CU_ASSERT_EQUAL(count_checkpoints(&f, false), 2);
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

typedef struct {
    sv_audit_t *a;
    sv_audit_checkpoint_t c;
    bool created;
} ckpt_op_t;

static sv_err_t apply_checkpoint(sv_wtxn_t *tx, sv_unit_t *u)
{
    ckpt_op_t *op = u->arg;
    return sv_audit_checkpoint_now(op->a, tx, &op->c, &op->created);
}

static void test_checkpoint_now(void)
{
    fixture_t f;
    setup(&f);
    ckpt_op_t op = {.a = f.a};
    sv_unit_t u = {.apply = apply_checkpoint, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_ENOTFOUND); /* nothing to checkpoint */
    append_n(&f, 1, 3, NULL);
    sv_unit_t u2 = {.apply = apply_checkpoint, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u2), SV_OK);
    CU_ASSERT(op.created);
    CU_ASSERT_EQUAL(op.c.seq, 3);
    int64_t first_time = op.c.time_us;
    sv_unit_t u3 = {.apply = apply_checkpoint, .arg = &op};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u3), SV_OK);
    CU_ASSERT_FALSE(op.created); /* the head is that checkpoint already */
    CU_ASSERT_EQUAL(op.c.time_us, first_time);
    CU_ASSERT(sv_audit_checkpoint_verify(&op.c, sv_audit_public_key(f.a)));
    teardown(&f);
}

/* ---- retention ---- */

static bool wait_anchor(fixture_t *f, uint64_t seq)
{
    uint8_t rec[256];
    size_t len;
    for (int i = 0; i < 500; i++) {
        if (read_record(f, seq, SV_AUDIT_TAG_ANCHOR, rec, &len))
            return true;
        sv_audit_tick(f->a);
        usleep(2000);
    }
    return false;
}

static size_t query_count(fixture_t *f, const sv_audit_query_t *q);

static void test_retention_anchor(void)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.checkpoint_entries = 100, .retention_ms = 150});
    append_bulk(&f, 600); /* more than one pruning step (512) */
    usleep(250000);
    append_n(&f, 1000, 1, "tnt_a"); /* fresh: stays */
    CU_ASSERT_FATAL(wait_anchor(&f, 600));
    /* the steps chained by themselves; the old anchor and the checkpoints went */
    CU_ASSERT_EQUAL(count_checkpoints(&f, true), 1);
    CU_ASSERT_EQUAL(count_kind(&f, SV_AUDIT_TAG_CHECKPOINT, 600), 0);
    CU_ASSERT_EQUAL(count_kind(&f, 0, UINT64_MAX), 1); /* entry 601 */
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT_BY_REQUEST), 1);
    CU_ASSERT_EQUAL(count_time_rows(&f, 'g'), 1);
    /* entry 601's second, plus at most the second the pruned entries ended in
     * when it is not wholly older than the cutoff yet */
    CU_ASSERT(count_time_rows(&f, 's') >= 1 && count_time_rows(&f, 's') <= 3);
    sv_audit_verifier_t v;
    verify(&f, true, &v);
    CU_ASSERT(v.ok);
    CU_ASSERT(v.has_anchor);
    CU_ASSERT_EQUAL(v.anchor_seq, 600);
    CU_ASSERT_EQUAL(v.checked, 1);
    /* a pruned request id is gone from the index */
    sv_audit_query_t q = {
        .request_id = "req_0010", .success = -1, .from_us = INT64_MIN, .to_us = INT64_MAX, .limit = 10};
    CU_ASSERT_EQUAL(query_count(&f, &q), 0);
    /* new entries chain to the anchor */
    append_n(&f, 1001, 2, NULL);
    ASSERT_VERIFIES(&f, true);
    /* a forged anchor is caught with the key */
    CU_ASSERT(sv_tamper(f.st, SV_TAMPER_CHECKPOINT_SIG, 600));
    ASSERT_BAD_AT(&f, true, 600);
    ASSERT_VERIFIES(&f, false);
    teardown(&f);
}

static void test_retention_stops_at_damage(void)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.retention_ms = 100});
    append_n(&f, 1, 6, NULL);
    CU_ASSERT(sv_tamper(f.st, SV_TAMPER_MODIFY, 4));
    usleep(200000);
    append_n(&f, 7, 1, NULL);
    CU_ASSERT_FATAL(wait_anchor(&f, 3));
    usleep(20000);
    sv_audit_tick(f.a);
    /* the damaged entry is kept for verify to name, never anchored over */
    ASSERT_BAD_AT(&f, true, 4);
    uint8_t rec[SV_AUDIT_RECORD_MAX];
    size_t len;
    CU_ASSERT(read_record(&f, 4, 0, rec, &len));
    teardown(&f);
}

/* A checkpoint that does not attest the hash of the entry it follows (the
 * chain was changed after it was signed) is not pruned, nor anchored over:
 * verify goes on naming it (it said ok once retention had pruned it under a
 * new, genuine anchor). */
static void test_retention_keeps_forged_checkpoint(void)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.checkpoint_entries = 2, .retention_ms = 100});
    append_n(&f, 1, 6, NULL); /* checkpoints at 2, 4 and 6 */
    MDB_txn *raw;
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(sv_store_env(f.st), NULL, 0, &raw), MDB_SUCCESS);
    uint8_t key[9], val[256];
    sv_put_be64(key, 4);
    key[8] = SV_AUDIT_TAG_CHECKPOINT;
    MDB_val k = {sizeof(key), key}, v;
    CU_ASSERT_EQUAL_FATAL(mdb_get(raw, sv_store_dbi(f.st, SV_DB_AUDIT), &k, &v), MDB_SUCCESS);
    CU_ASSERT_FATAL(v.mv_size <= sizeof(val));
    memcpy(val, v.mv_data, v.mv_size);
    val[0] ^= 1; /* the hash it attests */
    v.mv_data = val;
    CU_ASSERT_EQUAL(mdb_put(raw, sv_store_dbi(f.st, SV_DB_AUDIT), &k, &v, 0), MDB_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(raw), MDB_SUCCESS);
    ASSERT_BAD_AT(&f, true, 4);
    usleep(200000);
    append_n(&f, 7, 1, NULL);
    /* entries 1 to 3 go (the checkpoint at 2 verifies); entry 4 stays with its forged checkpoint */
    CU_ASSERT_FATAL(wait_anchor(&f, 3));
    usleep(20000);
    sv_audit_tick(f.a);
    usleep(20000);
    uint8_t rec[SV_AUDIT_RECORD_MAX];
    size_t len;
    CU_ASSERT(read_record(&f, 4, 0, rec, &len));
    CU_ASSERT(read_record(&f, 3, SV_AUDIT_TAG_ANCHOR, rec, &len));
    ASSERT_BAD_AT(&f, true, 4);
    teardown(&f);
}

/* After a change of the signing key (audit.md supports it), checkpoints of the
 * old key do not verify with the new one; retention still prunes them (it
 * stopped for good at the first of them). */
static void test_retention_after_key_change(void)
{
    fixture_t f;
    sv_audit_opts_t o = {.checkpoint_entries = 2, .retention_ms = 100};
    setup_opts(&f, o);
    append_n(&f, 1, 6, NULL); /* checkpoints at 2, 4 and 6, signed with the first key */
    /* the server stops, and starts with another key file */
    sv_writer_stop(f.w);
    sv_audit_close(f.a);
    snprintf(f.key_file, sizeof(f.key_file), "%s/audit-signing-2.key", f.dir);
    o.key_file = f.key_file;
    char msg[256];
    CU_ASSERT_EQUAL_FATAL(sv_audit_open(&o, &f.a, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(f.st, NULL, &f.w), SV_OK);
    sv_audit_attach(f.a, f.w);
    ASSERT_BAD_AT(&f, true, 2); /* as audit.md says: the old checkpoints verify with the old key only */
    usleep(200000);
    append_n(&f, 7, 1, NULL);
    CU_ASSERT_FATAL(wait_anchor(&f, 6));
    ASSERT_VERIFIES(&f, true); /* from the new anchor on, all of it is the new key's */
    teardown(&f);
}

/* ---- queries ---- */

static sv_err_t run_query(fixture_t *f, const sv_audit_query_t *q, sv_buf_t *out)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_buf_init(out, false);
    sv_err_t err = sv_audit_query_run(tx, q, out);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return err;
}

/* Follows next_cursor to the end; returns the number of items, checks that
 * seqs come in order and that every item passes check. */
static size_t query_all(fixture_t *f, sv_audit_query_t q, bool (*check)(const sv_json_t *item), size_t *pages)
{
    size_t n = 0;
    *pages = 0;
    sv_audit_cursor_t cur;
    int64_t last = q.ascending ? -1 : INT64_MAX;
    for (;;) {
        sv_buf_t out;
        CU_ASSERT_EQUAL_FATAL(run_query(f, &q, &out), SV_OK);
        sv_json_doc_t *doc;
        sv_json_error_t je;
        CU_ASSERT_EQUAL_FATAL(sv_json_parse(out.base, out.len, false, &doc, &je), SV_JSON_OK);
        sv_buf_free(&out);
        (*pages)++;
        sv_json_t *items = sv_json_get(sv_json_root(doc), "items");
        CU_ASSERT_FATAL(items != NULL && items->type == SV_JSON_ARRAY);
        CU_ASSERT(items->u.kids.n <= q.limit);
        for (sv_json_t *it = items->u.kids.first; it != NULL; it = it->next) {
            int64_t seq = sv_json_get(it, "seq")->u.num.i;
            CU_ASSERT(q.ascending ? seq > last : seq < last);
            last = seq;
            if (check != NULL)
                CU_ASSERT(check(it));
            n++;
        }
        const char *next = sv_json_get_str(sv_json_root(doc), "next_cursor", NULL);
        if (next == NULL) {
            sv_json_doc_free(doc);
            break;
        }
        CU_ASSERT_EQUAL_FATAL(sv_audit_cursor_parse(next, strlen(next), &cur), SV_OK);
        sv_json_doc_free(doc);
        q.cursor = &cur;
        CU_ASSERT_FATAL(*pages < 1000);
    }
    return n;
}

static size_t query_count(fixture_t *f, const sv_audit_query_t *q)
{
    size_t pages;
    return query_all(f, *q, NULL, &pages);
}

static bool is_tnt_a(const sv_json_t *it)
{
    const char *t = sv_json_get_str(it, "tenant_id", NULL);
    return t != NULL && strcmp(t, "tnt_a") == 0;
}

static bool is_failure_write(const sv_json_t *it)
{
    const char *a = sv_json_get_str(it, "action", NULL);
    return !sv_json_get(it, "success")->u.b && a != NULL && strcmp(a, "secret_write") == 0;
}

static bool is_billing_db(const sv_json_t *it)
{
    const char *id = sv_json_get_str(it, "identity_id", NULL), *p = sv_json_get_str(it, "path", NULL);
    return id != NULL && strcmp(id, "sa:billing") == 0 && p != NULL && strncmp(p, "app/db/", 7) == 0;
}

/* A tenant's entries over several seconds: its activity rows lead the walk
 * from second to second, pages and cursors cross the seconds in both orders,
 * and a small scan budget still finds every entry. */
static void test_query_tenant_seconds(void)
{
    fixture_t f;
    setup(&f);
    append_bulk(&f, 40); /* 20 for tnt_a, 20 for tnt_b */
    usleep(1100000);     /* the next entries fall in a later second */
    append_bulk(&f, 40);
    usleep(1100000);
    append_n(&f, 500, 5, "tnt_b");
    CU_ASSERT(count_time_rows(&f, 's') >= 5); /* tnt_a twice, tnt_b three times, at least */
    sv_audit_query_t q = {.tenant = "tnt_a", .success = -1, .from_us = INT64_MIN, .to_us = INT64_MAX, .limit = 7};
    size_t pages;
    CU_ASSERT_EQUAL(query_all(&f, q, is_tnt_a, &pages), 40);
    CU_ASSERT(pages >= 6);
    q.ascending = true;
    CU_ASSERT_EQUAL(query_all(&f, q, is_tnt_a, &pages), 40);
    q.scan_max = 3;
    CU_ASSERT_EQUAL(query_all(&f, q, is_tnt_a, &pages), 40);
    q.ascending = false;
    CU_ASSERT_EQUAL(query_all(&f, q, is_tnt_a, &pages), 40);
    /* a time range of the last second holds none of tnt_a's */
    q.scan_max = 0;
    q.from_us = sv_now_us() - 500000;
    CU_ASSERT_EQUAL(query_all(&f, q, is_tnt_a, &pages), 0);
    teardown(&f);
}

static void test_query(void)
{
    fixture_t f;
    setup(&f);
    append_bulk(&f, 200); /* tenants alternate b, a; see make_entry for the rest */
    sv_audit_entry_t e;
    make_entry(&e, 7, "tnt_c");
    snprintf(e.request_id, sizeof(e.request_id), "req_0007"); /* a request id used twice */
    CU_ASSERT_EQUAL(append(&f, &e), SV_OK);
    sv_audit_query_t base = {.success = -1, .from_us = INT64_MIN, .to_us = INT64_MAX, .limit = 100};
    size_t pages;

    sv_audit_query_t q = base;
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), 201);
    CU_ASSERT_EQUAL(pages, 3);
    q.ascending = true;
    q.limit = 7;
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), 201);
    CU_ASSERT_EQUAL(pages, 29);

    /* a tenant sees its own entries only, from its own index rows */
    q = base;
    q.tenant = "tnt_a";
    CU_ASSERT_EQUAL(query_all(&f, q, is_tnt_a, &pages), 100);
    q.tenant = "tnt_zzz";
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), 0);

    /* a request id: one seek; both entries that carry it; tenant-filtered */
    q = base;
    q.request_id = "req_0007";
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), 2);
    q.tenant = "tnt_c";
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), 1);
    q.tenant = "tnt_b";
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), 0);

    /* filters */
    q = base;
    q.success = 0;
    q.action = "secret_write";
    size_t want = 0;
    for (int i = 0; i < 200; i++)
        want += (i % 5 == 0 && i % 3 == 0);
    CU_ASSERT_EQUAL(query_all(&f, q, is_failure_write, &pages), want);
    q = base;
    q.identity_id = "sa:billing";
    q.path_prefix = "app/db/";
    CU_ASSERT_EQUAL(query_all(&f, q, is_billing_db, &pages), 0); /* odd i never has i % 4 == 0 */
    q.identity_id = "sa:app";
    want = 0;
    for (int i = 0; i < 200; i++)
        want += (i % 2 == 0 && i % 4 == 0);
    CU_ASSERT_EQUAL(query_count(&f, &q), want);

    /* a small scan budget: pages come back short, with a cursor, and the
     * walk still finds everything */
    q = base;
    q.request_id = NULL;
    q.action = "secret_write";
    q.scan_max = 10;
    want = 0; /* entry 7 of tnt_c is a read */
    for (int i = 0; i < 200; i++)
        want += i % 3 == 0;
    CU_ASSERT_EQUAL(query_all(&f, q, NULL, &pages), want);
    CU_ASSERT(pages >= 20);

    /* time bounds (inclusive), from the index */
    q = base;
    q.from_us = INT64_MAX - 1;
    CU_ASSERT_EQUAL(query_count(&f, &q), 0);
    q.from_us = 0;
    q.to_us = sv_now_us();
    CU_ASSERT_EQUAL(query_count(&f, &q), 201);
    q.to_us = 1000000;
    CU_ASSERT_EQUAL(query_count(&f, &q), 0);

    /* a cursor from another kind of query is refused */
    sv_audit_cursor_t cur = {.mode = SV_AUDIT_BY_REQUEST, .ascending = false};
    q = base;
    q.cursor = &cur;
    sv_buf_t out;
    CU_ASSERT_EQUAL(run_query(&f, &q, &out), SV_EINVAL);
    sv_buf_free(&out);
    CU_ASSERT_EQUAL(sv_audit_cursor_parse("garbage!", 8, &cur), SV_EINVAL);
    teardown(&f);
}

static void test_tenant_filter(void)
{
    sv_principal_t super = {.bootstrap = true}, tenant_admin = {.roles = SV_ROLE_TENANT_ADMIN};
    snprintf(tenant_admin.tenant_id, sizeof(tenant_admin.tenant_id), "tnt_a");
    const char *t = "x";
    CU_ASSERT(sv_audit_tenant_filter(&super, "", &t));
    CU_ASSERT_PTR_NULL(t); /* everything */
    CU_ASSERT(sv_audit_tenant_filter(&super, "tnt_b", &t));
    CU_ASSERT_STRING_EQUAL(t, "tnt_b");
    CU_ASSERT(sv_audit_tenant_filter(&tenant_admin, "tnt_a", &t));
    CU_ASSERT_STRING_EQUAL(t, "tnt_a");
    CU_ASSERT_FALSE(sv_audit_tenant_filter(&tenant_admin, "", &t));
    sv_principal_t promoted = {.roles = SV_ROLE_SUPER_ADMIN};
    CU_ASSERT(sv_audit_tenant_filter(&promoted, "", &t));
    CU_ASSERT_PTR_NULL(t);
}

/* ---- export ---- */

/* Runs an export to its end line, max_records a chunk, each chunk in a
 * read transaction of its own (as the server does); returns the chunks. */
static int export_rest(sv_store_reader_t *r, sv_audit_export_t *e, unsigned max_records, sv_buf_t *out, bool *done)
{
    int chunks = 0;
    while (!*done && chunks < 100) {
        sv_txn_t *tx;
        CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
        CU_ASSERT_EQUAL(sv_audit_export_chunk(tx, e, max_records, false, out, done), SV_OK);
        sv_store_read_end(r);
        chunks++;
    }
    return chunks;
}

static void test_export_chunks(void)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.checkpoint_entries = 4});
    append_n(&f, 1, 10, NULL);
    sv_store_reader_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f.st, &r), SV_OK);
    sv_audit_export_t e;
    sv_audit_export_init(&e, 3, 9);
    sv_buf_t out;
    sv_buf_init(&out, false);
    bool done = false;
    int chunks = export_rest(r, &e, 2, &out, &done);
    sv_buf_putc(&out, 0);
    /* entries 3..9 with the checkpoints at 4 and 8 between them, then the end */
    const char *want[] = {"\"type\":\"entry\",\"seq\":3,",      "\"type\":\"entry\",\"seq\":4,",
                          "\"type\":\"checkpoint\",\"seq\":4,", "\"type\":\"entry\",\"seq\":5,",
                          "\"type\":\"entry\",\"seq\":8,",      "\"type\":\"checkpoint\",\"seq\":8,",
                          "\"type\":\"entry\",\"seq\":9,",      "{\"type\":\"end\",\"count\":9,\"next_from_seq\":10,"};
    const char *p = (const char *)out.base;
    for (size_t i = 0; i < SV_ARRAY_LEN(want); i++) {
        const char *hit = strstr(p, want[i]);
        if (hit == NULL)
            fprintf(stderr, "\n  export lacks %s after: %.200s\n", want[i], p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
        p = hit;
    }
    CU_ASSERT_PTR_NULL(strstr((const char *)out.base, "\"seq\":10,"));
    CU_ASSERT_PTR_NULL(strstr((const char *)out.base, "\"seq\":2,"));
    CU_ASSERT(chunks >= 5);
    sv_buf_free(&out);
    /* stopping early says so */
    sv_buf_init(&out, false);
    sv_audit_export_init(&e, 0, 10);
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    CU_ASSERT_EQUAL(sv_audit_export_chunk(tx, &e, 2, false, &out, &done), SV_OK);
    CU_ASSERT_FALSE(done);
    CU_ASSERT_EQUAL(sv_audit_export_chunk(tx, &e, 2, true, &out, &done), SV_OK);
    sv_store_read_end(r);
    CU_ASSERT(done);
    sv_buf_putc(&out, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr((const char *)out.base, "\"next_from_seq\":3,\"complete\":false}"));
    sv_buf_free(&out);
    /* a record under a key of no known length (a damaged table) is named as
     * damaged, with the start of its key, whatever the key's length */
    MDB_txn *raw;
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(sv_store_env(f.st), NULL, 0, &raw), MDB_SUCCESS);
    uint8_t long_key[40];
    memset(long_key, 0xff, sizeof(long_key));
    MDB_val k = {sizeof(long_key), long_key}, v = {1, "x"};
    CU_ASSERT_EQUAL(mdb_put(raw, sv_store_dbi(f.st, SV_DB_AUDIT), &k, &v, 0), MDB_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(raw), MDB_SUCCESS);
    sv_buf_init(&out, false);
    sv_audit_export_init(&e, 9, UINT64_MAX);
    done = false;
    export_rest(r, &e, 100, &out, &done);
    sv_buf_putc(&out, 0);
    char want_damaged[120];
    snprintf(want_damaged, sizeof(want_damaged), "{\"type\":\"damaged\",\"key\":\"%.64s\"}",
             "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    CU_ASSERT_PTR_NOT_NULL(strstr((const char *)out.base, want_damaged));
    sv_buf_free(&out);
    sv_store_reader_free(r);
    teardown(&f);
}

/* An export that retention overtakes says which entries it never sent. */
static void test_export_overtaken_by_retention(void)
{
    fixture_t f;
    setup_opts(&f, (sv_audit_opts_t){.retention_ms = 100});
    append_n(&f, 1, 8, NULL);
    sv_store_reader_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f.st, &r), SV_OK);
    sv_audit_export_t e;
    sv_audit_export_init(&e, 1, UINT64_MAX);
    sv_buf_t out;
    sv_buf_init(&out, false);
    bool done = false;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    CU_ASSERT_EQUAL(sv_audit_export_chunk(tx, &e, 2, false, &out, &done), SV_OK); /* entries 1 and 2 */
    sv_store_read_end(r);
    usleep(200000);
    append_n(&f, 9, 1, NULL); /* 1 to 8 expire: pruned, anchor at 8 */
    CU_ASSERT_FATAL(wait_anchor(&f, 8));
    export_rest(r, &e, 2, &out, &done);
    sv_buf_putc(&out, 0);
    const char *text = (const char *)out.base;
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"type\":\"anchor\",\"seq\":8,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"complete\":false,\"pruned_during_export\":{\"from_seq\":3,\"to_seq\":8}"));
    sv_buf_free(&out);
    /* from the anchor on, nothing is missing: an export from there is complete */
    sv_buf_init(&out, false);
    sv_audit_export_init(&e, 1, UINT64_MAX);
    done = false;
    export_rest(r, &e, 100, &out, &done);
    sv_buf_putc(&out, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr((const char *)out.base, "\"complete\":true}"));
    sv_buf_free(&out);
    sv_store_reader_free(r);
    teardown(&f);
}

/* ---- keys ---- */

static void test_key_file(void)
{
    const char *d = sv_test_tmpdir("auditkey");
    char *dir = strdup(d), path[600], msg[512];
    snprintf(path, sizeof(path), "%s/k.key", dir);
    sv_audit_opts_t o = {.key_file = path};
    sv_audit_t *a;
    CU_ASSERT_EQUAL_FATAL(sv_audit_open(&o, &a, msg, sizeof(msg)), SV_OK);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(sb.st_size, 32);
    uint8_t pk[32];
    memcpy(pk, sv_audit_public_key(a), 32);
    sv_audit_close(a);
    /* the same key again */
    CU_ASSERT_EQUAL_FATAL(sv_audit_open(&o, &a, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL(memcmp(pk, sv_audit_public_key(a), 32), 0);
    /* its PEM, hex and base64 forms parse back */
    char pem[128], hex[65], b64[64];
    uint8_t back[32];
    sv_audit_public_key_pem(pk, pem);
    CU_ASSERT_EQUAL(sv_audit_public_key_parse(pem, strlen(pem), back), SV_OK);
    CU_ASSERT_EQUAL(memcmp(back, pk, 32), 0);
    sodium_bin2hex(hex, sizeof(hex), pk, 32);
    CU_ASSERT_EQUAL(sv_audit_public_key_parse(hex, 64, back), SV_OK);
    sodium_bin2base64(b64, sizeof(b64), pk, 32, sodium_base64_VARIANT_ORIGINAL);
    CU_ASSERT_EQUAL(sv_audit_public_key_parse(b64, strlen(b64), back), SV_OK);
    CU_ASSERT_EQUAL(memcmp(back, pk, 32), 0);
    CU_ASSERT_EQUAL(sv_audit_public_key_parse("nope", 4, back), SV_EINVAL);
    sv_audit_close(a);
    /* group- or world-readable: refused, naming the file */
    chmod(path, 0640);
    CU_ASSERT_EQUAL(sv_audit_open(&o, &a, msg, sizeof(msg)), SV_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "AUDIT_SIGNING_KEY_FILE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, path));
    /* the wrong size */
    chmod(path, 0600);
    FILE *fp = fopen(path, "a");
    fputs("x", fp);
    fclose(fp);
    CU_ASSERT_EQUAL(sv_audit_open(&o, &a, msg, sizeof(msg)), SV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "32 bytes"));
    sv_test_rmdir(dir);
    free(dir);
}


/* ---- the journal ---- */

/* A unit with nothing to change: its batch goes to LMDB, and moves the
 * journal's entries into the store first. */
static sv_err_t no_change(sv_wtxn_t *tx, sv_unit_t *u)
{
    (void)tx;
    (void)u;
    return SV_OK;
}

static void barrier(fixture_t *f)
{
    sv_unit_t u = {.apply = no_change};
    CU_ASSERT_EQUAL(sv_writer_run(f->w, &u), SV_OK);
}

/* Stops as a crash would leave things for the log: the journal's entries are
 * not in the store (a stopping writer does not move them). Then opens store,
 * writer and log again on the same directory, with the journal. */
static sv_err_t crash_and_reopen(fixture_t *f, char *msg, size_t msglen)
{
    sv_writer_stop(f->w);
    sv_audit_close(f->a);
    sv_store_close(f->st);
    f->w = NULL;
    f->a = NULL;
    sv_store_opts_t o = {.dir = f->dir, .map_size = 4 << 20, .max_readers = 32, .no_sync = true};
    CU_ASSERT_FATAL(sv_store_open(&f->st, &o) == SV_OK);
    CU_ASSERT_FATAL(sv_writer_start(f->st, NULL, &f->w) == SV_OK);
    sv_audit_opts_t ao = {.key_file = f->key_file, .journal_age_ms = 600000};
    CU_ASSERT_FATAL(sv_audit_open(&ao, &f->a, msg, msglen) == SV_OK);
    return sv_audit_attach_journal(f->a, f->w, f->journal, msg, msglen);
}

/* How many entries of the journal file continue the store's chain (what the
 * offline verifier reports), with the writer stopped or not started. */
static uint64_t journal_entries(fixture_t *f)
{
    uint64_t head, n = 0, last;
    uint8_t hash[32], lh[32];
    char msg[512];
    CU_ASSERT_FATAL(sv_audit_store_head(f->st, &head, hash) == SV_OK);
    CU_ASSERT_EQUAL(sv_audit_journal_scan(f->journal, head, hash, &n, &last, lh, msg, sizeof(msg)), SV_OK);
    return n;
}

static void expect_request_id(fixture_t *f, uint64_t seq, const char *request_id)
{
    uint8_t rec[SV_AUDIT_RECORD_MAX];
    size_t len;
    sv_audit_record_t r;
    CU_ASSERT_FATAL(read_record(f, seq, 0, rec, &len));
    CU_ASSERT_EQUAL_FATAL(sv_audit_record_decode(SV_BYTES(rec, len), &r), SV_OK);
    CU_ASSERT_EQUAL(r.request_id.len, strlen(request_id));
    CU_ASSERT_EQUAL(memcmp(r.request_id.base, request_id, r.request_id.len), 0);
}

static void test_journal_then_store(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    append_n(&f, 1, 5, "tnt_a"); /* five audit-only batches: answered from the journal */
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 5);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 0);
    barrier(&f);
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 0);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 5);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT_BY_REQUEST), 5);
    CU_ASSERT_EQUAL(count_time_rows(&f, 'g'), 5);
    expect_request_id(&f, 1, "req_0001");
    expect_request_id(&f, 5, "req_0005");
    /* a write's batch moves what the journal holds first, so its entry comes after them */
    append_n(&f, 6, 3, "tnt_a");
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 3);
    sv_audit_entry_t e;
    make_entry(&e, 99, "tnt_a");
    sv_unit_t u = {.apply = no_change, .audit = &e};
    CU_ASSERT_EQUAL(sv_writer_run(f.w, &u), SV_OK);
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 0);
    expect_request_id(&f, 8, "req_0008");
    expect_request_id(&f, 9, "req_0099");
    /* many at once share batches, and the journal goes to the store when it holds enough */
    append_bulk(&f, 3000);
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 3009);
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

/* A journal record's length from its header (the top bit marks a flush's first record). */
static uint32_t rec_len(const uint8_t *p)
{
    return sv_get_be32(p) & 0x7fffffffu;
}

/* The offset of the last record in the journal file, and the file's bytes. */
static size_t last_record(const char *path, uint8_t *img, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    CU_ASSERT_FATAL(fp != NULL);
    size_t n = fread(img, 1, cap, fp);
    fclose(fp);
    size_t off = 0, last = SIZE_MAX;
    uint64_t seq = 0;
    while (off + 4 <= n) {
        uint32_t len = rec_len(img + off);
        if (len == 0 && off % 4096 != 0) {
            off = (off + 4 + 4095) & ~(size_t)4095; /* each flush starts on a block of its own */
            continue;
        }
        sv_audit_record_t r;
        if (len == 0 || len > SV_AUDIT_RECORD_MAX ||
            sv_audit_record_decode(SV_BYTES(img + off + 4, len), &r) != SV_OK || r.seq <= seq)
            break; /* the end, or a record of an earlier round */
        seq = r.seq;
        last = off;
        off += 4 + len;
    }
    return last;
}

static void test_journal_recovers_after_crash(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    append_n(&f, 1, 7, "tnt_a");
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 0);
    CU_ASSERT_EQUAL(journal_entries(&f), 7);
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK); /* taken back, to the store at once */
    append_n(&f, 8, 2, "tnt_a"); /* the chain goes on after them */
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 9);
    expect_request_id(&f, 7, "req_0007");
    expect_request_id(&f, 9, "req_0009");
    ASSERT_VERIFIES(&f, true);

    /* a torn last record: the ones before it are kept */
    append_n(&f, 10, 3, "tnt_a");
    uint8_t *img = malloc(SV_AUDIT_JOURNAL_BYTES);
    CU_ASSERT_FATAL(img != NULL);
    size_t at = last_record(f.journal, img, SV_AUDIT_JOURNAL_BYTES);
    CU_ASSERT_FATAL(at != SIZE_MAX);
    FILE *fp = fopen(f.journal, "r+b");
    CU_ASSERT_FATAL(fp != NULL);
    fseek(fp, (long)(at + 4 + 100), SEEK_SET);
    fputc(img[at + 4 + 100] ^ 0x40, fp);
    fclose(fp);
    CU_ASSERT_EQUAL(journal_entries(&f), 2);
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 11);

    /* a damaged record with whole ones after it that continue from it: not taken back either, but
     * said, and the file kept for a look before the next round overwrites it */
    append_n(&f, 13, 4, "tnt_a");
    fp = fopen(f.journal, "r+b");
    CU_ASSERT_FATAL(fp != NULL);
    fseek(fp, 4 + 100, SEEK_SET); /* inside the first of the four */
    int c = fgetc(fp);
    fseek(fp, 4 + 100, SEEK_SET);
    fputc(c ^ 0x40, fp);
    fclose(fp);
    uint64_t head, n, lastseq;
    uint8_t hh[32], lh[32];
    CU_ASSERT_FATAL(sv_audit_store_head(f.st, &head, hh) == SV_OK);
    msg[0] = 0;
    CU_ASSERT_EQUAL(sv_audit_journal_scan(f.journal, head, hh, &n, &lastseq, lh, msg, sizeof(msg)), SV_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "is damaged, and the 3 entries after it"));
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 11);
    bool kept = false;
    DIR *d = opendir(f.dir);
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
        kept = kept || strncmp(de->d_name, "audit.journal.damaged-", 22) == 0;
    if (d != NULL)
        closedir(d);
    CU_ASSERT(kept);

    /* a second round shorter than the first: the first's records after it are not taken back */
    append_n(&f, 20, 10, "tnt_a");
    barrier(&f);
    append_n(&f, 30, 3, "tnt_a");
    CU_ASSERT_EQUAL(journal_entries(&f), 3);
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 24);
    expect_request_id(&f, 24, "req_0032");
    /* and after the journal went to the store, a restart finds nothing to take back */
    CU_ASSERT_EQUAL(journal_entries(&f), 0);
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 0);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 24);
    ASSERT_VERIFIES(&f, true);
    free(img);
    teardown(&f);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CU_ASSERT_FATAL(in != NULL && out != NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        CU_ASSERT_EQUAL(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

/* A journal that does not continue the store's chain (a data.mdb put back by
 * hand) is refused, not applied over another history, and not dropped. */
static void test_journal_of_another_store(void)
{
    fixture_t a, b;
    setup_journal(&a, (sv_audit_opts_t){0});
    append_n(&a, 1, 3, "tnt_a");
    barrier(&a);
    append_n(&a, 4, 2, "tnt_a"); /* the journal now holds seq 4 and 5 */
    setup(&b);
    append_n(&b, 1, 3, "tnt_b"); /* a head at 3 with another hash */
    snprintf(b.journal, sizeof(b.journal), "%s/%s", b.dir, SV_AUDIT_JOURNAL_FILE);
    copy_file(a.journal, b.journal);
    char msg[512] = "";
    uint64_t n = 0, last = 0;
    uint8_t h[32], hl[32];
    memset(h, 0x11, sizeof(h));
    CU_ASSERT_EQUAL(sv_audit_journal_scan(b.journal, 3, h, &n, &last, hl, msg, sizeof(msg)), SV_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "does not continue"));
    CU_ASSERT_EQUAL(sv_audit_journal_scan(b.journal, 1, h, &n, &last, hl, msg, sizeof(msg)), SV_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "entries are missing"));
    CU_ASSERT_EQUAL(crash_and_reopen(&b, msg, sizeof(msg)), SV_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, b.journal));
    CU_ASSERT_EQUAL(count_db(&b, SV_DB_AUDIT), 3);
    /* still there, for the operator to look at */
    CU_ASSERT_EQUAL(sv_audit_journal_scan(b.journal, 3, h, &n, &last, hl, msg, sizeof(msg)), SV_ECORRUPT);
    teardown(&b);
    teardown(&a);
}

/* A crash that tears the first write of a round (its first sector still the
 * earlier round's, the rest new) leaves an old record, skipped, before new
 * ones: the journal ends there (nothing of that write was answered), and the
 * server starts; only the file's first record can tell of another store. */
static void test_journal_torn_round_start(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    sv_audit_entry_t e[4];
    for (int i = 0; i < 4; i++) {
        make_entry(&e[i], 1, "tnt_a"); /* records of one length */
        CU_ASSERT_EQUAL(append(&f, &e[i]), SV_OK);
    }
    barrier(&f); /* round A (seq 1-4) is in the store */
    uint8_t old[512];
    FILE *fp = fopen(f.journal, "rb");
    CU_ASSERT_FATAL(fp != NULL && fread(old, 1, sizeof(old), fp) == sizeof(old));
    fclose(fp);
    CU_ASSERT_FATAL(rec_len(old) + 4 <= sizeof(old)); /* A's first record lies in the first sector */
    sv_unit_t u[4];
    memset(u, 0, sizeof(u));
    for (int i = 0; i < 4; i++)
        u[i].audit = &e[i];
    CU_ASSERT_EQUAL(sv_writer_run_all(f.w, u, 4), SV_OK); /* round B (seq 5-8), from offset 0 */
    fp = fopen(f.journal, "r+b");
    CU_ASSERT_FATAL(fp != NULL && fwrite(old, 1, sizeof(old), fp) == sizeof(old));
    fclose(fp);
    char msg[512] = "";
    CU_ASSERT_EQUAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    if (msg[0] != 0)
        fprintf(stderr, "\n  %s\n", msg);
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 4);
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

/* Damage to a record's length header or hash field, with answered entries
 * after it in later flushes: said too, not a silent end. */
static void test_journal_damaged_header(void)
{
    for (int kind = 0; kind < 2; kind++) {
        fixture_t f;
        setup_journal(&f, (sv_audit_opts_t){0});
        append_n(&f, 1, 4, "tnt_a"); /* one flush, one block each */
        FILE *fp = fopen(f.journal, "r+b");
        CU_ASSERT_FATAL(fp != NULL);
        fseek(fp, 4096 + (kind == 0 ? 0 : 4 + 3), SEEK_SET); /* entry 2's length, or its hash */
        fputc(0x7f, fp);
        fclose(fp);
        uint64_t n = 0, last;
        uint8_t h0[32] = {0}, lh[32];
        char msg[512] = "";
        CU_ASSERT_EQUAL(sv_audit_journal_scan(f.journal, 0, h0, &n, &last, lh, msg, sizeof(msg)), SV_ECORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "entry 2 is damaged, and the 2 entries after it"));
        CU_ASSERT(n == 1 && last == 1); /* the valid one before it (the verifier names entry 2) */
        teardown(&f);
    }
    /* a whole record put where another was (a block copied over another): said too */
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    append_n(&f, 1, 5, "tnt_a");
    uint8_t block[4096];
    FILE *fp = fopen(f.journal, "r+b");
    CU_ASSERT_FATAL(fp != NULL && fread(block, 1, sizeof(block), fp) == sizeof(block)); /* entry 1 */
    fseek(fp, 2 * 4096, SEEK_SET);
    CU_ASSERT_FATAL(fwrite(block, 1, sizeof(block), fp) == sizeof(block)); /* over entry 3 */
    fclose(fp);
    uint64_t n = 0, last = 0;
    uint8_t h0[32] = {0}, lh[32];
    char msg[512] = "";
    CU_ASSERT_EQUAL(sv_audit_journal_scan(f.journal, 0, h0, &n, &last, lh, msg, sizeof(msg)), SV_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "entry 3 is damaged, and the 2 entries after it"));
    CU_ASSERT(n == 2 && last == 2);
    teardown(&f);
    /* a block of an earlier round come back where one of this round was (a misdirected write) */
    setup_journal(&f, (sv_audit_opts_t){0});
    append_n(&f, 1, 6, "tnt_a");
    fp = fopen(f.journal, "rb");
    CU_ASSERT_FATAL(fp != NULL && fseek(fp, 2 * 4096, SEEK_SET) == 0 && fread(block, 1, sizeof(block), fp) == 4096);
    fclose(fp); /* entry 3's block */
    barrier(&f);
    append_n(&f, 7, 6, "tnt_a"); /* 7-12 from offset 0 */
    fp = fopen(f.journal, "r+b");
    CU_ASSERT_FATAL(fp != NULL && fseek(fp, 2 * 4096, SEEK_SET) == 0 && fwrite(block, 1, 4096, fp) == 4096);
    fclose(fp); /* over entry 9 */
    uint64_t head;
    uint8_t hh[32];
    CU_ASSERT_FATAL(sv_audit_store_head(f.st, &head, hh) == SV_OK && head == 6);
    msg[0] = 0;
    CU_ASSERT_EQUAL(sv_audit_journal_scan(f.journal, head, hh, &n, &last, lh, msg, sizeof(msg)), SV_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "entry 9 is damaged, and the 3 entries after it"));
    teardown(&f);
}

/* Batches of random sizes and entries of random lengths, moved to the store
 * at random moments and taken back after "crashes": every answered entry is
 * found, in order (the layout's padding, in every position). */
static void test_journal_random_layouts(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    uint64_t total = 0;
    sv_audit_entry_t *e = calloc(40, sizeof(*e));
    sv_unit_t *u = calloc(40, sizeof(*u));
    CU_ASSERT_FATAL(e != NULL && u != NULL);
    for (int round = 0; round < 120; round++) {
        size_t n = 1 + randombytes_uniform(40);
        for (size_t i = 0; i < n; i++) {
            make_entry(&e[i], (int)(total + i + 1), "tnt_r");
            size_t ua = randombytes_uniform(256);
            memset(e[i].user_agent, 'a' + (int)(i % 26), ua);
            e[i].user_agent[ua] = 0;
            memset(&u[i], 0, sizeof(u[i]));
            u[i].audit = &e[i];
        }
        CU_ASSERT_EQUAL_FATAL(sv_writer_run_all(f.w, u, n), SV_OK);
        total += n;
        uint32_t what = randombytes_uniform(10);
        if (what == 0) {
            barrier(&f);
        } else if (what == 1) {
            /* what the file holds is what the writer holds (and the store has the rest) */
            CU_ASSERT_EQUAL(journal_entries(&f), sv_audit_pending(f.a));
            CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT) + sv_audit_pending(f.a), total);
            char msg[512];
            CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
            barrier(&f); /* what was taken back goes to the store on a timer: now, not during the next check */
        }
    }
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), total);
    char last[32];
    snprintf(last, sizeof(last), "req_%04d", (int)total);
    expect_request_id(&f, total, last);
    ASSERT_VERIFIES(&f, true);
    free(e);
    free(u);
    teardown(&f);
}

typedef struct {
    sv_writer_t *w;
    sv_unit_t u;
    sv_err_t result;
} blocker_t;

static void *run_blocker(void *arg)
{
    blocker_t *b = arg;
    b->result = sv_writer_run(b->w, &b->u);
    return NULL;
}

/* A flush whose records end 1 byte before a block's end, then one whose first
 * record is 256 bytes or more: the one byte of padding is not read as the
 * start of a length (its header would read 1). Each flush ends with at least
 * four zero bytes when it does not end on a block. */
static void test_journal_padding_of_one_byte(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    sv_audit_entry_t e[24];
    uint8_t rec[SV_AUDIT_RECORD_MAX], zero[32] = {0};
    sv_audit_entry_init(&e[0], "secret_read", "tnt_a", "sa:app", "app/x", true, NULL);
    e[0].status = 200;
    size_t base = 4 + sv_audit_record_encode(rec, sizeof(rec), 1, 1, &e[0], zero); /* with its header */
    /* k records after the first flush's block, whose user agents bring them to 4095 bytes */
    size_t k = 4095 / (base + 255) + 1;
    CU_ASSERT_FATAL(k * base <= 4095 && k + 2 <= 24);
    size_t extra = 4095 - k * base;
    for (size_t i = 1; i <= k; i++) {
        e[i] = e[0];
        size_t u = extra / (k - i + 1);
        memset(e[i].user_agent, 'u', u);
        e[i].user_agent[u] = 0;
        extra -= u;
    }
    e[k + 1] = e[0];
    memset(e[k + 1].user_agent, 'v', 255);
    e[k + 1].user_agent[255] = 0;
    /* a first unit's flush stalls (300 ms), so that the k queue up meanwhile and go in one flush */
    sv_fault_arm(SV_FAULT_STALL, 1, 1, EIO); /* the errno is not used */
    blocker_t b = {.w = f.w, .u = {.audit = &e[0]}};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, run_blocker, &b) == 0);
    usleep(100000);
    sv_unit_t u[24];
    memset(u, 0, sizeof(u));
    for (size_t i = 1; i <= k; i++)
        u[i].audit = &e[i];
    CU_ASSERT_EQUAL(sv_writer_run_all(f.w, u + 1, k), SV_OK);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL_FATAL(b.result, SV_OK);
    sv_unit_t last = {.audit = &e[k + 1]};
    CU_ASSERT_EQUAL_FATAL(sv_writer_run(f.w, &last), SV_OK);
    /* the layout the test is about: the k records end at 4096 + 4095 */
    uint8_t *img = malloc(3 * 4096);
    FILE *fp = fopen(f.journal, "rb");
    CU_ASSERT_FATAL(img != NULL && fp != NULL && fread(img, 1, 3 * 4096, fp) == 3 * 4096);
    fclose(fp);
    size_t off = 4096;
    for (size_t i = 0; i < k && off + 4 <= 3 * 4096 && rec_len(img + off) != 0; i++)
        off += 4 + rec_len(img + off);
    if (off != 8191)
        fprintf(stderr, "\n  k=%zu base=%zu: the records end at %zu\n", k, base, off);
    bool layout = off == 8191 && img[8191] == 0;
    free(img);
    CU_ASSERT_FATAL(layout);
    CU_ASSERT_EQUAL(journal_entries(&f), k + 2); /* read back after a crash */
    barrier(&f);                                  /* and moved to the store */
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), k + 2);
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

/* A damaged record inside a batch: what comes after it in the file is not
 * moved to the store, and nothing new is written after the records taken
 * back before they are in the store. */
static void test_journal_damage_inside_a_batch(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    sv_audit_entry_t e[7];
    for (int i = 0; i < 7; i++)
        make_entry(&e[i], i + 1, "tnt_a");
    sv_fault_arm(SV_FAULT_STALL, 1, 1, EIO); /* the first flush stalls: the other six go in one */
    blocker_t b = {.w = f.w, .u = {.audit = &e[0]}};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, run_blocker, &b) == 0);
    usleep(100000);
    sv_unit_t u[6];
    memset(u, 0, sizeof(u));
    for (int i = 0; i < 6; i++)
        u[i].audit = &e[i + 1];
    CU_ASSERT_EQUAL(sv_writer_run_all(f.w, u, 6), SV_OK);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL_FATAL(b.result, SV_OK);
    /* entry 4 (the third of the six, at block 1) gets a changed byte */
    uint8_t img[8192];
    FILE *fp = fopen(f.journal, "r+b");
    CU_ASSERT_FATAL(fp != NULL && fread(img, 1, sizeof(img), fp) == sizeof(img));
    size_t off = 4096 + 4 + rec_len(img + 4096);
    off += 4 + rec_len(img + off);
    CU_ASSERT_FATAL(off + 4 + 100 < sizeof(img));
    fseek(fp, (long)(off + 4 + 100), SEEK_SET);
    fputc(img[off + 4 + 100] ^ 0x40, fp);
    fclose(fp);
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    sv_audit_entry_t next;
    make_entry(&next, 99, "tnt_a");
    CU_ASSERT_EQUAL(append(&f, &next), SV_OK); /* goes to the store with them, not after them in the file */
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 4); /* 1, 2 and 3, then 99 as entry 4 */
    expect_request_id(&f, 3, "req_0003");
    expect_request_id(&f, 4, "req_0099");
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

/* A journal path that is not a regular file is refused with a message,
 * never followed or waited on. */
static void test_journal_not_a_file(void)
{
    const char *dir = sv_test_tmpdir("journal");
    CU_ASSERT_FATAL(dir != NULL);
    char link[600], sub[600], fifo[600], msg[512];
    snprintf(link, sizeof(link), "%s/link.journal", dir);
    snprintf(sub, sizeof(sub), "%s/dir.journal", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo.journal", dir);
    CU_ASSERT_FATAL(symlink("/etc/passwd", link) == 0 && mkdir(sub, 0700) == 0 && mkfifo(fifo, 0600) == 0);
    const char *paths[] = {link, sub, fifo};
    for (size_t i = 0; i < 3; i++) {
        sv_audit_journal_t *j = NULL;
        msg[0] = 0;
        CU_ASSERT_EQUAL(sv_audit_journal_open(paths[i], &j, msg, sizeof(msg)), SV_EIO);
        CU_ASSERT_PTR_NULL(j);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "is not a regular file"));
    }
    struct stat sb;
    CU_ASSERT(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode)); /* left as it was */
    sv_test_rmdir(dir);
}

/* A failed flush answers every unit of the batch with the error, and its
 * entries come back neither now nor after a crash. */
static void test_journal_flush_fails(void)
{
    fixture_t f;
    setup_journal(&f, (sv_audit_opts_t){0});
    sv_audit_entry_t e1, e2, e3;
    make_entry(&e1, 1, "tnt_a");
    make_entry(&e2, 2, "tnt_a");
    make_entry(&e3, 3, "tnt_a");
    sv_fault_arm(SV_FAULT_COMMIT, 1, 1, EIO); /* the device reports the failure after the write */
    CU_ASSERT_EQUAL(append(&f, &e1), SV_EIO);
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 0);
    CU_ASSERT_EQUAL(journal_entries(&f), 0); /* written, then zeroed again: a crash now finds nothing */
    sv_fault_arm(SV_FAULT_AUDIT, 1, 1, EIO);
    CU_ASSERT_EQUAL(append(&f, &e2), SV_EAUDIT); /* this entry alone could not be written */
    CU_ASSERT_EQUAL(append(&f, &e3), SV_OK);
    CU_ASSERT_EQUAL(sv_audit_pending(f.a), 1);
    CU_ASSERT_EQUAL(journal_entries(&f), 1);
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(crash_and_reopen(&f, msg, sizeof(msg)), SV_OK);
    barrier(&f);
    CU_ASSERT_EQUAL(count_db(&f, SV_DB_AUDIT), 1);
    expect_request_id(&f, 1, "req_0003");
    ASSERT_VERIFIES(&f, true);
    teardown(&f);
}

void sv_test_suite_audit(void)
{
    SV_SUITE(
        "src/audit", {"canonical_example", test_canonical_example}, {"utf8_cleaned", test_utf8_cleaned},
        {"chain_and_indexes", test_chain_and_indexes}, {"indexes_derived_not_logged", test_indexes_derived_not_logged},
        {"rollback_leaves_no_trace", test_rollback_leaves_no_trace}, {"tamper_modified", test_tamper_modified},
        {"tamper_deleted", test_tamper_deleted}, {"tamper_reordered", test_tamper_reordered},
        {"tamper_inserted", test_tamper_inserted},
        {"tamper_rewritten_with_checkpoints", test_tamper_rewritten_with_checkpoints},
        {"verify_range_and_steps", test_verify_range_and_steps}, {"checkpoints_by_count", test_checkpoints_by_count},
        {"checkpoints_by_time", test_checkpoints_by_time}, {"checkpoint_now", test_checkpoint_now},
        {"retention_anchor", test_retention_anchor}, {"retention_stops_at_damage", test_retention_stops_at_damage},
        {"retention_keeps_forged_checkpoint", test_retention_keeps_forged_checkpoint},
        {"retention_after_key_change", test_retention_after_key_change},
        {"export_overtaken_by_retention", test_export_overtaken_by_retention},
        {"query", test_query}, {"query_tenant_seconds", test_query_tenant_seconds},
        {"tenant_filter", test_tenant_filter}, {"export_chunks", test_export_chunks}, {"key_file", test_key_file},
        {"checkpoints_by_count_journal", test_checkpoints_by_count_journal},
        {"journal_then_store", test_journal_then_store},
        {"journal_recovers_after_crash", test_journal_recovers_after_crash},
        {"journal_of_another_store", test_journal_of_another_store},
        {"journal_flush_fails", test_journal_flush_fails}, {"journal_not_a_file", test_journal_not_a_file},
        {"journal_torn_round_start", test_journal_torn_round_start},
        {"journal_padding_of_one_byte", test_journal_padding_of_one_byte},
        {"journal_damaged_header", test_journal_damaged_header},
        {"journal_random_layouts", test_journal_random_layouts},
        {"journal_damage_inside_a_batch", test_journal_damage_inside_a_batch});
}
