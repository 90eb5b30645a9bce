/*
 * audit_tamper.h - what an attacker with write access to the data files
 * would do to the audit log: edit the `audit` database directly with LMDB,
 * bypassing the writer, the chain and the change log. Used by the unit and
 * black-box suites to prove that verification notices each kind.
 *
 * The functions work on an open store. The black-box suite opens the live
 * server's data directory in the test process (LMDB coordinates the two
 * processes through its lock file); a unit test passes its own store (LMDB
 * allows one environment handle per file per process).
 */
#ifndef SV_TESTS_AUDIT_TAMPER_H
#define SV_TESTS_AUDIT_TAMPER_H

#include "src/audit.h"

typedef enum {
    SV_TAMPER_MODIFY,         /* flip a byte of entry seq's path/user agent */
    SV_TAMPER_DELETE,         /* delete entry seq */
    SV_TAMPER_SWAP,           /* swap the records of seq and seq + 1 */
    SV_TAMPER_INSERT_COPY,    /* shift seq.. up by one, put a copy of seq - 1 at seq */
    SV_TAMPER_INSERT_FORGED,  /* shift seq.. up by one, put a correctly chained forgery at seq */
    SV_TAMPER_REWRITE_TAIL,   /* modify seq and recompute every hash after it (checkpoints untouched) */
    SV_TAMPER_CHECKPOINT_SIG, /* flip a bit of the signature of the checkpoint or anchor at seq */
} sv_tamper_t;

/** Applies one tampering in a raw LMDB write transaction. Returns false when
 * the records it needs are not there. */
bool sv_tamper(sv_store_t *st, sv_tamper_t kind, uint64_t seq);

/** A copy of every record of the `audit` database. */
typedef struct {
    size_t n;
    struct {
        uint8_t key[16];
        size_t key_len;
        uint8_t *val;
        size_t val_len;
    } * recs;
} sv_tamper_snapshot_t;

/** Copies the `audit` database. */
bool sv_tamper_save(sv_store_t *st, sv_tamper_snapshot_t *snap);
/** Makes the `audit` database exactly the copy again (and frees it). */
bool sv_tamper_restore(sv_store_t *st, sv_tamper_snapshot_t *snap);

/** Opens the store of a data directory for tampering (the server may run). */
sv_store_t *sv_tamper_open(const char *data_dir);

#endif
