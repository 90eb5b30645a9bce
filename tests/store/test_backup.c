/* tests/store/test_backup.c - backups and restores (store/backup.c): a
 * consistent snapshot while the writer runs, verification of foreign and
 * damaged files, the non-empty-directory rule, and the fault seams. */
#include "sv_autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backup.h"
#include "store/fault.h"
#include "store/migrate.h"
#include "tests/unit.h"
#include "wal/writer.h"

/* ---- helpers ---- */

static char base[512];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", base, name);
}

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static sv_store_t *open_store(const char *dir)
{
    sv_store_t *st = NULL;
    sv_store_opts_t o = {.dir = dir, .map_size = 1 << 20, .max_readers = 32, .no_sync = true};
    CU_ASSERT_EQUAL(sv_store_open(&st, &o), SV_OK);
    if (st != NULL)
        CU_ASSERT_EQUAL(sv_migrate_to(st, SV_SCHEMA_VERSION, NULL, NULL), SV_OK);
    return st;
}

/* A unit writes two keys u/<n>/a and u/<n>/b with 1 KB values. */
static sv_err_t apply_pair(sv_wtxn_t *tx, sv_unit_t *u)
{
    static const uint8_t val[1024];
    unsigned n = *(unsigned *)u->arg;
    char k[32];
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof(k), "u/%08u/%c", n, 'a' + i);
        sv_err_t err = sv_wtxn_put(tx, SV_DB_SECRETS, SV_BYTES(k, strlen(k)), SV_BYTES(val, sizeof(val)));
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}

typedef struct {
    sv_writer_t *w;
    atomic_bool stop;
    unsigned written;
} writer_load_t;

static void *write_pairs(void *arg)
{
    writer_load_t *l = arg;
    while (!atomic_load(&l->stop)) {
        unsigned n = l->written;
        sv_unit_t u = {.apply = apply_pair, .arg = &n};
        if (sv_writer_run(l->w, &u) != SV_OK)
            break;
        l->written++;
    }
    return NULL;
}

static void suite_dir(void)
{
    snprintf(base, sizeof(base), "%s", sv_test_tmpdir("backup"));
}

/* A sidecar that names the copy's size (sv_backup_sidecar_fn). */
static sv_err_t sidecar(const char *copy_path, const sv_backup_info_t *info, void *arg, char **text, size_t *len)
{
    (void)copy_path;
    (void)arg;
    *text = malloc(32);
    if (*text == NULL)
        return SV_ENOMEM;
    *len = (size_t)snprintf(*text, 32, "{\"bytes\":%llu}\n", (unsigned long long)info->bytes);
    return SV_OK;
}

/* ---- tests ---- */

