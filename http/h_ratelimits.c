/*
 * h_ratelimits.c - a tenant's rate-limit overrides:
 *   GET    /v1/tenants/{id}/rate-limits  the overrides and the limits in force
 *   PUT    /v1/tenants/{id}/rate-limits  {"read": "100/min", "write": "10/s"}
 *   DELETE /v1/tenants/{id}/rate-limits  back to the configured defaults
 * Super admins only (the bootstrap token, role super_admin). PUT replaces
 * the whole set: a category left out (or null) uses RATE_LIMIT_<CATEGORY>.
 * The set is stored through the writer (src/ratelimit.c) and installed in
 * the limiter once committed; it applies from the next request on.
 * Runs on the request's worker, except the store step (writer thread).
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "src/ratelimit.h"

typedef struct {
    char tenant[SV_TENANT_MAX];
    sv_rl_overrides_t ov;
    uint64_t version; /* set by apply */
} put_op_t;

/* The tenant of the path, checked; fails the request and returns false. */
static bool take_tenant(sv_req_t *req, char out[SV_TENANT_MAX])
{
    if (!sv_req_param_copy(req, "id", sv_tenant_id_valid, out, SV_TENANT_MAX,
                           "The tenant id must match [A-Za-z0-9_-]{1,63}."))
        return false;
    if (!sv_req_require_super_admin(req, "Only a super admin may read or change a tenant's rate limits."))
        return false;
    if (req->app->ratelimit == NULL) {
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "Rate limiting is not running in this process.", NULL);
        return false;
    }
    return true;
}

/* {"tenant_id", "overrides": {cat: "100/min"}, "limits": {cat: {limit,
 * window_seconds, rate, source}}} */
static void reply_limits(sv_req_t *req, const char *tenant)
{
    sv_ratelimit_t *rl = req->app->ratelimit;
    sv_rl_overrides_t ov;
    sv_rl_get_overrides(rl, tenant, &ov);
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "tenant_id");
    sv_jw_cstr(&jw, tenant);
    sv_jw_key(&jw, "overrides");
    sv_jw_obj_begin(&jw);
    char text[32];
    for (int c = 0; c < SV_RL_COUNT_; c++) {
        if (ov.rate[c].limit == 0)
            continue;
        sv_jw_key(&jw, sv_rl_category_name((sv_rl_category_t)c));
        sv_rl_rate_format(ov.rate[c], text, sizeof(text));
        sv_jw_cstr(&jw, text);
    }
    sv_jw_obj_end(&jw);
    sv_jw_key(&jw, "limits");
    sv_jw_obj_begin(&jw);
    for (int c = 0; c < SV_RL_COUNT_; c++) {
        bool is_override;
        sv_rate_t r = sv_rl_effective(rl, tenant, (sv_rl_category_t)c, &is_override);
        sv_jw_key(&jw, sv_rl_category_name((sv_rl_category_t)c));
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "limit");
        sv_jw_uint(&jw, r.limit);
        sv_jw_key(&jw, "window_seconds");
        sv_jw_uint(&jw, r.window_s);
        sv_jw_key(&jw, "rate");
        sv_rl_rate_format(r, text, sizeof(text));
        sv_jw_cstr(&jw, text);
        sv_jw_key(&jw, "source");
        sv_jw_cstr(&jw, is_override ? "override" : "default");
        sv_jw_obj_end(&jw);
    }
    sv_jw_obj_end(&jw);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, 200, &body);
}

static void get_limits(sv_req_t *req)
{
    char tenant[SV_TENANT_MAX];
    if (take_tenant(req, tenant))
        reply_limits(req, tenant);
}

/* ---- PUT / DELETE: through the writer ---- */

static sv_err_t put_apply(sv_wtxn_t *tx, void *arg)
{
    put_op_t *op = arg;
    return sv_rl_store_put(tx, op->tenant, &op->ov, &op->version);
}

static void put_done(sv_req_t *req, sv_err_t result, void *arg)
{
    put_op_t *op = arg;
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_err_t err = sv_rl_set_overrides(req->app->ratelimit, op->tenant, &op->ov, op->version);
    if (err != SV_OK) {
        /* stored, but not in force until a restart: say so */
        sv_req_log(req, SV_LOG_ERROR, "rate-limit overrides of %s stored but not installed: %s", op->tenant,
                   sv_strerror(err));
        sv_req_fail(req, SV_E_INTERNAL, "The overrides were stored but could not be installed; restart to apply.",
                    NULL);
        return;
    }
    reply_limits(req, op->tenant);
}

static void submit(sv_req_t *req, put_op_t *op)
{
    req->handler_data = op;
    req->handler_data_free = free;
    sv_req_op_t o = {.apply = put_apply, .arg = op, .done = put_done, .tenant = op->tenant};
    sv_req_submit(req, &o);
}

/* A new op for the tenant of the path, or NULL after failing the request. */
static put_op_t *new_op(sv_req_t *req)
{
    put_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sv_req_fail_err(req, SV_ENOMEM);
        return NULL;
    }
    if (!take_tenant(req, op->tenant)) {
        free(op);
        return NULL;
    }
    return op;
}

static void put_limits(sv_req_t *req)
{
    put_op_t *op = new_op(req);
    if (op == NULL)
        return;
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL) {
        free(op);
        return;
    }
    for (sv_json_t *m = sv_json_root(doc)->u.kids.first; m != NULL; m = m->next) {
        int cat = -1;
        for (int c = 0; c < SV_RL_COUNT_ && cat < 0; c++)
            if (strcmp(m->key, sv_rl_category_name((sv_rl_category_t)c)) == 0)
                cat = c;
        char msg[200];
        if (cat < 0) {
            snprintf(msg, sizeof(msg),
                     "Unknown rate-limit category; use read, write, batch_read, list, admin or auth.");
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, m->key);
            goto fail;
        }
        if (m->type == SV_JSON_NULL)
            continue; /* the default */
        if (m->type != SV_JSON_STRING || sv_rate_parse(m->u.str.s, m->u.str.len, &op->ov.rate[cat]) != SV_OK) {
            snprintf(msg, sizeof(msg),
                     "A rate is a string such as \"6000/min\", \"10/s\", \"5000/hour\" or \"50/10s\" "
                     "(N from 1 to 1000000000, window 1 s to 24 h), or null for the default.");
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, m->key);
            goto fail;
        }
    }
    sv_json_doc_free(doc);
    submit(req, op);
    return;

fail:
    sv_json_doc_free(doc);
    free(op);
}

static void delete_limits(sv_req_t *req)
{
    put_op_t *op = new_op(req);
    if (op != NULL)
        submit(req, op); /* an empty set: every category back to its default */
}

sv_err_t sv_http_routes_ratelimits(sv_router_t *r)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/tenants/{id}/rate-limits", .handler = get_limits,
         .scope = SV_SCOPE_ADMIN, .rate_category = SV_RL_ADMIN, .action = "tenant_rate_limits_read"},
        {.method = "PUT", .pattern = "/v1/tenants/{id}/rate-limits", .handler = put_limits,
         .scope = SV_SCOPE_ADMIN, .rate_category = SV_RL_ADMIN, .action = "tenant_rate_limits_write"},
        {.method = "DELETE", .pattern = "/v1/tenants/{id}/rate-limits", .handler = delete_limits,
         .scope = SV_SCOPE_ADMIN, .rate_category = SV_RL_ADMIN, .action = "tenant_rate_limits_delete"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
