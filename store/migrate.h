/*
 * migrate.h - numbered schema migrations.
 *
 * The schema version lives in the meta database. Each migration has an `up`
 * and a `down` and runs in its own write transaction, so a failed step leaves
 * the previous version intact. The server migrates forward at start (unless
 * MIGRATE_ON_START=false); `scaivault migrate [--target N]` runs them offline.
 * Migrations run before the writer thread starts, on the calling thread.
 */
#ifndef SV_STORE_MIGRATE_H
#define SV_STORE_MIGRATE_H

#include "store/env.h"

/** The schema version this binary expects. */
#define SV_SCHEMA_VERSION 3

/** Called with one line of text per step. */
typedef void (*sv_migrate_log_fn)(void *arg, const char *line);

/** Reads the stored schema version (0 for a new, empty environment). */
sv_err_t sv_migrate_current(sv_store_t *st, uint32_t *version);

/** Migrates up or down, one transaction per step, to target (0 <= target <=
 * SV_SCHEMA_VERSION). Stops at the first failing step and returns its error;
 * the version is then the last one that committed. */
sv_err_t sv_migrate_to(sv_store_t *st, uint32_t target, sv_migrate_log_fn log, void *arg);

/** The name of migration `version` ("1_core", ...), or NULL. */
const char *sv_migrate_name(uint32_t version);

/** Meta keys. Values are records (format version byte first). */
#define SV_META_SCHEMA_VERSION "schema_version"
#define SV_META_INSTANCE_ID "instance_id"
#define SV_META_APPLIED_LSN "applied_lsn"

#endif
