/*
 * h_secrets.c - the secrets API (API.md "Secrets"): /v1/secrets/... for a
 * tenant's secrets, /v1/partner/secrets/... for a partner's (same verbs,
 * another key namespace), and DELETE /v1/tenants/{id} (crypto-shredding).
 *
 * The design choice that shapes this file: a handler may need a data key that
 * is not in the cache, and the KMS may answer later from another thread. Such
 * a handler parks what it has parsed in a per-request context (the plaintext
 * of a PUT stays in secure memory there), ends its read transaction, and asks
 * the keyring; when the key is ready the handler simply runs again on its
 * worker (sv_worker_post) and now finds the key. A cached key (the usual
 * case) costs one lookup: GET is one read transaction, one cache hit, one
 * open straight into a secure response buffer, and no allocation besides it.
 *
 * An owner's first write creates its data key: wrapped by the KMS, then
 * inserted by a small writer unit of its own (insert-if-absent, so the writer
 * decides between two racing first writes; the loser loads the winner's
 * key), before the write itself goes to the writer with the request's audit
 * entry.
 *
 * Runs on the request's worker, except the key callbacks (KMS thread or
 * writer thread), which only record the result and post back.
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "http/server.h"
#include "http/steps.h"
#include "src/keyring.h"
#include "src/log.h"
#include "src/secrets.h"
#include "src/ratelimit.h"
#include "src/scheduler.h"
#include "src/identity.h"
#include "src/idsync.h"
#include "src/policy.h"

#define LIST_DEFAULT_LIMIT 100
#define BATCH_MAX_PATHS 100
/* A batch answer is at most this many times MAX_SECRET_BYTES bytes (4 MiB by
 * default, values and metadata); paths past it get payload_too_large. */
#define BATCH_MAX_SECRETS_OF_MAX_SIZE 8
#define VERSIONS_PARAM_MAX 1000
#define MAX_KEY_ROUNDS 4 /* key loads/creates per request before giving up */
#define PARTNER_HEADER "x-scaivault-partner"

/* ---- whose secrets: a tenant's, or a partner's ---- */

typedef struct {
    sv_owner_t owner;
    bool partner;
    char partner_id[SV_TENANT_MAX];
} scope_t;

static bool partner_route(const sv_req_t *req)
{
    return strncmp(req->route->pattern, "/v1/partner/", 12) == 0;
}

/* The tenant comes from the pipeline; the partner from the token's partner_id
 * claim, or, for tokens without one, X-ScaiVault-Partner (required of super
 * admins such as the bootstrap token). A token that names no partner at all
 * is put to the authorization step for perm with an empty partner, which
 * answers 403 (partner_admin_required, partner_mismatch). */
static void refused_audit_path(sv_req_t *req);

static bool resolve_scope(sv_req_t *req, scope_t *s, sv_perm_t perm)
{
    memset(s, 0, sizeof(*s));
    if (!partner_route(req)) {
        if (!sv_owner_tenant(&s->owner, req->tenant_id, strlen(req->tenant_id))) {
            sv_req_fail(req, SV_E_TENANT_REQUIRED, NULL, NULL);
            return false;
        }
        return true;
    }
    const sv_principal_t *p = &req->principal;
    size_t hl = 0;
    const char *hdr = sv_req_header(req, PARTNER_HEADER, &hl);
    if (hdr != NULL && (!sv_tenant_id_valid(hdr, hl) || sv_req_header_repeated(req, PARTNER_HEADER))) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "X-ScaiVault-Partner must be one header matching [A-Za-z0-9_-]{1,63}.",
                          "X-ScaiVault-Partner");
        return false;
    }
    const char *id = p->partner_id;
    size_t il = strlen(p->partner_id);
    if (il > 0 && hdr != NULL && (hl != il || memcmp(hdr, id, il) != 0)) {
        if (!sv_principal_is_super_admin(p)) {
            refused_audit_path(req); /* the entry names what it asked for */
            sv_req_fail(req, SV_E_ACCESS_DENIED, "A token may not act for another partner.",
                        "{\"reason\":\"partner_mismatch\"}");
            return false;
        }
        id = hdr;
        il = hl;
    } else if (il == 0) {
        if (hdr == NULL && !sv_principal_is_super_admin(p) && !sv_http_authorize_partner(req, "", "", 0, perm))
            return false;
        if (hdr == NULL) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                              "This token names no partner: name one with the X-ScaiVault-Partner header.",
                              "X-ScaiVault-Partner");
            return false;
        }
        id = hdr;
        il = hl;
    }
    s->partner = true;
    memcpy(s->partner_id, id, il);
    s->partner_id[il] = 0;
    sv_owner_partner(&s->owner, id, il);
    return true;
}

static bool authorize(sv_req_t *req, const scope_t *s, const char *path, size_t len, sv_perm_t perm)
{
    return s->partner ? sv_http_authorize_partner(req, s->partner_id, path, len, perm)
                      : sv_http_authorize(req, path, len, perm);
}

/* Whether perm on one item (of a batch, of a listing) is allowed, without
 * ending the request; *e says why not. */
static bool probe(sv_req_t *req, const scope_t *s, const char *path, size_t len, sv_perm_t perm, sv_api_error_t *e)
{
    bool allowed = false;
    sv_err_t err = sv_http_is_allowed(req, s->partner ? s->partner_id : NULL, path, len, perm, &allowed);
    if (err != SV_OK)
        *e = sv_api_error_from_err(err);
    else if (!allowed)
        *e = SV_E_ACCESS_DENIED;
    return err == SV_OK && allowed;
}

/* The audit entry names partner paths "partner:<id>/<path>" (':' never
 * appears in a secret path). */
static void audit_path(sv_req_t *req, const scope_t *s, const char *path, size_t len)
{
    if (!s->partner) {
        sv_req_audit_path(req, path, len);
        return;
    }
    char buf[SV_OWNER_MAX + SV_SECRET_PATH_MAX + 2];
    int n = snprintf(buf, sizeof(buf), "%s/%.*s", s->owner.id, (int)len, path);
    sv_req_audit_path(req, buf, n > 0 ? (size_t)n : 0);
}

/* The routes' refused_audit (router.h): the secret path, "partner:<id>/<path>"
 * or a listing's prefix. A batch read's paths are in its body, which a refused
 * request never has read: none. */
static void refused_audit_path(sv_req_t *req)
{
    const char *pat = req->route->pattern;
    bool partner = partner_route(req);
    char what[SV_SECRET_PATH_MAX + 1];
    size_t wl = 0;
    const char *p = sv_req_param(req, "path", &wl);
    if (p != NULL) {
        if (!sv_secret_path_usable(p, wl))
            return;
        memcpy(what, p, wl);
    } else {
        bool bad = false; /* a listing's prefix; the batch read has neither */
        if (strcmp(pat + (partner ? 19 : 11), "") != 0 || !sv_req_query(req, "prefix", what, sizeof(what), &bad))
            return;
        wl = strlen(what);
        if (bad || !sv_secret_prefix_valid(what, wl))
            return;
    }
    what[wl] = 0;
    scope_t s = {.partner = partner};
    if (partner) {
        /* the partner the request asked for: the header's, else the token's */
        size_t hl = 0;
        const char *hdr = sv_req_header(req, PARTNER_HEADER, &hl);
        const char *id = req->principal.partner_id;
        size_t il = strlen(id);
        if (hdr != NULL && !sv_tenant_id_valid(hdr, hl))
            return;
        if (hdr != NULL) {
            id = hdr;
            il = hl;
        }
        if (il == 0)
            return; /* no partner named at all */
        sv_owner_partner(&s.owner, id, il);
    }
    audit_path(req, &s, what, wl);
}

static bool path_param(sv_req_t *req, const char **path, size_t *len)
{
    *path = sv_req_param(req, "path", len);
    if (*path == NULL || !sv_secret_path_usable(*path, *len)) {
        sv_req_fail(req, SV_E_INVALID_PATH,
                    "Secret paths are 1-512 bytes of '/'-separated segments of [A-Za-z0-9._-], with no empty, '.' "
                    "or '..' segment, and may not end with versions, config, undelete, destroy or rotate.",
                    NULL);
        return false;
    }
    return true;
}

