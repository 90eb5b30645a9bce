/*
 * request.h - the request context and its pipeline.
 *
 * Every request runs the same steps, in order:
 *   route → authenticate → tenant → rate limit → scope → handler → audit → send
 * A handler ends the request with exactly one of sv_req_reply(),
 * sv_req_reply_secure(), sv_req_fail*() or sv_req_submit(). None of them sends
 * at once: the response is held until the request's audit entry has been
 * committed (AUDIT_DURABILITY=sync) or queued (async); a write operation and
 * its audit entry are one writer unit. Only then are the bytes sent.
 *
 * Lifetime: sv_req_t is heap memory owned by the pipeline, not h2o's pool, so
 * it survives a client that goes away while a unit is in the writer; h2o is
 * then NULL and nothing is sent. All of a request's steps run on its worker's
 * thread, except a unit's apply, which runs on the writer thread while the
 * worker does not touch the request.
 */
#ifndef SV_HTTP_REQUEST_H
#define SV_HTTP_REQUEST_H

#include <h2o.h>

#include "http/error.h"
#include "http/router.h"
#include "src/app.h"
#include "src/audit.h"
#include "src/buf.h"
#include "src/cidr.h"
#include "src/json.h"
#include "src/keyring.h"
#include "src/log.h"
#include "src/principal.h"

typedef struct sv_worker sv_worker_t;

#define SV_REQ_MAX_HEADERS 8


/** A streamed response body (GET /v1/audit/export): pulled in chunks on the
 * request's worker as the client takes the bytes, so the whole body never
 * sits in memory. */
typedef struct {
    /* Appends the next chunk to out (plain memory; empty only at the end)
     * and sets *done after the last one. stopping: the server is shutting
     * down, end now. Must not block: read in bounded slices, and end any read
     * snapshot before returning. Returns false on an error: the response is
     * cut off. */
    bool (*next)(void *arg, sv_buf_t *out, bool stopping, bool *done);
    /* frees arg; called once, whether or not the stream ran */
    void (*free)(void *arg);
} sv_stream_ops_t;

/** A handler's description of a write: run on the writer thread, in one unit
 * with the request's audit entry. */
typedef struct {
    sv_err_t (*apply)(sv_wtxn_t *tx, void *arg); /* the change; see sv_unit_apply_fn */
    void *arg;
    /* maps a failed apply to its API error; NULL: sv_api_error_from_err */
    sv_api_error_t (*map_error)(sv_err_t err, void *arg);
    /* the success status (e.g. 201 vs 200) once apply succeeded; NULL: 200 */
    int (*success_status)(void *arg);
    /* runs on the worker after the commit; builds the response with
     * sv_req_reply*() or sv_req_fail*(). result is apply's error or the commit's. */
    void (*done)(sv_req_t *req, sv_err_t result, void *arg);
    /* whose data this writes (set one, or neither): while that owner is being
     * deleted the unit fails with SV_EGONE (409 conflict) instead of running
     * apply, checked in the unit's own transaction. Must live as long as arg. */
    const sv_owner_t *owner;
    const char *tenant;
} sv_req_op_t;

/* The most header fields a request may have (HTTP/1.1's parser has the same bound). */
#define SV_REQ_MAX_HEADER_FIELDS 100

struct sv_req {
    h2o_req_t *h2o;        /* NULL once the client has gone */
    h2o_socket_t *parked;  /* its HTTP/1.1 socket, left polled while it waits for the writer (request.c) */
    sv_worker_t *worker;
    sv_app_t *app;
    const sv_route_t *route;
    sv_route_param_t params[SV_ROUTE_MAX_PARAMS];
    unsigned n_params;
    char request_id[SV_REQUEST_ID_MAX + 1];
    uint64_t start_us;     /* monotonic */
    sv_ip_t client_ip;
    char client_ip_text[46];

    void *pool_link_;      /* private: notices h2o disposing the request */
    uint64_t conn_id_;     /* private: its HTTP/2 connection (h2o_conn_t.id), 0 for HTTP/1 */
    bool conn_over_;       /* private: that connection holds too many requests and is being closed */

    /* the decoded path (no query) and the raw query string */
    char *path;
    size_t path_len;
    const char *query;
    size_t query_len;

    /* authentication */
    bool authenticated;
    sv_principal_t principal;
    char tenant_id[SV_TENANT_MAX]; /* the tenant the request acts in; "" when none */

    /* the response, held until the audit entry is safe */
    int status;
    sv_buf_t body;
    struct {
        const h2o_token_t *token;
        const char *name; /* when token is NULL */
        char value[128];
    } headers[SV_REQ_MAX_HEADERS];
    unsigned n_headers;
    const char *content_type; /* static; NULL: application/json */
    bool finished;         /* reply/fail was called */
    bool audit_probe;      /* AUDIT_DURABILITY=async, but waiting for its entry's commit because
                            * async commits were failing: its success ends that (request.c) */
    bool draining;         /* waiting for the audit journal to reach the store before its handler runs */

