/*
 * h_identity.c - the identity cache's endpoints: POST /v1/identity/sync,
 * GET/PUT /v1/identity/identities/{id}, GET /v1/identity/groups,
 * GET/PUT /v1/identity/groups/{id}.
 *
 * A sync fetches on the outbound thread while the request waits off the
 * worker's stack, then comes back to the worker and commits the new entries
 * in one unit with its `identity_sync` audit entry. The manual PUTs mark
 * their entries `source: "manual"`, which later syncs leave alone, and
 * refuse to overwrite an entry of the directory (`source: "scim"`). Every
 * committed change bumps the identity generation (policies cache on it).
 * Only a super admin, or a tenant admin of the tenant, may use them.
 * Runs on the workers.
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "http/server.h"
#include "src/identity.h"
#include "src/idsync.h"

#define MAX_LIST 256 /* groups of an identity, members of a group, in one PUT */

/* Super admin, or tenant admin of tenant. Fails the request otherwise. */
static bool admin_of(sv_req_t *req, const char *tenant)
{
    return sv_req_require_admin(req, tenant, "This needs a super admin or a tenant admin of the tenant.");
}

static const char *source_name(uint8_t s)
{
    return s == SV_SOURCE_SCIM ? "scim" : "manual";
}

/* Ends a read: the body on success, 404 with not_found (or the default
 * message when NULL), or err's error. */
static void end_read(sv_req_t *req, sv_err_t err, sv_buf_t *body, const char *not_found)
{
    if (err == SV_OK) {
        sv_req_reply(req, 200, body);
        return;
    }
    sv_buf_free(body);
    if (err == SV_ENOTFOUND)
        sv_req_fail(req, SV_E_NOT_FOUND, not_found, NULL);
    else
        sv_req_fail_err(req, err);
}

#define IDENTITY_ID_MSG "The identity id must look like sa:name or user:name."
#define GROUP_ID_MSG "The group id must match [A-Za-z0-9_.:@-]{1,127}."

/* ---- sync ---- */

typedef struct {
    sv_worker_task_t task;
    sv_req_t *req;
    sv_scim_sync_t *sync;
} sync_ctx_t;

static void sync_ctx_free(void *p)
{
    sync_ctx_t *ctx = p;
    sv_idsync_free(ctx->sync);
    free(ctx);
}

static sv_err_t sync_apply(sv_wtxn_t *tx, void *arg)
{
    sync_ctx_t *ctx = arg;
    sv_err_t err = sv_scim_apply_tx(tx, ctx->sync);
    if (err == SV_OK) /* the periodic sync includes the tenant from now on */
        err = sv_idsync_schedule_tx(ctx->req->app, tx, ctx->sync->tenant_id);
    return err;
}

static void sync_done(sv_req_t *req, sv_err_t result, void *arg)
{
    sync_ctx_t *ctx = arg;
    const sv_scim_sync_t *s = ctx->sync;
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_identity_bump_generation();
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "tenant_id");
    sv_jw_cstr(&jw, s->tenant_id);
    sv_jw_key(&jw, "users");
    sv_jw_uint(&jw, s->n_users);
    sv_jw_key(&jw, "groups");
    sv_jw_uint(&jw, s->n_groups);
    sv_jw_key(&jw, "service_accounts");
    sv_jw_uint(&jw, s->n_service_accounts);
    sv_jw_key(&jw, "started_at");
    sv_jw_time(&jw, s->started_at);
    sv_jw_key(&jw, "finished_at");
    sv_jw_time(&jw, s->finished_at);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, 200, &body);
}