/* The start of every handler of one secret: scope, path, audit path and
 * authorization for perm. false after failing the request. */
static bool begin_path(sv_req_t *req, sv_perm_t perm, scope_t *s, const char **path, size_t *len)
{
    if (!resolve_scope(req, s, perm) || !path_param(req, path, len))
        return false;
    audit_path(req, s, *path, *len);
    return authorize(req, s, *path, *len, perm);
}

/* Starts a response object {"path": path, ... in plain memory. */
static void json_start(sv_buf_t *body, sv_jw_t *jw, const char *path, size_t len)
{
    sv_buf_init(body, false);
    sv_jw_init(jw, body);
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "path");
    sv_jw_str(jw, path, len);
}

/* ---- query parameters ---- */

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == 0)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* A positive integer query parameter; 0 when absent. false after failing. */
static bool query_version(sv_req_t *req, const char *name, uint64_t *out)
{
    char v[32];
    bool bad = false;
    *out = 0;
    if (!sv_req_query(req, name, v, sizeof(v), &bad)) {
        if (!bad)
            return true;
    } else if (parse_u64(v, out) && *out > 0) {
        return true;
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "%s must be a positive whole number.", name);
    sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, name);
    return false;
}

static bool query_cursor(sv_req_t *req, char *out, size_t cap, size_t *len)
{
    bool bad = false;
    *len = 0;
    if (!sv_req_query(req, "cursor", out, cap, &bad)) {
        if (!bad)
            return true;
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "The cursor is not valid.", "cursor");
        return false;
    }
    *len = strlen(out);
    if (*len == 0) { /* as the other lists: leave it out for the first page */
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "The cursor is empty: leave it out for the first page.", "cursor");
        return false;
    }
    return true;
}

static void fail_cursor(sv_req_t *req)
{
    sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                      "The cursor is not valid here: pass the next_cursor of the previous page with the same "
                      "parameters.",
                      "cursor");
}

/* ---- the per-request context of handlers that may wait ---- */

typedef struct {
    sv_req_t *req;
    sv_keyring_t *kr;
    scope_t scope;
    const char *path; /* into req->path */
    size_t path_len;

    /* the data key */
    sv_dkey_t *key;  /* pinned; released with the context */
    sv_keyrec_t rec; /* the record to load, or the new one to insert */
    bool creating;   /* a new key is being wrapped */
    bool key_new;    /* key was created and is being inserted */
    sv_err_t key_result;
    sv_unit_t key_unit;
    sv_worker_task_t task;
    unsigned rounds;

    /* per handler */
    uint64_t version; /* GET ?version */
    unsigned limit;   /* lists */
    char cursor[SV_SECRET_CURSOR_MAX + 1];
    size_t cursor_len;
    char prefix[SV_SECRET_PATH_MAX + 1];
    size_t prefix_len;
    sv_buf_t plaintext; /* PUT: secure */
    int64_t cas;
    sv_secret_put_t put;
    sv_secret_vop_t vop;
    uint64_t *versions;
    size_t n_versions;
    bool purge;
    sv_secret_config_t cfg;
    sv_buf_t custom; /* config: custom_metadata JSON */
    char **paths;    /* batch */
    size_t *path_lens;
    size_t n_paths;
    bool finished, already; /* tenant delete */
    size_t deleted;
    uint64_t rl_version; /* tenant delete: the cleared rate-limit overrides */
} sctx_t;

static void ctx_free(void *p)
{
    sctx_t *c = p;
    sv_keyring_release(c->kr, c->key);
    sv_buf_free(&c->plaintext); /* wipes */
    sv_secret_put_free(&c->put);
    sv_buf_free(&c->cfg.out_custom_metadata);
    sv_buf_free(&c->custom);
    free(c->versions);
    for (size_t i = 0; i < c->n_paths; i++)
        free(c->paths[i]);
    free(c->paths);
    free(c->path_lens);
    free(c);
}

static sctx_t *ctx_new(sv_req_t *req, const scope_t *s, const char *path, size_t len)
{
    sctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sv_req_fail_err(req, SV_ENOMEM);
        return NULL;
    }
    c->req = req;
    c->kr = req->app->keyring;
    c->scope = *s;
    c->path = path;
    c->path_len = len;
    c->cas = -1;
    sv_buf_init(&c->plaintext, true);
    sv_buf_init(&c->put.sealed, false);
    sv_buf_init(&c->cfg.out_custom_metadata, false);
    sv_buf_init(&c->custom, false);
    req->handler_data = c;
    req->handler_data_free = ctx_free;
    return c;
}

/* The start of a handler of one secret with a JSON body: begin_path for
 * perm, then the body parsed by parse into a new context (owned by the
 * request). The parsed body is freed (and wiped) before this returns. NULL
 * after failing the request. */
static sctx_t *begin_body(sv_req_t *req, sv_perm_t perm, bool (*parse)(sv_req_t *req, sctx_t *c, const sv_json_t *root))
{
    scope_t s;
    const char *path;
    size_t len;
    if (!begin_path(req, perm, &s, &path, &len))
        return NULL;
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL)
        return NULL;
    sctx_t *c = ctx_new(req, &s, path, len);
    bool ok = c != NULL && parse(req, c, sv_json_root(doc));
    sv_json_doc_free(doc); /* wipes a parsed secret value */
    return ok ? c : NULL;
}

/* ---- data keys ---- */

typedef enum { KEY_READY, KEY_NONE, KEY_SHREDDED, KEY_MISS, KEY_ERROR } key_state_t;

/* The owner's key key_id (0: its current key) while tx is open. KEY_READY:
 * *key is usable, and must be released when *pinned. KEY_MISS: rec holds the
 * record to load (after tx ends). KEY_NONE/KEY_SHREDDED: the owner has no
 * usable key. KEY_ERROR: *err. */
static key_state_t find_key(sv_keyring_t *kr, sv_dkey_t *have, const sv_owner_t *o, sv_txn_t *tx, uint32_t key_id,
                            sv_keyrec_t *rec, sv_dkey_t **key, bool *pinned, sv_err_t *err)
{
    *pinned = false;
    if (key_id != 0 && have != NULL && sv_dkey_id(have) == key_id) {
        *key = have;
        return KEY_READY;
    }
    if (key_id != 0 && (*key = sv_keyring_lookup(kr, o, key_id)) != NULL) {
        *pinned = true;
        return KEY_READY;
    }
    *err = sv_keyring_read(tx, o, rec);
    if (*err == SV_ENOTFOUND)
        return KEY_NONE;
    if (*err != SV_OK)
        return KEY_ERROR;
    if (rec->state != SV_KEYREC_ACTIVE)
        return KEY_SHREDDED;
    if (key_id != 0 && rec->key_id != key_id) {
        *err = SV_ECRYPTO; /* sealed under a key the owner no longer has */
        return KEY_ERROR;
    }
    if (have != NULL && sv_dkey_id(have) == rec->key_id &&
        sodium_memcmp(sv_dkey_uid(have), rec->uid, SV_DKEY_UID_BYTES) == 0) {
        *key = have;
        return KEY_READY;
    }
    if ((*key = sv_keyring_lookup(kr, o, rec->key_id)) != NULL) {
        *pinned = true;
        return KEY_READY;
    }
    return KEY_MISS;
}

static void fail_key(sv_req_t *req, sv_err_t err)
{
    if (err == SV_ENOMEM)
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "The data key cache is full; try again.", NULL);
    else if (err == SV_ECRYPTO)
        sv_req_fail(req, SV_E_INTERNAL, "The data key of this tenant cannot be unwrapped.", NULL);
    else
        sv_req_fail(req, SV_E_KMS_UNAVAILABLE, NULL, NULL);
}

static void rerun(sctx_t *c)
{
    c->req->route->handler(c->req);
}

static void insert_new_key(sctx_t *c);

/* Back on the worker after the KMS answered a load or a create. */
static void key_ready_task(sv_worker_task_t *t)
{
    sctx_t *c = H2O_STRUCT_FROM_MEMBER(sctx_t, task, t);
    if (c->key_result != SV_OK) {
        fail_key(c->req, c->key_result);
        return;
    }
    if (c->creating)
        insert_new_key(c);
    else
        rerun(c);
}

