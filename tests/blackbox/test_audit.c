/* tests/blackbox/test_audit.c - the audit log through the real binary:
 * one entry per request (errors included), queries, fail-closed through the
 * fault seams, verification online and offline against each kind of
 * tampering, signed checkpoints and the streamed export (checked by an
 * independent verifier written from doc/audit.md), the signing key file, no
 * secrets in the log, async durability, the bench-only switch, and the
 * connections whose requests wait for their entries. */
#include "sv_autoconf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/audit_tamper.h"
#include "tests/blackbox/bb.h"

static bb_server_t srv;
static const char *const test_env[] = {"SCAIVAULT_TEST_FAULTS=true", "AUDIT_CHECKPOINT_ENTRIES=10", NULL};

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

/* GET with a request id of our own and the bootstrap token (token NULL: none). */
static bool get_as(bb_server_t *s, const char *path, const char *request_id, const char *token, const char *tenant,
                   bb_resp_t *r)
{
    char h_id[128], h_auth[160], h_tenant[128];
    const char *h[4];
    int n = 0;
    if (request_id != NULL) {
        snprintf(h_id, sizeof(h_id), "X-Request-ID: %s", request_id);
        h[n++] = h_id;
    }
    if (token != NULL) {
        snprintf(h_auth, sizeof(h_auth), "Authorization: Bearer %s", token);
        h[n++] = h_auth;
    }
    if (tenant != NULL) {
        snprintf(h_tenant, sizeof(h_tenant), "X-ScaiVault-Tenant: %s", tenant);
        h[n++] = h_tenant;
    }
    h[n] = NULL;
    return bb_req_h(s, "GET", path, h, NULL, 0, r);
}

static size_t n_items(const bb_resp_t *r)
{
    sv_json_t *items = bb_json(r, "items");
    return items != NULL && items->type == SV_JSON_ARRAY ? items->u.kids.n : (size_t)-1;
}

/* The entries of one request id (as the super admin). */
static void lookup(bb_server_t *s, const char *request_id, bb_resp_t *r)
{
    char path[200];
    snprintf(path, sizeof(path), "/v1/audit/logs?request_id=%s", request_id);
    CU_ASSERT_FATAL(bb_req(s, "GET", path, s->token, NULL, NULL, r));
    BB_ASSERT_STATUS(r, 200);
}

static void arm(bb_server_t *s, const char *op, const char *err, int nth)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"op\":\"%s\",\"errno\":\"%s\",\"nth\":%d}", op, err, nth);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(s, "POST", "/v1/sys/faults", s->token, NULL, body, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
}

/* ---- completeness ---- */

static void expect_entry(const char *request_id, const char *action, int status, const char *error_code,
                         const char *identity)
{
    bb_resp_t r;
    lookup(&srv, request_id, &r);
    if (n_items(&r) != 1)
        fprintf(stderr, "\n  %s: %zu entries: %.400s\n", request_id, n_items(&r), r.body);
    CU_ASSERT_EQUAL(n_items(&r), 1);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.request_id"), request_id);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.action"), action);
    int64_t st = 0;
    CU_ASSERT(bb_json_int(&r, "items.0.status", &st));
    CU_ASSERT_EQUAL(st, status);
    bool ok = !(status < 400);
    CU_ASSERT(bb_json_bool(&r, "items.0.success", &ok));
    CU_ASSERT_EQUAL(ok, status < 400);
    if (error_code != NULL) {
        CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "items.0.error_code"));
        if (bb_json_str(&r, "items.0.error_code") != NULL)
            CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.error_code"), error_code);
    } else {
        CU_ASSERT_PTR_NULL(bb_json_str(&r, "items.0.error_code"));
    }
    if (identity != NULL) {
        CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "items.0.identity_id"));
    } else {
        CU_ASSERT_PTR_NULL(bb_json_str(&r, "items.0.identity_id"));
    }
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.ip"), "127.0.0.1");
    CU_ASSERT_EQUAL(strlen(bb_json_str(&r, "items.0.hash")), 64);
    bb_resp_free(&r);
}

