/*
 * cmd_server.c - `scaivault server [--dev] [--config FILE]`: brings the
 * server up part by part, waits for SIGTERM/SIGINT, and brings it down in the
 * reverse order so that every accepted write is committed before exit.
 *
 * Bring-up: configuration → storage (schema check, migrations) → writer →
 * the parts of `parts[]` (KMS, keys, audit, auth, ...) → HTTP listeners and
 * workers. Signals are blocked in every thread and taken by sigwait() here.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/server.h"
#include "src/app.h"
#include "src/audit.h"
#include "src/authz.h"
#include "src/auth.h"
#include "src/idsync.h"
#include "src/commands.h"
#include "src/health.h"
#include "src/keyring.h"
#include "src/kms.h"
#include "src/log.h"
#include "src/ratelimit.h"
#include "src/scheduler.h"
#include "src/secrets.h"
#include "store/fault.h"
#include "store/migrate.h"

#define SHUTDOWN_GRACE_MS 10000

/* A part of the server with its own start and stop. init returns SV_EINVAL or
 * SV_EPERM (or SV_ENOTFOUND: a file in a missing directory) for a
 * configuration problem (exit 2) with msg naming the variable
 * or file; any other error exits 1. */
typedef struct {
    const char *name;
    sv_err_t (*init)(sv_app_t *app, char *msg, size_t msglen);
    void (*stop)(sv_app_t *app);
} part_t;

static const part_t parts[] = {
    {"health", sv_health_part_init, sv_health_part_stop}, /* first: creates app->metrics for the others */
    {"scheduler", sv_scheduler_part_init, sv_scheduler_part_stop}, /* before the parts that register jobs */
    {"audit", sv_audit_part_init, sv_audit_part_stop},
    {"ratelimit", sv_rl_part_init, sv_rl_part_stop},
    {"policy", sv_policy_part_init, sv_policy_part_stop},
    {"outbound", sv_outbound_part_init, sv_outbound_part_stop},
    {"auth", sv_auth_part_init, sv_auth_part_stop},
    {"identity", sv_idsync_part_init, sv_idsync_part_stop},
    {"kms", sv_kms_part_init, sv_kms_part_stop},
    {"keyring", sv_keyring_part_init, sv_keyring_part_stop},
    {"secrets", sv_secrets_part_init, NULL}, /* resumes pending tenant deletions: after audit */
    /* every part adds one line above this comment. Then the scheduler's thread starts, once every
     * kind has its handler, and it stops before any part does */
    {"scheduler_run", sv_scheduler_part_run, sv_scheduler_part_halt},
    {NULL, NULL, NULL},
};

static void log_migration(void *arg, const char *line)
{
    sv_log_info("%s", line);
}

/* Checks the stored schema against the binary's; migrates forward when allowed. */
static int check_schema(sv_store_t *st, const sv_config_t *cfg)
{
    uint32_t cur;
    sv_err_t err = sv_migrate_current(st, &cur);
    if (err != SV_OK) {
        sv_cli_error("cannot read the schema version in %s: %s", cfg->data_dir, sv_strerror(err));
        return 1;
    }
    if (cur > SV_SCHEMA_VERSION) {
        sv_cli_error("the database schema is version %u but this binary knows only up to version %d; "
                     "upgrade the binary, or (only once you have confirmed it is safe) downgrade the schema with "
                     "`scaivault migrate --target %d` using the newer binary",
                     cur, SV_SCHEMA_VERSION, SV_SCHEMA_VERSION);
        return 2;
    }
    if (cur < SV_SCHEMA_VERSION) {
        if (!cfg->migrate_on_start && cur > 0) {
            sv_cli_error("the database schema is version %u and this binary needs version %d; "
                         "MIGRATE_ON_START=false, so run `scaivault migrate` first",
                         cur, SV_SCHEMA_VERSION);
            return 2;
        }
        if (cur > 0)
            sv_log_info("migrating schema from version %u to %d", cur, SV_SCHEMA_VERSION);
        err = sv_migrate_to(st, SV_SCHEMA_VERSION, log_migration, NULL);
        if (err != SV_OK) {
            sv_cli_error("schema migration failed: %s", sv_strerror(err));
            return 1;
        }
    }
    return 0;
}

static char *make_dev_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/scaivault-dev-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(path) == NULL)
        return NULL;
    return strdup(path);
}

