/*
 * config.c - parsing and validation of the configuration (config.h).
 *
 * One table lists every variable with its parser. Defaults are set first; then
 * each variable takes its value from the environment if set, else from the
 * config file, else keeps its default. A config-file key that is not in the
 * table is an error, so a typo never silently falls back to a default.
 * Runs once on the main thread before anything starts.
 */
#include "sv_autoconf.h"

#include "src/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/fault.h"

typedef sv_err_t (*parse_fn)(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen);

typedef struct {
    const char *name;
    parse_fn parse;
} setting_t;

/* ---- small parsers ---- */

static bool parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (*v == 0)
        return false;
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (n < min || n > max)
        return false;
    *out = n;
    return true;
}

sv_err_t sv_size_parse(const char *s, size_t len, size_t *out)
{
    size_t i = 0;
    uint64_t n = 0;
    while (i < len && isdigit((unsigned char)s[i])) {
        if (n > (UINT64_MAX - 9) / 10)
            return SV_EINVAL;
        n = n * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == 0)
        return SV_EINVAL;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},          {"B", 1},          {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
                 {"GiB", 1ull << 30}, {"TiB", 1ull << 40}, {"KB", 1000},        {"MB", 1000000},
                 {"GB", 1000000000}, {"K", 1ull << 10},  {"M", 1ull << 20},   {"G", 1ull << 30}};
    for (size_t u = 0; u < SV_ARRAY_LEN(units); u++) {
        size_t sl = strlen(units[u].suffix);
        if (len - i == sl && memcmp(s + i, units[u].suffix, sl) == 0) {
            if (n > UINT64_MAX / units[u].mult)
                return SV_EINVAL;
            *out = (size_t)(n * units[u].mult);
            return SV_OK;
        }
    }
    return SV_EINVAL;
}

sv_err_t sv_rate_parse(const char *s, size_t len, sv_rate_t *out)
{
    const char *slash = memchr(s, '/', len);
    if (slash == NULL || slash == s)
        return SV_EINVAL;
    uint64_t n = 0;
    for (const char *p = s; p < slash; p++) {
        if (!isdigit((unsigned char)*p))
            return SV_EINVAL;
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > SV_RATE_MAX)
            return SV_EINVAL; /* also ends the loop long before n could wrap */
    }
    if (n == 0)
        return SV_EINVAL;
    const char *w = slash + 1;
    size_t wl = len - (size_t)(w - s);
    uint64_t window;
    if ((wl == 1 && *w == 's') || (wl == 3 && memcmp(w, "sec", 3) == 0) || (wl == 6 && memcmp(w, "second", 6) == 0))
        window = 1;
    else if ((wl == 1 && *w == 'm') || (wl == 3 && memcmp(w, "min", 3) == 0) ||
             (wl == 6 && memcmp(w, "minute", 6) == 0))
        window = 60;
    else if ((wl == 1 && *w == 'h') || (wl == 4 && memcmp(w, "hour", 4) == 0))
        window = 3600;
    else {
        int64_t ms;
        if (sv_duration_parse(w, wl, &ms) != SV_OK || ms < 1000 || ms % 1000 != 0 || ms > 86400000)
            return SV_EINVAL;
        window = (uint64_t)ms / 1000;
    }
    out->limit = (uint32_t)n;
    out->window_s = (uint32_t)window;
    return SV_OK;
}

const char *sv_rl_category_name(sv_rl_category_t c)
{
    static const char *const names[SV_RL_COUNT_] = {"read", "write", "batch_read", "list", "admin", "auth"};
    return (unsigned)c < SV_RL_COUNT_ ? names[c] : "?";
}

static sv_err_t set_str(char **slot, const char *v)
{
    char *dup = strdup(v);
    if (dup == NULL)
        return SV_ENOMEM;
    free(*slot);
    *slot = dup;
    return SV_OK;
}

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(why, whylen, __VA_ARGS__);                                                                            \
        return SV_EINVAL;                                                                                              \
    } while (0)

static bool is_url(const char *v)
{
    return (strncmp(v, "http://", 7) == 0 && v[7] != 0) || (strncmp(v, "https://", 8) == 0 && v[8] != 0);
}

/* ---- one parser per variable ---- */

