/*
 * authz.h - policy evaluation: may identity X of tenant T do permission P on
 * path S, given the request's address, MFA and time? And, with tracing on,
 * why (POST /v1/policies/test).
 *
 * Rules (doc/policies.md has the examples):
 *  - The policies that apply to an identity are those bound to it directly
 *    (bindings.identities) or through a group it belongs to *according to the
 *    identity cache* (src/identity.h): the membership index lists the group
 *    and the group has a record. A binding through a group the cache does not
 *    know grants nothing.
 *  - A rule applies when its pattern matches the whole path (in the same
 *    namespace: tenant secrets, or partner secrets for "@partner/" patterns)
 *    and it lists the permission. Permissions are independent (admin does
 *    not imply the others).
 *  - Conditions are requirements on the request. An allow rule grants only
 *    when all of its conditions hold. A deny rule denies unless all of its
 *    conditions hold (no conditions: it always denies), so a deny rule with a
 *    condition is a guard: "writes under prod/ need MFA, whatever else allows".
 *  - Deny wins: the first applying deny (policies in name order, rules in
 *    order) decides. Otherwise the first allow whose conditions hold grants.
 *    Otherwise, when some allow rule applied but a condition failed, the
 *    answer is access_denied with failed_condition from the allow rule with
 *    the fewest failed conditions (ties: evaluation order), its first failed
 *    condition in the order ip_allow, mfa_required, time_window. Otherwise no
 *    policy matched: deny.
 *  - An identity that the cache holds as inactive is denied everything.
 *
 * Speed: each thread keeps its own cache of compiled tenant policy sets and
 * of per-identity lists of the policies that apply, checked against the
 * policy and identity generation counters; a hit takes no lock and no
 * storage read. A miss reads one snapshot through the caller's reader.
 */
#ifndef SV_AUTHZ_H
#define SV_AUTHZ_H

#include "src/cidr.h"
#include "src/json.h"
#include "src/policy.h"
#include "store/env.h"

/** The policy engine (app->policy). */
typedef struct sv_policy sv_policy_t;

struct sv_app;
/** The server part (src/cmd_server.c): creates app->policy. */
sv_err_t sv_policy_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Frees app->policy once the HTTP workers have stopped. */
void sv_policy_part_stop(struct sv_app *app);

/** Creates the engine. Errors: SV_ENOMEM, SV_EAGAIN (no thread key). */
sv_err_t sv_policy_engine_new(sv_policy_t **out);
/** Frees the engine and every thread's cache. No thread may be evaluating. */
void sv_policy_engine_free(sv_policy_t *pe);
/** Drops the calling thread's cache now (threads without an event loop that
 * are about to exit do not need this: their cache is freed at exit). */
void sv_policy_engine_thread_done(sv_policy_t *pe);

/* The conditions, in the order they are checked and reported. */
enum { SV_COND_IP_ALLOW = 0, SV_COND_MFA_REQUIRED = 1, SV_COND_TIME_WINDOW = 2, SV_COND_COUNT_ = 3 };

typedef enum { SV_COND_NA = 0, SV_COND_PASS = 1, SV_COND_FAIL = 2 } sv_cond_result_t;

/** "ip_allow", "mfa_required", "time_window". */
const char *sv_authz_condition_name(int cond);
/** The details.failed_condition code of a failed condition:
 * "ip_not_allowed", "mfa_required", "time_window_violation". */
const char *sv_authz_failed_condition_code(int cond);

/** One question. Strings are borrowed for the duration of the call. */
typedef struct {
    const char *tenant;
    const char *identity_id;
    const char *path; /* a secret path, without any "@partner/" prefix */
    size_t path_len;
    bool partner; /* a partner secret (/v1/partner/secrets/...) */
    sv_perm_t perm;
    bool has_ip; /* false: no address known (ip_allow fails) */
    sv_ip_t ip;
    bool mfa;
    int64_t now; /* seconds since the epoch */
} sv_authz_request_t;

typedef enum {
    SV_AUTHZ_ALLOWED = 0,
    SV_AUTHZ_NO_POLICY_MATCHED,
    SV_AUTHZ_EXPLICIT_DENY,
    SV_AUTHZ_CONDITION_FAILED,
    SV_AUTHZ_IDENTITY_INACTIVE,
    SV_AUTHZ_PARTNER_ADMIN_REQUIRED, /* a change to a partner secret: policies never grant it */
} sv_authz_outcome_t;

typedef struct {
    sv_authz_outcome_t outcome;
    int failed_condition;                     /* SV_COND_* when CONDITION_FAILED, else -1 */
    char decision_by[SV_POLICY_NAME_MAX + 1]; /* the policy that allowed, denied, or whose failed
                                               * condition is reported; "" when none */
    int decision_rule;                        /* its rule index, or -1 */
} sv_authz_result_t;

/** The details.reason word of an outcome ("no_policy_matched", ...). */
const char *sv_authz_outcome_reason(sv_authz_outcome_t o);

/** Answers rq into *res. On a cache miss it opens a read snapshot on reader,
 * so the caller must not hold one on the same reader. Errors (the answer is
 * then unusable: deny): storage errors, SV_ECORRUPT, SV_ENOMEM. Any thread
 * with its own reader. */
sv_err_t sv_authz_check(sv_policy_t *pe, sv_store_reader_t *reader, const sv_authz_request_t *rq,
                        sv_authz_result_t *res);

/** Sets *inactive when the identity cache holds identity id of tenant as
 * inactive (deactivated in the directory); an identity the cache does not
 * know is not inactive. Reads like sv_authz_check (the thread's cache, a
 * snapshot on reader on a miss) and fails like it. */
sv_err_t sv_authz_identity_inactive(sv_policy_t *pe, sv_store_reader_t *reader, const char *tenant, const char *id,
                                    bool *inactive);

/** The evaluation of sv_authz_check with tracing on. */
typedef struct sv_authz_trace sv_authz_trace_t;

/** Like sv_authz_check, built fresh from one snapshot (no cache), and
 * recording why each policy bound to the identity did or did not grant, and
 * every binding through a group that the cache lists the identity in but has
 * no record of (also of a policy that applies through another binding).
 * *trace belongs to the caller (sv_authz_trace_free). */
sv_err_t sv_authz_explain(sv_policy_t *pe, sv_store_reader_t *reader, const sv_authz_request_t *rq,
                          sv_authz_result_t *res, sv_authz_trace_t **trace);
void sv_authz_trace_free(sv_authz_trace_t *tr);

/** Writes the members "allowed", "decision_by", "reason", "failed_condition",
 * "evaluated", "unresolved_groups" and "identity" of the policies/test
 * answer into the JSON object that jw has open. rq and res are those of the
 * sv_authz_explain call. */
void sv_authz_trace_write(const sv_authz_trace_t *tr, const sv_authz_request_t *rq, const sv_authz_result_t *res,
                          sv_jw_t *jw);

/** Whether local weekday wday (0 = Sunday) and minute of the day fall in a
 * time window (days: bit per weekday; end > start, or end < start for a
 * window that crosses midnight and belongs to the day it starts on). */
bool sv_authz_in_window(uint8_t days, unsigned start_min, unsigned end_min, int wday, int minute);

#endif
