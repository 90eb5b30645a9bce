/*
 * h_audit.c - the audit log API: GET /v1/audit/logs (query), GET
 * /v1/audit/verify, GET /v1/audit/export (JSON lines, streamed),
 * GET /v1/audit/checkpoints/public-key and POST /v1/audit/checkpoints.
 *
 * The design choice: nothing here holds a read snapshot across a turn of the
 * event loop, and nothing runs unbounded on it. A query examines a bounded
 * number of index rows; verification runs in slices, one per loop turn
 * (a 1 ms h2o timeout in between lets other requests through); the export is
 * an h2o generator that reads one slice per chunk the client takes.
 * Runs on the request's worker.
 */
#include "sv_autoconf.h"

#include <errno.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "http/server.h"
#include "src/audit_query.h"
#include "src/audit_verify.h"

#define VERIFY_SLICE 16384 /* records per loop turn */
#define EXPORT_SLICE 512   /* records per chunk */
#define SUPER_ADMIN_MSG "Only a super admin may do this."

/* The audit log, or NULL after failing the request (auditing bypassed). */
static sv_audit_t *audit_log(sv_req_t *req)
{
    sv_audit_t *a = req->app->audit;
    if (a == NULL)
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "The audit log is off (SCAIVAULT_BENCH_UNAUDITED).", NULL);
    return a; /* not req->app: failing it freed req */
}

/* Zeroed memory for a request's job, or NULL after failing the request. */
static void *job_alloc(sv_req_t *req, size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL)
        sv_req_fail_err(req, SV_ENOMEM);
    return p;
}

/* Reads query parameter name into out. Returns false after failing the
 * request when it is malformed or too long; *present says whether it was given. */
static bool param(sv_req_t *req, const char *name, char *out, size_t cap, bool *present)
{
    bool bad = false;
    *present = sv_req_query(req, name, out, cap, &bad);
    if (bad) {
        char msg[96];
        snprintf(msg, sizeof(msg), "The query parameter %s is malformed or too long.", name);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
        return false;
    }
    if (*present && !sv_utf8_valid(out, strlen(out))) {
        /* entries hold UTF-8 only: such a filter could never match */
        char msg[96];
        snprintf(msg, sizeof(msg), "The query parameter %s is not valid UTF-8.", name);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
        return false;
    }
    if (*present && out[0] == 0)
        *present = false; /* "?action=" is no filter */
    return true;
}

static bool param_u64(sv_req_t *req, const char *name, uint64_t *out)
{
    char buf[24];
    bool present;
    if (!param(req, name, buf, sizeof(buf), &present))
        return false;
    if (!present)
        return true;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (buf[0] < '0' || buf[0] > '9' || *end != 0 || errno == ERANGE) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be a whole number below 2^64.", name);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
        return false;
    }
    *out = v;
    return true;
}

static bool param_time(sv_req_t *req, const char *name, int64_t *out_s, bool *present)
{
    char buf[40] = "";
    if (!param(req, name, buf, sizeof(buf), present))
        return false;
    /* "+00:00" sent unencoded arrives as " 00:00" (a '+' in a query is a space) */
    size_t len = *present ? strlen(buf) : 0; /* buf holds nothing when the parameter is absent */
    if (len > 6 && buf[len - 6] == ' ')
        buf[len - 6] = '+';
    if (*present && sv_time_parse(buf, strlen(buf), out_s) != SV_OK) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be an RFC 3339 UTC time such as 2026-11-29T10:00:00Z.", name);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
        return false;
    }
    return true;
}

static bool valid_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* ---- GET /v1/audit/logs ---- */

