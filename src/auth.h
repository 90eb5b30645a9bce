/*
 * auth.h - who a bearer token stands for: JWT verification against ScaiKey's
 * JWKS (and, with --dev, the dev issuer's key), the verified-token cache,
 * revocations, the roles the identity cache grants, and the bootstrap
 * super-admin promotion.
 *
 * A server part (init/stop in src/cmd_server.c); its state hangs off
 * app->auth. The worker-side entry point is sv_auth_bearer(); everything that
 * touches the network runs on the outbound thread and everything that writes
 * runs on the writer.
 */
#ifndef SV_AUTH_H
#define SV_AUTH_H

#include "src/app.h"
#include "src/audit_entry.h"
#include "src/jwks.h"
#include "src/principal.h"
#include "src/revocation.h"
#include "src/tokencache.h"

typedef struct sv_auth sv_auth_t;

typedef enum {
    SV_AUTH_OK = 0,
    SV_AUTH_EXPIRED,  /* → 401 token_expired */
    SV_AUTH_INVALID,  /* → 401 token_invalid */
    SV_AUTH_REVOKED,  /* → 401 token_revoked */
    SV_AUTH_WAIT,     /* the kid is unknown: park with sv_auth_wait_keys, then call again */
} sv_auth_status_t;

typedef enum {
    SV_PROMOTE_NONE = 0,
    SV_PROMOTE_NOW,     /* BOOTSTRAP_SUPER_ADMIN, in the identity cache, not yet super admin */
    SV_PROMOTE_SKIPPED, /* BOOTSTRAP_SUPER_ADMIN but not in its tenant's identity cache */
} sv_promote_t;

typedef struct {
    const char *message;  /* why, for the error response (static) */
    sv_promote_t promote;
    bool cached;          /* the token came from the cache */
} sv_auth_outcome_t;

/** Server part: creates app->auth (always; JWT verification is on when
 * SCAIKEY_ISSUER is set or --dev runs the dev issuer). Needs app->outbound
 * when SCAIKEY_ISSUER is set. */
sv_err_t sv_auth_part_init(sv_app_t *app, char *msg, size_t msglen);
void sv_auth_part_stop(sv_app_t *app);

/** Server part for the outbound pool (app->outbound). */
sv_err_t sv_outbound_part_init(sv_app_t *app, char *msg, size_t msglen);
void sv_outbound_part_stop(sv_app_t *app);

/** An authenticator that trusts the fixed key set keys for issuer, with no
 * fetching, an empty revocation set and no promotion (benchmarks and tests).
 * Takes a reference to keys. Free with sv_auth_free. */
sv_err_t sv_auth_new_static(sv_app_t *app, const char *issuer, sv_jwks_t *keys, sv_auth_t **out);
void sv_auth_free(sv_auth_t *a);

/** Verifies a bearer token (not the bootstrap token) and fills *p. reader is
 * the calling worker's (roles from the identity cache). may_wait: an unknown
 * kid returns SV_AUTH_WAIT instead of SV_AUTH_INVALID. Worker threads. */
sv_auth_status_t sv_auth_bearer(sv_auth_t *a, struct sv_store_reader *reader, const char *token, size_t len,
                                bool may_wait, sv_principal_t *p, sv_auth_outcome_t *o);
/** Parks w until the JWKS refresh for an unknown kid ends (or 2 s pass).
 * false: no refresh may run now; fail the token. */
bool sv_auth_wait_keys(sv_auth_t *a, sv_jwks_waiter_t *w);

/** Whether p's token is revoked now. */
bool sv_auth_revoked(sv_auth_t *a, const sv_principal_t *p);
/** The in-memory revocation set (to add after a commit). */
sv_revocations_t *sv_auth_revocations(sv_auth_t *a);
/** The exp of a cached token with this jti, of tenant's principals only
 * unless tenant is NULL (0 when none is cached). */
int64_t sv_auth_cached_exp_of_jti(sv_auth_t *a, const char *jti, const char *tenant);

/** Submits the promotion of p's identity to super admin in one unit with an
 * `identity_promoted` audit entry (copied from *base, action and path set
 * here). done(arg, result) runs on the writer thread after the commit.
 * Returns false (done not called) when a promotion is already in flight. */
bool sv_auth_promote(sv_auth_t *a, const sv_principal_t *p, const sv_audit_entry_t *base,
                     void (*done)(void *arg, sv_err_t result), void *arg);
/** Audits `identity_promotion_skipped` for p, at most once a minute. */
void sv_auth_promotion_skipped(sv_auth_t *a, const sv_principal_t *p, const sv_audit_entry_t *base);

/** Seconds since the JWKS was last fetched successfully; -1 when JWT
 * authentication against ScaiKey is off or no fetch succeeded yet. For
 * /v1/health/detailed (scaikey.jwks_age_s). */
int64_t sv_auth_jwks_age_s(const sv_app_t *app);
/** "ok", "degraded" (the last refresh failed; held keys still work), "down"
 * (no keys), or "disabled" (SCAIKEY_ISSUER unset). */
const char *sv_auth_scaikey_status(const sv_app_t *app);
/** The issuer's token endpoint from discovery ("" when unknown). */
void sv_auth_token_endpoint(sv_auth_t *a, char *out, size_t cap);

/* ---- the dev issuer (--dev) ---- */

/** Sets the dev issuer's URL (the server's own) once the port is known, and
 * writes the files `scaivault dev-token` reads. No-op outside --dev. */
sv_err_t sv_auth_dev_set_issuer(sv_app_t *app, const char *url);
/** Appends the dev issuer's public JWKS. SV_ENOTFOUND outside --dev. */
sv_err_t sv_auth_dev_jwks(sv_app_t *app, sv_buf_t *out);

#endif
