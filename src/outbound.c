/*
 * outbound.c - the outbound pool of outbound.h.
 *
 * One thread owns a libcurl multi handle. Submitters append calls to a locked
 * queue and wake the thread with curl_multi_wakeup(); the thread moves them
 * into the multi handle, drives transfers with curl_multi_poll(), and when a
 * transfer ends fills the call's result and runs its done callback. Timers are
 * a small list sorted by due time, run on the same thread; the poll timeout is
 * the time to the next timer (or curl's own timeout, whichever is sooner).
 *
 * A single thread is enough: libcurl multiplexes hundreds of transfers, and
 * the callbacks only hand results on.
 */
#include "sv_autoconf.h"

#include "src/outbound.h"

#include <pthread.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE ((size_t)8 << 20)

typedef struct timer {
    uint64_t due_us;
    void (*fn)(void *arg);
    void *arg;
    struct timer *next;
} timer_t_;

struct sv_outbound {
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t lock; /* guards queue, timers, stopping, running_timer */
    sv_http_call_t *queue_head, *queue_tail;
    timer_t_ *timers; /* sorted by due_us */
    timer_t_ *running_timer; /* the timer whose fn runs now (for cancel) */
    pthread_cond_t timer_done;
    bool stopping;
    unsigned running;
    sv_http_call_t *running_list; /* calls inside the multi handle (outbound thread only) */
    sv_latency_t latency;
};

sv_latency_t *sv_outbound_latency(sv_outbound_t *ob)
{
    return &ob->latency;
}

/* ---- calls ---- */

sv_http_call_t *sv_http_call_new(const char *method, const char *url)
{
    sv_http_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    snprintf(c->method, sizeof(c->method), "%s", method != NULL ? method : "GET");
    if ((c->url = strdup(url)) == NULL) {
        free(c);
        return NULL;
    }
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    c->max_response_bytes = DEFAULT_MAX_RESPONSE;
    sv_buf_init(&c->body, false);
    sv_buf_init(&c->response, false);
    return c;
}

sv_err_t sv_http_call_header(sv_http_call_t *c, const char *header)
{
    struct curl_slist *n = curl_slist_append(c->headers, header);
    if (n == NULL)
        return SV_ENOMEM;
    c->headers = n;
    return SV_OK;
}

sv_err_t sv_http_call_body(sv_http_call_t *c, const void *data, size_t len, const char *content_type)
{
    sv_buf_clear(&c->body);
    sv_buf_append(&c->body, data, len);
    if (c->body.failed)
        return SV_ENOMEM;
    if (content_type != NULL) {
        char h[160];
        snprintf(h, sizeof(h), "Content-Type: %s", content_type);
        return sv_http_call_header(c, h);
    }
    return SV_OK;
}

void sv_http_call_free(sv_http_call_t *c)
{
    if (c == NULL)
        return;
    if (c->easy_ != NULL)
        curl_easy_cleanup(c->easy_);
    /* headers may carry credentials (Authorization): wipe them */
    for (struct curl_slist *h = c->headers; h != NULL; h = h->next)
        sodium_memzero(h->data, strlen(h->data));
    curl_slist_free_all(c->headers);
    sv_buf_clear(&c->body);
    sv_buf_free(&c->body);
    sv_buf_clear(&c->response);
    sv_buf_free(&c->response);
    free(c->url);
    free(c);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sv_http_call_t *c = ud;
    size_t n = size * nmemb;
    if (c->response.len + n > c->max_response_bytes) {
        c->result = SV_ETOOBIG;
        return 0; /* aborts the transfer */
    }
    sv_buf_append(&c->response, ptr, n);
    return c->response.failed ? 0 : n;
}

static void copy_header_value(char *out, size_t cap, const char *v, size_t vl)
{
    while (vl > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sv_http_call_t *c = ud;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(ptr, "retry-after:", 12) == 0)
        copy_header_value(c->retry_after, sizeof(c->retry_after), ptr + 12, n - 12);
    else if (n > 13 && strncasecmp(ptr, "content-type:", 13) == 0)
        copy_header_value(c->content_type, sizeof(c->content_type), ptr + 13, n - 13);
    return n;
}

