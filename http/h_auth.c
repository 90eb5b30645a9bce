/*
 * h_auth.c - GET /v1/auth/whoami, POST /v1/auth/revocations and, in --dev,
 * GET /v1/dev/jwks (the dev issuer's public keys).
 *
 * whoami reports the principal exactly as the pipeline resolved it: the
 * token's claims plus the roles ScaiVault grants (a promoted super admin).
 * Its groups are the token's `groups` claim; policies take membership from
 * the identity cache instead (GET /v1/identity/identities/{id}).
 *
 * A revocation is stored through the writer, in one unit with the request's
 * audit entry, and enters the in-memory set on the worker once committed.
 * Runs on the workers.
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "src/auth.h"
#include "src/identity.h"

/* ---- whoami ---- */

static void jw_str_or_null(sv_jw_t *jw, const char *s)
{
    sv_jw_cstr(jw, s != NULL && s[0] ? s : NULL);
}

static void get_whoami(sv_req_t *req)
{
    const sv_principal_t *p = &req->principal;
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "identity_id");
    sv_jw_cstr(&jw, p->identity_id);
    sv_jw_key(&jw, "identity_type");
    sv_jw_cstr(&jw, p->identity_type);
    sv_jw_key(&jw, "tenant_id");
    jw_str_or_null(&jw, req->tenant_id[0] ? req->tenant_id : p->tenant_id);
    sv_jw_key(&jw, "partner_id");
    jw_str_or_null(&jw, p->partner_id);
    sv_jw_key(&jw, "scopes");
    sv_jw_arr_begin(&jw);
    if (p->bootstrap) {
        for (uint32_t bit = 1; bit <= SV_SCOPE_ADMIN; bit <<= 1)
            sv_jw_cstr(&jw, sv_scope_name(bit));
    } else {
        for (const char *s = p->scope_text; *s;) {
            while (*s == ' ')
                s++;
            size_t n = strcspn(s, " ");
            if (n > 0)
                sv_jw_str(&jw, s, n);
            s += n;
        }
    }
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "groups");
    sv_jw_arr_begin(&jw);
    for (unsigned i = 0; i < p->n_groups; i++)
        sv_jw_cstr(&jw, p->groups[i]);
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "roles");
    sv_jw_arr_begin(&jw);
    if (sv_principal_is_super_admin(p))
        sv_jw_cstr(&jw, "super_admin");
    if (p->roles & SV_ROLE_TENANT_ADMIN)
        sv_jw_cstr(&jw, "tenant_admin");
    if (p->roles & SV_ROLE_PARTNER_ADMIN)
        sv_jw_cstr(&jw, "partner_admin");
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "mfa");
    sv_jw_bool(&jw, p->mfa);
    sv_jw_key(&jw, "token");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "jti");
    jw_str_or_null(&jw, p->jti);
    sv_jw_key(&jw, "issued_at");
    sv_jw_time_or_null(&jw, p->issued_at);
    sv_jw_key(&jw, "expires_at");
    sv_jw_time_or_null(&jw, p->expires_at);
    sv_jw_key(&jw, "issuer");
    jw_str_or_null(&jw, p->issuer);
    sv_jw_obj_end(&jw);
    sv_jw_obj_end(&jw);
    sv_req_reply_built(req, 200, &body);
}

/* ---- revocations ---- */

typedef struct {
    sv_revocation_t r;
} revoke_op_t;

static sv_err_t revoke_apply(sv_wtxn_t *tx, void *arg)
{
    revoke_op_t *op = arg;
    return sv_revocation_put_tx(tx, &op->r);
}

static int revoke_status(void *arg)
{
    return 201;
}

static void revoke_done(sv_req_t *req, sv_err_t result, void *arg)
{
    revoke_op_t *op = arg;
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_revocations_add(sv_auth_revocations(req->app->auth), &op->r);
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, op->r.kind == SV_REVOKE_JTI ? "jti" : "identity_id");
    sv_jw_cstr(&jw, op->r.subject);
    sv_jw_key(&jw, "tenant_id");
    jw_str_or_null(&jw, op->r.tenant_id);
    sv_jw_key(&jw, "reason");
    sv_jw_cstr(&jw, op->r.reason);
    sv_jw_key(&jw, "revoked_at");
    sv_jw_time(&jw, op->r.revoked_at);
    sv_jw_key(&jw, "expires_at");
    sv_jw_time(&jw, op->r.expires_at);
    sv_jw_key(&jw, "revoked_by");
    sv_jw_cstr(&jw, op->r.revoked_by);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, 201, &body);
}

/* Copies a string member into out; false (request failed) when it is not a
 * string of 1..cap-1 bytes without NUL. Absent: "" and true. */
static bool body_str(sv_req_t *req, const sv_json_t *root, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    sv_json_t *v = sv_json_get(root, name);
    if (v == NULL)
        return true;
    if (v->type != SV_JSON_STRING || v->u.str.len == 0 || v->u.str.len >= cap ||
        memchr(v->u.str.s, 0, v->u.str.len) != NULL) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be a string of 1 to %zu bytes.", name, cap - 1);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
        return false;
    }
    memcpy(out, v->u.str.s, v->u.str.len);
    out[v->u.str.len] = 0;
    return true;
}

