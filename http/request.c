/*
 * request.c - the request pipeline of request.h.
 *
 * The design choice that shapes this file: a response is never sent before
 * the request's audit entry is safe. So every ending (reply, fail, a write's
 * completion) funnels into finish(), which hands the entry to the writer and
 * sends only when the unit comes back; a write and its entry travel in one
 * unit. The held body lives in our own buffer (secure memory when it carries a
 * secret) and is handed to h2o without a copy; h2o's pool frees it when the
 * request is disposed.
 *
 * All functions run on the request's worker thread, except unit_apply(),
 * which the writer runs while the worker leaves the request alone.
 */
#include "sv_autoconf.h"

#include "http/request.h"

#include <ctype.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "http/handlers.h"
#include "http/metrics.h"
#include "http/server.h"
#include "http/steps.h"
#include "src/secrets.h"

/* Finished request contexts kept for reuse. Sanitizer builds keep none, so
 * that every use of a request after its response is a use after free that
 * AddressSanitizer reports, not a read of a parked context. */
#if defined(__SANITIZE_ADDRESS__)
#define FREE_LIST_MAX 0
#else
#define FREE_LIST_MAX 256
#endif

/* ---- the body handed to h2o, freed with the request's pool ---- */

typedef struct {
    uint8_t *mem;
    size_t cap;
    bool secure;
    sv_worker_t *worker; /* counts it in w->sending until then */
} pool_body_t;

static void pool_body_dispose(void *p)
{
    pool_body_t *b = p;
    b->worker->sending--;
    if (b->secure && b->mem != NULL)
        sodium_memzero(b->mem, b->cap);
    sv_buf_release_mem(b->mem, b->cap, b->secure);
}

/* Notices that h2o disposed the request (the client went away) while we still
 * hold it. */
typedef struct {
    sv_req_t *req;
} pool_link_t;

static void pool_link_dispose(void *p)
{
    pool_link_t *link = p;
    if (link->req != NULL) {
        link->req->h2o = NULL;
        link->req->parked = NULL; /* the connection and its socket go too */
    }
}

/* ---- parking ---- */

/* While a request waits for the writer, h2o's HTTP/1.1 connection has stopped
 * reading its socket, and libh2o 2.2's epoll loop then takes the socket out of
 * the epoll set (EPOLL_CTL_DEL) at its next pass and puts it back (ADD) once
 * the response has gone: two system calls that were a ninth of the HTTP
 * workers' time in audited reads (bench/README.md). A parked socket stays in
 * the set instead, polled with h2o_socket_dont_read() so that nothing is read
 * into the buffer that the request's fields point into. If the client sends
 * anything or closes meanwhile, parked_readable() stops the polling, which is
 * what h2o would have done, and the bytes wait in the kernel until the
 * connection reads again. unpark() gives the socket back to h2o stopped, as
 * it was, before the response: h2o starts reading again in the same loop pass,
 * so the epoll set does not change. HTTP/2 connections go on reading while a
 * stream waits (and restart reading on their own schedule): they are left
 * alone. */
static void parked_readable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_read_stop(sock);
    h2o_socket_dont_read(sock, 0);
}

