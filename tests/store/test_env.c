/* tests/store/test_env.c - the environment, keys, records and iteration
 * (store/env.c, store/key.h, store/record.c). */
#include "sv_autoconf.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/env.h"
#include "store/key.h"
#include "store/migrate.h"
#include "store/record.h"
#include "tests/unit.h"
#include "wal/writer.h"

static void test_key_order(void)
{
    sv_key_t a, b;
    sv_key_init(&a);
    sv_key_str(&a, "tnt", 3);
    sv_key_str(&a, "app", 3);
    sv_key_init(&b);
    sv_key_str(&b, "tnt", 3);
    sv_key_str(&b, "app/x", 5);
    /* "app" sorts before "app/x", and the tenant part keeps tenants apart */
    size_t n = a.len < b.len ? a.len : b.len;
    CU_ASSERT(memcmp(a.buf, b.buf, n) < 0);
    sv_key_t c;
    sv_key_init(&c);
    sv_key_u64(&c, 1);
    sv_key_t d;
    sv_key_init(&d);
    sv_key_u64(&d, 256);
    CU_ASSERT(memcmp(c.buf, d.buf, 8) < 0);
    size_t off = 0;
    sv_bytes_t part;
    CU_ASSERT(sv_key_read_str(sv_key_bytes(&b), &off, &part));
    CU_ASSERT(part.len == 3 && memcmp(part.base, "tnt", 3) == 0);
    CU_ASSERT(sv_key_read_str(sv_key_bytes(&b), &off, &part));
    CU_ASSERT(part.len == 5);
    sv_key_t e;
    sv_key_init(&e);
    sv_key_str(&e, "a\0b", 3);
    CU_ASSERT(e.overflow);
}

static void test_records(void)
{
    sv_recw_t w;
    sv_recw_init(&w, 3);
    sv_recw_u32(&w, 7);
    sv_recw_u64(&w, 1ull << 40);
    sv_recw_str(&w, "hello");
    sv_bytes_t rec;
    CU_ASSERT_EQUAL_FATAL(sv_recw_result(&w, &rec), SV_OK);
    sv_recr_t r;
    CU_ASSERT_EQUAL(sv_recr_init(&r, rec), 3);
    CU_ASSERT_EQUAL(sv_recr_u32(&r), 7);
    CU_ASSERT_EQUAL(sv_recr_u64(&r), 1ull << 40);
    char s[8];
    sv_recr_str(&r, s, sizeof(s));
    CU_ASSERT_STRING_EQUAL(s, "hello");
    CU_ASSERT_EQUAL(sv_recr_result(&r), SV_OK);
    /* a truncated record fails cleanly */
    CU_ASSERT_EQUAL(sv_recr_init(&r, (sv_bytes_t){rec.base, rec.len - 2}), 3);
    sv_recr_u32(&r);
    sv_recr_u64(&r);
    sv_recr_str(&r, s, sizeof(s));
    CU_ASSERT_EQUAL(sv_recr_result(&r), SV_ECORRUPT);
    sv_recw_free(&w);
}

static sv_err_t apply_fill(sv_wtxn_t *tx, sv_unit_t *u)
{
    const char *keys[] = {"t1\0a", "t1\0b", "t1\0c", "t2\0a", "t10\0a"};
    size_t lens[] = {4, 4, 4, 4, 5};
    for (size_t i = 0; i < 5; i++) {
        sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(keys[i], lens[i]), SV_BYTES("v", 1));
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

static void test_prefix_iteration(void)
{
    const char *dir = sv_test_tmpdir("env");
    char path[512];
    snprintf(path, sizeof(path), "%s", dir);
    sv_store_t *st;
    sv_store_opts_t o = {.dir = path, .map_size = 1 << 20, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL), SV_OK);
    sv_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    sv_unit_t u = {.apply = apply_fill};
    CU_ASSERT_EQUAL_FATAL(sv_writer_run(w, &u), SV_OK);
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(st, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    sv_iter_t it;
    sv_bytes_t k;
    int n = 0;
    CU_ASSERT_EQUAL(sv_iter_open(tx, SV_DB_SECRETS, SV_BYTES("t1\0", 3), (sv_bytes_t){0}, false, &it), SV_OK);
    while (sv_iter_next(&it, &k, NULL) == SV_OK)
        n++;
    sv_iter_close(&it);
    CU_ASSERT_EQUAL(n, 3); /* not t10 */
    /* from a seek key */
    n = 0;
    CU_ASSERT_EQUAL(sv_iter_open(tx, SV_DB_SECRETS, SV_BYTES("t1\0", 3), SV_BYTES("t1\0b", 4), false, &it), SV_OK);
    while (sv_iter_next(&it, &k, NULL) == SV_OK)
        n++;
    sv_iter_close(&it);
    CU_ASSERT_EQUAL(n, 2);
    /* reverse: last first */
    CU_ASSERT_EQUAL(sv_iter_open(tx, SV_DB_SECRETS, SV_BYTES("t1\0", 3), (sv_bytes_t){0}, true, &it), SV_OK);
    CU_ASSERT_EQUAL(sv_iter_next(&it, &k, NULL), SV_OK);
    CU_ASSERT(k.len == 4 && memcmp(k.base, "t1\0c", 4) == 0);
    sv_iter_close(&it);
    /* snapshots nest on the owning thread */
    sv_txn_t *inner;
    CU_ASSERT_EQUAL(sv_store_read_begin(r, &inner), SV_OK);
    CU_ASSERT_PTR_EQUAL(inner, tx);
    sv_store_read_end(r);
    sv_bytes_t v;
    CU_ASSERT_EQUAL(sv_txn_get(tx, SV_DB_SECRETS, SV_BYTES("t1\0a", 4), &v), SV_OK); /* outer still open */
    sv_store_read_end(r);
    sv_store_reader_free(r);
    sv_writer_stop(w);
    sv_store_close(st);
    sv_test_rmdir(path);
}

/* lock.mdb's blocks are allocated before LMDB maps it (LMDB makes it sparse
 * with ftruncate, and a store to a page without a block faults on a full
 * disk), at the size LMDB gives it itself; a sparse one left behind is filled
 * in; one that another process uses keeps its size, which sets its reader count. */
static bool lock_file_is(const char *path, off_t size)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return false;
    if (sb.st_size != size || (off_t)sb.st_blocks * 512 < sb.st_size)
        fprintf(stderr, "\n  lock.mdb: %lld bytes, %lld allocated; want %lld, all allocated\n", (long long)sb.st_size,
                (long long)sb.st_blocks * 512, (long long)size);
    return sb.st_size == size && (off_t)sb.st_blocks * 512 >= sb.st_size;
}

