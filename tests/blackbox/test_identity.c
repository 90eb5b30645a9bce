/* tests/blackbox/test_identity.c - the identity cache through the real binary:
 * SCIM sync from the ScaiKey stand-in (tests/peers/oidc: a real
 * client-credentials token, a paged SCIM 2.0 directory), replacement on
 * re-sync, manual entries, permissions, errors, and the periodic sync. */
#include "sv_autoconf.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "src/idsync.h"
#include "src/scheduler.h"
#include "tests/audit_tamper.h"
#include "tests/blackbox/bb.h"
#include "tests/blackbox/oidc.h"

static bb_oidc_t peer;
static bb_server_t srv;

static int suite_init(void)
{
    memset(&srv, 0, sizeof(srv));
    return bb_oidc_start(&peer) && bb_oidc_server_start(&peer, &srv, "IDENTITY_SYNC_INTERVAL=10s") ? 0 : 1;
}

static int suite_clean(void)
{
    bb_oidc_stop_all(&peer, &srv);
    return 0;
}

static const char *directory_v1 =
    "{\"tenant\":\"tnt_a\",\"users\":["
    "{\"id\":\"u1\",\"userName\":\"ann@acme.example\",\"displayName\":\"Ann\"},"
    "{\"id\":\"u2\",\"userName\":\"bob@acme.example\"},"
    "{\"id\":\"u3\",\"userName\":\"carol@acme.example\",\"active\":false},"
    "{\"id\":\"s1\",\"userName\":\"billing\",\"userType\":\"service_account\"},"
    "{\"id\":\"s2\",\"userName\":\"reports\",\"userType\":\"service_account\"}],"
    "\"groups\":["
    "{\"id\":\"grp_finance\",\"displayName\":\"Finance\",\"members\":[\"u1\",\"s1\",\"nobody\"]},"
    "{\"id\":\"grp_ops\",\"members\":[\"u2\"]},"
    "{\"id\":\"grp_empty\"}]}";

static const char *directory_other_tenant =
    "{\"tenant\":\"tnt_b\",\"users\":[{\"id\":\"b1\",\"userName\":\"zed@b.example\"}],"
    "\"groups\":[{\"id\":\"grp_b\",\"members\":[\"b1\"]}]}";

static long sync_tenant(const char *token, const char *tenant, bb_resp_t *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/identity/sync?tenant_id=%s", tenant);
    if (!bb_req(&srv, "POST", path, token, NULL, NULL, r))
        return 0;
    return r->status;
}

static long get(const char *path, const char *token, const char *tenant, bb_resp_t *r)
{
    if (!bb_req(&srv, "GET", path, token, tenant, NULL, r))
        return 0;
    return r->status;
}

