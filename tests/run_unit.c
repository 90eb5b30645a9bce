/*
 * run_unit.c - the unit-test runner: registers every suite of suites.def and
 * runs them with CUnit's basic interface. Exits non-zero when any test fails
 * (CUnit itself does not).
 */
#include "sv_autoconf.h"

#include <CUnit/Basic.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit.h"

int main(int argc, char **argv)
{
    if (sodium_init() < 0 || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
#define SUITE(name) sv_test_suite_##name();
#include "tests/unit_suites.def"
#undef SUITE
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
    printf("\nunit: %u passed, %u failed\n", run - failed, failed);
    CU_cleanup_registry();
    return failed == 0 && assert_failures == 0 ? 0 : 1;
}
