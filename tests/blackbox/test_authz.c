/* tests/blackbox/test_authz.c - authorization through the real binary: the
 * policy endpoints and their errors, POST /v1/policies/test with a trace for
 * every reason a policy can fail to grant, and the client address behind
 * TRUSTED_PROXIES.
 *
 * Two groups of tests need endpoints that other parts of the server provide:
 *  - identity cache entries (PUT /v1/identity/identities/{id} and
 *    PUT /v1/identity/groups/{id});
 *  - enforcement on real requests: non-admin JWTs from the dev issuer
 *    (`scaivault server --dev`, `scaivault dev-token`) and the secret
 *    endpoints (PUT/GET /v1/secrets/{path}).
 * Each group first checks that its endpoints exist (identity_endpoints_exist,
 * enforcement_endpoints_exist); they are part of the product, so a missing
 * one fails the test, as does any wrong answer, including a dev-token command
 * line it cannot use. */
#include "sv_autoconf.h"

#include <stdlib.h>

#include "tests/blackbox/bb.h"

#define TEN "tnt_authz"

static bb_server_t srv;
static const char *const srv_env[] = {"MAX_BODY_BYTES=65536", "MAX_SECRET_BYTES=32768", "RATE_LIMIT_ADMIN=100000/min",
                                      NULL};

static int suite_init(void)
{
    return bb_start(&srv, srv_env) ? 0 : 1;
}

static int suite_clean(void)
{
    bb_stop(&srv);
    bb_cleanup(&srv);
    return 0;
}

/* ---- helpers ---- */

static long req(bb_server_t *s, const char *method, const char *path, const char *tenant, const char *body,
                bb_resp_t *r)
{
    CU_ASSERT_FATAL(bb_req(s, method, path, s->token, tenant, body, r));
    return r->status;
}

/* PUT body at path in TEN and expect 200 or 201. */
static void put_ok(const char *path, const char *body)
{
    bb_resp_t r;
    req(&srv, "PUT", path, TEN, body, &r);
    if (r.status != 200 && r.status != 201)
        fprintf(stderr, "\n  PUT %s: %ld %s\n", path, r.status, r.body);
    CU_ASSERT(r.status == 200 || r.status == 201);
    bb_resp_free(&r);
}

static void put_policy(const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/policies/%s", name);
    put_ok(path, body);
}

static void delete_all_policies(void)
{
    bb_resp_t r;
    req(&srv, "GET", "/v1/policies?limit=1000", TEN, NULL, &r);
    const sv_json_t *items = bb_json(&r, "items");
    for (const sv_json_t *it = items ? items->u.kids.first : NULL; it != NULL; it = it->next) {
        char path[256];
        snprintf(path, sizeof(path), "/v1/policies/%s", sv_json_get_str(it, "name", NULL));
        bb_resp_t d;
        req(&srv, "DELETE", path, TEN, NULL, &d);
        BB_ASSERT_STATUS(&d, 204);
        bb_resp_free(&d);
    }
    bb_resp_free(&r);
}

/* POST /v1/policies/test; the caller frees r. */
static void policy_test(bb_server_t *s, const char *body, bb_resp_t *r)
{
    req(s, "POST", "/v1/policies/test", TEN, body, r);
    BB_ASSERT_STATUS(r, 200);
}

static bool json_true(const bb_resp_t *r, const char *path)
{
    bool v = false;
    return bb_json_bool(r, path, &v) && v;
}

static bool str_has(const bb_resp_t *r, const char *path, const char *needle)
{
    const char *s = bb_json_str(r, path);
    if (s == NULL || strstr(s, needle) == NULL)
        fprintf(stderr, "\n  %s = '%s' lacks '%s'\n", path, s ? s : "(missing)", needle);
    return s != NULL && strstr(s, needle) != NULL;
}

static bool str_is(const bb_resp_t *r, const char *path, const char *want)
{
    const char *s = bb_json_str(r, path);
    if (s == NULL || strcmp(s, want) != 0)
        fprintf(stderr, "\n  %s = '%s', want '%s'\n", path, s ? s : "(missing)", want);
    return s != NULL && strcmp(s, want) == 0;
}

static void expect_field(bb_server_t *s, const char *method, const char *path, const char *tenant, const char *body,
                         const char *code, const char *field)
{
    bb_resp_t r;
    req(s, method, path, tenant, body, &r);
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, code);
    CU_ASSERT(str_is(&r, "error.details.field", field));
    bb_resp_free(&r);
}

/* ---- the policy endpoints ---- */

static void test_crud(void)
{
    delete_all_policies();
    const char *body = "{\"description\":\"billing\",\"rules\":[{\"path\":\"app/db/**\",\"permissions\":[\"read\","
                       "\"list\"],\"effect\":\"allow\",\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\"]}}],"
                       "\"bindings\":{\"identities\":[\"sa:billing\"],\"groups\":[\"grp_finance\"]}}";
    bb_resp_t r;
    req(&srv, "PUT", "/v1/policies/billing-db", TEN, body, &r);
    BB_ASSERT_STATUS(&r, 201);
    CU_ASSERT(str_is(&r, "name", "billing-db"));
    CU_ASSERT(str_is(&r, "rules.0.path", "app/db/**"));
    CU_ASSERT(str_is(&r, "rules.0.permissions.1", "list"));
    CU_ASSERT(str_is(&r, "rules.0.conditions.ip_allow.0", "10.0.0.0/8"));
    CU_ASSERT(str_is(&r, "bindings.groups.0", "grp_finance"));
    int64_t v = 0;
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 1);
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "created_at"));
    bb_resp_free(&r);

    req(&srv, "PUT", "/v1/policies/billing-db", TEN, body, &r);
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 2);
    bb_resp_free(&r);

    req(&srv, "GET", "/v1/policies/billing-db", TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(str_is(&r, "description", "billing"));
    CU_ASSERT(bb_json_int(&r, "version", &v) && v == 2);
    /* the answer can be sent back as it is */
    char *again = strdup(r.body);
    bb_resp_free(&r);
    req(&srv, "PUT", "/v1/policies/billing-db", TEN, again, &r);
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    free(again);

    req(&srv, "DELETE", "/v1/policies/billing-db", TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 204);
    bb_resp_free(&r);
    req(&srv, "GET", "/v1/policies/billing-db", TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 404);
    BB_ASSERT_CODE(&r, "not_found");
    bb_resp_free(&r);
    req(&srv, "DELETE", "/v1/policies/billing-db", TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 404);
    BB_ASSERT_CODE(&r, "not_found");
    bb_resp_free(&r);

    /* every change is audited as policy_write with the policy's name, the failed delete too */
    req(&srv, "GET", "/v1/audit/logs?action=policy_write&path_prefix=billing-db&order=asc", TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 200);
    const sv_json_t *items = bb_json(&r, "items");
    CU_ASSERT_PTR_NOT_NULL_FATAL(items);
    CU_ASSERT_EQUAL(items->u.kids.n, 5); /* PUT 201, PUT 200, PUT 200, DELETE 204, DELETE 404 */
    CU_ASSERT(str_is(&r, "items.0.path", "billing-db"));
    CU_ASSERT(str_is(&r, "items.0.identity_id", "bootstrap"));
    int64_t st = 0;
    CU_ASSERT(bb_json_int(&r, "items.0.status", &st) && st == 201);
    CU_ASSERT(bb_json_int(&r, "items.3.status", &st) && st == 204);
    CU_ASSERT(bb_json_int(&r, "items.4.status", &st) && st == 404);
    CU_ASSERT(str_is(&r, "items.4.error_code", "not_found"));
    bb_resp_free(&r);
}

