/*
 * metrics.h - per-route HTTP metrics: requests by method, route pattern and
 * status, and a latency histogram per route, written into the /v1/metrics
 * exposition by a collector of the registry (src/metrics.h).
 */
#ifndef SV_HTTP_METRICS_H
#define SV_HTTP_METRICS_H

#include "http/router.h"
#include "src/metrics.h"

typedef struct sv_http_metrics sv_http_metrics_t;

/** Creates the table for every route of r (all routes must be added
 * already) and registers its collector in registry (may be NULL: nothing is
 * exposed). Errors: SV_ENOMEM. */
sv_err_t sv_http_metrics_new(const sv_router_t *r, sv_metrics_t *registry, sv_http_metrics_t **out);
/** Unregisters the collector and frees the table. NULL is fine. */
void sv_http_metrics_free(sv_http_metrics_t *m);

/** Counts one finished request. route NULL: no route matched (404/405).
 * Any thread, lock-free. m may be NULL. */
void sv_http_metrics_record(sv_http_metrics_t *m, const sv_route_t *route, int status, uint64_t duration_us);

#endif
