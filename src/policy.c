/*
 * policy.c - the policy model (policy.h): validation, JSON, records, storage.
 *
 * The design choice: one validator. A policy from a request body and a
 * policy read back from storage go through the same checks (pattern, CIDR,
 * day, time, zone), so a stored record that would not pass as input is
 * reported as corrupt rather than evaluated. Each policy lives in one arena
 * (a short list of chunks) so that building, copying into a cache and
 * freeing it cost a few allocations.
 *
 * Validation and JSON run on HTTP workers; the *_tx functions on the writer
 * thread inside an apply; reads on any thread in any transaction.
 */
#include "sv_autoconf.h"

#include "src/policy.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/identity.h"
#include "src/pattern.h"
#include "src/tz.h"
#include "store/key.h"

#define POLICY_RECORD_V1 1
#define ARENA_CHUNK 2048

/* A tenant's generation is the global counter plus its hashed slot: both
 * only grow, so the sum does, and a change in one tenant leaves the compiled
 * policies of (almost) every other tenant valid. */
#define GEN_SLOTS 64
static _Atomic uint64_t generation = 1;
static _Atomic uint64_t tenant_generation[GEN_SLOTS];

static unsigned gen_slot(const char *tenant)
{
    uint32_t h = 2166136261u;
    for (; *tenant; tenant++)
        h = (h ^ (uint8_t)*tenant) * 16777619u;
    return h % GEN_SLOTS;
}

uint64_t sv_policy_generation(const char *tenant)
{
    return atomic_load_explicit(&generation, memory_order_acquire) +
           atomic_load_explicit(&tenant_generation[gen_slot(tenant)], memory_order_acquire);
}

void sv_policy_bump_tenant_generation(const char *tenant)
{
    atomic_fetch_add_explicit(&tenant_generation[gen_slot(tenant)], 1, memory_order_acq_rel);
}

void sv_policy_bump_generation(void)
{
    atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
}

/* ---- arena ---- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) uint8_t data[];
} chunk_t;

static void *arena_alloc(sv_policy_def_t *p, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk_t *c = p->arena_;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof(chunk_t) + cap);
        if (c == NULL)
            return NULL;
        c->next = p->arena_;
        c->used = 0;
        c->cap = cap;
        p->arena_ = c;
    }
    void *r = c->data + c->used;
    c->used += n;
    memset(r, 0, n);
    return r;
}

static char *arena_strdup(sv_policy_def_t *p, const char *s, size_t len)
{
    char *d = arena_alloc(p, len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

static sv_policy_def_t *def_new(void)
{
    return calloc(1, sizeof(sv_policy_def_t));
}

void sv_policy_def_free(sv_policy_def_t *p)
{
    if (p == NULL)
        return;
    for (chunk_t *c = p->arena_, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(p);
}

/* ---- small validators shared by input and records ---- */

bool sv_policy_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > SV_POLICY_NAME_MAX)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const char *sv_policy_day_name(unsigned i)
{
    return i < 7 ? day_names[i] : NULL;
}

static int day_from_name(const char *s, size_t len)
{
    for (int i = 0; i < 7; i++)
        if (len == 3 && memcmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

/* "HH:MM"; 24:00 only when allow_24. Returns minutes or -1. */
static int parse_hhmm(const char *s, size_t len, bool allow_24)
{
    if (len != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!allow_24 || m != 0)))
        return -1;
    return h * 60 + m;
}

/* Checks a rule's pattern; partner patterns are checked after their prefix. */
static sv_err_t check_rule_path(const char *s, size_t len, const char **why)
{
    size_t pl = strlen(SV_PARTNER_PATTERN_PREFIX);
    if (len > 0 && s[0] == '@') {
        if (len <= pl || memcmp(s, SV_PARTNER_PATTERN_PREFIX, pl) != 0) {
            *why = "a pattern that starts with '@' must start with '@partner/' (partner secrets)";
            return SV_EINVAL;
        }
        return sv_pattern_check(s + pl, len - pl, why);
    }
    return sv_pattern_check(s, len, why);
}

static sv_err_t check_zone(const char *s, size_t len, const char **why)
{
    const sv_tz_t *tz;
    if (!sv_tz_name_valid(s, len)) {
        *why = "timezone must be an IANA zone name such as \"Europe/Berlin\" or \"UTC\"";
        return SV_EINVAL;
    }
    sv_err_t err = sv_tz_get(s, &tz);
    if (err == SV_ENOMEM)
        return err;
    if (err != SV_OK) {
        *why = "timezone is not a zone of the tz database (such as \"Europe/Berlin\" or \"UTC\")";
        return SV_EINVAL;
    }
    return SV_OK;
}

