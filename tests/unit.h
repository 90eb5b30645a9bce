/*
 * unit.h - what every CUnit suite needs. A suite file defines
 * `void sv_test_suite_<name>(void)` that adds one CUnit suite; suites.def
 * lists every suite so that the runner registers them all.
 */
#ifndef SV_TESTS_UNIT_H
#define SV_TESTS_UNIT_H

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "src/sv.h"

/* Adds a suite with the given tests: SV_SUITE("name", {"test", fn}, ...). */
#define SV_SUITE(name, ...)                                                                                            \
    do {                                                                                                               \
        CU_pSuite s_ = CU_add_suite(name, NULL, NULL);                                                                 \
        static const struct {                                                                                          \
            const char *n;                                                                                             \
            CU_TestFunc f;                                                                                             \
        } t_[] = {__VA_ARGS__};                                                                                        \
        for (size_t i_ = 0; s_ != NULL && i_ < sizeof(t_) / sizeof(t_[0]); i_++)                                       \
            CU_add_test(s_, t_[i_].n, t_[i_].f);                                                                       \
    } while (0)

/* every unit suite's registration function */
#define SUITE(name) void sv_test_suite_##name(void);
#include "tests/unit_suites.def"
#undef SUITE

/** Runs the registered suites with CUnit's basic interface (verbose): all
 * of them, or only the one named argv[1]. Prints "<label>: N passed, M
 * failed" (a suite whose set-up failed counts as a failed test) and cleans
 * the registry up. Returns the runner's exit status: 0 when every test
 * passed, 1 otherwise, 2 when argv[1] names no suite. */
int sv_test_run_suites(int argc, char **argv, const char *label);

/** A fresh empty directory under $TMPDIR for one test; the caller removes it
 * with sv_test_rmdir. Returns a static buffer valid until the next call. */
const char *sv_test_tmpdir(const char *tag);
/** rm -rf dir. */
void sv_test_rmdir(const char *dir);

struct sv_store;
/** Writes schema_version v into st's meta database directly (as another
 * binary would). Returns false when LMDB refuses. */
bool sv_test_set_schema(struct sv_store *st, uint32_t v);

#endif