static sv_err_t p_listen(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    cfg->n_listen = 0;
    const char *p = v;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        if (cfg->n_listen == SV_MAX_LISTEN)
            FAIL("at most %d addresses", SV_MAX_LISTEN);
        sv_listen_addr_t *a = &cfg->listen[cfg->n_listen];
        const char *colon;
        const char *host = p;
        size_t hlen;
        if (len > 0 && *p == '[') {
            const char *rb = memchr(p, ']', len);
            if (rb == NULL || rb + 1 >= p + len || rb[1] != ':')
                FAIL("'%.*s' is not host:port", (int)len, p);
            host = p + 1;
            hlen = (size_t)(rb - host);
            colon = rb + 1;
        } else {
            colon = NULL;
            for (size_t i = 0; i < len; i++)
                if (p[i] == ':')
                    colon = p + i;
            if (colon == NULL)
                FAIL("'%.*s' is not host:port", (int)len, p);
            hlen = (size_t)(colon - p);
        }
        size_t plen = (size_t)(p + len - colon - 1);
        char port[8];
        uint64_t portn;
        if (hlen == 0 || hlen >= sizeof(a->host) || plen == 0 || plen >= sizeof(port))
            FAIL("'%.*s' is not host:port", (int)len, p);
        memcpy(port, colon + 1, plen);
        port[plen] = 0;
        if (!parse_uint(port, 0, 65535, &portn))
            FAIL("'%s' is not a port number (0-65535)", port);
        memcpy(a->host, host, hlen);
        a->host[hlen] = 0;
        snprintf(a->port, sizeof(a->port), "%u", (unsigned)portn);
        cfg->n_listen++;
        p += len;
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
    }
    if (cfg->n_listen == 0)
        FAIL("no address given");
    return SV_OK;
}

static sv_err_t p_nonempty(char **slot, const char *v, char *why, size_t whylen)
{
    if (*v == 0)
        FAIL("must not be empty");
    return set_str(slot, v);
}

static sv_err_t p_data_dir(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_nonempty(&cfg->data_dir, v, why, whylen);
}

static sv_err_t p_threads(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    uint64_t n;
    if (!parse_uint(v, 1, 256, &n))
        FAIL("'%s' is not a whole number from 1 to 256", v);
    cfg->threads = (unsigned)n;
    return SV_OK;
}

static sv_err_t p_file(char **slot, const char *v, char *why, size_t whylen)
{
    if (*v == 0)
        FAIL("must not be empty");
    if (access(v, R_OK) != 0)
        FAIL("cannot read '%s': %s", v, strerror(errno));
    return set_str(slot, v);
}

static sv_err_t p_tls_cert(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_file(&cfg->tls_cert, v, why, whylen);
}

static sv_err_t p_tls_key(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_file(&cfg->tls_key, v, why, whylen);
}

static sv_err_t p_map_size(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    size_t n;
    if (sv_size_parse(v, strlen(v), &n) != SV_OK || n < (1u << 20))
        FAIL("'%s' is not a size of at least 1MiB (e.g. 1GiB, 512MiB)", v);
    cfg->map_size = n;
    return SV_OK;
}

static sv_err_t p_url(char **slot, const char *v, char *why, size_t whylen)
{
    if (!is_url(v))
        FAIL("'%s' is not an http:// or https:// URL", v);
    return set_str(slot, v);
}

static sv_err_t p_issuer(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_url(&cfg->scaikey_issuer, v, why, whylen);
}

static sv_err_t p_jwks_url(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_url(&cfg->scaikey_jwks_url, v, why, whylen);
}

static sv_err_t p_directory_url(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_url(&cfg->directory_url, v, why, whylen);
}

static sv_err_t p_audience(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_nonempty(&cfg->audience, v, why, whylen);
}

static sv_err_t p_client_id(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_nonempty(&cfg->client_id, v, why, whylen);
}

static sv_err_t p_client_secret(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_nonempty(&cfg->client_secret, v, why, whylen);
}

static sv_err_t p_duration(int64_t *slot, const char *v, int64_t min_ms, char *why, size_t whylen)
{
    int64_t ms;
    if (sv_duration_parse(v, strlen(v), &ms) != SV_OK || ms < min_ms)
        FAIL("'%s' is not a duration of at least %llds and at most 36500d (e.g. 30d, 12h, 15m, 45s)", v,
             (long long)(min_ms / 1000));
    *slot = ms;
    return SV_OK;
}

static sv_err_t p_sync_interval(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->identity_sync_interval_ms, v, 10000, why, whylen);
}

