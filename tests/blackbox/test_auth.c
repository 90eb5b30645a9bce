/* tests/blackbox/test_auth.c - authentication through the real binary against
 * a real OpenID Connect provider (tests/peers/oidc): valid RS256/ES256 tokens,
 * the 401 codes of the product page, an attack suite, key rotation, ScaiKey
 * outages, revocations, the bootstrap super-admin promotion, the bootstrap
 * token's hygiene, and the --dev issuer with `scaivault dev-token`. */
#include "sv_autoconf.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <unistd.h>

#include "src/buf.h"
#include "src/jwt.h"
#include "tests/blackbox/bb.h"
#include "tests/blackbox/oidc.h"

static bb_oidc_t peer;
static bb_server_t srv;

static int suite_init(void)
{
    memset(&srv, 0, sizeof(srv));
    return bb_oidc_start(&peer) && bb_oidc_server_start(&peer, &srv, "BOOTSTRAP_SUPER_ADMIN=user:admin@acme.example")
               ? 0
               : 1;
}

static int suite_clean(void)
{
    bb_oidc_stop_all(&peer, &srv);
    return 0;
}

/* ---- helpers ---- */

static long whoami(bb_server_t *s, const char *token, bb_resp_t *r)
{
    if (!bb_req(s, "GET", "/v1/auth/whoami", token, NULL, NULL, r))
        return 0;
    return r->status;
}

/* status and code of whoami with token */
static void expect_401(bb_server_t *s, const char *token, const char *code, int line)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(s, "GET", "/v1/auth/whoami", token, NULL, NULL, &r));
    const char *c = bb_json_str(&r, "error.code");
    if (r.status != 401 || c == NULL || strcmp(c, code) != 0)
        fprintf(stderr, "\n  line %d: want 401 %s, got %ld %.300s\n", line, code, r.status, r.body);
    CU_ASSERT_EQUAL(r.status, 401);
    CU_ASSERT(c != NULL && strcmp(c, code) == 0);
    char wa[256];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "www-authenticate", wa, sizeof(wa)));
    CU_ASSERT_PTR_NOT_NULL(strstr(wa, "error=\"invalid_token\""));
    bb_resp_free(&r);
}
#define EXPECT_401(s, tok, code) expect_401((s), (tok), (code), __LINE__)

static void expect_ok(bb_server_t *s, const char *token, int line)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(s, "GET", "/v1/auth/whoami", token, NULL, NULL, &r));
    if (r.status != 200)
        fprintf(stderr, "\n  line %d: want 200, got %ld %.300s\n", line, r.status, r.body);
    CU_ASSERT_EQUAL(r.status, 200);
    bb_resp_free(&r);
}
#define EXPECT_OK(s, tok) expect_ok((s), (tok), __LINE__)

/* A claims object for sa:app with the given time offsets and overrides. */
static char *claims(const char *iss, const char *aud, long exp_off, const char *extra)
{
    static char buf[2048];
    long now = (long)time(NULL);
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"sa:app\",\"tenant_id\":\"tnt_a\",\"scope\":\"secrets:read\","
             "\"iat\":%ld,\"exp\":%ld,\"jti\":\"crafted-%ld\"%s}",
             iss, aud, now, now + exp_off, (long)random(), extra ? extra : "");
    return buf;
}

/* b64url(header) "." b64url(payload) "." b64url(sig) */
static char *compact(const char *header, const char *payload, const void *sig, size_t sig_len)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_b64url_append(&b, header, strlen(header));
    sv_buf_putc(&b, '.');
    sv_b64url_append(&b, payload, strlen(payload));
    sv_buf_putc(&b, '.');
    sv_b64url_append(&b, sig, sig_len);
    sv_buf_putc(&b, 0);
    return (char *)b.base;
}