static void park(sv_req_t *req)
{
#if H2O_VERSION_MAJOR != 2 || H2O_VERSION_MINOR != 2
    /* parking relies on how libh2o 2.2's HTTP/1 and epoll code use a
     * socket's read state (above): another version is left alone */
    return;
#endif
    /* only HTTP/1: there the connection reads again only after the response */
    h2o_conn_t *conn = req->h2o != NULL && req->h2o->version < 0x200 ? req->h2o->conn : NULL;
    if (conn == NULL || conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = conn->callbacks->get_socket(conn);
    if (sock == NULL || h2o_socket_is_reading(sock))
        return;
    h2o_socket_dont_read(sock, 1);
    h2o_socket_read_start(sock, parked_readable);
    req->parked = sock;
}

/* Hands the request's unit to the writer, and parks its connection while it
 * waits. False when the writer takes no more (stopping). */
static bool submit_unit(sv_req_t *req)
{
    if (sv_writer_submit(req->app->writer, &req->unit) != SV_OK)
        return false;
    park(req);
    return true;
}

static void unpark(sv_req_t *req)
{
    if (req->parked == NULL)
        return;
    h2o_socket_read_stop(req->parked);
    h2o_socket_dont_read(req->parked, 0);
    req->parked = NULL;
}

/* ---- request ids ---- */

static bool valid_request_id(const char *s, size_t len)
{
    if (len == 0 || len > SV_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* req_ + 26 characters of Crockford base32: 48 bits of milliseconds, then 80
 * random bits, so ids sort by time like ULIDs. */
static void new_request_id(char out[SV_REQUEST_ID_MAX + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t bytes[16];
    uint64_t ms = (uint64_t)(sv_now_us() / 1000);
    for (int i = 5; i >= 0; i--) {
        bytes[i] = (uint8_t)ms;
        ms >>= 8;
    }
    /* request ids are not secrets: take their randomness from a per-thread
     * pool refilled 4 KiB at a time instead of a getrandom() per request */
    static __thread uint8_t pool[4096];
    static __thread size_t pool_left;
    if (pool_left < 10) {
        randombytes_buf(pool, sizeof(pool));
        pool_left = sizeof(pool);
    }
    memcpy(bytes + 6, pool + sizeof(pool) - pool_left, 10);
    pool_left -= 10;
    memcpy(out, "req_", 4);
    /* 128 bits → 26 base32 digits (the top 2 bits of the first digit are 0) */
    unsigned bitpos = 0;
    for (int i = 0; i < 26; i++) {
        unsigned v = 0;
        for (int b = 0; b < 5; b++) {
            int bit = (int)bitpos - 2; /* pad the front with 2 zero bits */
            unsigned set = 0;
            if (bit >= 0)
                set = (bytes[bit / 8] >> (7 - bit % 8)) & 1;
            v = (v << 1) | set;
            bitpos++;
        }
        out[4 + i] = alphabet[v];
    }
    out[30] = 0;
}

/* ---- inputs ---- */

const char *sv_req_param(sv_req_t *req, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (unsigned i = 0; i < req->n_params; i++) {
        /* the router's name points into the pattern: "id}/..." or "path*}" */
        const char *pn = req->params[i].name;
        if (strncmp(pn, name, nl) == 0 && (pn[nl] == 0 || pn[nl] == '}' || pn[nl] == '*')) {
            if (len != NULL)
                *len = req->params[i].len;
            return req->params[i].value;
        }
    }
    return NULL;
}

bool sv_req_param_copy(sv_req_t *req, const char *name, bool (*valid)(const char *s, size_t len), char *out, size_t cap,
                       const char *message)
{
    size_t len;
    const char *v = sv_req_param(req, name, &len);
    if (v == NULL || len >= cap || !valid(v, len)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, message, name);
        return false;
    }
    memcpy(out, v, len);
    out[len] = 0;
    sv_req_audit_path(req, out, len);
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src into dst (cap bytes incl. NUL); plus_is_space for
 * queries. Returns the length, or -1 on a bad escape, a NUL byte or overflow. */
static long pct_decode(const char *src, size_t len, char *dst, size_t cap, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = 0;
    return (long)o;
}

bool sv_req_query(sv_req_t *req, const char *name, char *out, size_t cap, bool *bad)
{
    size_t nl = strlen(name);
    const char *q = req->query, *end = req->query + req->query_len;
    while (q != NULL && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == nl && memcmp(q, name, nl) == 0) {
            const char *v = eq ? eq + 1 : pe;
            long n = pct_decode(v, (size_t)(pe - v), out, cap, true);
            if (n < 0) {
                if (bad != NULL)
                    *bad = true;
                return false;
            }
            return true;
        }
        q = amp ? amp + 1 : end;
    }
    return false;
}

bool sv_req_query_limit(sv_req_t *req, unsigned def, unsigned *out)
{
    char text[16];
    bool bad = false;
    *out = def;
    if (sv_req_query(req, "limit", text, sizeof(text), &bad)) {
        /* digits only: strtol would also take " 5", "+5" and "05x" prefixes */
        unsigned n = 0;
        size_t i = 0;
        while (text[i] >= '0' && text[i] <= '9' && n <= 1000)
            n = n * 10 + (unsigned)(text[i++] - '0');
        if (i == 0 || text[i] != 0 || n < 1 || n > 1000)
            bad = true;
        else
            *out = n;
    }
    if (bad)
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "limit must be a whole number from 1 to 1000.", "limit");
    return !bad;
}

bool sv_http_name_cursor_parse(const char *text, bool (*valid)(const char *s, size_t len), char *out, size_t cap)
{
    size_t len = 0;
    if (sodium_base642bin((unsigned char *)out, cap - 1, text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        !valid(out, len)) {
        out[0] = 0;
        return false;
    }
    out[len] = 0;
    return true;
}

void sv_http_name_cursor_write(sv_jw_t *jw, const char *name)
{
    char text[sodium_base64_ENCODED_LEN(SV_ID_MAX, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(text, sizeof(text), (const unsigned char *)name, strnlen(name, SV_ID_MAX - 1),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sv_jw_cstr(jw, text);
}

void sv_http_page_begin(sv_buf_t *body, sv_jw_t *jw)
{
    sv_buf_init(body, false);
    sv_jw_init(jw, body);
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "items");
    sv_jw_arr_begin(jw);
}

void sv_http_page_end_names(sv_jw_t *jw, bool more, const char *last)
{
    sv_jw_arr_end(jw);
    sv_jw_key(jw, "next_cursor");
    if (more)
        sv_http_name_cursor_write(jw, last);
    else
        sv_jw_null(jw);
    sv_jw_obj_end(jw);
}

const char *sv_req_header(sv_req_t *req, const char *name, size_t *len)
{
    if (req->h2o == NULL)
        return NULL;
    size_t nl = strlen(name);
    ssize_t i = h2o_find_header_by_str(&req->h2o->headers, name, nl, -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->h2o->headers.entries[i].value;
    if (len != NULL)
        *len = v.len;
    return v.base;
}

bool sv_req_header_repeated(sv_req_t *req, const char *name)
{
    if (req->h2o == NULL)
        return false;
    size_t nl = strlen(name);
    ssize_t i = h2o_find_header_by_str(&req->h2o->headers, name, nl, -1);
    return i >= 0 && h2o_find_header_by_str(&req->h2o->headers, name, nl, i) >= 0;
}

bool sv_req_json_known_members(sv_req_t *req, const sv_json_t *obj, const char *const *known, const char *message,
                               const char *prefix)
{
    for (const sv_json_t *m = obj->u.kids.first; m != NULL; m = m->next) {
        const char *const *k = known;
        while (*k != NULL && strcmp(*k, m->key) != 0)
            k++;
        if (*k != NULL)
            continue;
        char field[160];
        if (prefix != NULL)
            snprintf(field, sizeof(field), "%s.%s", prefix, m->key);
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, message, prefix != NULL ? field : m->key);
        return false;
    }
    return true;
}

struct sv_store_reader *sv_req_reader(sv_req_t *req)
{
    return req->worker->reader;
}

bool sv_req_read_begin(sv_req_t *req, sv_txn_t **tx)
{
    sv_err_t err = sv_store_read_begin(sv_req_reader(req), tx);
    if (err != SV_OK)
        sv_req_fail_err(req, err);
    return err == SV_OK;
}

sv_json_doc_t *sv_req_json_body(sv_req_t *req)
{
    h2o_iovec_t body = req->h2o != NULL ? req->h2o->entity : h2o_iovec_init(NULL, 0);
    bool secure = (req->route != NULL && (req->route->flags & SV_ROUTE_SECURE_BODY));
    if (body.len > req->app->cfg->max_body_bytes) {
        char details[96];
        snprintf(details, sizeof(details), "{\"limit_bytes\":%zu}", req->app->cfg->max_body_bytes);
        sv_req_fail(req, SV_E_PAYLOAD_TOO_LARGE, NULL, details);
        return NULL;
    }
    if (body.base == NULL || body.len == 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "A JSON body is required.", "body");
        return NULL;
    }
    sv_json_doc_t *doc;
    sv_json_error_t err;
    sv_json_status_t st = sv_json_parse(body.base, body.len, secure, &doc, &err);
    if (secure)
        sodium_memzero(body.base, body.len); /* the raw body held the secret too */
    if (st == SV_JSON_OK) {
        if (sv_json_root(doc)->type != SV_JSON_OBJECT) {
            sv_json_doc_free(doc);
            sv_req_fail_field(req, SV_E_INVALID_REQUEST, "The body must be a JSON object.", "body");
            return NULL;
        }
        return doc;
    }
    char msg[160];
    switch (st) {
    case SV_JSON_EDEPTH:
        snprintf(msg, sizeof(msg), "JSON is nested deeper than %d levels.", SV_JSON_MAX_DEPTH);
        break;
    case SV_JSON_EDUPKEY: snprintf(msg, sizeof(msg), "JSON object repeats a key."); break;
    case SV_JSON_EUTF8:
        snprintf(msg, sizeof(msg), "A JSON string is not valid UTF-8, or has an unpaired surrogate escape.");
        break;
    case SV_JSON_ENOMEM: sv_req_fail_err(req, SV_ENOMEM); return NULL;
    default: snprintf(msg, sizeof(msg), "Malformed JSON near byte %zu.", err.offset); break;
    }
    sv_req_fail_field(req, SV_E_INVALID_REQUEST, msg, err.field);
    return NULL;
}

/* ---- outputs ---- */

void sv_req_audit_path(sv_req_t *req, const char *path, size_t len)
{
    if (len >= sizeof(req->audit.path))
        len = sizeof(req->audit.path) - 1;
    /* the entry's path is a C string: a NUL (or any control byte) from a
     * request would cut it short, or hide what follows; '?' stands in */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)path[i];
        req->audit.path[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    req->audit.path[len] = 0;
}

void sv_req_audit_action(sv_req_t *req, const char *action)
{
    snprintf(req->audit.action, sizeof(req->audit.action), "%s", action);
}

void sv_req_add_header(sv_req_t *req, const h2o_token_t *token, const char *name, const char *value)
{
    if (req->n_headers == SV_REQ_MAX_HEADERS)
        return;
    req->headers[req->n_headers].token = token;
    req->headers[req->n_headers].name = name;
    snprintf(req->headers[req->n_headers].value, sizeof(req->headers[0].value), "%s", value);
    req->n_headers++;
}

void sv_req_set_content_type(sv_req_t *req, const char *content_type)
{
    req->content_type = content_type;
}

static void finish(sv_req_t *req);

static void set_response(sv_req_t *req, int status, sv_buf_t *body)
{
    if (req->finished) {
        /* a handler bug: keep the first response */
        if (body != NULL)
            sv_buf_free(body);
        return;
    }
    req->finished = true;
    req->status = status;
    sv_buf_free(&req->body);
    if (body != NULL) {
        req->body = *body;
        sv_buf_init(body, body->secure);
    } else {
        sv_buf_init(&req->body, false);
    }
}

void sv_req_reply(sv_req_t *req, int status, sv_buf_t *body)
{
    set_response(req, status, body);
    finish(req);
}

void sv_req_reply_built(sv_req_t *req, int status, sv_buf_t *body)
{
    if (body->failed) {
        sv_buf_free(body);
        sv_req_fail_err(req, SV_ENOMEM);
        return;
    }
    sv_req_reply(req, status, body);
}

void sv_req_reply_secure(sv_req_t *req, int status, sv_buf_t *body)
{
    set_response(req, status, body);
    finish(req);
}

void sv_req_reply_stream(sv_req_t *req, int status, const char *content_type, const sv_stream_ops_t *ops, void *arg)
{
    if (req->finished || req->stream != NULL) {
        ops->free(arg); /* a handler bug: keep the first response */
        return;
    }
    req->stream = ops;
    req->stream_arg = arg;
    sv_req_add_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, content_type);
    sv_req_add_header(req, H2O_TOKEN_CACHE_CONTROL, NULL, "no-store");
    set_response(req, status, NULL);
    finish(req);
}

/* Drops a stream that will not run (the response became an error). */
static void drop_stream(sv_req_t *req)
{
    if (req->stream != NULL) {
        req->stream->free(req->stream_arg);
        req->stream = NULL;
        req->stream_arg = NULL;
    }
}

static void build_error(sv_req_t *req, sv_api_error_t e, const char *message, const char *details, sv_buf_t *out)
{
    const sv_api_error_info_t *info = sv_api_error_info(e);
    sv_jw_t jw;
    sv_jw_init(&jw, out);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "error");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "code");
    sv_jw_cstr(&jw, info->code);
    sv_jw_key(&jw, "message");
    sv_jw_cstr(&jw, message != NULL ? message : info->message);
    sv_jw_key(&jw, "request_id");
    sv_jw_cstr(&jw, req->request_id);
    sv_jw_key(&jw, "details");
    if (details != NULL)
        sv_jw_raw(&jw, details, strlen(details));
    else
        sv_jw_raw(&jw, "{}", 2);
    sv_jw_obj_end(&jw);
    sv_jw_obj_end(&jw);
}

/* sv_req_fail; log_5xx: log a server-side failure at error level (not when
 * a flood of them is summarised elsewhere) */
static void fail_with(sv_req_t *req, sv_api_error_t e, const char *message, const char *details, bool log_5xx)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    build_error(req, e, message, details, &body);
    const sv_api_error_info_t *info = sv_api_error_info(e);
    if (!req->finished)
        snprintf(req->audit.error_code, sizeof(req->audit.error_code), "%s", info->code);
    if (!req->finished && info->status >= 500 && log_5xx)
        sv_req_log(req, SV_LOG_ERROR, "request failed: %s: %s", info->code, message != NULL ? message : info->message);
    set_response(req, info->status, &body);
    finish(req);
}

