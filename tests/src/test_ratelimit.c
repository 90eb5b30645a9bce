/* tests/src/test_ratelimit.c - token buckets, overrides and their storage
 * (src/ratelimit.c). Time is passed in, so nothing here sleeps. */
#include "sv_autoconf.h"

#include <pthread.h>
#include <stdlib.h>

#include "src/ratelimit.h"
#include "store/key.h"
#include "store/migrate.h"
#include "tests/unit.h"

#define S 1000000000ull
#define T0 (1000 * S) /* an arbitrary monotonic start */

static sv_rate_t defaults[SV_RL_COUNT_] = {
    {3, 60}, {1200, 60}, {600, 60}, {600, 60}, {300, 60}, {600, 60},
};

static sv_rl_result_t take(sv_ratelimit_t *rl, const char *key, const char *tenant, sv_rl_category_t c, uint64_t now)
{
    sv_rl_result_t r;
    sv_rl_take(rl, SV_BYTES(key, strlen(key)), tenant, c, now, &r);
    return r;
}

static void test_burst_then_refuse(void)
{
    sv_ratelimit_t *rl;
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, NULL, &rl), SV_OK);
    for (uint32_t i = 0; i < 3; i++) {
        sv_rl_result_t r = take(rl, "j:abc", "tnt_a", SV_RL_READ, T0);
        CU_ASSERT_TRUE(r.allowed);
        CU_ASSERT_EQUAL(r.limit, 3);
        CU_ASSERT_EQUAL(r.window_s, 60);
        CU_ASSERT_EQUAL(r.remaining, 2 - i);
        CU_ASSERT_EQUAL(r.reset_s, 20 * (i + 1)); /* one request refills in 20 s */
    }
    sv_rl_result_t r = take(rl, "j:abc", "tnt_a", SV_RL_READ, T0);
    CU_ASSERT_FALSE(r.allowed);
    CU_ASSERT_EQUAL(r.remaining, 0);
    CU_ASSERT_EQUAL(r.retry_after_s, 20);
    CU_ASSERT_EQUAL(r.reset_s, 60);
    /* a refusal takes nothing: still 20 s later exactly one is back */
    r = take(rl, "j:abc", "tnt_a", SV_RL_READ, T0 + 19 * S);
    CU_ASSERT_FALSE(r.allowed);
    CU_ASSERT_EQUAL(r.retry_after_s, 1);
    r = take(rl, "j:abc", "tnt_a", SV_RL_READ, T0 + 20 * S);
    CU_ASSERT_TRUE(r.allowed);
    CU_ASSERT_EQUAL(r.remaining, 0);
    CU_ASSERT_FALSE(take(rl, "j:abc", "tnt_a", SV_RL_READ, T0 + 20 * S).allowed);
    /* after a whole window idle the bucket is full again */
    r = take(rl, "j:abc", "tnt_a", SV_RL_READ, T0 + 200 * S);
    CU_ASSERT_TRUE(r.allowed);
    CU_ASSERT_EQUAL(r.remaining, 2);
    sv_rl_free(rl);
}

static void test_buckets_are_separate(void)
{
    sv_ratelimit_t *rl;
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, NULL, &rl), SV_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(take(rl, "j:one", "tnt_a", SV_RL_READ, T0).allowed);
    CU_ASSERT_FALSE(take(rl, "j:one", "tnt_a", SV_RL_READ, T0).allowed);
    /* another token, another tenant, another category: untouched */
    CU_ASSERT_EQUAL(take(rl, "j:two", "tnt_a", SV_RL_READ, T0).remaining, 2);
    CU_ASSERT_EQUAL(take(rl, "j:one", "tnt_b", SV_RL_READ, T0).remaining, 2);
    CU_ASSERT_EQUAL(take(rl, "j:one", "tnt_a", SV_RL_WRITE, T0).remaining, 1199);
    /* a jti and an identity with the same text never share (the step prefixes them) */
    CU_ASSERT_EQUAL(take(rl, "i:one", "tnt_a", SV_RL_READ, T0).remaining, 2);
    /* the tenant is NUL-separated from the key: "j:on" + "etnt_a" is another bucket */
    CU_ASSERT_EQUAL(take(rl, "j:on", "etnt_a", SV_RL_READ, T0).remaining, 2);
    sv_rl_free(rl);
}

