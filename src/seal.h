/*
 * seal.h - authenticated encryption of secret versions (and of the other
 * small things a data key protects, such as list cursors) with
 * XChaCha20-Poly1305 (libsodium), a random 24-byte nonce per seal.
 *
 * A sealed blob is nonce || ciphertext || tag. What the blob belongs to is
 * bound as associated data: for a secret version, the owner (tenant or
 * partner), the path, the version number and the data key's id, each
 * length-prefixed or fixed-width so that no two different tuples give the same
 * bytes. A blob copied to another path, version or tenant fails to open.
 */
#ifndef SV_SEAL_H
#define SV_SEAL_H

#include <sodium.h>

#include "src/sv.h"

#define SV_SEAL_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SV_SEAL_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SV_SEAL_OVERHEAD (SV_SEAL_NONCE_BYTES + SV_SEAL_TAG_BYTES)
#define SV_SEAL_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
/* domain tag (16) + owner (4 + 80) + path (4 + 512) + version (8) + key id (4) */
#define SV_SEAL_AAD_MAX 640

/** Associated data of one secret version. Written to out (SV_SEAL_AAD_MAX
 * bytes); returns its length, or 0 when a field is too long. */
size_t sv_seal_aad_version(uint8_t out[SV_SEAL_AAD_MAX], const char *owner, size_t owner_len, const char *path,
                           size_t path_len, uint64_t version, uint32_t key_id);

/** Associated data for a cursor of kind ("list", "versions") bound to owner
 * and scope (the list prefix, or the secret path). Same return as above. */
size_t sv_seal_aad_cursor(uint8_t out[SV_SEAL_AAD_MAX], const char *kind, const char *owner, size_t owner_len,
                          const char *scope, size_t scope_len);

/** Seals pt (len bytes) into out, which must hold len + SV_SEAL_OVERHEAD
 * bytes (nonce || ciphertext || tag). pt and out must not overlap. */
void sv_seal(uint8_t *out, const uint8_t *pt, size_t len, const uint8_t *aad, size_t aad_len,
             const uint8_t key[SV_SEAL_KEY_BYTES]);

/** Opens sealed (len bytes) into pt, which must hold len - SV_SEAL_OVERHEAD
 * bytes (secure memory: it receives plaintext). Writes the plaintext length
 * to *pt_len. Errors: SV_ECRYPTO (too short, wrong key, wrong associated data,
 * tampered); the output is wiped then. */
SV_MUST_CHECK sv_err_t sv_seal_open(uint8_t *pt, size_t *pt_len, const uint8_t *sealed, size_t len, const uint8_t *aad,
                                    size_t aad_len, const uint8_t key[SV_SEAL_KEY_BYTES]);

#endif
