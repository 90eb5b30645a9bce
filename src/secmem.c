/*
 * secmem.c - recycled sodium_malloc blocks (secmem.h).
 *
 * Each block is one sodium_malloc region holding a 16-byte header (its usable
 * size) and the user bytes. Blocks of a size class (256 B .. 64 KiB) go back,
 * wiped, to the freeing thread's cache, at most CACHE_PER_CLASS per class; the
 * rest, and larger blocks, go back to libsodium. A thread's cache is released
 * when the thread exits (a pthread key destructor). Caches are per thread, so
 * there is no lock; a block may be freed on another thread than the one that
 * allocated it (it then joins that thread's cache).
 *
 * Every sodium_malloc region costs the process three memory mappings (the
 * block and its two guard pages), and the kernel caps mappings per process
 * (vm.max_map_count, 65,530 by default). Past that, every mmap fails and h2o
 * aborts on its next allocation: 20,000 secret reads in flight, each holding
 * its body until its audit entry commits, did that. So the blocks in use at
 * once are capped at half of that limit's worth, and the blocks idle in the
 * threads' caches, together, at half as many again (a block freed beyond that
 * goes back to libsodium); past the cap sv_secmem_alloc fails like an
 * out-of-memory, which a request answers with 503 (retry), and the server
 * stays up. Idle cached blocks never count against the blocks in use, so a
 * flood that filled the caches cannot leave the server refusing at rest.
 * The bytes in use are capped too (a quarter of the machine's memory): a
 * few thousand large bodies, such as batch answers that their clients do not
 * read, would otherwise reach the out-of-memory killer long before the
 * mapping limit.
 */
#include "sv_autoconf.h"

#include "src/secmem.h"

#include "store/fault.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER 16
#define MIN_SHIFT 8  /* 256 B */
#define MAX_SHIFT 16 /* 64 KiB */
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
/* Sized for the responses a worker holds at once: under AUDIT_DURABILITY=sync
 * every secret read keeps its (secure) body until its audit entry commits, so
 * with a few hundred connections a worker holds a few hundred bodies. A cache
 * smaller than that sends the overflow to sodium_free/sodium_malloc, whose
 * mprotect/munmap serialise on the process's memory map against the writer's
 * I/O: measured, 32 blocks per class cut audited reads at 256 connections
 * from 64k to 17k req/s. 512 blocks of the common classes are a few MiB of
 * address space per worker (most of it guard pages). */
#define CACHE_PER_CLASS 512

typedef struct free_block {
    struct free_block *next;
} free_block_t;

typedef struct {
    free_block_t *head[NCLASS];
    unsigned n[NCLASS];
} cache_t;

static atomic_long in_use;     /* blocks handed out and not freed */
static atomic_long cached;     /* blocks idle in the threads' caches */
static long max_in_use, max_cached;
static atomic_llong in_use_bytes; /* their sizes */
static long long max_bytes;
static pthread_once_t limit_once = PTHREAD_ONCE_INIT;

static void limit_init(void)
{
    long maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &maps) != 1 || maps < 3000)
            maps = 65530;
        fclose(f);
    }
    max_in_use = maps / 3 / 2; /* 10,921 blocks by default: half of the mappings */
    max_cached = max_in_use / 2; /* together: three quarters of the mappings */
    /* and their bytes at a quarter of the machine's memory: a few large
     * bodies (batch answers held by clients that do not read them) must
     * end in 503s, not in the kernel's out-of-memory killer */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    long long mem = pages > 0 && page > 0 ? (long long)pages * page : (4LL << 30);
    /* in a container, its memory limit is the machine (cgroup v2, then v1) */
    static const char *const limits[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        long long lim = 0;
        FILE *lf = fopen(limits[i], "r");
        if (lf == NULL)
            continue;
        if (fscanf(lf, "%lld", &lim) == 1 && lim > 0 && lim < mem) /* "max" (no limit) does not scan */
            mem = lim;
        fclose(lf);
        break;
    }
    max_bytes = mem / 4;
    if (max_bytes < (256LL << 20))
        max_bytes = 256LL << 20;
}

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static __thread cache_t *tcache;

static void block_release(void *user)
{
    sodium_free((uint8_t *)user - HEADER); /* wipes */
}

