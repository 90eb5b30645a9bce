/*
 * audit.c - the writing side of the audit log (audit.h): the stored format,
 * appending entries to the hash chain with their index rows, signed
 * checkpoints and retention anchors, and the signing key.
 *
 * The design choice that shapes it: the chain head is never cached. Each
 * append reads the last record of the `audit` database in the unit's own
 * (nested) write transaction, so an entry whose unit rolls back, or whose batch
 * fails to commit, leaves nothing behind that the next entry could chain to.
 * Reading the head is one cursor step; hashing is one BLAKE2b call over the
 * stored bytes, because a record is laid out as hash || prev_hash || canonical
 * entry and the hash covers exactly the bytes after it.
 *
 * Checkpoints are written by a per-batch hook in the batch transaction.
 * Retention prunes in bounded steps, each a unit of its own (so that a step
 * commits or vanishes whole, anchor included); the batch hook queues the
 * first step and each step queues the next while expired entries remain.
 *
 * Threads: sv_audit_open/close and the part functions on the main thread;
 * appends, hooks and retention steps on the writer thread; the decoding and
 * JSON helpers on any thread.
 */
#include "sv_autoconf.h"

#include "src/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/app.h"
#include "src/audit_journal.h"
#include "src/health.h"
#include "src/scheduler.h"
#include "src/log.h"
#include "store/fault.h"
#include "store/key.h"

#define PRUNE_MAX 512             /* entries per retention step */
#define PRUNE_BACKOFF_US 60000000 /* after a step found nothing it could prune */
#define META_CHECKPOINT "audit_checkpoint"
#define CANON_FIXED (1 + 8 + 8 + 1 + 2) /* format, seq, time, success, status */
#define N_STRINGS 8
#define JOURNAL_DRAIN_ENTRIES 256    /* the journal goes to LMDB once it holds this many entries */
#define JOURNAL_DRAIN_AGE_MS 500     /* ... or once its oldest entry is this old (sv_audit_opts_t) */

struct sv_audit {
    sv_audit_t *self; /* the hooks' argument when attached with sv_audit_attach */
    uint8_t *sk;      /* sodium_malloc: the Ed25519 secret key (seed || public key), then the cursor key */
    uint8_t pk[SV_AUDIT_PK_BYTES];
    sv_audit_opts_t opts; /* key_file is not kept */
    sv_writer_t *writer;

    /* the journal (audit_journal.h); the fields below are the writer thread's */
    sv_audit_journal_t *journal;
    bool journal_off;     /* AUDIT_JOURNAL=false: only what a crash left in it goes to the store */
    bool head_known;      /* head_seq/head_hash: the chain's head, journal included */
    uint64_t head_seq;
    uint8_t head_hash[SV_AUDIT_HASH_BYTES];
    uint64_t ckpt_due_seq;  /* a checkpoint by count is due at this seq (0: not known yet) */
    uint64_t ckpt_due_next; /* ... as the batch in progress leaves it (set once it committed) */
    uint64_t drain_due_us;  /* sv_mono_us by which the journal goes to LMDB; 0: it holds nothing */
    _Atomic size_t pending; /* entries in the journal and not yet in the store (any thread reads it) */

    /* retention: at most one step queued at a time */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool prune_pending; /* a step is queued or running */
    bool closing;
    sv_unit_t prune_unit;
    bool prune_more;             /* set by the step: it stopped at PRUNE_MAX */
    uint64_t prune_refused_at;   /* the signed record that last stopped a step (logged once); writer thread */
    bool prune_other_key_said;   /* the warning about records of another key was logged; writer thread */
    size_t prune_count;          /* set by the step: entries it pruned */
    int64_t prune_idle_until;    /* writer thread only: backoff after an empty step */
    _Atomic int last_append_err; /* sv_err_t of the last append (for health) */
};

/* ---- the canonical encoding ---- */

/* Appends a u16 length and the string (at most max bytes, up to its NUL),
 * with each byte of an invalid UTF-8 sequence replaced by '?'. */
static bool put_str(uint8_t *out, size_t cap, size_t *off, const char *s, size_t max)
{
    size_t len = strnlen(s, max);
    if (*off + 2 + len > cap || len > UINT16_MAX)
        return false;
    out[*off] = (uint8_t)(len >> 8);
    out[*off + 1] = (uint8_t)len;
    uint8_t *dst = out + *off + 2;
    const uint8_t *src = (const uint8_t *)s;
    for (size_t i = 0; i < len;) {
        size_t n = sv_utf8_seq(src + i, len - i);
        if (n == 0) {
            dst[i++] = '?';
        } else {
            memcpy(dst + i, src + i, n);
            i += n;
        }
    }
    *off += 2 + len;
    return true;
}

size_t sv_audit_record_encode(uint8_t *out, size_t cap, uint64_t seq, int64_t time_us, const sv_audit_entry_t *e,
                              const uint8_t prev_hash[SV_AUDIT_HASH_BYTES])
{
    size_t off = 2 * SV_AUDIT_HASH_BYTES;
    if (cap < off + CANON_FIXED)
        return 0;
    memcpy(out + SV_AUDIT_HASH_BYTES, prev_hash, SV_AUDIT_HASH_BYTES);
    out[off++] = SV_AUDIT_FORMAT;
    sv_put_be64(out + off, seq);
    off += 8;
    sv_put_be64(out + off, (uint64_t)time_us);
    off += 8;
    out[off++] = e->success ? 1 : 0;
    uint16_t status = e->status < 0 ? 0 : e->status > UINT16_MAX ? UINT16_MAX : (uint16_t)e->status;
    out[off++] = (uint8_t)(status >> 8);
    out[off++] = (uint8_t)status;
    const struct {
        const char *s;
        size_t max;
    } strs[N_STRINGS] = {
        {e->request_id, sizeof(e->request_id)},
        {e->tenant_id, sizeof(e->tenant_id)},
        {e->identity_id, sizeof(e->identity_id)},
        {e->action, sizeof(e->action)},
        {e->path, sizeof(e->path)},
        {e->error_code, sizeof(e->error_code)},
        {e->ip, sizeof(e->ip)},
        {e->user_agent, sizeof(e->user_agent)},
    };
    for (size_t i = 0; i < N_STRINGS; i++)
        if (!put_str(out, cap, &off, strs[i].s, strs[i].max))
            return 0;
    crypto_generichash(out, SV_AUDIT_HASH_BYTES, out + SV_AUDIT_HASH_BYTES, off - SV_AUDIT_HASH_BYTES, NULL, 0);
    return off;
}

sv_err_t sv_audit_record_decode(sv_bytes_t val, sv_audit_record_t *r)
{
    const uint8_t *p = val.base;
    size_t off = 2 * SV_AUDIT_HASH_BYTES;
    if (val.len < off + CANON_FIXED + 2 * N_STRINGS || p[off] != SV_AUDIT_FORMAT)
        return SV_ECORRUPT;
    r->hash = p;
    r->prev_hash = p + SV_AUDIT_HASH_BYTES;
    r->hashed = (sv_bytes_t){p + SV_AUDIT_HASH_BYTES, val.len - SV_AUDIT_HASH_BYTES};
    off++;
    r->seq = sv_get_be64(p + off);
    off += 8;
    r->time_us = (int64_t)sv_get_be64(p + off);
    off += 8;
    if (p[off] > 1)
        return SV_ECORRUPT;
    r->success = p[off++] == 1;
    r->status = (uint16_t)((p[off] << 8) | p[off + 1]);
    off += 2;
    sv_bytes_t *strs[N_STRINGS] = {&r->request_id, &r->tenant_id,  &r->identity_id, &r->action,
                                   &r->path,       &r->error_code, &r->ip,          &r->user_agent};
    for (size_t i = 0; i < N_STRINGS; i++) {
        if (off + 2 > val.len)
            return SV_ECORRUPT;
        size_t len = ((size_t)p[off] << 8) | p[off + 1];
        off += 2;
        if (len > val.len - off)
            return SV_ECORRUPT;
        *strs[i] = (sv_bytes_t){p + off, len};
        off += len;
    }
    return off == val.len ? SV_OK : SV_ECORRUPT;
}