static void test_list_pagination(void)
{
    delete_all_policies();
    const char *names[] = {"p-e", "p-a", "p-c", "p-b", "p-d"};
    for (size_t i = 0; i < SV_ARRAY_LEN(names); i++)
        put_policy(names[i], "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}]}");
    char seen[128] = "", path[256] = "/v1/policies?limit=2";
    int pages = 0;
    for (;;) {
        bb_resp_t r;
        req(&srv, "GET", path, TEN, NULL, &r);
        BB_ASSERT_STATUS(&r, 200);
        const sv_json_t *items = bb_json(&r, "items");
        CU_ASSERT_PTR_NOT_NULL_FATAL(items);
        CU_ASSERT(items->u.kids.n <= 2);
        for (const sv_json_t *it = items->u.kids.first; it != NULL; it = it->next) {
            strcat(seen, sv_json_get_str(it, "name", NULL));
            strcat(seen, ",");
        }
        pages++;
        const char *next = bb_json_str(&r, "next_cursor");
        if (next == NULL) {
            CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "next_cursor")); /* present, null */
            bb_resp_free(&r);
            break;
        }
        snprintf(path, sizeof(path), "/v1/policies?limit=2&cursor=%s", next);
        bb_resp_free(&r);
        CU_ASSERT_FATAL(pages < 10);
    }
    CU_ASSERT_STRING_EQUAL(seen, "p-a,p-b,p-c,p-d,p-e,");
    CU_ASSERT_EQUAL(pages, 3);
    expect_field(&srv, "GET", "/v1/policies?limit=0", TEN, NULL, "invalid_request", "limit");
    expect_field(&srv, "GET", "/v1/policies?limit=1001", TEN, NULL, "invalid_request", "limit");
    expect_field(&srv, "GET", "/v1/policies?limit=ten", TEN, NULL, "invalid_request", "limit");
    expect_field(&srv, "GET", "/v1/policies?cursor=%21%21", TEN, NULL, "invalid_request", "cursor");
    delete_all_policies();
}

static void test_tenants(void)
{
    put_policy("mine", "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}]}");
    bb_resp_t r;
    req(&srv, "PUT", "/v1/policies/mine", NULL, "{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}]}", &r);
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "tenant_required");
    bb_resp_free(&r);
    req(&srv, "POST", "/v1/policies/test", NULL, "{}", &r);
    BB_ASSERT_CODE(&r, "tenant_required");
    bb_resp_free(&r);
    req(&srv, "GET", "/v1/policies/mine", "tnt_other", NULL, &r);
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    req(&srv, "GET", "/v1/policies", "tnt_other", NULL, &r);
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_EQUAL(bb_json(&r, "items")->u.kids.n, 0);
    bb_resp_free(&r);
    delete_all_policies();
}

static void test_auth_errors(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/policies", NULL, TEN, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    BB_ASSERT_CODE(&r, "authentication_required");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/policies/test", "wrong-token", TEN, "{}", &r));
    BB_ASSERT_STATUS(&r, 401);
    BB_ASSERT_CODE(&r, "token_invalid");
    bb_resp_free(&r);
    req(&srv, "PATCH", "/v1/policies/x", TEN, "{}", &r);
    BB_ASSERT_STATUS(&r, 405);
    BB_ASSERT_CODE(&r, "method_not_allowed");
    bb_resp_free(&r);
    req(&srv, "GET", "/v1/policies/test", TEN, NULL, &r); /* a policy may be called "test" */
    BB_ASSERT_STATUS(&r, 404);
    BB_ASSERT_CODE(&r, "not_found");
    bb_resp_free(&r);
}

#define R0(extra) "{\"rules\":[{\"path\":\"app/*\",\"permissions\":[\"read\"]" extra "}]}"
#define TW(tw) R0(",\"conditions\":{\"time_window\":" tw "}")

