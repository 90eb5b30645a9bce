/*
 * audit_tamper.c - direct edits of the `audit` database for the tests
 * (audit_tamper.h). Everything here bypasses the writer on purpose: these are
 * the attacker's edits, made with plain LMDB calls.
 */
#include "sv_autoconf.h"

#include "tests/audit_tamper.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_OFF (2 * SV_AUDIT_HASH_BYTES + 1 + 8 + 8 + 1 + 1) /* low byte of status */

typedef struct {
    MDB_txn *txn;
    MDB_dbi dbi;
} raw_t;

static bool raw_begin(sv_store_t *st, raw_t *r)
{
    r->dbi = sv_store_dbi(st, SV_DB_AUDIT);
    return mdb_txn_begin(sv_store_env(st), NULL, 0, &r->txn) == MDB_SUCCESS;
}

static bool raw_end(raw_t *r, bool ok)
{
    if (!ok) {
        mdb_txn_abort(r->txn);
        return false;
    }
    return mdb_txn_commit(r->txn) == MDB_SUCCESS;
}

/* A heap copy of the entry at seq (freed by the caller), or NULL. */
static uint8_t *get_entry(raw_t *r, uint64_t seq, size_t *len)
{
    uint8_t k[8];
    sv_put_be64(k, seq);
    MDB_val key = {8, k}, val;
    if (mdb_get(r->txn, r->dbi, &key, &val) != MDB_SUCCESS)
        return NULL;
    uint8_t *copy = malloc(val.mv_size);
    memcpy(copy, val.mv_data, val.mv_size);
    *len = val.mv_size;
    return copy;
}

static bool put_entry(raw_t *r, uint64_t seq, const uint8_t *v, size_t len)
{
    uint8_t k[8];
    sv_put_be64(k, seq);
    MDB_val key = {8, k}, val = {len, (void *)v};
    return mdb_put(r->txn, r->dbi, &key, &val, 0) == MDB_SUCCESS;
}

static void rehash(uint8_t *v, size_t len)
{
    crypto_generichash(v, SV_AUDIT_HASH_BYTES, v + SV_AUDIT_HASH_BYTES, len - SV_AUDIT_HASH_BYTES, NULL, 0);
}

/* The largest entry sequence number. */
static uint64_t last_entry(raw_t *r)
{
    MDB_cursor *c;
    mdb_cursor_open(r->txn, r->dbi, &c);
    MDB_val k, v;
    uint64_t last = 0;
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    while (rc == MDB_SUCCESS && k.mv_size != 8)
        rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    if (rc == MDB_SUCCESS)
        last = sv_get_be64(k.mv_data);
    mdb_cursor_close(c);
    return last;
}

/* Moves entries seq..last to seq+1..last+1 (highest first). */
static bool shift_up(raw_t *r, uint64_t seq)
{
    for (uint64_t s = last_entry(r); s >= seq && s > 0; s--) {
        size_t len;
        uint8_t *v = get_entry(r, s, &len);
        if (v == NULL)
            return false;
        bool ok = put_entry(r, s + 1, v, len);
        free(v);
        if (!ok)
            return false;
    }
    return true;
}

static void copy_view(char *dst, size_t cap, sv_bytes_t v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.base, n);
    dst[n] = 0;
}