static void test_every_request_one_entry(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(get_as(&srv, "/v1/no/such/route", "bb-404", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    const char *h405[] = {"X-Request-ID: bb-405", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "DELETE", "/v1/audit/logs", h405, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 405);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs", "bb-401a", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs", "bb-401b", "not-a-valid-token", NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=0", "bb-400", srv.token, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "limit");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", "bb-200", srv.token, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/health", "bb-health", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    /* a 429: one list call a minute in tenant tnt_rl */
    CU_ASSERT_FATAL(
        bb_req(&srv, "PUT", "/v1/tenants/tnt_rl/rate-limits", srv.token, "tnt_setup",
               "{\"list\": \"1/min\", \"read\": \"1/min\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", "bb-rl-1", srv.token, "tnt_rl", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", "bb-429", srv.token, "tnt_rl", &r));
    BB_ASSERT_STATUS(&r, 429);
    bb_resp_free(&r);
    /* a refused secret read names its path, as a 404 of it does */
    CU_ASSERT_FATAL(get_as(&srv, "/v1/secrets/app/rl", "bb-rl-read-1", srv.token, "tnt_rl", &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/secrets/app/rl", "bb-429-read", srv.token, "tnt_rl", &r));
    BB_ASSERT_STATUS(&r, 429);
    bb_resp_free(&r);
    lookup(&srv, "bb-429-read", &r);
    const char *rp = bb_json_str(&r, "items.0.path");
    CU_ASSERT(rp != NULL && strcmp(rp, "app/rl") == 0);
    bb_resp_free(&r);
    /* so does a refused partner read, and a refused listing its prefix (both buckets are spent) */
    char auth[160];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    const char *hp[] = {"X-Request-ID: bb-429-partner", auth, "X-ScaiVault-Tenant: tnt_rl",
                        "X-ScaiVault-Partner: acme", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/partner/secrets/shared/k", hp, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 429);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/secrets?prefix=app/", "bb-429-list", srv.token, "tnt_rl", &r));
    BB_ASSERT_STATUS(&r, 429);
    bb_resp_free(&r);
    const char *want[][2] = {{"bb-429-partner", "partner:acme/shared/k"}, {"bb-429-list", "app/"}};
    for (size_t i = 0; i < SV_ARRAY_LEN(want); i++) {
        lookup(&srv, want[i][0], &r);
        rp = bb_json_str(&r, "items.0.path");
        if (rp == NULL || strcmp(rp, want[i][1]) != 0)
            fprintf(stderr, "\n  %s: path %s, want %s", want[i][0], rp ? rp : "null", want[i][1]);
        CU_ASSERT(rp != NULL && strcmp(rp, want[i][1]) == 0);
        bb_resp_free(&r);
    }

    expect_entry("bb-404", "http_request", 404, "not_found", NULL);
    expect_entry("bb-405", "http_request", 405, "method_not_allowed", NULL);
    expect_entry("bb-401a", "audit_query", 401, "authentication_required", NULL);
    expect_entry("bb-401b", "audit_query", 401, "token_invalid", NULL);
    expect_entry("bb-400", "audit_query", 400, "invalid_request", "bootstrap");
    expect_entry("bb-200", "audit_query", 200, NULL, "bootstrap");
    expect_entry("bb-429", "audit_query", 429, "rate_limited", "bootstrap");
    lookup(&srv, "bb-health", &r); /* liveness probes are not audited */
    CU_ASSERT_EQUAL(n_items(&r), 0);
    bb_resp_free(&r);
}

/* ---- queries ---- */

static void test_query_filters_and_pages(void)
{
    bb_resp_t r;
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "bb-q-%d", i);
        CU_ASSERT_FATAL(
            get_as(&srv, i == 4 ? "/v1/audit/logs?limit=abc" : "/v1/audit/logs?limit=1", id, srv.token, "tnt_q1", &r));
        bb_resp_free(&r);
    }
    /* the super admin naming a tenant sees that tenant's entries only */
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs", NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_EQUAL(n_items(&r), 5);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.request_id"), "bb-q-4"); /* newest first */
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.tenant_id"), "tnt_q1");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?success=false", NULL, srv.token, "tnt_q1", &r));
    CU_ASSERT_EQUAL(n_items(&r), 1);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.error_code"), "invalid_request");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?order=asc&limit=2", NULL, srv.token, "tnt_q1", &r));
    CU_ASSERT_EQUAL(n_items(&r), 2);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.request_id"), "bb-q-0"); /* oldest first */
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    /* newest first, page by page: our own queries (8 entries of tnt_q1 so far)
     * land above the cursor and do not disturb the walk */
    CU_ASSERT_FATAL(
        get_as(&srv, "/v1/audit/logs?action=audit_query&identity_id=bootstrap&limit=3", NULL, srv.token, "tnt_q1", &r));
    int pages = 1;
    size_t total = n_items(&r);
    while (bb_json_str(&r, "next_cursor") != NULL && pages < 10) {
        char path[256];
        snprintf(path, sizeof(path), "/v1/audit/logs?action=audit_query&identity_id=bootstrap&limit=3&cursor=%s",
                 bb_json_str(&r, "next_cursor"));
        bb_resp_free(&r);
        CU_ASSERT_FATAL(get_as(&srv, path, NULL, srv.token, "tnt_q1", &r));
        BB_ASSERT_STATUS(&r, 200);
        total += n_items(&r);
        pages++;
    }
    CU_ASSERT_EQUAL(total, 8);
    CU_ASSERT_EQUAL(pages, 3);
    bb_resp_free(&r);
    /* a cursor of one order is refused by the other */
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", NULL, srv.token, "tnt_q1", &r));
    char path[256];
    snprintf(path, sizeof(path), "/v1/audit/logs?order=asc&cursor=%s", bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, path, NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
    /* nor does it fit another tenant's query, or other filters */
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", NULL, srv.token, "tnt_q1", &r));
    char cur[128];
    snprintf(cur, sizeof(cur), "%s", bb_json_str(&r, "next_cursor"));
    bb_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/audit/logs?limit=1&cursor=%s", cur);
    CU_ASSERT_FATAL(get_as(&srv, path, NULL, srv.token, "tnt_q2", &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "cursor");
    bb_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/audit/logs?limit=1&action=audit_query&cursor=%s", cur);
    CU_ASSERT_FATAL(get_as(&srv, path, NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/audit/logs?limit=1&cursor=%s", cur); /* its own query: fine */
    CU_ASSERT_FATAL(get_as(&srv, path, NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    /* nor does it with its position changed (a byte of its sequence number) */
    uint8_t raw[64];
    size_t raw_len = 0;
    CU_ASSERT_FATAL(sodium_base642bin(raw, sizeof(raw), cur, strlen(cur), NULL, &raw_len, NULL,
                                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
                    raw_len > 18);
    raw[18] ^= 1;
    char altered[128];
    sodium_bin2base64(altered, sizeof(altered), raw, raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(path, sizeof(path), "/v1/audit/logs?limit=1&cursor=%s", altered);
    CU_ASSERT_FATAL(get_as(&srv, path, NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    bb_resp_free(&r);
    /* time bounds */
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?to=2000-01-01T00:00:00Z", NULL, srv.token, "tnt_q1", &r));
    CU_ASSERT_EQUAL(n_items(&r), 0);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(
        get_as(&srv, "/v1/audit/logs?from=2000-01-01T00:00:00Z&path_prefix=nothing/", NULL, srv.token, "tnt_q1", &r));
    CU_ASSERT_EQUAL(n_items(&r), 0);
    bb_resp_free(&r);
    /* an offset's '+' sent unencoded (a query's '+' is a space) still reads as +00:00 */
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?to=2000-01-01T00:00:00+00:00", NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_EQUAL(n_items(&r), 0);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?from=2000-01-01T00:00:00+00:00", NULL, srv.token, "tnt_q1", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(n_items(&r) > 0);
    bb_resp_free(&r);
    /* bad parameters name their field */
    const char *bad[][2] = {{"/v1/audit/logs?success=maybe", "success"},
                            {"/v1/audit/logs?limit=1001", "limit"},
                            {"/v1/audit/logs?from=yesterday", "from"},
                            {"/v1/audit/logs?order=sideways", "order"},
                            {"/v1/audit/logs?cursor=bm90LWEtY3Vyc29y", "cursor"},
                            {"/v1/audit/logs?request_id=has%20space", "request_id"},
                            {"/v1/audit/logs?path_prefix=app%FF", "path_prefix"},
                            {"/v1/audit/logs?from=2026-01-02T00:00:00%2001:00", "from"},
                            {"/v1/audit/logs?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"}};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        CU_ASSERT_FATAL(get_as(&srv, bad[i][0], NULL, srv.token, NULL, &r));
        BB_ASSERT_STATUS(&r, 400);
        BB_ASSERT_CODE(&r, "invalid_request");
        if (bb_json_str(&r, "error.details.field") != NULL)
            CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), bad[i][1]);
        bb_resp_free(&r);
    }
}

/* ---- fail closed ---- */

/* ---- a request waiting for its entry: the parked connection ---- */

static bool send_get(int fd, const char *path, const char *request_id, const char *token)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Request-ID: %s\r\n\r\n", path,
                     token, request_id);
    return write(fd, req, (size_t)n) == n;
}

/* Reads until the server closes (or 10 s pass); NUL-terminates. */
static size_t read_to_close(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (ssize_t n; len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0;)
        len += (size_t)n;
    buf[len] = 0;
    return len;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* fields after the command name: state is the 3rd, utime the 14th */
    unsigned long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* While a request waits for the commit of its entry (held up by the stall
 * seam), its HTTP/1.1 connection stays polled without reading (request.c,
 * "parking"): a pipelined request and a half close that arrive meanwhile are
 * left for after the response, in order; a client that resets the connection
 * meanwhile costs nothing but its answer; and no loop spins on the unread
 * bytes while the commit is late. */
static void test_parked_connection(void)
{
    bb_resp_t r;
    const char *stall = "{\"op\":\"stall\",\"nth\":1,\"count\":0}"; /* every commit, until cleared */
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, stall, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);

    const char *path = "/v1/audit/logs?request_id=bb-park-none";
    int fd = bb_connect(&srv, 0, 10);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(send_get(fd, path, "bb-park-a", srv.token));
    usleep(100000); /* the first request now waits for its commit */
    double cpu0 = cpu_seconds(srv.pid);
    CU_ASSERT_FATAL(send_get(fd, path, "bb-park-b", srv.token));
    shutdown(fd, SHUT_WR);
    usleep(150000); /* the unread request and the half close sit there while the commit is late */
    double cpu1 = cpu_seconds(srv.pid);
    char got[16384];
    read_to_close(fd, got, sizeof(got));
    close(fd);
    CU_ASSERT_EQUAL(count_of(got, "HTTP/1.1 200 "), 2);
    const char *a = strstr(got, "bb-park-a"), *b = strstr(got, "bb-park-b");
    CU_ASSERT(a != NULL && b != NULL && a < b);
    /* a worker spinning on the readable socket would burn the whole 150 ms */
    CU_ASSERT(cpu0 >= 0 && cpu1 - cpu0 < 0.1);
    if (cpu1 - cpu0 >= 0.1)
        fprintf(stderr, "\n  the server used %.3f s of CPU while the commit was late\n", cpu1 - cpu0);

    /* a client that resets its connection while its request waits */
    fd = bb_connect(&srv, 0, 10);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(send_get(fd, path, "bb-park-c", srv.token));
    usleep(250000); /* read by now (its commit is 300 ms late): a reset loses only the answer */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd); /* RST */

    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/sys/faults", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 204);
    bb_resp_free(&r);
    /* the server goes on, and the reset request has its entry */
    lookup(&srv, "bb-park-c", &r);
    CU_ASSERT_EQUAL(n_items(&r), 1);
    bb_resp_free(&r);
    lookup(&srv, "bb-park-b", &r);
    CU_ASSERT_EQUAL(n_items(&r), 1);
    bb_resp_free(&r);

    /* SIGTERM while a request waits: it is answered before the server exits */
    bb_server_t s2 = {0};
    CU_ASSERT_FATAL(bb_start(&s2, test_env));
    CU_ASSERT_FATAL(bb_req(&s2, "POST", "/v1/sys/faults", s2.token, NULL, stall, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    fd = bb_connect(&s2, 0, 10);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(send_get(fd, path, "bb-park-d", s2.token));
    usleep(250000); /* read by now, and waiting for its commit */
    CU_ASSERT_EQUAL(bb_stop(&s2), 0);
    read_to_close(fd, got, sizeof(got));
    close(fd);
    CU_ASSERT_EQUAL(count_of(got, "HTTP/1.1 200 "), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "bb-park-d"));
    bb_cleanup(&s2);
}

static void test_fail_closed(void)
{
    bb_resp_t r;
    /* nth 2: the arming request's own entry is the first append from now */
    arm(&srv, "audit", "EIO", 2);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", "bb-fc-read", srv.token, NULL, &r));
    BB_ASSERT_STATUS(&r, 503);
    BB_ASSERT_CODE(&r, "audit_unavailable");
    bb_resp_free(&r);
    /* the detailed health says so (until the next entry is written: this one's) */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/detailed", srv.token, NULL, NULL, &r));
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "dependencies.audit.status"));
    if (bb_json_str(&r, "dependencies.audit.status") != NULL)
        CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "dependencies.audit.status"), "failed");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health/detailed", srv.token, NULL, NULL, &r));
    if (bb_json_str(&r, "dependencies.audit.status") != NULL)
        CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "dependencies.audit.status"), "ok");
    bb_resp_free(&r);

    /* a write whose entry cannot be written is not applied */
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/audit/checkpoints", srv.token, NULL, NULL, &r));
    CU_ASSERT(r.status == 201 || r.status == 200);
    int64_t before = 0;
    CU_ASSERT(bb_json_int(&r, "seq", &before));
    bb_resp_free(&r);
    arm(&srv, "audit", "EIO", 2);
    const char *h[] = {"X-Request-ID: bb-fc-write", NULL};
    char auth[160];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    const char *hw[] = {h[0], auth, NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "POST", "/v1/audit/checkpoints", hw, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 503);
    BB_ASSERT_CODE(&r, "audit_unavailable");
    bb_resp_free(&r);

    /* the same with a failing commit (a read's entry is committed to the journal) */
    arm(&srv, "commit", "EIO", 2);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/checkpoints/public-key", "bb-fc-commit-read", srv.token, NULL, &r));
    BB_ASSERT_STATUS(&r, 503);
    BB_ASSERT_CODE(&r, "audit_unavailable");
    bb_resp_free(&r);
    arm(&srv, "commit", "ENOSPC", 2);
    const char *hw2[] = {"X-Request-ID: bb-fc-commit-write", auth, NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "POST", "/v1/audit/checkpoints", hw2, NULL, 0, &r));
    CU_ASSERT(r.status >= 500);
    bb_resp_free(&r);

    /* none of the four left a trace, and no checkpoint was written after the first */
    const char *gone[] = {"bb-fc-read", "bb-fc-write", "bb-fc-commit-read", "bb-fc-commit-write"};
    for (size_t i = 0; i < SV_ARRAY_LEN(gone); i++) {
        lookup(&srv, gone[i], &r);
        CU_ASSERT_EQUAL(n_items(&r), 0);
        bb_resp_free(&r);
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/audit/export?from_seq=%lld", (long long)before + 1);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", path, srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NULL(strstr(r.body, "\"type\":\"checkpoint\""));
    CU_ASSERT_PTR_NULL(strstr(r.body, "bb-fc-"));
    bb_resp_free(&r);
    /* and the chain is whole */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/verify", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bool ok = false;
    CU_ASSERT(bb_json_bool(&r, "ok", &ok) && ok);
    bb_resp_free(&r);

    /* a query of the log first moves the journal to the store: when that commit fails, the log
     * cannot be read whole, and the answer says so rather than leave entries out */
    arm(&srv, "commit", "EIO", 2);
    CU_ASSERT_FATAL(get_as(&srv, "/v1/audit/logs?limit=1", "bb-drain-fail", srv.token, NULL, &r));
    BB_ASSERT_STATUS(&r, 503);
    BB_ASSERT_CODE(&r, "audit_unavailable");
    bb_resp_free(&r);
    expect_entry("bb-drain-fail", "audit_query", 503, "audit_unavailable", "bootstrap");
}