void sv_req_fail(sv_req_t *req, sv_api_error_t e, const char *message, const char *details)
{
    fail_with(req, e, message, details, true);
}

void sv_req_fail_field(sv_req_t *req, sv_api_error_t e, const char *message, const char *field)
{
    sv_buf_t d;
    sv_buf_init(&d, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &d);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "field");
    sv_jw_cstr(&jw, field);
    sv_jw_obj_end(&jw);
    sv_buf_putc(&d, 0);
    sv_req_fail(req, e, message, d.failed ? NULL : (const char *)d.base);
    sv_buf_free(&d);
}

void sv_req_fail_err(sv_req_t *req, sv_err_t err)
{
    if (err == SV_ENOMEM) {
        /* memory for plaintext is capped (src/secmem.c): too many requests in
         * flight at once. Said once a second at most, so that a flood of them
         * leaves a readable log (the access log has every one) */
        static _Atomic int64_t last_log_s;
        int64_t now = sv_now_s(), prev = atomic_load(&last_log_s);
        if (now != prev && atomic_compare_exchange_strong(&last_log_s, &prev, now))
            sv_req_log(req, SV_LOG_WARN,
                       "overloaded: out of memory for a request (too many in flight at once?); answering 503 "
                       "(said once a second; the access log has every such request)");
        sv_req_add_header(req, H2O_TOKEN_RETRY_AFTER, NULL, "1");
        fail_with(req, SV_E_SERVICE_UNAVAILABLE,
                  "The server is overloaded (too many requests in flight); retry shortly.",
                  "{\"reason\":\"overloaded\"}", false);
        return;
    }
    sv_req_fail(req, sv_api_error_from_err(err), err == SV_EGONE ? SV_TENANT_DELETING_MSG : NULL, NULL);
}

/* ---- the caller's roles ---- */

bool sv_req_require_super_admin(sv_req_t *req, const char *message)
{
    if (sv_principal_is_super_admin(&req->principal))
        return true;
    sv_req_fail(req, SV_E_ACCESS_DENIED, message, "{\"reason\":\"super_admin_required\"}");
    return false;
}