static void test_validation_errors(void)
{
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"rules\": ", "body"},
        {"[1]", "body"},
        {"{}", "rules"},
        {"{\"rules\":[]}", "rules"},
        {"{\"rules\":[],\"extra\":1}", "extra"},
        {"{\"name\":\"other\",\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}]}", "name"},
        {"{\"rules\":[{\"path\":\"app//x\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
        {"{\"rules\":[{\"path\":\"app/**x\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
        {"{\"rules\":[{\"path\":\"/app\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
        {"{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\",\"fly\"]}]}", "rules[0].permissions[1]"},
        {"{\"rules\":[{\"path\":\"x\",\"permissions\":[]}]}", "rules[0].permissions"},
        {R0(",\"effect\":\"permit\""), "rules[0].effect"},
        {R0(",\"conditions\":{\"ip_allow\":[\"10.0.0.1/8\"]}"), "rules[0].conditions.ip_allow[0]"},
        {R0(",\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\",\"2001:db8::/129\"]}"), "rules[0].conditions.ip_allow[1]"},
        {R0(",\"conditions\":{\"mfa_required\":1}"), "rules[0].conditions.mfa_required"},
        {R0(",\"conditions\":{\"geo\":[]}"), "rules[0].conditions.geo"},
        {TW("{\"days\":[\"mon\",\"someday\"],\"start\":\"08:00\",\"end\":\"18:00\"}"),
         "rules[0].conditions.time_window.days[1]"},
        {TW("{\"start\":\"8am\",\"end\":\"18:00\"}"), "rules[0].conditions.time_window.start"},
        {TW("{\"start\":\"08:00\",\"end\":\"18:61\"}"), "rules[0].conditions.time_window.end"},
        {TW("{\"start\":\"08:00\",\"end\":\"18:00\",\"timezone\":\"Mars/Olympus_Mons\"}"),
         "rules[0].conditions.time_window.timezone"},
        {TW("{\"start\":\"08:00\",\"end\":\"18:00\",\"timezone\":\"../../../etc/passwd\"}"),
         "rules[0].conditions.time_window.timezone"},
        {"{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],\"bindings\":{\"identities\":[\"nocolon\"]}}",
         "bindings.identities[0]"},
        {"{\"rules\":[{\"path\":\"x\",\"permissions\":[\"read\"]}],\"bindings\":{\"groups\":[\"a b\"]}}",
         "bindings.groups[0]"},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++)
        expect_field(&srv, "PUT", "/v1/policies/v", TEN, cases[i].body, "invalid_request", cases[i].field);
    expect_field(&srv, "PUT", "/v1/policies/bad%20name", TEN, R0(""), "invalid_request", "name");
    expect_field(&srv, "GET", "/v1/policies/..", TEN, NULL, "invalid_request", "name");
    /* nothing was stored */
    bb_resp_t r;
    req(&srv, "GET", "/v1/policies/v", TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    /* over MAX_BODY_BYTES (65536 on this server) */
    size_t big = 70000;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "{\"description\":\"", 16);
    body[big - 2] = '"';
    body[big - 1] = '}';
    body[big] = 0;
    req(&srv, "PUT", "/v1/policies/v", TEN, body, &r);
    BB_ASSERT_STATUS(&r, 413);
    BB_ASSERT_CODE(&r, "payload_too_large");
    bb_resp_free(&r);
    free(body);
}

static void test_policy_test_errors(void)
{
    const char *ep = "/v1/policies/test";
    expect_field(&srv, "POST", ep, TEN, "{\"path\":\"a\",\"permission\":\"read\"}", "invalid_request", "identity_id");
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"nocolon\",\"path\":\"a\",\"permission\":\"read\"}",
                 "invalid_request", "identity_id");
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"sa:a\",\"permission\":\"read\"}", "invalid_path", "path");
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"sa:a\",\"path\":\"a//b\",\"permission\":\"read\"}",
                 "invalid_path", "path");
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"sa:a\",\"path\":\"app/*\",\"permission\":\"read\"}",
                 "invalid_path", "path");
    /* a path no secret can have (it names a sub-resource), as a secret request says */
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"sa:a\",\"path\":\"app/versions\",\"permission\":\"read\"}",
                 "invalid_path", "path");
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"fly\"}",
                 "invalid_request", "permission");
    expect_field(&srv, "POST", ep, TEN, "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"read\",\"x\":1}",
                 "invalid_request", "x");
    expect_field(&srv, "POST", ep, TEN,
                 "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"read\",\"context\":{\"ip\":\"1.2.3\"}}",
                 "invalid_request", "context.ip");
    expect_field(&srv, "POST", ep, TEN,
                 "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"read\",\"context\":{\"mfa\":\"yes\"}}",
                 "invalid_request", "context.mfa");
    expect_field(&srv, "POST", ep, TEN,
                 "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"read\",\"context\":{\"time\":\"noon\"}}",
                 "invalid_request", "context.time");
    expect_field(&srv, "POST", ep, TEN,
                 "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"read\",\"context\":{\"geo\":\"x\"}}",
                 "invalid_request", "context.geo");
    expect_field(&srv, "POST", ep, TEN,
                 "{\"identity_id\":\"sa:a\",\"path\":\"a\",\"permission\":\"read\",\"context\":1}", "invalid_request",
                 "context");
}

/* ---- policies/test: a trace for every reason a policy can fail to grant ---- */

#define BIND "\"bindings\":{\"identities\":[\"sa:billing\"]}"

static void test_trace_identity_not_found(void)
{
    delete_all_policies();
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"app/db/password\",\"permission\":\"read\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "decision_by"));
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "decision_by"));
    CU_ASSERT(str_is(&r, "outcome", "no_policy_matched"));
    CU_ASSERT_FALSE(json_true(&r, "identity.found"));
    CU_ASSERT(str_has(&r, "reason", "not in the identity cache"));
    CU_ASSERT(str_has(&r, "identity.note", "POST /v1/identity/sync?tenant_id=" TEN));
    CU_ASSERT_EQUAL(bb_json(&r, "evaluated")->u.kids.n, 0);
    char rid[128];
    CU_ASSERT_PTR_NOT_NULL_FATAL(bb_header(&r, "x-request-id", rid, sizeof(rid)));
    bb_resp_free(&r);
    /* audited as policy_test, with the tested path */
    char q[256];
    snprintf(q, sizeof(q), "/v1/audit/logs?request_id=%s", rid);
    req(&srv, "GET", q, TEN, NULL, &r);
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(str_is(&r, "items.0.action", "policy_test"));
    CU_ASSERT(str_is(&r, "items.0.path", "app/db/password"));
    bb_resp_free(&r);
}

static void test_trace_path_mismatch(void)
{
    delete_all_policies();
    /* the product page's example: '*' does not reach nested secrets */
    put_policy("billing-db", "{\"rules\":[{\"path\":\"app/*\",\"permissions\":[\"read\"]}]," BIND "}");
    bb_resp_t r;
    const char *q = "{\"identity_id\":\"sa:billing\",\"path\":\"app/db/password\",\"permission\":\"read\"}";
    policy_test(&srv, q, &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "evaluated.0.policy", "billing-db"));
    CU_ASSERT_FALSE(json_true(&r, "evaluated.0.matched_path"));
    CU_ASSERT(json_true(&r, "evaluated.0.permission_granted"));
    CU_ASSERT(str_is(&r, "evaluated.0.bound_by", "identity"));
    CU_ASSERT(str_has(&r, "evaluated.0.reason", "does not match"));
    CU_ASSERT(str_has(&r, "evaluated.0.reason", "'app/**' would match"));
    CU_ASSERT(str_has(&r, "reason", "none of the 1 policy bound"));
    bb_resp_free(&r);
    put_policy("billing-db", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}]," BIND "}");
    policy_test(&srv, q, &r);
    CU_ASSERT(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "decision_by", "billing-db"));
    CU_ASSERT(str_is(&r, "outcome", "allowed"));
    CU_ASSERT(json_true(&r, "evaluated.0.decisive"));
    bb_resp_free(&r);
}

static void test_trace_permission(void)
{
    delete_all_policies();
    put_policy("reader", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\",\"list\"]}]," BIND "}");
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"app/db/password\",\"permission\":\"write\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(json_true(&r, "evaluated.0.matched_path"));
    CU_ASSERT_FALSE(json_true(&r, "evaluated.0.permission_granted"));
    CU_ASSERT(str_has(&r, "evaluated.0.reason", "does not grant 'write' (it grants read, list)"));
    bb_resp_free(&r);
}