/* KMS thread: a load or create finished (later than the call returned). */
static void key_ready(void *arg, sv_err_t result, sv_dkey_t *key)
{
    sctx_t *c = arg;
    c->key_result = result;
    c->key = key;
    c->task.fn = key_ready_task;
    sv_worker_post(c->req->worker, &c->task);
}

static bool too_many_rounds(sctx_t *c)
{
    if (++c->rounds <= MAX_KEY_ROUNDS)
        return false;
    sv_req_fail(c->req, SV_E_SERVICE_UNAVAILABLE, "The data key kept changing during this request; try again.", NULL);
    return true;
}

/* The unit that inserts a new data key (insert-if-absent: the writer decides). */
static sv_err_t key_unit_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    sctx_t *c = u->arg;
    return sv_keyring_apply_use(tx, &c->scope.owner, NULL, &c->rec);
}

static void key_inserted_task(sv_worker_task_t *t)
{
    sctx_t *c = H2O_STRUCT_FROM_MEMBER(sctx_t, task, t);
    c->key_new = false;
    switch (c->key_result) {
    case SV_OK:
        c->key = sv_keyring_install(c->kr, c->key);
        rerun(c);
        break;
    case SV_ECONFLICT: /* another first write won: use its key */
        sv_keyring_release(c->kr, c->key);
        c->key = NULL;
        rerun(c);
        break;
    case SV_EDELETED:
        sv_req_fail(c->req, SV_E_CONFLICT, SV_TENANT_DELETING_MSG, NULL);
        break;
    default:
        sv_req_fail_err(c->req, c->key_result);
        break;
    }
}

/* Writer thread: the key unit committed (or not). */
static void key_unit_complete(sv_unit_t *u)
{
    sctx_t *c = u->arg;
    c->key_result = u->result;
    c->task.fn = key_inserted_task;
    sv_worker_post(c->req->worker, &c->task);
}

static void insert_new_key(sctx_t *c)
{
    c->creating = false;
    c->key_new = true;
    memset(&c->key_unit, 0, sizeof(c->key_unit));
    c->key_unit.apply = key_unit_apply;
    c->key_unit.complete = key_unit_complete;
    c->key_unit.arg = c;
    if (sv_writer_submit(c->req->app->writer, &c->key_unit) != SV_OK)
        sv_req_fail(c->req, SV_E_SERVICE_UNAVAILABLE, "The server is shutting down.", NULL);
}

/* Loads c->rec (read after epoch), or with create makes the owner's first
 * key and inserts it; then the handler runs again with c->key. The keyring
 * answers at once for a key it holds, or later through key_ready. */
static void start_key(sctx_t *c, uint64_t epoch, bool create)
{
    if (too_many_rounds(c))
        return;
    if (!create) {
        sv_keyring_release(c->kr, c->key);
        c->key = NULL;
    }
    sv_dkey_t *k;
    c->creating = create;
    sv_err_t err = create ? sv_keyring_create(c->kr, &c->scope.owner, epoch, &c->rec, &k, key_ready, c)
                          : sv_keyring_load(c->kr, &c->scope.owner, &c->rec, epoch, &k, key_ready, c);
    if (err == SV_EAGAIN)
        return;
    if (err != SV_OK) {
        fail_key(c->req, err);
        return;
    }
    c->key = k;
    if (create)
        insert_new_key(c);
    else
        rerun(c);
}

/* For writes: true when c->key is the owner's stored key; otherwise the key is
 * being loaded or created (the handler runs again) or the request failed. */
static bool write_key_ready(sctx_t *c)
{
    if (c->key != NULL && !c->key_new)
        return true;
    sv_req_t *req = c->req;
    uint64_t epoch = sv_keyring_epoch(c->kr);
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return false;
    sv_err_t err = SV_OK;
    sv_dkey_t *k = NULL;
    bool pinned;
    key_state_t ks = find_key(c->kr, NULL, &c->scope.owner, tx, 0, &c->rec, &k, &pinned, &err);
    sv_store_read_end(sv_req_reader(req));
    switch (ks) {
    case KEY_READY:
        c->key = k;
        return true; /* pinned: the context releases it */
    case KEY_NONE:
        start_key(c, epoch, true);
        return false;
    case KEY_MISS:
        start_key(c, epoch, false);
        return false;
    case KEY_SHREDDED:
        sv_req_fail(req, SV_E_CONFLICT, SV_TENANT_DELETING_MSG, NULL);
        return false;
    default:
        sv_req_fail_err(req, err);
        return false;
    }
}

/* After find_key for a read: true when the key is ready (tx still open).
 * Otherwise ends the read transaction and starts the load (the handler runs
 * again), or answers for an owner without a usable key (on_none; NULL: 404),
 * or fails. */
static bool read_key_ready(sv_req_t *req, sctx_t *c, key_state_t ks, sv_err_t err, uint64_t epoch,
                           void (*on_none)(sv_req_t *req, sctx_t *c))
{
    if (ks == KEY_READY)
        return true;
    sv_store_read_end(sv_req_reader(req));
    if (ks == KEY_MISS)
        start_key(c, epoch, false);
    else if (ks != KEY_NONE && ks != KEY_SHREDDED)
        fail_key(req, err);
    else if (on_none != NULL)
        on_none(req, c);
    else
        sv_req_fail(req, SV_E_NOT_FOUND, NULL, NULL);
    return false;
}

/* ---- GET /v1/secrets/{path} ---- */

/* Ends the read snapshot that find_key looked in, and releases key when it
 * pinned it. */
static void end_read_key(sv_req_t *req, sv_keyring_t *kr, sv_dkey_t *key, bool pinned)
{
    sv_store_read_end(sv_req_reader(req));
    if (pinned)
        sv_keyring_release(kr, key);
}

/* Version want (0: the latest) of a path, or why not. One lookup: a pruned
 * or never written version has no record. */
static sv_err_t find_version(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, uint64_t want,
                             uint64_t *v, sv_secret_version_t *ver)
{
    sv_err_t err;
    *v = want;
    if (want == 0)
        err = sv_secret_latest_get(tx, o, path, len, v, ver);
    else
        err = sv_secret_version_get(tx, o, path, len, want, ver);
    if (err != SV_OK)
        return err;
    if (ver->state == SV_VSTATE_DELETED)
        return SV_EDELETED;
    if (ver->state == SV_VSTATE_DESTROYED)
        return SV_EDESTROYED;
    return SV_OK;
}

static void fail_open(sv_req_t *req, sv_err_t err, const char *path, size_t len)
{
    if (err == SV_ECRYPTO) {
        sv_log(SV_LOG_ERROR, req->request_id, "a version of %.*s does not open with its data key (damaged or moved)",
               (int)len, path);
        sv_req_fail(req, SV_E_INTERNAL, "The secret could not be decrypted.", NULL);
    } else {
        sv_req_fail_err(req, err);
    }
}

