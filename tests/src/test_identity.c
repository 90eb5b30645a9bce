/* tests/src/test_identity.c - the identity cache's storage (src/identity.c). */
#include "sv_autoconf.h"

#include <stdlib.h>

#include "src/identity.h"
#include "store/migrate.h"
#include "tests/unit.h"

static char *dir;
static sv_store_t *st;
static sv_writer_t *w;

static int setup(void)
{
    return sv_test_store_open("identity", 4 << 20, 0, &dir, &st, &w) ? 0 : 1;
}

static int teardown(void)
{
    sv_test_store_close(dir, st, w);
    return 0;
}

typedef struct {
    int step;
} op_t;

static sv_identity_rec_t ident(const char *tenant, const char *id)
{
    sv_identity_rec_t r = {.type = SV_IDENT_SERVICE_ACCOUNT, .source = SV_SOURCE_MANUAL, .active = true};
    snprintf(r.tenant_id, sizeof(r.tenant_id), "%s", tenant);
    snprintf(r.id, sizeof(r.id), "%s", id);
    return r;
}

static sv_group_rec_t group(const char *tenant, const char *id)
{
    sv_group_rec_t g = {.source = SV_SOURCE_MANUAL};
    snprintf(g.tenant_id, sizeof(g.tenant_id), "%s", tenant);
    snprintf(g.id, sizeof(g.id), "%s", id);
    return g;
}

static sv_err_t apply(sv_wtxn_t *tx, sv_unit_t *u)
{
    op_t *op = u->arg;
    sv_err_t err = SV_OK;
    switch (op->step) {
    case 0: {
        sv_group_rec_t g = group("t1", "grp_finance");
        const char *members[] = {"sa:billing", "user:ann@x", "sa:billing"};
        err = sv_group_put_tx(tx, &g, members, 3);
        break;
    }
    case 1: {
        sv_identity_rec_t r = ident("t1", "sa:billing");
        const char *groups[] = {"grp_finance", "grp_unknown"};
        err = sv_identity_put_tx(tx, &r, groups, 2);
        break;
    }
    case 2: {
        sv_identity_rec_t r = ident("t1", "sa:billing");
        const char *groups[] = {"grp_unknown"};
        err = sv_identity_put_tx(tx, &r, groups, 1); /* leaves grp_finance */
        break;
    }
    case 3: err = sv_identity_set_roles_tx(tx, "t1", "sa:billing", SV_ROLE_SUPER_ADMIN); break;
    case 4: {
        sv_identity_rec_t r = ident("t1", "bad id");
        err = sv_identity_put_tx(tx, &r, NULL, 0);
        break;
    }
    case 5: err = sv_group_delete_tx(tx, "t1", "grp_finance"); break;
    case 6: err = sv_identity_purge_tenant_tx(tx, "t1", NULL); break;
    }
    return err;
}

static sv_err_t run(int step)
{
    op_t op = {step};
    sv_unit_t u = {.apply = apply, .arg = &op};
    return sv_writer_run(w, &u);
}

static bool collect(void *arg, const char *id)
{
    char *out = arg;
    strcat(out, id);
    strcat(out, ",");
    return true;
}

static void read_lists(const char *id, const char *group_id, char *groups, char *members)
{
    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_store_reader_new(st, &r);
    sv_store_read_begin(r, &tx);
    groups[0] = members[0] = 0;
    sv_identity_each_group(tx, "t1", id, collect, groups);
    if (sv_group_each_member(tx, "t1", group_id, collect, members) == SV_ENOTFOUND)
        strcpy(members, "(none)");
    sv_store_read_end(r);
    sv_store_reader_free(r);
}

static void test_membership_both_ways(void)
{
    char groups[256], members[256];
    CU_ASSERT_EQUAL_FATAL(run(0), SV_OK);
    read_lists("sa:billing", "grp_finance", groups, members);
    CU_ASSERT_STRING_EQUAL(groups, "grp_finance,");
    CU_ASSERT_STRING_EQUAL(members, "sa:billing,user:ann@x,");
    CU_ASSERT_EQUAL_FATAL(run(1), SV_OK);
    read_lists("sa:billing", "grp_finance", groups, members);
    CU_ASSERT_STRING_EQUAL(groups, "grp_finance,grp_unknown,");
    CU_ASSERT_STRING_EQUAL(members, "sa:billing,user:ann@x,");
    CU_ASSERT_EQUAL_FATAL(run(2), SV_OK);
    read_lists("sa:billing", "grp_finance", groups, members);
    CU_ASSERT_STRING_EQUAL(groups, "grp_unknown,");
    CU_ASSERT_STRING_EQUAL(members, "user:ann@x,");
}

static void test_roles_and_validation(void)
{
    CU_ASSERT_EQUAL(run(3), SV_OK);
    sv_store_reader_t *r;
    sv_txn_t *tx;
    sv_store_reader_new(st, &r);
    sv_store_read_begin(r, &tx);
    sv_identity_rec_t rec;
    CU_ASSERT_EQUAL(sv_identity_get(tx, "t1", "sa:billing", &rec), SV_OK);
    CU_ASSERT_EQUAL(rec.roles, SV_ROLE_SUPER_ADMIN);
    CU_ASSERT_EQUAL(rec.type, SV_IDENT_SERVICE_ACCOUNT);
    CU_ASSERT_EQUAL(sv_identity_get(tx, "t2", "sa:billing", &rec), SV_ENOTFOUND); /* tenants are apart */
    sv_store_read_end(r);
    sv_store_reader_free(r);
    CU_ASSERT_EQUAL(run(4), SV_EINVAL);
    CU_ASSERT(sv_identity_id_valid("user:admin@acme.example", 23));
    CU_ASSERT_FALSE(sv_identity_id_valid("noprefix", 8));
    CU_ASSERT_FALSE(sv_identity_id_valid(":x", 2));
    CU_ASSERT_FALSE(sv_group_id_valid("grp/x", 5));
}

static void test_delete_and_purge(void)
{
    char groups[256], members[256];
    CU_ASSERT_EQUAL(run(0), SV_OK);
    CU_ASSERT_EQUAL(run(5), SV_OK);
    read_lists("user:ann@x", "grp_finance", groups, members);
    CU_ASSERT_STRING_EQUAL(groups, "");
    CU_ASSERT_STRING_EQUAL(members, "(none)");
    CU_ASSERT_EQUAL(run(6), SV_OK);
    read_lists("sa:billing", "grp_finance", groups, members);
    CU_ASSERT_STRING_EQUAL(groups, "");
    uint64_t g0 = sv_identity_generation();
    sv_identity_bump_generation();
    CU_ASSERT(sv_identity_generation() > g0);
}

void sv_test_suite_identity(void)
{
    CU_pSuite s = CU_add_suite("src/identity", setup, teardown);
    CU_add_test(s, "membership_both_ways", test_membership_both_ways);
    CU_add_test(s, "roles_and_validation", test_roles_and_validation);
    CU_add_test(s, "delete_and_purge", test_delete_and_purge);
}
