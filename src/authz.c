/*
 * authz.c - policy evaluation, its per-thread cache, and its trace (authz.h).
 *
 * The design choice: one evaluation function, evaluate(), serves both real
 * requests and POST /v1/policies/test. With a trace it visits every rule of
 * every bound policy and records what it saw; without one it skips a rule as
 * soon as the permission or the path rules it out and stops at the first
 * deny that applies. The words of the trace are written afterwards from the
 * recorded facts, so the decision logic has exactly one implementation.
 *
 * Caching: a compiled tenant set (every policy of a tenant, patterns
 * compiled, zones resolved, bindings sorted) is tagged with the tenant's
 * policy generation; an identity entry (the indices of the policies that apply to
 * one identity, with its groups from the identity cache) is tagged with both
 * the policy and the identity generation. Generations are read *before* the
 * snapshot that a rebuild reads, so an entry can only be older than its tag,
 * never newer, and the next bump makes it stale. Each thread owns its cache
 * (a pthread key), so the hot path is a hash lookup and two atomic loads with
 * no lock; the engine's mutex guards only the list of thread caches, touched
 * when a thread first evaluates and when it exits.
 *
 * Any thread; each with its own store reader.
 */
#include "sv_autoconf.h"

#include "src/authz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/app.h"
#include "src/identity.h"
#include "src/pattern.h"
#include "src/tz.h"

#define ENTRY_BUCKETS 1024
#define SET_BUCKETS 64
#define MAX_ENTRIES 8192 /* per thread; the cache is flushed when full */
#define MAX_SETS 128
#define MAX_IDENTITY_GROUPS 1024

/* ---- compiled policies ---- */

typedef struct {
    sv_pattern_t pat; /* without any "@partner/" prefix */
    bool partner;
    const sv_policy_rule_t *def;
    const sv_tz_t *tz; /* the time window's zone; NULL when it could not be loaded */
} crule_t;

typedef struct {
    sv_policy_def_t *def;
    crule_t *rules;
    const char **ids;    /* bindings.identities, sorted */
    const char **groups; /* bindings.groups, sorted */
} cpolicy_t;

typedef struct tset {
    char tenant[SV_TENANT_MAX];
    uint64_t gen;
    unsigned refs;
    cpolicy_t *pols;
    unsigned n, cap;
    struct tset *next;
} tset_t;

typedef struct {
    unsigned pol; /* index into the set */
    int via;      /* -1: bound directly; else the index of the group (known or unknown list) */
} binding_t;

typedef struct ientry {
    char tenant[SV_TENANT_MAX];
    char id[SV_ID_MAX];
    uint64_t pgen, igen;
    tset_t *set;
    bool found, active;
    char **groups; /* known to the cache (record present) */
    unsigned n_groups;
    char **unknown; /* in the membership index without a group record */
    unsigned n_unknown;
    binding_t *bound; /* policies that apply, in name order */
    unsigned n_bound;
    binding_t *unresolved; /* policies bound only through unknown groups (via indexes unknown); no decision
                            * reads it, and a trace keeps its own, complete list (find_unresolved) */
    unsigned n_unresolved;
    struct ientry *next;
} ientry_t;

typedef struct tcache {
    sv_policy_t *pe;
    ientry_t *entries[ENTRY_BUCKETS];
    tset_t *sets[SET_BUCKETS];
    unsigned n_entries, n_sets;
    struct tcache *prev, *next;
} tcache_t;

struct sv_policy {
    pthread_key_t key;
    pthread_mutex_t lock; /* guards the list of caches */
    tcache_t *caches;
};

/* ---- names ---- */

const char *sv_authz_condition_name(int cond)
{
    static const char *const names[] = {"ip_allow", "mfa_required", "time_window"};
    return cond >= 0 && cond < SV_COND_COUNT_ ? names[cond] : "?";
}

const char *sv_authz_failed_condition_code(int cond)
{
    static const char *const codes[] = {"ip_not_allowed", "mfa_required", "time_window_violation"};
    return cond >= 0 && cond < SV_COND_COUNT_ ? codes[cond] : NULL;
}

const char *sv_authz_outcome_reason(sv_authz_outcome_t o)
{
    switch (o) {
    case SV_AUTHZ_ALLOWED:
        return "allowed";
    case SV_AUTHZ_NO_POLICY_MATCHED:
        return "no_policy_matched";
    case SV_AUTHZ_EXPLICIT_DENY:
        return "explicit_deny";
    case SV_AUTHZ_CONDITION_FAILED:
        return "condition_failed";
    case SV_AUTHZ_IDENTITY_INACTIVE:
        return "identity_inactive";
    case SV_AUTHZ_PARTNER_ADMIN_REQUIRED:
        return "partner_admin_required";
    }
    return "?";
}

/* ---- tenant sets ---- */