static void get_logs(sv_req_t *req)
{
    if (audit_log(req) == NULL)
        return;
    sv_audit_query_t q = {.success = -1, .from_us = INT64_MIN, .to_us = INT64_MAX, .limit = 100};
    if (!sv_principal_is_super_admin(&req->principal) && req->principal.tenant_id[0] == 0) {
        /* the log has no policies in front of it: only a token of a tenant reads that tenant's part */
        sv_req_fail(req, SV_E_ACCESS_DENIED, "Only a super admin, or a token of the tenant, reads a tenant's audit log.",
                    "{\"reason\":\"tenant_token_required\"}");
        return;
    }
    if (!sv_audit_tenant_filter(&req->principal, req->tenant_id, &q.tenant)) {
        sv_req_fail(req, SV_E_TENANT_REQUIRED, NULL, NULL);
        return;
    }
    char request_id[80], action[64], identity_id[SV_ID_MAX], path_prefix[600], success[8], order[8], cursor[64];
    bool has_rid, has_action, has_identity, has_prefix, has_success, has_order, has_cursor, has_from, has_to;
    int64_t from_s = 0, to_s = 0;
    if (!param(req, "request_id", request_id, sizeof(request_id), &has_rid) ||
        !param(req, "action", action, sizeof(action), &has_action) ||
        !param(req, "identity_id", identity_id, sizeof(identity_id), &has_identity) ||
        !param(req, "path_prefix", path_prefix, sizeof(path_prefix), &has_prefix) ||
        !param(req, "success", success, sizeof(success), &has_success) ||
        !param(req, "order", order, sizeof(order), &has_order) ||
        !param(req, "cursor", cursor, sizeof(cursor), &has_cursor) || !param_time(req, "from", &from_s, &has_from) ||
        !param_time(req, "to", &to_s, &has_to))
        return;
    if (has_rid && !valid_request_id(request_id)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "request_id must match [A-Za-z0-9_.-]{1,64}.", "request_id");
        return;
    }
    if (has_success && strcmp(success, "true") != 0 && strcmp(success, "false") != 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "success must be true or false.", "success");
        return;
    }
    if (has_order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "order must be desc (newest first) or asc.", "order");
        return;
    }
    if (!sv_req_query_limit(req, q.limit, &q.limit))
        return;
    if (has_from && has_to && to_s < from_s) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "to is before from.", "to");
        return;
    }
    q.request_id = has_rid ? request_id : NULL;
    q.action = has_action ? action : NULL;
    q.identity_id = has_identity ? identity_id : NULL;
    q.path_prefix = has_prefix ? path_prefix : NULL;
    q.success = has_success ? strcmp(success, "true") == 0 : -1;
    q.ascending = has_order && strcmp(order, "asc") == 0;
    if (has_from)
        q.from_us = from_s * 1000000;
    if (has_to)
        q.to_us = to_s * 1000000 + 999999;
    sv_audit_cursor_t cur;
    if (has_cursor) {
        if (sv_audit_cursor_parse(cursor, strlen(cursor), &cur) != SV_OK || cur.mode != sv_audit_query_mode(&q) ||
            cur.ascending != q.ascending) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "cursor is not one this query returned.", "cursor");
            return;
        }
        q.cursor = &cur;
    }
    q.cursor_key = sv_audit_cursor_key(req->app->audit);
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return;
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_err_t err = sv_audit_query_run(tx, &q, &body);
    sv_store_read_end(sv_req_reader(req));
    if (err == SV_EINVAL) {
        sv_buf_free(&body);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "cursor is not one this query returned (another tenant, filter, or order).", "cursor");
        return;
    }
    if (err != SV_OK) {
        sv_buf_free(&body);
        sv_req_fail_err(req, err);
        return;
    }
    sv_req_reply(req, 200, &body);
}

/* ---- GET /v1/audit/verify ---- */

typedef struct {
    sv_req_t *req;
    sv_audit_verifier_t v;
    h2o_timeout_entry_t entry; /* in the worker's slice_timeout: the next slice on the next loop turn */
} verify_job_t;

/* May run inside the slice's own callback (the answer of an async-audited
 * request completes at once): it unlinks the entry, and frees nothing that
 * the loop is walking. */
