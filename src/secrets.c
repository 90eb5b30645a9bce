/*
 * secrets.c - the secrets domain (secrets.h): records, sealing, changes,
 * listing, cursors, and deleting an owner's data.
 *
 * The design choice that shapes this file is *where* a version is sealed.
 * The version number is decided on the writer thread (two writers of one
 * path race for it), and the number is bound into the ciphertext. Sealing on
 * the writer would put every seal on the one thread that all writes share, so
 * the worker seals for the version it expects (current + 1 in its read
 * snapshot) and the unit's apply checks the number: only when another write
 * took it meanwhile does apply seal again, with the plaintext and the pinned
 * key the op carries (secure memory owned by the request). Typical cost on
 * the writer: a few record reads and puts.
 *
 * A version's plaintext is stored as the JSON text `"value":V,"metadata":M`,
 * so a read opens it straight into the secure response buffer: no parse, no
 * copy of the plaintext anywhere else.
 *
 * Threads: read helpers on any thread with a read transaction; *_apply on the
 * writer; the owner-deletion loop completes on the writer thread.
 */
#include "sv_autoconf.h"

#include "src/secrets.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/app.h"
#include "src/log.h"
#include "src/pattern.h"
#include "src/seal.h"
#include "store/record.h"

#define HEAD_FORMAT 1
#define VERSION_FORMAT 1

/* ---- paths ---- */

static bool path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

/* The router uses these as the last segment of sub-resources
 * (/v1/secrets/{path}/versions, ...), so no secret may end with one. */
static const char *const reserved_last[] = {"versions", "config", "undelete", "destroy", "rotate"};

bool sv_secret_path_usable(const char *path, size_t len)
{
    if (!sv_secret_path_valid(path, len)) /* API.md's rules (src/pattern.c) */
        return false;
    const char *slash = memrchr(path, '/', len);
    const char *last = slash != NULL ? slash + 1 : path;
    size_t n = len - (size_t)(last - path);
    for (size_t r = 0; r < SV_ARRAY_LEN(reserved_last); r++)
        if (strlen(reserved_last[r]) == n && memcmp(last, reserved_last[r], n) == 0)
            return false;
    return true;
}

bool sv_secret_prefix_valid(const char *prefix, size_t len)
{
    if (len > SV_SECRET_PATH_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!path_char(prefix[i]) && prefix[i] != '/')
            return false;
    return true;
}

/* ---- values ---- */

sv_err_t sv_secret_check_metadata(const sv_json_t *md, const char *name, char *field, size_t cap)
{
    snprintf(field, cap, "%s", name);
    if (md == NULL || md->type == SV_JSON_NULL)
        return SV_OK;
    if (md->type != SV_JSON_OBJECT || md->u.kids.n > SV_SECRET_METADATA_MAX_KEYS)
        return SV_EINVAL;
    for (const sv_json_t *m = md->u.kids.first; m != NULL; m = m->next) {
        if (m->key_len == 0 || m->key_len > SV_SECRET_METADATA_KEY_MAX || memchr(m->key, 0, m->key_len) != NULL)
            return SV_EINVAL;
        if (m->type != SV_JSON_STRING || m->u.str.len > SV_SECRET_METADATA_VALUE_MAX) {
            snprintf(field, cap, "%s.%.*s", name, (int)m->key_len, m->key);
            return SV_EINVAL;
        }
    }
    return SV_OK;
}

sv_err_t sv_secret_plaintext(sv_buf_t *out, const sv_json_t *value, const sv_json_t *metadata, size_t max)
{
    if (value == NULL || (value->type != SV_JSON_STRING && value->type != SV_JSON_OBJECT))
        return SV_EINVAL;
    if (value->type == SV_JSON_STRING && value->u.str.len > max)
        return SV_ETOOBIG;
    sv_buf_puts(out, "\"value\":");
    size_t start = out->len;
    if (value->type == SV_JSON_STRING) {
        sv_jw_t jw;
        sv_jw_init(&jw, out);
        sv_jw_str(&jw, value->u.str.s, value->u.str.len);
    } else {
        sv_json_serialize(value, out);
        if (out->len - start > max)
            return SV_ETOOBIG;
    }
    sv_buf_puts(out, ",\"metadata\":");
    if (metadata != NULL && metadata->type == SV_JSON_OBJECT)
        sv_json_serialize(metadata, out);
    else
        sv_buf_puts(out, "{}");
    return out->failed ? SV_ENOMEM : SV_OK;
}

/* ---- records ---- */

const char *sv_vstate_name(uint8_t state)
{
    switch (state) {
    case SV_VSTATE_ACTIVE:
        return "active";
    case SV_VSTATE_DELETED:
        return "deleted";
    case SV_VSTATE_DESTROYED:
        return "destroyed";
    default:
        return "unknown";
    }
}

