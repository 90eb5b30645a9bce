/*
 * policy_bench.c - the cost of one policy check (src/authz.h), the hot path
 * of every secret request, with 1, 10 and 100 policies bound to the caller.
 *
 * Standalone: it builds a temporary store (MDB_NOSYNC), writes the policies
 * through the real writer, and times sv_authz_check on one thread:
 *   check_us    a cache hit: what a request pays (goal: <= 5 us at 100)
 *   rebuild_us  a miss after a policy change: the snapshot read, decode and
 *               compile of the tenant's policies and the caller's entry
 *   explain_us  POST /v1/policies/test's evaluation with tracing, JSON included
 * The policies are the unkind case: every rule lists the permission asked
 * for, half the patterns start with '**' (no literal prefix to reject on),
 * and only the last policy's rule matches, with an ip_allow and a time
 * window to check. Baselines measured in the same run: a check with no
 * policy bound (lookup and generation checks only) and one 1 KiB mdb_get.
 *
 * Output: one JSON object on stdout. Usage: bench/policy_bench [iterations]
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/authz.h"
#include "src/identity.h"
#include "store/migrate.h"

static sv_store_t *st;
static sv_writer_t *wr;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct {
    const char *tenant;
    int n;
} setup_t;

static sv_err_t put_policies(sv_wtxn_t *tx, sv_unit_t *u)
{
    setup_t *s = u->arg;
    for (int i = 0; i < s->n; i++) {
        char name[32], body[1024];
        snprintf(name, sizeof(name), "policy-%03d", i);
        bool last = i == s->n - 1;
        snprintf(body, sizeof(body),
                 "{\"rules\":[{\"path\":\"%s%d/**\",\"permissions\":[\"read\",\"list\"]},"
                 "{\"path\":\"%s\",\"permissions\":[\"read\"],\"conditions\":{\"ip_allow\":[\"192.0.2.0/24\","
                 "\"10.0.0.0/8\"],\"time_window\":{\"start\":\"00:00\",\"end\":\"24:00\",\"timezone\":"
                 "\"Europe/Berlin\"}}}],\"bindings\":{\"identities\":[\"sa:other\",\"sa:bench\"],"
                 "\"groups\":[\"grp_x\"]}}",
                 i % 2 ? "**/svc" : "svc", i, last ? "app/*/password" : (i % 2 ? "**/db/other" : "app/db/other"));
        sv_json_doc_t *doc;
        sv_json_error_t je;
        if (sv_json_parse(body, strlen(body), false, &doc, &je) != SV_JSON_OK)
            return SV_EINVAL;
        sv_policy_def_t *p;
        sv_policy_error_t e;
        sv_err_t err = sv_policy_from_json(sv_json_root(doc), name, &p, &e);
        sv_json_doc_free(doc);
        if (err != SV_OK) {
            fprintf(stderr, "policy %s: %s %s\n", name, e.field, e.message);
            return err;
        }
        bool created;
        err = sv_policy_put_tx(tx, s->tenant, p, &created);
        sv_policy_def_free(p);
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

static sv_err_t put_value(sv_wtxn_t *tx, sv_unit_t *u)
{
    static uint8_t value[1024];
    for (uint64_t i = 0; i < 1000; i++) {
        uint8_t key[8];
        sv_put_be64(key, i);
        sv_err_t err = sv_wtxn_put(tx, SV_DB_ENGINES, SV_BYTES(key, 8), SV_BYTES(value, sizeof(value)));
        if (err != SV_OK)
            return err;
    }
    (void)u;
    return SV_OK;
}

/* The median of 5 timed batches of iters calls, in microseconds per call. */
typedef void (*op_fn)(void *arg, long i);

static double time_op(op_fn fn, void *arg, long iters)
{
    double runs[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++)
            fn(arg, i);
        runs[r] = (now_ns() - t0) / (double)iters / 1000.0;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (runs[j] < runs[i]) {
                double t = runs[i];
                runs[i] = runs[j];
                runs[j] = t;
            }
    return runs[2];
}

typedef struct {
    sv_policy_t *pe;
    sv_store_reader_t *reader;
    sv_authz_request_t rq;
    bool bump;
    int failures;
    sv_authz_outcome_t want;
} check_arg_t;

static void do_check(void *arg, long i)
{
    check_arg_t *c = arg;
    if (c->bump)
        sv_policy_bump_generation();
    sv_authz_result_t res;
    if (sv_authz_check(c->pe, c->reader, &c->rq, &res) != SV_OK || res.outcome != c->want)
        c->failures++;
    (void)i;
}