static void post_revocation(sv_req_t *req)
{
    const sv_principal_t *p = &req->principal;
    if (!sv_req_require_admin(req, NULL, "Revoking tokens needs a super admin or a tenant admin."))
        return;
    bool super = sv_principal_is_super_admin(p);
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL)
        return;
    sv_json_t *root = sv_json_root(doc);
    revoke_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sv_json_doc_free(doc);
        sv_req_fail_err(req, SV_ENOMEM);
        return;
    }
    req->handler_data = op;
    req->handler_data_free = free;
    sv_revocation_t *r = &op->r;
    char jti[128], ident[SV_ID_MAX];
    static const char *const members[] = {"jti", "identity_id", "reason", "expires_at", NULL};
    if (!sv_req_json_known_members(req, root, members, "Unknown member.", NULL))
        goto free_doc;
    if (!body_str(req, root, "jti", jti, sizeof(jti)) || !body_str(req, root, "identity_id", ident, sizeof(ident)) ||
        !body_str(req, root, "reason", r->reason, sizeof(r->reason)))
        goto free_doc;
    if ((jti[0] != 0) == (ident[0] != 0)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "Give exactly one of jti and identity_id.", "jti");
        goto free_doc;
    }
    if (r->reason[0] == 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "reason is required.", "reason");
        goto free_doc;
    }
    if (ident[0] != 0 && !sv_identity_id_valid(ident, strlen(ident))) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "identity_id must look like sa:name or user:name.",
                          "identity_id");
        goto free_doc;
    }
    int64_t now = sv_now_s(), expires = 0;
    sv_json_t *ex = sv_json_get(root, "expires_at");
    if (ex != NULL) {
        bool ok = false;
        if (ex->type == SV_JSON_STRING)
            ok = sv_time_parse(ex->u.str.s, ex->u.str.len, &expires) == SV_OK;
        else if (ex->type == SV_JSON_NUMBER && ex->u.num.is_int) {
            expires = ex->u.num.i;
            ok = true;
        }
        if (!ok || expires <= now || expires > now + 366LL * 86400) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                              "expires_at must be a future RFC 3339 time (or epoch seconds) within a year.",
                              "expires_at");
            goto free_doc;
        }
    }
    r->kind = jti[0] ? SV_REVOKE_JTI : SV_REVOKE_IDENTITY;
    snprintf(r->subject, sizeof(r->subject), "%s", jti[0] ? jti : ident);
    /* a tenant admin revokes in its own tenant; a super admin in the tenant it
     * names (X-ScaiVault-Tenant or its token's), else in every tenant */
    snprintf(r->tenant_id, sizeof(r->tenant_id), "%s", super ? req->tenant_id : p->tenant_id);
    snprintf(r->revoked_by, sizeof(r->revoked_by), "%s", p->identity_id);
    r->revoked_at = now;
    if (expires == 0) {
        if (r->kind == SV_REVOKE_JTI) {
            /* only a token of the revocation's tenant: another tenant's expiry is not the caller's to learn */
            int64_t exp = sv_auth_cached_exp_of_jti(req->app->auth, r->subject, r->tenant_id[0] ? r->tenant_id : NULL);
            expires = exp > 0 ? exp + SV_JWT_LEEWAY_S : now + SV_REVOCATION_JTI_TTL_S;
            if (expires > INT64_C(253402300799)) /* the last second RFC 3339 can write */
                expires = INT64_C(253402300799);
        } else {
            expires = now + SV_REVOCATION_IDENTITY_TTL_S;
        }
    }
    r->expires_at = expires;
    sv_req_audit_path(req, r->subject, strlen(r->subject));
    sv_req_op_t rop = {.apply = revoke_apply, .arg = op, .success_status = revoke_status, .done = revoke_done};
    sv_req_submit(req, &rop);
free_doc:
    sv_json_doc_free(doc);
}

/* ---- --dev ---- */

static void get_dev_jwks(sv_req_t *req)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_err_t err = sv_auth_dev_jwks(req->app, &body);
    if (err != SV_OK) {
        sv_buf_free(&body);
        sv_req_fail(req, SV_E_NOT_FOUND, "No dev issuer.", NULL);
        return;
    }
    sv_req_reply(req, 200, &body);
}

sv_err_t sv_http_routes_auth(sv_router_t *r)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/auth/whoami", .handler = get_whoami, .rate_category = SV_RL_AUTH,
         .action = "auth_whoami"},
        {.method = "POST", .pattern = "/v1/auth/revocations", .handler = post_revocation,
         .rate_category = SV_RL_ADMIN, .action = "auth_revoke"},
        {.method = "GET", .pattern = "/v1/dev/jwks", .handler = get_dev_jwks, .rate_category = -1,
         .flags = SV_ROUTE_DEV | SV_ROUTE_PUBLIC | SV_ROUTE_NO_AUDIT, .action = "dev_jwks"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