    /* audit */
    sv_audit_entry_t audit;

    /* the writer unit: the audit entry, plus a handler's op */
    sv_unit_t unit;
    sv_req_op_t op;
    bool has_op;
    sv_err_t op_result;
    int op_status;
    sv_api_error_t op_error;

    /* a streamed body (sv_req_reply_stream), started once the audit entry is safe */
    const sv_stream_ops_t *stream;
    void *stream_arg;

    /* per-route scratch for handlers (freed with the request) */
    void *handler_data;
    void (*handler_data_free)(void *data);

    sv_req_t *next_free; /* worker's free list */
    char path_inline[512];
};

/* ---- inputs ---- */

/** Path parameter by name, or NULL. *len gets its length. Points into req->path. */
const char *sv_req_param(sv_req_t *req, const char *name, size_t *len);
/** Copies path parameter name into out (cap bytes, NUL-terminated) and
 * records it as the audit path, when it is shorter than cap and valid
 * accepts it. Otherwise fails the request (400 invalid_request with message,
 * details.field = name) and returns false. */
bool sv_req_param_copy(sv_req_t *req, const char *name, bool (*valid)(const char *s, size_t len), char *out, size_t cap,
                       const char *message);
/** Query parameter by name, percent-decoded into out (cap bytes, NUL-terminated).
 * Returns false when absent; SV_EINVAL-worthy input (bad escape, too long)
 * returns false and sets *bad when bad != NULL. */
bool sv_req_query(sv_req_t *req, const char *name, char *out, size_t cap, bool *bad);
/** Reads the list parameter ?limit= (API.md: 1 to 1000; def when absent)
 * into *out. Returns false after failing the request (400 invalid_request,
 * details.field "limit") when it is malformed or out of range. */
bool sv_req_query_limit(sv_req_t *req, unsigned def, unsigned *out);
/** Decodes text, the cursor of a listing ordered by name (the unpadded
 * base64url of the last name of the previous page, as
 * sv_http_name_cursor_write makes it), into out (cap bytes, NUL-terminated).
 * Returns false when it does not decode, does not fit, or valid rejects the
 * name. Pure. */
bool sv_http_name_cursor_parse(const char *text, bool (*valid)(const char *s, size_t len), char *out, size_t cap);
/** Writes the cursor of the page that ends at name (shorter than SV_ID_MAX)
 * as a JSON string. */
void sv_http_name_cursor_write(sv_jw_t *jw, const char *name);
/** Starts a list response in body (a plain buffer): `{"items": [`. */
void sv_http_page_begin(sv_buf_t *body, sv_jw_t *jw);
/** Ends a list ordered by name: `], "next_cursor": ...}`, the name cursor of
 * last when more, else null. */
void sv_http_page_end_names(sv_jw_t *jw, bool more, const char *last);
/** The value of request header name (lower-case), or NULL. */
const char *sv_req_header(sv_req_t *req, const char *name, size_t *len);
/** Whether the request carries header name (lower case) more than once. */
bool sv_req_header_repeated(sv_req_t *req, const char *name);
/** Parses the JSON body. On failure it has already failed the request (413
 * payload_too_large or 400 invalid_request with details.field) and returns
 * NULL. The doc belongs to the caller (sv_json_doc_free). Secure routes
 * (SV_ROUTE_SECURE_BODY) parse into wiped memory and wipe the raw body. */
sv_json_doc_t *sv_req_json_body(sv_req_t *req);
/** Checks that every member of the JSON object obj has a key in known (a
 * NULL-terminated list). Otherwise fails the request (400 invalid_request
 * with message; details.field is the first unknown key, after "prefix." when
 * prefix is not NULL) and returns false. */
bool sv_req_json_known_members(sv_req_t *req, const sv_json_t *obj, const char *const *known, const char *message,
                               const char *prefix);
/** The request's store reader (the worker's). */
struct sv_store_reader *sv_req_reader(sv_req_t *req);
/** Begins a read snapshot on the request's reader (sv_store_read_begin).
 * On an error it has already failed the request (sv_req_fail_err) and
 * returns false. *tx is valid until sv_store_read_end(sv_req_reader(req)),
 * which the caller must call before the request goes back to the loop. */
bool sv_req_read_begin(sv_req_t *req, sv_txn_t **tx);

/* ---- the caller's roles ---- */

/** True when the request's principal is a super admin. Otherwise fails the
 * request (403 access_denied with message, details.reason
 * "super_admin_required") and returns false. */
bool sv_req_require_super_admin(sv_req_t *req, const char *message);
/** True when the request's principal is a super admin or a tenant admin of
 * tenant (when tenant is NULL: of the tenant its token names, which must not
 * be empty). Otherwise fails the request (403 access_denied with message,
 * details.reason "admin_required") and returns false. */
