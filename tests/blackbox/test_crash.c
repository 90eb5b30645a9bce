/* tests/blackbox/test_crash.c - crash safety: the storage driver
 * (tests/crash/sv_crashdriver) writes multi-key units from several threads and
 * acknowledges each one; it is killed with SIGKILL at a random moment and the
 * data directory is verified: every acknowledged unit is there with its
 * values, no unit is partly visible, the change log has no gap and every unit
 * in it ends with the unit-end flag. Then the next round restarts the driver
 * on the same directory. (Through the secrets API once it exists; the lead
 * adds that round after merging.) */
#include "sv_autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/blackbox/bb.h"

#define ROUNDS 24

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    char pending[256]; /* an incomplete line */
    size_t pending_len;
    FILE *acks;
    unsigned long n_acks;
    bool ready;
} line_reader_t;

/* Feeds bytes from the driver: complete lines go to the ACK file; READY is noted. */
static void feed(line_reader_t *lr, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (lr->pending_len + 1 < sizeof(lr->pending))
                lr->pending[lr->pending_len++] = p[i];
            continue;
        }
        lr->pending[lr->pending_len] = 0;
        if (strcmp(lr->pending, "READY") == 0) {
            lr->ready = true;
        } else if (strncmp(lr->pending, "ACK ", 4) == 0) {
            fprintf(lr->acks, "%s\n", lr->pending);
            lr->n_acks++;
        } else {
            fprintf(stderr, "\n  driver: %s\n", lr->pending);
        }
        lr->pending_len = 0;
    }
}

/* Reads from fd until the deadline (or EOF). Returns false at EOF. */
static bool pump(int fd, line_reader_t *lr, int64_t deadline_ms, bool until_ready)
{
    char buf[4096];
    for (;;) {
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0 || (until_ready && lr->ready))
            return true;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return false;
        feed(lr, buf, (size_t)n);
    }
}

/* One round: start the writer, kill it after a random delay, verify. */
static bool crash_round(const char *data_dir, const char *acks_path, int round, unsigned long *acks_total)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return false;
    const char *retention = round % 4 == 3 ? "20" : "0"; /* some rounds prune the log as they go */
    const char *argv[] = {bb_crashdriver(), "write",   "--data-dir",     data_dir,  "--clients", "4", "--keys", "3",
                          "--map-size",     "1048576", "--retention-ms", retention, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    line_reader_t lr = {.acks = fopen(acks_path, "a")};
    bool ok = lr.acks != NULL;
    if (ok && !pump(pipefd[0], &lr, mono_ms() + 20000, true))
        ok = false;
    if (ok && !lr.ready) {
        fprintf(stderr, "\n  round %d: the driver did not start\n", round);
        ok = false;
    }
    /* a random moment: 10 to 300 ms of writing */
    int delay = 10 + (int)randombytes_uniform(291);
    bool alive = ok && pump(pipefd[0], &lr, mono_ms() + delay, false);
    kill(pid, SIGKILL);
    pump(pipefd[0], &lr, mono_ms() + 5000, false); /* the rest, up to EOF */
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (ok && (!alive || !WIFSIGNALED(st))) {
        fprintf(stderr, "\n  round %d: the driver exited by itself (status %d)\n", round, st);
        ok = false;
    }
    if (lr.acks != NULL)
        fclose(lr.acks);
    *acks_total += lr.n_acks;
    if (!ok)
        return false;

    char out[2048];
    const char *vargs[] = {"verify", "--data-dir", data_dir, "--keys", "3", "--acks", acks_path, NULL};
    int rc = bb_run_exe(bb_crashdriver(), vargs, NULL, out, sizeof(out), 60000);
    if (rc != 0) {
        fprintf(stderr, "\n  round %d (killed after %d ms, %lu acks this round): verify exited %d: %s\n", round, delay,
                lr.n_acks, rc, out);
        return false;
    }
    if (round == ROUNDS - 1)
        printf("\n  crash: %d rounds, %lu acknowledged units, last verify: %s", ROUNDS, *acks_total, out);
    return true;
}

static void test_kill9_rounds(void)
{
    char dir[512], data_dir[600], acks[600];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/sv-crash-XXXXXX", base && base[0] ? base : "/tmp");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
    snprintf(acks, sizeof(acks), "%s/acks.log", dir);
    unsigned long acks_total = 0;
    int passed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (!crash_round(data_dir, acks, r, &acks_total))
            break;
        passed++;
    }
    CU_ASSERT_EQUAL(passed, ROUNDS);
    CU_ASSERT(acks_total > 0); /* the kills landed while units were being written */
    if (passed == ROUNDS && getenv("BB_KEEP") == NULL) {
        sv_test_rmdir(dir);
    } else {
        fprintf(stderr, "\n  crash test data kept in %s\n", dir);
    }
}

void sv_bb_suite_crash(void)
{
    SV_SUITE("blackbox/crash", {"kill9_rounds", test_kill9_rounds});
}
