/*
 * buf.c - growable buffers (buf.h). A buffer belongs to one thread at a time.
 */
#include "sv_autoconf.h"

#include "src/buf.h"
#include "src/secmem.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_buf_init(sv_buf_t *b, bool secure)
{
    memset(b, 0, sizeof(*b));
    b->secure = secure;
}

void sv_buf_release_mem(uint8_t *p, size_t cap, bool secure)
{
    if (p == NULL)
        return;
    if (secure) {
        sv_secmem_free(p); /* wipes */
    } else {
        (void)cap;
        free(p);
    }
}

void sv_buf_free(sv_buf_t *b)
{
    sv_buf_release_mem(b->base, b->cap, b->secure);
    bool secure = b->secure;
    memset(b, 0, sizeof(*b));
    b->secure = secure;
}

bool sv_buf_reserve(sv_buf_t *b, size_t n)
{
    if (b->failed)
        return false;
    if (n <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *nb;
    if (b->secure) {
        nb = sv_secmem_alloc(cap);
        if (nb != NULL && b->len > 0)
            memcpy(nb, b->base, b->len);
        if (nb != NULL)
            sv_secmem_free(b->base);
    } else {
        nb = realloc(b->base, cap);
    }
    if (nb == NULL) {
        b->failed = true;
        return false;
    }
    b->base = nb;
    b->cap = cap;
    return true;
}

void sv_buf_append(sv_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !sv_buf_reserve(b, n))
        return;
    memcpy(b->base + b->len, p, n);
    b->len += n;
}

void sv_buf_printf(sv_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sv_buf_append(b, small, (size_t)n);
        return;
    }
    if (!sv_buf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->base + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sv_buf_clear(sv_buf_t *b)
{
    if (b->base != NULL)
        sodium_memzero(b->base, b->len);
    b->len = 0;
}

uint8_t *sv_buf_detach(sv_buf_t *b, size_t *len)
{
    uint8_t *p = b->base;
    if (len != NULL)
        *len = b->len;
    bool secure = b->secure;
    memset(b, 0, sizeof(*b));
    b->secure = secure;
    return p;
}
