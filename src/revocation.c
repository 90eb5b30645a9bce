/*
 * revocation.c - stored and in-memory revocations (revocation.h).
 *
 * The in-memory set is a hash table keyed by BLAKE2b-128 of (kind, tenant,
 * subject) under a reader-writer lock. Revocations are rare and requests many,
 * so the common case - nothing revoked - is one atomic load and no lock.
 *
 * Load: the start-up thread. Add, check, prune_memory: any thread. The _tx
 * functions: inside a writer unit's apply (or a batch hook).
 */
#include "sv_autoconf.h"

#include "src/revocation.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/key.h"
#include "store/record.h"

#define REVOCATION_RECORD_V1 1

typedef struct {
    uint8_t key[16];
    int64_t revoked_at, expires_at;
    bool used;
} mem_entry_t;

struct sv_revocations {
    pthread_rwlock_t lock;
    mem_entry_t *slots; /* open addressing, n a power of two */
    size_t n, live;
    _Atomic size_t count; /* live, readable without the lock */
};

static void mem_key(uint8_t kind, const char *tenant, const char *subject, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, &kind, 1);
    crypto_generichash_update(&h, (const uint8_t *)tenant, strlen(tenant) + 1);
    crypto_generichash_update(&h, (const uint8_t *)subject, strlen(subject) + 1);
    crypto_generichash_final(&h, out, 16);
}

static size_t slot_of(const sv_revocations_t *rv, const uint8_t key[16])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return (size_t)h & (rv->n - 1);
}

/* Inserts without growing. Locked for writing. */
static void insert_locked(sv_revocations_t *rv, const uint8_t key[16], int64_t revoked_at, int64_t expires_at)
{
    for (size_t i = slot_of(rv, key);; i = (i + 1) & (rv->n - 1)) {
        mem_entry_t *e = &rv->slots[i];
        if (e->used && memcmp(e->key, key, 16) == 0) {
            if (revoked_at > e->revoked_at)
                e->revoked_at = revoked_at;
            if (expires_at > e->expires_at)
                e->expires_at = expires_at;
            return;
        }
        if (!e->used) {
            memcpy(e->key, key, 16);
            e->revoked_at = revoked_at;
            e->expires_at = expires_at;
            e->used = true;
            rv->live++;
            return;
        }
    }
}

/* Rebuilds the table with room for twice the live entries, dropping expired
 * ones. Locked for writing. */
static void rebuild_locked(sv_revocations_t *rv, int64_t now)
{
    size_t want = 64;
    while (want < rv->live * 4)
        want *= 2;
    mem_entry_t *fresh = calloc(want, sizeof(*fresh));
    if (fresh == NULL)
        return; /* keep the old table; inserts still fit (the load stays < 1) */
    mem_entry_t *old = rv->slots;
    size_t old_n = rv->n;
    rv->slots = fresh;
    rv->n = want;
    rv->live = 0;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].used && old[i].expires_at >= now)
            insert_locked(rv, old[i].key, old[i].revoked_at, old[i].expires_at);
    free(old);
    atomic_store(&rv->count, rv->live);
}

void sv_revocations_add(sv_revocations_t *rv, const sv_revocation_t *r)
{
    uint8_t key[16];
    mem_key(r->kind, r->tenant_id, r->subject, key);
    pthread_rwlock_wrlock(&rv->lock);
    if ((rv->live + 1) * 2 > rv->n)
        rebuild_locked(rv, sv_now_s());
    if (rv->live + 1 < rv->n)
        insert_locked(rv, key, r->revoked_at, r->expires_at);
    atomic_store(&rv->count, rv->live);
    pthread_rwlock_unlock(&rv->lock);
}

/* The entry for key, copied; false when absent or expired. Locked for reading. */
static bool lookup_locked(sv_revocations_t *rv, uint8_t kind, const char *tenant, const char *subject, int64_t now,
                          mem_entry_t *out)
{
    uint8_t key[16];
    mem_key(kind, tenant, subject, key);
    for (size_t i = slot_of(rv, key), probes = 0; probes < rv->n; i = (i + 1) & (rv->n - 1), probes++) {
        mem_entry_t *e = &rv->slots[i];
        if (!e->used)
            return false;
        if (memcmp(e->key, key, 16) == 0) {
            *out = *e;
            return e->expires_at >= now;
        }
    }
    return false;
}