static sv_err_t p_jwks_refresh(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->jwks_refresh_ms, v, 1000, why, whylen);
}

static sv_err_t p_jwks_min_refresh(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->jwks_min_refresh_ms, v, 1000, why, whylen);
}

static sv_err_t p_bootstrap_token(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    size_t len = strlen(v);
    if (len < 16)
        FAIL("must be at least 16 characters");
    crypto_generichash(cfg->bootstrap_token_hash, sizeof(cfg->bootstrap_token_hash), (const uint8_t *)v, len, NULL,
                       0);
    cfg->has_bootstrap_token = true;
    return SV_OK;
}

static bool valid_identity_id(const char *v)
{
    const char *colon = strchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == 0 || strlen(v) > 255)
        return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static sv_err_t p_super_admin(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    if (!valid_identity_id(v))
        FAIL("'%s' is not an identity id like user:admin@acme.example", v);
    return set_str(&cfg->bootstrap_super_admin, v);
}

static sv_err_t p_kms_provider(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "local") == 0)
        cfg->kms_provider = SV_KMS_LOCAL;
    else if (strcmp(v, "aws") == 0)
        cfg->kms_provider = SV_KMS_AWS;
    else if (strcmp(v, "pkcs11") == 0)
        cfg->kms_provider = SV_KMS_PKCS11;
    else
        FAIL("'%s' is not one of local, aws, pkcs11", v);
    return SV_OK;
}

static sv_err_t p_kms_key_file(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_nonempty(&cfg->kms_local_key_file, v, why, whylen);
}

static sv_err_t p_dk_ttl(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->data_key_cache_ttl_ms, v, 1000, why, whylen);
}

static sv_err_t p_audit_durability(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "sync") == 0)
        cfg->audit_durability = SV_AUDIT_SYNC;
    else if (strcmp(v, "async") == 0)
        cfg->audit_durability = SV_AUDIT_ASYNC;
    else
        FAIL("'%s' is not one of sync, async", v);
    return SV_OK;
}

static bool parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0) {
        *out = false;
        return true;
    }
    return false;
}

static sv_err_t p_flag(bool *slot, const char *v, char *why, size_t whylen)
{
    if (!parse_bool(v, slot))
        FAIL("'%s' is not true or false", v);
    return SV_OK;
}

static sv_err_t p_migrate(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_flag(&cfg->migrate_on_start, v, why, whylen);
}

static sv_err_t p_test_faults(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_flag(&cfg->test_faults, v, why, whylen);
}

static sv_err_t p_test_fault(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    if (sv_fault_arm_spec(v, false) != 0)
        FAIL("'%s' is not a list of op:nth[:count[:ERRNO]] (e.g. commit:2:1:EIO)", v);
    return set_str(&cfg->test_fault, v);
}

static sv_err_t p_test_kms_delay(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->test_kms_delay_ms, v, 0, why, whylen);
}

static sv_err_t p_pool(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    uint64_t n;
    if (!parse_uint(v, 8, 65536, &n))
        FAIL("'%s' is not a whole number from 8 to 65536", v);
    cfg->db_pool_size = (unsigned)n;
    return SV_OK;
}

static sv_err_t p_bytes(size_t *slot, const char *v, size_t min, size_t max, char *why, size_t whylen)
{
    size_t n;
    if (sv_size_parse(v, strlen(v), &n) != SV_OK || n < min || n > max)
        FAIL("'%s' is not a size from %zu to %zu bytes", v, min, max);
    *slot = n;
    return SV_OK;
}

static sv_err_t p_max_body(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_bytes(&cfg->max_body_bytes, v, 1024, (size_t)256 << 20, why, whylen);
}

static sv_err_t p_max_secret(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_bytes(&cfg->max_secret_bytes, v, 64, (size_t)64 << 20, why, whylen);
}

static sv_err_t p_trusted(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    cfg->n_trusted_proxies = 0;
    const char *p = v;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == 0)
            break;
        size_t len = strcspn(p, ", \t");
        if (cfg->n_trusted_proxies == SV_MAX_TRUSTED_PROXIES)
            FAIL("at most %d CIDRs", SV_MAX_TRUSTED_PROXIES);
        if (sv_cidr_parse(p, len, &cfg->trusted_proxies[cfg->n_trusted_proxies]) != SV_OK)
            FAIL("'%.*s' is not a CIDR block such as 10.0.0.0/8 or 2001:db8::/32", (int)len, p);
        cfg->n_trusted_proxies++;
        p += len;
    }
    return SV_OK;
}