static void test_sync(void)
{
    bb_oidc_control(&peer, "/control/directory", directory_v1, NULL, 0);
    bb_oidc_control(&peer, "/control/directory", directory_other_tenant, NULL, 0);
    bb_resp_t r;
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "tnt_a", &r), 200);
    int64_t n = -1;
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "tenant_id"), "tnt_a");
    CU_ASSERT(bb_json_int(&r, "users", &n) && n == 3);
    CU_ASSERT(bb_json_int(&r, "service_accounts", &n) && n == 2);
    CU_ASSERT(bb_json_int(&r, "groups", &n) && n == 3);
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "started_at"));
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "finished_at"));
    bb_resp_free(&r);

    CU_ASSERT_EQUAL(get("/v1/identity/identities/sa:billing", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "type"), "service_account");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "scim");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "groups.0"), "grp_finance");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:ann@acme.example", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "type"), "user");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "display_name"), "Ann");
    bb_resp_free(&r);
    bool active = true;
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:carol@acme.example", srv.token, "tnt_a", &r), 200);
    CU_ASSERT(bb_json_bool(&r, "active", &active) && !active);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups/grp_finance", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "display_name"), "Finance");
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "members.1"));
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "members.2")); /* "nobody" is not a user of the tenant */
    bb_resp_free(&r);
    /* tnt_b's entries were not copied into tnt_a */
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:zed@b.example", srv.token, "tnt_a", &r), 404);
    BB_ASSERT_CODE(&r, "not_found");
    bb_resp_free(&r);

    /* the list, paginated */
    CU_ASSERT_EQUAL(get("/v1/identity/groups?limit=2", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.id"), "grp_empty");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.1.id"), "grp_finance");
    const char *cur = bb_json_str(&r, "next_cursor");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
    char path[512];
    snprintf(path, sizeof(path), "/v1/identity/groups?limit=2&cursor=%s", cur);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get(path, srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.id"), "grp_ops");
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "items.1.id"));
    sv_json_t *nc = bb_json(&r, "next_cursor");
    CU_ASSERT(nc != NULL && nc->type == SV_JSON_NULL);
    bb_resp_free(&r);
    /* a bad cursor is 400 invalid_request on "cursor", as on /v1/policies: not
     * base64url, too long for any group id, a bad escape, empty */
    char long_cursor[401];
    memset(long_cursor, 'A', 400);
    long_cursor[400] = 0;
    const char *bad_cursors[] = {"!!", long_cursor, "%zz", ""};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad_cursors); i++) {
        for (int policies = 0; policies < 2; policies++) {
            snprintf(path, sizeof(path), "%s?cursor=%s", policies ? "/v1/policies" : "/v1/identity/groups",
                     bad_cursors[i]);
            CU_ASSERT_EQUAL(get(path, srv.token, "tnt_a", &r), 400);
            BB_ASSERT_CODE(&r, "invalid_request");
            const char *field = bb_json_str(&r, "error.details.field");
            if (field == NULL || strcmp(field, "cursor") != 0)
                fprintf(stderr, "\n  %.60s: field %s, want cursor\n", path, field ? field : "(none)");
            CU_ASSERT(field != NULL && strcmp(field, "cursor") == 0);
            bb_resp_free(&r);
        }
    }
    /* limit: 1 to 1000, digits only (the shared list parameter) */
    const char *bad_limits[] = {"0", "1001", "+5", "5x", "", "%205"};
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
        snprintf(path, sizeof(path), "/v1/identity/groups?limit=%s", bad_limits[i]);
        CU_ASSERT_EQUAL(get(path, srv.token, "tnt_a", &r), 400);
        const char *field = bb_json_str(&r, "error.details.field");
        CU_ASSERT(field != NULL && strcmp(field, "limit") == 0);
        bb_resp_free(&r);
    }
    CU_ASSERT_EQUAL(get("/v1/identity/groups?limit=1000", srv.token, "tnt_a", &r), 200);
    bb_resp_free(&r);
}

/* A tenant admin's token of tnt_a for sub, signed by the peer's key. */
static char *admin_token(const char *sub)
{
    char payload[512];
    long now = (long)time(NULL);
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"%s\",\"aud\":\"scaivault\",\"sub\":\"%s\",\"tenant_id\":\"tnt_a\","
             "\"roles\":[\"tenant_admin\"],\"scope\":\"identity:sync secrets:read audit:read\",\"iat\":%ld,"
             "\"exp\":%ld,\"jti\":\"inactive-%ld\"}",
             peer.url, sub, now, now + 300, (long)random());
    return bb_oidc_sign(&peer, "rs-1", payload, NULL);
}

/* An identity that the directory deactivated is denied everything, also
 * what its token's roles would allow (policies.md), so it cannot undo its
 * own deactivation through the identity endpoints. */
