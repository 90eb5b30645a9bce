/* tests/src/test_jwt.c - JWT parsing, signatures and claims (src/jwt.c), key
 * sets (src/jwks.c) and the verified-token cache (src/tokencache.c). */
#include "sv_autoconf.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>

#include "src/jwks.h"
#include "src/jwt.h"
#include "src/tokencache.h"
#include "tests/unit.h"

static EVP_PKEY *rsa_key, *ec_key, *rsa_key2;

static int setup(void)
{
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return rsa_key && ec_key && rsa_key2 ? 0 : 1;
}

static int teardown(void)
{
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_key2);
    EVP_PKEY_free(ec_key);
    return 0;
}

/* A JWK (public) of key, parsed back as a verifier would. */
static sv_jwk_t jwk_of(EVP_PKEY *key, const char *kid, sv_jwt_alg_t alg)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    CU_ASSERT_EQUAL(sv_jwk_write(key, kid, alg, &b), SV_OK);
    sv_json_doc_t *doc;
    sv_json_error_t je;
    CU_ASSERT_EQUAL(sv_json_parse(b.base, b.len, false, &doc, &je), SV_JSON_OK);
    sv_jwk_t k;
    char why[160];
    CU_ASSERT_EQUAL(sv_jwk_parse(sv_json_root(doc), &k, why, sizeof(why)), SV_OK);
    sv_json_doc_free(doc);
    sv_buf_free(&b);
    return k;
}

static char *claims(int64_t exp_off, const char *extra)
{
    static char buf[4096];
    int64_t now = sv_now_s();
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"https://id.test\",\"aud\":[\"other\",\"scaivault\"],\"sub\":\"sa:billing\",\"exp\":%lld,"
             "\"iat\":%lld,\"jti\":\"j1\",\"tenant_id\":\"tnt_a\",\"scope\":\"secrets:read audit:read bogus:x\","
             "\"groups\":[\"grp_finance\",\"grp b\"],\"amr\":[\"pwd\",\"mfa\"],\"roles\":[\"tenant_admin\","
             "\"super_admin\"],\"partner_id\":\"ptn_1\"%s}",
             (long long)(now + exp_off), (long long)now, extra ? extra : "");
    return buf;
}

static char *sign(EVP_PKEY *key, sv_jwt_alg_t alg, const char *kid, const char *payload)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    CU_ASSERT_EQUAL(sv_jwt_sign(key, alg, kid, payload, strlen(payload), &b), SV_OK);
    sv_buf_putc(&b, 0);
    return (char *)b.base;
}

/* header.payload.sig with raw parts (for attacks) */
static char *raw_token(const char *header, const char *payload, const void *sig, size_t sig_len)
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

static const sv_jwt_expect_t *expect(void)
{
    static sv_jwt_expect_t e;
    e = (sv_jwt_expect_t){.issuer = "https://id.test", .audience = "scaivault", .now = sv_now_s()};
    return &e;
}

/* parse + verify with key + claims */
static sv_jwt_status_t check(const char *tok, const sv_jwk_t *key, sv_principal_t *p)
{
    sv_jwt_t t;
    sv_jwt_status_t st = sv_jwt_parse(tok, strlen(tok), &t);
    if (st != SV_JWT_OK)
        return st;
    st = sv_jwt_verify(&t, key);
    if (st == SV_JWT_OK)
        st = sv_jwt_claims(&t, expect(), p);
    sv_jwt_free(&t);
    return st;
}

