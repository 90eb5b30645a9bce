/*
 * latency.c - the latency recorder of latency.h. Writers race on the ring
 * without a lock: a sample may overwrite another that was just written, which
 * only makes percentiles approximate. Counters are exact.
 */
#include "sv_autoconf.h"

#include "src/latency.h"

#include <stdlib.h>

const uint64_t sv_latency_bounds_us[SV_LATENCY_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, UINT64_MAX};

void sv_latency_record(sv_latency_t *l, uint64_t us)
{
    uint64_t n = atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed);
    atomic_store_explicit(&l->ring[n % SV_LATENCY_RING], us > UINT32_MAX ? UINT32_MAX : (uint32_t)us,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum_us, us, memory_order_relaxed);
    int b = 0;
    while (b < SV_LATENCY_BUCKETS - 1 && us > sv_latency_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&l->buckets[b], 1, memory_order_relaxed);
}

uint64_t sv_latency_count(sv_latency_t *l)
{
    return atomic_load_explicit(&l->count, memory_order_relaxed);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t sv_latency_percentile(sv_latency_t *l, double p)
{
    uint64_t n = sv_latency_count(l);
    if (n == 0)
        return 0;
    size_t m = n < SV_LATENCY_RING ? (size_t)n : SV_LATENCY_RING;
    uint32_t tmp[SV_LATENCY_RING];
    for (size_t i = 0; i < m; i++)
        tmp[i] = atomic_load_explicit(&l->ring[i], memory_order_relaxed);
    qsort(tmp, m, sizeof(tmp[0]), cmp_u32);
    size_t idx = (size_t)((p / 100.0) * (double)(m - 1) + 0.5);
    if (idx >= m)
        idx = m - 1;
    return tmp[idx];
}
