/* tests/http/test_router.c - route matching (http/router.c). */
#include "sv_autoconf.h"

#include "http/router.h"
#include "tests/unit.h"

#include <stdio.h>
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
    /* the {path*} routes cannot take a path that names a sub-resource */
    match(r, "PUT", "/v1/secrets/a/b/versions", &m);
    CU_ASSERT_PTR_NULL(m.route);
    CU_ASSERT_STRING_EQUAL(m.allow, "GET");
    sv_router_free(r);
}

static void match_flags(sv_router_t *r, const char *m, const char *p, unsigned flags, sv_route_match_t *out)
{
    sv_router_match(r, m, strlen(m), p, strlen(p), flags, out);
}

/* Expects method path to match pattern, or (pattern NULL) a 405 with allow. */
static void expect_route(sv_router_t *r, const char *method, const char *path, unsigned flags, const char *pattern,
                         const char *allow)
{
    sv_route_match_t m;
    match_flags(r, method, path, flags, &m);
    if (pattern != NULL) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(m.route);
        CU_ASSERT_STRING_EQUAL(m.route->pattern, pattern);
        CU_ASSERT_STRING_EQUAL(m.route->method, method);
    } else {
        if (m.route != NULL)
            fprintf(stderr, "\n  %s %s matched %s %s\n", method, path, m.route->method, m.route->pattern);
        CU_ASSERT_PTR_NULL(m.route);
        CU_ASSERT_STRING_EQUAL(m.allow, allow);
    }
}

/* A {name*} pattern leaves to its sub-resource patterns the paths they match,
 * whichever was added first, whatever the method (finding: GET .../undelete
 * reached GET {path*} and was a 400, and PATCH .../undelete listed GET, PUT
 * and DELETE in Allow). */
static void test_sub_resources(void)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/secrets/{path*}/versions", .handler = h},
        {.method = "GET", .pattern = "/v1/secrets/{path*}", .handler = h},
        {.method = "PUT", .pattern = "/v1/secrets/{path*}", .handler = h},
        {.method = "DELETE", .pattern = "/v1/secrets/{path*}", .handler = h},
        /* added after the routes they shadow */
        {.method = "PATCH", .pattern = "/v1/secrets/{path*}/config", .handler = h},
        {.method = "POST", .pattern = "/v1/secrets/{path*}/undelete", .handler = h},
        {.method = "DELETE", .pattern = "/v1/secrets/{path*}/undelete", .handler = h},
        {.method = "POST", .pattern = "/v1/secrets/{path*}/dev-only", .handler = h, .flags = SV_ROUTE_DEV},
        {.method = "GET", .pattern = "/v1/partner/secrets/{path*}", .handler = h},
        {.method = "GET", .pattern = "/v1/o/{id}/{rest*}", .handler = h},
        {.method = "POST", .pattern = "/v1/o/{id}/{rest*}/a/b", .handler = h},
    };
    sv_router_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_router_new(&r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_router_add_all(r, routes, SV_ARRAY_LEN(routes)), SV_OK);
    const char *tail = "/v1/secrets/{path*}";
    expect_route(r, "GET", "/v1/secrets/app/db/undelete", 0, NULL, "POST, DELETE");
    expect_route(r, "PATCH", "/v1/secrets/app/db/undelete", 0, NULL, "POST, DELETE");
    expect_route(r, "PUT", "/v1/secrets/app/db/config", 0, NULL, "PATCH");
    expect_route(r, "DELETE", "/v1/secrets/app/db/versions", 0, NULL, "GET");
    expect_route(r, "PUT", "/v1/secrets/app/versions", 0, NULL, "GET"); /* the versions of "app" */
    expect_route(r, "POST", "/v1/secrets/app/db/versions", 0, NULL, "GET");
    expect_route(r, "POST", "/v1/secrets/app/db/undelete", 0, "/v1/secrets/{path*}/undelete", NULL);
    expect_route(r, "DELETE", "/v1/secrets/app/db/undelete", 0, "/v1/secrets/{path*}/undelete", NULL);
    expect_route(r, "GET", "/v1/secrets/app/db/versions", 0, "/v1/secrets/{path*}/versions", NULL);
    /* too short for a sub-resource: the tail takes it (the handler refuses it) */
    expect_route(r, "PUT", "/v1/secrets/versions", 0, tail, NULL);
    expect_route(r, "GET", "/v1/secrets/undelete", 0, tail, NULL);
    /* a last segment no route ends in, or one that only ends in it */
    expect_route(r, "GET", "/v1/secrets/app/db/rotate", 0, tail, NULL);
    expect_route(r, "GET", "/v1/secrets/app/db/versionsx", 0, tail, NULL);
    expect_route(r, "GET", "/v1/secrets/app/versions/db", 0, tail, NULL);
    expect_route(r, "DELETE", "/v1/secrets/app/db", 0, tail, NULL);
    /* a sub-resource route that is not enabled shadows nothing */
    expect_route(r, "GET", "/v1/secrets/app/dev-only", 0, tail, NULL);
    expect_route(r, "GET", "/v1/secrets/app/dev-only", SV_ROUTE_DEV, NULL, "POST");
    /* another prefix is not shadowed */
    expect_route(r, "GET", "/v1/partner/secrets/app/versions", 0, "/v1/partner/secrets/{path*}", NULL);
    /* a parameter before the tail, and more than one literal after it */
    expect_route(r, "GET", "/v1/o/x/p/q/b", 0, "/v1/o/{id}/{rest*}", NULL);
    expect_route(r, "GET", "/v1/o/x/a/b", 0, "/v1/o/{id}/{rest*}", NULL); /* too short for {rest*}/a/b */
    expect_route(r, "GET", "/v1/o/x/p/a/b", 0, NULL, "POST");
    sv_route_match_t m;
    match(r, "GET", "/v1/secrets/app/db/versions", &m);
    CU_ASSERT(m.n_params == 1 && m.params[0].len == 6 && memcmp(m.params[0].value, "app/db", 6) == 0);
    sv_router_free(r);
}

