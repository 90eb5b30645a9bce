/*
 * tz.c - IANA time zones from TZif files (tz.h).
 *
 * The design choice: never use the C library's time zone machinery. It keeps
 * one process-wide zone (the TZ variable), so converting a time in a policy's
 * zone would mean setenv + tzset under a global lock on a worker's hot path.
 * Instead each zone's TZif file (RFC 8536) is read once into an immutable
 * table of transitions plus the POSIX TZ rule of its footer (used after the
 * last transition: "slim" TZif files rely on it for every recent year), and
 * converting a time is a binary search, or a few lines of calendar arithmetic
 * for the footer rule.
 *
 * Loaded zones are kept in a list guarded by a mutex and never freed while
 * the process runs, so a pointer handed out stays valid; callers (compiled
 * policies) resolve the zone once and then use it without any lock. Any
 * thread.
 */
#include "sv_autoconf.h"

#include "src/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define TZIF_MAX_BYTES (1u << 20)

/* A POSIX TZ rule date: Jn, n or Mm.w.d, plus the time of day it takes
 * effect (seconds, local, may be negative or past 24h in TZif v3+). */
typedef struct {
    char kind; /* 'J', 'N' (zero-based day), 'M' */
    int n, m, w, d;
    int32_t time;
} rule_date_t;

typedef struct {
    bool present;
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    rule_date_t start, end;
} posix_rule_t;

struct sv_tz {
    char name[SV_TZ_NAME_MAX];
    size_t n_trans;
    int64_t *trans; /* transition times, ascending */
    uint8_t *trans_type;
    size_t n_types;
    int32_t *type_off; /* utoff of each local time type */
    posix_rule_t footer;
    sv_tz_t *next; /* in the cache */
};

/* ---- calendar ---- */

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t sv_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ---- POSIX TZ rules (the TZif footer) ---- */

static const char *parse_tz_name(const char *p)
{
    if (*p == '<') {
        const char *e = strchr(p, '>');
        return e != NULL && e - p >= 4 ? e + 1 : NULL;
    }
    const char *s = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to max_hours; NULL on error. */
static const char *parse_hms(const char *p, int max_hours, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    int parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != ':')
                break;
            p++;
        }
        if (*p < '0' || *p > '9')
            return NULL;
        int v = 0, digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        parts[i] = v;
    }
    if (parts[0] > max_hours || parts[1] > 59 || parts[2] > 59)
        return NULL;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return p;
}

static const char *parse_int(const char *p, int lo, int hi, int *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    int v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > hi)
            return NULL;
    }
    if (v < lo)
        return NULL;
    *out = v;
    return p;
}

static const char *parse_rule_date(const char *p, rule_date_t *r)
{
    memset(r, 0, sizeof(*r));
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_int(p + 1, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->kind = 'M';
        if ((p = parse_int(p + 1, 1, 12, &r->m)) == NULL || *p++ != '.')
            return NULL;
        if ((p = parse_int(p, 1, 5, &r->w)) == NULL || *p++ != '.')
            return NULL;
        p = parse_int(p, 0, 6, &r->d);
    } else {
        r->kind = 'N';
        p = parse_int(p, 0, 365, &r->n);
    }
    if (p == NULL)
        return NULL;
    r->time = 7200;
    if (*p == '/')
        p = parse_hms(p + 1, 167, &r->time);
    return p;
}

/* Parses a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
static bool parse_posix_rule(const char *s, posix_rule_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = parse_tz_name(s);
    int32_t off;
    if (p == NULL || (p = parse_hms(p, 24, &off)) == NULL)
        return false;
    out->std_off = -off; /* POSIX offsets count west of Greenwich */
    out->present = true;
    if (*p == 0)
        return true;
    if ((p = parse_tz_name(p)) == NULL)
        return false;
    out->has_dst = true;
    out->dst_off = out->std_off + 3600;
    if (*p != 0 && *p != ',') {
        if ((p = parse_hms(p, 24, &off)) == NULL)
            return false;
        out->dst_off = -off;
    }
    if (*p == 0) {
        /* no rule: POSIX leaves it to the implementation; use the US rule as glibc does */
        out->start = (rule_date_t){'M', 0, 3, 2, 0, 7200};
        out->end = (rule_date_t){'M', 0, 11, 1, 0, 7200};
        return true;
    }
    if (*p++ != ',' || (p = parse_rule_date(p, &out->start)) == NULL || *p++ != ',' ||
        (p = parse_rule_date(p, &out->end)) == NULL)
        return false;
    return *p == 0;
}

