/*
 * jwt.c - parsing, signature checks and claims of JSON Web Tokens (jwt.h).
 *
 * The design choice that shapes this file: nothing here trusts the token to
 * say how it should be checked. The header is parsed by us (bounded size, our
 * JSON parser with its depth limit and duplicate-key refusal), only RS256 and
 * ES256 get past the parser, and the key that verifies is chosen by the caller
 * from its own JWKS by `kid`; that key carries the one algorithm it may verify
 * and sv_jwt_verify refuses any other. That closes the classic holes of
 * libjwt 1.10 (alg "none", HS256 keyed with the RSA public key, verification
 * skipped with a NULL key) by construction. Keys arrive already parsed
 * (EVP_PKEY per kid), so verifying costs one EVP_DigestVerify.
 *
 * Pure functions with no shared state except a SHA-256 implementation fetched
 * once: any thread.
 */
#include "sv_autoconf.h"

#include "src/jwt.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/identity.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256, fetched from the provider once instead of at every verify. */
static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256_md != NULL ? sha256_md : EVP_sha256();
}

const char *sv_jwt_status_text(sv_jwt_status_t st)
{
    switch (st) {
    case SV_JWT_OK: return "valid";
    case SV_JWT_MALFORMED: return "the token is malformed";
    case SV_JWT_TOO_LARGE: return "the token is too large";
    case SV_JWT_BAD_ALG: return "the token's algorithm is not accepted (only RS256 and ES256)";
    case SV_JWT_UNKNOWN_KID: return "the token is signed with an unknown key";
    case SV_JWT_KEY_MISMATCH: return "the token's algorithm does not match its key";
    case SV_JWT_BAD_SIGNATURE: return "the signature does not verify";
    case SV_JWT_EXPIRED: return "the token has expired";
    case SV_JWT_NOT_YET_VALID: return "the token is not valid yet (nbf)";
    case SV_JWT_ISSUED_LATER: return "the token is issued in the future (iat; check the issuer's clock)";
    case SV_JWT_BAD_TIME: return "exp, nbf or iat is not a time between 1970 and 9999";
    case SV_JWT_BAD_ISSUER: return "the token is from another issuer";
    case SV_JWT_BAD_AUDIENCE: return "the token is not meant for ScaiVault (aud)";
    case SV_JWT_BAD_SUBJECT: return "the token's sub is not an identity id (sa:... or user:...)";
    case SV_JWT_BAD_TENANT:
        return "the token's tenant_id claim is not a tenant id ([A-Za-z0-9_-]{1,63}; a token without a tenant leaves "
               "the claim out)";
    case SV_JWT_BAD_PARTNER:
        return "the token's partner_id claim is not a partner id ([A-Za-z0-9_-]{1,63}; a token without a partner "
               "leaves the claim out)";
    case SV_JWT_NO_MEMORY: return "out of memory";
    }
    return "invalid";
}

const char *sv_jwt_alg_name(sv_jwt_alg_t alg)
{
    switch (alg) {
    case SV_JWT_ALG_RS256: return "RS256";
    case SV_JWT_ALG_ES256: return "ES256";
    default: return NULL;
    }
}

static sv_jwt_alg_t alg_from_name(const char *s, size_t len)
{
    if (len == 5 && memcmp(s, "RS256", 5) == 0)
        return SV_JWT_ALG_RS256;
    if (len == 5 && memcmp(s, "ES256", 5) == 0)
        return SV_JWT_ALG_ES256;
    return SV_JWT_ALG_NONE_;
}

/* ---- base64url ---- */

/* base64url alphabet → value, 0xff for anything else. A token is not
 * secret once its hash has been compared, and decoding runs on every new
 * token, so a table beats libsodium's constant-time decoder (3x faster). */
static const uint8_t b64url_value[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,  ['I'] = 8,
    ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17,
    ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23, ['Y'] = 24, ['Z'] = 25, ['a'] = 26,
    ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31, ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35,
    ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39, ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44,
    ['t'] = 45, ['u'] = 46, ['v'] = 47, ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53,
    ['2'] = 54, ['3'] = 55, ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['-'] = 62,
    ['_'] = 63,
};

