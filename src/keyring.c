/*
 * keyring.c - tenant and partner data keys: the stored (wrapped) records and
 * the cache of unwrapped keys (keyring.h).
 *
 * The design choice that shapes this file: unwrapped keys sit in *slots*. A
 * slot's bookkeeping (owner, id, pin count, last use) is plain memory; its 32
 * key bytes are in a slab, one sodium_malloc region per 1024 slots, so the
 * cache costs one guarded, mlock'ed mapping per thousand keys rather than per
 * key. A slot is FREE, LOADING (being unwrapped or created: pinned, in no
 * table), CACHED (findable), or LOOSE (pinned but no longer findable: dropped,
 * or loaded across a shred). A LOOSE slot is wiped at its last release; a
 * CACHED one by the sweeper once idle past the TTL, or when evicted.
 *
 * Concurrency: one rwlock. Lookups take it shared and pin with an atomic
 * count; releases are lock-free unless the slot is LOOSE. Everything that
 * changes the table (install, drop, sweep, evict, slot allocation) takes it
 * exclusively. The shred *epoch* closes the window in which a worker that read
 * a record before a shred committed would cache the key after the drop.
 *
 * KMS hand-off: sv_keyring_load/create start a KMS operation and either see it
 * finish before they return (the `local` provider; the caller continues
 * synchronously) or return SV_EAGAIN and let the callback run later. Who owns
 * the pending operation is decided by one atomic compare-and-swap.
 */
#include "sv_autoconf.h"

#include "src/keyring.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/app.h"
#include "src/log.h"
#include "src/metrics.h"
#include "src/principal.h"
#include "store/record.h"

#define SLAB_SLOTS 1024
#define NBUCKETS 4096 /* power of two */
#define DEFAULT_MAX_KEYS 65536
#define RECORD_FORMAT 1

/* ---- owners ---- */

bool sv_owner_tenant(sv_owner_t *o, const char *id, size_t len)
{
    if (!sv_tenant_id_valid(id, len))
        return false;
    memcpy(o->id, id, len);
    o->id[len] = 0;
    o->len = len;
    return true;
}

bool sv_owner_partner(sv_owner_t *o, const char *id, size_t len)
{
    size_t pl = sizeof(SV_OWNER_PARTNER_PREFIX) - 1;
    if (!sv_tenant_id_valid(id, len) || pl + len >= sizeof(o->id))
        return false;
    memcpy(o->id, SV_OWNER_PARTNER_PREFIX, pl);
    memcpy(o->id + pl, id, len);
    o->len = pl + len;
    o->id[o->len] = 0;
    return true;
}

bool sv_owner_is_partner(const sv_owner_t *o)
{
    size_t pl = sizeof(SV_OWNER_PARTNER_PREFIX) - 1;
    return o->len > pl && memcmp(o->id, SV_OWNER_PARTNER_PREFIX, pl) == 0;
}

/* ---- records ---- */

void sv_keyring_record_key(sv_key_t *k, const sv_owner_t *o)
{
    sv_key_init(k);
    sv_key_str(k, o->id, o->len);
    sv_key_u8(k, SV_KEYRING_KIND);
}

static sv_err_t encode_record(const sv_keyrec_t *r, sv_recw_t *w)
{
    sv_recw_init(w, RECORD_FORMAT);
    sv_recw_u8(w, r->state);
    sv_recw_u32(w, r->key_id);
    sv_recw_bytes(w, r->uid, sizeof(r->uid));
    sv_recw_str(w, r->kms_key_id);
    sv_recw_bytes(w, r->wrapped, r->wrapped_len);
    sv_recw_i64(w, r->created_us);
    sv_bytes_t out;
    return sv_recw_result(w, &out);
}

sv_err_t sv_keyring_decode(sv_bytes_t v, sv_keyrec_t *out)
{
    sv_recr_t r;
    if (sv_recr_init(&r, v) != RECORD_FORMAT)
        return SV_ECORRUPT;
    out->state = sv_recr_u8(&r);
    out->key_id = sv_recr_u32(&r);
    sv_bytes_t uid = sv_recr_bytes(&r);
    sv_recr_str(&r, out->kms_key_id, sizeof(out->kms_key_id));
    sv_bytes_t wrapped = sv_recr_bytes(&r);
    out->created_us = sv_recr_i64(&r);
    if (sv_recr_result(&r) != SV_OK || uid.len != SV_DKEY_UID_BYTES || wrapped.len > sizeof(out->wrapped) ||
        (out->state != SV_KEYREC_ACTIVE && out->state != SV_KEYREC_SHREDDED))
        return SV_ECORRUPT;
    memcpy(out->uid, uid.base, uid.len);
    memcpy(out->wrapped, wrapped.base, wrapped.len);
    out->wrapped_len = wrapped.len;
    return SV_OK;
}

