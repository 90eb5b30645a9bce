/*
 * scheduler.h - the persistent scheduler: one thread that runs timers kept in
 * storage (the `schedule` database), so that a restart never loses one.
 *
 * A timer is (kind, key, due time in Unix milliseconds). The kind names a job
 * type that the part owning it registers with a handler ("identity_sync",
 * "audit_checkpoint", "cert_renew", ...); the key tells instances of a kind
 * apart ("" for a singleton job, a certificate id, a lease id). There is at
 * most one timer per (kind, key): scheduling it again moves it.
 *
 * How to use it (a part that owns a periodic job):
 *
 *     static sv_err_t sync_job(void *arg, sv_sched_job_t *job) {
 *         sv_err_t err = do_the_sync(arg);             // may call sv_writer_run
 *         job->next_due_ms = job->now_ms + interval_ms; // periodic: run again
 *         return err;                                   // error: logged; see below
 *     }
 *     // in the part's init (any order relative to the scheduler's start):
 *     sv_scheduler_register(app->scheduler, "identity_sync", sync_job, state);
 *     sv_scheduler_ensure(app->scheduler, "identity_sync", "", sv_scheduler_now_ms());
 *     // in the part's stop, before its state is freed:
 *     sv_scheduler_unregister(app->scheduler, "identity_sync");
 *
 * and a change that must schedule atomically with its data (an HTTP worker's
 * unit, e.g. a certificate and its renewal time): call sv_scheduler_at_tx()
 * inside the unit's apply; the timer commits (or vanishes) with the change.
 *
 * Semantics:
 * - Handlers run one at a time on the scheduler thread, in due order (ties:
 *   by kind, then key, bytewise). They may block (network calls, bounded by
 *   their own timeouts) and may call sv_writer_run() and the sv_scheduler_*
 *   functions, but never sv_scheduler_unregister/free.
 * - Delivery is at least once: the timer is removed (or moved) in a write
 *   after the handler returns, so a crash in between runs it again at the
 *   next start. Handlers must be idempotent.
 * - After SV_OK the timer is removed, or moved to job->next_due_ms when the
 *   handler set it. After an error it is retried at job->next_due_ms when
 *   set, else after a backoff (1 s, 2 s, 4 s, ... at most 15 min);
 *   job->attempts counts the failed runs before this one.
 * - A timer moved or cancelled while its handler runs is left as moved or
 *   cancelled.
 * - A timer whose kind has no handler (not registered yet, or a part that is
 *   off) waits, without blocking the timers behind it, until one registers.
 * - Timers are in the change log like every write, so replicas and backups
 *   keep them.
 *
 * Storage layout (schedule database), keys in big-endian binary so that a
 * cursor from the start finds the next due timer:
 *   timer  u64 due_ms | kind 0x00 | key 0x00   -> u8 1, u32 attempts, i64 created_ms
 *   index  0xFF 'i' | kind 0x00 | key 0x00     -> u8 1, u64 due_ms
 * Due times are below 2^56 ms, so every timer key starts with 0x00 and sorts
 * before every index key.
 */
#ifndef SV_SCHEDULER_H
#define SV_SCHEDULER_H

#include "store/env.h"
#include "wal/writer.h"

#define SV_SCHED_KIND_MAX 64  /* bytes of a kind name: [a-z0-9_.-], not empty */
#define SV_SCHED_KEY_MAX 256  /* bytes of a key: any bytes but 0x00 */
#define SV_SCHED_MAX_KINDS 32 /* registered kinds */
#define SV_SCHED_DUE_MAX ((int64_t)1 << 56)

typedef struct sv_scheduler sv_scheduler_t;

/** One run of a timer, handed to its handler. */
typedef struct {
    const char *kind;    /* the registered kind */
    const char *key;     /* the timer's key ("" for a singleton) */
    int64_t due_ms;      /* when it was due (Unix ms) */
    int64_t now_ms;      /* when the run started (Unix ms) */
    uint32_t attempts;   /* failed runs before this one */
    int64_t next_due_ms; /* out: > 0 moves the timer there instead of removing it (or instead of the backoff) */
} sv_sched_job_t;

/** A job handler. Runs on the scheduler thread. arg is what was registered.
 * Returns SV_OK, or an error to have the timer retried (see the top). */
typedef sv_err_t (*sv_scheduler_fn)(void *arg, sv_sched_job_t *job);

/** Creates the scheduler over st and w (both must outlive it; the schedule
 * database must exist, i.e. schema >= 2). Does not start the thread. Errors:
 * SV_ENOMEM, SV_ESCHEMA (no schedule database). */
sv_err_t sv_scheduler_new(sv_store_t *st, sv_writer_t *w, sv_scheduler_t **out);
/** Starts the thread. Timers that are already due run at once. Errors:
 * SV_ENOMEM (no thread), SV_EAGAIN (no reader slot). */
