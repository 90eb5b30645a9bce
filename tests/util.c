/*
 * util.c - helpers shared by both test runners (unit.h).
 */
#include "sv_autoconf.h"

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

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
