/* tests/src/test_kms.c - the KMS interface and the local provider (src/kms.c). */
#include "sv_autoconf.h"

#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/kms.h"
#include "tests/unit.h"

static sv_config_t cfg_for(const char *dir, const char *key_file)
{
    sv_config_t c;
    memset(&c, 0, sizeof(c));
    c.kms_provider = SV_KMS_LOCAL;
    c.data_dir = (char *)dir;
    c.kms_local_key_file = (char *)key_file;
    return c;
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(p, 1, n, f);
    fclose(f);
    chmod(path, mode);
}

static void test_creates_key_file(void)
{
    char *dir = strdup(sv_test_tmpdir("kms"));
    sv_config_t c = cfg_for(dir, NULL);
    sv_kms_t *k;
    char msg[512] = "";
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    char path[600];
    snprintf(path, sizeof(path), "%s/master.key", dir);
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 32);
    CU_ASSERT(strncmp(sv_kms_key_id(k), "local:", 6) == 0);
    CU_ASSERT_STRING_EQUAL(sv_kms_provider_name(k), "local");
    CU_ASSERT_EQUAL(sv_kms_check(k), SV_OK);
    CU_ASSERT(sv_kms_key_created(k));
    CU_ASSERT_STRING_EQUAL(sv_kms_key_file(k), path);
    sv_kms_close(k);
    /* the same file gives the same key (id) */
    char id1[SV_KMS_KEY_ID_MAX];
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    snprintf(id1, sizeof(id1), "%s", sv_kms_key_id(k));
    CU_ASSERT_FALSE(sv_kms_key_created(k));
    CU_ASSERT(sv_kms_has_key(k, id1));
    CU_ASSERT_FALSE(sv_kms_has_key(k, "local:0000000000000000"));
    CU_ASSERT_EQUAL(sv_kms_remove_created_key(k), SV_OK); /* it read the file: left alone */
    CU_ASSERT(stat(path, &st) == 0);
    sv_kms_close(k);
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_STRING_EQUAL(sv_kms_key_id(k), id1);
    sv_kms_close(k);
    /* a key made for a missing file can be taken back */
    CU_ASSERT_FATAL(unlink(path) == 0);
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    CU_ASSERT(sv_kms_key_created(k));
    CU_ASSERT_FALSE(sv_kms_has_key(k, id1));
    CU_ASSERT_EQUAL(sv_kms_remove_created_key(k), SV_OK);
    CU_ASSERT(stat(path, &st) != 0);
    CU_ASSERT_FALSE(sv_kms_key_created(k));
    sv_kms_close(k);
    sv_test_rmdir(dir);
    free(dir);
}

static bool done_called;
static void note_done(sv_kms_op_t *op)
{
    done_called = true;
}

