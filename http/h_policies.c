/*
 * h_policies.c - the policy endpoints:
 *   GET    /v1/policies              list (paginated)
 *   GET    /v1/policies/{name}       read
 *   PUT    /v1/policies/{name}       create or replace (201 / 200)
 *   DELETE /v1/policies/{name}       delete (204)
 *   POST   /v1/policies/test         explain a decision (src/authz.h)
 * All tenant-scoped, rate category admin. Writes go through the writer in one
 * unit with their audit entry (action policy_write); after the commit the
 * policy generation is bumped so every worker's compiled policies are
 * rebuilt before the client sees the answer. Runs on the request's worker.
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "src/authz.h"
#include "src/identity.h"
#include "src/pattern.h"
#include "src/policy.h"
#include "src/secrets.h"

#define LIST_DEFAULT 100
#define CURSOR_MAX 256

/* The {name} path parameter as a string; fails the request when invalid. */
static bool name_param(sv_req_t *req, char out[SV_POLICY_NAME_MAX + 1])
{
    return sv_req_param_copy(req, "name", sv_policy_name_valid, out, SV_POLICY_NAME_MAX + 1,
                             "A policy name is 1 to 128 bytes of A-Z a-z 0-9 _ . -");
}

static void reply_policy(sv_req_t *req, int status, const sv_policy_def_t *p)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_policy_to_json(p, &jw);
    sv_req_reply_built(req, status, &body);
}

/* ---- GET /v1/policies/{name} ---- */

static void get_policy(sv_req_t *req)
{
    char name[SV_POLICY_NAME_MAX + 1];
    if (!name_param(req, name))
        return;
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return;
    sv_policy_def_t *p = NULL;
    sv_err_t err = sv_policy_get(tx, req->tenant_id, name, &p);
    sv_store_read_end(sv_req_reader(req));
    if (err == SV_ENOTFOUND)
        sv_req_fail(req, SV_E_NOT_FOUND, "No such policy.", NULL);
    else if (err != SV_OK)
        sv_req_fail_err(req, err);
    else
        reply_policy(req, 200, p);
    sv_policy_def_free(p);
}

/* ---- GET /v1/policies ---- */

typedef struct {
    sv_jw_t *jw;
    size_t limit, n;
    char last[SV_POLICY_NAME_MAX + 1];
    bool more;
} list_state_t;

static bool list_one(void *arg, sv_policy_def_t *p)
{
    list_state_t *ls = arg;
    if (ls->n == ls->limit) {
        ls->more = true;
        sv_policy_def_free(p);
        return false;
    }
    sv_policy_to_json(p, ls->jw);
    snprintf(ls->last, sizeof(ls->last), "%s", p->name);
    ls->n++;
    sv_policy_def_free(p);
    return true;
}

static void list_policies(sv_req_t *req)
{
    char text[CURSOR_MAX + 1];
    bool bad = false;
    unsigned limit;
    if (!sv_req_query_limit(req, LIST_DEFAULT, &limit))
        return;
    char after[SV_POLICY_NAME_MAX + 1] = "";
    if (sv_req_query(req, "cursor", text, sizeof(text), &bad) &&
        !sv_http_name_cursor_parse(text, sv_policy_name_valid, after, sizeof(after)))
        bad = true;
    if (bad) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "cursor is not one this endpoint returned.", "cursor");
        return;
    }
    sv_buf_t body;
    sv_jw_t jw;
    sv_http_page_begin(&body, &jw);
    list_state_t ls = {.jw = &jw, .limit = limit};
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(sv_req_reader(req), &tx);
    if (err == SV_OK) {
        err = sv_policy_each(tx, req->tenant_id, after, list_one, &ls);
        sv_store_read_end(sv_req_reader(req));
    }
    if (err != SV_OK) {
        sv_buf_free(&body);
        sv_req_fail_err(req, err);
        return;
    }
    sv_http_page_end_names(&jw, ls.more, ls.last);
    sv_req_reply_built(req, 200, &body);
}

/* ---- PUT and DELETE /v1/policies/{name} ---- */

typedef struct {
    char tenant[SV_TENANT_MAX];
    char name[SV_POLICY_NAME_MAX + 1];
    sv_policy_def_t *def; /* PUT only */
    bool created;
} write_op_t;

static void write_op_free(void *arg)
{
    write_op_t *op = arg;
    sv_policy_def_free(op->def);
    free(op);
}

static write_op_t *write_op_new(sv_req_t *req)
{
    write_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sv_req_fail_err(req, SV_ENOMEM);
        return NULL;
    }
    snprintf(op->tenant, sizeof(op->tenant), "%s", req->tenant_id);
    /* owned by the request, so it is freed however the request ends */
    req->handler_data = op;
    req->handler_data_free = write_op_free;
    return op;
}

static sv_err_t put_apply(sv_wtxn_t *tx, void *arg)
{
    write_op_t *op = arg;
    return sv_policy_put_tx(tx, op->tenant, op->def, &op->created);
}

static int put_status(void *arg)
{
    return ((write_op_t *)arg)->created ? 201 : 200;
}

