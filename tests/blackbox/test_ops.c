/* tests/blackbox/test_ops.c - rate limits, health endpoints, metrics and
 * structured logs (issue 8), through the real binary. */
#include "sv_autoconf.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/prealloc.h"
#include "tests/blackbox/bb.h"

static bb_server_t srv;
static char key_dir[256];
static char key_path[300];
static char env_key[340];
static const char *env[] = {"RATE_LIMIT_ADMIN=4/min",     "DB_POOL_SIZE=50", "LOG_LEVEL=debug",
                            "SCAIVAULT_TEST_FAULTS=true", env_key,           NULL};

static int suite_init(void)
{
    /* the KMS key file lives outside the data dir so that the tests can
     * break it; the server makes it at start */
    const char *base = getenv("TMPDIR");
    snprintf(key_dir, sizeof(key_dir), "%s/sv-kms-XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(key_dir) == NULL)
        return 1;
    snprintf(key_path, sizeof(key_path), "%s/master.key", key_dir);
    snprintf(env_key, sizeof(env_key), "KMS_LOCAL_KEY_FILE=%s", key_path);
    return bb_start(&srv, env) ? 0 : 1;
}

static int suite_clean(void)
{
    bb_stop(&srv);
    bb_cleanup(&srv);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", key_dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}

/* A string at a JSON path equals want (prints the body when not). */
#define JSON_STR_EQ(r, path, want)                                                                                     \
    do {                                                                                                               \
        const char *got_ = bb_json_str((r), (path));                                                                   \
        if (got_ == NULL || strcmp(got_, (want)) != 0)                                                                 \
            fprintf(stderr, "\n  %s:%d: %s is %s, want %s; body: %.300s\n", __FILE__, __LINE__, (path),                \
                    got_ ? got_ : "(none)", (want), (r)->body ? (r)->body : "(none)");                                 \
        CU_ASSERT(got_ != NULL && strcmp(got_, (want)) == 0);                                                          \
    } while (0)

/* A fresh tenant for setup calls, so that they never use up a tested bucket. */
static const char *setup_tenant(void)
{
    static char t[32];
    static int n;
    snprintf(t, sizeof(t), "tnt_setup%d", ++n);
    return t;
}

static bool json_num(const bb_resp_t *r, const char *path, double *out)
{
    sv_json_t *v = bb_json(r, path);
    if (v == NULL || v->type != SV_JSON_NUMBER)
        return false;
    *out = v->u.num.d;
    return true;
}

static bool json_is_null(const bb_resp_t *r, const char *path)
{
    sv_json_t *v = bb_json(r, path);
    return v != NULL && v->type == SV_JSON_NULL;
}

static bool admin_get(const char *path, const char *tenant, const char *request_id, bb_resp_t *r)
{
    char auth[128], ten[96], rid[96];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    snprintf(ten, sizeof(ten), "X-ScaiVault-Tenant: %s", tenant);
    snprintf(rid, sizeof(rid), "X-Request-ID: %s", request_id ? request_id : "");
    const char *h[] = {auth, ten, request_id ? rid : NULL, NULL};
    return bb_req_h(&srv, "GET", path, h, NULL, 0, r);
}

/* ---- rate limits ---- */

static void test_burst_gets_429(void)
{
    bb_resp_t r;
    char v[128];
    /* RATE_LIMIT_ADMIN=4/min: four pass, with the draft's headers */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(admin_get("/v1/tenants/tnt_burst/rate-limits", "tnt_burst", NULL, &r));
        BB_ASSERT_STATUS(&r, 200);
        CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "ratelimit-policy", v, sizeof(v)));
        CU_ASSERT_STRING_EQUAL(v, "\"admin\";q=4;w=60");
        CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "ratelimit", v, sizeof(v)));
        char want[32];
        snprintf(want, sizeof(want), "\"admin\";r=%d;t=", 3 - i);
        CU_ASSERT(strncmp(v, want, strlen(want)) == 0);
        CU_ASSERT_PTR_NULL(bb_header(&r, "retry-after", v, sizeof(v)));
        bb_resp_free(&r);
    }
    /* the fifth: 429 rate_limited with every field and header */
    CU_ASSERT_FATAL(admin_get("/v1/tenants/tnt_burst/rate-limits", "tnt_burst", "rl-probe-1", &r));
    BB_ASSERT_STATUS(&r, 429);
    BB_ASSERT_CODE(&r, "rate_limited");
    JSON_STR_EQ(&r, "error.request_id", "rl-probe-1");
    JSON_STR_EQ(&r, "error.details.category", "admin");
    int64_t limit = 0, window = 0, retry = 0;
    CU_ASSERT(bb_json_int(&r, "error.details.limit", &limit) && limit == 4);
    CU_ASSERT(bb_json_int(&r, "error.details.window_seconds", &window) && window == 60);
    CU_ASSERT(bb_json_int(&r, "error.details.retry_after_seconds", &retry));
    CU_ASSERT(retry >= 1 && retry <= 15); /* one request refills every 60/4 s */
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "retry-after", v, sizeof(v)));
    CU_ASSERT_EQUAL(atoll(v), retry);
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "ratelimit-policy", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "\"admin\";q=4;w=60");
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "ratelimit", v, sizeof(v)));
    CU_ASSERT(strncmp(v, "\"admin\";r=0;t=", 14) == 0);
    bb_resp_free(&r);
    /* another tenant of the same token has its own bucket; routes without a
     * category are never limited */
    CU_ASSERT_FATAL(admin_get("/v1/tenants/tnt_burst/rate-limits", "tnt_other", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_FATAL(admin_get("/v1/health/detailed", "tnt_burst", NULL, &r));
        BB_ASSERT_STATUS(&r, 200);
        CU_ASSERT_PTR_NULL(bb_header(&r, "ratelimit", v, sizeof(v)));
        bb_resp_free(&r);
    }
}