/* Decodes unpadded base64url; the whole input must be valid (no padding, no
 * whitespace, zero trailing bits). */
static bool b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
        return false;
    const uint8_t *p = (const uint8_t *)in;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t v = b64url_value[p[i]];
        if (v == 0 && p[i] != 'A')
            return false;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return false; /* non-canonical: leftover bits must be zero */
    *out_len = o;
    return true;
}

void sv_b64url_append(sv_buf_t *out, const void *data, size_t len)
{
    size_t enc = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (!sv_buf_reserve(out, enc))
        return;
    sodium_bin2base64((char *)out->base + out->len, enc, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out->len += enc - 1; /* without the NUL */
}

/* ---- parsing ---- */

void sv_jwt_free(sv_jwt_t *t)
{
    sv_json_doc_free(t->payload);
    t->payload = NULL;
}

sv_jwt_status_t sv_jwt_parse(const char *token, size_t len, sv_jwt_t *t)
{
    memset(t, 0, offsetof(sv_jwt_t, sig));
    t->sig_len = 0;
    t->payload = NULL;
    if (len > SV_JWT_MAX_TOKEN)
        return SV_JWT_TOO_LARGE;
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return SV_JWT_MALFORMED;
    const char *dot2 = memchr(dot1 + 1, '.', (size_t)(token + len - dot1 - 1));
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(token + len - dot2 - 1)) != NULL)
        return SV_JWT_MALFORMED;
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1), slen = (size_t)(token + len - dot2 - 1);
    if (hlen > SV_JWT_MAX_HEADER)
        return SV_JWT_TOO_LARGE;
    if (hlen == 0 || plen == 0)
        return SV_JWT_MALFORMED;

    /* header: tokens of one issuer share a few headers, so each thread
     * remembers the last one it parsed (the encoded text, compared whole) */
    static __thread struct {
        size_t len;
        char text[256];
        sv_jwt_alg_t alg;
        char kid[SV_JWT_KID_MAX];
    } last_header;
    if (hlen == last_header.len && memcmp(token, last_header.text, hlen) == 0) {
        t->alg = last_header.alg;
        memcpy(t->kid, last_header.kid, sizeof(t->kid));
        goto signature;
    }
    uint8_t hbuf[SV_JWT_MAX_HEADER];
    size_t hbin;
    if (!b64url_decode(token, hlen, hbuf, sizeof(hbuf), &hbin))
        return SV_JWT_MALFORMED;
    sv_json_doc_t *hdoc;
    sv_json_error_t jerr;
    sv_json_status_t js = sv_json_parse(hbuf, hbin, false, &hdoc, &jerr);
    if (js == SV_JSON_ENOMEM)
        return SV_JWT_NO_MEMORY;
    if (js != SV_JSON_OK)
        return SV_JWT_MALFORMED;
    sv_jwt_status_t st = SV_JWT_OK;
    sv_json_t *h = sv_json_root(hdoc);
    size_t al = 0, kl = 0;
    const char *alg = sv_json_get_str(h, "alg", &al);
    sv_json_t *kid = sv_json_get(h, "kid");
    if (h->type != SV_JSON_OBJECT)
        st = SV_JWT_MALFORMED;
    else if (alg == NULL || (t->alg = alg_from_name(alg, al)) == SV_JWT_ALG_NONE_)
        st = SV_JWT_BAD_ALG;
    else if (sv_json_get(h, "crit") != NULL)
        st = SV_JWT_MALFORMED; /* extensions we do not understand must be refused (RFC 7515 4.1.11) */
    else if (kid != NULL) {
        if (kid->type != SV_JSON_STRING || (kl = kid->u.str.len) >= sizeof(t->kid) || memchr(kid->u.str.s, 0, kl))
            st = SV_JWT_MALFORMED;
        else {
            memcpy(t->kid, kid->u.str.s, kl);
            t->kid[kl] = 0;
        }
    }
    sv_json_doc_free(hdoc);
    if (st != SV_JWT_OK)
        return st;
    if (hlen <= sizeof(last_header.text)) {
        memcpy(last_header.text, token, hlen);
        last_header.len = hlen;
        last_header.alg = t->alg;
        memcpy(last_header.kid, t->kid, sizeof(t->kid));
    }

