/*
 * audit_query.h - reading the audit log: filtered, paginated queries served
 * from the indexes (GET /v1/audit/logs), and the export as JSON lines in
 * bounded chunks (GET /v1/audit/export).
 *
 * Queries pick their index: a request id is one prefix seek in
 * `audit_by_request`; anything else walks `audit_by_time` from the `from`/`to`
 * bound: for one tenant, the seconds its activity rows name (and in each, the
 * entries of that second, filtered to the tenant); for every tenant, the
 * entry rows. Other filters are applied to the entries the walk
 * meets, and a call examines a bounded number of index rows, so a page can
 * hold fewer than `limit` items while next_cursor is not null.
 */
#ifndef SV_AUDIT_QUERY_H
#define SV_AUDIT_QUERY_H

#include "src/audit.h"
#include "src/buf.h"

#define SV_AUDIT_QUERY_SCAN_MAX 5000 /* index rows examined per call (default) */

/* Which index a query walks; a cursor is only valid for the same kind. */
typedef enum {
    SV_AUDIT_BY_REQUEST = 1,
    SV_AUDIT_BY_TIME = 2,        /* every tenant */
    SV_AUDIT_BY_TENANT_TIME = 3, /* one tenant */
} sv_audit_query_mode_t;

#define SV_AUDIT_CURSOR_TAG_BYTES 8

typedef struct {
    uint8_t mode; /* sv_audit_query_mode_t */
    bool ascending;
    int64_t time_us; /* the last index row examined */
    uint64_t seq;
    uint8_t tag[SV_AUDIT_CURSOR_TAG_BYTES]; /* MAC of the above and the query's tenant and filters */
} sv_audit_cursor_t;

typedef struct {
    const char *request_id;          /* NULL: any */
    const char *action;              /* NULL: any */
    const char *identity_id;         /* NULL: any */
    const char *path_prefix;         /* NULL: any */
    int success;                     /* -1 any, 0 failures, 1 successes */
    int64_t from_us, to_us;          /* inclusive time bounds; INT64_MIN / INT64_MAX when open */
    const char *tenant;              /* NULL: every tenant (super admin) */
    unsigned limit;                  /* 1..1000 */
    bool ascending;                  /* oldest first; default newest first */
    const sv_audit_cursor_t *cursor; /* NULL: the first page */
    const uint8_t *cursor_key;       /* SV_AUDIT_CURSOR_KEY_BYTES (sv_audit_cursor_key); NULL: an unkeyed tag */
    unsigned scan_max;               /* index rows examined at most; 0: SV_AUDIT_QUERY_SCAN_MAX */
} sv_audit_query_t;

/** The index q walks. */
sv_audit_query_mode_t sv_audit_query_mode(const sv_audit_query_t *q);
/** Parses a cursor returned by an earlier page. SV_EINVAL when malformed. */
sv_err_t sv_audit_cursor_parse(const char *text, size_t len, sv_audit_cursor_t *c);
/** Runs q in tx and appends {"items":[...],"next_cursor":...} to out.
 * Errors: SV_EINVAL (the cursor is from another query: another tenant,
 * filters, kind or order; or it was altered), storage errors. */
sv_err_t sv_audit_query_run(sv_txn_t *tx, const sv_audit_query_t *q, sv_buf_t *out);

/* ---- export ---- */

typedef struct {
    sv_audit_walk_t walk;
    uint64_t end_seq; /* nothing after this sequence number (the head when the export began) */
    uint64_t count;   /* records written */
    uint64_t next_from_seq;
    uint64_t gap_from, gap_to; /* entries pruned before they were sent (gap_to 0: none) */
    bool finished; /* the closing line is written */
} sv_audit_export_t;

/** Prepares an export of every record from from_seq to end_seq. */
void sv_audit_export_init(sv_audit_export_t *e, uint64_t from_seq, uint64_t end_seq);
/** Appends the next records (at most max_records, about 64 KiB) as JSON lines
 * to out, reading in tx, and the closing line {"type":"end",...} after the
 * last one (or at once, with "complete":false, when stop is set). Sets *done
 * once the closing line is written. Errors: storage errors. */
sv_err_t sv_audit_export_chunk(sv_txn_t *tx, sv_audit_export_t *e, unsigned max_records, bool stop, sv_buf_t *out,
                               bool *done);

#endif