/* A path as a key part. LMDB keys hold at most 511 bytes, and the owner (up
 * to 80) and a version (8) come with the path, so paths longer than
 * KEY_PATH_VERBATIM bytes are stored as their first KEY_PATH_KEEP bytes, a
 * 0x01 byte (which no path contains), and the hex BLAKE2b-128 of the whole
 * path; the head record then holds the full path. Listing stays in byte order
 * except among long paths that share their first KEY_PATH_KEEP bytes. */
#define KEY_PATH_VERBATIM 380
#define KEY_PATH_KEEP 340
#define KEY_PATH_HASHED 0x01

static void path_part(sv_key_t *k, const char *path, size_t len)
{
    if (len <= KEY_PATH_VERBATIM) {
        sv_key_str(k, path, len);
        return;
    }
    uint8_t h[16];
    char hex[33];
    crypto_generichash(h, sizeof(h), (const uint8_t *)path, len, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    sv_key_raw(k, path, KEY_PATH_KEEP);
    sv_key_u8(k, KEY_PATH_HASHED);
    sv_key_str(k, hex, 32);
}

static void head_key(sv_key_t *k, const sv_owner_t *o, const char *path, size_t len)
{
    sv_key_init(k);
    sv_key_str(k, o->id, o->len);
    path_part(k, path, len);
}

static void version_key(sv_key_t *k, const sv_owner_t *o, const char *path, size_t len, uint64_t v)
{
    head_key(k, o, path, len);
    sv_key_u64(k, v);
}

static sv_err_t decode_head(sv_bytes_t v, sv_secret_head_t *h)
{
    sv_recr_t r;
    if (sv_recr_init(&r, v) != HEAD_FORMAT)
        return SV_ECORRUPT;
    h->current = sv_recr_u64(&r);
    h->oldest = sv_recr_u64(&r);
    h->created_us = sv_recr_i64(&r);
    h->updated_us = sv_recr_i64(&r);
    h->max_versions = sv_recr_u32(&r);
    h->rotation_interval_ms = sv_recr_i64(&r);
    h->rotation_notify_ms = sv_recr_i64(&r);
    h->custom_metadata = sv_recr_bytes(&r);
    h->full_path = sv_recr_bytes(&r);
    return sv_recr_result(&r);
}

static sv_err_t put_head(sv_wtxn_t *tx, const sv_key_t *k, const sv_secret_head_t *h, const char *path, size_t len)
{
    sv_recw_t w;
    sv_recw_init(&w, HEAD_FORMAT);
    sv_recw_u64(&w, h->current);
    sv_recw_u64(&w, h->oldest);
    sv_recw_i64(&w, h->created_us);
    sv_recw_i64(&w, h->updated_us);
    sv_recw_u32(&w, h->max_versions);
    sv_recw_i64(&w, h->rotation_interval_ms);
    sv_recw_i64(&w, h->rotation_notify_ms);
    sv_recw_bytes(&w, h->custom_metadata.base, h->custom_metadata.len);
    sv_recw_bytes(&w, path, len > KEY_PATH_VERBATIM ? len : 0); /* the key holds only a digest */
    sv_bytes_t rec;
    sv_err_t err = sv_recw_result(&w, &rec);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_SECRETS, sv_key_bytes(k), rec);
    sv_recw_free(&w);
    return err;
}

static sv_err_t decode_version(sv_bytes_t v, sv_secret_version_t *out)
{
    sv_recr_t r;
    if (sv_recr_init(&r, v) != VERSION_FORMAT)
        return SV_ECORRUPT;
    out->state = sv_recr_u8(&r);
    out->key_id = sv_recr_u32(&r);
    out->created_us = sv_recr_i64(&r);
    out->deleted_us = sv_recr_i64(&r);
    out->destroyed_us = sv_recr_i64(&r);
    out->created_by = sv_recr_bytes(&r);
    out->sealed = sv_recr_bytes(&r);
    if (sv_recr_result(&r) != SV_OK || out->state > SV_VSTATE_DESTROYED)
        return SV_ECORRUPT;
    return SV_OK;
}

static sv_err_t put_version(sv_wtxn_t *tx, const sv_key_t *k, const sv_secret_version_t *ver)
{
    sv_recw_t w;
    sv_recw_init(&w, VERSION_FORMAT);
    sv_recw_u8(&w, ver->state);
    sv_recw_u32(&w, ver->key_id);
    sv_recw_i64(&w, ver->created_us);
    sv_recw_i64(&w, ver->deleted_us);
    sv_recw_i64(&w, ver->destroyed_us);
    sv_recw_bytes(&w, ver->created_by.base, ver->created_by.len);
    sv_recw_bytes(&w, ver->sealed.base, ver->sealed.len);
    sv_bytes_t rec;
    sv_err_t err = sv_recw_result(&w, &rec);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_VERSIONS, sv_key_bytes(k), rec);
    sv_recw_free(&w);
    return err;
}

sv_err_t sv_secret_head_get(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, sv_secret_head_t *out)
{
    sv_key_t k;
    head_key(&k, o, path, len);
    if (k.overflow)
        return SV_ENOTFOUND;
    sv_bytes_t v;
    sv_err_t err = sv_txn_get(tx, SV_DB_SECRETS, sv_key_bytes(&k), &v);
    return err == SV_OK ? decode_head(v, out) : err;
}

