/*
 * revocation.h - revoked tokens and subjects: stored in the `revocations`
 * database through the writer, and mirrored in memory so that every request
 * can be checked without touching storage.
 *
 * Two kinds:
 *   by jti      - that one token; lives until the token's exp (the expires_at
 *                 given or learned), then is pruned.
 *   by identity - every token of that subject issued (iat) at or before the
 *                 revocation; lives for SV_REVOCATION_IDENTITY_TTL_S (longer
 *                 than any ScaiKey token lives) unless expires_at says otherwise.
 * Each is scoped to a tenant: a tenant admin's revocation applies to tokens of
 * that tenant; a super admin's without a tenant applies to every tenant.
 *
 * Keys: 'j' tenant\0 jti\0 and 'i' tenant\0 identity\0 (tenant "" = all).
 * The in-memory set is loaded at start, updated on the worker after a commit,
 * and pruned by a writer batch hook at most once a minute.
 */
#ifndef SV_REVOCATION_H
#define SV_REVOCATION_H

#include "src/principal.h"
#include "store/env.h"
#include "wal/writer.h"

#define SV_REVOCATION_IDENTITY_TTL_S (24 * 3600)
#define SV_REVOCATION_JTI_TTL_S (24 * 3600) /* when the token's exp is unknown */

typedef enum { SV_REVOKE_JTI = 'j', SV_REVOKE_IDENTITY = 'i' } sv_revoke_kind_t;

typedef struct {
    uint8_t kind;                  /* sv_revoke_kind_t */
    char tenant_id[SV_TENANT_MAX]; /* "" = every tenant */
    char subject[SV_ID_MAX];       /* the jti or the identity id */
    char reason[256];
    char revoked_by[SV_ID_MAX];
    int64_t revoked_at, expires_at; /* seconds since the epoch */
} sv_revocation_t;

typedef struct sv_revocations sv_revocations_t;

/** Loads every unexpired revocation from st into a new in-memory set (st
 * NULL: an empty set).
 * Errors: SV_ENOMEM, storage errors. */
sv_err_t sv_revocations_load(sv_store_t *st, sv_revocations_t **out);
/** Frees the set. NULL is fine. */
void sv_revocations_free(sv_revocations_t *rv);
/** Adds (or replaces) r in memory. Call after its unit committed. Any thread. */
void sv_revocations_add(sv_revocations_t *rv, const sv_revocation_t *r);
/** Whether p's token is revoked at now: its jti (in its tenant or all), or its
 * subject with a revocation at or after its iat. Any thread; lock-free when
 * nothing is revoked. */
bool sv_revocations_check(sv_revocations_t *rv, const sv_principal_t *p, int64_t now);
/** Drops expired entries from memory. */
void sv_revocations_prune_memory(sv_revocations_t *rv, int64_t now);
/** Entries held in memory. */
size_t sv_revocations_count(sv_revocations_t *rv);

/** Stores r (inside a writer unit's apply). A stored revocation of the same
 * token or subject is merged in: r gets the later revoked_at and expires_at
 * of the two (what the in-memory set keeps too). Errors: SV_EINVAL, storage,
 * SV_ECORRUPT. */
sv_err_t sv_revocation_put_tx(sv_wtxn_t *tx, sv_revocation_t *r);
/** Deletes stored revocations that expired before now; *n gets the count. */
sv_err_t sv_revocations_prune_tx(sv_wtxn_t *tx, int64_t now, size_t *n);

#endif