static void test_valid_rs256_es256(void)
{
    sv_jwk_t rk = jwk_of(rsa_key, "r1", SV_JWT_ALG_RS256), ek = jwk_of(ec_key, "e1", SV_JWT_ALG_ES256);
    sv_principal_t p;
    char *t1 = sign(rsa_key, SV_JWT_ALG_RS256, "r1", claims(300, NULL));
    CU_ASSERT_EQUAL(check(t1, &rk, &p), SV_JWT_OK);
    CU_ASSERT_STRING_EQUAL(p.identity_id, "sa:billing");
    CU_ASSERT_STRING_EQUAL(p.identity_type, "service_account");
    CU_ASSERT_STRING_EQUAL(p.tenant_id, "tnt_a");
    CU_ASSERT_STRING_EQUAL(p.partner_id, "ptn_1");
    CU_ASSERT_STRING_EQUAL(p.jti, "j1");
    CU_ASSERT_STRING_EQUAL(p.issuer, "https://id.test");
    CU_ASSERT_EQUAL(p.scopes, SV_SCOPE_SECRETS_READ | SV_SCOPE_AUDIT_READ);
    CU_ASSERT_STRING_EQUAL(p.scope_text, "secrets:read audit:read bogus:x");
    CU_ASSERT_EQUAL(p.n_groups, 1); /* "grp b" is not a group id */
    CU_ASSERT_STRING_EQUAL(p.groups[0], "grp_finance");
    CU_ASSERT(p.mfa);
    CU_ASSERT_EQUAL(p.roles, SV_ROLE_TENANT_ADMIN); /* super_admin never comes from a token */
    CU_ASSERT(p.expires_at > p.issued_at);
    char *t2 = sign(ec_key, SV_JWT_ALG_ES256, "e1", claims(300, NULL));
    CU_ASSERT_EQUAL(check(t2, &ek, &p), SV_JWT_OK);
    /* the wrong key of the right type */
    sv_jwk_t rk2 = jwk_of(rsa_key2, "r2", SV_JWT_ALG_RS256);
    CU_ASSERT_EQUAL(check(t1, &rk2, &p), SV_JWT_BAD_SIGNATURE);
    /* alg mismatch: an ES256 token checked with an RSA key and vice versa */
    CU_ASSERT_EQUAL(check(t2, &rk, &p), SV_JWT_KEY_MISMATCH);
    CU_ASSERT_EQUAL(check(t1, &ek, &p), SV_JWT_KEY_MISMATCH);
    /* a flipped signature byte */
    size_t l = strlen(t2);
    t2[l - 3] = t2[l - 3] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(check(t2, &ek, &p), SV_JWT_BAD_SIGNATURE);
    free(t1);
    free(t2);
    EVP_PKEY_free(rk.pkey);
    EVP_PKEY_free(rk2.pkey);
    EVP_PKEY_free(ek.pkey);
}

static void test_attacks(void)
{
    sv_jwk_t rk = jwk_of(rsa_key, "r1", SV_JWT_ALG_RS256);
    sv_principal_t p;
    sv_jwt_t t;
    const char *c = claims(300, NULL);
    char *none = raw_token("{\"alg\":\"none\",\"kid\":\"r1\"}", c, "", 0);
    CU_ASSERT_EQUAL(sv_jwt_parse(none, strlen(none), &t), SV_JWT_BAD_ALG);
    char *none2 = raw_token("{\"alg\":\"None\"}", c, "", 0);
    CU_ASSERT_EQUAL(sv_jwt_parse(none2, strlen(none2), &t), SV_JWT_BAD_ALG);
    /* HS256 keyed with the RSA public key's JWK text */
    char *hs = raw_token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", c, "x", 1);
    CU_ASSERT_EQUAL(sv_jwt_parse(hs, strlen(hs), &t), SV_JWT_BAD_ALG);
    char *noalg = raw_token("{\"kid\":\"r1\"}", c, "x", 1);
    CU_ASSERT_EQUAL(sv_jwt_parse(noalg, strlen(noalg), &t), SV_JWT_BAD_ALG);
    char *crit = raw_token("{\"alg\":\"RS256\",\"crit\":[\"exp\"]}", c, "x", 1);
    CU_ASSERT_EQUAL(sv_jwt_parse(crit, strlen(crit), &t), SV_JWT_MALFORMED);
    char *dup = raw_token("{\"alg\":\"RS256\",\"alg\":\"none\"}", c, "x", 1);
    CU_ASSERT_EQUAL(sv_jwt_parse(dup, strlen(dup), &t), SV_JWT_MALFORMED);
    /* an RS256 token with an empty signature */
    char *nosig = raw_token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", c, "", 0);
    CU_ASSERT_EQUAL(check(nosig, &rk, &p), SV_JWT_BAD_SIGNATURE);
    /* malformed shapes */
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "e30.e30.!!!", "e30=.e30.AA", "e30.e30",
                         "eyJhbGciOiJSUzI1NiJ9.e30=.AA"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        sv_jwt_status_t st = sv_jwt_parse(bad[i], strlen(bad[i]), &t);
        CU_ASSERT(st == SV_JWT_MALFORMED || st == SV_JWT_BAD_ALG);
        if (st == SV_JWT_OK)
            sv_jwt_free(&t);
    }
    /* a 16 KiB header, a token over 16 KiB */
    char *big = malloc(20000);
    memset(big, 'A', 19999);
    big[19999] = 0;
    big[5000] = '.';
    big[6000] = '.';
    CU_ASSERT_EQUAL(sv_jwt_parse(big, strlen(big), &t), SV_JWT_TOO_LARGE);
    big[12000] = 0;
    CU_ASSERT_EQUAL(sv_jwt_parse(big, strlen(big), &t), SV_JWT_TOO_LARGE);
    /* a JSON bomb: deep nesting in the payload */
    char *bomb = malloc(8000);
    size_t n = 0;
    n += (size_t)sprintf(bomb, "{\"a\":");
    for (int i = 0; i < 3000; i++)
        bomb[n++] = '[';
    bomb[n] = 0;
    char *bt = raw_token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", bomb, "x", 1);
    CU_ASSERT_EQUAL(sv_jwt_parse(bt, strlen(bt), &t), SV_JWT_MALFORMED);
    char *arr = raw_token("{\"alg\":\"RS256\"}", "[1,2]", "x", 1);
    CU_ASSERT_EQUAL(sv_jwt_parse(arr, strlen(arr), &t), SV_JWT_MALFORMED);
    free(none);
    free(none2);
    free(hs);
    free(noalg);
    free(crit);
    free(dup);
    free(nosig);
    free(big);
    free(bomb);
    free(bt);
    free(arr);
    EVP_PKEY_free(rk.pkey);
}

