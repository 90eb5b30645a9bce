/*
 * record.c - the record codecs of record.h. Pure functions on caller-owned
 * buffers; any thread.
 */
#include "sv_autoconf.h"

#include "store/record.h"

#include <stdlib.h>
#include <string.h>

static void reserve(sv_recw_t *w, size_t more)
{
    if (w->failed)
        return;
    if (w->len + more <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->len + more)
        cap *= 2;
    uint8_t *nb = realloc(w->buf, cap);
    if (nb == NULL) {
        w->failed = true;
        return;
    }
    w->buf = nb;
    w->cap = cap;
}

void sv_recw_init(sv_recw_t *w, uint8_t version)
{
    memset(w, 0, sizeof(*w));
    sv_recw_u8(w, version);
}

void sv_recw_reset(sv_recw_t *w, uint8_t version)
{
    if (w->failed) {
        sv_recw_free(w);
        sv_recw_init(w, version);
        return;
    }
    w->len = 0;
    sv_recw_u8(w, version);
}

void sv_recw_free(sv_recw_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

void sv_recw_u8(sv_recw_t *w, uint8_t v)
{
    reserve(w, 1);
    if (!w->failed)
        w->buf[w->len++] = v;
}

void sv_recw_u32(sv_recw_t *w, uint32_t v)
{
    reserve(w, 4);
    if (!w->failed) {
        sv_put_be32(w->buf + w->len, v);
        w->len += 4;
    }
}

void sv_recw_u64(sv_recw_t *w, uint64_t v)
{
    reserve(w, 8);
    if (!w->failed) {
        sv_put_be64(w->buf + w->len, v);
        w->len += 8;
    }
}

void sv_recw_i64(sv_recw_t *w, int64_t v)
{
    sv_recw_u64(w, (uint64_t)v);
}

void sv_recw_bytes(sv_recw_t *w, const void *p, size_t len)
{
    if (len > UINT32_MAX) {
        w->failed = true;
        return;
    }
    sv_recw_u32(w, (uint32_t)len);
    reserve(w, len);
    if (!w->failed && len > 0) {
        memcpy(w->buf + w->len, p, len);
        w->len += len;
    }
}

sv_err_t sv_recw_result(const sv_recw_t *w, sv_bytes_t *out)
{
    if (w->failed)
        return SV_ENOMEM;
    out->base = w->buf;
    out->len = w->len;
    return SV_OK;
}

int sv_recr_init(sv_recr_t *r, sv_bytes_t rec)
{
    r->rec = rec;
    r->off = 0;
    r->failed = false;
    if (rec.len == 0) {
        r->failed = true;
        return -1;
    }
    return sv_recr_u8(r);
}

static const uint8_t *take(sv_recr_t *r, size_t n)
{
    if (r->failed || n > r->rec.len - r->off) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->rec.base + r->off;
    r->off += n;
    return p;
}

uint8_t sv_recr_u8(sv_recr_t *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t sv_recr_u32(sv_recr_t *r)
{
    const uint8_t *p = take(r, 4);
    return p ? sv_get_be32(p) : 0;
}

uint64_t sv_recr_u64(sv_recr_t *r)
{
    const uint8_t *p = take(r, 8);
    return p ? sv_get_be64(p) : 0;
}

int64_t sv_recr_i64(sv_recr_t *r)
{
    return (int64_t)sv_recr_u64(r);
}

sv_bytes_t sv_recr_bytes(sv_recr_t *r)
{
    uint32_t n = sv_recr_u32(r);
    const uint8_t *p = take(r, n);
    return p ? (sv_bytes_t){p, n} : (sv_bytes_t){NULL, 0};
}

void sv_recr_str(sv_recr_t *r, char *out, size_t cap)
{
    sv_bytes_t b = sv_recr_bytes(r);
    if (r->failed || b.len >= cap || (b.len > 0 && memchr(b.base, 0, b.len) != NULL)) {
        r->failed = true;
        if (cap > 0)
            out[0] = 0;
        return;
    }
    if (b.len > 0)
        memcpy(out, b.base, b.len);
    out[b.len] = 0;
}
