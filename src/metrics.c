/*
 * metrics.c - the metrics registry of metrics.h.
 *
 * The design choice: registration and exposition are rare and take one
 * mutex; updates are frequent and take none. A metric is a heap object that
 * never moves or dies before the registry, so a pointer handed out at start
 * can be updated forever with a relaxed atomic add. Exposition reads the
 * atomics without stopping writers, so a scrape may see one histogram bucket
 * a few counts ahead of its _count; Prometheus tolerates that, and the
 * buckets are written cumulative and clamped so they never decrease.
 *
 * Registration: any thread (normally the main thread during start-up).
 * Updates and exposition: any thread.
 */
#include "sv_autoconf.h"

#include "src/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

typedef struct {
    char *labels;
    union {
        sv_counter_t *counter;
        sv_histogram_t *histogram;
        struct {
            sv_metrics_gauge_fn fn;
            void *arg;
        } gauge;
    } u;
} series_t;

typedef struct {
    char *name;
    char *help;
    kind_t kind;
    series_t *series;
    size_t n_series, cap_series;
} family_t;

typedef struct {
    sv_metrics_collect_fn fn;
    void *arg;
} collector_t;

struct sv_metrics {
    pthread_mutex_t lock;
    family_t *families;
    size_t n_families, cap_families;
    collector_t *collectors;
    size_t n_collectors, cap_collectors;
};

sv_err_t sv_metrics_new(sv_metrics_t **out)
{
    sv_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return SV_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return SV_OK;
}

void sv_metrics_free(sv_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_families; i++) {
        family_t *f = &m->families[i];
        for (size_t j = 0; j < f->n_series; j++) {
            if (f->kind == KIND_COUNTER)
                free(f->series[j].u.counter);
            else if (f->kind == KIND_HISTOGRAM)
                free(f->series[j].u.histogram);
            free(f->series[j].labels);
        }
        free(f->series);
        free(f->name);
        free(f->help);
    }
    free(m->families);
    free(m->collectors);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *s)
{
    if (s == NULL || *s == 0)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Makes room for one more element in *arr (n used of *cap). */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 8;
    void *na = realloc(*arr, nc * elem);
    if (na == NULL)
        return false;
    *arr = na;
    *cap = nc;
    return true;
}

/* Finds or creates the family; NULL on a type clash or no memory. Under lock. */
static family_t *family_get(sv_metrics_t *m, const char *name, kind_t kind, const char *help)
{
    for (size_t i = 0; i < m->n_families; i++) {
        if (strcmp(m->families[i].name, name) == 0)
            return m->families[i].kind == kind ? &m->families[i] : NULL;
    }
    if (!grow((void **)&m->families, &m->cap_families, m->n_families, sizeof(family_t)))
        return NULL;
    family_t *f = &m->families[m->n_families];
    memset(f, 0, sizeof(*f));
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : name);
    f->kind = kind;
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        return NULL;
    }
    m->n_families++;
    return f;
}

/* Finds name{labels}, or creates it with a zeroed object of obj_size (none
 * for gauges; *created tells). NULL on a bad name, a type clash or no
 * memory. Under lock. */
static series_t *series_get(sv_metrics_t *m, const char *name, const char *labels, const char *help, kind_t kind,
                            size_t obj_size, bool *created)
{
    *created = false;
    if (!valid_name(name))
        return NULL;
    family_t *f = family_get(m, name, kind, help);
    if (f == NULL)
        return NULL;
    if (labels == NULL)
        labels = "";
    for (size_t i = 0; i < f->n_series; i++) {
        if (strcmp(f->series[i].labels, labels) == 0)
            return &f->series[i];
    }
    if (!grow((void **)&f->series, &f->cap_series, f->n_series, sizeof(series_t)))
        return NULL;
    series_t *s = &f->series[f->n_series];
    memset(s, 0, sizeof(*s));
    void *obj = obj_size > 0 ? calloc(1, obj_size) : NULL;
    s->labels = strdup(labels);
    if (s->labels == NULL || (obj_size > 0 && obj == NULL)) {
        free(s->labels);
        free(obj);
        return NULL;
    }
    if (kind == KIND_COUNTER)
        s->u.counter = obj;
    else if (kind == KIND_HISTOGRAM)
        s->u.histogram = obj;
    f->n_series++;
    *created = true;
    return s;
}

