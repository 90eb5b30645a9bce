/* tests/src/test_sv.c - times and durations (src/sv.c). */
#include "sv_autoconf.h"

#include "tests/unit.h"

static void test_duration(void)
{
    int64_t ms;
    CU_ASSERT_EQUAL(sv_duration_parse("30d", 3, &ms), SV_OK);
    CU_ASSERT_EQUAL(ms, 30LL * 86400 * 1000);
    CU_ASSERT_EQUAL(sv_duration_parse("12h", 3, &ms), SV_OK);
    CU_ASSERT_EQUAL(ms, 12LL * 3600 * 1000);
    CU_ASSERT_EQUAL(sv_duration_parse("15m", 3, &ms), SV_OK);
    CU_ASSERT_EQUAL(ms, 15LL * 60 * 1000);
    CU_ASSERT_EQUAL(sv_duration_parse("45s", 3, &ms), SV_OK);
    CU_ASSERT_EQUAL(ms, 45000);
    CU_ASSERT_EQUAL(sv_duration_parse("250ms", 5, &ms), SV_OK);
    CU_ASSERT_EQUAL(ms, 250);
    CU_ASSERT_EQUAL(sv_duration_parse("90", 2, &ms), SV_OK);
    CU_ASSERT_EQUAL(ms, 90000);
    CU_ASSERT_EQUAL(sv_duration_parse("36500d", 6, &ms), SV_OK); /* the longest */
    CU_ASSERT_EQUAL(ms, SV_DURATION_MAX_MS);
    const char *bad[] = {"", "d", "-5s", "5x", "5 s", "1.5h", "99999999999999999999d", "5mm", "s5", "36501d",
                         "999999999d", "3153600001", "876001h"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++)
        CU_ASSERT_EQUAL(sv_duration_parse(bad[i], strlen(bad[i]), &ms), SV_EINVAL);
}

static void test_time_roundtrip(void)
{
    char buf[21];
    CU_ASSERT_EQUAL(sv_time_format(buf, 0), 20);
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00Z");
    sv_time_format(buf, 1795946400); /* 2026-11-29T10:00:00Z */
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-29T10:00:00Z");
    int64_t t;
    CU_ASSERT_EQUAL(sv_time_parse(buf, strlen(buf), &t), SV_OK);
    CU_ASSERT_EQUAL(t, 1795946400);
    CU_ASSERT_EQUAL(sv_time_parse("2026-11-29T10:00:00.123Z", 24, &t), SV_OK);
    CU_ASSERT_EQUAL(t, 1795946400);
    CU_ASSERT_EQUAL(sv_time_parse("2026-11-29T10:00:00+00:00", 25, &t), SV_OK);
    CU_ASSERT_EQUAL(t, 1795946400);
    CU_ASSERT_EQUAL(sv_time_parse("2024-02-29T00:00:00Z", 20, &t), SV_OK);
    CU_ASSERT_EQUAL(t, 1709164800);
    CU_ASSERT_EQUAL(sv_time_parse("2000-02-29T00:00:00Z", 20, &t), SV_OK); /* divisible by 400: a leap year */
    CU_ASSERT_EQUAL(sv_time_parse("2026-12-31T23:59:59Z", 20, &t), SV_OK);
}

static void test_time_rejects(void)
{
    int64_t t;
    const char *bad[] = {"2026-11-29", "2026-11-29T10:00:00", "2026-13-01T00:00:00Z", "2026-11-29T24:00:00Z",
                         "2026-11-29T10:00:00+02:00", "2026-11-29 10:00:00Z", "abcd-11-29T10:00:00Z",
                         "2026-11-29T10:00:00.Z", "2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z",
                         "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-32T00:00:00Z"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++)
        CU_ASSERT_EQUAL(sv_time_parse(bad[i], strlen(bad[i]), &t), SV_EINVAL);
}

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(sv_strerror(SV_OK), "success");
    CU_ASSERT_STRING_EQUAL(sv_strerror(SV_ENOSPC), "no space left on storage device");
    CU_ASSERT_STRING_EQUAL(sv_strerror((sv_err_t)-999), "unknown error");
}

void sv_test_suite_sv(void)
{
    SV_SUITE("src/sv", {"duration", test_duration}, {"time_roundtrip", test_time_roundtrip},
             {"time_rejects", test_time_rejects}, {"strerror", test_strerror});
}
