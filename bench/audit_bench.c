/*
 * audit_bench.c - offline verification speed of the audit log (goal: at
 * least 1M entries/s), next to its two ceilings measured in the same run: a
 * bare LMDB cursor walk over the same records, and BLAKE2b-256 over the same
 * bytes from memory. Also reports how fast the writer appends entries.
 *
 *   bench/audit_bench [--entries N (200000)] [--runs R (3)] [--dir DIR]
 *
 * Fills a fresh store in a temporary directory (MDB_NOSYNC: the fill is not
 * what is measured) through the real writer and audit hook, with realistic
 * entries and a checkpoint every 10000, then verifies it R times (median)
 * exactly as `scaivault audit verify --pubkey` does. Prints one JSON object.
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/cli.h"
#include "src/audit_verify.h"
#include "store/migrate.h"

#define IN_FLIGHT 4096

static void fill_entry(sv_audit_entry_t *e, uint64_t i)
{
    static const char *actions[] = {"secret_read", "secret_read", "secret_read", "secret_write", "secret_list"};
    sv_audit_entry_init(e, actions[i % 5], i % 7 ? "tnt_acme" : "tnt_globex",
                        i % 3 ? "sa:billing" : "user:ann@acme.example", "app/db/password", i % 50 != 0,
                        i % 50 != 0 ? NULL : "access_denied");
    snprintf(e->request_id, sizeof(e->request_id), "req_01JBENCH%018llu", (unsigned long long)i);
    e->status = i % 50 != 0 ? 200 : 403;
    snprintf(e->ip, sizeof(e->ip), "10.%u.%u.%u", (unsigned)(i >> 16) & 255, (unsigned)(i >> 8) & 255,
             (unsigned)i & 255);
    snprintf(e->user_agent, sizeof(e->user_agent), "scaivault-go/1.4.2 (linux; amd64)");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The ceilings: a bare cursor walk, and BLAKE2b over the same bytes in memory. */
static void ceilings(sv_store_t *st, double *walk_per_s, double *hash_per_s, double *avg_bytes)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    if (sv_store_reader_new(st, &r) != SV_OK || sv_store_read_begin(r, &tx) != SV_OK)
        exit(1);
    sv_iter_t it;
    sv_iter_open(tx, SV_DB_AUDIT, (sv_bytes_t){0}, (sv_bytes_t){0}, false, &it);
    sv_bytes_t k, v;
    uint64_t n = 0, bytes = 0, t0 = sv_mono_us();
    uint8_t sink = 0;
    while (sv_iter_next(&it, &k, &v) == SV_OK) {
        sink ^= v.base[v.len - 1];
        n++;
        bytes += v.len;
    }
    uint64_t t1 = sv_mono_us();
    sv_iter_close(&it);
    *walk_per_s = n / ((t1 - t0 + 1) / 1e6);
    *avg_bytes = n ? (double)bytes / n : 0;
    /* the same bytes, copied out, hashed in one tight loop */
    uint8_t *all = malloc(bytes + 1);
    size_t *lens = malloc(n * sizeof(size_t) + 1);
    size_t off = 0, i = 0;
    sv_iter_open(tx, SV_DB_AUDIT, (sv_bytes_t){0}, (sv_bytes_t){0}, false, &it);
    while (sv_iter_next(&it, &k, &v) == SV_OK) {
        memcpy(all + off, v.base, v.len);
        lens[i++] = v.len;
        off += v.len;
    }
    sv_iter_close(&it);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    uint8_t h[32];
    off = 0;
    t0 = sv_mono_us();
    for (size_t j = 0; j < i; j++) {
        if (lens[j] > 32)
            crypto_generichash(h, sizeof(h), all + off + 32, lens[j] - 32, NULL, 0);
        sink ^= h[0];
        off += lens[j];
    }
    t1 = sv_mono_us();
    *hash_per_s = i / ((t1 - t0 + 1) / 1e6);
    free(all);
    free(lens);
    if (sink == 0x5a)
        fputc(' ', stderr); /* keep the loops */
}

