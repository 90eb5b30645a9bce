/*
 * secrets.h - the secrets domain: paths, the stored records of a secret and
 * its versions, sealing and opening versions, every change as the body of a
 * writer unit's apply, listing, cursors, and deleting an owner's data.
 *
 * Storage layout (keys in store/key.h encoding; owner = tenant id or
 * "partner:" + partner id, keyring.h):
 *   secrets  str(owner) str(path)          → head record (versions, config)
 *   versions str(owner) str(path) u64(v)   → version record (state, times,
 *                                            creator, key id, sealed blob)
 * The sealed plaintext of a version is the JSON text `"value":V,"metadata":M`,
 * so that a read decrypts it straight into the response.
 *
 * Threads: the read helpers run on any thread with a read transaction; the
 * *_apply functions run on the writer thread inside a unit; nothing here
 * knows HTTP.
 */
#ifndef SV_SECRETS_H
#define SV_SECRETS_H

#include "src/json.h"
#include "src/keyring.h"
#include "store/env.h"
#include "wal/writer.h"

#define SV_SECRET_PATH_MAX 512
#define SV_SECRET_DEFAULT_MAX_VERSIONS 10
#define SV_SECRET_MAX_VERSIONS_LIMIT 100000
#define SV_SECRET_METADATA_MAX_KEYS 64
#define SV_SECRET_METADATA_KEY_MAX 128
#define SV_SECRET_METADATA_VALUE_MAX 1024
#define SV_SECRET_CURSOR_MAX 1024  /* text length of a cursor */
#define SV_OWNER_DELETE_BATCH 1000 /* records deleted per writer unit */

/* ---- paths ---- */

/** Whether path may name a secret: a valid secret path (src/pattern.h:
 * 1..512 bytes, '/'-separated segments of [A-Za-z0-9._-]+, no empty, "." or
 * ".." segment) whose last segment is not a sub-resource name (versions,
 * config, undelete, destroy, rotate). */
bool sv_secret_path_usable(const char *path, size_t len);
/** Whether prefix is a valid list prefix: 0..512 bytes of [A-Za-z0-9._/-]. */
bool sv_secret_prefix_valid(const char *prefix, size_t len);

/* ---- values ---- */

/** Checks a metadata object (custom_metadata too): at most 64 members, keys
 * 1..128 bytes, string values up to 1024 bytes. NULL is fine. On SV_EINVAL
 * field gets the offending member ("metadata.owner", or name itself). */
sv_err_t sv_secret_check_metadata(const sv_json_t *md, const char *name, char *field, size_t cap);
/** Appends the plaintext of a version, `"value":V,"metadata":M`, to out (a
 * secure buffer). value must be a string or an object; its size (the string's
 * bytes, or the object's compact JSON) may not exceed max. Errors: SV_EINVAL
 * (wrong type), SV_ETOOBIG, SV_ENOMEM. */
sv_err_t sv_secret_plaintext(sv_buf_t *out, const sv_json_t *value, const sv_json_t *metadata, size_t max);

/* ---- records ---- */

typedef enum { SV_VSTATE_ACTIVE = 0, SV_VSTATE_DELETED = 1, SV_VSTATE_DESTROYED = 2 } sv_vstate_t;

/** The name of a state: "active", "deleted", "destroyed". */
const char *sv_vstate_name(uint8_t state);

typedef struct {
    uint64_t current; /* the latest version number */
    uint64_t oldest;  /* the lowest version still stored */
    int64_t created_us, updated_us;
    uint32_t max_versions;        /* 0: keep every version */
    int64_t rotation_interval_ms; /* 0: no rotation settings */
    int64_t rotation_notify_ms;
    sv_bytes_t custom_metadata; /* JSON object text; points into the record */
    sv_bytes_t full_path;       /* paths too long for a key; else empty */
} sv_secret_head_t;

typedef struct {
    uint8_t state; /* sv_vstate_t */
    uint32_t key_id;
    int64_t created_us, deleted_us, destroyed_us; /* 0 when not */
    sv_bytes_t created_by;                        /* points into the record */
    sv_bytes_t sealed;                            /* nonce || ciphertext || tag; empty once destroyed */
} sv_secret_version_t;

/** The head of o's secret path. Views point into the transaction's map.
 * Errors: SV_ENOTFOUND, SV_ECORRUPT, SV_EIO. */
sv_err_t sv_secret_head_get(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, sv_secret_head_t *out);
/** Version v of o's secret path. Same errors. */
sv_err_t sv_secret_version_get(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, uint64_t v,
                               sv_secret_version_t *out);

