/*
 * routes.c - the whole route table, area by area. Order matters within an
 * area (more specific patterns first); see router.h.
 */
#include "sv_autoconf.h"

#include "http/handlers.h"
#include "http/server.h"

sv_err_t sv_http_register_routes(sv_router_t *r)
{
    sv_err_t (*const areas[])(sv_router_t *) = {
        sv_http_routes_health,
        sv_http_routes_sys,
        sv_http_routes_metrics,
        sv_http_routes_ratelimits,
        sv_http_routes_audit,
        sv_http_routes_policies,
        sv_http_routes_auth,
        sv_http_routes_identity,
        sv_http_routes_secrets,
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(areas); i++) {
        sv_err_t err = areas[i](r);
        if (err != SV_OK)
            return err;
    }
    return SV_OK;
}
