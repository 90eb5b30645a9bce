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

#define CURSOR_VERSION 1
#define CURSOR_BYTES 19
#define EXPORT_CHUNK_BYTES (64 * 1024)

sv_audit_query_mode_t sv_audit_query_mode(const sv_audit_query_t *q)
{
    if (q->request_id != NULL)
        return SV_AUDIT_BY_REQUEST;
    return q->tenant != NULL ? SV_AUDIT_BY_TENANT_TIME : SV_AUDIT_BY_TIME;
}

#define CURSOR_TEXT sodium_base64_ENCODED_LEN(CURSOR_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)

static void cursor_format(const sv_audit_cursor_t *c, char text[CURSOR_TEXT])
{
    uint8_t raw[CURSOR_BYTES] = {CURSOR_VERSION, c->mode, c->ascending ? 1 : 0};
    sv_put_be64(raw + 3, (uint64_t)c->time_us);
    sv_put_be64(raw + 11, c->seq);
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

/* The position (time, seq) encoded at the end of an index key. */
static bool row_position(sv_audit_query_mode_t mode, sv_bytes_t key, size_t prefix_len, int64_t *time_us, uint64_t *seq)
{
    size_t want = prefix_len + (mode == SV_AUDIT_BY_REQUEST ? 8 : 16);
    if (key.len != want)
        return false;
    *seq = sv_get_be64(key.base + key.len - 8);
    *time_us = mode == SV_AUDIT_BY_REQUEST ? 0 : (int64_t)sv_get_be64(key.base + prefix_len);
    return true;
}

/* Appends (time, seq) to the prefix as a seek key. */
static void seek_key(sv_key_t *k, sv_audit_query_mode_t mode, int64_t time_us, uint64_t seq)
{
    if (mode != SV_AUDIT_BY_REQUEST)
        sv_key_u64(k, (uint64_t)time_us);
    sv_key_u64(k, seq);
}

sv_err_t sv_audit_query_run(sv_txn_t *tx, const sv_audit_query_t *q, sv_buf_t *out)
{
    sv_audit_query_mode_t mode = sv_audit_query_mode(q);
    const sv_audit_cursor_t *cur = q->cursor;
    if (cur != NULL && (cur->mode != mode || cur->ascending != q->ascending))
        return SV_EINVAL;
    sv_db_t db = mode == SV_AUDIT_BY_REQUEST ? SV_DB_AUDIT_BY_REQUEST : SV_DB_AUDIT_BY_TIME;
    sv_key_t prefix, seek;
    sv_key_init(&prefix);
    if (mode == SV_AUDIT_BY_REQUEST) {
        sv_key_str(&prefix, q->request_id, strlen(q->request_id));
    } else if (mode == SV_AUDIT_BY_TENANT_TIME) {
        sv_key_u8(&prefix, 't');
        sv_key_str(&prefix, q->tenant, strlen(q->tenant));
    } else {
        sv_key_u8(&prefix, 'g');
    }
    if (prefix.overflow)
        return SV_EINVAL;
    seek = prefix;
    bool has_seek = true;
    if (cur != NULL) {
        if (q->ascending)
            seek_key(&seek, mode, cur->time_us, cur->seq == UINT64_MAX ? cur->seq : cur->seq + 1);
        else
            seek_key(&seek, mode, cur->time_us, cur->seq); /* a reverse walk starts below the seek key */
    } else if (mode == SV_AUDIT_BY_REQUEST) {
        has_seek = false;
    } else if (q->ascending) {
        seek_key(&seek, mode, q->from_us > 0 ? q->from_us : 0, 0);
    } else if (q->to_us < INT64_MAX && q->to_us >= 0) {
        seek_key(&seek, mode, q->to_us + 1, 0);
    } else {
        has_seek = false;
    }
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, db, sv_key_bytes(&prefix), has_seek ? sv_key_bytes(&seek) : (sv_bytes_t){0},
                                !q->ascending, &it);
    if (err == SV_ENOTFOUND) {
        sv_buf_puts(out, "{\"items\":[],\"next_cursor\":null}");
        return SV_OK;
    }
    if (err != SV_OK)
        return err;

    unsigned scan_max = q->scan_max > 0 ? q->scan_max : SV_AUDIT_QUERY_SCAN_MAX;
    unsigned examined = 0, items = 0;
    bool more = false;
    sv_audit_cursor_t next = {.mode = (uint8_t)mode, .ascending = q->ascending};
    sv_jw_t jw;
    sv_jw_init(&jw, out);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "items");
    sv_jw_arr_begin(&jw);
    sv_bytes_t k;
    while ((err = sv_iter_next(&it, &k, NULL)) == SV_OK) {
        int64_t t;
        uint64_t seq;
        if (!row_position(mode, k, prefix.len, &t, &seq))
            continue; /* a row of a longer request id or tenant that shares the prefix: cannot happen (NUL ends them) */
        if (mode != SV_AUDIT_BY_REQUEST && (q->ascending ? t > q->to_us : t < q->from_us))
            break;
        if (items == q->limit) {
            more = true; /* a row beyond the page exists */
            break;
        }
        examined++;
        next.time_us = t;
        next.seq = seq;
        uint8_t key[8];
        sv_put_be64(key, seq);
        sv_bytes_t val;
        sv_audit_record_t r;
        if (sv_txn_get(tx, SV_DB_AUDIT, SV_BYTES(key, 8), &val) == SV_OK && sv_audit_record_decode(val, &r) == SV_OK &&
            matches(q, mode, &r)) {
            sv_audit_record_json(&jw, &r, false);
            items++;
        }
        if (examined >= scan_max && items < q->limit) {
            more = true; /* out of budget: the cursor resumes after this row */
            break;
        }
    }
    sv_iter_close(&it);
    if (err != SV_OK && err != SV_ENOTFOUND)
        return err;
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "next_cursor");
    if (more) {
        char text[CURSOR_TEXT];
        cursor_format(&next, text);
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
    sv_jw_bool(&jw, complete);
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
            if (c.anchor)
                e->next_from_seq = c.seq + 1;
        } else {
            /* a damaged record: say so, verification names it */
            char hex[19];
            sodium_bin2hex(hex, sizeof(hex), k.base, k.len);
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
