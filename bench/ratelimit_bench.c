/*
 * ratelimit_bench.c - what rate limiting adds to a request: the cost of
 * sv_rl_take() (key hash, one shard lock, the bucket arithmetic, the clock
 * read) and of the step as a whole (take plus formatting the two RateLimit
 * headers), single-threaded and on several threads at once.
 *
 * The budget is 1 µs per request. Reference costs measured in the same run
 * (a clock read, an uncontended mutex lock/unlock, one SipHash) show where
 * the time goes. Each figure is the median of 3 runs.
 *
 * Usage: bench/ratelimit_bench [--ops N] [--threads T] > report.json
 * Run it from a build without sanitizers (./scripts/build build).
 */
#include "sv_autoconf.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/ratelimit.h"

#define RUNS 3
#define KEYS 10000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char keys[KEYS][40];
static size_t key_len[KEYS];
static volatile uint64_t sink;

typedef enum { HOT_KEY, MANY_KEYS, STEP, REFUSED, CLOCK, MUTEX, SIPHASH } kind_t;

typedef struct {
    sv_ratelimit_t *rl;
    kind_t kind;
    uint64_t ops;
    unsigned thread;
    pthread_barrier_t *start;
    uint64_t elapsed_ns;
} job_t;

static void *run_job(void *arg)
{
    job_t *j = arg;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    uint8_t hash_key[crypto_shorthash_siphashx24_KEYBYTES] = {1};
    char policy[64], state[64];
    uint64_t acc = 0;
    /* each thread its own token (as each client has its own), except REFUSED */
    char hot[48], jti[128];
    snprintf(hot, sizeof(hot), "j:0f3e2d1c-hot-token-%u", j->thread);
    snprintf(jti, sizeof(jti), "%s", hot + 2); /* as in sv_principal_t */
    pthread_barrier_wait(j->start);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < j->ops; i++) {
        sv_rl_result_t r;
        switch (j->kind) {
        case HOT_KEY:
            sv_rl_take(j->rl, SV_BYTES(hot, strlen(hot)), "tnt_bench", SV_RL_READ, sv_rl_now_ns(), &r);
            acc += r.remaining;
            break;
        case MANY_KEYS: {
            size_t k = (i * 7919 + j->thread * 13) % KEYS;
            sv_rl_take(j->rl, SV_BYTES(keys[k], key_len[k]), "tnt_bench", SV_RL_READ, sv_rl_now_ns(), &r);
            acc += r.remaining;
            break;
        }
        case STEP: {
            /* as http/ratelimit.c: key "j:" + jti, take, format, copy both
             * header values into the request (sv_req_add_header's snprintf) */
            char key[2 + 128], hv[2][128];
            size_t kl = strnlen(jti, sizeof(jti) - 1);
            key[0] = 'j';
            key[1] = ':';
            memcpy(key + 2, jti, kl);
            sv_rl_take(j->rl, SV_BYTES(key, kl + 2), "tnt_bench", SV_RL_READ, sv_rl_now_ns(), &r);
            sv_rl_format_headers(&r, SV_RL_READ, policy, state);
            snprintf(hv[0], sizeof(hv[0]), "%s", policy);
            snprintf(hv[1], sizeof(hv[1]), "%s", state);
            acc += (uint8_t)hv[0][3] + (uint8_t)hv[1][5];
            break;
        }
        case REFUSED:
            sv_rl_take(j->rl, SV_BYTES(hot, strlen(hot)), "tnt_bench", SV_RL_AUTH, sv_rl_now_ns(), &r);
            acc += r.allowed;
            break;
        case CLOCK:
            acc += sv_rl_now_ns();
            break;
        case MUTEX:
            pthread_mutex_lock(&mu);
            acc++;
            pthread_mutex_unlock(&mu);
            break;
        case SIPHASH: {
            uint8_t h[16];
            crypto_shorthash_siphashx24(h, (const uint8_t *)hot, 40, hash_key);
            acc += h[0];
            break;
        }
        }
    }
    j->elapsed_ns = now_ns() - t0;
    sink += acc;
    return NULL;
}

