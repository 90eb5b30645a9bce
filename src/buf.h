/*
 * buf.h - a growable byte buffer, in plain heap memory or in sodium_malloc
 * memory for anything that may hold a plaintext secret. A secure buffer is
 * wiped whenever it moves (growth) and when it is freed.
 */
#ifndef SV_BUF_H
#define SV_BUF_H

#include <stdarg.h>

#include "src/sv.h"

typedef struct {
    uint8_t *base;
    size_t len;
    size_t cap;
    bool secure; /* sodium_malloc memory, wiped on growth and free */
    bool failed; /* an allocation failed: the contents are unusable */
} sv_buf_t;

/** Starts an empty buffer. No allocation happens until the first append. */
void sv_buf_init(sv_buf_t *b, bool secure);
/** Frees (and for secure buffers wipes) the memory. b may be reused after sv_buf_init. */
void sv_buf_free(sv_buf_t *b);
/** Makes room for n more bytes. false (and b->failed) on allocation failure. */
bool sv_buf_reserve(sv_buf_t *b, size_t n);
void sv_buf_append(sv_buf_t *b, const void *p, size_t n);
static inline void sv_buf_putc(sv_buf_t *b, char c)
{
    if (b->len < b->cap)
        b->base[b->len++] = (uint8_t)c;
    else
        sv_buf_append(b, &c, 1);
}
static inline void sv_buf_puts(sv_buf_t *b, const char *s)
{
    sv_buf_append(b, s, __builtin_strlen(s));
}
/** printf-style append. Never use it with plaintext secrets (vsnprintf may
 * copy through stack buffers). */
void sv_buf_printf(sv_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Wipes the contents (secure or not) and sets len to 0, keeping the memory. */
void sv_buf_clear(sv_buf_t *b);
/** Hands the memory over to the caller (who must free it with sv_buf_release_mem
 * with the same secure flag) and leaves b empty. */
uint8_t *sv_buf_detach(sv_buf_t *b, size_t *len);
/** Frees memory detached from a buffer. */
void sv_buf_release_mem(uint8_t *p, size_t cap, bool secure);

#endif