/* Local seconds (since the epoch, as if the local clock were UTC) at which
 * rule date r takes effect in year y. */
static int64_t rule_local_time(const rule_date_t *r, int64_t y)
{
    int64_t days;
    if (r->kind == 'J') {
        int yday = r->n - 1;
        if (is_leap(y) && r->n >= 60)
            yday++;
        days = sv_days_from_civil(y, 1, 1) + yday;
    } else if (r->kind == 'N') {
        days = sv_days_from_civil(y, 1, 1) + r->n;
    } else {
        int64_t first = sv_days_from_civil(y, (unsigned)r->m, 1);
        int wday_first = (int)(((first + 4) % 7 + 7) % 7);
        int mday = 1 + (r->d - wday_first + 7) % 7 + (r->w - 1) * 7;
        int dim = days_in_month(y, r->m);
        while (mday > dim)
            mday -= 7;
        days = first + mday - 1;
    }
    return days * 86400 + r->time;
}

static int32_t posix_offset(const posix_rule_t *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int y, m, d;
    civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    int64_t start = rule_local_time(&r->start, y) - r->std_off;
    int64_t end = rule_local_time(&r->end, y) - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* ---- TZif ---- */

static uint32_t be32(const uint8_t *p)
{
    return sv_get_be32(p);
}

typedef struct {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts_t;

static bool read_header(const uint8_t *p, size_t len, uint8_t *version, tzif_counts_t *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    *version = p[4];
    c->isutcnt = be32(p + 20);
    c->isstdcnt = be32(p + 24);
    c->leapcnt = be32(p + 28);
    c->timecnt = be32(p + 32);
    c->typecnt = be32(p + 36);
    c->charcnt = be32(p + 40);
    return c->typecnt >= 1 && c->typecnt <= 256 && c->timecnt <= 100000 && c->charcnt <= 10000 && c->leapcnt <= 10000 &&
           (c->isutcnt == 0 || c->isutcnt == c->typecnt) && (c->isstdcnt == 0 || c->isstdcnt == c->typecnt);
}

static size_t block_size(const tzif_counts_t *c, size_t time_size)
{
    return (size_t)c->timecnt * time_size + c->timecnt + (size_t)c->typecnt * 6 + c->charcnt +
           (size_t)c->leapcnt * (time_size + 4) + c->isstdcnt + c->isutcnt;
}

sv_err_t sv_tz_parse(const char *name, const uint8_t *data, size_t len, sv_tz_t **out)
{
    uint8_t version;
    tzif_counts_t c;
    if (!read_header(data, len, &version, &c))
        return SV_ECORRUPT;
    size_t time_size = 4;
    const uint8_t *p = data + 44;
    size_t left = len - 44;
    if (version >= '2') {
        /* skip the 32-bit block and use the 64-bit one */
        size_t skip = block_size(&c, 4);
        if (skip > left)
            return SV_ECORRUPT;
        p += skip;
        left -= skip;
        if (!read_header(p, left, &version, &c))
            return SV_ECORRUPT;
        p += 44;
        left -= 44;
        time_size = 8;
    } else if (version != 0) {
        return SV_ECORRUPT;
    }
    size_t need = block_size(&c, time_size);
    if (need > left)
        return SV_ECORRUPT;

    sv_tz_t *tz = calloc(1, sizeof(*tz));
    if (tz == NULL)
        return SV_ENOMEM;
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    tz->n_trans = c.timecnt;
    tz->n_types = c.typecnt;
    tz->trans = malloc((c.timecnt + 1) * sizeof(int64_t));
    tz->trans_type = malloc(c.timecnt + 1);
    tz->type_off = malloc(c.typecnt * sizeof(int32_t));
    if (tz->trans == NULL || tz->trans_type == NULL || tz->type_off == NULL) {
        sv_tz_free(tz);
        return SV_ENOMEM;
    }
    const uint8_t *tp = p, *ip = p + (size_t)c.timecnt * time_size, *ty = ip + c.timecnt;
    for (uint32_t i = 0; i < c.timecnt; i++) {
        tz->trans[i] = time_size == 8 ? (int64_t)sv_get_be64(tp + i * 8) : (int64_t)(int32_t)be32(tp + i * 4);
        tz->trans_type[i] = ip[i];
        if (ip[i] >= c.typecnt || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            goto corrupt;
    }
    for (uint32_t i = 0; i < c.typecnt; i++) {
        int32_t off = (int32_t)be32(ty + i * 6);
        if (off < -89999 || off > 93599 || ty[i * 6 + 5] >= c.charcnt)
            goto corrupt;
        tz->type_off[i] = off;
    }
    p += need;
    left -= need;
    if (time_size == 8 && left >= 2 && p[0] == '\n') {
        const uint8_t *nl = memchr(p + 1, '\n', left - 1);
        if (nl == NULL)
            goto corrupt;
        size_t fl = (size_t)(nl - p - 1);
        if (fl > 0) {
            char footer[128];
            if (fl >= sizeof(footer))
                goto corrupt;
            memcpy(footer, p + 1, fl);
            footer[fl] = 0;
            if (!parse_posix_rule(footer, &tz->footer))
                goto corrupt;
        }
    }
    *out = tz;
    return SV_OK;
corrupt:
    sv_tz_free(tz);
    return SV_ECORRUPT;
}

void sv_tz_free(sv_tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->trans);
    free(tz->trans_type);
    free(tz->type_off);
    free(tz);
}

const char *sv_tz_name(const sv_tz_t *tz)
{
    return tz != NULL ? tz->name : "UTC";
}

int32_t sv_tz_offset(const sv_tz_t *tz, int64_t t)
{
    if (tz == NULL)
        return 0;
    if (tz->n_trans == 0 || t >= tz->trans[tz->n_trans - 1]) {
        if (tz->footer.present)
            return posix_offset(&tz->footer, t);
        return tz->n_trans == 0 ? tz->type_off[0] : tz->type_off[tz->trans_type[tz->n_trans - 1]];
    }
    if (t < tz->trans[0])
        return tz->type_off[0];
    /* the last transition at or before t */
    size_t lo = 0, hi = tz->n_trans - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return tz->type_off[tz->trans_type[lo]];
}

void sv_tz_local(const sv_tz_t *tz, int64_t t, sv_tz_local_t *out)
{
    int32_t off = sv_tz_offset(tz, t);
    int64_t local = t + off;
    int64_t days = floor_div(local, 86400);
    int64_t secs = local - days * 86400;
    civil_from_days(days, &out->year, &out->month, &out->day);
    out->wday = (int)(((days + 4) % 7 + 7) % 7);
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
    out->utc_offset = off;
}

/* ---- names and the cache ---- */

bool sv_tz_name_valid(const char *s, size_t len)
{
    if (len == 0 || len >= SV_TZ_NAME_MAX)
        return false;
    bool seg_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '/') {
            if (seg_start)
                return false;
            seg_start = true;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '+' ||
              c == '-'))
            return false;
        seg_start = false;
    }
    return !seg_start;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static sv_tz_t *cache;

