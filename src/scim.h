/*
 * scim.h - the identity sync: copies one tenant's users, service accounts,
 * groups and memberships from ScaiKey's SCIM 2.0 directory into the identity
 * cache (src/identity.h).
 *
 * A sync has two halves:
 *   fetch  - on the outbound thread, a chain of calls: OpenID discovery (for
 *            the token endpoint, unless known) → client-credentials token
 *            (client_secret_basic) → GET {dir}/Users pages → GET {dir}/Groups
 *            pages. Paging follows startIndex/count/totalResults.
 *   apply  - in one writer unit: the tenant's entries with source SCIM are
 *            replaced by what was fetched (the ones the directory no longer has
 *            are deleted); manual entries are left alone; roles ScaiVault
 *            granted (a promoted super admin) survive.
 *
 * The directory contract (doc/authentication.md):
 *   - the tenant is selected with the filter
 *     `urn:scailabs:scim:schemas:extension:scaikey:2.0:Tenancy:tenantId eq "T"`
 *     and every resource must carry that extension with the same tenantId;
 *   - a User with `userType: "service_account"` is the service account
 *     `sa:<userName>`; any other User is `user:<userName>`;
 *   - a Group's `id` is its group id (`grp_finance`), its `members[].value`
 *     the SCIM ids of Users.
 */
#ifndef SV_SCIM_H
#define SV_SCIM_H

#include "src/identity.h"
#include "src/outbound.h"

#define SV_SCIM_TENANCY_URN "urn:scailabs:scim:schemas:extension:scaikey:2.0:Tenancy"

typedef struct {
    char id[SV_ID_MAX];
    uint8_t type;   /* sv_ident_type_t */
    bool active;
    char display_name[256];
    char external_id[128]; /* the SCIM id */
} sv_scim_ident_t;

typedef struct {
    char id[SV_GROUP_ID_MAX];
    char display_name[256];
    char **members; /* identity ids */
    size_t n_members;
} sv_scim_group_t;

typedef struct sv_scim_sync sv_scim_sync_t;

typedef struct {
    const char *issuer;          /* for discovery of the token endpoint */
    const char *token_endpoint;  /* known already, or NULL */
    const char *directory_url;   /* SCAIKEY_DIRECTORY_URL (no trailing slash needed) */
    const char *client_id, *client_secret;
    long timeout_ms;             /* per call (10 s) */
} sv_scim_config_t;

struct sv_scim_sync {
    char tenant_id[SV_TENANT_MAX];
    /* results, valid in done */
    sv_err_t result;             /* SV_OK, SV_EUPSTREAM (the directory or token endpoint failed), SV_ENOMEM, ... */
    char error[256];             /* why, when result != SV_OK */
    sv_scim_ident_t *idents;
    size_t n_idents;
    sv_scim_group_t *groups;
    size_t n_groups;
    size_t n_users, n_service_accounts, n_skipped;
    int64_t started_at, finished_at; /* seconds since the epoch */

    void (*done)(sv_scim_sync_t *s); /* on the outbound thread */
    void *arg;

    /* private */
    sv_outbound_t *ob_;
    sv_scim_config_t cfg_;
    char token_endpoint_[512];
    char *access_token_;
    int phase_;
    size_t start_index_;
    unsigned pages_;
};

/** Starts fetching tenant s->tenant_id (set it, and done/arg, first). cfg's
 * strings must outlive the sync. done(s) runs once on the outbound thread.
 * Errors (done not called): SV_ESHUTDOWN, SV_ENOMEM. */
sv_err_t sv_scim_sync_start(sv_outbound_t *ob, const sv_scim_config_t *cfg, sv_scim_sync_t *s);
/** Frees what a finished sync holds (not s itself). */
void sv_scim_sync_clear(sv_scim_sync_t *s);

/** Replaces the tenant's SCIM entries with s's (inside a writer unit's
 * apply) and records that the tenant has been synced. */
sv_err_t sv_scim_apply_tx(sv_wtxn_t *tx, const sv_scim_sync_t *s);

/** The tenants that have synced before (for the periodic sync): calls fn for
 * each. Any transaction. */
sv_err_t sv_scim_each_synced_tenant(sv_txn_t *tx, bool (*fn)(void *arg, const char *tenant), void *arg);

#endif