static void test_tenant_overrides(void)
{
    bb_resp_t r;
    /* set up from another tenant's bucket ("tnt_setup"), so the limits tested are tnt_ov's */
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/tenants/tnt_ov/rate-limits", srv.token, setup_tenant(),
                           "{\"admin\": \"2/min\", \"read\": \"10/s\", \"list\": null}", &r));
    BB_ASSERT_STATUS(&r, 200);
    JSON_STR_EQ(&r, "tenant_id", "tnt_ov");
    JSON_STR_EQ(&r, "overrides.admin", "2/min");
    JSON_STR_EQ(&r, "overrides.read", "10/s");
    CU_ASSERT_PTR_NULL(bb_json(&r, "overrides.list"));
    JSON_STR_EQ(&r, "limits.admin.source", "override");
    JSON_STR_EQ(&r, "limits.write.source", "default");
    JSON_STR_EQ(&r, "limits.write.rate", "1200/min");
    int64_t n;
    CU_ASSERT(bb_json_int(&r, "limits.read.limit", &n) && n == 10);
    CU_ASSERT(bb_json_int(&r, "limits.read.window_seconds", &n) && n == 1);
    bb_resp_free(&r);

    /* requests acting in tnt_ov get its limit: two, then 429 naming 2 per 60 s */
    char v[128];
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_FATAL(admin_get("/v1/tenants/tnt_ov/rate-limits", "tnt_ov", NULL, &r));
        BB_ASSERT_STATUS(&r, 200);
        CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "ratelimit-policy", v, sizeof(v)));
        CU_ASSERT_STRING_EQUAL(v, "\"admin\";q=2;w=60");
        bb_resp_free(&r);
    }
    CU_ASSERT_FATAL(admin_get("/v1/tenants/tnt_ov/rate-limits", "tnt_ov", NULL, &r));
    BB_ASSERT_STATUS(&r, 429);
    CU_ASSERT(bb_json_int(&r, "error.details.limit", &n) && n == 2);
    bb_resp_free(&r);

    /* bad input */
    CU_ASSERT_FATAL(
        bb_req(&srv, "PUT", "/v1/tenants/tnt_ov/rate-limits", srv.token, setup_tenant(), "{\"reads\": \"2/min\"}", &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    JSON_STR_EQ(&r, "error.details.field", "reads");
    bb_resp_free(&r);
    const char *bad[] = {"{\"read\": \"0/min\"}", "{\"read\": \"5/fortnight\"}", "{\"read\": 5}",
                         "{\"read\": \"5/2d\"}"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/tenants/tnt_ov/rate-limits", srv.token, setup_tenant(), bad[i], &r));
        BB_ASSERT_STATUS(&r, 400);
        JSON_STR_EQ(&r, "error.details.field", "read");
        bb_resp_free(&r);
    }
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/tenants/bad%20id/rate-limits", srv.token, setup_tenant(), NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    JSON_STR_EQ(&r, "error.details.field", "id");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/tenants/tnt_ov/rate-limits", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    bb_resp_free(&r);

    /* the overrides survive a restart (they are stored through the writer) */
    CU_ASSERT_EQUAL(bb_stop(&srv), 0);
    CU_ASSERT_FATAL(bb_start(&srv, env));
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/tenants/tnt_ov/rate-limits", srv.token, setup_tenant(), NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    JSON_STR_EQ(&r, "overrides.admin", "2/min");
    JSON_STR_EQ(&r, "limits.admin.source", "override");
    bb_resp_free(&r);

    /* DELETE: back to the defaults */
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/tenants/tnt_ov/rate-limits", srv.token, setup_tenant(), NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "overrides"));
    CU_ASSERT_PTR_NULL(bb_json(&r, "overrides.admin"));
    JSON_STR_EQ(&r, "limits.admin.source", "default");
    CU_ASSERT(bb_json_int(&r, "limits.admin.limit", &n) && n == 4);
    bb_resp_free(&r);
}

/* ---- health ---- */

static void test_detailed(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/detailed", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    bb_resp_free(&r);
    /* traffic: storage reads (readiness) and commits (a write) */
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/ready", NULL, NULL, NULL, &r));
        bb_resp_free(&r);
    }
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/tenants/tnt_traffic/rate-limits", srv.token, "tnt_traffic",
                           "{\"write\": \"100/s\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);

    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/detailed", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    JSON_STR_EQ(&r, "status", "ok");
    JSON_STR_EQ(&r, "version", "0.1.0");
    int64_t n;
    double d;
    CU_ASSERT(bb_json_int(&r, "schema_version", &n) && n >= 3);
    CU_ASSERT(bb_json_int(&r, "uptime_s", &n) && n >= 0);
    JSON_STR_EQ(&r, "dependencies.storage.status", "ok");
    CU_ASSERT(json_num(&r, "dependencies.storage.latency_ms", &d) && d > 0);
    CU_ASSERT(json_num(&r, "dependencies.storage.latency_p99_ms", &d) && d > 0);
    CU_ASSERT(json_num(&r, "dependencies.storage.map_used_pct", &d) && d > 0 && d <= 100);
    int64_t used = 0, max = 0;
    CU_ASSERT(bb_json_int(&r, "dependencies.storage.readers_used", &used) && used >= 2); /* a reader per worker */
    CU_ASSERT(bb_json_int(&r, "dependencies.storage.readers_max", &max) && max == 50);
    JSON_STR_EQ(&r, "dependencies.kms.status", "ok");
    JSON_STR_EQ(&r, "dependencies.kms.provider", "local");
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "dependencies.kms.latency_ms"));
    JSON_STR_EQ(&r, "dependencies.audit.status", "ok");
    CU_ASSERT(json_num(&r, "dependencies.audit.commit_latency_ms", &d) && d > 0);
    CU_ASSERT(json_num(&r, "dependencies.audit.commit_latency_p99_ms", &d) && d > 0);
    CU_ASSERT(bb_json_int(&r, "dependencies.audit.queue_depth", &n) && n >= 0);
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "dependencies.webhooks.queue_depth"));
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "dependencies.webhooks.failing"));
    JSON_STR_EQ(&r, "dependencies.replication.role", "primary");
    CU_ASSERT(bb_json_int(&r, "dependencies.replication.lag_lsn", &n) && n == 0);
    CU_ASSERT(bb_json_int(&r, "dependencies.replication.lag_ms", &n) && n == 0);
    JSON_STR_EQ(&r, "dependencies.scaikey.status", "disabled"); /* no SCAIKEY_ISSUER */
    CU_ASSERT_TRUE(json_is_null(&r, "dependencies.scaikey.jwks_age_s"));
    CU_ASSERT(bb_json_int(&r, "pool_size", &n) && n == 50); /* DB_POOL_SIZE */
    CU_ASSERT(bb_json_int(&r, "pool_available", &n) && n == max - used && n > 0);
    bb_resp_free(&r);
}

