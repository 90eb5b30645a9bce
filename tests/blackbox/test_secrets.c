/* tests/blackbox/test_secrets.c - the secrets API (API.md "Secrets") through
 * the real binary: every endpoint and error code, tenant and partner
 * isolation, crypto-shredding, storage faults, the local KMS key file and
 * plaintext hygiene. Uses the bootstrap token with X-ScaiVault-Tenant. */
#include "sv_autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/blackbox/bb.h"

static bb_server_t srv;
/* one bootstrap token drives thousands of requests: lift its rate limits */
#define NO_LIMITS                                                                                                      \
    "RATE_LIMIT_READ=1000000/min", "RATE_LIMIT_WRITE=1000000/min", "RATE_LIMIT_LIST=1000000/min",                      \
        "RATE_LIMIT_BATCH_READ=1000000/min", "RATE_LIMIT_ADMIN=1000000/min"
static const char *const test_env[] = {"SCAIVAULT_TEST_FAULTS=true", NO_LIMITS, NULL};

static int suite_init(void)
{
    return bb_start(&srv, test_env) ? 0 : 1;
}

static int suite_clean(void)
{
    bb_stop(&srv);
    bb_cleanup(&srv);
    return 0;
}

/* ---- helpers ---- */

static bool req(const char *method, const char *path, const char *tenant, const char *body, bb_resp_t *r)
{
    return bb_req(&srv, method, path, srv.token, tenant, body, r);
}

/* A request to the partner scope with X-ScaiVault-Partner (NULL: none). */
static bool preq(const char *method, const char *path, const char *partner, const char *body, bb_resp_t *r)
{
    char auth[200], ph[200];
    const char *h[3] = {auth, NULL, NULL};
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    if (partner != NULL) {
        snprintf(ph, sizeof(ph), "X-ScaiVault-Partner: %s", partner);
        h[1] = ph;
    }
    return bb_req_h(&srv, method, path, h, body, body ? strlen(body) : 0, r);
}

/* Expects status (and, when code is set, the error code); frees the response. */
static void expect(const char *method, const char *path, const char *tenant, const char *body, int status,
                   const char *code)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(req(method, path, tenant, body, &r));
    if (r.status != status)
        fprintf(stderr, "\n  %s %s: ", method, path);
    BB_ASSERT_STATUS(&r, status);
    if (code != NULL)
        BB_ASSERT_CODE(&r, code);
    char cl[32];
    if (status == 204) /* RFC 9110 8.6: no Content-Length on a 204 */
        CU_ASSERT_PTR_NULL(bb_header(&r, "content-length", cl, sizeof(cl)));
    bb_resp_free(&r);
}

static void expect_field(const char *method, const char *path, const char *tenant, const char *body, int status,
                         const char *code, const char *field)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(req(method, path, tenant, body, &r));
    BB_ASSERT_STATUS(&r, status);
    BB_ASSERT_CODE(&r, code);
    const char *f = bb_json_str(&r, "error.details.field");
    if (f == NULL || strcmp(f, field) != 0)
        fprintf(stderr, "\n  %s %s: field %s, want %s\n", method, path, f ? f : "(none)", field);
    CU_ASSERT(f != NULL && strcmp(f, field) == 0);
    bb_resp_free(&r);
}

static void expect_p(const char *method, const char *path, const char *partner, const char *body, int status,
                     const char *code);

static void put_value(const char *tenant, const char *path, const char *value_json, int status)
{
    char url[1500], body[4096];
    snprintf(url, sizeof(url), "/v1/secrets/%s", path);
    snprintf(body, sizeof(body), "{\"value\":%s}", value_json);
    expect("PUT", url, tenant, body, status, NULL);
}

/* The string value of GET path (version v, 0: latest) into out; the status. */
static long get_value(const char *tenant, const char *path, uint64_t v, char *out, size_t cap)
{
    char url[1500];
    if (v != 0)
        snprintf(url, sizeof(url), "/v1/secrets/%s?version=%llu", path, (unsigned long long)v);
    else
        snprintf(url, sizeof(url), "/v1/secrets/%s", path);
    bb_resp_t r;
    out[0] = 0;
    if (!req("GET", url, tenant, NULL, &r))
        return 0;
    const char *s = bb_json_str(&r, "value");
    if (s != NULL)
        snprintf(out, cap, "%s", s);
    long st = r.status;
    bb_resp_free(&r);
    return st;
}

static int list_all(const char *tenant, const char *prefix, int limit, int *pages);

/* ---- PUT and GET ---- */

static void test_put_get(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(req("PUT", "/v1/secrets/app/db/password", "t_basic",
                        "{\"value\":\"s3cr3t\",\"metadata\":{\"owner\":\"team-a\"}}", &r));
    BB_ASSERT_STATUS(&r, 201);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "path"), "app/db/password");
    int64_t v;
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 1);
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "created_at"));
    bb_resp_free(&r);

    CU_ASSERT_FATAL(req("PUT", "/v1/secrets/app/db/password", "t_basic",
                        "{\"value\":{\"user\":\"u\",\"port\":5432,\"tls\":true,\"tags\":[\"a\",null]}}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 2);
    bb_resp_free(&r);

    CU_ASSERT_FATAL(req("GET", "/v1/secrets/app/db/password", "t_basic", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "path"), "app/db/password");
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 2);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value.user"), "u");
    CU_ASSERT(bb_json_int(&r, "value.port", &v) && v == 5432);
    bool b;
    CU_ASSERT(bb_json_bool(&r, "value.tls", &b) && b);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value.tags.0"), "a");
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "metadata"));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "created_by"), "bootstrap");
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "created_at"));
    char cc[64];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "cache-control", cc, sizeof(cc)));
    CU_ASSERT_STRING_EQUAL(cc, "no-store");
    bb_resp_free(&r);

    CU_ASSERT_FATAL(req("GET", "/v1/secrets/app/db/password?version=1", "t_basic", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), "s3cr3t");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "metadata.owner"), "team-a");
    bb_resp_free(&r);

    /* unicode and escapes survive the round trip */
    put_value("t_basic", "app/unicode", "\"caf\\u00e9 \\\"q\\\" \\n \\u0000 end\"", 201);
    CU_ASSERT_FATAL(req("GET", "/v1/secrets/app/unicode", "t_basic", NULL, &r));
    sv_json_t *val = bb_json(&r, "value");
    CU_ASSERT_FATAL(val != NULL && val->type == SV_JSON_STRING);
    CU_ASSERT_EQUAL(val->u.str.len, strlen("café \"q\" \n ") + 1 + 4);
    CU_ASSERT(memcmp(val->u.str.s, "café \"q\" \n \0 end", val->u.str.len) == 0);
    bb_resp_free(&r);

    expect("GET", "/v1/secrets/app/db/password?version=3", "t_basic", NULL, 404, "not_found");
    expect("GET", "/v1/secrets/app/nothing", "t_basic", NULL, 404, "not_found");
    expect_field("GET", "/v1/secrets/app/db/password?version=0", "t_basic", NULL, 400, "invalid_request", "version");
    expect_field("GET", "/v1/secrets/app/db/password?version=x", "t_basic", NULL, 400, "invalid_request", "version");
    /* a secret may be called "batch" (POST /v1/secrets/batch is the batch read) */
    put_value("t_basic", "batch", "\"b\"", 201);
    char out[64];
    CU_ASSERT_EQUAL(get_value("t_basic", "batch", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "b");
    expect("POST", "/v1/secrets/app/db/password", "t_basic", "{}", 405, "method_not_allowed");
    expect("GET", "/v1/secrets/app/db/password", NULL, NULL, 400, "tenant_required");
    expect("GET", "/v1/secrets/app/db/password", "bad tenant!", NULL, 400, "invalid_request");
    bb_req(&srv, "GET", "/v1/secrets/app/db/password", NULL, "t_basic", NULL, &r);
    BB_ASSERT_STATUS(&r, 401);
    BB_ASSERT_CODE(&r, "authentication_required");
    bb_resp_free(&r);
}

static void test_put_validation(void)
{
    const char *t = "t_valid";
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"metadata\":{}}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":42}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":[\"x\"]}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":null}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"metadata\":\"m\"}", 400, "invalid_request",
                 "metadata");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"metadata\":{\"k\":1}}", 400, "invalid_request",
                 "metadata.k");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"valeu\":\"typo\"}", 400, "invalid_request", "valeu");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"cas\":-1}", 400, "invalid_request", "cas");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"cas\":\"1\"}", 400, "invalid_request", "cas");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\"", 400, "invalid_request", "body");
    expect_field("PUT", "/v1/secrets/v/a", t, NULL, 400, "invalid_request", "body");
    /* text that is not UTF-8, or that yajl alone would change: refused, not stored */
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"\\ud800\\u0041\"}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"\\ud800\"}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"\xed\xa0\x80\"}", 400, "invalid_request", "value");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"metadata\":{\"k\":\"\xc0\xaf\"}}", 400,
                 "invalid_request", "metadata.k");
    /* bytes that are not UTF-8 at all name the member too (finding: they were
     * "Malformed JSON" of the body) */
    static const char *const not_utf8[] = {"\xe9", "ab\377cd", "\x80", "\xfe", "\xf0\x9f\x98"};
    for (size_t i = 0; i < SV_ARRAY_LEN(not_utf8); i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", not_utf8[i]);
        expect_field("PUT", "/v1/secrets/v/a", t, body, 400, "invalid_request", "value");
    }
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"metadata\":{\"k\":\"\xe2\x82\"}}", 400,
                 "invalid_request", "metadata.k");
    expect_field("PUT", "/v1/secrets/v/a", t, "{\"value\":\"x\",\"metadata\":{\"k\x80\":\"v\"}}", 400,
                 "invalid_request", "metadata");
    expect_p("PUT", "/v1/partner/secrets/v/a", "acme_utf8", "{\"value\":\"\xe9\"}", 400, "invalid_request");
    expect_p("GET", "/v1/partner/secrets/v/a", "acme_utf8", NULL, 404, "not_found");
    char got[64];
    CU_ASSERT_EQUAL(get_value(t, "v/a", 0, got, sizeof(got)), 404);
    put_value(t, "v/utf8", "\"\\ud83d\\ude00 \xc3\xa9\"", 201);
    CU_ASSERT_EQUAL(get_value(t, "v/utf8", 0, got, sizeof(got)), 200);
    CU_ASSERT_STRING_EQUAL(got, "\xf0\x9f\x98\x80 \xc3\xa9");
    /* too many metadata members, too long a metadata value */
    char body[8192];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"value\":\"x\",\"metadata\":{");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "}}");
    expect_field("PUT", "/v1/secrets/v/a", t, body, 400, "invalid_request", "metadata");
    n = (size_t)snprintf(body, sizeof(body), "{\"value\":\"x\",\"metadata\":{\"k\":\"");
    memset(body + n, 'a', 1100);
    snprintf(body + n + 1100, sizeof(body) - n - 1100, "\"}}");
    expect_field("PUT", "/v1/secrets/v/a", t, body, 400, "invalid_request", "metadata.k");

    /* MAX_SECRET_BYTES (512 KiB): exactly at the limit is fine, beyond is 413 */
    size_t limit = 524288;
    char *big = malloc(limit + 64);
    n = (size_t)snprintf(big, 64, "{\"value\":\"");
    memset(big + n, 'z', limit);
    snprintf(big + n + limit, 64, "\"}");
    expect("PUT", "/v1/secrets/v/big", t, big, 201, NULL);
    n = (size_t)snprintf(big, 64, "{\"value\":\"");
    memset(big + n, 'z', limit + 1);
    snprintf(big + n + limit + 1, 64, "\"}");
    bb_resp_t r;
    CU_ASSERT_FATAL(req("PUT", "/v1/secrets/v/big", t, big, &r));
    BB_ASSERT_STATUS(&r, 413);
    BB_ASSERT_CODE(&r, "secret_too_large");
    int64_t lim;
    CU_ASSERT(bb_json_int(&r, "error.details.limit_bytes", &lim) && lim == (int64_t)limit);
    bb_resp_free(&r);
    /* an object value counts its compact JSON */
    n = (size_t)snprintf(big, 64, "{\"value\":{\"k\":\"");
    memset(big + n, 'y', limit);
    snprintf(big + n + limit, 64, "\"}}");
    expect("PUT", "/v1/secrets/v/bigobj", t, big, 413, "secret_too_large");
    free(big);
    /* bodies over MAX_BODY_BYTES are refused before parsing */
    size_t huge = 1100 * 1024;
    char *hb = malloc(huge + 64);
    n = (size_t)snprintf(hb, 64, "{\"value\":\"");
    memset(hb + n, 'h', huge);
    snprintf(hb + n + huge, 64, "\"}");
    expect("PUT", "/v1/secrets/v/huge", t, hb, 413, "payload_too_large");
    free(hb);
    expect("GET", "/v1/secrets/v/a", t, NULL, 404, "not_found");
}

