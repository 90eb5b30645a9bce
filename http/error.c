/*
 * error.c - the one table of API error codes (error.h). Pure data; any thread.
 */
#include "sv_autoconf.h"

#include "http/error.h"

static const sv_api_error_info_t table[SV_E_COUNT_] = {
    [SV_E_INVALID_REQUEST] = {"invalid_request", 400, "The request is malformed."},
    [SV_E_INVALID_PATH] = {"invalid_path", 400, "The secret path is not valid."},
    [SV_E_TENANT_REQUIRED] = {"tenant_required", 400, "This token has no tenant: name one with the X-ScaiVault-Tenant header."},
    [SV_E_AUTHENTICATION_REQUIRED] = {"authentication_required", 401, "An Authorization: Bearer token is required."},
    [SV_E_TOKEN_EXPIRED] = {"token_expired", 401, "The token has expired."},
    [SV_E_TOKEN_INVALID] = {"token_invalid", 401, "The token is not valid."},
    [SV_E_TOKEN_REVOKED] = {"token_revoked", 401, "The token has been revoked."},
    [SV_E_ACCESS_DENIED] = {"access_denied", 403, "No policy allows this request."},
    [SV_E_INSUFFICIENT_SCOPE] = {"insufficient_scope", 403, "The token lacks the scope this endpoint needs."},
    [SV_E_NOT_FOUND] = {"not_found", 404, "Not found."},
    [SV_E_SECRET_VERSION_DELETED] = {"secret_version_deleted", 404, "This version of the secret is deleted."},
    [SV_E_SECRET_VERSION_DESTROYED] = {"secret_version_destroyed", 404, "This version of the secret was destroyed."},
    [SV_E_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405, "This method is not allowed on this route."},
    [SV_E_CONFLICT] = {"conflict", 409, "The resource already exists or is in a conflicting state."},
    [SV_E_VERSION_CONFLICT] = {"version_conflict", 409, "The cas version does not match the current version."},
    [SV_E_PAYLOAD_TOO_LARGE] = {"payload_too_large", 413, "The request body is too large."},
    [SV_E_SECRET_TOO_LARGE] = {"secret_too_large", 413, "The secret value is too large."},
    [SV_E_RATE_LIMITED] = {"rate_limited", 429, "Too many requests."},
    [SV_E_INTERNAL] = {"internal_error", 500, "An internal error occurred."},
    [SV_E_BACKEND_ERROR] = {"backend_error", 502, "An upstream system returned an error."},
    [SV_E_STORAGE_UNAVAILABLE] = {"storage_unavailable", 503, "Storage is unavailable."},
    [SV_E_AUDIT_UNAVAILABLE] = {"audit_unavailable", 503, "The audit log cannot be written; the request was not carried out."},
    [SV_E_KMS_UNAVAILABLE] = {"kms_unavailable", 503, "The key management service is unavailable."},
    [SV_E_SERVICE_UNAVAILABLE] = {"service_unavailable", 503, "The service is unavailable."},
    [SV_E_READ_ONLY_REPLICA] = {"read_only_replica", 503, "This server is a read-only replica."},
    [SV_E_INSUFFICIENT_STORAGE] = {"insufficient_storage", 507, "The storage device is full."},
};

const sv_api_error_info_t *sv_api_error_info(sv_api_error_t e)
{
    if ((unsigned)e >= SV_E_COUNT_)
        e = SV_E_INTERNAL;
    return &table[e];
}

sv_api_error_t sv_api_error_from_err(sv_err_t err)
{
    switch (err) {
    case SV_EINVAL: return SV_E_INVALID_REQUEST;
    case SV_ENOTFOUND: return SV_E_NOT_FOUND;
    case SV_EEXIST:
    case SV_EGONE: return SV_E_CONFLICT;
    case SV_ECONFLICT: return SV_E_VERSION_CONFLICT;
    case SV_ENOSPC:
    case SV_EMAPFULL: return SV_E_INSUFFICIENT_STORAGE;
    case SV_EIO:
    case SV_ECORRUPT:
    case SV_EAGAIN: return SV_E_STORAGE_UNAVAILABLE;
    case SV_ETOOBIG: return SV_E_PAYLOAD_TOO_LARGE;
    case SV_EPERM: return SV_E_ACCESS_DENIED;
    case SV_ESHUTDOWN:
    case SV_ENOMEM: return SV_E_SERVICE_UNAVAILABLE; /* overloaded: a retry may well succeed */
    case SV_ECRYPTO: return SV_E_KMS_UNAVAILABLE;
    case SV_EDELETED: return SV_E_SECRET_VERSION_DELETED;
    case SV_EDESTROYED: return SV_E_SECRET_VERSION_DESTROYED;
    case SV_EAUDIT: return SV_E_AUDIT_UNAVAILABLE;
    case SV_ETIMEDOUT:
    case SV_EUPSTREAM: return SV_E_BACKEND_ERROR;
    default: return SV_E_INTERNAL;
    }
}
