/*
 * cmd_migrate.c - `scaivault migrate [--target N] [--data-dir D]
 * [--config FILE]`: runs schema migrations offline (the server must be
 * stopped: it refuses a database in use), logging each step. Without --target
 * it migrates to the version this binary expects; the lowest target is 1 (0
 * would be no database at all).
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <stdlib.h>

#include "src/commands.h"
#include "src/config.h"
#include "src/log.h"
#include "store/fault.h"
#include "store/migrate.h"

static void log_step(void *arg, const char *line)
{
    sv_log_info("%s", line);
}

int sv_cmd_migrate(int argc, char **argv)
{
    static const char *const known[] = {"target=", "data-dir=", "config=", NULL};
    const char *why;
    const char *bad = sv_cli_unknown(argc, argv, known, &why);
    if (bad != NULL) {
        sv_cli_error("migrate: %s '%s'", why, bad);
        return 2;
    }
    sv_config_t cfg;
    const char *dir;
    if (!sv_cli_load_config(argc, argv, &cfg, &dir))
        return 2;
    long target = SV_SCHEMA_VERSION;
    const char *t = sv_cli_opt(argc, argv, "target");
    if (t != NULL) {
        char *end;
        target = strtol(t, &end, 10);
        if (*t == 0 || *end != 0 || target < 1 || target > SV_SCHEMA_VERSION) {
            sv_cli_error("migrate: --target must be a version from 1 to %d", SV_SCHEMA_VERSION);
            sv_config_free(&cfg);
            return 2;
        }
    }
    if (!sv_cli_dir_unused("migrate", dir) || !sv_cli_data_file_plausible("migrate", dir)) {
        sv_config_free(&cfg);
        return 2;
    }
    int rc = 1;
    sv_store_t *st;
    sv_store_opts_t so = {.dir = dir, .map_size = cfg.map_size, .max_readers = cfg.db_pool_size};
    sv_err_t err = sv_store_open(&st, &so);
    if (err != SV_OK) {
        sv_cli_error("cannot open the database in '%s': %s", dir, sv_strerror(err));
        sv_config_free(&cfg);
        return 1;
    }
    uint32_t cur = 0;
    if ((err = sv_migrate_current(st, &cur)) != SV_OK) {
        sv_cli_error("cannot read the schema version: %s", sv_strerror(err));
    } else if (cur > SV_SCHEMA_VERSION) {
        sv_cli_error("the schema is version %u, newer than this binary (%d): use the newer binary to migrate down",
                     cur, SV_SCHEMA_VERSION);
        rc = 2;
    } else {
        sv_log_info("schema version %u, target %ld", cur, target);
        err = sv_migrate_to(st, (uint32_t)target, log_step, NULL);
        if (err == SV_OK) {
            sv_log_info("schema is now version %ld", target);
            rc = 0;
        } else {
            sv_migrate_current(st, &cur);
            sv_cli_error("migration failed: %s (schema stays at version %u)", sv_strerror(err), cur);
        }
    }
    sv_store_close(st);
    sv_config_free(&cfg);
    return rc;
}