bool sv_revocations_check(sv_revocations_t *rv, const sv_principal_t *p, int64_t now)
{
    if (rv == NULL || atomic_load_explicit(&rv->count, memory_order_acquire) == 0)
        return false;
    bool revoked = false;
    mem_entry_t e;
    pthread_rwlock_rdlock(&rv->lock);
    const char *tenants[2] = {p->tenant_id, ""};
    for (int t = 0; t < (p->tenant_id[0] ? 2 : 1) && !revoked; t++) {
        const char *tn = p->tenant_id[0] ? tenants[t] : "";
        if (p->jti[0] && lookup_locked(rv, SV_REVOKE_JTI, tn, p->jti, now, &e))
            revoked = true;
        else if (lookup_locked(rv, SV_REVOKE_IDENTITY, tn, p->identity_id, now, &e) && p->issued_at <= e.revoked_at)
            revoked = true;
    }
    pthread_rwlock_unlock(&rv->lock);
    return revoked;
}

void sv_revocations_prune_memory(sv_revocations_t *rv, int64_t now)
{
    pthread_rwlock_wrlock(&rv->lock);
    rebuild_locked(rv, now);
    pthread_rwlock_unlock(&rv->lock);
}

size_t sv_revocations_count(sv_revocations_t *rv)
{
    return rv != NULL ? atomic_load(&rv->count) : 0;
}

/* ---- storage ---- */

static bool rev_key(sv_key_t *k, uint8_t kind, const char *tenant, const char *subject)
{
    sv_key_init(k);
    sv_key_u8(k, kind);
    sv_key_str(k, tenant, strlen(tenant));
    sv_key_str(k, subject, strlen(subject));
    return !k->overflow;
}

static sv_err_t decode(sv_bytes_t key, sv_bytes_t val, sv_revocation_t *r);

sv_err_t sv_revocation_put_tx(sv_wtxn_t *tx, sv_revocation_t *r)
{
    if ((r->kind != SV_REVOKE_JTI && r->kind != SV_REVOKE_IDENTITY) || r->subject[0] == 0)
        return SV_EINVAL;
    sv_key_t k;
    if (!rev_key(&k, r->kind, r->tenant_id, r->subject))
        return SV_EINVAL;
    /* the same token or subject revoked again: keep the later revocation
     * time and the later expiry, as the in-memory set does, so that a restart
     * changes nothing */
    sv_bytes_t old;
    sv_err_t err = sv_txn_get(sv_wtxn_txn(tx), SV_DB_REVOCATIONS, sv_key_bytes(&k), &old);
    if (err == SV_OK) {
        sv_revocation_t prev;
        if ((err = decode(sv_key_bytes(&k), old, &prev)) != SV_OK)
            return err;
        if (prev.revoked_at > r->revoked_at)
            r->revoked_at = prev.revoked_at;
        if (prev.expires_at > r->expires_at)
            r->expires_at = prev.expires_at;
    } else if (err != SV_ENOTFOUND) {
        return err;
    }
    sv_recw_t w;
    sv_recw_init(&w, REVOCATION_RECORD_V1);
    sv_recw_str(&w, r->reason);
    sv_recw_str(&w, r->revoked_by);
    sv_recw_i64(&w, r->revoked_at);
    sv_recw_i64(&w, r->expires_at);
    sv_bytes_t v;
    err = sv_recw_result(&w, &v);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_REVOCATIONS, sv_key_bytes(&k), v);
    sv_recw_free(&w);
    return err;
}

