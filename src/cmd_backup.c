/*
 * cmd_backup.c - `scaivault backup --out F [--data-dir D] [--config FILE]`
 * and `scaivault restore --in F [--data-dir D] [--force] [--config FILE]`.
 *
 * backup runs beside a live server (another process): it opens the
 * environment read-only, which takes one reader slot and never blocks the
 * server's writer, and writes a compacted snapshot plus a JSON sidecar F.json
 * (LSN, schema version, instance id, time, size and BLAKE2b-256 of F).
 * restore runs offline: it refuses a directory that holds anything unless
 * --force, and refuses while a process has the database open. When F.json is
 * there, F must match its size and hash before LMDB reads a byte of it: LMDB
 * does not checksum its pages, and a damaged page can fault the reader or
 * pass the walk and be installed. Both run on the main thread; the work is in
 * store/backup.c.
 *
 * The KMS key file (master.key) is not in the environment, hence not in a
 * backup: both commands say so, and doc/operations.md explains it.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "src/buf.h"
#include "src/commands.h"
#include "src/config.h"
#include "src/json.h"
#include "src/log.h"
#include "store/backup.h"
#include "store/fault.h"
#include "store/migrate.h"

/* Loads the configuration shared by both commands. Returns 0 or an exit status. */
static int load_config(const char *cmd, int argc, char **argv, const char *const *known, sv_config_t *cfg)
{
    const char *why;
    const char *bad = sv_cli_unknown(argc, argv, known, &why);
    if (bad != NULL) {
        sv_cli_error("%s: %s '%s'", cmd, why, bad);
        memset(cfg, 0, sizeof(*cfg));
        return 2;
    }
    char msg[512];
    if (sv_config_load(cfg, sv_cli_opt(argc, argv, "config"), false, msg, sizeof(msg)) != SV_OK) {
        sv_cli_error("%s", msg);
        return 2;
    }
    sv_log_init(cfg->log_level, cfg->log_format);
    if (cfg->test_fault != NULL)
        sv_fault_arm_spec(cfg->test_fault, true);
    return 0;
}

/* A key file of data dir dir: the configured path, or name in dir. */
static void key_path(const char *configured, const char *dir, const char *name, char *out, size_t cap)
{
    if (configured != NULL)
        snprintf(out, cap, "%s", configured);
    else
        snprintf(out, cap, "%s/%s", dir, name);
}

/* BLAKE2b-256 of the file at path, as hex, and its size. */
static sv_err_t file_hash(const char *path, char hex[2 * crypto_generichash_BYTES + 1], uint64_t *bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SV_ENOTFOUND : SV_EIO;
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, crypto_generichash_BYTES);
    static uint8_t buf[1 << 16];
    *bytes = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        crypto_generichash_update(&h, buf, (size_t)n);
        *bytes += (uint64_t)n;
    }
    close(fd);
    if (n < 0)
        return SV_EIO;
    uint8_t digest[crypto_generichash_BYTES];
    crypto_generichash_final(&h, digest, sizeof(digest));
    sodium_bin2hex(hex, 2 * crypto_generichash_BYTES + 1, digest, sizeof(digest));
    return SV_OK;
}

/* When in.json exists: SV_OK if in has the size and hash it records,
 * SV_ECORRUPT if not (or the sidecar is unreadable); *checked says whether
 * there was one. */
static sv_err_t check_sidecar(const char *in, bool *checked)
{
    *checked = false;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s.json", in) >= sizeof(path))
        return SV_OK;
    sv_json_doc_t *doc;
    sv_err_t lerr = sv_json_load_file(path, &doc);
    if (lerr == SV_ENOTFOUND)
        return SV_OK; /* a bare file: LMDB's own checks only */
    *checked = true;
    if (lerr != SV_OK)
        return SV_ECORRUPT;
    size_t hl = 0;
    const char *want = sv_json_get_str(sv_json_root(doc), "blake2b", &hl);
    const sv_json_t *bytes = sv_json_get(sv_json_root(doc), "bytes");
    sv_err_t err = SV_ECORRUPT;
    if (want == NULL) {
        err = SV_OK; /* a sidecar of a version that recorded no hash */
        *checked = false;
    } else if (bytes != NULL && bytes->type == SV_JSON_NUMBER && bytes->u.num.is_int) {
        char got[2 * crypto_generichash_BYTES + 1];
        uint64_t size = 0;
        if ((err = file_hash(in, got, &size)) == SV_OK)
            err = size == (uint64_t)bytes->u.num.i && hl == strlen(got) && memcmp(want, got, hl) == 0 ? SV_OK
                                                                                                       : SV_ECORRUPT;
    }
    sv_json_doc_free(doc);
    return err;
}

