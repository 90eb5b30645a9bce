/*
 * sv_crashdriver.c - drives the storage engine directly (no HTTP) for the
 * black-box crash and disk-full tests (tests/blackbox/test_crash.c,
 * test_storage.c). It links libsv.a and uses the real writer with durable
 * commits, like the server.
 *
 *   sv_crashdriver write  --data-dir D [--clients N] [--keys K] [--map-size B]
 *                         [--retention-ms MS] [--units U]
 *       N client threads write multi-key units until killed (or U units
 *       each). Unit (c, s) puts K keys u/<c>/<s>/<j> with values derived from
 *       (c, s, j) and sets last/<c> = s. After each completed unit it prints
 *       "ACK <c> <s>" (flushed). Restarted on the same D, clients continue
 *       after their last stored s. Prints "READY" once the writer runs.
 *
 *   sv_crashdriver verify --data-dir D [--keys K] [--acks FILE]
 *       Checks D after a crash: every ACKed unit is present with the right
 *       values; no unit is partly visible; the change log has no gap, every
 *       unit in it ends with the unit-end flag, every record verifies, and
 *       applied_lsn is its last LSN. Prints "OK ..." (exit 0) or "FAIL: ..."
 *       (exit 1).
 *
 *   sv_crashdriver fill   --data-dir D --ballast FILE [--seam]
 *       Fills the (small) filesystem of D until commits fail with ENOSPC,
 *       checks that every unit of a failed batch failed and left nothing,
 *       then deletes the ballast file (space is back) and checks that writes
 *       succeed again. --seam fails commits through the fault seam instead of
 *       a real full disk (for machines where no small filesystem can be
 *       mounted). Prints "OK ..." or "FAIL: ...".
 *
 * The design choice: the driver never decides what "durable" means; it only
 * prints an ACK after sv_writer_run returned SV_OK, which is exactly when the
 * server would answer 2xx. The verifier then holds the store to those ACKs.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/key.h"
#include "store/migrate.h"
#include "wal/writer.h"

#define MAX_CLIENTS 64
#define MAX_KEYS 16
#define VALUE_MAX 512

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0)
            return argv[i + 1];
    return def;
}

static bool flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0)
            return true;
    return false;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    return 1;
}

/* ---- the data a unit writes ---- */

static size_t unit_key(char *out, size_t cap, int c, uint64_t s, int j)
{
    return (size_t)snprintf(out, cap, "u/%02d/%010" PRIu64 "/%02d", c, s, j);
}

/* A value derived from (c, s, j): a header and a filler whose length and
 * bytes depend on all three. */
static size_t unit_value(uint8_t *out, int c, uint64_t s, int j)
{
    int n = snprintf((char *)out, VALUE_MAX, "c=%d s=%" PRIu64 " j=%d;", c, s, j);
    size_t len = (size_t)n + 32 + (size_t)((c * 7 + s * 13 + (uint64_t)j * 29) % 300);
    for (size_t i = (size_t)n; i < len; i++)
        out[i] = (uint8_t)('a' + (c + s + j + i) % 26);
    return len;
}

static size_t last_key(char *out, size_t cap, int c)
{
    return (size_t)snprintf(out, cap, "last/%02d", c);
}

typedef struct {
    int client;
    uint64_t seq;
    int keys;
    uint8_t value[VALUE_MAX];
} unit_op_t;

static sv_err_t apply_unit(sv_wtxn_t *tx, sv_unit_t *u)
{
    unit_op_t *op = u->arg;
    char k[64];
    sv_err_t err = SV_OK;
    for (int j = 0; j < op->keys && err == SV_OK; j++) {
        size_t kl = unit_key(k, sizeof(k), op->client, op->seq, j);
        size_t vl = unit_value(op->value, op->client, op->seq, j);
        err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, kl), SV_BYTES(op->value, vl));
    }
    if (err == SV_OK) {
        char v[24];
        size_t kl = last_key(k, sizeof(k), op->client);
        int vl = snprintf(v, sizeof(v), "%" PRIu64, op->seq);
        err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, kl), SV_BYTES(v, (size_t)vl));
    }
    return err;
}

/* ---- opening ---- */

