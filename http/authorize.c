/*
 * authorize.c - the authorization step (steps.h): may this principal do this
 * to this secret path?
 *
 * Super admins (the bootstrap token, promoted identities) are allowed
 * anything. Everyone else is judged by the tenant's policies (src/authz.h)
 * with the request's client address (the socket peer, or X-Forwarded-For
 * behind a trusted proxy: request.c), the token's MFA claim and the current
 * time. A denial is 403 access_denied with details.reason, and
 * details.failed_condition when a condition decided it. Partner paths add the
 * partner_admin rule for writes first.
 *
 * Runs on the request's worker. It may open a read snapshot on the worker's
 * reader (on a policy cache miss), so it must be called while the handler
 * holds none.
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <string.h>

#include "http/steps.h"
#include "src/authz.h"

static void deny(sv_req_t *req, const sv_authz_result_t *res)
{
    char details[160];
    const char *msg = "No policy allows this. POST /v1/policies/test explains why.";
    if (res->outcome == SV_AUTHZ_CONDITION_FAILED) {
        msg = "A policy condition is not met.";
        snprintf(details, sizeof(details), "{\"reason\":\"%s\",\"failed_condition\":\"%s\"}",
                 sv_authz_outcome_reason(res->outcome), sv_authz_failed_condition_code(res->failed_condition));
    } else {
        if (res->outcome == SV_AUTHZ_EXPLICIT_DENY)
            msg = "A policy explicitly denies this.";
        else if (res->outcome == SV_AUTHZ_IDENTITY_INACTIVE)
            msg = "The identity is inactive.";
        snprintf(details, sizeof(details), "{\"reason\":\"%s\"}", sv_authz_outcome_reason(res->outcome));
    }
    sv_req_fail(req, SV_E_ACCESS_DENIED, msg, details);
}

static bool authorize(sv_req_t *req, const char *path, size_t len, bool partner, sv_perm_t perm)
{
    if (sv_principal_is_super_admin(&req->principal))
        return true;
    sv_authz_result_t res = {.outcome = SV_AUTHZ_NO_POLICY_MATCHED, .failed_condition = -1};
    if (req->app->policy == NULL || req->tenant_id[0] == 0 || req->principal.identity_id[0] == 0) {
        deny(req, &res);
        return false;
    }
    sv_authz_request_t rq = {
        .tenant = req->tenant_id,
        .identity_id = req->principal.identity_id,
        .path = path,
        .path_len = len,
        .partner = partner,
        .perm = perm,
        .has_ip = true,
        .ip = req->client_ip,
        .mfa = req->principal.mfa,
        .now = sv_now_s(),
    };
    sv_err_t err = sv_authz_check(req->app->policy, sv_req_reader(req), &rq, &res);
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return false;
    }
    if (res.outcome == SV_AUTHZ_ALLOWED)
        return true;
    deny(req, &res);
    return false;
}

bool sv_http_authorize(sv_req_t *req, const char *path, size_t len, sv_perm_t perm)
{
    return authorize(req, path, len, false, perm);
}

bool sv_http_authorize_partner(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm)
{
    const sv_principal_t *p = &req->principal;
    if (sv_principal_is_super_admin(p))
        return true;
    bool admin_of_partner = (p->roles & SV_ROLE_PARTNER_ADMIN) && p->partner_id[0] != 0 && partner_id != NULL &&
                            strcmp(p->partner_id, partner_id) == 0;
    if (perm & (SV_PERM_WRITE | SV_PERM_DELETE | SV_PERM_ROTATE | SV_PERM_ADMIN)) {
        if (admin_of_partner)
            return true;
        sv_req_fail(req, SV_E_ACCESS_DENIED, "Only partner admins of this partner may change partner secrets.",
                    "{\"reason\":\"partner_admin_required\"}");
        return false;
    }
    if (admin_of_partner)
        return true;
    if (partner_id == NULL || p->partner_id[0] == 0 || strcmp(p->partner_id, partner_id) != 0) {
        sv_req_fail(req, SV_E_ACCESS_DENIED, "The token's tenant does not belong to this partner.",
                    "{\"reason\":\"partner_mismatch\"}");
        return false;
    }
    return authorize(req, path, len, true, perm);
}
