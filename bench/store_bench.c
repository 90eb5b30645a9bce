/*
 * store_bench.c - storage engine benchmark: durable writes per second through
 * the group-commit writer with 1, 16 and 64 concurrent clients, next to a
 * one-commit-per-write LMDB baseline measured in the same run, and random
 * mdb_get reads per second per thread on 1 KB values with reused read
 * transactions. Each figure is the median of --runs runs; JSON goes to stdout
 * or --json FILE.
 *
 *   store_bench [--data-dir DIR] [--seconds S] [--runs N] [--json FILE]
 *               [--clients 1,16,64] [--value-size BYTES] [--read-keys N]
 *               [--read-threads 1,2] [--model workers|threads]
 *
 * The design choice: the baseline and the writer run on the same filesystem,
 * in the same process, in each run, the baseline half before and half after
 * the writer figures, so the ratio between them holds even when absolute
 * numbers move (the machine is shared, and fsync latency drifts with it). Every
 * write is durable (no MDB_NOSYNC): a writer unit puts one key and its change
 * record and completes only after the fsync of its batch, exactly as an API
 * write would. Not part of `make check`: it measures, it does not assert.
 *
 * Next to each rate it reports what one commit cost: its duration, the bytes
 * it wrote and its write calls. LMDB writes each run of adjacent dirty pages
 * with one call, so write calls per commit count the separate places on disk
 * a commit touches, which is what a device flush pays for (see README.md).
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "src/buf.h"
#include "src/json.h"
#include "store/migrate.h"
#include "wal/writer.h"

#define MAX_LIST 8
#define MAX_RUNS 9
#define READ_GOAL 500000.0
#define WRITE_RATIO_GOAL 10.0
#define READS_PER_SNAPSHOT 1000

typedef struct {
    const char *data_dir;
    double seconds;
    int runs;
    const char *json_path;
    int clients[MAX_LIST];
    int n_clients;
    int read_threads[MAX_LIST];
    int n_read_threads;
    size_t value_size;
    unsigned read_keys;
    bool thread_clients; /* --model threads */
} opts_t;

static uint8_t *value_buf;

/* What one durable commit cost, on average over a measurement. */
typedef struct {
    double ms;          /* duration of the commit */
    double kib;         /* bytes written (write calls' payload) */
    double write_calls; /* pwrite/pwritev calls: runs of adjacent pages, and the meta page */
} commit_cost_t;

/* This process's write calls and bytes written so far (/proc/self/io); zeros
 * where the kernel does not say. Only the measured thread writes while it runs. */
static void io_counters(uint64_t *calls, uint64_t *bytes)
{
    *calls = *bytes = 0;
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL)
        return;
    char line[128];
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "syscw: %llu", &v) == 1)
            *calls = v;
        else if (sscanf(line, "wchar: %llu", &v) == 1)
            *bytes = v;
    }
    fclose(f);
}

static void commit_cost(commit_cost_t *c, uint64_t commits, double ms, uint64_t calls0, uint64_t bytes0)
{
    uint64_t calls, bytes;
    io_counters(&calls, &bytes);
    double n = commits > 0 ? (double)commits : 1;
    c->ms = ms;
    c->kib = (double)(bytes - bytes0) / 1024.0 / n;
    c->write_calls = (double)(calls - calls0) / n;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "store_bench: %s\n"
            "usage: store_bench [--data-dir DIR] [--seconds S] [--runs N] [--json FILE]\n"
            "                   [--clients 1,16,64] [--value-size BYTES] [--read-keys N] [--read-threads 1,2]\n"
            "                   [--model workers|threads]\n",
            why);
    return 2;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s != 0 && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1024)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != 0)
            return -1;
    }
    return n;
}