static void test_inactive_identity_denied(void)
{
    bb_oidc_reset(&peer);
    bb_oidc_control(&peer, "/control/directory", directory_v1, NULL, 0);
    bb_resp_t r;
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "tnt_a", &r), 200);
    bb_resp_free(&r);
    char *ann = admin_token("user:ann@acme.example"), *carol = admin_token("user:carol@acme.example");
    CU_ASSERT_FATAL(ann != NULL && carol != NULL);
    const char *paths[] = {"/v1/identity/groups", "/v1/identity/identities/user:carol@acme.example",
                           "/v1/audit/logs?limit=1"};
    for (size_t i = 0; i < SV_ARRAY_LEN(paths); i++) {
        CU_ASSERT_EQUAL(get(paths[i], ann, NULL, &r), 200); /* the same token of an active identity */
        bb_resp_free(&r);
        CU_ASSERT_EQUAL(get(paths[i], carol, NULL, &r), 403);
        BB_ASSERT_CODE(&r, "access_denied");
        CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.reason"), "identity_inactive");
        bb_resp_free(&r);
    }
    CU_ASSERT_EQUAL(sync_tenant(carol, "tnt_a", &r), 403);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.reason"), "identity_inactive");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/identity/identities/user:carol@acme.example", carol, NULL,
                           "{\"type\":\"user\",\"groups\":[\"grp_finance\"]}", &r));
    BB_ASSERT_STATUS(&r, 403);
    bb_resp_free(&r);
    bool active = true;
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:carol@acme.example", srv.token, "tnt_a", &r), 200);
    CU_ASSERT(bb_json_bool(&r, "active", &active) && !active);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "scim");
    bb_resp_free(&r);
    /* policies/test says what a real request meets first: the identity's state, also for a
     * change to a partner secret (which no policy grants anyway) */
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/policies/test", srv.token, "tnt_a",
                           "{\"identity_id\":\"user:carol@acme.example\",\"path\":\"@partner/x\","
                           "\"permission\":\"write\"}",
                           &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "outcome"), "identity_inactive");
    bb_resp_free(&r);
    free(ann);
    free(carol);
}

static void test_resync_replaces_and_keeps_manual(void)
{
    bb_resp_t r;
    /* manual entries, kept by hand */
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/identity/identities/sa:legacy", srv.token, "tnt_a",
                           "{\"type\":\"service_account\",\"groups\":[\"grp_manual\"],\"display_name\":\"Legacy\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "manual");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/identity/groups/grp_manual", srv.token, "tnt_a",
                           "{\"members\":[\"sa:legacy\",\"user:ann@acme.example\"]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    /* ids may hold '/': reachable as written and percent-encoded */
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/identity/identities/sa:ops/deploy", srv.token, "tnt_a",
                           "{\"type\":\"service_account\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/sa:ops%2Fdeploy", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "id"), "sa:ops/deploy");
    bb_resp_free(&r);
    /* the directory drops bob and grp_ops, moves ann out of finance */
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_a\",\"users\":["
                    "{\"id\":\"u1\",\"userName\":\"ann@acme.example\"},"
                    "{\"id\":\"s1\",\"userName\":\"billing\",\"userType\":\"service_account\"}],"
                    "\"groups\":[{\"id\":\"grp_finance\",\"members\":[\"s1\"]}]}",
                    NULL, 0);
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "tnt_a", &r), 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:bob@acme.example", srv.token, "tnt_a", &r), 404);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups/grp_ops", srv.token, "tnt_a", &r), 404);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:ann@acme.example", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "groups.0"), "grp_manual"); /* no longer in grp_finance */
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "groups.1"));
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/sa:legacy", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "manual");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "display_name"), "Legacy");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups/grp_manual", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "manual");
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "members.1"));
    bb_resp_free(&r);
}

