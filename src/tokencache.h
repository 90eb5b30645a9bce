/*
 * tokencache.h - verified tokens, remembered by a keyed BLAKE2b-256 hash of
 * their text until they expire, so that a token's signature is checked once,
 * not at every request.
 *
 * The principal is stored packed (only the bytes its strings use, a few
 * hundred for a typical token, not the 6 KiB of sv_principal_t), so a hit
 * copies little and a full cache stays small.
 *
 * Bounded (a fixed number of slots, chosen at creation) and sharded: each
 * shard has its own mutex, so workers looking up different tokens do not
 * contend on one lock. When a token's probe window is full, the entry that
 * expires soonest makes room. The hash is keyed with a random per-process key,
 * so nobody can aim tokens at one shard or slot.
 */
#ifndef SV_TOKENCACHE_H
#define SV_TOKENCACHE_H

#include "src/jwt.h"
#include "src/principal.h"

#define SV_TOKEN_HASH_BYTES 32

typedef struct sv_tokcache sv_tokcache_t;

/** What is remembered of a verified token. */
typedef struct {
    int64_t valid_until;      /* exp + leeway, seconds since the epoch */
    uint64_t keyset_serial;   /* the key set it was verified with (sv_jwks_serial) */
    uint8_t key_material[16]; /* the verifying key's material hash */
    uint8_t issuer_kind;      /* which issuer (auth.c) */
    char kid[SV_JWT_KID_MAX];
    uint64_t identity_gen;    /* sv_identity_generation() when cache_roles was read; 0: never */
    uint32_t cache_roles;     /* roles ScaiVault granted the identity (identity cache) */
    bool active_in_cache;     /* the identity is in its tenant's identity cache, and active there */
} sv_tokcache_entry_t;

/** A cache of about capacity entries (rounded up per shard). Errors: SV_ENOMEM. */
sv_err_t sv_tokcache_new(size_t capacity, sv_tokcache_t **out);
/** Frees the cache and every entry. NULL is fine. */
void sv_tokcache_free(sv_tokcache_t *c);

/** The cache's hash of a token's text. */
void sv_tokcache_hash(const sv_tokcache_t *c, const char *token, size_t len, uint8_t out[SV_TOKEN_HASH_BYTES]);

/** Copies the entry for hash into *out and its principal into *p when present
 * and not past valid_until at now (fields of *p beyond what the principal
 * uses, e.g. groups past n_groups, are left as they were). Any thread. */
bool sv_tokcache_get(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], int64_t now, sv_tokcache_entry_t *out,
                     sv_principal_t *p);
/** Remembers e and the principal p (the token's claims) under hash, replacing
 * an entry with the same hash. Any thread. */
void sv_tokcache_put(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], const sv_tokcache_entry_t *e,
                     const sv_principal_t *p);
/** Sets the key-set serial of the entry for hash, if present (after a
 * refresh showed its key unchanged). */
void sv_tokcache_touch(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], uint64_t keyset_serial);
/** Forgets the entry for hash. */
void sv_tokcache_remove(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES]);
/** Calls fn for each live entry with its principal (under the shard's lock:
 * fn must be quick and must not call back into the cache); fn returns false
 * to stop. */
void sv_tokcache_each(sv_tokcache_t *c, bool (*fn)(void *arg, const sv_tokcache_entry_t *e, const sv_principal_t *p),
                      void *arg);
/** Entries held now. */
size_t sv_tokcache_size(sv_tokcache_t *c);

#endif
