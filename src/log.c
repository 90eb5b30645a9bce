/*
 * log.c - structured logging (log.h). Each line is assembled in its own
 * buffer and written with a single write(2) call; lines are short, so writes
 * to a pipe stay atomic (PIPE_BUF) and lines from several threads never mix.
 */
#include "sv_autoconf.h"

#include "src/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "src/json.h"

static sv_log_level_t log_level = SV_LOG_INFO;
static sv_log_format_t log_format = SV_LOG_JSON;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sv_log_init(sv_log_level_t level, sv_log_format_t format)
{
    log_level = level;
    log_format = format;
}

bool sv_log_enabled(sv_log_level_t level)
{
    return level >= log_level;
}

sv_log_format_t sv_log_format(void)
{
    return log_format;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Appends s with control characters replaced: one entry stays one line. */
static void put_text(sv_buf_t *b, const char *s)
{
    for (; *s; s++)
        sv_buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

/* Appends the JSON members of fields as " key=value" pairs (strings bare,
 * control characters replaced); as they are, when they do not parse. */
static void put_text_fields(sv_buf_t *b, const char *fields)
{
    sv_buf_t obj;
    sv_buf_init(&obj, false);
    sv_buf_printf(&obj, "{%s}", fields);
    sv_json_doc_t *doc = NULL;
    sv_json_error_t jerr;
    if (obj.failed || sv_json_parse(obj.base, obj.len, false, &doc, &jerr) != SV_JSON_OK) {
        sv_buf_putc(b, ' ');
        put_text(b, fields);
    } else {
        for (const sv_json_t *m = sv_json_root(doc)->u.kids.first; m != NULL; m = m->next) {
            sv_buf_putc(b, ' ');
            put_text(b, m->key);
            sv_buf_putc(b, '=');
            if (m->type == SV_JSON_STRING)
                put_text(b, m->u.str.s);
            else if (m->type == SV_JSON_NUMBER)
                put_text(b, m->u.num.raw);
            else if (m->type == SV_JSON_BOOL)
                sv_buf_puts(b, m->u.b ? "true" : "false");
            else if (m->type == SV_JSON_NULL)
                sv_buf_puts(b, "null");
            else
                sv_buf_puts(b, "...");
        }
    }
    sv_json_doc_free(doc);
    sv_buf_free(&obj);
}

static void vlog(sv_log_level_t level, const char *request_id, const char *fields, const char *fmt, va_list ap)
{
    if (!sv_log_enabled(level))
        return;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    char ts[21];
    sv_time_format(ts, sv_now_s());
    /* heap memory: a line may be longer than any fixed buffer (a stack
     * buffer cannot be handed to sv_buf, which grows with realloc) */
    sv_buf_t b;
    sv_buf_init(&b, false);
    if (log_format == SV_LOG_JSON) {
        sv_jw_t jw;
        sv_jw_init(&jw, &b);
        sv_jw_obj_begin(&jw);
        sv_jw_key(&jw, "time");
        sv_jw_cstr(&jw, ts);
        sv_jw_key(&jw, "level");
        sv_jw_cstr(&jw, level_names[level]);
        sv_jw_key(&jw, "msg");
        sv_jw_cstr(&jw, msg);
        if (request_id != NULL) {
            sv_jw_key(&jw, "request_id");
            sv_jw_cstr(&jw, request_id);
        }
        if (fields != NULL && fields[0] != 0) {
            sv_buf_putc(&b, ',');
            sv_buf_puts(&b, fields);
        }
        sv_jw_obj_end(&jw);
    } else {
        sv_buf_printf(&b, "%s %-5s ", ts, level_names[level]);
        if (request_id != NULL) {
            sv_buf_putc(&b, '[');
            put_text(&b, request_id);
            sv_buf_puts(&b, "] ");
        }
        put_text(&b, msg);
        if (fields != NULL && fields[0] != 0)
            put_text_fields(&b, fields);
    }
    sv_buf_putc(&b, '\n');
    if (!b.failed)
        write_all((const char *)b.base, b.len);
    sv_buf_free(&b);
}

void sv_log(sv_log_level_t level, const char *request_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, request_id, NULL, fmt, ap);
    va_end(ap);
}

void sv_log_fields(sv_log_level_t level, const char *request_id, const char *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, request_id, fields, fmt, ap);
    va_end(ap);
}
