/*
 * jwks.h - JSON Web Key Sets: an immutable, reference-counted set of parsed
 * public keys (sv_jwks_t), and the source that keeps one fresh by fetching it
 * from ScaiKey (sv_jwks_source_t).
 *
 * The source fetches on the outbound thread (src/outbound.h), never on a
 * worker: OpenID discovery on the issuer (`/.well-known/openid-configuration`
 * → `jwks_uri`, and `token_endpoint` for the directory sync) unless a JWKS URL
 * is configured, then the JWKS itself. It refreshes every `refresh_ms` and,
 * when a token names a kid it does not know, at once, at most every
 * `min_forced_ms`; the request that asked waits (parked, see
 * sv_jwks_source_wait) up to `wait_ms`. A failed fetch keeps the keys already
 * held. A key whose material did not change across a refresh keeps its parsed
 * EVP_PKEY, so each kid is parsed once.
 */
#ifndef SV_JWKS_H
#define SV_JWKS_H

#include "src/jwt.h"
#include "src/outbound.h"

typedef struct sv_jwks sv_jwks_t;

/** Parses a JWKS document ({"keys":[...]}) into a new set with one reference.
 * Keys that cannot be used (another kty, curve or alg, a short RSA key,
 * `use` other than "sig") are skipped and counted in *skipped (may be NULL).
 * prev (may be NULL): keys with the same kid and material reuse its EVP_PKEY.
 * Errors: SV_EINVAL (not a JWKS; why says why), SV_ENOMEM. */
sv_err_t sv_jwks_parse(const void *json, size_t len, const sv_jwks_t *prev, sv_jwks_t **out, unsigned *skipped,
                       char *why, size_t whylen);
/** A set holding the given keys; takes ownership of each key's pkey. */
sv_err_t sv_jwks_from_keys(sv_jwk_t *keys, size_t n, sv_jwks_t **out);
/** The key called kid, or NULL. Valid while the caller holds its reference. */
const sv_jwk_t *sv_jwks_find(const sv_jwks_t *s, const char *kid);
/** How many keys. */
size_t sv_jwks_count(const sv_jwks_t *s);
/** A number that differs between any two sets made by this process. */
uint64_t sv_jwks_serial(const sv_jwks_t *s);
void sv_jwks_ref(sv_jwks_t *s);
/** Drops a reference; the last one frees the set and its keys. NULL is fine. */
void sv_jwks_unref(sv_jwks_t *s);

/* ---- the fetching source ---- */

typedef struct sv_jwks_source sv_jwks_source_t;

typedef struct {
    const char *issuer;      /* discovery base (required) */
    const char *jwks_url;    /* NULL: from discovery */
    uint64_t refresh_ms;     /* periodic refresh (10 min) */
    uint64_t min_forced_ms;  /* at most one unknown-kid refresh this often (30 s) */
    uint64_t wait_ms;        /* how long a parked request waits (2 s) */
    long fetch_timeout_ms;   /* one HTTP call (5 s) */
} sv_jwks_source_opts_t;

/** A request waiting for a refresh. The caller owns the memory; between
 * sv_jwks_source_wait() returning true and fn being called the source links
 * it in its list. fn(arg) runs exactly once, on the outbound thread, when the
 * refresh finished (successfully or not) or wait_ms passed: it must be quick
 * (post to a worker). */
typedef struct sv_jwks_waiter {
    void (*fn)(void *arg);
    void *arg;
    uint64_t deadline_us;          /* private */
    struct sv_jwks_waiter *next_;  /* private */
} sv_jwks_waiter_t;

/** Starts the source and runs the first fetch, waiting for it up to the fetch
 * timeout (call from start-up, never a worker). A failed first fetch is
 * logged, not fatal: the source keeps trying. Errors: SV_ENOMEM. */
sv_err_t sv_jwks_source_start(sv_outbound_t *ob, const sv_jwks_source_opts_t *opts, sv_jwks_source_t **out);
/** Cancels its timers, waits for its calls in flight, fires any waiter left,
 * frees it. Call before stopping the outbound pool. NULL is fine. */
void sv_jwks_source_stop(sv_jwks_source_t *src);
/** The current set with a reference for the caller (sv_jwks_unref), or NULL
 * while no fetch has succeeded. Any thread. */
sv_jwks_t *sv_jwks_source_get(sv_jwks_source_t *src);
/** The serial (sv_jwks_serial) of the current set, 0 when none; lock-free,
 * for the cached-token path. */
uint64_t sv_jwks_source_serial(sv_jwks_source_t *src);
/** Parks w until a refresh triggered for an unknown kid finishes. Returns
 * false (w not taken) when no refresh may start now (one ran less than
 * min_forced_ms ago and none is running): fail the token at once. Any thread. */
bool sv_jwks_source_wait(sv_jwks_source_t *src, sv_jwks_waiter_t *w);
/** Asks for a refresh now (subject to min_forced_ms). Any thread. */
void sv_jwks_source_refresh(sv_jwks_source_t *src);

typedef struct {
    int64_t age_s;           /* seconds since the last successful fetch; -1: never */
    bool last_ok;            /* the last attempt succeeded */
    size_t keys;             /* keys held */
    uint64_t fetches, failures;
    char last_error[160];
    char token_endpoint[512]; /* from discovery; "" when unknown */
} sv_jwks_source_stats_t;

/** Status for health and the directory sync. Any thread. */
void sv_jwks_source_stats(sv_jwks_source_t *src, sv_jwks_source_stats_t *out);

#endif
