/*
 * backup.h - consistent, compacted copies of the environment (backups), their
 * verification, and installing one into a data directory (restore).
 *
 * A backup is one LMDB data file: a compacted copy of one read snapshot, taken
 * while the server keeps writing (LMDB readers never block the writer). Its
 * LSN is the applied_lsn stored in the snapshot's own meta database, so the
 * change log after that LSN brings a copy up to date. Every file is written to
 * a temporary name in the target directory, fsynced and renamed into place
 * through the fault seams (store/fault.h): a failure leaves the previous file,
 * never a half-written one.
 *
 * The KMS key file (master.key) is not part of the environment and therefore
 * not in a backup: it must be backed up separately.
 */
#ifndef SV_STORE_BACKUP_H
#define SV_STORE_BACKUP_H

#include <sys/types.h>

#include "store/env.h"

typedef struct {
    uint64_t lsn;            /* applied_lsn of the snapshot (0: nothing written yet) */
    uint32_t schema_version; /* schema version of the snapshot */
    char instance_id[33];    /* hex; "" when the snapshot has none */
    uint64_t bytes;          /* size of the backup file */
    uint64_t records;        /* entries in all named databases (verification walk) */
    bool source_damaged;     /* backup: SV_ECORRUPT came from walking the source */
    bool installed;          /* backup: out_path was replaced (also when a later step failed) */
    bool sidecar_installed;  /* backup: out_path.json was replaced too */
} sv_backup_info_t;

/** Makes the sidecar of a backup from the finished copy at copy_path (its
 * final contents, under a temporary name): *text (malloc'd; the caller
 * frees it) of *len bytes. */
typedef sv_err_t (*sv_backup_sidecar_fn)(const char *copy_path, const sv_backup_info_t *info, void *arg, char **text,
                                         size_t *len);

/** Writes a compacted copy of one snapshot of st to out_path (mode 0600) and
 * the sidecar that sidecar() makes of it to out_path.json, and fills *info
 * from the copy. st may be opened read-only while another process (the
 * server) writes. The source is walked with LMDB's checks before it is
 * copied: on a damaged page the process exits (sv_store_on_damage), leaving
 * nothing behind. Both files are written and fsynced under temporary names
 * before either is renamed, so that a failure leaves an older backup of the
 * same name and its sidecar as they were. A failure after out_path was
 * renamed (info->installed) is one of the sidecar's rename (the older sidecar
 * is then removed, since it does not describe the new file) or of a
 * directory's fsync (info->sidecar_installed says whether the new sidecar is
 * in place).
 * Errors: SV_EIO, SV_ENOSPC, SV_EPERM (the target directory), SV_ECORRUPT
 * (info->source_damaged: the source does not walk; else the copy does not
 * verify), SV_ENOMEM, and those of sidecar(). */
sv_err_t sv_store_backup(sv_store_t *st, const char *out_path, sv_backup_info_t *info, sv_backup_sidecar_fn sidecar,
                         void *arg);

/** Checks that path is an LMDB data file holding a ScaiVault schema that this
 * binary accepts (1..SV_SCHEMA_VERSION), walks every named database and checks
 * every change record's checksum. Fills *info (also on SV_ESCHEMA, so that
 * the caller can name the version). Errors: SV_ENOTFOUND (no such file),
 * SV_ECORRUPT (not an LMDB file, or damaged), SV_ESCHEMA (no schema, or newer
 * than the binary), SV_EIO. */
sv_err_t sv_store_backup_verify(const char *path, sv_backup_info_t *info);

/** Verifies in_path (as sv_store_backup_verify) and installs it as the data
 * file of dir (created 0700 if missing), atomically. A dir that holds
 * anything is refused unless force; with force, only the LMDB files are
 * replaced (master.key and other files stay). Errors: those of the verify,
 * SV_EEXIST (dir not empty, no force), SV_EAGAIN (a process has dir's
 * database open: stop the server first), SV_EIO, SV_ENOSPC, SV_EPERM. */
sv_err_t sv_store_restore(const char *in_path, const char *dir, bool force, sv_backup_info_t *info);

/** Takes LMDB's exclusive lock byte of dir/lock.mdb, which every process
 * that has the environment open holds shared: SV_EAGAIN means the database
 * is in use (a running server). On SV_OK *lock_fd holds it (-1 when there is
 * no lock.mdb yet); close(*lock_fd) drops it, and must come before this
 * process opens the environment itself (closing any descriptor of the file
 * drops all of a process's locks on it). */
sv_err_t sv_store_lock_dir(const char *dir, int *lock_fd);

/** Installs handlers of SIGINT, SIGTERM and SIGHUP that remove the temporary
 * files of a backup or restore in progress, then end the process as the
 * signal would; an exit on a damaged page removes them too (offline commands
 * only). */
void sv_store_temps_on_signals(void);

/** Claims dir (server, migrate, restore): an exclusive flock on
 * dir/server.lock (created 0600, never removed: a lock file must outlive its
 * holders), held until *lock_fd is closed (the server and migrate keep it for
 * the life of the process). SV_EAGAIN: another holds it. Other errors: the
 * directory cannot be used. */
sv_err_t sv_store_claim_dir(const char *dir, int *lock_fd);

/** Writes len bytes to path atomically (temporary file, fsync, rename, fsync
 * of the directory), through the fault seams, with the given mode. Errors:
 * SV_EIO, SV_ENOSPC, SV_EPERM. On error path is untouched. */
sv_err_t sv_store_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