/* ---- verification ---- */

static int cli_verify(const char *pubkey_file, const char *extra, char *out, size_t cap)
{
    char dir[340], pk[600];
    snprintf(dir, sizeof(dir), "--data-dir=%s", srv.data_dir);
    const char *args[6] = {"audit", "verify", dir};
    int n = 3;
    if (pubkey_file != NULL) {
        snprintf(pk, sizeof(pk), "--pubkey=%s", pubkey_file);
        args[n++] = pk;
    }
    if (extra != NULL)
        args[n++] = extra;
    args[n] = NULL;
    return bb_run(args, NULL, out, cap);
}

static void expect_verify(bool want_ok, uint64_t bad_seq)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/verify", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bool ok = !want_ok;
    CU_ASSERT(bb_json_bool(&r, "ok", &ok));
    CU_ASSERT_EQUAL(ok, want_ok);
    int64_t bad = 0;
    if (!want_ok) {
        CU_ASSERT(bb_json_int(&r, "first_bad_seq", &bad));
        if ((uint64_t)bad != bad_seq)
            fprintf(stderr, "\n  verify: %s (want bad seq %llu)\n", r.body, (unsigned long long)bad_seq);
        CU_ASSERT_EQUAL(bad, (int64_t)bad_seq);
    } else {
        CU_ASSERT_PTR_NULL(bb_json_str(&r, "reason"));
    }
    bb_resp_free(&r);
    /* offline, beside the running server */
    char out[4096], want[64];
    int rc = cli_verify(NULL, NULL, out, sizeof(out));
    CU_ASSERT_EQUAL(rc, want_ok ? 0 : 1);
    snprintf(want, sizeof(want), "\"first_bad_seq\":%llu", (unsigned long long)bad_seq);
    if (want_ok) {
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ok\":true"));
    } else {
        if (strstr(out, want) == NULL)
            fprintf(stderr, "\n  audit verify printed: %s\n", out);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    }
}