static void test_overrides(void)
{
    sv_ratelimit_t *rl;
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, NULL, &rl), SV_OK);
    CU_ASSERT_TRUE(take(rl, "j:x", "tnt_a", SV_RL_READ, T0).allowed); /* a bucket with the default */
    sv_rl_overrides_t ov = {0};
    ov.rate[SV_RL_READ] = (sv_rate_t){10, 1};
    CU_ASSERT_EQUAL(sv_rl_set_overrides(rl, "tnt_a", &ov, 5), SV_OK);
    bool is_ov;
    sv_rate_t e = sv_rl_effective(rl, "tnt_a", SV_RL_READ, &is_ov);
    CU_ASSERT_TRUE(is_ov);
    CU_ASSERT_EQUAL(e.limit, 10);
    e = sv_rl_effective(rl, "tnt_a", SV_RL_WRITE, &is_ov);
    CU_ASSERT_FALSE(is_ov);
    CU_ASSERT_EQUAL(e.limit, 1200);
    CU_ASSERT_EQUAL(sv_rl_effective(rl, "tnt_b", SV_RL_READ, NULL).limit, 3);
    /* the existing bucket picks the new limit up at its next request */
    sv_rl_result_t r = take(rl, "j:x", "tnt_a", SV_RL_READ, T0);
    CU_ASSERT_TRUE(r.allowed);
    CU_ASSERT_EQUAL(r.limit, 10);
    CU_ASSERT_EQUAL(r.window_s, 1);
    /* an older version arriving late is ignored */
    sv_rl_overrides_t old = {0};
    old.rate[SV_RL_READ] = (sv_rate_t){1, 60};
    CU_ASSERT_EQUAL(sv_rl_set_overrides(rl, "tnt_a", &old, 4), SV_OK);
    CU_ASSERT_EQUAL(sv_rl_effective(rl, "tnt_a", SV_RL_READ, NULL).limit, 10);
    /* a changed limit keeps the share used: 1/3 + 1/10 used of 10/s is
     * 13/30 of 1/min, which leaves that one request to wait for */
    sv_rl_overrides_t small = {0};
    small.rate[SV_RL_READ] = (sv_rate_t){1, 60};
    CU_ASSERT_EQUAL(sv_rl_set_overrides(rl, "tnt_a", &small, 6), SV_OK);
    r = take(rl, "j:x", "tnt_a", SV_RL_READ, T0);
    CU_ASSERT_FALSE(r.allowed);
    CU_ASSERT_EQUAL(r.retry_after_s, 26);
    /* an empty set: back to the defaults */
    sv_rl_overrides_t none = {0};
    CU_ASSERT_EQUAL(sv_rl_set_overrides(rl, "tnt_a", &none, 7), SV_OK);
    CU_ASSERT_EQUAL(sv_rl_effective(rl, "tnt_a", SV_RL_READ, &is_ov).limit, 3);
    CU_ASSERT_FALSE(is_ov);
    sv_rl_get_overrides(rl, "tnt_a", &ov);
    CU_ASSERT_EQUAL(ov.rate[SV_RL_READ].limit, 0);
    sv_rl_free(rl);
}