static void test_wrap_unwrap(void)
{
    char *dir = strdup(sv_test_tmpdir("kms"));
    sv_config_t c = cfg_for(dir, NULL);
    sv_kms_t *k;
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    uint64_t before = sv_latency_count(sv_kms_latency(k));
    uint8_t *keys = sodium_malloc(2 * SV_KMS_DATA_KEY_BYTES);
    randombytes_buf(keys, SV_KMS_DATA_KEY_BYTES);

    /* local completes inline: done() has run when wrap returns */
    sv_kms_op_t op = {.key = keys, .context_len = 7, .done = note_done};
    memcpy(op.context, "tenantA", 7);
    done_called = false;
    sv_kms_wrap(k, &op);
    CU_ASSERT_TRUE(done_called);
    CU_ASSERT_EQUAL(op.result, SV_OK);
    CU_ASSERT(op.wrapped_len > SV_KMS_DATA_KEY_BYTES);
    CU_ASSERT_STRING_EQUAL(op.key_id, sv_kms_key_id(k));
    /* the wrapped form does not contain the key */
    CU_ASSERT_PTR_NULL(memmem(op.wrapped, op.wrapped_len, keys, 8));

    sv_kms_op_t un = op;
    un.key = keys + SV_KMS_DATA_KEY_BYTES;
    CU_ASSERT_EQUAL(sv_kms_unwrap_wait(k, &un), SV_OK);
    CU_ASSERT(sodium_memcmp(keys, keys + SV_KMS_DATA_KEY_BYTES, SV_KMS_DATA_KEY_BYTES) == 0);

    /* another context: refused, output wiped */
    uint8_t zero[SV_KMS_DATA_KEY_BYTES] = {0};
    un = op;
    un.key = keys + SV_KMS_DATA_KEY_BYTES;
    memset(un.key, 0xAA, SV_KMS_DATA_KEY_BYTES);
    memcpy(un.context, "tenantB", 7);
    CU_ASSERT_EQUAL(sv_kms_unwrap_wait(k, &un), SV_ECRYPTO);
    CU_ASSERT(memcmp(un.key, zero, sizeof(zero)) == 0);
    /* another key id, a damaged blob, a short blob */
    un = op;
    un.key = keys + SV_KMS_DATA_KEY_BYTES;
    snprintf(un.key_id, sizeof(un.key_id), "local:0000000000000000");
    CU_ASSERT_EQUAL(sv_kms_unwrap_wait(k, &un), SV_ECRYPTO);
    un = op;
    un.key = keys + SV_KMS_DATA_KEY_BYTES;
    un.wrapped[un.wrapped_len - 1] ^= 1;
    CU_ASSERT_EQUAL(sv_kms_unwrap_wait(k, &un), SV_ECRYPTO);
    un = op;
    un.key = keys + SV_KMS_DATA_KEY_BYTES;
    un.wrapped_len -= 1;
    CU_ASSERT_EQUAL(sv_kms_unwrap_wait(k, &un), SV_ECRYPTO);
    /* two wraps of one key differ (random nonce) */
    sv_kms_op_t op2 = op;
    op2.key = keys;
    CU_ASSERT_EQUAL(sv_kms_wrap_wait(k, &op2), SV_OK);
    CU_ASSERT(memcmp(op.wrapped, op2.wrapped, op.wrapped_len) != 0);
    /* every operation was timed */
    CU_ASSERT(sv_latency_count(sv_kms_latency(k)) >= before + 7);

    /* a blob from this key opens after a restart */
    sv_kms_close(k);
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    un = op;
    un.key = keys + SV_KMS_DATA_KEY_BYTES;
    CU_ASSERT_EQUAL(sv_kms_unwrap_wait(k, &un), SV_OK);
    CU_ASSERT(sodium_memcmp(keys, un.key, SV_KMS_DATA_KEY_BYTES) == 0);
    sv_kms_close(k);
    sodium_free(keys);
    sv_test_rmdir(dir);
    free(dir);
}

static void test_refuses_bad_key_files(void)
{
    char *dir = strdup(sv_test_tmpdir("kms"));
    char path[600];
    snprintf(path, sizeof(path), "%s/my.key", dir);
    sv_config_t c = cfg_for(dir, path);
    sv_kms_t *k = NULL;
    char msg[1024];
    static const uint8_t key32[32] = {1, 2, 3};
    static const mode_t loose[] = {0644, 0640, 0604, 0660, 0602};
    for (size_t i = 0; i < SV_ARRAY_LEN(loose); i++) {
        write_file(path, key32, 32, loose[i]);
        msg[0] = 0;
        CU_ASSERT_EQUAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_EPERM);
        CU_ASSERT_PTR_NULL(k);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, path));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "KMS_LOCAL_KEY_FILE"));
    }
    write_file(path, key32, 31, 0600);
    CU_ASSERT_EQUAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "32 bytes"));
    unlink(path);
    CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
    CU_ASSERT_EQUAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_EPERM);
    rmdir(path);
    /* a symlink is not followed */
    char target[640];
    snprintf(target, sizeof(target), "%s/target.key", dir);
    write_file(target, key32, 32, 0600);
    CU_ASSERT_EQUAL(symlink(target, path), 0);
    CU_ASSERT_EQUAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_EPERM);
    unlink(path);
    /* a good file is used as it is */
    write_file(path, key32, 32, 0600);
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL(sv_kms_check(k), SV_OK);
    sv_kms_close(k);
    /* providers of later versions */
    c.kms_provider = SV_KMS_AWS;
    CU_ASSERT_EQUAL(sv_kms_open(&c, &k, msg, sizeof(msg)), SV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "KMS_PROVIDER"));
    CU_ASSERT_EQUAL(sv_kms_check(NULL), SV_ECRYPTO);
    sv_test_rmdir(dir);
    free(dir);
}

void sv_test_suite_kms(void)
{
    SV_SUITE("src/kms", {"creates_key_file", test_creates_key_file}, {"wrap_unwrap", test_wrap_unwrap},
             {"refuses_bad_key_files", test_refuses_bad_key_files});
}