bool sv_audit_record_hash_ok(const sv_audit_record_t *r)
{
    uint8_t h[SV_AUDIT_HASH_BYTES];
    crypto_generichash(h, sizeof(h), r->hashed.base, r->hashed.len, NULL, 0);
    return memcmp(h, r->hash, sizeof(h)) == 0;
}

/* ---- checkpoints and anchors ---- */

#define CKPT_VALUE_LEN (SV_AUDIT_HASH_BYTES + 1 + 8 + SV_AUDIT_SIG_BYTES)

size_t sv_audit_signed_message(const sv_audit_checkpoint_t *c, uint8_t out[80])
{
    const char *domain = c->anchor ? SV_AUDIT_ANCHOR_DOMAIN : SV_AUDIT_CHECKPOINT_DOMAIN;
    size_t n = strlen(domain);
    memcpy(out, domain, n);
    sv_put_be64(out + n, c->seq);
    memcpy(out + n + 8, c->hash, SV_AUDIT_HASH_BYTES);
    sv_put_be64(out + n + 8 + SV_AUDIT_HASH_BYTES, (uint64_t)c->time_us);
    return n + 16 + SV_AUDIT_HASH_BYTES;
}

bool sv_audit_checkpoint_verify(const sv_audit_checkpoint_t *c, const uint8_t pk[SV_AUDIT_PK_BYTES])
{
    uint8_t msg[80];
    size_t n = sv_audit_signed_message(c, msg);
    return crypto_sign_verify_detached(c->sig, msg, n, pk) == 0;
}

sv_err_t sv_audit_checkpoint_decode(sv_bytes_t key, sv_bytes_t val, sv_audit_checkpoint_t *c)
{
    if (key.len != 9 || (key.base[8] != SV_AUDIT_TAG_CHECKPOINT && key.base[8] != SV_AUDIT_TAG_ANCHOR) ||
        val.len != CKPT_VALUE_LEN || val.base[SV_AUDIT_HASH_BYTES] != SV_AUDIT_FORMAT)
        return SV_ECORRUPT;
    c->seq = sv_get_be64(key.base);
    c->anchor = key.base[8] == SV_AUDIT_TAG_ANCHOR;
    memcpy(c->hash, val.base, SV_AUDIT_HASH_BYTES);
    c->time_us = (int64_t)sv_get_be64(val.base + SV_AUDIT_HASH_BYTES + 1);
    memcpy(c->sig, val.base + SV_AUDIT_HASH_BYTES + 9, SV_AUDIT_SIG_BYTES);
    return SV_OK;
}

/* Storage errors pass through (the writer retries or fails the batch); any
 * other failure to write an entry is SV_EAUDIT. */
static sv_err_t append_err(sv_err_t err)
{
    return (err == SV_EMAPFULL || err == SV_EIO || err == SV_ENOSPC) ? err : SV_EAUDIT;
}

/* Signs and stores a checkpoint (or anchor) of seq/hash at the batch's time. */
static sv_err_t write_checkpoint(sv_audit_t *a, sv_wtxn_t *tx, uint64_t seq, const uint8_t *hash, bool anchor,
                                 sv_audit_checkpoint_t *out)
{
    sv_audit_checkpoint_t c = {.seq = seq, .time_us = sv_wtxn_now_us(tx), .anchor = anchor};
    memcpy(c.hash, hash, SV_AUDIT_HASH_BYTES);
    uint8_t msg[80];
    size_t mlen = sv_audit_signed_message(&c, msg);
    crypto_sign_detached(c.sig, NULL, msg, mlen, a->sk);
    uint8_t key[9], val[CKPT_VALUE_LEN];
    sv_put_be64(key, seq);
    key[8] = anchor ? SV_AUDIT_TAG_ANCHOR : SV_AUDIT_TAG_CHECKPOINT;
    memcpy(val, c.hash, SV_AUDIT_HASH_BYTES);
    val[SV_AUDIT_HASH_BYTES] = SV_AUDIT_FORMAT;
    sv_put_be64(val + SV_AUDIT_HASH_BYTES + 1, (uint64_t)c.time_us);
    memcpy(val + SV_AUDIT_HASH_BYTES + 9, c.sig, SV_AUDIT_SIG_BYTES);
    sv_err_t err = sv_wtxn_put(tx, SV_DB_AUDIT, SV_BYTES(key, sizeof(key)), SV_BYTES(val, sizeof(val)));
    if (err == SV_OK && !anchor) {
        uint8_t meta[17] = {1};
        sv_put_be64(meta + 1, seq);
        sv_put_be64(meta + 9, (uint64_t)c.time_us);
        err = sv_wtxn_put(tx, SV_DB_META, SV_BYTES_STR(META_CHECKPOINT), SV_BYTES(meta, sizeof(meta)));
    }
    if (err == SV_OK && out != NULL)
        *out = c;
    return err;
}

/* ---- the chain ---- */

sv_err_t sv_audit_head(sv_txn_t *tx, uint64_t *seq, uint8_t hash[SV_AUDIT_HASH_BYTES], bool *is_entry)
{
    *seq = 0;
    memset(hash, 0, SV_AUDIT_HASH_BYTES);
    if (is_entry != NULL)
        *is_entry = false;
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_AUDIT, (sv_bytes_t){0}, (sv_bytes_t){0}, true, &it);
    if (err != SV_OK)
        return err == SV_ENOTFOUND ? SV_OK : err;
    sv_bytes_t k, v;
    err = sv_iter_next(&it, &k, &v);
    if (err == SV_OK) {
        if ((k.len != 8 && k.len != 9) || v.len < SV_AUDIT_HASH_BYTES) {
            err = SV_ECORRUPT;
        } else {
            *seq = sv_get_be64(k.base);
            memcpy(hash, v.base, SV_AUDIT_HASH_BYTES);
            if (is_entry != NULL)
                *is_entry = k.len == 8;
        }
    } else if (err == SV_ENOTFOUND) {
        err = SV_OK;
    }
    sv_iter_close(&it);
    return err;
}

void sv_audit_entry_init(sv_audit_entry_t *e, const char *action, const char *tenant_id, const char *identity_id,
                         const char *path, bool success, const char *error_code)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->action, sizeof(e->action), "%s", action);
    snprintf(e->tenant_id, sizeof(e->tenant_id), "%s", tenant_id != NULL ? tenant_id : "");
    snprintf(e->identity_id, sizeof(e->identity_id), "%s", identity_id != NULL ? identity_id : "");
    snprintf(e->path, sizeof(e->path), "%s", path != NULL ? path : "");
    e->success = success;
    snprintf(e->error_code, sizeof(e->error_code), "%s", error_code != NULL ? error_code : "");
}

/* The index keys of an entry (doc/audit.md "Indexes"). */
void sv_audit_activity_key(sv_key_t *k, sv_bytes_t tenant, int64_t second)
{
    sv_key_init(k);
    sv_key_u8(k, 's');
    sv_key_str(k, (const char *)tenant.base, tenant.len);
    sv_key_u64(k, (uint64_t)second);
}

static void request_key(sv_key_t *k, sv_bytes_t request_id, uint64_t seq)
{
    sv_key_init(k);
    sv_key_str(k, (const char *)request_id.base, request_id.len);
    sv_key_u64(k, seq);
}

static void time_key(sv_key_t *k, int64_t time_us, uint64_t seq)
{
    sv_key_init(k);
    sv_key_u8(k, 'g');
    sv_key_u64(k, (uint64_t)time_us);
    sv_key_u64(k, seq);
}

static sv_err_t append_entry(sv_wtxn_t *tx, const sv_audit_entry_t *e, uint64_t *seq_out);

sv_err_t sv_audit_append(sv_audit_t *a, sv_wtxn_t *tx, const sv_audit_entry_t *e, uint64_t *seq_out)
{
    if (a == NULL)
        return SV_OK;
    if (e == NULL || e->action[0] == 0)
        return SV_EAUDIT;
    sv_err_t err = append_entry(tx, e, seq_out);
    atomic_store_explicit(&a->last_append_err, err, memory_order_relaxed);
    return err;
}