static void write_key(const char *content, size_t len, mode_t mode)
{
    unlink(key_path);
    rmdir(key_path);
    FILE *f = fopen(key_path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(content, 1, len, f);
    fclose(f);
    chmod(key_path, mode);
}

static void expect_ready(bool ready, const char *reason)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/ready", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, ready ? 200 : 503);
    const char *st = bb_json_str(&r, "status");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_STRING_EQUAL(st, ready ? "ready" : "not_ready");
    JSON_STR_EQ(&r, "checks.storage.status", "ok");
    JSON_STR_EQ(&r, "checks.kms.status", ready ? "ok" : "failed");
    if (!ready) {
        JSON_STR_EQ(&r, "failed", "kms");
        const char *got = bb_json_str(&r, "checks.kms.reason");
        if (got == NULL || strcmp(got, reason) != 0)
            fprintf(stderr, "\n  kms reason %s, want %s\n", got ? got : "(none)", reason);
        CU_ASSERT(got != NULL && strcmp(got, reason) == 0);
        /* the public body names the check, not the file or the errno text */
        CU_ASSERT_PTR_NULL(strstr(r.body, key_dir));
    } else {
        CU_ASSERT_PTR_NULL(bb_json(&r, "failed"));
    }
    bb_resp_free(&r);
}

