/*
 * app.h - the running server's parts, created by main in dependency order and
 * shared read-only by every thread afterwards (but for the atomics at its
 * end). Each part is owned by its module; this struct only holds the
 * pointers. A part that is not configured (e.g. JWT verification without
 * SCAIKEY_ISSUER) is NULL.
 */
#ifndef SV_APP_H
#define SV_APP_H

#include <stdatomic.h>

#include "src/config.h"
#include "store/env.h"
#include "store/prealloc.h"
#include "wal/writer.h"

struct sv_kms;
struct sv_keyring;
struct sv_auth;
struct sv_identity;
struct sv_policy;
struct sv_audit;
struct sv_ratelimit;
struct sv_metrics;
struct sv_scheduler;
struct sv_outbound;
struct sv_devissuer;
struct sv_health;

typedef struct sv_app {
    sv_config_t *cfg;
    sv_store_t *store;
    sv_writer_t *writer;
    sv_prealloc_t *prealloc;         /* data.mdb written ahead of use (store/prealloc.h); may be NULL */
    struct sv_outbound *outbound;    /* libcurl multi thread (src/outbound.h) */
    struct sv_scheduler *scheduler;  /* persistent timers (src/scheduler.h) */
    struct sv_kms *kms;              /* key provider (src/kms.h) */
    struct sv_keyring *keyring;      /* tenant data keys (src/keyring.h) */
    struct sv_auth *auth;            /* bearer tokens, revocations (src/auth.h); JWTs only with an issuer */
    struct sv_devissuer *dev_issuer; /* --dev token issuer (src/devissuer.h) */
    struct sv_identity *identity;    /* identity cache (src/identity.h) */
    struct sv_policy *policy;        /* policies (src/policy.h) */
    struct sv_audit *audit;          /* audit log (src/audit.h) */
    struct sv_ratelimit *ratelimit;  /* rate limits (src/ratelimit.h) */
    struct sv_metrics *metrics;      /* counters for /v1/metrics (src/metrics.h) */
    struct sv_health *health;        /* readiness checks, dependency hooks (src/health.h) */
    int64_t started_at;              /* seconds since the epoch */
    uint64_t started_mono_us;
    /* AUDIT_DURABILITY=async (http/request.c): set while the commits of async
     * entries fail (requests then wait for their commit, as with sync);
     * audit_lost counts the async entries whose commit failed after their
     * response had gone out */
    atomic_bool audit_async_failing;
    atomic_uint_fast64_t audit_lost;
} sv_app_t;

#endif