bool sv_req_require_admin(sv_req_t *req, const char *tenant, const char *message)
{
    const sv_principal_t *p = &req->principal;
    if (sv_principal_is_super_admin(p))
        return true;
    if ((p->roles & SV_ROLE_TENANT_ADMIN) &&
        (tenant != NULL ? strcmp(p->tenant_id, tenant) == 0 : p->tenant_id[0] != 0))
        return true;
    if (p->tenant_id[0] == 0 && (p->roles & SV_ROLE_TENANT_ADMIN)) {
        /* a tenant admin of no tenant: what it lacks is the tenant (auth.c) */
        sv_req_fail(req, SV_E_ACCESS_DENIED,
                    "This token has no tenant_id claim: only a super admin acts in a tenant that it names.",
                    "{\"reason\":\"tenant_token_required\"}");
        return false;
    }
    sv_req_fail(req, SV_E_ACCESS_DENIED, message, "{\"reason\":\"admin_required\"}");
    return false;
}

/* ---- logs ---- */

/* Appends s to a text-format line with control characters replaced, so that
 * one entry stays one line whatever a client sent. */
static void text_field(sv_buf_t *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        sv_buf_putc(b, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i]);
}

void sv_req_log(sv_req_t *req, sv_log_level_t level, const char *fmt, ...)
{
    if (!sv_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char fields[160] = "";
    if (req->route != NULL)
        snprintf(fields, sizeof(fields), "\"route\":\"%s\"", req->route->pattern);
    sv_log_fields(level, req->request_id, fields, "%s", msg);
}

/* One access-log line per request (LOG_LEVEL info or lower), built straight
 * into the worker's buffer, which is flushed every tick or when large. */
static void write_access_log(sv_req_t *req, uint64_t duration_us)
{
    if (!sv_log_enabled(SV_LOG_INFO))
        return;
    sv_buf_t *b = sv_worker_log_buf(req->worker);
    char ts[21];
    sv_time_format(ts, sv_now_s());
    const char *method = req->h2o != NULL ? req->h2o->method.base : "-";
    size_t method_len = req->h2o != NULL ? (req->h2o->method.len > 16 ? 16 : req->h2o->method.len) : 1;
    const char *route = req->route != NULL ? req->route->pattern : "-";
    const char *identity = req->authenticated ? req->principal.identity_id : NULL;
    const char *tenant = req->tenant_id[0] ? req->tenant_id : NULL;
    if (sv_log_format() == SV_LOG_TEXT) {
        sv_buf_printf(b, "%s info  [", ts);
        text_field(b, req->request_id, strlen(req->request_id));
        sv_buf_puts(b, "] request method=");
        text_field(b, method, method_len);
        sv_buf_printf(b, " route=%s status=%d duration_us=%llu identity=", route, req->status,
                      (unsigned long long)duration_us);
        text_field(b, identity != NULL ? identity : "-", strlen(identity != NULL ? identity : "-"));
        sv_buf_puts(b, " tenant=");
        text_field(b, tenant != NULL ? tenant : "-", strlen(tenant != NULL ? tenant : "-"));
    } else {
        sv_jw_t jw;
        sv_jw_init(&jw, b);
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "time");
        sv_jw_cstr(&jw, ts);
        sv_jw_key(&jw, "level");
        sv_jw_cstr(&jw, "info");
        sv_jw_key(&jw, "msg");
        sv_jw_cstr(&jw, "request");
        sv_jw_key(&jw, "request_id");
        sv_jw_cstr(&jw, req->request_id);
        sv_jw_key(&jw, "method");
        sv_jw_str(&jw, method, method_len);
        sv_jw_key(&jw, "route");
        sv_jw_cstr(&jw, route);
        sv_jw_key(&jw, "status");
        sv_jw_int(&jw, req->status);
        sv_jw_key(&jw, "duration_us");
        sv_jw_uint(&jw, duration_us);
        sv_jw_key(&jw, "identity");
        sv_jw_cstr(&jw, identity);
        sv_jw_key(&jw, "tenant");
        sv_jw_cstr(&jw, tenant);
        sv_jw_obj_end(&jw);
    }
    sv_worker_log_done(req->worker);
}

/* ---- sending ---- */

/* A streamed body: the generator lives in h2o's pool, so it lasts exactly as
 * long as h2o's request; it counts as in flight so that a stopping worker
 * waits for it (the source ends early once the worker is stopping). */
typedef struct {
    h2o_generator_t super;
    const sv_stream_ops_t *ops;
    void *arg;
    sv_buf_t chunk; /* handed to h2o until the next proceed */
    sv_worker_t *worker;
    h2o_req_t *h2o;
    h2o_linklist_t link; /* in worker->streams */
    bool cut;
} stream_gen_t;