static sv_err_t p_ckpt_entries(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    uint64_t n;
    if (!parse_uint(v, 1, 100000000, &n))
        FAIL("'%s' is not a whole number from 1 to 100000000", v);
    cfg->audit_checkpoint_entries = n;
    return SV_OK;
}

static sv_err_t p_ckpt_interval(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->audit_checkpoint_interval_ms, v, 1000, why, whylen);
}

static sv_err_t p_audit_retention(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_duration(&cfg->audit_retention_ms, v, 60000, why, whylen);
}

static sv_err_t p_audit_key_file(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_nonempty(&cfg->audit_signing_key_file, v, why, whylen);
}

static sv_err_t p_audit_journal(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_flag(&cfg->audit_journal, v, why, whylen);
}

static sv_err_t p_bench_unaudited(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_flag(&cfg->bench_unaudited, v, why, whylen);
}

static sv_err_t p_wal_retention(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "0") == 0) {
        cfg->wal_retention_ms = 0;
        return SV_OK;
    }
    return p_duration(&cfg->wal_retention_ms, v, 1000, why, whylen);
}

static sv_err_t p_rate(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    static const struct {
        const char *name;
        sv_rl_category_t c;
    } map[] = {{"RATE_LIMIT_READ", SV_RL_READ},   {"RATE_LIMIT_WRITE", SV_RL_WRITE}, {"RATE_LIMIT_BATCH_READ", SV_RL_BATCH_READ},
               {"RATE_LIMIT_LIST", SV_RL_LIST},   {"RATE_LIMIT_ADMIN", SV_RL_ADMIN}, {"RATE_LIMIT_AUTH", SV_RL_AUTH}};
    for (size_t i = 0; i < SV_ARRAY_LEN(map); i++) {
        if (strcmp(name, map[i].name) == 0) {
            if (sv_rate_parse(v, strlen(v), &cfg->rate[map[i].c]) != SV_OK)
                FAIL("'%s' is not a rate such as 6000/min, 100/s or 5000/hour (N from 1 to 1000000000, a window from "
                     "1s to 24h)",
                     v);
            return SV_OK;
        }
    }
    return SV_EINVAL;
}

static sv_err_t p_log_level(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < SV_ARRAY_LEN(levels); i++) {
        if (strcmp(v, levels[i]) == 0) {
            cfg->log_level = (sv_log_level_t)i;
            return SV_OK;
        }
    }
    FAIL("'%s' is not one of debug, info, warn, error", v);
}

static sv_err_t p_log_format(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "json") == 0)
        cfg->log_format = SV_LOG_JSON;
    else if (strcmp(v, "text") == 0)
        cfg->log_format = SV_LOG_TEXT;
    else
        FAIL("'%s' is not one of json, text", v);
    return SV_OK;
}

static sv_err_t p_otel(sv_config_t *cfg, const char *name, const char *v, char *why, size_t whylen)
{
    return p_url(&cfg->otel_endpoint, v, why, whylen);
}