sv_err_t sv_keyring_read(sv_txn_t *tx, const sv_owner_t *o, sv_keyrec_t *out)
{
    sv_key_t k;
    sv_keyring_record_key(&k, o);
    sv_bytes_t v;
    sv_err_t err = sv_txn_get(tx, SV_DB_TENANTS, sv_key_bytes(&k), &v);
    if (err != SV_OK)
        return err;
    return sv_keyring_decode(v, out);
}

sv_err_t sv_keyring_each(sv_txn_t *tx, bool (*fn)(void *arg, sv_bytes_t owner, const sv_keyrec_t *rec), void *arg)
{
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_TENANTS, SV_BYTES(NULL, 0), SV_BYTES(NULL, 0), false, &it);
    if (err == SV_ENOTFOUND)
        return SV_OK; /* no `tenants` database yet */
    if (err != SV_OK)
        return err;
    sv_bytes_t k, v;
    while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
        size_t off = 0;
        sv_bytes_t owner;
        sv_keyrec_t rec;
        /* key(owner) + u8(kind): only kind SV_KEYRING_KIND is a data key */
        if (!sv_key_read_str(k, &off, &owner) || off + 1 != k.len || k.base[off] != SV_KEYRING_KIND ||
            sv_keyring_decode(v, &rec) != SV_OK)
            continue;
        bool more = fn(arg, owner, &rec);
        sodium_memzero(&rec, sizeof(rec));
        if (!more)
            break;
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND || err == SV_OK ? SV_OK : err;
}

typedef struct {
    const sv_kms_t *kms;
    char *need;
    size_t need_len;
    unsigned *owners;
} kms_check_t;

static bool check_one_key(void *arg, sv_bytes_t owner, const sv_keyrec_t *rec)
{
    kms_check_t *c = arg;
    (void)owner;
    if (rec->state == SV_KEYREC_ACTIVE && !sv_kms_has_key(c->kms, rec->kms_key_id) && (*c->owners)++ == 0)
        snprintf(c->need, c->need_len, "%s", rec->kms_key_id);
    return true;
}

sv_err_t sv_keyring_check_kms(sv_store_t *st, const sv_kms_t *kms, char *need, size_t need_len, unsigned *owners)
{
    *owners = 0;
    sv_store_reader_t *r;
    sv_err_t err = sv_store_reader_new(st, &r);
    if (err != SV_OK)
        return err;
    sv_txn_t *tx;
    if ((err = sv_store_read_begin(r, &tx)) == SV_OK) {
        kms_check_t c = {kms, need, need_len, owners};
        err = sv_keyring_each(tx, check_one_key, &c);
        sv_store_read_end(r);
    }
    sv_store_reader_free(r);
    if (err == SV_OK && *owners > 0)
        err = SV_ECRYPTO;
    return err;
}

/* What a wrap binds: the owner and the key's identity. */
static void wrap_context(sv_kms_op_t *op, const char *owner, size_t owner_len, uint32_t key_id, const uint8_t *uid)
{
    uint8_t *p = op->context;
    memcpy(p, "sv-dk-v1", 8);
    p += 8;
    *p++ = (uint8_t)owner_len;
    memcpy(p, owner, owner_len);
    p += owner_len;
    sv_put_be32(p, key_id);
    p += 4;
    memcpy(p, uid, SV_DKEY_UID_BYTES);
    p += SV_DKEY_UID_BYTES;
    op->context_len = (size_t)(p - op->context);
}

/* ---- slots ---- */

enum { SLOT_FREE = 0, SLOT_LOADING, SLOT_CACHED, SLOT_LOOSE };

struct sv_dkey {
    char owner[SV_OWNER_MAX];
    size_t owner_len;
    uint32_t key_id;
    uint8_t uid[SV_DKEY_UID_BYTES];
    uint8_t *key; /* into the slab */
    atomic_uint refs;
    _Atomic uint64_t last_used_us; /* monotonic */
    _Atomic int state;             /* changed under the write lock */
    uint64_t epoch;                /* of the load or create that filled it */
    int32_t next;                  /* hash chain or free list */
    int32_t index;
};

