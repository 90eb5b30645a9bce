/*
 * tokencache.c - the verified-token cache (tokencache.h).
 *
 * 16 shards, picked by the first byte of the token's keyed hash; each shard
 * is an open-addressing table of pointers to heap entries with a probe window
 * of 8 slots and its own mutex. A hit costs the hash of the token (~1 µs for
 * a typical JWT), one uncontended lock, a small copy and the unpacking of the
 * principal. The principal is packed (length-prefixed strings) because the
 * full struct is 6 KiB, mostly empty group slots: copying that, twice, and
 * keeping thousands of them in memory cost more than the rest of the lookup.
 * Entries are allocated per slot and reused (grown when a bigger principal
 * comes), so a full cache does not churn malloc.
 *
 * Any thread.
 */
#include "sv_autoconf.h"

#include "src/tokencache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define PROBE 8

typedef struct {
    uint8_t hash[SV_TOKEN_HASH_BYTES];
    bool used;
    sv_tokcache_entry_t e;
    size_t cap, len; /* of packed */
    uint8_t packed[];
} slot_t;

/* ---- packing the principal ---- */

static uint8_t *put_str(uint8_t *o, const char *s)
{
    size_t n = strlen(s);
    o[0] = (uint8_t)(n >> 8);
    o[1] = (uint8_t)n;
    memcpy(o + 2, s, n);
    return o + 2 + n;
}

static const uint8_t *get_str(const uint8_t *in, char *out, size_t cap)
{
    size_t n = ((size_t)in[0] << 8) | in[1];
    if (n >= cap)
        n = cap - 1; /* cannot happen: packed from a principal of the same shape */
    memcpy(out, in + 2, n);
    out[n] = 0;
    return in + 2 + (((size_t)in[0] << 8) | in[1]);
}

/* The bytes pack() needs for p. */
static size_t packed_size(const sv_principal_t *p)
{
    size_t n = 4 + 4 + 1 + 1 + 3 * 8 + 7 * 2;
    n += strlen(p->identity_id) + strlen(p->identity_type) + strlen(p->tenant_id) + strlen(p->partner_id) +
         strlen(p->scope_text) + strlen(p->jti) + strlen(p->issuer);
    for (unsigned i = 0; i < p->n_groups; i++)
        n += 2 + strlen(p->groups[i]);
    return n;
}

static void pack(const sv_principal_t *p, uint8_t *o)
{
    sv_put_be32(o, p->scopes);
    sv_put_be32(o + 4, p->roles);
    o[8] = p->mfa;
    o[9] = (uint8_t)p->n_groups;
    sv_put_be64(o + 10, (uint64_t)p->issued_at);
    sv_put_be64(o + 18, (uint64_t)p->expires_at);
    sv_put_be64(o + 26, (uint64_t)p->not_before);
    o += 34;
    o = put_str(o, p->identity_id);
    o = put_str(o, p->identity_type);
    o = put_str(o, p->tenant_id);
    o = put_str(o, p->partner_id);
    o = put_str(o, p->scope_text);
    o = put_str(o, p->jti);
    o = put_str(o, p->issuer);
    for (unsigned i = 0; i < p->n_groups; i++)
        o = put_str(o, p->groups[i]);
}

static void unpack(const uint8_t *in, sv_principal_t *p)
{
    p->bootstrap = false;
    p->scopes = sv_get_be32(in);
    p->roles = sv_get_be32(in + 4);
    p->mfa = in[8] != 0;
    p->n_groups = in[9];
    p->issued_at = (int64_t)sv_get_be64(in + 10);
    p->expires_at = (int64_t)sv_get_be64(in + 18);
    p->not_before = (int64_t)sv_get_be64(in + 26);
    in += 34;
    in = get_str(in, p->identity_id, sizeof(p->identity_id));
    in = get_str(in, p->identity_type, sizeof(p->identity_type));
    in = get_str(in, p->tenant_id, sizeof(p->tenant_id));
    in = get_str(in, p->partner_id, sizeof(p->partner_id));
    in = get_str(in, p->scope_text, sizeof(p->scope_text));
    in = get_str(in, p->jti, sizeof(p->jti));
    in = get_str(in, p->issuer, sizeof(p->issuer));
    for (unsigned i = 0; i < p->n_groups && i < SV_PRINCIPAL_MAX_GROUPS; i++)
        in = get_str(in, p->groups[i], sizeof(p->groups[i]));
}

typedef struct {
    pthread_mutex_t lock;
    slot_t **slots; /* NULL until first used */
    size_t n;       /* a power of two */
    size_t live;
    char pad[64];
} shard_t;

struct sv_tokcache {
    uint8_t key[crypto_generichash_KEYBYTES];
    shard_t shards[SHARDS];
};

sv_err_t sv_tokcache_new(size_t capacity, sv_tokcache_t **out)
{
    sv_tokcache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return SV_ENOMEM;
    randombytes_buf(c->key, sizeof(c->key));
    size_t per = 16;
    while (per * SHARDS < capacity)
        per *= 2;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].lock, NULL);
        c->shards[i].n = per;
        c->shards[i].slots = calloc(per, sizeof(slot_t *));
        if (c->shards[i].slots == NULL) {
            sv_tokcache_free(c);
            return SV_ENOMEM;
        }
    }
    *out = c;
    return SV_OK;
}

