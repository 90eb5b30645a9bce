/* tests/http/test_router.c - route matching (http/router.c). */
#include "sv_autoconf.h"

#include "http/router.h"
#include "tests/unit.h"

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

void sv_test_suite_router(void)
{
    SV_SUITE("http/router", {"literal_and_params", test_literal_and_params}, {"tail", test_tail},
             {"method_not_allowed", test_method_not_allowed}, {"gated", test_gated},
             {"bad_patterns", test_bad_patterns});
}
