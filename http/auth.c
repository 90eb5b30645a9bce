/*
 * auth.c - the authentication and tenant steps of the pipeline (steps.h).
 *
 * The bootstrap token is checked first: its BLAKE2b-256 hash is compared in
 * constant time with the configured hash (the token itself is never kept).
 * Any other bearer token is a JWT for the verifier of src/auth (when JWT
 * authentication is configured). Runs on the request's worker.
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/steps.h"

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

void sv_http_authenticate(sv_req_t *req)
{
    size_t len;
    const char *h = sv_req_header(req, "authorization", &len);
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
    sv_req_auth_done(req, false, SV_E_TOKEN_INVALID, "The token is not valid.");
}

bool sv_http_resolve_tenant(sv_req_t *req)
{
    const sv_principal_t *p = &req->principal;
    size_t hl = 0;
    const char *hdr = sv_req_header(req, "x-scaivault-tenant", &hl);
    if (hdr != NULL && !sv_tenant_id_valid(hdr, hl)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "X-ScaiVault-Tenant must match [A-Za-z0-9_-]{1,63}.",
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