static int count_in_log(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* ---- tests ---- */

/* scaivault_token_cache_requests_total{result=...} now, or -1. */
static long long cache_metric(const char *result)
{
    bb_resp_t r;
    if (!bb_req(&srv, "GET", "/v1/metrics", srv.token, NULL, NULL, &r))
        return -1;
    char pat[96];
    snprintf(pat, sizeof(pat), "scaivault_token_cache_requests_total{result=\"%s\"} ", result);
    const char *p = r.body != NULL ? strstr(r.body, pat) : NULL;
    long long v = p != NULL ? atoll(p + strlen(pat)) : -1;
    bb_resp_free(&r);
    return v;
}

static void test_valid_tokens(void)
{
    bb_oidc_reset(&peer);
    char *t = bb_oidc_token(&peer, "sa:app", "secrets:read secrets:write");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    bb_resp_t r;
    CU_ASSERT_EQUAL(whoami(&srv, t, &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "identity_id"), "sa:app");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "identity_type"), "service_account");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "tenant_id"), "tnt_a");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "scopes.0"), "secrets:read");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "scopes.1"), "secrets:write");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "groups.0"), "grp_finance");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "token.issuer"), peer.url);
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "token.jti"));
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "token.expires_at"));
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "token.issued_at"));
    bool mfa = true;
    CU_ASSERT(bb_json_bool(&r, "mfa", &mfa) && !mfa);
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "partner_id"));
    bb_resp_free(&r);
    long long hits0 = cache_metric("hit"), misses0 = cache_metric("miss");
    EXPECT_OK(&srv, t); /* the cached path */
    free(t);
    /* the cache's counters (api.md: scaivault_token_cache_requests_total) */
    t = bb_oidc_token(&peer, "sa:app", "secrets:read");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    EXPECT_OK(&srv, t);
    EXPECT_OK(&srv, t);
    free(t);
    CU_ASSERT(cache_metric("hit") >= hits0 + 2);
    CU_ASSERT(cache_metric("miss") >= misses0 + 1);

    /* ES256, and the claims of another client */
    bb_oidc_control(&peer, "/control/state", "{\"sign_kid\":\"es-1\"}", NULL, 0);
    t = bb_oidc_token(&peer, "sa:ops", "identity:sync");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(whoami(&srv, t, &r), 200);
    CU_ASSERT(bb_json_bool(&r, "mfa", &mfa) && mfa);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "roles.0"), "tenant_admin");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "partner_id"), "ptn_1");
    bb_resp_free(&r);
    free(t);
    bb_oidc_reset(&peer);
}

/* The product page: "Every request is 401". */
static void test_401_codes(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/auth/whoami", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    BB_ASSERT_CODE(&r, "authentication_required");
    char wa[256];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "www-authenticate", wa, sizeof(wa)));
    CU_ASSERT_STRING_EQUAL(wa, "Bearer realm=\"scaivault\"");
    bb_resp_free(&r);
    const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/auth/whoami", basic, NULL, 0, &r));
    BB_ASSERT_CODE(&r, "token_invalid");
    bb_resp_free(&r);

    char *t = bb_oidc_sign(&peer, "rs-1", claims(peer.url, "scaivault", -120, NULL), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    EXPECT_401(&srv, t, "token_expired");
    free(t);
    /* within the 60 s leeway */
    t = bb_oidc_sign(&peer, "rs-1", claims(peer.url, "scaivault", -20, NULL), NULL);
    EXPECT_OK(&srv, t);
    free(t);
    /* "a prod token against staging": another issuer */
    t = bb_oidc_sign(&peer, "rs-1", claims("https://scaikey.staging.example", "scaivault", 300, NULL), NULL);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
}

