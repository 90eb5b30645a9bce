/*
 * pattern.h - secret paths and the path patterns of policy rules.
 *
 * A secret path (API.md): 1..512 bytes, segments separated by '/', each
 * segment [A-Za-z0-9._-]+, no empty segment, no "." or ".." segment.
 *
 * A pattern has the same shape, and its segments may hold wildcards:
 *   `*`      inside a segment matches any run of characters of that one
 *            segment (zero or more), so `*` alone is exactly one segment and
 *            `db-*` is any segment that starts with "db-";
 *   `**`     a whole segment that matches any number of segments, zero
 *            included: "app" then a `**` segment matches `app`, `app/x`,
 *            `app/x/y`; a `**` segment between "a" and "b" matches `a/b`,
 *            `a/x/b`, `a/x/y/b`; `**` alone matches every path.
 * `**` inside a longer segment (`a**`, `**x`) is rejected. Matching is anchored
 * to the whole path: "app" then `*` does not match `app/db/password`.
 * (doc/policies.md shows the patterns as written; a C comment cannot.)
 *
 * Pure functions: any thread.
 */
#ifndef SV_PATTERN_H
#define SV_PATTERN_H

#include "src/sv.h"

#define SV_PATH_MAX 512
#define SV_PATH_MAX_SEGS 256 /* a 512-byte path has at most 256 segments */

/** Whether s is a valid secret path (see above). */
bool sv_secret_path_valid(const char *s, size_t len);

/** A path split into segments once, so that many patterns can be matched
 * against it. Points into the caller's path. */
typedef struct {
    const char *path;
    size_t len;
    unsigned n;
    uint16_t off[SV_PATH_MAX_SEGS];
    uint16_t seg_len[SV_PATH_MAX_SEGS];
} sv_path_segs_t;

/** Splits path (a valid secret path) into out. Returns false, leaving out
 * unusable, when path is not a valid secret path. */
bool sv_path_split(const char *path, size_t len, sv_path_segs_t *out);

enum {
    SV_PSEG_LITERAL = 0, /* plain text */
    SV_PSEG_ONE = 1,     /* "*": any one segment */
    SV_PSEG_GLOB = 2,    /* text with '*' inside: one segment */
    SV_PSEG_DEEP = 3,    /* "**": zero or more segments */
};

typedef struct {
    uint16_t off; /* into the pattern text */
    uint16_t len;
    uint8_t kind; /* SV_PSEG_* */
} sv_pseg_t;

/** A compiled pattern. It owns a copy of its text. */
typedef struct {
    char *text;
    size_t len;
    sv_pseg_t *segs;
    unsigned n_segs;
    size_t prefix_len; /* every matching path starts with text[0..prefix_len) */
    bool exact;        /* no wildcard: the path must equal text */
} sv_pattern_t;

/** Compiles pattern s. Errors: SV_EINVAL with *why (static text, may be
 * NULL) saying what is wrong; SV_ENOMEM. On success free with
 * sv_pattern_free. */
sv_err_t sv_pattern_compile(const char *s, size_t len, sv_pattern_t *out, const char **why);
/** Frees a compiled pattern (safe on a zeroed struct). */
void sv_pattern_free(sv_pattern_t *p);
/** Checks pattern s without keeping it. SV_OK or SV_EINVAL with *why. */
sv_err_t sv_pattern_check(const char *s, size_t len, const char **why);
/** Whether p matches the whole path. */
bool sv_pattern_match(const sv_pattern_t *p, const sv_path_segs_t *path);
/** Compiles pattern and matches it against path in one go (tests, the trace's
 * hints). False when either is invalid. */
bool sv_pattern_match_str(const char *pattern, const char *path);

#endif
