/* tests/store/test_prealloc.c - data.mdb written ahead of use (store/prealloc.c). */
#include "sv_autoconf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/env.h"
#include "store/migrate.h"
#include "store/prealloc.h"
#include "tests/unit.h"
#include "wal/writer.h"

#define MIB ((uint64_t)1 << 20)
#define VALUE_LEN 3000

typedef struct {
    unsigned from, count;
} fill_t;

static void value_for(unsigned i, uint8_t *v)
{
    for (size_t j = 0; j < VALUE_LEN; j++)
        v[j] = (uint8_t)(i * 31 + j * 7 + 1); /* never all zeros */
}

/* "t" NUL "k<i>": tenant t's key k<i> */
static size_t key_for(unsigned i, char key[32])
{
    key[0] = 't';
    key[1] = 0;
    return 2 + (size_t)snprintf(key + 2, 30, "k%08u", i);
}

static sv_err_t apply_values(sv_wtxn_t *tx, sv_unit_t *u)
{
    const fill_t *f = u->arg;
    uint8_t v[VALUE_LEN];
    for (unsigned i = f->from; i < f->from + f->count; i++) {
        char key[32];
        size_t n = key_for(i, key);
        value_for(i, v);
        sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(key, n), SV_BYTES(v, sizeof(v)));
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

static void write_values(sv_writer_t *w, unsigned from, unsigned count)
{
    for (unsigned i = 0; i < count; i += 50) {
        fill_t f = {from + i, count - i < 50 ? count - i : 50};
        sv_unit_t u = {.apply = apply_values, .arg = &f};
        CU_ASSERT_EQUAL_FATAL(sv_writer_run(w, &u), SV_OK);
    }
}

static unsigned count_good_values(sv_store_t *st, unsigned count)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    unsigned good = 0;
    if (sv_store_reader_new(st, &r) != SV_OK)
        return 0;
    if (sv_store_read_begin(r, &tx) == SV_OK) {
        uint8_t want[VALUE_LEN];
        for (unsigned i = 0; i < count; i++) {
            char key[32];
            size_t n = key_for(i, key);
            sv_bytes_t v;
            value_for(i, want);
            if (sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES(key, n), &v) == SV_OK && v.len == VALUE_LEN &&
                memcmp(v.base, want, VALUE_LEN) == 0)
                good++;
        }
        sv_store_read_end(r);
    }
    sv_store_reader_free(r);
    return good;
}

static uint64_t file_size(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* whether bytes [from, to) of dir/data.mdb are all zero */
static bool zeros_between(const char *dir, uint64_t from, uint64_t to)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    static uint8_t buf[65536];
    bool ok = true;
    for (uint64_t off = from; ok && off < to;) {
        size_t n = to - off < sizeof(buf) ? (size_t)(to - off) : sizeof(buf);
        ssize_t got = pread(fd, buf, n, (off_t)off);
        if (got <= 0) {
            ok = false;
            break;
        }
        for (ssize_t i = 0; i < got; i++)
            ok = ok && buf[i] == 0;
        off += (uint64_t)got;
    }
    close(fd);
    return ok;
}

static sv_store_t *open_store(const char *dir, bool read_only)
{
    sv_store_t *st = NULL;
    sv_store_opts_t o = {.dir = dir, .map_size = 64 * MIB, .read_only = read_only};
    if (sv_store_open(&st, &o) != SV_OK)
        return NULL;
    if (!read_only && sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL) != SV_OK) {
        sv_store_close(st);
        return NULL;
    }
    return st;
}

/* A new store in a new directory (dir: 512 bytes) and its writer. */
static bool new_store_with_writer(char *dir, sv_store_t **st, sv_writer_t **w)
{
    snprintf(dir, 512, "%s", sv_test_tmpdir("prealloc"));
    if ((*st = open_store(dir, false)) == NULL)
        return false;
    return sv_writer_start(*st, NULL, w) == SV_OK;
}

