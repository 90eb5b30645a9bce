/*
 * cmd_audit.c - `scaivault audit verify --data-dir D [--pubkey F]
 * [--from-seq N] [--to-seq N] [--config FILE]`: verifies the audit hash chain
 * offline and names the first bad sequence number.
 *
 * It opens the LMDB environment read-only, so it runs beside a live server
 * (same user: LMDB's lock file is shared) and never changes anything; it reads
 * in slices, one short read snapshot each, so it does not pin old pages of a
 * busy server for long. Prints one JSON object on stdout; exit status 0 when
 * the log verifies, 1 when it does not (or cannot be read), 2 on bad usage.
 */
#include "sv_autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/audit_journal.h"
#include "src/audit_verify.h"
#include "src/commands.h"
#include "src/config.h"
#include "src/log.h"

static void usage(void)
{
    fprintf(stderr, "usage: scaivault audit verify [--data-dir D] [--pubkey FILE] [--from-seq N] [--to-seq N] "
                    "[--config FILE]\n");
}

static bool parse_seq(const char *name, const char *v, uint64_t *out)
{
    if (v == NULL)
        return true;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != 0 || errno != 0) {
        sv_cli_error("audit verify: --%s must be a whole number", name);
        return false;
    }
    *out = n;
    return true;
}

static bool read_pubkey(const char *path, uint8_t pk[SV_AUDIT_PK_BYTES])
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        sv_cli_error("audit verify: --pubkey: cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    char text[4096];
    size_t n = fread(text, 1, sizeof(text), f);
    fclose(f);
    if (n == sizeof(text) || sv_audit_public_key_parse(text, n, pk) != SV_OK) {
        sv_cli_error("audit verify: --pubkey: '%s' is not an Ed25519 public key (PEM, 64 hex characters or base64)",
                     path);
        return false;
    }
    return true;
}

/* The entries a running server (or a crash) left in the audit journal
 * continue the verified chain: they reach the store while the server runs, or
 * when it starts. A server that moved them meanwhile started the journal over,
 * so a mismatch is looked at again against the store's head of now. When it
 * stays, v says so (not ok, the entry after the store's last, and why). */
static bool journal_continues(sv_store_t *st, const char *dir, sv_audit_verifier_t *v)
{
    char path[1024], msg[512] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, SV_AUDIT_JOURNAL_FILE);
    uint64_t head = v->last_seq, n = 0, last = 0;
    uint8_t hash[SV_AUDIT_HASH_BYTES], last_hash[SV_AUDIT_HASH_BYTES];
    memcpy(hash, v->prev, sizeof(hash));
    sv_err_t err = sv_audit_journal_scan(path, head, hash, &n, &last, last_hash, msg, sizeof(msg));
    /* a mismatch counts only when it stays while the store does not move on
     * (a running server starts the journal over after each commit to the
     * store, and may be writing it while it is read) */
    for (int i = 0, still = 0; i < 100 && err == SV_ECORRUPT; i++) {
        uint64_t before = head;
        if (sv_audit_store_head(st, &head, hash) != SV_OK)
            break;
        if (head == before) {
            if (++still > 3)
                break;
            usleep(20000);
        }
        err = sv_audit_journal_scan(path, head, hash, &n, &last, last_hash, msg, sizeof(msg));
    }
    if (err == SV_ENOTFOUND || (err == SV_OK && n == 0))
        return true;
    if (err != SV_OK) {
        fprintf(stderr, "scaivault: %s\n", msg[0] ? msg : sv_strerror(err));
        v->ok = false;
        v->first_bad_seq = (n > 0 ? last : head) + 1; /* the first entry the journal does not show whole */
        snprintf(v->reason, sizeof(v->reason), "%s",
                 err == SV_ECORRUPT ? "the audit journal does not continue the chain, or is damaged"
                                    : "the audit journal cannot be read");
        return false;
    }
    fprintf(stderr,
            "scaivault: %s: %llu more entries (seq %llu to %llu) continue the chain; the server moves them to the "
            "store while it runs, or when it starts\n",
            path, (unsigned long long)n, (unsigned long long)last - n + 1, (unsigned long long)last);
    return true;
}

static int verify(int argc, char **argv)
{
    static const char *const known[] = {"data-dir=", "pubkey=", "from-seq=", "to-seq=", "config=", NULL};
    const char *why;
    const char *bad = sv_cli_unknown(argc, argv, known, &why);
    if (bad != NULL) {
        sv_cli_error("audit verify: %s '%s'", why, bad);
        usage();
        return 2;
    }
    uint64_t from = 0, to = 0;
    if (!parse_seq("from-seq", sv_cli_opt(argc, argv, "from-seq"), &from) ||
        !parse_seq("to-seq", sv_cli_opt(argc, argv, "to-seq"), &to))
        return 2;
    if (from > 0 && to > 0 && from > to) { /* as GET /v1/audit/verify answers 400 */
        sv_cli_error("audit verify: --from-seq %llu is past --to-seq %llu", (unsigned long long)from,
                     (unsigned long long)to);
        return 2;
    }
    uint8_t pk[SV_AUDIT_PK_BYTES];
    const char *pubkey = sv_cli_opt(argc, argv, "pubkey");
    if (pubkey != NULL && !read_pubkey(pubkey, pk))
        return 2;
    sv_config_t cfg;
    const char *dir;
    if (!sv_cli_load_config(argc, argv, &cfg, &dir))
        return 2;
    int rc = 1;
    sv_store_t *st;
    char cause[256];
    sv_store_opts_t so = {
        .dir = dir, .max_readers = cfg.db_pool_size, .read_only = true, .why = cause, .why_len = sizeof(cause)};
    sv_err_t err = sv_store_open(&st, &so);
    if (err != SV_OK) {
        sv_cli_error("audit verify: cannot open the database in '%s': %s", dir, cause[0] ? cause : sv_strerror(err));
        goto free_config;
    }
    sv_audit_verifier_t v;
    sv_audit_verify_init(&v, from, to, pubkey != NULL ? pk : NULL);
    uint64_t t0 = sv_mono_us();
    err = sv_audit_verify_store(st, &v);
    uint64_t took = sv_mono_us() - t0;
    if (err != SV_OK) {
        sv_cli_error("audit verify: cannot read the audit log: %s", sv_strerror(err));
        goto close_store;
    }
    if (v.ok && to == 0)
        journal_continues(st, dir, &v); /* v says it when the journal does not */
    sv_buf_t out;
    sv_buf_init(&out, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &out);
    sv_audit_verify_json(&jw, &v);
    printf("%.*s\n", (int)out.len, (const char *)out.base);
    sv_buf_free(&out);
    if (v.ok)
        fprintf(stderr, "scaivault: audit log verified: %llu entries, %llu checkpoints%s in %.2f s\n",
                (unsigned long long)v.checked, (unsigned long long)v.checkpoints,
                pubkey != NULL ? " (signatures checked)" : " (signatures not checked: no --pubkey)", took / 1e6);
    else
        fprintf(stderr, "scaivault: audit log does NOT verify: first bad entry seq %llu: %s\n",
                (unsigned long long)v.first_bad_seq, v.reason);
    rc = v.ok ? 0 : 1;
close_store:
    sv_store_close(st);
free_config:
    sv_config_free(&cfg);
    return rc;
}

int sv_cmd_audit(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "verify") == 0)
        return verify(argc - 1, argv + 1);
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0)) {
        usage();
        return 0;
    }
    sv_cli_error("audit: expected a subcommand: verify");
    usage();
    return 2;
}
