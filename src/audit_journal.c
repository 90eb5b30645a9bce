/*
 * audit_journal.c - the audit log's journal (audit_journal.h).
 *
 * The file's bytes [base, len) are the pending records and are mirrored in
 * memory (buf), so that draining them into the store reads no file. Each
 * flush starts on a block of its own and writes the staged records, padded
 * with zeros to the end of their last block, with one pwrite on a
 * descriptor opened O_DIRECT | O_DSYNC: the write goes to the device and
 * returns once it is durable, with no page cache, writeback or separate
 * fdatasync on the way (measured: the page-cache path with fdatasync was 43%
 * of the writer thread's time). A file system without O_DIRECT (tmpfs), or
 * one that refuses its alignment, gets a plain pwrite and fdatasync. The file
 * is never extended after its creation, so a flush writes data blocks only,
 * and never a block that holds a record already answered.
 *
 * A zero length where a record would start ends a flush's records: the walk
 * goes on at the next block. A round starts at offset 0 after each drain, so
 * only the file's first record can tell that the journal belongs to another
 * store; anything that does not continue the chain after it ends the walk.
 */
#include "sv_autoconf.h"

#include "src/audit_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/audit.h"
#include "src/log.h"
#include "store/fault.h"
#include "store/key.h"

#define BLOCK 4096u /* O_DIRECT's alignment of memory, offset and length */
#define FLUSH_START 0x80000000u /* in a length header: the first record of a flush (lengths are far below) */

struct sv_audit_journal {
    int fd;
    bool direct; /* fd is O_DIRECT | O_DSYNC: a pwrite is durable when it returns */
    char path[1024];
    uint8_t *buf;  /* SV_AUDIT_JOURNAL_BYTES: the file's image from 0 to len, then what is staged */
    size_t base;   /* where the pending records start (after a recovery: where the kept ones were) */
    size_t len;    /* where they end: a block boundary */
    size_t count;  /* records pending */
    size_t staged; /* bytes staged after len */
    bool recovered; /* the pending records are a crash's, taken back: nothing goes after them */
};

static size_t block_up(size_t n)
{
    return (n + BLOCK - 1) & ~(size_t)(BLOCK - 1);
}

/* Where a flush whose records end at `end` ends: on a block boundary, with
 * at least a header's worth of zeros after the records when they do not end
 * on one, so that four zero bytes where a record would start always mean
 * padding (a record's length is never 0, and a header may straddle two
 * blocks). */
static size_t flush_end(size_t end)
{
    return end % BLOCK == 0 ? end : block_up(end + SV_AUDIT_JOURNAL_HEADER);
}

#define ZERO_CHUNK (64u * 1024)

static bool pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return false;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return true;
}

/* Writes zeros over [from, to) of the file. */
static bool zero_range(int fd, off_t from, off_t to)
{
    static const uint8_t zeros[ZERO_CHUNK];
    while (from < to) {
        size_t n = (size_t)(to - from) < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
        if (!pwrite_all(fd, zeros, n, from))
            return false;
        from += (off_t)n;
    }
    return true;
}

sv_err_t sv_audit_journal_open(const char *path, sv_audit_journal_t **out, char *msg, size_t msglen)
{
    sv_audit_journal_t *j = calloc(1, sizeof(*j));
    void *mem = NULL;
    if (j == NULL || posix_memalign(&mem, BLOCK, SV_AUDIT_JOURNAL_BYTES) != 0) {
        free(j);
        return SV_ENOMEM;
    }
    j->buf = mem;
    memset(j->buf, 0, SV_AUDIT_JOURNAL_BYTES); /* the file's image once recover has read it */
    snprintf(j->path, sizeof(j->path), "%s", path);
    j->fd = -1;
    sv_err_t err;
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* a link, a directory, a FIFO: never followed, opened or waited on */
        err = SV_EIO;
        snprintf(msg, msglen, "audit journal: '%s' is not a regular file (a link, directory or device); move it away",
                 path);
        goto fail;
    }
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (j->fd < 0 || fstat(j->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = j->fd < 0 ? errno : EIO;
        err = e == EACCES || e == EPERM ? SV_EPERM : SV_EIO;
        snprintf(msg, msglen, "audit journal: cannot open '%s': %s", path, strerror(e));
        goto fail;
    }
    if (sb.st_size > 0 && sb.st_size < (off_t)SV_AUDIT_JOURNAL_BYTES)
        sv_log_warn("audit journal: '%s' is %lld bytes, shorter than the %u it is made with (cut, or its making "
                    "was interrupted): entries past its end, if it had any, are gone",
                    path, (long long)sb.st_size, SV_AUDIT_JOURNAL_BYTES);
    if (sb.st_size < (off_t)SV_AUDIT_JOURNAL_BYTES) {
        /* allocate every block now: a flush then writes data only */
        if (!zero_range(j->fd, sb.st_size, SV_AUDIT_JOURNAL_BYTES) || fsync(j->fd) != 0) {
            err = sv_store_err(errno);
            snprintf(msg, msglen, "audit journal: cannot preallocate '%s': %s", path, strerror(errno));
            goto fail;
        }
        if (sb.st_size == 0)
            (void)sv_sys_fsync_parent(path);
    }
    int dfd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_DIRECT | O_DSYNC);
    if (dfd >= 0) {
        close(j->fd);
        j->fd = dfd;
        j->direct = true;
    }
    *out = j;
    return SV_OK;

