/*
 * mint.c - the bench token issuer: signs JWTs the way ScaiKey does, fast.
 *
 *   mint --key FILE [--alg ES256|RS256] [--kid KID] [--jwks OUT]
 *        [--iss URL --aud AUD --sub SUB --scope "a b" --ttl SECONDS
 *         --tenants FILE (--count N | --per-tenant) --out FILE]
 *
 * The key is read from FILE (PEM), or generated and written there (0600)
 * when FILE does not exist: P-256 for ES256, RSA-2048 for RS256. --jwks
 * writes the public key as a JWKS ({"keys":[...]}) for bench/run to serve
 * as SCAIKEY_JWKS_URL. With --out, it writes one "tenant token" line per
 * token: --per-tenant gives one token per tenant of the tenants file;
 * --count N gives N tokens, tenants taken in turn, each with its own random
 * jti, so that every one is a token the server has never seen (the
 * new-tokens scenario). `scaivault dev-token` is a process per token; this
 * signs tens of thousands per second with ES256 (OpenSSL's P-256), which is
 * what lets new-tokens send a never-seen token on every request. A summary
 * object ({tokens, seconds, rate}) is printed on stdout.
 *
 * Single-threaded; bench/run starts one process per output file.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/cli.h"

#define MAX_TENANTS 100000
#define B64_LEN(n) (sodium_base64_ENCODED_LEN((n), sodium_base64_VARIANT_URLSAFE_NO_PADDING))

typedef struct {
    const char *key_file, *alg, *kid, *jwks, *iss, *aud, *sub, *scope, *tenants, *out;
    long ttl, count;
    bool per_tenant;
} opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ssl_fail(const char *what)
{
    fprintf(stderr, "mint: %s: %s\n", what, ERR_error_string(ERR_get_error(), NULL));
    exit(1);
}

static void b64url(char *out, size_t outlen, const void *in, size_t inlen)
{
    sodium_bin2base64(out, outlen, in, inlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Reads the PEM key, or generates one of the algorithm's type and saves it. */
static EVP_PKEY *load_or_create_key(const opts_t *o)
{
    EVP_PKEY *pkey = NULL;
    FILE *f = fopen(o->key_file, "r");
    if (f != NULL) {
        pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (pkey == NULL)
            ssl_fail(o->key_file);
        return pkey;
    }
    if (errno != ENOENT) {
        fprintf(stderr, "mint: %s: %s\n", o->key_file, strerror(errno));
        exit(1);
    }
    pkey = strcmp(o->alg, "ES256") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                        : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (pkey == NULL)
        ssl_fail("key generation");
    int fd = open(o->key_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "mint: %s: %s\n", o->key_file, strerror(errno));
        exit(1);
    }
    if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1)
        ssl_fail("writing the key");
    fclose(f);
    return pkey;
}

/* Big-endian bytes of a key parameter, left-padded to pad bytes (0: as is). */
static size_t key_param(EVP_PKEY *pkey, const char *name, unsigned char *out, size_t cap, size_t pad)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        ssl_fail(name);
    size_t len = pad ? pad : (size_t)BN_num_bytes(bn);
    if (len > cap || BN_bn2binpad(bn, out, (int)len) < 0)
        ssl_fail(name);
    BN_free(bn);
    return len;
}

static void write_jwks(const opts_t *o, EVP_PKEY *pkey)
{
    unsigned char a[512], b[512];
    char ea[B64_LEN(512)], eb[B64_LEN(512)];
    FILE *f = fopen(o->jwks, "w");
    if (f == NULL) {
        fprintf(stderr, "mint: %s: %s\n", o->jwks, strerror(errno));
        exit(1);
    }
    if (strcmp(o->alg, "ES256") == 0) {
        b64url(ea, sizeof(ea), a, key_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, a, sizeof(a), 32));
        b64url(eb, sizeof(eb), b, key_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, b, sizeof(b), 32));
        fprintf(f,
                "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\","
                "\"alg\":\"ES256\",\"use\":\"sig\"}]}\n",
                ea, eb, o->kid);
    } else {
        b64url(ea, sizeof(ea), a, key_param(pkey, OSSL_PKEY_PARAM_RSA_N, a, sizeof(a), 0));
        b64url(eb, sizeof(eb), b, key_param(pkey, OSSL_PKEY_PARAM_RSA_E, b, sizeof(b), 0));
        fprintf(f,
                "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\",\"kid\":\"%s\",\"alg\":\"RS256\","
                "\"use\":\"sig\"}]}\n",
                ea, eb, o->kid);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "mint: %s: %s\n", o->jwks, strerror(errno));
        exit(1);
    }
}

/* Signs header.payload; writes the base64url signature (JWS form: raw r||s for ES256). */
static void sign(EVP_MD_CTX *md, EVP_PKEY *pkey, bool es256, const char *input, size_t len, char *out, size_t outlen)
{
    unsigned char sig[512], raw[64];
    size_t siglen = sizeof(sig);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, len) != 1)
        ssl_fail("signing");
    EVP_MD_CTX_reset(md);
    if (!es256) {
        b64url(out, outlen, sig, siglen);
        return;
    }
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
    if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
        ssl_fail("ECDSA signature");
    ECDSA_SIG_free(es);
    b64url(out, outlen, raw, sizeof(raw));
}

/* Claims go into JSON unescaped: refuse anything that would need escaping. */
static void check_plain(const char *what, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            fprintf(stderr, "mint: %s '%s' holds a character this tool does not escape\n", what, v);
            exit(2);
        }
    }
}

