/*
 * auth.c - bearer-token authentication (auth.h).
 *
 * The design choice that shapes this file: the signature of a token is
 * checked once. A verified token is remembered (src/tokencache) under a keyed
 * hash of its text until it expires, together with the key that verified it;
 * a later request with the same token costs a hash, a cache lookup, and the
 * checks that must see the present: expiry, revocation, whether its key is
 * still published (only when the key set changed), and the roles the identity
 * cache grants (only when the identity generation changed).
 *
 * Which key verifies is never the token's choice: the issuer is taken from
 * `iss` only to pick one of two configured key sets (ScaiKey's, --dev's), the
 * key by `kid` within it, and the key carries the only algorithm it verifies.
 * An unknown kid asks the JWKS source for a refresh and parks the request
 * (http/auth.c) until it ends.
 *
 * sv_auth_bearer runs on the workers; promotion units on the writer; the JWKS
 * source on the outbound thread.
 */
#include "sv_autoconf.h"

#include "src/auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/devissuer.h"
#include "src/health.h"
#include "src/identity.h"
#include "src/log.h"
#include "src/metrics.h"

#define TOKEN_CACHE_ENTRIES 4096
#define PRUNE_EVERY_S 60
#define SKIP_AUDIT_EVERY_S 60

enum { ISSUER_SCAIKEY = 1, ISSUER_DEV = 2 };

struct sv_auth {
    sv_app_t *app;
    sv_tokcache_t *cache;
    sv_revocations_t *revocations;
    sv_jwks_source_t *scaikey;      /* NULL: no SCAIKEY_ISSUER */
    sv_devissuer_t *dev;            /* NULL outside --dev */
    sv_jwks_t *dev_keys;
    char dev_issuer[256];           /* "" until the port is known */
    _Atomic bool promotion_in_flight;
    _Atomic int64_t last_skip_audit_s;
    int64_t last_prune_s;           /* writer thread only */
    sv_counter_t *cache_hits, *cache_misses; /* scaivault_token_cache_requests_total; NULL without metrics */
};

/* ---- parts ---- */

sv_err_t sv_outbound_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    sv_err_t err = sv_outbound_start(&app->outbound);
    if (err != SV_OK)
        snprintf(msg, msglen, "cannot start the outbound HTTP pool: %s", sv_strerror(err));
    return err;
}

void sv_outbound_part_stop(sv_app_t *app)
{
    sv_outbound_stop(app->outbound);
    app->outbound = NULL;
}

/* The writer keeps its batch hooks until it stops, after the auth part has
 * gone: the hook's argument is this static, which points at the auth part
 * only while it exists. */
static struct {
    pthread_mutex_t lock;
    sv_auth_t *auth;
} prune_target = {PTHREAD_MUTEX_INITIALIZER, NULL};

/* Writer batch hook: drops expired revocations, at most once a minute. */
static void prune_hook(void *arg, sv_wtxn_t *tx)
{
    (void)arg;
    pthread_mutex_lock(&prune_target.lock);
    sv_auth_t *a = prune_target.auth;
    int64_t now = sv_wtxn_now_us(tx) / 1000000;
    if (a != NULL && now - a->last_prune_s >= PRUNE_EVERY_S) {
        a->last_prune_s = now;
        size_t n = 0;
        if (sv_revocations_prune_tx(tx, now, &n) == SV_OK && n > 0) {
            sv_revocations_prune_memory(a->revocations, now);
            sv_log_info("revocations: %zu expired entries pruned", n);
        }
    }
    pthread_mutex_unlock(&prune_target.lock);
}

/* /v1/health/detailed: scaikey.jwks_age_s and scaikey.status */
static int64_t health_jwks_age(void *ctx)
{
    return sv_auth_jwks_age_s(ctx);
}

static bool health_ok(void *ctx)
{
    return strcmp(sv_auth_scaikey_status(ctx), "ok") == 0;
}

