/*
 * fill.c - the bench data loader: `fill --port P --keys FILE --token T
 * [--host 127.0.0.1] [--value-size 1024] [--connections 64]`.
 *
 * Writes every secret listed in FILE (one "tenant path" per line) exactly
 * once with `PUT /v1/secrets/{path}` and `X-ScaiVault-Tenant: tenant`, over C
 * keep-alive HTTP/1.1 connections, each driven by its own thread with
 * blocking sockets. wrk runs for a duration, not a count, and cannot say
 * which of its requests failed; a fill must write each key once and know
 * the status of every write, so it gets this small exact client instead.
 * Connection i writes lines i, i+C, i+2C, ... A request that meets a socket
 * error is retried on a new connection (twice at most); a non-2xx answer
 * is counted, not retried. Prints one JSON object on stdout:
 * {requests, ok, non_2xx, socket_errors, seconds, rate, status:{...},
 * first_error}. Exit status 0 when every write got a 2xx.
 */
#include "sv_autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/cli.h"

#define MAX_CONNECTIONS 1024
#define RESP_BUF 65536
#define MAX_RETRIES 2

typedef struct {
    char *tenant;
    char *path;
} entry_t;

static struct {
    struct sockaddr_in addr;
    char hostport[64];
    const char *token;
    char *value;
    size_t value_size;
    entry_t *keys;
    size_t n_keys;
    unsigned connections;
} opt;

static atomic_ulong status_counts[600];
static atomic_ulong socket_errors;
static pthread_mutex_t first_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

typedef struct {
    unsigned id;
    int fd;
    char *resp;
} conn_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Finds header NAME (case-insensitive) in the header block; returns its value. */
static const char *find_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, nl) == 0 && line[2 + nl] == ':') {
            const char *v = line + 3 + nl;
            while (*v == ' ')
                v++;
            return v;
        }
    }
    return NULL;
}

/* Reads more bytes into buf[*have..cap); false on EOF or error. */
static bool read_more(int fd, char *buf, size_t *have, size_t cap)
{
    if (*have >= cap)
        return false;
    for (;;) {
        ssize_t n = recv(fd, buf + *have, cap - *have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        *have += (size_t)n;
        buf[*have] = 0;
        return true;
    }
}

/* Reads a chunked body starting at buf+start; true once the last chunk is in. */
static bool read_chunked(int fd, char *buf, size_t *have, size_t cap, size_t start)
{
    size_t pos = start;
    for (;;) {
        char *eol;
        while ((eol = strstr(buf + pos, "\r\n")) == NULL)
            if (!read_more(fd, buf, have, cap))
                return false;
        unsigned long size = strtoul(buf + pos, NULL, 16);
        size_t need = (size_t)(eol + 2 - buf) + size + 2;
        while (*have < need)
            if (!read_more(fd, buf, have, cap))
                return false;
        if (size == 0)
            return true;
        pos = need;
    }
}

/* Reads one response; returns its status, or 0 on a socket error. Sets
 * *close_after when the server will close the connection. */
static int read_response(conn_t *c, bool *close_after)
{
    size_t have = 0, cap = RESP_BUF - 1;
    char *buf = c->resp, *end;
    buf[0] = 0;
    while ((end = strstr(buf, "\r\n\r\n")) == NULL)
        if (!read_more(c->fd, buf, &have, cap))
            return 0;
    end[2] = 0; /* the header block, ending with its last CRLF */
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599)
        return 0;
    const char *conn = find_header(buf, "connection");
    *close_after = conn != NULL && strncasecmp(conn, "close", 5) == 0;
    const char *te = find_header(buf, "transfer-encoding");
    const char *cl = find_header(buf, "content-length");
    size_t body = (size_t)(end + 4 - buf);
    end[2] = '\r';
    if (te != NULL && strncasecmp(te, "chunked", 7) == 0) {
        if (!read_chunked(c->fd, buf, &have, cap, body))
            return 0;
    } else {
        size_t len = cl != NULL ? strtoul(cl, NULL, 10) : 0;
        if (cl == NULL)
            *close_after = true;
        if (body + len > cap)
            return 0;
        while (have < body + len)
            if (!read_more(c->fd, buf, &have, cap))
                return 0;
    }
    if ((status < 200 || status > 299) && first_error[0] == 0) {
        pthread_mutex_lock(&first_error_lock);
        if (first_error[0] == 0)
            snprintf(first_error, sizeof(first_error), "%d %.*s", status, (int)(have - body > 400 ? 400 : have - body),
                     buf + body);
        pthread_mutex_unlock(&first_error_lock);
    }
    return status;
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    size_t reqcap = opt.value_size + 4096;
    char *req = malloc(reqcap);
    c->resp = malloc(RESP_BUF);
    if (req == NULL || c->resp == NULL) {
        fprintf(stderr, "fill: out of memory\n");
        exit(1);
    }
    c->fd = -1;
    for (size_t i = c->id; i < opt.n_keys; i += opt.connections) {
        const entry_t *k = &opt.keys[i];
        int body_len = (int)opt.value_size + 12;
        int len = snprintf(req, reqcap,
                           "PUT /v1/secrets/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                           "X-ScaiVault-Tenant: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                           "{\"value\":\"%s\"}",
                           k->path, opt.hostport, opt.token, k->tenant, body_len, opt.value);
        if (len < 0 || (size_t)len >= reqcap) {
            fprintf(stderr, "fill: request for '%s' too long\n", k->path);
            exit(1);
        }
        int status = 0;
        for (int attempt = 0; attempt <= MAX_RETRIES && status == 0; attempt++) {
            bool close_after = false;
            if (c->fd < 0 && (c->fd = connect_server()) < 0) {
                atomic_fetch_add(&socket_errors, 1);
                usleep(100000);
                continue;
            }
            if (send_all(c->fd, req, (size_t)len))
                status = read_response(c, &close_after);
            if (status == 0) {
                atomic_fetch_add(&socket_errors, 1);
                close_after = true;
            }
            if (close_after) {
                close(c->fd);
                c->fd = -1;
            }
        }
        if (status != 0)
            atomic_fetch_add(&status_counts[status], 1);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->resp);
    free(req);
    return NULL;
}

