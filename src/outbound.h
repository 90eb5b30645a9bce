/*
 * outbound.h - the outbound pool: every HTTP call ScaiVault makes to another
 * system (ScaiKey's JWKS and directory, KMS, ACME, webhooks, federation)
 * runs here, on one thread driving a libcurl multi handle, so that no HTTP
 * worker ever waits on the network.
 *
 * A caller builds an sv_http_call_t, submits it, and gets `done` called once,
 * on the outbound thread, when the call completed, failed or timed out.
 * `done` must be quick and must not block: to continue on a worker, post to
 * it (http/server.h sv_worker_post); threads without an event loop can use
 * sv_outbound_run() to wait. The pool also runs in-memory timers (for caches
 * such as the JWKS refresh; persistent timers live in the scheduler).
 */
#ifndef SV_OUTBOUND_H
#define SV_OUTBOUND_H

#include <curl/curl.h>

#include "src/buf.h"
#include "src/latency.h"
#include "src/sv.h"

typedef struct sv_outbound sv_outbound_t;
typedef struct sv_http_call sv_http_call_t;

typedef void (*sv_http_call_done_fn)(sv_http_call_t *call);

#define SV_HTTP_CALL_MAX_HEADERS 16

struct sv_http_call {
    /* request (set with the functions below) */
    char method[8];
    char *url;
    struct curl_slist *headers;
    sv_buf_t body;              /* request body; a secure buffer when it holds secrets */
    long timeout_ms;            /* whole call; default 10000 */
    size_t max_response_bytes;  /* default 8 MiB; larger responses fail with SV_ETOOBIG */
    bool secure_response;       /* receive the body into sodium_malloc memory */
    const char *ca_file;        /* extra CA bundle (PEM) to trust, or NULL; must outlive the call */

    /* completion */
    sv_http_call_done_fn done;
    void *arg;

    /* response (valid in done) */
    sv_err_t result;            /* SV_OK when an HTTP response arrived (any status) */
    long status;                /* HTTP status, 0 when none */
    sv_buf_t response;          /* the body */
    char retry_after[32];       /* the Retry-After header, if any */
    char content_type[96];
    char error[CURL_ERROR_SIZE]; /* libcurl's message when result != SV_OK */
    uint64_t duration_us;

    /* private */
    CURL *easy_;
    sv_http_call_t *next_;
    sv_http_call_t *running_next_;
    void *wait_;
};

/** Starts the pool's thread. Errors: SV_ENOMEM. */
sv_err_t sv_outbound_start(sv_outbound_t **out);
/** Stops the thread: calls still running complete with SV_ESHUTDOWN; pending
 * timers are dropped. Frees ob. */
void sv_outbound_stop(sv_outbound_t *ob);

/** A new call (GET unless method is given). NULL on allocation failure. The
 * caller owns it until submit; after done it must free it (sv_http_call_free). */
sv_http_call_t *sv_http_call_new(const char *method, const char *url);
/** Adds a request header "Name: value". */
sv_err_t sv_http_call_header(sv_http_call_t *c, const char *header);
/** Sets the request body (copied) and its Content-Type. */
sv_err_t sv_http_call_body(sv_http_call_t *c, const void *data, size_t len, const char *content_type);
/** Frees the call, wiping its buffers. */
void sv_http_call_free(sv_http_call_t *c);

/** Queues c. Any thread. done(c) runs once on the outbound thread. Errors:
 * SV_ESHUTDOWN (done is not called), SV_EINVAL (no done). */
sv_err_t sv_outbound_submit(sv_outbound_t *ob, sv_http_call_t *c);
/** Submits c and waits for it (for threads with no event loop: the scheduler,
 * start-up, tools). Never call it on an HTTP worker. Returns c->result. */
sv_err_t sv_outbound_run(sv_outbound_t *ob, sv_http_call_t *c);

/** Runs fn(arg) on the outbound thread after delay_ms. Any thread. Timers are
 * in memory only: they do not survive a restart. */
sv_err_t sv_outbound_timer(sv_outbound_t *ob, uint64_t delay_ms, void (*fn)(void *arg), void *arg);

/** Removes every pending timer with this fn and arg, and waits for one that
 * is running now to return, so that arg may be freed afterwards. Any thread
 * but the outbound thread itself. */
void sv_outbound_timer_cancel(sv_outbound_t *ob, void (*fn)(void *arg), void *arg);

/** Latency of completed calls (for health and metrics). */
sv_latency_t *sv_outbound_latency(sv_outbound_t *ob);

#endif
