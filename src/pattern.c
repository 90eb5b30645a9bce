/*
 * pattern.c - secret paths and policy path patterns (pattern.h).
 *
 * The design choice: match segment by segment. A path is split once into
 * segment offsets; a pattern is compiled once into segments of four kinds.
 * `**` is then the `*` of the classic wildcard algorithm, over segments
 * instead of characters: greedy, remembering only the last `**` to backtrack
 * to, which is correct because every other pattern segment consumes exactly
 * one path segment. The same algorithm over characters matches a segment
 * with `*` inside. Both are linear in practice and never recurse.
 *
 * A compiled pattern also keeps a literal prefix that every matching path
 * starts with, so that most non-matching rules are rejected by one memcmp.
 *
 * Pure functions: any thread.
 */
#include "sv_autoconf.h"

#include "src/pattern.h"

#include <stdlib.h>
#include <string.h>

static inline bool path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

/* Walks the segments of s, checking the shape shared by paths and patterns.
 * Calls fn for each segment; stops and returns false at the first bad one. */
typedef bool (*seg_fn)(void *arg, const char *seg, size_t len, size_t off);

static bool each_segment(const char *s, size_t len, seg_fn fn, void *arg)
{
    if (len == 0 || len > SV_PATH_MAX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/')
            continue;
        size_t sl = i - start;
        if (sl == 0)
            return false; /* empty segment: leading, trailing or double slash */
        if ((sl == 1 && s[start] == '.') || (sl == 2 && s[start] == '.' && s[start + 1] == '.'))
            return false;
        if (!fn(arg, s + start, sl, start))
            return false;
        start = i + 1;
    }
    return true;
}

static bool split_seg(void *arg, const char *seg, size_t len, size_t off)
{
    sv_path_segs_t *out = arg;
    for (size_t i = 0; i < len; i++)
        if (!path_char(seg[i]))
            return false;
    if (out->n == SV_PATH_MAX_SEGS)
        return false;
    out->off[out->n] = (uint16_t)off;
    out->seg_len[out->n] = (uint16_t)len;
    out->n++;
    return true;
}

bool sv_path_split(const char *path, size_t len, sv_path_segs_t *out)
{
    out->path = path;
    out->len = len;
    out->n = 0;
    return each_segment(path, len, split_seg, out);
}

bool sv_secret_path_valid(const char *s, size_t len)
{
    sv_path_segs_t segs;
    return sv_path_split(s, len, &segs);
}

/* ---- patterns ---- */

typedef struct {
    sv_pseg_t *segs; /* NULL: only count and check */
    unsigned n;
    const char *why;
} compile_state_t;

static bool pattern_seg(void *arg, const char *seg, size_t len, size_t off)
{
    compile_state_t *cs = arg;
    unsigned stars = 0;
    bool double_star = false;
    for (size_t i = 0; i < len; i++) {
        if (seg[i] == '*') {
            stars++;
            if (i + 1 < len && seg[i + 1] == '*')
                double_star = true;
        } else if (!path_char(seg[i])) {
            cs->why = "a pattern segment may hold only A-Z a-z 0-9 . _ - and *";
            return false;
        }
    }
    uint8_t kind = SV_PSEG_LITERAL;
    if (double_star) {
        if (len != 2) {
            cs->why = "'**' must be a whole segment (as in 'app/**')";
            return false;
        }
        kind = SV_PSEG_DEEP;
    } else if (stars > 0) {
        kind = len == 1 ? SV_PSEG_ONE : SV_PSEG_GLOB;
    }
    if (cs->n == SV_PATH_MAX_SEGS) {
        cs->why = "too many segments";
        return false;
    }
    if (cs->segs != NULL)
        cs->segs[cs->n] = (sv_pseg_t){(uint16_t)off, (uint16_t)len, kind};
    cs->n++;
    return true;
}

sv_err_t sv_pattern_check(const char *s, size_t len, const char **why)
{
    compile_state_t cs = {NULL, 0, NULL};
    if (each_segment(s, len, pattern_seg, &cs))
        return SV_OK;
    if (why != NULL)
        *why = cs.why != NULL ? cs.why
               : len == 0 || len > SV_PATH_MAX
                   ? "a pattern is 1 to 512 bytes"
                   : "a pattern has no empty, '.' or '..' segment and no leading or trailing '/'";
    return SV_EINVAL;
}

