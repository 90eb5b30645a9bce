/*
 * idsync.c - on-demand and periodic identity syncs (idsync.h).
 *
 * A sync is a job: the fetch runs on the outbound thread (src/scim.c), then
 * one writer unit stores the result with its audit entry. The periodic sync
 * is the scheduler's handler: it may block, so it waits for its fetch and
 * its unit, and moves its timer one interval on. Stopping unregisters the
 * handler, which waits for a sync that is running.
 *
 * Public functions: any thread. Fetch callbacks: the outbound thread. The
 * handler: the scheduler thread.
 */
#include "sv_autoconf.h"

#include "src/idsync.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/audit_entry.h"
#include "src/auth.h"
#include "src/log.h"
#include "src/scheduler.h"

#define MAX_TENANTS 4096

struct sv_identity {
    sv_app_t *app;
    sv_scim_config_t scim;
    bool registered; /* the scheduler runs sync_job */
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

/* ---- periodic: a persistent timer per synced tenant ---- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} fetch_wait_t;

static void fetch_signal(sv_scim_sync_t *s)
{
    fetch_wait_t *fw = s->arg;
    pthread_mutex_lock(&fw->lock);
    fw->done = true;
    pthread_cond_signal(&fw->cond);
    pthread_mutex_unlock(&fw->lock);
}

static sv_err_t job_apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    job_t *j = u->arg;
    sv_err_t err = sv_scim_apply_tx(tx, &j->sync); /* the handler moves the timer itself */
    if (err != SV_OK && err != SV_EMAPFULL) {
        /* the entry says what became of the sync (a map growth replays the unit) */
        j->entry.success = false;
        snprintf(j->entry.error_code, sizeof(j->entry.error_code), "%s",
                 err == SV_EGONE ? "conflict" : "storage_unavailable");
    }
    return err;
}

/* The scheduler's handler for kind "identity_sync", key = the tenant: fetch
 * (waiting on this thread, which may block), commit with an audit entry, and
 * move the timer one interval on, whatever the outcome. */
static sv_err_t sync_job(void *arg, sv_sched_job_t *job)
{
    struct sv_identity *idn = arg;
    sv_app_t *app = idn->app;
    job->next_due_ms = job->now_ms + app->cfg->identity_sync_interval_ms;
    fetch_wait_t fw = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    sv_scim_sync_t *s;
    sv_err_t err = sv_idsync_fetch(app, job->key, fetch_signal, &fw, &s);
    if (err != SV_OK)
        return err;
    pthread_mutex_lock(&fw.lock);
    while (!fw.done)
        pthread_cond_wait(&fw.cond, &fw.lock);
    pthread_mutex_unlock(&fw.lock);
    job_t *j = (job_t *)s;
    sv_audit_entry_t *a = &j->entry;
    snprintf(a->request_id, sizeof(a->request_id), "scheduler");
    snprintf(a->tenant_id, sizeof(a->tenant_id), "%s", s->tenant_id);
    snprintf(a->identity_id, sizeof(a->identity_id), "system:identity-sync");
    snprintf(a->action, sizeof(a->action), "identity_sync");
    snprintf(a->path, sizeof(a->path), "%s", s->tenant_id);
    a->success = s->result == SV_OK;
    if (!a->success) {
        snprintf(a->error_code, sizeof(a->error_code), "backend_error");
        sv_log_warn("periodic identity sync of %s failed: %s", s->tenant_id, s->error);
    }
    memset(&j->unit, 0, sizeof(j->unit));
    j->unit.apply = s->result == SV_OK ? job_apply : NULL;
    j->unit.arg = j;
    j->unit.audit = a;
    err = sv_writer_run(app->writer, &j->unit);
    if (err == SV_OK && s->result == SV_OK) {
        sv_identity_bump_generation();
        sv_log_info("identity sync of %s: %zu users, %zu service accounts, %zu groups", s->tenant_id, s->n_users,
                    s->n_service_accounts, s->n_groups);
    } else if (err == SV_EGONE) {
        job->next_due_ms = 0; /* removed: a deleted tenant is not synced again until someone asks */
        sv_log_info("identity sync of %s not stored: the tenant is being deleted; its periodic sync stops",
                    s->tenant_id);
    } else if (err != SV_OK) {
        sv_log_warn("identity sync of %s could not be stored: %s", s->tenant_id, sv_strerror(err));
    }
    sv_idsync_free(s);
    return SV_OK; /* failures are audited; the next try is one interval on */
}

