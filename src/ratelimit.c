/*
 * ratelimit.c - token buckets per token and category (ratelimit.h).
 *
 * Each bucket is kept as one number, its "theoretical arrival time" (the
 * generic cell rate algorithm, GCRA): the instant at which the bucket would
 * be full again. A request at `now` is allowed when
 *     max(tat, now) + interval - now <= limit * interval
 * and then moves tat forward by one interval (interval = window / limit).
 * That is exactly a token bucket of `limit` tokens refilled continuously,
 * with no timer and no per-bucket refill work; a bucket whose tat is in the
 * past is full, i.e. the same as no bucket at all, which is what makes
 * dropping idle buckets free.
 *
 * The table: 64 shards, each an open-addressing hash table (linear probing)
 * behind its own mutex, keyed by a keyed 128-bit SipHash of (token key,
 * tenant, category), so no key bytes are stored and a collision needs 2^64
 * work from someone who cannot see the random key. When a shard fills to
 * three quarters, it is rebuilt without its full buckets, and doubled only if
 * that did not free enough; at max_buckets / 64 it evicts the fullest bucket
 * (the one closest to being dropped anyway), which can only make a limit
 * more lenient, never refuse someone wrongly.
 *
 * Per-tenant overrides live in a second, small sharded table. A bucket caches
 * its limit together with the override generation it was computed at; an
 * override change bumps the generation, and each bucket recomputes its limit
 * at its next request. The hot path reads the generation (a rarely written
 * atomic) and touches one shard lock.
 *
 * Threads: sv_rl_take and the override functions from any thread;
 * sv_rl_store_put on the writer thread; sv_rl_load at start.
 */
#include "sv_autoconf.h"

#include "src/ratelimit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/app.h"
#include "src/principal.h"
#include "store/key.h"
#include "store/record.h"

#define RL_SHARDS 64
#define RL_MIN_SLOTS 64
#define OV_SHARDS 16
#define NS_PER_S 1000000000ull

typedef struct {
    uint64_t h0, h1;      /* key hash; h0 == 0 marks an empty slot */
    uint64_t tat_ns;      /* the instant the bucket is full again */
    uint64_t interval_ns; /* window / limit */
    uint32_t limit, window_s;
    uint32_t gen; /* override generation the limit was computed at */
} bucket_t;

typedef struct {
    pthread_mutex_t lock;
    bucket_t *slots;
    uint32_t cap; /* a power of two */
    _Atomic uint32_t count;
} __attribute__((aligned(64))) shard_t;

typedef struct {
    char tenant[SV_TENANT_MAX];
    sv_rl_overrides_t ov;
    uint64_t version;
    bool any; /* at least one category set */
} ov_entry_t;

typedef struct {
    pthread_mutex_t lock;
    ov_entry_t *items;
    size_t n, cap;
} __attribute__((aligned(64))) ov_shard_t;

struct sv_ratelimit {
    shard_t shards[RL_SHARDS];
    ov_shard_t ov_shards[OV_SHARDS];
    sv_rate_t defaults[SV_RL_COUNT_];
    uint32_t shard_max; /* slots per shard at most */
    uint8_t hash_key[crypto_shorthash_siphashx24_KEYBYTES];
    _Atomic uint32_t gen;                /* bumped on every override change */
    _Atomic uint32_t n_override_tenants; /* tenants with at least one override */
    sv_counter_t *rejected[SV_RL_COUNT_];
};

uint64_t sv_rl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