sv_counter_t *sv_metrics_counter(sv_metrics_t *m, const char *name, const char *labels, const char *help)
{
    if (m == NULL)
        return NULL;
    bool created;
    pthread_mutex_lock(&m->lock);
    series_t *s = series_get(m, name, labels, help, KIND_COUNTER, sizeof(sv_counter_t), &created);
    sv_counter_t *c = s != NULL ? s->u.counter : NULL;
    pthread_mutex_unlock(&m->lock);
    return c;
}

sv_histogram_t *sv_metrics_histogram(sv_metrics_t *m, const char *name, const char *labels, const char *help,
                                     const uint64_t *bounds, unsigned n_bounds, double scale)
{
    if (m == NULL || n_bounds == 0 || n_bounds > SV_METRICS_MAX_BUCKETS || bounds[n_bounds - 1] != UINT64_MAX)
        return NULL;
    bool created;
    pthread_mutex_lock(&m->lock);
    series_t *s = series_get(m, name, labels, help, KIND_HISTOGRAM, sizeof(sv_histogram_t), &created);
    sv_histogram_t *h = s != NULL ? s->u.histogram : NULL;
    if (created) {
        h->bounds = bounds;
        h->n_bounds = n_bounds;
        h->scale = scale > 0 ? scale : 1;
    }
    pthread_mutex_unlock(&m->lock);
    return h;
}

sv_err_t sv_metrics_gauge(sv_metrics_t *m, const char *name, const char *labels, const char *help,
                          sv_metrics_gauge_fn fn, void *arg)
{
    if (m == NULL || fn == NULL)
        return SV_EINVAL;
    bool created;
    pthread_mutex_lock(&m->lock);
    series_t *s = series_get(m, name, labels, help, KIND_GAUGE, 0, &created);
    if (s != NULL) {
        s->u.gauge.fn = fn;
        s->u.gauge.arg = arg;
    }
    pthread_mutex_unlock(&m->lock);
    return s != NULL ? SV_OK : SV_EINVAL;
}

sv_err_t sv_metrics_add_collector(sv_metrics_t *m, sv_metrics_collect_fn fn, void *arg)
{
    sv_err_t err = SV_ENOMEM;
    pthread_mutex_lock(&m->lock);
    if (grow((void **)&m->collectors, &m->cap_collectors, m->n_collectors, sizeof(collector_t))) {
        m->collectors[m->n_collectors++] = (collector_t){fn, arg};
        err = SV_OK;
    }
    pthread_mutex_unlock(&m->lock);
    return err;
}

