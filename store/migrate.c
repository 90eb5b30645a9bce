/*
 * migrate.c - the schema migrations of migrate.h.
 *
 * Each step creates or drops named databases and may rewrite records. The step
 * and its new version number commit together; the commit goes through the
 * fault seam so that tests can make a step fail and see the old version stay.
 * Migration steps are not written to the change log: a replica runs the same
 * binary, hence the same migrations.
 */
#include "sv_autoconf.h"

#include "store/migrate.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store/fault.h"

typedef sv_err_t (*step_fn)(sv_store_t *st, MDB_txn *txn);

typedef struct {
    uint32_t version;
    const char *name;
    step_fn up;
    step_fn down;
} migration_t;

static sv_err_t create_dbs(MDB_txn *txn, const sv_db_t *dbs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        MDB_dbi dbi;
        int rc = mdb_dbi_open(txn, sv_store_db_name(dbs[i]), MDB_CREATE, &dbi);
        if (rc != MDB_SUCCESS)
            return sv_store_err(rc);
    }
    return SV_OK;
}

static sv_err_t drop_dbs(MDB_txn *txn, const sv_db_t *dbs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        MDB_dbi dbi;
        int rc = mdb_dbi_open(txn, sv_store_db_name(dbs[i]), 0, &dbi);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc == MDB_SUCCESS)
            rc = mdb_drop(txn, dbi, 1);
        if (rc != MDB_SUCCESS)
            return sv_store_err(rc);
    }
    return SV_OK;
}

/* 1: the core: secrets, tenants, policies, identity cache, audit log and its
 * indexes, revocations, and the change log. */
static const sv_db_t core_dbs[] = {SV_DB_META,        SV_DB_TENANTS, SV_DB_SECRETS,          SV_DB_VERSIONS,
                                   SV_DB_POLICIES,    SV_DB_IDENTITIES, SV_DB_GROUPS,         SV_DB_AUDIT,
                                   SV_DB_AUDIT_BY_REQUEST, SV_DB_AUDIT_BY_TIME, SV_DB_REVOCATIONS, SV_DB_WAL};

static sv_err_t core_up(sv_store_t *st, MDB_txn *txn)
{
    sv_err_t err = create_dbs(txn, core_dbs, SV_ARRAY_LEN(core_dbs));
    if (err != SV_OK)
        return err;
    MDB_dbi meta;
    int rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    uint8_t id[17];
    id[0] = 1;
    randombytes_buf(id + 1, 16);
    MDB_val k = {strlen(SV_META_INSTANCE_ID), SV_META_INSTANCE_ID}, v = {sizeof(id), id};
    rc = mdb_put(txn, meta, &k, &v, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? SV_OK : sv_store_err(rc);
}

static sv_err_t core_down(sv_store_t *st, MDB_txn *txn)
{
    /* meta goes last: the version record lives in it */
    static const sv_db_t all_but_meta[] = {SV_DB_TENANTS,  SV_DB_SECRETS,          SV_DB_VERSIONS,
                                           SV_DB_POLICIES, SV_DB_IDENTITIES,       SV_DB_GROUPS,
                                           SV_DB_AUDIT,    SV_DB_AUDIT_BY_REQUEST, SV_DB_AUDIT_BY_TIME,
                                           SV_DB_REVOCATIONS, SV_DB_WAL};
    return drop_dbs(txn, all_but_meta, SV_ARRAY_LEN(all_but_meta));
}

/* 2: rotation and webhooks: the durable outbox, deliveries, webhook
 * registrations and the persistent scheduler. */
static const sv_db_t events_dbs[] = {SV_DB_OUTBOX, SV_DB_DELIVERIES, SV_DB_WEBHOOKS, SV_DB_SCHEDULE};

static sv_err_t events_up(sv_store_t *st, MDB_txn *txn)
{
    return create_dbs(txn, events_dbs, SV_ARRAY_LEN(events_dbs));
}

static sv_err_t events_down(sv_store_t *st, MDB_txn *txn)
{
    return drop_dbs(txn, events_dbs, SV_ARRAY_LEN(events_dbs));
}

/* 3: PKI, dynamic credentials and federation. */
static const sv_db_t engines_dbs[] = {SV_DB_LEASES, SV_DB_ENGINES, SV_DB_CERTS, SV_DB_DNS_PROVIDERS,
                                      SV_DB_FED_BACKENDS};

static sv_err_t engines_up(sv_store_t *st, MDB_txn *txn)
{
    return create_dbs(txn, engines_dbs, SV_ARRAY_LEN(engines_dbs));
}

static sv_err_t engines_down(sv_store_t *st, MDB_txn *txn)
{
    return drop_dbs(txn, engines_dbs, SV_ARRAY_LEN(engines_dbs));
}

static const migration_t migrations[SV_SCHEMA_VERSION] = {
    {1, "1_core", core_up, core_down},
    {2, "2_events", events_up, events_down},
    {3, "3_engines", engines_up, engines_down},
};

const char *sv_migrate_name(uint32_t version)
{
    if (version < 1 || version > SV_SCHEMA_VERSION)
        return NULL;
    return migrations[version - 1].name;
}

static sv_err_t read_version(MDB_txn *txn, uint32_t *version)
{
    MDB_dbi meta;
    int rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc == MDB_NOTFOUND) {
        *version = 0;
        return SV_OK;
    }
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    MDB_val k = {strlen(SV_META_SCHEMA_VERSION), SV_META_SCHEMA_VERSION}, v;
    rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *version = 0;
        return SV_OK;
    }
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    if (v.mv_size != 5 || ((uint8_t *)v.mv_data)[0] != 1)
        return SV_ECORRUPT;
    *version = sv_get_be32((uint8_t *)v.mv_data + 1);
    return SV_OK;
}