static void verify_job_free(void *p)
{
    verify_job_t *job = p;
    if (h2o_timeout_is_linked(&job->entry))
        h2o_timeout_unlink(&job->entry);
    free(job);
}

static void verify_slice(h2o_timeout_entry_t *entry)
{
    verify_job_t *job = H2O_STRUCT_FROM_MEMBER(verify_job_t, entry, entry);
    sv_req_t *req = job->req;
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(sv_req_reader(req), &tx);
    if (err == SV_OK) {
        err = sv_audit_verify_step(&job->v, tx, VERIFY_SLICE);
        sv_store_read_end(sv_req_reader(req));
    }
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return;
    }
    if (!job->v.done) {
        if (req->worker->stopping) {
            sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "The server is shutting down.", NULL);
            return;
        }
        h2o_timeout_link(req->worker->loop, &req->worker->slice_timeout, &job->entry);
        return;
    }
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_audit_verify_json(&jw, &job->v);
    sv_req_reply(req, 200, &body);
}

static void get_verify(sv_req_t *req)
{
    sv_audit_t *a = audit_log(req);
    if (a == NULL || !sv_req_require_super_admin(req, SUPER_ADMIN_MSG))
        return;
    uint64_t from = 0, to = 0;
    if (!param_u64(req, "from_seq", &from) || !param_u64(req, "to_seq", &to))
        return;
    if (to != 0 && to < from) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "to_seq is before from_seq.", "to_seq");
        return;
    }
    verify_job_t *job = job_alloc(req, sizeof(*job));
    if (job == NULL)
        return;
    job->req = req;
    sv_audit_verify_init(&job->v, from, to, sv_audit_public_key(a));
    job->entry.cb = verify_slice;
    req->handler_data = job;
    req->handler_data_free = verify_job_free;
    verify_slice(&job->entry);
}

/* ---- GET /v1/audit/export ---- */

typedef struct {
    sv_audit_export_t e;
    sv_store_reader_t *reader; /* the worker's */
} export_job_t;

static bool export_next(void *arg, sv_buf_t *out, bool stopping, bool *done)
{
    export_job_t *job = arg;
    sv_txn_t *tx;
    if (sv_store_read_begin(job->reader, &tx) != SV_OK)
        return false;
    sv_err_t err = sv_audit_export_chunk(tx, &job->e, EXPORT_SLICE, stopping, out, done);
    sv_store_read_end(job->reader);
    return err == SV_OK;
}

static void export_free(void *arg)
{
    free(arg);
}

static const sv_stream_ops_t export_ops = {export_next, export_free};

static void get_export(sv_req_t *req)
{
    if (audit_log(req) == NULL || !sv_req_require_super_admin(req, SUPER_ADMIN_MSG))
        return;
    uint64_t from = 0;
    if (!param_u64(req, "from_seq", &from))
        return;
    /* the export ends at today's head, so a busy log cannot keep it going forever */
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(sv_req_reader(req), &tx);
    uint64_t head = 0;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    if (err == SV_OK) {
        err = sv_audit_head(tx, &head, hash, NULL);
        sv_store_read_end(sv_req_reader(req));
    }
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return;
    }
    export_job_t *job = job_alloc(req, sizeof(*job));
    if (job == NULL)
        return;
    job->reader = sv_req_reader(req);
    sv_audit_export_init(&job->e, from, head);
    sv_req_reply_stream(req, 200, "application/x-ndjson", &export_ops, job);
}

/* ---- checkpoints ---- */

