/*
 * audit_verify.h - verification of the audit hash chain, its checkpoints and
 * its retention anchor (doc/audit.md "Verifying").
 *
 * A verifier walks the `audit` database in key order and checks that entries
 * are numbered without gaps, that each one sits at the key of its own
 * sequence number, links to the hash of the one before and hashes to its
 * stored hash, and that every checkpoint names the hash of the entry it
 * follows and (with a public key) carries a valid signature. It stops at the
 * first bad record and names its sequence number.
 *
 * It works in bounded steps (sv_audit_verify_step) so that no read snapshot
 * is held for long: the HTTP handler runs one step per event-loop turn, the
 * offline command one step per read transaction.
 */
#ifndef SV_AUDIT_VERIFY_H
#define SV_AUDIT_VERIFY_H

#include "src/audit.h"

typedef struct {
    /* what to check (set by sv_audit_verify_init) */
    uint64_t from_seq, to_seq; /* 0: from the start / to the end */
    bool check_signatures;
    uint8_t pk[SV_AUDIT_PK_BYTES];

    /* where it is */
    sv_audit_walk_t walk;
    bool started;      /* the first record was seen */
    uint64_t expected; /* the next entry's sequence number */
    uint8_t prev[SV_AUDIT_HASH_BYTES];
    bool have_prev;

    /* the outcome */
    bool done;
    bool ok;                /* valid once done */
    uint64_t checked;       /* entries checked */
    uint64_t checkpoints;   /* checkpoints checked */
    uint64_t first_bad_seq; /* valid when done && !ok */
    uint64_t last_seq;      /* the last entry checked */
    bool has_anchor;
    uint64_t anchor_seq; /* where the kept log starts after retention */
    char reason[96];     /* why first_bad_seq is bad */
} sv_audit_verifier_t;

/** Prepares v to check entries from_seq..to_seq (0: open ends). pk (may be
 * NULL) also checks every checkpoint's and anchor's signature. When from_seq
 * is past the start, the first entry's prev_hash is taken as given. */
void sv_audit_verify_init(sv_audit_verifier_t *v, uint64_t from_seq, uint64_t to_seq, const uint8_t *pk);
/** Looks at up to max_records more records in tx (a read snapshot the caller
 * begins and ends). Sets v->done when finished. Errors: storage errors (the
 * verification can be retried with a fresh init). */
sv_err_t sv_audit_verify_step(sv_audit_verifier_t *v, sv_txn_t *tx, unsigned max_records);
/** Runs v to the end on st with a reader of its own, one read snapshot per
 * slice of records (offline command, tests, benchmark). Errors: SV_ENOMEM,
 * SV_EAGAIN (no reader slot), storage errors. */
sv_err_t sv_audit_verify_store(sv_store_t *st, sv_audit_verifier_t *v);
/** Writes {"ok","checked","first_bad_seq",...} for v (done) to jw. */
void sv_audit_verify_json(sv_jw_t *jw, const sv_audit_verifier_t *v);

#endif