static void load_keys(const char *file)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "fill: cannot open %s: %s\n", file, strerror(errno));
        exit(2);
    }
    size_t cap = 1024;
    opt.keys = malloc(cap * sizeof(*opt.keys));
    char line[2048];
    while (opt.keys != NULL && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = 0;
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = 0;
        if (opt.n_keys == cap)
            opt.keys = realloc(opt.keys, (cap *= 2) * sizeof(*opt.keys));
        if (opt.keys == NULL)
            break;
        opt.keys[opt.n_keys].tenant = strdup(line);
        opt.keys[opt.n_keys].path = strdup(sp + 1);
        opt.n_keys++;
    }
    fclose(f);
    if (opt.keys == NULL) {
        fprintf(stderr, "fill: out of memory\n");
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: fill --port P --keys FILE --token T [--host 127.0.0.1] [--value-size 1024] "
                    "[--connections 64]\n");
    exit(2);
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *keys = NULL, *port_s = "0", *size_s = "1024", *conns_s = "64";
    const bench_opt_t opts[] = {{"host", &host, true},         {"port", &port_s, true},
                                {"keys", &keys, true},         {"token", &opt.token, true},
                                {"value-size", &size_s, true}, {"connections", &conns_s, true}};
    if (!bench_cli_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])))
        usage();
    int port = atoi(port_s);
    opt.value_size = strtoul(size_s, NULL, 10);
    opt.connections = (unsigned)atoi(conns_s);
    if (keys == NULL || opt.token == NULL || port <= 0 || port > 65535 || opt.connections < 1 ||
        opt.connections > MAX_CONNECTIONS || opt.value_size < 1 || opt.value_size > (16u << 20))
        usage();
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
        usage();
    snprintf(opt.hostport, sizeof(opt.hostport), "%s:%d", host, port);
    load_keys(keys);
    /* a printable value that needs no JSON escaping */
    opt.value = malloc(opt.value_size + 1);
    if (opt.value == NULL)
        return 1;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < opt.value_size; i++)
        opt.value[i] = alphabet[(i * 7 + i / 62) % 62];
    opt.value[opt.value_size] = 0;

    static conn_t conns[MAX_CONNECTIONS];
    static pthread_t threads[MAX_CONNECTIONS];
    double start = now_s();
    unsigned started = 0;
    for (; started < opt.connections && started < opt.n_keys; started++) {
        conns[started].id = started;
        if (pthread_create(&threads[started], NULL, conn_main, &conns[started]) != 0) {
            fprintf(stderr, "fill: cannot start thread %u\n", started);
            return 1;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    double seconds = now_s() - start;

    unsigned long ok = 0, non2xx = 0;
    for (int s = 100; s < 600; s++) {
        unsigned long n = atomic_load(&status_counts[s]);
        if (s >= 200 && s <= 299)
            ok += n;
        else
            non2xx += n;
    }
    printf("{\"name\":\"fill\",\"requests\":%zu,\"ok\":%lu,\"non_2xx\":%lu,\"socket_errors\":%lu,"
           "\"seconds\":%.3f,\"rate\":%.1f,\"connections\":%u,\"value_size\":%zu,\"status\":{",
           opt.n_keys, ok, non2xx, atomic_load(&socket_errors), seconds, seconds > 0 ? (double)ok / seconds : 0.0,
           opt.connections, opt.value_size);
    const char *sep = "";
    for (int s = 100; s < 600; s++) {
        unsigned long n = atomic_load(&status_counts[s]);
        if (n > 0) {
            printf("%s\"%d\":%lu", sep, s, n);
            sep = ",";
        }
    }
    printf("},\"first_error\":");
    if (first_error[0])
        print_json_string(first_error);
    else
        printf("null");
    printf("}\n");
    return ok == opt.n_keys ? 0 : 1;
}
