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
#include "store/env.h"
#include "wal/writer.h"

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

/** Writes schema_version v into st's meta database directly (as another
 * binary would). Returns false when LMDB refuses. */
bool sv_test_set_schema(sv_store_t *st, uint32_t v);

/** The set-up most suites share: a fresh temp dir named after tag (*dir,
 * malloc'd), a store in it of map_size bytes (max_readers 0: the default;
 * no fsync) migrated to the current schema (*st), and its writer running
 * (*w). Returns false on a failure, after undoing what it did (the three are
 * then NULL). */
bool sv_test_store_open(const char *tag, size_t map_size, unsigned max_readers, char **dir, sv_store_t **st,
                        sv_writer_t **w);
/** Undoes sv_test_store_open: stops w, closes st, removes and frees dir.
 * Any of them may be NULL (already undone by the caller). */
void sv_test_store_close(char *dir, sv_store_t *st, sv_writer_t *w);
/** Runs fn(tx, arg) in one writer unit on w and waits for it (sv_writer_run
 * for a plain function). Returns the unit's result. */
sv_err_t sv_test_in_writer(sv_writer_t *w, sv_err_t (*fn)(sv_wtxn_t *tx, void *arg), void *arg);

#endif
