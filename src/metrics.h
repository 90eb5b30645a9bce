/*
 * metrics.h - a small registry of named metrics, written out in the
 * Prometheus text format (version 0.0.4) by GET /v1/metrics.
 *
 * A module registers its counters and histograms once, at start (this takes
 * the registry's lock), keeps the returned pointers, and then updates them
 * from any thread with relaxed atomic adds: no lock on the hot path. Values
 * that already live elsewhere (the writer's statistics, a queue depth) are
 * read at exposition time through a gauge callback or a collector, so they
 * are never counted twice.
 *
 * Series of one family share a name and differ by labels. Every name must be
 * a valid Prometheus metric name; counters end in `_total`; durations are
 * recorded in microseconds and written in seconds.
 */
#ifndef SV_METRICS_H
#define SV_METRICS_H

#include <stdatomic.h>

#include "src/buf.h"
#include "src/latency.h"
#include "src/sv.h"

#define SV_METRICS_MAX_BUCKETS 16

typedef struct sv_metrics sv_metrics_t;

typedef struct {
    atomic_uint_fast64_t value;
} sv_counter_t;

typedef struct {
    const uint64_t *bounds; /* upper bounds, ascending; the last is UINT64_MAX (+Inf) */
    unsigned n_bounds;
    double scale; /* written value = recorded value / scale (1e6: µs → s) */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum;
    atomic_uint_fast64_t buckets[SV_METRICS_MAX_BUCKETS]; /* non-cumulative */
} sv_histogram_t;

/** Appends whole metric families (HELP, TYPE and samples) to out, at
 * exposition time, with the sv_metrics_fmt_* helpers. */
typedef void (*sv_metrics_collect_fn)(void *arg, sv_buf_t *out);
/** Reads a gauge's current value at exposition time. */
typedef double (*sv_metrics_gauge_fn)(void *arg);

/** Creates an empty registry. Errors: SV_ENOMEM. */
sv_err_t sv_metrics_new(sv_metrics_t **out);
/** Frees the registry and every metric in it; pointers handed out die with it. */
void sv_metrics_free(sv_metrics_t *m);

/** The counter name{labels}, created at zero on first use; a second call with
 * the same name and labels returns the same counter (so modules can share
 * one). labels is "" or `key="value",...` (copied). help is used when the
 * family is new. Returns NULL on SV_ENOMEM, on an invalid name, or when name
 * is already a family of another type. m may be NULL (returns NULL). */
sv_counter_t *sv_metrics_counter(sv_metrics_t *m, const char *name, const char *labels, const char *help);

/** The histogram name{labels}, like sv_metrics_counter. bounds (n_bounds <=
 * SV_METRICS_MAX_BUCKETS, the last UINT64_MAX) must be static. */
sv_histogram_t *sv_metrics_histogram(sv_metrics_t *m, const char *name, const char *labels, const char *help,
                                     const uint64_t *bounds, unsigned n_bounds, double scale);

/** A gauge name{labels} whose value fn(arg) returns at exposition time (fn
 * runs on the scraping thread and must be thread-safe and quick). Errors:
 * SV_ENOMEM, SV_EINVAL (bad name, or the family has another type). */
sv_err_t sv_metrics_gauge(sv_metrics_t *m, const char *name, const char *labels, const char *help,
                          sv_metrics_gauge_fn fn, void *arg);

/** Adds a collector, run after the registered families on every exposition.
 * Its family names must not be registered otherwise. Errors: SV_ENOMEM. */
sv_err_t sv_metrics_add_collector(sv_metrics_t *m, sv_metrics_collect_fn fn, void *arg);

/** Removes the collector added with (fn, arg), if any. */
void sv_metrics_remove_collector(sv_metrics_t *m, sv_metrics_collect_fn fn, void *arg);

/** Appends the whole exposition (text format 0.0.4) to out. Any thread. */
void sv_metrics_write(sv_metrics_t *m, sv_buf_t *out);

/** Adds n to c. Any thread, lock-free. c may be NULL (no-op). */
static inline void sv_counter_add(sv_counter_t *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}
/** Adds 1 to c (as sv_counter_add). */
static inline void sv_counter_inc(sv_counter_t *c)
{
    sv_counter_add(c, 1);
}
/** The counter's value. */
static inline uint64_t sv_counter_get(const sv_counter_t *c)
{
    return c != NULL ? atomic_load_explicit(&((sv_counter_t *)c)->value, memory_order_relaxed) : 0;
}
/** Records one observation v (in the histogram's recording unit). Any
 * thread, lock-free. h may be NULL (no-op). */
void sv_histogram_observe(sv_histogram_t *h, uint64_t v);

/* ---- writing families (for collectors) ---- */

/** "# HELP name help\n# TYPE name type\n"; type is counter, gauge or histogram. */
void sv_metrics_fmt_header(sv_buf_t *out, const char *name, const char *type, const char *help);
/** One sample line: name{labels} value. labels may be "" or NULL. */
void sv_metrics_fmt_sample(sv_buf_t *out, const char *name, const char *labels, double value);
/** Like sv_metrics_fmt_sample for an exact unsigned integer value. */
void sv_metrics_fmt_sample_u64(sv_buf_t *out, const char *name, const char *labels, uint64_t value);
/** The _bucket (cumulative, with le), _sum and _count lines of one histogram
 * series. buckets are non-cumulative counts per bound; sum is in recording
 * units and divided by scale, as are the bounds. */
void sv_metrics_fmt_histogram(sv_buf_t *out, const char *name, const char *labels, const uint64_t *bounds,
                              const uint64_t *buckets, unsigned n, uint64_t sum, double scale);
/** The histogram lines of a latency recorder (latency.h), in seconds. */
void sv_metrics_fmt_latency(sv_buf_t *out, const char *name, const char *labels, sv_latency_t *l);
/** Appends v to out as a label value: escapes backslash, double quote and
 * newline (the quotes around it are the caller's). */
void sv_metrics_fmt_label_value(sv_buf_t *out, const char *v, size_t len);

#endif
