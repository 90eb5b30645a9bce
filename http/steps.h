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
 * request (400 tenant_required, 400 invalid_request, 403 access_denied).
 * (http/auth.c) */
bool sv_http_resolve_tenant(sv_req_t *req);

/** Decides whether the request's principal may do perm on the tenant secret
 * path (path is the secret path, not the URL). Returns true when allowed;
 * otherwise fails the request (403 access_denied with details such as
 * failed_condition) and returns false. Super admins (the bootstrap token, a
 * promoted identity) are always allowed. (http/authorize.c) */
bool sv_http_authorize(sv_req_t *req, const char *path, size_t len, sv_perm_t perm);

/** The same for a partner-scoped path (/v1/partner/secrets/...): writes need
 * the role partner_admin of partner_id (403 access_denied with
 * details.reason "partner_admin_required"); reads by a tenant of that partner
 * go through the tenant's policies. (http/authorize.c) */
bool sv_http_authorize_partner(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm);

#endif
