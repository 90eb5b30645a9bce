/*
 * scim.c - the identity sync of scim.h.
 *
 * The fetch is a chain of outbound calls, each call's callback submitting the
 * next, so no thread ever waits on the directory. Everything fetched is
 * bounded (pages, resources, bytes per page) and copied into plain arrays
 * before the apply, which then runs as one writer unit: a sync either lands
 * whole or not at all.
 *
 * Fetch callbacks: the outbound thread. Apply: the writer thread.
 */
#include "sv_autoconf.h"

#include "src/scim.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/json.h"
#include "src/keyring.h"
#include "store/key.h"
#include "store/record.h"

#define PAGE_SIZE 100
#define MAX_PAGES 1000
#define MAX_RESOURCES 100000
#define MAX_PAGE_BYTES (16u << 20)
#define META_PREFIX "identity_sync\x1f"

enum { PHASE_DISCOVERY, PHASE_TOKEN, PHASE_USERS, PHASE_GROUPS };

static void next_call(sv_scim_sync_t *s);

static void finish(sv_scim_sync_t *s, sv_err_t err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(sv_scim_sync_t *s, sv_err_t err, const char *fmt, ...)
{
    s->result = err;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof(s->error), fmt, ap);
        va_end(ap);
    }
    if (s->access_token_ != NULL) {
        sodium_memzero(s->access_token_, strlen(s->access_token_));
        free(s->access_token_);
        s->access_token_ = NULL;
    }
    s->finished_at = sv_now_s();
    s->done(s);
}

void sv_scim_sync_clear(sv_scim_sync_t *s)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        for (size_t j = 0; j < s->groups[i].n_members; j++)
            free(s->groups[i].members[j]);
        free(s->groups[i].members);
    }
    free(s->groups);
    free(s->idents);
    s->groups = NULL;
    s->idents = NULL;
    s->n_groups = s->n_idents = 0;
    if (s->access_token_ != NULL) {
        sodium_memzero(s->access_token_, strlen(s->access_token_));
        free(s->access_token_);
        s->access_token_ = NULL;
    }
}

/* ---- parsing ---- */

/* Copies a string member into out; false when absent, not a string or too long. */
static bool copy_str(const sv_json_t *obj, const char *name, char *out, size_t cap)
{
    size_t n;
    const char *v = sv_json_get_str(obj, name, &n);
    if (v == NULL || n == 0 || n >= cap || memchr(v, 0, n) != NULL)
        return false;
    memcpy(out, v, n);
    out[n] = 0;
    return true;
}

/* Whether r carries the tenancy extension with our tenant. */
static bool in_tenant(const sv_json_t *r, const char *tenant)
{
    sv_json_t *ext = sv_json_get(r, SV_SCIM_TENANCY_URN);
    size_t n;
    const char *t = ext != NULL ? sv_json_get_str(ext, "tenantId", &n) : NULL;
    return t != NULL && n == strlen(tenant) && memcmp(t, tenant, n) == 0;
}

static int cmp_ident_ext(const void *a, const void *b)
{
    return strcmp(((const sv_scim_ident_t *)a)->external_id, ((const sv_scim_ident_t *)b)->external_id);
}