static void test_headers(void)
{
    sv_rl_result_t r = {.allowed = true, .limit = 6000, .window_s = 60, .remaining = 5999, .reset_s = 1};
    char policy[64], state[64];
    sv_rl_format_headers(&r, SV_RL_BATCH_READ, policy, state);
    CU_ASSERT_STRING_EQUAL(policy, "\"batch_read\";q=6000;w=60");
    CU_ASSERT_STRING_EQUAL(state, "\"batch_read\";r=5999;t=1");
    r = (sv_rl_result_t){.limit = UINT32_MAX, .window_s = 86400, .remaining = 0, .reset_s = 0};
    sv_rl_format_headers(&r, SV_RL_READ, policy, state);
    CU_ASSERT_STRING_EQUAL(policy, "\"read\";q=4294967295;w=86400");
    CU_ASSERT_STRING_EQUAL(state, "\"read\";r=0;t=0");
    char text[32];
    sv_rl_rate_format((sv_rate_t){100, 60}, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "100/min");
    sv_rl_rate_format((sv_rate_t){10, 1}, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "10/s");
    sv_rl_rate_format((sv_rate_t){5000, 3600}, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "5000/hour");
    sv_rl_rate_format((sv_rate_t){50, 10}, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "50/10s");
}

static void test_memory_bounded(void)
{
    sv_ratelimit_t *rl;
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 4096, NULL, &rl), SV_OK);
    char key[32];
    /* all at one instant: nothing is idle, so the table evicts */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "j:%d", i);
        CU_ASSERT_TRUE(take(rl, key, "", SV_RL_WRITE, T0).allowed);
    }
    CU_ASSERT(sv_rl_bucket_count(rl) <= 4096);
    CU_ASSERT(sv_rl_bucket_count(rl) >= 1024);
    /* tokens that went idle are dropped first; busy ones keep their state */
    for (int i = 0; i < 3; i++)
        take(rl, "j:busy", "", SV_RL_READ, T0 + 100 * S);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "j:new%d", i);
        take(rl, key, "", SV_RL_WRITE, T0 + 100 * S + (uint64_t)i);
    }
    CU_ASSERT(sv_rl_bucket_count(rl) <= 4096);
    sv_rl_free(rl);

    /* with time passing, idle buckets disappear without any eviction */
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, NULL, &rl), SV_OK);
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "j:%d", i);
        take(rl, key, "", SV_RL_READ, T0 + (uint64_t)i * S); /* 3/min: full again 20 s later */
    }
    CU_ASSERT(sv_rl_bucket_count(rl) < 64 * 128);
    sv_rl_free(rl);
}

static void test_rejections_counted(void)
{
    sv_metrics_t *m;
    CU_ASSERT_EQUAL_FATAL(sv_metrics_new(&m), SV_OK);
    sv_ratelimit_t *rl;
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, m, &rl), SV_OK);
    for (int i = 0; i < 5; i++)
        take(rl, "i:sa:x", "", SV_RL_READ, T0);
    sv_counter_t *c = sv_metrics_counter(m, "scaivault_rate_limit_rejections_total", "category=\"read\"", NULL);
    CU_ASSERT_EQUAL(sv_counter_get(c), 2);
    sv_rl_free(rl);
    sv_metrics_free(m);
}

typedef struct {
    sv_ratelimit_t *rl;
    _Atomic int allowed;
} race_t;

static void *hammer(void *arg)
{
    race_t *r = arg;
    for (int i = 0; i < 20000; i++) {
        sv_rl_result_t res;
        sv_rl_take(r->rl, SV_BYTES_STR("j:shared"), "tnt_a", SV_RL_WRITE, T0, &res);
        if (res.allowed)
            atomic_fetch_add(&r->allowed, 1);
        char other[24];
        snprintf(other, sizeof(other), "j:%d", i);
        sv_rl_take(r->rl, SV_BYTES(other, strlen(other)), "tnt_a", SV_RL_WRITE, T0, &res);
    }
    return NULL;
}

static void test_threads_take_exactly_the_limit(void)
{
    race_t r = {0};
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, NULL, &r.rl), SV_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, &r);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&r.allowed), 1200); /* RATE_LIMIT_WRITE default, at one instant */
    sv_rl_free(r.rl);
}

/* ---- storage ---- */

typedef struct {
    const char *tenant;
    sv_rl_overrides_t ov;
    uint64_t version;
} put_t;