static void put_done(sv_req_t *req, sv_err_t result, void *arg)
{
    write_op_t *op = arg;
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_policy_bump_tenant_generation(op->tenant); /* committed: cached compilations are stale now */
    reply_policy(req, op->created ? 201 : 200, op->def);
}

static void put_policy(sv_req_t *req)
{
    char name[SV_POLICY_NAME_MAX + 1];
    if (!name_param(req, name))
        return;
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL)
        return;
    sv_policy_def_t *def;
    sv_policy_error_t e;
    sv_err_t err = sv_policy_from_json(sv_json_root(doc), name, &def, &e);
    sv_json_doc_free(doc);
    if (err == SV_EINVAL) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, e.message, e.field);
        return;
    }
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return;
    }
    write_op_t *op = write_op_new(req);
    if (op == NULL) {
        sv_policy_def_free(def);
        return;
    }
    op->def = def;
    sv_req_op_t rop = {
        .apply = put_apply, .arg = op, .success_status = put_status, .done = put_done, .tenant = op->tenant};
    sv_req_submit(req, &rop);
}

static sv_err_t delete_apply(sv_wtxn_t *tx, void *arg)
{
    write_op_t *op = arg;
    return sv_policy_delete_tx(tx, op->tenant, op->name);
}

static int delete_status(void *arg)
{
    (void)arg;
    return 204;
}

static void delete_done(sv_req_t *req, sv_err_t result, void *arg)
{
    write_op_t *op = arg;
    if (result == SV_ENOTFOUND) {
        sv_req_fail(req, SV_E_NOT_FOUND, "No such policy.", NULL);
        return;
    }
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_policy_bump_tenant_generation(op->tenant);
    sv_req_reply(req, 204, NULL);
}

static void delete_policy(sv_req_t *req)
{
    char name[SV_POLICY_NAME_MAX + 1];
    if (!name_param(req, name))
        return;
    write_op_t *op = write_op_new(req);
    if (op == NULL)
        return;
    snprintf(op->name, sizeof(op->name), "%s", name);
    sv_req_op_t rop = {
        .apply = delete_apply, .arg = op, .success_status = delete_status, .done = delete_done, .tenant = op->tenant};
    sv_req_submit(req, &rop);
}

/* ---- POST /v1/policies/test ---- */

/* Reads the body into rq; fails the request and returns false when invalid.
 * Strings in rq point into doc. */
static bool parse_test(sv_req_t *req, const sv_json_t *root, sv_authz_request_t *rq, bool *ip_from_body)
{
    static const char *const keys[] = {"identity_id", "path", "permission", "context", NULL};
    static const char *const ctx_keys[] = {"ip", "mfa", "time", NULL};
    if (!sv_req_json_known_members(req, root, keys, "Unknown field.", NULL))
        return false;
    size_t len;
    const char *id = sv_json_get_str(root, "identity_id", &len);
    if (id == NULL || !sv_identity_id_valid(id, len)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "identity_id is required: an identity id such as sa:billing.",
                          "identity_id");
        return false;
    }
    rq->identity_id = id;
    const char *path = sv_json_get_str(root, "path", &len);
    size_t pl = strlen(SV_PARTNER_PATTERN_PREFIX);
    if (path != NULL && len > pl && memcmp(path, SV_PARTNER_PATTERN_PREFIX, pl) == 0) {
        rq->partner = true;
        path += pl;
        len -= pl;
    }
    if (path == NULL || !sv_secret_path_usable(path, len)) { /* what a secret request would accept */
        sv_req_fail_field(req, SV_E_INVALID_PATH,
                          path == NULL ? "path is required: a secret path such as app/db/password (\"@partner/...\" "
                                         "for a partner secret)."
                                       : "path is not a secret path: 1-512 bytes of '/'-separated segments of "
                                         "[A-Za-z0-9._-], with no empty, '.' or '..' segment, not ending with "
                                         "versions, config, undelete, destroy or rotate.",
                          "path");
        return false;
    }
    rq->path = path;
    rq->path_len = len;
    const char *perm = sv_json_get_str(root, "permission", &len);
    rq->perm = perm != NULL ? sv_perm_from_name(perm, len) : 0;
    if (rq->perm == 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "permission is required: one of read, list, write, delete, rotate, admin.", "permission");
        return false;
    }
    const sv_json_t *ctx = sv_json_get(root, "context");
    if (ctx != NULL && ctx->type == SV_JSON_NULL)
        ctx = NULL;
    if (ctx != NULL && ctx->type != SV_JSON_OBJECT) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "context must be an object.", "context");
        return false;
    }
    for (const sv_json_t *k = ctx != NULL ? ctx->u.kids.first : NULL; k != NULL; k = k->next) {
        bool ok = false;
        for (const char *const *a = ctx_keys; *a != NULL && !ok; a++)
            ok = strcmp(*a, k->key) == 0;
        if (!ok) {
            char field[80];
            snprintf(field, sizeof(field), "context.%s", k->key);
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "Unknown field.", field);
            return false;
        }
    }
    const sv_json_t *ip = ctx != NULL ? sv_json_get(ctx, "ip") : NULL;
    const sv_json_t *mfa = ctx != NULL ? sv_json_get(ctx, "mfa") : NULL;
    const sv_json_t *time = ctx != NULL ? sv_json_get(ctx, "time") : NULL;
    rq->has_ip = true;
    rq->ip = req->client_ip; /* by default: the address this request came from */
    *ip_from_body = false;
    if (ip != NULL && ip->type != SV_JSON_NULL) {
        if (ip->type != SV_JSON_STRING || sv_ip_parse(ip->u.str.s, ip->u.str.len, &rq->ip) != SV_OK) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "context.ip is an IPv4 or IPv6 address.", "context.ip");
            return false;
        }
        *ip_from_body = true;
    }
    if (mfa != NULL && mfa->type != SV_JSON_BOOL && mfa->type != SV_JSON_NULL) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "context.mfa must be a boolean.", "context.mfa");
        return false;
    }
    rq->mfa = mfa != NULL && mfa->type == SV_JSON_BOOL && mfa->u.b;
    rq->now = sv_now_s();
    if (time != NULL && time->type != SV_JSON_NULL &&
        (time->type != SV_JSON_STRING || sv_time_parse(time->u.str.s, time->u.str.len, &rq->now) != SV_OK)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "context.time is an RFC 3339 UTC time (2026-11-29T10:00:00Z).",
                          "context.time");
        return false;
    }
    return true;
}