sv_err_t sv_auth_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    const sv_config_t *cfg = app->cfg;
    if (cfg->scaikey_jwks_url != NULL && cfg->scaikey_issuer == NULL) {
        snprintf(msg, msglen, "SCAIKEY_JWKS_URL: needs SCAIKEY_ISSUER (the issuer tokens must name)");
        return SV_EINVAL;
    }
    sv_auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return SV_ENOMEM;
    a->app = app;
    a->last_prune_s = sv_now_s() - PRUNE_EVERY_S + 5;
    if (app->metrics != NULL) {
        static const char help[] = "Verified-token cache lookups, by result.";
        a->cache_hits =
            sv_metrics_counter(app->metrics, "scaivault_token_cache_requests_total", "result=\"hit\"", help);
        a->cache_misses =
            sv_metrics_counter(app->metrics, "scaivault_token_cache_requests_total", "result=\"miss\"", help);
    }
    sv_err_t err = sv_tokcache_new(TOKEN_CACHE_ENTRIES, &a->cache);
    if (err != SV_OK)
        goto fail;
    if ((err = sv_revocations_load(app->store, &a->revocations)) != SV_OK) {
        snprintf(msg, msglen, "cannot load the revocations: %s", sv_strerror(err));
        goto fail;
    }
    if (cfg->dev) {
        char why[300];
        if ((err = sv_devissuer_open(cfg->data_dir, true, &a->dev, why, sizeof(why))) != SV_OK) {
            snprintf(msg, msglen, "dev issuer: %s", why);
            goto fail;
        }
        if ((err = sv_devissuer_keyset(a->dev, &a->dev_keys)) != SV_OK)
            goto fail;
    }
    if (cfg->scaikey_issuer != NULL) {
        if (app->outbound == NULL) {
            snprintf(msg, msglen, "auth: the outbound pool is not running");
            err = SV_EINTERNAL;
            goto fail;
        }
        sv_jwks_source_opts_t o = {.issuer = cfg->scaikey_issuer,
                                   .jwks_url = cfg->scaikey_jwks_url,
                                   .refresh_ms = (uint64_t)cfg->jwks_refresh_ms,
                                   .min_forced_ms = (uint64_t)cfg->jwks_min_refresh_ms,
                                   .wait_ms = 2000,
                                   .fetch_timeout_ms = 5000};
        if ((err = sv_jwks_source_start(app->outbound, &o, &a->scaikey)) != SV_OK)
            goto fail;
        sv_jwks_source_stats_t st;
        sv_jwks_source_stats(a->scaikey, &st);
        if (st.keys > 0)
            sv_log_info("JWT authentication on: issuer %s, %zu keys", cfg->scaikey_issuer, st.keys);
        else
            sv_log_warn("JWT authentication on: issuer %s, but no keys yet (%s); retrying", cfg->scaikey_issuer,
                        st.last_error);
    }
    pthread_mutex_lock(&prune_target.lock);
    prune_target.auth = a;
    pthread_mutex_unlock(&prune_target.lock);
    sv_writer_add_batch_hook(app->writer, prune_hook, NULL);
    app->auth = a;
    if (a->scaikey != NULL && app->health != NULL)
        sv_health_set_scaikey(app->health,
                              &(sv_health_scaikey_t){.jwks_age_s = health_jwks_age, .ok = health_ok, .ctx = app});
    return SV_OK;
fail:
    sv_auth_free(a);
    return err;
}

void sv_auth_part_stop(sv_app_t *app)
{
    sv_auth_t *a = app->auth;
    if (a == NULL)
        return;
    /* a promotion unit still in the writer references a */
    while (atomic_load(&a->promotion_in_flight))
        usleep(1000);
    pthread_mutex_lock(&prune_target.lock);
    if (prune_target.auth == a)
        prune_target.auth = NULL;
    pthread_mutex_unlock(&prune_target.lock);
    sv_auth_free(a);
    app->auth = NULL;
}

sv_err_t sv_auth_new_static(sv_app_t *app, const char *issuer, sv_jwks_t *keys, sv_auth_t **out)
{
    sv_auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return SV_ENOMEM;
    a->app = app;
    sv_err_t err = sv_tokcache_new(TOKEN_CACHE_ENTRIES, &a->cache);
    if (err == SV_OK)
        err = sv_revocations_load(NULL, &a->revocations);
    if (err != SV_OK) {
        sv_auth_free(a);
        return err;
    }
    /* the dev issuer's slot: a fixed set that is never refreshed */
    sv_jwks_ref(keys);
    a->dev_keys = keys;
    snprintf(a->dev_issuer, sizeof(a->dev_issuer), "%s", issuer);
    *out = a;
    return SV_OK;
}

