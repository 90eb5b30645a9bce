/*
 * ratelimit.c - the rate-limit step of the pipeline (steps.h).
 */
#include "sv_autoconf.h"

#include "http/steps.h"

bool sv_http_rate_limit(sv_req_t *req)
{
    if (req->app->ratelimit == NULL || req->route->rate_category < 0)
        return true;
    return true;
}
