/*
 * h_health.c - GET /v1/health (liveness). Public and not audited: probes
 * call it every few seconds and it touches no data.
 */
#include "sv_autoconf.h"

#include "http/handlers.h"
#include "http/request.h"

static void get_health(sv_req_t *req)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_buf_puts(&body, "{\"status\":\"ok\"}");
    sv_req_reply(req, 200, &body);
}

sv_err_t sv_http_routes_health(sv_router_t *r)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/health", .handler = get_health, .rate_category = -1,
         .flags = SV_ROUTE_PUBLIC | SV_ROUTE_NO_AUDIT, .action = "health"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