static void test_invalid_paths(void)
{
    static const char *const bad[] = {
        "a//b",  "a/./b",    "a/../b", "..",       ".",       "a/b/",   "a%20b",      "a$b",  "a/b%3Fc",
        "a%00b", "versions", "config", "undelete", "destroy", "rotate", "x/y/rotate", "%2Fa",
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        char url[700];
        snprintf(url, sizeof(url), "/v1/secrets/%s", bad[i]);
        bb_resp_t r;
        CU_ASSERT_FATAL(req("PUT", url, "t_paths", "{\"value\":\"x\"}", &r));
        if (r.status != 400)
            fprintf(stderr, "\n  path '%s' accepted (%ld)\n", bad[i], r.status);
        BB_ASSERT_STATUS(&r, 400);
        bb_resp_free(&r);
        CU_ASSERT_FATAL(req("GET", url, "t_paths", NULL, &r));
        BB_ASSERT_STATUS(&r, 400);
        bb_resp_free(&r);
    }
    expect("PUT", "/v1/secrets/a//b", "t_paths", "{\"value\":\"x\"}", 400, "invalid_path");
    /* one segment: not a sub-resource URL (those are 405, see sub_resource_methods) */
    expect("PUT", "/v1/secrets/versions", "t_paths", "{\"value\":\"x\"}", 400, "invalid_path");
    expect("DELETE", "/v1/secrets/config", "t_paths", NULL, 400, "invalid_path");
    expect("GET", "/v1/secrets/a/../b/versions", "t_paths", NULL, 400, "invalid_path");
    /* 512 bytes is the longest path */
    char path[520], url[700];
    memset(path, 'p', 512);
    path[512] = 0;
    snprintf(url, sizeof(url), "/v1/secrets/%s", path);
    expect("PUT", url, "t_paths", "{\"value\":\"x\"}", 201, NULL);
    char out[32];
    CU_ASSERT_EQUAL(get_value("t_paths", path, 0, out, sizeof(out)), 200);
    snprintf(url, sizeof(url), "/v1/secrets/%sq", path);
    expect("PUT", url, "t_paths", "{\"value\":\"x\"}", 400, "invalid_path");
    /* long paths that share a long beginning stay apart, and list and page */
    char longp[3][480];
    for (int i = 0; i < 3; i++) {
        memset(longp[i], 'L', 470);
        snprintf(longp[i] + 470, 10, "/%c", 'a' + i);
        put_value("t_long", longp[i], i == 0 ? "\"A\"" : i == 1 ? "\"B\"" : "\"C\"", 201);
    }
    CU_ASSERT_EQUAL(get_value("t_long", longp[1], 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "B");
    put_value("t_long", "LLLL/short", "\"s\"", 201);
    int pages;
    char prefix[460];
    memset(prefix, 'L', 450);
    prefix[450] = 0;
    CU_ASSERT_EQUAL(list_all("t_long", prefix, 1, &pages), 3);
    CU_ASSERT_EQUAL(list_all("t_long", "LLLL", 2, &pages), 4);
    bb_resp_t r;
    snprintf(url, sizeof(url), "/v1/secrets?prefix=%s", prefix);
    CU_ASSERT_FATAL(req("GET", url, "t_long", NULL, &r));
    CU_ASSERT_EQUAL(strlen(bb_json_str(&r, "items.0")), 472);
    bb_resp_free(&r);
    put_value("t_paths", "A-z_0.9/x..y/.hidden/versions.d", "\"ok\"", 201);
}

static void test_cas(void)
{
    const char *t = "t_cas";
    expect("PUT", "/v1/secrets/c/x", t, "{\"value\":\"1\",\"cas\":0}", 201, NULL);
    expect("PUT", "/v1/secrets/c/x", t, "{\"value\":\"2\",\"cas\":0}", 409, "version_conflict");
    expect("PUT", "/v1/secrets/c/x", t, "{\"value\":\"2\",\"cas\":2}", 409, "version_conflict");
    expect("PUT", "/v1/secrets/c/x", t, "{\"value\":\"2\",\"cas\":1}", 200, NULL);
    expect("PUT", "/v1/secrets/c/x", t, "{\"value\":\"3\",\"cas\":1}", 409, "version_conflict");
    char out[32];
    CU_ASSERT_EQUAL(get_value(t, "c/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "2");
    expect("PUT", "/v1/secrets/c/new", t, "{\"value\":\"1\",\"cas\":3}", 409, "version_conflict");
    expect("GET", "/v1/secrets/c/new", t, NULL, 404, "not_found");
}

/* ---- versions, delete, undelete, destroy, purge ---- */

static const char *version_state(bb_resp_t *r, int64_t version)
{
    sv_json_t *items = bb_json(r, "items");
    if (items == NULL)
        return NULL;
    for (sv_json_t *it = items->u.kids.first; it != NULL; it = it->next) {
        sv_json_t *v = sv_json_get(it, "version");
        if (v != NULL && v->u.num.i == version)
            return sv_json_get_str(it, "state", NULL);
    }
    return NULL;
}

static void test_version_states(void)
{
    const char *t = "t_states";
    for (int i = 1; i <= 4; i++) {
        char v[16];
        snprintf(v, sizeof(v), "\"v%d\"", i);
        put_value(t, "s/x", v, i == 1 ? 201 : 200);
    }
    char out[32];
    /* soft delete of the latest */
    expect("DELETE", "/v1/secrets/s/x", t, NULL, 204, NULL);
    expect("GET", "/v1/secrets/s/x", t, NULL, 404, "secret_version_deleted");
    CU_ASSERT_EQUAL(get_value(t, "s/x", 3, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "v3");
    bb_resp_t r;
    CU_ASSERT_FATAL(req("GET", "/v1/secrets/s/x/versions", t, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(version_state(&r, 4), "deleted");
    CU_ASSERT_STRING_EQUAL(version_state(&r, 3), "active");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "path"), "s/x");
    int64_t n;
    CU_ASSERT(bb_json_int(&r, "current_version", &n) && n == 4);
    CU_ASSERT(bb_json_int(&r, "items.0.version", &n) && n == 4); /* newest first */
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "items.0.deleted_at"));
    CU_ASSERT(bb_json(&r, "items.1.deleted_at")->type == SV_JSON_NULL);
    CU_ASSERT(bb_json(&r, "next_cursor")->type == SV_JSON_NULL);
    bb_resp_free(&r);
    /* undelete */
    expect("POST", "/v1/secrets/s/x/undelete", t, "{\"versions\":[4]}", 204, NULL);
    CU_ASSERT_EQUAL(get_value(t, "s/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "v4");
    /* delete listed versions */
    expect("DELETE", "/v1/secrets/s/x?versions=1,2", t, NULL, 204, NULL);
    expect("GET", "/v1/secrets/s/x?version=1", t, NULL, 404, "secret_version_deleted");
    expect("GET", "/v1/secrets/s/x?version=2", t, NULL, 404, "secret_version_deleted");
    CU_ASSERT_EQUAL(get_value(t, "s/x", 0, out, sizeof(out)), 200);
    /* destroy one: gone for good, undelete cannot bring it back */
    expect("POST", "/v1/secrets/s/x/destroy", t, "{\"versions\":[1,99]}", 204, NULL);
    expect("GET", "/v1/secrets/s/x?version=1", t, NULL, 404, "secret_version_destroyed");
    expect("POST", "/v1/secrets/s/x/undelete", t, "{\"versions\":[1,2]}", 204, NULL);
    expect("GET", "/v1/secrets/s/x?version=1", t, NULL, 404, "secret_version_destroyed");
    CU_ASSERT_EQUAL(get_value(t, "s/x", 2, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "v2");
    CU_ASSERT_FATAL(req("GET", "/v1/secrets/s/x/versions", t, NULL, &r));
    CU_ASSERT_STRING_EQUAL(version_state(&r, 1), "destroyed");
    CU_ASSERT_STRING_EQUAL(version_state(&r, 2), "active");
    CU_ASSERT(bb_json_int(&r, "items.3.version", &n) && n == 1);
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "items.3.destroyed_at"));
    bb_resp_free(&r);
    /* destroying the latest makes GET say so */
    expect("POST", "/v1/secrets/s/x/destroy", t, "{\"versions\":[4]}", 204, NULL);
    expect("GET", "/v1/secrets/s/x", t, NULL, 404, "secret_version_destroyed");
    /* errors */
    expect_field("DELETE", "/v1/secrets/s/x?versions=a", t, NULL, 400, "invalid_request", "versions");
    expect_field("DELETE", "/v1/secrets/s/x?versions=1,,2", t, NULL, 400, "invalid_request", "versions");
    expect_field("DELETE", "/v1/secrets/s/x?versions=0", t, NULL, 400, "invalid_request", "versions");
    expect_field("DELETE", "/v1/secrets/s/x?purge=maybe", t, NULL, 400, "invalid_request", "purge");
    expect_field("DELETE", "/v1/secrets/s/x?purge=true&versions=1", t, NULL, 400, "invalid_request", "versions");
    expect_field("POST", "/v1/secrets/s/x/undelete", t, "{}", 400, "invalid_request", "versions");
    expect_field("POST", "/v1/secrets/s/x/undelete", t, "{\"versions\":[]}", 400, "invalid_request", "versions");
    expect_field("POST", "/v1/secrets/s/x/destroy", t, "{\"versions\":[0]}", 400, "invalid_request", "versions");
    expect_field("POST", "/v1/secrets/s/x/destroy", t, "{\"versions\":[\"1\"]}", 400, "invalid_request", "versions");
    expect_field("POST", "/v1/secrets/s/x/destroy", t, "{\"versions\":[1],\"all\":true}", 400, "invalid_request",
                 "all");
    expect_field("POST", "/v1/secrets/s/x/destroy", t, NULL, 400, "invalid_request", "body");
    expect("DELETE", "/v1/secrets/s/missing", t, NULL, 404, "not_found");
    expect("POST", "/v1/secrets/s/missing/undelete", t, "{\"versions\":[1]}", 404, "not_found");
    expect("POST", "/v1/secrets/s/missing/destroy", t, "{\"versions\":[1]}", 404, "not_found");
    expect("GET", "/v1/secrets/s/missing/versions", t, NULL, 404, "not_found");
    expect("GET", "/v1/secrets/s/x/versions", "t_states_other", NULL, 404, "not_found");
}

static void test_purge(void)
{
    const char *t = "t_purge";
    put_value(t, "p/x", "\"1\"", 201);
    put_value(t, "p/x", "\"2\"", 200);
    put_value(t, "p/y", "\"y\"", 201);
    expect("DELETE", "/v1/secrets/p/x?purge=true", t, NULL, 204, NULL);
    expect("GET", "/v1/secrets/p/x", t, NULL, 404, "not_found");
    expect("GET", "/v1/secrets/p/x?version=1", t, NULL, 404, "not_found");
    expect("GET", "/v1/secrets/p/x/versions", t, NULL, 404, "not_found");
    expect("DELETE", "/v1/secrets/p/x?purge=true", t, NULL, 404, "not_found");
    bb_resp_t r;
    CU_ASSERT_FATAL(req("GET", "/v1/secrets?prefix=p/", t, NULL, &r));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0"), "p/y");
    CU_ASSERT_PTR_NULL(bb_json(&r, "items.1"));
    bb_resp_free(&r);
    /* a new write starts again at version 1 */
    CU_ASSERT_FATAL(req("PUT", "/v1/secrets/p/x", t, "{\"value\":\"new\"}", &r));
    BB_ASSERT_STATUS(&r, 201);
    int64_t v;
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 1);
    bb_resp_free(&r);
    expect("DELETE", "/v1/secrets/p/x?purge=false", t, NULL, 204, NULL); /* a soft delete */
    expect("GET", "/v1/secrets/p/x", t, NULL, 404, "secret_version_deleted");
}

/* ---- config ---- */

static void test_config(void)
{
    const char *t = "t_config";
    for (int i = 1; i <= 5; i++)
        put_value(t, "cfg/x", "\"v\"", i == 1 ? 201 : 200);
    bb_resp_t r;
    CU_ASSERT_FATAL(req("PATCH", "/v1/secrets/cfg/x/config", t,
                        "{\"max_versions\":2,\"rotation\":{\"interval\":\"30d\",\"notify_before\":604800},"
                        "\"custom_metadata\":{\"team\":\"payments\"}}",
                        &r));
    BB_ASSERT_STATUS(&r, 200);
    int64_t n;
    CU_ASSERT(bb_json_int(&r, "max_versions", &n) && n == 2);
    CU_ASSERT(bb_json_int(&r, "pruned_versions", &n) && n == 3);
    CU_ASSERT(bb_json_int(&r, "current_version", &n) && n == 5);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "rotation.interval"), "30d");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "rotation.notify_before"), "7d");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "custom_metadata.team"), "payments");
    bb_resp_free(&r);
    expect("GET", "/v1/secrets/cfg/x?version=3", t, NULL, 404, "not_found");
    expect("GET", "/v1/secrets/cfg/x?version=4", t, NULL, 200, NULL);
    CU_ASSERT_FATAL(req("GET", "/v1/secrets/cfg/x/versions", t, NULL, &r));
    CU_ASSERT(bb_json_int(&r, "oldest_version", &n) && n == 4);
    CU_ASSERT(bb_json_int(&r, "max_versions", &n) && n == 2);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "rotation.interval"), "30d");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "custom_metadata.team"), "payments");
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "items.1"));
    CU_ASSERT_PTR_NULL(bb_json(&r, "items.2"));
    bb_resp_free(&r);
    /* a new version prunes the oldest; the settings stay */
    put_value(t, "cfg/x", "\"v6\"", 200);
    expect("GET", "/v1/secrets/cfg/x?version=4", t, NULL, 404, "not_found");
    CU_ASSERT_FATAL(req("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":null,\"custom_metadata\":null}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(bb_json(&r, "rotation")->type == SV_JSON_NULL);
    CU_ASSERT(bb_json(&r, "custom_metadata")->type == SV_JSON_OBJECT);
    CU_ASSERT(bb_json_int(&r, "max_versions", &n) && n == 2);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("PATCH", "/v1/secrets/cfg/x/config", t, "{\"max_versions\":0}", &r));
    CU_ASSERT(bb_json_int(&r, "max_versions", &n) && n == 0);
    bb_resp_free(&r);
    /* errors */
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"max_versions\":-1}", 400, "invalid_request",
                 "max_versions");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"max_versions\":\"2\"}", 400, "invalid_request",
                 "max_versions");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":{\"interval\":\"soon\"}}", 400,
                 "invalid_request", "rotation.interval");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":{}}", 400, "invalid_request",
                 "rotation.interval");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":{\"interval\":\"36501d\"}}", 400,
                 "invalid_request", "rotation.interval");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":{\"interval\":9223372036854}}", 400,
                 "invalid_request", "rotation.interval");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t,
                 "{\"rotation\":{\"interval\":\"1d\",\"notify_before\":\"2d\"}}", 400, "invalid_request",
                 "rotation.notify_before");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":{\"interval\":\"1d\",\"when\":1}}", 400,
                 "invalid_request", "rotation.when");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"rotation\":\"30d\"}", 400, "invalid_request", "rotation");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"custom_metadata\":{\"a\":[1]}}", 400, "invalid_request",
                 "custom_metadata.a");
    expect_field("PATCH", "/v1/secrets/cfg/x/config", t, "{\"max\":1}", 400, "invalid_request", "max");
    expect("PATCH", "/v1/secrets/cfg/missing/config", t, "{\"max_versions\":1}", 404, "not_found");
    expect("PATCH", "/v1/secrets/cfg//x/config", t, "{\"max_versions\":1}", 400, "invalid_path");
}