typedef struct {
    sv_dkey_t slots[SLAB_SLOTS];
    uint8_t *keys; /* SLAB_SLOTS * 32 bytes of sodium_malloc memory */
} slab_t;

struct sv_keyring {
    sv_kms_t *kms;
    int64_t ttl_ms;
    unsigned max_slabs;
    pthread_rwlock_t lock;
    slab_t **slabs;
    unsigned n_slabs;
    int32_t free_head;
    int32_t buckets[NBUCKETS];
    uint32_t seed;
    _Atomic uint64_t epoch; /* changed under the write lock */
    unsigned cached;
    _Atomic uint64_t hits, misses, loads, creates, failures;
    sv_counter_t *hit_counter, *miss_counter; /* the metrics registry's, or NULL */
    /* sweeper */
    pthread_t sweeper;
    pthread_mutex_t sweep_mu;
    pthread_cond_t sweep_cv;
    bool stopping;
};

static sv_dkey_t *slot_at(sv_keyring_t *kr, int32_t i)
{
    return &kr->slabs[i / SLAB_SLOTS]->slots[i % SLAB_SLOTS];
}

static uint32_t bucket_of(const sv_keyring_t *kr, const char *owner, size_t len, uint32_t key_id)
{
    uint32_t h = 2166136261u ^ kr->seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)owner[i]) * 16777619u;
    h = (h ^ key_id) * 16777619u;
    return h & (NBUCKETS - 1);
}

/* Wipes a slot and puts it on the free list. Write lock held. */
static void slot_free(sv_keyring_t *kr, sv_dkey_t *s)
{
    sodium_memzero(s->key, SV_KMS_DATA_KEY_BYTES);
    sodium_memzero(s->uid, sizeof(s->uid));
    s->owner[0] = 0;
    s->owner_len = 0;
    atomic_store(&s->state, SLOT_FREE);
    s->next = kr->free_head;
    kr->free_head = s->index;
}

/* Removes a CACHED slot from its chain. Write lock held. */
static void unlink_slot(sv_keyring_t *kr, sv_dkey_t *s)
{
    uint32_t b = bucket_of(kr, s->owner, s->owner_len, s->key_id);
    int32_t *pp = &kr->buckets[b];
    while (*pp >= 0) {
        if (*pp == s->index) {
            *pp = s->next;
            break;
        }
        pp = &slot_at(kr, *pp)->next;
    }
    s->next = -1;
    kr->cached--;
}

static bool add_slab(sv_keyring_t *kr)
{
    if (kr->n_slabs >= kr->max_slabs)
        return false;
    slab_t *sl = calloc(1, sizeof(*sl));
    if (sl == NULL)
        return false;
    sl->keys = sodium_malloc((size_t)SLAB_SLOTS * SV_KMS_DATA_KEY_BYTES);
    if (sl->keys == NULL) {
        free(sl);
        return false;
    }
    sodium_memzero(sl->keys, (size_t)SLAB_SLOTS * SV_KMS_DATA_KEY_BYTES);
    unsigned n = kr->n_slabs;
    kr->slabs[n] = sl;
    kr->n_slabs++;
    for (int i = SLAB_SLOTS - 1; i >= 0; i--) {
        sv_dkey_t *s = &sl->slots[i];
        s->index = (int32_t)(n * SLAB_SLOTS + (unsigned)i);
        s->key = sl->keys + (size_t)i * SV_KMS_DATA_KEY_BYTES;
        atomic_init(&s->refs, 0);
        atomic_init(&s->state, SLOT_FREE);
        s->next = kr->free_head;
        kr->free_head = s->index;
    }
    return true;
}

/* Evicts the least recently used unpinned cached key. Write lock held. */
static bool evict_one(sv_keyring_t *kr)
{
    sv_dkey_t *victim = NULL;
    uint64_t oldest = UINT64_MAX;
    for (unsigned i = 0; i < kr->n_slabs * SLAB_SLOTS; i++) {
        sv_dkey_t *s = slot_at(kr, (int32_t)i);
        uint64_t used = atomic_load(&s->last_used_us);
        if (atomic_load(&s->state) == SLOT_CACHED && atomic_load(&s->refs) == 0 && used < oldest) {
            oldest = used;
            victim = s;
        }
    }
    if (victim == NULL)
        return false;
    unlink_slot(kr, victim);
    slot_free(kr, victim);
    return true;
}

/* A LOADING slot for (owner, key_id), pinned once. NULL when the cache is
 * full of pinned keys or out of memory. */