static void do_explain(void *arg, long i)
{
    check_arg_t *c = arg;
    sv_authz_result_t res;
    sv_authz_trace_t *tr;
    if (sv_authz_explain(c->pe, c->reader, &c->rq, &res, &tr) != SV_OK) {
        c->failures++;
        return;
    }
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &b);
    sv_jw_obj_begin(&jw);
    sv_authz_trace_write(tr, &c->rq, &res, &jw);
    sv_jw_obj_end(&jw);
    sv_buf_free(&b);
    sv_authz_trace_free(tr);
    (void)i;
}

typedef struct {
    sv_store_reader_t *reader;
    int failures;
} get_arg_t;

static void do_get(void *arg, long i)
{
    get_arg_t *g = arg;
    sv_txn_t *tx;
    uint8_t key[8];
    sv_put_be64(key, (uint64_t)((i * 7919) % 1000));
    sv_bytes_t val;
    if (sv_store_read_begin(g->reader, &tx) != SV_OK)
        return;
    if (sv_txn_get(tx, SV_DB_ENGINES, SV_BYTES(key, 8), &val) != SV_OK || val.len != 1024)
        g->failures++;
    sv_store_read_end(g->reader);
}

static sv_authz_request_t request(const char *tenant)
{
    sv_authz_request_t rq = {.tenant = tenant,
                             .identity_id = "sa:bench",
                             .path = "app/db/password",
                             .path_len = 15,
                             .perm = SV_PERM_READ,
                             .has_ip = true,
                             .now = 1800000000};
    sv_ip_parse("10.1.2.3", 8, &rq.ip);
    return rq;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    if (iters < 100 || sodium_init() < 0)
        return 2;
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/sv-policy-bench-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    sv_store_opts_t o = {.dir = dir, .map_size = 64 << 20, .no_sync = true};
    sv_policy_t *pe;
    sv_store_reader_t *reader;
    if (sv_store_open(&st, &o) != SV_OK || sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL) != SV_OK ||
        sv_writer_start(st, NULL, &wr) != SV_OK || sv_policy_engine_new(&pe) != SV_OK ||
        sv_store_reader_new(st, &reader) != SV_OK) {
        fprintf(stderr, "policy_bench: cannot set up the store in %s\n", dir);
        return 1;
    }
    static const int counts[] = {1, 10, 100};
    static const char *const tenants[] = {"bench_1", "bench_10", "bench_100"};
    int failures = 0;
    for (int k = 0; k < 3; k++) {
        setup_t s = {tenants[k], counts[k]};
        sv_unit_t u = {.apply = put_policies, .arg = &s};
        if (sv_writer_run(wr, &u) != SV_OK) {
            fprintf(stderr, "policy_bench: cannot write the policies\n");
            return 1;
        }
    }
    sv_unit_t vu = {.apply = put_value};
    if (sv_writer_run(wr, &vu) != SV_OK)
        return 1;
    sv_policy_bump_generation();

    printf("{\"benchmark\":\"policy_check\",\"unit\":\"us_per_call\",\"iterations\":%ld,\"goal_check_us_at_100\":5.0,"
           "\"results\":[",
           iters);
    for (int k = 0; k < 3; k++) {
        check_arg_t c = {pe, reader, request(tenants[k]), false, 0, SV_AUTHZ_ALLOWED};
        double check = time_op(do_check, &c, iters);
        c.bump = true;
        double rebuild = time_op(do_check, &c, iters / (counts[k] * 10) + 10);
        c.bump = false;
        double explain = time_op(do_explain, &c, iters / (counts[k] * 10) + 10);
        failures += c.failures;
        printf("%s{\"policies\":%d,\"rules_per_policy\":2,\"check_us\":%.3f,\"rebuild_us\":%.2f,\"explain_us\":%.2f}",
               k ? "," : "", counts[k], check, rebuild, explain);
    }
    check_arg_t none = {pe, reader, request("bench_none"), false, 0, SV_AUTHZ_NO_POLICY_MATCHED};
    double floor_us = time_op(do_check, &none, iters);
    failures += none.failures;
    get_arg_t g = {reader, 0};
    double get_us = time_op(do_get, &g, iters);
    failures += g.failures;
    printf("],\"baselines\":{\"no_policy_bound_check_us\":%.3f,\"mdb_get_1k_us\":%.3f},\"failures\":%d}\n", floor_us,
           get_us, failures);

    sv_policy_engine_free(pe);
    sv_store_reader_free(reader);
    sv_writer_stop(wr);
    sv_store_close(st);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "policy_bench: could not remove %s\n", dir);
    return failures == 0 ? 0 : 1;
}