/* Decodes a stored revocation (key and value). */
static sv_err_t decode(sv_bytes_t key, sv_bytes_t val, sv_revocation_t *r)
{
    memset(r, 0, sizeof(*r));
    if (key.len < 3)
        return SV_ECORRUPT;
    r->kind = key.base[0];
    size_t off = 1;
    sv_bytes_t t, s;
    if (!sv_key_read_str(key, &off, &t) || !sv_key_read_str(key, &off, &s) || t.len >= sizeof(r->tenant_id) ||
        s.len >= sizeof(r->subject))
        return SV_ECORRUPT;
    memcpy(r->tenant_id, t.base, t.len);
    memcpy(r->subject, s.base, s.len);
    sv_recr_t rd;
    if (sv_recr_init(&rd, val) != REVOCATION_RECORD_V1)
        return SV_ECORRUPT;
    sv_recr_str(&rd, r->reason, sizeof(r->reason));
    sv_recr_str(&rd, r->revoked_by, sizeof(r->revoked_by));
    r->revoked_at = sv_recr_i64(&rd);
    r->expires_at = sv_recr_i64(&rd);
    return sv_recr_result(&rd);
}

sv_err_t sv_revocations_prune_tx(sv_wtxn_t *tx, int64_t now, size_t *n)
{
    *n = 0;
    sv_iter_t it;
    sv_err_t err = sv_iter_open(sv_wtxn_txn(tx), SV_DB_REVOCATIONS, (sv_bytes_t){NULL, 0}, (sv_bytes_t){NULL, 0},
                                false, &it);
    if (err != SV_OK)
        return err;
    /* collect first: deleting under an open cursor is not worth the subtlety */
    sv_key_t *doomed = NULL;
    size_t nd = 0, cap = 0;
    sv_bytes_t k, v;
    while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
        sv_revocation_t r;
        if (decode(k, v, &r) == SV_OK && r.expires_at >= now)
            continue;
        if (nd == cap) {
            size_t nc = cap ? cap * 2 : 16;
            sv_key_t *nk = realloc(doomed, nc * sizeof(*nk));
            if (nk == NULL) {
                err = SV_ENOMEM;
                break;
            }
            doomed = nk;
            cap = nc;
        }
        sv_key_init(&doomed[nd]);
        sv_key_raw(&doomed[nd], k.base, k.len);
        nd++;
    }
    sv_iter_close(&it);
    if (err == SV_ENOTFOUND)
        err = SV_OK;
    for (size_t i = 0; err == SV_OK && i < nd; i++) {
        err = sv_wtxn_del(tx, SV_DB_REVOCATIONS, sv_key_bytes(&doomed[i]));
        if (err == SV_ENOTFOUND)
            err = SV_OK;
    }
    if (err == SV_OK)
        *n = nd;
    free(doomed);
    return err;
}

sv_err_t sv_revocations_load(sv_store_t *st, sv_revocations_t **out)
{
    sv_revocations_t *rv = calloc(1, sizeof(*rv));
    if (rv == NULL)
        return SV_ENOMEM;
    pthread_rwlock_init(&rv->lock, NULL);
    rv->n = 64;
    rv->slots = calloc(rv->n, sizeof(mem_entry_t));
    if (rv->slots == NULL) {
        sv_revocations_free(rv);
        return SV_ENOMEM;
    }
    if (st == NULL) {
        *out = rv; /* an empty set (benchmarks, tests) */
        return SV_OK;
    }
    sv_store_reader_t *reader;
    sv_err_t err = sv_store_reader_new(st, &reader);
    if (err != SV_OK) {
        sv_revocations_free(rv);
        return err;
    }
    sv_txn_t *txn;
    if ((err = sv_store_read_begin(reader, &txn)) == SV_OK) {
        sv_iter_t it;
        err = sv_iter_open(txn, SV_DB_REVOCATIONS, (sv_bytes_t){NULL, 0}, (sv_bytes_t){NULL, 0}, false, &it);
        if (err == SV_OK) {
            int64_t now = sv_now_s();
            sv_bytes_t k, v;
            while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
                sv_revocation_t r;
                if (decode(k, v, &r) == SV_OK && r.expires_at >= now)
                    sv_revocations_add(rv, &r);
            }
            sv_iter_close(&it);
            if (err == SV_ENOTFOUND)
                err = SV_OK;
        }
        sv_store_read_end(reader);
    }
    sv_store_reader_free(reader);
    if (err != SV_OK) {
        sv_revocations_free(rv);
        return err;
    }
    *out = rv;
    return SV_OK;
}

void sv_revocations_free(sv_revocations_t *rv)
{
    if (rv == NULL)
        return;
    free(rv->slots);
    pthread_rwlock_destroy(&rv->lock);
    free(rv);
}