static sv_dkey_t *slot_reserve(sv_keyring_t *kr, const sv_owner_t *o, uint32_t key_id, const uint8_t *uid,
                               uint64_t epoch)
{
    pthread_rwlock_wrlock(&kr->lock);
    if (kr->free_head < 0 && !add_slab(kr))
        evict_one(kr);
    sv_dkey_t *s = NULL;
    if (kr->free_head >= 0) {
        s = slot_at(kr, kr->free_head);
        kr->free_head = s->next;
        s->next = -1;
        memcpy(s->owner, o->id, o->len);
        s->owner[o->len] = 0;
        s->owner_len = o->len;
        s->key_id = key_id;
        if (uid != NULL)
            memcpy(s->uid, uid, SV_DKEY_UID_BYTES);
        s->epoch = epoch;
        atomic_store(&s->refs, 1);
        atomic_store(&s->last_used_us, sv_mono_us());
        atomic_store(&s->state, SLOT_LOADING);
    }
    pthread_rwlock_unlock(&kr->lock);
    return s;
}

static sv_dkey_t *find_locked(sv_keyring_t *kr, const char *owner, size_t len, uint32_t key_id)
{
    for (int32_t i = kr->buckets[bucket_of(kr, owner, len, key_id)]; i >= 0;) {
        sv_dkey_t *s = slot_at(kr, i);
        if (s->key_id == key_id && s->owner_len == len && memcmp(s->owner, owner, len) == 0)
            return s;
        i = s->next;
    }
    return NULL;
}

/* Makes a LOADING slot findable, unless a drop happened since its epoch.
 * Returns the pinned key to use: s itself, or an equal key already cached
 * (s is then released). */
static sv_dkey_t *slot_install(sv_keyring_t *kr, sv_dkey_t *s)
{
    sv_dkey_t *use = s;
    pthread_rwlock_wrlock(&kr->lock);
    if (s->epoch != atomic_load(&kr->epoch)) {
        atomic_store(&s->state, SLOT_LOOSE); /* used once by its caller, never cached */
    } else {
        sv_dkey_t *cur = find_locked(kr, s->owner, s->owner_len, s->key_id);
        if (cur != NULL && sodium_memcmp(cur->uid, s->uid, SV_DKEY_UID_BYTES) == 0) {
            atomic_fetch_add(&cur->refs, 1);
            atomic_store(&cur->last_used_us, sv_mono_us());
            atomic_store(&s->refs, 0);
            slot_free(kr, s);
            use = cur;
        } else {
            if (cur != NULL) { /* a stale incarnation: replace it */
                unlink_slot(kr, cur);
                atomic_store(&cur->state, SLOT_LOOSE);
                if (atomic_load(&cur->refs) == 0)
                    slot_free(kr, cur);
            }
            uint32_t b = bucket_of(kr, s->owner, s->owner_len, s->key_id);
            s->next = kr->buckets[b];
            kr->buckets[b] = s->index;
            kr->cached++;
            atomic_store(&s->state, SLOT_CACHED);
        }
    }
    pthread_rwlock_unlock(&kr->lock);
    return use;
}

const uint8_t *sv_dkey_bytes(const sv_dkey_t *k)
{
    return k->key;
}

uint32_t sv_dkey_id(const sv_dkey_t *k)
{
    return k->key_id;
}

const uint8_t *sv_dkey_uid(const sv_dkey_t *k)
{
    return k->uid;
}

/* ---- the sweeper ---- */

static void sweep(sv_keyring_t *kr)
{
    uint64_t now = sv_mono_us(), ttl_us = (uint64_t)kr->ttl_ms * 1000;
    pthread_rwlock_wrlock(&kr->lock);
    for (unsigned i = 0; i < kr->n_slabs * SLAB_SLOTS; i++) {
        sv_dkey_t *s = slot_at(kr, (int32_t)i);
        if (atomic_load(&s->state) != SLOT_CACHED || atomic_load(&s->refs) != 0)
            continue;
        uint64_t used = atomic_load(&s->last_used_us);
        if (now > used && now - used >= ttl_us) {
            unlink_slot(kr, s);
            slot_free(kr, s);
        }
    }
    pthread_rwlock_unlock(&kr->lock);
}