static void tamper_and_check(sv_tamper_t kind, uint64_t seq, uint64_t bad_seq)
{
    sv_store_t *st = sv_tamper_open(srv.data_dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_tamper_snapshot_t snap;
    CU_ASSERT_FATAL(sv_tamper_save(st, &snap));
    CU_ASSERT_FATAL(sv_tamper(st, kind, seq));
    sv_store_close(st);
    expect_verify(false, bad_seq);
    st = sv_tamper_open(srv.data_dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT(sv_tamper_restore(st, &snap));
    sv_store_close(st);
}

/* Restarts the suite's server on its data with env. */
static void restart_srv(const char *const *env)
{
    CU_ASSERT_EQUAL(bb_stop(&srv), 0);
    CU_ASSERT_FATAL(bb_start(&srv, env));
}

static void test_verify_detects_tampering(void)
{
    /* the test puts the log back as it was under the running server, which a journal holding
     * entries of requests already answered would not follow: every batch goes to LMDB here */
    static const char *const no_journal[] = {"SCAIVAULT_TEST_FAULTS=true", "AUDIT_CHECKPOINT_ENTRIES=10",
                                             "AUDIT_JOURNAL=false", NULL};
    restart_srv(no_journal);
    bb_resp_t r;
    for (int i = 0; i < 30; i++) {
        CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/logs?limit=1", srv.token, NULL, NULL, &r));
        bb_resp_free(&r);
    }
    expect_verify(true, 0);
    tamper_and_check(SV_TAMPER_MODIFY, 12, 12);
    expect_verify(true, 0); /* restored */
    tamper_and_check(SV_TAMPER_DELETE, 12, 12);
    tamper_and_check(SV_TAMPER_SWAP, 12, 12);
    tamper_and_check(SV_TAMPER_INSERT_COPY, 12, 12);
    tamper_and_check(SV_TAMPER_INSERT_FORGED, 12, 13);
    expect_verify(true, 0);
    /* a range that starts after the damage */
    sv_store_t *st = sv_tamper_open(srv.data_dir);
    sv_tamper_snapshot_t snap;
    CU_ASSERT_FATAL(sv_tamper_save(st, &snap));
    CU_ASSERT(sv_tamper(st, SV_TAMPER_MODIFY, 3));
    sv_store_close(st);
    char out[4096];
    CU_ASSERT_EQUAL(cli_verify(NULL, "--from-seq=4", out, sizeof(out)), 0);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/verify?from_seq=4", srv.token, NULL, NULL, &r));
    bool ok = false;
    CU_ASSERT(bb_json_bool(&r, "ok", &ok) && ok);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/verify?from_seq=1&to_seq=5", srv.token, NULL, NULL, &r));
    int64_t bad = 0;
    CU_ASSERT(bb_json_int(&r, "first_bad_seq", &bad) && bad == 3);
    bb_resp_free(&r);
    st = sv_tamper_open(srv.data_dir);
    CU_ASSERT(sv_tamper_restore(st, &snap));
    sv_store_close(st);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/verify?from_seq=x", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
    /* 2^64 and more: refused, not clamped */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/verify?from_seq=18446744073709551616", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "from_seq");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/export?from_seq=99999999999999999999", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
    const char *args[] = {"audit", "verify", "--from-seq=-1", NULL};
    CU_ASSERT_EQUAL(bb_run(args, NULL, out, sizeof(out)), 2);
    /* usage errors are exit 2, never a verification of something else */
    char dir[340];
    snprintf(dir, sizeof(dir), "--data-dir=%s", srv.data_dir);
    const char *backwards[] = {"audit", "verify", dir, "--from-seq=10", "--to-seq=5", NULL};
    CU_ASSERT_EQUAL(bb_run(backwards, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "past --to-seq"));
    const char *stray[] = {"audit", "verify", dir, "extra", NULL};
    CU_ASSERT_EQUAL(bb_run(stray, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unexpected argument 'extra'"));
    const char *twice[] = {"audit", "verify", dir, "--data-dir", "/nonexistent", NULL};
    CU_ASSERT_EQUAL(bb_run(twice, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "given twice"));
    restart_srv(test_env);
}

/* ---- checkpoints and export ---- */

/* An independent verifier of the export, written from doc/audit.md: it
 * rebuilds each canonical entry from the JSON, hashes it, follows the links
 * and checks each checkpoint's signature. Returns the number of entries. */
static const char *json_str_or_empty(sv_json_t *o, const char *k)
{
    const char *s = sv_json_get_str(o, k, NULL);
    return s != NULL ? s : "";
}

static void put_u16_str(uint8_t *b, size_t *n, const char *s)
{
    size_t l = strlen(s);
    b[(*n)++] = (uint8_t)(l >> 8);
    b[(*n)++] = (uint8_t)l;
    memcpy(b + *n, s, l);
    *n += l;
}

static size_t check_export(const char *body, const uint8_t pk[32], size_t *checkpoints, int64_t *last_seq)
{
    static const char *const fields[] = {"request_id", "tenant_id",  "identity_id", "action",
                                         "path",       "error_code", "ip",          "user_agent"};
    uint8_t prev[32] = {0};
    bool have_prev = false;
    size_t entries = 0;
    *checkpoints = 0;
    const char *p = body;
    bool ended = false;
    while (*p) {
        const char *nl = strchr(p, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
        sv_json_doc_t *doc;
        sv_json_error_t je;
        CU_ASSERT_EQUAL_FATAL(sv_json_parse(p, (size_t)(nl - p), false, &doc, &je), SV_JSON_OK);
        sv_json_t *o = sv_json_root(doc);
        const char *type = sv_json_get_str(o, "type", NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(type);
        uint8_t hash[32], sig[64];
        size_t bl;
        if (strcmp(type, "entry") == 0) {
            uint8_t c[2048];
            size_t n = 0;
            c[n++] = 1;
            uint64_t seq = (uint64_t)sv_json_get(o, "seq")->u.num.i;
            int64_t t = sv_json_get(o, "time_us")->u.num.i;
            for (int i = 7; i >= 0; i--)
                c[n + (size_t)(7 - i)] = (uint8_t)(seq >> (8 * i));
            n += 8;
            for (int i = 7; i >= 0; i--)
                c[n + (size_t)(7 - i)] = (uint8_t)((uint64_t)t >> (8 * i));
            n += 8;
            c[n++] = sv_json_get(o, "success")->u.b ? 1 : 0;
            int64_t status = sv_json_get(o, "status")->u.num.i;
            c[n++] = (uint8_t)(status >> 8);
            c[n++] = (uint8_t)status;
            for (size_t i = 0; i < SV_ARRAY_LEN(fields); i++)
                put_u16_str(c, &n, json_str_or_empty(o, fields[i]));
            uint8_t stored_prev[32];
            sodium_hex2bin(stored_prev, 32, json_str_or_empty(o, "prev_hash"), 64, NULL, &bl, NULL);
            sodium_hex2bin(hash, 32, json_str_or_empty(o, "hash"), 64, NULL, &bl, NULL);
            if (have_prev)
                CU_ASSERT_EQUAL(memcmp(stored_prev, prev, 32), 0);
            crypto_generichash_state st;
            uint8_t h[32];
            crypto_generichash_init(&st, NULL, 0, 32);
            crypto_generichash_update(&st, stored_prev, 32);
            crypto_generichash_update(&st, c, n);
            crypto_generichash_final(&st, h, 32);
            CU_ASSERT_EQUAL(memcmp(h, hash, 32), 0);
            memcpy(prev, hash, 32);
            have_prev = true;
            *last_seq = (int64_t)seq;
            entries++;
        } else if (strcmp(type, "checkpoint") == 0 || strcmp(type, "anchor") == 0) {
            uint8_t m[80];
            size_t n = 0;
            const char *domain =
                strcmp(type, "checkpoint") == 0 ? "scaivault-audit-checkpoint-v1" : "scaivault-audit-anchor-v1";
            memcpy(m, domain, strlen(domain));
            n = strlen(domain);
            uint64_t seq = (uint64_t)sv_json_get(o, "seq")->u.num.i;
            int64_t t = sv_json_get(o, "time_us")->u.num.i;
            sodium_hex2bin(hash, 32, json_str_or_empty(o, "hash"), 64, NULL, &bl, NULL);
            sodium_hex2bin(sig, 64, json_str_or_empty(o, "signature"), 128, NULL, &bl, NULL);
            for (int i = 7; i >= 0; i--)
                m[n++] = (uint8_t)(seq >> (8 * i));
            memcpy(m + n, hash, 32);
            n += 32;
            for (int i = 7; i >= 0; i--)
                m[n++] = (uint8_t)((uint64_t)t >> (8 * i));
            CU_ASSERT_EQUAL(crypto_sign_verify_detached(sig, m, n, pk), 0);
            CU_ASSERT(!have_prev || memcmp(hash, prev, 32) == 0);
            (*checkpoints)++;
        } else {
            CU_ASSERT_STRING_EQUAL(type, "end");
            bool complete = false;
            CU_ASSERT(sv_json_get(o, "complete") != NULL && (complete = sv_json_get(o, "complete")->u.b));
            CU_ASSERT(complete);
            ended = true;
        }
        sv_json_doc_free(doc);
        p = nl + 1;
    }
    CU_ASSERT(ended);
    return entries;
}

static void test_checkpoints_and_export(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/checkpoints/public-key", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "algorithm"), "Ed25519");
    uint8_t pk[32];
    size_t bl;
    CU_ASSERT_FATAL(bb_json_str(&r, "public_key_hex") != NULL);
    sodium_hex2bin(pk, 32, bb_json_str(&r, "public_key_hex"), 64, NULL, &bl, NULL);
    char pem_path[600];
    snprintf(pem_path, sizeof(pem_path), "%s/audit.pub", srv.dir);
    FILE *f = fopen(pem_path, "w");
    fputs(bb_json_str(&r, "public_key_pem"), f);
    fclose(f);
    bb_resp_free(&r);

    /* enough entries for several chunks */
    for (int i = 0; i < 400; i++) {
        CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/no/such/thing", NULL, NULL, NULL, &r));
        bb_resp_free(&r);
    }
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/export", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    char te[64], ct[64];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "transfer-encoding", te, sizeof(te)));
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "content-type", ct, sizeof(ct)));
    CU_ASSERT_STRING_EQUAL(ct, "application/x-ndjson");
    size_t checkpoints = 0;
    int64_t last = 0;
    size_t entries = check_export(r.body, pk, &checkpoints, &last);
    CU_ASSERT(entries >= 400);
    CU_ASSERT_EQUAL((int64_t)entries, last); /* nothing pruned: 1..last */
    CU_ASSERT(checkpoints >= entries / 10 - 1);
    bb_resp_free(&r);
    /* from_seq */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/export?from_seq=100", srv.token, NULL, NULL, &r));
    const char *first = "{\"type\":\"entry\",\"seq\":100,";
    CU_ASSERT(strncmp(r.body, first, strlen(first)) == 0);
    bb_resp_free(&r);

    /* offline with the public key: signatures checked */
    char out[4096];
    CU_ASSERT_EQUAL(cli_verify(pem_path, NULL, out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"signatures_checked\":true"));
    /* the wrong key: the first checkpoint is named */
    uint8_t other_pk[32], other_sk[64];
    crypto_sign_keypair(other_pk, other_sk);
    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), other_pk, 32);
    f = fopen(pem_path, "w");
    fputs(hex, f);
    fclose(f);
    CU_ASSERT_EQUAL(cli_verify(pem_path, NULL, out, sizeof(out)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "signature"));
    f = fopen(pem_path, "w");
    fputs("not a key", f);
    fclose(f);
    CU_ASSERT_EQUAL(cli_verify(pem_path, NULL, out, sizeof(out)), 2);

    /* a checkpoint on demand */
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/audit/checkpoints", srv.token, NULL, NULL, &r));
    CU_ASSERT(r.status == 201 || r.status == 200); /* 200: the head was a checkpoint already */
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "type"), "checkpoint");
    CU_ASSERT_EQUAL(strlen(bb_json_str(&r, "signature")), 128);
    bb_resp_free(&r);
}