/* ---- listing ---- */

/* Follows next_cursor through every page of a list; returns the number of
 * items and checks that they come in order without repeats. */
static int list_all(const char *tenant, const char *prefix, int limit, int *pages)
{
    char url[2048], cursor[1100] = "", last[600] = "";
    int total = 0;
    *pages = 0;
    for (;;) {
        if (cursor[0])
            snprintf(url, sizeof(url), "/v1/secrets?prefix=%s&limit=%d&cursor=%s", prefix, limit, cursor);
        else
            snprintf(url, sizeof(url), "/v1/secrets?prefix=%s&limit=%d", prefix, limit);
        bb_resp_t r;
        if (!req("GET", url, tenant, NULL, &r) || r.status != 200) {
            BB_ASSERT_STATUS(&r, 200);
            bb_resp_free(&r);
            return -1;
        }
        (*pages)++;
        sv_json_t *items = bb_json(&r, "items");
        for (sv_json_t *it = items->u.kids.first; it != NULL; it = it->next) {
            CU_ASSERT(it->type == SV_JSON_STRING);
            CU_ASSERT(strncmp(it->u.str.s, prefix, strlen(prefix)) == 0);
            /* byte order, except among paths too long to be keys as they are */
            if (strlen(last) <= 380 && it->u.str.len <= 380)
                CU_ASSERT(strcmp(last, it->u.str.s) < 0);
            CU_ASSERT(strcmp(last, it->u.str.s) != 0);
            snprintf(last, sizeof(last), "%s", it->u.str.s);
            total++;
        }
        CU_ASSERT(items->u.kids.n <= (size_t)limit);
        const char *next = bb_json_str(&r, "next_cursor");
        snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
        bb_resp_free(&r);
        if (cursor[0] == 0 || *pages > 100)
            break;
    }
    return total;
}

