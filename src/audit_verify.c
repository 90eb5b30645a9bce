/*
 * audit_verify.c - the chain verifier of audit_verify.h.
 *
 * The design choice: one walk in key order does everything. Keys put each
 * checkpoint (seq + 'C') right after the entry it covers and the retention
 * anchor (seq + 'A') before the first kept entry, so the verifier never seeks
 * and never holds more than the previous hash; resuming after a step is one
 * seek to the last key seen. That keeps it at the speed of BLAKE2b plus a
 * cursor step per entry.
 *
 * Any thread; a verifier belongs to one caller at a time.
 */
#include "sv_autoconf.h"

#include "src/audit_verify.h"

#include <stdio.h>
#include <string.h>

#define SLICE_RECORDS 65536

void sv_audit_verify_init(sv_audit_verifier_t *v, uint64_t from_seq, uint64_t to_seq, const uint8_t *pk)
{
    memset(v, 0, sizeof(*v));
    v->from_seq = from_seq;
    v->to_seq = to_seq;
    sv_audit_walk_init(&v->walk, from_seq);
    if (pk != NULL) {
        v->check_signatures = true;
        memcpy(v->pk, pk, SV_AUDIT_PK_BYTES);
    }
}

static void fail(sv_audit_verifier_t *v, uint64_t seq, const char *reason)
{
    v->done = true;
    v->ok = false;
    v->first_bad_seq = seq;
    snprintf(v->reason, sizeof(v->reason), "%s", reason);
}

static void finish(sv_audit_verifier_t *v)
{
    v->done = true;
    v->ok = true;
}

static void check_entry(sv_audit_verifier_t *v, sv_bytes_t key, sv_bytes_t val)
{
    uint64_t s = sv_get_be64(key.base);
    if (v->to_seq != 0 && s > v->to_seq) {
        finish(v);
        return;
    }
    if (s != v->expected) {
        if (s > v->expected)
            fail(v, v->expected, "entry missing (a gap in the sequence numbers)");
        else
            fail(v, s, "entry out of place");
        return;
    }
    sv_audit_record_t r;
    if (sv_audit_record_decode(val, &r) != SV_OK) {
        fail(v, s, "malformed entry record");
        return;
    }
    if (r.seq != s) {
        fail(v, s, "the entry's own sequence number differs from its position");
        return;
    }
    if (v->have_prev && memcmp(r.prev_hash, v->prev, SV_AUDIT_HASH_BYTES) != 0) {
        fail(v, s, "prev_hash does not match the hash of the entry before");
        return;
    }
    if (!sv_audit_record_hash_ok(&r)) {
        fail(v, s, "hash does not match the entry's contents");
        return;
    }
    memcpy(v->prev, r.hash, SV_AUDIT_HASH_BYTES);
    v->have_prev = true;
    v->expected = s + 1;
    v->last_seq = s;
    v->checked++;
}

static void check_checkpoint(sv_audit_verifier_t *v, const sv_audit_checkpoint_t *c)
{
    if (v->to_seq != 0 && c->seq > v->to_seq) {
        finish(v);
        return;
    }
    if (c->seq >= v->expected) {
        fail(v, v->expected, "entry missing (a checkpoint names a later entry)");
        return;
    }
    if (!v->have_prev || c->seq + 1 != v->expected || memcmp(c->hash, v->prev, SV_AUDIT_HASH_BYTES) != 0) {
        fail(v, c->seq, "the checkpoint's hash differs from the entry's");
        return;
    }
    if (v->check_signatures && !sv_audit_checkpoint_verify(c, v->pk)) {
        fail(v, c->seq, "the checkpoint's signature does not verify");
        return;
    }
    v->checkpoints++;
}

