/*
 * idsync.h - the identity part: runs identity syncs (src/scim.h) on demand
 * (POST /v1/identity/sync) and periodically (IDENTITY_SYNC_INTERVAL) for
 * every tenant that has synced before.
 *
 * The periodic sync uses an in-memory timer of the outbound pool for now;
 * when the persistent scheduler (src/scheduler.h) lands it should own this
 * timer. A periodic sync commits in one writer unit with an `identity_sync`
 * audit entry whose identity is "system:identity-sync".
 */
#ifndef SV_IDSYNC_H
#define SV_IDSYNC_H

#include "src/app.h"
#include "src/scim.h"

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
/** Call after a sync of tenant committed: the periodic sync includes it from
 * now on; the identity generation is bumped. Any thread. */
void sv_idsync_committed(sv_app_t *app, const char *tenant);

#endif
