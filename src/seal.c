/*
 * seal.c - XChaCha20-Poly1305 sealing with bound associated data (seal.h).
 *
 * The design choice: associated data is built from typed, length-prefixed
 * fields behind a domain tag per use ("sv-version-v1", "sv-cursor-v1"), so a
 * version blob can never be accepted as a cursor, nor "a/b" + version 12 be
 * confused with "a/b1" + version 2. Pure functions; any thread.
 */
#include "sv_autoconf.h"

#include "src/seal.h"

#include <string.h>

typedef struct {
    uint8_t *p;
    size_t len;
    bool overflow;
} aad_t;

static void aad_raw(aad_t *a, const void *p, size_t n)
{
    if (a->overflow || n > SV_SEAL_AAD_MAX - a->len) {
        a->overflow = true;
        return;
    }
    memcpy(a->p + a->len, p, n);
    a->len += n;
}

static void aad_field(aad_t *a, const void *p, size_t n)
{
    uint8_t l[4];
    if (n > UINT32_MAX) {
        a->overflow = true;
        return;
    }
    sv_put_be32(l, (uint32_t)n);
    aad_raw(a, l, 4);
    aad_raw(a, p, n);
}

size_t sv_seal_aad_version(uint8_t out[SV_SEAL_AAD_MAX], const char *owner, size_t owner_len, const char *path,
                           size_t path_len, uint64_t version, uint32_t key_id)
{
    aad_t a = {out, 0, false};
    aad_field(&a, "sv-version-v1", 13);
    aad_field(&a, owner, owner_len);
    aad_field(&a, path, path_len);
    uint8_t num[12];
    sv_put_be64(num, version);
    sv_put_be32(num + 8, key_id);
    aad_raw(&a, num, sizeof(num));
    return a.overflow ? 0 : a.len;
}

size_t sv_seal_aad_cursor(uint8_t out[SV_SEAL_AAD_MAX], const char *kind, const char *owner, size_t owner_len,
                          const char *scope, size_t scope_len)
{
    aad_t a = {out, 0, false};
    aad_field(&a, "sv-cursor-v1", 12);
    aad_field(&a, kind, strlen(kind));
    aad_field(&a, owner, owner_len);
    aad_field(&a, scope, scope_len);
    return a.overflow ? 0 : a.len;
}

void sv_seal(uint8_t *out, const uint8_t *pt, size_t len, const uint8_t *aad, size_t aad_len,
             const uint8_t key[SV_SEAL_KEY_BYTES])
{
    randombytes_buf(out, SV_SEAL_NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SV_SEAL_NONCE_BYTES, NULL, pt, len, aad, aad_len, NULL, out, key);
}

sv_err_t sv_seal_open(uint8_t *pt, size_t *pt_len, const uint8_t *sealed, size_t len, const uint8_t *aad,
                      size_t aad_len, const uint8_t key[SV_SEAL_KEY_BYTES])
{
    *pt_len = 0;
    if (len < SV_SEAL_OVERHEAD)
        return SV_ECRYPTO;
    size_t n = len - SV_SEAL_OVERHEAD;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, sealed + SV_SEAL_NONCE_BYTES,
                                                   len - SV_SEAL_NONCE_BYTES, aad, aad_len, sealed, key) != 0) {
        sodium_memzero(pt, n);
        return SV_ECRYPTO;
    }
    *pt_len = n;
    return SV_OK;
}