static void test_permissions_and_validation(void)
{
    bb_oidc_reset(&peer);
    char *app = bb_oidc_token(&peer, "sa:app", "identity:sync secrets:read"); /* tnt_a, no admin role */
    char *ops = bb_oidc_token(&peer, "sa:ops", "identity:sync");              /* tenant admin of tnt_a */
    char *ops_noscope = bb_oidc_token(&peer, "sa:ops", "secrets:read");
    char *other = bb_oidc_token(&peer, "sa:other", "identity:sync");          /* tenant admin of tnt_b */
    CU_ASSERT_FATAL(app && ops && ops_noscope && other);
    bb_resp_t r;
    CU_ASSERT_EQUAL(sync_tenant(app, "tnt_a", &r), 403);
    BB_ASSERT_CODE(&r, "access_denied");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(sync_tenant(ops_noscope, "tnt_a", &r), 403);
    BB_ASSERT_CODE(&r, "insufficient_scope");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.required_scope"), "identity:sync");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(sync_tenant(other, "tnt_a", &r), 403);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(sync_tenant(ops, "tnt_a", &r), 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(sync_tenant(other, "tnt_b", &r), 200);
    int64_t n = 0;
    CU_ASSERT(bb_json_int(&r, "users", &n) && n == 1);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups", app, NULL, &r), 403);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups", ops_noscope, NULL, &r), 200); /* its own tenant */
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups", ops_noscope, "tnt_b", &r), 403);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "bad%20tenant", &r), 400);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/identity/sync", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "tenant_required");
    bb_resp_free(&r);

    const struct {
        const char *path, *body, *field;
    } bad[] = {
        {"/v1/identity/identities/sa:x", "{\"type\":\"robot\"}", "type"},
        {"/v1/identity/identities/sa:x", "{\"groups\":[]}", "type"},
        {"/v1/identity/identities/sa:x", "{\"type\":\"service_account\",\"groups\":[\"bad group\"]}", "groups"},
        {"/v1/identity/identities/sa:x", "{\"type\":\"service_account\",\"groups\":\"grp\"}", "groups"},
        {"/v1/identity/identities/sa:x", "{\"type\":\"service_account\",\"colour\":\"red\"}", "colour"},
        {"/v1/identity/identities/nocolon", "{\"type\":\"user\"}", "id"},
        /* the type follows the id's prefix */
        {"/v1/identity/identities/sa:z", "{\"type\":\"user\"}", "type"},
        {"/v1/identity/identities/user:z", "{\"type\":\"service_account\"}", "type"},
        {"/v1/identity/groups/grp_x", "{}", "members"},
        {"/v1/identity/groups/grp_x", "{\"members\":[\"nocolon\"]}", "members"},
        {"/v1/identity/groups/bad%20id", "{\"members\":[]}", "id"},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        CU_ASSERT_FATAL(bb_req(&srv, "PUT", bad[i].path, srv.token, "tnt_a", bad[i].body, &r));
        BB_ASSERT_STATUS(&r, 400);
        BB_ASSERT_CODE(&r, "invalid_request");
        const char *field = bb_json_str(&r, "error.details.field");
        if (field == NULL || strcmp(field, bad[i].field) != 0)
            fprintf(stderr, "\n  PUT %s %s: field %s, want %s\n", bad[i].path, bad[i].body, field ? field : "(none)",
                    bad[i].field);
        CU_ASSERT(field != NULL && strcmp(field, bad[i].field) == 0);
        bb_resp_free(&r);
    }
    /* an id with another prefix takes either type */
    CU_ASSERT_FATAL(
        bb_req(&srv, "PUT", "/v1/identity/identities/svc:z", srv.token, "tnt_a", "{\"type\":\"user\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(
        bb_req(&srv, "PUT", "/v1/identity/identities/sa:z", srv.token, "tnt_a", "{\"type\":\"service_account\"}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/identity/groups/grp_x", app, NULL, "{\"members\":[]}", &r));
    BB_ASSERT_STATUS(&r, 403);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", "/v1/identity/groups/grp_x", ops, NULL, "{\"members\":[\"sa:app\"]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    free(app);
    free(ops);
    free(ops_noscope);
    free(other);
}

/* PUT 200 or, for an entry the directory keeps, 409 conflict directory_managed. */
static void put_entry(const char *path, const char *body, long want)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "PUT", path, srv.token, "tnt_m", body, &r));
    BB_ASSERT_STATUS(&r, want);
    if (want == 409) {
        BB_ASSERT_CODE(&r, "conflict");
        const char *reason = bb_json_str(&r, "error.details.reason");
        CU_ASSERT(reason != NULL && strcmp(reason, "directory_managed") == 0);
        const char *msg = bb_json_str(&r, "error.message");
        CU_ASSERT(msg != NULL && strstr(msg, "managed by the identity directory") != NULL);
    } else {
        CU_ASSERT(bb_json_str(&r, "source") != NULL && strcmp(bb_json_str(&r, "source"), "manual") == 0);
    }
    bb_resp_free(&r);
}

/* A manual PUT never turns a directory entry into a manual one: that would
 * undo a deactivation in the directory, and later syncs would leave it. */
