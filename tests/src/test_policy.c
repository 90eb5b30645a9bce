/* tests/src/test_policy.c - the policy model: validation, JSON, records and
 * storage (src/policy.c). */
#include "sv_autoconf.h"

#include <stdlib.h>

#include "src/policy.h"
#include "store/migrate.h"
#include "tests/unit.h"

#define RULE(extra) "{\"rules\":[{\"path\":\"app/*\",\"permissions\":[\"read\"]" extra "}]}"
#define TW(tw) RULE(",\"conditions\":{\"time_window\":" tw "}")

static const struct {
    const char *name, *body;
    const char *field; /* NULL: valid */
} cases[] = {
    {"billing-db",
     "{\"name\":\"billing-db\",\"description\":\"d\",\"rules\":[{\"path\":\"app/db/**\",\"permissions\":[\"read\","
     "\"list\"],\"effect\":\"allow\",\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\"],\"mfa_required\":true,"
     "\"time_window\":{\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],\"start\":\"08:00\",\"end\":\"18:00\","
     "\"timezone\":\"UTC\"}}}],\"bindings\":{\"identities\":[\"sa:billing\"],\"groups\":[\"grp_finance\"]}}",
     NULL},
    {"p", RULE(""), NULL},
    {"p", "{\"rules\":[{\"path\":\"@partner/shared/**\",\"permissions\":[\"read\"]}]}", NULL},
    {"p", RULE(",\"conditions\":{\"ip_allow\":[\"2001:db8::/32\",\"10.0.0.0/8\",\"192.0.2.7\"]}"), NULL},
    {"p", TW("{\"start\":\"22:00\",\"end\":\"06:00\",\"timezone\":\"Europe/Berlin\"}"), NULL},
    {"p", TW("{\"start\":\"00:00\",\"end\":\"24:00\"}"), NULL},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"created_at\":\"x\",\"version\":3}", NULL},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"description\":null}", NULL},
    {"bad name", RULE(""), "name"},
    {"..", RULE(""), "name"},
    {"p", "{\"name\":\"other\",\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}]}", "name"},
    {"p", "{}", "rules"},
    {"p", "{\"rules\":[]}", "rules"},
    {"p", "{\"rules\":\"x\"}", "rules"},
    {"p", "{\"rulez\":[]}", "rulez"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"description\":5}", "description"},
    {"p", "{\"rules\":[1]}", "rules[0]"},
    {"p", "{\"rules\":[{\"path\":\"app/*\"}]}", "rules[0].permissions"},
    {"p", "{\"rules\":[{\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"app//x\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"/app\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"a**\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"a/../b\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"@partne/x\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"@partner/\",\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":7,\"permissions\":[\"read\"]}]}", "rules[0].path"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[]}]}", "rules[0].permissions"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\",\"fly\"]}]}", "rules[0].permissions[1]"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\",\"read\"]}]}", "rules[0].permissions[1]"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[1]}]}", "rules[0].permissions[0]"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":\"read\"}]}", "rules[0].permissions"},
    {"p", RULE(",\"effect\":\"maybe\""), "rules[0].effect"},
    {"p", RULE(",\"effect\":1"), "rules[0].effect"},
    {"p", RULE(",\"paths\":[]"), "rules[0].paths"},
    {"p", RULE(",\"conditions\":\"x\""), "rules[0].conditions"},
    {"p", RULE(",\"conditions\":{\"ip_deny\":[]}"), "rules[0].conditions.ip_deny"},
    {"p", RULE(",\"conditions\":{\"ip_allow\":[\"10.0.0.1/8\"]}"), "rules[0].conditions.ip_allow[0]"},
    {"p", RULE(",\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\",\"300.1.1.1\"]}"), "rules[0].conditions.ip_allow[1]"},
    {"p", RULE(",\"conditions\":{\"ip_allow\":[\"::/129\"]}"), "rules[0].conditions.ip_allow[0]"},
    {"p", RULE(",\"conditions\":{\"ip_allow\":[\"10.0.0.0/8\",\"10.0.0.0/8\"]}"), "rules[0].conditions.ip_allow[1]"},
    {"p", RULE(",\"conditions\":{\"ip_allow\":[]}"), "rules[0].conditions.ip_allow"},
    {"p", RULE(",\"conditions\":{\"ip_allow\":\"10.0.0.0/8\"}"), "rules[0].conditions.ip_allow"},
    {"p", RULE(",\"conditions\":{\"mfa_required\":\"yes\"}"), "rules[0].conditions.mfa_required"},
    {"p", TW("{\"days\":[\"mon\",\"funday\"],\"start\":\"08:00\",\"end\":\"18:00\"}"),
     "rules[0].conditions.time_window.days[1]"},
    {"p", TW("{\"days\":[\"Mon\"],\"start\":\"08:00\",\"end\":\"18:00\"}"), "rules[0].conditions.time_window.days[0]"},
    {"p", TW("{\"days\":[],\"start\":\"08:00\",\"end\":\"18:00\"}"), "rules[0].conditions.time_window.days"},
    {"p", TW("{\"days\":[\"mon\",\"mon\"],\"start\":\"08:00\",\"end\":\"18:00\"}"),
     "rules[0].conditions.time_window.days[1]"},
    {"p", TW("{\"start\":\"25:00\",\"end\":\"18:00\"}"), "rules[0].conditions.time_window.start"},
    {"p", TW("{\"start\":\"8:00\",\"end\":\"18:00\"}"), "rules[0].conditions.time_window.start"},
    {"p", TW("{\"start\":\"24:00\",\"end\":\"18:00\"}"), "rules[0].conditions.time_window.start"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"08:60\"}"), "rules[0].conditions.time_window.end"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"24:01\"}"), "rules[0].conditions.time_window.end"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"08:00\"}"), "rules[0].conditions.time_window.end"},
    {"p", TW("{\"end\":\"08:00\"}"), "rules[0].conditions.time_window.start"},
    {"p", TW("{\"start\":\"08:00\"}"), "rules[0].conditions.time_window.end"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"18:00\",\"timezone\":\"Mars/Olympus\"}"),
     "rules[0].conditions.time_window.timezone"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"18:00\",\"timezone\":\"../../etc/passwd\"}"),
     "rules[0].conditions.time_window.timezone"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"18:00\",\"timezone\":5}"), "rules[0].conditions.time_window.timezone"},
    {"p", TW("{\"start\":\"08:00\",\"end\":\"18:00\",\"zone\":\"UTC\"}"), "rules[0].conditions.time_window.zone"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]},{\"path\":\"b/\",\"permissions\":[\"read\"]}]}",
     "rules[1].path"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"bindings\":{\"identities\":[\"noprefix\"]}}",
     "bindings.identities[0]"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"bindings\":{\"groups\":[\"g\",\"grp/x\"]}}",
     "bindings.groups[1]"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"bindings\":{\"groups\":[\"g\",\"g\"]}}",
     "bindings.groups[1]"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"bindings\":{\"users\":[]}}", "bindings.users"},
    {"p", "{\"rules\":[{\"path\":\"a\",\"permissions\":[\"read\"]}],\"bindings\":\"x\"}", "bindings"},
};