sv_err_t sv_scheduler_start(sv_scheduler_t *s);
/** Stops the thread, waiting for a running handler to return; no timer runs
 * after it (they stay stored). Not from a handler. A no-op when the thread
 * is not running. */
void sv_scheduler_stop(sv_scheduler_t *s);
/** Stops the thread (sv_scheduler_stop) and frees s. The writer must still
 * be running. NULL is fine. */
void sv_scheduler_free(sv_scheduler_t *s);

/** Registers the handler of kind; arg is passed to it and must stay valid
 * until sv_scheduler_unregister (or free) returns. Any thread, any time
 * (before or after start); due timers of the kind run at once. Errors:
 * SV_EINVAL (bad kind name), SV_EEXIST (kind already registered), SV_ENOMEM
 * (more than SV_SCHED_MAX_KINDS kinds). */
sv_err_t sv_scheduler_register(sv_scheduler_t *s, const char *kind, sv_scheduler_fn fn, void *arg);
/** Removes the handler of kind and waits until it is not running. Its timers
 * stay stored. Any thread but the scheduler's own (from a handler it does not
 * wait). */
void sv_scheduler_unregister(sv_scheduler_t *s, const char *kind);

/** Sets the timer (kind, key) to due_ms, creating it or moving it, in its own
 * durable write; wakes the thread if it is earlier than what it waits for.
 * Blocks for one commit: call it from threads without an event loop (the
 * scheduler's handlers, part init, tools, tests), never on an HTTP worker
 * (use sv_scheduler_at_tx in the request's unit). Errors: SV_EINVAL (bad
 * kind, key or due time: 0 <= due_ms < SV_SCHED_DUE_MAX), the writer's errors
 * (SV_ENOSPC, SV_EIO, SV_ESHUTDOWN). */
sv_err_t sv_scheduler_at(sv_scheduler_t *s, const char *kind, const char *key, int64_t due_ms);
/** Like sv_scheduler_at but leaves an existing timer of (kind, key) alone: for
 * periodic jobs at start. */
sv_err_t sv_scheduler_ensure(sv_scheduler_t *s, const char *kind, const char *key, int64_t due_ms);
/** Removes the timer (kind, key) in its own durable write. Errors: SV_ENOTFOUND
 * (no such timer), SV_EINVAL, the writer's errors. Same threads as at(). */
sv_err_t sv_scheduler_cancel(sv_scheduler_t *s, const char *kind, const char *key);

/** Inside a unit's apply (writer thread): sets the timer as part of the unit,
 * so it commits or rolls back with the unit's other changes; the thread is
 * woken after the commit. s may be NULL (tools without a scheduler thread):
 * the timer is stored and runs when a scheduler next starts. Errors:
 * SV_EINVAL, and those of sv_wtxn_put (return them from apply). */
sv_err_t sv_scheduler_at_tx(sv_scheduler_t *s, sv_wtxn_t *tx, const char *kind, const char *key, int64_t due_ms);
/** Inside a unit's apply: removes the timer as part of the unit. Errors:
 * SV_ENOTFOUND (no such timer; nothing changed), SV_EINVAL, those of
 * sv_wtxn_del. */
sv_err_t sv_scheduler_cancel_tx(sv_scheduler_t *s, sv_wtxn_t *tx, const char *kind, const char *key);

/** Reads the due time of timer (kind, key) in any transaction (a worker's
 * read snapshot, or a unit's). Errors: SV_ENOTFOUND, SV_EINVAL, SV_ECORRUPT. */
sv_err_t sv_scheduler_lookup(sv_txn_t *tx, const char *kind, const char *key, int64_t *due_ms);

/** Wall clock in Unix milliseconds, the scheduler's time base. */
int64_t sv_scheduler_now_ms(void);

/* ---- as a server part (src/cmd_server.c) ---- */

struct sv_app;
/** Creates app->scheduler, without its thread: the parts after it register
 * their handlers and set their timers first. */
sv_err_t sv_scheduler_part_init(struct sv_app *app, char *msg, size_t msglen);
/** Starts app->scheduler's thread (sv_scheduler_start), once every part has
 * registered its kinds: a stored timer of a kind that a later part registers
 * is then never taken for an unknown kind ("no handler is registered"). */
sv_err_t sv_scheduler_part_run(struct sv_app *app, char *msg, size_t msglen);
/** Stops the thread (sv_scheduler_stop) before the other parts stop and
 * unregister their kinds: no timer runs, and none is taken for an unknown
 * kind, while they go down. */
void sv_scheduler_part_halt(struct sv_app *app);
/** Stops (when running) and frees app->scheduler. */
void sv_scheduler_part_stop(struct sv_app *app);

#endif
