/*
 * scheduler.c - the persistent scheduler of scheduler.h.
 *
 * The design choice: storage is the only truth. The thread keeps no list of
 * timers in memory; each time it wakes it opens a read snapshot and takes the
 * first timer of a registered kind from a cursor at the start of the
 * `schedule` database (keys begin with the big-endian due time). So a timer
 * set by a request's unit, by a handler, by another part or by the previous
 * run of the process is found the same way, and nothing is lost on a crash.
 *
 * Waking: the thread sleeps on a condition variable until the first due time
 * (at most a minute). Every write that sets a timer (sv_scheduler_at_tx, which
 * the blocking calls use too) raises a flag; a writer commit hook turns the
 * flag into a wake-up once the timer is committed, so the thread never reads
 * a snapshot that lacks it and then oversleeps. A sequence number taken
 * before each read closes the window between reading and sleeping.
 *
 * Threads: the scheduler's own thread runs handlers and reads; the writer
 * thread runs the *_tx functions (inside units) and the commit hook; any
 * thread without an event loop may call register/at/ensure/cancel.
 */
#include "sv_autoconf.h"

#include "src/scheduler.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/app.h"
#include "src/log.h"
#include "store/key.h"
#include "store/record.h"

#define SCHED_REC_VERSION 1
#define INDEX_TAG0 0xFF
#define INDEX_TAG1 'i'
#define MAX_SLEEP_MS 60000
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS (15 * 60 * 1000)
#define WRITE_RETRY_MS 1000
#define MAX_WARNED 16

typedef struct {
    char kind[SV_SCHED_KIND_MAX + 1];
    sv_scheduler_fn fn; /* NULL: free slot */
    void *arg;
} kind_slot_t;

struct sv_scheduler {
    sv_store_t *st;
    sv_writer_t *w;
    sv_store_reader_t *reader; /* used by the scheduler thread only */
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t wake_cond; /* wake_seq changed, or stopping */
    pthread_cond_t idle_cond; /* a handler returned */
    uint64_t wake_seq;
    bool stopping;
    kind_slot_t kinds[SV_SCHED_MAX_KINDS];
    int running;                                    /* slot whose handler runs now, or -1 */
    char warned[MAX_WARNED][SV_SCHED_KIND_MAX + 1]; /* unknown kinds already logged */
    unsigned n_warned;

    atomic_bool pending_wake; /* a timer was set in the batch being committed */
};

int64_t sv_scheduler_now_ms(void)
{
    return sv_now_us() / 1000;
}

/* ---- keys and records ---- */