sv_err_t sv_audit_index_entry(sv_wtxn_t *tx, const sv_audit_record_t *r)
{
    sv_key_t k;
    sv_err_t err;
    if (r->request_id.len > 0) {
        request_key(&k, r->request_id, r->seq);
        if (k.overflow)
            return SV_EAUDIT;
        if ((err = sv_wtxn_put_derived(tx, SV_DB_AUDIT_BY_REQUEST, sv_key_bytes(&k), (sv_bytes_t){0})) != SV_OK)
            return err;
    }
    time_key(&k, r->time_us, r->seq);
    if ((err = sv_wtxn_put_derived(tx, SV_DB_AUDIT_BY_TIME, sv_key_bytes(&k), (sv_bytes_t){0})) != SV_OK)
        return err;
    if (r->tenant_id.len == 0)
        return SV_OK;
    /* the tenant's activity row for this second, once: a get does not dirty
     * a page, a put per entry would (one leaf per tenant per commit) */
    sv_audit_activity_key(&k, r->tenant_id, r->time_us / 1000000);
    if (k.overflow)
        return SV_EAUDIT;
    sv_bytes_t seen;
    err = sv_txn_get(sv_wtxn_txn(tx), SV_DB_AUDIT_BY_TIME, sv_key_bytes(&k), &seen);
    if (err == SV_ENOTFOUND)
        err = sv_wtxn_put_derived(tx, SV_DB_AUDIT_BY_TIME, sv_key_bytes(&k), (sv_bytes_t){0});
    return err;
}

static sv_err_t append_entry(sv_wtxn_t *tx, const sv_audit_entry_t *e, uint64_t *seq_out)
{
    if (sv_fault_check(SV_FAULT_AUDIT) != 0)
        return SV_EAUDIT;
    uint64_t head;
    uint8_t prev[SV_AUDIT_HASH_BYTES];
    sv_err_t err = sv_audit_head(sv_wtxn_txn(tx), &head, prev, NULL);
    if (err != SV_OK)
        return append_err(err);
    uint64_t seq = head + 1;
    uint8_t rec[SV_AUDIT_RECORD_MAX];
    size_t n = sv_audit_record_encode(rec, sizeof(rec), seq, sv_wtxn_now_us(tx), e, prev);
    sv_audit_record_t r;
    if (n == 0 || sv_audit_record_decode(SV_BYTES(rec, n), &r) != SV_OK)
        return SV_EAUDIT;
    uint8_t key[8];
    sv_put_be64(key, seq);
    if ((err = sv_wtxn_put(tx, SV_DB_AUDIT, SV_BYTES(key, 8), SV_BYTES(rec, n))) != SV_OK)
        return append_err(err);
    if ((err = sv_audit_index_entry(tx, &r)) != SV_OK)
        return append_err(err);
    if (seq_out != NULL)
        *seq_out = seq;
    return SV_OK;
}

/* The writer's hooks take a pointer to the log's pointer (&app->audit in the
 * server), so that the part can detach before it frees the log: a NULL log
 * fails an audited unit closed. */
static sv_err_t audit_hook(void *arg, sv_wtxn_t *tx, sv_unit_t *u, sv_err_t op_result)
{
    sv_audit_t *a = *(sv_audit_t **)arg;
    return a != NULL ? sv_audit_append(a, tx, u->audit, NULL) : SV_EAUDIT;
}

sv_err_t sv_audit_checkpoint_now(sv_audit_t *a, sv_wtxn_t *tx, sv_audit_checkpoint_t *out, bool *created)
{
    *created = false;
    sv_txn_t *t = sv_wtxn_txn(tx);
    uint64_t head;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    bool is_entry;
    sv_err_t err = sv_audit_head(t, &head, hash, &is_entry);
    if (err != SV_OK)
        return err;
    if (head == 0)
        return SV_ENOTFOUND;
    if (is_entry) {
        *created = true;
        return write_checkpoint(a, tx, head, hash, false, out);
    }
    /* the head is a checkpoint or anchor already: hand it back */
    sv_iter_t it;
    if ((err = sv_iter_open(t, SV_DB_AUDIT, (sv_bytes_t){0}, (sv_bytes_t){0}, true, &it)) != SV_OK)
        return err;
    sv_bytes_t k, v;
    if ((err = sv_iter_next(&it, &k, &v)) == SV_OK)
        err = sv_audit_checkpoint_decode(k, v, out);
    sv_iter_close(&it);
    return err;
}

/* ---- retention ---- */

typedef struct {
    uint64_t seq;
    int64_t time_us;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    char request_id[65];
    char tenant_id[SV_TENANT_MAX];
} prune_item_t;

typedef struct {
    prune_item_t *items;
    size_t n;
    uint64_t checkpoints[PRUNE_MAX]; /* checkpoint records covered by the pruned entries */
    size_t n_checkpoints;
    bool has_old_anchor;
    uint64_t old_anchor;
    uint8_t last_hash[SV_AUDIT_HASH_BYTES];
    bool more;
    uint64_t refused_at; /* a checkpoint or anchor that does not match its entry stopped the plan here; 0: none */
    size_t other_key;    /* records pruned whose signature the current key does not verify */
} prune_plan_t;

static void copy_view(char *dst, size_t cap, sv_bytes_t v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.base, n);
    dst[n] = 0;
}

/* Collects the expired prefix of the log, stopping at a broken link: pruning
 * must never cover up tampering by anchoring over it. */
/* Whether the signed record at k/v (a checkpoint, or the old anchor) attests
 * hash, the hash of the entry it follows: a pruning step deletes them, and
 * must not anchor over a chain rewritten after they were signed (verify would
 * stop naming it). Its signature is checked too, but a record that does not
 * verify with the current key may have been signed with an earlier one (a
 * changed audit-signing.key, audit.md): that one is only counted in
 * *unsigned_n, for a warning. */
static bool signed_record_ok(sv_bytes_t k, sv_bytes_t v, const uint8_t *hash, const uint8_t *pk, size_t *unsigned_n)
{
    sv_audit_checkpoint_t c;
    if (sv_audit_checkpoint_decode(k, v, &c) != SV_OK || memcmp(c.hash, hash, SV_AUDIT_HASH_BYTES) != 0)
        return false;
    if (!sv_audit_checkpoint_verify(&c, pk))
        (*unsigned_n)++;
    return true;
}

static sv_err_t plan_prune(sv_txn_t *t, int64_t cutoff, const uint8_t *pk, prune_plan_t *plan)
{
    sv_iter_t it;
    sv_err_t err = sv_iter_open(t, SV_DB_AUDIT, (sv_bytes_t){0}, (sv_bytes_t){0}, false, &it);
    if (err != SV_OK)
        return err;
    uint8_t prev[SV_AUDIT_HASH_BYTES] = {0};
    uint64_t expected = 1;
    sv_bytes_t k, v;
    while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
        if (k.len == 9 && k.base[8] == SV_AUDIT_TAG_ANCHOR && plan->n == 0 && !plan->has_old_anchor &&
            v.len >= SV_AUDIT_HASH_BYTES) {
            if (!signed_record_ok(k, v, v.base, pk, &plan->other_key)) {
                plan->refused_at = sv_get_be64(k.base);
                break;
            }
            plan->has_old_anchor = true;
            plan->old_anchor = sv_get_be64(k.base);
            expected = plan->old_anchor + 1;
            memcpy(prev, v.base, SV_AUDIT_HASH_BYTES);
            continue;
        }
        if (k.len == 9 && k.base[8] == SV_AUDIT_TAG_CHECKPOINT && plan->n > 0 &&
            sv_get_be64(k.base) == plan->items[plan->n - 1].seq) {
            if (!signed_record_ok(k, v, plan->last_hash, pk, &plan->other_key)) {
                /* keep it, and the entry it signs: give that entry back */
                plan->refused_at = sv_get_be64(k.base);
                plan->n--;
                if (plan->n > 0)
                    memcpy(plan->last_hash, plan->items[plan->n - 1].hash, SV_AUDIT_HASH_BYTES);
                break;
            }
            plan->checkpoints[plan->n_checkpoints++] = sv_get_be64(k.base);
            continue;
        }
        sv_audit_record_t r;
        bool decoded = k.len == 8 && sv_audit_record_decode(v, &r) == SV_OK;
        if (decoded && r.time_us >= cutoff)
            break;
        if (!decoded || r.seq != sv_get_be64(k.base) || r.seq != expected ||
            memcmp(r.prev_hash, prev, SV_AUDIT_HASH_BYTES) != 0 || !sv_audit_record_hash_ok(&r)) {
            /* an expired record that does not verify (a broken link, after the old anchor too): stop here */
            if (k.len >= 8)
                plan->refused_at = sv_get_be64(k.base);
            break;
        }
        if (plan->n == PRUNE_MAX) {
            plan->more = true;
            break;
        }
        prune_item_t *p = &plan->items[plan->n++];
        p->seq = r.seq;
        p->time_us = r.time_us;
        memcpy(p->hash, r.hash, SV_AUDIT_HASH_BYTES);
        copy_view(p->request_id, sizeof(p->request_id), r.request_id);
        copy_view(p->tenant_id, sizeof(p->tenant_id), r.tenant_id);
        memcpy(plan->last_hash, r.hash, SV_AUDIT_HASH_BYTES);
        memcpy(prev, r.hash, SV_AUDIT_HASH_BYTES);
        expected++;
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND || err == SV_OK ? SV_OK : err;
}