static void test_attacks(void)
{
    bb_oidc_reset(&peer);
    char *good = bb_oidc_token(&peer, "sa:app", "secrets:read");
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    const char *payload = claims(peer.url, "scaivault", 300, NULL);
    char *t;

    /* alg none */
    t = compact("{\"alg\":\"none\",\"kid\":\"rs-1\"}", payload, "", 0);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    /* HS256 keyed with the RSA public key (PEM and JWK text) */
    char keys[8192];
    CU_ASSERT_EQUAL_FATAL(bb_oidc_control(&peer, "/control/keys", "{}", keys, sizeof(keys)), 200);
    sv_json_doc_t *kd;
    sv_json_error_t je;
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(keys, strlen(keys), false, &kd, &je), SV_JSON_OK);
    size_t pem_len;
    const char *pem = sv_json_get_str(sv_json_root(kd), "rsa_public_pem", &pem_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
    {
        sv_buf_t in;
        sv_buf_init(&in, false);
        const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rs-1\"}";
        sv_b64url_append(&in, hdr, strlen(hdr));
        sv_buf_putc(&in, '.');
        sv_b64url_append(&in, payload, strlen(payload));
        uint8_t mac[32];
        unsigned ml = 0;
        HMAC(EVP_sha256(), pem, (int)pem_len, in.base, in.len, mac, &ml);
        sv_buf_putc(&in, '.');
        sv_b64url_append(&in, mac, ml);
        sv_buf_putc(&in, 0);
        EXPECT_401(&srv, (const char *)in.base, "token_invalid");
        sv_buf_free(&in);
    }
    sv_json_doc_free(kd);
    /* the kid of another key: RS256 signature, kid of the EC key; and the reverse */
    t = bb_oidc_sign(&peer, "rs-1", payload, "{\"kid\":\"es-1\"}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    t = bb_oidc_sign(&peer, "es-1", payload, "{\"kid\":\"rs-1\"}");
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    /* a key that is not published (rs-2) under a published kid */
    t = bb_oidc_sign(&peer, "rs-2", payload, "{\"kid\":\"rs-1\"}");
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    /* expired, future nbf, wrong iss, wrong aud, aud array without us */
    t = bb_oidc_sign(&peer, "rs-1", claims(peer.url, "scaivault", -3600, NULL), NULL);
    EXPECT_401(&srv, t, "token_expired");
    free(t);
    char nbf[64];
    snprintf(nbf, sizeof(nbf), ",\"nbf\":%ld", (long)time(NULL) + 600);
    t = bb_oidc_sign(&peer, "rs-1", claims(peer.url, "scaivault", 3600, nbf), NULL);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    t = bb_oidc_sign(&peer, "es-1", claims("http://127.0.0.1:1", "scaivault", 300, NULL), NULL);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    t = bb_oidc_sign(&peer, "es-1", claims(peer.url, "another-api", 300, NULL), NULL);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    /* claims of the wrong type */
    t = bb_oidc_sign(&peer, "rs-1", "{\"iss\":\"x\",\"exp\":\"tomorrow\"}", NULL);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    /* an empty or null tenant_id / partner_id is refused (not read as "none"),
     * with a message that names the claim; leaving the claim out is fine */
    const struct {
        const char *ids, *claim;
    } bad_ids[] = {
        {",\"tenant_id\":\"\"", "tenant_id"},
        {",\"tenant_id\":null", "tenant_id"},
        {",\"tenant_id\":\"tnt_a\",\"partner_id\":\"\"", "partner_id"},
        {",\"tenant_id\":\"tnt_a\",\"partner_id\":null", "partner_id"},
        {"", NULL},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(bad_ids); i++) {
        char body[512];
        long now = (long)time(NULL);
        snprintf(body, sizeof(body),
                 "{\"iss\":\"%s\",\"aud\":\"scaivault\",\"sub\":\"sa:app\",\"scope\":\"secrets:read\",\"iat\":%ld,"
                 "\"exp\":%ld,\"jti\":\"ids-%zu\"%s}",
                 peer.url, now, now + 300, i, bad_ids[i].ids);
        t = bb_oidc_sign(&peer, "rs-1", body, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        if (bad_ids[i].claim == NULL) {
            EXPECT_OK(&srv, t);
            free(t);
            continue;
        }
        EXPECT_401(&srv, t, "token_invalid");
        bb_resp_t r;
        CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/auth/whoami", t, NULL, NULL, &r));
        const char *msg = bb_json_str(&r, "error.message");
        if (msg == NULL || strstr(msg, bad_ids[i].claim) == NULL)
            fprintf(stderr, "\n  %s: message %s does not name %s\n", bad_ids[i].ids, msg ? msg : "(none)",
                    bad_ids[i].claim);
        CU_ASSERT(msg != NULL && strstr(msg, bad_ids[i].claim) != NULL);
        bb_resp_free(&r);
        free(t);
    }
    /* truncated, bad base64 */
    size_t gl = strlen(good);
    char *cut = strndup(good, gl - 7);
    EXPECT_401(&srv, cut, "token_invalid");
    cut[gl / 2] = 0;
    EXPECT_401(&srv, cut, "token_invalid");
    free(cut);
    char *bad64 = strdup(good);
    char *dot = strchr(bad64, '.');
    dot[5] = '*';
    EXPECT_401(&srv, bad64, "token_invalid");
    free(bad64);
    /* a 16 KiB header */
    char *hdr = malloc(17000);
    int hl = snprintf(hdr, 17000, "{\"alg\":\"RS256\",\"kid\":\"rs-1\",\"x\":\"");
    memset(hdr + hl, 'A', 16384);
    strcpy(hdr + hl + 16384, "\"}");
    t = compact(hdr, payload, "sig", 3);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    free(hdr);
    /* a JSON bomb in the payload: 5000 nested arrays */
    char *bomb = malloc(10100);
    int bl = snprintf(bomb, 10100, "{\"a\":");
    for (int i = 0; i < 5000; i++)
        bomb[bl++] = '[';
    for (int i = 0; i < 5000; i++)
        bomb[bl++] = ']';
    strcpy(bomb + bl, "}");
    t = compact("{\"alg\":\"RS256\",\"kid\":\"rs-1\"}", bomb, "sig", 3);
    EXPECT_401(&srv, t, "token_invalid");
    free(t);
    free(bomb);
    /* a token over 16 KiB in total, and garbage */
    char *huge = malloc(40000);
    memset(huge, 'a', 39999);
    huge[39999] = 0;
    huge[100] = '.';
    huge[200] = '.';
    EXPECT_401(&srv, huge, "token_invalid");
    free(huge);
    EXPECT_401(&srv, "...", "token_invalid");
    EXPECT_401(&srv, "a.b.c", "token_invalid");
    /* still standing, and the genuine token still works */
    CU_ASSERT(bb_alive(&srv));
    EXPECT_OK(&srv, good);
    free(good);
}

static void test_rotation_new_kid(void)
{
    bb_oidc_reset(&peer);
    char *t1 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_OK(&srv, t1);
    /* ScaiKey publishes es-2 and signs with it: accepted without a restart */
    bb_oidc_control(&peer, "/control/state", "{\"sign_kid\":\"es-2\",\"published\":[\"rs-1\",\"es-1\",\"es-2\"]}",
                    NULL, 0);
    char *t2 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
    EXPECT_OK(&srv, t2);
    EXPECT_OK(&srv, t1);
    /* another unknown kid right after: refreshes are rate-limited (30 s), so
     * this one fails at once instead of waiting */
    bb_oidc_control(&peer, "/control/state", "{\"sign_kid\":\"rs-2\"}", NULL, 0);
    char *t3 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_401(&srv, t3, "token_invalid");
    free(t1);
    free(t2);
    free(t3);
    bb_oidc_reset(&peer);
}

static void test_rotation_removed_kid(void)
{
    bb_oidc_reset(&peer);
    bb_server_t s = {0};
    const char *env[] = {peer.env_issuer, "SCAIKEY_JWKS_REFRESH_INTERVAL=1s", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    char *t1 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_OK(&s, t1);
    /* rs-1 is withdrawn: after the next refresh its tokens are refused, even
     * the one already verified and cached */
    bb_oidc_control(&peer, "/control/state", "{\"sign_kid\":\"es-1\",\"published\":[\"es-1\"]}", NULL, 0);
    long st = 0;
    for (int i = 0; i < 100 && st != 401; i++) {
        bb_resp_t r;
        st = whoami(&s, t1, &r);
        bb_resp_free(&r);
        if (st != 401)
            usleep(100000);
    }
    CU_ASSERT_EQUAL(st, 401);
    EXPECT_401(&s, t1, "token_invalid");
    char *t2 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_OK(&s, t2);
    free(t1);
    free(t2);
    bb_stop(&s);
    bb_cleanup(&s);
    bb_oidc_reset(&peer);
}

static void test_scaikey_down(void)
{
    bb_oidc_reset(&peer);
    bb_server_t s = {0};
    const char *env[] = {peer.env_issuer, NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    char *t1 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_OK(&s, t1);
    bb_resp_t h;
    int64_t age = -2;
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/health/detailed", s.token, NULL, NULL, &h));
    CU_ASSERT(bb_json_int(&h, "dependencies.scaikey.jwks_age_s", &age) && age >= 0 && age < 60);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&h, "dependencies.scaikey.status"), "ok");
    bb_resp_free(&h);
    bb_oidc_control(&peer, "/control/state", "{\"down\":true}", NULL, 0);
    /* keys already held keep working: cached tokens and new ones */
    EXPECT_OK(&s, t1);
    char *t2 = bb_oidc_token(&peer, "sa:ops", "secrets:read");
    EXPECT_OK(&s, t2);
    /* an unknown kid cannot be learned while ScaiKey is down */
    char *t3 = bb_oidc_sign(&peer, "es-2", claims(peer.url, "scaivault", 300, NULL), NULL);
    EXPECT_401(&s, t3, "token_invalid");
    CU_ASSERT(bb_alive(&s));
    /* health tells: the last refresh failed, the keys held are still this old */
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/health/detailed", s.token, NULL, NULL, &h));
    CU_ASSERT(bb_json_int(&h, "dependencies.scaikey.jwks_age_s", &age) && age >= 0);
    const char *sk = bb_json_str(&h, "dependencies.scaikey.status");
    CU_ASSERT(sk != NULL && strcmp(sk, "ok") != 0);
    bb_resp_free(&h);
    bb_stop(&s);
    bb_cleanup(&s);

    /* started while ScaiKey is down: comes up, refuses tokens, then learns the
     * keys as soon as ScaiKey is back */
    memset(&s, 0, sizeof(s));
    CU_ASSERT_FATAL(bb_start(&s, env));
    EXPECT_401(&s, t1, "token_invalid");
    bb_oidc_control(&peer, "/control/state", "{\"down\":false}", NULL, 0);
    long st = 0;
    for (int i = 0; i < 100 && st != 200; i++) { /* a failed refresh is retried after a short back-off */
        bb_resp_t r;
        st = whoami(&s, t2, &r);
        bb_resp_free(&r);
        if (st != 200)
            usleep(100000);
    }
    CU_ASSERT_EQUAL(st, 200);
    free(t1);
    free(t2);
    free(t3);
    bb_stop(&s);
    bb_cleanup(&s);
    bb_oidc_reset(&peer);
}

static char *jti_of(bb_server_t *s, const char *token)
{
    bb_resp_t r;
    whoami(s, token, &r);
    const char *j = bb_json_str(&r, "token.jti");
    char *out = j ? strdup(j) : NULL;
    bb_resp_free(&r);
    return out;
}

static long post_revocation(bb_server_t *s, const char *token, const char *body, bb_resp_t *r)
{
    if (!bb_req(s, "POST", "/v1/auth/revocations", token, NULL, body, r))
        return 0;
    return r->status;
}

static void test_revocations(void)
{
    bb_oidc_reset(&peer);
    char *app1 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    char *ops = bb_oidc_token(&peer, "sa:ops", "secrets:read");     /* tenant admin of tnt_a */
    char *other = bb_oidc_token(&peer, "sa:other", "secrets:read"); /* tenant admin of tnt_b */
    CU_ASSERT_FATAL(app1 && ops && other);
    char *jti = jti_of(&srv, app1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(jti);
    char body[512];
    bb_resp_t r;
    /* not an admin */
    snprintf(body, sizeof(body), "{\"jti\":\"%s\",\"reason\":\"leaked\"}", jti);
    CU_ASSERT_EQUAL(post_revocation(&srv, app1, body, &r), 403);
    BB_ASSERT_CODE(&r, "access_denied");
    bb_resp_free(&r);
    /* bad bodies */
    const char *bad[] = {"{\"reason\":\"x\"}", "{\"jti\":\"a\",\"identity_id\":\"sa:x\",\"reason\":\"x\"}",
                         "{\"jti\":\"a\"}", "{\"jti\":\"a\",\"reason\":\"x\",\"expires_at\":\"2001-01-01T00:00:00Z\"}",
                         "{\"jti\":\"a\",\"reason\":\"x\",\"extra\":1}", "{\"identity_id\":\"nocolon\",\"reason\":\"x\"}",
                         "{\"jti\":7,\"reason\":\"x\"}"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        CU_ASSERT_EQUAL(post_revocation(&srv, ops, bad[i], &r), 400);
        BB_ASSERT_CODE(&r, "invalid_request");
        bb_resp_free(&r);
    }
    /* by jti */
    CU_ASSERT_EQUAL(post_revocation(&srv, ops, body, &r), 201);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "jti"), jti);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "tenant_id"), "tnt_a");
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "expires_at"));
    char first_expiry[40] = "";
    if (bb_json_str(&r, "expires_at") != NULL)
        snprintf(first_expiry, sizeof(first_expiry), "%s", bb_json_str(&r, "expires_at"));
    bb_resp_free(&r);
    EXPECT_401(&srv, app1, "token_revoked");
    /* revoked again with a sooner expiry: the later one stays, in memory and
     * in storage alike (checked after the restart below, when the sooner
     * one has passed) */
    char again[512];
    snprintf(again, sizeof(again), "{\"jti\":\"%s\",\"reason\":\"again\",\"expires_at\":%lld}", jti,
             (long long)time(NULL) + 2);
    CU_ASSERT_EQUAL(post_revocation(&srv, ops, again, &r), 201);
    CU_ASSERT(bb_json_str(&r, "expires_at") != NULL && strcmp(bb_json_str(&r, "expires_at"), first_expiry) == 0);
    bb_resp_free(&r);
    char *app2 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_OK(&srv, app2);
    /* by identity, from another tenant's admin: scoped to tnt_b, no effect here */
    CU_ASSERT_EQUAL(post_revocation(&srv, other, "{\"identity_id\":\"sa:app\",\"reason\":\"x\"}", &r), 201);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "tenant_id"), "tnt_b");
    bb_resp_free(&r);
    EXPECT_OK(&srv, app2);
    /* by identity in tnt_a: every token issued so far */
    CU_ASSERT_EQUAL(post_revocation(&srv, ops, "{\"identity_id\":\"sa:app\",\"reason\":\"offboarded\"}", &r), 201);
    bb_resp_free(&r);
    EXPECT_401(&srv, app2, "token_revoked");
    sleep(1); /* iat has one-second resolution; a token of the same second counts as before */
    char *app3 = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_OK(&srv, app3);
    /* the bootstrap token (a super admin) may revoke too */
    CU_ASSERT_EQUAL(post_revocation(&srv, srv.token, "{\"jti\":\"some-other\",\"reason\":\"x\",\"expires_at\":3999999999}", &r),
                    400); /* more than a year ahead */
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(post_revocation(&srv, srv.token, "{\"jti\":\"some-other\",\"reason\":\"x\"}", &r), 201);
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "tenant_id")); /* every tenant */
    bb_resp_free(&r);
    /* revocations survive a restart */
    sleep(2); /* past the sooner expiry given above */
    CU_ASSERT_EQUAL(bb_stop(&srv), 0);
    CU_ASSERT_FATAL(bb_oidc_server_start(&peer, &srv, "BOOTSTRAP_SUPER_ADMIN=user:admin@acme.example"));
    EXPECT_401(&srv, app1, "token_revoked");
    EXPECT_401(&srv, app2, "token_revoked");
    EXPECT_OK(&srv, app3);
    free(jti);
    free(app1);
    free(app2);
    free(app3);
    free(ops);
    free(other);
}