static void cache_destroy(void *arg)
{
    cache_t *c = arg;
    for (int i = 0; i < NCLASS; i++) {
        while (c->head[i] != NULL) {
            free_block_t *b = c->head[i];
            c->head[i] = b->next;
            block_release(b);
            atomic_fetch_sub(&cached, 1);
        }
    }
    free(c);
    tcache = NULL;
}

static void make_key(void)
{
    pthread_key_create(&cache_key, cache_destroy);
}

static cache_t *cache_get(void)
{
    if (tcache == NULL) {
        pthread_once(&cache_once, make_key);
        tcache = calloc(1, sizeof(*tcache));
        if (tcache != NULL)
            pthread_setspecific(cache_key, tcache);
    }
    return tcache;
}

/* The class of a request of n bytes, or -1 when larger than the largest. */
static int class_of(size_t n)
{
    for (int i = 0; i < NCLASS; i++)
        if (n <= ((size_t)1 << (MIN_SHIFT + i)))
            return i;
    return -1;
}

static void *alloc_block(size_t n);

/* The usable size of the block that a request of n bytes gets. */
static size_t block_size(size_t n)
{
    int cls = class_of(n);
    return cls >= 0 ? (size_t)1 << (MIN_SHIFT + cls) : n;
}

void *sv_secmem_alloc(size_t n)
{
    if (sv_fault_check(SV_FAULT_MALLOC) != 0)
        return NULL; /* tests: out of memory for plaintext */
    pthread_once(&limit_once, limit_init);
    long long size = (long long)block_size(n);
    if (atomic_fetch_add(&in_use, 1) >= max_in_use) {
        atomic_fetch_sub(&in_use, 1);
        return NULL;
    }
    if (atomic_fetch_add(&in_use_bytes, size) + size > max_bytes) {
        atomic_fetch_sub(&in_use_bytes, size);
        atomic_fetch_sub(&in_use, 1);
        return NULL;
    }
    return alloc_block(n);
}

long long sv_secmem_in_use_bytes(void)
{
    return atomic_load(&in_use_bytes);
}

long long sv_secmem_max_bytes(void)
{
    pthread_once(&limit_once, limit_init);
    return max_bytes;
}

void *sv_secmem_alloc_uncapped(size_t n)
{
    pthread_once(&limit_once, limit_init);
    atomic_fetch_add(&in_use, 1);
    atomic_fetch_add(&in_use_bytes, (long long)block_size(n));
    return alloc_block(n);
}

/* A block for n bytes, counted in in_use and in_use_bytes already (undone on
 * failure). */
static void *alloc_block(size_t n)
{
    int cls = class_of(n);
    cache_t *c = cls >= 0 ? cache_get() : NULL;
    if (c != NULL && c->head[cls] != NULL) {
        free_block_t *b = c->head[cls];
        c->head[cls] = b->next;
        c->n[cls]--;
        atomic_fetch_sub(&cached, 1);
        b->next = NULL;
        return b;
    }
    size_t cap = cls >= 0 ? (size_t)1 << (MIN_SHIFT + cls) : n;
    uint8_t *base = cap <= SIZE_MAX - HEADER ? sodium_malloc(cap + HEADER) : NULL;
    if (base == NULL) {
        atomic_fetch_sub(&in_use, 1);
        atomic_fetch_sub(&in_use_bytes, (long long)cap);
        return NULL;
    }
    memcpy(base, &cap, sizeof(cap));
    return base + HEADER;
}

size_t sv_secmem_size(const void *p)
{
    size_t cap;
    memcpy(&cap, (const uint8_t *)p - HEADER, sizeof(cap));
    return cap;
}

void sv_secmem_free(void *p)
{
    if (p == NULL)
        return;
    size_t cap = sv_secmem_size(p);
    sodium_memzero(p, cap);
    atomic_fetch_sub(&in_use, 1);
    atomic_fetch_sub(&in_use_bytes, (long long)cap);
    int cls = class_of(cap);
    cache_t *c = cls >= 0 && cap == ((size_t)1 << (MIN_SHIFT + cls)) ? cache_get() : NULL;
    if (c != NULL && c->n[cls] < CACHE_PER_CLASS) {
        if (atomic_fetch_add(&cached, 1) < max_cached) {
            free_block_t *b = p;
            b->next = c->head[cls];
            c->head[cls] = b;
            c->n[cls]++;
            return;
        }
        atomic_fetch_sub(&cached, 1);
    }
    block_release(p);
}
