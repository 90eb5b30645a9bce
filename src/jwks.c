/*
 * jwks.c - key sets and the source that fetches them (jwks.h).
 *
 * A set is immutable once built: a refresh builds a new one and swaps the
 * source's pointer under a mutex, and readers hold a reference for as long as
 * they use a key. That lock is taken only when a token is verified for the
 * first time (cached tokens never look at the set), so it is off the hot path.
 *
 * The source is a small state machine driven entirely on the outbound thread:
 * (discovery →) JWKS fetch → parse → swap → wake the parked requests. Its
 * timers and in-flight calls reference it, so stopping cancels the timers and
 * waits for the calls before freeing it.
 *
 * Sets: any thread. The source: public functions any thread; callbacks on the
 * outbound thread.
 */
#include "sv_autoconf.h"

#include "src/jwks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/log.h"

#define JWKS_MAX_KEYS 64
#define JWKS_MAX_BYTES (1u << 20)

struct sv_jwks {
    _Atomic unsigned refs;
    uint64_t serial;
    size_t n;
    sv_jwk_t keys[];
};

static _Atomic uint64_t next_serial = 1;

static sv_jwks_t *jwks_alloc(size_t n)
{
    sv_jwks_t *s = calloc(1, sizeof(*s) + n * sizeof(sv_jwk_t));
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->serial = atomic_fetch_add(&next_serial, 1);
    return s;
}

void sv_jwks_ref(sv_jwks_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void sv_jwks_unref(sv_jwks_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        EVP_PKEY_free(s->keys[i].pkey);
    free(s);
}

const sv_jwk_t *sv_jwks_find(const sv_jwks_t *s, const char *kid)
{
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i].kid, kid) == 0)
            return &s->keys[i];
    return NULL;
}

size_t sv_jwks_count(const sv_jwks_t *s)
{
    return s != NULL ? s->n : 0;
}

uint64_t sv_jwks_serial(const sv_jwks_t *s)
{
    return s != NULL ? s->serial : 0;
}

sv_err_t sv_jwks_from_keys(sv_jwk_t *keys, size_t n, sv_jwks_t **out)
{
    sv_jwks_t *s = jwks_alloc(n);
    if (s == NULL)
        return SV_ENOMEM;
    memcpy(s->keys, keys, n * sizeof(*keys));
    s->n = n;
    *out = s;
    return SV_OK;
}

sv_err_t sv_jwks_parse(const void *json, size_t len, const sv_jwks_t *prev, sv_jwks_t **out, unsigned *skipped,
                       char *why, size_t whylen)
{
    if (skipped != NULL)
        *skipped = 0;
    sv_json_doc_t *doc;
    sv_json_error_t jerr;
    sv_json_status_t js = sv_json_parse(json, len, false, &doc, &jerr);
    if (js != SV_JSON_OK) {
        snprintf(why, whylen, "the JWKS is not valid JSON");
        return js == SV_JSON_ENOMEM ? SV_ENOMEM : SV_EINVAL;
    }
    sv_err_t err = SV_OK;
    sv_json_t *keys = sv_json_get(sv_json_root(doc), "keys");
    if (keys == NULL || keys->type != SV_JSON_ARRAY) {
        snprintf(why, whylen, "the JWKS has no \"keys\" array");
        err = SV_EINVAL;
        goto free_doc;
    }
    size_t n = keys->u.kids.n < JWKS_MAX_KEYS ? keys->u.kids.n : JWKS_MAX_KEYS;
    sv_jwks_t *s = jwks_alloc(n);
    if (s == NULL) {
        err = SV_ENOMEM;
        goto free_doc;
    }
    for (const sv_json_t *k = keys->u.kids.first; k != NULL && s->n < n; k = k->next) {
        sv_jwk_t key;
        char kwhy[160];
        sv_err_t kerr = sv_jwk_parse(k, &key, kwhy, sizeof(kwhy));
        if (kerr == SV_ENOMEM) {
            err = SV_ENOMEM;
            break;
        }
        if (kerr != SV_OK || sv_jwks_find(s, key.kid) != NULL) {
            if (kerr == SV_OK)
                EVP_PKEY_free(key.pkey); /* a duplicate kid: the first one wins */
            else
                sv_log_debug("jwks: key skipped: %s", kwhy);
            if (skipped != NULL)
                (*skipped)++;
            continue;
        }
        /* same kid and same material as before: keep the key parsed last time */
        const sv_jwk_t *old = sv_jwks_find(prev, key.kid);
        if (old != NULL && old->alg == key.alg && memcmp(old->material_hash, key.material_hash, 16) == 0 &&
            EVP_PKEY_up_ref(old->pkey) == 1) {
            EVP_PKEY_free(key.pkey);
            key.pkey = old->pkey;
        }
        s->keys[s->n++] = key;
    }
    if (err != SV_OK) {
        sv_jwks_unref(s);
        goto free_doc;
    }
    *out = s;
free_doc:
    sv_json_doc_free(doc);
    return err;
}