static sv_err_t add_user(sv_scim_sync_t *s, const sv_json_t *r)
{
    sv_scim_ident_t id = {.active = true};
    char user_name[240];
    if (!in_tenant(r, s->tenant_id) || !copy_str(r, "id", id.external_id, sizeof(id.external_id)) ||
        !copy_str(r, "userName", user_name, sizeof(user_name))) {
        s->n_skipped++;
        return SV_OK;
    }
    char type[40] = "";
    copy_str(r, "userType", type, sizeof(type));
    bool sa = strcmp(type, "service_account") == 0;
    snprintf(id.id, sizeof(id.id), "%s%s", sa ? "sa:" : "user:", user_name);
    if (!sv_identity_id_valid(id.id, strlen(id.id))) {
        s->n_skipped++;
        return SV_OK;
    }
    id.type = sa ? SV_IDENT_SERVICE_ACCOUNT : SV_IDENT_USER;
    sv_json_t *active = sv_json_get(r, "active");
    if (active != NULL && active->type == SV_JSON_BOOL)
        id.active = active->u.b;
    if (!copy_str(r, "displayName", id.display_name, sizeof(id.display_name)))
        id.display_name[0] = 0;
    if (s->n_idents % 64 == 0) {
        sv_scim_ident_t *n = realloc(s->idents, (s->n_idents + 64) * sizeof(*n));
        if (n == NULL)
            return SV_ENOMEM;
        s->idents = n;
    }
    s->idents[s->n_idents++] = id;
    if (sa)
        s->n_service_accounts++;
    else
        s->n_users++;
    return SV_OK;
}

static sv_err_t add_group(sv_scim_sync_t *s, const sv_json_t *r)
{
    sv_scim_group_t g = {0};
    if (!in_tenant(r, s->tenant_id) || !copy_str(r, "id", g.id, sizeof(g.id)) ||
        !sv_group_id_valid(g.id, strlen(g.id))) {
        s->n_skipped++;
        return SV_OK;
    }
    if (!copy_str(r, "displayName", g.display_name, sizeof(g.display_name)))
        g.display_name[0] = 0;
    sv_json_t *members = sv_json_get(r, "members");
    if (members != NULL && members->type == SV_JSON_ARRAY && members->u.kids.n > 0) {
        g.members = calloc(members->u.kids.n, sizeof(char *));
        if (g.members == NULL)
            return SV_ENOMEM;
        for (const sv_json_t *m = members->u.kids.first; m != NULL; m = m->next) {
            sv_scim_ident_t key;
            if (!copy_str(m, "value", key.external_id, sizeof(key.external_id)))
                continue;
            const sv_scim_ident_t *who =
                bsearch(&key, s->idents, s->n_idents, sizeof(*s->idents), cmp_ident_ext);
            if (who == NULL)
                continue; /* not a user of this tenant (or a nested group): ignored */
            if ((g.members[g.n_members] = strdup(who->id)) == NULL) {
                for (size_t i = 0; i < g.n_members; i++)
                    free(g.members[i]);
                free(g.members);
                return SV_ENOMEM;
            }
            g.n_members++;
        }
    }
    if (s->n_groups % 32 == 0) {
        sv_scim_group_t *n = realloc(s->groups, (s->n_groups + 32) * sizeof(*n));
        if (n == NULL) {
            for (size_t i = 0; i < g.n_members; i++)
                free(g.members[i]);
            free(g.members);
            return SV_ENOMEM;
        }
        s->groups = n;
    }
    s->groups[s->n_groups++] = g;
    return SV_OK;
}

/* ---- the calls ---- */

static sv_http_call_t *new_call(sv_scim_sync_t *s, const char *method, const char *url)
{
    sv_http_call_t *c = sv_http_call_new(method, url);
    if (c == NULL)
        return NULL;
    c->timeout_ms = s->cfg_.timeout_ms > 0 ? s->cfg_.timeout_ms : 10000;
    c->max_response_bytes = MAX_PAGE_BYTES;
    c->arg = s;
    return c;
}

static void submit(sv_scim_sync_t *s, sv_http_call_t *c, sv_http_call_done_fn done)
{
    c->done = done;
    if (sv_outbound_submit(s->ob_, c) != SV_OK) {
        sv_http_call_free(c);
        finish(s, SV_ESHUTDOWN, "the server is stopping");
    }
}

/* Checks a call's outcome; on failure finishes the sync and returns false. */
static bool call_ok(sv_scim_sync_t *s, sv_http_call_t *c, const char *what)
{
    if (c->result != SV_OK) {
        finish(s, SV_EUPSTREAM, "%s: %.150s", what, c->error[0] ? c->error : sv_strerror(c->result));
        return false;
    }
    if (c->status != 200) {
        finish(s, SV_EUPSTREAM, "%s: HTTP %ld", what, c->status);
        return false;
    }
    return true;
}

