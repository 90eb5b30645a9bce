/*
 * hello.c - the bare h2o ceiling: `hello --port P [--host H] [--threads N]`.
 *
 * Every HTTP benchmark of ScaiVault is reported as a ratio to this program
 * measured with the same load script in the same run (bench/README.md). It is
 * built the way ScaiVault's own server is (http/server.c): libh2o-evloop, one
 * event loop and one h2o context per thread, each thread with its own
 * listening socket bound with SO_REUSEPORT, TCP_NODELAY on accepted sockets,
 * HTTP/1.1 and h2c (prior knowledge or Upgrade) on plain TCP. It answers every
 * request, whatever its method, path, headers or body, with 200 "hello\n", so
 * that the gap between it and a ScaiVault endpoint is the cost of ScaiVault's
 * own work. It prints "ready PORT" on stdout once every thread listens, and
 * exits on SIGTERM or SIGINT.
 *
 * Threads: main parses options and waits for a signal; the N workers run
 * their loops until the process exits.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <h2o.h>

#include "bench/cli.h"

#define MAX_THREADS 256

typedef struct {
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    int listen_fd;
    pthread_t thread;
} worker_t;

static h2o_globalconf_t globalconf;
static h2o_barrier_t ready;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    static const char body[] = "hello\n";
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = sizeof(body) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
    h2o_start_response(req, &generator);
    h2o_iovec_t iov = h2o_iovec_init(body, sizeof(body) - 1);
    h2o_send(req, &iov, 1, 1);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker_t *w = listener->data;
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_accept(&w->accept_ctx, sock);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    h2o_context_init(&w->ctx, w->loop, &globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = globalconf.hosts;
    h2o_socket_t *listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = w;
    h2o_socket_read_start(listener, on_accept);
    h2o_barrier_wait(&ready);
    for (;;)
        h2o_evloop_run(w->loop, INT32_MAX);
    return NULL;
}

/* Binds host:port with SO_REUSEPORT; port 0 picks one (then *port is set). */
static int bind_listener(const char *host, int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "hello: --host '%s' is not an IPv4 address\n", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0)
        goto close_fd;
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;

close_fd:
    close(fd);
fail:
    fprintf(stderr, "hello: cannot listen on %s:%d: %s\n", host, *port, strerror(errno));
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: hello [--host 127.0.0.1] [--port 0] [--threads N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port_s = "0", *threads_s = NULL;
    const bench_opt_t opts[] = {{"host", &host, true}, {"port", &port_s, true}, {"threads", &threads_s, true}};
    if (!bench_cli_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])))
        usage();
    int port = atoi(port_s);
    long threads = threads_s != NULL ? atol(threads_s) : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > MAX_THREADS || port < 0 || port > 65535)
        usage();

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("hello"));
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;

    static worker_t workers[MAX_THREADS];
    h2o_barrier_init(&ready, (size_t)threads + 1);
    for (long i = 0; i < threads; i++) {
        workers[i].loop = h2o_evloop_create();
        if ((workers[i].listen_fd = bind_listener(host, &port)) < 0)
            return 1;
    }
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "hello: cannot start thread %ld\n", i);
            return 1;
        }
    }
    h2o_barrier_wait(&ready);
    printf("ready %d\n", port);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    return 0;
}
