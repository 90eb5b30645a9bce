/*
 * router.c - the route table of router.h. Built once on the main thread;
 * matched read-only by every worker. A linear scan over a few dozen routes
 * with early literal rejection costs well under a microsecond.
 *
 * Which sub-resource patterns shadow a {name*} pattern is worked out when a
 * route is added, in both directions (the sub-resource may come before or
 * after it), so that matching only compares the path's last segment with the
 * last literal of each: no allocation, nothing that grows with the path.
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
    rt->n_shadows = 0;
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

/* Whether sub is a sub-resource pattern of tail: tail ends in its {name*};
 * sub has the same segments before a {name*} at the same place, and a literal
 * last ("/v1/secrets/{path*}" and "/v1/secrets/{path*}/versions"). */
static bool is_sub_resource(const sv_route_t *tail, const sv_route_t *sub)
{
    if (tail->tail < 0 || (unsigned)tail->tail != tail->n_segs - 1 || sub->tail != tail->tail ||
        sub->n_segs <= tail->n_segs || sub->segs[sub->n_segs - 1].kind != 0)
        return false;
    for (int i = 0; i < tail->tail; i++) {
        if (tail->segs[i].kind != sub->segs[i].kind)
            return false;
        if (tail->segs[i].kind == 0 && (tail->segs[i].len != sub->segs[i].len ||
                                        memcmp(tail->segs[i].text, sub->segs[i].text, tail->segs[i].len) != 0))
            return false;
    }
    return true;
}

/* Whether rt's shadows already hold a route with sub's pattern. */
static bool has_shadow(const sv_router_t *r, const sv_route_t *rt, const sv_route_t *sub)
{
    for (unsigned i = 0; i < rt->n_shadows; i++)
        if (strcmp(r->routes[rt->shadows[i]].pattern, sub->pattern) == 0)
            return true;
    return false;
}

/* Links the new route rt (index r->n, not yet counted) with the routes before
 * it: its own sub-resources, and the {name*} routes it is a sub-resource of.
 * SV_EINVAL, changing nothing, when a list would overflow. */
static sv_err_t link_shadows(sv_router_t *r, sv_route_t *rt)
{
    for (size_t k = 0; k < r->n; k++) {
        const sv_route_t *o = &r->routes[k];
        if (is_sub_resource(o, rt) && !has_shadow(r, o, rt) && o->n_shadows == SV_ROUTE_MAX_SHADOWS)
            return SV_EINVAL;
    }
    for (size_t k = 0; k < r->n; k++) {
        if (is_sub_resource(rt, &r->routes[k]) && !has_shadow(r, rt, &r->routes[k])) {
            if (rt->n_shadows == SV_ROUTE_MAX_SHADOWS)
                return SV_EINVAL;
            rt->shadows[rt->n_shadows++] = (unsigned)k;
        }
    }
    for (size_t k = 0; k < r->n; k++) {
        sv_route_t *o = &r->routes[k];
        if (is_sub_resource(o, rt) && !has_shadow(r, o, rt))
            o->shadows[o->n_shadows++] = (unsigned)r->n;
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
    if (err == SV_OK)
        err = link_shadows(r, rt);
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

static bool route_enabled(const sv_route_t *rt, unsigned enabled_flags)
{
    unsigned gated = rt->flags & (SV_ROUTE_DEV | SV_ROUTE_TEST);
    return gated == 0 || (gated & enabled_flags) == gated;
}

/* The path as match_route sees it: its n segments and the last one. */
typedef struct {
    const char *p;
    size_t len, n;
    seg_t last;
} path_t;

/* Whether one of rt's (enabled) sub-resource patterns matches the path: only
 * those whose last literal is the path's last segment are bound. */
static bool shadowed(const sv_router_t *r, const sv_route_t *rt, const path_t *path, unsigned enabled_flags)
{
    seg_t bound[SV_ROUTE_MAX_SEGS];
    for (unsigned i = 0; i < rt->n_shadows; i++) {
        const sv_route_t *sub = &r->routes[rt->shadows[i]];
        size_t len = sub->segs[sub->n_segs - 1].len;
        if (path->n >= sub->n_segs && path->last.len == len &&
            memcmp(path->last.p, sub->segs[sub->n_segs - 1].text, len) == 0 && route_enabled(sub, enabled_flags) &&
            bind_route(sub, path->p, path->len, path->n, bound))
            return true;
    }
    return false;
}

static bool match_route(const sv_router_t *r, const sv_route_t *rt, const path_t *path, unsigned enabled_flags,
                        sv_route_match_t *m)
{
    seg_t bound[SV_ROUTE_MAX_SEGS];
    if (!bind_route(rt, path->p, path->len, path->n, bound) || shadowed(r, rt, path, enabled_flags))
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
    path_t pv = {path, path_len, 1, {NULL, 0}}; /* segments: one more than the slashes after the first */
    const char *last = path + 1;
    for (const char *s = path + 1; (s = memchr(s, '/', (size_t)(path + path_len - s))) != NULL; s++) {
        pv.n++;
        last = s + 1;
    }
    pv.last = (seg_t){last, (size_t)(path + path_len - last)};
    size_t allow_len = 0;
    for (size_t k = 0; k < r->n; k++) {
        const sv_route_t *rt = &r->routes[k];
        if (!route_enabled(rt, enabled_flags))
            continue;
        bool same_method = strlen(rt->method) == method_len && memcmp(rt->method, method, method_len) == 0;
        if (same_method) {
            if (match_route(r, rt, &pv, enabled_flags, m)) {
                m->route = rt;
                return;
            }
        } else if (match_route(r, rt, &pv, enabled_flags, NULL)) {
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