sv_err_t sv_secret_version_get(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, uint64_t v,
                               sv_secret_version_t *out)
{
    sv_key_t k;
    version_key(&k, o, path, len, v);
    if (k.overflow)
        return SV_ENOTFOUND;
    sv_bytes_t val;
    sv_err_t err = sv_txn_get(tx, SV_DB_VERSIONS, sv_key_bytes(&k), &val);
    return err == SV_OK ? decode_version(val, out) : err;
}

sv_err_t sv_secret_latest_get(sv_txn_t *tx, const sv_owner_t *o, const char *path, size_t len, uint64_t *v,
                              sv_secret_version_t *out)
{
    /* the versions of a path share the head key as prefix and sort by
     * number: the last one is the latest (pruning only removes the oldest) */
    sv_key_t prefix;
    head_key(&prefix, o, path, len);
    if (prefix.overflow)
        return SV_ENOTFOUND;
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_VERSIONS, sv_key_bytes(&prefix), SV_BYTES(NULL, 0), true, &it);
    if (err != SV_OK)
        return err;
    sv_bytes_t k, val;
    err = sv_iter_next(&it, &k, &val);
    if (err == SV_OK && k.len != prefix.len + 8)
        err = SV_ECORRUPT;
    if (err == SV_OK) {
        *v = sv_get_be64(k.base + prefix.len);
        err = decode_version(val, out);
    }
    sv_iter_close(&it);
    return err;
}

/* ---- sealing ---- */

sv_err_t sv_secret_seal(sv_buf_t *out, const sv_owner_t *o, const char *path, size_t len, uint64_t version,
                        const sv_dkey_t *k, const uint8_t *pt, size_t pt_len)
{
    uint8_t aad[SV_SEAL_AAD_MAX];
    size_t aad_len = sv_seal_aad_version(aad, o->id, o->len, path, len, version, sv_dkey_id(k));
    if (aad_len == 0)
        return SV_EINVAL;
    out->len = 0;
    if (!sv_buf_reserve(out, pt_len + SV_SEAL_OVERHEAD))
        return SV_ENOMEM;
    sv_seal(out->base, pt, pt_len, aad, aad_len, sv_dkey_bytes(k));
    out->len = pt_len + SV_SEAL_OVERHEAD;
    return SV_OK;
}

sv_err_t sv_secret_open(sv_buf_t *out, const sv_owner_t *o, const char *path, size_t len, uint64_t v,
                        const sv_secret_version_t *ver, const sv_dkey_t *k)
{
    if (ver->state == SV_VSTATE_DESTROYED || ver->sealed.len == 0)
        return SV_EDESTROYED;
    if (ver->sealed.len < SV_SEAL_OVERHEAD || sv_dkey_id(k) != ver->key_id)
        return SV_ECRYPTO;
    uint8_t aad[SV_SEAL_AAD_MAX];
    size_t aad_len = sv_seal_aad_version(aad, o->id, o->len, path, len, v, ver->key_id);
    if (aad_len == 0)
        return SV_ECRYPTO;
    if (!sv_buf_reserve(out, ver->sealed.len - SV_SEAL_OVERHEAD))
        return SV_ENOMEM;
    size_t n;
    sv_err_t err =
        sv_seal_open(out->base + out->len, &n, ver->sealed.base, ver->sealed.len, aad, aad_len, sv_dkey_bytes(k));
    if (err != SV_OK)
        return err;
    out->len += n;
    return SV_OK;
}

sv_err_t sv_secret_read_json(sv_jw_t *jw, const sv_owner_t *o, const char *path, size_t len, uint64_t v,
                             const sv_secret_version_t *ver, const sv_dkey_t *k)
{
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "path");
    sv_jw_str(jw, path, len);
    sv_jw_key(jw, "version");
    sv_jw_uint(jw, v);
    sv_buf_putc(jw->out, ',');
    sv_err_t err = sv_secret_open(jw->out, o, path, len, v, ver, k);
    if (err != SV_OK)
        return err;
    sv_jw_key(jw, "created_at");
    sv_jw_time(jw, ver->created_us / 1000000);
    sv_jw_key(jw, "created_by");
    sv_jw_str(jw, (const char *)ver->created_by.base, ver->created_by.len);
    sv_jw_obj_end(jw);
    return jw->out->failed ? SV_ENOMEM : SV_OK;
}

static void time_or_null(sv_jw_t *jw, const char *key, int64_t us)
{
    sv_jw_key(jw, key);
    if (us != 0)
        sv_jw_time(jw, us / 1000000);
    else
        sv_jw_null(jw);
}

