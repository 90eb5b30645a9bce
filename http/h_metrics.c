/*
 * h_metrics.c - GET /v1/metrics: the Prometheus text exposition (format
 * 0.0.4) of the metrics registry (src/metrics.h). Scope `admin` (or the
 * bootstrap token): a scraper sends a bearer token like any client. Not rate
 * limited, audited like every request. Runs on the request's worker.
 */
#include "sv_autoconf.h"

#include "http/handlers.h"
#include "http/request.h"
#include "src/metrics.h"

static void get_metrics(sv_req_t *req)
{
    if (req->app->metrics == NULL) {
        sv_req_fail(req, SV_E_SERVICE_UNAVAILABLE, "Metrics are not enabled in this process.", NULL);
        return;
    }
    sv_buf_t body;
    sv_buf_init(&body, false);
    sv_metrics_write(req->app->metrics, &body);
    if (body.failed) {
        sv_buf_free(&body);
        sv_req_fail(req, SV_E_INTERNAL, "Out of memory while writing the metrics.", NULL);
        return;
    }
    sv_req_set_content_type(req, "text/plain; version=0.0.4; charset=utf-8");
    sv_req_reply(req, 200, &body);
}

sv_err_t sv_http_routes_metrics(sv_router_t *r)
{
    static const sv_route_t routes[] = {
        {.method = "GET", .pattern = "/v1/metrics", .handler = get_metrics, .scope = SV_SCOPE_ADMIN,
         .rate_category = -1, .action = "metrics_read"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