static void test_lock_file_allocated(void)
{
    const off_t size126 = 125 * 64 + 192, size38 = 37 * 64 + 192; /* LMDB's sizes for 126 and 38 readers */
    const char *tmp = sv_test_tmpdir("lockfile");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s", tmp);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    sv_store_t *st;
    unsigned used, max;
    sv_store_opts_t o = {.dir = dir, .map_size = 1 << 20, .max_readers = 126, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    CU_ASSERT(lock_file_is(path, size126)); /* LMDB did not have to grow it */
    sv_store_reader_stats(st, &used, &max);
    CU_ASSERT_EQUAL(max, 126);
    sv_store_close(st);

    /* a sparse one, as a crash on a full disk leaves it */
    CU_ASSERT_FATAL(unlink(path) == 0);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, size126) == 0);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    CU_ASSERT(lock_file_is(path, size126));
    sv_store_close(st);

    /* in use by another process (made with 38 slots): not grown to 126 */
    CU_ASSERT_FATAL(unlink(path) == 0);
    int ready[2], quit[2];
    CU_ASSERT_FATAL(pipe(ready) == 0 && pipe(quit) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        sv_store_opts_t co = {.dir = dir, .max_readers = 38, .read_only = true};
        sv_store_t *cst;
        char c = sv_store_open(&cst, &co) == SV_OK ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(quit[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char c = 0;
    CU_ASSERT_FATAL(read(ready[0], &c, 1) == 1);
    CU_ASSERT_EQUAL(c, 'y');
    CU_ASSERT(lock_file_is(path, size38));
    o.read_only = true;
    if (sv_store_open(&st, &o) == SV_OK) {
        sv_store_reader_stats(st, &used, &max);
        CU_ASSERT_EQUAL(max, 38); /* LMDB took the size the other process gave it */
        sv_store_close(st);
    } else {
        CU_FAIL("cannot open beside another process");
    }
    CU_ASSERT(lock_file_is(path, size38));
    CU_ASSERT(write(quit[1], "q", 1) == 1);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    close(ready[1]);
    close(quit[0]);
    close(quit[1]);
    sv_test_rmdir(dir);
}

/* ---- the map grows while its size is read ---- */

typedef struct {
    sv_store_t *st;
    atomic_bool stop;
    unsigned long reads;
} size_reader_t;

static void *read_sizes(void *arg)
{
    size_reader_t *r = arg;
    while (!atomic_load(&r->stop)) {
        CU_ASSERT(sv_store_used_bytes(r->st) > 0);
        CU_ASSERT(sv_store_map_size(r->st) > 0);
        r->reads++;
    }
    return NULL;
}

/* sv_store_grow remaps while another thread reads the map's size and last
 * page (the prealloc thread, metrics): without the store's map lock the
 * reader touched unmapped meta pages (SIGSEGV). */
static void test_grow_while_sizes_are_read(void)
{
    const char *dir = sv_test_tmpdir("grow");
    sv_store_t *st;
    sv_store_opts_t o = {.dir = dir, .map_size = 1 << 20, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    size_reader_t r = {.st = st};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, read_sizes, &r);
    for (int i = 0; i < 16; i++) /* 1 MiB to 64 GiB of address space */
        CU_ASSERT_EQUAL(sv_store_grow(st, 1), SV_OK);
    atomic_store(&r.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(sv_store_map_size(st), (size_t)1 << 36);
    sv_store_close(st);
    sv_test_rmdir(dir);
}

void sv_test_suite_env(void)
{
    SV_SUITE("store/env", {"key_order", test_key_order}, {"records", test_records},
             {"prefix_iteration", test_prefix_iteration}, {"lock_file_allocated", test_lock_file_allocated},
             {"grow_while_sizes_are_read", test_grow_while_sizes_are_read});
}
