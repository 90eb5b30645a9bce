/*
 * tokencache.c - the verified-token cache (tokencache.h).
 *
 * 16 shards, picked by the first byte of the token's keyed hash; each shard
 * is an open-addressing table of pointers to heap entries with a probe window
 * of 8 slots and its own mutex. A hit costs the hash of the token (~1 µs for
 * a typical JWT), one uncontended lock and one copy of the entry. Entries are
 * allocated once per slot and reused, so a full cache does not churn malloc.
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
} slot_t;

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
                sodium_memzero(s->slots[j], sizeof(slot_t));
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

bool sv_tokcache_get(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], int64_t now, sv_tokcache_entry_t *out)
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
            hit = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return hit;
}

void sv_tokcache_put(sv_tokcache_t *c, const uint8_t hash[SV_TOKEN_HASH_BYTES], const sv_tokcache_entry_t *e)
{
    size_t start;
    shard_t *s = shard_of(c, hash, &start);
    pthread_mutex_lock(&s->lock);
    slot_t *target = find_locked(s, start, hash);
    size_t target_i = 0;
    if (target == NULL) {
        /* an empty or unused slot, else the one expiring soonest */
        int64_t soonest = INT64_MAX;
        for (size_t i = 0; i < PROBE; i++) {
            size_t idx = (start + i) & (s->n - 1);
            slot_t *sl = s->slots[idx];
            if (sl == NULL || !sl->used) {
                target_i = idx;
                target = sl;
                soonest = INT64_MIN;
                break;
            }
            if (sl->e.valid_until < soonest) {
                soonest = sl->e.valid_until;
                target_i = idx;
                target = sl;
            }
        }
        if (target == NULL) {
            target = malloc(sizeof(*target));
            if (target == NULL) {
                pthread_mutex_unlock(&s->lock);
                return;
            }
            target->used = false;
            s->slots[target_i] = target;
        }
        if (!target->used)
            s->live++;
    }
    memcpy(target->hash, hash, SV_TOKEN_HASH_BYTES);
    target->e = *e;
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

void sv_tokcache_each(sv_tokcache_t *c, bool (*fn)(void *arg, const sv_tokcache_entry_t *e), void *arg)
{
    int64_t now = sv_now_s();
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        bool go = true;
        for (size_t j = 0; go && j < s->n; j++) {
            slot_t *sl = s->slots[j];
            if (sl != NULL && sl->used && sl->e.valid_until >= now)
                go = fn(arg, &sl->e);
        }
        pthread_mutex_unlock(&s->lock);
        if (!go)
            return;
    }
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
