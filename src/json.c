/*
 * json.c - the JSON parser and writer of json.h.
 *
 * yajl's callback parser does the lexing; each callback appends a node to the
 * tree under construction. Nodes and strings come from an arena of chunks so
 * that a document is freed with a handful of calls. A secure document takes
 * its chunks, and yajl its buffers, from sodium_malloc, so that a secret value
 * never sits in ordinary heap memory, and all of it is wiped on free.
 * Any thread; a document belongs to the thread that parsed it.
 */
#include "sv_autoconf.h"

#include "src/json.h"
#include "src/secmem.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define CHUNK_MIN 4096

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    uint8_t data[];
} chunk_t;

struct sv_json_doc {
    bool secure;
    chunk_t *chunks;
    sv_json_t *root;
    /* parse state */
    sv_json_t *stack[SV_JSON_MAX_DEPTH + 1];
    unsigned depth;
    const char *pending_key;
    size_t pending_key_len;
    sv_json_error_t *err;
    bool oom;
    yajl_handle h;
    size_t bad_escape; /* offset of the first unpaired surrogate escape, or SIZE_MAX */
};

/* ---- arena ---- */

static void *mem_alloc(bool secure, size_t n)
{
    return secure ? sv_secmem_alloc(n) : malloc(n);
}

static void *arena_alloc(sv_json_doc_t *doc, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    chunk_t *c = doc->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        if (c != NULL && c->cap * 2 > cap && c->cap < (1u << 20))
            cap = c->cap * 2 > n ? c->cap * 2 : n;
        c = mem_alloc(doc->secure, sizeof(chunk_t) + cap);
        if (c == NULL) {
            doc->oom = true;
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = doc->chunks;
        doc->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_strdup(sv_json_doc_t *doc, const void *s, size_t len)
{
    char *p = arena_alloc(doc, len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

void sv_json_doc_free(sv_json_doc_t *doc)
{
    if (doc == NULL)
        return;
    bool secure = doc->secure;
    for (chunk_t *c = doc->chunks, *next; c != NULL; c = next) {
        next = c->next;
        if (!secure)
            free(c);
        else
            sv_secmem_free(c);
    }
    if (secure)
        sv_secmem_free(doc);
    else
        free(doc);
}

/* yajl's allocator for a secure parse: its lexer buffers hold decoded
 * strings. yajl does not check for NULL, so these never meet the cap on
 * plaintext memory (sv_json_parse took its document's block from under the
 * cap first): a parse cannot be cut off half-way. */
static void *y_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return sv_secmem_alloc_uncapped(n);
}

static void y_free(void *ctx, void *ptr)
{
    (void)ctx;
    sv_secmem_free(ptr);
}

static void *y_realloc(void *ctx, void *ptr, size_t n)
{
    void *np = y_malloc(ctx, n);
    if (np == NULL)
        return NULL;
    if (ptr != NULL) {
        size_t old = sv_secmem_size(ptr);
        memcpy(np, ptr, old < n ? old : n);
        y_free(ctx, ptr);
    }
    return np;
}

static void set_field(sv_json_doc_t *doc, const char *extra, size_t extra_len);

/* ---- UTF-8 ---- */

size_t sv_utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

bool sv_utf8_valid(const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n;) {
        size_t k = sv_utf8_seq(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* The value of the \uXXXX escape at t[i] (t[i] is the backslash), or -1. */
static long u_escape(const uint8_t *t, size_t n, size_t i)
{
    if (i > n || n - i < 6 || t[i] != '\\' || t[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = i + 2; k < i + 6; k++) {
        uint8_t c = t[k], lower = t[k] | 0x20;
        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if (lower >= 'a' && lower <= 'f')
            v = v * 16 + (lower - 'a' + 10);
        else
            return -1;
    }
    return v;
}

/* Offset of the first \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF
 * one, or of a \uDC00-\uDFFF one not preceded by the first kind; SIZE_MAX
 * when there is none. yajl joins a high surrogate with whatever escape follows
 * and turns a lone one into '?', so this is read from the text itself. Only
 * meant for text that yajl accepts: other text is rejected anyway, and this
 * never reads past n. */
static size_t unpaired_surrogate(const uint8_t *t, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = t[i] == '"';
            continue;
        }
        if (t[i] == '"') {
            in_string = false;
        } else if (t[i] == '\\' && i + 1 < n) {
            long v = u_escape(t, n, i);
            if (v >= 0xDC00 && v <= 0xDFFF)
                return i;
            if (v >= 0xD800 && v <= 0xDBFF) {
                long lo = u_escape(t, n, i + 6);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return i;
                i += 6; /* the pair's second half */
            }
            i += v >= 0 ? 5 : 1;
        }
    }
    return SIZE_MAX;
}

/* Whether the string token that yajl just decoded into s is acceptable; if
 * not, records the error against field (under the current path). yajl does
 * not check UTF-8 (yajl_dont_validate_strings): this is the one check, of
 * every string and key. */
static bool string_ok(sv_json_doc_t *doc, const unsigned char *s, size_t len, const char *field, size_t field_len)
{
    if (sv_utf8_valid(s, len) && (doc->bad_escape == SIZE_MAX || yajl_get_bytes_consumed(doc->h) <= doc->bad_escape))
        return true;
    doc->err->status = SV_JSON_EUTF8;
    set_field(doc, field, field_len);
    return false;
}

/* ---- tree building ---- */

static void set_field(sv_json_doc_t *doc, const char *extra, size_t extra_len)
{
    sv_json_error_t *e = doc->err;
    size_t off = 0;
    e->field[0] = 0;
    for (unsigned i = 1; i <= doc->depth; i++) {
        sv_json_t *n = doc->stack[i];
        if (n != NULL && n->key != NULL) {
            int w = snprintf(e->field + off, sizeof(e->field) - off, "%s%.*s", off ? "." : "", (int)n->key_len,
                             n->key);
            if (w < 0 || (size_t)w >= sizeof(e->field) - off)
                break;
            off += (size_t)w;
        }
    }
    if (extra != NULL && off < sizeof(e->field))
        snprintf(e->field + off, sizeof(e->field) - off, "%s%.*s", off ? "." : "", (int)extra_len, extra);
    if (e->field[0] == 0)
        snprintf(e->field, sizeof(e->field), "body");
}

static sv_json_t *add_node(sv_json_doc_t *doc, sv_json_type_t type)
{
    sv_json_t *n = arena_alloc(doc, sizeof(*n));
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->type = type;
    sv_json_t *parent = doc->depth > 0 ? doc->stack[doc->depth] : NULL;
    if (parent == NULL) {
        doc->root = n;
        return n;
    }
    if (parent->type == SV_JSON_OBJECT) {
        n->key = doc->pending_key;
        n->key_len = doc->pending_key_len;
        doc->pending_key = NULL;
    }
    if (parent->u.kids.last != NULL)
        parent->u.kids.last->next = n;
    else
        parent->u.kids.first = n;
    parent->u.kids.last = n;
    parent->u.kids.n++;
    return n;
}

static int cb_null(void *ctx)
{
    return add_node(ctx, SV_JSON_NULL) != NULL;
}

static int cb_bool(void *ctx, int v)
{
    sv_json_t *n = add_node(ctx, SV_JSON_BOOL);
    if (n != NULL)
        n->u.b = v != 0;
    return n != NULL;
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    sv_json_doc_t *doc = ctx;
    sv_json_t *n = add_node(doc, SV_JSON_NUMBER);
    if (n == NULL)
        return 0;
    char *raw = arena_strdup(doc, s, len);
    if (raw == NULL)
        return 0;
    n->u.num.raw = raw;
    n->u.num.len = len;
    bool integral = true;
    for (size_t i = (raw[0] == '-'); i < len; i++)
        if (raw[i] < '0' || raw[i] > '9')
            integral = false;
    if (integral) {
        char *end;
        errno = 0;
        long long v = strtoll(raw, &end, 10);
        if (end == raw + len && errno == 0) {
            n->u.num.is_int = true;
            n->u.num.i = v;
        }
    }
    n->u.num.d = strtod(raw, NULL);
    return 1;
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    sv_json_doc_t *doc = ctx;
    if (!string_ok(doc, s, len, doc->pending_key, doc->pending_key != NULL ? doc->pending_key_len : 0))
        return 0;
    sv_json_t *n = add_node(doc, SV_JSON_STRING);
    if (n == NULL)
        return 0;
    n->u.str.s = arena_strdup(doc, s, len);
    n->u.str.len = len;
    return n->u.str.s != NULL;
}

static int open_container(sv_json_doc_t *doc, sv_json_type_t type)
{
    if (doc->depth >= SV_JSON_MAX_DEPTH) {
        doc->err->status = SV_JSON_EDEPTH;
        set_field(doc, doc->pending_key, doc->pending_key ? doc->pending_key_len : 0);
        return 0;
    }
    sv_json_t *n = add_node(doc, type);
    if (n == NULL)
        return 0;
    doc->stack[++doc->depth] = n;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, SV_JSON_OBJECT);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, SV_JSON_ARRAY);
}

static int cb_end(void *ctx)
{
    sv_json_doc_t *doc = ctx;
    doc->depth--;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    sv_json_doc_t *doc = ctx;
    if (!string_ok(doc, key, len, NULL, 0))
        return 0; /* the key is not named: it is what is wrong */
    sv_json_t *obj = doc->stack[doc->depth];
    for (sv_json_t *k = obj->u.kids.first; k != NULL; k = k->next) {
        if (k->key_len == len && memcmp(k->key, key, len) == 0) {
            doc->err->status = SV_JSON_EDUPKEY;
            set_field(doc, (const char *)key, len);
            return 0;
        }
    }
    doc->pending_key = arena_strdup(doc, key, len);
    doc->pending_key_len = len;
    return doc->pending_key != NULL;
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string, cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

sv_json_status_t sv_json_parse(const void *text, size_t len, bool secure, sv_json_doc_t **out, sv_json_error_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = NULL;
    sv_json_doc_t *doc = secure ? sv_secmem_alloc(sizeof(*doc)) : malloc(sizeof(*doc));
    if (doc == NULL) {
        err->status = SV_JSON_ENOMEM;
        return err->status;
    }
    memset(doc, 0, sizeof(*doc));
    doc->secure = secure;
    doc->err = err;
    yajl_alloc_funcs secure_funcs = {y_malloc, y_realloc, y_free, NULL};
    yajl_handle h = yajl_alloc(&callbacks, secure ? &secure_funcs : NULL, doc);
    if (h == NULL) {
        sv_json_doc_free(doc);
        err->status = SV_JSON_ENOMEM;
        return err->status;
    }
    yajl_config(h, yajl_allow_comments, 0);
    /* yajl's own UTF-8 check would make a truncated sequence a syntax error
     * of the whole text; string_ok checks every string and names the member */
    yajl_config(h, yajl_dont_validate_strings, 1);
    doc->h = h;
    doc->bad_escape = unpaired_surrogate(text, len);
    yajl_status st = yajl_parse(h, text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    err->offset = yajl_get_bytes_consumed(h);
    yajl_free(h);
    if (st != yajl_status_ok || doc->root == NULL) {
        if (doc->oom)
            err->status = SV_JSON_ENOMEM;
        else if (err->status == SV_JSON_OK)
            err->status = SV_JSON_ESYNTAX;
        if (err->field[0] == 0)
            snprintf(err->field, sizeof(err->field), "body");
        sv_json_doc_free(doc);
        return err->status;
    }
    *out = doc;
    return SV_JSON_OK;
}

sv_err_t sv_json_load_file(const char *path, sv_json_doc_t **doc)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? SV_ENOTFOUND : SV_EIO;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool whole = feof(f) && !ferror(f);
    fclose(f);
    sv_json_error_t je;
    if (!whole || sv_json_parse(buf, n, false, doc, &je) != SV_JSON_OK)
        return SV_ECORRUPT;
    return SV_OK;
}

sv_json_t *sv_json_root(sv_json_doc_t *doc)
{
    return doc->root;
}

sv_json_t *sv_json_get(const sv_json_t *obj, const char *key)
{
    if (obj == NULL || obj->type != SV_JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (sv_json_t *k = obj->u.kids.first; k != NULL; k = k->next)
        if (k->key_len == kl && memcmp(k->key, key, kl) == 0)
            return k;
    return NULL;
}

const char *sv_json_get_str(const sv_json_t *obj, const char *key, size_t *len)
{
    sv_json_t *v = sv_json_get(obj, key);
    if (v == NULL || v->type != SV_JSON_STRING)
        return NULL;
    if (len != NULL)
        *len = v->u.str.len;
    return v->u.str.s;
}

/* ---- writer ---- */

void sv_json_escape(sv_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sv_buf_append(out, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': sv_buf_append(out, "\\\"", 2); break;
        case '\\': sv_buf_append(out, "\\\\", 2); break;
        case '\n': sv_buf_append(out, "\\n", 2); break;
        case '\r': sv_buf_append(out, "\\r", 2); break;
        case '\t': sv_buf_append(out, "\\t", 2); break;
        case '\b': sv_buf_append(out, "\\b", 2); break;
        case '\f': sv_buf_append(out, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sv_buf_append(out, u, 6);
        }
        }
    }
    sv_buf_append(out, s + start, len - start);
}

void sv_jw_init(sv_jw_t *jw, sv_buf_t *out)
{
    memset(jw, 0, sizeof(*jw));
    jw->out = out;
}

static void before_value(sv_jw_t *jw)
{
    if (jw->after_key) {
        jw->after_key = false;
        return;
    }
    uint64_t bit = 1ull << (jw->depth & 63);
    if (jw->need_comma & bit)
        sv_buf_putc(jw->out, ',');
    jw->need_comma |= bit;
}

static void open_scope(sv_jw_t *jw, char c)
{
    before_value(jw);
    sv_buf_putc(jw->out, c);
    jw->depth++;
    jw->need_comma &= ~(1ull << (jw->depth & 63));
}

static void close_scope(sv_jw_t *jw, char c)
{
    jw->depth--;
    sv_buf_putc(jw->out, c);
}

void sv_jw_obj_begin(sv_jw_t *jw)
{
    open_scope(jw, '{');
}

void sv_jw_obj_end(sv_jw_t *jw)
{
    close_scope(jw, '}');
}

void sv_jw_arr_begin(sv_jw_t *jw)
{
    open_scope(jw, '[');
}

void sv_jw_arr_end(sv_jw_t *jw)
{
    close_scope(jw, ']');
}

void sv_jw_key(sv_jw_t *jw, const char *key)
{
    before_value(jw);
    sv_buf_putc(jw->out, '"');
    sv_json_escape(jw->out, key, strlen(key));
    sv_buf_append(jw->out, "\":", 2);
    jw->after_key = true;
}

void sv_jw_str(sv_jw_t *jw, const char *s, size_t len)
{
    before_value(jw);
    sv_buf_putc(jw->out, '"');
    sv_json_escape(jw->out, s, len);
    sv_buf_putc(jw->out, '"');
}

void sv_jw_cstr(sv_jw_t *jw, const char *s)
{
    if (s == NULL)
        sv_jw_null(jw);
    else
        sv_jw_str(jw, s, strlen(s));
}

void sv_jw_int(sv_jw_t *jw, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);
    before_value(jw);
    sv_buf_append(jw->out, b, (size_t)n);
}

void sv_jw_uint(sv_jw_t *jw, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    before_value(jw);
    sv_buf_append(jw->out, b, (size_t)n);
}

void sv_jw_double(sv_jw_t *jw, double v)
{
    char b[32];
    int n = isfinite(v) ? snprintf(b, sizeof(b), "%.6g", v) : snprintf(b, sizeof(b), "null");
    before_value(jw);
    sv_buf_append(jw->out, b, (size_t)n);
}

void sv_jw_bool(sv_jw_t *jw, bool v)
{
    before_value(jw);
    sv_buf_puts(jw->out, v ? "true" : "false");
}

void sv_jw_null(sv_jw_t *jw)
{
    before_value(jw);
    sv_buf_puts(jw->out, "null");
}

void sv_jw_time(sv_jw_t *jw, int64_t t)
{
    char b[21];
    size_t n = sv_time_format(b, t);
    sv_jw_str(jw, b, n);
}

void sv_jw_time_or_null(sv_jw_t *jw, int64_t t)
{
    if (t > 0)
        sv_jw_time(jw, t);
    else
        sv_jw_null(jw);
}

void sv_jw_raw(sv_jw_t *jw, const void *json, size_t len)
{
    before_value(jw);
    sv_buf_append(jw->out, json, len);
}

static void serialize(const sv_json_t *v, sv_jw_t *jw)
{
    switch (v->type) {
    case SV_JSON_NULL: sv_jw_null(jw); break;
    case SV_JSON_BOOL: sv_jw_bool(jw, v->u.b); break;
    case SV_JSON_NUMBER: sv_jw_raw(jw, v->u.num.raw, v->u.num.len); break;
    case SV_JSON_STRING: sv_jw_str(jw, v->u.str.s, v->u.str.len); break;
    case SV_JSON_ARRAY:
        sv_jw_arr_begin(jw);
        for (const sv_json_t *k = v->u.kids.first; k != NULL; k = k->next)
            serialize(k, jw);
        sv_jw_arr_end(jw);
        break;
    case SV_JSON_OBJECT:
        sv_jw_obj_begin(jw);
        for (const sv_json_t *k = v->u.kids.first; k != NULL; k = k->next) {
            before_value(jw);
            sv_buf_putc(jw->out, '"');
            sv_json_escape(jw->out, k->key, k->key_len);
            sv_buf_append(jw->out, "\":", 2);
            jw->after_key = true;
            serialize(k, jw);
        }
        sv_jw_obj_end(jw);
        break;
    }
}

void sv_json_serialize(const sv_json_t *v, sv_buf_t *out)
{
    sv_jw_t jw;
    sv_jw_init(&jw, out);
    serialize(v, &jw);
}