static int open_store(const char *dir, size_t map_size, sv_store_t **st)
{
    sv_store_opts_t so = {.dir = dir, .map_size = map_size, .max_readers = 126};
    sv_err_t err = sv_store_open(st, &so);
    if (err != SV_OK)
        return fail("cannot open %s: %s", dir, sv_strerror(err));
    if ((err = sv_migrate_to(*st, SV_SCHEMA_VERSION, NULL, NULL)) != SV_OK) {
        sv_store_close(*st);
        return fail("cannot migrate %s: %s", dir, sv_strerror(err));
    }
    return 0;
}

/* The last stored seq of client c (0 when none). */
static uint64_t stored_last(sv_txn_t *tx, int c)
{
    char k[32], v[24];
    size_t kl = last_key(k, sizeof(k), c);
    sv_bytes_t val;
    if (sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES(k, kl), &val) != SV_OK || val.len >= sizeof(v))
        return 0;
    memcpy(v, val.base, val.len);
    v[val.len] = 0;
    return strtoull(v, NULL, 10);
}

/* ---- write ---- */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    sv_writer_t *w;
    int client, keys;
    uint64_t next_seq;
    long units; /* < 0: until killed */
    int failed;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    unit_op_t op = {.client = c->client, .keys = c->keys};
    for (long n = 0; c->units < 0 || n < c->units; n++) {
        op.seq = c->next_seq;
        sv_unit_t u = {.apply = apply_unit, .arg = &op};
        sv_err_t err = sv_writer_run(c->w, &u);
        pthread_mutex_lock(&out_lock);
        if (err == SV_OK)
            printf("ACK %d %" PRIu64 "\n", c->client, op.seq);
        else
            printf("ERR %d %" PRIu64 " %s\n", c->client, op.seq, sv_strerror(err));
        fflush(stdout);
        pthread_mutex_unlock(&out_lock);
        if (err != SV_OK) {
            c->failed = 1;
            break;
        }
        c->next_seq++;
    }
    return NULL;
}

static int cmd_write(int argc, char **argv)
{
    const char *dir = opt(argc, argv, "data-dir", NULL);
    int clients = atoi(opt(argc, argv, "clients", "4"));
    int keys = atoi(opt(argc, argv, "keys", "3"));
    size_t map_size = strtoull(opt(argc, argv, "map-size", "1048576"), NULL, 10);
    long units = atol(opt(argc, argv, "units", "-1"));
    int64_t retention = atoll(opt(argc, argv, "retention-ms", "0"));
    if (dir == NULL || clients < 1 || clients > MAX_CLIENTS || keys < 1 || keys > MAX_KEYS)
        return fail("usage: write --data-dir D [--clients 1-%d] [--keys 1-%d]", MAX_CLIENTS, MAX_KEYS);
    sv_store_t *st;
    if (open_store(dir, map_size, &st) != 0)
        return 1;
    sv_writer_t *w;
    sv_writer_opts_t wo = {.wal_retention_ms = retention};
    sv_err_t err = sv_writer_start(st, &wo, &w);
    if (err != SV_OK) {
        sv_store_close(st);
        return fail("cannot start the writer: %s", sv_strerror(err));
    }
    client_t cl[MAX_CLIENTS];
    sv_store_reader_t *r;
    sv_txn_t *tx;
    if (sv_store_reader_new(st, &r) != SV_OK || sv_store_read_begin(r, &tx) != SV_OK)
        return fail("cannot read %s", dir);
    for (int i = 0; i < clients; i++)
        cl[i] = (client_t){.w = w, .client = i, .keys = keys, .next_seq = stored_last(tx, i) + 1, .units = units};
    sv_store_read_end(r);
    sv_store_reader_free(r);
    printf("READY\n");
    fflush(stdout);
    pthread_t th[MAX_CLIENTS];
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        failed |= cl[i].failed;
    }
    sv_writer_stop(w);
    sv_store_close(st);
    return failed ? 3 : 0;
}

/* ---- verify ---- */

typedef struct {
    uint64_t first, last, count, units;
} log_summary_t;

