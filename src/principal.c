/*
 * principal.c - scope names and tenant ids (principal.h). Pure; any thread.
 */
#include "sv_autoconf.h"

#include "src/principal.h"

#include <string.h>

static const char *const scope_names[] = {
    "secrets:read",  "secrets:write", "secrets:delete",   "secrets:rotate",  "policies:read",
    "policies:write", "audit:read",   "webhooks:manage",  "pki:read",        "pki:manage",
    "dynamic:read",  "dynamic:manage", "federation:manage", "identity:sync", "admin",
};

uint32_t sv_scope_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < SV_ARRAY_LEN(scope_names); i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0)
            return 1u << i;
    return 0;
}

const char *sv_scope_name(uint32_t bit)
{
    for (size_t i = 0; i < SV_ARRAY_LEN(scope_names); i++)
        if (bit == 1u << i)
            return scope_names[i];
    return NULL;
}

bool sv_tenant_id_valid(const char *s, size_t len)
{
    if (len == 0 || len >= SV_TENANT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static const char *const perm_names[] = {"read", "list", "write", "delete", "rotate", "admin"};

const char *sv_perm_name(sv_perm_t p)
{
    for (size_t i = 0; i < SV_ARRAY_LEN(perm_names); i++)
        if (p == 1u << i)
            return perm_names[i];
    return NULL;
}

sv_perm_t sv_perm_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < SV_ARRAY_LEN(perm_names); i++)
        if (strlen(perm_names[i]) == len && memcmp(perm_names[i], name, len) == 0)
            return (sv_perm_t)(1u << i);
    return (sv_perm_t)0;
}
