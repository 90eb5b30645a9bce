/*
 * latency.h - a lock-free latency recorder: a ring of the last samples for
 * p50/p99, and cumulative Prometheus histogram buckets. Like sv.h it depends on
 * nothing, so every layer (store, wal, src, http) may record into one.
 */
#ifndef SV_LATENCY_H
#define SV_LATENCY_H

#include <stdatomic.h>
#include <stdint.h>

#define SV_LATENCY_RING 1024
#define SV_LATENCY_BUCKETS 14

/** Upper bounds of the histogram buckets, in microseconds (the last is +Inf). */
extern const uint64_t sv_latency_bounds_us[SV_LATENCY_BUCKETS];

typedef struct {
    _Atomic uint32_t ring[SV_LATENCY_RING]; /* microseconds, saturated */
    atomic_uint_fast64_t count;             /* samples ever recorded */
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t buckets[SV_LATENCY_BUCKETS]; /* non-cumulative counts */
} sv_latency_t;

/** Records one sample. Any thread; never blocks. */
void sv_latency_record(sv_latency_t *l, uint64_t us);
/** p-th percentile (0 < p < 100) of the recent samples, in microseconds; 0 when empty. */
uint64_t sv_latency_percentile(sv_latency_t *l, double p);
/** Samples ever recorded. */
uint64_t sv_latency_count(sv_latency_t *l);

#endif