static void stream_proceed(h2o_generator_t *self, h2o_req_t *h)
{
    stream_gen_t *g = (stream_gen_t *)self;
    g->chunk.len = 0;
    bool done = false;
    bool ok = g->ops->next(g->arg, &g->chunk, g->worker->stopping, &done) && !g->chunk.failed;
    h2o_iovec_t iov = h2o_iovec_init(g->chunk.base, g->chunk.len);
    h2o_send(h, &iov, iov.len > 0 ? 1 : 0,
             !ok ? H2O_SEND_STATE_ERROR : done ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_stop(h2o_generator_t *self, h2o_req_t *h)
{
    /* the client went away: the pool's dispose frees the source */
}

static void stream_dispose(void *p)
{
    stream_gen_t *g = p;
    h2o_linklist_unlink(&g->link);
    g->ops->free(g->arg);
    sv_buf_free(&g->chunk);
    g->worker->inflight--;
}

/* Closes a connection that h2o still owns, from outside its callbacks: not
 * h2o_socket_close. A shut-down socket reads end-of-file and fails its
 * writes, so h2o's loop closes it. Whether it could. */
static bool shut_connection(h2o_conn_t *conn)
{
    h2o_socket_t *sock = conn->callbacks->get_socket != NULL ? conn->callbacks->get_socket(conn) : NULL;
    return sock != NULL && shutdown(h2o_socket_get_fd(sock), SHUT_RDWR) == 0;
}

unsigned sv_req_cut_streams(sv_worker_t *w)
{
    unsigned n = 0;
    for (h2o_linklist_t *l = w->streams.next; l != &w->streams; l = l->next) {
        stream_gen_t *g = H2O_STRUCT_FROM_MEMBER(stream_gen_t, link, l);
        if (g->cut)
            continue;
        g->cut = true;
        if (shut_connection(g->h2o->conn))
            n++;
    }
    return n;
}

static void start_stream(sv_req_t *req, h2o_req_t *h)
{
    stream_gen_t *g = h2o_mem_alloc_shared(&h->pool, sizeof(*g), stream_dispose);
    g->super.proceed = stream_proceed;
    g->super.stop = stream_stop;
    g->ops = req->stream;
    g->arg = req->stream_arg;
    g->worker = req->worker;
    g->h2o = h;
    g->cut = false;
    g->link = (h2o_linklist_t){NULL, NULL};
    h2o_linklist_insert(&req->worker->streams, &g->link);
    sv_buf_init(&g->chunk, false);
    req->stream = NULL; /* the generator owns it now */
    req->stream_arg = NULL;
    req->worker->inflight++;
    h2o_start_response(h, &g->super);
    stream_proceed(&g->super, h);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return status < 400 ? "OK" : "Error";
    }
}

static void send_response(sv_req_t *req)
{
    h2o_req_t *h = req->h2o;
    if (req->worker->answering == req)
        req->worker->answering = NULL;
    uint64_t duration_us = sv_mono_us() - req->start_us;
    sv_http_metrics_record(req->worker->metrics, req->route, req->status, duration_us);
    write_access_log(req, duration_us);
    if (h == NULL) {
        sv_req_free(req);
        return;
    }
    h->res.status = req->status;
    h->res.reason = reason_phrase(req->status);
    if (req->worker->stopping)
        h->http1_is_persistent = 0; /* HTTP/1: close after this response while stopping */
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, req->request_id,
                          strlen(req->request_id));
    for (unsigned i = 0; i < req->n_headers; i++) {
        const char *v = h2o_strdup(&h->pool, req->headers[i].value, SIZE_MAX).base;
        if (req->headers[i].token != NULL)
            h2o_add_header(&h->pool, &h->res.headers, req->headers[i].token, NULL, v, strlen(v));
        else
            h2o_add_header_by_str(&h->pool, &h->res.headers, req->headers[i].name, strlen(req->headers[i].name), 0,
                                  NULL, v, strlen(v));
    }
    if (req->stream != NULL) {
        start_stream(req, h);
        sv_req_free(req);
        return;
    }
    h2o_iovec_t iov = h2o_iovec_init(NULL, 0);
    if (req->body.len > 0) {
        const char *ct = req->content_type != NULL ? req->content_type : "application/json";
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
        pool_body_t *pb = h2o_mem_alloc_shared(&h->pool, sizeof(*pb), pool_body_dispose);
        pb->worker = req->worker;
        pb->worker->sending++;
        pb->secure = req->body.secure;
        pb->cap = req->body.cap;
        size_t len;
        pb->mem = sv_buf_detach(&req->body, &len);
        iov = h2o_iovec_init(pb->mem, len);
    }
    /* RFC 9110 8.6: a 204 has no Content-Length (h2o sends neither it nor chunking then) */
    h->res.content_length = req->status == 204 && iov.len == 0 ? SIZE_MAX : iov.len;
    static h2o_generator_t generator = {NULL, NULL};
    h2o_start_response(h, &generator);
    h2o_send(h, &iov, iov.len > 0 ? 1 : 0, 1);
    sv_req_free(req);
}

/* ---- audit ---- */

static void fill_audit_identity(sv_req_t *req)
{
    sv_audit_entry_t *a = &req->audit;
    memcpy(a->request_id, req->request_id, sizeof(a->request_id));
    /* no tenant resolved (say, the token named another tenant): the token's
     * own, so that its tenant's admins see what it tried */
    snprintf(a->tenant_id, sizeof(a->tenant_id), "%s",
             req->tenant_id[0] != 0 || !req->authenticated ? req->tenant_id : req->principal.tenant_id);
    snprintf(a->identity_id, sizeof(a->identity_id), "%s", req->authenticated ? req->principal.identity_id : "");
    if (a->path[0] == 0 && req->route != NULL && req->route->refused_audit != NULL)
        req->route->refused_audit(req); /* refused before its handler named it */
    if (a->action[0] == 0)
        snprintf(a->action, sizeof(a->action), "%s", req->route != NULL && req->route->action ? req->route->action
                                                                                                : "http_request");
    memcpy(a->ip, req->client_ip_text, sizeof(a->ip));
    size_t ual = 0;
    const char *ua = sv_req_header(req, "user-agent", &ual);
    if (ua != NULL) {
        if (ual >= sizeof(a->user_agent))
            ual = sizeof(a->user_agent) - 1;
        memcpy(a->user_agent, ua, ual);
        a->user_agent[ual] = 0;
    }
}

static bool audited(const sv_req_t *req)
{
    return req->app->audit != NULL && !(req->route != NULL && (req->route->flags & SV_ROUTE_NO_AUDIT));
}

/* An audit-only unit with AUDIT_DURABILITY=async: the writer owns a copy and
 * frees it; the response goes out at once. When its commit fails, the
 * entry is lost (counted and logged) and the server fails closed: until a
 * commit succeeds again, requests wait for their entry's commit as with
 * sync, so that nothing more is answered unrecorded. */
typedef struct {
    sv_unit_t unit;
    sv_audit_entry_t entry;
    sv_app_t *app;
    bool async_mode; /* AUDIT_DURABILITY=async; else a request of a connection being closed */
} async_audit_t;

/* Runs on the writer thread. */
static void async_audit_complete(sv_unit_t *u)
{
    async_audit_t *aa = u->arg;
    if (u->result != SV_OK && !aa->async_mode) {
        /* with sync, only a request nobody waits for comes here: say it, but
         * the async mode's count and fail-closed switch are not its business */
        sv_log_error("audit: the entry of request %s, on a connection closed for holding too many requests, could "
                     "not be committed: %s",
                     aa->entry.request_id, sv_strerror(u->result));
        free(aa);
        return;
    }
    if (u->result != SV_OK) {
        atomic_fetch_add(&aa->app->audit_lost, 1);
        if (!atomic_exchange(&aa->app->audit_async_failing, true))
            sv_log_error("audit: an entry of AUDIT_DURABILITY=async could not be committed (%s); its response had "
                         "gone out. Until a commit succeeds, requests wait for their entry's commit (as with sync)",
                         sv_strerror(u->result));
    }
    free(aa);
}

/* After the commit of a request's entry that waited because async commits
 * were failing (req->audit_probe). Only such a request may say that commits
 * succeed again: it was queued after the failure was seen, so its batch came
 * after the failed one; another unit's older success proves nothing. */
static void async_audit_recovered(sv_req_t *req)
{
    if (req->unit.result == SV_OK && atomic_load(&req->app->audit_async_failing) &&
        atomic_exchange(&req->app->audit_async_failing, false))
        sv_log_info("audit: entries are committed again; AUDIT_DURABILITY=async answers without waiting again");
}

/* Ends a request whose response is built: audits it, then sends. A write's
 * entry already travelled with its unit, so its response goes out at once. */
