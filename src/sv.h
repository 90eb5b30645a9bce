/*
 * sv.h - the few basics every ScaiVault module shares: the error enum, a byte
 * view, and clocks. Keep it small: anything that belongs to one module lives in
 * that module's header.
 */
#ifndef SV_H
#define SV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_VERSION_STRING "0.1.0"

/* One error enum for the whole program. SV_OK is 0; errors are negative. Errors
 * from LMDB, libcurl and OpenSSL are translated where they enter. */
typedef enum {
    SV_OK = 0,
    SV_ENOMEM = -1,     /* allocation failed */
    SV_EINVAL = -2,     /* bad argument or input */
    SV_ENOTFOUND = -3,  /* no such record */
    SV_EEXIST = -4,     /* record already exists */
    SV_ECONFLICT = -5,  /* check-and-set or version conflict */
    SV_EIO = -6,        /* I/O error from the storage device */
    SV_ENOSPC = -7,     /* no space left on the storage device */
    SV_EMAPFULL = -8,   /* LMDB map full (handled inside the writer) */
    SV_ECORRUPT = -9,   /* a record failed its checksum or format check */
    SV_ETOOBIG = -10,   /* a value is over its size limit */
    SV_EPERM = -11,     /* not permitted (file modes, roles) */
    SV_ESHUTDOWN = -12, /* the server is stopping */
    SV_EAGAIN = -13,    /* temporarily unavailable: try again */
    SV_ETIMEDOUT = -14, /* an outside call took too long */
    SV_ECRYPTO = -15,   /* a seal failed to open, or a key is unusable */
    SV_ESCHEMA = -16,   /* the schema version does not match the binary */
    SV_EDELETED = -17,  /* the record exists but is (soft) deleted */
    SV_EDESTROYED = -18,/* the record exists but its payload was destroyed */
    SV_EAUDIT = -19,    /* the audit entry could not be written */
    SV_EUPSTREAM = -20, /* an outside system answered with an error */
    SV_EINTERNAL = -21, /* a bug: an invariant does not hold */
    SV_EGONE = -22,     /* the tenant is being deleted (DELETE /v1/tenants/{id}) */
} sv_err_t;

/** Returns a short, static, human-readable text for err. Never NULL. */
const char *sv_strerror(sv_err_t err);

/** A byte view. It owns nothing; whoever hands it out says how long it lives. */
typedef struct {
    const uint8_t *base;
    size_t len;
} sv_bytes_t;

#define SV_BYTES(p, n) ((sv_bytes_t){(const uint8_t *)(p), (n)})
#define SV_BYTES_STR(s) ((sv_bytes_t){(const uint8_t *)(s), sizeof(s) - 1})
#define SV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** Wall clock, microseconds since the Unix epoch. */
int64_t sv_now_us(void);
/** Wall clock, seconds since the Unix epoch. */
int64_t sv_now_s(void);
/** Monotonic clock, microseconds (for durations only). */
uint64_t sv_mono_us(void);
/** Initialises c so that sv_cond_wait_ms times its waits on the monotonic
 * clock (a wall-clock step never stretches or cuts a background thread's nap). */
void sv_cond_init_monotonic(pthread_cond_t *c);
/** pthread_cond_timedwait on c (from sv_cond_init_monotonic) for at most ms
 * from now; m held. Returns its result (ETIMEDOUT when the time ran out). */
int sv_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms);

/** Formats t (seconds since the epoch, UTC) as RFC 3339 "2026-11-29T10:00:00Z"
 * into out (at least 21 bytes). Returns the length written. */
size_t sv_time_format(char out[21], int64_t t);
/** Parses an RFC 3339 UTC time ("...Z" or "+00:00"; fractional seconds are
 * dropped). Returns SV_EINVAL on anything else. */
sv_err_t sv_time_parse(const char *s, size_t len, int64_t *out);

/** The longest duration sv_duration_parse() accepts: 36500 days (100 years),
 * so that every duration fits in microseconds added to any time. */
#define SV_DURATION_MAX_MS (36500LL * 86400 * 1000)

/** Parses a duration: "30d", "12h", "15m", "45s", "250ms" or plain integer
 * seconds. Writes milliseconds to *out_ms. SV_EINVAL on anything else,
 * including negative values and values over SV_DURATION_MAX_MS. */
sv_err_t sv_duration_parse(const char *s, size_t len, int64_t *out_ms);

#if defined(__GNUC__)
#define SV_MUST_CHECK __attribute__((warn_unused_result))
#define SV_LIKELY(x) __builtin_expect(!!(x), 1)
#define SV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SV_MUST_CHECK
#define SV_LIKELY(x) (x)
#define SV_UNLIKELY(x) (x)
#endif

/* Big-endian integer encoding, used by every storage key. */
static inline void sv_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t sv_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void sv_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t sv_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif
