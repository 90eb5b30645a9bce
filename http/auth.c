/*
 * auth.c - the authentication and tenant steps of the pipeline (steps.h).
 *
 * The bootstrap token is checked first: its BLAKE2b-256 hash is compared in
 * constant time with the configured hash (the token itself is never kept).
 * Any other bearer token is a JWT for the verifier of src/auth. Two things
 * can make a request wait, and neither blocks the worker: a token naming a
 * kid the JWKS does not hold parks the request until the refresh it triggers
 * ends (at most 2 s), and the first sign-in of BOOTSTRAP_SUPER_ADMIN waits
 * for its promotion to commit, so that very request already runs as super
 * admin. Both resume through sv_worker_post. Runs on the request's worker
 * (the callbacks marked otherwise only post back to it).
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/server.h"
#include "http/steps.h"
#include "src/auth.h"

static bool is_bootstrap(const sv_config_t *cfg, const char *token, size_t len)
{
    if (!cfg->has_bootstrap_token)
        return false;
    uint8_t h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof(h), (const uint8_t *)token, len, NULL, 0);
    return sodium_memcmp(h, cfg->bootstrap_token_hash, sizeof(h)) == 0;
}

static void set_bootstrap_principal(sv_principal_t *p)
{
    memset(p, 0, offsetof(sv_principal_t, scope_text) + 1);
    p->bootstrap = true;
    snprintf(p->identity_id, sizeof(p->identity_id), "bootstrap");
    snprintf(p->identity_type, sizeof(p->identity_type), "bootstrap");
    p->scopes = SV_SCOPE_ALL_;
    p->roles = SV_ROLE_SUPER_ADMIN;
    p->scope_text[0] = 0;
    p->n_groups = 0;
    p->mfa = false;
    p->jti[0] = 0;
    p->issuer[0] = 0;
    p->issued_at = p->expires_at = p->not_before = 0;
}

/* ---- JWTs ---- */

static void jwt_authenticate(sv_req_t *req, const char *token, size_t len, bool may_wait);

/* A request parked until the JWKS refresh for its unknown kid ends. */
typedef struct {
    sv_worker_task_t task;
    sv_jwks_waiter_t waiter;
    sv_req_t *req;
    size_t len;
    char token[];
} parked_t;

static void parked_resume(sv_worker_task_t *task)
{
    parked_t *pk = (parked_t *)task;
    jwt_authenticate(pk->req, pk->token, pk->len, false);
    sodium_memzero(pk->token, pk->len);
    free(pk);
}

/* Outbound thread: the refresh ended or the wait timed out. */
static void parked_wake(void *arg)
{
    parked_t *pk = arg;
    sv_worker_post(pk->req->worker, &pk->task);
}

/* A request waiting for the promotion of BOOTSTRAP_SUPER_ADMIN to commit. */
typedef struct {
    sv_worker_task_t task;
    sv_req_t *req;
    sv_err_t result;
} promoting_t;

static void promoted_resume(sv_worker_task_t *task)
{
    promoting_t *pm = (promoting_t *)task;
    sv_req_t *req = pm->req;
    if (pm->result == SV_OK)
        req->principal.roles |= SV_ROLE_SUPER_ADMIN;
    free(pm);
    sv_req_auth_done(req, true, SV_E_COUNT_, NULL);
}

/* Writer thread: the promotion unit completed. */
static void promoted(void *arg, sv_err_t result)
{
    promoting_t *pm = arg;
    pm->result = result;
    sv_worker_post(pm->req->worker, &pm->task);
}

/* The fields of an event's audit entry that come from the request. */
static void event_audit_base(sv_req_t *req, sv_audit_entry_t *base)
{
    memset(base, 0, sizeof(*base));
    memcpy(base->request_id, req->request_id, sizeof(base->request_id));
    memcpy(base->ip, req->client_ip_text, sizeof(base->ip));
    size_t ual = 0;
    const char *ua = sv_req_header(req, "user-agent", &ual);
    if (ua != NULL)
        snprintf(base->user_agent, sizeof(base->user_agent), "%.*s", (int)ual, ua);
}