/* A key file removed before any readiness probe of a fresh server is not
 * ready either: the server made it at start, and a restart would refuse to
 * run without it. */
static void test_ready_key_removed_at_once(void)
{
    char dir[600], kenv[700];
    snprintf(dir, sizeof(dir), "%s/fresh", key_dir);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(kenv, sizeof(kenv), "KMS_LOCAL_KEY_FILE=%s/master.key", dir);
    const char *fresh_env[] = {kenv, NULL};
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, fresh_env));
    char key[700];
    snprintf(key, sizeof(key), "%s/master.key", dir);
    CU_ASSERT_EQUAL(unlink(key), 0);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/health/ready", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 503);
    JSON_STR_EQ(&r, "checks.kms.reason", "key_file_missing");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
    rmdir(dir);
}

static void test_ready(void)
{
    /* the KMS made its key file at start: ready */
    CU_ASSERT_EQUAL(access(key_path, F_OK), 0);
    expect_ready(true, NULL);
    static const char key[32] = "0123456789abcdef0123456789abcdef";
    write_key(key, sizeof(key), 0600);
    expect_ready(true, NULL);

    /* made unreadable: mode 000. As root, open() would still succeed, so the
     * check also requires the owner-read bit the KMS creates the file with. */
    chmod(key_path, 0);
    expect_ready(false, "key_file_unreadable");
    chmod(key_path, 0600);
    expect_ready(true, NULL);

    /* a key file that no one can read, root included: a directory in its place */
    unlink(key_path);
    CU_ASSERT_EQUAL_FATAL(mkdir(key_path, 0700), 0);
    expect_ready(false, "key_file_unreadable");
    rmdir(key_path);

    /* a missing key file is not ready (a restart would refuse); an empty one neither */
    expect_ready(false, "key_file_missing");
    write_key("", 0, 0600);
    expect_ready(false, "key_file_empty");
    write_key(key, sizeof(key), 0600);
    expect_ready(true, NULL);

    /* the detailed report (authenticated) gives the full reason */
    chmod(key_path, 0);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/detailed", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    JSON_STR_EQ(&r, "status", "degraded");
    JSON_STR_EQ(&r, "dependencies.kms.status", "failed");
    const char *err = bb_json_str(&r, "dependencies.kms.error");
    CU_ASSERT(err != NULL && strstr(err, key_path) != NULL && strstr(err, "mode 0000") != NULL);
    bb_resp_free(&r);
    chmod(key_path, 0600);
    expect_ready(true, NULL);
    /* liveness never depended on any of it */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);

    /* the kms fault seam: the probe reports what the next wrap would meet, and probes do not
     * use the armed failure up: one failure armed, two probes, then the write that meets it */
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL,
                           "{\"op\": \"kms\", \"errno\": \"EIO\", \"nth\": 1, \"count\": 1}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    expect_ready(false, "kms_unavailable");
    expect_ready(false, "kms_unavailable");
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/secrets/k/x", srv.token, "tnt_kms_probe", "{\"value\":\"v\"}", &r));
    BB_ASSERT_STATUS(&r, 503); /* a new tenant's key: the one KMS call, failed */
    BB_ASSERT_CODE(&r, "kms_unavailable");
    bb_resp_free(&r);
    expect_ready(true, NULL);
    /* the malloc seam (an overload of plaintext memory) is no KMS failure: still ready */
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL,
                           "{\"op\": \"malloc\", \"errno\": \"ENOMEM\", \"nth\": 1, \"count\": 0}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    expect_ready(true, NULL);
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/sys/faults", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 204);
    bb_resp_free(&r);
}

/* ---- metrics ---- */

static bool have_promtool(void)
{
    return system("command -v promtool >/dev/null 2>&1") == 0;
}

