/*
 * secmem.h - memory for plaintext secrets: sodium_malloc blocks (guard pages,
 * locked in RAM, excluded from core dumps), recycled per thread.
 *
 * sodium_malloc costs an mmap, mprotect and mlock, and sodium_free as many
 * again, each taking the process's memory-map lock and, on free, a TLB
 * shootdown across CPUs. A request that parses a secret, builds its
 * plaintext and sends a secure response used to pay that a dozen times, and
 * the writer thread stalled on the same lock. Blocks up to 64 KiB are
 * therefore kept, wiped, in small per-thread caches by power-of-two size, and
 * handed out again: same memory guarantees, no system call on the hot path.
 */
#ifndef SV_SECMEM_H
#define SV_SECMEM_H

#include <stddef.h>

/** At least n usable bytes of sodium_malloc memory (contents undefined), or
 * NULL: out of memory, or the process holds as many blocks as its share of
 * the kernel's memory-mapping limit allows, or as many bytes as
 * sv_secmem_max_bytes (secmem.c). Any thread; free it with sv_secmem_free
 * on any thread. */
void *sv_secmem_alloc(size_t n);
/** The bytes of the blocks in use now, and the most sv_secmem_alloc hands
 * out at once: a quarter of the machine's memory (or of its cgroup's limit
 * when lower), at least 256 MiB. */
long long sv_secmem_in_use_bytes(void);
long long sv_secmem_max_bytes(void);
/** Like sv_secmem_alloc past the cap (and the test fault seam): NULL only
 * when the system has no memory. For allocators that must not fail in the
 * middle of their work (yajl's lexer does not check) after the caller made
 * sure, with a capped allocation, that there is room. */
void *sv_secmem_alloc_uncapped(size_t n);
/** Wipes the whole block and recycles or frees it. NULL is fine. */
void sv_secmem_free(void *p);
/** The usable size of a block from sv_secmem_alloc (>= what was asked). */
size_t sv_secmem_size(const void *p);

#endif