static void get_secret(sv_req_t *req)
{
    sctx_t *c = req->handler_data;
    scope_t local;
    const scope_t *s = &local;
    const char *path;
    size_t len;
    uint64_t want;
    if (c == NULL) {
        if (!begin_path(req, SV_PERM_READ, &local, &path, &len) || !query_version(req, "version", &want))
            return;
    } else {
        s = &c->scope;
        path = c->path;
        len = c->path_len;
        want = c->version;
    }
    sv_keyring_t *kr = req->app->keyring;
    uint64_t epoch = sv_keyring_epoch(kr);
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return;
    sv_err_t err = SV_OK;
    uint64_t v;
    sv_secret_version_t ver;
    if ((err = find_version(tx, &s->owner, path, len, want, &v, &ver)) != SV_OK) {
        sv_store_read_end(sv_req_reader(req));
        sv_req_fail_err(req, err);
        return;
    }
    sv_dkey_t *key;
    bool pinned;
    sv_keyrec_t rec;
    switch (find_key(kr, c != NULL ? c->key : NULL, &s->owner, tx, ver.key_id, &rec, &key, &pinned, &err)) {
    case KEY_READY:
        break;
    case KEY_MISS:
        sv_store_read_end(sv_req_reader(req));
        if (c == NULL && (c = ctx_new(req, s, path, len)) == NULL)
            return;
        c->version = want;
        c->rec = rec;
        start_key(c, epoch, false);
        return;
    case KEY_NONE:
    case KEY_SHREDDED:
        sv_store_read_end(sv_req_reader(req));
        sv_req_fail(req, SV_E_NOT_FOUND, NULL, NULL);
        return;
    default:
        sv_store_read_end(sv_req_reader(req));
        fail_open(req, err, path, len);
        return;
    }
    sv_buf_t body;
    sv_buf_init(&body, true);
    sv_buf_reserve(&body, 160 + 6 * len + ver.sealed.len + 6 * ver.created_by.len);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    err = sv_secret_read_json(&jw, &s->owner, path, len, v, &ver, key);
    end_read_key(req, kr, key, pinned);
    if (err != SV_OK) {
        sv_buf_free(&body); /* wipes */
        fail_open(req, err, path, len);
        return;
    }
    sv_req_reply_secure(req, 200, &body);
}

/* ---- PUT /v1/secrets/{path} ---- */

/* value, metadata and cas; the plaintext goes to c->plaintext (secure). */
static bool parse_put(sv_req_t *req, sctx_t *c, const sv_json_t *root)
{
    static const char *const members[] = {"value", "metadata", "cas", NULL};
    if (!sv_req_json_known_members(req, root, members, "Unknown member: the body has value, metadata and cas.", NULL))
        return false;
    const sv_json_t *cas = sv_json_get(root, "cas");
    if (cas != NULL && cas->type != SV_JSON_NULL) {
        if (cas->type != SV_JSON_NUMBER || !cas->u.num.is_int || cas->u.num.i < 0) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "cas must be a whole number >= 0.", "cas");
            return false;
        }
        c->cas = cas->u.num.i;
    }
    const sv_json_t *md = sv_json_get(root, "metadata");
    char field[200];
    if (sv_secret_check_metadata(md, "metadata", field, sizeof(field)) != SV_OK) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "metadata must be an object of at most 64 string values (keys up to 128 bytes, values up "
                          "to 1024 bytes).",
                          field);
        return false;
    }
    const sv_json_t *value = sv_json_get(root, "value");
    size_t max = req->app->cfg->max_secret_bytes;
    /* the compact plaintext is no longer than the body: one allocation */
    sv_buf_reserve(&c->plaintext, (req->h2o != NULL ? req->h2o->entity.len : 0) + 64);
    sv_err_t err = sv_secret_plaintext(&c->plaintext, value, md, max);
    if (err == SV_EINVAL) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "value is required: a string or a JSON object.", "value");
        return false;
    }
    if (err == SV_ETOOBIG) {
        char details[64];
        snprintf(details, sizeof(details), "{\"limit_bytes\":%zu}", max);
        sv_req_fail(req, SV_E_SECRET_TOO_LARGE, NULL, details);
        return false;
    }
    if (err != SV_OK) {
        sv_req_fail_err(req, SV_ENOMEM);
        return false;
    }
    return true;
}

static sv_err_t put_apply(sv_wtxn_t *tx, void *arg)
{
    sctx_t *c = arg;
    return sv_secret_put_apply(tx, &c->put);
}

static sv_api_error_t put_map_error(sv_err_t err, void *arg)
{
    sctx_t *c = arg;
    if (err == SV_ECONFLICT)
        return c->put.key_changed ? SV_E_CONFLICT : SV_E_VERSION_CONFLICT;
    if (err == SV_EDELETED)
        return SV_E_CONFLICT;
    return sv_api_error_from_err(err);
}

static int put_status(void *arg)
{
    sctx_t *c = arg;
    return c->put.created ? 201 : 200;
}

static void put_done(sv_req_t *req, sv_err_t result, void *arg)
{
    sctx_t *c = arg;
    sv_buf_free(&c->plaintext); /* wiped: not needed any more */
    if (result == SV_ECONFLICT && !c->put.key_changed) {
        sv_req_fail(req, SV_E_VERSION_CONFLICT, NULL, NULL);
    } else if (result == SV_ECONFLICT || result == SV_EDELETED) {
        sv_req_fail(req, SV_E_CONFLICT, "This tenant was deleted while the write was in flight; try again.", NULL);
    } else if (result != SV_OK) {
        sv_req_fail_err(req, result);
    } else {
        sv_buf_t body;
        sv_jw_t jw;
        json_start(&body, &jw, c->path, c->path_len);
        sv_jw_key(&jw, "version");
        sv_jw_uint(&jw, c->put.version);
        sv_jw_key(&jw, "created_at");
        sv_jw_time(&jw, c->put.created_us / 1000000);
        sv_jw_obj_end(&jw);
        sv_req_reply(req, c->put.created ? 201 : 200, &body);
    }
}

static void put_secret(sv_req_t *req)
{
    sctx_t *c = req->handler_data;
    if (c == NULL && (c = begin_body(req, SV_PERM_WRITE, parse_put)) == NULL)
        return;
    if (!write_key_ready(c))
        return;
    /* seal on this worker for the version expected now; apply seals again
     * only if another write takes that number first */
    sv_secret_put_t *p = &c->put;
    p->owner = &c->scope.owner;
    p->path = c->path;
    p->path_len = c->path_len;
    p->plaintext = c->plaintext.base;
    p->plaintext_len = c->plaintext.len;
    p->key = c->key;
    p->cas = c->cas;
    p->created_by = req->principal.identity_id;
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(sv_req_reader(req), &tx);
    if (err == SV_OK) {
        err = sv_secret_put_prepare(tx, p);
        sv_store_read_end(sv_req_reader(req));
    }
    if (err != SV_OK) {
        sv_req_fail_err(req, err);
        return;
    }
    sv_req_op_t op = {
        .apply = put_apply, .arg = c, .map_error = put_map_error, .success_status = put_status, .done = put_done};
    sv_req_submit(req, &op);
}

/* ---- DELETE /v1/secrets/{path}, POST .../undelete, POST .../destroy ---- */

static sv_err_t vop_apply(sv_wtxn_t *tx, void *arg)
{
    sctx_t *c = arg;
    if (c->purge)
        return sv_secret_purge_apply(tx, &c->scope.owner, c->path, c->path_len);
    return sv_secret_vop_apply(tx, &c->vop);
}

static int no_content_status(void *arg)
{
    return 204;
}

static void vop_done(sv_req_t *req, sv_err_t result, void *arg)
{
    if (result != SV_OK)
        sv_req_fail_err(req, result);
    else
        sv_req_reply(req, 204, NULL);
}

static bool add_version(sv_req_t *req, sctx_t *c, uint64_t v)
{
    if (v == 0 || c->n_versions == VERSIONS_PARAM_MAX) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "versions must be 1 to 1000 positive whole numbers.", "versions");
        return false;
    }
    if (c->versions == NULL && (c->versions = malloc(VERSIONS_PARAM_MAX * sizeof(uint64_t))) == NULL) {
        sv_req_fail_err(req, SV_ENOMEM);
        return false;
    }
    c->versions[c->n_versions++] = v;
    return true;
}

/* ?versions=1,2,3 */
static bool parse_versions_query(sv_req_t *req, sctx_t *c, const char *list)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char num[24];
        uint64_t v = 0;
        if (n == 0 || n >= sizeof(num)) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "versions must be a comma-separated list of version numbers.",
                              "versions");
            return false;
        }
        memcpy(num, p, n);
        num[n] = 0;
        if (!parse_u64(num, &v)) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "versions must be a comma-separated list of version numbers.",
                              "versions");
            return false;
        }
        if (!add_version(req, c, v))
            return false;
        if (comma == NULL)
            return true;
        p = comma + 1;
    }
}

/* Submits vop on versions (c->n_versions of them; NULL: the latest, for a
 * delete) or, when c->purge, the purge. */