static void *sweeper_main(void *arg)
{
    sv_keyring_t *kr = arg;
    int64_t period_ms = kr->ttl_ms / 4;
    if (period_ms < 10)
        period_ms = 10;
    if (period_ms > 1000)
        period_ms = 1000;
    pthread_mutex_lock(&kr->sweep_mu);
    while (!kr->stopping) {
        int rc = sv_cond_wait_ms(&kr->sweep_cv, &kr->sweep_mu, (uint64_t)period_ms);
        if (kr->stopping)
            break;
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&kr->sweep_mu);
            sweep(kr);
            pthread_mutex_lock(&kr->sweep_mu);
        }
    }
    pthread_mutex_unlock(&kr->sweep_mu);
    return NULL;
}

/* ---- life ---- */

sv_err_t sv_keyring_new(sv_kms_t *kms, const sv_keyring_opts_t *opts, sv_keyring_t **out)
{
    *out = NULL;
    sv_keyring_t *kr = calloc(1, sizeof(*kr));
    if (kr == NULL)
        return SV_ENOMEM;
    kr->kms = kms;
    kr->ttl_ms = opts != NULL && opts->ttl_ms > 0 ? opts->ttl_ms : 5 * 60 * 1000;
    unsigned max_keys = opts != NULL && opts->max_keys > 0 ? opts->max_keys : DEFAULT_MAX_KEYS;
    kr->max_slabs = (max_keys + SLAB_SLOTS - 1) / SLAB_SLOTS;
    kr->slabs = calloc(kr->max_slabs, sizeof(*kr->slabs));
    if (kr->slabs == NULL) {
        free(kr);
        return SV_ENOMEM;
    }
    kr->free_head = -1;
    for (unsigned i = 0; i < NBUCKETS; i++)
        kr->buckets[i] = -1;
    kr->seed = randombytes_random();
    pthread_rwlock_init(&kr->lock, NULL);
    pthread_mutex_init(&kr->sweep_mu, NULL);
    sv_cond_init_monotonic(&kr->sweep_cv);
    if (pthread_create(&kr->sweeper, NULL, sweeper_main, kr) != 0) {
        pthread_cond_destroy(&kr->sweep_cv);
        pthread_mutex_destroy(&kr->sweep_mu);
        pthread_rwlock_destroy(&kr->lock);
        free(kr->slabs);
        free(kr);
        return SV_ENOMEM;
    }
    *out = kr;
    return SV_OK;
}

void sv_keyring_free(sv_keyring_t *kr)
{
    if (kr == NULL)
        return;
    pthread_mutex_lock(&kr->sweep_mu);
    kr->stopping = true;
    pthread_cond_signal(&kr->sweep_cv);
    pthread_mutex_unlock(&kr->sweep_mu);
    pthread_join(kr->sweeper, NULL);
    for (unsigned i = 0; i < kr->n_slabs; i++) {
        sodium_free(kr->slabs[i]->keys); /* wipes */
        free(kr->slabs[i]);
    }
    free(kr->slabs);
    pthread_cond_destroy(&kr->sweep_cv);
    pthread_mutex_destroy(&kr->sweep_mu);
    pthread_rwlock_destroy(&kr->lock);
    free(kr);
}

uint64_t sv_keyring_epoch(sv_keyring_t *kr)
{
    return atomic_load(&kr->epoch);
}

/* ---- lookups ---- */

sv_dkey_t *sv_keyring_lookup(sv_keyring_t *kr, const sv_owner_t *o, uint32_t key_id)
{
    pthread_rwlock_rdlock(&kr->lock);
    sv_dkey_t *s = find_locked(kr, o->id, o->len, key_id);
    if (s != NULL) {
        atomic_fetch_add(&s->refs, 1);
        atomic_store_explicit(&s->last_used_us, sv_mono_us(), memory_order_relaxed);
    }
    pthread_rwlock_unlock(&kr->lock);
    atomic_fetch_add_explicit(s != NULL ? &kr->hits : &kr->misses, 1, memory_order_relaxed);
    sv_counter_inc(s != NULL ? kr->hit_counter : kr->miss_counter);
    return s;
}

void sv_keyring_release(sv_keyring_t *kr, sv_dkey_t *k)
{
    if (k == NULL)
        return;
    atomic_store_explicit(&k->last_used_us, sv_mono_us(), memory_order_relaxed);
    if (atomic_fetch_sub(&k->refs, 1) != 1 || atomic_load(&k->state) == SLOT_CACHED)
        return;
    /* the last pin of a key that is no longer findable: wipe it now */
    pthread_rwlock_wrlock(&kr->lock);
    int st = atomic_load(&k->state);
    if (atomic_load(&k->refs) == 0 && (st == SLOT_LOOSE || st == SLOT_LOADING))
        slot_free(kr, k);
    pthread_rwlock_unlock(&kr->lock);
}