fail:
    if (j->fd >= 0)
        close(j->fd);
    free(j->buf);
    free(j);
    return err;
}

void sv_audit_journal_close(sv_audit_journal_t *j)
{
    if (j == NULL)
        return;
    close(j->fd);
    free(j->buf);
    free(j);
}

/* Writes buf's bytes [from, to) to the file: the whole blocks that hold
 * them when the descriptor is O_DIRECT. */
static bool write_blocks(sv_audit_journal_t *j, size_t from, size_t to)
{
    if (j->direct) {
        from &= ~(size_t)(BLOCK - 1);
        to = block_up(to);
    }
    if (pwrite_all(j->fd, j->buf + from, to - from, (off_t)from))
        return true;
    if (!j->direct || errno != EINVAL)
        return false;
    /* storage whose alignment is not ours: the page cache and fdatasync from now on */
    int fd = open(j->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    close(j->fd);
    j->fd = fd;
    j->direct = false;
    sv_log_warn("audit journal: '%s' refuses O_DIRECT writes of %u-byte blocks; writing through the page cache",
                j->path, BLOCK);
    return pwrite_all(j->fd, j->buf + from, to - from, (off_t)from) && fdatasync(j->fd) == 0;
}

/* ---- reading ---- */

/* Past the zeros that end a flush (flush_end), when off is at them. */
static size_t skip_padding(const uint8_t *img, size_t n, size_t off)
{
    if (off % BLOCK != 0 && off + SV_AUDIT_JOURNAL_HEADER <= n && sv_get_be32(img + off) == 0)
        return flush_end(off);
    return off;
}

/* A record's length, from its header (without the flush-start bit). */
static size_t header_len(const uint8_t *p)
{
    return sv_get_be32(p) & ~FLUSH_START;
}

/* Whether the record at p is the first of its flush. */
static bool flush_start(const uint8_t *p)
{
    return (sv_get_be32(p) & FLUSH_START) != 0;
}

/* The record at img[off] when it is whole: its length header, then a stored
 * entry that decodes and whose hash is its own. */
static bool record_at(const uint8_t *img, size_t n, size_t off, size_t *len, sv_audit_record_t *r)
{
    if (off + SV_AUDIT_JOURNAL_HEADER > n)
        return false;
    *len = header_len(img + off);
    return *len > 0 && *len <= SV_AUDIT_RECORD_MAX && *len <= n - off - SV_AUDIT_JOURNAL_HEADER &&
           sv_audit_record_decode(SV_BYTES(img + off + SV_AUDIT_JOURNAL_HEADER, *len), r) == SV_OK &&
           sv_audit_record_hash_ok(r);
}

/* After a damaged record at off (entry seq + 1 if it were whole): how many
 * entries after it the file still shows, 0 for a torn or stale tail (the
 * usual end of a journal). The sign is the first record of a later flush
 * (marked, at the start of a block), written, and answered, only after the
 * damaged one's flush was; then the whole records right after the damaged
 * one that link from its hash field count too. A flush torn by a crash,
 * whose later records may have reached the disk, has no later flush. */
static size_t after_damage(const uint8_t *img, size_t n, size_t off, uint64_t seq)
{
    uint64_t later = 0; /* the highest entry of a later flush */
    size_t len;
    for (size_t b = block_up(off + 1); b + SV_AUDIT_JOURNAL_HEADER <= n; b += BLOCK) {
        sv_audit_record_t r;
        if (flush_start(img + b) && record_at(img, n, b, &len, &r) && r.seq > seq + 1 && r.seq > later &&
            r.seq - seq <= SV_AUDIT_JOURNAL_BYTES / SV_AUDIT_JOURNAL_HEADER)
            later = r.seq;
    }
    if (later == 0)
        return 0;
    uint64_t top = seq + 1; /* the highest entry seen after the damage */
    if (off + SV_AUDIT_JOURNAL_HEADER <= n) {
        len = header_len(img + off);
        if (len >= SV_AUDIT_HASH_BYTES && len <= SV_AUDIT_RECORD_MAX && len <= n - off - SV_AUDIT_JOURNAL_HEADER) {
            const uint8_t *want = img + off + SV_AUDIT_JOURNAL_HEADER; /* the damaged record's hash field */
            size_t at = skip_padding(img, n, off + SV_AUDIT_JOURNAL_HEADER + len);
            sv_audit_record_t r;
            while (record_at(img, n, at, &len, &r) && r.seq == top + 1 &&
                   memcmp(r.prev_hash, want, SV_AUDIT_HASH_BYTES) == 0) {
                want = r.hash;
                top++;
                at = skip_padding(img, n, at + SV_AUDIT_JOURNAL_HEADER + len);
            }
        }
    }
    if (later > top)
        top = later;
    return (size_t)(top - (seq + 1));
}

/* Walks the records of img[0, n) that continue (seq, hash): the kept ones
 * are [*start, *end), *count of them, and (seq, hash) is the last one's.
 * *lost: whole records that follow a damaged one and continue from it. */
static sv_err_t walk(const uint8_t *img, size_t n, uint64_t *seq, uint8_t hash[SV_AUDIT_HASH_BYTES], size_t *count,
                     size_t *start, size_t *end, size_t *lost, const char *path, char *msg, size_t msglen)
{
    uint64_t head = *seq;
    size_t off = 0, len;
    *count = 0;
    *start = *end = 0;
    *lost = 0;
    bool first = true; /* the file's first record: only it can belong to another store */
    for (;;) {
        sv_audit_record_t r;
        off = skip_padding(img, n, off);
        if (!record_at(img, n, off, &len, &r)) {
            *lost = after_damage(img, n, off, *seq);
            break;
        }
        bool was_first = first;
        first = false;
        if (r.seq <= head) {
            /* drained already (the store committed it before this file started over) */
            if (*count > 0) {
                *lost = after_damage(img, n, off, *seq); /* an old block where a new one was */
                break;
            }
            off += SV_AUDIT_JOURNAL_HEADER + len;
            continue;
        }
        if (r.seq != *seq + 1 || memcmp(r.prev_hash, hash, SV_AUDIT_HASH_BYTES) != 0) {
            if (!was_first) {
                /* the journal ends here: a round's start torn by a crash, or a record put where
                 * another was (a copied block); later batches' records tell the second */
                *lost = after_damage(img, n, off, *seq);
                break;
            }
            if (r.seq == head + 1) {
                snprintf(msg, msglen,
                         "audit journal '%s': entry %llu does not continue the audit log of the store, which ends at "
                         "entry %llu with another hash: the journal belongs to another copy of data.mdb. Move it "
                         "away to start without its entries.",
                         path, (unsigned long long)r.seq, (unsigned long long)head);
                return SV_ECORRUPT;
            }
            if (r.seq > head + 1) {
                snprintf(msg, msglen,
                         "audit journal '%s': its entries start at %llu, but the audit log of the store ends at "
                         "%llu: entries are missing in between (was data.mdb replaced by an older copy?). Move the "
                         "journal away to start without its entries.",
                         path, (unsigned long long)r.seq, (unsigned long long)head);
                return SV_ECORRUPT;
            }
            break;
        }
        if (*count == 0)
            *start = off;
        *seq = r.seq;
        memcpy(hash, r.hash, SV_AUDIT_HASH_BYTES);
        off += SV_AUDIT_JOURNAL_HEADER + len;
        (*count)++;
        *end = off;
    }
    if (*lost > 0)
        snprintf(msg, msglen,
                 "audit journal '%s': entry %llu is damaged, and the %zu entries after it, which later writes "
                 "show were answered, cannot be taken back (a disk that damaged the file, or someone who changed "
                 "it)",
                 path, (unsigned long long)*seq + 1, *lost);
    return SV_OK;
}

static bool read_all(int fd, uint8_t *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t r = pread(fd, buf + *n, cap - *n, (off_t)*n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    return true;
}

/* Logs msg and keeps the file's image as it was read (path.damaged-SECONDS)
 * before the next round overwrites the damaged record and what follows it. */
static void keep_damaged(const sv_audit_journal_t *j, size_t n, const char *msg)
{
    char copy[1100];
    snprintf(copy, sizeof(copy), "%s.damaged-%lld", j->path, (long long)(sv_now_us() / 1000000));
    int fd = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool kept = fd >= 0 && pwrite_all(fd, j->buf, n, 0) && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
    if (kept)
        sv_log_error("%s; a copy of the journal is kept in '%s'", msg, copy);
    else
        sv_log_error("%s; no copy of the journal could be kept (%s): %s", msg, copy, strerror(errno));
}

/* Moves the kept records to the front of buf: the skipped ones before them
 * were drained already, and the next flush overwrites the file from 0. */
sv_err_t sv_audit_journal_recover(sv_audit_journal_t *j, uint64_t head_seq, const uint8_t head_hash[32], char *msg,
                                  size_t msglen)
{
    size_t n;
    int rfd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); /* j->fd may be O_DIRECT */
    bool ok = rfd >= 0 && read_all(rfd, j->buf, SV_AUDIT_JOURNAL_BYTES, &n);
    int e = errno;
    if (rfd >= 0)
        close(rfd);
    if (!ok) {
        snprintf(msg, msglen, "audit journal: cannot read '%s': %s", j->path, strerror(e));
        return SV_EIO;
    }
    uint64_t seq = head_seq;
    uint8_t hash[SV_AUDIT_HASH_BYTES];
    memcpy(hash, head_hash, sizeof(hash));
    size_t count, start, end, lost;
    sv_err_t err = walk(j->buf, n, &seq, hash, &count, &start, &end, &lost, j->path, msg, msglen);
    if (err != SV_OK)
        return err;
    if (lost > 0)
        keep_damaged(j, n, msg);
    /* the kept records stay where they are in the file (a rewrite could lose
     * them to a crash); in memory nothing follows them, so that draining
     * stops where they end, whatever the file holds after them. Nothing is
     * appended after them (sv_audit_journal_recovered) until they are in the
     * store and the journal starts over. */
    memset(j->buf + end, 0, SV_AUDIT_JOURNAL_BYTES - end);
    j->base = count > 0 ? start : 0;
    j->len = count > 0 ? end : 0;
    j->count = count;
    j->staged = 0;
    j->recovered = count > 0;
    return SV_OK;
}

sv_err_t sv_audit_journal_scan(const char *path, uint64_t head_seq, const uint8_t head_hash[32], uint64_t *count,
                               uint64_t *last_seq, uint8_t last_hash[32], char *msg, size_t msglen)
{
    *count = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? SV_ENOTFOUND : sv_store_err(errno);
    uint8_t *img = malloc(SV_AUDIT_JOURNAL_BYTES);
    size_t n;
    sv_err_t err = SV_ENOMEM;
    if (img != NULL) {
        err = SV_EIO;
        if (read_all(fd, img, SV_AUDIT_JOURNAL_BYTES, &n)) {
            uint64_t seq = head_seq;
            uint8_t hash[SV_AUDIT_HASH_BYTES];
            memcpy(hash, head_hash, sizeof(hash));
            size_t c, start, end, lost;
            err = walk(img, n, &seq, hash, &c, &start, &end, &lost, path, msg, msglen);
            if ((err == SV_OK || lost > 0) && c > 0) { /* with damage: the valid ones before it */
                *count = c;
                *last_seq = seq;
                memcpy(last_hash, hash, SV_AUDIT_HASH_BYTES);
            }
            if (err == SV_OK && lost > 0)
                err = SV_ECORRUPT; /* msg says what */
        } else {
            snprintf(msg, msglen, "audit journal: cannot read '%s': %s", path, strerror(errno));
        }
        free(img);
    }
    close(fd);
    return err;
}

/* ---- appending ---- */

size_t sv_audit_journal_room(const sv_audit_journal_t *j)
{
    size_t used = flush_end(j->len + j->staged);
    return used < SV_AUDIT_JOURNAL_BYTES ? SV_AUDIT_JOURNAL_BYTES - used : 0;
}

bool sv_audit_journal_stage(sv_audit_journal_t *j, const uint8_t *rec, size_t len)
{
    if (len == 0 || len > SV_AUDIT_RECORD_MAX ||
        j->len + j->staged + 2 * SV_AUDIT_JOURNAL_HEADER + len > SV_AUDIT_JOURNAL_BYTES)
        return false;
    uint8_t *p = j->buf + j->len + j->staged;
    sv_put_be32(p, (uint32_t)len | (j->staged == 0 ? FLUSH_START : 0));
    memcpy(p + SV_AUDIT_JOURNAL_HEADER, rec, len);
    j->staged += SV_AUDIT_JOURNAL_HEADER + len;
    return true;
}

sv_err_t sv_audit_journal_flush(sv_audit_journal_t *j)
{
    size_t n = j->staged;
    j->staged = 0;
    if (n == 0)
        return SV_OK;
    size_t end = flush_end(j->len + n);
    memset(j->buf + j->len + n, 0, end - (j->len + n)); /* the padding reads as the end of the flush */
    int e = 0;
    if (!write_blocks(j, j->len, end) || (!j->direct && fdatasync(j->fd) != 0))
        e = errno;
    if (e == 0)
        e = sv_sys_commit_seams(); /* a failure the device reports once the data is there */
    if (e == 0) {
        if (j->count == 0)
            j->base = j->len; /* the first pending records */
        for (size_t off = j->len; off < j->len + n; off += SV_AUDIT_JOURNAL_HEADER + header_len(j->buf + off))
            j->count++;
        j->len = end;
        return SV_OK;
    }
    /* nobody was answered: take the records back, so that a restart does not
     * find entries of requests that failed (best effort: the disk is failing) */
    memset(j->buf + j->len, 0, end - j->len);
    if (!write_blocks(j, j->len, end) || (!j->direct && fdatasync(j->fd) != 0))
        sv_log_error("audit journal: cannot take back the entries of a failed write in '%s': %s (a restart may "
                     "find them)",
                     j->path, strerror(errno));
    return sv_store_err(e);
}

/* ---- pending records ---- */

bool sv_audit_journal_next(const sv_audit_journal_t *j, size_t *off, sv_bytes_t *rec)
{
    if (j->count == 0)
        return false;
    if (*off < j->base)
        *off = j->base;
    size_t len;
    for (;;) {
        if (*off + SV_AUDIT_JOURNAL_HEADER > j->len)
            return false;
        if ((len = header_len(j->buf + *off)) != 0)
            break;
        if (*off % BLOCK == 0)
            return false; /* no flush starts with zeros */
        *off = flush_end(*off); /* a flush's padding */
    }
    if (len > SV_AUDIT_RECORD_MAX || len > j->len - *off - SV_AUDIT_JOURNAL_HEADER)
        return false; /* never past what was written or taken back */
    *rec = SV_BYTES(j->buf + *off + SV_AUDIT_JOURNAL_HEADER, len);
    *off += SV_AUDIT_JOURNAL_HEADER + len;
    return true;
}

bool sv_audit_journal_recovered(const sv_audit_journal_t *j)
{
    return j->recovered;
}

size_t sv_audit_journal_pending(const sv_audit_journal_t *j)
{
    return j->count;
}

void sv_audit_journal_reset(sv_audit_journal_t *j)
{
    j->recovered = false;
    j->base = 0;
    j->len = 0;
    j->count = 0;
    j->staged = 0;
}

sv_err_t sv_audit_journal_clear(sv_audit_journal_t *j)
{
    sv_audit_journal_reset(j);
    memset(j->buf, 0, BLOCK);
    if (!write_blocks(j, 0, BLOCK) || (!j->direct && fdatasync(j->fd) != 0))
        return sv_store_err(errno);
    return SV_OK;
}