static const setting_t settings[] = {
    {"SCAIVAULT_LISTEN", p_listen},
    {"SCAIVAULT_DATA_DIR", p_data_dir},
    {"SCAIVAULT_THREADS", p_threads},
    {"SCAIVAULT_TLS_CERT", p_tls_cert},
    {"SCAIVAULT_TLS_KEY", p_tls_key},
    {"SCAIVAULT_MAP_SIZE", p_map_size},
    {"SCAIKEY_ISSUER", p_issuer},
    {"SCAIKEY_JWKS_URL", p_jwks_url},
    {"SCAIKEY_JWKS_REFRESH_INTERVAL", p_jwks_refresh},
    {"SCAIKEY_JWKS_MIN_REFRESH_INTERVAL", p_jwks_min_refresh},
    {"SCAIVAULT_AUDIENCE", p_audience},
    {"SCAIKEY_DIRECTORY_URL", p_directory_url},
    {"SCAIKEY_CLIENT_ID", p_client_id},
    {"SCAIKEY_CLIENT_SECRET", p_client_secret},
    {"IDENTITY_SYNC_INTERVAL", p_sync_interval},
    {"BOOTSTRAP_TOKEN", p_bootstrap_token},
    {"BOOTSTRAP_SUPER_ADMIN", p_super_admin},
    {"KMS_PROVIDER", p_kms_provider},
    {"KMS_LOCAL_KEY_FILE", p_kms_key_file},
    {"DATA_KEY_CACHE_TTL", p_dk_ttl},
    {"AUDIT_DURABILITY", p_audit_durability},
    {"AUDIT_JOURNAL", p_audit_journal},
    {"MIGRATE_ON_START", p_migrate},
    {"DB_POOL_SIZE", p_pool},
    {"MAX_BODY_BYTES", p_max_body},
    {"MAX_SECRET_BYTES", p_max_secret},
    {"TRUSTED_PROXIES", p_trusted},
    {"AUDIT_CHECKPOINT_ENTRIES", p_ckpt_entries},
    {"AUDIT_CHECKPOINT_INTERVAL", p_ckpt_interval},
    {"AUDIT_RETENTION", p_audit_retention},
    {"AUDIT_SIGNING_KEY_FILE", p_audit_key_file},
    {"WAL_RETENTION", p_wal_retention},
    {"RATE_LIMIT_READ", p_rate},
    {"RATE_LIMIT_WRITE", p_rate},
    {"RATE_LIMIT_BATCH_READ", p_rate},
    {"RATE_LIMIT_LIST", p_rate},
    {"RATE_LIMIT_ADMIN", p_rate},
    {"RATE_LIMIT_AUTH", p_rate},
    {"LOG_LEVEL", p_log_level},
    {"LOG_FORMAT", p_log_format},
    {"OTEL_EXPORTER_OTLP_ENDPOINT", p_otel},
    {"SCAIVAULT_TEST_FAULTS", p_test_faults},
    {"SCAIVAULT_TEST_FAULT", p_test_fault},
    {"SCAIVAULT_BENCH_UNAUDITED", p_bench_unaudited},
    {"SCAIVAULT_TEST_KMS_DELAY", p_test_kms_delay},
};

/* ---- the config file ---- */

typedef struct {
    char *key;
    char *value;
} file_entry_t;

typedef struct {
    file_entry_t *items;
    size_t n;
} file_map_t;

static void file_map_free(file_map_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].key);
        sodium_memzero(m->items[i].value, strlen(m->items[i].value));
        free(m->items[i].value);
    }
    free(m->items);
}

static const char *file_map_get(const file_map_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) /* each key once (read_config_file) */
        if (strcmp(m->items[i].key, key) == 0)
            return m->items[i].value;
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* the longest line of a configuration file, without its newline */
#define CONFIG_LINE_MAX 4094

static sv_err_t read_config_file(const char *path, file_map_t *m, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--config: cannot open '%s': %s", path, strerror(errno));
        return SV_EINVAL;
    }
    struct stat sb;
    FILE *f = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || fcntl(fd, F_SETFL, 0) != 0 || (f = fdopen(fd, "r")) == NULL) {
        snprintf(err, errlen, "--config: '%s' is not a regular file", path);
        close(fd);
        return SV_EINVAL;
    }
    char line[CONFIG_LINE_MAX + 2]; /* and the newline and the NUL */
    unsigned lineno = 0;
    sv_err_t rc = SV_OK;
    for (long at = ftell(f); fgets(line, sizeof(line), f) != NULL; at = ftell(f)) {
        lineno++;
        /* what fgets took from the file (a regular one), which strlen() would
         * not tell when the line holds a NUL */
        long got = ftell(f) - at;
        if (got == (long)sizeof(line) - 1 && line[got - 1] != '\n' && !feof(f)) {
            snprintf(err, errlen, "--config: %s line %u: longer than %d bytes", path, lineno, CONFIG_LINE_MAX);
            rc = SV_EINVAL;
            break;
        }
        if (got < 0 || strlen(line) != (size_t)got) { /* a NUL would cut the line short, unseen */
            snprintf(err, errlen, "--config: %s line %u: contains a NUL byte", path, lineno);
            rc = SV_EINVAL;
            break;
        }
        char *s = trim(line);
        if (*s == 0 || *s == '#')
            continue;
        if (strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t')) /* as a shell would take it */
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "--config: %s line %u: expected KEY=VALUE", path, lineno);
            rc = SV_EINVAL;
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && ((value[0] == '"' && value[vl - 1] == '"') || (value[0] == '\'' && value[vl - 1] == '\''))) {
            value[vl - 1] = 0;
            value++;
        }
        bool known = false;
        for (size_t i = 0; i < SV_ARRAY_LEN(settings); i++)
            known = known || strcmp(settings[i].name, key) == 0;
        if (!known) {
            snprintf(err, errlen, "%s: unknown setting in %s line %u", key, path, lineno);
            rc = SV_EINVAL;
            break;
        }
        if (file_map_get(m, key) != NULL) {
            /* an edit of the first of two copies would have no effect */
            snprintf(err, errlen, "%s: set twice in %s (again on line %u): keep one", key, path, lineno);
            rc = SV_EINVAL;
            break;
        }
        file_entry_t *items = realloc(m->items, (m->n + 1) * sizeof(*items));
        if (items == NULL) {
            rc = SV_ENOMEM;
            break;
        }
        m->items = items;
        m->items[m->n].key = strdup(key);
        m->items[m->n].value = strdup(value);
        m->n++;
        if (m->items[m->n - 1].key == NULL || m->items[m->n - 1].value == NULL) {
            rc = SV_ENOMEM;
            break;
        }
    }
    if (rc == SV_OK && ferror(f)) {
        snprintf(err, errlen, "--config: cannot read '%s': %s", path, strerror(errno));
        rc = SV_EINVAL;
    }
    sodium_memzero(line, sizeof(line));
    fclose(f);
    return rc;
}

