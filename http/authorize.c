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

/* The partner rules, asked before any policy: a partner admin of the
 * partner may do anything (*admin); writes need one; reads need a token of
 * the partner. Returns why the request is refused, or NULL. */
static const char *partner_refusal(const sv_principal_t *p, const char *partner_id, sv_perm_t perm, bool *admin)
{
    bool same_partner = p->partner_id[0] != 0 && strcmp(p->partner_id, partner_id) == 0;
    *admin = same_partner && (p->roles & SV_ROLE_PARTNER_ADMIN);
    if (*admin)
        return NULL;
    if (perm & SV_PERM_CHANGES)
        return "partner_admin_required";
    return same_partner ? NULL : "partner_mismatch";
}

/* The one decision behind the three entry points: *refusal is set for a
 * partner rule, else *res holds the policies' answer. partner_id NULL: a
 * tenant path. */
static sv_err_t decide(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm,
                       sv_authz_result_t *res, const char **refusal)
{
    const sv_principal_t *p = &req->principal;
    *res = (sv_authz_result_t){.outcome = SV_AUTHZ_ALLOWED, .failed_condition = -1, .decision_rule = -1};
    *refusal = NULL;
    if (sv_principal_is_super_admin(p))
        return SV_OK;
    if (partner_id != NULL) {
        bool admin;
        *refusal = partner_refusal(p, partner_id, perm, &admin);
        if (*refusal != NULL || admin)
            return SV_OK;
    }
    if (req->app->policy == NULL || req->tenant_id[0] == 0 || p->identity_id[0] == 0) {
        res->outcome = SV_AUTHZ_NO_POLICY_MATCHED;
        return SV_OK;
    }
    sv_authz_request_t rq = {
        .tenant = req->tenant_id,
        .identity_id = p->identity_id,
        .path = path,
        .path_len = len,
        .partner = partner_id != NULL,
        .perm = perm,
        .has_ip = true,
        .ip = req->client_ip,
        .mfa = p->mfa,
        .now = sv_now_s(),
    };
    return sv_authz_check(req->app->policy, sv_req_reader(req), &rq, res);
}

static bool authorize(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm)
{
    sv_authz_result_t res;
    const char *refusal;
    sv_err_t err = decide(req, partner_id, path, len, perm, &res, &refusal);
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return false;
    }
    if (refusal != NULL) {
        char details[64];
        snprintf(details, sizeof(details), "{\"reason\":\"%s\"}", refusal);
        sv_req_fail(req, SV_E_ACCESS_DENIED,
                    strcmp(refusal, "partner_admin_required") == 0
                        ? "Only partner admins of this partner may change partner secrets."
                        : "The token's tenant does not belong to this partner.",
                    details);
        return false;
    }
    if (res.outcome == SV_AUTHZ_ALLOWED)
        return true;
    deny(req, &res);
    return false;
}

bool sv_http_identity_active(sv_req_t *req)
{
    const sv_principal_t *p = &req->principal;
    if (p->bootstrap || req->app->policy == NULL || p->identity_id[0] == 0)
        return true;
    /* its own tenant's cache (a promoted super admin acting elsewhere too),
     * and the cache of the tenant it acts in */
    bool inactive = false;
    sv_err_t err = SV_OK;
    if (p->tenant_id[0] != 0)
        err = sv_authz_identity_inactive(req->app->policy, sv_req_reader(req), p->tenant_id, p->identity_id,
                                         &inactive);
    if (err == SV_OK && !inactive && req->tenant_id[0] != 0 && strcmp(req->tenant_id, p->tenant_id) != 0)
        err = sv_authz_identity_inactive(req->app->policy, sv_req_reader(req), req->tenant_id, p->identity_id,
                                         &inactive);
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return false;
    }
    if (inactive)
        sv_req_fail(req, SV_E_ACCESS_DENIED, "The identity is inactive.",
                    "{\"reason\":\"identity_inactive\"}");
    return !inactive;
}

bool sv_http_authorize(sv_req_t *req, const char *path, size_t len, sv_perm_t perm)
{
    return authorize(req, NULL, path, len, perm);
}

bool sv_http_authorize_partner(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm)
{
    /* "" would name no partner; keep it distinct from a tenant path */
    return authorize(req, partner_id != NULL ? partner_id : "", path, len, perm);
}

sv_err_t sv_http_is_allowed(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm,
                            bool *allowed)
{
    sv_authz_result_t res;
    const char *refusal;
    sv_err_t err = decide(req, partner_id, path, len, perm, &res, &refusal);
    *allowed = err == SV_OK && refusal == NULL && res.outcome == SV_AUTHZ_ALLOWED;
    return err;
}