static void test_backup_while_writing_is_consistent(void)
{
    suite_dir();
    char src[600], out[600];
    path_in(src, sizeof(src), "src");
    path_in(out, sizeof(out), "snap.mdb");
    sv_store_t *st = open_store(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    writer_load_t load = {.w = w};
    for (unsigned i = 0; i < 300; i++) { /* something to copy before the race starts */
        sv_unit_t u = {.apply = apply_pair, .arg = &i};
        CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    }
    load.written = 300;
    pthread_t th;
    pthread_create(&th, NULL, write_pairs, &load);
    sv_backup_info_t info;
    sv_err_t err = sv_store_backup(st, out, &info, sidecar, NULL); /* the writer keeps going */
    atomic_store(&load.stop, true);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL_FATAL(err, SV_OK);
    CU_ASSERT(info.lsn >= 600);
    CU_ASSERT_EQUAL(info.lsn % 2, 0); /* whole units only */
    CU_ASSERT_EQUAL(info.schema_version, SV_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(strlen(info.instance_id), 32);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(out, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(info.bytes, (uint64_t)sb.st_size);
    CU_ASSERT_EQUAL(count_dir(base), 3); /* src, the backup and its sidecar: no temporary file left */

    /* the snapshot holds exactly the units up to its LSN, each whole */
    sv_store_t *bst;
    sv_store_opts_t bo = {.dir = out, .single_file = true};
    CU_ASSERT_EQUAL_FATAL(sv_store_open(&bst, &bo), SV_OK);
    sv_store_reader_t *r;
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(bst, &r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(r, &tx), SV_OK);
    uint64_t last = 0;
    CU_ASSERT_EQUAL(sv_wal_last_lsn(tx, &last), SV_OK);
    CU_ASSERT_EQUAL(last, info.lsn);
    sv_iter_t it;
    sv_bytes_t k;
    uint64_t keys = 0;
    CU_ASSERT_EQUAL(sv_iter_open(tx, SV_DB_SECRETS, SV_BYTES_STR("u/"), (sv_bytes_t){0}, false, &it), SV_OK);
    while (sv_iter_next(&it, &k, NULL) == SV_OK)
        keys++;
    sv_iter_close(&it);
    CU_ASSERT_EQUAL(keys, info.lsn);
    sv_store_read_end(r);
    sv_store_reader_free(r);
    sv_store_close(bst);

    /* the source went on past the snapshot; the backup is smaller (compacted) or close */
    sv_writer_stats_t s;
    sv_writer_stats(w, &s);
    CU_ASSERT(s.last_lsn >= info.lsn);
    sv_writer_stop(w);
    sv_store_close(st);
    sv_test_rmdir(base);
}

static void test_restore_rules(void)
{
    suite_dir();
    char src[600], out[600], dst[600], file[700];
    path_in(src, sizeof(src), "src");
    path_in(out, sizeof(out), "snap.mdb");
    path_in(dst, sizeof(dst), "dst");
    sv_store_t *st = open_store(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    for (unsigned i = 0; i < 10; i++) {
        sv_unit_t u = {.apply = apply_pair, .arg = &i};
        CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    }
    sv_backup_info_t info, rinfo;
    CU_ASSERT_EQUAL_FATAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_OK);
    CU_ASSERT_EQUAL(info.lsn, 20);
    sv_writer_stop(w);
    sv_store_close(st);

    /* into a new directory */
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &rinfo), SV_OK);
    CU_ASSERT_EQUAL(rinfo.lsn, 20);
    CU_ASSERT_STRING_EQUAL(rinfo.instance_id, info.instance_id);
    /* the restored environment opens, and its writer continues after the backup's LSN */
    st = open_store(dst);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    unsigned n = 99;
    sv_unit_t u = {.apply = apply_pair, .arg = &n};
    CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    CU_ASSERT_EQUAL(u.first_lsn, 21);
    sv_writer_stop(w);
    sv_store_close(st);

    /* a directory that holds anything is refused without force, and stays as it was */
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &rinfo), SV_EEXIST);
    char other[600];
    path_in(other, sizeof(other), "other");
    mkdir(other, 0700);
    snprintf(file, sizeof(file), "%s/master.key", other);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    close(fd);
    CU_ASSERT_EQUAL(sv_store_restore(out, other, false, &rinfo), SV_EEXIST);
    CU_ASSERT_EQUAL(count_dir(other), 1);
    /* with force: the database is replaced, other files stay */
    CU_ASSERT_EQUAL(sv_store_restore(out, other, true, &rinfo), SV_OK);
    CU_ASSERT_EQUAL(access(file, F_OK), 0);
    CU_ASSERT_EQUAL(count_dir(other), 3); /* master.key, data.mdb and server.lock */
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, true, &rinfo), SV_OK);
    st = open_store(dst);
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    sv_unit_t u2 = {.apply = apply_pair, .arg = &n};
    CU_ASSERT_EQUAL(sv_writer_run(w, &u2), SV_OK);
    CU_ASSERT_EQUAL(u2.first_lsn, 21); /* the write after the first restore is gone */
    sv_writer_stop(w);
    sv_store_close(st);
    sv_test_rmdir(base);
}

static void test_verify_refuses_bad_files(void)
{
    suite_dir();
    char path[600], dst[600], src[600], out[600];
    path_in(dst, sizeof(dst), "dst");
    sv_backup_info_t info;
    /* missing, empty, and foreign files */
    path_in(path, sizeof(path), "missing");
    CU_ASSERT_EQUAL(sv_store_backup_verify(path, &info), SV_ENOTFOUND);
    path_in(path, sizeof(path), "empty");
    close(open(path, O_CREAT | O_WRONLY, 0600));
    CU_ASSERT_EQUAL(sv_store_backup_verify(path, &info), SV_ECORRUPT);
    path_in(path, sizeof(path), "text");
    CU_ASSERT_EQUAL(sv_store_write_file_atomic(path, "{\"lsn\": 1}\n", 11, 0600), SV_OK);
    CU_ASSERT_EQUAL(sv_store_backup_verify(path, &info), SV_ECORRUPT);
    CU_ASSERT_EQUAL(sv_store_restore(path, dst, false, &info), SV_ECORRUPT);
    CU_ASSERT_EQUAL(count_dir(dst), -1);                               /* not even created */
    CU_ASSERT_EQUAL(sv_store_backup_verify(base, &info), SV_ECORRUPT); /* a directory */

    /* a newer schema than the binary's: backed up as is, refused by restore */
    path_in(src, sizeof(src), "src");
    path_in(out, sizeof(out), "newer.mdb");
    sv_store_t *st = open_store(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT(sv_test_set_schema(st, 99));
    CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_OK);
    CU_ASSERT_EQUAL(info.schema_version, 99);
    sv_store_close(st);
    CU_ASSERT_EQUAL(sv_store_backup_verify(out, &info), SV_ESCHEMA);
    CU_ASSERT_EQUAL(info.schema_version, 99);
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &info), SV_ESCHEMA);
    CU_ASSERT_EQUAL(count_dir(dst), -1);

    /* a damaged copy: truncated (an interrupted copy) */
    path_in(src, sizeof(src), "src2");
    path_in(out, sizeof(out), "damaged.mdb");
    st = open_store(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(sv_writer_start(st, NULL, &w), SV_OK);
    for (unsigned i = 0; i < 50; i++) {
        sv_unit_t u = {.apply = apply_pair, .arg = &i};
        CU_ASSERT_EQUAL(sv_writer_run(w, &u), SV_OK);
    }
    sv_writer_stop(w);
    CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_OK);
    sv_store_close(st);
    struct stat sb;
    stat(out, &sb);
    CU_ASSERT_EQUAL(truncate(out, sb.st_size / 2), 0);
    CU_ASSERT_EQUAL(sv_store_backup_verify(out, &info), SV_ECORRUPT);
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &info), SV_ECORRUPT);
    CU_ASSERT_EQUAL(count_dir(dst), -1);
    sv_test_rmdir(base);
}

