/* tests/src/test_seal.c - XChaCha20-Poly1305 sealing with bound associated
 * data (src/seal.c). */
#include "sv_autoconf.h"

#include "src/seal.h"
#include "tests/unit.h"

static void test_roundtrip(void)
{
    uint8_t key[SV_SEAL_KEY_BYTES], aad[SV_SEAL_AAD_MAX];
    randombytes_buf(key, sizeof(key));
    size_t al = sv_seal_aad_version(aad, "tnt", 3, "app/db", 6, 7, 1);
    CU_ASSERT(al > 0);
    const char pt[] = "\"value\":\"hunter2\",\"metadata\":{}";
    uint8_t sealed[sizeof(pt) + SV_SEAL_OVERHEAD], sealed2[sizeof(pt) + SV_SEAL_OVERHEAD];
    sv_seal(sealed, (const uint8_t *)pt, sizeof(pt), aad, al, key);
    sv_seal(sealed2, (const uint8_t *)pt, sizeof(pt), aad, al, key);
    CU_ASSERT(memcmp(sealed, sealed2, sizeof(sealed)) != 0); /* random nonce */
    CU_ASSERT_PTR_NULL(memmem(sealed, sizeof(sealed), "hunter2", 7));
    uint8_t *out = sodium_malloc(sizeof(pt));
    size_t n;
    CU_ASSERT_EQUAL(sv_seal_open(out, &n, sealed, sizeof(sealed), aad, al, key), SV_OK);
    CU_ASSERT_EQUAL(n, sizeof(pt));
    CU_ASSERT(memcmp(out, pt, n) == 0);
    /* empty plaintext */
    uint8_t s0[SV_SEAL_OVERHEAD];
    sv_seal(s0, (const uint8_t *)"", 0, aad, al, key);
    CU_ASSERT_EQUAL(sv_seal_open(out, &n, s0, sizeof(s0), aad, al, key), SV_OK);
    CU_ASSERT_EQUAL(n, 0);
    sodium_free(out);
}

/* Anything else than the exact key, associated data and bytes fails, and the
 * output is wiped. */
static void test_failures_wipe(void)
{
    uint8_t key[SV_SEAL_KEY_BYTES], other[SV_SEAL_KEY_BYTES], aad[SV_SEAL_AAD_MAX], aad2[SV_SEAL_AAD_MAX];
    randombytes_buf(key, sizeof(key));
    randombytes_buf(other, sizeof(other));
    size_t al = sv_seal_aad_version(aad, "tnt", 3, "app/db", 6, 7, 1);
    const char pt[] = "topsecret-value";
    uint8_t sealed[sizeof(pt) + SV_SEAL_OVERHEAD];
    sv_seal(sealed, (const uint8_t *)pt, sizeof(pt), aad, al, key);
    uint8_t out[sizeof(pt)], zero[sizeof(pt)] = {0};
    size_t n = 99;
#define FAILS(s, l, a, al_, k)                                                                                         \
    do {                                                                                                               \
        memset(out, 0xAA, sizeof(out));                                                                                \
        CU_ASSERT_EQUAL(sv_seal_open(out, &n, (s), (l), (a), (al_), (k)), SV_ECRYPTO);                                 \
        CU_ASSERT(memcmp(out, zero, sizeof(out)) == 0);                                                                \
        CU_ASSERT_EQUAL(n, 0);                                                                                         \
    } while (0)
    FAILS(sealed, sizeof(sealed), aad, al, other);
    size_t al2 = sv_seal_aad_version(aad2, "tnt", 3, "app/dc", 6, 7, 1);
    FAILS(sealed, sizeof(sealed), aad2, al2, key);
    al2 = sv_seal_aad_version(aad2, "tnt", 3, "app/db", 6, 8, 1);
    FAILS(sealed, sizeof(sealed), aad2, al2, key);
    al2 = sv_seal_aad_version(aad2, "tnt", 3, "app/db", 6, 7, 2);
    FAILS(sealed, sizeof(sealed), aad2, al2, key);
    al2 = sv_seal_aad_version(aad2, "tnu", 3, "app/db", 6, 7, 1);
    FAILS(sealed, sizeof(sealed), aad2, al2, key);
    sealed[SV_SEAL_NONCE_BYTES + 2] ^= 0x40;
    FAILS(sealed, sizeof(sealed), aad, al, key);
    sealed[SV_SEAL_NONCE_BYTES + 2] ^= 0x40;
    sealed[0] ^= 1; /* the nonce */
    FAILS(sealed, sizeof(sealed), aad, al, key);
    sealed[0] ^= 1;
    uint8_t small[4];
    CU_ASSERT_EQUAL(sv_seal_open(small, &n, sealed, SV_SEAL_OVERHEAD - 1, aad, al, key), SV_ECRYPTO);
    /* and the original still opens */
    CU_ASSERT_EQUAL(sv_seal_open(out, &n, sealed, sizeof(sealed), aad, al, key), SV_OK);
#undef FAILS
}

/* Length prefixes keep fields apart: ("ab", "c") is not ("a", "bc"). */
static void test_aad_fields_do_not_run_together(void)
{
    uint8_t a[SV_SEAL_AAD_MAX], b[SV_SEAL_AAD_MAX];
    size_t la = sv_seal_aad_version(a, "ab", 2, "c", 1, 1, 1);
    size_t lb = sv_seal_aad_version(b, "a", 1, "bc", 2, 1, 1);
    CU_ASSERT(la != lb || memcmp(a, b, la) != 0);
    la = sv_seal_aad_version(a, "t", 1, "p", 1, 1, 2);
    lb = sv_seal_aad_version(b, "t", 1, "p", 1, 2, 1);
    CU_ASSERT(la != lb || memcmp(a, b, la) != 0);
    /* a cursor's associated data never equals a version's */
    la = sv_seal_aad_cursor(a, "list", "t", 1, "p", 1);
    lb = sv_seal_aad_version(b, "t", 1, "p", 1, 1, 1);
    CU_ASSERT(la != lb || memcmp(a, b, la) != 0);
    la = sv_seal_aad_cursor(a, "list", "t", 1, "p", 1);
    lb = sv_seal_aad_cursor(b, "versions", "t", 1, "p", 1);
    CU_ASSERT(la != lb || memcmp(a, b, la) != 0);
    /* too long a path does not fit */
    char longp[700];
    memset(longp, 'x', sizeof(longp));
    CU_ASSERT_EQUAL(sv_seal_aad_version(a, "t", 1, longp, sizeof(longp), 1, 1), 0);
}

void sv_test_suite_seal(void)
{
    SV_SUITE("src/seal", {"roundtrip", test_roundtrip}, {"failures_wipe", test_failures_wipe},
             {"aad_fields_do_not_run_together", test_aad_fields_do_not_run_together});
}
