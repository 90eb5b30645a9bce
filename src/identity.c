/*
 * identity.c - the identity cache's storage (identity.h).
 *
 * Membership lives twice: in each group record's member list and in an index
 * row per (identity, group). Every write below updates both inside the same
 * unit, so readers on any snapshot see them agree. Membership sets are small
 * in practice (tens of groups per identity), so set differences are computed
 * with plain loops.
 *
 * Reads run on any thread in any transaction; writes only in a writer apply.
 */
#include "sv_autoconf.h"

#include "src/identity.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/key.h"
#include "store/record.h"

#define IDENTITY_RECORD_V1 1
#define GROUP_RECORD_V1 1
#define KIND_GROUP 1
#define KIND_MEMBERSHIP 2

static _Atomic uint64_t generation = 1;

uint64_t sv_identity_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}

void sv_identity_bump_generation(void)
{
    atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
}

bool sv_identity_id_valid(const char *s, size_t len)
{
    if (len == 0 || len >= SV_ID_MAX)
        return false;
    const char *colon = memchr(s, ':', len);
    if (colon == NULL || colon == s || colon == s + len - 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

bool sv_group_id_valid(const char *s, size_t len)
{
    if (len == 0 || len >= SV_GROUP_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == ':' || c == '@'))
            return false;
    }
    return true;
}

/* ---- keys ---- */

static void identity_key(sv_key_t *k, const char *tenant, const char *id)
{
    sv_key_init(k);
    sv_key_str(k, tenant, strlen(tenant));
    sv_key_str(k, id, strlen(id));
}

static void group_key(sv_key_t *k, const char *tenant, const char *id)
{
    sv_key_init(k);
    sv_key_str(k, tenant, strlen(tenant));
    sv_key_u8(k, KIND_GROUP);
    sv_key_str(k, id, strlen(id));
}

static void membership_prefix(sv_key_t *k, const char *tenant, const char *id)
{
    sv_key_init(k);
    sv_key_str(k, tenant, strlen(tenant));
    sv_key_u8(k, KIND_MEMBERSHIP);
    sv_key_str(k, id, strlen(id));
}

static void membership_key(sv_key_t *k, const char *tenant, const char *id, const char *group)
{
    membership_prefix(k, tenant, id);
    sv_key_str(k, group, strlen(group));
}

/* ---- records ---- */

static sv_err_t encode_identity(const sv_identity_rec_t *r, sv_recw_t *w)
{
    sv_recw_init(w, IDENTITY_RECORD_V1);
    sv_recw_u8(w, r->type);
    sv_recw_u8(w, r->source);
    sv_recw_u8(w, r->active ? 1 : 0);
    sv_recw_u32(w, r->roles);
    sv_recw_str(w, r->display_name);
    sv_recw_str(w, r->external_id);
    sv_recw_i64(w, r->updated_at);
    return w->failed ? SV_ENOMEM : SV_OK;
}

static sv_err_t decode_identity(sv_bytes_t v, const char *tenant, const char *id, sv_identity_rec_t *out)
{
    sv_recr_t r;
    if (sv_recr_init(&r, v) != IDENTITY_RECORD_V1)
        return SV_ECORRUPT;
    memset(out, 0, sizeof(*out));
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant);
    snprintf(out->id, sizeof(out->id), "%s", id);
    out->type = sv_recr_u8(&r);
    out->source = sv_recr_u8(&r);
    out->active = sv_recr_u8(&r) != 0;
    out->roles = sv_recr_u32(&r);
    sv_recr_str(&r, out->display_name, sizeof(out->display_name));
    sv_recr_str(&r, out->external_id, sizeof(out->external_id));
    out->updated_at = sv_recr_i64(&r);
    return sv_recr_result(&r);
}

/* A group record with its member list (heap array of heap strings). */
typedef struct {
    sv_group_rec_t g;
    char **members;
    size_t n;
} group_full_t;

