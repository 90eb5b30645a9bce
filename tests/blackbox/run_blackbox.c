/*
 * run_blackbox.c - the black-box runner: every suite of blackbox/suites.def
 * drives the real binary (SCAIVAULT_BIN) over HTTP. `run_blackbox SUITE`
 * runs one suite.
 */
#include "sv_autoconf.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/blackbox/bb.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (access(bb_bin(), X_OK) != 0) {
        fprintf(stderr, "SCAIVAULT_BIN (%s) is not an executable\n", bb_bin());
        return 1;
    }
#define SUITE(name) sv_bb_suite_##name();
#include "tests/blackbox/suites.def"
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
    printf("\nblackbox: %u passed, %u failed\n", run - failed, failed);
    CU_cleanup_registry();
    curl_global_cleanup();
    return failed == 0 && assert_failures == 0 ? 0 : 1;
}
