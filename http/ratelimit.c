/*
 * ratelimit.c - the rate-limit step of the pipeline (steps.h).
 *
 * Runs after authentication and tenant resolution, before the scope check,
 * for routes that name a rate category. The bucket belongs to the token (its
 * `jti`, else the identity id) in the tenant the request acts in; see
 * src/ratelimit.h. Every answer of such a route carries the IETF draft's
 * headers (draft-ietf-httpapi-ratelimit-headers-09):
 *
 *   RateLimit-Policy: "read";q=6000;w=60    the category's quota and window
 *   RateLimit: "read";r=5999;t=1            requests left; seconds until full
 *
 * A refusal is 429 rate_limited with details {category, limit,
 * window_seconds, retry_after_seconds} and Retry-After; the pipeline audits
 * it like any other answer. Runs on the request's worker.
 */
#include "sv_autoconf.h"

#include <stdio.h>
#include <string.h>

#include "http/steps.h"
#include "src/ratelimit.h"

bool sv_http_rate_limit(sv_req_t *req)
{
    sv_ratelimit_t *rl = req->app->ratelimit;
    int cat = req->route->rate_category;
    if (rl == NULL || cat < 0 || cat >= SV_RL_COUNT_)
        return true;
    const sv_principal_t *p = &req->principal;
    /* "j:" and "i:" keep a jti from ever naming the same bucket as an identity */
    char key[2 + SV_ID_MAX];
    bool by_jti = p->jti[0] != 0;
    const char *id = by_jti ? p->jti : p->identity_id;
    size_t kl = strnlen(id, by_jti ? sizeof(p->jti) - 1 : sizeof(p->identity_id) - 1);
    key[0] = by_jti ? 'j' : 'i';
    key[1] = ':';
    memcpy(key + 2, id, kl);
    kl += 2;
    sv_rl_result_t r;
    sv_rl_take(rl, SV_BYTES(key, kl), req->tenant_id, (sv_rl_category_t)cat, sv_rl_now_ns(), &r);

    char policy[64], state[64];
    sv_rl_format_headers(&r, (sv_rl_category_t)cat, policy, state);
    sv_req_add_header(req, NULL, "ratelimit-policy", policy);
    sv_req_add_header(req, NULL, "ratelimit", state);
    if (r.allowed)
        return true;

    char retry[16], details[160], msg[160];
    snprintf(retry, sizeof(retry), "%u", r.retry_after_s);
    sv_req_add_header(req, H2O_TOKEN_RETRY_AFTER, NULL, retry);
    const char *name = sv_rl_category_name((sv_rl_category_t)cat);
    snprintf(details, sizeof(details),
             "{\"category\":\"%s\",\"limit\":%u,\"window_seconds\":%u,\"retry_after_seconds\":%u}", name, r.limit,
             r.window_s, r.retry_after_s);
    snprintf(msg, sizeof(msg), "Rate limit exceeded for category '%s' (%u per %u s); retry in %u s.", name, r.limit,
             r.window_s, r.retry_after_s);
    sv_req_log(req, SV_LOG_DEBUG, "rate limited: category %s, limit %u per %u s, retry after %u s", name, r.limit,
               r.window_s, r.retry_after_s);
    sv_req_fail(req, SV_E_RATE_LIMITED, msg, details);
    return false;
}