static void test_trace_explicit_deny(void)
{
    delete_all_policies();
    put_policy("a-all", "{\"rules\":[{\"path\":\"**\",\"permissions\":[\"read\",\"write\"]}]," BIND "}");
    put_policy("b-freeze",
               "{\"rules\":[{\"path\":\"prod/**\",\"permissions\":[\"write\"],\"effect\":\"deny\"}]," BIND "}");
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"prod/db\",\"permission\":\"write\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "outcome", "explicit_deny"));
    CU_ASSERT(str_is(&r, "decision_by", "b-freeze"));
    CU_ASSERT(str_is(&r, "evaluated.1.effect", "deny"));
    CU_ASSERT(json_true(&r, "evaluated.1.decisive"));
    CU_ASSERT(str_has(&r, "evaluated.1.reason", "explicit deny"));
    CU_ASSERT(str_has(&r, "reason", "deny wins"));
    bb_resp_free(&r);
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"prod/db\",\"permission\":\"read\"}", &r);
    CU_ASSERT(json_true(&r, "allowed"));
    bb_resp_free(&r);
}

static void test_trace_conditions(void)
{
    delete_all_policies();
    put_policy("net", "{\"rules\":[{\"path\":\"net/**\",\"permissions\":[\"read\"],"
                      "\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\",\"2001:db8::/32\"]}}]," BIND "}");
    put_policy("mfa", "{\"rules\":[{\"path\":\"mfa/**\",\"permissions\":[\"read\"],"
                      "\"conditions\":{\"mfa_required\":true}}]," BIND "}");
    /* Friday 22:00 to Saturday 06:00 in New York */
    put_policy("night", "{\"rules\":[{\"path\":\"night/**\",\"permissions\":[\"read\"],\"conditions\":{"
                        "\"time_window\":{\"days\":[\"fri\"],\"start\":\"22:00\",\"end\":\"06:00\","
                        "\"timezone\":\"America/New_York\"}}}]," BIND "}");
    bb_resp_t r;
    policy_test(&srv,
                "{\"identity_id\":\"sa:billing\",\"path\":\"net/x\",\"permission\":\"read\","
                "\"context\":{\"ip\":\"192.0.2.1\"}}",
                &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "failed_condition", "ip_not_allowed"));
    CU_ASSERT(str_is(&r, "outcome", "condition_failed"));
    /* policies in name order: mfa, net, night */
    CU_ASSERT(str_is(&r, "evaluated.1.conditions.ip_allow", "fail"));
    CU_ASSERT(str_is(&r, "evaluated.1.conditions.mfa_required", "n/a"));
    CU_ASSERT(str_has(&r, "evaluated.1.reason", "192.0.2.1 is not in 10.0.0.0/8, 2001:db8::/32"));
    CU_ASSERT(str_is(&r, "context.ip_source", "context"));
    bb_resp_free(&r);
    policy_test(&srv,
                "{\"identity_id\":\"sa:billing\",\"path\":\"net/x\",\"permission\":\"read\","
                "\"context\":{\"ip\":\"2001:db8::5\"}}",
                &r);
    CU_ASSERT(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "evaluated.1.conditions.ip_allow", "pass"));
    bb_resp_free(&r);

    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"mfa/x\",\"permission\":\"read\"}", &r);
    CU_ASSERT(str_is(&r, "failed_condition", "mfa_required"));
    CU_ASSERT(str_is(&r, "evaluated.0.conditions.mfa_required", "fail"));
    CU_ASSERT(str_has(&r, "evaluated.0.reason", "without multi-factor"));
    bb_resp_free(&r);
    policy_test(&srv,
                "{\"identity_id\":\"sa:billing\",\"path\":\"mfa/x\",\"permission\":\"read\","
                "\"context\":{\"mfa\":true}}",
                &r);
    CU_ASSERT(json_true(&r, "allowed"));
    bb_resp_free(&r);

    /* Saturday 2026-11-28 05:59 in New York (10:59Z) is inside; 06:00 is not */
    policy_test(&srv,
                "{\"identity_id\":\"sa:billing\",\"path\":\"night/x\",\"permission\":\"read\","
                "\"context\":{\"time\":\"2026-11-28T10:59:00Z\"}}",
                &r);
    CU_ASSERT(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "context.time", "2026-11-28T10:59:00Z"));
    bb_resp_free(&r);
    policy_test(&srv,
                "{\"identity_id\":\"sa:billing\",\"path\":\"night/x\",\"permission\":\"read\","
                "\"context\":{\"time\":\"2026-11-28T11:00:00Z\"}}",
                &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "failed_condition", "time_window_violation"));
    CU_ASSERT(str_has(&r, "evaluated.2.reason", "sat 2026-11-28 06:00 (America/New_York) is outside fri 22:00-06:00"));
    bb_resp_free(&r);
    /* Friday 23:00 (2026-11-28T04:00Z) is inside */
    policy_test(&srv,
                "{\"identity_id\":\"sa:billing\",\"path\":\"night/x\",\"permission\":\"read\","
                "\"context\":{\"time\":\"2026-11-28T04:00:00Z\"}}",
                &r);
    CU_ASSERT(json_true(&r, "allowed"));
    bb_resp_free(&r);
}

static void test_trace_unknown_group(void)
{
    delete_all_policies();
    put_policy("finance", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                          "\"bindings\":{\"groups\":[\"grp_finance\"]}}");
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"app/db/password\",\"permission\":\"read\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "unresolved_groups.0.group", "grp_finance"));
    CU_ASSERT(str_is(&r, "unresolved_groups.0.policy", "finance"));
    CU_ASSERT(str_is(&r, "unresolved_groups.0.fix", "POST /v1/identity/sync?tenant_id=" TEN));
    CU_ASSERT(str_has(&r, "reason", "POST /v1/identity/sync?tenant_id=" TEN));
    bb_resp_free(&r);
}