/** The latest version of o's secret path (one B-tree descent, without the
 * head): its number in *v. Same errors. */
sv_err_t sv_secret_latest_get(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, uint64_t *v,
                              sv_secret_version_t *out);

/* ---- sealing ---- */

/** Seals plaintext for (o, path, version) under k into out (plain memory:
 * ciphertext), replacing its contents. SV_ENOMEM, SV_EINVAL (path too long). */
sv_err_t sv_secret_seal(sv_buf_t *out, const sv_owner_t *o, const char *path, size_t len, uint64_t version,
                        const sv_dkey_t *k, const uint8_t *pt, size_t pt_len);
/** Opens version v (ver) of o's path with k, appending the plaintext to out
 * (a secure buffer). Errors: SV_EDESTROYED (no ciphertext), SV_ECRYPTO (does
 * not open: wrong key, moved, tampered: out is left as it was, the bytes
 * written wiped), SV_ENOMEM. */
SV_MUST_CHECK sv_err_t sv_secret_open(sv_buf_t *out, const sv_owner_t *o, const char *path, size_t len, uint64_t v,
                                      const sv_secret_version_t *ver, const sv_dkey_t *k);
/** Writes the read representation of version v as a JSON object:
 * {path, version, value, metadata, created_at, created_by}. display_path is
 * the path shown (the same path for tenants). Same errors as sv_secret_open;
 * on error the object is incomplete and out must be discarded. */
SV_MUST_CHECK sv_err_t sv_secret_read_json(sv_jw_t *jw, const sv_owner_t *o, const char *path, size_t len, uint64_t v,
                                           const sv_secret_version_t *ver, const sv_dkey_t *k);
/** Appends one /versions item {version, state, created_at, created_by,
 * deleted_at, destroyed_at} to jw. */
void sv_secret_version_json(sv_jw_t *jw, uint64_t v, const sv_secret_version_t *ver);
/** Appends the config members max_versions, rotation, custom_metadata of h. */
void sv_secret_config_json(sv_jw_t *jw, const sv_secret_head_t *h);
/** Formats a duration in ms as "30d", "12h", "15m", "45s" or "250ms" (the
 * largest exact unit). out: at least 24 bytes. */
void sv_duration_format(char *out, size_t cap, int64_t ms);

/* ---- changes (inside a writer unit's apply) ---- */

typedef struct {
    /* in */
    const sv_owner_t *owner;
    const char *path;
    size_t path_len;
    const uint8_t *plaintext; /* secure memory, the caller's */
    size_t plaintext_len;
    const sv_dkey_t *key; /* pinned by the caller; the owner's stored key */
    int64_t cas;          /* -1: none; 0: only if the secret does not exist */
    const char *created_by;
    /* sealed on the worker for sealed_version (sv_secret_put_prepare); apply
     * seals again only when another write took that number meanwhile */
    sv_buf_t sealed;
    uint64_t sealed_version;
    /* out */
    uint64_t version;
    int64_t created_us;
    bool created;     /* the secret had no head: 201 */
    bool key_changed; /* SV_ECONFLICT because op->key is not the owner's key any more */
} sv_secret_put_t;

/** Seals op for the version after the one tx (a read transaction on the
 * worker) sees. SV_ENOMEM, SV_ECORRUPT, SV_EIO. */
sv_err_t sv_secret_put_prepare(sv_txn_t *tx, sv_secret_put_t *op);
/** Writes a new version. Returns SV_OK; SV_ECONFLICT (cas does not match,
 * or, with op->key_changed, the owner's data key is not op->key any more: the
 * owner was deleted and written again meanwhile); SV_EDELETED (the owner's
 * key was shredded: it is being deleted); store errors. */
sv_err_t sv_secret_put_apply(sv_wtxn_t *tx, sv_secret_put_t *op);
/** Frees what prepare allocated. */
void sv_secret_put_free(sv_secret_put_t *op);

typedef enum { SV_VOP_DELETE, SV_VOP_UNDELETE, SV_VOP_DESTROY } sv_vop_t;

typedef struct {
    const sv_owner_t *owner;
    const char *path;
    size_t path_len;
    sv_vop_t op;
    const uint64_t *versions; /* NULL: the latest (delete only) */
    size_t n_versions;
    size_t changed; /* out */
} sv_secret_vop_t;

/** Soft-deletes, undeletes or destroys versions. Versions that do not exist
 * (never written or pruned) are skipped; destroyed ones stay destroyed.
 * SV_ENOTFOUND when the secret does not exist. */