static bool valid_kind(const char *kind)
{
    size_t n = kind != NULL ? strlen(kind) : 0;
    if (n == 0 || n > SV_SCHED_KIND_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = kind[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool valid_key(const char *key)
{
    return key != NULL && strlen(key) <= SV_SCHED_KEY_MAX;
}

static bool valid_due(int64_t due_ms)
{
    return due_ms >= 0 && due_ms < SV_SCHED_DUE_MAX;
}

static void timer_key(sv_key_t *k, int64_t due_ms, const char *kind, const char *key)
{
    sv_key_init(k);
    sv_key_u64(k, (uint64_t)due_ms);
    sv_key_str(k, kind, strlen(kind));
    sv_key_str(k, key, strlen(key));
}

static void index_key(sv_key_t *k, const char *kind, const char *key)
{
    sv_key_init(k);
    sv_key_u8(k, INDEX_TAG0);
    sv_key_u8(k, INDEX_TAG1);
    sv_key_str(k, kind, strlen(kind));
    sv_key_str(k, key, strlen(key));
}

/* Parses a timer key into its parts (kind and key copied, NUL-terminated). */
static bool parse_timer_key(sv_bytes_t k, int64_t *due_ms, char *kind, char *key)
{
    size_t off = 0;
    uint64_t due;
    sv_bytes_t kind_part, key_part;
    if (!sv_key_read_u64(k, &off, &due) || !sv_key_read_str(k, &off, &kind_part) ||
        !sv_key_read_str(k, &off, &key_part) || off != k.len || kind_part.len > SV_SCHED_KIND_MAX ||
        key_part.len > SV_SCHED_KEY_MAX)
        return false;
    *due_ms = (int64_t)due;
    memcpy(kind, kind_part.base, kind_part.len);
    kind[kind_part.len] = 0;
    memcpy(key, key_part.base, key_part.len);
    key[key_part.len] = 0;
    return true;
}

/* The stored due time of (kind, key), from the index. */
static sv_err_t read_index(sv_txn_t *tx, const char *kind, const char *key, int64_t *due_ms)
{
    sv_key_t ik;
    index_key(&ik, kind, key);
    sv_bytes_t v;
    sv_err_t err = sv_txn_get(tx, SV_DB_SCHEDULE, sv_key_bytes(&ik), &v);
    if (err != SV_OK)
        return err;
    sv_recr_t r;
    if (sv_recr_init(&r, v) != SCHED_REC_VERSION)
        return SV_ECORRUPT;
    uint64_t due = sv_recr_u64(&r);
    if (sv_recr_result(&r) != SV_OK)
        return SV_ECORRUPT;
    *due_ms = (int64_t)due;
    return SV_OK;
}

/* Puts the timer and its index entry. */
static sv_err_t put_timer(sv_wtxn_t *tx, const char *kind, const char *key, int64_t due_ms, uint32_t attempts)
{
    sv_key_t tk, ik;
    timer_key(&tk, due_ms, kind, key);
    index_key(&ik, kind, key);
    sv_recw_t tv, iv;
    sv_recw_init(&tv, SCHED_REC_VERSION);
    sv_recw_u32(&tv, attempts);
    sv_recw_i64(&tv, sv_wtxn_now_us(tx) / 1000);
    sv_recw_init(&iv, SCHED_REC_VERSION);
    sv_recw_u64(&iv, (uint64_t)due_ms);
    sv_bytes_t tb, ib;
    sv_err_t err = sv_recw_result(&tv, &tb);
    if (err == SV_OK)
        err = sv_recw_result(&iv, &ib);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_SCHEDULE, sv_key_bytes(&tk), tb);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_SCHEDULE, sv_key_bytes(&ik), ib);
    sv_recw_free(&tv);
    sv_recw_free(&iv);
    return err;
}

/* Deletes the timer at old_due and, unless keep_index, its index entry. */
static sv_err_t del_timer(sv_wtxn_t *tx, const char *kind, const char *key, int64_t old_due, bool keep_index)
{
    sv_key_t tk, ik;
    timer_key(&tk, old_due, kind, key);
    sv_err_t err = sv_wtxn_del(tx, SV_DB_SCHEDULE, sv_key_bytes(&tk));
    if (err != SV_OK && err != SV_ENOTFOUND)
        return err;
    if (keep_index)
        return SV_OK;
    index_key(&ik, kind, key);
    err = sv_wtxn_del(tx, SV_DB_SCHEDULE, sv_key_bytes(&ik));
    return err == SV_ENOTFOUND ? SV_OK : err;
}

/* Creates or moves (kind, key) to due_ms, unless only_if_absent and it exists. */
static sv_err_t set_timer(sv_scheduler_t *s, sv_wtxn_t *tx, const char *kind, const char *key, int64_t due_ms,
                          bool only_if_absent)
{
    if (!valid_kind(kind) || !valid_key(key) || !valid_due(due_ms))
        return SV_EINVAL;
    int64_t old_due;
    sv_err_t err = read_index(sv_wtxn_txn(tx), kind, key, &old_due);
    if (err == SV_OK) {
        if (only_if_absent)
            return SV_OK;
        if ((err = del_timer(tx, kind, key, old_due, true)) != SV_OK)
            return err;
    } else if (err != SV_ENOTFOUND) {
        return err;
    }
    if ((err = put_timer(tx, kind, key, due_ms, 0)) != SV_OK)
        return err;
    if (s != NULL)
        atomic_store(&s->pending_wake, true);
    return SV_OK;
}

sv_err_t sv_scheduler_at_tx(sv_scheduler_t *s, sv_wtxn_t *tx, const char *kind, const char *key, int64_t due_ms)
{
    return set_timer(s, tx, kind, key, due_ms, false);
}

sv_err_t sv_scheduler_cancel_tx(sv_scheduler_t *s, sv_wtxn_t *tx, const char *kind, const char *key)
{
    if (!valid_kind(kind) || !valid_key(key))
        return SV_EINVAL;
    int64_t old_due;
    sv_err_t err = read_index(sv_wtxn_txn(tx), kind, key, &old_due);
    if (err != SV_OK)
        return err;
    return del_timer(tx, kind, key, old_due, false);
}

sv_err_t sv_scheduler_lookup(sv_txn_t *tx, const char *kind, const char *key, int64_t *due_ms)
{
    if (!valid_kind(kind) || !valid_key(key))
        return SV_EINVAL;
    return read_index(tx, kind, key, due_ms);
}

/* ---- blocking calls: one unit each ---- */

typedef struct {
    sv_scheduler_t *s;
    const char *kind, *key;
    int64_t due_ms;
    bool only_if_absent;
    bool cancel;
} set_op_t;

static sv_err_t apply_set(sv_wtxn_t *tx, sv_unit_t *u)
{
    set_op_t *op = u->arg;
    if (op->cancel)
        return sv_scheduler_cancel_tx(op->s, tx, op->kind, op->key);
    return set_timer(op->s, tx, op->kind, op->key, op->due_ms, op->only_if_absent);
}

static sv_err_t run_set(set_op_t *op)
{
    if (!valid_kind(op->kind) || !valid_key(op->key) || (!op->cancel && !valid_due(op->due_ms)))
        return SV_EINVAL;
    sv_unit_t u = {.apply = apply_set, .arg = op};
    return sv_writer_run(op->s->w, &u);
}

sv_err_t sv_scheduler_at(sv_scheduler_t *s, const char *kind, const char *key, int64_t due_ms)
{
    set_op_t op = {s, kind, key, due_ms, false, false};
    return run_set(&op);
}

sv_err_t sv_scheduler_ensure(sv_scheduler_t *s, const char *kind, const char *key, int64_t due_ms)
{
    set_op_t op = {s, kind, key, due_ms, true, false};
    return run_set(&op);
}

sv_err_t sv_scheduler_cancel(sv_scheduler_t *s, const char *kind, const char *key)
{
    set_op_t op = {s, kind, key, 0, false, true};
    return run_set(&op);
}

/* ---- waking ---- */

/* Caller holds s->lock. */
static void wake_locked(sv_scheduler_t *s)
{
    s->wake_seq++;
    pthread_cond_signal(&s->wake_cond);
}

/* Writer commit hook: a timer set in this batch is now visible to readers. */
static void on_commit(void *arg, uint64_t last_lsn)
{
    sv_scheduler_t *s = arg;
    if (!atomic_exchange(&s->pending_wake, false))
        return;
    pthread_mutex_lock(&s->lock);
    wake_locked(s);
    pthread_mutex_unlock(&s->lock);
}

/* ---- registration ---- */

static int find_kind_locked(sv_scheduler_t *s, const char *kind)
{
    for (int i = 0; i < SV_SCHED_MAX_KINDS; i++)
        if (s->kinds[i].fn != NULL && strcmp(s->kinds[i].kind, kind) == 0)
            return i;
    return -1;
}

sv_err_t sv_scheduler_register(sv_scheduler_t *s, const char *kind, sv_scheduler_fn fn, void *arg)
{
    if (!valid_kind(kind) || fn == NULL)
        return SV_EINVAL;
    sv_err_t err = SV_ENOMEM;
    pthread_mutex_lock(&s->lock);
    if (find_kind_locked(s, kind) >= 0) {
        err = SV_EEXIST;
    } else {
        for (int i = 0; i < SV_SCHED_MAX_KINDS; i++) {
            if (s->kinds[i].fn == NULL) {
                snprintf(s->kinds[i].kind, sizeof(s->kinds[i].kind), "%s", kind);
                s->kinds[i].fn = fn;
                s->kinds[i].arg = arg;
                err = SV_OK;
                break;
            }
        }
    }
    if (err == SV_OK)
        wake_locked(s); /* its due timers may run now */
    pthread_mutex_unlock(&s->lock);
    return err;
}

void sv_scheduler_unregister(sv_scheduler_t *s, const char *kind)
{
    pthread_mutex_lock(&s->lock);
    int i = find_kind_locked(s, kind);
    if (i >= 0) {
        s->kinds[i].fn = NULL;
        bool own_thread = s->started && pthread_equal(pthread_self(), s->thread);
        while (!own_thread && s->running == i)
            pthread_cond_wait(&s->idle_cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- the thread ---- */

typedef struct {
    bool found;
    int slot;
    int64_t due_ms;
    uint32_t attempts;
    char kind[SV_SCHED_KIND_MAX + 1];
    char key[SV_SCHED_KEY_MAX + 1];
} next_timer_t;

/* Whether kind was already logged as unknown; records it if not. Caller holds s->lock. */
static bool warned_locked(sv_scheduler_t *s, const char *kind)
{
    for (unsigned i = 0; i < s->n_warned; i++)
        if (strcmp(s->warned[i], kind) == 0)
            return true;
    if (s->n_warned < MAX_WARNED)
        snprintf(s->warned[s->n_warned++], sizeof(s->warned[0]), "%s", kind);
    return false;
}

/* Finds the first stored timer whose kind has a handler. */
static sv_err_t find_next(sv_scheduler_t *s, next_timer_t *n)
{
    n->found = false;
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(s->reader, &tx);
    if (err != SV_OK)
        return err;
    sv_iter_t it;
    if ((err = sv_iter_open(tx, SV_DB_SCHEDULE, (sv_bytes_t){NULL, 0}, (sv_bytes_t){NULL, 0}, false, &it)) != SV_OK)
        goto end_read;
    sv_bytes_t k, v;
    while ((err = sv_iter_next(&it, &k, &v)) == SV_OK) {
        if (k.len > 0 && k.base[0] == INDEX_TAG0)
            break; /* past the last timer */
        if (!parse_timer_key(k, &n->due_ms, n->kind, n->key)) {
            sv_log_error("scheduler: skipping a malformed timer key (%zu bytes)", k.len);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        n->slot = find_kind_locked(s, n->kind);
        bool log_unknown = n->slot < 0 && !warned_locked(s, n->kind);
        pthread_mutex_unlock(&s->lock);
        if (n->slot < 0) {
            if (log_unknown)
                sv_log_warn("scheduler: timers of kind '%s' wait: no handler is registered for it", n->kind);
            continue;
        }
        sv_recr_t r;
        n->attempts = 0;
        if (sv_recr_init(&r, v) == SCHED_REC_VERSION) {
            n->attempts = sv_recr_u32(&r);
            if (sv_recr_result(&r) != SV_OK)
                n->attempts = 0;
        }
        n->found = true;
        break;
    }
    sv_iter_close(&it);
    if (err == SV_ENOTFOUND)
        err = SV_OK;
end_read:
    sv_store_read_end(s->reader);
    return err;
}

typedef struct {
    const next_timer_t *t;
    sv_err_t result;
    int64_t next_due_ms;
    int64_t now_ms;
} finish_op_t;

static int64_t backoff_ms(uint32_t attempts)
{
    int64_t d = BACKOFF_FIRST_MS;
    for (uint32_t i = 0; i < attempts && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

/* Removes or moves the timer that just ran, unless it was moved or cancelled meanwhile. */
static sv_err_t apply_finish(sv_wtxn_t *tx, sv_unit_t *u)
{
    finish_op_t *op = u->arg;
    const next_timer_t *t = op->t;
    int64_t stored_due = 0;
    sv_err_t ierr = read_index(sv_wtxn_txn(tx), t->kind, t->key, &stored_due);
    if (ierr != SV_OK && ierr != SV_ENOTFOUND && ierr != SV_ECORRUPT)
        return ierr;
    /* the timer that ran goes in any case (also one that lost its index entry) */
    sv_err_t err = del_timer(tx, t->kind, t->key, t->due_ms, true);
    if (err != SV_OK)
        return err;
    if (ierr == SV_ENOTFOUND || (ierr == SV_OK && stored_due != t->due_ms))
        return SV_OK; /* cancelled or moved while it ran: leave it so */
    bool again = op->result != SV_OK || op->next_due_ms > 0;
    if (!again)
        return del_timer(tx, t->kind, t->key, t->due_ms, false);
    int64_t due = op->next_due_ms > 0 ? op->next_due_ms : op->now_ms + backoff_ms(t->attempts);
    if (!valid_due(due))
        due = SV_SCHED_DUE_MAX - 1;
    return put_timer(tx, t->kind, t->key, due, op->result == SV_OK ? 0 : t->attempts + 1);
}

/* Sleeps until the wake sequence moves past seen, stopping, or deadline_ms
 * (wall clock). Caller holds s->lock. */
static void sleep_locked(sv_scheduler_t *s, uint64_t seen, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    while (!s->stopping && s->wake_seq == seen)
        if (pthread_cond_timedwait(&s->wake_cond, &s->lock, &ts) == ETIMEDOUT)
            break;
}

static void run_timer(sv_scheduler_t *s, const next_timer_t *t, uint64_t seen)
{
    pthread_mutex_lock(&s->lock);
    sv_scheduler_fn fn = s->kinds[t->slot].fn;
    void *arg = s->kinds[t->slot].arg;
    bool ok = fn != NULL && strcmp(s->kinds[t->slot].kind, t->kind) == 0;
    if (ok)
        s->running = t->slot;
    pthread_mutex_unlock(&s->lock);
    if (!ok)
        return; /* unregistered since find_next: look again */

    sv_sched_job_t job = {
        .kind = t->kind, .key = t->key, .due_ms = t->due_ms, .now_ms = sv_scheduler_now_ms(), .attempts = t->attempts};
    sv_err_t result = fn(arg, &job);
    if (result != SV_OK)
        sv_log_warn("scheduler: job %s '%s' failed (attempt %u): %s", t->kind, t->key, t->attempts + 1,
                    sv_strerror(result));

    pthread_mutex_lock(&s->lock);
    s->running = -1;
    pthread_cond_broadcast(&s->idle_cond);
    pthread_mutex_unlock(&s->lock);

    finish_op_t op = {t, result, job.next_due_ms, job.now_ms};
    sv_unit_t u = {.apply = apply_finish, .arg = &op};
    sv_err_t err = sv_writer_run(s->w, &u);
    if (err != SV_OK) {
        /* the timer stays due and runs again: don't spin on a failing disk
         * (or a writer that stopped first) */
        sv_log_error("scheduler: cannot record the run of %s '%s': %s", t->kind, t->key, sv_strerror(err));
        pthread_mutex_lock(&s->lock);
        sleep_locked(s, seen, sv_scheduler_now_ms() + WRITE_RETRY_MS);
        pthread_mutex_unlock(&s->lock);
    }
}

static void *scheduler_main(void *arg)
{
    sv_scheduler_t *s = arg;
    pthread_setname_np(pthread_self(), "sv-scheduler");
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool stopping = s->stopping;
        uint64_t seen = s->wake_seq;
        pthread_mutex_unlock(&s->lock);
        if (stopping)
            break;
        next_timer_t t;
        sv_err_t err = find_next(s, &t);
        int64_t now = sv_scheduler_now_ms();
        int64_t deadline = now + MAX_SLEEP_MS;
        if (err != SV_OK) {
            sv_log_error("scheduler: cannot read the schedule: %s", sv_strerror(err));
            deadline = now + WRITE_RETRY_MS;
        } else if (t.found && t.due_ms <= now) {
            run_timer(s, &t, seen);
            continue;
        } else if (t.found && t.due_ms < deadline) {
            deadline = t.due_ms;
        }
        pthread_mutex_lock(&s->lock);
        sleep_locked(s, seen, deadline);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

/* ---- life cycle ---- */

sv_err_t sv_scheduler_new(sv_store_t *st, sv_writer_t *w, sv_scheduler_t **out)
{
    if (!sv_store_has_db(st, SV_DB_SCHEDULE))
        return SV_ESCHEMA;
    sv_scheduler_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SV_ENOMEM;
    s->st = st;
    s->w = w;
    s->running = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake_cond, NULL);
    pthread_cond_init(&s->idle_cond, NULL);
    sv_err_t err = sv_writer_add_commit_hook(w, on_commit, s);
    if (err != SV_OK) {
        sv_scheduler_free(s);
        return err;
    }
    *out = s;
    return SV_OK;
}

sv_err_t sv_scheduler_start(sv_scheduler_t *s)
{
    if (s->started)
        return SV_EINVAL;
    sv_err_t err = sv_store_reader_new(s->st, &s->reader);
    if (err != SV_OK)
        return err;
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        sv_store_reader_free(s->reader);
        s->reader = NULL;
        return SV_ENOMEM;
    }
    s->started = true;
    return SV_OK;
}

void sv_scheduler_stop(sv_scheduler_t *s)
{
    if (!s->started)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake_cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->started = false;
}

void sv_scheduler_free(sv_scheduler_t *s)
{
    if (s == NULL)
        return;
    sv_scheduler_stop(s);
    sv_writer_remove_commit_hook(s->w, on_commit, s);
    sv_store_reader_free(s->reader);
    pthread_cond_destroy(&s->idle_cond);
    pthread_cond_destroy(&s->wake_cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- server part ---- */

sv_err_t sv_scheduler_part_init(struct sv_app *app, char *msg, size_t msglen)
{
    sv_err_t err = sv_scheduler_new(app->store, app->writer, &app->scheduler);
    if (err != SV_OK)
        snprintf(msg, msglen, "scheduler: cannot start: %s", sv_strerror(err));
    return err;
}

sv_err_t sv_scheduler_part_run(struct sv_app *app, char *msg, size_t msglen)
{
    sv_err_t err = sv_scheduler_start(app->scheduler);
    if (err != SV_OK)
        snprintf(msg, msglen, "scheduler: cannot start: %s", sv_strerror(err));
    return err;
}

void sv_scheduler_part_halt(struct sv_app *app)
{
    sv_scheduler_stop(app->scheduler);
}

void sv_scheduler_part_stop(struct sv_app *app)
{
    sv_scheduler_free(app->scheduler);
    app->scheduler = NULL;
}