static void test_metrics(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/metrics", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    bb_resp_free(&r);
    /* a refusal to count (the server restarted since the other tests) */
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(admin_get("/v1/tenants/tnt_m/rate-limits", "tnt_metrics", NULL, &r));
        bb_resp_free(&r);
    }
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/metrics", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    char ct[96];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "content-type", ct, sizeof(ct)));
    CU_ASSERT_STRING_EQUAL(ct, "text/plain; version=0.0.4; charset=utf-8");
    const char *b = r.body;
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_http_requests_total{method=\"GET\",route=\"/v1/health/ready\","
                                     "status=\"200\"} "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_http_requests_total{method=\"GET\","
                                     "route=\"/v1/tenants/{id}/rate-limits\",status=\"429\"} "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_http_request_duration_seconds_bucket{method=\"GET\","
                                     "route=\"/v1/health/ready\",le=\"+Inf\"} "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_rate_limit_rejections_total{category=\"admin\"} "));
    CU_ASSERT_PTR_NULL(strstr(b, "scaivault_rate_limit_rejections_total{category=\"admin\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_writer_batch_size_bucket{le=\"1\"} "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_writer_commit_duration_seconds_count "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_storage_read_duration_seconds_count "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_audit_queue_depth "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_token_cache_requests_total{result=\"hit\"} "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_data_key_cache_requests_total{result=\"miss\"} "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_uptime_seconds "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "scaivault_rate_limit_buckets "));
    /* data.mdb is kept written ahead of use (operations.md): not on tmpfs,
     * and not when that would leave less than 256 MiB of the disk free */
    const char *m = strstr(b, "\nscaivault_storage_prealloc_margin_bytes ");
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nscaivault_storage_prealloc_skipped_total "));
    struct statvfs fs;
    char mdb[400];
    snprintf(mdb, sizeof(mdb), "%s/data.mdb", srv.data_dir);
    struct stat sb;
    if (m != NULL && !sv_prealloc_in_memory(srv.data_dir) && statvfs(srv.data_dir, &fs) == 0 &&
        (unsigned long long)fs.f_bavail * fs.f_frsize > (1ull << 30) && stat(mdb, &sb) == 0) {
        unsigned long long margin = strtoull(m + strlen("\nscaivault_storage_prealloc_margin_bytes "), NULL, 10);
        CU_ASSERT(margin >= 512 * 1024);      /* at least half of the 1 MiB minimum */
        CU_ASSERT(sb.st_size >= 1024 * 1024); /* and the file holds it */
        CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nscaivault_storage_prealloc_skipped_total 0\n"));
    }

    /* a real parser: Prometheus' own promtool (Debian package prometheus) */
    if (!have_promtool()) {
        fprintf(stderr, "\n  promtool not found: install the Debian package prometheus (scripts/deps does)\n");
        CU_FAIL("promtool missing");
        bb_resp_free(&r);
        return;
    }
    char path[400], cmd[900];
    snprintf(path, sizeof(path), "%s/metrics.txt", srv.dir);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(r.body, 1, r.body_len, f);
    fclose(f);
    bb_resp_free(&r);
    /* exit 0 only when it parses and passes the lint (names, suffixes, HELP) */
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
    int st = system(cmd);
    if (st != 0) {
        snprintf(cmd, sizeof(cmd), "cat '%s.out' >&2", path);
        if (system(cmd) != 0)
            fprintf(stderr, "(no promtool output)\n");
    }
    CU_ASSERT_EQUAL(st, 0);
    /* and the checker itself can fail: a broken exposition is refused */
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("# TYPE x_total counter\nx_total{a=\"b\" 1\n", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > /dev/null 2>&1", path);
    CU_ASSERT_NOT_EQUAL(system(cmd), 0);
}

/* ---- logs ---- */

static void test_request_logs(void)
{
    /* a storage failure (armed fault) during a write: the handler's error line
     * carries the request id, as does the access-log line (nth 2: the arming
     * request's own audit entry is the next commit) */
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL,
                           "{\"op\": \"commit\", \"errno\": \"EIO\", \"nth\": 2, \"count\": 1}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    const char *h[] = {auth, "X-ScaiVault-Tenant: tnt_logs", "X-Request-ID: log-probe-5xx", NULL};
    const char *body = "{\"read\": \"5/s\"}";
    CU_ASSERT_FATAL(bb_req_h(&srv, "PUT", "/v1/tenants/tnt_logs/rate-limits", h, body, strlen(body), &r));
    BB_ASSERT_STATUS(&r, 503);
    BB_ASSERT_CODE(&r, "storage_unavailable");
    bb_resp_free(&r);
    /* stop to flush every buffered line */
    CU_ASSERT_EQUAL(bb_stop(&srv), 0);
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"level\":\"error\",\"msg\":\"request failed: storage_unavailable"));
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"request_id\":\"log-probe-5xx\",\"route\":"
                                                 "\"/v1/tenants/{id}/rate-limits\""));
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"msg\":\"request\",\"request_id\":\"log-probe-5xx\""));
    /* LOG_LEVEL=debug: the 429 of the burst test was logged with its id */
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"level\":\"debug\",\"msg\":\"rate limited: category admin, "
                                                 "limit 4 per 60 s"));
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"request_id\":\"rl-probe-1\""));
    /* readiness changes are logged once each, with the reason */
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"level\":\"warn\",\"msg\":\"not ready: KMS_LOCAL_KEY_FILE"));
    CU_ASSERT(bb_file_contains_str(srv.log_path, "ready again"));
    CU_ASSERT_FATAL(bb_start(&srv, env)); /* suite_clean stops it */
}

