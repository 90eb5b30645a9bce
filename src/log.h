/*
 * log.h - structured logs on stderr: one JSON object per line (LOG_FORMAT=json)
 * or a plain line (text), filtered by LOG_LEVEL. A line that belongs to a
 * request carries its request_id. Never log a secret value or a token.
 */
#ifndef SV_LOG_H
#define SV_LOG_H

#include "src/config.h"

/** Sets the level and format. Call once at start; before it, info and json. */
void sv_log_init(sv_log_level_t level, sv_log_format_t format);
/** Whether lines of this level are written. */
bool sv_log_enabled(sv_log_level_t level);
/** The configured format. */
sv_log_format_t sv_log_format(void);

/** Writes one line: msg is printf-formatted. request_id may be NULL. Any thread;
 * a line is written with one write(2) so lines never interleave. */
void sv_log(sv_log_level_t level, const char *request_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Like sv_log with extra JSON members: fields is "\"key\":value,..." (valid
 * JSON members, no surrounding braces) or NULL. In text format they follow the
 * message. */
void sv_log_fields(sv_log_level_t level, const char *request_id, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define sv_log_debug(...) sv_log(SV_LOG_DEBUG, NULL, __VA_ARGS__)
#define sv_log_info(...) sv_log(SV_LOG_INFO, NULL, __VA_ARGS__)
#define sv_log_warn(...) sv_log(SV_LOG_WARN, NULL, __VA_ARGS__)
#define sv_log_error(...) sv_log(SV_LOG_ERROR, NULL, __VA_ARGS__)

#endif