static sv_err_t parse(const char *name, const char *body, sv_policy_def_t **out, sv_policy_error_t *e)
{
    sv_json_doc_t *doc;
    sv_json_error_t je;
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(body, strlen(body), false, &doc, &je), SV_JSON_OK);
    sv_err_t err = sv_policy_from_json(sv_json_root(doc), name, out, e);
    sv_json_doc_free(doc);
    return err;
}

static void test_validation_table(void)
{
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
        sv_policy_def_t *p = NULL;
        sv_policy_error_t e;
        sv_err_t err = parse(cases[i].name, cases[i].body, &p, &e);
        if (cases[i].field == NULL) {
            if (err != SV_OK)
                fprintf(stderr, "\n  case %zu: %s (%s)\n", i, e.field, e.message);
            CU_ASSERT_EQUAL(err, SV_OK);
        } else {
            CU_ASSERT_EQUAL(err, SV_EINVAL);
            if (err != SV_EINVAL || strcmp(e.field, cases[i].field) != 0)
                fprintf(stderr, "\n  case %zu: field '%s' (%s), want '%s'\n", i, e.field, e.message, cases[i].field);
            CU_ASSERT_STRING_EQUAL(e.field, cases[i].field);
            CU_ASSERT(e.message[0] != 0);
        }
        sv_policy_def_free(p);
    }
}