void sv_auth_free(sv_auth_t *a)
{
    if (a == NULL)
        return;
    sv_jwks_source_stop(a->scaikey);
    sv_jwks_unref(a->dev_keys);
    sv_devissuer_free(a->dev);
    sv_revocations_free(a->revocations);
    sv_tokcache_free(a->cache);
    free(a);
}

/* ---- verification ---- */

static bool json_str_eq(const sv_json_t *v, const char *s)
{
    size_t n = strlen(s);
    return v != NULL && v->type == SV_JSON_STRING && v->u.str.len == n && memcmp(v->u.str.s, s, n) == 0;
}

/* The key set and expected issuer for t's iss; NULL when no configured issuer
 * matches. The set comes with a reference. */
static sv_jwks_t *keys_for(sv_auth_t *a, const sv_jwt_t *t, const char **issuer, int *kind)
{
    sv_json_t *iss = sv_json_get(sv_json_root(t->payload), "iss");
    if (a->dev_keys != NULL && a->dev_issuer[0] && json_str_eq(iss, a->dev_issuer)) {
        *issuer = a->dev_issuer;
        *kind = ISSUER_DEV;
        sv_jwks_ref(a->dev_keys);
        return a->dev_keys;
    }
    if (a->scaikey != NULL && json_str_eq(iss, a->app->cfg->scaikey_issuer)) {
        *issuer = a->app->cfg->scaikey_issuer;
        *kind = ISSUER_SCAIKEY;
        return sv_jwks_source_get(a->scaikey);
    }
    return NULL;
}

static sv_auth_status_t from_jwt(sv_jwt_status_t st, sv_auth_outcome_t *o)
{
    o->message = sv_jwt_status_text(st);
    return st == SV_JWT_EXPIRED ? SV_AUTH_EXPIRED : SV_AUTH_INVALID;
}

/* First use of a token: parse, pick the key, verify, map the claims. */
static sv_auth_status_t verify_new(sv_auth_t *a, const char *token, size_t len, bool may_wait,
                                   sv_tokcache_entry_t *e, sv_principal_t *p, sv_auth_outcome_t *o)
{
    sv_jwt_t t;
    sv_jwt_status_t st = sv_jwt_parse(token, len, &t);
    if (st != SV_JWT_OK)
        return from_jwt(st, o);
    const char *issuer = NULL;
    int kind = 0;
    sv_jwks_t *keys = keys_for(a, &t, &issuer, &kind);
    sv_auth_status_t rc = SV_AUTH_INVALID;
    if (issuer == NULL) {
        o->message = (a->scaikey == NULL && a->dev_keys == NULL)
                         ? "JWT authentication is not configured (SCAIKEY_ISSUER is unset)"
                         : sv_jwt_status_text(SV_JWT_BAD_ISSUER);
        goto free_token;
    }
    const sv_jwk_t *key = sv_jwks_find(keys, t.kid);
    if (key == NULL) {
        if (may_wait && kind == ISSUER_SCAIKEY) {
            rc = SV_AUTH_WAIT;
        } else {
            o->message = sv_jwt_status_text(SV_JWT_UNKNOWN_KID);
        }
        goto unref_keys;
    }
    if ((st = sv_jwt_verify(&t, key)) != SV_JWT_OK) {
        rc = from_jwt(st, o);
        goto unref_keys;
    }
    sv_jwt_expect_t ex = {.issuer = issuer, .audience = a->app->cfg->audience, .now = sv_now_s()};
    memset(e, 0, sizeof(*e));
    if ((st = sv_jwt_claims(&t, &ex, p)) != SV_JWT_OK) {
        rc = from_jwt(st, o);
        goto unref_keys;
    }
    e->valid_until = p->expires_at + SV_JWT_LEEWAY_S;
    e->keyset_serial = sv_jwks_serial(keys);
    memcpy(e->key_material, key->material_hash, sizeof(e->key_material));
    e->issuer_kind = (uint8_t)kind;
    snprintf(e->kid, sizeof(e->kid), "%s", t.kid);
    rc = SV_AUTH_OK;
unref_keys:
    sv_jwks_unref(keys);
free_token:
    sv_jwt_free(&t);
    return rc;
}