static void test_trace_direct_binding_and_partner(void)
{
    delete_all_policies();
    put_policy("shared", "{\"rules\":[{\"path\":\"@partner/shared/**\",\"permissions\":[\"read\"]},"
                         "{\"path\":\"**\",\"permissions\":[\"list\"]}]," BIND "}");
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"@partner/shared/certs/ca\",\"permission\":\"read\"}",
                &r);
    CU_ASSERT(json_true(&r, "allowed")); /* a direct binding needs no cache entry */
    CU_ASSERT_FALSE(json_true(&r, "identity.found"));
    CU_ASSERT(str_is(&r, "context.path", "@partner/shared/certs/ca"));
    bb_resp_free(&r);
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"shared/certs/ca\",\"permission\":\"read\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed")); /* the tenant's own shared/... is another secret */
    CU_ASSERT(str_has(&r, "evaluated.0.reason", "partner secrets"));
    bb_resp_free(&r);
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"@partner/other\",\"permission\":\"list\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed")); /* '**' never reaches partner secrets */
    bb_resp_free(&r);
    /* a rule that names write on partner secrets grants nothing: a real write is refused with
     * partner_admin_required before any policy is asked, and the test says the same */
    put_policy("partner-write",
               "{\"rules\":[{\"path\":\"@partner/**\",\"permissions\":[\"read\",\"write\"]}]," BIND "}");
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"@partner/shared/x\",\"permission\":\"write\"}", &r);
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "outcome", "partner_admin_required"));
    CU_ASSERT(str_has(&r, "reason", "partner_admin"));
    CU_ASSERT(bb_json_str(&r, "decision_by") == NULL);
    bb_resp_free(&r);
    policy_test(&srv, "{\"identity_id\":\"sa:billing\",\"path\":\"@partner/shared/x\",\"permission\":\"read\"}", &r);
    CU_ASSERT(json_true(&r, "allowed")); /* the same rule's read still counts */
    bb_resp_free(&r);
    delete_all_policies();
}

/* ---- the client address ---- */

static void test_client_address(void)
{
    delete_all_policies();
    put_policy("net", "{\"rules\":[{\"path\":\"net/**\",\"permissions\":[\"read\"],"
                      "\"conditions\":{\"ip_allow\":[\"203.0.113.0/24\"]}}]," BIND "}");
    const char *q = "{\"identity_id\":\"sa:billing\",\"path\":\"net/x\",\"permission\":\"read\"}";
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    const char *xff[] = {auth, "X-ScaiVault-Tenant: " TEN, "X-Forwarded-For: 203.0.113.7", NULL};
    /* no TRUSTED_PROXIES: X-Forwarded-For is ignored; the socket peer counts */
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req_h(&srv, "POST", "/v1/policies/test", xff, q, strlen(q), &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT(str_is(&r, "context.ip", "127.0.0.1"));
    CU_ASSERT(str_is(&r, "context.ip_source", "request"));
    CU_ASSERT(str_is(&r, "failed_condition", "ip_not_allowed"));
    bb_resp_free(&r);

    /* behind a trusted proxy (the loopback peer) the header is believed */
    bb_server_t px = {0};
    const char *const env[] = {"TRUSTED_PROXIES=127.0.0.0/8,10.0.0.0/8", NULL};
    CU_ASSERT_FATAL(bb_start(&px, env));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", px.token);
    bb_resp_t p;
    CU_ASSERT_FATAL(bb_req(&px, "PUT", "/v1/policies/net", px.token, TEN,
                           "{\"rules\":[{\"path\":\"net/**\",\"permissions\":[\"read\"],\"conditions\":{\"ip_allow\":"
                           "[\"203.0.113.0/24\"]}}]," BIND "}",
                           &p));
    BB_ASSERT_STATUS(&p, 201);
    bb_resp_free(&p);
    CU_ASSERT_FATAL(bb_req_h(&px, "POST", "/v1/policies/test", xff, q, strlen(q), &r));
    CU_ASSERT(str_is(&r, "context.ip", "203.0.113.7"));
    CU_ASSERT(json_true(&r, "allowed"));
    bb_resp_free(&r);
    /* the client's own entry is skipped: only what the trusted proxies added counts */
    const char *spoof[] = {auth, "X-ScaiVault-Tenant: " TEN, "X-Forwarded-For: 203.0.113.7, 198.51.100.9, 10.0.0.2",
                           NULL};
    CU_ASSERT_FATAL(bb_req_h(&px, "POST", "/v1/policies/test", spoof, q, strlen(q), &r));
    CU_ASSERT(str_is(&r, "context.ip", "198.51.100.9"));
    CU_ASSERT(str_is(&r, "failed_condition", "ip_not_allowed"));
    bb_resp_free(&r);
    /* two headers: the last one is the nearest proxy's */
    const char *two[] = {auth, "X-ScaiVault-Tenant: " TEN, "X-Forwarded-For: 203.0.113.7",
                         "X-Forwarded-For: 198.51.100.9", NULL};
    CU_ASSERT_FATAL(bb_req_h(&px, "POST", "/v1/policies/test", two, q, strlen(q), &r));
    CU_ASSERT(str_is(&r, "context.ip", "198.51.100.9"));
    bb_resp_free(&r);
    bb_stop(&px);
    bb_cleanup(&px);
    delete_all_policies();
}

/* ---- needs the identity endpoints (auth) ---- */

/* Whether PUT /v1/identity/... exists on this server. */
static bool identity_endpoints_exist(void)
{
    bb_resp_t r;
    req(&srv, "PUT", "/v1/identity/groups/grp_probe", TEN, "{\"members\":[]}", &r);
    bool exists = !(r.status == 404 && str_is(&r, "error.message", "No such route."));
    bb_resp_free(&r);
    if (!exists)
        fprintf(stderr, "\n  missing PUT /v1/identity/identities/{id} and PUT /v1/identity/groups/{id} ");
    CU_ASSERT(exists);
    return exists;
}

static void test_trace_groups_from_cache(void)
{
    if (!identity_endpoints_exist())
        return;
    delete_all_policies();
    put_policy("finance", "{\"rules\":[{\"path\":\"fin/**\",\"permissions\":[\"read\"]}],"
                          "\"bindings\":{\"groups\":[\"grp_finance\"]}}");
    put_policy("ghost", "{\"rules\":[{\"path\":\"ghost/**\",\"permissions\":[\"read\"]}],"
                        "\"bindings\":{\"groups\":[\"grp_ghost\"]}}");
    /* sa:fin is in grp_finance (known) and grp_ghost (no group record) */
    put_ok("/v1/identity/groups/grp_finance", "{\"members\":[\"sa:fin\"]}");
    put_ok("/v1/identity/identities/sa:fin",
           "{\"type\":\"service_account\",\"groups\":[\"grp_finance\",\"grp_ghost\"]}");
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:fin\",\"path\":\"fin/x\",\"permission\":\"read\"}", &r);
    CU_ASSERT(json_true(&r, "allowed"));
    CU_ASSERT(json_true(&r, "identity.found"));
    CU_ASSERT(str_is(&r, "identity.groups.0", "grp_finance"));
    CU_ASSERT(str_is(&r, "decision_by", "finance"));
    CU_ASSERT(str_is(&r, "evaluated.0.bound_by", "group:grp_finance"));
    bb_resp_free(&r);
    policy_test(&srv, "{\"identity_id\":\"sa:fin\",\"path\":\"ghost/x\",\"permission\":\"read\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "identity.unknown_groups.0", "grp_ghost"));
    CU_ASSERT(str_is(&r, "unresolved_groups.0.group", "grp_ghost"));
    CU_ASSERT(json_true(&r, "unresolved_groups.0.member"));
    /* the binding is listed among the evaluated policies, with the fix */
    const sv_json_t *ev = bb_json(&r, "evaluated");
    bool listed = false;
    for (const sv_json_t *it = ev ? ev->u.kids.first : NULL; it != NULL; it = it->next)
        if (strcmp(sv_json_get_str(it, "policy", NULL), "ghost") == 0) {
            listed = sv_json_get(it, "rule")->type == SV_JSON_NULL &&
                     strstr(sv_json_get_str(it, "fix", NULL), "/v1/identity/sync?tenant_id=" TEN) != NULL;
        }
    CU_ASSERT(listed);
    bb_resp_free(&r);
    delete_all_policies();
}

/* A binding through a group the cache does not know is reported also when the
 * policy is bound to the identity directly. */
static void test_trace_unknown_group_beside_direct_binding(void)
{
    if (!identity_endpoints_exist())
        return;
    delete_all_policies();
    put_policy("both", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                       "\"bindings\":{\"identities\":[\"sa:both\"],\"groups\":[\"grp_unknown\"]}}");
    put_ok("/v1/identity/identities/sa:both", "{\"type\":\"service_account\",\"groups\":[\"grp_unknown\"]}");
    bb_resp_t r;
    policy_test(&srv, "{\"identity_id\":\"sa:both\",\"path\":\"other/x\",\"permission\":\"read\"}", &r);
    CU_ASSERT_FALSE(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "identity.unknown_groups.0", "grp_unknown"));
    CU_ASSERT_EQUAL(bb_json(&r, "evaluated")->u.kids.n, 2);
    CU_ASSERT(str_is(&r, "evaluated.0.bound_by", "identity"));
    CU_ASSERT(str_is(&r, "evaluated.1.policy", "both"));
    CU_ASSERT(str_is(&r, "evaluated.1.bound_by", "group:grp_unknown"));
    CU_ASSERT(str_is(&r, "evaluated.1.fix", "POST /v1/identity/sync?tenant_id=" TEN));
    CU_ASSERT_EQUAL(bb_json(&r, "unresolved_groups")->u.kids.n, 1);
    CU_ASSERT(str_is(&r, "unresolved_groups.0.group", "grp_unknown"));
    CU_ASSERT(str_is(&r, "unresolved_groups.0.policy", "both"));
    CU_ASSERT(json_true(&r, "unresolved_groups.0.member"));
    bb_resp_free(&r);
    /* the direct binding still decides */
    policy_test(&srv, "{\"identity_id\":\"sa:both\",\"path\":\"app/x\",\"permission\":\"read\"}", &r);
    CU_ASSERT(json_true(&r, "allowed"));
    CU_ASSERT(str_is(&r, "decision_by", "both"));
    CU_ASSERT(json_true(&r, "evaluated.0.decisive"));
    CU_ASSERT(str_is(&r, "unresolved_groups.0.group", "grp_unknown"));
    bb_resp_free(&r);
    delete_all_policies();
}

