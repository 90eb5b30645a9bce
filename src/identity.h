/*
 * identity.h - the identity cache: users, service accounts and groups of each
 * tenant, copied from ScaiKey's directory (SCIM) or kept by hand.
 *
 * Policies take group membership from here, never from a token: a policy
 * bound to a group that this cache does not know grants nothing.
 *
 * Storage (all keys start with the tenant, so a tenant's entries are one
 * prefix):
 *   identities: tenant\0 id\0                → identity record
 *   groups:     tenant\0 0x01 group_id\0      → group record (with its members)
 *   groups:     tenant\0 0x02 id\0 group_id\0 → membership index (empty value)
 * The membership index answers "which groups is X in" with one prefix scan;
 * the group record's member list answers "who is in G". Writes keep both in
 * step. Reads work in any transaction (a worker's snapshot or the writer's);
 * writes only inside a writer unit's apply.
 *
 * Caches built from this data (compiled policies) watch a process-wide
 * generation counter that whoever commits an identity change bumps after the
 * commit (sv_identity_bump_generation).
 */
#ifndef SV_IDENTITY_H
#define SV_IDENTITY_H

#include "src/principal.h"
#include "store/env.h"
#include "wal/writer.h"

#define SV_GROUP_ID_MAX 128

typedef enum {
    SV_IDENT_USER = 1,
    SV_IDENT_SERVICE_ACCOUNT = 2,
} sv_ident_type_t;

typedef enum {
    SV_SOURCE_SCIM = 1,   /* copied from the directory; replaced by the next sync */
    SV_SOURCE_MANUAL = 2, /* kept by hand (PUT /v1/identity/...); a sync leaves it alone */
} sv_ident_source_t;

typedef struct {
    char tenant_id[SV_TENANT_MAX];
    char id[SV_ID_MAX];          /* "sa:billing", "user:admin@acme.example" */
    uint8_t type;                /* sv_ident_type_t */
    uint8_t source;              /* sv_ident_source_t */
    bool active;
    uint32_t roles;              /* SV_ROLE_* granted by ScaiVault (e.g. a promoted super admin) */
    char display_name[256];
    char external_id[128];       /* the directory's id (SCIM "id"), "" for manual entries */
    int64_t updated_at;          /* seconds since the epoch */
} sv_identity_rec_t;

typedef struct {
    char tenant_id[SV_TENANT_MAX];
    char id[SV_GROUP_ID_MAX];    /* "grp_finance" */
    uint8_t source;              /* sv_ident_source_t */
    char display_name[256];
    char external_id[128];
    int64_t updated_at;
    uint32_t n_members;
} sv_group_rec_t;

/** Whether s is a valid identity id: 1..255 printable ASCII bytes without
 * spaces, quotes, backslashes or control characters, containing a ':' that
 * is neither first nor last ("sa:billing"). */
bool sv_identity_id_valid(const char *s, size_t len);
/** Whether s is a valid group id: [A-Za-z0-9_.:@-]{1,127}. */
bool sv_group_id_valid(const char *s, size_t len);

/* ---- reads (any transaction) ---- */

/** Reads identity id of tenant. Errors: SV_ENOTFOUND, SV_ECORRUPT. */
sv_err_t sv_identity_get(sv_txn_t *tx, const char *tenant, const char *id, sv_identity_rec_t *out);
/** Reads group id of tenant. Errors: SV_ENOTFOUND, SV_ECORRUPT. */
sv_err_t sv_group_get(sv_txn_t *tx, const char *tenant, const char *id, sv_group_rec_t *out);

/** Called once per item; return false to stop the walk. The string is
 * NUL-terminated and valid only during the call. */
typedef bool (*sv_identity_each_fn)(void *arg, const char *id);

/** The groups identity id is a member of (from the membership index), in id
 * order. Includes groups that have no group record (an unknown group): check
 * with sv_group_get. */
sv_err_t sv_identity_each_group(sv_txn_t *tx, const char *tenant, const char *id, sv_identity_each_fn fn, void *arg);
/** The members of group id, in the order stored. SV_ENOTFOUND when the group
 * is unknown. */
sv_err_t sv_group_each_member(sv_txn_t *tx, const char *tenant, const char *id, sv_identity_each_fn fn, void *arg);
/** Walks the tenant's groups in id order, starting after `after` ("" for the
 * start). Calls fn with each group record; fn returns false to stop. */
sv_err_t sv_group_list(sv_txn_t *tx, const char *tenant, const char *after,
                       bool (*fn)(void *arg, const sv_group_rec_t *g), void *arg);
/** Walks the tenant's identities in id order, starting after `after`. */
sv_err_t sv_identity_list(sv_txn_t *tx, const char *tenant, const char *after,
                          bool (*fn)(void *arg, const sv_identity_rec_t *r), void *arg);

/* ---- writes (inside a writer unit's apply) ---- */

/** Creates or replaces an identity. When groups is not NULL the identity's
 * memberships become exactly those n_groups groups (group records that exist
 * get their member lists updated; unknown groups are recorded in the index
 * only). Errors: SV_EINVAL (bad id), storage errors. */
sv_err_t sv_identity_put_tx(sv_wtxn_t *tx, const sv_identity_rec_t *rec, const char *const *groups, size_t n_groups);
/** Creates or replaces a group. When members is not NULL its membership
 * becomes exactly those n_members identities (index rows follow). */
sv_err_t sv_group_put_tx(sv_wtxn_t *tx, const sv_group_rec_t *rec, const char *const *members, size_t n_members);
/** Deletes an identity and its memberships. SV_ENOTFOUND when absent. */
sv_err_t sv_identity_delete_tx(sv_wtxn_t *tx, const char *tenant, const char *id);
/** Deletes a group and its membership index rows. SV_ENOTFOUND when absent. */
sv_err_t sv_group_delete_tx(sv_wtxn_t *tx, const char *tenant, const char *id);
/** Sets the ScaiVault roles of an existing identity. SV_ENOTFOUND when absent. */
sv_err_t sv_identity_set_roles_tx(sv_wtxn_t *tx, const char *tenant, const char *id, uint32_t roles);
/** Deletes every identity, group and membership of tenant (tenant deletion);
 * how many records to *deleted when not NULL. */
sv_err_t sv_identity_purge_tenant_tx(sv_wtxn_t *tx, const char *tenant, size_t *deleted);

/* ---- cache invalidation ---- */

/** The current generation; changes after every committed identity change. */
uint64_t sv_identity_generation(void);
/** Call after a unit that changed identities has committed. Any thread. */
void sv_identity_bump_generation(void);

#endif
