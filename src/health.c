/*
 * health.c - readiness checks, the detailed dependency report and the
 * server-wide metrics (health.h).
 *
 * The design choice: report what was measured, never a guess. Latencies come
 * from recorders fed by real operations (every read snapshot of every
 * worker, every durable commit of the writer, the KMS part's calls), and a
 * dependency whose owner has not installed a hook is reported as null rather
 * than as "ok". Readiness checks reachability only (API.md): a read snapshot
 * with one meta lookup, and the KMS.
 *
 * The public readiness body names the failing check and a short reason code;
 * the full reason (paths, errno text) goes only to the log, once per change
 * of state, and to the authenticated detailed report.
 *
 * Threads: the checks and reports run on HTTP workers; hooks are installed
 * by parts during start-up, before the workers run; the metric callbacks run
 * on whichever worker serves /v1/metrics.
 */
#include "sv_autoconf.h"

#include "src/health.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/app.h"
#include "src/audit.h"
#include "src/log.h"
#include "src/ratelimit.h"
#include "store/migrate.h"

struct sv_health {
    sv_app_t *app;
    sv_health_kms_t kms;
    bool has_kms;
    sv_health_scaikey_t scaikey;
    bool has_scaikey;
    sv_health_webhooks_t webhooks;
    bool has_webhooks;
    sv_health_replication_t replication;
    bool has_replication;
    sv_health_audit_t audit;
    bool has_audit;
    _Atomic int last_ready;   /* -1 unknown, 0 not ready, 1 ready (for logging changes) */
    _Atomic int last_failed;  /* which check failed last time (0 storage, 1 kms) */
};

void sv_health_set_kms(sv_health_t *h, const sv_health_kms_t *kms)
{
    h->kms = *kms;
    h->has_kms = true;
}

void sv_health_set_scaikey(sv_health_t *h, const sv_health_scaikey_t *sk)
{
    h->scaikey = *sk;
    h->has_scaikey = true;
}

void sv_health_set_webhooks(sv_health_t *h, const sv_health_webhooks_t *wh)
{
    h->webhooks = *wh;
    h->has_webhooks = true;
}

void sv_health_set_replication(sv_health_t *h, const sv_health_replication_t *rep)
{
    h->replication = *rep;
    h->has_replication = true;
}

void sv_health_set_audit(sv_health_t *h, const sv_health_audit_t *audit)
{
    h->audit = *audit;
    h->has_audit = true;
}

/* ---- checks ---- */

typedef struct {
    sv_health_check_t c;
    const char *reason; /* short public code when !ok */
    const char *note;   /* when ok but worth saying */
} check_t;

static double ms_since(uint64_t t0_us)
{
    uint64_t d = sv_mono_us() - t0_us;
    return (double)(d == 0 ? 1 : d) / 1000.0; /* microsecond resolution, never 0 */
}

static void check_storage(sv_app_t *app, sv_store_reader_t *reader, check_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t t0 = sv_mono_us();
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(reader, &tx);
    if (err != SV_OK) {
        snprintf(out->c.why, sizeof(out->c.why), "cannot begin a read transaction: %s", sv_strerror(err));
        out->reason = "read_failed";
        goto done;
    }
    sv_bytes_t v;
    err = sv_txn_get(tx, SV_DB_META, SV_BYTES_STR(SV_META_SCHEMA_VERSION), &v);
    if (err == SV_OK && (v.len != 5 || v.base[0] != 1))
        err = SV_ECORRUPT;
    if (err == SV_OK)
        out->c.schema_version = sv_get_be32(v.base + 1);
    sv_store_read_end(reader);
    if (err != SV_OK) {
        snprintf(out->c.why, sizeof(out->c.why), "cannot read the schema version from the meta database: %s",
                 sv_strerror(err));
        out->reason = "read_failed";
        goto done;
    }
    out->c.ok = true;
done:
    out->c.latency_ms = ms_since(t0);
    (void)app;
}

void sv_health_kms_key_path(const sv_app_t *app, char *out, size_t cap)
{
    if (app->cfg->kms_local_key_file != NULL)
        snprintf(out, cap, "%s", app->cfg->kms_local_key_file);
    else
        snprintf(out, cap, "%s/master.key", app->cfg->data_dir != NULL ? app->cfg->data_dir : ".");
}

