/*
 * principal.h - who is making a request: the identity, tenant, scopes and
 * roles taken from a verified token (or the bootstrap token). Filled by the
 * authentication step; read by scope checks, policies, audit and whoami.
 */
#ifndef SV_PRINCIPAL_H
#define SV_PRINCIPAL_H

#include "src/sv.h"

/* Scopes (API.md "Authentication"), one bit each. */
enum {
    SV_SCOPE_SECRETS_READ = 1u << 0,
    SV_SCOPE_SECRETS_WRITE = 1u << 1,
    SV_SCOPE_SECRETS_DELETE = 1u << 2,
    SV_SCOPE_SECRETS_ROTATE = 1u << 3,
    SV_SCOPE_POLICIES_READ = 1u << 4,
    SV_SCOPE_POLICIES_WRITE = 1u << 5,
    SV_SCOPE_AUDIT_READ = 1u << 6,
    SV_SCOPE_WEBHOOKS_MANAGE = 1u << 7,
    SV_SCOPE_PKI_READ = 1u << 8,
    SV_SCOPE_PKI_MANAGE = 1u << 9,
    SV_SCOPE_DYNAMIC_READ = 1u << 10,
    SV_SCOPE_DYNAMIC_MANAGE = 1u << 11,
    SV_SCOPE_FEDERATION_MANAGE = 1u << 12,
    SV_SCOPE_IDENTITY_SYNC = 1u << 13,
    SV_SCOPE_ADMIN = 1u << 14,
    SV_SCOPE_ALL_ = (1u << 15) - 1,
};

/* Roles, one bit each. */
enum {
    SV_ROLE_SUPER_ADMIN = 1u << 0,
    SV_ROLE_TENANT_ADMIN = 1u << 1,
    SV_ROLE_PARTNER_ADMIN = 1u << 2,
};

/* Permissions that policies grant (API.md "Secrets"). */
typedef enum {
    SV_PERM_READ = 1u << 0,
    SV_PERM_LIST = 1u << 1,
    SV_PERM_WRITE = 1u << 2,
    SV_PERM_DELETE = 1u << 3,
    SV_PERM_ROTATE = 1u << 4,
    SV_PERM_ADMIN = 1u << 5,
} sv_perm_t;

/* The permissions that change a secret: on partner secrets, no policy grants them. */
#define SV_PERM_CHANGES (SV_PERM_WRITE | SV_PERM_DELETE | SV_PERM_ROTATE | SV_PERM_ADMIN)

/** The name of a permission ("read", ...), or NULL. */
const char *sv_perm_name(sv_perm_t p);
/** The permission called name, or 0. */
sv_perm_t sv_perm_from_name(const char *name, size_t len);

#define SV_ID_MAX 256
#define SV_TENANT_MAX 64
#define SV_PRINCIPAL_MAX_GROUPS 32

typedef struct {
    bool bootstrap;                    /* authenticated with BOOTSTRAP_TOKEN */
    char identity_id[SV_ID_MAX];       /* "sa:billing", "user:admin@acme.example" */
    char identity_type[24];            /* "user", "service_account", "bootstrap" */
    char tenant_id[SV_TENANT_MAX];     /* the token's tenant_id claim; "" if none */
    char partner_id[SV_TENANT_MAX];    /* "" if none */
    uint32_t scopes;                   /* SV_SCOPE_* */
    uint32_t roles;                    /* SV_ROLE_* */
    char scope_text[1024];             /* the token's scope claim as given */
    char groups[SV_PRINCIPAL_MAX_GROUPS][SV_ID_MAX / 2]; /* the token's groups claim (informational) */
    unsigned n_groups;
    bool mfa;                          /* amr contains "mfa" */
    char jti[128];
    char issuer[256];
    int64_t issued_at, expires_at, not_before; /* seconds; 0 when absent */
} sv_principal_t;

/** The bit of a scope name ("secrets:read"), or 0 when unknown. */
uint32_t sv_scope_from_name(const char *name, size_t len);
/** The name of one scope bit, or NULL. */
const char *sv_scope_name(uint32_t bit);
/** Whether p is a super admin (bootstrap token or role super_admin). */
static inline bool sv_principal_is_super_admin(const sv_principal_t *p)
{
    return p->bootstrap || (p->roles & SV_ROLE_SUPER_ADMIN);
}
/** Whether s is a valid tenant id: [A-Za-z0-9_-]{1,63}. */
bool sv_tenant_id_valid(const char *s, size_t len);

#endif