static void discovery_done(sv_http_call_t *c)
{
    sv_scim_sync_t *s = c->arg;
    if (!call_ok(s, c, "discovery")) {
        sv_http_call_free(c);
        return;
    }
    sv_json_doc_t *doc;
    sv_json_error_t je;
    bool ok = false;
    if (sv_json_parse(c->response.base, c->response.len, false, &doc, &je) == SV_JSON_OK) {
        ok = copy_str(sv_json_root(doc), "token_endpoint", s->token_endpoint_, sizeof(s->token_endpoint_));
        sv_json_doc_free(doc);
    }
    sv_http_call_free(c);
    if (!ok) {
        finish(s, SV_EUPSTREAM, "discovery: no token_endpoint");
        return;
    }
    s->phase_ = PHASE_TOKEN;
    next_call(s);
}

static void token_done(sv_http_call_t *c)
{
    sv_scim_sync_t *s = c->arg;
    if (!call_ok(s, c, "client-credentials token")) {
        sv_http_call_free(c);
        return;
    }
    sv_json_doc_t *doc;
    sv_json_error_t je;
    if (sv_json_parse(c->response.base, c->response.len, true, &doc, &je) == SV_JSON_OK) {
        size_t n;
        const char *t = sv_json_get_str(sv_json_root(doc), "access_token", &n);
        if (t != NULL && n > 0 && n < 16384 && memchr(t, 0, n) == NULL && (s->access_token_ = malloc(n + 1)) != NULL) {
            memcpy(s->access_token_, t, n);
            s->access_token_[n] = 0;
        }
        sv_json_doc_free(doc);
    }
    sv_http_call_free(c);
    if (s->access_token_ == NULL) {
        finish(s, SV_EUPSTREAM, "client-credentials token: no access_token in the answer");
        return;
    }
    s->phase_ = PHASE_USERS;
    s->start_index_ = 1;
    next_call(s);
}

static void page_done(sv_http_call_t *c)
{
    sv_scim_sync_t *s = c->arg;
    bool users = s->phase_ == PHASE_USERS;
    if (!call_ok(s, c, users ? "SCIM Users" : "SCIM Groups")) {
        sv_http_call_free(c);
        return;
    }
    sv_json_doc_t *doc;
    sv_json_error_t je;
    if (sv_json_parse(c->response.base, c->response.len, false, &doc, &je) != SV_JSON_OK) {
        sv_http_call_free(c);
        finish(s, SV_EUPSTREAM, "SCIM: the answer is not valid JSON");
        return;
    }
    sv_http_call_free(c);
    sv_json_t *root = sv_json_root(doc);
    sv_json_t *total = sv_json_get(root, "totalResults"), *res = sv_json_get(root, "Resources");
    sv_err_t err = SV_OK;
    size_t n = 0;
    if (total == NULL || total->type != SV_JSON_NUMBER || !total->u.num.is_int || total->u.num.i < 0) {
        err = SV_EUPSTREAM;
        snprintf(s->error, sizeof(s->error), "SCIM: a ListResponse without totalResults");
    } else if (res != NULL && res->type == SV_JSON_ARRAY) {
        for (const sv_json_t *r = res->u.kids.first; r != NULL && err == SV_OK; r = r->next, n++)
            err = users ? add_user(s, r) : add_group(s, r);
    }
    int64_t total_n = total != NULL && total->type == SV_JSON_NUMBER ? total->u.num.i : 0;
    sv_json_doc_free(doc);
    if (err != SV_OK) {
        finish(s, err, err == SV_ENOMEM ? "out of memory" : NULL);
        return;
    }
    s->start_index_ += n;
    if (++s->pages_ > MAX_PAGES || s->n_idents + s->n_groups > MAX_RESOURCES) {
        finish(s, SV_ETOOBIG, "SCIM: more than %d pages or %d resources", MAX_PAGES, MAX_RESOURCES);
        return;
    }
    if (n > 0 && (int64_t)(s->start_index_ - 1) < total_n) {
        next_call(s); /* the next page */
        return;
    }
    if (users) {
        qsort(s->idents, s->n_idents, sizeof(*s->idents), cmp_ident_ext);
        s->phase_ = PHASE_GROUPS;
        s->start_index_ = 1;
        next_call(s);
        return;
    }
    finish(s, SV_OK, NULL);
}

