/*
 * cmd_devtoken.c - `scaivault dev-token --sub ID [--tenant T] [--scope "..."]
 * [--ttl 1h] [--mfa] [--groups a,b] [--roles r1,r2] [--partner P]
 * [--data-dir D]`: prints a JWT signed by the dev issuer of a running (or
 * once run) `scaivault server --dev` with data directory D (default
 * SCAIVAULT_DATA_DIR), with that server's URL as issuer and its audience.
 * Development only: the key lives unprotected in the data directory.
 */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/commands.h"
#include "src/devissuer.h"
#include "src/identity.h"

/* Writes a comma-separated list as a JSON array of strings. */
static bool jw_list(sv_jw_t *jw, const char *list, bool (*valid)(const char *, size_t))
{
    sv_jw_arr_begin(jw);
    while (list != NULL && *list) {
        size_t n = strcspn(list, ",");
        if (n > 0) {
            if (valid != NULL && !valid(list, n))
                return false;
            sv_jw_str(jw, list, n);
        }
        list += n;
        if (*list == ',')
            list++;
    }
    sv_jw_arr_end(jw);
    return true;
}

static bool valid_role(const char *s, size_t n)
{
    return (n == 12 && memcmp(s, "tenant_admin", 12) == 0) || (n == 13 && memcmp(s, "partner_admin", 13) == 0);
}

int sv_cmd_devtoken(int argc, char **argv)
{
    static const char *const known[] = {"sub=", "tenant=", "scope=", "ttl=", "mfa", "groups=", "roles=",
                                        "partner=", "data-dir=", NULL};
    const char *bad_why;
    const char *bad = sv_cli_unknown(argc, argv, known, &bad_why);
    if (bad != NULL) {
        sv_cli_error("dev-token: %s '%s'", bad_why, bad);
        return 2;
    }
    const char *sub = sv_cli_opt(argc, argv, "sub");
    const char *tenant = sv_cli_opt(argc, argv, "tenant");
    const char *scope = sv_cli_opt(argc, argv, "scope");
    const char *ttl = sv_cli_opt(argc, argv, "ttl");
    const char *groups = sv_cli_opt(argc, argv, "groups");
    const char *roles = sv_cli_opt(argc, argv, "roles");
    const char *partner = sv_cli_opt(argc, argv, "partner");
    const char *dir = sv_cli_opt(argc, argv, "data-dir");
    if (dir == NULL)
        dir = getenv("SCAIVAULT_DATA_DIR");
    if (dir == NULL || dir[0] == 0)
        dir = "./data";
    if (sub == NULL || !sv_identity_id_valid(sub, strlen(sub)) ||
        (strncmp(sub, "sa:", 3) != 0 && strncmp(sub, "user:", 5) != 0)) {
        sv_cli_error("dev-token: --sub must be an identity id such as sa:app or user:ann@example.com");
        return 2;
    }
    if (tenant != NULL && !sv_tenant_id_valid(tenant, strlen(tenant))) {
        sv_cli_error("dev-token: --tenant must match [A-Za-z0-9_-]{1,63}");
        return 2;
    }
    if (partner != NULL && !sv_tenant_id_valid(partner, strlen(partner))) {
        sv_cli_error("dev-token: --partner must match [A-Za-z0-9_-]{1,63}");
        return 2;
    }
    int64_t ttl_ms = 3600 * 1000;
    if (ttl != NULL && (sv_duration_parse(ttl, strlen(ttl), &ttl_ms) != SV_OK || ttl_ms < 1000)) {
        sv_cli_error("dev-token: --ttl must be a duration such as 1h, 15m or 3600");
        return 2;
    }
    char issuer[300], audience[256], why[300];
    sv_err_t err = sv_devissuer_read_info(dir, issuer, sizeof(issuer), audience, sizeof(audience));
    if (err != SV_OK) {
        sv_cli_error("dev-token: no dev server has run with data dir '%s' (%s/%s: %s); start `scaivault server "
                     "--dev` and pass the data dir it prints with --data-dir",
                     dir, dir, SV_DEV_INFO_FILE, sv_strerror(err));
        return 1;
    }
    sv_devissuer_t *di;
    if ((err = sv_devissuer_open(dir, false, &di, why, sizeof(why))) != SV_OK) {
        sv_cli_error("dev-token: %s", why);
        return 1;
    }
    int64_t now = sv_now_s();
    uint8_t rnd[12];
    char jti[32];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2base64(jti, sizeof(jti), rnd, sizeof(rnd), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sv_buf_t claims;
    sv_buf_init(&claims, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &claims);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "iss");
    sv_jw_cstr(&jw, issuer);
    sv_jw_key(&jw, "aud");
    sv_jw_cstr(&jw, audience);
    sv_jw_key(&jw, "sub");
    sv_jw_cstr(&jw, sub);
    if (tenant != NULL) {
        sv_jw_key(&jw, "tenant_id");
        sv_jw_cstr(&jw, tenant);
    }
    if (partner != NULL) {
        sv_jw_key(&jw, "partner_id");
        sv_jw_cstr(&jw, partner);
    }
    sv_jw_key(&jw, "scope");
    sv_jw_cstr(&jw, scope != NULL ? scope : "");
    sv_jw_key(&jw, "groups");
    bool groups_ok = jw_list(&jw, groups, sv_group_id_valid);
    sv_jw_key(&jw, "roles");
    if (!groups_ok || !jw_list(&jw, roles, valid_role)) {
        if (!groups_ok)
            sv_cli_error("dev-token: --groups takes group ids of [A-Za-z0-9_.:@-], separated by commas");
        else
            sv_cli_error("dev-token: --roles takes tenant_admin, partner_admin (super_admin is never taken from a "
                         "token)");
        sv_buf_free(&claims);
        sv_devissuer_free(di);
        return 2;
    }
    sv_jw_key(&jw, "amr");
    sv_jw_arr_begin(&jw);
    sv_jw_cstr(&jw, "pwd");
    if (sv_cli_flag(argc, argv, "mfa"))
        sv_jw_cstr(&jw, "mfa");
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "jti");
    sv_jw_cstr(&jw, jti);
    sv_jw_key(&jw, "iat");
    sv_jw_int(&jw, now);
    sv_jw_key(&jw, "nbf");
    sv_jw_int(&jw, now);
    sv_jw_key(&jw, "exp");
    sv_jw_int(&jw, now + ttl_ms / 1000);
    sv_jw_obj_end(&jw);
    sv_buf_t tok;
    sv_buf_init(&tok, false);
    err = claims.failed ? SV_ENOMEM : sv_devissuer_sign(di, (const char *)claims.base, claims.len, &tok);
    if (err == SV_OK)
        printf("%.*s\n", (int)tok.len, (const char *)tok.base);
    else
        sv_cli_error("dev-token: cannot sign: %s", sv_strerror(err));
    sv_buf_free(&tok);
    sv_buf_free(&claims);
    sv_devissuer_free(di);
    return err == SV_OK ? 0 : 1;
}
