/* tests/src/test_auth.c - revocations (src/revocation.c), the SCIM apply
 * (src/scim.c), the promotion units and their audit entries (src/auth.c), and
 * the JWKS source when ScaiKey is unreachable (src/jwks.c). */
#include "sv_autoconf.h"

#include <stdlib.h>
#include <unistd.h>

#include "src/auth.h"
#include "src/identity.h"
#include "src/jwks.h"
#include "src/revocation.h"
#include "src/scim.h"
#include "store/migrate.h"
#include "tests/unit.h"

static char *dir;
static sv_store_t *st;
static sv_writer_t *w;

/* audit entries the writer's hook saw */
static sv_audit_entry_t seen[16];
static unsigned n_seen;

static sv_err_t capture_audit(void *arg, sv_wtxn_t *tx, sv_unit_t *u, sv_err_t op_result)
{
    if (n_seen < SV_ARRAY_LEN(seen)) {
        seen[n_seen] = *(sv_audit_entry_t *)u->audit;
        seen[n_seen].success = seen[n_seen].success && op_result == SV_OK;
        n_seen++;
    }
    return SV_OK;
}

static int setup(void)
{
    if (!sv_test_store_open("auth", 8 << 20, 0, &dir, &st, &w))
        return 1;
    sv_writer_set_audit_hook(w, capture_audit, NULL);
    return 0;
}

static int teardown(void)
{
    sv_test_store_close(dir, st, w);
    return 0;
}

/* Runs fn in a writer unit and waits. */
static sv_err_t in_writer(sv_err_t (*fn)(sv_wtxn_t *tx, void *arg), void *arg)
{
    return sv_test_in_writer(w, fn, arg);
}

/* ---- revocations ---- */

static sv_err_t put_rev(sv_wtxn_t *tx, void *arg)
{
    return sv_revocation_put_tx(tx, arg);
}

static sv_err_t prune(sv_wtxn_t *tx, void *arg)
{
    size_t n;
    sv_err_t err = sv_revocations_prune_tx(tx, *(int64_t *)arg, &n);
    *(int64_t *)arg = (int64_t)n;
    return err;
}

static sv_principal_t principal(const char *id, const char *tenant, const char *jti, int64_t iat)
{
    sv_principal_t p;
    memset(&p, 0, sizeof(p));
    snprintf(p.identity_id, sizeof(p.identity_id), "%s", id);
    snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", tenant);
    snprintf(p.jti, sizeof(p.jti), "%s", jti);
    p.issued_at = iat;
    return p;
}