/* The sidecar F.json of a finished copy (sv_backup_sidecar_fn); arg: the data dir. */
static sv_err_t make_sidecar(const char *copy_path, const sv_backup_info_t *info, void *arg, char **text, size_t *len)
{
    char digest[2 * crypto_generichash_BYTES + 1];
    uint64_t size = 0;
    sv_err_t herr = file_hash(copy_path, digest, &size);
    if (herr != SV_OK)
        return herr;
    sv_buf_t b;
    sv_jw_t jw;
    sv_buf_init(&b, false);
    sv_jw_init(&jw, &b);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "format");
    sv_jw_int(&jw, 1);
    sv_jw_key(&jw, "lsn");
    sv_jw_uint(&jw, info->lsn);
    sv_jw_key(&jw, "schema_version");
    sv_jw_uint(&jw, info->schema_version);
    sv_jw_key(&jw, "instance_id");
    sv_jw_cstr(&jw, info->instance_id);
    sv_jw_key(&jw, "created_at");
    sv_jw_time(&jw, sv_now_s());
    sv_jw_key(&jw, "bytes");
    sv_jw_uint(&jw, size);
    sv_jw_key(&jw, "blake2b");
    sv_jw_cstr(&jw, digest);
    sv_jw_key(&jw, "source_data_dir");
    sv_jw_cstr(&jw, arg);
    sv_jw_key(&jw, "scaivault_version");
    sv_jw_cstr(&jw, SV_VERSION_STRING);
    sv_jw_key(&jw, "kms_key_included");
    sv_jw_bool(&jw, false);
    sv_jw_obj_end(&jw);
    sv_buf_putc(&b, '\n');
    *text = b.failed ? NULL : malloc(b.len);
    if (*text != NULL) {
        memcpy(*text, b.base, b.len);
        *len = b.len;
    }
    sv_buf_free(&b);
    return *text != NULL ? SV_OK : SV_ENOMEM;
}

/* Whether a and b name the same existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Refuses an --out that would replace a live file, or whose sidecar would:
 * anything in a data directory (one that holds lock.mdb, or data.mdb beside
 * a key file: a restored one not started yet), a file named like the
 * database, or the key files wherever they are. Returns false after saying
 * why. */
static bool out_is_safe(const char *out, const sv_config_t *cfg, const char *dir)
{
    char *copy = strdup(out), *copy2 = strdup(out);
    if (copy == NULL || copy2 == NULL) {
        free(copy);
        free(copy2);
        sv_cli_error("backup: out of memory");
        return false;
    }
    const char *parent = dirname(copy), *name = basename(copy2);
    static const char *const marks[][2] = {
        {"lock.mdb", NULL}, {"data.mdb", "master.key"}, {"data.mdb", "audit-signing.key"}};
    bool live = strcmp(name, "data.mdb") == 0 || strcmp(name, "lock.mdb") == 0;
    char path[4096], beside[4096];
    struct stat sb;
    for (size_t i = 0; i < SV_ARRAY_LEN(marks) && !live; i++) {
        snprintf(path, sizeof(path), "%s/%s", parent, marks[i][0]);
        live = stat(path, &sb) == 0;
        if (live && marks[i][1] != NULL) {
            snprintf(beside, sizeof(beside), "%s/%s", parent, marks[i][1]);
            live = stat(beside, &sb) == 0;
        }
    }
    free(copy);
    free(copy2);
    if (live) {
        sv_cli_error("backup: '%s' is in a data directory, or named like its database: a backup there could "
                     "replace a server's own files; write it to another directory",
                     out);
        return false;
    }
    char key[4096], side[4200];
    key_path(cfg->kms_local_key_file, dir, "master.key", key, sizeof(key));
    snprintf(side, sizeof(side), "%s.json", out);
    const char *keys[] = {key, cfg->audit_signing_key_file};
    for (size_t i = 0; i < SV_ARRAY_LEN(keys); i++) {
        if (keys[i] != NULL && (same_file(out, keys[i]) || same_file(side, keys[i]))) {
            sv_cli_error("backup: '%s' or its sidecar is the key file '%s': name another file", out, keys[i]);
            return false;
        }
    }
    return true;
}

