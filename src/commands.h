/*
 * commands.h - the subcommands of the `scaivault` binary. Each takes the
 * arguments after its name and returns the process exit status: 0 success,
 * 1 failure, 2 bad configuration or usage (a message names the culprit).
 */
#ifndef SV_COMMANDS_H
#define SV_COMMANDS_H

#include <stdbool.h>

int sv_cmd_server(int argc, char **argv);  /* cmd_server.c */
int sv_cmd_migrate(int argc, char **argv); /* cmd_migrate.c */
int sv_cmd_devtoken(int argc, char **argv); /* cmd_devtoken.c */

/** Prints "scaivault: " + message to stderr. */
void sv_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Finds "--name value" or "--name=value" in argv; returns value or NULL. */
const char *sv_cli_opt(int argc, char **argv, const char *name);
/** Whether "--name" is present. */
bool sv_cli_flag(int argc, char **argv, const char *name);
/** Returns the first argument that starts with "--" and is not in known
 * (a NULL-terminated list of names without dashes; options that take a value
 * are listed with a trailing '='), or NULL when all are known. */
const char *sv_cli_unknown(int argc, char **argv, const char *const *known);

#endif
