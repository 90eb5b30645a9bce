/*
 * kms.c - the KMS interface (kms.h) and the `local` provider.
 *
 * Providers sit behind a small table of functions, so that `aws` (AWS KMS's
 * JSON API through the outbound libcurl thread) and `pkcs11` (an HSM session)
 * can be added without touching callers: a provider completes an operation
 * inline or later from its own thread, and this file records the latency of
 * each one on its way back to the caller.
 *
 * The `local` provider keeps a 32-byte key from a file. The design choice:
 * the key lives only in sodium_malloc memory (mlock'ed, guard pages, excluded
 * from core dumps), read-only after load, and is wiped when the server stops.
 * The file must not be readable by anyone but the owner; a looser mode stops
 * the server at start (exit 2) rather than run with a key others can read.
 * A wrap is XChaCha20-Poly1305 of the data key under the KMS key with the
 * operation's context as associated data: 1 format byte, a 24-byte random
 * nonce, 32 + 16 bytes of ciphertext and tag.
 *
 * Thread safety: wrap, unwrap and check may run on any thread at once; open
 * and close run on the main thread while no operation is in flight.
 */
#include "sv_autoconf.h"

#include "src/kms.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/app.h"
#include "src/health.h"
#include "src/log.h"
#include "src/metrics.h"
#include "src/secmem.h"
#include "store/fault.h"

#define LOCAL_KEY_FILE_NAME "master.key"
#define LOCAL_WRAP_FORMAT 1
#define LOCAL_WRAPPED_LEN                                                                                              \
    (1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + SV_KMS_DATA_KEY_BYTES +                                        \
     crypto_aead_xchacha20poly1305_ietf_ABYTES)

typedef struct {
    const char *name;
    void (*wrap)(sv_kms_t *k, sv_kms_op_t *op); /* completes op (kms_complete) now or later */
    void (*unwrap)(sv_kms_t *k, sv_kms_op_t *op);
    sv_err_t (*check)(sv_kms_t *k);
    void (*close)(sv_kms_t *k);
} provider_t;

struct sv_kms {
    const provider_t *provider;
    sv_latency_t latency;
    int64_t delay_ms;     /* tests: complete from another thread after this */
    atomic_uint inflight; /* delayed operations not yet completed */
    char key_id[SV_KMS_KEY_ID_MAX];
    /* local */
    uint8_t *master; /* SV_KMS_DATA_KEY_BYTES in sodium_malloc memory, read-only */
    char path[4096]; /* the key file */
    bool created;    /* the key file was missing: this open made it */
};

/* Every provider ends an operation here: latency, then the caller's callback. */
static void kms_complete(sv_kms_t *k, sv_kms_op_t *op, sv_err_t result)
{
    op->result = result;
    sv_latency_record(&k->latency, sv_mono_us() - op->started_us_);
    if (op->delayed_)
        atomic_fetch_sub(&k->inflight, 1); /* k is not touched after this */
    op->done(op);
}

/* Tests: run one provider call on its own thread after k->delay_ms, the way
 * a remote provider answers from its I/O thread. */
typedef struct {
    sv_kms_t *k;
    sv_kms_op_t *op;
    void (*call)(sv_kms_t *k, sv_kms_op_t *op);
} delayed_t;

static void *delayed_main(void *arg)
{
    delayed_t d = *(delayed_t *)arg;
    free(arg);
    struct timespec ts = {.tv_sec = (time_t)(d.k->delay_ms / 1000), .tv_nsec = (long)(d.k->delay_ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) /* usleep's useconds_t would wrap after 71 minutes */
        ;
    d.call(d.k, d.op);
    return NULL;
}

static void start_op(sv_kms_t *k, sv_kms_op_t *op, void (*call)(sv_kms_t *k, sv_kms_op_t *op))
{
    op->started_us_ = sv_mono_us();
    op->delayed_ = false;
    if (sv_fault_check(SV_FAULT_KMS) != 0) {
        /* tests: the provider cannot be reached */
        kms_complete(k, op, SV_EUPSTREAM);
        return;
    }
    if (k->delay_ms > 0) {
        delayed_t *d = malloc(sizeof(*d));
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (d != NULL) {
            *d = (delayed_t){k, op, call};
            op->delayed_ = true;
            atomic_fetch_add(&k->inflight, 1);
            if (pthread_create(&t, &attr, delayed_main, d) == 0) {
                pthread_attr_destroy(&attr);
                return;
            }
            atomic_fetch_sub(&k->inflight, 1);
            op->delayed_ = false;
            free(d);
        }
        pthread_attr_destroy(&attr);
    }
    call(k, op);
}

/* ---- local provider ---- */

static void local_wrap(sv_kms_t *k, sv_kms_op_t *op)
{
    uint8_t *w = op->wrapped;
    w[0] = LOCAL_WRAP_FORMAT;
    uint8_t *nonce = w + 1;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, op->key,
                                               SV_KMS_DATA_KEY_BYTES, op->context, op->context_len, NULL, nonce,
                                               k->master);
    op->wrapped_len = 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)clen;
    snprintf(op->key_id, sizeof(op->key_id), "%s", k->key_id);
    kms_complete(k, op, SV_OK);
}