static void group_full_free(group_full_t *gf)
{
    for (size_t i = 0; i < gf->n; i++)
        free(gf->members[i]);
    free(gf->members);
    gf->members = NULL;
    gf->n = 0;
}

static sv_err_t encode_group(const sv_group_rec_t *g, char *const *members, size_t n, sv_recw_t *w)
{
    sv_recw_init(w, GROUP_RECORD_V1);
    sv_recw_u8(w, g->source);
    sv_recw_str(w, g->display_name);
    sv_recw_str(w, g->external_id);
    sv_recw_i64(w, g->updated_at);
    sv_recw_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        sv_recw_str(w, members[i]);
    return w->failed ? SV_ENOMEM : SV_OK;
}

/* Decodes the header; when gf is not NULL also the member list. */
static sv_err_t decode_group(sv_bytes_t v, const char *tenant, const char *id, sv_group_rec_t *out, group_full_t *gf)
{
    sv_recr_t r;
    if (sv_recr_init(&r, v) != GROUP_RECORD_V1)
        return SV_ECORRUPT;
    memset(out, 0, sizeof(*out));
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant);
    snprintf(out->id, sizeof(out->id), "%s", id);
    out->source = sv_recr_u8(&r);
    sv_recr_str(&r, out->display_name, sizeof(out->display_name));
    sv_recr_str(&r, out->external_id, sizeof(out->external_id));
    out->updated_at = sv_recr_i64(&r);
    out->n_members = sv_recr_u32(&r);
    if (sv_recr_result(&r) != SV_OK || out->n_members > sv_recr_left(&r) / 4)
        return SV_ECORRUPT;
    if (gf == NULL)
        return SV_OK;
    gf->members = calloc(out->n_members ? out->n_members : 1, sizeof(char *));
    gf->n = 0;
    if (gf->members == NULL)
        return SV_ENOMEM;
    for (uint32_t i = 0; i < out->n_members; i++) {
        sv_bytes_t m = sv_recr_bytes(&r);
        if (r.failed)
            break;
        char *s = malloc(m.len + 1);
        if (s == NULL) {
            group_full_free(gf);
            return SV_ENOMEM;
        }
        memcpy(s, m.base, m.len);
        s[m.len] = 0;
        gf->members[gf->n++] = s;
    }
    if (sv_recr_result(&r) != SV_OK) {
        group_full_free(gf);
        return SV_ECORRUPT;
    }
    return SV_OK;
}

/* ---- reads ---- */

sv_err_t sv_identity_get(sv_txn_t *tx, const char *tenant, const char *id, sv_identity_rec_t *out)
{
    sv_key_t k;
    identity_key(&k, tenant, id);
    if (k.overflow)
        return SV_ENOTFOUND;
    sv_bytes_t v;
    sv_err_t err = sv_txn_get(tx, SV_DB_IDENTITIES, sv_key_bytes(&k), &v);
    if (err != SV_OK)
        return err;
    return decode_identity(v, tenant, id, out);
}

/* Reads group id into *out and, when gf is not NULL, its member list (see
 * decode_group). SV_ENOTFOUND when there is no such group. */
static sv_err_t group_read(sv_txn_t *tx, const char *tenant, const char *id, sv_group_rec_t *out, group_full_t *gf)
{
    sv_key_t k;
    group_key(&k, tenant, id);
    if (k.overflow)
        return SV_ENOTFOUND;
    sv_bytes_t v;
    sv_err_t err = sv_txn_get(tx, SV_DB_GROUPS, sv_key_bytes(&k), &v);
    if (err != SV_OK)
        return err;
    return decode_group(v, tenant, id, out, gf);
}

sv_err_t sv_group_get(sv_txn_t *tx, const char *tenant, const char *id, sv_group_rec_t *out)
{
    return group_read(tx, tenant, id, out, NULL);
}

static sv_err_t group_get_full(sv_txn_t *tx, const char *tenant, const char *id, group_full_t *gf)
{
    return group_read(tx, tenant, id, &gf->g, gf);
}