static void test_list(void)
{
    const char *t = "t_list";
    for (int i = 0; i < 25; i++) {
        char p[64];
        snprintf(p, sizeof(p), "pg/item%02d", i);
        put_value(t, p, "\"x\"", 201);
    }
    put_value(t, "pga", "\"x\"", 201);
    put_value(t, "other/a", "\"x\"", 201);
    int pages;
    CU_ASSERT_EQUAL(list_all(t, "pg/", 10, &pages), 25);
    CU_ASSERT_EQUAL(pages, 3);
    CU_ASSERT_EQUAL(list_all(t, "pg", 100, &pages), 26);
    CU_ASSERT_EQUAL(pages, 1);
    CU_ASSERT_EQUAL(list_all(t, "", 7, &pages), 27);
    CU_ASSERT_EQUAL(list_all(t, "pg/item1", 3, &pages), 10);
    CU_ASSERT_EQUAL(list_all(t, "nothing/", 10, &pages), 0);
    /* names only */
    bb_resp_t r;
    CU_ASSERT_FATAL(req("GET", "/v1/secrets?prefix=other/", t, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NULL(strstr(r.body, "value"));
    CU_ASSERT(bb_json(&r, "next_cursor")->type == SV_JSON_NULL);
    bb_resp_free(&r);
    /* a deleted secret is still listed until purged */
    expect("DELETE", "/v1/secrets/other/a", t, NULL, 204, NULL);
    CU_ASSERT_EQUAL(list_all(t, "other/", 10, &pages), 1);
    /* errors */
    expect_field("GET", "/v1/secrets?limit=0", t, NULL, 400, "invalid_request", "limit");
    expect_field("GET", "/v1/secrets?limit=1001", t, NULL, 400, "invalid_request", "limit");
    expect_field("GET", "/v1/secrets?limit=ten", t, NULL, 400, "invalid_request", "limit");
    expect_field("GET", "/v1/secrets?prefix=a%20b", t, NULL, 400, "invalid_request", "prefix");
    expect_field("GET", "/v1/secrets?cursor=garbage", t, NULL, 400, "invalid_request", "cursor");
    expect_field("GET", "/v1/secrets?cursor=", t, NULL, 400, "invalid_request", "cursor"); /* as policies, groups */
    expect_field("GET", "/v1/secrets?cursor=AAAAAQ", t, NULL, 400, "invalid_request", "cursor");
    /* a cursor is bound to its prefix */
    CU_ASSERT_FATAL(req("GET", "/v1/secrets?prefix=pg/&limit=2", t, NULL, &r));
    char cursor[1100], url[1300];
    snprintf(cursor, sizeof(cursor), "%s", bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    snprintf(url, sizeof(url), "/v1/secrets?prefix=pg/&limit=2&cursor=%s", cursor);
    expect("GET", url, t, NULL, 200, NULL);
    snprintf(url, sizeof(url), "/v1/secrets?prefix=other/&limit=2&cursor=%s", cursor);
    expect_field("GET", url, t, NULL, 400, "invalid_request", "cursor");
    snprintf(url, sizeof(url), "/v1/secrets?prefix=pg/&limit=2&cursor=%s", cursor);
    url[strlen(url) - 3] ^= 1; /* tampered */
    expect_field("GET", url, t, NULL, 400, "invalid_request", "cursor");
    /* versions pagination */
    for (int i = 0; i < 5; i++)
        put_value(t, "vp/x", "\"v\"", i == 0 ? 201 : 200);
    CU_ASSERT_FATAL(req("GET", "/v1/secrets/vp/x/versions?limit=2", t, NULL, &r));
    int64_t v;
    CU_ASSERT(bb_json_int(&r, "items.0.version", &v) && v == 5);
    CU_ASSERT(bb_json_int(&r, "items.1.version", &v) && v == 4);
    snprintf(cursor, sizeof(cursor), "%s", bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    snprintf(url, sizeof(url), "/v1/secrets/vp/x/versions?limit=2&cursor=%s", cursor);
    CU_ASSERT_FATAL(req("GET", url, t, NULL, &r));
    CU_ASSERT(bb_json_int(&r, "items.0.version", &v) && v == 3);
    snprintf(cursor, sizeof(cursor), "%s", bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    snprintf(url, sizeof(url), "/v1/secrets/vp/x/versions?limit=2&cursor=%s", cursor);
    CU_ASSERT_FATAL(req("GET", url, t, NULL, &r));
    CU_ASSERT(bb_json_int(&r, "items.0.version", &v) && v == 1);
    CU_ASSERT_PTR_NULL(bb_json(&r, "items.1"));
    CU_ASSERT(bb_json(&r, "next_cursor")->type == SV_JSON_NULL);
    bb_resp_free(&r);
    /* a versions cursor of another secret is refused */
    put_value(t, "vp/y", "\"v\"", 201);
    snprintf(url, sizeof(url), "/v1/secrets/vp/y/versions?cursor=%s", cursor);
    expect_field("GET", url, t, NULL, 400, "invalid_request", "cursor");
    expect_field("GET", "/v1/secrets/vp/x/versions?limit=5000", t, NULL, 400, "invalid_request", "limit");
}

/* ---- tenants ---- */

static void test_tenant_isolation(void)
{
    put_value("iso", "shared/x", "\"tenant-iso\"", 201);
    put_value("iso", "only/iso", "\"x\"", 201);
    put_value("iso2", "mine/a", "\"tenant-iso2\"", 201);
    /* iso2 sees nothing of iso, even where a prefix of one tenant id is the other */
    expect("GET", "/v1/secrets/shared/x", "iso2", NULL, 404, "not_found");
    expect("GET", "/v1/secrets/shared/x?version=1", "iso2", NULL, 404, "not_found");
    expect("GET", "/v1/secrets/shared/x/versions", "iso2", NULL, 404, "not_found");
    expect("DELETE", "/v1/secrets/shared/x", "iso2", NULL, 404, "not_found");
    expect("DELETE", "/v1/secrets/shared/x?purge=true", "iso2", NULL, 404, "not_found");
    expect("POST", "/v1/secrets/shared/x/undelete", "iso2", "{\"versions\":[1]}", 404, "not_found");
    expect("POST", "/v1/secrets/shared/x/destroy", "iso2", "{\"versions\":[1]}", 404, "not_found");
    expect("PATCH", "/v1/secrets/shared/x/config", "iso2", "{\"max_versions\":1}", 404, "not_found");
    expect("GET", "/v1/secrets/mine/a", "iso", NULL, 404, "not_found");
    int pages;
    CU_ASSERT_EQUAL(list_all("iso2", "", 100, &pages), 1);
    CU_ASSERT_EQUAL(list_all("iso", "", 100, &pages), 2);
    CU_ASSERT_EQUAL(list_all("iso2", "shared/", 100, &pages), 0);
    CU_ASSERT_EQUAL(list_all("nobody", "", 100, &pages), 0);
    bb_resp_t r;
    CU_ASSERT_FATAL(req("POST", "/v1/secrets/batch", "iso2", "{\"paths\":[\"shared/x\",\"mine/a\"]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "secrets.0.value"), "tenant-iso2");
    CU_ASSERT_PTR_NULL(bb_json(&r, "secrets.1"));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.0.path"), "shared/x");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.0.code"), "not_found");
    bb_resp_free(&r);
    /* the same path in two tenants: two secrets */
    put_value("iso2", "shared/x", "\"tenant-iso2-x\"", 201);
    char out[64];
    CU_ASSERT_EQUAL(get_value("iso", "shared/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "tenant-iso");
    CU_ASSERT_EQUAL(get_value("iso2", "shared/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "tenant-iso2-x");
    /* a cursor made in one tenant does not work in another, nor in one with no data */
    CU_ASSERT_FATAL(req("GET", "/v1/secrets?limit=1", "iso", NULL, &r));
    char cursor[1100], url[1300];
    snprintf(cursor, sizeof(cursor), "%s", bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    snprintf(url, sizeof(url), "/v1/secrets?limit=1&cursor=%s", cursor);
    expect("GET", url, "iso", NULL, 200, NULL);
    expect_field("GET", url, "iso2", NULL, 400, "invalid_request", "cursor");
    expect_field("GET", url, "nobody", NULL, 400, "invalid_request", "cursor");
    /* nor in the partner scope of a partner with the same name */
    char purl[1400];
    snprintf(purl, sizeof(purl), "/v1/partner/secrets?limit=1&cursor=%s", cursor);
    put_value("iso", "zz", "\"x\"", 201);
    expect("PUT", "/v1/partner/secrets/zz", NULL, NULL, 400, NULL);
    CU_ASSERT_FATAL(preq("PUT", "/v1/partner/secrets/zz", "iso", "{\"value\":\"p\"}", &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(preq("GET", purl, "iso", NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    bb_resp_free(&r);
}

typedef struct {
    bb_server_t *s;
    const char *tenant;
    int i;
    long status;
} racer_t;

static void *racer(void *arg)
{
    racer_t *rc = arg;
    char url[64], body[64];
    snprintf(url, sizeof(url), "/v1/secrets/race/%d", rc->i);
    snprintf(body, sizeof(body), "{\"value\":\"r%d\"}", rc->i);
    bb_resp_t r;
    if (bb_req(rc->s, "PUT", url, rc->s->token, rc->tenant, body, &r))
        rc->status = r.status;
    bb_resp_free(&r);
    return NULL;
}

/* Racing first writes of one new tenant: one data key wins, every write works. */
static void first_write_race(bb_server_t *s, const char *tenant)
{
    enum { N = 8 };
    pthread_t th[N];
    racer_t rc[N];
    for (int i = 0; i < N; i++) {
        rc[i] = (racer_t){s, tenant, i, 0};
        pthread_create(&th[i], NULL, racer, &rc[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(rc[i].status, 201);
    }
    for (int i = 0; i < N; i++) {
        char url[64], want[16];
        snprintf(url, sizeof(url), "/v1/secrets/race/%d", i);
        snprintf(want, sizeof(want), "r%d", i);
        bb_resp_t r;
        CU_ASSERT_FATAL(bb_req(s, "GET", url, s->token, tenant, NULL, &r));
        BB_ASSERT_STATUS(&r, 200);
        const char *v = bb_json_str(&r, "value");
        CU_ASSERT(v != NULL && strcmp(v, want) == 0);
        bb_resp_free(&r);
    }
}

static void test_first_write_race(void)
{
    first_write_race(&srv, "t_race");
}

static void test_tenant_delete(void)
{
    put_value("t_del", "d/a", "\"a\"", 201);
    put_value("t_del", "d/b", "\"b\"", 201);
    put_value("t_keep", "d/a", "\"keep\"", 201);
    /* the tenant's other state: a policy, an identity, rate-limit overrides */
    const char *pol = "{\"rules\":[{\"path\":\"d/**\",\"permissions\":[\"read\"]}],"
                      "\"bindings\":{\"identities\":[\"sa:app\"]}}";
    bb_resp_t r;
    CU_ASSERT_FATAL(req("PUT", "/v1/policies/p1", "t_del", pol, &r));
    CU_ASSERT(r.status == 200 || r.status == 201);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("PUT", "/v1/identity/identities/sa:app", "t_del", "{\"type\":\"service_account\"}", &r));
    CU_ASSERT(r.status == 200 || r.status == 201);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("PUT", "/v1/tenants/t_del/rate-limits", NULL, "{\"read\":\"7/min\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("PUT", "/v1/policies/p1", "t_keep", pol, &r));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("DELETE", "/v1/tenants/t_del", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "tenant_id"), "t_del");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "status"), "deleted");
    bool kd;
    CU_ASSERT(bb_json_bool(&r, "key_destroyed", &kd) && kd);
    bb_resp_free(&r);
    expect("GET", "/v1/secrets/d/a", "t_del", NULL, 404, "not_found");
    expect("GET", "/v1/secrets/d/a/versions", "t_del", NULL, 404, "not_found");
    int pages;
    CU_ASSERT_EQUAL(list_all("t_del", "", 100, &pages), 0);
    char out[32];
    CU_ASSERT_EQUAL(get_value("t_keep", "d/a", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "keep");
    expect("GET", "/v1/policies/p1", "t_del", NULL, 404, "not_found");
    expect("GET", "/v1/identity/identities/sa:app", "t_del", NULL, 404, "not_found");
    CU_ASSERT_FATAL(req("GET", "/v1/tenants/t_del/rate-limits", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NULL(strstr(r.body, "7/min"));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("GET", "/v1/policies/p1", "t_keep", NULL, &r)); /* other tenants keep theirs */
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    expect("DELETE", "/v1/tenants/t_del", NULL, NULL, 404, "not_found");
    expect("DELETE", "/v1/tenants/never_existed", NULL, NULL, 404, "not_found");
    expect_field("DELETE", "/v1/tenants/bad%20id", NULL, NULL, 400, "invalid_request", "id");
    /* the tenant can start again, under a new data key */
    CU_ASSERT_FATAL(req("PUT", "/v1/secrets/d/a", "t_del", "{\"value\":\"fresh\"}", &r));
    BB_ASSERT_STATUS(&r, 201);
    int64_t v;
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 1);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get_value("t_del", "d/a", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "fresh");
}

/* No secret, only a policy and rate-limit overrides: still a tenant to delete. */
static void test_tenant_delete_without_secrets(void)
{
    const char *pol = "{\"rules\":[{\"path\":\"**\",\"permissions\":[\"read\"]}]}";
    expect("PUT", "/v1/policies/only", "t_nosecrets", pol, 201, NULL);
    expect("PUT", "/v1/tenants/t_nosecrets/rate-limits", NULL, "{\"read\":\"7/min\"}", 200, NULL);
    bb_resp_t r;
    CU_ASSERT_FATAL(req("DELETE", "/v1/tenants/t_nosecrets", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "status"), "deleted");
    int64_t n = 0;
    CU_ASSERT(bb_json_int(&r, "records_deleted", &n) && n == 2); /* the policy and the overrides */
    bb_resp_free(&r);
    expect("GET", "/v1/policies/only", "t_nosecrets", NULL, 404, "not_found");
    CU_ASSERT_FATAL(req("GET", "/v1/tenants/t_nosecrets/rate-limits", NULL, NULL, &r));
    CU_ASSERT_PTR_NULL(strstr(r.body, "7/min"));
    bb_resp_free(&r);
    expect("DELETE", "/v1/tenants/t_nosecrets", NULL, NULL, 404, "not_found");
    expect("PUT", "/v1/policies/only", "t_nosecrets", pol, 201, NULL); /* writable at once: nothing was shredded */
}

/* More records than one deletion unit takes: the key goes at once, the data in the background. */
static void test_tenant_delete_large(void)
{
    for (int i = 0; i < 520; i++) {
        char p[32];
        snprintf(p, sizeof(p), "bulk/%04d", i);
        put_value("t_big", p, "\"x\"", 201);
    }
    bb_resp_t r;
    CU_ASSERT_FATAL(req("DELETE", "/v1/tenants/t_big", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 202);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "status"), "deleting");
    bb_resp_free(&r);
    /* readers see nothing at once: the key is gone */
    expect("GET", "/v1/secrets/bulk/0519", "t_big", NULL, 404, "not_found");
    int pages;
    CU_ASSERT_EQUAL(list_all("t_big", "", 100, &pages), 0);
    /* the deletion finishes: the tenant can write again */
    long st = 0;
    for (int i = 0; i < 100 && st != 201; i++) {
        CU_ASSERT_FATAL(req("PUT", "/v1/secrets/bulk/0000", "t_big", "{\"value\":\"again\"}", &r));
        st = r.status;
        if (st != 201) {
            BB_ASSERT_STATUS(&r, 409); /* still deleting */
            BB_ASSERT_CODE(&r, "conflict");
            usleep(50000);
        }
        bb_resp_free(&r);
    }
    CU_ASSERT_EQUAL(st, 201);
    CU_ASSERT_EQUAL(list_all("t_big", "", 1000, &pages), 1);
}

/* A deletion stopped half-way (its background step's commit fails) keeps the
 * tenant in "deleting" until the next start finishes it: meanwhile every write
 * of the tenant is refused, the kinds that the first step purged too, so that
 * none of them outlives the deletion. */
static void test_tenant_delete_interrupted(void)
{
    const char *t = "t_int";
    for (int i = 0; i < 520; i++) {
        char p[32];
        snprintf(p, sizeof(p), "bulk/%04d", i);
        put_value(t, p, "\"x\"", 201);
    }
    const char *pol = "{\"rules\":[{\"path\":\"**\",\"permissions\":[\"read\"]}]}";
    bb_resp_t r;
    CU_ASSERT_FATAL(req("PUT", "/v1/policies/p1", t, pol, &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    /* commit 1: this request's own entry; 2: the DELETE; 3: its background step */
    CU_ASSERT_FATAL(req("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"EIO\",\"nth\":3,\"count\":1}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("DELETE", "/v1/tenants/t_int", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 202);
    bb_resp_free(&r);
    usleep(300000); /* the background step has failed by now; had it not, the tenant would be writable below */
    expect("DELETE", "/v1/sys/faults", NULL, NULL, 204, NULL);
    expect("PUT", "/v1/secrets/bulk/0000", t, "{\"value\":\"again\"}", 409, "conflict");
    /* bulk/0519's record outlived the first step (it deleted versions first): it reads as gone all the same */
    expect("GET", "/v1/secrets/bulk/0519", t, NULL, 404, "not_found");
    expect("GET", "/v1/secrets/bulk/0519/versions", t, NULL, 404, "not_found");
    expect("PATCH", "/v1/secrets/bulk/0519/config", t, "{\"max_versions\":5}", 409, "conflict");
    expect("POST", "/v1/secrets/bulk/0519/undelete", t, "{\"versions\":[1]}", 409, "conflict");
    expect("POST", "/v1/secrets/bulk/0519/destroy", t, "{\"versions\":[1]}", 409, "conflict");
    expect("DELETE", "/v1/secrets/bulk/0519", t, NULL, 409, "conflict");
    expect("DELETE", "/v1/secrets/bulk/0519?purge=true", t, NULL, 409, "conflict");
    expect("PUT", "/v1/policies/p2", t, pol, 409, "conflict");
    expect("DELETE", "/v1/policies/p1", t, NULL, 409, "conflict");
    expect("PUT", "/v1/identity/identities/sa:late", t, "{\"type\":\"service_account\"}", 409, "conflict");
    expect("PUT", "/v1/identity/groups/g_late", t, "{\"members\":[\"sa:late\"]}", 409, "conflict");
    expect("PUT", "/v1/tenants/t_int/rate-limits", NULL, "{\"read\":\"7/min\"}", 409, "conflict");
    CU_ASSERT_FATAL(req("PUT", "/v1/policies/p2", t, pol, &r));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "being deleted"));
    bb_resp_free(&r);
    /* the next start finishes the deletion; nothing written meanwhile is left */
    CU_ASSERT_EQUAL(bb_stop(&srv), 0);
    CU_ASSERT_FATAL(bb_start(&srv, test_env));
    long st = 0;
    for (int i = 0; i < 100 && st != 201; i++) {
        CU_ASSERT_FATAL(req("PUT", "/v1/secrets/bulk/0000", t, "{\"value\":\"again\"}", &r));
        st = r.status;
        bb_resp_free(&r);
        if (st != 201)
            usleep(50000);
    }
    CU_ASSERT_EQUAL(st, 201);
    int pages;
    CU_ASSERT_EQUAL(list_all(t, "", 1000, &pages), 1);
    expect("GET", "/v1/policies/p1", t, NULL, 404, "not_found");
    expect("GET", "/v1/policies/p2", t, NULL, 404, "not_found");
    expect("GET", "/v1/identity/identities/sa:late", t, NULL, 404, "not_found");
    expect("GET", "/v1/identity/groups/g_late", t, NULL, 404, "not_found");
    CU_ASSERT_FATAL(req("GET", "/v1/tenants/t_int/rate-limits", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NULL(strstr(r.body, "7/min"));
    bb_resp_free(&r);
    expect("PUT", "/v1/policies/p2", t, pol, 201, NULL);
}

/* ---- batch ---- */

static void test_batch(void)
{
    const char *t = "t_batch";
    put_value(t, "b/one", "\"1\"", 201);
    put_value(t, "b/two", "{\"k\":\"2\"}", 201);
    put_value(t, "b/del", "\"d\"", 201);
    expect("DELETE", "/v1/secrets/b/del", t, NULL, 204, NULL);
    put_value(t, "b/gone", "\"g\"", 201);
    expect("POST", "/v1/secrets/b/gone/destroy", t, "{\"versions\":[1]}", 204, NULL);
    bb_resp_t r;
    CU_ASSERT_FATAL(req("POST", "/v1/secrets/batch", t,
                        "{\"paths\":[\"b/one\",\"b/missing\",\"b/two\",\"bad//path\",\"b/del\",\"b/gone\",\"b/one\"]}",
                        &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "secrets.0.path"), "b/one");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "secrets.0.value"), "1");
    int64_t v;
    CU_ASSERT(bb_json_int(&r, "secrets.0.version", &v) && v == 1);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "secrets.1.value.k"), "2");
    CU_ASSERT_PTR_NULL(bb_json(&r, "secrets.2")); /* b/one, given twice, is answered once */
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.0.path"), "b/missing");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.0.code"), "not_found");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.1.code"), "invalid_path");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.2.code"), "secret_version_deleted");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.3.code"), "secret_version_destroyed");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("POST", "/v1/secrets/batch", t, "{\"paths\":[]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_EQUAL(strcmp(r.body, "{\"secrets\":[],\"errors\":[]}"), 0);
    bb_resp_free(&r);
    /* 100 paths is the most */
    char body[4096];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"paths\":[\"b/one\"");
    for (int i = 1; i < 100; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"b/x%d\"", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    CU_ASSERT_FATAL(req("POST", "/v1/secrets/batch", t, body, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "secrets.0"));
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "errors.98"));
    bb_resp_free(&r);
    snprintf(body + n, sizeof(body) - n, ",\"b/two\"]}");
    expect_field("POST", "/v1/secrets/batch", t, body, 400, "invalid_request", "paths");
    expect_field("POST", "/v1/secrets/batch", t, "{\"paths\":\"b/one\"}", 400, "invalid_request", "paths");
    expect_field("POST", "/v1/secrets/batch", t, "{\"paths\":[1]}", 400, "invalid_request", "paths");
    expect_field("POST", "/v1/secrets/batch", t, "{}", 400, "invalid_request", "paths");
    expect_field("POST", "/v1/secrets/batch", t, "{\"paths\":[],\"x\":1}", 400, "invalid_request", "x");
    expect("POST", "/v1/secrets/batch", NULL, "{\"paths\":[]}", 400, "tenant_required");
    expect("GET", "/v1/secrets/batch", t, NULL, 404, "not_found"); /* a secret named batch, absent here */
}

/* The audit entry of a batch names what it read, first, and nothing a request
 * smuggles in; one answer is at most 8 x MAX_SECRET_BYTES bytes. */
static void test_batch_audit_and_size(void)
{
    bb_server_t s = {0};
    const char *env[] = {"MAX_SECRET_BYTES=1000", NO_LIMITS, NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    char value[1100], body[2048];
    memset(value, 'v', 900);
    value[900] = 0;
    bb_resp_t r;
    for (int i = 0; i < 12; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/secrets/big/%02d", i);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", value);
        CU_ASSERT_FATAL(bb_req(&s, "PUT", path, s.token, "t_bb", body, &r));
        BB_ASSERT_STATUS(&r, 201);
        bb_resp_free(&r);
    }
    /* a NUL in a path: that path names nothing, and the entry names the secret read */
    const char *cases[][3] = {
        {"bb-batch-nul", "{\"paths\":[\"\\u0000\",\"big/00\"]}", "big/00"},
        {"bb-batch-forge", "{\"paths\":[\"big/01\\u0000x\"]}", NULL},
        {"bb-batch-order", "{\"paths\":[\"big/missing\",\"big/02\",\"big/02\"]}", "big/02,big/missing"},
    };
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s.token);
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
        char rid[64];
        snprintf(rid, sizeof(rid), "X-Request-ID: %s", cases[i][0]);
        const char *h[] = {rid, auth, "X-ScaiVault-Tenant: t_bb", "Content-Type: application/json", NULL};
        CU_ASSERT_FATAL(bb_req_h(&s, "POST", "/v1/secrets/batch", h, cases[i][1], strlen(cases[i][1]), &r));
        BB_ASSERT_STATUS(&r, 200);
        bb_resp_free(&r);
        char q[128];
        snprintf(q, sizeof(q), "/v1/audit/logs?request_id=%s", cases[i][0]);
        CU_ASSERT_FATAL(bb_req(&s, "GET", q, s.token, "t_bb", NULL, &r));
        const char *path = bb_json_str(&r, "items.0.path");
        CU_ASSERT(cases[i][2] == NULL ? path == NULL : path != NULL && strcmp(path, cases[i][2]) == 0);
        bb_resp_free(&r);
    }
    /* twelve values of 900 bytes: the answer stops near 8,000 bytes of it, the rest is
     * payload_too_large, every path answered once */
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"paths\":[");
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"big/%02d\"", i ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    CU_ASSERT_FATAL(bb_req(&s, "POST", "/v1/secrets/batch", s.token, "t_bb", body, &r));
    BB_ASSERT_STATUS(&r, 200);
    int read = 0, refused = 0;
    for (int i = 0; i < 12; i++) {
        char k[32];
        snprintf(k, sizeof(k), "secrets.%d", i);
        read += bb_json(&r, k) != NULL;
        snprintf(k, sizeof(k), "errors.%d.code", i);
        const char *code = bb_json_str(&r, k);
        if (code != NULL) {
            refused++;
            CU_ASSERT_STRING_EQUAL(code, "payload_too_large");
        }
    }
    CU_ASSERT_EQUAL(read + refused, 12);
    CU_ASSERT(read > 0 && refused > 0);
    /* the answer stays within 8,000 bytes (its errors part aside) and stopped only when the next
     * secret would not fit */
    const char *errs = strstr(r.body, "\"errors\"");
    CU_ASSERT_FATAL(errs != NULL && read > 0);
    size_t secrets_len = (size_t)(errs - r.body), per = secrets_len / (size_t)read;
    CU_ASSERT(secrets_len <= 8000 + 2); /* the array's closing "],": not counted while it fills */
    CU_ASSERT(secrets_len + per > 8000);
    bb_resp_free(&r);
    bb_stop(&s);
    bb_cleanup(&s);
}

/* ---- partner scope ---- */

static void expect_p(const char *method, const char *path, const char *partner, const char *body, int status,
                     const char *code)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(preq(method, path, partner, body, &r));
    BB_ASSERT_STATUS(&r, status);
    if (code != NULL)
        BB_ASSERT_CODE(&r, code);
    bb_resp_free(&r);
}

static void test_partner(void)
{
    expect_p("PUT", "/v1/partner/secrets/shared/api-key", "acme", "{\"value\":\"partner-value\"}", 201, NULL);
    expect_p("PUT", "/v1/partner/secrets/shared/api-key", "acme", "{\"value\":\"partner-value-2\"}", 200, NULL);
    bb_resp_t r;
    CU_ASSERT_FATAL(preq("GET", "/v1/partner/secrets/shared/api-key", "acme", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), "partner-value-2");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "path"), "shared/api-key");
    bb_resp_free(&r);
    /* the partner named twice: refused, whichever comes first */
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    const char *two[] = {auth, "X-ScaiVault-Partner: acme", "X-ScaiVault-Partner: other", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/partner/secrets/shared/api-key", two, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "X-ScaiVault-Partner");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(preq("GET", "/v1/partner/secrets/shared/api-key?version=1", "acme", NULL, &r));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), "partner-value");
    bb_resp_free(&r);
    /* partners and tenants never meet, not even a tenant called acme */
    expect_p("GET", "/v1/partner/secrets/shared/api-key", "other", NULL, 404, "not_found");
    expect("GET", "/v1/secrets/shared/api-key", "acme", NULL, 404, "not_found");
    put_value("acme", "shared/api-key", "\"tenant-value\"", 201);
    CU_ASSERT_FATAL(preq("GET", "/v1/partner/secrets/shared/api-key", "acme", NULL, &r));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), "partner-value-2");
    bb_resp_free(&r);
    /* the other verbs */
    CU_ASSERT_FATAL(preq("GET", "/v1/partner/secrets?prefix=shared/", "acme", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0"), "shared/api-key");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(preq("GET", "/v1/partner/secrets/shared/api-key/versions", "acme", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    int64_t n;
    CU_ASSERT(bb_json_int(&r, "current_version", &n) && n == 2);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(preq("POST", "/v1/partner/secrets/batch", "acme", "{\"paths\":[\"shared/api-key\",\"x\"]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "secrets.0.value"), "partner-value-2");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "errors.0.code"), "not_found");
    bb_resp_free(&r);
    expect_p("PATCH", "/v1/partner/secrets/shared/api-key/config", "acme", "{\"max_versions\":5}", 200, NULL);
    expect_p("DELETE", "/v1/partner/secrets/shared/api-key", "acme", NULL, 204, NULL);
    expect_p("GET", "/v1/partner/secrets/shared/api-key", "acme", NULL, 404, "secret_version_deleted");
    expect_p("POST", "/v1/partner/secrets/shared/api-key/undelete", "acme", "{\"versions\":[2]}", 204, NULL);
    expect_p("POST", "/v1/partner/secrets/shared/api-key/destroy", "acme", "{\"versions\":[1]}", 204, NULL);
    expect_p("GET", "/v1/partner/secrets/shared/api-key?version=1", "acme", NULL, 404, "secret_version_destroyed");
    expect_p("DELETE", "/v1/partner/secrets/shared/api-key?purge=true", "acme", NULL, 204, NULL);
    expect_p("GET", "/v1/partner/secrets/shared/api-key", "acme", NULL, 404, "not_found");
    /* the partner must be named, validly */
    CU_ASSERT_FATAL(preq("GET", "/v1/partner/secrets/shared/api-key", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "X-ScaiVault-Partner");
    bb_resp_free(&r);
    expect_p("GET", "/v1/partner/secrets/shared/api-key", "bad partner", NULL, 400, "invalid_request");
    expect_p("PUT", "/v1/partner/secrets/a//b", "acme", "{\"value\":\"x\"}", 400, "invalid_path");
    /* the tenant still has its own secret */
    char out[64];
    CU_ASSERT_EQUAL(get_value("acme", "shared/api-key", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "tenant-value");
}

/* A sub-resource URL with a method it does not take: 405 with the methods it
 * does take, in the tenant and the partner scope (finding: GET .../undelete
 * reached GET {path*} and was 400 invalid_path, and the Allow of PATCH
 * .../undelete listed GET, PUT and DELETE, which all failed there too). */
static void test_sub_resource_methods(void)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"GET", "app/db/undelete", "POST"},    {"PATCH", "app/db/undelete", "POST"}, {"PUT", "app/db/undelete", "POST"},
        {"DELETE", "app/db/undelete", "POST"}, {"PUT", "app/db/config", "PATCH"},    {"GET", "app/db/config", "PATCH"},
        {"DELETE", "app/db/versions", "GET"},  {"POST", "app/db/versions", "GET"},   {"GET", "app/db/destroy", "POST"},
        {"PUT", "app/versions", "GET"}, /* the versions of "app" */
        {"DELETE", "app/config", "PATCH"},
    };
    put_value("t_sub", "app/db", "\"v\"", 201);
    expect_p("PUT", "/v1/partner/secrets/app/db", "acme_sub", "{\"value\":\"v\"}", 201, NULL);
    for (int partner = 0; partner < 2; partner++) {
        for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
            char url[200], allow[64];
            snprintf(url, sizeof(url), "%s/%s", partner ? "/v1/partner/secrets" : "/v1/secrets", cases[i].path);
            const char *body = strcmp(cases[i].method, "GET") == 0 ? NULL : "{\"value\":\"x\",\"versions\":[1]}";
            bb_resp_t r;
            CU_ASSERT_FATAL(partner ? preq(cases[i].method, url, "acme_sub", body, &r)
                                    : req(cases[i].method, url, "t_sub", body, &r));
            if (r.status != 405)
                fprintf(stderr, "\n  %s %s: %ld\n", cases[i].method, url, r.status);
            BB_ASSERT_STATUS(&r, 405);
            BB_ASSERT_CODE(&r, "method_not_allowed");
            CU_ASSERT(bb_header(&r, "allow", allow, sizeof(allow)) != NULL && strcmp(allow, cases[i].allow) == 0);
            const char *details = bb_json_str(&r, "error.details.allow");
            CU_ASSERT(details != NULL && strcmp(details, cases[i].allow) == 0);
            bb_resp_free(&r);
        }
    }
    /* nothing changed; the method the Allow header names works */
    char out[16];
    CU_ASSERT_EQUAL(get_value("t_sub", "app/db", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "v");
    expect("GET", "/v1/secrets/app/db/versions", "t_sub", NULL, 200, NULL);
    expect("DELETE", "/v1/secrets/app/db", "t_sub", NULL, 204, NULL);
    expect("POST", "/v1/secrets/app/db/undelete", "t_sub", "{\"versions\":[1]}", 204, NULL);
    expect_p("GET", "/v1/partner/secrets/app/db/versions", "acme_sub", NULL, 200, NULL);
    /* too few segments for a sub-resource, or no such sub-resource: the path is
     * the secret's, and not a valid one */
    expect("PUT", "/v1/secrets/versions", "t_sub", "{\"value\":\"x\"}", 400, "invalid_path");
    expect("GET", "/v1/secrets/undelete", "t_sub", NULL, 400, "invalid_path");
    expect("GET", "/v1/secrets/app/db/rotate", "t_sub", NULL, 400, "invalid_path");
    expect_p("PUT", "/v1/partner/secrets/config", "acme_sub", "{\"value\":\"x\"}", 400, "invalid_path");
}

/* ---- paths of many segments ---- */

/* "a/a/.../a" with n segments into out (2n bytes) */
static void segments(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, "a/", 2);
    out[2 * n - 1] = 0;
}

/* Every route of one secret, in the tenant scope or a partner's, on path. */
static void every_route(const char *path, bool partner)
{
    const char *base = partner ? "/v1/partner/secrets" : "/v1/secrets";
    const char *t = partner ? "acme" : "t_segs";
    void (*ex)(const char *, const char *, const char *, const char *, int, const char *) = partner ? expect_p : expect;
    char url[1200];
    snprintf(url, sizeof(url), "%s/%s", base, path);
    ex("PUT", url, t, "{\"value\":\"v1\"}", 201, NULL);
    ex("PUT", url, t, "{\"value\":\"v2\"}", 200, NULL);
    bb_resp_t r;
    CU_ASSERT_FATAL(partner ? preq("GET", url, t, NULL, &r) : req("GET", url, t, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(bb_json_str(&r, "value") != NULL && strcmp(bb_json_str(&r, "value"), "v2") == 0);
    CU_ASSERT(bb_json_str(&r, "path") != NULL && strcmp(bb_json_str(&r, "path"), path) == 0);
    bb_resp_free(&r);
    snprintf(url, sizeof(url), "%s/%s/versions", base, path);
    CU_ASSERT_FATAL(partner ? preq("GET", url, t, NULL, &r) : req("GET", url, t, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    int64_t n;
    CU_ASSERT(bb_json_int(&r, "current_version", &n) && n == 2);
    bb_resp_free(&r);
    snprintf(url, sizeof(url), "%s/%s/config", base, path);
    ex("PATCH", url, t, "{\"max_versions\":5}", 200, NULL);
    snprintf(url, sizeof(url), "%s/%s", base, path);
    ex("DELETE", url, t, NULL, 204, NULL);
    snprintf(url, sizeof(url), "%s/%s/undelete", base, path);
    ex("POST", url, t, "{\"versions\":[2]}", 204, NULL);
    snprintf(url, sizeof(url), "%s/%s/destroy", base, path);
    ex("POST", url, t, "{\"versions\":[1]}", 204, NULL);
}

/* A path's segments are limited only by its 512 bytes: 127 and 256 segments
 * reach every route (a fixed array in the router once made them 404), and a
 * longer path, however long, gets 400 invalid_path from the handler. */
static void test_many_segments(void)
{
    char path[600];
    segments(path, 127);
    every_route(path, false);
    every_route(path, true);
    segments(path, 256); /* 511 bytes: the most segments a path can have */
    every_route(path, false);
    every_route(path, true);
    char url[1300];
    segments(path, 300); /* 599 bytes */
    snprintf(url, sizeof(url), "/v1/secrets/%s", path);
    expect("PUT", url, "t_segs", "{\"value\":\"x\"}", 400, "invalid_path");
    expect("GET", url, "t_segs", NULL, 400, "invalid_path");
    snprintf(url, sizeof(url), "/v1/partner/secrets/%s/versions", path);
    expect_p("GET", url, "acme", NULL, 400, "invalid_path");
    memset(path, 'p', 599); /* one long segment */
    snprintf(url, sizeof(url), "/v1/secrets/%s/config", path);
    expect("PATCH", url, "t_segs", "{\"max_versions\":5}", 400, "invalid_path");
    /* 100 KB of segments */
    size_t big_n = 50000;
    char *big = malloc(strlen("/v1/secrets/") + 2 * big_n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    strcpy(big, "/v1/secrets/");
    segments(big + strlen(big), big_n);
    expect("GET", big, "t_segs", NULL, 400, "invalid_path");
    free(big);
}

/* ---- storage faults ---- */

static void test_storage_faults(void)
{
    const char *t = "t_faults";
    put_value(t, "f/x", "\"before\"", 201);
    /* nth 2: the arming request's own audit commit is the next commit */
    expect("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"ENOSPC\",\"nth\":2}", 200, NULL);
    expect("PUT", "/v1/secrets/f/x", t, "{\"value\":\"during\"}", 507, "insufficient_storage");
    char out[32];
    CU_ASSERT_EQUAL(get_value(t, "f/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "before");
    expect("GET", "/v1/secrets/f/x?version=2", t, NULL, 404, "not_found");
    expect("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"EIO\",\"nth\":2}", 200, NULL);
    expect("PUT", "/v1/secrets/f/x", t, "{\"value\":\"during\"}", 503, "storage_unavailable");
    CU_ASSERT_EQUAL(get_value(t, "f/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "before");
    /* the first write of a tenant (its data key) fails cleanly too */
    /* nth 2: the arming request's own audit commit is the next commit */
    expect("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"ENOSPC\",\"nth\":2}", 200, NULL);
    expect("PUT", "/v1/secrets/f/x", "t_faults_new", "{\"value\":\"x\"}", 507, "insufficient_storage");
    /* and so it does when the disk stays full for the failure's own audit entry: the cause is told, not
     * audit_unavailable */
    expect("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"ENOSPC\",\"nth\":2,\"count\":2}", 200, NULL);
    expect("PUT", "/v1/secrets/f/x", "t_faults_new2", "{\"value\":\"x\"}", 507, "insufficient_storage");
    expect("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"EIO\",\"nth\":2,\"count\":2}", 200, NULL);
    expect("PUT", "/v1/secrets/f/x", "t_faults_new2", "{\"value\":\"x\"}", 503, "storage_unavailable");
    expect("GET", "/v1/secrets/f/x", "t_faults_new2", NULL, 404, "not_found");
    expect("POST", "/v1/sys/faults", NULL, "{\"op\":\"commit\",\"errno\":\"ENOSPC\",\"nth\":2,\"count\":0}", 200, NULL);
    expect("DELETE", "/v1/secrets/f/x", t, NULL, 507, "insufficient_storage");
    expect("PATCH", "/v1/secrets/f/x/config", t, "{\"max_versions\":1}", 507, "insufficient_storage");
    expect("DELETE", "/v1/sys/faults", NULL, NULL, 204, NULL);
    put_value(t, "f/x", "\"after\"", 200);
    CU_ASSERT_EQUAL(get_value(t, "f/x", 0, out, sizeof(out)), 200);
    CU_ASSERT_STRING_EQUAL(out, "after");
    put_value("t_faults_new", "f/x", "\"x\"", 201);
    bb_resp_t r;
    CU_ASSERT_FATAL(req("GET", "/v1/secrets/f/x/versions", t, NULL, &r));
    int64_t n;
    CU_ASSERT(bb_json_int(&r, "current_version", &n) && n == 2);
    bb_resp_free(&r);
}

/* ---- plaintext hygiene ---- */

static void test_plaintext_hygiene(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    char marker[40] = "MRK", obj_marker[40] = "OBJ", md_marker[40] = "MDM";
    bb_random_hex(marker + 3, 24);
    bb_random_hex(obj_marker + 3, 24);
    bb_random_hex(md_marker + 3, 24);
    char body[512];
    snprintf(body, sizeof(body), "{\"value\":\"%s\",\"metadata\":{\"note\":\"%s\"}}", marker, md_marker);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/h/str", s.token, "t_hyg", body, &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    snprintf(body, sizeof(body), "{\"value\":{\"user\":\"u\",\"password\":\"%s\",\"nested\":{\"k\":[\"%s\"]}}}",
             obj_marker, obj_marker);
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/h/obj", s.token, "t_hyg", body, &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/h/str", s.token, "t_hyg", NULL, &r));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), marker);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/h/obj", s.token, "t_hyg", NULL, &r));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value.password"), obj_marker);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets?prefix=h/", s.token, "t_hyg", NULL, &r));
    CU_ASSERT_PTR_NULL(strstr(r.body, marker));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/h/str/versions", s.token, "t_hyg", NULL, &r));
    CU_ASSERT_PTR_NULL(strstr(r.body, marker));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "POST", "/v1/secrets/batch", s.token, "t_hyg", "{\"paths\":[\"h/str\",\"h/obj\"]}", &r));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, marker));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, obj_marker));
    bb_resp_free(&r);
    /* a failed write (bad metadata) with the marker in it */
    snprintf(body, sizeof(body), "{\"value\":\"%s\",\"metadata\":{\"n\":1}}", marker);
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/h/bad", s.token, "t_hyg", body, &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    /* the data file (which holds the change log too), the key file, the log */
    CU_ASSERT_FALSE(bb_dir_contains(s.data_dir, marker, strlen(marker)));
    CU_ASSERT_FALSE(bb_dir_contains(s.data_dir, obj_marker, strlen(obj_marker)));
    CU_ASSERT_FALSE(bb_dir_contains(s.data_dir, md_marker, strlen(md_marker)));
    CU_ASSERT_FALSE(bb_file_contains_str(s.log_path, marker));
    CU_ASSERT_FALSE(bb_file_contains_str(s.log_path, obj_marker));
    CU_ASSERT_FALSE(bb_file_contains_str(s.log_path, md_marker));
    /* the paths are there (they are not secret), so the search does find things */
    CU_ASSERT_TRUE(bb_dir_contains(s.data_dir, "h/str", 5));
    /* and the secrets survive a restart (the key file is reused) */
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/h/str", s.token, "t_hyg", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), marker);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

/* ---- the local KMS key file ---- */

static void test_kms_key_file(void)
{
    const char *dir = sv_test_tmpdir("kmsfile");
    char key[600], envk[700], envd[700], out[2048];
    snprintf(key, sizeof(key), "%s/master.key", dir);
    snprintf(envk, sizeof(envk), "KMS_LOCAL_KEY_FILE=%s", key);
    snprintf(envd, sizeof(envd), "SCAIVAULT_DATA_DIR=%s/data", dir);
    const char *args[] = {"server", NULL};
    /* readable by others: refuse to start, naming the file */
    FILE *f = fopen(key, "w");
    fwrite("0123456789abcdef0123456789abcdef", 1, 32, f);
    fclose(f);
    chmod(key, 0644);
    const char *env_run[] = {envk, envd, "SCAIVAULT_LISTEN=127.0.0.1:0", NULL};
    const char *env[] = {envk, envd, NULL};
    CU_ASSERT_EQUAL(bb_run(args, env_run, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, key));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "KMS_LOCAL_KEY_FILE"));
    chmod(key, 0640);
    CU_ASSERT_EQUAL(bb_run(args, env_run, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, key));
    /* the wrong size */
    chmod(key, 0600);
    CU_ASSERT_EQUAL(truncate(key, 31), 0);
    CU_ASSERT_EQUAL(bb_run(args, env_run, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "32 bytes"));
    unlink(key);
    /* missing: created with mode 0600 */
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, env));
    struct stat st;
    CU_ASSERT_FATAL(stat(key, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 32);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/k/x", s.token, "t_kms", "{\"value\":\"v\"}", &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    /* another key: the stored data key would not unwrap: the server refuses to start */
    f = fopen(key, "w");
    fwrite("ffffffffffffffffffffffffffffffff", 1, 32, f);
    fclose(f);
    chmod(key, 0600);
    CU_ASSERT_EQUAL(bb_run(args, env_run, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "holds KMS key"));
    bb_cleanup(&s);
    sv_test_rmdir(dir);
}

/* ---- a KMS that cannot be reached ---- */

static void test_kms_unreachable(void)
{
    /* the suite's server runs with SCAIVAULT_TEST_FAULTS=true: make the next
     * key-provider call fail as if the provider were down */
    bb_resp_t r;
    CU_ASSERT_FATAL(req("POST", "/v1/sys/faults", NULL, "{\"op\":\"kms\",\"errno\":\"EIO\",\"nth\":1,\"count\":1}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    /* a tenant's first write needs its data key wrapped by the KMS */
    expect("PUT", "/v1/secrets/k/a", "t_kms_down", "{\"value\":\"x\"}", 503, "kms_unavailable");
    expect("GET", "/v1/secrets/k/a", "t_kms_down", NULL, 404, "not_found"); /* nothing was written */
    /* the provider is back: the same write succeeds */
    put_value("t_kms_down", "k/a", "\"x\"", 201);
}

/* ---- memory for plaintext runs out ---- */

/* Memory for plaintext is capped (src/secmem.c: too many requests in flight
 * would exhaust the process's memory mappings): a request that gets none is
 * a retryable 503, not a 500, and nothing of it is kept. */
static void test_out_of_secure_memory(void)
{
    put_value("t_oom", "m/a", "\"v\"", 201);
    const struct {
        const char *method, *path, *body;
    } cases[] = {{"GET", "/v1/secrets/m/a", NULL}, {"PUT", "/v1/secrets/m/b", "{\"value\":\"w\"}"}};
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
        bb_resp_t r;
        CU_ASSERT_FATAL(
            req("POST", "/v1/sys/faults", NULL, "{\"op\":\"malloc\",\"errno\":\"ENOMEM\",\"nth\":1,\"count\":1}", &r));
        BB_ASSERT_STATUS(&r, 200);
        bb_resp_free(&r);
        CU_ASSERT_FATAL(req(cases[i].method, cases[i].path, "t_oom", cases[i].body, &r));
        BB_ASSERT_STATUS(&r, 503);
        BB_ASSERT_CODE(&r, "service_unavailable");
        CU_ASSERT(bb_json_str(&r, "error.details.reason") != NULL &&
                  strcmp(bb_json_str(&r, "error.details.reason"), "overloaded") == 0);
        char retry[16];
        CU_ASSERT(bb_header(&r, "retry-after", retry, sizeof(retry)) != NULL);
        bb_resp_free(&r);
    }
    expect("GET", "/v1/secrets/m/b", "t_oom", NULL, 404, "not_found"); /* the refused write left nothing */
    expect("GET", "/v1/secrets/m/a", "t_oom", NULL, 200, NULL);
    /* whichever allocation of a write fails (the JSON parser's own ones
     * included, which must never see NULL), the answer is a 503 or the write */
    for (int nth = 1; nth <= 8; nth++) {
        char arm[128];
        snprintf(arm, sizeof(arm), "{\"op\":\"malloc\",\"errno\":\"ENOMEM\",\"nth\":%d,\"count\":1}", nth);
        bb_resp_t r;
        CU_ASSERT_FATAL(req("POST", "/v1/sys/faults", NULL, arm, &r));
        bb_resp_free(&r);
        CU_ASSERT_FATAL(req("PUT", "/v1/secrets/m/c", "t_oom", "{\"value\":\"a\\\"b\\nc\",\"metadata\":{\"k\":\"v\"}}", &r));
        if (r.status != 503 && r.status != 200 && r.status != 201)
            fprintf(stderr, "\n  malloc fault %d: %ld %.200s", nth, r.status, r.body ? r.body : "");
        CU_ASSERT(r.status == 503 || r.status == 200 || r.status == 201);
        bb_resp_free(&r);
        CU_ASSERT_FATAL(req("DELETE", "/v1/sys/faults", NULL, NULL, &r));
        bb_resp_free(&r);
    }
}

/* ---- a KMS that answers later (like a remote one) ---- */

static void test_remote_like_kms(void)
{
    /* every wrap/unwrap completes from another thread after 30 ms; idle keys
     * leave the cache after 1 s, so reads after a pause unwrap again */
    bb_server_t s = {0};
    const char *env[] = {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_KMS_DELAY=30ms", "DATA_KEY_CACHE_TTL=1s", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/a/one", s.token, "t_slow", "{\"value\":\"v1\"}", &r));
    BB_ASSERT_STATUS(&r, 201); /* the data key was created asynchronously */
    bb_resp_free(&r);
    for (int i = 0; i < 3; i++) {
        char url[64];
        snprintf(url, sizeof(url), "/v1/secrets/a/n%d", i);
        CU_ASSERT_FATAL(bb_req(&s, "PUT", url, s.token, "t_slow", "{\"value\":\"n\"}", &r));
        BB_ASSERT_STATUS(&r, 201);
        bb_resp_free(&r);
    }
    first_write_race(&s, "t_slow_race");
    sleep(2); /* past the TTL (and a sweep): the next requests miss the cache */
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/a/one", s.token, "t_slow", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), "v1");
    bb_resp_free(&r);
    sleep(2);
    CU_ASSERT_FATAL(bb_req(&s, "POST", "/v1/secrets/batch", s.token, "t_slow", "{\"paths\":[\"a/one\",\"a/n1\"]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "secrets.1.value"), "n");
    bb_resp_free(&r);
    sleep(2);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets?prefix=a/&limit=2", s.token, "t_slow", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    sleep(2);
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/a/one", s.token, "t_slow", "{\"value\":\"v2\"}", &r));
    BB_ASSERT_STATUS(&r, 200); /* a write after a miss loads the stored key */
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/a/one?version=1", s.token, "t_slow", NULL, &r));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "value"), "v1");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

/* The KMS and the data-key cache report to /v1/health and /v1/metrics. */
static void test_health_and_metrics(void)
{
    put_value("t_metrics", "m/x", "\"v\"", 201);
    char out[16];
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(get_value("t_metrics", "m/x", 0, out, sizeof(out)), 200);
    bb_resp_t r;
    CU_ASSERT_FATAL(req("GET", "/v1/health/ready", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("GET", "/v1/health/detailed", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "dependencies.kms.provider"), "local");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "dependencies.kms.status"), "ok");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(req("GET", "/v1/metrics", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    const char *hit = strstr(r.body, "scaivault_data_key_cache_requests_total{result=\"hit\"} ");
    CU_ASSERT_PTR_NOT_NULL(hit);
    if (hit != NULL)
        CU_ASSERT(atol(hit + strlen("scaivault_data_key_cache_requests_total{result=\"hit\"} ")) >= 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "scaivault_data_key_cache_keys "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "scaivault_kms_operation_duration_seconds_count{provider=\"local\"} "));
    bb_resp_free(&r);
}

void sv_bb_suite_secrets(void)
{
    CU_pSuite s = CU_add_suite("blackbox/secrets", suite_init, suite_clean);
    CU_add_test(s, "put_get", test_put_get);
    CU_add_test(s, "put_validation", test_put_validation);
    CU_add_test(s, "invalid_paths", test_invalid_paths);
    CU_add_test(s, "sub_resource_methods", test_sub_resource_methods);
    CU_add_test(s, "cas", test_cas);
    CU_add_test(s, "version_states", test_version_states);
    CU_add_test(s, "purge", test_purge);
    CU_add_test(s, "config", test_config);
    CU_add_test(s, "list", test_list);
    CU_add_test(s, "tenant_isolation", test_tenant_isolation);
    CU_add_test(s, "first_write_race", test_first_write_race);
    CU_add_test(s, "tenant_delete", test_tenant_delete);
    CU_add_test(s, "tenant_delete_without_secrets", test_tenant_delete_without_secrets);
    CU_add_test(s, "tenant_delete_large", test_tenant_delete_large);
    CU_add_test(s, "tenant_delete_interrupted", test_tenant_delete_interrupted);
    CU_add_test(s, "batch", test_batch);
    CU_add_test(s, "batch_audit_and_size", test_batch_audit_and_size);
    CU_add_test(s, "partner", test_partner);
    CU_add_test(s, "many_segments", test_many_segments);
    CU_add_test(s, "storage_faults", test_storage_faults);
    CU_add_test(s, "plaintext_hygiene", test_plaintext_hygiene);
    CU_add_test(s, "kms_key_file", test_kms_key_file);
    CU_add_test(s, "kms_unreachable", test_kms_unreachable);
    CU_add_test(s, "out_of_secure_memory", test_out_of_secure_memory);
    CU_add_test(s, "remote_like_kms", test_remote_like_kms);
    CU_add_test(s, "health_and_metrics", test_health_and_metrics);
}
