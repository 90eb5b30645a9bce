/*
 * idsync.h - the identity part: runs identity syncs (src/scim.h) on demand
 * (POST /v1/identity/sync) and periodically (IDENTITY_SYNC_INTERVAL) for
 * every tenant that has synced before.
 *
 * The periodic sync is a persistent timer of the scheduler (src/scheduler.h),
 * kind "identity_sync", key = the tenant: a sync that commits moves its
 * tenant's timer one interval on, in the same unit, so a restart neither
 * loses nor doubles it. A periodic sync commits in one writer unit with an
 * `identity_sync` audit entry whose identity is "system:identity-sync".
 */
#ifndef SV_IDSYNC_H
#define SV_IDSYNC_H

#include "src/app.h"
#include "src/scim.h"

#define SV_IDSYNC_KIND "identity_sync" /* the scheduler's kind */

/** Server part: app->identity. Needs app->outbound and app->auth. */
sv_err_t sv_idsync_part_init(sv_app_t *app, char *msg, size_t msglen);
void sv_idsync_part_stop(sv_app_t *app);

/** Whether a directory is configured (SCAIKEY_DIRECTORY_URL). */
bool sv_idsync_configured(const sv_app_t *app);

/** Starts fetching tenant's directory entries into a new sync; done(s) runs on
 * the outbound thread; the caller owns s afterwards (sv_idsync_free). Errors:
 * SV_ENOTFOUND (no directory configured), SV_ENOMEM, SV_ESHUTDOWN. */
sv_err_t sv_idsync_fetch(sv_app_t *app, const char *tenant, void (*done)(sv_scim_sync_t *s), void *arg,
                         sv_scim_sync_t **out);
/** Frees a sync made by sv_idsync_fetch. */
void sv_idsync_free(sv_scim_sync_t *s);
/** Inside the unit that commits a sync of tenant: (re)sets the tenant's
 * periodic timer to one IDENTITY_SYNC_INTERVAL from now. Errors: those of
 * sv_scheduler_at_tx. */
sv_err_t sv_idsync_schedule_tx(sv_app_t *app, sv_wtxn_t *tx, const char *tenant);

#endif
