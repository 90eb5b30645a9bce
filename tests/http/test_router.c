/* tests/http/test_router.c - route matching (http/router.c). */
#include "sv_autoconf.h"

#include "http/router.h"
#include "tests/unit.h"

#include <stdlib.h>

static void h(sv_req_t *req)
{
}

static sv_router_t *build(void)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/health", .handler = h},
        {.method = "GET", .pattern = "/v1/secrets/{path*}/versions", .handler = h},
        {.method = "POST", .pattern = "/v1/secrets/batch", .handler = h},
        {.method = "GET", .pattern = "/v1/secrets/{path*}", .handler = h},
        {.method = "PUT", .pattern = "/v1/secrets/{path*}", .handler = h},
        {.method = "GET", .pattern = "/v1/policies/{name}", .handler = h},
        {.method = "GET", .pattern = "/v1/dev/jwks", .handler = h, .flags = SV_ROUTE_DEV},
    };
    sv_router_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_router_new(&r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_router_add_all(r, routes, SV_ARRAY_LEN(routes)), SV_OK);
    return r;
}

static void match(sv_router_t *r, const char *m, const char *p, sv_route_match_t *out)
{
    sv_router_match(r, m, strlen(m), p, strlen(p), 0, out);
}

static void test_literal_and_params(void)
{
    sv_router_t *r = build();
    sv_route_match_t m;
    match(r, "GET", "/v1/health", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
    CU_ASSERT_STRING_EQUAL(m.route->pattern, "/v1/health");
    match(r, "GET", "/v1/policies/billing-db", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
    CU_ASSERT_EQUAL(m.n_params, 1);
    CU_ASSERT_EQUAL(m.params[0].len, 10);
    CU_ASSERT(memcmp(m.params[0].value, "billing-db", 10) == 0);
    match(r, "GET", "/v1/policies/a/b", &m);
    CU_ASSERT_PTR_NULL(m.route);
    CU_ASSERT_STRING_EQUAL(m.allow, "");
    sv_router_free(r);
}

static void test_tail(void)
{
    sv_router_t *r = build();
    sv_route_match_t m;
    match(r, "GET", "/v1/secrets/app/db/password", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
    CU_ASSERT_STRING_EQUAL(m.route->pattern, "/v1/secrets/{path*}");
    CU_ASSERT_EQUAL(m.params[0].len, strlen("app/db/password"));
    CU_ASSERT(memcmp(m.params[0].value, "app/db/password", m.params[0].len) == 0);
    match(r, "GET", "/v1/secrets/app/db/password/versions", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
    CU_ASSERT_STRING_EQUAL(m.route->pattern, "/v1/secrets/{path*}/versions");
    CU_ASSERT(m.params[0].len == strlen("app/db/password") &&
              memcmp(m.params[0].value, "app/db/password", m.params[0].len) == 0);
    match(r, "GET", "/v1/secrets/versions", &m); /* a secret named "versions" */
    CU_ASSERT_STRING_EQUAL(m.route->pattern, "/v1/secrets/{path*}");
    match(r, "GET", "/v1/secrets", &m);
    CU_ASSERT_PTR_NULL(m.route);
    sv_router_free(r);
}

static void test_method_not_allowed(void)
{
    sv_router_t *r = build();
    sv_route_match_t m;
    match(r, "DELETE", "/v1/secrets/a/b", &m);
    CU_ASSERT_PTR_NULL(m.route);
    CU_ASSERT_STRING_EQUAL(m.allow, "GET, PUT");
    match(r, "POST", "/v1/health", &m);
    CU_ASSERT_STRING_EQUAL(m.allow, "GET");
    sv_router_free(r);
}

static void test_gated(void)
{
    sv_router_t *r = build();
    sv_route_match_t m;
    match(r, "GET", "/v1/dev/jwks", &m);
    CU_ASSERT_PTR_NULL(m.route);
    sv_router_match(r, "GET", 3, "/v1/dev/jwks", 12, SV_ROUTE_DEV, &m);
    CU_ASSERT_PTR_NOT_NULL(m.route);
    sv_router_free(r);
}

static void test_bad_patterns(void)
{
    sv_router_t *r;
    sv_router_new(&r);
    sv_route_t bad1 = {.method = "GET", .pattern = "v1/x", .handler = h};
    sv_route_t bad2 = {.method = "GET", .pattern = "/v1/{a*}/{b*}", .handler = h};
    CU_ASSERT_EQUAL(sv_router_add(r, &bad1), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_router_add(r, &bad2), SV_EINVAL);
    sv_router_free(r);
}

/* "/v1/secrets/a/a/.../a" with n segments after the prefix (finding: a fixed
 * array of 128 segments made longer paths 404) */
static char *many_segments(const char *prefix, size_t n, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *p = malloc(pl + 2 * n + sl + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memcpy(p, prefix, pl);
    for (size_t i = 0; i < n; i++)
        memcpy(p + pl + 2 * i, "/a", 2);
    memcpy(p + pl + 2 * n, suffix, sl + 1);
    return p;
}

static void test_long_paths(void)
{
    sv_router_t *r = build();
    sv_route_match_t m;
    size_t counts[] = {126, 127, 256, 300, 50000};
    for (size_t i = 0; i < SV_ARRAY_LEN(counts); i++) {
        char *p = many_segments("/v1/secrets", counts[i], "");
        match(r, "GET", p, &m);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
        CU_ASSERT_STRING_EQUAL(m.route->pattern, "/v1/secrets/{path*}");
        CU_ASSERT_EQUAL(m.params[0].len, 2 * counts[i] - 1);
        CU_ASSERT(m.params[0].value == p + strlen("/v1/secrets/"));
        match(r, "DELETE", p, &m);
        CU_ASSERT_PTR_NULL(m.route);
        CU_ASSERT_STRING_EQUAL(m.allow, "GET, PUT");
        free(p);
        p = many_segments("/v1/secrets", counts[i], "/versions");
        match(r, "GET", p, &m);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
        CU_ASSERT_STRING_EQUAL(m.route->pattern, "/v1/secrets/{path*}/versions");
        CU_ASSERT_EQUAL(m.params[0].len, 2 * counts[i] - 1);
        free(p);
    }
    sv_router_free(r);
}

/* A tail between a parameter and literals and a parameter after it: every
 * part binds in pattern order, the tail takes what is between. */
static void test_tail_in_middle(void)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/o/{id}/{rest*}/x/{last}", .handler = h},
    };
    sv_router_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_router_new(&r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_router_add_all(r, routes, SV_ARRAY_LEN(routes)), SV_OK);
    sv_route_match_t m;
    match(r, "GET", "/v1/o/tnt/p/q/x/x/end", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
    CU_ASSERT_EQUAL_FATAL(m.n_params, 3);
    CU_ASSERT(m.params[0].len == 3 && memcmp(m.params[0].value, "tnt", 3) == 0);
    CU_ASSERT(strncmp(m.params[1].name, "rest*}", 6) == 0);
    CU_ASSERT(m.params[1].len == 5 && memcmp(m.params[1].value, "p/q/x", 5) == 0);
    CU_ASSERT(m.params[2].len == 3 && memcmp(m.params[2].value, "end", 3) == 0);
    match(r, "GET", "/v1/o/tnt//x/", &m); /* empty segments still count */
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
    CU_ASSERT(m.params[1].len == 0 && m.params[2].len == 0);
    match(r, "GET", "/v1/o/tnt/x/end", &m); /* the tail needs a segment */
    CU_ASSERT_PTR_NULL(m.route);
    match(r, "GET", "/v1/o/tnt/p/y/end", &m);
    CU_ASSERT_PTR_NULL(m.route);
    sv_router_free(r);
}

void sv_test_suite_router(void)
{
    SV_SUITE("http/router", {"literal_and_params", test_literal_and_params}, {"tail", test_tail},
             {"method_not_allowed", test_method_not_allowed}, {"gated", test_gated},
             {"bad_patterns", test_bad_patterns}, {"long_paths", test_long_paths},
             {"tail_in_middle", test_tail_in_middle});
}