static void submit_vop(sv_req_t *req, sctx_t *c, sv_vop_t vop, const uint64_t *versions)
{
    c->vop = (sv_secret_vop_t){.owner = &c->scope.owner,
                               .path = c->path,
                               .path_len = c->path_len,
                               .op = vop,
                               .versions = versions,
                               .n_versions = c->n_versions};
    sv_req_op_t op = {
        .apply = vop_apply, .arg = c, .success_status = no_content_status, .done = vop_done, .owner = &c->scope.owner};
    sv_req_submit(req, &op);
}

static void delete_secret(sv_req_t *req)
{
    scope_t s;
    const char *path;
    size_t len;
    if (!begin_path(req, SV_PERM_DELETE, &s, &path, &len))
        return;
    char purge[8], versions[1000 * 21]; /* 1000 versions of up to 20 digits, comma-separated */
    bool bad_purge = false, bad_versions = false;
    bool has_purge = sv_req_query(req, "purge", purge, sizeof(purge), &bad_purge);
    bool has_versions = sv_req_query(req, "versions", versions, sizeof(versions), &bad_versions);
    if (bad_purge || (has_purge && strcmp(purge, "true") != 0 && strcmp(purge, "false") != 0)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "purge must be true or false.", "purge");
        return;
    }
    bool do_purge = has_purge && strcmp(purge, "true") == 0;
    if (bad_versions || (do_purge && has_versions)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          bad_versions ? "versions is too long." : "purge=true removes every version: drop versions.",
                          "versions");
        return;
    }
    sctx_t *c = ctx_new(req, &s, path, len);
    if (c == NULL || (has_versions && !parse_versions_query(req, c, versions)))
        return;
    c->purge = do_purge;
    submit_vop(req, c, SV_VOP_DELETE, has_versions ? c->versions : NULL);
}

/* The body of POST .../undelete and .../destroy: {"versions": [..]} */
static bool parse_versions_body(sv_req_t *req, sctx_t *c, const sv_json_t *root)
{
    static const char *const members[] = {"versions", NULL};
    if (!sv_req_json_known_members(req, root, members, "Unknown member: the body has versions.", NULL))
        return false;
    const sv_json_t *vs = sv_json_get(root, "versions");
    if (vs == NULL || vs->type != SV_JSON_ARRAY || vs->u.kids.n == 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "versions must be an array of 1 to 1000 version numbers.",
                          "versions");
        return false;
    }
    for (const sv_json_t *v = vs->u.kids.first; v != NULL; v = v->next) {
        if (v->type != SV_JSON_NUMBER || !v->u.num.is_int || v->u.num.i < 1) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "versions must be an array of 1 to 1000 version numbers.",
                              "versions");
            return false;
        }
        if (!add_version(req, c, (uint64_t)v->u.num.i))
            return false;
    }
    return true;
}

static void post_versions_op(sv_req_t *req, sv_vop_t vop, sv_perm_t perm)
{
    sctx_t *c = begin_body(req, perm, parse_versions_body);
    if (c != NULL)
        submit_vop(req, c, vop, c->versions);
}

static void post_undelete(sv_req_t *req)
{
    post_versions_op(req, SV_VOP_UNDELETE, SV_PERM_WRITE);
}

static void post_destroy(sv_req_t *req)
{
    post_versions_op(req, SV_VOP_DESTROY, SV_PERM_DELETE);
}

/* ---- PATCH /v1/secrets/{path}/config ---- */

static sv_err_t config_apply(sv_wtxn_t *tx, void *arg)
{
    sctx_t *c = arg;
    return sv_secret_config_apply(tx, &c->cfg);
}

static void config_done(sv_req_t *req, sv_err_t result, void *arg)
{
    sctx_t *c = arg;
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    sv_secret_head_t h = {.max_versions = c->cfg.out_max_versions,
                          .rotation_interval_ms = c->cfg.out_interval_ms,
                          .rotation_notify_ms = c->cfg.out_notify_ms,
                          .custom_metadata = SV_BYTES(c->cfg.out_custom_metadata.base, c->cfg.out_custom_metadata.len)};
    sv_buf_t body;
    sv_jw_t jw;
    json_start(&body, &jw, c->path, c->path_len);
    sv_jw_key(&jw, "current_version");
    sv_jw_uint(&jw, c->cfg.out_current);
    sv_secret_config_json(&jw, &h);
    sv_jw_key(&jw, "pruned_versions");
    sv_jw_uint(&jw, c->cfg.pruned);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, 200, &body);
}

/* A duration member: "30d" or whole seconds. */
static bool json_duration(const sv_json_t *v, int64_t *ms)
{
    if (v->type == SV_JSON_STRING)
        return sv_duration_parse(v->u.str.s, v->u.str.len, ms) == SV_OK;
    if (v->type == SV_JSON_NUMBER && v->u.num.is_int && v->u.num.i >= 0 && v->u.num.i <= SV_DURATION_MAX_MS / 1000) {
        *ms = v->u.num.i * 1000;
        return true;
    }
    return false;
}

static bool parse_rotation(sv_req_t *req, sctx_t *c, const sv_json_t *rot)
{
    c->cfg.set_rotation = true;
    if (rot->type == SV_JSON_NULL)
        return true; /* clears */
    if (rot->type != SV_JSON_OBJECT) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "rotation must be an object or null.", "rotation");
        return false;
    }
    static const char *const members[] = {"interval", "notify_before", NULL};
    if (!sv_req_json_known_members(req, rot, members, "Unknown member: rotation has interval and notify_before.",
                                   "rotation"))
        return false;
    const sv_json_t *iv = sv_json_get(rot, "interval"), *nb = sv_json_get(rot, "notify_before");
    if (iv == NULL || !json_duration(iv, &c->cfg.rotation_interval_ms) || c->cfg.rotation_interval_ms < 1000) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "rotation.interval must be a duration of 1s to 36500d (\"30d\", \"12h\", or seconds).",
                          "rotation.interval");
        return false;
    }
    c->cfg.rotation_notify_ms = 0;
    if (nb != NULL && nb->type != SV_JSON_NULL &&
        (!json_duration(nb, &c->cfg.rotation_notify_ms) || c->cfg.rotation_notify_ms >= c->cfg.rotation_interval_ms)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "rotation.notify_before must be a duration shorter than rotation.interval.",
                          "rotation.notify_before");
        return false;
    }
    return true;
}

static bool parse_config(sv_req_t *req, sctx_t *c, const sv_json_t *root)
{
    static const char *const members[] = {"max_versions", "rotation", "custom_metadata", NULL};
    if (!sv_req_json_known_members(req, root, members,
                                   "Unknown member: the body has max_versions, rotation and custom_metadata.", NULL))
        return false;
    const sv_json_t *mv = sv_json_get(root, "max_versions");
    if (mv != NULL) {
        if (mv->type != SV_JSON_NUMBER || !mv->u.num.is_int || mv->u.num.i < 0 ||
            mv->u.num.i > SV_SECRET_MAX_VERSIONS_LIMIT) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                              "max_versions must be a whole number from 0 (keep all) to 100000.", "max_versions");
            return false;
        }
        c->cfg.set_max_versions = true;
        c->cfg.max_versions = (uint32_t)mv->u.num.i;
    }
    const sv_json_t *rot = sv_json_get(root, "rotation");
    if (rot != NULL && !parse_rotation(req, c, rot))
        return false;
    const sv_json_t *cm = sv_json_get(root, "custom_metadata");
    if (cm != NULL) {
        char field[200];
        if (sv_secret_check_metadata(cm, "custom_metadata", field, sizeof(field)) != SV_OK) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                              "custom_metadata must be an object of at most 64 string values (keys up to 128 bytes, "
                              "values up to 1024 bytes), or null.",
                              field);
            return false;
        }
        c->cfg.set_custom_metadata = true;
        if (cm->type == SV_JSON_OBJECT && cm->u.kids.n > 0)
            sv_json_serialize(cm, &c->custom);
        if (c->custom.failed) {
            sv_req_fail_err(req, SV_ENOMEM);
            return false;
        }
        c->cfg.custom_metadata = (const char *)c->custom.base;
        c->cfg.custom_metadata_len = c->custom.len;
    }
    return true;
}

