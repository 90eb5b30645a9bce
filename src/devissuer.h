/*
 * devissuer.h - the development token issuer of `scaivault server --dev`: an
 * ES256 key kept in the data directory, whose public half the dev server
 * serves at /v1/dev/jwks and accepts, and which `scaivault dev-token` signs
 * with.
 *
 * Files in the data directory (mode 0600):
 *   dev-issuer.pem   the EC P-256 private key (created at the first --dev start)
 *   dev-issuer.json  {"issuer": "<the dev server's URL>", "kid", "audience"},
 *                    written once the server knows its port
 * The CLI finds them with --data-dir, else SCAIVAULT_DATA_DIR.
 */
#ifndef SV_DEVISSUER_H
#define SV_DEVISSUER_H

#include <openssl/evp.h>

#include "src/jwks.h"

#define SV_DEV_KEY_FILE "dev-issuer.pem"
#define SV_DEV_INFO_FILE "dev-issuer.json"

typedef struct sv_devissuer sv_devissuer_t;

/** Loads the key from data_dir, creating it (0600) when create is set and it
 * is missing. Errors: SV_ENOTFOUND (no key and !create), SV_EIO, SV_ECRYPTO
 * (unreadable key); why says which file. */
sv_err_t sv_devissuer_open(const char *data_dir, bool create, sv_devissuer_t **out, char *why, size_t whylen);
void sv_devissuer_free(sv_devissuer_t *di);
/** The key's id ("dev-..."). */
const char *sv_devissuer_kid(const sv_devissuer_t *di);
/** A key set with the public key, one reference for the caller. */
sv_err_t sv_devissuer_keyset(sv_devissuer_t *di, sv_jwks_t **out);
/** Appends the public JWKS document. */
sv_err_t sv_devissuer_jwks_json(sv_devissuer_t *di, sv_buf_t *out);
/** Writes dev-issuer.json (issuer URL and audience). */
sv_err_t sv_devissuer_write_info(sv_devissuer_t *di, const char *issuer, const char *audience);
/** Reads dev-issuer.json of data_dir. SV_ENOTFOUND when the dev server has
 * not written it. */
sv_err_t sv_devissuer_read_info(const char *data_dir, char *issuer, size_t icap, char *audience, size_t acap);
/** Signs claims (JSON text) with the dev key: appends the compact JWT. */
sv_err_t sv_devissuer_sign(sv_devissuer_t *di, const char *claims, size_t len, sv_buf_t *out);

#endif
