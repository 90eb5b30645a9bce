/*
 * cli.h - option parsing shared by the standalone bench programs
 * (hello, fill, mint, lmdb_baseline).
 */
#ifndef SV_BENCH_CLI_H
#define SV_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>

/* One option: "--name VALUE" stores VALUE in *value; a flag (takes_value
 * false) stores "1". Values point into argv. */
typedef struct {
    const char *name;
    const char **value;
    bool takes_value;
} bench_opt_t;

/**
 * Parses argv[1..argc) against opts. Options not given leave their *value
 * untouched. Returns false on an unknown option or a missing value.
 */
bool bench_cli_parse(int argc, char **argv, const bench_opt_t *opts, size_t n_opts);

#endif