/* A walk over the rows of one database under a key prefix whose keys go on
 * with an id string: the walk of each listing below. */
typedef struct {
    sv_iter_t it;
    size_t prefix_len;
    size_t id_cap;
    char id[SV_ID_MAX]; /* the current row's id */
} id_walk_t;

/* Opens w on db under prefix, from the first key >= seek (NULL: from the
 * start); ids must be shorter than id_cap (at most SV_ID_MAX). prefix and
 * seek must outlive the walk. sv_iter_open's errors (SV_ENOTFOUND: no such
 * database); on success the caller closes w->it. */
static sv_err_t id_walk_open(id_walk_t *w, sv_txn_t *tx, sv_db_t db, const sv_key_t *prefix, const sv_key_t *seek,
                             size_t id_cap)
{
    w->prefix_len = prefix->len;
    w->id_cap = id_cap;
    return sv_iter_open(tx, db, sv_key_bytes(prefix), seek != NULL ? sv_key_bytes(seek) : (sv_bytes_t){0}, false,
                        &w->it);
}

/* The next row: w->id gets its id, *val its value (valid as for
 * sv_iter_next). SV_ENOTFOUND at the end, SV_ECORRUPT for a key without a
 * proper id. */
static sv_err_t id_walk_next(id_walk_t *w, sv_bytes_t *val)
{
    sv_bytes_t key, s;
    sv_err_t err = sv_iter_next(&w->it, &key, val);
    if (err != SV_OK)
        return err;
    size_t off = w->prefix_len;
    if (!sv_key_read_str(key, &off, &s) || s.len >= w->id_cap)
        return SV_ECORRUPT;
    memcpy(w->id, s.base, s.len);
    w->id[s.len] = 0;
    return SV_OK;
}