static sv_err_t setup_easy(sv_http_call_t *c)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return SV_ENOMEM;
    c->easy_ = e;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 5000 ? c->timeout_ms : 5000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "scaivault/" SV_VERSION_STRING);
    if (c->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->headers != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    if (strcmp(c->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
    if (c->body.len > 0 || strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body.base != NULL ? (char *)c->body.base : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body.len);
    }
    if (c->secure_response)
        c->response.secure = true;
    return SV_OK;
}

static sv_err_t err_from_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return SV_OK;
    case CURLE_OPERATION_TIMEDOUT: return SV_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY: return SV_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return SV_EINVAL;
    case CURLE_WRITE_ERROR: return SV_ETOOBIG;
    default: return SV_EUPSTREAM;
    }
}

/* ---- the thread ---- */

static void finish_call(sv_outbound_t *ob, sv_http_call_t *c, CURLcode rc)
{
    if (c->result == SV_OK)
        c->result = err_from_curl(rc);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->easy_, CURLINFO_RESPONSE_CODE, &c->status);
    curl_off_t t = 0;
    curl_easy_getinfo(c->easy_, CURLINFO_TOTAL_TIME_T, &t);
    c->duration_us = (uint64_t)t;
    sv_latency_record(&ob->latency, c->duration_us);
    curl_multi_remove_handle(ob->multi, c->easy_);
    curl_easy_cleanup(c->easy_);
    c->easy_ = NULL;
    ob->running--;
    for (sv_http_call_t **p = &ob->running_list; *p != NULL; p = &(*p)->running_next_) {
        if (*p == c) {
            *p = c->running_next_;
            break;
        }
    }
    c->done(c);
}

static void run_due_timers(sv_outbound_t *ob, long *next_ms)
{
    for (;;) {
        pthread_mutex_lock(&ob->lock);
        timer_t_ *t = ob->timers;
        uint64_t now = sv_mono_us();
        if (t == NULL || t->due_us > now) {
            if (t != NULL) {
                long ms = (long)((t->due_us - now) / 1000) + 1;
                if (ms < *next_ms)
                    *next_ms = ms;
            }
            pthread_mutex_unlock(&ob->lock);
            return;
        }
        ob->timers = t->next;
        ob->running_timer = t;
        pthread_mutex_unlock(&ob->lock);
        t->fn(t->arg);
        pthread_mutex_lock(&ob->lock);
        ob->running_timer = NULL;
        pthread_cond_broadcast(&ob->timer_done);
        pthread_mutex_unlock(&ob->lock);
        free(t);
    }
}

