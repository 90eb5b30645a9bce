/*
 * audit_query.c - queries and export of the audit log (audit_query.h).
 *
 * The design choice: every walk is an index walk with an explicit position
 * (time and sequence number of the last row examined), and that position is
 * the cursor. So a page costs a bounded number of index rows whatever the
 * filters, a cursor resumes with one seek, and nothing depends on a read
 * snapshot surviving between calls. The export works the same way on the
 * `audit` database itself, whose key order already interleaves entries,
 * checkpoints and the retention anchor.
 *
 * Runs on HTTP workers inside a read snapshot the caller begins and ends.
 */
#include "sv_autoconf.h"

#include "src/audit_query.h"

#include <sodium.h>
#include <string.h>

#include "store/key.h"

#define CURSOR_VERSION 3 /* 3: the tag covers the position */
#define CURSOR_BYTES (19 + SV_AUDIT_CURSOR_TAG_BYTES)
#define EXPORT_CHUNK_BYTES (64 * 1024)

sv_audit_query_mode_t sv_audit_query_mode(const sv_audit_query_t *q)
{
    if (q->request_id != NULL)
        return SV_AUDIT_BY_REQUEST;
    return q->tenant != NULL ? SV_AUDIT_BY_TENANT_TIME : SV_AUDIT_BY_TIME;
}

#define CURSOR_TEXT sodium_base64_ENCODED_LEN(CURSOR_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)

/* A cursor's tag: a MAC (keyed BLAKE2b) of its position, kind and order and
 * of the tenant and every filter of its query, so that a cursor fits only the
 * query it came from and an altered one is refused. */
static void cursor_tag(const sv_audit_query_t *q, const sv_audit_cursor_t *c, uint8_t tag[SV_AUDIT_CURSOR_TAG_BYTES])
{
    crypto_generichash_state h;
    if (q->cursor_key != NULL)
        crypto_generichash_init(&h, q->cursor_key, SV_AUDIT_CURSOR_KEY_BYTES, SV_AUDIT_CURSOR_TAG_BYTES);
    else
        crypto_generichash_init(&h, NULL, 0, SV_AUDIT_CURSOR_TAG_BYTES);
    uint8_t pos[19] = {CURSOR_VERSION, c->mode, c->ascending ? 1 : 0};
    sv_put_be64(pos + 3, (uint64_t)c->time_us);
    sv_put_be64(pos + 11, c->seq);
    crypto_generichash_update(&h, pos, sizeof(pos));
    const char *strs[] = {q->tenant, q->request_id, q->action, q->identity_id, q->path_prefix};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        uint8_t len[9] = {strs[i] != NULL};
        sv_put_be64(len + 1, strs[i] != NULL ? strlen(strs[i]) : 0);
        crypto_generichash_update(&h, len, sizeof(len));
        if (strs[i] != NULL)
            crypto_generichash_update(&h, (const uint8_t *)strs[i], strlen(strs[i]));
    }
    uint8_t rest[17] = {(uint8_t)(q->success + 1)};
    sv_put_be64(rest + 1, (uint64_t)q->from_us);
    sv_put_be64(rest + 9, (uint64_t)q->to_us);
    crypto_generichash_update(&h, rest, sizeof(rest));
    crypto_generichash_final(&h, tag, SV_AUDIT_CURSOR_TAG_BYTES);
}

