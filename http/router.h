/*
 * router.h - maps a method and a decoded path to a route, with path
 * parameters.
 *
 * Patterns are split on '/'. A segment is a literal, `{name}` (exactly one
 * segment) or `{name*}` (one or more segments, at most one per pattern; the
 * literals after it anchor the end, so "/v1/secrets/{path*}/versions" takes
 * everything between). A path may have any number of segments (a pattern at
 * most SV_ROUTE_MAX_SEGS), so a too-long secret path still reaches its
 * handler's validation. Routes are tried in the order they were added: add the
 * more specific pattern first. A path that matches some pattern but none with
 * its method gives 405 with the methods that would have matched.
 *
 * A pattern that ends in `{name*}` leaves to its sub-resources the paths they
 * match: "/v1/secrets/{path*}" does not match what "/v1/secrets/{path*}/versions"
 * (same segments before the tail, a literal last) matches, whatever the method
 * and the order the routes were added in. So `PUT .../app/versions` is 405
 * with `Allow: GET`, not a `PUT` of a secret named "app/versions"; a path too
 * short for the sub-resource ("/v1/secrets/versions") still matches the tail.
 */
#ifndef SV_HTTP_ROUTER_H
#define SV_HTTP_ROUTER_H

#include "src/config.h"
#include "src/sv.h"

typedef struct sv_req sv_req_t;
typedef void (*sv_handler_fn)(sv_req_t *req);

#define SV_ROUTE_MAX_PARAMS 4
#define SV_ROUTE_MAX_SEGS 16
#define SV_ROUTE_MAX_SHADOWS 8 /* sub-resource patterns under one {name*} pattern */

enum {
    SV_ROUTE_PUBLIC = 1u << 0,   /* no authentication */
    SV_ROUTE_NO_AUDIT = 1u << 1, /* liveness/readiness probes only */
    SV_ROUTE_TENANT = 1u << 2,   /* needs a tenant (token claim or X-ScaiVault-Tenant) */
    SV_ROUTE_SECURE_BODY = 1u << 3, /* the body may carry secret values: parse into secure memory */
    SV_ROUTE_DEV = 1u << 4,      /* exists only in --dev */
    SV_ROUTE_TEST = 1u << 5,     /* exists only with SCAIVAULT_TEST_FAULTS=true */
    SV_ROUTE_AUDIT_FRESH = 1u << 6, /* reads the audit log: runs once the journal's entries are in the store */
};

typedef struct sv_route {
    const char *method;  /* "GET", ... */
    const char *pattern; /* "/v1/secrets/{path*}" */
    sv_handler_fn handler;
    uint32_t scope;      /* SV_SCOPE_* required, 0 for none */
    int rate_category;   /* sv_rl_category_t, or -1 for none */
    unsigned flags;      /* SV_ROUTE_* */
    const char *action;  /* audit action, e.g. "secret_read" */
    /* for a request refused before its handler ran (rate limit, missing
     * scope), and so without an audit path yet: names what it was for, as
     * the handler would have, when the URL gives that in a usable form; NULL:
     * the entry has no path */
    sv_handler_fn refused_audit;
    /* compiled */
    unsigned n_segs;
    int tail; /* index of the {name*} segment, -1 for none */
    struct {
        const char *text;
        size_t len;
        int kind; /* 0 literal, 1 one segment, 2 tail */
    } segs[SV_ROUTE_MAX_SEGS];
    /* when the pattern ends in {name*}: the indexes of the routes (one per
     * pattern) whose paths it leaves to them, kept by sv_router_add */
    unsigned n_shadows;
    unsigned shadows[SV_ROUTE_MAX_SHADOWS];
} sv_route_t;

typedef struct sv_router sv_router_t;

typedef struct {
    const char *name; /* parameter name (without braces) */
    const char *value; /* points into the decoded path; not NUL-terminated */
    size_t len;
} sv_route_param_t;

typedef struct {
    const sv_route_t *route; /* NULL: no match */
    sv_route_param_t params[SV_ROUTE_MAX_PARAMS];
    unsigned n_params;
    char allow[96]; /* when route is NULL but the path exists: "GET, PUT" */
} sv_route_match_t;

sv_err_t sv_router_new(sv_router_t **out);
void sv_router_free(sv_router_t *r);
/** Adds a route (the struct is copied; its strings must be static; its
 * compiled fields are ignored). SV_EINVAL for a bad pattern, or when a
 * {name*} pattern would get more than SV_ROUTE_MAX_SHADOWS sub-resource
 * patterns; SV_ENOMEM. */
sv_err_t sv_router_add(sv_router_t *r, const sv_route_t *route);
/** Adds n routes; stops at the first error. */
sv_err_t sv_router_add_all(sv_router_t *r, const sv_route_t *routes, size_t n);
/** Calls fn for every route, in the order they were added (documentation
 * checks, listings). */
void sv_router_each(const sv_router_t *r, void (*fn)(void *arg, const sv_route_t *route), void *arg);
/** Matches method and path (decoded, no query; any length). The params
 * point into path. Uses no memory that grows with the path. */
void sv_router_match(const sv_router_t *r, const char *method, size_t method_len, const char *path, size_t path_len,
                     unsigned enabled_flags, sv_route_match_t *m);

/** The number of routes added. */
size_t sv_router_count(const sv_router_t *r);
/** Route i (0 <= i < count), or NULL. Valid until the next sv_router_add. */
const sv_route_t *sv_router_route(const sv_router_t *r, size_t i);
/** The index of a route returned by sv_router_match, or SIZE_MAX when it is
 * not one of r's (e.g. NULL). */
size_t sv_router_index(const sv_router_t *r, const sv_route_t *route);

#endif
