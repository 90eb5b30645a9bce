/* tests/src/test_authz.c - policy evaluation, its cache and its trace
 * (src/authz.c), over a real store with the identity cache. */
#include "sv_autoconf.h"

#include <pthread.h>
#include <stdlib.h>

#include "src/authz.h"
#include "src/identity.h"
#include "store/migrate.h"
#include "tests/unit.h"

#define T "tnt_a"

static char *dir;
static sv_store_t *st;
static sv_writer_t *wr;
static sv_policy_t *pe;
static sv_store_reader_t *reader;

static int setup(void)
{
    if (!sv_test_store_open("authz", 8 << 20, 0, &dir, &st, &wr) || sv_policy_engine_new(&pe) != SV_OK)
        return 1;
    return sv_store_reader_new(st, &reader) == SV_OK ? 0 : 1;
}

static int teardown(void)
{
    sv_policy_engine_free(pe);
    sv_store_reader_free(reader);
    sv_test_store_close(dir, st, wr);
    return 0;
}

/* ---- writing policies and identity cache entries ---- */

static sv_err_t run(sv_err_t (*fn)(sv_wtxn_t *, void *), void *arg)
{
    return sv_test_in_writer(wr, fn, arg);
}

typedef struct {
    const char *tenant;
    sv_policy_def_t *p;
} put_t;

static sv_err_t put_fn(sv_wtxn_t *tx, void *arg)
{
    put_t *pp = arg;
    bool created;
    return sv_policy_put_tx(tx, pp->tenant, pp->p, &created);
}

/* Creates or replaces policy name in tenant T from its JSON body. */
static void put_policy(const char *name, const char *json)
{
    sv_json_doc_t *doc;
    sv_json_error_t je;
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(json, strlen(json), false, &doc, &je), SV_JSON_OK);
    put_t pp = {T, NULL};
    sv_policy_error_t e;
    sv_err_t err = sv_policy_from_json(sv_json_root(doc), name, &pp.p, &e);
    if (err != SV_OK)
        fprintf(stderr, "\n  policy %s: %s %s\n", name, e.field, e.message);
    CU_ASSERT_EQUAL_FATAL(err, SV_OK);
    sv_json_doc_free(doc);
    CU_ASSERT_EQUAL(run(put_fn, &pp), SV_OK);
    sv_policy_def_free(pp.p);
    sv_policy_bump_tenant_generation(T); /* as the endpoint does after the commit */
}

static sv_err_t purge_fn(sv_wtxn_t *tx, void *arg)
{
    (void)arg;
    sv_err_t err = sv_policy_purge_tenant_tx(tx, T, NULL);
    if (err == SV_OK)
        err = sv_identity_purge_tenant_tx(tx, T, NULL);
    return err;
}

static void reset(void)
{
    CU_ASSERT_EQUAL(run(purge_fn, NULL), SV_OK);
    sv_policy_bump_generation();
    sv_identity_bump_generation();
}

typedef struct {
    const char *id;
    bool active;
    const char *const *groups;
    size_t n;
} ident_t;

static sv_err_t ident_fn(sv_wtxn_t *tx, void *arg)
{
    ident_t *in = arg;
    sv_identity_rec_t r = {.type = SV_IDENT_SERVICE_ACCOUNT, .source = SV_SOURCE_MANUAL, .active = in->active};
    snprintf(r.tenant_id, sizeof(r.tenant_id), "%s", T);
    snprintf(r.id, sizeof(r.id), "%s", in->id);
    return sv_identity_put_tx(tx, &r, in->groups, in->n);
}

/* Puts identity id in the cache, member of groups (which may lack records). */
static void put_identity(const char *id, bool active, const char *const *groups, size_t n)
{
    ident_t in = {id, active, groups, n};
    CU_ASSERT_EQUAL(run(ident_fn, &in), SV_OK);
    sv_identity_bump_generation();
}

static sv_err_t group_fn(sv_wtxn_t *tx, void *arg)
{
    sv_group_rec_t g = {.source = SV_SOURCE_MANUAL};
    snprintf(g.tenant_id, sizeof(g.tenant_id), "%s", T);
    snprintf(g.id, sizeof(g.id), "%s", (const char *)arg);
    return sv_group_put_tx(tx, &g, NULL, 0);
}

/* Puts a group record (members stay as the index has them). */
static void put_group(const char *id)
{
    CU_ASSERT_EQUAL(run(group_fn, (void *)id), SV_OK);
    sv_identity_bump_generation();
}

