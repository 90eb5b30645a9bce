/*
 * sv.c - the shared basics of sv.h: error texts, clocks, RFC 3339 times and
 * durations. Pure functions; any thread may call them.
 */
#include "sv_autoconf.h"

#include "src/sv.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *sv_strerror(sv_err_t err)
{
    switch (err) {
    case SV_OK: return "success";
    case SV_ENOMEM: return "out of memory";
    case SV_EINVAL: return "invalid argument";
    case SV_ENOTFOUND: return "not found";
    case SV_EEXIST: return "already exists";
    case SV_ECONFLICT: return "version conflict";
    case SV_EIO: return "storage I/O error";
    case SV_ENOSPC: return "no space left on storage device";
    case SV_EMAPFULL: return "storage map full";
    case SV_ECORRUPT: return "corrupt record";
    case SV_ETOOBIG: return "value too large";
    case SV_EPERM: return "not permitted";
    case SV_ESHUTDOWN: return "server shutting down";
    case SV_EAGAIN: return "temporarily unavailable";
    case SV_ETIMEDOUT: return "timed out";
    case SV_ECRYPTO: return "cryptographic failure";
    case SV_ESCHEMA: return "schema version mismatch";
    case SV_EDELETED: return "deleted";
    case SV_EDESTROYED: return "destroyed";
    case SV_EAUDIT: return "audit log unavailable";
    case SV_EUPSTREAM: return "upstream error";
    case SV_EINTERNAL: return "internal error";
    case SV_EGONE: return "the tenant is being deleted";
    }
    return "unknown error";
}

int64_t sv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sv_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec;
}

uint64_t sv_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sv_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

int sv_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (ms % 1000) * 1000000u;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return pthread_cond_timedwait(c, m, &ts);
}

size_t sv_time_format(char out[21], int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    return strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

sv_err_t sv_time_parse(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h, mi, se;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return SV_EINVAL;
    if (!parse_digits(s, 4, &y) || !parse_digits(s + 5, 2, &mo) || !parse_digits(s + 8, 2, &d) ||
        !parse_digits(s + 11, 2, &h) || !parse_digits(s + 14, 2, &mi) || !parse_digits(s + 17, 2, &se))
        return SV_EINVAL;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return SV_EINVAL;
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        /* UTC */
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && memcmp(s + i + 1, "00:00", 5) == 0) {
        /* +00:00 */
    } else {
        return SV_EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60 || y < 1970)
        return SV_EINVAL;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap)) /* 2026-02-30 is no day */
        return SV_EINVAL;
    /* days from civil (Howard Hinnant's algorithm) */
    int yy = y - (mo <= 2);
    int era = yy / 400;
    unsigned yoe = (unsigned)(yy - era * 400);
    unsigned doy = (unsigned)((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    *out = days * 86400 + h * 3600 + mi * 60 + se;
    return SV_OK;
}

sv_err_t sv_duration_parse(const char *s, size_t len, int64_t *out_ms)
{
    if (len == 0 || len > 20)
        return SV_EINVAL;
    int64_t v = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (v > (INT64_MAX / 1000 - 9) / 10)
            return SV_EINVAL;
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0)
        return SV_EINVAL;
    int64_t mult;
    size_t rest = len - i;
    if (rest == 0)
        mult = 1000;
    else if (rest == 2 && s[i] == 'm' && s[i + 1] == 's')
        mult = 1;
    else if (rest == 1 && s[i] == 's')
        mult = 1000;
    else if (rest == 1 && s[i] == 'm')
        mult = 60000;
    else if (rest == 1 && s[i] == 'h')
        mult = 3600000;
    else if (rest == 1 && s[i] == 'd')
        mult = 86400000;
    else
        return SV_EINVAL;
    if (v > SV_DURATION_MAX_MS / mult)
        return SV_EINVAL;
    *out_ms = v * mult;
    return SV_OK;
}
