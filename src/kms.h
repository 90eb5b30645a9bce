/*
 * kms.h - the key management service: the one key that never leaves its
 * provider (the KMS key) and wraps every tenant's data key.
 *
 * The interface is asynchronous because the `aws` and `pkcs11` providers
 * (a later issue) answer over the network or through an HSM session: a caller
 * hands an operation (sv_kms_op_t) to sv_kms_wrap()/sv_kms_unwrap() and gets
 * op->done(op) exactly once, either before the call returns (the `local`
 * provider, a few microseconds) or later from another thread (remote
 * providers). A caller on an HTTP worker therefore never blocks: it continues
 * on its own loop when done() posts back (http/server.h sv_worker_post).
 *
 * Every operation binds a *context* (the owner and identity of the data key)
 * into the wrap, the way AWS KMS binds an encryption context: a wrapped key
 * copied onto another tenant's record fails to unwrap.
 *
 * Latency of every wrap/unwrap is recorded (sv_kms_latency) for
 * /v1/health/detailed and the metrics.
 */
#ifndef SV_KMS_H
#define SV_KMS_H

#include "src/config.h"
#include "src/latency.h"
#include "src/sv.h"

#define SV_KMS_DATA_KEY_BYTES 32 /* the data keys the KMS wraps */
#define SV_KMS_WRAPPED_MAX 512   /* the largest wrapped form any provider returns */
#define SV_KMS_KEY_ID_MAX 128    /* "local:3f9a0c1b2d4e5f60", an ARN, a PKCS#11 label */
#define SV_KMS_CONTEXT_MAX 256

typedef struct sv_kms sv_kms_t;
typedef struct sv_kms_op sv_kms_op_t;

/** Called once per operation, on the provider's thread or inline (see above).
 * op->result says how it went. The op may be freed from inside done(). */
typedef void (*sv_kms_done_fn)(sv_kms_op_t *op);

struct sv_kms_op {
    /* in: bound into the wrapped form; both operations must give the same bytes */
    uint8_t context[SV_KMS_CONTEXT_MAX];
    size_t context_len;
    /* wrap: in, the plaintext data key. unwrap: out (wiped on failure). Points
     * at SV_KMS_DATA_KEY_BYTES bytes of sodium_malloc memory owned by the caller. */
    uint8_t *key;
    /* wrap: out. unwrap: in. Not secret. */
    uint8_t wrapped[SV_KMS_WRAPPED_MAX];
    size_t wrapped_len;
    /* wrap: out, the KMS key that wrapped. unwrap: in (the provider refuses a
     * blob wrapped by another key with SV_ECRYPTO). */
    char key_id[SV_KMS_KEY_ID_MAX];
    sv_kms_done_fn done;
    void *arg; /* the caller's */

    /* out */
    sv_err_t result; /* SV_OK; SV_ECRYPTO (does not unwrap: wrong key, context
                        or damaged blob); SV_EUPSTREAM/SV_ETIMEDOUT (remote
                        provider unreachable); SV_ENOMEM */

    /* private */
    uint64_t started_us_;
    bool delayed_;
};

/** Opens the provider cfg->kms_provider. For `local`: reads the key file
 * (KMS_LOCAL_KEY_FILE, default $SCAIVAULT_DATA_DIR/master.key) or creates it
 * with 32 random bytes and mode 0600 when missing (logged at info; see
 * sv_kms_key_created: a caller whose data needs another key removes it with
 * sv_kms_remove_created_key and refuses to go on). Errors, with msg naming the
 * variable and the file: SV_EPERM (the file is readable or writable by group
 * or others, or not a regular file: the server must refuse to start), SV_EINVAL
 * (the file does not hold exactly 32 bytes; unknown provider), SV_EIO,
 * SV_ENOMEM. On success *out is the caller's (sv_kms_close).
 * With SCAIVAULT_TEST_FAULTS=true and SCAIVAULT_TEST_KMS_DELAY set, every
 * operation completes from another thread after that delay (tests of the
 * asynchronous path with the local provider). */
sv_err_t sv_kms_open(const sv_config_t *cfg, sv_kms_t **out, char *msg, size_t msglen);
/** Waits for operations still in flight, wipes every key held in memory and
 * frees k. NULL is fine. */
void sv_kms_close(sv_kms_t *k);

/** Wraps op->key under the KMS key with op->context. Calls op->done once. */
void sv_kms_wrap(sv_kms_t *k, sv_kms_op_t *op);
/** Unwraps op->wrapped (made by key op->key_id with op->context) into op->key.
 * Calls op->done once; on failure op->key has been wiped. */
void sv_kms_unwrap(sv_kms_t *k, sv_kms_op_t *op);

/** Runs one operation to completion on the calling thread (tools, tests,
 * threads without an event loop; never on an HTTP worker with a remote
 * provider). op->done and op->arg are overwritten. Returns op->result. */
SV_MUST_CHECK sv_err_t sv_kms_wrap_wait(sv_kms_t *k, sv_kms_op_t *op);
SV_MUST_CHECK sv_err_t sv_kms_unwrap_wait(sv_kms_t *k, sv_kms_op_t *op);

/** Health: whether the KMS is reachable and its key usable (for `local`, a
 * wrap/unwrap self-test in memory). Cheap; any thread; never blocks for long
 * (remote providers answer from their last contact). SV_OK or the error. */
sv_err_t sv_kms_check(struct sv_kms *k);

/** Latency of every wrap and unwrap (microseconds). Valid for the life of k. */
sv_latency_t *sv_kms_latency(struct sv_kms *k);
/** The provider's name: "local", "aws", "pkcs11". */
const char *sv_kms_provider_name(const struct sv_kms *k);
/** The id of the key new wraps use (e.g. "local:3f9a0c1b2d4e5f60"). */
const char *sv_kms_key_id(const struct sv_kms *k);
/** Whether k can unwrap what KMS key key_id (a stored sv_keyrec_t's
 * kms_key_id) wrapped. `local`: whether it is the key of its file. */
bool sv_kms_has_key(const sv_kms_t *k, const char *key_id);
/** The key file of the `local` provider (KMS_LOCAL_KEY_FILE or its default).
 * Valid for the life of k. */
const char *sv_kms_key_file(const sv_kms_t *k);
/** Whether sv_kms_open created the key because its file was missing. */
bool sv_kms_key_created(const sv_kms_t *k);
/** Removes the key file that sv_kms_open created (a no-op when it read an
 * existing one), so that a refused start leaves nothing where the real key
 * belongs (e.g. the mount point of a secrets volume that is not mounted).
 * k keeps the key in memory until sv_kms_close. SV_OK or SV_EIO. */
sv_err_t sv_kms_remove_created_key(sv_kms_t *k);

/* ---- the server part (src/cmd_server.c) ---- */

struct sv_app;
/** Opens app->kms (sv_kms_open), installs its readiness hook (health.h) and
 * its latency histogram (scaivault_kms_operation_duration_seconds). Errors as
 * sv_kms_open, msg naming the variable and the file. */
sv_err_t sv_kms_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Removes the metrics collector and closes app->kms (wiping the key). */
void sv_kms_part_stop(struct sv_app *app);

#endif