static sv_err_t write_version(MDB_txn *txn, uint32_t version)
{
    MDB_dbi meta;
    int rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc == MDB_NOTFOUND && version == 0)
        return SV_OK; /* everything was dropped: nothing to record */
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    if (version == 0) {
        rc = mdb_drop(txn, meta, 1);
        return sv_store_err(rc);
    }
    uint8_t buf[5] = {1};
    sv_put_be32(buf + 1, version);
    MDB_val k = {strlen(SV_META_SCHEMA_VERSION), SV_META_SCHEMA_VERSION}, v = {sizeof(buf), buf};
    return sv_store_err(mdb_put(txn, meta, &k, &v, 0));
}

sv_err_t sv_migrate_current(sv_store_t *st, uint32_t *version)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(sv_store_env(st), NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    sv_err_t err = read_version(txn, version);
    mdb_txn_abort(txn);
    return err;
}

/* After a failed step the DBI handles opened inside it are gone: open them
 * again from what is committed. */
static void reopen_dbis(sv_store_t *st)
{
    MDB_txn *txn;
    if (mdb_txn_begin(sv_store_env(st), NULL, MDB_RDONLY, &txn) != MDB_SUCCESS)
        return;
    if (sv_store_open_dbis(st, txn) == SV_OK)
        mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
}

static sv_err_t run_step(sv_store_t *st, const migration_t *m, bool up, sv_migrate_log_fn log, void *arg)
{
    char line[160];
    MDB_txn *txn;
    uint64_t t0 = sv_mono_us();
    int rc = mdb_txn_begin(sv_store_env(st), NULL, 0, &txn);
    if (rc != MDB_SUCCESS)
        return sv_store_err(rc);
    sv_err_t err = up ? m->up(st, txn) : m->down(st, txn);
    if (err == SV_OK)
        err = write_version(txn, up ? m->version : m->version - 1);
    if (err == SV_OK)
        err = sv_store_open_dbis(st, txn);
    if (err != SV_OK) {
        mdb_txn_abort(txn);
        reopen_dbis(st);
        goto report;
    }
    rc = sv_sys_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        err = sv_store_err(rc);
        reopen_dbis(st);
    }
report:
    if (log != NULL) {
        if (err == SV_OK)
            snprintf(line, sizeof(line), "migration %s %s: ok (%llu us)", m->name, up ? "up" : "down",
                     (unsigned long long)(sv_mono_us() - t0));
        else
            snprintf(line, sizeof(line), "migration %s %s: failed: %s", m->name, up ? "up" : "down",
                     sv_strerror(err));
        log(arg, line);
    }
    return err;
}

sv_err_t sv_migrate_to(sv_store_t *st, uint32_t target, sv_migrate_log_fn log, void *arg)
{
    if (target > SV_SCHEMA_VERSION)
        return SV_EINVAL;
    uint32_t cur;
    sv_err_t err = sv_migrate_current(st, &cur);
    if (err != SV_OK)
        return err;
    if (cur > SV_SCHEMA_VERSION)
        return SV_ESCHEMA;
    while (cur < target) {
        if ((err = run_step(st, &migrations[cur], true, log, arg)) != SV_OK)
            return err;
        cur++;
    }
    while (cur > target) {
        if ((err = run_step(st, &migrations[cur - 1], false, log, arg)) != SV_OK)
            return err;
        cur--;
    }
    return SV_OK;
}