sv_err_t sv_identity_each_group(sv_txn_t *tx, const char *tenant, const char *id, sv_identity_each_fn fn, void *arg)
{
    sv_key_t prefix;
    membership_prefix(&prefix, tenant, id);
    if (prefix.overflow)
        return SV_OK;
    id_walk_t w;
    sv_err_t err = id_walk_open(&w, tx, SV_DB_GROUPS, &prefix, NULL, SV_GROUP_ID_MAX);
    if (err != SV_OK)
        return err;
    while ((err = id_walk_next(&w, NULL)) == SV_OK)
        if (!fn(arg, w.id))
            break;
    sv_iter_close(&w.it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

sv_err_t sv_group_each_member(sv_txn_t *tx, const char *tenant, const char *id, sv_identity_each_fn fn, void *arg)
{
    group_full_t gf = {0};
    sv_err_t err = group_get_full(tx, tenant, id, &gf);
    if (err != SV_OK)
        return err;
    for (size_t i = 0; i < gf.n; i++)
        if (!fn(arg, gf.members[i]))
            break;
    group_full_free(&gf);
    return SV_OK;
}

sv_err_t sv_group_list(sv_txn_t *tx, const char *tenant, const char *after,
                       bool (*fn)(void *arg, const sv_group_rec_t *g), void *arg)
{
    sv_key_t prefix, seek;
    sv_key_init(&prefix);
    sv_key_str(&prefix, tenant, strlen(tenant));
    sv_key_u8(&prefix, KIND_GROUP);
    bool resume = after != NULL && after[0] != 0;
    if (resume) {
        group_key(&seek, tenant, after);
        sv_key_u8(&seek, 0); /* just past `after` itself */
    }
    id_walk_t w;
    sv_err_t err = id_walk_open(&w, tx, SV_DB_GROUPS, &prefix, resume ? &seek : NULL, SV_GROUP_ID_MAX);
    if (err != SV_OK)
        return err == SV_ENOTFOUND ? SV_OK : err;
    sv_bytes_t val;
    while ((err = id_walk_next(&w, &val)) == SV_OK) {
        sv_group_rec_t rec;
        if ((err = decode_group(val, tenant, w.id, &rec, NULL)) != SV_OK || !fn(arg, &rec))
            break;
    }
    sv_iter_close(&w.it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

sv_err_t sv_identity_list(sv_txn_t *tx, const char *tenant, const char *after,
                          bool (*fn)(void *arg, const sv_identity_rec_t *r), void *arg)
{
    sv_key_t prefix, seek;
    sv_key_init(&prefix);
    sv_key_str(&prefix, tenant, strlen(tenant));
    bool resume = after != NULL && after[0] != 0;
    if (resume) {
        identity_key(&seek, tenant, after);
        sv_key_u8(&seek, 0);
    }
    id_walk_t w;
    sv_err_t err = id_walk_open(&w, tx, SV_DB_IDENTITIES, &prefix, resume ? &seek : NULL, SV_ID_MAX);
    if (err != SV_OK)
        return err == SV_ENOTFOUND ? SV_OK : err;
    sv_bytes_t val;
    while ((err = id_walk_next(&w, &val)) == SV_OK) {
        sv_identity_rec_t rec;
        if ((err = decode_identity(val, tenant, w.id, &rec)) != SV_OK || !fn(arg, &rec))
            break;
    }
    sv_iter_close(&w.it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

/* ---- writes ---- */

static bool in_list(const char *s, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static sv_err_t write_group(sv_wtxn_t *tx, const sv_group_rec_t *g, char *const *members, size_t n)
{
    sv_key_t k;
    group_key(&k, g->tenant_id, g->id);
    if (k.overflow)
        return SV_EINVAL;
    sv_recw_t w;
    sv_err_t err = encode_group(g, members, n, &w);
    if (err == SV_OK) {
        sv_bytes_t v;
        sv_recw_result(&w, &v);
        err = sv_wtxn_put(tx, SV_DB_GROUPS, sv_key_bytes(&k), v);
    }
    sv_recw_free(&w);
    return err;
}

/* Adds (add=true) or removes id from group's member list, if the group exists. */
static sv_err_t group_member_edit(sv_wtxn_t *tx, const char *tenant, const char *group, const char *id, bool add)
{
    group_full_t gf = {0};
    sv_err_t err = group_get_full(sv_wtxn_txn(tx), tenant, group, &gf);
    if (err == SV_ENOTFOUND)
        return SV_OK;
    if (err != SV_OK)
        return err;
    bool present = in_list(id, gf.members, gf.n);
    if (add && !present) {
        char **nm = realloc(gf.members, (gf.n + 1) * sizeof(char *));
        char *dup = strdup(id);
        if (nm == NULL || dup == NULL) {
            free(dup);
            if (nm != NULL)
                gf.members = nm;
            group_full_free(&gf);
            return SV_ENOMEM;
        }
        gf.members = nm;
        gf.members[gf.n++] = dup;
    } else if (!add && present) {
        for (size_t i = 0; i < gf.n; i++) {
            if (strcmp(gf.members[i], id) == 0) {
                free(gf.members[i]);
                memmove(&gf.members[i], &gf.members[i + 1], (gf.n - i - 1) * sizeof(char *));
                gf.n--;
                break;
            }
        }
    } else {
        group_full_free(&gf);
        return SV_OK;
    }
    gf.g.n_members = (uint32_t)gf.n;
    err = write_group(tx, &gf.g, gf.members, gf.n);
    group_full_free(&gf);
    return err;
}

typedef struct {
    char **items;
    size_t n, cap;
    bool oom;
} strlist_t;

static bool strlist_add(void *arg, const char *s)
{
    strlist_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **ni = realloc(l->items, cap * sizeof(char *));
        if (ni == NULL) {
            l->oom = true;
            return false;
        }
        l->items = ni;
        l->cap = cap;
    }
    if ((l->items[l->n] = strdup(s)) == NULL) {
        l->oom = true;
        return false;
    }
    l->n++;
    return true;
}

static void strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Makes id's memberships exactly groups[0..n). */
static sv_err_t set_memberships(sv_wtxn_t *tx, const char *tenant, const char *id, char *const *groups, size_t n)
{
    strlist_t old = {0};
    sv_err_t err = sv_identity_each_group(sv_wtxn_txn(tx), tenant, id, strlist_add, &old);
    if (err == SV_OK && old.oom)
        err = SV_ENOMEM;
    for (size_t i = 0; err == SV_OK && i < old.n; i++) {
        if (in_list(old.items[i], groups, n))
            continue;
        sv_key_t k;
        membership_key(&k, tenant, id, old.items[i]);
        err = sv_wtxn_del(tx, SV_DB_GROUPS, sv_key_bytes(&k));
        if (err == SV_ENOTFOUND)
            err = SV_OK;
        if (err == SV_OK)
            err = group_member_edit(tx, tenant, old.items[i], id, false);
    }
    for (size_t i = 0; err == SV_OK && i < n; i++) {
        if (in_list(groups[i], old.items, old.n))
            continue;
        if (!sv_group_id_valid(groups[i], strlen(groups[i]))) {
            err = SV_EINVAL;
            break;
        }
        sv_key_t k;
        membership_key(&k, tenant, id, groups[i]);
        if (k.overflow) {
            err = SV_EINVAL;
            break;
        }
        err = sv_wtxn_put(tx, SV_DB_GROUPS, sv_key_bytes(&k), (sv_bytes_t){(const uint8_t *)"", 0});
        if (err == SV_OK)
            err = group_member_edit(tx, tenant, groups[i], id, true);
    }
    strlist_free(&old);
    return err;
}

sv_err_t sv_identity_put_tx(sv_wtxn_t *tx, const sv_identity_rec_t *rec, const char *const *groups, size_t n_groups)
{
    if (!sv_tenant_id_valid(rec->tenant_id, strlen(rec->tenant_id)) || !sv_identity_id_valid(rec->id, strlen(rec->id)))
        return SV_EINVAL;
    sv_key_t k;
    identity_key(&k, rec->tenant_id, rec->id);
    if (k.overflow)
        return SV_EINVAL;
    sv_recw_t w;
    sv_err_t err = encode_identity(rec, &w);
    if (err == SV_OK) {
        sv_bytes_t v;
        sv_recw_result(&w, &v);
        err = sv_wtxn_put(tx, SV_DB_IDENTITIES, sv_key_bytes(&k), v);
    }
    sv_recw_free(&w);
    if (err == SV_OK && groups != NULL)
        err = set_memberships(tx, rec->tenant_id, rec->id, (char *const *)groups, n_groups);
    return err;
}

sv_err_t sv_group_put_tx(sv_wtxn_t *tx, const sv_group_rec_t *rec, const char *const *members, size_t n_members)
{
    if (!sv_tenant_id_valid(rec->tenant_id, strlen(rec->tenant_id)) || !sv_group_id_valid(rec->id, strlen(rec->id)))
        return SV_EINVAL;
    group_full_t old = {0};
    sv_err_t err = group_get_full(sv_wtxn_txn(tx), rec->tenant_id, rec->id, &old);
    if (err == SV_ENOTFOUND)
        err = SV_OK;
    if (err != SV_OK)
        return err;
    sv_group_rec_t g = *rec;
    if (members == NULL) {
        /* keep the members */
        g.n_members = (uint32_t)old.n;
        err = write_group(tx, &g, old.members, old.n);
        group_full_free(&old);
        return err;
    }
    for (size_t i = 0; i < n_members; i++) {
        if (!sv_identity_id_valid(members[i], strlen(members[i]))) {
            group_full_free(&old);
            return SV_EINVAL;
        }
    }
    for (size_t i = 0; err == SV_OK && i < old.n; i++) {
        if (in_list(old.members[i], (char *const *)members, n_members))
            continue;
        sv_key_t k;
        membership_key(&k, rec->tenant_id, old.members[i], rec->id);
        err = sv_wtxn_del(tx, SV_DB_GROUPS, sv_key_bytes(&k));
        if (err == SV_ENOTFOUND)
            err = SV_OK;
    }
    /* de-duplicate the new list while writing the index */
    char **uniq = calloc(n_members ? n_members : 1, sizeof(char *));
    size_t nu = 0;
    if (uniq == NULL)
        err = SV_ENOMEM;
    for (size_t i = 0; err == SV_OK && i < n_members; i++) {
        if (in_list(members[i], uniq, nu))
            continue;
        uniq[nu++] = (char *)members[i];
        if (in_list(members[i], old.members, old.n))
            continue;
        sv_key_t k;
        membership_key(&k, rec->tenant_id, members[i], rec->id);
        if (k.overflow)
            err = SV_EINVAL;
        else
            err = sv_wtxn_put(tx, SV_DB_GROUPS, sv_key_bytes(&k), (sv_bytes_t){(const uint8_t *)"", 0});
    }
    if (err == SV_OK) {
        g.n_members = (uint32_t)nu;
        err = write_group(tx, &g, uniq, nu);
    }
    free(uniq);
    group_full_free(&old);
    return err;
}

sv_err_t sv_identity_delete_tx(sv_wtxn_t *tx, const char *tenant, const char *id)
{
    sv_key_t k;
    identity_key(&k, tenant, id);
    if (k.overflow)
        return SV_ENOTFOUND;
    sv_err_t err = set_memberships(tx, tenant, id, NULL, 0);
    if (err != SV_OK)
        return err;
    return sv_wtxn_del(tx, SV_DB_IDENTITIES, sv_key_bytes(&k));
}

sv_err_t sv_group_delete_tx(sv_wtxn_t *tx, const char *tenant, const char *id)
{
    group_full_t gf = {0};
    sv_err_t err = group_get_full(sv_wtxn_txn(tx), tenant, id, &gf);
    if (err != SV_OK)
        return err;
    for (size_t i = 0; err == SV_OK && i < gf.n; i++) {
        sv_key_t k;
        membership_key(&k, tenant, gf.members[i], id);
        err = sv_wtxn_del(tx, SV_DB_GROUPS, sv_key_bytes(&k));
        if (err == SV_ENOTFOUND)
            err = SV_OK;
    }
    group_full_free(&gf);
    if (err != SV_OK)
        return err;
    sv_key_t k;
    group_key(&k, tenant, id);
    return sv_wtxn_del(tx, SV_DB_GROUPS, sv_key_bytes(&k));
}

sv_err_t sv_identity_set_roles_tx(sv_wtxn_t *tx, const char *tenant, const char *id, uint32_t roles)
{
    sv_identity_rec_t rec;
    sv_err_t err = sv_identity_get(sv_wtxn_txn(tx), tenant, id, &rec);
    if (err != SV_OK)
        return err;
    rec.roles = roles;
    return sv_identity_put_tx(tx, &rec, NULL, 0);
}

sv_err_t sv_identity_purge_tenant_tx(sv_wtxn_t *tx, const char *tenant, size_t *deleted)
{
    sv_key_t prefix;
    sv_key_init(&prefix);
    sv_key_str(&prefix, tenant, strlen(tenant));
    if (prefix.overflow)
        return SV_EINVAL;
    size_t n_ident = 0, n_group = 0;
    sv_err_t err = sv_wtxn_del_prefix(tx, SV_DB_IDENTITIES, sv_key_bytes(&prefix), &n_ident);
    if (err == SV_OK)
        err = sv_wtxn_del_prefix(tx, SV_DB_GROUPS, sv_key_bytes(&prefix), &n_group);
    if (deleted != NULL)
        *deleted = n_ident + n_group;
    return err;
}
