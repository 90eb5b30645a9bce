/*
 * keyring.h - the data keys of tenants and partners (envelope encryption).
 *
 * Every *owner* of secrets (a tenant, or a partner) gets a random 256-bit data
 * key on its first write. The key is stored only wrapped by the KMS key, in
 * the `tenants` database under sv_key_str(owner) + sv_key_u8(1), together with
 * a key id (1 today; rotation will add more) and a random uid that tells one
 * incarnation of a key from another.
 *
 * Unwrapped keys live in a cache in sodium_malloc memory (slabs of key slots:
 * one guarded, mlock'ed region per 1024 keys), pinned while in use, and
 * dropped and wiped after DATA_KEY_CACHE_TTL without use by a sweeper thread,
 * off the request path. A miss asks the KMS asynchronously (kms.h).
 *
 * Who may call what: lookups, loads, creates and releases come from any
 * thread (workers); the sv_keyring_apply_* functions run inside a writer
 * unit's apply (wal/writer.h); install and drop run after a unit committed.
 */
#ifndef SV_KEYRING_H
#define SV_KEYRING_H

#include "src/kms.h"
#include "store/env.h"
#include "store/key.h"
#include "wal/writer.h"

/* ---- owners ---- */

#define SV_OWNER_MAX 80 /* "partner:" + a 63-byte id + NUL */
#define SV_OWNER_PARTNER_PREFIX "partner:"

/** Who secrets belong to: a tenant id ("tnt_xyz") or "partner:" + a partner
 * id. Tenant ids cannot contain ':', so the two namespaces never meet. */
typedef struct {
    char id[SV_OWNER_MAX];
    size_t len;
} sv_owner_t;

/** Sets o to tenant id. false when id is not a valid tenant id. */
bool sv_owner_tenant(sv_owner_t *o, const char *id, size_t len);
/** Sets o to partner id (validated like a tenant id). false when invalid. */
bool sv_owner_partner(sv_owner_t *o, const char *id, size_t len);
/** Whether o is a partner. */
bool sv_owner_is_partner(const sv_owner_t *o);

/* ---- the stored record ---- */

#define SV_KEYRING_KIND 1 /* the kind byte of data-key records in `tenants` */
#define SV_DKEY_UID_BYTES 16

typedef enum {
    SV_KEYREC_ACTIVE = 1,   /* the owner's current data key */
    SV_KEYREC_SHREDDED = 2, /* the key was destroyed; the owner's data is being deleted */
} sv_keyrec_state_t;

typedef struct {
    uint8_t state; /* sv_keyrec_state_t */
    uint32_t key_id;
    uint8_t uid[SV_DKEY_UID_BYTES];
    char kms_key_id[SV_KMS_KEY_ID_MAX];
    uint8_t wrapped[SV_KMS_WRAPPED_MAX]; /* empty when shredded */
    size_t wrapped_len;
    int64_t created_us;
} sv_keyrec_t;

/** The `tenants` key of o's data-key record. */
void sv_keyring_record_key(sv_key_t *k, const sv_owner_t *o);
/** Decodes a stored record (copied into *out). SV_ECORRUPT. */
sv_err_t sv_keyring_decode(sv_bytes_t v, sv_keyrec_t *out);
/** Calls fn for every stored data-key record in tx (its owner id, valid
 * during the call, and the decoded record), in key order, until fn returns
 * false. Records that do not decode are skipped. Errors: storage errors (no
 * `tenants` database yet is no error). */
sv_err_t sv_keyring_each(sv_txn_t *tx, bool (*fn)(void *arg, sv_bytes_t owner, const sv_keyrec_t *rec), void *arg);
/** Reads o's record (copied into *out). Errors: SV_ENOTFOUND, SV_ECORRUPT, SV_EIO. */
sv_err_t sv_keyring_read(sv_txn_t *tx, const sv_owner_t *o, sv_keyrec_t *out);
/** SV_EGONE while owner o is being deleted (its key shredded, its data not
 * gone yet), else SV_OK; store errors. Checked in the transaction of every
 * write of an owner's data (the HTTP pipeline does it for an operation that
 * names its owner or tenant, see sv_req_op_t): the deletion purged policies,
 * identities and overrides in its first step, and a later write must not
 * outlive it. */
sv_err_t sv_keyring_owner_writable(sv_txn_t *tx, const sv_owner_t *o);
/** sv_keyring_owner_writable of tenant (SV_EINVAL for a malformed id). */
sv_err_t sv_keyring_tenant_writable(sv_txn_t *tx, const char *tenant);

/** Checks that kms can unwrap every active data key stored in st (its
 * kms_key_id, sv_kms_has_key). Returns SV_OK; SV_ECRYPTO when some cannot,
 * with the id of the first KMS key it lacks in need (need_len bytes) and the
 * number of owners whose key it wrapped in *owners; store errors. A record
 * that does not decode is skipped (it fails when used). Reads one snapshot. */
sv_err_t sv_keyring_check_kms(sv_store_t *st, const sv_kms_t *kms, char *need, size_t need_len, unsigned *owners);

/* ---- unwrapped keys ---- */

typedef struct sv_keyring sv_keyring_t;
typedef struct sv_dkey sv_dkey_t; /* a pinned, unwrapped data key */

/** The 32 key bytes (sodium_malloc memory). Valid while pinned. */
const uint8_t *sv_dkey_bytes(const sv_dkey_t *k);
uint32_t sv_dkey_id(const sv_dkey_t *k);
const uint8_t *sv_dkey_uid(const sv_dkey_t *k);

typedef struct {
    int64_t ttl_ms;    /* idle time before a cached key is wiped (DATA_KEY_CACHE_TTL) */
    unsigned max_keys; /* cache capacity (default 65536); least recently used go first */
} sv_keyring_opts_t;