static void test_revocations(void)
{
    int64_t now = sv_now_s();
    sv_revocation_t r1 = {.kind = SV_REVOKE_JTI, .revoked_at = now, .expires_at = now + 100};
    snprintf(r1.tenant_id, sizeof(r1.tenant_id), "tnt_a");
    snprintf(r1.subject, sizeof(r1.subject), "jti-1");
    sv_revocation_t r2 = {.kind = SV_REVOKE_IDENTITY, .revoked_at = now, .expires_at = now + 100};
    snprintf(r2.subject, sizeof(r2.subject), "sa:gone"); /* every tenant */
    sv_revocation_t r3 = {.kind = SV_REVOKE_JTI, .revoked_at = now - 10, .expires_at = now - 5}; /* expired */
    snprintf(r3.subject, sizeof(r3.subject), "jti-old");
    CU_ASSERT_EQUAL(in_writer(put_rev, &r1), SV_OK);
    CU_ASSERT_EQUAL(in_writer(put_rev, &r2), SV_OK);
    CU_ASSERT_EQUAL(in_writer(put_rev, &r3), SV_OK);
    sv_revocation_t bad = {.kind = 'x'};
    CU_ASSERT_EQUAL(in_writer(put_rev, &bad), SV_EINVAL);

    sv_revocations_t *rv;
    CU_ASSERT_EQUAL_FATAL(sv_revocations_load(st, &rv), SV_OK);
    CU_ASSERT_EQUAL(sv_revocations_count(rv), 2); /* the expired one is not loaded */
    sv_principal_t p = principal("sa:app", "tnt_a", "jti-1", now);
    CU_ASSERT_TRUE(sv_revocations_check(rv, &p, now));
    p = principal("sa:app", "tnt_b", "jti-1", now); /* a tnt_a revocation does not reach tnt_b */
    CU_ASSERT_FALSE(sv_revocations_check(rv, &p, now));
    p = principal("sa:gone", "tnt_b", "x", now);
    CU_ASSERT_TRUE(sv_revocations_check(rv, &p, now));
    p = principal("sa:gone", "tnt_b", "x", now + 1); /* issued after the revocation */
    CU_ASSERT_FALSE(sv_revocations_check(rv, &p, now));
    p = principal("sa:app", "tnt_a", "jti-old", now);
    CU_ASSERT_FALSE(sv_revocations_check(rv, &p, now));
    p = principal("sa:app", "tnt_a", "jti-1", now);
    CU_ASSERT_FALSE(sv_revocations_check(rv, &p, now + 101)); /* expired with the token */
    /* many, to make the table grow */
    for (int i = 0; i < 500; i++) {
        sv_revocation_t r = {.kind = SV_REVOKE_JTI, .revoked_at = now, .expires_at = now + 50 + i};
        snprintf(r.subject, sizeof(r.subject), "bulk-%d", i);
        sv_revocations_add(rv, &r);
    }
    CU_ASSERT_EQUAL(sv_revocations_count(rv), 502);
    p = principal("sa:x", "tnt_q", "bulk-377", now);
    CU_ASSERT_TRUE(sv_revocations_check(rv, &p, now));
    sv_revocations_prune_memory(rv, now + 200);
    CU_ASSERT_EQUAL(sv_revocations_count(rv), 350); /* bulk-150..499 survive */
    sv_revocations_free(rv);

    int64_t arg = now;
    CU_ASSERT_EQUAL(in_writer(prune, &arg), SV_OK);
    CU_ASSERT_EQUAL(arg, 1); /* jti-old */
    CU_ASSERT_EQUAL_FATAL(sv_revocations_load(st, &rv), SV_OK);
    CU_ASSERT_EQUAL(sv_revocations_count(rv), 2);
    sv_revocations_free(rv);
}

/* ---- SCIM apply ---- */

static sv_err_t scim_apply(sv_wtxn_t *tx, void *arg)
{
    return sv_scim_apply_tx(tx, arg);
}

static sv_err_t put_manual(sv_wtxn_t *tx, void *arg)
{
    sv_identity_rec_t r = {.type = SV_IDENT_USER, .source = SV_SOURCE_MANUAL, .active = true};
    snprintf(r.tenant_id, sizeof(r.tenant_id), "t1");
    snprintf(r.id, sizeof(r.id), "user:hand@x");
    const char *groups[] = {"grp_hand"};
    sv_err_t err = sv_identity_put_tx(tx, &r, groups, 1);
    if (err == SV_OK)
        err = sv_identity_set_roles_tx(tx, "t1", "user:a@x", SV_ROLE_SUPER_ADMIN);
    return err;
}

static void add_ident(sv_scim_sync_t *s, const char *id, const char *ext, uint8_t type)
{
    s->idents = realloc(s->idents, (s->n_idents + 1) * sizeof(*s->idents));
    sv_scim_ident_t *i = &s->idents[s->n_idents++];
    memset(i, 0, sizeof(*i));
    snprintf(i->id, sizeof(i->id), "%s", id);
    snprintf(i->external_id, sizeof(i->external_id), "%s", ext);
    i->type = type;
    i->active = true;
}

static void add_group(sv_scim_sync_t *s, const char *id, const char *m1, const char *m2)
{
    s->groups = realloc(s->groups, (s->n_groups + 1) * sizeof(*s->groups));
    sv_scim_group_t *g = &s->groups[s->n_groups++];
    memset(g, 0, sizeof(*g));
    snprintf(g->id, sizeof(g->id), "%s", id);
    g->members = calloc(2, sizeof(char *));
    if (m1)
        g->members[g->n_members++] = strdup(m1);
    if (m2)
        g->members[g->n_members++] = strdup(m2);
}