/* A cached ScaiKey token whose key set has changed since: is its key still
 * published with the same material? */
static bool key_still_published(sv_auth_t *a, const sv_tokcache_entry_t *e, uint64_t *serial)
{
    sv_jwks_t *keys = sv_jwks_source_get(a->scaikey);
    const sv_jwk_t *k = sv_jwks_find(keys, e->kid);
    bool ok = k != NULL && memcmp(k->material_hash, e->key_material, sizeof(e->key_material)) == 0;
    *serial = sv_jwks_serial(keys);
    sv_jwks_unref(keys);
    return ok;
}

/* Reads the identity-cache roles of p's identity into e. */
static void load_cache_roles(struct sv_store_reader *reader, sv_tokcache_entry_t *e, const sv_principal_t *p)
{
    e->identity_gen = sv_identity_generation();
    e->cache_roles = 0;
    e->active_in_cache = false;
    if (p->tenant_id[0] == 0 || reader == NULL)
        return;
    sv_txn_t *txn;
    if (sv_store_read_begin(reader, &txn) != SV_OK)
        return;
    sv_identity_rec_t rec;
    if (sv_identity_get(txn, p->tenant_id, p->identity_id, &rec) == SV_OK) {
        e->active_in_cache = rec.active;
        e->cache_roles = rec.active ? rec.roles : 0;
    }
    sv_store_read_end(reader);
}

sv_auth_status_t sv_auth_bearer(sv_auth_t *a, struct sv_store_reader *reader, const char *token, size_t len,
                                bool may_wait, sv_principal_t *p, sv_auth_outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    if (len > SV_JWT_MAX_TOKEN) {
        o->message = sv_jwt_status_text(SV_JWT_TOO_LARGE);
        return SV_AUTH_INVALID;
    }
    uint8_t h[SV_TOKEN_HASH_BYTES];
    sv_tokcache_hash(a->cache, token, len, h);
    int64_t now = sv_now_s();
    sv_tokcache_entry_t e;
    bool dirty = false;
    bool hit = sv_tokcache_get(a->cache, h, now, &e, p);
    if (a->cache_hits != NULL)
        sv_counter_inc(hit ? a->cache_hits : a->cache_misses);
    if (hit) {
        o->cached = true;
        if (e.issuer_kind == ISSUER_SCAIKEY && a->scaikey != NULL) {
            uint64_t serial = sv_jwks_source_serial(a->scaikey);
            if (serial != e.keyset_serial) {
                if (!key_still_published(a, &e, &serial)) {
                    sv_tokcache_remove(a->cache, h);
                    o->message = "the token's signing key is no longer published by the issuer";
                    return SV_AUTH_INVALID;
                }
                sv_tokcache_touch(a->cache, h, serial);
            }
        }
    } else {
        sv_auth_status_t rc = verify_new(a, token, len, may_wait, &e, p, o);
        if (rc != SV_AUTH_OK)
            return rc;
        dirty = true;
    }
    if (e.identity_gen != sv_identity_generation()) {
        load_cache_roles(reader, &e, p);
        dirty = true;
    }
    if (dirty)
        sv_tokcache_put(a->cache, h, &e, p); /* p: the token's claims, before the cache's roles */
    p->roles |= e.cache_roles;
    if (sv_revocations_check(a->revocations, p, now)) {
        o->message = "the token has been revoked";
        return SV_AUTH_REVOKED;
    }
    const char *boot = a->app->cfg->bootstrap_super_admin;
    if (boot != NULL && !(p->roles & SV_ROLE_SUPER_ADMIN) && strcmp(boot, p->identity_id) == 0)
        o->promote = e.active_in_cache ? SV_PROMOTE_NOW : SV_PROMOTE_SKIPPED;
    return SV_AUTH_OK;
}

bool sv_auth_wait_keys(sv_auth_t *a, sv_jwks_waiter_t *w)
{
    return a->scaikey != NULL && sv_jwks_source_wait(a->scaikey, w);
}