/* ---- the source ---- */

struct sv_jwks_source {
    sv_outbound_t *ob;
    char *issuer;
    char *jwks_url;        /* configured, or NULL */
    sv_jwks_source_opts_t opts;

    pthread_mutex_t lock;  /* guards everything below */
    pthread_cond_t idle;   /* signalled when a refresh ends or a call is done */
    sv_jwks_t *current;
    _Atomic uint64_t serial; /* current's serial, readable without the lock */
    bool in_flight;        /* a refresh is running */
    unsigned calls;        /* HTTP calls submitted and not yet done */
    bool stopping;
    uint64_t last_forced_us; /* monotonic */
    int64_t last_success_s;  /* wall clock; 0: never */
    bool last_ok;
    uint64_t fetches, failures;
    char last_error[160];
    char discovered_jwks[512];
    char token_endpoint[512];
    sv_jwks_waiter_t *waiters;
    bool first_done;       /* the first refresh ended */
};

static void start_refresh_locked(sv_jwks_source_t *src);

static void call_started(sv_jwks_source_t *src)
{
    pthread_mutex_lock(&src->lock);
    src->calls++;
    pthread_mutex_unlock(&src->lock);
}

/* The last thing a call's callback does: after the unlock, src may be gone. */
static void call_ended(sv_jwks_source_t *src)
{
    pthread_mutex_lock(&src->lock);
    src->calls--;
    pthread_cond_broadcast(&src->idle);
    pthread_mutex_unlock(&src->lock);
}

/* Detaches the waiters whose deadline passed (all when all is true). */
static sv_jwks_waiter_t *take_waiters_locked(sv_jwks_source_t *src, bool all, uint64_t now)
{
    sv_jwks_waiter_t *fired = NULL;
    for (sv_jwks_waiter_t **p = &src->waiters; *p != NULL;) {
        sv_jwks_waiter_t *w = *p;
        if (all || w->deadline_us <= now) {
            *p = w->next_;
            w->next_ = fired;
            fired = w;
        } else {
            p = &w->next_;
        }
    }
    return fired;
}

static void fire_waiters(sv_jwks_waiter_t *w)
{
    while (w != NULL) {
        sv_jwks_waiter_t *next = w->next_;
        w->fn(w->arg); /* w belongs to its owner from here */
        w = next;
    }
}

/* Ends a refresh (success or not): swap, wake, signal. Outbound thread. */
static void refresh_done(sv_jwks_source_t *src, sv_jwks_t *set, const char *error)
{
    pthread_mutex_lock(&src->lock);
    src->fetches++;
    sv_jwks_t *old = NULL;
    if (set != NULL) {
        old = src->current;
        src->current = set;
        atomic_store(&src->serial, set->serial);
        src->last_success_s = sv_now_s();
        src->last_ok = true;
        src->last_error[0] = 0;
    } else {
        src->failures++;
        src->last_ok = false;
        snprintf(src->last_error, sizeof(src->last_error), "%s", error);
    }
    src->in_flight = false;
    src->first_done = true;
    sv_jwks_waiter_t *fired = take_waiters_locked(src, true, 0);
    pthread_cond_broadcast(&src->idle);
    pthread_mutex_unlock(&src->lock);
    sv_jwks_unref(old);
    if (set == NULL)
        sv_log_warn("jwks: refresh from %s failed (keys held so far stay in use): %s", src->issuer, error);
    else
        sv_log_debug("jwks: %zu keys from %s", set->n, src->issuer);
    fire_waiters(fired);
}