static void next_call(sv_scim_sync_t *s)
{
    sv_http_call_t *c = NULL;
    char url[2048];
    switch (s->phase_) {
    case PHASE_DISCOVERY: {
        size_t il = strlen(s->cfg_.issuer);
        snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
                 (int)(il > 0 && s->cfg_.issuer[il - 1] == '/' ? il - 1 : il), s->cfg_.issuer);
        if ((c = new_call(s, "GET", url)) != NULL)
            submit(s, c, discovery_done);
        break;
    }
    case PHASE_TOKEN: {
        if ((c = new_call(s, "POST", s->token_endpoint_)) == NULL)
            break;
        /* client_secret_basic: both parts form-urlencoded, then base64 (RFC 6749 2.3.1) */
        char *id = curl_easy_escape(NULL, s->cfg_.client_id, 0), *sec = curl_easy_escape(NULL, s->cfg_.client_secret, 0);
        sv_buf_t cred, hdr;
        sv_buf_init(&cred, true);
        sv_buf_init(&hdr, true);
        if (id != NULL && sec != NULL) {
            sv_buf_puts(&cred, id);
            sv_buf_putc(&cred, ':');
            sv_buf_puts(&cred, sec);
            size_t enc = sodium_base64_ENCODED_LEN(cred.len, sodium_base64_VARIANT_ORIGINAL);
            sv_buf_puts(&hdr, "Authorization: Basic ");
            if (!cred.failed && sv_buf_reserve(&hdr, enc + 1)) {
                sodium_bin2base64((char *)hdr.base + hdr.len, enc, cred.base, cred.len, sodium_base64_VARIANT_ORIGINAL);
                hdr.len += enc - 1;
                sv_buf_putc(&hdr, 0);
            }
        }
        bool ok = id != NULL && sec != NULL && !hdr.failed && hdr.len > 0 &&
                  sv_http_call_header(c, (const char *)hdr.base) == SV_OK && sv_http_call_header(c, "Accept: application/json") == SV_OK &&
                  sv_http_call_body(c, "grant_type=client_credentials", 29, "application/x-www-form-urlencoded") == SV_OK;
        if (sec != NULL) {
            sodium_memzero(sec, strlen(sec));
            curl_free(sec);
        }
        curl_free(id);
        sv_buf_free(&cred);
        sv_buf_free(&hdr);
        if (!ok) {
            sv_http_call_free(c);
            c = NULL;
            break;
        }
        c->secure_response = true;
        submit(s, c, token_done);
        break;
    }
    case PHASE_USERS:
    case PHASE_GROUPS: {
        char filter[200];
        snprintf(filter, sizeof(filter), "%s:tenantId eq \"%s\"", SV_SCIM_TENANCY_URN, s->tenant_id);
        char *ef = curl_easy_escape(NULL, filter, 0);
        const char *dir = s->cfg_.directory_url;
        size_t dl = strlen(dir);
        if (dl > 0 && dir[dl - 1] == '/')
            dl--;
        if (ef != NULL)
            snprintf(url, sizeof(url), "%.*s/%s?filter=%s&startIndex=%zu&count=%d", (int)dl, dir,
                     s->phase_ == PHASE_USERS ? "Users" : "Groups", ef, s->start_index_, PAGE_SIZE);
        curl_free(ef);
        if (ef == NULL || (c = new_call(s, "GET", url)) == NULL)
            break;
        size_t tl = strlen(s->access_token_);
        char *h = malloc(tl + 32);
        bool ok = h != NULL;
        if (ok) {
            snprintf(h, tl + 32, "Authorization: Bearer %s", s->access_token_);
            ok = sv_http_call_header(c, h) == SV_OK && sv_http_call_header(c, "Accept: application/scim+json") == SV_OK;
            sodium_memzero(h, tl + 32);
            free(h);
        }
        if (!ok) {
            sv_http_call_free(c);
            c = NULL;
            break;
        }
        submit(s, c, page_done);
        break;
    }
    }
    if (c == NULL)
        finish(s, SV_ENOMEM, "out of memory");
}