static void finish(sv_req_t *req)
{
    if (req->has_op) {
        send_response(req);
        return;
    }
    sv_audit_entry_t *a = &req->audit;
    a->status = req->status;
    a->success = req->status < 400;
    if (a->success)
        a->error_code[0] = 0;
    if (!audited(req)) {
        send_response(req);
        return;
    }
    fill_audit_identity(req);
    sv_writer_t *w = req->app->writer;
    /* a request of a connection being closed does not wait either: nobody reads its answer */
    bool async_mode = req->app->cfg->audit_durability == SV_AUDIT_ASYNC;
    bool async = async_mode || req->conn_over_;
    if (async && (!async_mode || !atomic_load(&req->app->audit_async_failing))) {
        async_audit_t *aa = malloc(sizeof(*aa));
        if (aa != NULL) {
            memset(&aa->unit, 0, sizeof(aa->unit));
            aa->entry = *a;
            aa->app = req->app;
            aa->async_mode = async_mode;
            aa->unit.audit = &aa->entry;
            aa->unit.arg = aa;
            aa->unit.complete = async_audit_complete;
            if (sv_writer_submit(w, &aa->unit) == SV_OK) {
                send_response(req);
                return;
            }
            free(aa);
        }
        /* could not queue: fail closed */
        drop_stream(req);
        req->finished = false;
        req->n_headers = 0;
        sv_buf_free(&req->body);
        sv_buf_t body;
        sv_buf_init(&body, false);
        build_error(req, SV_E_AUDIT_UNAVAILABLE, NULL, NULL, &body);
        set_response(req, 503, &body);
        send_response(req);
        return;
    }
    req->audit_probe = async_mode; /* async, yet waiting: commits were failing */
    memset(&req->unit, 0, sizeof(req->unit));
    req->unit.audit = a;
    req->unit.arg = req;
    req->unit.notify = &req->worker->notify;
    if (!submit_unit(req)) {
        req->unit.result = SV_ESHUTDOWN;
        sv_req_unit_done(req);
    }
}

/* Runs on the writer thread: the handler's change, then the outcome that the
 * audit hook records right after. */
static sv_err_t unit_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    sv_req_t *req = u->arg;
    const sv_req_op_t *op = &req->op;
    sv_txn_t *t = sv_wtxn_txn(tx);
    sv_err_t r = op->owner != NULL    ? sv_keyring_owner_writable(t, op->owner)
                 : op->tenant != NULL ? sv_keyring_tenant_writable(t, op->tenant)
                                      : SV_OK;
    if (r == SV_OK)
        r = op->apply(tx, op->arg);
    sv_audit_entry_t *a = &req->audit;
    if (r == SV_OK) {
        req->op_status = req->op.success_status != NULL ? req->op.success_status(req->op.arg) : 200;
        a->success = true;
        a->status = req->op_status;
        a->error_code[0] = 0;
    } else if (r != SV_EMAPFULL) {
        req->op_error = req->op.map_error != NULL ? req->op.map_error(r, req->op.arg) : sv_api_error_from_err(r);
        const sv_api_error_info_t *info = sv_api_error_info(req->op_error);
        a->success = false;
        a->status = info->status;
        snprintf(a->error_code, sizeof(a->error_code), "%s", info->code);
    }
    return r;
}

void sv_req_submit(sv_req_t *req, const sv_req_op_t *op)
{
    if (req->finished || req->has_op)
        return;
    req->op = *op;
    req->has_op = true;
    fill_audit_identity(req);
    memset(&req->unit, 0, sizeof(req->unit));
    req->unit.apply = unit_apply;
    req->unit.audit = audited(req) ? &req->audit : NULL;
    req->unit.arg = req;
    req->unit.notify = &req->worker->notify;
    if (!submit_unit(req)) {
        req->has_op = false;
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "The server is shutting down.", NULL);
    }
}

void sv_req_unit_done(sv_req_t *req)
{
    unpark(req);
    sv_err_t result = req->unit.result;
    if (req->draining) {
        req->draining = false;
        if (result == SV_OK) {
            req->route->handler(req);
        } else {
            /* the log cannot be read whole: say so rather than answer without the latest entries */
            sv_req_log(req, SV_LOG_ERROR, "the audit journal could not be moved to the store: %s",
                       sv_strerror(result));
            sv_req_fail(req, SV_E_AUDIT_UNAVAILABLE, NULL, NULL);
        }
        return;
    }
    if (req->audit_probe)
        async_audit_recovered(req);
    if (!req->has_op) {
        /* an audit-only unit: the response is already built. When the entry
         * cannot be committed the answer becomes audit_unavailable, unless it
         * already says that storage failed (a first write's key unit, say):
         * the disk is the cause either way, and nothing was carried out */
        bool storage_failed = strcmp(req->audit.error_code, sv_api_error_info(SV_E_INSUFFICIENT_STORAGE)->code) == 0 ||
                              strcmp(req->audit.error_code, sv_api_error_info(SV_E_STORAGE_UNAVAILABLE)->code) == 0;
        if (result != SV_OK && storage_failed) {
            sv_req_log(req, SV_LOG_ERROR, "the audit entry of a failed request could not be written either: %s",
                       sv_strerror(result));
        } else if (result != SV_OK) {
            sv_req_log(req, SV_LOG_ERROR, "request failed: audit_unavailable: the audit entry could not be written: %s",
                       sv_strerror(result));
            sv_buf_free(&req->body);
            drop_stream(req);
            req->n_headers = 0;
            sv_buf_t body;
            sv_buf_init(&body, false);
            build_error(req, SV_E_AUDIT_UNAVAILABLE, NULL, NULL, &body);
            req->finished = false;
            set_response(req, 503, &body);
        }
        send_response(req);
        return;
    }
    /* a write: its audit entry went with it (or nothing did) */
    if (result == SV_EAUDIT) {
        sv_req_fail(req, SV_E_AUDIT_UNAVAILABLE, NULL, NULL);
        return;
    }
    if (result == SV_ENOSPC || result == SV_EIO || result == SV_EMAPFULL || result == SV_ESHUTDOWN ||
        result == SV_ECORRUPT || result == SV_EAGAIN) {
        /* storage failed (the commit, or the batch): nothing of the unit exists */
        sv_req_fail_err(req, result);
        return;
    }
    /* done answers, and answering frees req: only the worker is left to ask
     * whether it did (send_response clears answering) */
    sv_worker_t *w = req->worker;
    w->answering = req;
    req->op.done(req, result, req->op.arg);
    if (w->answering == req) {
        w->answering = NULL;
        sv_req_fail(req, SV_E_INTERNAL, "The handler produced no response.", NULL);
    }
}

