/* tests/src/test_metrics.c - the metrics registry and its text format
 * (src/metrics.c). */
#include "sv_autoconf.h"

#include <pthread.h>
#include <stdlib.h>

#include "src/metrics.h"
#include "tests/unit.h"

static char *expose(sv_metrics_t *m)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_metrics_write(m, &b);
    sv_buf_putc(&b, 0);
    CU_ASSERT_FALSE(b.failed);
    size_t len;
    return (char *)sv_buf_detach(&b, &len);
}

static void test_counter_shared_and_labels(void)
{
    sv_metrics_t *m;
    CU_ASSERT_EQUAL_FATAL(sv_metrics_new(&m), SV_OK);
    sv_counter_t *hit = sv_metrics_counter(m, "x_cache_total", "result=\"hit\"", "Cache lookups.");
    sv_counter_t *miss = sv_metrics_counter(m, "x_cache_total", "result=\"miss\"", "ignored");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
    CU_ASSERT_PTR_NOT_NULL_FATAL(miss);
    CU_ASSERT_PTR_NOT_EQUAL(hit, miss);
    /* a second module asking for the same series gets the same counter */
    CU_ASSERT_PTR_EQUAL(sv_metrics_counter(m, "x_cache_total", "result=\"hit\"", NULL), hit);
    sv_counter_add(hit, 41);
    sv_counter_inc(hit);
    sv_counter_inc(miss);
    sv_counter_inc(NULL); /* a module without metrics */
    char *text = expose(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# HELP x_cache_total Cache lookups.\n# TYPE x_cache_total counter\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "x_cache_total{result=\"hit\"} 42\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "x_cache_total{result=\"miss\"} 1\n"));
    /* one family, written once */
    CU_ASSERT_PTR_NULL(strstr(strstr(text, "# TYPE x_cache_total") + 1, "# TYPE x_cache_total"));
    free(text);
    sv_metrics_free(m);
}

static void test_bad_names_and_type_clash(void)
{
    sv_metrics_t *m;
    CU_ASSERT_EQUAL_FATAL(sv_metrics_new(&m), SV_OK);
    CU_ASSERT_PTR_NULL(sv_metrics_counter(m, "9starts_with_digit", NULL, "x"));
    CU_ASSERT_PTR_NULL(sv_metrics_counter(m, "has-dash", NULL, "x"));
    CU_ASSERT_PTR_NULL(sv_metrics_counter(m, "", NULL, "x"));
    CU_ASSERT_PTR_NULL(sv_metrics_counter(NULL, "ok_total", NULL, "x"));
    CU_ASSERT_PTR_NOT_NULL(sv_metrics_counter(m, "thing_total", NULL, "x"));
    static const uint64_t bounds[] = {10, UINT64_MAX};
    CU_ASSERT_PTR_NULL(sv_metrics_histogram(m, "thing_total", NULL, "x", bounds, 2, 1));
    static const uint64_t no_inf[] = {10, 20};
    CU_ASSERT_PTR_NULL(sv_metrics_histogram(m, "h", NULL, "x", no_inf, 2, 1));
    sv_metrics_free(m);
}

static double answer(void *arg)
{
    return *(double *)arg;
}

static void test_histogram_and_gauge(void)
{
    sv_metrics_t *m;
    CU_ASSERT_EQUAL_FATAL(sv_metrics_new(&m), SV_OK);
    static const uint64_t bounds[] = {1000, 250000, UINT64_MAX};
    sv_histogram_t *h = sv_metrics_histogram(m, "op_duration_seconds", "op=\"x\"", "Op time.", bounds, 3, 1e6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    sv_histogram_observe(h, 500);     /* 0.0005 s: first bucket */
    sv_histogram_observe(h, 1000);    /* on the bound: first bucket (le) */
    sv_histogram_observe(h, 200000);  /* second */
    sv_histogram_observe(h, 5000000); /* +Inf */
    double v = 2.5;
    CU_ASSERT_EQUAL(sv_metrics_gauge(m, "temp_celsius", NULL, "A gauge.", answer, &v), SV_OK);
    char *text = expose(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE op_duration_seconds histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "op_duration_seconds_bucket{op=\"x\",le=\"0.001\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "op_duration_seconds_bucket{op=\"x\",le=\"0.25\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "op_duration_seconds_bucket{op=\"x\",le=\"+Inf\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "op_duration_seconds_sum{op=\"x\"} 5.2015\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "op_duration_seconds_count{op=\"x\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "temp_celsius 2.5\n"));
    free(text);
    sv_metrics_free(m);
}

static void collect(void *arg, sv_buf_t *out)
{
    sv_metrics_fmt_header(out, "c_info", "gauge", "Line one\nback\\slash");
    sv_buf_puts(out, "c_info{path=\"");
    const char *v = (const char *)arg;
    sv_metrics_fmt_label_value(out, v, strlen(v));
    sv_buf_puts(out, "\"} 1\n");
}

static void test_collector_and_escaping(void)
{
    sv_metrics_t *m;
    CU_ASSERT_EQUAL_FATAL(sv_metrics_new(&m), SV_OK);
    CU_ASSERT_EQUAL(sv_metrics_add_collector(m, collect, (void *)"a\"b\\c\nd"), SV_OK);
    char *text = expose(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# HELP c_info Line one\\nback\\\\slash\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "c_info{path=\"a\\\"b\\\\c\\nd\"} 1\n"));
    free(text);
    sv_metrics_remove_collector(m, collect, (void *)"a\"b\\c\nd");
    text = expose(m);
    CU_ASSERT_PTR_NULL(strstr(text, "c_info"));
    free(text);
    sv_metrics_free(m);
}

typedef struct {
    sv_counter_t *c;
    sv_histogram_t *h;
} race_t;

static void *hammer(void *arg)
{
    race_t *r = arg;
    for (int i = 0; i < 100000; i++) {
        sv_counter_inc(r->c);
        sv_histogram_observe(r->h, (uint64_t)i % 3000);
    }
    return NULL;
}

static void test_concurrent_updates_exact(void)
{
    sv_metrics_t *m;
    CU_ASSERT_EQUAL_FATAL(sv_metrics_new(&m), SV_OK);
    static const uint64_t bounds[] = {1000, UINT64_MAX};
    race_t r = {sv_metrics_counter(m, "n_total", NULL, "x"), sv_metrics_histogram(m, "h", NULL, "x", bounds, 2, 1)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, &r);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(sv_counter_get(r.c), 400000);
    CU_ASSERT_EQUAL(atomic_load(&r.h->count), 400000);
    sv_metrics_free(m);
}

void sv_test_suite_metrics(void)
{
    SV_SUITE("src/metrics", {"counter_shared_and_labels", test_counter_shared_and_labels},
             {"bad_names_and_type_clash", test_bad_names_and_type_clash},
             {"histogram_and_gauge", test_histogram_and_gauge}, {"collector_and_escaping", test_collector_and_escaping},
             {"concurrent_updates_exact", test_concurrent_updates_exact});
}