void sv_secret_version_json(sv_jw_t *jw, uint64_t v, const sv_secret_version_t *ver)
{
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "version");
    sv_jw_uint(jw, v);
    sv_jw_key(jw, "state");
    sv_jw_cstr(jw, sv_vstate_name(ver->state));
    time_or_null(jw, "created_at", ver->created_us);
    sv_jw_key(jw, "created_by");
    sv_jw_str(jw, (const char *)ver->created_by.base, ver->created_by.len);
    time_or_null(jw, "deleted_at", ver->deleted_us);
    time_or_null(jw, "destroyed_at", ver->destroyed_us);
    sv_jw_obj_end(jw);
}

void sv_duration_format(char *out, size_t cap, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < SV_ARRAY_LEN(units); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(out, cap, "%lldms", (long long)ms);
}

void sv_secret_config_json(sv_jw_t *jw, const sv_secret_head_t *h)
{
    sv_jw_key(jw, "max_versions");
    sv_jw_uint(jw, h->max_versions);
    sv_jw_key(jw, "rotation");
    if (h->rotation_interval_ms > 0) {
        char d[32];
        sv_jw_obj_begin(jw);
        sv_jw_key(jw, "interval");
        sv_duration_format(d, sizeof(d), h->rotation_interval_ms);
        sv_jw_cstr(jw, d);
        sv_jw_key(jw, "notify_before");
        if (h->rotation_notify_ms > 0) {
            sv_duration_format(d, sizeof(d), h->rotation_notify_ms);
            sv_jw_cstr(jw, d);
        } else {
            sv_jw_null(jw);
        }
        sv_jw_obj_end(jw);
    } else {
        sv_jw_null(jw);
    }
    sv_jw_key(jw, "custom_metadata");
    if (h->custom_metadata.len > 0)
        sv_jw_raw(jw, h->custom_metadata.base, h->custom_metadata.len);
    else
        sv_jw_raw(jw, "{}", 2);
}

/* ---- changes ---- */

/* Deletes versions [from, to] of a path. */
static sv_err_t delete_versions(sv_wtxn_t *tx, const sv_owner_t *o, const char *path, size_t len, uint64_t from,
                                uint64_t to)
{
    for (uint64_t v = from; v <= to && v != 0; v++) {
        sv_key_t k;
        version_key(&k, o, path, len, v);
        sv_err_t err = sv_wtxn_del(tx, SV_DB_VERSIONS, sv_key_bytes(&k));
        if (err != SV_OK && err != SV_ENOTFOUND)
            return err;
    }
    return SV_OK;
}

/* Prunes the oldest versions so that at most h->max_versions remain. */
static sv_err_t prune(sv_wtxn_t *tx, const sv_owner_t *o, const char *path, size_t len, sv_secret_head_t *h,
                      uint64_t *pruned)
{
    *pruned = 0;
    if (h->max_versions == 0 || h->current < h->oldest || h->current - h->oldest + 1 <= h->max_versions)
        return SV_OK;
    uint64_t new_oldest = h->current - h->max_versions + 1;
    sv_err_t err = delete_versions(tx, o, path, len, h->oldest, new_oldest - 1);
    if (err != SV_OK)
        return err;
    *pruned = new_oldest - h->oldest;
    h->oldest = new_oldest;
    return SV_OK;
}

sv_err_t sv_secret_put_prepare(sv_txn_t *tx, sv_secret_put_t *op)
{
    sv_secret_head_t h;
    sv_err_t err = sv_secret_head_get(tx, op->owner, op->path, op->path_len, &h);
    if (err != SV_OK && err != SV_ENOTFOUND)
        return err;
    op->sealed_version = err == SV_OK ? h.current + 1 : 1;
    return sv_secret_seal(&op->sealed, op->owner, op->path, op->path_len, op->sealed_version, op->key, op->plaintext,
                          op->plaintext_len);
}