void sv_tokcache_free(sv_tokcache_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        for (size_t j = 0; s->slots != NULL && j < s->n; j++) {
            if (s->slots[j] != NULL)
                sodium_memzero(s->slots[j], sizeof(slot_t) + s->slots[j]->cap);
            free(s->slots[j]);
        }
        free(s->slots);
        pthread_mutex_destroy(&s->lock);
    }
    sodium_memzero(c->key, sizeof(c->key));
    free(c);
}

void sv_tokcache_hash(const sv_tokcache_t *c, const char *token, size_t len, uint8_t out[SV_TOKEN_HASH_BYTES])
{
    crypto_generichash(out, SV_TOKEN_HASH_BYTES, (const uint8_t *)token, len, c->key, sizeof(c->key));
}

static shard_t *shard_of(sv_tokcache_t *c, const uint8_t *hash, size_t *start)
{
    shard_t *s = &c->shards[hash[0] % SHARDS];
    uint64_t h;
    memcpy(&h, hash + 1, sizeof(h));
    *start = (size_t)h & (s->n - 1);
    return s;
}

/* The slot holding hash, or NULL. Shard locked. */
static slot_t *find_locked(shard_t *s, size_t start, const uint8_t *hash)
{
    for (size_t i = 0; i < PROBE; i++) {
        slot_t *sl = s->slots[(start + i) & (s->n - 1)];
        if (sl != NULL && sl->used && memcmp(sl->hash, hash, SV_TOKEN_HASH_BYTES) == 0)
            return sl;
    }
    return NULL;
}

bool sv_tokcache_get(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], int64_t now, sv_tokcache_entry_t *out,
                     sv_principal_t *p)
{
    size_t start;
    shard_t *s = shard_of(c, hash, &start);
    pthread_mutex_lock(&s->lock);
    slot_t *sl = find_locked(s, start, hash);
    bool hit = false;
    if (sl != NULL) {
        if (sl->e.valid_until < now) {
            sl->used = false; /* expired: the slot is free again */
            s->live--;
        } else {
            *out = sl->e;
            unpack(sl->packed, p);
            hit = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return hit;
}

void sv_tokcache_put(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], const sv_tokcache_entry_t *e,
                     const sv_principal_t *p)
{
    size_t need = packed_size(p);
    size_t start;
    shard_t *s = shard_of(c, hash, &start);
    pthread_mutex_lock(&s->lock);
    slot_t *target = find_locked(s, start, hash);
    size_t target_i = 0;
    bool found = target != NULL;
    if (found) {
        for (size_t i = 0; i < PROBE; i++)
            if (s->slots[(start + i) & (s->n - 1)] == target)
                target_i = (start + i) & (s->n - 1);
    } else {
        /* an empty or unused slot, else the one expiring soonest */
        int64_t soonest = INT64_MAX;
        for (size_t i = 0; i < PROBE; i++) {
            size_t idx = (start + i) & (s->n - 1);
            slot_t *sl = s->slots[idx];
            if (sl == NULL || !sl->used) {
                target_i = idx;
                target = sl;
                break;
            }
            if (sl->e.valid_until < soonest) {
                soonest = sl->e.valid_until;
                target_i = idx;
                target = sl;
            }
        }
    }
    if (target == NULL || target->cap < need) {
        size_t cap = need < 512 ? 512 : need;
        slot_t *grown = realloc(target, sizeof(*grown) + cap);
        if (grown == NULL) {
            pthread_mutex_unlock(&s->lock);
            return;
        }
        if (target == NULL)
            grown->used = false;
        grown->cap = cap;
        target = grown;
        s->slots[target_i] = target;
    }
    if (!target->used)
        s->live++;
    memcpy(target->hash, hash, SV_TOKEN_HASH_BYTES);
    target->e = *e;
    pack(p, target->packed);
    target->len = need;
    target->used = true;
    pthread_mutex_unlock(&s->lock);
}

void sv_tokcache_touch(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], uint64_t keyset_serial)
{
    size_t start;
    shard_t *s = shard_of(c, hash, &start);
    pthread_mutex_lock(&s->lock);
    slot_t *sl = find_locked(s, start, hash);
    if (sl != NULL)
        sl->e.keyset_serial = keyset_serial;
    pthread_mutex_unlock(&s->lock);
}

void sv_tokcache_remove(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES])
{
    size_t start;
    shard_t *s = shard_of(c, hash, &start);
    pthread_mutex_lock(&s->lock);
    slot_t *sl = find_locked(s, start, hash);
    if (sl != NULL) {
        sl->used = false;
        s->live--;
    }
    pthread_mutex_unlock(&s->lock);
}

void sv_tokcache_each(sv_tokcache_t *c, bool (*fn)(void *arg, const sv_tokcache_entry_t *e, const sv_principal_t *p),
                      void *arg)
{
    sv_principal_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return;
    int64_t now = sv_now_s();
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        bool go = true;
        for (size_t j = 0; go && j < s->n; j++) {
            slot_t *sl = s->slots[j];
            if (sl != NULL && sl->used && sl->e.valid_until >= now) {
                unpack(sl->packed, p);
                go = fn(arg, &sl->e, p);
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (!go)
            break;
    }
    free(p);
}

size_t sv_tokcache_size(sv_tokcache_t *c)
{
    size_t n = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        n += c->shards[i].live;
        pthread_mutex_unlock(&c->shards[i].lock);
    }
    return n;
}