static bool collect(void *arg, const char *s)
{
    char *out = arg;
    strcat(out, s);
    strcat(out, ",");
    return true;
}

static bool add_tenant(void *arg, const char *t)
{
    strcat(arg, t);
    strcat(arg, ",");
    return true;
}

static void test_scim_apply(void)
{
    sv_scim_sync_t s;
    memset(&s, 0, sizeof(s));
    snprintf(s.tenant_id, sizeof(s.tenant_id), "t1");
    add_ident(&s, "user:a@x", "1", SV_IDENT_USER);
    add_ident(&s, "user:b@x", "2", SV_IDENT_USER);
    add_ident(&s, "sa:svc", "3", SV_IDENT_SERVICE_ACCOUNT);
    add_group(&s, "grp_1", "user:a@x", "sa:svc");
    add_group(&s, "grp_2", "user:b@x", NULL);
    CU_ASSERT_EQUAL_FATAL(in_writer(scim_apply, &s), SV_OK);
    CU_ASSERT_EQUAL(in_writer(put_manual, NULL), SV_OK);
    sv_scim_sync_clear(&s);

    /* second sync: b and grp_2 gone, a moves to grp_3 */
    memset(&s, 0, sizeof(s));
    snprintf(s.tenant_id, sizeof(s.tenant_id), "t1");
    add_ident(&s, "user:a@x", "1", SV_IDENT_USER);
    add_ident(&s, "sa:svc", "3", SV_IDENT_SERVICE_ACCOUNT);
    add_group(&s, "grp_1", "sa:svc", NULL);
    add_group(&s, "grp_3", "user:a@x", NULL);
    CU_ASSERT_EQUAL_FATAL(in_writer(scim_apply, &s), SV_OK);
    sv_scim_sync_clear(&s);

    sv_store_reader_t *rd;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(st, &rd), SV_OK);
    sv_txn_t *txn;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(rd, &txn), SV_OK);
    sv_identity_rec_t rec;
    sv_group_rec_t g;
    CU_ASSERT_EQUAL(sv_identity_get(txn, "t1", "user:b@x", &rec), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(sv_group_get(txn, "t1", "grp_2", &g), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(sv_identity_get(txn, "t1", "user:a@x", &rec), SV_OK);
    CU_ASSERT_EQUAL(rec.roles, SV_ROLE_SUPER_ADMIN); /* a granted role survives the sync */
    CU_ASSERT_EQUAL(rec.source, SV_SOURCE_SCIM);
    char groups[256] = "";
    sv_identity_each_group(txn, "t1", "user:a@x", collect, groups);
    CU_ASSERT_STRING_EQUAL(groups, "grp_3,");
    groups[0] = 0;
    sv_group_each_member(txn, "t1", "grp_1", collect, groups);
    CU_ASSERT_STRING_EQUAL(groups, "sa:svc,");
    CU_ASSERT_EQUAL(sv_identity_get(txn, "t1", "user:hand@x", &rec), SV_OK); /* manual: left alone */
    CU_ASSERT_EQUAL(rec.source, SV_SOURCE_MANUAL);
    char tenants[128] = "";
    CU_ASSERT_EQUAL(sv_scim_each_synced_tenant(txn, add_tenant, tenants), SV_OK);
    CU_ASSERT_STRING_EQUAL(tenants, "t1,");
    sv_store_read_end(rd);
    sv_store_reader_free(rd);
}

/* ---- promotion ---- */

static void promo_done(void *arg, sv_err_t result)
{
    *(sv_err_t *)arg = result;
}

static void test_promotion_audit(void)
{
    sv_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.audience = "scaivault";
    cfg.bootstrap_super_admin = "user:b@x";
    cfg.data_dir = (char *)dir;
    sv_app_t app = {.cfg = &cfg, .store = st, .writer = w};
    char msg[256] = "";
    CU_ASSERT_EQUAL_FATAL(sv_auth_part_init(&app, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL(sv_auth_jwks_age_s(&app), -1);
    CU_ASSERT_STRING_EQUAL(sv_auth_scaikey_status(&app), "disabled");
    sv_audit_entry_t base;
    memset(&base, 0, sizeof(base));
    snprintf(base.request_id, sizeof(base.request_id), "req_1");
    sv_principal_t p = principal("user:a@x", "t1", "", 0);
    n_seen = 0;
    sv_err_t result = SV_EINTERNAL;
    CU_ASSERT_TRUE(sv_auth_promote(app.auth, &p, &base, promo_done, &result));
    for (int i = 0; i < 500 && result == SV_EINTERNAL; i++)
        usleep(2000);
    CU_ASSERT_EQUAL(result, SV_OK); /* already super admin (test_scim_apply): done, no change */
    p = principal("sa:svc", "t1", "", 0);
    result = SV_EINTERNAL;
    CU_ASSERT_TRUE(sv_auth_promote(app.auth, &p, &base, promo_done, &result));
    for (int i = 0; i < 500 && result == SV_EINTERNAL; i++)
        usleep(2000);
    CU_ASSERT_EQUAL(result, SV_OK);
    CU_ASSERT_EQUAL_FATAL(n_seen, 2);
    CU_ASSERT_STRING_EQUAL(seen[1].action, "identity_promoted");
    CU_ASSERT_STRING_EQUAL(seen[1].identity_id, "sa:svc");
    CU_ASSERT_STRING_EQUAL(seen[1].tenant_id, "t1");
    CU_ASSERT_STRING_EQUAL(seen[1].request_id, "req_1");
    CU_ASSERT_TRUE(seen[1].success);
    /* skipped: audited once a minute at most */
    p = principal("user:b@x", "t1", "", 0);
    sv_auth_promotion_skipped(app.auth, &p, &base);
    sv_auth_promotion_skipped(app.auth, &p, &base);
    for (int i = 0; i < 500 && n_seen < 3; i++)
        usleep(2000);
    usleep(20000);
    CU_ASSERT_EQUAL(n_seen, 3);
    CU_ASSERT_STRING_EQUAL(seen[2].action, "identity_promotion_skipped");
    CU_ASSERT_STRING_EQUAL(seen[2].identity_id, "user:b@x");
    sv_auth_part_stop(&app);
    CU_ASSERT_PTR_NULL(app.auth);
}

/* ---- sv_auth_bearer over a fixed key set ---- */

static char *signed_token(EVP_PKEY *key, const char *kid, const char *iss, int64_t exp, int64_t iat)
{
    char c[512];
    snprintf(c, sizeof(c),
             "{\"iss\":\"%s\",\"aud\":\"scaivault\",\"sub\":\"sa:unit\",\"tenant_id\":\"t1\",\"jti\":\"j-%lld\","
             "\"exp\":%lld,\"iat\":%lld,\"scope\":\"secrets:read\"}",
             iss, (long long)exp, (long long)exp, (long long)iat);
    sv_buf_t b;
    sv_buf_init(&b, false);
    CU_ASSERT_EQUAL(sv_jwt_sign(key, SV_JWT_ALG_ES256, kid, c, strlen(c), &b), SV_OK);
    sv_buf_putc(&b, 0);
    return (char *)b.base;
}

static void test_bearer(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_FATAL(EVP_PKEY_up_ref(key) == 1);
    sv_jwk_t k = {.alg = SV_JWT_ALG_ES256, .pkey = key};
    snprintf(k.kid, sizeof(k.kid), "k1");
    sv_jwks_t *keys;
    CU_ASSERT_EQUAL_FATAL(sv_jwks_from_keys(&k, 1, &keys), SV_OK);
    sv_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.audience = "scaivault";
    cfg.bootstrap_super_admin = "sa:unit";
    sv_app_t app = {.cfg = &cfg, .store = st, .writer = w};
    sv_auth_t *a;
    CU_ASSERT_EQUAL_FATAL(sv_auth_new_static(&app, "https://iss.test", keys, &a), SV_OK);
    sv_store_reader_t *rd;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(st, &rd), SV_OK);
    int64_t now = sv_now_s();
    sv_principal_t p;
    sv_auth_outcome_t o;
    char *t = signed_token(key, "k1", "https://iss.test", now + 300, now - 10);
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, t, strlen(t), true, &p, &o), SV_AUTH_OK);
    CU_ASSERT_FALSE(o.cached);
    CU_ASSERT_STRING_EQUAL(p.identity_id, "sa:unit");
    CU_ASSERT_EQUAL(o.promote, SV_PROMOTE_SKIPPED); /* BOOTSTRAP_SUPER_ADMIN, not in t1's cache */
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, t, strlen(t), true, &p, &o), SV_AUTH_OK);
    CU_ASSERT_TRUE(o.cached);
    CU_ASSERT_EQUAL(p.scopes, SV_SCOPE_SECRETS_READ);
    /* revoked by subject: the cached token too */
    sv_revocation_t r = {.kind = SV_REVOKE_IDENTITY, .revoked_at = now, .expires_at = now + 60};
    snprintf(r.tenant_id, sizeof(r.tenant_id), "t1");
    snprintf(r.subject, sizeof(r.subject), "sa:unit");
    sv_revocations_add(sv_auth_revocations(a), &r);
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, t, strlen(t), true, &p, &o), SV_AUTH_REVOKED);
    CU_ASSERT_EQUAL(sv_auth_cached_exp_of_jti(a, p.jti, NULL), now + 300);
    CU_ASSERT_EQUAL(sv_auth_cached_exp_of_jti(a, p.jti, p.tenant_id), now + 300);
    CU_ASSERT_EQUAL(sv_auth_cached_exp_of_jti(a, p.jti, "t_other"), 0); /* not another tenant's to learn */
    free(t);
    /* expired, other issuer, unknown kid (a fixed set never waits), garbage */
    t = signed_token(key, "k1", "https://iss.test", now - 120, now - 400);
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, t, strlen(t), true, &p, &o), SV_AUTH_EXPIRED);
    free(t);
    t = signed_token(key, "k1", "https://other.test", now + 300, now + 5);
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, t, strlen(t), true, &p, &o), SV_AUTH_INVALID);
    free(t);
    t = signed_token(key, "k2", "https://iss.test", now + 300, now + 5);
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, t, strlen(t), true, &p, &o), SV_AUTH_INVALID);
    CU_ASSERT_PTR_NOT_NULL(o.message);
    free(t);
    CU_ASSERT_EQUAL(sv_auth_bearer(a, rd, "x.y.z", 5, true, &p, &o), SV_AUTH_INVALID);
    sv_store_reader_free(rd);
    sv_auth_free(a);
    sv_jwks_unref(keys);
    EVP_PKEY_free(key);
}

