/*
 * fault.c - the fault-injection seams of fault.h.
 *
 * Each seam holds an armed flag, a countdown to the first failing call, the
 * number of calls that fail and the errno to fail with, all atomics so that the
 * writer thread, the workers and a test thread can share them without a lock.
 * Any thread may call any function here.
 */
#include "sv_autoconf.h"

#include "store/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    atomic_int armed;
    atomic_long countdown; /* calls left before the first failure */
    atomic_long failures;  /* failing calls left; < 0: unlimited */
    atomic_int err;
} fault_seam_t;

static fault_seam_t seams[SV_FAULT_COUNT_];

void sv_fault_arm(sv_fault_op_t op, unsigned nth, unsigned count, int err)
{
    fault_seam_t *s = &seams[op];
    atomic_store(&s->armed, 0);
    atomic_store(&s->countdown, nth > 0 ? (long)nth - 1 : 0);
    atomic_store(&s->failures, count == 0 ? -1 : (long)count);
    atomic_store(&s->err, err);
    atomic_store(&s->armed, 1);
}

void sv_fault_disarm(sv_fault_op_t op)
{
    atomic_store(&seams[op].armed, 0);
}

void sv_fault_reset(void)
{
    for (int i = 0; i < SV_FAULT_COUNT_; i++)
        sv_fault_disarm((sv_fault_op_t)i);
}

int sv_fault_op_from_name(const char *name)
{
    static const char *const names[SV_FAULT_COUNT_] = {"commit", "write", "fsync", "rename", "malloc", "audit", "kms",
                                                              "stall"};
    for (int i = 0; i < SV_FAULT_COUNT_; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int sv_fault_errno_from_name(const char *name)
{
    if (strcmp(name, "ENOSPC") == 0)
        return ENOSPC;
    if (strcmp(name, "EIO") == 0)
        return EIO;
    if (strcmp(name, "EDQUOT") == 0)
        return EDQUOT;
    if (strcmp(name, "ENOMEM") == 0)
        return ENOMEM;
    return 0;
}

/* Parses one "op:nth[:count[:ERRNO]]" item of len bytes. */
static bool parse_spec_item(const char *item, size_t len, int *op, unsigned *nth, unsigned *count, int *err)
{
    char buf[64], *fields[4] = {NULL, NULL, NULL, NULL};
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, item, len);
    buf[len] = 0;
    int n = 0;
    for (char *f = buf; f != NULL; n++) { /* split at ':', keeping empty fields (they are errors) */
        if (n == 4)
            return false;
        fields[n] = f;
        char *colon = strchr(f, ':');
        if (colon != NULL)
            *colon++ = 0;
        f = colon;
    }
    if (n < 2 || (*op = sv_fault_op_from_name(fields[0])) < 0)
        return false;
    char *end;
    unsigned long v = strtoul(fields[1], &end, 10);
    if (*fields[1] == 0 || *end != 0 || v < 1 || v > 1000000)
        return false;
    *nth = (unsigned)v;
    *count = 1;
    if (fields[2] != NULL) {
        v = strtoul(fields[2], &end, 10);
        if (*fields[2] == 0 || *end != 0 || v > 1000000)
            return false;
        *count = (unsigned)v;
    }
    *err = EIO;
    if (fields[3] != NULL && (*err = sv_fault_errno_from_name(fields[3])) == 0)
        return false;
    return true;
}

int sv_fault_arm_spec(const char *spec, bool arm)
{
    for (int pass = 0; pass < (arm ? 2 : 1); pass++) { /* check everything first, then arm */
        for (const char *p = spec;; p++) {
            size_t len = strcspn(p, ",");
            int op, err;
            unsigned nth, count;
            if (!parse_spec_item(p, len, &op, &nth, &count, &err)) /* also an empty item */
                return -1;
            if (pass == 1)
                sv_fault_arm((sv_fault_op_t)op, nth, count, err);
            p += len;
            if (*p == 0)
                break;
        }
    }
    return 0;
}

int sv_fault_check(sv_fault_op_t op)
{
    fault_seam_t *s = &seams[op];
    if (__builtin_expect(atomic_load_explicit(&s->armed, memory_order_relaxed) == 0, 1))
        return 0;
    if (atomic_fetch_sub(&s->countdown, 1) > 0)
        return 0;
    if (atomic_load(&s->failures) < 0) /* unlimited */
        return atomic_load(&s->err);
    long left = atomic_fetch_sub(&s->failures, 1);
    if (left <= 0)
        return 0;
    if (left == 1)
        atomic_store(&s->armed, 0);
    return atomic_load(&s->err);
}

int sv_fault_peek(sv_fault_op_t op)
{
    fault_seam_t *s = &seams[op];
    if (atomic_load(&s->armed) == 0 || atomic_load(&s->countdown) > 0 || atomic_load(&s->failures) == 0)
        return 0;
    return atomic_load(&s->err);
}

int sv_sys_txn_commit(MDB_txn *txn)
{
    int err = sv_sys_commit_seams();
    if (err != 0) {
        mdb_txn_abort(txn);
        return err;
    }
    return mdb_txn_commit(txn);
}

int sv_sys_commit_seams(void)
{
    if (sv_fault_check(SV_FAULT_STALL) != 0)
        usleep(SV_FAULT_STALL_MS * 1000);
    return sv_fault_check(SV_FAULT_COMMIT);
}

ssize_t sv_sys_write(int fd, const void *buf, size_t len)
{
    int err = sv_fault_check(SV_FAULT_WRITE);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return write(fd, buf, len);
}

int sv_sys_fsync(int fd)
{
    int err = sv_fault_check(SV_FAULT_FSYNC);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return fsync(fd);
}

int sv_sys_fsync_parent(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = sv_sys_fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int sv_sys_rename(const char *from, const char *to)
{
    int err = sv_fault_check(SV_FAULT_RENAME);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return rename(from, to);
}

void *sv_sys_malloc(size_t len)
{
    if (sv_fault_check(SV_FAULT_MALLOC) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(len);
}