signature:
    if (!b64url_decode(dot2 + 1, slen, t->sig, sizeof(t->sig), &t->sig_len))
        return slen > 700 ? SV_JWT_TOO_LARGE : SV_JWT_MALFORMED;

    /* payload */
    size_t pcap = plen / 4 * 3 + 3;
    uint8_t *pbuf = malloc(pcap);
    if (pbuf == NULL)
        return SV_JWT_NO_MEMORY;
    size_t pbin;
    if (!b64url_decode(dot1 + 1, plen, pbuf, pcap, &pbin)) {
        free(pbuf);
        return SV_JWT_MALFORMED;
    }
    js = sv_json_parse(pbuf, pbin, false, &t->payload, &jerr);
    free(pbuf);
    if (js != SV_JSON_OK) {
        t->payload = NULL;
        return js == SV_JSON_ENOMEM ? SV_JWT_NO_MEMORY : SV_JWT_MALFORMED;
    }
    if (sv_json_root(t->payload)->type != SV_JSON_OBJECT) {
        sv_jwt_free(t);
        return SV_JWT_MALFORMED;
    }
    t->signing_input = token;
    t->signing_input_len = (size_t)(dot2 - token);
    return SV_JWT_OK;
}

/* ---- signatures ---- */

/* Raw r||s (64 bytes) → DER ECDSA-Sig-Value. Returns the DER length or 0. */
static size_t es256_raw_to_der(const uint8_t *raw, uint8_t *der, size_t cap)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    size_t out = 0;
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto free_sig;
    }
    int n = i2d_ECDSA_SIG(sig, NULL);
    if (n > 0 && (size_t)n <= cap) {
        uint8_t *p = der;
        n = i2d_ECDSA_SIG(sig, &p);
        out = n > 0 ? (size_t)n : 0;
    }
free_sig:
    ECDSA_SIG_free(sig);
    return out;
}

sv_jwt_status_t sv_jwt_verify(const sv_jwt_t *t, const sv_jwk_t *key)
{
    if (key == NULL || key->pkey == NULL || key->alg != t->alg)
        return SV_JWT_KEY_MISMATCH;
    const uint8_t *sig = t->sig;
    size_t sig_len = t->sig_len;
    uint8_t der[80];
    if (t->alg == SV_JWT_ALG_ES256) {
        if (t->sig_len != 64)
            return SV_JWT_BAD_SIGNATURE;
        if ((sig_len = es256_raw_to_der(t->sig, der, sizeof(der))) == 0)
            return SV_JWT_BAD_SIGNATURE;
        sig = der;
    } else if (sig_len == 0) {
        return SV_JWT_BAD_SIGNATURE;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return SV_JWT_NO_MEMORY;
    sv_jwt_status_t st = SV_JWT_BAD_SIGNATURE;
    if (EVP_DigestVerifyInit(ctx, NULL, sha256(), NULL, key->pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)t->signing_input, t->signing_input_len) == 1)
        st = SV_JWT_OK;
    EVP_MD_CTX_free(ctx);
    return st;
}

/* ---- claims ---- */

/* The last second RFC 3339 can write (9999-12-31T23:59:59Z). */
#define MAX_NUMERIC_DATE INT64_C(253402300799)

/* Reads the NumericDate claim name into *out. Absent: false. Not a number:
 * false and *bad. Outside 1970..9999 (no arithmetic on it can overflow, and
 * every time shown is RFC 3339): false and *out_of_range. */
static bool claim_time(const sv_json_t *obj, const char *name, int64_t *out, bool *bad, bool *out_of_range)
{
    sv_json_t *v = sv_json_get(obj, name);
    if (v == NULL)
        return false;
    if (v->type != SV_JSON_NUMBER) {
        *bad = true;
        return false;
    }
    double d = v->u.num.is_int ? (double)v->u.num.i : v->u.num.d; /* NumericDate may carry fractions */
    if (!(d >= 0 && d <= (double)MAX_NUMERIC_DATE)) {
        *out_of_range = true;
        return false;
    }
    *out = v->u.num.is_int ? v->u.num.i : (int64_t)d;
    return true;
}

