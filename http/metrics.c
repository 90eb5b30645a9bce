/*
 * metrics.c - per-route HTTP metrics (metrics.h).
 *
 * The route table is fixed once the server starts, so each route gets a slot
 * by its index in the router, plus one slot for requests that matched no
 * route. A slot counts statuses in a small array whose entries are claimed
 * with a compare-and-swap the first time a status is seen; a route answers
 * with only a handful of distinct statuses, and any beyond the array are
 * counted as status "other". Everything is relaxed atomics: workers never
 * wait for each other or for a scrape.
 *
 * Threads: record from every worker; the collector from the scraping worker.
 */
#include "sv_autoconf.h"

#include "http/metrics.h"

#include <stdlib.h>
#include <string.h>

#define STATUS_SLOTS 12

typedef struct {
    _Atomic uint32_t status[STATUS_SLOTS]; /* 0: free */
    atomic_uint_fast64_t count[STATUS_SLOTS];
    atomic_uint_fast64_t other;
    atomic_uint_fast64_t buckets[SV_LATENCY_BUCKETS];
    atomic_uint_fast64_t sum_us;
} route_stats_t;

struct sv_http_metrics {
    const sv_router_t *router;
    sv_metrics_t *registry;
    size_t n_routes;
    route_stats_t *stats; /* n_routes + 1; the last is "no route" */
};

static void collect(void *arg, sv_buf_t *out);

sv_err_t sv_http_metrics_new(const sv_router_t *r, sv_metrics_t *registry, sv_http_metrics_t **out)
{
    sv_http_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return SV_ENOMEM;
    m->router = r;
    m->n_routes = sv_router_count(r);
    m->stats = calloc(m->n_routes + 1, sizeof(*m->stats));
    if (m->stats == NULL)
        goto fail;
    if (registry != NULL) {
        if (sv_metrics_add_collector(registry, collect, m) != SV_OK)
            goto fail;
        m->registry = registry;
    }
    *out = m;
    return SV_OK;

fail:
    free(m->stats);
    free(m);
    return SV_ENOMEM;
}

void sv_http_metrics_free(sv_http_metrics_t *m)
{
    if (m == NULL)
        return;
    if (m->registry != NULL)
        sv_metrics_remove_collector(m->registry, collect, m);
    free(m->stats);
    free(m);
}

void sv_http_metrics_record(sv_http_metrics_t *m, const sv_route_t *route, int status, uint64_t duration_us)
{
    if (m == NULL)
        return;
    size_t i = sv_router_index(m->router, route);
    route_stats_t *st = &m->stats[i < m->n_routes ? i : m->n_routes];
    uint32_t want = status > 0 ? (uint32_t)status : 1;
    bool counted = false;
    for (int k = 0; k < STATUS_SLOTS && !counted; k++) {
        uint32_t s = atomic_load_explicit(&st->status[k], memory_order_acquire);
        if (s == 0) {
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong(&st->status[k], &expected, want))
                s = want;
            else
                s = expected; /* another worker claimed it first */
        }
        if (s == want) {
            atomic_fetch_add_explicit(&st->count[k], 1, memory_order_relaxed);
            counted = true;
        }
    }
    if (!counted)
        atomic_fetch_add_explicit(&st->other, 1, memory_order_relaxed);
    int b = 0;
    while (b < SV_LATENCY_BUCKETS - 1 && duration_us > sv_latency_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&st->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_us, duration_us, memory_order_relaxed);
}

/* method="GET",route="/v1/secrets/{path*}" */
static void route_labels(sv_buf_t *out, const sv_route_t *rt)
{
    sv_buf_puts(out, "method=\"");
    sv_metrics_fmt_label_value(out, rt != NULL ? rt->method : "*", strlen(rt != NULL ? rt->method : "*"));
    sv_buf_puts(out, "\",route=\"");
    const char *p = rt != NULL ? rt->pattern : "unmatched";
    sv_metrics_fmt_label_value(out, p, strlen(p));
    sv_buf_putc(out, '"');
}

static uint64_t total(route_stats_t *st)
{
    uint64_t n = 0;
    for (int b = 0; b < SV_LATENCY_BUCKETS; b++)
        n += atomic_load_explicit(&st->buckets[b], memory_order_relaxed);
    return n;
}

static void collect(void *arg, sv_buf_t *out)
{
    sv_http_metrics_t *m = arg;
    sv_buf_t labels;
    sv_buf_init(&labels, false);
    sv_metrics_fmt_header(out, "scaivault_http_requests_total", "counter",
                          "HTTP requests answered, by method, route pattern and status.");
    for (size_t i = 0; i <= m->n_routes; i++) {
        route_stats_t *st = &m->stats[i];
        const sv_route_t *rt = i < m->n_routes ? sv_router_route(m->router, i) : NULL;
        for (int k = 0; k < STATUS_SLOTS; k++) {
            uint32_t s = atomic_load_explicit(&st->status[k], memory_order_acquire);
            if (s == 0)
                break;
            labels.len = 0;
            route_labels(&labels, rt);
            sv_buf_printf(&labels, ",status=\"%u\"", s);
            sv_buf_putc(&labels, 0);
            if (labels.failed)
                break;
            sv_metrics_fmt_sample_u64(out, "scaivault_http_requests_total", (const char *)labels.base,
                                      atomic_load_explicit(&st->count[k], memory_order_relaxed));
        }
        uint64_t other = atomic_load_explicit(&st->other, memory_order_relaxed);
        if (other > 0) {
            labels.len = 0;
            route_labels(&labels, rt);
            sv_buf_puts(&labels, ",status=\"other\"");
            sv_buf_putc(&labels, 0);
            if (!labels.failed)
                sv_metrics_fmt_sample_u64(out, "scaivault_http_requests_total", (const char *)labels.base, other);
        }
    }
    sv_metrics_fmt_header(out, "scaivault_http_request_duration_seconds", "histogram",
                          "Time from the request's arrival to its response being handed to the connection "
                          "(including the audit commit), by method and route pattern.");
    for (size_t i = 0; i <= m->n_routes; i++) {
        route_stats_t *st = &m->stats[i];
        if (total(st) == 0)
            continue;
        const sv_route_t *rt = i < m->n_routes ? sv_router_route(m->router, i) : NULL;
        labels.len = 0;
        route_labels(&labels, rt);
        sv_buf_putc(&labels, 0);
        if (labels.failed)
            break;
        uint64_t b[SV_LATENCY_BUCKETS];
        for (int k = 0; k < SV_LATENCY_BUCKETS; k++)
            b[k] = atomic_load_explicit(&st->buckets[k], memory_order_relaxed);
        sv_metrics_fmt_histogram(out, "scaivault_http_request_duration_seconds", (const char *)labels.base,
                                 sv_latency_bounds_us, b, SV_LATENCY_BUCKETS,
                                 atomic_load_explicit(&st->sum_us, memory_order_relaxed), 1e6);
    }
    sv_buf_free(&labels);
}
