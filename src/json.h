/*
 * json.h - JSON in and out.
 *
 * Parsing: yajl's lexer (strict: no comments) drives our own tree builder,
 * which enforces a depth limit, rejects duplicate keys, rejects a string or key
 * that is not well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF) or that has an unpaired surrogate escape (yajl
 * itself lets those through, or turns them into other characters), and never
 * returns yajl's error text (it echoes the input). The tree lives in an arena
 * that is freed in one go; a *secure* parse puts the arena and yajl's own
 * buffers in sodium_malloc memory and wipes them, for request bodies that carry
 * secret values.
 *
 * Writing: sv_jw_* appends to an sv_buf_t (plain or secure) with correct
 * escaping and commas.
 */
#ifndef SV_JSON_H
#define SV_JSON_H

#include "src/buf.h"
#include "src/sv.h"

#define SV_JSON_MAX_DEPTH 32

typedef enum {
    SV_JSON_NULL,
    SV_JSON_BOOL,
    SV_JSON_NUMBER,
    SV_JSON_STRING,
    SV_JSON_ARRAY,
    SV_JSON_OBJECT
} sv_json_type_t;

typedef struct sv_json sv_json_t;
struct sv_json {
    sv_json_type_t type;
    sv_json_t *next;  /* next sibling in the parent array/object */
    const char *key;  /* member name when the parent is an object (NUL-terminated) */
    size_t key_len;
    union {
        bool b;
        struct {
            const char *raw; /* the number's text, NUL-terminated */
            size_t len;
            bool is_int; /* an integer that fits int64 */
            int64_t i;
            double d;
        } num;
        struct {
            const char *s; /* NUL-terminated; may contain \u0000 as 0 bytes: use len */
            size_t len;
        } str;
        struct {
            sv_json_t *first, *last;
            size_t n;
        } kids;
    } u;
};

typedef struct sv_json_doc sv_json_doc_t;

typedef enum {
    SV_JSON_OK = 0,
    SV_JSON_ESYNTAX,   /* malformed JSON */
    SV_JSON_EDEPTH,    /* nested deeper than SV_JSON_MAX_DEPTH */
    SV_JSON_EDUPKEY,   /* an object repeats a key */
    SV_JSON_EUTF8,     /* a string or key is not well-formed UTF-8, or has an unpaired surrogate escape */
    SV_JSON_ENOMEM,
} sv_json_status_t;

typedef struct {
    sv_json_status_t status;
    size_t offset;   /* byte offset where parsing stopped */
    char field[128]; /* dotted path of the offending member ("body" when unknown) */
} sv_json_error_t;

/** Parses text (len bytes, need not be NUL-terminated). On success *doc owns
 * the tree (sv_json_doc_free). secure: the tree and every temporary buffer are
 * in sodium_malloc memory and wiped on free. A string or key that is not
 * well-formed UTF-8 is SV_JSON_EUTF8 with err->field naming the member (a
 * key: its object), never SV_JSON_ESYNTAX. */
sv_json_status_t sv_json_parse(const void *text, size_t len, bool secure, sv_json_doc_t **doc,
                               sv_json_error_t *err);
/** Reads and parses a small JSON file (at most 16 KiB; not secure). Errors:
 * SV_ENOTFOUND (no such file), SV_EIO, SV_ECORRUPT (not JSON, or larger). */
sv_err_t sv_json_load_file(const char *path, sv_json_doc_t **doc);
/** The root value. Valid until the doc is freed. */
sv_json_t *sv_json_root(sv_json_doc_t *doc);
/** Frees (and, if secure, wipes) the whole tree. NULL is fine. */
void sv_json_doc_free(sv_json_doc_t *doc);

/** The member called key of obj, or NULL (also when obj is not an object). */
sv_json_t *sv_json_get(const sv_json_t *obj, const char *key);
/** The member's string when it is a string, else NULL. */
const char *sv_json_get_str(const sv_json_t *obj, const char *key, size_t *len);

/** Length of the well-formed UTF-8 sequence (RFC 3629) that starts at p,
 * of the n bytes there (n > 0), or 0 when there is none. */
size_t sv_utf8_seq(const uint8_t *p, size_t n);
/** Whether all n bytes at p are well-formed UTF-8. */
bool sv_utf8_valid(const void *p, size_t n);

/** Appends v as compact JSON to out (used to re-serialise a secret value). */
void sv_json_serialize(const sv_json_t *v, sv_buf_t *out);

/* ---- writer ---- */

typedef struct {
    sv_buf_t *out;
    unsigned depth;
    uint64_t need_comma; /* bit per depth */
    bool after_key;
} sv_jw_t;

void sv_jw_init(sv_jw_t *jw, sv_buf_t *out);
void sv_jw_obj_begin(sv_jw_t *jw);
void sv_jw_obj_end(sv_jw_t *jw);
void sv_jw_arr_begin(sv_jw_t *jw);
void sv_jw_arr_end(sv_jw_t *jw);
void sv_jw_key(sv_jw_t *jw, const char *key);
void sv_jw_str(sv_jw_t *jw, const char *s, size_t len);
void sv_jw_cstr(sv_jw_t *jw, const char *s); /* NULL writes null */
void sv_jw_int(sv_jw_t *jw, int64_t v);
void sv_jw_uint(sv_jw_t *jw, uint64_t v);
void sv_jw_double(sv_jw_t *jw, double v);
void sv_jw_bool(sv_jw_t *jw, bool v);
void sv_jw_null(sv_jw_t *jw);
/** An RFC 3339 UTC time string from seconds since the epoch. */
void sv_jw_time(sv_jw_t *jw, int64_t t);
/** Like sv_jw_time when t > 0; null otherwise (a time that was never set). */
void sv_jw_time_or_null(sv_jw_t *jw, int64_t t);
/** Raw, already valid JSON text. */
void sv_jw_raw(sv_jw_t *jw, const void *json, size_t len);
/** Writes s with JSON string escaping, without quotes, to out. */
void sv_json_escape(sv_buf_t *out, const char *s, size_t len);

#endif
