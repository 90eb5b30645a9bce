/*
 * auth_bench.c - what bearer-token authentication costs, in one run, next to
 * its ceiling.
 *
 *   first_use: sv_auth_bearer() on tokens it has never seen (hash, parse,
 *              key by kid, EVP_DigestVerify, claims, cache insert), per
 *              algorithm, next to a bare EVP_DigestVerify of the same tokens'
 *              signing inputs with the same parsed keys (the ceiling). Goal:
 *              first_use costs at most 1.3x the bare verify.
 *   cached:    sv_auth_bearer() on a token already verified, i.e. what a
 *              request adds after the first. Goal: at most 2 us.
 *
 * Standalone (no server, no network); prints one JSON object. Medians of 3
 * rounds. Usage: bench/auth_bench [tokens_per_alg (default 2000)]
 */
#include "sv_autoconf.h"

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/auth.h"
#include "src/jwks.h"
#include "src/jwt.h"

#define ISSUER "https://scaikey.bench.example"
#define ROUNDS 3

static int n_warm; /* tokens that fill the cache before first-use rounds */

typedef struct {
    char *token;
    size_t len;
    size_t input_len;  /* header.payload */
    uint8_t der[600];  /* the signature as EVP_DigestVerify takes it */
    size_t der_len;
} tok_t;

static char *make_claims(int i)
{
    static char buf[1024];
    long now = (long)sv_now_s();
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"" ISSUER "\",\"aud\":[\"scaivault\",\"other\"],\"sub\":\"sa:service-%d\","
             "\"tenant_id\":\"tnt_bench\",\"scope\":\"secrets:read secrets:write policies:read audit:read\","
             "\"groups\":[\"grp_finance\",\"grp_ops\",\"grp_bench\"],\"amr\":[\"pwd\",\"mfa\"],"
             "\"roles\":[\"tenant_admin\"],\"partner_id\":\"ptn_bench\",\"jti\":\"jti-%d-%08x\","
             "\"iat\":%ld,\"nbf\":%ld,\"exp\":%ld,\"client_id\":\"sa:service-%d\"}",
             i, i, randombytes_random(), now, now, now + 3600, i);
    return buf;
}

static tok_t *make_tokens(EVP_PKEY *key, sv_jwt_alg_t alg, const char *kid, int n)
{
    tok_t *t = calloc((size_t)n, sizeof(*t));
    for (int i = 0; i < n; i++) {
        sv_buf_t b;
        sv_buf_init(&b, false);
        const char *c = make_claims(i);
        if (sv_jwt_sign(key, alg, kid, c, strlen(c), &b) != SV_OK) {
            fprintf(stderr, "signing failed\n");
            exit(1);
        }
        sv_buf_putc(&b, 0);
        t[i].token = (char *)b.base;
        t[i].len = b.len - 1;
        sv_jwt_t j;
        if (sv_jwt_parse(t[i].token, t[i].len, &j) != SV_JWT_OK) {
            fprintf(stderr, "parse failed\n");
            exit(1);
        }
        t[i].input_len = j.signing_input_len;
        if (alg == SV_JWT_ALG_ES256) {
            ECDSA_SIG *s = ECDSA_SIG_new();
            ECDSA_SIG_set0(s, BN_bin2bn(j.sig, 32, NULL), BN_bin2bn(j.sig + 32, 32, NULL));
            uint8_t *p = t[i].der;
            t[i].der_len = (size_t)i2d_ECDSA_SIG(s, &p);
            ECDSA_SIG_free(s);
        } else {
            memcpy(t[i].der, j.sig, j.sig_len);
            t[i].der_len = j.sig_len;
        }
        sv_jwt_free(&j);
    }
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, ROUNDS, sizeof(double), cmp_double);
    return v[ROUNDS / 2];
}

/* The ceiling: EVP_DigestVerify of the same inputs, keys parsed once. */
static void bare_verify(const tok_t *t, int n, EVP_PKEY *pub)
{
    const EVP_MD *md = EVP_sha256();
    for (int i = 0; i < n; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) != 1 ||
            EVP_DigestVerify(ctx, t[i].der, t[i].der_len, (const uint8_t *)t[i].token, t[i].input_len) != 1) {
            fprintf(stderr, "bare verify failed\n");
            exit(1);
        }
        EVP_MD_CTX_free(ctx);
    }
}

static void first_use(sv_auth_t *a, const tok_t *t, int n)
{
    sv_principal_t p;
    sv_auth_outcome_t o;
    for (int i = 0; i < n; i++) {
        if (sv_auth_bearer(a, NULL, t[i].token, t[i].len, false, &p, &o) != SV_AUTH_OK || o.cached) {
            fprintf(stderr, "first use failed: %s\n", o.message ? o.message : "?");
            exit(1);
        }
    }
}

/* Bare verify and first use over the same tokens, interleaved in chunks of
 * 50 so that the noise of a shared machine hits both alike. First use runs
 * in steady state: the cache is already full of other tokens (warm), as in
 * a server that has been running. Writes the mean microseconds of each. */