sv_err_t sv_secret_put_apply(sv_wtxn_t *tx, sv_secret_put_t *op)
{
    op->version = 0;
    op->created = op->key_changed = false;
    sv_err_t err = sv_keyring_apply_use(tx, op->owner, op->key, NULL);
    if (err == SV_ECONFLICT)
        op->key_changed = true;
    if (err != SV_OK)
        return err;
    sv_key_t hk;
    head_key(&hk, op->owner, op->path, op->path_len);
    if (hk.overflow)
        return SV_EINVAL;
    sv_secret_head_t h;
    sv_bytes_t hv;
    err = sv_txn_get(sv_wtxn_txn(tx), SV_DB_SECRETS, sv_key_bytes(&hk), &hv);
    if (err == SV_ENOTFOUND) {
        memset(&h, 0, sizeof(h));
        h.oldest = 1;
        h.max_versions = SV_SECRET_DEFAULT_MAX_VERSIONS;
        h.created_us = sv_wtxn_now_us(tx);
        op->created = true;
    } else if (err != SV_OK || (err = decode_head(hv, &h)) != SV_OK) {
        return err;
    }
    if (op->cas >= 0 && (uint64_t)op->cas != h.current)
        return SV_ECONFLICT;
    /* the custom metadata view points into the map, which the puts below may
     * move: copy it first */
    uint8_t *custom = NULL;
    if (h.custom_metadata.len > 0) {
        if ((custom = malloc(h.custom_metadata.len)) == NULL)
            return SV_ENOMEM;
        memcpy(custom, h.custom_metadata.base, h.custom_metadata.len);
        h.custom_metadata.base = custom;
    }
    uint64_t v = h.current + 1;
    if (v != op->sealed_version) {
        /* another write took the expected number: seal again for this one */
        op->sealed_version = v;
        if ((err = sv_secret_seal(&op->sealed, op->owner, op->path, op->path_len, v, op->key, op->plaintext,
                                  op->plaintext_len)) != SV_OK)
            goto free_custom;
    }
    int64_t now = sv_wtxn_now_us(tx);
    sv_secret_version_t ver = {.state = SV_VSTATE_ACTIVE,
                               .key_id = sv_dkey_id(op->key),
                               .created_us = now,
                               .created_by = SV_BYTES(op->created_by, strlen(op->created_by)),
                               .sealed = SV_BYTES(op->sealed.base, op->sealed.len)};
    sv_key_t vk;
    version_key(&vk, op->owner, op->path, op->path_len, v);
    if ((err = put_version(tx, &vk, &ver)) != SV_OK)
        goto free_custom;
    h.current = v;
    h.updated_us = now;
    uint64_t pruned;
    if ((err = prune(tx, op->owner, op->path, op->path_len, &h, &pruned)) != SV_OK)
        goto free_custom;
    if ((err = put_head(tx, &hk, &h, op->path, op->path_len)) != SV_OK)
        goto free_custom;
    op->version = v;
    op->created_us = now;
free_custom:
    free(custom);
    return err;
}

void sv_secret_put_free(sv_secret_put_t *op)
{
    sv_buf_free(&op->sealed);
}

/* Reads and decodes one version for a change, copying it so it can be written back. */
static sv_err_t vop_one(sv_wtxn_t *tx, sv_secret_vop_t *op, uint64_t v, int64_t now)
{
    sv_key_t k;
    version_key(&k, op->owner, op->path, op->path_len, v);
    sv_bytes_t raw;
    sv_err_t err = sv_txn_get(sv_wtxn_txn(tx), SV_DB_VERSIONS, sv_key_bytes(&k), &raw);
    if (err == SV_ENOTFOUND)
        return SV_OK; /* never written, or pruned */
    if (err != SV_OK)
        return err;
    uint8_t *copy = malloc(raw.len);
    if (copy == NULL)
        return SV_ENOMEM;
    memcpy(copy, raw.base, raw.len);
    sv_secret_version_t ver;
    if ((err = decode_version(SV_BYTES(copy, raw.len), &ver)) != SV_OK)
        goto free_copy;
    bool change = false;
    switch (op->op) {
    case SV_VOP_DELETE:
        if (ver.state == SV_VSTATE_ACTIVE) {
            ver.state = SV_VSTATE_DELETED;
            ver.deleted_us = now;
            change = true;
        }
        break;
    case SV_VOP_UNDELETE:
        if (ver.state == SV_VSTATE_DELETED) {
            ver.state = SV_VSTATE_ACTIVE;
            ver.deleted_us = 0;
            change = true;
        }
        break;
    case SV_VOP_DESTROY:
        if (ver.state != SV_VSTATE_DESTROYED) {
            ver.state = SV_VSTATE_DESTROYED;
            ver.destroyed_us = now;
            ver.sealed = SV_BYTES(NULL, 0); /* the ciphertext goes for good */
            change = true;
        }
        break;
    }
    if (change) {
        err = put_version(tx, &k, &ver);
        if (err == SV_OK)
            op->changed++;
    }
free_copy:
    sodium_memzero(copy, raw.len);
    free(copy);
    return err;
}

sv_err_t sv_secret_vop_apply(sv_wtxn_t *tx, sv_secret_vop_t *op)
{
    op->changed = 0;
    sv_secret_head_t h;
    sv_err_t err = sv_secret_head_get(sv_wtxn_txn(tx), op->owner, op->path, op->path_len, &h);
    if (err != SV_OK)
        return err;
    int64_t now = sv_wtxn_now_us(tx);
    if (op->versions == NULL)
        return vop_one(tx, op, h.current, now);
    for (size_t i = 0; i < op->n_versions; i++) {
        if (op->versions[i] < h.oldest || op->versions[i] > h.current)
            continue;
        if ((err = vop_one(tx, op, op->versions[i], now)) != SV_OK)
            return err;
    }
    return SV_OK;
}

sv_err_t sv_secret_purge_apply(sv_wtxn_t *tx, const sv_owner_t *o, const char *path, size_t len)
{
    sv_secret_head_t h;
    sv_err_t err = sv_secret_head_get(sv_wtxn_txn(tx), o, path, len, &h);
    if (err != SV_OK)
        return err;
    sv_key_t k;
    head_key(&k, o, path, len);
    size_t n;
    /* every version record of the path shares the head key as prefix */
    if ((err = sv_wtxn_del_prefix(tx, SV_DB_VERSIONS, sv_key_bytes(&k), &n)) != SV_OK)
        return err;
    return sv_wtxn_del(tx, SV_DB_SECRETS, sv_key_bytes(&k));
}

