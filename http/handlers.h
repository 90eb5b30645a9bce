/*
 * handlers.h - the route registration function of each API area. routes.c
 * calls them all; each lives in the http/h_<area>.c file of its area.
 */
#ifndef SV_HTTP_HANDLERS_H
#define SV_HTTP_HANDLERS_H

#include "http/router.h"

sv_err_t sv_http_routes_health(sv_router_t *r); /* h_health.c */
sv_err_t sv_http_routes_sys(sv_router_t *r);    /* h_sys.c */
sv_err_t sv_http_routes_metrics(sv_router_t *r);    /* h_metrics.c */
sv_err_t sv_http_routes_ratelimits(sv_router_t *r); /* h_ratelimits.c */
sv_err_t sv_http_routes_audit(sv_router_t *r);  /* h_audit.c */
sv_err_t sv_http_routes_policies(sv_router_t *r); /* h_policies.c */
sv_err_t sv_http_routes_auth(sv_router_t *r);   /* h_auth.c */
sv_err_t sv_http_routes_identity(sv_router_t *r); /* h_identity.c */
sv_err_t sv_http_routes_secrets(sv_router_t *r); /* h_secrets.c */

#endif