static void test_policies(sv_req_t *req)
{
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL)
        return;
    sv_authz_request_t rq = {.tenant = req->tenant_id};
    bool ip_from_body = false;
    if (!parse_test(req, sv_json_root(doc), &rq, &ip_from_body)) {
        sv_json_doc_free(doc);
        return;
    }
    char audit_path[SV_PATH_MAX + 16];
    int al = snprintf(audit_path, sizeof(audit_path), "%s%.*s", rq.partner ? SV_PARTNER_PATTERN_PREFIX : "",
                      (int)rq.path_len, rq.path);
    sv_req_audit_path(req, audit_path, (size_t)al < sizeof(audit_path) ? (size_t)al : sizeof(audit_path) - 1);
    sv_authz_result_t res;
    sv_authz_trace_t *tr = NULL;
    sv_err_t err = sv_authz_explain(req->app->policy, sv_req_reader(req), &rq, &res, &tr);
    if (err != SV_OK) {
        sv_json_doc_free(doc);
        sv_req_fail_err(req, err);
        return;
    }
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_authz_trace_write(tr, &rq, &res, &jw);
    sv_jw_key(&jw, "context");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "tenant_id");
    sv_jw_cstr(&jw, req->tenant_id);
    sv_jw_key(&jw, "identity_id");
    sv_jw_cstr(&jw, rq.identity_id);
    sv_jw_key(&jw, "path");
    sv_jw_cstr(&jw, audit_path);
    sv_jw_key(&jw, "permission");
    sv_jw_cstr(&jw, sv_perm_name(rq.perm));
    char ip[46];
    sv_ip_format(&rq.ip, ip);
    sv_jw_key(&jw, "ip");
    sv_jw_cstr(&jw, ip);
    sv_jw_key(&jw, "ip_source");
    sv_jw_cstr(&jw, ip_from_body ? "context" : "request");
    sv_jw_key(&jw, "mfa");
    sv_jw_bool(&jw, rq.mfa);
    sv_jw_key(&jw, "time");
    sv_jw_time(&jw, rq.now);
    sv_jw_obj_end(&jw);
    sv_jw_obj_end(&jw);
    sv_authz_trace_free(tr);
    sv_json_doc_free(doc);
    sv_req_reply_built(req, 200, &body);
}

sv_err_t sv_http_routes_policies(sv_router_t *r)
{
    /* clang-format off */
    static const sv_route_t routes[] = {
        {.method = "POST", .pattern = "/v1/policies/test", .handler = test_policies, .scope = SV_SCOPE_POLICIES_READ,
         .rate_category = SV_RL_ADMIN, .flags = SV_ROUTE_TENANT, .action = "policy_test"},
        {.method = "GET", .pattern = "/v1/policies", .handler = list_policies, .scope = SV_SCOPE_POLICIES_READ,
         .rate_category = SV_RL_ADMIN, .flags = SV_ROUTE_TENANT, .action = "policy_list"},
        {.method = "GET", .pattern = "/v1/policies/{name}", .handler = get_policy, .scope = SV_SCOPE_POLICIES_READ,
         .rate_category = SV_RL_ADMIN, .flags = SV_ROUTE_TENANT, .action = "policy_read"},
        {.method = "PUT", .pattern = "/v1/policies/{name}", .handler = put_policy, .scope = SV_SCOPE_POLICIES_WRITE,
         .rate_category = SV_RL_ADMIN, .flags = SV_ROUTE_TENANT, .action = "policy_write"},
        {.method = "DELETE", .pattern = "/v1/policies/{name}", .handler = delete_policy,
         .scope = SV_SCOPE_POLICIES_WRITE, .rate_category = SV_RL_ADMIN, .flags = SV_ROUTE_TENANT,
         .action = "policy_write"},
    };
    /* clang-format on */
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