/* ---- needs JWTs from the dev issuer and the secret endpoints ---- */

static bb_server_t dev;

/* Whether the dev issuer and the secret endpoints exist. Starts `dev`. */
static bool enforcement_endpoints_exist(void)
{
    if (dev.pid == 0) {
        const char *const args[] = {"--dev", NULL};
        if (!bb_start_args(&dev, NULL, args, true))
            return false;
    }
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&dev, "GET", "/v1/dev/jwks", NULL, NULL, NULL, &r));
    bool jwks = r.status == 200;
    bb_resp_free(&r);
    CU_ASSERT_FATAL(
        bb_req(&dev, "PUT", "/v1/secrets/app/db/password", dev.token, "tnt_dev", "{\"value\":\"s3cret\"}", &r));
    bool secrets = !(r.status == 404 && str_is(&r, "error.message", "No such route."));
    bb_resp_free(&r);
    /* both are part of the product: their absence fails the test */
    if (!jwks || !secrets)
        fprintf(stderr, "\n  missing %s%s%s ", jwks ? "" : "the dev issuer (GET /v1/dev/jwks)",
                !jwks && !secrets ? " and " : "", secrets ? "" : "PUT /v1/secrets/{path}");
    CU_ASSERT(jwks && secrets);
    return jwks && secrets;
}

/* A JWT from the dev issuer (API.md: scaivault dev-token ...). Fails the test
 * when the command does not give one. */
static bool mint_in(const char *sub, const char *tenant, const char *scope, bool mfa, const char *roles,
                    const char *partner, char *out, size_t cap)
{
    char data[340], listen[64], token[120];
    snprintf(data, sizeof(data), "SCAIVAULT_DATA_DIR=%s", dev.data_dir);
    snprintf(listen, sizeof(listen), "SCAIVAULT_LISTEN=127.0.0.1:%d", dev.port);
    snprintf(token, sizeof(token), "BOOTSTRAP_TOKEN=%s", dev.token);
    const char *const env[] = {data, listen, token, NULL};
    const char *args[14] = {"dev-token", "--sub", sub, "--scope", scope}; /* the rest NULL */
    size_t n_args = 5;
    if (tenant != NULL) {
        args[n_args++] = "--tenant";
        args[n_args++] = tenant;
    }
    if (mfa)
        args[n_args++] = "--mfa";
    if (roles != NULL) {
        args[n_args++] = "--roles";
        args[n_args++] = roles;
    }
    if (partner != NULL) {
        args[n_args++] = "--partner";
        args[n_args++] = partner;
    }
    char text[8192];
    int rc = bb_run(args, env, text, sizeof(text));
    /* the token is the line that starts with "eyJ" */
    char *line = strstr(text, "eyJ");
    if (rc != 0 || line == NULL) {
        fprintf(stderr,
                "\n  `scaivault dev-token` gave no token (exit %d): %.300s\n"
                "  adapt mint() in tests/blackbox/test_authz.c to the dev issuer's command line\n",
                rc, text);
        CU_FAIL("dev-token");
        return false;
    }
    size_t n = strcspn(line, " \r\n\t");
    snprintf(out, cap, "%.*s", (int)n, line);
    return true;
}