bool sv_tamper(sv_store_t *st, sv_tamper_t kind, uint64_t seq)
{
    raw_t r;
    if (!raw_begin(st, &r))
        return false;
    bool ok = false;
    size_t len, len2;
    uint8_t *v = NULL, *w = NULL;
    switch (kind) {
    case SV_TAMPER_MODIFY:
        if ((v = get_entry(&r, seq, &len)) != NULL) {
            v[STATUS_OFF] ^= 0x01;
            ok = put_entry(&r, seq, v, len);
        }
        break;
    case SV_TAMPER_DELETE: {
        uint8_t k[8];
        sv_put_be64(k, seq);
        MDB_val key = {8, k};
        ok = mdb_del(r.txn, r.dbi, &key, NULL) == MDB_SUCCESS;
        break;
    }
    case SV_TAMPER_SWAP:
        if ((v = get_entry(&r, seq, &len)) != NULL && (w = get_entry(&r, seq + 1, &len2)) != NULL)
            ok = put_entry(&r, seq, w, len2) && put_entry(&r, seq + 1, v, len);
        break;
    case SV_TAMPER_INSERT_COPY:
        if (seq > 1 && (v = get_entry(&r, seq - 1, &len)) != NULL)
            ok = shift_up(&r, seq) && put_entry(&r, seq, v, len);
        break;
    case SV_TAMPER_INSERT_FORGED: {
        sv_audit_record_t prev;
        if (seq < 2 || (v = get_entry(&r, seq - 1, &len)) == NULL ||
            sv_audit_record_decode(SV_BYTES(v, len), &prev) != SV_OK)
            break;
        sv_audit_entry_t e;
        memset(&e, 0, sizeof(e));
        copy_view(e.request_id, sizeof(e.request_id), prev.request_id);
        copy_view(e.tenant_id, sizeof(e.tenant_id), prev.tenant_id);
        copy_view(e.identity_id, sizeof(e.identity_id), prev.identity_id);
        copy_view(e.action, sizeof(e.action), prev.action);
        snprintf(e.path, sizeof(e.path), "forged/by/attacker");
        e.success = true;
        e.status = 200;
        uint8_t rec[SV_AUDIT_RECORD_MAX];
        size_t n = sv_audit_record_encode(rec, sizeof(rec), seq, prev.time_us, &e, prev.hash);
        ok = n > 0 && shift_up(&r, seq) && put_entry(&r, seq, rec, n);
        break;
    }
    case SV_TAMPER_REWRITE_TAIL: {
        /* change entry seq, then make every later link and checkpoint hash
         * consistent again: only the signatures can tell */
        uint8_t prev_hash[SV_AUDIT_HASH_BYTES];
        if ((v = get_entry(&r, seq, &len)) == NULL)
            break;
        v[STATUS_OFF] ^= 0x01;
        rehash(v, len);
        memcpy(prev_hash, v, SV_AUDIT_HASH_BYTES);
        ok = put_entry(&r, seq, v, len);
        MDB_cursor *c;
        mdb_cursor_open(r.txn, r.dbi, &c);
        uint8_t start[8];
        sv_put_be64(start, seq);
        MDB_val k = {8, start}, val;
        int rc = mdb_cursor_get(c, &k, &val, MDB_SET_RANGE);
        while (ok && rc == MDB_SUCCESS) {
            uint64_t s = sv_get_be64(k.mv_data);
            uint8_t *copy = malloc(val.mv_size);
            memcpy(copy, val.mv_data, val.mv_size);
            if (k.mv_size == 8 && s > seq) {
                memcpy(copy + SV_AUDIT_HASH_BYTES, prev_hash, SV_AUDIT_HASH_BYTES);
                rehash(copy, val.mv_size);
                memcpy(prev_hash, copy, SV_AUDIT_HASH_BYTES);
            } else if (k.mv_size == 9) {
                memcpy(copy, prev_hash, SV_AUDIT_HASH_BYTES); /* the checkpoint's hash, not its signature */
            }
            MDB_val nv = {val.mv_size, copy};
            ok = mdb_cursor_put(c, &k, &nv, MDB_CURRENT) == MDB_SUCCESS;
            free(copy);
            rc = mdb_cursor_get(c, &k, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
        break;
    }
    case SV_TAMPER_CHECKPOINT_SIG:
        for (int tag = 0; tag < 2 && !ok; tag++) {
            uint8_t k[9];
            sv_put_be64(k, seq);
            k[8] = tag == 0 ? SV_AUDIT_TAG_CHECKPOINT : SV_AUDIT_TAG_ANCHOR;
            MDB_val key = {9, k}, val;
            if (mdb_get(r.txn, r.dbi, &key, &val) != MDB_SUCCESS)
                continue;
            uint8_t *copy = malloc(val.mv_size);
            memcpy(copy, val.mv_data, val.mv_size);
            copy[val.mv_size - 1] ^= 0x01;
            MDB_val nv = {val.mv_size, copy};
            ok = mdb_put(r.txn, r.dbi, &key, &nv, 0) == MDB_SUCCESS;
            free(copy);
        }
        break;
    }
    free(v);
    free(w);
    return raw_end(&r, ok);
}

bool sv_tamper_save(sv_store_t *st, sv_tamper_snapshot_t *snap)
{
    memset(snap, 0, sizeof(*snap));
    raw_t r;
    if (!raw_begin(st, &r))
        return false;
    MDB_cursor *c;
    mdb_cursor_open(r.txn, r.dbi, &c);
    MDB_val k, v;
    size_t cap = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (snap->n == cap) {
            cap = cap ? cap * 2 : 64;
            snap->recs = realloc(snap->recs, cap * sizeof(*snap->recs));
        }
        memcpy(snap->recs[snap->n].key, k.mv_data, k.mv_size);
        snap->recs[snap->n].key_len = k.mv_size;
        snap->recs[snap->n].val = malloc(v.mv_size);
        memcpy(snap->recs[snap->n].val, v.mv_data, v.mv_size);
        snap->recs[snap->n].val_len = v.mv_size;
        snap->n++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(r.txn);
    return true;
}

bool sv_tamper_restore(sv_store_t *st, sv_tamper_snapshot_t *snap)
{
    raw_t r;
    bool ok = raw_begin(st, &r);
    if (ok) {
        ok = mdb_drop(r.txn, r.dbi, 0) == MDB_SUCCESS;
        for (size_t i = 0; ok && i < snap->n; i++) {
            MDB_val k = {snap->recs[i].key_len, snap->recs[i].key}, v = {snap->recs[i].val_len, snap->recs[i].val};
            ok = mdb_put(r.txn, r.dbi, &k, &v, 0) == MDB_SUCCESS;
        }
        ok = raw_end(&r, ok);
    }
    for (size_t i = 0; i < snap->n; i++)
        free(snap->recs[i].val);
    free(snap->recs);
    memset(snap, 0, sizeof(*snap));
    return ok;
}

sv_store_t *sv_tamper_open(const char *data_dir)
{
    sv_store_t *st = NULL;
    sv_store_opts_t o = {.dir = data_dir, .max_readers = 126};
    return sv_store_open(&st, &o) == SV_OK ? st : NULL;
}