/* One run: threads jobs of ops each; ns per operation (wall time / ops per thread). */
static double run_once(kind_t kind, unsigned threads, uint64_t ops)
{
    /* READ: effectively unlimited (every take is allowed); AUTH: 1 per hour
     * (every take after the first is refused) */
    sv_rate_t rates[SV_RL_COUNT_] = {{4000000000u, 1}, {1200, 60}, {600, 60}, {600, 60}, {300, 60}, {1, 3600}};
    sv_ratelimit_t *rl;
    if (sv_rl_new(rates, 0, NULL, &rl) != SV_OK) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, threads);
    job_t jobs[64];
    pthread_t tid[64];
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (job_t){.rl = rl, .kind = kind, .ops = ops, .thread = t, .start = &start};
        pthread_create(&tid[t], NULL, run_job, &jobs[t]);
    }
    uint64_t worst = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        if (jobs[t].elapsed_ns > worst)
            worst = jobs[t].elapsed_ns;
    }
    pthread_barrier_destroy(&start);
    sv_rl_free(rl);
    return (double)worst / (double)ops;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, const char *what, kind_t kind, unsigned threads, uint64_t ops, bool *first)
{
    double runs[RUNS];
    for (int i = 0; i < RUNS; i++)
        runs[i] = run_once(kind, threads, ops);
    double sorted[RUNS];
    memcpy(sorted, runs, sizeof(runs));
    qsort(sorted, RUNS, sizeof(double), cmp_d);
    printf("%s    {\"name\": \"%s\", \"what\": \"%s\", \"threads\": %u, \"ops_per_thread\": %llu, "
           "\"ns_per_op\": %.1f, \"runs_ns_per_op\": [%.1f, %.1f, %.1f]}",
           *first ? "" : ",\n", name, what, threads, (unsigned long long)ops, sorted[RUNS / 2], runs[0], runs[1],
           runs[2]);
    *first = false;
    fflush(stdout);
}

int main(int argc, char **argv)
{
    uint64_t ops = 2000000;
    unsigned max_threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ops") == 0)
            ops = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            max_threads = (unsigned)atoi(argv[i + 1]);
    }
    if (max_threads < 1 || max_threads > 64 || ops == 0) {
        fprintf(stderr, "usage: %s [--ops N] [--threads 1..64]\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    for (int k = 0; k < KEYS; k++)
        key_len[k] = (size_t)snprintf(keys[k], sizeof(keys[k]), "j:%08x-4b1e-token-%d", (unsigned)k * 2654435761u, k);

    printf("{\n  \"benchmark\": \"ratelimit\",\n  \"budget_ns_per_request\": 1000,\n  \"results\": [\n");
    bool first = true;
    report("take_hot_key", "sv_rl_take on one token's bucket (the usual case)", HOT_KEY, 1, ops, &first);
    report("take_many_keys", "sv_rl_take over 10000 tokens' buckets (cache misses)", MANY_KEYS, 1, ops, &first);
    report("step", "the whole HTTP step: key, take, RateLimit-Policy and RateLimit formatted and copied", STEP, 1, ops,
           &first);
    report("take_refused", "sv_rl_take on an exhausted bucket", REFUSED, 1, ops, &first);
    for (unsigned t = 2; t <= max_threads; t *= 2) {
        report("take_hot_key", "one token per thread, all threads at once", HOT_KEY, t, ops, &first);
        report("take_many_keys", "10000 tokens shared by all threads", MANY_KEYS, t, ops, &first);
        report("step", "the whole HTTP step, one token per thread", STEP, t, ops, &first);
    }
    printf("\n  ],\n  \"reference\": [\n");
    first = true;
    report("clock_gettime", "one CLOCK_MONOTONIC read (take does one)", CLOCK, 1, ops, &first);
    report("mutex_pair", "an uncontended pthread mutex lock + unlock (take does one)", MUTEX, 1, ops, &first);
    report("siphashx24_40B", "crypto_shorthash_siphashx24 of 40 bytes (take does one)", SIPHASH, 1, ops, &first);
    printf("\n  ]\n}\n");
    return 0;
}