static bool mint(const char *sub, const char *scope, bool mfa, char *out, size_t cap)
{
    return mint_in(sub, "tnt_dev", scope, mfa, NULL, NULL, out, cap);
}

static long as(const char *tok, const char *method, const char *path, const char *body, bb_resp_t *r)
{
    CU_ASSERT_FATAL(bb_req(&dev, method, path, tok, NULL, body, r));
    return r->status;
}

static void dev_policy(const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/policies/%s", name);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&dev, body ? "PUT" : "DELETE", path, dev.token, "tnt_dev", body, &r));
    CU_ASSERT(r.status == 200 || r.status == 201 || r.status == 204 || (body == NULL && r.status == 404));
    bb_resp_free(&r);
}

/* The refused request left exactly one audit entry, with its outcome. */
static void expect_audited(const bb_resp_t *denied, int status, const char *code)
{
    char rid[80], q[160];
    CU_ASSERT_PTR_NOT_NULL_FATAL(bb_header(denied, "x-request-id", rid, sizeof(rid)));
    snprintf(q, sizeof(q), "/v1/audit/logs?request_id=%s", rid);
    bb_resp_t a;
    CU_ASSERT_FATAL(bb_req(&dev, "GET", q, dev.token, NULL, NULL, &a));
    BB_ASSERT_STATUS(&a, 200);
    sv_json_t *items = bb_json(&a, "items");
    CU_ASSERT(items != NULL && items->type == SV_JSON_ARRAY && items->u.kids.n == 1);
    int64_t st = 0;
    bool ok = true;
    CU_ASSERT(bb_json_int(&a, "items.0.status", &st) && st == status);
    CU_ASSERT(bb_json_bool(&a, "items.0.success", &ok) && !ok);
    CU_ASSERT(str_is(&a, "items.0.error_code", code));
    CU_ASSERT(str_is(&a, "items.0.identity_id", "sa:app"));
    bb_resp_free(&a);
}

static void expect_denied(const char *tok, const char *method, const char *path, const char *body, const char *reason,
                          const char *failed_condition)
{
    bb_resp_t r;
    as(tok, method, path, body, &r);
    BB_ASSERT_STATUS(&r, 403);
    BB_ASSERT_CODE(&r, "access_denied");
    CU_ASSERT(str_is(&r, "error.details.reason", reason));
    if (failed_condition != NULL)
        CU_ASSERT(str_is(&r, "error.details.failed_condition", failed_condition));
    expect_audited(&r, 403, "access_denied");
    bb_resp_free(&r);
}

/* A token without a tenant_id claim that is not a super admin acts in no
 * tenant: naming one would reach every tenant's grants to its subject (and
 * write its policies), out of reach of that tenant's revocations. */
static void test_tenantless_token(void)
{
    if (!enforcement_endpoints_exist())
        return;
    char tok[4096], admin[4096];
    if (!mint_in("sa:app", NULL, "secrets:read policies:read policies:write", false, NULL, NULL, tok, sizeof(tok)) ||
        !mint_in("sa:app", NULL, "identity:sync", false, "tenant_admin", NULL, admin, sizeof(admin)))
        return;
    dev_policy("tenantless", "{\"rules\":[{\"path\":\"**\",\"permissions\":[\"read\"]}],"
                             "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&dev, "PUT", "/v1/secrets/app/tenantless", dev.token, "tnt_dev", "{\"value\":\"v\"}", &r));
    CU_ASSERT(r.status == 200 || r.status == 201);
    bb_resp_free(&r);
    struct {
        const char *method, *path, *body;
        bool named;
    } cases[] = {
        {"GET", "/v1/secrets/app/tenantless", NULL, true},
        {"GET", "/v1/secrets?prefix=app/", NULL, true},
        {"PUT", "/v1/policies/backdoor",
         "{\"rules\":[{\"path\":\"**\",\"permissions\":[\"read\"]}],\"bindings\":{\"identities\":[\"sa:app\"]}}", true},
        {"GET", "/v1/policies", NULL, false},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
        CU_ASSERT_FATAL(bb_req(&dev, cases[i].method, cases[i].path, tok, cases[i].named ? "tnt_dev" : NULL,
                               cases[i].body, &r));
        if (r.status != 403)
            fprintf(stderr, "\n  %s %s: %ld %.200s", cases[i].method, cases[i].path, r.status, r.body);
        BB_ASSERT_STATUS(&r, 403);
        BB_ASSERT_CODE(&r, "access_denied");
        CU_ASSERT(str_is(&r, "error.details.reason", "tenant_token_required"));
        if (i == 0)
            expect_audited(&r, 403, "access_denied");
        bb_resp_free(&r);
    }
    /* nothing was written, and the token itself still works where no tenant is involved */
    CU_ASSERT_FATAL(bb_req(&dev, "GET", "/v1/policies/backdoor", dev.token, "tnt_dev", NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(as(tok, "GET", "/v1/auth/whoami", NULL, &r), 200);
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "tenant_id"));
    bb_resp_free(&r);
    /* a tenant admin of no tenant: what it lacks is the tenant, on the admin endpoints too */
    CU_ASSERT_EQUAL(as(admin, "POST", "/v1/auth/revocations", "{\"identity_id\":\"sa:x\",\"reason\":\"r\"}", &r), 403);
    CU_ASSERT(str_is(&r, "error.details.reason", "tenant_token_required"));
    bb_resp_free(&r);
    dev_policy("tenantless", NULL);
}

