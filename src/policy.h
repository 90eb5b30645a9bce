/*
 * policy.h - the policy model of API.md "Policies": what a policy says, its
 * strict validation, its JSON form, its stored record, and where it is kept.
 *
 * (<**> stands for the ** segment, which a C comment cannot hold after a '/')
 *   {"name": "billing-db", "description": "...",
 *    "rules": [{"path": "app/db/<**>", "permissions": ["read", "list"],
 *               "effect": "allow",
 *               "conditions": {"ip_allow": ["10.0.0.0/8"], "mfa_required": true,
 *                              "time_window": {"days": ["mon", "fri"], "start": "08:00",
 *                                              "end": "18:00", "timezone": "Europe/Berlin"}}}],
 *    "bindings": {"identities": ["sa:billing"], "groups": ["grp_finance"]}}
 *
 * A rule's path is a pattern (src/pattern.h) over the tenant's secret paths;
 * a pattern that starts with "@partner/" names partner secrets instead
 * (/v1/partner/secrets/...): "@partner/shared/<**>". No secret path can start
 * with '@', so the two never overlap, and `**` alone never reaches partner
 * secrets.
 *
 * Storage: policies: tenant\0 name\0 → record (format version 1). Writes only
 * inside a writer unit's apply; whoever commits a policy change calls
 * sv_policy_bump_generation() afterwards (compiled policies, src/authz.h,
 * watch the counter). The evaluation engine is in src/authz.h.
 */
#ifndef SV_POLICY_H
#define SV_POLICY_H

#include "src/cidr.h"
#include "src/json.h"
#include "src/principal.h"
#include "store/env.h"
#include "store/record.h"
#include "wal/writer.h"

#define SV_POLICY_NAME_MAX 128 /* bytes, [A-Za-z0-9_.-] */
#define SV_POLICY_DESC_MAX 1024
#define SV_POLICY_MAX_RULES 256
#define SV_POLICY_MAX_CIDRS 64
#define SV_POLICY_MAX_BINDINGS 1000 /* identities, and groups, each */
#define SV_PARTNER_PATTERN_PREFIX "@partner/"

/* Weekday bits of a time window: bit 0 = Sunday ... bit 6 = Saturday (tm_wday). */
#define SV_DAYS_ALL 0x7f

typedef struct {
    char *path;     /* the pattern as written */
    uint32_t perms; /* SV_PERM_* bits */
    bool deny;      /* effect: deny (else allow) */
    /* conditions */
    bool has_ip_allow;
    unsigned n_ip_allow;
    char **ip_allow_text; /* as written */
    sv_cidr_t *ip_allow;
    bool mfa_required;
    bool has_time_window;
    uint8_t days;       /* SV_DAYS_ALL when not given */
    uint16_t start_min; /* minutes after local midnight, 0..1439 */
    uint16_t end_min;   /* 1..1440; below start_min: the window crosses midnight */
    char *timezone;     /* IANA name; "UTC" when not given */
} sv_policy_rule_t;

typedef struct {
    char name[SV_POLICY_NAME_MAX + 1];
    char *description; /* "" when none */
    sv_policy_rule_t *rules;
    unsigned n_rules;
    char **identities;
    unsigned n_identities;
    char **groups;
    unsigned n_groups;
    int64_t created_at, updated_at; /* seconds; set by sv_policy_put_tx */
    uint64_t version;               /* 1 on create, +1 on every replace */
    void *arena_;                   /* private: all of the above lives here */
} sv_policy_def_t;

/** A validation failure: the field ("rules[0].conditions.time_window.timezone")
 * and a message for the client. */
typedef struct {
    char field[192];
    char message[256];
} sv_policy_error_t;

/** Whether s is a valid policy name: 1..128 bytes of [A-Za-z0-9_.-], not "."
 * or "..". */
bool sv_policy_name_valid(const char *s, size_t len);

/** Validates the JSON object root as the body of PUT /v1/policies/{name}
 * (name is from the URL; a "name" member must equal it) and builds the
 * policy. Read-only members (created_at, updated_at, version) are ignored, so
 * a GET's answer can be sent back. Errors: SV_EINVAL with *e filled;
 * SV_ENOMEM. On success *out belongs to the caller (sv_policy_def_free). */
sv_err_t sv_policy_from_json(const sv_json_t *root, const char *name, sv_policy_def_t **out, sv_policy_error_t *e);

/** Writes p as the JSON object that GET returns. */
void sv_policy_to_json(const sv_policy_def_t *p, sv_jw_t *jw);

/** Frees p (NULL is fine). */
void sv_policy_def_free(sv_policy_def_t *p);

/** Encodes p as a stored record into w (caller frees w). */
void sv_policy_encode(const sv_policy_def_t *p, sv_recw_t *w);
/** Decodes a stored record. Errors: SV_ECORRUPT (bad format or content),
 * SV_ENOMEM. *out belongs to the caller. */
sv_err_t sv_policy_decode(sv_bytes_t rec, sv_policy_def_t **out);

/** The name of weekday bit i (0 = "sun"). */
const char *sv_policy_day_name(unsigned i);

/* ---- storage (reads: any transaction; writes: inside a writer apply) ---- */

/** Reads policy name of tenant. Errors: SV_ENOTFOUND, SV_ECORRUPT, SV_ENOMEM. */
sv_err_t sv_policy_get(sv_txn_t *tx, const char *tenant, const char *name, sv_policy_def_t **out);

/** Called with each policy in name order; takes ownership of p (free it or
 * keep it). Return false to stop. */
typedef bool (*sv_policy_each_fn)(void *arg, sv_policy_def_t *p);
/** Walks the tenant's policies in name order, starting after `after` ("" or
 * NULL: from the first). Errors: SV_ECORRUPT, SV_ENOMEM, SV_EIO. */
sv_err_t sv_policy_each(sv_txn_t *tx, const char *tenant, const char *after, sv_policy_each_fn fn, void *arg);

/** Creates or replaces p in tenant. Sets p->created_at (kept from the stored
 * policy on replace), p->updated_at (the batch time) and p->version, and
 * *created. May run more than once (writer replay): it only changes the
 * database and p. Errors: storage errors, SV_ETOOBIG. */
sv_err_t sv_policy_put_tx(sv_wtxn_t *tx, const char *tenant, sv_policy_def_t *p, bool *created);
/** Deletes policy name of tenant. SV_ENOTFOUND when absent. */
sv_err_t sv_policy_delete_tx(sv_wtxn_t *tx, const char *tenant, const char *name);
/** Deletes every policy of tenant (tenant deletion); how many to *deleted
 * when not NULL. */
sv_err_t sv_policy_purge_tenant_tx(sv_wtxn_t *tx, const char *tenant, size_t *deleted);

/* ---- cache invalidation ---- */

/** The policy generation of tenant: it grows after every committed change to
 * the tenant's policies (and after every sv_policy_bump_generation). Tenants
 * share 64 hashed counters, so it may also grow on another tenant's change. */
uint64_t sv_policy_generation(const char *tenant);
/** Call after a unit that changed tenant's policies has committed (the policy
 * endpoints). Any thread. */
void sv_policy_bump_tenant_generation(const char *tenant);
/** Call after a commit that may have changed any tenant's policies (a replica
 * applying the change log, a restore, a tenant purge). Any thread. */
void sv_policy_bump_generation(void);

#endif
