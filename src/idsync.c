/*
 * idsync.c - on-demand and periodic identity syncs (idsync.h).
 *
 * The list of tenants that have synced is read from storage once at start
 * and grown after each committed sync, so the periodic timer never needs a
 * read transaction on the outbound thread. Each periodic sync is a job: fetch
 * on the outbound thread, then a writer unit (apply + audit entry) whose
 * completion frees the job. Stopping cancels the timer and waits for jobs.
 *
 * Public functions: any thread. Timer and fetch callbacks: outbound thread.
 * Unit completion: writer thread.
 */
#include "sv_autoconf.h"

#include "src/idsync.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/audit_entry.h"
#include "src/auth.h"
#include "src/log.h"

#define MAX_TENANTS 4096

struct sv_identity {
    sv_app_t *app;
    sv_scim_config_t scim;
    pthread_mutex_t lock; /* tenants, jobs, stopping */
    char (*tenants)[SV_TENANT_MAX];
    size_t n_tenants;
    unsigned jobs;        /* periodic syncs running */
    bool stopping;
};

typedef struct {
    sv_scim_sync_t sync;
    sv_unit_t unit;
    sv_audit_entry_t entry;
    struct sv_identity *idn;
} job_t;

bool sv_idsync_configured(const sv_app_t *app)
{
    return app->identity != NULL && app->cfg->directory_url != NULL;
}

static void add_tenant_locked(struct sv_identity *idn, const char *tenant)
{
    for (size_t i = 0; i < idn->n_tenants; i++)
        if (strcmp(idn->tenants[i], tenant) == 0)
            return;
    if (idn->n_tenants < MAX_TENANTS)
        snprintf(idn->tenants[idn->n_tenants++], SV_TENANT_MAX, "%s", tenant);
}

void sv_idsync_committed(sv_app_t *app, const char *tenant)
{
    sv_identity_bump_generation();
    struct sv_identity *idn = app->identity;
    if (idn == NULL)
        return;
    pthread_mutex_lock(&idn->lock);
    add_tenant_locked(idn, tenant);
    pthread_mutex_unlock(&idn->lock);
}

static void fill_token_endpoint(struct sv_identity *idn, char *out, size_t cap)
{
    sv_auth_token_endpoint(idn->app->auth, out, cap);
}

sv_err_t sv_idsync_fetch(sv_app_t *app, const char *tenant, void (*done)(sv_scim_sync_t *s), void *arg,
                         sv_scim_sync_t **out)
{
    struct sv_identity *idn = app->identity;
    if (!sv_idsync_configured(app))
        return SV_ENOTFOUND;
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return SV_ENOMEM;
    j->idn = idn;
    snprintf(j->sync.tenant_id, sizeof(j->sync.tenant_id), "%s", tenant);
    j->sync.done = done;
    j->sync.arg = arg;
    char te[512];
    fill_token_endpoint(idn, te, sizeof(te));
    sv_scim_config_t cfg = idn->scim;
    cfg.token_endpoint = te[0] ? te : NULL; /* copied by sv_scim_sync_start */
    sv_err_t err = sv_scim_sync_start(app->outbound, &cfg, &j->sync);
    if (err != SV_OK) {
        free(j);
        return err;
    }
    *out = &j->sync;
    return SV_OK;
}

void sv_idsync_free(sv_scim_sync_t *s)
{
    if (s == NULL)
        return;
    sv_scim_sync_clear(s);
    free((job_t *)s); /* sync is the first member of its job */
}

/* ---- periodic ---- */

static sv_err_t job_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    job_t *j = u->arg;
    return sv_scim_apply_tx(tx, &j->sync);
}

static void job_complete(sv_unit_t *u)
{
    job_t *j = u->arg;
    struct sv_identity *idn = j->idn;
    if (u->result == SV_OK) {
        sv_idsync_committed(idn->app, j->sync.tenant_id);
        sv_log_info("identity sync of %s: %zu users, %zu service accounts, %zu groups", j->sync.tenant_id,
                    j->sync.n_users, j->sync.n_service_accounts, j->sync.n_groups);
    } else {
        sv_log_warn("identity sync of %s could not be stored: %s", j->sync.tenant_id, sv_strerror(u->result));
    }
    sv_idsync_free(&j->sync);
    pthread_mutex_lock(&idn->lock);
    idn->jobs--;
    pthread_mutex_unlock(&idn->lock);
}