/* ---- loads and creates through the KMS ---- */

enum { HANDOFF_PENDING = 0, HANDOFF_INLINE, HANDOFF_ASYNC };

typedef struct {
    sv_kms_op_t op;
    sv_keyring_t *kr;
    sv_dkey_t *slot;
    sv_keyrec_t *rec_out; /* create only */
    bool create;
    sv_keyring_cb cb;
    void *arg;
    _Atomic int handoff;
    sv_err_t result;
    sv_dkey_t *out;
} pending_t;

static void pending_done(sv_kms_op_t *op)
{
    pending_t *p = op->arg;
    sv_keyring_t *kr = p->kr;
    p->result = op->result;
    p->out = NULL;
    if (p->result == SV_OK && p->create) {
        sv_keyrec_t *r = p->rec_out;
        r->state = SV_KEYREC_ACTIVE;
        r->key_id = p->slot->key_id;
        memcpy(r->uid, p->slot->uid, SV_DKEY_UID_BYTES);
        snprintf(r->kms_key_id, sizeof(r->kms_key_id), "%s", op->key_id);
        memcpy(r->wrapped, op->wrapped, op->wrapped_len);
        r->wrapped_len = op->wrapped_len;
        r->created_us = sv_now_us();
        p->out = p->slot; /* pinned, installed after the unit commits */
        atomic_fetch_add_explicit(&kr->creates, 1, memory_order_relaxed);
    } else if (p->result == SV_OK) {
        p->out = slot_install(kr, p->slot);
        atomic_fetch_add_explicit(&kr->loads, 1, memory_order_relaxed);
    } else {
        sv_log_warn("data key %s for %s failed: %s", p->create ? "wrap" : "unwrap", p->slot->owner,
                    sv_strerror(p->result));
        atomic_fetch_add_explicit(&kr->failures, 1, memory_order_relaxed);
        sv_keyring_release(kr, p->slot); /* LOADING, so wiped */
    }
    int expected = HANDOFF_PENDING;
    if (atomic_compare_exchange_strong(&p->handoff, &expected, HANDOFF_INLINE))
        return; /* the starter is still inside load/create and takes the result */
    p->cb(p->arg, p->result, p->out);
    free(p);
}

/* Starts p's KMS operation; returns the result now or SV_EAGAIN. */
static sv_err_t pending_run(pending_t *p, sv_dkey_t **out)
{
    atomic_init(&p->handoff, HANDOFF_PENDING);
    if (p->create)
        sv_kms_wrap(p->kr->kms, &p->op);
    else
        sv_kms_unwrap(p->kr->kms, &p->op);
    int expected = HANDOFF_PENDING;
    if (atomic_compare_exchange_strong(&p->handoff, &expected, HANDOFF_ASYNC))
        return SV_EAGAIN; /* the KMS answers later; pending_done calls cb */
    sv_err_t r = p->result;
    *out = p->out;
    free(p);
    return r;
}

static pending_t *pending_new(sv_keyring_t *kr, sv_dkey_t *slot, sv_keyring_cb cb, void *arg)
{
    pending_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->kr = kr;
    p->slot = slot;
    p->cb = cb;
    p->arg = arg;
    p->op.key = slot->key;
    p->op.done = pending_done;
    p->op.arg = p;
    wrap_context(&p->op, slot->owner, slot->owner_len, slot->key_id, slot->uid);
    return p;
}

sv_err_t sv_keyring_load(sv_keyring_t *kr, const sv_owner_t *o, const sv_keyrec_t *rec, uint64_t epoch, sv_dkey_t **out,
                         sv_keyring_cb cb, void *arg)
{
    *out = NULL;
    if (rec->state != SV_KEYREC_ACTIVE || rec->wrapped_len == 0)
        return SV_EINVAL;
    sv_dkey_t *slot = slot_reserve(kr, o, rec->key_id, rec->uid, epoch);
    if (slot == NULL)
        return SV_ENOMEM;
    pending_t *p = pending_new(kr, slot, cb, arg);
    if (p == NULL) {
        sv_keyring_release(kr, slot);
        return SV_ENOMEM;
    }
    memcpy(p->op.wrapped, rec->wrapped, rec->wrapped_len);
    p->op.wrapped_len = rec->wrapped_len;
    snprintf(p->op.key_id, sizeof(p->op.key_id), "%s", rec->kms_key_id);
    return pending_run(p, out);
}