/* --dev: a random bootstrap token, printed once; only its hash is kept. */
static void make_dev_token(sv_config_t *cfg, char out[64])
{
    uint8_t raw[24];
    randombytes_buf(raw, sizeof(raw));
    memcpy(out, "svdev_", 6);
    sodium_bin2base64(out + 6, 64 - 6, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_generichash(cfg->bootstrap_token_hash, sizeof(cfg->bootstrap_token_hash), (const uint8_t *)out,
                       strlen(out), NULL, 0);
    cfg->has_bootstrap_token = true;
    sodium_memzero(raw, sizeof(raw));
}

static void print_dev_banner(const sv_config_t *cfg, sv_http_server_t *http, const char *token)
{
    const char *scheme = cfg->tls_cert != NULL ? "https" : "http";
    const char *host = cfg->listen[0].host;
    bool v6 = strchr(host, ':') != NULL;
    printf("\nScaiVault %s dev server (not for production: throwaway data, printed token)\n\n", SV_VERSION_STRING);
    printf("  URL:             %s://%s%s%s:%d\n", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
           sv_http_server_port(http, 0));
    printf("  Data dir:        %s\n", cfg->data_dir);
    if (token[0] != 0)
        printf("  Bootstrap token: %s   (shown once)\n", token);
    printf("\n  Try:  curl -H \"Authorization: Bearer %s\" %s://%s%s%s:%d/v1/health\n",
           token[0] ? "$SCAIVAULT_TOKEN" : "...", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
           sv_http_server_port(http, 0));
    printf("\n  A JWT from the dev issuer (JWKS at /v1/dev/jwks):\n"
           "        TOKEN=$(scaivault dev-token --data-dir %s --sub sa:app --tenant tnt_dev \\\n"
           "                --scope \"secrets:read secrets:write\")\n"
           "        curl -H \"Authorization: Bearer $TOKEN\" %s://%s%s%s:%d/v1/auth/whoami\n\n",
           cfg->data_dir, scheme, v6 ? "[" : "", host, v6 ? "]" : "", sv_http_server_port(http, 0));
    fflush(stdout);
}

int sv_cmd_server(int argc, char **argv)
{
    static const char *const known[] = {"dev", "config=", NULL};
    const char *why;
    const char *bad = sv_cli_unknown(argc, argv, known, &why);
    if (bad != NULL) {
        sv_cli_error("server: %s '%s'", why, bad);
        return 2;
    }
    bool dev = sv_cli_flag(argc, argv, "dev");
    const char *config_file = sv_cli_opt(argc, argv, "config");
    int rc = 1;
    char msg[1024];
    sv_config_t cfg;
    if (sv_config_load(&cfg, config_file, dev, msg, sizeof(msg)) != SV_OK) {
        sv_cli_error("%s", msg);
        sv_config_free(&cfg);
        return 2;
    }
    sv_log_init(cfg.log_level, cfg.log_format);
    const char *unknown[8];
    size_t n_unknown = sv_config_unknown_env(unknown, SV_ARRAY_LEN(unknown));
    for (size_t i = 0; i < n_unknown; i++)
        sv_log_warn("%.*s: not a ScaiVault setting, ignored (a typo? see doc/configuration.md)",
                    (int)strcspn(unknown[i], "="), unknown[i]);
    if (cfg.test_fault != NULL) {
        sv_fault_arm_spec(cfg.test_fault, true);
        sv_log_warn("SCAIVAULT_TEST_FAULT=%s: storage will fail on purpose", cfg.test_fault);
    }

    char dev_token[64] = "";
    if (dev) {
        if (cfg.data_dir == NULL && (cfg.data_dir = make_dev_dir()) == NULL) {
            sv_cli_error("SCAIVAULT_DATA_DIR: cannot create a temporary directory: %s", strerror(errno));
            goto free_config;
        }
        if (!cfg.has_bootstrap_token)
            make_dev_token(&cfg, dev_token);
    }

    /* signals are taken by sigwait below, never by a worker */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP); /* nothing to reload: said and ignored, not a sudden death */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sv_app_t app = {.cfg = &cfg, .started_at = sv_now_s(), .started_mono_us = sv_mono_us()};
    /* listeners and TLS first: a bad address or certificate stops us before
     * anything is written to the data directory */
    sv_http_server_t *http = NULL;
    sv_err_t err = sv_http_server_new(&app, &http, msg, sizeof(msg));
    if (err != SV_OK) {
        sv_cli_error("%s", msg[0] ? msg : sv_strerror(err));
        rc = (err == SV_EINVAL || err == SV_EIO) ? 2 : 1;
        goto free_config;
    }
    if (!sv_cli_dir_unused("SCAIVAULT_DATA_DIR", cfg.data_dir) ||
        !sv_cli_data_file_plausible("SCAIVAULT_DATA_DIR", cfg.data_dir)) {
        rc = 2;
        goto free_http;
    }
    char cause[256];
    sv_store_opts_t so = {.dir = cfg.data_dir,
                          .map_size = cfg.map_size,
                          .max_readers = cfg.db_pool_size,
                          .why = cause,
                          .why_len = sizeof(cause)};
    err = sv_store_open(&app.store, &so);
    if (err == SV_ETOOBIG) {
        sv_cli_error("SCAIVAULT_MAP_SIZE: a map of %zu bytes does not fit in this process's address space (%s): "
                     "lower it (the map grows by itself when full)",
                     cfg.map_size, cause);
        rc = 2;
        goto free_http;
    }
    if (err != SV_OK) {
        sv_cli_error("SCAIVAULT_DATA_DIR: cannot open the database in '%s': %s", cfg.data_dir,
                     cause[0] ? cause : sv_strerror(err));
        /* a path that names a missing directory is a setting to fix too */
        rc = (err == SV_EPERM || err == SV_EINVAL || err == SV_ENOTFOUND) ? 2 : 1;
        goto free_http;
    }
    if ((rc = check_schema(app.store, &cfg)) != 0)
        goto close_store;
    rc = 1;
    sv_writer_opts_t wo = {.wal_retention_ms = cfg.wal_retention_ms};
    if ((err = sv_writer_start(app.store, &wo, &app.writer)) != SV_OK) {
        sv_cli_error("cannot start the writer: %s", sv_strerror(err));
        goto close_store;
    }
    if ((err = sv_prealloc_start(app.store, NULL, &app.prealloc)) != SV_OK)
        sv_log_warn("store: data.mdb will not be extended ahead of use: %s", sv_strerror(err));

    size_t started = 0;
    for (; parts[started].name != NULL; started++) {
        msg[0] = 0;
        err = parts[started].init(&app, msg, sizeof(msg));
        if (err != SV_OK) {
            sv_cli_error("%s", msg[0] ? msg : sv_strerror(err));
            rc = (err == SV_EINVAL || err == SV_EPERM || err == SV_ENOTFOUND) ? 2 : 1;
            goto stop_parts;
        }
    }

    if (dev) {
        /* the dev issuer is the server's own URL, known once the port is bound */
        char url[300];
        const char *h = cfg.listen[0].host;
        bool v6 = strchr(h, ':') != NULL;
        snprintf(url, sizeof(url), "%s://%s%s%s:%d", cfg.tls_cert != NULL ? "https" : "http", v6 ? "[" : "", h,
                 v6 ? "]" : "", sv_http_server_port(http, 0));
        if ((err = sv_auth_dev_set_issuer(&app, url)) != SV_OK)
            sv_log_warn("dev issuer: cannot write %s/dev-issuer.json: %s", cfg.data_dir, sv_strerror(err));
    }
    if ((err = sv_http_server_start(http)) != SV_OK) {
        sv_cli_error("cannot start the HTTP workers: %s", sv_strerror(err));
        goto stop_parts;
    }
    {
        /* every address, with the port each got ("host:0" picks one), IPv6 in brackets */
        char listen[1024] = "", fields[1400];
        size_t ln = 0;
        for (unsigned i = 0; i < cfg.n_listen && ln < sizeof(listen); i++) {
            const char *h = cfg.listen[i].host;
            bool v6 = strchr(h, ':') != NULL;
            int k = snprintf(listen + ln, sizeof(listen) - ln, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", h,
                             v6 ? "]" : "", sv_http_server_port(http, i));
            ln += k > 0 ? (size_t)k : 0;
        }
        snprintf(fields, sizeof(fields), "\"listen\":\"%s\",\"threads\":%u,\"schema_version\":%d,\"dev\":%s", listen,
                 cfg.threads, SV_SCHEMA_VERSION, dev ? "true" : "false");
        sv_log_fields(SV_LOG_INFO, NULL, fields, "scaivault %s started", SV_VERSION_STRING);
    }
    if (cfg.otel_endpoint != NULL)
        sv_log_warn("OTEL_EXPORTER_OTLP_ENDPOINT is set, but this version does not export traces yet: "
                    "use request ids, the audit log and /v1/metrics");
    if (cfg.test_faults)
        sv_log_warn("SCAIVAULT_TEST_FAULTS is on: /v1/sys/faults can break storage on purpose");
    if (dev)
        print_dev_banner(&cfg, http, dev_token);
    sodium_memzero(dev_token, sizeof(dev_token));

    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
        sv_log_warn("received SIGHUP: ignored (the configuration is read once, at start; restart to change it)");
    sv_log_info("received %s: stopping (in-flight requests finish first)", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sv_http_server_stop(http, SHUTDOWN_GRACE_MS);
    rc = 0;

stop_parts:
    sv_http_server_free(http); /* before the parts: it holds their metrics */
    http = NULL;
    while (started > 0) {
        started--;
        if (parts[started].stop != NULL)
            parts[started].stop(&app);
    }
    sv_writer_stop(app.writer); /* commits everything still queued */
    sv_prealloc_stop(app.prealloc);
close_store:
    sv_http_server_free(http); /* its readers go before the store */
    http = NULL;
    sv_store_close(app.store);
    if (rc == 0)
        sv_log_info("stopped");
free_http:
    sv_http_server_free(http);
free_config:
    sv_config_free(&cfg);
    return rc;
}
