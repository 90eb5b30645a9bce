/*
 * fault.h - fault-injection seams (after SQLite's test_syscall.c).
 *
 * Every system call whose failure ScaiVault must survive goes through this
 * table: the durable LMDB commit, write, fsync, rename and malloc. Tests (and
 * the server when started with SCAIVAULT_TEST_FAULTS=1) arm a seam so that the
 * Nth call from now, and the `count - 1` calls after it, fail with a chosen
 * errno. Disarmed, each seam costs one relaxed atomic load.
 */
#ifndef SV_STORE_FAULT_H
#define SV_STORE_FAULT_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum {
    SV_FAULT_COMMIT = 0, /* mdb_txn_commit of the writer's batch */
    SV_FAULT_WRITE,
    SV_FAULT_FSYNC,
    SV_FAULT_RENAME,
    SV_FAULT_MALLOC,
    SV_FAULT_AUDIT, /* appending an audit entry (checked by the audit module) */
    SV_FAULT_KMS,   /* a call to the key provider: it cannot be reached (src/kms.c) */
    SV_FAULT_STALL, /* the writer's batch commit succeeds SV_FAULT_STALL_MS late (a slow disk); errno unused */
    SV_FAULT_COUNT_
} sv_fault_op_t;

/** How much later a stalled commit goes through. */
#define SV_FAULT_STALL_MS 300

/** Arms op: calls number nth, nth+1, ... nth+count-1 from now (1-based) fail with
 * error err (an errno value, e.g. ENOSPC or EIO). count 0 means "until disarmed". */
void sv_fault_arm(sv_fault_op_t op, unsigned nth, unsigned count, int err);
/** Disarms op. */
void sv_fault_disarm(sv_fault_op_t op);
/** Disarms every seam. */
void sv_fault_reset(void);
/** Parses "op" names ("commit", "write", "fsync", "rename", "malloc", "audit", "kms", "stall").
 * Returns -1 when unknown. */
int sv_fault_op_from_name(const char *name);
/** Parses errno names "ENOSPC", "EIO", "EDQUOT", "ENOMEM". Returns 0 when unknown. */
int sv_fault_errno_from_name(const char *name);

/** Arms seams from a text spec, for tests that drive the real binary
 * (SCAIVAULT_TEST_FAULT): comma-separated items "op:nth[:count[:ERRNO]]",
 * e.g. "commit:2:1:EIO,fsync:1". count defaults to 1 and ERRNO to EIO.
 * With arm false it only checks the spec. Returns 0, or -1 on a malformed
 * spec (nothing is armed then). */
int sv_fault_arm_spec(const char *spec, bool arm);

/** Returns the errno this call of op must fail with, or 0 when it goes through.
 * Counts the call. Thread-safe. */
int sv_fault_check(sv_fault_op_t op);
/** The errno the next call of op would fail with, or 0; counts nothing (for
 * health checks that report what the next real call would meet). */
int sv_fault_peek(sv_fault_op_t op);

/* The seams. Each behaves like the call it wraps, failing when armed. */
int sv_sys_txn_commit(MDB_txn *txn);
ssize_t sv_sys_write(int fd, const void *buf, size_t len);
int sv_sys_fsync(int fd);
/** fsyncs (sv_sys_fsync) the directory that holds path, so that a new name
 * in it (a created or renamed file) is durable. 0, or -1 with errno. */
int sv_sys_fsync_parent(const char *path);
/** The commit seams (SV_FAULT_STALL, SV_FAULT_COMMIT) for a batch that
 * commits outside LMDB (the audit journal, src/audit_journal.h), checked as
 * sv_sys_txn_commit checks them, so that a test's "the Nth commit fails"
 * counts it like an LMDB commit. Returns the errno that commit must fail
 * with, or 0. */
int sv_sys_commit_seams(void);
int sv_sys_rename(const char *from, const char *to);
void *sv_sys_malloc(size_t len);

#endif