static void set_release(tset_t *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    for (unsigned i = 0; i < s->n; i++) {
        cpolicy_t *cp = &s->pols[i];
        for (unsigned j = 0; cp->rules != NULL && j < cp->def->n_rules; j++)
            sv_pattern_free(&cp->rules[j].pat);
        free(cp->rules);
        free(cp->ids);
        free(cp->groups);
        sv_policy_def_free(cp->def);
    }
    free(s->pols);
    free(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool sorted_has(const char **list, unsigned n, const char *s)
{
    return n > 0 && bsearch(&s, list, n, sizeof(char *), cmp_str) != NULL;
}

static const char **sorted_copy(char **list, unsigned n)
{
    const char **out = malloc((n + 1) * sizeof(char *));
    if (out == NULL)
        return NULL;
    memcpy(out, list, n * sizeof(char *));
    qsort(out, n, sizeof(char *), cmp_str);
    return out;
}

static sv_err_t compile_policy(cpolicy_t *cp, sv_policy_def_t *def)
{
    cp->def = def;
    cp->rules = calloc(def->n_rules, sizeof(crule_t));
    cp->ids = sorted_copy(def->identities, def->n_identities);
    cp->groups = sorted_copy(def->groups, def->n_groups);
    if (cp->rules == NULL || cp->ids == NULL || cp->groups == NULL)
        return SV_ENOMEM;
    size_t pl = strlen(SV_PARTNER_PATTERN_PREFIX);
    for (unsigned j = 0; j < def->n_rules; j++) {
        crule_t *cr = &cp->rules[j];
        const sv_policy_rule_t *r = &def->rules[j];
        cr->def = r;
        cr->partner = strncmp(r->path, SV_PARTNER_PATTERN_PREFIX, pl) == 0;
        const char *pat = cr->partner ? r->path + pl : r->path;
        sv_err_t err = sv_pattern_compile(pat, strlen(pat), &cr->pat, NULL);
        if (err != SV_OK)
            return err == SV_EINVAL ? SV_ECORRUPT : err;
        if (r->has_time_window && sv_tz_get(r->timezone, &cr->tz) != SV_OK)
            cr->tz = NULL; /* the zone vanished from the tz database: the condition fails (closed) */
    }
    return SV_OK;
}

static bool collect_policy(void *arg, sv_policy_def_t *p)
{
    tset_t *s = arg;
    if (s->n == s->cap) {
        unsigned cap = s->cap ? s->cap * 2 : 8;
        cpolicy_t *np = realloc(s->pols, cap * sizeof(cpolicy_t));
        if (np == NULL) {
            sv_policy_def_free(p);
            s->cap = UINT32_MAX; /* marks the failure */
            return false;
        }
        memset(np + s->cap, 0, (cap - s->cap) * sizeof(cpolicy_t));
        s->pols = np;
        s->cap = cap;
    }
    s->pols[s->n++].def = p;
    return true;
}

static sv_err_t set_build(sv_txn_t *tx, const char *tenant, uint64_t gen, tset_t **out)
{
    tset_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SV_ENOMEM;
    s->refs = 1;
    s->gen = gen;
    snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
    sv_err_t err = sv_policy_each(tx, tenant, NULL, collect_policy, s);
    if (err == SV_OK && s->cap == UINT32_MAX)
        err = SV_ENOMEM;
    for (unsigned i = 0; err == SV_OK && i < s->n; i++)
        err = compile_policy(&s->pols[i], s->pols[i].def);
    if (err != SV_OK) {
        set_release(s);
        return err;
    }
    *out = s;
    return SV_OK;
}

/* ---- identity entries ---- */

static void entry_free(ientry_t *e)
{
    if (e == NULL)
        return;
    for (unsigned i = 0; i < e->n_groups; i++)
        free(e->groups[i]);
    for (unsigned i = 0; i < e->n_unknown; i++)
        free(e->unknown[i]);
    free(e->groups);
    free(e->unknown);
    free(e->bound);
    free(e->unresolved);
    set_release(e->set);
    free(e);
}

typedef struct {
    sv_txn_t *tx;
    ientry_t *e;
    sv_err_t err;
} group_walk_t;

static bool push_str(char ***list, unsigned *n, const char *s)
{
    if (*n % 8 == 0) {
        char **nl = realloc(*list, (*n + 8) * sizeof(char *));
        if (nl == NULL)
            return false;
        *list = nl;
    }
    if (((*list)[*n] = strdup(s)) == NULL)
        return false;
    (*n)++;
    return true;
}

static bool walk_group(void *arg, const char *gid)
{
    group_walk_t *gw = arg;
    ientry_t *e = gw->e;
    if (e->n_groups + e->n_unknown >= MAX_IDENTITY_GROUPS)
        return false;
    sv_group_rec_t g;
    sv_err_t err = sv_group_get(gw->tx, e->tenant, gid, &g);
    bool ok;
    if (err == SV_OK)
        ok = push_str(&e->groups, &e->n_groups, gid);
    else if (err == SV_ENOTFOUND)
        ok = push_str(&e->unknown, &e->n_unknown, gid);
    else {
        gw->err = err;
        return false;
    }
    if (!ok)
        gw->err = SV_ENOMEM;
    return ok;
}

static bool push_binding(binding_t **list, unsigned *n, unsigned pol, int via)
{
    if (*n % 16 == 0) {
        binding_t *nl = realloc(*list, (*n + 16) * sizeof(binding_t));
        if (nl == NULL)
            return false;
        *list = nl;
    }
    (*list)[(*n)++] = (binding_t){pol, via};
    return true;
}

/* Builds the entry of identity id from the snapshot tx and the set. */
static sv_err_t entry_build(sv_txn_t *tx, tset_t *set, const char *tenant, const char *id, uint64_t pgen, uint64_t igen,
                            ientry_t **out)
{
    ientry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return SV_ENOMEM;
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->pgen = pgen;
    e->igen = igen;
    e->set = set;
    set->refs++;
    sv_identity_rec_t rec;
    sv_err_t err = sv_identity_get(tx, tenant, id, &rec);
    if (err != SV_OK && err != SV_ENOTFOUND)
        goto fail;
    e->found = err == SV_OK;
    e->active = e->found ? rec.active : true;
    group_walk_t gw = {tx, e, SV_OK};
    if ((err = sv_identity_each_group(tx, tenant, id, walk_group, &gw)) != SV_OK && err != SV_ENOTFOUND)
        goto fail;
    if ((err = gw.err) != SV_OK)
        goto fail;
    err = SV_ENOMEM;
    for (unsigned i = 0; i < set->n; i++) {
        const cpolicy_t *cp = &set->pols[i];
        int via = -2;
        if (sorted_has(cp->ids, cp->def->n_identities, id))
            via = -1;
        for (unsigned g = 0; via == -2 && g < e->n_groups; g++)
            if (sorted_has(cp->groups, cp->def->n_groups, e->groups[g]))
                via = (int)g;
        if (via != -2) {
            if (!push_binding(&e->bound, &e->n_bound, i, via))
                goto fail;
            continue;
        }
        for (unsigned g = 0; g < e->n_unknown; g++)
            if (sorted_has(cp->groups, cp->def->n_groups, e->unknown[g])) {
                if (!push_binding(&e->unresolved, &e->n_unresolved, i, (int)g))
                    goto fail;
                break;
            }
    }
    *out = e;
    return SV_OK;
fail:
    entry_free(e);
    return err;
}

/* ---- the thread cache ---- */

static uint32_t hash_str(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void cache_flush(tcache_t *tc)
{
    for (unsigned b = 0; b < ENTRY_BUCKETS; b++) {
        for (ientry_t *e = tc->entries[b], *next; e != NULL; e = next) {
            next = e->next;
            entry_free(e);
        }
        tc->entries[b] = NULL;
    }
    for (unsigned b = 0; b < SET_BUCKETS; b++) {
        for (tset_t *s = tc->sets[b], *next; s != NULL; s = next) {
            next = s->next;
            set_release(s);
        }
        tc->sets[b] = NULL;
    }
    tc->n_entries = tc->n_sets = 0;
}

static void cache_destroy(void *arg)
{
    tcache_t *tc = arg;
    sv_policy_t *pe = tc->pe;
    pthread_mutex_lock(&pe->lock);
    if (tc->prev != NULL)
        tc->prev->next = tc->next;
    else
        pe->caches = tc->next;
    if (tc->next != NULL)
        tc->next->prev = tc->prev;
    pthread_mutex_unlock(&pe->lock);
    cache_flush(tc);
    free(tc);
}

static tcache_t *thread_cache(sv_policy_t *pe)
{
    tcache_t *tc = pthread_getspecific(pe->key);
    if (SV_LIKELY(tc != NULL))
        return tc;
    if ((tc = calloc(1, sizeof(*tc))) == NULL)
        return NULL;
    tc->pe = pe;
    if (pthread_setspecific(pe->key, tc) != 0) {
        free(tc);
        return NULL;
    }
    pthread_mutex_lock(&pe->lock);
    tc->next = pe->caches;
    if (pe->caches != NULL)
        pe->caches->prev = tc;
    pe->caches = tc;
    pthread_mutex_unlock(&pe->lock);
    return tc;
}

sv_err_t sv_policy_engine_new(sv_policy_t **out)
{
    sv_policy_t *pe = calloc(1, sizeof(*pe));
    if (pe == NULL)
        return SV_ENOMEM;
    if (pthread_key_create(&pe->key, cache_destroy) != 0) {
        free(pe);
        return SV_EAGAIN;
    }
    pthread_mutex_init(&pe->lock, NULL);
    *out = pe;
    return SV_OK;
}

void sv_policy_engine_free(sv_policy_t *pe)
{
    if (pe == NULL)
        return;
    pthread_key_delete(pe->key); /* no destructor runs from now on */
    for (tcache_t *tc = pe->caches, *next; tc != NULL; tc = next) {
        next = tc->next;
        cache_flush(tc);
        free(tc);
    }
    pthread_mutex_destroy(&pe->lock);
    free(pe);
}

sv_err_t sv_policy_part_init(sv_app_t *app, char *msg, size_t msglen)
{
    sv_err_t err = sv_policy_engine_new(&app->policy);
    if (err != SV_OK)
        snprintf(msg, msglen, "cannot create the policy engine: %s", sv_strerror(err));
    return err;
}

void sv_policy_part_stop(sv_app_t *app)
{
    sv_policy_engine_free(app->policy);
    app->policy = NULL;
}

void sv_policy_engine_thread_done(sv_policy_t *pe)
{
    tcache_t *tc = pthread_getspecific(pe->key);
    if (tc != NULL) {
        pthread_setspecific(pe->key, NULL);
        cache_destroy(tc);
    }
}

/* The compiled set of tenant at generation gen, from the cache or built
 * from tx. The returned set is borrowed from the cache (or owned by *owned
 * when the cache cannot take it). */
static sv_err_t cache_set(tcache_t *tc, sv_txn_t *tx, const char *tenant, uint64_t gen, tset_t **out)
{
    uint32_t b = hash_str(2166136261u, tenant) % SET_BUCKETS;
    tset_t **pp = &tc->sets[b];
    for (tset_t *s = *pp; s != NULL; pp = &s->next, s = s->next) {
        if (strcmp(s->tenant, tenant) != 0)
            continue;
        if (s->gen == gen) {
            *out = s;
            return SV_OK;
        }
        *pp = s->next; /* stale: drop the cache's reference */
        set_release(s);
        tc->n_sets--;
        break;
    }
    tset_t *s;
    sv_err_t err = set_build(tx, tenant, gen, &s);
    if (err != SV_OK)
        return err;
    s->next = tc->sets[b];
    tc->sets[b] = s;
    tc->n_sets++;
    *out = s;
    return SV_OK;
}

/* The entry of (tenant, id), fresh for the generations, from the cache or
 * rebuilt through reader. */
static sv_err_t cache_entry(sv_policy_t *pe, sv_store_reader_t *reader, const char *tenant, const char *id,
                            ientry_t **out)
{
    tcache_t *tc = thread_cache(pe);
    if (tc == NULL)
        return SV_ENOMEM;
    uint64_t pgen = sv_policy_generation(tenant), igen = sv_identity_generation();
    uint32_t b = hash_str(hash_str(2166136261u, tenant) * 31u + 1u, id) % ENTRY_BUCKETS;
    ientry_t **pp = &tc->entries[b];
    for (ientry_t *e = *pp; e != NULL; pp = &e->next, e = e->next) {
        if (strcmp(e->id, id) != 0 || strcmp(e->tenant, tenant) != 0)
            continue;
        if (SV_LIKELY(e->pgen == pgen && e->igen == igen)) {
            *out = e;
            return SV_OK;
        }
        *pp = e->next;
        entry_free(e);
        tc->n_entries--;
        break;
    }
    if (tc->n_entries >= MAX_ENTRIES || tc->n_sets >= MAX_SETS)
        cache_flush(tc); /* crude but bounded: everything is rebuilt on demand */
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(reader, &tx);
    if (err != SV_OK)
        return err;
    tset_t *set;
    ientry_t *e = NULL;
    if ((err = cache_set(tc, tx, tenant, pgen, &set)) == SV_OK)
        err = entry_build(tx, set, tenant, id, pgen, igen, &e);
    sv_store_read_end(reader);
    if (err != SV_OK)
        return err;
    e->next = tc->entries[b];
    tc->entries[b] = e;
    tc->n_entries++;
    *out = e;
    return SV_OK;
}

/* ---- evaluation ---- */

bool sv_authz_in_window(uint8_t days, unsigned start_min, unsigned end_min, int wday, int minute)
{
    unsigned m = (unsigned)minute;
    if (start_min < end_min)
        return (days & (1u << wday)) && m >= start_min && m < end_min;
    int prev = (wday + 6) % 7;
    return ((days & (1u << wday)) && m >= start_min) || ((days & (1u << prev)) && m < end_min);
}

typedef struct {
    const sv_tz_t *tz;
    bool used;
    sv_tz_local_t local;
} local_slot_t;

/* The local time of rq->now in tz, computed once per zone per evaluation. */
static const sv_tz_local_t *local_time(local_slot_t slots[4], const sv_tz_t *tz, int64_t now)
{
    for (int i = 0; i < 4; i++) {
        if (slots[i].used && slots[i].tz == tz)
            return &slots[i].local;
        if (!slots[i].used) {
            slots[i].used = true;
            slots[i].tz = tz;
            sv_tz_local(tz, now, &slots[i].local);
            return &slots[i].local;
        }
    }
    sv_tz_local(tz, now, &slots[3].local);
    slots[3].tz = tz;
    return &slots[3].local;
}

static void check_conditions(const crule_t *cr, const sv_authz_request_t *rq, local_slot_t slots[4],
                             uint8_t out[SV_COND_COUNT_])
{
    const sv_policy_rule_t *r = cr->def;
    out[SV_COND_IP_ALLOW] = SV_COND_NA;
    if (r->has_ip_allow) {
        bool in = false;
        for (unsigned i = 0; rq->has_ip && !in && i < r->n_ip_allow; i++)
            in = sv_cidr_contains(&r->ip_allow[i], &rq->ip);
        out[SV_COND_IP_ALLOW] = in ? SV_COND_PASS : SV_COND_FAIL;
    }
    out[SV_COND_MFA_REQUIRED] = r->mfa_required ? (rq->mfa ? SV_COND_PASS : SV_COND_FAIL) : SV_COND_NA;
    out[SV_COND_TIME_WINDOW] = SV_COND_NA;
    if (r->has_time_window) {
        bool in = false;
        if (cr->tz != NULL) {
            const sv_tz_local_t *lt = local_time(slots, cr->tz, rq->now);
            in = sv_authz_in_window(r->days, r->start_min, r->end_min, lt->wday, lt->hour * 60 + lt->minute);
        }
        out[SV_COND_TIME_WINDOW] = in ? SV_COND_PASS : SV_COND_FAIL;
    }
}

/* What the trace records per rule (or per unresolved binding). */
typedef struct {
    unsigned pol;
    int rule; /* -1: an unresolved group binding */
    int via;  /* binding_t.via */
    bool matched_path, permission_granted;
    uint8_t cond[SV_COND_COUNT_];
    bool decisive;
} titem_t;

struct sv_authz_trace {
    ientry_t *entry; /* owned */
    titem_t *items;
    unsigned n, cap;
    struct {
        unsigned pol;
        const char *group; /* points into the set */
    } * potential;         /* policies bound to groups the cache does not know at all */
    unsigned n_potential;
    binding_t *unresolved; /* every binding through a group in entry->unknown (via indexes it), in policy order,
                            * also of policies that apply through another binding */
    unsigned n_unresolved;
    bool oom;
};

static void trace_add(sv_authz_trace_t *tr, const titem_t *it)
{
    if (tr->n == tr->cap) {
        unsigned cap = tr->cap ? tr->cap * 2 : 16;
        titem_t *ni = realloc(tr->items, cap * sizeof(titem_t));
        if (ni == NULL) {
            tr->oom = true;
            return;
        }
        tr->items = ni;
        tr->cap = cap;
    }
    tr->items[tr->n++] = *it;
}

/* The one decision procedure (see authz.h). tr NULL: the fast path. */
static void evaluate(const ientry_t *e, const sv_authz_request_t *rq, sv_authz_result_t *res, sv_authz_trace_t *tr)
{
    res->outcome = SV_AUTHZ_NO_POLICY_MATCHED;
    res->failed_condition = -1;
    res->decision_by[0] = 0;
    res->decision_rule = -1;
    sv_path_segs_t segs;
    bool path_ok = sv_path_split(rq->path, rq->path_len, &segs);
    local_slot_t slots[4] = {{0}};
    const tset_t *set = e->set;
    /* a change to a partner secret is the partner admins' (authorize.c): no allow rule counts */
    bool partner_change = rq->partner && (rq->perm & SV_PERM_CHANGES) != 0;
    int allow_pol = -1, allow_rule = -1, deny_pol = -1, deny_rule = -1, deny_cond = -1;
    int near_pol = -1, near_rule = -1, near_cond = -1, near_fails = SV_COND_COUNT_ + 1;
    unsigned allow_item = 0, deny_item = 0, near_item = 0;

    for (unsigned bi = 0; bi < e->n_bound; bi++) {
        const cpolicy_t *cp = &set->pols[e->bound[bi].pol];
        for (unsigned ri = 0; ri < cp->def->n_rules; ri++) {
            const crule_t *cr = &cp->rules[ri];
            titem_t it = {.pol = e->bound[bi].pol, .rule = (int)ri, .via = e->bound[bi].via};
            it.permission_granted = (cr->def->perms & rq->perm) != 0;
            if (tr == NULL && !it.permission_granted)
                continue;
            it.matched_path = path_ok && cr->partner == rq->partner && sv_pattern_match(&cr->pat, &segs);
            if (tr == NULL && !it.matched_path)
                continue;
            check_conditions(cr, rq, slots, it.cond);
            if (it.permission_granted && it.matched_path) {
                int fails = 0, first_fail = -1;
                for (int c = 0; c < SV_COND_COUNT_; c++)
                    if (it.cond[c] == SV_COND_FAIL && fails++ == 0)
                        first_fail = c;
                bool has_conditions = cr->def->has_ip_allow || cr->def->mfa_required || cr->def->has_time_window;
                if (cr->def->deny) {
                    if ((!has_conditions || fails > 0) && deny_pol < 0) {
                        deny_pol = (int)it.pol;
                        deny_rule = (int)ri;
                        deny_cond = first_fail;
                        deny_item = tr != NULL ? tr->n : 0;
                        if (tr == NULL)
                            goto decide; /* deny wins: nothing later can change the answer */
                    }
                } else if (partner_change) {
                    /* grants nothing here; item_reason says why */
                } else if (fails == 0) {
                    if (allow_pol < 0) {
                        allow_pol = (int)it.pol;
                        allow_rule = (int)ri;
                        allow_item = tr != NULL ? tr->n : 0;
                    }
                } else if (fails < near_fails) {
                    near_fails = fails;
                    near_pol = (int)it.pol;
                    near_rule = (int)ri;
                    near_cond = first_fail;
                    near_item = tr != NULL ? tr->n : 0;
                }
            }
            if (tr != NULL)
                trace_add(tr, &it);
        }
    }
    if (tr != NULL) {
        for (unsigned ui = 0; ui < tr->n_unresolved; ui++) {
            titem_t it = {.pol = tr->unresolved[ui].pol, .rule = -1, .via = tr->unresolved[ui].via};
            trace_add(tr, &it);
        }
    }
decide:
    if (partner_change && !(e->found && !e->active)) {
        /* what a real request is refused with, after the identity's own state */
        res->outcome = SV_AUTHZ_PARTNER_ADMIN_REQUIRED;
        return;
    }
    if (deny_pol >= 0) {
        res->outcome = deny_cond >= 0 ? SV_AUTHZ_CONDITION_FAILED : SV_AUTHZ_EXPLICIT_DENY;
        res->failed_condition = deny_cond;
        snprintf(res->decision_by, sizeof(res->decision_by), "%s", set->pols[deny_pol].def->name);
        res->decision_rule = deny_rule;
        if (tr != NULL && deny_item < tr->n)
            tr->items[deny_item].decisive = true;
    } else if (allow_pol >= 0) {
        res->outcome = SV_AUTHZ_ALLOWED;
        snprintf(res->decision_by, sizeof(res->decision_by), "%s", set->pols[allow_pol].def->name);
        res->decision_rule = allow_rule;
        if (tr != NULL && allow_item < tr->n)
            tr->items[allow_item].decisive = true;
    } else if (near_pol >= 0) {
        res->outcome = SV_AUTHZ_CONDITION_FAILED;
        res->failed_condition = near_cond;
        snprintf(res->decision_by, sizeof(res->decision_by), "%s", set->pols[near_pol].def->name);
        res->decision_rule = near_rule;
        if (tr != NULL && near_item < tr->n)
            tr->items[near_item].decisive = true;
    }
    if (e->found && !e->active) {
        res->outcome = SV_AUTHZ_IDENTITY_INACTIVE;
        res->failed_condition = -1;
        res->decision_by[0] = 0;
        res->decision_rule = -1;
    }
}

sv_err_t sv_authz_check(sv_policy_t *pe, sv_store_reader_t *reader, const sv_authz_request_t *rq,
                        sv_authz_result_t *res)
{
    ientry_t *e;
    sv_err_t err = cache_entry(pe, reader, rq->tenant, rq->identity_id, &e);
    if (err != SV_OK) {
        res->outcome = SV_AUTHZ_NO_POLICY_MATCHED;
        res->failed_condition = -1;
        res->decision_by[0] = 0;
        res->decision_rule = -1;
        return err;
    }
    evaluate(e, rq, res, NULL);
    return SV_OK;
}

sv_err_t sv_authz_identity_inactive(sv_policy_t *pe, sv_store_reader_t *reader, const char *tenant, const char *id,
                                    bool *inactive)
{
    ientry_t *e;
    *inactive = false;
    sv_err_t err = cache_entry(pe, reader, tenant, id, &e);
    if (err == SV_OK)
        *inactive = e->found && !e->active;
    return err;
}

/* Whether some allow rule of cp lists the permission and matches the path. */
static bool would_grant(const cpolicy_t *cp, const sv_authz_request_t *rq, const sv_path_segs_t *segs)
{
    for (unsigned j = 0; j < cp->def->n_rules; j++) {
        const crule_t *cr = &cp->rules[j];
        if (!cr->def->deny && (cr->def->perms & rq->perm) && cr->partner == rq->partner &&
            sv_pattern_match(&cr->pat, segs))
            return true;
    }
    return false;
}

/* Policies that would grant this request but are bound only to groups that
 * have no record at all (and the cache does not list the identity in them):
 * the "sync first" hint. */
static sv_err_t find_potential(sv_txn_t *tx, const ientry_t *e, const sv_authz_request_t *rq, sv_authz_trace_t *tr)
{
    const tset_t *set = e->set;
    sv_path_segs_t segs;
    if (!sv_path_split(rq->path, rq->path_len, &segs))
        return SV_OK;
    for (unsigned i = 0; i < set->n; i++) {
        bool bound = false;
        for (unsigned b = 0; b < e->n_bound && !bound; b++)
            bound = e->bound[b].pol == i;
        for (unsigned b = 0; b < tr->n_unresolved && !bound; b++)
            bound = tr->unresolved[b].pol == i;
        if (bound || !would_grant(&set->pols[i], rq, &segs))
            continue;
        const cpolicy_t *cp = &set->pols[i];
        for (unsigned g = 0; g < cp->def->n_groups; g++) {
            sv_group_rec_t rec;
            sv_err_t err = sv_group_get(tx, e->tenant, cp->groups[g], &rec);
            if (err == SV_OK)
                continue;
            if (err != SV_ENOTFOUND)
                return err;
            void *np = realloc(tr->potential, (tr->n_potential + 1) * sizeof(*tr->potential));
            if (np == NULL)
                return SV_ENOMEM;
            tr->potential = np;
            tr->potential[tr->n_potential].pol = i;
            tr->potential[tr->n_potential].group = cp->groups[g];
            tr->n_potential++;
        }
    }
    return SV_OK;
}

/* Every binding through a group that the cache lists the identity in but has
 * no record of. entry_build records such a binding only for a policy that
 * applies through no other binding, and then only its first group; the trace
 * reports each one, since each grants nothing on its own. */
static sv_err_t find_unresolved(const ientry_t *e, sv_authz_trace_t *tr)
{
    const tset_t *set = e->set;
    for (unsigned i = 0; i < set->n; i++) {
        const cpolicy_t *cp = &set->pols[i];
        for (unsigned g = 0; g < e->n_unknown; g++)
            if (sorted_has(cp->groups, cp->def->n_groups, e->unknown[g]) &&
                !push_binding(&tr->unresolved, &tr->n_unresolved, i, (int)g))
                return SV_ENOMEM;
    }
    return SV_OK;
}

sv_err_t sv_authz_explain(sv_policy_t *pe, sv_store_reader_t *reader, const sv_authz_request_t *rq,
                          sv_authz_result_t *res, sv_authz_trace_t **trace)
{
    (void)pe;
    *trace = NULL;
    sv_authz_trace_t *tr = calloc(1, sizeof(*tr));
    if (tr == NULL)
        return SV_ENOMEM;
    uint64_t pgen = sv_policy_generation(rq->tenant), igen = sv_identity_generation();
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(reader, &tx);
    if (err != SV_OK) {
        free(tr);
        return err;
    }
    tset_t *set = NULL;
    if ((err = set_build(tx, rq->tenant, pgen, &set)) == SV_OK) {
        err = entry_build(tx, set, rq->tenant, rq->identity_id, pgen, igen, &tr->entry);
        set_release(set); /* the entry holds its own reference */
    }
    if (err == SV_OK)
        err = find_unresolved(tr->entry, tr);
    if (err == SV_OK)
        err = find_potential(tx, tr->entry, rq, tr);
    sv_store_read_end(reader);
    if (err == SV_OK) {
        evaluate(tr->entry, rq, res, tr);
        if (tr->oom)
            err = SV_ENOMEM;
    }
    if (err != SV_OK) {
        sv_authz_trace_free(tr);
        return err;
    }
    *trace = tr;
    return SV_OK;
}

void sv_authz_trace_free(sv_authz_trace_t *tr)
{
    if (tr == NULL)
        return;
    entry_free(tr->entry);
    free(tr->items);
    free(tr->potential);
    free(tr->unresolved);
    free(tr);
}

/* ---- the trace in words ---- */

static void perms_text(sv_buf_t *b, uint32_t perms)
{
    bool first = true;
    for (unsigned i = 0; i < 6; i++) {
        if (perms & (1u << i)) {
            sv_buf_printf(b, "%s%s", first ? "" : ", ", sv_perm_name((sv_perm_t)(1u << i)));
            first = false;
        }
    }
}

static void days_text(sv_buf_t *b, uint8_t days)
{
    if (days == SV_DAYS_ALL) {
        sv_buf_puts(b, "every day");
        return;
    }
    bool first = true;
    for (unsigned d = 1; d <= 7; d++)
        if (days & (1u << (d % 7))) {
            sv_buf_printf(b, "%s%s", first ? "" : ",", sv_policy_day_name(d % 7));
            first = false;
        }
}

static void condition_text(sv_buf_t *b, int c, const crule_t *cr, const sv_authz_request_t *rq)
{
    const sv_policy_rule_t *r = cr->def;
    if (c == SV_COND_IP_ALLOW) {
        if (!rq->has_ip) {
            sv_buf_puts(b, "ip_allow: no client address is known");
        } else {
            char ip[46];
            sv_ip_format(&rq->ip, ip);
            sv_buf_printf(b, "ip_allow: client address %s is not in ", ip);
            for (unsigned i = 0; i < r->n_ip_allow; i++)
                sv_buf_printf(b, "%s%s", i ? ", " : "", r->ip_allow_text[i]);
        }
    } else if (c == SV_COND_MFA_REQUIRED) {
        sv_buf_puts(b, "mfa_required: the token was issued without multi-factor authentication (amr lacks \"mfa\")");
    } else {
        sv_buf_printf(b, "time_window: ");
        if (cr->tz == NULL) {
            sv_buf_printf(b, "time zone %s cannot be loaded from the tz database", r->timezone);
            return;
        }
        static const char *const wd[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
        sv_tz_local_t lt;
        sv_tz_local(cr->tz, rq->now, &lt);
        sv_buf_printf(b, "local time %s %04d-%02d-%02d %02d:%02d (%s) is outside ", wd[lt.wday], lt.year, lt.month,
                      lt.day, lt.hour, lt.minute, r->timezone);
        days_text(b, r->days);
        sv_buf_printf(b, " %02u:%02u-%02u:%02u", r->start_min / 60, r->start_min % 60, r->end_min / 60,
                      r->end_min % 60);
        if (r->end_min < r->start_min)
            sv_buf_puts(b, " (crossing midnight: it belongs to the day it starts on)");
    }
}

static void failed_conditions_text(sv_buf_t *b, const titem_t *it, const crule_t *cr, const sv_authz_request_t *rq)
{
    bool first = true;
    for (int c = 0; c < SV_COND_COUNT_; c++) {
        if (it->cond[c] != SV_COND_FAIL)
            continue;
        sv_buf_puts(b, first ? "" : "; ");
        condition_text(b, c, cr, rq);
        first = false;
    }
}

/* A hint for a path that '*' misses but '**' would reach. */
static void star_hint(sv_buf_t *b, const crule_t *cr, const sv_authz_request_t *rq)
{
    const char *pat = cr->pat.text;
    size_t len = strlen(pat);
    char alt[2 * SV_PATH_MAX + 2];
    size_t o = 0;
    bool changed = false;
    for (size_t i = 0; i < len && o + 3 < sizeof(alt); i++) {
        bool seg_start = i == 0 || pat[i - 1] == '/';
        bool lone_star = pat[i] == '*' && seg_start && (i + 1 == len || pat[i + 1] == '/');
        alt[o++] = pat[i];
        if (lone_star) {
            alt[o++] = '*';
            changed = true;
        }
    }
    alt[o] = 0;
    if (!changed)
        return;
    char path[SV_PATH_MAX + 1];
    snprintf(path, sizeof(path), "%.*s", (int)rq->path_len, rq->path);
    if (sv_pattern_match_str(alt, path))
        sv_buf_printf(b, " ('*' matches exactly one segment; '%s%s' would match nested paths)",
                      cr->partner ? SV_PARTNER_PATTERN_PREFIX : "", alt);
}

static void item_reason(sv_buf_t *b, const sv_authz_trace_t *tr, const titem_t *it, const sv_authz_request_t *rq)
{
    const ientry_t *e = tr->entry;
    const cpolicy_t *cp = &e->set->pols[it->pol];
    if (it->rule < 0) {
        sv_buf_printf(b,
                      "bound through group '%s', which is not in the identity cache: this binding grants nothing. "
                      "Fix: POST /v1/identity/sync?tenant_id=%s",
                      e->unknown[it->via], e->tenant);
        return;
    }
    const crule_t *cr = &cp->rules[it->rule];
    const char *perm = sv_perm_name(rq->perm);
    if (!it->matched_path) {
        if (cr->partner != rq->partner)
            sv_buf_printf(b,
                          cr->partner ? "the rule's path '%s' is for partner secrets; the path is a tenant secret"
                                      : "the path is a partner secret; rule path '%s' is for tenant secrets "
                                        "(partner rules start with '@partner/')",
                          cr->def->path);
        else {
            sv_buf_printf(b, "path pattern '%s' does not match '%.*s'", cr->def->path, (int)rq->path_len, rq->path);
            star_hint(b, cr, rq);
        }
        if (!it->permission_granted) {
            sv_buf_printf(b, "; it also does not grant '%s' (it grants ", perm);
            perms_text(b, cr->def->perms);
            sv_buf_puts(b, ")");
        }
        return;
    }
    if (!it->permission_granted) {
        sv_buf_printf(b, "path matches, but the rule does not grant '%s' (it grants ", perm);
        perms_text(b, cr->def->perms);
        sv_buf_puts(b, ")");
        return;
    }
    if (rq->partner && (rq->perm & SV_PERM_CHANGES)) {
        sv_buf_printf(b,
                      "the rule %s '%s', but policies do not decide changes to partner secrets: the role "
                      "partner_admin does",
                      cr->def->deny ? "denies" : "grants", perm);
        return;
    }
    bool any_fail = false;
    for (int c = 0; c < SV_COND_COUNT_; c++)
        any_fail |= it->cond[c] == SV_COND_FAIL;
    bool has_conditions = cr->def->has_ip_allow || cr->def->mfa_required || cr->def->has_time_window;
    if (cr->def->deny) {
        if (!has_conditions)
            sv_buf_printf(b, "explicit deny of '%s': deny wins over every allow", perm);
        else if (any_fail) {
            sv_buf_printf(b, "deny rule applies (a deny rule denies unless all its conditions hold): ");
            failed_conditions_text(b, it, cr, rq);
        } else
            sv_buf_puts(b, "deny rule does not apply: all of its conditions hold");
        return;
    }
    if (any_fail) {
        sv_buf_printf(b, "path and permission match, but a condition failed: ");
        failed_conditions_text(b, it, cr, rq);
        return;
    }
    sv_buf_printf(b, "grants '%s'%s", perm, has_conditions ? " (all conditions hold)" : "");
    if (!it->decisive)
        sv_buf_puts(b, "; an earlier rule already decided");
}

static void write_item(sv_jw_t *jw, const sv_authz_trace_t *tr, const titem_t *it, const sv_authz_request_t *rq)
{
    const ientry_t *e = tr->entry;
    const cpolicy_t *cp = &e->set->pols[it->pol];
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "policy");
    sv_jw_cstr(jw, cp->def->name);
    sv_jw_key(jw, "rule");
    if (it->rule >= 0)
        sv_jw_int(jw, it->rule);
    else
        sv_jw_null(jw);
    sv_jw_key(jw, "bound_by");
    char via[SV_GROUP_ID_MAX + 8];
    if (it->via < 0)
        snprintf(via, sizeof(via), "identity");
    else
        snprintf(via, sizeof(via), "group:%s", it->rule < 0 ? e->unknown[it->via] : e->groups[it->via]);
    sv_jw_cstr(jw, via);
    sv_jw_key(jw, "path");
    sv_jw_cstr(jw, it->rule >= 0 ? cp->def->rules[it->rule].path : NULL);
    sv_jw_key(jw, "effect");
    sv_jw_cstr(jw, it->rule >= 0 ? (cp->def->rules[it->rule].deny ? "deny" : "allow") : NULL);
    sv_jw_key(jw, "matched_path");
    sv_jw_bool(jw, it->matched_path);
    sv_jw_key(jw, "permission_granted");
    sv_jw_bool(jw, it->permission_granted);
    sv_jw_key(jw, "conditions");
    sv_jw_obj_begin(jw);
    static const char *const words[] = {"n/a", "pass", "fail"};
    for (int c = 0; c < SV_COND_COUNT_; c++) {
        sv_jw_key(jw, sv_authz_condition_name(c));
        sv_jw_cstr(jw, words[it->cond[c]]);
    }
    sv_jw_obj_end(jw);
    sv_jw_key(jw, "decisive");
    sv_jw_bool(jw, it->decisive);
    sv_buf_t reason;
    sv_buf_init(&reason, false);
    item_reason(&reason, tr, it, rq);
    sv_jw_key(jw, "reason");
    sv_jw_str(jw, reason.base != NULL && !reason.failed ? (const char *)reason.base : "",
              reason.failed ? 0 : reason.len);
    sv_buf_free(&reason);
    if (it->rule < 0) {
        char fix[SV_TENANT_MAX + 48];
        snprintf(fix, sizeof(fix), "POST /v1/identity/sync?tenant_id=%s", e->tenant);
        sv_jw_key(jw, "fix");
        sv_jw_cstr(jw, fix);
    }
    sv_jw_obj_end(jw);
}

/* Whether the rule that decided res is a deny rule. */
static bool tr_rule_is_deny(const sv_authz_trace_t *tr, const sv_authz_result_t *res)
{
    for (unsigned i = 0; i < tr->n; i++)
        if (tr->items[i].decisive && tr->items[i].rule >= 0)
            return tr->entry->set->pols[tr->items[i].pol].def->rules[tr->items[i].rule].deny;
    (void)res;
    return false;
}

static void summary(sv_buf_t *b, const sv_authz_trace_t *tr, const sv_authz_request_t *rq, const sv_authz_result_t *res)
{
    const ientry_t *e = tr->entry;
    const char *perm = sv_perm_name(rq->perm);
    switch (res->outcome) {
    case SV_AUTHZ_ALLOWED:
        sv_buf_printf(b, "allowed by policy '%s' (rule %d)", res->decision_by, res->decision_rule);
        return;
    case SV_AUTHZ_EXPLICIT_DENY:
        sv_buf_printf(b, "denied by an explicit deny in policy '%s' (rule %d); deny wins over every allow",
                      res->decision_by, res->decision_rule);
        return;
    case SV_AUTHZ_IDENTITY_INACTIVE:
        sv_buf_printf(b, "denied: identity '%s' is inactive in the identity cache", e->id);
        return;
    case SV_AUTHZ_CONDITION_FAILED:
        if (res->decision_rule >= 0 && tr_rule_is_deny(tr, res))
            sv_buf_printf(b,
                          "denied by policy '%s' (rule %d): a deny rule that applies because its condition %s failed",
                          res->decision_by, res->decision_rule, sv_authz_condition_name(res->failed_condition));
        else
            sv_buf_printf(b,
                          "denied: policy '%s' (rule %d) would grant '%s' on this path, but its condition %s "
                          "failed (%s)",
                          res->decision_by, res->decision_rule, perm, sv_authz_condition_name(res->failed_condition),
                          sv_authz_failed_condition_code(res->failed_condition));
        return;
    case SV_AUTHZ_PARTNER_ADMIN_REQUIRED:
        sv_buf_printf(b,
                      "denied: policies never grant '%s' on a partner secret; only a token with the role "
                      "partner_admin of the tenant's partner may, and it needs no policy",
                      perm);
        return;
    case SV_AUTHZ_NO_POLICY_MATCHED:
        break;
    }
    if (e->n_bound == 0) {
        if (!e->found)
            sv_buf_printf(b,
                          "denied: identity '%s' is not in the identity cache, so it has no groups, and no policy "
                          "binds it directly",
                          e->id);
        else
            sv_buf_printf(b, "denied: no policy is bound to '%s', directly or through its %u group(s)", e->id,
                          e->n_groups);
    } else {
        sv_buf_printf(b, "denied: none of the %u polic%s bound to '%s' has a rule that grants '%s' on '%.*s'",
                      e->n_bound, e->n_bound == 1 ? "y" : "ies", e->id, perm, (int)rq->path_len, rq->path);
    }
    if (tr->n_unresolved > 0 || tr->n_potential > 0)
        sv_buf_printf(b,
                      "; %u binding(s) name groups the identity cache does not know (see unresolved_groups): "
                      "run POST /v1/identity/sync?tenant_id=%s",
                      tr->n_unresolved + tr->n_potential, e->tenant);
}

static void write_unresolved(sv_jw_t *jw, const sv_authz_trace_t *tr)
{
    const ientry_t *e = tr->entry;
    char fix[SV_TENANT_MAX + 48];
    snprintf(fix, sizeof(fix), "POST /v1/identity/sync?tenant_id=%s", e->tenant);
    sv_jw_arr_begin(jw);
    for (unsigned i = 0; i < tr->n_unresolved; i++) {
        sv_jw_obj_begin(jw);
        sv_jw_key(jw, "group");
        sv_jw_cstr(jw, e->unknown[tr->unresolved[i].via]);
        sv_jw_key(jw, "policy");
        sv_jw_cstr(jw, e->set->pols[tr->unresolved[i].pol].def->name);
        sv_jw_key(jw, "member");
        sv_jw_bool(jw, true);
        sv_jw_key(jw, "reason");
        sv_jw_cstr(jw, "the identity is listed as a member, but the group itself is not in the identity cache");
        sv_jw_key(jw, "fix");
        sv_jw_cstr(jw, fix);
        sv_jw_obj_end(jw);
    }
    for (unsigned i = 0; i < tr->n_potential; i++) {
        sv_jw_obj_begin(jw);
        sv_jw_key(jw, "group");
        sv_jw_cstr(jw, tr->potential[i].group);
        sv_jw_key(jw, "policy");
        sv_jw_cstr(jw, e->set->pols[tr->potential[i].pol].def->name);
        sv_jw_key(jw, "member");
        sv_jw_bool(jw, false);
        sv_jw_key(jw, "reason");
        sv_jw_cstr(jw, "this policy would grant the request, but it is bound to this group, which is not in the "
                       "identity cache, so nobody gets it through the group; if the identity belongs to it in "
                       "ScaiKey, sync the cache");
        sv_jw_key(jw, "fix");
        sv_jw_cstr(jw, fix);
        sv_jw_obj_end(jw);
    }
    sv_jw_arr_end(jw);
}

static void write_strings(sv_jw_t *jw, const char *key, char *const *list, unsigned n)
{
    sv_jw_key(jw, key);
    sv_jw_arr_begin(jw);
    for (unsigned i = 0; i < n; i++)
        sv_jw_cstr(jw, list[i]);
    sv_jw_arr_end(jw);
}

void sv_authz_trace_write(const sv_authz_trace_t *tr, const sv_authz_request_t *rq, const sv_authz_result_t *res,
                          sv_jw_t *jw)
{
    const ientry_t *e = tr->entry;
    sv_jw_key(jw, "allowed");
    sv_jw_bool(jw, res->outcome == SV_AUTHZ_ALLOWED);
    sv_jw_key(jw, "decision_by");
    sv_jw_cstr(jw, res->decision_by[0] ? res->decision_by : NULL);
    sv_jw_key(jw, "outcome");
    sv_jw_cstr(jw, sv_authz_outcome_reason(res->outcome));
    sv_jw_key(jw, "failed_condition");
    sv_jw_cstr(jw, res->failed_condition >= 0 ? sv_authz_failed_condition_code(res->failed_condition) : NULL);
    sv_buf_t b;
    sv_buf_init(&b, false);
    summary(&b, tr, rq, res);
    sv_jw_key(jw, "reason");
    sv_jw_str(jw, b.base != NULL && !b.failed ? (const char *)b.base : "", b.failed ? 0 : b.len);
    sv_buf_free(&b);
    sv_jw_key(jw, "evaluated");
    sv_jw_arr_begin(jw);
    for (unsigned i = 0; i < tr->n; i++)
        write_item(jw, tr, &tr->items[i], rq);
    sv_jw_arr_end(jw);
    sv_jw_key(jw, "unresolved_groups");
    write_unresolved(jw, tr);
    sv_jw_key(jw, "identity");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "id");
    sv_jw_cstr(jw, e->id);
    sv_jw_key(jw, "found");
    sv_jw_bool(jw, e->found);
    sv_jw_key(jw, "active");
    sv_jw_bool(jw, e->active);
    write_strings(jw, "groups", e->groups, e->n_groups);
    write_strings(jw, "unknown_groups", e->unknown, e->n_unknown);
    if (!e->found) {
        sv_jw_key(jw, "note");
        char note[SV_TENANT_MAX + 200];
        snprintf(note, sizeof(note),
                 "not in the identity cache: group memberships come only from the cache; run "
                 "POST /v1/identity/sync?tenant_id=%s if it exists in ScaiKey",
                 e->tenant);
        sv_jw_cstr(jw, note);
    }
    sv_jw_obj_end(jw);
}