static double now_s(void)
{
    return (double)sv_mono_us() / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double tmp[MAX_RUNS];
    memcpy(tmp, v, (size_t)n * sizeof(double));
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dir(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, empty directory sub under the data dir. */
static void fresh_dir(const opts_t *o, const char *sub, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", o->data_dir, sub);
    remove_dir(out);
}

static sv_store_t *open_store(const char *dir, bool no_sync)
{
    sv_store_t *st;
    sv_store_opts_t so = {.dir = dir, .map_size = (size_t)4 << 30, .max_readers = 256, .no_sync = no_sync};
    sv_err_t err = sv_store_open(&st, &so);
    if (err == SV_OK && (err = sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL)) != SV_OK)
        sv_store_close(st);
    if (err != SV_OK) {
        fprintf(stderr, "store_bench: cannot open %s: %s\n", dir, sv_strerror(err));
        exit(1);
    }
    return st;
}

/* ---- baseline: one durable LMDB commit per write ---- */

static double run_baseline(const opts_t *o, commit_cost_t *cost)
{
    char dir[1024];
    fresh_dir(o, "baseline", dir, sizeof(dir));
    sv_store_t *st = open_store(dir, false);
    MDB_env *env = sv_store_env(st);
    MDB_dbi dbi = sv_store_dbi(st, SV_DB_SECRETS);
    uint64_t n = 0, calls0, bytes0;
    io_counters(&calls0, &bytes0);
    double t0 = now_s(), t;
    do {
        MDB_txn *txn;
        char k[32];
        int kl = snprintf(k, sizeof(k), "b/%012" PRIu64, n);
        MDB_val key = {(size_t)kl, k}, val = {o->value_size, value_buf};
        if (mdb_txn_begin(env, NULL, 0, &txn) != 0 || mdb_put(txn, dbi, &key, &val, 0) != 0 ||
            mdb_txn_commit(txn) != 0) {
            fprintf(stderr, "store_bench: baseline write failed\n");
            exit(1);
        }
        n++;
        t = now_s();
    } while (t - t0 < o->seconds);
    commit_cost(cost, n, (t - t0) * 1000.0 / (double)(n > 0 ? n : 1), calls0, bytes0);
    sv_store_close(st);
    remove_dir(dir);
    return (double)n / (t - t0);
}

/* ---- the writer with N clients ---- */

typedef struct {
    sv_writer_t *w;
    int id;
    size_t value_size;
    atomic_bool *stop;
    uint64_t done;
} client_t;

typedef struct {
    int client;
    uint64_t seq;
    size_t value_size;
} put_op_t;

static sv_err_t apply_put(sv_wtxn_t *tx, sv_unit_t *u)
{
    put_op_t *op = u->arg;
    char k[48];
    int kl = snprintf(k, sizeof(k), "w/%04d/%012" PRIu64, op->client, op->seq);
    return sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, (size_t)kl), SV_BYTES(value_buf, op->value_size));
}

/* --model threads: each client is a thread that submits a unit and blocks
 * until it completes (sv_writer_run), one wakeup per unit. */
static void *client_main(void *arg)
{
    client_t *c = arg;
    put_op_t op = {c->id, 0, c->value_size};
    while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
        sv_unit_t u = {.apply = apply_put, .arg = &op};
        if (sv_writer_run(c->w, &u) != SV_OK) {
            fprintf(stderr, "store_bench: writer unit failed\n");
            exit(1);
        }
        op.seq++;
        c->done++;
    }
    return NULL;
}

/* --model workers (the default): the clients are units kept in flight by as
 * many worker threads as there are cores, each unit resubmitted as soon as it
 * completes. This is how the server drives the writer: HTTP workers hand units
 * over and get the completed ones back through their notifier, one chain per
 * worker per commit (sv_notify), rather than one thread per client. */
typedef struct {
    sv_notify_t notify;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sv_unit_t *done; /* chains posted by the writer, oldest first */
    sv_unit_t *done_tail;
    sv_writer_t *w;
    sv_unit_t *units;
    put_op_t *ops;
    int n;
    atomic_bool *stop;
    uint64_t completed;
} worker_t;