sv_err_t sv_secret_config_apply(sv_wtxn_t *tx, sv_secret_config_t *op)
{
    sv_buf_clear(&op->out_custom_metadata);
    op->pruned = 0;
    sv_secret_head_t h;
    sv_err_t err = sv_secret_head_get(sv_wtxn_txn(tx), op->owner, op->path, op->path_len, &h);
    if (err != SV_OK)
        return err;
    if (op->set_custom_metadata)
        sv_buf_append(&op->out_custom_metadata, op->custom_metadata, op->custom_metadata_len);
    else
        sv_buf_append(&op->out_custom_metadata, h.custom_metadata.base, h.custom_metadata.len);
    if (op->out_custom_metadata.failed)
        return SV_ENOMEM;
    h.custom_metadata = SV_BYTES(op->out_custom_metadata.base, op->out_custom_metadata.len);
    if (op->set_max_versions)
        h.max_versions = op->max_versions;
    if (op->set_rotation) {
        h.rotation_interval_ms = op->rotation_interval_ms;
        h.rotation_notify_ms = op->rotation_interval_ms > 0 ? op->rotation_notify_ms : 0;
    }
    h.updated_us = sv_wtxn_now_us(tx);
    if ((err = prune(tx, op->owner, op->path, op->path_len, &h, &op->pruned)) != SV_OK)
        return err;
    sv_key_t k;
    head_key(&k, op->owner, op->path, op->path_len);
    if ((err = put_head(tx, &k, &h, op->path, op->path_len)) != SV_OK)
        return err;
    op->out_max_versions = h.max_versions;
    op->out_interval_ms = h.rotation_interval_ms;
    op->out_notify_ms = h.rotation_notify_ms;
    op->out_current = h.current;
    return SV_OK;
}

/* ---- listing ---- */

sv_err_t sv_secret_iter_open(sv_secret_iter_t *si, sv_txn_t *tx, const sv_owner_t *o, const char *prefix,
                             size_t prefix_len, const char *after, size_t after_len)
{
    si->open = false;
    si->full_prefix = prefix;
    si->full_prefix_len = prefix_len;
    sv_key_init(&si->prefix);
    sv_key_str(&si->prefix, o->id, o->len);
    si->path_off = si->prefix.len;
    sv_key_raw(&si->prefix, prefix, prefix_len > KEY_PATH_KEEP ? KEY_PATH_KEEP : prefix_len);
    sv_key_init(&si->seek);
    if (after != NULL) {
        /* the smallest key after the key of `after` */
        head_key(&si->seek, o, after, after_len);
        sv_key_u8(&si->seek, 0);
    }
    if (si->prefix.overflow || si->seek.overflow)
        return SV_EINVAL;
    sv_err_t err = sv_iter_open(tx, SV_DB_SECRETS, sv_key_bytes(&si->prefix), sv_key_bytes(&si->seek), false, &si->it);
    si->open = err == SV_OK;
    return err;
}

sv_err_t sv_secret_iter_next(sv_secret_iter_t *si, sv_bytes_t *path)
{
    for (;;) {
        sv_bytes_t k, v;
        sv_err_t err = sv_iter_next(&si->it, &k, &v);
        if (err != SV_OK)
            return err;
        size_t off = si->path_off;
        if (!sv_key_read_str(k, &off, path) || off != k.len)
            return SV_ECORRUPT;
        if (memchr(path->base, KEY_PATH_HASHED, path->len) != NULL) {
            sv_secret_head_t h;
            if ((err = decode_head(v, &h)) != SV_OK || h.full_path.len == 0)
                return SV_ECORRUPT;
            *path = h.full_path;
        }
        /* a prefix longer than a key keeps of a path: compare the whole path */
        if (path->len >= si->full_prefix_len && memcmp(path->base, si->full_prefix, si->full_prefix_len) == 0)
            return SV_OK;
    }
}

void sv_secret_iter_close(sv_secret_iter_t *si)
{
    if (si->open)
        sv_iter_close(&si->it);
    si->open = false;
}

/* ---- cursors: base64url(u32 key id || nonce || sealed payload) ---- */