static void get_public_key(sv_req_t *req)
{
    sv_audit_t *a = audit_log(req);
    if (a == NULL)
        return;
    const uint8_t *pk = sv_audit_public_key(a);
    char b64[64], hex[2 * SV_AUDIT_PK_BYTES + 1], pem[128], key_id[17];
    uint8_t id[SV_AUDIT_HASH_BYTES];
    sodium_bin2base64(b64, sizeof(b64), pk, SV_AUDIT_PK_BYTES, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2hex(hex, sizeof(hex), pk, SV_AUDIT_PK_BYTES);
    sv_audit_public_key_pem(pk, pem);
    crypto_generichash(id, sizeof(id), pk, SV_AUDIT_PK_BYTES, NULL, 0);
    sodium_bin2hex(key_id, sizeof(key_id), id, 8);
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "algorithm");
    sv_jw_cstr(&jw, "Ed25519");
    sv_jw_key(&jw, "key_id");
    sv_jw_cstr(&jw, key_id);
    sv_jw_key(&jw, "public_key");
    sv_jw_cstr(&jw, b64);
    sv_jw_key(&jw, "public_key_hex");
    sv_jw_cstr(&jw, hex);
    sv_jw_key(&jw, "public_key_pem");
    sv_jw_cstr(&jw, pem);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, 200, &body);
}

typedef struct {
    sv_audit_t *audit;
    sv_audit_checkpoint_t c;
    bool created;
} checkpoint_op_t;

static sv_err_t checkpoint_apply(sv_wtxn_t *tx, void *arg)
{
    checkpoint_op_t *op = arg;
    return sv_audit_checkpoint_now(op->audit, tx, &op->c, &op->created);
}

static sv_api_error_t checkpoint_error(sv_err_t err, void *arg)
{
    return err == SV_ENOTFOUND ? SV_E_CONFLICT : sv_api_error_from_err(err);
}

static int checkpoint_status(void *arg)
{
    return ((checkpoint_op_t *)arg)->created ? 201 : 200;
}

static void checkpoint_done(sv_req_t *req, sv_err_t result, void *arg)
{
    checkpoint_op_t *op = arg;
    if (result == SV_ENOTFOUND) {
        sv_req_fail(req, SV_E_CONFLICT, "The audit log has no entry to checkpoint yet.", NULL);
        return;
    }
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_audit_checkpoint_json(&jw, &op->c);
    sv_req_reply(req, req->op_status, &body);
}

static void post_checkpoint(sv_req_t *req)
{
    sv_audit_t *a = audit_log(req);
    if (a == NULL || !sv_req_require_super_admin(req, SUPER_ADMIN_MSG))
        return;
    checkpoint_op_t *op = job_alloc(req, sizeof(*op));
    if (op == NULL)
        return;
    op->audit = a;
    req->handler_data = op;
    req->handler_data_free = free;
    sv_req_op_t w = {.apply = checkpoint_apply,
                     .arg = op,
                     .map_error = checkpoint_error,
                     .success_status = checkpoint_status,
                     .done = checkpoint_done};
    sv_req_submit(req, &w);
}

sv_err_t sv_http_routes_audit(sv_router_t *r)
{
    /* clang-format off */
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/audit/logs", .handler = get_logs, .scope = SV_SCOPE_AUDIT_READ,
         .rate_category = SV_RL_LIST, .action = "audit_query", .flags = SV_ROUTE_AUDIT_FRESH},
        {.method = "GET", .pattern = "/v1/audit/verify", .handler = get_verify, .scope = SV_SCOPE_AUDIT_READ,
         .rate_category = SV_RL_ADMIN, .action = "audit_verify", .flags = SV_ROUTE_AUDIT_FRESH},
        {.method = "GET", .pattern = "/v1/audit/export", .handler = get_export, .scope = SV_SCOPE_AUDIT_READ,
         .rate_category = SV_RL_ADMIN, .action = "audit_export", .flags = SV_ROUTE_AUDIT_FRESH},
        {.method = "GET", .pattern = "/v1/audit/checkpoints/public-key", .handler = get_public_key,
         .scope = SV_SCOPE_AUDIT_READ, .rate_category = SV_RL_READ, .action = "audit_public_key"},
        {.method = "POST", .pattern = "/v1/audit/checkpoints", .handler = post_checkpoint, .scope = SV_SCOPE_ADMIN,
         .rate_category = SV_RL_ADMIN, .action = "audit_checkpoint"},
    };
    /* clang-format on */
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
