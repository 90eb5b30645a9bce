/*
 * authorize.c - the authorization step (steps.h): may this principal do this
 * to this path?
 *
 * Until policies are evaluated here, only super admins (the bootstrap token
 * and promoted identities) are allowed anything: every other principal is
 * denied, which is the safe answer while no policy can grant.
 */
#include "sv_autoconf.h"

#include <string.h>

#include "http/steps.h"

bool sv_http_authorize(sv_req_t *req, const char *path, size_t len, sv_perm_t perm)
{
    if (sv_principal_is_super_admin(&req->principal))
        return true;
    sv_req_fail(req, SV_E_ACCESS_DENIED, NULL, "{\"reason\":\"no_policy_matched\"}");
    return false;
}

bool sv_http_authorize_partner(sv_req_t *req, const char *partner_id, const char *path, size_t len, sv_perm_t perm)
{
    if (sv_principal_is_super_admin(&req->principal))
        return true;
    if (perm & (SV_PERM_WRITE | SV_PERM_DELETE | SV_PERM_ROTATE | SV_PERM_ADMIN)) {
        const sv_principal_t *p = &req->principal;
        if ((p->roles & SV_ROLE_PARTNER_ADMIN) && p->partner_id[0] != 0 && strcmp(p->partner_id, partner_id) == 0)
            return true;
        sv_req_fail(req, SV_E_ACCESS_DENIED, "Only partner admins may change partner secrets.",
                    "{\"reason\":\"partner_admin_required\"}");
        return false;
    }
    return sv_http_authorize(req, path, len, perm);
}