bool sv_auth_revoked(sv_auth_t *a, const sv_principal_t *p)
{
    return sv_revocations_check(a->revocations, p, sv_now_s());
}

sv_revocations_t *sv_auth_revocations(sv_auth_t *a)
{
    return a->revocations;
}

typedef struct {
    const char *jti;
    const char *tenant;
    int64_t exp;
} jti_find_t;

static bool find_jti(void *arg, const sv_tokcache_entry_t *e, const sv_principal_t *p)
{
    jti_find_t *f = arg;
    if (strcmp(p->jti, f->jti) == 0 && (f->tenant == NULL || strcmp(p->tenant_id, f->tenant) == 0) &&
        p->expires_at > f->exp)
        f->exp = p->expires_at;
    return true;
}

int64_t sv_auth_cached_exp_of_jti(sv_auth_t *a, const char *jti, const char *tenant)
{
    jti_find_t f = {.jti = jti, .tenant = tenant, .exp = 0};
    sv_tokcache_each(a->cache, find_jti, &f);
    return f.exp;
}

/* ---- promotion ---- */

typedef struct {
    sv_unit_t unit;
    sv_audit_entry_t entry;
    sv_auth_t *auth;
    char tenant[SV_TENANT_MAX];
    char id[SV_ID_MAX];
    void (*done)(void *arg, sv_err_t result);
    void *arg;
} promotion_t;

static sv_err_t promotion_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    promotion_t *pr = u->arg;
    sv_identity_rec_t rec;
    sv_err_t err = sv_identity_get(sv_wtxn_txn(tx), pr->tenant, pr->id, &rec);
    if (err != SV_OK)
        return err;
    if (rec.roles & SV_ROLE_SUPER_ADMIN)
        return SV_EEXIST; /* promoted already: only once */
    if (!rec.active)
        return SV_EPERM; /* deactivated since it signed in */
    return sv_identity_set_roles_tx(tx, pr->tenant, pr->id, rec.roles | SV_ROLE_SUPER_ADMIN);
}

static void promotion_complete(sv_unit_t *u)
{
    promotion_t *pr = u->arg;
    if (u->result == SV_OK) {
        sv_identity_bump_generation();
        char fields[400];
        snprintf(fields, sizeof(fields), "\"event\":\"identity_promoted\",\"identity_id\":\"%s\",\"tenant_id\":\"%s\"",
                 pr->id, pr->tenant);
        sv_log_fields(SV_LOG_INFO, pr->entry.request_id, fields, "%s promoted to super_admin (BOOTSTRAP_SUPER_ADMIN)",
                      pr->id);
    } else if (u->result != SV_EEXIST) {
        sv_log(SV_LOG_WARN, pr->entry.request_id, "promotion of %s failed: %s", pr->id, sv_strerror(u->result));
    }
    sv_auth_t *a = pr->auth;
    if (pr->done != NULL)
        pr->done(pr->arg, u->result == SV_EEXIST ? SV_OK : u->result);
    free(pr);
    atomic_store(&a->promotion_in_flight, false);
}

bool sv_auth_promote(sv_auth_t *a, const sv_principal_t *p, const sv_audit_entry_t *base,
                     void (*done)(void *arg, sv_err_t result), void *arg)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&a->promotion_in_flight, &expected, true))
        return false;
    promotion_t *pr = calloc(1, sizeof(*pr));
    if (pr == NULL) {
        atomic_store(&a->promotion_in_flight, false);
        return false;
    }
    pr->auth = a;
    pr->done = done;
    pr->arg = arg;
    snprintf(pr->tenant, sizeof(pr->tenant), "%s", p->tenant_id);
    snprintf(pr->id, sizeof(pr->id), "%s", p->identity_id);
    pr->entry = *base;
    snprintf(pr->entry.action, sizeof(pr->entry.action), "identity_promoted");
    snprintf(pr->entry.tenant_id, sizeof(pr->entry.tenant_id), "%s", p->tenant_id);
    snprintf(pr->entry.identity_id, sizeof(pr->entry.identity_id), "%s", p->identity_id);
    snprintf(pr->entry.path, sizeof(pr->entry.path), "%s", p->identity_id);
    pr->entry.success = true;
    pr->entry.status = 0;
    pr->entry.error_code[0] = 0;
    pr->unit.apply = promotion_apply;
    pr->unit.complete = promotion_complete;
    pr->unit.arg = pr;
    pr->unit.audit = &pr->entry;
    if (sv_writer_submit(a->app->writer, &pr->unit) != SV_OK) {
        free(pr);
        atomic_store(&a->promotion_in_flight, false);
        return false;
    }
    return true;
}