/* ---- asking ---- */

static int64_t at(const char *rfc3339)
{
    int64_t t = 0;
    sv_time_parse(rfc3339, strlen(rfc3339), &t);
    return t;
}

static sv_authz_request_t ask(const char *id, const char *path, sv_perm_t perm)
{
    sv_authz_request_t rq = {.tenant = T, .identity_id = id, .path = path, .path_len = strlen(path), .perm = perm};
    rq.has_ip = true;
    sv_ip_parse("10.1.2.3", 8, &rq.ip);
    rq.now = at("2026-11-30T10:00:00Z"); /* a Monday, 10:00 UTC */
    return rq;
}

static sv_authz_result_t check(const sv_authz_request_t *rq)
{
    sv_authz_result_t res;
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, rq, &res), SV_OK);
    /* the traced evaluation always agrees with the fast one */
    sv_authz_result_t res2;
    sv_authz_trace_t *tr = NULL;
    CU_ASSERT_EQUAL(sv_authz_explain(pe, reader, rq, &res2, &tr), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, res2.outcome);
    CU_ASSERT_EQUAL(res.failed_condition, res2.failed_condition);
    CU_ASSERT_STRING_EQUAL(res.decision_by, res2.decision_by);
    CU_ASSERT_EQUAL(res.decision_rule, res2.decision_rule);
    sv_authz_trace_free(tr);
    return res;
}

static sv_authz_outcome_t outcome(const char *id, const char *path, sv_perm_t perm)
{
    sv_authz_request_t rq = ask(id, path, perm);
    return check(&rq).outcome;
}

/* ---- tests ---- */

static void test_time_windows(void)
{
    const uint8_t weekdays = 0x3e, fri = 1u << 5;
    CU_ASSERT(sv_authz_in_window(weekdays, 480, 1080, 1, 480));
    CU_ASSERT_FALSE(sv_authz_in_window(weekdays, 480, 1080, 1, 479));
    CU_ASSERT(sv_authz_in_window(weekdays, 480, 1080, 5, 1079));
    CU_ASSERT_FALSE(sv_authz_in_window(weekdays, 480, 1080, 5, 1080));
    CU_ASSERT_FALSE(sv_authz_in_window(weekdays, 480, 1080, 6, 600));
    CU_ASSERT_FALSE(sv_authz_in_window(weekdays, 480, 1080, 0, 600));
    /* 22:00-06:00 on Fridays: Friday night into Saturday morning */
    CU_ASSERT(sv_authz_in_window(fri, 1320, 360, 5, 1380));
    CU_ASSERT(sv_authz_in_window(fri, 1320, 360, 6, 359));
    CU_ASSERT_FALSE(sv_authz_in_window(fri, 1320, 360, 6, 360));
    CU_ASSERT_FALSE(sv_authz_in_window(fri, 1320, 360, 5, 1319));
    CU_ASSERT_FALSE(sv_authz_in_window(fri, 1320, 360, 5, 180)); /* Thursday night is not listed */
    CU_ASSERT_FALSE(sv_authz_in_window(fri, 1320, 360, 6, 1380));
    /* Saturday night into Sunday morning wraps the week */
    CU_ASSERT(sv_authz_in_window(1u << 6, 1320, 360, 0, 60));
    CU_ASSERT(sv_authz_in_window(SV_DAYS_ALL, 0, 1440, 3, 0));
    CU_ASSERT(sv_authz_in_window(SV_DAYS_ALL, 0, 1440, 3, 1439));
}