static void kick(void *arg)
{
    next_call(arg);
}

sv_err_t sv_scim_sync_start(sv_outbound_t *ob, const sv_scim_config_t *cfg, sv_scim_sync_t *s)
{
    s->ob_ = ob;
    s->cfg_ = *cfg;
    s->result = SV_OK;
    s->error[0] = 0;
    s->idents = NULL;
    s->groups = NULL;
    s->n_idents = s->n_groups = s->n_users = s->n_service_accounts = s->n_skipped = 0;
    s->access_token_ = NULL;
    s->pages_ = 0;
    s->started_at = sv_now_s();
    s->finished_at = 0;
    s->token_endpoint_[0] = 0;
    if (cfg->token_endpoint != NULL && cfg->token_endpoint[0])
        snprintf(s->token_endpoint_, sizeof(s->token_endpoint_), "%s", cfg->token_endpoint);
    s->phase_ = s->token_endpoint_[0] ? PHASE_TOKEN : PHASE_DISCOVERY;
    /* the first call is submitted from the outbound thread like all others */
    return sv_outbound_timer(ob, 0, kick, s);
}

/* ---- apply ---- */

typedef struct {
    char **items;
    size_t n, cap;
    bool oom;
} idlist_t;

static bool idlist_push(idlist_t *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        char **ni = realloc(l->items, nc * sizeof(char *));
        if (ni == NULL) {
            l->oom = true;
            return false;
        }
        l->items = ni;
        l->cap = nc;
    }
    if ((l->items[l->n] = strdup(s)) == NULL) {
        l->oom = true;
        return false;
    }
    l->n++;
    return true;
}

static void idlist_free(idlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
}

static bool collect_scim_ident(void *arg, const sv_identity_rec_t *r)
{
    return r->source != SV_SOURCE_SCIM || idlist_push(arg, r->id);
}

static bool collect_scim_group(void *arg, const sv_group_rec_t *g)
{
    return g->source != SV_SOURCE_SCIM || idlist_push(arg, g->id);
}

static void meta_key(sv_key_t *k, const char *tenant)
{
    sv_key_init(k);
    sv_key_raw(k, META_PREFIX, strlen(META_PREFIX));
    sv_key_str(k, tenant, strlen(tenant));
}

