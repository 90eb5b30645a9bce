/*
 * audit.h - the tamper-evident audit log.
 *
 * Every request (and every non-HTTP event such as `identity_sync`) appends one
 * entry to the `audit` database, keyed by its 8-byte big-endian sequence
 * number. Entries form a hash chain: hash = BLAKE2b-256(prev_hash || canonical
 * entry). Ed25519-signed checkpoints ({seq, hash, time}) are stored beside the
 * entry they cover, and retention leaves a signed anchor in place of what it
 * pruned. Two indexes serve queries: `audit_by_request` (request id → seq) and
 * `audit_by_time` (time → seq, and which seconds each tenant was active in).
 *
 * doc/audit.md is the normative description of the stored format, the
 * canonical encoding and the signatures; the constants below follow it.
 *
 * Appends happen only on the writer thread, inside a unit's apply (or the
 * audit hook), through sv_wtxn_put so that the change log records them. The
 * chain head is read from the write transaction itself, so an entry of a unit
 * that rolls back leaves no trace.
 */
#ifndef SV_AUDIT_H
#define SV_AUDIT_H

#include "src/audit_entry.h"
#include "src/json.h"
#include "src/principal.h"
#include "store/env.h"
#include "store/key.h"
#include "wal/writer.h"

struct sv_app;

#define SV_AUDIT_FORMAT 1           /* the format byte of every stored record */
#define SV_AUDIT_HASH_BYTES 32      /* BLAKE2b-256 */
#define SV_AUDIT_SIG_BYTES 64       /* Ed25519 */
#define SV_AUDIT_PK_BYTES 32        /* Ed25519 public key */
#define SV_AUDIT_SEED_BYTES 32      /* the key file: an Ed25519 seed */
#define SV_AUDIT_TAG_ANCHOR 'A'     /* key = seq (8 bytes) + 'A' */
#define SV_AUDIT_TAG_CHECKPOINT 'C' /* key = seq (8 bytes) + 'C' */
#define SV_AUDIT_RECORD_MAX 2048    /* the largest encoded entry record */

/* The domain strings that prefix a signed message (doc/audit.md). */
#define SV_AUDIT_CHECKPOINT_DOMAIN "scaivault-audit-checkpoint-v1"
#define SV_AUDIT_ANCHOR_DOMAIN "scaivault-audit-anchor-v1"

typedef struct sv_audit sv_audit_t;

/* ---- the part: key, hook, checkpoints, retention ---- */

typedef struct {
    const char *key_file;           /* the Ed25519 seed file; created 0600 if missing */
    uint64_t checkpoint_entries;    /* a checkpoint after this many entries (0: never by count) */
    int64_t checkpoint_interval_ms; /* ... or once this much time has passed (0: never by time) */
    int64_t retention_ms;           /* prune entries older than this; 0 keeps all */
    int64_t journal_age_ms;         /* the journal goes to LMDB once its oldest entry is this old (0: 500) */
} sv_audit_opts_t;

/** Loads (or creates, mode 0600) the signing key and makes the audit log.
 * Nothing is attached to a writer yet. Errors, with msg naming the file:
 * SV_EPERM (the key file is readable or writable by group or others, or is
 * not a regular file), SV_EINVAL (the key file does not hold exactly 32
 * bytes), SV_EIO (cannot read or create it), SV_ENOMEM. *out is the caller's
 * (sv_audit_close). */
sv_err_t sv_audit_open(const sv_audit_opts_t *opts, sv_audit_t **out, char *msg, size_t msglen);
/** Installs the audit hook and the checkpoint/retention batch hook on w.
 * Call before any audited unit is submitted; close a only after w stopped
 * (the server part instead detaches first: sv_audit_part_stop). */
void sv_audit_attach(sv_audit_t *a, sv_writer_t *w);
/** Like sv_audit_attach, with the journal at path (audit_journal.h): batches
 * of audit-only units are made durable there, and LMDB batches move them to
 * the store. Entries a crash left in the journal are taken back first (the
 * next LMDB batch writes them). Errors, with msg: those of
 * sv_audit_journal_open and sv_audit_journal_recover (SV_ECORRUPT: the
 * journal does not continue this store's chain). */
sv_err_t sv_audit_attach_journal(sv_audit_t *a, sv_writer_t *w, const char *path, char *msg, size_t msglen);
/** Entries in the journal that the store does not have yet (0 without a
 * journal, or a NULL a). Any thread. A reader of the audit log that must
 * see every answered request runs a writer unit first when this is not 0. */
size_t sv_audit_pending(const sv_audit_t *a);
/** Waits for the log's own queued unit (a retention step) and frees a, wiping
 * the signing key. The writer must not run audited units afterwards. NULL is
 * fine. */
void sv_audit_close(sv_audit_t *a);
/** The Ed25519 public key of the checkpoints. Valid as long as a. */
const uint8_t *sv_audit_public_key(const sv_audit_t *a);
#define SV_AUDIT_CURSOR_KEY_BYTES 32
/** The key that query cursors are authenticated with (sv_audit_query_t),
 * derived from the signing key. Valid as long as a. */
