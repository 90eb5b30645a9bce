/*
 * server.c - listeners, worker threads and graceful shutdown (server.h).
 *
 * Each worker owns an h2o event loop and context and, for every listen
 * address, its own socket bound with SO_REUSEPORT, so the kernel spreads new
 * connections over the workers and no accept lock exists. The h2o global
 * configuration is built once and shared read-only.
 *
 * Units that come back from the writer arrive through h2o's multithread queue
 * on the worker that submitted them, so a request is only ever touched by its
 * own worker. Shutdown is a message too: the worker closes its listeners,
 * asks h2o to wind down connections (HTTP/2 GOAWAY; HTTP/1 responses carry
 * Connection: close), and leaves its loop once no request is in flight and
 * its connections are gone or the grace period is over.
 */
#include "sv_autoconf.h"

#include "http/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/metrics.h"
#include "http/request.h"
#include "src/log.h"

#define TICK_MS 50
#define IDLE_EXIT_US 2000000 /* while stopping: leave once no request came for this long */
#define HARD_EXIT_US 5000000 /* while stopping: leave this long after the grace period, whatever is in flight */

struct sv_http_server {
    sv_app_t *app;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    SSL_CTX *ssl_ctx;
    sv_router_t *router;
    sv_http_metrics_t *metrics;
    sv_worker_t *workers;
    unsigned n_workers;
    int ports[SV_MAX_LISTEN];
    h2o_barrier_t ready;
};

typedef struct {
    h2o_handler_t super;
    sv_http_server_t *server;
} root_handler_t;

static __thread sv_worker_t *current_worker;

sv_worker_t *sv_worker_current(void)
{
    return current_worker;
}

sv_router_t *sv_http_server_router(sv_http_server_t *s)
{
    return s->router;
}

int sv_http_server_port(sv_http_server_t *s, unsigned i)
{
    return i < s->app->cfg->n_listen ? s->ports[i] : -1;
}

/* ---- access log buffering ---- */

/* Writes the buffered lines in pieces of whole lines of at most PIPE_BUF
 * bytes, so that they never interleave with lines of other threads. */
static void flush_access_log(sv_worker_t *w)
{
    size_t off = 0, len = w->access_log.len;
    const char *base = (const char *)w->access_log.base;
    while (off < len) {
        size_t piece = len - off;
        if (piece > 4096) {
            piece = 4096;
            while (piece > 0 && base[off + piece - 1] != '\n')
                piece--;
            if (piece == 0)
                piece = len - off < 4096 ? len - off : 4096;
        }
        ssize_t n = write(STDERR_FILENO, base + off, piece);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* stderr is gone: drop the lines rather than block */
        off += (size_t)n;
    }
    w->access_log.len = 0;
}

void sv_worker_log(sv_worker_t *w, const void *line, size_t len)
{
    sv_buf_append(&w->access_log, line, len);
    sv_worker_log_done(w);
}

sv_buf_t *sv_worker_log_buf(sv_worker_t *w)
{
    return &w->access_log;
}

void sv_worker_log_done(sv_worker_t *w)
{
    sv_buf_putc(&w->access_log, '\n');
    if (w->access_log.failed) {
        /* out of memory: the buffered lines are lost, the next ones are not */
        sv_buf_free(&w->access_log);
        sv_buf_init(&w->access_log, false);
        return;
    }
    if (w->access_log.len > 16384)
        flush_access_log(w);
}

/* ---- h2o glue ---- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    sv_worker_t *w = H2O_STRUCT_FROM_MEMBER(sv_worker_t, ctx, req->conn->ctx);
    return sv_req_handle(w, req);
}

static void on_conn_close(void *data)
{
    sv_worker_t *w = data;
    w->open_conns--;
}

/* Accepts one pending connection; false when none is waiting. */
static bool accept_one(sv_worker_t *w, h2o_socket_t *listener)
{
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return false;
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    w->open_conns++;
    w->last_activity_us = sv_mono_us(); /* its request is yet to come: not idle */
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = w;
    h2o_accept(&w->accept_ctx, sock);
    return true;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err == NULL)
        accept_one(listener->data, listener);
}

/* The writer's side: appends a batch's chain of units for this worker and
 * wakes the loop only if it had nothing pending (one pipe write per batch at
 * most, none while the loop is still catching up). */
static void unit_post(sv_notify_t *n, sv_unit_t *chain)
{
    sv_worker_t *w = H2O_STRUCT_FROM_MEMBER(sv_worker_t, notify, n);
    sv_unit_t *tail = chain;
    while (sv_unit_next(tail) != NULL)
        tail = sv_unit_next(tail);
    pthread_mutex_lock(&w->units_lock);
    bool wake = w->units_head == NULL;
    if (wake)
        w->units_head = chain;
    else
        w->units_tail->next_ = chain;
    w->units_tail = tail;
    pthread_mutex_unlock(&w->units_lock);
    if (wake)
        h2o_multithread_send_message(&w->unit_receiver, &w->units_msg);
}