/* The local provider's key file: present, a regular file, readable by its
 * owner (mode u+r) and by us, and not empty. */
static void check_local_key(sv_health_t *h, check_t *out)
{
    char path[1024];
    sv_health_kms_key_path(h->app, path, sizeof(path));
    out->c.ok = false;
    /* O_NONBLOCK: a FIFO in its place must not hang the worker */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        /* the KMS part made or loaded it at start: missing is always a failure
         * (the next start would refuse to run without it) */
        out->reason = e == ENOENT ? "key_file_missing" : "key_file_unreadable";
        snprintf(out->c.why, sizeof(out->c.why), "KMS_LOCAL_KEY_FILE '%s': %s", path, strerror(e));
        return;
    }
    struct stat st;
    uint8_t buf[64];
    ssize_t n = 0;
    if (fstat(fd, &st) != 0) {
        out->reason = "key_file_unreadable";
        snprintf(out->c.why, sizeof(out->c.why), "KMS_LOCAL_KEY_FILE '%s': %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        out->reason = "key_file_unreadable";
        snprintf(out->c.why, sizeof(out->c.why), "KMS_LOCAL_KEY_FILE '%s' is not a regular file", path);
    } else if ((st.st_mode & S_IRUSR) == 0) {
        /* root could still read it, but a key its owner cannot read is broken
         * the moment the server runs as anyone but root */
        out->reason = "key_file_unreadable";
        snprintf(out->c.why, sizeof(out->c.why), "KMS_LOCAL_KEY_FILE '%s' has mode %04o: its owner cannot read it",
                 path, (unsigned)(st.st_mode & 07777));
    } else if (st.st_size == 0) {
        out->reason = "key_file_empty";
        snprintf(out->c.why, sizeof(out->c.why), "KMS_LOCAL_KEY_FILE '%s' is empty", path);
    } else if ((n = read(fd, buf, sizeof(buf))) <= 0) {
        out->reason = "key_file_unreadable";
        snprintf(out->c.why, sizeof(out->c.why), "KMS_LOCAL_KEY_FILE '%s': %s", path,
                 n == 0 ? "unexpected end of file" : strerror(errno));
    } else {
        out->c.ok = true;
    }
    sodium_memzero(buf, sizeof(buf));
    close(fd);
}

static const char *kms_provider(sv_app_t *app)
{
    sv_health_t *h = app->health;
    if (h != NULL && h->has_kms && h->kms.provider != NULL)
        return h->kms.provider;
    switch (app->cfg->kms_provider) {
    case SV_KMS_AWS:
        return "aws";
    case SV_KMS_PKCS11:
        return "pkcs11";
    default:
        return "local";
    }
}

static void check_kms(sv_app_t *app, check_t *out)
{
    memset(out, 0, sizeof(*out));
    sv_health_t *h = app->health;
    uint64_t t0 = sv_mono_us();
    out->c.ok = true;
    if (h != NULL && h->has_kms && h->kms.check != NULL) {
        out->c.ok = h->kms.check(h->kms.ctx, out->c.why, sizeof(out->c.why));
        if (!out->c.ok)
            out->reason = "kms_unavailable";
    }
    if (out->c.ok && h != NULL && app->cfg->kms_provider == SV_KMS_LOCAL)
        check_local_key(h, out);
    out->c.latency_ms = ms_since(t0);
}

void sv_health_check_storage(sv_app_t *app, sv_store_reader_t *reader, sv_health_check_t *out)
{
    check_t c;
    check_storage(app, reader, &c);
    *out = c.c;
}

void sv_health_check_kms(sv_app_t *app, sv_health_check_t *out)
{
    check_t c;
    check_kms(app, &c);
    *out = c.c;
}

/* ---- reports ---- */

static void jw_ms_or_null(sv_jw_t *jw, sv_latency_t *l, double p)
{
    if (l == NULL || sv_latency_count(l) == 0)
        sv_jw_null(jw);
    else
        sv_jw_double(jw, (double)sv_latency_percentile(l, p) / 1000.0);
}