/* Counts lines of path starting with prefix, and lines in all. */
static int count_lines(const char *path, const char *prefix, int *total)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    *total = 0;
    if (f == NULL)
        return -1;
    char line[4096];
    while (fgets(line, sizeof(line), f) != NULL) {
        (*total)++;
        n += strncmp(line, prefix, strlen(prefix)) == 0;
    }
    fclose(f);
    return n;
}

static void test_log_level_filter(void)
{
    bb_server_t s = {0};
    const char *e[] = {"LOG_LEVEL=warn", "SCAIVAULT_TEST_FAULTS=true", NULL};
    CU_ASSERT_FATAL(bb_start(&s, e));
    bb_resp_t r;
    const char *h[] = {"X-Request-ID: level-probe-1", NULL};
    CU_ASSERT_FATAL(bb_req_h(&s, "GET", "/v1/health", h, NULL, 0, &r));
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    /* warn is written, info (start-up, access log) is not */
    CU_ASSERT(bb_file_contains_str(s.log_path, "\"level\":\"warn\",\"msg\":\"SCAIVAULT_TEST_FAULTS is on"));
    CU_ASSERT_FALSE(bb_file_contains_str(s.log_path, "\"level\":\"info\""));
    CU_ASSERT_FALSE(bb_file_contains_str(s.log_path, "level-probe-1"));
    bb_cleanup(&s);
}

static void test_log_format_text(void)
{
    bb_server_t s = {0};
    const char *e[] = {"LOG_FORMAT=text", NULL};
    CU_ASSERT_FATAL(bb_start(&s, e));
    bb_resp_t r;
    const char *h[] = {"X-Request-ID: text-probe-1", NULL};
    CU_ASSERT_FATAL(bb_req_h(&s, "GET", "/v1/health", h, NULL, 0, &r));
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT(bb_file_contains_str(s.log_path, " info  [text-probe-1] request method=GET route=/v1/health "
                                               "status=200 duration_us="));
    CU_ASSERT(bb_file_contains_str(s.log_path, " info  scaivault 0.1.0 started "));
    /* a line's extra fields are key=value pairs too, not JSON members */
    CU_ASSERT(bb_file_contains_str(s.log_path, " listen=127.0.0.1:"));
    CU_ASSERT(!bb_file_contains_str(s.log_path, "\"listen\":"));
    int total = 0;
    int json = count_lines(s.log_path, "{", &total);
    CU_ASSERT(total >= 3);
    CU_ASSERT_EQUAL(json, 0);
    bb_cleanup(&s);
}

void sv_bb_suite_ops(void)
{
    CU_pSuite s = CU_add_suite("blackbox/ops", suite_init, suite_clean);
    CU_add_test(s, "burst_gets_429", test_burst_gets_429);
    CU_add_test(s, "tenant_overrides", test_tenant_overrides);
    CU_add_test(s, "detailed", test_detailed);
    CU_add_test(s, "ready", test_ready);
    CU_add_test(s, "ready_key_removed_at_once", test_ready_key_removed_at_once);
    CU_add_test(s, "metrics", test_metrics);
    CU_add_test(s, "request_logs", test_request_logs);
    CU_add_test(s, "log_level_filter", test_log_level_filter);
    CU_add_test(s, "log_format_text", test_log_format_text);
}