static void jwks_fetched(sv_http_call_t *c)
{
    sv_jwks_source_t *src = c->arg;
    char why[160] = "";
    sv_jwks_t *set = NULL;
    if (c->result != SV_OK) {
        snprintf(why, sizeof(why), "JWKS fetch: %.120s", c->error[0] ? c->error : sv_strerror(c->result));
    } else if (c->status != 200) {
        snprintf(why, sizeof(why), "JWKS fetch: HTTP %ld", c->status);
    } else {
        pthread_mutex_lock(&src->lock);
        sv_jwks_t *prev = src->current;
        if (prev != NULL)
            sv_jwks_ref(prev);
        pthread_mutex_unlock(&src->lock);
        unsigned skipped = 0;
        char pwhy[120] = "";
        if (sv_jwks_parse(c->response.base, c->response.len, prev, &set, &skipped, pwhy, sizeof(pwhy)) != SV_OK) {
            snprintf(why, sizeof(why), "JWKS: %s", pwhy);
            set = NULL;
        } else if (set->n == 0) {
            snprintf(why, sizeof(why), "JWKS: no usable key (%u skipped)", skipped);
            sv_jwks_unref(set);
            set = NULL;
        }
        sv_jwks_unref(prev);
    }
    sv_http_call_free(c);
    refresh_done(src, set, why);
    call_ended(src);
}

/* GETs url; done(call) runs on the outbound thread. A call that cannot be
 * made ends the refresh. */
static void fetch(sv_jwks_source_t *src, const char *url, const char *accept, sv_http_call_done_fn done)
{
    sv_http_call_t *c = sv_http_call_new("GET", url);
    if (c == NULL) {
        refresh_done(src, NULL, "out of memory");
        return;
    }
    sv_http_call_header(c, accept);
    c->timeout_ms = src->opts.fetch_timeout_ms;
    c->max_response_bytes = JWKS_MAX_BYTES;
    c->done = done;
    c->arg = src;
    call_started(src);
    if (sv_outbound_submit(src->ob, c) != SV_OK) {
        sv_http_call_free(c);
        refresh_done(src, NULL, "the outbound pool is stopping");
        call_ended(src);
    }
}

static void fetch_jwks(sv_jwks_source_t *src, const char *url)
{
    fetch(src, url, "Accept: application/json, application/jwk-set+json", jwks_fetched);
}

static bool is_http_url(const char *s, size_t n)
{
    return (n > 7 && strncmp(s, "http://", 7) == 0) || (n > 8 && strncmp(s, "https://", 8) == 0);
}

/* Compares two issuer strings ignoring one trailing slash. */
static bool same_issuer(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    if (al > 0 && a[al - 1] == '/')
        al--;
    if (bl > 0 && b[bl - 1] == '/')
        bl--;
    return al == bl && memcmp(a, b, al) == 0;
}