static void local_unwrap(sv_kms_t *k, sv_kms_op_t *op)
{
    sv_err_t result = SV_ECRYPTO;
    if (op->wrapped_len == LOCAL_WRAPPED_LEN && op->wrapped[0] == LOCAL_WRAP_FORMAT &&
        strcmp(op->key_id, k->key_id) == 0) {
        const uint8_t *nonce = op->wrapped + 1;
        unsigned long long mlen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                op->key, &mlen, NULL, nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                LOCAL_WRAPPED_LEN - 1 - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, op->context, op->context_len,
                nonce, k->master) == 0 &&
            mlen == SV_KMS_DATA_KEY_BYTES)
            result = SV_OK;
    }
    if (result != SV_OK)
        sodium_memzero(op->key, SV_KMS_DATA_KEY_BYTES);
    kms_complete(k, op, result);
}

static void check_done(sv_kms_op_t *op)
{
    (void)op;
}

/* A wrap and unwrap of a throw-away key, entirely in memory. */
static sv_err_t local_check(sv_kms_t *k)
{
    if (k->master == NULL)
        return SV_ECRYPTO;
    /* not from the capped pool: requests holding it all (an overload) are no KMS failure */
    uint8_t *keys = sv_secmem_alloc_uncapped(2 * SV_KMS_DATA_KEY_BYTES);
    if (keys == NULL)
        return SV_ENOMEM;
    randombytes_buf(keys, SV_KMS_DATA_KEY_BYTES);
    /* straight to the provider: inline, never delayed */
    sv_kms_op_t op = {.key = keys, .context_len = 5, .done = check_done, .started_us_ = sv_mono_us()};
    memcpy(op.context, "check", 5);
    local_wrap(k, &op);
    sv_err_t err = op.result;
    if (err == SV_OK) {
        op.key = keys + SV_KMS_DATA_KEY_BYTES;
        local_unwrap(k, &op);
        err = op.result;
    }
    if (err == SV_OK && sodium_memcmp(keys, keys + SV_KMS_DATA_KEY_BYTES, SV_KMS_DATA_KEY_BYTES) != 0)
        err = SV_ECRYPTO;
    sv_secmem_free(keys); /* wipes */
    return err;
}

static void local_close(sv_kms_t *k)
{
    if (k->master != NULL)
        sodium_free(k->master); /* wipes */
    k->master = NULL;
}

static const provider_t local_provider = {"local", local_wrap, local_unwrap, local_check, local_close};


/* Creates path with a new random key (mode 0600, O_EXCL). */
static sv_err_t local_create(const char *path, uint8_t *key, char *msg, size_t msglen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: cannot create %s: %s", path, strerror(e));
        return sv_store_err(e); /* a missing directory or no permission: a setting to fix (exit 2) */
    }
    sv_err_t err = SV_OK;
    randombytes_buf(key, SV_KMS_DATA_KEY_BYTES);
    if (fchmod(fd, 0600) != 0 || sv_sys_write(fd, key, SV_KMS_DATA_KEY_BYTES) != SV_KMS_DATA_KEY_BYTES ||
        sv_sys_fsync(fd) != 0) {
        snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: cannot write %s: %s", path, strerror(errno));
        err = errno == ENOSPC ? SV_ENOSPC : SV_EIO;
    }
    close(fd);
    if (err != SV_OK) {
        unlink(path);
        return err;
    }
    (void)sv_sys_fsync_parent(path);
    return SV_OK;
}