/* Copies a string claim into out (cap bytes). Absent: "" and true. Not a
 * string, too long or with a NUL: false. */
static bool claim_str(const sv_json_t *obj, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    sv_json_t *v = sv_json_get(obj, name);
    if (v == NULL || v->type == SV_JSON_NULL)
        return true;
    if (v->type != SV_JSON_STRING || v->u.str.len >= cap || memchr(v->u.str.s, 0, v->u.str.len) != NULL)
        return false;
    memcpy(out, v->u.str.s, v->u.str.len);
    out[v->u.str.len] = 0;
    return true;
}

/* Copies an optional tenant or partner id claim into out (cap bytes). Absent:
 * "" and true. Present, it must be a valid id: null, "", another type or a
 * bad id give false. */
static bool claim_id(const sv_json_t *obj, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    sv_json_t *v = sv_json_get(obj, name);
    if (v == NULL)
        return true;
    if (v->type != SV_JSON_STRING || v->u.str.len >= cap || !sv_tenant_id_valid(v->u.str.s, v->u.str.len))
        return false;
    memcpy(out, v->u.str.s, v->u.str.len);
    out[v->u.str.len] = 0;
    return true;
}

static bool str_is(const sv_json_t *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == SV_JSON_STRING && v->u.str.len == n && memcmp(v->u.str.s, s, n) == 0;
}

static bool audience_ok(const sv_json_t *aud, const char *want)
{
    if (aud == NULL)
        return false;
    if (aud->type == SV_JSON_STRING)
        return str_is(aud, want);
    if (aud->type != SV_JSON_ARRAY)
        return false;
    for (const sv_json_t *v = aud->u.kids.first; v != NULL; v = v->next)
        if (str_is(v, want))
            return true;
    return false;
}

static void scopes_from_text(sv_principal_t *p)
{
    const char *s = p->scope_text;
    while (*s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n > 0)
            p->scopes |= sv_scope_from_name(s, n);
        s += n;
    }
}