/* Back on the worker with the fetched directory. */
static void sync_fetched_resume(sv_worker_task_t *task)
{
    sync_ctx_t *ctx = (sync_ctx_t *)task;
    sv_req_t *req = ctx->req;
    const sv_scim_sync_t *s = ctx->sync;
    if (s->result != SV_OK) {
        sv_buf_t d;
        sv_buf_init(&d, false);
        sv_jw_t jw;
        sv_jw_init(&jw, &d);
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "reason");
        sv_jw_cstr(&jw, "directory_sync_failed");
        sv_jw_key(&jw, "upstream_error");
        sv_jw_cstr(&jw, s->error);
        sv_jw_obj_end(&jw);
        sv_buf_putc(&d, 0);
        sv_req_fail(req, s->result == SV_ESHUTDOWN ? SV_E_SERVICE_UNAVAILABLE : SV_E_BACKEND_ERROR,
                    "The identity directory could not be read.", d.failed ? NULL : (const char *)d.base);
        sv_buf_free(&d);
        return;
    }
    sv_req_op_t op = {.apply = sync_apply, .arg = ctx, .done = sync_done};
    sv_req_submit(req, &op);
}

/* Outbound thread. */
static void sync_fetched(sv_scim_sync_t *s)
{
    sync_ctx_t *ctx = s->arg;
    ctx->sync = s;
    sv_worker_post(ctx->req->worker, &ctx->task);
}

static void post_sync(sv_req_t *req)
{
    char tenant[SV_TENANT_MAX];
    bool bad = false;
    if (sv_req_query(req, "tenant_id", tenant, sizeof(tenant), &bad)) {
        if (!sv_tenant_id_valid(tenant, strlen(tenant))) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "tenant_id must match [A-Za-z0-9_-]{1,63}.", "tenant_id");
            return;
        }
    } else if (bad) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "tenant_id must match [A-Za-z0-9_-]{1,63}.", "tenant_id");
        return;
    } else if (req->tenant_id[0] != 0) {
        snprintf(tenant, sizeof(tenant), "%s", req->tenant_id);
    } else {
        sv_req_fail(req, SV_E_TENANT_REQUIRED, "Name the tenant with ?tenant_id= or X-ScaiVault-Tenant.", NULL);
        return;
    }
    if (!admin_of(req, tenant))
        return;
    sv_req_audit_path(req, tenant, strlen(tenant));
    snprintf(req->tenant_id, sizeof(req->tenant_id), "%s", tenant); /* the request acts in that tenant */
    if (!sv_idsync_configured(req->app)) {
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "No identity directory is configured (SCAIKEY_DIRECTORY_URL).",
                    "{\"reason\":\"directory_not_configured\"}");
        return;
    }
    sync_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        sv_req_fail_err(req, SV_ENOMEM);
        return;
    }
    ctx->task.fn = sync_fetched_resume;
    ctx->req = req;
    req->handler_data = ctx;
    req->handler_data_free = sync_ctx_free;
    sv_scim_sync_t *s;
    sv_err_t err = sv_idsync_fetch(req->app, tenant, sync_fetched, ctx, &s);
    if (err != SV_OK)
        sv_req_fail_err(req, err == SV_ENOTFOUND ? SV_EINTERNAL : err);
    /* else: resumed by sync_fetched_resume */
}

/* ---- reads ---- */

static bool push_str(void *arg, const char *s)
{
    sv_jw_cstr(arg, s);
    return true;
}

/* Writes one record as JSON; SV_ENOTFOUND when there is none. */
typedef sv_err_t (*build_fn)(sv_txn_t *txn, const char *tenant, const char *id, sv_jw_t *jw);

static sv_err_t build_identity(sv_txn_t *txn, const char *tenant, const char *id, sv_jw_t *jw)
{
    sv_identity_rec_t rec;
    sv_err_t err = sv_identity_get(txn, tenant, id, &rec);
    if (err != SV_OK)
        return err;
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "id");
    sv_jw_cstr(jw, rec.id);
    sv_jw_key(jw, "tenant_id");
    sv_jw_cstr(jw, rec.tenant_id);
    sv_jw_key(jw, "type");
    sv_jw_cstr(jw, rec.type == SV_IDENT_SERVICE_ACCOUNT ? "service_account" : "user");
    sv_jw_key(jw, "source");
    sv_jw_cstr(jw, source_name(rec.source));
    sv_jw_key(jw, "active");
    sv_jw_bool(jw, rec.active);
    sv_jw_key(jw, "display_name");
    sv_jw_cstr(jw, rec.display_name[0] ? rec.display_name : NULL);
    sv_jw_key(jw, "roles");
    sv_jw_arr_begin(jw);
    if (rec.roles & SV_ROLE_SUPER_ADMIN)
        sv_jw_cstr(jw, "super_admin");
    if (rec.roles & SV_ROLE_TENANT_ADMIN)
        sv_jw_cstr(jw, "tenant_admin");
    if (rec.roles & SV_ROLE_PARTNER_ADMIN)
        sv_jw_cstr(jw, "partner_admin");
    sv_jw_arr_end(jw);
    sv_jw_key(jw, "groups");
    sv_jw_arr_begin(jw);
    err = sv_identity_each_group(txn, tenant, id, push_str, jw);
    sv_jw_arr_end(jw);
    sv_jw_key(jw, "updated_at");
    sv_jw_time_or_null(jw, rec.updated_at);
    sv_jw_obj_end(jw);
    return err;
}