static void patch_config(sv_req_t *req)
{
    sctx_t *c = begin_body(req, SV_PERM_WRITE, parse_config);
    if (c == NULL)
        return;
    c->cfg.owner = &c->scope.owner;
    c->cfg.path = c->path;
    c->cfg.path_len = c->path_len;
    sv_req_op_t op = {.apply = config_apply, .arg = c, .done = config_done, .owner = &c->scope.owner};
    sv_req_submit(req, &op);
}

/* ---- GET /v1/secrets/{path}/versions ---- */

static void get_versions(sv_req_t *req)
{
    sctx_t *c = req->handler_data;
    if (c == NULL) {
        scope_t s;
        const char *path;
        size_t len;
        if (!begin_path(req, SV_PERM_READ, &s, &path, &len))
            return;
        unsigned limit;
        if (!sv_req_query_limit(req, LIST_DEFAULT_LIMIT, &limit) || (c = ctx_new(req, &s, path, len)) == NULL)
            return;
        c->limit = limit;
        if (!query_cursor(req, c->cursor, sizeof(c->cursor), &c->cursor_len))
            return;
    }
    uint64_t epoch = sv_keyring_epoch(c->kr);
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return;
    sv_err_t err = sv_keyring_owner_writable(tx, &c->scope.owner); /* being deleted: reads as empty */
    sv_secret_head_t h;
    if (err == SV_OK)
        err = sv_secret_head_get(tx, &c->scope.owner, c->path, c->path_len, &h);
    if (err != SV_OK) {
        sv_store_read_end(sv_req_reader(req));
        sv_req_fail_err(req, err == SV_EGONE ? SV_ENOTFOUND : err);
        return;
    }
    /* a data key is needed only to open or make a cursor */
    sv_dkey_t *key = NULL;
    bool pinned = false;
    if ((c->cursor_len > 0 || h.current - h.oldest + 1 > c->limit) &&
        !read_key_ready(req, c, find_key(c->kr, c->key, &c->scope.owner, tx, 0, &c->rec, &key, &pinned, &err), err,
                        epoch, NULL))
        return;
    uint64_t start = h.current;
    if (c->cursor_len > 0) {
        uint8_t payload[8];
        size_t plen;
        if (sv_secret_cursor_open(payload, sizeof(payload), &plen, c->cursor, c->cursor_len, key, "versions",
                                  &c->scope.owner, c->path, c->path_len) != SV_OK ||
            plen != 8) {
            end_read_key(req, c->kr, key, pinned);
            fail_cursor(req);
            return;
        }
        start = sv_get_be64(payload);
        if (start > h.current)
            start = h.current;
    }
    sv_buf_t body;
    sv_jw_t jw;
    json_start(&body, &jw, c->path, c->path_len);
    sv_jw_key(&jw, "current_version");
    sv_jw_uint(&jw, h.current);
    sv_jw_key(&jw, "oldest_version");
    sv_jw_uint(&jw, h.oldest);
    sv_jw_key(&jw, "created_at");
    sv_jw_time(&jw, h.created_us / 1000000);
    sv_jw_key(&jw, "updated_at");
    sv_jw_time(&jw, h.updated_us / 1000000);
    sv_secret_config_json(&jw, &h);
    sv_jw_key(&jw, "items");
    sv_jw_arr_begin(&jw);
    uint64_t v = start;
    unsigned n = 0;
    for (; v >= h.oldest && v > 0 && n < c->limit; v--) {
        sv_secret_version_t ver;
        err = sv_secret_version_get(tx, &c->scope.owner, c->path, c->path_len, v, &ver);
        if (err == SV_ENOTFOUND)
            continue;
        if (err != SV_OK)
            break;
        sv_secret_version_json(&jw, v, &ver);
        n++;
    }
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "next_cursor");
    char cursor[SV_SECRET_CURSOR_MAX + 1];
    if (err == SV_OK && v >= h.oldest && v > 0 && key != NULL) {
        uint8_t payload[8];
        sv_put_be64(payload, v);
        err = sv_secret_cursor_make(cursor, sizeof(cursor), key, "versions", &c->scope.owner, c->path, c->path_len,
                                    payload, sizeof(payload));
        sv_jw_cstr(&jw, cursor);
    } else {
        sv_jw_null(&jw);
    }
    sv_jw_obj_end(&jw);
    end_read_key(req, c->kr, key, pinned);
    if (err != SV_OK && err != SV_ENOTFOUND) {
        sv_buf_free(&body);
        sv_req_fail_err(req, err);
        return;
    }
    sv_req_reply(req, 200, &body);
}

/* ---- GET /v1/secrets?prefix=&limit=&cursor= ---- */

/* An owner with nothing stored, or being deleted: nothing to list. */
static void list_nothing(sv_req_t *req, sctx_t *c)
{
    if (c->cursor_len > 0) {
        fail_cursor(req);
        return;
    }
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_buf_puts(&body, "{\"items\":[],\"next_cursor\":null}");
    sv_req_reply(req, 200, &body);
}

static void list_secrets(sv_req_t *req)
{
    sctx_t *c = req->handler_data;
    if (c == NULL) {
        scope_t s;
        if (!resolve_scope(req, &s, SV_PERM_LIST) || (c = ctx_new(req, &s, "", 0)) == NULL)
            return;
        bool bad = false;
        if (!sv_req_query(req, "prefix", c->prefix, sizeof(c->prefix), &bad))
            c->prefix[0] = 0;
        c->prefix_len = strlen(c->prefix);
        if (bad || !sv_secret_prefix_valid(c->prefix, c->prefix_len)) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "prefix must be up to 512 bytes of [A-Za-z0-9._/-].",
                              "prefix");
            return;
        }
        audit_path(req, &s, c->prefix, c->prefix_len);
        if (!sv_req_query_limit(req, LIST_DEFAULT_LIMIT, &c->limit) ||
            !query_cursor(req, c->cursor, sizeof(c->cursor), &c->cursor_len))
            return;
    }
    uint64_t epoch = sv_keyring_epoch(c->kr);
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return;
    sv_err_t err = SV_OK;
    sv_dkey_t *key = NULL;
    bool pinned = false;
    if (!read_key_ready(req, c, find_key(c->kr, c->key, &c->scope.owner, tx, 0, &c->rec, &key, &pinned, &err), err,
                        epoch, list_nothing))
        return;
    char after[SV_SECRET_PATH_MAX + 1];
    size_t after_len = 0;
    if (c->cursor_len > 0 && (sv_secret_cursor_open(after, sizeof(after) - 1, &after_len, c->cursor, c->cursor_len, key,
                                                    "list", &c->scope.owner, c->prefix, c->prefix_len) != SV_OK ||
                              after_len < c->prefix_len || memcmp(after, c->prefix, c->prefix_len) != 0)) {
        end_read_key(req, c->kr, key, pinned);
        fail_cursor(req);
        return;
    }
    sv_secret_iter_t it;
    err = sv_secret_iter_open(&it, tx, &c->scope.owner, c->prefix, c->prefix_len, c->cursor_len > 0 ? after : NULL,
                              after_len);
    sv_buf_t body;
    sv_jw_t jw;
    sv_http_page_begin(&body, &jw);
    /* names the caller may not list are skipped; the scan is bounded so a
     * page over many hidden names still returns (with a cursor) */
    unsigned n = 0, scanned = 0, budget = c->limit * 4 + 100;
    char last[SV_SECRET_PATH_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    sv_bytes_t p;
    while (err == SV_OK && (err = sv_secret_iter_next(&it, &p)) == SV_OK) {
        if (n == c->limit || scanned == budget) {
            more = true;
            break;
        }
        scanned++;
        memcpy(last, p.base, p.len);
        last_len = p.len;
        sv_api_error_t e;
        if (!probe(req, &c->scope, (const char *)p.base, p.len, SV_PERM_LIST, &e))
            continue;
        sv_jw_str(&jw, (const char *)p.base, p.len);
        n++;
    }
    sv_secret_iter_close(&it);
    if (err == SV_ENOTFOUND)
        err = SV_OK;
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "next_cursor");
    char cursor[SV_SECRET_CURSOR_MAX + 1];
    if (err == SV_OK && more) {
        err = sv_secret_cursor_make(cursor, sizeof(cursor), key, "list", &c->scope.owner, c->prefix, c->prefix_len,
                                    last, last_len);
        sv_jw_cstr(&jw, cursor);
    } else {
        sv_jw_null(&jw);
    }
    sv_jw_obj_end(&jw);
    end_read_key(req, c->kr, key, pinned);
    if (err != SV_OK) {
        sv_buf_free(&body);
        sv_req_fail_err(req, err);
        return;
    }
    sv_req_reply(req, 200, &body);
}