const uint8_t *sv_audit_cursor_key(const sv_audit_t *a);

/** Server part (src/cmd_server.c): opens the log from the configuration,
 * attaches it to app->writer, sets app->audit and registers the scheduler job
 * "audit_checkpoint" (an sv_audit_tick every AUDIT_CHECKPOINT_INTERVAL, at
 * least every minute with retention). With
 * SCAIVAULT_BENCH_UNAUDITED it leaves app->audit NULL (nothing is audited).
 * The journal is DATA_DIR/audit.journal; what a crash left in it is in the
 * store when this returns (or stays in the journal if that commit failed).
 * Errors as sv_audit_open and sv_audit_attach_journal. */
sv_err_t sv_audit_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Server part stop: lets every unit queued so far commit with its entry (a
 * barrier unit through the writer), waits for a running retention step,
 * detaches the log (app->audit = NULL: the hooks then fail audited units
 * closed) and frees it. Runs before the writer stops. */
void sv_audit_part_stop(struct sv_app *app);

/** Runs one empty writer unit so that the batch hook gets to write a due
 * time-based checkpoint and prune expired entries even without traffic. For
 * the scheduler (or any thread without an event loop: it waits for the
 * commit). Errors: those of sv_writer_run. */
sv_err_t sv_audit_tick(sv_audit_t *a);

/* ---- appending (writer thread, inside a unit's apply) ---- */

/** Clears e and fills it for a non-HTTP event (a scheduled identity sync, a
 * promotion, a webhook delivery ...): action is required, the other strings
 * may be NULL (none). status is 0, request_id empty: set e->request_id and
 * the others afterwards if the event belongs to a request. */
void sv_audit_entry_init(sv_audit_entry_t *e, const char *action, const char *tenant_id, const char *identity_id,
                         const char *path, bool success, const char *error_code);

/** Appends e to the chain inside tx. Call it from a unit's apply (any
 * module: identity_promoted, identity_sync, webhook_delivery, ...): the entry
 * commits or vanishes with the unit's own changes, and its time is the
 * batch's time. It never keeps a pointer to e. Return its error from apply so
 * that the unit fails closed: with SV_EAUDIT (the entry could not be written,
 * also the SV_FAULT_AUDIT seam) or a storage error (SV_EMAPFULL, SV_EIO,
 * SV_ENOSPC: the writer handles those). a == NULL (auditing bypassed for a
 * benchmark) appends nothing and returns SV_OK. *seq (may be NULL) gets the
 * entry's sequence number. */
sv_err_t sv_audit_append(sv_audit_t *a, sv_wtxn_t *tx, const sv_audit_entry_t *e, uint64_t *seq);

/* ---- checkpoints and anchors ---- */

typedef struct {
    uint64_t seq;                      /* the entry it covers */
    uint8_t hash[SV_AUDIT_HASH_BYTES]; /* that entry's hash */
    int64_t time_us;                   /* when it was made */
    uint8_t sig[SV_AUDIT_SIG_BYTES];   /* Ed25519 over the signed message */
    bool anchor;                       /* a retention anchor, not a checkpoint */
} sv_audit_checkpoint_t;

/** Writes a checkpoint of the current chain head inside tx (the unit of POST
 * /v1/audit/checkpoints). When the head already is a checkpoint or an anchor
 * it is returned as is and *created is false. Errors: SV_ENOTFOUND (no entry
 * yet), storage errors. */
sv_err_t sv_audit_checkpoint_now(sv_audit_t *a, sv_wtxn_t *tx, sv_audit_checkpoint_t *out, bool *created);

/** Builds the signed message of c into out (at most 80 bytes); returns its length. */
size_t sv_audit_signed_message(const sv_audit_checkpoint_t *c, uint8_t out[80]);
/** Whether c's signature verifies under pk. */
bool sv_audit_checkpoint_verify(const sv_audit_checkpoint_t *c, const uint8_t pk[SV_AUDIT_PK_BYTES]);

/* ---- the stored format (readers: queries, export, verification) ---- */

/** A decoded entry record. Views point into the stored value and live as
 * long as the read transaction. */
typedef struct {
    uint64_t seq;
    int64_t time_us;
    bool success;
    uint16_t status;
    sv_bytes_t request_id, tenant_id, identity_id, action, path, error_code, ip, user_agent;
    const uint8_t *hash;      /* 32 bytes */
    const uint8_t *prev_hash; /* 32 bytes */
    sv_bytes_t hashed;        /* prev_hash || canonical entry: what the hash covers */
} sv_audit_record_t;

/** Encodes the entry record (hash, prev_hash, canonical entry) of e at seq and
 * time into out, computing the hash. Returns the length, or 0 when cap is too
 * small (SV_AUDIT_RECORD_MAX always suffices). */