/* Copies fmt to out with "EXP" replaced by exp. */
static void fill_exp(char *out, size_t cap, const char *fmt, int64_t exp)
{
    const char *at = strstr(fmt, "EXP");
    snprintf(out, cap, "%.*s%lld%s", (int)(at - fmt), fmt, (long long)exp, at + 3);
}

static void test_claims(void)
{
    sv_jwk_t ek = jwk_of(ec_key, "e1", SV_JWT_ALG_ES256);
    sv_principal_t p;
    char *t;
    t = sign(ec_key, SV_JWT_ALG_ES256, "e1", claims(-30, NULL));
    CU_ASSERT_EQUAL(check(t, &ek, &p), SV_JWT_OK);
    free(t);
    t = sign(ec_key, SV_JWT_ALG_ES256, "e1", claims(-120, NULL));
    CU_ASSERT_EQUAL(check(t, &ek, &p), SV_JWT_EXPIRED);
    free(t);
    char extra[128];
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(sv_now_s() + 600));
    t = sign(ec_key, SV_JWT_ALG_ES256, "e1", claims(900, extra));
    CU_ASSERT_EQUAL(check(t, &ek, &p), SV_JWT_NOT_YET_VALID);
    free(t);
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(sv_now_s() + 30));
    t = sign(ec_key, SV_JWT_ALG_ES256, "e1", claims(900, extra));
    CU_ASSERT_EQUAL(check(t, &ek, &p), SV_JWT_OK);
    free(t);
    /* iat: ahead within the leeway is accepted (clock skew); beyond,
     * refused. Times RFC 3339 cannot write, and the
     * edges of int64 (no overflow), are refused. */
    const struct {
        const char *claim;
        int64_t value_off; /* from now, unless absolute */
        const char *absolute;
        sv_jwt_status_t want;
    } times[] = {
        {"iat", 30, NULL, SV_JWT_OK},
        {"iat", 600, NULL, SV_JWT_ISSUED_LATER},
        {"nbf", 0, "-9223372036854775808", SV_JWT_BAD_TIME},
        {"iat", 0, "-1", SV_JWT_BAD_TIME},
        {"nbf", 0, "253402300800", SV_JWT_BAD_TIME},
        {"iat", 0, "1e300", SV_JWT_BAD_TIME},
        {"exp", 0, "9223372036854775807", SV_JWT_BAD_TIME},
        {"exp", 0, "253402300800", SV_JWT_BAD_TIME},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(times); i++) {
        char value[32], payload[512];
        if (times[i].absolute != NULL)
            snprintf(value, sizeof(value), "%s", times[i].absolute);
        else
            snprintf(value, sizeof(value), "%lld", (long long)(sv_now_s() + times[i].value_off));
        if (strcmp(times[i].claim, "exp") == 0)
            snprintf(payload, sizeof(payload),
                     "{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"sa:x\",\"exp\":%s}", value);
        else
            snprintf(payload, sizeof(payload),
                     "{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"sa:x\",\"%s\":%s,\"exp\":%lld}",
                     times[i].claim, value, (long long)(sv_now_s() + 900));
        t = sign(ec_key, SV_JWT_ALG_ES256, "e1", payload);
        sv_jwt_status_t got = check(t, &ek, &p);
        if (got != times[i].want)
            fprintf(stderr, "\n  %s: %d, want %d", payload, got, times[i].want);
        CU_ASSERT_EQUAL(got, times[i].want);
        free(t);
    }
    int64_t now = sv_now_s();
    char c[512];
    const struct {
        const char *fmt;
        sv_jwt_status_t want;
    } more[] = {
        {"{\"iss\":\"https://evil.test\",\"aud\":\"scaivault\",\"sub\":\"sa:x\",\"exp\":EXP}", SV_JWT_BAD_ISSUER},
        {"{\"aud\":\"scaivault\",\"sub\":\"sa:x\",\"exp\":EXP}", SV_JWT_BAD_ISSUER},
        {"{\"iss\":\"https://id.test\",\"aud\":\"other\",\"sub\":\"sa:x\",\"exp\":EXP}", SV_JWT_BAD_AUDIENCE},
        {"{\"iss\":\"https://id.test\",\"aud\":[\"a\",1],\"sub\":\"sa:x\",\"exp\":EXP}", SV_JWT_BAD_AUDIENCE},
        {"{\"iss\":\"https://id.test\",\"sub\":\"sa:x\",\"exp\":EXP}", SV_JWT_BAD_AUDIENCE},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"sa:x\",\"exp\":\"EXP\"}", SV_JWT_MALFORMED},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"sa:x\",\"x\":EXP}", SV_JWT_MALFORMED},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"billing\",\"exp\":EXP}", SV_JWT_BAD_SUBJECT},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"grp:x\",\"exp\":EXP}", SV_JWT_BAD_SUBJECT},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"exp\":EXP}", SV_JWT_BAD_SUBJECT},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"tenant_id\":\"a b\"}",
         SV_JWT_BAD_TENANT},
        /* an empty or null tenant_id/partner_id is not the same as none */
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"tenant_id\":\"\"}",
         SV_JWT_BAD_TENANT},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"tenant_id\":null}",
         SV_JWT_BAD_TENANT},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"tenant_id\":7}",
         SV_JWT_BAD_TENANT},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"partner_id\":\"\"}",
         SV_JWT_BAD_PARTNER},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"partner_id\":null}",
         SV_JWT_BAD_PARTNER},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,"
         "\"tenant_id\":\"tnt_a\",\"partner_id\":\"p/1\"}",
         SV_JWT_BAD_PARTNER},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP,\"groups\":\"g\"}",
         SV_JWT_MALFORMED},
        {"{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP.5}", SV_JWT_OK},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(more); i++) {
        fill_exp(c, sizeof(c), more[i].fmt, now + 300);
        t = sign(ec_key, SV_JWT_ALG_ES256, "e1", c);
        sv_jwt_status_t st = check(t, &ek, &p);
        if (st != more[i].want)
            fprintf(stderr, "\n  case %zu: %s → %d\n", i, c, st);
        CU_ASSERT_EQUAL(st, more[i].want);
        free(t);
    }
    /* the refusal names the claim */
    CU_ASSERT_PTR_NOT_NULL(strstr(sv_jwt_status_text(SV_JWT_BAD_TENANT), "tenant_id"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sv_jwt_status_text(SV_JWT_BAD_PARTNER), "partner_id"));
    fill_exp(c, sizeof(c), "{\"iss\":\"https://id.test\",\"aud\":\"scaivault\",\"sub\":\"user:a@b\",\"exp\":EXP}",
             now + 300);
    t = sign(ec_key, SV_JWT_ALG_ES256, "e1", c);
    CU_ASSERT_EQUAL(check(t, &ek, &p), SV_JWT_OK);
    CU_ASSERT_STRING_EQUAL(p.tenant_id, ""); /* absent: none */
    CU_ASSERT_STRING_EQUAL(p.partner_id, "");
    CU_ASSERT_STRING_EQUAL(p.identity_type, "user");
    CU_ASSERT_EQUAL(p.scopes, 0);
    CU_ASSERT_FALSE(p.mfa);
    free(t);
    EVP_PKEY_free(ek.pkey);
}

