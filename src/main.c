/*
 * main.c - the `scaivault` binary: dispatches to a subcommand (commands.h).
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/commands.h"
#include "src/log.h"
#include "store/backup.h"
#include "store/fault.h"
#include "store/migrate.h"

void sv_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("scaivault: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool sv_cli_dir_unused(const char *cmd, const char *dir)
{
    mkdir(dir, 0700); /* a first start: the lock needs the directory; its errors are for the open to tell */
    int fd; /* kept open, never closed: the claim lasts as long as the process */
    sv_err_t err = sv_store_claim_dir(dir, &fd);
    if (err == SV_EAGAIN) {
        sv_cli_error("%s: the database in '%s' is in use by another scaivault server or migrate (it holds "
                     "'%s/server.lock'): stop it first",
                     cmd, dir, dir);
        return false;
    }
    return true; /* other errors (no such parent directory, say) are for the open to tell */
}

bool sv_cli_data_file_plausible(const char *what, const char *dir)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &sb) != 0 || sb.st_size != 0)
        return true;
    static const char *const keys[] = {"master.key", "audit-signing.key"};
    for (size_t i = 0; i < SV_ARRAY_LEN(keys); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, keys[i]);
        if (stat(path, &sb) == 0) {
            sv_cli_error("%s: '%s/data.mdb' is empty, but '%s' is there: this directory held a database. Restore a "
                         "backup (scaivault restore --force), or move the directory away to start anew",
                         what, dir, keys[i]);
            return false;
        }
    }
    return true;
}

const char *sv_cli_opt(int argc, char **argv, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, nl) != 0)
            continue;
        if (a[2 + nl] == '=')
            return a + 3 + nl;
        if (a[2 + nl] == 0 && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

bool sv_cli_flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0)
            return true;
    return false;
}

bool sv_cli_load_config(int argc, char **argv, sv_config_t *cfg, const char **data_dir)
{
    char msg[512];
    if (sv_config_load(cfg, sv_cli_opt(argc, argv, "config"), false, msg, sizeof(msg)) != SV_OK) {
        sv_cli_error("%s", msg);
        sv_config_free(cfg);
        return false;
    }
    sv_log_init(cfg->log_level, cfg->log_format);
    if (cfg->test_fault != NULL)
        sv_fault_arm_spec(cfg->test_fault, true);
    *data_dir = sv_cli_opt(argc, argv, "data-dir");
    if (*data_dir == NULL)
        *data_dir = cfg->data_dir;
    return true;
}

const char *sv_cli_unknown(int argc, char **argv, const char *const *known, const char **why)
{
    *why = "unknown option";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            *why = "unexpected argument"; /* no command takes one: a typo, or a value without its option */
            return a;
        }
        size_t al = strcspn(a + 2, "=");
        for (int j = 0; j < i; j++) { /* which of two values would count is nobody's guess */
            if (strncmp(argv[j], "--", 2) == 0 && strcspn(argv[j] + 2, "=") == al &&
                strncmp(argv[j] + 2, a + 2, al) == 0) {
                *why = "option given twice:";
                return a;
            }
        }
        bool ok = false, takes_value = false;
        for (const char *const *k = known; *k != NULL && !ok; k++) {
            size_t kl = strcspn(*k, "=");
            if (kl == al && strncmp(*k, a + 2, al) == 0) {
                ok = true;
                takes_value = (*k)[kl] == '=';
            }
        }
        if (!ok)
            return a;
        if (!takes_value && a[2 + al] == '=') { /* "--dev=true" is no "--dev": say so, never ignore it */
            *why = "option takes no value:";
            return a;
        }
        if (takes_value && a[2 + al] == 0) {
            /* "--pubkey" last, or followed by another option: no value
             * (an empty shell variable, say), not a default */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0 || argv[i + 1][0] == 0) {
                *why = "no value given for";
                return a;
            }
            i++; /* skip the value */
        } else if (takes_value && a[3 + al] == 0) {
            *why = "no value given for";
            return a;
        }
    }
    return NULL;
}

static int cmd_version(int argc, char **argv)
{
    printf("scaivault %s (schema %d, lmdb %s, libsodium %s, h2o %s)\n", SV_VERSION_STRING, SV_SCHEMA_VERSION,
           MDB_VERSION_STRING, sodium_version_string(), "2.2");
    return 0;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"server", sv_cmd_server, "run the server (--dev for a throwaway dev server; --config FILE)"},
    {"migrate", sv_cmd_migrate, "migrate the schema offline (--target N, --data-dir D)"},
    {"audit", sv_cmd_audit, "verify the audit log offline (verify --data-dir D [--pubkey F] [--from-seq N])"},
    {"backup", sv_cmd_backup, "write a consistent snapshot while the server runs (--out F, --data-dir D)"},
    {"restore", sv_cmd_restore, "install a backup offline (--in F, --data-dir D, --force)"},
    {"dev-token", sv_cmd_devtoken, "print a JWT from the dev issuer of `server --dev` (--sub, --tenant, --scope, --ttl, ...)"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: scaivault <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < SV_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        sv_cli_error("libsodium failed to initialise");
        return 1;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    for (size_t i = 0; i < SV_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        /* `scaivault backup --help`: the command's line, on stdout, exit 0 */
        for (int a = 2; a < argc; a++) {
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                printf("usage: scaivault %s [options]\n  %s\n(doc/operations.md and doc/configuration.md have the "
                       "details)\n",
                       commands[i].name, commands[i].help);
                return 0;
            }
        }
        return commands[i].run(argc - 2, argv + 2);
    }
    sv_cli_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return 2;
}
