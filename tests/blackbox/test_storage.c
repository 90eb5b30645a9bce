/* tests/blackbox/test_storage.c - the storage engine through the real binary:
 * schema checks at start and `scaivault migrate`, `scaivault backup` while
 * another process writes, `scaivault restore` and its refusals, fault seams
 * armed with SCAIVAULT_TEST_FAULT, a real full disk (a small tmpfs) through
 * the storage driver and at start, start-up errors of the data directory, the
 * KMS key file the stored data keys need, and the scheduler at a restart. */
#include "sv_autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "src/kms.h"
#include "src/scheduler.h"
#include "store/env.h"
#include "store/migrate.h"
#include "tests/blackbox/bb.h"

#define RUN_TIMEOUT_MS 60000

/* ---- helpers ---- */

static void make_dir(char *out, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/sv-%s-XXXXXX", base && base[0] ? base : "/tmp", tag);
    if (mkdtemp(out) == NULL)
        out[0] = 0;
}

/* Runs `scaivault args` with the data dir and extra env; returns the exit status. */
static int run_sv(const char *data_dir, const char *const *args, const char *const *extra_env, char *out, size_t cap)
{
    char data[700];
    snprintf(data, sizeof(data), "SCAIVAULT_DATA_DIR=%s", data_dir);
    const char *env[16] = {data, "SCAIVAULT_LISTEN=127.0.0.1:0", "SCAIVAULT_THREADS=2", "LOG_FORMAT=text"};
    size_t n = 4;
    for (const char *const *e = extra_env; e != NULL && *e != NULL && n < 15; e++)
        env[n++] = *e;
    env[n] = NULL;
    return bb_run_exe(bb_bin(), args, env, out, cap, RUN_TIMEOUT_MS);
}

#define ASSERT_OUT_HAS(out, needle)                                                                                    \
    do {                                                                                                               \
        if (strstr((out), (needle)) == NULL)                                                                           \
            fprintf(stderr, "\n  %s:%d: output lacks \"%s\":\n%s\n", __FILE__, __LINE__, (needle), (out));             \
        CU_ASSERT_PTR_NOT_NULL(strstr((out), (needle)));                                                               \
    } while (0)

static uint32_t schema_of(const char *data_dir)
{
    sv_store_t *st;
    sv_store_opts_t o = {.dir = data_dir, .read_only = true};
    uint32_t v = 12345;
    if (sv_store_open(&st, &o) != SV_OK)
        return v;
    if (sv_migrate_current(st, &v) != SV_OK)
        v = 12345;
    sv_store_close(st);
    return v;
}

/* Writes schema_version v into the meta database, as a newer binary would. */
static void set_schema(const char *data_dir, uint32_t v)
{
    sv_store_t *st;
    sv_store_opts_t o = {.dir = data_dir, .map_size = 1 << 20};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    CU_ASSERT(sv_test_set_schema(st, v));
    sv_store_close(st);
}

/* Prepares s to run on dir (its data in dir/data) and starts it. */
static bool start_on(bb_server_t *s, const char *dir, const char *const *env)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", dir);
    snprintf(s->log_path, sizeof(s->log_path), "%s/server.log", dir);
    char hex[33];
    bb_random_hex(hex, 32);
    snprintf(s->token, sizeof(s->token), "svb_%s", hex);
    return bb_start(s, env);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The number after "key=" in out, or -1. */
static long long field(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p != NULL ? atoll(p + strlen(key)) : -1;
}

/* ---- schema checks and migrations ---- */

