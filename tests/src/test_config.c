/* tests/src/test_config.c - configuration parsing (src/config.c). */
#include "sv_autoconf.h"

#include <stdlib.h>

#include "src/config.h"
#include "tests/unit.h"

static const char *const vars[] = {"SCAIVAULT_LISTEN", "SCAIVAULT_THREADS", "SCAIVAULT_MAP_SIZE", "RATE_LIMIT_READ",
                                   "TRUSTED_PROXIES", "AUDIT_DURABILITY", "BOOTSTRAP_TOKEN", "LOG_LEVEL",
                                   "SCAIKEY_ISSUER", "MAX_SECRET_BYTES", "SCAIVAULT_DATA_DIR"};

static void clear_env(void)
{
    for (size_t i = 0; i < SV_ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
}

static void test_defaults(void)
{
    clear_env();
    sv_config_t c;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sv_config_load(&c, NULL, false, err, sizeof(err)), SV_OK);
    CU_ASSERT_EQUAL(c.n_listen, 1);
    CU_ASSERT_STRING_EQUAL(c.listen[0].host, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(c.listen[0].port, "8200");
    CU_ASSERT_STRING_EQUAL(c.data_dir, "./data");
    CU_ASSERT_EQUAL(c.map_size, (size_t)1 << 30);
    CU_ASSERT_EQUAL(c.rate[SV_RL_READ].limit, 6000);
    CU_ASSERT_EQUAL(c.rate[SV_RL_READ].window_s, 60);
    CU_ASSERT_EQUAL(c.rate[SV_RL_ADMIN].limit, 300);
    CU_ASSERT_EQUAL(c.max_secret_bytes, 524288);
    CU_ASSERT_EQUAL(c.db_pool_size, 126);
    CU_ASSERT_EQUAL(c.audit_durability, SV_AUDIT_SYNC);
    CU_ASSERT_FALSE(c.has_bootstrap_token);
    sv_config_free(&c);
    /* the default pool makes room for every thread on a machine with many
     * cores; one that is set is checked against the threads */
    setenv("SCAIVAULT_THREADS", "200", 1);
    CU_ASSERT_EQUAL_FATAL(sv_config_load(&c, NULL, false, err, sizeof(err)), SV_OK);
    CU_ASSERT_EQUAL(c.db_pool_size, 204);
    sv_config_free(&c);
    setenv("DB_POOL_SIZE", "150", 1);
    CU_ASSERT_EQUAL(sv_config_load(&c, NULL, false, err, sizeof(err)), SV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "DB_POOL_SIZE"));
    sv_config_free(&c);
    unsetenv("DB_POOL_SIZE");
    unsetenv("SCAIVAULT_THREADS");
}

static void expect_error(const char *var, const char *value)
{
    clear_env();
    setenv(var, value, 1);
    sv_config_t c;
    char err[512] = "";
    CU_ASSERT_EQUAL(sv_config_load(&c, NULL, false, err, sizeof(err)), SV_EINVAL);
    if (strncmp(err, var, strlen(var)) != 0)
        fprintf(stderr, "\n  %s=%s gave: %s\n", var, value, err);
    CU_ASSERT(strncmp(err, var, strlen(var)) == 0);
    sv_config_free(&c);
    unsetenv(var);
}

static void test_bad_values_name_the_variable(void)
{
    expect_error("SCAIVAULT_THREADS", "zero");
    expect_error("SCAIVAULT_THREADS", "0");
    expect_error("SCAIVAULT_THREADS", "9999");
    expect_error("SCAIVAULT_LISTEN", "localhost");
    expect_error("SCAIVAULT_LISTEN", "127.0.0.1:99999");
    expect_error("SCAIVAULT_MAP_SIZE", "1 GiB");
    expect_error("RATE_LIMIT_READ", "fast");
    expect_error("RATE_LIMIT_READ", "10/fortnight");
    expect_error("TRUSTED_PROXIES", "10.0.0.1/8");
    expect_error("AUDIT_DURABILITY", "maybe");
    expect_error("BOOTSTRAP_TOKEN", "short");
    expect_error("LOG_LEVEL", "loud");
    expect_error("SCAIKEY_ISSUER", "ftp://x");
    expect_error("MAX_SECRET_BYTES", "10");
}