static void test_jwk_parse(void)
{
    const struct {
        const char *json;
        bool ok;
    } cases[] = {
        {"{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"h\"}", false},
        {"{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}", false},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}", false},
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", false}, /* too short */
        {"[1]", false},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
        sv_json_doc_t *doc;
        sv_json_error_t je;
        CU_ASSERT_EQUAL_FATAL(sv_json_parse(cases[i].json, strlen(cases[i].json), false, &doc, &je), SV_JSON_OK);
        sv_jwk_t k;
        char why[160];
        sv_err_t err = sv_jwk_parse(sv_json_root(doc), &k, why, sizeof(why));
        CU_ASSERT_EQUAL(err == SV_OK, cases[i].ok);
        if (err == SV_OK)
            EVP_PKEY_free(k.pkey);
        sv_json_doc_free(doc);
    }
    /* an EC point off the curve */
    const char *off = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                      "\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}";
    sv_json_doc_t *doc;
    sv_json_error_t je;
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(off, strlen(off), false, &doc, &je), SV_JSON_OK);
    sv_jwk_t k;
    char why[160];
    CU_ASSERT_NOT_EQUAL(sv_jwk_parse(sv_json_root(doc), &k, why, sizeof(why)), SV_OK);
    sv_json_doc_free(doc);
    /* a JWK whose alg disagrees with its kty */
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_jwk_write(ec_key, "e1", SV_JWT_ALG_ES256, &b);
    sv_buf_putc(&b, 0);
    char *s = strstr((char *)b.base, "\"ES256\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memcpy(s, "\"RS256\"", 7);
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(b.base, b.len - 1, false, &doc, &je), SV_JSON_OK);
    CU_ASSERT_EQUAL(sv_jwk_parse(sv_json_root(doc), &k, why, sizeof(why)), SV_EINVAL);
    sv_json_doc_free(doc);
    sv_buf_free(&b);
}