static void test_faults_leave_nothing_behind(void)
{
    suite_dir();
    char src[600], out[600], dst[600];
    path_in(src, sizeof(src), "src");
    path_in(out, sizeof(out), "snap.mdb");
    path_in(dst, sizeof(dst), "dst");
    sv_store_t *st = open_store(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    sv_backup_info_t info;
    /* the fsync of the copy, the rename, the fsync of the directory */
    sv_fault_arm(SV_FAULT_FSYNC, 1, 1, EIO);
    CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_EIO);
    CU_ASSERT_EQUAL(count_dir(base), 1);
    sv_fault_arm(SV_FAULT_RENAME, 1, 1, ENOSPC);
    CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_ENOSPC);
    CU_ASSERT_EQUAL(count_dir(base), 1);
    /* a failed backup leaves an older backup and its sidecar as they were: the copy's fsync, the
     * sidecar's fsync, the copy's rename */
    CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_OK);
    char side[620];
    snprintf(side, sizeof(side), "%s.json", out);
    struct stat before, side_before, after;
    stat(out, &before);
    stat(side, &side_before);
    const struct {
        sv_fault_op_t op;
        unsigned nth;
    } fails[] = {{SV_FAULT_FSYNC, 1}, {SV_FAULT_FSYNC, 2}, {SV_FAULT_RENAME, 1}};
    for (size_t i = 0; i < SV_ARRAY_LEN(fails); i++) {
        sv_fault_arm(fails[i].op, fails[i].nth, 1, EIO);
        CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_EIO);
        CU_ASSERT_FALSE(info.installed);
        CU_ASSERT_EQUAL(stat(out, &after), 0);
        CU_ASSERT_EQUAL(before.st_ino, after.st_ino);
        CU_ASSERT_EQUAL(stat(side, &after), 0);
        CU_ASSERT_EQUAL(side_before.st_ino, after.st_ino);
        CU_ASSERT_EQUAL(count_dir(base), 3);
    }
    /* a directory's fsync after a rename: the new files are in place, and the error says so */
    for (unsigned nth = 3; nth <= 4; nth++) {
        stat(out, &before);
        stat(side, &side_before);
        sv_fault_arm(SV_FAULT_FSYNC, nth, 1, EIO);
        CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_EIO);
        CU_ASSERT(info.installed && info.sidecar_installed);
        CU_ASSERT(stat(out, &after) == 0 && after.st_ino != before.st_ino);
        CU_ASSERT(stat(side, &after) == 0 && after.st_ino != side_before.st_ino);
        CU_ASSERT_EQUAL(count_dir(base), 3);
    }
    /* only the sidecar's own rename comes after the copy is in place: the older sidecar goes */
    stat(out, &before);
    sv_fault_arm(SV_FAULT_RENAME, 2, 1, EIO);
    CU_ASSERT_EQUAL(sv_store_backup(st, out, &info, sidecar, NULL), SV_EIO);
    CU_ASSERT(info.installed);
    CU_ASSERT_FALSE(info.sidecar_installed);
    CU_ASSERT_EQUAL(stat(out, &after), 0);
    CU_ASSERT_NOT_EQUAL(before.st_ino, after.st_ino);
    CU_ASSERT_NOT_EQUAL(stat(side, &after), 0);
    CU_ASSERT_EQUAL(count_dir(base), 2);
    sv_store_close(st);

    /* restore: a write that fails with ENOSPC, an fsync with EIO: no data.mdb, no temp (the
     * directory and its server.lock, which the restore held, stay) */
    sv_fault_arm(SV_FAULT_WRITE, 1, 1, ENOSPC);
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &info), SV_ENOSPC);
    CU_ASSERT_EQUAL(count_dir(dst), 1);
    sv_fault_arm(SV_FAULT_FSYNC, 1, 1, EIO);
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &info), SV_EIO);
    CU_ASSERT_EQUAL(count_dir(dst), 1);
    sv_fault_reset();
    CU_ASSERT_EQUAL(sv_store_restore(out, dst, false, &info), SV_OK);
    CU_ASSERT_EQUAL(count_dir(dst), 2);
    sv_test_rmdir(base);
}

void sv_test_suite_backup(void)
{
    SV_SUITE("store/backup", {"backup_while_writing_is_consistent", test_backup_while_writing_is_consistent},
             {"restore_rules", test_restore_rules}, {"verify_refuses_bad_files", test_verify_refuses_bad_files},
             {"faults_leave_nothing_behind", test_faults_leave_nothing_behind});
}