static sv_err_t build_group(sv_txn_t *txn, const char *tenant, const char *id, sv_jw_t *jw)
{
    sv_group_rec_t g;
    sv_err_t err = sv_group_get(txn, tenant, id, &g);
    if (err != SV_OK)
        return err;
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "id");
    sv_jw_cstr(jw, g.id);
    sv_jw_key(jw, "tenant_id");
    sv_jw_cstr(jw, g.tenant_id);
    sv_jw_key(jw, "display_name");
    sv_jw_cstr(jw, g.display_name[0] ? g.display_name : NULL);
    sv_jw_key(jw, "source");
    sv_jw_cstr(jw, source_name(g.source));
    sv_jw_key(jw, "members");
    sv_jw_arr_begin(jw);
    err = sv_group_each_member(txn, tenant, id, push_str, jw);
    sv_jw_arr_end(jw);
    sv_jw_key(jw, "updated_at");
    sv_jw_time_or_null(jw, g.updated_at);
    sv_jw_obj_end(jw);
    return err;
}

/* GET of one identity or group: checks the id and the caller, reads in one
 * snapshot, answers the JSON or 404 with not_found. */
static void get_one(sv_req_t *req, bool (*valid)(const char *, size_t), const char *bad_id, build_fn build,
                    const char *not_found)
{
    char id[SV_ID_MAX];
    if (!sv_req_param_copy(req, "id", valid, id, sizeof(id), bad_id) || !admin_of(req, req->tenant_id))
        return;
    sv_txn_t *txn;
    if (!sv_req_read_begin(req, &txn))
        return;
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_err_t err = build(txn, req->tenant_id, id, &jw);
    sv_store_read_end(sv_req_reader(req));
    end_read(req, err, &body, not_found);
}

static void get_identity(sv_req_t *req)
{
    get_one(req, sv_identity_id_valid, IDENTITY_ID_MSG, build_identity,
            "No such identity in this tenant's identity cache.");
}

static void get_group(sv_req_t *req)
{
    get_one(req, sv_group_id_valid, GROUP_ID_MSG, build_group, "No such group in this tenant's identity cache.");
}

typedef struct {
    sv_jw_t *jw;
    size_t n, limit;
    char last[SV_GROUP_ID_MAX];
    bool more;
} group_page_t;

static bool list_group(void *arg, const sv_group_rec_t *g)
{
    group_page_t *pg = arg;
    if (pg->n == pg->limit) {
        pg->more = true;
        return false;
    }
    sv_jw_t *jw = pg->jw;
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "id");
    sv_jw_cstr(jw, g->id);
    sv_jw_key(jw, "display_name");
    sv_jw_cstr(jw, g->display_name[0] ? g->display_name : NULL);
    sv_jw_key(jw, "source");
    sv_jw_cstr(jw, source_name(g->source));
    sv_jw_key(jw, "member_count");
    sv_jw_uint(jw, g->n_members);
    sv_jw_key(jw, "updated_at");
    sv_jw_time_or_null(jw, g->updated_at);
    sv_jw_obj_end(jw);
    snprintf(pg->last, sizeof(pg->last), "%s", g->id);
    pg->n++;
    return true;
}