sv_err_t sv_rl_new(const sv_rate_t defaults[SV_RL_COUNT_], size_t max_buckets, sv_metrics_t *metrics,
                   sv_ratelimit_t **out)
{
    sv_ratelimit_t *rl = aligned_alloc(64, (sizeof(*rl) + 63) & ~(size_t)63);
    if (rl == NULL)
        return SV_ENOMEM;
    memset(rl, 0, sizeof(*rl));
    if (max_buckets == 0)
        max_buckets = (size_t)1 << 20;
    uint32_t per = RL_MIN_SLOTS;
    while ((size_t)per * RL_SHARDS < max_buckets && per < (1u << 30))
        per <<= 1;
    rl->shard_max = per;
    memcpy(rl->defaults, defaults, sizeof(rl->defaults));
    randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
    atomic_init(&rl->gen, 1);
    atomic_init(&rl->n_override_tenants, 0);
    for (int i = 0; i < RL_SHARDS; i++) {
        pthread_mutex_init(&rl->shards[i].lock, NULL);
        atomic_init(&rl->shards[i].count, 0);
    }
    for (int i = 0; i < OV_SHARDS; i++)
        pthread_mutex_init(&rl->ov_shards[i].lock, NULL);
    for (int c = 0; c < SV_RL_COUNT_; c++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "category=\"%s\"", sv_rl_category_name((sv_rl_category_t)c));
        rl->rejected[c] = sv_metrics_counter(metrics, "scaivault_rate_limit_rejections_total", labels,
                                             "Requests refused with 429 rate_limited, by rate-limit category.");
    }
    *out = rl;
    return SV_OK;
}

void sv_rl_free(sv_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < RL_SHARDS; i++) {
        free(rl->shards[i].slots);
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    for (int i = 0; i < OV_SHARDS; i++) {
        free(rl->ov_shards[i].items);
        pthread_mutex_destroy(&rl->ov_shards[i].lock);
    }
    free(rl);
}

/* ---- overrides ---- */

static uint32_t tenant_hash(const char *tenant)
{
    uint32_t h = 2166136261u; /* FNV-1a: tenant ids are validated, not hostile */
    for (const char *p = tenant; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static ov_entry_t *ov_find(ov_shard_t *s, const char *tenant)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].tenant, tenant) == 0)
            return &s->items[i];
    return NULL;
}

static bool ov_any(const sv_rl_overrides_t *ov)
{
    for (int c = 0; c < SV_RL_COUNT_; c++)
        if (ov->rate[c].limit > 0)
            return true;
    return false;
}

sv_err_t sv_rl_set_overrides(sv_ratelimit_t *rl, const char *tenant, const sv_rl_overrides_t *ov, uint64_t version)
{
    if (strlen(tenant) >= SV_TENANT_MAX)
        return SV_EINVAL;
    ov_shard_t *s = &rl->ov_shards[tenant_hash(tenant) % OV_SHARDS];
    sv_err_t err = SV_OK;
    pthread_mutex_lock(&s->lock);
    ov_entry_t *e = ov_find(s, tenant);
    if (e == NULL) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            ov_entry_t *ni = realloc(s->items, cap * sizeof(*ni));
            if (ni == NULL) {
                err = SV_ENOMEM;
                goto unlock;
            }
            s->items = ni;
            s->cap = cap;
        }
        e = &s->items[s->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    } else if (version <= e->version) {
        goto unlock; /* an older completion arriving late */
    }
    bool was = e->any;
    e->ov = *ov;
    e->version = version;
    e->any = ov_any(ov);
    if (e->any && !was)
        atomic_fetch_add(&rl->n_override_tenants, 1);
    else if (!e->any && was)
        atomic_fetch_sub(&rl->n_override_tenants, 1);
    atomic_fetch_add(&rl->gen, 1);
unlock:
    pthread_mutex_unlock(&s->lock);
    return err;
}

void sv_rl_get_overrides(sv_ratelimit_t *rl, const char *tenant, sv_rl_overrides_t *out)
{
    memset(out, 0, sizeof(*out));
    ov_shard_t *s = &rl->ov_shards[tenant_hash(tenant) % OV_SHARDS];
    pthread_mutex_lock(&s->lock);
    ov_entry_t *e = ov_find(s, tenant);
    if (e != NULL)
        *out = e->ov;
    pthread_mutex_unlock(&s->lock);
}

