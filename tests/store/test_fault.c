/* tests/store/test_fault.c - the fault-injection seams (store/fault.c): the
 * Nth-call countdown, failure counts, and the SCAIVAULT_TEST_FAULT spec. */
#include "sv_autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "store/fault.h"
#include "tests/unit.h"

static void test_nth_and_count(void)
{
    sv_fault_reset();
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), 0); /* disarmed */
    sv_fault_arm(SV_FAULT_FSYNC, 3, 2, EIO);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), 0);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), 0);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), EIO);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_WRITE), 0); /* seams are separate */
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), EIO);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), 0);
    /* count 0: until disarmed */
    sv_fault_arm(SV_FAULT_RENAME, 1, 0, ENOSPC);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_RENAME), ENOSPC);
    sv_fault_disarm(SV_FAULT_RENAME);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_RENAME), 0);
    /* the wrappers fail like the call they wrap */
    int fd = open("/dev/null", O_WRONLY);
    sv_fault_arm(SV_FAULT_WRITE, 1, 1, ENOSPC);
    errno = 0;
    CU_ASSERT_EQUAL(sv_sys_write(fd, "x", 1), -1);
    CU_ASSERT_EQUAL(errno, ENOSPC);
    CU_ASSERT_EQUAL(sv_sys_write(fd, "x", 1), 1);
    close(fd);
    sv_fault_reset();
}

static void test_spec(void)
{
    sv_fault_reset();
    CU_ASSERT_EQUAL(sv_fault_arm_spec("commit:2:1:EIO,fsync:1", true), 0);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), EIO); /* ERRNO defaults to EIO, count to 1 */
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_FSYNC), 0);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_COMMIT), 0);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_COMMIT), EIO);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_COMMIT), 0);
    CU_ASSERT_EQUAL(sv_fault_arm_spec("write:1:2:ENOSPC", false), 0);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_WRITE), 0); /* checked, not armed */
    const char *bad[] = {"", "commit", "commit:", "commit:0", "commit::1", "commit:1:x", "commit:1:1:EWHAT",
                         "nosuch:1", "commit:1:1:EIO:9", "commit:1,", "commit:-1"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        if (sv_fault_arm_spec(bad[i], false) != -1)
            fprintf(stderr, "\n  accepted '%s'\n", bad[i]);
        CU_ASSERT_EQUAL(sv_fault_arm_spec(bad[i], false), -1);
    }
    /* a bad item arms nothing, not even the good ones before it */
    CU_ASSERT_EQUAL(sv_fault_arm_spec("rename:1,commit:x", true), -1);
    CU_ASSERT_EQUAL(sv_fault_check(SV_FAULT_RENAME), 0);
    sv_fault_reset();
}

void sv_test_suite_fault(void)
{
    SV_SUITE("store/fault", {"nth_and_count", test_nth_and_count}, {"spec", test_spec});
}
