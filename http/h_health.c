/*
 * h_health.c - the health endpoints:
 *   GET /v1/health           liveness: 200 while the process runs
 *   GET /v1/health/ready     readiness: storage and KMS reachable, else 503
 *   GET /v1/health/detailed  dependency report (scope admin or bootstrap)
 * The first two are public and not audited: probes call them every few
 * seconds. Runs on the request's worker; the checks are in src/health.c.
 */
#include "sv_autoconf.h"

#include "http/handlers.h"
#include "http/request.h"
#include "src/health.h"

static void get_health(sv_req_t *req)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_buf_puts(&body, "{\"status\":\"ok\"}");
    sv_req_reply(req, 200, &body);
}

static void get_ready(sv_req_t *req)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    bool ready = sv_health_ready(req->app, sv_req_reader(req), &jw);
    sv_req_reply(req, ready ? 200 : 503, &body);
}

static void get_detailed(sv_req_t *req)
{
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &body);
    sv_health_detailed(req->app, sv_req_reader(req), &jw);
    sv_req_reply(req, 200, &body);
}

sv_err_t sv_http_routes_health(sv_router_t *r)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/health", .handler = get_health, .rate_category = -1,
         .flags = SV_ROUTE_PUBLIC | SV_ROUTE_NO_AUDIT, .action = "health"},
        {.method = "GET", .pattern = "/v1/health/ready", .handler = get_ready, .rate_category = -1,
         .flags = SV_ROUTE_PUBLIC | SV_ROUTE_NO_AUDIT, .action = "health_ready"},
        {.method = "GET", .pattern = "/v1/health/detailed", .handler = get_detailed, .scope = SV_SCOPE_ADMIN,
         .rate_category = -1, .action = "health_detailed"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