static void check_anchor(sv_audit_verifier_t *v, const sv_audit_checkpoint_t *c, bool first)
{
    if (v->check_signatures && !sv_audit_checkpoint_verify(c, v->pk)) {
        fail(v, first ? c->seq : v->expected, "the retention anchor's signature does not verify");
        return;
    }
    bool consistent = v->have_prev && c->seq + 1 == v->expected && memcmp(c->hash, v->prev, SV_AUDIT_HASH_BYTES) == 0;
    /* an anchor later in the walk is either consistent with the chain, or a
     * signed one written by a retention step while we walked */
    if (!first && !consistent && !(v->check_signatures && c->seq + 1 >= v->expected)) {
        fail(v, v->expected, "an unexpected retention anchor");
        return;
    }
    v->has_anchor = true;
    v->anchor_seq = c->seq;
    memcpy(v->prev, c->hash, SV_AUDIT_HASH_BYTES);
    v->have_prev = true;
    v->expected = c->seq + 1;
}

static void check_record(sv_audit_verifier_t *v, sv_bytes_t key, sv_bytes_t val)
{
    bool first = !v->started;
    if (first) {
        v->started = true;
        v->expected = v->from_seq > 1 ? v->from_seq : 1;
        v->have_prev = v->from_seq <= 1; /* seq 1 links to 32 zero bytes */
        memset(v->prev, 0, sizeof(v->prev));
    }
    if (key.len == 8) {
        check_entry(v, key, val);
        return;
    }
    sv_audit_checkpoint_t c;
    if (sv_audit_checkpoint_decode(key, val, &c) != SV_OK) {
        fail(v, key.len >= 8 ? sv_get_be64(key.base) : v->expected, "malformed or unknown record");
        return;
    }
    if (c.anchor)
        check_anchor(v, &c, first);
    else
        check_checkpoint(v, &c);
}

sv_err_t sv_audit_verify_step(sv_audit_verifier_t *v, sv_txn_t *tx, unsigned max_records)
{
    if (v->done)
        return SV_OK;
    sv_iter_t it;
    sv_err_t err = sv_audit_walk_open(&v->walk, tx, &it);
    if (err == SV_ENOTFOUND) { /* no audit database at all */
        finish(v);
        return SV_OK;
    }
    if (err != SV_OK)
        return err;
    sv_bytes_t k, val;
    unsigned n = 0;
    while (!v->done && n < max_records) {
        err = sv_audit_walk_next(&v->walk, &it, &k, &val);
        if (err == SV_ENOTFOUND) {
            err = SV_OK;
            finish(v);
            break;
        }
        if (err != SV_OK)
            break;
        n++;
        check_record(v, k, val);
    }
    sv_iter_close(&it);
    return err;
}

sv_err_t sv_audit_verify_store(sv_store_t *st, sv_audit_verifier_t *v)
{
    sv_store_reader_t *r;
    sv_err_t err = sv_store_reader_new(st, &r);
    if (err != SV_OK)
        return err;
    while (!v->done && err == SV_OK) {
        sv_txn_t *tx;
        if ((err = sv_store_read_begin(r, &tx)) != SV_OK)
            break;
        err = sv_audit_verify_step(v, tx, SLICE_RECORDS);
        sv_store_read_end(r);
    }
    sv_store_reader_free(r);
    return err;
}

void sv_audit_verify_json(sv_jw_t *jw, const sv_audit_verifier_t *v)
{
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "ok");
    sv_jw_bool(jw, v->ok);
    sv_jw_key(jw, "checked");
    sv_jw_uint(jw, v->checked);
    sv_jw_key(jw, "first_bad_seq");
    if (v->ok)
        sv_jw_null(jw);
    else
        sv_jw_uint(jw, v->first_bad_seq);
    sv_jw_key(jw, "reason");
    sv_jw_cstr(jw, v->ok ? NULL : v->reason);
    sv_jw_key(jw, "checkpoints");
    sv_jw_uint(jw, v->checkpoints);
    sv_jw_key(jw, "signatures_checked");
    sv_jw_bool(jw, v->check_signatures);
    sv_jw_key(jw, "last_seq");
    if (v->checked > 0)
        sv_jw_uint(jw, v->last_seq);
    else
        sv_jw_null(jw);
    sv_jw_key(jw, "anchor_seq");
    if (v->has_anchor)
        sv_jw_uint(jw, v->anchor_seq);
    else
        sv_jw_null(jw);
    sv_jw_obj_end(jw);
}