static void test_directory_entries_refuse_manual_put(void)
{
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_m\",\"users\":["
                    "{\"id\":\"m1\",\"userName\":\"alice@m.example\",\"active\":false},"
                    "{\"id\":\"m2\",\"userName\":\"deploy\",\"userType\":\"service_account\"}],"
                    "\"groups\":[{\"id\":\"grp_m\",\"members\":[\"m1\",\"m2\"]}]}",
                    NULL, 0);
    bb_resp_t r;
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "tnt_m", &r), 200);
    bb_resp_free(&r);
    put_entry("/v1/identity/identities/user:alice@m.example", "{\"type\":\"user\",\"groups\":[\"grp_m\"]}", 409);
    put_entry("/v1/identity/identities/sa:deploy", "{\"type\":\"service_account\"}", 409);
    put_entry("/v1/identity/groups/grp_m", "{\"members\":[\"user:alice@m.example\"]}", 409);
    bool active = true;
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:alice@m.example", srv.token, "tnt_m", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "scim");
    CU_ASSERT(bb_json_bool(&r, "active", &active) && !active);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/groups/grp_m", srv.token, "tnt_m", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "source"), "scim");
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "members.1"));
    bb_resp_free(&r);
    /* the refusal is audited with its status */
    CU_ASSERT_EQUAL(get("/v1/audit/logs?action=identity_write", srv.token, "tnt_m", &r), 200);
    int64_t status = 0;
    CU_ASSERT(bb_json_int(&r, "items.0.status", &status) && status == 409);
    bb_resp_free(&r);
    /* once the directory no longer has them, they may be kept by hand */
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_m\",\"users\":[{\"id\":\"m1\",\"userName\":\"alice@m.example\","
                    "\"active\":false}]}",
                    NULL, 0);
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "tnt_m", &r), 200);
    bb_resp_free(&r);
    put_entry("/v1/identity/identities/sa:deploy", "{\"type\":\"service_account\"}", 200);
    put_entry("/v1/identity/groups/grp_m", "{\"members\":[\"sa:deploy\"]}", 200);
    put_entry("/v1/identity/identities/user:alice@m.example", "{\"type\":\"user\"}", 409);
}

