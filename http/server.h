/*
 * server.h - the HTTP server: one h2o event loop per worker thread, each with
 * its own SO_REUSEPORT listener on every SCAIVAULT_LISTEN address, optional
 * TLS with HTTP/2 by ALPN, graceful shutdown.
 */
#ifndef SV_HTTP_SERVER_H
#define SV_HTTP_SERVER_H

#include <h2o.h>
#include <openssl/ssl.h>

#include "http/router.h"
#include "src/app.h"
#include "src/buf.h"
#include "store/env.h"

typedef struct sv_http_server sv_http_server_t;
typedef struct sv_req sv_req_t;
typedef struct sv_worker sv_worker_t;

/** A piece of work posted to a worker's loop from another thread. */
typedef struct sv_worker_task sv_worker_task_t;
struct sv_worker_task {
    h2o_multithread_message_t msg; /* private */
    void (*fn)(sv_worker_task_t *task);
};

struct sv_worker {
    unsigned id;
    pthread_t thread;
    sv_http_server_t *server;
    sv_app_t *app;
    const sv_router_t *router;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listeners[SV_MAX_LISTEN];
    unsigned n_listeners;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t unit_receiver;    /* units back from the writer */
    h2o_multithread_receiver_t control_receiver; /* shutdown */
    h2o_multithread_receiver_t task_receiver;    /* sv_worker_post */
    h2o_multithread_message_t shutdown_msg;
    sv_notify_t notify; /* takes completed units from the writer (unit_post) */
    /* completed units waiting for this loop; units_msg is in flight to
     * unit_receiver exactly while the list is not empty */
    pthread_mutex_t units_lock;
    sv_unit_t *units_head, *units_tail;
    h2o_multithread_message_t units_msg;
    struct sv_store_reader *reader;
    unsigned inflight;   /* requests between on_req and their last byte handed to h2o */
    unsigned sending;    /* bodies handed to h2o and not yet sent (or dropped with their connection) */
    unsigned open_conns;
    bool stopping;
    uint64_t stop_deadline_us;
    uint64_t last_activity_us;
    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick;
    /* 1 ms: work cut into slices links an entry here to yield to the loop
     * between slices. The worker's own, never disposed: an entry's callback
     * may end its request and free the entry, never this timeout, which the
     * loop may be walking. */
    h2o_timeout_t slice_timeout;
    sv_buf_t access_log; /* buffered access-log lines */
    struct sv_http_metrics *metrics; /* per-route counters (http/metrics.h) */
    sv_req_t *answering; /* the write whose done() runs; NULL once it has answered */
    h2o_linklist_t streams; /* streamed responses in flight (request.c) */
    bool streams_cut;       /* stopping: the grace period ended and they were cut */
    sv_req_t *free_reqs; /* recycled request contexts */
    unsigned n_free_reqs;
    /* HTTP/2 connections with requests in flight here, by h2o_conn_t.id
     * (request.c): a stream the client resets is gone from h2o's count of
     * 100 but not from ours, which is bounded per connection instead */
    struct sv_conn_load *conn_loads[256];
};

/** Runs task->fn(task) on w's event loop, soon. Any thread. The task must stay
 * valid until fn runs; fn owns it then. Used to continue a request after work
 * done elsewhere (a JWKS refresh, a remote KMS call). */
void sv_worker_post(sv_worker_t *w, sv_worker_task_t *task);

/** The worker of the calling thread, or NULL off the HTTP workers. */
sv_worker_t *sv_worker_current(void);

/** Creates the server: binds every listener for every worker (exits early
 * with a message on a bind error), builds the router. Nothing runs yet.
 * Errors: SV_EINVAL (bad TLS files), SV_EIO (bind failed; msg says why). */
sv_err_t sv_http_server_new(sv_app_t *app, sv_http_server_t **out, char *msg, size_t msglen);
/** Starts the worker threads. */
sv_err_t sv_http_server_start(sv_http_server_t *s);
/** Graceful stop: stop accepting, let in-flight requests finish (HTTP/1
 * responses get Connection: close, HTTP/2 a GOAWAY), wait up to grace_ms for
 * connections to close, join the workers. */
void sv_http_server_stop(sv_http_server_t *s, unsigned grace_ms);
void sv_http_server_free(sv_http_server_t *s);

/** The router (for route registration before start, and for tests). */
sv_router_t *sv_http_server_router(sv_http_server_t *s);
/** The actual bound port of listener i (useful with port 0). */
int sv_http_server_port(sv_http_server_t *s, unsigned i);
/** Appends one access-log line (no trailing newline) to the worker's buffer. */
void sv_worker_log(sv_worker_t *w, const void *line, size_t len);
/** The worker's access-log buffer, to build one line in place; end the line
 * with sv_worker_log_done(). */
sv_buf_t *sv_worker_log_buf(sv_worker_t *w);
/** Ends the line built in sv_worker_log_buf() (adds the newline, flushes
 * when the buffer is large; drops the buffer after an allocation failure). */
void sv_worker_log_done(sv_worker_t *w);

/** Registers every route of the API (routes.c). */
sv_err_t sv_http_register_routes(sv_router_t *r);

#endif