/* The change log: gapless, whole units, every record verified. */
static int verify_log(sv_txn_t *tx, log_summary_t *sum)
{
    sv_wal_iter_t wi;
    sv_wal_record_t rec;
    memset(sum, 0, sizeof(*sum));
    if (sv_wal_iter_open(tx, 0, &wi) != SV_OK)
        return fail("cannot open the change log");
    uint64_t unit = 0; /* the open unit's id, 0 between units */
    sv_err_t err;
    int rc = 0;
    while ((err = sv_wal_iter_next(&wi, &rec)) == SV_OK) {
        if (sum->count == 0) {
            sum->first = rec.lsn;
        } else if (rec.lsn != sum->last + 1) {
            rc = fail("gap in the change log: %" PRIu64 " follows %" PRIu64, rec.lsn, sum->last);
            break;
        }
        if (unit == 0) {
            if (rec.unit_id != rec.lsn) {
                rc = fail("record %" PRIu64 " starts a unit but names unit %" PRIu64, rec.lsn, rec.unit_id);
                break;
            }
            unit = rec.unit_id;
        } else if (rec.unit_id != unit) {
            rc = fail("record %" PRIu64 " names unit %" PRIu64 " inside unit %" PRIu64 " (unit not ended)", rec.lsn,
                      rec.unit_id, unit);
            break;
        }
        if (rec.flags & SV_WAL_FLAG_UNIT_END) {
            unit = 0;
            sum->units++;
        }
        sum->last = rec.lsn;
        sum->count++;
    }
    sv_wal_iter_close(&wi);
    if (rc != 0)
        return rc;
    if (err != SV_ENOTFOUND)
        return fail("change log record after %" PRIu64 ": %s", sum->last, sv_strerror(err));
    if (unit != 0)
        return fail("the last unit of the change log (%" PRIu64 ") has no unit-end flag", unit);
    uint64_t applied = 0;
    if (sv_wal_applied_lsn(tx, &applied) != SV_OK)
        return fail("cannot read applied_lsn");
    if (sum->count > 0 && applied != sum->last)
        return fail("applied_lsn %" PRIu64 " but the log ends at %" PRIu64, applied, sum->last);
    if (sum->count == 0)
        sum->last = applied;
    return 0;
}

/* Reads the ACK lines of path (complete lines only) into max_ack[]. */
static int read_acks(const char *path, uint64_t *max_ack, uint64_t *n_acks)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return fail("cannot read %s: %s", path, strerror(errno));
    char line[128];
    while (fgets(line, sizeof(line), f) != NULL) {
        int c;
        uint64_t s;
        if (strchr(line, '\n') == NULL)
            break; /* torn by the kill: not an acknowledged write */
        if (sscanf(line, "ACK %d %" SCNu64, &c, &s) == 2 && c >= 0 && c < MAX_CLIENTS) {
            if (s > max_ack[c])
                max_ack[c] = s;
            (*n_acks)++;
        }
    }
    fclose(f);
    return 0;
}

static int verify_units(sv_txn_t *tx, int keys, const uint64_t *max_ack, uint64_t *units_out)
{
    uint64_t last[MAX_CLIENTS], total = 0;
    uint8_t want[VALUE_MAX];
    for (int c = 0; c < MAX_CLIENTS; c++) {
        last[c] = stored_last(tx, c);
        if (last[c] < max_ack[c])
            return fail("client %d: unit %" PRIu64 " was acknowledged but the store ends at %" PRIu64, c, max_ack[c],
                        last[c]);
        /* every unit up to last is whole and right */
        for (uint64_t s = 1; s <= last[c]; s++) {
            for (int j = 0; j < keys; j++) {
                char k[64];
                size_t kl = unit_key(k, sizeof(k), c, s, j);
                sv_bytes_t v;
                if (sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES(k, kl), &v) != SV_OK)
                    return fail("unit (%d, %" PRIu64 ") is missing key %d%s", c, s, j,
                                s <= max_ack[c] ? " (acknowledged)" : "");
                size_t wl = unit_value(want, c, s, j);
                if (v.len != wl || memcmp(v.base, want, wl) != 0)
                    return fail("unit (%d, %" PRIu64 ") key %d has a wrong value", c, s, j);
            }
        }
        total += last[c];
    }
    /* and nothing else: no key of a unit beyond last (a partly visible unit) */
    sv_iter_t it;
    sv_bytes_t k;
    uint64_t n = 0;
    if (sv_iter_open(tx, SV_DB_SECRETS, SV_BYTES_STR("u/"), (sv_bytes_t){NULL, 0}, false, &it) != SV_OK)
        return fail("cannot scan the units");
    while (sv_iter_next(&it, &k, NULL) == SV_OK)
        n++;
    sv_iter_close(&it);
    if (n != total * (uint64_t)keys)
        return fail("%" PRIu64 " unit keys stored, expected %" PRIu64 " (a unit is partly visible)", n,
                    total * (uint64_t)keys);
    *units_out = total;
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    const char *dir = opt(argc, argv, "data-dir", NULL);
    const char *acks = opt(argc, argv, "acks", NULL);
    int keys = atoi(opt(argc, argv, "keys", "3"));
    if (dir == NULL || keys < 1 || keys > MAX_KEYS)
        return fail("usage: verify --data-dir D [--keys K] [--acks FILE]");
    uint64_t max_ack[MAX_CLIENTS] = {0}, n_acks = 0;
    if (acks != NULL && read_acks(acks, max_ack, &n_acks) != 0)
        return 1;
    sv_store_t *st;
    sv_store_opts_t so = {.dir = dir, .read_only = true};
    sv_err_t err = sv_store_open(&st, &so);
    if (err != SV_OK)
        return fail("cannot open %s: %s", dir, sv_strerror(err));
    sv_store_reader_t *r;
    sv_txn_t *tx;
    if (sv_store_reader_new(st, &r) != SV_OK || sv_store_read_begin(r, &tx) != SV_OK) {
        sv_store_close(st);
        return fail("cannot read %s", dir);
    }
    log_summary_t sum;
    uint64_t units = 0;
    int rc = verify_units(tx, keys, max_ack, &units);
    if (rc == 0)
        rc = verify_log(tx, &sum);
    if (rc == 0 && sum.first <= 1 && sum.count != units * (uint64_t)(keys + 1))
        rc = fail("the change log holds %" PRIu64 " records for %" PRIu64 " units of %d", sum.count, units, keys + 1);
    if (rc == 0 && sum.first <= 1 && sum.units != units)
        rc = fail("the change log holds %" PRIu64 " units, the store %" PRIu64, sum.units, units);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    sv_store_close(st);
    if (rc == 0) {
        printf("OK units=%" PRIu64 " acks=%" PRIu64 " lsn=%" PRIu64 " log_first=%" PRIu64 "\n", units, n_acks, sum.last,
               sum.first);
        fflush(stdout);
    }
    return rc;
}