/* How many audit entries with action (all tenants, as the bootstrap token);
 * *first gets the newest one's identity_id. */
static int audited(const char *action, char *first, size_t cap)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/audit/logs?action=%s&limit=100", action);
    bb_resp_t r;
    if (!bb_req(&srv, "GET", path, srv.token, NULL, NULL, &r) || r.status != 200) {
        fprintf(stderr, "\n  audit query: %ld %.300s\n", r.status, r.body ? r.body : "");
        bb_resp_free(&r);
        return -1;
    }
    sv_json_t *items = bb_json(&r, "items");
    int n = items != NULL && items->type == SV_JSON_ARRAY ? (int)items->u.kids.n : -1;
    const char *id = bb_json_str(&r, "items.0.identity_id");
    if (first != NULL)
        snprintf(first, cap, "%s", id ? id : "");
    bb_resp_free(&r);
    return n;
}

/* The product page: "Bootstrap super-admin flow is broken". */
static void test_bootstrap_promotion(void)
{
    bb_oidc_reset(&peer);
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_a\",\"users\":[{\"id\":\"u-ann\",\"userName\":\"ann@acme.example\"}]}", NULL, 0);
    char *u1 = bb_oidc_token(&peer, "user:admin@acme.example", "secrets:read");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u1);
    bb_resp_t r;
    /* signs in before the cache knows them: skipped, audited, no super admin */
    CU_ASSERT_EQUAL(whoami(&srv, u1, &r), 200);
    CU_ASSERT_PTR_NULL(bb_json_str(&r, "roles.0"));
    bb_resp_free(&r);
    CU_ASSERT(count_in_log(srv.log_path, "\"event\":\"identity_promotion_skipped\"") >= 1);
    CU_ASSERT_EQUAL(count_in_log(srv.log_path, "\"event\":\"identity_promoted\""), 0);
    char who[128];
    CU_ASSERT_EQUAL(audited("identity_promotion_skipped", who, sizeof(who)), 1);
    CU_ASSERT_STRING_EQUAL(who, "user:admin@acme.example");
    CU_ASSERT_EQUAL(audited("identity_promoted", NULL, 0), 0);
    /* a second sign-in a moment later is not audited again (once a minute) */
    EXPECT_OK(&srv, u1);
    CU_ASSERT_EQUAL(count_in_log(srv.log_path, "\"event\":\"identity_promotion_skipped\""), 1);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/identity/groups", u1, "tnt_b", NULL, &r));
    BB_ASSERT_STATUS(&r, 403);
    bb_resp_free(&r);

    /* the fix from the page: sync, then sign in again */
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_a\",\"users\":[{\"id\":\"u-ann\",\"userName\":\"ann@acme.example\"},"
                    "{\"id\":\"u-admin\",\"userName\":\"admin@acme.example\"}]}",
                    NULL, 0);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/identity/sync?tenant_id=tnt_a", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    int64_t users = 0;
    CU_ASSERT(bb_json_int(&r, "users", &users) && users == 2);
    bb_resp_free(&r);
    char *u2 = bb_oidc_token(&peer, "user:admin@acme.example", "secrets:read");
    CU_ASSERT_EQUAL(whoami(&srv, u2, &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "roles.0"), "super_admin");
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(count_in_log(srv.log_path, "\"event\":\"identity_promoted\""), 1);
    CU_ASSERT_EQUAL(audited("identity_promoted", who, sizeof(who)), 1);
    CU_ASSERT_STRING_EQUAL(who, "user:admin@acme.example");
    CU_ASSERT(audited("identity_sync", NULL, 0) >= 1);
    /* once: more requests, another sync, the old token: no second promotion */
    EXPECT_OK(&srv, u2);
    EXPECT_OK(&srv, u1);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/identity/sync?tenant_id=tnt_a", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(whoami(&srv, u2, &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "roles.0"), "super_admin"); /* the role survives a sync */
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(count_in_log(srv.log_path, "\"event\":\"identity_promoted\""), 1);
    CU_ASSERT_EQUAL(audited("identity_promoted", NULL, 0), 1);
    /* a super admin acts in any tenant */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/identity/groups", u2, "tnt_b", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/identity/identities/user:admin@acme.example", srv.token, "tnt_a", NULL,
                           &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "roles.0"), "super_admin");
    bb_resp_free(&r);
    /* deactivated by the directory: the promoted super admin is denied
     * everything, in its own tenant and in any other */
    bb_oidc_control(&peer, "/control/directory",
                    "{\"tenant\":\"tnt_a\",\"users\":[{\"id\":\"u-ann\",\"userName\":\"ann@acme.example\"},"
                    "{\"id\":\"u-admin\",\"userName\":\"admin@acme.example\",\"active\":false}]}",
                    NULL, 0);
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/identity/sync?tenant_id=tnt_a", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    const char *tenants[] = {NULL, "tnt_b"};
    for (size_t i = 0; i < SV_ARRAY_LEN(tenants); i++) {
        CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/identity/groups", u2, tenants[i], NULL, &r));
        BB_ASSERT_STATUS(&r, 403);
        if (i == 0)
            CU_ASSERT(bb_json_str(&r, "error.details.reason") != NULL &&
                      strcmp(bb_json_str(&r, "error.details.reason"), "identity_inactive") == 0);
        bb_resp_free(&r);
    }
    free(u1);
    free(u2);
}