static void list_groups(sv_req_t *req)
{
    if (!admin_of(req, req->tenant_id))
        return;
    char cursor[256], after[SV_GROUP_ID_MAX] = "";
    bool bad = false;
    unsigned limit;
    if (!sv_req_query_limit(req, 100, &limit))
        return;
    /* as on /v1/policies: a bad escape, a cursor too long for any group id,
     * and an empty one are all cursors this endpoint never returned */
    if (sv_req_query(req, "cursor", cursor, sizeof(cursor), &bad) &&
        !sv_http_name_cursor_parse(cursor, sv_group_id_valid, after, sizeof(after)))
        bad = true;
    if (bad) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "cursor is not one this endpoint returned.", "cursor");
        return;
    }
    sv_txn_t *txn;
    if (!sv_req_read_begin(req, &txn))
        return;
    sv_buf_t body;
    sv_jw_t jw;
    sv_http_page_begin(&body, &jw);
    group_page_t pg = {.jw = &jw, .limit = limit};
    sv_err_t err = sv_group_list(txn, req->tenant_id, after, list_group, &pg);
    sv_store_read_end(sv_req_reader(req));
    sv_http_page_end_names(&jw, pg.more, pg.last);
    end_read(req, err, &body, NULL);
}

/* ---- manual entries ---- */

typedef struct {
    sv_identity_rec_t ident;
    sv_group_rec_t group;
    char *list[MAX_LIST];
    size_t n;
    bool is_group;
    bool directory_managed; /* set by put_apply: the entry is the directory's */
} put_op_t;

static void put_op_free(void *p)
{
    put_op_t *op = p;
    for (size_t i = 0; i < op->n; i++)
        free(op->list[i]);
    free(op);
}

/* Writer thread. An entry the directory keeps (source "scim") is refused
 * with SV_ECONFLICT: made manual, a sync would leave it alone for good, so a
 * PUT could undo a deactivation in the directory. Checked here, in the
 * transaction that writes, so a sync committed after the request was parsed
 * still counts. */
static sv_err_t put_apply(sv_wtxn_t *tx, void *arg)
{
    put_op_t *op = arg;
    sv_group_rec_t old_group;
    sv_identity_rec_t old_ident;
    sv_err_t err = op->is_group ? sv_group_get(sv_wtxn_txn(tx), op->group.tenant_id, op->group.id, &old_group)
                                : sv_identity_get(sv_wtxn_txn(tx), op->ident.tenant_id, op->ident.id, &old_ident);
    op->directory_managed =
        err == SV_OK && (op->is_group ? old_group.source : old_ident.source) == SV_SOURCE_SCIM;
    if (err != SV_OK && err != SV_ENOTFOUND)
        return err;
    if (op->directory_managed)
        return SV_ECONFLICT;
    if (op->is_group)
        return sv_group_put_tx(tx, &op->group, (const char *const *)op->list, op->n);
    op->ident.roles = err == SV_OK ? old_ident.roles : 0; /* roles ScaiVault granted survive */
    return sv_identity_put_tx(tx, &op->ident, (const char *const *)op->list, op->n);
}

static sv_api_error_t put_map_error(sv_err_t err, void *arg)
{
    put_op_t *op = arg;
    return err == SV_ECONFLICT && op->directory_managed ? SV_E_CONFLICT : sv_api_error_from_err(err);
}

static void put_done(sv_req_t *req, sv_err_t result, void *arg)
{
    put_op_t *op = arg;
    if (result == SV_ECONFLICT && op->directory_managed) {
        sv_req_fail(req, SV_E_CONFLICT,
                    op->is_group ? "This group is managed by the identity directory: change it there; a sync "
                                   "updates it."
                                 : "This identity is managed by the identity directory: change it there; a sync "
                                   "updates it.",
                    "{\"reason\":\"directory_managed\"}");
        return;
    }
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_identity_bump_generation();
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "id");
    sv_jw_cstr(&jw, op->is_group ? op->group.id : op->ident.id);
    sv_jw_key(&jw, "tenant_id");
    sv_jw_cstr(&jw, req->tenant_id);
    if (!op->is_group) {
        sv_jw_key(&jw, "type");
        sv_jw_cstr(&jw, op->ident.type == SV_IDENT_SERVICE_ACCOUNT ? "service_account" : "user");
    }
    sv_jw_key(&jw, "source");
    sv_jw_cstr(&jw, "manual");
    sv_jw_key(&jw, op->is_group ? "members" : "groups");
    sv_jw_arr_begin(&jw);
    for (size_t i = 0; i < op->n; i++)
        sv_jw_cstr(&jw, op->list[i]);
    sv_jw_arr_end(&jw);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, 200, &body);
}