static void worker_post(sv_notify_t *n, sv_unit_t *chain)
{
    worker_t *wk = (worker_t *)n;
    sv_unit_t *tail = chain;
    while (sv_unit_next(tail) != NULL)
        tail = sv_unit_next(tail);
    pthread_mutex_lock(&wk->lock);
    if (wk->done == NULL) {
        wk->done = chain;
        pthread_cond_signal(&wk->cond);
    } else {
        wk->done_tail->next_ = chain;
    }
    wk->done_tail = tail;
    pthread_mutex_unlock(&wk->lock);
}

static void unit_noop(sv_unit_t *u)
{
    (void)u;
}

static void submit_put(worker_t *wk, int i)
{
    wk->units[i] = (sv_unit_t){.apply = apply_put, .arg = &wk->ops[i], .complete = unit_noop, .notify = &wk->notify};
    if (sv_writer_submit(wk->w, &wk->units[i]) != SV_OK) {
        fprintf(stderr, "store_bench: cannot submit a unit\n");
        exit(1);
    }
}

static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    for (int i = 0; i < wk->n; i++)
        submit_put(wk, i);
    int in_flight = wk->n;
    while (in_flight > 0) {
        pthread_mutex_lock(&wk->lock);
        while (wk->done == NULL)
            pthread_cond_wait(&wk->cond, &wk->lock);
        sv_unit_t *u = wk->done;
        wk->done = wk->done_tail = NULL;
        pthread_mutex_unlock(&wk->lock);
        bool stopping = atomic_load_explicit(wk->stop, memory_order_relaxed);
        for (sv_unit_t *next; u != NULL; u = next) {
            next = sv_unit_next(u);
            if (u->result != SV_OK) {
                fprintf(stderr, "store_bench: writer unit failed\n");
                exit(1);
            }
            wk->completed++;
            int i = (int)(u - wk->units);
            if (stopping) {
                in_flight--;
            } else {
                wk->ops[i].seq++;
                submit_put(wk, i);
            }
        }
    }
    return NULL;
}

/* Keeps `clients` units in flight through the writer for o->seconds; returns
 * how many completed. */
static uint64_t drive_workers(const opts_t *o, sv_writer_t *w, int clients, atomic_bool *stop)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n_workers = clients < cores ? clients : (int)(cores > 0 ? cores : 1);
    worker_t *wk = calloc((size_t)n_workers, sizeof(*wk));
    pthread_t *th = calloc((size_t)n_workers, sizeof(*th));
    sv_unit_t *units = calloc((size_t)clients, sizeof(*units));
    put_op_t *ops = calloc((size_t)clients, sizeof(*ops));
    if (wk == NULL || th == NULL || units == NULL || ops == NULL)
        exit(1);
    for (int i = 0; i < clients; i++)
        ops[i] = (put_op_t){i, 0, o->value_size};
    for (int k = 0, first = 0; k < n_workers; k++) {
        int n = clients / n_workers + (k < clients % n_workers ? 1 : 0);
        wk[k].notify.post = worker_post;
        pthread_mutex_init(&wk[k].lock, NULL);
        pthread_cond_init(&wk[k].cond, NULL);
        wk[k].w = w;
        wk[k].units = units + first;
        wk[k].ops = ops + first;
        wk[k].n = n;
        wk[k].stop = stop;
        first += n;
    }
    for (int k = 0; k < n_workers; k++)
        pthread_create(&th[k], NULL, worker_main, &wk[k]);
    usleep((useconds_t)(o->seconds * 1e6));
    atomic_store(stop, true);
    uint64_t total = 0;
    for (int k = 0; k < n_workers; k++) {
        pthread_join(th[k], NULL);
        total += wk[k].completed;
        pthread_cond_destroy(&wk[k].cond);
        pthread_mutex_destroy(&wk[k].lock);
    }
    free(wk);
    free(th);
    free(units);
    free(ops);
    return total;
}

