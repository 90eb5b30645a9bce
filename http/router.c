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
    bool tail_seen = false;
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
                if (tail_seen)
                    return SV_EINVAL;
                tail_seen = true;
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

typedef struct {
    const char *p;
    size_t len;
} seg_t;

static bool match_route(const sv_route_t *rt, const seg_t *segs, unsigned n, sv_route_match_t *m)
{
    unsigned tail_len = 0;
    bool has_tail = false;
    for (unsigned i = 0; i < rt->n_segs; i++)
        has_tail = has_tail || rt->segs[i].kind == 2;
    if (has_tail) {
        if (n < rt->n_segs)
            return false;
        tail_len = n - (rt->n_segs - 1);
    } else if (n != rt->n_segs) {
        return false;
    }
    unsigned si = 0, np = 0;
    for (unsigned i = 0; i < rt->n_segs; i++) {
        const seg_t *s = &segs[si];
        switch (rt->segs[i].kind) {
        case 0:
            if (s->len != rt->segs[i].len || memcmp(s->p, rt->segs[i].text, s->len) != 0)
                return false;
            si++;
            break;
        case 1:
            if (m != NULL && np < SV_ROUTE_MAX_PARAMS)
                m->params[np++] = (sv_route_param_t){rt->segs[i].text, s->p, s->len};
            si++;
            break;
        case 2: {
            const seg_t *last = &segs[si + tail_len - 1];
            if (m != NULL && np < SV_ROUTE_MAX_PARAMS)
                m->params[np++] = (sv_route_param_t){rt->segs[i].text, s->p, (size_t)(last->p + last->len - s->p)};
            si += tail_len;
            break;
        }
        }
    }
    if (m != NULL)
        m->n_params = np;
    return true;
}

void sv_router_match(const sv_router_t *r, const char *method, size_t method_len, const char *path, size_t path_len,
                     unsigned enabled_flags, sv_route_match_t *m)
{
    memset(m, 0, sizeof(*m));
    seg_t segs[128];
    unsigned n = 0;
    if (path_len == 0 || path[0] != '/')
        return;
    size_t i = 1;
    for (;;) {
        size_t start = i;
        while (i < path_len && path[i] != '/')
            i++;
        if (n == SV_ARRAY_LEN(segs))
            return;
        segs[n++] = (seg_t){path + start, i - start};
        if (i >= path_len)
            break;
        i++;
    }
    size_t allow_len = 0;
    for (size_t k = 0; k < r->n; k++) {
        const sv_route_t *rt = &r->routes[k];
        unsigned gated = rt->flags & (SV_ROUTE_DEV | SV_ROUTE_TEST);
        if (gated != 0 && (gated & enabled_flags) != gated)
            continue;
        bool same_method = strlen(rt->method) == method_len && memcmp(rt->method, method, method_len) == 0;
        if (same_method) {
            if (match_route(rt, segs, n, m)) {
                m->route = rt;
                return;
            }
        } else if (match_route(rt, segs, n, NULL)) {
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