sv_err_t sv_secret_cursor_make(char *out, size_t cap, const sv_dkey_t *k, const char *kind, const sv_owner_t *o,
                               const char *scope, size_t scope_len, const void *payload, size_t len)
{
    uint8_t raw[4 + SV_SEAL_OVERHEAD + SV_SECRET_PATH_MAX + 16];
    uint8_t aad[SV_SEAL_AAD_MAX];
    if (len > SV_SECRET_PATH_MAX + 16)
        return SV_ETOOBIG;
    size_t aad_len = sv_seal_aad_cursor(aad, kind, o->id, o->len, scope, scope_len);
    if (aad_len == 0)
        return SV_ETOOBIG;
    sv_put_be32(raw, sv_dkey_id(k));
    sv_seal(raw + 4, payload, len, aad, aad_len, sv_dkey_bytes(k));
    size_t raw_len = 4 + SV_SEAL_OVERHEAD + len;
    if (sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > cap)
        return SV_ETOOBIG;
    sodium_bin2base64(out, cap, raw, raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return SV_OK;
}

static bool cursor_decode(const char *cursor, size_t clen, uint8_t *raw, size_t cap, size_t *raw_len)
{
    return clen > 0 && clen <= SV_SECRET_CURSOR_MAX &&
           sodium_base642bin(raw, cap, cursor, clen, NULL, raw_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
               0 &&
           *raw_len >= 4 + SV_SEAL_OVERHEAD;
}

uint32_t sv_secret_cursor_key_id(const char *cursor, size_t len)
{
    uint8_t raw[SV_SECRET_CURSOR_MAX];
    size_t raw_len;
    if (!cursor_decode(cursor, len, raw, sizeof(raw), &raw_len))
        return 0;
    return sv_get_be32(raw);
}

sv_err_t sv_secret_cursor_open(void *payload, size_t cap, size_t *len, const char *cursor, size_t cursor_len,
                               const sv_dkey_t *k, const char *kind, const sv_owner_t *o, const char *scope,
                               size_t scope_len)
{
    uint8_t raw[SV_SECRET_CURSOR_MAX];
    size_t raw_len;
    uint8_t aad[SV_SEAL_AAD_MAX];
    *len = 0;
    if (!cursor_decode(cursor, cursor_len, raw, sizeof(raw), &raw_len) || sv_get_be32(raw) != sv_dkey_id(k) ||
        raw_len - 4 - SV_SEAL_OVERHEAD > cap)
        return SV_EINVAL;
    size_t aad_len = sv_seal_aad_cursor(aad, kind, o->id, o->len, scope, scope_len);
    if (aad_len == 0 || sv_seal_open(payload, len, raw + 4, raw_len - 4, aad, aad_len, sv_dkey_bytes(k)) != SV_OK)
        return SV_EINVAL;
    return SV_OK;
}

/* ---- deleting an owner ---- */

/* Deletes up to budget records of o in db; *left is set when more remain. */
static sv_err_t delete_some(sv_wtxn_t *tx, sv_db_t db, const sv_owner_t *o, size_t budget, size_t *deleted, bool *left)
{
    sv_key_t prefix;
    sv_key_init(&prefix);
    sv_key_str(&prefix, o->id, o->len);
    typedef struct {
        uint8_t b[SV_KEY_MAX];
        size_t len;
    } key_copy_t;
    key_copy_t *keys = malloc(budget * sizeof(*keys));
    if (keys == NULL)
        return SV_ENOMEM;
    size_t n = 0;
    *left = false;
    sv_iter_t it;
    sv_err_t err = sv_iter_open(sv_wtxn_txn(tx), db, sv_key_bytes(&prefix), SV_BYTES(NULL, 0), false, &it);
    if (err == SV_OK) {
        sv_bytes_t k, v;
        while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
            if (n == budget) {
                *left = true;
                break;
            }
            memcpy(keys[n].b, k.base, k.len);
            keys[n].len = k.len;
            n++;
        }
        sv_iter_close(&it);
        if (err == SV_ENOTFOUND)
            err = SV_OK;
    }
    for (size_t i = 0; i < n && err == SV_OK; i++) {
        err = sv_wtxn_del(tx, db, SV_BYTES(keys[i].b, keys[i].len));
        if (err == SV_ENOTFOUND)
            err = SV_OK;
    }
    free(keys);
    *deleted += n;
    return err;
}

static bool owner_has_data(sv_txn_t *tx, const sv_owner_t *o)
{
    sv_key_t prefix;
    sv_key_init(&prefix);
    sv_key_str(&prefix, o->id, o->len);
    bool found = false;
    for (int db = 0; db < 2 && !found; db++) {
        sv_iter_t it;
        if (sv_iter_open(tx, db == 0 ? SV_DB_SECRETS : SV_DB_VERSIONS, sv_key_bytes(&prefix), SV_BYTES(NULL, 0), false,
                         &it) != SV_OK)
            continue;
        sv_bytes_t k, v;
        found = sv_iter_next(&it, &k, &v) == SV_OK;
        sv_iter_close(&it);
    }
    return found;
}

sv_err_t sv_secrets_owner_delete_apply(sv_wtxn_t *tx, const sv_owner_t *o, bool first, bool *finished, size_t *deleted)
{
    *finished = false;
    *deleted = 0;
    sv_err_t err;
    bool has_key = true;
    if (first) {
        err = sv_keyring_apply_shred(tx, o);
        if (err == SV_ENOTFOUND) {
            has_key = false;
            if (!owner_has_data(sv_wtxn_txn(tx), o))
                return SV_ENOTFOUND;
        } else if (err != SV_OK) {
            return err; /* SV_EDELETED: already being deleted */
        }
    }
    bool left_secrets = false, left_versions = false;
    if ((err = delete_some(tx, SV_DB_VERSIONS, o, SV_OWNER_DELETE_BATCH, deleted, &left_versions)) != SV_OK)
        return err;
    size_t budget = *deleted < SV_OWNER_DELETE_BATCH ? SV_OWNER_DELETE_BATCH - *deleted : 0;
    if (budget == 0)
        left_secrets = true;
    else if ((err = delete_some(tx, SV_DB_SECRETS, o, budget, deleted, &left_secrets)) != SV_OK)
        return err;
    if (left_secrets || left_versions)
        return SV_OK;
    if (has_key) {
        err = sv_keyring_apply_forget(tx, o);
        if (err != SV_OK && err != SV_ENOTFOUND)
            return err;
    }
    *finished = true;
    return SV_OK;
}

/* The background loop: one unit per batch, completing on the writer thread. */
typedef struct {
    sv_unit_t unit;
    sv_writer_t *w;
    sv_owner_t owner;
    bool finished;
    size_t deleted, total;
} deleter_t;

static sv_err_t deleter_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    deleter_t *d = u->arg;
    return sv_secrets_owner_delete_apply(tx, &d->owner, false, &d->finished, &d->deleted);
}

