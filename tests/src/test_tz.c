/* tests/src/test_tz.c - time zones from TZif files (src/tz.c). */
#include "sv_autoconf.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/tz.h"
#include "tests/unit.h"

static int64_t at(const char *rfc3339)
{
    int64_t t = 0;
    CU_ASSERT_EQUAL(sv_time_parse(rfc3339, strlen(rfc3339), &t), SV_OK);
    return t;
}

static int32_t offset_in(const char *zone, const char *when)
{
    const sv_tz_t *tz = NULL;
    sv_err_t err = sv_tz_get(zone, &tz);
    if (err != SV_OK)
        fprintf(stderr, "\n  zone %s: %s\n", zone, sv_strerror(err));
    CU_ASSERT_EQUAL_FATAL(err, SV_OK);
    return sv_tz_offset(tz, at(when));
}

static void test_names(void)
{
    const char *good[] = {"UTC", "Europe/Berlin", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "EST5EDT"};
    for (size_t i = 0; i < SV_ARRAY_LEN(good); i++)
        CU_ASSERT(sv_tz_name_valid(good[i], strlen(good[i])));
    const char *bad[] = {"", "/etc/passwd", "../etc/passwd", "Europe/", "a//b", "Europe/Berlin ", "zone.tab", "x\\y"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++)
        CU_ASSERT_FALSE(sv_tz_name_valid(bad[i], strlen(bad[i])));
    const sv_tz_t *tz;
    CU_ASSERT_EQUAL(sv_tz_get("Mars/Olympus_Mons", &tz), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(sv_tz_get("../../etc/passwd", &tz), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_tz_get("Europe", &tz), SV_ENOTFOUND); /* a directory */
    const sv_tz_t *a, *b;
    CU_ASSERT_EQUAL(sv_tz_get("Europe/Berlin", &a), SV_OK);
    CU_ASSERT_EQUAL(sv_tz_get("Europe/Berlin", &b), SV_OK);
    CU_ASSERT_PTR_EQUAL(a, b); /* loaded once */
    CU_ASSERT_STRING_EQUAL(sv_tz_name(a), "Europe/Berlin");
    CU_ASSERT_EQUAL(sv_tz_get("UTC", &a), SV_OK);
    CU_ASSERT_EQUAL(sv_tz_offset(a, 1700000000), 0);
}

static void test_known_offsets(void)
{
    /* Berlin: CEST from 2024-03-31 01:00Z to 2024-10-27 01:00Z */
    CU_ASSERT_EQUAL(offset_in("Europe/Berlin", "2024-03-31T00:59:59Z"), 3600);
    CU_ASSERT_EQUAL(offset_in("Europe/Berlin", "2024-03-31T01:00:00Z"), 7200);
    CU_ASSERT_EQUAL(offset_in("Europe/Berlin", "2024-10-27T00:59:59Z"), 7200);
    CU_ASSERT_EQUAL(offset_in("Europe/Berlin", "2024-10-27T01:00:00Z"), 3600);
    /* beyond the file's transitions: the footer rule */
    CU_ASSERT_EQUAL(offset_in("Europe/Berlin", "2100-07-01T12:00:00Z"), 7200);
    CU_ASSERT_EQUAL(offset_in("Europe/Berlin", "2100-01-15T12:00:00Z"), 3600);
    CU_ASSERT_EQUAL(offset_in("America/New_York", "2024-03-10T06:59:59Z"), -18000);
    CU_ASSERT_EQUAL(offset_in("America/New_York", "2024-03-10T07:00:00Z"), -14400);
    /* southern hemisphere: DST across the new year */
    CU_ASSERT_EQUAL(offset_in("Australia/Sydney", "2024-04-06T15:59:59Z"), 39600);
    CU_ASSERT_EQUAL(offset_in("Australia/Sydney", "2024-04-06T16:00:00Z"), 36000);
    CU_ASSERT_EQUAL(offset_in("Australia/Sydney", "2090-01-15T00:00:00Z"), 39600);
    CU_ASSERT_EQUAL(offset_in("Australia/Sydney", "2090-07-15T00:00:00Z"), 36000);
    CU_ASSERT_EQUAL(offset_in("Asia/Kolkata", "2026-01-01T00:00:00Z"), 19800);
    CU_ASSERT_EQUAL(offset_in("Pacific/Chatham", "2026-07-01T00:00:00Z"), 45900);
    /* Dublin's footer has a negative DST ("IST-1GMT0,M10.5.0,M3.5.0/1") */
    CU_ASSERT_EQUAL(offset_in("Europe/Dublin", "2100-07-01T00:00:00Z"), 3600);
    CU_ASSERT_EQUAL(offset_in("Europe/Dublin", "2100-01-15T00:00:00Z"), 0);
    /* Troll: a two-hour DST with explicit offsets */
    CU_ASSERT_EQUAL(offset_in("Antarctica/Troll", "2100-07-01T00:00:00Z"), 7200);
    CU_ASSERT_EQUAL(offset_in("Antarctica/Troll", "2100-01-15T00:00:00Z"), 0);
}

static void test_local_time(void)
{
    const sv_tz_t *tz;
    CU_ASSERT_EQUAL_FATAL(sv_tz_get("Europe/Berlin", &tz), SV_OK);
    sv_tz_local_t lt;
    sv_tz_local(tz, at("2026-11-29T22:30:00Z"), &lt); /* a Sunday */
    CU_ASSERT_EQUAL(lt.year, 2026);
    CU_ASSERT_EQUAL(lt.month, 11);
    CU_ASSERT_EQUAL(lt.day, 29);
    CU_ASSERT_EQUAL(lt.wday, 0);
    CU_ASSERT_EQUAL(lt.hour, 23);
    CU_ASSERT_EQUAL(lt.minute, 30);
    sv_tz_local(tz, at("2026-11-29T23:30:00Z"), &lt); /* past local midnight: Monday */
    CU_ASSERT_EQUAL(lt.day, 30);
    CU_ASSERT_EQUAL(lt.wday, 1);
    CU_ASSERT_EQUAL(lt.hour, 0);
    sv_tz_local(NULL, -1, &lt); /* before the epoch, UTC: 1969-12-31T23:59:59Z */
    CU_ASSERT_EQUAL(lt.year, 1969);
    CU_ASSERT_EQUAL(lt.wday, 3);
    CU_ASSERT_EQUAL(lt.second, 59);
    CU_ASSERT_EQUAL(sv_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(sv_days_from_civil(2000, 3, 1), 11017);
}

/* Compares with glibc's localtime_r over many times in a child process, so
 * that setting TZ cannot disturb any other thread of the test runner. */
static int cross_check(const char *zone)
{
    const sv_tz_t *tz;
    if (sv_tz_get(zone, &tz) != SV_OK)
        return 100;
    pid_t pid = fork();
    if (pid == 0) {
        char env[96];
        snprintf(env, sizeof(env), ":%s", zone);
        setenv("TZ", env, 1);
        tzset();
        int bad = 0;
        uint64_t x = 88172645463325252ull;
        for (int i = 0; i < 20000 && bad < 5; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* 1902 .. 2200, plus points right at the hour */
            time_t t = (time_t)(-2100000000LL + (int64_t)(x % 9400000000ULL));
            if (i % 2)
                t -= t % 3600;
            struct tm tm;
            localtime_r(&t, &tm);
            sv_tz_local_t lt;
            sv_tz_local(tz, t, &lt);
            if (lt.utc_offset != tm.tm_gmtoff || lt.year != tm.tm_year + 1900 || lt.month != tm.tm_mon + 1 ||
                lt.day != tm.tm_mday || lt.wday != tm.tm_wday || lt.hour != tm.tm_hour || lt.minute != tm.tm_min) {
                fprintf(stderr,
                        "\n  %s at %lld: ours %d (%04d-%02d-%02d %02d:%02d), glibc %ld (%04d-%02d-%02d %02d:%02d)\n",
                        zone, (long long)t, lt.utc_offset, lt.year, lt.month, lt.day, lt.hour, lt.minute, tm.tm_gmtoff,
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
                bad++;
            }
        }
        _exit(bad);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void test_matches_glibc(void)
{
    const char *zones[] = {"Europe/Berlin",     "America/New_York",
                           "Australia/Sydney",  "Asia/Kolkata",
                           "Europe/Dublin",     "Pacific/Chatham",
                           "America/St_Johns",  "Asia/Tehran",
                           "America/Sao_Paulo", "Antarctica/Troll",
                           "Pacific/Apia",      "Africa/Casablanca",
                           "America/Santiago",  "UTC",
                           "Etc/GMT-14"};
    for (size_t i = 0; i < SV_ARRAY_LEN(zones); i++)
        CU_ASSERT_EQUAL(cross_check(zones[i]), 0);
}

/* A TZif v2 file with one local time type and no transitions, so that the
 * footer (a POSIX TZ rule) decides everything. */
static size_t footer_only(const char *footer, uint8_t *out)
{
    size_t o = 0;
    for (int block = 0; block < 2; block++) {
        memcpy(out + o, "TZif2", 5);
        memset(out + o + 5, 0, 39);
        out[o + 39] = 1; /* typecnt */
        out[o + 43] = 4; /* charcnt */
        o += 44;
        memset(out + o, 0, 6); /* utoff 0, isdst 0, desigidx 0 */
        o += 6;
        memcpy(out + o, "XXX", 4);
        o += 4;
    }
    out[o++] = '\n';
    memcpy(out + o, footer, strlen(footer));
    o += strlen(footer);
    out[o++] = '\n';
    return o;
}

static int32_t footer_offset(const char *footer, const char *when)
{
    uint8_t buf[256];
    size_t n = footer_only(footer, buf);
    sv_tz_t *tz = NULL;
    sv_err_t err = sv_tz_parse("test", buf, n, &tz);
    if (err != SV_OK)
        fprintf(stderr, "\n  footer %s: %s\n", footer, sv_strerror(err));
    CU_ASSERT_EQUAL_FATAL(err, SV_OK);
    int32_t off = sv_tz_offset(tz, at(when));
    sv_tz_free(tz);
    return off;
}

static void test_footer_rules(void)
{
    /* DST all year: from day 0 00:00 to Dec 31 25:00 */
    CU_ASSERT_EQUAL(footer_offset("EST5EDT,0/0,J365/25", "2030-06-01T00:00:00Z"), -14400);
    CU_ASSERT_EQUAL(footer_offset("EST5EDT,0/0,J365/25", "2030-01-01T00:30:00Z"), -14400);
    /* Jn never counts Feb 29: J60 is March 1 even in a leap year */
    CU_ASSERT_EQUAL(footer_offset("AAA-1BBB,J60,J300", "2024-03-01T00:59:59Z"), 3600);
    CU_ASSERT_EQUAL(footer_offset("AAA-1BBB,J60,J300", "2024-03-01T01:00:00Z"), 7200);
    /* n counts from 0 and includes Feb 29 */
    CU_ASSERT_EQUAL(footer_offset("AAA-1BBB,59,300", "2024-02-29T01:00:00Z"), 7200);
    CU_ASSERT_EQUAL(footer_offset("AAA-1BBB,59,300", "2023-02-28T23:00:00Z"), 3600);
    /* quoted names, explicit DST offset, minutes */
    CU_ASSERT_EQUAL(footer_offset("<+0530>-5:30", "2030-06-01T00:00:00Z"), 19800);
    CU_ASSERT_EQUAL(footer_offset("<-03>3<-02>2,M3.2.0,M11.1.0", "2030-07-01T00:00:00Z"), -7200);
    /* no rule given: the US rule */
    CU_ASSERT_EQUAL(footer_offset("EST5EDT", "2030-07-01T00:00:00Z"), -14400);
    CU_ASSERT_EQUAL(footer_offset("EST5EDT", "2030-12-01T00:00:00Z"), -18000);

    uint8_t buf[256];
    sv_tz_t *tz;
    size_t n = footer_only("CET-1CEST,M3.5.0,M10.5.0/3", buf);
    CU_ASSERT_EQUAL(sv_tz_parse("x", buf, 30, &tz), SV_ECORRUPT); /* truncated */
    buf[0] = 'X';
    CU_ASSERT_EQUAL(sv_tz_parse("x", buf, n, &tz), SV_ECORRUPT); /* bad magic */
    n = footer_only("CET-1CEST,M13.5.0,M10.5.0/3", buf);
    CU_ASSERT_EQUAL(sv_tz_parse("x", buf, n, &tz), SV_ECORRUPT); /* month 13 */
    n = footer_only("C", buf);
    CU_ASSERT_EQUAL(sv_tz_parse("x", buf, n, &tz), SV_ECORRUPT); /* name too short */
}

void sv_test_suite_tz(void)
{
    SV_SUITE("src/tz", {"names", test_names}, {"known_offsets", test_known_offsets}, {"local_time", test_local_time},
             {"matches_glibc", test_matches_glibc}, {"footer_rules", test_footer_rules});
}
