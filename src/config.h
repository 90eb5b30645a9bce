/*
 * config.h - the server's configuration: every variable of API.md's
 * Configuration table (and the few operational ones doc/configuration.md adds),
 * parsed and validated once at start. A bad value stops the program with exit
 * status 2 and a message naming the variable.
 *
 * Sources, later ones winning: built-in defaults, `--config FILE` (KEY=VALUE
 * lines), the environment. `--dev` changes some defaults (API.md).
 */
#ifndef SV_CONFIG_H
#define SV_CONFIG_H

#include <sodium.h>

#include "src/cidr.h"
#include "src/sv.h"

#define SV_MAX_LISTEN 8
#define SV_MAX_TRUSTED_PROXIES 32

typedef enum { SV_KMS_LOCAL, SV_KMS_AWS, SV_KMS_PKCS11 } sv_kms_kind_t;
typedef enum { SV_AUDIT_SYNC, SV_AUDIT_ASYNC } sv_audit_durability_t;
typedef enum { SV_LOG_DEBUG, SV_LOG_INFO, SV_LOG_WARN, SV_LOG_ERROR } sv_log_level_t;
typedef enum { SV_LOG_JSON, SV_LOG_TEXT } sv_log_format_t;

/* Rate-limit categories (API.md "Rate limits"). */
typedef enum {
    SV_RL_READ,
    SV_RL_WRITE,
    SV_RL_BATCH_READ,
    SV_RL_LIST,
    SV_RL_ADMIN,
    SV_RL_AUTH,
    SV_RL_COUNT_
} sv_rl_category_t;

typedef struct {
    uint32_t limit;         /* requests per window */
    uint32_t window_s;      /* window length in seconds */
} sv_rate_t;

typedef struct {
    char host[256];
    char port[8];
} sv_listen_addr_t;

typedef struct {
    sv_listen_addr_t listen[SV_MAX_LISTEN];
    unsigned n_listen;
    char *data_dir;
    unsigned threads;
    char *tls_cert, *tls_key;
    size_t map_size;

    char *scaikey_issuer;  /* NULL: JWT auth off (dev) or not configured */
    char *scaikey_jwks_url;
    int64_t jwks_refresh_ms;     /* SCAIKEY_JWKS_REFRESH_INTERVAL: periodic JWKS refresh */
    int64_t jwks_min_refresh_ms; /* SCAIKEY_JWKS_MIN_REFRESH_INTERVAL: unknown-kid refreshes at most this often */
    char *audience;
    char *directory_url, *client_id, *client_secret;
    int64_t identity_sync_interval_ms;

    bool has_bootstrap_token;
    uint8_t bootstrap_token_hash[crypto_generichash_BYTES]; /* BLAKE2b-256 of the token */
    char *bootstrap_super_admin;

    sv_kms_kind_t kms_provider;
    char *kms_local_key_file;
    int64_t data_key_cache_ttl_ms;

    sv_audit_durability_t audit_durability;
    bool audit_journal; /* AUDIT_JOURNAL: audit-only batches go to the journal (src/audit_journal.h) */
    bool migrate_on_start;
    unsigned db_pool_size;
    size_t max_body_bytes;
    size_t max_secret_bytes;
    sv_cidr_t trusted_proxies[SV_MAX_TRUSTED_PROXIES];
    unsigned n_trusted_proxies;

    uint64_t audit_checkpoint_entries;
    int64_t audit_checkpoint_interval_ms;
    int64_t audit_retention_ms; /* 0: keep all */
    char *audit_signing_key_file; /* NULL: $SCAIVAULT_DATA_DIR/audit-signing.key */
    int64_t wal_retention_ms;   /* 0: keep all */

    sv_rate_t rate[SV_RL_COUNT_];

    sv_log_level_t log_level;
    sv_log_format_t log_format;
    char *otel_endpoint;

    bool dev;          /* --dev */
    bool test_faults;  /* SCAIVAULT_TEST_FAULTS: enables POST /v1/sys/faults */
    char *test_fault;  /* SCAIVAULT_TEST_FAULT: seams armed at start (store/fault.h spec); needs test_faults */
    bool bench_unaudited; /* SCAIVAULT_BENCH_UNAUDITED: benchmarks only, audits nothing */
    int64_t test_kms_delay_ms; /* SCAIVAULT_TEST_KMS_DELAY (with test_faults): local KMS answers later */
} sv_config_t;

/** The environment's SCAIVAULT_* entries ("NAME=value") that name no
 * setting, at most max of them: a typo the server warns about, since the
 * environment holds other programs' variables too and is not refused. */
size_t sv_config_unknown_env(const char **names, size_t max);

/** Loads the configuration: defaults, then config_file (may be NULL), then the
 * environment. dev selects the --dev defaults. On error returns SV_EINVAL and
 * writes "VARIABLE: why" into err (errlen bytes). The bootstrap token's text is
 * wiped from the environment after hashing. */
sv_err_t sv_config_load(sv_config_t *cfg, const char *config_file, bool dev, char *err, size_t errlen);
/** Frees the strings of cfg. */
void sv_config_free(sv_config_t *cfg);

/** Parses a size: "1GiB", "512MiB", "64KiB", "1GB", or bytes. */
sv_err_t sv_size_parse(const char *s, size_t len, size_t *out);
/** The largest N of a rate N/window. */
#define SV_RATE_MAX 1000000000u
/** Parses a rate: "6000/min", "100/s", "10/sec", "5000/hour", "50/10s"; N
 * from 1 to SV_RATE_MAX, the window from 1 s to 24 h in whole seconds. */
sv_err_t sv_rate_parse(const char *s, size_t len, sv_rate_t *out);

/** The name of a rate-limit category ("read", "batch_read", ...). */
const char *sv_rl_category_name(sv_rl_category_t c);

#endif