size_t sv_audit_record_encode(uint8_t *out, size_t cap, uint64_t seq, int64_t time_us, const sv_audit_entry_t *e,
                              const uint8_t prev_hash[SV_AUDIT_HASH_BYTES]);
/** Puts the index rows of the entry r (request id, time, the tenant's
 * activity in r's second; doc/audit.md "Indexes"). They are derived rows, not
 * in the change log: a reader of the log that applies an `audit` entry calls
 * this after putting it, as the writer does. */
sv_err_t sv_audit_index_entry(sv_wtxn_t *tx, const sv_audit_record_t *r);
/** Decodes an entry record. Does not check the hash. SV_ECORRUPT when
 * malformed. */
sv_err_t sv_audit_record_decode(sv_bytes_t val, sv_audit_record_t *out);
/** Whether the stored hash of r is BLAKE2b-256 of r->hashed. */
bool sv_audit_record_hash_ok(const sv_audit_record_t *r);
/** Decodes a checkpoint or anchor record (key seq + tag, value). SV_ECORRUPT
 * when malformed. */
sv_err_t sv_audit_checkpoint_decode(sv_bytes_t key, sv_bytes_t val, sv_audit_checkpoint_t *out);

/** The chain head in tx: the sequence number and hash of the last entry (or
 * of the anchor, when everything was pruned); 0 and zeros when empty.
 * *is_entry (may be NULL) tells whether the last record is an entry (not a
 * checkpoint or anchor). */
/** The key of a tenant's activity row for one second (doc/audit.md
 * "Indexes"): `s` ‖ tenant ‖ 0x00 ‖ second, big-endian. */
void sv_audit_activity_key(sv_key_t *k, sv_bytes_t tenant, int64_t second);

sv_err_t sv_audit_head(sv_txn_t *tx, uint64_t *seq, uint8_t hash[SV_AUDIT_HASH_BYTES], bool *is_entry);
/** sv_audit_head in a read snapshot of its own (not on an HTTP worker's
 * reader: it begins an LMDB read transaction). */
sv_err_t sv_audit_store_head(sv_store_t *st, uint64_t *seq, uint8_t hash[SV_AUDIT_HASH_BYTES]);

/* ---- walking the log in slices ---- */

/** A walk over the `audit` database in key order that can stop after any
 * record and resume in a later read snapshot (verification, export). */
typedef struct {
    uint64_t from_seq; /* where the first slice starts; 0 or 1: the first record */
    bool started;
    uint8_t pos[9]; /* key of the last record returned */
    size_t pos_len;
    uint8_t seek[9]; /* the iterator's start key (it must outlive the iterator) */
    size_t seek_len;
} sv_audit_walk_t;

/** Starts a walk at the records of entry from_seq (0 or 1: the very first record). */
void sv_audit_walk_init(sv_audit_walk_t *w, uint64_t from_seq);
/** Opens it on tx just after the last record returned (or at from_seq).
 * Close it with sv_iter_close before tx ends. Errors: SV_ENOTFOUND (there is
 * no audit database), storage errors. */
sv_err_t sv_audit_walk_open(sv_audit_walk_t *w, sv_txn_t *tx, sv_iter_t *it);
/** The next record, remembered as the point to resume after. SV_ENOTFOUND at
 * the end. Views are valid until the next call or the end of tx. */
sv_err_t sv_audit_walk_next(sv_audit_walk_t *w, sv_iter_t *it, sv_bytes_t *key, sv_bytes_t *val);

/* ---- JSON (doc/audit.md "JSON") ---- */

/** Formats time_us as RFC 3339 UTC with microseconds ("2026-11-29T10:00:00.000123Z"). */
void sv_audit_time_format(char out[32], int64_t time_us);
/** Writes r as a JSON object; with_type adds "type":"entry" first (export). */
void sv_audit_record_json(sv_jw_t *jw, const sv_audit_record_t *r, bool with_type);
/** Writes c as a JSON object with its "type" ("checkpoint" or "anchor"). */
void sv_audit_checkpoint_json(sv_jw_t *jw, const sv_audit_checkpoint_t *c);

/* ---- public keys ---- */

/** Writes the SubjectPublicKeyInfo PEM of pk into out (at least 128 bytes). */
void sv_audit_public_key_pem(const uint8_t pk[SV_AUDIT_PK_BYTES], char out[128]);
/** Parses a public key given as PEM (SubjectPublicKeyInfo, Ed25519), 64 hex
 * characters or base64 of the 32 bytes; surrounding white space is ignored.
 * SV_EINVAL otherwise. */
sv_err_t sv_audit_public_key_parse(const char *text, size_t len, uint8_t pk[SV_AUDIT_PK_BYTES]);

/** The tenant filter of an audit query: a super admin sees every tenant's
 * entries, or one tenant's when the request names it (*tenant = NULL means
 * all); anyone else sees only the request's tenant. Returns false when a
 * non-super-admin request has no tenant (tenant_required). */
bool sv_audit_tenant_filter(const sv_principal_t *p, const char *request_tenant, const char **tenant);

#endif
