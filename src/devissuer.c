/*
 * devissuer.c - the --dev token issuer's key and files (devissuer.h).
 *
 * The key is an ES256 (P-256) key in PEM, created with O_EXCL and mode 0600
 * so two starts never race into different keys; its kid is derived from the
 * public key, so it is stable across restarts of the same data directory.
 * Called at start-up (server) or by the CLI; no shared state.
 */
#include "sv_autoconf.h"

#include "src/devissuer.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sv_devissuer {
    EVP_PKEY *key;
    char kid[32];
    char *dir;
};

static void path_of(char *out, size_t cap, const char *dir, const char *file)
{
    snprintf(out, cap, "%s/%s", dir, file);
}

static sv_err_t create_key(const char *path, char *why, size_t whylen)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        snprintf(why, whylen, "cannot generate the dev issuer key");
        return SV_ECRYPTO;
    }
    sv_err_t err = SV_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno != EEXIST) {
            snprintf(why, whylen, "cannot create %s: %s", path, strerror(errno));
            err = SV_EIO;
        }
        goto free_key; /* EEXIST: someone else made it; use theirs */
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        snprintf(why, whylen, "cannot write %s", path);
        err = SV_EIO;
    }
    if (f != NULL)
        fclose(f);
    else
        close(fd);
free_key:
    EVP_PKEY_free(key);
    return err;
}

sv_err_t sv_devissuer_open(const char *data_dir, bool create, sv_devissuer_t **out, char *why, size_t whylen)
{
    char path[1024];
    path_of(path, sizeof(path), data_dir, SV_DEV_KEY_FILE);
    if (access(path, F_OK) != 0) {
        if (!create) {
            snprintf(why, whylen, "no dev issuer key in %s (start `scaivault server --dev` with this data dir first)",
                     data_dir);
            return SV_ENOTFOUND;
        }
        sv_err_t err = create_key(path, why, whylen);
        if (err != SV_OK)
            return err;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return SV_EIO;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL || EVP_PKEY_is_a(key, "EC") != 1) {
        EVP_PKEY_free(key);
        snprintf(why, whylen, "%s is not an EC private key", path);
        return SV_ECRYPTO;
    }
    sv_devissuer_t *di = calloc(1, sizeof(*di));
    if (di == NULL || (di->dir = strdup(data_dir)) == NULL) {
        free(di);
        EVP_PKEY_free(key);
        return SV_ENOMEM;
    }
    di->key = key;
    /* kid: a digest of the public JWK, so it is stable for this key */
    sv_buf_t jwk;
    sv_buf_init(&jwk, false);
    sv_jwk_write(key, "", SV_JWT_ALG_ES256, &jwk);
    uint8_t h[9];
    crypto_generichash(h, sizeof(h), jwk.base, jwk.len, NULL, 0);
    sv_buf_free(&jwk);
    memcpy(di->kid, "dev-", 4);
    sodium_bin2base64(di->kid + 4, sizeof(di->kid) - 4, h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    *out = di;
    return SV_OK;
}

void sv_devissuer_free(sv_devissuer_t *di)
{
    if (di == NULL)
        return;
    EVP_PKEY_free(di->key);
    free(di->dir);
    free(di);
}

const char *sv_devissuer_kid(const sv_devissuer_t *di)
{
    return di->kid;
}

sv_err_t sv_devissuer_keyset(sv_devissuer_t *di, sv_jwks_t **out)
{
    if (EVP_PKEY_up_ref(di->key) != 1)
        return SV_ECRYPTO;
    sv_jwk_t k = {.alg = SV_JWT_ALG_ES256, .pkey = di->key};
    snprintf(k.kid, sizeof(k.kid), "%s", di->kid);
    sv_err_t err = sv_jwks_from_keys(&k, 1, out);
    if (err != SV_OK)
        EVP_PKEY_free(di->key);
    return err;
}

sv_err_t sv_devissuer_jwks_json(sv_devissuer_t *di, sv_buf_t *out)
{
    sv_buf_puts(out, "{\"keys\":[");
    sv_err_t err = sv_jwk_write(di->key, di->kid, SV_JWT_ALG_ES256, out);
    sv_buf_puts(out, "]}");
    return err != SV_OK ? err : out->failed ? SV_ENOMEM : SV_OK;
}

sv_err_t sv_devissuer_write_info(sv_devissuer_t *di, const char *issuer, const char *audience)
{
    char path[1024], tmp[1040];
    path_of(path, sizeof(path), di->dir, SV_DEV_INFO_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &b);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "issuer");
    sv_jw_cstr(&jw, issuer);
    sv_jw_key(&jw, "kid");
    sv_jw_cstr(&jw, di->kid);
    sv_jw_key(&jw, "audience");
    sv_jw_cstr(&jw, audience);
    sv_jw_obj_end(&jw);
    sv_buf_putc(&b, '\n');
    sv_err_t err = b.failed ? SV_ENOMEM : SV_OK;
    int fd = err == SV_OK ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (err == SV_OK && (fd < 0 || write(fd, b.base, b.len) != (ssize_t)b.len || fsync(fd) != 0))
        err = SV_EIO;
    if (fd >= 0)
        close(fd);
    if (err == SV_OK && rename(tmp, path) != 0)
        err = SV_EIO;
    sv_buf_free(&b);
    return err;
}

sv_err_t sv_devissuer_read_info(const char *data_dir, char *issuer, size_t icap, char *audience, size_t acap)
{
    char path[1024];
    path_of(path, sizeof(path), data_dir, SV_DEV_INFO_FILE);
    sv_json_doc_t *doc;
    sv_err_t lerr = sv_json_load_file(path, &doc);
    if (lerr != SV_OK)
        return lerr;
    size_t il = 0, al = 0;
    const char *is = sv_json_get_str(sv_json_root(doc), "issuer", &il);
    const char *au = sv_json_get_str(sv_json_root(doc), "audience", &al);
    sv_err_t err = SV_ECORRUPT;
    if (is != NULL && au != NULL && il < icap && al < acap) {
        memcpy(issuer, is, il);
        issuer[il] = 0;
        memcpy(audience, au, al);
        audience[al] = 0;
        err = SV_OK;
    }
    sv_json_doc_free(doc);
    return err;
}

sv_err_t sv_devissuer_sign(sv_devissuer_t *di, const char *claims, size_t len, sv_buf_t *out)
{
    return sv_jwt_sign(di->key, SV_JWT_ALG_ES256, di->kid, claims, len, out);
}