int sv_cmd_backup(int argc, char **argv)
{
    static const char *const known[] = {"out=", "data-dir=", "config=", NULL};
    sv_config_t cfg;
    int rc = load_config("backup", argc, argv, known, &cfg);
    if (rc != 0)
        goto free_config;
    rc = 2;
    const char *out = sv_cli_opt(argc, argv, "out");
    if (out == NULL || *out == 0) {
        sv_cli_error("backup: --out FILE is required");
        goto free_config;
    }
    struct stat ob;
    if (stat(out, &ob) == 0 && !S_ISREG(ob.st_mode)) {
        sv_cli_error("backup: '%s' exists and is not a regular file: name a file to create or replace", out);
        goto free_config;
    }
    const char *dir = sv_cli_opt(argc, argv, "data-dir");
    if (dir == NULL)
        dir = cfg.data_dir;
    if (!out_is_safe(out, &cfg, dir))
        goto free_config;
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (access(path, R_OK) != 0) {
        sv_cli_error("backup: no database in '%s' (%s): check --data-dir or SCAIVAULT_DATA_DIR", dir, strerror(errno));
        goto free_config;
    }
    rc = 1;
    signal(SIGPIPE, SIG_IGN);
    sv_store_temps_on_signals();
    sv_store_t *st;
    char cause[256];
    sv_store_opts_t so = {
        .dir = dir, .read_only = true, .max_readers = cfg.db_pool_size, .why = cause, .why_len = sizeof(cause)};
    sv_err_t err = sv_store_open(&st, &so);
    if (err != SV_OK) {
        sv_cli_error("backup: cannot open the database in '%s': %s", dir, cause[0] ? cause : sv_strerror(err));
        goto free_config;
    }
    sv_backup_info_t info;
    err = sv_store_backup(st, out, &info, make_sidecar, (void *)dir);
    sv_store_close(st);
    if (err != SV_OK && info.installed && !info.sidecar_installed) {
        sv_cli_error("backup: '%s' is written, but '%s.json' could not be: %s. The older '%s.json' was removed "
                     "(it described the older file); '%s' restores without it, with LMDB's own checks only",
                     out, out, sv_strerror(err), out, out);
        goto free_config;
    }
    if (err != SV_OK && info.installed) {
        sv_cli_error("backup: '%s' and '%s.json' are written, but making their names durable failed: %s. Check "
                     "the disk, and run the backup again",
                     out, out, sv_strerror(err));
        goto free_config;
    }
    if (err != SV_OK && info.source_damaged) {
        sv_cli_error("backup: the database in '%s' is damaged (it does not walk: %s); nothing was written. Keep "
                     "the older backups",
                     dir, sv_strerror(err));
        goto free_config;
    }
    if (err != SV_OK) {
        sv_cli_error("backup: cannot write '%s': %s (nothing was written)", out, sv_strerror(err));
        goto free_config;
    }
    char key[4096];
    key_path(cfg.kms_local_key_file, dir, "master.key", key, sizeof(key));
    sv_log_info("backup of %s written to %s: lsn %llu, schema version %u, %llu bytes", dir, out,
                (unsigned long long)info.lsn, info.schema_version, (unsigned long long)info.bytes);
    printf("backup: %s lsn=%llu schema_version=%u bytes=%llu instance_id=%s\n", out, (unsigned long long)info.lsn,
           info.schema_version, (unsigned long long)info.bytes, info.instance_id);
    printf("note: the KMS key file (%s) is not in the backup; back it up separately, or the backup cannot be "
           "decrypted\n",
           key);
    char sig[4096];
    key_path(cfg.audit_signing_key_file, dir, "audit-signing.key", sig, sizeof(sig));
    printf("note: neither is the audit signing key (%s): keep it too, or checkpoints of this backup verify only "
           "with its public key (GET /v1/audit/checkpoints/public-key)\n",
           sig);
    rc = 0;
free_config:
    sv_config_free(&cfg);
    return rc;
}

