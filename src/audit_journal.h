/*
 * audit_journal.h - the audit log's journal: one durable append per batch of
 * audit-only units (the entries of reads, denials, 404s ...).
 *
 * A durable LMDB commit costs two device flushes and the root-to-leaf pages
 * of every tree it touches; an audited read changes nothing but its entry.
 * So a batch whose every unit is audit-only does not commit to LMDB: its
 * encoded entries are appended to this file and flushed once (fdatasync),
 * and the requests are answered. The next LMDB batch (a write, a checkpoint,
 * a timer, or the journal filling up) first moves the journal's entries into
 * the store, in order, inside its own transaction; once that commit is
 * durable the journal starts again from offset 0.
 *
 * The file is preallocated (written with zeros) so that overwriting it in
 * place needs no metadata flush. Each record is a 4-byte big-endian length
 * and a stored audit record (doc/audit.md), which carries its own hash, its
 * predecessor's hash and its seq: after a crash the records that continue
 * the store's chain are exactly the valid ones. A torn or stale tail breaks
 * the link and ends the journal there (doc/audit.md "The journal").
 */
#ifndef SV_AUDIT_JOURNAL_H
#define SV_AUDIT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/sv.h"

#define SV_AUDIT_JOURNAL_FILE "audit.journal"
#define SV_AUDIT_JOURNAL_BYTES (8u << 20) /* the file's size, and the most it holds */
#define SV_AUDIT_JOURNAL_HEADER 4         /* the record length before each record */

typedef struct sv_audit_journal sv_audit_journal_t;

/** Opens the journal at path, creating or extending it to
 * SV_AUDIT_JOURNAL_BYTES (zeros, flushed). Reads nothing yet. Errors, with
 * msg naming the file: SV_EIO, SV_ENOSPC, SV_EPERM, SV_ENOMEM. */
sv_err_t sv_audit_journal_open(const char *path, sv_audit_journal_t **out, char *msg, size_t msglen);
/** Closes (NULL is fine). Pending records stay in the file. */
void sv_audit_journal_close(sv_audit_journal_t *j);

/** Reads the records that continue a chain whose head is (head_seq,
 * head_hash) and keeps them pending; records at or before head_seq (already
 * in the store) are skipped. Reading stops at the first record that is not
 * valid or does not link. When valid records that would have continued the
 * chain follow a damaged one, it logs an error and keeps a copy of the file
 * (path.damaged-SECONDS) before anything overwrites it. Errors:
 * SV_ECORRUPT, with msg, when the first record after the head's seq does not
 * continue the chain (the journal belongs to another store: a data.mdb
 * replaced by hand). */
sv_err_t sv_audit_journal_recover(sv_audit_journal_t *j, uint64_t head_seq, const uint8_t head_hash[32], char *msg,
                                  size_t msglen);

/** Like recover, without keeping anything or checking the chain beyond the
 * link: reads the file at path (read-only, for the offline tools) and
 * returns how many records continue the chain after head_seq, the last
 * one's seq and hash (unchanged when none), and SV_ECORRUPT as recover.
 * SV_ENOTFOUND when there is no journal. With a damaged record that entries
 * follow: SV_ECORRUPT, msg, and the count and last seq of the valid records
 * before it. */
sv_err_t sv_audit_journal_scan(const char *path, uint64_t head_seq, const uint8_t head_hash[32], uint64_t *count,
                               uint64_t *last_seq, uint8_t last_hash[32], char *msg, size_t msglen);

/** Stages an encoded record for the next sv_audit_journal_flush. False when
 * it does not fit (nothing staged then). */
bool sv_audit_journal_stage(sv_audit_journal_t *j, const uint8_t *rec, size_t len);
/** Room left for records (header included), staged ones deducted. */
size_t sv_audit_journal_room(const sv_audit_journal_t *j);
/** Writes the staged records and flushes them (the commit seams of
 * store/fault.h apply). On success they are pending; on failure they are
 * dropped (and zeroed in the file as far as it can) and the error is SV_EIO,
 * SV_ENOSPC, ... */
sv_err_t sv_audit_journal_flush(sv_audit_journal_t *j);

/** The pending records, in order: call with *off = 0, then until it returns
 * false. *rec points into the journal (valid until the next call that
 * changes it). */
bool sv_audit_journal_next(const sv_audit_journal_t *j, size_t *off, sv_bytes_t *rec);
/** How many records are pending. */
size_t sv_audit_journal_pending(const sv_audit_journal_t *j);
/** Whether the pending records are those recover took back: nothing may be
 * staged after them until a reset (their end need not be a flush's end). */
bool sv_audit_journal_recovered(const sv_audit_journal_t *j);
/** Forgets the pending records (they are durable in the store now): the next
 * record goes to offset 0 again. */
void sv_audit_journal_reset(sv_audit_journal_t *j);
/** Resets and makes the file read as empty (zeros its first block), for a
 * clean stop: the records of the last round, in the store now, are not left
 * readable for whatever store the directory holds next. Errors: SV_EIO, ... */
sv_err_t sv_audit_journal_clear(sv_audit_journal_t *j);

#endif