static void test_enforcement(void)
{
    if (!enforcement_endpoints_exist())
        return;
    char rd[4096], rw[4096], rd_mfa[4096], pol[4096];
    if (!mint("sa:app", "secrets:read", false, rd, sizeof(rd)) ||
        !mint("sa:app", "secrets:read secrets:write", false, rw, sizeof(rw)) ||
        !mint("sa:app", "secrets:read", true, rd_mfa, sizeof(rd_mfa)) ||
        !mint("sa:app", "secrets:read", false, pol, sizeof(pol)))
        return;
    const char *secret = "/v1/secrets/app/db/password";
    bb_resp_t r;

    /* scopes first: a read-only token cannot write, whatever the policies say */
    dev_policy("all", "{\"rules\":[{\"path\":\"**\",\"permissions\":[\"read\",\"write\"]}],"
                      "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    as(rd, "PUT", secret, "{\"value\":\"x\"}", &r);
    BB_ASSERT_STATUS(&r, 403);
    BB_ASSERT_CODE(&r, "insufficient_scope");
    CU_ASSERT(str_is(&r, "error.details.required_scope", "secrets:write"));
    expect_audited(&r, 403, "insufficient_scope");
    bb_resp_free(&r);
    as(pol, "GET", "/v1/policies", NULL, &r);
    BB_ASSERT_CODE(&r, "insufficient_scope");
    CU_ASSERT(str_is(&r, "error.details.required_scope", "policies:read"));
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(as(rw, "PUT", secret, "{\"value\":\"x\"}", &r), 200);
    bb_resp_free(&r);
    dev_policy("all", NULL);

    /* no policy; then the product page's '*' vs '**' */
    expect_denied(rd, "GET", secret, NULL, "no_policy_matched", NULL);
    dev_policy("db", "{\"rules\":[{\"path\":\"app/*\",\"permissions\":[\"read\"]}],"
                     "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    expect_denied(rd, "GET", secret, NULL, "no_policy_matched", NULL);
    dev_policy("db", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                     "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    CU_ASSERT_EQUAL(as(rd, "GET", secret, NULL, &r), 200); /* the change counts at once */
    bb_resp_free(&r);
    /* reads succeed but writes don't: the policy grants read only */
    expect_denied(rw, "PUT", secret, "{\"value\":\"y\"}", "no_policy_matched", NULL);

    /* conditions */
    dev_policy("db", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"mfa_required\":true}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    expect_denied(rd, "GET", secret, NULL, "condition_failed", "mfa_required");
    CU_ASSERT_EQUAL(as(rd_mfa, "GET", secret, NULL, &r), 200);
    bb_resp_free(&r);
    dev_policy("db", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"ip_allow\":[\"192.0.2.0/24\"]}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    expect_denied(rd, "GET", secret, NULL, "condition_failed", "ip_not_allowed");
    dev_policy("db", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"],"
                     "\"conditions\":{\"ip_allow\":[\"127.0.0.0/8\"]}}],\"bindings\":{\"identities\":[\"sa:app\"]}}");
    CU_ASSERT_EQUAL(as(rd, "GET", secret, NULL, &r), 200);
    bb_resp_free(&r);
    /* a window of one minute, twelve hours away from now, never holds now */
    int64_t now = sv_now_s() + 12 * 3600;
    char tw[512];
    snprintf(tw, sizeof(tw),
             "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"],\"conditions\":{\"time_window\":"
             "{\"start\":\"%02d:%02d\",\"end\":\"%02d:%02d\",\"timezone\":\"UTC\"}}}],"
             "\"bindings\":{\"identities\":[\"sa:app\"]}}",
             (int)(now / 3600 % 24), (int)(now / 60 % 60), (int)((now + 60) / 3600 % 24), (int)((now + 60) / 60 % 60));
    dev_policy("db", tw);
    expect_denied(rd, "GET", secret, NULL, "condition_failed", "time_window_violation");

    /* explicit deny wins */
    dev_policy("db", "{\"rules\":[{\"path\":\"app/**\",\"permissions\":[\"read\"]}],"
                     "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    dev_policy("freeze", "{\"rules\":[{\"path\":\"app/db/**\",\"permissions\":[\"read\"],\"effect\":\"deny\"}],"
                         "\"bindings\":{\"identities\":[\"sa:app\"]}}");
    expect_denied(rd, "GET", secret, NULL, "explicit_deny", NULL);
    dev_policy("freeze", NULL);
    CU_ASSERT_EQUAL(as(rd, "GET", secret, NULL, &r), 200);
    bb_resp_free(&r);

    /* partner secrets: only partner admins write */
    expect_denied(rw, "PUT", "/v1/partner/secrets/shared/x", "{\"value\":\"y\"}", "partner_admin_required", NULL);
    dev_policy("db", NULL);
    /* a token of one partner that names another: refused, and the entry names what it asked for */
    char globex[4096], auth[4200];
    CU_ASSERT_FATAL(mint_in("sa:app", "tnt_dev", "secrets:read", false, NULL, "globex", globex, sizeof(globex)));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", globex);
    const char *h[] = {auth, "X-ScaiVault-Partner: acme", NULL};
    CU_ASSERT_FATAL(bb_req_h(&dev, "GET", "/v1/partner/secrets/shared/k", h, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 403);
    CU_ASSERT(str_is(&r, "error.details.reason", "partner_mismatch"));
    char rid[80], q[160];
    CU_ASSERT_PTR_NOT_NULL_FATAL(bb_header(&r, "x-request-id", rid, sizeof(rid)));
    bb_resp_free(&r);
    snprintf(q, sizeof(q), "/v1/audit/logs?request_id=%s", rid);
    CU_ASSERT_FATAL(bb_req(&dev, "GET", q, dev.token, NULL, NULL, &r));
    CU_ASSERT(str_is(&r, "items.0.path", "partner:acme/shared/k"));
    bb_resp_free(&r);
}

static void test_enforcement_cleanup(void)
{
    if (dev.pid != 0) {
        bb_stop(&dev);
        bb_cleanup(&dev);
    }
}

void sv_bb_suite_authz(void)
{
    CU_pSuite s = CU_add_suite("blackbox/authz", suite_init, suite_clean);
    CU_add_test(s, "crud", test_crud);
    CU_add_test(s, "list_pagination", test_list_pagination);
    CU_add_test(s, "tenants", test_tenants);
    CU_add_test(s, "auth_errors", test_auth_errors);
    CU_add_test(s, "validation_errors", test_validation_errors);
    CU_add_test(s, "policy_test_errors", test_policy_test_errors);
    CU_add_test(s, "trace_identity_not_found", test_trace_identity_not_found);
    CU_add_test(s, "trace_path_mismatch", test_trace_path_mismatch);
    CU_add_test(s, "trace_permission", test_trace_permission);
    CU_add_test(s, "trace_explicit_deny", test_trace_explicit_deny);
    CU_add_test(s, "trace_conditions", test_trace_conditions);
    CU_add_test(s, "trace_unknown_group", test_trace_unknown_group);
    CU_add_test(s, "trace_direct_binding_and_partner", test_trace_direct_binding_and_partner);
    CU_add_test(s, "client_address", test_client_address);
    CU_add_test(s, "trace_groups_from_cache", test_trace_groups_from_cache);
    CU_add_test(s, "trace_unknown_group_beside_direct_binding", test_trace_unknown_group_beside_direct_binding);
    CU_add_test(s, "enforcement", test_enforcement);
    CU_add_test(s, "tenantless_token", test_tenantless_token);
    CU_add_test(s, "enforcement_cleanup", test_enforcement_cleanup);
}