static void cursor_format(const sv_audit_cursor_t *c, char text[CURSOR_TEXT])
{
    uint8_t raw[CURSOR_BYTES] = {CURSOR_VERSION, c->mode, c->ascending ? 1 : 0};
    sv_put_be64(raw + 3, (uint64_t)c->time_us);
    sv_put_be64(raw + 11, c->seq);
    memcpy(raw + 19, c->tag, SV_AUDIT_CURSOR_TAG_BYTES);
    sodium_bin2base64(text, CURSOR_TEXT, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

sv_err_t sv_audit_cursor_parse(const char *text, size_t len, sv_audit_cursor_t *c)
{
    uint8_t raw[CURSOR_BYTES + 4];
    size_t n;
    if (sodium_base642bin(raw, sizeof(raw), text, len, NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != CURSOR_BYTES || raw[0] != CURSOR_VERSION || raw[1] < SV_AUDIT_BY_REQUEST ||
        raw[1] > SV_AUDIT_BY_TENANT_TIME || raw[2] > 1)
        return SV_EINVAL;
    c->mode = raw[1];
    c->ascending = raw[2] == 1;
    c->time_us = (int64_t)sv_get_be64(raw + 3);
    c->seq = sv_get_be64(raw + 11);
    memcpy(c->tag, raw + 19, SV_AUDIT_CURSOR_TAG_BYTES);
    return SV_OK;
}

static bool bytes_eq(sv_bytes_t b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && memcmp(b.base, s, n) == 0;
}

/* Whether the entry passes the filters that the index walk did not apply. */
static bool matches(const sv_audit_query_t *q, sv_audit_query_mode_t mode, const sv_audit_record_t *r)
{
    if (q->tenant != NULL && !bytes_eq(r->tenant_id, q->tenant))
        return false;
    if (mode == SV_AUDIT_BY_REQUEST && (r->time_us < q->from_us || r->time_us > q->to_us))
        return false;
    if (q->action != NULL && !bytes_eq(r->action, q->action))
        return false;
    if (q->identity_id != NULL && !bytes_eq(r->identity_id, q->identity_id))
        return false;
    if (q->success >= 0 && r->success != (q->success == 1))
        return false;
    if (q->path_prefix != NULL) {
        size_t n = strlen(q->path_prefix);
        if (r->path.len < n || memcmp(r->path.base, q->path_prefix, n) != 0)
            return false;
    }
    return true;
}

/* ---- the walk shared by every mode ---- */

typedef struct {
    const sv_audit_query_t *q;
    sv_audit_query_mode_t mode;
    sv_jw_t *jw;
    unsigned items, examined, scan_max;
    bool more;              /* a cursor is needed */
    sv_audit_cursor_t next; /* the last row examined */
} walk_t;

/* Examines the entry at (time, seq); false stops the whole query. */
static bool visit(walk_t *w, sv_txn_t *tx, int64_t t, uint64_t seq)
{
    if (w->items == w->q->limit) {
        w->more = true; /* a row beyond the page exists */
        return false;
    }
    w->examined++;
    w->next.time_us = t;
    w->next.seq = seq;
    uint8_t key[8];
    sv_put_be64(key, seq);
    sv_bytes_t val;
    sv_audit_record_t r;
    if (sv_txn_get(tx, SV_DB_AUDIT, SV_BYTES(key, 8), &val) == SV_OK && sv_audit_record_decode(val, &r) == SV_OK &&
        matches(w->q, w->mode, &r)) {
        sv_audit_record_json(w->jw, &r, false);
        w->items++;
    }
    if (w->examined >= w->scan_max && w->items < w->q->limit) {
        w->more = true; /* out of budget: the cursor resumes after this row */
        return false;
    }
    return true;
}

/* The sequence number an index walk resumes at: just past the cursor's row
 * when walking up, the row itself as the reverse walk's (exclusive) seek
 * key. q->cursor must be set. */
static uint64_t resume_seq(const sv_audit_query_t *q)
{
    uint64_t seq = q->cursor->seq;
    return q->ascending && seq != UINT64_MAX ? seq + 1 : seq;
}

/* The next index row of it whose key is the prefix (prefix_len bytes) and
 * row_len more; *row points at those row_len bytes. Keys of any other length
 * are skipped. SV_ENOTFOUND at the end, as sv_iter_next. */
static sv_err_t next_row(sv_iter_t *it, size_t prefix_len, size_t row_len, const uint8_t **row)
{
    sv_bytes_t k;
    sv_err_t err;
    while ((err = sv_iter_next(it, &k, NULL)) == SV_OK) {
        if (k.len == prefix_len + row_len) {
            *row = k.base + prefix_len;
            break;
        }
    }
    return err;
}

/* Walks the request-id index of q->request_id (entries of one request). */
static sv_err_t walk_request(walk_t *w, sv_txn_t *tx)
{
    const sv_audit_query_t *q = w->q;
    sv_key_t prefix, seek;
    sv_key_init(&prefix);
    sv_key_str(&prefix, q->request_id, strlen(q->request_id));
    if (prefix.overflow)
        return SV_EINVAL;
    seek = prefix;
    const sv_audit_cursor_t *cur = q->cursor;
    if (cur != NULL)
        sv_key_u64(&seek, resume_seq(q));
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_AUDIT_BY_REQUEST, sv_key_bytes(&prefix),
                                cur != NULL ? sv_key_bytes(&seek) : (sv_bytes_t){0}, !q->ascending, &it);
    if (err != SV_OK)
        return err;
    const uint8_t *row;
    while ((err = next_row(&it, prefix.len, 8, &row)) == SV_OK)
        if (!visit(w, tx, 0, sv_get_be64(row)))
            break;
    sv_iter_close(&it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

/* Walks the global time index over [lo, hi] (inclusive, microseconds),
 * resuming after the cursor's row when `resume`. *stopped tells whether the
 * query ended inside the range. */
static sv_err_t walk_time(walk_t *w, sv_txn_t *tx, int64_t lo, int64_t hi, bool resume, bool *stopped)
{
    const sv_audit_query_t *q = w->q;
    const sv_audit_cursor_t *cur = q->cursor;
    *stopped = false;
    sv_key_t prefix, seek;
    sv_key_init(&prefix);
    sv_key_u8(&prefix, 'g');
    seek = prefix;
    bool has_seek = true;
    if (resume) {
        sv_key_u64(&seek, (uint64_t)cur->time_us);
        sv_key_u64(&seek, resume_seq(q));
    } else if (q->ascending) {
        sv_key_u64(&seek, (uint64_t)(lo > 0 ? lo : 0));
        sv_key_u64(&seek, 0);
    } else if (hi < INT64_MAX && hi >= 0) {
        sv_key_u64(&seek, (uint64_t)hi + 1); /* a reverse walk starts below the seek key */
        sv_key_u64(&seek, 0);
    } else {
        has_seek = false;
    }
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_AUDIT_BY_TIME, sv_key_bytes(&prefix),
                                has_seek ? sv_key_bytes(&seek) : (sv_bytes_t){0}, !q->ascending, &it);
    if (err != SV_OK)
        return err;
    const uint8_t *row;
    while ((err = next_row(&it, prefix.len, 16, &row)) == SV_OK) {
        int64_t t = (int64_t)sv_get_be64(row);
        if (q->ascending ? t > hi : t < lo)
            break;
        if (!visit(w, tx, t, sv_get_be64(row + 8))) {
            *stopped = true;
            break;
        }
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

/* One tenant: its activity rows name the seconds it has entries in; each such
 * second is read from the global time index, filtered by tenant. */
static sv_err_t walk_tenant(walk_t *w, sv_txn_t *tx)
{
    const sv_audit_query_t *q = w->q;
    const sv_audit_cursor_t *cur = q->cursor;
    int64_t from_s = q->from_us > 0 ? q->from_us / 1000000 : 0;
    int64_t to_s = q->to_us < INT64_MAX ? q->to_us / 1000000 : INT64_MAX / 1000000;
    if (cur != NULL) {
        if (q->ascending)
            from_s = cur->time_us / 1000000;
        else
            to_s = cur->time_us / 1000000;
    }
    sv_key_t prefix, seek;
    sv_audit_activity_key(&prefix, SV_BYTES(q->tenant, strlen(q->tenant)), 0);
    prefix.len -= 8;
    if (prefix.overflow)
        return SV_EINVAL;
    seek = prefix;
    sv_key_u64(&seek, (uint64_t)(q->ascending ? from_s : to_s + 1));
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_AUDIT_BY_TIME, sv_key_bytes(&prefix), sv_key_bytes(&seek), !q->ascending, &it);
    if (err != SV_OK)
        return err;
    const uint8_t *row;
    while ((err = next_row(&it, prefix.len, 8, &row)) == SV_OK) {
        int64_t sec = (int64_t)sv_get_be64(row);
        if (q->ascending ? sec > to_s : sec < from_s)
            break;
        int64_t lo = sec * 1000000, hi = lo + 999999;
        if (lo < q->from_us)
            lo = q->from_us;
        if (hi > q->to_us)
            hi = q->to_us;
        bool resume = cur != NULL && cur->time_us / 1000000 == sec;
        bool stopped;
        /* the activity walk holds a cursor on the same database: a second
         * cursor for the entries is fine (read-only) */
        if ((err = walk_time(w, tx, lo, hi, resume, &stopped)) != SV_OK || stopped)
            break;
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

sv_err_t sv_audit_query_run(sv_txn_t *tx, const sv_audit_query_t *q, sv_buf_t *out)
{
    sv_audit_query_mode_t mode = sv_audit_query_mode(q);
    const sv_audit_cursor_t *cur = q->cursor;
    uint8_t tag[SV_AUDIT_CURSOR_TAG_BYTES];
    if (cur != NULL) {
        cursor_tag(q, cur, tag);
        if (cur->mode != mode || cur->ascending != q->ascending || sodium_memcmp(cur->tag, tag, sizeof(tag)) != 0)
            return SV_EINVAL;
    }
    sv_jw_t jw;
    walk_t w = {.q = q, .mode = mode, .jw = &jw, .scan_max = q->scan_max > 0 ? q->scan_max : SV_AUDIT_QUERY_SCAN_MAX,
                .next = {.mode = (uint8_t)mode, .ascending = q->ascending}};
    sv_jw_init(&jw, out);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "items");
    sv_jw_arr_begin(&jw);
    sv_err_t err;
    bool stopped;
    if (mode == SV_AUDIT_BY_REQUEST)
        err = walk_request(&w, tx);
    else if (mode == SV_AUDIT_BY_TENANT_TIME)
        err = walk_tenant(&w, tx);
    else
        err = walk_time(&w, tx, q->from_us, q->to_us, cur != NULL, &stopped);
    if (err == SV_ENOTFOUND)
        err = SV_OK;
    if (err != SV_OK)
        return err;
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "next_cursor");
    if (w.more) {
        char text[CURSOR_TEXT];
        cursor_tag(q, &w.next, w.next.tag);
        cursor_format(&w.next, text);
        sv_jw_cstr(&jw, text);
    } else {
        sv_jw_null(&jw);
    }
    sv_jw_obj_end(&jw);
    return out->failed ? SV_ENOMEM : SV_OK;
}

/* ---- export ---- */

void sv_audit_export_init(sv_audit_export_t *e, uint64_t from_seq, uint64_t end_seq)
{
    memset(e, 0, sizeof(*e));
    sv_audit_walk_init(&e->walk, from_seq);
    e->end_seq = end_seq;
    e->next_from_seq = from_seq > 0 ? from_seq : 1;
}

static void export_end(sv_audit_export_t *e, bool complete, sv_buf_t *out)
{
    sv_jw_t jw;
    sv_jw_init(&jw, out);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "type");
    sv_jw_cstr(&jw, "end");
    sv_jw_key(&jw, "count");
    sv_jw_uint(&jw, e->count);
    sv_jw_key(&jw, "next_from_seq");
    sv_jw_uint(&jw, e->next_from_seq);
    sv_jw_key(&jw, "complete");
    sv_jw_bool(&jw, complete && e->gap_to == 0);
    if (e->gap_to != 0) {
        /* retention pruned entries this export had not sent yet */
        sv_jw_key(&jw, "pruned_during_export");
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "from_seq");
        sv_jw_uint(&jw, e->gap_from);
        sv_jw_key(&jw, "to_seq");
        sv_jw_uint(&jw, e->gap_to);
        sv_jw_obj_end(&jw);
    }
    sv_jw_obj_end(&jw);
    sv_buf_putc(out, '\n');
    e->finished = true;
}

sv_err_t sv_audit_export_chunk(sv_txn_t *tx, sv_audit_export_t *e, unsigned max_records, bool stop, sv_buf_t *out,
                               bool *done)
{
    *done = false;
    if (e->finished) {
        *done = true;
        return SV_OK;
    }
    if (stop) {
        export_end(e, false, out);
        *done = true;
        return SV_OK;
    }
    sv_iter_t it;
    sv_err_t err = sv_audit_walk_open(&e->walk, tx, &it);
    if (err == SV_ENOTFOUND) {
        export_end(e, true, out);
        *done = true;
        return SV_OK;
    }
    if (err != SV_OK)
        return err;
    unsigned n = 0;
    bool at_end = false;
    sv_bytes_t k, v;
    while (n < max_records && out->len < EXPORT_CHUNK_BYTES) {
        err = sv_audit_walk_next(&e->walk, &it, &k, &v);
        if (err == SV_ENOTFOUND) {
            err = SV_OK;
            at_end = true;
            break;
        }
        if (err != SV_OK)
            break;
        if (k.len < 8 || e->end_seq == 0 || sv_get_be64(k.base) > e->end_seq) {
            at_end = true;
            break;
        }
        sv_jw_t jw;
        sv_jw_init(&jw, out);
        sv_audit_record_t r;
        sv_audit_checkpoint_t c;
        if (k.len == 8 && sv_audit_record_decode(v, &r) == SV_OK) {
            sv_audit_record_json(&jw, &r, true);
            e->next_from_seq = r.seq + 1;
        } else if (k.len == 9 && sv_audit_checkpoint_decode(k, v, &c) == SV_OK) {
            sv_audit_checkpoint_json(&jw, &c);
            if (c.anchor && e->count > 0 && c.seq >= e->next_from_seq) {
                /* an anchor mid-stream over entries not sent: pruned while the export ran */
                if (e->gap_to == 0)
                    e->gap_from = e->next_from_seq;
                e->gap_to = c.seq;
            }
            if (c.anchor)
                e->next_from_seq = c.seq + 1;
        } else {
            /* a damaged record: say so (with at most 32 bytes of its key),
             * verification names it */
            char hex[65];
            sodium_bin2hex(hex, sizeof(hex), k.base, k.len < 32 ? k.len : 32);
            sv_jw_obj_begin(&jw);
            sv_jw_key(&jw, "type");
            sv_jw_cstr(&jw, "damaged");
            sv_jw_key(&jw, "key");
            sv_jw_cstr(&jw, hex);
            sv_jw_obj_end(&jw);
        }
        sv_buf_putc(out, '\n');
        e->count++;
        n++;
    }
    sv_iter_close(&it);
    if (err != SV_OK)
        return err;
    if (at_end) {
        export_end(e, true, out);
        *done = true;
    }
    return out->failed ? SV_ENOMEM : SV_OK;
}
