/*
 * tz.h - IANA time zones without touching the process's TZ: local time for
 * the `time_window` policy condition.
 *
 * Zones are read from the TZif files of the system's tz database
 * (/usr/share/zoneinfo, Debian package tzdata) and converted here, so any
 * thread may ask for the local time in any zone at once (localtime_r would
 * need setenv("TZ") and tzset, which are process-wide and not thread-safe).
 * "UTC" and "Etc/UTC" work even without tzdata.
 */
#ifndef SV_TZ_H
#define SV_TZ_H

#include "src/sv.h"

#define SV_TZ_NAME_MAX 64

typedef struct sv_tz sv_tz_t;

/** Whether s looks like an IANA zone name: 1..63 bytes of [A-Za-z0-9_+-]
 * segments separated by '/' ("Europe/Berlin", "Etc/GMT+5", "UTC"). Says
 * nothing about whether the zone exists. */
bool sv_tz_name_valid(const char *s, size_t len);

/** The zone called name, loaded once and kept for the life of the process
 * (the returned pointer never dangles). Any thread; a load takes a mutex and
 * reads one file, later calls only the mutex. Errors: SV_EINVAL (not a zone
 * name), SV_ENOTFOUND (no such zone), SV_ECORRUPT (not a TZif file),
 * SV_ENOMEM. */
sv_err_t sv_tz_get(const char *name, const sv_tz_t **out);

/** Parses TZif data (RFC 8536, versions 1 to 4) into a new zone that the
 * caller frees with sv_tz_free (tests; sv_tz_get uses it). Errors:
 * SV_ECORRUPT, SV_ENOMEM. */
sv_err_t sv_tz_parse(const char *name, const uint8_t *data, size_t len, sv_tz_t **out);
void sv_tz_free(sv_tz_t *tz);

/** The zone's name. */
const char *sv_tz_name(const sv_tz_t *tz);

/** The offset from UTC, in seconds east, in force at t (seconds since the
 * epoch). Uses the file's transitions, and its POSIX TZ footer for times
 * after the last one. */
int32_t sv_tz_offset(const sv_tz_t *tz, int64_t t);

/** A local date and time. */
typedef struct {
    int year, month, day; /* month 1..12 */
    int wday;             /* 0 = Sunday .. 6 = Saturday */
    int hour, minute, second;
    int32_t utc_offset; /* seconds east of UTC */
} sv_tz_local_t;

/** The local time at t in tz (tz NULL: UTC). */
void sv_tz_local(const sv_tz_t *tz, int64_t t, sv_tz_local_t *out);

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t sv_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