static uint64_t drive_threads(const opts_t *o, sv_writer_t *w, int clients, atomic_bool *stop)
{
    client_t *cl = calloc((size_t)clients, sizeof(*cl));
    pthread_t *th = calloc((size_t)clients, sizeof(*th));
    if (cl == NULL || th == NULL)
        exit(1);
    for (int i = 0; i < clients; i++) {
        cl[i] = (client_t){w, i, o->value_size, stop, 0};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    usleep((useconds_t)(o->seconds * 1e6));
    atomic_store(stop, true);
    uint64_t total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        total += cl[i].done;
    }
    free(cl);
    free(th);
    return total;
}

static double run_writer(const opts_t *o, int clients, double *avg_batch, commit_cost_t *cost)
{
    char dir[1024];
    fresh_dir(o, "writer", dir, sizeof(dir));
    sv_store_t *st = open_store(dir, false);
    sv_writer_t *w;
    if (sv_writer_start(st, NULL, &w) != SV_OK) {
        fprintf(stderr, "store_bench: cannot start the writer\n");
        exit(1);
    }
    atomic_bool stop = false;
    uint64_t calls0, bytes0;
    io_counters(&calls0, &bytes0);
    double t0 = now_s();
    uint64_t total = o->thread_clients ? drive_threads(o, w, clients, &stop) : drive_workers(o, w, clients, &stop);
    double elapsed = now_s() - t0;
    sv_writer_stats_t s;
    sv_writer_stats(w, &s);
    *avg_batch = s.commits > 0 ? (double)s.units / (double)s.commits : 0;
    sv_latency_t *lat = sv_writer_commit_latency(w);
    uint64_t n_lat = sv_latency_count(lat);
    commit_cost(cost, s.commits, n_lat > 0 ? (double)atomic_load(&lat->sum_us) / (double)n_lat / 1000.0 : 0, calls0,
                bytes0);
    sv_writer_stop(w);
    sv_store_close(st);
    remove_dir(dir);
    return (double)total / elapsed;
}

/* ---- random reads ---- */

typedef struct {
    sv_store_t *st;
    unsigned keys;
    double seconds;
    uint64_t seed;
    uint64_t done;
    uint64_t misses;
} reader_t;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void read_key(char *k, int *kl, unsigned i)
{
    *kl = snprintf(k, 32, "r/%010u", i);
}

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    sv_store_reader_t *rd;
    if (sv_store_reader_new(r->st, &rd) != SV_OK)
        exit(1);
    double t0 = now_s();
    do {
        sv_txn_t *tx;
        if (sv_store_read_begin(rd, &tx) != SV_OK)
            exit(1);
        for (int i = 0; i < READS_PER_SNAPSHOT; i++) {
            char k[32];
            int kl;
            read_key(k, &kl, (unsigned)(xorshift(&r->seed) % r->keys));
            sv_bytes_t v;
            if (sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES(k, (size_t)kl), &v) != SV_OK || v.len == 0)
                r->misses++;
        }
        sv_store_read_end(rd);
        r->done += READS_PER_SNAPSHOT;
    } while (now_s() - t0 < r->seconds);
    r->seconds = now_s() - t0;
    sv_store_reader_free(rd);
    return NULL;
}

static sv_store_t *fill_reads(const opts_t *o, char *dir, size_t cap)
{
    fresh_dir(o, "reads", dir, cap);
    sv_store_t *st = open_store(dir, true);
    MDB_txn *txn;
    MDB_dbi dbi = sv_store_dbi(st, SV_DB_SECRETS);
    if (mdb_txn_begin(sv_store_env(st), NULL, 0, &txn) != 0)
        exit(1);
    for (unsigned i = 0; i < o->read_keys; i++) {
        char k[32];
        int kl;
        read_key(k, &kl, i);
        MDB_val key = {(size_t)kl, k}, val = {o->value_size, value_buf};
        if (mdb_put(txn, dbi, &key, &val, 0) != 0)
            exit(1);
    }
    if (mdb_txn_commit(txn) != 0)
        exit(1);
    return st;
}