/* Past SV_ROUTE_MAX_SHADOWS sub-resource patterns under one {name*} pattern
 * the add fails and changes nothing; the same pattern again takes no room. */
static void test_sub_resource_limit(void)
{
    static const char *const patterns[] = {"/v/{p*}/a", "/v/{p*}/b", "/v/{p*}/c", "/v/{p*}/d", "/v/{p*}/e",
                                           "/v/{p*}/f", "/v/{p*}/g", "/v/{p*}/h", "/v/{p*}/i"};
    sv_router_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_router_new(&r), SV_OK);
    sv_route_t tail = {.method = "GET", .pattern = "/v/{p*}", .handler = h};
    CU_ASSERT_EQUAL(sv_router_add(r, &tail), SV_OK);
    for (size_t i = 0; i < SV_ROUTE_MAX_SHADOWS; i++) {
        sv_route_t sub = {.method = "POST", .pattern = patterns[i], .handler = h};
        CU_ASSERT_EQUAL(sv_router_add(r, &sub), SV_OK);
    }
    sv_route_t again = {.method = "PUT", .pattern = patterns[0], .handler = h};
    CU_ASSERT_EQUAL(sv_router_add(r, &again), SV_OK);
    sv_route_t extra = {.method = "POST", .pattern = patterns[SV_ROUTE_MAX_SHADOWS], .handler = h};
    CU_ASSERT_EQUAL(sv_router_add(r, &extra), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_router_count(r), SV_ROUTE_MAX_SHADOWS + 2);
    sv_route_match_t m;
    match(r, "GET", "/v/x/i", &m);
    CU_ASSERT(m.route != NULL && strcmp(m.route->pattern, "/v/{p*}") == 0);
    match(r, "GET", "/v/x/a", &m);
    CU_ASSERT_PTR_NULL(m.route);
    CU_ASSERT_STRING_EQUAL(m.allow, "POST, PUT");
    sv_router_free(r);
    /* a tail route added after more sub-resources than it can hold */
    CU_ASSERT_EQUAL_FATAL(sv_router_new(&r), SV_OK);
    for (size_t i = 0; i <= SV_ROUTE_MAX_SHADOWS; i++) {
        sv_route_t sub = {.method = "POST", .pattern = patterns[i], .handler = h};
        CU_ASSERT_EQUAL(sv_router_add(r, &sub), SV_OK);
    }
    CU_ASSERT_EQUAL(sv_router_add(r, &tail), SV_EINVAL);
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
             {"tail_in_middle", test_tail_in_middle}, {"sub_resources", test_sub_resources},
             {"sub_resource_limit", test_sub_resource_limit});
}
