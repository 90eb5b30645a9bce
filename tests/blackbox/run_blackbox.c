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
    int status = sv_test_run_suites(argc, argv, "blackbox");
    curl_global_cleanup();
    return status;
}
