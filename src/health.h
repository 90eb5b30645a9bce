/*
 * health.h - readiness checks, the dependency report of
 * GET /v1/health/detailed, and the server-wide metrics of /v1/metrics.
 *
 * The checks are cheap enough for a worker: storage is one read snapshot and
 * one meta lookup; the KMS is whatever its part says (a hook) plus, for the
 * local provider, opening and reading the key file. Other parts (KMS, auth,
 * webhooks, replication, audit) report their state through the hooks below,
 * which they install from their init; a field whose hook is missing is
 * reported as null.
 */
#ifndef SV_HEALTH_H
#define SV_HEALTH_H

#include "src/json.h"
#include "src/latency.h"
#include "src/metrics.h"
#include "src/sv.h"
#include "store/env.h"

struct sv_app;
typedef struct sv_health sv_health_t;

/* ---- hooks other parts install (all optional) ---- */

typedef struct {
    const char *provider; /* "local", "aws", "pkcs11"; NULL: from KMS_PROVIDER */
    /* Whether the KMS can be used now; otherwise a reason in why. Runs on an
     * HTTP worker: never block (a remote KMS answers from its last call). */
    bool (*check)(void *ctx, char *why, size_t whylen);
    void *ctx;
    sv_latency_t *latency; /* latencies of recent KMS calls, or NULL */
} sv_health_kms_t;

typedef struct {
    /* seconds since the JWKS was last fetched successfully; -1: never */
    int64_t (*jwks_age_s)(void *ctx);
    /* whether the last JWKS refresh succeeded */
    bool (*ok)(void *ctx);
    void *ctx;
} sv_health_scaikey_t;

typedef struct {
    int64_t (*queue_depth)(void *ctx); /* deliveries waiting */
    int64_t (*failing)(void *ctx);     /* webhooks whose last delivery failed */
    void *ctx;
} sv_health_webhooks_t;

typedef struct {
    const char *(*role)(void *ctx); /* "primary" or "replica" */
    int64_t (*lag_lsn)(void *ctx);
    int64_t (*lag_ms)(void *ctx);
    void *ctx;
} sv_health_replication_t;

typedef struct {
    /* whether audit entries can be written now; otherwise why */
    bool (*ok)(void *ctx, char *why, size_t whylen);
    void *ctx;
} sv_health_audit_t;

/** Installs the KMS part's hook (copied; ctx and latency must outlive the
 * server). Call from the part's init, before the HTTP workers start. The
 * health part starts first, so app->health exists by then. */
void sv_health_set_kms(sv_health_t *h, const sv_health_kms_t *kms);
/** Installs the auth part's ScaiKey hook (as sv_health_set_kms). */
void sv_health_set_scaikey(sv_health_t *h, const sv_health_scaikey_t *sk);
/** Installs the webhooks part's hook (as sv_health_set_kms). */
void sv_health_set_webhooks(sv_health_t *h, const sv_health_webhooks_t *wh);
/** Installs the replication part's hook (as sv_health_set_kms). */
void sv_health_set_replication(sv_health_t *h, const sv_health_replication_t *rep);
/** Installs the audit part's hook (as sv_health_set_kms). */
void sv_health_set_audit(sv_health_t *h, const sv_health_audit_t *audit);

/* ---- checks ---- */

typedef struct {
    bool ok;
    double latency_ms;       /* how long the check took */
    uint32_t schema_version; /* storage: the stored schema version */
    char why[1280];          /* when !ok: what failed, for operators */
} sv_health_check_t;

/** Storage: a read snapshot on reader plus a read of the schema version.
 * Call on the reader's thread. */
void sv_health_check_storage(struct sv_app *app, sv_store_reader_t *reader, sv_health_check_t *out);
/** KMS: the KMS part's check when installed and, for the local provider,
 * the key file (KMS_LOCAL_KEY_FILE): it must be a regular, non-empty file
 * whose owner may read it (mode u+r, as created: 0600), and reading it must
 * succeed. The KMS part makes or loads the file at start, so a missing
 * file is not ready. Any thread. */
void sv_health_check_kms(struct sv_app *app, sv_health_check_t *out);

/** GET /v1/health/ready's body: {"status":"ready"|"not_ready", "failed":
 * name|absent, "checks": {...}}. Returns whether every check passed. */
bool sv_health_ready(struct sv_app *app, sv_store_reader_t *reader, sv_jw_t *jw);
/** GET /v1/health/detailed's body (API.md "Health"). */
void sv_health_detailed(struct sv_app *app, sv_store_reader_t *reader, sv_jw_t *jw);

/** The local KMS key file's path: KMS_LOCAL_KEY_FILE or
 * $SCAIVAULT_DATA_DIR/master.key, into out. */
void sv_health_kms_key_path(const struct sv_app *app, char *out, size_t cap);

/* ---- the server part ---- */

/** Creates app->metrics (the registry every other part registers in, so this
 * part starts first) and app->health, and registers the server-wide metrics:
 * uptime, build info, writer (commits, batch sizes, commit/fsync latency,
 * queue depth), storage (read latency, map use, reader slots), and the token
 * and data-key cache counters that src/auth and src/keyring increment. */
sv_err_t sv_health_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Frees app->health and app->metrics (after every other part stopped). */
void sv_health_part_stop(struct sv_app *app);

#endif