static void compare(sv_app_t *app, sv_jwks_t *keys, const tok_t *t, const tok_t *warm, int n, EVP_PKEY *pub,
                    double *bare_us, double *first_us)
{
    sv_auth_t *a;
    if (sv_auth_new_static(app, ISSUER, keys, &a) != SV_OK)
        exit(1);
    sv_principal_t p;
    sv_auth_outcome_t o;
    for (int i = 0; i < n_warm; i++)
        sv_auth_bearer(a, NULL, warm[i].token, warm[i].len, false, &p, &o);
    uint64_t bare = 0, first = 0;
    for (int i = 0; i < n; i += 50) {
        int c = n - i < 50 ? n - i : 50;
        uint64_t t0 = sv_mono_us();
        bare_verify(t + i, c, pub);
        uint64_t t1 = sv_mono_us();
        first_use(a, t + i, c);
        uint64_t t2 = sv_mono_us();
        bare += t1 - t0;
        first += t2 - t1;
    }
    *bare_us = (double)bare / n;
    *first_us = (double)first / n;
    sv_auth_free(a);
}

static double cached_ns(sv_app_t *app, sv_jwks_t *keys, const tok_t *t, int n_tokens, int n)
{
    sv_auth_t *a;
    if (sv_auth_new_static(app, ISSUER, keys, &a) != SV_OK)
        exit(1);
    sv_principal_t p;
    sv_auth_outcome_t o;
    int warm = n_tokens < 256 ? n_tokens : 256; /* a working set of 256 live tokens */
    for (int i = 0; i < warm; i++)
        sv_auth_bearer(a, NULL, t[i].token, t[i].len, false, &p, &o);
    uint64_t t0 = sv_mono_us();
    for (int i = 0; i < n; i++) {
        const tok_t *k = &t[i % warm];
        if (sv_auth_bearer(a, NULL, k->token, k->len, false, &p, &o) != SV_AUTH_OK || !o.cached) {
            fprintf(stderr, "cached lookup failed\n");
            exit(1);
        }
    }
    double ns = (double)(sv_mono_us() - t0) * 1000.0 / n;
    sv_auth_free(a);
    return ns;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    if (n < 10 || n > 100000)
        n = 2000;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    /* the verifier's keys come from a JWKS document, as in production */
    sv_buf_t doc;
    sv_buf_init(&doc, false);
    sv_buf_puts(&doc, "{\"keys\":[");
    sv_jwk_write(rsa, "rs-1", SV_JWT_ALG_RS256, &doc);
    sv_buf_putc(&doc, ',');
    sv_jwk_write(ec, "es-1", SV_JWT_ALG_ES256, &doc);
    sv_buf_puts(&doc, "]}");
    sv_jwks_t *keys;
    char why[160];
    if (sv_jwks_parse(doc.base, doc.len, NULL, &keys, NULL, why, sizeof(why)) != SV_OK) {
        fprintf(stderr, "jwks: %s\n", why);
        return 1;
    }
    sv_buf_free(&doc);
    sv_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.audience = "scaivault";
    sv_app_t app = {.cfg = &cfg};

    tok_t *rs = make_tokens(rsa, SV_JWT_ALG_RS256, "rs-1", n);
    tok_t *es = make_tokens(ec, SV_JWT_ALG_ES256, "es-1", n);
    n_warm = n > 4096 ? n : 4096;
    tok_t *warm = make_tokens(ec, SV_JWT_ALG_ES256, "es-1", n_warm);
    EVP_PKEY *rs_pub = sv_jwks_find(keys, "rs-1")->pkey, *es_pub = sv_jwks_find(keys, "es-1")->pkey;

    double rb[ROUNDS], rf[ROUNDS], eb[ROUNDS], ef[ROUNDS], c[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        compare(&app, keys, rs, warm, n, rs_pub, &rb[r], &rf[r]);
        compare(&app, keys, es, warm, n, es_pub, &eb[r], &ef[r]);
        c[r] = cached_ns(&app, keys, rs, n, 200000);
    }
    double rbm = median(rb), rfm = median(rf), ebm = median(eb), efm = median(ef), cm = median(c);
    printf("{\"benchmark\":\"auth\",\"tokens_per_alg\":%d,\"token_bytes\":{\"rs256\":%zu,\"es256\":%zu},\n", n,
           rs[0].len, es[0].len);
    printf(" \"rs256\":{\"bare_evp_verify_per_s\":%.0f,\"first_use_per_s\":%.0f,\"bare_us\":%.2f,\"first_use_us\":%.2f,"
           "\"ratio\":%.3f,\"goal_ratio\":1.3},\n",
           1e6 / rbm, 1e6 / rfm, rbm, rfm, rfm / rbm);
    printf(" \"es256\":{\"bare_evp_verify_per_s\":%.0f,\"first_use_per_s\":%.0f,\"bare_us\":%.2f,\"first_use_us\":%.2f,"
           "\"ratio\":%.3f,\"goal_ratio\":1.3},\n",
           1e6 / ebm, 1e6 / efm, ebm, efm, efm / ebm);
    printf(" \"cached\":{\"ns_per_request\":%.0f,\"goal_ns\":2000}}\n", cm);
    for (int i = 0; i < n; i++) {
        free(rs[i].token);
        free(es[i].token);
    }
    for (int i = 0; i < n_warm; i++)
        free(warm[i].token);
    free(rs);
    free(es);
    free(warm);
    sv_jwks_unref(keys);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}