static sv_err_t load_file(const char *name, sv_tz_t **out)
{
    char path[sizeof(ZONEINFO_DIR) + SV_TZ_NAME_MAX + 1];
    snprintf(path, sizeof(path), "%s/%s", ZONEINFO_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == EISDIR ? SV_ENOTFOUND : SV_EIO;
    sv_err_t err = SV_ENOTFOUND;
    struct stat sb;
    uint8_t *buf = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 44 || sb.st_size > (off_t)TZIF_MAX_BYTES)
        goto close_fd;
    err = SV_ENOMEM;
    if ((buf = malloc((size_t)sb.st_size)) == NULL)
        goto close_fd;
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n <= 0) {
            err = SV_EIO;
            goto free_buf;
        }
        got += (size_t)n;
    }
    err = sv_tz_parse(name, buf, got, out);
free_buf:
    free(buf);
close_fd:
    close(fd);
    return err;
}

sv_err_t sv_tz_get(const char *name, const sv_tz_t **out)
{
    size_t len = strlen(name);
    if (!sv_tz_name_valid(name, len))
        return SV_EINVAL;
    pthread_mutex_lock(&cache_lock);
    sv_err_t err = SV_OK;
    for (sv_tz_t *z = cache; z != NULL; z = z->next) {
        if (strcmp(z->name, name) == 0) {
            *out = z;
            goto unlock;
        }
    }
    sv_tz_t *tz = NULL;
    err = load_file(name, &tz);
    if (err == SV_ENOTFOUND && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
        /* no tzdata installed: UTC needs no file */
        static const uint8_t utc_tzif[] = {'T', 'Z', 'i', 'f', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   0,   0,   0,
                                           0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   0,   0,   0,
                                           0,   0,   0,   1,   0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 'U', 'T', 'C', 0};
        err = sv_tz_parse(name, utc_tzif, sizeof(utc_tzif), &tz);
    }
    if (err == SV_OK) {
        tz->next = cache;
        cache = tz;
        *out = tz;
    }
unlock:
    pthread_mutex_unlock(&cache_lock);
    return err;
}