static void jw_check(sv_jw_t *jw, const char *name, const check_t *c, const char *provider)
{
    sv_jw_key(jw, name);
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, c->c.ok ? "ok" : "failed");
    sv_jw_key(jw, "latency_ms");
    sv_jw_double(jw, c->c.latency_ms);
    if (provider != NULL) {
        sv_jw_key(jw, "provider");
        sv_jw_cstr(jw, provider);
    }
    if (!c->c.ok) {
        sv_jw_key(jw, "reason");
        sv_jw_cstr(jw, c->reason);
    }
    sv_jw_obj_end(jw);
}

bool sv_health_ready(sv_app_t *app, sv_store_reader_t *reader, sv_jw_t *jw)
{
    check_t st, kms;
    check_storage(app, reader, &st);
    check_kms(app, &kms);
    bool ready = st.c.ok && kms.c.ok;
    int failed = !st.c.ok ? 0 : 1;
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, ready ? "ready" : "not_ready");
    if (!ready) {
        sv_jw_key(jw, "failed");
        sv_jw_cstr(jw, failed == 0 ? "storage" : "kms");
    }
    sv_jw_key(jw, "checks");
    sv_jw_obj_begin(jw);
    jw_check(jw, "storage", &st, NULL);
    jw_check(jw, "kms", &kms, kms_provider(app));
    sv_jw_obj_end(jw);
    sv_jw_obj_end(jw);

    /* log changes of state (probes come every few seconds: not every answer) */
    sv_health_t *h = app->health;
    if (h != NULL) {
        int prev = atomic_exchange(&h->last_ready, ready ? 1 : 0);
        int prev_failed = atomic_exchange(&h->last_failed, failed);
        if (!ready && (prev != 0 || prev_failed != failed))
            sv_log_fields(SV_LOG_WARN, NULL, failed == 0 ? "\"check\":\"storage\"" : "\"check\":\"kms\"",
                          "not ready: %s", failed == 0 ? st.c.why : kms.c.why);
        else if (ready && prev == 0)
            sv_log_info("ready again: storage and KMS are reachable");
    }
    return ready;
}

static int64_t hook_i64(int64_t (*fn)(void *), void *ctx, bool has)
{
    return has && fn != NULL ? fn(ctx) : -1;
}

static void jw_i64_or_null(sv_jw_t *jw, int64_t v)
{
    if (v < 0)
        sv_jw_null(jw);
    else
        sv_jw_int(jw, v);
}

