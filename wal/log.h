/*
 * log.h - the change log (WAL): logical change records kept in the `wal`
 * database, keyed by their 8-byte big-endian LSN.
 *
 * Every put or delete made through the writer (wal/writer.h) appends one
 * record in the same LMDB transaction, so a change and its record commit or
 * vanish together. LSNs are gapless and increasing. The records feed replicas,
 * backups plus log replay, and point-in-time recovery, so each is
 * self-describing, versioned and checksummed:
 *
 *   u8  format (SV_WAL_FORMAT)     u8  op (1 put, 2 delete)
 *   u16 db number (store/env.h)    u8  flags (bit 0: last record of its unit)
 *   u64 unit id (LSN of the unit's first record)
 *   i64 time, microseconds since the epoch (the batch's start)
 *   u32 key length, key bytes      u32 value length, value bytes (0 for delete)
 *   u32 CRC-32C of the record's LSN (8 bytes, big-endian) and every byte above
 *
 * A replica applies whole units only: a unit ends at the record whose flag
 * bit 0 is set.
 */
#ifndef SV_WAL_LOG_H
#define SV_WAL_LOG_H

#include "store/env.h"
#include "store/migrate.h"
#include "store/record.h"

#define SV_WAL_FORMAT 1
#define SV_WAL_FLAG_UNIT_END 0x01

typedef enum { SV_WAL_PUT = 1, SV_WAL_DEL = 2 } sv_wal_op_t;

typedef struct {
    uint64_t lsn;
    uint64_t unit_id;
    int64_t time_us;
    uint8_t op;
    uint16_t db;
    uint8_t flags;
    sv_bytes_t key;   /* points into the stored record */
    sv_bytes_t value; /* points into the stored record */
} sv_wal_record_t;

/** CRC-32C (Castagnoli) of p, continuing from crc (start with 0). */
uint32_t sv_crc32c(uint32_t crc, const void *p, size_t len);

/** Encodes a record (everything but its LSN, which is the key) into w.
 * The caller frees w. */
void sv_wal_encode(sv_recw_t *w, const sv_wal_record_t *rec);
/** The two halves of sv_wal_encode, for the writer, which sets the unit-end
 * flag only once it knows a record is its unit's last: encode_body starts w
 * over (keeping its allocation) with everything but the checksum; seal
 * appends the checksum over lsn and the body. */
void sv_wal_encode_body(sv_recw_t *w, const sv_wal_record_t *rec);
void sv_wal_seal(sv_recw_t *w, uint64_t lsn);
/** Offset of the flags byte in an encoded record. */
#define SV_WAL_FLAGS_OFFSET 4
/** Decodes and verifies raw, stored at lsn. Errors: SV_ECORRUPT (bad format,
 * bounds, or checksum). Pointers in *out point into raw. */
sv_err_t sv_wal_decode(sv_bytes_t raw, uint64_t lsn, sv_wal_record_t *out);

/** The LSN of the last record (0 when the log is empty). */
sv_err_t sv_wal_last_lsn(sv_txn_t *tx, uint64_t *lsn);
/** The LSN of the first record still kept (0 when the log is empty). */
sv_err_t sv_wal_first_lsn(sv_txn_t *tx, uint64_t *lsn);

/** The format byte of the applied_lsn record in meta (u8 format, u64 LSN). */
#define SV_WAL_APPLIED_FORMAT 1

/** The last LSN that a committed batch handed out (meta applied_lsn; 0 when
 * nothing was ever written). Unlike sv_wal_last_lsn it survives pruning.
 * Errors: SV_ECORRUPT (a malformed record), SV_EIO. */
sv_err_t sv_wal_applied_lsn(sv_txn_t *tx, uint64_t *lsn);

/** Reads the log in LSN order, from any LSN on. */
typedef struct {
    sv_iter_t it;
    uint8_t seek[8];
} sv_wal_iter_t;

/** Opens an iterator at the first record with LSN >= from_lsn. */
sv_err_t sv_wal_iter_open(sv_txn_t *tx, uint64_t from_lsn, sv_wal_iter_t *wi);
/** The next record, verified. SV_ENOTFOUND at the end, SV_ECORRUPT on a bad record. */
sv_err_t sv_wal_iter_next(sv_wal_iter_t *wi, sv_wal_record_t *rec);
void sv_wal_iter_close(sv_wal_iter_t *wi);

/** Human-readable name of an op. */
const char *sv_wal_op_name(uint8_t op);

#endif