/* ---- no secrets ---- */

static void test_no_secrets_in_log(void)
{
    char tok[64], body_marker[64], query_marker[64], hdr[128], body[160], path[160];
    bb_random_hex(tok, 24);
    snprintf(body_marker, sizeof(body_marker), "BODYSECRET%.16s", tok);
    snprintf(query_marker, sizeof(query_marker), "QUERYSECRET%.16s", tok);
    char token_marker[80];
    snprintf(token_marker, sizeof(token_marker), "TOKENSECRET%s", tok);
    bb_resp_t r;
    /* a token in the Authorization header (rejected) */
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token_marker);
    const char *h[] = {hdr, NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/audit/logs", h, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 401);
    bb_resp_free(&r);
    /* secrets in bodies, accepted or not */
    snprintf(body, sizeof(body), "{\"op\":\"%s\",\"errno\":\"EIO\"}", body_marker);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, body, &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
    snprintf(body, sizeof(body), "{\"value\":\"%s\"}", body_marker);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/audit/checkpoints", srv.token, NULL, body, &r));
    CU_ASSERT(r.status == 200 || r.status == 201);
    bb_resp_free(&r);
    /* in a query string */
    snprintf(path, sizeof(path), "/v1/audit/logs?token=%s&limit=1", query_marker);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", path, srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nothing/here?password=%s", query_marker);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", path, srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);

    /* not in any entry, nor anywhere in the data directory (bootstrap token included) */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/audit/export", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    const char *markers[] = {token_marker, body_marker, query_marker, srv.token};
    for (size_t i = 0; i < SV_ARRAY_LEN(markers); i++) {
        CU_ASSERT_PTR_NULL(strstr(r.body, markers[i]));
        CU_ASSERT_FALSE(bb_dir_contains(srv.data_dir, markers[i], strlen(markers[i])));
    }
    bb_resp_free(&r);
}

