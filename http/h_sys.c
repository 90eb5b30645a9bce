/*
 * h_sys.c - POST/DELETE /v1/sys/faults: arms and disarms the fault-injection
 * seams (store/fault.h) of a running server, for black-box tests of full
 * disks, I/O errors and an unwritable audit log. The routes exist only when
 * the server runs with SCAIVAULT_TEST_FAULTS=true; otherwise they are 404.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/handlers.h"
#include "http/request.h"
#include "src/principal.h"
#include "store/fault.h"

static void post_faults(sv_req_t *req)
{
    sv_json_doc_t *doc = sv_req_json_body(req);
    if (doc == NULL)
        return;
    sv_json_t *root = sv_json_root(doc);
    const char *op = sv_json_get_str(root, "op", NULL);
    const char *err = sv_json_get_str(root, "errno", NULL);
    sv_json_t *nth = sv_json_get(root, "nth"), *count = sv_json_get(root, "count");
    int opn = op != NULL ? sv_fault_op_from_name(op) : -1;
    int errn = err != NULL ? sv_fault_errno_from_name(err) : opn == SV_FAULT_STALL ? EIO : 0; /* unused by stall */
    if (opn < 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST,
                          "op must be commit, write, fsync, rename, malloc, audit, kms or stall.", "op");
    } else if (errn == 0) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "errno must be ENOSPC, EIO, EDQUOT or ENOMEM.", "errno");
    } else if (nth != NULL && (nth->type != SV_JSON_NUMBER || !nth->u.num.is_int || nth->u.num.i < 1)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "nth must be a whole number >= 1.", "nth");
    } else if (count != NULL && (count->type != SV_JSON_NUMBER || !count->u.num.is_int || count->u.num.i < 0)) {
        sv_req_fail_field(req, SV_E_INVALID_REQUEST, "count must be a whole number >= 0 (0: until cleared).", "count");
    } else {
        sv_fault_arm((sv_fault_op_t)opn, nth ? (unsigned)nth->u.num.i : 1, count ? (unsigned)count->u.num.i : 1, errn);
        sv_buf_t body;
        sv_buf_init(&body, false);
        sv_buf_printf(&body, "{\"armed\":\"%s\"}", op);
        sv_req_reply(req, 200, &body);
    }
    sv_json_doc_free(doc);
}

static void delete_faults(sv_req_t *req)
{
    sv_fault_reset();
    sv_req_reply(req, 204, NULL);
}

sv_err_t sv_http_routes_sys(sv_router_t *r)
{
    static const sv_route_t routes[] = {
        {.method = "POST", .pattern = "/v1/sys/faults", .handler = post_faults, .scope = SV_SCOPE_ADMIN,
         .rate_category = -1, .flags = SV_ROUTE_TEST, .action = "sys_fault_arm"},
        {.method = "DELETE", .pattern = "/v1/sys/faults", .handler = delete_faults, .scope = SV_SCOPE_ADMIN,
         .rate_category = -1, .flags = SV_ROUTE_TEST, .action = "sys_fault_reset"},
    };
    return sv_router_add_all(r, routes, SV_ARRAY_LEN(routes));
}
