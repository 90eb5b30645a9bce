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
    return sv_test_run_suites(argc, argv, "unit");
}