static sv_err_t set_defaults(sv_config_t *cfg, bool dev)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dev = dev;
    cfg->n_listen = 1;
    strcpy(cfg->listen[0].host, "127.0.0.1");
    strcpy(cfg->listen[0].port, "8200");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores > 0 ? (unsigned)(cores > 256 ? 256 : cores) : 1;
    cfg->map_size = (size_t)1 << 30;
    cfg->identity_sync_interval_ms = 15 * 60 * 1000;
    cfg->jwks_refresh_ms = 10 * 60 * 1000;
    cfg->jwks_min_refresh_ms = 30 * 1000;
    cfg->kms_provider = SV_KMS_LOCAL;
    cfg->data_key_cache_ttl_ms = 5 * 60 * 1000;
    cfg->audit_durability = SV_AUDIT_SYNC;
    cfg->audit_journal = true;
    cfg->migrate_on_start = true;
    cfg->db_pool_size = 0; /* unset: derived from the thread count once it is known (below) */
    cfg->max_body_bytes = 1048576;
    cfg->max_secret_bytes = 524288;
    cfg->audit_checkpoint_entries = 10000;
    cfg->audit_checkpoint_interval_ms = 5 * 60 * 1000;
    cfg->wal_retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->rate[SV_RL_READ] = (sv_rate_t){6000, 60};
    cfg->rate[SV_RL_WRITE] = (sv_rate_t){1200, 60};
    cfg->rate[SV_RL_BATCH_READ] = (sv_rate_t){600, 60};
    cfg->rate[SV_RL_LIST] = (sv_rate_t){600, 60};
    cfg->rate[SV_RL_ADMIN] = (sv_rate_t){300, 60};
    cfg->rate[SV_RL_AUTH] = (sv_rate_t){600, 60};
    cfg->log_level = SV_LOG_INFO;
    cfg->log_format = SV_LOG_JSON;
    if (set_str(&cfg->audience, "scaivault") != SV_OK)
        return SV_ENOMEM;
    if (!dev && set_str(&cfg->data_dir, "./data") != SV_OK)
        return SV_ENOMEM;
    return SV_OK;
}

size_t sv_config_unknown_env(const char **names, size_t max)
{
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "SCAIVAULT_", 10) != 0)
            continue;
        size_t kl = strcspn(*e, "=");
        bool known = false;
        for (size_t i = 0; i < SV_ARRAY_LEN(settings) && !known; i++)
            known = strlen(settings[i].name) == kl && strncmp(settings[i].name, *e, kl) == 0;
        if (!known && n < max)
            names[n++] = *e;
    }
    return n;
}