void sv_metrics_remove_collector(sv_metrics_t *m, sv_metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_collectors; i++) {
        if (m->collectors[i].fn == fn && m->collectors[i].arg == arg) {
            memmove(&m->collectors[i], &m->collectors[i + 1], (m->n_collectors - i - 1) * sizeof(collector_t));
            m->n_collectors--;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

void sv_histogram_observe(sv_histogram_t *h, uint64_t v)
{
    if (h == NULL)
        return;
    unsigned b = 0;
    while (b < h->n_bounds - 1 && v > h->bounds[b])
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* ---- text format ---- */

/* A float as Prometheus' parser reads it: integers exactly, +Inf, else %.12g. */
static void fmt_double_str(char *dst, size_t cap, double v)
{
    if (isinf(v))
        snprintf(dst, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(dst, cap, "NaN");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(dst, cap, "%lld", (long long)v);
    else
        snprintf(dst, cap, "%.12g", v);
}

static void fmt_double(sv_buf_t *out, double v)
{
    char b[40];
    fmt_double_str(b, sizeof(b), v);
    sv_buf_puts(out, b);
}

static void fmt_help_text(sv_buf_t *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            sv_buf_puts(out, "\\\\");
        else if (*p == '\n')
            sv_buf_puts(out, "\\n");
        else
            sv_buf_putc(out, *p);
    }
}

void sv_metrics_fmt_header(sv_buf_t *out, const char *name, const char *type, const char *help)
{
    sv_buf_printf(out, "# HELP %s ", name);
    fmt_help_text(out, help);
    sv_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void fmt_name_labels(sv_buf_t *out, const char *name, const char *suffix, const char *labels, const char *extra)
{
    sv_buf_puts(out, name);
    if (suffix != NULL)
        sv_buf_puts(out, suffix);
    bool has = labels != NULL && labels[0] != 0;
    if (has || extra != NULL) {
        sv_buf_putc(out, '{');
        if (has)
            sv_buf_puts(out, labels);
        if (extra != NULL) {
            if (has)
                sv_buf_putc(out, ',');
            sv_buf_puts(out, extra);
        }
        sv_buf_putc(out, '}');
    }
    sv_buf_putc(out, ' ');
}

void sv_metrics_fmt_sample(sv_buf_t *out, const char *name, const char *labels, double value)
{
    fmt_name_labels(out, name, NULL, labels, NULL);
    fmt_double(out, value);
    sv_buf_putc(out, '\n');
}

void sv_metrics_fmt_sample_u64(sv_buf_t *out, const char *name, const char *labels, uint64_t value)
{
    fmt_name_labels(out, name, NULL, labels, NULL);
    sv_buf_printf(out, "%llu\n", (unsigned long long)value);
}

void sv_metrics_fmt_histogram(sv_buf_t *out, const char *name, const char *labels, const uint64_t *bounds,
                              const uint64_t *buckets, unsigned n, uint64_t sum, double scale)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < n; i++) {
        cum += buckets[i];
        char num[40], le[48];
        if (bounds[i] == UINT64_MAX)
            snprintf(num, sizeof(num), "+Inf");
        else
            fmt_double_str(num, sizeof(num), (double)bounds[i] / scale);
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        fmt_name_labels(out, name, "_bucket", labels, le);
        sv_buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    fmt_name_labels(out, name, "_sum", labels, NULL);
    fmt_double(out, (double)sum / scale);
    sv_buf_putc(out, '\n');
    fmt_name_labels(out, name, "_count", labels, NULL);
    sv_buf_printf(out, "%llu\n", (unsigned long long)cum);
}

void sv_metrics_fmt_latency(sv_buf_t *out, const char *name, const char *labels, sv_latency_t *l)
{
    uint64_t b[SV_LATENCY_BUCKETS];
    for (int i = 0; i < SV_LATENCY_BUCKETS; i++)
        b[i] = atomic_load_explicit(&l->buckets[i], memory_order_relaxed);
    uint64_t sum = atomic_load_explicit(&l->sum_us, memory_order_relaxed);
    sv_metrics_fmt_histogram(out, name, labels, sv_latency_bounds_us, b, SV_LATENCY_BUCKETS, sum, 1e6);
}

void sv_metrics_fmt_label_value(sv_buf_t *out, const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\\')
            sv_buf_puts(out, "\\\\");
        else if (v[i] == '"')
            sv_buf_puts(out, "\\\"");
        else if (v[i] == '\n')
            sv_buf_puts(out, "\\n");
        else
            sv_buf_putc(out, v[i]);
    }
}

void sv_metrics_write(sv_metrics_t *m, sv_buf_t *out)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_families; i++) {
        family_t *f = &m->families[i];
        sv_metrics_fmt_header(out, f->name, kind_names[f->kind], f->help);
        for (size_t j = 0; j < f->n_series; j++) {
            series_t *s = &f->series[j];
            switch (f->kind) {
            case KIND_COUNTER:
                sv_metrics_fmt_sample_u64(out, f->name, s->labels, sv_counter_get(s->u.counter));
                break;
            case KIND_GAUGE:
                sv_metrics_fmt_sample(out, f->name, s->labels, s->u.gauge.fn(s->u.gauge.arg));
                break;
            case KIND_HISTOGRAM: {
                sv_histogram_t *h = s->u.histogram;
                uint64_t b[SV_METRICS_MAX_BUCKETS];
                for (unsigned k = 0; k < h->n_bounds; k++)
                    b[k] = atomic_load_explicit(&h->buckets[k], memory_order_relaxed);
                uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
                sv_metrics_fmt_histogram(out, f->name, s->labels, h->bounds, b, h->n_bounds, sum, h->scale);
                break;
            }
            }
        }
    }
    for (size_t i = 0; i < m->n_collectors; i++)
        m->collectors[i].fn(m->collectors[i].arg, out);
    pthread_mutex_unlock(&m->lock);
}