static void test_env_values(void)
{
    clear_env();
    setenv("SCAIVAULT_LISTEN", "127.0.0.1:0, [::1]:8300", 1);
    setenv("SCAIVAULT_THREADS", "3", 1);
    setenv("SCAIVAULT_MAP_SIZE", "64MiB", 1);
    setenv("RATE_LIMIT_READ", "10/s", 1);
    setenv("TRUSTED_PROXIES", "10.0.0.0/8,2001:db8::/32", 1);
    setenv("BOOTSTRAP_TOKEN", "0123456789abcdef-token", 1);
    sv_config_t c;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sv_config_load(&c, NULL, false, err, sizeof(err)), SV_OK);
    CU_ASSERT_EQUAL(c.n_listen, 2);
    CU_ASSERT_STRING_EQUAL(c.listen[1].host, "::1");
    CU_ASSERT_STRING_EQUAL(c.listen[1].port, "8300");
    CU_ASSERT_EQUAL(c.threads, 3);
    CU_ASSERT_EQUAL(c.map_size, (size_t)64 << 20);
    CU_ASSERT_EQUAL(c.rate[SV_RL_READ].limit, 10);
    CU_ASSERT_EQUAL(c.rate[SV_RL_READ].window_s, 1);
    CU_ASSERT_EQUAL(c.n_trusted_proxies, 2);
    CU_ASSERT(c.has_bootstrap_token);
    /* the token text is wiped from the environment once hashed */
    const char *t = getenv("BOOTSTRAP_TOKEN");
    CU_ASSERT(t == NULL || strstr(t, "0123456789abcdef") == NULL);
    sv_config_free(&c);
    clear_env();
}

static void test_config_file(void)
{
    clear_env();
    const char *dir = sv_test_tmpdir("config");
    char path[600];
    snprintf(path, sizeof(path), "%s/scaivault.env", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# a comment\nSCAIVAULT_THREADS=5\nexport AUDIT_DURABILITY=\"async\"\n\nLOG_LEVEL='warn'\n");
    fclose(f);
    sv_config_t c;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(sv_config_load(&c, path, false, err, sizeof(err)), SV_OK);
    CU_ASSERT_EQUAL(c.threads, 5);
    CU_ASSERT_EQUAL(c.audit_durability, SV_AUDIT_ASYNC);
    CU_ASSERT_EQUAL(c.log_level, SV_LOG_WARN);
    sv_config_free(&c);
    /* the environment wins over the file */
    setenv("SCAIVAULT_THREADS", "2", 1);
    CU_ASSERT_EQUAL_FATAL(sv_config_load(&c, path, false, err, sizeof(err)), SV_OK);
    CU_ASSERT_EQUAL(c.threads, 2);
    sv_config_free(&c);
    unsetenv("SCAIVAULT_THREADS");
    /* an unknown key is an error naming it */
    f = fopen(path, "w");
    fprintf(f, "SCAIVAULT_THREAD=5\n");
    fclose(f);
    CU_ASSERT_EQUAL(sv_config_load(&c, path, false, err, sizeof(err)), SV_EINVAL);
    CU_ASSERT(strncmp(err, "SCAIVAULT_THREAD:", 17) == 0);
    sv_config_free(&c);
    sv_test_rmdir(dir);
}

static void test_sizes_and_rates(void)
{
    size_t n;
    CU_ASSERT(sv_size_parse("1GiB", 4, &n) == SV_OK && n == (size_t)1 << 30);
    CU_ASSERT(sv_size_parse("512MiB", 6, &n) == SV_OK && n == (size_t)512 << 20);
    CU_ASSERT(sv_size_parse("1048576", 7, &n) == SV_OK && n == 1048576);
    CU_ASSERT(sv_size_parse("2GB", 3, &n) == SV_OK && n == 2000000000);
    CU_ASSERT(sv_size_parse("2TiB", 4, &n) == SV_OK && n == (size_t)2 << 40); /* the units configuration.md lists */
    CU_ASSERT(sv_size_parse("64M", 3, &n) == SV_OK && n == (size_t)64 << 20);
    CU_ASSERT(sv_size_parse("100B", 4, &n) == SV_OK && n == 100);
    CU_ASSERT_EQUAL(sv_size_parse("1TB", 3, &n), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_size_parse("GiB", 3, &n), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_size_parse("1PiB", 4, &n), SV_EINVAL);
    sv_rate_t r;
    CU_ASSERT(sv_rate_parse("6000/min", 8, &r) == SV_OK && r.limit == 6000 && r.window_s == 60);
    CU_ASSERT(sv_rate_parse("5000/hour", 9, &r) == SV_OK && r.window_s == 3600);
    CU_ASSERT(sv_rate_parse("50/10s", 6, &r) == SV_OK && r.limit == 50 && r.window_s == 10);
    CU_ASSERT_EQUAL(sv_rate_parse("0/min", 5, &r), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_rate_parse("/min", 4, &r), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_rate_parse("10", 2, &r), SV_EINVAL);
    /* N up to 10^9, exactly */
    CU_ASSERT(sv_rate_parse("1000000000/s", 12, &r) == SV_OK && r.limit == 1000000000u);
    CU_ASSERT_EQUAL(sv_rate_parse("1000000001/s", 12, &r), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_rate_parse("1000000009/s", 12, &r), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_rate_parse("99999999999999999999999/s", 25, &r), SV_EINVAL);
    CU_ASSERT(sv_rate_parse("0000000000000000000005/s", 24, &r) == SV_OK && r.limit == 5);
}

void sv_test_suite_config(void)
{
    SV_SUITE("src/config", {"defaults", test_defaults},
             {"bad_values_name_the_variable", test_bad_values_name_the_variable}, {"env_values", test_env_values},
             {"config_file", test_config_file}, {"sizes_and_rates", test_sizes_and_rates});
}
