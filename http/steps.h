/*
 * steps.h - the pipeline steps between routing and the handler, each in the
 * module that owns its subject. Each runs on the request's worker.
 */
#ifndef SV_HTTP_STEPS_H
#define SV_HTTP_STEPS_H

#include "http/request.h"

/** Authenticates the request's bearer token and calls sv_req_auth_done(),
 * now or later (a token naming an unknown key waits for a JWKS refresh).
 * (http/auth.c) */
void sv_http_authenticate(sv_req_t *req);

/** Takes a token from the request's rate-limit bucket. Returns false after
 * failing the request with 429 rate_limited. Adds the RateLimit headers.
 * (http/ratelimit.c) */
bool sv_http_rate_limit(sv_req_t *req);

/** Resolves the tenant the request acts in (token claim, or
 * X-ScaiVault-Tenant for tokens without one). Returns false after failing the
 * request (400 tenant_required, 400 invalid_request, 403 access_denied with
 * details.reason "tenant_mismatch", or "tenant_token_required" when a token
 * without a tenant that is not a super admin would act in a tenant).
 * (http/auth.c) */
bool sv_http_resolve_tenant(sv_req_t *req);

/** Refuses every request of an identity that an identity cache holds as
 * inactive (deactivated in the directory), whatever its token says: returns
 * false after failing the request with 403 access_denied, details.reason
 * "identity_inactive" (or the storage error of the lookup). The identity is
 * looked up in its own tenant's cache and in the cache of the tenant it acts
 * in, so a promoted super admin that was deactivated is refused too (only
 * the bootstrap token is not looked up). Call it before the handler takes a
 * read snapshot. (http/authorize.c) */
bool sv_http_identity_active(sv_req_t *req);

/** Decides whether the request's principal may do perm on the tenant secret
 * path (path is the secret path, not the URL; len bytes, need not be
 * NUL-terminated). Returns true when allowed; otherwise fails the request
 * (403 access_denied with details.reason "no_policy_matched",
 * "explicit_deny", "identity_inactive", or "condition_failed" plus
 * details.failed_condition "ip_not_allowed" | "mfa_required" |
 * "time_window_violation"; 503 on a storage error) and returns false. Super
 * admins (the bootstrap token, a promoted identity) are always allowed.
 * It may open a read snapshot on the worker's reader (policy cache miss);
 * reader snapshots nest, so calling it inside the handler's own snapshot
 * shares that snapshot.
 * (http/authorize.c) */
bool sv_http_authorize(sv_req_t *req, const char *path, size_t len, sv_perm_t perm);

/** The same for a partner-scoped path (/v1/partner/secrets/...): writes
 * (write, delete, rotate, admin) need the role partner_admin of partner_id
 * (403 access_denied with details.reason "partner_admin_required"); a
 * partner admin of partner_id may also read. Reads by anyone else need a
 * token of that partner (else details.reason "partner_mismatch") and go
 * through the tenant's policies, whose rules name partner secrets with
 * "@partner/" patterns. (http/authorize.c) */
bool sv_http_authorize_partner(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm);

/** The same decision without ending the request, for answers that are per
 * path (a batch read's errors, filtering a listing): *allowed says whether
 * perm on path is allowed. partner_id NULL for a tenant path, else the
 * partner of a partner path. Returns a storage error (then *allowed is
 * false), else SV_OK. Snapshots as for sv_http_authorize. (http/authorize.c) */
sv_err_t sv_http_is_allowed(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm,
                            bool *allowed);

#endif