sv_err_t sv_scim_apply_tx(sv_wtxn_t *tx, const sv_scim_sync_t *s)
{
    const char *tenant = s->tenant_id;
    sv_txn_t *txn = sv_wtxn_txn(tx);
    idlist_t old_ids = {0}, old_groups = {0};
    sv_err_t err = sv_keyring_tenant_writable(txn, tenant); /* the deletion purged the cache; a sync must wait */
    if (err == SV_OK)
        err = sv_identity_list(txn, tenant, "", collect_scim_ident, &old_ids);
    if (err == SV_OK)
        err = sv_group_list(txn, tenant, "", collect_scim_group, &old_groups);
    if (err == SV_OK && (old_ids.oom || old_groups.oom))
        err = SV_ENOMEM;
    int64_t now = sv_wtxn_now_us(tx) / 1000000;

    /* identities the directory no longer has */
    for (size_t i = 0; err == SV_OK && i < old_ids.n; i++) {
        bool keep = false;
        for (size_t j = 0; j < s->n_idents && !keep; j++)
            keep = strcmp(s->idents[j].id, old_ids.items[i]) == 0;
        if (!keep && (err = sv_identity_delete_tx(tx, tenant, old_ids.items[i])) == SV_ENOTFOUND)
            err = SV_OK;
    }
    /* identities (memberships follow from the groups below) */
    for (size_t i = 0; err == SV_OK && i < s->n_idents; i++) {
        const sv_scim_ident_t *si = &s->idents[i];
        sv_identity_rec_t rec;
        sv_err_t ge = sv_identity_get(txn, tenant, si->id, &rec);
        if (ge == SV_OK && rec.source == SV_SOURCE_MANUAL)
            continue; /* kept by hand: the sync leaves it alone */
        uint32_t roles = ge == SV_OK ? rec.roles : 0;
        memset(&rec, 0, sizeof(rec));
        snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", tenant);
        snprintf(rec.id, sizeof(rec.id), "%s", si->id);
        rec.type = si->type;
        rec.source = SV_SOURCE_SCIM;
        rec.active = si->active;
        rec.roles = roles;
        snprintf(rec.display_name, sizeof(rec.display_name), "%s", si->display_name);
        snprintf(rec.external_id, sizeof(rec.external_id), "%s", si->external_id);
        rec.updated_at = now;
        err = sv_identity_put_tx(tx, &rec, NULL, 0);
    }
    /* groups the directory no longer has */
    for (size_t i = 0; err == SV_OK && i < old_groups.n; i++) {
        bool keep = false;
        for (size_t j = 0; j < s->n_groups && !keep; j++)
            keep = strcmp(s->groups[j].id, old_groups.items[i]) == 0;
        if (!keep && (err = sv_group_delete_tx(tx, tenant, old_groups.items[i])) == SV_ENOTFOUND)
            err = SV_OK;
    }
    /* groups with their members */
    for (size_t i = 0; err == SV_OK && i < s->n_groups; i++) {
        const sv_scim_group_t *sg = &s->groups[i];
        sv_group_rec_t g;
        if (sv_group_get(txn, tenant, sg->id, &g) == SV_OK && g.source == SV_SOURCE_MANUAL)
            continue;
        memset(&g, 0, sizeof(g));
        snprintf(g.tenant_id, sizeof(g.tenant_id), "%s", tenant);
        snprintf(g.id, sizeof(g.id), "%s", sg->id);
        g.source = SV_SOURCE_SCIM;
        snprintf(g.display_name, sizeof(g.display_name), "%s", sg->display_name);
        snprintf(g.external_id, sizeof(g.external_id), "%s", sg->id);
        g.updated_at = now;
        err = sv_group_put_tx(tx, &g, (const char *const *)sg->members, sg->n_members);
    }
    if (err == SV_OK) {
        sv_key_t k;
        meta_key(&k, tenant);
        uint8_t v[8];
        sv_put_be64(v, (uint64_t)now);
        err = k.overflow ? SV_EINVAL : sv_wtxn_put(tx, SV_DB_META, sv_key_bytes(&k), SV_BYTES(v, 8));
    }
    idlist_free(&old_ids);
    idlist_free(&old_groups);
    return err;
}

sv_err_t sv_scim_each_synced_tenant(sv_txn_t *tx, bool (*fn)(void *arg, const char *tenant), void *arg)
{
    sv_iter_t it;
    sv_bytes_t prefix = SV_BYTES(META_PREFIX, strlen(META_PREFIX));
    sv_err_t err = sv_iter_open(tx, SV_DB_META, prefix, (sv_bytes_t){NULL, 0}, false, &it);
    if (err != SV_OK)
        return err;
    sv_bytes_t k, v;
    while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
        size_t off = prefix.len;
        sv_bytes_t t;
        char tenant[SV_TENANT_MAX];
        if (!sv_key_read_str(k, &off, &t) || t.len >= sizeof(tenant))
            continue;
        memcpy(tenant, t.base, t.len);
        tenant[t.len] = 0;
        if (!fn(arg, tenant))
            break;
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}