static sv_err_t del_quiet(sv_wtxn_t *tx, sv_db_t db, sv_bytes_t key)
{
    sv_err_t err = sv_wtxn_del(tx, db, key);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

/* Deletes the tenant's activity rows of the seconds before `second`: pruning
 * goes oldest first, so every entry of those seconds is gone or expired.
 * Usually one row or none per call; bounded so a backlog spreads over calls. */
static sv_err_t prune_activity(sv_wtxn_t *tx, const char *tenant, int64_t second)
{
    sv_key_t prefix;
    sv_key_init(&prefix);
    sv_key_u8(&prefix, 's');
    sv_key_str(&prefix, tenant, strlen(tenant));
    if (prefix.overflow)
        return SV_OK;
    sv_key_t doomed[16];
    size_t n = 0;
    sv_iter_t it;
    sv_err_t err =
        sv_iter_open(sv_wtxn_txn(tx), SV_DB_AUDIT_BY_TIME, sv_key_bytes(&prefix), (sv_bytes_t){0}, false, &it);
    if (err == SV_ENOTFOUND)
        return SV_OK;
    if (err != SV_OK)
        return err;
    sv_bytes_t key;
    while (n < SV_ARRAY_LEN(doomed) && (err = sv_iter_next(&it, &key, NULL)) == SV_OK) {
        if (key.len != prefix.len + 8 || (int64_t)sv_get_be64(key.base + prefix.len) >= second)
            break;
        sv_key_init(&doomed[n]);
        sv_key_raw(&doomed[n], key.base, key.len);
        n++;
    }
    sv_iter_close(&it);
    if (err != SV_OK && err != SV_ENOTFOUND)
        return err;
    err = SV_OK;
    for (size_t i = 0; i < n && err == SV_OK; i++)
        err = del_quiet(tx, SV_DB_AUDIT_BY_TIME, sv_key_bytes(&doomed[i]));
    return err;
}

/* One retention step (a unit of its own): delete up to PRUNE_MAX expired
 * entries with their index rows and checkpoints, and replace the previous
 * anchor with a signed one for the last entry deleted. */
static sv_err_t prune_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    sv_audit_t *a = u->arg;
    a->prune_more = false;
    a->prune_count = 0;
    prune_plan_t *plan = calloc(1, sizeof(*plan));
    if (plan == NULL)
        return SV_ENOMEM;
    if ((plan->items = malloc(PRUNE_MAX * sizeof(*plan->items))) == NULL) {
        free(plan);
        return SV_ENOMEM;
    }
    int64_t cutoff = sv_wtxn_now_us(tx) - a->opts.retention_ms * 1000;
    sv_err_t err = plan_prune(sv_wtxn_txn(tx), cutoff, a->pk, plan);
    if (err == SV_OK && plan->refused_at != 0 && plan->refused_at != a->prune_refused_at) {
        a->prune_refused_at = plan->refused_at; /* said once per record */
        sv_log_error("audit retention: the record at seq %llu does not verify (a broken link, or a checkpoint or "
                     "anchor that does not match the chain); entries from there on are kept, so that "
                     "GET /v1/audit/verify goes on naming it",
                     (unsigned long long)plan->refused_at);
    }
    if (err == SV_OK && plan->other_key > 0 && !a->prune_other_key_said) {
        a->prune_other_key_said = true;
        sv_log_warn("audit retention: pruning %zu checkpoint(s) or anchor(s) whose signature the current signing "
                    "key does not verify (signed with an earlier key, or forged); exports keep them",
                    plan->other_key);
    }
    for (size_t i = 0; err == SV_OK && i < plan->n; i++) {
        const prune_item_t *p = &plan->items[i];
        sv_key_t k;
        if (p->request_id[0] != 0) {
            request_key(&k, SV_BYTES(p->request_id, strlen(p->request_id)), p->seq);
            err = del_quiet(tx, SV_DB_AUDIT_BY_REQUEST, sv_key_bytes(&k));
        }
        if (err == SV_OK) {
            time_key(&k, p->time_us, p->seq);
            err = del_quiet(tx, SV_DB_AUDIT_BY_TIME, sv_key_bytes(&k));
        }
        if (err == SV_OK && p->tenant_id[0] != 0) {
            /* the rows of the seconds before this entry's: every entry of
             * them is gone now. Not this second's: a step may stop within
             * it, and what it keeps must stay findable (after a restart with
             * a longer retention, say); a later entry of the tenant takes
             * the row with it */
            err = prune_activity(tx, p->tenant_id, p->time_us / 1000000);
        }
        uint8_t key[8];
        sv_put_be64(key, p->seq);
        if (err == SV_OK)
            err = sv_wtxn_del(tx, SV_DB_AUDIT, SV_BYTES(key, 8));
    }
    for (size_t i = 0; err == SV_OK && i < plan->n_checkpoints; i++) {
        uint8_t key[9];
        sv_put_be64(key, plan->checkpoints[i]);
        key[8] = SV_AUDIT_TAG_CHECKPOINT;
        err = del_quiet(tx, SV_DB_AUDIT, SV_BYTES(key, 9));
    }
    if (err == SV_OK && plan->n > 0 && plan->has_old_anchor) {
        uint8_t key[9];
        sv_put_be64(key, plan->old_anchor);
        key[8] = SV_AUDIT_TAG_ANCHOR;
        err = del_quiet(tx, SV_DB_AUDIT, SV_BYTES(key, 9));
    }
    if (err == SV_OK && plan->n > 0)
        err = write_checkpoint(a, tx, plan->items[plan->n - 1].seq, plan->last_hash, true, NULL);
    if (err == SV_OK) {
        a->prune_more = plan->more;
        a->prune_count = plan->n;
    }
    free(plan->items);
    free(plan);
    return err;
}

/* Runs on the writer thread once the step's batch committed (or failed):
 * queue the next step while expired entries remain. */