sv_rate_t sv_rl_effective(sv_ratelimit_t *rl, const char *tenant, sv_rl_category_t c, bool *is_override)
{
    if (is_override != NULL)
        *is_override = false;
    if (tenant[0] != 0 && atomic_load_explicit(&rl->n_override_tenants, memory_order_acquire) > 0) {
        sv_rl_overrides_t ov;
        sv_rl_get_overrides(rl, tenant, &ov);
        if (ov.rate[c].limit > 0) {
            if (is_override != NULL)
                *is_override = true;
            return ov.rate[c];
        }
    }
    return rl->defaults[c];
}

/* ---- buckets ---- */

static bucket_t *probe(bucket_t *slots, uint32_t cap, uint64_t h0, uint64_t h1)
{
    uint32_t i = (uint32_t)h1 & (cap - 1);
    for (;;) {
        bucket_t *b = &slots[i];
        if (b->h0 == 0 || (b->h0 == h0 && b->h1 == h1))
            return b;
        i = (i + 1) & (cap - 1);
    }
}

/* Rebuilds the shard into cap slots, keeping the buckets that are not full
 * yet (tat > now). false when out of memory (the shard is unchanged). */
static bool rebuild(shard_t *s, uint32_t cap, uint64_t now)
{
    bucket_t *ns = calloc(cap, sizeof(*ns));
    if (ns == NULL)
        return false;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->cap; i++) {
        bucket_t *b = &s->slots[i];
        if (b->h0 != 0 && b->tat_ns > now && n < cap / 2 + cap / 4) {
            *probe(ns, cap, b->h0, b->h1) = *b;
            n++;
        }
    }
    free(s->slots);
    s->slots = ns;
    s->cap = cap;
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
    return true;
}

/* Removes the bucket closest to full (smallest tat): backward-shift deletion
 * keeps the probe sequences intact. */
static void evict_one(shard_t *s)
{
    uint32_t victim = UINT32_MAX;
    for (uint32_t i = 0; i < s->cap; i++)
        if (s->slots[i].h0 != 0 && (victim == UINT32_MAX || s->slots[i].tat_ns < s->slots[victim].tat_ns))
            victim = i;
    if (victim == UINT32_MAX)
        return;
    uint32_t mask = s->cap - 1, hole = victim, i = victim;
    for (;;) {
        i = (i + 1) & mask;
        bucket_t *b = &s->slots[i];
        if (b->h0 == 0)
            break;
        uint32_t home = (uint32_t)b->h1 & mask;
        /* move b into the hole unless its home lies cyclically in (hole, i] */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            s->slots[hole] = *b;
            hole = i;
        }
    }
    s->slots[hole].h0 = 0;
    atomic_store_explicit(&s->count, atomic_load_explicit(&s->count, memory_order_relaxed) - 1, memory_order_relaxed);
}

/* Makes room for one more bucket. false when no memory could be found. */
static bool make_room(shard_t *s, uint32_t shard_max, uint64_t now)
{
    uint32_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
    if (s->slots != NULL && (count + 1) * 4 <= s->cap * 3)
        return true;
    if (s->slots == NULL)
        return rebuild(s, RL_MIN_SLOTS, now);
    /* count the buckets worth keeping, then pick the size */
    uint32_t live = 0;
    for (uint32_t i = 0; i < s->cap; i++)
        live += s->slots[i].h0 != 0 && s->slots[i].tat_ns > now;
    uint32_t cap = s->cap;
    while ((live + 1) * 2 > cap && cap < shard_max)
        cap <<= 1;
    if (!rebuild(s, cap, now))
        return false;
    while ((atomic_load_explicit(&s->count, memory_order_relaxed) + 1) * 4 > s->cap * 3)
        evict_one(s);
    return true;
}

static void set_limit(sv_ratelimit_t *rl, bucket_t *b, const char *tenant, sv_rl_category_t c, uint32_t gen,
                      uint64_t now)
{
    sv_rate_t r = sv_rl_effective(rl, tenant, c, NULL);
    uint64_t old_burst = b->interval_ns * b->limit;
    b->limit = r.limit;
    b->window_s = r.window_s;
    b->interval_ns = (uint64_t)r.window_s * NS_PER_S / r.limit;
    if (b->interval_ns == 0)
        b->interval_ns = 1;
    b->gen = gen;
    /* a changed limit keeps the share of the bucket already used: half
     * empty under the old limit is half empty under the new one */
    uint64_t burst = b->interval_ns * b->limit;
    if (old_burst > 0 && b->tat_ns > now && old_burst != burst) {
        unsigned __int128 used = (unsigned __int128)(b->tat_ns - now) * burst / old_burst;
        b->tat_ns = now + (used > burst ? burst : (uint64_t)used);
    }
}