/* ---- the JWKS source when ScaiKey is unreachable ---- */

static void test_jwks_source_unreachable(void)
{
    sv_outbound_t *ob;
    CU_ASSERT_EQUAL_FATAL(sv_outbound_start(&ob), SV_OK);
    sv_jwks_source_opts_t o = {.issuer = "http://127.0.0.1:1", .min_forced_ms = 30000, .fetch_timeout_ms = 2000};
    sv_jwks_source_t *src;
    CU_ASSERT_EQUAL_FATAL(sv_jwks_source_start(ob, &o, &src), SV_OK);
    sv_jwks_source_stats_t s;
    sv_jwks_source_stats(src, &s);
    CU_ASSERT_EQUAL(s.age_s, -1);
    CU_ASSERT_FALSE(s.last_ok);
    CU_ASSERT_EQUAL(s.fetches, 1);
    CU_ASSERT_EQUAL(s.keys, 0);
    CU_ASSERT(strstr(s.last_error, "discovery") != NULL);
    CU_ASSERT_PTR_NULL(sv_jwks_source_get(src));
    CU_ASSERT_EQUAL(sv_jwks_source_serial(src), 0);
    sv_jwks_source_stop(src);
    sv_outbound_stop(ob);
}

void sv_test_suite_auth(void)
{
    CU_pSuite s = CU_add_suite("src/auth", setup, teardown);
    CU_add_test(s, "revocations", test_revocations);
    CU_add_test(s, "scim_apply", test_scim_apply);
    CU_add_test(s, "promotion_audit", test_promotion_audit);
    CU_add_test(s, "bearer", test_bearer);
    CU_add_test(s, "jwks_source_unreachable", test_jwks_source_unreachable);
}