void sv_health_detailed(sv_app_t *app, sv_store_reader_t *reader, sv_jw_t *jw)
{
    sv_health_t *h = app->health;
    check_t st, kms;
    check_storage(app, reader, &st);
    check_kms(app, &kms);
    unsigned readers_used = 0, readers_max = 0;
    sv_store_reader_stats(app->store, &readers_used, &readers_max);
    sv_writer_stats_t ws;
    sv_writer_stats(app->writer, &ws);

    bool audit_ok = true;
    char audit_why[256] = "";
    if (h != NULL && h->has_audit && h->audit.ok != NULL)
        audit_ok = h->audit.ok(h->audit.ctx, audit_why, sizeof(audit_why));

    const char *sk_status = "unknown";
    int64_t jwks_age = -1;
    if (app->cfg->scaikey_issuer == NULL) {
        sk_status = "disabled";
    } else if (h != NULL && h->has_scaikey) {
        if (h->scaikey.ok != NULL)
            sk_status = h->scaikey.ok(h->scaikey.ctx) ? "ok" : "failing";
        jwks_age = hook_i64(h->scaikey.jwks_age_s, h->scaikey.ctx, true);
    }
    bool all_ok = st.c.ok && kms.c.ok && audit_ok && strcmp(sk_status, "failing") != 0;

    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, all_ok ? "ok" : "degraded");
    sv_jw_key(jw, "version");
    sv_jw_cstr(jw, SV_VERSION_STRING);
    sv_jw_key(jw, "schema_version");
    sv_jw_uint(jw, st.c.ok ? st.c.schema_version : SV_SCHEMA_VERSION);
    sv_jw_key(jw, "uptime_s");
    sv_jw_uint(jw, (sv_mono_us() - app->started_mono_us) / 1000000);
    sv_jw_key(jw, "dependencies");
    sv_jw_obj_begin(jw);

    sv_jw_key(jw, "storage");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, st.c.ok ? "ok" : "failed");
    sv_jw_key(jw, "latency_ms");
    jw_ms_or_null(jw, sv_store_read_latency(app->store), 50);
    sv_jw_key(jw, "latency_p99_ms");
    jw_ms_or_null(jw, sv_store_read_latency(app->store), 99);
    sv_jw_key(jw, "map_used_pct");
    sv_jw_double(jw, sv_store_map_used_pct(app->store));
    sv_jw_key(jw, "readers_used");
    sv_jw_uint(jw, readers_used);
    sv_jw_key(jw, "readers_max");
    sv_jw_uint(jw, readers_max);
    if (!st.c.ok) {
        sv_jw_key(jw, "error");
        sv_jw_cstr(jw, st.c.why);
    }
    sv_jw_obj_end(jw);

    sv_jw_key(jw, "kms");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, kms.c.ok ? "ok" : "failed");
    sv_jw_key(jw, "latency_ms");
    jw_ms_or_null(jw, h != NULL && h->has_kms ? h->kms.latency : NULL, 50);
    sv_jw_key(jw, "latency_p99_ms");
    jw_ms_or_null(jw, h != NULL && h->has_kms ? h->kms.latency : NULL, 99);
    sv_jw_key(jw, "provider");
    sv_jw_cstr(jw, kms_provider(app));
    if (!kms.c.ok) {
        sv_jw_key(jw, "error");
        sv_jw_cstr(jw, kms.c.why);
    } else if (kms.note != NULL) {
        sv_jw_key(jw, "note");
        sv_jw_cstr(jw, kms.note);
    }
    sv_jw_obj_end(jw);

    sv_jw_key(jw, "audit");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, audit_ok ? "ok" : "failed");
    sv_jw_key(jw, "commit_latency_ms");
    jw_ms_or_null(jw, sv_writer_commit_latency(app->writer), 50);
    sv_jw_key(jw, "commit_latency_p99_ms");
    jw_ms_or_null(jw, sv_writer_commit_latency(app->writer), 99);
    sv_jw_key(jw, "queue_depth");
    sv_jw_uint(jw, ws.queue_depth);
    if (!audit_ok) {
        sv_jw_key(jw, "error");
        sv_jw_cstr(jw, audit_why);
    }
    sv_jw_obj_end(jw);

    sv_jw_key(jw, "webhooks");
    sv_jw_obj_begin(jw);
    bool wh = h != NULL && h->has_webhooks;
    sv_jw_key(jw, "queue_depth");
    jw_i64_or_null(jw, wh ? hook_i64(h->webhooks.queue_depth, h->webhooks.ctx, true) : -1);
    sv_jw_key(jw, "failing");
    jw_i64_or_null(jw, wh ? hook_i64(h->webhooks.failing, h->webhooks.ctx, true) : -1);
    sv_jw_obj_end(jw);

    sv_jw_key(jw, "replication");
    sv_jw_obj_begin(jw);
    bool rep = h != NULL && h->has_replication;
    sv_jw_key(jw, "role");
    sv_jw_cstr(jw, rep && h->replication.role != NULL ? h->replication.role(h->replication.ctx) : "primary");
    sv_jw_key(jw, "lag_lsn");
    sv_jw_int(jw, rep ? hook_i64(h->replication.lag_lsn, h->replication.ctx, true) : 0);
    sv_jw_key(jw, "lag_ms");
    sv_jw_int(jw, rep ? hook_i64(h->replication.lag_ms, h->replication.ctx, true) : 0);
    sv_jw_obj_end(jw);

    sv_jw_key(jw, "scaikey");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "status");
    sv_jw_cstr(jw, sk_status);
    sv_jw_key(jw, "jwks_age_s");
    jw_i64_or_null(jw, jwks_age);
    sv_jw_obj_end(jw);

    sv_jw_obj_end(jw); /* dependencies */
    sv_jw_key(jw, "pool_available");
    sv_jw_uint(jw, readers_max > readers_used ? readers_max - readers_used : 0);
    sv_jw_key(jw, "pool_size");
    sv_jw_uint(jw, app->cfg->db_pool_size);
    sv_jw_obj_end(jw);
}