static sv_err_t apply_put(sv_wtxn_t *tx, sv_unit_t *u)
{
    put_t *p = u->arg;
    return sv_rl_store_put(tx, p->tenant, &p->ov, &p->version);
}

static sv_err_t apply_other_kind(sv_wtxn_t *tx, sv_unit_t *u)
{
    /* kind 1 (the secrets helper's wrapped data key) must be left alone */
    sv_key_t k;
    sv_key_init(&k);
    sv_key_str(&k, "tnt_a", 5);
    sv_key_u8(&k, 1);
    return sv_wtxn_put(tx, SV_DB_TENANTS, sv_key_bytes(&k), SV_BYTES_STR("wrapped"));
}

static void test_store_and_load(void)
{
    const char *dir = strdup(sv_test_tmpdir("ratelimit"));
    sv_store_t *st;
    sv_writer_t *w;
    sv_store_opts_t o = {.dir = dir, .max_readers = 16, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);

    sv_unit_t u = {.apply = apply_other_kind};
    CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    put_t p = {.tenant = "tnt_a"};
    p.ov.rate[SV_RL_WRITE] = (sv_rate_t){10, 1};
    u = (sv_unit_t){.apply = apply_put, .arg = &p};
    CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    CU_ASSERT_EQUAL(p.version, 1);
    p.ov.rate[SV_RL_ADMIN] = (sv_rate_t){50, 10};
    u = (sv_unit_t){.apply = apply_put, .arg = &p};
    CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    CU_ASSERT_EQUAL(p.version, 2); /* each change one version up */
    put_t empty = {.tenant = "tnt_b"};
    u = (sv_unit_t){.apply = apply_put, .arg = &empty};
    CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);

    sv_ratelimit_t *rl;
    CU_ASSERT_EQUAL_FATAL(sv_rl_new(defaults, 0, NULL, &rl), SV_OK);
    sv_store_reader_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(st, &r), SV_OK);
    CU_ASSERT_EQUAL(sv_rl_load(rl, r), SV_OK);
    sv_store_reader_free(r);
    sv_rl_overrides_t got;
    sv_rl_get_overrides(rl, "tnt_a", &got);
    CU_ASSERT_EQUAL(got.rate[SV_RL_WRITE].limit, 10);
    CU_ASSERT_EQUAL(got.rate[SV_RL_WRITE].window_s, 1);
    CU_ASSERT_EQUAL(got.rate[SV_RL_ADMIN].limit, 50);
    CU_ASSERT_EQUAL(got.rate[SV_RL_ADMIN].window_s, 10);
    CU_ASSERT_EQUAL(got.rate[SV_RL_READ].limit, 0);
    CU_ASSERT_EQUAL(sv_rl_effective(rl, "tnt_b", SV_RL_WRITE, NULL).limit, 1200);
    /* what was loaded has version 2: a late completion of version 1 changes nothing */
    sv_rl_overrides_t v1 = {0};
    v1.rate[SV_RL_WRITE] = (sv_rate_t){1, 1};
    sv_rl_set_overrides(rl, "tnt_a", &v1, 1);
    CU_ASSERT_EQUAL(sv_rl_effective(rl, "tnt_a", SV_RL_WRITE, NULL).limit, 10);
    sv_rl_free(rl);

    sv_writer_stop(w);
    sv_store_close(st);
    sv_test_rmdir(dir);
    free((void *)dir);
}

void sv_test_suite_ratelimit(void)
{
    SV_SUITE("src/ratelimit", {"burst_then_refuse", test_burst_then_refuse},
             {"buckets_are_separate", test_buckets_are_separate}, {"overrides", test_overrides},
             {"headers", test_headers}, {"memory_bounded", test_memory_bounded},
             {"rejections_counted", test_rejections_counted},
             {"threads_take_exactly_the_limit", test_threads_take_exactly_the_limit},
             {"store_and_load", test_store_and_load});
}
