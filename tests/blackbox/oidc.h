/*
 * oidc.h - the ScaiKey stand-in for black-box tests: starts
 * tests/peers/oidc/server.mjs (oidc-provider + a SCIM directory, see that
 * file) on 127.0.0.1, gets client-credentials tokens from it, and drives its
 * test-only control endpoints (signing key, published keys, outage, claims,
 * directory contents, arbitrary signed payloads).
 */
#ifndef SV_TESTS_OIDC_H
#define SV_TESTS_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/blackbox/bb.h"

typedef struct {
    pid_t pid;
    int port;
    char url[64];            /* the issuer: http://127.0.0.1:PORT */
    char env_issuer[128];    /* SCAIKEY_ISSUER=<url>, for a server's env */
    char env_directory[160]; /* SCAIKEY_DIRECTORY_URL=<url>/scim/v2 */
} bb_oidc_t;

/** Starts the peer (node must be installed and `npm ci` run in
 * tests/peers/oidc; scripts/test does both). false, with a message, when it
 * does not come up within 30 s. */
bool bb_oidc_start(bb_oidc_t *o);
void bb_oidc_stop(bb_oidc_t *o);

/** Starts the server s (a restart when s->dir is set, as bb_start) against
 * the peer: its issuer, its directory with the sync client's credentials
 * (scaivault-sync), and extra (one more VAR=value, or NULL). As bb_start. */
bool bb_oidc_server_start(bb_oidc_t *o, bb_server_t *s, const char *extra);
/** The clean-up of a suite that runs s against o: stops s, removes its temp
 * dir, stops the peer. */
void bb_oidc_stop_all(bb_oidc_t *o, bb_server_t *s);

/** A client-credentials access token for client_id (its secret is
 * "secret-" + the part after the ':' or the whole id for scaivault-sync)
 * with scope. Returns a malloc'd token or NULL. */
char *bb_oidc_token(bb_oidc_t *o, const char *client_id, const char *scope);
/** POSTs json to a control path ("/control/state", ...); the response body is
 * copied to out (may be NULL). Returns the HTTP status (0: transport error). */
long bb_oidc_control(bb_oidc_t *o, const char *path, const char *json, char *out, size_t cap);
/** Resets the control state: sign with rs-1, publish rs-1 and es-1, up,
 * audience "scaivault", TTL 300 s. */
void bb_oidc_reset(bb_oidc_t *o);
/** A token with any payload signed by the provider's key kid, with extra
 * header members (JSON object text or NULL). malloc'd, or NULL. */
char *bb_oidc_sign(bb_oidc_t *o, const char *kid, const char *payload_json, const char *header_json);

#endif