static double run_reads(sv_store_t *st, const opts_t *o, int threads, uint64_t *misses)
{
    reader_t *r = calloc((size_t)threads, sizeof(*r));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    if (r == NULL || th == NULL)
        exit(1);
    for (int i = 0; i < threads; i++) {
        r[i] = (reader_t){st, o->read_keys, o->seconds, 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1), 0, 0};
        pthread_create(&th[i], NULL, reader_main, &r[i]);
    }
    double per_thread = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        per_thread += (double)r[i].done / r[i].seconds;
        *misses += r[i].misses;
    }
    free(r);
    free(th);
    return per_thread / threads;
}

/* ---- report ---- */

static const char *fs_name(const char *dir)
{
    struct statfs sfs;
    if (statfs(dir, &sfs) != 0)
        return "unknown";
    switch ((unsigned long)sfs.f_type) {
    case 0xEF53:
        return "ext4";
    case 0x01021994:
        return "tmpfs";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x794c7630:
        return "overlayfs";
    default:
        return "other";
    }
}

/* Rates are whole numbers per second; ratios keep their fraction. */
static void jw_rate(sv_jw_t *jw, double v)
{
    sv_jw_int(jw, (int64_t)(v + 0.5));
}

static void jw_ratio(sv_jw_t *jw, double v)
{
    sv_jw_double(jw, (double)(int64_t)(v * 100 + 0.5) / 100);
}

static void jw_runs(sv_jw_t *jw, const double *v, int n)
{
    sv_jw_key(jw, "runs");
    sv_jw_arr_begin(jw);
    for (int i = 0; i < n; i++)
        jw_rate(jw, v[i]);
    sv_jw_arr_end(jw);
}

/* "per_commit": the medians over the runs of what one commit cost. */
static void jw_commit_cost(sv_jw_t *jw, const commit_cost_t *c, int n)
{
    double ms[MAX_RUNS], kib[MAX_RUNS], calls[MAX_RUNS];
    for (int r = 0; r < n; r++) {
        ms[r] = c[r].ms;
        kib[r] = c[r].kib;
        calls[r] = c[r].write_calls;
    }
    sv_jw_key(jw, "per_commit");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "ms");
    sv_jw_double(jw, (double)(int64_t)(median(ms, n) * 1000 + 0.5) / 1000);
    sv_jw_key(jw, "kib_written");
    jw_ratio(jw, median(kib, n));
    sv_jw_key(jw, "write_calls");
    jw_ratio(jw, median(calls, n));
    sv_jw_obj_end(jw);
}

