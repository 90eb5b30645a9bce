/*
 * error.h - every error code the API returns, with its HTTP status, in one
 * table (error.c). Handlers name an error by its enum; nothing else in the
 * program spells a code or picks a status for it. doc/error-codes.md lists
 * the same table for users.
 */
#ifndef SV_HTTP_ERROR_H
#define SV_HTTP_ERROR_H

#include "src/sv.h"

typedef enum {
    SV_E_INVALID_REQUEST,         /* 400 */
    SV_E_INVALID_PATH,            /* 400 */
    SV_E_TENANT_REQUIRED,         /* 400 */
    SV_E_AUTHENTICATION_REQUIRED, /* 401 */
    SV_E_TOKEN_EXPIRED,           /* 401 */
    SV_E_TOKEN_INVALID,           /* 401 */
    SV_E_TOKEN_REVOKED,           /* 401 */
    SV_E_ACCESS_DENIED,           /* 403 */
    SV_E_INSUFFICIENT_SCOPE,      /* 403 */
    SV_E_NOT_FOUND,               /* 404 */
    SV_E_SECRET_VERSION_DELETED,  /* 404 */
    SV_E_SECRET_VERSION_DESTROYED,/* 404 */
    SV_E_METHOD_NOT_ALLOWED,      /* 405 */
    SV_E_CONFLICT,                /* 409 */
    SV_E_VERSION_CONFLICT,        /* 409 */
    SV_E_PAYLOAD_TOO_LARGE,       /* 413 */
    SV_E_SECRET_TOO_LARGE,        /* 413 */
    SV_E_RATE_LIMITED,            /* 429 */
    SV_E_INTERNAL,                /* 500 */
    SV_E_BACKEND_ERROR,           /* 502 */
    SV_E_STORAGE_UNAVAILABLE,     /* 503 */
    SV_E_AUDIT_UNAVAILABLE,       /* 503 */
    SV_E_KMS_UNAVAILABLE,         /* 503 */
    SV_E_SERVICE_UNAVAILABLE,     /* 503 */
    SV_E_READ_ONLY_REPLICA,       /* 503 */
    SV_E_INSUFFICIENT_STORAGE,    /* 507 */
    SV_E_COUNT_
} sv_api_error_t;

typedef struct {
    const char *code; /* "access_denied" */
    int status;       /* 403 */
    const char *message; /* default human text */
} sv_api_error_info_t;

/** The code, status and default message of e. */
const sv_api_error_info_t *sv_api_error_info(sv_api_error_t e);

/** The message of a write refused because its tenant is being deleted. */
#define SV_TENANT_DELETING_MSG "This tenant is being deleted; try again when that has finished."

/** The API error for an internal error code when no handler-specific mapping
 * applies: storage full → insufficient_storage, I/O → storage_unavailable,
 * audit → audit_unavailable, not found → not_found, and so on. */
sv_api_error_t sv_api_error_from_err(sv_err_t err);

#endif