static void test_bootstrap_token_never_logged(void)
{
    bb_resp_t r;
    CU_ASSERT_EQUAL(whoami(&srv, srv.token, &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "identity_type"), "bootstrap");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "roles.0"), "super_admin");
    bb_resp_free(&r);
    char bad[128];
    snprintf(bad, sizeof(bad), "%sX", srv.token); /* a near miss is logged as a failure, not echoed */
    EXPECT_401(&srv, bad, "token_invalid");
    CU_ASSERT_FALSE(bb_file_contains_str(srv.log_path, srv.token));
    CU_ASSERT_FALSE(bb_dir_contains(srv.data_dir, srv.token, strlen(srv.token)));
}

static void test_dev_issuer(void)
{
    bb_server_t d = {0};
    const char *args[] = {"--dev", NULL};
    CU_ASSERT_FATAL(bb_start_args(&d, NULL, args, true));
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&d, "GET", "/v1/dev/jwks", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "keys.0.alg"), "ES256");
    bb_resp_free(&r);
    /* the banner tells the newcomer the exact command */
    CU_ASSERT(bb_file_contains_str(d.log_path, "scaivault dev-token --data-dir "));
    char out[4096];
    const char *cmd[] = {"dev-token", "--data-dir", d.data_dir, "--sub", "sa:app", "--tenant", "tnt_dev", "--scope",
                         "secrets:read secrets:write", "--ttl", "10m", "--mfa", "--groups", "grp_a,grp_b", "--roles",
                         "tenant_admin", "--partner", "ptn_9", NULL};
    CU_ASSERT_EQUAL_FATAL(bb_run(cmd, NULL, out, sizeof(out)), 0);
    out[strcspn(out, "\n")] = 0;
    CU_ASSERT_EQUAL(whoami(&d, out, &r), 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "identity_id"), "sa:app");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "tenant_id"), "tnt_dev");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "scopes.1"), "secrets:write");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "groups.1"), "grp_b");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "roles.0"), "tenant_admin");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "partner_id"), "ptn_9");
    bool mfa = false;
    CU_ASSERT(bb_json_bool(&r, "mfa", &mfa) && mfa);
    bb_resp_free(&r);
    /* the audit log has no policies in front of it: a token without a tenant
     * that is not a super admin reads no tenant's part, a tenant's token its own */
    char tok_a[2048], tok_none[2048];
    const char *cmd_a[] = {"dev-token", "--data-dir", d.data_dir, "--sub", "sa:aud", "--tenant", "tnt_dev",
                           "--scope", "audit:read", NULL};
    const char *cmd_none[] = {"dev-token", "--data-dir", d.data_dir, "--sub", "sa:aud", "--scope", "audit:read", NULL};
    CU_ASSERT_EQUAL_FATAL(bb_run(cmd_a, NULL, tok_a, sizeof(tok_a)), 0);
    CU_ASSERT_EQUAL_FATAL(bb_run(cmd_none, NULL, tok_none, sizeof(tok_none)), 0);
    tok_a[strcspn(tok_a, "\n")] = 0;
    tok_none[strcspn(tok_none, "\n")] = 0;
    CU_ASSERT_FATAL(bb_req(&d, "GET", "/v1/audit/logs?limit=5", tok_a, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&d, "GET", "/v1/audit/logs?limit=5", tok_none, "tnt_dev", NULL, &r));
    BB_ASSERT_STATUS(&r, 403);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.reason"), "tenant_token_required");
    bb_resp_free(&r);
    /* a tenant's token that tried another tenant: its own tenant's admins see the attempt */
    char auth_a[2100];
    snprintf(auth_a, sizeof(auth_a), "Authorization: Bearer %s", tok_a);
    const char *other[] = {auth_a, "X-ScaiVault-Tenant: tnt_other", "X-Request-ID: bb-mismatch-1", NULL};
    CU_ASSERT_FATAL(bb_req_h(&d, "GET", "/v1/audit/logs?limit=5", other, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 403);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.reason"), "tenant_mismatch");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&d, "GET", "/v1/audit/logs?request_id=bb-mismatch-1", tok_a, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    const char *ec = bb_json_str(&r, "items.0.error_code"), *et = bb_json_str(&r, "items.0.tenant_id");
    CU_ASSERT(ec != NULL && strcmp(ec, "access_denied") == 0);
    CU_ASSERT(et != NULL && strcmp(et, "tnt_dev") == 0);
    bb_resp_free(&r);
    /* the dev token means nothing to a server that is not that dev server */
    EXPECT_401(&srv, out, "token_invalid");
    /* and ScaiKey tokens mean nothing to a dev server without SCAIKEY_ISSUER */
    char *sk = bb_oidc_token(&peer, "sa:app", "secrets:read");
    EXPECT_401(&d, sk, "token_invalid");
    free(sk);
    /* usage errors */
    const char *nosub[] = {"dev-token", "--data-dir", d.data_dir, NULL};
    CU_ASSERT_EQUAL(bb_run(nosub, NULL, out, sizeof(out)), 2);
    const char *badrole[] = {"dev-token", "--data-dir", d.data_dir, "--sub", "sa:x", "--roles", "super_admin", NULL};
    CU_ASSERT_EQUAL(bb_run(badrole, NULL, out, sizeof(out)), 2);
    const char *badgroup[] = {"dev-token", "--data-dir", d.data_dir, "--sub", "sa:x", "--groups", "ops,bad group!", NULL};
    CU_ASSERT_EQUAL(bb_run(badgroup, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--groups takes group ids"));
    const char *nodir[] = {"dev-token", "--data-dir", "/nonexistent/dir", "--sub", "sa:x", NULL};
    CU_ASSERT_EQUAL(bb_run(nodir, NULL, out, sizeof(out)), 1);
    /* the JWKS route exists only in --dev */
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/dev/jwks", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    bb_resp_free(&r);
    bb_stop(&d);
    bb_cleanup(&d);
}

void sv_bb_suite_auth(void)
{
    CU_pSuite s = CU_add_suite("blackbox/auth", suite_init, suite_clean);
    CU_add_test(s, "valid_tokens", test_valid_tokens);
    CU_add_test(s, "401_codes", test_401_codes);
    CU_add_test(s, "attacks", test_attacks);
    CU_add_test(s, "rotation_new_kid", test_rotation_new_kid);
    CU_add_test(s, "rotation_removed_kid", test_rotation_removed_kid);
    CU_add_test(s, "scaikey_down", test_scaikey_down);
    CU_add_test(s, "revocations", test_revocations);
    CU_add_test(s, "bootstrap_promotion", test_bootstrap_promotion);
    CU_add_test(s, "bootstrap_token_never_logged", test_bootstrap_token_never_logged);
    CU_add_test(s, "dev_issuer", test_dev_issuer);
}