int sv_cmd_restore(int argc, char **argv)
{
    static const char *const known[] = {"in=", "data-dir=", "force", "config=", NULL};
    sv_config_t cfg;
    int rc = load_config("restore", argc, argv, known, &cfg);
    if (rc != 0)
        goto free_config;
    rc = 2;
    const char *in = sv_cli_opt(argc, argv, "in");
    if (in == NULL || *in == 0) {
        sv_cli_error("restore: --in FILE is required");
        goto free_config;
    }
    const char *dir = sv_cli_opt(argc, argv, "data-dir");
    if (dir == NULL)
        dir = cfg.data_dir;
    bool force = sv_cli_flag(argc, argv, "force");
    sv_store_damage_exit(2); /* a damaged backup is not one this binary restores */
    sv_store_temps_on_signals();
    struct stat db;
    if (stat(dir, &db) == 0 && !S_ISDIR(db.st_mode)) {
        sv_cli_error("restore: '%s' is not a directory: --data-dir names the data directory to restore into", dir);
        goto free_config;
    }
    sv_backup_info_t info;
    memset(&info, 0, sizeof(info));
    bool checked = false;
    sv_err_t err = check_sidecar(in, &checked);
    if (err == SV_ECORRUPT) {
        sv_cli_error("restore: '%s' does not match the size and BLAKE2b hash in '%s.json' (damaged, or not the "
                     "file that sidecar describes); '%s' is unchanged",
                     in, in, dir);
        goto free_config;
    }
    if (err == SV_OK && !checked)
        sv_log_warn("restore: no checksum for '%s' (no '%s.json' with one): only LMDB's own checks apply", in, in);
    if (err == SV_OK)
        err = sv_store_restore(in, dir, force, &info);
    switch (err) {
    case SV_OK:
        rc = 0;
        break;
    case SV_ENOTFOUND:
        if (access(in, F_OK) != 0)
            sv_cli_error("restore: cannot read '%s': no such file or directory", in);
        else
            sv_cli_error("restore: cannot create '%s': its parent directory does not exist (or it is a dangling "
                         "symbolic link)",
                         dir);
        break;
    case SV_ECORRUPT:
        sv_cli_error("restore: '%s' is not a ScaiVault backup (not an LMDB data file, or damaged); '%s' is unchanged",
                     in, dir);
        break;
    case SV_ESCHEMA:
        if (info.schema_version == 0)
            sv_cli_error("restore: '%s' holds no ScaiVault schema; '%s' is unchanged", in, dir);
        else
            sv_cli_error("restore: '%s' has schema version %u, newer than this binary (%d): restore it with the "
                         "newer binary; '%s' is unchanged",
                         in, info.schema_version, SV_SCHEMA_VERSION, dir);
        break;
    case SV_EEXIST:
        sv_cli_error("restore: '%s' is not empty; refusing to replace its database. Stop the server and add --force "
                     "to replace it (only data.mdb is replaced)",
                     dir);
        break;
    case SV_EAGAIN:
        sv_cli_error("restore: the database in '%s' is in use (is the server running?): stop it first", dir);
        break;
    default:
        sv_cli_error("restore: cannot install '%s' into '%s': %s ('%s' is unchanged)", in, dir, sv_strerror(err), dir);
        rc = 1;
        break;
    }
    if (rc != 0)
        goto free_config;
    sv_log_info("restored %s into %s: lsn %llu, schema version %u", in, dir, (unsigned long long)info.lsn,
                info.schema_version);
    printf("restore: %s -> %s lsn=%llu schema_version=%u bytes=%llu instance_id=%s\n", in, dir,
           (unsigned long long)info.lsn, info.schema_version, (unsigned long long)info.bytes, info.instance_id);
    if (info.schema_version < SV_SCHEMA_VERSION)
        printf("note: schema version %u is older than this binary's (%d): the server migrates it at start "
               "(or run `scaivault migrate`)\n",
               info.schema_version, SV_SCHEMA_VERSION);
    char key[4096];
    struct stat sb;
    key_path(cfg.kms_local_key_file, dir, "master.key", key, sizeof(key));
    if (stat(key, &sb) != 0)
        printf("note: the KMS key file %s is missing: restore it from your key backup before starting the server\n",
               key);
    char sig[4096];
    key_path(cfg.audit_signing_key_file, dir, "audit-signing.key", sig, sizeof(sig));
    if (stat(sig, &sb) != 0)
        printf("note: the audit signing key %s is missing: put the old one back, or the server makes a new one and "
               "the restored checkpoints verify only with the old public key\n",
               sig);
free_config:
    sv_config_free(&cfg);
    return rc;
}