/* ---- POST /v1/secrets/batch ---- */

/* The audit entry of a batch read names the secret paths of the request,
 * comma-separated and cut at the entry's size: those it read first (read[i]
 * when read is not NULL), then the others; paths that are no secret path
 * name nothing and are left out. */
static void batch_audit_path(sv_req_t *req, const sctx_t *c, const bool *read)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    if (c->scope.partner)
        sv_buf_printf(&b, "%s/", c->scope.owner.id);
    size_t start = b.len;
    for (int pass = read != NULL ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; i < c->n_paths; i++) {
            if ((read != NULL && read[i] != (pass == 0)) || !sv_secret_path_usable(c->paths[i], c->path_lens[i]))
                continue;
            if (b.len > start)
                sv_buf_putc(&b, ',');
            sv_buf_append(&b, c->paths[i], c->path_lens[i]);
        }
    }
    if (!b.failed && b.len > start)
        sv_req_audit_path(req, (const char *)b.base, b.len);
    sv_buf_free(&b);
}

static bool parse_batch(sv_req_t *req, sctx_t *c)
{
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL)
        return false;
    bool ok = false;
    const sv_json_t *root = sv_json_root(doc);
    const sv_json_t *paths = sv_json_get(root, "paths");
    static const char *const members[] = {"paths", NULL};
    if (!sv_req_json_known_members(req, root, members, "Unknown member: the body has paths.", NULL))
        goto free_doc;
    if (paths == NULL || paths->type != SV_JSON_ARRAY || paths->u.kids.n > BATCH_MAX_PATHS) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "paths must be an array of up to 100 secret paths.", "paths");
        goto free_doc;
    }
    size_t n = paths->u.kids.n;
    c->paths = calloc(n ? n : 1, sizeof(char *));
    c->path_lens = calloc(n ? n : 1, sizeof(size_t));
    if (c->paths == NULL || c->path_lens == NULL) {
        sv_req_fail_err(req, SV_ENOMEM);
        goto free_doc;
    }
    for (const sv_json_t *p = paths->u.kids.first; p != NULL; p = p->next) {
        if (p->type != SV_JSON_STRING) {
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "paths must be an array of strings.", "paths");
            goto free_doc;
        }
        size_t len = p->u.str.len > SV_SECRET_PATH_MAX + 1 ? SV_SECRET_PATH_MAX + 1 : p->u.str.len;
        bool repeated = false; /* a path given twice is read and answered once (an over-long one, kept cut
                                  short, is answered each time) */
        for (size_t i = 0; i < c->n_paths && !repeated && len <= SV_SECRET_PATH_MAX; i++)
            repeated = c->path_lens[i] == len && memcmp(c->paths[i], p->u.str.s, len) == 0;
        if (repeated)
            continue;
        if ((c->paths[c->n_paths] = malloc(len + 1)) == NULL) {
            sv_req_fail_err(req, SV_ENOMEM);
            goto free_doc;
        }
        memcpy(c->paths[c->n_paths], p->u.str.s, len);
        c->paths[c->n_paths][len] = 0;
        c->path_lens[c->n_paths++] = len;
    }
    batch_audit_path(req, c, NULL); /* until the batch is read */
    ok = true;
free_doc:
    sv_json_doc_free(doc);
    return ok;
}

static void batch_error(sv_jw_t *jw, const char *path, size_t len, sv_api_error_t e)
{
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "path");
    sv_jw_str(jw, path, len);
    sv_jw_key(jw, "code");
    sv_jw_cstr(jw, sv_api_error_info(e)->code);
    sv_jw_obj_end(jw);
}

static void post_batch(sv_req_t *req)
{
    sctx_t *c = req->handler_data;
    if (c == NULL) {
        scope_t s;
        if (!resolve_scope(req, &s, SV_PERM_READ) || (c = ctx_new(req, &s, "", 0)) == NULL || !parse_batch(req, c))
            return;
    }
    uint64_t epoch = sv_keyring_epoch(c->kr);
    sv_txn_t *tx;
    if (!sv_req_read_begin(req, &tx))
        return;
    sv_err_t err = SV_OK;
    sv_buf_t body, errors;
    sv_buf_init(&body, true); /* holds plaintext */
    sv_buf_init(&errors, false);
    sv_jw_t jw, ejw;
    sv_jw_init(&jw, &body);
    sv_jw_init(&ejw, &errors);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "secrets");
    sv_jw_arr_begin(&jw);
    sv_jw_arr_begin(&ejw);
    bool read[BATCH_MAX_PATHS] = {false};
    size_t batch_max = BATCH_MAX_SECRETS_OF_MAX_SIZE * req->app->cfg->max_secret_bytes;
    for (size_t i = 0; i < c->n_paths; i++) {
        const char *path = c->paths[i];
        size_t len = c->path_lens[i];
        if (!sv_secret_path_usable(path, len)) {
            batch_error(&ejw, path, len, SV_E_INVALID_PATH);
            continue;
        }
        sv_api_error_t e;
        if (!probe(req, &c->scope, path, len, SV_PERM_READ, &e)) {
            batch_error(&ejw, path, len, e);
            continue;
        }
        uint64_t v;
        sv_secret_version_t ver;
        if ((err = find_version(tx, &c->scope.owner, path, len, 0, &v, &ver)) != SV_OK) {
            batch_error(&ejw, path, len, sv_api_error_from_err(err));
            continue;
        }
        sv_dkey_t *key;
        bool pinned;
        key_state_t ks = find_key(c->kr, c->key, &c->scope.owner, tx, ver.key_id, &c->rec, &key, &pinned, &err);
        if (ks == KEY_MISS) {
            /* load the key, then start the batch again */
            sv_store_read_end(sv_req_reader(req));
            sv_buf_free(&body);
            sv_buf_free(&errors);
            start_key(c, epoch, false);
            return;
        }
        if (ks != KEY_READY) {
            batch_error(&ejw, path, len, ks == KEY_ERROR ? SV_E_INTERNAL : SV_E_NOT_FOUND);
            continue;
        }
        size_t mark = body.len;
        sv_jw_t saved = jw;
        err = sv_secret_read_json(&jw, &c->scope.owner, path, len, v, &ver, key);
        if (pinned)
            sv_keyring_release(c->kr, key);
        if (err == SV_OK && body.len > batch_max)
            err = SV_ETOOBIG; /* the answer is full: read this one alone, or in a later batch */
        if (err == SV_OK)
            read[i] = true;
        if (err != SV_OK) {
            /* drop the partial object, wiping what was written */
            if (body.base != NULL)
                sodium_memzero(body.base + mark, body.len - mark);
            body.len = mark;
            jw = saved;
            if (err == SV_ECRYPTO)
                sv_log(SV_LOG_ERROR, req->request_id, "a version of %.*s does not open with its data key", (int)len,
                       path);
            batch_error(&ejw, path, len, err == SV_ECRYPTO ? SV_E_INTERNAL : sv_api_error_from_err(err));
        }
    }
    sv_store_read_end(sv_req_reader(req));
    sv_jw_arr_end(&jw);
    sv_jw_arr_end(&ejw);
    sv_jw_key(&jw, "errors");
    sv_jw_raw(&jw, errors.base, errors.len);
    sv_jw_obj_end(&jw);
    bool failed = body.failed || errors.failed;
    sv_buf_free(&errors);
    if (failed) {
        sv_buf_free(&body);
        sv_req_fail_err(req, SV_ENOMEM);
        return;
    }
    batch_audit_path(req, c, read);
    sv_req_reply_secure(req, 200, &body);
}

/* ---- DELETE /v1/tenants/{id} ---- */