typedef struct {
    sv_unit_t unit;
    sv_audit_entry_t entry;
} skip_audit_t;

static void skip_complete(sv_unit_t *u)
{
    free(u->arg);
}

void sv_auth_promotion_skipped(sv_auth_t *a, const sv_principal_t *p, const sv_audit_entry_t *base)
{
    int64_t now = sv_now_s(), last = atomic_load(&a->last_skip_audit_s);
    if (now - last < SKIP_AUDIT_EVERY_S || !atomic_compare_exchange_strong(&a->last_skip_audit_s, &last, now))
        return;
    char fields[400];
    snprintf(fields, sizeof(fields),
             "\"event\":\"identity_promotion_skipped\",\"identity_id\":\"%s\",\"tenant_id\":\"%s\"", p->identity_id,
             p->tenant_id);
    sv_log_fields(SV_LOG_WARN, base->request_id, fields,
                  "BOOTSTRAP_SUPER_ADMIN %s signed in but is not in the identity cache of tenant '%s' yet, or is "
                  "inactive there: promotion skipped (run POST /v1/identity/sync, then sign in again)",
                  p->identity_id, p->tenant_id);
    skip_audit_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return;
    s->entry = *base;
    snprintf(s->entry.action, sizeof(s->entry.action), "identity_promotion_skipped");
    snprintf(s->entry.tenant_id, sizeof(s->entry.tenant_id), "%s", p->tenant_id);
    snprintf(s->entry.identity_id, sizeof(s->entry.identity_id), "%s", p->identity_id);
    snprintf(s->entry.path, sizeof(s->entry.path), "%s", p->identity_id);
    s->entry.success = false;
    snprintf(s->entry.error_code, sizeof(s->entry.error_code), "not_in_identity_cache");
    s->entry.status = 0;
    s->unit.complete = skip_complete;
    s->unit.arg = s;
    s->unit.audit = &s->entry;
    if (sv_writer_submit(a->app->writer, &s->unit) != SV_OK)
        free(s);
}

/* ---- health ---- */

int64_t sv_auth_jwks_age_s(const sv_app_t *app)
{
    if (app->auth == NULL || app->auth->scaikey == NULL)
        return -1;
    sv_jwks_source_stats_t st;
    sv_jwks_source_stats(app->auth->scaikey, &st);
    return st.age_s;
}

const char *sv_auth_scaikey_status(const sv_app_t *app)
{
    if (app->auth == NULL || app->auth->scaikey == NULL)
        return "disabled";
    sv_jwks_source_stats_t st;
    sv_jwks_source_stats(app->auth->scaikey, &st);
    if (st.keys == 0)
        return "down";
    return st.last_ok ? "ok" : "degraded";
}

void sv_auth_token_endpoint(sv_auth_t *a, char *out, size_t cap)
{
    out[0] = 0;
    if (a == NULL || a->scaikey == NULL)
        return;
    sv_jwks_source_stats_t st;
    sv_jwks_source_stats(a->scaikey, &st);
    snprintf(out, cap, "%s", st.token_endpoint);
}

/* ---- dev issuer ---- */

sv_err_t sv_auth_dev_set_issuer(sv_app_t *app, const char *url)
{
    sv_auth_t *a = app->auth;
    if (a == NULL || a->dev == NULL)
        return SV_OK;
    snprintf(a->dev_issuer, sizeof(a->dev_issuer), "%s", url);
    return sv_devissuer_write_info(a->dev, url, app->cfg->audience);
}

sv_err_t sv_auth_dev_jwks(sv_app_t *app, sv_buf_t *out)
{
    if (app->auth == NULL || app->auth->dev == NULL)
        return SV_ENOTFOUND;
    return sv_devissuer_jwks_json(app->auth->dev, out);
}