/* Reopens the store in dir and checks its first n records, then removes dir. */
static void reopen_check_remove(const char *dir, unsigned n)
{
    sv_store_t *st = open_store(dir, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(count_good_values(st, n), n);
    sv_store_close(st);
    sv_test_rmdir(dir);
}

/* A step extends the file by the margin, with zeros, past the last page in
 * use; a second step has nothing to do; pages written into the margin later
 * are the store's own, and the store reopens with every record intact. */
static void test_extends_ahead(void)
{
    char dir[512];
    sv_store_t *st;
    sv_writer_t *w;
    CU_ASSERT_FATAL(new_store_with_writer(dir, &st, &w));
    write_values(w, 0, 100);

    sv_prealloc_opts_t po = {.min_ahead = 4 * MIB, .max_ahead = 4 * MIB, .min_free = 1, .period_ms = 0};
    sv_prealloc_t *p;
    CU_ASSERT_EQUAL_FATAL(sv_prealloc_start(st, &po, &p), SV_OK);
    sv_prealloc_stats_t ps;
    sv_prealloc_stats(p, &ps);
    unsigned next = 100;
    if (sv_prealloc_in_memory(dir)) {
        printf("\n  NOTE: %s is on tmpfs: checking only that nothing is written there", dir);
        uint64_t wrote = 1, before = file_size(dir);
        CU_ASSERT_FALSE(ps.active);
        CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_OK);
        CU_ASSERT_EQUAL(wrote, 0);
        CU_ASSERT_EQUAL(file_size(dir), before);
        goto done;
    }
    CU_ASSERT_TRUE(ps.active);
    uint64_t used = sv_store_used_bytes(st), size0 = file_size(dir), wrote = 0;
    CU_ASSERT(size0 < used + MIB); /* LMDB alone keeps the file at its pages */
    CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_OK);
    uint64_t size1 = file_size(dir);
    CU_ASSERT_EQUAL(size1, size0 + wrote);
    CU_ASSERT(size1 >= used + 4 * MIB);
    CU_ASSERT(zeros_between(dir, size0, size1));
    sv_prealloc_stats(p, &ps);
    CU_ASSERT_EQUAL(ps.extensions, 1);
    CU_ASSERT_EQUAL(ps.written, wrote);
    CU_ASSERT(ps.margin >= 4 * MIB);

    CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_OK); /* the margin is there: nothing to do */
    CU_ASSERT_EQUAL(wrote, 0);
    CU_ASSERT_EQUAL(file_size(dir), size1);

    /* the store grows into the margin: its pages replace the zeros and the
     * file does not grow; once half the margin is used, a step refills it */
    while (sv_store_used_bytes(st) < used + MIB && next < 5000) {
        write_values(w, next, 50);
        next += 50;
    }
    CU_ASSERT(sv_store_used_bytes(st) >= used + MIB);
    CU_ASSERT(sv_store_used_bytes(st) < size1);
    CU_ASSERT_EQUAL(file_size(dir), size1);
    CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_OK);
    CU_ASSERT_EQUAL(wrote, 0);
    while (sv_store_used_bytes(st) + 2 * MIB <= size1 && next < 5000) {
        write_values(w, next, 50);
        next += 50;
    }
    CU_ASSERT(sv_store_used_bytes(st) <= size1 + 512 * 1024);
    CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_OK);
    CU_ASSERT(wrote > 0);
    CU_ASSERT(file_size(dir) >= sv_store_used_bytes(st) + 4 * MIB);
    CU_ASSERT(zeros_between(dir, sv_store_used_bytes(st), file_size(dir)));

    /* too little free space: nothing written, counted, and said */
    sv_prealloc_stop(p);
    po.min_free = UINT64_MAX / 4;
    po.min_ahead = po.max_ahead = 64 * MIB;
    CU_ASSERT_EQUAL_FATAL(sv_prealloc_start(st, &po, &p), SV_OK);
    uint64_t size2 = file_size(dir);
    CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_ENOSPC);
    CU_ASSERT_EQUAL(wrote, 0);
    CU_ASSERT_EQUAL(file_size(dir), size2);
    sv_prealloc_stats(p, &ps);
    CU_ASSERT_EQUAL(ps.skipped, 1);
    CU_ASSERT_EQUAL(ps.written, 0);

done:
    sv_prealloc_stop(p);
    sv_writer_stop(w);
    sv_store_close(st);
    reopen_check_remove(dir, sv_prealloc_in_memory(dir) ? 100 : next); /* every record is there, with its value */
}

/* The thread refilling every millisecond while the writer grows the store
 * as fast as it can: the appends must never land on a page LMDB wrote. */
static void test_concurrent_with_writer(void)
{
    char dir[512];
    sv_store_t *st;
    sv_writer_t *w;
    CU_ASSERT_FATAL(new_store_with_writer(dir, &st, &w));
    sv_prealloc_opts_t po = {.min_ahead = MIB, .max_ahead = MIB, .min_free = 1, .period_ms = 1};
    sv_prealloc_t *p;
    CU_ASSERT_EQUAL_FATAL(sv_prealloc_start(st, &po, &p), SV_OK);
    write_values(w, 0, 3000); /* ~9 MB: the margin is refilled many times */
    sv_prealloc_stats_t ps;
    sv_prealloc_stats(p, &ps);
    sv_prealloc_stop(p);
    if (!sv_prealloc_in_memory(dir)) {
        CU_ASSERT(ps.extensions >= 2);
        CU_ASSERT_EQUAL(ps.failures, 0);
    }
    CU_ASSERT_EQUAL(count_good_values(st, 3000), 3000);
    sv_writer_stop(w);
    sv_store_close(st);
    reopen_check_remove(dir, 3000);
}

/* A read-only store (the offline tools) is never extended. */
static void test_read_only(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", sv_test_tmpdir("prealloc"));
    sv_store_t *st = open_store(dir, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_store_close(st);
    uint64_t before = file_size(dir);
    st = open_store(dir, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_prealloc_opts_t po = {.min_ahead = MIB, .min_free = 1, .period_ms = 0};
    sv_prealloc_t *p;
    CU_ASSERT_EQUAL_FATAL(sv_prealloc_start(st, &po, &p), SV_OK);
    sv_prealloc_stats_t ps;
    sv_prealloc_stats(p, &ps);
    CU_ASSERT_FALSE(ps.active);
    uint64_t wrote = 1;
    CU_ASSERT_EQUAL(sv_prealloc_step(p, &wrote), SV_OK);
    CU_ASSERT_EQUAL(wrote, 0);
    CU_ASSERT_EQUAL(file_size(dir), before);
    sv_prealloc_stop(p);
    sv_store_close(st);
    sv_test_rmdir(dir);
}

void sv_test_suite_prealloc(void)
{
    SV_SUITE("store/prealloc", {"extends_ahead", test_extends_ahead},
             {"concurrent_with_writer", test_concurrent_with_writer}, {"read_only", test_read_only});
}