static void prune_done(sv_unit_t *u)
{
    sv_audit_t *a = u->arg;
    pthread_mutex_lock(&a->lock);
    if (u->result != SV_OK)
        sv_log_error("audit retention: a pruning step failed: %s", sv_strerror(u->result));
    else if (a->prune_count == 0)
        a->prune_idle_until = sv_now_us() + PRUNE_BACKOFF_US; /* e.g. a broken link: leave it for verify */
    bool again = u->result == SV_OK && a->prune_more && !a->closing;
    if (again && sv_writer_submit(a->writer, &a->prune_unit) == SV_OK) {
        pthread_mutex_unlock(&a->lock);
        return;
    }
    a->prune_pending = false;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* Whether the oldest entry has expired (one or two cursor steps). */
static bool prune_due(sv_audit_t *a, sv_txn_t *t, int64_t now_us)
{
    if (now_us < a->prune_idle_until)
        return false;
    sv_iter_t it;
    if (sv_iter_open(t, SV_DB_AUDIT, (sv_bytes_t){0}, (sv_bytes_t){0}, false, &it) != SV_OK)
        return false;
    bool due = false;
    sv_bytes_t k, v;
    for (int i = 0; i < 3 && sv_iter_next(&it, &k, &v) == SV_OK; i++) {
        if (k.len != 8)
            continue; /* the anchor */
        sv_audit_record_t r;
        due = sv_audit_record_decode(v, &r) == SV_OK && r.time_us < now_us - a->opts.retention_ms * 1000;
        break;
    }
    sv_iter_close(&it);
    return due;
}

/* ---- the per-batch hook: checkpoints, and the start of retention ---- */

static void batch_hook(void *arg, sv_wtxn_t *tx)
{
    sv_audit_t *a = *(sv_audit_t **)arg;
    if (a == NULL)
        return;
    sv_txn_t *t = sv_wtxn_txn(tx);
    int64_t now = sv_wtxn_now_us(tx);
    uint64_t head;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    bool is_entry;
    a->ckpt_due_next = 0;
    if (sv_audit_head(t, &head, hash, &is_entry) != SV_OK)
        return;
    uint64_t last_seq = 0;
    int64_t last_time = 0;
    sv_bytes_t m;
    if (sv_txn_get(t, SV_DB_META, SV_BYTES_STR(META_CHECKPOINT), &m) == SV_OK && m.len == 17 && m.base[0] == 1) {
        last_seq = sv_get_be64(m.base + 1);
        last_time = (int64_t)sv_get_be64(m.base + 9);
    }
    if (head > 0 && is_entry) {
        bool due = (a->opts.checkpoint_entries > 0 && head >= last_seq + a->opts.checkpoint_entries) ||
                   (a->opts.checkpoint_interval_ms > 0 && now - last_time >= a->opts.checkpoint_interval_ms * 1000);
        if (due) {
            sv_err_t err = write_checkpoint(a, tx, head, hash, false, NULL);
            if (err != SV_OK)
                sv_log_error("audit: cannot write a checkpoint at seq %llu: %s", (unsigned long long)head,
                             sv_strerror(err));
            else
                last_seq = head;
        }
    }
    /* the journal sends the batch that reaches the next one to LMDB, where this hook writes it */
    a->ckpt_due_next = last_seq + a->opts.checkpoint_entries;
    if (head == 0)
        return;
    if (a->opts.retention_ms > 0 && prune_due(a, t, now)) {
        pthread_mutex_lock(&a->lock);
        if (!a->prune_pending && !a->closing) {
            a->prune_pending = true;
            if (sv_writer_submit(a->writer, &a->prune_unit) != SV_OK)
                a->prune_pending = false;
        }
        pthread_mutex_unlock(&a->lock);
    }
}

/* ---- the signing key ---- */

/* Reads or writes exactly n bytes (retrying short transfers and EINTR).
 * Returns whether all n went through. */
static bool io_exact(int fd, uint8_t *buf, size_t n, bool write_it)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = write_it ? sv_sys_write(fd, buf + off, n - off) : read(fd, buf + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        off += (size_t)r;
    }
    return true;
}

static sv_err_t create_key_file(const char *path, char *msg, size_t msglen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, msglen, "AUDIT_SIGNING_KEY_FILE: cannot create '%s': %s", path, strerror(e));
        return sv_store_err(e); /* a missing directory or no permission: a setting to fix (exit 2) */
    }
    uint8_t *seed = sodium_malloc(SV_AUDIT_SEED_BYTES);
    sv_err_t err = SV_ENOMEM;
    if (seed == NULL)
        goto close_fd;
    randombytes_buf(seed, SV_AUDIT_SEED_BYTES);
    err = (io_exact(fd, seed, SV_AUDIT_SEED_BYTES, true) && sv_sys_fsync(fd) == 0) ? SV_OK : SV_EIO;
    if (err != SV_OK)
        snprintf(msg, msglen, "AUDIT_SIGNING_KEY_FILE: cannot write '%s': %s", path, strerror(errno));
    sodium_free(seed);
close_fd:
    close(fd);
    if (err != SV_OK) {
        unlink(path);
        return err;
    }
    (void)sv_sys_fsync_parent(path); /* make the new name durable too */
    sv_log_info("audit: created the checkpoint signing key %s", path);
    return SV_OK;
}

static sv_err_t load_key(sv_audit_t *a, const char *path, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        sv_err_t err = create_key_file(path, msg, msglen);
        if (err != SV_OK)
            return err;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(msg, msglen, "AUDIT_SIGNING_KEY_FILE: cannot open '%s': %s", path, strerror(errno));
        return errno == EACCES ? SV_EPERM : SV_EIO;
    }
    sv_err_t err = SV_OK;
    struct stat sb;
    uint8_t *seed = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(msg, msglen, "AUDIT_SIGNING_KEY_FILE: '%s' is not a regular file", path);
        err = SV_EPERM;
        goto close_fd;
    }
    if (sb.st_mode & 077) {
        snprintf(msg, msglen,
                 "AUDIT_SIGNING_KEY_FILE: '%s' is readable or writable by group or others (mode %04o); "
                 "run chmod 600 '%s'",
                 path, (unsigned)(sb.st_mode & 07777), path);
        err = SV_EPERM;
        goto close_fd;
    }
    if (sb.st_size != SV_AUDIT_SEED_BYTES) {
        snprintf(msg, msglen, "AUDIT_SIGNING_KEY_FILE: '%s' must hold exactly %d bytes (an Ed25519 seed), not %lld",
                 path, SV_AUDIT_SEED_BYTES, (long long)sb.st_size);
        err = SV_EINVAL;
        goto close_fd;
    }
    if ((seed = sodium_malloc(SV_AUDIT_SEED_BYTES)) == NULL) {
        err = SV_ENOMEM;
        goto close_fd;
    }
    if (!io_exact(fd, seed, SV_AUDIT_SEED_BYTES, false)) {
        snprintf(msg, msglen, "AUDIT_SIGNING_KEY_FILE: cannot read '%s'", path);
        err = SV_EIO;
        goto free_seed;
    }
    crypto_sign_seed_keypair(a->pk, a->sk, seed);
free_seed:
    sodium_free(seed); /* wipes */
close_fd:
    close(fd);
    return err;
}

/* ---- the part ---- */

sv_err_t sv_audit_open(const sv_audit_opts_t *opts, sv_audit_t **out, char *msg, size_t msglen)
{
    sv_audit_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return SV_ENOMEM;
    a->opts = *opts;
    a->opts.key_file = NULL;
    if (a->opts.journal_age_ms <= 0)
        a->opts.journal_age_ms = JOURNAL_DRAIN_AGE_MS;
    sv_err_t err = SV_ENOMEM;
    if ((a->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES + SV_AUDIT_CURSOR_KEY_BYTES)) == NULL)
        goto free_audit;
    if ((err = load_key(a, opts->key_file, msg, msglen)) != SV_OK)
        goto free_sk;
    /* the query cursors' MAC key: the same for every server of this key
     * file, so that a cursor outlives a restart */
    crypto_generichash(a->sk + crypto_sign_SECRETKEYBYTES, SV_AUDIT_CURSOR_KEY_BYTES, a->sk, crypto_sign_SEEDBYTES,
                       (const uint8_t *)"sv-audit-cursor-key", 19);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->prune_unit.apply = prune_apply;
    a->prune_unit.complete = prune_done;
    a->prune_unit.arg = a;
    *out = a;
    return SV_OK;

free_sk:
    sodium_free(a->sk);
free_audit:
    free(a);
    return err;
}

/* ---- the journal's writer hooks (audit_journal.h) ---- */

/* The log behind a hook's argument, when it has a journal. */
static sv_audit_t *journal_log(void *arg)
{
    sv_audit_t *a = *(sv_audit_t **)arg;
    return a != NULL && a->journal != NULL ? a : NULL;
}

