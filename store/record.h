/*
 * record.h - record codecs: every stored value is a record that starts with a
 * one-byte format version, followed by fields written with these helpers.
 * Readers check the version and every length against the bounds of the value,
 * so a damaged or foreign record gives SV_ECORRUPT, never a wild read.
 *
 * Field encodings: u8; u32 and u64 big-endian; bytes = u32 length + bytes.
 */
#ifndef SV_STORE_RECORD_H
#define SV_STORE_RECORD_H

#include "src/sv.h"

/** A growable output buffer for one record. Plain heap memory: never put
 * plaintext secrets in it (ciphertext only). */
typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: the record is unusable */
} sv_recw_t;

void sv_recw_init(sv_recw_t *w, uint8_t version);
/** Starts a new record in w, keeping its allocation (for a writer that encodes
 * many records in a row). */
void sv_recw_reset(sv_recw_t *w, uint8_t version);
void sv_recw_free(sv_recw_t *w);
void sv_recw_u8(sv_recw_t *w, uint8_t v);
void sv_recw_u32(sv_recw_t *w, uint32_t v);
void sv_recw_u64(sv_recw_t *w, uint64_t v);
void sv_recw_i64(sv_recw_t *w, int64_t v);
void sv_recw_bytes(sv_recw_t *w, const void *p, size_t len);
static inline void sv_recw_str(sv_recw_t *w, const char *s)
{
    sv_recw_bytes(w, s, s != NULL ? __builtin_strlen(s) : 0);
}
/** The finished record, or SV_ENOMEM if an append failed. */
sv_err_t sv_recw_result(const sv_recw_t *w, sv_bytes_t *out);

/** A bounds-checked reader over a stored record. */
typedef struct {
    sv_bytes_t rec;
    size_t off;
    bool failed; /* a read went past the end */
} sv_recr_t;

/** Starts reading rec; returns its format version, or -1 when empty. */
int sv_recr_init(sv_recr_t *r, sv_bytes_t rec);
uint8_t sv_recr_u8(sv_recr_t *r);
uint32_t sv_recr_u32(sv_recr_t *r);
uint64_t sv_recr_u64(sv_recr_t *r);
int64_t sv_recr_i64(sv_recr_t *r);
/** A view into the record (valid as long as the record). */
sv_bytes_t sv_recr_bytes(sv_recr_t *r);
/** Copies a bytes field as a NUL-terminated string into out (cap bytes).
 * Fails (sets r->failed) when it does not fit or contains 0x00. */
void sv_recr_str(sv_recr_t *r, char *out, size_t cap);
/** SV_OK when every read stayed within the record, else SV_ECORRUPT. */
static inline sv_err_t sv_recr_result(const sv_recr_t *r)
{
    return r->failed ? SV_ECORRUPT : SV_OK;
}
/** Bytes left unread. */
static inline size_t sv_recr_left(const sv_recr_t *r)
{
    return r->rec.len - r->off;
}

#endif
