/*
 * audit_entry.h - one audit log entry as the rest of the program hands it to
 * the audit log: what happened, to what, by whom, with what outcome. The audit
 * module (src/audit.c) gives it a sequence number, a time and its place in the
 * hash chain when the writer appends it.
 *
 * A unit submitted to the writer with `u->audit` pointing at an entry gets it
 * appended in the same transaction as the unit's changes (wal/writer.h). That
 * is how requests are audited, and how other events are (a promotion, a
 * scheduled sync): submit a unit whose audit field points at an entry.
 */
#ifndef SV_AUDIT_ENTRY_H
#define SV_AUDIT_ENTRY_H

#include "src/principal.h"

#define SV_REQUEST_ID_MAX 64

typedef struct {
    char request_id[SV_REQUEST_ID_MAX + 1];
    char tenant_id[SV_TENANT_MAX];
    char identity_id[SV_ID_MAX];
    char action[40];   /* "secret_read", "identity_promoted", ... */
    char path[600];    /* a secret path, a policy name, an identity id; "" when none */
    bool success;
    char error_code[40]; /* the API error code when !success */
    int status;        /* the HTTP status (0 for events that are not requests) */
    char ip[46];
    char user_agent[256];
} sv_audit_entry_t;

#endif