sv_err_t sv_audit_store_head(sv_store_t *st, uint64_t *seq, uint8_t hash[SV_AUDIT_HASH_BYTES])
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(sv_store_env(st), NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    sv_txn_t t = {txn, st};
    sv_err_t err = sv_audit_head(&t, seq, hash, NULL);
    mdb_txn_abort(txn);
    return err;
}

static bool journal_take(void *arg, sv_unit_t *batch, sv_err_t *err)
{
    sv_audit_t *a = journal_log(arg);
    if (a == NULL || a->journal_off || sv_audit_journal_pending(a->journal) >= JOURNAL_DRAIN_ENTRIES ||
        sv_audit_journal_recovered(a->journal))
        return false;
    /* decide before any entry is encoded: a batch declined here goes to LMDB
     * whole, and its fault seams must count once */
    size_t n = 0;
    for (sv_unit_t *u = batch; u != NULL; u = u->next_)
        n++;
    if (sv_audit_journal_room(a->journal) < (n + 1) * (SV_AUDIT_JOURNAL_HEADER + SV_AUDIT_RECORD_MAX))
        return false;
    if (!a->head_known) {
        /* the store's head is the chain's only when the journal holds nothing */
        if (sv_audit_journal_pending(a->journal) > 0 ||
            sv_audit_store_head(sv_writer_store(a->writer), &a->head_seq, a->head_hash) != SV_OK)
            return false;
        a->head_known = true;
    }
    if (a->opts.checkpoint_entries > 0 && (a->ckpt_due_seq == 0 || a->head_seq + n >= a->ckpt_due_seq))
        return false;
    uint64_t seq = a->head_seq;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    memcpy(hash, a->head_hash, sizeof(hash));
    int64_t now = sv_now_us();
    for (sv_unit_t *u = batch; u != NULL; u = u->next_) {
        const sv_audit_entry_t *e = u->audit;
        uint8_t rec[SV_AUDIT_RECORD_MAX];
        size_t len = 0;
        if (e->action[0] != 0 && sv_fault_check(SV_FAULT_AUDIT) == 0)
            len = sv_audit_record_encode(rec, sizeof(rec), seq + 1, now, e, hash);
        if (len == 0 || !sv_audit_journal_stage(a->journal, rec, len)) {
            u->result = SV_EAUDIT; /* this unit fails closed alone, as in an LMDB batch */
            atomic_store_explicit(&a->last_append_err, SV_EAUDIT, memory_order_relaxed);
            continue;
        }
        atomic_store_explicit(&a->last_append_err, SV_OK, memory_order_relaxed);
        u->result = SV_OK;
        seq++;
        memcpy(hash, rec, SV_AUDIT_HASH_BYTES);
    }
    *err = sv_audit_journal_flush(a->journal);
    if (*err == SV_OK) {
        a->head_seq = seq;
        memcpy(a->head_hash, hash, sizeof(hash));
        atomic_store(&a->pending, sv_audit_journal_pending(a->journal));
        if (a->drain_due_us == 0 && sv_audit_journal_pending(a->journal) > 0)
            a->drain_due_us = sv_mono_us() + (uint64_t)a->opts.journal_age_ms * 1000;
    }
    return true;
}

/* Moves the journal's entries into the batch's transaction, each one a unit
 * of the change log as if it had been committed alone. */
static sv_err_t journal_drain(void *arg, sv_wtxn_t *tx)
{
    sv_audit_t *a = journal_log(arg);
    if (a == NULL || sv_audit_journal_pending(a->journal) == 0)
        return SV_OK;
    uint64_t head;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    sv_err_t err = sv_audit_head(sv_wtxn_txn(tx), &head, hash, NULL);
    if (err != SV_OK)
        return err;
    size_t off = 0;
    sv_bytes_t rec;
    bool linked = true;
    while (sv_audit_journal_next(a->journal, &off, &rec)) {
        sv_audit_record_t r;
        if (sv_audit_record_decode(rec, &r) != SV_OK)
            return SV_ECORRUPT; /* not one it wrote: nothing is committed, the journal keeps it */
        if (linked && (r.seq != head + 1 || memcmp(r.prev_hash, hash, SV_AUDIT_HASH_BYTES) != 0)) {
            /* the store's chain was changed under the journal: its entries still go in, where
             * verification names the break (refusing every write would hide nothing) */
            sv_log_error("audit: the audit log's last entry in the store (seq %llu) changed while entry %llu "
                         "waited in the journal; run an audit verification",
                         (unsigned long long)head, (unsigned long long)r.seq);
            linked = false;
        }
        uint8_t key[8];
        sv_put_be64(key, r.seq);
        if ((err = sv_wtxn_put(tx, SV_DB_AUDIT, SV_BYTES(key, 8), rec)) != SV_OK ||
            (err = sv_audit_index_entry(tx, &r)) != SV_OK || (err = sv_wtxn_unit_end(tx)) != SV_OK)
            return append_err(err) == SV_EAUDIT ? SV_EIO : err;
        head = r.seq;
        memcpy(hash, r.hash, SV_AUDIT_HASH_BYTES);
    }
    return SV_OK;
}

/* After any durable LMDB commit: the journal's entries are in the store now. */
static void journal_drained(void *arg)
{
    sv_audit_t *a = journal_log(arg);
    if (a == NULL)
        return;
    sv_audit_journal_reset(a->journal);
    atomic_store(&a->pending, 0);
    a->drain_due_us = 0;
    a->head_known = false; /* the batch may have appended more */
    a->ckpt_due_seq = a->ckpt_due_next;
}

static uint64_t journal_due(void *arg)
{
    sv_audit_t *a = journal_log(arg);
    return a != NULL ? a->drain_due_us : 0;
}

size_t sv_audit_pending(const sv_audit_t *a)
{
    return a != NULL ? atomic_load(&a->pending) : 0;
}

/* The seq and hash of the journal's last pending entry. */
static bool last_record(const sv_audit_journal_t *j, uint64_t *seq, uint8_t hash[SV_AUDIT_HASH_BYTES])
{
    size_t off = 0;
    sv_bytes_t rec;
    sv_audit_record_t r;
    bool found = false;
    while (sv_audit_journal_next(j, &off, &rec))
        if (sv_audit_record_decode(rec, &r) == SV_OK) {
            *seq = r.seq;
            memcpy(hash, r.hash, SV_AUDIT_HASH_BYTES);
            found = true;
        }
    return found;
}

/* Opens the journal and takes back what a crash left in it: before any hook
 * is installed, so that no new entry can take a seq that the journal holds. */
static sv_err_t open_journal(sv_audit_t *a, sv_store_t *st, const char *path, char *msg, size_t msglen)
{
    struct stat sb;
    bool existed = lstat(path, &sb) == 0;
    sv_err_t err = sv_audit_journal_open(path, &a->journal, msg, msglen);
    if (err != SV_OK && !existed && (err == SV_ENOSPC || err == SV_EIO)) {
        /* a new journal that cannot be written (a full disk): it holds nothing, so the server runs
         * without it, every batch committed to LMDB */
        sv_log_warn("%s; audit entries are committed to the store directly", msg);
        unlink(path);
        return SV_OK;
    }
    if (err != SV_OK)
        return err;
    uint64_t head;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    if (sv_audit_store_head(st, &head, hash) != SV_OK) {
        /* nothing can chain to the store's log: every audited request fails closed (doc/audit.md),
         * and the journal stays as it is, unread and unwritten */
        sv_log_error("audit: the newest record of the audit log cannot be read; the journal %s is left as it is",
                     path);
        sv_audit_journal_close(a->journal);
        a->journal = NULL;
        return SV_OK;
    }
    if ((err = sv_audit_journal_recover(a->journal, head, hash, msg, msglen)) == SV_OK) {
        size_t n = sv_audit_journal_pending(a->journal);
        atomic_store(&a->pending, n);
        if (n > 0 && last_record(a->journal, &a->head_seq, a->head_hash))
            a->head_known = true; /* the chain goes on after the journal's last entry */
        if (n > 0) {
            a->drain_due_us = sv_mono_us(); /* to the store at once */
            sv_log_warn("audit: %zu entries (seq %llu to %llu) were in the journal %s after an unclean stop; "
                        "they go to the store now",
                        n, (unsigned long long)head + 1, (unsigned long long)head + n, path);
        }
        return SV_OK;
    }
    sv_audit_journal_close(a->journal);
    a->journal = NULL;
    return err;
}

