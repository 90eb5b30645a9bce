/* tests/src/test_secmem.c - recycled sodium_malloc blocks (src/secmem.c). */
#include "sv_autoconf.h"

#include <pthread.h>

#include "src/secmem.h"
#include "tests/unit.h"

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static void test_sizes_and_reuse(void)
{
    static const size_t sizes[] = {1, 255, 256, 257, 1000, 4096, 65536};
    for (size_t i = 0; i < SV_ARRAY_LEN(sizes); i++) {
        uint8_t *p = sv_secmem_alloc(sizes[i]);
        CU_ASSERT_FATAL(p != NULL);
        CU_ASSERT(sv_secmem_size(p) >= sizes[i]);
        memset(p, 0x5A, sizes[i]);
        sv_secmem_free(p);
        /* the same class comes back, wiped */
        uint8_t *q = sv_secmem_alloc(sizes[i]);
        CU_ASSERT_PTR_EQUAL(q, p);
        CU_ASSERT(all_zero(q, sv_secmem_size(q)));
        sv_secmem_free(q);
    }
    /* beyond the largest class: exact size, not kept */
    uint8_t *big = sv_secmem_alloc(200000);
    CU_ASSERT_FATAL(big != NULL);
    CU_ASSERT_EQUAL(sv_secmem_size(big), 200000);
    memset(big, 1, 200000);
    sv_secmem_free(big);
    sv_secmem_free(NULL);
}

static void test_cache_is_bounded(void)
{
    enum { N = 40 };
    void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = sv_secmem_alloc(512);
    for (int i = 0; i < N; i++)
        sv_secmem_free(p[i]);
    /* 32 come back from the cache (the last freed first), then new ones */
    void *q[N];
    int reused = 0;
    for (int i = 0; i < N; i++) {
        q[i] = sv_secmem_alloc(512);
        for (int j = 0; j < N; j++)
            reused += q[i] == p[j];
    }
    CU_ASSERT(reused >= 32);
    for (int i = 0; i < N; i++)
        sv_secmem_free(q[i]);
}

static void *free_elsewhere(void *arg)
{
    sv_secmem_free(arg); /* joins this thread's cache, released at its exit */
    void *mine = sv_secmem_alloc(300);
    CU_ASSERT_PTR_EQUAL(mine, arg);
    sv_secmem_free(mine);
    return NULL;
}

static void test_other_threads(void)
{
    void *p = sv_secmem_alloc(300);
    memset(p, 7, 300);
    pthread_t t;
    pthread_create(&t, NULL, free_elsewhere, p);
    pthread_join(t, NULL);
}

/* ---- the cap on blocks in use ---- */

enum { FILLERS = 24, PER_FILLER = 512 };

typedef struct {
    pthread_barrier_t *filled, *checked;
} filler_t;

/* Takes PER_FILLER blocks of one class (as many as the cap allows), frees
 * them into its own cache, and stays alive until the main thread has
 * checked: a flood that fills every worker's cache. */
static void *fill_cache(void *arg)
{
    filler_t *f = arg;
    void *p[PER_FILLER];
    for (int i = 0; i < PER_FILLER; i++)
        p[i] = sv_secmem_alloc(1000);
    for (int i = 0; i < PER_FILLER; i++)
        sv_secmem_free(p[i]);
    pthread_barrier_wait(f->filled);
    pthread_barrier_wait(f->checked);
    return NULL;
}

/* Idle cached blocks do not count against the cap on blocks in use: after a
 * flood that filled the caches of many threads, other sizes and other
 * threads still get memory. */
static void test_cap_ignores_idle_caches(void)
{
    pthread_barrier_t filled, checked;
    pthread_barrier_init(&filled, NULL, FILLERS + 1);
    pthread_barrier_init(&checked, NULL, FILLERS + 1);
    filler_t f = {&filled, &checked};
    pthread_t t[FILLERS];
    for (int i = 0; i < FILLERS; i++)
        pthread_create(&t[i], NULL, fill_cache, &f);
    pthread_barrier_wait(&filled);
    void *a = sv_secmem_alloc(4000), *b = sv_secmem_alloc(100);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    sv_secmem_free(a);
    sv_secmem_free(b);
    pthread_barrier_wait(&checked);
    for (int i = 0; i < FILLERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&filled);
    pthread_barrier_destroy(&checked);
}

/* The bytes in use are counted by block and capped: a request past the cap
 * is refused before any memory is taken, and smaller ones still succeed. */
static void test_bytes_capped(void)
{
    long long base = sv_secmem_in_use_bytes();
    void *big = sv_secmem_alloc(100000); /* past the size classes: exactly this size */
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(sv_secmem_in_use_bytes(), base + 100000);
    void *small = sv_secmem_alloc(300); /* a 512-byte class block */
    CU_ASSERT_EQUAL(sv_secmem_in_use_bytes(), base + 100000 + 512);
    long long max = sv_secmem_max_bytes();
    CU_ASSERT(max >= (256LL << 20));
    CU_ASSERT_PTR_NULL(sv_secmem_alloc((size_t)(max - sv_secmem_in_use_bytes() + 1)));
    CU_ASSERT_EQUAL(sv_secmem_in_use_bytes(), base + 100000 + 512);
    sv_secmem_free(big);
    sv_secmem_free(small);
    CU_ASSERT_EQUAL(sv_secmem_in_use_bytes(), base);
    void *again = sv_secmem_alloc(4000);
    CU_ASSERT_PTR_NOT_NULL(again);
    sv_secmem_free(again);
}

void sv_test_suite_secmem(void)
{
    SV_SUITE("src/secmem", {"sizes_and_reuse", test_sizes_and_reuse}, {"cache_is_bounded", test_cache_is_bounded},
             {"other_threads", test_other_threads}, {"cap_ignores_idle_caches", test_cap_ignores_idle_caches},
             {"bytes_capped", test_bytes_capped});
}
