/*
 * cli.c - option parsing for the standalone bench programs (cli.h): a table
 * of "--name value" options instead of a strcmp ladder in every main().
 * Single-threaded, called once from main.
 */
#include "sv_autoconf.h"

#include "bench/cli.h"

#include <string.h>

bool bench_cli_parse(int argc, char **argv, const bench_opt_t *opts, size_t n_opts)
{
    for (int i = 1; i < argc; i++) {
        const bench_opt_t *o = NULL;
        for (size_t j = 0; j < n_opts && o == NULL; j++)
            if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, opts[j].name) == 0)
                o = &opts[j];
        if (o == NULL)
            return false;
        if (!o->takes_value) {
            *o->value = "1";
            continue;
        }
        if (i + 1 >= argc)
            return false;
        *o->value = argv[++i];
    }
    return true;
}