static sv_err_t attach(sv_audit_t *a, sv_writer_t *w, sv_audit_t **slot, const char *journal, char *msg,
                       size_t msglen)
{
    a->writer = w;
    if (journal != NULL) {
        sv_err_t err = open_journal(a, sv_writer_store(w), journal, msg, msglen);
        if (err != SV_OK)
            return err;
    }
    if (a->journal != NULL) {
        sv_writer_set_journal(w, &(sv_writer_journal_t){.take = journal_take,
                                                        .drain = journal_drain,
                                                        .drained = journal_drained,
                                                        .due_us = journal_due,
                                                        .arg = slot});
    }
    sv_writer_set_audit_hook(w, audit_hook, slot);
    sv_writer_add_batch_hook(w, batch_hook, slot);
    return SV_OK;
}

void sv_audit_attach(sv_audit_t *a, sv_writer_t *w)
{
    a->self = a;
    attach(a, w, &a->self, NULL, NULL, 0);
}

sv_err_t sv_audit_attach_journal(sv_audit_t *a, sv_writer_t *w, const char *path, char *msg, size_t msglen)
{
    a->self = a;
    return attach(a, w, &a->self, path, msg, msglen);
}

/* Once the journal holds nothing the store lacks, and no batch uses it: the
 * file is made to read as empty (sv_audit_journal_clear). */
static void clear_journal(sv_audit_t *a)
{
    if (sv_audit_journal_pending(a->journal) > 0)
        return; /* entries queued after the barrier: taken back at the next start */
    sv_err_t err = sv_audit_journal_clear(a->journal);
    if (err != SV_OK)
        sv_log_warn("audit: cannot clear the journal: %s (its entries are all in the store; the next start skips "
                    "them)",
                    sv_strerror(err));
}

/* Detaches the log from a writer that goes on running (the server part's
 * stop): once it returns, no batch uses a. */
static void detach(sv_audit_t *a, sv_audit_t **slot)
{
    sv_unit_t barrier = {0};
    sv_err_t err = sv_writer_run(a->writer, &barrier); /* everything queued so far, and the journal, in the store */
    if (err != SV_OK && sv_audit_pending(a) > 0)
        sv_log_error("audit: the journal's %zu entries could not go to the store at stop: %s (the next start takes "
                     "them back)",
                     sv_audit_pending(a), sv_strerror(err));
    *slot = NULL; /* the hooks now do nothing, or fail closed */
    if (a->journal != NULL) {
        sv_writer_set_journal(a->writer, NULL);
        sv_unit_t again = {0};
        sv_writer_run(a->writer, &again); /* no batch still holds a */
        clear_journal(a);
    }
}

void sv_audit_close(sv_audit_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->closing = true;
    while (a->prune_pending)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    sv_audit_journal_close(a->journal);
    sodium_free(a->sk);
    free(a);
}

const uint8_t *sv_audit_public_key(const sv_audit_t *a)
{
    return a->pk;
}

const uint8_t *sv_audit_cursor_key(const sv_audit_t *a)
{
    return a->sk + crypto_sign_SECRETKEYBYTES;
}

sv_err_t sv_audit_tick(sv_audit_t *a)
{
    sv_unit_t u = {0};
    return sv_writer_run(a->writer, &u);
}

/* The health hook: whether the last entry could be written. */
static bool health_ok(void *ctx, char *why, size_t whylen)
{
    sv_app_t *app = ctx;
    if (app->audit == NULL) {
        snprintf(why, whylen, "the audit log is off (SCAIVAULT_BENCH_UNAUDITED)");
        return false;
    }
    sv_err_t err = atomic_load_explicit(&app->audit->last_append_err, memory_order_relaxed);
    if (err != SV_OK)
        snprintf(why, whylen, "the last audit entry could not be written: %s", sv_strerror(err));
    return err == SV_OK;
}

#define SCHED_KIND "audit_checkpoint"
#define SCHED_MAX_PERIOD_MS 60000 /* with retention: prune at least this often */

/* The scheduler job: an empty batch, so that a due time-based checkpoint and
 * due pruning happen even when nothing else is written. */
static sv_err_t sched_tick(void *arg, sv_sched_job_t *job)
{
    sv_audit_t *a = arg;
    int64_t period = a->opts.checkpoint_interval_ms > 0 ? a->opts.checkpoint_interval_ms : SCHED_MAX_PERIOD_MS;
    if (a->opts.retention_ms > 0 && period > SCHED_MAX_PERIOD_MS)
        period = SCHED_MAX_PERIOD_MS;
    job->next_due_ms = job->now_ms + period;
    return sv_audit_tick(a);
}

sv_err_t sv_audit_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    const sv_config_t *cfg = app->cfg;
    if (app->health != NULL)
        sv_health_set_audit(app->health, &(sv_health_audit_t){.ok = health_ok, .ctx = app});
    if (cfg->bench_unaudited) {
        sv_log_warn("SCAIVAULT_BENCH_UNAUDITED is on: NOTHING IS AUDITED (benchmarks only, never in production)");
        return SV_OK;
    }
    char path[1024];
    if (cfg->audit_signing_key_file != NULL)
        snprintf(path, sizeof(path), "%s", cfg->audit_signing_key_file);
    else
        snprintf(path, sizeof(path), "%s/audit-signing.key", cfg->data_dir);
    sv_audit_opts_t o = {.key_file = path,
                         .checkpoint_entries = cfg->audit_checkpoint_entries,
                         .checkpoint_interval_ms = cfg->audit_checkpoint_interval_ms,
                         .retention_ms = cfg->audit_retention_ms};
    sv_audit_t *a;
    sv_err_t err = sv_audit_open(&o, &a, msg, msglen);
    if (err != SV_OK)
        return err;
    app->audit = a;
    char journal[1024];
    snprintf(journal, sizeof(journal), "%s/%s", cfg->data_dir, SV_AUDIT_JOURNAL_FILE);
    /* with AUDIT_JOURNAL=false, a journal a crash left behind is still taken back first */
    struct stat jsb;
    bool use_journal = cfg->audit_journal || (lstat(journal, &jsb) == 0 && S_ISREG(jsb.st_mode));
    if ((err = attach(a, app->writer, &app->audit, use_journal ? journal : NULL, msg, msglen)) != SV_OK) {
        app->audit = NULL;
        sv_audit_close(a);
        return err;
    }
    if (sv_audit_pending(a) > 0) {
        sv_unit_t u = {0};
        if ((err = sv_writer_run(app->writer, &u)) != SV_OK)
            sv_log_error("audit: the journal's entries could not go to the store yet: %s (they stay in the "
                         "journal)",
                         sv_strerror(err));
    }
    a->journal_off = !cfg->audit_journal;
    if (use_journal && !cfg->audit_journal && a->journal != NULL && sv_audit_pending(a) == 0) {
        /* nothing is held: every batch commits to LMDB from now on */
        sv_writer_set_journal(app->writer, NULL);
        sv_unit_t u = {0};
        sv_writer_run(app->writer, &u); /* no batch still uses the journal */
        clear_journal(a);
        sv_audit_journal_close(a->journal);
        a->journal = NULL;
    }
    if (app->scheduler != NULL) {
        /* a failure here only delays time-based checkpoints until the next write */
        if ((err = sv_scheduler_register(app->scheduler, SCHED_KIND, sched_tick, a)) == SV_OK)
            err = sv_scheduler_ensure(app->scheduler, SCHED_KIND, "", sv_scheduler_now_ms());
        if (err != SV_OK)
            sv_log_warn("audit: cannot schedule the periodic checkpoint job: %s", sv_strerror(err));
    }
    return SV_OK;
}

