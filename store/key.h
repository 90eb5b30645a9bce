/*
 * key.h - storage keys: big-endian binary so that LMDB's byte order is the
 * order we want, and prefix scans stay within one tenant, one secret, etc.
 *
 * A key is a sequence of parts. A string part is its bytes followed by 0x00, so
 * "app" sorts before "app/x" and no string is a prefix of another's key. A
 * number part is 8 big-endian bytes. String parts must not contain 0x00 (paths
 * and ids are validated before they get here).
 */
#ifndef SV_STORE_KEY_H
#define SV_STORE_KEY_H

#include <string.h>

#include "src/sv.h"

#define SV_KEY_MAX 511 /* LMDB's default max key size */

typedef struct {
    uint8_t buf[SV_KEY_MAX];
    size_t len;
    bool overflow; /* a part did not fit: the key must not be used */
} sv_key_t;

static inline void sv_key_init(sv_key_t *k)
{
    k->len = 0;
    k->overflow = false;
}

/** Appends a string part (bytes + 0x00). */
static inline void sv_key_str(sv_key_t *k, const char *s, size_t len)
{
    if (k->overflow || len + 1 > SV_KEY_MAX - k->len || memchr(s, 0, len) != NULL) {
        k->overflow = true;
        return;
    }
    memcpy(k->buf + k->len, s, len);
    k->len += len;
    k->buf[k->len++] = 0;
}

/** Appends raw bytes with no terminator (the last part of a prefix scan). */
static inline void sv_key_raw(sv_key_t *k, const void *p, size_t len)
{
    if (k->overflow || len > SV_KEY_MAX - k->len) {
        k->overflow = true;
        return;
    }
    memcpy(k->buf + k->len, p, len);
    k->len += len;
}

/** Appends an 8-byte big-endian number part. */
static inline void sv_key_u64(sv_key_t *k, uint64_t v)
{
    if (k->overflow || 8 > SV_KEY_MAX - k->len) {
        k->overflow = true;
        return;
    }
    sv_put_be64(k->buf + k->len, v);
    k->len += 8;
}

/** Appends one byte (a record-kind tag). */
static inline void sv_key_u8(sv_key_t *k, uint8_t v)
{
    sv_key_raw(k, &v, 1);
}

static inline sv_bytes_t sv_key_bytes(const sv_key_t *k)
{
    return (sv_bytes_t){k->buf, k->len};
}

/** Reads a string part at *off of key; advances *off. false when malformed. */
static inline bool sv_key_read_str(sv_bytes_t key, size_t *off, sv_bytes_t *out)
{
    if (*off > key.len)
        return false;
    const uint8_t *p = memchr(key.base + *off, 0, key.len - *off);
    if (p == NULL)
        return false;
    out->base = key.base + *off;
    out->len = (size_t)(p - out->base);
    *off += out->len + 1;
    return true;
}

/** Reads an 8-byte number part at *off of key; advances *off. */
static inline bool sv_key_read_u64(sv_bytes_t key, size_t *off, uint64_t *out)
{
    if (*off + 8 > key.len)
        return false;
    *out = sv_get_be64(key.base + *off);
    *off += 8;
    return true;
}

#endif