sv_err_t sv_config_load(sv_config_t *cfg, const char *config_file, bool dev, char *err, size_t errlen)
{
    file_map_t file = {0};
    sv_err_t rc = set_defaults(cfg, dev);
    if (rc != SV_OK)
        goto out;
    if (config_file != NULL && (rc = read_config_file(config_file, &file, err, errlen)) != SV_OK)
        goto out;
    for (size_t i = 0; i < SV_ARRAY_LEN(settings); i++) {
        char *env = getenv(settings[i].name);
        const char *v = env != NULL ? env : file_map_get(&file, settings[i].name);
        if (v == NULL)
            continue;
        char why[384] = "";
        rc = settings[i].parse(cfg, settings[i].name, v, why, sizeof(why));
        if (env != NULL && strcmp(settings[i].name, "BOOTSTRAP_TOKEN") == 0)
            sodium_memzero(env, strlen(env)); /* the hash is all we keep */
        if (rc != SV_OK) {
            snprintf(err, errlen, "%s: %s", settings[i].name, why[0] ? why : sv_strerror(rc));
            rc = SV_EINVAL;
            goto out;
        }
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, errlen, "%s: SCAIVAULT_TLS_CERT and SCAIVAULT_TLS_KEY must be set together",
                 cfg->tls_cert == NULL ? "SCAIVAULT_TLS_CERT" : "SCAIVAULT_TLS_KEY");
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->scaikey_jwks_url != NULL && cfg->scaikey_issuer == NULL) {
        /* here, not when auth starts: after the schema migration would be too late */
        snprintf(err, errlen, "SCAIKEY_JWKS_URL: needs SCAIKEY_ISSUER (the issuer tokens must name)");
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->directory_url != NULL && (cfg->client_id == NULL || cfg->client_secret == NULL)) {
        snprintf(err, errlen, "%s: SCAIKEY_DIRECTORY_URL needs SCAIKEY_CLIENT_ID and SCAIKEY_CLIENT_SECRET",
                 cfg->client_id == NULL ? "SCAIKEY_CLIENT_ID" : "SCAIKEY_CLIENT_SECRET");
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->kms_provider != SV_KMS_LOCAL) {
        snprintf(err, errlen, "KMS_PROVIDER: '%s' is not available in this version; use local",
                 cfg->kms_provider == SV_KMS_AWS ? "aws" : "pkcs11");
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->max_secret_bytes > cfg->max_body_bytes) {
        snprintf(err, errlen, "MAX_SECRET_BYTES: %zu is more than MAX_BODY_BYTES (%zu)", cfg->max_secret_bytes,
                 cfg->max_body_bytes);
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->bench_unaudited && !cfg->test_faults) {
        snprintf(err, errlen, "SCAIVAULT_BENCH_UNAUDITED: turns the audit log off for benchmarks only and needs "
                              "SCAIVAULT_TEST_FAULTS=true as well; never set it in production");
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->test_fault != NULL && !cfg->test_faults) {
        snprintf(err, errlen, "SCAIVAULT_TEST_FAULT: needs SCAIVAULT_TEST_FAULTS=true");
        rc = SV_EINVAL;
        goto out;
    }
    if (cfg->db_pool_size == 0) /* the default: 126, or room for every thread on a bigger machine */
        cfg->db_pool_size = cfg->threads + 4 > 126 ? cfg->threads + 4 : 126;
    if (cfg->db_pool_size < cfg->threads + 4) {
        snprintf(err, errlen, "DB_POOL_SIZE: %u is too small for %u threads (needs at least %u)", cfg->db_pool_size,
                 cfg->threads, cfg->threads + 4);
        rc = SV_EINVAL;
        goto out;
    }
out:
    file_map_free(&file);
    if (rc != SV_OK && rc != SV_EINVAL)
        snprintf(err, errlen, "configuration: %s", sv_strerror(rc));
    if (rc != SV_OK)
        rc = SV_EINVAL;
    return rc;
}

void sv_config_free(sv_config_t *cfg)
{
    free(cfg->data_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->scaikey_issuer);
    free(cfg->scaikey_jwks_url);
    free(cfg->audience);
    free(cfg->directory_url);
    free(cfg->client_id);
    if (cfg->client_secret != NULL) {
        sodium_memzero(cfg->client_secret, strlen(cfg->client_secret));
        free(cfg->client_secret);
    }
    free(cfg->bootstrap_super_admin);
    free(cfg->kms_local_key_file);
    free(cfg->audit_signing_key_file);
    free(cfg->otel_endpoint);
    free(cfg->test_fault);
    sodium_memzero(cfg->bootstrap_token_hash, sizeof(cfg->bootstrap_token_hash));
    memset(cfg, 0, sizeof(*cfg));
}