static void discovery_fetched(sv_http_call_t *c)
{
    sv_jwks_source_t *src = c->arg;
    char why[160] = "";
    char jwks_url[512] = "";
    if (c->result != SV_OK) {
        snprintf(why, sizeof(why), "discovery: %.120s", c->error[0] ? c->error : sv_strerror(c->result));
    } else if (c->status != 200) {
        snprintf(why, sizeof(why), "discovery: HTTP %ld", c->status);
    } else {
        sv_json_doc_t *doc;
        sv_json_error_t jerr;
        if (sv_json_parse(c->response.base, c->response.len, false, &doc, &jerr) != SV_JSON_OK) {
            snprintf(why, sizeof(why), "discovery: not valid JSON");
        } else {
            sv_json_t *root = sv_json_root(doc);
            size_t jl = 0, tl = 0, il = 0;
            const char *ju = sv_json_get_str(root, "jwks_uri", &jl);
            const char *te = sv_json_get_str(root, "token_endpoint", &tl);
            const char *iss = sv_json_get_str(root, "issuer", &il);
            if (iss == NULL || !same_issuer(iss, il, src->issuer))
                snprintf(why, sizeof(why), "discovery: the document's issuer is not %s", src->issuer);
            else if (ju == NULL || jl >= sizeof(jwks_url) || !is_http_url(ju, jl))
                snprintf(why, sizeof(why), "discovery: no usable jwks_uri");
            else {
                memcpy(jwks_url, ju, jl);
                jwks_url[jl] = 0;
                pthread_mutex_lock(&src->lock);
                snprintf(src->discovered_jwks, sizeof(src->discovered_jwks), "%s", jwks_url);
                if (te != NULL && tl < sizeof(src->token_endpoint) && is_http_url(te, tl)) {
                    memcpy(src->token_endpoint, te, tl);
                    src->token_endpoint[tl] = 0;
                }
                pthread_mutex_unlock(&src->lock);
            }
            sv_json_doc_free(doc);
        }
    }
    sv_http_call_free(c);
    pthread_mutex_lock(&src->lock);
    bool stopping = src->stopping;
    pthread_mutex_unlock(&src->lock);
    if (jwks_url[0] == 0 || stopping)
        refresh_done(src, NULL, stopping ? "stopping" : why);
    else
        fetch_jwks(src, jwks_url);
    call_ended(src);
}

/* Runs on the outbound thread (a timer), so calls are only submitted there. */
static void refresh_kick(void *arg)
{
    sv_jwks_source_t *src = arg;
    if (src->jwks_url != NULL) {
        fetch_jwks(src, src->jwks_url);
        return;
    }
    char url[600];
    size_t il = strlen(src->issuer);
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
             (int)(il > 0 && src->issuer[il - 1] == '/' ? il - 1 : il), src->issuer);
    fetch(src, url, "Accept: application/json", discovery_fetched);
}

static void start_refresh_locked(sv_jwks_source_t *src)
{
    if (src->in_flight || src->stopping)
        return;
    src->in_flight = true;
    if (sv_outbound_timer(src->ob, 0, refresh_kick, src) != SV_OK) {
        src->in_flight = false;
        pthread_cond_broadcast(&src->idle);
    }
}

static void periodic_tick(void *arg)
{
    sv_jwks_source_t *src = arg;
    pthread_mutex_lock(&src->lock);
    start_refresh_locked(src);
    if (!src->stopping)
        sv_outbound_timer(src->ob, src->opts.refresh_ms, periodic_tick, src);
    pthread_mutex_unlock(&src->lock);
}

static void deadline_tick(void *arg)
{
    sv_jwks_source_t *src = arg;
    pthread_mutex_lock(&src->lock);
    sv_jwks_waiter_t *fired = take_waiters_locked(src, false, sv_mono_us());
    pthread_mutex_unlock(&src->lock);
    fire_waiters(fired);
}

sv_err_t sv_jwks_source_start(sv_outbound_t *ob, const sv_jwks_source_opts_t *opts, sv_jwks_source_t **out)
{
    sv_jwks_source_t *src = calloc(1, sizeof(*src));
    if (src == NULL)
        return SV_ENOMEM;
    src->ob = ob;
    src->opts = *opts;
    if (src->opts.refresh_ms == 0)
        src->opts.refresh_ms = 600000;
    if (src->opts.wait_ms == 0)
        src->opts.wait_ms = 2000;
    if (src->opts.fetch_timeout_ms == 0)
        src->opts.fetch_timeout_ms = 5000;
    src->issuer = strdup(opts->issuer);
    src->jwks_url = opts->jwks_url != NULL ? strdup(opts->jwks_url) : NULL;
    if (src->issuer == NULL || (opts->jwks_url != NULL && src->jwks_url == NULL)) {
        free(src->issuer);
        free(src->jwks_url);
        free(src);
        return SV_ENOMEM;
    }
    pthread_mutex_init(&src->lock, NULL);
    pthread_cond_init(&src->idle, NULL);
    pthread_mutex_lock(&src->lock);
    start_refresh_locked(src);
    sv_outbound_timer(ob, src->opts.refresh_ms, periodic_tick, src);
    /* wait for the first fetch so that the first requests find keys */
    while (src->in_flight)
        pthread_cond_wait(&src->idle, &src->lock);
    pthread_mutex_unlock(&src->lock);
    *out = src;
    return SV_OK;
}