sv_err_t sv_keyring_create(sv_keyring_t *kr, const sv_owner_t *o, uint64_t epoch, sv_keyrec_t *rec_out, sv_dkey_t **out,
                           sv_keyring_cb cb, void *arg)
{
    *out = NULL;
    uint8_t uid[SV_DKEY_UID_BYTES];
    randombytes_buf(uid, sizeof(uid));
    sv_dkey_t *slot = slot_reserve(kr, o, 1, uid, epoch);
    if (slot == NULL)
        return SV_ENOMEM;
    randombytes_buf(slot->key, SV_KMS_DATA_KEY_BYTES);
    pending_t *p = pending_new(kr, slot, cb, arg);
    if (p == NULL) {
        sv_keyring_release(kr, slot);
        return SV_ENOMEM;
    }
    p->create = true;
    p->rec_out = rec_out;
    return pending_run(p, out);
}

sv_dkey_t *sv_keyring_install(sv_keyring_t *kr, sv_dkey_t *k)
{
    if (atomic_load(&k->state) != SLOT_LOADING)
        return k;
    return slot_install(kr, k);
}

void sv_keyring_drop(sv_keyring_t *kr, const sv_owner_t *o)
{
    pthread_rwlock_wrlock(&kr->lock);
    atomic_fetch_add(&kr->epoch, 1);
    for (unsigned i = 0; i < kr->n_slabs * SLAB_SLOTS; i++) {
        sv_dkey_t *s = slot_at(kr, (int32_t)i);
        int st = atomic_load(&s->state);
        if (st == SLOT_FREE || s->owner_len != o->len || memcmp(s->owner, o->id, o->len) != 0)
            continue;
        if (st == SLOT_CACHED)
            unlink_slot(kr, s);
        atomic_store(&s->state, SLOT_LOOSE);
        if (atomic_load(&s->refs) == 0)
            slot_free(kr, s);
    }
    pthread_rwlock_unlock(&kr->lock);
}

void sv_keyring_stats(sv_keyring_t *kr, sv_keyring_stats_t *out)
{
    out->hits = atomic_load(&kr->hits);
    out->misses = atomic_load(&kr->misses);
    out->loads = atomic_load(&kr->loads);
    out->creates = atomic_load(&kr->creates);
    out->failures = atomic_load(&kr->failures);
    pthread_rwlock_rdlock(&kr->lock);
    out->cached = kr->cached;
    out->slabs = kr->n_slabs;
    pthread_rwlock_unlock(&kr->lock);
}

uint64_t sv_keyring_hits(sv_keyring_t *kr)
{
    return atomic_load(&kr->hits);
}

uint64_t sv_keyring_misses(sv_keyring_t *kr)
{
    return atomic_load(&kr->misses);
}

/* ---- writer side ---- */

static sv_err_t put_record(sv_wtxn_t *tx, const sv_owner_t *o, const sv_keyrec_t *r)
{
    sv_key_t k;
    sv_keyring_record_key(&k, o);
    sv_recw_t w;
    sv_err_t err = encode_record(r, &w);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_TENANTS, sv_key_bytes(&k), SV_BYTES(w.buf, w.len));
    sv_recw_free(&w);
    return err;
}

sv_err_t sv_keyring_apply_use(sv_wtxn_t *tx, const sv_owner_t *o, const sv_dkey_t *k, const sv_keyrec_t *insert)
{
    sv_keyrec_t cur;
    sv_err_t err = sv_keyring_read(sv_wtxn_txn(tx), o, &cur);
    if (err == SV_ENOTFOUND)
        return insert != NULL ? put_record(tx, o, insert) : SV_ECONFLICT;
    if (err != SV_OK)
        return err;
    if (cur.state == SV_KEYREC_SHREDDED)
        return SV_EDELETED;
    const uint8_t *uid = insert != NULL ? insert->uid : k->uid;
    uint32_t id = insert != NULL ? insert->key_id : k->key_id;
    if (cur.key_id != id || sodium_memcmp(cur.uid, uid, SV_DKEY_UID_BYTES) != 0)
        return SV_ECONFLICT;
    return SV_OK;
}

sv_err_t sv_keyring_tenant_writable(sv_txn_t *tx, const char *tenant)
{
    sv_owner_t o;
    if (!sv_owner_tenant(&o, tenant, strlen(tenant)))
        return SV_EINVAL;
    return sv_keyring_owner_writable(tx, &o);
}