static void test_directory_errors(void)
{
    bb_resp_t r;
    /* a wrong client secret: the token endpoint refuses; 502 names the cause */
    bb_server_t s = {0};
    const char *env[] = {peer.env_issuer, peer.env_directory, "SCAIKEY_CLIENT_ID=scaivault-sync",
                         "SCAIKEY_CLIENT_SECRET=wrong", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    CU_ASSERT_FATAL(bb_req(&s, "POST", "/v1/identity/sync?tenant_id=tnt_a", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 502);
    BB_ASSERT_CODE(&r, "backend_error");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.reason"), "directory_sync_failed");
    bb_resp_free(&r);
    CU_ASSERT_FALSE(bb_file_contains_str(s.log_path, "secret-sync"));
    bb_stop(&s);
    bb_cleanup(&s);
    /* no directory configured */
    memset(&s, 0, sizeof(s));
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    CU_ASSERT_FATAL(bb_req(&s, "POST", "/v1/identity/sync?tenant_id=tnt_a", s.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 503);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.reason"), "directory_not_configured");
    bb_resp_free(&r);
    /* manual entries work without a directory */
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/identity/identities/user:solo@x.example", s.token, "tnt_z",
                           "{\"type\":\"user\",\"groups\":[\"grp_solo\"]}", &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/identity/identities/user:solo@x.example", s.token, "tnt_z", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "groups.0"), "grp_solo");
    bb_resp_free(&r);
    bb_stop(&s);
    bb_cleanup(&s);
    /* a directory URL without the client credentials is a configuration error */
    char out[2048];
    const char *cmd[] = {"server", NULL};
    const char *env2[] = {peer.env_issuer, peer.env_directory, "SCAIVAULT_LISTEN=127.0.0.1:0",
                          "SCAIVAULT_DATA_DIR=/tmp/sv-never", NULL};
    CU_ASSERT_EQUAL(bb_run(cmd, env2, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SCAIKEY_CLIENT_ID"));
}

/* Polls for up to 30 s until the identity shows up in tnt_a. */
static long wait_for_identity(const char *id)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/identity/identities/%s", id);
    long st = 0;
    for (int i = 0; i < 300 && st != 200; i++) {
        bb_resp_t r;
        st = get(path, srv.token, "tnt_a", &r);
        bb_resp_free(&r);
        if (st != 200)
            usleep(100000);
    }
    return st;
}

/* Whether the store holds tenant's periodic-sync timer (read beside the
 * running server). */
static bool sync_timer(const char *tenant)
{
    sv_store_t *st = sv_tamper_open(srv.data_dir);
    if (st == NULL)
        return false;
    sv_store_reader_t *rd;
    sv_txn_t *txn;
    int64_t due = 0;
    sv_err_t err = sv_store_reader_new(st, &rd);
    if (err == SV_OK) {
        if ((err = sv_store_read_begin(rd, &txn)) == SV_OK) {
            err = sv_scheduler_lookup(txn, SV_IDSYNC_KIND, tenant, &due);
            sv_store_read_end(rd);
        }
        sv_store_reader_free(rd);
    }
    sv_store_close(st);
    return err == SV_OK && due > 0;
}

/* A tenant whose only state is its identity cache and sync timer is still a
 * tenant to delete; deleting it empties the cache and stops the sync. */
static void test_tenant_delete_stops_sync(void)
{
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_d\",\"users\":[{\"id\":\"d1\",\"userName\":\"dee@d.example\"}]}", NULL, 0);
    bb_resp_t r;
    CU_ASSERT_EQUAL(sync_tenant(srv.token, "tnt_d", &r), 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:dee@d.example", srv.token, "tnt_d", &r), 200);
    bb_resp_free(&r);
    CU_ASSERT_TRUE(sync_timer("tnt_d"));
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/tenants/tnt_d", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "status"), "deleted");
    int64_t n = 0;
    CU_ASSERT(bb_json_int(&r, "records_deleted", &n) && n >= 1);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(get("/v1/identity/identities/user:dee@d.example", srv.token, "tnt_d", &r), 404);
    bb_resp_free(&r);
    CU_ASSERT_FALSE(sync_timer("tnt_d"));
    CU_ASSERT_TRUE(sync_timer("tnt_a")); /* another tenant's sync goes on */
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/tenants/tnt_d", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404); /* nothing left */
    bb_resp_free(&r);
}

static void test_periodic_sync(void)
{
    /* tnt_a has synced before, so the periodic sync (every 10 s here) picks up
     * a directory change without anyone asking */
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_a\",\"users\":[{\"id\":\"u9\",\"userName\":\"newcomer@acme.example\"}]}", NULL,
                    0);
    CU_ASSERT_EQUAL(wait_for_identity("user:newcomer@acme.example"), 200);
    /* audited as the periodic sync */
    bb_resp_t r;
    CU_ASSERT_EQUAL(
        get("/v1/audit/logs?action=identity_sync&identity_id=system:identity-sync", srv.token, "tnt_a", &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.tenant_id"), "tnt_a");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "items.0.path"), "tnt_a");
    bb_resp_free(&r);
    /* the timer is stored: after a restart the periodic sync goes on */
    CU_ASSERT_EQUAL(bb_stop(&srv), 0);
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_a\",\"users\":[{\"id\":\"u10\",\"userName\":\"after-restart@acme.example\"}]}",
                    NULL, 0);
    CU_ASSERT_FATAL(bb_oidc_server_start(&peer, &srv, "IDENTITY_SYNC_INTERVAL=10s"));
    CU_ASSERT_EQUAL(wait_for_identity("user:after-restart@acme.example"), 200);
}

void sv_bb_suite_identity(void)
{
    CU_pSuite s = CU_add_suite("blackbox/identity", suite_init, suite_clean);
    CU_add_test(s, "sync", test_sync);
    CU_add_test(s, "inactive_identity_denied", test_inactive_identity_denied);
    CU_add_test(s, "resync_replaces_and_keeps_manual", test_resync_replaces_and_keeps_manual);
    CU_add_test(s, "permissions_and_validation", test_permissions_and_validation);
    CU_add_test(s, "directory_entries_refuse_manual_put", test_directory_entries_refuse_manual_put);
    CU_add_test(s, "directory_errors", test_directory_errors);
    CU_add_test(s, "tenant_delete_stops_sync", test_tenant_delete_stops_sync);
    CU_add_test(s, "periodic_sync", test_periodic_sync);
}