/* ---- JSON input ---- */

typedef struct {
    sv_policy_error_t *e;
    char field[192]; /* the field being checked */
} vctx_t;

static sv_err_t fail(vctx_t *v, const char *field_suffix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static sv_err_t fail(vctx_t *v, const char *field_suffix, const char *fmt, ...)
{
    snprintf(v->e->field, sizeof(v->e->field), "%s%s", v->field, field_suffix != NULL ? field_suffix : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->e->message, sizeof(v->e->message), fmt, ap);
    va_end(ap);
    return SV_EINVAL;
}

/* Appends ".key" or "[i]" to the current field; returns the old length to restore. */
static size_t field_push(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t field_push(vctx_t *v, const char *fmt, ...)
{
    size_t old = strlen(v->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->field + old, sizeof(v->field) - old, fmt, ap);
    va_end(ap);
    return old;
}

static void field_pop(vctx_t *v, size_t old)
{
    v->field[old] = 0;
}

/* Rejects members of obj not in allowed (NULL-terminated). */
static sv_err_t only_keys(vctx_t *v, const sv_json_t *obj, const char *const *allowed)
{
    for (const sv_json_t *k = obj->u.kids.first; k != NULL; k = k->next) {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(*a, k->key) == 0;
        if (!ok) {
            size_t old = field_push(v, "%s%s", v->field[0] ? "." : "", k->key);
            sv_err_t err = fail(v, NULL, "Unknown field.");
            field_pop(v, old);
            return err;
        }
    }
    return SV_OK;
}

/* Checks that member key of obj, when present, has type t. */
static const sv_json_t *member(vctx_t *v, const sv_json_t *obj, const char *key, sv_json_type_t t, bool required,
                               sv_err_t *err)
{
    static const char *const type_names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    const sv_json_t *m = sv_json_get(obj, key);
    *err = SV_OK;
    if (m == NULL && required) {
        size_t old = field_push(v, "%s%s", v->field[0] ? "." : "", key);
        *err = fail(v, NULL, "This field is required.");
        field_pop(v, old);
        return NULL;
    }
    if (m != NULL && m->type != t) {
        size_t old = field_push(v, "%s%s", v->field[0] ? "." : "", key);
        *err = fail(v, NULL, "Must be %s.", type_names[t]);
        field_pop(v, old);
        return NULL;
    }
    return m;
}

static bool has_string_dup(const sv_json_t *arr, const sv_json_t *item)
{
    for (const sv_json_t *o = arr->u.kids.first; o != item; o = o->next)
        if (o->u.str.len == item->u.str.len && memcmp(o->u.str.s, item->u.str.s, o->u.str.len) == 0)
            return true;
    return false;
}

/* An array of unique strings, each checked by ok(); copied into the arena. */
static sv_err_t string_list(vctx_t *v, sv_policy_def_t *p, const sv_json_t *arr, size_t max, const char *what,
                            bool (*ok)(const char *, size_t), char ***out, unsigned *n_out)
{
    if (arr->u.kids.n > max)
        return fail(v, NULL, "At most %zu %s.", max, what);
    char **list = arena_alloc(p, (arr->u.kids.n + 1) * sizeof(char *));
    if (list == NULL)
        return SV_ENOMEM;
    unsigned i = 0;
    for (const sv_json_t *it = arr->u.kids.first; it != NULL; it = it->next, i++) {
        char idx[16];
        snprintf(idx, sizeof(idx), "[%u]", i);
        if (it->type != SV_JSON_STRING)
            return fail(v, idx, "Must be a string.");
        if (!ok(it->u.str.s, it->u.str.len))
            return fail(v, idx, "Not a valid %s.", what);
        if (has_string_dup(arr, it))
            return fail(v, idx, "Listed twice.");
        if ((list[i] = arena_strdup(p, it->u.str.s, it->u.str.len)) == NULL)
            return SV_ENOMEM;
    }
    *out = list;
    *n_out = i;
    return SV_OK;
}

static sv_err_t parse_time_window(vctx_t *v, sv_policy_def_t *p, const sv_json_t *tw, sv_policy_rule_t *r)
{
    static const char *const keys[] = {"days", "start", "end", "timezone", NULL};
    sv_err_t err;
    if ((err = only_keys(v, tw, keys)) != SV_OK)
        return err;
    const sv_json_t *days = member(v, tw, "days", SV_JSON_ARRAY, false, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *start = member(v, tw, "start", SV_JSON_STRING, true, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *end = member(v, tw, "end", SV_JSON_STRING, true, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *zone = member(v, tw, "timezone", SV_JSON_STRING, false, &err);
    if (err != SV_OK)
        return err;
    r->has_time_window = true;
    r->days = SV_DAYS_ALL;
    if (days != NULL) {
        if (days->u.kids.n == 0)
            return fail(v, ".days", "List at least one day, or leave days out for every day.");
        r->days = 0;
        unsigned i = 0;
        for (const sv_json_t *d = days->u.kids.first; d != NULL; d = d->next, i++) {
            char idx[24];
            snprintf(idx, sizeof(idx), ".days[%u]", i);
            int day = d->type == SV_JSON_STRING ? day_from_name(d->u.str.s, d->u.str.len) : -1;
            if (day < 0)
                return fail(v, idx, "A day is one of mon, tue, wed, thu, fri, sat, sun.");
            if (r->days & (1u << day))
                return fail(v, idx, "Listed twice.");
            r->days |= (uint8_t)(1u << day);
        }
    }
    int s = parse_hhmm(start->u.str.s, start->u.str.len, false);
    if (s < 0)
        return fail(v, ".start", "start is \"HH:MM\", 00:00 to 23:59.");
    int e = parse_hhmm(end->u.str.s, end->u.str.len, true);
    if (e < 0)
        return fail(v, ".end", "end is \"HH:MM\", 00:00 to 24:00.");
    if (s == e)
        return fail(v, ".end", "end must differ from start (for the whole day, use 00:00 to 24:00).");
    r->start_min = (uint16_t)s;
    r->end_min = (uint16_t)(e == 0 ? 1440 : e); /* an end of 00:00 is the midnight that ends the day */
    const char *zn = zone != NULL ? zone->u.str.s : "UTC";
    size_t zl = zone != NULL ? zone->u.str.len : 3;
    const char *why = NULL;
    if ((err = check_zone(zn, zl, &why)) != SV_OK)
        return err == SV_EINVAL ? fail(v, ".timezone", "%s", why) : err;
    if ((r->timezone = arena_strdup(p, zn, zl)) == NULL)
        return SV_ENOMEM;
    return SV_OK;
}

static bool cidr_text_ok(const char *s, size_t len)
{
    sv_cidr_t c;
    return sv_cidr_parse(s, len, &c) == SV_OK;
}

static sv_err_t parse_conditions(vctx_t *v, sv_policy_def_t *p, const sv_json_t *c, sv_policy_rule_t *r)
{
    static const char *const keys[] = {"ip_allow", "mfa_required", "time_window", NULL};
    sv_err_t err;
    if ((err = only_keys(v, c, keys)) != SV_OK)
        return err;
    const sv_json_t *ips = member(v, c, "ip_allow", SV_JSON_ARRAY, false, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *mfa = member(v, c, "mfa_required", SV_JSON_BOOL, false, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *tw = member(v, c, "time_window", SV_JSON_OBJECT, false, &err);
    if (err != SV_OK)
        return err;
    if (ips != NULL) {
        size_t old = field_push(v, ".ip_allow");
        if (ips->u.kids.n == 0)
            return fail(v, NULL, "List at least one CIDR (an empty list would allow no address).");
        if ((err = string_list(v, p, ips, SV_POLICY_MAX_CIDRS,
                               "CIDR (such as 10.0.0.0/8 or 2001:db8::/32, host bits zero)", cidr_text_ok,
                               &r->ip_allow_text, &r->n_ip_allow)) != SV_OK)
            return err;
        field_pop(v, old);
        r->has_ip_allow = true;
        if ((r->ip_allow = arena_alloc(p, r->n_ip_allow * sizeof(sv_cidr_t))) == NULL)
            return SV_ENOMEM;
        for (unsigned i = 0; i < r->n_ip_allow; i++)
            sv_cidr_parse(r->ip_allow_text[i], strlen(r->ip_allow_text[i]), &r->ip_allow[i]);
    }
    r->mfa_required = mfa != NULL && mfa->u.b;
    if (tw != NULL) {
        size_t old = field_push(v, ".time_window");
        if ((err = parse_time_window(v, p, tw, r)) != SV_OK)
            return err;
        field_pop(v, old);
    }
    return SV_OK;
}

static sv_err_t parse_rule(vctx_t *v, sv_policy_def_t *p, const sv_json_t *rj, sv_policy_rule_t *r)
{
    static const char *const keys[] = {"path", "permissions", "effect", "conditions", NULL};
    sv_err_t err;
    if (rj->type != SV_JSON_OBJECT)
        return fail(v, NULL, "A rule is an object.");
    if ((err = only_keys(v, rj, keys)) != SV_OK)
        return err;
    const sv_json_t *path = member(v, rj, "path", SV_JSON_STRING, true, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *perms = member(v, rj, "permissions", SV_JSON_ARRAY, true, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *effect = member(v, rj, "effect", SV_JSON_STRING, false, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *conds = member(v, rj, "conditions", SV_JSON_OBJECT, false, &err);
    if (err != SV_OK)
        return err;

    const char *why = "bad pattern";
    if (check_rule_path(path->u.str.s, path->u.str.len, &why) != SV_OK)
        return fail(v, ".path", "Bad path pattern: %s.", why);
    if ((r->path = arena_strdup(p, path->u.str.s, path->u.str.len)) == NULL)
        return SV_ENOMEM;

    if (perms->u.kids.n == 0)
        return fail(v, ".permissions", "List at least one permission.");
    unsigned i = 0;
    for (const sv_json_t *pj = perms->u.kids.first; pj != NULL; pj = pj->next, i++) {
        char idx[32];
        snprintf(idx, sizeof(idx), ".permissions[%u]", i);
        sv_perm_t bit = pj->type == SV_JSON_STRING ? sv_perm_from_name(pj->u.str.s, pj->u.str.len) : 0;
        if (bit == 0)
            return fail(v, idx, "A permission is one of read, list, write, delete, rotate, admin.");
        if (r->perms & bit)
            return fail(v, idx, "Listed twice.");
        r->perms |= bit;
    }
    if (effect != NULL) {
        if (effect->u.str.len == 4 && memcmp(effect->u.str.s, "deny", 4) == 0)
            r->deny = true;
        else if (!(effect->u.str.len == 5 && memcmp(effect->u.str.s, "allow", 5) == 0))
            return fail(v, ".effect", "effect is \"allow\" or \"deny\".");
    }
    if (conds != NULL) {
        size_t old = field_push(v, ".conditions");
        if ((err = parse_conditions(v, p, conds, r)) != SV_OK)
            return err;
        field_pop(v, old);
    }
    return SV_OK;
}

static bool group_id_ok(const char *s, size_t len)
{
    return sv_group_id_valid(s, len);
}

static bool identity_id_ok(const char *s, size_t len)
{
    return sv_identity_id_valid(s, len);
}

static sv_err_t parse_bindings(vctx_t *v, sv_policy_def_t *p, const sv_json_t *b)
{
    static const char *const keys[] = {"identities", "groups", NULL};
    sv_err_t err;
    if ((err = only_keys(v, b, keys)) != SV_OK)
        return err;
    const sv_json_t *ids = member(v, b, "identities", SV_JSON_ARRAY, false, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *groups = member(v, b, "groups", SV_JSON_ARRAY, false, &err);
    if (err != SV_OK)
        return err;
    if (ids != NULL) {
        size_t old = field_push(v, ".identities");
        if ((err = string_list(v, p, ids, SV_POLICY_MAX_BINDINGS, "identity id (such as sa:billing)", identity_id_ok,
                               &p->identities, &p->n_identities)) != SV_OK)
            return err;
        field_pop(v, old);
    }
    if (groups != NULL) {
        size_t old = field_push(v, ".groups");
        if ((err = string_list(v, p, groups, SV_POLICY_MAX_BINDINGS, "group id ([A-Za-z0-9_.:@-], 1 to 127 bytes)",
                               group_id_ok, &p->groups, &p->n_groups)) != SV_OK)
            return err;
        field_pop(v, old);
    }
    return SV_OK;
}

sv_err_t sv_policy_from_json(const sv_json_t *root, const char *name, sv_policy_def_t **out, sv_policy_error_t *e)
{
    static const char *const keys[] = {"name",       "description", "rules",   "bindings",
                                       "created_at", "updated_at",  "version", NULL};
    vctx_t v = {.e = e};
    memset(e, 0, sizeof(*e));
    *out = NULL;
    if (root == NULL || root->type != SV_JSON_OBJECT) {
        snprintf(e->field, sizeof(e->field), "body");
        snprintf(e->message, sizeof(e->message), "The body must be a JSON object.");
        return SV_EINVAL;
    }
    if (!sv_policy_name_valid(name, strlen(name))) {
        snprintf(e->field, sizeof(e->field), "name");
        snprintf(e->message, sizeof(e->message), "A policy name is 1 to 128 bytes of A-Z a-z 0-9 _ . -");
        return SV_EINVAL;
    }
    sv_err_t err;
    if ((err = only_keys(&v, root, keys)) != SV_OK)
        return err;
    const sv_json_t *nm = member(&v, root, "name", SV_JSON_STRING, false, &err);
    if (err != SV_OK)
        return err;
    if (nm != NULL && (nm->u.str.len != strlen(name) || memcmp(nm->u.str.s, name, nm->u.str.len) != 0))
        return fail(&v, "name", "name must equal the name in the URL.");
    const sv_json_t *desc = sv_json_get(root, "description");
    if (desc != NULL && desc->type != SV_JSON_STRING && desc->type != SV_JSON_NULL)
        return fail(&v, "description", "Must be a string.");
    if (desc != NULL && desc->type == SV_JSON_STRING && desc->u.str.len > SV_POLICY_DESC_MAX)
        return fail(&v, "description", "At most %d bytes.", SV_POLICY_DESC_MAX);
    if (desc != NULL && desc->type == SV_JSON_STRING && memchr(desc->u.str.s, 0, desc->u.str.len) != NULL)
        return fail(&v, "description", "Must not contain NUL characters.");
    const sv_json_t *rules = member(&v, root, "rules", SV_JSON_ARRAY, true, &err);
    if (err != SV_OK)
        return err;
    const sv_json_t *bindings = member(&v, root, "bindings", SV_JSON_OBJECT, false, &err);
    if (err != SV_OK)
        return err;
    if (rules->u.kids.n == 0)
        return fail(&v, "rules", "List at least one rule.");
    if (rules->u.kids.n > SV_POLICY_MAX_RULES)
        return fail(&v, "rules", "At most %d rules.", SV_POLICY_MAX_RULES);

    sv_policy_def_t *p = def_new();
    if (p == NULL)
        return SV_ENOMEM;
    snprintf(p->name, sizeof(p->name), "%s", name);
    err = SV_ENOMEM;
    const char *d = desc != NULL && desc->type == SV_JSON_STRING ? desc->u.str.s : "";
    if ((p->description = arena_strdup(p, d, strlen(d))) == NULL)
        goto free_policy;
    p->n_rules = (unsigned)rules->u.kids.n;
    if ((p->rules = arena_alloc(p, p->n_rules * sizeof(sv_policy_rule_t))) == NULL)
        goto free_policy;
    unsigned i = 0;
    for (const sv_json_t *rj = rules->u.kids.first; rj != NULL; rj = rj->next, i++) {
        snprintf(v.field, sizeof(v.field), "rules[%u]", i);
        if ((err = parse_rule(&v, p, rj, &p->rules[i])) != SV_OK)
            goto free_policy;
    }
    v.field[0] = 0;
    if (bindings != NULL) {
        snprintf(v.field, sizeof(v.field), "bindings");
        if ((err = parse_bindings(&v, p, bindings)) != SV_OK)
            goto free_policy;
    }
    *out = p;
    return SV_OK;
free_policy:
    sv_policy_def_free(p);
    return err;
}

/* ---- JSON output ---- */

static void write_perms(sv_jw_t *jw, uint32_t perms)
{
    sv_jw_arr_begin(jw);
    for (unsigned b = 0; b < 6; b++)
        if (perms & (1u << b))
            sv_jw_cstr(jw, sv_perm_name((sv_perm_t)(1u << b)));
    sv_jw_arr_end(jw);
}

static void write_hhmm(sv_jw_t *jw, unsigned min)
{
    char t[8];
    snprintf(t, sizeof(t), "%02u:%02u", (min / 60) % 100, min % 60);
    sv_jw_cstr(jw, t);
}

static void write_strings(sv_jw_t *jw, char *const *list, unsigned n)
{
    sv_jw_arr_begin(jw);
    for (unsigned i = 0; i < n; i++)
        sv_jw_cstr(jw, list[i]);
    sv_jw_arr_end(jw);
}

void sv_policy_to_json(const sv_policy_def_t *p, sv_jw_t *jw)
{
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "name");
    sv_jw_cstr(jw, p->name);
    sv_jw_key(jw, "description");
    sv_jw_cstr(jw, p->description);
    sv_jw_key(jw, "rules");
    sv_jw_arr_begin(jw);
    for (unsigned i = 0; i < p->n_rules; i++) {
        const sv_policy_rule_t *r = &p->rules[i];
        sv_jw_obj_begin(jw);
        sv_jw_key(jw, "path");
        sv_jw_cstr(jw, r->path);
        sv_jw_key(jw, "permissions");
        write_perms(jw, r->perms);
        sv_jw_key(jw, "effect");
        sv_jw_cstr(jw, r->deny ? "deny" : "allow");
        sv_jw_key(jw, "conditions");
        sv_jw_obj_begin(jw);
        if (r->has_ip_allow) {
            sv_jw_key(jw, "ip_allow");
            write_strings(jw, r->ip_allow_text, r->n_ip_allow);
        }
        if (r->mfa_required) {
            sv_jw_key(jw, "mfa_required");
            sv_jw_bool(jw, true);
        }
        if (r->has_time_window) {
            sv_jw_key(jw, "time_window");
            sv_jw_obj_begin(jw);
            sv_jw_key(jw, "days");
            sv_jw_arr_begin(jw);
            for (unsigned d = 1; d <= 7; d++) /* mon .. sun */
                if (r->days & (1u << (d % 7)))
                    sv_jw_cstr(jw, day_names[d % 7]);
            sv_jw_arr_end(jw);
            sv_jw_key(jw, "start");
            write_hhmm(jw, r->start_min);
            sv_jw_key(jw, "end");
            write_hhmm(jw, r->end_min);
            sv_jw_key(jw, "timezone");
            sv_jw_cstr(jw, r->timezone);
            sv_jw_obj_end(jw);
        }
        sv_jw_obj_end(jw);
        sv_jw_obj_end(jw);
    }
    sv_jw_arr_end(jw);
    sv_jw_key(jw, "bindings");
    sv_jw_obj_begin(jw);
    sv_jw_key(jw, "identities");
    write_strings(jw, p->identities, p->n_identities);
    sv_jw_key(jw, "groups");
    write_strings(jw, p->groups, p->n_groups);
    sv_jw_obj_end(jw);
    sv_jw_key(jw, "created_at");
    sv_jw_time(jw, p->created_at);
    sv_jw_key(jw, "updated_at");
    sv_jw_time(jw, p->updated_at);
    sv_jw_key(jw, "version");
    sv_jw_uint(jw, p->version);
    sv_jw_obj_end(jw);
}

/* ---- records ----
 *
 *   u8 format (1)
 *   bytes name, bytes description
 *   i64 created_at, i64 updated_at, u64 version
 *   u32 n_rules, each:
 *     bytes path, u32 perms, u8 effect (0 allow, 1 deny),
 *     u8 flags (1 ip_allow, 2 mfa_required, 4 time_window)
 *     [ip_allow]    u32 n, bytes cidr * n
 *     [time_window] u8 days, u16 start_min (as u32), u32 end_min, bytes timezone
 *   u32 n_identities, bytes * n
 *   u32 n_groups, bytes * n
 */

#define RULE_IP 1
#define RULE_MFA 2
#define RULE_TW 4

void sv_policy_encode(const sv_policy_def_t *p, sv_recw_t *w)
{
    sv_recw_init(w, POLICY_RECORD_V1);
    sv_recw_str(w, p->name);
    sv_recw_str(w, p->description);
    sv_recw_i64(w, p->created_at);
    sv_recw_i64(w, p->updated_at);
    sv_recw_u64(w, p->version);
    sv_recw_u32(w, p->n_rules);
    for (unsigned i = 0; i < p->n_rules; i++) {
        const sv_policy_rule_t *r = &p->rules[i];
        sv_recw_str(w, r->path);
        sv_recw_u32(w, r->perms);
        sv_recw_u8(w, r->deny ? 1 : 0);
        sv_recw_u8(w, (uint8_t)((r->has_ip_allow ? RULE_IP : 0) | (r->mfa_required ? RULE_MFA : 0) |
                                (r->has_time_window ? RULE_TW : 0)));
        if (r->has_ip_allow) {
            sv_recw_u32(w, r->n_ip_allow);
            for (unsigned j = 0; j < r->n_ip_allow; j++)
                sv_recw_str(w, r->ip_allow_text[j]);
        }
        if (r->has_time_window) {
            sv_recw_u8(w, r->days);
            sv_recw_u32(w, r->start_min);
            sv_recw_u32(w, r->end_min);
            sv_recw_str(w, r->timezone);
        }
    }
    sv_recw_u32(w, p->n_identities);
    for (unsigned i = 0; i < p->n_identities; i++)
        sv_recw_str(w, p->identities[i]);
    sv_recw_u32(w, p->n_groups);
    for (unsigned i = 0; i < p->n_groups; i++)
        sv_recw_str(w, p->groups[i]);
}

/* A bytes field copied into the arena as a string; NULL on a bad field. */
static char *rec_str(sv_recr_t *r, sv_policy_def_t *p, size_t max)
{
    sv_bytes_t b = sv_recr_bytes(r);
    if (r->failed || b.len > max || memchr(b.base, 0, b.len) != NULL) {
        r->failed = true;
        return NULL;
    }
    return arena_strdup(p, (const char *)b.base, b.len);
}

static sv_err_t decode_rule(sv_recr_t *rr, sv_policy_def_t *p, sv_policy_rule_t *r)
{
    const char *why;
    if ((r->path = rec_str(rr, p, SV_PATH_MAX + 16)) == NULL ||
        check_rule_path(r->path, strlen(r->path), &why) != SV_OK)
        return SV_ECORRUPT;
    r->perms = sv_recr_u32(rr);
    uint8_t effect = sv_recr_u8(rr), flags = sv_recr_u8(rr);
    if (r->perms == 0 || (r->perms & ~0x3fu) || effect > 1 || (flags & ~7u))
        return SV_ECORRUPT;
    r->deny = effect == 1;
    r->mfa_required = flags & RULE_MFA;
    if (flags & RULE_IP) {
        r->has_ip_allow = true;
        r->n_ip_allow = sv_recr_u32(rr);
        if (rr->failed || r->n_ip_allow == 0 || r->n_ip_allow > SV_POLICY_MAX_CIDRS)
            return SV_ECORRUPT;
        r->ip_allow_text = arena_alloc(p, r->n_ip_allow * sizeof(char *));
        r->ip_allow = arena_alloc(p, r->n_ip_allow * sizeof(sv_cidr_t));
        if (r->ip_allow_text == NULL || r->ip_allow == NULL)
            return SV_ENOMEM;
        for (unsigned j = 0; j < r->n_ip_allow; j++) {
            if ((r->ip_allow_text[j] = rec_str(rr, p, 64)) == NULL ||
                sv_cidr_parse(r->ip_allow_text[j], strlen(r->ip_allow_text[j]), &r->ip_allow[j]) != SV_OK)
                return SV_ECORRUPT;
        }
    }
    if (flags & RULE_TW) {
        r->has_time_window = true;
        r->days = sv_recr_u8(rr);
        uint32_t s = sv_recr_u32(rr), e = sv_recr_u32(rr);
        if (r->days == 0 || r->days > SV_DAYS_ALL || s > 1439 || e < 1 || e > 1440 || s == e)
            return SV_ECORRUPT;
        r->start_min = (uint16_t)s;
        r->end_min = (uint16_t)e;
        if ((r->timezone = rec_str(rr, p, SV_TZ_NAME_MAX)) == NULL ||
            !sv_tz_name_valid(r->timezone, strlen(r->timezone)))
            return SV_ECORRUPT;
    }
    return rr->failed ? SV_ECORRUPT : SV_OK;
}

static sv_err_t decode_list(sv_recr_t *rr, sv_policy_def_t *p, bool (*ok)(const char *, size_t), char ***out,
                            unsigned *n_out)
{
    uint32_t n = sv_recr_u32(rr);
    if (rr->failed || n > SV_POLICY_MAX_BINDINGS)
        return SV_ECORRUPT;
    char **list = arena_alloc(p, (n + 1) * sizeof(char *));
    if (list == NULL)
        return SV_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if ((list[i] = rec_str(rr, p, SV_ID_MAX)) == NULL || !ok(list[i], strlen(list[i])))
            return SV_ECORRUPT;
    *out = list;
    *n_out = n;
    return SV_OK;
}

sv_err_t sv_policy_decode(sv_bytes_t rec, sv_policy_def_t **out)
{
    sv_recr_t rr;
    if (sv_recr_init(&rr, rec) != POLICY_RECORD_V1)
        return SV_ECORRUPT;
    sv_policy_def_t *p = def_new();
    if (p == NULL)
        return SV_ENOMEM;
    sv_err_t err = SV_ECORRUPT;
    sv_bytes_t name = sv_recr_bytes(&rr);
    if (rr.failed || !sv_policy_name_valid((const char *)name.base, name.len))
        goto free_policy;
    memcpy(p->name, name.base, name.len);
    p->name[name.len] = 0;
    if ((p->description = rec_str(&rr, p, SV_POLICY_DESC_MAX)) == NULL)
        goto free_policy;
    p->created_at = sv_recr_i64(&rr);
    p->updated_at = sv_recr_i64(&rr);
    p->version = sv_recr_u64(&rr);
    p->n_rules = sv_recr_u32(&rr);
    if (rr.failed || p->n_rules == 0 || p->n_rules > SV_POLICY_MAX_RULES)
        goto free_policy;
    err = SV_ENOMEM;
    if ((p->rules = arena_alloc(p, p->n_rules * sizeof(sv_policy_rule_t))) == NULL)
        goto free_policy;
    for (unsigned i = 0; i < p->n_rules; i++)
        if ((err = decode_rule(&rr, p, &p->rules[i])) != SV_OK)
            goto free_policy;
    if ((err = decode_list(&rr, p, identity_id_ok, &p->identities, &p->n_identities)) != SV_OK ||
        (err = decode_list(&rr, p, group_id_ok, &p->groups, &p->n_groups)) != SV_OK)
        goto free_policy;
    err = SV_ECORRUPT;
    if (rr.failed || sv_recr_left(&rr) != 0)
        goto free_policy;
    *out = p;
    return SV_OK;
free_policy:
    sv_policy_def_free(p);
    return err;
}

/* ---- storage ---- */

static void policy_key(sv_key_t *k, const char *tenant, const char *name)
{
    sv_key_init(k);
    sv_key_str(k, tenant, strlen(tenant));
    if (name != NULL)
        sv_key_str(k, name, strlen(name));
}

sv_err_t sv_policy_get(sv_txn_t *tx, const char *tenant, const char *name, sv_policy_def_t **out)
{
    sv_key_t k;
    policy_key(&k, tenant, name);
    if (k.overflow)
        return SV_ENOTFOUND;
    sv_bytes_t val;
    sv_err_t err = sv_txn_get(tx, SV_DB_POLICIES, sv_key_bytes(&k), &val);
    if (err != SV_OK)
        return err;
    return sv_policy_decode(val, out);
}

sv_err_t sv_policy_each(sv_txn_t *tx, const char *tenant, const char *after, sv_policy_each_fn fn, void *arg)
{
    sv_key_t prefix, seek;
    policy_key(&prefix, tenant, NULL);
    bool skip_first = after != NULL && after[0] != 0;
    policy_key(&seek, tenant, skip_first ? after : NULL);
    if (prefix.overflow || seek.overflow)
        return SV_EINVAL;
    sv_iter_t it;
    sv_err_t err = sv_iter_open(tx, SV_DB_POLICIES, sv_key_bytes(&prefix), sv_key_bytes(&seek), false, &it);
    if (err != SV_OK)
        return err == SV_ENOTFOUND ? SV_OK : err;
    sv_bytes_t key, val;
    while ((err = sv_iter_next(&it, &key, &val)) == SV_OK) {
        if (skip_first && key.len == seek.len && memcmp(key.base, seek.buf, seek.len) == 0)
            continue;
        sv_policy_def_t *p;
        if ((err = sv_policy_decode(val, &p)) != SV_OK)
            break;
        if (!fn(arg, p))
            break;
    }
    sv_iter_close(&it);
    return err == SV_ENOTFOUND ? SV_OK : err;
}

sv_err_t sv_policy_put_tx(sv_wtxn_t *tx, const char *tenant, sv_policy_def_t *p, bool *created)
{
    sv_key_t k;
    policy_key(&k, tenant, p->name);
    if (k.overflow)
        return SV_EINVAL;
    int64_t now = sv_wtxn_now_us(tx) / 1000000;
    sv_bytes_t old;
    sv_err_t err = sv_txn_get(sv_wtxn_txn(tx), SV_DB_POLICIES, sv_key_bytes(&k), &old);
    if (err == SV_OK) {
        sv_recr_t rr;
        if (sv_recr_init(&rr, old) != POLICY_RECORD_V1)
            return SV_ECORRUPT;
        sv_recr_bytes(&rr); /* name */
        sv_recr_bytes(&rr); /* description */
        int64_t created_at = sv_recr_i64(&rr);
        sv_recr_i64(&rr);
        uint64_t version = sv_recr_u64(&rr);
        if (rr.failed)
            return SV_ECORRUPT;
        p->created_at = created_at;
        p->version = version + 1;
        *created = false;
    } else if (err == SV_ENOTFOUND) {
        p->created_at = now;
        p->version = 1;
        *created = true;
    } else {
        return err;
    }
    p->updated_at = now;
    sv_recw_t w;
    sv_policy_encode(p, &w);
    sv_bytes_t rec;
    err = sv_recw_result(&w, &rec);
    if (err == SV_OK)
        err = sv_wtxn_put(tx, SV_DB_POLICIES, sv_key_bytes(&k), rec);
    sv_recw_free(&w);
    return err;
}

sv_err_t sv_policy_delete_tx(sv_wtxn_t *tx, const char *tenant, const char *name)
{
    sv_key_t k;
    policy_key(&k, tenant, name);
    if (k.overflow)
        return SV_ENOTFOUND;
    return sv_wtxn_del(tx, SV_DB_POLICIES, sv_key_bytes(&k));
}

sv_err_t sv_policy_purge_tenant_tx(sv_wtxn_t *tx, const char *tenant, size_t *deleted)
{
    sv_key_t prefix;
    policy_key(&prefix, tenant, NULL);
    if (prefix.overflow)
        return SV_EINVAL;
    return sv_wtxn_del_prefix(tx, SV_DB_POLICIES, sv_key_bytes(&prefix), deleted);
}