void sv_jwks_source_stop(sv_jwks_source_t *src)
{
    if (src == NULL)
        return;
    pthread_mutex_lock(&src->lock);
    src->stopping = true;
    pthread_mutex_unlock(&src->lock);
    sv_outbound_timer_cancel(src->ob, periodic_tick, src);
    sv_outbound_timer_cancel(src->ob, deadline_tick, src);
    sv_outbound_timer_cancel(src->ob, refresh_kick, src);
    pthread_mutex_lock(&src->lock);
    while (src->calls > 0)
        pthread_cond_wait(&src->idle, &src->lock);
    sv_jwks_waiter_t *fired = take_waiters_locked(src, true, 0);
    pthread_mutex_unlock(&src->lock);
    fire_waiters(fired);
    sv_jwks_unref(src->current);
    pthread_cond_destroy(&src->idle);
    pthread_mutex_destroy(&src->lock);
    free(src->issuer);
    free(src->jwks_url);
    free(src);
}

sv_jwks_t *sv_jwks_source_get(sv_jwks_source_t *src)
{
    pthread_mutex_lock(&src->lock);
    sv_jwks_t *s = src->current;
    if (s != NULL)
        sv_jwks_ref(s);
    pthread_mutex_unlock(&src->lock);
    return s;
}

/* The shortest time between two unknown-kid refreshes: min_forced_ms after a
 * successful fetch; after a failed one (ScaiKey down, or no keys yet) a short
 * back-off, so the keys arrive soon after ScaiKey is back. Locked. */
static uint64_t min_forced_us_locked(const sv_jwks_source_t *src)
{
    uint64_t ms = src->last_ok ? src->opts.min_forced_ms : 2000;
    if (ms > src->opts.min_forced_ms)
        ms = src->opts.min_forced_ms;
    return ms * 1000;
}

bool sv_jwks_source_wait(sv_jwks_source_t *src, sv_jwks_waiter_t *w)
{
    uint64_t now = sv_mono_us();
    pthread_mutex_lock(&src->lock);
    if (src->stopping ||
        (!src->in_flight && src->last_forced_us != 0 && now - src->last_forced_us < min_forced_us_locked(src))) {
        pthread_mutex_unlock(&src->lock);
        return false;
    }
    if (!src->in_flight) {
        src->last_forced_us = now;
        start_refresh_locked(src);
        if (!src->in_flight) {
            pthread_mutex_unlock(&src->lock);
            return false;
        }
    }
    w->deadline_us = now + src->opts.wait_ms * 1000;
    w->next_ = src->waiters;
    src->waiters = w;
    sv_outbound_timer(src->ob, src->opts.wait_ms + 1, deadline_tick, src);
    pthread_mutex_unlock(&src->lock);
    return true;
}

void sv_jwks_source_refresh(sv_jwks_source_t *src)
{
    uint64_t now = sv_mono_us();
    pthread_mutex_lock(&src->lock);
    if (!src->in_flight && (src->last_forced_us == 0 || now - src->last_forced_us >= min_forced_us_locked(src))) {
        src->last_forced_us = now;
        start_refresh_locked(src);
    }
    pthread_mutex_unlock(&src->lock);
}

uint64_t sv_jwks_source_serial(sv_jwks_source_t *src)
{
    return atomic_load_explicit(&src->serial, memory_order_acquire);
}

void sv_jwks_source_stats(sv_jwks_source_t *src, sv_jwks_source_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&src->lock);
    out->age_s = src->last_success_s > 0 ? sv_now_s() - src->last_success_s : -1;
    out->last_ok = src->last_ok;
    out->keys = sv_jwks_count(src->current);
    out->fetches = src->fetches;
    out->failures = src->failures;
    snprintf(out->last_error, sizeof(out->last_error), "%s", src->last_error);
    snprintf(out->token_endpoint, sizeof(out->token_endpoint), "%s", src->token_endpoint);
    pthread_mutex_unlock(&src->lock);
}