/* Outbound thread: a periodic fetch ended; store it (or audit the failure). */
static void periodic_fetched(sv_scim_sync_t *s)
{
    job_t *j = (job_t *)s;
    struct sv_identity *idn = j->idn;
    sv_audit_entry_t *a = &j->entry;
    snprintf(a->request_id, sizeof(a->request_id), "periodic");
    snprintf(a->tenant_id, sizeof(a->tenant_id), "%s", s->tenant_id);
    snprintf(a->identity_id, sizeof(a->identity_id), "system:identity-sync");
    snprintf(a->action, sizeof(a->action), "identity_sync");
    snprintf(a->path, sizeof(a->path), "%s", s->tenant_id);
    a->success = s->result == SV_OK;
    if (!a->success) {
        snprintf(a->error_code, sizeof(a->error_code), "backend_error");
        sv_log_warn("periodic identity sync of %s failed: %s", s->tenant_id, s->error);
    }
    j->unit.apply = s->result == SV_OK ? job_apply : NULL;
    j->unit.complete = job_complete;
    j->unit.arg = j;
    j->unit.audit = a;
    if (sv_writer_submit(idn->app->writer, &j->unit) != SV_OK) {
        sv_idsync_free(&j->sync);
        pthread_mutex_lock(&idn->lock);
        idn->jobs--;
        pthread_mutex_unlock(&idn->lock);
    }
}

static void periodic_tick(void *arg)
{
    struct sv_identity *idn = arg;
    pthread_mutex_lock(&idn->lock);
    size_t n = idn->n_tenants;
    bool stopping = idn->stopping;
    pthread_mutex_unlock(&idn->lock);
    for (size_t i = 0; i < n && !stopping; i++) {
        char tenant[SV_TENANT_MAX];
        pthread_mutex_lock(&idn->lock);
        snprintf(tenant, sizeof(tenant), "%s", idn->tenants[i]);
        idn->jobs++;
        pthread_mutex_unlock(&idn->lock);
        sv_scim_sync_t *s;
        if (sv_idsync_fetch(idn->app, tenant, periodic_fetched, NULL, &s) != SV_OK) {
            pthread_mutex_lock(&idn->lock);
            idn->jobs--;
            pthread_mutex_unlock(&idn->lock);
        }
    }
    if (!stopping)
        sv_outbound_timer(idn->app->outbound, (uint64_t)idn->app->cfg->identity_sync_interval_ms, periodic_tick, idn);
}

/* ---- the part ---- */

static bool load_tenant(void *arg, const char *tenant)
{
    add_tenant_locked(arg, tenant);
    return true;
}

sv_err_t sv_idsync_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    struct sv_identity *idn = calloc(1, sizeof(*idn));
    if (idn == NULL || (idn->tenants = calloc(MAX_TENANTS, SV_TENANT_MAX)) == NULL) {
        free(idn);
        return SV_ENOMEM;
    }
    const sv_config_t *cfg = app->cfg;
    idn->app = app;
    pthread_mutex_init(&idn->lock, NULL);
    idn->scim = (sv_scim_config_t){.issuer = cfg->scaikey_issuer,
                                   .directory_url = cfg->directory_url,
                                   .client_id = cfg->client_id,
                                   .client_secret = cfg->client_secret,
                                   .timeout_ms = 10000};
    if (cfg->directory_url != NULL && (cfg->client_id == NULL || cfg->client_secret == NULL || cfg->scaikey_issuer == NULL)) {
        snprintf(msg, msglen, "SCAIKEY_DIRECTORY_URL needs SCAIKEY_ISSUER, SCAIKEY_CLIENT_ID and SCAIKEY_CLIENT_SECRET");
        pthread_mutex_destroy(&idn->lock);
        free(idn->tenants);
        free(idn);
        return SV_EINVAL;
    }
    sv_store_reader_t *reader;
    sv_err_t err = sv_store_reader_new(app->store, &reader);
    if (err == SV_OK) {
        sv_txn_t *txn;
        if ((err = sv_store_read_begin(reader, &txn)) == SV_OK) {
            err = sv_scim_each_synced_tenant(txn, load_tenant, idn);
            sv_store_read_end(reader);
        }
        sv_store_reader_free(reader);
    }
    if (err != SV_OK) {
        snprintf(msg, msglen, "identity: cannot read the synced tenants: %s", sv_strerror(err));
        pthread_mutex_destroy(&idn->lock);
        free(idn->tenants);
        free(idn);
        return err;
    }
    app->identity = idn;
    if (cfg->directory_url != NULL)
        sv_outbound_timer(app->outbound, (uint64_t)cfg->identity_sync_interval_ms, periodic_tick, idn);
    return SV_OK;
}

void sv_idsync_part_stop(sv_app_t *app)
{
    struct sv_identity *idn = app->identity;
    if (idn == NULL)
        return;
    pthread_mutex_lock(&idn->lock);
    idn->stopping = true;
    pthread_mutex_unlock(&idn->lock);
    sv_outbound_timer_cancel(app->outbound, periodic_tick, idn);
    for (;;) {
        pthread_mutex_lock(&idn->lock);
        unsigned jobs = idn->jobs;
        pthread_mutex_unlock(&idn->lock);
        if (jobs == 0)
            break;
        usleep(2000);
    }
    pthread_mutex_destroy(&idn->lock);
    free(idn->tenants);
    free(idn);
    app->identity = NULL;
}