/* ---- requests in flight per HTTP/2 connection ----
 *
 * h2o 2.2 bounds an HTTP/2 connection at 100 open streams, and a stream the
 * client resets (RST_STREAM) leaves that count at once; ScaiVault still
 * holds the request until its audit entry commits. A client that opens and
 * resets streams in a loop ("rapid reset", CVE-2023-44487) would make the
 * server hold requests without bound, faster than the writer commits them.
 * So the requests held per connection are counted, and a connection past
 * CONN_MAX_INFLIGHT is shut down (shut_connection): its socket
 * reads end-of-file, h2o closes it, and the requests already held finish.
 * The frames h2o had already read go on arriving as requests: each is
 * answered 503 at once (to nobody) and audited without waiting for its
 * commit, the writer owning a copy of its entry, so that it is not held. */

#define CONN_MAX_INFLIGHT 256

struct sv_conn_load {
    uint64_t id;
    unsigned n;
    bool cut; /* shut down (and said) once */
    struct sv_conn_load *next;
};

/* Adds delta to the count of connection id; returns its entry while it has
 * requests (NULL once it has none, or when it could not be counted). */
static struct sv_conn_load *conn_load_add(sv_worker_t *w, uint64_t id, int delta)
{
    struct sv_conn_load **pp = &w->conn_loads[id % SV_ARRAY_LEN(w->conn_loads)], *c;
    for (c = *pp; c != NULL && c->id != id; pp = &c->next, c = c->next)
        ;
    if (c == NULL) {
        if (delta < 0 || (c = malloc(sizeof(*c))) == NULL)
            return NULL; /* not counted (out of memory): never refused for it */
        *c = (struct sv_conn_load){.id = id, .next = NULL};
        *pp = c;
    }
    c->n = (unsigned)((int)c->n + delta);
    if (c->n == 0) {
        *pp = c->next;
        free(c);
        return NULL;
    }
    return c;
}

/* Counts req against its HTTP/2 connection; shuts the connection down when it
 * holds too many. */
static void conn_load_take(sv_req_t *req, h2o_req_t *h)
{
    if (h->version < 0x200)
        return; /* HTTP/1: one request at a time per connection */
    req->conn_id_ = h->conn->id;
    struct sv_conn_load *c = conn_load_add(req->worker, req->conn_id_, 1);
    req->conn_over_ = c != NULL && (c->cut || c->n > CONN_MAX_INFLIGHT);
    if (!req->conn_over_ || c->cut)
        return;
    c->cut = true; /* once per connection: what it sent meanwhile is answered without a word */
    shut_connection(h->conn);
    sv_req_log(req, SV_LOG_WARN,
               "closing an HTTP/2 connection that holds %u requests in flight (streams reset faster than they are "
               "answered?)",
               c->n);
}

/* ---- the pipeline ---- */

static sv_req_t *req_alloc(sv_worker_t *w)
{
    sv_req_t *req = w->free_reqs;
    if (req != NULL) {
        w->free_reqs = req->next_free;
        w->n_free_reqs--;
    } else {
        req = malloc(sizeof(*req));
        if (req == NULL)
            return NULL;
    }
    /* clear the small fixed part; the big buffers are reset field by field */
    memset(req, 0, offsetof(sv_req_t, principal));
    req->principal.identity_id[0] = 0;
    req->principal.bootstrap = false;
    req->tenant_id[0] = 0;
    req->status = 0;
    sv_buf_init(&req->body, false);
    req->n_headers = 0;
    req->content_type = NULL;
    req->finished = req->has_op = req->audit_probe = req->draining = false;
    memset(&req->audit, 0, offsetof(sv_audit_entry_t, user_agent) + 1);
    req->op_result = SV_OK;
    req->op_status = 0;
    req->handler_data = NULL;
    req->handler_data_free = NULL;
    req->stream = NULL;
    req->stream_arg = NULL;
    req->next_free = NULL;
    return req;
}

static pool_link_t *req_link(sv_req_t *req)
{
    return (pool_link_t *)req->pool_link_;
}

void sv_req_free(sv_req_t *req)
{
    sv_worker_t *w = req->worker;
    if (req->h2o != NULL && req_link(req) != NULL)
        req_link(req)->req = NULL;
    if (req->handler_data_free != NULL)
        req->handler_data_free(req->handler_data);
    drop_stream(req);
    sv_buf_free(&req->body);
    if (req->path != req->path_inline)
        free(req->path);
    if (req->conn_id_ != 0)
        conn_load_add(w, req->conn_id_, -1);
    w->inflight--;
#if FREE_LIST_MAX > 0
    if (w->n_free_reqs < FREE_LIST_MAX) {
        req->next_free = w->free_reqs;
        w->free_reqs = req;
        w->n_free_reqs++;
        return;
    }
#endif
    free(req);
}

static bool is_trusted(const sv_cidr_t *trusted, unsigned n, const sv_ip_t *ip)
{
    for (unsigned i = 0; i < n; i++)
        if (sv_cidr_contains(&trusted[i], ip))
            return true;
    return false;
}

void sv_http_client_ip(const sv_ip_t *peer, const h2o_iovec_t *xff, size_t n_xff, const sv_cidr_t *trusted,
                       unsigned n_trusted, sv_ip_t *out)
{
    *out = *peer;
    if (!is_trusted(trusted, n_trusted, peer))
        return;
    /* the last header holds the nearest proxy's entries: walk from the end,
     * each header from its right, to the first address that is no trusted proxy */
    for (size_t h = n_xff; h > 0; h--) {
        const char *v = xff[h - 1].base;
        size_t end = xff[h - 1].len;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t s = start, e = end;
            while (s < e && isspace((unsigned char)v[s]))
                s++;
            while (e > s && isspace((unsigned char)v[e - 1]))
                e--;
            sv_ip_t ip;
            if (sv_ip_parse(v + s, e - s, &ip) != SV_OK)
                return; /* malformed: keep the last address we could trust */
            *out = ip;
            if (!is_trusted(trusted, n_trusted, &ip))
                return;
            if (start == 0)
                break;
            end = start - 1;
        }
    }
}

static void take_client_ip(sv_req_t *req)
{
    struct sockaddr_storage ss;
    sv_ip_t peer;
    socklen_t sl = req->h2o->conn->callbacks->get_peername(req->h2o->conn, (struct sockaddr *)&ss);
    if (sl == 0 || sv_ip_from_sockaddr((struct sockaddr *)&ss, &peer) != SV_OK)
        memset(&peer, 0, sizeof(peer));
    const sv_config_t *cfg = req->app->cfg;
    h2o_iovec_t xff[8];
    size_t n_xff = 0;
    if (cfg->n_trusted_proxies > 0) {
        ssize_t i = -1;
        while ((i = h2o_find_header_by_str(&req->h2o->headers, H2O_STRLIT("x-forwarded-for"), i)) >= 0) {
            if (n_xff == SV_ARRAY_LEN(xff)) {
                n_xff = 0; /* more than 8 headers: believe none of them */
                break;
            }
            xff[n_xff++] = req->h2o->headers.entries[i].value;
        }
    }
    sv_http_client_ip(&peer, xff, n_xff, cfg->trusted_proxies, cfg->n_trusted_proxies, &req->client_ip);
    sv_ip_format(&req->client_ip, req->client_ip_text);
}