void sv_audit_part_stop(sv_app_t *app)
{
    sv_audit_t *a = app->audit;
    if (a == NULL)
        return;
    if (app->scheduler != NULL)
        sv_scheduler_unregister(app->scheduler, SCHED_KIND); /* waits for a running tick */
    pthread_mutex_lock(&a->lock);
    a->closing = true; /* no new retention step */
    pthread_mutex_unlock(&a->lock);
    /* a barrier: every unit queued before it (async audit entries too) is
     * committed, with its entry, and the journal is in the store, once it
     * returns; then the hooks stay installed and do nothing (or fail closed) */
    detach(a, &app->audit);
    sv_audit_close(a);
}

/* ---- walking the log in slices ---- */

void sv_audit_walk_init(sv_audit_walk_t *w, uint64_t from_seq)
{
    memset(w, 0, sizeof(*w));
    w->from_seq = from_seq;
}

sv_err_t sv_audit_walk_open(sv_audit_walk_t *w, sv_txn_t *tx, sv_iter_t *it)
{
    w->seek_len = 0;
    if (w->started) {
        memcpy(w->seek, w->pos, w->pos_len);
        w->seek_len = w->pos_len;
    } else if (w->from_seq > 1) {
        sv_put_be64(w->seek, w->from_seq);
        w->seek_len = 8;
    }
    return sv_iter_open(tx, SV_DB_AUDIT, (sv_bytes_t){0}, SV_BYTES(w->seek, w->seek_len), false, it);
}

sv_err_t sv_audit_walk_next(sv_audit_walk_t *w, sv_iter_t *it, sv_bytes_t *key, sv_bytes_t *val)
{
    for (;;) {
        sv_err_t err = sv_iter_next(it, key, val);
        if (err != SV_OK)
            return err;
        if (w->started && key->len == w->pos_len && memcmp(key->base, w->pos, key->len) == 0)
            continue; /* where the last slice stopped */
        if (key->len <= sizeof(w->pos)) {
            memcpy(w->pos, key->base, key->len);
            w->pos_len = key->len;
            w->started = true;
        }
        return SV_OK;
    }
}

/* ---- JSON ---- */

void sv_audit_time_format(char out[32], int64_t time_us)
{
    int64_t s = time_us >= 0 ? time_us / 1000000 : (time_us - 999999) / 1000000;
    int64_t frac = time_us - s * 1000000;
    char base[21];
    size_t n = sv_time_format(base, s);
    /* base ends with 'Z': put the fraction before it */
    snprintf(out, 32, "%.*s.%06lldZ", (int)(n - 1), base, (long long)frac);
}

static void jw_opt_str(sv_jw_t *jw, const char *key, sv_bytes_t v)
{
    sv_jw_key(jw, key);
    if (v.len == 0)
        sv_jw_null(jw);
    else
        sv_jw_str(jw, (const char *)v.base, v.len);
}

static void jw_hex(sv_jw_t *jw, const char *key, const uint8_t *p, size_t n)
{
    char hex[2 * SV_AUDIT_SIG_BYTES + 1];
    sodium_bin2hex(hex, sizeof(hex), p, n);
    sv_jw_key(jw, key);
    sv_jw_str(jw, hex, 2 * n);
}

void sv_audit_record_json(sv_jw_t *jw, const sv_audit_record_t *r, bool export)
{
    char ts[32];
    sv_audit_time_format(ts, r->time_us);
    sv_jw_obj_begin(jw);
    if (export) {
        sv_jw_key(jw, "type");
        sv_jw_cstr(jw, "entry");
    }
    sv_jw_key(jw, "seq");
    sv_jw_uint(jw, r->seq);
    sv_jw_key(jw, "time");
    sv_jw_cstr(jw, ts);
    if (export) {
        sv_jw_key(jw, "time_us");
        sv_jw_int(jw, r->time_us);
    }
    jw_opt_str(jw, "request_id", r->request_id);
    jw_opt_str(jw, "tenant_id", r->tenant_id);
    jw_opt_str(jw, "identity_id", r->identity_id);
    jw_opt_str(jw, "action", r->action);
    jw_opt_str(jw, "path", r->path);
    sv_jw_key(jw, "success");
    sv_jw_bool(jw, r->success);
    jw_opt_str(jw, "error_code", r->error_code);
    sv_jw_key(jw, "status");
    sv_jw_uint(jw, r->status);
    jw_opt_str(jw, "ip", r->ip);
    jw_opt_str(jw, "user_agent", r->user_agent);
    jw_hex(jw, "prev_hash", r->prev_hash, SV_AUDIT_HASH_BYTES);
    jw_hex(jw, "hash", r->hash, SV_AUDIT_HASH_BYTES);
    sv_jw_obj_end(jw);
}

void sv_audit_checkpoint_json(sv_jw_t *jw, const sv_audit_checkpoint_t *c)
{
    char ts[32];
    sv_audit_time_format(ts, c->time_us);
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "type");
    sv_jw_cstr(jw, c->anchor ? "anchor" : "checkpoint");
    sv_jw_key(jw, "seq");
    sv_jw_uint(jw, c->seq);
    jw_hex(jw, "hash", c->hash, SV_AUDIT_HASH_BYTES);
    sv_jw_key(jw, "time");
    sv_jw_cstr(jw, ts);
    sv_jw_key(jw, "time_us");
    sv_jw_int(jw, c->time_us);
    jw_hex(jw, "signature", c->sig, SV_AUDIT_SIG_BYTES);
    sv_jw_obj_end(jw);
}

/* ---- public keys ---- */

/* DER SubjectPublicKeyInfo of an Ed25519 key, before the 32 key bytes (RFC 8410). */
static const uint8_t spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

void sv_audit_public_key_pem(const uint8_t pk[SV_AUDIT_PK_BYTES], char out[128])
{
    uint8_t der[sizeof(spki_prefix) + SV_AUDIT_PK_BYTES];
    memcpy(der, spki_prefix, sizeof(spki_prefix));
    memcpy(der + sizeof(spki_prefix), pk, SV_AUDIT_PK_BYTES);
    char b64[64];
    sodium_bin2base64(b64, sizeof(b64), der, sizeof(der), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, 128, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64);
}

sv_err_t sv_audit_public_key_parse(const char *text, size_t len, uint8_t pk[SV_AUDIT_PK_BYTES])
{
    static const char begin[] = "-----BEGIN PUBLIC KEY-----", end[] = "-----END PUBLIC KEY-----";
    static const char ws[] = " \t\r\n";
    while (len > 0 && strchr(ws, text[0]) != NULL) {
        text++;
        len--;
    }
    while (len > 0 && strchr(ws, text[len - 1]) != NULL)
        len--;
    size_t bl = sizeof(begin) - 1, el = sizeof(end) - 1;
    uint8_t buf[64];
    size_t n = 0;
    if (len > bl + el && memcmp(text, begin, bl) == 0 && memcmp(text + len - el, end, el) == 0) {
        if (sodium_base642bin(buf, sizeof(buf), text + bl, len - bl - el, ws, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            n != sizeof(spki_prefix) + SV_AUDIT_PK_BYTES || memcmp(buf, spki_prefix, sizeof(spki_prefix)) != 0)
            return SV_EINVAL;
        memcpy(pk, buf + sizeof(spki_prefix), SV_AUDIT_PK_BYTES);
        return SV_OK;
    }
    if (len == 2 * SV_AUDIT_PK_BYTES && sodium_hex2bin(pk, SV_AUDIT_PK_BYTES, text, len, NULL, &n, NULL) == 0 &&
        n == SV_AUDIT_PK_BYTES)
        return SV_OK;
    if (sodium_base642bin(buf, sizeof(buf), text, len, ws, &n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
        n == SV_AUDIT_PK_BYTES) {
        memcpy(pk, buf, SV_AUDIT_PK_BYTES);
        return SV_OK;
    }
    return SV_EINVAL;
}

bool sv_audit_tenant_filter(const sv_principal_t *p, const char *request_tenant, const char **tenant)
{
    if (sv_principal_is_super_admin(p)) {
        *tenant = request_tenant != NULL && request_tenant[0] != 0 ? request_tenant : NULL;
        return true;
    }
    if (request_tenant == NULL || request_tenant[0] == 0)
        return false;
    *tenant = request_tenant;
    return true;
}