sv_err_t sv_secret_vop_apply(sv_wtxn_t *tx, sv_secret_vop_t *op);

/** Removes the secret and every version. SV_ENOTFOUND when absent. */
sv_err_t sv_secret_purge_apply(sv_wtxn_t *tx, const sv_owner_t *o, const char *path, size_t len);

typedef struct {
    const sv_owner_t *owner;
    const char *path;
    size_t path_len;
    bool set_max_versions;
    uint32_t max_versions;
    bool set_rotation; /* interval 0: clear */
    int64_t rotation_interval_ms, rotation_notify_ms;
    bool set_custom_metadata;
    const char *custom_metadata; /* JSON object text */
    size_t custom_metadata_len;
    /* out: the config after the change */
    uint32_t out_max_versions;
    int64_t out_interval_ms, out_notify_ms;
    sv_buf_t out_custom_metadata;
    uint64_t out_current, pruned;
} sv_secret_config_t;

/** Changes a secret's settings; a lower max_versions prunes the oldest
 * versions now. SV_ENOTFOUND when the secret does not exist. */
sv_err_t sv_secret_config_apply(sv_wtxn_t *tx, sv_secret_config_t *op);

/* ---- listing ---- */

typedef struct {
    sv_iter_t it;
    sv_key_t prefix, seek;
    const char *full_prefix; /* the caller's, outlives the iterator */
    size_t full_prefix_len;
    size_t path_off; /* where the path starts in a key */
    bool open;
} sv_secret_iter_t;

/** Walks o's secret paths that start with prefix, in storage order (byte
 * order of the paths, except that paths over 380 bytes sort by their first
 * 340 bytes), after the path `after` (NULL: from the start). prefix and after
 * must outlive the iterator. */
sv_err_t sv_secret_iter_open(sv_secret_iter_t *si, sv_txn_t *tx, const sv_owner_t *o, const char *prefix,
                             size_t prefix_len, const char *after, size_t after_len);
/** The next path (a view valid until the next call). SV_ENOTFOUND at the end. */
sv_err_t sv_secret_iter_next(sv_secret_iter_t *si, sv_bytes_t *path);
void sv_secret_iter_close(sv_secret_iter_t *si);

/** Makes an opaque cursor (base64url text, NUL-terminated, into out of cap
 * bytes): payload sealed under k, bound to o, kind and scope. SV_ETOOBIG. */
sv_err_t sv_secret_cursor_make(char *out, size_t cap, const sv_dkey_t *k, const char *kind, const sv_owner_t *o,
                               const char *scope, size_t scope_len, const void *payload, size_t len);
/** The key id a cursor was made with, or 0 when it is malformed. */
uint32_t sv_secret_cursor_key_id(const char *cursor, size_t len);
/** Opens a cursor made by sv_secret_cursor_make with the same k, kind, o and
 * scope into payload (cap bytes). SV_EINVAL when it is malformed, was made
 * for another owner, kind or scope, or was tampered with. */
SV_MUST_CHECK sv_err_t sv_secret_cursor_open(void *payload, size_t cap, size_t *len, const char *cursor,
                                             size_t cursor_len, const sv_dkey_t *k, const char *kind,
                                             const sv_owner_t *o, const char *scope, size_t scope_len);

/* ---- deleting an owner (DELETE /v1/tenants/{id}) ---- */

/** One bounded step of deleting o: on the first step, crypto-shreds o's data
 * key (sv_keyring_apply_shred); then deletes up to SV_OWNER_DELETE_BATCH
 * records of o's secrets and versions; when none are left, removes the
 * tombstone and sets *finished. SV_ENOTFOUND (first step) when o has neither a
 * key nor data. */
sv_err_t sv_secrets_owner_delete_apply(sv_wtxn_t *tx, const sv_owner_t *o, bool first, bool *finished, size_t *deleted);
/** Continues deleting o's data in the background, one writer unit at a time,
 * until done (or the writer stops: it resumes at the next start). Any thread. */
sv_err_t sv_secrets_owner_delete_continue(sv_writer_t *w, const sv_owner_t *o);
/** At start: resumes the deletion of every owner whose key was shredded but
 * whose data is not gone yet. Returns how many via *resumed. */
sv_err_t sv_secrets_resume_deletions(sv_store_t *st, sv_writer_t *w, unsigned *resumed);

struct sv_app;
/** The server part: resumes the deletions a stop interrupted. Must start after
 * the audit part (it submits writer units). */
sv_err_t sv_secrets_part_init(struct sv_app *app, char *msg, size_t msglen);

#endif
