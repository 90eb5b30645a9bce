/* tests/store/test_migrate.c - schema migrations (store/migrate.c). */
#include "sv_autoconf.h"

#include <errno.h>

#include "store/fault.h"
#include "store/migrate.h"
#include "tests/unit.h"

static void test_up_and_down(void)
{
    const char *dir = sv_test_tmpdir("migrate");
    char path[512];
    snprintf(path, sizeof(path), "%s", dir);
    sv_store_t *st;
    sv_store_opts_t o = {.dir = path, .map_size = 1 << 20, .no_sync = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    uint32_t v = 99;
    CU_ASSERT_EQUAL(sv_migrate_current(st, &v), SV_OK);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_migrate_current(st, &v), SV_OK);
    CU_ASSERT_EQUAL(v, SV_SCHEMA_VERSION);
    CU_ASSERT(sv_store_has_db(st, SV_DB_CERTS));
    CU_ASSERT_EQUAL(sv_migrate_to(st, 1, NULL, NULL), SV_OK);
    CU_ASSERT_EQUAL(sv_migrate_current(st, &v), SV_OK);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_FALSE(sv_store_has_db(st, SV_DB_CERTS));
    CU_ASSERT_FALSE(sv_store_has_db(st, SV_DB_OUTBOX));
    CU_ASSERT(sv_store_has_db(st, SV_DB_SECRETS));
    /* a step whose commit fails leaves the version where it was */
    sv_fault_arm(SV_FAULT_COMMIT, 2, 1, EIO);
    CU_ASSERT_EQUAL(sv_migrate_to(st, 3, NULL, NULL), SV_EIO);
    CU_ASSERT_EQUAL(sv_migrate_current(st, &v), SV_OK);
    CU_ASSERT_EQUAL(v, 2);
    CU_ASSERT(sv_store_has_db(st, SV_DB_OUTBOX));
    CU_ASSERT_FALSE(sv_store_has_db(st, SV_DB_CERTS));
    sv_fault_reset();
    CU_ASSERT_EQUAL(sv_migrate_to(st, 3, NULL, NULL), SV_OK);
    CU_ASSERT(sv_store_has_db(st, SV_DB_CERTS));
    CU_ASSERT_EQUAL(sv_migrate_to(st, 4, NULL, NULL), SV_EINVAL);
    sv_store_close(st);
    sv_test_rmdir(path);
}

void sv_test_suite_migrate(void)
{
    SV_SUITE("store/migrate", {"up_and_down", test_up_and_down});
}