static char **load_tenants(const char *file, size_t *n)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "mint: %s: %s\n", file, strerror(errno));
        exit(2);
    }
    char **t = calloc(MAX_TENANTS, sizeof(*t));
    char line[512];
    *n = 0;
    while (t != NULL && *n < MAX_TENANTS && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n ")] = 0;
        if (line[0] == 0)
            continue;
        check_plain("tenant", line);
        if ((t[(*n)++] = strdup(line)) == NULL) {
            fprintf(stderr, "mint: out of memory\n");
            exit(1);
        }
    }
    fclose(f);
    if (t == NULL || *n == 0) {
        fprintf(stderr, "mint: no tenants in %s\n", file);
        exit(2);
    }
    return t;
}

static void mint_tokens(const opts_t *o, EVP_PKEY *pkey)
{
    size_t n_tenants;
    char **tenants = load_tenants(o->tenants, &n_tenants);
    long count = o->per_tenant ? (long)n_tenants : o->count;
    FILE *out = fopen(o->out, "w");
    if (out == NULL) {
        fprintf(stderr, "mint: %s: %s\n", o->out, strerror(errno));
        exit(1);
    }
    bool es256 = strcmp(o->alg, "ES256") == 0;
    char header[256], hdr64[B64_LEN(256)], payload[2048], input[4096], sig64[B64_LEN(512)];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", o->alg, o->kid);
    b64url(hdr64, sizeof(hdr64), header, strlen(header));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        ssl_fail("EVP_MD_CTX_new");
    long now = (long)time(NULL);
    double start = now_s();
    for (long i = 0; i < count; i++) {
        const char *tenant = tenants[(size_t)i % n_tenants];
        unsigned char jti_raw[12];
        char jti[B64_LEN(12)];
        randombytes_buf(jti_raw, sizeof(jti_raw));
        b64url(jti, sizeof(jti), jti_raw, sizeof(jti_raw));
        int pl = snprintf(payload, sizeof(payload),
                          "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"%s\",\"tenant_id\":\"%s\",\"scope\":\"%s\","
                          "\"iat\":%ld,\"nbf\":%ld,\"exp\":%ld,\"jti\":\"bench-%s\"}",
                          o->iss, o->aud, o->sub, tenant, o->scope, now, now - 60, now + o->ttl, jti);
        if (pl < 0 || (size_t)pl >= sizeof(payload)) {
            fprintf(stderr, "mint: claims too long\n");
            exit(2);
        }
        int il = snprintf(input, sizeof(input), "%s.", hdr64);
        b64url(input + il, sizeof(input) - (size_t)il, payload, (size_t)pl);
        il += (int)strlen(input + il);
        sign(md, pkey, es256, input, (size_t)il, sig64, sizeof(sig64));
        fprintf(out, "%s %s.%s\n", tenant, input, sig64);
    }
    double seconds = now_s() - start;
    if (fclose(out) != 0) {
        fprintf(stderr, "mint: %s: %s\n", o->out, strerror(errno));
        exit(1);
    }
    printf("{\"name\":\"mint\",\"alg\":\"%s\",\"tokens\":%ld,\"seconds\":%.3f,\"rate\":%.1f}\n", o->alg, count, seconds,
           seconds > 0 ? (double)count / seconds : 0.0);
    EVP_MD_CTX_free(md);
    for (size_t i = 0; i < n_tenants; i++)
        free(tenants[i]);
    free(tenants);
}

static void usage(void)
{
    fprintf(stderr, "usage: mint --key FILE [--alg ES256|RS256] [--kid KID] [--jwks OUT]\n"
                    "            [--iss URL --aud AUD --sub SUB --scope S --ttl SECONDS --tenants FILE\n"
                    "             (--count N | --per-tenant) --out FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.alg = "ES256", .aud = "scaivault", .sub = "sa:bench", .scope = "secrets:read"};
    const char *ttl = "7200", *count = "0", *per_tenant = NULL;
    const bench_opt_t opts[] = {
        {"key", &o.key_file, true},
        {"alg", &o.alg, true},
        {"kid", &o.kid, true},
        {"jwks", &o.jwks, true},
        {"iss", &o.iss, true},
        {"aud", &o.aud, true},
        {"sub", &o.sub, true},
        {"scope", &o.scope, true},
        {"ttl", &ttl, true},
        {"tenants", &o.tenants, true},
        {"count", &count, true},
        {"out", &o.out, true},
        {"per-tenant", &per_tenant, false},
    };
    if (!bench_cli_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])))
        usage();
    o.ttl = atol(ttl);
    o.count = atol(count);
    o.per_tenant = per_tenant != NULL;
    if (o.key_file == NULL || (strcmp(o.alg, "ES256") != 0 && strcmp(o.alg, "RS256") != 0))
        usage();
    if (o.kid == NULL)
        o.kid = strcmp(o.alg, "ES256") == 0 ? "bench-es256" : "bench-rs256";
    if (o.out != NULL && (o.iss == NULL || o.tenants == NULL || (!o.per_tenant && o.count < 1) || o.ttl < 1))
        usage();
    const char *plain[][2] = {{"kid", o.kid}, {"iss", o.iss}, {"aud", o.aud}, {"sub", o.sub}, {"scope", o.scope}};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (plain[i][1] != NULL)
            check_plain(plain[i][0], plain[i][1]);
    if (sodium_init() < 0)
        return 1;

    EVP_PKEY *pkey = load_or_create_key(&o);
    if (o.jwks != NULL)
        write_jwks(&o, pkey);
    if (o.out != NULL)
        mint_tokens(&o, pkey);
    EVP_PKEY_free(pkey);
    return 0;
}