static void on_units(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sv_worker_t *w = H2O_STRUCT_FROM_MEMBER(sv_worker_t, unit_receiver, receiver);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next); /* units_msg: unlinked before the list empties */
    pthread_mutex_lock(&w->units_lock);
    sv_unit_t *u = w->units_head;
    w->units_head = w->units_tail = NULL;
    pthread_mutex_unlock(&w->units_lock);
    for (sv_unit_t *next; u != NULL; u = next) {
        next = sv_unit_next(u); /* the request may reuse its unit */
        sv_req_unit_done(u->arg);
    }
}

void sv_worker_post(sv_worker_t *w, sv_worker_task_t *task)
{
    h2o_multithread_send_message(&w->task_receiver, &task->msg);
}

static void on_tasks(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        sv_worker_task_t *task = H2O_STRUCT_FROM_MEMBER(sv_worker_task_t, msg, msg);
        task->fn(task);
    }
}

/* Closing a listening socket resets the connections still waiting in its
 * backlog, which their clients see as dropped requests: accept them first
 * (they are served, with Connection: close), then close. */
static void close_listeners(sv_worker_t *w)
{
    for (unsigned i = 0; i < w->n_listeners; i++) {
        if (w->listeners[i] != NULL) {
            while (accept_one(w, w->listeners[i]))
                ;
            h2o_socket_read_stop(w->listeners[i]);
            h2o_socket_close(w->listeners[i]);
            w->listeners[i] = NULL;
        }
    }
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sv_worker_t *w = H2O_STRUCT_FROM_MEMBER(sv_worker_t, control_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
    }
    if (w->stopping)
        return;
    w->stopping = true;
    /* connections count as idle only after IDLE_EXIT_US without a request
     * from now: one accepted just before (or by close_listeners) is read */
    w->last_activity_us = sv_mono_us();
    close_listeners(w);
    h2o_context_request_shutdown(&w->ctx);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    sv_worker_t *w = H2O_STRUCT_FROM_MEMBER(sv_worker_t, tick, entry);
    if (w->access_log.len > 0)
        flush_access_log(w);
    h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
}

static bool should_exit(sv_worker_t *w)
{
    if (!w->stopping)
        return false;
    uint64_t now = sv_mono_us();
    if (w->inflight > 0) {
        if (now >= w->stop_deadline_us && !w->streams_cut) {
            w->streams_cut = true;
            unsigned n = sv_req_cut_streams(w);
            if (n > 0)
                sv_log_warn("stopping: the grace period is over; %u streamed response(s) cut off (a client that "
                            "stopped reading)",
                            n);
        }
        if (now < w->stop_deadline_us + HARD_EXIT_US)
            return false;
        sv_log_error("stopping: %u request(s) still in flight %d s after the grace period; leaving them",
                     w->inflight, HARD_EXIT_US / 1000000);
        return true;
    }
    if (w->sending > 0) {
        /* answered, but h2o still holds bytes of the response: a slow
         * reader gets the grace period, as a streamed response does */
        if (now < w->stop_deadline_us)
            return false;
        sv_log_warn("stopping: the grace period is over; %u response(s) still being sent cut off (a client that "
                    "stopped reading)",
                    w->sending);
        return true;
    }
    return w->open_conns == 0 || now >= w->stop_deadline_us || now - w->last_activity_us >= IDLE_EXIT_US;
}