int main(int argc, char **argv)
{
    const char *entries_arg = "200000", *runs_arg = "3", *dir_arg = NULL;
    const bench_opt_t opts[] = {{"entries", &entries_arg, true}, {"runs", &runs_arg, true}, {"dir", &dir_arg, true}};
    if (!bench_cli_parse(argc, argv, opts, SV_ARRAY_LEN(opts))) {
        fprintf(stderr, "usage: audit_bench [--entries N] [--runs R] [--dir DIR]\n");
        return 2;
    }
    uint64_t entries = strtoull(entries_arg, NULL, 10);
    int runs = atoi(runs_arg);
    if (entries == 0 || runs < 1 || runs > 15 || sodium_init() < 0)
        return 2;
    char dir[512];
    if (dir_arg != NULL) {
        snprintf(dir, sizeof(dir), "%s", dir_arg);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/sv-audit-bench-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL)
            return 1;
    }
    char key[600], msg[512];
    snprintf(key, sizeof(key), "%s/audit-signing.key", dir);
    sv_store_t *st;
    sv_store_opts_t so = {.dir = dir, .map_size = (size_t)1 << 30, .max_readers = 16, .no_sync = true};
    sv_writer_t *w;
    sv_audit_t *a;
    sv_audit_opts_t ao = {.key_file = key, .checkpoint_entries = 10000};
    if (sv_store_open(&st, &so) != SV_OK || sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL) != SV_OK ||
        sv_writer_start(st, NULL, &w) != SV_OK || sv_audit_open(&ao, &a, msg, sizeof(msg)) != SV_OK) {
        fprintf(stderr, "audit_bench: cannot set up the store in %s\n", dir);
        return 1;
    }
    sv_audit_attach(a, w);

    /* fill */
    sv_unit_t *units = calloc(IN_FLIGHT, sizeof(*units));
    sv_audit_entry_t *es = calloc(IN_FLIGHT, sizeof(*es));
    uint64_t t0 = sv_mono_us();
    for (uint64_t i = 0; i < entries;) {
        unsigned n = entries - i < IN_FLIGHT ? (unsigned)(entries - i) : IN_FLIGHT;
        for (unsigned j = 0; j < n; j++) {
            fill_entry(&es[j], i + j);
            memset(&units[j], 0, sizeof(units[j]));
            units[j].audit = &es[j];
        }
        sv_writer_run_all(w, units, n);
        i += n;
    }
    double fill_s = (sv_mono_us() - t0) / 1e6;
    free(units);
    free(es);

    /* verify, as `scaivault audit verify --pubkey` does */
    double *rates = calloc((size_t)runs, sizeof(double));
    sv_audit_verifier_t v;
    for (int r = 0; r < runs; r++) {
        sv_audit_verify_init(&v, 0, 0, sv_audit_public_key(a));
        uint64_t v0 = sv_mono_us();
        if (sv_audit_verify_store(st, &v) != SV_OK || !v.ok || v.checked != entries) {
            fprintf(stderr, "audit_bench: verification failed (checked %llu)\n", (unsigned long long)v.checked);
            return 1;
        }
        rates[r] = v.checked / ((sv_mono_us() - v0 + 1) / 1e6);
    }
    qsort(rates, (size_t)runs, sizeof(double), cmp_double);
    double walk, hash, avg;
    ceilings(st, &walk, &hash, &avg);

    printf("{\"benchmark\":\"audit_verify\",\"entries\":%llu,\"checkpoints\":%llu,\"avg_record_bytes\":%.0f,"
           "\"fill_entries_per_s\":%.0f,\"verify_entries_per_s\":{\"median\":%.0f,\"runs\":[",
           (unsigned long long)entries, (unsigned long long)v.checkpoints, avg, entries / fill_s, rates[runs / 2]);
    for (int r = 0; r < runs; r++)
        printf("%s%.0f", r ? "," : "", rates[r]);
    printf("]},\"ceiling\":{\"lmdb_walk_records_per_s\":%.0f,\"blake2b_records_per_s\":%.0f},"
           "\"goal_entries_per_s\":1000000,\"meets_goal\":%s}\n",
           walk, hash, rates[runs / 2] >= 1e6 ? "true" : "false");
    free(rates);
    sv_writer_stop(w);
    sv_audit_close(a);
    sv_store_close(st);
    if (dir_arg == NULL) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "audit_bench: could not remove %s\n", dir);
    }
    return 0;
}