/* Reads an existing key file after checking its type, mode and size. */
static sv_err_t local_read(const char *path, int fd, uint8_t *key, char *msg, size_t msglen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: cannot stat %s: %s", path, strerror(errno));
        return SV_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: %s is not a regular file", path);
        return SV_EPERM;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(msg, msglen,
                 "KMS_LOCAL_KEY_FILE: %s is accessible by group or others (mode %04o); refusing to start. "
                 "Run: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return SV_EPERM;
    }
    if (st.st_size != SV_KMS_DATA_KEY_BYTES) {
        snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: %s must hold exactly %d bytes (it holds %lld)", path,
                 SV_KMS_DATA_KEY_BYTES, (long long)st.st_size);
        return SV_EINVAL;
    }
    size_t got = 0;
    while (got < SV_KMS_DATA_KEY_BYTES) {
        ssize_t n = read(fd, key + got, SV_KMS_DATA_KEY_BYTES - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: cannot read %s: %s", path, n < 0 ? strerror(errno) : "short");
            return SV_EIO;
        }
        got += (size_t)n;
    }
    return SV_OK;
}

/* A short, public id of the key: a keyed BLAKE2b of a constant, never the key. */
static void local_key_id(const uint8_t *master, char out[SV_KMS_KEY_ID_MAX])
{
    uint8_t h[crypto_generichash_BYTES_MIN];
    static const char label[] = "scaivault kms key id";
    crypto_generichash(h, sizeof(h), (const uint8_t *)label, sizeof(label) - 1, master, SV_KMS_DATA_KEY_BYTES);
    char hex[17];
    sodium_bin2hex(hex, sizeof(hex), h, 8);
    snprintf(out, SV_KMS_KEY_ID_MAX, "local:%s", hex);
}

static sv_err_t local_open(const sv_config_t *cfg, sv_kms_t *k, char *msg, size_t msglen)
{
    char *path = k->path;
    if (cfg->kms_local_key_file != NULL)
        snprintf(path, sizeof(k->path), "%s", cfg->kms_local_key_file);
    else
        snprintf(path, sizeof(k->path), "%s/%s", cfg->data_dir != NULL ? cfg->data_dir : ".", LOCAL_KEY_FILE_NAME);
    k->master = sodium_malloc(SV_KMS_DATA_KEY_BYTES);
    if (k->master == NULL)
        return SV_ENOMEM;
    sv_err_t err;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        err = local_create(path, k->master, msg, msglen);
        k->created = err == SV_OK;
    } else if (fd < 0) {
        snprintf(msg, msglen, "KMS_LOCAL_KEY_FILE: cannot open %s: %s", path, strerror(errno));
        err = (errno == EACCES || errno == ELOOP) ? SV_EPERM : SV_EIO;
    } else {
        err = local_read(path, fd, k->master, msg, msglen);
        close(fd);
    }
    if (err != SV_OK)
        return err; /* sv_kms_close wipes and frees */
    local_key_id(k->master, k->key_id);
    sodium_mprotect_readonly(k->master);
    if (k->created)
        sv_log_info("kms: created a new KMS key %s in %s (KMS_LOCAL_KEY_FILE did not exist)", k->key_id, path);
    return SV_OK;
}

/* ---- the interface ---- */

sv_err_t sv_kms_open(const sv_config_t *cfg, sv_kms_t **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (cfg->kms_provider != SV_KMS_LOCAL) {
        snprintf(msg, msglen, "KMS_PROVIDER: this provider is not available in this version; use local");
        return SV_EINVAL;
    }
    sv_kms_t *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return SV_ENOMEM;
    k->provider = &local_provider;
    k->delay_ms = cfg->test_faults ? cfg->test_kms_delay_ms : 0;
    atomic_init(&k->inflight, 0);
    sv_err_t err = local_open(cfg, k, msg, msglen);
    if (err != SV_OK) {
        sv_kms_close(k);
        return err;
    }
    *out = k;
    return SV_OK;
}