static void *worker_main(void *arg)
{
    sv_worker_t *w = arg;
    sv_http_server_t *s = w->server;
    current_worker = w;
    h2o_context_init(&w->ctx, w->loop, &s->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = s->globalconf.hosts;
    w->accept_ctx.ssl_ctx = s->ssl_ctx;
    w->queue = h2o_multithread_create_queue(w->loop);
    h2o_multithread_register_receiver(w->queue, &w->unit_receiver, on_units);
    h2o_multithread_register_receiver(w->queue, &w->control_receiver, on_control);
    h2o_multithread_register_receiver(w->queue, &w->task_receiver, on_tasks);
    h2o_timeout_init(w->loop, &w->tick_timeout, TICK_MS);
    h2o_timeout_init(w->loop, &w->slice_timeout, 1);
    w->tick.cb = on_tick;
    h2o_timeout_link(w->loop, &w->tick_timeout, &w->tick);
    for (unsigned i = 0; i < w->n_listeners; i++) {
        h2o_socket_t *sock = w->listeners[i];
        sock->data = w;
        h2o_socket_read_start(sock, on_accept);
    }
    h2o_barrier_wait(&s->ready);

    while (!should_exit(w))
        h2o_evloop_run(w->loop, TICK_MS);

    flush_access_log(w);
    h2o_timeout_unlink(&w->tick);
    return NULL;
}

/* ---- listeners ---- */

/* SO_REUSEPORT would let a second server (say, with another data directory)
 * join a port that one already serves and silently take half its
 * connections: bind once without it first, so that a taken port is an error. */
static bool port_taken(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    bool taken = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

static int bind_one(const struct addrinfo *ai, char *msg, size_t msglen, const char *what, bool first)
{
    if (first && port_taken(ai)) {
        snprintf(msg, msglen, "SCAIVAULT_LISTEN: cannot listen on %s: the address is already in use", what);
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(msg, msglen, "SCAIVAULT_LISTEN: socket for %s: %s", what, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(msg, msglen, "SCAIVAULT_LISTEN: cannot listen on %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static sv_err_t open_listeners(sv_http_server_t *s, char *msg, size_t msglen)
{
    const sv_config_t *cfg = s->app->cfg;
    for (unsigned a = 0; a < cfg->n_listen; a++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
        char what[300];
        snprintf(what, sizeof(what), "%s:%s", cfg->listen[a].host, cfg->listen[a].port);
        int gai = getaddrinfo(cfg->listen[a].host, cfg->listen[a].port, &hints, &res);
        if (gai != 0) {
            snprintf(msg, msglen, "SCAIVAULT_LISTEN: cannot resolve %s: %s", what, gai_strerror(gai));
            return SV_EIO;
        }
        /* the first worker binds (port 0 picks one); the others join its port */
        struct sockaddr_storage bound;
        socklen_t bl = sizeof(bound);
        for (unsigned i = 0; i < s->n_workers; i++) {
            struct addrinfo ai = *res;
            if (i > 0) {
                ai.ai_addr = (struct sockaddr *)&bound;
                ai.ai_addrlen = bl;
            }
            int fd = bind_one(&ai, msg, msglen, what, i == 0);
            if (fd < 0) {
                freeaddrinfo(res);
                return SV_EIO;
            }
            if (i == 0) {
                getsockname(fd, (struct sockaddr *)&bound, &bl);
                s->ports[a] = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                                 : ((struct sockaddr_in *)&bound)->sin_port);
            }
            sv_worker_t *w = &s->workers[i];
            w->listeners[w->n_listeners++] = h2o_evloop_socket_create(w->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        }
        freeaddrinfo(res);
    }
    return SV_OK;
}

/* OpenSSL's default asks for a key's passphrase on the terminal, at a point
 * where the server has already blocked SIGINT and SIGTERM: it would wait
 * there for good. An encrypted key is refused instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    if (asked != NULL)
        *(bool *)asked = true;
    return -1;
}

/* OpenSSL's reason for the last error ("ee key too small"), or "". */
static const char *tls_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r != NULL ? r : "";
}

/* Warns about a certificate outside its validity period, and a key file that
 * everyone may read. */
static void tls_warnings(SSL_CTX *ctx, const sv_config_t *cfg)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (cert != NULL && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        sv_log_warn("SCAIVAULT_TLS_CERT: the certificate in '%s' has expired: clients will refuse it",
                    cfg->tls_cert);
    else if (cert != NULL && X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        sv_log_warn("SCAIVAULT_TLS_CERT: the certificate in '%s' is not valid yet: clients will refuse it",
                    cfg->tls_cert);
    struct stat sb;
    if (stat(cfg->tls_key, &sb) == 0 && (sb.st_mode & S_IROTH))
        sv_log_warn("SCAIVAULT_TLS_KEY: '%s' can be read by every user (mode %04o): make it 0600 (or 0640 for a "
                    "group such as ssl-cert)",
                    cfg->tls_key, (unsigned)(sb.st_mode & 07777));
}

static sv_err_t setup_tls(sv_http_server_t *s, char *msg, size_t msglen)
{
    const sv_config_t *cfg = s->app->cfg;
    if (cfg->tls_cert == NULL)
        return SV_OK;
    s->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (s->ssl_ctx == NULL)
        return SV_ENOMEM;
    SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    /* no renegotiation: h2o's TLS layer does not support it, a client's broke the connection */
    SSL_CTX_set_options(s->ssl_ctx,
                        SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    bool asked = false;
    SSL_CTX_set_default_passwd_cb(s->ssl_ctx, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(s->ssl_ctx, &asked);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->tls_cert) != 1) {
        snprintf(msg, msglen, "SCAIVAULT_TLS_CERT: cannot load '%s' as a PEM certificate chain (%s)", cfg->tls_cert,
                 tls_reason());
        return SV_EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        if (asked)
            snprintf(msg, msglen,
                     "SCAIVAULT_TLS_KEY: '%s' is encrypted (protected by a passphrase): give the key unencrypted, "
                     "readable only by the server (mode 0600)",
                     cfg->tls_key);
        else
            snprintf(msg, msglen, "SCAIVAULT_TLS_KEY: cannot load '%s' as a PEM private key (%s)", cfg->tls_key,
                     tls_reason());
        return SV_EINVAL;
    }
    if (SSL_CTX_check_private_key(s->ssl_ctx) != 1) {
        snprintf(msg, msglen,
                 "SCAIVAULT_TLS_KEY: '%s' does not match the certificate, the first one in '%s' (a chain starts "
                 "with the server's own certificate)",
                 cfg->tls_key, cfg->tls_cert);
        return SV_EINVAL;
    }
    SSL_CTX_set_default_passwd_cb_userdata(s->ssl_ctx, NULL); /* &asked is gone with this frame */
    tls_warnings(s->ssl_ctx, cfg);
    h2o_ssl_register_alpn_protocols(s->ssl_ctx, h2o_http2_alpn_protocols);
    return SV_OK;
}

sv_err_t sv_http_server_new(sv_app_t *app, sv_http_server_t **out, char *msg, size_t msglen)
{
    sv_err_t err = SV_ENOMEM;
    sv_http_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SV_ENOMEM;
    s->app = app;
    s->n_workers = app->cfg->threads;
    if ((err = sv_router_new(&s->router)) != SV_OK)
        goto fail;
    if ((err = sv_http_register_routes(s->router)) != SV_OK) {
        snprintf(msg, msglen, "route table: %s", sv_strerror(err));
        goto fail;
    }
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("scaivault"));
    /* h2o answers over-large bodies itself, in plain text, and buffers a body
     * up to its limit before we see the request (over HTTP/2, for each of a
     * connection's 100 streams, before authentication): twice MAX_BODY_BYTES
     * leaves our JSON 413 for bodies a little too large, and bounds that */
    s->globalconf.max_request_entity_size = app->cfg->max_body_bytes * 2;
    s->hostconf = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(s->hostconf, "/", 0);
    root_handler_t *handler = (root_handler_t *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = s;

    if ((err = setup_tls(s, msg, msglen)) != SV_OK)
        goto fail;

    s->workers = calloc(s->n_workers, sizeof(*s->workers));
    if (s->workers == NULL) {
        err = SV_ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        sv_worker_t *w = &s->workers[i];
        w->id = i;
        w->server = s;
        w->app = app;
        w->router = s->router;
        w->loop = h2o_evloop_create();
        w->notify.post = unit_post;
        pthread_mutex_init(&w->units_lock, NULL);
        h2o_linklist_init_anchor(&w->streams);
        sv_buf_init(&w->access_log, false);
    }
    if ((err = open_listeners(s, msg, msglen)) != SV_OK)
        goto fail;
    *out = s;
    return SV_OK;

fail:
    sv_http_server_free(s);
    return err;
}

sv_err_t sv_http_server_start(sv_http_server_t *s)
{
    /* the server parts have started by now: app->metrics exists */
    sv_err_t merr = sv_http_metrics_new(s->router, s->app->metrics, &s->metrics);
    if (merr != SV_OK)
        return merr;
    for (unsigned i = 0; i < s->n_workers; i++)
        s->workers[i].metrics = s->metrics;
    h2o_barrier_init(&s->ready, s->n_workers + 1);
    for (unsigned i = 0; i < s->n_workers; i++) {
        sv_worker_t *w = &s->workers[i];
        sv_err_t err = sv_store_reader_new(s->app->store, &w->reader);
        if (err != SV_OK)
            return err;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return SV_ENOMEM;
    }
    h2o_barrier_wait(&s->ready);
    return SV_OK;
}

void sv_http_server_stop(sv_http_server_t *s, unsigned grace_ms)
{
    uint64_t deadline = sv_mono_us() + (uint64_t)grace_ms * 1000;
    for (unsigned i = 0; i < s->n_workers; i++) {
        sv_worker_t *w = &s->workers[i];
        w->stop_deadline_us = deadline;
        h2o_multithread_send_message(&w->control_receiver, &w->shutdown_msg);
    }
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i].thread, NULL);
}

void sv_http_server_free(sv_http_server_t *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; s->workers != NULL && i < s->n_workers; i++) {
        sv_worker_t *w = &s->workers[i];
        while (w->free_reqs != NULL) {
            sv_req_t *next = w->free_reqs->next_free;
            free(w->free_reqs);
            w->free_reqs = next;
        }
        sv_store_reader_free(w->reader);
        sv_buf_free(&w->access_log);
        pthread_mutex_destroy(&w->units_lock);
    }
    free(s->workers);
    sv_http_metrics_free(s->metrics);
    if (s->ssl_ctx != NULL)
        SSL_CTX_free(s->ssl_ctx);
    sv_router_free(s->router);
    free(s);
}