/* The tenant's data key goes first (crypto-shredding), then its secrets (in
 * steps when there are many) and, in this same unit, the rest of what it has:
 * its policies, its identity cache, its rate-limit overrides and its periodic
 * identity sync. A tenant with none of it is not found. Its audit entries
 * stay: the log is history and its chain covers every tenant. */
static sv_err_t tenant_delete_apply(sv_wtxn_t *tx, void *arg)
{
    sctx_t *c = arg;
    c->already = false;
    sv_err_t err = sv_secrets_owner_delete_apply(tx, &c->scope.owner, true, &c->finished, &c->deleted);
    if (err == SV_EDELETED) {
        c->already = true; /* a deletion is already under way: nothing to change */
        return SV_OK;
    }
    bool no_secrets = err == SV_ENOTFOUND; /* neither a key nor a secret: the rest may still be there */
    if (no_secrets) {
        c->finished = true;
        err = SV_OK;
    }
    const char *tenant = c->scope.owner.id;
    size_t policies = 0, identities = 0;
    bool had_overrides = false, had_sync = false;
    if (err == SV_OK)
        err = sv_policy_purge_tenant_tx(tx, tenant, &policies);
    if (err == SV_OK)
        err = sv_identity_purge_tenant_tx(tx, tenant, &identities);
    if (err == SV_OK)
        err = sv_rl_store_clear(tx, tenant, &c->rl_version, &had_overrides);
    if (err == SV_OK) {
        /* POST /v1/identity/sync starts it again */
        err = sv_scheduler_cancel_tx(c->req->app->scheduler, tx, SV_IDSYNC_KIND, tenant);
        had_sync = err == SV_OK;
        if (err == SV_ENOTFOUND)
            err = SV_OK;
    }
    if (err != SV_OK)
        return err;
    if (no_secrets && policies == 0 && identities == 0 && !had_overrides && !had_sync)
        return SV_ENOTFOUND; /* rolls back the empty overrides record too */
    c->deleted += policies + identities + (had_overrides ? 1 : 0);
    return SV_OK;
}

static int tenant_delete_status(void *arg)
{
    sctx_t *c = arg;
    return c->finished ? 200 : 202;
}

static void tenant_delete_done(sv_req_t *req, sv_err_t result, void *arg)
{
    sctx_t *c = arg;
    /* the wrapped key is gone from storage: now from memory too */
    sv_keyring_drop(c->kr, &c->scope.owner);
    if (result != SV_OK) {
        sv_req_fail_err(req, result);
        return;
    }
    if (!c->already) {
        /* caches built on what the unit removed */
        sv_policy_bump_tenant_generation(c->scope.owner.id);
        sv_identity_bump_generation();
        sv_rl_overrides_t none = {0};
        if (req->app->ratelimit != NULL)
            sv_rl_set_overrides(req->app->ratelimit, c->scope.owner.id, &none, c->rl_version);
    }
    if (!c->finished && !c->already && sv_secrets_owner_delete_continue(req->app->writer, &c->scope.owner) != SV_OK)
        sv_log(SV_LOG_WARN, req->request_id, "the rest of %s's data is deleted at the next start", c->scope.owner.id);
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "tenant_id");
    sv_jw_cstr(&jw, c->scope.owner.id);
    sv_jw_key(&jw, "key_destroyed");
    sv_jw_bool(&jw, true);
    sv_jw_key(&jw, "status");
    sv_jw_cstr(&jw, c->finished ? "deleted" : "deleting");
    sv_jw_key(&jw, "records_deleted");
    sv_jw_uint(&jw, c->deleted);
    sv_jw_obj_end(&jw);
    sv_req_reply(req, c->finished ? 200 : 202, &body);
}

static void delete_tenant(sv_req_t *req)
{
    size_t len;
    const char *id = sv_req_param(req, "id", &len);
    if (id != NULL)
        sv_req_audit_path(req, id, len);
    if (!sv_req_require_super_admin(req, "Only a super admin may delete a tenant."))
        return;
    scope_t s = {0};
    if (id == NULL || !sv_owner_tenant(&s.owner, id, len)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "A tenant id matches [A-Za-z0-9_-]{1,63}.", "id");
        return;
    }
    sctx_t *c = ctx_new(req, &s, "", 0);
    if (c == NULL)
        return;
    sv_req_op_t op = {
        .apply = tenant_delete_apply, .arg = c, .success_status = tenant_delete_status, .done = tenant_delete_done};
    sv_req_submit(req, &op);
}

/* ---- routes ---- */

/* One row per endpoint, for the tenant scope and the partner scope. */
typedef struct {
    const char *method;
    const char *tenant_pattern, *partner_pattern;
    sv_handler_fn handler;
    uint32_t scope;
    sv_rl_category_t rate;
    unsigned flags;
    const char *action;
} secret_route_t;

#define R_READ SV_SCOPE_SECRETS_READ
#define R_WRITE SV_SCOPE_SECRETS_WRITE
#define R_DELETE SV_SCOPE_SECRETS_DELETE
#define SECURE SV_ROUTE_SECURE_BODY

/* "{path*}" never matches what "{path*}/versions" does (the router keeps
 * sub-resources apart whatever the order), and no secret path may end in
 * versions, config, undelete, destroy or rotate. */
static const secret_route_t secret_routes[] = {
    {"POST", "/v1/secrets/batch", "/v1/partner/secrets/batch", post_batch, R_READ, SV_RL_BATCH_READ, 0,
     "secret_batch_read"},
    {"GET", "/v1/secrets/{path*}/versions", "/v1/partner/secrets/{path*}/versions", get_versions, R_READ, SV_RL_READ, 0,
     "secret_read"},
    {"PATCH", "/v1/secrets/{path*}/config", "/v1/partner/secrets/{path*}/config", patch_config, R_WRITE, SV_RL_WRITE, 0,
     "secret_config"},
    {"POST", "/v1/secrets/{path*}/undelete", "/v1/partner/secrets/{path*}/undelete", post_undelete, R_WRITE,
     SV_RL_WRITE, 0, "secret_write"},
    {"POST", "/v1/secrets/{path*}/destroy", "/v1/partner/secrets/{path*}/destroy", post_destroy, R_DELETE, SV_RL_WRITE,
     0, "secret_delete"},
    {"GET", "/v1/secrets/{path*}", "/v1/partner/secrets/{path*}", get_secret, R_READ, SV_RL_READ, 0, "secret_read"},
    {"PUT", "/v1/secrets/{path*}", "/v1/partner/secrets/{path*}", put_secret, R_WRITE, SV_RL_WRITE, SECURE,
     "secret_write"},
    {"DELETE", "/v1/secrets/{path*}", "/v1/partner/secrets/{path*}", delete_secret, R_DELETE, SV_RL_WRITE, 0,
     "secret_delete"},
    {"GET", "/v1/secrets", "/v1/partner/secrets", list_secrets, R_READ, SV_RL_LIST, 0, "secret_list"},
};

sv_err_t sv_http_routes_secrets(sv_router_t *r)
{
    sv_err_t err = SV_OK;
    for (int partner = 0; partner < 2 && err == SV_OK; partner++) {
        for (size_t i = 0; i < SV_ARRAY_LEN(secret_routes) && err == SV_OK; i++) {
            const secret_route_t *s = &secret_routes[i];
            sv_route_t rt = {.method = s->method,
                             .pattern = partner ? s->partner_pattern : s->tenant_pattern,
                             .handler = s->handler,
                             .scope = s->scope,
                             .rate_category = (int)s->rate,
                             .flags = s->flags | (partner ? 0 : SV_ROUTE_TENANT),
                             .action = s->action,
                             .refused_audit = refused_audit_path};
            err = sv_router_add(r, &rt);
        }
    }
    if (err != SV_OK)
        return err;
    static const sv_route_t tenant_delete = {.method = "DELETE",
                                             .pattern = "/v1/tenants/{id}",
                                             .handler = delete_tenant,
                                             .scope = SV_SCOPE_ADMIN,
                                             .rate_category = SV_RL_ADMIN,
                                             .action = "tenant_delete"};
    return sv_router_add(r, &tenant_delete);
}