sv_jwt_status_t sv_jwt_claims(const sv_jwt_t *t, const sv_jwt_expect_t *e, sv_principal_t *p)
{
    const sv_json_t *c = sv_json_root(t->payload);
    memset(p, 0, sizeof(*p));
    bool bad = false;

    /* issuer and audience first: a token for someone else says nothing more */
    sv_json_t *iss = sv_json_get(c, "iss");
    if (iss == NULL || e->issuer == NULL || !str_is(iss, e->issuer))
        return SV_JWT_BAD_ISSUER;
    if (!audience_ok(sv_json_get(c, "aud"), e->audience))
        return SV_JWT_BAD_AUDIENCE;

    bool range = false;
    bool has_exp = claim_time(c, "exp", &p->expires_at, &bad, &range);
    claim_time(c, "nbf", &p->not_before, &bad, &range);
    claim_time(c, "iat", &p->issued_at, &bad, &range);
    if (range)
        return SV_JWT_BAD_TIME;
    if (!has_exp || bad)
        return SV_JWT_MALFORMED; /* a token that never expires is not accepted */
    if (e->now > p->expires_at + SV_JWT_LEEWAY_S)
        return SV_JWT_EXPIRED;
    if (p->not_before != 0 && p->not_before - SV_JWT_LEEWAY_S > e->now)
        return SV_JWT_NOT_YET_VALID;
    /* a revocation by subject covers tokens issued until then: an iat far
     * ahead of this clock would escape it for as long, so beyond the leeway
     * it is refused (within it the clocks' skew decides, as for nbf) */
    if (p->issued_at - SV_JWT_LEEWAY_S > e->now)
        return SV_JWT_ISSUED_LATER;

    if (!claim_str(c, "sub", p->identity_id, sizeof(p->identity_id)) ||
        !sv_identity_id_valid(p->identity_id, strlen(p->identity_id)))
        return SV_JWT_BAD_SUBJECT;
    if (strncmp(p->identity_id, "sa:", 3) == 0)
        snprintf(p->identity_type, sizeof(p->identity_type), "service_account");
    else if (strncmp(p->identity_id, "user:", 5) == 0)
        snprintf(p->identity_type, sizeof(p->identity_type), "user");
    else
        return SV_JWT_BAD_SUBJECT;

    /* absent means none; "" or null would read as none too, so they are refused */
    if (!claim_id(c, "tenant_id", p->tenant_id, sizeof(p->tenant_id)))
        return SV_JWT_BAD_TENANT;
    if (!claim_id(c, "partner_id", p->partner_id, sizeof(p->partner_id)))
        return SV_JWT_BAD_PARTNER;
    if (!claim_str(c, "scope", p->scope_text, sizeof(p->scope_text)) ||
        !claim_str(c, "jti", p->jti, sizeof(p->jti)))
        return SV_JWT_MALFORMED;
    memcpy(p->issuer, iss->u.str.s, iss->u.str.len < sizeof(p->issuer) ? iss->u.str.len : sizeof(p->issuer) - 1);
    scopes_from_text(p);

    sv_json_t *groups = sv_json_get(c, "groups");
    if (groups != NULL && groups->type != SV_JSON_NULL) {
        if (groups->type != SV_JSON_ARRAY)
            return SV_JWT_MALFORMED;
        for (const sv_json_t *g = groups->u.kids.first; g != NULL; g = g->next) {
            if (g->type != SV_JSON_STRING)
                return SV_JWT_MALFORMED;
            if (p->n_groups < SV_PRINCIPAL_MAX_GROUPS && g->u.str.len < sizeof(p->groups[0]) &&
                sv_group_id_valid(g->u.str.s, g->u.str.len)) {
                memcpy(p->groups[p->n_groups], g->u.str.s, g->u.str.len);
                p->groups[p->n_groups][g->u.str.len] = 0;
                p->n_groups++;
            }
        }
    }
    sv_json_t *amr = sv_json_get(c, "amr");
    if (amr != NULL && amr->type != SV_JSON_NULL) {
        if (amr->type != SV_JSON_ARRAY)
            return SV_JWT_MALFORMED;
        for (const sv_json_t *v = amr->u.kids.first; v != NULL; v = v->next)
            if (str_is(v, "mfa"))
                p->mfa = true;
    }
    sv_json_t *roles = sv_json_get(c, "roles");
    if (roles != NULL && roles->type != SV_JSON_NULL) {
        if (roles->type != SV_JSON_ARRAY)
            return SV_JWT_MALFORMED;
        for (const sv_json_t *v = roles->u.kids.first; v != NULL; v = v->next) {
            if (str_is(v, "tenant_admin"))
                p->roles |= SV_ROLE_TENANT_ADMIN;
            else if (str_is(v, "partner_admin"))
                p->roles |= SV_ROLE_PARTNER_ADMIN;
        }
    }
    return SV_JWT_OK;
}

/* ---- JWK → key ---- */