/* ---- the key file ---- */

static void test_signing_key_file(void)
{
    char key[400], out[2048];
    snprintf(key, sizeof(key), "%s/audit-signing.key", srv.data_dir);
    struct stat sb;
    CU_ASSERT_EQUAL_FATAL(stat(key, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(sb.st_size, 32);

    /* a readable key file stops a start (exit 2), naming the file */
    const char *dir = sv_test_tmpdir("bbkey");
    char *tmp = strdup(dir), kf[600], env_key[700], env_dir[700];
    snprintf(kf, sizeof(kf), "%s/k.key", tmp);
    FILE *f = fopen(kf, "w");
    fwrite("0123456789abcdef0123456789abcdef", 1, 32, f);
    fclose(f);
    chmod(kf, 0644);
    snprintf(env_key, sizeof(env_key), "AUDIT_SIGNING_KEY_FILE=%s", kf);
    snprintf(env_dir, sizeof(env_dir), "SCAIVAULT_DATA_DIR=%s/data", tmp);
    const char *args[] = {"server", NULL};
    const char *env[] = {env_key, env_dir, "SCAIVAULT_LISTEN=127.0.0.1:0", NULL};
    int rc = bb_run(args, env, out, sizeof(out));
    if (rc != 2)
        fprintf(stderr, "\n  server exited %d: %s\n", rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "AUDIT_SIGNING_KEY_FILE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, kf));
    /* the wrong size */
    chmod(kf, 0600);
    f = fopen(kf, "a");
    fputs("extra", f);
    fclose(f);
    rc = bb_run(args, env, out, sizeof(out));
    if (rc != 2)
        fprintf(stderr, "\n  server exited %d: %s\n", rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "32 bytes"));
    sv_test_rmdir(tmp);
    free(tmp);
}

/* ---- other servers ---- */

/* The number of entries of request_id once there are some (async: the
 * entry is committed after the answer), waiting up to 2 s. */
static size_t await_entries(bb_server_t *s, const char *request_id)
{
    size_t found = 0;
    for (int i = 0; i < 100 && found == 0; i++) {
        bb_resp_t r;
        lookup(s, request_id, &r);
        found = n_items(&r);
        bb_resp_free(&r);
        if (found == 0)
            usleep(20000);
    }
    return found;
}

/* Sends n copies of the request text req pipelined on one connection and
 * reads their answers meanwhile; returns how many answers came back. */
static size_t pipeline(const bb_server_t *s, const char *req, size_t n)
{
    int fd = bb_connect(s, 0, 30);
    if (fd < 0)
        return 0;
    size_t len = strlen(req), sent = 0, off = 0, answers = 0;
    static const char mark[] = "HTTP/1.1 ";
    char buf[65536 + sizeof(mark)];
    size_t keep = 0; /* bytes of the last read kept, so that a mark split between reads is seen */
    while (answers < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < n ? POLLOUT : 0)};
        if (poll(&p, 1, 30000) <= 0)
            break;
        if ((p.revents & POLLOUT) && sent < n) {
            ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0 && (off += (size_t)k) == len) {
                off = 0;
                sent++;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = recv(fd, buf + keep, sizeof(buf) - keep - 1, MSG_DONTWAIT);
            if (k <= 0)
                break;
            size_t end = keep + (size_t)k;
            buf[end] = 0;
            for (char *q = buf; (q = memmem(q, end - (size_t)(q - buf), mark, sizeof(mark) - 1)) != NULL; q++)
                answers++;
            keep = end < sizeof(mark) - 2 ? end : sizeof(mark) - 2;
            memmove(buf, buf + end - keep, keep);
        }
    }
    close(fd);
    return answers;
}

