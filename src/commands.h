/*
 * commands.h - the subcommands of the `scaivault` binary. Each takes the
 * arguments after its name and returns the process exit status: 0 success,
 * 1 failure, 2 bad configuration or usage (a message names the culprit).
 */
#ifndef SV_COMMANDS_H
#define SV_COMMANDS_H

#include <stdbool.h>

#include "src/config.h"

int sv_cmd_server(int argc, char **argv);  /* cmd_server.c */
int sv_cmd_migrate(int argc, char **argv); /* cmd_migrate.c */
int sv_cmd_audit(int argc, char **argv);   /* cmd_audit.c */
int sv_cmd_backup(int argc, char **argv);  /* cmd_backup.c */
int sv_cmd_restore(int argc, char **argv); /* cmd_backup.c */
int sv_cmd_devtoken(int argc, char **argv); /* cmd_devtoken.c */

/** Prints "scaivault: " + message to stderr. */
void sv_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** false (after printing why) when another server or migrate has the
 * database in dir: otherwise this process holds dir/server.lock from now on
 * (sv_store_claim_dir). Checked by the commands that must be the only writer
 * (server, migrate); backup and audit verify read beside them, and restore
 * checks that no process at all has the database open. */
bool sv_cli_dir_unused(const char *cmd, const char *dir);
/** false (after printing why, prefixed by what) when dir/data.mdb is empty
 * while a key file of a store that existed is beside it: LMDB would make a
 * new, empty database of it (server, migrate). */
bool sv_cli_data_file_plausible(const char *what, const char *dir);
/** Finds "--name value" or "--name=value" in argv; returns value or NULL. */
const char *sv_cli_opt(int argc, char **argv, const char *name);
/** Whether "--name" is present. */
bool sv_cli_flag(int argc, char **argv, const char *name);
/** Loads the configuration for an offline command: --config FILE (optional)
 * and the environment, starts the logs, arms SCAIVAULT_TEST_FAULT, and sets *data_dir to --data-dir or
 * else SCAIVAULT_DATA_DIR (pointing into argv or cfg). Returns false after
 * printing the error (cfg is then freed): exit with status 2. */
bool sv_cli_load_config(int argc, char **argv, sv_config_t *cfg, const char **data_dir);
/** Returns the first argument that starts with "--" and is not in known
 * (a NULL-terminated list of names without dashes; options that take a value
 * are listed with a trailing '='), or that takes a value and has none (or an
 * empty one) or takes none and has one, or that is given twice, or an
 * argument that is no option; NULL when all are fine. *why says which
 * ("unknown option", "no value given for", "option takes no value:", "option
 * given twice:", "unexpected argument"). */
const char *sv_cli_unknown(int argc, char **argv, const char *const *known, const char **why);

#endif