/* Reads an array of ids (validated by valid) into op->list. */
static bool read_id_list(sv_req_t *req, const sv_json_t *root, const char *name, bool required,
                         bool (*valid)(const char *, size_t), put_op_t *op)
{
    sv_json_t *arr = sv_json_get(root, name);
    if (arr == NULL) {
        if (required) {
            char msg[64];
            snprintf(msg, sizeof(msg), "%s is required.", name);
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
            return false;
        }
        return true;
    }
    if (arr->type != SV_JSON_ARRAY || arr->u.kids.n > MAX_LIST) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be an array of at most %d ids.", name, MAX_LIST);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
        return false;
    }
    for (const sv_json_t *v = arr->u.kids.first; v != NULL; v = v->next) {
        if (v->type != SV_JSON_STRING || !valid(v->u.str.s, v->u.str.len)) {
            char msg[96];
            snprintf(msg, sizeof(msg), "%s holds an invalid id.", name);
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
            return false;
        }
        bool dup = false;
        for (size_t i = 0; i < op->n && !dup; i++)
            dup = strlen(op->list[i]) == v->u.str.len && memcmp(op->list[i], v->u.str.s, v->u.str.len) == 0;
        if (dup)
            continue;
        if ((op->list[op->n] = strndup(v->u.str.s, v->u.str.len)) == NULL) {
            sv_req_fail_err(req, SV_ENOMEM);
            return false;
        }
        op->n++;
    }
    return true;
}

static bool read_display_name(sv_req_t *req, const sv_json_t *root, char *out, size_t cap)
{
    sv_json_t *v = sv_json_get(root, "display_name");
    out[0] = 0;
    if (v == NULL || v->type == SV_JSON_NULL)
        return true;
    if (v->type != SV_JSON_STRING || v->u.str.len >= cap || memchr(v->u.str.s, 0, v->u.str.len) != NULL) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "display_name must be a string of at most 255 bytes, without NUL characters.",
                          "display_name");
        return false;
    }
    memcpy(out, v->u.str.s, v->u.str.len);
    out[v->u.str.len] = 0;
    return true;
}

/* The start of a manual PUT: the {id}, the caller, the body, the op (owned
 * by the request). NULL after failing the request. */
static put_op_t *put_begin(sv_req_t *req, bool (*valid)(const char *, size_t), const char *bad_id, char *id,
                           size_t cap, sv_json_doc_t **doc)
{
    if (!sv_req_param_copy(req, "id", valid, id, cap, bad_id) || !admin_of(req, req->tenant_id))
        return NULL;
    if ((*doc = sv_req_json_body(req)) == NULL)
        return NULL;
    put_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sv_json_doc_free(*doc);
        sv_req_fail_err(req, SV_ENOMEM);
        return NULL;
    }
    req->handler_data = op;
    req->handler_data_free = put_op_free;
    return op;
}