bool sv_req_require_admin(sv_req_t *req, const char *tenant, const char *message);

/* ---- outputs ---- */

/** Sets the path recorded in the audit entry (a secret path, a policy name). */
void sv_req_audit_path(sv_req_t *req, const char *path, size_t len);
/** Overrides the audit action of the route. action must be static. */
void sv_req_audit_action(sv_req_t *req, const char *action);
/** Adds a response header (value is copied, at most 127 bytes). */
void sv_req_add_header(sv_req_t *req, const h2o_token_t *token, const char *name, const char *value);
/** Sets the response's Content-Type (static string) instead of
 * application/json, e.g. for the Prometheus text of /v1/metrics. */
void sv_req_set_content_type(sv_req_t *req, const char *content_type);
/** Ends the request with status and a JSON body in plain memory. Takes the
 * buffer's memory over (body is left empty). body may be NULL (no content). */
void sv_req_reply(sv_req_t *req, int status, sv_buf_t *body);
/** Like sv_req_reply for a body built with sv_jw_*() that may have run out
 * of memory: when body->failed, the body is freed and the request fails with
 * 503 service_unavailable ("overloaded", as sv_req_fail_err(SV_ENOMEM))
 * instead. Takes the buffer's memory over. */
void sv_req_reply_built(sv_req_t *req, int status, sv_buf_t *body);
/** Like sv_req_reply for a body that holds plaintext secrets (a secure
 * sv_buf_t): the bytes are handed to h2o without a copy and wiped when h2o is
 * done with them. */
void sv_req_reply_secure(sv_req_t *req, int status, sv_buf_t *body);
/** Ends the request with status and a body streamed by ops (content_type,
 * e.g. "application/x-ndjson"). Like every ending, the first byte goes out
 * only once the audit entry is safe; if it cannot be written, the client gets
 * 503 audit_unavailable and ops->free(arg) runs without a chunk. Takes arg
 * over in every case. */
void sv_req_reply_stream(sv_req_t *req, int status, const char *content_type, const sv_stream_ops_t *ops, void *arg);
/** Ends the request with an API error; message may be NULL (the default).
 * details is raw JSON object text ("{...}") or NULL. */
void sv_req_fail(sv_req_t *req, sv_api_error_t e, const char *message, const char *details);
/** Ends the request with an API error and details.field = field. */
void sv_req_fail_field(sv_req_t *req, sv_api_error_t e, const char *message, const char *field);
/** Ends the request with the error that err maps to (sv_api_error_from_err). */
void sv_req_fail_err(sv_req_t *req, sv_err_t err);
/** Hands a write to the writer in one unit with the audit entry; op->done
 * builds the response afterwards. */
void sv_req_submit(sv_req_t *req, const sv_req_op_t *op);

/* ---- logs ---- */

/** Writes a structured log line (src/log.h) that belongs to req: it carries
 * req's request_id and route, so the line can be found from the response's
 * X-Request-ID or the audit entry. msg is printf-formatted; never pass a
 * secret or a token. Requests that fail with a 5xx status are logged this
 * way at error level by the pipeline itself. */
void sv_req_log(sv_req_t *req, sv_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** The client address of a request: the socket peer, or, when the peer is in
 * trusted (TRUSTED_PROXIES), the address that X-Forwarded-For gives. xff
 * holds the values of every X-Forwarded-For header in the order received;
 * the walk starts at the right end of the last one (the nearest proxy's
 * entry) and takes the first address that is not itself a trusted proxy. A
 * malformed entry ends the walk at the last address found. Pure; any thread. */
void sv_http_client_ip(const sv_ip_t *peer, const h2o_iovec_t *xff, size_t n_xff, const sv_cidr_t *trusted,
                       unsigned n_trusted, sv_ip_t *out);

/* ---- pipeline (server.c and auth) ---- */

/** Starts the pipeline for an h2o request. */
int sv_req_handle(sv_worker_t *w, h2o_req_t *h2o);
/** Stopping, at the end of the grace period: shuts down the connection of
 * every streamed response still in flight on w (a client that stopped
 * reading an export would otherwise hold the server up for ever); h2o then
 * sees the error and frees them. Returns how many. */
unsigned sv_req_cut_streams(sv_worker_t *w);
/** Continues after authentication: status is SV_OK or the API error to fail
 * with (authentication_required, token_*); details as for sv_req_fail. */
void sv_req_auth_done(sv_req_t *req, bool ok, sv_api_error_t e, const char *message);
/** Completes a unit that came back from the writer (on the worker's loop). */
void sv_req_unit_done(sv_req_t *req);
/** Frees a request that is completely done. */
void sv_req_free(sv_req_t *req);

#endif