/* ---- server-wide metrics ---- */

static double g_uptime(void *arg)
{
    sv_app_t *app = arg;
    return (double)(sv_mono_us() - app->started_mono_us) / 1e6;
}

static double g_start_time(void *arg)
{
    return (double)((sv_app_t *)arg)->started_at;
}

static double g_one(void *arg)
{
    (void)arg;
    return 1;
}

static double g_queue_depth(void *arg)
{
    sv_writer_stats_t ws;
    sv_writer_stats(((sv_app_t *)arg)->writer, &ws);
    return ws.queue_depth;
}

static double g_map_used(void *arg)
{
    return sv_store_map_used_pct(((sv_app_t *)arg)->store) / 100.0;
}

static double g_map_size(void *arg)
{
    return (double)sv_store_map_size(((sv_app_t *)arg)->store);
}

static double g_readers_used(void *arg)
{
    unsigned used, max;
    sv_store_reader_stats(((sv_app_t *)arg)->store, &used, &max);
    return used;
}

static double g_readers_max(void *arg)
{
    unsigned used, max;
    sv_store_reader_stats(((sv_app_t *)arg)->store, &used, &max);
    return max;
}

/* the writer's batch-size buckets (wal/writer.h): 1, 2-4, 5-16, ... */
static const uint64_t batch_bounds[8] = {1, 4, 16, 64, 256, 1024, 4096, UINT64_MAX};

static void collect_writer(void *arg, sv_buf_t *out)
{
    sv_app_t *app = arg;
    sv_writer_stats_t ws;
    sv_writer_stats(app->writer, &ws);
    sv_metrics_fmt_header(out, "scaivault_writer_commits_total", "counter",
                          "Durable commits (group-commit batches) of the writer.");
    sv_metrics_fmt_sample_u64(out, "scaivault_writer_commits_total", NULL, ws.commits);
    sv_metrics_fmt_header(out, "scaivault_writer_failed_commits_total", "counter",
                          "Batches whose commit failed (disk full, I/O error).");
    sv_metrics_fmt_sample_u64(out, "scaivault_writer_failed_commits_total", NULL, ws.failed_commits);
    sv_metrics_fmt_header(out, "scaivault_audit_entries_lost_total", "counter",
                          "Audit entries of AUDIT_DURABILITY=async whose commit failed after their response had gone "
                          "out (always 0 with sync).");
    sv_metrics_fmt_sample_u64(out, "scaivault_audit_entries_lost_total", NULL, atomic_load(&app->audit_lost));
    sv_metrics_fmt_header(out, "scaivault_audit_journal_entries", "gauge",
                          "Audit entries in the journal, durable but not yet in the store.");
    sv_metrics_fmt_sample_u64(out, "scaivault_audit_journal_entries", NULL, sv_audit_pending(app->audit));
    sv_metrics_fmt_header(out, "scaivault_writer_units_total", "counter",
                          "Units (writes and audit entries) completed by the writer.");
    sv_metrics_fmt_sample_u64(out, "scaivault_writer_units_total", NULL, ws.units);
    sv_metrics_fmt_header(out, "scaivault_writer_map_grows_total", "counter", "Times the LMDB map was grown.");
    sv_metrics_fmt_sample_u64(out, "scaivault_writer_map_grows_total", NULL, ws.map_grows);
    sv_metrics_fmt_header(out, "scaivault_writer_last_lsn", "gauge", "The last committed change-log LSN.");
    sv_metrics_fmt_sample_u64(out, "scaivault_writer_last_lsn", NULL, ws.last_lsn);
    sv_metrics_fmt_header(out, "scaivault_writer_batch_size", "histogram", "Units per committed batch.");
    sv_metrics_fmt_histogram(out, "scaivault_writer_batch_size", NULL, batch_bounds, ws.batch_hist, 8, ws.batch_units,
                             1);
    sv_metrics_fmt_header(out, "scaivault_writer_commit_duration_seconds", "histogram",
                          "Duration of the writer's durable commit (LMDB's, or the audit journal's write), per batch.");
    sv_metrics_fmt_latency(out, "scaivault_writer_commit_duration_seconds", NULL,
                           sv_writer_commit_latency(app->writer));
    sv_metrics_fmt_header(out, "scaivault_storage_read_duration_seconds", "histogram",
                          "Duration of read snapshots on the workers, from begin to end.");
    sv_metrics_fmt_latency(out, "scaivault_storage_read_duration_seconds", NULL, sv_store_read_latency(app->store));
    sv_prealloc_stats_t ps;
    sv_prealloc_stats(app->prealloc, &ps);
    sv_metrics_fmt_header(out, "scaivault_storage_prealloc_margin_bytes", "gauge",
                          "Bytes of data.mdb written ahead of the last page in use (commits into them need not "
                          "write the file's inode).");
    sv_metrics_fmt_sample_u64(out, "scaivault_storage_prealloc_margin_bytes", NULL, ps.margin);
    sv_metrics_fmt_header(out, "scaivault_storage_prealloc_skipped_total", "counter",
                          "Times data.mdb was not extended ahead of use: too little disk would stay free, or a write "
                          "failed.");
    sv_metrics_fmt_sample_u64(out, "scaivault_storage_prealloc_skipped_total", NULL, ps.skipped + ps.failures);
}