sv_err_t sv_pattern_compile(const char *s, size_t len, sv_pattern_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    sv_err_t err = sv_pattern_check(s, len, why);
    if (err != SV_OK)
        return err;
    compile_state_t cs = {NULL, 0, NULL};
    each_segment(s, len, pattern_seg, &cs);
    out->segs = malloc(cs.n * sizeof(sv_pseg_t));
    out->text = malloc(len + 1);
    if (out->segs == NULL || out->text == NULL) {
        sv_pattern_free(out);
        return SV_ENOMEM;
    }
    memcpy(out->text, s, len);
    out->text[len] = 0;
    out->len = len;
    cs.segs = out->segs;
    cs.n = 0;
    each_segment(out->text, len, pattern_seg, &cs);
    out->n_segs = cs.n;

    const char *star = memchr(s, '*', len);
    out->exact = star == NULL;
    out->prefix_len = star != NULL ? (size_t)(star - s) : len;
    /* a "**" segment also matches zero segments ("a" then "**" matches "a"): drop the slash before it */
    if (star != NULL && star + 1 < s + len && star[1] == '*' && out->prefix_len > 0)
        out->prefix_len--;
    return SV_OK;
}

void sv_pattern_free(sv_pattern_t *p)
{
    free(p->segs);
    free(p->text);
    p->segs = NULL;
    p->text = NULL;
    p->n_segs = 0;
}

/* '*' inside one segment: any run of characters, zero included. */
static bool glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    size_t pi = 0, si = 0, star_pi = SIZE_MAX, star_si = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            star_pi = pi++;
            star_si = si;
        } else if (pi < plen && pat[pi] == s[si]) {
            pi++;
            si++;
        } else if (star_pi != SIZE_MAX) {
            pi = star_pi + 1;
            si = ++star_si;
        } else {
            return false;
        }
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

static inline bool seg_match(const sv_pattern_t *p, const sv_pseg_t *ps, const sv_path_segs_t *path, unsigned ti)
{
    const char *seg = path->path + path->off[ti];
    size_t sl = path->seg_len[ti];
    switch (ps->kind) {
    case SV_PSEG_LITERAL:
        return sl == ps->len && memcmp(seg, p->text + ps->off, sl) == 0;
    case SV_PSEG_ONE:
        return true;
    case SV_PSEG_GLOB:
        return glob_match(p->text + ps->off, ps->len, seg, sl);
    default:
        return false;
    }
}

bool sv_pattern_match(const sv_pattern_t *p, const sv_path_segs_t *path)
{
    if (path->len < p->prefix_len || memcmp(path->path, p->text, p->prefix_len) != 0)
        return false;
    if (p->exact)
        return path->len == p->len;
    unsigned pi = 0, ti = 0, star_pi = UINT32_MAX, star_ti = 0;
    while (ti < path->n) {
        if (pi < p->n_segs && p->segs[pi].kind == SV_PSEG_DEEP) {
            star_pi = pi++;
            star_ti = ti;
        } else if (pi < p->n_segs && seg_match(p, &p->segs[pi], path, ti)) {
            pi++;
            ti++;
        } else if (star_pi != UINT32_MAX) {
            pi = star_pi + 1;
            ti = ++star_ti;
        } else {
            return false;
        }
    }
    while (pi < p->n_segs && p->segs[pi].kind == SV_PSEG_DEEP)
        pi++;
    return pi == p->n_segs;
}

bool sv_pattern_match_str(const char *pattern, const char *path)
{
    sv_pattern_t p;
    sv_path_segs_t segs;
    if (!sv_path_split(path, strlen(path), &segs))
        return false;
    if (sv_pattern_compile(pattern, strlen(pattern), &p, NULL) != SV_OK)
        return false;
    bool m = sv_pattern_match(&p, &segs);
    sv_pattern_free(&p);
    return m;
}
