/* tests/src/test_outbound.c - the outbound pool (src/outbound.c) against a
 * tiny HTTP server on a loopback socket in a thread. */
#include "sv_autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/outbound.h"
#include "tests/unit.h"

typedef struct {
    int listen_fd;
    int port;
    const char *response; /* NULL: accept and never answer */
    char last_request[4096];
    pthread_t thread;
} mini_server_t;

static void *serve(void *arg)
{
    mini_server_t *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, s->last_request, sizeof(s->last_request) - 1);
    s->last_request[n > 0 ? n : 0] = 0;
    if (s->response != NULL) {
        ssize_t w = write(fd, s->response, strlen(s->response));
        (void)w;
        close(fd);
    } else {
        usleep(1500000);
        close(fd);
    }
    return NULL;
}

static void mini_start(mini_server_t *s, const char *response)
{
    memset(s, 0, sizeof(*s));
    s->response = response;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a));
    listen(s->listen_fd, 4);
    getsockname(s->listen_fd, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, serve, s);
}

static void mini_stop(mini_server_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static void test_get_and_post(void)
{
    sv_outbound_t *ob;
    CU_ASSERT_EQUAL_FATAL(sv_outbound_start(&ob), SV_OK);
    mini_server_t s;
    mini_start(&s, "HTTP/1.1 503 Busy\r\nContent-Length: 5\r\nRetry-After: 7\r\nContent-Type: text/plain\r\n"
                   "Connection: close\r\n\r\nhello");
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s.port);
    sv_http_call_t *c = sv_http_call_new("POST", url);
    CU_ASSERT_EQUAL(sv_http_call_header(c, "Authorization: Bearer abc"), SV_OK);
    CU_ASSERT_EQUAL(sv_http_call_body(c, "{\"a\":1}", 7, "application/json"), SV_OK);
    CU_ASSERT_EQUAL(sv_outbound_run(ob, c), SV_OK);
    CU_ASSERT_EQUAL(c->status, 503);
    CU_ASSERT_EQUAL(c->response.len, 5);
    CU_ASSERT(memcmp(c->response.base, "hello", 5) == 0);
    CU_ASSERT_STRING_EQUAL(c->retry_after, "7");
    CU_ASSERT_STRING_EQUAL(c->content_type, "text/plain");
    mini_stop(&s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last_request, "POST /x HTTP/1.1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last_request, "Authorization: Bearer abc"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last_request, "{\"a\":1}"));
    sv_http_call_free(c);
    sv_outbound_stop(ob);
}

static void test_failures(void)
{
    sv_outbound_t *ob;
    CU_ASSERT_EQUAL_FATAL(sv_outbound_start(&ob), SV_OK);
    /* nothing listens: refused */
    mini_server_t s;
    mini_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    int port = s.port;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    sv_http_call_t *warm = sv_http_call_new(NULL, url);
    sv_outbound_run(ob, warm); /* uses up the one accept */
    sv_http_call_free(warm);
    mini_stop(&s);
    sv_http_call_t *c = sv_http_call_new(NULL, url);
    CU_ASSERT_EQUAL(sv_outbound_run(ob, c), SV_EUPSTREAM);
    CU_ASSERT(c->error[0] != 0);
    sv_http_call_free(c);
    /* an answer that never comes: timeout */
    mini_start(&s, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    c = sv_http_call_new(NULL, url);
    c->timeout_ms = 200;
    CU_ASSERT_EQUAL(sv_outbound_run(ob, c), SV_ETIMEDOUT);
    sv_http_call_free(c);
    mini_stop(&s);
    /* a body over the limit */
    mini_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    c = sv_http_call_new(NULL, url);
    c->max_response_bytes = 4;
    CU_ASSERT_EQUAL(sv_outbound_run(ob, c), SV_ETOOBIG);
    sv_http_call_free(c);
    mini_stop(&s);
    /* not http */
    c = sv_http_call_new(NULL, "file:///etc/passwd");
    CU_ASSERT_NOT_EQUAL(sv_outbound_run(ob, c), SV_OK);
    sv_http_call_free(c);
    sv_outbound_stop(ob);
}

static atomic_int timer_hits;
static atomic_ullong timer_order[3];

static void on_timer(void *arg)
{
    int i = atomic_fetch_add(&timer_hits, 1);
    if (i < 3)
        atomic_store(&timer_order[i], (unsigned long long)(uintptr_t)arg);
}

static void test_timers(void)
{
    sv_outbound_t *ob;
    CU_ASSERT_EQUAL_FATAL(sv_outbound_start(&ob), SV_OK);
    atomic_store(&timer_hits, 0);
    CU_ASSERT_EQUAL(sv_outbound_timer(ob, 60, on_timer, (void *)3), SV_OK);
    CU_ASSERT_EQUAL(sv_outbound_timer(ob, 1, on_timer, (void *)1), SV_OK);
    CU_ASSERT_EQUAL(sv_outbound_timer(ob, 30, on_timer, (void *)2), SV_OK);
    CU_ASSERT_EQUAL(sv_outbound_timer(ob, 600000, on_timer, (void *)9), SV_OK); /* dropped at stop */
    for (int i = 0; i < 200 && atomic_load(&timer_hits) < 3; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(atomic_load(&timer_hits), 3);
    CU_ASSERT_EQUAL(atomic_load(&timer_order[0]), 1);
    CU_ASSERT_EQUAL(atomic_load(&timer_order[1]), 2);
    CU_ASSERT_EQUAL(atomic_load(&timer_order[2]), 3);
    sv_outbound_stop(ob);
    CU_ASSERT_EQUAL(atomic_load(&timer_hits), 3);
}

void sv_test_suite_outbound(void)
{
    SV_SUITE("src/outbound", {"get_and_post", test_get_and_post}, {"failures", test_failures},
             {"timers", test_timers});
}