/* Decodes a base64url member of jwk into a fresh buffer of at most cap bytes. */
static bool jwk_bytes(const sv_json_t *jwk, const char *name, uint8_t *out, size_t cap, size_t *len)
{
    size_t sl;
    const char *s = sv_json_get_str(jwk, name, &sl);
    return s != NULL && sl > 0 && b64url_decode(s, sl, out, cap, len) && *len > 0;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
            pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

#define WHY(...)                                                                                                       \
    do {                                                                                                               \
        snprintf(why, whylen, __VA_ARGS__);                                                                            \
        return SV_EINVAL;                                                                                              \
    } while (0)

static sv_err_t rsa_from_jwk(const sv_json_t *jwk, sv_jwk_t *out, char *why, size_t whylen)
{
    uint8_t n[1024], e[16];
    size_t nl, el;
    if (!jwk_bytes(jwk, "n", n, sizeof(n), &nl) || !jwk_bytes(jwk, "e", e, sizeof(e), &el))
        WHY("RSA key without valid n and e");
    const uint8_t *np = n;
    while (nl > 0 && *np == 0) {
        np++;
        nl--;
    }
    if (nl < 256)
        WHY("RSA key shorter than 2048 bits");
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof(out->material_hash));
    crypto_generichash_update(&h, (const uint8_t *)"RSA", 3);
    crypto_generichash_update(&h, np, nl);
    crypto_generichash_update(&h, e, el);
    crypto_generichash_final(&h, out->material_hash, sizeof(out->material_hash));
    BIGNUM *bn_n = BN_bin2bn(np, (int)nl, NULL), *bn_e = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    sv_err_t err = SV_ENOMEM;
    if (bn_n != NULL && bn_e != NULL && bld != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
        out->pkey = pkey_from_params("RSA", bld);
        err = out->pkey != NULL ? SV_OK : SV_EINVAL;
        if (err != SV_OK)
            snprintf(why, whylen, "RSA key rejected by OpenSSL");
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return err;
}

static sv_err_t ec_from_jwk(const sv_json_t *jwk, sv_jwk_t *out, char *why, size_t whylen)
{
    sv_json_t *crv = sv_json_get(jwk, "crv");
    if (crv == NULL || !str_is(crv, "P-256"))
        WHY("EC key not on curve P-256");
    uint8_t pub[65], x[40], y[40];
    size_t xl, yl;
    if (!jwk_bytes(jwk, "x", x, sizeof(x), &xl) || !jwk_bytes(jwk, "y", y, sizeof(y), &yl) || xl != 32 || yl != 32)
        WHY("EC key without 32-byte x and y");
    pub[0] = 0x04;
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    crypto_generichash(out->material_hash, sizeof(out->material_hash), pub, sizeof(pub), NULL, 0);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    sv_err_t err = SV_ENOMEM;
    if (bld != NULL && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub))) {
        out->pkey = pkey_from_params("EC", bld);
        err = out->pkey != NULL ? SV_OK : SV_EINVAL;
        if (err != SV_OK)
            snprintf(why, whylen, "EC key rejected by OpenSSL (not a point on P-256)");
    }
    OSSL_PARAM_BLD_free(bld);
    return err;
}

sv_err_t sv_jwk_parse(const sv_json_t *jwk, sv_jwk_t *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (jwk == NULL || jwk->type != SV_JSON_OBJECT)
        WHY("a key is not a JSON object");
    if (!claim_str(jwk, "kid", out->kid, sizeof(out->kid)))
        WHY("kid is not a string of at most %d bytes", SV_JWT_KID_MAX - 1);
    sv_json_t *use = sv_json_get(jwk, "use");
    if (use != NULL && !str_is(use, "sig"))
        WHY("key %s is not for signatures (use)", out->kid);
    if (sv_json_get(jwk, "d") != NULL)
        WHY("key %s holds private material", out->kid);
    sv_json_t *kty = sv_json_get(jwk, "kty");
    sv_jwt_alg_t kty_alg;
    if (kty != NULL && str_is(kty, "RSA"))
        kty_alg = SV_JWT_ALG_RS256;
    else if (kty != NULL && str_is(kty, "EC"))
        kty_alg = SV_JWT_ALG_ES256;
    else
        WHY("key %s has an unsupported kty", out->kid);
    size_t al = 0;
    const char *alg = sv_json_get_str(jwk, "alg", &al);
    if (sv_json_get(jwk, "alg") != NULL && (alg == NULL || alg_from_name(alg, al) != kty_alg))
        WHY("key %s has an alg other than %s", out->kid, sv_jwt_alg_name(kty_alg));
    out->alg = kty_alg;
    return kty_alg == SV_JWT_ALG_RS256 ? rsa_from_jwk(jwk, out, why, whylen) : ec_from_jwk(jwk, out, why, whylen);
}

static void jw_b64_bn(sv_jw_t *jw, sv_buf_t *tmp, const BIGNUM *bn, int pad)
{
    uint8_t bin[1024];
    int n = pad > 0 ? BN_bn2binpad(bn, bin, pad) : BN_bn2bin(bn, bin);
    tmp->len = 0;
    if (n > 0)
        sv_b64url_append(tmp, bin, (size_t)n);
    sv_jw_str(jw, (const char *)tmp->base, tmp->len);
}