static uint32_t ceil_s(uint64_t ns)
{
    uint64_t s = (ns + NS_PER_S - 1) / NS_PER_S;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

void sv_rl_take(sv_ratelimit_t *rl, sv_bytes_t token_key, const char *tenant, sv_rl_category_t c, uint64_t now_ns,
                sv_rl_result_t *out)
{
    /* the key: token key, 0, tenant, 0, category (long token keys hashed first) */
    uint8_t in[512];
    uint8_t tk_hash[crypto_shorthash_siphashx24_BYTES];
    size_t tl = strnlen(tenant, SV_TENANT_MAX);
    if (token_key.len > sizeof(in) - SV_TENANT_MAX - 3) {
        crypto_shorthash_siphashx24(tk_hash, token_key.base, token_key.len, rl->hash_key);
        token_key = SV_BYTES(tk_hash, sizeof(tk_hash));
    }
    size_t n = 0;
    memcpy(in, token_key.base, token_key.len);
    n += token_key.len;
    in[n++] = 0;
    memcpy(in + n, tenant, tl);
    n += tl;
    in[n++] = 0;
    in[n++] = (uint8_t)c;
    uint8_t h[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(h, in, n, rl->hash_key);
    uint64_t h0, h1;
    memcpy(&h0, h, 8);
    memcpy(&h1, h + 8, 8);
    h0 |= 1; /* never 0: 0 marks an empty slot */

    uint32_t gen = atomic_load_explicit(&rl->gen, memory_order_acquire);
    shard_t *s = &rl->shards[(h0 >> 32) % RL_SHARDS];
    pthread_mutex_lock(&s->lock);
    bucket_t *b = s->slots != NULL ? probe(s->slots, s->cap, h0, h1) : NULL;
    if (b == NULL || b->h0 == 0) {
        if (!make_room(s, rl->shard_max, now_ns)) {
            pthread_mutex_unlock(&s->lock);
            sv_rate_t r = sv_rl_effective(rl, tenant, c, NULL);
            *out = (sv_rl_result_t){
                .allowed = true, .limit = r.limit, .window_s = r.window_s, .remaining = r.limit - 1, .reset_s = 0};
            return;
        }
        b = probe(s->slots, s->cap, h0, h1);
        memset(b, 0, sizeof(*b));
        b->h0 = h0;
        b->h1 = h1;
        atomic_store_explicit(&s->count, atomic_load_explicit(&s->count, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    if (b->gen != gen)
        set_limit(rl, b, tenant, c, gen, now_ns);

    uint64_t interval = b->interval_ns, burst = interval * b->limit;
    uint64_t tat = b->tat_ns > now_ns ? b->tat_ns : now_ns;
    uint64_t next = tat + interval;
    out->limit = b->limit;
    out->window_s = b->window_s;
    if (next - now_ns > burst) {
        out->allowed = false;
        out->remaining = 0;
        out->retry_after_s = ceil_s(next - now_ns - burst);
        out->reset_s = ceil_s(tat - now_ns);
    } else {
        b->tat_ns = next;
        out->allowed = true;
        uint64_t rem = (now_ns + burst - next) / interval;
        out->remaining = rem > out->limit ? out->limit : (uint32_t)rem;
        out->retry_after_s = 0;
        out->reset_s = ceil_s(next - now_ns);
    }
    pthread_mutex_unlock(&s->lock);
    if (!out->allowed)
        sv_counter_inc(rl->rejected[c]);
}

size_t sv_rl_bucket_count(sv_ratelimit_t *rl)
{
    size_t n = 0;
    for (int i = 0; i < RL_SHARDS; i++)
        n += atomic_load_explicit(&rl->shards[i].count, memory_order_relaxed);
    return n;
}

/* ---- headers ---- */

/* Appends the decimal digits of v at p; returns the new end. */
static char *put_u32(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static char *put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

void sv_rl_format_headers(const sv_rl_result_t *r, sv_rl_category_t c, char *policy, char *state)
{
    /* hand-rolled: this runs on every rate-limited request */
    const char *name = sv_rl_category_name(c);
    char *p = policy;
    *p++ = '"';
    p = put_str(p, name);
    p = put_str(p, "\";q=");
    p = put_u32(p, r->limit);
    p = put_str(p, ";w=");
    p = put_u32(p, r->window_s);
    *p = 0;
    p = state;
    *p++ = '"';
    p = put_str(p, name);
    p = put_str(p, "\";r=");
    p = put_u32(p, r->remaining);
    p = put_str(p, ";t=");
    p = put_u32(p, r->reset_s);
    *p = 0;
}

void sv_rl_rate_format(sv_rate_t rate, char *out, size_t cap)
{
    if (rate.window_s == 1)
        snprintf(out, cap, "%u/s", rate.limit);
    else if (rate.window_s == 60)
        snprintf(out, cap, "%u/min", rate.limit);
    else if (rate.window_s == 3600)
        snprintf(out, cap, "%u/hour", rate.limit);
    else
        snprintf(out, cap, "%u/%us", rate.limit, rate.window_s);
}

/* ---- storage ---- */

#define OV_RECORD_VERSION 1

static void ov_encode(sv_recw_t *w, const sv_rl_overrides_t *ov, uint64_t version)
{
    sv_recw_init(w, OV_RECORD_VERSION);
    sv_recw_u64(w, version);
    uint8_t n = 0;
    for (int c = 0; c < SV_RL_COUNT_; c++)
        n += ov->rate[c].limit > 0;
    sv_recw_u8(w, n);
    for (int c = 0; c < SV_RL_COUNT_; c++) {
        if (ov->rate[c].limit == 0)
            continue;
        sv_recw_u8(w, (uint8_t)c);
        sv_recw_u32(w, ov->rate[c].limit);
        sv_recw_u32(w, ov->rate[c].window_s);
    }
}

static sv_err_t ov_decode(sv_bytes_t rec, sv_rl_overrides_t *ov, uint64_t *version)
{
    memset(ov, 0, sizeof(*ov));
    sv_recr_t r;
    if (sv_recr_init(&r, rec) != OV_RECORD_VERSION)
        return SV_ECORRUPT;
    *version = sv_recr_u64(&r);
    unsigned n = sv_recr_u8(&r);
    for (unsigned i = 0; i < n && !r.failed; i++) {
        unsigned c = sv_recr_u8(&r);
        uint32_t limit = sv_recr_u32(&r), window = sv_recr_u32(&r);
        if (c >= SV_RL_COUNT_ || limit == 0 || window == 0)
            return SV_ECORRUPT;
        ov->rate[c] = (sv_rate_t){limit, window};
    }
    return sv_recr_result(&r);
}

static void ov_key(sv_key_t *k, const char *tenant)
{
    sv_key_init(k);
    sv_key_str(k, tenant, strlen(tenant));
    sv_key_u8(k, SV_RL_TENANT_KIND);
}

sv_err_t sv_rl_load(sv_ratelimit_t *rl, sv_store_reader_t *reader)
{
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(reader, &tx);
    if (err != SV_OK)
        return err;
    sv_iter_t it;
    if ((err = sv_iter_open(tx, SV_DB_TENANTS, SV_BYTES(NULL, 0), SV_BYTES(NULL, 0), false, &it)) != SV_OK)
        goto end_read;
    sv_bytes_t key, val;
    while ((err = sv_iter_next(&it, &key, &val)) == SV_OK) {
        size_t off = 0;
        sv_bytes_t tenant;
        /* key(tenant) + u8(kind): only kind SV_RL_TENANT_KIND is ours */
        if (!sv_key_read_str(key, &off, &tenant) || off + 1 != key.len || key.base[off] != SV_RL_TENANT_KIND ||
            tenant.len >= SV_TENANT_MAX)
            continue;
        char name[SV_TENANT_MAX];
        memcpy(name, tenant.base, tenant.len);
        name[tenant.len] = 0;
        sv_rl_overrides_t ov;
        uint64_t version;
        if ((err = ov_decode(val, &ov, &version)) != SV_OK)
            break;
        if ((err = sv_rl_set_overrides(rl, name, &ov, version)) != SV_OK)
            break;
    }
    if (err == SV_ENOTFOUND)
        err = SV_OK;
    sv_iter_close(&it);
end_read:
    sv_store_read_end(reader);
    return err;
}

/* Stores ov over what tenant had (*prev: that, all zero when nothing). */
static sv_err_t store_put(sv_wtxn_t *tx, const char *tenant, const sv_rl_overrides_t *ov, uint64_t *version,
                          sv_rl_overrides_t *prev)
{
    sv_key_t k;
    ov_key(&k, tenant);
    if (k.overflow)
        return SV_EINVAL;
    uint64_t stored = 0;
    sv_bytes_t old;
    memset(prev, 0, sizeof(*prev));
    sv_err_t err = sv_txn_get(sv_wtxn_txn(tx), SV_DB_TENANTS, sv_key_bytes(&k), &old);
    if (err == SV_OK) {
        if ((err = ov_decode(old, prev, &stored)) != SV_OK)
            return err;
    } else if (err != SV_ENOTFOUND) {
        return err;
    }
    /* an empty set is stored too: its version keeps later changes ordered */
    *version = stored + 1;
    sv_recw_t w;
    ov_encode(&w, ov, *version);
    sv_bytes_t rec;
    if ((err = sv_recw_result(&w, &rec)) == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_TENANTS, sv_key_bytes(&k), rec);
    sv_recw_free(&w);
    return err;
}

sv_err_t sv_rl_store_put(sv_wtxn_t *tx, const char *tenant, const sv_rl_overrides_t *ov, uint64_t *version)
{
    sv_rl_overrides_t prev;
    return store_put(tx, tenant, ov, version, &prev);
}

sv_err_t sv_rl_store_clear(sv_wtxn_t *tx, const char *tenant, uint64_t *version, bool *had)
{
    sv_rl_overrides_t none = {0}, prev;
    sv_err_t err = store_put(tx, tenant, &none, version, &prev);
    *had = false;
    for (int c = 0; c < SV_RL_COUNT_; c++)
        if (prev.rate[c].limit != 0)
            *had = true;
    return err;
}

/* ---- the server part ---- */

static double g_buckets(void *arg)
{
    return (double)sv_rl_bucket_count(arg);
}

sv_err_t sv_rl_part_init(struct sv_app *app, char *msg, size_t msglen)
{
    sv_ratelimit_t *rl;
    sv_err_t err = sv_rl_new(app->cfg->rate, 0, app->metrics, &rl);
    if (err != SV_OK)
        return err;
    sv_store_reader_t *reader;
    if ((err = sv_store_reader_new(app->store, &reader)) != SV_OK)
        goto free_rl;
    err = sv_rl_load(rl, reader);
    sv_store_reader_free(reader);
    if (err != SV_OK) {
        snprintf(msg, msglen, "cannot load the tenants' rate-limit overrides: %s", sv_strerror(err));
        goto free_rl;
    }
    if (app->metrics != NULL &&
        (err = sv_metrics_gauge(app->metrics, "scaivault_rate_limit_buckets", NULL,
                                "Token buckets held in memory (idle ones are dropped).", g_buckets, rl)) != SV_OK)
        goto free_rl;
    app->ratelimit = rl;
    return SV_OK;

free_rl:
    sv_rl_free(rl);
    return err;
}

void sv_rl_part_stop(struct sv_app *app)
{
    sv_rl_free(app->ratelimit);
    app->ratelimit = NULL;
}