/** Creates the keyring on kms and starts its sweeper thread. Errors:
 * SV_ENOMEM. On success *out is the caller's (sv_keyring_free). */
sv_err_t sv_keyring_new(sv_kms_t *kms, const sv_keyring_opts_t *opts, sv_keyring_t **out);
/** Stops the sweeper and wipes every key. No key may be pinned. NULL is fine. */
void sv_keyring_free(sv_keyring_t *kr);

/** The shred epoch. Read it *before* opening the read transaction that finds
 * a record to load: a load whose epoch is older than the newest drop is used
 * once but never cached, so a key destroyed meanwhile cannot come back. */
uint64_t sv_keyring_epoch(sv_keyring_t *kr);

/** The cached key (o, key_id), pinned, or NULL (a miss). Counts hits and
 * misses. Never blocks on the KMS. Release with sv_keyring_release. */
sv_dkey_t *sv_keyring_lookup(sv_keyring_t *kr, const sv_owner_t *o, uint32_t key_id);
/** Unpins k (NULL is fine). Keys no longer cached are wiped at their last release. */
void sv_keyring_release(sv_keyring_t *kr, sv_dkey_t *k);

/** Called when an asynchronous load or create has finished: result and, on
 * success, the pinned key (the callee's to release). Any thread. */
typedef void (*sv_keyring_cb)(void *arg, sv_err_t result, sv_dkey_t *key);

/** Unwraps rec (o's active record, read in a transaction begun after epoch
 * was read) through the KMS and caches the key. Returns SV_OK with *out
 * pinned when it finished at once (the `local` provider), SV_EAGAIN when the
 * KMS answers later (cb runs then, once, on another thread), or an error at
 * once: SV_ECRYPTO (does not unwrap), SV_ENOMEM (the cache is full of
 * pinned keys), SV_EINVAL (rec is not active). On failure the KMS output was
 * wiped. */
SV_MUST_CHECK sv_err_t sv_keyring_load(sv_keyring_t *kr, const sv_owner_t *o, const sv_keyrec_t *rec, uint64_t epoch,
                                       sv_dkey_t **out, sv_keyring_cb cb, void *arg);

/** Makes a new random data key for o and wraps it (first write). *rec_out
 * (which must stay valid until the result) receives the record to insert in
 * the writer unit (sv_keyring_apply_use). The key is pinned but not cached
 * until sv_keyring_install() after the unit committed. Same returns as
 * sv_keyring_load (SV_OK at once / SV_EAGAIN then cb / an error). */
SV_MUST_CHECK sv_err_t sv_keyring_create(sv_keyring_t *kr, const sv_owner_t *o, uint64_t epoch, sv_keyrec_t *rec_out,
                                         sv_dkey_t **out, sv_keyring_cb cb, void *arg);

/** After the unit that inserted a created key committed: caches it (unless a
 * drop happened since its epoch). Returns the pinned key the caller holds from
 * now on: k, or an equal key that was already cached (k is then gone). */
sv_dkey_t *sv_keyring_install(sv_keyring_t *kr, sv_dkey_t *k);

/** After the unit that shredded o committed: removes o's keys from the cache
 * (wiped at once, or at their last release) and bumps the epoch. */
void sv_keyring_drop(sv_keyring_t *kr, const sv_owner_t *o);

typedef struct {
    uint64_t hits, misses;             /* lookups */
    uint64_t loads, creates, failures; /* KMS round trips */
    unsigned cached;                   /* keys in the cache now */
    unsigned slabs;
} sv_keyring_stats_t;

void sv_keyring_stats(sv_keyring_t *kr, sv_keyring_stats_t *out);
uint64_t sv_keyring_hits(sv_keyring_t *kr);
uint64_t sv_keyring_misses(sv_keyring_t *kr);

/* ---- the server part (src/cmd_server.c) ---- */

struct sv_app;
/** Refuses to start (SV_EINVAL, msg naming KMS_LOCAL_KEY_FILE, the KMS key
 * the stored data keys need and the one the file holds) when app->kms cannot
 * unwrap them (sv_keyring_check_kms): a key file that went missing (the one
 * sv_kms_open just made for it is removed) or was replaced. Then creates
 * app->keyring on app->kms (DATA_KEY_CACHE_TTL), counting lookups in
 * scaivault_data_key_cache_requests_total{result} and exposing the number of
 * cached keys (scaivault_data_key_cache_keys). SV_ENOMEM; store errors. */
sv_err_t sv_keyring_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Wipes every cached key and frees app->keyring. */
void sv_keyring_part_stop(struct sv_app *app);

/* ---- inside a writer unit's apply ---- */

/** Checks that o's current data key is k (k may be NULL when insert is set),
 * or inserts *insert (a record from sv_keyring_create) when o has none.
 * Returns SV_OK; SV_ECONFLICT when another key is current (a racing first
 * write won, or o was deleted and recreated: retry with the stored key);
 * SV_EDELETED when o's key was shredded and its data is being deleted;
 * SV_EMAPFULL/SV_EIO from the store. */
sv_err_t sv_keyring_apply_use(sv_wtxn_t *tx, const sv_owner_t *o, const sv_dkey_t *k, const sv_keyrec_t *insert);

/** Crypto-shredding: replaces o's record with a tombstone that holds no key
 * material. SV_ENOTFOUND when o has no record; SV_EDELETED when already shredded. */
sv_err_t sv_keyring_apply_shred(sv_wtxn_t *tx, const sv_owner_t *o);

/** Removes o's tombstone once its data is gone. SV_ENOTFOUND when absent. */
sv_err_t sv_keyring_apply_forget(sv_wtxn_t *tx, const sv_owner_t *o);

#endif