static void test_async_durability(void)
{
    bb_server_t s = {0};
    const char *env[] = {"AUDIT_DURABILITY=async", "RATE_LIMIT_AUTH=1000000/s", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    bb_resp_t r;
    CU_ASSERT_FATAL(get_as(&s, "/v1/nowhere", "bb-async-1", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(await_entries(&s, "bb-async-1"), 1);
    /* a verification in more than one slice (16,384 records each): its answer completes at
     * once in async mode, inside the slice's timer, which must outlive it (it was freed
     * while h2o's loop still walked it: the server died) */
    char req[256];
    snprintf(req, sizeof(req), "GET /v1/auth/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
             s.token);
    CU_ASSERT_EQUAL(pipeline(&s, req, 16500), 16500);
    /* async: the answers went out before their entries' commits; wait for the last ones */
    int64_t last = 0;
    for (int i = 0; i < 100 && last < 16500; i++) {
        CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/audit/logs?limit=1", s.token, NULL, NULL, &r));
        if (!bb_json_int(&r, "items.0.seq", &last))
            last = 0;
        bb_resp_free(&r);
        if (last < 16500)
            usleep(100000);
    }
    CU_ASSERT(last >= 16500);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/audit/verify", s.token, NULL, NULL, &r));
        BB_ASSERT_STATUS(&r, 200);
        int64_t checked = 0;
        CU_ASSERT(bb_json_int(&r, "checked", &checked) && checked > 16384);
        bool ok = false;
        CU_ASSERT(bb_json_bool(&r, "ok", &ok) && ok);
        bb_resp_free(&r);
    }
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

/* The value of an unlabelled metric in a /v1/metrics page, or -1. */
static long long metric_value(const bb_resp_t *r, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *p = r->body != NULL ? strstr(r->body, pat) : NULL;
    return p != NULL ? atoll(p + strlen(pat)) : -1;
}

/* With async, a failed commit loses the entries of requests already
 * answered: they are counted, and from then on requests wait for their
 * entry's commit (503 audit_unavailable while commits fail) until one
 * succeeds; then answers go out at once again. */
static void test_async_commit_failure(void)
{
    bb_server_t s = {0};
    const char *env[] = {"AUDIT_DURABILITY=async", "SCAIVAULT_TEST_FAULTS=true", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    bb_resp_t r;
    /* every commit after the arming request's own fails, until cleared */
    char body[128];
    snprintf(body, sizeof(body), "{\"op\":\"commit\",\"errno\":\"EIO\",\"nth\":2,\"count\":0}");
    CU_ASSERT_FATAL(bb_req(&s, "POST", "/v1/sys/faults", s.token, NULL, body, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    /* answered before their commits: at least the entries of the first
     * failed commit are lost before the server notices */
    long status = 0;
    for (int i = 0; i < 200 && status != 503; i++) {
        CU_ASSERT_FATAL(get_as(&s, "/v1/nowhere", NULL, s.token, NULL, &r));
        status = r.status;
        if (status == 503)
            BB_ASSERT_CODE(&r, "audit_unavailable");
        bb_resp_free(&r);
        if (status != 503)
            usleep(10000);
    }
    CU_ASSERT_EQUAL(status, 503);
    CU_ASSERT_FATAL(bb_req(&s, "DELETE", "/v1/sys/faults", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 204);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/metrics", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(metric_value(&r, "scaivault_audit_entries_lost_total") >= 1);
    bb_resp_free(&r);
    /* recovered: answered at once and recorded */
    CU_ASSERT_FATAL(get_as(&s, "/v1/nowhere", "bb-async-after", s.token, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(await_entries(&s, "bb-async-after"), 1);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

static void test_checkpoint_without_traffic(void)
{
    bb_server_t s = {0};
    const char *env[] = {"AUDIT_CHECKPOINT_INTERVAL=1s", "AUDIT_CHECKPOINT_ENTRIES=1000000", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    bb_resp_t r;
    /* entry 1 gets the first checkpoint at once; entry 2 waits for the interval */
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/nowhere", NULL, NULL, NULL, &r));
        bb_resp_free(&r);
    }
    usleep(2500000); /* no request: the scheduler's tick writes it */
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/audit/export", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "{\"type\":\"checkpoint\",\"seq\":2,"));
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

static void test_bench_unaudited_switch(void)
{
    char out[2048];
    const char *args[] = {"server", NULL};
    const char *env[] = {"SCAIVAULT_BENCH_UNAUDITED=true", "SCAIVAULT_TEST_FAULTS=false", NULL};
    CU_ASSERT_EQUAL(bb_run(args, env, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SCAIVAULT_BENCH_UNAUDITED"));
    bb_server_t s = {0};
    const char *env2[] = {"SCAIVAULT_BENCH_UNAUDITED=true", "SCAIVAULT_TEST_FAULTS=true", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env2));
    CU_ASSERT(bb_file_contains_str(s.log_path, "NOTHING IS AUDITED"));
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/audit/logs", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 503);
    BB_ASSERT_CODE(&r, "service_unavailable");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    char dir[400];
    snprintf(dir, sizeof(dir), "--data-dir=%s", s.data_dir);
    const char *vargs[] = {"audit", "verify", dir, NULL};
    CU_ASSERT_EQUAL(bb_run(vargs, NULL, out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"checked\":0"));
    bb_cleanup(&s);
}

/* A data.mdb with a zeroed page of the entry table (a damaged disk, a bad
 * copy): the offline verifier says the file is damaged and exits 1, rather
 * than dying on LMDB's assertion. */
static void test_verify_damaged_page(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    bb_resp_t r;
    for (int i = 0; i < 300; i++) { /* about 15 leaf pages of entries */
        char id[32];
        snprintf(id, sizeof(id), "bb-page-mark-%03d", i);
        CU_ASSERT_FATAL(get_as(&s, "/v1/health/detailed", id, s.token, NULL, &r));
        bb_resp_free(&r);
    }
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    char path[400];
    snprintf(path, sizeof(path), "%s/data.mdb", s.data_dir);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint8_t *d = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    CU_ASSERT_FATAL(fread(d, 1, (size_t)size, f) == (size_t)size);
    int zeroed = 0;
    for (long pg = 0; pg + 4096 <= size; pg += 4096) /* every copy of the page with entry 150 */
        if (memmem(d + pg, 4096, "bb-page-mark-150", 16) != NULL) {
            memset(d + pg, 0, 4096);
            zeroed++;
        }
    CU_ASSERT(zeroed > 0);
    fseek(f, 0, SEEK_SET);
    CU_ASSERT(fwrite(d, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    free(d);
    char out[4096], dir[400];
    snprintf(dir, sizeof(dir), "--data-dir=%s", s.data_dir);
    const char *vargs[] = {"audit", "verify", dir, NULL};
    CU_ASSERT_EQUAL(bb_run(vargs, NULL, out, sizeof(out)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "data.mdb' is damaged"));
    /* a backup of it: LMDB's compacting copy does not check pages (it ran past its cursor stack);
     * the source is walked first, and nothing is left behind */
    char bdir[500], bout[540], barg[560];
    snprintf(bdir, sizeof(bdir), "%s-backups", s.data_dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(bdir, 0700), 0);
    snprintf(bout, sizeof(bout), "%s/b.mdb", bdir);
    snprintf(barg, sizeof(barg), "--out=%s", bout);
    const char *bargs[] = {"backup", barg, dir, NULL};
    CU_ASSERT_EQUAL(bb_run(bargs, NULL, out, sizeof(out)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "data.mdb' is damaged"));
    DIR *dd = opendir(bdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dd);
    for (struct dirent *e; (e = readdir(dd)) != NULL;)
        if (e->d_name[0] != '.')
            CU_FAIL("backup left a file behind");
    closedir(dd);
    /* the damaged file as a backup: restore refuses it (exit 2) and creates nothing */
    char rarg[560], rdir[560];
    snprintf(rarg, sizeof(rarg), "--in=%s", path);
    snprintf(rdir, sizeof(rdir), "--data-dir=%s/restored", bdir);
    const char *rargs[] = {"restore", rarg, rdir, NULL};
    CU_ASSERT_EQUAL(bb_run(rargs, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is damaged"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "use another backup"));
    snprintf(rdir, sizeof(rdir), "%s/restored", bdir);
    CU_ASSERT_NOT_EQUAL(access(rdir, F_OK), 0);
    rmdir(bdir);
    bb_cleanup(&s);
}


/* ---- the journal ---- */

/* Reads answered from the journal (src/audit_journal.h) survive a SIGKILL
 * that comes before they reach data.mdb: the offline verifier sees them in
 * the journal, continuing the chain, and the next start puts them in the
 * store, where each one is found. */
static void test_journal_survives_kill(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    char ids[10][48], rnd[17];
    bb_random_hex(rnd, 16);
    bb_resp_t r;
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "bb-jr-%s-%d", rnd, i);
        CU_ASSERT_FATAL(get_as(&s, "/v1/secrets/app/none", ids[i], s.token, "t_journal", &r));
        BB_ASSERT_STATUS(&r, 404);
        bb_resp_free(&r);
    }
    /* the metric counts the entries the journal holds and the store lacks */
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/metrics", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    const char *m = r.body != NULL ? strstr(r.body, "\nscaivault_audit_journal_entries ") : NULL;
    CU_ASSERT_PTR_NOT_NULL(m);
    if (m != NULL)
        CU_ASSERT(strtoull(m + 33, NULL, 10) >= 1);
    bb_resp_free(&r);
    bb_kill(&s); /* well within the half second after which the journal goes to the store */
    char dir[400], out[4096];
    snprintf(dir, sizeof(dir), "--data-dir=%s", s.data_dir);
    const char *vargs[] = {"audit", "verify", dir, NULL};
    CU_ASSERT_EQUAL(bb_run(vargs, NULL, out, sizeof(out)), 0);
    if (strstr(out, "continue the chain") == NULL)
        fprintf(stderr, "\n  audit verify printed: %s\n", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "continue the chain"));
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    CU_ASSERT(bb_file_contains_str(s.log_path, "after an unclean stop"));
    for (int i = 0; i < 10; i++) {
        lookup(&s, ids[i], &r);
        CU_ASSERT_EQUAL(n_items(&r), 1);
        int64_t st = 0;
        CU_ASSERT(bb_json_int(&r, "items.0.status", &st) && st == 404);
        bb_resp_free(&r);
    }
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/audit/verify", s.token, NULL, NULL, &r));
    bool ok = false;
    CU_ASSERT(bb_json_bool(&r, "ok", &ok) && ok);
    bb_resp_free(&r);
    /* a clean stop leaves nothing in the journal, not even the last round's records: the offline
     * verifier finds all in the store */
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT_EQUAL(bb_run(vargs, NULL, out, sizeof(out)), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "continue the chain"));
    char journal[400];
    snprintf(journal, sizeof(journal), "%s/audit.journal", s.data_dir);
    FILE *fp = fopen(journal, "rb");
    CU_ASSERT_FATAL(fp != NULL);
    unsigned char first[4] = {1, 1, 1, 1};
    CU_ASSERT_EQUAL(fread(first, 1, 4, fp), 4);
    fclose(fp);
    CU_ASSERT(first[0] == 0 && first[1] == 0 && first[2] == 0 && first[3] == 0);
    bb_cleanup(&s);
}

/* A journal that does not continue data.mdb's audit log (data.mdb put back
 * from an older copy by hand): the server refuses to start, naming the file
 * and what to do, and keeps the journal. `restore`, the way to put an older
 * copy back, removes the journal of the database it replaces. */
static void test_journal_of_older_store(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    char db[400], saved[420], journal[400], out[4096], barg[440];
    snprintf(db, sizeof(db), "%s/data.mdb", s.data_dir);
    snprintf(saved, sizeof(saved), "%s/data.mdb.old", s.dir);
    snprintf(journal, sizeof(journal), "%s/audit.journal", s.data_dir);
    snprintf(barg, sizeof(barg), "--out=%s", saved);
    char darg[400];
    snprintf(darg, sizeof(darg), "--data-dir=%s", s.data_dir);
    const char *backup[] = {"backup", barg, darg, NULL};
    CU_ASSERT_EQUAL_FATAL(bb_run(backup, NULL, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    bb_resp_t r;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(get_as(&s, "/v1/secrets/app/none", NULL, s.token, "t_journal", &r));
        bb_resp_free(&r);
    }
    lookup(&s, "bb-none", &r); /* the journal goes to the store and starts over... */
    bb_resp_free(&r);
    for (int i = 0; i < 3; i++) { /* ...with entries after the old copy's end */
        CU_ASSERT_FATAL(get_as(&s, "/v1/secrets/app/none", NULL, s.token, "t_journal", &r));
        bb_resp_free(&r);
    }
    bb_kill(&s);
    const char *back[] = {"-p", saved, db, NULL};
    CU_ASSERT_EQUAL_FATAL(bb_run_exe("cp", back, NULL, out, sizeof(out), 10000), 0);
    const char *args[] = {"server", NULL};
    char data[440];
    snprintf(data, sizeof(data), "SCAIVAULT_DATA_DIR=%s", s.data_dir);
    const char *env[] = {data, "SCAIVAULT_LISTEN=127.0.0.1:0", NULL};
    CU_ASSERT_EQUAL(bb_run_exe(bb_bin(), args, env, out, sizeof(out), 30000), 1);
    if (strstr(out, "entries are missing") == NULL)
        fprintf(stderr, "\n  server printed: %s\n", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "entries are missing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, journal));
    CU_ASSERT_EQUAL(access(journal, F_OK), 0);
    /* the offline verifier says so too, on stdout as well as in its status */
    const char *vargs[] = {"audit", "verify", darg, NULL};
    CU_ASSERT_EQUAL(bb_run(vargs, NULL, out, sizeof(out)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ok\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the audit journal does not continue the chain"));
    /* restore instead: the journal goes with the database it belonged to, and the server starts */
    char iarg[440];
    snprintf(iarg, sizeof(iarg), "--in=%s", saved);
    const char *restore[] = {"restore", iarg, darg, "--force", NULL};
    CU_ASSERT_EQUAL(bb_run(restore, NULL, out, sizeof(out)), 0);
    CU_ASSERT_NOT_EQUAL(access(journal, F_OK), 0);
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    bb_resp_t v;
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/audit/verify", s.token, NULL, NULL, &v));
    bool ok = false;
    CU_ASSERT(bb_json_bool(&v, "ok", &ok) && ok);
    bb_resp_free(&v);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

void sv_bb_suite_audit(void)
{
    CU_pSuite s = CU_add_suite("blackbox/audit", suite_init, suite_clean);
    CU_add_test(s, "every_request_one_entry", test_every_request_one_entry);
    CU_add_test(s, "query_filters_and_pages", test_query_filters_and_pages);
    CU_add_test(s, "fail_closed", test_fail_closed);
    CU_add_test(s, "parked_connection", test_parked_connection);
    CU_add_test(s, "verify_damaged_page", test_verify_damaged_page);
    CU_add_test(s, "verify_detects_tampering", test_verify_detects_tampering);
    CU_add_test(s, "checkpoints_and_export", test_checkpoints_and_export);
    CU_add_test(s, "no_secrets_in_log", test_no_secrets_in_log);
    CU_add_test(s, "signing_key_file", test_signing_key_file);
    CU_add_test(s, "async_durability", test_async_durability);
    CU_add_test(s, "async_commit_failure", test_async_commit_failure);
    CU_add_test(s, "checkpoint_without_traffic", test_checkpoint_without_traffic);
    CU_add_test(s, "bench_unaudited_switch", test_bench_unaudited_switch);
    CU_add_test(s, "journal_survives_kill", test_journal_survives_kill);
    CU_add_test(s, "journal_of_older_store", test_journal_of_older_store);
}