static void test_jwks_set(void)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_buf_puts(&b, "{\"keys\":[");
    sv_jwk_write(rsa_key, "r1", SV_JWT_ALG_RS256, &b);
    sv_buf_puts(&b, ",{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"h\"},");
    sv_jwk_write(ec_key, "e1", SV_JWT_ALG_ES256, &b);
    sv_buf_puts(&b, "]}");
    sv_jwks_t *s1, *s2;
    unsigned skipped;
    char why[160];
    CU_ASSERT_EQUAL_FATAL(sv_jwks_parse(b.base, b.len, NULL, &s1, &skipped, why, sizeof(why)), SV_OK);
    CU_ASSERT_EQUAL(sv_jwks_count(s1), 2);
    CU_ASSERT_EQUAL(skipped, 1);
    CU_ASSERT_PTR_NOT_NULL(sv_jwks_find(s1, "r1"));
    CU_ASSERT_PTR_NULL(sv_jwks_find(s1, "h"));
    /* a refresh with the same keys keeps the parsed EVP_PKEYs */
    CU_ASSERT_EQUAL_FATAL(sv_jwks_parse(b.base, b.len, s1, &s2, NULL, why, sizeof(why)), SV_OK);
    CU_ASSERT_PTR_EQUAL(sv_jwks_find(s1, "e1")->pkey, sv_jwks_find(s2, "e1")->pkey);
    CU_ASSERT_NOT_EQUAL(sv_jwks_serial(s1), sv_jwks_serial(s2));
    sv_jwks_unref(s1);
    CU_ASSERT_PTR_NOT_NULL(sv_jwks_find(s2, "e1")->pkey);
    sv_jwks_unref(s2);
    CU_ASSERT_EQUAL(sv_jwks_parse("{}", 2, NULL, &s1, NULL, why, sizeof(why)), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_jwks_parse("nope", 4, NULL, &s1, NULL, why, sizeof(why)), SV_EINVAL);
    sv_buf_free(&b);
}