/* ---- fill: a full disk ---- */

#define FILL_GROUP 8
#define FILL_KEYS 4
#define FILL_VALUE 4000

typedef struct {
    int id;
    uint8_t *value;
} fill_op_t;

static sv_err_t apply_fill(sv_wtxn_t *tx, sv_unit_t *u)
{
    fill_op_t *op = u->arg;
    for (int j = 0; j < FILL_KEYS; j++) {
        char k[32];
        int kl = snprintf(k, sizeof(k), "fill/%06d/%d", op->id, j);
        sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, (size_t)kl), SV_BYTES(op->value, FILL_VALUE));
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

/* Submits FILL_GROUP units at once; returns how many failed, checking that a
 * failure is a full disk and that each unit is whole or absent. */
static int fill_round(sv_store_t *st, sv_writer_t *w, int *next_id, uint8_t *value, int *bad)
{
    fill_op_t ops[FILL_GROUP];
    sv_unit_t units[FILL_GROUP];
    for (int i = 0; i < FILL_GROUP; i++) {
        ops[i] = (fill_op_t){(*next_id)++, value};
        units[i] = (sv_unit_t){.apply = apply_fill, .arg = &ops[i]};
    }
    if (sv_writer_run_all(w, units, FILL_GROUP) != SV_OK) {
        *bad = fail("submit refused");
        return 0;
    }
    sv_store_reader_t *r;
    sv_txn_t *tx;
    if (sv_store_reader_new(st, &r) != SV_OK || sv_store_read_begin(r, &tx) != SV_OK) {
        *bad = fail("cannot read");
        return 0;
    }
    int failed = 0;
    for (int i = 0; i < FILL_GROUP && !*bad; i++) {
        sv_err_t res = units[i].result;
        if (res != SV_OK && res != SV_ENOSPC)
            *bad = fail("unit %d failed with %s, not a full disk", ops[i].id, sv_strerror(res));
        if (res != SV_OK)
            failed++;
        int present = 0;
        for (int j = 0; j < FILL_KEYS; j++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "fill/%06d/%d", ops[i].id, j);
            sv_bytes_t v;
            present += sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES(k, (size_t)kl), &v) == SV_OK;
        }
        if (res == SV_OK && present != FILL_KEYS)
            *bad = fail("unit %d succeeded but %d of %d keys are stored", ops[i].id, present, FILL_KEYS);
        if (res != SV_OK && present != 0)
            *bad = fail("unit %d failed but %d of its keys are stored (half-written)", ops[i].id, present);
    }
    sv_store_read_end(r);
    sv_store_reader_free(r);
    return failed;
}

