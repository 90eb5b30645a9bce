/*
 * router.c - the route table of router.h. Built once on the main thread;
 * matched read-only by every worker. A linear scan over a few dozen routes
 * with early literal rejection costs well under a microsecond.
 */
#include "sv_autoconf.h"

#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sv_router {
    sv_route_t *routes;
    size_t n, cap;
};

void sv_router_each(const sv_router_t *r, void (*fn)(void *arg, const sv_route_t *route), void *arg)
{
    for (size_t i = 0; i < r->n; i++)
        fn(arg, &r->routes[i]);
}

sv_err_t sv_router_new(sv_router_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? SV_OK : SV_ENOMEM;
}

void sv_router_free(sv_router_t *r)
{
    if (r == NULL)
        return;
    free(r->routes);
    free(r);
}

static sv_err_t compile(sv_route_t *rt)
{
    const char *p = rt->pattern;
    if (*p != '/')
        return SV_EINVAL;
    rt->n_segs = 0;
    rt->tail = -1;
    while (*p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (rt->n_segs == SV_ROUTE_MAX_SEGS)
            return SV_EINVAL;
        int kind = 0;
        const char *text = p;
        if (len >= 3 && p[0] == '{' && p[len - 1] == '}') {
            kind = (p[len - 2] == '*') ? 2 : 1;
            text = p + 1;
            len -= kind == 2 ? 3 : 2;
            if (kind == 2) {
                if (rt->tail >= 0)
                    return SV_EINVAL;
                rt->tail = (int)rt->n_segs;
            }
        }
        rt->segs[rt->n_segs].text = text;
        rt->segs[rt->n_segs].len = len;
        rt->segs[rt->n_segs].kind = kind;
        rt->n_segs++;
        p += end ? (size_t)(end - p) : strlen(p);
    }
    return SV_OK;
}

sv_err_t sv_router_add(sv_router_t *r, const sv_route_t *route)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        sv_route_t *nr = realloc(r->routes, cap * sizeof(*nr));
        if (nr == NULL)
            return SV_ENOMEM;
        r->routes = nr;
        r->cap = cap;
    }
    sv_route_t *rt = &r->routes[r->n];
    *rt = *route;
    sv_err_t err = compile(rt);
    if (err != SV_OK)
        return err;
    r->n++;
    return SV_OK;
}

sv_err_t sv_router_add_all(sv_router_t *r, const sv_route_t *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sv_err_t err = sv_router_add(r, &routes[i]);
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

size_t sv_router_count(const sv_router_t *r)
{
    return r->n;
}

const sv_route_t *sv_router_route(const sv_router_t *r, size_t i)
{
    return i < r->n ? &r->routes[i] : NULL;
}

size_t sv_router_index(const sv_router_t *r, const sv_route_t *route)
{
    if (route == NULL || route < r->routes || route >= r->routes + r->n)
        return SIZE_MAX;
    return (size_t)(route - r->routes);
}

/* ---- matching ----
 *
 * The path is never split into an array: a URL may be as long as h2o accepts
 * (a secret path alone may have 256 segments, and a too-long one must still
 * reach its handler for a 400 invalid_path). The segments are counted once;
 * then the pattern's segments before the tail are matched from the front of
 * the path, those after it from the back, and the tail takes what is between.
 * The stack use is bounded by SV_ROUTE_MAX_SEGS. */

typedef struct {
    const char *p;
    size_t len;
} seg_t;

/* Binds each of rt's segments to its part of path (n segments, path[0] ==
 * '/'), into bound[]. False when the segment counts or a literal differ. */
static bool bind_route(const sv_route_t *rt, const char *path, size_t path_len, size_t n, seg_t *bound)
{
    unsigned head = rt->tail >= 0 ? (unsigned)rt->tail : rt->n_segs;
    if (rt->tail >= 0 ? n < rt->n_segs : n != rt->n_segs)
        return false;
    size_t pos = 1; /* start of the next segment from the front */
    for (unsigned i = 0; i < head; i++) {
        const char *slash = memchr(path + pos, '/', path_len - pos);
        size_t end = slash ? (size_t)(slash - path) : path_len;
        bound[i] = (seg_t){path + pos, end - pos};
        pos = end + 1;
    }
    if (rt->tail >= 0) {
        size_t end = path_len; /* end of the next segment from the back */
        for (unsigned i = rt->n_segs - 1; i > head; i--) {
            size_t start = end;
            while (path[start - 1] != '/')
                start--;
            bound[i] = (seg_t){path + start, end - start};
            end = start - 1;
        }
        /* n >= n_segs leaves at least one segment between head and suffix */
        bound[head] = (seg_t){path + pos, end - pos};
    }
    for (unsigned i = 0; i < rt->n_segs; i++) {
        if (rt->segs[i].kind == 0 &&
            (bound[i].len != rt->segs[i].len || memcmp(bound[i].p, rt->segs[i].text, bound[i].len) != 0))
            return false;
    }
    return true;
}

static bool match_route(const sv_route_t *rt, const char *path, size_t path_len, size_t n, sv_route_match_t *m)
{
    seg_t bound[SV_ROUTE_MAX_SEGS];
    if (!bind_route(rt, path, path_len, n, bound))
        return false;
    if (m != NULL) {
        unsigned np = 0;
        for (unsigned i = 0; i < rt->n_segs; i++) {
            if (rt->segs[i].kind != 0 && np < SV_ROUTE_MAX_PARAMS)
                m->params[np++] = (sv_route_param_t){rt->segs[i].text, bound[i].p, bound[i].len};
        }
        m->n_params = np;
    }
    return true;
}

void sv_router_match(const sv_router_t *r, const char *method, size_t method_len, const char *path, size_t path_len,
                     unsigned enabled_flags, sv_route_match_t *m)
{
    memset(m, 0, sizeof(*m));
    if (path_len == 0 || path[0] != '/')
        return;
    size_t n = 1; /* segments: one more than the slashes after the first */
    for (const char *s = path + 1; (s = memchr(s, '/', (size_t)(path + path_len - s))) != NULL; s++)
        n++;
    size_t allow_len = 0;
    for (size_t k = 0; k < r->n; k++) {
        const sv_route_t *rt = &r->routes[k];
        unsigned gated = rt->flags & (SV_ROUTE_DEV | SV_ROUTE_TEST);
        if (gated != 0 && (gated & enabled_flags) != gated)
            continue;
        bool same_method = strlen(rt->method) == method_len && memcmp(rt->method, method, method_len) == 0;
        if (same_method) {
            if (match_route(rt, path, path_len, n, m)) {
                m->route = rt;
                return;
            }
        } else if (match_route(rt, path, path_len, n, NULL)) {
            size_t ml = strlen(rt->method);
            if (strstr(m->allow, rt->method) == NULL && allow_len + ml + 2 < sizeof(m->allow)) {
                if (allow_len > 0) {
                    memcpy(m->allow + allow_len, ", ", 2);
                    allow_len += 2;
                }
                memcpy(m->allow + allow_len, rt->method, ml);
                allow_len += ml;
                m->allow[allow_len] = 0;
            }
        }
    }
}