static void deleter_complete(sv_unit_t *u)
{
    deleter_t *d = u->arg;
    if (u->result != SV_OK) {
        sv_log_warn("deleting the data of %s stopped after %zu records: %s (it resumes at the next start)", d->owner.id,
                    d->total, sv_strerror(u->result));
        free(d);
        return;
    }
    d->total += d->deleted;
    if (d->finished) {
        sv_log_info("the data of %s is deleted (%zu records)", d->owner.id, d->total);
        free(d);
        return;
    }
    memset(&d->unit, 0, sizeof(d->unit));
    d->unit.apply = deleter_apply;
    d->unit.complete = deleter_complete;
    d->unit.arg = d;
    if (sv_writer_submit(d->w, &d->unit) != SV_OK)
        free(d); /* stopping: resumed at the next start */
}

sv_err_t sv_secrets_owner_delete_continue(sv_writer_t *w, const sv_owner_t *o)
{
    deleter_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return SV_ENOMEM;
    d->w = w;
    d->owner = *o;
    d->unit.apply = deleter_apply;
    d->unit.complete = deleter_complete;
    d->unit.arg = d;
    sv_err_t err = sv_writer_submit(w, &d->unit);
    if (err != SV_OK)
        free(d);
    return err;
}

typedef struct {
    sv_owner_t *owners;
    size_t n, cap;
    sv_err_t err;
} shredded_t;

/* Collects the owners whose data key is shredded (a deletion under way). */
static bool collect_shredded(void *arg, sv_bytes_t owner, const sv_keyrec_t *rec)
{
    shredded_t *c = arg;
    if (rec->state != SV_KEYREC_SHREDDED || owner.len >= SV_OWNER_MAX)
        return true;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        sv_owner_t *no = realloc(c->owners, cap * sizeof(*no));
        if (no == NULL) {
            c->err = SV_ENOMEM;
            return false;
        }
        c->owners = no;
        c->cap = cap;
    }
    memcpy(c->owners[c->n].id, owner.base, owner.len);
    c->owners[c->n].id[owner.len] = 0;
    c->owners[c->n].len = owner.len;
    c->n++;
    return true;
}

sv_err_t sv_secrets_resume_deletions(sv_store_t *st, sv_writer_t *w, unsigned *resumed)
{
    *resumed = 0;
    sv_store_reader_t *r;
    sv_err_t err = sv_store_reader_new(st, &r);
    if (err != SV_OK)
        return err;
    sv_txn_t *tx;
    if ((err = sv_store_read_begin(r, &tx)) != SV_OK) {
        sv_store_reader_free(r);
        return err;
    }
    /* collect first: the submissions must not run inside the read snapshot's walk */
    shredded_t c = {0};
    err = sv_keyring_each(tx, collect_shredded, &c);
    if (err == SV_OK)
        err = c.err;
    sv_owner_t *owners = c.owners;
    size_t n = c.n;
    sv_store_read_end(r);
    sv_store_reader_free(r);
    for (size_t i = 0; i < n && err == SV_OK; i++) {
        sv_log_info("resuming the deletion of the data of %s", owners[i].id);
        if ((err = sv_secrets_owner_delete_continue(w, &owners[i])) == SV_OK)
            (*resumed)++;
    }
    free(owners);
    return err;
}

sv_err_t sv_secrets_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    unsigned resumed;
    sv_err_t err = sv_secrets_resume_deletions(app->store, app->writer, &resumed);
    if (err != SV_OK)
        snprintf(msg, msglen, "cannot resume pending tenant deletions: %s", sv_strerror(err));
    return err;
}
