/*
 * util.c - helpers shared by both test runners (unit.h).
 */
#include "sv_autoconf.h"

#include <CUnit/Basic.h>
#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/env.h"
#include "store/migrate.h"
#include "tests/unit.h"

int sv_test_run_suites(int argc, char **argv, const char *label)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (argc > 1) {
        CU_pSuite s = CU_get_suite(argv[1]);
        if (s == NULL) {
            fprintf(stderr, "no suite '%s'\n", argv[1]);
            return 2;
        }
        CU_basic_run_suite(s);
    } else {
        CU_basic_run_tests();
    }
    unsigned run = CU_get_number_of_tests_run(), failed = CU_get_number_of_tests_failed();
    unsigned assert_failures = CU_get_number_of_failures();
    /* a suite whose set-up failed ran none of its tests: that is a failure too */
    unsigned suites_failed = CU_get_number_of_suites_failed();
    run += suites_failed;
    failed += suites_failed;
    printf("\n%s: %u passed, %u failed\n", label, run - failed, failed);
    CU_cleanup_registry();
    return failed == 0 && assert_failures == 0 ? 0 : 1;
}

static char tmpdir_buf[512];

const char *sv_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_buf, sizeof(tmpdir_buf), "%s/sv-test-%s-XXXXXX", base && base[0] ? base : "/tmp", tag);
    return mkdtemp(tmpdir_buf);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void sv_test_rmdir(const char *dir)
{
    if (dir != NULL)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool sv_test_store_open(const char *tag, size_t map_size, unsigned max_readers, char **dir, sv_store_t **st,
                        sv_writer_t **w)
{
    *st = NULL;
    *w = NULL;
    const char *tmp = sv_test_tmpdir(tag);
    *dir = tmp != NULL ? strdup(tmp) : NULL;
    sv_store_opts_t o = {.dir = *dir, .map_size = map_size, .max_readers = max_readers, .no_sync = true};
    if (*dir != NULL && sv_store_open(st, &o) == SV_OK && sv_migrate_to(*st, SV_SCHEMA_VERSION, NULL, NULL) == SV_OK &&
        sv_writer_start(*st, NULL, w) == SV_OK)
        return true;
    sv_test_store_close(*dir, *st, *w);
    *dir = NULL;
    *st = NULL;
    *w = NULL;
    return false;
}

void sv_test_store_close(char *dir, sv_store_t *st, sv_writer_t *w)
{
    sv_writer_stop(w);
    sv_store_close(st);
    sv_test_rmdir(dir);
    free(dir);
}

typedef struct {
    sv_unit_t unit;
    sv_err_t (*fn)(sv_wtxn_t *tx, void *arg);
    void *arg;
} fn_unit_t;

static sv_err_t fn_unit_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    fn_unit_t *f = (fn_unit_t *)u;
    return f->fn(tx, f->arg);
}

sv_err_t sv_test_in_writer(sv_writer_t *w, sv_err_t (*fn)(sv_wtxn_t *tx, void *arg), void *arg)
{
    fn_unit_t f = {.unit.apply = fn_unit_apply, .fn = fn, .arg = arg};
    return sv_writer_run(w, &f.unit);
}

bool sv_test_set_schema(sv_store_t *st, uint32_t v)
{
    MDB_txn *txn;
    MDB_dbi meta;
    if (mdb_txn_begin(sv_store_env(st), NULL, 0, &txn) != 0)
        return false;
    uint8_t buf[5] = {1};
    sv_put_be32(buf + 1, v);
    MDB_val k = {strlen(SV_META_SCHEMA_VERSION), SV_META_SCHEMA_VERSION}, val = {5, buf};
    if (mdb_dbi_open(txn, "meta", 0, &meta) != 0 || mdb_put(txn, meta, &k, &val, 0) != 0) {
        mdb_txn_abort(txn);
        return false;
    }
    return mdb_txn_commit(txn) == 0;
}