sv_err_t sv_idsync_schedule_tx(sv_app_t *app, sv_wtxn_t *tx, const char *tenant)
{
    int64_t due = sv_wtxn_now_us(tx) / 1000 + app->cfg->identity_sync_interval_ms;
    return sv_scheduler_at_tx(app->scheduler, tx, SV_IDSYNC_KIND, tenant, due);
}

/* ---- the part ---- */

typedef struct {
    char (*tenants)[SV_TENANT_MAX];
    size_t n;
} tenant_list_t;

static bool load_tenant(void *arg, const char *tenant)
{
    tenant_list_t *l = arg;
    if (l->n < MAX_TENANTS)
        snprintf(l->tenants[l->n++], SV_TENANT_MAX, "%s", tenant);
    return true;
}

/* Tenants synced before the periodic sync had persistent timers get one. */
static sv_err_t ensure_timers(sv_app_t *app)
{
    tenant_list_t l = {.tenants = calloc(MAX_TENANTS, SV_TENANT_MAX)};
    if (l.tenants == NULL)
        return SV_ENOMEM;
    sv_store_reader_t *reader;
    sv_err_t err = sv_store_reader_new(app->store, &reader);
    if (err == SV_OK) {
        sv_txn_t *txn;
        if ((err = sv_store_read_begin(reader, &txn)) == SV_OK) {
            err = sv_scim_each_synced_tenant(txn, load_tenant, &l);
            sv_store_read_end(reader);
        }
        sv_store_reader_free(reader);
    }
    int64_t due = sv_scheduler_now_ms() + app->cfg->identity_sync_interval_ms;
    for (size_t i = 0; err == SV_OK && i < l.n; i++)
        err = sv_scheduler_ensure(app->scheduler, SV_IDSYNC_KIND, l.tenants[i], due);
    free(l.tenants);
    return err;
}

sv_err_t sv_idsync_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    const sv_config_t *cfg = app->cfg;
    if (cfg->directory_url != NULL && (cfg->client_id == NULL || cfg->client_secret == NULL || cfg->scaikey_issuer == NULL)) {
        snprintf(msg, msglen, "SCAIKEY_DIRECTORY_URL needs SCAIKEY_ISSUER, SCAIKEY_CLIENT_ID and SCAIKEY_CLIENT_SECRET");
        return SV_EINVAL;
    }
    struct sv_identity *idn = calloc(1, sizeof(*idn));
    if (idn == NULL)
        return SV_ENOMEM;
    idn->app = app;
    idn->scim = (sv_scim_config_t){.issuer = cfg->scaikey_issuer,
                                   .directory_url = cfg->directory_url,
                                   .client_id = cfg->client_id,
                                   .client_secret = cfg->client_secret,
                                   .timeout_ms = 10000};
    app->identity = idn;
    if (cfg->directory_url == NULL || app->scheduler == NULL)
        return SV_OK; /* no directory: the timers of earlier syncs wait */
    sv_err_t err = sv_scheduler_register(app->scheduler, SV_IDSYNC_KIND, sync_job, idn);
    if (err == SV_OK) {
        idn->registered = true;
        err = ensure_timers(app);
    }
    if (err != SV_OK) {
        snprintf(msg, msglen, "identity: cannot schedule the periodic sync: %s", sv_strerror(err));
        sv_idsync_part_stop(app);
    }
    return err;
}

void sv_idsync_part_stop(sv_app_t *app)
{
    struct sv_identity *idn = app->identity;
    if (idn == NULL)
        return;
    if (idn->registered)
        sv_scheduler_unregister(app->scheduler, SV_IDSYNC_KIND); /* waits for a running sync */
    free(idn);
    app->identity = NULL;
}