static void put_identity(sv_req_t *req)
{
    char id[SV_ID_MAX];
    sv_json_doc_t *doc;
    put_op_t *op = put_begin(req, sv_identity_id_valid, IDENTITY_ID_MSG, id, sizeof(id), &doc);
    if (op == NULL)
        return;
    sv_json_t *root = sv_json_root(doc);
    static const char *const allowed[] = {"type", "groups", "display_name", NULL};
    sv_json_t *type = sv_json_get(root, "type");
    sv_identity_rec_t *r = &op->ident;
    if (!sv_req_json_known_members(req, root, allowed, "Unknown member.", NULL))
        goto free_doc;
    if (type != NULL && type->type == SV_JSON_STRING && type->u.str.len == 4 && memcmp(type->u.str.s, "user", 4) == 0)
        r->type = SV_IDENT_USER;
    else if (type != NULL && type->type == SV_JSON_STRING && type->u.str.len == 15 &&
             memcmp(type->u.str.s, "service_account", 15) == 0)
        r->type = SV_IDENT_SERVICE_ACCOUNT;
    else {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "type must be \"user\" or \"service_account\".", "type");
        goto free_doc;
    }
    /* the prefix gives the type, as for a token's sub; other prefixes take either */
    if ((strncmp(id, "sa:", 3) == 0 && r->type != SV_IDENT_SERVICE_ACCOUNT) ||
        (strncmp(id, "user:", 5) == 0 && r->type != SV_IDENT_USER)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "type must agree with the id: \"service_account\" for sa:, \"user\" for user:.", "type");
        goto free_doc;
    }
    if (!read_id_list(req, root, "groups", false, sv_group_id_valid, op) ||
        !read_display_name(req, root, r->display_name, sizeof(r->display_name)))
        goto free_doc;
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->tenant_id, sizeof(r->tenant_id), "%s", req->tenant_id);
    r->source = SV_SOURCE_MANUAL;
    r->active = true;
    r->updated_at = sv_now_s();
    sv_req_op_t rop = {
        .apply = put_apply, .arg = op, .map_error = put_map_error, .done = put_done, .tenant = r->tenant_id};
    sv_req_submit(req, &rop);
free_doc:
    sv_json_doc_free(doc);
}

static void put_group(sv_req_t *req)
{
    char id[SV_GROUP_ID_MAX];
    sv_json_doc_t *doc;
    put_op_t *op = put_begin(req, sv_group_id_valid, GROUP_ID_MSG, id, sizeof(id), &doc);
    if (op == NULL)
        return;
    sv_json_t *root = sv_json_root(doc);
    op->is_group = true;
    static const char *const allowed[] = {"members", "display_name", NULL};
    sv_group_rec_t *g = &op->group;
    if (!sv_req_json_known_members(req, root, allowed, "Unknown member.", NULL) ||
        !read_id_list(req, root, "members", true, sv_identity_id_valid, op) ||
        !read_display_name(req, root, g->display_name, sizeof(g->display_name)))
        goto free_doc;
    snprintf(g->id, sizeof(g->id), "%s", id);
    snprintf(g->tenant_id, sizeof(g->tenant_id), "%s", req->tenant_id);
    g->source = SV_SOURCE_MANUAL;
    g->updated_at = sv_now_s();
    sv_req_op_t rop = {
        .apply = put_apply, .arg = op, .map_error = put_map_error, .done = put_done, .tenant = g->tenant_id};
    sv_req_submit(req, &rop);
free_doc:
    sv_json_doc_free(doc);
}

sv_err_t sv_http_routes_identity(sv_router_t *r)
{
    /* {id*}: an identity or group id may hold '/' (a directory's ids are
     * opaque); nothing lives under them */
    static const sv_route_t routes[] = {
        {.method = "POST", .pattern = "/v1/identity/sync", .handler = post_sync, .scope = SV_SCOPE_IDENTITY_SYNC,
         .rate_category = SV_RL_ADMIN, .action = "identity_sync"},
        {.method = "GET", .pattern = "/v1/identity/identities/{id*}", .handler = get_identity,
         .rate_category = SV_RL_READ, .flags = SV_ROUTE_TENANT, .action = "identity_read"},
        {.method = "PUT", .pattern = "/v1/identity/identities/{id*}", .handler = put_identity,
         .rate_category = SV_RL_ADMIN, .flags = SV_ROUTE_TENANT, .action = "identity_write"},
        {.method = "GET", .pattern = "/v1/identity/groups", .handler = list_groups, .rate_category = SV_RL_LIST,
         .flags = SV_ROUTE_TENANT, .action = "identity_group_list"},
        {.method = "GET", .pattern = "/v1/identity/groups/{id*}", .handler = get_group, .rate_category = SV_RL_READ,
         .flags = SV_ROUTE_TENANT, .action = "identity_group_read"},
        {.method = "PUT", .pattern = "/v1/identity/groups/{id*}", .handler = put_group, .rate_category = SV_RL_ADMIN,
         .flags = SV_ROUTE_TENANT, .action = "identity_group_write"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