int main(int argc, char **argv)
{
    opts_t o = {.seconds = 1, .runs = 3, .value_size = 1024, .read_keys = 100000};
    o.n_clients = parse_list("1,16,64", o.clients, MAX_LIST);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.read_threads[0] = 1;
    o.n_read_threads = 1;
    if (cores > 1)
        o.read_threads[o.n_read_threads++] = (int)cores;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage("measures the storage engine");
            return 0;
        }
        if (v == NULL)
            return usage("an option lacks its value");
        i++;
        if (strcmp(a, "--data-dir") == 0)
            o.data_dir = v;
        else if (strcmp(a, "--seconds") == 0 && (o.seconds = atof(v)) > 0)
            ;
        else if (strcmp(a, "--runs") == 0 && (o.runs = atoi(v)) >= 1 && o.runs <= MAX_RUNS)
            ;
        else if (strcmp(a, "--json") == 0)
            o.json_path = v;
        else if (strcmp(a, "--clients") == 0 && (o.n_clients = parse_list(v, o.clients, MAX_LIST)) > 0)
            ;
        else if (strcmp(a, "--read-threads") == 0 && (o.n_read_threads = parse_list(v, o.read_threads, MAX_LIST)) > 0)
            ;
        else if (strcmp(a, "--value-size") == 0 && (o.value_size = strtoul(v, NULL, 10)) >= 1 && o.value_size <= 65536)
            ;
        else if (strcmp(a, "--read-keys") == 0 && (o.read_keys = (unsigned)strtoul(v, NULL, 10)) >= 1)
            ;
        else if (strcmp(a, "--model") == 0 && (strcmp(v, "workers") == 0 || strcmp(v, "threads") == 0))
            o.thread_clients = strcmp(v, "threads") == 0;
        else
            return usage("bad option or value");
    }
    char tmpl[512];
    bool own_dir = o.data_dir == NULL;
    if (own_dir) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpl, sizeof(tmpl), "%s/sv-store-bench-XXXXXX", t && t[0] ? t : "/tmp");
        if ((o.data_dir = mkdtemp(tmpl)) == NULL)
            return usage("cannot create a temporary directory");
    } else if (mkdir(o.data_dir, 0700) != 0 && errno != EEXIST) {
        return usage("cannot create --data-dir");
    }
    const char *fs = fs_name(o.data_dir);
    if ((value_buf = malloc(o.value_size)) == NULL)
        return 1;
    for (size_t i = 0; i < o.value_size; i++)
        value_buf[i] = (uint8_t)(i * 131 + 17);

    double base[MAX_RUNS], wr[MAX_LIST][MAX_RUNS], batch[MAX_LIST][MAX_RUNS], rd[MAX_LIST][MAX_RUNS];
    commit_cost_t base_cost[MAX_RUNS], wr_cost[MAX_LIST][MAX_RUNS];
    uint64_t misses = 0;
    char rdir[1024];
    sv_store_t *rst = fill_reads(&o, rdir, sizeof(rdir));
    for (int r = 0; r < o.runs; r++) {
        /* the baseline brackets the writer figures (half before, half after)
         * so that a disk that speeds up or slows down during the run moves
         * both sides of the ratio alike */
        opts_t half = o;
        half.seconds = o.seconds / 2;
        commit_cost_t cb, ca;
        double before = run_baseline(&half, &cb);
        for (int c = 0; c < o.n_clients; c++)
            wr[c][r] = run_writer(&o, o.clients[c], &batch[c][r], &wr_cost[c][r]);
        double after = run_baseline(&half, &ca);
        base[r] = (before + after) / 2;
        base_cost[r] = (commit_cost_t){(cb.ms + ca.ms) / 2, (cb.kib + ca.kib) / 2, (cb.write_calls + ca.write_calls) / 2};
        fprintf(stderr, "run %d: baseline %.0f writes/s (%.0f before, %.0f after; %.2f ms, %.1f write calls a commit)",
                r + 1, base[r], before, after, base_cost[r].ms, base_cost[r].write_calls);
        for (int c = 0; c < o.n_clients; c++)
            fprintf(stderr, ", writer x%d %.0f/s (batch %.1f; %.2f ms, %.1f write calls a commit)", o.clients[c],
                    wr[c][r], batch[c][r], wr_cost[c][r].ms, wr_cost[c][r].write_calls);
        for (int t = 0; t < o.n_read_threads; t++) {
            rd[t][r] = run_reads(rst, &o, o.read_threads[t], &misses);
            fprintf(stderr, ", reads x%d %.0f/s/thread", o.read_threads[t], rd[t][r]);
        }
        fprintf(stderr, "\n");
    }
    sv_store_close(rst);
    remove_dir(rdir);
    if (own_dir)
        rmdir(o.data_dir);

    sv_buf_t b;
    sv_jw_t jw;
    sv_buf_init(&b, false);
    sv_jw_init(&jw, &b);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "benchmark");
    sv_jw_cstr(&jw, "store");
    sv_jw_key(&jw, "params");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "seconds");
    sv_jw_double(&jw, o.seconds);
    sv_jw_key(&jw, "runs");
    sv_jw_int(&jw, o.runs);
    sv_jw_key(&jw, "value_size");
    sv_jw_uint(&jw, o.value_size);
    sv_jw_key(&jw, "read_keys");
    sv_jw_uint(&jw, o.read_keys);
    sv_jw_key(&jw, "client_model");
    sv_jw_cstr(&jw, o.thread_clients ? "threads" : "workers");
    sv_jw_key(&jw, "filesystem");
    sv_jw_cstr(&jw, fs);
    sv_jw_key(&jw, "cores");
    sv_jw_int(&jw, cores);
    sv_jw_obj_end(&jw);

    double base_med = median(base, o.runs);
    sv_jw_key(&jw, "baseline_one_commit_per_write");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "writes_per_s");
    jw_rate(&jw, base_med);
    jw_commit_cost(&jw, base_cost, o.runs);
    jw_runs(&jw, base, o.runs);
    sv_jw_obj_end(&jw);

    double ratio_at_max = 0;
    int max_clients = 0;
    sv_jw_key(&jw, "writer");
    sv_jw_arr_begin(&jw);
    for (int c = 0; c < o.n_clients; c++) {
        double m = median(wr[c], o.runs), ratios[MAX_RUNS];
        for (int r = 0; r < o.runs; r++) /* each run's writer against the same run's baseline */
            ratios[r] = base[r] > 0 ? wr[c][r] / base[r] : 0;
        double ratio = median(ratios, o.runs);
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "clients");
        sv_jw_int(&jw, o.clients[c]);
        sv_jw_key(&jw, "writes_per_s");
        jw_rate(&jw, m);
        sv_jw_key(&jw, "ratio_to_baseline"); /* the median of the per-run ratios */
        jw_ratio(&jw, ratio);
        sv_jw_key(&jw, "avg_units_per_commit");
        jw_ratio(&jw, median(batch[c], o.runs));
        jw_commit_cost(&jw, wr_cost[c], o.runs);
        jw_runs(&jw, wr[c], o.runs);
        sv_jw_obj_end(&jw);
        if (o.clients[c] >= max_clients) {
            max_clients = o.clients[c];
            ratio_at_max = ratio;
        }
    }
    sv_jw_arr_end(&jw);

    double read_1 = 0;
    sv_jw_key(&jw, "reads");
    sv_jw_arr_begin(&jw);
    for (int t = 0; t < o.n_read_threads; t++) {
        double m = median(rd[t], o.runs);
        if (t == 0 || o.read_threads[t] == 1)
            read_1 = m; /* the single-thread figure when measured, else the first */
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "threads");
        sv_jw_int(&jw, o.read_threads[t]);
        sv_jw_key(&jw, "reads_per_s_per_thread");
        jw_rate(&jw, m);
        sv_jw_key(&jw, "ratio_to_goal");
        jw_ratio(&jw, m / READ_GOAL);
        jw_runs(&jw, rd[t], o.runs);
        sv_jw_obj_end(&jw);
    }
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "read_misses");
    sv_jw_uint(&jw, misses);

    sv_jw_key(&jw, "goals");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "writer_vs_baseline");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "clients");
    sv_jw_int(&jw, max_clients);
    sv_jw_key(&jw, "goal_ratio");
    jw_ratio(&jw, WRITE_RATIO_GOAL);
    sv_jw_key(&jw, "ratio");
    jw_ratio(&jw, ratio_at_max);
    sv_jw_key(&jw, "met");
    sv_jw_bool(&jw, ratio_at_max >= WRITE_RATIO_GOAL);
    sv_jw_obj_end(&jw);
    sv_jw_key(&jw, "reads_per_thread");
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "goal");
    jw_rate(&jw, READ_GOAL);
    sv_jw_key(&jw, "measured");
    jw_rate(&jw, read_1);
    sv_jw_key(&jw, "met");
    sv_jw_bool(&jw, read_1 >= READ_GOAL);
    sv_jw_obj_end(&jw);
    sv_jw_obj_end(&jw);
    sv_jw_obj_end(&jw);
    sv_buf_putc(&b, '\n');

    int rc = 0;
    FILE *f = o.json_path != NULL ? fopen(o.json_path, "w") : stdout;
    if (f == NULL || b.failed || fwrite(b.base, 1, b.len, f) != b.len) {
        fprintf(stderr, "store_bench: cannot write the report\n");
        rc = 1;
    }
    if (f != NULL && f != stdout)
        fclose(f);
    sv_buf_free(&b);
    free(value_buf);
    return rc;
}