static int cmd_fill(int argc, char **argv)
{
    const char *dir = opt(argc, argv, "data-dir", NULL);
    const char *ballast = opt(argc, argv, "ballast", NULL);
    bool seam = flag(argc, argv, "seam");
    if (dir == NULL || (ballast == NULL && !seam))
        return fail("usage: fill --data-dir D --ballast FILE [--seam]");
    sv_store_t *st;
    if (open_store(dir, (size_t)256 << 20, &st) != 0) /* a map far larger than the filesystem */
        return 1;
    if (ballast != NULL) {
        /* space to give back later: 2 MiB, written for real (not sparse) */
        int fd = open(ballast, O_CREAT | O_TRUNC | O_WRONLY, 0600);
        static uint8_t chunk[65536];
        memset(chunk, 0x5a, sizeof(chunk));
        for (int i = 0; fd >= 0 && i < 32; i++)
            if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) {
                close(fd);
                fd = -1;
            }
        if (fd < 0)
            return fail("cannot write the ballast file %s", ballast);
        fsync(fd);
        close(fd);
    }
    sv_writer_t *w;
    sv_err_t err = sv_writer_start(st, NULL, &w);
    if (err != SV_OK)
        return fail("cannot start the writer: %s", sv_strerror(err));
    static uint8_t value[FILL_VALUE];
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (uint8_t)(i * 31 + 7);
    int next_id = 0, bad = 0, failed = 0, rounds = 0, total_failed = 0;
    if (seam) /* the third commit from now and the one after fail */
        sv_fault_arm(SV_FAULT_COMMIT, 3, 2, ENOSPC);
    /* fill until a batch fails (a real disk of a few MiB fills in well under 1000 rounds) */
    while (!bad && failed == 0 && rounds < 1000) {
        failed = fill_round(st, w, &next_id, value, &bad);
        total_failed += failed;
        rounds++;
    }
    if (!bad && failed == 0)
        bad = fail("the disk never filled up after %d rounds", rounds);
    int first_failed = failed;
    /* still full: fails again, cleanly */
    if (!bad && !seam) {
        int again = fill_round(st, w, &next_id, value, &bad);
        total_failed += again;
        if (again == 0 && !bad)
            bad = fail("a write succeeded on a full disk without freeing space");
    }
    /* space is back */
    if (!bad && ballast != NULL && unlink(ballast) != 0)
        bad = fail("cannot delete the ballast: %s", strerror(errno));
    sv_fault_reset();
    int ok_rounds = 0;
    for (int i = 0; !bad && i < 5; i++) {
        int f = fill_round(st, w, &next_id, value, &bad);
        total_failed += f;
        if (f != 0 && !bad && !seam)
            bad = fail("writes still fail after the space came back (%d of %d failed)", f, FILL_GROUP);
        if (f == 0)
            ok_rounds++;
    }
    if (!bad && ok_rounds == 0)
        bad = fail("no write succeeded after the space came back");
    sv_writer_stats_t ws;
    sv_writer_stats(w, &ws);
    sv_writer_stop(w);
    /* the change log is intact and whole */
    sv_store_reader_t *r;
    sv_txn_t *tx;
    log_summary_t sum = {0};
    if (!bad && (sv_store_reader_new(st, &r) != SV_OK || sv_store_read_begin(r, &tx) != SV_OK))
        bad = fail("cannot read");
    else if (!bad) {
        bad = verify_log(tx, &sum);
        uint64_t want = (uint64_t)(next_id - total_failed) * FILL_KEYS;
        if (!bad && sum.count != want)
            bad = fail("the change log holds %" PRIu64 " records for %" PRIu64 " stored", sum.count, want);
        sv_store_read_end(r);
        sv_store_reader_free(r);
    }
    sv_store_close(st);
    if (bad)
        return 1;
    printf("OK rounds=%d failed_batch_units=%d failed_commits=%" PRIu64 " lsn=%" PRIu64 " mode=%s\n", rounds,
           first_failed, ws.failed_commits, sum.last, seam ? "seam" : "real-enospc");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        return fail("usage: sv_crashdriver write|verify|fill ...");
    if (strcmp(argv[1], "write") == 0)
        return cmd_write(argc - 2, argv + 2);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(argv[1], "fill") == 0)
        return cmd_fill(argc - 2, argv + 2);
    return fail("unknown mode '%s'", argv[1]);
}
