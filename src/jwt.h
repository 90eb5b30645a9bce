/*
 * jwt.h - JSON Web Tokens as ScaiVault accepts them: compact JWS, RS256 or
 * ES256 only, verified with OpenSSL against a key chosen by `kid`, claims
 * checked here (libjwt checks none), mapped onto a principal.
 *
 * A token goes through three steps, each with its own failure:
 *   sv_jwt_parse       → size limits, base64url, JSON (depth limit, no
 *                         duplicate keys), alg in {RS256, ES256}
 *   sv_jwt_verify      → the JWK's algorithm equals the token's alg, then the
 *                         signature (EVP_DigestVerify; ES256 r||s → DER)
 *   sv_jwt_claims      → iss, aud, exp/nbf with leeway, sub, the rest into an
 *                         sv_principal_t
 * Pure functions: any thread.
 */
#ifndef SV_JWT_H
#define SV_JWT_H

#include <openssl/evp.h>

#include "src/json.h"
#include "src/principal.h"

#define SV_JWT_MAX_TOKEN 16384  /* whole token, bytes */
#define SV_JWT_MAX_HEADER 4096  /* encoded header, bytes */
#define SV_JWT_LEEWAY_S 60      /* clock skew allowed on exp and nbf */
#define SV_JWT_KID_MAX 128

typedef enum {
    SV_JWT_ALG_NONE_ = 0,
    SV_JWT_ALG_RS256 = 1,
    SV_JWT_ALG_ES256 = 2,
} sv_jwt_alg_t;

/* Why a token was refused. SV_JWT_EXPIRED maps to token_expired; every other
 * failure to token_invalid. */
typedef enum {
    SV_JWT_OK = 0,
    SV_JWT_MALFORMED,     /* not three base64url parts, bad JSON, bad claim types */
    SV_JWT_TOO_LARGE,     /* over SV_JWT_MAX_TOKEN or SV_JWT_MAX_HEADER */
    SV_JWT_BAD_ALG,       /* alg missing, none, HS*, or anything but RS256/ES256 */
    SV_JWT_UNKNOWN_KID,   /* no key with this kid (after a refresh) */
    SV_JWT_KEY_MISMATCH,  /* the key's algorithm is not the token's alg */
    SV_JWT_BAD_SIGNATURE,
    SV_JWT_EXPIRED,       /* exp + leeway is past */
    SV_JWT_NOT_YET_VALID, /* nbf - leeway is in the future */
    SV_JWT_ISSUED_LATER,  /* iat - leeway is in the future */
    SV_JWT_BAD_TIME,      /* exp, nbf or iat not a time from 1970 to 9999 */
    SV_JWT_BAD_ISSUER,
    SV_JWT_BAD_AUDIENCE,
    SV_JWT_BAD_SUBJECT,   /* sub missing or not "sa:..." / "user:..." */
    SV_JWT_BAD_TENANT,    /* tenant_id present but not a tenant id ("", null, wrong type) */
    SV_JWT_BAD_PARTNER,   /* partner_id present but not a partner id ("", null, wrong type) */
    SV_JWT_NO_MEMORY,
} sv_jwt_status_t;

/** A short human text for st ("the signature does not verify"). Static. */
const char *sv_jwt_status_text(sv_jwt_status_t st);

/** A public key from a JWKS: its kid, the one algorithm it may verify, and
 * the parsed key (owned; freed by whoever owns the sv_jwk_t). */
typedef struct {
    char kid[SV_JWT_KID_MAX];
    sv_jwt_alg_t alg;
    EVP_PKEY *pkey;
    uint8_t material_hash[16]; /* BLAKE2b of the key material: reuse across refreshes */
} sv_jwk_t;

/** A parsed (not yet verified) token. Its fields point into memory that
 * sv_jwt_free releases. */
typedef struct {
    sv_jwt_alg_t alg;
    char kid[SV_JWT_KID_MAX];   /* "" when the header has none */
    const char *signing_input;  /* "header.payload", into the caller's token */
    size_t signing_input_len;
    uint8_t sig[512];
    size_t sig_len;
    sv_json_doc_t *payload;     /* the claims object */
} sv_jwt_t;

/** Splits and decodes token (len bytes, need not be NUL-terminated; it must
 * outlive t). On SV_JWT_OK the caller frees t with sv_jwt_free. On any other
 * status nothing needs freeing. */
sv_jwt_status_t sv_jwt_parse(const char *token, size_t len, sv_jwt_t *t);
/** Frees what sv_jwt_parse allocated. Safe on a zeroed t. */
void sv_jwt_free(sv_jwt_t *t);

/** Checks that key may verify t (key->alg == t->alg) and that the signature
 * verifies. SV_JWT_KEY_MISMATCH, SV_JWT_BAD_SIGNATURE. */
sv_jwt_status_t sv_jwt_verify(const sv_jwt_t *t, const sv_jwk_t *key);

/** What the claims must say. */
typedef struct {
    const char *issuer;   /* exact iss */
    const char *audience; /* aud (string, or array) must contain it */
    int64_t now;          /* seconds since the epoch */
} sv_jwt_expect_t;

/** Checks iss, aud, exp, nbf and maps the claims onto *p (cleared first):
 * sub → identity_id and identity_type (sa: service_account, user: user),
 * tenant_id, partner_id (absent: none; present, each must be a valid id: an
 * empty string or null is SV_JWT_BAD_TENANT / SV_JWT_BAD_PARTNER), scope
 * (text and bits; unknown scopes ignored),
 * groups (first SV_PRINCIPAL_MAX_GROUPS), amr contains "mfa" → mfa, roles
 * (tenant_admin, partner_admin; a super_admin role is never taken from a
 * token), jti, iss, iat, exp, nbf. exp is required. */
sv_jwt_status_t sv_jwt_claims(const sv_jwt_t *t, const sv_jwt_expect_t *e, sv_principal_t *p);

/* ---- keys and signing (JWKS, the dev issuer, tests, benchmarks) ---- */

/** Builds a key from one JWK object (kty RSA with n/e, or kty EC, crv P-256,
 * with x/y). The algorithm comes from the JWK's alg when present (it must
 * agree with kty/crv), else from kty/crv. RSA keys under 2048 bits, a `use`
 * other than "sig", and private members are refused. On SV_OK the caller owns
 * out->pkey. Errors: SV_EINVAL (why says what), SV_ENOMEM. */
sv_err_t sv_jwk_parse(const sv_json_t *jwk, sv_jwk_t *out, char *why, size_t whylen);
/** Appends the public JWK of pkey ({"kty",...,"kid","alg","use":"sig"}) to out. */
sv_err_t sv_jwk_write(EVP_PKEY *pkey, const char *kid, sv_jwt_alg_t alg, sv_buf_t *out);

/** Signs: appends "b64(header).b64(payload).b64(sig)" to out, with header
 * {"alg","typ":"JWT","kid"}. payload is the claims JSON text. ES256
 * signatures are emitted as raw r||s. Errors: SV_EINVAL, SV_ECRYPTO, SV_ENOMEM. */
sv_err_t sv_jwt_sign(EVP_PKEY *key, sv_jwt_alg_t alg, const char *kid, const char *payload, size_t payload_len,
                     sv_buf_t *out);

/** "RS256" / "ES256", or NULL. */
const char *sv_jwt_alg_name(sv_jwt_alg_t alg);

/** Appends the base64url (no padding) encoding of data to out. */
void sv_b64url_append(sv_buf_t *out, const void *data, size_t len);

#endif