void sv_kms_close(sv_kms_t *k)
{
    if (k == NULL)
        return;
    while (atomic_load(&k->inflight) > 0)
        usleep(1000);
    k->provider->close(k);
    free(k);
}

void sv_kms_wrap(sv_kms_t *k, sv_kms_op_t *op)
{
    op->wrapped_len = 0;
    start_op(k, op, k->provider->wrap);
}

void sv_kms_unwrap(sv_kms_t *k, sv_kms_op_t *op)
{
    start_op(k, op, k->provider->unwrap);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} waiter_t;

static void waiter_done(sv_kms_op_t *op)
{
    waiter_t *w = op->arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static sv_err_t run_wait(sv_kms_t *k, sv_kms_op_t *op, void (*start)(sv_kms_t *, sv_kms_op_t *))
{
    waiter_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .done = false};
    op->done = waiter_done;
    op->arg = &w;
    start(k, op);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return op->result;
}

sv_err_t sv_kms_wrap_wait(sv_kms_t *k, sv_kms_op_t *op)
{
    return run_wait(k, op, sv_kms_wrap);
}

sv_err_t sv_kms_unwrap_wait(sv_kms_t *k, sv_kms_op_t *op)
{
    return run_wait(k, op, sv_kms_unwrap);
}

sv_err_t sv_kms_check(struct sv_kms *k)
{
    if (k == NULL)
        return SV_ECRYPTO;
    if (sv_fault_peek(SV_FAULT_KMS) != 0)
        return SV_EUPSTREAM; /* tests: what the next wrap or unwrap would meet */
    return k->provider->check(k);
}

sv_latency_t *sv_kms_latency(struct sv_kms *k)
{
    return &k->latency;
}

const char *sv_kms_provider_name(const struct sv_kms *k)
{
    return k->provider->name;
}

const char *sv_kms_key_id(const struct sv_kms *k)
{
    return k->key_id;
}

bool sv_kms_has_key(const sv_kms_t *k, const char *key_id)
{
    return strcmp(key_id, k->key_id) == 0; /* local: its one key */
}

const char *sv_kms_key_file(const sv_kms_t *k)
{
    return k->path;
}

bool sv_kms_key_created(const sv_kms_t *k)
{
    return k->created;
}

sv_err_t sv_kms_remove_created_key(sv_kms_t *k)
{
    if (!k->created)
        return SV_OK;
    if (unlink(k->path) != 0 && errno != ENOENT)
        return SV_EIO;
    k->created = false;
    (void)sv_sys_fsync_parent(k->path);
    return SV_OK;
}

/* ---- the server part ---- */

static bool health_check(void *ctx, char *why, size_t whylen)
{
    sv_err_t err = sv_kms_check(ctx);
    if (err != SV_OK)
        snprintf(why, whylen, "the KMS key cannot be used: %s", sv_strerror(err));
    return err == SV_OK;
}

static void collect(void *arg, sv_buf_t *out)
{
    sv_kms_t *k = arg;
    char labels[64];
    snprintf(labels, sizeof(labels), "provider=\"%s\"", k->provider->name);
    sv_metrics_fmt_header(out, "scaivault_kms_operation_duration_seconds", "histogram",
                          "KMS wraps and unwraps of data keys, by provider.");
    sv_metrics_fmt_latency(out, "scaivault_kms_operation_duration_seconds", labels, &k->latency);
}

sv_err_t sv_kms_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    sv_err_t err = sv_kms_open(app->cfg, &app->kms, msg, msglen);
    if (err != SV_OK)
        return err;
    if (app->health != NULL) {
        sv_health_kms_t hook = {.provider = sv_kms_provider_name(app->kms),
                                .check = health_check,
                                .ctx = app->kms,
                                .latency = sv_kms_latency(app->kms)};
        sv_health_set_kms(app->health, &hook);
    }
    if (app->metrics != NULL && (err = sv_metrics_add_collector(app->metrics, collect, app->kms)) != SV_OK)
        snprintf(msg, msglen, "cannot register the KMS metrics: %s", sv_strerror(err));
    return err;
}

void sv_kms_part_stop(sv_app_t *app)
{
    if (app->metrics != NULL)
        sv_metrics_remove_collector(app->metrics, collect, app->kms);
    sv_kms_close(app->kms);
    app->kms = NULL;
}