static void test_match_and_permissions(void)
{
    reset();
    put_policy("app-read", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\",\"list\"]}],"
                           "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("star", "{\"rules\":[{\"path\":\"cfg/*\",\"permissions\":[\"read\"]}],"
                       "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    CU_ASSERT_EQUAL(outcome("sa:app", "app/db/password", SV_PERM_READ), SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(outcome("sa:app", "app", SV_PERM_LIST), SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(outcome("sa:app", "app/db/password", SV_PERM_WRITE), SV_AUTHZ_NO_POLICY_MATCHED);
    CU_ASSERT_EQUAL(outcome("sa:app", "other/x", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
    CU_ASSERT_EQUAL(outcome("sa:app", "cfg/x", SV_PERM_READ), SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(outcome("sa:app", "cfg/x/y", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
    CU_ASSERT_EQUAL(outcome("sa:other", "app/db/password", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
    CU_ASSERT_EQUAL(outcome("sa:app", "app//bad", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
    sv_authz_request_t rq = ask("sa:app", "app/x", SV_PERM_READ);
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_STRING_EQUAL(res.decision_by, "app-read");
    CU_ASSERT_EQUAL(res.decision_rule, 0);
    /* admin grants only admin */
    put_policy("adm", "{\"rules\":[{\"path\":\"adm/**\",\"permissions\":[\"admin\"]}],"
                      "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    CU_ASSERT_EQUAL(outcome("sa:app", "adm/x", SV_PERM_ADMIN), SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(outcome("sa:app", "adm/x", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
}

static void test_deny_wins(void)
{
    reset();
    put_policy("z-allow", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\",\"write\"]}],"
                          "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("a-freeze", "{\"rules\":[{\"path\":\"app/prod/**\",\"permissions\":[\"write\"],\"effect\":\"deny\"}],"
                           "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    sv_authz_request_t rq = ask("sa:app", "app/prod/db", SV_PERM_WRITE);
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_EXPLICIT_DENY);
    CU_ASSERT_STRING_EQUAL(res.decision_by, "a-freeze");
    CU_ASSERT_EQUAL(outcome("sa:app", "app/prod/db", SV_PERM_READ), SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(outcome("sa:app", "app/dev/db", SV_PERM_WRITE), SV_AUTHZ_ALLOWED);
    /* the order of policies does not matter: a deny later in name order still wins */
    put_policy("zz-deny", "{\"rules\":[{\"path\":\"app/dev/**\",\"permissions\":[\"write\"],\"effect\":\"deny\"}],"
                          "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    rq = ask("sa:app", "app/dev/db", SV_PERM_WRITE);
    res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_EXPLICIT_DENY);
    CU_ASSERT_STRING_EQUAL(res.decision_by, "zz-deny");
}

static void test_conditions(void)
{
    reset();
    put_policy("net", "{\"rules\":[{\"path\":\"net/**\",\"permissions\":[\"read\"],"
                      "\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\",\"2001:db8::/32\"]}}],"
                      "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("mfa", "{\"rules\":[{\"path\":\"mfa/**\",\"permissions\":[\"read\"],"
                      "\"conditions\":{\"mfa_required\":true}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("office", "{\"rules\":[{\"path\":\"office/**\",\"permissions\":[\"read\"],"
                         "\"conditions\":{\"time_window\":{\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],"
                         "\"start\":\"08:00\",\"end\":\"18:00\",\"timezone\":\"Europe/Berlin\"}}}],"
                         "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    sv_authz_request_t rq = ask("sa:app", "net/x", SV_PERM_READ);
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
    sv_ip_parse("192.0.2.1", 9, &rq.ip);
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_CONDITION_FAILED);
    CU_ASSERT_STRING_EQUAL(sv_authz_failed_condition_code(res.failed_condition), "ip_not_allowed");
    sv_ip_parse("2001:db8::1", 11, &rq.ip);
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
    rq.has_ip = false;
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_CONDITION_FAILED);

    rq = ask("sa:app", "mfa/x", SV_PERM_READ);
    res = check(&rq);
    CU_ASSERT_STRING_EQUAL(sv_authz_failed_condition_code(res.failed_condition), "mfa_required");
    rq.mfa = true;
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);

    rq = ask("sa:app", "office/x", SV_PERM_READ); /* Monday 11:00 in Berlin */
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
    rq.now = at("2026-11-30T17:00:00Z"); /* 18:00 in Berlin: the end is exclusive */
    res = check(&rq);
    CU_ASSERT_STRING_EQUAL(sv_authz_failed_condition_code(res.failed_condition), "time_window_violation");
    rq.now = at("2026-11-30T16:59:59Z");
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
    rq.now = at("2026-11-29T10:00:00Z"); /* Sunday */
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_CONDITION_FAILED);
    rq.now = at("2026-07-06T06:30:00Z"); /* Monday 08:30 in summer (CEST) */
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
    rq.now = at("2026-12-07T06:30:00Z"); /* Monday 07:30 in winter (CET) */
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_CONDITION_FAILED);
}

static void test_failed_condition_choice(void)
{
    reset();
    /* p1 fails two conditions, p2 one: p2's is reported */
    put_policy("p1", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"ip_allow\":[\"192.0.2.0/24\"],\"mfa_required\":true}}],"
                     "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("p2", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"time_window\":{\"start\":\"20:00\",\"end\":\"21:00\"}}}],"
                     "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    sv_authz_request_t rq = ask("sa:app", "x", SV_PERM_READ);
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_STRING_EQUAL(sv_authz_failed_condition_code(res.failed_condition), "time_window_violation");
    CU_ASSERT_STRING_EQUAL(res.decision_by, "p2");
    /* a tie goes to the first in evaluation order (policy name, then rule) */
    put_policy("p2", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"mfa_required\":true}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("p1", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"ip_allow\":[\"192.0.2.0/24\"]}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    res = check(&rq);
    CU_ASSERT_STRING_EQUAL(sv_authz_failed_condition_code(res.failed_condition), "ip_not_allowed");
    CU_ASSERT_STRING_EQUAL(res.decision_by, "p1");
    /* any allow that holds beats a failed one */
    put_policy("p3", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],"
                     "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
}

static void test_deny_guard(void)
{
    reset();
    put_policy("allow", "{\"rules\":[{\"path\":\"prod/**\",\"permissions\":[\"write\"]}],"
                        "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("guard", "{\"rules\":[{\"path\":\"prod/**\",\"permissions\":[\"write\"],\"effect\":\"deny\","
                        "\"conditions\":{\"mfa_required\":true}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    sv_authz_request_t rq = ask("sa:app", "prod/db", SV_PERM_WRITE);
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_CONDITION_FAILED);
    CU_ASSERT_STRING_EQUAL(sv_authz_failed_condition_code(res.failed_condition), "mfa_required");
    CU_ASSERT_STRING_EQUAL(res.decision_by, "guard");
    rq.mfa = true;
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_ALLOWED);
}

static void test_groups_from_the_cache(void)
{
    reset();
    put_policy("fin", "{\"rules\":[{\"path\":\"fin/**\",\"permissions\":[\"read\"]}],"
                      "\"bindings\":{\"groups\":[\"grp_finance\"]}}");
    /* not in the cache at all */
    CU_ASSERT_EQUAL(outcome("sa:billing", "fin/x", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
    /* a member of a group the cache has no record of */
    const char *groups[] = {"grp_finance"};
    put_identity("sa:billing", true, groups, 1);
    CU_ASSERT_EQUAL(outcome("sa:billing", "fin/x", SV_PERM_READ), SV_AUTHZ_NO_POLICY_MATCHED);
    /* the group arrives: the binding now grants */
    put_group("grp_finance");
    CU_ASSERT_EQUAL(outcome("sa:billing", "fin/x", SV_PERM_READ), SV_AUTHZ_ALLOWED);
    /* a deactivated identity gets nothing */
    put_identity("sa:billing", false, groups, 1);
    CU_ASSERT_EQUAL(outcome("sa:billing", "fin/x", SV_PERM_READ), SV_AUTHZ_IDENTITY_INACTIVE);
    /* direct bindings work for identities the cache does not hold */
    put_policy("direct", "{\"rules\":[{\"path\":\"d\",\"permissions\":[\"read\"]}],"
                         "\"bindings\":{\"identities\":[\"sa:uncached\"]}}");
    CU_ASSERT_EQUAL(outcome("sa:uncached", "d", SV_PERM_READ), SV_AUTHZ_ALLOWED);
}

static void test_partner_paths(void)
{
    reset();
    put_policy("partner", "{\"rules\":[{\"path\":\"@partner/shared/**\",\"permissions\":[\"read\"]},"
                          "{\"path\":\"**\",\"permissions\":[\"read\"]}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    sv_authz_request_t rq = ask("sa:app", "shared/x", SV_PERM_READ);
    rq.partner = true;
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(res.decision_rule, 0);
    rq = ask("sa:app", "private/x", SV_PERM_READ);
    rq.partner = true; /* '**' never reaches partner secrets */
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_NO_POLICY_MATCHED);
    rq = ask("sa:app", "shared/x", SV_PERM_READ); /* the tenant's own shared/x: rule 1 */
    res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    CU_ASSERT_EQUAL(res.decision_rule, 1);
}

static void test_cache_invalidation(void)
{
    /* a tenant whose generation slot is not T's */
    char other[32] = "";
    uint64_t mine = sv_policy_generation(T);
    for (int i = 0; i < 1000 && other[0] == 0; i++) {
        char name[32];
        snprintf(name, sizeof(name), "tnt_%d", i);
        sv_policy_bump_tenant_generation(name);
        if (sv_policy_generation(T) == mine)
            snprintf(other, sizeof(other), "%s", name);
        mine = sv_policy_generation(T);
    }
    CU_ASSERT_FATAL(other[0] != 0);
    reset();
    put_policy("p", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],"
                    "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    sv_authz_request_t rq = ask("sa:app", "x", SV_PERM_READ);
    sv_authz_result_t res;
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    /* change the policy without bumping: the compiled cache still answers */
    put_t pp = {T, NULL};
    CU_ASSERT_EQUAL(run(purge_fn, &pp), SV_OK);
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    /* a change in another tenant (in another generation slot) leaves it be */
    sv_policy_bump_tenant_generation(other);
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    /* the bump that follows every committed change to this tenant makes it see the change */
    sv_policy_bump_tenant_generation(T);
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_NO_POLICY_MATCHED);

    /* identity changes: a group membership appears */
    put_policy("g", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],\"bindings\":{\"groups\":[\"grp_a\"]}}");
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_NO_POLICY_MATCHED);
    put_group("grp_a");
    const char *groups[] = {"grp_a"};
    put_identity("sa:app", true, groups, 1);
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    /* the same identity in another tenant is another entry */
    rq.tenant = "tnt_b";
    CU_ASSERT_EQUAL(sv_authz_check(pe, reader, &rq, &res), SV_OK);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_NO_POLICY_MATCHED);
}

/* Several threads evaluate at once while policies change; each has its own
 * cache (freed when the thread exits) and its own reader. */
typedef struct {
    int allowed, denied, errors;
} thread_result_t;

static void *checker(void *arg)
{
    thread_result_t *tr = arg;
    sv_store_reader_t *r;
    if (sv_store_reader_new(st, &r) != SV_OK) {
        tr->errors++;
        return NULL;
    }
    sv_authz_request_t rq = ask("sa:app", "x", SV_PERM_READ);
    for (int i = 0; i < 2000; i++) {
        sv_authz_result_t res;
        if (sv_authz_check(pe, r, &rq, &res) != SV_OK)
            tr->errors++;
        else if (res.outcome == SV_AUTHZ_ALLOWED)
            tr->allowed++;
        else
            tr->denied++;
    }
    sv_store_reader_free(r);
    return NULL;
}

static void test_threads(void)
{
    reset();
    put_policy("p", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],"
                    "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    pthread_t th[3];
    thread_result_t res[3] = {{0}};
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, checker, &res[i]);
    for (int i = 0; i < 20; i++)
        put_policy("p", i % 2 ? "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],"
                                "\"bindings\":{\"identities\":[\"sa:app\"]}}"
                              : "{\"rules\":[{\"path\":\"y\",\"permissions\":[\"read\"]}],"
                                "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(res[i].errors, 0);
        CU_ASSERT_EQUAL(res[i].allowed + res[i].denied, 2000);
    }
    /* after the last change (which allows), every thread's next answer agrees */
    CU_ASSERT_EQUAL(outcome("sa:app", "x", SV_PERM_READ), SV_AUTHZ_ALLOWED);
}

/* ---- the trace ---- */

static sv_json_doc_t *explain_json(const sv_authz_request_t *rq)
{
    sv_authz_result_t res;
    sv_authz_trace_t *tr = NULL;
    CU_ASSERT_EQUAL_FATAL(sv_authz_explain(pe, reader, rq, &res, &tr), SV_OK);
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &b);
    sv_jw_obj_begin(&jw);
    sv_authz_trace_write(tr, rq, &res, &jw);
    sv_jw_obj_end(&jw);
    sv_authz_trace_free(tr);
    sv_json_doc_t *doc = NULL;
    sv_json_error_t je;
    CU_ASSERT_EQUAL(sv_json_parse(b.base, b.len, false, &doc, &je), SV_JSON_OK);
    sv_buf_free(&b);
    return doc;
}

/* The evaluated item of policy (and rule, -1 for none). */
static const sv_json_t *item(sv_json_doc_t *doc, const char *policy, int rule)
{
    const sv_json_t *ev = sv_json_get(sv_json_root(doc), "evaluated");
    for (const sv_json_t *it = ev ? ev->u.kids.first : NULL; it != NULL; it = it->next) {
        const sv_json_t *r = sv_json_get(it, "rule");
        bool rule_ok = rule < 0 ? r->type == SV_JSON_NULL : (r->type == SV_JSON_NUMBER && r->u.num.i == rule);
        if (strcmp(sv_json_get_str(it, "policy", NULL), policy) == 0 && rule_ok)
            return it;
    }
    return NULL;
}

static bool contains(const sv_json_t *obj, const char *key, const char *needle)
{
    const char *s = sv_json_get_str(obj, key, NULL);
    if (s == NULL || strstr(s, needle) == NULL)
        fprintf(stderr, "\n  %s: '%s' lacks '%s'\n", key, s ? s : "(null)", needle);
    return s != NULL && strstr(s, needle) != NULL;
}

static const char *cond(const sv_json_t *it, const char *name)
{
    return sv_json_get_str(sv_json_get(it, "conditions"), name, NULL);
}

static void test_trace_reasons(void)
{
    reset();
    const char *groups[] = {"grp_known", "grp_ghost"};
    put_identity("sa:app", true, groups, 2);
    put_group("grp_known");
    put_policy("a-star", "{\"rules\":[{\"path\":\"app/*\",\"permissions\":[\"read\"]}],"
                         "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("b-write", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"write\",\"list\"]}],"
                          "\"bindings\":{\"groups\":[\"grp_known\"]}}");
    put_policy("c-conds", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"],\"conditions\":{"
                          "\"ip_allow\":[\"192.0.2.0/24\"],\"mfa_required\":true,\"time_window\":{\"days\":[\"sat\"],"
                          "\"start\":\"01:00\",\"end\":\"02:00\",\"timezone\":\"Asia/Tokyo\"}}}],"
                          "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("d-deny", "{\"rules\":[{\"path\":\"app/db/**\",\"permissions\":[\"delete\"],\"effect\":\"deny\"}],"
                         "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    put_policy("e-ghost", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                          "\"bindings\":{\"groups\":[\"grp_ghost\"]}}");
    put_policy("f-elsewhere", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                              "\"bindings\":{\"groups\":[\"grp_missing\"]}}");
    put_policy("g-unbound", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                            "\"bindings\":{\"identities\":[\"sa:someone_else\"]}}");
    put_policy("h-irrelevant", "{\"rules\":[{\"path\":\"other/**\",\"permissions\":[\"read\"]}],"
                               "\"bindings\":{\"groups\":[\"grp_missing_too\"]}}");

    sv_authz_request_t rq = ask("sa:app", "app/db/password", SV_PERM_READ);
    sv_json_doc_t *doc = explain_json(&rq);
    const sv_json_t *root = sv_json_root(doc);
    CU_ASSERT_FALSE(sv_json_get(root, "allowed")->u.b);
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(root, "failed_condition", NULL), "ip_not_allowed");
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(root, "decision_by", NULL), "c-conds");
    CU_ASSERT(contains(root, "reason", "c-conds"));

    const sv_json_t *it = item(doc, "a-star", 0); /* path mismatch, with the '**' hint */
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_FALSE(sv_json_get(it, "matched_path")->u.b);
    CU_ASSERT(sv_json_get(it, "permission_granted")->u.b);
    CU_ASSERT(contains(it, "reason", "does not match"));
    CU_ASSERT(contains(it, "reason", "'app/**' would match"));
    CU_ASSERT_STRING_EQUAL(cond(it, "ip_allow"), "n/a");

    it = item(doc, "b-write", 0); /* permission not granted; bound through a known group */
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT(sv_json_get(it, "matched_path")->u.b);
    CU_ASSERT_FALSE(sv_json_get(it, "permission_granted")->u.b);
    CU_ASSERT(contains(it, "reason", "does not grant 'read'"));
    CU_ASSERT(contains(it, "bound_by", "group:grp_known"));

    it = item(doc, "c-conds", 0); /* every condition fails, each named */
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_STRING_EQUAL(cond(it, "ip_allow"), "fail");
    CU_ASSERT_STRING_EQUAL(cond(it, "mfa_required"), "fail");
    CU_ASSERT_STRING_EQUAL(cond(it, "time_window"), "fail");
    CU_ASSERT(contains(it, "reason", "10.1.2.3 is not in 192.0.2.0/24"));
    CU_ASSERT(contains(it, "reason", "without multi-factor"));
    CU_ASSERT(contains(it, "reason", "mon 2026-11-30 19:00 (Asia/Tokyo) is outside sat 01:00-02:00"));
    CU_ASSERT(sv_json_get(it, "decisive")->u.b);

    it = item(doc, "d-deny", 0); /* a deny for another permission does not apply */
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT(contains(it, "effect", "deny"));

    it = item(doc, "e-ghost", -1); /* bound through a group the cache does not know */
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT(contains(it, "reason", "not in the identity cache"));
    CU_ASSERT(contains(it, "fix", "POST /v1/identity/sync?tenant_id=" T));
    CU_ASSERT_PTR_NULL(item(doc, "g-unbound", 0)); /* not bound: not listed */
    CU_ASSERT_PTR_NULL(item(doc, "f-elsewhere", 0));

    const sv_json_t *unres = sv_json_get(root, "unresolved_groups");
    /* grp_ghost (member) and grp_missing (maybe); not grp_missing_too, whose policy would not grant this */
    CU_ASSERT_EQUAL(unres->u.kids.n, 2);
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(unres->u.kids.first, "group", NULL), "grp_ghost");
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(unres->u.kids.last, "group", NULL), "grp_missing");
    CU_ASSERT(contains(unres->u.kids.last, "fix", "POST /v1/identity/sync?tenant_id=" T));
    const sv_json_t *ident = sv_json_get(root, "identity");
    CU_ASSERT(sv_json_get(ident, "found")->u.b);
    CU_ASSERT_EQUAL(sv_json_get(ident, "groups")->u.kids.n, 1);
    CU_ASSERT_STRING_EQUAL(sv_json_get(ident, "unknown_groups")->u.kids.first->u.str.s, "grp_ghost");
    sv_json_doc_free(doc);

    /* explicit deny */
    rq = ask("sa:app", "app/db/password", SV_PERM_DELETE);
    doc = explain_json(&rq);
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(sv_json_root(doc), "outcome", NULL), "explicit_deny");
    it = item(doc, "d-deny", 0);
    CU_ASSERT(contains(it, "reason", "explicit deny of 'delete'"));
    CU_ASSERT(contains(sv_json_root(doc), "reason", "d-deny"));
    sv_json_doc_free(doc);

    /* allowed: the decisive item says so */
    rq = ask("sa:app", "app/x", SV_PERM_READ);
    doc = explain_json(&rq);
    CU_ASSERT(sv_json_get(sv_json_root(doc), "allowed")->u.b);
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(sv_json_root(doc), "decision_by", NULL), "a-star");
    it = item(doc, "a-star", 0);
    CU_ASSERT(contains(it, "reason", "grants 'read'"));
    sv_json_doc_free(doc);

    /* an identity the cache does not hold */
    rq = ask("sa:nobody", "app/x", SV_PERM_READ);
    doc = explain_json(&rq);
    root = sv_json_root(doc);
    CU_ASSERT_FALSE(sv_json_get(sv_json_get(root, "identity"), "found")->u.b);
    CU_ASSERT(contains(root, "reason", "not in the identity cache"));
    CU_ASSERT(contains(root, "reason", "POST /v1/identity/sync?tenant_id=" T));
    CU_ASSERT(contains(sv_json_get(root, "identity"), "note", "POST /v1/identity/sync"));
    CU_ASSERT_EQUAL(sv_json_get(root, "evaluated")->u.kids.n, 0);
    sv_json_doc_free(doc);
}

/* The evaluated item of policy bound by bound_by ("identity", "group:<id>"), or NULL. */
static const sv_json_t *item_by(sv_json_doc_t *doc, const char *policy, const char *bound_by)
{
    const sv_json_t *ev = sv_json_get(sv_json_root(doc), "evaluated");
    for (const sv_json_t *it = ev ? ev->u.kids.first : NULL; it != NULL; it = it->next)
        if (strcmp(sv_json_get_str(it, "policy", NULL), policy) == 0 &&
            strcmp(sv_json_get_str(it, "bound_by", NULL), bound_by) == 0)
            return it;
    return NULL;
}

/* Whether unresolved_groups lists (group, policy) with member: true. */
static bool unresolved_member(sv_json_doc_t *doc, const char *group, const char *policy)
{
    const sv_json_t *un = sv_json_get(sv_json_root(doc), "unresolved_groups");
    for (const sv_json_t *it = un ? un->u.kids.first : NULL; it != NULL; it = it->next)
        if (strcmp(sv_json_get_str(it, "group", NULL), group) == 0 &&
            strcmp(sv_json_get_str(it, "policy", NULL), policy) == 0)
            return sv_json_get(it, "member")->u.b;
    fprintf(stderr, "\n  unresolved_groups lacks %s of %s\n", group, policy);
    return false;
}

/* A binding through a group the cache does not know is reported also when the
 * policy applies through another binding, and each such group of a policy is. */
static void test_trace_unresolved_beside_other_bindings(void)
{
    reset();
    const char *groups[] = {"grp_known", "grp_ghost", "grp_ghost2"};
    put_identity("sa:both", true, groups, 3);
    put_group("grp_known");
    put_policy("p-direct", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                           "\"bindings\":{\"identities\":[\"sa:both\"],\"groups\":[\"grp_ghost\"]}}");
    put_policy("q-known", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"list\"]}],"
                          "\"bindings\":{\"groups\":[\"grp_known\",\"grp_ghost\"]}}");
    put_policy("r-ghosts", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                           "\"bindings\":{\"groups\":[\"grp_ghost\",\"grp_ghost2\"]}}");

    /* the decision is that of the direct binding, traced or not */
    sv_authz_request_t rq = ask("sa:both", "app/x", SV_PERM_READ);
    sv_authz_result_t res = check(&rq);
    CU_ASSERT_EQUAL(res.outcome, SV_AUTHZ_ALLOWED);
    CU_ASSERT_STRING_EQUAL(res.decision_by, "p-direct");
    sv_json_doc_t *doc = explain_json(&rq);
    CU_ASSERT_PTR_NOT_NULL(item_by(doc, "p-direct", "identity"));
    const sv_json_t *it = item_by(doc, "p-direct", "group:grp_ghost");
    CU_ASSERT_PTR_NOT_NULL(it);
    if (it != NULL) {
        CU_ASSERT_EQUAL(sv_json_get(it, "rule")->type, SV_JSON_NULL);
        CU_ASSERT_FALSE(sv_json_get(it, "decisive")->u.b);
        CU_ASSERT(contains(it, "fix", "POST /v1/identity/sync?tenant_id=" T));
    }
    CU_ASSERT_PTR_NOT_NULL(item_by(doc, "q-known", "group:grp_known"));
    CU_ASSERT_PTR_NOT_NULL(item_by(doc, "q-known", "group:grp_ghost"));
    CU_ASSERT_PTR_NOT_NULL(item_by(doc, "r-ghosts", "group:grp_ghost"));
    CU_ASSERT_PTR_NOT_NULL(item_by(doc, "r-ghosts", "group:grp_ghost2"));
    CU_ASSERT_EQUAL(sv_json_get(sv_json_root(doc), "evaluated")->u.kids.n, 6);
    const sv_json_t *un = sv_json_get(sv_json_root(doc), "unresolved_groups");
    CU_ASSERT_EQUAL(un->u.kids.n, 4);
    CU_ASSERT(unresolved_member(doc, "grp_ghost", "p-direct"));
    CU_ASSERT(unresolved_member(doc, "grp_ghost", "q-known"));
    CU_ASSERT(unresolved_member(doc, "grp_ghost", "r-ghosts"));
    CU_ASSERT(unresolved_member(doc, "grp_ghost2", "r-ghosts"));
    sv_json_doc_free(doc);

    /* denied: the summary counts every such binding */
    rq = ask("sa:both", "other/x", SV_PERM_READ);
    CU_ASSERT_EQUAL(check(&rq).outcome, SV_AUTHZ_NO_POLICY_MATCHED);
    doc = explain_json(&rq);
    CU_ASSERT(contains(sv_json_root(doc), "reason", "; 4 binding(s) name groups the identity cache does not know"));
    CU_ASSERT_EQUAL(sv_json_get(sv_json_root(doc), "unresolved_groups")->u.kids.n, 4);
    sv_json_doc_free(doc);
}

void sv_test_suite_authz(void)
{
    CU_pSuite s = CU_add_suite("src/authz", setup, teardown);
    CU_add_test(s, "time_windows", test_time_windows);
    CU_add_test(s, "match_and_permissions", test_match_and_permissions);
    CU_add_test(s, "deny_wins", test_deny_wins);
    CU_add_test(s, "conditions", test_conditions);
    CU_add_test(s, "failed_condition_choice", test_failed_condition_choice);
    CU_add_test(s, "deny_guard", test_deny_guard);
    CU_add_test(s, "groups_from_the_cache", test_groups_from_the_cache);
    CU_add_test(s, "partner_paths", test_partner_paths);
    CU_add_test(s, "cache_invalidation", test_cache_invalidation);
    CU_add_test(s, "threads", test_threads);
    CU_add_test(s, "trace_reasons", test_trace_reasons);
    CU_add_test(s, "trace_unresolved_beside_other_bindings", test_trace_unresolved_beside_other_bindings);
}