static void jwt_authenticate(sv_req_t *req, const char *token, size_t len, bool may_wait)
{
    sv_auth_t *a = req->app->auth;
    if (a == NULL) {
        sv_req_auth_done(req, false, SV_E_TOKEN_INVALID, "The token is not valid.");
        return;
    }
    sv_auth_outcome_t o;
    sv_auth_status_t st = sv_auth_bearer(a, sv_req_reader(req), token, len, may_wait, &req->principal, &o);
    switch (st) {
    case SV_AUTH_OK: break;
    case SV_AUTH_WAIT: {
        parked_t *pk = calloc(1, sizeof(*pk) + len + 1);
        if (pk != NULL) {
            pk->task.fn = parked_resume;
            pk->waiter.fn = parked_wake;
            pk->waiter.arg = pk;
            pk->req = req;
            pk->len = len;
            memcpy(pk->token, token, len);
            pk->token[len] = 0;
            if (sv_auth_wait_keys(a, &pk->waiter))
                return; /* resumed by parked_resume */
            sodium_memzero(pk->token, len);
            free(pk);
        }
        sv_req_auth_done(req, false, SV_E_TOKEN_INVALID,
                         "The token is not valid: the token is signed with an unknown key.");
        return;
    }
    case SV_AUTH_EXPIRED: sv_req_auth_done(req, false, SV_E_TOKEN_EXPIRED, NULL); return;
    case SV_AUTH_REVOKED: sv_req_auth_done(req, false, SV_E_TOKEN_REVOKED, NULL); return;
    default: {
        char msg[200];
        snprintf(msg, sizeof(msg), "The token is not valid: %s.", o.message ? o.message : "invalid");
        sv_req_auth_done(req, false, SV_E_TOKEN_INVALID, msg);
        return;
    }
    }
    if (o.promote != SV_PROMOTE_NONE) {
        sv_audit_entry_t base;
        event_audit_base(req, &base);
        if (o.promote == SV_PROMOTE_SKIPPED) {
            sv_auth_promotion_skipped(a, &req->principal, &base);
        } else {
            promoting_t *pm = calloc(1, sizeof(*pm));
            if (pm != NULL) {
                pm->task.fn = promoted_resume;
                pm->req = req;
                if (sv_auth_promote(a, &req->principal, &base, promoted, pm))
                    return; /* resumed by promoted_resume */
                free(pm);
            }
        }
    }
    sv_req_auth_done(req, true, SV_E_COUNT_, NULL);
}

void sv_http_authenticate(sv_req_t *req)
{
    size_t len;
    const char *h = sv_req_header(req, "authorization", &len);
    if (sv_req_header_repeated(req, "authorization")) {
        /* which one counts would be up to each hop on the way: none does */
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "Send one Authorization header.", "Authorization");
        return;
    }
    if (h == NULL) {
        sv_req_auth_done(req, false, SV_E_AUTHENTICATION_REQUIRED, NULL);
        return;
    }
    if (len < 7 || strncasecmp(h, "Bearer ", 7) != 0) {
        sv_req_auth_done(req, false, SV_E_TOKEN_INVALID, "The Authorization header must be 'Bearer <token>'.");
        return;
    }
    const char *token = h + 7;
    len -= 7;
    while (len > 0 && *token == ' ') {
        token++;
        len--;
    }
    while (len > 0 && token[len - 1] == ' ')
        len--;
    if (len == 0) {
        sv_req_auth_done(req, false, SV_E_TOKEN_INVALID, "The bearer token is empty.");
        return;
    }
    if (is_bootstrap(req->app->cfg, token, len)) {
        set_bootstrap_principal(&req->principal);
        sv_req_auth_done(req, true, SV_E_COUNT_, NULL);
        return;
    }
    jwt_authenticate(req, token, len, true);
}

bool sv_http_resolve_tenant(sv_req_t *req)
{
    const sv_principal_t *p = &req->principal;
    size_t hl = 0;
    const char *hdr = sv_req_header(req, "x-scaivault-tenant", &hl);
    if (hdr != NULL && (!sv_tenant_id_valid(hdr, hl) || sv_req_header_repeated(req, "x-scaivault-tenant"))) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "X-ScaiVault-Tenant must be one header matching [A-Za-z0-9_-]{1,63}.",
                          "X-ScaiVault-Tenant");
        return false;
    }
    bool super = sv_principal_is_super_admin(p);
    if (p->tenant_id[0] != 0) {
        if (hdr != NULL && (hl != strlen(p->tenant_id) || memcmp(hdr, p->tenant_id, hl) != 0)) {
            if (!super) {
                sv_req_fail(req, SV_E_ACCESS_DENIED, "A token may not act in another tenant.",
                            "{\"reason\":\"tenant_mismatch\"}");
                return false;
            }
            memcpy(req->tenant_id, hdr, hl);
            req->tenant_id[hl] = 0;
            return true;
        }
        snprintf(req->tenant_id, sizeof(req->tenant_id), "%s", p->tenant_id);
        return true;
    }
    if (!super && (hdr != NULL || (req->route->flags & SV_ROUTE_TENANT))) {
        /* only a super admin acts in a tenant it names: anyone else would
         * reach every tenant's grants to its subject, and its revocations */
        sv_req_fail(req, SV_E_ACCESS_DENIED,
                    "This token has no tenant_id claim: only a super admin acts in a tenant that it names.",
                    "{\"reason\":\"tenant_token_required\"}");
        return false;
    }
    if (hdr != NULL) {
        memcpy(req->tenant_id, hdr, hl);
        req->tenant_id[hl] = 0;
        return true;
    }
    if (req->route->flags & SV_ROUTE_TENANT) {
        sv_req_fail(req, SV_E_TENANT_REQUIRED, NULL, NULL);
        return false;
    }
    return true;
}