static void test_limits(void)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_buf_puts(&b, "{\"rules\":[");
    for (int i = 0; i <= SV_POLICY_MAX_RULES; i++)
        sv_buf_printf(&b, "%s{\"path\":\"a%d\",\"permissions\":[\"read\"]}", i ? "," : "", i);
    sv_buf_puts(&b, "]}");
    sv_buf_putc(&b, 0);
    sv_policy_def_t *p = NULL;
    sv_policy_error_t e;
    CU_ASSERT_EQUAL(parse("p", (const char *)b.base, &p, &e), SV_EINVAL);
    CU_ASSERT_STRING_EQUAL(e.field, "rules");
    sv_buf_free(&b);
}

static char *to_json(const sv_policy_def_t *p)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &b);
    sv_policy_to_json(p, &jw);
    sv_buf_putc(&b, 0);
    size_t len;
    return (char *)sv_buf_detach(&b, &len);
}

static void test_json_and_record_round_trip(void)
{
    sv_policy_def_t *p = NULL, *q = NULL, *r = NULL;
    sv_policy_error_t e;
    CU_ASSERT_EQUAL_FATAL(parse("billing-db", cases[0].body, &p, &e), SV_OK);
    CU_ASSERT_EQUAL(p->n_rules, 1);
    CU_ASSERT_EQUAL(p->rules[0].perms, SV_PERM_READ | SV_PERM_LIST);
    CU_ASSERT_EQUAL(p->rules[0].days, 0x3e); /* mon..fri */
    CU_ASSERT_EQUAL(p->rules[0].start_min, 480);
    CU_ASSERT_EQUAL(p->rules[0].end_min, 1080);
    CU_ASSERT(p->rules[0].mfa_required);
    p->created_at = 1700000000;
    p->updated_at = 1700000100;
    p->version = 7;
    char *j1 = to_json(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(j1, "\"version\":7"));
    /* GET's answer is a valid PUT body that means the same */
    CU_ASSERT_EQUAL(parse("billing-db", j1, &q, &e), SV_OK);
    q->created_at = p->created_at;
    q->updated_at = p->updated_at;
    q->version = p->version;
    char *j2 = to_json(q);
    CU_ASSERT_STRING_EQUAL(j1, j2);
    /* the stored record */
    sv_recw_t w;
    sv_policy_encode(p, &w);
    sv_bytes_t rec;
    CU_ASSERT_EQUAL_FATAL(sv_recw_result(&w, &rec), SV_OK);
    CU_ASSERT_EQUAL(sv_policy_decode(rec, &r), SV_OK);
    char *j3 = to_json(r);
    CU_ASSERT_STRING_EQUAL(j1, j3);
    /* damaged records are reported, never half-read */
    for (size_t cut = 1; cut < rec.len; cut += 7) {
        sv_policy_def_t *x = NULL;
        CU_ASSERT_EQUAL(sv_policy_decode(SV_BYTES(rec.base, cut), &x), SV_ECORRUPT);
    }
    uint8_t *copy = malloc(rec.len);
    memcpy(copy, rec.base, rec.len);
    copy[0] = 2; /* an unknown format version */
    sv_policy_def_t *x = NULL;
    CU_ASSERT_EQUAL(sv_policy_decode(SV_BYTES(copy, rec.len), &x), SV_ECORRUPT);
    free(copy);
    sv_recw_free(&w);
    free(j1);
    free(j2);
    free(j3);
    sv_policy_def_free(p);
    sv_policy_def_free(q);
    sv_policy_def_free(r);
}

/* ---- storage, through a real store and writer ---- */

static char *dir;
static sv_store_t *st;
static sv_writer_t *wr;

static int storage_setup(void)
{
    return sv_test_store_open("policy", 4 << 20, 0, &dir, &st, &wr) ? 0 : 1;
}

static int storage_teardown(void)
{
    sv_test_store_close(dir, st, wr);
    return 0;
}

typedef struct {
    const char *tenant;
    sv_policy_def_t *p; /* put */
    const char *del;    /* delete */
    bool purge;
    bool created;
} op_t;

static sv_err_t apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    op_t *op = u->arg;
    if (op->p != NULL)
        return sv_policy_put_tx(tx, op->tenant, op->p, &op->created);
    if (op->del != NULL)
        return sv_policy_delete_tx(tx, op->tenant, op->del);
    return sv_policy_purge_tenant_tx(tx, op->tenant, NULL);
}

static sv_err_t run(op_t *op)
{
    sv_unit_t u = {.apply = apply, .arg = op};
    return sv_writer_run(wr, &u);
}