static sv_err_t register_metrics(sv_app_t *app)
{
    sv_metrics_t *m = app->metrics;
    sv_err_t err;
    char build[96];
    snprintf(build, sizeof(build), "version=\"%s\",schema_version=\"%d\"", SV_VERSION_STRING, SV_SCHEMA_VERSION);
    if ((err = sv_metrics_gauge(m, "scaivault_build_info", build, "Always 1; the labels name the build.", g_one,
                                NULL)) != SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_uptime_seconds", NULL, "Seconds since the server started.", g_uptime,
                                app)) != SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_start_time_seconds", NULL,
                                "Start time of the server, seconds since the Unix epoch.", g_start_time, app)) !=
            SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_audit_queue_depth", NULL,
                                "Units (audit entries and the writes they go with) waiting in the writer's queue.",
                                g_queue_depth, app)) != SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_storage_map_used_ratio", NULL,
                                "Fraction of the LMDB map in use (the map grows when full).", g_map_used, app)) !=
            SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_storage_map_size_bytes", NULL, "Current LMDB map size.", g_map_size,
                                app)) != SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_storage_readers_used", NULL, "LMDB reader slots in use.", g_readers_used,
                                app)) != SV_OK ||
        (err = sv_metrics_gauge(m, "scaivault_storage_readers_max", NULL, "LMDB reader slots (DB_POOL_SIZE).",
                                g_readers_max, app)) != SV_OK)
        return err;
    /* counted by src/auth (verified-token cache) and src/keyring (unwrapped
     * data keys): registered here so that they exist from the first scrape */
    static const char *const caches[][2] = {
        {"scaivault_token_cache_requests_total", "Verified-token cache lookups, by result."},
        {"scaivault_data_key_cache_requests_total", "Unwrapped data-key cache lookups, by result."},
    };
    for (size_t i = 0; i < SV_ARRAY_LEN(caches); i++) {
        if (sv_metrics_counter(m, caches[i][0], "result=\"hit\"", caches[i][1]) == NULL ||
            sv_metrics_counter(m, caches[i][0], "result=\"miss\"", caches[i][1]) == NULL)
            return SV_ENOMEM;
    }
    return sv_metrics_add_collector(m, collect_writer, app);
}

sv_err_t sv_health_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    sv_err_t err = SV_ENOMEM;
    sv_health_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return SV_ENOMEM;
    h->app = app;
    atomic_init(&h->last_ready, -1);
    atomic_init(&h->last_failed, -1);
    if ((err = sv_metrics_new(&app->metrics)) != SV_OK)
        goto free_health;
    if ((err = register_metrics(app)) != SV_OK) {
        snprintf(msg, msglen, "cannot register the server metrics: %s", sv_strerror(err));
        goto free_metrics;
    }
    app->health = h;
    return SV_OK;

free_metrics:
    sv_metrics_free(app->metrics);
    app->metrics = NULL;
free_health:
    free(h);
    return err;
}

void sv_health_part_stop(sv_app_t *app)
{
    sv_metrics_free(app->metrics);
    app->metrics = NULL;
    free(app->health);
    app->health = NULL;
}