sv_err_t sv_keyring_owner_writable(sv_txn_t *tx, const sv_owner_t *o)
{
    sv_keyrec_t cur;
    sv_err_t err = sv_keyring_read(tx, o, &cur);
    if (err == SV_ENOTFOUND)
        return SV_OK;
    if (err != SV_OK)
        return err;
    sv_err_t r = cur.state == SV_KEYREC_SHREDDED ? SV_EGONE : SV_OK;
    sodium_memzero(&cur, sizeof(cur));
    return r;
}

sv_err_t sv_keyring_apply_shred(sv_wtxn_t *tx, const sv_owner_t *o)
{
    sv_keyrec_t cur;
    sv_err_t err = sv_keyring_read(sv_wtxn_txn(tx), o, &cur);
    if (err != SV_OK)
        return err;
    if (cur.state == SV_KEYREC_SHREDDED)
        return SV_EDELETED;
    cur.state = SV_KEYREC_SHREDDED;
    sodium_memzero(cur.wrapped, sizeof(cur.wrapped));
    cur.wrapped_len = 0;
    return put_record(tx, o, &cur);
}

sv_err_t sv_keyring_apply_forget(sv_wtxn_t *tx, const sv_owner_t *o)
{
    sv_key_t k;
    sv_keyring_record_key(&k, o);
    return sv_wtxn_del(tx, SV_DB_TENANTS, sv_key_bytes(&k));
}

/* ---- the server part ---- */

static double g_cached(void *arg)
{
    sv_keyring_stats_t s;
    sv_keyring_stats(arg, &s);
    return s.cached;
}

/* Before anything is wrapped under the KMS key: every stored data key must
 * unwrap with it. A new key made for a missing file (a lost file, a secrets
 * volume not mounted) or another key in the file would otherwise answer 500
 * for every existing owner, and acknowledge new owners' writes under a key
 * that is lost when the real one comes back. */
static sv_err_t check_kms_key(sv_app_t *app, char *msg, size_t msglen)
{
    char need[SV_KMS_KEY_ID_MAX] = "";
    unsigned owners = 0;
    sv_err_t err = sv_keyring_check_kms(app->store, app->kms, need, sizeof(need), &owners);
    if (err == SV_ECRYPTO && sv_kms_key_created(app->kms)) {
        sv_err_t rm = sv_kms_remove_created_key(app->kms);
        snprintf(msg, msglen,
                 "KMS_LOCAL_KEY_FILE: %s is missing, but the database holds the data keys of %u owner(s) wrapped by "
                 "KMS key %s: put that key file back (from your key backup) and start again; the new key %s made "
                 "for the missing file was %s",
                 sv_kms_key_file(app->kms), owners, need, sv_kms_key_id(app->kms),
                 rm == SV_OK ? "removed" : "NOT removed: delete it");
        return SV_EINVAL;
    }
    if (err == SV_ECRYPTO) {
        snprintf(msg, msglen,
                 "KMS_LOCAL_KEY_FILE: %s holds KMS key %s, but the database holds the data keys of %u owner(s) "
                 "wrapped by KMS key %s: put the key file that holds %s back",
                 sv_kms_key_file(app->kms), sv_kms_key_id(app->kms), owners, need, need);
        return SV_EINVAL;
    }
    if (err != SV_OK)
        snprintf(msg, msglen, "cannot read the data keys to check the KMS key: %s", sv_strerror(err));
    return err;
}

sv_err_t sv_keyring_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    sv_err_t err = check_kms_key(app, msg, msglen);
    if (err != SV_OK)
        return err;
    sv_keyring_opts_t o = {.ttl_ms = app->cfg->data_key_cache_ttl_ms};
    err = sv_keyring_new(app->kms, &o, &app->keyring);
    if (err == SV_OK && app->metrics != NULL) {
        static const char help[] = "Unwrapped data-key cache lookups, by result.";
        sv_keyring_t *kr = app->keyring;
        kr->hit_counter =
            sv_metrics_counter(app->metrics, "scaivault_data_key_cache_requests_total", "result=\"hit\"", help);
        kr->miss_counter =
            sv_metrics_counter(app->metrics, "scaivault_data_key_cache_requests_total", "result=\"miss\"", help);
        err = sv_metrics_gauge(app->metrics, "scaivault_data_key_cache_keys", NULL,
                               "Unwrapped data keys held in memory now.", g_cached, kr);
    }
    if (err != SV_OK)
        snprintf(msg, msglen, "cannot start the data key cache: %s", sv_strerror(err));
    return err;
}

void sv_keyring_part_stop(sv_app_t *app)
{
    sv_keyring_free(app->keyring); /* wipes every cached key */
    app->keyring = NULL;
}