static void *outbound_main(void *arg)
{
    sv_outbound_t *ob = arg;
    for (;;) {
        pthread_mutex_lock(&ob->lock);
        sv_http_call_t *q = ob->queue_head;
        ob->queue_head = ob->queue_tail = NULL;
        bool stopping = ob->stopping;
        pthread_mutex_unlock(&ob->lock);
        for (sv_http_call_t *c = q, *next; c != NULL; c = next) {
            next = c->next_;
            if (stopping) {
                c->result = SV_ESHUTDOWN;
                c->done(c);
                continue;
            }
            sv_err_t err = setup_easy(c);
            if (err == SV_OK && curl_multi_add_handle(ob->multi, c->easy_) != CURLM_OK)
                err = SV_ENOMEM;
            if (err != SV_OK) {
                c->result = err;
                c->done(c);
                continue;
            }
            ob->running++;
            c->running_next_ = ob->running_list;
            ob->running_list = c;
        }
        if (stopping)
            break;
        int still;
        curl_multi_perform(ob->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(ob->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            sv_http_call_t *c;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            finish_call(ob, c, m->data.result);
        }
        long wait_ms = 1000;
        run_due_timers(ob, &wait_ms);
        long curl_ms = -1;
        curl_multi_timeout(ob->multi, &curl_ms);
        if (curl_ms >= 0 && curl_ms < wait_ms)
            wait_ms = curl_ms;
        curl_multi_poll(ob->multi, NULL, 0, (int)wait_ms, NULL);
    }
    /* the transfers still running end here */
    while (ob->running_list != NULL) {
        sv_http_call_t *c = ob->running_list;
        ob->running_list = c->running_next_;
        curl_multi_remove_handle(ob->multi, c->easy_);
        curl_easy_cleanup(c->easy_);
        c->easy_ = NULL;
        c->result = SV_ESHUTDOWN;
        ob->running--;
        c->done(c);
    }
    return NULL;
}

sv_err_t sv_outbound_start(sv_outbound_t **out)
{
    sv_outbound_t *ob = calloc(1, sizeof(*ob));
    if (ob == NULL)
        return SV_ENOMEM;
    ob->multi = curl_multi_init();
    if (ob->multi == NULL) {
        free(ob);
        return SV_ENOMEM;
    }
    curl_multi_setopt(ob->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
    pthread_mutex_init(&ob->lock, NULL);
    pthread_cond_init(&ob->timer_done, NULL);
    if (pthread_create(&ob->thread, NULL, outbound_main, ob) != 0) {
        pthread_mutex_destroy(&ob->lock);
        curl_multi_cleanup(ob->multi);
        free(ob);
        return SV_ENOMEM;
    }
    *out = ob;
    return SV_OK;
}

void sv_outbound_stop(sv_outbound_t *ob)
{
    if (ob == NULL)
        return;
    pthread_mutex_lock(&ob->lock);
    ob->stopping = true;
    pthread_mutex_unlock(&ob->lock);
    curl_multi_wakeup(ob->multi);
    pthread_join(ob->thread, NULL);
    while (ob->timers != NULL) {
        timer_t_ *t = ob->timers;
        ob->timers = t->next;
        free(t);
    }
    curl_multi_cleanup(ob->multi);
    pthread_cond_destroy(&ob->timer_done);
    pthread_mutex_destroy(&ob->lock);
    free(ob);
}

sv_err_t sv_outbound_submit(sv_outbound_t *ob, sv_http_call_t *c)
{
    if (c->done == NULL)
        return SV_EINVAL;
    c->result = SV_OK;
    c->status = 0;
    c->error[0] = 0;
    c->retry_after[0] = 0;
    c->content_type[0] = 0;
    sv_buf_clear(&c->response);
    c->next_ = NULL;
    pthread_mutex_lock(&ob->lock);
    if (ob->stopping) {
        pthread_mutex_unlock(&ob->lock);
        return SV_ESHUTDOWN;
    }
    if (ob->queue_tail != NULL)
        ob->queue_tail->next_ = c;
    else
        ob->queue_head = c;
    ob->queue_tail = c;
    pthread_mutex_unlock(&ob->lock);
    curl_multi_wakeup(ob->multi);
    return SV_OK;
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    sv_http_call_done_fn user_done;
} run_wait_t;

static void run_done(sv_http_call_t *c)
{
    run_wait_t *w = c->wait_;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

sv_err_t sv_outbound_run(sv_outbound_t *ob, sv_http_call_t *c)
{
    run_wait_t w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    c->done = run_done;
    c->wait_ = &w;
    sv_err_t err = sv_outbound_submit(ob, c);
    if (err != SV_OK)
        return err;
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return c->result;
}

sv_err_t sv_outbound_timer(sv_outbound_t *ob, uint64_t delay_ms, void (*fn)(void *arg), void *arg)
{
    timer_t_ *t = malloc(sizeof(*t));
    if (t == NULL)
        return SV_ENOMEM;
    t->due_us = sv_mono_us() + delay_ms * 1000;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&ob->lock);
    if (ob->stopping) {
        pthread_mutex_unlock(&ob->lock);
        free(t);
        return SV_ESHUTDOWN;
    }
    timer_t_ **p = &ob->timers;
    while (*p != NULL && (*p)->due_us <= t->due_us)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    pthread_mutex_unlock(&ob->lock);
    curl_multi_wakeup(ob->multi);
    return SV_OK;
}

void sv_outbound_timer_cancel(sv_outbound_t *ob, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&ob->lock);
    for (timer_t_ **p = &ob->timers; *p != NULL;) {
        timer_t_ *t = *p;
        if (t->fn == fn && t->arg == arg) {
            *p = t->next;
            free(t);
        } else {
            p = &t->next;
        }
    }
    while (ob->running_timer != NULL && ob->running_timer->fn == fn && ob->running_timer->arg == arg)
        pthread_cond_wait(&ob->timer_done, &ob->lock);
    pthread_mutex_unlock(&ob->lock);
}