static sv_policy_def_t *named(const char *name)
{
    sv_policy_def_t *p = NULL;
    sv_policy_error_t e;
    parse(name, "{\"rules\":[{\"path\":\"a/**\",\"permissions\":[\"read\"]}]}", &p, &e);
    return p;
}

static bool collect(void *arg, sv_policy_def_t *p)
{
    strcat(arg, p->name);
    strcat(arg, ",");
    sv_policy_def_free(p);
    return true;
}

static void list(const char *tenant, const char *after, char *out)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    out[0] = 0;
    sv_store_reader_new(st, &r);
    sv_store_read_begin(r, &tx);
    CU_ASSERT_EQUAL(sv_policy_each(tx, tenant, after, collect, out), SV_OK);
    sv_store_read_end(r);
    sv_store_reader_free(r);
}

static void test_storage(void)
{
    const char *names[] = {"b", "a", "c.d", "a-b"};
    for (size_t i = 0; i < SV_ARRAY_LEN(names); i++) {
        op_t op = {.tenant = "t1", .p = named(names[i])};
        CU_ASSERT_EQUAL(run(&op), SV_OK);
        CU_ASSERT(op.created);
        CU_ASSERT_EQUAL(op.p->version, 1);
        sv_policy_def_free(op.p);
    }
    op_t other = {.tenant = "t2", .p = named("zz")};
    CU_ASSERT_EQUAL(run(&other), SV_OK);
    sv_policy_def_free(other.p);

    char got[256];
    list("t1", NULL, got);
    CU_ASSERT_STRING_EQUAL(got, "a,a-b,b,c.d,"); /* name order; tenants apart */
    list("t1", "a-b", got);
    CU_ASSERT_STRING_EQUAL(got, "b,c.d,");
    list("t1", "zzz", got);
    CU_ASSERT_STRING_EQUAL(got, "");
    list("t", NULL, got); /* a tenant that is a prefix of another sees nothing of it */
    CU_ASSERT_STRING_EQUAL(got, "");

    op_t again = {.tenant = "t1", .p = named("a")};
    CU_ASSERT_EQUAL(run(&again), SV_OK);
    CU_ASSERT_FALSE(again.created);
    CU_ASSERT_EQUAL(again.p->version, 2);
    sv_policy_def_free(again.p);

    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_store_reader_new(st, &r);
    sv_store_read_begin(r, &tx);
    sv_policy_def_t *p = NULL;
    CU_ASSERT_EQUAL(sv_policy_get(tx, "t1", "a", &p), SV_OK);
    CU_ASSERT_EQUAL(p->version, 2);
    CU_ASSERT(p->created_at > 0 && p->updated_at >= p->created_at);
    sv_policy_def_free(p);
    CU_ASSERT_EQUAL(sv_policy_get(tx, "t2", "a", &p), SV_ENOTFOUND);
    sv_store_read_end(r);
    sv_store_reader_free(r);

    op_t del = {.tenant = "t1", .del = "b"};
    CU_ASSERT_EQUAL(run(&del), SV_OK);
    CU_ASSERT_EQUAL(run(&del), SV_ENOTFOUND);
    list("t1", NULL, got);
    CU_ASSERT_STRING_EQUAL(got, "a,a-b,c.d,");
    op_t purge = {.tenant = "t1", .purge = true};
    CU_ASSERT_EQUAL(run(&purge), SV_OK);
    list("t1", NULL, got);
    CU_ASSERT_STRING_EQUAL(got, "");
    list("t2", NULL, got);
    CU_ASSERT_STRING_EQUAL(got, "zz,");

    uint64_t g1 = sv_policy_generation("t1"), g2 = sv_policy_generation("t2");
    sv_policy_bump_tenant_generation("t1");
    CU_ASSERT(sv_policy_generation("t1") > g1);
    g1 = sv_policy_generation("t1");
    g2 = sv_policy_generation("t2");
    sv_policy_bump_generation(); /* every tenant */
    CU_ASSERT(sv_policy_generation("t1") > g1);
    CU_ASSERT(sv_policy_generation("t2") > g2);
}

void sv_test_suite_policy(void)
{
    SV_SUITE("src/policy", {"validation_table", test_validation_table}, {"limits", test_limits},
             {"json_and_record_round_trip", test_json_and_record_round_trip});
    CU_pSuite s = CU_add_suite("src/policy_storage", storage_setup, storage_teardown);
    CU_add_test(s, "storage", test_storage);
}