sv_err_t sv_jwk_write(EVP_PKEY *pkey, const char *kid, sv_jwt_alg_t alg, sv_buf_t *out)
{
    BIGNUM *a = NULL, *b = NULL;
    sv_err_t err = SV_ECRYPTO;
    if (alg == SV_JWT_ALG_RS256) {
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &a) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b))
            goto free_bns;
    } else if (alg == SV_JWT_ALG_ES256) {
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b))
            goto free_bns;
    } else {
        err = SV_EINVAL;
        goto free_bns;
    }
    sv_buf_t tmp;
    sv_buf_init(&tmp, false);
    sv_jw_t jw;
    sv_jw_init(&jw, out);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "kty");
    sv_jw_cstr(&jw, alg == SV_JWT_ALG_RS256 ? "RSA" : "EC");
    if (alg == SV_JWT_ALG_RS256) {
        sv_jw_key(&jw, "n");
        jw_b64_bn(&jw, &tmp, a, 0);
        sv_jw_key(&jw, "e");
        jw_b64_bn(&jw, &tmp, b, 0);
    } else {
        sv_jw_key(&jw, "crv");
        sv_jw_cstr(&jw, "P-256");
        sv_jw_key(&jw, "x");
        jw_b64_bn(&jw, &tmp, a, 32);
        sv_jw_key(&jw, "y");
        jw_b64_bn(&jw, &tmp, b, 32);
    }
    sv_jw_key(&jw, "kid");
    sv_jw_cstr(&jw, kid);
    sv_jw_key(&jw, "alg");
    sv_jw_cstr(&jw, sv_jwt_alg_name(alg));
    sv_jw_key(&jw, "use");
    sv_jw_cstr(&jw, "sig");
    sv_jw_obj_end(&jw);
    err = (tmp.failed || out->failed) ? SV_ENOMEM : SV_OK;
    sv_buf_free(&tmp);
free_bns:
    BN_free(a);
    BN_free(b);
    return err;
}

/* ---- signing ---- */

sv_err_t sv_jwt_sign(EVP_PKEY *key, sv_jwt_alg_t alg, const char *kid, const char *payload, size_t payload_len,
                     sv_buf_t *out)
{
    if (sv_jwt_alg_name(alg) == NULL)
        return SV_EINVAL;
    sv_buf_t hdr;
    sv_buf_init(&hdr, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &hdr);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "alg");
    sv_jw_cstr(&jw, sv_jwt_alg_name(alg));
    sv_jw_key(&jw, "typ");
    sv_jw_cstr(&jw, "JWT");
    if (kid != NULL) {
        sv_jw_key(&jw, "kid");
        sv_jw_cstr(&jw, kid);
    }
    sv_jw_obj_end(&jw);
    size_t start = out->len;
    sv_b64url_append(out, hdr.base, hdr.len);
    sv_buf_putc(out, '.');
    sv_b64url_append(out, payload, payload_len);
    sv_buf_free(&hdr);
    if (out->failed)
        return SV_ENOMEM;
    size_t input_len = out->len - start;

    sv_err_t err = SV_ECRYPTO;
    uint8_t sig[1024], raw[64];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return SV_ENOMEM;
    if (EVP_DigestSignInit(ctx, NULL, sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, out->base + start, input_len) != 1)
        goto free_ctx;
    const uint8_t *s = sig;
    if (alg == SV_JWT_ALG_ES256) {
        const uint8_t *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
        if (es == NULL)
            goto free_ctx;
        bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32 &&
                  BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32;
        ECDSA_SIG_free(es);
        if (!ok)
            goto free_ctx;
        s = raw;
        sig_len = 64;
    }
    sv_buf_putc(out, '.');
    sv_b64url_append(out, s, sig_len);
    err = out->failed ? SV_ENOMEM : SV_OK;
free_ctx:
    EVP_MD_CTX_free(ctx);
    return err;
}