static void test_newer_schema_refused(void)
{
    char dir[512], data[600], out[8192];
    make_dir(dir, sizeof(dir), "schema");
    snprintf(data, sizeof(data), "%s/data", dir);
    const char *migrate[] = {"migrate", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL_FATAL(run_sv(data, migrate, NULL, out, sizeof(out)), 0);
    set_schema(data, 99);

    const char *server[] = {"server", NULL};
    CU_ASSERT_EQUAL(run_sv(data, server, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "version 99");
    ASSERT_OUT_HAS(out, "up to version 3");
    ASSERT_OUT_HAS(out, "scaivault migrate --target 3");
    /* the offline tool refuses too, and nothing changed */
    CU_ASSERT_EQUAL(run_sv(data, migrate, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "99");
    CU_ASSERT_EQUAL(schema_of(data), 99);
    sv_test_rmdir(dir);
}

static void test_older_schema(void)
{
    char dir[512], data[600], out[8192];
    make_dir(dir, sizeof(dir), "schema");
    snprintf(data, sizeof(data), "%s/data", dir);
    const char *to3[] = {"migrate", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL_FATAL(run_sv(data, to3, NULL, out, sizeof(out)), 0);
    ASSERT_OUT_HAS(out, "migration 1_core up: ok");
    const char *to1[] = {"migrate", "--target", "1", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL_FATAL(run_sv(data, to1, NULL, out, sizeof(out)), 0);
    /* down to 1: every step logged */
    ASSERT_OUT_HAS(out, "migration 3_engines down: ok");
    ASSERT_OUT_HAS(out, "migration 2_events down: ok");
    CU_ASSERT_EQUAL(schema_of(data), 1);

    /* MIGRATE_ON_START=false: refuse, name `scaivault migrate` */
    const char *server[] = {"server", NULL};
    const char *no_migrate[] = {"MIGRATE_ON_START=false", NULL};
    CU_ASSERT_EQUAL(run_sv(data, server, no_migrate, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "version 1");
    ASSERT_OUT_HAS(out, "scaivault migrate");
    CU_ASSERT_EQUAL(schema_of(data), 1);

    /* by default the server migrates forward at start, logging each step */
    bb_server_t s;
    CU_ASSERT_FATAL(start_on(&s, dir, NULL));
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT(bb_file_contains_str(s.log_path, "migration 2_events up: ok"));
    CU_ASSERT(bb_file_contains_str(s.log_path, "migration 3_engines up: ok"));
    CU_ASSERT_EQUAL(schema_of(data), 3);

    /* `scaivault migrate` alone goes to the binary's version, step by step */
    CU_ASSERT_EQUAL(run_sv(data, to1, NULL, out, sizeof(out)), 0);
    const char *up[] = {"migrate", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL(run_sv(data, up, NULL, out, sizeof(out)), 0);
    ASSERT_OUT_HAS(out, "schema version 1, target 3");
    ASSERT_OUT_HAS(out, "migration 2_events up: ok");
    ASSERT_OUT_HAS(out, "migration 3_engines up: ok");
    ASSERT_OUT_HAS(out, "schema is now version 3");
    const char *bad[] = {"migrate", "--target", "4", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL(run_sv(data, bad, NULL, out, sizeof(out)), 2);
    bb_cleanup(&s);
}

static void test_failed_step_keeps_old_version(void)
{
    char dir[512], data[600], out[8192];
    make_dir(dir, sizeof(dir), "schema");
    snprintf(data, sizeof(data), "%s/data", dir);
    const char *to1[] = {"migrate", "--target", "1", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL_FATAL(run_sv(data, to1, NULL, out, sizeof(out)), 0);

    /* the second step's commit fails: the first stays, the second does not */
    const char *up[] = {"migrate", "--data-dir", data, NULL};
    const char *fault2[] = {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=commit:2:1:EIO", NULL};
    CU_ASSERT_EQUAL(run_sv(data, up, fault2, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "migration 2_events up: ok");
    ASSERT_OUT_HAS(out, "migration 3_engines up: failed");
    ASSERT_OUT_HAS(out, "schema stays at version 2");
    CU_ASSERT_EQUAL(schema_of(data), 2);

    /* the same at server start */
    const char *server[] = {"server", NULL};
    const char *fault1[] = {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=commit:1:1:ENOSPC", NULL};
    CU_ASSERT_EQUAL(run_sv(data, server, fault1, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "migration 3_engines up: failed");
    ASSERT_OUT_HAS(out, "schema migration failed");
    CU_ASSERT_EQUAL(schema_of(data), 2);

    /* a fault spec needs the test switch */
    const char *no_switch[] = {"SCAIVAULT_TEST_FAULT=commit:1", NULL};
    CU_ASSERT_EQUAL(run_sv(data, up, no_switch, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "SCAIVAULT_TEST_FAULT");
    const char *bad_spec[] = {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=commit:x", NULL};
    CU_ASSERT_EQUAL(run_sv(data, up, bad_spec, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "SCAIVAULT_TEST_FAULT");

    /* without the fault it comes up at version 3 */
    bb_server_t s;
    CU_ASSERT_FATAL(start_on(&s, dir, NULL));
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT_EQUAL(schema_of(data), 3);
    bb_cleanup(&s);
}

/* ---- backup and restore ---- */

static void test_backup_and_restore_cli(void)
{
    char dir[512], out[8192], snap[700], side[720], other[700];
    bb_server_t s;
    make_dir(dir, sizeof(dir), "backup");
    CU_ASSERT_FATAL(start_on(&s, dir, NULL));
    snprintf(snap, sizeof(snap), "%s/snap.mdb", dir);
    snprintf(side, sizeof(side), "%s.json", snap);
    snprintf(other, sizeof(other), "%s/other", dir);

    /* while the server runs */
    const char *backup[] = {"backup", "--out", snap, "--data-dir", s.data_dir, NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, backup, NULL, out, sizeof(out)), 0);
    ASSERT_OUT_HAS(out, "lsn=");
    ASSERT_OUT_HAS(out, "schema_version=3");
    ASSERT_OUT_HAS(out, "master.key"); /* says the KMS key is not in it */
    ASSERT_OUT_HAS(out, "audit-signing.key"); /* nor the audit signing key */
    CU_ASSERT(exists(snap));
    CU_ASSERT(bb_file_contains_str(side, "\"schema_version\":3"));
    CU_ASSERT(bb_file_contains_str(side, "\"lsn\":"));
    CU_ASSERT(bb_file_contains_str(side, "\"instance_id\":\""));
    CU_ASSERT(bb_file_contains_str(side, "\"kms_key_included\":false"));
    CU_ASSERT(bb_file_contains_str(side, "\"blake2b\":\""));

    /* restore refuses the running server's directory */
    const char *onto_live[] = {"restore", "--in", snap, "--data-dir", s.data_dir, "--force", NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, onto_live, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "in use");
    CU_ASSERT(bb_alive(&s));

    /* a new directory; then the same one again: not empty */
    const char *fresh[] = {"restore", "--in", snap, "--data-dir", other, NULL};
    CU_ASSERT_EQUAL(run_sv(other, fresh, NULL, out, sizeof(out)), 0);
    ASSERT_OUT_HAS(out, "schema_version=3");
    ASSERT_OUT_HAS(out, "master.key"); /* the key file is missing there */
    ASSERT_OUT_HAS(out, "the audit signing key"); /* and so is the signing key */
    CU_ASSERT_EQUAL(run_sv(other, fresh, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "not empty");
    ASSERT_OUT_HAS(out, "--force");
    /* not a backup */
    const char *not_backup[] = {"restore", "--in", side, "--data-dir", other, "--force", NULL};
    CU_ASSERT_EQUAL(run_sv(other, not_backup, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "not a ScaiVault backup");
    const char *no_in[] = {"restore", "--data-dir", other, NULL};
    CU_ASSERT_EQUAL(run_sv(other, no_in, NULL, out, sizeof(out)), 2);
    /* a damaged copy (32 bytes overwritten in its third page) with its
     * sidecar: refused on the hash, before LMDB reads a page of it */
    char bad[700], bad_side[720], cmd[4096];
    snprintf(bad, sizeof(bad), "%s/bad.mdb", dir);
    snprintf(bad_side, sizeof(bad_side), "%s.json", bad);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && cp '%s' '%s' && printf '%%032d' 0 | dd of='%s' bs=1 seek=8208 conv=notrunc 2>/dev/null",
             snap, bad, side, bad_side, bad);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    const char *damaged[] = {"restore", "--in", bad, "--data-dir", other, "--force", NULL};
    CU_ASSERT_EQUAL(run_sv(other, damaged, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "does not match the size and BLAKE2b hash");
    ASSERT_OUT_HAS(out, "is unchanged");
    /* a backup and the sidecar of another backup: refused too */
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && echo '{\"format\":1,\"bytes\":1,\"blake2b\":\"00\"}' > '%s'", snap,
             bad, bad_side);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL(run_sv(other, damaged, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "does not match");
    /* --out naming something that is not a file is refused, not replaced */
    const char *to_dir[] = {"backup", "--out", dir, "--data-dir", s.data_dir, NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, to_dir, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "not a regular file");
    /* restore's errors name the data directory when it is the data directory that is wrong */
    char no_parent[720];
    snprintf(no_parent, sizeof(no_parent), "%s/no/such", dir);
    const char *to_missing[] = {"restore", "--in", snap, "--data-dir", no_parent, NULL};
    CU_ASSERT_EQUAL(run_sv(no_parent, to_missing, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "its parent directory does not exist");
    const char *to_file[] = {"restore", "--in", snap, "--data-dir", bad_side, NULL};
    CU_ASSERT_EQUAL(run_sv(bad_side, to_file, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "is not a directory");

    /* stopped: --force replaces it, and the server starts on the restored data */
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT_EQUAL(run_sv(s.data_dir, onto_live, NULL, out, sizeof(out)), 0);
    CU_ASSERT(bb_start(&s, NULL));
    CU_ASSERT_EQUAL(bb_stop(&s), 0);

    /* a failing rename or fsync leaves nothing */
    char snap2[700];
    snprintf(snap2, sizeof(snap2), "%s/snap2.mdb", dir);
    const char *backup2[] = {"backup", "--out", snap2, "--data-dir", s.data_dir, NULL};
    char side2[720];
    snprintf(side2, sizeof(side2), "%s.json", snap2);
    /* the copy's fsync, the sidecar's fsync, the copy's rename: before anything is renamed */
    const char *faults[][3] = {{"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=rename:1:1:ENOSPC", NULL},
                               {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=fsync:1:1:EIO", NULL},
                               {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=fsync:2:1:EIO", NULL}};
    for (size_t i = 0; i < SV_ARRAY_LEN(faults); i++) {
        CU_ASSERT_EQUAL(run_sv(s.data_dir, backup2, faults[i], out, sizeof(out)), 1);
        ASSERT_OUT_HAS(out, "nothing was written");
        CU_ASSERT_FALSE(exists(snap2));
        CU_ASSERT_FALSE(exists(side2));
    }
    /* and with an older backup of the same name, they leave it and its sidecar as they were */
    CU_ASSERT_EQUAL_FATAL(run_sv(s.data_dir, backup2, NULL, out, sizeof(out)), 0);
    struct stat old_snap, old_side, now;
    CU_ASSERT_EQUAL_FATAL(stat(snap2, &old_snap), 0);
    CU_ASSERT_EQUAL_FATAL(stat(side2, &old_side), 0);
    for (size_t i = 0; i < SV_ARRAY_LEN(faults); i++) {
        CU_ASSERT_EQUAL(run_sv(s.data_dir, backup2, faults[i], out, sizeof(out)), 1);
        CU_ASSERT(stat(snap2, &now) == 0 && now.st_ino == old_snap.st_ino);
        CU_ASSERT(stat(side2, &now) == 0 && now.st_ino == old_side.st_ino);
    }
    /* the sidecar's own rename is the one step after the copy is in place: the new copy stays,
     * the older sidecar (which would not match it) goes, and restore takes the copy without it */
    const char *last[] = {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=rename:2:1:EIO", NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, backup2, last, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "is written, but");
    CU_ASSERT(stat(snap2, &now) == 0 && now.st_ino != old_snap.st_ino);
    CU_ASSERT_FALSE(exists(side2));
    /* temporary files of a backup that was killed (SIGKILL) are removed by the next one; one that a
     * running backup holds (locked) is not */
    char stale[760], held[760];
    snprintf(stale, sizeof(stale), "%s.tmp-AbCdEf", snap2);
    snprintf(held, sizeof(held), "%s.tmp-GhIjKl", snap2);
    char young[760];
    snprintf(young, sizeof(young), "%s.tmp-MnOpQr", snap2);
    int sfd = open(stale, O_CREAT | O_WRONLY, 0600), hfd = open(held, O_CREAT | O_WRONLY, 0600),
        yfd = open(young, O_CREAT | O_WRONLY, 0600);
    CU_ASSERT_FATAL(sfd >= 0 && hfd >= 0 && yfd >= 0);
    /* two minutes old, as one left by a killed backup; the young one may be a backup's that has
     * not locked it yet */
    struct timespec old_times[2] = {{time(NULL) - 120, 0}, {time(NULL) - 120, 0}};
    CU_ASSERT_EQUAL(futimens(sfd, old_times), 0);
    CU_ASSERT_EQUAL(futimens(hfd, old_times), 0);
    close(sfd);
    close(yfd);
    CU_ASSERT_EQUAL(flock(hfd, LOCK_EX), 0);
    CU_ASSERT_EQUAL(run_sv(s.data_dir, backup2, NULL, out, sizeof(out)), 0);
    CU_ASSERT_FALSE(exists(stale));
    CU_ASSERT(exists(held));
    CU_ASSERT(exists(young));
    close(hfd);
    unlink(held);
    unlink(young);
    /* a directory's fsync after the renames: both new files stay, and the message says what failed */
    const char *dir_sync[] = {"SCAIVAULT_TEST_FAULTS=true", "SCAIVAULT_TEST_FAULT=fsync:3:1:EIO", NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, backup2, dir_sync, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "making their names durable failed");
    CU_ASSERT(exists(snap2) && exists(side2));
    char fresh_dir[720];
    snprintf(fresh_dir, sizeof(fresh_dir), "%s/fresh_dir", dir);
    const char *restore2[] = {"restore", "--in", snap2, "--data-dir", fresh_dir, NULL};
    /* a killed restore's temporary file does not make the directory "not empty" */
    CU_ASSERT_EQUAL_FATAL(mkdir(fresh_dir, 0700), 0);
    char fresh_tmp[760];
    snprintf(fresh_tmp, sizeof(fresh_tmp), "%s/data.mdb.tmp-MnOpQr", fresh_dir);
    int ffd = open(fresh_tmp, O_CREAT | O_WRONLY, 0600);
    CU_ASSERT(ffd >= 0);
    struct timespec then[2] = {{time(NULL) - 120, 0}, {time(NULL) - 120, 0}};
    CU_ASSERT_EQUAL(futimens(ffd, then), 0);
    close(ffd);
    CU_ASSERT_EQUAL(run_sv(fresh_dir, restore2, NULL, out, sizeof(out)), 0);
    CU_ASSERT_FALSE(exists(fresh_tmp));
    /* --out inside a data directory, or naming a key file, is refused before anything is read */
    char live[720], live_key[720], key_out[720], key_env[740], restored[740];
    snprintf(live, sizeof(live), "%s/data.mdb", s.data_dir);
    snprintf(restored, sizeof(restored), "%s/data.mdb", fresh_dir); /* restored, never started: no lock.mdb */
    snprintf(live_key, sizeof(live_key), "%s/master.key", s.data_dir);
    snprintf(key_out, sizeof(key_out), "%s/elsewhere.key", dir);
    snprintf(key_env, sizeof(key_env), "KMS_LOCAL_KEY_FILE=%s", key_out);
    snprintf(cmd, sizeof(cmd), "head -c 32 /dev/urandom > '%s'", key_out);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    const char *key_cfg[] = {key_env, NULL};
    const struct {
        const char *out;
        const char *const *env;
        const char *why;
    } refused[] = {{live, NULL, "in a data directory"},
                   {restored, NULL, "in a data directory"},
                   {live_key, NULL, "in a data directory"},
                   {key_out, key_cfg, "is the key file"}};
    for (size_t i = 0; i < SV_ARRAY_LEN(refused); i++) {
        struct stat before;
        CU_ASSERT_EQUAL(stat(refused[i].out, &before), 0);
        const char *bad_out[] = {"backup", "--out", refused[i].out, "--data-dir", s.data_dir, NULL};
        CU_ASSERT_EQUAL(run_sv(s.data_dir, bad_out, refused[i].env, out, sizeof(out)), 2);
        ASSERT_OUT_HAS(out, refused[i].why);
        CU_ASSERT(stat(refused[i].out, &now) == 0 && now.st_ino == before.st_ino && now.st_size == before.st_size);
    }
    /* no temporary file left in the directory */
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, "tmp") != NULL)
            CU_FAIL("a temporary file was left behind");
    closedir(d);
    bb_cleanup(&s);
}

/* Starts the driver writing into data_dir; returns its pid once it is READY. */
static pid_t start_writer(const char *data_dir, const char *log)
{
    const char *argv[] = {bb_crashdriver(), "write", "--data-dir", data_dir,  "--clients", "4",
                          "--keys",         "3",     "--map-size", "1048576", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        dup2(fd, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 400 && pid > 0; i++) {
        if (bb_file_contains_str(log, "READY"))
            return pid;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_backup_during_writes_is_consistent(void)
{
    char dir[512], data[600], log[600], out[8192];
    make_dir(dir, sizeof(dir), "hotbackup");
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/writer.log", dir);
    pid_t pid = start_writer(data, log);
    CU_ASSERT_FATAL(pid > 0);
    long long prev = -1;
    for (int i = 0; i < 3; i++) {
        usleep(150000); /* let it write (and grow its 1 MiB map) */
        char snap[700], restored[700];
        snprintf(snap, sizeof(snap), "%s/snap%d.mdb", dir, i);
        snprintf(restored, sizeof(restored), "%s/restored%d", dir, i);
        const char *backup[] = {"backup", "--out", snap, "--data-dir", data, NULL};
        CU_ASSERT_EQUAL(run_sv(data, backup, NULL, out, sizeof(out)), 0);
        long long lsn = field(out, "lsn=");
        CU_ASSERT(lsn >= prev);
        prev = lsn;
        const char *restore[] = {"restore", "--in", snap, "--data-dir", restored, NULL};
        CU_ASSERT_EQUAL(run_sv(restored, restore, NULL, out, sizeof(out)), 0);
        CU_ASSERT_EQUAL(field(out, "lsn="), lsn);
        /* the snapshot is one consistent moment: whole units, a whole log */
        const char *verify[] = {"verify", "--data-dir", restored, "--keys", "3", NULL};
        int rc = bb_run_exe(bb_crashdriver(), verify, NULL, out, sizeof(out), RUN_TIMEOUT_MS);
        if (rc != 0)
            fprintf(stderr, "\n  backup %d (lsn %lld): %s\n", i, lsn, out);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(field(out, "lsn="), lsn);
    }
    CU_ASSERT(bb_file_contains_str(log, "ACK"));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CU_ASSERT(prev > 0);
    sv_test_rmdir(dir);
}

/* ---- the map grows while its size is read ---- */

typedef struct {
    bb_server_t *s;
    bool scraper;
    volatile bool *stop;
    int failures;
} grow_client_t;

static void *grow_client(void *arg)
{
    grow_client_t *c = arg;
    char body[24032], path[64];
    memcpy(body, "{\"value\":\"", 10);
    memset(body + 10, 'x', 24000);
    memcpy(body + 24010, "\"}", 3);
    for (unsigned n = 0; !*c->stop; n++) {
        bb_resp_t r;
        bool ok;
        if (c->scraper) {
            ok = bb_req(c->s, "GET", n % 2 ? "/v1/metrics" : "/v1/health/detailed", c->s->token, NULL, NULL, &r) &&
                 r.status == 200;
        } else {
            snprintf(path, sizeof(path), "/v1/secrets/grow/k%u", n % 200);
            ok = bb_req(c->s, "PUT", path, c->s->token, "tnt_grow", body, &r) && (r.status == 200 || r.status == 201);
        }
        bb_resp_free(&r);
        if (!ok) {
            c->failures++;
            break;
        }
    }
    return NULL;
}

/* The writer grows a small map many times while the prealloc thread and
 * metrics scrapes read the map's size and last page: the resize unmaps what
 * they read (a SIGSEGV in mdb_env_info before the store serialised them). */
static void test_map_grows_while_read(void)
{
    bb_server_t s = {0};
    const char *env[] = {"SCAIVAULT_MAP_SIZE=1MiB", "RATE_LIMIT_WRITE=100000000/s", "RATE_LIMIT_ADMIN=100000000/s",
                         NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    volatile bool stop = false;
    grow_client_t c[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (grow_client_t){.s = &s, .scraper = i >= 2, .stop = &stop};
        pthread_create(&th[i], NULL, grow_client, &c[i]);
    }
    sleep(5);
    stop = true;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(c[i].failures, 0);
    }
    CU_ASSERT_EQUAL(bb_stop(&s), 0); /* it was still running, and stopped cleanly */
    bb_cleanup(&s);
}

/* Never a silent pass: says that a test needing a small filesystem did not
 * run here, and why. */
static void note_no_tmpfs(const char *why, const char *what)
{
    printf("\n  NOTE: cannot mount a small filesystem on this machine (%s);\n        %s\n", why, what);
    fflush(stdout);
}

/* ---- a real full disk ---- */

static void test_disk_full_small_fs(void)
{
    char mp[512], data[600], ballast[600], out[8192];
    make_dir(mp, sizeof(mp), "fullfs");
    snprintf(data, sizeof(data), "%s/data", mp);
    snprintf(ballast, sizeof(ballast), "%s/ballast", mp);
    const char *mount_cmd = "mount -t tmpfs -o size=8m tmpfs \"$1\"";
    /* 1: an 8 MiB tmpfs in a private mount namespace (root or a user namespace) */
    const char *probe[] = {"-rm", "sh", "-c", mount_cmd, "sh", mp, NULL};
    int rc = bb_run_exe("unshare", probe, NULL, out, sizeof(out), RUN_TIMEOUT_MS);
    bool mounted_here = false;
    char why[512];
    snprintf(why, sizeof(why), "unshare -rm + mount: exit %d %.200s", rc, out);
    if (rc == 0) {
        char script[512];
        snprintf(script, sizeof(script), "%s && exec \"$2\" fill --data-dir \"$1/data\" --ballast \"$1/ballast\"",
                 mount_cmd);
        const char *run[] = {"-rm", "sh", "-c", script, "sh", mp, bb_crashdriver(), NULL};
        rc = bb_run_exe("unshare", run, NULL, out, sizeof(out), RUN_TIMEOUT_MS);
    } else if (geteuid() == 0 && mount("tmpfs", mp, "tmpfs", 0, "size=8m") == 0) {
        /* 2: root without namespaces */
        mounted_here = true;
        const char *run[] = {"fill", "--data-dir", data, "--ballast", ballast, NULL};
        rc = bb_run_exe(bb_crashdriver(), run, NULL, out, sizeof(out), RUN_TIMEOUT_MS);
    } else {
        rc = -100;
        snprintf(why + strlen(why), sizeof(why) - strlen(why), "; mount(2) as uid %d: %s", (int)geteuid(),
                 strerror(errno));
    }
    if (rc == -100) {
        note_no_tmpfs(why, "the real disk-full test did not run; running the fault-seam version instead.");
        const char *run[] = {"fill", "--data-dir", data, "--seam", NULL};
        rc = bb_run_exe(bb_crashdriver(), run, NULL, out, sizeof(out), RUN_TIMEOUT_MS);
        CU_ASSERT_EQUAL(rc, 0);
        ASSERT_OUT_HAS(out, "mode=seam");
    } else {
        if (rc != 0)
            fprintf(stderr, "\n  fill on an 8 MiB tmpfs: exit %d: %s\n", rc, out);
        CU_ASSERT_EQUAL(rc, 0);
        ASSERT_OUT_HAS(out, "OK ");
        ASSERT_OUT_HAS(out, "mode=real-enospc");
        printf("\n  disk full on an 8 MiB tmpfs: %s", out);
    }
    if (mounted_here)
        umount2(mp, MNT_DETACH);
    sv_test_rmdir(mp);
}

/* Commands that must have the database alone refuse one that a server has
 * open; SIGHUP does not stop the server; an option without its value is an
 * error, not a default; a data file cut short is refused, not faulted on. */
static void test_in_use_and_damaged(void)
{
    char dir[512], data[600], out[8192];
    make_dir(dir, sizeof(dir), "inuse");
    snprintf(data, sizeof(data), "%s/data", dir);
    bb_server_t s;
    CU_ASSERT_FATAL(start_on(&s, dir, NULL));
    const char *mig[] = {"migrate", "--target", "2", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL(run_sv(data, mig, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "in use by another scaivault server or migrate");
    const char *server[] = {"server", NULL};
    CU_ASSERT_EQUAL(run_sv(data, server, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "in use by another scaivault server or migrate");
    kill(s.pid, SIGHUP);
    usleep(300000);
    CU_ASSERT_TRUE(bb_alive(&s));
    CU_ASSERT(bb_file_contains_str(s.log_path, "received SIGHUP: ignored"));
    /* reading beside it is fine */
    const char *verify[] = {"audit", "verify", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL(run_sv(data, verify, NULL, out, sizeof(out)), 0);
    const char *help[] = {"backup", "--help", NULL};
    CU_ASSERT_EQUAL(run_sv(data, help, NULL, out, sizeof(out)), 0);
    ASSERT_OUT_HAS(out, "usage: scaivault backup");
    const char *no_key[] = {"audit", "verify", "--data-dir", data, "--pubkey", NULL};
    CU_ASSERT_EQUAL(run_sv(data, no_key, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "no value given for '--pubkey'");
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT_EQUAL(schema_of(data), 3); /* the refused migrate changed nothing */
    const char *to0[] = {"migrate", "--target", "0", "--data-dir", data, NULL};
    CU_ASSERT_EQUAL(run_sv(data, to0, NULL, out, sizeof(out)), 2); /* 0 would be no database at all */
    CU_ASSERT_EQUAL(schema_of(data), 3);
    char path[700];
    snprintf(path, sizeof(path), "%s/data.mdb", data);
    CU_ASSERT_FATAL(truncate(path, 6000) == 0);
    CU_ASSERT_EQUAL(run_sv(data, verify, NULL, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "corrupt");
    CU_ASSERT_EQUAL(run_sv(data, server, NULL, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "corrupt");
    /* emptied beside the keys it was made with: not taken for a new store */
    CU_ASSERT_FATAL(truncate(path, 0) == 0);
    CU_ASSERT_EQUAL(run_sv(data, server, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "is empty, but");
    const char *migrate[] = {"migrate", "--data-dir", data, NULL}; /* nor by migrate */
    CU_ASSERT_EQUAL(run_sv(data, migrate, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "migrate: '");
    ASSERT_OUT_HAS(out, "is empty, but");
    struct stat sb;
    CU_ASSERT(stat(path, &sb) == 0 && sb.st_size == 0); /* left as it was */
    /* the read-only tools name the empty file rather than LMDB's "bad file descriptor" */
    CU_ASSERT_EQUAL(run_sv(data, verify, NULL, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "is empty (0 bytes)");
    char snap[720];
    snprintf(snap, sizeof(snap), "%s.bak", data);
    const char *backup[] = {"backup", "--out", snap, "--data-dir", data, NULL};
    CU_ASSERT_EQUAL(run_sv(data, backup, NULL, out, sizeof(out)), 1);
    ASSERT_OUT_HAS(out, "is empty (0 bytes)");
    CU_ASSERT_FALSE(exists(snap));
    bb_cleanup(&s);
}

/* Runs script (sh; $1 is the mount point, $2 the binary under test) on a new
 * tmpfs mounted at mp with mount options opts: in a private mount namespace
 * (unshare -rm: root, or a user namespace), else mounted here when root.
 * Returns the script's exit status, or -100 with why set when this machine
 * cannot mount a small filesystem. */
static int run_on_tmpfs(const char *mp, const char *opts, const char *script, char *out, size_t cap, char *why,
                        size_t whylen)
{
    char mount_cmd[256], probe_cmd[300];
    snprintf(mount_cmd, sizeof(mount_cmd), "mount -t tmpfs -o %s tmpfs \"$1\"", opts);
    snprintf(probe_cmd, sizeof(probe_cmd), "%s && umount \"$1\"", mount_cmd);
    const char *probe[] = {"-rm", "sh", "-c", probe_cmd, "sh", mp, NULL};
    int rc = bb_run_exe("unshare", probe, NULL, out, cap, RUN_TIMEOUT_MS);
    snprintf(why, whylen, "unshare -rm + mount: exit %d %.200s", rc, out);
    if (rc == 0) {
        char full[4096];
        snprintf(full, sizeof(full), "%s || exit 99\n%s", mount_cmd, script);
        const char *run[] = {"-rm", "sh", "-c", full, "sh", mp, bb_bin(), NULL};
        return bb_run_exe("unshare", run, NULL, out, cap, 2 * RUN_TIMEOUT_MS);
    }
    if (geteuid() == 0 && mount("tmpfs", mp, "tmpfs", 0, opts) == 0) {
        const char *run[] = {"-c", script, "sh", mp, bb_bin(), NULL};
        rc = bb_run_exe("sh", run, NULL, out, cap, 2 * RUN_TIMEOUT_MS);
        umount2(mp, MNT_DETACH);
        return rc;
    }
    snprintf(why + strlen(why), whylen - strlen(why), "; mount(2) as uid %d: %s", (int)geteuid(), strerror(errno));
    return -100;
}

/* A full disk when lock.mdb must be made (a new data dir, or one whose
 * lock.mdb was removed or left sparse): the server and the tools that read
 * beside it say "no space left" and exit 1; LMDB would otherwise fault
 * (SIGBUS) writing the file's header through its map. A lock.mdb they made
 * is removed again; once there is space, all is well. */
static void test_full_disk_lock_file(void)
{
    char mp[512], why[512], out[16384];
    make_dir(mp, sizeof(mp), "lockfull");
    static const char script[] =
        "d=\"$1/data\"; b=\"$2\"\n"
        "export SCAIVAULT_DATA_DIR=\"$d\" SCAIVAULT_LISTEN=127.0.0.1:0 LOG_FORMAT=text\n"
        "\"$b\" migrate >/dev/null 2>&1 || { echo 'setup: migrate failed'; exit 100; }\n"
        "rm \"$d/lock.mdb\"\n"
        "dd if=/dev/zero of=\"$1/ballast\" bs=4096 >/dev/null 2>&1\n"
        "left() { if test -e \"$d/lock.mdb\"; then echo \"$1: lock.mdb left\"; fi; }\n"
        "timeout 60 \"$b\" server; echo \"server: exit $?\"; left server\n"
        "\"$b\" audit verify; echo \"verify: exit $?\"; left verify\n"
        "\"$b\" backup --out \"$1/b.mdb\"; echo \"backup: exit $?\"; left backup\n"
        "SCAIVAULT_DATA_DIR=\"$1/new\" timeout 60 \"$b\" server; echo \"new: exit $?\"\n"
        "if test -e \"$1/new/lock.mdb\"; then echo 'new: lock.mdb left'; fi\n"
        ": > \"$d/lock.mdb\" && truncate -s 8192 \"$d/lock.mdb\"\n" /* sparse, as a crash leaves it */
        "\"$b\" audit verify; echo \"sparse: exit $?\"\n"
        "rm \"$1/ballast\"\n"
        "\"$b\" audit verify >/dev/null 2>&1; echo \"freed: exit $?\"\n";
    int rc = run_on_tmpfs(mp, "size=4m", script, out, sizeof(out), why, sizeof(why));
    if (rc == -100) {
        note_no_tmpfs(why, "the full-disk lock.mdb test did not run.");
        sv_test_rmdir(mp);
        return;
    }
    if (rc != 0)
        fprintf(stderr, "\n  script: exit %d:\n%s\n", rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    ASSERT_OUT_HAS(out, "server: exit 1");
    ASSERT_OUT_HAS(out, "verify: exit 1");
    ASSERT_OUT_HAS(out, "backup: exit 1");
    ASSERT_OUT_HAS(out, "new: exit 1");
    ASSERT_OUT_HAS(out, "sparse: exit 1");
    ASSERT_OUT_HAS(out, "freed: exit 0");
    char want[700];
    snprintf(want, sizeof(want), "SCAIVAULT_DATA_DIR: cannot open the database in '%s/data': no space left", mp);
    ASSERT_OUT_HAS(out, want);
    snprintf(want, sizeof(want), "audit verify: cannot open the database in '%s/data': no space left", mp);
    ASSERT_OUT_HAS(out, want);
    snprintf(want, sizeof(want), "backup: cannot open the database in '%s/data': no space left", mp);
    ASSERT_OUT_HAS(out, want);
    CU_ASSERT_PTR_NULL(strstr(out, "lock.mdb left"));
    CU_ASSERT_PTR_NULL(strstr(out, "AddressSanitizer"));
    sv_test_rmdir(mp);
}

/* Start-up errors name their cause: a data dir that is a file, a read-only
 * filesystem, a directory the server may not enter, a map size beyond the
 * address space (named as SCAIVAULT_MAP_SIZE). Each is a bad setting: exit 2. */
static void test_startup_errors_name_the_cause(void)
{
    char dir[512], path[600], out[8192];
    make_dir(dir, sizeof(dir), "starterr");
    const char *server[] = {"server", NULL};
    snprintf(path, sizeof(path), "%s/afile", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_EQUAL(run_sv(path, server, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "cannot open the database in");
    ASSERT_OUT_HAS(out, "afile': not a directory");

    snprintf(path, sizeof(path), "%s/data", dir);
    const char *huge[] = {"SCAIVAULT_MAP_SIZE=1000000GiB", NULL};
    CU_ASSERT_EQUAL(run_sv(path, server, huge, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "SCAIVAULT_MAP_SIZE: a map of 1073741824000000 bytes does not fit");

    /* a data directory or key file in a directory that does not exist: a setting to fix */
    char missing[700];
    snprintf(missing, sizeof(missing), "%s/no/such/data", dir);
    CU_ASSERT_EQUAL(run_sv(missing, server, NULL, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "no such file or directory");
    const char *no_dir_keys[][2] = {{"KMS_LOCAL_KEY_FILE=/nonexistent-sv-dir/master.key", "KMS_LOCAL_KEY_FILE"},
                                    {"AUDIT_SIGNING_KEY_FILE=/nonexistent-sv-dir/a.key", "AUDIT_SIGNING_KEY_FILE"}};
    for (size_t i = 0; i < SV_ARRAY_LEN(no_dir_keys); i++) {
        snprintf(missing, sizeof(missing), "%s/data%zu", dir, i);
        const char *key_env[] = {no_dir_keys[i][0], NULL};
        CU_ASSERT_EQUAL(run_sv(missing, server, key_env, out, sizeof(out)), 2);
        ASSERT_OUT_HAS(out, no_dir_keys[i][1]);
    }

    /* a directory the server's user may not enter (as root: run it as nobody) */
    snprintf(path, sizeof(path), "%s/locked", dir);
    CU_ASSERT_FATAL(mkdir(path, 0500) == 0);
    snprintf(path, sizeof(path), "SCAIVAULT_DATA_DIR=%s/locked/data", dir);
    const char *env[] = {path, "SCAIVAULT_LISTEN=127.0.0.1:0", NULL};
    if (geteuid() == 0) {
        const char *as_nobody[] = {"--reuid=65534", "--regid=65534", "--clear-groups", bb_bin(), "server", NULL};
        CU_ASSERT_EQUAL(bb_run_exe("setpriv", as_nobody, env, out, sizeof(out), RUN_TIMEOUT_MS), 2);
    } else {
        CU_ASSERT_EQUAL(bb_run_exe(bb_bin(), server, env, out, sizeof(out), RUN_TIMEOUT_MS), 2);
    }
    ASSERT_OUT_HAS(out, "locked/data': permission denied");

    /* a read-only filesystem: a new data dir, and one with data (which the
     * tools that only read may still open) */
    char mp[600], why[512];
    snprintf(mp, sizeof(mp), "%s/ro", dir);
    CU_ASSERT_FATAL(mkdir(mp, 0700) == 0);
    static const char script[] = "export SCAIVAULT_LISTEN=127.0.0.1:0\n"
                                 "SCAIVAULT_DATA_DIR=\"$1/data\" \"$2\" migrate >/dev/null 2>&1 || exit 100\n"
                                 "mount -o remount,ro \"$1\" || exit 101\n"
                                 "SCAIVAULT_DATA_DIR=\"$1/data\" \"$2\" server; echo \"existing: exit $?\"\n"
                                 "SCAIVAULT_DATA_DIR=\"$1/new\" \"$2\" server; echo \"new: exit $?\"\n"
                                 "SCAIVAULT_DATA_DIR=\"$1/data\" \"$2\" audit verify; echo \"verify: exit $?\"\n";
    int rc = run_on_tmpfs(mp, "size=4m", script, out, sizeof(out), why, sizeof(why));
    if (rc == -100) {
        note_no_tmpfs(why, "the read-only filesystem case did not run.");
    } else {
        CU_ASSERT_EQUAL(rc, 0);
        ASSERT_OUT_HAS(out, "existing: exit 2");
        ASSERT_OUT_HAS(out, "new: exit 2");
        ASSERT_OUT_HAS(out, "verify: exit 0");
        char want[700];
        snprintf(want, sizeof(want), "cannot open the database in '%s/data': read-only file system", mp);
        ASSERT_OUT_HAS(out, want);
        snprintf(want, sizeof(want), "cannot open the database in '%s/new': read-only file system", mp);
        ASSERT_OUT_HAS(out, want);
    }
    snprintf(path, sizeof(path), "%s/locked", dir);
    chmod(path, 0700);
    sv_test_rmdir(dir);
}

/* ---- the KMS key the data needs ---- */

/* The id after "created a new KMS key " in the log at path, or "". */
static void created_key_id(const char *path, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "created a new KMS key ");
        if (p != NULL) {
            p += strlen("created a new KMS key ");
            snprintf(out, cap, "%.*s", (int)strcspn(p, " \""), p);
        }
    }
    fclose(f);
}

/* A KMS key file that went missing (a lost file, a secrets volume that is not
 * mounted) or was replaced, while the database holds data keys wrapped by the
 * real key: the server refuses to start (exit 2), naming the file and both
 * keys, rather than answer 500 for every tenant and acknowledge new tenants'
 * writes under a key that is lost when the real one comes back. It leaves no
 * new key file behind, and starts once the real key is back. */
static void test_kms_key_must_match_the_data(void)
{
    char dir[512], keydir[600], key[700], saved[700], envk[800], out[8192];
    make_dir(dir, sizeof(dir), "kmsmatch");
    snprintf(keydir, sizeof(keydir), "%s/keys", dir); /* like a secrets volume */
    CU_ASSERT_FATAL(mkdir(keydir, 0700) == 0);
    snprintf(key, sizeof(key), "%s/master.key", keydir);
    snprintf(saved, sizeof(saved), "%s/master.key.backup", dir);
    snprintf(envk, sizeof(envk), "KMS_LOCAL_KEY_FILE=%s", key);
    const char *env[] = {envk, NULL};
    bb_server_t s;
    CU_ASSERT_FATAL(start_on(&s, dir, env));
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/app/x", s.token, "tnt_a", "{\"value\":\"hello\"}", &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    char id[SV_KMS_KEY_ID_MAX];
    created_key_id(s.log_path, id, sizeof(id)); /* its making was logged */
    CU_ASSERT_FATAL(strncmp(id, "local:", 6) == 0);

    /* missing */
    CU_ASSERT_FATAL(rename(key, saved) == 0);
    const char *server[] = {"server", NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, server, env, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, "KMS_LOCAL_KEY_FILE: ");
    ASSERT_OUT_HAS(out, key);
    ASSERT_OUT_HAS(out, "is missing");
    ASSERT_OUT_HAS(out, id);
    ASSERT_OUT_HAS(out, "was removed");
    CU_ASSERT_FALSE(exists(key)); /* nothing left where the real key belongs */

    /* replaced by another key */
    int fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, "ffffffffffffffffffffffffffffffff", 32) == 32);
    close(fd);
    CU_ASSERT_EQUAL(run_sv(s.data_dir, server, env, out, sizeof(out)), 2);
    ASSERT_OUT_HAS(out, key);
    ASSERT_OUT_HAS(out, "holds KMS key local:");
    ASSERT_OUT_HAS(out, id);
    CU_ASSERT(exists(key)); /* not the server's to remove */

    /* the real key back: it starts and the data reads back */
    CU_ASSERT_FATAL(rename(saved, key) == 0);
    CU_ASSERT_FATAL(bb_start(&s, env));
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/secrets/app/x", s.token, "tnt_a", NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    const char *v = bb_json_str(&r, "value");
    CU_ASSERT(v != NULL && strcmp(v, "hello") == 0);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

/* ---- the scheduler at start ---- */

static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* A restart finds the stored timers of kinds the server's parts register
 * (audit_checkpoint) without a warning; a timer of a kind nothing registers
 * is named once per start. */
static void test_restart_no_handler_warning(void)
{
    char dir[512];
    make_dir(dir, sizeof(dir), "schedstart");
    bb_server_t s;
    CU_ASSERT_FATAL(start_on(&s, dir, NULL)); /* sets the audit_checkpoint timer */
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    sv_store_t *st;
    sv_writer_t *w;
    sv_scheduler_t *sched;
    sv_store_opts_t o = {.dir = s.data_dir};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&st, &o), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_scheduler_new(st, w, &sched), SV_OK);
    CU_ASSERT_EQUAL(sv_scheduler_at(sched, "no_such_kind", "", sv_scheduler_now_ms() - 1000), SV_OK);
    sv_scheduler_free(sched);
    sv_writer_stop(w);
    sv_store_close(st);
    const int starts = 5;
    for (int i = 0; i < starts; i++) {
        CU_ASSERT_FATAL(bb_start(&s, NULL));
        /* the thread scans the schedule once every part is in: wait for the
         * line about the unknown kind of this start */
        for (int t = 0; t < 200 && count_in_file(s.log_path, "kind 'no_such_kind' wait") < i + 1; t++)
            usleep(50000);
        CU_ASSERT_EQUAL(bb_stop(&s), 0);
    }
    CU_ASSERT_EQUAL(count_in_file(s.log_path, "timers of kind 'no_such_kind' wait: no handler is registered"), starts);
    CU_ASSERT_EQUAL(count_in_file(s.log_path, "no handler is registered"), starts);
    bb_cleanup(&s);
}

/* A reader killed while it holds a snapshot (a backup or an audit verify
 * killed with SIGKILL) leaves its slot in lock.mdb; the next opener, and the
 * server's writer, clear it, so that the pages freed since can be reused. */
static void test_stale_reader_cleared(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "PUT", "/v1/secrets/a/b", s.token, "tnt_a", "{\"value\":\"v\"}", &r));
    BB_ASSERT_STATUS(&r, 201);
    bb_resp_free(&r);
    int ready[2];
    CU_ASSERT_FATAL(pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 64) != 0 ||
            mdb_env_open(env, s.data_dir, MDB_RDONLY, 0600) != 0 || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
            _exit(1);
        if (write(ready[1], "R", 1) != 1)
            _exit(1);
        pause(); /* killed holding the snapshot */
        _exit(0);
    }
    close(ready[1]);
    char c = 0;
    CU_ASSERT_FATAL(read(ready[0], &c, 1) == 1 && c == 'R');
    close(ready[0]);
    /* a reader beside it (a nightly backup, say) does not keep a server from starting */
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT(bb_start(&s, NULL));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char out[8192];
    const char *verify[] = {"audit", "verify", "--data-dir", s.data_dir, NULL};
    CU_ASSERT_EQUAL(run_sv(s.data_dir, verify, NULL, out, sizeof(out)), 0);
    ASSERT_OUT_HAS(out, "cleared 1 reader slot(s) of processes that ended without closing");
    /* and it is gone: the next opener finds nothing to clear */
    CU_ASSERT_EQUAL(run_sv(s.data_dir, verify, NULL, out, sizeof(out)), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "cleared"));
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

void sv_bb_suite_storage(void)
{
    SV_SUITE("blackbox/storage", {"newer_schema_refused", test_newer_schema_refused},
             {"older_schema", test_older_schema}, {"failed_step_keeps_old_version", test_failed_step_keeps_old_version},
             {"backup_and_restore_cli", test_backup_and_restore_cli},
             {"backup_during_writes_is_consistent", test_backup_during_writes_is_consistent},
             {"map_grows_while_read", test_map_grows_while_read},
             {"disk_full_small_fs", test_disk_full_small_fs}, {"in_use_and_damaged", test_in_use_and_damaged},
             {"full_disk_lock_file", test_full_disk_lock_file},
             {"startup_errors_name_the_cause", test_startup_errors_name_the_cause},
             {"kms_key_must_match_the_data", test_kms_key_must_match_the_data},
             {"restart_no_handler_warning", test_restart_no_handler_warning},
             {"stale_reader_cleared", test_stale_reader_cleared});
}
