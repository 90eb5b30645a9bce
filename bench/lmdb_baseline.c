/*
 * lmdb_baseline.c - the write ceiling without group commit:
 * `lmdb_baseline --dir DIR [--seconds S] [--value-size B]`.
 *
 * One mdb_put of a B-byte value under a random 16-byte key, then one durable
 * mdb_txn_commit (LMDB's default flags: the commit fsyncs), repeated for S
 * seconds, in one thread. That is what a server that commits every write on
 * its own could reach on this disk; ScaiVault's writer batches many writes
 * per commit, so its write scenarios are reported as a multiple of this
 * figure (bench/README.md). DIR must be on the same file system as
 * ScaiVault's data directory; a fresh environment is created in it and
 * removed at the end. Prints one JSON object on stdout.
 *
 * Kept minimal and standalone on purpose: bench/run runs it next to the
 * HTTP scenarios; bench/store_bench measures the writer itself.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/cli.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: keys only need to be spread, not secret */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void remove_env_dir(const char *envdir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/data.mdb", envdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", envdir);
    unlink(path);
    rmdir(envdir);
}

static void usage(void)
{
    fprintf(stderr, "usage: lmdb_baseline --dir DIR [--seconds S] [--value-size BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *seconds_s = "2", *size_s = "1024";
    const bench_opt_t opts[] = {{"dir", &dir, true}, {"seconds", &seconds_s, true}, {"value-size", &size_s, true}};
    if (!bench_cli_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0])))
        usage();
    double seconds = atof(seconds_s);
    long value_size = atol(size_s);
    if (dir == NULL || seconds <= 0 || value_size < 1 || value_size > (64l << 20))
        usage();

    int rc = 1;
    char envdir[4096];
    snprintf(envdir, sizeof(envdir), "%s/lmdb-baseline-%d", dir, (int)getpid());
    if (mkdir(envdir, 0700) != 0) {
        fprintf(stderr, "lmdb_baseline: mkdir %s: %s\n", envdir, strerror(errno));
        return 1;
    }
    char *value = malloc((size_t)value_size);
    if (value == NULL) {
        fprintf(stderr, "lmdb_baseline: out of memory\n");
        goto remove_dir;
    }
    memset(value, 'v', (size_t)value_size);

    MDB_env *env;
    int err = mdb_env_create(&env);
    if (err != 0) {
        fprintf(stderr, "lmdb_baseline: %s\n", mdb_strerror(err));
        goto free_value;
    }
    mdb_env_set_mapsize(env, (size_t)1 << 30);
    if ((err = mdb_env_open(env, envdir, 0, 0600)) != 0)
        goto close_env;
    MDB_dbi dbi;
    MDB_txn *txn;
    if ((err = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        goto close_env;
    if ((err = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 || (err = mdb_txn_commit(txn)) != 0)
        goto close_env;

    uint64_t seed = (uint64_t)now_s() * 1000003u ^ (uint64_t)getpid(), commits = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < seconds) {
        uint64_t key[2] = {next_rand(&seed), next_rand(&seed)};
        MDB_val k = {sizeof(key), key}, v = {(size_t)value_size, value};
        if ((err = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
            goto close_env;
        if ((err = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
            mdb_txn_abort(txn);
            goto close_env;
        }
        if ((err = mdb_txn_commit(txn)) != 0)
            goto close_env;
        commits++;
        elapsed = now_s() - start;
    }
    printf("{\"name\":\"lmdb_baseline\",\"mode\":\"one durable commit per put\",\"value_size\":%ld,"
           "\"commits\":%llu,\"seconds\":%.3f,\"commits_per_s\":%.1f}\n",
           value_size, (unsigned long long)commits, elapsed, (double)commits / elapsed);
    rc = 0;

close_env:
    if (err != 0)
        fprintf(stderr, "lmdb_baseline: %s\n", mdb_strerror(err));
    mdb_env_close(env);
free_value:
    free(value);
remove_dir:
    remove_env_dir(envdir);
    return rc;
}