int sv_req_handle(sv_worker_t *w, h2o_req_t *h)
{
    sv_req_t *req = req_alloc(w);
    if (req == NULL)
        return -1; /* h2o answers 404; only when out of memory */
    w->inflight++;
    w->last_activity_us = sv_mono_us();
    req->h2o = h;
    req->worker = w;
    req->app = w->app;
    req->start_us = w->last_activity_us;
    pool_link_t *link = h2o_mem_alloc_shared(&h->pool, sizeof(*link), pool_link_dispose);
    link->req = req;
    req->pool_link_ = link;

    ssize_t ri = h2o_find_header_by_str(&h->headers, H2O_STRLIT("x-request-id"), -1);
    if (ri >= 0 && valid_request_id(h->headers.entries[ri].value.base, h->headers.entries[ri].value.len)) {
        memcpy(req->request_id, h->headers.entries[ri].value.base, h->headers.entries[ri].value.len);
        req->request_id[h->headers.entries[ri].value.len] = 0;
    } else {
        new_request_id(req->request_id);
    }
    conn_load_take(req, h); /* after the request id: its warning names the request */
    take_client_ip(req);

    /* decode the path ourselves: h2o's normalised path would hide "." and ".." segments */
    h2o_iovec_t raw = h->path;
    const char *qm = memchr(raw.base, '?', raw.len);
    size_t plen = qm ? (size_t)(qm - raw.base) : raw.len;
    if (qm != NULL) {
        req->query = qm + 1;
        req->query_len = raw.len - plen - 1;
    }
    req->path = plen < sizeof(req->path_inline) ? req->path_inline : malloc(plen + 1);
    long dl = req->path != NULL ? pct_decode(raw.base, plen, req->path, plen + 1, false) : -1;
    if (dl < 0) {
        if (req->path == NULL)
            req->path = req->path_inline;
        req->path[0] = 0;
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "The URL path has a bad percent-escape or a NUL byte.", "path");
        return 0;
    }
    req->path_len = (size_t)dl;
    if (req->conn_over_) {
        /* its connection is being closed: no handler, and no wait for the entry (nobody reads the answer) */
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "This connection holds too many requests in flight.",
                    "{\"reason\":\"overloaded\"}");
        return 0;
    }
    if (h->headers.size > SV_REQ_MAX_HEADER_FIELDS) {
        /* HTTP/1.1's parser stops at 100 fields (a plain 400 from h2o); HPACK has no such bound */
        sv_req_fail(req, SV_E_INVALID_REQUEST, "The request has more than 100 header fields.", NULL);
        return 0;
    }

    sv_route_match_t m;
    unsigned enabled = (req->app->cfg->dev ? SV_ROUTE_DEV : 0) | (req->app->cfg->test_faults ? SV_ROUTE_TEST : 0);
    sv_router_match(w->router, h->method.base, h->method.len, req->path, req->path_len, enabled, &m);
    if (m.route == NULL) {
        if (m.allow[0] != 0) {
            sv_req_add_header(req, H2O_TOKEN_ALLOW, NULL, m.allow);
            char details[160];
            snprintf(details, sizeof(details), "{\"allow\":\"%s\"}", m.allow);
            sv_req_fail(req, SV_E_METHOD_NOT_ALLOWED, NULL, details);
        } else {
            sv_req_fail(req, SV_E_NOT_FOUND, "No such route.", NULL);
        }
        return 0;
    }
    req->route = m.route;
    memcpy(req->params, m.params, sizeof(m.params));
    req->n_params = m.n_params;

    if (m.route->flags & SV_ROUTE_PUBLIC) {
        sv_req_auth_done(req, true, SV_E_COUNT_, NULL);
        return 0;
    }
    sv_http_authenticate(req);
    return 0;
}

/* A unit with nothing to change: its LMDB batch moves the audit journal's
 * entries into the store first (src/audit_journal.h). */
static sv_err_t journal_barrier_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    (void)tx;
    (void)u;
    return SV_OK;
}

/* Runs the route's handler once every entry answered so far can be read from
 * the store (sv_req_unit_done). */
static void run_after_journal(sv_req_t *req)
{
    memset(&req->unit, 0, sizeof(req->unit));
    req->unit.apply = journal_barrier_apply;
    req->unit.arg = req;
    req->unit.notify = &req->worker->notify;
    req->draining = true;
    if (!submit_unit(req)) {
        req->draining = false;
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "The server is shutting down.", NULL);
    }
}

void sv_req_auth_done(sv_req_t *req, bool ok, sv_api_error_t e, const char *message)
{
    const sv_route_t *rt = req->route;
    if (!ok) {
        /* RFC 6750 section 3: no error code when no token was sent; invalid_token
         * with a short description otherwise */
        if (e == SV_E_AUTHENTICATION_REQUIRED)
            sv_req_add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, NULL, "Bearer realm=\"scaivault\"");
        else if (e == SV_E_TOKEN_EXPIRED)
            sv_req_add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                              "Bearer realm=\"scaivault\", error=\"invalid_token\", "
                              "error_description=\"The access token expired\"");
        else if (e == SV_E_TOKEN_REVOKED)
            sv_req_add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                              "Bearer realm=\"scaivault\", error=\"invalid_token\", "
                              "error_description=\"The access token was revoked\"");
        else if (e == SV_E_TOKEN_INVALID)
            sv_req_add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                              "Bearer realm=\"scaivault\", error=\"invalid_token\", "
                              "error_description=\"The access token is invalid\"");
        sv_req_fail(req, e, message, NULL);
        return;
    }
    if (!(rt->flags & SV_ROUTE_PUBLIC)) {
        req->authenticated = true;
        if (!sv_http_resolve_tenant(req) || !sv_http_rate_limit(req) || !sv_http_identity_active(req))
            return;
        if (rt->scope != 0 && (req->principal.scopes & rt->scope) == 0 && !req->principal.bootstrap) {
            char details[96], www[120];
            snprintf(details, sizeof(details), "{\"required_scope\":\"%s\"}", sv_scope_name(rt->scope));
            snprintf(www, sizeof(www), "Bearer realm=\"scaivault\", error=\"insufficient_scope\", scope=\"%s\"",
                     sv_scope_name(rt->scope));
            sv_req_add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, NULL, www);
            sv_req_fail(req, SV_E_INSUFFICIENT_SCOPE, NULL, details);
            return;
        }
    }
    if ((rt->flags & SV_ROUTE_AUDIT_FRESH) && sv_audit_pending(req->app->audit) > 0) {
        run_after_journal(req);
        return;
    }
    rt->handler(req); /* an asynchronous handler keeps the request and ends it later */
}
