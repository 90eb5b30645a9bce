/*
 * util.c - helpers shared by both test runners (unit.h).
 */
#include "sv_autoconf.h"

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/env.h"
#include "store/migrate.h"
#include "tests/unit.h"

static char tmpdir_buf[512];

const char *sv_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_buf, sizeof(tmpdir_buf), "%s/sv-test-%s-XXXXXX", base && base[0] ? base : "/tmp", tag);
    return mkdtemp(tmpdir_buf);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void sv_test_rmdir(const char *dir)
{
    if (dir != NULL)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool sv_test_set_schema(sv_store_t *st, uint32_t v)
{
    MDB_txn *txn;
    MDB_dbi meta;
    if (mdb_txn_begin(sv_store_env(st), NULL, 0, &txn) != 0)
        return false;
    uint8_t buf[5] = {1};
    sv_put_be32(buf + 1, v);
    MDB_val k = {strlen(SV_META_SCHEMA_VERSION), SV_META_SCHEMA_VERSION}, val = {5, buf};
    if (mdb_dbi_open(txn, "meta", 0, &meta) != 0 || mdb_put(txn, meta, &k, &val, 0) != 0) {
        mdb_txn_abort(txn);
        return false;
    }
    return mdb_txn_commit(txn) == 0;
}
