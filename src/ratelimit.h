/*
 * ratelimit.h - token buckets per token and category (API.md "Rate limits").
 *
 * A bucket is identified by the caller's token key (the JWT `jti`, else the
 * identity id), the tenant the request acts in, and the category. It holds
 * `limit` requests and refills at limit / window: "6000/min" allows a burst
 * of 6000 and then 100 per second. Limits come from the configuration
 * (RATE_LIMIT_*) unless the tenant has an override, set through
 * PUT /v1/tenants/{id}/rate-limits and kept in the `tenants` database under
 * key(tenant) + u8(SV_RL_TENANT_KIND).
 *
 * Buckets live in a hash table split into shards, each with its own lock, so
 * requests of different tokens rarely meet on a lock and no lock is global.
 * A bucket that has refilled completely is indistinguishable from a new one,
 * so it is dropped when its shard needs room: memory stays bounded by the
 * tokens active within one window, and by max_buckets in any case.
 */
#ifndef SV_RATELIMIT_H
#define SV_RATELIMIT_H

#include "src/config.h"
#include "src/metrics.h"
#include "src/sv.h"
#include "store/env.h"
#include "wal/writer.h"

/* The record kind byte after the tenant id in the tenants database (1 is the
 * tenant's wrapped data key). */
#define SV_RL_TENANT_KIND 2

typedef struct sv_ratelimit sv_ratelimit_t;

/** A tenant's overrides: rate[c].limit == 0 means "use the default". */
typedef struct {
    sv_rate_t rate[SV_RL_COUNT_];
} sv_rl_overrides_t;

/** The outcome of one take. */
typedef struct {
    bool allowed;
    uint32_t limit;         /* the bucket's size (requests per window) */
    uint32_t window_s;      /* the window in seconds */
    uint32_t remaining;     /* requests left right now, after this one */
    uint32_t reset_s;       /* seconds until the bucket is full again (rounded up) */
    uint32_t retry_after_s; /* when refused: seconds until one request is allowed (>= 1) */
} sv_rl_result_t;

/** Creates a limiter with the configured defaults (copied). max_buckets
 * bounds memory (0: 1,048,576). metrics may be NULL; otherwise the limiter
 * registers scaivault_rate_limit_rejections_total{category} and counts its
 * refusals there. Errors: SV_ENOMEM. */
sv_err_t sv_rl_new(const sv_rate_t defaults[SV_RL_COUNT_], size_t max_buckets, sv_metrics_t *metrics,
                   sv_ratelimit_t **out);
/** Frees rl and every bucket. NULL is fine. */
void sv_rl_free(sv_ratelimit_t *rl);

/** Takes one request from the bucket of (token_key, tenant, category) at
 * now_ns (monotonic nanoseconds, sv_rl_now_ns()). tenant may be "" (none).
 * Any thread; takes one shard lock for a few dozen instructions. Never
 * fails: with no memory for a new bucket the request is allowed. */
void sv_rl_take(sv_ratelimit_t *rl, sv_bytes_t token_key, const char *tenant, sv_rl_category_t c, uint64_t now_ns,
                sv_rl_result_t *out);

/** Monotonic clock in nanoseconds. */
uint64_t sv_rl_now_ns(void);

/** The header values of r (IETF draft-ietf-httpapi-ratelimit-headers-09):
 * policy = `"read";q=6000;w=60`, state = `"read";r=5999;t=1`. Each buffer
 * holds at least 64 bytes; both are NUL-terminated. */
void sv_rl_format_headers(const sv_rl_result_t *r, sv_rl_category_t c, char *policy, char *state);

/** Installs tenant's overrides in memory if version is newer than the one
 * held (so completions that arrive out of order never go back in time). An
 * override set with no category in it removes them all. Any thread.
 * Errors: SV_ENOMEM. */
sv_err_t sv_rl_set_overrides(sv_ratelimit_t *rl, const char *tenant, const sv_rl_overrides_t *ov, uint64_t version);
/** Copies tenant's overrides to *out (all zero when none). Any thread. */
void sv_rl_get_overrides(sv_ratelimit_t *rl, const char *tenant, sv_rl_overrides_t *out);
/** The limit that applies to tenant and c (its override, else the default);
 * *is_override tells which when not NULL. */
sv_rate_t sv_rl_effective(sv_ratelimit_t *rl, const char *tenant, sv_rl_category_t c, bool *is_override);
/** Buckets held now (for metrics). */
size_t sv_rl_bucket_count(sv_ratelimit_t *rl);

/* ---- storage of the overrides ---- */

/** Loads every tenant's overrides from the tenants database through r (the
 * caller's reader). Errors: SV_ECORRUPT, SV_EIO, SV_ENOMEM. */
sv_err_t sv_rl_load(sv_ratelimit_t *rl, sv_store_reader_t *r);
/** On the writer thread: stores tenant's overrides, with a version one above
 * the stored one (written to *version). Errors: those of sv_wtxn_put,
 * SV_ECORRUPT for an unreadable stored record. */
sv_err_t sv_rl_store_put(sv_wtxn_t *tx, const char *tenant, const sv_rl_overrides_t *ov, uint64_t *version);
/** sv_rl_store_put of the empty set (tenant deletion); *had says whether the
 * stored set overrode anything. */
sv_err_t sv_rl_store_clear(sv_wtxn_t *tx, const char *tenant, uint64_t *version, bool *had);

/* ---- the server part (src/cmd_server.c parts[]) ---- */

struct sv_app;
/** Creates app->ratelimit from the configuration (RATE_LIMIT_*) and loads
 * the stored overrides; its rejection counters go to app->metrics (so the
 * health part, which creates it, must start first). */
sv_err_t sv_rl_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Frees app->ratelimit. */
void sv_rl_part_stop(struct sv_app *app);

/** Formats rate as "100/min", "10/s", "5000/hour" or "50/10s" into out (at
 * least 32 bytes). */
void sv_rl_rate_format(sv_rate_t rate, char *out, size_t cap);

#endif