static void test_tokcache(void)
{
    sv_tokcache_t *c;
    CU_ASSERT_EQUAL_FATAL(sv_tokcache_new(64, &c), SV_OK);
    int64_t now = sv_now_s();
    uint8_t h[SV_TOKEN_HASH_BYTES];
    sv_tokcache_entry_t e = {.valid_until = now + 100, .keyset_serial = 7}, got;
    sv_principal_t p, gp;
    memset(&p, 0, sizeof(p));
    snprintf(p.identity_id, sizeof(p.identity_id), "sa:a");
    snprintf(p.identity_type, sizeof(p.identity_type), "service_account");
    snprintf(p.tenant_id, sizeof(p.tenant_id), "tnt");
    snprintf(p.scope_text, sizeof(p.scope_text), "secrets:read");
    snprintf(p.jti, sizeof(p.jti), "j");
    snprintf(p.groups[0], sizeof(p.groups[0]), "g1");
    snprintf(p.groups[1], sizeof(p.groups[1]), "g2");
    p.n_groups = 2;
    p.scopes = 3;
    p.roles = SV_ROLE_TENANT_ADMIN;
    p.mfa = true;
    p.issued_at = 5;
    p.expires_at = now + 40;
    sv_tokcache_hash(c, "tok", 3, h);
    CU_ASSERT_FALSE(sv_tokcache_get(c, h, now, &got, &gp));
    sv_tokcache_put(c, h, &e, &p);
    memset(&gp, 0x5a, sizeof(gp));
    CU_ASSERT_TRUE(sv_tokcache_get(c, h, now, &got, &gp));
    CU_ASSERT_STRING_EQUAL(gp.identity_id, "sa:a");
    CU_ASSERT_STRING_EQUAL(gp.identity_type, "service_account");
    CU_ASSERT_STRING_EQUAL(gp.tenant_id, "tnt");
    CU_ASSERT_STRING_EQUAL(gp.partner_id, "");
    CU_ASSERT_STRING_EQUAL(gp.scope_text, "secrets:read");
    CU_ASSERT_STRING_EQUAL(gp.groups[1], "g2");
    CU_ASSERT_EQUAL(gp.n_groups, 2);
    CU_ASSERT_EQUAL(gp.scopes, 3);
    CU_ASSERT_EQUAL(gp.roles, SV_ROLE_TENANT_ADMIN);
    CU_ASSERT_TRUE(gp.mfa);
    CU_ASSERT_FALSE(gp.bootstrap);
    CU_ASSERT_EQUAL(gp.issued_at, 5);
    CU_ASSERT_EQUAL(gp.expires_at, now + 40);
    CU_ASSERT_EQUAL(got.keyset_serial, 7);
    sv_tokcache_touch(c, h, 9);
    CU_ASSERT_TRUE(sv_tokcache_get(c, h, now, &got, &gp));
    CU_ASSERT_EQUAL(got.keyset_serial, 9);
    /* a bigger principal under the same hash grows the slot */
    for (int i = 0; i < SV_PRINCIPAL_MAX_GROUPS; i++)
        snprintf(p.groups[i], sizeof(p.groups[i]), "group-with-a-rather-long-name-%d-xxxxxxxxxxxxxxxxxxxxxxxxxx", i);
    p.n_groups = SV_PRINCIPAL_MAX_GROUPS;
    sv_tokcache_put(c, h, &e, &p);
    CU_ASSERT_TRUE(sv_tokcache_get(c, h, now, &got, &gp));
    CU_ASSERT_EQUAL(gp.n_groups, SV_PRINCIPAL_MAX_GROUPS);
    CU_ASSERT_STRING_EQUAL(gp.groups[31], p.groups[31]);
    CU_ASSERT_FALSE(sv_tokcache_get(c, h, now + 101, &got, &gp)); /* expired: dropped */
    CU_ASSERT_FALSE(sv_tokcache_get(c, h, now, &got, &gp));
    /* bounded: many more tokens than slots */
    p.n_groups = 1;
    for (int i = 0; i < 5000; i++) {
        char t[32];
        int n = snprintf(t, sizeof(t), "t%d", i);
        sv_tokcache_hash(c, t, (size_t)n, h);
        e.valid_until = now + 1000 + i;
        sv_tokcache_put(c, h, &e, &p);
    }
    CU_ASSERT(sv_tokcache_size(c) <= 16 * 16);
    sv_tokcache_hash(c, "t4999", 5, h);
    CU_ASSERT_TRUE(sv_tokcache_get(c, h, now, &got, &gp)); /* the newest survives */
    sv_tokcache_remove(c, h);
    CU_ASSERT_FALSE(sv_tokcache_get(c, h, now, &got, &gp));
    sv_tokcache_free(c);
}

void sv_test_suite_jwt(void)
{
    CU_pSuite s = CU_add_suite("src/jwt", setup, teardown);
    CU_add_test(s, "valid_rs256_es256", test_valid_rs256_es256);
    CU_add_test(s, "attacks", test_attacks);
    CU_add_test(s, "claims", test_claims);
    CU_add_test(s, "jwk_parse", test_jwk_parse);
    CU_add_test(s, "jwks_set", test_jwks_set);
    CU_add_test(s, "tokcache", test_tokcache);
}
